import FuzzDriver
import Foundation
import Migration

#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer entry: the first byte picks how the rest, one line from the peer, is decoded: as a
/// request by the target half (0, and every value above 10, modulo 11), or as the source half's
/// answer to request type 1-10 (`RequestType.allCases`). Decoding may refuse the line; it must
/// never crash, what it accepts must encode and decode back to itself, and a request's typed
/// message (`ProtocolDecoder.message`) exists exactly when its checked envelope does.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtocol(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let selector = Int(data[0]) % (RequestType.allCases.count + 1)
    let line = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    let encoder = JSONEncoder()
    if selector == 0 {
        // The typed message and the checked envelope accept exactly the same lines.
        let message = try? ProtocolDecoder.message(line)
        if let message, message.type.rawValue != (try? ProtocolDecoder.request(line))?.type {
            fatalError("message() and request() disagree on: \(line)")
        }
        if let request = try? ProtocolDecoder.request(line) {
            guard message != nil else { fatalError("request() accepts what message() refuses: \(line)") }
            let encoded = String(decoding: try! encoder.encode(request), as: UTF8.self)
            guard let again = try? ProtocolDecoder.request(encoded), again == request else {
                fatalError("a request does not survive encoding: \(line)")
            }
        }
        return 0
    }
    let type = RequestType.allCases[selector - 1]
    if let reply = try? ProtocolDecoder.reply(line, to: type) {
        let encoded = String(decoding: try! encoder.encode(reply), as: UTF8.self)
        guard let again = try? ProtocolDecoder.reply(encoded, to: type), again == reply else {
            fatalError("an answer to \(type) does not survive encoding: \(line)")
        }
    }
    return 0
}

// SwiftPM names this executable's entry point itself: hand the arguments over to libFuzzer.
var count = CommandLine.argc
var vector = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&count, &vector, fuzzProtocol))
