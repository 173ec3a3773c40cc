import Foundation
import HPVMTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 8, "How to test it": migrations of a guest with several SAN disks and two `-C` copies (a
/// dense file, and a sparse one into a destination pre-filled with 0xFF), each hit by one fault
/// at a random moment; then recovery on one host, a check of both registries by an oracle that
/// reads them with the `sqlite3` shell (``FaultOracle``, no code shared with `Migration` or
/// `Registry`), recovery on the other host, and a retry.
///
/// The faults: `kill -9` of the source's `hpvmmigrate` (its own pid, never a wrapping shell), of
/// the target's agent (`hpvmmigrate --target`, found by its pid inside the target's namespace), a
/// link cut (`ip link set … down` inside one namespace), the target's registry held by another
/// writer, and a `--recover` started on either host while the migration runs.
///
/// `HPVM_FAULT_RUNS` (default 20) and `HPVM_FAULT_SEED` (default random, printed) choose the runs;
/// each run prints its own seed, and `HPVM_FAULT_SEED=<that seed> HPVM_FAULT_RUNS=1` replays its
/// choices (the timing of the machine is not replayed). `bench/fault-soak.sh` runs more.
@Suite(.requiresRootAndSSHD, .serialized) struct FaultSuiteTests {
    @Test func randomFaultsLeaveTheGuestRunnableOnExactlyOneHostWithItsDataAndARetryThatWorks() throws {
        let environment = ProcessInfo.processInfo.environment
        let runs = environment["HPVM_FAULT_RUNS"].flatMap { Int($0) } ?? 24
        let seed = environment["HPVM_FAULT_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64.max)
        say("fault suite: HPVM_FAULT_SEED=\(seed) HPVM_FAULT_RUNS=\(runs)")
        let suite = try FaultSuite(seed: seed)
        defer { suite.close() }
        let counts = try suite.run(runs)
        say(counts.summary)
        let replay = "replay the whole suite with HPVM_FAULT_SEED=\(seed) HPVM_FAULT_RUNS=\(runs)"
        #expect(counts.runs == runs)
        #expect(counts.doubleRunnable == 0, "runnable on both hosts: \(counts.failures(.doubleRunnable)); \(replay)")
        #expect(counts.noneRunnable == 0, "runnable on neither host: \(counts.failures(.noneRunnable)); \(replay)")
        #expect(counts.orphans == 0, "orphans: \(counts.failures(.orphan)); \(replay)")
        #expect(counts.dataMismatches == 0, "data mismatches: \(counts.failures(.dataMismatch)); \(replay)")
        #expect(counts.failedRetries == 0, "failed retries: \(counts.failures(.failedRetry)); \(replay)")
    }
}

/// The oracle finds what it is there to find: each kind of damage, made by hand with `sqlite3`
/// after a clean migration, is reported.
@Suite(.requiresRootAndSSHD, .serialized) struct FaultOracleSelfTests {
    @Test func theOracleReportsEachKindOfDamage() throws {
        let suite = try FaultSuite(seed: 1)
        defer { suite.close() }
        var random = SplitMix64(seed: 1)
        try suite.setUp("g1", FaultPlan(seed: 1, window: 0), random: &random)
        let moved = try suite.command("A", "hpvmmigrate", suite.migrationArguments("g1"))
        try #require(moved.status == 0, "\(moved.stderr)")
        func kinds() throws -> [FaultCounts.Kind] {
            var found: [FaultCounts.Kind] = []
            try suite.check("g1", after: "a clean migration") { kind, _ in found.append(kind) }
            return found
        }
        func sql(_ host: Character, _ statement: String) throws {
            let result = try ChildProcess.run("/usr/bin/sqlite3", [suite.oracle.registry(host), statement], environment: [:])
            try #require(result.status == 0, "\(result.stderr)")
        }
        // A clean migration: nothing to report
        #expect(try kinds() == [])
        // Runnable on both
        try sql("A", "UPDATE guest SET runnable = 1 WHERE name = 'g1'")
        #expect(try kinds().contains(.doubleRunnable))
        // Runnable on neither
        try sql("A", "UPDATE guest SET runnable = 0 WHERE name = 'g1'")
        try sql("B", "UPDATE guest SET runnable = 0 WHERE name = 'g1'")
        #expect(try kinds() == [.noneRunnable])
        try sql("B", "UPDATE guest SET runnable = 1 WHERE name = 'g1'")
        // A lock no journal explains, and a claim for a guest that is not there
        try sql("B", "UPDATE guest SET migrationLock = 'gone' WHERE name = 'g1'")
        try sql("A", "INSERT INTO dependent (deviceId, name, kind) SELECT id, 'ghost', 'guest' FROM device LIMIT 1")
        #expect(try kinds() == [.orphan, .orphan])
        try sql("B", "UPDATE guest SET migrationLock = NULL WHERE name = 'g1'")
        try sql("A", "DELETE FROM dependent WHERE name = 'ghost'")
        // A copy that differs from its source by one byte
        let copy = suite.hosts.rootB.path + "/hpvm/disks/sparse-copy.img"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: copy))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0]))
        try handle.close()
        #expect(try kinds() == [.dataMismatch])
        // Runnable on A while B holds a copy
        try sql("A", "UPDATE guest SET runnable = 1 WHERE name = 'g1'")
        try sql("B", "UPDATE guest SET runnable = 0 WHERE name = 'g1'")
        #expect(try kinds().contains(.orphan))
    }
}

