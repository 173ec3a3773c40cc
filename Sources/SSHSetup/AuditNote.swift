internal import Registry
#if canImport(Glibc)
internal import Glibc
#endif

/// Records accepted host keys in the host's registry audit log, when the host has a registry.
enum AuditNote {
    struct Change: Encodable {
        let keys: [String]
        let accepted: String
    }

    /// Appends an `ssh-host-key` row; returns a line for the operator when there is no registry
    /// to record it in, or it could not be written.
    @discardableResult
    static func record(
        registryPath: String?, audit: AuditContext, host: String, keys: [HostKey], tools: OpenSSHTools, how: String
    ) -> String? {
        guard let registryPath else { return "no registry: the acceptance (\(how)) of \(host)'s keys is not in an audit log." }
        var info = stat()
        guard stat(registryPath, &info) == 0, info.st_size > 0 else {
            return "no registry at \(registryPath): the acceptance (\(how)) of \(host)'s keys is not in an audit log."
        }
        let prints = (try? tools.fingerprints(keys, name: host)) ?? keys.map { "\($0.type) \($0.blob)" }
        let change = PeerProtocol.encode(Change(keys: prints, accepted: how))
        do {
            let store = try RegistryStore.open(at: registryPath, for: .update)
            defer { try? store.close() }
            try store.recordAuditEvent(audit, action: "ssh-host-key", object: host, change: change)
            return nil
        } catch {
            return "cannot record the acceptance of \(host)'s keys in \(registryPath): \(error.message)"
        }
    }
}
