internal import GRDB

/// The registry's schema history: one registered migration per file in this folder.
enum RegistryMigrator {
    /// Every migration's identifier, oldest first.
    static let identifiers = [M0001CreateRegistry.identifier]

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration(M0001CreateRegistry.identifier) { db in
            try db.execute(sql: M0001CreateRegistry.sql)
        }
        return migrator
    }
}
