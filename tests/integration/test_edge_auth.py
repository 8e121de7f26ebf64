"""AUTH relayed to a real Postfix with TLS and Dovecot SASL, and TLS towards the
upstream: none, opportunistic, required with verification.

smtpgate stays out of the credential business: the upstream's replies (235,
535, 334 challenges, 501 for "*") reach the client exactly; the login name is
logged, the password never; failures are counted and delayed, then 421.
"""

from __future__ import annotations

import base64
import re
import smtplib
import time

import pytest

from edge import (USERS, certs, client_context, edge_gate_factory,  # noqa: F401
                  tls_listener, tls_sasl_postfix)
from helpers import wait_sessions_logged
from recorder import Script
from smtpclient import simple_message

ALICE, ALICE_PW = "alice@example.test", USERS["alice@example.test"]


def _gate(edge_gate_factory, postfix, ca, certs, extra="", **listener):
    return edge_gate_factory(
        [postfix.address], extra=extra,
        listeners={"sub": tls_listener(certs, tls="starttls", **listener)},
        upstream_tls={"tls": "required", "tls_ca_file": str(ca.cert),
                      "tls_verify_name": "upstream.example.test"})


def _client(addr, certs) -> smtplib.SMTP:
    s = smtplib.SMTP(*addr, timeout=30)
    s.ehlo("client.example.test")
    s.starttls(context=client_context(certs["ca"]))
    s.ehlo("client.example.test")
    return s


class TlsLines:
    """Line-level client over TLS, for exchanges smtplib will not send."""

    def __init__(self, s: smtplib.SMTP) -> None:
        self.s = s

    def cmd(self, line: str) -> tuple[int, bytes]:
        self.s.send((line + "\r\n").encode())
        return self.s.getreply()


def test_auth_plain_relayed_and_mail_delivered(tls_sasl_postfix, certs, edge_gate_factory):
    """STARTTLS to smtpgate, STARTTLS (verified) to Postfix, AUTH PLAIN relayed: 235,
    the mail is delivered, Postfix logs the SASL login and its TLS session from
    smtpgate, smtpgate logs login= and never the password."""
    postfix, ca = tls_sasl_postfix
    gate = _gate(edge_gate_factory, postfix, ca, certs)
    mark, gmark = postfix.log_mark(), gate.log_mark()
    with _client(gate.addr("sub"), certs) as s:
        assert "PLAIN" in s.esmtp_features.get("auth", "").upper()
        code, msg = s.login(ALICE, ALICE_PW)
        assert code == 235, (code, msg)
        s.sendmail(ALICE, ["user@example.test"], simple_message("auth-plain-relayed"))
    postfix.wait_delivered(b"auth-plain-relayed")
    postfix.wait_sessions_closed(mark)
    plog = postfix.log_since(mark)
    assert re.search(rf"sasl_method=PLAIN, sasl_username={re.escape(ALICE)}", plog), plog
    assert re.search(r"TLS connection established from \S+\[127\.0\.0\.1\]", plog), plog
    glog = gate.log_since(gmark)
    assert f"AUTH PLAIN accepted for 127.0.0.1 login={ALICE}" in glog, glog
    assert re.search(r"upstream \S+: TLS established: TLSv1\.[23] .* verified", glog), glog
    line = wait_sessions_logged(gate, gmark)[0]
    assert f" login={ALICE}" in line
    secrets = [ALICE_PW, base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode(),
               base64.b64encode(ALICE_PW.encode()).decode()]
    for secret in secrets:
        assert secret not in gate.log_text(), f"credential {secret!r} in smtpgate's log"


