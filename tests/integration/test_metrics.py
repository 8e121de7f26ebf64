"""/metrics of a running smtpgate after real traffic: `promtool check metrics` finds no
problem, every family has HELP and TYPE, and each counter and histogram moves by exactly
what the test sent (one GTUBE refusal through the rules plugin counts once, not twice).
The shipped alert rules pass `promtool check rules`, and every metric the alert rules and
the Grafana dashboard name is one smtpgate serves."""

from __future__ import annotations

import json
import re
import shutil
import signal
import smtplib
import subprocess
import urllib.request
from pathlib import Path

import pytest

from edge import certs, client_context, edge_gate_factory, tls_listener  # noqa: F401
from gate import REPO, plugin_dir, plugin_section
from helpers import codes
from netutil import LOOPBACK, free_port, wait_until
from smtpclient import simple_message

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
DASHBOARD = REPO / "etc" / "grafana" / "smtpgate.json"
ALERTS = REPO / "etc" / "prometheus" / "smtpgate-alerts.yml"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def promtool() -> str:
    p = shutil.which("promtool")
    if not p:
        pytest.skip("promtool not installed (Debian package prometheus)")
    return p


@pytest.fixture
def rules_so(smtpgate_binary) -> Path:
    so = plugin_dir(smtpgate_binary).parent.parent / "plugins" / "rules.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    return so


class Scrape:
    """One /metrics answer: the text, the TYPE of each family, each sample's value."""

    def __init__(self, text: str):
        self.text = text
        self.types: dict[str, str] = {}
        self.helps: set[str] = set()
        self.samples: dict[tuple[str, frozenset], float] = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                self.types[name] = kind
            elif line.startswith("# HELP "):
                self.helps.add(line.split(" ", 3)[2])
            else:
                m = SAMPLE.match(line)
                assert m, f"not a sample line: {line!r}"
                labels = frozenset(LABEL.findall(m.group(3) or ""))
                self.samples[(m.group(1), labels)] = float(m.group(4))

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str) -> float:
        """The family's sum over every label set (what PromQL's sum() gives)."""
        return sum(v for (n, _), v in self.samples.items() if n == name)

    def family_of(self, sample: str) -> str:
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample[: -len(suffix)]
            if sample.endswith(suffix) and self.types.get(base) == "histogram":
                return base
        return sample


def scrape(port: int) -> Scrape:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return Scrape(r.read().decode())


def start_gate(gate_factory, recorder, rules_so, **settings):
    port = free_port()
    extra = plugin_section("rules", rules_so, files=[str(REPO / "rules" / "default.rules")])
    gate = gate_factory([recorder.address], extra=extra, metrics_listen=f"{LOOPBACK}:{port}",
                        **settings)
    recorder.wait_idle()
    gate.wait_log(r"upstream \S+ is up")
    return gate, port


def send(gate, subject: str, body: str = "hello\r\n") -> int:
    with gate.connect() as c:
        c.ehlo("mail.example.test")
        code = codes(c.mail_transaction("s@example.test", ["r@example.test"],
                                        simple_message(subject, body)))[-1]
        c.quit()
    return code


def traffic(gate, port: int) -> tuple[Scrape, Scrape]:
    """Three accepted messages and one GTUBE the rules plugin refuses, each in a session
    of its own: the scrapes before and after, once all four sessions are closed."""
    before = scrape(port)
    assert [send(gate, f"m{i}") for i in range(3)] == [250, 250, 250]
    assert send(gate, "gtube", f"test {GTUBE} test\r\n") == 554
    gate.wait_log(r"(?s)(disconnect from .*){4}")
    wait_until(lambda: scrape(port).total("smtpgate_connections_total")
               - before.total("smtpgate_connections_total") == 4, timeout=15,
               what="four connections counted")
    return before, scrape(port)


def test_promtool_finds_no_problem_in_live_output(gate_factory, recorder, rules_so):
    tool = promtool()
    gate, port = start_gate(gate_factory, recorder, rules_so)
    _, after = traffic(gate, port)
    check = subprocess.run([tool, "check", "metrics"], input=after.text, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), \
        check.stdout + check.stderr
    for sample, _ in after.samples:
        family = after.family_of(sample)
        assert family in after.types and family in after.helps, sample
        if after.types[family] == "counter":
            assert family.endswith("_total"), family


