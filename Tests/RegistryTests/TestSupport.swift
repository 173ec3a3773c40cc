import HPVMTestSupport
import Host
@testable import Registry

/// A temporary host root with a registry file in it, removed at the end of the test.
final class Fixture {
    let host: HostBuilder
    let store: RegistryStore
    let layout: HostBuilder.Layout

    init(sanDisks: Int = 4, aliasedSANDisks: Int = 1, multipathMaps: Int = 1, nvmeDisks: Int = 1, dasDisks: Int = 1) throws {
        host = try HostBuilder.temporary(prefix: "hpvm-registry-test")
        layout = try HostBuilder.make(
            at: host, sanDisks: sanDisks, aliasedSANDisks: aliasedSANDisks, multipathMaps: multipathMaps,
            nvmeDisks: nvmeDisks, dasDisks: dasDisks)
        try host.bridge("vsw1")
        store = try RegistryStore.open(at: RegistryStore.defaultPath(root: host.root))
    }

    deinit {
        try? store.close()
        host.remove()
    }

    var audit: AuditContext { AuditContext(user: "tester", command: "swift test") }
    var devices: DeviceManager { DeviceManager(store: store, root: host.root, audit: audit) }
    var guests: GuestRegistry { GuestRegistry(store: store, root: host.root, audit: audit) }

    func entry(_ name: String) throws -> DeviceEntry? {
        try devices.list(ListQuery(type: nil, filter: .entry(name))).first
    }

    func disk(_ path: String) -> ResourceStatement {
        ResourceStatement(deviceType: .disk, adapter: "avio_stor", storage: path.hasPrefix("/dev/") ? "disk" : "file", location: path)
    }

    /// Every row of every table, as text, to prove a refused operation changed nothing.
    func snapshot() throws -> [String] {
        try store.stringsForTesting(
            """
            SELECT 'device|' || id || '|' || type || '|' || name || '|' || coalesce(wwid, '') || '|' || identityKey FROM device
            UNION ALL SELECT 'name|' || deviceId || '|' || name || '|' || position FROM deviceName
            UNION ALL SELECT 'attr|' || deviceId || '|' || name || '=' || value FROM deviceAttribute
            UNION ALL SELECT 'dep|' || deviceId || '|' || name FROM dependent
            UNION ALL SELECT 'guest|' || name || '|' || vmNumber FROM guest
            UNION ALL SELECT 'res|' || guestId || '|' || location FROM guestResource
            UNION ALL SELECT 'audit|' || id || '|' || hash FROM auditLog
            """
        ).sorted()
    }
}
