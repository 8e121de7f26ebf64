"""A scriptable, recording SMTP upstream built on aiosmtpd.

It plays the MTA behind smtpgate and writes down everything smtpgate does to
it, so that tests can assert what really reached the upstream:

* every connection, with each command verb and argument in order (EHLO,
  XCLIENT, MAIL, ...), so a test can tell a health probe (EHLO/QUIT only)
  from a session connection, and can prove that no upstream connection was
  opened at all;
* every completed transaction: envelope with its ESMTP parameters as sent,
  the message content after dot-unstuffing (the octets the client meant),
  the raw octets on the wire, DATA or BDAT, the XCLIENT attributes and the
  HELO name in force.

`Script` makes it misbehave on purpose: refuse a given RCPT, answer 4xx/5xx
at end of data, greet with 421, close the connection or stop answering at a
chosen stage, or offer a chosen set of extensions (XCLIENT, CHUNKING,
SMTPUTF8, SIZE...).  In `lenient_eod` mode it ends DATA the way the sloppiest
receivers in the SMTP smuggling research do (a lone "." between any of CR,
LF or CRLF, NULs ignored) and then reads what follows as new commands: the
worst upstream a proxy can sit in front of, used to show that smuggling tests
can fail.

aiosmtpd runs the sessions (greeting, command loop, HELO/EHLO, NOOP, RSET,
QUIT, VRFY); MAIL, RCPT and DATA are replaced here because aiosmtpd's own
refuse legitimate ESMTP parameters (RET, ENVID, NOTIFY, ORCPT, BINARYMIME)
and cap line length, and XCLIENT and BDAT are added.  The server runs its own
event loop in a daemon thread; records are read from the test thread under a
lock.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
import re
import threading
import time
import collections
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP

from netutil import LOOPBACK, wait_until

logging.getLogger("mail.log").setLevel(logging.WARNING)

HOSTNAME = "recorder.example.test"
ALL_CAPS = ("PIPELINING", "SIZE", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8",
            "CHUNKING", "BINARYMIME", "XCLIENT")
DEFAULT_CAPS = frozenset({"PIPELINING", "SIZE", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN",
                          "SMTPUTF8", "XCLIENT"})
XCLIENT_ATTRS = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN", "DESTADDR", "DESTPORT")
PROBE_VERBS = frozenset({"EHLO", "HELO", "QUIT", "NOOP", "RSET"})
STAGES = frozenset({"CONNECT", "EHLO", "HELO", "XCLIENT", "MAIL", "RCPT", "DATA", "BDAT",
                    "BODY", "EOD", "RSET", "NOOP", "VRFY", "QUIT"})
_LENIENT_EOD = re.compile(rb"(?:\A|\r\n|\n|\r)\x00*\.\x00*(?:\r\n|\n|\r)")
_qid_counter = itertools.count(0xA1000)


@dataclass
class Script:
    """How the recorder behaves.  Safe to change between sessions.

    close_at / hang_at name stages: a command verb (the command is received
    and recorded, then the connection is closed / nothing is ever answered),
    "CONNECT" (before the greeting), "BODY" (after the first block of message
    data), "EOD" (after the whole message, before the final reply).
    body_reply is pushed at "BODY"; final_delay waits before the final reply.
    Replies may contain "{qid}" for this transaction's queue id.
    """

    caps: frozenset[str] = DEFAULT_CAPS
    size_limit: int = 64 * 1024 * 1024
    greeting: str | None = None
    mail_reply: str | None = None
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    # What XCLIENT is answered with once its attributes are taken (Postfix: 220).
    xclient_reply: str = f"220 {HOSTNAME} ESMTP recorder"
    final_reply: str = "250 2.0.0 Ok: queued as {qid}"
    close_at: frozenset[str] = frozenset()
    hang_at: frozenset[str] = frozenset()
    lenient_eod: bool = False
    # Said after the first block of message data, while the rest still comes
    # (an upstream that answers before it has the message).
    body_reply: str | None = None
    # Seconds between the end of the message and the final reply.
    final_delay: float = 0.0
    # Longest command line taken (aiosmtpd's own default is 512).
    command_size_limit: int = 512


@dataclass
class Connection:
    """One TCP connection from the proxy: the commands it sent, in order."""

    index: int
    peer: tuple
    commands: list[tuple[str, str]] = field(default_factory=list)
    closed: bool = False

    @property
    def verbs(self) -> list[str]:
        return [v for v, _ in self.commands]

    @property
    def is_probe(self) -> bool:
        """Only greeting-level commands: a health probe, not a session's connection."""
        return all(v in PROBE_VERBS for v in self.verbs)


