import Foundation
import HPVMTestSupport
import Host
import Registry
import Testing

extension CLIHost {
    @discardableResult
    func tool(_ name: String, _ arguments: String...) throws -> CommandResult { try run(name, arguments) }
}

/// hpvm-reference.md (e) examples 2-10 and 21, through the real guest commands.
@Suite struct GuestExampleTests {
    @Test func example2ARestrictedDiskIsRefused() throws {
        let cli = try CLIHost()
        #expect(try cli.devmgmt("-a", "rdev:/dev/rdisk/disk3").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g1").status == 0)
        let before = try cli.registryBytes()
        let refused = try cli.tool("hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk3")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("cannot give guest g1 /dev/rdisk/disk3: it is restricted, rdev entry /dev/rdisk/disk3."))
        #expect(try cli.registryBytes() == before)
    }

    @Test func example3RecursiveRestriction() throws {
        let cli = try CLIHost()
        try cli.host.file("/hpvm/private/x.img", contents: "x")
        try cli.host.mountVirtual(at: "/hpvm/private/other")
        try cli.host.file("/hpvm/private/other/y.img", contents: "y")
        #expect(try cli.devmgmt("-a", "rdev:/hpvm/private:attr:RECURSIVE=FS").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g1").status == 0)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::file:/hpvm/private/x.img").status == 1)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::file:/hpvm/private/other/y.img").status == 0)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-d", "disk:avio_stor::file:/hpvm/private/other/y.img").status == 0)
        #expect(try cli.devmgmt("-m", "rdev:/hpvm/private:attr:RECURSIVE=DIR").status == 0)
        let refused = try cli.tool("hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::file:/hpvm/private/other/y.img")
        #expect(refused.status == 1 && refused.stderr.contains("RECURSIVE=DIR"))
    }

    @Test func examples4To8And10WithRealGuests() throws {
        let cli = try CLIHost()
        try cli.host.file("/iso/hpux.iso", contents: "iso")
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk7").status == 0)
        // 4: an entry with dependents cannot be deleted
        #expect(try cli.devmgmt("-d", "gdev:/dev/rdisk/disk7").status == 1)
        // 6: sharing
        #expect(try cli.devmgmt("-m", "gdev:/dev/rdisk/disk7:attr:SHARE=YES").status == 0)
        #expect(try cli.devmgmt("-l", "gdev:SHARE=YES").stdout.hasPrefix("/dev/rdisk/disk7:"))
        // 8: USAGE only on files
        #expect(try cli.devmgmt("-m", "gdev:/dev/rdisk/disk7:attr:USAGE=DISK").status != 0)
        // 7: PRESERVE keeps the ISO after hpvmmodify -d; without it the entry goes
        #expect(try cli.devmgmt("-a", "gdev:/iso/hpux.iso:attr:USAGE=DVD").status == 0)
        #expect(try cli.devmgmt("-m", "gdev:/iso/hpux.iso:attr:PRESERVE=YES").status == 0)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-a", "dvd:avio_stor::file:/iso/hpux.iso").status == 0)
        #expect(try cli.devmgmt("-l", "gdev:/iso/hpux.iso").stdout.contains(":g1:"))
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-d", "dvd:avio_stor::file:/iso/hpux.iso").status == 0)
        #expect(try cli.devmgmt("-l", "gdev:/iso/hpux.iso").lines == ["/iso/hpux.iso:CONFIG=gdev,EXIST=YES,DEVTYPE=FILE,SHARE=NO,USAGE=DVD,PRESERVE=YES::"])
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk5").status == 0)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-d", "disk:avio_stor::disk:/dev/rdisk/disk5").status == 0)
        #expect(try cli.devmgmt("-l", "gdev:/dev/rdisk/disk5").stdout == "")
        // 10: replacing the device rewrites g1's statement
        #expect(try cli.devmgmt("-n", "gdev:/dev/rdisk/disk7:/dev/rdisk/disk9").status == 0)
        #expect(try cli.tool("hpvmstatus", "-P", "g1", "-d").lines == ["disk:avio_stor:0,0,0:disk:/dev/rdisk/disk9"])
        // 5: the dependent stays while g1 has the disk (dependents never drift from the resources)
        #expect(try cli.devmgmt("-d", "gdev:/dev/rdisk/disk9:depend:g1").status == 1)
        #expect(try cli.tool("hpvmstatus", "-P", "g1", "-d").lines == ["disk:avio_stor:0,0,0:disk:/dev/rdisk/disk9"])
    }

    @Test func example9ASecondGuestNeedsShareYes() throws {
        // Guests are defined, not run, here: the sharing rule is checked when a guest is given the device.
        let cli = try CLIHost()
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk8").status == 0)
        let refused = try cli.tool("hpvmcreate", "-P", "g2", "-a", "disk:avio_stor::disk:/dev/sdh")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("the same device (WWID") && refused.stderr.contains("used by g1 and not SHARE=YES"))
        #expect(try cli.devmgmt("-m", "gdev:/dev/rdisk/disk8:attr:SHARE=YES").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g2", "-a", "disk:avio_stor::disk:/dev/rdisk/disk8").status == 0)
        #expect(try cli.devmgmt("-l", "gdev:/dev/rdisk/disk8").stdout.contains(":g1,g2:"))
    }

    @Test func example21NotRunnableAndBackAgain() throws {
        let cli = try CLIHost()
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1").status == 0)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-x", "register_status=disabled").status == 0)
        #expect(try cli.tool("hpvmstatus").stdout.contains("g1                       1 UNKNOWN Off (NR)"))
        let refused = try cli.tool("hpvmmodify", "-P", "g1", "-c", "2")
        #expect(refused.status == 1 && refused.stderr.contains("Not Modify"))
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-x", "register_status=enabled").status == 0)
        let verbose = try cli.tool("hpvmstatus", "-P", "g1", "-V").stdout
        #expect(verbose.contains("State:                Off\n"))
        #expect(verbose.contains("Runnable status:      Runnable") && verbose.contains("Modify status:        Modify")
            && verbose.contains("Visible status:       Visible"))
    }

    @Test func statusRoundTripsThroughCreate() throws {
        // hpvmstatus -d and -M of one guest re-create the same guest with hpvmcreate
        let cli = try CLIHost()
        #expect(try cli.tool(
            "hpvmcreate", "-P", "g1", "-c", "2", "-r", "3G", "-O", "linux", "-l", "web front end",
            "-a", "disk:avio_stor::disk:/dev/rdisk/disk1", "-a", "disk:scsi:1,2,3:disk:/dev/rdisk/disk2",
            "-a", "network:avio_lan::vswitch:vsw1", "-a", "network:lan:2,0,0x02AABBCCDDEE:vswitch:vsw1").status == 0)
        #expect(try cli.devmgmt("-m", "gdev:/dev/rdisk/disk1:attr:SHARE=YES").status == 0)
        #expect(try cli.devmgmt("-m", "gdev:/dev/rdisk/disk2:attr:SHARE=YES").status == 0)
        let statements = try cli.tool("hpvmstatus", "-P", "g1", "-d").lines
        let fields = try #require(try cli.tool("hpvmstatus", "-M").lines.first).split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        #expect(fields.count == 21 && fields[10] == "Off" && fields[11] == "Manual")
        // MACs are unique on a host, so the copy gets the networks without them
        let copy = statements.map { $0.hasPrefix("network:") ? $0.replacingOccurrences(of: #",0x[0-9A-F]{12}"#, with: "", options: .regularExpression) : $0 }
        var arguments = ["-P", "g2", "-c", fields[6], "-r", fields[7] + "M", "-O", fields[2], "-l", fields[12]]
        for statement in copy { arguments += ["-a", statement] }
        let created = try cli.run("hpvmcreate", arguments)
        #expect(created.status == 0, "\(created.stderr)")
        let again = try cli.tool("hpvmstatus", "-P", "g2", "-d").lines
        #expect(again.map(strippingMAC) == statements.map(strippingMAC))
        let fields2 = try #require(try cli.tool("hpvmstatus", "-M").lines.last).split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        #expect(Array(fields2.dropFirst(2)) == Array(fields.dropFirst(2)))
    }

    func strippingMAC(_ statement: String) -> String {
        statement.replacingOccurrences(of: #",0x[0-9A-F]{12}"#, with: "", options: .regularExpression)
    }

    @Test func removeAsksAndReleasesDevices() throws {
        let cli = try CLIHost()
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1").status == 0)
        let no = try runProcess(
            "/bin/sh", ["-c", "echo n | \"$0\" -P g1", binDirectory + "/hpvmremove"], environment: ["HPVM_ROOT": cli.root])
        #expect(no.status == 1 && no.stderr.contains("g1 was not removed"))
        #expect(try cli.tool("hpvmremove", "-P", "g1", "-Q").status == 0)
        #expect(try cli.tool("hpvmstatus", "-M").stdout == "")
        #expect(try cli.devmgmt("-l", "gdev").stdout == "")
        // A Not Modify guest needs -F
        #expect(try cli.tool("hpvmcreate", "-P", "g2").status == 0)
        #expect(try cli.tool("hpvmmodify", "-P", "g2", "-x", "modify_status=disabled").status == 0)
        #expect(try cli.tool("hpvmremove", "-P", "g2", "-Q").status == 1)
        #expect(try cli.tool("hpvmremove", "-p", "1", "-Q", "-F").status == 0)
    }
}

/// Every refusal of DESIGN.md §4 for guests: the message names the device, the alias it came in
/// by, and the guest or rule in the way; the registry is unchanged.
@Suite struct GuestRefusalTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let arguments: [String]
        let message: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "restricted by its rdisk name", arguments: ["hpvmcreate", "-P", "g3", "-a", "disk:avio_stor::disk:/dev/rdisk/disk3"],
             message: "cannot give guest g3 /dev/rdisk/disk3: it is restricted, rdev entry /dev/rdisk/disk3."),
        Case(name: "restricted through another path", arguments: ["hpvmcreate", "-P", "g3", "-a", "disk:avio_stor::disk:/dev/sdc"],
             message: "cannot give guest g3 /dev/sdc: it is restricted, the same device (WWID 6005-08b4-0001-15d0-0000-0000-0000-0003) as rdev entry /dev/rdisk/disk3."),
        Case(name: "restricted multipath map through its SCSI path", arguments: ["hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/sdl"],
             message: "as rdev entry /dev/mapper/mpatha"),
        Case(name: "under a RECURSIVE directory", arguments: ["hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::file:/hpvm/private/x.img"],
             message: "cannot give guest g1 /hpvm/private/x.img: it is restricted, under /hpvm/private on the same file system (rdev, RECURSIVE=FS)."),
        Case(name: "used by another guest", arguments: ["hpvmcreate", "-P", "g3", "-a", "disk:avio_stor::disk:/dev/sda"],
             message: "cannot give guest g3 /dev/sda: it is the same device (WWID 6005-08b4-0001-15d0-0000-0000-0000-0001) as gdev entry /dev/rdisk/disk1, used by g1 and not SHARE=YES."),
        Case(name: "a Not Modify guest", arguments: ["hpvmmodify", "-P", "g2", "-a", "disk:avio_stor::disk:/dev/rdisk/disk4"],
             message: "guest g2 is Not Modify; the only change it accepts is -x modify_status=enabled"),
        Case(name: "name taken", arguments: ["hpvmcreate", "-P", "g1"], message: "a guest named g1 already exists."),
        Case(name: "rename onto a taken name", arguments: ["hpvmmodify", "-P", "g1", "-N", "g2"], message: "cannot rename g1 to g2: a guest of that name exists."),
        Case(name: "address taken", arguments: ["hpvmmodify", "-P", "g1", "-a", "disk:avio_stor:0,0,0:disk:/dev/rdisk/disk4"],
             message: "address 0,0,0 is taken by disk:avio_stor:0,0,0:disk:/dev/rdisk/disk1"),
        Case(name: "slot taken by a network", arguments: ["hpvmmodify", "-P", "g1", "-a", "disk:avio_stor:0,1,0:disk:/dev/rdisk/disk4"],
             message: "slot 0,1 is taken by network:avio_lan:0,1,"),
        Case(name: "MAC taken", arguments: ["hpvmcreate", "-P", "g3", "-a", "network:avio_lan:0,1,0x02AABBCCDDEE:vswitch:vsw1"],
             message: "MAC 0x02AABBCCDDEE: guest g1 has it."),
        Case(name: "wrong storage type", arguments: ["hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::file:/dev/rdisk/disk4"],
             message: "/dev/rdisk/disk4 is DISK, not what storage type 'file' needs."),
        Case(name: "no such device", arguments: ["hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk99"],
             message: "/dev/rdisk/disk99 does not exist on this host."),
        Case(name: "no such vswitch", arguments: ["hpvmmodify", "-P", "g1", "-a", "network:avio_lan::vswitch:vsw9"],
             message: "no vswitch named vsw9 exists on this host."),
        Case(name: "no such guest", arguments: ["hpvmmodify", "-P", "g9", "-c", "2"], message: "no guest named g9."),
        Case(name: "restricting a used disk", arguments: ["hpvmdevmgmt", "-a", "rdev:/dev/sda"],
             message: "cannot restrict /dev/sda: it is the same device (WWID 6005-08b4-0001-15d0-0000-0000-0000-0001) as gdev entry /dev/rdisk/disk1, used by guest g1."),
    ]

    @Test(arguments: cases)
    func refusedWithTheReasonAndNothingChanged(_ refusal: Case) throws {
        // Given g1 on disk1 with a network with a fixed MAC, Not Modify g2, and restrictions
        let cli = try CLIHost(sanDisks: 10, multipathMaps: 1)
        try cli.host.file("/hpvm/private/x.img", contents: "x")
        for command in [
            ["hpvmdevmgmt", "-a", "rdev:/dev/rdisk/disk3"], ["hpvmdevmgmt", "-a", "rdev:/dev/mapper/mpatha"],
            ["hpvmdevmgmt", "-a", "rdev:/hpvm/private:attr:RECURSIVE=FS"],
            ["hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1", "-a", "network:avio_lan:0,1,0x02AABBCCDDEE:vswitch:vsw1"],
            ["hpvmcreate", "-P", "g2"], ["hpvmmodify", "-P", "g2", "-x", "modify_status=disabled"],
        ] {
            let setup = try cli.run(command[0], Array(command.dropFirst()))
            #expect(setup.status == 0, "\(command): \(setup.stderr)")
        }
        let before = try cli.registryBytes()
        // When the refused command runs
        let result = try cli.run(refusal.arguments[0], Array(refusal.arguments.dropFirst()))
        // Then it exits 1 naming what is in the way, and nothing changed
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix(refusal.arguments[0] + ": "))
        #expect(result.stderr.contains(refusal.message), "\(result.stderr)")
        #expect(try cli.registryBytes() == before)
    }
}

