#!/usr/bin/python3
"""smtpgate benchmarks: proxied against direct, in the same run, on loopback.

Real programs only: Postfix's smtp-sink is the upstream and smtp-source the
client.  Each figure is measured twice, once with smtp-source talking straight
to smtp-sink (direct) and once through smtpgate (proxied), so the ratio says
what the proxy costs on this machine.

Phases (each bounded in count and in time):
  throughput  20 parallel sessions, one message per connection, 10 KB and 100 KB
  latency     one sequential session; median time per message from
              smtp-source's per-message counter; added = proxied - direct
  cpu         utime+stime of smtpgate and smtp-sink (/proc/PID/stat deltas)
              per 1000 messages; smtpgate peak RSS (VmHWM)
  idle        N idle connections (greeting read, nothing sent): RSS per connection
  concurrent  10,000 connections held at once, every one greeted
  long        100,000 messages through smtpgate; RSS sampled; growth from the
              end of the first 10% to the end
  chain       10 KB throughput with a filter chain (5 no-op plugins hooked at
              every stage) against the same smtpgate without plugins,
              alternated three times, median of each: the chain's cost as a ratio
  spf         the same with the SPF plugin checking every sender against
              dnsmasq on loopback: once with a warm cache (the record's TTL
              keeps it), once with TTL 0, so that every check asks the DNS
              (three look-ups: two TXT and one A) and measures the resolver
  ratelimit   the same with the ratelimit plugin counting every connection,
              message and recipient (limits never reached, so it is the
              counting that costs) in the process (local backend), and again
              in a redis-server on loopback (ratelimit-redis): one Lua script
              per rule and event, on each worker's event loop
  dnsbl       the same with the dnsbl plugin asking two lists about every
              connection, rbldnsd on loopback: once with a warm cache, once
              with cache_size 0, so that every connection sends both queries
  spamd       SpamAssassin's installed rules over the same generated 10 KB
              messages four ways, in messages per CPU second (per core):
              smtpgate-rules bench --sa, smtpgate with the rules plugin
              loading them (one SMTP session), the same smtpgate without a
              plugin, and Debian's spamd (-L -x, one child, on loopback)
              fed by spamc; the ratios to spamd are the figures
  baseline    with --baseline PATH only: 10 KB and 100 KB throughput through
              an older smtpgate binary (before) and this one (after),
              alternated three times, median of each: a change's cost as a
              ratio in the same run (tests/bench/baseline.sh builds one)

BENCH_QUICK=1 divides every count by 10.  --direct-only runs the baseline half;
--only chain5,spf,spf-cold,dnsbl,dnsbl-cold,rules,ratelimit,ratelimit-redis,opendkim,rspamd,spamd,
milter-rtt runs only those plugin phases (against the
same smtpgate without plugins, as always), e.g. to set two builds side by side.
Exit status 0 when every phase completed without errors.
"""
import argparse
import os
import platform
import resource
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")
IP_BIND_ADDRESS_NO_PORT = 24

QUICK = os.environ.get("BENCH_QUICK", "0") not in ("", "0")
SCALE = 10 if QUICK else 1

# Counts and time limits (seconds).  Everything on 2 cores finishes well inside
# the overall deadline; a phase that runs out of time is reported as such.
N_10K = 20000 // SCALE
N_100K = 5000 // SCALE
N_SEQ = 2000 // SCALE
N_IDLE = 2000 // SCALE
N_CONC = 10000 // SCALE
N_LONG = 100000 // SCALE
N_CHAIN = 10000 // SCALE
SESSIONS = 20
RUN_TIMEOUT = 180
LONG_TIMEOUT = 480
CONC_TIMEOUT = 120
DEADLINE = float(os.environ.get("BENCH_DEADLINE", "900"))

START = time.monotonic()
errors = []


def log(msg):
    print(f"[{time.monotonic() - START:6.1f}s] {msg}", flush=True)


def fail(msg):
    errors.append(msg)
    log("ERROR: " + msg)


def time_left():
    return DEADLINE - (time.monotonic() - START)


# ---- processes and /proc ----

