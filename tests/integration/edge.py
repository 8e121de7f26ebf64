"""Fixtures and helpers for the edge tests: TLS, AUTH and the PROXY protocol.

* Certificates are made at test time with `openssl req` / `openssl x509` in
  the test's folder: a private CA, leaf certificates signed by it (or
  self-signed), each with the subjectAltName DNS names asked for.
* `EdgeGate` is a Gate whose config also has "listener NAME { }" sections
  (each on its own free port, found in `gate.listeners[NAME]`) and TLS
  settings in its upstream sections.
* `Dovecot` is a private Dovecot auth service on a loopback TCP port with a
  passwd-file of test users, for Postfix's SASL (smtpd_sasl_type = dovecot).
* `TlsSaslPostfix` is the private Postfix of postfix_instance.py with TLS
  (a certificate from the test CA) and SASL through that Dovecot.
* `HAProxy` runs haproxy in the foreground with one frontend per backend
  option (send-proxy, send-proxy-v2), each on its own loopback port.

The fixtures `edge_gate_factory`, `certs`, `tls_sasl_postfix` are imported by
the test modules (pytest finds fixtures in a module's namespace).
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

from gate import Gate
from netutil import LOOPBACK, free_port, is_listening, wait_until
from postfix_instance import PostfixInstance, postfix_available

USERS = {"alice@example.test": "wonderland", "bob@example.test": "builder"}


# ---- certificates ----

class CertAuthority:
    """A private CA in `folder`; issue() makes leaf certificates it signs."""

    def __init__(self, folder: Path, name: str = "smtpgate test CA") -> None:
        self.folder = folder
        self.key = folder / "ca.key"
        self.cert = folder / "ca.pem"
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-keyout", str(self.key), "-out", str(self.cert), "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.serial = 1

    def issue(self, stem: str, cn: str, sans: list[str] | None = None,
              client: bool = False) -> tuple[Path, Path]:
        """(certificate, key) for cn, signed by this CA."""
        key, csr, cert = (self.folder / f"{stem}.key", self.folder / f"{stem}.csr",
                          self.folder / f"{stem}.pem")
        ext = self.folder / f"{stem}.ext"
        lines = ["basicConstraints=CA:FALSE",
                 "extendedKeyUsage=" + ("clientAuth" if client else "serverAuth")]
        if sans:
            lines.append("subjectAltName=" + ",".join(f"DNS:{n}" for n in sans))
        ext.write_text("\n".join(lines) + "\n")
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                 "-out", str(csr), "-subj", f"/CN={cn}")
        self.serial += 1
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-set_serial", str(self.serial), "-days", "2", "-out", str(cert),
                 "-extfile", str(ext))
        key.chmod(0o644)   # Postfix's smtpd and smtpgate read it; a test folder only
        return cert, key


def _openssl(*args: str) -> None:
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"


def fingerprint_sha256(cert: Path) -> str:
    r = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint",
                        "-sha256"], capture_output=True, text=True, timeout=30, check=True)
    return r.stdout.strip().split("=", 1)[1]


@pytest.fixture
def certs(workdir):
    """A CA and three certificates: mx (default), other (SNI, with a wildcard), client."""
    folder = workdir / "certs"
    folder.mkdir()
    folder.chmod(0o755)
    ca = CertAuthority(folder)
    out = {"ca": ca}
    out["mx"] = ca.issue("mx", "mx.example.test", ["mx.example.test"])
    out["other"] = ca.issue("other", "other.example.test",
                            ["other.example.test", "*.wild.example.test"])
    out["client"] = ca.issue("client", "client.example.test", client=True)
    return out


def client_context(ca: CertAuthority | None = None, cert: tuple[Path, Path] | None = None,
                   check_hostname: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.cert)) if ca else ssl.SSLContext(
        ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = check_hostname
    if not ca:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


# ---- smtpgate with listener sections ----

def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(_value(x) for x in v) + "}"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


class EdgeGate(Gate):
    """A Gate with "listener" sections and upstream TLS settings.

    listeners: NAME -> settings of the section (address is filled in);
    upstream_tls: settings added to every upstream section.
    """

    def __init__(self, *args, listeners: dict[str, dict] | None = None,
                 upstream_tls: dict[str, object] | None = None, **kw) -> None:
        super().__init__(*args, **kw)
        self.listener_settings = listeners or {}
        self.upstream_tls = upstream_tls or {}
        self.listeners: dict[str, int] = {}

    def config_text(self, **overrides: object) -> str:
        text = super().config_text(**overrides)
        if self.upstream_tls:
            extra = "".join(f"    {k} = {_value(v)}\n" for k, v in self.upstream_tls.items())
            out = []
            for line in text.splitlines(keepends=True):
                out.append(line)
                if line.startswith("upstream ") and line.rstrip().endswith("{"):
                    out.append(extra)
            text = "".join(out)
        for name, settings in self.listener_settings.items():
            text += f"listener {name} {{\n"
            text += f"    address = \"{LOOPBACK}:{self.listeners[name]}\"\n"
            for k, v in settings.items():
                text += f"    {k} = {_value(v)}\n"
            text += "}\n"
        return text

    def start(self, attempts: int = 4, timeout: float = 30) -> "EdgeGate":
        for name in self.listener_settings:
            self.listeners[name] = free_port()
        super().start(attempts, timeout)
        for name, port in self.listeners.items():
            wait_until(lambda p=port: is_listening(p), timeout, f"listener {name} on {port}")
        return self

    def addr(self, name: str) -> tuple[str, int]:
        return (LOOPBACK, self.listeners[name])


@pytest.fixture
def edge_gate_factory(smtpgate_binary, workdir, request):
    """start(upstreams, listeners={NAME: {...}}, upstream_tls={...}, **settings) -> EdgeGate.

    Teardown as gate_factory's: SIGTERM, exit status 0, no sanitizer report.
    """
    gates: list[EdgeGate] = []
    request.node.smtpgate_gates = gates

    def start(upstreams, *, listeners=None, upstream_tls=None, extra="", **settings) -> EdgeGate:
        g = EdgeGate(smtpgate_binary, workdir, upstreams, settings, (), None,
                     name=f"smtpgate{len(gates)}", listeners=listeners,
                     upstream_tls=upstream_tls, extra=extra)
        gates.append(g)
        return g.start()

    yield start
    problems = []
    for g in gates:
        if g.proc is None:
            continue
        try:
            g.stop()
            if not g.clean_exit_checked:
                g.assert_clean_exit()
        except AssertionError as e:
            problems.append(str(e))
    assert not problems, "\n\n".join(problems)


def tls_listener(certs, *names: str, **settings) -> dict:
    """Listener settings with the certificates `names` (default: mx, other)."""
    names = names or ("mx", "other")
    return {"tls_cert_file": [str(certs[n][0]) for n in names],
            "tls_key_file": [str(certs[n][1]) for n in names], **settings}


# ---- Dovecot, and Postfix with TLS and SASL ----

DOVECOT_CONF = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain login
disable_plaintext_auth = no
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={dir}
}}
service auth {{
  inet_listener {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  chroot =
}}
"""


