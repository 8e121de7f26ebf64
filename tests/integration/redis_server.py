"""A real Redis server (Debian's redis-server) on a loopback port, for the state layer's
fleet tests, and a small RESP client to look inside it.

The server keeps nothing on disk (no RDB, no AOF), listens on 127.0.0.1 only, and can be
killed (SIGKILL), paused (SIGSTOP) and started again on the same port, which is how the
tests take it away from smtpgate mid-test.  Every wait is bounded.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from netutil import LOOPBACK, free_port, wait_until


def redis_server_path() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)


class RespError(Exception):
    pass


def _encode(args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespConn:
    """One connection to Redis: command(*args) returns the decoded reply."""

    def __init__(self, port: int, timeout: float = 5) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RespError(f"unexpected reply {line!r}")

    def command(self, *args):
        self.sock.sendall(_encode(args))
        return self._reply()


class RedisServer:
    def __init__(self, workdir: Path, password: str | None = None,
                 unixsocket: str | None = None) -> None:
        self.workdir = Path(workdir)
        self.password = password
        self.unixsocket = unixsocket  # a path of at most 107 octets: keep it short
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / f"redis-{self.port}.log"

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 15) -> "RedisServer":
        binary = redis_server_path()
        assert binary, "redis-server not installed"
        args = [binary, "--port", str(self.port), "--bind", LOOPBACK, "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
                "--dir", str(self.workdir), "--logfile", str(self.log_path),
                "--databases", "16"]
        if self.password:
            args += ["--requirepass", self.password]
        if self.unixsocket:
            args += ["--unixsocket", self.unixsocket, "--unixsocketperm", "700"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout, f"redis-server on {self.port} to answer")
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited: {self.log_path.read_text()[-2000:]}")
        try:
            c = self.conn()
        except OSError:
            return False
        try:
            return c.command("PING") == "PONG"
        except (OSError, RespError):
            return False
        finally:
            c.close()

    def conn(self) -> RespConn:
        c = RespConn(self.port)
        if self.password:
            c.command("AUTH", self.password)
        return c

    def command(self, *args, db: int = 0):
        c = self.conn()
        try:
            if db:
                c.command("SELECT", db)
            return c.command(*args)
        finally:
            c.close()

    def flush(self) -> None:
        self.command("FLUSHALL")

    def kill(self) -> None:
        """SIGKILL: the server is gone at once, connections reset."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def wait_down(port: int, timeout: float = 5) -> None:
    """Until nothing accepts on the port."""
    def refused():
        try:
            socket.create_connection((LOOPBACK, port), timeout=0.5).close()
            return False
        except OSError:
            return True
    wait_until(refused, timeout, f"port {port} to refuse connections")
    time.sleep(0)
