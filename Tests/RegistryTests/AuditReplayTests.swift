import Glibc
import HPVMTestSupport
import Host
import Testing
@testable import Registry

/// A small seeded generator (SplitMix64), so a failing walk can be replayed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct AuditReplayTests {
    /// Random commands (most of them refused or half-sensible) through the library, then verify:
    /// the log, replayed, must rebuild the tables exactly.
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func anUntouchedRegistryAfterRandomCommandsVerifies(seed: UInt64) throws {
        let fixture = try Fixture(sanDisks: 8, aliasedSANDisks: 2, multipathMaps: 2, nvmeDisks: 1, dasDisks: 1)
        try fixture.host.folders("/hpvm/disks")
        for index in 0..<4 { try fixture.host.file("/hpvm/disks/f\(index).img", contents: "x") }
        let layout = fixture.layout
        let paths = layout.sanDisks.map(\.path) + layout.aliasedDisks.flatMap(\.paths) + layout.multipathMaps.flatMap(\.paths)
            + layout.nvmeDisks.map(\.path) + (0..<4).map { "/hpvm/disks/f\($0).img" } + ["vsw1"]
        let guestNames = ["g1", "g2", "g3", "g4"]
        var random = SeededRandom(state: seed)
        func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &random)] }
        func statement(_ path: String) -> ResourceStatement {
            if path == "vsw1" { return ResourceStatement(deviceType: .network, adapter: "avio_lan", storage: "vswitch", location: path) }
            return ResourceStatement(
                deviceType: pick([.disk, .disk, .dvd]), adapter: pick(["avio_stor", "scsi"]),
                storage: path.hasPrefix("/hpvm") ? "file" : "disk", location: path)
        }
        let devices = fixture.devices
        let guests = fixture.guests
        let host = HostRestrictions(store: fixture.store, root: fixture.host.root, audit: fixture.audit)
        var applied = 0
        for step in 0..<500 {
            do {
                switch Int.random(in: 0..<16, using: &random) {
                case 0: _ = try devices.add(pick([.gdev, .gdev, .rdev]), pick(paths),
                                            attribute: pick([nil, AttributeSetting(name: "SHARE", value: "YES"), AttributeSetting(name: "PRESERVE", value: "YES")]))
                case 1: _ = try devices.modify(.gdev, pick(paths), AttributeSetting(name: pick(["SHARE", "PRESERVE"]), value: pick(["YES", "NO"])))
                case 2: _ = try devices.deleteAttribute(.gdev, pick(paths), pick(["SHARE", "PRESERVE"]))
                case 3: _ = try devices.delete(pick([.gdev, .rdev]), pick(paths))
                case 4: _ = try devices.setIgnoreWWID(.gdev, pick(paths), Bool.random(using: &random))
                case 5: _ = try devices.deleteAlias(pick(paths))
                case 6: _ = try devices.rename(pick([.gdev, .rdev]), old: pick(paths), new: [pick(paths)])
                case 7: _ = try devices.rescan()
                case 8:
                    var spec = GuestSpec(name: pick(guestNames))
                    spec.resources = (0..<Int.random(in: 0..<3, using: &random)).map { _ in statement(pick(paths)) }
                    spec.osType = pick([nil, "LINUX"])
                    try guests.create(spec)
                case 9, 10:
                    var change = GuestChange()
                    change.add = [statement(pick(paths))]
                    try guests.modify(pick(guestNames), change)
                case 11:
                    let name = pick(guestNames)
                    guard let resource = try guests.resources(of: name).randomElement(using: &random) else { continue }
                    var change = GuestChange()
                    change.delete = [resource]
                    try guests.modify(name, change)
                case 12:
                    var change = GuestChange()
                    change.vcpus = pick([nil, 2, 4])
                    change.label = pick([nil, "web"])
                    change.osType = pick([nil, "HPUX"])
                    change.newName = pick([nil, nil, pick(guestNames)])
                    change.status = pick([[], [("runnable_status", false)], [("register_status", true)]])
                    try guests.modify(pick(guestNames), change)
                case 13: try guests.remove(pick(guestNames), force: Bool.random(using: &random))
                case 14: _ = try devices.deleteDependent(entry: nil, dependent: pick(guestNames))
                default: _ = try pick([host.update, host.removeAll, host.restore])()
                }
                applied += 1
            } catch {
                // Refusals are part of the walk.
            }
            if step % 100 == 99 {
                let report = try fixture.store.verifyAudit()
                #expect(report.isIntact, "seed \(seed), step \(step): \(report.findings.map(\.message))")
                if !report.isIntact { return }
            }
        }
        #expect(applied > 40)
        let report = try fixture.store.verifyAudit()
        #expect(report.isIntact, "seed \(seed): \(report.findings.map(\.message))")
        #expect(report.rows == (try fixture.store.auditLog()).count)
    }

    @Test func theInsertTriggerRefusesRowsOutOfChain() throws {
        let fixture = try Fixture()
        _ = try fixture.devices.add(.rdev, "/dev/rdisk/disk1")
        _ = try fixture.devices.add(.rdev, "/dev/rdisk/disk2")
        let last = try #require(try fixture.store.auditHead())
        let zero = String(repeating: "0", count: 64)
        func insert(id: String, prev: String, hash: String, verb: String = "INSERT") throws {
            try fixture.store.executeForTesting(
                "\(verb) INTO auditLog (id, at, user, command, action, object, change, prevHash, hash) VALUES (\(id), 't', 'u', 'c', 'setting', 'x', '{}', '\(prev)', '\(hash)')")
        }
        #expect(throws: (any Error).self) { try insert(id: "NULL", prev: last.hash, hash: String(repeating: "a", count: 64)) }
        #expect(throws: (any Error).self) { try insert(id: "\(last.id + 2)", prev: last.hash, hash: String(repeating: "a", count: 64)) }
        #expect(throws: (any Error).self) { try insert(id: "\(last.id + 1)", prev: zero, hash: String(repeating: "a", count: 64)) }
        #expect(throws: (any Error).self) { try insert(id: "1", prev: zero, hash: String(repeating: "a", count: 64), verb: "INSERT OR REPLACE") }
        let first = try fixture.store.auditLog()[0].hash
        #expect(throws: (any Error).self) { try insert(id: "\(last.id + 1)", prev: last.hash, hash: first, verb: "INSERT OR REPLACE") }
        #expect(try fixture.store.auditLog().count == 2)
        #expect(try fixture.store.verifyAudit().isIntact)
    }

    @Test func theHeadGoesToTheAnchorOncePerWriteAfterCommit() throws {
        let fixture = try Fixture()
        let sent = Sent()
        let audit = AuditContext(user: "tester", command: "hpvmcreate -P g1", anchor: .custom { sent.append($0) })
        let guests = GuestRegistry(store: fixture.store, root: fixture.host.root, audit: audit)
        var spec = GuestSpec(name: "g1")
        spec.resources = [fixture.disk("/dev/rdisk/disk1"), fixture.disk("/dev/rdisk/disk2")]
        try guests.create(spec)
        let head = try #require(try fixture.store.auditHead())
        #expect(sent.messages.count == 1)
        #expect(sent.messages.first?.hasPrefix("hpvm-audit-head id=\(head.id) hash=\(head.hash) registry=") == true)
        // A refused write sends nothing.
        #expect(throws: RegistryError.self) { try guests.create(spec) }
        #expect(sent.messages.count == 1)
    }

    @Test func oldJSONWithRepeatedKeysStillParses() throws {
        let change = try AuditJSON.parse(#"{"addedAlias":"/dev/sda","addedAlias":"/dev/sdb","EXIST":"YES"}"#)
        #expect(change.all("addedAlias").compactMap(\.string) == ["/dev/sda", "/dev/sdb"])
        #expect(change["EXIST"]?.string == "YES")
        #expect(throws: AuditJSON.Malformed.self) { try AuditJSON.parse(#"{"a":}"#) }
    }
}

final class Sent: @unchecked Sendable {
    private var items: [String] = []
    private let lock = NSLockLite()
    func append(_ message: String) { lock.run { items.append(message) } }
    var messages: [String] { lock.run { items } }
}

/// A mutex without Foundation.
final class NSLockLite: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    func run<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}
