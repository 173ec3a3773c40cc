/// A small JSON reader for audit changes (Foundation-free). Objects keep their keys in order and
/// keep repeated keys, which rows written by `hpvmdevmgmt -I` before schema migration 0004 have.
enum AuditJSON: Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([AuditJSON])
    case object([(String, AuditJSON)])

    static func == (lhs: AuditJSON, rhs: AuditJSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)): return a.map(\.0) == b.map(\.0) && a.map(\.1) == b.map(\.1)
        default: return false
        }
    }

    struct Malformed: Error {}

    static func parse(_ text: String) throws(Malformed) -> AuditJSON {
        var parser = Parser(bytes: Array(text.utf8))
        let value = try parser.value()
        parser.skipSpace()
        guard parser.index == parser.bytes.count else { throw Malformed() }
        return value
    }

    /// The first value of `key` in an object.
    subscript(key: String) -> AuditJSON? {
        guard case let .object(pairs) = self else { return nil }
        return pairs.first { $0.0 == key }?.1
    }

    /// Every value of `key` in an object, repeated keys included.
    func all(_ key: String) -> [AuditJSON] {
        guard case let .object(pairs) = self else { return [] }
        return pairs.filter { $0.0 == key }.map(\.1)
    }

    var string: String? { if case let .string(s) = self { return s } else { return nil } }
    var strings: [String] {
        if case let .array(items) = self { return items.compactMap(\.string) }
        return string.map { [$0] } ?? []
    }
    var pairs: [(String, AuditJSON)] { if case let .object(p) = self { return p } else { return [] } }

    /// The value as a column would hold it: text, a number's digits, 1 or 0, or NULL.
    var column: String? {
        switch self {
        case .null: return nil
        case let .bool(b): return b ? "1" : "0"
        case let .number(n): return n
        case let .string(s): return s
        case .array, .object: return nil
        }
    }

    /// Whether any string in the value equals `text`.
    func mentions(_ text: String) -> Bool {
        switch self {
        case let .string(s): return s == text
        case let .array(items): return items.contains { $0.mentions(text) }
        case let .object(pairs): return pairs.contains { $0.1.mentions(text) }
        default: return false
        }
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func value() throws(Malformed) -> AuditJSON {
            skipSpace()
            guard index < bytes.count else { throw Malformed() }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var pairs: [(String, AuditJSON)] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(pairs) }
                while true {
                    skipSpace()
                    let key = try string()
                    skipSpace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw Malformed() }
                    index += 1
                    pairs.append((key, try value()))
                    skipSpace()
                    guard index < bytes.count else { throw Malformed() }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(pairs) }
                    throw Malformed()
                }
            case UInt8(ascii: "["):
                index += 1
                var items: [AuditJSON] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                while true {
                    items.append(try value())
                    skipSpace()
                    guard index < bytes.count else { throw Malformed() }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                    throw Malformed()
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .null)
            default:
                let start = index
                while index < bytes.count, "-+.eE0123456789".utf8.contains(bytes[index]) { index += 1 }
                guard index > start else { throw Malformed() }
                return .number(String(decoding: bytes[start..<index], as: UTF8.self))
            }
        }

        mutating func literal(_ word: String, _ value: AuditJSON) throws(Malformed) -> AuditJSON {
            let w = Array(word.utf8)
            guard index + w.count <= bytes.count, Array(bytes[index..<index + w.count]) == w else { throw Malformed() }
            index += w.count
            return value
        }

        mutating func string() throws(Malformed) -> String {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Malformed() }
            index += 1
            var out: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                guard byte == UInt8(ascii: "\\") else { out.append(byte); continue }
                guard index < bytes.count else { throw Malformed() }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard index + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
                    else { throw Malformed() }
                    index += 4
                    out += Array(String(UnicodeScalar(code).map(Character.init) ?? "\u{FFFD}").utf8)
                default: out.append(escape)
                }
            }
            throw Malformed()
        }
    }
}
