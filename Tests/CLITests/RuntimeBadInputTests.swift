import Foundation
import HPVMTestSupport
import Testing

/// Malformed, hostile and oversized input to `hpvmstart`, `hpvmstop` and `hpvmconsole`: a clear
/// message naming the bad part, a non-zero exit, the registry byte-for-byte unchanged, no QEMU
/// started and nothing run by a shell.
@Suite struct RuntimeBadInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let tool: String
        let arguments: [String]
        var environment: [String: String] = [:]
        let status: Int32
        let message: String
        var testDescription: String { (tool + " " + arguments.joined(separator: " ")).prefix(60).description }
    }

    static let longName = String(repeating: "g", count: 10_000)
    static let cases: [Case] = ["hpvmstart", "hpvmstop", "hpvmconsole"].flatMap { tool -> [Case] in
        [
            Case(tool: tool, arguments: [], status: 64, message: "give the guest with either -P vm-name or -p vm-number"),
            Case(tool: tool, arguments: ["-P", "g1", "-p", "1"], status: 64, message: "give the guest with either -P vm-name or -p vm-number"),
            Case(tool: tool, arguments: ["-P", "g1", "-P", "g2"], status: 64, message: "-P given more than once"),
            Case(tool: tool, arguments: ["-P", ""], status: 64, message: "empty guest name"),
            Case(tool: tool, arguments: ["-P", "$(touch${IFS}PWNED)"], status: 64, message: "guest name '$(touch${IFS}PWNED)' may hold only letters"),
            Case(tool: tool, arguments: ["-P", "g1;touch PWNED"], status: 64, message: "guest name 'g1;touch PWNED' may hold only letters"),
            Case(tool: tool, arguments: ["-P", "../../etc"], status: 64, message: "guest name '../../etc' may hold only letters"),
            Case(tool: tool, arguments: ["-P", "g\u{1b}[31mred"], status: 64, message: "guest name 'g\\x1b[31mred' may hold only letters"),
            Case(tool: tool, arguments: ["-P", "g\nforged: ok"], status: 64, message: "guest name 'g\\nforged: ok' may hold only letters"),
            Case(tool: tool, arguments: ["-P", String(longName.prefix(65))], status: 64, message: "is 65 bytes long (at most 64)"),
            Case(tool: tool, arguments: ["-P", longName], status: 64, message: "is 10000 bytes long (at most 64)"),
            Case(tool: tool, arguments: ["-p", "abc"], status: 64, message: "-p <vm-number>"),
            Case(tool: tool, arguments: ["-p", "99999"], status: 1, message: "no guest has VM number 99999"),
            Case(tool: tool, arguments: ["-P", "nosuch"], status: 1, message: "no guest named nosuch"),
            Case(tool: tool, arguments: ["-P", "g1", "extra"], status: 64, message: "Unexpected argument 'extra'"),
            Case(tool: tool, arguments: ["-P", "g1", "-z"], status: 64, message: "Unknown option '-z'"),
        ]
    } + [
        Case(tool: "hpvmstart", arguments: ["-P", "g1"], environment: ["HPVM_ACCEL": "kvm:tcg"], status: 1, message: "HPVM_ACCEL='kvm:tcg' must be kvm or tcg"),
        Case(tool: "hpvmstart", arguments: ["-P", "g1"], environment: ["HPVM_QEMU": "qemu;touch PWNED"], status: 1, message: "HPVM_QEMU='qemu;touch PWNED' must be the absolute path"),
        Case(tool: "hpvmstart", arguments: ["-P", "g1"], environment: ["HPVM_QEMU": "/nonexistent/qemu"], status: 1, message: "cannot run /nonexistent/qemu"),
        Case(tool: "hpvmstop", arguments: ["-P", "g1", "-g", "-F"], status: 64, message: "give either -g or -F, not both"),
        Case(tool: "hpvmstop", arguments: ["-P", "g1", "-Q"], environment: ["HPVM_STOP_TIMEOUT": "-1"], status: 1, message: "HPVM_STOP_TIMEOUT='-1' must be a whole number of seconds"),
        Case(tool: "hpvmstop", arguments: ["-P", "g1", "-Q"], status: 1, message: "guest g1 is not running"),
        Case(tool: "hpvmconsole", arguments: ["-P", "g1"], status: 1, message: "guest g1 is not running"),
        // hpvmmigrate -o, -d, -b (refused before any connection: the target address is not reachable)
        Case(tool: "hpvmmigrate", arguments: ["-o", "-P", "g1", "-h", "198.51.100.9", "-m", "disk:avio_stor:0,0,0:file:/x.img", "-C"], status: 64, message: "-C copies storage offline"),
        Case(tool: "hpvmmigrate", arguments: ["-o", "-P", "g1", "-h", "198.51.100.9", "-c", "2"], status: 64, message: "-c and -r change the guest's hardware"),
        Case(tool: "hpvmmigrate", arguments: ["-o", "-P", "g1", "-h", "198.51.100.9", "-r", "1G"], status: 64, message: "-c and -r change the guest's hardware"),
        Case(tool: "hpvmmigrate", arguments: ["-od", "-P", "g1", "-h", "198.51.100.9"], status: 64, message: "-d stops the guest for an offline migration; -o moves it running"),
        Case(tool: "hpvmmigrate", arguments: ["-o", "-b", "-P", "g1", "-h", "198.51.100.9"], status: 64, message: "-b starts the guest on the target after an offline migration"),
        Case(tool: "hpvmmigrate", arguments: ["-o", "-P", "g1", "-h", "198.51.100.9"], status: 1, message: "guest g1 is not running, so there is nothing to migrate online"),
        Case(tool: "hpvmmigrate", arguments: ["-o", "-P", "g1", "-h", "198.51.100.9"], environment: ["HPVM_MIGRATE_BANDWIDTH": "1e9;touch PWNED"], status: 64, message: "HPVM_MIGRATE_BANDWIDTH='1e9;touch PWNED' is not a number of MiB a second"),
        Case(tool: "hpvmmigrate", arguments: ["-o", "-P", "g1", "-h", "198.51.100.9"], environment: ["HPVM_MIGRATE_BANDWIDTH": "0"], status: 64, message: "HPVM_MIGRATE_BANDWIDTH='0' is not a number of MiB a second from 1 to 1000000"),
        Case(tool: "hpvmmigrate", arguments: ["-o", "-P", "g1", "-h", "198.51.100.9"], environment: ["HPVM_MIGRATE_DOWNTIME": String(repeating: "9", count: 5000)], status: 64, message: "HPVM_MIGRATE_DOWNTIME="),
        Case(tool: "hpvmmigrate", arguments: ["-o", "-P", "g1", "-h", "198.51.100.9"], environment: ["HPVM_MIGRATE_DOWNTIME": "5\u{1b}[31m"], status: 64, message: "is not a number of milliseconds"),
    ]

    @Test(arguments: cases)
    func badInputIsRefusedAndChangesNothing(_ bad: Case) throws {
        // Given a registry holding one guest, and a folder to catch anything a shell would make
        let cli = try CLIHost(sanDisks: 1, multipathMaps: 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-r", "64M").status == 0)
        let before = try cli.registryBytes()
        let scratch = cli.root + "/cwd"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        // When the bad command runs
        cli.startedGuests.insert("g1")
        let result = try runProcess(
            binDirectory + "/" + bad.tool, bad.arguments,
            environment: ["HPVM_ROOT": cli.root, "HPVM_ACCEL": "tcg"].merging(bad.environment) { $1 }, directory: scratch)
        // Then it says what is wrong, exits non-zero, and nothing changed or ran
        #expect(result.status == bad.status, "\(result.stderr)")
        #expect(result.stderr.hasPrefix(bad.tool + ": "), "\(result.stderr)")
        #expect(result.stderr.contains(bad.message), "\(result.stderr)")
        #expect(!result.stderr.contains("\u{1b}"), "a control byte reached the terminal")
        #expect(result.stderr.utf8.count < 4000, "the message echoes an oversized argument")
        #expect(try cli.registryBytes() == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch).isEmpty)
        #expect(cli.qemuPID("g1") == nil)
    }
}
