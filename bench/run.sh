#!/bin/bash
# hpvm benchmarks: each figure measured against the plain tool a user would otherwise use, in the
# same run, on this machine. Results go to stdout; copy them into bench/RESULTS.md.
#
# Usage: bench/run.sh [s|a|b|c|d|e|f|g|h]...     (default: all)
#   s  start-up: `hpvmdevmgmt -v` vs `sqlite3 -version`
#   a  one `hpvmdevmgmt -a` process vs one `sqlite3` process doing the same insert (WAL)
#   b  `hpvmdevmgmt -l all` over 100,000 entries vs `sqlite3` printing the same lines
#   c  `hpvmdevmgmt -I` on a host root with 10,000 SAN disks (target: under 2 s)
#   d  8 processes adding 500 entries each in parallel: all 4,000 present, zero errors
#   e  `hpvmstatus` over 10,000 guests with 8 resources each vs `sqlite3` printing the same table
#   f  `hpvmcreate` of one more guest (8 resources) into that registry vs `sqlite3` doing its inserts
#   g  a 64-disk guest migrated between two sealed namespaces vs OpenSSH `ssh -i key target true`,
#      and the number of SSH connections one migration makes (counted in sshd's log)
#   h  `hpvmmigrate -m ... -C` of a 1 GiB file, dense and with 10 % data, vs `scp` of the same file
#   j  `hpvmstart` of a firmware-only guest (TCG, 64 MB, one disk) to QMP-ready vs a bare
#      `qemu-system-x86_64` with the same options, started and asked `query-status` by a small C
#      program (bench/qmp-ready.c)
#
# Needs root or sudo only to install hyperfine and sqlite3 when they are missing.
#
# HPVM_BENCH_BEFORE=folder also times, in (s), (a), (e) and (f), the commands in that folder (an
# earlier build, e.g. of main, with its hpvmdevmgmt, hpvmcreate, ...) in the same hyperfine run:
# a change's effect on start-up, measured under the same load.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup
HPVM_PACKAGES+=(hyperfine)
hpvm_install_missing
hpvm_require_swift

# The release build users get (scripts/package): start-up is most of a command's cost.
. scripts/lib/release/flags.sh
swift build "${release_flags[@]}" >&2
bin="$(swift build "${release_flags[@]}" --show-bin-path)"
scripts/links "$bin"
before="${HPVM_BENCH_BEFORE:-}"
views="$PWD/schema/audit.sql"
work="$(mktemp -d /tmp/hpvm-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
which=("${@:-s a b c d e f g h j}")
which=(${which[*]})

machine() {
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\t: //p' /proc/cpuinfo | head -1)"
    echo "kernel $(uname -r); $(swift --version 2>/dev/null | head -1); sqlite3 $(sqlite3 --version | cut -d' ' -f1); hyperfine $(hyperfine --version | cut -d' ' -f2)"
    echo "file system of $work: $(df -T "$work" | awk 'NR==2 {print $2}')"
}

# hyperfine in rounds: `rounds CSV RUNS hyperfine ARGS...` runs it ROUNDS times (default 5) with
# RUNS/ROUNDS runs each, so the commands compared take turns all through the figure and a change
# in the machine's load (it is shared) weighs on each alike; hyperfine alone runs one command's
# runs, then the next's.
rounds() {
    local csv="$1" runs="$2" round count="${ROUNDS:-5}"
    shift 2
    rm -f "$csv".*
    for round in $(seq 1 "$count"); do
        "$@" --runs "$(( (runs + count - 1) / count ))" --export-csv "$csv.$round" >&2
    done
}

