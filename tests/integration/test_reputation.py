"""Rate limits and greylisting inside a running smtpgate: real clients from several loopback
addresses (127.0.0.X), the recording upstream, and for the fleet a real redis-server
shared by two smtpgate instances, killed and paused mid-test.

Every refusal is asserted by its exact reply and by the plugin's counters on /metrics; the
transaction's log line carries the plugin's note.  Each smtpgate must exit cleanly with no
sanitizer report (conftest), which covers the concurrency keys a connection holds on every
path, a refusal at connect included.
"""

from __future__ import annotations

import re
import shutil
import signal
import smtplib
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from edge import (USERS, certs, client_context, edge_gate_factory,  # noqa: F401
                  tls_listener, tls_sasl_postfix)
from gate import plugin_dir, plugin_section, run_config_test
from helpers import assert_reply, codes
from netutil import LOOPBACK, free_port, wait_until
from redis_server import RedisServer, redis_server_path
from smtpclient import simple_message


# ---- fixtures and helpers ----

def plugin_so(smtpgate_binary, name: str) -> Path:
    so = plugin_dir(smtpgate_binary).parent.parent / "plugins" / f"{name}.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    return so


@pytest.fixture(scope="module")
def redis():
    if not redis_server_path():
        pytest.skip("redis-server not installed (Debian package redis-server)")
    d = Path(tempfile.mkdtemp(prefix="smtpgate-redis-"))
    r = RedisServer(d).start()
    yield r
    r.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fresh_redis(redis):
    """The module's server, running (a test may have killed it) and empty."""
    if redis.proc is None or redis.proc.poll() is not None:
        redis.start()
    redis.resume()
    redis.flush()
    return redis


class Gw:
    """A started smtpgate with one reputation plugin and its metrics port."""

    def __init__(self, gate, metrics_port: int, instance: str):
        self.gate = gate
        self.metrics_port = metrics_port
        self.instance = instance

    def counter(self, event: str) -> int:
        text = urllib.request.urlopen(f"http://{LOOPBACK}:{self.metrics_port}/metrics",
                                      timeout=10).read().decode()
        m = re.search(r'^smtpgate_plugin_events_total\{plugin="%s",event="%s"\} (\d+)$'
                      % (re.escape(self.instance), re.escape(event)), text, re.M)
        return int(m.group(1)) if m else 0

    def connect(self, source: str):
        return self.gate.connect(source=source)


def start(gate_factory, recorder, smtpgate_binary, plugin: str, settings: dict | None = None,
          **options) -> Gw:
    port = free_port()
    extra = plugin_section(plugin, plugin_so(smtpgate_binary, plugin), **options)
    g = gate_factory([recorder.address], extra=extra, metrics_listen=f"{LOOPBACK}:{port}",
                     **(settings or {}))
    recorder.wait_idle()
    return Gw(g, port, plugin)


def greeting(gw: Gw, source: str):
    c = gw.connect(source)
    r = c.greeting
    if r.code == 220:
        c.quit()
    else:
        c.close()
    return r


def send(gw: Gw, source: str, sender: str, rcpts: list[str]) -> list:
    with gw.connect(source) as c:
        c.ehlo()
        out = c.mail_transaction(sender, rcpts, simple_message("rate"))
        c.quit()
    return out


CONN_REFUSED = "421 4.7.0 Error: too many connections from {}"


# ---- rate limits, local backend ----

def test_connections_per_client(gate_factory, recorder, smtpgate_binary):
    gw = start(gate_factory, recorder, smtpgate_binary, "ratelimit",
               limit=["connections per client 2/1h"])
    assert greeting(gw, "127.0.0.2").code == 220
    assert greeting(gw, "127.0.0.2").code == 220
    r = greeting(gw, "127.0.0.2")
    assert str(r) == CONN_REFUSED.format("127.0.0.2"), r
    # Every attempt counts: the refused one too, and the next is refused again.
    assert str(greeting(gw, "127.0.0.2")) == CONN_REFUSED.format("127.0.0.2")
    # Another client has a counter of its own.
    assert greeting(gw, "127.0.0.3").code == 220
    assert gw.counter("limited_connections") == 2
    log = gw.gate.log_text()
    assert log.count("limit connections per client 2/1h exceeded by 127.0.0.2 (3): refused") == 1
    assert "exceeded by 127.0.0.2 (4): refused" in log


