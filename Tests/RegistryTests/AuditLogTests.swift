import HPVMTestSupport
import Testing
@testable import Registry

@Suite struct AuditLogTests {
    @Test func everyChangeIsLoggedWithUserCommandAndChain() throws {
        // Given a registry
        let fixture = try Fixture()
        // When entries are added, modified and deleted
        _ = try fixture.devices.add(.rdev, "/dev/rdisk/disk1")
        _ = try fixture.devices.add(.gdev, "/dev/rdisk/disk2")
        _ = try fixture.devices.modify(.gdev, "/dev/rdisk/disk2", AttributeSetting(name: "SHARE", value: "YES"))
        _ = try fixture.devices.delete(.gdev, "/dev/rdisk/disk2")
        // Then each change has a row, chained to the one before
        let log = try fixture.store.auditLog()
        #expect(log.map(\.action) == ["add", "add", "modify", "delete"])
        #expect(log.allSatisfy { $0.user == "tester" && $0.command == "swift test" })
        #expect(log[0].prevHash == String(repeating: "0", count: 64))
        for (previous, row) in zip(log, log.dropFirst()) { #expect(row.prevHash == previous.hash) }
        try fixture.store.verifyAuditLog()
    }

    @Test func updateAndDeleteAreRefusedByTriggers() throws {
        let fixture = try Fixture()
        _ = try fixture.devices.add(.rdev, "/dev/rdisk/disk1")
        #expect(throws: (any Error).self) { try fixture.store.executeForTesting("UPDATE auditLog SET user = 'mallory'") }
        #expect(throws: (any Error).self) { try fixture.store.executeForTesting("DELETE FROM auditLog") }
        #expect(try fixture.store.auditLog().first?.user == "tester")
    }

    @Test func aRewrittenRowIsDetected() throws {
        // Given a log of three changes
        let fixture = try Fixture()
        _ = try fixture.devices.add(.rdev, "/dev/rdisk/disk1")
        _ = try fixture.devices.add(.rdev, "/dev/rdisk/disk2")
        _ = try fixture.devices.add(.rdev, "/dev/rdisk/disk3")
        // When someone with the sqlite3 shell drops the trigger and rewrites history
        try fixture.store.executeForTesting(
            """
            DROP TRIGGER auditLog_appendOnly_update;
            UPDATE auditLog SET user = 'nobody' WHERE id = 2;
            """)
        // Then verification names the changed row
        do {
            try fixture.store.verifyAuditLog()
            Issue.record("tampering was not detected")
        } catch {
            #expect(error.code == .tampered)
            #expect(error.message.contains("row 2"))
        }
    }

    @Test func aRemovedRowIsDetected() throws {
        let fixture = try Fixture()
        _ = try fixture.devices.add(.rdev, "/dev/rdisk/disk1")
        _ = try fixture.devices.add(.rdev, "/dev/rdisk/disk2")
        _ = try fixture.devices.add(.rdev, "/dev/rdisk/disk3")
        try fixture.store.executeForTesting(
            "DROP TRIGGER auditLog_appendOnly_delete; DELETE FROM auditLog WHERE id = 2;")
        #expect(throws: RegistryError.self) { try fixture.store.verifyAuditLog() }
    }

    @Test func refusedOperationsLeaveNoAuditRow() throws {
        let fixture = try Fixture()
        _ = try fixture.devices.add(.rdev, "/dev/rdisk/disk1")
        let before = try fixture.store.auditLog().count
        #expect(throws: RegistryError.self) { try fixture.devices.add(.gdev, "/dev/rdisk/disk1") }
        #expect(try fixture.store.auditLog().count == before)
    }
}

@Suite struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func knownAnswers(input: String, expected: String) {
        #expect(SHA256.hex(input) == expected)
        #expect(SHA256.swiftDigest(Array(input.utf8)) == SHA256.digest(Array(input.utf8)))
    }
}
