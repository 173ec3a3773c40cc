/// The migration journal's own columns for what it had kept in free text (issue 8, the design step):
///
/// - `targetName`: on a source's rows, the guest's name on the target (`-N`, else its own name),
///   which recovery sends there; rows made before this migration get it from the `preparing` row's
///   `detail`, where it was kept.
/// - `lockOwner`: who took the migration's lock (`process 1234 on hostA`), on the `preparing` row.
///
/// Never edit this migration once landed: changes come as a new one.
enum M0006MigrationJournalColumns {
    static let identifier = "0006-migration-journal-columns"

    static let sql = """
        ALTER TABLE migrationJournal ADD COLUMN targetName TEXT;
        ALTER TABLE migrationJournal ADD COLUMN lockOwner TEXT;
        UPDATE migrationJournal SET targetName = coalesce(detail, guestName) WHERE role = 'source' AND phase = 'preparing';
        UPDATE migrationJournal SET targetName = (
            SELECT p.targetName FROM migrationJournal p
            WHERE p.migrationId = migrationJournal.migrationId AND p.role = 'source' AND p.phase = 'preparing')
        WHERE role = 'source' AND phase != 'preparing';
        """
}
