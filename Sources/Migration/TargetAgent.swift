internal import Foundation
public import Host
public import Registry
public import Runtime

/// The target half of `hpvmmigrate`, run over SSH as `hpvmmigrate --target`: it answers the
/// source's requests on standard input with one JSON line each on standard output.
public struct TargetAgent {
    /// The registry for reading; an empty one when this host has none yet, so a check creates nothing.
    let guests: GuestRegistry
    /// Opens the registry for writing (creating it), when a phase changes it.
    let writable: () throws -> GuestRegistry
    let inventory: StorageInventory
    let network: NetworkInventory
    let failpoints: Failpoints
    let hostName: String
    /// The source's address, from `SSH_CONNECTION`, when the source reached this host over SSH.
    let peerAddress: String?
    /// How this host runs guests; nil when it cannot (its settings are wrong): online migration
    /// and `-b` are refused then.
    let runtime: GuestRuntime?
    /// The fleet's leases on this host, for the registry that holds the arriving guest.
    let leases: (GuestRegistry) -> any GuestLeases

    public init(
        guests: GuestRegistry, writable: @escaping () throws -> GuestRegistry, root: HostRoot, failpoints: Failpoints,
        hostName: String, peerAddress: String? = nil, runtime: GuestRuntime? = nil,
        leases: @escaping (GuestRegistry) -> any GuestLeases = { _ in NoLeases() }
    ) {
        self.runtime = runtime
        self.leases = leases
        self.peerAddress = peerAddress
        self.guests = guests
        self.writable = writable
        self.inventory = StorageInventory(root: root)
        self.network = NetworkInventory()
        self.failpoints = failpoints
        self.hostName = hostName
    }

    /// Serves requests until the source closes the connection or says goodbye.
    public func serve(input: any ByteSource, writeLine: (String) -> Void) {
        var greeted = false
        // Paths the last check allowed to receive a copy (-m ... -C): nothing else is ever written.
        var copyPaths: Set<String> = []
        // The arriving guest's name, from the last check: each copy's destination is claimed for it.
        var arriving = ""
        while let line = input.readLine() {
            let request: Request
            do {
                request = try ProtocolDecoder.message(line)
            } catch {
                writeLine(JSONLine.encode(errorReply("the request is not hpvmmigrate's protocol: \(error.reason)")))
                return
            }
            if case .hello(let hello) = request {
                var reply = MigrationReply(.hello)
                reply.version = MigrationProtocol.version
                reply.host = hostName
                writeLine(JSONLine.encode(reply))
                greeted = hello.version == MigrationProtocol.version
                if !greeted { return }
                continue
            }
            guard greeted else {
                writeLine(JSONLine.encode(errorReply("say hello with protocol version \(MigrationProtocol.version) first")))
                return
            }
            switch request {
            case .copy(let copy):
                guard copyPaths.contains(copy.path), copy.size >= 0 else {
                    writeLine(JSONLine.encode(errorReply("\(copy.path) was not checked as a copy target")))
                    return
                }
                guard let reply = receiveCopy(copy, guest: arriving, input: input, writeLine: writeLine), reply.kind != .error else { return }
                continue
            case .check(let arrival):
                let reply = check(arrival.guest)
                arriving = arrival.guest.name
                copyPaths = Set(
                    zip(reply.map ?? [], arrival.guest.copies).compactMap { statement, copy in
                        copy ? (try? ResourceStatement.parse(statement))?.location : nil
                    })
                writeLine(JSONLine.encode(reply))
            case .prepare(let arrival):
                let reply = prepare(arrival)
                // A prepare that finished after the source went away (it waited for this registry,
                // say): the source never saw "prepared", so it cannot have disabled its copy. Roll
                // back here.
                if reply.kind == .prepared, input.peerHasGone() {
                    try? writable().abortArrival(arrival.guest.name, migrationID: arrival.migrationID, peer: peer(arrival.sourceHost))
                    return
                }
                writeLine(JSONLine.encode(reply))
            case .commit(let settle):
                writeLine(JSONLine.encode(commit(settle)))
            case .abort(let settle):
                writeLine(JSONLine.encode(abort(settle)))
            case .incoming(let settle):
                writeLine(JSONLine.encode(incoming(settle)))
            case .arrival(let settle):
                writeLine(JSONLine.encode(arrival(settle)))
            case .boot(let settle):
                writeLine(JSONLine.encode(boot(settle)))
            case .stream(let settle):
                // The rest of this channel is the stream: nothing more is read from it here.
                stream(settle, writeLine: writeLine)
                return
            case .status(let query):
                writeLine(JSONLine.encode(status(query)))
            case .bye:
                writeLine(JSONLine.encode(MigrationReply(.bye)))
                return
            case .hello, .data, .end:
                writeLine(JSONLine.encode(errorReply("unexpected '\(request.type.rawValue)' outside a copy")))
                return
            }
        }
    }

