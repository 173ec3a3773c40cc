import HPVMTestSupport
import Host
import Testing
@testable import Registry

/// The rules of DESIGN.md §4, applied to the device whichever path names it.
@Suite struct DeviceRulesTests {
    @Test func restrictedMultipathMapRefusesItsSCSIPath() throws {
        // Given /dev/mapper/mpatha restricted
        let fixture = try Fixture()
        let map = fixture.layout.multipathMaps[0]
        _ = try fixture.devices.add(.rdev, map.path)
        let before = try fixture.snapshot()
        // When one of its SCSI paths is added as a guest device, or given to a guest
        let path = map.paths[2]
        try fixture.guests.createGuest(name: "g1")
        let snapshotWithGuest = try fixture.snapshot()
        do {
            _ = try fixture.devices.add(.gdev, path)
            Issue.record("adding \(path) was not refused")
        } catch {
            // Then it is refused, naming the path, the WWID and the restricted entry
            #expect(error.code == .restricted)
            #expect(error.message.contains(path) && error.message.contains(map.path) && error.message.contains("WWID 6005-08b4"))
        }
        #expect(throws: RegistryError.self) { try fixture.guests.attach(fixture.disk(path), to: "g1") }
        #expect(try fixture.snapshot() == snapshotWithGuest)
        #expect(before.count + 2 == snapshotWithGuest.count)  // the guest row and its audit row
    }

    @Test func restrictingAMultipathMapWhoseSCSIPathAGuestUsesIsRefused() throws {
        let fixture = try Fixture()
        let map = fixture.layout.multipathMaps[0]
        try fixture.guests.createGuest(name: "g1")
        try fixture.guests.attach(fixture.disk(map.paths[3]), to: "g1")
        let before = try fixture.snapshot()
        do {
            _ = try fixture.devices.add(.rdev, map.path)
            Issue.record("restricting a used LUN was not refused")
        } catch {
            #expect(error.code == .inUse)
            #expect(error.message.contains("g1") && error.message.contains(map.paths[3]))
        }
        #expect(try fixture.snapshot() == before)
    }

    @Test func scsiAliasesAreOneDevice() throws {
        let fixture = try Fixture()
        let disk = fixture.layout.aliasedDisks[0]
        _ = try fixture.devices.add(.rdev, disk.paths[0])
        #expect(throws: RegistryError.self) { try fixture.devices.add(.gdev, disk.paths[1]) }
        // The same type through the other path is recorded as an alias, not a second entry
        _ = try fixture.devices.add(.rdev, disk.paths[1])
        let entry = try #require(try fixture.entry(disk.paths[0]))
        #expect(entry.names == disk.paths)
        #expect(try fixture.devices.list(ListQuery(type: .rdev, filter: .none)).count == 1)
    }

    @Test func nvmeByIdLinkAndNamespaceAreOneDevice() throws {
        let fixture = try Fixture()
        let nvme = fixture.layout.nvmeDisks[0]
        try fixture.host.link("/dev/disk/by-id/nvme-eui.0025388b91b5", to: nvme.path)
        _ = try fixture.devices.add(.rdev, "/dev/disk/by-id/nvme-eui.0025388b91b5")
        do {
            _ = try fixture.devices.add(.gdev, nvme.path)
            Issue.record("NVMe alias was not refused")
        } catch {
            #expect(error.code == .restricted)
            #expect(error.message.contains("/dev/disk/by-id/nvme-eui.0025388b91b5"))
        }
    }

    @Test func ignoreWWIDGroupsNamesByPathButNeverWeakensARestriction() throws {
        // Given a restricted LUN whose entry says IGNOREWWID=YES
        let fixture = try Fixture()
        let disk = fixture.layout.aliasedDisks[0]
        _ = try fixture.devices.add(.rdev, disk.paths[0])
        _ = try fixture.devices.setIgnoreWWID(.rdev, disk.paths[0], true)
        // Then the LUN's other path is still refused to guests, by WWID
        do {
            _ = try fixture.devices.add(.gdev, disk.paths[1])
            Issue.record("the other path of a restricted LUN was accepted because of IGNOREWWID")
        } catch {
            #expect(error.code == .restricted)
            #expect(error.message.contains("rdev entry \(disk.paths[0])"))
        }
        do {
            try fixture.guests.createGuest(name: "g1")
            try fixture.guests.attach(fixture.disk(disk.paths[1]), to: "g1")
            Issue.record("a guest was given the other path of a restricted LUN")
        } catch {
            #expect(error.code == .restricted)
        }
        // and a second rdev name by the other path is its own entry (names are grouped by path)
        _ = try fixture.devices.add(.rdev, disk.paths[1])
        #expect(try fixture.entry(disk.paths[1])?.names == [disk.paths[1]])
    }

