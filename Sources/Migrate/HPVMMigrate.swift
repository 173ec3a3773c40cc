public import ArgumentParser
import GuestTools
public import HPVMCLI
public import Migration
import Registry
import Runtime
import SSH

#if canImport(Glibc)
import Glibc
#endif

/// `hpvmmigrate`: move a guest to another VM host (offline), never runnable on both.
public struct HPVMMigrate: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmmigrate"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Migrate a guest to another VM host after proving that host can run it.",
        usage: """
            hpvmmigrate {-P vm-name | -p vm-number} -h target-host [-N new-vm-name] [-l vm-label] [-c number-vcpus]
                        [-r amount] [-m rsrc [-C]]... [-t] [-d] [-b] [-D] [-s [--json]] [-F] [-q]
              hpvmmigrate -o {-P vm-name | -p vm-number} -h target-host [-N new-vm-name] [-l vm-label] [-m rsrc]... [-t] [-D] [-s [--json]] [-F] [-q]
              hpvmmigrate --recover [-P vm-name]
              hpvmmigrate -v | -H
            """,
        discussion: "SSH: HPVM_SSH_USER, HPVM_SSH_PORT, HPVM_SSH_IDENTITY, HPVM_SSH_KNOWN_HOSTS, HPVM_REMOTE_COMMAND; deadline: HPVM_MIGRATE_TIMEOUT. See hpvmmigrate(8).",
        helpNames: [.customShort("H"), .long]
    )

    public init() {}

    @Option(name: .customShort("P"), help: ArgumentHelp("The guest's name.", valueName: "vm-name"))
    var name: String?

    @Option(name: .customShort("p"), help: ArgumentHelp("The guest's VM number.", valueName: "vm-number"))
    var number: Int?

    @Option(name: .customShort("h"), help: ArgumentHelp("The target VM host (name or address).", valueName: "target-host"))
    var host: String?

    @Option(name: .customShort("N"), help: ArgumentHelp("The guest's name on the target.", valueName: "new-vm-name"))
    var newName: String?

    @Option(name: .customShort("l"), help: ArgumentHelp("The label on the target.", valueName: "vm-label"))
    var label: String?

    @Option(name: .customShort("c"), help: ArgumentHelp("vCPUs on the target.", valueName: "number-vcpus"))
    var vcpus: String?

    @Option(name: .customShort("r"), help: ArgumentHelp("Memory on the target (M or G).", valueName: "amount"))
    var memory: String?

    @Option(name: .customShort("m"), help: ArgumentHelp("The target-side statement for the device at the same guest address (repeatable).", valueName: "rsrc"))
    var storage: [String] = []

    @Flag(name: .customShort("C"), help: "Copy the data of each -m device's source backing store to the target.")
    var copy = false

    @Flag(name: .customShort("t"), help: "Translate device paths: use the target path that has each LUN's WWID.")
    var translate = false

    @Flag(name: .customShort("D"), help: "Remove the guest from the source after the migration.")
    var delete = false

    @Flag(name: .customShort("s"), help: "Check only: run the target's checks and report; change nothing.")
    var checkOnly = false

    @Flag(name: .customShort("F"), help: "Force: migrate despite failed checks of storage, vswitches and memory.")
    var force = false

    @Flag(name: .customShort("q"), help: "Quiet: print only errors.")
    var quiet = false

    @Flag(name: .customShort("v"), help: "Print the version.")
    var version = false

    @Flag(name: .long, help: "With -s: print the check report as one JSON document.")
    var json = false

    @Flag(name: .customShort("b"), help: "Boot (start) the guest on the target once it is migrated.")
    var boot = false

    @Flag(name: .customShort("d"), help: "Stop the running guest here once the target's checks passed, then migrate it offline.")
    var stop = false

    @Flag(name: .customShort("o"), help: "Online migration: move the running guest, its memory and state, to the target.")
    var online = false

    @Flag(name: .long, help: "Finish or roll back unfinished migrations from or to this host.")
    var recover = false

    @Flag(name: .long, help: .hidden)
    var target = false

    @Option(name: .long, help: ArgumentHelp("Seconds of silence from the target before giving up, in any phase (or HPVM_MIGRATE_TIMEOUT; default 15).", valueName: "seconds"))
    var timeout: String?

    @Option(name: .long, help: ArgumentHelp("Target SSH port (or HPVM_SSH_PORT).", valueName: "port"))
    var port: Int?

    @Option(name: .long, help: ArgumentHelp("Private key file (or HPVM_SSH_IDENTITY).", valueName: "file"))
    var identity: String?

    @Option(name: .long, help: ArgumentHelp("known_hosts file (or HPVM_SSH_KNOWN_HOSTS).", valueName: "file"))
    var knownHosts: String?

    @Option(name: .long, help: ArgumentHelp("Login on the target (or HPVM_SSH_USER).", valueName: "user"))
    var user: String?

    public func validate() throws {
        if online {
            if copy { throw ValidationError("-C copies storage offline; a running guest keeps its storage: give -o without -C, or migrate offline.") }
            if vcpus != nil || memory != nil {
                throw ValidationError("-c and -r change the guest's hardware, which a running guest keeps across -o; change them after, with hpvmmodify.")
            }
            if stop { throw ValidationError("-d stops the guest for an offline migration; -o moves it running: give one of them.") }
            if boot { throw ValidationError("-b starts the guest on the target after an offline migration; with -o it runs there already.") }
        }
        if copy && storage.isEmpty { throw ValidationError("-C goes with -m: name the target device to copy each backing store into.") }
        if version || target || recover { return }
        if (name == nil) == (number == nil) { throw ValidationError("give the guest with -P vm-name or -p vm-number.") }
        if host == nil { throw ValidationError("give the target host with -h target-host.") }
        if json && !checkOnly { throw ValidationError("--json goes with -s.") }
        if let timeout, Self.seconds(timeout) == nil {
            throw ValidationError("--timeout \(timeout) is not a number of seconds from 1 to 3600.")
        }
    }

    /// A deadline in whole seconds, 1 to 3600.
    static func seconds(_ text: String) -> Int? {
        guard let value = Int(text), (1...3600).contains(value) else { return nil }
        return value
    }

    public func run() throws {
        if version {
            Output.write("hpvmmigrate 1.0 (protocol version \(MigrationProtocol.version))\n")
            return
        }
        let environment = try CommandEnvironment.current(name: Self.commandName)
        var env: [String: String] = [:]
        for key in [
            "HOME", "HPVM_SSH_USER", "HPVM_SSH_PORT", "HPVM_SSH_IDENTITY", "HPVM_SSH_KNOWN_HOSTS", "HPVM_REMOTE_COMMAND", "HPVM_FAILPOINT",
            "HPVM_MIGRATE_TIMEOUT", "HPVM_MIGRATE_BANDWIDTH", "HPVM_MIGRATE_DOWNTIME",
        ] {
            if let value = getenv(key) { env[key] = String(cString: value) }
        }
        let failpoints = Failpoints(environment: env["HPVM_FAILPOINT"])
        let hostName = Self.hostName()
        // Online migration, -d, -b and their recovery drive QEMU; a host whose runtime settings are
        // wrong still migrates offline.
        let runtime = try? GuestCommand.runtime(environment)
        if target {
            try Self.serveTarget(environment, failpoints: failpoints, hostName: hostName, runtime: runtime)
            return
        }
        let stream = try Self.streamSettings(env)
        // The deadline: --timeout, else HPVM_MIGRATE_TIMEOUT, else the guest's
        // migrate_init_phase_timeout (hpvmmodify -x), else the default.
        var given: Int?
        if let timeout, let value = Self.seconds(timeout) {
            given = value
        } else if let value = env["HPVM_MIGRATE_TIMEOUT"], !value.isEmpty {
            guard let seconds = Self.seconds(value) else {
                throw ValidationError("HPVM_MIGRATE_TIMEOUT='\(value)' is not a number of seconds from 1 to 3600.")
            }
            given = seconds
        }
        func connector(deadline: Int) -> SSHConnector {
            SSHConnector(remoteCommand: env["HPVM_REMOTE_COMMAND"] ?? "hpvmmigrate", deadline: deadline) { host throws(SSHError) in
                var configuration = try SSHConfiguration.fromEnvironment(host: host, environment: env)
                if let port { configuration.port = port }
                if let user { configuration.user = user }
                if let identity { configuration.identities = [identity] }
                if let knownHosts { configuration.knownHosts = knownHosts }
                return configuration
            }
        }
        // The guest must exist already, and --recover has nothing to do without a registry.
        try GuestCommand.withGuests(environment, for: .update) { guests in
            if recover {
                let migration = SourceMigration(
                    guests: guests, connector: connector(deadline: given ?? SSHConnector.defaultDeadline), failpoints: failpoints,
                    sourceHost: hostName, runtime: runtime, leases: FleetGuestLeases(guests))
                let lines = try migration.recover(guest: name)
                if !quiet { Output.write(lines.map { "hpvmmigrate: \($0)\n" }.joined()) }
                return
            }
            let guest = try GuestCommand.guestName(guests, name: name, number: number)
            let settings = try guests.settings(of: guest)
            let stored = settings["migrate_init_phase_timeout"].flatMap { Self.seconds($0) }
            let deadline = given ?? stored ?? SSHConnector.defaultDeadline
            let migration = SourceMigration(
                guests: guests, connector: connector(deadline: deadline),
                failpoints: failpoints, sourceHost: hostName, runtime: runtime, leases: FleetGuestLeases(guests))
            var options = MigrationOptions(guest: guest, host: host ?? "")
            options.newName = try newName.map { try GuestRules.name($0) }
            options.label = try label.map { try GuestRules.label($0) }
            options.vcpus = try vcpus.map { try GuestRules.vcpus($0) }
            options.memoryMB = try memory.map { try GuestRules.memory($0) }
            options.overrides = try GuestCommand.statements(storage)
            options.translate = translate
            options.remove = delete
            options.checkOnly = checkOnly
            options.force = force
            options.copy = copy
            options.progress = !quiet && isatty(2) == 1
            options.online = online
            options.stopFirst = stop
            options.boot = boot
            options.stream = stream
            options.silence = deadline
            // HP: migrate_copy_phase_timeout 0 (the default) is no limit.
            options.streamTimeout = settings["migrate_copy_phase_timeout"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
            let outcome = try migration.run(options)
            if checkOnly {
                if json, let report = outcome.report {
                    Output.write(MigrationReport.json(report) + "\n")
                    if let failure = outcome.failure { throw failure }
                } else if let failure = outcome.failure {
                    throw failure
                } else if !quiet {
                    Output.write(
                        MigrationReport.text(outcome.report, forced: outcome.forced)
                            + "hpvmmigrate: Guest \(guest) can be migrated to \(options.host)\(outcome.forced.isEmpty ? "" : " with -F").\n")
                }
            } else if !quiet {
                Output.write(outcome.forced.map { "hpvmmigrate: forced past (-F): \($0.kind): \($0.detail)\n" }.joined())
                if let live = outcome.live {
                    Output.write(
                        "hpvmmigrate: online: \(live.transferred >> 20) MiB of memory in \(Double(live.totalTime) / 1000) s, the guest stood still for \(live.downtime) ms (\(live.passes) passes).\n")
                }
                Output.write(outcome.notes.map { "hpvmmigrate: \($0)\n" }.joined())
                Output.write("hpvmmigrate: Guest migrated successfully.\n")
            }
        }
    }

    /// The target half: reads with the registry as it is (an empty one if there is none yet) and
    /// opens it for writing only when a phase changes it.
    /// The stream's settings: `HPVM_MIGRATE_BANDWIDTH` (MiB/s) and `HPVM_MIGRATE_DOWNTIME` (ms).
    static func streamSettings(_ env: [String: String]) throws -> LiveMigrationSettings {
        var stream = LiveMigrationSettings()
        if let value = env["HPVM_MIGRATE_BANDWIDTH"], !value.isEmpty {
            guard value.count <= 7, let mib = Int(value), (1...1_000_000).contains(mib) else {
                throw ValidationError("HPVM_MIGRATE_BANDWIDTH='\(Display.safe(value))' is not a number of MiB a second from 1 to 1000000.")
            }
            stream.maxBandwidth = Int64(mib) << 20
        }
        if let value = env["HPVM_MIGRATE_DOWNTIME"], !value.isEmpty {
            guard value.count <= 6, let ms = Int(value), (1...600_000).contains(ms) else {
                throw ValidationError("HPVM_MIGRATE_DOWNTIME='\(Display.safe(value))' is not a number of milliseconds from 1 to 600000.")
            }
            stream.downtimeLimit = ms
        }
        return stream
    }

    static func serveTarget(_ environment: CommandEnvironment, failpoints: Failpoints, hostName: String, runtime: GuestRuntime?) throws {
        let exists = RegistryStore.exists(at: environment.registryPath)
        let readStore = exists ? try RegistryStore.open(at: environment.registryPath) : try RegistryStore.inMemory()
        let reader = GuestRegistry(store: readStore, root: environment.root, audit: environment.audit)
        var writer: GuestRegistry? = exists ? reader : nil
        defer {
            try? readStore.close()
            if !exists { try? writer?.store.close() }
        }
        TargetAgent(
            guests: reader,
            writable: {
                if let writer { return writer }
                let store = try RegistryStore.open(at: environment.registryPath)
                writer = GuestRegistry(store: store, root: environment.root, audit: environment.audit)
                return writer!
            },
            root: environment.root, failpoints: failpoints, hostName: hostName,
            peerAddress: getenv("SSH_CONNECTION").flatMap { String(cString: $0).split(separator: " ").first.map(String.init) },
            runtime: runtime, leases: { FleetGuestLeases($0) }
        ).serve(input: StandardInput(), writeLine: { Output.write($0 + "\n") })
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, 255)
        return String(cString: buffer)
    }

    /// HP-UX getopt(3C) forms (`-Pg1`, `-QF`), and a single-valued option given twice refused.
    static let getopt = GetoptArguments(valued: "PphNlcrm", repeatable: "m", flags: "CtDsFqvbdoH")

    public static func run(arguments: CommandArguments) -> Never {
        CommandMain.run(commandName, arguments, log: .successAndOperationFailures, { words in
            var command = try parseAsRoot(try getopt.normalize(words))
            try command.run()
        }, usageError: { error in
            let code = exitCode(for: error)
            return (code == .success ? fullMessage(for: error) : message(for: error), code.rawValue)
        })
    }
}

extension MigrationError: MessageLines {
    public var exitStatus: Int32 { code == .usage ? ExitStatus.usage : ExitStatus.failure }
}
