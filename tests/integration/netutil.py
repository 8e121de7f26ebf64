"""Loopback networking and polling helpers for the integration tests.

Everything here is bounded: every wait has a deadline, every loop a count.
Nothing binds or connects outside 127.0.0.0/8.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Callable, TypeVar

LOOPBACK = "127.0.0.1"

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A bounded wait ran out of time; the message says what was awaited."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on `host` that nothing listens on right now.

    The kernel picks it (bind to port 0), so two calls rarely collide; a
    program started on it may still lose a race with another process, which is
    why the starters in this package retry with a fresh port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def closed_port(host: str = LOOPBACK) -> int:
    """A port on which connections are refused (nothing listens): a dead upstream."""
    return free_port(host)


def _hex_ipv4(host: str) -> str:
    return "".join(f"{b:02X}" for b in reversed(socket.inet_aton(host)))


def is_listening(port: int, host: str = LOOPBACK) -> bool:
    """True when some socket is in LISTEN state on host:port.

    Read from /proc/net/tcp rather than by connecting, so that checking a
    server's readiness does not itself open an SMTP session.
    """
    want = f"{_hex_ipv4(host)}:{port:04X}"
    want_any = f"00000000:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return _can_connect(host, port)
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and fields[1] in (want, want_any):
            return True
    return False


def _can_connect(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], T], timeout: float, what: str,
               interval: float = 0.02) -> T:
    """Poll `predicate` until it returns something truthy, at most `timeout` seconds.

    Returns the truthy value; raises WaitTimeout naming `what` otherwise.  The
    interval grows up to 0.2 s so long waits do not spin.
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
