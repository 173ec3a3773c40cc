public import Registry
internal import SSH

/// What the operator asked for.
public struct SSHSetupOptions: Sendable {
    public var hosts: [String]
    /// `-r`: every named host to every other, too.
    public var roundRobin = false
    /// `-y`: accept new host keys without asking.
    public var yes = false
    /// `-f`: restrict each installed key with `from=` to the address its owner connects from.
    public var restrictSource = false
    /// Whether `-i` / `--known-hosts` were given (then the peers use the same paths).
    public var identityGiven = false
    public var knownHostsGiven = false
    /// A private key the hosts already accept, to install the migration key with instead of a password.
    public var bootstrapIdentity: String?
    /// The path of hpvmsshsetup on the other hosts (`HPVM_SSHSETUP_COMMAND`).
    public var remoteCommand = "hpvmsshsetup"

    public init(hosts: [String]) { self.hosts = hosts }
}

/// The final table: for each source (this host, and with `-r` each named host), each target.
public struct SetupReport: Sendable {
    public struct Row: Sendable {
        public let from: String
        /// One cell per named host, nil for the host itself.
        public let cells: [TrustCell?]
    }

    public let hosts: [String]
    public let rows: [Row]

    /// Whether every source reaches every target as hpvmmigrate would.
    public var ok: Bool { rows.allSatisfy { $0.cells.allSatisfy { $0?.ok ?? true } } }

    /// `from \ to` and one column per host: `ok`, `-` for a host and itself, or what is missing.
    public var table: String {
        let header = ["from \\ to"] + hosts
        let lines = [header] + rows.map { [$0.from] + $0.cells.map { $0?.state ?? "-" } }
        let widths = (0..<header.count).map { column in lines.map { $0[column].count }.max() ?? 0 }
        return lines.map { line in
            line.enumerated().map { index, text in
                index == line.count - 1 ? text : text + String(repeating: " ", count: widths[index] - text.count + 2)
            }.joined()
        }.joined(separator: "\n") + "\n"
    }

    /// One line per failed cell: which pair, what is missing, the command that fixes it.
    public var fixes: [String] {
        rows.flatMap { row in
            zip(hosts, row.cells).compactMap { host, cell -> String? in
                guard let cell, !cell.ok else { return nil }
                return "\(row.from) -> \(host): \(cell.state)" + (cell.fix.map { "; \($0)" } ?? "")
            }
        }
    }
}

/// `hpvmsshsetup`'s work: root-to-root public-key trust for hpvmmigrate, from this host to each
/// named host and, with `-r`, between every two of them, with OpenSSH's own tools.
public struct SSHSetup {
    public let options: SSHSetupOptions
    public let settings: SSHSetupSettings
    public let registryPath: String?
    public let audit: AuditContext
    /// Progress and problems, one line each (printed after `hpvmsshsetup: `).
    public let say: (String) -> Void
    /// Asks a yes/no question on the terminal; nil when there is none.
    public let ask: (String) -> Bool?
    let tools: OpenSSHTools

    public init(
        options: SSHSetupOptions, settings: SSHSetupSettings, registryPath: String?, audit: AuditContext,
        say: @escaping (String) -> Void, ask: @escaping (String) -> Bool?
    ) {
        self.options = options
        self.settings = settings
        self.registryPath = registryPath
        self.audit = audit
        self.say = say
        self.ask = ask
        self.tools = OpenSSHTools(home: settings.home)
    }

