public import SSH

/// A line-oriented connection to the target half.
public protocol RemoteLink: AnyObject {
    func send(_ line: String) throws(MigrationError)
    /// Raw bytes after a `data` header line.
    func sendBytes(_ bytes: UnsafeRawBufferPointer) throws(MigrationError)
    func receive() throws(MigrationError) -> String?
    func close()
}

/// Opens the connection to the target half; SSH in production, anything that speaks lines in tests.
public protocol RemoteConnector {
    func connect(host: String) throws(MigrationError) -> any RemoteLink
}

/// One SSH connection and one exec channel running `hpvmmigrate --target` on the target.
public struct SSHConnector: RemoteConnector {
    public let configuration: (String) throws(SSHError) -> SSHConfiguration
    /// The path of `hpvmmigrate` on the target (`HPVM_REMOTE_COMMAND`).
    public let remoteCommand: String

    public init(remoteCommand: String, configuration: @escaping (String) throws(SSHError) -> SSHConfiguration) {
        self.remoteCommand = remoteCommand
        self.configuration = configuration
    }

    public func connect(host: String) throws(MigrationError) -> any RemoteLink {
        var settings: SSHConfiguration?
        do {
            settings = try configuration(host)
            let session = try SSHSession.connect(settings!)
            // The command line holds only the configured path and a fixed option: no value from the
            // guest or the registry ever reaches the remote shell.
            let channel = try session.exec(ShellWord.quote(remoteCommand) + " --target")
            return SSHLink(channel: channel)
        } catch {
            throw MigrationError.ssh(error, advice: settings?.setupAdvice(for: error))
        }
    }
}

final class SSHLink: RemoteLink {
    let channel: SSHChannel

    init(channel: SSHChannel) { self.channel = channel }

    func send(_ line: String) throws(MigrationError) {
        do { try channel.writeLine(line) } catch { throw MigrationError.ssh(error) }
    }

    func receive() throws(MigrationError) -> String? {
        do { return try channel.readLine() } catch { throw MigrationError.ssh(error) }
    }

    func sendBytes(_ bytes: UnsafeRawBufferPointer) throws(MigrationError) {
        do { try channel.write(bytes) } catch { throw MigrationError.ssh(error) }
    }

    func close() {
        try? channel.sendEOF()
        _ = try? channel.close()
        channel.session.disconnect()
    }
}

enum ShellWord {
    static func quote(_ value: String) -> String {
        var quoted = "'"
        for character in value {
            if character == "'" { quoted += "'\\''" } else { quoted.append(character) }
        }
        return quoted + "'"
    }
}
