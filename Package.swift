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
        .executable(name: "hpvmdevmgmt", targets: ["DevMgmt"]),
        .executable(name: "hpvmhostrdev", targets: ["HostRDev"]),
        .executable(name: "hpvm-demo-host", targets: ["HPVMDemo"]),
        .executable(name: "hpvmcreate", targets: ["Create"]),
        .executable(name: "hpvmmodify", targets: ["Modify"]),
        .executable(name: "hpvmremove", targets: ["Remove"]),
        .executable(name: "hpvmstatus", targets: ["Status"]),
        .executable(name: "hpvmmigrate", targets: ["Migrate"]),
        .executable(name: "hpvmsshsetup", targets: ["SSHSetupCommand"]),
        .executable(name: "hpvmaudit", targets: ["Audit"]),
        .executable(name: "hpvmstart", targets: ["Start"]),
        .executable(name: "hpvmstop", targets: ["Stop"]),
        .executable(name: "hpvmconsole", targets: ["Console"]),
        .executable(name: "hpvmlease", targets: ["LeaseTool"]),
        .executable(name: "hpvm-lease-exec", targets: ["LeaseExec"]),
        .library(name: "Registry", targets: ["Registry"]),
        .library(name: "Host", targets: ["Host"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
    ],
    targets: [
        .target(name: "Host", swiftSettings: strictSettings),
        .systemLibrary(name: "CLibSSH2", pkgConfig: "libssh2", providers: [.apt(["libssh2-1-dev"])]),
        .target(name: "SSH", dependencies: ["CLibSSH2"], swiftSettings: strictSettings),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(name: "Checksum", dependencies: ["CCrypto"], swiftSettings: strictSettings),
        .target(name: "Migration", dependencies: ["Registry", "Host", "SSH", "Checksum"], swiftSettings: strictSettings),
        .target(
            name: "Registry",
            dependencies: [
                "Host",
                "CCrypto",
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
        .target(name: "Fleet", dependencies: ["Registry", "Host", "Lease"], swiftSettings: strictSettings),
        // hpvmlease: the command's type and entry function in a library (for a multi-call binary).
        .target(
            name: "LeaseCommand",
            dependencies: ["Registry", "Host", "HPVMCLI", "Lease", "Fleet", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .executableTarget(name: "LeaseTool", dependencies: ["LeaseCommand"], swiftSettings: strictSettings),
        .target(name: "Runtime", dependencies: ["Registry", "Host", "CRuntime"], swiftSettings: strictSettings),
        .target(name: "GuestTools", dependencies: ["Registry", "HPVMCLI", "Runtime"], swiftSettings: strictSettings),
        // hpvmstart, hpvmstop, hpvmconsole: each command's type and entry function in a library (for a
        // multi-call binary), with a one-line executable.
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
        .executableTarget(name: "Start", dependencies: ["StartCommand"], swiftSettings: strictSettings),
        .executableTarget(name: "Stop", dependencies: ["StopCommand"], swiftSettings: strictSettings),
        .executableTarget(name: "Console", dependencies: ["ConsoleCommand"], swiftSettings: strictSettings),
        .executableTarget(
            name: "DevMgmt",
            dependencies: ["Registry", "Host", "HPVMCLI", "Runtime", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "HostRDev",
            dependencies: ["Registry", "Host", "HPVMCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "Create",
            dependencies: ["Registry", "HPVMCLI", "GuestTools", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "Modify",
            dependencies: ["Registry", "HPVMCLI", "GuestTools", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "Remove",
            dependencies: ["Registry", "HPVMCLI", "GuestTools", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "Status",
            dependencies: ["Registry", "HPVMCLI", "GuestTools", "Runtime", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "Migrate",
            dependencies: [
                "Registry", "HPVMCLI", "GuestTools", "Migration", "SSH",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "SSHSetupCommand",
            dependencies: ["Registry", "HPVMCLI", "SSHSetup", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "Audit",
            dependencies: ["Registry", "HPVMCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
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
            dependencies: ["Migration", "Registry", "Host", "HPVMTestSupport", "Checksum", "SSHSetup", "SSH"],
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
            dependencies: ["HPVMTestSupport", "Host", "Registry", "Runtime"],
            swiftSettings: strictSettings
        ),
    ]
)
