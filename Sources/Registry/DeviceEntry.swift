public import Host

/// The four kinds of entry HPVM's device database holds.
public enum EntryType: String, Sendable, Codable, CaseIterable {
    /// A device, file, directory or vswitch that guests use or may use.
    case gdev
    /// A device, file or directory restricted to the host.
    case rdev
    /// A VM Host device entry (informational).
    case server
    /// An environmental entry (informational).
    case env
}

/// One entry of the device registry, as `hpvmdevmgmt -l` shows it.
public struct DeviceEntry: Sendable, Equatable {
    public let id: Int64
    public let type: EntryType
    /// The entry's names: the primary name first, then its aliases.
    public let names: [String]
    public let devType: DeviceKind
    public let exists: Bool
    /// The recorded WWID, in normal form.
    public let wwid: WWID?
    /// The key the rules compare (see ``Host/StorageIdentity/key(ignoringWWID:)``).
    public let identityKey: String
    /// For a partition, the key of the disk that holds it.
    public let containerKey: String?
    /// The host path the primary name resolved to when last checked.
    public let resolvedPath: String?
    /// How the device reached the host when last checked (`fc`, `iscsi`, `multipath`, `sas`…).
    public let transport: String?
    public let ignoreWWID: Bool
    /// Stored attributes: SHARE, USAGE, PRESERVE, RECURSIVE, AUTORDEV.
    public internal(set) var attributes: [String: String]
    /// Guests (and device entities) that use the entry, sorted.
    public let dependents: [String]

    /// The primary name.
    public var name: String { names[0] }

    /// Whether guests may share the device.
    public var isShared: Bool { attributes["SHARE"] == "YES" }

    /// The attributes in `-l` order: CONFIG, EXIST, DEVTYPE, SHARE, then the optional ones.
    public var displayAttributes: [(String, String)] {
        var list: [(String, String)] = [("CONFIG", type.rawValue), ("EXIST", exists ? "YES" : "NO"), ("DEVTYPE", devType.rawValue)]
        list.append(("SHARE", attributes["SHARE"] ?? "NO"))
        for name in DeviceAttribute.optionalOrder {
            if let value = attributes[name] { list.append((name, value)) }
        }
        if ignoreWWID { list.append(("IGNOREWWID", "YES")) }
        return list
    }

    /// The entry as one JSON object, for `hpvmdevmgmt -l … --json`.
    public var jsonText: String {
        var fields = [
            "\"names\":" + json(names),
            "\"type\":" + json(type.rawValue),
            "\"exist\":" + (exists ? "true" : "false"),
            "\"devType\":" + json(devType.rawValue),
        ]
        var attributeFields: [String: String] = [:]
        for (key, value) in displayAttributes where !["CONFIG", "EXIST", "DEVTYPE"].contains(key) {
            attributeFields[key] = value
        }
        fields.append("\"attributes\":" + json(attributeFields))
        fields.append("\"dependents\":" + json(dependents))
        fields.append("\"wwid\":" + json(wwid?.description))
        fields.append("\"transport\":" + json(transport))
        fields.append("\"resolvedPath\":" + json(resolvedPath))
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// The entry in HPVM's `-l` line format:
    /// `name[,alias…]:CONFIG=…,EXIST=…,DEVTYPE=…,SHARE=…[,…]:dependents:wwid`.
    ///
    /// A name, value or dependent that holds what the line uses as a separator (`,` `:` `=`), a
    /// backslash or a control character is escaped (``Display/listField(_:)``): HP-UX device
    /// names never hold them, so a script written for HP's output reads every line as before.
    public var listLine: String {
        names.map(Display.listField).joined(separator: ",") + ":"
            + displayAttributes.map { "\($0.0)=\(Display.listField($0.1))" }.joined(separator: ",") + ":"
            + dependents.map(Display.listField).joined(separator: ",") + ":" + (wwid?.description ?? "")
    }
}

/// What each attribute accepts and where it is allowed (hpvm-reference.md a.5).
public enum DeviceAttribute {
    /// Optional attributes in the order `-l` prints them after SHARE.
    public static let optionalOrder = ["USAGE", "PRESERVE", "RECURSIVE", "AUTORDEV"]
    /// Every attribute name an entry can carry: what a `-l type:NAME=VALUE` filter may name.
    public static let known: Set<String> = ["CONFIG", "EXIST", "DEVTYPE", "SHARE", "USAGE", "PRESERVE", "RECURSIVE", "AUTORDEV", "IGNOREWWID"]
    /// Attributes the system computes and nobody sets.
    public static let computed: Set<String> = ["CONFIG", "EXIST", "DEVTYPE"]
    /// Every attribute a user may set with `-a …:attr:` or `-m`.
    public static let settable: [String: [String]] = [
        "SHARE": ["YES", "NO"],
        "USAGE": ["DISK", "DVD"],
        "PRESERVE": ["YES", "NO"],
        "RECURSIVE": ["FS", "DIR"],
    ]

