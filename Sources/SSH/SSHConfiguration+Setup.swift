/// The `hpvmsshsetup` command line that fixes a failed connection, for the messages of the
/// commands that connect (hpvmmigrate(8) names it; hpvmsshsetup(8) describes it).
extension SSHConfiguration {
    /// `hpvmsshsetup` with the options that make it set up exactly this configuration: `-i` when
    /// the key is not the default search, `--known-hosts`, `--port` and `--user` when they are not
    /// the defaults, then the host.
    public var setupCommand: String {
        var words = ["hpvmsshsetup"]
        let home = self.home ?? "/root"
        if identities != ["id_ed25519", "id_ecdsa", "id_rsa"].map({ "\(home)/.ssh/\($0)" }), let key = identities.first {
            words += ["-i", Self.quote(key)]
        }
        if knownHosts != "\(home)/.ssh/known_hosts" { words += ["--known-hosts", Self.quote(knownHosts)] }
        if port != 22 { words += ["--port", String(port)] }
        if user != "root" { words += ["--user", Self.quote(user)] }
        return (words + [Self.quote(host)]).joined(separator: " ")
    }

    /// The line that tells the operator how to fix `error`, or nil when hpvmsshsetup cannot.
    public func setupAdvice(for error: SSHError) -> String? {
        switch error.code {
        case .hostKeyUnknown, .authentication, .noKey:
            return "Set up SSH for migration with: \(setupCommand)"
        case .rsaRefused:
            let home = self.home ?? "/root"
            let key = identities.first.map { $0.hasSuffix("id_rsa") ? String($0.dropLast(6)) + "id_ed25519" : $0 + "_ed25519" }
                ?? "\(home)/.ssh/id_ed25519"
            var fixed = self
            fixed.identities = [key]
            return "Make and install an ed25519 key with: \(fixed.setupCommand)"
                + (identities.count == 1 ? " (then point HPVM_SSH_IDENTITY or --identity at \(key))" : "")
        case .hostKeyMismatch:
            return "hpvmsshsetup does not re-trust a changed key: once you know why it changed, remove the old one (ssh-keygen -R '\(knownHostsName)' -f \(knownHosts)), then run \(setupCommand)"
        default:
            return nil
        }
    }

    /// `value` as one POSIX shell word: unchanged when harmless, otherwise in single quotes.
    static func quote(_ value: String) -> String {
        let harmless = !value.isEmpty && value.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                || "/_.,:=+-@%[]".unicodeScalars.contains(scalar))
        }
        if harmless && !value.hasPrefix("-") { return value }
        return "'" + value.replacingAll("'", with: "'\\''") + "'"
    }
}

extension String {
    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for character in self { if character == target { out += replacement } else { out.append(character) } }
        return out
    }
}
