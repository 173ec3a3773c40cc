public import Runtime

/// A guest's fleet lease as migration moves it (issue 11; `Fleet` implements it, the command
/// passes it in): the lease a QEMU holds while it runs, and its hand-over at the end of `-o`.
///
/// The source releases the lease of its paused QEMU once it is past the point of no return and
/// learns the lease's version; its QEMU then ends. The target takes the lease for its own QEMU, at
/// that version, before the guest continues there: a host that took the lease in between makes
/// the take fail, and the guest then stays paused, never running twice.
public protocol GuestLeases {
    /// The lease the guest's QEMU holds on this host, or nil when fleet leases are off here. With
    /// `incoming`, its QEMU only registers (an online migration's target) and takes nothing.
    func hold(guest: String, incoming: Bool) throws -> LeaseHold?
    /// Releases the lease held by the guest's QEMU `pid`; its version, nil when leases are off.
    func release(guest: String, pid: Int32) throws -> UInt64?
    /// Takes the lease for the guest's registered QEMU `pid`, at `version` (any, when nil).
    /// Does nothing when leases are off here.
    func acquire(guest: String, pid: Int32, version: UInt64?) throws
}

/// No fleet leases: every start and migration goes on as without sanlock.
public struct NoLeases: GuestLeases {
    public init() {}
    public func hold(guest: String, incoming: Bool) throws -> LeaseHold? { nil }
    public func release(guest: String, pid: Int32) throws -> UInt64? { nil }
    public func acquire(guest: String, pid: Int32, version: UInt64?) throws {}
}
