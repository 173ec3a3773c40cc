/// The audit log's chain enforced on insert, and who wrote each row.
///
/// A `BEFORE INSERT` trigger refuses a row whose id is not the next one, whose `prevHash` is not
/// the last row's hash, or whose hash is already in the log; so `INSERT OR REPLACE` can no longer
/// replace or (through a `UNIQUE(hash)` conflict) delete a row. The UPDATE and DELETE triggers of
/// M0001 stay. New rows say who wrote them beyond the effective user (`sudoUser`: `SUDO_USER`;
/// `loginUID`: `/proc/self/loginuid`) and carry `format` 2, whose hash covers those columns too.
/// Rows written before this migration keep `format` 1 and their hashes.
///
/// Never edit this migration once landed: changes come as a new one.
enum M0004AuditChainTrigger {
    static let identifier = "0004-audit-chain-trigger"

    static let insertTrigger = """
        CREATE TRIGGER auditLog_appendOnly_insert BEFORE INSERT ON auditLog
        WHEN NEW.id IS NOT (SELECT coalesce(max(id), 0) + 1 FROM auditLog)
          OR NEW.prevHash IS NOT coalesce((SELECT hash FROM auditLog ORDER BY id DESC LIMIT 1),
                                          '0000000000000000000000000000000000000000000000000000000000000000')
          OR EXISTS (SELECT 1 FROM auditLog WHERE hash = NEW.hash)
        BEGIN
            SELECT RAISE(ABORT, 'auditLog is append-only: a new row must take the next id and chain to the last row');
        END
        """

    static let sql = """
        ALTER TABLE auditLog ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE auditLog ADD COLUMN sudoUser TEXT;
        ALTER TABLE auditLog ADD COLUMN loginUID TEXT;
        \(insertTrigger);
        """
}
