import Foundation
import HPVMTestSupport
import Testing

/// One executable, `hpvm`, serves every command: by the name of a link to it and as a sub-command.
@Suite struct MultiCallTests {
    static let commands = [
        "hpvmdevmgmt", "hpvmhostrdev", "hpvmcreate", "hpvmmodify", "hpvmremove", "hpvmstatus", "hpvmstart", "hpvmstop",
        "hpvmconsole", "hpvmmigrate", "hpvmsshsetup", "hpvmlease", "hpvmaudit",
    ]

    @Test func listNamesEveryCommandAndEachIsALinkToHPVM() throws {
        // Given the build folder the tests use
        // When hpvm lists its commands
        let list = try runProcess(binDirectory + "/hpvm", ["--list"])
        // Then it names every command, and each is a link to hpvm beside it
        #expect(list.status == 0)
        #expect(list.lines == Self.commands)
        for name in Self.commands {
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: binDirectory + "/" + name) == "hpvm")
        }
        let real = try #require(try? FileManager.default.attributesOfItem(atPath: binDirectory + "/hpvm")[.type] as? FileAttributeType)
        #expect(real == .typeRegular)
    }

    @Test(arguments: commands)
    func linkNameAndSubcommandPrintTheSameHelp(command: String) throws {
        let byLink = try runProcess(binDirectory + "/" + command, ["--help"])
        let bySubcommand = try runProcess(binDirectory + "/hpvm", [String(command.dropFirst(4)), "--help"])
        #expect(byLink.status == 0)
        #expect(byLink.stdout.contains("USAGE:") || byLink.stdout.contains("usage:"), "\(byLink.stdout)")
        #expect(bySubcommand.status == byLink.status)
        #expect(bySubcommand.stdout == byLink.stdout)
        #expect(bySubcommand.stderr == byLink.stderr)
    }

    @Test func subcommandWritesTheRegistryAndAuditsTheCommandByItsName() throws {
        // Given a host
        let cli = try CLIHost(sanDisks: 2, multipathMaps: 0)
        // When a device is added through `hpvm devmgmt` and listed through the link
        let add = try cli.run("hpvm", ["devmgmt", "-a", "rdev:/dev/rdisk/disk1"])
        #expect(add.status == 0, "\(add.stderr)")
        let list = try cli.devmgmt("-l", "rdev")
        // Then the entry is there, and the audit log and command log name the command as typed by link
        #expect(list.lines.count == 1 && list.lines[0].hasPrefix("/dev/rdisk/disk1:"), "\(list.stdout)")
        let rows = try cli.run("hpvm", ["audit", "list", "--json"])
        #expect(rows.status == 0, "\(rows.stderr)")
        #expect(rows.stdout.contains(#""command":"hpvmdevmgmt -a rdev:\/dev\/rdisk\/disk1""#)
            || rows.stdout.contains(#""command":"hpvmdevmgmt -a rdev:/dev/rdisk/disk1""#), "\(rows.stdout)")
        let log = try String(contentsOfFile: cli.root + "/var/opt/hpvm/common/command.log", encoding: .utf8)
        #expect(log.contains(": hpvmdevmgmt -a rdev:/dev/rdisk/disk1: ok"), "\(log)")
    }

    @Test func invalidUTF8IsCountedFromTheCommandsName() throws {
        let cli = try CLIHost(sanDisks: 1, multipathMaps: 0)
        let result = try runProcess(
            "/bin/sh", ["-c", #"exec "$0" devmgmt -a "$(printf 'gdev:/dev/\377\376')""#, binDirectory + "/hpvm"],
            environment: ["HPVM_ROOT": cli.root])
        #expect(result.status == 64)
        #expect(result.stderr == "hpvmdevmgmt: argument 2 is not valid UTF-8: 'gdev:/dev/\\xff\\xfe'.\n")
    }

    @Test func unknownCommandIsAUsageError() throws {
        let result = try runProcess(binDirectory + "/hpvm", ["frobnicate\u{1b}[2J"])
        #expect(result.status == 64)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("hpvm: 'frobnicate\\x1b[2J' is not an hpvm command"), "\(result.stderr)")
        let bare = try runProcess(binDirectory + "/hpvm", [])
        #expect(bare.status == 64)
        #expect(bare.stderr.hasPrefix("usage: hpvm <command>"))
    }

    @Test func helpListsEveryCommandAndVersionIsTheOneVersion() throws {
        let help = try runProcess(binDirectory + "/hpvm", ["--help"])
        #expect(help.status == 0)
        for name in Self.commands {
            #expect(help.stdout.contains("  \(name.dropFirst(4)) ") && help.stdout.contains("(\(name))"), "\(name)")
        }
        let version = try runProcess(binDirectory + "/hpvm", ["--version"])
        let devmgmt = try runProcess(binDirectory + "/hpvmdevmgmt", ["--version"])
        #expect(version.status == 0 && devmgmt.status == 0)
        let number = try #require(version.stdout.split(separator: " ").last).trimmingCharacters(in: .newlines)
        #expect(version.stdout == "hpvm \(number)\n")
        #expect(devmgmt.stdout.hasPrefix("hpvmdevmgmt \(number) "), "\(devmgmt.stdout)")
    }
}
