internal import Registry

#if canImport(Glibc)
internal import Glibc
internal import CRuntime
#endif

/// Starting QEMU: one `posix_spawn` of the program with its argument vector (no shell), inside
/// the run folder, with nothing of ours but the taps it is given.
enum QEMUProcess {
    /// Starts QEMU with `-daemonize` and waits for its first process to exit: QEMU's parent exits
    /// with 0 once the daemon has written its pidfile and its monitors and console listen.
    ///
    /// - Parameters:
    ///   - taps: descriptors the child holds as 3, 4, … (``QEMUCommandLine/tapDescriptor(_:)``).
    /// - Returns: the pid of the running QEMU (the holder of the pidfile's lock).
    /// - Throws: ``RuntimeError/Code/launchFailed`` with what QEMU printed.
    ///   - lease: the fleet lease QEMU must hold: QEMU then runs under the lease helper, which
    ///     acquires it between fork and exec and detaches as `-daemonize` would.
    static func launch(
        _ qemu: String, arguments qemuArguments: [String], in folder: RunFolder, taps: [Int32], lease: LeaseHold? = nil, helper: String = ""
    ) throws(RuntimeError) -> Int32 {
        let program = lease == nil ? qemu : helper
        let arguments = lease.map { $0.arguments(qemu: qemu, qemuArguments, folder: folder) } ?? qemuArguments
        // The taps first go above every number the child will use, so no dup2 overwrites one.
        var lifted: [Int32] = []
        defer { lifted.forEach { close($0) } }
        for tap in taps {
            let copy = fcntl(tap, F_DUPFD_CLOEXEC, 100)
            guard copy >= 0 else {
                throw RuntimeError(.io, "cannot pass a tap to QEMU: \(SystemError(function: "fcntl", number: errno)).")
            }
            lifted.append(copy)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, folder.file(.log), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        for (index, tap) in lifted.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, tap, QEMUCommandLine.tapDescriptor(index))
        }
        hpvm_runtime_spawn_addclosefrom(&actions, QEMUCommandLine.tapDescriptor(lifted.count))
        hpvm_runtime_spawn_addchdir(&actions, folder.path)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, program, &actions, &attributes, argv, environ)
        guard spawned == 0 else {
            throw RuntimeError(
                .launchFailed, "cannot start guest \(folder.guest): cannot run \(program) (\(SystemError(function: "posix_spawn", number: spawned))). Install qemu-system-x86 or set HPVM_QEMU.")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else {
                throw RuntimeError(.launchFailed, "cannot wait for QEMU: \(SystemError(function: "waitpid", number: errno)).")
            }
        }
        let exited = (status & 0x7F) == 0
        let code = exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        if let lease, code >= LeaseHold.heldByLiveHost, code <= LeaseHold.sanlockFailed {
            throw leaseRefusal(code, lease: lease, folder: folder)
        }
        guard code == 0 else {
            throw RuntimeError(.launchFailed, "QEMU refused to start guest \(folder.guest) (exit \(code))\(printed(folder))")
        }
        guard let running = folder.runningPID else {
            throw RuntimeError(.launchFailed, "QEMU started guest \(folder.guest) but no process holds its pidfile\(printed(folder))")
        }
        return running
    }

    /// The refusal for a lease helper's status: the owner's host id when another host holds it.
    static func leaseRefusal(_ code: Int32, lease: LeaseHold, folder: RunFolder) -> RuntimeError {
        let said = printed(folder)
        var owner = "another host"
        let marker = Array("held by host ".utf8)
        let bytes = Array(said.utf8)
        if bytes.count >= marker.count,
            let start = (0...(bytes.count - marker.count)).first(where: { Array(bytes[$0..<($0 + marker.count)]) == marker })
        {
            let digits = bytes[(start + marker.count)...].prefix { $0 >= 0x30 && $0 <= 0x39 }
            if !digits.isEmpty, !(digits.count == 1 && digits.first == 0x30) {
                owner = "host " + String(decoding: digits, as: UTF8.self)
            }
        }
        switch code {
        case LeaseHold.heldByLiveHost:
            return RuntimeError(
                .leaseHeld,
                "cannot start guest \(folder.guest): its lease \(lease.resource) is held by \(owner), which is alive; the guest runs there (stop it there first).")
        case LeaseHold.ownerDidNotExpire:
            return RuntimeError(
                .leaseHeld, "cannot start guest \(folder.guest): the lease of \(owner) did not expire within \(lease.waitSeconds) s\(said)")
        case LeaseHold.notJoined:
            return RuntimeError(
                .leaseHeld, "cannot start guest \(folder.guest): this host has not joined the fleet's lockspace, or its sanlock daemon does not run (hpvmlease -i)\(said)")
        default:
            return RuntimeError(.leaseHeld, "cannot start guest \(folder.guest): sanlock refused its lease \(lease.resource)\(said)")
        }
    }

    /// What QEMU printed while starting, as `: line; line` (its last 20 lines, each made safe), or `.`.
    static func printed(_ folder: RunFolder) -> String {
        let fd = open(folder.file(.log), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return "." }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 16384)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return "." }
        let lines = String(decoding: bytes[0..<n], as: UTF8.self).split(separator: "\n").suffix(20)
        return ": " + lines.map { Display.safe(String($0), limit: 300) }.joined(separator: "; ")
    }
}
