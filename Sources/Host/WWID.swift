/// A LUN's world-wide identifier, in one normal form whichever way Linux spelled it.
///
/// Accepted spellings: `naa.600508b4…` (SCSI `device/wwid`), `0x600508b4…`, `6005-08b4-…`
/// (HPVM), `eui.0025…` and `nguid.…` (NVMe), and multipath's scsi_id form `3600508b4…`, whose
/// leading digit is the designator type (3 for NAA, 2 for EUI-64). Hexadecimal identifiers are
/// kept as lower-case hex digits only; others (`t10.…` vendor strings) are kept lower-cased, with
/// anything outside `[a-z0-9._-]` replaced by `_`, so that they never break a `-l` line.
public struct WWID: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The normal form: lower-case hex digits, or a sanitised string for non-hex identifiers.
    public let normalized: String

    /// Normalises a raw identifier; nil when it is empty after trimming.
    public init?(_ raw: String) {
        var text = raw.trimmingWhitespace().lowercased()
        if text.hasPrefix("mpath-") { text.removeFirst(6) }
        for prefix in ["naa.", "eui.", "nguid.", "wwn-0x", "0x"] where text.hasPrefix(prefix) {
            text.removeFirst(prefix.count)
            break
        }
        let undashed = text.filter { $0 != "-" && $0 != ":" }
        if !undashed.isEmpty, undashed.allSatisfy(\.isHexDigit) {
            var hex = undashed
            // scsi_id's form: a designator-type digit in front of a 16 or 32 digit identifier.
            if (hex.count == 17 || hex.count == 33), let first = hex.first, first == "3" || first == "2" {
                hex.removeFirst()
            }
            // An all-zero identifier is what broken firmware reports: identity unknown.
            guard hex.contains(where: { $0 != "0" }) else { return nil }
            normalized = hex
            return
        }
        let cleaned = String(text.map { ch -> Character in
            ch.isASCII && (ch.isLetter || ch.isNumber || ch == "." || ch == "_" || ch == "-") ? ch : "_"
        })
        let collapsed = cleaned.split(separator: "_", omittingEmptySubsequences: true).joined(separator: "_")
        guard !collapsed.isEmpty else { return nil }
        normalized = collapsed
    }

    /// Whether the identifier is hexadecimal (NAA, EUI-64, NGUID) rather than a vendor string.
    public var isHex: Bool { normalized.allSatisfy(\.isHexDigit) }

    /// HPVM's spelling: hex digits in groups of four joined by `-`
    /// (`6005-08b4-0001-15d0-0001-2000-003a-0000`); other identifiers as they are.
    public var description: String {
        guard isHex else { return normalized }
        var groups: [Substring] = []
        var index = normalized.startIndex
        while index < normalized.endIndex {
            let end = normalized.index(index, offsetBy: 4, limitedBy: normalized.endIndex) ?? normalized.endIndex
            groups.append(normalized[index..<end])
            index = end
        }
        return groups.joined(separator: "-")
    }

    public static func < (lhs: WWID, rhs: WWID) -> Bool { lhs.normalized < rhs.normalized }
}

extension String {
    /// The string without leading and trailing spaces, tabs, newlines and NULs.
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\0" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
