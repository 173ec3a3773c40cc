/// The demo host of the README: a small but complete VM host.
public enum DemoHost {
    /// Builds the demo host at `folder` and returns a description of what is in it.
    ///
    /// The host boots from a virtio disk `vda` (`vda1` on `/boot`, `vda2` an LVM physical volume
    /// holding `vg00-root` on `/` and `vg00-swap`), and sees four Fibre Channel LUNs as
    /// `/dev/rdisk/disk1`–`disk4`, one LUN by two paths (`/dev/sdf`, `/dev/sdg`), two multipath
    /// maps `/dev/mapper/mpatha` and `mpathb`, one NVMe-over-FC namespace, one SAS disk, the
    /// bridges `vsw1` and `vsw2`, an ISO image and a folder for disk images.
    public static func build(at folder: String) throws -> String {
        let builder = try HostBuilder(at: folder)
        let vda = try builder.virtioDisk(name: "vda")
        let boot = try builder.partition(of: vda, number: 1)
        let pv = try builder.partition(of: vda, number: 2)
        let root = try builder.logicalVolume(vg: "vg00", lv: "root", on: [pv])
        let swap = try builder.logicalVolume(vg: "vg00", lv: "swap", on: [pv])
        try builder.mount(root, at: "/")
        try builder.mount(boot, at: "/boot")
        try builder.swap(swap)
        try builder.mountVirtual(at: "/hpvm/scratch")
        let layout = try HostBuilder.make(
            at: builder, sanDisks: 4, aliasedSANDisks: 1, multipathMaps: 2, nvmeDisks: 1, dasDisks: 1)
        try builder.bridge("vsw1")
        try builder.bridge("vsw2")
        try builder.file("/var/opt/hpvm/ISO-images/hpux.iso", contents: "ISO")
        try builder.folders("/hpvm/disks")
        try builder.folders("/hpvm/private")
        var lines = ["demo host root: \(folder)"]
        lines.append("  boot disk: /dev/vda (vda1 on /boot, vda2 = LVM vg00: root on /, swap)")
        for disk in layout.sanDisks { lines.append("  SAN disk:  \(disk.path) -> \(disk.paths[1])  \(disk.wwid ?? "")") }
        for disk in layout.aliasedDisks { lines.append("  SAN LUN by two paths: \(disk.paths.joined(separator: ", "))  \(disk.wwid ?? "")") }
        for disk in layout.multipathMaps { lines.append("  multipath: \(disk.path) over \(disk.paths[2]), \(disk.paths[3])  \(disk.wwid ?? "")") }
        for disk in layout.nvmeDisks { lines.append("  NVMe/FC:   \(disk.path)  \(disk.wwid ?? "")") }
        for disk in layout.dasDisks { lines.append("  SAS (DAS): \(disk.path)  \(disk.wwid ?? "")") }
        lines.append("  vswitches: vsw1, vsw2; files: /var/opt/hpvm/ISO-images/hpux.iso; folders: /hpvm/disks, /hpvm/private")
        return lines.joined(separator: "\n")
    }
}
