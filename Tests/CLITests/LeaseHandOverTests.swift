import Fleet
import Foundation
import HPVMTestSupport
import Host
import Lease
import Registry
@testable import Runtime
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The lease hand-over of an online migration (issue 11, libvirt's model): the target's QEMU is
/// registered with its sanlock daemon without the lease, the source releases it and returns its
/// version, the target acquires it for its QEMU with that version. Two real daemons (hosts 1 and 2)
/// on one lease file, real QEMUs under TCG; every daemon and QEMU is stopped by its pid.
@Suite(.serialized) struct LeaseHandOverTests {
    /// Runs `body` with this process's sanlock calls going to `daemon` (it plays both hosts).
    func on<T>(_ daemon: SanlockDaemon, _ body: () throws -> T) rethrows -> T {
        try SanlockRunDirectory.with(daemon.runDirectory, body)
    }

    /// `sanlock client status` of a daemon, by line.
    func status(_ daemon: SanlockDaemon) throws -> [String] {
        try runProcess("/usr/sbin/sanlock", ["client", "status"], environment: daemon.environment).lines
    }

    /// Whether a status line is the registration of process `pid` (`p PID ...`).
    func isRegistration(_ line: String, of pid: Int32) -> Bool {
        let words = line.split(separator: " ")
        return words.count >= 2 && words[0] == "p" && words[1] == "\(pid)"
    }

    /// The error `body` throws, as a ``LeaseError``.
    func leaseError(_ body: () throws -> Void) -> LeaseError? {
        do {
            try body()
            return nil
        } catch {
            return error as? LeaseError
        }
    }

    func milliseconds(_ duration: Duration) -> String {
        String(format: "%.1f", Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1000)
    }

    @Test func theTargetTakesTheLeaseOnlyWithTheVersionTheSourceReleased() throws {
        // Given hosts A (id 1) and B (id 2), each with its daemon, sharing one lease file
        let daemonA = try SanlockDaemon()
        let daemonB = try SanlockDaemon()
        defer { daemonA.stop(); daemonB.stop() }
        let a = try LeaseCommandTests.host(daemon: daemonA, lease: nil)
        let b = try LeaseCommandTests.host(daemon: daemonB, lease: a.root + "/hpvm/leases")
        defer { a.stopQEMUs(); b.stopQEMUs() }
        let joinedA = try a.run("hpvmlease", ["-i", "/hpvm/leases", "-H", "1", "-T", "2"], environment: daemonA.environment)
        #expect(joinedA.status == 0, "\(joinedA.stderr)")
        let joinedB = try b.run("hpvmlease", ["-i", "/hpvm/leases", "-H", "2", "-T", "2"], environment: daemonB.environment)
        #expect(joinedB.status == 0, "\(joinedB.stderr)")
        // and g1 on B as a migration's prepare leaves it: the same uuid, Not Runnable
        let uuid = try #require(
            try runProcess("/usr/bin/sqlite3", [a.registryPath, "SELECT uuid FROM guest WHERE name = 'g1'"]).lines.first)
        let resource = "guest-\(uuid)"
        let edited = try runProcess(
            "/usr/bin/sqlite3", [b.registryPath, "UPDATE guest SET uuid = '\(uuid)', runnable = 0 WHERE name = 'g1'"])
        #expect(edited.status == 0, "\(edited.stderr)")
        // and g1 running on A, its QEMU holding the lease
        let startedA = try a.runtime("hpvmstart", "-P", "g1", environment: daemonA.environment)
        #expect(startedA.status == 0, "\(startedA.stderr)")
        let pidA = try #require(a.qemuPID("g1"))
        #expect(try status(daemonA).contains { $0.contains(resource) && $0.hasSuffix("p \(pidA)") })
        let storeA = try RegistryStore.open(at: a.registryPath)
        let storeB = try RegistryStore.open(at: b.registryPath)
        defer { try? storeA.close(); try? storeB.close() }
        let audit = AuditContext(user: "tester", command: "test")
        let fleetA = Fleet(store: storeA, root: a.host.root, audit: audit)
        let fleetB = Fleet(store: storeB, root: b.host.root, audit: audit)

        // (once B's daemon has seen host 1 renew its host lease: alive)
        let seen = Date()
        func hostOneAlive() -> Bool {
            let hosts = try? on(daemonB) { try Lockspace(path: b.root + "/hpvm/leases").hosts() }
            return hosts?.first { $0.hostID == 1 }?.state == .live
        }
        while Date().timeIntervalSince(seen) < 60, !hostOneAlive() { usleep(200_000) }
        print("B's daemon saw host 1 alive after \(String(format: "%.1f", Date().timeIntervalSince(seen))) s")

        // When B starts an incoming QEMU through hpvm-lease-exec in incoming mode
        let incoming = try #require(try on(daemonB) { try fleetB.incomingLease(guest: "g1") })
        #expect(incoming.resource == resource && incoming.ownerHostID == 1 && incoming.waitSeconds == 0)
        let hold = LeaseHold(
            lockspace: incoming.lockspace, resource: incoming.resource, path: incoming.path, offset: incoming.offset,
            waitSeconds: 0, incoming: true)
        let folder = try RunFolder(root: b.host.root, guest: "g1")
        try folder.prepare()
        let qemu = [
            "-name", "guest=g1", "-no-user-config", "-nodefaults", "-machine", QEMUCommandLine.machineType, "-accel", "tcg",
            "-m", "64M", "-display", "none", "-chardev", "socket,id=qmp-status,path=qmp-status,server=on,wait=off",
            "-mon", "chardev=qmp-status,mode=control", "-pidfile", "pid", "-S", "-incoming", "defer", "-daemonize",
        ]
        let arguments = hold.arguments(qemu: "/usr/bin/qemu-system-x86_64", qemu, folder: folder)
        #expect(arguments[5] == "incoming" && arguments[6] == "--" && !arguments.contains("-daemonize"))
        b.startedGuests.insert("g1")
        // (started as the runtime starts QEMU: posix_spawn in the run folder, nothing of ours inherited)
        let launched = try on(daemonB) {
            try QEMUProcess.launch(
                "/usr/bin/qemu-system-x86_64", arguments: qemu, in: folder, taps: [], lease: hold,
                helper: binDirectory + "/hpvm-lease-exec")
        }
        let pidB = try #require(b.qemuPID("g1"))
        #expect(launched == pidB)
        // Then its QEMU is registered with B's daemon and holds no lease
        let registered = try status(daemonB)
        #expect(registered.contains { isRegistration($0, of: pidB) }, "\(registered)")
        #expect(!registered.contains { $0.contains(resource) }, "\(registered)")

        // When B takes the lease before A released it, with the version on disk or any other
        let onDisk = try on(daemonB) { try Lockspace(path: incoming.path).version(of: resource, slot: incoming.slot) }
        for version in [onDisk, onDisk + 5] {
            let early = leaseError { try on(daemonB) { try fleetB.handOverAcquire(guest: "g1", pid: pidB, version: version) } }
            // Then it is refused, naming host 1
            #expect(early?.code == .heldByOtherHost && early?.ownerHostID == 1, "\(String(describing: early))")
            #expect(early?.message.contains("held by host 1, which is alive") == true, "\(String(describing: early))")
        }

        // When A releases the lease of its QEMU and B acquires it for its own with that version
        let began = ContinuousClock.now
        let released = try on(daemonA) { try fleetA.handOverRelease(guest: "g1", pid: pidA) }
        let releasedAt = ContinuousClock.now
        let version = try #require(released)
        // (a wrong version first: refused as stale, and nothing changes)
        let wrongAt = ContinuousClock.now
        let wrong = leaseError { try on(daemonB) { try fleetB.handOverAcquire(guest: "g1", pid: pidB, version: version + 1) } }
        let wrongTook = ContinuousClock.now - wrongAt
        #expect(wrong?.code == .staleVersion, "\(String(describing: wrong))")
        #expect(wrong?.message.contains("its version is \(version), not \(version + 1)") == true, "\(String(describing: wrong))")
        let acquiredAt = ContinuousClock.now
        try on(daemonB) { try fleetB.handOverAcquire(guest: "g1", pid: pidB, version: version) }
        let ended = ContinuousClock.now
        print(
            "lease hand-over: release \(milliseconds(releasedAt - began)) ms, acquire \(milliseconds(ended - acquiredAt)) ms, "
                + "release+acquire \(milliseconds((releasedAt - began) + (ended - acquiredAt))) ms "
                + "(wrong version refused in \(milliseconds(wrongTook)) ms)")
        #expect(version == onDisk)
        // Then B's daemon shows the lease held by B's QEMU, at the next version; A's shows it no more
        let held = try status(daemonB)
        #expect(held.contains { $0.hasPrefix("r hpvm:\(resource):") && $0.contains(":\(version + 1) p \(pidB)") }, "\(held)")
        #expect(!(try status(daemonA)).contains { $0.contains(resource) })
        #expect(try on(daemonA) { try fleetA.list()?.guests.first?.ownerHostID } == 2)

        // When A retries its release, or takes the lease back with the version it released
        let retried = leaseError { _ = try on(daemonA) { try fleetA.handOverRelease(guest: "g1", pid: pidA) } }
        let back = leaseError { try on(daemonA) { try fleetA.handOverAcquire(guest: "g1", pid: pidA, version: version) } }
        // Then both are refused, naming host 2
        #expect(retried?.code == .heldByOtherHost && retried?.ownerHostID == 2, "\(String(describing: retried))")
        #expect(back?.code == .heldByOtherHost && back?.ownerHostID == 2, "\(String(describing: back))")
        #expect(back?.message.contains("held by host 2") == true, "\(String(describing: back))")

        // When B's QEMU ends (its lease is freed, at version + 1)
        kill(pidB, SIGKILL)
        let lockspace = try Lockspace(path: incoming.path)
        let deadline = Date().addingTimeInterval(10)
        func leaseIsFree() -> Bool {
            do {
                return try on(daemonA) { try lockspace.owner(of: resource, slot: incoming.slot) } == nil
            } catch {
                return false
            }
        }
        while Date() < deadline, !leaseIsFree() { usleep(50_000) }
        #expect(try on(daemonA) { try lockspace.owner(of: resource, slot: incoming.slot) } == nil)
        // Then a take-over with the stale version is refused as stale; for a pid no daemon knows, as unregistered
        let stale = leaseError { try on(daemonA) { try fleetA.handOverAcquire(guest: "g1", pid: pidA, version: version) } }
        #expect(stale?.code == .staleVersion, "\(String(describing: stale))")
        #expect(stale?.message.contains("its version is \(version + 1), not \(version)") == true, "\(String(describing: stale))")
        let unknown = leaseError { try on(daemonB) { try fleetB.handOverAcquire(guest: "g1", pid: pidB, version: version + 1) } }
        #expect(unknown?.code == .notRegistered, "\(String(describing: unknown))")
        // and with the current version, A's QEMU (still registered after its release) holds it again
        try on(daemonA) { try fleetA.handOverAcquire(guest: "g1", pid: pidA, version: version + 1) }
        #expect(try status(daemonA).contains { $0.contains(resource) && $0.hasSuffix("p \(pidA)") })
        #expect(try a.runtime("hpvmstop", "-P", "g1", "-F", "-Q", environment: daemonA.environment).status == 0)
        #expect(a.qemuPID("g1") == nil)
    }

    @Test func anIncomingHelperWithoutADaemonStartsNothing() throws {
        // Given a run folder and no sanlock daemon behind SANLOCK_RUN_DIR
        let cli = try RuntimeCommandTests.hostWithGuest()
        let folder = try RunFolder(root: cli.host.root, guest: "g1")
        try folder.prepare()
        let empty = cli.root + "/no-sanlock"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let hold = LeaseHold(lockspace: "hpvm", resource: "guest-x", path: "/leases", offset: 2 << 20, waitSeconds: 0, incoming: true)
        // When the helper is asked to register an incoming program
        let result = try runProcess(
            binDirectory + "/hpvm-lease-exec", hold.arguments(qemu: "/bin/true", [], folder: folder),
            environment: ["SANLOCK_RUN_DIR": empty])
        // Then it says that no daemon answers, exits 12, and runs nothing
        #expect(result.status == 12, "\(result.stderr)")
        #expect(result.stderr.contains("sanlock refused lease guest-x"), "\(result.stderr)")
        #expect(folder.runningPID == nil)
        // and a word other than a number of seconds or `incoming` is a usage error
        var bad = hold.arguments(qemu: "/bin/true", [], folder: folder)
        bad[5] = "incomming"
        #expect(try runProcess(binDirectory + "/hpvm-lease-exec", bad).status == 64)
    }

    @Test func withoutFleetLeasesTheSourceHasNoVersionAndTheTargetRefuses() throws {
        let cli = try RuntimeCommandTests.hostWithGuest()
        let store = try RegistryStore.open(at: cli.registryPath)
        defer { try? store.close() }
        let fleet = Fleet(store: store, root: cli.host.root, audit: AuditContext(user: "tester", command: "test"))
        #expect(try fleet.handOverRelease(guest: "g1", pid: 1) == nil)
        #expect(try fleet.incomingLease(guest: "g1") == nil)
        let refused = leaseError { try fleet.handOverAcquire(guest: "g1", pid: 1, version: 1) }
        #expect(refused?.code == .notJoined && refused?.message.contains("fleet leases are off on this host") == true)
    }
}
