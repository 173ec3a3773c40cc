import Foundation
import HPVMTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 10, online migration (`hpvmmigrate -o`): a running guest moves between the two sealed
/// hosts over one SSH connection, TCG, firmware-only guests. What runs where is read by
/// ``LiveOracle``, apart from the code under test: QEMU processes found in `/proc` by their
/// working folder, asked over their own QMP socket.
@Suite(.requiresRootAndSSHD, .serialized) struct OnlineMigrationTests {
    @Test func aRunningGuestMovesOnlineAndRunsOnlyOnTheTarget() throws {
        // Given a running guest on A, on a SAN LUN and a vswitch both hosts have
        let rig = try OnlineRig()
        defer { rig.close() }
        try rig.setUpRunningGuest("g1")
        let before = try #require(rig.oracle.qemus("A", "g1").first)
        #expect(before.status == "running")
        // When it migrates online
        let moved = try rig.command("A", "hpvmmigrate", ["-o", "-P", "g1", "-h", rig.suite.hosts.addressB])
        // Then it runs on B, and on A its QEMU is gone and it is Not Runnable
        #expect(moved.status == 0, "\(moved.stderr)")
        #expect(moved.stdout.hasSuffix("hpvmmigrate: Guest migrated successfully.\n"))
        #expect(moved.stdout.contains("hpvmmigrate: online: "))
        #expect(try rig.oracle.qemus("A", "g1").isEmpty)
        let after = try rig.oracle.qemus("B", "g1")
        #expect(after.map(\.status) == ["running"])
        #expect(try rig.suite.oracle.runnable("A", "g1") == false)
        #expect(try rig.suite.oracle.runnable("B", "g1") == true)
        // and each journal has the live phases in order
        #expect(try rig.phases("A") == ["preparing", "streamed", "source-disabled", "source-stopped", "done"])
        #expect(try rig.phases("B") == ["prepared", "target-started", "continued"])
        // and hpvmstatus on B says On
        let status = try rig.command("B", "hpvmstatus", ["-M"])
        #expect(status.stdout.split(separator: "\n").first { $0.hasPrefix("g1:") }.map { $0.split(separator: ":", omittingEmptySubsequences: false)[10] } == "On")
    }

    @Test func theCloudKernelGuestKeepsCountingAcrossAnOnlineMigration() throws {
        // Given the counter guest (Debian's cloud kernel, a busybox initramfs counting on its
        // serial console) booted on A from a file-backed DVD both hosts have at the same path
        let image = try CounterGuest.imagePath()
        let rig = try OnlineRig()
        defer { rig.close() }
        for root in [rig.suite.hosts.rootA.path, rig.suite.hosts.rootB.path] {
            try FileManager.default.copyItem(atPath: image, toPath: root + "/hpvm/disks/counter.iso")
        }
        let created = try rig.command("A", "hpvmcreate", ["-P", "c1", "-r", "256M", "-a", "dvd:scsi::file:/hpvm/disks/counter.iso"])
        try #require(created.status == 0, "\(created.stderr)")
        let booted = Date()
        try #require(try rig.command("A", "hpvmstart", ["-P", "c1"]).status == 0)
        let onA = try CounterGuest.counters(3, runFolder: CounterGuest.runFolder(root: rig.suite.hosts.rootA.path, guest: "c1"), within: 60)
        say("counter guest: counting on A after \(String(format: "%.1f", Date().timeIntervalSince(booted))) s: \(onA)")
        // When it migrates online
        let moved = try rig.command("A", "hpvmmigrate", ["-o", "-P", "c1", "-h", rig.suite.hosts.addressB])
        try #require(moved.status == 0, "\(moved.stderr)")
        say("counter guest: \(moved.stdout.split(separator: "\n").first ?? "")")
        // Then it counts on B from where it was, without a new boot, and its QEMU on A is gone
        let onB = try CounterGuest.counters(3, runFolder: CounterGuest.runFolder(root: rig.suite.hosts.rootB.path, guest: "c1"), within: 30)
        say("counter guest: counting on B: \(onB)")
        #expect(onB.first! > onA.last!, "B counts \(onB), A counted \(onA): the guest started again")
        #expect(zip(onB, onB.dropFirst()).allSatisfy { $1 == $0 + 1 }, "\(onB)")
        #expect(try rig.oracle.qemus("A", "c1").isEmpty)
        #expect(try rig.oracle.qemus("B", "c1").map(\.status) == ["running"])
    }

