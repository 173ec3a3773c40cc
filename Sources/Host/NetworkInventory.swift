#if canImport(Glibc)
internal import Glibc
#endif

/// The live network stack of the host (or network namespace) this process runs in: Linux bridges
/// (vswitches) and the IPv4 subnets on them.
public struct NetworkInventory: Sendable {
    public init() {}

    /// Every bridge with its IPv4 subnets (`203.0.113.0/24`), sorted.
    public func bridges() -> [String: [String]] {
        var result: [String: [String]] = [:]
        for name in FileSystem.list("/sys/class/net") where FileSystem.kind("/sys/class/net/\(name)/bridge") == .directory {
            result[name] = []
        }
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return result }
        defer { freeifaddrs(list) }
        var current = list
        while let entry = current {
            current = entry.pointee.ifa_next
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                let netmask = entry.pointee.ifa_netmask
            else { continue }
            let name = String(cString: entry.pointee.ifa_name)
            guard result[name] != nil else { continue }
            let ip = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            let mask = netmask.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            let prefix = mask.nonzeroBitCount
            let network = ip & mask
            let text = [24, 16, 8, 0].map { String((network >> UInt32($0)) & 0xFF) }.joined(separator: ".") + "/\(prefix)"
            result[name, default: []].append(text)
        }
        for key in result.keys { result[key] = Array(Set(result[key] ?? [])).sorted() }
        return result
    }

    /// The host's memory in megabytes, from `/proc/meminfo`.
    public func memoryMB() -> Int? {
        guard let text = FileSystem.read("/proc/meminfo", limit: 8192) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            let digits = line.filter(\.isNumber)
            return Int(digits).map { $0 / 1024 }
        }
        return nil
    }
}
