internal import GRDB

/// The registry's schema history: one registered migration per file in this folder.
enum RegistryMigrator {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration(M0001CreateRegistry.identifier) { db in
            try db.execute(sql: M0001CreateRegistry.sql)
        }
        return migrator
    }
}
