import Foundation
import HPVMTestSupport

/// SplitMix64: a small deterministic generator, so a seed replays a walk exactly.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The seed of walk `index` after the first, derived from the run's seed.
    static func derive(_ seed: UInt64, _ index: Int) -> UInt64 {
        var generator = SplitMix64(seed: seed ^ (UInt64(index) &* 0xD6E8_FEB8_6659_FD93))
        return generator.next()
    }
}

/// A host root for one walk: SAN disks with two paths, multipath maps and their kpartx partitions,
/// partitions, LVs, an md array, the host's own mounts and swap, disk images with a hard link, a
/// symlinked folder, a private folder and a bind mount of it. Only built here; judged by the oracle.
final class WalkHost {
    /// What kind of backing store a path is, for choosing a plausible `disk|lv|file` statement.
    enum Kind: String {
        case disk, lv, file, folder
    }

    let builder: HostBuilder
    /// Every path that names something on this host, with its kind.
    private(set) var paths: [(path: String, kind: Kind)] = []
    var root: String { builder.path }

    init(random: inout SplitMix64) throws {
        builder = try HostBuilder.temporary(prefix: "hpvm-promise")
        do {
            try build(random: &random)
        } catch {
            builder.remove()
            throw error
        }
    }

    func remove() { builder.remove() }

    private func add(_ path: String, _ kind: Kind) { paths.append((path, kind)) }

    private func build(random: inout SplitMix64) throws {
        let b = builder
        let layout = try HostBuilder.make(
            at: b, sanDisks: 2, aliasedSANDisks: 4, multipathMaps: 2, dasDisks: 1,
            wwidSeed: Int(random.next() % 1000) * 16)
        for disk in layout.sanDisks + layout.aliasedDisks + layout.multipathMaps + layout.dasDisks {
            for path in disk.paths { add(path, .disk) }
            if let wwid = disk.wwid, let name = disk.names.first {
                let byID = "/dev/disk/by-id/wwn-0x" + wwid.replacingOccurrences(of: "naa.", with: "")
                try b.link(byID, to: "/dev/\(name)")
                add(byID, .disk)
            }
        }
        // Roles for the aliased disks change from walk to walk.
        let aliased = layout.aliasedDisks.shuffled(using: &random)
        let boot = layout.dasDisks[0].names[0]

        // The host's own: / on the boot disk, swap beside it, /hpvm on an LV over a SAN partition.
        let root1 = try b.partition(of: boot, number: 1)
        let swap2 = try b.partition(of: boot, number: 2)
        let imagePV = try b.partition(of: aliased[0].names[0], number: 1)
        let images = try b.logicalVolume(vg: "vgimg", lv: "images", on: [imagePV])
        try b.link("/dev/vgimg/images", to: "/dev/\(images)")
        add("/dev/\(root1)", .disk)
        add("/dev/\(swap2)", .disk)
        add("/dev/\(imagePV)", .disk)
        add("/dev/mapper/vgimg-images", .lv)
        add("/dev/vgimg/images", .lv)
        add("/dev/\(images)", .lv)
        try b.mount(root1, at: "/")
        try b.swap(swap2)
        try b.mount(images, at: "/hpvm")

        // Partitions of a plain SAN disk; an LV on one of them (nothing mounts it).
        let san = layout.sanDisks[0].names[0]
        let p1 = try b.partition(of: san, number: 1)
        let p2 = try b.partition(of: san, number: 2)
        let data = try b.logicalVolume(vg: "vg0", lv: "data", on: [p2])
        try b.link("/dev/vg0/data", to: "/dev/\(data)")
        for p in [p1, p2] { add("/dev/\(p)", .disk) }
        for p in ["/dev/mapper/vg0-data", "/dev/vg0/data", "/dev/\(data)"] { add(p, .lv) }

        // An LV over two whole disks.
        let big = try b.logicalVolume(vg: "vg1", lv: "big", on: [aliased[1].names[0], aliased[2].names[1]])
        for p in ["/dev/mapper/vg1-big", "/dev/\(big)"] { add(p, .lv) }

        // An md array over a partition and a whole disk.
        let second = layout.sanDisks[1].names[0]
        let q1 = try b.partition(of: second, number: 1)
        add("/dev/\(q1)", .disk)
        let md = try b.mdArray(name: "md0", members: [q1, aliased[3].names[1]])
        add("/dev/\(md)", .disk)

        // kpartx partitions of the first multipath map.
        let map = layout.multipathMaps[0]
        if let wwid = map.wwid {
            for number in 1...2 {
                let dm = try b.kpartxPartition(ofMap: "mpatha", dm: map.names[0], wwid: wwid, number: number)
                add("/dev/mapper/mpatha-part\(number)", .disk)
                add("/dev/\(dm)", .disk)
            }
        }

        // Files: images, a hard link, a symlinked folder, a private folder with a nested
        // tmpfs, a bind mount of it, and hard links that reach its files from elsewhere.
        try b.folders("/hpvm/disks")
        for name in ["a", "b", "c"] {
            try b.file("/hpvm/disks/\(name).img", contents: name)
            add("/hpvm/disks/\(name).img", .file)
            add("/vm/\(name).img", .file)
        }
        try b.hardLink("/hpvm/disks/a-hard.img", to: "/hpvm/disks/a.img")
        add("/hpvm/disks/a-hard.img", .file)
        add("/vm/a-hard.img", .file)
        try b.link("/vm", to: "/hpvm/disks")
        try b.file("/hpvm/private/secret.img", contents: "s")
        try b.file("/hpvm/private/other.img", contents: "o")
        try b.mountVirtual(at: "/hpvm/private/scratch")
        try b.file("/hpvm/private/scratch/tmp.img", contents: "t")
        try b.bindMount(images, root: "/private", at: "/srv/private")
        try b.hardLink("/srv/private/secret.img", to: "/hpvm/private/secret.img")
        try b.hardLink("/srv/private/other.img", to: "/hpvm/private/other.img")
        try b.hardLink("/hpvm/disks/p-hard.img", to: "/hpvm/private/other.img")
        try b.link("/hpvm/disks/priv", to: "/hpvm/private")
        try b.file("/iso/install.iso", contents: "iso")
        for path in [
            "/hpvm/private/secret.img", "/hpvm/private/other.img", "/hpvm/private/scratch/tmp.img",
            "/srv/private/secret.img", "/srv/private/other.img", "/hpvm/disks/p-hard.img", "/vm/p-hard.img",
            "/hpvm/disks/priv/secret.img", "/vm/priv/other.img", "/iso/install.iso",
        ] {
            add(path, .file)
        }
        for folder in ["/hpvm/private", "/hpvm/disks", "/srv/private", "/vm", "/hpvm/disks/priv", "/hpvm", "/iso",
                       "/hpvm/private/scratch"] {
            add(folder, .folder)
        }
        try b.bridge("vsw1")
    }

    func randomPath(_ random: inout SplitMix64, kind: Kind? = nil) -> String {
        let pool = kind.map { k in paths.filter { $0.kind == k } } ?? paths
        return pool.randomElement(using: &random)?.path ?? "/dev/sda"
    }

    func kind(of path: String) -> Kind? { paths.first { $0.path == path }?.kind }
}