    /// The source as this host can reach it again (for --recover here): the address its SSH
    /// connection came from, else the name it gave.
    func peer(_ sourceHost: String?) -> String { peerAddress ?? sourceHost ?? "source" }

    /// Phase 3 here: claims the destination in the registry before the first byte (so no guest here
    /// can be given it during the copy; a rollback releases it), then receives the data. Nil when
    /// the claim was refused (the answer is written already).
    func receiveCopy(_ copy: Request.Copy, guest: String, input: any ByteSource, writeLine: (String) -> Void) -> MigrationReply? {
        do {
            try writable().claimCopyDestination(copy.path, guest: guest, migrationID: copy.migrationID, peer: peerAddress ?? "source")
        } catch let error as RegistryError {
            writeLine(JSONLine.encode(errorReply(error.message)))
            return nil
        } catch {
            writeLine(JSONLine.encode(errorReply("\(error)")))
            return nil
        }
        writeLine(JSONLine.encode(MigrationReply(.copying)))
        // The claim made the file: write it where the root resolves it, never through a symlink.
        let destination = inventory.identify(copy.path)
        let reply = BackingCopy.receive(realPath: inventory.root.real(destination.resolvedPath), size: copy.size, input: input) {
            input.readLine().flatMap { try? ProtocolDecoder.request($0) }
        }
        writeLine(JSONLine.encode(reply))
        return reply
    }

    /// Phase 4 here: the checks again, under this host's own rules, then the guest made Not
    /// Runnable with its devices claimed. -F overrides only the errors the check marks forceable
    /// (never DAS, restricted, name, or a missing device or vswitch).
    func prepare(_ arrival: Request.Arrival) -> MigrationReply {
        let report = check(arrival.guest)
        if let blocking = report.errors?.first(where: { $0.forceable != true }) {
            return errorReply(blocking.detail)
        }
        return answer {
            var spec = GuestSpec(name: arrival.guest.name)
            spec.vcpus = arrival.guest.vcpus
            spec.memoryMB = arrival.guest.memoryMB
            spec.label = arrival.guest.label
            spec.osType = arrival.guest.osType
            spec.uuid = arrival.guest.uuid
            spec.resources = try (report.map ?? []).map { try ResourceStatement.parse($0) }
            try writable().prepareArrival(spec, migrationID: arrival.migrationID, peer: peer(arrival.sourceHost), returning: arrival.guest.returning)
            failpoints.hit("target-after-prepare")
            return MigrationReply(.prepared)
        }
    }

    /// Phase 6 here: the arrived guest becomes runnable; online, its QEMU continues first.
    func commit(_ settle: Request.Settle) -> MigrationReply {
        answer {
            let registry = try writable()
            let said = try LiveArrival(guests: registry, runtime: runtime, leases: leases(registry))
                .commit(settle.guestName, migrationID: settle.migrationID, peer: peer(settle.sourceHost), leaseVersion: settle.leaseVersion)
            failpoints.hit("target-after-commit")
            var reply = MigrationReply(.committed)
            reply.message = said
            return reply
        }
    }

    /// A rollback here: the arrival's waiting QEMU ends, the Not Runnable arrival goes, or the
    /// copies' claims are released.
    func abort(_ settle: Request.Settle) -> MigrationReply {
        answer {
            try LiveArrival(guests: try writable(), runtime: runtime)
                .abort(settle.guestName, migrationID: settle.migrationID, peer: peer(settle.sourceHost))
            return MigrationReply(.aborted)
        }
    }

    /// Online: the prepared arrival's QEMU starts here, paused, waiting for the stream
    /// (`target-started`).
    func incoming(_ settle: Request.Settle) -> MigrationReply {
        answer {
            guard let runtime else { throw LiveArrival.noRuntime(hostName) }
            let registry = try writable()
            let hold = try leases(registry).hold(guest: settle.guestName, incoming: true)
            let started = try runtime.startIncoming(settle.guestName, guests: registry, migrationID: settle.migrationID, lease: hold)
            try registry.record(
                settle.migrationID, guest: settle.guestName, role: .target, peer: peer(settle.sourceHost), phase: .targetStarted,
                detail: "QEMU pid \(started.pid)")
            failpoints.hit("target-after-incoming")
            var reply = MigrationReply(.listening)
            reply.message = "QEMU pid \(started.pid)"
            return reply
        }
    }

