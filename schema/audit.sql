-- Audit views for the hpvm registry, for the sqlite3 shell. They are TEMP views: loading
-- them changes nothing in the registry file.
--
--   sqlite3 -readonly /var/opt/hpvm/common/hpvm_mgmtdb.sqlite
--   sqlite> .read /usr/share/hpvm/audit.sql            (or schema/audit.sql in the source tree)
--   sqlite> SELECT * FROM guestWWID;
--
-- WWIDs are stored as lower-case hex digits; the views print them HPVM-style
-- (6005-08b4-0001-15d0-…), as hpvmdevmgmt -l does.

-- hpvmWWID(w): a stored WWID in groups of four hex digits joined by '-'.
-- (A view cannot define functions; each view spells the formatting out.)

-- guestWWID: which guest owns which LUN (by WWID), through which alias, and the entry's
-- sharing. One row per guest resource that names a registered device.
CREATE TEMP VIEW IF NOT EXISTS guestWWID AS
SELECT g.name AS guest,
       CASE WHEN d.wwid GLOB '[0-9a-f]*' AND length(d.wwid) IN (16, 32) THEN
            rtrim(substr(d.wwid, 1, 4) || '-' || substr(d.wwid, 5, 4) || '-' || substr(d.wwid, 9, 4) || '-' ||
                  substr(d.wwid, 13, 4) || '-' || substr(d.wwid, 17, 4) || '-' || substr(d.wwid, 21, 4) || '-' ||
                  substr(d.wwid, 25, 4) || '-' || substr(d.wwid, 29, 4), '-')
            ELSE d.wwid END AS wwid,
       r.location AS alias,
       d.name AS entry,
       (SELECT value FROM deviceAttribute a WHERE a.deviceId = d.id AND a.name = 'SHARE') AS share
FROM guestResource r
JOIN guest g ON g.id = r.guestId
JOIN deviceName n ON n.name = r.location
JOIN device d ON d.id = n.deviceId
ORDER BY g.name, r.position;

-- restrictedDevice: every rdev entry, its names, WWID, and whether hpvmhostrdev made it.
CREATE TEMP VIEW IF NOT EXISTS restrictedDevice AS
SELECT d.name AS name,
       (SELECT group_concat(name, ',') FROM (SELECT name FROM deviceName WHERE deviceId = d.id ORDER BY position)) AS names,
       d.wwid AS wwid,
       d.devType AS devType,
       (SELECT value FROM deviceAttribute a WHERE a.deviceId = d.id AND a.name = 'RECURSIVE') AS recursive,
       coalesce((SELECT value FROM deviceAttribute a WHERE a.deviceId = d.id AND a.name = 'AUTORDEV'), 'NO') AS autordev,
       d.exist AS exist
FROM device d
WHERE d.type = 'rdev'
ORDER BY d.name;

-- sharedDevice: guest devices with SHARE=YES that are not vswitches, and who uses them.
CREATE TEMP VIEW IF NOT EXISTS sharedDevice AS
SELECT d.name AS name,
       d.wwid AS wwid,
       (SELECT group_concat(name, ',') FROM (SELECT name FROM dependent WHERE deviceId = d.id ORDER BY name)) AS dependents
FROM device d
JOIN deviceAttribute a ON a.deviceId = d.id AND a.name = 'SHARE' AND a.value = 'YES'
WHERE d.type = 'gdev' AND d.devType != 'VSWITCH'
ORDER BY d.name;

-- deviceHistory: the audit log, newest last; filter with WHERE object = '/dev/rdisk/disk3'.
-- "object" is the entry's primary name at the time of the change.
CREATE TEMP VIEW IF NOT EXISTS deviceHistory AS
SELECT id, at, user, command, action, object, change
FROM auditLog
ORDER BY id;

