import Foundation
import HPVMTestSupport
import Testing

/// Malformed, hostile and oversized input: a clear message naming the bad part, a non-zero exit,
/// and a registry file byte-for-byte unchanged.
@Suite struct BadInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let arguments: [String]
        let status: Int32
        let message: String
        var testDescription: String { arguments.joined(separator: " ").prefix(60).description }
    }

    static let longName = "/dev/" + String(repeating: "x", count: 10_000)
    static let cases: [Case] = [
        Case(arguments: ["-a", "foo:/dev/rdisk/disk1"], status: 64, message: "unknown entry type 'foo'"),
        Case(arguments: ["-a", "rdev"], status: 64, message: "expected type:entry-name"),
        Case(arguments: ["-a", "rdev:"], status: 64, message: "empty entry name"),
        Case(arguments: ["-a", "rdev:/dev/rdisk/disk1:attr"], status: 64, message: "expected type:entry-name"),
        Case(arguments: ["-a", "gdev:/dev/rdisk/disk2:attr:COLOR=RED"], status: 64, message: "unknown attribute 'COLOR'"),
        Case(arguments: ["-a", "gdev:/dev/rdisk/disk2:attr:SHARE=MAYBE"], status: 64, message: "bad value 'MAYBE' for SHARE"),
        Case(arguments: ["-a", "gdev:/dev/rdisk/disk2:attr:SHARE"], status: 64, message: "expected NAME=VALUE"),
        Case(arguments: ["-a", "gdev:/dev/rdisk/disk2:attr:USAGE=DISK"], status: 1, message: "USAGE is valid only"),
        Case(arguments: ["-a", "gdev:/dev/rdisk/disk2:attr:AUTORDEV=YES"], status: 1, message: "AUTORDEV is managed by hpvmhostrdev"),
        Case(arguments: ["-a", "gdev:/dev/rdisk/disk2:attr:DEVTYPE=FILE"], status: 1, message: "DEVTYPE is computed"),
        Case(arguments: ["-a", "rdev:/dev/rdisk/disk2:attr:RECURSIVE=FS"], status: 1, message: "RECURSIVE is valid only"),
        Case(arguments: ["-m", "rdev:/dev/rdisk/disk1:attr:SHARE=YES"], status: 1, message: "cannot be shared"),
        Case(arguments: ["-m", "rdev:/dev/rdisk/disk1:IGNOREWWID=MAYBE"], status: 64, message: "bad value 'MAYBE' for IGNOREWWID"),
        Case(arguments: ["-m", "gdev:/dev/rdisk/disk1:attr:SHARE=YES"], status: 1, message: "is a rdev entry, not gdev"),
        Case(arguments: ["-d", "gdev:/dev/rdisk/disk1:depend"], status: 64, message: "expected type:entry-name"),
        Case(arguments: ["-d", "rdev:/dev/rdisk/disk1:depend:g1"], status: 64, message: "dependents can be removed from gdev entries only"),
        Case(arguments: ["-d", "gdev:/dev/rdisk/disk9"], status: 1, message: "no gdev entry named /dev/rdisk/disk9"),
        Case(arguments: ["-n", "gdev:/dev/rdisk/disk1:"], status: 64, message: "empty entry name"),
        Case(arguments: ["-n", "gdev:/a:/b,/c,/d"], status: 64, message: "one or two new names"),
        Case(arguments: ["-l", "gdev:depend:"], status: 64, message: "empty dependent name"),
        Case(arguments: ["-l", "bogus"], status: 64, message: "unknown entry type 'bogus'"),
        Case(arguments: ["-S", "2X", "/hpvm/disks/x.img"], status: 64, message: "-S '2X': the size must be a number followed by M or G"),
        Case(arguments: ["-S", "0G", "/hpvm/disks/x.img"], status: 64, message: "greater than 0"),
        Case(arguments: ["-S", "-5M", "/hpvm/disks/x.img"], status: 64, message: "Missing value for '-S <size>'"),
        Case(arguments: ["-S", "99999999999G", "/hpvm/disks/x.img"], status: 64, message: "larger than 1 PiB"),
        Case(arguments: ["-S", "1G", "/nonexistent/dir/x.img"], status: 1, message: "folder /nonexistent/dir does not exist"),
        Case(arguments: ["-S", "1G"], status: 64, message: "-S needs a file name"),
        Case(arguments: ["-A", "-l", "all"], status: 64, message: "-A goes with -S"),
        Case(arguments: ["-a", "gdev:/dev/a,b"], status: 64, message: "contains ','"),
        Case(arguments: ["-a", "gdev:/dev/a b"], status: 64, message: "contains white space"),
        Case(arguments: ["-a", "gdev:/dev/a\tb"], status: 64, message: "contains a control character"),
        Case(arguments: ["-a", "gdev:/dev/a\nb"], status: 64, message: "'/dev/a\\nb' contains a control character"),
        Case(arguments: ["-a", "gdev:/dev/\u{1b}[31mred"], status: 64, message: "'/dev/\\x1b[31mred' contains a control character"),
        Case(arguments: ["-a", "gdev:/dev/a\u{7f}"], status: 64, message: "contains a control character"),
        Case(arguments: ["-a", "gdev:/dev/../etc/passwd"], status: 64, message: "holds '..'"),
        Case(arguments: ["-a", "gdev:" + String(longName.prefix(2000))], status: 64, message: "is 2000 bytes long (at most 1024)"),
        Case(arguments: ["-a", "gdev:" + longName], status: 64, message: "argument of 10010 bytes is too long"),
        Case(arguments: ["-a", "gdev:$(touch${IFS}PWNED)"], status: 64, message: "neither an absolute path nor a vswitch name"),
        Case(arguments: ["-a", "gdev:verylongvswitchname"], status: 64, message: "neither an absolute path nor a vswitch name"),
        Case(arguments: ["-a", "gdev:vsw9"], status: 1, message: "no vswitch named vsw9"),
        Case(arguments: ["-a", "rdev:/dev/nonexistent"], status: 1, message: "/dev/nonexistent does not exist"),
        Case(arguments: ["-a", "rdev:/dev/rdisk/disk1"], status: 1, message: "already in the registry as rdev entry /dev/rdisk/disk1"),
        Case(arguments: ["-a", "gdev:/dev/rdisk/disk2", "-d", "gdev:/dev/rdisk/disk2"], status: 64, message: "give one of"),
        Case(arguments: ["-z"], status: 64, message: "Unknown option '-z'"),
        Case(arguments: [], status: 64, message: "nothing to do"),
        Case(arguments: ["-l", "all", "extra"], status: 64, message: "unexpected argument 'extra'"),
    ]

    @Test(arguments: cases)
    func badInputIsRefusedAndChangesNothing(_ bad: Case) throws {
        // Given a registry holding one restricted disk
        let cli = try CLIHost(sanDisks: 3, multipathMaps: 0)
        #expect(try cli.devmgmt("-a", "rdev:/dev/rdisk/disk1").status == 0)
        let before = try cli.registryBytes()
        // When the bad command runs in the host root
        let result = try cli.run("hpvmdevmgmt", bad.arguments)
        // Then it says what is wrong, exits non-zero, and the registry is byte-for-byte the same
        #expect(result.status == bad.status, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("hpvmdevmgmt: "), "\(result.stderr)")
        #expect(result.stderr.contains(bad.message), "\(result.stderr)")
        #expect(!result.stderr.contains("\u{1b}"), "a control byte reached the terminal")
        #expect(result.stderr.utf8.count < 4000, "the message echoes an oversized argument")
        #expect(try cli.registryBytes() == before)
        #expect(!FileManager.default.fileExists(atPath: cli.root + "/hpvm/disks/x.img"))
    }

    @Test func invalidUTF8IsRefusedBeforeParsing() throws {
        let cli = try CLIHost(sanDisks: 1, multipathMaps: 0)
        #expect(try cli.devmgmt("-a", "rdev:/dev/rdisk/disk1").status == 0)
        let before = try cli.registryBytes()
        // Foundation cannot pass invalid UTF-8, so the shell builds the argument from bytes.
        let result = try runProcess(
            "/bin/sh", ["-c", #"exec "$0" -a "$(printf 'gdev:/dev/\377\376')""#, binDirectory + "/hpvmdevmgmt"],
            environment: ["HPVM_ROOT": cli.root])
        #expect(result.status == 64)
        #expect(result.stderr.contains("argument 2 is not valid UTF-8: 'gdev:/dev/\\xff\\xfe'"))
        #expect(try cli.registryBytes() == before)
    }

    @Test func shellMetacharactersAreNeverExecuted() throws {
        let cli = try CLIHost(sanDisks: 1, multipathMaps: 0)
        let scratch = cli.root + "/cwd"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        try cli.host.file("/hpvm/disks/a;touch PWNED", contents: "")
        for spec in ["gdev:/hpvm/disks/a;$(touch${IFS}PWNED)", "gdev:/hpvm/disks/`touch PWNED`", "gdev:/hpvm/disks/a';touch PWNED;'"] {
            let result = try runProcess(binDirectory + "/hpvmdevmgmt", ["-a", spec], environment: ["HPVM_ROOT": cli.root], directory: scratch)
            #expect(result.status != 0)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch).isEmpty)
    }

    @Test func aFileThatIsNotSQLiteIsRefusedAndKept() throws {
        let cli = try CLIHost(sanDisks: 1, multipathMaps: 0)
        try cli.host.file("/var/opt/hpvm/common/hpvm_mgmtdb.sqlite", contents: "# hpvm_mgmtdb: do not edit\nrdev /dev/rdisk/disk1\n")
        let before = try Data(contentsOf: URL(fileURLWithPath: cli.registryPath))
        for arguments in [["-l", "all"], ["-a", "rdev:/dev/rdisk/disk1"], ["-I"]] {
            let result = try cli.run("hpvmdevmgmt", arguments)
            #expect(result.status == 1)
            #expect(result.stderr.contains("is not an SQLite database"), "\(result.stderr)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: cli.registryPath)) == before)
    }

    @Test(.enabled(if: getuid() == 0, "needs root to run the command as nobody"))
    func aRegistryTheUserCannotWriteIsRefusedAndKept() throws {
        // Given a registry owned by root, and a user who may read but not write it
        let cli = try CLIHost(sanDisks: 2, multipathMaps: 0)
        #expect(try cli.devmgmt("-a", "rdev:/dev/rdisk/disk1").status == 0)
        chmod(cli.root, 0o755)
        let before = try cli.registryBytes()
        func asNobody(_ arguments: [String]) throws -> CommandResult {
            try runProcess(
                "/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", binDirectory + "/hpvmdevmgmt"] + arguments,
                environment: ["HPVM_ROOT": cli.root], directory: "/")
        }
        // When that user adds an entry
        let result = try asNobody(["-a", "rdev:/dev/rdisk/disk2"])
        // Then the command says the registry is read-only and nothing changed
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot write the registry"), "\(result.stderr)")
        #expect(try cli.registryBytes() == before)
    }
}
