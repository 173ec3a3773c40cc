import Foundation
import HPVMTestSupport
import Registry
import Testing

@testable import Migration

/// Issue 8 row 8: every protocol message is decoded strictly.
struct ProtocolDecoderTests {
    static let package = GuestPackage(
        name: "g1", vcpus: 1, memoryMB: 1024, label: nil, osType: nil,
        resources: [MigratingResource(statement: "disk:avio_stor:0,0,0:disk:/dev/rdisk/disk1", wwid: nil, transport: nil, kind: "disk", shared: false)],
        overrides: [nil], translate: false, copies: [false], networks: [:])

    static var validRequests: [String] {
        var copy = MigrationRequest(type: "copy", migrationID: "m")
        copy.path = "/x"
        copy.size = 10
        var data = MigrationRequest(type: "data", migrationID: "m")
        data.offset = 0
        data.length = 10
        var end = MigrationRequest(type: "end", migrationID: "m")
        end.sha256 = "00"
        return [
            MigrationRequest(type: "hello", version: 1, sourceHost: "a"),
            MigrationRequest(type: "check", migrationID: "m", sourceHost: "a", guest: package),
            MigrationRequest(type: "prepare", migrationID: "m", sourceHost: "a", guest: package),
            MigrationRequest(type: "commit", migrationID: "m", sourceHost: "a", guest: package),
            MigrationRequest(type: "abort", migrationID: "m", sourceHost: "a", guest: package),
            MigrationRequest(type: "status", migrationID: "m", sourceHost: "a"),
            copy, data, end, MigrationRequest(type: "bye"),
        ].map(JSONLine.encode)
    }

    /// (reply line, the request it answers)
    static var validReplies: [(String, RequestType)] {
        var hello = MigrationReply(type: "hello")
        hello.version = 1
        hello.host = "b"
        var report = MigrationReply(type: "report")
        report.errors = []
        report.warnings = []
        report.map = ["disk:avio_stor:0,0,0:disk:/dev/rdisk/disk1"]
        report.host = "b"
        var status = MigrationReply(type: "status")
        status.phase = .prepared
        var copied = MigrationReply(type: "copied")
        copied.sha256 = "00"
        var error = MigrationReply(type: "error")
        error.message = "no"
        return [
            (JSONLine.encode(hello), .hello), (JSONLine.encode(report), .check), (JSONLine.encode(status), .status),
            (JSONLine.encode(copied), .end), (JSONLine.encode(MigrationReply(type: "prepared")), .prepare),
            (JSONLine.encode(MigrationReply(type: "committed")), .commit), (JSONLine.encode(MigrationReply(type: "aborted")), .abort),
            (JSONLine.encode(MigrationReply(type: "copying")), .copy), (JSONLine.encode(error), .commit),
        ]
    }

    @Test func everyValidMessageDecodes() throws {
        for line in Self.validRequests { _ = try ProtocolDecoder.request(line) }
        for (line, request) in Self.validReplies { _ = try ProtocolDecoder.reply(line, to: request) }
    }

    @Test func aReportWithoutMapAndAnyAnswerButCommittedToCommitAreRefused() {
        #expect(throws: ProtocolViolation.self) {
            try ProtocolDecoder.reply(#"{"type":"report","errors":[],"warnings":[],"host":"b"}"#, to: .check)
        }
        for other in ["prepared", "aborted", "status", "bye", "report", "hello", "ok"] {
            #expect(throws: ProtocolViolation.self, "\(other)") { try ProtocolDecoder.reply(#"{"type":"\#(other)"}"#, to: .commit) }
        }
        #expect(throws: ProtocolViolation.self) { try ProtocolDecoder.reply(#"{"type":"error"}"#, to: .commit) }
        #expect(throws: ProtocolViolation.self) { try ProtocolDecoder.reply(#"{"type":"status","phase":"whatever"}"#, to: .status) }
        #expect(throws: ProtocolViolation.self) { try ProtocolDecoder.request(#"{"type":"launch"}"#) }
        #expect(throws: ProtocolViolation.self) { try ProtocolDecoder.request(#"{"type":"copy","migrationID":"m","path":"/x","size":"10"}"#) }
    }

