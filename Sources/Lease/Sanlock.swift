internal import CSanlock

#if canImport(Glibc)
internal import Glibc
#endif

/// Translates a libsanlock return value into ``LeaseError`` once, at the C boundary.
enum Sanlock {
    /// Throws for a negative `rc`; the message names `what` and says what to do.
    static func check(_ rc: Int32, _ function: StaticString, _ what: String) throws(LeaseError) {
        guard rc < 0 else { return }
        throw error(rc, function, what)
    }

    static func error(_ rc: Int32, _ function: StaticString, _ what: String, owner: UInt64? = nil) -> LeaseError {
        let name = "\(function)"
        switch rc {
        case -ECONNREFUSED:
            return LeaseError(.daemonUnreachable, "\(what): no sanlock daemon answers (start it: sanlock daemon; SANLOCK_RUN_DIR picks its folder).",
                              function: name, result: rc)
        case SANLK_ACQUIRE_IDLIVE, SANLK_ACQUIRE_OWNED, SANLK_ACQUIRE_OTHER:
            return LeaseError(.heldByOtherHost, "\(what): held by host \(owner.map(String.init) ?? "unknown"), which is alive.",
                              function: name, result: rc, ownerHostID: owner)
        case SANLK_ACQUIRE_OWNED_RETRY:
            return LeaseError(.ownerMustExpire, "\(what): held by host \(owner.map(String.init) ?? "unknown"), whose host lease has to expire first.",
                              function: name, result: rc, ownerHostID: owner)
        case SANLK_ACQUIRE_LVER:
            return LeaseError(.staleVersion, "\(what): the lease's version on disk is not the one given; another host took the lease since.",
                              function: name, result: rc)
        case SANLK_ACQUIRE_LOCKSPACE:
            return LeaseError(.notJoined, "\(what): this host has not joined the fleet's lockspace (hpvmlease -i PATH -H ID).",
                              function: name, result: rc)
        case SANLK_LEADER_MAGIC, SANLK_LEADER_LOCKSPACE, SANLK_LEADER_RESOURCE, SANLK_LEADER_VERSION, SANLK_LEADER_CHECKSUM,
             SANLK_LEADER_NUMHOSTS, SANLK_LEADER_SECTORSIZE, SANLK_ADDLS_SIZES:
            return LeaseError(.badArea, "\(what): the lease file holds no hpvm lease there (initialise it with hpvmlease -i).",
                              function: name, result: rc)
        case SANLK_ADDLS_INVALID_HOSTID:
            return LeaseError(.badInput, "\(what): the host id is outside the lockspace (1-2000).", function: name, result: rc)
        case SANLK_AIO_TIMEOUT, SANLK_LEADER_READ, SANLK_LEADER_WRITE, SANLK_DBLOCK_READ, SANLK_DBLOCK_WRITE, -EIO, -EACCES, -EPERM:
            return LeaseError(.io, "\(what): the lease file cannot be read or written (\(describe(rc))).", function: name, result: rc)
        default:
            return LeaseError(.failed, "\(what): sanlock failed (\(describe(rc))).", function: name, result: rc)
        }
    }

    /// `strerror` for an errno, or sanlock's own code.
    static func describe(_ rc: Int32) -> String {
        if rc > -200, rc < 0, let text = strerror(-rc) { return String(cString: text) }
        return "sanlock error \(rc)"
    }
}
