import Foundation
import SSH
import Testing

@Suite(.requiresSSHD, .serialized) struct SSHSessionTests {
    func configuration(_ server: SSHDFixture, key: String? = nil, knownHosts: String? = nil) -> SSHConfiguration {
        var configuration = SSHConfiguration(
            host: "127.0.0.1", port: server.port, user: "root", identities: [key ?? server.clientKey],
            knownHosts: knownHosts ?? server.knownHosts)
        configuration.timeoutMilliseconds = 10_000
        return configuration
    }

    @Test func execRunsACommandAndTalksOverItsStandardStreams() throws {
        let server = try SSHDFixture()
        let session = try SSHSession.connect(configuration(server))
        let channel = try session.exec("cat")
        try channel.writeLine("hello; $(touch /tmp/never) 'quoted'")
        try channel.sendEOF()
        #expect(try channel.readLine() == "hello; $(touch /tmp/never) 'quoted'")
        #expect(try channel.readLine() == nil)
        #expect(try channel.close() == 0)
        // a second command on the same connection
        let second = try session.exec("exit 3")
        #expect(try second.close() == 3)
        session.disconnect()
    }

    @Test func anUnknownHostKeyIsRefusedWithTheFix() throws {
        let server = try SSHDFixture()
        let empty = server.folder.appendingPathComponent("empty_known_hosts").path
        FileManager.default.createFile(atPath: empty, contents: nil)
        do {
            _ = try SSHSession.connect(configuration(server, knownHosts: empty))
            Issue.record("connected to an unknown host")
        } catch {
            #expect(error.code == .hostKeyUnknown)
            #expect(error.message.hasPrefix("Host key verification failed: [127.0.0.1]:\(server.port) is not in"))
            #expect(error.message.contains("ssh-keyscan -p \(server.port) -t ed25519 127.0.0.1"))
        }
        let missing = server.folder.appendingPathComponent("no_such_file").path
        #expect(throws: SSHError.self) { try SSHSession.connect(configuration(server, knownHosts: missing)) }
    }

    @Test func aChangedHostKeyIsRefused() throws {
        let server = try SSHDFixture()
        let other = try server.extraKey(type: "ed25519", name: "other_host")
        let fields = try String(contentsOfFile: other + ".pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        let wrong = server.folder.appendingPathComponent("wrong_known_hosts").path
        try "[127.0.0.1]:\(server.port) \(fields)\n".write(toFile: wrong, atomically: true, encoding: .utf8)
        do {
            _ = try SSHSession.connect(configuration(server, knownHosts: wrong))
            Issue.record("connected despite a changed host key")
        } catch {
            #expect(error.code == .hostKeyMismatch)
            #expect(error.message.contains("ssh-keygen -R"))
        }
    }

    @Test func aKeyTheServerDoesNotKnowIsRefused() throws {
        let server = try SSHDFixture()
        let stranger = try server.extraKey(type: "ed25519", name: "stranger")
        do {
            _ = try SSHSession.connect(configuration(server, key: stranger))
            Issue.record("logged in with an unauthorized key")
        } catch {
            #expect(error.code == .authentication)
            #expect(error.message.contains("authorized_keys"))
            #expect(configuration(server, key: stranger).setupAdvice(for: error)?.hasPrefix("Set up SSH for migration with: hpvmsshsetup -i \(stranger)") == true)
        }
    }

    @Test func ecdsaKeysWork() throws {
        let server = try SSHDFixture()
        let ecdsa = try server.extraKey(type: "ecdsa", name: "id_ecdsa")
        try server.authorize(ecdsa + ".pub")
        let session = try SSHSession.connect(configuration(server, key: ecdsa))
        #expect(try session.exec("true").close() == 0)
    }

    @Test func anRSAOnlyUserIsToldWhyAndWhatToDo() throws {
        let server = try SSHDFixture()
        let rsa = try server.extraKey(type: "rsa", name: "id_rsa")
        try server.authorize(rsa + ".pub")
        do {
            _ = try SSHSession.connect(configuration(server, key: rsa))
            Issue.record("RSA login succeeded; libssh2 1.10 was expected to sign with SHA-1 only")
        } catch {
            #expect(error.code == .rsaRefused)
            #expect(error.message.contains("ssh-keygen -t ed25519"))
            // hpvmmigrate adds the hpvmsshsetup line that makes and installs an ed25519 key
            let advice = configuration(server, key: rsa).setupAdvice(for: error) ?? ""
            #expect(advice.contains("hpvmsshsetup -i \(server.folder.path)/id_ed25519 --known-hosts \(server.knownHosts) --port \(server.port) 127.0.0.1"), "\(advice)")
        }
    }

    @Test func aPasswordOnlyServerIsRefusedWithoutSendingAPassword() throws {
        let server = try SSHDFixture(extraConfig: "PubkeyAuthentication no\nPasswordAuthentication yes")
        do {
            _ = try SSHSession.connect(configuration(server))
            Issue.record("logged in to a password-only server")
        } catch {
            #expect(error.code == .noPublicKey)
            #expect(error.message.contains("offers only password"))
        }
        let log = try String(contentsOfFile: server.log, encoding: .utf8)
        #expect(!log.contains("Failed password"))
        #expect(!log.contains("keyboard-interactive"))
    }

    @Test func anUnreachablePortFailsQuicklyWithAClearMessage() throws {
        let port = try SSHDFixture.freePort()
        var config = SSHConfiguration(host: "127.0.0.1", port: port, identities: ["/nonexistent"], knownHosts: "/nonexistent")
        config.timeoutMilliseconds = 2000
        do {
            _ = try SSHSession.connect(config)
            Issue.record("connected to a closed port")
        } catch {
            #expect(error.code == .connect)
            #expect(error.message.contains("cannot connect to [127.0.0.1]:\(port)"))
        }
    }

    @Test func environmentSettingsAreRead() throws {
        let config = try SSHConfiguration.fromEnvironment(
            host: "h", environment: ["HOME": "/home/a", "HPVM_SSH_PORT": "2222", "HPVM_SSH_USER": "hpvm"])
        #expect(config.port == 2222 && config.user == "hpvm" && config.knownHosts == "/home/a/.ssh/known_hosts")
        #expect(config.identities == ["/home/a/.ssh/id_ed25519", "/home/a/.ssh/id_ecdsa", "/home/a/.ssh/id_rsa"])
        #expect(throws: SSHError.self) { try SSHConfiguration.fromEnvironment(host: "h", environment: ["HPVM_SSH_PORT": "99999"]) }
    }
}