def raise_nofile(want=65536):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    """utime+stime in seconds, all threads of the process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status(pid, key):
    """A kB figure from /proc/PID/status (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_hwm(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def smtp_greeting(port, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            data = b""
            while not data.endswith(b"\r\n") or data[3:4] == b"-":
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            try:
                s.sendall(b"QUIT\r\n")
                s.recv(4096)
            except OSError:
                pass
            return data.decode("ascii", "replace").strip()
    except OSError:
        return ""


def wait_greeting(port, proc, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return ""
        g = smtp_greeting(port)
        if g.startswith("220"):
            return g
        time.sleep(0.1)
    return ""


class Sink:
    """smtp-sink discarding every message (no -d: disk would be the benchmark)."""

    def __init__(self, workdir):
        self.port = free_port()
        exe = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        cmd = [exe]
        if os.geteuid() == 0:
            cmd += ["-u", os.environ.get("SINK_USER", "nobody")]
        cmd += ["-h", "sink.bench.test", "-m", "4096", f"127.0.0.1:{self.port}", "4096"]
        self.out = open(os.path.join(workdir, "smtp-sink.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        if not wait_greeting(self.port, self.proc, 10):
            self.stop()
            raise RuntimeError("smtp-sink did not start: " + " ".join(cmd))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()



def privilege_options(binary):
    """A benchmark of the proxy, not of the privilege drop: as root smtpgate
    stays root rather than needing a user of its own.  A baseline older than
    the user and allow_root keys needs neither."""
    probe = subprocess.run([binary, "-t", "-c", "/dev/null", "-o", "allow_root = true"],
                           capture_output=True, text=True, timeout=30)
    if "no such option" in probe.stdout + probe.stderr:
        return []
    return ["-o", 'user = ""', "-o", "allow_root = true"]

class Gate:
    """smtpgate in the foreground in front of the sink, large connection limits."""

    def __init__(self, binary, upstream_port, workdir, name, extra=()):
        self.port = free_port()
        spool = os.path.join(workdir, "spool")
        os.makedirs(spool, exist_ok=True)
        self.logpath = os.path.join(workdir, f"smtpgate-{name}.log")
        self.out = open(self.logpath, "wb")
        # Settings of its own, not the example config's: its plugins are the
        # phases' business (the chain phases add them with -o).
        conf = os.path.join(workdir, "bench.conf")
        with open(conf, "w") as f:
            f.write('hostname = "smtpgate.bench.test"\nworkers = 0\n')
        self.cmd = [
            binary, "-f", "-c", conf,
            "-o", f'listen = {{"127.0.0.1:{self.port}"}}',
            "-o", f'upstream main {{ address = "127.0.0.1:{upstream_port}" }}',
            "-o", f'spool_dir = "{spool}"',
            "-o", f'quarantine_dir = "{spool}/quarantine"',
        ] + privilege_options(binary) + [
            # smtp-sink offers XCLIENT without ADDR and answers it 250, which
            # smtpgate refuses to rely on; Postfix itself would take XCLIENT.
            "-o", 'client_identity = "none"',
            "-o", "max_connections = 12000",
            "-o", "max_connections_per_client = 20000",
            "-o", "shutdown_grace = 5",
            # the client is 127.0.0.1: no DNS in a benchmark of the proxy
            "-o", "client_name_lookup = false",
            # no control socket: another smtpgate on the machine may hold the default one
            "-o", 'control_socket = ""',
        ]
        for opt in extra:
            self.cmd += ["-o", opt]
        self.proc = subprocess.Popen(self.cmd, stdout=self.out, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        g = wait_greeting(self.port, self.proc, 15)
        if not g:
            self.stop()
            raise RuntimeError(f"smtpgate did not greet on 127.0.0.1:{self.port}; see {self.logpath}")
        self.greeting = g
        self.threads = len(os.listdir(f"/proc/{self.pid}/task"))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(15)
            except subprocess.TimeoutExpired:
                fail(f"smtpgate did not exit within 15 s of SIGTERM; killed")
                self.proc.kill()
                rc = self.proc.wait()
        self.out.close()
        return rc

    def log_lines(self, word):
        n = 0
        with open(self.logpath, "rb") as f:
            for line in f:
                if word in line:
                    n += 1
        return n


def reply_code(f):
    """The code of the next whole (possibly multi-line) SMTP reply on file f."""
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return int(line[:3])


# ---- smtp-source ----

def run_source(port, count, sessions, length, timeout, on_tick=None):
    """smtp-source -c; returns wall time, messages completed, per-message times.

    With -c smtp-source prints a counter after every completed DATA; the time
    between two counters is the time that message took (with one session:
    connect, EHLO, MAIL, RCPT, DATA, QUIT).
    """
    exe = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    cmd = [exe, "-c", "-s", str(sessions), "-m", str(count), "-l", str(length),
           "-M", "bench.example.test", "-f", "sender@bench.example.test",
           "-t", "rcpt@bench.example.test", f"127.0.0.1:{port}"]
    timeout = min(timeout, max(time_left(), 5))
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    done, stamps, buf, timed_out = 0, [], b"", False
    next_tick = t0 + 1.0
    while True:
        now = time.monotonic()
        if now - t0 > timeout:
            timed_out = True
            p.kill()
            break
        if on_tick and now >= next_tick:
            on_tick(now - t0, done)
            next_tick = now + 1.0
        if not sel.select(0.2):
            continue
        chunk = p.stdout.read1(65536)
        if not chunk:
            break
        now = time.monotonic()
        buf += chunk
        *tokens, buf = buf.split(b"\r")
        for tok in tokens:
            tok = tok.strip()
            if tok.isdigit():
                done = int(tok)
                stamps.append(now)
    rc = p.wait()
    wall = time.monotonic() - t0
    stderr = p.stderr.read().decode("utf-8", "replace").strip()
    sel.close()
    intervals = [b - a for a, b in zip([t0] + stamps[:-1], stamps)]
    return {"wall": wall, "done": done, "rc": rc, "timed_out": timed_out,
            "stderr": stderr[-400:], "intervals": intervals}


def measure(label, port, count, length, procs, sessions=SESSIONS, timeout=RUN_TIMEOUT):
    """One smtp-source run; CPU deltas of procs = {name: pid}."""
    cpu0 = {k: proc_cpu(v) for k, v in procs.items()}
    r = run_source(port, count, sessions, length, timeout)
    cpu1 = {k: proc_cpu(v) for k, v in procs.items()}
    r["rate"] = r["done"] / r["wall"] if r["wall"] > 0 else 0.0
    r["cpu_per_1000"] = {k: (cpu1[k] - cpu0[k]) * 1000.0 / max(r["done"], 1) for k in procs}
    cpu_txt = ", ".join(f"{k} {v:.3f} s/1000" for k, v in r["cpu_per_1000"].items())
    log(f"{label}: {r['done']}/{count} messages in {r['wall']:.2f} s = {r['rate']:.0f} msg/s; CPU {cpu_txt}")
    if r["timed_out"]:
        fail(f"{label}: stopped after {timeout:.0f} s ({r['done']}/{count} messages)")
    elif r["rc"] != 0 or r["done"] != count:
        fail(f"{label}: smtp-source exit {r['rc']}, {r['done']}/{count} messages: {r['stderr']}")
    return r


def latency(label, port, count, procs):
    r = measure(label, port, count, 1024, procs, sessions=1)
    iv = r["intervals"][1:] or [0.0]   # the first includes smtp-source's start-up
    r["median_ms"] = statistics.median(iv) * 1000.0
    r["p90_ms"] = sorted(iv)[int(len(iv) * 0.9)] * 1000.0 if iv else 0.0
    log(f"{label}: median {r['median_ms']:.3f} ms per message, p90 {r['p90_ms']:.3f} ms")
    return r


# ---- idle and concurrent connections ----

def hold_connections(port, n, timeout, hold=2.0, probe=None):
    """Open n connections, spread over 127.0.0.2-127.0.0.201, read each greeting.

    At most 256 are being set up at any moment (no SYN floods against the
    listen backlog).  Returns counts by reply code, the sockets still open
    after `hold` seconds, and probe()'s value taken while all are held.
    """
    sel = selectors.DefaultSelector()
    pending, held, codes, buffers = {}, [], {}, {}
    started, i = time.monotonic(), 0
    end = started + timeout
    while (i < n or pending) and time.monotonic() < end:
        while i < n and len(pending) < 256:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((f"127.0.0.{2 + i % 200}", 0))
            s.setblocking(False)
            i += 1
            err = s.connect_ex(("127.0.0.1", port))
            if err not in (0, 115):   # EINPROGRESS
                codes["connect-error"] = codes.get("connect-error", 0) + 1
                s.close()
                continue
            pending[s.fileno()] = s
            buffers[s.fileno()] = b""
            sel.register(s, selectors.EVENT_READ)
        for key, _ in sel.select(0.5):
            s = key.fileobj
            fd = s.fileno()
            try:
                chunk = s.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                codes["closed"] = codes.get("closed", 0) + 1
                sel.unregister(s)
                del pending[fd]
                s.close()
                continue
            buffers[fd] += chunk
            b = buffers[fd]
            if b.endswith(b"\r\n") and b.split(b"\r\n")[-2][3:4] != b"-":
                code = b[:3].decode("ascii", "replace")
                codes[code] = codes.get(code, 0) + 1
                sel.unregister(s)
                del pending[fd]
                if code == "220":
                    held.append(s)
                else:
                    s.close()
    setup = time.monotonic() - started
    for s in pending.values():
        codes["no-greeting"] = codes.get("no-greeting", 0) + 1
        sel.unregister(s)
        s.close()
    sel.close()
    if i < n:
        codes["not-attempted"] = n - i
    time.sleep(hold)
    value = probe() if probe else None
    # Still open?  Nothing may be readable: no 421, no close.
    sel = selectors.DefaultSelector()
    for s in held:
        sel.register(s, selectors.EVENT_READ)
    dropped = len(sel.select(0))
    sel.close()
    return {"codes": codes, "held": held, "dropped": dropped, "setup": setup, "probe": value}


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


# ---- phases ----

def phase_throughput(port, procs, name):
    out = {}
    out["10k"] = measure(f"{name} 10 KB x {N_10K}, {SESSIONS} sessions", port, N_10K, 10240, procs)
    out["100k"] = measure(f"{name} 100 KB x {N_100K}, {SESSIONS} sessions", port, N_100K, 102400, procs)
    out["seq"] = latency(f"{name} 1 KB x {N_SEQ}, 1 session", port, N_SEQ, procs)
    return out


def phase_idle(gate):
    rss0 = proc_status(gate.pid, "VmRSS")
    rss = {}

    def probe():
        rss["after"] = proc_status(gate.pid, "VmRSS")
        return rss["after"]

    r = hold_connections(gate.port, N_IDLE, CONC_TIMEOUT, hold=2.0, probe=probe)
    held = len(r["held"])
    close_all(r["held"])
    per = (rss["after"] - rss0) / held if held else 0.0
    log(f"idle: {held}/{N_IDLE} greeted ({r['codes']}); RSS {rss0} -> {rss['after']} KiB = "
        f"{per:.1f} KiB per idle connection")
    if held != N_IDLE or r["dropped"]:
        fail(f"idle: {held}/{N_IDLE} held, {r['dropped']} dropped while idle: {r['codes']}")
    return {"held": held, "rss0": rss0, "rss1": rss["after"], "per_kib": per}


def phase_concurrent(gate):
    rss0 = proc_status(gate.pid, "VmRSS")
    r = hold_connections(gate.port, N_CONC, CONC_TIMEOUT, hold=3.0,
                         probe=lambda: proc_status(gate.pid, "VmRSS"))
    held = len(r["held"])
    close_all(r["held"])
    log(f"concurrent: {held}/{N_CONC} greeted and held in {r['setup']:.1f} s "
        f"({r['codes']}), {r['dropped']} dropped during the hold; RSS {rss0} -> {r['probe']} KiB")
    if held != N_CONC or r["dropped"]:
        fail(f"concurrent: {held}/{N_CONC} held, {r['dropped']} dropped: {r['codes']}")
    time.sleep(1.0)
    g = smtp_greeting(gate.port, timeout=5)
    if not g.startswith("220"):
        fail(f"concurrent: smtpgate does not greet after the connections closed: {g!r}")
    return {"held": held, "setup": r["setup"], "rss0": rss0, "rss1": r["probe"],
            "dropped": r["dropped"], "codes": r["codes"]}


def phase_long(gate, sink):
    samples = []

    def tick(t, done):
        samples.append((t, done, proc_status(gate.pid, "VmRSS")))

    cpu0 = proc_cpu(gate.pid), proc_cpu(sink.pid)
    r = run_source(gate.port, N_LONG, SESSIONS, 1024, LONG_TIMEOUT, on_tick=tick)
    cpu1 = proc_cpu(gate.pid), proc_cpu(sink.pid)
    tick(r["wall"], r["done"])
    r["rate"] = r["done"] / r["wall"] if r["wall"] > 0 else 0.0
    tenth = next((s for s in samples if s[1] >= N_LONG // 10), samples[0])
    end = samples[-1]
    r["rss_10"] = tenth[2]
    r["rss_end"] = end[2]
    r["growth"] = end[2] - tenth[2]
    r["hwm"] = proc_status(gate.pid, "VmHWM")
    r["samples"] = samples
    r["gate_cpu"] = (cpu1[0] - cpu0[0]) * 1000.0 / max(r["done"], 1)
    r["sink_cpu"] = (cpu1[1] - cpu0[1]) * 1000.0 / max(r["done"], 1)
    log(f"long: {r['done']}/{N_LONG} messages in {r['wall']:.1f} s = {r['rate']:.0f} msg/s; "
        f"RSS after 10% {r['rss_10']} KiB, at end {r['rss_end']} KiB (growth {r['growth']:+d} KiB), "
        f"peak {r['hwm']} KiB")
    step = max(1, len(samples) // 10)
    log("long: RSS samples (s, messages, KiB): " +
        " ".join(f"{t:.0f}/{d}/{k}" for t, d, k in samples[::step]))
    if r["timed_out"] or r["rc"] != 0 or r["done"] != N_LONG:
        fail(f"long: smtp-source exit {r['rc']}, {r['done']}/{N_LONG} messages"
             f"{' (time limit)' if r['timed_out'] else ''}: {r['stderr']}")
    return r


def plugin_opts(names_paths):
    """-o sections for plugins: [(name, path, {key: value})]."""
    out = []
    for name, path, options in names_paths:
        body = " ".join(f"{k} = {v}" for k, v in options.items())
        out.append(f'plugin {name} {{ path = "{path}" {body} }}')
    return out


def phase_chain(binary, sink, workdir, label, extra, length=10240, count=None):
    """Throughput through smtpgate with and without the plugins in `extra`,
    alternated three times, the median of each (one slow run on a shared
    machine moves a best-of or a mean); CPU of smtpgate per 1000 messages."""
    count = count or N_CHAIN
    runs = {"plain": [], "chain": []}
    for rep in range(3):
        for kind in ("plain", "chain"):
            if time_left() < 40:
                fail(f"{label}: no time left")
                return None
            gate = Gate(binary, sink.port, workdir, f"{label}-{kind}-{rep}",
                        extra if kind == "chain" else ())
            r = measure(f"{label} ({kind}) {length // 1024} KB x {count}", gate.port, count,
                        length, {"smtpgate": gate.pid, "smtp-sink": sink.pid})
            if gate.stop() != 0:
                fail(f"smtpgate ({label} {kind}) exited with an error; see its log")
            runs[kind].append(r)
    out = {"plain": statistics.median(r["rate"] for r in runs["plain"]),
           "chain": statistics.median(r["rate"] for r in runs["chain"]),
           "plain_cpu": statistics.median(r["cpu_per_1000"]["smtpgate"] for r in runs["plain"]),
           "chain_cpu": statistics.median(r["cpu_per_1000"]["smtpgate"] for r in runs["chain"])}
    out["ratio"] = out["chain"] / out["plain"] if out["plain"] else None
    log(f"{label}: {out['chain']:.0f} msg/s with the chain, {out['plain']:.0f} without "
        f"(ratio {out['ratio']:.3f}); smtpgate CPU {out['chain_cpu']:.3f} vs {out['plain_cpu']:.3f} s/1000")
    return out


def phase_baseline(before, after, sink, workdir):
    """The same plain proxy run through two binaries, before and after a change,
    alternated three times and the median of each, so machine noise hits both."""
    out = []
    for length in (10240, 102400):
        count = N_CHAIN if length == 10240 else N_CHAIN // 4
        runs = {"before": [], "after": []}
        for rep in range(3):
            for kind, binary in (("before", before), ("after", after)):
                if time_left() < 40:
                    fail("baseline: no time left")
                    return out
                gate = Gate(binary, sink.port, workdir, f"baseline-{kind}-{length // 1024}k-{rep}")
                r = measure(f"baseline ({kind}) {length // 1024} KB x {count}", gate.port, count,
                            length, {"smtpgate": gate.pid, "smtp-sink": sink.pid})
                if gate.stop() != 0:
                    fail(f"smtpgate ({kind}, {binary}) exited with an error; see its log")
                runs[kind].append(r)
        med = {k: statistics.median(r["rate"] for r in v) for k, v in runs.items()}
        cpu = {k: statistics.median(r["cpu_per_1000"]["smtpgate"] for r in v) for k, v in runs.items()}
        row = {"length": length, "before": med["before"], "after": med["after"],
               "before_cpu": cpu["before"], "after_cpu": cpu["after"],
               "ratio": med["after"] / med["before"] if med["before"] else None}
        log(f"baseline {length // 1024} KB: after {row['after']:.0f} msg/s, before {row['before']:.0f} "
            f"(ratio {row['ratio']:.3f}); smtpgate CPU {row['after_cpu']:.3f} vs {row['before_cpu']:.3f} s/1000")
        out.append(row)
    return out


def phase_spf(binary, sink, workdir, cold=False):
    """The SPF plugin checking every sender against dnsmasq on loopback.  Warm: the
    record's TTL keeps libspf2's cache warm, as a busy gateway's would be.  Cold: TTL 0,
    nothing is cached, and each check makes three look-ups (the sender's TXT, an
    include's TXT, an a: name's A), so the figure is the resolver's cost."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    from dnsserver import DnsServer, dnsmasq_available
    so = os.path.join(os.path.dirname(binary), "plugins", "spf.so")
    if not dnsmasq_available() or not os.path.exists(so):
        fail("SPF phase needs dnsmasq and plugins/spf.so")
        return None
    zone = "bench.example.test"
    dns = DnsServer([zone], local_ttl=0 if cold else 3600)
    if cold:
        dns.txt(zone, f"v=spf1 include:inc.{zone} a:mail.{zone} -all")
        dns.txt(f"inc.{zone}", "v=spf1 ip4:192.0.2.0/24 -all")
        dns.host(f"mail.{zone}", "127.0.0.1")
    else:
        dns.txt(zone, "v=spf1 ip4:127.0.0.1 -all")
    dns.start()
    try:
        opts = {"nameserver": f'"{dns.address}"', "exempt_networks": "{}",
                "authserv_id": f'"{zone}"'}
        return phase_chain(binary, sink, workdir, "spf-cold" if cold else "spf",
                           plugin_opts([("spf", so, opts)]))
    finally:
        dns.stop()


def phase_dnsbl(binary, sink, workdir, cold=False):
    """The dnsbl plugin asking two lists (a blocklist and an allowlist, neither listing
    the client) about every connection, against rbldnsd on loopback.  Warm: the answers
    stay in the plugin's cache (negative_ttl), as a busy gateway's would.  Cold:
    cache_size = 0, so every connection sends both queries at once and waits for both:
    the figure is rbldnsd's round trip on the session's event loop."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    from rbldnsd import Rbldnsd, rbldnsd_available
    so = os.path.join(os.path.dirname(binary), "plugins", "dnsbl.so")
    if not rbldnsd_available() or not os.path.exists(so):
        fail("dnsbl phase needs rbldnsd and plugins/dnsbl.so")
        return None
    rbl = Rbldnsd(tempfile.mkdtemp(prefix="rbl-", dir=workdir))
    rbl.zone("bl.bench.test", "ip4set", ":127.0.0.2:Listed\n192.0.2.1\n")
    rbl.zone("wl.bench.test", "ip4set", ":127.0.5.2:Allowed\n192.0.2.2\n")
    rbl.start()
    try:
        opts = {"sites": '"bl.bench.test=127.0.0.[2..11]*3, wl.bench.test*-2"',
                "nameservers": f'{{"{rbl.address}"}}', "threshold": "3",
                "cache_size": "0" if cold else "10000", "negative_ttl": "3600",
                "dns_timeout": "5"}
        label = "dnsbl-cold" if cold else "dnsbl"
        return phase_chain(binary, sink, workdir, label, plugin_opts([("dnsbl", so, opts)]))
    finally:
        rbl.stop()


def phase_rules(binary, sink, workdir):
    """The rules plugin with the shipped set, with 1,000 generated rules and with
    SpamAssassin's installed rules, 10 KB and 100 KB messages; and smtpgate-rules bench over
    generated messages."""
    so = os.path.join(os.path.dirname(binary), "plugins", "rules.so")
    tool = os.path.join(os.path.dirname(binary), "smtpgate-rules")
    if not os.path.exists(so):
        fail(f"{so} not built: no rules phase")
        return []
    gen = os.path.join(workdir, "gen1000.rules")
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "bench", "gen_rules.py"),
                    "--count", "1000", "--out", gen], check=True)
    sets = [("shipped rules", os.path.join(ROOT, "rules", "default.rules")),
            ("1,000 generated rules", gen)]
    # SpamAssassin's own rules, read where Debian's spamassassin package installs them
    if os.path.exists("/usr/share/spamassassin/20_body_tests.cf"):
        sets.append(("SpamAssassin's rules", None))
    out = []
    for name, path in sets:
        keys = {"files": f'{{"{path}"}}'} if path else {"spamassassin": "true"}
        opt = plugin_opts([("rules", so, keys)])
        for length, count in ((10240, N_CHAIN), (102400, max(N_CHAIN // 4, 100))):
            label = f"{name}, {length // 1024} KB"
            out.append((label, phase_chain(binary, sink, workdir, label.replace(" ", "_"), opt,
                                           length, count)))
        if os.access(tool, os.X_OK):
            mdir = os.path.join(workdir, f"msgs-{len(out)}")
            subprocess.run([sys.executable, os.path.join(ROOT, "tests", "bench", "gen_rules.py"),
                            "--messages", mdir, "--number", "200", "--size", "10240"], check=True)
            r = subprocess.run([tool, "bench", path or "--sa", mdir], capture_output=True, text=True,
                               timeout=max(30, min(300, time_left())))
            line = next((l for l in r.stdout.splitlines() if "messages/s" in l or "msg/s" in l),
                        r.stdout.strip().splitlines()[0] if r.stdout.strip() else "")
            log(f"smtpgate-rules bench {name}, 10 KB messages: {line}")
    return out


# Limits far above what a run sends: every event is counted, none refused.
RATE_RULES = ('{"connections per client 1000000000/1m", "concurrency per client 100000", '
              '"messages per sender_domain 1000000000/1m", '
              '"recipients per recipient_domain 1000000000/1m"}')


def phase_ratelimit(binary, sink, workdir, redis=False):
    """The ratelimit plugin with four rules (a window each for connections, messages and
    recipients, and concurrency), its state in the process or in a redis-server on loopback."""
    so = os.path.join(os.path.dirname(binary), "plugins", "ratelimit.so")
    if not os.path.exists(so):
        fail(f"{so} not built: no ratelimit phase")
        return None
    opts = {"limit": RATE_RULES}
    server = None
    if redis:
        sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
        from redis_server import RedisServer, redis_server_path
        if not redis_server_path():
            fail("the ratelimit-redis phase needs redis-server (Debian package redis-server)")
            return None
        rdir = tempfile.mkdtemp(prefix="redis.", dir=workdir)
        server = RedisServer(rdir).start()
        opts.update({"backend": '"redis"', "redis": f'"{server.address}"',
                     "redis_timeout": "2"})
    try:
        return phase_chain(binary, sink, workdir, "ratelimit-redis" if redis else "ratelimit",
                           plugin_opts([("ratelimit", so, opts)]))
    finally:
        if server:
            server.stop()


# ---- report ----

def fmt(v, spec=".0f", unit=""):
    return "n/a" if v is None else f"{v:{spec}}{unit}"


def ratio(a, b):
    return None if a is None or not b else a / b


def summary(direct, proxied, idle, conc, longrun, peak, info, chains=(), baseline=()):
    rows = []
    d, p = direct, proxied or {}
    for key, label in (("10k", f"10 KB, {SESSIONS} sessions (msg/s)"),
                       ("100k", f"100 KB, {SESSIONS} sessions (msg/s)")):
        dr = d[key]["rate"]
        pr = p[key]["rate"] if key in p else None
        rows.append((label, fmt(dr), fmt(pr), fmt(ratio(pr, dr), ".2f")))
    dm = d["seq"]["median_ms"]
    pm = p["seq"]["median_ms"] if "seq" in p else None
    rows.append(("1 session, median ms per message", fmt(dm, ".3f"), fmt(pm, ".3f"),
                 fmt(ratio(pm, dm), ".2f")))
    rows.append(("  added latency (ms)", "", fmt(None if pm is None else pm - dm, "+.3f"), ""))
    for key, label in (("10k", "10 KB"), ("100k", "100 KB")):
        sink_d = d[key]["cpu_per_1000"]["smtp-sink"]
        gate = p[key]["cpu_per_1000"]["smtpgate"] if key in p else None
        sink_p = p[key]["cpu_per_1000"]["smtp-sink"] if key in p else None
        rows.append((f"CPU s/1000 msg {label}: smtp-sink", fmt(sink_d, ".3f"), fmt(sink_p, ".3f"), ""))
        rows.append((f"CPU s/1000 msg {label}: smtpgate", "", fmt(gate, ".3f"),
                     fmt(ratio(gate, sink_d), ".2f") + " x sink" if gate is not None else ""))
    rows.append(("smtpgate peak RSS, throughput runs (KiB)", "", fmt(peak), ""))
    if idle:
        rows.append((f"idle: KiB per connection ({idle['held']} held)", "", fmt(idle["per_kib"], ".1f"), ""))
    if conc:
        rows.append((f"concurrent: greeted and held / {N_CONC}", "", str(conc["held"]), ""))
        rows.append(("concurrent: smtpgate RSS while held (KiB)", "", fmt(conc["rss1"]), ""))
        if conc["held"]:
            rows.append(("concurrent: KiB per connection", "",
                         fmt((conc["rss1"] - conc["rss0"]) / conc["held"], ".1f"), ""))
    if longrun:
        rows.append((f"long: {N_LONG} x 1 KB (msg/s)", "", fmt(longrun["rate"]), ""))
        rows.append(("long: smtpgate CPU s/1000 msg", "", fmt(longrun["gate_cpu"], ".3f"), ""))
        rows.append(("long: RSS after 10% -> end (KiB)", "",
                     f"{longrun['rss_10']} -> {longrun['rss_end']}", f"{longrun['growth']:+d} KiB"))

    for label, c in chains:
        if not c:
            continue
        rows.append((f"{label}: msg/s, without -> with", fmt(c["plain"]), fmt(c["chain"]),
                     fmt(c["ratio"], ".3f")))
        rows.append((f"{label}: smtpgate CPU s/1000 msg", fmt(c["plain_cpu"], ".3f"),
                     fmt(c["chain_cpu"], ".3f"), fmt(ratio(c["chain_cpu"], c["plain_cpu"]), ".2f")))

    if MILTER_RTT:
        r = MILTER_RTT
        rows.append(("one milter round trip (1 session, smtpgate-milter + no-op): ms/msg",
                     fmt(r["plain_ms"], ".3f"), fmt(r["milter_ms"], ".3f"),
                     f"{r['round_trips']:.0f} trips, {r['us_per_rt']:.0f} us each"))

    rows += spamd_rows(SPAMD)

    for b in baseline:
        kb = b["length"] // 1024
        rows.append((f"before -> after, {kb} KB: msg/s", fmt(b["before"]), fmt(b["after"]),
                     fmt(b["ratio"], ".3f")))
        rows.append((f"before -> after, {kb} KB: smtpgate CPU s/1000", fmt(b["before_cpu"], ".3f"),
                     fmt(b["after_cpu"], ".3f"), fmt(ratio(b["after_cpu"], b["before_cpu"]), ".2f")))

    w = max(len(r[0]) for r in rows)
    print()
    print(f"== smtpgate benchmark summary ({info})")
    print(f"{'':{w}}  {'direct':>10}  {'proxied':>12}  ratio")
    for r in rows:
        print(f"{r[0]:{w}}  {r[1]:>10}  {r[2]:>12}  {r[3]}")
    return rows


PLUGIN_PHASES = ("chain5", "spf", "spf-cold", "dnsbl", "dnsbl-cold", "rules", "ratelimit",
                 "ratelimit-redis", "opendkim", "rspamd", "milter-rtt", "spamd")


def start_daemon(argv, port, logpath, what, timeout=30):
    out = open(logpath, "ab")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, out
        except OSError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    out.close()
    raise RuntimeError(f"{what} did not listen on {port}; see {logpath}")


def stop_daemon(proc, out):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    out.close()


def phase_opendkim(binary, sink, workdir):
    """OpenDKIM signing every message through the milter plugin (relaxed/simple,
    a 2048-bit key from opendkim-genkey), beside the plain proxied run."""
    so = os.path.join(os.path.dirname(binary), "plugins", "milter.so")
    opendkim, genkey = shutil.which("opendkim") or "/usr/sbin/opendkim", \
        shutil.which("opendkim-genkey") or "/usr/sbin/opendkim-genkey"
    if not (os.path.exists(so) and os.path.exists(opendkim) and os.path.exists(genkey)):
        fail("OpenDKIM phase needs plugins/milter.so, opendkim and opendkim-genkey")
        return None
    # OpenDKIM refuses files under a folder others may write: the run folder is 0755
    wd = os.path.join(workdir, "opendkim")
    os.makedirs(wd, mode=0o700, exist_ok=True)
    subprocess.run([genkey, "-b", "2048", "-d", "bench.example.test", "-s", "sel", "-D", wd],
                   check=True, timeout=60)
    port = free_port()
    conf = os.path.join(wd, "opendkim.conf")
    with open(conf, "w") as f:
        f.write(f"Mode s\nDomain *\nSelector sel\nKeyFile {wd}/sel.private\n"
                f"Canonicalization relaxed/simple\nInternalHosts 127.0.0.0/8\n"
                f"Socket inet:{port}@127.0.0.1\nBackground no\nSyslog no\nUserID root\n"
                f"PidFile {wd}/opendkim.pid\n")
    proc, out = start_daemon([opendkim, "-f", "-x", conf], port,
                             os.path.join(workdir, "opendkim.log"), "opendkim")
    try:
        opts = {"socket": f'"inet:127.0.0.1:{port}"', "timeout": 60}
        return phase_chain(binary, sink, workdir, "opendkim", plugin_opts([("dkim", so, opts)]))
    finally:
        stop_daemon(proc, out)


RSPAMD_OFF = ("fuzzy_check", "rbl", "surbl", "phishing", "asn", "emails", "url_redirector",
              "rspamd_update", "dcc", "mx_check", "neural", "reputation", "greylist", "ratelimit",
              "history_redis", "metric_exporter", "clickhouse", "elastic", "p0f", "bimi",
              "external_services", "antivirus", "whitelist", "multimap")


def phase_rspamd(binary, sink, workdir):
    """rspamd's proxy worker in milter mode (self-scan, local rules only, every name
    resolved by dnsmasq on loopback as NXDOMAIN) through the milter plugin, beside the
    plain proxied run."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    from dnsserver import DnsServer, dnsmasq_available
    so = os.path.join(os.path.dirname(binary), "plugins", "milter.so")
    if not (os.path.exists(so) and os.path.exists("/usr/bin/rspamd") and dnsmasq_available()):
        fail("rspamd phase needs plugins/milter.so, rspamd and dnsmasq")
        return None
    wd = os.path.join(workdir, "rspamd")
    for d in ("local.d", "override.d", "db", "run", "log"):
        os.makedirs(os.path.join(wd, d), exist_ok=True)
    dns = DnsServer(domains=["bench.example.test"])
    dns.start()
    port, normal, controller = free_port(), free_port(), free_port()
    files = {
        "override.d/worker-proxy.inc": f'bind_socket = "127.0.0.1:{port}";\nmilter = yes;\n'
                                       f'timeout = 120s;\nupstream "local" {{ default = yes; '
                                       f'self_scan = yes; }}\ncount = 2;\n',
        "override.d/worker-normal.inc": f'bind_socket = "127.0.0.1:{normal}";\ncount = 1;\n',
        "override.d/worker-controller.inc": f'bind_socket = "127.0.0.1:{controller}";\n',
        "override.d/options.inc": f'dns {{ nameserver = ["{dns.address}"]; timeout = 1s; '
                                  f'retransmits = 1; }}\nhs_cache_dir = "{wd}/db";\n',
        "override.d/logging.inc": f'type = "file";\nfilename = "{wd}/log/rspamd.log";\n'
                                  f'level = "warning";\n',
        "local.d/milter_headers.conf": 'use = ["x-spamd-result"];\nskip_local = false;\n',
    }
    files.update({f"local.d/{m}.conf": "enabled = false;\n" for m in RSPAMD_OFF})
    for name, text in files.items():
        with open(os.path.join(wd, name), "w") as f:
            f.write(text)
    argv = ["/usr/bin/rspamd", "-f", "-u", "root", "-g", "root", "-c", "/etc/rspamd/rspamd.conf",
            f"--var=LOCAL_CONFDIR={wd}", f"--var=DBDIR={wd}/db", f"--var=RUNDIR={wd}/run",
            f"--var=LOGDIR={wd}/log", "-i"]
    try:
        proc, out = start_daemon(argv, port, os.path.join(workdir, "rspamd.stderr"), "rspamd",
                                 timeout=120)
    except RuntimeError as e:
        dns.stop()
        fail(str(e))
        return None
    try:
        opts = {"socket": f'"inet:127.0.0.1:{port}"', "timeout": 120, "content_timeout": 110}
        return phase_chain(binary, sink, workdir, "rspamd", plugin_opts([("rspamd", so, opts)]))
    finally:
        stop_daemon(proc, out)
        dns.stop()


def tree_cpu(pid):
    """utime+stime of a process and its direct children (spamd's preforked ones), those
    gone included: spamd replaces a child after 200 connections (--max-conn-per-child), and
    a child reaped counts only in its parent's cutime+cstime."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total = sum(int(x) for x in fields[11:15]) / CLK_TCK
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def send_files(port, files, deadline):
    """Each file as one message over one SMTP session (reconnecting if the
    server closes it); refusals counted, not errors.  (sent, refused)."""
    import smtplib
    sent = refused = 0
    conn = None
    for path in files:
        if time.monotonic() > deadline:
            break
        with open(path, "rb") as f:
            data = f.read()
        for attempt in range(2):
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
                    conn.ehlo("bench.example.org")
                conn.sendmail("sender@example.org", ["user@example.net"], data)
                sent += 1
                break
            except (smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused):
                refused += 1
                break
            except (smtplib.SMTPServerDisconnected, OSError):
                conn = None
        else:
            raise RuntimeError(f"cannot send {path} to 127.0.0.1:{port}")
    if conn is not None:
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
    return sent, refused


def phase_spamd(binary, sink, workdir):
    """SpamAssassin's rules, smtpgate against spamd, on the same messages, per core."""
    tool = os.path.join(os.path.dirname(binary), "smtpgate-rules")
    so = os.path.join(os.path.dirname(binary), "plugins", "rules.so")
    if not (os.path.exists("/usr/share/spamassassin/20_body_tests.cf") and os.path.exists("/usr/sbin/spamd")
            and shutil.which("spamc") and os.access(tool, os.X_OK) and os.path.exists(so)):
        fail("spamd phase needs spamassassin, spamd, spamc, smtpgate-rules and plugins/rules.so")
        return None
    count = max(200 // SCALE, 40)
    mdir = os.path.join(workdir, "spamd-msgs")
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "bench", "gen_rules.py"),
                    "--messages", mdir, "--number", str(count), "--size", "10240"], check=True)
    files = sorted(os.path.join(mdir, n) for n in os.listdir(mdir))
    out = {"messages": len(files)}

    # smtpgate-rules bench: one thread; its CPU from the children's rusage
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([tool, "bench", "--sa", mdir, "--seconds", "5" if QUICK else "15"],
                       capture_output=True, text=True, timeout=max(30, min(300, time_left())))
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"(\d+) messages in ([\d.]+) s", r.stdout)
    if r.returncode != 0 or not m:
        fail(f"smtpgate-rules bench --sa failed: {r.stderr.strip()[:200]}")
        return None
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    out["tool"] = int(m.group(1)) / cpu if cpu > 0 else None
    out["tool_wall"] = int(m.group(1)) / float(m.group(2))
    log(f"spamd phase: smtpgate-rules bench --sa: {m.group(1)} messages, {out['tool']:.1f} msg per "
        f"CPU s ({out['tool_wall']:.1f} msg/s)")

    # through smtpgate, with the SpamAssassin set and without a plugin
    for kind, extra in (("plain", ()), ("sa", plugin_opts([("rules", so, {"spamassassin": "true"})]))):
        gate = Gate(binary, sink.port, workdir, f"spamd-{kind}", extra)
        try:
            send_files(gate.port, files[:3], time.monotonic() + 60)  # warm: first connection, caches
            c0, t0 = proc_cpu(gate.pid), time.monotonic()
            rounds = 1 if kind == "sa" else 5  # the plugin-less run is too short to time once
            sent = refused = 0
            for _ in range(rounds):
                a, b = send_files(gate.port, files, time.monotonic() + min(120, time_left()))
                sent, refused = sent + a, refused + b
            c1, t1 = proc_cpu(gate.pid), time.monotonic()
        finally:
            if gate.stop() != 0:
                fail(f"smtpgate (spamd phase, {kind}) exited with an error; see its log")
        done = sent + refused
        out[f"gate_{kind}"] = done / (c1 - c0) if c1 > c0 else None
        out[f"gate_{kind}_wall"] = done / (t1 - t0) if t1 > t0 else None
        log(f"spamd phase: through smtpgate ({kind}): {done} messages ({refused} refused), "
            f"smtpgate CPU {c1 - c0:.2f} s, {done / (t1 - t0):.1f} msg/s")

    # spamd -L (local tests only), one child, fed by spamc one message at a time
    port = free_port()
    argv = ["/usr/sbin/spamd", "-L", "-x", "--listen", f"127.0.0.1:{port}", "--max-children", "1",
            "--min-children", "1", "--min-spare", "1", "--max-spare", "1",
            "--pidfile", os.path.join(workdir, "spamd.pid"), "-s", "stderr"]
    proc, plog = start_daemon(argv, port, os.path.join(workdir, "spamd.log"), "spamd", timeout=60)
    try:
        def spamc(path):
            with open(path, "rb") as f:
                subprocess.run(["spamc", "-d", "127.0.0.1", "-p", str(port), "-c"], stdin=f,
                               stdout=subprocess.DEVNULL, timeout=60)
        for path in files[:2]:  # the child compiles its rules on the first
            spamc(path)
        c0, t0 = tree_cpu(proc.pid), time.monotonic()
        deadline = t0 + (20 if QUICK else 90)
        done = 0
        for path in files:
            if time.monotonic() > deadline or time_left() < 30:
                break
            spamc(path)
            done += 1
        c1, t1 = tree_cpu(proc.pid), time.monotonic()
    finally:
        stop_daemon(proc, plog)
    out["spamd"] = done / (c1 - c0) if c1 > c0 else None
    out["spamd_wall"] = done / (t1 - t0) if t1 > t0 else None
    out["spamd_messages"] = done
    log(f"spamd phase: spamd+spamc: {done} messages, spamd CPU {c1 - c0:.2f} s, "
        f"{out['spamd_wall']:.2f} msg/s")
    for key in ("tool", "gate_sa"):
        if out.get(key) and out.get("spamd"):
            log(f"spamd phase: {key} / spamd per core: {out[key] / out['spamd']:.1f}x")
    return out


def spamd_rows(sp):
    """Summary rows of the spamd phase: label, smtpgate, spamd, ratio."""
    rows = []
    if not sp:
        return rows
    base = sp.get("spamd")
    n = sp["spamd_messages"]
    rows.append((f"SpamAssassin rules, 10 KB, msg per CPU s: spamd -L + spamc ({n} msgs)", "",
                 fmt(base, ".1f"), "1"))
    for key, label in (("tool", "smtpgate-rules bench --sa"),
                       ("gate_sa", "through smtpgate, rules plugin, SpamAssassin set"),
                       ("gate_plain", "through smtpgate, no plugin")):
        v = sp.get(key)
        rows.append((f"  {label} ({sp['messages']} msgs)", "", fmt(v, ".1f"),
                     fmt(ratio(v, base), ".1f") + " x spamd" if v and base else ""))
    if sp.get("gate_sa") and sp.get("gate_plain"):
        rows.append(("  SpamAssassin set loaded / no plugin, smtpgate CPU per msg", "",
                     fmt(sp["gate_plain"] / sp["gate_sa"], ".1f"), "x"))
    return rows


SPAMD = None


def phase_milter_rtt(binary, sink, workdir):
    """The cost of one milter round trip: one session, one message after the other,
    through smtpgate alone and through smtpgate calling smtpgate-milter whose chain is
    one no-op plugin (a real libmilter milter doing no work, answering connect, HELO,
    MAIL, RCPT, DATA and end of message); the added time per message divided by the
    replies the plugin waited for (its round_trips= log note)."""
    so = os.path.join(os.path.dirname(binary), "plugins", "milter.so")
    mbin = os.path.join(os.path.dirname(binary), "smtpgate-milter")
    noop = os.path.join(os.path.dirname(binary), "tests", "plugins", "test_noop.so")
    if not (os.path.exists(so) and os.access(mbin, os.X_OK) and os.path.exists(noop)):
        fail("milter round trip phase needs plugins/milter.so, smtpgate-milter and test_noop.so")
        return None
    port = free_port()
    os.makedirs(os.path.join(workdir, "spool", "quarantine"), exist_ok=True)
    conf = os.path.join(workdir, "rtt-milter.conf")
    with open(conf, "w") as f:
        f.write(f'spool_dir = "{workdir}/spool"\nhostname = "milter.bench.test"\n'
                f'quarantine_dir = "{workdir}/spool/quarantine"\ncontrol_socket = ""\n'
                f"milter {{\n    socket = \"inet:{port}@127.0.0.1\"\n}}\n"
                f'plugin noop {{\n    path = "{noop}"\n}}\n')
    extra = ["-o", "allow_root = true"] if os.geteuid() == 0 else []
    proc, out = start_daemon([mbin, "-f", "-c", conf] + extra, port,
                             os.path.join(workdir, "rtt-milter.log"), "smtpgate-milter")
    try:
        res = {}
        for kind, opt in (("plain", ()), ("milter", plugin_opts([("m", so, {
                "socket": f'"inet:127.0.0.1:{port}"'})]))):
            gate = Gate(binary, sink.port, workdir, f"rtt-{kind}", opt)
            res[kind] = latency(f"round trip ({kind})", gate.port, N_SEQ,
                                {"smtpgate": gate.pid, "smtp-sink": sink.pid})
            notes = []
            if kind == "milter":
                with open(gate.logpath, "rb") as f:
                    notes = [int(m) for m in re.findall(rb'm="round_trips=(\d+)"', f.read())]
            if gate.stop() != 0:
                fail(f"smtpgate (rtt {kind}) exited with an error; see its log")
            if notes:
                res["round_trips"] = statistics.median(notes)
        if not res.get("round_trips"):
            fail("round trip phase: no round_trips= notes in the log")
            return None
        added = res["milter"]["median_ms"] - res["plain"]["median_ms"]
        out_ = {"plain_ms": res["plain"]["median_ms"], "milter_ms": res["milter"]["median_ms"],
                "round_trips": res["round_trips"],
                "us_per_rt": added * 1000.0 / res["round_trips"]}
        log(f"milter round trip: {out_['milter_ms']:.3f} ms per message with the milter, "
            f"{out_['plain_ms']:.3f} without, {out_['round_trips']:.0f} round trips: "
            f"{out_['us_per_rt']:.0f} us each")
        return out_
    finally:
        stop_daemon(proc, out)


def plugin_phases(binary, sink, workdir, names):
    """The plugin phases named, in this order: [(label, result)]."""
    chains = []
    if "chain5" in names:
        noop = os.path.join(os.path.dirname(binary), "tests", "plugins", "test_noop.so")
        if os.path.exists(noop):
            chains.append(("chain of 5 no-op plugins", phase_chain(
                binary, sink, workdir, "chain5",
                plugin_opts([(f"noop{i}", noop, {}) for i in range(5)]))))
        else:
            fail(f"{noop} not built: no chain phase")
    if "spf" in names:
        chains.append(("SPF, 10 KB (loopback DNS, warm cache)", phase_spf(binary, sink, workdir)))
    if "spf-cold" in names:
        chains.append(("SPF, 10 KB (loopback DNS, no cache: 3 look-ups a check)",
                       phase_spf(binary, sink, workdir, cold=True)))
    if "dnsbl" in names:
        chains.append(("dnsbl, 10 KB (2 lists on rbldnsd, warm cache)",
                       phase_dnsbl(binary, sink, workdir)))
    if "dnsbl-cold" in names:
        chains.append(("dnsbl, 10 KB (2 lists on rbldnsd, every query sent)",
                       phase_dnsbl(binary, sink, workdir, cold=True)))
    if "rules" in names:
        chains += phase_rules(binary, sink, workdir)
    if "ratelimit" in names:
        chains.append(("ratelimit, 10 KB (4 rules, local state)",
                       phase_ratelimit(binary, sink, workdir)))
    if "ratelimit-redis" in names:
        chains.append(("ratelimit, 10 KB (4 rules, redis-server on loopback)",
                       phase_ratelimit(binary, sink, workdir, redis=True)))
    if "opendkim" in names:
        chains.append(("OpenDKIM signing through the milter plugin, 10 KB",
                       phase_opendkim(binary, sink, workdir)))
    if "rspamd" in names:
        chains.append(("rspamd (milter mode, local rules) through the milter plugin, 10 KB",
                       phase_rspamd(binary, sink, workdir)))
    if "milter-rtt" in names:
        global MILTER_RTT
        MILTER_RTT = phase_milter_rtt(binary, sink, workdir)
    if "spamd" in names:
        global SPAMD
        SPAMD = phase_spamd(binary, sink, workdir)
    return chains


MILTER_RTT = None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("SMTPGATE_BIN", os.path.join(ROOT, "build/release/smtpgate")))
    ap.add_argument("--direct-only", action="store_true", help="only the baseline (smtp-source -> smtp-sink)")
    ap.add_argument("--baseline", default=os.environ.get("BENCH_BASELINE") or None,
                    help="an older smtpgate binary to run beside --bin (before -> after)")
    ap.add_argument("--baseline-only", action="store_true",
                    help="with --baseline: only the direct figures and the before -> after phase")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"), help="logs and summary go here")
    ap.add_argument("--only", default="", help="comma-separated plugin phases: "
                    + ",".join(PLUGIN_PHASES))
    args = ap.parse_args()
    only = [p for p in args.only.split(",") if p]
    unknown = set(only) - set(PLUGIN_PHASES)
    if unknown:
        ap.error(f"--only: unknown phase(s) {', '.join(sorted(unknown))}")

    nofile = raise_nofile()
    os.makedirs(args.out, exist_ok=True)
    # Logs of a full run take some 50 MB: keep only this run's.
    for old in os.listdir(args.out):
        if old.startswith("run."):
            shutil.rmtree(os.path.join(args.out, old), ignore_errors=True)
    workdir = tempfile.mkdtemp(prefix="run.", dir=args.out)
    os.chmod(workdir, 0o755)
    cores = os.cpu_count()
    info = (f"{cores} cores, {platform.machine()}, Linux {platform.release().split('-')[0]}, "
            f"{'BENCH_QUICK, ' if QUICK else ''}fd limit {nofile}, client_identity none")
    log(f"bench: {info}; logs in {os.path.relpath(workdir, ROOT)}")
    if nofile < N_CONC + 100:
        log(f"warning: fd limit {nofile} is below {N_CONC + 100}; the concurrent phase may fall short")

    if not args.direct_only and not os.access(args.bin, os.X_OK):
        fail(f"{args.bin} not found: build it with 'make'; only the direct half runs")
        args.direct_only = True

    sink = Sink(workdir)
    log(f"smtp-sink pid {sink.pid} on 127.0.0.1:{sink.port}")
    direct = proxied = idle = conc = longrun = peak = None
    chains = []
    baseline = []
    gate = None
    if args.baseline and not os.access(args.baseline, os.X_OK):
        fail(f"baseline {args.baseline} is not an executable")
        args.baseline = None
    try:
        if only:
            chains = plugin_phases(args.bin, sink, workdir, only)
            args.direct_only = True  # nothing else below
        else:
            direct = phase_throughput(sink.port, {"smtp-sink": sink.pid}, "direct")
        if args.baseline and not args.direct_only:
            baseline = phase_baseline(args.baseline, args.bin, sink, workdir)
        if not args.direct_only and not (args.baseline and args.baseline_only):
            # A fresh smtpgate for each group of phases, so that one phase's
            # allocations do not show up in the next one's memory figures.
            gate = Gate(args.bin, sink.port, workdir, "throughput")
            log(f"smtpgate pid {gate.pid} on 127.0.0.1:{gate.port}, {gate.threads} threads: {gate.greeting}")
            reset_hwm(gate.pid)
            proxied = phase_throughput(gate.port, {"smtpgate": gate.pid, "smtp-sink": sink.pid}, "proxied")
            peak = proc_status(gate.pid, "VmHWM")
            log(f"proxied: smtpgate peak RSS {peak} KiB")
            if gate.stop() != 0:
                fail("smtpgate (throughput) exited with an error; see its log")
            gate = None

            if time_left() > 60:
                gate = Gate(args.bin, sink.port, workdir, "connections")
                time.sleep(0.5)
                idle = phase_idle(gate)
                time.sleep(1.0)
                conc = phase_concurrent(gate)
                if gate.stop() != 0:
                    fail("smtpgate (connections) exited with an error; see its log")
                gate = None
            else:
                fail("no time left for the idle and concurrent phases")

            chains = plugin_phases(args.bin, sink, workdir, list(PLUGIN_PHASES))

            if time_left() > 60:
                gate = Gate(args.bin, sink.port, workdir, "long")
                longrun = phase_long(gate, sink)
                longrun["tx_logged"] = gate.log_lines(b" tx ")
                if gate.stop() != 0:
                    fail("smtpgate (long) exited with an error; see its log")
                gate = None
            else:
                fail("no time left for the long run")
    except RuntimeError as e:
        fail(str(e))
    finally:
        if gate:
            gate.stop()
        sink.stop()

    if only:
        print()
        print(f"== smtpgate plugin phases ({info}, {args.bin})")
        for label, c in chains:
            if c:
                print(f"{label}: {c['plain']:.0f} -> {c['chain']:.0f} msg/s (ratio {c['ratio']:.3f}); "
                      f"smtpgate CPU {c['plain_cpu']:.3f} -> {c['chain_cpu']:.3f} s/1000 msg")
        if MILTER_RTT:
            r = MILTER_RTT
            print(f"one milter round trip: {r['plain_ms']:.3f} -> {r['milter_ms']:.3f} ms per message, "
                  f"{r['round_trips']:.0f} round trips, {r['us_per_rt']:.0f} us each")
        for r in spamd_rows(SPAMD):
            print(f"{r[0]}: {r[2]} {r[3]}")
    if direct:
        rows = summary(direct, proxied, idle, conc, longrun, peak, info, chains, baseline)
        with open(os.path.join(args.out, "summary.md"), "w") as f:
            f.write(f"Measured: {info}, {time.strftime('%Y-%m-%d')}\n\n")
            f.write("| | direct | proxied | ratio |\n|---|---:|---:|---|\n")
            for r in rows:
                f.write(f"| {r[0].strip()} | {r[1]} | {r[2]} | {r[3]} |\n")
    print(f"total {time.monotonic() - START:.0f} s; {len(errors)} error(s)")
    for e in errors:
        print("  " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
