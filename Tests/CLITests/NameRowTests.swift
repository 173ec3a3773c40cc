import Foundation
import HPVMTestSupport
import Host
import Registry
import Testing

/// Issue 7, row 9: aliases are rows, names the `-l` line cannot carry are shown escaped, and no
/// command echoes a control character.
@Suite struct NameRowTests {
    @Test func rescanNeverBreaksOnNamesWithSeparators() throws {
        // Given a LUN that udev also names by path (with ':') and by a name holding ','
        let cli = try CLIHost(sanDisks: 3, multipathMaps: 0)
        let disk = cli.layout.sanDisks[0]
        try cli.host.link("/dev/disk/by-path/pci-0000:00:1f.2-fc-0x500a-lun-1", to: "/dev/\(disk.names[0])")
        try cli.host.link("/dev/x", to: "/dev/\(disk.names[0])")
        try cli.host.link("/dev/x,y", to: "/dev/\(disk.names[0])")
        #expect(try cli.devmgmt("-a", "gdev:/dev/x").status == 0)
        // When the host is rescanned, twice
        let first = try cli.devmgmt("-I", "-V")
        let second = try cli.devmgmt("-I", "-V")
        // Then both succeed, every name is whole, and the names no command line can give are not recorded
        #expect(first.status == 0 && second.status == 0, "\(first.stderr)\(second.stderr)")
        #expect(first.stdout.contains("not recorded as an alias (a command line cannot name it): /dev/x,y"))
        let line = try #require(try cli.devmgmt("-l", "gdev:/dev/x").lines.first)
        let names = line.split(separator: ":")[0].split(separator: ",").map(String.init)
        #expect(Set(names) == Set(["/dev/x"] + disk.paths))
        #expect(!line.contains("by-path"))
    }

    @Test func listingEscapesWhatItsLineCannotCarryAndTheSQLViewAgrees() throws {
        // Given a registry edited by hand so that names, values and dependents hold separators and control bytes
        let cli = try CLIHost(sanDisks: 2, multipathMaps: 0)
        #expect(try cli.devmgmt("-a", "gdev:/dev/rdisk/disk1").status == 0)
        #expect(try cli.devmgmt("-a", "gdev:/dev/sdb").status == 0)
        let sql = """
            UPDATE deviceName SET name = '/dev/a' || char(10) || 'b,c:d=e\\f' || char(27) || '[31m' || char(155) WHERE name = '/dev/rdisk/disk1';
            UPDATE device SET name = (SELECT name FROM deviceName WHERE deviceId = device.id AND position = 0);
            INSERT INTO dependent (deviceId, name) SELECT id, 'g,1' || char(7) FROM device WHERE name LIKE '/dev/a%';
            INSERT INTO deviceAttribute (deviceId, name, value) SELECT id, 'USAGE', 'D:I=S,K' FROM device WHERE name LIKE '/dev/a%';
            """
        #expect(try runProcess("/usr/bin/sqlite3", [cli.registryPath, sql]).status == 0)
        // When it is listed
        let listed = try cli.devmgmt("-l", "all")
        // Then each entry is one line, with its fields escaped and no control byte
        #expect(listed.status == 0)
        #expect(listed.lines.count == 2, "\(listed.stdout)")
        #expect(!listed.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x9B })
        let odd = try #require(listed.lines.first { $0.hasPrefix("/dev/a") })
        #expect(odd.hasPrefix(#"/dev/a\x0ab\x2cc\x3ad\x3de\\f\x1b[31m\x9b:CONFIG=gdev,"#), "\(odd)")
        #expect(odd.contains(#"USAGE=D\x3aI\x3dS\x2cK"#) && odd.contains(#":g\x2c1\x07:"#), "\(odd)")
        // and the sqlite3 view prints exactly the same lines
        let views = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("schema/audit.sql").path
        let view = try runProcess("/usr/bin/sqlite3", ["-readonly", cli.registryPath, ".read \(views)", "SELECT line FROM deviceListing;"])
        #expect(view.stdout == listed.stdout)
        // and the JSON keeps the raw names, properly escaped
        let json = try cli.devmgmt("-l", "all", "--json")
        #expect(json.stdout.contains(#""/dev/a\nb,c:d=e\\f\u001b[31m"#) || json.stdout.contains(#""/dev/a\nb,c:d=e\\f\u001B[31m"#), "\(json.stdout)")
    }

