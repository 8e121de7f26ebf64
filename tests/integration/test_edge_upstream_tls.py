"""The upstream side of STARTTLS, against a scripted upstream that misbehaves on
purpose: replies injected after its "220" to STARTTLS must be discarded, not
read as the answer to smtpgate's next EHLO (RFC 3207 5, the upstream-side twin
of CVE-2011-0411); the session then goes on over TLS.
"""

from __future__ import annotations

import socket
import ssl
import threading

from edge import certs, edge_gate_factory  # noqa: F401
from netutil import LOOPBACK
from smtpclient import SMTPConn, simple_message


class InjectingUpstream:
    """Greets, offers STARTTLS, answers it with "220" plus an injected EHLO reply in
    the same write, then speaks TLS.  Records the commands seen over TLS."""

    def __init__(self, cert, key) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.over_tls: list[str] = []
        self.messages: list[bytes] = []
        self.stop_flag = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _serve(self) -> None:
        while not self.stop_flag:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(20)
        f = conn.makefile("rwb")
        tls = False
        try:
            f.write(b"220 injector.example.test ESMTP\r\n")
            f.flush()
            while True:
                line = f.readline()
                if not line:
                    return
                verb = line.split(b" ", 1)[0].strip().upper().decode()
                if tls:
                    self.over_tls.append(verb)
                if verb == "EHLO":
                    caps = b"250 8BITMIME\r\n" if tls else b"250-STARTTLS\r\n250 8BITMIME\r\n"
                    f.write(b"250-injector.example.test\r\n" + caps)
                elif verb == "STARTTLS" and not tls:
                    f.write(b"220 2.0.0 Ready\r\n250-injected\r\n250 INJECTED-CAPABILITY\r\n")
                    f.flush()
                    f.close()
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                    f = conn.makefile("rwb")
                    tls = True
                    continue
                elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                    f.write(b"250 2.0.0 Ok\r\n")
                elif verb == "DATA":
                    f.write(b"354 go\r\n")
                    f.flush()
                    data = b""
                    while not data.endswith(b"\r\n.\r\n"):
                        chunk = f.readline()
                        if not chunk:
                            return
                        data += chunk
                    self.messages.append(data)
                    f.write(b"250 2.0.0 Ok: queued as INJ1\r\n")
                elif verb == "QUIT":
                    f.write(b"221 2.0.0 Bye\r\n")
                    f.flush()
                    return
                else:
                    f.write(b"502 5.5.1 no\r\n")
                f.flush()
        except (OSError, ssl.SSLError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def stop(self) -> None:
        self.stop_flag = True
        self.sock.close()


def test_upstream_injection_after_starttls_discarded(certs, edge_gate_factory):
    up = InjectingUpstream(*certs["mx"])
    try:
        gate = edge_gate_factory([up.address], client_identity="none",
                                 listeners={"plain": {}},
                                 upstream_tls={"tls": "required",
                                               "tls_ca_file": str(certs["ca"].cert),
                                               "tls_verify_name": "mx.example.test"})
        mark = gate.log_mark()
        with SMTPConn(*gate.addr("plain")) as c:
            c.ehlo()
            replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                         simple_message("upstream-injection"))
            assert [r.code for r in replies] == [250, 250, 354, 250], [str(r) for r in replies]
            assert "queued as INJ1" in replies[-1].text
            c.quit()
        assert up.over_tls[:1] == ["EHLO"], up.over_tls
        assert any(b"upstream-injection" in m for m in up.messages)
        log = gate.log_since(mark)
        assert "octets after the 220 to STARTTLS discarded" in log, log
        assert "TLS established" in log and "verified" in log, log
    finally:
        up.stop()
