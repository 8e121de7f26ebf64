#!/usr/bin/env bash
# smtpgate benchmarks, proxied against direct in the same run, all on loopback:
# smtp-source -> smtp-sink (direct) and smtp-source -> smtpgate -> smtp-sink
# (proxied), 10 KB and 100 KB messages, one sequential session for the
# added latency, CPU per 1000 messages, peak RSS, memory per idle connection,
# 10,000 concurrent connections, and a 100,000-message run watching RSS; plugin
# phases (no-op chain, SPF, rules, rate limits on local and on Redis state), each
# beside the plain proxied run of the same run; then
# STARTTLS beside plaintext: messages and handshakes per second (bench_tls.py);
# a normal session's time beside 2,000 slowloris clients and beside a
# connect/close flood, as ratios to its unloaded time (bench_abuse.py); a
# healthy session's latency beside 100 stuck SPF checks (bench_spf_stuck.py).
#
#   tests/bench/run.sh [--direct-only] [--bin PATH] [--only PHASE,...]   (bench.py --help lists them)
#   BENCH_QUICK=1 tests/bench/run.sh      every count divided by 10
#   tests/bench/run.sh --baseline "$(tests/bench/baseline.sh REV)" [--baseline-only]
#                                         before -> after: an older build beside this one
#
# Bounded: every run has a count and a time limit, the whole run a deadline
# (BENCH_DEADLINE seconds, default 900).  Logs and summary.md go to build/bench/.
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in smtp-sink smtp-source; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
    { echo "bench: $tool not found (Debian package 'postfix'); run 'scripts/deps.sh test'" >&2; exit 1; }
done

# smtpgate, smtp-sink and the connection holder all inherit this: 10,000
# concurrent connections need more than 10,000 descriptors in two processes.
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

export PATH="$PATH:/usr/sbin"
rc=0
/usr/bin/python3 tests/bench/bench.py "$@" || rc=$?
# STARTTLS beside plaintext (tests/bench/bench_tls.py), unless only the baseline or chosen
# plugin phases were asked for.
case " $* " in
  *" --direct-only "*|*" --baseline-only "*|*" --only "*|*" --only="*) ;;
  *) /usr/bin/python3 tests/bench/bench_tls.py || rc=$?
     /usr/bin/python3 tests/bench/bench_abuse.py || rc=$?
     # A healthy client's latency beside 100 SPF checks stuck on a dead domain.
     /usr/bin/python3 tests/bench/bench_spf_stuck.py || rc=$? ;;
esac
exit $rc
