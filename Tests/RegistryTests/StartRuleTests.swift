import HPVMTestSupport
import Host
import Testing
@testable import Registry

/// The start-time rule (hpvm-reference.md a.6 rule 1): sharing is judged among the guests that run.
@Suite struct StartRuleTests {
    /// g1 on disk1 and g2 on disk2, then disk2's LUN presented anew as disk1's.
    func twoGuestsOnOneLUN() throws -> Fixture {
        let fixture = try Fixture(sanDisks: 2, aliasedSANDisks: 0, multipathMaps: 0, nvmeDisks: 0, dasDisks: 0)
        try fixture.guests.createGuest(name: "g1")
        try fixture.guests.attach(fixture.disk("/dev/rdisk/disk1"), to: "g1")
        try fixture.guests.createGuest(name: "g2")
        try fixture.guests.attach(fixture.disk("/dev/rdisk/disk2"), to: "g2")
        try fixture.host.setWWID(ofSCSIDisk: fixture.layout.sanDisks[1].names[0], to: fixture.layout.sanDisks[0].wwid!)
        return fixture
    }

    @Test func overlappingStorageOfARunningGuestRefusesTheStartAndChangesNothing() throws {
        // Given g1 running on the LUN g2's disk now is
        let fixture = try twoGuestsOnOneLUN()
        let before = try fixture.snapshot()
        var launched = false
        // When g2 starts
        do {
            try fixture.guests.start("g2", isRunning: { $0 == "g1" }) { _ in launched = true }
            Issue.record("g2 started beside g1")
        } catch let error as RegistryError {
            // Then it is refused before anything is launched, and the registry is as it was
            #expect(error.code == .inUse)
            #expect(error.message.contains("used by running guest g1 and not SHARE=YES"))
        }
        #expect(!launched)
        #expect(try fixture.snapshot() == before)
    }

    @Test func aGuestThatDoesNotRunDoesNotCount() throws {
        // Given the same two guests, neither running
        let fixture = try twoGuestsOnOneLUN()
        let before = try fixture.snapshot()
        // When g2 starts, then its plan names its own backing store, under the root
        let plan = try fixture.guests.start("g2", isRunning: { _ in false }) { $0 }
        #expect(plan.guest.name == "g2")
        #expect(plan.resources.map(\.backingPath) == [fixture.host.root.real("/dev/" + fixture.layout.sanDisks[1].names[0])])
        #expect(plan.resources.map(\.shared) == [false])
        #expect(try fixture.snapshot() == before)
    }

    @Test func whatTheLauncherThrowsComesBackAsItIs() throws {
        struct LaunchFailed: Error {}
        let fixture = try twoGuestsOnOneLUN()
        #expect(throws: LaunchFailed.self) {
            try fixture.guests.start("g1", isRunning: { _ in false }) { _ in throw LaunchFailed() }
        }
    }
}
