"""An SMTP upstream that fails on purpose at one point of one transaction, as its own process.

Run as a program (`python3 fault_upstream.py --port P --store DIR --fault PHASE
--fault-on N`), so that "the upstream was killed" is a real SIGKILL of a real
process: the kernel, not the test, decides what the peer sees.  Every message
it takes is written to DIR and fsync'ed before it says 250 (its commit
point), so the test counts what really arrived, even across its death.

Phases (the fault hits the N-th transaction that reaches DATA, once):

  kill_before_354    SIGKILL on receiving DATA
  kill_mid_body      SIGKILL after the first block of the message, nothing stored
  kill_after_dot     message stored, SIGKILL before the final reply
  kill_after_reply   message stored, 250 sent, SIGKILL
  stall_after_dot    message stored, the final reply never comes
  garbage_after_dot  message stored, a line that is no SMTP reply
  overlong_after_dot message stored, a 20 KiB reply line
  rst_after_354      354 sent, then the connection reset (SO_LINGER 0)
  garbage_to_mail    MAIL answered with a line that is no SMTP reply

The message is stored under "<counter>.eml"; the test reads the Subject and
X-Attempt headers the client put in.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import struct
import sys
from pathlib import Path

PHASES = ("kill_before_354", "kill_mid_body", "kill_after_dot", "kill_after_reply",
          "stall_after_dot", "garbage_after_dot", "overlong_after_dot", "rst_after_354",
          "garbage_to_mail", "none")
# Phases after which the upstream holds the message although the client was not
# told so: the window of RFC 1047, where a retry may deliver a second copy.
WINDOW_PHASES = frozenset({"kill_after_dot", "stall_after_dot", "garbage_after_dot",
                           "overlong_after_dot"})


class Upstream:
    def __init__(self, store: Path, fault: str, fault_on: int) -> None:
        self.store = store
        self.fault = fault
        self.fault_on = fault_on
        self.transactions = 0
        self.stored = 0

    def _save(self, content: bytes) -> None:
        self.stored += 1
        path = self.store / f"{os.getpid()}-{self.stored}.eml"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)

    @staticmethod
    def _die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        say("220 fault.example.test ESMTP")
        in_tx = False
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    return
                line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                verb = line.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    say("250-fault.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                        "250-SIZE 52428800\r\n250-ENHANCEDSTATUSCODES\r\n250-XCLIENT NAME ADDR "
                        "PORT PROTO HELO LOGIN DESTADDR DESTPORT\r\n250 SMTPUTF8")
                elif verb == "HELO":
                    say("250 fault.example.test")
                elif verb == "XCLIENT":
                    say("220 fault.example.test ESMTP")
                elif verb == "MAIL":
                    upcoming = self.transactions + 1
                    if self.fault == "garbage_to_mail" and upcoming == self.fault_on:
                        self.transactions += 1
                        say("this is not smtp")
                        continue
                    in_tx = True
                    say("250 2.1.0 Ok")
                elif verb == "RCPT":
                    say("250 2.1.5 Ok" if in_tx else "503 5.5.1 Error: need MAIL command")
                elif verb == "DATA":
                    if not in_tx:
                        say("503 5.5.1 Error: need RCPT command")
                        continue
                    in_tx = False
                    self.transactions += 1
                    faulty = self.transactions == self.fault_on
                    await self.data(reader, writer, say, self.fault if faulty else "none")
                elif verb in ("RSET", "NOOP"):
                    in_tx = False if verb == "RSET" else in_tx
                    say("250 2.0.0 Ok")
                elif verb == "QUIT":
                    say("221 2.0.0 Bye")
                    await writer.drain()
                    return
                else:
                    say("502 5.5.2 Error: command not recognized")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def data(self, reader, writer, say, fault: str) -> None:
        if fault == "kill_before_354":
            self._die()
        say("354 End data with <CR><LF>.<CR><LF>")
        await writer.drain()
        if fault == "rst_after_354":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        content = bytearray()
        first = True
        while True:
            line = await reader.readuntil(b"\r\n")
            if first and fault == "kill_mid_body":
                self._die()
            first = False
            if line == b".\r\n":
                break
            content += line[1:] if line.startswith(b".") else line
        self._save(bytes(content))
        if fault == "kill_after_dot":
            self._die()
        if fault == "stall_after_dot":
            await asyncio.sleep(3600)
        if fault == "garbage_after_dot":
            say("queued, probably")
            return
        if fault == "overlong_after_dot":
            say("250 2.0.0 " + "z" * (20 * 1024))
            return
        say(f"250 2.0.0 Ok: queued as F{os.getpid():X}N{self.stored}")
        await writer.drain()
        if fault == "kill_after_reply":
            await asyncio.sleep(0.05)  # the reply on the wire before the process goes
            self._die()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--fault", choices=PHASES, default="none")
    ap.add_argument("--fault-on", type=int, default=1)
    a = ap.parse_args()
    up = Upstream(a.store, a.fault, a.fault_on)
    server = await asyncio.start_server(up.session, "127.0.0.1", a.port, limit=1 << 20)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