@dataclass
class Message:
    """A transaction that reached the end of data at the recorder."""

    conn: int
    mail_from: str
    mail_params: str
    rcpts: list[str]
    rcpt_params: list[str]
    content: bytes
    wire: bytes
    method: str
    helo: str | None
    xclient: dict[str, str]
    qid: str
    reply: str


class _Tx:
    def __init__(self, mail_from: str, params: str) -> None:
        self.mail_from = mail_from
        self.params = params
        self.rcpts: list[str] = []
        self.rcpt_params: list[str] = []
        self.chunks: list[bytes] = []


class _Handler:
    """aiosmtpd hook object: only the EHLO reply is ours."""

    def __init__(self, recorder: "Recorder") -> None:
        self.recorder = recorder

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        script = self.recorder.script
        lines = [HOSTNAME]
        for cap in ALL_CAPS:
            if cap not in script.caps:
                continue
            if cap == "SIZE":
                lines.append(f"SIZE {script.size_limit}")
            elif cap == "XCLIENT":
                lines.append("XCLIENT " + " ".join(XCLIENT_ATTRS))
            else:
                lines.append(cap)
        return [f"250-{x}" for x in lines[:-1]] + [f"250 {lines[-1]}"]


class _Session(SMTP):
    line_length_limit = 1 << 20  # StreamReader limit: long data lines are a test subject

    def __init__(self, recorder: "Recorder", loop: asyncio.AbstractEventLoop) -> None:
        self.recorder = recorder
        self.tx: _Tx | None = None
        self.xclient: dict[str, str] = {}
        super().__init__(_Handler(recorder), hostname=HOSTNAME, ident="ESMTP recorder",
                         data_size_limit=None, enable_SMTPUTF8=True, decode_data=False,
                         timeout=120, loop=loop)
        for verb, method in list(self._smtp_methods.items()):
            self._smtp_methods[verb] = self._recording(verb, method)
        limit = recorder.script.command_size_limit
        if limit != SMTP.command_size_limit:
            self.command_size_limit = limit
            self.command_size_limits = collections.defaultdict(lambda x=limit: x)
        self.conn: Connection | None = None

    # ---- bookkeeping ----

    def connection_made(self, transport) -> None:
        self.conn = self.recorder._new_connection(transport.get_extra_info("peername"), self)
        super().connection_made(transport)

    def connection_lost(self, error) -> None:
        if self.conn is not None:
            self.recorder._closed(self)
        super().connection_lost(error)

    def _set_rset_state(self) -> None:
        self.tx = None
        super()._set_rset_state()

    def _recording(self, verb: str, method):
        async def wrapper(arg):
            self.recorder._record_command(self.conn, verb, arg or "")
            await self._stage(verb)
            return await method(arg)
        return wrapper

    async def _stage(self, stage: str) -> None:
        """Misbehave here if the script says so."""
        script = self.recorder.script
        if stage in script.close_at:
            self.transport.close()
            await asyncio.sleep(3600)  # cancelled by connection_lost
        if stage in script.hang_at:
            await asyncio.sleep(3600)  # cancelled when the peer goes away
        if stage == "BODY" and script.body_reply:
            await self.push(script.body_reply)

    async def _handle_client(self):
        script = self.recorder.script
        await self._stage("CONNECT")
        if script.greeting is not None:
            await self.push(script.greeting)
            if not script.greeting.startswith("2"):
                self.transport.close()
                await asyncio.sleep(3600)
        return await super()._handle_client()

    # ---- commands ----

    async def smtp_XCLIENT(self, arg: str) -> None:
        if "XCLIENT" not in self.recorder.script.caps:
            await self.push("500 5.5.1 Error: command not recognized")
            return
        attrs = {}
        for item in (arg or "").split():
            name, eq, value = item.partition("=")
            if not eq or name.upper() not in XCLIENT_ATTRS:
                await self.push(f"501 5.5.4 Bad XCLIENT attribute: {item}")
                return
            attrs[name.upper()] = value
        if not attrs:
            await self.push("501 5.5.4 Syntax: XCLIENT attribute=value...")
            return
        self.xclient.update(attrs)
        self._set_rset_state()
        self.session.host_name = None  # RFC: the client must send EHLO again
        await self.push(self.recorder.script.xclient_reply)

    async def smtp_MAIL(self, arg: str) -> None:
        if not self.session.host_name:
            await self.push("503 5.5.1 Error: send HELO/EHLO first")
            return
        m = re.match(r"(?i)FROM:\s*<([^>]*)>\s*(.*)$", arg or "")
        if not m:
            await self.push("501 5.5.4 Syntax: MAIL FROM:<address>")
            return
        if self.tx is not None:
            await self.push("503 5.5.1 Error: nested MAIL command")
            return
        size = re.search(r"(?i)(?:^|\s)SIZE=(\d+)", m.group(2))
        script = self.recorder.script
        if size and int(size.group(1)) > script.size_limit:
            await self.push("552 5.3.4 Message size exceeds fixed limit")
            return
        reply = script.mail_reply or "250 2.1.0 Ok"
        if reply.startswith("2"):
            self.tx = _Tx(m.group(1), m.group(2))
        await self.push(reply)

    async def smtp_RCPT(self, arg: str) -> None:
        if self.tx is None:
            await self.push("503 5.5.1 Error: need MAIL command")
            return
        m = re.match(r"(?i)TO:\s*<([^>]*)>\s*(.*)$", arg or "")
        if not m:
            await self.push("501 5.5.4 Syntax: RCPT TO:<address>")
            return
        reply = self.recorder.script.rcpt_replies.get(m.group(1).lower(), "250 2.1.5 Ok")
        if reply.startswith("2"):
            self.tx.rcpts.append(m.group(1))
            self.tx.rcpt_params.append(m.group(2))
        await self.push(reply)

    async def smtp_DATA(self, arg: str) -> None:
        if self.tx is None or not self.tx.rcpts:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        script = self.recorder.script
        if script.data_reply:
            await self.push(script.data_reply)
            if script.data_reply.startswith(("4", "5")):
                self.tx = None
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        if script.lenient_eod:
            wire, content = await self._read_lenient()
        else:
            wire, content = await self._read_strict()
        await self._finish("DATA", wire, content)

    async def _read_strict(self) -> tuple[bytes, bytes]:
        """RFC 5321 end of data: only a line "." ending in CRLF, lines split at CRLF."""
        wire = bytearray()
        content = bytearray()
        first = True
        while True:
            parts = []
            while True:
                try:
                    parts.append(await self._reader.readuntil(b"\r\n"))
                    break
                except asyncio.LimitOverrunError as e:
                    parts.append(await self._reader.read(e.consumed))
            line = b"".join(parts)
            wire += line
            if first:
                await self._stage("BODY")
                first = False
            if line == b".\r\n":
                return bytes(wire), bytes(content)
            content += line[1:] if line.startswith(b".") else line

    async def _read_lenient(self) -> tuple[bytes, bytes]:
        """End data at the first "." line under any line-ending convention, NULs ignored.

        Whatever follows the terminator is pushed back to be read as commands,
        which is exactly how a smuggled second transaction comes to life.
        """
        buf = bytearray()
        first = True
        while True:
            m = _LENIENT_EOD.search(buf)
            # A match ending in CR at the very end of what has arrived may still grow
            # into CRLF: decide only once the next octet is here.
            if m and (m.end() < len(buf) or not buf.endswith(b"\r")):
                break
            chunk = await self._reader.read(65536)
            if not chunk:
                raise ConnectionResetError("eof in DATA")
            buf += chunk
            if first:
                await self._stage("BODY")
                first = False
        rest = bytes(buf[m.end():])
        wire = bytes(buf[:m.end()])
        body = bytes(buf[:m.start()])
        if rest:
            self._reader._buffer[0:0] = rest  # read next as commands
        content = re.sub(rb"(^|\r\n)\.", rb"\1", body)
        return wire, content + (b"\r\n" if content else b"")

    async def smtp_BDAT(self, arg: str) -> None:
        m = re.match(r"(?i)^(\d+)(?:\s+(LAST))?\s*$", arg or "")
        if not m or "CHUNKING" not in self.recorder.script.caps:
            await self.push("501 5.5.4 Syntax: BDAT size [LAST]")
            return
        size, last = int(m.group(1)), bool(m.group(2))
        data = await self._reader.readexactly(size) if size else b""
        if self.tx is None or not self.tx.rcpts:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        self.tx.chunks.append(data)
        await self._stage("BODY")
        if not last:
            await self.push(f"250 2.0.0 {size} octets received")
            return
        content = b"".join(self.tx.chunks)
        await self._finish("BDAT", content, content)

    async def _finish(self, method: str, wire: bytes, content: bytes) -> None:
        await self._stage("EOD")
        if self.recorder.script.final_delay:
            await asyncio.sleep(self.recorder.script.final_delay)
        qid = f"{next(_qid_counter):X}"
        reply = self.recorder.script.final_reply.format(qid=qid)
        tx, self.tx = self.tx, None
        if reply.startswith("2"):
            self.recorder._record_message(Message(
                conn=self.conn.index, mail_from=tx.mail_from, mail_params=tx.params,
                rcpts=list(tx.rcpts), rcpt_params=list(tx.rcpt_params), content=content,
                wire=wire, method=method, helo=self.session.host_name,
                xclient=dict(self.xclient), qid=qid, reply=reply))
        else:
            self.recorder._record_refused(reply)
        await self.push(reply)


