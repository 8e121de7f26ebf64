"""The plugin SDK: the example plugin, built out of the tree against the installed header and
its pkg-config file only, loads into smtpgate and does what its documentation says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gate import REPO, plugin_section, run_config_test
from helpers import assert_reply
from netutil import LOOPBACK, free_port
from smtpclient import simple_message


@pytest.fixture(scope="module")
def example_so(tmp_path_factory) -> Path:
    if not shutil.which("pkg-config") or not shutil.which("cc"):
        pytest.skip("pkg-config and cc are needed")
    root = tmp_path_factory.mktemp("sdk")
    stage = root / "stage"
    subprocess.run(["make", "-s", "-C", str(REPO), "install-sdk", f"DESTDIR={stage}",
                    "PREFIX=/usr/local"], check=True, capture_output=True, text=True)
    env = {**os.environ, "PKG_CONFIG_SYSROOT_DIR": str(stage),
           "PKG_CONFIG_PATH": str(stage / "usr/local/share/pkgconfig"), "PKG_CONFIG_LIBDIR": ""}
    cflags = subprocess.run(["pkg-config", "--cflags", "smtpgate-plugin"], env=env, check=True,
                            capture_output=True, text=True).stdout.split()
    assert cflags == [f"-I{stage}/usr/local/include"], cflags
    version = subprocess.run(["pkg-config", "--modversion", "smtpgate-plugin"], env=env,
                             check=True, capture_output=True, text=True).stdout.strip()
    abi = re.search(r"#define SG_PLUGIN_ABI_VERSION (\d+)",
                    (REPO / "plugins/smtpgate/plugin.h").read_text()).group(1)
    assert version == abi == "2"
    variable = subprocess.run(["pkg-config", "--variable=abi_version", "smtpgate-plugin"],
                              env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert variable == abi
    # Only the copied source and the installed SDK: nothing of the tree is on the path.
    src = root / "example.c"
    shutil.copy(REPO / "plugins/example/example.c", src)
    out = root / "example.so"
    build = subprocess.run(["cc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                            *cflags, "-o", str(out), str(src)], capture_output=True, text=True,
                           cwd=root)
    assert build.returncode == 0, build.stderr
    return out


def test_example_plugin_built_out_of_tree(gate_factory, recorder, example_so):
    extra = plugin_section("example", example_so,
                           refuse_recipients=["trap@example.test", "@spam.example"])
    gate = gate_factory([recorder.address], extra=extra)
    recorder.wait_idle()
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert_reply(c.cmd("RCPT TO:<trap@example.test>"), 550, "5.1.1")
        assert_reply(c.cmd("RCPT TO:<x@SPAM.example>"), 550, "5.1.1")
        assert c.cmd("RCPT TO:<ok@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(simple_message("sdk") + b".\r\n")
        assert c.read_reply().code == 250
        c.quit()
    [m] = recorder.wait_messages(1)
    assert m.rcpts == ["ok@example.test"]
    assert re.search(rb"^X-Smtpgate-Id: [0-9A-F]{13}\.1\r$", m.content, re.M), m.content[:400]


def test_example_plugin_config_error(smtpgate_binary, recorder, example_so, workdir):
    conf = workdir / "e.conf"
    conf.write_text(f'listen = {{"{LOOPBACK}:{free_port()}"}}\n'
                    f'upstream main {{ address = "{recorder.address}" }}\n' +
                    plugin_section("example", example_so, header="Bad Header:"))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert re.search(r"e\.conf:5: plugin example: 'header' is \"Bad Header:\": must be a header "
                     r"field name", r.stderr), r.stderr


def test_example_plugin_range_refused(smtpgate_binary, recorder, example_so, workdir):
    """The example declares max_recipients as a whole number from 0 to 100000: the host, not the
    plugin, refuses a value outside it, naming the file and line."""
    conf = workdir / "r.conf"
    conf.write_text(f'listen = {{"{LOOPBACK}:{free_port()}"}}\n'
                    f'upstream main {{ address = "{recorder.address}" }}\n' +
                    plugin_section("example", example_so, max_recipients=100001))
    r = run_config_test(smtpgate_binary, conf)
    assert r.returncode != 0
    assert re.search(r"r\.conf:5: plugin example: 'max_recipients' is 100001; it must be from 0 "
                     r"to 100000", r.stderr), r.stderr


def test_example_plugin_max_recipients(gate_factory, recorder, example_so):
    gate = gate_factory([recorder.address], extra=plugin_section("example", example_so,
                                                                 max_recipients=2))
    recorder.wait_idle()
    with gate.connect() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.test>").code == 250
        assert c.cmd("RCPT TO:<a@example.test>").code == 250
        assert c.cmd("RCPT TO:<b@example.test>").code == 250
        assert_reply(c.cmd("RCPT TO:<c@example.test>"), 452, "4.5.3")
        c.quit()
