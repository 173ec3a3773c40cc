import Foundation
import HPVMTestSupport
import Migration
import Testing

/// Every failpoint on each side, by a kill or a dropped connection: afterwards the guest is never
/// runnable on both hosts; after recovery it is runnable on exactly one, and the registries agree.
@Suite(.requiresRootAndSSHD, .serialized) struct FailpointTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let point: String
        let action: String
        var testDescription: String { "\(point):\(action)" }
    }

    static let cases: [Case] = Failpoints.all.flatMap { point in ["abort", "drop"].map { Case(point: point, action: $0) } }

    /// The invariant, checked on both registries.
    func expectNeverRunnableTwice(_ hosts: TwoHosts, _ label: String) throws {
        let a = try hosts.runnable("A", "g1")
        let b = try hosts.runnable("B", "g1")
        #expect(!(a == true && b == true), "\(label): runnable on both hosts")
    }

    /// Both registries' audit logs, replayed, match their tables (hpvmaudit verify).
    func expectAuditIntact(_ hosts: TwoHosts, _ label: String) throws {
        for host: Character in ["A", "B"] {
            let verify = try hosts.on(host, "hpvmaudit", ["verify"])
            #expect(verify.status == 0, "\(label): host \(host): \(verify.stderr)")
        }
    }

    @Test(arguments: cases)
    func failureAtEveryPhaseKeepsTheGuestRunnableOnAtMostOneHostAndRecoveryFinishesIt(_ failure: Case) throws {
        let onTarget = failure.point.hasPrefix("target-")
        let spec = "\(failure.point):\(failure.action)"
        let hosts = try TwoHosts(failpointOnTarget: onTarget ? spec : nil)
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1", "-a", "network:avio_lan::vswitch:vsw1"]).status == 0)
        // When the migration stops at the failpoint
        let stopped = try hosts.migrate("-P", "g1", environment: onTarget ? [:] : ["HPVM_FAILPOINT": spec])
        #expect(stopped.status != 0, "the migration did not stop at \(spec)")
        try expectNeverRunnableTwice(hosts, "after \(spec)")
        // Then recovery (with the target healthy again) finishes or rolls back
        if onTarget { try hosts.restartSSHD(failpoint: nil) }
        let recovered = try hosts.on("A", "hpvmmigrate", ["--recover", "-P", "g1"])
        #expect(recovered.status == 0, "\(spec): \(recovered.stderr)")
        let a = try hosts.runnable("A", "g1")
        let b = try hosts.runnable("B", "g1")
        #expect((a == true) != (b == true), "\(spec): runnable on A \(String(describing: a)), on B \(String(describing: b))")
        // and the registries agree: a rolled-back migration leaves nothing on B; a finished one
        // leaves the source copy Not Runnable and unlocked
        if a == true {
            #expect(b == nil, "\(spec): B still holds a copy")
        } else {
            #expect(a == false)
            #expect(try hosts.on("A", "hpvmstatus", ["-P", "g1", "-V"]).stdout.contains("Migration:            -"))
            #expect(try hosts.on("B", "hpvmstatus", ["-P", "g1", "-V"]).stdout.contains("Migration:            -"))
        }
        // Recovery is idempotent
        let again = try hosts.on("A", "hpvmmigrate", ["--recover"])
        #expect(again.status == 0 && again.stdout.contains("nothing to recover"))
        try expectAuditIntact(hosts, spec)
    }

    @Test func recoveryWithTheTargetDownSaysWhatToDoAndKeepsTheInvariant() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.migrate("-P", "g1", environment: ["HPVM_FAILPOINT": "source-after-disable"]).status != 0)
        hosts.stopSSHD()
        let stuck = try hosts.on("A", "hpvmmigrate", ["--recover", "-P", "g1"])
        #expect(stuck.status == 1)
        #expect(stuck.stderr.contains("g1 is Not Runnable on both hosts"))
        try expectNeverRunnableTwice(hosts, "target down")
        try hosts.startSSHD(failpoint: nil)
        #expect(try hosts.on("A", "hpvmmigrate", ["--recover", "-P", "g1"]).status == 0)
        #expect(try hosts.runnable("B", "g1") == true)
        #expect(try hosts.runnable("A", "g1") == false)
        try expectAuditIntact(hosts, "target down")
    }
}

@Suite(.requiresRootAndSSHD, .serialized) struct RecoveryEdgeTests {
    @Test func aTargetThatLostItsRegistryIsNeverAssumedToHaveTheGuest() throws {
        // Given a migration stopped after the point of no return
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.migrate("-P", "g1", environment: ["HPVM_FAILPOINT": "source-after-disable"]).status != 0)
        // When the target's registry is lost
        let registry = hosts.rootB.path + "/var/opt/hpvm/common/hpvm_mgmtdb.sqlite"
        try FileManager.default.removeItem(atPath: registry)
        // Then recovery does not claim the guest moved, and says how to get it back
        let result = try hosts.on("A", "hpvmmigrate", ["--recover", "-P", "g1"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("has no record of migration"))
        #expect(result.stderr.contains("hpvmmodify -P g1 -x register_status=enabled"))
        #expect(try hosts.runnable("A", "g1") == false)
        #expect(try hosts.runnable("B", "g1") == nil)
    }
}