def test_auth_login_rounds_and_cancel(tls_sasl_postfix, certs, edge_gate_factory):
    """AUTH LOGIN through its two 334 rounds; AUTH PLAIN without an initial response
    (one 334); "*" cancels with Postfix's own 501."""
    postfix, ca = tls_sasl_postfix
    gate = _gate(edge_gate_factory, postfix, ca, certs, auth_failure_delay=0)
    with _client(gate.addr("sub"), certs) as s:
        t = TlsLines(s)
        code, msg = t.cmd("AUTH LOGIN")
        assert code == 334 and base64.b64decode(msg) == b"Username:", (code, msg)
        code, msg = t.cmd("*")
        assert code == 501 and b"5.7.0" in msg, (code, msg)
        code, msg = t.cmd("AUTH PLAIN")
        assert code == 334, (code, msg)
        code, msg = t.cmd(base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode())
        assert code == 235, (code, msg)
        code, msg = t.cmd("AUTH PLAIN")
        assert code == 503, (code, msg)   # already authenticated (smtpgate's own answer)
    with _client(gate.addr("sub"), certs) as s:
        s.user, s.password = ALICE, ALICE_PW
        code, msg = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235, (code, msg)


def test_auth_failure_relayed_exactly_then_421(tls_sasl_postfix, certs, edge_gate_factory):
    """A wrong password gets the reply Postfix gives a direct client, after the delay;
    the third failure ends the session with 421."""
    postfix, ca = tls_sasl_postfix
    host, port = postfix.address.split(":")
    with smtplib.SMTP(host, int(port), timeout=30) as d:
        d.ehlo("client.example.test")
        d.starttls(context=client_context(ca))
        d.ehlo("client.example.test")
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            d.login(ALICE, "wrong")
        want = (e.value.smtp_code, e.value.smtp_error)
    gate = _gate(edge_gate_factory, postfix, ca, certs, auth_failure_delay=1,
                 auth_max_failures=3)
    gmark = gate.log_mark()
    with _client(gate.addr("sub"), certs) as s:
        t = TlsLines(s)
        wrong = base64.b64encode(f"\0{ALICE}\0wrong".encode()).decode()
        for attempt in range(3):
            t0 = time.monotonic()
            code, msg = t.cmd(f"AUTH PLAIN {wrong}")
            assert (code, msg) == want, (attempt, code, msg, want)
            assert time.monotonic() - t0 >= 0.9, "no delay after a failed AUTH"
        code, msg = s.getreply()
        assert code == 421 and b"4.7.0" in msg, (code, msg)
    glog = gate.log_since(gmark)
    assert glog.count(f"AUTH PLAIN failed for 127.0.0.1 login={ALICE}") == 3, glog
    assert "too many failed AUTH attempts" in glog


def test_upstream_tls_required_wrong_name_is_4xx(tls_sasl_postfix, certs, edge_gate_factory):
    """tls = required with a name the upstream's certificate does not carry: the client
    gets 451 at MAIL and Postfix never sees the transaction in plaintext."""
    postfix, ca = tls_sasl_postfix
    gate = edge_gate_factory([postfix.address], listeners={"plain": {}},
                             upstream_tls={"tls": "required", "tls_ca_file": str(ca.cert),
                                           "tls_verify_name": "wrong.example.test"})
    mark, gmark = postfix.log_mark(), gate.log_mark()
    with smtplib.SMTP(*gate.addr("plain"), timeout=30) as s:
        s.ehlo("client.example.test")
        code, msg = s.mail("s@example.test")
        assert code == 451 and msg.startswith(b"4.4.1"), (code, msg)
    gate.wait_log(r"TLS handshake failed", gmark)
    for d in postfix.wait_sessions_closed(mark):
        assert d.count("mail") == 0, d


def test_upstream_tls_required_not_offered(recorder, certs, edge_gate_factory):
    """An upstream without STARTTLS and tls = required: 451, and no MAIL reaches it."""
    gate = edge_gate_factory([recorder.address], listeners={"plain": {}},
                             upstream_tls={"tls": "required",
                                           "tls_ca_file": str(certs["ca"].cert),
                                           "tls_verify_name": "recorder.example.test"})
    recorder.wait_idle()
    gmark = gate.log_mark()
    with smtplib.SMTP(*gate.addr("plain"), timeout=30) as s:
        s.ehlo("client.example.test")
        code, _ = s.mail("s@example.test")
        assert code == 451
    assert "does not offer STARTTLS" in gate.log_since(gmark)
    assert all("MAIL" not in c.verbs for c in recorder.connections)