/// A line on standard output at once (a suite that is stopped keeps what it said).
func say(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(1, $0, strlen($0)) }
}

/// A small seeded generator (SplitMix64), so a run's choices replay from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One fault, at one moment of one migration.
enum Fault: String, CaseIterable, Sendable {
    case killSource = "kill -9 of the source hpvmmigrate"
    case killTarget = "kill -9 of the target's agent"
    case cutLink = "link cut"
    case holdTargetRegistry = "target registry held"
    case concurrentRecover = "concurrent --recover"
}

/// What one run chose, all from its seed.
struct FaultPlan: CustomStringConvertible {
    let seed: UInt64
    let fault: Fault
    /// Milliseconds after the migration started.
    let delay: Int
    /// The host whose namespace the fault acts in (link cut, --recover); B for the others.
    let side: Character
    /// How long the target's registry is held, in milliseconds.
    let hold: Int
    /// The host that recovers first.
    let recoverFirst: Character
    let denseBytes: Int
    let sparseBytes: Int
    /// (offset, length, byte) of each data region of the sparse source.
    let regions: [(Int, Int, UInt8)]
    /// The size of the 0xFF the sparse copy's destination holds before the migration.
    let prefillBytes: Int

    /// The fault a run's seed chooses: its low three bits.
    static func fault(for seed: UInt64) -> Fault { Fault.allCases[Int((seed & 7) % UInt64(Fault.allCases.count))] }

    init(seed: UInt64, window: Int) {
        var random = SplitMix64(seed: seed)
        self.seed = seed
        self.fault = Self.fault(for: seed)
        delay = Int.random(in: 0...window, using: &random)
        side = Bool.random(using: &random) ? "A" : "B"
        hold = Int.random(in: 500...4000, using: &random)
        recoverFirst = Bool.random(using: &random) ? "A" : "B"
        denseBytes = Int.random(in: (1 << 20)...(3 << 20), using: &random)
        sparseBytes = Int.random(in: (8 << 20)...(24 << 20), using: &random)
        var regions: [(Int, Int, UInt8)] = []
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let length = Int.random(in: 4096...(1 << 20), using: &random)
            let offset = Int.random(in: 0...(sparseBytes - length), using: &random) & ~4095
            regions.append((offset, length, UInt8.random(in: 1...0xFE, using: &random)))
        }
        self.regions = regions
        prefillBytes = Int.random(in: (4 << 20)...(32 << 20), using: &random)
    }

    var description: String {
        let place = fault == .cutLink || fault == .concurrentRecover ? " on \(side)" : ""
        let held = fault == .holdTargetRegistry ? " for \(hold) ms" : ""
        return "seed=\(seed) \(fault.rawValue)\(place)\(held) at \(delay) ms, recovery on \(recoverFirst) first"
    }
}

