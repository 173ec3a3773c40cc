/// The root under which every host path is looked up (`HPVM_ROOT`, default `/`).
///
/// Host paths (`/dev/rdisk/disk2`) are what users type and what the registry stores; the root
/// turns them into real paths (`$HPVM_ROOT/dev/rdisk/disk2`). Symlinks are followed as if the
/// root were `/`: an absolute link target is taken under the root and `..` never climbs above it,
/// so one machine can hold several test hosts.
public struct HostRoot: Sendable, Equatable {
    /// The real path of the root directory, without a trailing slash (empty for `/`).
    public let prefix: String

    /// Creates a root at `path`, an absolute real path.
    public init(_ path: String) {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        prefix = trimmed == "/" ? "" : trimmed
    }

    /// The root's real path, `/` for the real host.
    public var path: String { prefix.isEmpty ? "/" : prefix }

    /// The real path of a host path.
    public func real(_ hostPath: String) -> String {
        if hostPath.hasPrefix("/") { return prefix + hostPath }
        return prefix + "/" + hostPath
    }

    /// The outcome of following a host path to the object it names.
    public struct Resolution: Sendable, Equatable {
        /// The host path of the object reached after every symlink, `..` and `.` was followed.
        public let hostPath: String
        /// Whether that object exists.
        public let exists: Bool
    }

    /// Follows `hostPath` through symlinks under this root.
    ///
    /// - Returns: the final host path and whether it exists; nil for a symlink loop.
    public func resolve(_ hostPath: String) -> Resolution? {
        var pending = Array(components(hostPath).reversed())
        var current: [String] = []
        var links = 0
        while let component = pending.popLast() {
            if component == "." { continue }
            if component == ".." {
                if !current.isEmpty { current.removeLast() }
                continue
            }
            let candidate = current + [component]
            let real = prefix + "/" + candidate.joined(separator: "/")
            guard let kind = FileSystem.lkind(real) else {
                let rest = pending.reversed().filter { $0 != "." }
                return Resolution(hostPath: "/" + (candidate + rest).joined(separator: "/"), exists: false)
            }
            if kind == .symlink {
                links += 1
                guard links <= 40, let target = FileSystem.readLink(real) else { return nil }
                if target.hasPrefix("/") { current = [] }
                pending.append(contentsOf: components(target).reversed())
                continue
            }
            current = candidate
        }
        return Resolution(hostPath: "/" + current.joined(separator: "/"), exists: true)
    }

    private func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }
}