    /// Sets up what is missing and returns the table of the final checks.
    public func run() throws(SetupError) -> SetupReport {
        for host in options.hosts { try SetupInput.checkHost(host) }
        let thisHost = LocalHost.name()
        let key = try tools.ensureKey(at: settings.identity, comment: "hpvm-migration@\(thisHost)")
        if key.made { say("made the migration key \(settings.identity) (ed25519).") }
        // This host to each named host.
        var accepted: [String: [HostKey]] = [:]
        var how = "-y"
        for host in options.hosts {
            guard let keys = try trustHostKeys(host) else { continue }
            accepted[host] = keys.keys
            if keys.how != nil { how = keys.how! }
            let check = TrustCheck.check(settings.configuration(host: host))
            if check.code == .authentication {
                let source = options.restrictSource ? LocalHost.sourceAddress(toward: host, port: settings.port) : nil
                try install(key.publicKey, owner: "this host's key", on: host, from: source, authenticateWith: options.bootstrapIdentity)
            } else if !check.cell.ok {
                say("\(host): \(check.cell.message ?? check.cell.state)")
            }
        }
        // Every named host to every other, over the trust just made.
        var peers: [String: PeerConnection] = [:]
        if options.roundRobin {
            for host in options.hosts where accepted[host] != nil {
                guard TrustCheck.check(settings.configuration(host: host)).cell.ok else { continue }
                do {
                    let peer = try PeerConnection.open(settings.configuration(host: host), remoteCommand: options.remoteCommand)
                    peers[host] = peer
                    let others = options.hosts.filter { $0 != host && accepted[$0] != nil }
                    let answer = try peer.ask(request("trust", peers: others.map { .init(host: $0, keys: accepted[$0]) }, how: how, origin: thisHost))
                    try roundRobin(from: host, answer: answer)
                } catch {
                    say("\(host): \(error.lines.joined(separator: " "))")
                }
            }
        }
        // The final check, as hpvmmigrate -s makes it.
        var rows = [SetupReport.Row(from: "this host", cells: options.hosts.map { host in
            var cell = TrustCheck.check(settings.configuration(host: host)).cell
            if !cell.ok, let fix = cell.fix { cell = TrustCell(state: cell.state, message: cell.message, fix: fix + fixSuffix) }
            return cell
        })]
        if options.roundRobin {
            for host in options.hosts {
                let others = options.hosts.filter { $0 != host }
                var cells: [String: TrustCell] = [:]
                if let peer = peers[host] {
                    do {
                        let answer = try peer.ask(request("check", peers: others.map { .init(host: $0, keys: nil) }, how: how, origin: thisHost))
                        for result in answer.results { cells[result.host] = result.cell }
                    } catch {
                        say("\(host): \(error.lines.joined(separator: " "))")
                    }
                }
                rows.append(SetupReport.Row(from: host, cells: options.hosts.map { other -> TrustCell? in
                    guard other != host else { return nil }
                    let fix = roundRobinCommand([host, other])
                    guard let cell = cells[other] else { return TrustCell(state: "not reached", fix: fix) }
                    return cell.ok ? cell : TrustCell(state: cell.state, message: cell.message, fix: fix)
                }))
            }
        }
        for peer in peers.values { peer.close() }
        return SetupReport(hosts: options.hosts, rows: rows)
    }

    // MARK: - Host keys

    /// Fetches `host`'s keys and adds them to known_hosts once the operator accepts them; nil when
    /// the host is unreachable, changed its key, or the keys were not accepted.
    func trustHostKeys(_ host: String) throws(SetupError) -> (keys: [HostKey], how: String?)? {
        let name = settings.knownHostsName(host)
        let presented = try tools.scan(host, port: settings.port)
        let known = try tools.knownKeys(name, in: settings.knownHosts)
        switch HostKeyDecision.decide(presented: presented, known: known) {
        case .unreachable:
            say("\(host): no SSH server answered on port \(settings.port) (ssh-keyscan got no host key); check the name and that sshd runs there.")
            return nil
        case .changed:
            let shown = (try? tools.fingerprints(presented, name: name)) ?? []
            say("\(host) presents a different host key from the one in \(settings.knownHosts); refused, not re-trusted. It now shows:")
            for line in shown { say("  \(line)") }
            say("Find out why it changed (reinstalled, or someone in the middle); then remove the old key with ssh-keygen -R '\(name)' -f \(settings.knownHosts) and run hpvmsshsetup again.")
            return nil
        case .known:
            return (presented.filter(known.contains), nil)
        case .new(let keys):
            say("\(host) presents these host keys:")
            for line in try tools.fingerprints(keys, name: name) { say("  \(line)") }
            let how: String
            if options.yes {
                how = "-y"
                say("added to \(settings.knownHosts) without asking (-y).")
            } else {
                guard let answer = ask("Add these host keys of \(host) to \(settings.knownHosts)? [y/N] ") else {
                    say("\(host): no terminal to ask on; check the fingerprints with its administrator, then run again with -y.")
                    return nil
                }
                guard answer else {
                    say("\(host): host keys not added.")
                    return nil
                }
                how = "prompt"
            }
            try KnownHostsFile.append(keys, name: name, to: settings.knownHosts)
            if let note = AuditNote.record(registryPath: registryPath, audit: audit, host: name, keys: keys, tools: tools, how: how) {
                say(note)
            }
            return (keys, how)
        }
    }

    // MARK: - Keys

