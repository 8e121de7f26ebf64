"""A milter written at the packet level, for what no libmilter milter will
do: malformed and oversize replies, unknown reply codes, a reply that never
comes, a connection closed mid-message, edits it did not negotiate, an old
protocol version, SMFIP_SKIP and no-reply steps, its own macro lists, and a
record of every packet the MTA sent, so that tests can see connection reuse
(SMFIC_QUIT_NC) and body chunk sizes exactly.

    raw = RawMilter().start()
    raw.optneg = dict(version=6, actions=0x1ff, protocol=0, macros={2: "{mail_addr} i"})
    raw.mode = "stall_eom"
    ... raw.address ("inet:127.0.0.1:PORT"), raw.packets (conn, cmd, data) ...
    raw.stop()

Modes (what it does at end of message, or at the first body chunk):
  continue        every command answered with continue
  malformed_eom   a reply code packet whose text is not a reply ("hello")
  oversize_eom    a packet header announcing 16 MiB
  unknown_eom     reply command 'Z'
  stall_eom       no answer at all
  close_body      the connection closed at the first body chunk
  edit_eom        an add-header edit (whether negotiated or not), then continue
  skip_body       SMFIR_SKIP to the first body chunk
  accept_eom      accept (not continue) at end of message
Every loop is bounded by a socket timeout; stop() closes everything.
"""

from __future__ import annotations

import socket
import struct
import threading

from netutil import LOOPBACK

SMFIP_NR_HDR = 0x00000080
SMFIP_SKIP = 0x00000400
NR_BITS = {b"C": 0x1000, b"H": 0x2000, b"M": 0x4000, b"R": 0x8000, b"T": 0x10000,
           b"U": 0x20000, b"L": 0x80, b"N": 0x40000, b"B": 0x80000}


class RawMilter:
    def __init__(self, host: str = LOOPBACK) -> None:
        self.host = host
        self.mode = "continue"
        self.optneg = dict(version=6, actions=0x1FF, protocol=0, macros={})
        self.packets: list[tuple[int, bytes, bytes]] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.clients: list[socket.socket] = []
        self.stopping = False

    @property
    def address(self) -> str:
        assert self.sock is not None
        port = self.sock.getsockname()[1]
        return f"inet:[{self.host}]:{port}" if ":" in self.host else f"inet:{self.host}:{port}"

    def start(self) -> "RawMilter":
        self.sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        self.sock.bind((self.host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping = True
        if self.sock:
            self.sock.close()
        with self.lock:
            for c in self.clients:
                try:
                    c.close()
                except OSError:
                    pass

    def reset(self, mode: str = "continue", **optneg) -> None:
        """New behaviour and an empty record; connections kept for reuse are
        closed, so the next session negotiates afresh."""
        with self.lock:
            for c in self.clients:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.clients.clear()
            self.packets.clear()
            self.connections = 0
            self.mode = mode
            self.optneg = {**dict(version=6, actions=0x1FF, protocol=0, macros={}), **optneg}

    def cmds(self) -> list[tuple[int, bytes]]:
        with self.lock:
            return [(c, cmd) for c, cmd, _ in self.packets]

    def _accept(self) -> None:
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
                self.clients.append(c)
            threading.Thread(target=self._serve, args=(c, n), daemon=True).start()

    @staticmethod
    def _read(c: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            try:
                part = c.recv(n - len(buf))
            except (socket.timeout, OSError):
                return None
            if not part:
                return None
            buf += part
        return buf

    @staticmethod
    def packet(cmd: bytes, data: bytes = b"") -> bytes:
        return struct.pack("!I", len(data) + 1) + cmd + data

    def _serve(self, c: socket.socket, n: int) -> None:
        c.settimeout(60)
        protocol = 0
        bodies = 0
        try:
            for _ in range(100000):
                head = self._read(c, 4)
                if head is None:
                    return
                (length,) = struct.unpack("!I", head)
                pkt = self._read(c, length)
                if pkt is None:
                    return
                cmd, data = pkt[:1], pkt[1:]
                with self.lock:
                    self.packets.append((n, cmd, data))
                    mode = self.mode
                    opt = dict(self.optneg)
                if cmd == b"O":
                    protocol = opt["protocol"]
                    body = struct.pack("!III", opt["version"], opt["actions"], protocol)
                    for stage, names in opt["macros"].items():
                        body += struct.pack("!I", stage) + names.encode() + b"\0"
                    c.sendall(self.packet(b"O", body))
                    continue
                if cmd == b"M":
                    bodies = 0
                if cmd in (b"D", b"A", b"K"):
                    continue  # macros, abort, quit_nc: no reply
                if cmd == b"Q":
                    return
                if cmd in NR_BITS and protocol & NR_BITS[cmd]:
                    continue
                if cmd == b"B":
                    bodies += 1
                    if mode == "close_body":
                        return
                    if mode == "skip_body" and bodies == 1:
                        c.sendall(self.packet(b"s"))
                        continue
                if cmd == b"E":
                    if mode == "malformed_eom":
                        c.sendall(self.packet(b"y", b"hello\0"))
                        continue
                    if mode == "oversize_eom":
                        c.sendall(struct.pack("!I", 16 * 1024 * 1024) + b"y")
                        continue
                    if mode == "unknown_eom":
                        c.sendall(self.packet(b"Z"))
                        continue
                    if mode == "stall_eom":
                        continue
                    if mode == "accept_eom":
                        c.sendall(self.packet(b"a"))
                        continue
                    if mode == "edit_eom":
                        c.sendall(self.packet(b"h", b"X-Raw\0edited\0"))
                c.sendall(self.packet(b"c"))
        finally:
            c.close()