    /// Seeded fuzzing: random and mutated lines never crash the decoder; a line that lost a field
    /// its type needs, or whose type or a field's JSON type changed, is always refused.
    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func mutatedLinesAreRefusedAndNothingCrashes(_ seed: UInt64) throws {
        var random = SplitMix(seed: seed)
        let replies = Self.validReplies
        for _ in 0..<400 {
            // Structural mutation: drop one field, or give it another JSON type, or an unknown type.
            let isRequest = random.next() % 2 == 0
            let (line, answering): (String, RequestType) =
                isRequest ? (Self.validRequests[Int(random.next() % UInt64(Self.validRequests.count))], .bye)
                : replies[Int(random.next() % UInt64(replies.count))]
            var object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let keys = object.keys.sorted()
            let key = keys[Int(random.next() % UInt64(keys.count))]
            let required = Self.isRequired(key, in: object, request: isRequest)
            switch random.next() % 3 {
            case 0 where required:
                object[key] = nil
            case 1 where required || key == "type":
                object[key] = (object[key] is String) ? 12 as Any : "text" as Any
            default:
                object["type"] = ["launch", "", "Hello", "committed ", "\u{1}"][Int(random.next() % 5)]
            }
            let mutated = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
            if isRequest {
                #expect(throws: ProtocolViolation.self, "\(mutated)") { try ProtocolDecoder.request(mutated) }
            } else {
                #expect(throws: ProtocolViolation.self, "\(mutated)") { try ProtocolDecoder.reply(mutated, to: answering) }
            }
            // Byte mutation: flips, truncation, junk; it may decode or not, but never crashes and
            // never yields an unknown type.
            var bytes = Array(line.utf8)
            for _ in 0..<(1 + random.next() % 4) {
                let at = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes = Array(bytes[..<at])
                default: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: at)
                }
                if bytes.isEmpty { bytes = [0x7b] }
            }
            let junk = String(decoding: bytes, as: UTF8.self)
            if let request = try? ProtocolDecoder.request(junk) { #expect(RequestType(rawValue: request.type) != nil) }
            if let reply = try? ProtocolDecoder.reply(junk, to: answering) { #expect(ReplyType(rawValue: reply.type) != nil) }
        }
    }