    @Test func theFleetLeaseMovesWithTheGuestAndTheOldHostCannotStartIt() throws {
        // Given fleet leases on both hosts and a guest running on A, its QEMU holding its lease
        let rig = try OnlineRig()
        defer { rig.close() }
        try rig.enableLeases()
        try rig.setUpRunningGuest("g1")
        let pidA = try #require(try rig.oracle.qemus("A", "g1").first?.pid)
        #expect(try rig.holdsLease("A", pid: pidA))
        // When it migrates online
        let moved = try rig.command("A", "hpvmmigrate", ["-o", "-P", "g1", "-h", rig.suite.hosts.addressB])
        #expect(moved.status == 0, "\(moved.stderr)")
        // Then B's QEMU holds the lease, taken at the version A released it at, and A holds none
        let pidB = try #require(try rig.oracle.qemus("B", "g1").first?.pid)
        let leasesA = try rig.leases("A")
        let leasesB = try rig.leases("B")
        #expect(try rig.holdsLease("B", pid: pidB), "B: \(leasesB)")
        #expect(leasesA.isEmpty, "A: \(leasesA)")
        let stopped = try rig.suite.oracle.rows("A", "SELECT detail FROM migrationJournal WHERE phase = 'source-stopped'")
        #expect(stopped.first?.first?.hasPrefix("lease version ") == true, "\(stopped)")
        // And when A's registry is edited by hand to make g1 runnable there again, the lease still
        // refuses its start, naming host 2
        let edited = try ChildProcess.run(
            "/usr/bin/sqlite3",
            [rig.suite.oracle.registry("A"), "UPDATE guest SET runnable = 1, modifiable = 1, visible = 1, migrationLock = NULL WHERE name = 'g1'"],
            environment: [:])
        #expect(edited.status == 0, "\(edited.stderr)")
        let refused = try rig.command("A", "hpvmstart", ["-P", "g1"])
        #expect(refused.status == 1 && refused.stderr.contains("held by host 2"), "\(refused.stderr)")
        #expect(try rig.oracle.qemus("A", "g1").isEmpty)
    }

    @Test func aRefusedOnlineMigrationLeavesTheGuestRunningHereAndChangesNothing() throws {
        // Given a running guest on A whose vswitch B does not have
        let rig = try OnlineRig()
        defer { rig.close() }
        try rig.setUpRunningGuest("g1", network: "vsw2")
        let registryB = try rig.suite.hosts.registryBytes("B")
        // When it is migrated online
        let refused = try rig.command("A", "hpvmmigrate", ["-o", "-P", "g1", "-h", rig.suite.hosts.addressB])
        // Then the target's check refuses it, naming the vswitch; it still runs on A only
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("vswitch validation failed") && refused.stderr.contains("vsw2"), "\(refused.stderr)")
        #expect(try rig.oracle.qemus("A", "g1").map(\.status) == ["running"])
        #expect(try rig.oracle.qemus("B", "g1").isEmpty)
        #expect(try rig.suite.hosts.registryBytes("B") == registryB)
        // and A keeps it runnable and unlocked (its journal records the refused attempt)
        #expect(try rig.suite.oracle.runnable("A", "g1") == true)
        #expect(try rig.suite.oracle.rows("A", "SELECT count(*) FROM guest WHERE name = 'g1' AND migrationLock IS NULL") == [["1"]])
        #expect(try rig.phases("A") == ["preparing", "aborted"])
        // and an offline migration of the running guest is refused, naming -o and -d
        let offline = try rig.command("A", "hpvmmigrate", ["-P", "g1", "-h", rig.suite.hosts.addressB])
        #expect(offline.status != 0 && offline.stderr.contains("while it runs"), "\(offline.stderr)")
        // and -o of a guest that does not run is refused
        let stopped = try rig.command("A", "hpvmstop", ["-P", "g1", "-F", "-Q"])
        #expect(stopped.status == 0)
        let idle = try rig.command("A", "hpvmmigrate", ["-o", "-P", "g1", "-h", rig.suite.hosts.addressB])
        #expect(idle.status != 0 && idle.stderr.contains("is not running"), "\(idle.stderr)")
    }

    @Test func dStopsTheGuestAfterTheChecksAndBStartsItOnTheTarget() throws {
        // Given a running guest on A
        let rig = try OnlineRig()
        defer { rig.close() }
        try rig.setUpRunningGuest("g1")
        // When it migrates offline with -d (stop it first) and -b (boot it there)
        let moved = try rig.command("A", "hpvmmigrate", ["-d", "-b", "-P", "g1", "-h", rig.suite.hosts.addressB], environment: ["HPVM_STOP_TIMEOUT": "1"])
        // Then it was stopped here and runs there
        #expect(moved.status == 0, "\(moved.stderr)")
        #expect(moved.stdout.contains("started guest g1 on \(rig.suite.hosts.addressB) (-b)"), "\(moved.stdout) \((try? String(contentsOfFile: rig.suite.hosts.scratch + "/sshd.log", encoding: .utf8)) ?? "")")
        #expect(try rig.oracle.qemus("A", "g1").isEmpty)
        #expect(try rig.oracle.qemus("B", "g1").map(\.status) == ["running"])
        #expect(try rig.phases("A") == ["preparing", "source-disabled", "done"])
    }
}

