internal import Checksum
internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// Copies one backing store over the migration channel: only the data segments of a sparse file
/// are sent (holes are found with SEEK_DATA/SEEK_HOLE and stay holes on the target), each after a
/// `data` header line. The destination becomes an exact image, and both sides compute a SHA-256
/// of the whole logical content (holes as zeros), the target's read back from its disk.
enum BackingCopy {
    static let chunk = 1 << 20
    /// Linux's lseek whences for sparse files (glibc hides them without _GNU_SOURCE).
    static let seekData: Int32 = 3
    static let seekHole: Int32 = 4

    /// The data segments of an open file: (offset, length), in order.
    static func segments(_ fd: Int32, size: Int64) -> [(Int64, Int64)] {
        var result: [(Int64, Int64)] = []
        var offset: Int64 = 0
        while offset < size {
            let data = lseek(fd, off_t(offset), seekData)
            if data < 0 {
                // ENXIO: only a hole remains. Other errors (no SEEK_DATA on a block device): send it all.
                if errno == ENXIO { break }
                return [(0, size)]
            }
            var hole = Int64(lseek(fd, data, seekHole))
            if hole < 0 { hole = size }
            result.append((Int64(data), min(hole, size) - Int64(data)))
            offset = hole
        }
        return result
    }

    /// Sends the file at `path` (a real path) to the target, which writes it at `targetPath`.
    static func send(
        realPath: String, shownPath: String, targetPath: String, migrationID: String, link: any RemoteLink,
        exchange: (MigrationRequest) throws(MigrationError) -> MigrationReply, progress: Bool
    ) throws(MigrationError) {
        let fd = open(realPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw MigrationError(.refused, ["cannot read \(shownPath) to copy it: \(String(cString: strerror(errno)))."])
        }
        defer { close(fd) }
        let size = Int64(lseek(fd, 0, SEEK_END))
        var start = MigrationRequest(.copy, migrationID: migrationID)
        start.path = targetPath
        start.size = size
        _ = try exchange(start)
        // The checksum covers the whole logical content: holes count as the zeros they read as.
        let hash = StreamingSHA256()
        var hashed: Int64 = 0
        let segments = segments(fd, size: size)
        let total = segments.reduce(Int64(0)) { $0 + $1.1 }
        var sent: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: chunk)
        for (segmentStart, segmentLength) in segments {
            var offset = segmentStart
            let end = segmentStart + segmentLength
            while offset < end {
                let want = Int(min(Int64(chunk), end - offset))
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(offset)) }
                guard n > 0 else { throw MigrationError(.refused, ["cannot read \(shownPath) at \(offset)."]) }
                var header = MigrationRequest(.data, migrationID: migrationID)
                header.offset = offset
                header.length = n
                try link.send(JSONLine.encode(header))
                var failed: MigrationError?
                Self.hashZeros(hash, count: offset - hashed)
                hashed = offset + Int64(n)
                buffer.withUnsafeBytes { bytes in
                    let slice = UnsafeRawBufferPointer(rebasing: bytes[0..<n])
                    hash.update(slice)
                    do throws(MigrationError) { try link.sendBytes(slice) } catch { failed = error }
                }
                if let failed { throw failed }
                offset += Int64(n)
                sent += Int64(n)
                if progress {
                    let percent = total == 0 ? 100 : Int(sent * 100 / total)
                    let line = "\rhpvmmigrate: copying \(shownPath): \(percent)% (\(sent >> 20) of \(total >> 20) MiB of data in \(size >> 20) MiB)"
                    _ = line.withCString { write(2, $0, strlen($0)) }
                }
            }
        }
        if progress { _ = "\n".withCString { write(2, $0, 1) } }
        Self.hashZeros(hash, count: size - hashed)
        var finish = MigrationRequest(.end, migrationID: migrationID)
        finish.sha256 = hash.finish()
        let reply = try exchange(finish)
        guard reply.kind == .copied, reply.sha256 == finish.sha256 else {
            throw MigrationError(.target, ["Target VM Host error - the copy of \(shownPath) does not match its checksum."])
        }
    }

    static let zeros = [UInt8](repeating: 0, count: chunk)

    /// Feeds `count` zero bytes to the checksum.
    static func hashZeros(_ hash: StreamingSHA256, count: Int64) {
        var left = count
        while left > 0 {
            let n = Int(min(left, Int64(chunk)))
            zeros.withUnsafeBytes { hash.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= Int64(n)
        }
    }

    /// Linux's `BLKZEROOUT` ioctl (`_IO(0x12, 127)`): zero a range of a block device.
    static let blockZeroOut: UInt = 0x127F

    /// The target side: receives a copy into `realPath` and makes it an exact image of the source:
    /// a file is emptied and set to the source's size first (so the source's holes are holes here,
    /// whatever the file held), a block device gets zeros wherever the source has holes. Then it
    /// reads the whole logical content back from disk and answers with its checksum.
    static func receive(realPath: String, size: Int64, input: any ByteSource, next: () -> MigrationRequest?) -> MigrationReply {
        var failure: String?
        let fd = open(realPath, O_RDWR | O_NOFOLLOW | O_CLOEXEC)  // made by the claim, never here
        if fd < 0 { failure = "cannot open \(realPath) for the copy: \(String(cString: strerror(errno)))" }
        defer { if fd >= 0 { close(fd) } }
        var isFile = true
        if fd >= 0 {
            var st = stat()
            fstat(fd, &st)
            isFile = (st.st_mode & S_IFMT) == S_IFREG
            if isFile {
                if ftruncate(fd, 0) != 0 || ftruncate(fd, off_t(size)) != 0 {
                    failure = "cannot size \(realPath): \(String(cString: strerror(errno)))"
                }
            } else if Int64(lseek(fd, 0, SEEK_END)) < size {
                failure = "\(realPath) is smaller than the source (\(size) bytes)"
            }
        }
        var written: [(Int64, Int64)] = []
        while let request = next() {
            // The range is checked without adding: a hostile offset near Int64.max must not overflow.
            if request.kind == .data, let offset = request.offset, let length = request.length, length >= 0, length <= chunk,
                offset >= 0, offset <= size - Int64(length)
            {
                guard let bytes = input.readBytes(length) else { failure = "the copy ended early"; break }
                if failure == nil, fd >= 0 {
                    let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, length, off_t(offset)) }
                    if n != length { failure = "cannot write \(realPath): \(String(cString: strerror(errno)))" }
                }
                written.append((offset, Int64(length)))
                continue
            }
            if request.kind == .end {
                if failure == nil, fd >= 0, !isFile, let why = zeroGaps(fd, written: written, size: size) {
                    failure = "cannot clear \(realPath) where the source has holes: \(why)"
                }
                if let failure {
                    var reply = MigrationReply(.error)
                    reply.message = failure
                    return reply
                }
                fsync(fd)
                var reply = MigrationReply(.copied)
                reply.sha256 = readBack(realPath, size: size)
                return reply
            }
            var reply = MigrationReply(.error)
            reply.message = "unexpected '\(request.type)' during a copy"
            return reply
        }
        var reply = MigrationReply(.error)
        reply.message = failure ?? "the connection closed during a copy"
        return reply
    }

    /// Writes zeros over every range of [0, size) that no data segment covered (a block device
    /// keeps its old bytes where the source has holes otherwise): the `BLKZEROOUT` ioctl where the
    /// device takes it, plain zero writes where it does not.
    static func zeroGaps(_ fd: Int32, written: [(Int64, Int64)], size: Int64) -> String? {
        var gaps: [(Int64, Int64)] = []
        var covered: Int64 = 0
        for (offset, length) in written.sorted(by: { $0.0 < $1.0 }) {
            if offset > covered { gaps.append((covered, offset - covered)) }
            covered = max(covered, offset + length)
        }
        if covered < size { gaps.append((covered, size - covered)) }
        for (offset, length) in gaps {
            var range: [UInt64] = [UInt64(offset), UInt64(length)]
            if range.withUnsafeMutableBytes({ ioctl(fd, blockZeroOut, $0.baseAddress!) }) == 0 { continue }
            var at = offset
            while at < offset + length {
                let n = Int(min(Int64(chunk), offset + length - at))
                let done = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, n, off_t(at)) }
                if done != n { return String(cString: strerror(errno)) }
                at += Int64(n)
            }
        }
        return nil
    }

    /// The checksum of the whole logical content of [0, size), read back from disk.
    static func readBack(_ realPath: String, size: Int64) -> String {
        let reading = open(realPath, O_RDONLY | O_CLOEXEC)
        defer { if reading >= 0 { close(reading) } }
        let hash = StreamingSHA256()
        var buffer = [UInt8](repeating: 0, count: chunk)
        var offset: Int64 = 0
        // Holes of a file read as zeros without touching the disk: hash them as such.
        let segments = reading >= 0 ? segments(reading, size: size) : []
        for (start, length) in segments {
            hashZeros(hash, count: start - offset)
            offset = start
            while offset < start + length {
                let want = Int(min(Int64(chunk), start + length - offset))
                let n = buffer.withUnsafeMutableBytes { pread(reading, $0.baseAddress, want, off_t(offset)) }
                guard n > 0 else { return "unreadable" }
                buffer.withUnsafeBytes { hash.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                offset += Int64(n)
            }
        }
        hashZeros(hash, count: size - offset)
        return hash.finish()
    }
}

