/// The phases of a migration (DESIGN.md §5), as each host's journal records them and the
/// protocol's `status` reports them: the raw values are the journal's and the wire's strings.
///
/// The source records `preparing` (phase 1), then either `source-disabled` (phase 5, the point of
/// no return) and `done` (phase 7; `removing` first with `-D`), or a rollback: `aborted`, or
/// `aborting` while the target may still hold a Not Runnable copy it was not told to drop. The
/// target records `copy-claimed` for each `-C` destination, `prepared` (phase 4), then
/// `committed` (phase 6) or `aborted`.
///
/// An online migration (`-o`) adds the live phases: the target records `target-started` once the
/// arriving guest's QEMU waits, paused, for the stream; the source records `streamed` when the
/// whole stream reached it, then `source-disabled`, then `source-stopped` once its own QEMU has
/// ended; the target records `continued` (in place of `committed`) when its QEMU runs the guest.
public enum MigrationPhase: String, Sendable, CaseIterable, Codable {
    case preparing
    case aborting
    case aborted
    case sourceDisabled = "source-disabled"
    case removing
    case done
    case copyClaimed = "copy-claimed"
    case prepared
    case committed
    /// Online (`-o`), target: the arriving guest's QEMU runs paused, waiting for the stream.
    case targetStarted = "target-started"
    /// Online, source: the whole stream reached the target's QEMU; the source's QEMU is paused.
    case streamed
    /// Online, source: after `source-disabled`, the source's QEMU has ended.
    case sourceStopped = "source-stopped"
    /// Online, target: the arrived guest's QEMU continued (it runs here) and the guest is runnable.
    case continued
    /// Only in a `status` answer: the host has no record of the migration.
    case noRecord = "none"

    /// Whether a migration whose last journal row on one side is this phase has ended there:
    /// nothing is left for recovery to settle on that side.
    public func hasEnded(for role: MigrationRole) -> Bool {
        switch (role, self) {
        case (_, .done), (_, .aborted), (.target, .committed), (.target, .continued), (_, .noRecord): true
        default: false
        }
    }

    /// Whether the source is past its point of no return (its copy is Not Runnable, or gone with `-D`).
    public var isPastPointOfNoReturn: Bool {
        self == .sourceDisabled || self == .sourceStopped || self == .removing || self == .done
    }
}

/// Which side of a migration a journal row belongs to.
public enum MigrationRole: String, Sendable, CaseIterable, Codable {
    case source, target
}
