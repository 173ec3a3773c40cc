/// A strict reader for the plain command lines scripts run most, so they skip ArgumentParser's
/// start-up (bench/RESULTS.md): single-letter options, each either a flag or followed by a value
/// that does not start with `-`. Anything else — a long option, a bundle, a missing value, an
/// option not in the table, a non-repeatable option given twice — returns nil, and the command
/// falls back to ArgumentParser, which defines the command line. Each command's tests check that
/// both readers agree.
public struct QuickArguments: Sendable {
    /// Options that take a value, and whether each may repeat.
    public let valued: [String: Bool]
    /// Options that take no value.
    public let flags: Set<String>

    public init(valued: [String: Bool], flags: Set<String>) {
        self.valued = valued
        self.flags = flags
    }

    /// The values of each option given (flags map to `[""]`), or nil to use ArgumentParser.
    public func read(_ arguments: [String]) -> [String: [String]]? {
        var result: [String: [String]] = [:]
        var index = 0
        while index < arguments.count {
            let option = arguments[index]
            if flags.contains(option) {
                guard result[option] == nil else { return nil }
                result[option] = [""]
            } else if let repeatable = valued[option] {
                guard index + 1 < arguments.count, result[option] == nil || repeatable else { return nil }
                let value = arguments[index + 1]
                guard !value.isEmpty, !value.hasPrefix("-") else { return nil }
                result[option, default: []].append(value)
                index += 1
            } else {
                return nil
            }
            index += 1
        }
        return result
    }
}
