/// Checks of what the command line hands to OpenSSH's tools, made before anything runs.
///
/// Host names and paths only ever travel as separate words of an argument vector, but
/// `ssh-copy-id` is itself a shell script and `ssh -o` values are parsed like `ssh_config` lines,
/// so anything that could be read as an option, a word break, a quote or a `%` token is refused.
public enum SetupInput {
    /// The longest host name accepted (DNS allows 253 characters).
    public static let maximumHostLength = 253

    /// Refuses anything but a host name or an IPv4/IPv6 address: ASCII letters, digits, `.`, `-`,
    /// `_` and `:`, not starting with `-` or `.`, at most 253 characters.
    public static func checkHost(_ host: String) throws(SetupError) {
        let shown = show(host)
        guard !host.isEmpty else { throw SetupError(.usage, "an empty host name is not a host.") }
        guard host.utf8.count <= maximumHostLength else {
            throw SetupError(.usage, "host '\(shown)' is \(host.utf8.count) characters long; a host name has at most \(maximumHostLength).")
        }
        guard !host.hasPrefix("-") else {
            throw SetupError(.usage, "host '\(shown)' starts with '-': it would be read as an option, not a host.")
        }
        guard !host.hasPrefix(".") else { throw SetupError(.usage, "host '\(shown)' starts with '.': not a host name.") }
        if let bad = host.unicodeScalars.first(where: { !isHostScalar($0) }) {
            throw SetupError(
                .usage,
                "host '\(shown)' holds \(describe(bad)); a host is a name or address of letters, digits, '.', '-', '_' and ':' only.")
        }
    }

    /// Refuses a login name that is not a plain POSIX user name.
    public static func checkUser(_ user: String) throws(SetupError) {
        let ok = !user.isEmpty && user.utf8.count <= 32 && !user.hasPrefix("-")
            && user.unicodeScalars.allSatisfy { isAlnum($0) || "._-".unicodeScalars.contains($0) }
        guard ok else { throw SetupError(.usage, "user '\(show(user))' is not a login name (letters, digits, '.', '_', '-').") }
    }

    /// Refuses a path OpenSSH would split, expand or take for an option; returns it absolute.
    ///
    /// - Parameter directory: the folder a relative path is taken from.
    public static func checkPath(_ path: String, option: String, directory: String) throws(SetupError) -> String {
        let shown = show(path)
        guard !path.isEmpty, path.utf8.count <= 1024 else {
            throw SetupError(.usage, "\(option) '\(shown)': give a path of 1 to 1024 characters.")
        }
        guard !path.hasPrefix("-") else { throw SetupError(.usage, "\(option) '\(shown)' starts with '-': it would be read as an option.") }
        if let bad = path.unicodeScalars.first(where: { $0.value < 0x21 || $0.value == 0x7F || "\"'\\%,#$`".unicodeScalars.contains($0) }) {
            throw SetupError(
                .usage,
                "\(option) '\(shown)' holds \(describe(bad)), which ssh's options would split or expand; use a path without it.")
        }
        if path.hasPrefix("/") { return path }
        return (directory.hasSuffix("/") ? directory : directory + "/") + path
    }

    static func isHostScalar(_ scalar: Unicode.Scalar) -> Bool {
        isAlnum(scalar) || ".-_:".unicodeScalars.contains(scalar)
    }

    static func isAlnum(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
    }

    static func describe(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case " ": return "a space"
        case "\t": return "a tab"
        case "\n": return "a line break"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F { return "a control character" }
            return "'\(scalar)'"
        }
    }

    /// `value` safe to print: at most 60 characters, control characters escaped.
    static func show(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars.prefix(60) {
            if scalar.value < 0x20 || scalar.value == 0x7F { out += "\\x" + String(scalar.value, radix: 16) } else { out.unicodeScalars.append(scalar) }
        }
        return value.unicodeScalars.count > 60 ? out + "..." : out
    }
}
