"""A line oracle on loopback for the test_evloop plugin: it reads "RCPT <address>" and,
after the delay the test gave that address, answers "reject <text>" or "ok".  It records
when each question came, so a test can tell that a plugin asked without blocking."""

from __future__ import annotations

import socket
import threading
import time

from netutil import LOOPBACK


class Oracle:
    def __init__(self, delays: dict[str, float] | None = None,
                 rejects: dict[str, str] | None = None) -> None:
        self.delays = delays or {}
        self.rejects = rejects or {}
        self.asked: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((LOOPBACK, 0))
        self._sock.listen(64)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            data = b""
            while b"\n" not in data:
                chunk = conn.recv(1024)
                if not chunk:
                    return
                data += chunk
            line = data.split(b"\n", 1)[0].decode()
            address = line.split(" ", 1)[1] if " " in line else ""
            with self._lock:
                self.asked.append((address, time.monotonic()))
            time.sleep(self.delays.get(address, 0))
            text = self.rejects.get(address)
            conn.sendall((f"reject {text}\n" if text else "ok\n").encode())

    def close(self) -> None:
        self._stop = True
        self._sock.close()
