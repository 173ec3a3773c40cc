/// A guest resource in HPVM's statement form:
/// `disk|dvd:scsi|avio_stor:[bus,device,target]:disk|lv|file|null:path` or
/// `network:lan|avio_lan:[bus,device,mac]:vswitch:name`.
public struct ResourceStatement: Sendable, Equatable, CustomStringConvertible {
    public enum DeviceType: String, Sendable, CaseIterable {
        case disk, dvd, network
    }

    public var deviceType: DeviceType
    /// `scsi` or `avio_stor` for storage, `lan` or `avio_lan` for networks.
    public var adapter: String
    public var bus: Int?
    public var device: Int?
    /// The target for storage.
    public var target: Int?
    /// The MAC address for networks, as 12 lower-case hex digits.
    public var mac: String?
    /// `disk`, `lv`, `file` or `null` for storage; `vswitch` for networks.
    public var storage: String
    /// The host path, or the vswitch name.
    public var location: String

    public init(
        deviceType: DeviceType, adapter: String, bus: Int? = nil, device: Int? = nil, target: Int? = nil,
        mac: String? = nil, storage: String, location: String
    ) {
        self.deviceType = deviceType
        self.adapter = adapter
        self.bus = bus
        self.device = device
        self.target = target
        self.mac = mac
        self.storage = storage
        self.location = location
    }

    /// Whether the guest address is given (or assigned).
    public var hasAddress: Bool { bus != nil && device != nil }

    /// The statement as HPVM prints it (`hpvmstatus -d`).
    public var description: String {
        var address = ""
        if let bus, let device {
            if deviceType == .network {
                address = "\(bus),\(device)" + (mac.map { ",0x" + $0.uppercased() } ?? "")
            } else {
                address = "\(bus),\(device),\(target ?? 0)"
            }
        }
        return "\(deviceType.rawValue):\(adapter):\(address):\(storage):\(location)"
    }

    /// The address ranges of each adapter: bus, device (slot) and target.
    public static func ranges(adapter: String) -> (bus: ClosedRange<Int>, device: ClosedRange<Int>, target: ClosedRange<Int>) {
        switch adapter {
        case "scsi": return (0...6, 0...7, 0...14)  // target 15 is reserved
        case "avio_stor": return (0...7, 0...7, 0...127)
        default: return (0...7, 0...7, 0...0)  // lan, avio_lan: one function per slot
        }
    }

    /// Parses a statement.
    ///
    /// - Throws: a usage ``RegistryError`` that names the statement and the bad field.
    public static func parse(_ text: String) throws(RegistryError) -> ResourceStatement {
        let shown = "resource '\(Display.safe(text))'"
        func fail(_ why: String) -> RegistryError { RegistryError(.badSpec, "\(shown): \(why)") }
        guard text.utf8.count <= 2048 else { throw RegistryError(.badSpec, "resource of \(text.utf8.count) bytes is too long.") }
        let fields = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 5 else {
            throw fail(
                "expected 5 fields, devicetype:adaptertype:[bus,device,target]:storage:location (network:avio_lan:[bus,device,mac]:vswitch:name), got \(fields.count)")
        }
        guard let deviceType = DeviceType(rawValue: fields[0]) else {
            throw fail("unknown device type '\(Display.safe(fields[0]))' (expected disk, dvd or network)")
        }
        let adapter = fields[1]
        let storage = fields[3]
        switch deviceType {
        case .disk, .dvd:
            guard adapter == "scsi" || adapter == "avio_stor" else {
                throw fail("unknown adapter type '\(Display.safe(adapter))' for \(deviceType.rawValue) (expected scsi or avio_stor)")
            }
            let allowed = deviceType == .disk ? ["disk", "lv", "file"] : ["disk", "file", "null"]
            guard allowed.contains(storage) else {
                throw fail("storage type '\(Display.safe(storage))' is not allowed for \(deviceType.rawValue) (expected \(allowed.joined(separator: ", ")))")
            }
        case .network:
            guard adapter == "lan" || adapter == "avio_lan" else {
                throw fail("unknown adapter type '\(Display.safe(adapter))' for network (expected lan or avio_lan)")
            }
            guard storage == "vswitch" else { throw fail("a network is backed by 'vswitch', not '\(Display.safe(storage))'") }
        }
        let location: String
        do {
            location = try NameRules.entryName(fields[4])
        } catch {
            throw fail(error.message)
        }
        if deviceType == .network && location.hasPrefix("/") { throw fail("a vswitch is named, not a path") }
        if deviceType != .network && !location.hasPrefix("/") { throw fail("the backing store must be an absolute path") }
        var statement = ResourceStatement(deviceType: deviceType, adapter: adapter, storage: storage, location: location)
        if !fields[2].isEmpty {
            let parts = fields[2].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let ranges = ranges(adapter: adapter)
            func number(_ field: String, _ name: String, _ range: ClosedRange<Int>) throws(RegistryError) -> Int {
                guard !field.isEmpty, field.count <= 4, field.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(field)
                else { throw fail("\(name) '\(Display.safe(field))' is not a number") }
                guard range.contains(value) else {
                    throw fail("\(name) \(value) is out of range for \(adapter) (\(range.lowerBound)-\(range.upperBound))")
                }
                return value
            }
            if deviceType == .network {
                guard parts.count == 2 || parts.count == 3 else { throw fail("expected bus,device or bus,device,mac") }
                statement.bus = try number(parts[0], "bus", ranges.bus)
                statement.device = try number(parts[1], "device", ranges.device)
                if parts.count == 3 { statement.mac = try parseMAC(parts[2], fail: fail) }
            } else {
                guard parts.count == 3 else { throw fail("expected bus,device,target") }
                statement.bus = try number(parts[0], "bus", ranges.bus)
                statement.device = try number(parts[1], "device", ranges.device)
                statement.target = try number(parts[2], "target", ranges.target)
            }
        }
        return statement
    }

    /// A MAC address as `0x020000000001`, `02:00:…` is impossible here (`:` separates fields),
    /// or `02-00-00-00-00-01`; multicast and all-zero addresses are refused.
    static func parseMAC(_ text: String, fail: (String) -> RegistryError) throws(RegistryError) -> String {
        var hex = text.lowercased()
        if hex.hasPrefix("0x") { hex.removeFirst(2) }
        hex = hex.filter { $0 != "-" && $0 != "." }
        guard hex.count == 12, hex.allSatisfy(\.isHexDigit) else {
            throw fail("MAC address '\(Display.safe(text))' is not 12 hex digits (0x02AABBCCDDEE)")
        }
        guard let first = UInt8(hex.prefix(2), radix: 16), first & 1 == 0, hex != "000000000000" else {
            throw fail("MAC address '\(Display.safe(text))' is a multicast or zero address")
        }
        return hex
    }
}
