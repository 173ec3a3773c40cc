public import Registry
public import SSH

/// Every failure of a migration: what failed, in which phase, and the error underneath.
public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable { case usage, refused, checks, ssh, protocolError, target, interrupted }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// Bad options.
        public static let usage = Code(.usage)
        /// The source registry refused (no such guest, shared device, locked).
        public static let refused = Code(.refused)
        /// The target's checks found errors.
        public static let checks = Code(.checks)
        /// The SSH connection failed.
        public static let ssh = Code(.ssh)
        /// The target answered something that is not the protocol, or another version.
        public static let protocolError = Code(.protocolError)
        /// The target refused a phase.
        public static let target = Code(.target)
        /// The migration stopped after the point of no return; recovery finishes it.
        public static let interrupted = Code(.interrupted)
        public var description: String { base.rawValue }
    }

    public let code: Code
    /// Lines for the user, each printed after `hpvmmigrate: `.
    public let lines: [String]
    public let phase: String?
    public let cause: (any Error & Sendable)?

    public init(_ code: Code, _ lines: [String], phase: String? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.lines = lines
        self.phase = phase
        self.cause = cause
    }

    public var description: String { lines.joined(separator: "\n") }

    /// HPVM's SSH message, SSH's own explanation, and — when `hpvmsshsetup` fixes it — its command line.
    static func ssh(_ error: SSHError, advice: String? = nil) -> MigrationError {
        MigrationError(
            .ssh,
            ["SSH execution error. Make sure ssh is setup right on both source and target systems.", error.message]
                + (advice.map { [$0] } ?? []),
            phase: "connect", cause: error)
    }

    static func registry(_ error: RegistryError, phase: String) -> MigrationError {
        MigrationError(.refused, [error.message], phase: phase, cause: error)
    }
}