/// The suite's tallies; each counts runs, not findings.
struct FaultCounts {
    enum Kind: String { case doubleRunnable, noneRunnable, orphan, dataMismatch, failedRetry }
    var runs = 0
    var midRun = 0
    var retries = 0
    var lingering = 0
    var byFault: [Fault: Int] = [:]
    var findings: [(run: Int, seed: UInt64, kind: Kind, detail: String)] = []
    var seconds = 0.0

    func count(_ kind: Kind) -> Int { Set(findings.filter { $0.kind == kind }.map(\.run)).count }
    var doubleRunnable: Int { count(.doubleRunnable) }
    var noneRunnable: Int { count(.noneRunnable) }
    var orphans: Int { count(.orphan) }
    var dataMismatches: Int { count(.dataMismatch) }
    var failedRetries: Int { count(.failedRetry) }

    func failures(_ kind: Kind) -> String {
        findings.filter { $0.kind == kind }.map { "run \($0.run) (replay: HPVM_FAULT_SEED=\($0.seed) HPVM_FAULT_RUNS=1): \($0.detail)" }
            .joined(separator: "; ")
    }

    var summary: String {
        let faults = Fault.allCases.map { "\($0.rawValue) \(byFault[$0] ?? 0)" }.joined(separator: ", ")
        return """
            fault suite: runs \(runs), faults mid-run \(midRun), double-runnable \(doubleRunnable), none-runnable \(noneRunnable), \
            orphans \(orphans), data mismatches \(dataMismatches), failed retries \(failedRetries) \
            (retries \(retries); agents left running and stopped by the suite \(lingering); \(faults); \
            \(String(format: "%.1f", seconds)) s)
            """
    }
}

/// The oracle: both registries read with the `sqlite3` shell, the files compared byte for byte.
/// It knows the schema's tables and columns, and nothing of the code that writes them.
struct FaultOracle {
    let hosts: TwoHosts

    func registry(_ host: Character) -> String {
        (host == "A" ? hosts.rootA.path : hosts.rootB.path) + "/var/opt/hpvm/common/hpvm_mgmtdb.sqlite"
    }

    /// Rows of a query, fields split at `|`; no rows when the registry does not exist.
    func rows(_ host: Character, _ sql: String) throws -> [[String]] {
        guard FileManager.default.fileExists(atPath: registry(host)) else { return [] }
        let result = try ChildProcess.run("/usr/bin/sqlite3", ["-batch", "-cmd", ".timeout 20000", registry(host), sql], environment: [:])
        guard result.status == 0 else { throw TestFailure("sqlite3 on \(host): \(result.stderr)") }
        return result.stdout.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
    }

    /// The guest's `runnable` on a host: nil when the host has no such guest.
    func runnable(_ host: Character, _ guest: String) throws -> Bool? {
        try rows(host, "SELECT runnable FROM guest WHERE name = '\(guest)'").first.map { $0[0] == "1" }
    }

    /// Guests that carry a migration lock.
    func locked(_ host: Character) throws -> [String] {
        try rows(host, "SELECT name || ' locked by ' || migrationLock FROM guest WHERE migrationLock IS NOT NULL").map { $0[0] }
    }

    /// Migrations whose journal on this host has not ended (its last row per role is neither
    /// `done` nor `aborted`, nor a target's `committed`), as "id role phase".
    func unfinished(_ host: Character) throws -> [String] {
        try rows(
            host,
            """
            SELECT migrationId, role, phase FROM migrationJournal j
            WHERE id = (SELECT max(id) FROM migrationJournal k WHERE k.migrationId = j.migrationId AND k.role = j.role)
            """
        ).filter { row in !(row[2] == "done" || row[2] == "aborted" || (row[1] == "target" && row[2] == "committed")) }
            .map { $0.joined(separator: " ") }
    }

    /// Locks that no unfinished migration on the same host explains: nothing will ever release them.
    func strayLocks(_ host: Character) throws -> [String] {
        let open = Set(try unfinished(host).map { String($0.split(separator: " ")[0]) })
        return try rows(host, "SELECT name, migrationLock FROM guest WHERE migrationLock IS NOT NULL")
            .filter { !open.contains($0[1]) }.map { "\($0[0]) locked by \($0[1]), a migration this host's journal has ended" }
    }