def test_one_gtube_counts_one_verdict(gate_factory, recorder, rules_so):
    """The host counts the rules plugin's reject once; the plugin no longer counts its own
    verdicts into a series of the same name."""
    gate, port = start_gate(gate_factory, recorder, rules_so)
    before, after = traffic(gate, port)

    def rejects(scr: Scrape) -> float:
        """Every series that counts the rules instance's rejects, under any name."""
        return sum(v for (name, labels), v in scr.samples.items()
                   if "rules" in name and name.endswith(("verdict_reject", "verdict_reject_total"))
                   or dict(labels) in ({"plugin": "rules", "verdict": "reject"},
                                       {"plugin": "rules", "event": "verdict_reject"}))

    assert rejects(after) - rejects(before) == 1
    verdict = ("smtpgate_plugin_verdicts_total", {"plugin": "rules", "verdict": "reject"})
    assert after.value(verdict[0], **verdict[1]) - before.value(verdict[0], **verdict[1]) == 1
    assert after.value(verdict[0], plugin="rules", verdict="accept") == 0
    # nothing else in the output moved by one GTUBE twice: no per-verdict name survives
    assert not [k for k in after.samples if "verdict" in k[0] and k[0] != verdict[0]]
    assert not [k for k in after.samples if "verdict" in dict(k[1]).get("event", "")]


def test_gauges_for_open_sessions_and_upstream_health(gate_factory, recorder, rules_so):
    gate, port = start_gate(gate_factory, recorder, rules_so, probe_interval=1)
    up = recorder.address
    first = scrape(port)
    assert first.types.get("smtpgate_sessions_open") == "gauge"
    assert first.value("smtpgate_upstream_up", upstream=up) == 1
    assert first.value("smtpgate_upstream_capability", upstream=up, capability="PIPELINING") == 1
    assert first.value("smtpgate_config_generation") == 1
    assert first.types.get("smtpgate_workpool_queued_jobs") == "gauge"
    with gate.connect() as c, gate.connect() as d:
        c.ehlo("one.example.test")
        d.ehlo("two.example.test")
        assert scrape(port).value("smtpgate_sessions_open") == 2
        c.quit()
        d.quit()
    wait_until(lambda: scrape(port).value("smtpgate_sessions_open") == 0, timeout=15,
               what="both sessions closed")
    mark = gate.log_mark()
    recorder.stop()
    gate.wait_log(r"upstream \S+ is down", mark)
    assert scrape(port).value("smtpgate_upstream_up", upstream=up) == 0
    gate.send_signal(signal.SIGHUP)
    gate.wait_log(r"reloaded configuration, generation 2", mark)
    later = scrape(port)
    assert later.value("smtpgate_upstream_up", upstream=up) == 0
    assert later.value("smtpgate_config_generation") == 2
    assert later.value("smtpgate_reloads_total", result="accepted") == 1
    assert later.value("smtpgate_reloads_total", result="refused") == 0


def test_counters_and_histograms_move_by_what_was_sent(gate_factory, recorder, rules_so):
    gate, port = start_gate(gate_factory, recorder, rules_so)
    up = recorder.address
    before, after = traffic(gate, port)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("smtpgate_connections_total", listener=f"{LOOPBACK}:{gate.port}") == 4
    assert after.total("smtpgate_connections_total") - before.total("smtpgate_connections_total") == 4
    assert moved("smtpgate_transactions_total", result="accepted") == 3
    assert moved("smtpgate_transactions_total", result="refused") == 1
    assert moved("smtpgate_transactions_total", result="rejected") == 0
    assert moved("smtpgate_plugin_events_total", plugin="rules", event="messages") == 4
    assert after.value("smtpgate_sessions_open") == 0
    assert moved("smtpgate_session_duration_seconds_count") == 4
    assert moved("smtpgate_message_size_bytes_count") == 4
    assert moved("smtpgate_plugin_duration_seconds_count", plugin="rules", stage="eom") == 4
    assert moved("smtpgate_upstream_message_reply_seconds_count", upstream=up) == 3
    assert moved("smtpgate_upstream_message_replies_total", upstream=up, **{"class": "2xx"}) == 3
    assert moved("smtpgate_upstream_message_replies_total", upstream=up, **{"class": "5xx"}) == 0
    assert moved("smtpgate_plugin_timeouts_total", plugin="rules") == 0
    # a histogram's buckets are cumulative and end in +Inf, which equals _count
    buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in after.samples.items()
                      if k[0] == "smtpgate_message_size_bytes_bucket"))
    assert buckets[-1] == (float("inf"), after.value("smtpgate_message_size_bytes_count"))
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    assert after.value("smtpgate_message_size_bytes_sum") > 0


