internal import Registry
public import Runtime

/// The target's side of an online migration's end, shared by the target half and by recovery
/// here: a commit lets the arrived guest's QEMU continue before the guest becomes runnable, and a
/// rollback ends that QEMU before the arrival goes.
public struct LiveArrival {
    let guests: GuestRegistry
    let runtime: GuestRuntime?
    var leases: any GuestLeases = NoLeases()

    /// The detail of the source's `source-stopped` journal row that keeps the version of the lease
    /// it released (`lease version N`), for recovery on either host.
    static func leaseVersionDetail(_ version: UInt64) -> String { leaseVersionPrefix + String(version) }

    /// The version of the lease the source released, from a migration's journal (nil: none kept).
    static func releasedLeaseVersion(_ journal: [JournalEntry]) -> UInt64? {
        guard let detail = journal.last(where: { $0.role == .source && $0.phase == .sourceStopped })?.detail,
            detail.hasPrefix(leaseVersionPrefix)
        else { return nil }
        return UInt64(detail.dropFirst(leaseVersionPrefix.count))
    }

    private static let leaseVersionPrefix = "lease version "

    /// How long the target waits for the last of a stream the source saw complete.
    static let arrivalTimeout: Duration = .seconds(10)

    static func noRuntime(_ host: String) -> RuntimeError {
        RuntimeError(.badSetting, "\(host) cannot run guests: its runtime settings (HPVM_QEMU, HPVM_ACCEL) are wrong; hpvmstart says why")
    }

    /// Whether migration `id` started a QEMU here (an online arrival).
    func isOnline(_ id: String) throws(RegistryError) -> Bool {
        try guests.journal(migrationID: id).contains { $0.role == .target && $0.phase == .targetStarted }
    }

    /// Makes the arrival runnable (phase 6). Online, its QEMU continues first (`continued`): a
    /// guest is never runnable here while its QEMU waits paused. Safe to repeat.
    ///
    /// - Returns: what a person must know: the QEMU of an online arrival ended before it could
    ///   continue, so the guest is Off (and runnable) here.
    ///
    /// - Parameter leaseVersion: the guest's fleet lease's version as the source released it: the
    ///   QEMU here takes the lease at that version before it continues, or does not continue.
    func commit(_ name: String, migrationID: String, peer: String, leaseVersion: UInt64? = nil) throws -> String? {
        guard try isOnline(migrationID) else {
            try guests.commitArrival(name, migrationID: migrationID, peer: peer)
            return nil
        }
        if let guest = try guests.guest(named: name), guest.migrationLock != migrationID {
            // Committed already: a repeated commit changes nothing.
            try guests.commitArrival(name, migrationID: migrationID, peer: peer)
            return nil
        }
        if let runtime, runtime.isRunning(name) {
            _ = try runtime.waitForIncoming(name, until: .now + Self.arrivalTimeout)
            if let pid = try runtime.folder(name).runningPID {
                try leases.acquire(guest: name, pid: pid, version: leaseVersion)
            }
            try runtime.resume(name)
            try guests.commitArrival(name, migrationID: migrationID, peer: peer, phase: .continued)
            return nil
        }
        try guests.commitArrival(name, migrationID: migrationID, peer: peer)
        return "guest \(name)'s QEMU on the target ended before it could continue: the guest is Off and runnable there (start it with hpvmstart -P \(name))"
    }

    /// Rolls the arrival back: its QEMU, if one waits for or got the stream, ends first.
    func abort(_ name: String, migrationID: String, peer: String) throws {
        if let runtime, let guest = try guests.guest(named: name), guest.migrationLock == migrationID, runtime.isRunning(name) {
            try runtime.stop(name, mode: .force)
        }
        try guests.abortArrival(name, migrationID: migrationID, peer: peer)
    }
}
