import ArgumentParser
import Testing
@testable import DevMgmt

/// The fast reader of common command lines must agree with ArgumentParser, which defines them.
@Suite struct FastArgumentsTests {
    static let common: [[String]] = [
        ["-a", "rdev:/dev/rdisk/disk3"], ["-a", "gdev:/iso/a.iso:attr:USAGE=DVD"], ["-V", "-a", "gdev:vsw1"],
        ["-d", "gdev:/dev/rdisk/disk7"], ["-d", "gdev:all:depend:g1"], ["-d", "gdev_alias:/dev/sdc"],
        ["-m", "gdev:/dev/rdisk/disk7:attr:SHARE=YES"], ["-m", "rdev:/dev/sdb:IGNOREWWID=YES"], ["-a", "x", "-V"],
        ["-n", "gdev:/dev/rdisk/disk7:/dev/rdisk/disk9"], ["-l", "all"], ["-v", "-l", "all"], ["-l", "rdev", "--json"],
        ["--json", "-V", "-l", "gdev:SHARE=YES"], ["-I"], ["-I", "-V"], ["-r"], ["-v", "-r"], ["-a", "foo:bar"],
        ["-a", "rdev:/dev/sdf", "-a", "rdev:/dev/sdg"], ["-m", "gdev:/a:attr:SHARE=YES", "-V", "-m", "gdev:/b:attr:SHARE=YES"],
        ["-v"], ["-v", "-V"],
    ]

    @Test(arguments: common)
    func commonShapesAreReadAsArgumentParserReadsThem(arguments: [String]) throws {
        let fast = try #require(FastArguments.parse(arguments))
        let parsed = try HPVMDevMgmt.parse(arguments)
        #expect(fast == parsed.invocation)
    }

    static let others: [[String]] = [
        [], ["-V"], ["--json", "-v"], ["-v", "-v"], ["-h"], ["--help"], ["--version"], ["-S", "2G", "/x"], ["-A", "-S", "2G", "/x"],
        ["-a"], ["-a", "-V"], ["-a", "x", "-d", "y"], ["-l", "all", "-l", "rdev"], ["-a", "x", "-l", "all"], ["-I", "-r"], ["-V", "-V", "-I"], ["-l", "all", "extra"],
        ["--json", "-I"], ["-a=x"], ["-ax"], ["-z"], ["--", "-a", "x"], ["-a", ""],
    ]

    @Test(arguments: others)
    func everythingElseGoesToArgumentParser(arguments: [String]) {
        #expect(FastArguments.parse(arguments) == nil)
    }
}