    /// Checks that `name=value` may be set on an entry of this type and kind.
    ///
    /// - Throws: ``RegistryError/Code-swift.struct/badAttribute`` (a usage error) for an unknown
    ///   name, a bad value or IGNOREWWID written with `attr:`; ``RegistryError/Code-swift.struct/notAllowed``
    ///   (a refusal) naming the rule that refuses a well-formed setting.
    public static func validate(name: String, value: String?, type: EntryType, kind: DeviceKind, entry: String)
        throws(RegistryError)
    {
        if computed.contains(name) {
            throw RegistryError(.notAllowed, "\(name) is computed by hpvmdevmgmt and cannot be set or removed.")
        }
        if name == "AUTORDEV" {
            throw RegistryError(
                .notAllowed, "AUTORDEV is managed by hpvmhostrdev only; do not add, change or remove it by hand.")
        }
        if name == "IGNOREWWID" {
            throw RegistryError(
                .badAttribute,
                "IGNOREWWID is set with -m \(type.rawValue):\(entry):IGNOREWWID=YES and removed with -d \(type.rawValue):\(entry):IGNOREWWID, without attr:.")
        }
        guard let allowed = settable[name] else {
            throw RegistryError(
                .badAttribute,
                "unknown attribute '\(Display.safe(name))' (known: SHARE, USAGE, PRESERVE, RECURSIVE; computed: CONFIG, EXIST, DEVTYPE).")
        }
        if let value, !allowed.contains(value) {
            throw RegistryError(
                .badAttribute,
                "bad value '\(Display.safe(value))' for \(name) (expected \(allowed.joined(separator: " or "))).")
        }
        switch name {
        case "USAGE":
            guard type == .gdev, kind == .file else {
                throw RegistryError(
                    .notAllowed,
                    "USAGE is valid only on gdev entries for files; \(Display.safe(entry)) is \(type.rawValue) \(kind.rawValue).")
            }
        case "PRESERVE":
            guard type == .gdev else {
                throw RegistryError(.notAllowed, "PRESERVE is valid only on gdev entries, not \(type.rawValue).")
            }
        case "RECURSIVE":
            guard type == .rdev, kind == .directory else {
                throw RegistryError(
                    .notAllowed,
                    "RECURSIVE is valid only on rdev entries for directories; \(Display.safe(entry)) is \(type.rawValue) \(kind.rawValue).")
            }
        case "SHARE":
            if type == .rdev && value == "YES" {
                throw RegistryError(.notAllowed, "a restricted (rdev) entry cannot be shared with guests.")
            }
        default:
            break
        }
    }
}

/// Making user-supplied text safe to print in a message.
public enum Display {
    /// `text` with control characters escaped and cut to 80 characters, so a hostile name can
    /// neither drive the terminal nor flood it.
    public static func list(_ items: [String], separator: String = ", ") -> String {
        items.map { safe($0) }.joined(separator: separator)
    }

    /// One field of an `hpvmdevmgmt -l` line: `\` becomes `\\`; `,` `:` `=`, control characters
    /// (C0, DEL and C1) become `\xHH`. Everything else, UTF-8 included, is kept. Ordinary names
    /// come out unchanged (and fast).
    public static func listField(_ text: String) -> String {
        let plain = text.utf8.allSatisfy { byte in
            byte >= 0x20 && byte != 0x7F && byte != UInt8(ascii: ",") && byte != UInt8(ascii: ":")
                && byte != UInt8(ascii: "=") && byte != UInt8(ascii: "\\") && byte < 0xC2
        }
        if plain { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x5C: out += "\\\\"
            case 0x2C, 0x3A, 0x3D, 0..<0x20, 0x7F, 0x80..<0xA0:
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// `text` with its control characters escaped as ``safe(_:limit:)`` does, never shortened: for
    /// listings, where every character counts.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F..<0xA0).contains($0.value) }) else { return text }
        return safe(text, limit: Int.max)
    }

    public static func safe(_ text: String, limit: Int = 80) -> String {
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count >= limit {
                out += "…(\(text.utf8.count) bytes)"
                break
            }
            switch scalar.value {
            case 0x0A: out += "\\n"
            case 0x09: out += "\\t"
            case 0x0D: out += "\\r"
            case 0..<0x20, 0x7F, 0x80..<0xA0:
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            default: out.unicodeScalars.append(scalar)
            }
            count += 1
        }
        return out
    }
}