    /// The design step: commit and abort name the guest; no made-up guest carries its name.
    @Test func commitAndAbortCarryTheGuestsNameAndNothingElse() throws {
        for type in ["commit", "abort"] {
            let request = try ProtocolDecoder.request(#"{"type":"\#(type)","migrationID":"m","guestName":"g1"}"#)
            #expect(request.targetGuestName == "g1" && request.guest == nil)
            #expect(throws: ProtocolViolation.self) { try ProtocolDecoder.request(#"{"type":"\#(type)","migrationID":"m"}"#) }
            #expect(throws: ProtocolViolation.self) { try ProtocolDecoder.request(#"{"type":"\#(type)","migrationID":"m","guestName":""}"#) }
        }
        // A phase a status may report is one of the journal's; any other is refused
        for phase in MigrationPhase.allCases {
            let reply = try ProtocolDecoder.reply(#"{"type":"status","phase":"\#(phase.rawValue)"}"#, to: .status)
            #expect(reply.phase == phase)
        }
        #expect(throws: ProtocolViolation.self) { try ProtocolDecoder.reply(#"{"type":"status","phase":"Prepared"}"#, to: .status) }
    }

    @Test func aLineOverTheLimitIsRefused() {
        let line = #"{"type":"bye","path":""# + String(repeating: "x", count: ProtocolDecoder.lineLimit) + #""}"#
        #expect(throws: ProtocolViolation.self) { try ProtocolDecoder.request(line) }
    }

    /// The fields each message type needs (what the mutation may drop or retype and be refused for).
    static func isRequired(_ key: String, in object: [String: Any], request: Bool) -> Bool {
        let type = object["type"] as? String ?? ""
        if key == "type" { return true }
        let needs: [String: Set<String>] =
            request
            ? ["hello": ["version"], "check": ["migrationID", "sourceHost", "guest"], "prepare": ["migrationID", "sourceHost", "guest"],
               "commit": ["migrationID", "guest"], "abort": ["migrationID", "guest"], "status": ["migrationID"],
               "copy": ["migrationID", "path", "size"], "data": ["offset", "length"], "end": ["sha256"]]
            : ["hello": ["version"], "report": ["errors", "warnings", "map"], "status": ["phase"], "copied": ["sha256"], "error": ["message"]]
        return needs[type]?.contains(key) == true
    }
}

/// A small seeded generator (SplitMix64), so a failing seed replays.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Row 8 end to end: a target that answers with a well-formed but incomplete or wrong message.
@Suite(.requiresRootAndSSHD, .serialized) struct StrictProtocolTests {
    func fakeTarget(_ hosts: TwoHosts, _ replies: [String]) throws -> String {
        let script = hosts.scratch + "/fake.sh"
        try ("#!/bin/sh\n" + replies.map { "read line\necho '\($0)'\n" }.joined()).write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        return script
    }

    @Test func aReportWithoutMapIsAProtocolErrorAndTheMigrationRollsBack() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        let script = try fakeTarget(
            hosts,
            [#"{"type":"hello","version":1,"host":"b"}"#, #"{"type":"report","errors":[],"warnings":[],"host":"b"}"#,
             #"{"type":"prepared"}"#, #"{"type":"committed"}"#, #"{"type":"bye"}"#])
        let result = try hosts.migrate("-P", "g1", environment: ["HPVM_REMOTE_COMMAND": script])
        #expect(result.status == 1)
        #expect(result.stderr.contains("not hpvmmigrate's protocol"), "\(result.stderr)")
        #expect(!result.stdout.contains("successfully"))
        #expect(try hosts.runnable("A", "g1") == true)
        #expect(try hosts.on("A", "hpvmstatus", ["-P", "g1", "-V"]).stdout.contains("Migration:            -"))
    }

    @Test func onlyCommittedCountsAsACommit() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        let script = try fakeTarget(
            hosts,
            [#"{"type":"hello","version":1,"host":"b"}"#,
             #"{"type":"report","errors":[],"warnings":[],"host":"b","map":["disk:avio_stor:0,0,0:disk:/dev/rdisk/disk1"]}"#,
             #"{"type":"prepared"}"#, #"{"type":"aborted"}"#, #"{"type":"bye"}"#])
        let result = try hosts.migrate("-P", "g1", environment: ["HPVM_REMOTE_COMMAND": script])
        #expect(result.status == 1)
        #expect(!result.stdout.contains("successfully"))
        #expect(result.stderr.contains("hpvmmigrate --recover -P g1"), "\(result.stderr)")
        // Past the point of no return: Not Runnable here, finished (or reported) by recovery.
        #expect(try hosts.runnable("A", "g1") == false)
    }
}

/// The design step end to end: recovery names the guest to the target, and sends no made-up guest.
@Suite(.requiresRootAndSSHD, .serialized) struct RecoveryRequestTests {
    @Test func recoveryCommitsByTheGuestsNameOnTheTarget() throws {
        // Given a migration to the name g2 stopped past the point of no return
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.migrate("-P", "g1", "-N", "g2", environment: ["HPVM_FAILPOINT": "source-after-disable"]).status != 0)
        // When recovery talks to a target that records what it is sent
        let log = hosts.scratch + "/requests.log"
        let script = hosts.scratch + "/recording-target.sh"
        let answers = [#"{"type":"hello","version":1,"host":"b"}"#, #"{"type":"status","phase":"prepared"}"#, #"{"type":"committed"}"#]
        try ("#!/bin/sh\n" + answers.map { "read line\nprintf '%s\\n' \"$line\" >> \(log)\necho '\($0)'\n" }.joined())
            .write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let recovered = try hosts.on("A", "hpvmmigrate", ["--recover"], environment: ["HPVM_REMOTE_COMMAND": script])
        #expect(recovered.status == 0, "\(recovered.stderr)")
        // Then the commit names g2, the guest's name there, and carries no guest description
        let requests = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(requests.count == 3)
        let commit = try #require(requests.last)
        #expect(commit.contains(#""type":"commit""#) && commit.contains(#""guestName":"g2""#), "\(commit)")
        #expect(!commit.contains(#""guest":"#) && !commit.contains("vcpus"), "\(commit)")
        #expect(try hosts.runnable("A", "g1") == false)
        // and the journal keeps the target's name and who held the lock in their own columns
        let db = hosts.rootA.path + "/var/opt/hpvm/common/hpvm_mgmtdb.sqlite"
        let row = try TwoHosts.capture(
            "/usr/bin/sqlite3", [db, "SELECT targetName || '|' || lockOwner FROM migrationJournal WHERE phase = 'preparing'"], environment: [:])
        #expect(row.stdout.hasPrefix("g2|process "), "\(row.stdout)\(row.stderr)")
    }
}
