#!/bin/bash
# Builds the libFuzzer targets (swift build -c release -Xswiftc -sanitize=fuzzer,address, in this
# package, apart from the main one) and fuzzes each for a time or a number of executions.
#
# Usage: fuzz/run.sh [-t seconds | -n runs] [target...]
#   targets: FuzzProtocol FuzzResourceStatement FuzzDeviceSpec (default: all three)
# Each target starts from fuzz/seeds/<target> and keeps what it finds in fuzz/.build/corpus/<target>.
# A crash leaves its input in fuzz/.build/artifacts/ and makes the script fail. One line per target:
#   fuzz: TARGET execs=N exec/s=N seconds=N crashes=N
set -euo pipefail
cd "$(dirname "$0")"
. ../scripts/setup
hpvm_require_swift
limit=(-max_total_time=10)
while getopts "t:n:" option; do
    case $option in
        t) limit=(-max_total_time="$OPTARG") ;;
        n) limit=(-runs="$OPTARG") ;;
        *) echo "usage: fuzz/run.sh [-t seconds | -n runs] [target...]" >&2; exit 64 ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzProtocol FuzzResourceStatement FuzzDeviceSpec)
flags=(-c release -Xswiftc -sanitize=fuzzer,address)
# SwiftPM keeps the file list of a path dependency from its last plan: when files were added to or
# removed from the main package since, plan again (its build database goes with the plan).
mkdir -p .build
files="$(cd .. && find Sources -name '*.swift' -o -name '*.h' -o -name '*.c' | sort | cksum)"
if [ "$(cat .build/main-package-files 2>/dev/null)" != "$files" ]; then
    rm -f .build/release.yaml .build/build.db .build/*/release/description.json
fi
swift build "${flags[@]}" >&2
bin="$(swift build "${flags[@]}" --show-bin-path)"
echo "$files" > .build/main-package-files
mkdir -p .build/artifacts
status=0
for target in "${targets[@]}"; do
    corpus=".build/corpus/$target"
    mkdir -p "$corpus"
    dict=()
    [ "$target" = FuzzProtocol ] && dict=(-dict=protocol.dict)
    log=".build/$target.log"
    start=$EPOCHREALTIME
    set +e
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 "$bin/$target" "${limit[@]}" "${dict[@]}" -max_len=4096 -print_final_stats=1 \
        -artifact_prefix=.build/artifacts/ "$corpus" "seeds/$target" >"$log" 2>&1
    rc=$?
    set -e
    end=$EPOCHREALTIME
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    crashes=$(grep -c "^==[0-9]*==ERROR\|^artifact_prefix=.*Test unit written to\|Fatal error" "$log" || true)
    printf 'fuzz: %s execs=%s exec/s=%s seconds=%s crashes=%s\n' "$target" "${execs:-?}" "${rate:-?}" \
        "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')" "$crashes"
    if [ $rc -ne 0 ]; then
        status=1
        echo "fuzz: $target failed (exit $rc); its log is fuzz/$log:" >&2
        grep -E "Fatal error|ERROR|Test unit written to|SUMMARY" "$log" | head -20 >&2
    fi
done
exit $status
