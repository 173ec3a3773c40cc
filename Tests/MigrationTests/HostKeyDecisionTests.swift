import SSHSetup
import Testing

/// What hpvmsshsetup does with the keys a host presents, given known_hosts: fail closed.
@Suite struct HostKeyDecisionTests {
    let ed = HostKey(type: "ssh-ed25519", blob: "AAAAed")
    let ed2 = HostKey(type: "ssh-ed25519", blob: "AAAAother")
    let ecdsa = HostKey(type: "ecdsa-sha2-nistp256", blob: "AAAAec")

    @Test func nothingKnownAsksToAddWhatIsPresented() {
        #expect(HostKeyDecision.decide(presented: [ed, ecdsa], known: []) == .new([ed, ecdsa]))
    }

    @Test func theSameKeyIsKnown() {
        #expect(HostKeyDecision.decide(presented: [ed, ecdsa], known: [ed]) == .known)
    }

    @Test func anotherKeyOfAKnownTypeIsAChange() {
        #expect(HostKeyDecision.decide(presented: [ed2, ecdsa], known: [ed]) == .changed)
        #expect(HostKeyDecision.decide(presented: [ed2, ecdsa], known: [ed, ecdsa]) == .changed)
    }

    @Test func keysOfOnlyOtherTypesAreAChange() {
        #expect(HostKeyDecision.decide(presented: [ecdsa], known: [ed]) == .changed)
    }

    @Test func noAnswerIsUnreachable() {
        #expect(HostKeyDecision.decide(presented: [], known: [ed]) == .unreachable)
    }

    @Test func scanOutputAndKnownHostsLinesParse() {
        let text = "# 198.51.100.2:22 SSH-2.0-OpenSSH_9.2p1\n198.51.100.2 ssh-ed25519 AAAAed\n|1|salt|hash ssh-ed25519 AAAAed comment\n"
        #expect(HostKey.parse(text) == [ed])
        #expect(ed.line(name: "[h]:2222") == "[h]:2222 ssh-ed25519 AAAAed")
    }
}
