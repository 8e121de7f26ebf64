"""A private, real Postfix instance under a temporary folder, on a loopback port.

Own config_directory (main.cf, master.cf), queue_directory and data_directory;
smtpd on 127.0.0.1:PORT only; its log in a file of its own (maillog_file, via
postlogd).  It never touches /etc/postfix and never listens on port 25.

Policy, chosen to make Postfix judge the real client:

* mynetworks = 127.0.0.1/32 and smtpd_authorized_xclient_hosts = 127.0.0.1/32:
  smtpgate (connecting from 127.0.0.1) may send XCLIENT and is in mynetworks;
  a client that smtpgate announces as 127.0.0.2 is NOT, so Postfix refuses to
  relay for it - unless smtpgate hides the real client.
* Everything else left at Postfix 3.7's defaults that matter for smuggling:
  smtpd_forbid_bare_newline = no (and its exclusions = $mynetworks), so this
  Postfix ends DATA at "\\n.\\n" like the versions the smuggling research hit.
* Mail for example.test is delivered by `virtual` into one Maildir
  (DIR/vmail/box/); other domains go to `discard`.  No local delivery.

Extra main.cf lines (`extra_main_cf`) set up variants of this instance, e.g.
smtpd_milters for the milter front-end's tests; `queue()` lists its queues
(postqueue -j) and `delete_queued()` removes a message from them.

Deterministic observation uses smtpd's own log lines: "connect from",
"QUEUEID: client=NAME[ADDR]" and "disconnect from ... mail=N rcpt=N data=N".
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from netutil import LOOPBACK, free_port, is_listening, wait_until

DOMAIN = "example.test"

MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = upstream.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
smtpd_authorized_xclient_hosts = 127.0.0.1/32
smtpd_peername_lookup = no
disable_dns_lookups = yes
smtp_dns_support_level = disabled
local_recipient_maps =
alias_maps =
alias_database =
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {dir}/vmail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
virtual_mailbox_limit = 0
default_transport = discard
relay_transport = discard
message_size_limit = 52428800
maillog_file = {dir}/postfix.log
maillog_file_prefixes = {dir}
biff = no
"""


def postfix_available() -> bool:
    return bool(shutil.which("postfix") or os.access("/usr/sbin/postfix", os.X_OK))


@dataclass
class Disconnect:
    """smtpd's "disconnect from" line: the per-session command counters."""

    client: str
    counters: dict[str, str]

    def count(self, name: str) -> int:
        """Successful commands of one kind ("mail=2", or "rcpt=1/3" -> 1)."""
        v = self.counters.get(name, "0")
        return int(v.split("/")[0])


