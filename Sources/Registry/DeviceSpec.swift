/// An attribute assignment, `NAME=VALUE`.
public struct AttributeSetting: Sendable, Equatable {
    public let name: String
    public let value: String
}

/// Which entries `-l` prints.
public struct ListQuery: Sendable, Equatable {
    public enum Filter: Sendable, Equatable {
        case none
        case entry(String)
        case dependent(String)
        case attribute(AttributeSetting)
    }
    /// nil lists every type (`all`).
    public let type: EntryType?
    public let filter: Filter

    public init(type: EntryType?, filter: Filter) {
        self.type = type
        self.filter = filter
    }
}

/// One `hpvmdevmgmt` operation, parsed from HP-UX option syntax (hpvm-reference.md b.1, 4.0 spelling).
public enum DeviceOperation: Sendable, Equatable {
    case add(EntryType, String, AttributeSetting?)
    case delete(EntryType, String)
    /// `-d gdev:{entry|all}:depend:guest`; a nil entry means `all`.
    case deleteDependent(entry: String?, dependent: String)
    case deleteAttribute(EntryType, String, attribute: String)
    case clearIgnoreWWID(EntryType, String)
    case deleteAlias(String)
    case modify(EntryType, String, AttributeSetting)
    case setIgnoreWWID(EntryType, String, Bool)
    case rename(EntryType, old: String, new: [String])
    case list(ListQuery)

    /// Parses the argument of `-a`, `-d`, `-m`, `-n` or `-l`.
    ///
    /// - Throws: a usage ``RegistryError`` naming the option, the bad field and what was expected.
    public static func parse(option: Character, _ text: String) throws(RegistryError) -> DeviceOperation {
        let shown = "-\(option) '\(Display.safe(text))'"
        func fail(_ why: String) -> RegistryError { RegistryError(.badSpec, "\(shown): \(why)") }
        guard !text.isEmpty else { throw fail("empty argument") }
        guard text.utf8.count <= 4096 else {
            throw RegistryError(.badSpec, "-\(option): argument of \(text.utf8.count) bytes is too long (at most 4096).")
        }
        let fields = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func type(_ field: String, allowAll: Bool = false) throws(RegistryError) -> EntryType? {
            if allowAll && field == "all" { return nil }
            guard let type = EntryType(rawValue: field) else {
                let expected = allowAll ? "all, server, env, rdev or gdev" : "server, env, rdev or gdev"
                throw fail("unknown entry type '\(Display.safe(field))' (expected \(expected))")
            }
            return type
        }
        func name(_ field: String) throws(RegistryError) -> String {
            do { return try NameRules.entryName(field) } catch { throw fail(error.message) }
        }
        func setting(_ field: String) throws(RegistryError) -> AttributeSetting {
            let parts = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw fail("expected NAME=VALUE after attr:, got '\(Display.safe(field))'")
            }
            guard !parts[1].isEmpty else { throw fail("attribute \(Display.safe(parts[0])) has an empty value") }
            return AttributeSetting(name: parts[0], value: parts[1])
        }

