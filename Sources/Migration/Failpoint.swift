#if canImport(Glibc)
internal import Glibc
#endif

/// Named stops at every phase boundary, for tests (`HPVM_FAILPOINT=name[:action]`).
///
/// `abort` (the default) ends the process at once, as a crash would; `drop` closes every
/// descriptor (the SSH connection with them) and then ends it; `hold` waits there for 60
/// seconds and goes on (a migration that is slow, for tests that act while it runs); `hold=N`
/// waits N seconds.
public struct Failpoints: Sendable {
    public let name: String?
    public let action: String

    public init(environment value: String?) {
        guard let value, !value.isEmpty else {
            name = nil
            action = "abort"
            return
        }
        let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
        name = parts[0]
        action = parts.count > 1 ? parts[1] : "abort"
    }

    /// Every failpoint, source side then target side, in phase order.
    public static let all = [
        "source-after-lock", "source-after-check", "target-after-prepare", "source-after-prepare",
        "source-after-disable", "target-after-commit", "source-after-commit",
    ]

    /// Stops the process here if this failpoint is armed.
    public func hit(_ point: String) {
        guard point == name else { return }
        if action == "hold" {
            sleep(60)
            return
        }
        if action.hasPrefix("hold="), let seconds = UInt32(action.dropFirst(5)) {
            sleep(seconds)
            return
        }
        if action == "drop" {
            for fd in 3..<1024 { close(Int32(fd)) }
        }
        _exit(86)
    }
}
