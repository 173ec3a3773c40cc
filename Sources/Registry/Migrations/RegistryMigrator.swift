internal import GRDB

/// The registry's schema history: one registered migration per file in this folder.
enum RegistryMigrator {
    /// Every migration's identifier, oldest first.
    static let identifiers = [
        M0001CreateRegistry.identifier, M0002AddLookupIndexes.identifier, M0003AddDeviceExtents.identifier,
        M0004AuditChainTrigger.identifier,
        M0005AddGuestHPSettings.identifier,
        M0006FleetLeases.identifier,
        M0006MigrationJournalColumns.identifier,
    ]

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration(M0001CreateRegistry.identifier) { db in
            try db.execute(sql: M0001CreateRegistry.sql)
        }
        migrator.registerMigration(M0002AddLookupIndexes.identifier) { db in
            try db.execute(sql: M0002AddLookupIndexes.sql)
        }
        migrator.registerMigration(M0003AddDeviceExtents.identifier) { db in
            try db.execute(sql: M0003AddDeviceExtents.sql)
        }
        migrator.registerMigration(M0004AuditChainTrigger.identifier) { db in
            try db.execute(sql: M0004AuditChainTrigger.sql)
        }
        migrator.registerMigration(M0005AddGuestHPSettings.identifier) { db in
            try db.execute(sql: M0005AddGuestHPSettings.sql)
        }
        migrator.registerMigration(M0006FleetLeases.identifier) { db in
            try db.execute(sql: M0006FleetLeases.sql)
        }
        migrator.registerMigration(M0006MigrationJournalColumns.identifier) { db in
            try db.execute(sql: M0006MigrationJournalColumns.sql)
        }
        return migrator
    }
}
