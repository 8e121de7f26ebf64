"""`make install` as a distribution and an admin meet it: an FHS tree with
PREFIX=/usr from a fresh tree, every compiled-in path following the install
paths (and rebuilt when they change), the admin's files kept, the build flags
of the environment added to the build's own, one version for every program,
and manual pages that render cleanly and document every configuration key.

The build reuses build/release's objects in a copy (dependency files
rewritten to the copy), so only what embeds a path is compiled again.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gate import REPO

RELEASE = REPO / "build" / "release"
MAN_PAGES = {"smtpgate.8": "man8", "smtpgate.conf.5": "man5", "smtpgate-milter.8": "man8",
             "smtpgate-rules.1": "man1", "smtpgate-ctl.8": "man8"}

pytestmark = pytest.mark.skipif(not (RELEASE / "smtpgate").exists(),
                                reason="needs the release build (make all)")


def make(*args: str, build: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    r = subprocess.run(["make", "-C", str(REPO), f"BUILD={build}", *args], capture_output=True,
                       text=True, timeout=timeout, env={**os.environ, **(env or {})})
    return r


def copy_build(dest: Path) -> Path:
    """build/release copied with its times, its dependency files naming the copy."""
    shutil.copytree(RELEASE, dest, symlinks=True)
    for d in dest.rglob("*.d"):
        d.write_text(d.read_text().replace(str(RELEASE) + "/", f"{dest}/")
                     .replace("build/release/", f"{dest}/"))
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(build dir, DESTDIR) after one `make install DESTDIR=... PREFIX=/usr`."""
    base = tmp_path_factory.mktemp("install")
    build = copy_build(base / "build")
    stage = base / "stage"
    r = make("install", f"DESTDIR={stage}", "PREFIX=/usr", build=build)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return build, stage


def test_fhs_layout(installed):
    _, stage = installed
    for path in ["usr/sbin/smtpgate", "usr/sbin/smtpgate-milter", "usr/sbin/smtpgate-ctl",
                 "usr/bin/smtpgate-rules",
                 "usr/lib/smtpgate/plugins/rules.so", "usr/lib/smtpgate/plugins/spf.so",
                 "usr/lib/smtpgate/plugins/ratelimit.so", "usr/lib/smtpgate/plugins/greylist.so",
                 "usr/share/doc/smtpgate/ratelimit.md", "usr/share/doc/smtpgate/greylist.md",
                 "usr/lib/smtpgate/plugins/dnsbl.so", "usr/share/doc/smtpgate/dnsbl.md",
                 "usr/lib/smtpgate/plugins/milter.so", "usr/share/doc/smtpgate/milter.md",
                 "etc/smtpgate/smtpgate.conf", "etc/smtpgate/default.rules",
                 "usr/include/smtpgate/plugin.h", "usr/share/pkgconfig/smtpgate-plugin.pc",
                 "usr/share/doc/smtpgate/README.md", "usr/share/doc/smtpgate/plugins.md",
                 "usr/share/doc/smtpgate/rules.md"] + \
            [f"usr/share/man/{sec}/{page}" for page, sec in MAN_PAGES.items()]:
        assert (stage / path).is_file(), path
    assert not (stage / "usr/etc").exists() and not (stage / "usr/lib/pkgconfig").exists()
    units = list(stage.glob("**/systemd/system/*.service"))
    assert sorted(u.name for u in units) == ["smtpgate-milter.service", "smtpgate.service"]
    for unit in units:
        text = unit.read_text()
        assert "/usr/local" not in text, unit
    smtpgate_unit = next(u for u in units if u.name == "smtpgate.service").read_text()
    assert "ExecStart=/usr/sbin/smtpgate -f -c /etc/smtpgate/smtpgate.conf" in smtpgate_unit
    conf = (stage / "etc/smtpgate/smtpgate.conf").read_text()
    assert "/usr/local" not in conf
    assert 'files = {"/etc/smtpgate/default.rules"}' in conf
    assert 'plugin_dir = "/usr/lib/smtpgate/plugins"' in conf
    pc = (stage / "usr/share/pkgconfig/smtpgate-plugin.pc").read_text()
    assert "includedir=/usr/include" in pc and "plugindir=/usr/lib/smtpgate/plugins" in pc


def test_compiled_in_paths_follow_prefix(installed, tmp_path):
    build, stage = installed
    out = subprocess.run([str(stage / "usr/sbin/smtpgate"), "-h"], capture_output=True, text=True)
    assert "(default /etc/smtpgate/smtpgate.conf)" in out.stdout
    ctl = subprocess.run([str(stage / "usr/sbin/smtpgate-ctl"), "-h"], capture_output=True, text=True)
    assert "(default /etc/smtpgate/smtpgate.conf)" in ctl.stdout
    binary = (stage / "usr/sbin/smtpgate").read_bytes()
    assert b"/usr/lib/smtpgate/plugins" in binary and b"/usr/local/lib/smtpgate" not in binary
    # Another PREFIX rebuilds what embeds the paths, nothing needs a clean.
    r = make("all", "PREFIX=/opt/sg", build=build)
    assert r.returncode == 0, r.stderr[-3000:]
    out = subprocess.run([str(build / "smtpgate"), "-h"], capture_output=True, text=True)
    assert "(default /opt/sg/etc/smtpgate/smtpgate.conf)" in out.stdout
    assert b"/opt/sg/lib/smtpgate/plugins" in (build / "smtpgate").read_bytes()
    milter = subprocess.run([str(build / "smtpgate-milter"), "-h"], capture_output=True, text=True)
    assert "/opt/sg/etc/smtpgate/smtpgate.conf" in milter.stdout + milter.stderr