    /// Installs `publicKey` in `host`'s authorized_keys with ssh-copy-id, restricted to `from=`
    /// `source` when given.
    func install(_ publicKey: String, owner: String, on host: String, from source: String?, authenticateWith: String?)
        throws(SetupError)
    {
        var line = publicKey
        if options.restrictSource {
            guard let source else {
                say("\(host): cannot tell which address \(owner) connects from; not installed (run without -f to install it unrestricted).")
                return
            }
            line = "from=\"\(source)\" " + publicKey
        }
        let result = try tools.copyID(
            line, host: host, port: settings.port, user: settings.user, knownHosts: settings.knownHosts, authenticateWith: authenticateWith)
        if result.status == 0 {
            say("installed \(owner) in \(settings.user)@\(host)'s authorized_keys\(source.map { " (from=\"\($0)\")" } ?? "").")
        } else {
            let detail = (result.stderr + result.stdout).split(separator: "\n").filter { !$0.contains("INFO:") }.suffix(3).joined(separator: " ")
            say("\(host): ssh-copy-id could not install \(owner) (exit \(result.status))\(detail.isEmpty ? "" : ": \(detail)")")
        }
    }

    func roundRobin(from host: String, answer: PeerProtocol.Response) throws(SetupError) {
        if let error = answer.error { throw SetupError(.failed, error) }
        guard let publicKey = answer.publicKey else { throw SetupError(.failed, "answered without its public key.") }
        for result in answer.results {
            switch result.hostKeys {
            case "added": say("\(host) now knows \(result.host)'s host key.")
            case "changed": say("\(host) has another host key for \(result.host) in its known_hosts; refused, not re-trusted.")
            case "different": say("\(host) is shown other host keys for \(result.host) than this host accepted; refused.")
            case "unreachable": say("\(host) cannot reach \(result.host) on port \(settings.port).")
            default: break
            }
            if result.cell.state == "key refused" {
                // Over the trust just made: this host's key logs in to the target.
                try install(
                    publicKey, owner: "\(host)'s key", on: result.host, from: result.source,
                    authenticateWith: settings.identity)
            }
        }
    }

    func request(_ op: String, peers: [PeerProtocol.Peer], how: String, origin: String) -> PeerProtocol.Request {
        PeerProtocol.Request(
            op: op, identity: options.identityGiven ? settings.identity : nil,
            knownHosts: options.knownHostsGiven ? settings.knownHosts : nil, port: settings.port, user: settings.user,
            peers: peers, accepted: how, origin: origin)
    }

    /// `hpvmsshsetup -r` with this run's settings for `hosts`, to fix a pair from here.
    func roundRobinCommand(_ hosts: [String]) -> String {
        var words = ["hpvmsshsetup", "-r"]
        if options.restrictSource { words.append("-f") }
        if options.identityGiven { words += ["-i", settings.identity] }
        if options.knownHostsGiven { words += ["--known-hosts", settings.knownHosts] }
        if settings.port != 22 { words += ["--port", String(settings.port)] }
        if settings.user != "root" { words += ["--user", settings.user] }
        return (words + hosts).joined(separator: " ")
    }

    var fixSuffix: String { options.restrictSource ? " (add -f to restrict it with from=)" : "" }
}

/// One SSH session to a named host running `hpvmsshsetup --peer`.
final class PeerConnection {
    let session: SSHSession
    let channel: SSHChannel
    let host: String

    private init(session: SSHSession, channel: SSHChannel, host: String) {
        self.session = session
        self.channel = channel
        self.host = host
    }

    static func open(_ configuration: SSHConfiguration, remoteCommand: String) throws(SetupError) -> PeerConnection {
        do {
            let session = try SSHSession.connect(configuration)
            // Only the configured path and a fixed option on the remote command line.
            let channel = try session.exec(ShellQuote.quote(remoteCommand) + " --peer")
            return PeerConnection(session: session, channel: channel, host: configuration.host)
        } catch {
            throw SetupError(.failed, error.message, cause: error)
        }
    }

    func ask(_ request: PeerProtocol.Request) throws(SetupError) -> PeerProtocol.Response {
        do {
            try channel.writeLine(PeerProtocol.encode(request))
            guard let line = try channel.readLine() else {
                try? channel.sendEOF()
                let status = (try? channel.close()) ?? -1
                let stderr = channel.readStderr().trimmed
                throw SetupError(
                    .failed,
                    "cannot run hpvmsshsetup --peer there (exit \(status)\(stderr.isEmpty ? "" : ": \(stderr)")); install hpvmsshsetup on every host, or set HPVM_SSHSETUP_COMMAND to its path there.")
            }
            guard let response = PeerProtocol.decode(PeerProtocol.Response.self, line) else {
                throw SetupError(.failed, "answered something that is not hpvmsshsetup's protocol: '\(SetupInput.show(line))'.")
            }
            return response
        } catch let error as SetupError {
            throw error
        } catch {
            throw SetupError(.failed, "\(error)")
        }
    }

    func close() {
        try? channel.sendEOF()
        _ = try? channel.close()
        session.disconnect()
    }
}
