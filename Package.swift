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
        .target(name: "GuestTools", dependencies: ["Registry", "HPVMCLI"], swiftSettings: strictSettings),
        .executableTarget(
            name: "DevMgmt",
            dependencies: ["Registry", "Host", "HPVMCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
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
            dependencies: ["Registry", "HPVMCLI", "GuestTools", .product(name: "ArgumentParser", package: "swift-argument-parser")],
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
            dependencies: ["DevMgmt", "Create", "HPVMCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "PromiseTests", dependencies: ["HPVMTestSupport"], swiftSettings: strictSettings),
        .testTarget(
            name: "CLITests",
            dependencies: ["HPVMTestSupport", "Host", "Registry"],
            swiftSettings: strictSettings
        ),
    ]
)