# mean seconds of command N (0-based) in a hyperfine CSV export, or over the rounds' exports
mean() {
    if [ -f "$1" ]; then awk -F, -v row="$(($2 + 2))" 'NR == row {print $2}' "$1"; return; fi
    cat "$1".* | awk -F, -v n="$2" '$1 == "command" {row = 0; next} {if (row++ == n) {sum += $2; k++}} END {printf "%.9f\n", sum / k}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
ms() { awk -v s="$1" 'BEGIN {printf "%.2f ms", s * 1000}'; }

# "before: 5.10 ms (1.95x)": the HPVM_BENCH_BEFORE command (row 2 of a CSV) against the plain tool.
before_figure() { [ -z "$before" ] || echo "   before: $(ms "$(mean "$1" 2)") ($(ratio "$(mean "$1" 2)" "$(mean "$1" 1)")x)"; }

bench_s() {
    echo "## (s) start-up: hpvmdevmgmt -v vs sqlite3 -version"
    local root="$work/s" extra=()
    mkdir -p "$root"
    [ -z "$before" ] || extra=(-n "before: hpvmdevmgmt -v" "$before/hpvmdevmgmt -v")
    HPVM_ROOT="$root" rounds "$work/s.csv" "${RUNS_S:-300}" hyperfine -N --warmup 10 \
        -n "hpvmdevmgmt -v" -n "sqlite3 -version" "$bin/hpvmdevmgmt -v" "sqlite3 -version" "${extra[@]}" >&2
    local ours theirs
    ours="$(mean "$work/s.csv" 0)"
    theirs="$(mean "$work/s.csv" 1)"
    echo "hpvmdevmgmt -v: $(ms "$ours")   sqlite3 -version: $(ms "$theirs")   ratio: $(ratio "$ours" "$theirs")x$(before_figure "$work/s.csv")"
}

# A registry with its schema, made by the command itself.
new_registry() {
    local root="$1"
    mkdir -p "$root/bench"
    touch "$root/bench/seed.img"
    HPVM_ROOT="$root" "$bin/hpvmdevmgmt" -a gdev:/bench/seed.img
    echo "$root/var/opt/hpvm/common/hpvm_mgmtdb.sqlite"
}

bench_a() {
    echo "## (a) one insert: hpvmdevmgmt -a vs sqlite3"
    local root="$work/a" db copy
    db="$(new_registry "$root")"
    touch "$root/bench/x.img"
    copy="$work/a-sqlite.sqlite"
    cp "$db" "$copy"
    [ "$(sqlite3 "$copy" 'PRAGMA journal_mode')" = wal ]
    # The sqlite3 side does the rows hpvmdevmgmt writes (entry, name, attribute, audit row), in one
    # BEGIN IMMEDIATE transaction, on a copy of the same registry file.
    local insert="BEGIN IMMEDIATE;
INSERT INTO device (type, name, devType, exist, identityKey, resolvedPath, createdAt, updatedAt)
  VALUES ('gdev', '/bench/x.img', 'FILE', 1, 'path:/bench/x.img', '/bench/x.img', strftime('%Y-%m-%dT%H:%M:%fZ'), strftime('%Y-%m-%dT%H:%M:%fZ'));
INSERT INTO deviceName (deviceId, name, position) VALUES (last_insert_rowid(), '/bench/x.img', 0);
INSERT INTO deviceAttribute (deviceId, name, value) SELECT id, 'SHARE', 'NO' FROM device WHERE name = '/bench/x.img';
INSERT INTO auditLog (id, at, user, command, action, object, change, prevHash, hash)
  SELECT coalesce(max(id), 0) + 1, strftime('%Y-%m-%dT%H:%M:%fZ'), 'root', 'sqlite3', 'add', '/bench/x.img', '{}',
         coalesce((SELECT hash FROM auditLog ORDER BY id DESC LIMIT 1), printf('%064d', 0)), lower(hex(randomblob(32))) FROM auditLog;
COMMIT;"
    local extra=()
    [ -z "$before" ] || extra=(-n "before: hpvmdevmgmt -a"
        --prepare "sh -c '\"$bin/hpvmdevmgmt\" -d gdev:/bench/x.img >/dev/null 2>&1; true'" "$before/hpvmdevmgmt -a gdev:/bench/x.img")
    HPVM_ROOT="$root" rounds "$work/a.csv" "${RUNS_A:-100}" hyperfine -N --warmup 5 \
        -n "hpvmdevmgmt -a" -n "sqlite3 insert" \
        --prepare "sh -c '\"$bin/hpvmdevmgmt\" -d gdev:/bench/x.img >/dev/null 2>&1; true'" \
        "$bin/hpvmdevmgmt -a gdev:/bench/x.img" \
        --prepare "sqlite3 $copy \"PRAGMA foreign_keys = ON; DELETE FROM device WHERE name = '/bench/x.img'\"" \
        "sqlite3 $copy \"$insert\"" "${extra[@]}" >&2
    local ours theirs
    ours="$(mean "$work/a.csv" 0)"
    theirs="$(mean "$work/a.csv" 1)"
    echo "hpvmdevmgmt -a: $(ms "$ours")   sqlite3 insert: $(ms "$theirs")   ratio: $(ratio "$ours" "$theirs")x (target <= 2x)$(before_figure "$work/a.csv")"
}

bench_b() {
    echo "## (b) list 100,000 entries: hpvmdevmgmt -l all vs sqlite3"
    local root="$work/b" db
    db="$(new_registry "$root")"
    sqlite3 "$db" "
BEGIN IMMEDIATE;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
INSERT INTO device (type, name, devType, exist, wwid, identityKey, transport, createdAt, updatedAt)
SELECT CASE WHEN i % 10 = 0 THEN 'rdev' ELSE 'gdev' END, '/dev/rdisk/disk' || i, 'DISK', 1,
       '600508b4000115d0' || printf('%016x', i), 'wwid:600508b4000115d0' || printf('%016x', i), 'fc', 'bench', 'bench'
FROM n;
INSERT INTO deviceName (deviceId, name, position) SELECT id, name, 0 FROM device WHERE createdAt = 'bench';
INSERT INTO deviceName (deviceId, name, position) SELECT id, '/dev/sd' || id, 1 FROM device WHERE createdAt = 'bench' AND id % 2 = 0;
INSERT INTO deviceAttribute (deviceId, name, value) SELECT id, 'SHARE', CASE WHEN id % 7 = 0 THEN 'YES' ELSE 'NO' END FROM device WHERE createdAt = 'bench';
INSERT INTO deviceAttribute (deviceId, name, value) SELECT id, 'PRESERVE', 'YES' FROM device WHERE createdAt = 'bench' AND id % 13 = 0 AND type = 'gdev';
INSERT INTO dependent (deviceId, name) SELECT id, 'guest' || (id % 997) FROM device WHERE createdAt = 'bench' AND type = 'gdev' AND id % 3 = 0;
COMMIT;"
    local count
    count="$(sqlite3 "$db" 'SELECT count(*) FROM device')"
    # Both print the same 100,000 lines: check it before timing.
    HPVM_ROOT="$root" "$bin/hpvmdevmgmt" -l all > "$work/b-ours.txt"
    sqlite3 -readonly "$db" ".read $views" "SELECT line FROM deviceListing;" > "$work/b-sqlite.txt"
    cmp "$work/b-ours.txt" "$work/b-sqlite.txt"
    HPVM_ROOT="$root" rounds "$work/b.csv" "${RUNS_B:-20}" hyperfine -N --warmup 2 \
        -n "hpvmdevmgmt -l all" -n "sqlite3 deviceListing" \
        "$bin/hpvmdevmgmt -l all" \
        "sqlite3 -readonly $db '.read $views' 'SELECT line FROM deviceListing;'" >&2
    local ours theirs
    ours="$(mean "$work/b.csv" 0)"
    theirs="$(mean "$work/b.csv" 1)"
    echo "entries: $count, identical output: yes ($(wc -l < "$work/b-ours.txt") lines)"
    echo "hpvmdevmgmt -l all: $(ms "$ours")   sqlite3: $(ms "$theirs")   ratio: $(ratio "$ours" "$theirs")x (target <= 2x)"
}

bench_c() {
    echo "## (c) hpvmdevmgmt -I on a host root with 10,000 SAN disks"
    local root="$work/c" db
    "$bin/hpvm-demo-host" --san-disks 10000 "$root" >&2
    mkdir -p "$root/bench"
    touch "$root/bench/seed.img"
    HPVM_ROOT="$root" "$bin/hpvmdevmgmt" -a gdev:/dev/rdisk/disk1
    db="$root/var/opt/hpvm/common/hpvm_mgmtdb.sqlite"
    # 10,000 gdev entries, one per LUN, as hpvmdevmgmt -a would record them before the rescan.
    sqlite3 "$db" "
BEGIN IMMEDIATE;
WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
INSERT INTO device (type, name, devType, exist, wwid, identityKey, transport, createdAt, updatedAt)
SELECT 'gdev', '/dev/rdisk/disk' || i, 'DISK', 1, '600508b4000115d0' || printf('%016x', i),
       'wwid:600508b4000115d0' || printf('%016x', i), 'fc', 'bench', 'bench' FROM n;
INSERT INTO deviceName (deviceId, name, position) SELECT id, name, 0 FROM device WHERE createdAt = 'bench';
INSERT INTO deviceAttribute (deviceId, name, value) SELECT id, 'SHARE', 'NO' FROM device WHERE createdAt = 'bench';
COMMIT;"
    local start end
    start="$(date +%s%N)"
    HPVM_ROOT="$root" "$bin/hpvmdevmgmt" -I -V
    end="$(date +%s%N)"
    echo "first -I (records 10,000 aliases): $(awk -v n=$((end - start)) 'BEGIN {printf "%.3f s", n / 1e9}')"
    HPVM_ROOT="$root" hyperfine -N --warmup 1 --runs "${RUNS_C:-5}" --export-csv "$work/c.csv" -n "hpvmdevmgmt -I" \
        "$bin/hpvmdevmgmt -I" >&2
    echo "-I with nothing to change, mean of ${RUNS_C:-5}: $(awk -v s="$(mean "$work/c.csv" 0)" 'BEGIN {printf "%.3f s", s}') (target < 2 s)"
}

bench_d() {
    echo "## (d) 8 processes x 500 adds in parallel"
    local root="$work/d" db
    db="$(new_registry "$root")"
    for w in 0 1 2 3 4 5 6 7; do
        for i in $(seq 1 500); do : > "$root/bench/w$w-$i.img"; done
    done
    local start end
    start="$(date +%s%N)"
    for w in 0 1 2 3 4 5 6 7; do
        (
            errors=0
            for i in $(seq 1 500); do
                HPVM_ROOT="$root" "$bin/hpvmdevmgmt" -a "gdev:/bench/w$w-$i.img" 2>>"$work/d-errors.txt" || errors=$((errors + 1))
            done
            echo "$errors" > "$work/d-$w.errors"
        ) &
    done
    wait
    end="$(date +%s%N)"
    local errors present audit
    errors="$(cat "$work"/d-*.errors | awk '{s += $1} END {print s}')"
    present="$(HPVM_ROOT="$root" "$bin/hpvmdevmgmt" -l gdev | grep -c '^/bench/w')"
    audit="$(sqlite3 -readonly "$db" 'SELECT count(*) FROM auditLog')"
    echo "wall: $(awk -v n=$((end - start)) 'BEGIN {printf "%.1f s", n / 1e9}'), entries present: $present of 4000, failed commands: $errors, audit rows: $audit"
    [ -s "$work/d-errors.txt" ] && { echo "stderr:"; head -5 "$work/d-errors.txt"; }
    true
}

# 10,000 guests with 8 resources each (6 disks, a DVD, a network), as hpvmcreate records them.
guest_registry() {
    local root="$1" db
    db="$(new_registry "$root")"
    sqlite3 "$db" "
BEGIN IMMEDIATE;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
INSERT INTO guest (name, vmNumber, label, osType, vcpus, memoryMB, createdAt, updatedAt)
SELECT 'guest' || printf('%05d', i), i, 'bench guest ' || i, CASE i % 3 WHEN 0 THEN 'HPUX' WHEN 1 THEN 'LINUX' ELSE 'WINDOWS' END,
       1 + i % 4, 1024 * (1 + i % 8), 'bench', 'bench' FROM n;
WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 7)
INSERT INTO guestResource (guestId, position, deviceType, adapterType, bus, device, target, mac, storageType, location)
SELECT g.id, k.j, CASE k.j WHEN 6 THEN 'dvd' WHEN 7 THEN 'network' ELSE 'disk' END,
       CASE k.j WHEN 7 THEN 'avio_lan' ELSE 'avio_stor' END, 0, CASE k.j WHEN 7 THEN 1 ELSE 0 END,
       CASE k.j WHEN 7 THEN NULL ELSE k.j END, CASE k.j WHEN 7 THEN printf('02%010x', g.id) END,
       CASE k.j WHEN 6 THEN 'file' WHEN 7 THEN 'vswitch' ELSE 'file' END,
       CASE k.j WHEN 6 THEN '/iso/hpux.iso' WHEN 7 THEN 'vsw1' ELSE '/hpvm/disks/' || g.name || '-' || k.j || '.img' END
FROM guest g, k;
COMMIT;"
    echo "$db"
}

