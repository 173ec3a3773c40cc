#!/bin/bash
# libFuzzer soak: each fuzz target (fuzz/) for ten million executions or more.
#
# Usage: bench/fuzz.sh [executions]     (default 10000000 per target)
# Prints one line per target (execs, exec/s, seconds, crashes); a crash fails the script and leaves
# its input in fuzz/.build/artifacts/. The corpus each run grows stays in fuzz/.build/corpus/.
# Figures go to bench/RESULTS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup
hpvm_install_missing
hpvm_require_swift
runs="${1:-10000000}"
echo "fuzz soak: $runs executions per target, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')" >&2
exec bash fuzz/run.sh -n "$runs"
