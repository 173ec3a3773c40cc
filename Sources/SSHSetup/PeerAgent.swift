public import Registry
internal import SSH
#if canImport(Glibc)
internal import Glibc
#endif

/// The peer half: on one named host, makes its migration key, adds the host keys the operator
/// accepted for the other hosts (after checking it sees the same keys), and runs the SSH check
/// from here to each of them. Reads requests on standard input and answers on standard output.
public struct PeerAgent {
    public let settings: SSHSetupSettings
    public let registryPath: String?
    public let audit: AuditContext

    public init(settings: SSHSetupSettings, registryPath: String?, audit: AuditContext) {
        self.settings = settings
        self.registryPath = registryPath
        self.audit = audit
    }

    /// Serves requests from file descriptor `input` until it closes; answers with `writeLine`.
    public func serve(input: Int32 = 0, writeLine: (String) -> Void) {
        let reader = LineReader(fd: input)
        while let line = reader.readLine() {
            guard let request = PeerProtocol.decode(PeerProtocol.Request.self, line), request.version == PeerProtocol.version else {
                writeLine(PeerProtocol.encode(PeerProtocol.Response(
                    error: "not an hpvmsshsetup request of protocol version \(PeerProtocol.version)", host: LocalHost.name(), results: [])))
                return
            }
            writeLine(PeerProtocol.encode(answer(request)))
        }
    }

    func answer(_ request: PeerProtocol.Request) -> PeerProtocol.Response {
        var local = settings
        if let identity = request.identity { local.identity = identity }
        if let knownHosts = request.knownHosts { local.knownHosts = knownHosts }
        local.port = request.port
        local.user = request.user
        let hostName = LocalHost.name()
        var response = PeerProtocol.Response(host: hostName, results: [])
        do {
            for peer in request.peers { try SetupInput.checkHost(peer.host) }
            let tools = OpenSSHTools(home: local.home)
            if request.op == "trust" {
                response.publicKey = try tools.ensureKey(at: local.identity, comment: "hpvm-migration@\(hostName)").publicKey
            }
            for peer in request.peers {
                var result = PeerProtocol.PeerResult(host: peer.host, cell: TrustCell(state: "ok"))
                if request.op == "trust", let accepted = peer.keys {
                    result.hostKeys = try trustHostKeys(peer.host, accepted: accepted, local: local, tools: tools, request: request)
                }
                result.cell = TrustCheck.check(local.configuration(host: peer.host)).cell
                result.source = LocalHost.sourceAddress(toward: peer.host, port: local.port)
                response.results.append(result)
            }
        } catch {
            response.error = error.lines.joined(separator: " ")
        }
        return response
    }

    /// Adds `accepted` to this host's known_hosts for `host`, when this host is shown the same
    /// keys and has no other key for it; returns what it found.
    func trustHostKeys(
        _ host: String, accepted: [HostKey], local: SSHSetupSettings, tools: OpenSSHTools, request: PeerProtocol.Request
    ) throws(SetupError) -> String {
        let name = local.knownHostsName(host)
        let presented = try tools.scan(host, port: local.port)
        switch HostKeyDecision.decide(presented: presented, known: try tools.knownKeys(name, in: local.knownHosts)) {
        case .unreachable:
            return "unreachable"
        case .changed:
            return "changed"
        case .known:
            return "known"
        case .new(let keys):
            // Only keys the operator accepted, and only if this host is shown them too.
            let agreed = keys.filter(accepted.contains)
            guard !agreed.isEmpty, keys.allSatisfy({ key in !accepted.contains { $0.type == key.type && $0 != key } }) else {
                return "different"
            }
            try KnownHostsFile.append(agreed, name: name, to: local.knownHosts)
            AuditNote.record(
                registryPath: registryPath, audit: audit, host: name, keys: agreed, tools: tools,
                how: "\(request.accepted) on \(request.origin)")
            return "added"
        }
    }
}
