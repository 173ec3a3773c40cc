public import ArgumentParser
public import HPVMCLI
import Registry
public import SSHSetup

#if canImport(Glibc)
import Glibc
#endif

/// `hpvmsshsetup`: the root-to-root SSH trust hpvmmigrate needs, as HP's `csshsetup -r` set it up.
public struct HPVMSSHSetup: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmsshsetup"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Set up the SSH keys and known hosts hpvmmigrate needs between VM hosts.",
        usage: """
            hpvmsshsetup [-r] [-y] [-f] [-i identity] [--known-hosts file] [--port port] [--user user]
                         [--bootstrap-identity file] host...
            """,
        discussion: "Environment: HPVM_SSH_IDENTITY, HPVM_SSH_KNOWN_HOSTS, HPVM_SSH_PORT, HPVM_SSH_USER, HPVM_SSH_BOOTSTRAP_IDENTITY, HPVM_SSHSETUP_COMMAND. See hpvmsshsetup(8)."
    )

    public init() {}

    @Flag(name: .customShort("r"), help: "Round robin: also from every named host to every other.")
    var roundRobin = false

    @Flag(name: .customShort("y"), help: "Add new host keys without asking (recorded in the audit log).")
    var yes = false

    @Flag(name: .customShort("f"), help: "Restrict each installed key with from= to the address its host connects from.")
    var restrictSource = false

    @Option(name: .customShort("i"), help: ArgumentHelp("The migration key (made, ed25519, if missing).", valueName: "identity"))
    var identity: String?

    @Option(name: .long, help: ArgumentHelp("known_hosts file (or HPVM_SSH_KNOWN_HOSTS).", valueName: "file"))
    var knownHosts: String?

    @Option(name: .long, help: ArgumentHelp("SSH port of the hosts (or HPVM_SSH_PORT).", valueName: "port"))
    var port: Int?

    @Option(name: .long, help: ArgumentHelp("Login on the hosts (or HPVM_SSH_USER).", valueName: "user"))
    var user: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Log in the first time with this key instead of a password (or HPVM_SSH_BOOTSTRAP_IDENTITY).", valueName: "file"))
    var bootstrapIdentity: String?

    @Flag(name: .long, help: .hidden)
    var peer = false

    @Argument(help: ArgumentHelp("The VM hosts, by name or address.", valueName: "host"))
    var hosts: [String] = []

    public func validate() throws {
        if peer { return }
        guard !hosts.isEmpty else { throw ValidationError("name at least one host.") }
        do {
            for host in hosts { try SetupInput.checkHost(host) }
            if let user { try SetupInput.checkUser(user) }
            _ = try Self.settings(self)
        } catch {
            throw ValidationError(error.lines.joined(separator: " "))
        }
        if let port, !(1...65535).contains(port) { throw ValidationError("--port \(port) is not a port number (1-65535).") }
        if Set(hosts).count != hosts.count { throw ValidationError("a host is named twice.") }
    }

    public func run() throws {
        let command = try CommandEnvironment.current(name: Self.commandName)
        var settings = try Self.settings(self)
        if peer {
            PeerAgent(settings: settings, registryPath: command.registryPath, audit: command.audit)
                .serve(writeLine: { Output.write($0 + "\n") })
            return
        }
        let environment = Self.environment()
        var options = SSHSetupOptions(hosts: hosts)
        options.roundRobin = roundRobin
        options.yes = yes
        options.restrictSource = restrictSource
        options.identityGiven = identity != nil
        options.knownHostsGiven = knownHosts != nil
        options.bootstrapIdentity = try Self.bootstrap(self, environment)
        options.remoteCommand = environment["HPVM_SSHSETUP_COMMAND"].flatMap { $0.isEmpty ? nil : $0 } ?? "hpvmsshsetup"
        if let port { settings.port = port }
        if let user { settings.user = user }
        let report = try SSHSetup(
            options: options, settings: settings, registryPath: command.registryPath, audit: command.audit,
            say: { Output.error("hpvmsshsetup", $0) }, ask: LocalHost.ask
        ).run()
        Output.write(report.table + report.fixes.map { $0 + "\n" }.joined())
        if !report.ok {
            throw SetupError(.refused, "SSH is not set up for every pair yet; the table says what is missing and how to fix it.")
        }
    }

    static func environment() -> [String: String] {
        var values: [String: String] = [:]
        for key in ["HOME", "HPVM_SSH_IDENTITY", "HPVM_SSH_KNOWN_HOSTS", "HPVM_SSH_PORT", "HPVM_SSH_USER", "HPVM_SSH_BOOTSTRAP_IDENTITY", "HPVM_SSHSETUP_COMMAND"] {
            if let value = getenv(key) { values[key] = String(cString: value) }
        }
        return values
    }

    static func directory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The settings from the environment, with the options over them; every path checked.
    static func settings(_ command: HPVMSSHSetup) throws(SetupError) -> SSHSetupSettings {
        var settings = try SSHSetupSettings.fromEnvironment(environment())
        let directory = directory()
        settings.identity = try SetupInput.checkPath(command.identity ?? settings.identity, option: "-i", directory: directory)
        settings.knownHosts = try SetupInput.checkPath(command.knownHosts ?? settings.knownHosts, option: "--known-hosts", directory: directory)
        _ = try bootstrap(command, environment())
        return settings
    }

    static func bootstrap(_ command: HPVMSSHSetup, _ environment: [String: String]) throws(SetupError) -> String? {
        guard let path = command.bootstrapIdentity ?? environment["HPVM_SSH_BOOTSTRAP_IDENTITY"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            return nil
        }
        return try SetupInput.checkPath(path, option: "--bootstrap-identity", directory: directory())
    }

    /// HP-UX getopt(3C) forms (`-Pg1`, `-QF`), and a single-valued option given twice refused.
    static let getopt = GetoptArguments(valued: "i", flags: "ryf")

    public static func run(arguments: CommandArguments) -> Never {
        CommandMain.run(commandName, arguments, { words in
            var command = try parseAsRoot(try getopt.normalize(words))
            try command.run()
        }, usageError: { error in
            let code = exitCode(for: error)
            return (code == .success ? fullMessage(for: error) : message(for: error), code.rawValue)
        })
    }
}

extension SetupError: MessageLines {
    public var exitStatus: Int32 { code == .usage ? ExitStatus.usage : ExitStatus.failure }
}
