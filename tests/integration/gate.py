"""Running smtpgate under test: its config file, its process, its log.

Each test gets its own config file (written here, every setting explicit),
its own spool folder and its own listening port.  smtpgate runs in the
foreground (-f) with stderr kept in a file, which tests read for log
assertions.  Stopping sends SIGTERM and requires a clean exit: status 0 and
no AddressSanitizer / LeakSanitizer / UBSan report in stderr (the suite runs
against the sanitizer build, where a leak or undefined behaviour changes the
exit status and prints a report).

Binary: $SMTPGATE_BIN if it exists, else build/asan/smtpgate, else
build/release/smtpgate.  The memory test prefers the release build
($SMTPGATE_RELEASE_BIN or build/release/smtpgate), since ASan's quarantine and
shadow memory say nothing about the daemon's own footprint.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from netutil import LOOPBACK, free_port, wait_until
from smtpclient import SMTPConn

REPO = Path(__file__).resolve().parents[2]
# The line main.c logs once the workers run; journald lines start with "<N>".
READY = re.compile(r"(?:^|[\s>])ready: \d+ workers", re.M)

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "LeakSanitizer",
                     "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer",
                     "WARNING: ThreadSanitizer")

# Every setting of etc/smtpgate.conf, with values that keep tests quick and
# bounded.  Tests override what they are about.
DEFAULT_SETTINGS: dict[str, object] = {
    "hostname": "smtpgate.example.test",
    "workers": 2,
    "client_identity": "xclient",
    "bare_newline": "reject",
    "spill_threshold": 1048576,
    "max_message_size": 10240000,
    "max_recipients": 100,
    "max_connections": 200,
    "max_connections_per_client": 50,
    "max_line_length": 512,
    "max_data_line_length": 8192,
    "hard_error_limit": 20,
    "max_header_size": 102400,
    "command_timeout": 60,
    "data_timeout": 60,
    "connect_grace": 60,
    "upstream_connect_timeout": 5,
    "upstream_greeting_timeout": 10,
    "upstream_command_timeout": 10,
    "upstream_data_timeout": 10,
    "upstream_final_timeout": 20,
    "probe_interval": 3600,
    "shutdown_grace": 10,
    "syslog_facility": "mail",
    # Tests never ask a DNS server off the machine: client names only where a
    # test runs its own DNS server on loopback.
    "client_name_lookup": False,
}
# Tests run as root in CI: smtpgate refuses that without a user unless told.
if os.geteuid() == 0:
    DEFAULT_SETTINGS["allow_root"] = True


def find_binary() -> Path | None:
    """The smtpgate under test, or None when it has not been built."""
    candidates = [os.environ.get("SMTPGATE_BIN"), REPO / "build/asan/smtpgate",
                  REPO / "build/release/smtpgate"]
    for c in candidates:
        if c and os.access(c, os.X_OK) and Path(c).is_file():
            return Path(c)
    return None


def find_release_binary() -> Path | None:
    for c in (os.environ.get("SMTPGATE_RELEASE_BIN"), REPO / "build/release/smtpgate"):
        if c and os.access(c, os.X_OK) and Path(c).is_file():
            return Path(c)
    return None


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(listen: list[str], upstreams: list, spool_dir: Path,
                  settings: dict[str, object], extra: str = "") -> str:
    """The config file text.  `upstreams`: "host:port" or ("host:port", priority)."""
    lines = ["# generated for one integration test"]
    lines.append("listen = {" + ", ".join(_value(a) for a in listen) + "}")
    lines.append(f"spool_dir = {_value(spool_dir)}")
    for key, v in settings.items():
        if v is not None:
            lines.append(f"{key} = {_value(v)}")
    for i, up in enumerate(upstreams):
        addr, prio = (up, 10 * (i + 1)) if isinstance(up, str) else up
        lines += [f"upstream u{i} {{", f"    address = {_value(addr)}",
                  f"    priority = {prio}", "}"]
    return "\n".join(lines) + "\n" + extra


def plugin_dir(binary: Path) -> Path:
    """The test plugins built next to this smtpgate (build/asan/tests/plugins...)."""
    env = os.environ.get("SMTPGATE_PLUGIN_DIR")
    if env:
        return Path(env)
    return Path(binary).resolve().parent / "tests" / "plugins"


def plugin_section(name: str, path: Path | str, **options: object) -> str:
    """A "plugin NAME { path = ... }" section; list values as Python lists."""
    lines = [f"plugin {name} {{", f"    path = {_value(str(path))}"]
    for key, v in options.items():
        if isinstance(v, (list, tuple)):
            lines.append(f"    {key} = {{" + ", ".join(_value(x) for x in v) + "}")
        else:
            lines.append(f"    {key} = {_value(v)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


class GateStartError(RuntimeError):
    pass


class StderrLog:
    """Reading a process's stderr file (self.stderr_path) as a log; self.log_name names
    it in time-out messages."""

    log_name = "smtpgate"

    def log_text(self) -> str:
        try:
            return self.stderr_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        try:
            return self.stderr_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark: int) -> str:
        with open(self.stderr_path, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern: str, mark: int = 0, timeout: float = 15) -> re.Match:
        rx = re.compile(pattern, re.M)
        return wait_until(lambda: rx.search(self.log_since(mark)), timeout,
                          f"/{pattern}/ in {self.log_name}'s log")


class Gate(StderrLog):
    """One smtpgate process."""

    def __init__(self, binary: Path, workdir: Path, upstreams: list,
                 settings: dict[str, object] | None = None, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, name: str = "smtpgate",
                 listen_via_override: bool = False, extra: str = "") -> None:
        self.extra = extra
        self.binary = Path(binary)
        self.listen_via_override = listen_via_override
        self.workdir = workdir
        self.upstreams = list(upstreams)
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.args = tuple(args)
        self.spool_dir = workdir / f"{name}-spool"
        self.spool_dir.mkdir(exist_ok=True)
        self.settings.setdefault("quarantine_dir", str(workdir / f"{name}-quarantine"))
        # A unix socket's path has at most 107 octets: the control socket gets a
        # short folder of its own rather than one under the test's long workdir.
        self.control_dir = Path(tempfile.mkdtemp(prefix="sgctl-"))
        self.settings.setdefault("control_socket", str(self.control_dir / "control.sock"))
        self.conf_path = workdir / f"{name}.conf"
        self.stderr_path = workdir / f"{name}.stderr"
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.file_listen_port = 0
        self.env = {**os.environ, **(env or {})}
        self.env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.clean_exit_checked = False

    # ---- config ----

    def config_text(self, **overrides: object) -> str:
        listen = self.file_listen_port if self.listen_via_override else self.port
        return render_config([f"{LOOPBACK}:{listen}"], self.upstreams, self.spool_dir,
                             {**self.settings, **overrides}, self.extra)

    def write_config(self, **overrides: object) -> None:
        """Rewrite the config file with these settings changed (for reload tests)."""
        self.settings.update(overrides)
        self.conf_path.write_text(self.config_text())

    # ---- process ----

    @property
    def address(self) -> tuple[str, int]:
        return (LOOPBACK, self.port)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, attempts: int = 4, timeout: float = 30) -> "Gate":
        """Start and wait until the port listens; retry on a port lost to a race."""
        for _ in range(attempts):
            self.port = free_port()
            self.file_listen_port = free_port()
            self.conf_path.write_text(self.config_text())
            override = (["-o", f'listen = {{"{LOOPBACK}:{self.port}"}}']
                        if self.listen_via_override else [])
            mark = len(self.log_text())
            with open(self.stderr_path, "ab") as err:
                self.proc = subprocess.Popen(
                    [str(self.binary), "-c", str(self.conf_path), "-f", *override, *self.args],
                    stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=self.env,
                    cwd=self.workdir)
            # The ports listen before the start-up probe has run; "ready" comes
            # after it, so a test's view of the upstream starts after the probe.
            wait_until(lambda: READY.search(self.log_since(mark)) or self.proc.poll() is not None,
                       timeout, f"smtpgate to be ready on {self.port}")
            if self.proc.poll() is None:
                return self
            self.returncode = self.proc.returncode
            log = self.log_text()
            if "in use" not in log.lower():
                raise GateStartError(f"smtpgate exited with {self.returncode} at start:\n{log[-3000:]}")
        raise GateStartError(f"smtpgate could not bind a port after {attempts} attempts")

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def control_socket(self) -> str:
        return str(self.settings["control_socket"])

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            self.returncode = self.proc.wait(timeout)
            shutil.rmtree(self.control_dir, ignore_errors=True)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"smtpgate did not exit within {timeout:.0f}s of SIGTERM "
                                 f"(killed)\n{self.log_tail()}")
        return self.returncode

    def stop(self, timeout: float | None = None) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        grace = float(self.settings.get("shutdown_grace", 10))
        return self.wait_exit(timeout if timeout is not None else grace + 30)

    def assert_clean_exit(self) -> None:
        """Exit status 0 and no sanitizer report: no crash, no leak, no UB."""
        self.clean_exit_checked = True
        log = self.log_text()
        found = [m for m in SANITIZER_MARKERS if m in log]
        assert not found, f"sanitizer report in smtpgate's stderr ({found}):\n{self.log_tail(6000)}"
        assert self.returncode == 0, (f"smtpgate exit status {self.returncode} after SIGTERM, "
                                      f"expected 0\n{self.log_tail()}")

    # ---- log ----

    def log_tail(self, n: int = 3000) -> str:
        return "--- smtpgate stderr (tail) ---\n" + self.log_text()[-n:]

    def tx_lines(self, mark: int = 0) -> list[str]:
        """The per-transaction log lines ("ID: tx from=..."), not the per-recipient ones."""
        return [l for l in self.log_since(mark).splitlines() if ": tx " in l]

    # ---- memory ----

    def proc_status(self, field: str) -> int:
        """A /proc/PID/status field in KiB (VmRSS, VmHWM...)."""
        text = Path(f"/proc/{self.pid}/status").read_text()
        m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
        assert m, f"{field} not in /proc/{self.pid}/status"
        return int(m.group(1))

    # ---- clients ----

    def connect(self, source: str | None = None, timeout: float = 20,
                read_greeting: bool = True) -> SMTPConn:
        return SMTPConn(LOOPBACK, self.port, source=source, timeout=timeout,
                        read_greeting=read_greeting)


def run_config_test(binary: Path, conf: Path, *extra: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """`smtpgate -t -c conf`: returns the completed process (stdout+stderr text)."""
    env = {**os.environ}
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    return subprocess.run([str(binary), "-t", "-c", str(conf), *extra], capture_output=True,
                          text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)

