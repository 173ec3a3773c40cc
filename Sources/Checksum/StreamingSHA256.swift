internal import CCrypto

/// SHA-256 over a stream of bytes, by OpenSSL's libcrypto (which libssh2 already links), for
/// checking copied backing stores: fast enough for gigabytes.
public final class StreamingSHA256 {
    private let context: OpaquePointer

    public init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    /// Adds bytes. The corresponding C function is `EVP_DigestUpdate`.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Adds a 64-bit number, big-endian (segment offsets and lengths).
    public func update(_ value: Int64) {
        var bigEndian = UInt64(bitPattern: value).bigEndian
        withUnsafeBytes(of: &bigEndian) { update($0) }
    }

    /// The digest's 32 bytes. The corresponding C function is `EVP_DigestFinal_ex`.
    public func finishBytes() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return Array(digest.prefix(Int(length)))
    }

    /// The SHA-256 of a string's UTF-8 bytes, as 64 hex digits.
    public static func hex(_ text: String) -> String {
        let hash = StreamingSHA256()
        var text = text
        text.withUTF8 { hash.update(UnsafeRawBufferPointer($0)) }
        return hash.finish()
    }

    /// The SHA-256 of `bytes`.
    public static func digest(_ bytes: [UInt8]) -> [UInt8] {
        let hash = StreamingSHA256()
        hash.update(bytes)
        return hash.finishBytes()
    }

    /// The digest as 64 hex digits. The corresponding C function is `EVP_DigestFinal_ex`.
    public func finish() -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in finishBytes() {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
