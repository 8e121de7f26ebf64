"""TLS towards clients: STARTTLS and implicit TLS listeners, SNI, the TLS
policy of a listener, client certificates, resumption, the RFC 3207 restart
(the STARTTLS injection of CVE-2011-0411 refused) and certificate reload on
SIGHUP.  Clients: swaks --tls / --tlsc, openssl s_client, Python's smtplib
and ssl, and raw sockets where the bytes matter.
"""

from __future__ import annotations

import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess

import pytest

from edge import (certs, client_context, edge_gate_factory, fingerprint_sha256,  # noqa: F401
                  tls_listener)
from helpers import wait_sessions_logged
from netutil import wait_until
from smtpclient import SMTPConn, simple_message, swaks, swaks_final_reply

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")


def _s_client(addr, *args: str, stdin: bytes = b"QUIT\r\n", timeout: float = 30) -> str:
    host, port = addr
    r = subprocess.run(["openssl", "s_client", "-connect", f"{host}:{port}", "-ign_eof",
                        *args], input=stdin, capture_output=True, timeout=timeout)
    return (r.stdout + r.stderr).decode("utf-8", "replace")


def _subject_cn(transcript: str) -> str:
    m = re.search(r"^subject=.*?CN\s*=\s*([^,\n/]+)", transcript, re.M)
    assert m, f"no server certificate subject in:\n{transcript[-2000:]}"
    return m.group(1).strip()


def test_starttls_swaks_mail_arrives(recorder, certs, edge_gate_factory):
    """swaks --tls: EHLO shows STARTTLS, the message arrives, the connection log line
    carries the TLS version and cipher."""
    gate = edge_gate_factory([recorder.address],
                             listeners={"sub": tls_listener(certs, tls="starttls")})
    recorder.wait_idle()
    mark = gate.log_mark()
    r = swaks(gate.addr("sub"), "--tls", "--to", "user@example.test", "--from",
              "s@example.test", "--header", "Subject: over-starttls")
    assert r.returncode == 0, r.stdout + r.stderr
    assert swaks_final_reply(r.stdout).startswith("250"), r.stdout
    msgs = recorder.wait_messages(1)
    assert b"over-starttls" in msgs[0].content
    line = wait_sessions_logged(gate, mark)[0]
    assert re.search(r" tls=TLSv1\.[23]/\S+ sni=", line), line


def test_implicit_tls_swaks_and_smtplib(recorder, certs, edge_gate_factory):
    """An implicit-TLS listener (port 465 style): swaks --tlsc and smtplib.SMTP_SSL."""
    gate = edge_gate_factory([recorder.address],
                             listeners={"smtps": tls_listener(certs, tls="implicit")})
    recorder.wait_idle()
    r = swaks(gate.addr("smtps"), "--tlsc", "--to", "user@example.test", "--from",
              "s@example.test", "--header", "Subject: over-smtps")
    assert swaks_final_reply(r.stdout).startswith("250"), r.stdout + r.stderr
    host, port = gate.addr("smtps")
    with smtplib.SMTP_SSL(host, port, context=client_context(certs["ca"]), timeout=20) as s:
        s.ehlo("client.example.test")
        assert not s.has_extn("starttls")
        s.sendmail("s@example.test", ["user@example.test"], simple_message("smtps-smtplib"))
    msgs = recorder.wait_messages(2)
    assert b"over-smtps" in msgs[0].content and b"smtps-smtplib" in msgs[1].content


def test_sni_picks_certificate(recorder, certs, edge_gate_factory):
    """openssl s_client -starttls smtp: the name asked for picks its certificate,
    wildcards cover one label, an unknown name gets the default."""
    gate = edge_gate_factory([recorder.address],
                             listeners={"sub": tls_listener(certs, tls="starttls")})
    addr = gate.addr("sub")
    for sni, cn in (("mx.example.test", "mx.example.test"),
                    ("other.example.test", "other.example.test"),
                    ("a.wild.example.test", "other.example.test"),
                    ("a.b.wild.example.test", "mx.example.test"),
                    ("unknown.example", "mx.example.test")):
        out = _s_client(addr, "-starttls", "smtp", "-servername", sni)
        assert _subject_cn(out) == cn, (sni, out[-1500:])
    # and the same choice on an implicit-TLS listener, verified against the CA
    gate2 = edge_gate_factory([recorder.address],
                              listeners={"smtps": tls_listener(certs, tls="implicit")})
    out = _s_client(gate2.addr("smtps"), "-servername", "other.example.test", "-CAfile",
                    str(certs["ca"].cert), "-verify_hostname", "other.example.test")
    assert _subject_cn(out) == "other.example.test"
    assert "Verify return code: 0 (ok)" in out, out[-1500:]


