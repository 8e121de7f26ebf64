"""A raw-socket SMTP client for tests that need byte-level control.

smtplib hides what goes on the wire (it dot-stuffs, fixes line endings, waits
for each reply); the tests about pipelining, smuggling and exact bytes need to
write precisely the octets they mean, in one write when they mean one write,
and read every reply in order.  `SMTPConn` does that and nothing more: it
never sends anything the test did not ask for.

Every socket operation has a timeout, so a silent server turns into an
exception, never a hang.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field

DEFAULT_TIMEOUT = 20.0
MAX_REPLY_LINE = 64 * 1024
MAX_REPLY_LINES = 1000

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")


class ConnectionClosed(AssertionError):
    """The server closed the connection where a reply was expected."""


@dataclass
class Reply:
    """One SMTP reply: the code and the text of each line (without "NNN-")."""

    code: int
    lines: list[str] = field(default_factory=list)
    raw: bytes = b""

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 enhanced status code of the first line, if it has one."""
        m = _ENHANCED.match(self.lines[0]) if self.lines else None
        return m.group(0).strip() if m else None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def first_line(self) -> str:
        """The first line as sent, "NNN text"."""
        return f"{self.code} {self.lines[0] if self.lines else ''}".rstrip()

    def keywords(self) -> dict[str, str]:
        """EHLO keywords (upper case) mapped to their parameters; line 1 is the greeting name."""
        out: dict[str, str] = {}
        for line in self.lines[1:]:
            word, _, params = line.strip().partition(" ")
            if word:
                out[word.upper()] = params
        return out

    def __str__(self) -> str:
        return self.raw.decode("utf-8", "replace").rstrip("\r\n")


def dot_stuff(content: bytes) -> bytes:
    """Encode message content for DATA: stuff leading dots and add the final ".".

    `content` is the message exactly as the client means it, lines ending in
    CRLF.  If it does not end with CRLF one is added before the dot (the CRLF
    is then part of the terminator and the content arriving upstream gains it,
    as RFC 5321 4.1.1.4 implies).
    """
    if content and not content.endswith(b"\r\n"):
        content += b"\r\n"
    stuffed = re.sub(rb"(^|\r\n)\.", rb"\1..", content)
    return stuffed + b".\r\n"


class SMTPConn:
    """A client connection; `source` picks the local address (e.g. "127.0.0.2")."""

    def __init__(self, host: str, port: int, *, source: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, read_greeting: bool = True) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.greeting: Reply | None = self.read_reply() if read_greeting else None

    # ---- plumbing ----

    def __enter__(self) -> "SMTPConn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes | str) -> None:
        """Write exactly these octets (a str is encoded as UTF-8)."""
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_line(self) -> bytes:
        """One line including its LF; ConnectionClosed on EOF before a full line."""
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_REPLY_LINE:
                raise AssertionError(f"reply line longer than {MAX_REPLY_LINE} octets")
            if not self._fill():
                raise ConnectionClosed(f"connection closed; unread: {self.buf[:200]!r}")
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def read_reply(self) -> Reply:
        """Read one complete (possibly multi-line) reply."""
        raw = b""
        lines: list[str] = []
        for _ in range(MAX_REPLY_LINES):
            line = self.read_line()
            raw += line
            text = line.rstrip(b"\r\n").decode("utf-8", "replace")
            if len(text) < 3 or not text[:3].isdigit() or (len(text) > 3 and text[3] not in " -"):
                raise AssertionError(f"malformed reply line {line!r}")
            lines.append(text[4:])
            if len(text) == 3 or text[3] == " ":
                return Reply(int(text[:3]), lines, raw)
        raise AssertionError("reply with too many lines")

    def read_replies(self, n: int) -> list[Reply]:
        return [self.read_reply() for _ in range(n)]

    def read_until_closed(self, max_replies: int = 100) -> list[Reply]:
        """Read replies until the server closes the connection (bounded in count and time)."""
        out: list[Reply] = []
        for _ in range(max_replies):
            try:
                out.append(self.read_reply())
            except ConnectionClosed:
                return out
        raise AssertionError(f"more than {max_replies} replies and still open: {out[-3:]}")

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True if the server closes within `timeout` without sending anything more."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            if self.buf:
                return False
            try:
                chunk = self.sock.recv(1)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if chunk:
                self.buf += chunk
                return False
            return True
        finally:
            self.sock.settimeout(old)

    # ---- SMTP conveniences ----

    def cmd(self, line: str | bytes) -> Reply:
        """Send one command line (CRLF added) and read its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.read_reply()

    def ehlo(self, name: str = "client.example.test") -> Reply:
        r = self.cmd(f"EHLO {name}")
        assert r.code == 250, f"EHLO refused: {r}"
        return r

    def mail_transaction(self, mail_from: str, rcpts: list[str], content: bytes,
                         mail_params: str = "") -> list[Reply]:
        """MAIL, RCPT..., DATA, content, one command per round trip.

        Returns [mail, rcpt..., data, final]; stops early (shorter list) at
        the first refusal that makes going on pointless (MAIL, all RCPT, DATA).
        """
        out = [self.cmd(f"MAIL FROM:<{mail_from}>{' ' + mail_params if mail_params else ''}")]
        if out[0].code != 250:
            return out
        ok = 0
        for rcpt in rcpts:
            r = self.cmd(f"RCPT TO:<{rcpt}>")
            out.append(r)
            ok += r.code == 250
        if not ok:
            return out
        r = self.cmd("DATA")
        out.append(r)
        if r.code != 354:
            return out
        self.send(dot_stuff(content))
        out.append(self.read_reply())
        return out

    def quit(self) -> Reply | None:
        """QUIT and close; None if the server had already gone."""
        try:
            return self.cmd("QUIT")
        except (ConnectionClosed, OSError):
            return None
        finally:
            self.close()


def simple_message(subject: str, body: str | bytes = "Hello.\r\n", extra_headers: str = "") -> bytes:
    """A small RFC 5322 message with CRLF line endings; `body` is used as given."""
    if isinstance(body, str):
        body = body.encode()
    head = (f"From: sender@example.test\r\nTo: rcpt@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{time.monotonic_ns()}@example.test>\r\n"
            f"{extra_headers}\r\n").encode()
    return head + body


def swaks(server: tuple[str, int], *args: str, timeout: float = 60) -> "subprocess.CompletedProcess[str]":
    """Run swaks against server with the given extra arguments; never raises on SMTP failure.

    Returns the completed process; its stdout is the full transcript
    ("<-" server lines, " ->" client lines).
    """
    import subprocess
    host, port = server
    return subprocess.run(["swaks", "--server", f"{host}:{port}", "--timeout", "20",
                           "--hide-informational", *args],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def swaks_final_reply(transcript: str) -> str:
    """The server's reply to the end of data ("250 2.0.0 Ok: queued as X"), or "" if none."""
    server = [m.group(1) for m in re.finditer(r"^(?:<-|<\*\*|<~)\s+(\d{3}.*)$", transcript, re.M)]
    for i, line in enumerate(server):
        if line.startswith("354") and i + 1 < len(server):
            return server[i + 1].strip()
    return ""
