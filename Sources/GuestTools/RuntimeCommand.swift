public import HPVMCLI
public import Registry
public import Runtime

#if canImport(Glibc)
internal import Glibc
#endif

extension RuntimeError: MessageLines {
    public var lines: [String] { message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
    public var exitStatus: Int32 { ExitStatus.failure }
}

extension GuestCommand {
    /// The guest runtime of the environment's host root, with the settings of the process's
    /// environment (`HPVM_QEMU`, `HPVM_ACCEL`, `HPVM_STOP_TIMEOUT`).
    public static func runtime(_ environment: CommandEnvironment) throws(RuntimeError) -> GuestRuntime {
        let settings = try RuntimeSettings.from { getenv($0).map { String(cString: $0) } }
        return GuestRuntime(root: environment.root, settings: settings)
    }

    /// Each named guest's state from its live QEMU, for `hpvmstatus` (a setting it cannot read
    /// does not stop it showing states: the defaults are used).
    public static func liveStates(_ environment: CommandEnvironment, guests: [String]) -> [String: GuestRuntime.LiveState] {
        let runtime = (try? runtime(environment)) ?? GuestRuntime(root: environment.root, settings: RuntimeSettings())
        return runtime.states(guests)
    }
}

extension StatusFormat {
    /// The state `hpvmstatus` shows: `On` while the guest's QEMU runs it (`On (NR)` for a Not
    /// Runnable guest that still runs), `Paused` while it runs with stopped processors, `Unknown`
    /// when it cannot be told; otherwise the registry's `Off` or `Off (NR)`.
    public static func state(_ guest: Guest, _ live: GuestRuntime.LiveState?) -> String {
        switch live {
        case .on?, .noAnswer?: return guest.runnable ? "On" : "On (NR)"
        case .paused?: return "Paused"
        case .unknown?: return "Unknown"
        case .off?, nil: return guest.state
        }
    }

    /// `On` or `Off` for `-M`'s field 10: `On` while a QEMU runs the guest, paused or not.
    static func machineState(_ live: GuestRuntime.LiveState?) -> String {
        switch live {
        case .on?, .noAnswer?, .paused?: return "On"
        case .unknown?, .off?, nil: return "Off"
        }
    }
}
