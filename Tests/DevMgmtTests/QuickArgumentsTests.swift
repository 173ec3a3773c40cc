import ArgumentParser
import HPVMCLI
import Testing
@testable import Create

/// hpvmcreate's quick reader must read common command lines exactly as ArgumentParser does.
@Suite struct QuickArgumentsTests {
    static let common: [[String]] = [
        ["-P", "g1"], ["-P", "g1", "-V"], ["-V", "-P", "g1", "-c", "2", "-r", "4G", "-O", "hpux", "-l", "web server"],
        ["-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1", "-a", "network:avio_lan::vswitch:vsw1"],
        ["-a", "dvd:avio_stor::file:/iso/a.iso", "-P", "g2", "-c", "1"],
    ]

    @Test(arguments: common)
    func commonCreateLinesAgree(arguments: [String]) throws {
        let quick = try #require(HPVMCreate.quick.read(arguments))
        let parsed = try HPVMCreate.parse(arguments)
        #expect(quick["-P"] == [parsed.name])
        #expect((quick["-a"] ?? []) == parsed.add)
        #expect(quick["-c"]?.first == parsed.vcpus)
        #expect(quick["-r"]?.first == parsed.memory)
        #expect(quick["-l"]?.first == parsed.label)
        #expect(quick["-O"]?.first == parsed.osType)
        #expect((quick["-V"] != nil) == parsed.verbose)
    }

    static let others: [[String]] = [
        [], ["-h"], ["--help"], ["-P"], ["-P", "-V"], ["-P", "a", "-P", "b"], ["-V", "-V", "-P", "g"], ["-Pg1"],
        ["--name", "g1"], ["-P", "g1", "extra"], ["-P", "g1", "-x", "1"], ["-P", "g1", "-a", ""],
    ]

    @Test(arguments: others)
    func everythingElseGoesToArgumentParser(arguments: [String]) {
        let quick = HPVMCreate.quick.read(arguments)
        // Either not read at all, or read without -P (which main then hands to ArgumentParser too).
        #expect(quick == nil || quick?["-P"] == nil)
    }
}