bench_e() {
    echo "## (e) hpvmstatus over 10,000 guests x 8 resources vs sqlite3"
    local root="$work/e" db
    db="$(guest_registry "$root")"
    local table="SELECT '[Virtual Machines]'
UNION ALL SELECT 'Virtual Machine Name VM #  OS Type State     #VCPUs #Devs #Nets Memory  Runsysid'
UNION ALL SELECT '==================== ===== ======= ========= ====== ===== ===== ======= ========'
UNION ALL SELECT * FROM (SELECT printf('%-20s %5d %-7s %-9s %6d %5d %5d %7s %8s', g.name, g.vmNumber, coalesce(g.osType, 'UNKNOWN'),
  CASE g.runnable WHEN 1 THEN 'Off' ELSE 'Off (NR)' END, g.vcpus,
  (SELECT count(*) FROM guestResource r WHERE r.guestId = g.id AND r.deviceType != 'network'),
  (SELECT count(*) FROM guestResource r WHERE r.guestId = g.id AND r.deviceType = 'network'),
  CASE WHEN g.memoryMB % 1024 = 0 THEN (g.memoryMB / 1024) || ' GB' ELSE g.memoryMB || ' MB' END, '0')
  FROM guest g ORDER BY g.name);"
    HPVM_ROOT="$root" "$bin/hpvmstatus" > "$work/e-ours.txt"
    sqlite3 -readonly "$db" "$table" > "$work/e-sqlite.txt"
    cmp "$work/e-ours.txt" "$work/e-sqlite.txt"
    local extra=()
    [ -z "$before" ] || extra=(-n "before: hpvmstatus" "$before/hpvmstatus")
    HPVM_ROOT="$root" rounds "$work/e.csv" "${RUNS_E:-20}" hyperfine -N --warmup 2 \
        -n "hpvmstatus" -n "sqlite3 table" \
        "$bin/hpvmstatus" "sqlite3 -readonly $db \"$table\"" "${extra[@]}" >&2
    local ours theirs
    ours="$(mean "$work/e.csv" 0)"
    theirs="$(mean "$work/e.csv" 1)"
    echo "guests: $(sqlite3 "$db" 'SELECT count(*) FROM guest'), resources: $(sqlite3 "$db" 'SELECT count(*) FROM guestResource'), identical output: yes ($(wc -l < "$work/e-ours.txt") lines)"
    echo "hpvmstatus: $(ms "$ours")   sqlite3: $(ms "$theirs")   ratio: $(ratio "$ours" "$theirs")x (target <= 2x)$(before_figure "$work/e.csv")"
}

