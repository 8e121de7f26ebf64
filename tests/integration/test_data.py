"""The octets the client meant are the octets that reach the upstream.

DATA content is compared after dot-unstuffing at both ends: the recorder
unstuffs what smtpgate sent exactly as RFC 5321 4.5.2 says, so a proxy that
loses, adds or mis-stuffs a single octet fails.  Also: 8-bit content, lines
at and over the data line cap, messages ending with or without an empty last
line, an empty message, data split into tiny writes, BDAT, ESMTP parameters
passed on, a 30 MB message with a small spill threshold and a flat memory
profile, the message-size limit while streaming, and a client that vanishes
mid-DATA leaving nothing upstream.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from gate import find_release_binary
from helpers import assert_reply, codes, wait_sessions_logged
from recorder import Script
from smtpclient import dot_stuff, simple_message

CHUNKING_CAPS = Script().caps | {"CHUNKING", "BINARYMIME"}


def _send_data(gate, content: bytes, mail_params: str = "", rcpts=("r@example.test",)):
    with gate.connect() as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", list(rcpts), content, mail_params)
        c.quit()
    return replies


DOT_BODY = (b".\r\n"           # would end the message if not stuffed
            b"..\r\n"
            b"...\r\n"
            b".leading dot\r\n"
            b" .space then dot\r\n"
            b"dot at end.\r\n"
            b"\r\n"
            b".\r\n")


def test_dot_lines_arrive_exactly(gate, recorder):
    """Lines that are or begin with dots arrive unchanged; the wire to the upstream is
    correctly stuffed."""
    content = simple_message("dots", DOT_BODY)
    assert _send_data(gate, content)[-1].code == 250
    [m] = recorder.wait_messages(1)
    assert m.content == content
    if m.method == "DATA":
        assert m.wire == dot_stuff(content)


def test_message_starting_with_dot_line(gate, recorder):
    """A message whose very first line is "." (stuffed to "..") is not taken for the end."""
    content = b".\r\nSubject: first line was a dot\r\n\r\nbody\r\n"
    assert _send_data(gate, content)[-1].code == 250
    [m] = recorder.wait_messages(1)
    assert m.content == content


@pytest.mark.parametrize("ending", [b"body\r\n", b"body\r\n\r\n", b"body\r\n\r\n\r\n"],
                         ids=["crlf-dot", "empty-line-then-dot", "two-empty-lines"])
def test_end_of_message_with_and_without_empty_last_line(gate, recorder, ending):
    """Whether or not the client put an empty line before the final dot, the upstream
    gets exactly the CRLFs the client sent, no more and no fewer."""
    content = b"Subject: ending\r\n\r\n" + ending
    with gate.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<r@example.test>\r\nDATA\r\n")
        assert codes(c.read_replies(3)) == [250, 250, 354]
        c.send(content + b".\r\n")
        assert c.read_reply().code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.content == content


def test_empty_message(gate, recorder):
    """".\\r\\n" right after 354 ends an empty message: the CRLF of the DATA line counts
    as the CRLF before the dot."""
    with gate.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<r@example.test>\r\nDATA\r\n")
        assert codes(c.read_replies(3)) == [250, 250, 354]
        c.send(b".\r\n")
        final = c.read_reply()
        c.quit()
    assert final.code == 250, str(final)
    [m] = recorder.wait_messages(1)
    assert m.content == b""


def test_data_split_in_tiny_writes(gate, recorder):
    """Content written a few octets at a time (so CRLF.CRLF and stuffed dots straddle
    reads) arrives intact."""
    content = simple_message("tiny-writes", DOT_BODY * 8)
    wire = dot_stuff(content)
    with gate.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<r@example.test>\r\nDATA\r\n")
        assert codes(c.read_replies(3)) == [250, 250, 354]
        for i in range(0, len(wire), 3):
            c.send(wire[i:i + 3])
        assert c.read_reply().code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.content == content


def test_8bit_octets_with_body_8bitmime(gate, recorder):
    """Every octet 0x01-0xFF except CR and LF, with BODY=8BITMIME, arrives unchanged and
    the parameter is passed upstream."""
    octets = bytes(b for b in range(1, 256) if b not in (0x0A, 0x0D))
    content = simple_message("8bit", octets + b"\r\n" + "gr\u00fc\u00dfe\r\n".encode() + b"\xff\xfe\x80\r\n")
    assert _send_data(gate, content, "BODY=8BITMIME")[-1].code == 250
    [m] = recorder.wait_messages(1)
    assert m.content == content
    assert "BODY=8BITMIME" in m.mail_params.upper()


def test_esmtp_parameters_passed_through(gate, recorder):
    """SIZE, BODY, RET, ENVID on MAIL and NOTIFY, ORCPT on RCPT reach the upstream."""
    content = simple_message("params")
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<s@example.test> SIZE={len(content)} BODY=8BITMIME RET=HDRS "
                     "ENVID=abc+2Bdef").code == 250
        assert c.cmd("RCPT TO:<r@example.test> NOTIFY=SUCCESS,FAILURE "
                     "ORCPT=rfc822;r@example.test").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(content))
        assert c.read_reply().code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    mail = m.mail_params.upper().split()
    for p in (f"SIZE={len(content)}", "BODY=8BITMIME", "RET=HDRS", "ENVID=ABC+2BDEF"):
        assert p in mail, (p, m.mail_params)
    rcpt = m.rcpt_params[0].upper().split()
    assert "NOTIFY=SUCCESS,FAILURE" in rcpt and "ORCPT=RFC822;R@EXAMPLE.TEST" in rcpt, m.rcpt_params


def test_smtputf8_passed_through(gate, recorder):
    """An SMTPUTF8 transaction with a UTF-8 sender reaches the upstream unchanged."""
    sender = "j\u00f6rg@example.test"
    with gate.connect() as c:
        assert "SMTPUTF8" in c.ehlo().keywords()
        assert c.cmd(f"MAIL FROM:<{sender}> SMTPUTF8").code == 250
        assert c.cmd("RCPT TO:<r@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(simple_message("utf8", "\u00e9t\u00e9\r\n")))
        assert c.read_reply().code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.mail_from == sender
    assert "SMTPUTF8" in m.mail_params.upper()


@pytest.mark.parametrize("extra,expect", [(0, 250), (1, 554)], ids=["at-cap", "over-cap"])
def test_long_line_near_cap(recorder, gate_factory, extra, expect):
    """max_data_line_length=2000: a 2000-octet line passes intact; 2001 gets 554 5.6.0
    and nothing reaches the upstream."""
    cap = 2000
    gate = gate_factory([recorder.address], max_data_line_length=cap)
    line = b"L" * (cap + extra)
    content = simple_message("long-line", b"short\r\n" + line + b"\r\nafter\r\n")
    final = _send_data(gate, content)[-1]
    if expect == 250:
        assert final.code == 250, str(final)
        [m] = recorder.wait_messages(1)
        assert m.content == content
    else:
        assert_reply(final, 554, "5.6.0")
        recorder.wait_idle()
        assert recorder.messages == []


def test_message_too_big_while_streaming(recorder, gate_factory):
    """No SIZE declared, message over max_message_size: 552 5.3.4 after the data,
    nothing (not even DATA) sent upstream."""
    gate = gate_factory([recorder.address], max_message_size=100_000)
    content = simple_message("too-big", b"x" * 76 + b"\r\n") + (b"y" * 76 + b"\r\n") * 3000
    with gate.connect() as c:
        c.ehlo()
        replies = c.mail_transaction("s@example.test", ["r@example.test"], content)
        assert_reply(replies[-1], 552, "5.3.4")
        assert c.cmd("NOOP").code == 250, "the session goes on after the refusal"
        c.quit()
    recorder.wait_idle()
    assert recorder.messages == []
    assert all("DATA" not in conn.verbs and "BDAT" not in conn.verbs for conn in recorder.connections)


def test_client_disconnects_mid_data(gate, recorder):
    """The client drops the connection half way through the message: the upstream never
    sees DATA, let alone a message."""
    mark = gate.log_mark()
    c = gate.connect()
    c.ehlo()
    c.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<r@example.test>\r\nDATA\r\n")
    assert codes(c.read_replies(3)) == [250, 250, 354]
    c.send(simple_message("vanishing", b"first half of the message\r\n" * 100))
    c.close()
    wait_sessions_logged(gate, mark)
    recorder.wait_idle()
    assert recorder.messages == []
    assert all("DATA" not in conn.verbs and "BDAT" not in conn.verbs for conn in recorder.connections)


# ---- BDAT (CHUNKING, RFC 3030) ----

def _bdat_gate(recorder_factory, gate_factory):
    rec = recorder_factory(caps=CHUNKING_CAPS)
    return rec, gate_factory([rec.address])


def _assert_bdat_content(got: bytes, sent: bytes) -> None:
    """BDAT content arrives as sent; forwarded as DATA, a missing final CRLF may be added."""
    if sent.endswith(b"\r\n"):
        assert got == sent
    else:
        assert got in (sent, sent + b"\r\n"), got[-40:]


def test_bdat_single_chunk_last(recorder_factory, gate_factory):
    """BDAT n LAST with dots, CRLF.CRLF inside and no final CRLF: arrives intact."""
    rec, gate = _bdat_gate(recorder_factory, gate_factory)
    content = b"Subject: bdat-one\r\n\r\n.\r\n..\r\nmiddle\r\n.\r\nno final newline"
    with gate.connect() as c:
        assert "CHUNKING" in c.ehlo().keywords()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<r@example.test>").code == 250
        c.send(b"BDAT %d LAST\r\n" % len(content) + content)
        assert c.read_reply().code == 250
        c.quit()
    [m] = rec.wait_messages(1)
    _assert_bdat_content(m.content, content)


def test_bdat_several_chunks_then_empty_last(recorder_factory, gate_factory):
    """BDAT without LAST, several times, then BDAT 0 LAST: one message, chunks joined."""
    rec, gate = _bdat_gate(recorder_factory, gate_factory)
    chunks = [b"Subject: bdat-many\r\n\r\n", b"part one\r\n.", b"\r\npart two\r\n", b"part three\r\n"]
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<r@example.test>").code == 250
        for ch in chunks:
            c.send(b"BDAT %d\r\n" % len(ch) + ch)
            assert c.read_reply().code == 250
        c.send(b"BDAT 0 LAST\r\n")
        assert c.read_reply().code == 250
        c.quit()
    [m] = rec.wait_messages(1)
    _assert_bdat_content(m.content, b"".join(chunks))


def test_bdat_pipelined(recorder_factory, gate_factory):
    """MAIL, RCPT, BDAT, BDAT LAST all in one write: four replies, one intact message."""
    rec, gate = _bdat_gate(recorder_factory, gate_factory)
    a, b = b"Subject: bdat-pipe\r\n\r\nfirst\r\n", b"second\r\n"
    with gate.connect() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<r@example.test>\r\n"
               + b"BDAT %d\r\n" % len(a) + a + b"BDAT %d LAST\r\n" % len(b) + b)
        assert codes(c.read_replies(4)) == [250, 250, 250, 250]
        c.quit()
    [m] = rec.wait_messages(1)
    assert m.content == a + b


def test_bdat_binarymime(recorder_factory, gate_factory):
    """BODY=BINARYMIME with NUL, bare CR and bare LF octets: legal in BDAT, passed as is."""
    rec, gate = _bdat_gate(recorder_factory, gate_factory)
    content = b"Subject: binary\r\n\r\n" + bytes(range(256)) * 4 + b"\r\n"
    with gate.connect() as c:
        caps = c.ehlo().keywords()
        if "BINARYMIME" not in caps:
            c.quit()
            pytest.skip("smtpgate does not offer BINARYMIME")
        assert c.cmd("MAIL FROM:<s@example.test> BODY=BINARYMIME").code == 250
        assert c.cmd("RCPT TO:<r@example.test>").code == 250
        c.send(b"BDAT %d LAST\r\n" % len(content) + content)
        assert c.read_reply().code == 250
        c.quit()
    [m] = rec.wait_messages(1)
    assert m.method == "BDAT", "binary content can only go on as BDAT"
    assert m.content == content


# ---- a large message ----

@pytest.mark.time_limit(240)
def test_30mb_message_intact_with_flat_memory(recorder, workdir, gate_factory):
    """30 MB through smtpgate with spill_threshold=64 KiB: the hash matches at the
    upstream, smtpgate's resident memory grows by far less than the message, and the
    spool folder is empty afterwards.

    The release build is used when there is one: the sanitizer build's quarantine
    and shadow memory would measure ASan, not smtpgate.
    """
    release = find_release_binary()
    env = None if release else {"ASAN_OPTIONS": "detect_leaks=1:quarantine_size_mb=4:"
                                                "thread_local_quarantine_size_kb=64"}
    gate = gate_factory([recorder.address], binary=release, env=env,
                        spill_threshold=65536, max_message_size=64 * 1024 * 1024,
                        data_timeout=120, upstream_data_timeout=120, upstream_final_timeout=120)
    size = 30 * 1024 * 1024
    line = (b"0123456789abcdefghijklmnopqrstuvwxyz" * 27)[:998] + b"\r\n"
    dotted = b"." + line[1:]
    head = b"Subject: thirty megabytes\r\n\r\n"
    n_lines = (size - len(head)) // len(line)
    body = b"".join(dotted if i % 97 == 0 else line for i in range(n_lines))
    content = head + body
    digest = hashlib.sha256(content).hexdigest()
    wire = dot_stuff(content)
    del body

    rss_before = gate.proc_status("VmRSS")
    with gate.connect(timeout=120) as c:
        c.ehlo()
        assert c.cmd(f"MAIL FROM:<big@example.test> SIZE={len(content)}").code == 250
        assert c.cmd("RCPT TO:<r@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        view = memoryview(wire)
        for i in range(0, len(view), 1 << 20):
            c.send(view[i:i + (1 << 20)])
        final = c.read_reply()
        hwm = gate.proc_status("VmHWM")
        c.quit()
    assert final.code == 250, str(final)
    [m] = recorder.wait_messages(1, timeout=60)
    assert len(m.content) == len(content)
    assert hashlib.sha256(m.content).hexdigest() == digest
    growth_mib = (hwm - rss_before) / 1024
    assert growth_mib < 20, (f"smtpgate's peak RSS grew by {growth_mib:.1f} MiB for a "
                             f"{size >> 20} MiB message (spill_threshold 64 KiB)")
    leftovers = os.listdir(gate.spool_dir)
    assert leftovers == [], f"spool files left behind: {leftovers}"
