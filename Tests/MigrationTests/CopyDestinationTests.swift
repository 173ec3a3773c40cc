import Foundation
import HPVMTestSupport
import Host
@testable import Registry
import Testing

/// Issue 8, rows 2 and 4: a copy's destination (`-m … -C`) is judged by the rules module and
/// claimed in the target's registry before the first byte; `-s` says what the copy would meet.
@Suite struct CopyDestinationTests {
    final class Target {
        let host: HostBuilder
        let layout: HostBuilder.Layout
        let store: RegistryStore
        let guests: GuestRegistry

        init() throws {
            host = try HostBuilder.temporary(prefix: "hpvm-copy-target")
            layout = try HostBuilder.make(at: host, sanDisks: 4)
            try host.folders("/hpvm/disks")
            store = try RegistryStore.open(at: RegistryStore.defaultPath(root: host.root))
            guests = GuestRegistry(store: store, root: host.root, audit: AuditContext(user: "tester", command: "test"))
        }

        deinit {
            try? store.close()
            host.remove()
        }

        func give(_ guest: String, _ location: String, storage: String = "disk") throws {
            if try guests.guest(named: guest) == nil { try guests.createGuest(name: guest) }
            try guests.attach(ResourceStatement(deviceType: .disk, adapter: "avio_stor", storage: storage, location: location), to: guest)
        }
    }

    @Test func aCopyNeverWritesWhatTheHostKeepsOrAnotherGuestHolds() throws {
        let target = try Target()
        let devices = DeviceManager(store: target.store, root: target.host.root, audit: AuditContext(user: "t", command: "t"))
        // A shared disk two guests use, a restricted disk, the host's own disk, hpvm's registry, a restricted folder
        try target.give("s1", "/dev/rdisk/disk1")
        _ = try devices.modify(.gdev, "/dev/rdisk/disk1", AttributeSetting(name: "SHARE", value: "YES"))
        try target.give("s2", "/dev/rdisk/disk1")
        _ = try devices.add(.rdev, "/dev/rdisk/disk2")
        let boot = try target.host.partition(of: target.layout.sanDisks[2].names[0], number: 1)
        try target.host.mount(boot, at: "/boot")
        try target.host.folders("/hpvm/private")
        _ = try devices.add(.rdev, "/hpvm/private", attribute: AttributeSetting(name: "RECURSIVE", value: "DIR"))
        let refused = [
            ("/dev/rdisk/disk1", "a copy would overwrite it (SHARE=YES lets guests share a disk, not overwrite it)"),
            ("/dev/sda", "used by s1, s2"),
            ("/dev/rdisk/disk2", "it is restricted"),
            ("/dev/rdisk/disk3", "the host's own storage"),
            ("/var/opt/hpvm/common/hpvm_mgmtdb.sqlite", "where hpvm keeps its registry"),
            ("/var/opt/hpvm/common/new.img", "where hpvm keeps its registry"),
            ("/hpvm/private/new.img", "under /hpvm/private"),
        ]
        for (location, why) in refused {
            let obstacles = try target.guests.copyObstacles(for: location, guest: "arriving")
            #expect(obstacles.count == 1 && obstacles[0].contains(why), "\(location): \(obstacles)")
            // and the claim itself is refused the same way, creating nothing
            #expect(throws: RegistryError.self, "\(location)") {
                try target.guests.claimCopyDestination(location, guest: "arriving", migrationID: "m1", peer: "hostA")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: target.host.path + "/hpvm/private/new.img"))
        #expect(!FileManager.default.fileExists(atPath: target.host.path + "/var/opt/hpvm/common/new.img"))
        #expect(try target.guests.copyObstacles(for: "/hpvm/disks/new.img", guest: "arriving") == [])
        #expect(try target.guests.copyObstacles(for: "/dev/rdisk/disk4", guest: "arriving") == [])
    }

    @Test func theDestinationIsClaimedBeforeTheCopyAndReleasedOnRollback() throws {
        let target = try Target()
        // When the copy into /hpvm/disks/g1.img is claimed for the arriving guest g1
        try target.guests.claimCopyDestination("/hpvm/disks/g1.img", guest: "g1", migrationID: "m1", peer: "hostA")
        #expect(FileManager.default.fileExists(atPath: target.host.path + "/hpvm/disks/g1.img"))
        // Then no guest here can be given the file meanwhile, by any name
        try target.host.link("/hpvm/linked", to: "/hpvm/disks")
        for location in ["/hpvm/disks/g1.img", "/hpvm/linked/g1.img"] {
            #expect(throws: RegistryError.self, "\(location)") { try target.give("other", location, storage: "file") }
        }
        // and a second copy into it from another migration is refused
        #expect(throws: RegistryError.self) {
            try target.guests.claimCopyDestination("/hpvm/disks/g1.img", guest: "g9", migrationID: "m2", peer: "hostC")
        }
        // When the migration is rolled back before the guest was prepared
        try target.guests.abortArrival("g1", migrationID: "m1", peer: "hostA")
        // Then the claim is gone (the file stays) and the file can go to a guest
        try target.give("other", "/hpvm/disks/g1.img", storage: "file")
        #expect(try target.guests.journal(migrationID: "m1").map(\.phase.rawValue) == ["copy-claimed", "aborted"])
    }

    @Test func thePreparedGuestTakesOverItsClaim() throws {
        let target = try Target()
        try target.guests.claimCopyDestination("/hpvm/disks/g1.img", guest: "g1", migrationID: "m1", peer: "hostA")
        var spec = GuestSpec(name: "g1")
        spec.resources = [ResourceStatement(deviceType: .disk, adapter: "avio_stor", storage: "file", location: "/hpvm/disks/g1.img")]
        try target.guests.prepareArrival(spec, migrationID: "m1", peer: "hostA")
        try target.guests.commitArrival("g1", migrationID: "m1", peer: "hostA")
        #expect(try target.guests.resources(of: "g1").map(\.location) == ["/hpvm/disks/g1.img"])
        #expect(throws: RegistryError.self) { try target.give("other", "/hpvm/disks/g1.img", storage: "file") }
    }

    @Test func aClaimIsNeverLedOutOfTheRootBySymlinks() throws {
        let target = try Target()
        var template = Array("/tmp/hpvm-outside.XXXXXX".utf8CString)
        let outside = String(cString: try #require(mkdtemp(&template)))
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try target.host.rawLink("/hpvm/out", target: outside)
        try target.host.rawLink("/hpvm/disks/evil.img", target: outside + "/evil.img")
        for location in ["/hpvm/out/x.img", "/hpvm/disks/evil.img"] {
            _ = try? target.guests.claimCopyDestination(location, guest: "g1", migrationID: "m1", peer: "hostA")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
    }
}
