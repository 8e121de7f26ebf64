"""The EHLO reply: what smtpgate honours, intersected with what the upstream offers.

Never SIZE, SMTPUTF8, 8BITMIME or CHUNKING the upstream lacks (learned by the
health probe), never the upstream-only XCLIENT or XFORWARD (rule 2).  Upstreams
here: smtp-sink (no SIZE/SMTPUTF8/CHUNKING; -8 drops 8BITMIME), the recorder
with chosen extensions, and a real Postfix (offers everything).  smtp-sink
judges nothing by client address and offers XCLIENT without ADDR, so the
gates in front of it run with client_identity = "none".
"""

from __future__ import annotations

from recorder import Script, settle

UPSTREAM_ONLY = {"XCLIENT", "XFORWARD"}


def _ehlo_keywords(gate) -> dict[str, str]:
    with gate.connect() as c:
        caps = c.ehlo().keywords()
        helo = c.cmd("HELO client.example.test")
        c.quit()
    assert helo.code == 250 and len(helo.lines) == 1, f"HELO reply: {helo}"
    return caps


def test_smtp_sink_upstream_lacks_size_smtputf8_chunking(sink, gate_factory):
    """Behind smtp-sink: no SIZE, SMTPUTF8, CHUNKING; never XCLIENT/XFORWARD (which it offers)."""
    caps = _ehlo_keywords(gate_factory([sink.address], client_identity="none"))
    assert not {"SIZE", "SMTPUTF8", "CHUNKING", "BINARYMIME"} & caps.keys(), caps
    assert not UPSTREAM_ONLY & caps.keys(), caps
    assert "PIPELINING" in caps and "8BITMIME" in caps, caps


def test_smtp_sink_without_8bitmime(sink_factory, gate_factory):
    """Behind `smtp-sink -8`: no 8BITMIME either."""
    caps = _ehlo_keywords(gate_factory([sink_factory("-8").address], client_identity="none"))
    assert "8BITMIME" not in caps, caps
    assert not UPSTREAM_ONLY & caps.keys(), caps


def test_recorder_without_smtputf8_and_chunking(recorder_factory, gate_factory):
    """Behind an upstream without SMTPUTF8 and CHUNKING: neither is shown."""
    rec = recorder_factory(caps=Script().caps - {"SMTPUTF8", "CHUNKING"})
    caps = _ehlo_keywords(gate_factory([rec.address]))
    assert "SMTPUTF8" not in caps and "CHUNKING" not in caps, caps
    assert "XCLIENT" not in caps


def test_recorder_with_everything(recorder_factory, gate_factory):
    """Behind an upstream that offers SMTPUTF8 and CHUNKING: smtpgate shows them, and
    still hides XCLIENT."""
    rec = recorder_factory(caps=Script().caps | {"CHUNKING"})
    caps = _ehlo_keywords(gate_factory([rec.address]))
    assert {"PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING", "ENHANCEDSTATUSCODES"} <= caps.keys(), caps
    assert "XCLIENT" not in caps


def test_size_is_the_smaller_limit(recorder_factory, gate_factory):
    """SIZE shows the smaller of max_message_size and the upstream's own limit."""
    rec = recorder_factory(size_limit=50_000)
    caps = _ehlo_keywords(gate_factory([rec.address], max_message_size=10_000_000))
    assert "SIZE" in caps and 0 < int(caps["SIZE"]) <= 50_000, caps
    rec2 = recorder_factory(size_limit=50_000_000)
    caps = _ehlo_keywords(gate_factory([rec2.address], max_message_size=1_000_000))
    assert "SIZE" in caps and 0 < int(caps["SIZE"]) <= 1_000_000, caps


def test_postfix_upstream(postfix, gate_factory):
    """Behind Postfix (which offers XCLIENT, XFORWARD-less, SIZE, SMTPUTF8, CHUNKING...):
    the honoured extensions are shown, XCLIENT is not, and no upstream session is opened
    by EHLO."""
    gate = gate_factory([postfix.address])
    mark = postfix.log_mark()
    caps = _ehlo_keywords(gate)
    assert {"PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "CHUNKING",
            "ENHANCEDSTATUSCODES"} <= caps.keys(), caps
    assert not UPSTREAM_ONLY & caps.keys(), caps
    assert int(caps["SIZE"]) <= gate.settings["max_message_size"]
    settle()
    connects, _ = postfix.sessions_since(mark)
    assert connects == 0, "EHLO alone must not open an upstream session"
