#!/bin/bash
# Soak the storage promise: the PromiseTests random walk with a large step count.
#
# Usage: bench/promise-soak.sh [steps] [seed]
#   steps  total steps (default: $HPVM_PROMISE_STEPS, else 1000000)
#   seed   the run's seed (default: $HPVM_PROMISE_SEED, else a random one, printed)
# Other settings pass through the environment: HPVM_PROMISE_WALK_LENGTH (steps before a fresh
# host, default 200), HPVM_PROMISE_MAX_FINDINGS (stop after that many violations, default 25),
# HPVM_PROMISE_IGNORE (finding classes to look past, e.g. b:host,d), HPVM_PROMISE_EXCLUDE (step
# kinds never drawn, e.g. depend), HPVM_PROMISE_TRACE (print every step).
# Every violation is printed with its walk's seed, step, command and finding, and a replay line.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup
hpvm_install_missing
hpvm_require_swift

export HPVM_PROMISE_STEPS="${1:-${HPVM_PROMISE_STEPS:-1000000}}"
export HPVM_PROMISE_SEED="${2:-${HPVM_PROMISE_SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}}"
echo "promise soak: HPVM_PROMISE_SEED=$HPVM_PROMISE_SEED HPVM_PROMISE_STEPS=$HPVM_PROMISE_STEPS" >&2
swift build --build-tests >&2
exec swift test --skip-build --filter PromiseTests