/// Where the target half reads from: lines, and raw bytes after a `data` header.
public protocol ByteSource: AnyObject {
    func readLine() -> String?
    func readBytes(_ count: Int) -> [UInt8]?
    /// Whether the other end has closed its side already (checked without waiting).
    func peerHasGone() -> Bool
}

extension ByteSource {
    public func peerHasGone() -> Bool { false }
}

/// Standard input, buffered, for the target half: lines in linear time (each byte scanned once),
/// at most `ProtocolDecoder.lineLimit` bytes each.
public final class StandardInput: ByteSource {
    private var buffer: [UInt8] = []
    private var start = 0
    /// `buffer[start..<scanned]` holds no newline.
    private var scanned = 0
    /// Standard input reached its end.
    private var ended = false

    public init() {}

    private var chunk = [UInt8](repeating: 0, count: 1 << 20)

    private func fill() -> Bool {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            scanned -= start
            start = 0
        }
        if ended { return false }
        let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        guard n > 0 else {
            if n == 0 { ended = true }
            return false
        }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// The next line; a line over the limit comes back cut to one byte more than the limit (which
    /// the decoder refuses), and nothing after it is read.
    public func readLine() -> String? {
        scanned = max(scanned, start)
        while true {
            if let newline = buffer[scanned...].firstIndex(of: 10) {
                let line = String(decoding: buffer[start..<newline], as: UTF8.self)
                start = newline + 1
                scanned = start
                return line
            }
            scanned = buffer.count
            if buffer.count - start > ProtocolDecoder.lineLimit {
                let line = String(decoding: buffer[start..<(start + ProtocolDecoder.lineLimit + 1)], as: UTF8.self)
                start = buffer.count
                scanned = start
                return line
            }
            if !fill() {
                guard start < buffer.count else { return nil }
                let line = String(decoding: buffer[start...], as: UTF8.self)
                start = buffer.count
                scanned = start
                return line
            }
        }
    }

    /// True once standard input is at its end: reads what is ready, never waits.
    public func peerHasGone() -> Bool {
        if ended { return true }
        var poller = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 0) == 1 else { return false }
        _ = fill()
        return ended
    }

    public func readBytes(_ count: Int) -> [UInt8]? {
        while buffer.count - start < count {
            if !fill() { return nil }
        }
        let bytes = Array(buffer[start..<(start + count)])
        start += count
        scanned = max(scanned, start)
        return bytes
    }
}
