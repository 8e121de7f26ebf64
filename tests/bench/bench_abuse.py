#!/usr/bin/python3
"""Abusive clients beside a normal one: does a normal session stay as quick?

smtpgate (release build) in front of Postfix's smtp-sink, as in bench.py.  A
normal client runs whole sessions one after another (connect, EHLO, MAIL,
RCPT, DATA with 10 KB, QUIT) and its median session time is taken three ways
in the same run:

  unloaded    nothing else connected
  slowloris   beside 2,000 clients that each dribble one octet of a command
              every second (never completing a line, never idle long enough
              for command_timeout)
  flood       beside a connect/close flood: connections opened and closed at
              once, as fast as two processes can, bounded in count and time

Reported as ratios to the unloaded median (1.0 = no effect), with the flood's
rate and smtpgate's RSS before and after each load.  Each abuser is its own
process (this file with --role), so the normal client's timing does not share
an interpreter with it.  Every run is bounded in count and in time.

  tests/bench/bench_abuse.py [--bin PATH]     (BENCH_QUICK=1: counts / 10)
"""
import argparse
import os
import selectors
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as b  # noqa: E402

N_SESSIONS = 200 // b.SCALE
N_SLOWLORIS = 2000 // b.SCALE
FLOOD_MAX = 100000 // b.SCALE
LOAD_SECONDS = 60
MESSAGE = (b"From: a@bench.test\r\nTo: b@bench.test\r\nSubject: normal\r\n\r\n"
           + (b"n" * 98 + b"\r\n") * 100)


def normal_session(port):
    """One whole session; its duration in seconds, or None when it failed."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            f = s.makefile("rb")
            if b.reply_code(f) != 220:
                return None
            for cmd, want in ((b"EHLO normal.bench.test", 250), (b"MAIL FROM:<a@bench.test>", 250),
                              (b"RCPT TO:<b@bench.test>", 250), (b"DATA", 354)):
                s.sendall(cmd + b"\r\n")
                if b.reply_code(f) != want:
                    return None
            s.sendall(MESSAGE + b".\r\n")
            if b.reply_code(f) != 250:
                return None
            s.sendall(b"QUIT\r\n")
            b.reply_code(f)
    except OSError:
        return None
    return time.monotonic() - t0


def normal_run(port, n):
    times, failed = [], 0
    deadline = time.monotonic() + 120
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        t = normal_session(port)
        if t is None:
            failed += 1
        else:
            times.append(t)
    if not times:
        return {"median": float("nan"), "p95": float("nan"), "n": 0, "failed": failed}
    times.sort()
    return {"median": statistics.median(times), "p95": times[int(len(times) * 0.95) - 1 if len(times) > 1 else 0],
            "n": len(times), "failed": failed}


# ---- the abusers (run as child processes) ----

def role_slowloris(port, n, seconds):
    """n connections, greeted, then one octet of "EHLO slow..." each second."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            continue
        s.setblocking(False)
        socks.append(s)
    greeted = 0
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    end = time.monotonic() + seconds
    pattern = b"EHLO slowloris.bench.test-and-it-never-ends-"
    i = 0
    print(f"connected {len(socks)}", flush=True)
    while time.monotonic() < end:
        tick = time.monotonic() + 1.0
        for s in socks:
            try:
                s.send(pattern[i % len(pattern):i % len(pattern) + 1])
            except OSError:
                pass
        i += 1
        while time.monotonic() < tick:
            for key, _ in sel.select(max(0.0, tick - time.monotonic())):
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if data.startswith(b"220"):
                    greeted += 1
                if not data:
                    sel.unregister(key.fileobj)
    print(f"greeted {greeted}", flush=True)
    for s in socks:
        s.close()


def role_flood(port, count, seconds):
    """connect and close at once, bounded by count and time; prints the count."""
    done = 0
    end = time.monotonic() + seconds
    while done < count and time.monotonic() < end:
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.connect(("127.0.0.1", port))
            s.close()
            done += 1
        except OSError:
            time.sleep(0.001)
    print(f"flooded {done}", flush=True)


