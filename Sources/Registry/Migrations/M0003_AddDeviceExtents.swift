/// The storage each entry occupies (DESIGN.md §4): block extents (a LUN by WWID, or one partition
/// of it), the file it is, and the block storage of the file system holding a file. The rules find
/// overlapping claims through the `unit` index.
///
/// Entries made before this migration get their extents from the host on the next command that
/// checks a rule (`hostSetting` `extents` says when that has happened); a new registry needs none.
///
/// Never edit this migration once landed: changes come as a new one.
enum M0003AddDeviceExtents {
    static let identifier = "0003-add-device-extents"

    static let sql = """
        CREATE TABLE deviceExtent (
            id INTEGER PRIMARY KEY,
            deviceId INTEGER NOT NULL REFERENCES device(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('block', 'container', 'file')),
            unit TEXT NOT NULL,
            part INTEGER NOT NULL DEFAULT 0 CHECK (part >= 0),
            UNIQUE (deviceId, role, unit, part)
        );
        CREATE INDEX deviceExtent_unit ON deviceExtent(unit, part);
        INSERT INTO hostSetting (name, value) SELECT 'extents', '1' WHERE NOT EXISTS (SELECT 1 FROM device);
        """
}