    /// Online, on the stream's own channel: standard input goes to the waiting QEMU, and this
    /// process stays until the QEMU has read all of it (or ended), so that nothing the SSH server
    /// still holds for it is lost.
    func stream(_ settle: Request.Settle, writeLine: (String) -> Void) {
        guard let runtime else {
            writeLine(JSONLine.encode(errorReply(LiveArrival.noRuntime(hostName).message)))
            return
        }
        let name = settle.guestName
        do {
            guard let arriving = try guests.guest(named: name), arriving.migrationLock == settle.migrationID else {
                writeLine(JSONLine.encode(errorReply("guest \(name) is not arriving by migration \(settle.migrationID) on \(hostName)")))
                return
            }
            try runtime.acceptIncoming(name, fd: 0)
        } catch let error as RegistryError {
            writeLine(JSONLine.encode(errorReply(error.message)))
            return
        } catch {
            writeLine(JSONLine.encode(errorReply("\(error)")))
            return
        }
        writeLine(JSONLine.encode(MigrationReply(.streaming)))
        _ = try? runtime.waitForIncoming(name, until: .now + .seconds(86_400))
    }

    /// Online: waits until the waiting QEMU has the whole stream (it stays paused).
    func arrival(_ settle: Request.Settle) -> MigrationReply {
        answer {
            guard let runtime else { throw LiveArrival.noRuntime(hostName) }
            let state = try runtime.waitForIncoming(settle.guestName, until: .now + LiveArrival.arrivalTimeout)
            guard state == "paused" || state == "postmigrate" else {
                throw RuntimeError(.monitor, "guest \(settle.guestName)'s QEMU here is \(state) after the stream, not paused")
            }
            var reply = MigrationReply(.arrived)
            reply.message = state
            return reply
        }
    }

    /// `-b`: the committed guest starts here, under every rule of a start.
    func boot(_ settle: Request.Settle) -> MigrationReply {
        answer {
            guard let runtime else { throw LiveArrival.noRuntime(hostName) }
            let registry = try writable()
            let started = try runtime.start(settle.guestName, guests: registry, lease: try leases(registry).hold(guest: settle.guestName, incoming: false))
            var reply = MigrationReply(.booted)
            reply.message = "QEMU pid \(started.pid)"
            return reply
        }
    }

    /// How far a migration got here, from the journal; a migration whose source process still runs
    /// here is its own business, and the answer says so.
    func status(_ query: Request.Status) -> MigrationReply {
        answer {
            var reply = MigrationReply(.status)
            let journal = try guests.journal(migrationID: query.migrationID)
            reply.phase = journal.last?.phase ?? .noRecord
            reply.leaseVersion = LiveArrival.releasedLeaseVersion(journal)
            if let source = journal.first(where: { $0.role == .source }),
                let holder = MigrationLock.holder(root: inventory.root, guest: source.guestName)
            {
                reply.message = "running: \(holder)"
            }
            return reply
        }
    }

    /// The reply `body` makes, or an `error` reply with the message of what it threw.
    func answer(_ body: () throws -> MigrationReply) -> MigrationReply {
        do {
            return try body()
        } catch let error as RegistryError {
            return errorReply(error.message)
        } catch let error as RuntimeError {
            return errorReply(error.message)
        } catch {
            return errorReply("\(error)")
        }
    }

    func errorReply(_ message: String) -> MigrationReply {
        var reply = MigrationReply(.error)
        reply.message = message
        return reply
    }

