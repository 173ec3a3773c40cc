import Foundation
import HPVMTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 10's fault matrix for `hpvmmigrate -o`: each run starts a firmware-only guest on A and
/// migrates it online to B; one fault lands at a random moment of the migration: `kill -9` of
/// the source's `hpvmmigrate`, of the target's agents, of the source's QEMU, of the target's
/// QEMU, or a cut link (on either side, for 4 s). Then `--recover` on both hosts (the order drawn
/// from the seed), and ``LiveOracle`` (QEMU processes from `/proc`, asked over their own QMP
/// sockets) and the registries read with `sqlite3` judge:
///
/// - running twice: more than one QEMU runs the guest (QMP `running`);
/// - lost: no QEMU runs it and the fault ended no QEMU, or no host (or both) has it runnable;
/// - stray: a QEMU of the guest is left (paused, waiting) after recovery, or it runs on a host
///   whose registry has it Not Runnable.
///
/// `HPVM_ONLINE_FAULT_RUNS` (default 10) and `HPVM_FAULT_SEED` (random, printed) choose the runs.
@Suite(.requiresRootAndSSHD, .serialized) struct OnlineFaultTests {
    @Test func faultsAtRandomMomentsNeverRunTheGuestTwiceNorLoseIt() throws {
        try runMatrix(leases: false)
    }

    /// Issue 11: the same matrix with fleet leases on (a sanlock daemon per host, one lease file):
    /// the guest's QEMU holds its lease on whichever host runs it, the lease handed over at the
    /// end of each `-o`, and nothing runs twice.
    @Test func withFleetLeasesOnTheGuestRunsOnceAndHoldsItsLeaseWhereItRuns() throws {
        try runMatrix(leases: true)
    }

    /// Runs the matrix (with fleet leases on or off) and expects every count of harm to be 0, and
    /// some faults to have landed while a migration ran.
    func runMatrix(leases: Bool) throws {
        let environment = ProcessInfo.processInfo.environment
        let runs = environment["HPVM_ONLINE_FAULT_RUNS"].flatMap { Int($0) } ?? 10
        let seed = environment["HPVM_FAULT_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64.max)
        say("online fault matrix\(leases ? " with leases" : ""): HPVM_FAULT_SEED=\(seed) HPVM_ONLINE_FAULT_RUNS=\(runs)")
        let rig = try OnlineRig()
        defer { rig.close() }
        if leases { try rig.enableLeases() }
        var matrix = OnlineFaultMatrix(rig: rig, seed: seed)
        try matrix.run(runs)
        say(matrix.summary)
        let replay = "replay with HPVM_FAULT_SEED=\(seed) HPVM_ONLINE_FAULT_RUNS=\(runs)"
        #expect(matrix.runs == runs)
        #expect(matrix.midRun > 0, "no fault landed while a migration ran; \(replay)")
        #expect(matrix.count(.runningTwice) == 0, "\(matrix.failures(.runningTwice)); \(replay)")
        #expect(matrix.count(.lost) == 0, "\(matrix.failures(.lost)); \(replay)")
        #expect(matrix.count(.stray) == 0, "\(matrix.failures(.stray)); \(replay)")
        #expect(matrix.count(.unleased) == 0, "\(matrix.failures(.unleased)); \(replay)")
    }
}

enum OnlineFault: String, CaseIterable {
    case killSource = "kill -9 of the source hpvmmigrate"
    case killTarget = "kill -9 of the target's agents"
    case killSourceQEMU = "kill -9 of the source QEMU"
    case killTargetQEMU = "kill -9 of the target QEMU"
    case cutLink = "link cut"

    var endsAQEMU: Bool { self == .killSourceQEMU || self == .killTargetQEMU }
}

struct OnlineFaultMatrix {
    enum Kind: String { case runningTwice = "running twice", lost, stray, unleased = "running without its lease" }

    let rig: OnlineRig
    let seed: UInt64
    var runs = 0
    var midRun = 0
    var byFault: [OnlineFault: Int] = [:]
    var findings: [(run: Int, kind: Kind, detail: String)] = []
    var seconds = 0.0
    /// A clean `-o`'s length, measured once: faults land in [0, window] ms.
    var window = 1000

    init(rig: OnlineRig, seed: UInt64) {
        self.rig = rig
        self.seed = seed
    }

    func count(_ kind: Kind) -> Int { Set(findings.filter { $0.kind == kind }.map(\.run)).count }

    func failures(_ kind: Kind) -> String {
        findings.filter { $0.kind == kind }.map { "run \($0.run): \($0.detail)" }.joined(separator: "; ")
    }

    var summary: String {
        let faults = OnlineFault.allCases.map { "\($0.rawValue) \(byFault[$0] ?? 0)" }.joined(separator: ", ")
        return """
            online fault matrix: runs \(runs), faults mid-migration \(midRun), running twice \(count(.runningTwice)), \
            lost \(count(.lost)), stray \(count(.stray))\(rig.daemons.isEmpty ? "" : ", running without its lease \(count(.unleased))") (\(faults); \(String(format: "%.1f", seconds)) s)
            """
    }

    /// The arguments of the guest's online migration (a short deadline, so a cut link is noticed soon).
    func arguments(_ guest: String) -> [String] {
        ["-o", "-P", guest, "-h", rig.suite.hosts.addressB, "--timeout", "3"]
    }

    func setUp(_ guest: String) throws {
        let created = try rig.command("A", "hpvmcreate", ["-P", guest, "-r", "64M", "-a", "network:avio_lan::vswitch:vsw1"])
        guard created.status == 0 else { throw TestFailure("hpvmcreate \(guest): \(created.stderr)") }
        let started = try rig.command("A", "hpvmstart", ["-P", guest])
        guard started.status == 0 else { throw TestFailure("hpvmstart \(guest): \(started.stderr)") }
    }

