"""The Debian package: `dpkg-buildpackage -us -uc -b` from a copy of the tree,
lintian without errors, installed on this machine, its service started the way
its systemd unit starts it (as root; it becomes the system user smtpgate),
a message through it, an admin's edited configuration kept on reinstall, and
nothing started by the installation itself.  One build for the module;
everything is purged at the end.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from gate import REPO
from helpers import assert_reply
from netutil import LOOPBACK, free_port, is_listening, wait_until
from smtpclient import SMTPConn, simple_message

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="installs a package: needs root"),
    pytest.mark.skipif(not shutil.which("dpkg-buildpackage") or not shutil.which("dh"),
                       reason="needs dpkg-dev and debhelper (scripts/deps.sh test)"),
    pytest.mark.time_limit(600),
]

UNIT = Path("/lib/systemd/system/smtpgate.service")
CONF = Path("/etc/smtpgate/smtpgate.conf")


def installed_version(pkg: str) -> str | None:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", pkg], capture_output=True,
                       text=True)
    return r.stdout.split()[-1] if r.returncode == 0 and "install ok installed" in r.stdout else None


def dpkg_install(*debs: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["dpkg", "-i", *map(str, debs)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    if installed_version("smtpgate"):
        pytest.skip("an smtpgate package is installed on this machine already")
    base = tmp_path_factory.mktemp("deb")
    src = base / "smtpgate"
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard"],
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for name in filter(None, files):
        if name.startswith("build/") or not (REPO / name).exists():
            continue
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name, follow_symlinks=False)
    build = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, capture_output=True,
                           text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    debs = {p.name.split("_")[0]: p for p in base.glob("*.deb")}
    assert {"smtpgate", "smtpgate-plugin-dev"} <= set(debs), debs
    yield {"dir": base, "debs": debs, "log": build.stdout + build.stderr}
    subprocess.run(["dpkg", "--purge", "smtpgate", "smtpgate-plugin-dev"], capture_output=True,
                   timeout=300)


@pytest.fixture(scope="module")
def installed(package):
    # The service must not come up by itself: nothing may listen on port 25 or
    # on the shipped config's port because a package was installed.
    before_25 = is_listening(25)
    r = dpkg_install(package["debs"]["smtpgate"], package["debs"]["smtpgate-plugin-dev"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert is_listening(25) == before_25
    assert not is_listening(2525)
    # No installed smtpgate runs (a test's own smtpgate from the build may).
    assert subprocess.run(["pgrep", "-f", r"^/usr/sbin/smtpgate( |$)"],
                          capture_output=True).returncode == 1
    return package


def test_build_flags_and_lintian(package):
    log = package["log"]
    compiles = [l for l in log.splitlines() if " -c -o build/deb/" in l]
    assert compiles, log[-3000:]
    assert all("-D_FORTIFY_SOURCE=2" in l and "-fstack-protector-strong" in l
               and "-std=gnu11" in l for l in compiles), compiles[0]
    assert not any("-Werror " in l for l in compiles), compiles[0]
    if not shutil.which("lintian"):
        pytest.skip("lintian not installed")
    changes = next(package["dir"].glob("*.changes"))
    r = subprocess.run(["lintian", "--fail-on", "error", str(changes)], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not re.search(r"^E: ", r.stdout, re.M), r.stdout


def test_user_and_folders(installed):
    pw = pwd.getpwnam("smtpgate")
    assert pw.pw_uid < 1000 and pw.pw_shell in ("/usr/sbin/nologin", "/bin/false")
    for d in ("/var/spool/smtpgate", "/var/spool/smtpgate/quarantine"):
        st = os.stat(d)
        assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid), d
        assert st.st_mode & 0o777 == 0o750, (d, oct(st.st_mode))
    r = subprocess.run(["/usr/sbin/smtpgate", "-t", "-c", str(CONF)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(["man", "-w", "smtpgate.conf"], capture_output=True, text=True)
    assert r.stdout.strip() == "/usr/share/man/man5/smtpgate.conf.5.gz", r.stdout + r.stderr
    assert Path("/usr/share/pkgconfig/smtpgate-plugin.pc").is_file()


def exec_start() -> list[str]:
    m = re.search(r"^ExecStart=(.*)$", UNIT.read_text(), re.M)
    assert m, UNIT.read_text()
    return shlex.split(m.group(1))


def test_service_runs_as_its_user_and_passes_mail(installed, recorder):
    port = free_port()
    text = CONF.read_text()
    text = re.sub(r'^listen = .*$', f'listen = {{"{LOOPBACK}:{port}"}}', text, flags=re.M)
    text = re.sub(r'address  = "127.0.0.1:10025"', f'address  = "{recorder.address}"', text)
    text += "\n# edited by the admin\n"
    CONF.write_text(text)
    argv = exec_start()
    assert argv[0] == "/usr/sbin/smtpgate" and argv[-2:] == ["-c", str(CONF)], argv
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: is_listening(port) or proc.poll() is not None, 30,
                   "the installed smtpgate to listen")
        assert proc.poll() is None, proc.stdout.read().decode()
        status = Path(f"/proc/{proc.pid}/status").read_text()
        uid = pwd.getpwnam("smtpgate").pw_uid
        assert re.search(rf"^Uid:\s+{uid}\s+{uid}\s+{uid}\s+{uid}$", status, re.M), status
        assert re.search(r"^CapEff:\s+0+$", status, re.M) and re.search(r"^CapPrm:\s+0+$", status, re.M)
        with SMTPConn(LOOPBACK, port) as c:
            c.ehlo()
            replies = c.mail_transaction("sender@example.test", ["rcpt@example.test"],
                                         simple_message("through the package", "hello\r\n"))
            assert_reply(replies[-1], 250)
            c.quit()
        msgs = recorder.wait_messages(1)
        assert b"through the package" in msgs[0].content
        assert msgs[0].xclient.get("ADDR") == LOOPBACK, msgs[0].xclient
        # The packaged smtpgate-ctl finds the packaged daemon's control socket
        # (/run/smtpgate/control.sock, root's and 0600, though the daemon
        # runs as smtpgate) through the packaged configuration.
        ctl = subprocess.run(["/usr/sbin/smtpgate-ctl", "--json", "status"], capture_output=True,
                             text=True, timeout=30)
        assert ctl.returncode == 0, ctl.stderr
        assert json.loads(ctl.stdout)["pid"] == proc.pid
        sock = os.stat("/run/smtpgate/control.sock")
        assert stat.S_IMODE(sock.st_mode) == 0o600 and sock.st_uid == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, out
    assert "running as smtpgate" in out


def test_edited_config_kept_on_reinstall(installed):
    assert CONF.read_text().endswith("# edited by the admin\n")
    r = dpkg_install(installed["debs"]["smtpgate"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert CONF.read_text().endswith("# edited by the admin\n")
    assert not list(CONF.parent.glob("*.dpkg-*")), list(CONF.parent.iterdir())