def test_connections_per_network(gate_factory, recorder, smtpgate_binary):
    gw = start(gate_factory, recorder, smtpgate_binary, "ratelimit",
               limit=["connections per client_network 2/1h"], ipv4_prefix=24)
    assert greeting(gw, "127.0.0.4").code == 220
    assert greeting(gw, "127.0.0.5").code == 220
    # Same /24: the network's third connection is refused, named by the client's address.
    assert str(greeting(gw, "127.0.0.6")) == CONN_REFUSED.format("127.0.0.6")
    # Another /24 of 127/8.
    assert greeting(gw, "127.0.1.4").code == 220
    assert gw.counter("limited_connections") == 1
    assert "limit connections per client_network 2/1h exceeded by 127.0.0.0/24 (3)" \
        in gw.gate.log_text()


def test_concurrency_given_back_at_close_and_at_refusal(gate_factory, recorder, smtpgate_binary):
    gw = start(gate_factory, recorder, smtpgate_binary, "ratelimit",
               limit=["concurrency per client 2"])
    a = gw.connect("127.0.0.7")
    b = gw.connect("127.0.0.7")
    assert a.greeting.code == 220 and b.greeting.code == 220
    c = gw.connect("127.0.0.7")
    assert str(c.greeting) == CONN_REFUSED.format("127.0.0.7")
    assert c.is_closed()
    c.close()
    # Another client is not held back by this one.
    other = gw.connect("127.0.0.8")
    assert other.greeting.code == 220
    other.quit()
    mark = gw.gate.log_mark()
    a.quit()
    gw.gate.wait_log(r"disconnect from unknown\[127\.0\.0\.7\]", mark)
    # a's count came back, and so did the refused c's: one open (b), room for one more.
    d = gw.connect("127.0.0.7")
    assert d.greeting.code == 220
    e = gw.connect("127.0.0.7")
    assert str(e.greeting) == CONN_REFUSED.format("127.0.0.7")
    e.close()
    d.quit()
    b.quit()
    assert gw.counter("limited_concurrency") == 2


def test_messages_per_sender_and_domain(gate_factory, recorder, smtpgate_binary):
    gw = start(gate_factory, recorder, smtpgate_binary, "ratelimit",
               limit=["messages per sender 2/1h", "messages per sender_domain 3/1h"])
    ok = [250, 250, 354, 250]
    assert codes(send(gw, "127.0.0.9", "a+x@Flood.test", ["r@example.test"])) == ok
    assert codes(send(gw, "127.0.0.10", "a+x@flood.test", ["r@example.test"])) == ok
    mark = gw.gate.log_mark()
    [r] = send(gw, "127.0.0.9", "A+x@flood.test", ["r@example.test"])
    assert str(r) == "450 4.7.1 Error: too much mail from a+x@flood.test", r
    line = gw.gate.wait_log(r"tx from=<A\+x@flood.test> .*", mark).group(0)
    assert 'ratelimit="limit=messages per sender 2/1h key=a+x@flood.test"' in line, line
    assert "decided=ratelimit verdict=tempfail" in line, line
    # The domain's count went on with every MAIL: b@ is the fourth of flood.test.
    [r] = send(gw, "127.0.0.9", "b@flood.test", ["r@example.test"])
    assert str(r) == "450 4.7.1 Error: too much mail from flood.test", r
    assert codes(send(gw, "127.0.0.9", "b@calm.test", ["r@example.test"])) == ok
    # The null sender is not counted per sender.
    for _ in range(4):
        assert codes(send(gw, "127.0.0.9", "", ["r@example.test"])) == ok
    assert gw.counter("limited_messages") == 2
    assert len(recorder.wait_messages(7)) == 7


def test_messages_per_client(gate_factory, recorder, smtpgate_binary):
    gw = start(gate_factory, recorder, smtpgate_binary, "ratelimit",
               limit=["messages per client 1/1m"])
    with gw.connect("127.0.0.11") as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RSET").code == 250
        assert str(c.cmd("MAIL FROM:<t@example.test>")) == \
            "450 4.7.1 Error: too much mail from 127.0.0.11"
        c.quit()


