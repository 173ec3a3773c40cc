#!/bin/bash
# hpvmaudit verify on a registry of 100,000 audit rows written by 1,020 ordinary commands
# (hpvmdevmgmt -a/-m/-d with 100 operations each, and 20 hpvmcreate), untouched: the whole chain
# hashed, the log parsed and replayed, and the tables compared. Target: under 1 s.
#
# Usage: bench/audit-verify.sh           (about 5 minutes, most of it writing the rows)
# Results go to stdout; copy them into bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup
HPVM_PACKAGES+=(hyperfine)
hpvm_install_missing
hpvm_require_swift

# The same build as bench/run.sh and scripts/package.
. scripts/lib/release/flags.sh
swift build "${release_flags[@]}" >&2
bin="$(swift build "${release_flags[@]}" --show-bin-path)"
scripts/links "$bin"
work="$(mktemp -d /tmp/hpvm-bench-audit.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\t: //p' /proc/cpuinfo | head -1)"
echo "kernel $(uname -r); $(swift --version 2>/dev/null | head -1); sqlite3 $(sqlite3 --version | cut -d' ' -f1); hyperfine $(hyperfine --version | cut -d' ' -f2)"
echo "file system of $work: $(df -T "$work" | awk 'NR==2 {print $2}')"
echo "## (i) hpvmaudit verify on 100,000 audit rows"

root="$work/i"
"$bin/hpvm-demo-host" --san-disks 460 "$root" >&2
export HPVM_ROOT="$root"
RANDOM=12
start="$(date +%s%N)"
for c in $(seq 0 999); do
    window=$(( (c / 4) % 4 * 100 ))
    args=()
    for k in $(seq $((window + 1)) $((window + 100))); do
        case $((c % 4)) in
            0) args+=(-a "gdev:/dev/rdisk/disk$k") ;;
            1) args+=(-m "gdev:/dev/rdisk/disk$k:attr:SHARE=$( ((RANDOM % 2)) && echo YES || echo NO)") ;;
            2) args+=(-m "gdev:/dev/rdisk/disk$k:attr:PRESERVE=$( ((RANDOM % 2)) && echo YES || echo NO)") ;;
            3) args+=(-d "gdev:/dev/rdisk/disk$k") ;;
        esac
    done
    "$bin/hpvmdevmgmt" "${args[@]}"
    if (( c % 50 == 49 )); then
        "$bin/hpvmcreate" -P "g$c" -a "disk:avio_stor::disk:/dev/rdisk/disk$((401 + c / 50))"
    fi
done
end="$(date +%s%N)"
db="$root/var/opt/hpvm/common/hpvm_mgmtdb.sqlite"
rows="$(sqlite3 -readonly "$db" 'SELECT count(*) FROM auditLog')"
echo "rows: $rows, written by 1,020 commands in $(awk -v n=$((end - start)) 'BEGIN {printf "%.0f s", n / 1e9}')"
"$bin/hpvmaudit" verify
hyperfine -N --warmup 2 --runs "${RUNS_I:-10}" --export-csv "$work/i.csv" -n "hpvmaudit verify" "$bin/hpvmaudit verify" >&2
mean="$(awk -F, 'NR == 2 {print $2}' "$work/i.csv")"
echo "hpvmaudit verify: $(awk -v s="$mean" 'BEGIN {printf "%.0f ms", s * 1000}') (mean of ${RUNS_I:-10}; target < 1 s)"