def test_starttls_injection_discarded(recorder, certs, edge_gate_factory):
    """CVE-2011-0411: commands pipelined after STARTTLS in plaintext are thrown away,
    never executed inside the TLS session."""
    gate = edge_gate_factory([recorder.address],
                             listeners={"sub": tls_listener(certs, tls="starttls")})
    recorder.wait_idle()
    mark = gate.log_mark()
    c = SMTPConn(*gate.addr("sub"))
    c.ehlo()
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\nRCPT TO:<user@example.test>\r\n")
    r = c.read_reply()
    assert r.code == 220, r
    assert c.buf == b"", f"replies after 220 in plaintext: {c.buf!r}"
    tls = client_context().wrap_socket(c.sock, server_hostname="mx.example.test")
    tls.settimeout(20)
    f = tls.makefile("rwb")

    def cmd(line: bytes) -> bytes:
        f.write(line + b"\r\n")
        f.flush()
        out = b""
        while True:
            ln = f.readline()
            assert ln, "connection closed"
            out += ln
            if ln[3:4] != b"-":
                return out

    # The session restarted: no HELO known, no transaction open.
    assert cmd(b"MAIL FROM:<good@example.test>").startswith(b"503"), "EHLO state survived"
    ehlo = cmd(b"EHLO client.example.test")
    assert ehlo.startswith(b"250") and b"STARTTLS" not in ehlo
    assert cmd(b"MAIL FROM:<good@example.test>").startswith(b"250")
    assert cmd(b"RCPT TO:<user@example.test>").startswith(b"250")
    assert cmd(b"DATA").startswith(b"354")
    assert cmd(simple_message("after-starttls") + b".").startswith(b"250")
    cmd(b"QUIT")
    tls.close()
    msgs = recorder.wait_messages(1)
    assert msgs[0].mail_from == "good@example.test"
    assert all(m.mail_from != "injected@evil.test" for m in recorder.messages)
    for conn in recorder.connections:
        assert all("injected@evil.test" not in arg for _, arg in conn.commands), conn.commands
    log = gate.log_since(mark)
    assert re.search(r"discarded \d+ octets pipelined after STARTTLS", log), log


def test_require_tls_before_mail(recorder, certs, edge_gate_factory):
    """require_tls = mail: MAIL in plaintext gets 530 5.7.0; after STARTTLS it passes."""
    gate = edge_gate_factory([recorder.address], listeners={
        "sub": tls_listener(certs, tls="starttls", require_tls="mail")})
    recorder.wait_idle()
    host, port = gate.addr("sub")
    with smtplib.SMTP(host, port, timeout=20) as s:
        s.ehlo("client.example.test")
        code, msg = s.mail("s@example.test")
        assert code == 530 and msg.startswith(b"5.7.0"), (code, msg)
        s.rset()
        s.starttls(context=client_context(certs["ca"]))
        s.ehlo("client.example.test")
        s.sendmail("s@example.test", ["user@example.test"], simple_message("required-tls"))
    assert b"required-tls" in recorder.wait_messages(1)[0].content
    # swaks without --tls is refused at MAIL
    r = swaks((host, port), "--to", "user@example.test")
    assert re.search(r"^<\*\* 530 5\.7\.0", r.stdout, re.M), r.stdout


def test_client_certificate_recorded(recorder, certs, edge_gate_factory):
    """tls_ask_client_cert: the client certificate's SHA-256 fingerprint and subject are
    logged; a client without one still gets in."""
    gate = edge_gate_factory([recorder.address], listeners={
        "sub": tls_listener(certs, tls="starttls", tls_ask_client_cert=True,
                            tls_client_ca_file=str(certs["ca"].cert))})
    recorder.wait_idle()
    mark = gate.log_mark()
    cert, key = certs["client"]
    r = swaks(gate.addr("sub"), "--tls", "--tls-cert", str(cert), "--tls-key", str(key),
              "--to", "user@example.test")
    assert swaks_final_reply(r.stdout).startswith("250"), r.stdout + r.stderr
    fp = fingerprint_sha256(cert)
    log = gate.wait_log(r"TLS established .* ccert=[0-9A-F:]+.*$", mark).group(0)
    assert fp in log and "CN=client.example.test" in log, (fp, log)
    line = wait_sessions_logged(gate, mark)[0]
    assert f"ccert={fp}" in line
    r = swaks(gate.addr("sub"), "--tls", "--to", "user@example.test")
    assert swaks_final_reply(r.stdout).startswith("250"), r.stdout