def test_recipients_per_recipient_domain_and_sender(gate_factory, recorder, smtpgate_binary):
    gw = start(gate_factory, recorder, smtpgate_binary, "ratelimit",
               limit=["recipients per recipient_domain 3/1h", "recipients per sender 4/1h"])
    with gw.connect("127.0.0.12") as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        for i in range(3):
            assert c.cmd(f"RCPT TO:<u{i}@Busy.test>").code == 250
        r = c.cmd("RCPT TO:<u3@busy.test>")
        assert str(r) == "450 4.7.1 Error: too many recipients for busy.test", r
        # The fifth recipient of s@: over the sender's limit, whatever its domain.
        r = c.cmd("RCPT TO:<u@quiet.test>")
        assert str(r) == "450 4.7.1 Error: too many recipients from s@example.test", r
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: r\r\n\r\nx\r\n.\r\n")
        assert c.read_reply().code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert sorted(m.rcpts) == ["u0@Busy.test", "u1@Busy.test", "u2@Busy.test"]
    assert gw.counter("limited_recipients") == 2


def test_exempt_networks(gate_factory, recorder, smtpgate_binary):
    gw = start(gate_factory, recorder, smtpgate_binary, "ratelimit",
               limit=["connections per client 1/1h", "messages per client 1/1h"],
               exempt_networks=["127.0.0.13/32", "10.0.0.0/8"])
    for _ in range(3):
        assert codes(send(gw, "127.0.0.13", "s@example.test", ["r@example.test"]))[-1] == 250
    assert greeting(gw, "127.0.0.14").code == 220
    assert str(greeting(gw, "127.0.0.14")) == CONN_REFUSED.format("127.0.0.14")
    assert gw.counter("exempt") == 3
    assert gw.counter("limited_connections") == 1


def test_rule_errors_name_file_and_line(smtpgate_binary, recorder, workdir):
    so = plugin_so(smtpgate_binary, "ratelimit")
    for rule, want in [("messages per helo 3/1m", "unknown key"),
                       ("connections per sender 3/1m",
                        "connections are counted per client or client_network"),
                       ("messages per client 3/8d", r"the window is too long \(at most 7d\)")]:
        conf = workdir / "rl.conf"
        conf.write_text(f'listen = {{"{LOOPBACK}:{free_port()}"}}\n'
                        f'upstream main {{ address = "{recorder.address}" }}\n' +
                        plugin_section("ratelimit", so, limit=[rule]))
        r = run_config_test(smtpgate_binary, conf)
        assert r.returncode != 0, rule
        assert re.search(rf"rl\.conf:5: plugin ratelimit: 'limit' .*{want}", r.stderr), r.stderr


def test_login_limits_and_authenticated_clients(tls_sasl_postfix, certs, edge_gate_factory,
                                                smtpgate_binary):
    """With AUTH relayed to a real Postfix and Dovecot: a rule keyed by login counts the
    authenticated user's recipients; exempt_authenticated spares the user the client's
    limits, and greylisting (exempt_authenticated by default) lets it through at once."""
    postfix, ca = tls_sasl_postfix
    alice, password = "alice@example.test", USERS["alice@example.test"]
    mport = free_port()
    extra = (plugin_section("ratelimit", plugin_so(smtpgate_binary, "ratelimit"),
                            limit=["recipients per login 2/1h", "messages per client 1/1h"],
                            exempt_authenticated=True) +
             plugin_section("greylist", plugin_so(smtpgate_binary, "greylist")))
    gate = edge_gate_factory(
        [postfix.address], extra=extra, metrics_listen=f"{LOOPBACK}:{mport}",
        listeners={"sub": tls_listener(certs, tls="starttls")},
        upstream_tls={"tls": "required", "tls_ca_file": str(ca.cert),
                      "tls_verify_name": "upstream.example.test"})
    gw = Gw(gate, mport, "ratelimit")
    with smtplib.SMTP(*gate.addr("sub"), timeout=30) as s:
        s.ehlo("client.example.test")
        s.starttls(context=client_context(certs["ca"]))
        s.ehlo("client.example.test")
        assert s.login(alice, password)[0] == 235
        for _ in range(2):
            assert s.mail(alice)[0] == 250
            assert s.rcpt("user@example.test")[0] == 250
            s.rset()
        assert s.mail(alice)[0] == 250
        assert s.rcpt("user@example.test") == (
            450, b"4.7.1 Error: too many recipients from alice@example.test")
        s.rset()
    # Not authenticated: the client's own limit holds (its first MAIL was not counted).
    with smtplib.SMTP(*gate.addr("sub"), timeout=30) as s:
        s.ehlo("client.example.test")
        assert s.mail("x@example.test")[0] == 250
        s.rset()
        assert s.mail("x@example.test") == (450, b"4.7.1 Error: too much mail from 127.0.0.1")
    assert gw.counter("limited_recipients") == 1
    assert gw.counter("limited_messages") == 1
    # Two recipients reached greylist (the third was refused before it, in chain order).
    assert Gw(gate, mport, "greylist").counter("exempt") == 2
    assert Gw(gate, mport, "greylist").counter("greylisted_new") == 0


