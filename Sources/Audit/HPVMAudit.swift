public import ArgumentParser
public import HPVMCLI
import Registry

/// `hpvmaudit`: check the registry's audit log, print its head, list its rows.
public struct HPVMAudit: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmaudit"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Check the registry's audit log against its chain, kept heads and tables; print its head; list it.",
        usage: "hpvmaudit verify [--head ID:HASH]... [--from-log FILE]\n       hpvmaudit head\n       hpvmaudit list [--since TIME] [--guest NAME] [--device PATH] [--json]",
        discussion: "Exit status: 0 intact, 1 broken, 64 malformed. See hpvmaudit(8).",
        subcommands: [Verify.self, Head.self, List.self]
    )

    public init() {}

    public static func run(arguments: CommandArguments) -> Never {
        CommandMain.run(commandName, arguments, { words in
            var command = try parseAsRoot(words)
            try command.run()
        }, usageError: { error in
            let code = exitCode(for: error)
            return (code == .success ? fullMessage(for: error) : message(for: error) + "\n" + usageString(), code.rawValue)
        })
    }

    /// Opens the registry under `HPVM_ROOT` read-only, runs `body`, closes it.
    static func withStore<T>(_ body: (RegistryStore) throws -> T) throws -> T {
        let environment = try CommandEnvironment.current(name: commandName)
        let store = try RegistryStore.open(at: environment.registryPath, for: .read)
        defer { try? store.closeForExit() }
        return try body(store)
    }
}

/// A broken log: every finding on its own line, exit status 1.
struct Broken: MessageLines {
    let lines: [String]
    var exitStatus: Int32 { ExitStatus.failure }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the chain, the triggers and kept heads, and replay the log against the tables.")

    @Option(name: .long, help: ArgumentHelp("A head written down earlier (hpvmaudit head); may be repeated.", valueName: "ID:HASH"))
    var head: [String] = []

    @Option(name: .customLong("from-log"), help: ArgumentHelp("A saved journal or syslog extract whose heads must all be in the chain.", valueName: "FILE"))
    var fromLog: String?

    func run() throws {
        let heads = try head.map { try AuditHead.parse($0) }
        let report = try HPVMAudit.withStore { try $0.verifyAudit(heads: heads, logFile: fromLog) }
        guard report.isIntact else { throw Broken(lines: report.findings.map(\.message)) }
        var text = "audit log intact: \(report.rows) rows, chain and triggers hold"
        if !heads.isEmpty { text += ", \(heads.count) kept head\(heads.count == 1 ? "" : "s") found" }
        if fromLog != nil { text += ", \(report.anchoredHeads) logged head\(report.anchoredHeads == 1 ? "" : "s") found" }
        text += ", replay matches the tables; head \(report.head?.description ?? "none")\n"
        Output.write(text)
    }
}

struct Head: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the last row's id and hash as ID:HASH.")

    func run() throws {
        let head = try HPVMAudit.withStore { try $0.auditHead() }
        guard let head else { throw RegistryError(.notFound, "the audit log is empty: there is no head yet.") }
        Output.write(head.description + "\n")
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List audit rows, oldest first.")

    @Option(name: .long, help: ArgumentHelp("Rows at or after this UTC time (2026-11-28 or 2026-11-28T09:30).", valueName: "TIME"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("Rows about this guest.", valueName: "NAME"))
    var guest: String?

    @Option(name: .long, help: ArgumentHelp("Rows about this device path or vswitch.", valueName: "PATH"))
    var device: String?

    @Flag(name: .long, help: "Print the rows as a JSON array.")
    var json = false

    func validate() throws {
        if let since {
            let ok = since.utf8.count >= 4 && since.utf8.count <= 24
                && since.unicodeScalars.allSatisfy { $0.isASCII && ("0"..."9" ~= $0 || "-T:.Z".unicodeScalars.contains($0)) }
            if !ok { throw ValidationError("--since '\(since)' must be a UTC time such as 2026-11-28 or 2026-11-28T09:30.") }
        }
    }

    func run() throws {
        let query = AuditQuery(since: since, guest: guest, device: device)
        let rows = try HPVMAudit.withStore { try $0.auditEntries(query) }
        if json {
            Output.write("[" + rows.map(\.jsonText).joined(separator: ",\n") + "]\n")
            return
        }
        var text = ""
        for row in rows {
            let who = row.user + (row.sudoUser.map { " (sudo \($0))" } ?? "")
            text += "\(row.id)\t\(row.at)\t\(Display.safe(who))\t\(row.action)\t\(Display.safe(row.object, limit: 200))\t\(Display.safe(row.change, limit: 400))\n"
        }
        Output.write(text)
    }
}
