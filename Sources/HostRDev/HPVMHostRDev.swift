public import ArgumentParser
public import HPVMCLI
import Host
import Registry

/// `hpvmhostrdev`: restrict the devices the VM host itself uses.
public struct HPVMHostRDev: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmhostrdev"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Restrict (as rdev entries with AUTORDEV=YES) every disk and volume the VM host uses.",
        discussion: """
            With no option: rescan I/O, then update. One option at a time. Reads $HPVM_ROOT/proc/self/mountinfo,
            $HPVM_ROOT/proc/swaps and $HPVM_ROOT/sys/block. See hpvmhostrdev(8).
            """,
        helpNames: [.long]
    )

    public init() {}

    @Flag(name: .customShort("u"), help: "Update the AUTORDEV entries without rescanning I/O.")
    var update = false

    @Flag(name: .customShort("d"), help: "Delete every entry hpvmhostrdev made (AUTORDEV=YES); hand-made rdev entries stay.")
    var delete = false

    @Flag(name: .customShort("r"), help: "Restore the AUTORDEV entries as they were before the last plain, -u or -d run.")
    var restore = false

    @Flag(name: .customShort("E"), help: "Enable the automatic run at hpvm start-up.")
    var enable = false

    @Flag(name: .customShort("D"), help: "Disable the automatic run at hpvm start-up.")
    var disable = false

    @Flag(name: .customShort("h"), help: "Print a short usage summary.")
    var usage = false

    @Flag(name: .customShort("V"), help: "Say what was added and removed.")
    var verbose = false

    static let summary = "usage: hpvmhostrdev [-D | -E | -d | -h | -r | -u] [-V]\n"

    public func run() throws {
        let chosen = [update ? "-u" : nil, delete ? "-d" : nil, restore ? "-r" : nil, enable ? "-E" : nil,
                      disable ? "-D" : nil, usage ? "-h" : nil].compactMap { $0 }
        if chosen.count > 1 {
            Output.error("hpvmhostrdev", "give one option at a time, not \(chosen.joined(separator: " and ")).")
            Output.write(Self.summary, to: 2)
            throw ExitCode(ExitStatus.failure)
        }
        if usage {
            Output.write(Self.summary)
            return
        }
        let environment = try CommandEnvironment.current(name: Self.commandName)
        let action: HostRDevAction =
            update ? .update : delete ? .removeAll : restore ? .restore : enable ? .enable : disable ? .disable : .rescanAndUpdate
        let report = try HostRDev.perform(action, in: environment)
        if verbose, let report {
            var text = ""
            for path in report.added { text += "restricted \(path) (AUTORDEV=YES)\n" }
            for path in report.removed { text += "removed \(path)\n" }
            for path in report.alreadyRestricted { text += "kept \(path): already restricted by hand\n" }
            Output.write(text)
        }
    }

    /// HP-UX getopt(3C) forms (`-Pg1`, `-QF`), and a single-valued option given twice refused.
    static let getopt = GetoptArguments(valued: "", flags: "udrEDhV")

    public static func run(arguments: CommandArguments) -> Never {
        // hpvmhostrdev exits 1 on any error, an invalid option included (hpvm-reference.md c).
        CommandMain.run(commandName, arguments, invalidUTF8Status: ExitStatus.failure, log: .success, { words in
            var command = try parseAsRoot(try getopt.normalize(words))
            try command.run()
        }, usageError: { error in
            let code = exitCode(for: error)
            if code == .success { return (fullMessage(for: error), 0) }
            if error is ExitCode { return ("", code.rawValue) }
            return (message(for: error) + "\n" + String(summary.dropLast()), ExitStatus.failure)
        })
    }
}

enum HostRDevAction {
    case rescanAndUpdate, update, removeAll, restore, enable, disable
}

/// Opens the registry, performs one action in one transaction, and closes it.
enum HostRDev {
    static func perform(_ action: HostRDevAction, in environment: CommandEnvironment) throws -> HostRestrictions.Report? {
        let store = try RegistryStore.open(at: environment.registryPath)
        let restrictions = HostRestrictions(store: store, root: environment.root, audit: environment.audit)
        defer { try? store.closeForExit() }
        switch action {
        case .rescanAndUpdate:
            restrictions.rescanIO()
            return try restrictions.update()
        case .update: return try restrictions.update()
        case .removeAll: return try restrictions.removeAll()
        case .restore: return try restrictions.restore()
        case .enable:
            try restrictions.setAutomatic(true)
            return nil
        case .disable:
            try restrictions.setAutomatic(false)
            return nil
        }
    }
}