@Suite struct GuestBadInputTests {
    static let cases: [[String]] = [
        ["hpvmcreate", "-P", "g;rm -rf /"], ["hpvmcreate", "-P", "g$(touch PWNED)"], ["hpvmcreate", "-P", "g 1"],
        ["hpvmcreate", "-P", "g\n1"], ["hpvmcreate", "-P", String(repeating: "g", count: 300)], ["hpvmcreate", "-P", "-g"],
        ["hpvmcreate", "-P", "g3", "-c", "0"], ["hpvmcreate", "-P", "g3", "-c", "two"], ["hpvmcreate", "-P", "g3", "-r", "2X"],
        ["hpvmcreate", "-P", "g3", "-r", "99999999G"], ["hpvmcreate", "-P", "g3", "-l", "a:b"], ["hpvmcreate", "-P", "g3", "-O", "h p"],
        ["hpvmcreate", "-P", "g3", "-a", "disk:avio_stor::disk"], ["hpvmcreate", "-P", "g3", "-a", "tape:avio_stor::disk:/dev/rdisk/disk1"],
        ["hpvmcreate", "-P", "g3", "-a", "disk:ide::disk:/dev/rdisk/disk1"], ["hpvmcreate", "-P", "g3", "-a", "disk:scsi:7,0,0:disk:/dev/rdisk/disk1"],
        ["hpvmcreate", "-P", "g3", "-a", "disk:scsi:0,0,15:disk:/dev/rdisk/disk1"], ["hpvmcreate", "-P", "g3", "-a", "disk:scsi:a,b,c:disk:/dev/rdisk/disk1"],
        ["hpvmcreate", "-P", "g3", "-a", "disk:avio_stor::null:/dev/rdisk/disk1"], ["hpvmcreate", "-P", "g3", "-a", "network:avio_lan::vswitch:/dev/sda"],
        ["hpvmcreate", "-P", "g3", "-a", "network:avio_lan:0,1,0x01AABBCCDDEE:vswitch:vsw1"], ["hpvmcreate", "-P", "g3", "-a", "disk:avio_stor::disk:/dev/../etc/passwd"],
        ["hpvmmodify", "-P", "g1", "-x", "runnable_status=maybe"], ["hpvmmodify", "-P", "g1", "-x", "color=red"], ["hpvmmodify", "-P", "g1"],
        ["hpvmmodify", "-P", "g1", "-p", "1", "-c", "2"], ["hpvmmodify", "-P", "g1", "-m", "disk:avio_stor::disk:/dev/rdisk/disk2"],
        ["hpvmremove"], ["hpvmstatus", "-d"], ["hpvmstatus", "-M", "--json"], ["hpvmstatus", "-P", "g 1"],
    ]

    @Test(arguments: cases)
    func badInputIsRefusedAndChangesNothing(_ arguments: [String]) throws {
        let cli = try CLIHost(sanDisks: 2, multipathMaps: 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1").status == 0)
        let before = try cli.registryBytes()
        let result = try runProcess(binDirectory + "/" + arguments[0], Array(arguments.dropFirst()), environment: ["HPVM_ROOT": cli.root], directory: cli.root)
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix(arguments[0] + ": "), "\(result.stderr)")
        #expect(!result.stderr.contains("\n\n\n"))
        #expect(try cli.registryBytes() == before)
        #expect(!FileManager.default.fileExists(atPath: cli.root + "/PWNED"))
    }
}