def test_state_option_errors_name_file_and_line(smtpgate_binary, recorder, workdir):
    gso = plugin_so(smtpgate_binary, "greylist")
    for opts, want in [
            ({"delay": 10, "retry_window": 5},
             r"greylist\.conf:\d+: plugin greylist: retry_window: must be longer than delay "
             r"\(10 s\)"),
            ({"redis": "localhost:6379"},
             r"greylist\.conf:\d+: plugin greylist: 'redis' is \"localhost:6379\": want a "
             r"numeric IPv4 or IPv6 address \(a name would need a blocking lookup\)"),
            ({"backend": "memcached"},
             r"greylist\.conf:\d+: plugin greylist: 'backend' is \"memcached\": must be "
             r"\"local\" or \"redis\""),
            ({"on_backend_failure": "maybe"},
             r"'on_backend_failure' is \"maybe\": must be \"open\" or \"closed\""),
            ({"exempt_networks": ["10.0.0.0/33"]},
             r"'exempt_networks' is \"10\.0\.0\.0/33\": prefix length over 32")]:
        conf = workdir / "greylist.conf"
        conf.write_text(f'listen = {{"{LOOPBACK}:{free_port()}"}}\n'
                        f'upstream main {{ address = "{recorder.address}" }}\n' +
                        plugin_section("greylist", gso, **opts))
        r = run_config_test(smtpgate_binary, conf)
        assert r.returncode != 0, opts
        assert re.search(want, r.stderr), r.stderr


# ---- greylisting, local backend ----

GREY = "451 4.7.1 Greylisted, please try again in {} seconds"


def rcpt_once(gw: Gw, source: str, sender: str, rcpt: str):
    with gw.connect(source) as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        c.quit()
    return r


def test_greylist_real_client_retries(gate_factory, recorder, smtpgate_binary):
    gw = start(gate_factory, recorder, smtpgate_binary, "greylist", delay=2, retry_window=60,
               auto_allowlist_after=0)
    msg = simple_message("greylisted").decode()
    attempts, refusals = 0, []
    t0 = time.monotonic()
    # A real client that retries, as an MTA's queue would (bounded: 20 tries, 0.5 s apart).
    while attempts < 20:
        attempts += 1
        try:
            with smtplib.SMTP(LOOPBACK, gw.gate.port, source_address=("127.0.0.20", 0),
                              timeout=10) as s:
                s.sendmail("sender+tag@example.test", ["user@example.test"], msg)
            break
        except smtplib.SMTPRecipientsRefused as e:
            refusals.append(e.recipients["user@example.test"])
            time.sleep(0.5)
    assert attempts < 20, refusals
    waited = time.monotonic() - t0
    assert waited >= 2, f"delivered after {waited:.2f}s, before the delay"
    assert refusals[0] == (451, b"4.7.1 Greylisted, please try again in 2 seconds")
    for code, text in refusals[1:]:
        assert code == 451 and re.fullmatch(rb"4\.7\.1 Greylisted, please try again in [12] "
                                            rb"seconds", text), text
    [m] = recorder.wait_messages(1)
    assert m.rcpts == ["user@example.test"]
    assert gw.counter("greylisted_new") == 1
    assert gw.counter("greylisted_early") == len(refusals) - 1
    assert gw.counter("passed_retry") == 1
    # Passed: the triplet now goes through at once, the sender's +extension aside.
    assert rcpt_once(gw, "127.0.0.20", "sender+other@example.test", "user@example.test").code \
        == 250
    assert gw.counter("passed_known") == 1
    # Another recipient is another triplet; so is another network.
    assert str(rcpt_once(gw, "127.0.0.20", "sender@example.test", "other@example.test")) == \
        GREY.format(2)
    assert str(rcpt_once(gw, "127.0.5.20", "sender@example.test", "user@example.test")) == \
        GREY.format(2)
    log = gw.gate.log_text()
    assert re.search(r'tx from=<sender\+tag@example\.test> .*greylist="retry net=127\.0\.0\.0/24"',
                     log), log[-3000:]


