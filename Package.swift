// swift-tools-version:6.1
import PackageDescription

/// Upcoming features switched on for every target, so a leaked import or an
/// implicit existential fails the build (STYLE.md, point 2).
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "hpvm",
    products: [
        // One multi-call executable serves every command, by link name (hpvmdevmgmt -> hpvm) and
        // as a sub-command (hpvm devmgmt); the table of commands is in Sources/HPVM/HPVM.swift.
        .executable(name: "hpvm", targets: ["HPVM"]),
        .executable(name: "hpvm-demo-host", targets: ["HPVMDemo"]),
        .executable(name: "hpvm-lease-exec", targets: ["LeaseExec"]),
        .library(name: "Registry", targets: ["Registry"]),
        .library(name: "Host", targets: ["Host"]),
        // For the libFuzzer targets of fuzz/ (a package of its own), which fuzz the protocol decoder.
        .library(name: "Migration", targets: ["Migration"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
    ],
    targets: [
        .target(name: "Host", swiftSettings: strictSettings),
        // libssh2's and libcrypto's headers; their functions come from CLazyLink, which loads the
        // libraries on first use (linked, they would cost every command 0.8 ms to start).
        .systemLibrary(name: "CLibSSH2", providers: [.apt(["libssh2-1-dev"])]),
        .systemLibrary(name: "CCrypto", providers: [.apt(["libssl-dev"])]),
        .target(name: "CLazyLink", dependencies: ["CLibSSH2", "CCrypto"]),
        .systemLibrary(name: "CSysLog"),
        .target(name: "SSH", dependencies: ["CLibSSH2", "CLazyLink"], swiftSettings: strictSettings),
        .target(name: "Checksum", dependencies: ["CCrypto", "CLazyLink"], swiftSettings: strictSettings),
        .target(name: "Migration", dependencies: ["Registry", "Host", "SSH", "Checksum", "Runtime"], swiftSettings: strictSettings),
        .target(
            name: "Registry",
            dependencies: [
                "Host",
                "CCrypto",
                "CLazyLink",
                "CSysLog",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(name: "SSHSetup", dependencies: ["SSH", "Registry"], swiftSettings: strictSettings),
        .target(name: "HPVMTestSupport", dependencies: ["Host"], swiftSettings: strictSettings),
        .target(name: "HPVMCLI", dependencies: ["Registry", "Host"], swiftSettings: strictSettings),
        .target(name: "CRuntime"),
        // sanlock: the client library (through the daemon), the lease layer, and the helper that holds
        // a guest's lease for its QEMU's lifetime (C: it forks and execs).
        .systemLibrary(name: "CSanlock", pkgConfig: "libsanlock_client", providers: [.apt(["libsanlock-dev"])]),
        .target(name: "Lease", dependencies: ["CSanlock"], swiftSettings: strictSettings),
        .executableTarget(name: "LeaseExec", linkerSettings: [.linkedLibrary("sanlock_client")]),
        .target(name: "Fleet", dependencies: ["Registry", "Host", "Lease", "Runtime"], swiftSettings: strictSettings),
        // hpvmlease: the command's type and entry function in a library (for a multi-call binary).
        .target(
            name: "LeaseCommand",
            dependencies: ["Registry", "Host", "HPVMCLI", "Lease", "Fleet", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .target(name: "Runtime", dependencies: ["Registry", "Host", "CRuntime"], swiftSettings: strictSettings),
        .target(name: "GuestTools", dependencies: ["Registry", "HPVMCLI", "Runtime"], swiftSettings: strictSettings),
        .target(
            name: "StartCommand",
            dependencies: ["Registry", "HPVMCLI", "GuestTools", "Runtime", "Fleet", "Lease", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "StopCommand",
            dependencies: ["Registry", "HPVMCLI", "GuestTools", "Runtime", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ConsoleCommand",
            dependencies: ["Registry", "HPVMCLI", "GuestTools", "Runtime", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "DevMgmt",
            dependencies: ["Registry", "Host", "HPVMCLI", "Runtime", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "HostRDev",
            dependencies: ["Registry", "Host", "HPVMCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Create",
            dependencies: ["Registry", "HPVMCLI", "GuestTools", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Modify",
            dependencies: ["Registry", "HPVMCLI", "GuestTools", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Remove",
            dependencies: ["Registry", "HPVMCLI", "GuestTools", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Status",
            dependencies: ["Registry", "HPVMCLI", "GuestTools", "Runtime", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Migrate",
            dependencies: [
                "Registry", "HPVMCLI", "GuestTools", "Migration", "SSH", "Runtime", "Fleet", "Lease",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SSHSetupCommand",
            dependencies: ["Registry", "HPVMCLI", "SSHSetup", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Audit",
            dependencies: ["Registry", "HPVMCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "HPVM",
            dependencies: ["HPVMCLI", "Registry", "DevMgmt", "HostRDev", "Create", "Modify", "Remove", "Status", "Migrate", "SSHSetupCommand", "Audit", "StartCommand", "StopCommand", "ConsoleCommand", "LeaseCommand"],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "HPVMDemo",
            dependencies: ["HPVMTestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "SSHTests", dependencies: ["SSH", "HPVMTestSupport"], swiftSettings: strictSettings),
        .testTarget(
            name: "MigrationTests",
            dependencies: ["Migration", "Registry", "Host", "HPVMTestSupport", "Checksum", "SSHSetup", "SSH", "Runtime"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "HostTests", dependencies: ["Host", "HPVMTestSupport"], swiftSettings: strictSettings),
        .testTarget(
            name: "RegistryTests",
            dependencies: ["Registry", "Host", "HPVMTestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "DevMgmtTests",
            dependencies: ["DevMgmt", "Create", "StartCommand", "HPVMCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "RuntimeTests",
            dependencies: ["Runtime", "Registry", "Host", "HPVMTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "PromiseTests", dependencies: ["HPVMTestSupport"], swiftSettings: strictSettings),
        .testTarget(
            name: "CLITests",
            dependencies: ["HPVMTestSupport", "Host", "Registry", "Runtime", "Fleet", "Lease"],
            swiftSettings: strictSettings
        ),
    ]
)
