"""rbldnsd (Debian's rbldnsd) serving test DNS lists on loopback, and a nameserver that
never answers.

    with Rbldnsd(folder) as r:
        r.zone("bl.test", "ip4set", ":127.0.0.2:Listed\\n127.0.0.10\\n")
        r.start()
        r.address            # "127.0.0.1:PORT", for the dnsbl plugin's nameservers
        r.queries("10.0.0.127.bl.test")   # how many times rbldnsd was asked that name

rbldnsd runs in the foreground (-n -f), bound to 127.0.0.1 on a free port, as the
unprivileged rbldns user (it refuses to run as root), logging every query line-buffered
to its stdout (-l +-), which goes to a file the tests read.  TTL 300 s on every answer
(-t 300).  The zone files go to a folder of their own, readable by that user.

BlackHole binds a UDP socket on loopback and never reads it: a site routed there
never answers.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

from dnsserver import free_udp_tcp_port

RBLDNSD = "/usr/sbin/rbldnsd"
LOOPBACK = "127.0.0.1"


def rbldnsd_available() -> bool:
    return Path(RBLDNSD).is_file() or shutil.which("rbldnsd") is not None


class Rbldnsd:
    def __init__(self, folder: Path, ttl: int = 300) -> None:
        self.folder = Path(folder) / "rbldnsd"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        self.ttl = ttl
        self.zones: list[str] = []
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = self.folder / "queries.log"
        self._log = None

    def zone(self, name: str, kind: str, data: str) -> None:
        """A zone of rbldnsd's dataset kind (ip4set, ip6trie, dnset) with these lines."""
        f = self.folder / f"{name}.{kind}"
        f.write_text(data)
        f.chmod(0o644)
        self.zones.append(f"{name}:{kind}:{f.name}")

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 10) -> "Rbldnsd":
        self.port = free_udp_tcp_port()
        user = "rbldns"
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "nobody"
        cmd = [RBLDNSD if Path(RBLDNSD).is_file() else "rbldnsd", "-n", "-f", "-4",
               "-u", user, "-b", f"{LOOPBACK}/{self.port}", "-w", str(self.folder),
               "-l", "+-", "-t", str(self.ttl), "-c", "0", *self.zones]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rbldnsd exited: {self.log_path.read_text()}")
            if "started" in self.log_path.read_text(errors="replace"):
                return self
            time.sleep(0.05)
        raise RuntimeError(f"rbldnsd did not start: {self.log_path.read_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def queries(self, name: str) -> int:
        """Queries rbldnsd logged for exactly this name (all types)."""
        return sum(1 for line in self.log_text().splitlines()
                   if len(line.split()) > 2 and line.split()[2].lower() == name.lower())

    def stop(self, grace: float = 5) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(grace)
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> "Rbldnsd":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class BlackHole:
    """A UDP port on loopback that takes queries and answers none."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()
