#!/bin/bash
# Online migration figures (issue 10): `hpvmmigrate -o` of a running 256 MB guest between two sealed
# hosts (scripts/lib/two-hosts.sh), against QEMU's own TCP migration between the same two network
# namespaces, with the same QEMU arguments and the same stream settings, in the same run.
#
# Usage: bench/online-migrate.sh [runs]      (needs root; runs per case and side, default 3)
#
# Two cases, each guest booted from the ISOs of scripts/guest-image (TCG, 256 MB, the ISO as a
# virtio-scsi CD): `idle` (counter.iso: prints a counter every 0.2 s) and `dirty` (dirty.iso: the
# same, while it rewrites 128 MiB of a tmpfs file in a loop, ≈ 2.5 passes a second under TCG).
# Each run boots its guest afresh and migrates it as soon as its console shows it working (the
# first counter line for `idle`, the first finished dirtying pass for `dirty`), read from the
# console socket with socat; after the migration it reads a counter line from the target's console
# (the guest runs there). The two sides alternate (hpvm first in odd runs, QEMU first in even ones).
#
#   hpvm:  `hpvmstart` on A; `hpvmmigrate -o` to B, timed around the command (wall), with QEMU's
#          total-time, downtime and passes from its output line; then the guest is stopped on B,
#          removed there and made runnable again on A.
#   qemu:  a bare qemu-system-x86_64 in A's namespace with the argument vector hpvmstart gave the
#          guest's QEMU (/proc/PID/cmdline, run from a folder of its own, as QEMU's paths in it are
#          relative to the run folder); the receiver in B's namespace with the same vector (the ISO
#          of B's root) and `-incoming tcp:198.51.100.2:PORT`; over QMP (socat) the source gets the
#          same capability and parameters as hpvmmigrate sets (auto-converge on, max-bandwidth,
#          downtime-limit), then `migrate tcp:…`; `query-migrate` is polled every 20 ms until
#          completed. Wall: from launching the receiver until it reports `running` (hpvmmigrate's
#          wall likewise includes starting the target's QEMU). Both QEMUs are quit afterwards.
#
# A run that fails (either side) is printed with its message and counted, never averaged; the
# guest is then stopped on both hosts and made runnable on A again. The summary gives each case's
# mean and min–max and the ratios of the means against the issue's goals (total <= 1.5x QEMU's,
# downtime <= 2x). Results in bench/RESULTS.md.
#
# Stream settings: HPVM_MIGRATE_BANDWIDTH (MiB/s, default 1024) and HPVM_MIGRATE_DOWNTIME (ms,
# default 300), as hpvmmigrate reads them; both sides get the same values.
# Every QEMU, sshd and namespace this script starts is stopped by its own id at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup
HPVM_PACKAGES+=(socat jq)
hpvm_install_missing
hpvm_require_swift
if [ "$(id -u)" -ne 0 ]; then
    echo "online-migrate: needs root (network namespaces, sshd, QEMU)." >&2
    exit 1
fi

runs="${1:-${RUNS:-3}}"
case "$runs" in '' | *[!0-9]* | 0) echo "online-migrate: runs must be a positive number." >&2; exit 1 ;; esac
bandwidth="${HPVM_MIGRATE_BANDWIDTH:-1024}"
downtime="${HPVM_MIGRATE_DOWNTIME:-300}"
case "$bandwidth$downtime" in *[!0-9]*) echo "online-migrate: HPVM_MIGRATE_BANDWIDTH and HPVM_MIGRATE_DOWNTIME are numbers." >&2; exit 1 ;; esac
export HPVM_MIGRATE_BANDWIDTH="$bandwidth" HPVM_MIGRATE_DOWNTIME="$downtime" HPVM_ACCEL=tcg

# The release build users get, as bench/run.sh builds it.
. scripts/lib/release/flags.sh
swift build "${release_flags[@]}" >&2
bin="$(swift build "${release_flags[@]}" --show-bin-path)"
scripts/links "$bin"
bash scripts/guest-image >&2
images="$PWD/.build/test-guest"

