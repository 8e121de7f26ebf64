#!/usr/bin/python3
"""STARTTLS beside plaintext: what TLS to clients costs smtpgate, same run.

smtp-source has no TLS, so one client program drives both runs: worker
processes, each with a bounded loop of sessions (connect, EHLO, [STARTTLS,
handshake, EHLO,] MAIL, RCPT, DATA of 10 KB, QUIT), one message per
connection, against one smtpgate with a plain and a STARTTLS listener in
front of smtp-sink.  Reported: messages per second for each, STARTTLS
handshakes per second (sessions that only greet, STARTTLS, handshake and
QUIT), and smtpgate's CPU seconds per 1000 messages for each.

Certificates are made at run time with openssl into the run's folder.
BENCH_QUICK=1 divides the counts by 10.  Every loop is bounded in count and
time (BENCH_TLS_TIMEOUT, default 120 s per run).
"""
import multiprocessing
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402  (Sink, free_port, proc_cpu, wait_greeting)

QUICK = bench.QUICK
N_MSG = 2000 // (10 if QUICK else 1)
N_HS = 2000 // (10 if QUICK else 1)
PROCS = 4
TIMEOUT = float(os.environ.get("BENCH_TLS_TIMEOUT", "120"))
BODY = (b"Subject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * 130)


def _cmd(f, line):
    f.write(line + b"\r\n")
    f.flush()
    return bench.reply_code(f)


def _session(port, tls, message, ctx):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rwb")
    try:
        bench.reply_code(f)
        _cmd(f, b"EHLO bench.example.test")
        if tls:
            if _cmd(f, b"STARTTLS") != 220:
                return False
            f.close()
            s = ctx.wrap_socket(s, server_hostname="bench.example.test")
            f = s.makefile("rwb")
            _cmd(f, b"EHLO bench.example.test")
        if message:
            if _cmd(f, b"MAIL FROM:<a@bench.example.test>") != 250:
                return False
            if _cmd(f, b"RCPT TO:<b@bench.example.test>") != 250:
                return False
            if _cmd(f, b"DATA") != 354:
                return False
            if _cmd(f, BODY + b".") != 250:
                return False
        _cmd(f, b"QUIT")
        return True
    finally:
        f.close()
        s.close()


def _worker(args):
    port, tls, message, count, deadline = args
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ok = 0
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        try:
            ok += _session(port, tls, message, ctx)
        except (OSError, ConnectionError):
            pass
    return ok


def run(port, tls, message, count, gate_pid):
    cpu0 = bench.proc_cpu(gate_pid)
    t0 = time.monotonic()
    deadline = t0 + TIMEOUT
    per = [count // PROCS + (1 if i < count % PROCS else 0) for i in range(PROCS)]
    with multiprocessing.Pool(PROCS) as pool:
        done = sum(pool.map(_worker, [(port, tls, message, n, deadline) for n in per]))
    dt = time.monotonic() - t0
    cpu = bench.proc_cpu(gate_pid) - cpu0
    return {"done": done, "want": count, "rate": done / dt if dt else 0.0,
            "cpu_per_1000": cpu / done * 1000 if done else None}


def main():
    binary = os.environ.get("SMTPGATE_BIN", os.path.join(bench.ROOT, "build/release/smtpgate"))
    out = os.path.join(bench.ROOT, "build", "bench")
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="run.tls.", dir=out)
    os.chmod(work, 0o755)
    cert, key = os.path.join(work, "bench.pem"), os.path.join(work, "bench.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", key, "-out", cert, "-subj", "/CN=bench.example.test",
                    "-addext", "subjectAltName=DNS:bench.example.test"],
                   check=True, capture_output=True, timeout=60)
    sink = bench.Sink(work)
    plain_port, tls_port = bench.free_port(), bench.free_port()
    spool = os.path.join(work, "spool")
    os.makedirs(spool, exist_ok=True)
    log = open(os.path.join(work, "smtpgate-tls.log"), "wb")
    # Settings of its own (the example config loads plugins; no DNS for a
    # client that is this machine).
    conf = os.path.join(work, "bench-tls.conf")
    with open(conf, "w") as f:
        f.write('hostname = "smtpgate.bench.test"\nclient_name_lookup = false\n')
    gate = subprocess.Popen([
        binary, "-f", "-c", conf,
        "-o", f'listen = {{"127.0.0.1:{plain_port}"}}',
        "-o", f'listener sub {{ address = "127.0.0.1:{tls_port}" tls = "starttls" '
              f'tls_cert_file = {{"{cert}"}} tls_key_file = {{"{key}"}} }}',
        "-o", f'upstream main {{ address = "127.0.0.1:{sink.port}" }}',
        "-o", f'spool_dir = "{spool}"', "-o", f'quarantine_dir = "{spool}/quarantine"',
        "-o", 'user = ""', "-o", "allow_root = true", "-o", 'client_identity = "none"',
        "-o", "max_connections_per_client = 20000", "-o", "shutdown_grace = 5"],
        stdout=log, stderr=subprocess.STDOUT)
    rc = 0
    try:
        if not bench.wait_greeting(plain_port, gate, 20):
            print("bench_tls: smtpgate did not start; see", log.name)
            return 1
        time.sleep(0.3)
        res = {
            "plain": run(plain_port, False, True, N_MSG, gate.pid),
            "starttls": run(tls_port, True, True, N_MSG, gate.pid),
            "handshake": run(tls_port, True, False, N_HS, gate.pid),
        }
    finally:
        gate.terminate()
        try:
            gate.wait(30)
        except subprocess.TimeoutExpired:
            gate.kill()
            gate.wait()
        sink.stop()
    print()
    print(f"== STARTTLS beside plaintext ({PROCS} client processes, 10 KB, one message per "
          f"connection{', BENCH_QUICK' if QUICK else ''})")
    rows = [("plaintext (msg/s)", res["plain"]), ("STARTTLS (msg/s)", res["starttls"]),
            ("STARTTLS handshakes only (handshakes/s)", res["handshake"])]
    for label, r in rows:
        cpu = "n/a" if r["cpu_per_1000"] is None else f"{r['cpu_per_1000']:.2f}"
        print(f"{label:42} {r['rate']:8.0f}   smtpgate CPU s/1000: {cpu:>6}   "
              f"({r['done']}/{r['want']} done)")
        if r["done"] < r["want"]:
            rc = 1
    with open(os.path.join(out, "summary-tls.md"), "w") as f:
        f.write("| | per second | smtpgate CPU s/1000 |\n|---|---:|---:|\n")
        for label, r in rows:
            cpu = "n/a" if r["cpu_per_1000"] is None else f"{r['cpu_per_1000']:.2f}"
            f.write(f"| {label} | {r['rate']:.0f} | {cpu} |\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
