#if canImport(Glibc)
internal import Glibc
internal import CRuntime
#endif

/// A guest's network card on the host: a tap interface on the vswitch's Linux bridge, made by
/// hpvm and handed to QEMU as a descriptor (`-netdev tap,fd=`). The interface lives as long as
/// QEMU holds it: it goes away with the guest, whatever stops it.
enum Tap {
    /// Makes the tap `name`, puts it on `bridge` and brings it up.
    ///
    /// - Returns: the tap's descriptor (close-on-exec).
    static func open(name: String, bridge: String, guest: String) throws(RuntimeError) -> Int32 {
        var stage: Int32 = 0
        let fd = hpvm_runtime_tap_open(name, bridge, &stage)
        guard fd < 0 else { return fd }
        let step: String
        switch stage {
        case 1: step = "open /dev/net/tun"
        case 2: step = "make tap \(name)"
        case 3: step = "open a control socket"
        case 4: step = "put tap \(name) on vswitch \(bridge)"
        default: step = "bring tap \(name) up"
        }
        let error = SystemError(function: stage == 4 ? "ioctl(SIOCBRADDIF)" : "tap", number: -fd)
        throw RuntimeError(.network, "cannot start guest \(guest): cannot \(step) (\(error)). Is \(bridge) a Linux bridge on this host?")
    }
}
