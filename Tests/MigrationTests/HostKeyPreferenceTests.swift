import Foundation
import HPVMTestSupport
import Testing

/// Issue 8 row 9: with a server that has rsa, ecdsa and ed25519 host keys and a known_hosts made
/// by `ssh-keyscan -t ed25519`, the client asks for ed25519 first, as OpenSSH does.
@Suite(.requiresRootAndSSHD, .serialized) struct HostKeyPreferenceTests {
    @Test func theAlgorithmKnownHostsHoldsIsNegotiated() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        try hosts.run("/usr/bin/ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", hosts.scratch + "/host_ecdsa")
        try hosts.run("/usr/bin/ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", hosts.scratch + "/host_rsa")
        var config = try String(contentsOfFile: hosts.scratch + "/sshd_config", encoding: .utf8)
        config = "HostKey \(hosts.scratch)/host_rsa\nHostKey \(hosts.scratch)/host_ecdsa\n" + config
        hosts.stopSSHD()
        try config.write(toFile: hosts.scratch + "/sshd_config", atomically: true, encoding: .utf8)
        hosts.sshdPID = try TwoHosts.spawn(
            "/usr/sbin/ip", ["netns", "exec", hosts.nsB, "/usr/sbin/sshd", "-D", "-f", hosts.scratch + "/sshd_config", "-E", hosts.scratch + "/sshd3.log"])
        var up = false
        for _ in 0..<100 where !up {
            up = (try? String(contentsOfFile: hosts.scratch + "/sshd3.log", encoding: .utf8))?.contains("Server listening") == true
            if !up { usleep(50_000) }
        }
        try #require(up)
        let result = try hosts.migrate("-P", "g1", "-s")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains("Host key verification failed"))
    }
}