work="$(mktemp -d /tmp/hpvm-online.XXXXXX)"
twin_pids=()
cleanup() {
    local pid
    for pid in "${twin_pids[@]}"; do
        case "$(cat "/proc/$pid/comm" 2>/dev/null)" in qemu-system*) kill -9 "$pid" 2>/dev/null || true ;; esac
    done
    two_hosts_down
    rm -rf "$work"
}
. scripts/lib/two-hosts.sh
trap cleanup EXIT

a="$work/a" b="$work/b"
for root in "$a" "$b"; do
    "$bin/hpvm-demo-host" --san-disks 1 "$root" >/dev/null
    mkdir -p "$root/hpvm/disks"
    cp "$images/counter.iso" "$images/dirty.iso" "$root/hpvm/disks/"
done
two_hosts_up "$a" "$b"
on A hpvmcreate -P idle -r 256M -l "counter.iso" -a dvd:scsi::file:/hpvm/disks/counter.iso
on A hpvmcreate -P dirty -r 256M -l "dirty.iso, 128 MiB rewritten in a loop" -a dvd:scsi::file:/hpvm/disks/dirty.iso

machine() {
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\t: //p' /proc/cpuinfo | head -1)"
    echo "kernel $(uname -r); $(qemu-system-x86_64 --version | head -1); $(socat -V | sed -n 's/^socat version \([^ ]*\).*/socat \1/p'); OpenSSH $(ssh -V 2>&1 | sed 's/^OpenSSH_\([^,]*\),.*/\1/')"
    echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "stream settings: auto-converge on, max-bandwidth $bandwidth MiB/s, downtime-limit $downtime ms; TCG, 256 MB guests; $runs runs per case and side"
}

# pattern of the console line that says a case's guest is at work
ready_line() { [ "$1" = idle ] && echo 'hpvm-counter [0-9]' || echo 'hpvm-dirty pass [0-9]'; }

# wait_console SOCKET PATTERN SECONDS: until a line of the console matches (retrying the connection
# while the socket is not there yet); fails after SECONDS.
wait_console() {
    local socket="$1" pattern="$2" deadline=$((SECONDS + $3))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if { timeout $((deadline - SECONDS + 1)) socat -u "UNIX-CONNECT:$socket" - 2>/dev/null || true; } | grep -a -q -m1 "$pattern"; then
            return 0
        fi
        sleep 0.05
    done
    echo "online-migrate: no '$pattern' on $socket" >&2
    return 1
}

# qmp SOCKET COMMAND_JSON...: one QMP session (capabilities, then the commands); prints the answer
# to the last command.
qmp() {
    local socket="$1"
    shift
    printf '%s\n' '{"execute":"qmp_capabilities"}' "$@" | socat -t 5 - "UNIX-CONNECT:$socket" | tr -d '\r' | grep -a '"return"\|"error"' | tail -1
}

# pidfile_pid FOLDER: the QEMU pid in FOLDER/pid, once there (QEMU writes it before -daemonize returns)
pidfile_pid() { cat "$1/pid"; }

ms_since() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", (b - a) * 1000}'; }

# Results, one line a run: case side run wall_ms total_ms downtime_ms passes MiB
results="$work/results" failures="$work/failures"
: > "$results"
: > "$failures"

# reset GUEST: the guest stopped on both hosts, absent from B and runnable on A again (whatever
# the migration left: after a failed one the guest may still run on A).
reset() {
    local guest="$1"
    on A hpvmstop -P "$guest" -F -Q >/dev/null 2>&1 || true
    on B hpvmstop -P "$guest" -F -Q >/dev/null 2>&1 || true
    on B hpvmremove -Q -F -P "$guest" >/dev/null 2>&1 || true
    on A hpvmmodify -P "$guest" -x register_status=enabled >/dev/null 2>&1 || true
    two_hosts_stop_guests
}