def test_upstream_tls_opportunistic(recorder_factory, tls_sasl_postfix, certs,
                                    edge_gate_factory):
    """Opportunistic: STARTTLS where offered (Postfix), plaintext where not (recorder);
    mail arrives both ways."""
    postfix, ca = tls_sasl_postfix
    gate = edge_gate_factory([postfix.address], listeners={"plain": {}},
                             upstream_tls={"tls": "opportunistic"})
    gmark = gate.log_mark()
    with smtplib.SMTP(*gate.addr("plain"), timeout=30) as s:
        s.sendmail("s@example.test", ["user@example.test"], simple_message("opportunistic-pf"))
    postfix.wait_delivered(b"opportunistic-pf")
    assert re.search(r"TLS established: .*\(not verified\)", gate.log_since(gmark))
    rec = recorder_factory(Script())
    gate2 = edge_gate_factory([rec.address], listeners={"plain": {}},
                              upstream_tls={"tls": "opportunistic"})
    rec.wait_idle()
    with smtplib.SMTP(*gate2.addr("plain"), timeout=30) as s:
        s.sendmail("s@example.test", ["user@example.test"], simple_message("opportunistic-rec"))
    assert b"opportunistic-rec" in rec.wait_messages(1)[0].content


def test_auth_bounds_and_mail_auth_param(tls_sasl_postfix, certs, edge_gate_factory):
    """A response line over auth_max_line_length, or one that is not base64, cancels
    the exchange at the upstream (its 501 comes back) and the session goes on; after
    AUTH, MAIL FROM's AUTH= parameter is accepted and the mail delivered."""
    postfix, ca = tls_sasl_postfix
    gate = _gate(edge_gate_factory, postfix, ca, certs, auth_failure_delay=0,
                 auth_max_line_length=1024, auth_max_failures=5)
    with _client(gate.addr("sub"), certs) as s:
        t = TlsLines(s)
        assert t.cmd("AUTH LOGIN")[0] == 334
        code, msg = t.cmd("QUFB" * 400)           # 1600 octets
        assert code == 501, (code, msg)
        assert t.cmd("AUTH LOGIN")[0] == 334
        code, msg = t.cmd("not base64!")
        assert code == 501, (code, msg)
        code, msg = t.cmd("NOOP")
        assert code == 250, (code, msg)
        code, msg = s.login(ALICE, ALICE_PW)
        assert code == 235
        s.sendmail(ALICE, ["user@example.test"], simple_message("auth-param"),
                   mail_options=["AUTH=<>"])
    postfix.wait_delivered(b"auth-param")


def test_require_tls_before_auth_only(tls_sasl_postfix, certs, edge_gate_factory):
    """require_tls = auth (with auth_plaintext, so AUTH is even shown): AUTH before
    STARTTLS gets 530 5.7.0, mail without AUTH still flows in plaintext."""
    postfix, ca = tls_sasl_postfix
    gate = _gate(edge_gate_factory, postfix, ca, certs, require_tls="auth",
                 auth_plaintext=True)
    with smtplib.SMTP(*gate.addr("sub"), timeout=30) as s:
        s.ehlo("client.example.test")
        code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(
            f"\0{ALICE}\0{ALICE_PW}".encode()).decode())
        assert code == 530 and msg.startswith(b"5.7.0"), (code, msg)
        s.sendmail("s@example.test", ["user@example.test"], simple_message("no-auth-plain"))
    postfix.wait_delivered(b"no-auth-plain")


