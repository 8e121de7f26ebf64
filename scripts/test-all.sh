#!/usr/bin/env bash
# Runs every test against the sanitizer build (build/asan) and prints one closing
# line "N passed, N failed" over all of them: cmocka unit tests, the fuzz
# harnesses over their seed corpora, and the integration tests (pytest, real
# clients and real upstreams on loopback).
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0

# "passed failed" from a pytest junit file (skips count as neither).
junit_counts() {
  /usr/bin/python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skip = sum(int(s.get("skipped", 0)) for s in suites)
print(t - bad - skip, bad)
PY
}
failures=()
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

echo "== unit tests (cmocka, ASan+UBSan)"
for t in build/asan/tests/test_*; do
  [ -x "$t" ] || continue
  out=$("$t" 2>&1); rc=$?
  echo "$out" | grep -E '^\[  (PASSED|FAILED|  OK  |ERROR)' | sed "s|^|$(basename "$t"): |" | grep -v '  OK  ' || true
  p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  p=${p:-0}; f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$out" | tail -20; fi
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -gt 0 ] && failures+=("$(basename "$t")")
done

if [ -x tests/fuzz/run.sh ]; then
  echo "== fuzz harnesses over their seed corpora"
  if tests/fuzz/run.sh --check; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("fuzz --check"); fi
fi

if [ -d tests/integration ] && ls tests/integration/test_*.py >/dev/null 2>&1; then
  echo "== integration tests (pytest, build/asan/smtpgate)"
  junit=build/integration-junit.xml
  SMTPGATE_BIN="$PWD/build/asan/smtpgate" SMTPGATE_RELEASE_BIN="$PWD/build/release/smtpgate" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$junit" tests/integration
  read -r p f < <(junit_counts "$junit")
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -gt 0 ] && failures+=("integration")
fi

# Leaks the sanitizer build cannot see (it runs with its own allocator) are
# looked for by valgrind on the release build, over the basic, lifecycle and
# filter chain tests: every exit must be clean with no definite leak.
if [ -x build/release/smtpgate ] && command -v valgrind >/dev/null && [ -f tests/integration/test_basic.py ]; then
  echo "== integration tests under valgrind (build/release/smtpgate)"
  mkdir -p build/valgrind
  cat > build/valgrind/smtpgate <<VG
#!/bin/sh
exec valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=97 \\
  "$PWD/build/release/smtpgate" "\$@"
VG
  chmod +x build/valgrind/smtpgate
  junit=build/valgrind-junit.xml
  SMTPGATE_BIN="$PWD/build/valgrind/smtpgate" SMTPGATE_RELEASE_BIN="$PWD/build/release/smtpgate" \
    SMTPGATE_PLUGIN_DIR="$PWD/build/release/tests/plugins" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$junit" \
    tests/integration/test_basic.py tests/integration/test_lifecycle.py \
    tests/integration/test_chain.py tests/integration/test_sdk.py
  read -r p f < <(junit_counts "$junit")
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -gt 0 ] && failures+=("valgrind")
fi

[ ${#failures[@]} -gt 0 ] && echo "failing: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