def test_session_resumption(recorder, certs, edge_gate_factory, workdir):
    """A TLS session saved by one connection is resumed by the next (tickets)."""
    gate = edge_gate_factory([recorder.address],
                             listeners={"smtps": tls_listener(certs, tls="implicit")})
    sess = workdir / "tls.sess"
    first = _s_client(gate.addr("smtps"), "-tls1_2", "-sess_out", str(sess))
    assert "New," in first, first[-1500:]
    second = _s_client(gate.addr("smtps"), "-tls1_2", "-sess_in", str(sess))
    assert "Reused," in second, second[-1500:]


def test_protocol_floor(recorder, certs, edge_gate_factory):
    """tls_min_version = TLSv1.3: a TLS 1.2-only client fails the handshake, and the
    refusal is logged."""
    gate = edge_gate_factory([recorder.address], listeners={
        "smtps": tls_listener(certs, tls="implicit", tls_min_version="TLSv1.3")})
    mark = gate.log_mark()
    out = _s_client(gate.addr("smtps"), "-tls1_2")
    assert "220 " not in out, out[-1500:]
    gate.wait_log(r"TLS handshake failed", mark)
    out = _s_client(gate.addr("smtps"), "-tls1_3")
    assert "220 smtpgate.example.test" in out


def test_reload_replaces_certificate_keeps_sessions(recorder, certs, edge_gate_factory):
    """SIGHUP with a new certificate: new connections get it, a TLS session opened
    before the reload goes on with the old one and its mail arrives."""
    gate = edge_gate_factory([recorder.address],
                             listeners={"smtps": tls_listener(certs, "mx", tls="implicit")})
    recorder.wait_idle()
    host, port = gate.addr("smtps")
    old = smtplib.SMTP_SSL(host, port, context=client_context(), timeout=20)
    old.ehlo("client.example.test")
    mark = gate.log_mark()
    gate.listener_settings["smtps"] = tls_listener(certs, "other", tls="implicit")
    gate.write_config()
    gate.send_signal(signal.SIGHUP)
    gate.wait_log(r"reloaded configuration", mark)
    assert _subject_cn(_s_client((host, port))) == "other.example.test"
    old.sendmail("s@example.test", ["user@example.test"], simple_message("before-reload"))
    old.quit()
    assert b"before-reload" in recorder.wait_messages(1)[0].content


def test_reload_with_a_key_that_does_not_fit_keeps_the_old_certificate(recorder, certs,
                                                                       edge_gate_factory):
    """Both files are PEM, so the settings load; building the TLS context fails (the key is
    another certificate's): the reload is refused naming the listener's line, and new
    connections still get the certificate in force."""
    gate = edge_gate_factory([recorder.address],
                             listeners={"smtps": tls_listener(certs, "mx", tls="implicit")})
    recorder.wait_idle()
    host, port = gate.addr("smtps")
    mark = gate.log_mark()
    broken = tls_listener(certs, "other", tls="implicit")
    broken["tls_key_file"] = [str(certs["mx"][1])]
    gate.listener_settings["smtps"] = broken
    gate.write_config()
    gate.send_signal(signal.SIGHUP)
    gate.wait_log(r"reload refused", mark)
    assert re.search(r"\.conf:\d+: listener smtps: ", gate.log_since(mark)), gate.log_since(mark)
    assert _subject_cn(_s_client((host, port))) == "mx.example.test"
    with smtplib.SMTP_SSL(host, port, context=client_context(), timeout=20) as c:
        c.ehlo("client.example.test")
        c.sendmail("s@example.test", ["user@example.test"], simple_message("after-refusal"))
    assert b"after-refusal" in recorder.wait_messages(1)[0].content


def test_auth_not_offered_in_plaintext(recorder, certs, edge_gate_factory):
    """AUTH is shown only over TLS (unless auth_plaintext); AUTH in plaintext is refused
    without reaching the upstream."""
    gate = edge_gate_factory([recorder.address], listeners={
        "sub": tls_listener(certs, tls="starttls", auth_mechanisms="PLAIN LOGIN")})
    recorder.wait_idle()
    with SMTPConn(*gate.addr("sub")) as c:
        kw = c.ehlo().keywords()
        assert "STARTTLS" in kw and "AUTH" not in kw
        r = c.cmd("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=")
        assert r.code == 538, r
    gate2 = edge_gate_factory([recorder.address], listeners={
        "plain": {"auth_mechanisms": "PLAIN", "auth_plaintext": True}})
    with SMTPConn(*gate2.addr("plain")) as c:
        kw = c.ehlo().keywords()
        assert kw.get("AUTH") == "PLAIN"


