"""A real DNS server on loopback for SPF tests: dnsmasq (Debian's dnsmasq-base).

    with DnsServer(domains=["spf.test"]) as dns:
        dns.txt("spf.test", "v=spf1 ip4:127.0.0.0/8 -all")
        dns.host("mail.spf.test", "127.0.0.2")
        dns.mx("spf.test", "mail.spf.test", 10)
        dns.start()
        dns.address          # "127.0.0.1:PORT", for the plugin's nameserver option
        dns.stop()           # a stopped server: queries go unanswered

dnsmasq runs in the foreground (--keep-in-foreground), reads no file of the
machine (-C /dev/null, --no-resolv, --no-hosts), listens only on 127.0.0.1 on a
free port (UDP and TCP), has no upstream server, and answers the listed
domains itself (--local): a name it has no record for is NXDOMAIN, never
forwarded.  Answers carry TTL local_ttl (dnsmasq's default 0: nothing is
cached by the client; give e.g. 300 to measure with a warm SPF cache, and
then expect a stopped server to go unnoticed for cached names).  Records
are given before start(); restart() applies new ones.
Every wait is bounded; stop() kills after a grace period.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

DNSMASQ = "/usr/sbin/dnsmasq"
LOOPBACK = "127.0.0.1"


def dnsmasq_available() -> bool:
    return Path(DNSMASQ).is_file() or shutil.which("dnsmasq") is not None


def free_udp_tcp_port(host: str = LOOPBACK, tries: int = 20) -> int:
    """A port free for both UDP and TCP on host right now (dnsmasq binds both)."""
    for _ in range(tries):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free UDP+TCP port on loopback")


def _query_a(port: int, name: str, timeout: float) -> bytes | None:
    """One raw A query to 127.0.0.1:port; the answer or None."""
    qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    msg = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + qname + b"\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(msg, (LOOPBACK, port))
            data, _ = s.recvfrom(4096)
            return data
        except OSError:
            return None


class DnsServer:
    def __init__(self, domains: list[str], log_path: Path | None = None, local_ttl: int = 0):
        self.domains = list(domains)
        self.local_ttl = local_ttl
        self.log_path = log_path
        self.args: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._log = None

    # ---- records ----
    def txt(self, name: str, *strings: str) -> None:
        """A TXT record of one or more character-strings (each at most 255 octets)."""
        for s in strings:
            if len(s.encode()) > 255 or "," in s:
                raise ValueError("dnsmasq TXT strings: at most 255 octets, no commas")
        self.args.append("--txt-record=" + ",".join([name] + list(strings)))

    def host(self, name: str, *addresses: str) -> None:
        """A and/or AAAA records (and the matching PTR) for name."""
        self.args.append("--host-record=" + ",".join([name, *addresses]))

    def mx(self, domain: str, target: str, preference: int = 10) -> None:
        self.args.append(f"--mx-host={domain},{target},{preference}")

    # ---- life ----
    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        exe = DNSMASQ if Path(DNSMASQ).is_file() else shutil.which("dnsmasq")
        cmd = [exe, "--keep-in-foreground", "--log-facility=-", "-C", "/dev/null",
               "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
               f"--listen-address={LOOPBACK}", f"--port={self.port}", "--pid-file=",
               "--user=root", "--group=root", "--log-queries", f"--local-ttl={self.local_ttl}"]
        cmd += [f"--local=/{d}/" for d in self.domains]
        return cmd + self.args

    def start(self, timeout: float = 10) -> None:
        assert self.proc is None, "already started"
        last = ""
        for _ in range(5):  # a free port can be taken between the pick and the bind
            self.port = free_udp_tcp_port()
            out = subprocess.DEVNULL
            if self.log_path is not None:
                self._log = open(self.log_path, "ab")
                out = self._log
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    last = f"dnsmasq exited with {self.proc.returncode}"
                    break
                if _query_a(self.port, "ready-probe." + self.domains[0], 0.2) is not None:
                    return
                time.sleep(0.05)
            self.stop()
            last = last or "dnsmasq did not answer in time"
        raise RuntimeError(last)

    def stop(self, grace: float = 5) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(grace)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Stop and start again on a new port (with the records given so far)."""
        self.stop()
        self.start()

    def __enter__(self) -> "DnsServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