def test_everything_at_once(tls_sasl_postfix, certs, edge_gate_factory, workdir):
    """HAProxy (send-proxy-v2) -> smtpgate STARTTLS listener -> AUTH -> Postfix over
    verified TLS: delivered, and Postfix knows both the real client (127.0.0.2, by
    XCLIENT from the PROXY header) and the SASL login."""
    import shutil
    if not shutil.which("haproxy"):
        pytest.skip("haproxy not installed")
    from edge import HAProxy
    postfix, ca = tls_sasl_postfix
    gate = edge_gate_factory(
        [postfix.address],
        listeners={"edge": tls_listener(certs, tls="starttls", require_tls="mail",
                                        proxy_protocol="v2", proxy_trusted=["127.0.0.1"])},
        upstream_tls={"tls": "required", "tls_ca_file": str(ca.cert),
                      "tls_verify_name": "upstream.example.test"})
    h = HAProxy(workdir, {"smtp": (gate.listeners["edge"], "send-proxy-v2")}).start()
    try:
        mark = postfix.log_mark()
        host, port = h.addr("smtp")
        with smtplib.SMTP(host, port, timeout=30, source_address=("127.0.0.2", 0)) as s:
            s.ehlo("laptop.example.test")
            s.starttls(context=client_context(certs["ca"]))
            s.ehlo("laptop.example.test")
            assert s.login(ALICE, ALICE_PW)[0] == 235
            s.sendmail(ALICE, ["user@example.test"], simple_message("all-at-once"))
        postfix.wait_delivered(b"all-at-once")
        postfix.wait_sessions_closed(mark)
        plog = postfix.log_since(mark)
        assert re.search(r"client=\S*\[127\.0\.0\.2\], sasl_method=PLAIN, "
                         rf"sasl_username={re.escape(ALICE)}", plog), plog
    finally:
        h.stop()


def test_long_initial_response_allowed(tls_sasl_postfix, certs, edge_gate_factory):
    """An AUTH command longer than max_line_length (512) but within
    auth_max_line_length reaches the upstream (its own verdict comes back); any other
    command that long is still refused by smtpgate with 500 5.5.2."""
    postfix, ca = tls_sasl_postfix
    gate = _gate(edge_gate_factory, postfix, ca, certs, auth_failure_delay=0)
    gmark = gate.log_mark()
    with _client(gate.addr("sub"), certs) as s:
        t = TlsLines(s)
        blob = base64.b64encode(f"\0{ALICE}\0".encode() + b"x" * 900).decode()
        code, msg = t.cmd(f"AUTH PLAIN {blob}")
        assert code == 535, (code, msg)    # Postfix's answer: a wrong password
        code, msg = t.cmd("NOOP " + "y" * 900)
        assert code == 500 and msg.startswith(b"5.5.2"), (code, msg)
    assert f"AUTH PLAIN failed for 127.0.0.1 login={ALICE}" in gate.log_since(gmark)


def test_plugins_see_the_login(tls_sasl_postfix, certs, edge_gate_factory, smtpgate_binary):
    """After AUTH the filter chain knows who logged in (and that the session is TLS)."""
    from gate import plugin_dir, plugin_section
    postfix, ca = tls_sasl_postfix
    extra = plugin_section("facts", plugin_dir(smtpgate_binary) / "test_policy.so",
                           facts_header="X-Facts")
    gate = _gate(edge_gate_factory, postfix, ca, certs, extra=extra)
    with _client(gate.addr("sub"), certs) as s:
        code, msg = s.login(ALICE, ALICE_PW)
        assert code == 235, (code, msg)
        s.sendmail(ALICE, ["user@example.test"], simple_message("auth-facts"))
    [delivered] = postfix.wait_delivered(b"auth-facts")
    facts = re.search(rb"^X-Facts: (.*)$", delivered, re.M).group(1).decode()
    assert facts.startswith("tls=yes ") and facts.endswith(f" login={ALICE}"), facts