    @Test func noCommandEchoesAControlCharacter() throws {
        let cli = try CLIHost(sanDisks: 2, multipathMaps: 0)
        let hostile = "\u{1b}[31mX\nY\u{07}\u{9b}2J"
        let cases: [(String, [String])] = [
            ("hpvmstatus", ["-P", hostile]), ("hpvmstatus", ["-X" + hostile]), ("hpvmstatus", [hostile]),
            ("hpvmcreate", ["-P", "g1", "-a", "disk:avio_stor::disk:/dev/" + hostile]), ("hpvmcreate", ["-P", "g1", "-l", hostile]),
            ("hpvmcreate", ["-P", hostile]), ("hpvmcreate", ["-P", "g1", "-O", hostile]), ("hpvmcreate", ["-P", "g1", "-r", hostile]),
            ("hpvmcreate", ["-P", "g1", "-a", "network:avio_lan::vswitch:" + hostile]),
            ("hpvmmodify", ["-P", hostile, "-c", "2"]), ("hpvmmodify", ["-P", "g1", "-x", hostile + "=1"]),
            ("hpvmremove", ["-P", hostile, "-Q"]), ("hpvmremove", [hostile]),
            ("hpvmhostrdev", ["-z" + hostile]), ("hpvmhostrdev", [hostile]),
            ("hpvmdevmgmt", ["-a", "gdev:/dev/" + hostile]), ("hpvmdevmgmt", ["-l", "gdev:" + hostile]),
            ("hpvmdevmgmt", ["-q" + hostile]), ("hpvmdevmgmt", ["-S", "1M", "/hpvm/disks/" + hostile]),
            ("hpvmmigrate", ["-P", hostile, "-h", "h"]), ("hpvmmigrate", ["-P", "g1", "-h", hostile]), ("hpvmmigrate", ["-z" + hostile]),
        ]
        for (tool, arguments) in cases {
            let result = try cli.run(tool, arguments)
            let output = result.stdout + result.stderr
            #expect(result.status != 0, "\(tool) \(arguments)")
            #expect(!output.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || $0.value == 0x7F || (0x80..<0xA0).contains($0.value) },
                "\(tool) \(arguments.map { Display.safe($0) }) echoed a control character: \(Display.safe(output, limit: 300))")
            #expect(!output.contains("\nY"), "\(tool): a line was forged")
        }
    }

    @Test func theRepairScriptLeavesThePathsOfAPartitionAlone() throws {
        // Given partition 1 of a LUN reached by two paths, registered by both, and a by-id name of it
        let cli = try CLIHost(sanDisks: 0, multipathMaps: 0)
        let layout = try HostBuilder.make(at: cli.host, aliasedSANDisks: 1, wwidSeed: 40)
        let lun = layout.aliasedDisks[0]
        let first = try cli.host.partition(of: lun.names[0], number: 1)
        let second = try cli.host.partition(of: lun.names[1], number: 1)
        try cli.host.link("/dev/disk/by-id/wwn-0x\(lun.wwid!.dropFirst(4))-part1", to: "/dev/\(first)")
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/\(first)").status == 0)
        #expect(try cli.devmgmt("-a", "gdev:/dev/\(second)").status == 0)
        #expect(try cli.devmgmt("-a", "gdev:/dev/disk/by-id/wwn-0x\(lun.wwid!.dropFirst(4))-part1").status == 0)
        // Then both paths of the partition are one entry, and the same storage as g1's
        let entries = try cli.devmgmt("-l", "gdev").lines
        #expect(entries.count == 1, "\(entries)")
        let other = try cli.tool("hpvmcreate", "-P", "g2", "-a", "disk:avio_stor::disk:/dev/\(second)")
        #expect(other.status == 1 && other.stderr.contains("used by g1"))
        // When the repair script is written and a rescan runs, nothing is proposed and nothing lost
        let script = try cli.devmgmt("-r").stdout
        #expect(script.contains("# Nothing to repair."), "\(script)")
        #expect(!script.contains("gdev_alias"))
        #expect(try cli.devmgmt("-I").status == 0)
        #expect(try cli.devmgmt("-l", "gdev").lines == entries)
    }
}
