internal import Registry

#if canImport(Glibc)
internal import Glibc
#endif

/// How this host runs guests, from the environment (DESIGN.md §7).
///
/// | environment | meaning | default |
/// | --- | --- | --- |
/// | `HPVM_QEMU` | the QEMU program (an absolute path) | `/usr/bin/qemu-system-x86_64` |
/// | `HPVM_ACCEL` | `kvm` or `tcg`, chosen explicitly (never QEMU's `kvm:tcg` fallback) | `kvm` |
/// | `HPVM_STOP_TIMEOUT` | seconds `hpvmstop -g` waits for the guest to stop | 120 |
/// | `HPVM_LEASE_EXEC` | the helper that holds a guest's fleet lease for its QEMU | `hpvm-lease-exec` beside the running command |
public struct RuntimeSettings: Sendable, Equatable {
    public var qemu: String
    public var accelerator: QEMUCommandLine.Accelerator
    public var stopTimeout: Duration
    /// How long a monitor may take to answer one command.
    public var monitorTimeout: Duration = .seconds(10)

    public static let defaultQEMU = "/usr/bin/qemu-system-x86_64"
    /// The lease helper (``LeaseHold``): `hpvm-lease-exec` in the running command's folder.
    public var leaseHelper: String = RuntimeSettings.besideThisProgram("hpvm-lease-exec")

    static func besideThisProgram(_ name: String) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "/usr/sbin/" + name }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return "/usr/sbin/" + name }
        return String(path[..<slash]) + "/" + name
    }

    public init(qemu: String = defaultQEMU, accelerator: QEMUCommandLine.Accelerator = .kvm, stopTimeout: Duration = .seconds(120)) {
        self.qemu = qemu
        self.accelerator = accelerator
        self.stopTimeout = stopTimeout
    }

    /// The settings an environment gives.
    ///
    /// - Parameter environment: looks a variable up (`getenv` in the commands, a dictionary in tests).
    /// - Throws: ``RuntimeError/Code/badSetting`` naming the variable and what it takes.
    public static func from(environment: (String) -> String?) throws(RuntimeError) -> RuntimeSettings {
        var settings = RuntimeSettings()
        if let qemu = environment("HPVM_QEMU"), !qemu.isEmpty {
            guard qemu.hasPrefix("/"), qemu.utf8.count <= 1024, !qemu.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                throw RuntimeError(.badSetting, "HPVM_QEMU='\(Display.safe(qemu))' must be the absolute path of the QEMU program.")
            }
            settings.qemu = qemu
        }
        if let accel = environment("HPVM_ACCEL"), !accel.isEmpty {
            guard let accelerator = QEMUCommandLine.Accelerator(rawValue: accel) else {
                throw RuntimeError(
                    .badSetting, "HPVM_ACCEL='\(Display.safe(accel))' must be kvm or tcg (one accelerator, chosen explicitly).")
            }
            settings.accelerator = accelerator
        }
        if let helper = environment("HPVM_LEASE_EXEC"), !helper.isEmpty {
            guard helper.hasPrefix("/"), helper.utf8.count <= 1024, !helper.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                throw RuntimeError(.badSetting, "HPVM_LEASE_EXEC='\(Display.safe(helper))' must be the absolute path of hpvm-lease-exec.")
            }
            settings.leaseHelper = helper
        }
        if let seconds = environment("HPVM_STOP_TIMEOUT"), !seconds.isEmpty {
            guard seconds.count <= 6, seconds.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(seconds), value > 0 else {
                throw RuntimeError(.badSetting, "HPVM_STOP_TIMEOUT='\(Display.safe(seconds))' must be a whole number of seconds, 1 or more.")
            }
            settings.stopTimeout = .seconds(value)
        }
        return settings
    }
}
