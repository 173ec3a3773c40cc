import Testing
@testable import Runtime

@Suite struct JSONValueTests {
    @Test func readsQMPsMessages() throws {
        let greeting = try JSONValue.parse(
            #"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}"#)
        #expect(greeting["QMP"]?["version"]?["qemu"]?["major"]?.int == 7)
        let status = try JSONValue.parse(#"{"return": {"status": "running", "singlestep": false, "running": true}}"#)
        #expect(status["return"]?["status"]?.string == "running" && status["return"]?["running"]?.bool == true)
        let error = try JSONValue.parse(#"{"error": {"class": "GenericError", "desc": "it \"failed\"\n\u00e9\ud83d\ude00"}}"#)
        #expect(error["error"]?["desc"]?.string == "it \"failed\"\né😀")
    }

    @Test func writesOneLineThatReadsBack() throws {
        let value = JSONValue.object([
            ("execute", .string("getfd")), ("arguments", .object([("fdname", .string("a\"b\\c\n\u{1}"))])), ("n", .number(3)),
            ("list", .array([.null, .bool(false), .number(1.5)])),
        ])
        let text = value.description
        #expect(!text.contains("\n"))
        #expect(try JSONValue.parse(text) == value)
    }

    @Test(arguments: ["", "{", #"{"a" 1}"#, "[1,]", #""\x""#, "tru", "{} x", String(repeating: "[", count: 100), "\"\u{1}\"", "1e999"])
    func refusesWhatIsNotOneDocument(_ text: String) {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(text) }
    }
}