def test_config_errors_name_the_line(smtpgate_binary, workdir, certs):
    """smtpgate -t: a TLS listener without certificate, and an unreadable key, are
    refused with file:line."""
    from gate import run_config_test
    conf = workdir / "bad.conf"
    conf.write_text('upstream u { address = "127.0.0.1:10025" }\n'
                    'listener sub {\n    address = "127.0.0.1:2587"\n    tls = "starttls"\n}\n')
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert re.search(rf"{re.escape(str(conf))}:\d+: listener sub: tls = \"starttls\" needs",
                     r.stdout + r.stderr), r.stdout + r.stderr
    conf.write_text('upstream u { address = "127.0.0.1:10025" }\n'
                    'listener sub {\n    address = "127.0.0.1:2587"\n'
                    f'    tls_cert_file = {{"{certs["mx"][0]}"}}\n'
                    '    tls_key_file = {"/nonexistent/key.pem"}\n}\n')
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert f"{conf}:5: 'tls_key_file': cannot open /nonexistent/key.pem" in r.stdout + r.stderr


def test_starttls_after_a_plaintext_transaction(recorder, certs, edge_gate_factory):
    """A message in plaintext, then STARTTLS in the same session: the upstream
    connection that heard the plaintext HELO is closed, a new one carries the HELO
    given over TLS, and both messages arrive."""
    gate = edge_gate_factory([recorder.address],
                             listeners={"sub": tls_listener(certs, tls="starttls")})
    recorder.wait_idle()
    host, port = gate.addr("sub")
    with smtplib.SMTP(host, port, timeout=20) as s:
        s.ehlo("plain-helo.example.test")
        s.sendmail("s@example.test", ["user@example.test"], simple_message("before-tls"))
        s.starttls(context=client_context(certs["ca"]))
        s.ehlo("tls-helo.example.test")
        s.sendmail("s@example.test", ["user@example.test"], simple_message("after-tls"))
    msgs = recorder.wait_messages(2)
    assert b"before-tls" in msgs[0].content and b"after-tls" in msgs[1].content
    assert msgs[0].xclient.get("HELO") == "plain-helo.example.test", msgs[0].xclient
    assert msgs[1].xclient.get("HELO") == "tls-helo.example.test", msgs[1].xclient
    sessions = [c for c in recorder.wait_closed_all() if not c.is_probe]
    assert len(sessions) == 2, [c.verbs for c in sessions]


def test_plugins_see_tls_facts(recorder, certs, edge_gate_factory, smtpgate_binary):
    """After STARTTLS the filter chain knows the protocol, cipher, SNI and the client
    certificate's fingerprint; in plaintext it knows there is no TLS."""
    from gate import plugin_dir, plugin_section
    extra = plugin_section("facts", plugin_dir(smtpgate_binary) / "test_policy.so",
                           facts_header="X-Facts")
    gate = edge_gate_factory([recorder.address], extra=extra, listeners={
        "sub": tls_listener(certs, tls="starttls", tls_ask_client_cert=True,
                            tls_client_ca_file=str(certs["ca"].cert)),
        "smtps": tls_listener(certs, tls="implicit")})
    recorder.wait_idle()
    cert, key = certs["client"]
    r = swaks(gate.addr("sub"), "--tls", "--tls-cert", str(cert), "--tls-key", str(key),
              "--tls-sni", "mx.example.test", "--to", "user@example.test")
    assert swaks_final_reply(r.stdout).startswith("250"), r.stdout + r.stderr
    r = swaks(gate.address, "--to", "user@example.test")
    assert swaks_final_reply(r.stdout).startswith("250"), r.stdout + r.stderr
    tls_msg, plain_msg = recorder.wait_messages(2)
    facts = re.search(rb"^X-Facts: (.*)\r$", tls_msg.content, re.M).group(1).decode()
    assert re.search(r"tls=yes version=TLSv1\.[23] cipher=\S+ sni=mx\.example\.test ", facts), facts
    assert f"ccert={fingerprint_sha256(cert)}" in facts, facts
    plain = re.search(rb"^X-Facts: (.*)\r$", plain_msg.content, re.M).group(1).decode()
    assert plain.startswith("tls=no version=- "), plain
    # implicit TLS: the handshake comes before the greeting and the connect stage
    r = swaks(gate.addr("smtps"), "--tlsc", "--to", "user@example.test")
    assert swaks_final_reply(r.stdout).startswith("250"), r.stdout + r.stderr
    smtps_msg = recorder.wait_messages(3)[2]
    facts = re.search(rb"^X-Facts: (.*)\r$", smtps_msg.content, re.M).group(1).decode()
    assert facts.startswith("tls=yes version=TLSv1."), facts