def dovecot_available() -> bool:
    return bool(shutil.which("dovecot") or os.access("/usr/sbin/dovecot", os.X_OK))


class Dovecot:
    def __init__(self, base: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dovecot-", dir=base))
        self.dir.chmod(0o755)
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Dovecot":
        (self.dir / "users").write_text(
            "".join(f"{u}:{{PLAIN}}{p}\n" for u, p in USERS.items()))
        self.port = free_port()
        conf = self.dir / "dovecot.conf"
        conf.write_text(DOVECOT_CONF.format(dir=self.dir, port=self.port))
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(conf)],
                                     stdin=subprocess.DEVNULL,
                                     stdout=open(self.dir / "stdout", "wb"),
                                     stderr=subprocess.STDOUT)
        wait_until(lambda: is_listening(self.port) or self.proc.poll() is not None, 20,
                   "dovecot auth to listen")
        if self.proc.poll() is not None:
            raise RuntimeError("dovecot did not start: "
                               + (self.dir / "stdout").read_text(errors="replace"))
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class TlsSaslPostfix(PostfixInstance):
    """Postfix offering STARTTLS (certificate for upstream.example.test) and AUTH."""

    def __init__(self, base: Path, cert: tuple[Path, Path], sasl_port: int) -> None:
        super().__init__(base)
        self.extra_main_cf = (
            f"smtpd_tls_cert_file = {cert[0]}\n"
            f"smtpd_tls_key_file = {cert[1]}\n"
            "smtpd_tls_security_level = may\n"
            "smtpd_tls_loglevel = 1\n"
            "smtpd_tls_auth_only = no\n"
            "smtpd_sasl_auth_enable = yes\n"
            "smtpd_sasl_type = dovecot\n"
            f"smtpd_sasl_path = inet:127.0.0.1:{sasl_port}\n"
            "smtpd_sasl_authenticated_header = no\n"
            "smtpd_relay_restrictions = permit_sasl_authenticated, permit_mynetworks, "
            "reject_unauth_destination\n")
        self.extra_master_cf = "tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n"


@pytest.fixture(scope="module")
def tls_sasl_postfix(tmp_path_factory):
    """(postfix, ca) for the whole module: Postfix with TLS and Dovecot SASL."""
    if not postfix_available():
        pytest.skip("Postfix not installed")
    if not dovecot_available():
        pytest.skip("dovecot not installed (Debian package dovecot-core)")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance needs root")
    base = Path(tempfile.mkdtemp(prefix="smtpgate-edge-"))
    base.chmod(0o755)
    ca = CertAuthority(base)
    cert = ca.issue("upstream", "upstream.example.test", ["upstream.example.test"])
    dv = Dovecot(base).start()
    pf = TlsSaslPostfix(base, cert, dv.port).start()
    yield pf, ca
    pf.stop()
    dv.stop()
    if not os.environ.get("SMTPGATE_KEEP_TMP"):
        shutil.rmtree(base, ignore_errors=True)


# ---- HAProxy ----

HAPROXY_CONF = """\
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
"""


class HAProxy:
    """haproxy -db with one frontend per name: {name: (backend_port, server_options)}."""

    def __init__(self, folder: Path, routes: dict[str, tuple[int, str]]) -> None:
        self.folder = folder
        self.routes = routes
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen | None = None

    def start(self) -> "HAProxy":
        text = HAPROXY_CONF
        for name, (backend, opts) in self.routes.items():
            self.ports[name] = free_port()
            text += (f"frontend fe_{name}\n    bind {LOOPBACK}:{self.ports[name]}\n"
                     f"    default_backend be_{name}\n"
                     f"backend be_{name}\n    server s1 {LOOPBACK}:{backend} {opts}\n")
        conf = self.folder / "haproxy.cfg"
        conf.write_text(text)
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(conf)],
                                     stdin=subprocess.DEVNULL,
                                     stdout=open(self.folder / "haproxy.log", "wb"),
                                     stderr=subprocess.STDOUT)
        for name, port in self.ports.items():
            wait_until(lambda p=port: is_listening(p) or self.proc.poll() is not None, 20,
                       f"haproxy frontend {name}")
        if self.proc.poll() is not None:
            raise RuntimeError("haproxy did not start: "
                               + (self.folder / "haproxy.log").read_text(errors="replace"))
        return self

    def addr(self, name: str) -> tuple[str, int]:
        return (LOOPBACK, self.ports[name])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