    /// Device entries that name, as a dependent guest, a guest this registry does not hold.
    func danglingDependents(_ host: Character) throws -> [String] {
        try rows(
            host,
            """
            SELECT d.name, p.name FROM dependent p JOIN device d ON d.id = p.deviceId
            WHERE p.kind = 'guest' AND p.name NOT IN (SELECT name FROM guest)
            """
        ).map { "\($0[0]) claimed for \($0[1]), which is not a guest there" }
    }

    /// Whether a path is registered on a host: a device entry's name or a guest's backing store.
    func registered(_ host: Character, _ path: String) throws -> Bool {
        let count = try rows(
            host,
            "SELECT (SELECT count(*) FROM deviceName WHERE name = '\(path)') + (SELECT count(*) FROM guestResource WHERE location = '\(path)')")
        return (count.first.flatMap { Int($0[0]) } ?? 0) > 0
    }

    /// Whether two files hold the same bytes (a missing file holds none).
    func identical(_ a: String, _ b: String) -> Bool {
        guard let left = FileManager.default.contents(atPath: a), let right = FileManager.default.contents(atPath: b) else { return false }
        return left == right
    }
}

/// The two hosts, an sshd on each (so recovery runs on either), and the runs.
final class FaultSuite {
    let hosts: TwoHosts
    let oracle: FaultOracle
    var sshdA: pid_t
    let seed: UInt64
    let logs: String
    /// The migration's length without a fault, measured once: faults land in [0, window] ms.
    var window = 1000
    static let copies = [
        ("disk:avio_stor:0,1,0:file:/hpvm/disks/dense.img", "disk:avio_stor:0,1,0:file:/hpvm/disks/dense-copy.img"),
        ("disk:avio_stor:0,1,1:file:/hpvm/disks/sparse.img", "disk:avio_stor:0,1,1:file:/hpvm/disks/sparse-copy.img"),
    ]

