"""Running smtpgate-milter under test: its config file, its process, its log.

The milter reads the same configuration file format as smtpgate; each test
writes one with a `milter { socket = "inet:PORT@127.0.0.1" }` section and the
plugin sections it is about (no upstream: the milter has none).  It runs in
the foreground (-f) with stderr kept in a file.  Stopping sends SIGTERM and
requires a clean exit: status 0 and no sanitizer report.

Binary: $SMTPGATE_MILTER_BIN, else smtpgate-milter next to the smtpgate under
test ($SMTPGATE_BIN), else build/asan/ then build/release/.  The test plugin
(tests/plugins/milter_policy.c) is taken from the same build folder:
BUILD/tests/plugins/milter_policy.so.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from gate import REPO, SANITIZER_MARKERS, StderrLog, _value
from netutil import LOOPBACK, is_listening, wait_until


def find_milter_binary() -> Path | None:
    candidates = [os.environ.get("SMTPGATE_MILTER_BIN")]
    if os.environ.get("SMTPGATE_BIN"):
        candidates.append(str(Path(os.environ["SMTPGATE_BIN"]).parent / "smtpgate-milter"))
    candidates += [REPO / "build/asan/smtpgate-milter", REPO / "build/release/smtpgate-milter"]
    for c in candidates:
        if c and os.access(c, os.X_OK) and Path(c).is_file():
            return Path(c)
    return None


def policy_plugin_path(milter_binary: Path) -> Path:
    return milter_binary.parent / "tests" / "plugins" / "milter_policy.so"


def render_plugin(name: str, path: Path, options: dict[str, object]) -> str:
    """A `plugin NAME { }` section; list values are Python lists."""
    lines = [f"plugin {name} {{", f"    path = {_value(str(path))}"]
    for key, v in options.items():
        if isinstance(v, (list, tuple)):
            lines.append(f"    {key} = {{" + ", ".join(_value(x) for x in v) + "}")
        elif isinstance(v, float):
            lines.append(f"    {key} = {v}")
        else:
            lines.append(f"    {key} = {_value(v)}")
    lines.append("}")
    return "\n".join(lines)


class Milter(StderrLog):
    """One smtpgate-milter process on a fixed loopback port."""

    log_name = "smtpgate-milter"

    def __init__(self, binary: Path, workdir: Path, port: int, plugins: str,
                 settings: dict[str, object] | None = None, name: str = "milter",
                 unix_path: Path | None = None) -> None:
        self.unix_path = unix_path  # listen there instead of on the port
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.plugins = plugins
        self.settings = {"hostname": "smtpgate.example.test",
                         "quarantine_dir": str(workdir / f"{name}-quarantine"),
                         **({"allow_root": True} if os.geteuid() == 0 else {}), **(settings or {})}
        self.spool_dir = workdir / f"{name}-spool"
        self.spool_dir.mkdir(exist_ok=True)
        self.conf_path = workdir / f"{name}.conf"
        self.stderr_path = workdir / f"{name}.stderr"
        self.pid_path = workdir / f"{name}.pid"
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.env = {**os.environ}
        self.env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")

    @property
    def socket_spec(self) -> str:
        return f"unix:{self.unix_path}" if self.unix_path else f"inet:{self.port}@{LOOPBACK}"

    def listening(self) -> bool:
        return self.unix_path.exists() if self.unix_path else is_listening(self.port)

    def config_text(self) -> str:
        lines = ["# generated for one milter integration test",
                 f"spool_dir = {_value(str(self.spool_dir))}"]
        lines += [f"{k} = {_value(v)}" for k, v in self.settings.items()]
        lines += ["milter {", f"    socket = {_value(self.socket_spec)}", "}", self.plugins]
        return "\n".join(lines) + "\n"

    def write_config(self, plugins: str | None = None, text: str | None = None) -> None:
        if plugins is not None:
            self.plugins = plugins
        self.conf_path.write_text(text if text is not None else self.config_text())

    def start(self, timeout: float = 30) -> "Milter":
        self.write_config()
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [str(self.binary), "-f", "-c", str(self.conf_path), "-p", str(self.pid_path)],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=self.env, cwd=self.workdir)
        wait_until(lambda: self.listening() or self.proc.poll() is not None, timeout,
                   f"smtpgate-milter to listen on {self.socket_spec}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"smtpgate-milter exited with {self.proc.returncode} at start:\n"
                               f"{self.log_text()[-3000:]}")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"smtpgate-milter did not exit within {timeout:.0f}s of SIGTERM "
                                 f"(killed)\n{self.log_text()[-3000:]}")
        return self.returncode

    def assert_clean_exit(self) -> None:
        log = self.log_text()
        found = [m for m in SANITIZER_MARKERS if m in log]
        assert not found, f"sanitizer report in smtpgate-milter's stderr ({found}):\n{log[-6000:]}"
        assert self.returncode == 0, (f"smtpgate-milter exit status {self.returncode}, expected 0"
                                      f"\n{log[-3000:]}")
        assert not self.pid_path.exists(), "pid file left behind"
        assert not (self.unix_path and self.unix_path.exists()), "unix socket left behind"

