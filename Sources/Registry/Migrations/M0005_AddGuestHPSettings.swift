/// What HP's commands record for a guest beyond its size and resources (issue 14):
///
/// - `uuid`: the guest's UUID, which `hpvmstatus -X` reports (`virtual_machine uuid=`) and
///   inventories (FusionInventory/GLPI) key machines by. Guests made before this migration get
///   one here.
/// - `startType`: HP's boot attribute, `Auto` (start when the host starts) or `Manual`, set with
///   `hpvmcreate`/`hpvmmodify -B` and shown as the `Start type` and `-M` field 11.
/// - `entitlement`: the CPU entitlement of `-e percent[:max]` or `-E cycles[:max]`, as given.
/// - `guestSetting`: `hpvmmodify -x keyword=value` settings other than the status switches
///   (`online_migration`, `migrate_*_phase_timeout`), one row per keyword.
///
/// Never edit this migration once landed: changes come as a new one.
enum M0005AddGuestHPSettings {
    static let identifier = "0005-add-guest-hp-settings"

    /// A random version 4 UUID, lower case, as SQLite can make one.
    static let uuidExpression = """
        lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-'
            || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))
        """

    static let sql = """
        ALTER TABLE guest ADD COLUMN uuid TEXT;
        UPDATE guest SET uuid = \(uuidExpression);
        CREATE UNIQUE INDEX guest_uuid ON guest(uuid) WHERE uuid IS NOT NULL;
        ALTER TABLE guest ADD COLUMN startType TEXT NOT NULL DEFAULT 'Manual' CHECK (startType IN ('Auto', 'Manual'));
        ALTER TABLE guest ADD COLUMN entitlement TEXT;
        CREATE TABLE guestSetting (
            guestId INTEGER NOT NULL REFERENCES guest(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (guestId, name)
        );
        """
}