run_hpvm() {
    local guest="$1" n="$2" out status=0 t0 t1
    on A hpvmstart -P "$guest"
    # The argument vector of the guest's QEMU, for the bare side (taken once per guest)
    [ -f "$work/$guest.args" ] || cp "/proc/$(cat "$a/var/opt/hpvm/run/$guest/pid")/cmdline" "$work/$guest.args"
    wait_console "$a/var/opt/hpvm/run/$guest/console" "$(ready_line "$guest")" 60
    t0=$EPOCHREALTIME
    out="$(on A hpvmmigrate -o -P "$guest" -h 198.51.100.2 2>&1)" || status=$?
    t1=$EPOCHREALTIME
    # hpvmmigrate: online: N MiB of memory in T s, the guest stood still for D ms (P passes).
    local mib total down passes
    read -r mib total down passes < <(sed -n 's/^hpvmmigrate: online: \([0-9]*\) MiB of memory in \([0-9.]*\) s, the guest stood still for \([0-9]*\) ms (\([0-9]*\) passes)\.$/\1 \2 \3 \4/p' <<<"$out") || true
    if [ "$status" -ne 0 ] || [ -z "${passes:-}" ]; then
        echo "$guest hpvm $n FAILED after $(ms_since "$t0" "$t1") ms (exit status $status): $(tr '\n' ' ' <<<"$out")" | tee -a "$failures"
        reset "$guest"
        return 0
    fi
    wait_console "$b/var/opt/hpvm/run/$guest/console" 'hpvm-counter [0-9]' 20
    total="$(awk -v s="$total" 'BEGIN {printf "%.0f", s * 1000}')"
    echo "$guest hpvm $n $(ms_since "$t0" "$t1") $total $down $passes $mib" | tee -a "$results"
    reset "$guest"
}

run_qemu() {
    local guest="$1" n="$2" port=$((45000 + RANDOM % 10000)) src="$work/twin-a" dst="$work/twin-b"
    local args=() rargs=() word
    mapfile -d '' -t args < "$work/$guest.args"
    for word in "${args[@]}"; do rargs+=("${word//"$a/"/"$b/"}"); done
    rm -rf "$src" "$dst"
    mkdir -m 0700 "$src" "$dst"
    (cd "$src" && exec ip netns exec "$nsA" "${args[@]}")
    twin_pids+=("$(pidfile_pid "$src")")
    wait_console "$src/console" "$(ready_line "$guest")" 60 || return 1
    local t0 t1 answer status
    t0=$EPOCHREALTIME
    (cd "$dst" && exec ip netns exec "$nsB" "${rargs[@]}" -incoming "tcp:198.51.100.2:$port")
    twin_pids+=("$(pidfile_pid "$dst")")
    answer="$(qmp "$src/qmp" \
        '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"auto-converge","state":true}]}}' \
        "$(jq -cn --argjson bw "$((bandwidth << 20))" --argjson dl "$downtime" \
            '{execute: "migrate-set-parameters", arguments: {"max-bandwidth": $bw, "downtime-limit": $dl}}')" \
        "$(jq -cn --arg uri "tcp:198.51.100.2:$port" '{execute: "migrate", arguments: {uri: $uri}}')")"
    [ "$answer" = '{"return": {}}' ] || { echo "online-migrate: migrate: $answer" >&2; return 1; }
    while :; do
        answer="$(qmp "$src/qmp" '{"execute":"query-migrate"}')"
        status="$(jq -r '.return.status // "none"' <<<"$answer")"
        case "$status" in
            completed) break ;;
            failed | cancelled | none) echo "online-migrate: QEMU's migration $status: $answer" >&2; return 1 ;;
        esac
        sleep 0.02
    done
    until [ "$(qmp "$dst/qmp" '{"execute":"query-status"}' | jq -r '.return.status')" = running ]; do
        [ -e "/proc/$(pidfile_pid "$dst")" ] || { echo "online-migrate: the receiving QEMU ended" >&2; return 1; }
        sleep 0.01
    done
    t1=$EPOCHREALTIME
    wait_console "$dst/console" 'hpvm-counter [0-9]' 20 || return 1
    local total down passes mib
    read -r total down passes mib < <(jq -r '.return | "\(.["total-time"]) \(.downtime) \(.ram["dirty-sync-count"]) \(.ram.transferred / 1048576 | floor)"' <<<"$answer")
    echo "$guest qemu $n $(ms_since "$t0" "$t1") $total $down $passes $mib" | tee -a "$results"
    quit_twins
}