class Recorder:
    """The recording upstream.  `start()` binds 127.0.0.1 (port 0 unless given)."""

    def __init__(self, script: Script | None = None, port: int = 0) -> None:
        self.script = script or Script()
        self.port = port
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        self._messages: list[Message] = []
        self._refused: list[str] = []
        self._sessions: set[_Session] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    # ---- life cycle ----

    def start(self) -> "Recorder":
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(loop.create_server(
                    lambda: _Session(self, loop), LOOPBACK, self.port, reuse_address=True))
            except BaseException as e:  # reported to the starting thread
                failure.append(e)
                ready.set()
                return
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"recorder:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("recorder did not start within 10s")
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop listening and drop every connection (an upstream that dies)."""
        if not self._loop or not self._thread or not self._thread.is_alive():
            return

        async def shutdown() -> None:
            self._server.close()
            for s in list(self._sessions):
                if s.transport is not None:
                    s.transport.abort()
            await asyncio.sleep(0)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    # ---- called on the server thread ----

    def _new_connection(self, peer, session: _Session) -> Connection:
        with self._lock:
            c = Connection(index=len(self._connections), peer=peer)
            self._connections.append(c)
            self._sessions.add(session)
            return c

    def _closed(self, session: _Session) -> None:
        with self._lock:
            session.conn.closed = True
            self._sessions.discard(session)

    def _record_command(self, conn: Connection, verb: str, arg: str) -> None:
        with self._lock:
            conn.commands.append((verb, arg))

    def _record_message(self, msg: Message) -> None:
        with self._lock:
            self._messages.append(msg)

    def _record_refused(self, reply: str) -> None:
        with self._lock:
            self._refused.append(reply)

    # ---- read from tests ----

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    @property
    def connections(self) -> list[Connection]:
        with self._lock:
            return copy.deepcopy(self._connections)

    def session_connections(self) -> list[Connection]:
        """Connections that went beyond a health probe (XCLIENT, MAIL, VRFY...)."""
        return [c for c in self.connections if not c.is_probe]

    def open_connections(self) -> int:
        with self._lock:
            return sum(not c.closed for c in self._connections)

    def wait_messages(self, n: int, timeout: float = 15) -> list[Message]:
        """Wait until at least n messages were recorded; returns them all."""
        wait_until(lambda: len(self.messages) >= n, timeout, f"{n} message(s) at the recorder")
        return self.messages

    def wait_idle(self, timeout: float = 10) -> None:
        """Wait until no connection is open (e.g. the start-up probe has finished)."""
        wait_until(lambda: self.open_connections() == 0, timeout,
                   "the recorder to have no open connection")

    def wait_closed_all(self, timeout: float = 15) -> list[Connection]:
        self.wait_idle(timeout)
        return self.connections


def settle(seconds: float = 0.3) -> None:
    """A short pause used only to give something a chance to happen that must NOT happen.

    Tests asserting absence (no upstream connection, no second message) first
    wait for a positive event that comes after it in the protocol (the client's
    QUIT answered, the upstream session closed); this pause is an extra margin,
    never what a test's correctness depends on.
    """
    time.sleep(seconds)
