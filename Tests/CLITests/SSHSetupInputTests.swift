import Foundation
import Testing

/// hpvmsshsetup refuses hostile host names, users and paths before anything runs: exit 64, a
/// message naming the bad argument, and no key, known_hosts or scratch file made.
@Suite struct SSHSetupInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let arguments: [String]
        let message: String
        var testDescription: String { arguments.joined(separator: " ").prefix(60).description }
    }

    static let cases: [Case] = [
        Case(arguments: ["-y", "-oProxyCommand=touch /tmp/hpvm-pwned", "host1"], message: "Unknown option '-oProxyCommand'"),
        Case(arguments: ["-y", "--", "-oProxyCommand=touch /tmp/hpvm-pwned"], message: "starts with '-': it would be read as an option"),
        Case(arguments: ["-y", "host1;touch /tmp/hpvm-pwned"], message: "holds ';'"),
        Case(arguments: ["-y", "host1 host2"], message: "holds a space"),
        Case(arguments: ["-y", "$(touch /tmp/hpvm-pwned)"], message: "holds '$'"),
        Case(arguments: ["-y", String(repeating: "h", count: 300)], message: "is 300 characters long; a host name has at most 253"),
        Case(arguments: ["-y", "host1\nhost2"], message: "holds a line break"),
        Case(arguments: ["-y", "-i", "/tmp/a key", "host1"], message: "-i '/tmp/a key' holds a space"),
        Case(arguments: ["-y", "--known-hosts", "/tmp/%d/kh", "host1"], message: "holds '%'"),
        Case(arguments: ["-y", "--bootstrap-identity=-oProxyCommand=x", "host1"], message: "starts with '-'"),
        Case(arguments: ["-y", "--bootstrap-identity", "-oProxyCommand=x", "host1"], message: "Missing value for '--bootstrap-identity"),
        Case(arguments: ["-y", "--user", "root;id", "host1"], message: "user 'root;id' is not a login name"),
        Case(arguments: ["-y", "--port", "70000", "host1"], message: "not a port number"),
        Case(arguments: ["-y", "host1", "host1"], message: "a host is named twice"),
        Case(arguments: ["-y"], message: "name at least one host"),
    ]

    @Test(arguments: cases)
    func hostileInputIsRefusedAndNothingRuns(_ input: Case) throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("hpvm-sshsetup-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        let result = try runProcess(binDirectory + "/hpvmsshsetup", input.arguments, environment: ["HOME": home, "HPVM_ROOT": home])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("hpvmsshsetup: "), "\(result.stderr)")
        #expect(result.stderr.contains(input.message), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: home).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/hpvm-pwned"))
    }
}