# quit_twins: both bare QEMUs asked to quit over QMP, then killed by their pids if still there.
quit_twins() {
    local folder pid
    for folder in "$work/twin-a" "$work/twin-b"; do
        [ -S "$folder/qmp" ] && { qmp "$folder/qmp" '{"execute":"quit"}' >/dev/null 2>&1 || true; }
        pid="$(cat "$folder/pid" 2>/dev/null)" || continue
        case "$(cat "/proc/$pid/comm" 2>/dev/null)" in qemu-system*) kill -9 "$pid" 2>/dev/null || true ;; esac
    done
}

# qemu_side GUEST N: one run of QEMU's own migration; a failure is printed and counted, as hpvm's are.
qemu_side() {
    run_qemu "$1" "$2" && return 0
    echo "$1 qemu $2 FAILED" | tee -a "$failures"
    quit_twins
}

machine
echo "case side run wall_ms qemu_total_ms downtime_ms passes MiB"
for n in $(seq 1 "$runs"); do
    for guest in idle dirty; do
        if [ $((n % 2)) -eq 1 ]; then run_hpvm "$guest" "$n"; qemu_side "$guest" "$n"; else qemu_side "$guest" "$n"; run_hpvm "$guest" "$n"; fi
    done
done

echo
echo "failed: idle hpvm $(grep -c '^idle hpvm' "$failures" || true) of $runs, dirty hpvm $(grep -c '^dirty hpvm' "$failures" || true) of $runs; QEMU's own: $(grep -c ' qemu ' "$failures" || true) failed"
# Mean and spread (min–max) of each figure, and the ratios of the means against the goals.
awk '
    { key = $1 " " $2; k[key]++; for (f = 4; f <= 8; f++) { v = $f + 0; s[key, f] += v; if (k[key] == 1 || v < lo[key, f]) lo[key, f] = v; if (k[key] == 1 || v > hi[key, f]) hi[key, f] = v } }
    function m(key, f) { return s[key, f] / k[key] }
    END {
        split("wall_ms qemu_total_ms downtime_ms passes MiB", name, " ")
        printf "\n%-6s %-5s %4s  %-22s %-22s %-20s %-12s %s\n", "case", "side", "runs", "wall ms (min-max)", "QEMU total ms (min-max)", "downtime ms (min-max)", "passes", "MiB"
        n = split("idle dirty", cases, " ")
        for (c = 1; c <= n; c++) for (side = 1; side <= 2; side++) {
            key = cases[c] " " (side == 1 ? "hpvm" : "qemu")
            if (!k[key]) continue
            printf "%-6s %-5s %4d  %-22s %-22s %-20s %-12s %.0f\n", cases[c], (side == 1 ? "hpvm" : "qemu"), k[key],
                sprintf("%.0f (%d-%d)", m(key, 4), lo[key, 4], hi[key, 4]),
                sprintf("%.0f (%d-%d)", m(key, 5), lo[key, 5], hi[key, 5]),
                sprintf("%.0f (%d-%d)", m(key, 6), lo[key, 6], hi[key, 6]),
                sprintf("%.1f (%d-%d)", m(key, 7), lo[key, 7], hi[key, 7]), m(key, 8)
        }
        print ""
        for (c = 1; c <= n; c++) {
            h = cases[c] " hpvm"; q = cases[c] " qemu"
            if (!k[h] || !k[q]) continue
            printf "%s: wall %.2fx, QEMU total-time %.2fx (goal <= 1.5x: %s), downtime %.2fx (goal <= 2x: %s)\n", cases[c],
                m(h, 4) / m(q, 4), m(h, 5) / m(q, 5), (m(h, 5) <= 1.5 * m(q, 5) ? "met" : "missed"),
                (m(q, 6) > 0 ? m(h, 6) / m(q, 6) : 0), (m(h, 6) <= 2 * m(q, 6) ? "met" : "missed")
        }
    }' "$results"