class PostfixInstance:
    def __init__(self, base: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="postfix-", dir=base))
        self.dir.chmod(0o755)
        self.port = 0
        self.running = False
        self.extra_main_cf = ""   # appended to main.cf (TLS, SASL...)
        self.extra_master_cf = ""  # appended to master.cf (tlsmgr...)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def config_dir(self) -> Path:
        return self.dir / "etc"

    @property
    def log_path(self) -> Path:
        return self.dir / "postfix.log"

    @property
    def maildir(self) -> Path:
        return self.dir / "vmail" / "box"

    def _postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["postfix", "-c", str(self.config_dir), *args],
                              capture_output=True, text=True, timeout=60, check=check)

    def start(self, attempts: int = 3) -> "PostfixInstance":
        if os.geteuid() != 0:
            raise RuntimeError("a private Postfix instance needs root")
        for sub in ("etc", "queue", "data", "vmail"):
            (self.dir / sub).mkdir(exist_ok=True)
        pf = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        os.chown(self.dir / "data", pf.pw_uid, pf.pw_gid)
        os.chown(self.dir / "vmail", nobody.pw_uid, nobody.pw_gid)
        (self.config_dir / "main.cf").write_text(MAIN_CF.format(
            dir=self.dir, domain=DOMAIN, uid=nobody.pw_uid, gid=nobody.pw_gid)
            + self.extra_main_cf)
        last = ""
        for _ in range(attempts):
            self.port = free_port()
            (self.config_dir / "master.cf").write_text(
                MASTER_CF.format(listen=f"{LOOPBACK}:{self.port}") + self.extra_master_cf)
            mark = self.log_mark()
            r = self._postfix("start", check=False)
            last = r.stdout + r.stderr
            if r.returncode != 0:
                raise RuntimeError(f"postfix start failed: {last}")
            self.running = True
            try:
                wait_until(lambda: is_listening(self.port) or "fatal" in self.log_since(mark),
                           20, "Postfix smtpd to listen")
            except Exception:
                self.stop()
                raise
            if is_listening(self.port):
                return self
            last = self.log_since(mark)
            self.stop()
        raise RuntimeError(f"Postfix did not start: {last}")

    def stop(self) -> None:
        if not self.running:
            return
        r = self._postfix("stop", check=False)
        if r.returncode != 0:
            self._postfix("abort", check=False)
        pid_file = self.dir / "queue" / "pid" / "master.pid"
        try:
            wait_until(lambda: not pid_file.exists() or not _alive(pid_file), 20,
                       "Postfix master to exit")
        finally:
            self.running = False

    def queue(self) -> list[dict]:
        """Every queued message (postqueue -j): queue_name, queue_id, sender, recipients..."""
        r = subprocess.run(["postqueue", "-c", str(self.config_dir), "-j"],
                           capture_output=True, text=True, timeout=60, check=True)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def delete_queued(self, queue_id: str) -> None:
        subprocess.run(["postsuper", "-c", str(self.config_dir), "-d", queue_id],
                       capture_output=True, text=True, timeout=60, check=True)

    # ---- the log ----

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        """Current end of the log: pass it to the *_since helpers."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(mark)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern: str, mark: int, timeout: float = 15) -> re.Match:
        rx = re.compile(pattern, re.M)
        return wait_until(lambda: rx.search(self.log_since(mark)), timeout,
                          f"/{pattern}/ in the Postfix log")

    def disconnects_since(self, mark: int) -> list[Disconnect]:
        out = []
        for m in re.finditer(r"postfix/smtpd\[\d+\]: disconnect from (\S+)(.*)$",
                             self.log_since(mark), re.M):
            counters = dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv)
            out.append(Disconnect(m.group(1), counters))
        return out

    def sessions_since(self, mark: int) -> tuple[int, int]:
        text = self.log_since(mark)
        return (len(re.findall(r"postfix/smtpd\[\d+\]: connect from ", text)),
                len(re.findall(r"postfix/smtpd\[\d+\]: disconnect from ", text)))

    def wait_sessions_closed(self, mark: int, timeout: float = 20) -> list[Disconnect]:
        """Wait until every smtpd session begun after `mark` has logged its disconnect.

        This is the deterministic "the upstream conversation is over" point:
        smtpd writes the line itself when the session ends, after any message
        it accepted (or was smuggled) has been counted.
        """
        def done():
            c, d = self.sessions_since(mark)
            return c > 0 and c == d
        wait_until(done, timeout, "all Postfix smtpd sessions to end")
        return self.disconnects_since(mark)

    def queue_ids_since(self, mark: int) -> dict[str, str]:
        """Queue id -> "NAME[ADDR]" from smtpd's "QUEUEID: client=..." lines."""
        return {m.group(1): m.group(2) for m in re.finditer(
            r"postfix/smtpd\[\d+\]: ([0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}): "
            r"client=(\S+?)(?:,|$)", self.log_since(mark), re.M)}

    # ---- delivered mail ----

    def delivered(self) -> list[bytes]:
        new = self.maildir / "new"
        if not new.is_dir():
            return []
        return [p.read_bytes() for p in sorted(new.iterdir())]

    def wait_delivered(self, marker: bytes, n: int = 1, timeout: float = 30) -> list[bytes]:
        """Wait for n delivered messages containing `marker`; returns them."""
        def found():
            hits = [m for m in self.delivered() if marker in m]
            return hits if len(hits) >= n else None
        return wait_until(found, timeout, f"{n} delivered message(s) containing {marker!r}")


def _alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
        return True
    except (OSError, ValueError, IndexError):
        return False
