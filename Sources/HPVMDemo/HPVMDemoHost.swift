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

    @Argument(help: "The folder to build the host in; it must be empty or absent.")
    var folder: String

    func run() throws {
        let summary = try DemoHost.build(at: folder)
        print(summary)
    }
}