    mutating func run(_ count: Int) throws {
        let began = Date()
        try setUp("calibration")
        let t0 = Date()
        let clean = try rig.command("A", "hpvmmigrate", arguments("calibration"))
        guard clean.status == 0 else { throw TestFailure("an online migration without a fault failed: \(clean.stderr)") }
        window = max(300, Int(Date().timeIntervalSince(t0) * 1100))
        say("online fault matrix: a migration without a fault takes \(window * 10 / 11) ms; faults land in 0-\(window) ms")
        for qemu in try rig.oracle.qemus("B", "calibration") { kill(qemu.pid, SIGKILL) }
        var random = SplitMix64(seed: seed)
        var deck: [OnlineFault] = []
        for index in 0..<count {
            if deck.isEmpty { deck = OnlineFault.allCases.shuffled(using: &random) }
            let fault = deck.removeFirst()
            let delay = Int(random.next() % UInt64(window + 1))
            let side: Character = random.next() % 2 == 0 ? "A" : "B"
            let recoverFirst: Character = random.next() % 2 == 0 ? "A" : "B"
            try runOne(index, fault: fault, delay: delay, side: side, recoverFirst: recoverFirst)
        }
        seconds = Date().timeIntervalSince(began)
    }

    mutating func runOne(_ index: Int, fault: OnlineFault, delay: Int, side: Character, recoverFirst: Character) throws {
        let guest = "o\(index)"
        let shown = "\(fault.rawValue)\(fault == .cutLink ? " on \(side)" : "") at \(delay) ms, recovery on \(recoverFirst) first"
        func finding(_ kind: Kind, _ detail: String) {
            findings.append((index, kind, "\(shown): \(detail)"))
            say("online fault matrix: run \(index): \(kind.rawValue): \(shown): \(detail)")
        }
        try setUp(guest)
        let log = rig.suite.hosts.scratch + "/online-\(index).log"
        let t0 = Date()
        let pid = try rig.suite.start("A", "hpvmmigrate", arguments(guest), log: log, environment: ["HPVM_ACCEL": "tcg"])
        var status: Int32?
        while Int(Date().timeIntervalSince(t0) * 1000) < delay && FaultSuite.running(pid, status: &status) { usleep(1000) }
        var landed = FaultSuite.running(pid, status: &status)
        var cut = false
        switch fault {
        case .killSource:
            kill(pid, SIGKILL)
        case .killTarget:
            // No agent yet (before the connection) or any more: the kill hit nothing, and is not counted.
            let agents = rig.suite.migrateProcesses(in: "B", agentsOnly: true)
            for agent in agents { kill(agent, SIGKILL) }
            landed = landed && !agents.isEmpty
        case .killSourceQEMU, .killTargetQEMU:
            // A kill that finds no QEMU (the target's not started yet) hit nothing: not counted as landed.
            let qemus = try rig.oracle.qemus(fault == .killSourceQEMU ? "A" : "B", guest)
            for qemu in qemus { kill(qemu.pid, SIGKILL) }
            landed = landed && !qemus.isEmpty
        case .cutLink:
            try rig.suite.link(side, up: false)
            cut = true
        }
        if landed { midRun += 1 }
        byFault[fault, default: 0] += 1
        if cut {
            usleep(4_000_000)
            try rig.suite.link(side, up: true)
            try rig.suite.waitForTheLink()
        }
        _ = FaultSuite.wait(pid)
        rig.suite.stopLeftovers()
        // Recovery on both hosts, until neither has anything left (three rounds at most).
        for _ in 0..<3 {
            var stuck = false
            for host in recoverFirst == "A" ? ["A", "B"] as [Character] : ["B", "A"] {
                let recovered = try rig.command(host, "hpvmmigrate", ["--recover", "--timeout", "5"])
                if recovered.status != 0 { stuck = true }
            }
            if !stuck { break }
        }
        runs += 1
        // The oracle.
        let qemus = try rig.oracle.qemus("A", guest).map { ("A", $0) } + rig.oracle.qemus("B", guest).map { ("B", $0) }
        let running = qemus.filter { $0.1.status == "running" }
        let runnableA = try rig.suite.oracle.runnable("A", guest) == true
        let runnableB = try rig.suite.oracle.runnable("B", guest) == true
        let where_ = "QEMUs \(qemus.map { "\($0.0):\($0.1.status)" }), runnable on A \(runnableA), on B \(runnableB)"
        if running.count > 1 { finding(.runningTwice, where_) }
        if running.isEmpty && !fault.endsAQEMU { finding(.lost, "no QEMU runs the guest; " + where_) }
        if runnableA == runnableB { finding(.lost, "runnable on \(runnableA ? "both hosts" : "neither host"); " + where_) }
        if qemus.count != running.count { finding(.stray, "a QEMU is left that does not run the guest; " + where_) }
        if let host = running.first?.0, (host == "A" ? !runnableA : !runnableB) { finding(.stray, "it runs where it is Not Runnable; " + where_) }
        if !rig.daemons.isEmpty, let (host, qemu) = running.first, try !rig.holdsLease(Character(host), pid: qemu.pid) {
            finding(.unleased, "its QEMU on \(host) (pid \(qemu.pid)) holds no lease; leases: A \(try rig.leases("A")), B \(try rig.leases("B"))")
        }
        say("online fault matrix: run \(index): \(shown)\(landed ? "" : " (after the migration ended, or nothing to kill yet)"): \(where_)")
        for (_, qemu) in qemus { kill(qemu.pid, SIGKILL) }
    }
}