-- deviceListing: the same line as hpvmdevmgmt -l all, built by SQL alone. In each name, value and
-- dependent, '\' becomes '\\', and ',' ':' '=' and control characters (C0, DEL, C1) become \xHH
-- (a recursive step per escaped character, taken only for names that need it).
CREATE TEMP VIEW IF NOT EXISTS deviceListing AS
SELECT (SELECT group_concat(CASE WHEN name GLOB '*[,:=\' || char(1) || '-' || char(31) || char(127) || '-' || char(159) || ']*' THEN (WITH RECURSIVE e(k, s) AS (SELECT 0, replace(name, '\', '\\') UNION ALL SELECT k + 1, replace(s, char(CASE k + 1 WHEN 1 THEN 44 WHEN 2 THEN 58 WHEN 3 THEN 61 WHEN 35 THEN 127 ELSE CASE WHEN k + 1 <= 34 THEN k - 2 ELSE k + 93 END END), printf('\x%02x', CASE k + 1 WHEN 1 THEN 44 WHEN 2 THEN 58 WHEN 3 THEN 61 WHEN 35 THEN 127 ELSE CASE WHEN k + 1 <= 34 THEN k - 2 ELSE k + 93 END END)) FROM e WHERE k < 67) SELECT s FROM e WHERE k = 67) ELSE name END, ',') FROM (SELECT name FROM deviceName WHERE deviceId = d.id ORDER BY position))
       || ':CONFIG=' || d.type || ',EXIST=' || CASE d.exist WHEN 1 THEN 'YES' ELSE 'NO' END
       || ',DEVTYPE=' || d.devType
       || coalesce(',' || (SELECT group_concat(name || '=' || CASE WHEN value GLOB '*[,:=\' || char(1) || '-' || char(31) || char(127) || '-' || char(159) || ']*' THEN (WITH RECURSIVE e(k, s) AS (SELECT 0, replace(value, '\', '\\') UNION ALL SELECT k + 1, replace(s, char(CASE k + 1 WHEN 1 THEN 44 WHEN 2 THEN 58 WHEN 3 THEN 61 WHEN 35 THEN 127 ELSE CASE WHEN k + 1 <= 34 THEN k - 2 ELSE k + 93 END END), printf('\x%02x', CASE k + 1 WHEN 1 THEN 44 WHEN 2 THEN 58 WHEN 3 THEN 61 WHEN 35 THEN 127 ELSE CASE WHEN k + 1 <= 34 THEN k - 2 ELSE k + 93 END END)) FROM e WHERE k < 67) SELECT s FROM e WHERE k = 67) ELSE value END, ',') FROM
            (SELECT name, value FROM deviceAttribute WHERE deviceId = d.id
             ORDER BY CASE name WHEN 'SHARE' THEN 0 WHEN 'USAGE' THEN 1 WHEN 'PRESERVE' THEN 2
                                WHEN 'RECURSIVE' THEN 3 WHEN 'AUTORDEV' THEN 4 ELSE 5 END)), '')
       || CASE d.ignoreWWID WHEN 1 THEN ',IGNOREWWID=YES' ELSE '' END
       || ':' || coalesce((SELECT group_concat(CASE WHEN name GLOB '*[,:=\' || char(1) || '-' || char(31) || char(127) || '-' || char(159) || ']*' THEN (WITH RECURSIVE e(k, s) AS (SELECT 0, replace(name, '\', '\\') UNION ALL SELECT k + 1, replace(s, char(CASE k + 1 WHEN 1 THEN 44 WHEN 2 THEN 58 WHEN 3 THEN 61 WHEN 35 THEN 127 ELSE CASE WHEN k + 1 <= 34 THEN k - 2 ELSE k + 93 END END), printf('\x%02x', CASE k + 1 WHEN 1 THEN 44 WHEN 2 THEN 58 WHEN 3 THEN 61 WHEN 35 THEN 127 ELSE CASE WHEN k + 1 <= 34 THEN k - 2 ELSE k + 93 END END)) FROM e WHERE k < 67) SELECT s FROM e WHERE k = 67) ELSE name END, ',') FROM (SELECT name FROM dependent WHERE deviceId = d.id ORDER BY name)), '')
       || ':' || coalesce(CASE WHEN d.wwid GLOB '[0-9a-f]*' AND length(d.wwid) IN (16, 32) THEN
            rtrim(substr(d.wwid, 1, 4) || '-' || substr(d.wwid, 5, 4) || '-' || substr(d.wwid, 9, 4) || '-' ||
                  substr(d.wwid, 13, 4) || '-' || substr(d.wwid, 17, 4) || '-' || substr(d.wwid, 21, 4) || '-' ||
                  substr(d.wwid, 25, 4) || '-' || substr(d.wwid, 29, 4), '-')
            ELSE d.wwid END, '') AS line
FROM device d
ORDER BY d.name;