def rules_gate(gate_factory, recorder, rules_so, workdir, text: str):
    rules = workdir / "symbols.rules"
    rules.write_text(text)
    port = free_port()
    gate = gate_factory([recorder.address], metrics_listen=f"{LOOPBACK}:{port}",
                        extra=plugin_section("rules", rules_so, files=[str(rules)]))
    recorder.wait_idle()
    return gate, port


def transactions(gate, messages: list[tuple[str, str, str]]) -> None:
    """One session, a transaction for each (sender, subject, body); every one delivered."""
    with gate.connect() as c:
        c.ehlo("mail.example.test")
        for sender, subject, body in messages:
            assert codes(c.mail_transaction(sender, ["r@example.test"],
                                            simple_message(subject, body)))[-1] == 250
        c.quit()


def test_symbols_counted_once_per_transaction(gate_factory, recorder, rules_so, workdir):
    """smtpgate_symbols_total counts each transaction once for every symbol it ended
    with: a rule that matches three times in a body is one; another transaction of the
    same session counts again; a transaction without symbols counts nowhere."""
    gate, port = rules_gate(gate_factory, recorder, rules_so, workdir,
                            "rule SUBJ_OFFER header Subject /offer/ score 1\n"
                            "rule FROM_X mail_from /^x@/ score 0.5\n"
                            "rule BODY_WORD body /word/ score 0.1\n")
    first = scrape(port)
    assert first.types["smtpgate_symbols_total"] == "counter"
    assert "smtpgate_symbols_total" in first.helps
    assert [k for k in first.samples if k[0] == "smtpgate_symbols_total"] == \
        [("smtpgate_symbols_total", frozenset({("symbol", "(other)")}))]
    transactions(gate, [("x@example.test", "an offer", "word\r\nword\r\nword\r\n"),
                        ("y@example.test", "another offer", "hello\r\n"),
                        ("z@example.test", "plain", "hello\r\n")])
    gate.wait_log(r"disconnect from ")
    after = scrape(port)
    got = {dict(k[1])["symbol"]: v for k, v in after.samples.items()
           if k[0] == "smtpgate_symbols_total"}
    assert got == {"SUBJ_OFFER": 2, "FROM_X": 1, "BODY_WORD": 1, "(other)": 0}, got
    assert after.value("smtpgate_transactions_total", result="accepted") == 3


def test_symbol_names_bounded_with_other(gate_factory, recorder, rules_so, workdir):
    """At most 500 symbol names get a series; later names count in symbol="(other)".
    510 rules, 250 a message (a connection holds at most 256 symbols), one message a
    session: the first two messages' 500 names get series, the third's 10 are other."""
    text = "".join(f"rule CAP_{i:03d} header Subject /^cap{i // 250}$/ score 0.01\n"
                   for i in range(510))
    gate, port = rules_gate(gate_factory, recorder, rules_so, workdir, text)
    for n in range(3):
        transactions(gate, [("s@example.test", f"cap{n}", "hello\r\n")])
    wait_until(lambda: scrape(port).value("smtpgate_transactions_total", result="accepted")
               == 3, timeout=15, what="three transactions counted")
    after = scrape(port)
    got = {dict(k[1])["symbol"]: v for k, v in after.samples.items()
           if k[0] == "smtpgate_symbols_total"}
    assert got == {**{f"CAP_{i:03d}": 1 for i in range(500)}, "(other)": 10}, \
        sorted(set(got) ^ ({f"CAP_{i:03d}" for i in range(500)} | {"(other)"}))
    check = subprocess.run([promtool(), "check", "metrics"], input=after.text,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), \
        check.stdout + check.stderr