bench_f() {
    echo "## (f) hpvmcreate of one more guest (8 resources) into the 10,000-guest registry vs sqlite3"
    local root="$work/f" db copy
    db="$(guest_registry "$root")"
    mkdir -p "$root/hpvm/disks" "$root/iso" "$root/sys/class/net/vsw1/bridge"
    for j in 0 1 2 3 4 5; do : > "$root/hpvm/disks/new-$j.img"; done
    : > "$root/iso/new.iso"
    copy="$work/f-sqlite.sqlite"
    cp "$db" "$copy"
    local args=(-P newguest -c 2 -r 4G -O linux)
    for j in 0 1 2 3 4 5; do args+=(-a "disk:avio_stor::file:/hpvm/disks/new-$j.img"); done
    args+=(-a dvd:avio_stor::file:/iso/new.iso -a network:avio_lan::vswitch:vsw1)
    # The sqlite3 side writes what hpvmcreate writes: the guest, 8 resources, 8 device entries with
    # name, SHARE attribute, dependent and the storage each file occupies, and the audit rows, in one
    # BEGIN IMMEDIATE transaction.
    local sql="PRAGMA foreign_keys = ON; BEGIN IMMEDIATE;
INSERT INTO guest (name, vmNumber, osType, vcpus, memoryMB, createdAt, updatedAt)
  VALUES ('newguest', (SELECT max(vmNumber) + 1 FROM guest), 'LINUX', 2, 4096, strftime('%Y-%m-%dT%H:%M:%fZ'), strftime('%Y-%m-%dT%H:%M:%fZ'));
WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 7),
  r(j, loc, kind) AS (SELECT j, CASE j WHEN 6 THEN '/iso/new.iso' WHEN 7 THEN 'vsw1' ELSE '/hpvm/disks/new-' || j || '.img' END,
                             CASE j WHEN 7 THEN 'VSWITCH' ELSE 'FILE' END FROM k)
