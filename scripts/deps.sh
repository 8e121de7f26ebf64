#!/usr/bin/env bash
# Installs the Debian packages smtpgate needs, only those missing, so that
# `make run` and `make test` work on a fresh Debian 12 machine and cost nothing
# when everything is already there.
#
#   scripts/deps.sh run     build + run (daemon, a real local upstream, swaks)
#   scripts/deps.sh test    everything `make test`, `make bench` and `make fuzz` use
set -euo pipefail

build_pkgs=(build-essential pkg-config libevent-dev libconfuse-dev libssl-dev libpcre2-dev
            libgmime-3.0-dev libspf2-dev libmilter-dev libc-ares-dev libhiredis-dev scdoc)
run_pkgs=(postfix swaks)
test_pkgs=(libcmocka-dev python3 python3-pytest python3-aiosmtpd clang libclang-rt-14-dev
           valgrind procps iproute2 python3-yaml python3-spf python3-dnslib dnsmasq-base rbldnsd
           haproxy opendkim opendkim-tools openssl dovecot-core libnet-ssleay-perl
           libio-socket-ssl-perl debhelper dpkg-dev fakeroot lintian man-db
           prometheus chromium redis-server python3-milter clamav-daemon clamav-milter
           spamd spamass-milter rspamd opendmarc
           spamassassin)

case "${1:-test}" in
  run)  want=("${build_pkgs[@]}" "${run_pkgs[@]}") ;;
  test) want=("${build_pkgs[@]}" "${run_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing: ${missing[*]}"
# Postfix must not configure itself as the system MTA: the project runs its own
# instances on loopback ports and never leaves anything listening on port 25.
echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
# The tests want promtool only: the prometheus package's server must not start
# (and listen on :9090) while installing, nor come back at boot.  Likewise
# redis-server: the tests start their own on loopback ports, never :6379.
policy_rc=/usr/sbin/policy-rc.d
if [ ! -e "$policy_rc" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy_rc" >/dev/null
  $sudo chmod 755 "$policy_rc"
  trap '$sudo rm -f "$policy_rc"' EXIT
fi
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ]; then
  $sudo apt-get update -q
fi
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" || {
  $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; }
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  $sudo systemctl disable --now prometheus prometheus-node-exporter redis-server 2>/dev/null || true
fi
