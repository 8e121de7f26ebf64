"""Postfix's smtp-sink as a real upstream, capturing each transaction to a file.

smtp-sink is the test server that ships with Postfix.  Started with
`-d DIR/%M.` it writes each mail transaction to its own file: a few
X-Client-Addr / X-Helo-Args / X-Mail-Args / X-Rcpt-Args records, a three-line
Received: header, then the message as received and an empty line (see
smtp-sink(1), "DUMP FILE FORMAT").  Its EHLO offers PIPELINING, 8BITMIME
(unless -8), XCLIENT NAME HELO (unless -C), XFORWARD, ENHANCEDSTATUSCODES and
DSN, and never SIZE, SMTPUTF8 or CHUNKING: a real upstream that lacks them.

As root it must drop privileges (-u); it then also chroots (-R) into its own
capture folder so that the unprivileged user can write there whatever the
permissions of the folders above.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from netutil import LOOPBACK, free_port, is_listening, wait_until

SINK_USER = "nobody"


def smtp_sink_path() -> str | None:
    return shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if os.access("/usr/sbin/smtp-sink", os.X_OK) else None)


@dataclass
class SinkMessage:
    """One captured transaction: smtp-sink's own records and the message lines."""

    records: dict[str, list[str]]
    message: bytes
    path: Path

    @property
    def mail_args(self) -> str:
        return self.records.get("X-Mail-Args", [""])[0]

    @property
    def rcpt_args(self) -> list[str]:
        return self.records.get("X-Rcpt-Args", [])


def parse_dump(path: Path) -> SinkMessage:
    data = path.read_bytes()
    records: dict[str, list[str]] = {}
    lines = data.split(b"\n")
    i = 0
    while i < len(lines) and lines[i].startswith(b"X-"):
        name, _, value = lines[i].decode("utf-8", "replace").partition(": ")
        records.setdefault(name, []).append(value.rstrip("\r"))
        i += 1
    if i < len(lines) and lines[i].startswith(b"Received:"):
        i += 1
        while i < len(lines) and lines[i][:1] in (b"\t", b" "):
            i += 1
    return SinkMessage(records, b"\n".join(lines[i:]), path)


class SmtpSink:
    """smtp-sink on 127.0.0.1 with a private capture folder under `base`."""

    def __init__(self, base: Path, options: tuple[str, ...] = (), hostname: str = "sink.example.test"):
        self.options = tuple(options)
        self.hostname = hostname
        self.dir = Path(tempfile.mkdtemp(prefix="sink-", dir=base))
        self.dir.chmod(0o755)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir.with_suffix(".log")

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def capture_dir(self) -> Path:
        return self.dir / "m"

    def start(self, attempts: int = 5) -> "SmtpSink":
        exe = smtp_sink_path()
        if not exe:
            raise RuntimeError("smtp-sink not installed (Debian package postfix)")
        if os.geteuid() == 0:
            pw = pwd.getpwnam(SINK_USER)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            where = ["-u", SINK_USER, "-R", str(self.dir), "-d", "m/%M."]
        else:
            where = ["-d", f"{self.dir}/m/%M."]
        for _ in range(attempts):
            self.port = free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [exe, *where, "-h", self.hostname, "-t", "30", *self.options,
                 f"{LOOPBACK}:{self.port}", "64"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            try:
                wait_until(lambda: is_listening(self.port) or self.proc.poll() is not None,
                           10, "smtp-sink to listen")
            except Exception:
                self.stop()
                raise
            if self.proc.poll() is None:
                return self
        raise RuntimeError(f"smtp-sink did not start: {self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def messages(self) -> list[SinkMessage]:
        if not self.capture_dir.is_dir():
            return []
        files = sorted(self.capture_dir.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        return [parse_dump(p) for p in files]

    def wait_messages(self, n: int, timeout: float = 15) -> list[SinkMessage]:
        wait_until(lambda: len(self.messages()) >= n, timeout, f"{n} capture file(s) from smtp-sink")
        return self.messages()