INSERT INTO device (type, name, devType, exist, identityKey, resolvedPath, createdAt, updatedAt)
  SELECT 'gdev', loc, kind, 1, 'path:' || loc, loc, 'now', 'now' FROM r;
INSERT INTO deviceName (deviceId, name, position) SELECT id, name, 0 FROM device WHERE createdAt = 'now';
INSERT INTO deviceAttribute (deviceId, name, value) SELECT id, 'SHARE', CASE devType WHEN 'VSWITCH' THEN 'YES' ELSE 'NO' END FROM device WHERE createdAt = 'now';
INSERT INTO dependent (deviceId, name) SELECT id, 'newguest' FROM device WHERE createdAt = 'now';
INSERT INTO deviceExtent (deviceId, role, unit, part) SELECT id, 'file', 'ino:0:' || id, 0 FROM device WHERE createdAt = 'now' AND devType = 'FILE';
INSERT INTO guestResource (guestId, position, deviceType, adapterType, bus, device, target, mac, storageType, location)
  SELECT (SELECT id FROM guest WHERE name = 'newguest'), d.id - (SELECT min(id) FROM device WHERE createdAt = 'now'),
         CASE d.devType WHEN 'VSWITCH' THEN 'network' ELSE 'disk' END, 'avio_stor', 0, 0, 0, NULL, 'file', d.name
  FROM device d WHERE createdAt = 'now';
