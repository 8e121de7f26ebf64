#!/usr/bin/python3
"""A healthy client beside SPF checks stuck on a dead domain, same run.

smtpgate with the SPF plugin in front of smtp-sink; dnsmasq on loopback
answers the healthy sender's domain and forwards dead.test to a UDP socket
that never answers.  The healthy client (127.0.0.4) runs a bounded loop of
whole sessions (EHLO, MAIL, RCPT, DATA, QUIT), first alone, then while 100
connections, all from 127.0.0.2, each have a MAIL FROM waiting on a name of
its own under dead.test.  The checks wait on the connections' event loops,
not on the work pool, which is cut to one thread (plugin_threads = 1) so
that no share of it is what keeps the healthy client going.  Reported: the
median session latency of each and their ratio (loaded / unloaded); 1 means
the stuck checks cost the healthy client nothing.

BENCH_QUICK=1 divides the session count by 10.  Every loop is bounded in
count and time.
"""
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

sys.path.insert(0, os.path.join(bench.ROOT, "tests", "integration"))
from dnsserver import DnsServer, dnsmasq_available  # noqa: E402

SESSIONS = 200 // (10 if bench.QUICK else 1)
STUCK = 100
DNS_TIMEOUT = 12  # under the harness's 15 s stop grace, over the whole measurement
LOOP_DEADLINE = 60.0


def session(port):
    start = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=("127.0.0.4", 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rwb")
    try:
        codes = [bench.reply_code(f)]
        for line in (b"EHLO healthy.bench.test", b"MAIL FROM:<a@pass.spf.bench>",
                     b"RCPT TO:<r@example.test>", b"DATA"):
            f.write(line + b"\r\n")
            f.flush()
            codes.append(bench.reply_code(f))
        f.write(b"Subject: bench\r\n\r\nhello\r\n.\r\n")
        f.flush()
        codes.append(bench.reply_code(f))
        f.write(b"QUIT\r\n")
        f.flush()
        bench.reply_code(f)
    finally:
        f.close()
        s.close()
    if codes != [220, 250, 250, 250, 354, 250]:
        raise RuntimeError(f"healthy session got {codes}")
    return time.monotonic() - start


def latencies(port):
    out = []
    end = time.monotonic() + LOOP_DEADLINE
    for _ in range(SESSIONS):
        if time.monotonic() > end:
            break
        out.append(session(port))
    return out


def main():
    binary = os.environ.get("SMTPGATE_BIN", os.path.join(bench.ROOT, "build/release/smtpgate"))
    so = os.path.join(os.path.dirname(binary), "plugins", "spf.so")
    if not dnsmasq_available() or not os.path.exists(so):
        print("bench_spf_stuck: needs dnsmasq and plugins/spf.so", file=sys.stderr)
        return 1
    work = os.path.join(bench.ROOT, "build", "bench", "spf-stuck")
    os.makedirs(work, exist_ok=True)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    dns = DnsServer(["spf.bench"])
    dns.txt("pass.spf.bench", "v=spf1 ip4:127.0.0.0/8 -all")
    dns.args += [f"--server=/dead.test/127.0.0.1#{silent.getsockname()[1]}",
                 "--dns-forward-max=1000"]
    dns.start()
    sink = bench.Sink(work)
    opts = {"nameserver": f'"{dns.address}"', "exempt_networks": "{}",
            "dns_timeout": DNS_TIMEOUT, "timeout": DNS_TIMEOUT + 10}
    gate = bench.Gate(binary, sink.port, work, "spf-stuck",
                      ["plugin_threads = 1"] + bench.plugin_opts([("spf", so, opts)]))
    stuck = []
    try:
        session(gate.port)  # warm: the plugin's first check, the sink's first message
        alone = latencies(gate.port)
        for i in range(STUCK):
            s = socket.create_connection(("127.0.0.1", gate.port), timeout=10,
                                         source_address=("127.0.0.2", 0))
            s.sendall(f"EHLO stuck.bench.test\r\nMAIL FROM:<u{i}@d{i}.dead.test>\r\n".encode())
            stuck.append(s)
        time.sleep(0.5)  # the first checks are out on the wire
        loaded = latencies(gate.port)
    finally:
        for s in stuck:
            s.close()
        rc = gate.stop()
        sink.stop()
        dns.stop()
        silent.close()
    a, b = statistics.median(alone), statistics.median(loaded)
    ratio = b / a if a else float("nan")
    print(f"healthy session, median of {len(alone)}: {a * 1000:.2f} ms alone, "
          f"{b * 1000:.2f} ms of {len(loaded)} beside {STUCK} stuck SPF checks "
          f"(ratio {ratio:.2f})")
    with open(os.path.join(work, "summary.md"), "w") as f:
        f.write("| healthy session | median ms |\n|---|---:|\n")
        f.write(f"| alone | {a * 1000:.2f} |\n| beside {STUCK} stuck SPF checks | {b * 1000:.2f} |\n")
        f.write(f"| ratio | {ratio:.2f} |\n")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
