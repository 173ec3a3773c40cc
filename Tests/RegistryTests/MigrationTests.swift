import GRDB
import Host
import Testing
@testable import Registry

@Suite struct MigrationTests {
    @Test func aRegistryFromTheFirstSchemaKeepsItsDataWhenMigrated() throws {
        // Given a registry at migration 0001 holding an entry, a guest and an audit row
        let queue = try DatabaseQueue()
        try RegistryMigrator.migrator.migrate(queue, upTo: M0001CreateRegistry.identifier)
        try queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO device (type, name, devType, exist, identityKey, createdAt, updatedAt)
                    VALUES ('rdev', '/dev/sdb', 'DISK', 1, 'dev:sdb', 't', 't');
                    INSERT INTO deviceName (deviceId, name, position) VALUES (1, '/dev/sdb', 0);
                    INSERT INTO guest (name, vmNumber, createdAt, updatedAt) VALUES ('g1', 1, 't', 't');
                    INSERT INTO guestResource (guestId, position, deviceType, adapterType, mac, storageType, location)
                    VALUES (1, 0, 'network', 'avio_lan', '02aabbccddee', 'vswitch', 'vsw1');
                    """)
        }
        // When the store opens it
        let store = try RegistryStore(queue, path: nil)
        // Then every migration is applied and the data survived
        let applied = try queue.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") }
        #expect(applied == RegistryMigrator.identifiers)
        #expect(try store.stringsForTesting("SELECT name FROM device") == ["/dev/sdb"])
        #expect(try store.stringsForTesting("SELECT mac FROM guestResource") == ["02aabbccddee"])
        #expect(try store.stringsForTesting("SELECT name FROM sqlite_master WHERE name = 'guestResource_mac'") == ["guestResource_mac"])
    }

    @Test func theJournalsTargetNameComesOutOfTheFreeTextDetailWhenMigratedTo0006() throws {
        // Given a registry at migration 0005 whose journal kept the target's name in `detail`
        let queue = try DatabaseQueue()
        try RegistryMigrator.migrator.migrate(queue, upTo: M0005AddGuestHPSettings.identifier)
        try queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO migrationJournal (migrationId, guestName, role, peerHost, phase, detail, at) VALUES
                    ('m1', 'g1', 'source', 'hostB', 'preparing', 'g1new', 't'),
                    ('m1', 'g1', 'source', 'hostB', 'source-disabled', NULL, 't'),
                    ('m1', 'g1new', 'target', 'hostA', 'prepared', NULL, 't');
                    """)
        }
        // When the store opens it
        let store = try RegistryStore(queue, path: nil)
        // Then every source row carries the target's name in its own column; target rows none
        #expect(try store.stringsForTesting("SELECT coalesce(targetName, '-') FROM migrationJournal ORDER BY id") == ["g1new", "g1new", "-"])
        let guests = GuestRegistry(store: store, root: HostRoot("/"), audit: AuditContext(user: "tester", command: "test"))
        let entries = try guests.journal(migrationID: "m1")
        #expect(entries.map(\.phase) == [.preparing, .sourceDisabled, .prepared])
        #expect(entries.map(\.role) == [.source, .source, .target])
        #expect(try guests.unfinishedMigrations(role: .source).map(\.targetName) == ["g1new"])
    }
}
