"""Small assertions shared by the smtpgate test modules."""

from __future__ import annotations

from gate import Gate
from netutil import wait_until
from recorder import Recorder, settle
from smtpclient import Reply


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def codes(replies: list[Reply]) -> list[int]:
    return [r.code for r in replies]


def assert_reply(reply: Reply, code: int, enhanced: str | None = None) -> None:
    """Code (and enhanced status code, when given) as expected; the reply in the message."""
    assert reply.code == code, f"expected {code} {enhanced or ''}, got: {reply}"
    if enhanced is not None:
        assert reply.enhanced == enhanced, f"expected {code} {enhanced}, got: {reply}"


def wait_sessions_logged(gate: Gate, mark: int, n: int = 1, timeout: float = 15) -> list[str]:
    """Wait until smtpgate has logged n finished client connections since `mark`.

    The per-connection line is written when smtpgate frees the session, so
    after it nothing more can happen on that session's behalf.
    """
    def lines():
        found = [l for l in gate.log_since(mark).splitlines() if "disconnect from" in l]
        return found if len(found) >= n else None
    return wait_until(lines, timeout, f"{n} connection log line(s) from smtpgate")


def upstream_baseline(recorder: Recorder) -> int:
    """Connections the recorder has seen so far (the start-up probe), after they closed."""
    recorder.wait_idle()
    return len(recorder.connections)


def assert_no_upstream_connection(recorder: Recorder, baseline: int) -> None:
    """Nothing was opened to the upstream since `baseline` (call after the client session ended)."""
    settle()
    conns = recorder.connections
    new = conns[baseline:]
    assert not new, ("smtpgate opened upstream connection(s) for a client that never needed one: "
                     + "; ".join(" ".join(c.verbs) or "(no command)" for c in new))