    init(seed: UInt64) throws {
        self.seed = seed
        hosts = try TwoHosts()
        oracle = FaultOracle(hosts: hosts)
        sshdA = try hosts.startSSHDOnA()
        logs = hosts.scratch + "/fault-logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    }

    func close() {
        stopLeftovers()
        TwoHosts.stop(sshd: sshdA)
    }

    // MARK: - Processes

    /// The environment of an hpvm command on a host.
    func environment(_ host: Character, _ extra: [String: String] = [:]) -> [String: String] {
        var env = [
            "HPVM_ROOT": host == "A" ? hosts.rootA.path : hosts.rootB.path, "HPVM_SSH_IDENTITY": hosts.scratch + "/id_ed25519",
            "HPVM_SSH_KNOWN_HOSTS": hosts.scratch + "/known_hosts", "HPVM_REMOTE_COMMAND": TwoHosts.bin + "/hpvmmigrate",
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": hosts.scratch,
        ]
        env.merge(extra) { $1 }
        return env
    }

    /// Starts an hpvm command in a host's namespace (`ip netns exec` execs it: the pid is the
    /// command's own), its output appended to `log`.
    func start(_ host: Character, _ tool: String, _ arguments: [String], log: String, environment extra: [String: String] = [:]) throws -> pid_t {
        try ChildProcess.start(
            "/usr/sbin/ip", ["netns", "exec", host == "A" ? hosts.nsA : hosts.nsB, TwoHosts.bin + "/" + tool] + arguments,
            environment: environment(host, extra), input: nil, stdout: log, stderr: log)
    }

    /// Waits for a child of this test; its exit status (128 + signal when killed).
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Whether a child of this test still runs (it is reaped if it ended).
    static func running(_ pid: pid_t, status: inout Int32?) -> Bool {
        guard status == nil else { return false }
        var raw: Int32 = 0
        let reaped = waitpid(pid, &raw, WNOHANG)
        if reaped == 0 { return true }
        status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        return false
    }

    static func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8)).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    static func inode(_ path: String) -> UInt64? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_ino) : nil
    }

    /// Live `hpvmmigrate` processes inside a host's namespace (found by the namespace's inode, so
    /// never another test's), optionally only the agents (`--target`).
    func migrateProcesses(in host: Character, agentsOnly: Bool) -> [pid_t] {
        guard let namespace = Self.inode("/run/netns/" + (host == "A" ? hosts.nsA : hosts.nsB)),
            let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc")
        else { return [] }
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry), Self.read("/proc/\(pid)/comm") == "hpvmmigrate",
                Self.inode("/proc/\(pid)/ns/net") == namespace,
                let stat = Self.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")"),
                stat[stat.index(close, offsetBy: 2)] != "Z"
            else { return nil }
            if agentsOnly {
                let arguments = (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()).split(separator: 0)
                guard arguments.contains(where: { String(decoding: $0, as: UTF8.self) == "--target" }) else { return nil }
            }
            return pid
        }
    }

    /// Waits (up to 20 s) for every hpvmmigrate in both namespaces to end; stops, by its pid, any
    /// that does not, and says how many that was.
    @discardableResult
    func stopLeftovers() -> Int {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if migrateProcesses(in: "A", agentsOnly: false).isEmpty && migrateProcesses(in: "B", agentsOnly: false).isEmpty { return 0 }
            usleep(20_000)
        }
        let left = migrateProcesses(in: "A", agentsOnly: false) + migrateProcesses(in: "B", agentsOnly: false)
        for pid in left { kill(pid, SIGKILL) }
        return left.count
    }

    func link(_ host: Character, up: Bool) throws {
        try hosts.run(
            "/usr/sbin/ip", "-n", host == "A" ? hosts.nsA : hosts.nsB, "link", "set", host == "A" ? "va-\(hosts.tag)" : "vb-\(hosts.tag)",
            up ? "up" : "down")
    }

    /// The link is back when each host can open a TCP connection to the other's sshd again: the
    /// neighbour entries the cut left failed are flushed, then both ways are tried (up to 20 s).
    func waitForTheLink() throws {
        for (ns, device) in [(hosts.nsA, "va-\(hosts.tag)"), (hosts.nsB, "vb-\(hosts.tag)")] {
            try hosts.run("/usr/sbin/ip", "-n", ns, "neigh", "flush", "dev", device)
        }
        let deadline = Date().addingTimeInterval(20)
        for (ns, address) in [(hosts.nsA, hosts.addressB), (hosts.nsB, TwoHosts.addressA)] {
            while true {
                let probe = try ChildProcess.run(
                    "/usr/bin/timeout", ["2", "/usr/sbin/ip", "netns", "exec", ns, "/bin/bash", "-c", "exec 3<>/dev/tcp/\(address)/22"],
                    environment: ["PATH": "/usr/bin:/bin"])
                if probe.status == 0 { break }
                guard Date() < deadline else { throw TestFailure("the link between the hosts did not come back: \(probe.stderr)") }
                usleep(100_000)
            }
        }
    }

    // MARK: - One run

    func command(_ host: Character, _ tool: String, _ arguments: [String], environment extra: [String: String] = [:]) throws -> ChildProcess.Result {
        try ChildProcess.run(
            "/usr/sbin/ip", ["netns", "exec", host == "A" ? hosts.nsA : hosts.nsB, TwoHosts.bin + "/" + tool] + arguments,
            environment: environment(host, extra))
    }

    /// Fresh registries on both hosts, the guest on A with three SAN disks, two files and a
    /// network, the files written, and the sparse copy's destination on B full of 0xFF.
    func setUp(_ guest: String, _ plan: FaultPlan, random: inout SplitMix64) throws {
        for root in [hosts.rootA.path, hosts.rootB.path] {
            let folder = root + "/var/opt/hpvm/common"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            where name.hasPrefix("hpvm_mgmtdb.sqlite") || name.hasPrefix("migrate.") {
                try FileManager.default.removeItem(atPath: folder + "/" + name)
            }
        }
        var dense = [UInt8](repeating: 0, count: plan.denseBytes)
        dense.withUnsafeMutableBytes { bytes in
            for index in stride(from: 0, to: bytes.count - 7, by: 8) { bytes.storeBytes(of: random.next(), toByteOffset: index, as: UInt64.self) }
        }
        try Data(dense).write(to: URL(fileURLWithPath: hosts.rootA.path + "/hpvm/disks/dense.img"))
        let sparse = hosts.rootA.path + "/hpvm/disks/sparse.img"
        let fd = open(sparse, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw TestFailure("cannot write \(sparse)") }
        ftruncate(fd, off_t(plan.sparseBytes))
        for (offset, length, byte) in plan.regions {
            let block = [UInt8](repeating: byte, count: length)
            _ = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, length, off_t(offset)) }
        }
        Glibc.close(fd)
        try? FileManager.default.removeItem(atPath: hosts.rootB.path + "/hpvm/disks/dense-copy.img")
        try Data(repeating: 0xFF, count: plan.prefillBytes).write(to: URL(fileURLWithPath: hosts.rootB.path + "/hpvm/disks/sparse-copy.img"))
        let made = try command(
            "A", "hpvmcreate",
            ["-P", guest, "-r", "1G", "-a", "disk:avio_stor:0,0,0:disk:/dev/rdisk/disk1", "-a", "disk:avio_stor:0,0,1:disk:/dev/rdisk/disk2",
             "-a", "disk:avio_stor:0,0,2:disk:/dev/rdisk/disk3", "-a", Self.copies[0].0, "-a", Self.copies[1].0,
             "-a", "network:avio_lan::vswitch:vsw1"])
        guard made.status == 0 else { throw TestFailure("hpvmcreate on A: \(made.stderr)") }
        // B's registry exists before the migration (the held-registry fault holds it).
        let restricted = try command("B", "hpvmdevmgmt", ["-a", "rdev:/dev/rdisk/disk4"])
        guard restricted.status == 0 else { throw TestFailure("hpvmdevmgmt on B: \(restricted.stderr)") }
    }

    func migrationArguments(_ guest: String) -> [String] {
        ["-P", guest, "-m", Self.copies[0].1, "-m", Self.copies[1].1, "-C", "-h", hosts.addressB]
    }

    /// A migration without a fault, timed: the window faults are drawn from.
    func calibrate() throws {
        if let fixed = ProcessInfo.processInfo.environment["HPVM_FAULT_WINDOW"].flatMap({ Int($0) }) {
            window = fixed
            return
        }
        var random = SplitMix64(seed: seed)
        let plan = FaultPlan(seed: seed, window: 0)
        try setUp("calibration", plan, random: &random)
        let started = Date()
        let result = try command("A", "hpvmmigrate", migrationArguments("calibration"))
        guard result.status == 0 else { throw TestFailure("a migration without a fault failed: \(result.stderr)") }
        window = max(300, Int(Date().timeIntervalSince(started) * 1100))
        stopLeftovers()
    }

    /// Runs `count` migrations, one fault each.
    func run(_ count: Int) throws -> FaultCounts {
        let began = Date()
        try calibrate()
        say("fault suite: a migration without a fault takes \(window * 10 / 11) ms; faults land in 0-\(window) ms")
        var counts = FaultCounts()
        var chooser = SplitMix64(seed: seed)
        var deck: [Fault] = []
        for index in 0..<count {
            // Each fault in turn, in an order drawn from the seed (a run's seed carries its fault);
            // a single run uses the seed itself, so one run of a suite replays alone.
            if deck.isEmpty { deck = Fault.allCases.shuffled(using: &chooser) }
            let fault = UInt64(Fault.allCases.firstIndex(of: deck.removeFirst())!)
            let runSeed = count == 1 ? seed : (chooser.next() & ~7) | fault
            try runOne(index, FaultPlan(seed: runSeed, window: window), &counts)
        }
        counts.seconds = Date().timeIntervalSince(began)
        return counts
    }

    func runOne(_ index: Int, _ plan: FaultPlan, _ counts: inout FaultCounts) throws {
        let guest = "f\(index)"
        let shown = plan.description
        func finding(_ kind: FaultCounts.Kind, _ detail: String) {
            counts.findings.append((index, plan.seed, kind, detail))
            say("fault suite: run \(index): \(kind.rawValue): \(detail)")
        }
        let started = Date()
        var random = SplitMix64(seed: plan.seed ^ 0x5EED)
        try setUp(guest, plan, random: &random)
        let log = "\(logs)/run\(index)"
        // The migration, with a short deadline so a cut link costs seconds, not minutes.
        let source = try start("A", "hpvmmigrate", migrationArguments(guest), log: log + ".source", environment: ["HPVM_MIGRATE_TIMEOUT": "2"])
        let t0 = Date()
        var sourceStatus: Int32?
        func elapsed() -> Int { Int(Date().timeIntervalSince(t0) * 1000) }
        func sleepUntil(_ ms: Int) { while elapsed() < ms { usleep(1000) } }
        var midRun = false
        var holder: (pid: pid_t, input: Int32)?
        var recoverer: pid_t?
        var cut: Character?
        switch plan.fault {
        case .killSource:
            // The pid is hpvmmigrate's own once ip has exec'd it.
            while Self.read("/proc/\(source)/comm") != "hpvmmigrate" && Self.running(source, status: &sourceStatus) { usleep(500) }
            sleepUntil(plan.delay)
            if Self.running(source, status: &sourceStatus) {
                kill(source, SIGKILL)
                midRun = true
            }
        case .killTarget:
            sleepUntil(plan.delay)
            var agents: [pid_t] = []
            while agents.isEmpty && Self.running(source, status: &sourceStatus) {
                agents = migrateProcesses(in: "B", agentsOnly: true)
                if agents.isEmpty { usleep(1000) }
            }
            if !agents.isEmpty && Self.running(source, status: &sourceStatus) {
                for pid in agents { kill(pid, SIGKILL) }
                midRun = true
            }
        case .cutLink:
            sleepUntil(plan.delay)
            midRun = Self.running(source, status: &sourceStatus)
            try link(plan.side, up: false)
            cut = plan.side
        case .holdTargetRegistry:
            sleepUntil(plan.delay)
            var pipeEnds: [Int32] = [0, 0]
            // Close-on-exec, so the holder does not inherit its own input's write end (it would never see the end).
            guard pipe(&pipeEnds) == 0 else { throw TestFailure("pipe: \(errno)") }
            _ = fcntl(pipeEnds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(pipeEnds[1], F_SETFD, FD_CLOEXEC)
            let pid = try ChildProcess.start(
                "/usr/bin/sqlite3", ["-batch", "-cmd", ".timeout 20000", oracle.registry("B")], environment: [:], input: pipeEnds[0],
                stdout: log + ".holder", stderr: log + ".holder")
            Glibc.close(pipeEnds[0])
            _ = "BEGIN IMMEDIATE;\n".withCString { write(pipeEnds[1], $0, strlen($0)) }
            midRun = Self.running(source, status: &sourceStatus)
            holder = (pid, pipeEnds[1])
        case .concurrentRecover:
            sleepUntil(plan.delay)
            midRun = Self.running(source, status: &sourceStatus)
            recoverer = try start(plan.side, "hpvmmigrate", ["--recover"], log: log + ".recover-concurrent")
        }
        if let holder {
            // The hold lasts its time, then the holder commits and ends.
            if midRun { sleepUntil(plan.delay + plan.hold) }
            _ = "COMMIT;\n".withCString { write(holder.input, $0, strlen($0)) }
            Glibc.close(holder.input)
            var held: Int32?
            let ending = Date().addingTimeInterval(10)
            while Self.running(holder.pid, status: &held) && Date() < ending { usleep(5000) }
            if held == nil {
                kill(holder.pid, SIGKILL)
                _ = Self.wait(holder.pid)
            }
        }
        // The migration ends by itself (its deadline bounds every wait).
        while Self.running(source, status: &sourceStatus) && elapsed() < 120_000 { usleep(5000) }
        if sourceStatus == nil {
            kill(source, SIGKILL)
            sourceStatus = Self.wait(source)
            finding(.orphan, "the migration was still running after 120 s")
        }
        if let recoverer { _ = Self.wait(recoverer) }
        if midRun { counts.midRun += 1 }
        counts.byFault[plan.fault, default: 0] += 1
        // Never runnable on both, even before any recovery.
        if try oracle.runnable("A", guest) == true && oracle.runnable("B", guest) == true {
            finding(.doubleRunnable, "runnable on both hosts after the fault, before recovery")
        }
        if let cut {
            try link(cut, up: true)
            try waitForTheLink()
        }
        counts.lingering += stopLeftovers()

        // Recovery on one host, then the oracle.
        let first = try command(plan.recoverFirst, "hpvmmigrate", ["--recover"])
        try check(guest, after: "recovery on \(plan.recoverFirst)", finding)
        // Recovery on the other host closes what is left there; then nothing may be left anywhere.
        let other: Character = plan.recoverFirst == "A" ? "B" : "A"
        let second = try command(other, "hpvmmigrate", ["--recover"])
        try check(guest, after: "recovery on both hosts", finding)
        for host: Character in ["A", "B"] {
            let open = try oracle.unfinished(host) + oracle.locked(host)
            if !open.isEmpty {
                finding(.orphan, "after recovery on both hosts, \(host) still holds \(open.joined(separator: ", ")) (recovery said: \(first.stdout)\(first.stderr) / \(second.stdout)\(second.stderr))")
            }
        }
        // The retry: a guest still on A migrates, and ends on B alone, with its data.
        var outcome = "moved"
        if try oracle.runnable("A", guest) == true {
            counts.retries += 1
            let retry = try command("A", "hpvmmigrate", migrationArguments(guest))
            outcome = retry.status == 0 ? "retried" : "retry failed"
            if retry.status != 0 { finding(.failedRetry, "the retry failed: \(retry.stderr)") }
        }
        let (a, b) = (try oracle.runnable("A", guest), try oracle.runnable("B", guest))
        if a == false && b == true {
            try check(guest, after: "the retry", finding)
            for host: Character in ["A", "B"] {
                let open = try oracle.unfinished(host) + oracle.locked(host)
                if !open.isEmpty { finding(.orphan, "after the retry, \(host) holds \(open.joined(separator: ", "))") }
            }
        } else if outcome == "retried" {
            finding(.failedRetry, "the retry succeeded, yet the guest is runnable on A: \(String(describing: a)), on B: \(String(describing: b))")
        }
        counts.lingering += stopLeftovers()
        counts.runs += 1
        say(
            "fault suite: run \(index) \(shown): \(midRun ? "mid-run" : "after the end"), source exit \(sourceStatus ?? -1), \(outcome) "
                + "(\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
    }

    /// The invariant and the orphans, after a recovery.
    func check(_ guest: String, after moment: String, _ finding: (FaultCounts.Kind, String) -> Void) throws {
        let a = try oracle.runnable("A", guest)
        let b = try oracle.runnable("B", guest)
        if a == true && b == true { finding(.doubleRunnable, "runnable on both hosts after \(moment)") }
        if a != true && b != true { finding(.noneRunnable, "runnable on neither host after \(moment) (A: \(String(describing: a)), B: \(String(describing: b)))") }
        // A guest that stays on A leaves nothing on B; one that moved keeps its Not Runnable copy on A.
        if a == true && b != nil { finding(.orphan, "B holds a copy of \(guest) (runnable: \(b!)) after \(moment), though it stays on A") }
        for host: Character in ["A", "B"] {
            for stray in try oracle.strayLocks(host) + oracle.danglingDependents(host) {
                finding(.orphan, "\(host) after \(moment): \(stray)")
            }
        }
        // Each copy's destination is the source's exact image, or not registered on B.
        for (source, target) in Self.copies {
            let from = String(source.split(separator: ":").last!)
            let to = String(target.split(separator: ":").last!)
            if try oracle.registered("B", to), !oracle.identical(hosts.rootA.path + from, hosts.rootB.path + to) {
                finding(.dataMismatch, "\(to) is registered on B after \(moment) but differs from \(from) on A")
            }
        }
    }
}