    @Test func partitionOfARestrictedDiskIsRestricted() throws {
        let fixture = try Fixture()
        let disk = fixture.layout.sanDisks[0]
        let partition = try fixture.host.partition(of: disk.names[0], number: 1)
        _ = try fixture.devices.add(.rdev, disk.path)
        #expect(throws: RegistryError.self) { try fixture.devices.add(.gdev, "/dev/\(partition)") }
    }

    @Test func recursiveRestrictionFollowsFileSystems() throws {
        // hpvm-reference.md (e) example 3.
        let fixture = try Fixture()
        try fixture.host.folders("/hpvm/private")
        try fixture.host.file("/hpvm/private/x.img", contents: "x")
        try fixture.host.mountVirtual(at: "/hpvm/private/other")
        try fixture.host.file("/hpvm/private/other/y.img", contents: "y")
        try fixture.guests.createGuest(name: "g1")
        _ = try fixture.devices.add(.rdev, "/hpvm/private", attribute: AttributeSetting(name: "RECURSIVE", value: "FS"))
        #expect(throws: RegistryError.self) { try fixture.guests.attach(fixture.disk("/hpvm/private/x.img"), to: "g1") }
        try fixture.guests.attach(fixture.disk("/hpvm/private/other/y.img"), to: "g1")
        try fixture.guests.detach(location: "/hpvm/private/other/y.img", from: "g1")
        _ = try fixture.devices.modify(.rdev, "/hpvm/private", AttributeSetting(name: "RECURSIVE", value: "DIR"))
        #expect(throws: RegistryError.self) { try fixture.guests.attach(fixture.disk("/hpvm/private/other/y.img"), to: "g1") }
    }