        switch option {
        case "a":
            guard fields.count == 2 || (fields.count == 4 && fields[2] == "attr") else {
                throw fail("expected type:entry-name or type:entry-name:attr:NAME=VALUE")
            }
            let t = try type(fields[0])!
            let n = try name(fields[1])
            return .add(t, n, fields.count == 4 ? try setting(fields[3]) : nil)
        case "d":
            if fields.count == 2 && fields[0] == "gdev_alias" {
                return .deleteAlias(try name(fields[1]))
            }
            if fields.count == 2 {
                return .delete(try type(fields[0])!, try name(fields[1]))
            }
            if fields.count == 3 && fields[2] == "IGNOREWWID" {
                let t = try type(fields[0])!
                guard t == .gdev || t == .rdev else { throw fail("IGNOREWWID applies to gdev and rdev entries only") }
                return .clearIgnoreWWID(t, try name(fields[1]))
            }
            if fields.count == 4 && fields[2] == "depend" {
                guard fields[0] == "gdev" else { throw fail("dependents can be removed from gdev entries only") }
                let entry = fields[1] == "all" ? nil : try name(fields[1])
                do {
                    return .deleteDependent(entry: entry, dependent: try NameRules.dependentName(fields[3]))
                } catch {
                    throw fail(error.message)
                }
            }
            if fields.count == 4 && fields[2] == "attr" {
                let t = try type(fields[0])!
                guard !fields[3].isEmpty, !fields[3].contains("=") else {
                    throw fail("expected an attribute name after attr:, without a value")
                }
                return .deleteAttribute(t, try name(fields[1]), attribute: fields[3])
            }
            throw fail(
                "expected type:entry-name, gdev:{all|entry-name}:depend:dependent, type:entry-name:attr:NAME, {gdev|rdev}:/devpath:IGNOREWWID or gdev_alias:path"
            )
        case "m":
            if fields.count == 3 && fields[2].hasPrefix("IGNOREWWID=") {
                let t = try type(fields[0])!
                guard t == .gdev || t == .rdev else { throw fail("IGNOREWWID applies to gdev and rdev entries only") }
                let value = String(fields[2].dropFirst("IGNOREWWID=".count))
                guard value == "YES" || value == "NO" else {
                    throw fail("bad value '\(Display.safe(value))' for IGNOREWWID (expected YES or NO)")
                }
                return .setIgnoreWWID(t, try name(fields[1]), value == "YES")
            }
            guard fields.count == 4 && fields[2] == "attr" else {
                throw fail("expected type:entry-name:attr:NAME=VALUE or {gdev|rdev}:/devpath:IGNOREWWID={YES|NO}")
            }
            return .modify(try type(fields[0])!, try name(fields[1]), try setting(fields[3]))
        case "n":
            guard fields.count == 3 else { throw fail("expected {gdev|rdev}:old-name:new-name0[,new-name1]") }
            let t = try type(fields[0])!
            guard t == .gdev || t == .rdev else { throw fail("only gdev and rdev entries can be replaced") }
            let old = try name(fields[1])
            let newNames = fields[2].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard (1...2).contains(newNames.count) else { throw fail("give one or two new names, separated by a comma") }
            var parsed: [String] = []
            for newName in newNames { parsed.append(try name(newName)) }
            if parsed.count == 2 && parsed[0] == parsed[1] { throw fail("the two new names are the same") }
            return .rename(t, old: old, new: parsed)
        case "l":
            let t = try type(fields[0], allowAll: true)
            if fields.count == 1 { return .list(ListQuery(type: t, filter: .none)) }
            if fields.count == 3 && fields[1] == "depend" {
                do {
                    return .list(ListQuery(type: t, filter: .dependent(try NameRules.dependentName(fields[2]))))
                } catch {
                    throw fail(error.message)
                }
            }
            guard fields.count == 2 else {
                throw fail("expected type, type:entry-name, type:depend:dependent or type:NAME=VALUE")
            }
            if !fields[1].hasPrefix("/"), fields[1].contains("=") {
                let s = try setting(fields[1])
                guard s.name.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
                    throw fail("bad attribute name '\(Display.safe(s.name))'")
                }
                guard DeviceAttribute.known.contains(s.name) else {
                    throw RegistryError(
                        .badAttribute,
                        "\(shown): unknown attribute '\(Display.safe(s.name))' (known: \(DeviceAttribute.known.sorted().joined(separator: ", "))).")
                }
                return .list(ListQuery(type: t, filter: .attribute(s)))
            }
            return .list(ListQuery(type: t, filter: .entry(try name(fields[1]))))
        default:
            throw RegistryError(.badSpec, "-\(option) takes no entry specification")
        }
    }

    /// Whether the operation adds an entry (`-a`): it may create the registry.
    public var isAdd: Bool {
        if case .add = self { return true }
        return false
    }

    /// Whether the operation only reads (`-l`).
    public var isList: Bool {
        if case .list = self { return true }
        return false
    }
}

/// What a name in the registry may hold.
public enum NameRules {
    /// The longest entry name accepted, in bytes (PATH_MAX is 4096; HPVM's paths are far shorter).
    public static let maxEntryBytes = 1024
    /// The longest dependent (guest) name accepted, in bytes.
    public static let maxDependentBytes = 256

    /// Checks and normalises an entry name: an absolute host path (`//` and `/./` collapsed, a
    /// trailing `/` dropped, `..` refused) or a vswitch name of letters, digits, `_`, `.` and `-`.
    public static func entryName(_ raw: String) throws(RegistryError) -> String {
        try commonChecks(raw, what: "entry name", limit: maxEntryBytes)
        guard raw.hasPrefix("/") else {
            guard raw.utf8.count <= 15,
                raw.unicodeScalars.allSatisfy({
                    $0.isASCII && (CharacterSetLite.isAlnum($0) || $0 == "_" || $0 == "." || $0 == "-")
                })
            else {
                throw RegistryError(
                    .badName,
                    "'\(Display.safe(raw))' is neither an absolute path nor a vswitch name (1-15 letters, digits, '_', '.', '-')")
            }
            return raw
        }
        var parts: [Substring] = []
        for part in raw.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            if part == ".." { throw RegistryError(.badName, "path '\(Display.safe(raw))' holds '..'; give it without") }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// Whether `raw` is an entry name a command line can give back as it is (no `:`, `,`, white
    /// space or control character, already in normal form).
    public static func isNameable(_ raw: String) -> Bool {
        (try? entryName(raw)) == raw
    }

    /// Checks a dependent (guest) name: 1–256 bytes, no whitespace, control bytes, `:` or `,`.
    public static func dependentName(_ raw: String) throws(RegistryError) -> String {
        try commonChecks(raw, what: "dependent name", limit: maxDependentBytes)
        return raw
    }

    private static func commonChecks(_ raw: String, what: String, limit: Int) throws(RegistryError) {
        guard !raw.isEmpty else { throw RegistryError(.badName, "empty \(what)") }
        guard raw.utf8.count <= limit else {
            throw RegistryError(
                .badName, "\(what) '\(Display.safe(raw, limit: 40))' is \(raw.utf8.count) bytes long (at most \(limit))")
        }
        for scalar in raw.unicodeScalars {
            let bad: String?
            switch scalar {
            case ":": bad = "':'"
            case ",": bad = "','"
            case "\u{FFFD}": bad = "invalid UTF-8"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) {
                    bad = "a control character"
                } else if scalar.properties.isWhitespace {
                    bad = "white space"
                } else {
                    bad = nil
                }
            }
            if let bad { throw RegistryError(.badName, "\(what) '\(Display.safe(raw))' contains \(bad)") }
        }
    }
}