def test_greylist_retry_window_and_pass_lifetime(gate_factory, recorder, smtpgate_binary):
    gw = start(gate_factory, recorder, smtpgate_binary, "greylist", delay=0.5, retry_window=1.5,
               pass_lifetime=1.5, auto_allowlist_after=0)
    src, s, r = "127.0.0.21", "late@example.test", "user@example.test"
    assert str(rcpt_once(gw, src, s, r)) == GREY.format(1)
    time.sleep(2)
    # Past the window: the first attempt is forgotten, this one is a first attempt again.
    assert str(rcpt_once(gw, src, s, r)) == GREY.format(1)
    assert gw.counter("greylisted_new") == 2
    time.sleep(0.7)
    assert rcpt_once(gw, src, s, r).code == 250
    assert rcpt_once(gw, src, s, r).code == 250
    time.sleep(2)
    # The pass has expired: greylisted afresh.
    assert str(rcpt_once(gw, src, s, r)) == GREY.format(1)
    assert gw.counter("greylisted_new") == 3
    assert gw.counter("passed_retry") == 1
    assert gw.counter("passed_known") == 1


def test_greylist_auto_allowlist(gate_factory, recorder, smtpgate_binary):
    gw = start(gate_factory, recorder, smtpgate_binary, "greylist", delay=0.3, retry_window=60,
               auto_allowlist_after=2, auto_allowlist_lifetime=60)
    src = "127.0.0.22"
    for rcpt in ("a@example.test", "b@example.test"):
        assert rcpt_once(gw, src, "s@example.test", rcpt).code == 451
        time.sleep(0.5)
        assert rcpt_once(gw, src, "s@example.test", rcpt).code == 250
    # Two passed retries from 127.0.0.0/24: a triplet never seen passes at once.
    assert rcpt_once(gw, "127.0.0.23", "new@example.test", "c@example.test").code == 250
    assert gw.counter("passed_allowlisted") == 1
    assert gw.counter("passed_retry") == 2
    # Another network is not allowlisted.
    assert rcpt_once(gw, "127.0.9.23", "new@example.test", "c@example.test").code == 451


def test_greylist_exempt_network(gate_factory, recorder, smtpgate_binary):
    gw = start(gate_factory, recorder, smtpgate_binary, "greylist",
               exempt_networks=["127.0.0.24"])
    assert rcpt_once(gw, "127.0.0.24", "s@example.test", "a@example.test").code == 250
    assert str(rcpt_once(gw, "127.0.0.25", "s@example.test", "a@example.test")) == \
        GREY.format(300)
    assert gw.counter("exempt") == 1


def test_greylist_state_kept_over_a_reload(gate_factory, recorder, smtpgate_binary):
    """SIGHUP with the same state settings carries the local store over to the new
    instance: a first attempt before the reload is a retry after it.  Changing max_entries
    makes a new store, and the state is gone."""
    gw = start(gate_factory, recorder, smtpgate_binary, "greylist", delay=0.5, retry_window=60,
               auto_allowlist_after=0)
    src, s = "127.0.0.26", "s@example.test"
    assert rcpt_once(gw, src, s, "a@example.test").code == 451
    mark = gw.gate.log_mark()
    gw.gate.send_signal(signal.SIGHUP)
    gw.gate.wait_log(r"reloaded configuration, generation 2", mark)
    time.sleep(0.7)
    assert rcpt_once(gw, src, s, "a@example.test").code == 250
    assert gw.counter("passed_retry") == 1
    gw.gate.extra = gw.gate.extra.replace("}\n", "    max_entries = 5000\n}\n")
    gw.gate.write_config()
    mark = gw.gate.log_mark()
    gw.gate.send_signal(signal.SIGHUP)
    gw.gate.wait_log(r"reloaded configuration, generation 3", mark)
    assert str(rcpt_once(gw, src, s, "a@example.test")) == GREY.format(1)