$(for j in 0 1 2 3 4 5 6 7; do echo "INSERT INTO auditLog (id, at, user, command, action, object, change, prevHash, hash)
  SELECT coalesce(max(id), 0) + 1, strftime('%Y-%m-%dT%H:%M:%fZ'), 'root', 'sqlite3', 'attach',
         (SELECT name FROM device WHERE createdAt = 'now' ORDER BY id LIMIT 1 OFFSET $j), '{}',
         (SELECT hash FROM auditLog ORDER BY id DESC LIMIT 1), lower(hex(randomblob(32))) FROM auditLog;"; done)
UPDATE device SET createdAt = 'then' WHERE createdAt = 'now';
COMMIT;"
    local extra=()
    [ -z "$before" ] || extra=(-n "before: hpvmcreate"
        --prepare "sh -c '\"$bin/hpvmremove\" -Q -P newguest >/dev/null 2>&1; true'" "$before/hpvmcreate ${args[*]}")
    HPVM_ROOT="$root" rounds "$work/f.csv" "${RUNS_F:-40}" hyperfine -N --warmup 3 \
        -n "hpvmcreate" -n "sqlite3 inserts" \
        --prepare "sh -c '\"$bin/hpvmremove\" -Q -P newguest >/dev/null 2>&1; true'" \
        "$bin/hpvmcreate ${args[*]}" \
        --prepare "sqlite3 $copy \"PRAGMA foreign_keys = ON; DELETE FROM guest WHERE name = 'newguest'; DELETE FROM device WHERE createdAt = 'then';\"" \
        "sqlite3 $copy \"$sql\"" "${extra[@]}" >&2
    local ours theirs
    ours="$(mean "$work/f.csv" 0)"
    theirs="$(mean "$work/f.csv" 1)"
    echo "hpvmcreate: $(ms "$ours")   sqlite3: $(ms "$theirs")   ratio: $(ratio "$ours" "$theirs")x (target <= 2x)$(before_figure "$work/f.csv")"
}

# Two sealed hosts with 64 SAN LUNs each (the same WWIDs), for g and h.
migration_hosts() {
    if [ "$(id -u)" -ne 0 ]; then echo "(needs root for network namespaces; skipped)"; return 1; fi
    local a="$work/ga" b="$work/gb"
    "$bin/hpvm-demo-host" --san-disks 64 "$a" >/dev/null
    "$bin/hpvm-demo-host" --san-disks 64 "$b" >/dev/null
    mkdir -p "$a/sys/class/net/vsw1/bridge" "$b/sys/class/net/vsw1/bridge" "$a/hpvm/disks" "$b/hpvm/disks"
    . scripts/lib/two-hosts.sh
    two_hosts_up "$a" "$b"
    trap 'two_hosts_down; rm -rf "$work"' EXIT
}

