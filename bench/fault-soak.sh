#!/bin/bash
# Soak the migration fault suite: FaultSuiteTests with many runs (CI runs 24).
#
# Usage: bench/fault-soak.sh [runs] [seed]
#   runs  migrations, one fault each (default: $HPVM_FAULT_RUNS, else 300)
#   seed  the suite's seed (default: $HPVM_FAULT_SEED, else a random one, printed)
# HPVM_FAULT_WINDOW=ms fixes the window faults land in (default: 1.1 x one clean migration, measured).
# Every finding is printed with its run's seed; HPVM_FAULT_SEED=<run seed> HPVM_FAULT_RUNS=1 replays
# that run's choices (fault, moment, sizes, hosts), not the machine's timing. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup
hpvm_install_missing
hpvm_require_swift

export HPVM_FAULT_RUNS="${1:-${HPVM_FAULT_RUNS:-300}}"
export HPVM_FAULT_SEED="${2:-${HPVM_FAULT_SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}}"
echo "fault soak: HPVM_FAULT_SEED=$HPVM_FAULT_SEED HPVM_FAULT_RUNS=$HPVM_FAULT_RUNS" >&2
swift build --build-tests >&2
exec swift test --skip-build --filter 'FaultSuiteTests'
