import FuzzDriver
import Registry

#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer entry: a guest resource statement as `hpvmcreate`/`hpvmmodify -a`/`-d`/`-m` and
/// `hpvmmigrate -m` read it, and the guest values beside it (`-P`, `-l`, `-O`, `-c`, `-r`, `-e`,
/// `-E`, `-x`). Parsing may refuse the text; it must never crash, and a statement it accepts prints
/// (`hpvmstatus -d`) as text that parses back to the same statement.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResourceStatement(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let statement = try? ResourceStatement.parse(text) {
        guard let again = try? ResourceStatement.parse(statement.description), again == statement else {
            fatalError("'\(statement.description)' (from '\(text)') does not parse back to itself")
        }
    }
    _ = try? GuestRules.name(text)
    _ = try? GuestRules.label(text)
    _ = try? GuestRules.osType(text)
    _ = try? GuestRules.startType(text)
    _ = try? GuestRules.vcpus(text)
    _ = try? GuestRules.memory(text)
    _ = try? GuestRules.entitlement(text, cycles: false)
    _ = try? GuestRules.entitlement(text, cycles: true)
    let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
    if parts.count == 2 { _ = try? GuestRules.setting(parts[0], parts[1]) }
    return 0
}

// SwiftPM names this executable's entry point itself: hand the arguments over to libFuzzer.
var count = CommandLine.argc
var vector = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&count, &vector, fuzzResourceStatement))
