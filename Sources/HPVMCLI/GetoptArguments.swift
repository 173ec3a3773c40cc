/// HP-UX's commands read their options with getopt(3C), so administrators write `-lall`,
/// `-Ph1` and `-QF`. This rewrites such a command line into the separated form both of our
/// readers (``QuickArguments`` and ArgumentParser) take — `-l all`, `-P h1`, `-Q -F` — and refuses
/// a single-valued option given twice, which getopt-based scripts would otherwise see silently
/// resolved to the last one.
///
/// The letters are given as getopt's option string gives them (`GetoptArguments(valued: "Pa",
/// flags: "V")`) and kept as arrays: a `Set<Character>` would cost every command a look-up of
/// `Character: Hashable` among the binary's 6,000 protocol conformances at start (≈ 0.4 M
/// instructions, bench/RESULTS.md), for a handful of letters.
public struct GetoptArguments: Sendable {
    /// Option letters that take a value.
    public let valued: [Character]
    /// The valued letters that may be given more than once (`-a`, `-d`, `-m`, …).
    public let repeatable: [Character]
    /// Option letters that take no value.
    public let flags: [Character]

    public init(valued: String, repeatable: String = "", flags: String) {
        self.valued = Array(valued)
        self.repeatable = Array(repeatable)
        self.flags = Array(flags)
    }

    /// A command line that repeats a single-valued option: always a usage error (64).
    public struct Repeated: MessageLines {
        public let option: Character
        public var lines: [String] { ["-\(option) given more than once; give it once (it takes one value)."] }
        public var exitStatus: Int32 { ExitStatus.usage }
    }

    /// The arguments with every cluster split as getopt(3C) reads it: flags one by one, and a
    /// valued letter taking the rest of its word as its value (`-Vlall` is `-V -l all`). A word
    /// with a letter this command does not know is left whole, for the parser to name; `--` and
    /// everything after it, long options and operands pass through.
    ///
    /// - Throws: ``Repeated`` when a valued option that does not repeat is given twice.
    public func normalize(_ arguments: [String]) throws(Repeated) -> [String] {
        var out: [String] = []
        out.reserveCapacity(arguments.count + 2)
        var seen: [Character] = []
        var index = 0
        func record(_ letter: Character) throws(Repeated) {
            guard !repeatable.contains(letter) else { return }
            guard !seen.contains(letter) else { throw Repeated(option: letter) }
            seen.append(letter)
        }
        while index < arguments.count {
            let word = arguments[index]
            if word == "--" {
                out.append(contentsOf: arguments[index...])
                break
            }
            guard word.count >= 2, word.hasPrefix("-"), !word.hasPrefix("--") else {
                out.append(word)
                index += 1
                continue
            }
            let letters = Array(word.dropFirst())
            var pieces: [String] = []
            var known = true
            var position = 0
            var valuedLetter: Character?
            while position < letters.count {
                let letter = letters[position]
                if flags.contains(letter) {
                    pieces.append("-" + String(letter))
                    position += 1
                } else if valued.contains(letter) {
                    pieces.append("-" + String(letter))
                    let rest = String(letters[(position + 1)...])
                    if !rest.isEmpty { pieces.append(rest) }
                    valuedLetter = letter
                    break
                } else {
                    known = false
                    break
                }
            }
            if known {
                out.append(contentsOf: pieces)
                if let valuedLetter {
                    try record(valuedLetter)
                    // A separate value is the next word, whatever it looks like.
                    if pieces.last == "-" + String(valuedLetter), index + 1 < arguments.count {
                        out.append(arguments[index + 1])
                        index += 1
                    }
                }
            } else {
                out.append(word)
            }
            index += 1
        }
        return out
    }
}