# ---- a fleet on one Redis ----

def fleet(gate_factory, recorder, smtpgate_binary, redis, plugin: str, n: int = 2, **options):
    return [start(gate_factory, recorder, smtpgate_binary, plugin, backend="redis",
                  redis=redis.address, **options) for _ in range(n)]


@pytest.mark.time_limit(90)
def test_redis_limit_hit_through_one_holds_on_the_other(gate_factory, recorder, smtpgate_binary,
                                                        fresh_redis):
    a, b = fleet(gate_factory, recorder, smtpgate_binary, fresh_redis, "ratelimit",
                 limit=["connections per client 2/1h", "messages per sender 1/1h"])
    assert greeting(a, "127.0.0.30").code == 220
    assert greeting(b, "127.0.0.30").code == 220
    assert str(greeting(a, "127.0.0.30")) == CONN_REFUSED.format("127.0.0.30")
    assert str(greeting(b, "127.0.0.30")) == CONN_REFUSED.format("127.0.0.30")
    assert codes(send(a, "127.0.0.31", "one@example.test", ["r@example.test"]))[-1] == 250
    [r] = send(b, "127.0.0.32", "one@example.test", ["r@example.test"])
    assert str(r) == "450 4.7.1 Error: too much mail from one@example.test"
    assert a.counter("limited_connections") == 1 and b.counter("limited_connections") == 1
    assert b.counter("limited_messages") == 1
    keys = sorted(fresh_redis.command("KEYS", "rl:*"))
    assert keys == ["rl:connections:client:3600000:127.0.0.30",
                    "rl:connections:client:3600000:127.0.0.31",
                    "rl:connections:client:3600000:127.0.0.32",
                    "rl:messages:sender:3600000:one@example.test"], keys


@pytest.mark.time_limit(90)
def test_redis_greylist_passed_on_one_passes_on_the_other(gate_factory, recorder,
                                                          smtpgate_binary, fresh_redis):
    a, b = fleet(gate_factory, recorder, smtpgate_binary, fresh_redis, "greylist", delay=0.5,
                 retry_window=60, auto_allowlist_after=0)
    src, s, r = "127.0.0.33", "s@example.test", "u@example.test"
    assert str(rcpt_once(a, src, s, r)) == GREY.format(1)
    assert str(rcpt_once(b, src, s, r)) == GREY.format(1)  # early, on the other instance
    time.sleep(0.7)
    assert rcpt_once(b, src, s, r).code == 250
    assert rcpt_once(a, src, s, r).code == 250
    assert (a.counter("greylisted_new"), b.counter("greylisted_early")) == (1, 1)
    assert (b.counter("passed_retry"), a.counter("passed_known")) == (1, 1)


@pytest.mark.time_limit(120)
def test_redis_killed_fail_closed_and_open_then_resumes(gate_factory, recorder, smtpgate_binary,
                                                         fresh_redis):
    closed = start(gate_factory, recorder, smtpgate_binary, "ratelimit", backend="redis",
                   redis=fresh_redis.address, redis_timeout=0.5, on_backend_failure="closed",
                   limit=["messages per sender 100/1h"])
    opened = start(gate_factory, recorder, smtpgate_binary, "greylist", backend="redis",
                   redis=fresh_redis.address, redis_timeout=0.5, on_backend_failure="open",
                   delay=300)
    assert codes(send(closed, "127.0.0.40", "s@example.test", ["r@example.test"]))[-1] == 250
    assert rcpt_once(opened, "127.0.0.40", "s@example.test", "r@example.test").code == 451
    fresh_redis.kill()
    t0 = time.monotonic()
    [r] = send(closed, "127.0.0.40", "s@example.test", ["r@example.test"])
    assert str(r) == "451 4.3.0 Error: rate limit state unavailable, try again later"
    assert rcpt_once(opened, "127.0.0.40", "s@example.test", "r@example.test").code == 250
    assert time.monotonic() - t0 < 5
    assert closed.counter("backend_failures") == 1
    assert opened.counter("backend_failures") == 1
    assert "rate limit state (redis) failed: refused (fail closed)" in closed.gate.log_text()
    assert "greylist state (redis) failed: passed (fail open)" in opened.gate.log_text()
    fresh_redis.start()
    # Mail resumes once Redis is back (a failed connection is retried after a second).
    def delivered():
        return codes(send(closed, "127.0.0.40", "s@example.test", ["r@example.test"]))[-1] == 250
    wait_until(delivered, 15, "mail through the fail-closed instance after Redis returned")
    # And greylisting again (each worker's loop retries a second after its failure).
    seen = []
    def greylisting():
        r = rcpt_once(opened, "127.0.0.41", "s@example.test", f"r{len(seen)}@example.test")
        seen.append(str(r))
        return r.code == 451
    wait_until(greylisting, 15, "greylisting after Redis returned")
    assert seen[-1] == GREY.format(300)
    assert all(r.startswith("250 ") for r in seen[:-1]), seen