/// Two sealed hosts with sshd on both (for recovery from either side), guests run under TCG.
final class OnlineRig {
    let suite: FaultSuite
    let oracle: LiveOracle
    /// With ``enableLeases()``: each host's sanlock daemon.
    var daemons: [Character: SanlockDaemon] = [:]

    init() throws {
        suite = try FaultSuite(seed: 1)
        oracle = LiveOracle(roots: ["A": suite.hosts.rootA.path, "B": suite.hosts.rootB.path])
    }

    /// Stops every QEMU either root still has, by its pid, then the daemons, then the hosts.
    func close() {
        for host: Character in ["A", "B"] {
            for qemu in (try? oracle.qemus(host, nil)) ?? [] { kill(qemu.pid, SIGKILL) }
        }
        for daemon in daemons.values { daemon.stop() }
        suite.close()
    }

    func command(_ host: Character, _ tool: String, _ arguments: [String], environment extra: [String: String] = [:]) throws -> ChildProcess.Result {
        var environment = ["HPVM_ACCEL": "tcg"].merging(daemons[host]?.environment ?? [:]) { $1 }
        environment.merge(extra) { $1 }
        return try suite.command(host, tool, arguments, environment: environment)
    }

    /// Fleet leases on both hosts (issue 11): a sanlock daemon each (unprivileged, no watchdog),
    /// one 32 MiB lease file on A that B's root links to, A joined as host 1 and B as host 2, and
    /// each sshd giving the target half its host's daemon.
    func enableLeases() throws {
        let a = try SanlockDaemon()
        let b = try SanlockDaemon()
        daemons = ["A": a, "B": b]
        suite.hosts.sshdEnvironment = ["A": "SANLOCK_RUN_DIR=\(a.runDirectory)", "B": "SANLOCK_RUN_DIR=\(b.runDirectory)"]
        try suite.hosts.restartSSHD(failpoint: nil)
        TwoHosts.stop(sshd: suite.sshdA)
        suite.sshdA = try suite.hosts.startSSHDOnA()
        let file = suite.hosts.rootA.path + "/hpvm/leases"
        FileManager.default.createFile(atPath: file, contents: Data(count: 32 << 20))
        try FileManager.default.createSymbolicLink(atPath: suite.hosts.rootB.path + "/hpvm/leases", withDestinationPath: file)
        for (host, id) in [("A", "1"), ("B", "2")] as [(Character, String)] {
            let joined = try command(host, "hpvmlease", ["-i", "/hpvm/leases", "-H", id, "-T", "2"])
            guard joined.status == 0 else { throw TestFailure("hpvmlease -i on \(host): \(joined.stderr)") }
        }
    }

