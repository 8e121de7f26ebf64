#!/usr/bin/env bash
# Builds the release smtpgate of an older revision for the bench's
# before -> after phase, and prints the binary's path.
#
#   tests/bench/baseline.sh REV      e.g. HEAD~3, a tag, a commit
#   tests/bench/run.sh --baseline "$(tests/bench/baseline.sh REV)" [--baseline-only]
#
# The revision is exported with git archive (the work tree is left alone) and
# built in build/baseline/COMMIT/; a second call for the same commit reuses it.
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:?usage: baseline.sh REV}
commit=$(git rev-parse --verify "$rev^{commit}")
dir=build/baseline/$commit
if [ ! -x "$dir/build/release/smtpgate" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  git archive "$commit" | tar -x -C "$dir"
  make -C "$dir" -j"$(nproc)" build/release/smtpgate >"$dir.log" 2>&1 ||
    { echo "baseline.sh: building $rev failed; see $dir.log" >&2; exit 1; }
fi
echo "$PWD/$dir/build/release/smtpgate"