@pytest.mark.time_limit(120)
def test_redis_paused_fails_within_the_deadline(gate_factory, recorder, smtpgate_binary,
                                                 fresh_redis):
    # One worker: one event loop, so one connection to Redis, whose fate the test follows.
    gw = start(gate_factory, recorder, smtpgate_binary, "ratelimit", settings={"workers": 1},
               backend="redis", redis=fresh_redis.address, redis_timeout=1.5,
               on_backend_failure="closed", limit=["connections per client 100/1h"])
    assert greeting(gw, "127.0.0.42").code == 220  # the connection to Redis is open
    fresh_redis.pause()
    try:
        t0 = time.monotonic()
        r = greeting(gw, "127.0.0.42")
        elapsed = time.monotonic() - t0
        assert str(r) == "421 4.3.0 Error: rate limit state unavailable, try again later"
        assert 1.4 <= elapsed < 4, f"refused after {elapsed:.2f}s with redis_timeout = 1.5"
        # Just after a timeout the loop does not ask the backend again for a moment: at once,
        # not after another redis_timeout.
        t0 = time.monotonic()
        assert greeting(gw, "127.0.0.42").code == 421
        assert time.monotonic() - t0 < 1.0
        assert gw.counter("backend_failures") == 2
    finally:
        fresh_redis.resume()
    wait_until(lambda: greeting(gw, "127.0.0.42").code == 220, 15, "connections after resume")


@pytest.mark.time_limit(90)
def test_redis_password_and_database(gate_factory, recorder, smtpgate_binary, workbase):
    if not redis_server_path():
        pytest.skip("redis-server not installed")
    d = Path(tempfile.mkdtemp(dir=workbase))
    r = RedisServer(d, password="s3cret").start()
    try:
        good = start(gate_factory, recorder, smtpgate_binary, "ratelimit", backend="redis",
                     redis=r.address, redis_password="s3cret", redis_db=3, key_prefix="fleet1",
                     limit=["connections per client 5/1m"])
        bad = start(gate_factory, recorder, smtpgate_binary, "ratelimit", backend="redis",
                    redis=r.address, redis_password="wrong", on_backend_failure="closed",
                    limit=["connections per client 5/1m"])
        assert greeting(good, "127.0.0.43").code == 220
        assert r.command("KEYS", "*", db=3) == ["fleet1:connections:client:60000:127.0.0.43"]
        assert r.command("KEYS", "*") == []
        assert str(greeting(bad, "127.0.0.43")) == \
            "421 4.3.0 Error: rate limit state unavailable, try again later"
        assert bad.counter("backend_failures") == 1
    finally:
        r.stop()


@pytest.mark.time_limit(90)
def test_redis_over_a_unix_socket(gate_factory, recorder, smtpgate_binary, workbase):
    if not redis_server_path():
        pytest.skip("redis-server not installed")
    d = Path(tempfile.mkdtemp(prefix="sgredis-"))
    r = RedisServer(d, unixsocket=str(d / "r.sock")).start()
    try:
        gw = start(gate_factory, recorder, smtpgate_binary, "greylist", backend="redis",
                   redis=f"unix:{d / 'r.sock'}", on_backend_failure="closed", delay=60)
        assert str(rcpt_once(gw, "127.0.0.44", "s@example.test", "u@example.test")) == \
            GREY.format(60)
        [key] = r.command("KEYS", "gl:f:*")
        assert key == "gl:f:127.0.0.0/24/s@example.test/u@example.test"
        assert gw.counter("backend_failures") == 0
    finally:
        r.stop()
        shutil.rmtree(d, ignore_errors=True)
