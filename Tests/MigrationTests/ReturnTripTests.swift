import Foundation
import HPVMTestSupport
import Testing

/// Issue 8 row 13: a guest migrated A→B goes back B→A to the Not Runnable copy it left on A.
@Suite(.requiresRootAndSSHD, .serialized) struct ReturnTripTests {
    let addressA = "198.51.100.1"

    func withSSHDOnA(_ hosts: TwoHosts, _ body: () throws -> Void) throws {
        try hosts.withSSHDOnA(body)
    }

    func vmNumber(_ hosts: TwoHosts, _ host: Character) throws -> String {
        let line = try hosts.on(host, "hpvmstatus", ["-M"]).stdout.split(separator: "\n").first { $0.hasPrefix("g1:") }
        return line.map { String($0.split(separator: ":", omittingEmptySubsequences: false)[1]) } ?? ""
    }

    @Test func theGuestComesBackToTheCopyItLeft() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1", "-a", "network:avio_lan::vswitch:vsw1"]).status == 0)
        let number = try vmNumber(hosts, "A")
        #expect(try hosts.migrate("-P", "g1").status == 0)
        #expect(try hosts.runnable("A", "g1") == false)
        try withSSHDOnA(hosts) {
            // When it goes back with a changed memory size
            #expect(try hosts.on("B", "hpvmmodify", ["-P", "g1", "-r", "2G"]).status == 0)
            let back = try hosts.on("B", "hpvmmigrate", ["-P", "g1", "-h", addressA])
            #expect(back.status == 0, "\(back.stderr)")
            // Then A's copy is runnable again, with B's configuration, and B's is Not Runnable
            #expect(try hosts.runnable("A", "g1") == true)
            #expect(try hosts.runnable("B", "g1") == false)
            #expect(try vmNumber(hosts, "A") == number)
            #expect(try hosts.on("A", "hpvmstatus", ["-P", "g1", "-V"]).stdout.contains("Migration:            -"))
            #expect(try hosts.on("A", "hpvmstatus", ["-P", "g1", "-d"]).stdout.hasPrefix("disk:avio_stor:0,0,0:disk:/dev/rdisk/disk1\nnetwork:avio_lan:0,1,0x"))
            #expect(try hosts.on("A", "hpvmdevmgmt", ["-l", "gdev:/dev/rdisk/disk1"]).stdout.contains(":g1:"))
            #expect(try hosts.on("A", "hpvmstatus", ["-M"]).stdout.contains(":2048:") || (try hosts.on("A", "hpvmstatus", ["-P", "g1"]).stdout.contains("2048") || (try hosts.on("A", "hpvmstatus", ["-P", "g1"]).stdout.contains("2 GB"))))
            // And it can go A→B again, to B's Not Runnable copy
            let again = try hosts.migrate("-P", "g1")
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try hosts.runnable("A", "g1") == false)
            #expect(try hosts.runnable("B", "g1") == true)
            // and both registries' audit logs replay into what the trips left
            for host: Character in ["A", "B"] {
                let verify = try hosts.on(host, "hpvmaudit", ["verify"])
                #expect(verify.status == 0, "\(host): \(verify.stdout)\(verify.stderr)")
            }
        }
    }

    @Test func onlyTheCopyThisGuestLeftIsReplaced() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.migrate("-P", "g1").status == 0)
        // A guest that merely has the same name on B (made there, not arrived) is refused on A.
        #expect(try hosts.on("B", "hpvmremove", ["-P", "g1", "-F", "-Q"]).status == 0)
        #expect(try hosts.on("B", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk2"]).status == 0)
        try withSSHDOnA(hosts) {
            let refused = try hosts.on("B", "hpvmmigrate", ["-P", "g1", "-h", addressA])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("not the copy this guest left when it migrated away"), "\(refused.stderr)")
            #expect(try hosts.runnable("A", "g1") == false)
            #expect(try hosts.runnable("B", "g1") == true)
        }
    }

    @Test func anInterruptedReturnKeepsTheNotRunnableCopy() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.migrate("-P", "g1").status == 0)
        try withSSHDOnA(hosts) {
            // The return stops after A prepared, before B disabled its copy; recovery rolls it back.
            let stopped = try hosts.on("B", "hpvmmigrate", ["-P", "g1", "-h", addressA], environment: ["HPVM_FAILPOINT": "source-after-prepare"])
            #expect(stopped.status != 0)
            #expect(try hosts.runnable("A", "g1") == false)
            #expect(try hosts.runnable("B", "g1") == true)
            let recovered = try hosts.on("B", "hpvmmigrate", ["--recover"])
            #expect(recovered.status == 0, "\(recovered.stderr)")
            // A keeps its Not Runnable copy, and the return still works afterwards.
            #expect(try hosts.runnable("A", "g1") == false)
            #expect(try hosts.on("B", "hpvmmigrate", ["-P", "g1", "-h", addressA]).status == 0)
            #expect(try hosts.runnable("A", "g1") == true)
            #expect(try hosts.runnable("B", "g1") == false)
        }
    }
}

extension TwoHosts {
    static let addressA = "198.51.100.1"

    /// An sshd on host A as well (its own config, A's root), stopped by its id when `body` ends.
    func withSSHDOnA(_ body: () throws -> Void) throws {
        let pid = try startSSHDOnA()
        defer { Self.stop(sshd: pid) }
        try body()
    }

    /// Starts an sshd on host A (its own config, A's root, A's key in known_hosts); returns its
    /// pid, for ``stop(sshd:)``.
    func startSSHDOnA() throws -> pid_t {
        let config = """
            Port 22
            ListenAddress \(Self.addressA)
            HostKey \(scratch)/host_ed25519
            PidFile \(scratch)/sshdA.pid
            AuthorizedKeysFile \(scratch)/authorized_keys
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            UsePAM no
            StrictModes no
            SetEnv HPVM_ROOT=\(rootA.path) HPVM_ACCEL=tcg\(sshdEnvironment["A"].map { " " + $0 } ?? "")

            """
        try config.write(toFile: scratch + "/sshdA_config", atomically: true, encoding: .utf8)
        let hostKey = try String(contentsOfFile: scratch + "/host_ed25519.pub", encoding: .utf8)
        let known = try String(contentsOfFile: scratch + "/known_hosts", encoding: .utf8)
        let entry = "\(Self.addressA) \(hostKey.split(separator: " ").prefix(2).joined(separator: " "))\n"
        if !known.contains(entry) {
            try (known + entry).write(toFile: scratch + "/known_hosts", atomically: true, encoding: .utf8)
        }
        try? FileManager.default.removeItem(atPath: scratch + "/sshdA.log")
        let pid = try TwoHosts.spawn(
            "/usr/sbin/ip", ["netns", "exec", nsA, "/usr/sbin/sshd", "-D", "-f", scratch + "/sshdA_config", "-E", scratch + "/sshdA.log"])
        var up = false
        for _ in 0..<100 where !up {
            up = (try? String(contentsOfFile: scratch + "/sshdA.log", encoding: .utf8))?.contains("Server listening") == true
            if !up { usleep(50_000) }
        }
        guard up else {
            Self.stop(sshd: pid)
            throw TestFailure("sshd did not start in \(nsA)")
        }
        return pid
    }

    /// Stops an sshd this test started, by its pid.
    static func stop(sshd pid: pid_t) {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}