def metric_names(text: str) -> set[str]:
    return set(re.findall(r"\b(smtpgate_[a-z0-9_]+)", text))


def test_shipped_alerts_and_dashboard_name_only_served_metrics(gate_factory, recorder,
                                                               rules_so):
    tool = promtool()
    check = subprocess.run([tool, "check", "rules", str(ALERTS)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout, check.stdout
    gate, port = start_gate(gate_factory, recorder, rules_so)
    assert send(gate, "one") == 250
    served = scrape(port)
    families = set(served.types)
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    for source, text in (("dashboard", "\n".join(exprs)), ("alerts", ALERTS.read_text())):
        names = metric_names(text)
        assert names, source
        missing = {n for n in names if served.family_of(n) not in families}
        assert not missing, f"{source} names metrics smtpgate does not serve: {missing}"


def test_connections_by_listener_and_tls_version(recorder, certs, edge_gate_factory):
    """A named STARTTLS listener beside the plain one: each counts its own connections,
    and a STARTTLS session counts once under its listener and the version it got."""
    port = free_port()
    gate = edge_gate_factory([recorder.address], metrics_listen=f"{LOOPBACK}:{port}",
                             listeners={"sub": tls_listener(certs, tls="starttls")})
    recorder.wait_idle()
    plain = f"{LOOPBACK}:{gate.port}"
    first = scrape(port)
    assert first.value("smtpgate_connections_total", listener="sub") == 0
    assert first.value("smtpgate_connections_total", listener=plain) == 0
    host, sub_port = gate.addr("sub")
    with smtplib.SMTP(host, sub_port, timeout=20) as s:
        s.ehlo("client.example.test")
        s.starttls(context=client_context(certs["ca"]))
        version = s.sock.version()
        s.ehlo("client.example.test")
        s.sendmail("s@example.test", ["user@example.test"], simple_message("over-tls"))
    with smtplib.SMTP(LOOPBACK, gate.port, timeout=20) as s:
        s.ehlo("client.example.test")
        s.sendmail("s@example.test", ["user@example.test"], simple_message("plain"))
    wait_until(lambda: scrape(port).value("smtpgate_sessions_open") == 0
               and scrape(port).total("smtpgate_connections_total") == 2, timeout=15,
               what="both sessions closed")
    after = scrape(port)
    assert after.value("smtpgate_connections_total", listener="sub") == 1
    assert after.value("smtpgate_connections_total", listener=plain) == 1
    assert version in ("TLSv1.2", "TLSv1.3")
    assert after.value("smtpgate_tls_sessions_total", listener="sub", version=version) == 1
    assert after.total("smtpgate_tls_sessions_total") == 1
    assert after.types["smtpgate_tls_sessions_total"] == "counter"


def test_metrics_port_in_use_stops_the_start_cleanly(recorder, smtpgate_binary, workdir):
    """A metrics_listen another socket holds: smtpgate says why and exits 1, and what it had
    opened before is given back (no sanitizer report of a leak on that path)."""
    import socket

    from gate import SANITIZER_MARKERS, Gate, GateStartError

    holder = socket.socket()
    holder.bind((LOOPBACK, 0))
    holder.listen(1)
    taken = holder.getsockname()[1]
    try:
        g = Gate(smtpgate_binary, workdir, [recorder.address],
                 {"metrics_listen": f"{LOOPBACK}:{taken}"}, name="metrics-taken")
        with pytest.raises(GateStartError):
            g.start(attempts=1)
        log = g.log_text()
        assert f"metrics_listen {LOOPBACK}:{taken}: cannot listen: Address already in use" in log, log
        assert g.returncode == 1
        assert not [m for m in SANITIZER_MARKERS if m in log], log
    finally:
        holder.close()
