"""smtpgate behind HAProxy: PROXY protocol v1 (send-proxy) and v2
(send-proxy-v2) from trusted networks only.

The client connects to HAProxy from 127.0.0.2; HAProxy connects to smtpgate
from 127.0.0.1.  The header's source, 127.0.0.2, must be the client address
everywhere: smtpgate's log and the XCLIENT ADDR the upstream receives.  A
connection from outside proxy_trusted, or with a malformed, missing or late
header, is closed without a greeting.
"""

from __future__ import annotations

import shutil
import socket
import time

import pytest

from edge import HAProxy, certs, edge_gate_factory, tls_listener  # noqa: F401
from helpers import wait_sessions_logged
from netutil import LOOPBACK
from smtpclient import SMTPConn, simple_message

pytestmark = pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy not installed")

CLIENT = "127.0.0.2"


@pytest.fixture
def haproxy_factory(workdir):
    started: list[HAProxy] = []

    def start(routes) -> HAProxy:
        h = HAProxy(workdir, routes).start()
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()


def _closed_without_greeting(addr, send: bytes = b"", source: str | None = None,
                             timeout: float = 10) -> bool:
    s = socket.create_connection(addr, timeout=timeout,
                                 source_address=(source, 0) if source else None)
    try:
        if send:
            s.sendall(send)
        data = s.recv(4096)
        return data == b""
    except ConnectionResetError:
        return True
    finally:
        s.close()


@pytest.mark.parametrize("version,option", [("v1", "send-proxy"), ("v2", "send-proxy-v2")])
def test_haproxy_header_gives_client_address(recorder, edge_gate_factory, haproxy_factory,
                                             version, option):
    gate = edge_gate_factory([recorder.address], listeners={
        "edge": {"proxy_protocol": version, "proxy_trusted": ["127.0.0.1"]}})
    recorder.wait_idle()
    h = haproxy_factory({"smtp": (gate.listeners["edge"], option)})
    mark = gate.log_mark()
    with SMTPConn(*h.addr("smtp"), source=CLIENT) as c:
        assert c.greeting.code == 220, c.greeting
        c.ehlo("behind-haproxy.example.test")
        replies = c.mail_transaction("s@example.test", ["user@example.test"],
                                     simple_message(f"haproxy-{version}"))
        assert [r.code for r in replies] == [250, 250, 354, 250], [str(r) for r in replies]
        c.quit()
    msg = recorder.wait_messages(1)[0]
    assert b"haproxy-" + version.encode() in msg.content
    assert msg.xclient.get("ADDR") == CLIENT, msg.xclient
    line = wait_sessions_logged(gate, mark)[0]
    assert f"[{CLIENT}]" in line, line


def test_haproxy_v2_then_implicit_tls(recorder, certs, edge_gate_factory, haproxy_factory):
    """The header comes before the TLS handshake on an implicit-TLS PROXY listener."""
    import smtplib
    from edge import client_context
    gate = edge_gate_factory([recorder.address], listeners={
        "edge": tls_listener(certs, tls="implicit", proxy_protocol="any",
                             proxy_trusted=["127.0.0.0/8"])})
    recorder.wait_idle()
    h = haproxy_factory({"smtps": (gate.listeners["edge"], "send-proxy-v2")})
    host, port = h.addr("smtps")
    with smtplib.SMTP_SSL(host, port, context=client_context(certs["ca"]), timeout=20,
                          source_address=(CLIENT, 0)) as s:
        s.sendmail("s@example.test", ["user@example.test"], simple_message("proxied-tls"))
    msg = recorder.wait_messages(1)[0]
    assert msg.xclient.get("ADDR") == CLIENT


def test_untrusted_source_dropped(recorder, edge_gate_factory, haproxy_factory):
    """HAProxy connects from 127.0.0.1, which is not in proxy_trusted: closed without a
    greeting, nothing reaches the upstream; a direct client is dropped the same way."""
    gate = edge_gate_factory([recorder.address], listeners={
        "edge": {"proxy_protocol": "v2", "proxy_trusted": ["192.0.2.0/24"]}})
    recorder.wait_idle()
    before = len(recorder.connections)
    h = haproxy_factory({"smtp": (gate.listeners["edge"], "send-proxy-v2")})
    mark = gate.log_mark()
    assert _closed_without_greeting(h.addr("smtp"), source=CLIENT)
    assert _closed_without_greeting(gate.addr("edge"), b"PROXY TCP4 1.2.3.4 5.6.7.8 1 25\r\n")
    gate.wait_log(r"not in proxy_trusted of listener edge", mark)
    assert len(recorder.connections) == before


def test_malformed_missing_late_header(recorder, edge_gate_factory):
    """From a trusted source: SMTP instead of a header, a broken header, a v1 header on
    a v2-only listener, and silence past proxy_timeout all close without a greeting."""
    gate = edge_gate_factory([recorder.address], listeners={
        "edge": {"proxy_protocol": "v2", "proxy_trusted": ["127.0.0.1"], "proxy_timeout": 1}})
    addr = gate.addr("edge")
    mark = gate.log_mark()
    assert _closed_without_greeting(addr, b"EHLO client.example.test\r\n")
    assert _closed_without_greeting(addr, b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x05abcde")
    assert _closed_without_greeting(addr, b"PROXY TCP4 192.0.2.1 192.0.2.2 1000 25\r\n")
    t0 = time.monotonic()
    assert _closed_without_greeting(addr)
    assert 0.8 <= time.monotonic() - t0 < 8
    log = gate.log_since(mark)
    assert log.count("PROXY protocol: missing or malformed header") == 3, log
    assert "no complete header in time" in log or "no header" in log, log
    # the listener still serves a good header afterwards
    mark = gate.log_mark()
    with socket.create_connection(addr, timeout=10) as s:
        hdr = (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + socket.inet_aton("192.0.2.77")
               + socket.inet_aton(LOOPBACK) + (4321).to_bytes(2, "big") + (25).to_bytes(2, "big"))
        s.sendall(hdr)
        assert s.recv(100).startswith(b"220 ")
    line = wait_sessions_logged(gate, mark)[0]
    assert "[192.0.2.77]:4321" in line, line
