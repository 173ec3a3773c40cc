import FuzzDriver
import Registry

#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer entry: the first byte picks the option (`a`, `d`, `m`, `n`, `l`, or `x`, which takes
/// no specification; another byte picks one of them by its value), the rest is its argument, as
/// `hpvmdevmgmt` reads it (`-a gdev:/dev/rdisk/disk2:attr:SHARE=YES`).
/// Parsing may refuse the text; it must never crash, and an entry name it accepts is in normal form
/// (normalising it again changes nothing).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDeviceSpec(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let options: [Character] = ["a", "d", "m", "n", "l", "x"]
    let first = Character(Unicode.Scalar(data[0]))
    let option = options.contains(first) ? first : options[Int(data[0]) % options.count]
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    _ = try? DeviceOperation.parse(option: option, text)
    if let name = try? NameRules.entryName(text) {
        guard (try? NameRules.entryName(name)) == name else { fatalError("entry name '\(name)' is not in normal form") }
    }
    _ = try? NameRules.dependentName(text)
    return 0
}

// SwiftPM names this executable's entry point itself: hand the arguments over to libFuzzer.
var count = CommandLine.argc
var vector = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&count, &vector, fuzzDeviceSpec))