    @Test func recursiveRestrictionOverAUsedFileIsRefused() throws {
        let fixture = try Fixture()
        try fixture.host.file("/hpvm/private/x.img", contents: "x")
        try fixture.guests.createGuest(name: "g1")
        try fixture.guests.attach(fixture.disk("/hpvm/private/x.img"), to: "g1")
        #expect(throws: RegistryError.self) {
            try fixture.devices.add(.rdev, "/hpvm/private", attribute: AttributeSetting(name: "RECURSIVE", value: "DIR"))
        }
        // Restricting only the folder itself is allowed
        _ = try fixture.devices.add(.rdev, "/hpvm/private")
    }

    @Test func aSecondGuestNeedsShareYes() throws {
        let fixture = try Fixture()
        let path = fixture.layout.sanDisks[1].path
        try fixture.guests.createGuest(name: "g1")
        try fixture.guests.createGuest(name: "g2")
        try fixture.guests.attach(fixture.disk(path), to: "g1")
        // Through the other path of the same LUN, too
        do {
            try fixture.guests.attach(fixture.disk(fixture.layout.sanDisks[1].paths[1]), to: "g2")
            Issue.record("second guest was not refused")
        } catch {
            #expect(error.code == .inUse)
            #expect(error.message.contains("g1") && error.message.contains("SHARE=YES"))
        }
        _ = try fixture.devices.modify(.gdev, path, AttributeSetting(name: "SHARE", value: "YES"))
        try fixture.guests.attach(fixture.disk(path), to: "g2")
        #expect(try fixture.entry(path)?.dependents == ["g1", "g2"])
        // and it cannot be unshared while both use it
        #expect(throws: RegistryError.self) {
            try fixture.devices.modify(.gdev, path, AttributeSetting(name: "SHARE", value: "NO"))
        }
    }

    @Test func preserveKeepsAnEntryAfterItsLastDependent() throws {
        // hpvm-reference.md (e) example 7, through the registry API for the guest part.
        let fixture = try Fixture()
        try fixture.host.file("/iso/hpux.iso", contents: "iso")
        try fixture.host.file("/iso/other.iso", contents: "iso")
        try fixture.guests.createGuest(name: "g1")
        _ = try fixture.devices.add(.gdev, "/iso/hpux.iso", attribute: AttributeSetting(name: "USAGE", value: "DVD"))
        _ = try fixture.devices.modify(.gdev, "/iso/hpux.iso", AttributeSetting(name: "PRESERVE", value: "YES"))
        let dvd = ResourceStatement(deviceType: .dvd, adapter: "avio_stor", storage: "file", location: "/iso/hpux.iso")
        try fixture.guests.attach(dvd, to: "g1")
        try fixture.guests.detach(location: "/iso/hpux.iso", from: "g1")
        #expect(try fixture.entry("/iso/hpux.iso")?.dependents == [])
        let other = ResourceStatement(deviceType: .dvd, adapter: "avio_stor", storage: "file", location: "/iso/other.iso")
        try fixture.guests.attach(other, to: "g1")
        try fixture.guests.detach(location: "/iso/other.iso", from: "g1")
        #expect(try fixture.entry("/iso/other.iso") == nil)
    }

    @Test func notModifyGuestIsRefused() throws {
        let fixture = try Fixture()
        try fixture.guests.createGuest(name: "g1")
        try fixture.store.executeForTesting("UPDATE guest SET modifiable = 0 WHERE name = 'g1'")
        do {
            try fixture.guests.attach(fixture.disk(fixture.layout.sanDisks[0].path), to: "g1")
            Issue.record("Not Modify guest was changed")
        } catch {
            #expect(error.code == .notModifiable)
            #expect(error.message.contains("modify_status=enabled"))
        }
    }

    @Test func renameKeepsDependentsAndRewritesGuests() throws {
        // hpvm-reference.md (e) example 10.
        let fixture = try Fixture()
        let old = fixture.layout.sanDisks[0].path
        let new = fixture.layout.sanDisks[2].path
        try fixture.guests.createGuest(name: "g1")
        try fixture.guests.attach(fixture.disk(old), to: "g1")
        _ = try fixture.devices.rename(.gdev, old: old, new: [new])
        let entry = try #require(try fixture.entry(new))
        #expect(entry.names == [new] && entry.dependents == ["g1"])
        #expect(entry.wwid == WWID(fixture.layout.sanDisks[2].wwid ?? ""))
        #expect(try fixture.guests.resources(of: "g1").map { $0.location } == [new])
    }

    @Test func attributesAreValidatedByKind() throws {
        let fixture = try Fixture()
        let disk = fixture.layout.sanDisks[0].path
        _ = try fixture.devices.add(.gdev, disk)
        for (name, value) in [("USAGE", "DISK"), ("RECURSIVE", "FS"), ("AUTORDEV", "YES"), ("EXIST", "NO"), ("SHARE", "MAYBE"), ("COLOR", "RED")] {
            #expect(throws: RegistryError.self, "\(name)=\(value)") {
                try fixture.devices.modify(.gdev, disk, AttributeSetting(name: name, value: value))
            }
        }
    }

    @Test func rescanRefreshesExistAndAliasesAndReportsWWIDChanges() throws {
        let fixture = try Fixture()
        let map = fixture.layout.multipathMaps[0]
        _ = try fixture.devices.add(.gdev, map.path)
        _ = try fixture.devices.add(.gdev, fixture.layout.sanDisks[0].path)
        _ = try fixture.devices.add(.gdev, fixture.layout.sanDisks[1].path)
        fixture.host.removeItem(fixture.layout.sanDisks[0].path)
        try fixture.host.setWWID(ofSCSIDisk: fixture.layout.sanDisks[1].names[0], to: "naa.600508b4000115d0000000000000ffff")
        let report = try fixture.devices.rescan()
        #expect(Set(try #require(try fixture.entry(map.path)).names) == Set(map.paths))
        #expect(try fixture.entry(fixture.layout.sanDisks[0].path)?.exists == false)
        #expect(report.wwidMismatches.count == 1)
        // The recorded WWID is kept: following the path would hand a guest another LUN
        #expect(try fixture.entry(fixture.layout.sanDisks[1].path)?.wwid == WWID(fixture.layout.sanDisks[1].wwid ?? ""))
    }
}