    /// Every check of DESIGN.md §5 phase 2, and the translation map.
    func check(_ guest: GuestPackage) -> MigrationReply {
        var errors: [Finding] = []
        var warnings: [Finding] = []
        var map: [String] = []
        lazy var byWWID = inventory.scan().pathsByWWID()
        let bridges = network.bridges()
        // The name is free, or it is the Not Runnable copy this guest left here (the return trip).
        switch Result(catching: { () throws(RegistryError) in try guests.returnRefusal(guest.name, returning: guest.returning) }) {
        case .success(nil):
            break
        case .success(let why?):
            errors.append(Finding(kind: "name", message: "Target VM Host error - guest name is in use.", detail: "\(why) on \(hostName)"))
        case .failure(let error):
            errors.append(Finding(kind: "name", message: "Target VM Host error - guest name is in use.", detail: "the registry could not be checked: \(error.message)"))
        }
        if guest.online == true {
            if let why = runtime.map({ $0.arrivalRefusal() }) ?? LiveArrival.noRuntime(hostName).message {
                errors.append(Finding(kind: "runtime", message: "Target VM Host error - cannot run the guest.", detail: why))
            }
        }
        if let memory = network.memoryMB(), memory < guest.memoryMB {
            errors.append(
                Finding(kind: "resources", message: "Target VM Host error - not enough memory.", detail: "the guest needs \(guest.memoryMB) MB, \(hostName) has \(memory) MB", forceable: true))
        }
        for (index, resource) in guest.resources.enumerated() {
            guard var statement = try? ResourceStatement.parse(resource.statement) else {
                errors.append(Finding(kind: "storage", message: "Target VM Host error - bad resource.", detail: resource.statement))
                map.append(resource.statement)
                continue
            }
            if let override = guest.overrides[safe: index] ?? nil, let given = try? ResourceStatement.parse(override) {
                statement.location = given.location
                statement.storage = given.storage
            }
            if statement.deviceType == .network {
                let name = statement.location
                if let subnets = bridges[name] {
                    let wanted = Set(guest.networks[name] ?? [])
                    if !wanted.isSubset(of: Set(subnets)) {
                        errors.append(
                            Finding(kind: "vswitch", message: "Target VM Host error - vswitch validation failed.",
                                    detail: "vswitch \(name) \(subnets.isEmpty ? "has no IPv4 subnet" : "is on \(subnets.joined(separator: ", "))") here, \(wanted.sorted().joined(separator: ", ")) on the source", forceable: true))
                    }
                } else {
                    errors.append(
                        Finding(kind: "vswitch", message: "Target VM Host error - vswitch validation failed.", detail: "there is no vswitch (bridge) \(name) on \(hostName)"))
                }
                map.append(statement.description)
                continue
            }
            let copied = guest.copies[safe: index] ?? false
            if copied {
                // The data is copied: the target device is the one -m names, not the source's LUN.
                let identity = inventory.identify(statement.location)
                let folder = String(statement.location[..<(statement.location.lastIndex(of: "/") ?? statement.location.startIndex)])
                if !identity.exists && (statement.storage != "file" || !inventory.identify(folder.isEmpty ? "/" : folder).exists) {
                    errors.append(
                        Finding(kind: "storage", message: "Target VM Host error - Device does not exist.",
                                detail: "\(statement.location), the copy's destination, does not exist on \(hostName)"))
                } else if identity.exists && identity.kind != .file && identity.kind != .disk && identity.kind != .logicalVolume {
                    errors.append(
                        Finding(kind: "storage", message: "Target VM Host error - Device does not exist.",
                                detail: "\(statement.location) on \(hostName) is \(identity.kind.rawValue), not a file, disk or volume to copy into"))
                }
                for obstacle in Self.copyObstacles(guests, statement.location, guest: guest.name) {
                    errors.append(Finding(kind: "restricted", message: "Target VM Host error - device is not available.", detail: obstacle))
                }
                map.append(statement.description)
                continue
            }
            if resource.kind == "DISK", let transport = resource.transport.flatMap(Transport.init(rawValue:)), !transport.isSAN {
                errors.append(
                    Finding(kind: "das", message: "Target VM Host error - direct-attached storage.",
                            detail: "\(statement.location) is \(Self.name(of: transport)) storage on the source, which \(hostName) cannot reach; copy it with -m ... -C or move the guest to SAN storage"))
            }
            let identity = inventory.identify(statement.location)
            if let raw = resource.wwid, let wwid = WWID(raw) {
                let paths = byWWID[wwid] ?? []
                let home = stableName(wwid, paths: paths)
                if identity.exists && identity.wwid == wwid {
                    // the same LUN at the same path
                } else if let home, guest.translate {
                    warnings.append(Finding(kind: "storage", message: "", detail: "\(statement.location) is \(home) on \(hostName) (WWID \(wwid))"))
                    statement.location = home
                } else if identity.exists {
                    errors.append(
                        Finding(kind: "storage", message: "Device WWID does not match.",
                                detail: "\(statement.location) is WWID \(identity.wwid?.description ?? "unknown") on \(hostName), the guest's LUN is \(wwid)"
                                    + (home.map { "; it is \($0) there (use -t to translate)" } ?? ""), forceable: true))
                } else if let home {
                    errors.append(
                        Finding(kind: "storage", message: "Target VM Host error - Device does not exist.",
                                detail: "\(statement.location) does not exist on \(hostName); the LUN (WWID \(wwid)) is \(home) there (use -t to translate)"))
                } else if !paths.isEmpty {
                    errors.append(
                        Finding(kind: "storage", message: "Target VM Host error - Device does not exist.",
                                detail: "\(statement.location) does not exist on \(hostName); the LUN (WWID \(wwid)) has no stable name there (no registry entry, /dev/mapper alias or /dev/disk/by-id/wwn- link, only \(paths.prefix(4).joined(separator: ", "))): name it with -m"))
                } else {
                    errors.append(
                        Finding(kind: "storage", message: "Target VM Host error - Device does not exist.",
                                detail: "no device on \(hostName) has WWID \(wwid) (\(statement.location) on the source)"))
                }
            } else if !identity.exists {
                errors.append(
                    Finding(kind: "storage", message: "Target VM Host error - Device does not exist.", detail: "\(statement.location) does not exist on \(hostName)"))
            }
            for obstacle in Self.obstacles(guests, statement, guest: guest.name) {
                errors.append(Finding(kind: "restricted", message: "Target VM Host error - device is not available.", detail: obstacle))
            }
            map.append(statement.description)
        }
        var reply = MigrationReply(.report)
        reply.errors = errors
        reply.warnings = warnings
        reply.map = map
        reply.host = hostName
        return reply
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }

}

