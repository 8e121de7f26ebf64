"""The status page at / of the metrics listener, loaded in headless Chromium (Debian's
chromium) against a smtpgate that has passed and refused mail: every number the page
shows equals the same sample of /metrics, its recent transactions are the ones sent
(newest first), it loads nothing from anywhere else, and it is read-only and off when
the admin turns it off.

Chromium runs with --dump-dom and a virtual time budget, so the page's first refresh
(its fetches of /metrics and /status.json) completes before the DOM is printed; it
resolves no name at all (--host-resolver-rules maps every name but 127.0.0.1 to NOTFOUND) and its
background services are off, so nothing leaves the machine.  One Chromium run and one
smtpgate serve the checks of the page.
"""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gate import REPO, plugin_dir, plugin_section
from helpers import codes
from netutil import LOOPBACK, free_port, wait_until
from smtpclient import simple_message
from test_metrics import GTUBE, Scrape, scrape

SAMPLE_KEY = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def chromium() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.skip("chromium not installed (Debian package chromium)")
    return path


def dump_dom(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, as headless Chromium sees it."""
    r = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
         "--metrics-recording-only", "--no-pings", "--disable-features=Translate,MediaRouter",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", f"--user-data-dir={profile}",
         "--virtual-time-budget=3000", "--dump-dom", url],
        capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


class Dom(html.parser.HTMLParser):
    """Elements with a data-metric attribute and their text; the recent-transaction rows."""

    def __init__(self, text: str):
        super().__init__()
        self.metrics: list[tuple[str, str]] = []
        self.rows: list[list[str]] = []
        self.symbol_rows: list[list[str]] = []
        self.by_id: dict[str, str] = {}
        self.body_attrs: dict[str, str] = {}
        self._open: list[list] = []  # [tag, metric key or None, id or None, text]
        self._row: list[str] | None = None
        self._row_kind: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body_attrs = {k: v or "" for k, v in attrs}
        if tag == "tr" and {"tx", "sym"} & set((a.get("class") or "").split()):
            self._row = []
            self._row_kind = a.get("class")
        if tag == "td" and self._row is not None:
            self._cell = []
        self._open.append([tag, a.get("data-metric"), a.get("id"), []])

    def handle_endtag(self, tag):
        while self._open:
            t, metric, ident, text = self._open.pop()
            joined = "".join(text).strip()
            if metric is not None:
                self.metrics.append((metric, joined))
            if ident is not None:
                self.by_id[ident] = joined
            for outer in self._open:
                outer[3].append("".join(text))
            if t == tag:
                break
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            (self.symbol_rows if self._row_kind == "sym" else self.rows).append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._open:
            self._open[-1][3].append(data)
        if self._cell is not None:
            self._cell.append(data)


def metric_value(scr: Scrape, key: str) -> float:
    m = SAMPLE_KEY.match(key)
    assert m, key
    return scr.value(m.group(1), **dict(LABEL.findall(m.group(2) or "")))


def send(gate, sender: str, body: str = "hello\r\n") -> int:
    with gate.connect() as c:
        c.ehlo("mail.example.test")
        code = codes(c.mail_transaction(sender, ["r@example.test"],
                                        simple_message("status", body)))[-1]
        c.quit()
    return code


@pytest.fixture
def served(gate_factory, recorder, smtpgate_binary, workdir):
    """A smtpgate with the rules plugin and the metrics listener, after 3 accepted
    messages and 1 GTUBE refusal, each in its own session.  Two scored rules add
    their symbols: STATUS_SUBJECT to every message, STATUS_S1 to s1's only."""
    so = plugin_dir(smtpgate_binary).parent.parent / "plugins" / "rules.so"
    port = free_port()
    scored = workdir / "scored.rules"
    scored.write_text("rule STATUS_SUBJECT header Subject /^status$/ score 0.5\n"
                      "rule STATUS_S1 mail_from /^s1@/ score 0.25\n")
    gate = gate_factory([recorder.address], metrics_listen=f"{LOOPBACK}:{port}",
                        status_recent=3,
                        extra=plugin_section("rules", so,
                                             files=[str(REPO / "rules" / "default.rules"),
                                                    str(scored)]))
    recorder.wait_idle()
    gate.wait_log(r"upstream \S+ is up")
    assert [send(gate, f"s{i}@example.test") for i in range(3)] == [250, 250, 250]
    assert send(gate, "spammer@example.test", f"test {GTUBE} test\r\n") == 554
    wait_until(lambda: scrape(port).value("smtpgate_sessions_open") == 0
               and scrape(port).total("smtpgate_connections_total") >= 4,
               timeout=15, what="four sessions closed")
    return gate, port


def test_page_numbers_equal_metrics(served, workdir, recorder):
    gate, port = served
    before = scrape(port)
    dom = Dom(dump_dom(f"http://{LOOPBACK}:{port}/", workdir / "chromium"))
    after = scrape(port)
    assert dom.body_attrs.get("data-rendered") == "1", "the page's first refresh did not finish"
    assert before.text == after.text, "the metrics moved while the page loaded"
    shown = dict(dom.metrics)
    # The page shows the series a gateway's admin looks at first, each as /metrics has it.
    for key in ['smtpgate_transactions_total{result="accepted"}',
                'smtpgate_transactions_total{result="refused"}',
                "smtpgate_sessions_open",
                "smtpgate_config_generation",
                f'smtpgate_upstream_message_replies_total{{upstream="{recorder.address}",class="2xx"}}',
                'smtpgate_plugin_events_total{plugin="rules",event="rule_gtube"}',
                'smtpgate_plugin_verdicts_total{plugin="rules",verdict="reject"}']:
        assert key in shown, (key, sorted(shown))
    assert shown['smtpgate_transactions_total{result="accepted"}'] == "3"
    assert dom.by_id["connections"] == f"{after.total('smtpgate_connections_total'):g}" == "4"
    assert shown['smtpgate_transactions_total{result="refused"}'] == "1"
    assert shown['smtpgate_plugin_verdicts_total{plugin="rules",verdict="reject"}'] == "reject 1"
    assert shown['smtpgate_plugin_events_total{plugin="rules",event="messages"}'] == "messages 4"
    assert shown['smtpgate_plugin_events_total{plugin="rules",event="rule_gtube"}'] == "1"
    # Symbols that hit most: each transaction once per symbol, as /metrics counts them
    # (default.rules' MISSING_DATE on all four, its GTUBE on the refused one); the
    # "(other)" series is at 0 and not shown.
    symbols = {k: v for k, v in shown.items() if k.startswith("smtpgate_symbols_total")}
    assert symbols == {'smtpgate_symbols_total{symbol="STATUS_SUBJECT"}': "4",
                       'smtpgate_symbols_total{symbol="MISSING_DATE"}': "4",
                       'smtpgate_symbols_total{symbol="GTUBE"}': "1",
                       'smtpgate_symbols_total{symbol="STATUS_S1"}': "1"}, symbols
    assert after.value("smtpgate_symbols_total", symbol="(other)") == 0
    # most first (ties by name), each with its share of the 4 transactions
    assert dom.symbol_rows == [["MISSING_DATE", "4", "100.0%"], ["STATUS_SUBJECT", "4", "100.0%"],
                               ["GTUBE", "1", "25.0%"], ["STATUS_S1", "1", "25.0%"]]
    for key, text in dom.metrics:
        want = metric_value(after, key)
        if key.startswith("smtpgate_upstream_up"):
            assert text == ("up" if want == 1 else "down"), (key, text)
        elif key.startswith(("smtpgate_plugin_verdicts_total", "smtpgate_plugin_events_total")) \
                and " " in text:
            assert text.rsplit(" ", 1)[1] == f"{want:g}", (key, text)
        else:
            assert text == f"{want:g}", (key, text, want)
    assert shown[f'smtpgate_upstream_up{{upstream="{recorder.address}"}}'] == "up"
    status = json.loads(urllib.request.urlopen(
        f"http://{LOOPBACK}:{port}/status.json", timeout=10).read())
    assert dom.by_id["version"] == (REPO / "VERSION").read_text().strip() == status["version"]

    # status_recent = 3: the last three transactions, newest first, as they ended.
    assert [r[2] for r in dom.rows] == ["<spammer@example.test>", "<s2@example.test>",
                                        "<s1@example.test>"]
    assert [r[4] for r in dom.rows] == ["refused", "accepted", "accepted"]
    assert dom.rows[0][5] == "rules" and dom.rows[0][6].startswith("554 5.7.1")
    assert all(r[1].endswith("[127.0.0.1]") and r[3] == "<r@example.test>" for r in dom.rows)
    assert [t["from"] for t in status["recent"]] == ["spammer@example.test", "s2@example.test",
                                                      "s1@example.test"]


def test_page_is_self_contained_and_read_only(served):
    _, port = served
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/", timeout=10) as r:
        page = r.read().decode()
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert page == (REPO / "daemon" / "status_page.html").read_text()
    # Nothing is loaded from elsewhere: no src or href, no URL with a scheme or a host.
    assert not re.search(r"\b(src|href)\s*=", page, re.I)
    assert not re.findall(r"https?://", page)
    for method in ("POST", "PUT", "DELETE"):
        req = urllib.request.Request(f"http://{LOOPBACK}:{port}/", data=b"x", method=method)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code in (405, 501), (method, e.value.code)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://{LOOPBACK}:{port}/other", timeout=10)
    assert e.value.code == 404


def test_status_page_off(gate_factory, recorder):
    port = free_port()
    gate_factory([recorder.address], metrics_listen=f"{LOOPBACK}:{port}", status_page=False)
    for path in ("/", "/status.json"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=10)
        assert e.value.code == 404, path
    assert scrape(port).types.get("smtpgate_connections_total") == "counter"
