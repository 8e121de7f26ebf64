#!/usr/bin/env bash
# Builds and runs the libFuzzer harnesses tests/fuzz/fuzz_*.c.
#
#   tests/fuzz/run.sh [NAME...]          fuzz each harness for ${FUZZ_SECONDS:-20} s with a
#                                        working corpus in build/fuzz/corpus/NAME, seeded
#                                        from tests/fuzz/seeds/NAME (make fuzz)
#   tests/fuzz/run.sh --check [NAME...]  run each harness once over its seeds only, as a
#                                        regression test (make test)
#   tests/fuzz/run.sh --merge [NAME...]  fuzz as above, then add to tests/fuzz/seeds/NAME
#                                        the inputs of the run that reach code the seeds
#                                        did not (libFuzzer -merge=1): how the committed
#                                        corpora grow after a longer run, outside CI
#
# NAME is the harness file name without "fuzz_" and ".c"; without names, every
# harness runs.  Each harness names the sources it links on its first line:
#   // fuzz-sources: codec/a.c util/b.c
# (a pattern such as daemon/*.c names a layer; !daemon/main.c leaves a file out).
# A harness that needs more libraries names their pkg-config modules (or -l
# flags) on the line after those:
#   // fuzz-pkgs: libpcre2-8 gmime-3.0 -lspf2
# Binaries go to build/fuzz/NAME, logs to build/fuzz/NAME.log, crashing inputs
# to build/fuzz/artifacts/.  A harness that does not build counts as failed.
# Prints one line per harness, then "N passed, N failed"; exits non-zero when
# any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."

mode=fuzz
names=()
for arg in "$@"; do
  case "$arg" in
    --check) mode=check ;;
    --merge) mode=merge ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
    *) names+=("$arg") ;;
  esac
done

seconds=${FUZZ_SECONDS:-20}
out=build/fuzz
mkdir -p "$out/corpus" "$out/artifacts" "$out/empty"

CC=${FUZZ_CC:-clang}
# UBSan reports must stop the run like ASan ones, or they scroll by unnoticed.
CFLAGS=(-g -O1 -std=gnu11 -D_GNU_SOURCE -I. -Iplugins
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
read -r -a pkg_cflags <<< "$(pkg-config --cflags libevent 2>/dev/null)"
# Libraries the daemon links, for harnesses whose sources need them (config: libconfuse).
libs=()
for p in libevent libevent_pthreads libconfuse openssl; do
  if pkg-config --exists "$p" 2>/dev/null; then
    read -r -a l <<< "$(pkg-config --libs "$p")"
    libs+=("${l[@]}")
  fi
done
libs+=(-lpthread)

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

if ! command -v "$CC" >/dev/null; then
  echo "run.sh: $CC not found (libFuzzer needs clang)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

harnesses=()
if [ ${#names[@]} -eq 0 ]; then
  for h in tests/fuzz/fuzz_*.c; do [ -e "$h" ] && harnesses+=("$h"); done
else
  for n in "${names[@]}"; do harnesses+=("tests/fuzz/fuzz_$n.c"); done
fi

passed=0
failed=0
for h in "${harnesses[@]}"; do
  name=$(basename "$h" .c)
  name=${name#fuzz_}
  bin="$out/$name"
  log="$out/$name.log"

  if [ ! -f "$h" ]; then
    echo "FAIL  $name: no such harness $h"
    failed=$((failed + 1)); continue
  fi
  first=$(head -n 1 "$h")
  if [[ "$first" != "// fuzz-sources:"* ]]; then
    echo "FAIL  $name: first line must be '// fuzz-sources: <files>'"
    failed=$((failed + 1)); continue
  fi
  # Several "// fuzz-sources:" lines in a row add up, so that a long list
  # stays within the column limit of `make format`.
  srcs=()
  n=0
  while IFS= read -r line && [[ "$line" == "// fuzz-sources:"* ]]; do
    read -r -a more <<< "${line#// fuzz-sources:}"
    # A pattern (layer/*.c) names a whole layer; !file leaves one out (an entry point).
    for m in "${more[@]}"; do
      case "$m" in
        '!'*) for i in "${!srcs[@]}"; do [ "${srcs[$i]}" = "${m#!}" ] && unset 'srcs[i]'; done ;;
        *'*'*) while IFS= read -r f; do srcs+=("$f"); done < <(compgen -G "$m" | sort) ;;
        *) srcs+=("$m") ;;
      esac
    done
    n=$((n + 1))
  done < "$h"
  extra=()
  second=$(sed -n "$((n + 1))p" "$h")
  if [[ "$second" == "// fuzz-pkgs:"* ]]; then
    for m in ${second#// fuzz-pkgs:}; do
      if [[ "$m" == -* ]]; then extra+=("$m"); continue; fi
      read -r -a l <<< "$(pkg-config --cflags --libs "$m" 2>/dev/null)"
      extra+=("${l[@]}")
    done
  fi

  if ! "$CC" "${CFLAGS[@]}" "${pkg_cflags[@]}" -Iplugins "$h" "${srcs[@]}" -o "$bin" "${extra[@]}" "${libs[@]}" \
       >"$log" 2>&1; then
    echo "FAIL  $name: build failed"
    sed 's/^/      /' "$log" | tail -20
    failed=$((failed + 1)); continue
  fi

  seeds="tests/fuzz/seeds/$name"
  [ -d "$seeds" ] || seeds="$out/empty"
  common=(-timeout=5 -rss_limit_mb=2048 -artifact_prefix="$out/artifacts/$name-")

  if [ "$mode" = check ]; then
    # -runs=0: every seed is run once, no mutation.
    "$bin" "${common[@]}" -runs=0 "$seeds" >>"$log" 2>&1
    rc=$?
    what="$(find "$seeds" -type f | wc -l) seeds"
  else
    corpus="$out/corpus/$name"
    mkdir -p "$corpus"
    find "$seeds" -maxdepth 1 -type f -exec cp -n {} "$corpus/" \;
    "$bin" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 "$corpus" \
      >>"$log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && [ "$mode" = merge ]; then
      mkdir -p "tests/fuzz/seeds/$name"
      "$bin" "${common[@]}" -merge=1 "tests/fuzz/seeds/$name" "$corpus" >>"$log" 2>&1 || rc=$?
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    what="${seconds}s, ${runs:-?} runs, corpus $(find "$corpus" -type f | wc -l)"
  fi

  if [ "$rc" -eq 0 ]; then
    echo "ok    $name ($what)"
    passed=$((passed + 1))
  else
    echo "FAIL  $name (exit $rc, $what); log: $log"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -10 | sed 's/^/      /'
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
