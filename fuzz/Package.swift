// swift-tools-version:6.1
import PackageDescription

/// libFuzzer targets for hpvm's parsers of untrusted text, kept out of the main package so that
/// `swift build` and `swift test` never build them. Build and run with `fuzz/run.sh` (which
/// passes `-sanitize=fuzzer,address`). Each executable exports `LLVMFuzzerTestOneInput` and its
/// main hands over to libFuzzer's driver (`FuzzDriver`).
let package = Package(
    name: "hpvm-fuzz",
    dependencies: [.package(name: "hpvm", path: "..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(
            name: "FuzzProtocol", dependencies: ["FuzzDriver", .product(name: "Migration", package: "hpvm")]),
        .executableTarget(
            name: "FuzzResourceStatement", dependencies: ["FuzzDriver", .product(name: "Registry", package: "hpvm")]),
        .executableTarget(
            name: "FuzzDeviceSpec", dependencies: ["FuzzDriver", .product(name: "Registry", package: "hpvm")]),
    ]
)