bench_g() {
    echo "## (g) migrate a 64-disk guest between two namespaces vs ssh -i key target true"
    migration_hosts || return 0
    local args=(-P big -r 1G -a network:avio_lan::vswitch:vsw1)
    for i in $(seq 1 64); do args+=(-a "disk:avio_stor::disk:/dev/rdisk/disk$i"); done
    on A hpvmcreate "${args[@]}"
    local before after
    before="$(grep -c 'Accepted publickey' "$keys/sshd.log" || true)"
    on A hpvmmigrate -P big -h 198.51.100.2 >&2
    after="$(grep -c 'Accepted publickey' "$keys/sshd.log" || true)"
    echo "SSH connections for one migration: $((after - before))"
    # Each timed run starts from the same state: the guest runnable on A and absent on B.
    local reset="sh -c 'HPVM_ROOT=$hostB $bin/hpvmremove -Q -F -P big >/dev/null 2>&1; HPVM_ROOT=$hostA $bin/hpvmmodify -P big -x register_status=enabled >/dev/null 2>&1; true'"
    local ssh_cmd="ip netns exec $nsA ssh -i $keys/id_ed25519 -o UserKnownHostsFile=$keys/known_hosts -o BatchMode=yes root@198.51.100.2 true"
    hyperfine -N --warmup 1 --runs "${RUNS_G:-10}" --export-csv "$work/g.csv" -n "hpvmmigrate (64 disks)" -n "ssh true" \
        --prepare "$reset" \
        "env HPVM_ROOT=$hostA HPVM_SSH_IDENTITY=$keys/id_ed25519 HPVM_SSH_KNOWN_HOSTS=$keys/known_hosts HPVM_REMOTE_COMMAND=$bin/hpvmmigrate ip netns exec $nsA $bin/hpvmmigrate -P big -h 198.51.100.2" \
        --prepare "true" "$ssh_cmd" >&2
    local ours theirs
    ours="$(mean "$work/g.csv" 0)"
    theirs="$(mean "$work/g.csv" 1)"
    echo "hpvmmigrate (64 disks): $(ms "$ours")   ssh -i key target true: $(ms "$theirs")   ratio: $(ratio "$ours" "$theirs")x (target <= 3x)"
    two_hosts_down
    trap 'rm -rf "$work"' EXIT
}

bench_h() {
    echo "## (h) hpvmmigrate -C of a 1 GiB file vs scp (dense, and 10 % data)"
    migration_hosts || return 0
    local dense="$hostA/hpvm/disks/dense.img" sparse="$hostA/hpvm/disks/sparse.img"
    head -c $((1 << 30)) /dev/urandom > "$dense"
    truncate -s 1G "$sparse"
    for i in $(seq 0 9); do
        dd if=/dev/urandom of="$sparse" bs=1M count=10 seek=$((i * 100 + 7)) conv=notrunc status=none
    done
    echo "sparse file: $(du -k "$sparse" | cut -f1) KiB allocated of 1 GiB"
    for kind in dense sparse; do
        on A hpvmcreate -P "$kind" -r 1G -a "disk:avio_stor:0,0,0:file:/hpvm/disks/$kind.img"
    done
    local reset_dense="sh -c 'rm -f $hostB/hpvm/disks/dense.img; HPVM_ROOT=$hostB $bin/hpvmremove -Q -F -P dense >/dev/null 2>&1; HPVM_ROOT=$hostA $bin/hpvmmodify -P dense -x register_status=enabled >/dev/null 2>&1; true'"
    local reset_sparse="${reset_dense//dense/sparse}"
    local env="env HPVM_SSH_IDENTITY=$keys/id_ed25519 HPVM_SSH_KNOWN_HOSTS=$keys/known_hosts HPVM_REMOTE_COMMAND=$bin/hpvmmigrate HPVM_ROOT=$hostA"
    local scp_to="ip netns exec $nsA scp -q -i $keys/id_ed25519 -o UserKnownHostsFile=$keys/known_hosts -o BatchMode=yes"
    hyperfine -N --runs "${RUNS_H:-3}" --export-csv "$work/h.csv" \
        -n "hpvmmigrate -C dense" -n "scp dense" -n "hpvmmigrate -C sparse" -n "scp sparse" \
        --prepare "$reset_dense" "$env ip netns exec $nsA $bin/hpvmmigrate -q -P dense -h 198.51.100.2 -m disk:avio_stor:0,0,0:file:/hpvm/disks/dense.img -C" \
        --prepare "rm -f $hostB/scp-dense.img" "$scp_to $dense root@198.51.100.2:$hostB/scp-dense.img" \
        --prepare "$reset_sparse" "$env ip netns exec $nsA $bin/hpvmmigrate -q -P sparse -h 198.51.100.2 -m disk:avio_stor:0,0,0:file:/hpvm/disks/sparse.img -C" \
        --prepare "rm -f $hostB/scp-sparse.img" "$scp_to $sparse root@198.51.100.2:$hostB/scp-sparse.img" >&2
    cmp "$dense" "$hostB/hpvm/disks/dense.img" && cmp "$sparse" "$hostB/hpvm/disks/sparse.img" && echo "copies identical: yes"
    echo "allocated on the target: -C sparse $(du -k "$hostB/hpvm/disks/sparse.img" | cut -f1) KiB, scp sparse $(du -k "$hostB/scp-sparse.img" | cut -f1) KiB"
    local od os sd ss
    od="$(mean "$work/h.csv" 0)"; sd="$(mean "$work/h.csv" 1)"; os="$(mean "$work/h.csv" 2)"; ss="$(mean "$work/h.csv" 3)"
    echo "dense:  hpvmmigrate -C $(awk -v s="$od" 'BEGIN {printf "%.2f s (%.0f MiB/s)", s, 1024 / s}')   scp $(awk -v s="$sd" 'BEGIN {printf "%.2f s (%.0f MiB/s)", s, 1024 / s}')   throughput ratio: $(ratio "$sd" "$od")x (target >= 0.8x)"
    echo "sparse: hpvmmigrate -C $(awk -v s="$os" 'BEGIN {printf "%.2f s", s}')   scp $(awk -v s="$ss" 'BEGIN {printf "%.2f s", s}')   speed-up: $(ratio "$ss" "$os")x (target >= 5x)"
    two_hosts_down
    trap 'rm -rf "$work"' EXIT
}

