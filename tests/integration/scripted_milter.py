"""A scripted milter on libmilter (Debian's python3-milter), for the milter
client plugin's tests: every reply and every modification a milter can make,
chosen by what the message says, so that one running milter serves a whole
test module.

    /usr/bin/python3 scripted_milter.py PORT

Decisions (exact replies, so the tests can compare them):

  HELO reject-helo.test           reject, 550 5.7.1 HELO refused by milter
  MAIL mailreject@...             reject, 553 5.7.1 Sender refused by milter
  MAIL mailtempfail@...           tempfail (no text of its own)
  MAIL mailaccept@...             accept: nothing more of this message is asked
  MAIL maildiscard@...            discard
  RCPT rcptreject@...             reject, two lines: 550-5.7.1 First line / 550 5.7.1 Second line
  RCPT rcpttempfail@...           tempfail, 450 4.2.0 Mailbox busy
  Subject: edits                  every edit (below), then continue
  Subject: bigbody                the body replaced by 4,000 lines of 99 octets
                                  (396,000 octets, several SMFIR_REPLBODY packets)
  Subject: quarantine             quarantine "scripted hold"
  Subject: discard / reject / tempfail    that verdict at end of message
  Subject: progress               three SMFIR_PROGRESS 0.6 s apart, then continue
  Subject: sleep                  no answer for 30 s (the MTA's timeout decides)

Every message that reaches end of message gets
  X-Scripted: helo=H from=F rcpts=R1,R2 i=I client=A port=P family=F2 j=J daemon=D
with what the milter saw (macros and the connect arguments).

The edits: X-Added: added by milter (appended), X-Inserted: at the top
(index 0), X-Change's first field replaced by "changed by milter",
X-Delete's first field deleted, sender changed to <new-sender@example.test>
with SIZE=100, recipient <added@example.test> added, <addedpar@example.test>
added with NOTIFY=NEVER, <gone@example.test> deleted, body replaced by
"replaced body line 1\r\nreplaced body line 2\r\n".
"""

from __future__ import annotations

import sys
import time

# This folder's milter.py (the smtpgate-milter helper) would shadow
# python3-milter's C module of the same name.
sys.path = [p for p in sys.path[1:]]
import Milter  # noqa: E402


class Scripted(Milter.Base):
    def __init__(self) -> None:
        self.rcpts: list[str] = []
        self.subject = ""
        self.helo_name = ""
        self.mail = ""
        self.conn = ("", "", "")

    def connect(self, hostname, family, hostaddr):
        fam = {1: "unix", 2: "inet", 10: "inet6"}.get(family, str(family))
        port = hostaddr[1] if isinstance(hostaddr, tuple) and len(hostaddr) > 1 else ""
        addr = hostaddr[0] if isinstance(hostaddr, tuple) else str(hostaddr)
        self.conn = (addr, str(port), fam)
        return Milter.CONTINUE

    def hello(self, name):
        self.helo_name = name
        if name == "reject-helo.test":
            self.setreply("550", "5.7.1", "HELO refused by milter")
            return Milter.REJECT
        return Milter.CONTINUE

    def envfrom(self, f, *args):
        self.mail = f
        self.rcpts = []
        self.subject = ""
        self.args = args
        if f.startswith("<mailreject@"):
            self.setreply("553", "5.7.1", "Sender refused by milter")
            return Milter.REJECT
        if f.startswith("<mailtempfail@"):
            return Milter.TEMPFAIL
        if f.startswith("<mailaccept@"):
            return Milter.ACCEPT
        if f.startswith("<maildiscard@"):
            return Milter.DISCARD
        return Milter.CONTINUE

    def envrcpt(self, to, *args):
        if to.startswith("<rcptreject@"):
            self.setreply("550", "5.7.1", "First line", "Second line")
            return Milter.REJECT
        if to.startswith("<rcpttempfail@"):
            self.setreply("450", "4.2.0", "Mailbox busy")
            return Milter.TEMPFAIL
        self.rcpts.append(to + ("[" + " ".join(args) + "]" if args else ""))
        return Milter.CONTINUE

    def header(self, name, value):
        if name.lower() == "subject":
            self.subject = value
        return Milter.CONTINUE

    def eom(self):
        s = self.subject
        seen = (f"helo={self.helo_name} from={self.mail}"
                f"{'[' + ' '.join(self.args) + ']' if self.args else ''} "
                f"rcpts={','.join(self.rcpts)} i={self.getsymval('i')} "
                f"client={self.conn[0]} port={self.conn[1]} family={self.conn[2]} "
                f"j={self.getsymval('j')} daemon={self.getsymval('{daemon_name}')} "
                f"client_addr={self.getsymval('{client_addr}')} "
                f"mail_addr={self.getsymval('{mail_addr}')}")
        self.addheader("X-Scripted", seen)
        if s == "edits":
            self.addheader("X-Added", "added by milter")
            self.addheader("X-Inserted", "at the top", 0)
            self.chgheader("X-Change", 1, "changed by milter")
            self.chgheader("X-Delete", 1, "")
            self.chgfrom("<new-sender@example.test>", "SIZE=100")
            self.addrcpt("<added@example.test>")
            self.addrcpt("<addedpar@example.test>", "NOTIFY=NEVER")
            self.delrcpt("<gone@example.test>")
            self.replacebody(b"replaced body line 1\r\nreplaced body line 2\r\n")
            return Milter.CONTINUE
        if s == "bigbody":
            line = b"0123456789" * 9 + b"abcdefg\r\n"  # 99 octets
            for _ in range(4):
                self.replacebody(line * 1000)
            return Milter.CONTINUE
        if s == "quarantine":
            self.quarantine("scripted hold")
            return Milter.CONTINUE
        if s == "discard":
            return Milter.DISCARD
        if s == "reject":
            self.setreply("554", "5.7.1", "Refused by milter", "at end of message")
            return Milter.REJECT
        if s == "tempfail":
            return Milter.TEMPFAIL
        if s == "progress":
            for _ in range(3):
                time.sleep(0.6)
                self.progress()
            return Milter.CONTINUE
        if s == "sleep":
            time.sleep(30)
            return Milter.CONTINUE
        return Milter.CONTINUE


def main() -> None:
    port = int(sys.argv[1])
    Milter.factory = Scripted
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY | Milter.ADDRCPT
                     | Milter.ADDRCPT_PAR | Milter.DELRCPT | Milter.QUARANTINE
                     | Milter.CHGFROM)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    Milter.runmilter("scripted", f"inet:{port}@127.0.0.1", 240)


if __name__ == "__main__":
    main()
