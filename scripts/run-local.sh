#!/usr/bin/env bash
# Runs smtpgate in the foreground on 127.0.0.1:2525 in front of a local
# upstream: Postfix's smtp-sink on 127.0.0.1:10025, which writes every message
# it accepts to a file under var/mail/.  `make run` calls this after installing
# the packages and building; it can also be run again by hand.
#
#   scripts/run-local.sh [extra smtpgate arguments, e.g. -v or -o 'KEY = VALUE']
#
# Ctrl-C (or SIGTERM to this script) stops smtpgate gracefully and then the
# sink.  Nothing listens anywhere but on loopback.
#
# Environment: SMTPGATE_BIN (default build/release/smtpgate),
#              SINK_USER (default nobody; only used when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${SMTPGATE_BIN:-build/release/smtpgate}
plugin_dir=${SMTPGATE_PLUGIN_DIR:-$(dirname "$bin")/plugins}
listen_addr=127.0.0.1:2525
upstream_addr=127.0.0.1:10025
sink_user=${SINK_USER:-nobody}
run_dir=var/run
sink_pid_file=$run_dir/smtp-sink.pid

die() { echo "run-local: $*" >&2; exit 1; }

[ -x "$bin" ] || die "$bin not found; build it with 'make'"
sink=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[ -x "$sink" ] || die "smtp-sink not found (Debian package 'postfix'); run 'scripts/deps.sh run'"

mkdir -p var/spool var/quarantine var/mail "$run_dir"

# A sink left over from an earlier run that did not get to clean up: stop it,
# but only if the recorded pid really is an smtp-sink.
if [ -s "$sink_pid_file" ]; then
  old=$(cat "$sink_pid_file")
  if [ -r "/proc/$old/comm" ] && [ "$(cat "/proc/$old/comm")" = smtp-sink ]; then
    echo "run-local: stopping smtp-sink left from an earlier run (pid $old)"
    kill "$old" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$old" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$sink_pid_file"
fi

port_busy() {
  # true when something already accepts connections on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
port_busy "${upstream_addr##*:}" && die "$upstream_addr is already in use; stop whatever listens there"
port_busy "${listen_addr##*:}" && die "$listen_addr is already in use (another smtpgate?)"

# Many sessions at once need many descriptors; take what the hard limit allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# smtp-sink refuses to run as root without -u.  As root it also chroots into
# var/mail (-R), so the files are written there by the unprivileged user even
# when the checkout itself is not reachable by that user.
sink_args=(-h upstream.localdomain -m 256 -d '%Y%m%d/%H%M%S.')
if [ "$(id -u)" -eq 0 ]; then
  id "$sink_user" >/dev/null 2>&1 || die "user '$sink_user' does not exist; set SINK_USER"
  chown "$sink_user" var/mail
  sink_args=(-u "$sink_user" -R var/mail "${sink_args[@]}")
else
  sink_args=("${sink_args[@]:0:4}" -d 'var/mail/%Y%m%d/%H%M%S.')
fi

sink_pid=""
gate_pid=""
cleanup() {
  trap - EXIT INT TERM HUP
  if [ -n "$gate_pid" ] && kill -0 "$gate_pid" 2>/dev/null; then
    kill -TERM "$gate_pid" 2>/dev/null || true
    wait "$gate_pid" 2>/dev/null || true
  fi
  if [ -n "$sink_pid" ]; then
    kill -TERM "$sink_pid" 2>/dev/null || true
    wait "$sink_pid" 2>/dev/null || true
  fi
  rm -f "$sink_pid_file"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

"$sink" "${sink_args[@]}" "$upstream_addr" 128 &
sink_pid=$!
echo "$sink_pid" >"$sink_pid_file"

# Wait until the sink answers, so that smtpgate's first health probe finds it.
for _ in $(seq 1 50); do
  port_busy "${upstream_addr##*:}" && break
  kill -0 "$sink_pid" 2>/dev/null || die "smtp-sink did not start"
  sleep 0.1
done

cat <<EOF

  smtpgate on $listen_addr  ->  smtp-sink on $upstream_addr
  send a message: swaks --server $listen_addr --to user@example.test ; messages land in var/mail/
  reload the configuration: kill -HUP <smtpgate pid, shown below>;  stop: Ctrl-C

EOF

# The shipped etc/smtpgate.conf already listens on $listen_addr and points at
# $upstream_addr; the spool moves into the checkout.  smtp-sink offers XCLIENT
# without ADDR (it is a sink, it judges nobody), which smtpgate refuses to rely
# on, so this demo alone says client_identity = "none"; in front of Postfix keep
# "xclient".  The demo's clients are on this machine: no name lookups for them.
# The example config's plugins are installed paths; the demo takes them from
# the build and the shipped rule set from the tree (GTUBE is refused).
# The shipped config runs as the user the package creates; the demo runs as
# whoever started it (as root: stays root, on loopback only, so that a reload
# can read the rules wherever the checkout is).
identity=(-o 'user = ""')
# SpamAssassin's rules beside the shipped set when Debian's spamassassin
# package is installed (scripts/deps.sh test installs it).
sa_rules=""
if [ -e /usr/share/spamassassin/20_body_tests.cf ]; then sa_rules=" spamassassin = true"; fi
[ "$(id -u)" -eq 0 ] && identity+=(-o 'allow_root = true')
"$bin" -f -c etc/smtpgate.conf \
  "${identity[@]}" \
  -o "listen = {\"$listen_addr\"}" \
  -o "upstream main { address = \"$upstream_addr\" }" \
  -o 'spool_dir = "var/spool"' \
  -o 'quarantine_dir = "var/quarantine"' \
  -o 'client_identity = "none"' \
  -o 'client_name_lookup = false' \
  -o "plugin_dir = \"$plugin_dir\"" \
  -o "plugin rules { path = \"rules.so\" files = {\"rules/default.rules\"}$sa_rules }" \
  "$@" &
gate_pid=$!
echo "run-local: smtpgate pid $gate_pid, smtp-sink pid $sink_pid"
set +e
wait "$gate_pid"
rc=$?
# A signal interrupts `wait` and runs the traps above; a normal return means
# smtpgate itself exited.
gate_pid=""
exit "$rc"
