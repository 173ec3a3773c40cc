#if canImport(Glibc)
internal import Glibc
#endif

/// The hpvm commands as the tests run them: through the links to the multi-call `hpvm` that an
/// installation has (`hpvmdevmgmt -> hpvm`), made beside the `hpvm` that `swift build` put next
/// to the test bundle.
///
/// `swift build` makes only `hpvm`; the first test that asks for ``binDirectory`` makes one
/// relative link per name `hpvm --list` prints (as `scripts/links` does for the demo), each
/// created under a temporary name and renamed into place, so test processes running at once
/// never see a half-made link.
public enum Commands {
    /// The build folder holding `hpvm` and its links (`.build/debug`).
    public static let binDirectory: String = {
        let folder = buildFolder()
        try? makeLinks(in: folder)
        return folder
    }()

    /// The folder of the test bundle (or the first folder above it) that holds `hpvm`.
    static func buildFolder() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        var path = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        while let slash = path.lastIndex(of: "/") {
            path = String(path[..<slash])
            if access((path.isEmpty ? "" : path) + "/hpvm", X_OK) == 0 { return path }
        }
        return "."
    }

    /// Makes a link `name -> hpvm` in `folder` for every command `hpvm --list` names, unless it is
    /// already there.
    public static func makeLinks(in folder: String) throws {
        let list = try ChildProcess.run(folder + "/hpvm", ["--list"], environment: [:])
        guard list.status == 0 else { throw BuilderError("hpvm --list exited \(list.status): \(list.stderr)") }
        for name in list.stdout.split(separator: "\n").map(String.init) where !name.isEmpty {
            let link = folder + "/" + name
            var target = [CChar](repeating: 0, count: 16)
            let length = readlink(link, &target, target.count)
            if length == 4, target[0..<4].map({ UInt8(bitPattern: $0) }) == Array("hpvm".utf8) { continue }
            let temporary = link + ".link-\(getpid())"
            unlink(temporary)
            guard symlink("hpvm", temporary) == 0 else { throw BuilderError("cannot link \(temporary): errno \(errno)") }
            guard rename(temporary, link) == 0 else {
                unlink(temporary)
                throw BuilderError("cannot rename \(temporary) to \(link): errno \(errno)")
            }
        }
    }
}
