import Foundation
import HPVMTestSupport
import Registry
import Testing

/// hpvmsshsetup between three sealed hosts that start with no trust but the test's bootstrap key.
@Suite(.requiresRootAndSSHD, .serialized) struct SSHSetupTests {
    /// `hpvmsshsetup -r -y` run on A for A, B and C, first contact authenticated by the bootstrap key.
    func setUp(_ hosts: ThreeHosts) throws -> TwoHosts.Result {
        try hosts.on("A", "hpvmsshsetup", ["-r", "-y", "--bootstrap-identity", hosts.bootstrapKey] + ThreeHosts.names.map { hosts.addresses[$0]! })
    }

    @Test func roundRobinSetUpLetsEveryPairMigrate() throws {
        let started = Date()
        let hosts = try ThreeHosts()
        let built = Date()
        // Given: a guest on A with a SAN disk all three hosts see by WWID; no trust between hosts.
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        let refused = try hosts.on("A", "hpvmmigrate", ["-P", "g1", "-h", hosts.addresses["B"]!, "-s"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("hpvmsshsetup"), "\(refused.stderr)")
        // When: one hpvmsshsetup -r -y on A.
        let setup = try setUp(hosts)
        let setUpDone = Date()
        // Then: every cell of the table is ok, and -y is in A's audit log.
        #expect(setup.status == 0, "\(setup.stdout)\(setup.stderr)")
        let table = setup.stdout.split(separator: "\n")
        #expect(table.count == 5, "\(setup.stdout)")
        for row in table.dropFirst() {
            #expect(!row.contains("refused") && !row.contains("unknown") && !row.contains("unreachable"), "\(setup.stdout)")
        }
        #expect(setup.stderr.contains("without asking (-y)"))
        let store = try RegistryStore.open(at: RegistryStore.defaultPath(root: hosts.roots["A"]!.root), for: .read)
        let audit = try store.auditLog().filter { $0.action == "ssh-host-key" }
        try store.close()
        #expect(audit.count == 3 && audit.allSatisfy { $0.change.contains("\"accepted\":\"-y\"") })
        // and the log with those rows still verifies (a trusted host key changes no table)
        let verify = try ChildProcess.run(
            TwoHosts.bin + "/hpvmaudit", ["verify"], environment: ["HPVM_ROOT": hosts.roots["A"]!.path, "PATH": "/usr/bin:/bin"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        // and every pair passes hpvmmigrate -s while the guest goes A→B→C→A.
        var migrations: [TimeInterval] = []
        for (source, target) in [("A", "B"), ("B", "C"), ("C", "A")] as [(Character, Character)] {
            for other in ThreeHosts.names where other != source {
                let check = try hosts.on(source, "hpvmmigrate", ["-P", "g1", "-h", hosts.addresses[other]!, "-s"])
                #expect(check.status == 0, "\(source)→\(other): \(check.stderr)")
            }
            let moveStarted = Date()
            let move = try hosts.on(source, "hpvmmigrate", ["-P", "g1", "-h", hosts.addresses[target]!, "-D"])
            migrations.append(Date().timeIntervalSince(moveStarted))
            #expect(move.status == 0, "\(source)→\(target): \(move.stderr)")
            #expect(move.stdout.contains("Guest migrated successfully."))
            #expect(try hosts.runnable(target, "g1") == true)
            #expect(try hosts.runnable(source, "g1") == nil)
        }
        // A second run finds everything in place and changes nothing.
        let known = ThreeHosts.names.map { hosts.knownHosts($0) }
        let again = try setUp(hosts)
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(ThreeHosts.names.map { hosts.knownHosts($0) } == known)
        let keys = try String(contentsOfFile: hosts.home("B") + "/.ssh/authorized_keys", encoding: .utf8)
        // the bootstrap key, A's (A ran it and is a named host: one key) and C's, each once
        #expect(keys.split(separator: "\n").count == 3, "\(keys)")
        #expect(Set(keys.split(separator: "\n")).count == 3)
        print("three hosts: built \(built.timeIntervalSince(started))s, hpvmsshsetup -r -y \(setUpDone.timeIntervalSince(built))s, migrations \(migrations), total \(Date().timeIntervalSince(started))s")
    }

    @Test func aHostThatPresentsAnotherKeyIsRefusedNotRetrusted() throws {
        let hosts = try ThreeHosts()
        #expect(try setUp(hosts).status == 0)
        let known = ThreeHosts.names.map { hosts.knownHosts($0) }
        // When B comes back with another host key,
        hosts.stopSSHD("B")
        try hosts.newHostKey("B")
        try hosts.startSSHD("B")
        // a second run — even with -y — refuses it and changes no known_hosts.
        let second = try setUp(hosts)
        #expect(second.status == 1)
        #expect(second.stderr.contains("198.51.100.2 presents a different host key"), "\(second.stderr)")
        #expect(second.stderr.contains("not re-trusted"))
        #expect(second.stdout.contains("host key changed"), "\(second.stdout)")
        #expect(ThreeHosts.names.map { hosts.knownHosts($0) } == known)
        // and hpvmmigrate says why, and what to do.
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        let check = try hosts.on("A", "hpvmmigrate", ["-P", "g1", "-h", "198.51.100.2", "-s"])
        #expect(check.status == 1)
        #expect(check.stderr.contains("sent a different host key"))
        #expect(check.stderr.contains("hpvmsshsetup does not re-trust a changed key"), "\(check.stderr)")
    }

    @Test func withFEachKeyIsRestrictedToItsHostsAddress() throws {
        let hosts = try ThreeHosts()
        let setup = try hosts.on(
            "A", "hpvmsshsetup", ["-r", "-y", "-f", "--bootstrap-identity", hosts.bootstrapKey] + ThreeHosts.names.map { hosts.addresses[$0]! })
        #expect(setup.status == 0, "\(setup.stdout)\(setup.stderr)")
        // B accepts A's key only from A's address and C's only from C's; the bootstrap key stays as it was.
        let keys = try String(contentsOfFile: hosts.home("B") + "/.ssh/authorized_keys", encoding: .utf8).split(separator: "\n")
        #expect(keys.count == 3, "\(keys)")
        #expect(keys.filter { $0.hasPrefix("from=\"198.51.100.1\" ssh-ed25519 ") }.count == 1, "\(keys)")
        #expect(keys.filter { $0.hasPrefix("from=\"198.51.100.3\" ssh-ed25519 ") }.count == 1, "\(keys)")
        #expect(keys.filter { $0.hasPrefix("ssh-ed25519 ") && $0.hasSuffix(" bootstrap") }.count == 1, "\(keys)")
    }
}