bench_j() {
    echo "## (j) hpvmstart to QMP-ready vs a bare qemu-system-x86_64 with the same options (TCG, 64 MB)"
    local root="$work/j" bare="$work/j-bare"
    mkdir -p "$root/hpvm/disks" "$bare"
    truncate -s 64M "$root/hpvm/disks/j1.img"
    HPVM_ROOT="$root" "$bin/hpvmcreate" -P j1 -r 64M -a disk:avio_stor::file:/hpvm/disks/j1.img
    cc -O2 -o "$work/qmp-ready" bench/qmp-ready.c
    # One start gives the exact options hpvmstart hands QEMU; the bare side runs them as they are.
    HPVM_ROOT="$root" HPVM_ACCEL=tcg "$bin/hpvmstart" -P j1
    cp "/proc/$(cat "$root/var/opt/hpvm/run/j1/pid")/cmdline" "$work/j.args"
    echo "QEMU's options: $(tr '\0' ' ' < "$work/j.args")"
    # Runs alternate (hpvmstart, bare, hpvmstart, …) so that a load that comes and goes on this shared
    # machine weighs on both sides alike; each is timed by bash around the one process it runs, after
    # both QEMUs were stopped (hpvmstop -F, by the pidfile lock's holder; QMP quit for the bare one).
    local runs="${RUNS_J:-40}" i t0 t1
    stop() { HPVM_ROOT="$root" "$bin/hpvmstop" -QF -P j1 >/dev/null 2>&1 || true; (cd "$bare" && "$work/qmp-ready" quit); }
    : > "$work/j.times"
    for i in $(seq 0 "$runs"); do
        stop
        t0=$EPOCHREALTIME
        HPVM_ROOT="$root" HPVM_ACCEL=tcg "$bin/hpvmstart" -P j1
        t1=$EPOCHREALTIME
        stop
        local t2=$EPOCHREALTIME
        (cd "$bare" && exec "$work/qmp-ready" start "$work/j.args")
        local t3=$EPOCHREALTIME
        # the first pair warms the caches
        [ "$i" -eq 0 ] || echo "$t0 $t1 $t2 $t3" >> "$work/j.times"
    done
    stop
    awk '
        { a[NR] = ($2 - $1) * 1000; b[NR] = ($4 - $3) * 1000; r[NR] = a[NR] / b[NR]; sa += a[NR]; sb += b[NR] }
        function median(x, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && x[j - 1] > x[j]; j--) { t = x[j]; x[j] = x[j - 1]; x[j - 1] = t }
            return n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
        }
        END {
            n = NR
            printf "runs: %d pairs, alternating\n", n
            printf "mean:   hpvmstart %.2f ms   bare qemu %.2f ms   ratio %.2fx\n", sa / n, sb / n, sa / sb
            printf "median: hpvmstart %.2f ms   bare qemu %.2f ms   ratio %.2fx\n", median(a, n), median(b, n), median(a, n) / median(b, n)
            printf "median of the pairs'"'"' ratios: %.2fx (target <= 1.2x)\n", median(r, n)
        }' "$work/j.times"
}

machine
for b in "${which[@]}"; do "bench_$b"; done
