/// Every failure of the registry layer: what went wrong, on which object, and what to do.
public struct RegistryError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; codes can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case badSpec, badName, badAttribute, badSize
            case notFound, duplicate, restricted, inUse, hasDependents, notModifiable, conflict, notAllowed
            case notARegistry, newerRegistry, readOnly, busy, io, database, tampered
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A malformed option argument (`-a foo:/x`, a missing field).
        public static let badSpec = Code(.badSpec)
        /// A name with a forbidden character, bad UTF-8, or too long.
        public static let badName = Code(.badName)
        /// An unknown attribute, a bad value, or an attribute not allowed on this entry.
        public static let badAttribute = Code(.badAttribute)
        /// A file size that is not a number followed by M or G.
        public static let badSize = Code(.badSize)
        /// The entry, alias, dependent or guest does not exist.
        public static let notFound = Code(.notFound)
        /// The name is already in the registry.
        public static let duplicate = Code(.duplicate)
        /// The device is restricted to the host.
        public static let restricted = Code(.restricted)
        /// The device is used by a guest.
        public static let inUse = Code(.inUse)
        /// The entry still has dependents.
        public static let hasDependents = Code(.hasDependents)
        /// The guest is Not Modify, or locked by a migration.
        public static let notModifiable = Code(.notModifiable)
        /// Another rule is in the way.
        public static let conflict = Code(.conflict)
        /// A well-formed attribute change a rule refuses: not allowed on this entry's type or kind,
        /// computed, or kept by another command (a refusal, exit 1, not a usage error).
        public static let notAllowed = Code(.notAllowed)
        /// The file at the registry path is not an SQLite database, or another program's.
        public static let notARegistry = Code(.notARegistry)
        /// The registry was written by a newer hpvm: its schema has a migration this build does not know.
        public static let newerRegistry = Code(.newerRegistry)
        /// The registry cannot be written.
        public static let readOnly = Code(.readOnly)
        /// Another command held the registry for longer than the busy timeout.
        public static let busy = Code(.busy)
        /// A file could not be read, written or created.
        public static let io = Code(.io)
        /// Any other SQLite failure.
        public static let database = Code(.database)
        /// The audit log's hash chain is broken.
        public static let tampered = Code(.tampered)

        public var description: String { base.rawValue }
        /// Whether the failure is a malformed command line rather than a refused operation.
        public var isUsage: Bool { [.badSpec, .badName, .badAttribute, .badSize].contains(base) }
    }

    public let code: Code
    /// A sentence for people: what failed, which object, what to do.
    public let message: String
    /// The error from the layer below, if any.
    public let cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }

    /// The message followed by the underlying cause, for `-V`.
    public func detailedDescription() -> String {
        guard let cause else { return message }
        return message + "\n  cause: " + String(describing: cause)
    }
}
