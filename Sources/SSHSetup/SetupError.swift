/// Every failure of `hpvmsshsetup`: what failed, for which host, and what to do about it.
public struct SetupError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable { case usage, refused, failed }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// A malformed command line: a hostile or impossible host name, path or user.
        public static let usage = Code(.usage)
        /// Set-up refused: a changed host key, a key that was not accepted, an RSA key.
        public static let refused = Code(.refused)
        /// An OpenSSH tool or the peer failed.
        public static let failed = Code(.failed)
        public var description: String { base.rawValue }
    }

    public let code: Code
    /// Lines for the user, each printed after `hpvmsshsetup: `.
    public let lines: [String]
    public let cause: (any Error & Sendable)?

    public init(_ code: Code, _ lines: [String], cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.lines = lines
        self.cause = cause
    }

    public init(_ code: Code, _ line: String, cause: (any Error & Sendable)? = nil) {
        self.init(code, [line], cause: cause)
    }

    public var description: String { lines.joined(separator: "\n") }
}
