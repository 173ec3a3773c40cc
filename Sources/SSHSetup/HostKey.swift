/// One host key as known_hosts and ssh-keyscan write it: its type and base64 blob.
public struct HostKey: Hashable, Sendable, Codable {
    public let type: String
    public let blob: String

    public init(type: String, blob: String) {
        self.type = type
        self.blob = blob
    }

    /// The known_hosts line for `name`.
    public func line(name: String) -> String { "\(name) \(type) \(blob)" }

    /// The keys in ssh-keyscan or `ssh-keygen -F` output (`name type blob [comment]`), comments skipped.
    public static func parse(_ text: String) -> [HostKey] {
        var keys: [HostKey] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            var fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if fields.first?.hasPrefix("@") == true { fields.removeFirst() }  // @cert-authority, @revoked
            guard fields.count >= 3 else { continue }
            let key = HostKey(type: fields[1], blob: fields[2])
            if !keys.contains(key) { keys.append(key) }
        }
        return keys
    }
}

/// What to do with the keys a host presents, given what known_hosts holds for it.
public enum HostKeyDecision: Equatable, Sendable {
    /// Nothing answered.
    case unreachable
    /// known_hosts has no entry: ask, then add these.
    case new([HostKey])
    /// Known, and every presented key of a known type matches: nothing to add.
    case known
    /// known_hosts has another key for the host: refused, never re-trusted here.
    case changed

    /// Decides, failing closed: a presented key whose type known_hosts has with another blob, or
    /// known entries none of which the host presents, is a change.
    public static func decide(presented: [HostKey], known: [HostKey]) -> HostKeyDecision {
        if presented.isEmpty { return .unreachable }
        if known.isEmpty { return .new(presented) }
        let knownTypes = Set(known.map(\.type))
        let conflicting = presented.contains { knownTypes.contains($0.type) && !known.contains($0) }
        if conflicting || !presented.contains(where: known.contains) { return .changed }
        return .known
    }
}