def spawn(role, port, n, seconds):
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--role", role,
                             "--port", str(port), "--n", str(n), "--seconds", str(seconds)],
                            stdout=subprocess.PIPE, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=("slowloris", "flood"))
    ap.add_argument("--port", type=int)
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--bin", default=os.path.join(b.ROOT, "build/release/smtpgate"))
    ap.add_argument("--out", default=os.path.join(b.ROOT, "build/bench"))
    args = ap.parse_args()
    if args.role == "slowloris":
        return role_slowloris(args.port, args.n, args.seconds)
    if args.role == "flood":
        return role_flood(args.port, args.n, args.seconds)

    b.raise_nofile()
    os.makedirs(args.out, exist_ok=True)
    import tempfile
    work = tempfile.mkdtemp(prefix="smtpgate-abuse-")
    sink = b.Sink(work)
    # Long enough command and data timeouts that the slowloris clients stay
    # connected for the whole run: the point is that they are there.
    gate = b.Gate(args.bin, sink.port, work, "abuse",
                  extra=("command_timeout = 300", "connect_grace = 300", "max_connections = 5000"))
    problems = []
    rows = []
    try:
        normal_run(gate.port, 20)  # warm-up: upstream connections, page cache
        base = normal_run(gate.port, N_SESSIONS)
        rss0 = b.proc_status(gate.pid, "VmRSS")

        slow = spawn("slowloris", gate.port, N_SLOWLORIS, LOAD_SECONDS)
        first = slow.stdout.readline().strip()
        time.sleep(2)  # every slow client greeted and dribbling
        loaded = normal_run(gate.port, N_SESSIONS)
        rss_slow = b.proc_status(gate.pid, "VmRSS")
        slow.terminate()
        out, _ = slow.communicate(timeout=30)
        held = int(first.split()[1]) if first.startswith("connected") else 0
        if held < N_SLOWLORIS:
            problems.append(f"slowloris: only {held}/{N_SLOWLORIS} connected")

        floods = [spawn("flood", gate.port, FLOOD_MAX // 2, LOAD_SECONDS) for _ in range(2)]
        t0 = time.monotonic()
        time.sleep(1)
        flooded_normal = normal_run(gate.port, N_SESSIONS)
        flooded = 0
        for p in floods:
            out, _ = p.communicate(timeout=LOAD_SECONDS + 30)
            flooded += int(out.split()[-1]) if out.strip() else 0
        flood_secs = time.monotonic() - t0
        rss_flood = b.proc_status(gate.pid, "VmRSS")
        after = normal_run(gate.port, 20)
        if not gate.alive() or after["n"] == 0:
            problems.append("smtpgate does not serve a normal client after the loads")
        for label, r in (("unloaded", base), ("slowloris", loaded), ("flood", flooded_normal)):
            if r["failed"]:
                problems.append(f"{label}: {r['failed']} normal session(s) failed")

        rows = [
            ("normal session, median ms", f"{base['median'] * 1000:.2f}", "1.00"),
            (f"beside {held} slowloris clients, median ms", f"{loaded['median'] * 1000:.2f}",
             f"{loaded['median'] / base['median']:.2f}"),
            (f"beside a connect/close flood ({flooded / flood_secs:.0f}/s), median ms",
             f"{flooded_normal['median'] * 1000:.2f}",
             f"{flooded_normal['median'] / base['median']:.2f}"),
            ("normal session p95 ms: unloaded / slowloris / flood",
             f"{base['p95'] * 1000:.2f} / {loaded['p95'] * 1000:.2f} / "
             f"{flooded_normal['p95'] * 1000:.2f}", ""),
            ("smtpgate RSS KiB: before / with slowloris / after flood",
             f"{rss0} / {rss_slow} / {rss_flood}", ""),
            ("KiB per slowloris connection", f"{(rss_slow - rss0) / max(held, 1):.1f}", ""),
        ]
    finally:
        gate.stop()
        sink.stop()
    print("== abusive clients beside a normal one (ratio: to the unloaded median)")
    for r in rows:
        print(f"{r[0]}: {r[1]}" + (f" (ratio {r[2]})" if r[2] else ""))
    with open(os.path.join(args.out, "abuse.md"), "w") as f:
        f.write("| | value | ratio |\n|---|---:|---:|\n")
        for r in rows:
            f.write(f"| {r[0]} | {r[1]} | {r[2]} |\n")
    for p in problems:
        print("  problem: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