def test_admin_files_kept_on_reinstall(installed):
    build, stage = installed
    conf = stage / "etc/smtpgate/smtpgate.conf"
    rules = stage / "etc/smtpgate/default.rules"
    conf.write_text(conf.read_text() + "\n# edited by the admin\n")
    rules.write_text("# the admin's own rules\n")
    r = make("install", f"DESTDIR={stage}", "PREFIX=/usr", build=build)
    assert r.returncode == 0, r.stderr[-3000:]
    assert conf.read_text().endswith("# edited by the admin\n")
    assert rules.read_text() == "# the admin's own rules\n"
    assert (stage / "etc/smtpgate/smtpgate.conf.example").is_file()
    assert (stage / "etc/smtpgate/default.rules.example").read_text() == \
        (REPO / "rules/default.rules").read_text()


def test_environment_flags_are_added(tmp_path):
    """make -n from an empty build dir: the compile lines as a distribution gets them."""
    fake = tmp_path / "my-pkg-config"
    log = tmp_path / "pkg-config.log"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexec pkg-config \"$@\"\n")
    fake.chmod(0o755)
    r = make("-n", "all", "CFLAGS=-O1 -g3", "CPPFLAGS=-D_FORTIFY_SOURCE=2", "LDFLAGS=-Wl,-z,now",
             "WERROR=0", "AR=my-ar", f"PKG_CONFIG={fake}", "CC=my-cc", build=tmp_path / "b")
    assert r.returncode == 0, r.stderr
    compiles = [l for l in r.stdout.splitlines() if l.startswith("my-cc") and " -c " in l]
    assert compiles, r.stdout[:2000]
    for line in compiles:
        for flag in ("-O1", "-g3", "-D_FORTIFY_SOURCE=2", "-std=gnu11", "-D_GNU_SOURCE", "-I.",
                     "-Iplugins", "-Wall"):
            assert flag in line.split(), (flag, line)
        assert "-Werror" not in line.split(), line
    links = [l for l in r.stdout.splitlines() if l.startswith("my-cc") and "-o " in l and " -c " not in l]
    assert links and all("-Wl,-z,now" in l for l in links), links[:3]
    assert any(l.startswith("my-ar rcs") for l in r.stdout.splitlines())
    assert "--cflags" in log.read_text()
    r = make("-n", "all", build=tmp_path / "c")
    assert any("-Werror" in l.split() for l in r.stdout.splitlines() if " -c " in l)


def test_one_version_for_every_program():
    version = (REPO / "VERSION").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    for prog in ("smtpgate", "smtpgate-milter", "smtpgate-rules", "smtpgate-ctl"):
        r = subprocess.run([str(RELEASE / prog), "--version"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout == f"{prog} {version}\n", (prog, r.stdout, r.stderr)
    changelog = (REPO / "debian/changelog").read_text().splitlines()[0]
    assert changelog.startswith(f"smtpgate ({version}") , changelog


# ---- manual pages ----

def test_man_pages_render_without_warnings(installed):
    _, stage = installed
    for page, sec in MAN_PAGES.items():
        path = stage / "usr/share/man" / sec / page
        r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", str(path)], capture_output=True,
                           text=True, env={**os.environ, "MANWIDTH": "80", "MANPAGER": "cat",
                                           "PAGER": "cat", "LC_ALL": "C.UTF-8"})
        assert r.returncode == 0 and r.stderr == "", (page, r.stderr)
        assert page.split(".")[0] in r.stdout


def schema_keys() -> set[str]:
    """Every key of the configuration schema, read from the sources."""
    keys = set()
    for src in ["config/config.c", "config/listener.c"]:
        text = (REPO / src).read_text()
        keys |= set(re.findall(r'CFG_[A-Z_]+\(\s*"([a-z_0-9]+)"', text))
        keys |= set(re.findall(r'^\s*\{"([a-z_0-9]+)", -?\d+', text, re.M))
    # The plugin host's own keys in every plugin section.
    host = (REPO / "chain/plugin_conf.c").read_text()
    keys |= set(re.findall(r'strcmp\(name, "([a-z_]+)"\) == 0', host))
    return keys


def test_config_man_page_documents_every_key(installed):
    _, stage = installed
    keys = schema_keys()
    assert {"hostname", "listen", "user", "group", "chroot", "allow_root", "pidfile",
            "tls_cert_file", "proxy_trusted", "socket", "path", "failure_verdict",
            "dns_timeout", "workers"} <= keys, keys
    r = subprocess.run(["man", "-E", "UTF-8", "-l", str(stage / "usr/share/man/man5/smtpgate.conf.5")],
                       capture_output=True, text=True,
                       env={**os.environ, "MANWIDTH": "200", "MANPAGER": "cat", "LC_ALL": "C.UTF-8"})
    text = r.stdout
    missing = sorted(k for k in keys if not re.search(rf"(?<![a-z_]){k}(?![a-z_])", text))
    assert not missing, f"keys not in smtpgate.conf(5): {missing}"
