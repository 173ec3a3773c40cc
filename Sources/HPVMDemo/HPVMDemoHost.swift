import ArgumentParser
import HPVMTestSupport

/// `hpvm-demo-host`: builds a demo host root for trying the hpvm commands without real storage.
@main
struct HPVMDemoHost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hpvm-demo-host",
        abstract: "Build a demo VM host root (SAN disks, multipath, NVMe, DAS, LVM, bridges) in a folder.",
        discussion: "Point HPVM_ROOT at the folder to run hpvmdevmgmt and hpvmhostrdev against it."
    )

    @Option(help: "Instead of the demo host, build a bare host with this many Fibre Channel LUNs (/dev/rdisk/diskN).")
    var sanDisks: Int?

    @Argument(help: "The folder to build the host in; it must be empty or absent.")
    var folder: String

    func validate() throws {
        if let sanDisks, !(1...100_000).contains(sanDisks) {
            throw ValidationError("--san-disks must be between 1 and 100000.")
        }
    }

    func run() throws {
        if let sanDisks {
            let host = try HostBuilder(at: folder)
            let layout = try HostBuilder.make(at: host, sanDisks: sanDisks)
            print("bare host root: \(folder), \(layout.sanDisks.count) SAN disks /dev/rdisk/disk1…disk\(sanDisks)")
            return
        }
        print(try DemoHost.build(at: folder))
    }
}