extension TargetAgent {
    /// The name `-t` gives the LUN `wwid` here, from the paths that have it: the name this host's
    /// registry already uses for it, else its multipath alias `/dev/mapper/<alias>`, else
    /// `/dev/disk/by-id/wwn-…`, else another persistent link (`/dev/rdisk/diskN`). Never a kernel
    /// name (`/dev/dm-N`, `/dev/sdX`, `/dev/block/M:N`), and for a multipath LUN never one of its
    /// paths: every candidate must be the whole LUN (the map, when there is one). Nil when no
    /// name qualifies.
    func stableName(_ wwid: WWID, paths: [String]) -> String? {
        let identities = paths.map { ($0, inventory.identify($0)) }
        // The whole LUN: its multipath map when it has one, else its single device.
        let map = identities.first { $0.1.transport == .multipath && $0.1.partitionNumber == nil }?.1
        let devices = Set(identities.filter { $0.1.partitionNumber == nil }.map(\.1.resolvedPath))
        guard map != nil || devices.count == 1 else { return nil }
        let whole = map?.resolvedPath ?? devices.first!
        func isWhole(_ path: String) -> Bool {
            let identity = inventory.identify(path)
            return identity.exists && identity.resolvedPath == whole && identity.partitionNumber == nil
        }
        func isKernelName(_ path: String) -> Bool {
            path.hasPrefix("/dev/block/") || path.hasPrefix("/dev/dm-") || path.hasPrefix("/dev/sd") || path.hasPrefix("/dev/nvme")
                || path.hasPrefix("/dev/vd") || path.hasPrefix("/dev/hd")
        }
        let registered = ((try? guests.registeredNames(wwid: wwid)) ?? []).filter { $0.hasPrefix("/") && isWhole($0) }
        if let name = registered.first { return name }
        let candidates = paths.filter(isWhole)
        if let alias = candidates.first(where: { $0.hasPrefix("/dev/mapper/") }) { return alias }
        if let byID = candidates.first(where: { $0.hasPrefix("/dev/disk/by-id/wwn-") }) { return byID }
        return candidates.first { !isKernelName($0) && !$0.hasPrefix("/dev/disk/by-path/") }
    }

    /// A transport as people name it.
    static func name(of transport: Transport) -> String {
        switch transport {
        case .fibreChannel: "Fibre Channel"
        case .iscsi: "iSCSI"
        case .sas: "SAS"
        case .ata: "ATA"
        case .virtio: "virtio"
        case .nvme: "PCIe NVMe"
        case .nvmeFabric: "NVMe over fabrics"
        case .usb: "USB"
        case .multipath: "multipath"
        case .logicalVolume: "logical volume"
        case .unknown: "direct-attached (its transport is not one this release identifies)"
        }
    }

    /// What the rules say about giving the arriving guest a statement's storage here: the refusal
    /// `hpvmcreate` (and the prepare phase) would give, asked the same way. A registry that cannot
    /// be read is an obstacle too: the check fails closed.
    static func obstacles(_ guests: GuestRegistry, _ statement: ResourceStatement, guest: String) -> [String] {
        do {
            return try guests.obstacles(for: statement, guest: guest)
        } catch {
            return ["the registry could not be checked: \(error.message)"]
        }
    }

    /// What the rules say about a copy (`-m … -C`) writing `location` here.
    static func copyObstacles(_ guests: GuestRegistry, _ location: String, guest: String) -> [String] {
        do {
            return try guests.copyObstacles(for: location, guest: guest)
        } catch {
            return ["the registry could not be checked: \(error.message)"]
        }
    }
}
