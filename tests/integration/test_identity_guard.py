"""client_identity judged against what each upstream offers, before any client:

* "none" in front of an upstream that takes XCLIENT with ADDR shows it every client
  as smtpgate's own address, and a Postfix that trusts that address (mynetworks)
  relays for anyone: `-t` and the start refuse it, a session never forwards there,
  and only client_identity_none_despite_xclient = true lets it pass;
* "xclient" in front of an upstream that lacks XCLIENT (or its ADDR) is warned
  about at start and by `-t`, with the fix, not first at a client's 451.

smtp-sink offers XCLIENT without ADDR, so it cannot learn the client: "none" in front
of it stays allowed.  The open-relay case runs against a real Postfix whose
mynetworks holds smtpgate's address.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gate import Gate, GateStartError, run_config_test
from netutil import LOOPBACK, free_port
from recorder import DEFAULT_CAPS

NONE_REFUSED = (r"upstream {up} offers XCLIENT, but client_identity = \"none\" would show it "
                r"every client as smtpgate's own address")


def config(binary, workdir: Path, upstreams, name: str, **settings) -> Path:
    g = Gate(binary, workdir, upstreams, settings, name=name)
    g.port = free_port()
    g.file_listen_port = g.port
    g.conf_path.write_text(g.config_text())
    return g.conf_path


def test_check_refuses_none_in_front_of_postfix_with_xclient(postfix, smtpgate_binary, workdir):
    conf = config(smtpgate_binary, workdir, [postfix.address], "pf", client_identity="none")
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(NONE_REFUSED.format(up=re.escape(postfix.address)), r.stderr), r.stderr
    assert 'set client_identity = "xclient"' in r.stderr
    assert "configuration has errors" in r.stderr and "configuration OK" not in r.stdout
    # The admin who knows the upstream judges nobody by address says so.
    conf = config(smtpgate_binary, workdir, [postfix.address], "pf2", client_identity="none",
                  client_identity_none_despite_xclient=True)
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stderr
    assert "offers XCLIENT" not in r.stderr
    # "xclient" in front of the same Postfix is what it is for.
    conf = config(smtpgate_binary, workdir, [postfix.address], "pf3", client_identity="xclient")
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode == 0 and "XCLIENT" not in r.stderr, r.stderr


def test_start_refused_and_no_session_forwards(recorder, smtpgate_binary, workdir):
    g = Gate(smtpgate_binary, workdir, [recorder.address], {"client_identity": "none"},
             name="refused")
    with pytest.raises(GateStartError) as e:
        g.start()
    assert re.search(NONE_REFUSED.format(up=re.escape(recorder.address)), str(e.value))
    assert "refusing to start" in str(e.value)
    assert g.returncode == 1
    # Nothing but the probe's EHLO/QUIT reached the upstream.
    assert all(set(c.verbs) <= {"EHLO", "QUIT"} for c in recorder.connections)


def test_upstream_that_learns_xclient_later_gets_no_session(recorder_factory, gate_factory):
    """Down at start (nothing to judge), then up with XCLIENT: the probe says so and
    no session forwards to it; the client is told to come back."""
    port = free_port()
    gate = gate_factory([f"{LOOPBACK}:{port}"], client_identity="none", probe_interval=1)
    mark = gate.log_mark()
    recorder = recorder_factory(port=port)
    gate.wait_log(NONE_REFUSED.format(up=re.escape(recorder.address)), mark)
    gate.wait_log(r"upstream \S+ is up", mark)
    session_mark = gate.log_mark()
    with gate.connect() as c:
        r = c.ehlo("client.example.test")
        if r.code == 250:
            r = c.cmd("MAIL FROM:<s@example.test>")
    assert r.code in (421, 451), r
    assert re.search(NONE_REFUSED.format(up=re.escape(recorder.address)),
                     gate.log_since(session_mark))
    assert not [c for c in recorder.connections if "MAIL" in c.verbs]


def test_missing_xclient_warned_at_start_and_by_check(recorder_factory, gate_factory,
                                                      smtpgate_binary, workdir):
    plain = recorder_factory(caps=DEFAULT_CAPS - {"XCLIENT"})
    conf = config(smtpgate_binary, workdir, [plain.address], "nox")
    r = run_config_test(smtpgate_binary, conf)
    warning = (f"upstream {plain.address} does not offer XCLIENT (client_identity = \"xclient\"): "
               "sessions through it will fail with 451; on Postfix set "
               "smtpd_authorized_xclient_hosts to smtpgate's address")
    assert r.returncode == 0 and warning in r.stderr, r.stderr
    gate = gate_factory([plain.address])
    head = gate.log_text()
    assert warning in head
    # Said before the daemon is ready, not at the first client.
    assert head.index(warning) < head.index(" ready: ")


def test_sink_without_addr_allowed_under_none(sink, smtpgate_binary, workdir):
    """smtp-sink: XCLIENT without ADDR cannot learn the client: "none" passes quietly;
    "xclient" is warned about."""
    conf = config(smtpgate_binary, workdir, [sink.address], "sinknone", client_identity="none")
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode == 0 and "XCLIENT" not in r.stderr, r.stderr
    conf = config(smtpgate_binary, workdir, [sink.address], "sinkx")
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode == 0 and f"upstream {sink.address} offers XCLIENT without ADDR" in r.stderr


def test_unreachable_upstream_noted_by_check(smtpgate_binary, workdir):
    dead = f"{LOOPBACK}:{free_port()}"
    conf = config(smtpgate_binary, workdir, [dead], "dead", client_identity="none")
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode == 0, r.stderr
    assert f"upstream {dead} did not answer: what it offers for client_identity is not checked" \
        in r.stderr
