"""Fixtures for smtpgate's integration tests: real clients, real upstreams, loopback only.

Upstreams (all started by fixtures, each on its own free port of 127.0.0.1):
  recorder        aiosmtpd-based recording upstream (recorder.py), scriptable
  sink            Postfix's smtp-sink, capturing each transaction to a file
  postfix         a private Postfix instance (one per test session)
smtpgate:
  gate_factory    start(upstreams, **settings) -> Gate; every gate started is
                  stopped with SIGTERM at teardown and must exit 0 with no
                  sanitizer report in its stderr
  gate            one smtpgate in front of `recorder` with default settings

Time limits: pytest-timeout is not required.  Each test's setup, call and
teardown run under a SIGALRM deadline (60 s, or @pytest.mark.time_limit(N)),
so a hung socket or process fails that test instead of the whole run; every
socket also carries its own timeout.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from gate import Gate, find_binary
from postfix_instance import PostfixInstance, postfix_available
from recorder import Recorder, Script
from sink import SmtpSink, smtp_sink_path

DEFAULT_TIME_LIMIT = 60
FIXTURE_TIME_LIMIT = 90


class TestTimeLimit(Exception):
    """Raised in the test's main thread when its deadline passes."""

    __test__ = False


def pytest_configure(config):
    config.addinivalue_line("markers", "time_limit(seconds): deadline for one test's call phase")


def _limit_for(item, phase: str) -> float:
    marker = item.get_closest_marker("time_limit")
    base = float(marker.args[0]) if marker else DEFAULT_TIME_LIMIT
    return base if phase == "call" else max(base, FIXTURE_TIME_LIMIT)


def _run_with_deadline(item, phase: str):
    limit = _limit_for(item, phase)

    def expired(signum, frame):
        raise TestTimeLimit(f"{item.nodeid}: {phase} exceeded its {limit:.0f}s time limit")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _run_with_deadline(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _run_with_deadline(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield from _run_with_deadline(item, "teardown")


# ---- folders ----

@pytest.fixture(scope="session")
def workbase():
    """A session folder under the system temp dir, readable by the unprivileged
    users smtp-sink and Postfix's delivery agents run as (pytest's own tmp_path
    lives under a 0700 folder they cannot enter)."""
    path = Path(tempfile.mkdtemp(prefix="smtpgate-it-"))
    path.chmod(0o755)
    yield path
    if not os.environ.get("SMTPGATE_KEEP_TMP"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def workdir(workbase, request) -> Path:
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name)[:80]
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workbase))
    path.chmod(0o755)
    return path


# ---- upstreams ----

@pytest.fixture
def recorder_factory():
    """start(script=None, **script_fields) -> a running Recorder; all stopped at teardown."""
    started: list[Recorder] = []

    def start(script: Script | None = None, port: int = 0, **fields) -> Recorder:
        rec = Recorder(script or Script(**fields), port=port).start()
        started.append(rec)
        return rec

    yield start
    for rec in started:
        rec.stop()


@pytest.fixture
def recorder(recorder_factory) -> Recorder:
    return recorder_factory()


@pytest.fixture
def sink_factory(workdir):
    if not smtp_sink_path():
        pytest.skip("smtp-sink not installed (Debian package postfix)")
    started: list[SmtpSink] = []

    def start(*options: str) -> SmtpSink:
        s = SmtpSink(workdir, options).start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def sink(sink_factory) -> SmtpSink:
    return sink_factory()


@pytest.fixture(scope="session")
def postfix(workbase):
    if not postfix_available():
        pytest.skip("Postfix not installed")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance needs root")
    pf = PostfixInstance(workbase).start()
    yield pf
    pf.stop()


# ---- smtpgate ----

@pytest.fixture(scope="session")
def smtpgate_binary() -> Path:
    b = find_binary()
    if b is None:
        pytest.skip("smtpgate binary not built: set SMTPGATE_BIN or run make "
                    "(looked for build/asan/smtpgate and build/release/smtpgate)")
    return b


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, show the tail of each smtpgate's stderr next to the traceback."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for g in getattr(item, "smtpgate_gates", []):
            rep.sections.append((f"smtpgate stderr ({g.stderr_path.name}, tail)",
                                 g.log_text()[-4000:]))


@pytest.fixture
def gate_factory(smtpgate_binary, workdir, request):
    """start(upstreams, binary=None, args=(), env=None, listen_via_override=False,
    **settings) -> running Gate.

    Teardown: every gate still running gets SIGTERM; each must exit with
    status 0 and without a sanitizer report.
    """
    gates: list[Gate] = []
    request.node.smtpgate_gates = gates

    def start(upstreams, *, binary: Path | None = None, args: tuple[str, ...] = (),
              env: dict[str, str] | None = None, listen_via_override: bool = False,
              extra: str = "", **settings) -> Gate:
        g = Gate(binary or smtpgate_binary, workdir, upstreams, settings, args, env,
                 name=f"smtpgate{len(gates)}", listen_via_override=listen_via_override,
                 extra=extra)
        gates.append(g)
        return g.start()

    yield start
    problems = []
    for g in gates:
        if g.proc is None:
            continue
        try:
            g.stop()
            if not g.clean_exit_checked:
                g.assert_clean_exit()
        except AssertionError as e:
            problems.append(str(e))
    assert not problems, "\n\n".join(problems)


@pytest.fixture
def gate(recorder, gate_factory) -> Gate:
    """smtpgate in front of the recording upstream, default settings, probe done."""
    g = gate_factory([recorder.address])
    recorder.wait_idle()
    return g