    /// Whether a host's sanlock daemon holds a guest lease (`guest-…`) for process `pid`.
    func holdsLease(_ host: Character, pid: pid_t) throws -> Bool {
        guard let daemon = daemons[host] else { return false }
        let status = try ChildProcess.run("/usr/sbin/sanlock", ["client", "status"], environment: daemon.environment)
        return status.stdout.split(separator: "\n").contains { $0.hasPrefix("r ") && $0.contains(":guest-") && $0.hasSuffix(" p \(pid)") }
    }

    /// The guest leases a host's daemon holds, as `sanlock client status` lists them.
    func leases(_ host: Character) throws -> [String] {
        guard let daemon = daemons[host] else { return [] }
        let status = try ChildProcess.run("/usr/sbin/sanlock", ["client", "status"], environment: daemon.environment)
        return status.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("r ") && $0.contains(":guest-") }
    }

    /// A guest of 64 MB on A's first SAN LUN and a network on `network`, started.
    func setUpRunningGuest(_ guest: String, network: String = "vsw1") throws {
        let created = try command(
            "A", "hpvmcreate", ["-P", guest, "-r", "64M", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1", "-a", "network:avio_lan::vswitch:\(network)"])
        try #require(created.status == 0, "\(created.stderr)")
        let started = try command("A", "hpvmstart", ["-P", guest])
        try #require(started.status == 0, "\(started.stderr)")
    }

    /// The journal's phases on a host, oldest first, read with the sqlite3 shell.
    func phases(_ host: Character) throws -> [String] {
        try suite.oracle.rows(host, "SELECT phase FROM migrationJournal ORDER BY id").map { $0[0] }
    }
}

/// What runs where, read apart from the code under test: every QEMU process whose working folder
/// is a guest's run folder under a host's root, and its status from its own QMP status socket.
struct LiveOracle {
    let roots: [Character: String]

    struct QEMU: Equatable {
        let pid: pid_t
        let guest: String
        /// QMP `query-status`: `running`, `paused`, `inmigrate`, `postmigrate`, … (`none` when it did not answer).
        let status: String
    }

    /// The QEMUs of `guest` (every guest when nil) under a host's root.
    func qemus(_ host: Character, _ guest: String?) throws -> [QEMU] {
        guard let root = roots[host] else { return [] }
        let base = root + "/var/opt/hpvm/run/"
        var found: [QEMU] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry) else { continue }
            guard let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8), comm.hasPrefix("qemu-system") else { continue }
            // QEMU holds its pidfile open (and locked) for as long as it runs: `<run folder>/pid`.
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            guard let pidfile = fds.lazy.compactMap({ try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") })
                .first(where: { $0.hasPrefix(base) && $0.hasSuffix("/pid") })
            else { continue }
            let cwd = String(pidfile.dropLast(4))
            let name = String(cwd.dropFirst(base.count))
            if let guest, name != guest { continue }
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")"),
                stat[stat.index(close, offsetBy: 2)] == "Z"
            {
                continue
            }
            found.append(QEMU(pid: pid, guest: name, status: Self.status(socket: cwd + "/qmp-status") ?? "none"))
        }
        return found.sorted { $0.pid < $1.pid }
    }

    /// `query-status` over a QMP socket, in a few lines of its own.
    static func status(socket path: String) -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < 107 else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return nil }
        var received = ""
        func readUntil(_ needle: String) -> Bool {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while !received.contains(needle) {
                let n = recv(fd, &chunk, chunk.count, 0)
                guard n > 0 else { return false }
                received += String(decoding: chunk[0..<n], as: UTF8.self)
            }
            return true
        }
        func send(_ text: String) { _ = text.withCString { Glibc.send(fd, $0, strlen($0), 0) } }
        guard readUntil("\"QMP\"") else { return nil }
        send(#"{"execute":"qmp_capabilities"}"# + "\n")
        guard readUntil("\"return\"") else { return nil }
        received = ""
        send(#"{"execute":"query-status"}"# + "\n")
        guard readUntil("\"status\"") && readUntil("}") else { return nil }
        guard let range = received.range(of: #""status": ""#) ?? received.range(of: #""status":""#) else { return nil }
        return String(received[range.upperBound...].prefix { $0 != "\"" })
    }
}
