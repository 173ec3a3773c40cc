import Checksum
import Foundation
import HPVMTestSupport
import Testing
@testable import Migration

/// Issue 8, row 3: a `-C` destination becomes an exact image of the source, whatever it held
/// before, and the checksum covers the whole logical content.
@Suite(.serialized) struct ExactImageTests {
    /// Bytes fed to the target half as if they came over the channel.
    final class Feed: ByteSource {
        var bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        func readLine() -> String? {
            guard let newline = bytes.firstIndex(of: 10) else { return nil }
            let line = String(decoding: bytes[..<newline], as: UTF8.self)
            bytes.removeFirst(newline + 1)
            return line
        }
        func readBytes(_ count: Int) -> [UInt8]? {
            guard bytes.count >= count else { return nil }
            defer { bytes.removeFirst(count) }
            return Array(bytes[..<count])
        }
    }

    static let size: Int64 = 8 << 20
    static let data = [UInt8](repeating: 0x22, count: 4096)

    /// One data segment at 1 MiB in an 8 MiB source: everything else is a hole.
    func feed() -> Feed {
        var header = MigrationRequest(type: "data", migrationID: "m1")
        header.offset = 1 << 20
        header.length = Self.data.count
        var bytes = Array((JSONLine.encode(header) + "\n").utf8) + Self.data
        bytes += Array((JSONLine.encode(MigrationRequest(type: "end", migrationID: "m1")) + "\n").utf8)
        return Feed(bytes)
    }

    func expected() -> [UInt8] {
        var image = [UInt8](repeating: 0, count: Int(Self.size))
        image.replaceSubrange((1 << 20)..<((1 << 20) + Self.data.count), with: Self.data)
        return image
    }

    func receive(into path: String) -> MigrationReply {
        let input = feed()
        return BackingCopy.receive(realPath: path, size: Self.size, input: input) {
            input.readLine().flatMap { JSONLine.decode(MigrationRequest.self, $0) }
        }
    }

    @Test func aFileFullOfOldBytesBecomesTheSourcesImage() throws {
        // Given a destination file of 12 MiB of 0xFF
        let folder = try HostBuilder.temporary(prefix: "hpvm-image")
        defer { folder.remove() }
        let path = folder.path + "/dest.img"
        try Data(repeating: 0xFF, count: 12 << 20).write(to: URL(fileURLWithPath: path))
        // When the sparse source is received into it
        let reply = receive(into: path)
        // Then it is byte for byte the source, and the checksum is the whole content's
        #expect(reply.type == "copied", "\(reply.message ?? "")")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(expected()))
        #expect(reply.sha256 == digestHex(expected()))
    }

    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/losetup"), "needs root and losetup"))
    func aBlockDeviceGetsZerosWhereTheSourceHasHoles() throws {
        // Given a loop device over 8 MiB of 0xFF
        let folder = try HostBuilder.temporary(prefix: "hpvm-image")
        defer { folder.remove() }
        let backing = folder.path + "/loop.img"
        try Data(repeating: 0xFF, count: Int(Self.size)).write(to: URL(fileURLWithPath: backing))
        let attach = try ChildProcess.run("/usr/sbin/losetup", ["-f", "--show", backing], environment: [:])
        let device = attach.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(attach.status == 0 && device.hasPrefix("/dev/loop"), "\(attach.stderr)")
        defer { _ = try? ChildProcess.run("/usr/sbin/losetup", ["-d", device], environment: [:]) }
        // When the sparse source is received into it
        let reply = receive(into: device)
        // Then the device reads as the source: zeros in the holes, not the old 0xFF
        #expect(reply.type == "copied", "\(reply.message ?? "")")
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: device))
        defer { try? handle.close() }
        let content = try handle.read(upToCount: Int(Self.size)) ?? Data()
        #expect(content == Data(expected()))
        #expect(reply.sha256 == digestHex(expected()))
    }

    /// A hostile `data` header whose offset is near Int64.max is refused; it must not overflow (a
    /// trap would end the target half) when its range is checked. Run in a child process, so that
    /// a crash fails this test only.
    @Test func aDataHeaderWhoseRangeOverflowsIsRefused() async throws {
        await #expect(processExitsWith: .success) {
            let folder = try HostBuilder.temporary(prefix: "hpvm-image")
            defer { folder.remove() }
            let path = folder.path + "/dest.img"
            try Data(repeating: 0xFF, count: 4096).write(to: URL(fileURLWithPath: path))
            var header = MigrationRequest(type: "data", migrationID: "m1")
            header.offset = Int64.max - 10
            header.length = 4096
            let input = Feed(Array((JSONLine.encode(header) + "\n").utf8) + [UInt8](repeating: 0x22, count: 4096))
            let reply = BackingCopy.receive(realPath: path, size: 4096, input: input) {
                input.readLine().flatMap { JSONLine.decode(MigrationRequest.self, $0) }
            }
            guard reply.type == "error" else { exit(1) }
        }
    }

    func digestHex(_ bytes: [UInt8]) -> String {
        let hash = StreamingSHA256()
        hash.update(bytes)
        return hash.finish()
    }
}
