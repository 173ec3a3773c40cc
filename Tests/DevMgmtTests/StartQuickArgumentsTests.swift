import ArgumentParser
import HPVMCLI
import Testing
@testable import StartCommand

/// hpvmstart's quick reader must read its common command lines exactly as ArgumentParser does.
@Suite struct StartQuickArgumentsTests {
    static let common: [[String]] = [["-P", "g1"], ["-P", "g1", "-V"], ["-s", "-P", "web.1"], ["-V", "-s", "-P", "g_2"]]

    @Test(arguments: common)
    func commonStartLinesAgree(arguments: [String]) throws {
        let quick = try #require(HPVMStart.quick.read(arguments))
        let parsed = try HPVMStart.parse(arguments)
        #expect(quick["-P"] == [try #require(parsed.name)])
        #expect(parsed.number == nil)
        #expect((quick["-s"] != nil) == parsed.checkOnly)
        #expect((quick["-V"] != nil) == parsed.verbose)
    }

    static let others: [[String]] = [
        [], ["-h"], ["--help"], ["-P"], ["-P", "-V"], ["-P", "a", "-P", "b"], ["-s", "-s", "-P", "g"], ["-Pg1"], ["-p", "1"],
        ["-P", "g1", "-p", "1"], ["-P", "g1", "extra"], ["-P", "g1", "-x"], ["-P", ""],
    ]

    @Test(arguments: others)
    func everythingElseGoesToArgumentParser(arguments: [String]) {
        let quick = HPVMStart.quick.read(arguments)
        // Either not read at all, or read without -P (which main then hands to ArgumentParser too).
        #expect(quick == nil || quick?["-P"] == nil)
    }
}
