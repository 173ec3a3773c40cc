import Foundation
import HPVMTestSupport
import Host
import Registry
import Runtime
import Testing

/// Guests that run (issue 10): real QEMU processes under TCG, firmware-only guests of 64 MB, each
/// stopped by its pid at the end of its test. Serialized: TCG is hungry and the machine is shared.
@Suite(.serialized) struct RuntimeCommandTests {
    /// A host with one guest of 64 MB on a 1 MiB image file.
    static func hostWithGuest(_ name: String = "g1") throws -> CLIHost {
        let cli = try CLIHost(sanDisks: 4, multipathMaps: 0)
        try cli.host.file("/hpvm/disks/\(name).img", contents: String(repeating: "\0", count: 1 << 20))
        let created = try cli.tool("hpvmcreate", "-P", name, "-r", "64M", "-a", "disk:avio_stor::file:/hpvm/disks/\(name).img")
        #expect(created.status == 0, "\(created.stderr)")
        return cli
    }

    /// The state column of a guest's row in the `hpvmstatus` table.
    func tableState(_ cli: CLIHost, _ guest: String) throws -> String? {
        let row = try cli.tool("hpvmstatus").lines.first { $0.hasPrefix(guest + " ") }
        return row.map { String($0.dropFirst(35).prefix(9)).trimmingCharacters(in: .whitespaces) }
    }

    /// Field 10 of a guest's `hpvmstatus -M` line.
    func machineState(_ cli: CLIHost, _ guest: String) throws -> String? {
        let line = try cli.tool("hpvmstatus", "-M").lines.first { $0.hasPrefix(guest + ":") }
        return line.map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init)[10] }
    }

    @Test func aGuestStartsStopsAndStartsAgain() throws {
        // Given a guest that is defined and off
        let cli = try Self.hostWithGuest()
        #expect(try tableState(cli, "g1") == "Off")
        let before = try cli.registryBytes()
        // When it is started
        let started = try cli.runtime("hpvmstart", "-P", "g1", "-V")
        // Then a QEMU runs it, hpvmstatus says On, and the registry is byte-for-byte what it was
        #expect(started.status == 0, "\(started.stderr)")
        let pid = try #require(cli.qemuPID("g1"))
        #expect(started.stdout == "started guest g1: QEMU pid \(pid), running.\n")
        #expect(try tableState(cli, "g1") == "On")
        #expect(try machineState(cli, "g1") == "On")
        #expect(try cli.tool("hpvmstatus", "-P", "g1").stdout.contains("State:                On\n"))
        #expect(try cli.registryBytes() == before)
        // and its QEMU runs the guest's image with cache=none, on the pinned machine type
        let commandLine = try String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8).split(separator: "\0").map(String.init)
        #expect(commandLine.contains("pc-i440fx-7.2") && commandLine.contains("tcg"))
        #expect(commandLine.contains { $0.contains(#""filename":"\#(cli.root)/hpvm/disks/g1.img""#) && $0.contains(#""direct":true"#) })
        // When it is stopped at once, it is off; started again, it runs again
        let stopped = try cli.runtime("hpvmstop", "-P", "g1", "-F", "-Q")
        #expect(stopped.status == 0, "\(stopped.stderr)")
        #expect(cli.qemuPID("g1") == nil)
        #expect(try tableState(cli, "g1") == "Off")
        #expect(try cli.runtime("hpvmstart", "-P", "g1").status == 0)
        #expect(try tableState(cli, "g1") == "On")
        #expect(try cli.runtime("hpvmstop", "-QF", "-P", "g1").status == 0)
        #expect(try cli.registryBytes() == before)
        // and the host's command log has one line for each
        let log = try String(contentsOfFile: cli.root + "/var/opt/hpvm/common/command.log", encoding: .utf8)
        #expect(log.components(separatedBy: "hpvmstart -P g1").count == 3 && log.contains("hpvmstop -P g1 -F -Q: ok"))
    }

    @Test func aSecondGuestOnTheSameUnsharedLUNWaitsUntilTheFirstStops() throws {
        // Given g1 on disk1 and g2 on disk2, and then the LUN behind disk2 presented anew as the
        // LUN behind disk1 (the registry took both when they were two LUNs)
        let cli = try CLIHost(sanDisks: 4, multipathMaps: 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-r", "64M", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g2", "-r", "64M", "-a", "disk:avio_stor::disk:/dev/rdisk/disk2").status == 0)
        let lun = try #require(cli.layout.sanDisks[0].wwid)
        try cli.host.setWWID(ofSCSIDisk: cli.layout.sanDisks[1].names[0], to: lun)
        let before = try cli.registryBytes()
        // When g1 starts, and then g2
        #expect(try cli.runtime("hpvmstart", "-P", "g1").status == 0)
        let refused = try cli.runtime("hpvmstart", "-P", "g2")
        // Then g2 is refused while g1 runs, naming the disk, the device, the guest and the rule
        #expect(refused.status == 1)
        #expect(refused.stderr == """
            hpvmstart: cannot start guest g2 with /dev/rdisk/disk2: it is the same device (WWID 6005-08b4-0001-15d0-0000-0000-0000-0001) as gdev entry /dev/rdisk/disk1, used by running guest g1 and not SHARE=YES.

            """)
        #expect(cli.qemuPID("g2") == nil)
        #expect(try tableState(cli, "g2") == "Off")
        #expect(try cli.registryBytes() == before)
        // and -s checks the same without starting anything
        #expect(try cli.runtime("hpvmstart", "-P", "g2", "-s").stderr == refused.stderr)
        // When g1 stops, g2 starts; and then g1, judged on the LUN as it is now, is refused
        #expect(try cli.runtime("hpvmstop", "-P", "g1", "-F", "-Q").status == 0)
        #expect(try cli.runtime("hpvmstart", "-P", "g2").status == 0)
        let reverse = try cli.runtime("hpvmstart", "-P", "g1")
        #expect(reverse.status == 1)
        #expect(reverse.stderr.contains("cannot start guest g1 with /dev/rdisk/disk1: it is") && reverse.stderr.contains("used by running guest g2 and not SHARE=YES."))
        #expect(try cli.registryBytes() == before)
        #expect(try cli.runtime("hpvmstop", "-P", "g2", "-F", "-Q").status == 0)
    }

    @Test func guestsOnAShareYesLUNRunSideBySide() throws {
        // Given one LUN, SHARE=YES, given to two guests
        let cli = try CLIHost(sanDisks: 2, multipathMaps: 0)
        #expect(try cli.devmgmt("-a", "gdev:/dev/rdisk/disk1:attr:SHARE=YES").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-r", "64M", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g2", "-r", "64M", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1").status == 0)
        // Then both start, QEMU letting each write it (share-rw)
        #expect(try cli.runtime("hpvmstart", "-P", "g1").status == 0)
        let second = try cli.runtime("hpvmstart", "-P", "g2")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try tableState(cli, "g1") == "On" && tableState(cli, "g2") == "On")
        #expect(try cli.runtime("hpvmstop", "-P", "g1", "-F", "-Q").status == 0)
        #expect(try cli.runtime("hpvmstop", "-P", "g2", "-F", "-Q").status == 0)
    }

    @Test func statusTellsTheTruthAfterQEMUIsKilled() throws {
        // Given a running guest
        let cli = try Self.hostWithGuest()
        #expect(try cli.runtime("hpvmstart", "-P", "g1").status == 0)
        let pid = try #require(cli.qemuPID("g1"))
        // When its QEMU is killed with SIGKILL (its pidfile stays behind)
        #expect(kill(pid, SIGKILL) == 0)
        while cli.qemuPID("g1") != nil { usleep(10_000) }
        #expect(FileManager.default.fileExists(atPath: cli.root + "/var/opt/hpvm/run/g1/pid"))
        // Then every format of hpvmstatus shows it Off, never On
        #expect(try tableState(cli, "g1") == "Off")
        #expect(try machineState(cli, "g1") == "Off")
        #expect(try cli.tool("hpvmstatus", "-P", "g1").stdout.contains("State:                Off\n"))
        #expect(try cli.tool("hpvmstatus", "--json").stdout.contains(#""state":"Off""#))
        #expect(try cli.tool("hpvmstatus", "-X").stdout.contains("<vm_state>Off</vm_state>"))
        // and stopping it says so, and it starts again over the stale pidfile
        let stop = try cli.runtime("hpvmstop", "-P", "g1", "-F", "-Q")
        #expect(stop.status == 1 && stop.stderr == "hpvmstop: guest g1 is not running.\n")
        #expect(try cli.runtime("hpvmstart", "-P", "g1").status == 0)
        #expect(try tableState(cli, "g1") == "On")
        #expect(try cli.runtime("hpvmstop", "-P", "g1", "-F", "-Q").status == 0)
    }

    @Test func pausedGuestShowsPausedAndThePowerButtonLeavesAFirmwareGuestOn() throws {
        // Given a running guest whose processors QMP stops
        let cli = try Self.hostWithGuest()
        #expect(try cli.runtime("hpvmstart", "-P", "g1").status == 0)
        let folder = try RunFolder(root: cli.host.root, guest: "g1")
        let deadline = ContinuousClock.now + .seconds(10)
        let monitor = try QMPClient(folder: folder, monitor: .command, deadline: deadline)
        try monitor.execute("stop", until: deadline)
        monitor.close()
        // Then hpvmstatus says Paused (the status monitor answers while the command one is free or not)
        #expect(try tableState(cli, "g1") == "Paused")
        #expect(try machineState(cli, "g1") == "On")
        // When the power button is pressed without waiting, the command returns; a guest with no OS stays on
        let pressed = try cli.runtime("hpvmstop", "-P", "g1", "-Q", "-V")
        #expect(pressed.status == 0 && pressed.stdout == "pressed the power button of guest g1\n")
        #expect(cli.qemuPID("g1") != nil)
        // and -g waits for it, up to HPVM_STOP_TIMEOUT, then says what to do
        let waited = try cli.runtime("hpvmstop", "-P", "g1", "-Q", "-g", environment: ["HPVM_STOP_TIMEOUT": "1"])
        #expect(waited.status == 1)
        #expect(waited.stderr == "hpvmstop: guest g1 did not stop within 1 s of its power button; its OS may ignore it (hpvmstop -F -P g1 stops it at once).\n")
        #expect(try cli.runtime("hpvmstop", "-P", "g1", "-F", "-Q").status == 0)
    }

    @Test func startIsRefusedForWhatTheRulesRefuse() throws {
        let cli = try Self.hostWithGuest()
        let before = try cli.registryBytes()
        // Already running
        #expect(try cli.runtime("hpvmstart", "-P", "g1").status == 0)
        let twice = try cli.runtime("hpvmstart", "-P", "g1")
        #expect(twice.status == 1 && twice.stderr == "hpvmstart: guest g1 is already running; hpvmstatus -P g1 shows it.\n")
        #expect(try cli.runtime("hpvmstop", "-P", "g1", "-F", "-Q").status == 0)
        // Not Runnable
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-x", "register_status=disabled").status == 0)
        let notRunnable = try cli.runtime("hpvmstart", "-P", "g1")
        #expect(notRunnable.status == 1)
        #expect(notRunnable.stderr == "hpvmstart: cannot start guest g1: it is Not Runnable. If it runs on no other host, hpvmmodify -P g1 -x register_status=enabled makes it runnable.\n")
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-x", "register_status=enabled").status == 0)
        // A missing backing store
        try FileManager.default.moveItem(atPath: cli.root + "/hpvm/disks/g1.img", toPath: cli.root + "/hpvm/disks/moved.img")
        let missing = try cli.runtime("hpvmstart", "-P", "g1")
        #expect(missing.status == 1)
        #expect(missing.stderr == "hpvmstart: cannot start guest g1: its backing store /hpvm/disks/g1.img does not exist on this host (disk:avio_stor:0,0,0:file:/hpvm/disks/g1.img).\n")
        try FileManager.default.moveItem(atPath: cli.root + "/hpvm/disks/moved.img", toPath: cli.root + "/hpvm/disks/g1.img")
        // Storage the host now keeps: disk3's LUN presented anew with the WWID of restricted disk4
        #expect(try cli.devmgmt("-a", "rdev:/dev/rdisk/disk4").status == 0)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk3").status == 0)
        try cli.host.setWWID(ofSCSIDisk: cli.layout.sanDisks[2].names[0], to: try #require(cli.layout.sanDisks[3].wwid))
        let restricted = try cli.runtime("hpvmstart", "-P", "g1")
        #expect(restricted.status == 1)
        #expect(restricted.stderr.hasPrefix("hpvmstart: cannot start guest g1 with /dev/rdisk/disk3: it is restricted, ") && restricted.stderr.contains("rdev entry /dev/rdisk/disk4"))
        try cli.host.setWWID(ofSCSIDisk: cli.layout.sanDisks[2].names[0], to: try #require(cli.layout.sanDisks[2].wwid))
        // Storage the host now mounts
        try cli.host.mount(cli.layout.sanDisks[2].names[0], at: "/srv")
        let mounted = try cli.runtime("hpvmstart", "-P", "g1")
        #expect(mounted.status == 1 && mounted.stderr.contains("cannot start guest g1 with /dev/rdisk/disk3: it is the host's own storage"))
        // A vswitch that is gone
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-d", "disk:avio_stor::disk:/dev/rdisk/disk3", "-a", "network:avio_lan::vswitch:vsw1").status == 0)
        cli.host.removeItem("/sys/class/net/vsw1")
        let noSwitch = try cli.runtime("hpvmstart", "-P", "g1")
        #expect(noSwitch.status == 1)
        #expect(noSwitch.stderr.hasPrefix("hpvmstart: cannot start guest g1: no vswitch named vsw1 exists on this host (network:avio_lan:0,1,0x"))
        // Nothing ran
        #expect(cli.qemuPID("g1") == nil)
        #expect(try tableState(cli, "g1") == "Off")
        _ = before
    }

    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip"), "needs root for a network namespace"))
    func aNetworkIsATapOnTheVswitchBridge() throws {
        // Given a sealed network namespace with a bridge vsw1 (no address, no other port, no route)
        let namespace = "hpvmrt-" + String(UUID().uuidString.prefix(6)).lowercased()
        func ip(_ arguments: String...) throws -> CommandResult { try runProcess("/usr/sbin/ip", arguments) }
        #expect(try ip("netns", "add", namespace).status == 0)
        defer { _ = try? ip("netns", "del", namespace) }
        #expect(try ip("-n", namespace, "link", "add", "vsw1", "type", "bridge").status == 0)
        #expect(try ip("-n", namespace, "link", "set", "vsw1", "up").status == 0)
        // and a guest with a network on vsw1
        let cli = try Self.hostWithGuest()
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-a", "network:avio_lan::vswitch:vsw1").status == 0)
        let statement = try #require(try cli.tool("hpvmstatus", "-P", "g1", "-d").lines.first { $0.hasPrefix("network:") })
        let mac = String(try #require(statement.split(separator: ":")[2].split(separator: ",").last).dropFirst(2)).lowercased()
        // When it starts on that host
        cli.startedGuests.insert("g1")
        let started = try runProcess(
            "/usr/sbin/ip", ["netns", "exec", namespace, binDirectory + "/hpvmstart", "-P", "g1"],
            environment: ["HPVM_ROOT": cli.root, "HPVM_ACCEL": "tcg"])
        #expect(started.status == 0, "\(started.stderr)")
        // Then its tap is a port of the bridge, and QEMU's card has the guest's MAC
        #expect(try ip("-n", namespace, "-o", "link", "show", "master", "vsw1").stdout.contains("hpvm1n0"))
        let pid = try #require(cli.qemuPID("g1"))
        let commandLine = try String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8).split(separator: "\0").map(String.init)
        let colonMAC = stride(from: 0, to: 12, by: 2).map { offset -> String in
            let start = mac.index(mac.startIndex, offsetBy: offset)
            return String(mac[start..<mac.index(start, offsetBy: 2)])
        }.joined(separator: ":")
        #expect(commandLine.contains("virtio-net-pci,id=nic0,netdev=net0,mac=\(colonMAC)"))
        #expect(commandLine.contains("tap,id=net0,fd=3"))
        // When it stops, the tap goes with it
        #expect(try cli.runtime("hpvmstop", "-P", "g1", "-F", "-Q").status == 0)
        #expect(try ip("-n", namespace, "-o", "link", "show", "master", "vsw1").stdout.isEmpty)
    }

    @Test func aRunningGuestKeepsItsDevicesNameAndHost() throws {
        // Given a running guest with two disks
        let cli = try Self.hostWithGuest()
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1").status == 0)
        #expect(try cli.runtime("hpvmstart", "-P", "g1").status == 0)
        let before = try cli.registryBytes()
        // When a device is taken away, the guest renamed, removed or migrated offline
        let detach = try cli.tool("hpvmmodify", "-P", "g1", "-d", "disk:avio_stor::disk:/dev/rdisk/disk1")
        let rename = try cli.tool("hpvmmodify", "-P", "g1", "-N", "g2")
        let remove = try cli.tool("hpvmremove", "-P", "g1", "-Q")
        let migrate = try cli.tool("hpvmmigrate", "-P", "g1", "-h", "198.51.100.2", "-s")
        let replace = try cli.devmgmt("-n", "gdev:/dev/rdisk/disk1:/dev/rdisk/disk2")
        // Then each is refused while its QEMU runs, and nothing changed
        let hint = "while it runs; stop it first (hpvmstop -P g1).\n"
        #expect(detach.status == 1 && detach.stderr == "hpvmmodify: cannot take a device from or change a device of guest g1 " + hint)
        #expect(rename.status == 1 && rename.stderr == "hpvmmodify: cannot rename guest g1 " + hint)
        #expect(remove.status == 1 && remove.stderr == "hpvmremove: cannot remove guest g1 " + hint)
        #expect(
            migrate.status == 1
                && migrate.stderr.contains(
                    "cannot migrate guest g1 offline while it runs: migrate it online (-o), have the migration stop it (-d), or stop it first (hpvmstop -P g1).\n"))
        #expect(replace.status == 1 && replace.stderr == "hpvmdevmgmt: cannot replace /dev/rdisk/disk1 of guest g1 " + hint)
        #expect(try cli.registryBytes() == before)
        // but what takes effect at its next start may change, and once it stops, the rest may too
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-l", "web server").status == 0)
        #expect(try cli.runtime("hpvmstop", "-P", "g1", "-F", "-Q").status == 0)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-d", "disk:avio_stor::disk:/dev/rdisk/disk1").status == 0)
        #expect(try cli.tool("hpvmremove", "-P", "g1", "-Q").status == 0)
    }

    @Test func theCommandMonitorTakesADescriptorForAMigrationStream() throws {
        // Given a running guest and one end of a socket pair (what hpvmmigrate -o will hand QEMU)
        let cli = try Self.hostWithGuest()
        #expect(try cli.runtime("hpvmstart", "-P", "g1").status == 0)
        var ends: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer { ends.forEach { close($0) } }
        // When it is passed with getfd on the command monitor, QEMU holds it under its name
        let deadline = ContinuousClock.now + .seconds(10)
        let monitor = try QMPClient(folder: try RunFolder(root: cli.host.root, guest: "g1"), monitor: .command, deadline: deadline)
        try monitor.execute("getfd", arguments: [("fdname", .string("migration"))], passing: ends[0], until: deadline)
        // Then it can be closed by that name, and a name QEMU does not hold is refused with QEMU's words
        try monitor.execute("closefd", arguments: [("fdname", .string("migration"))], until: deadline)
        #expect(throws: RuntimeError.self) {
            try monitor.execute("closefd", arguments: [("fdname", .string("migration"))], until: deadline)
        }
        monitor.close()
        #expect(try cli.runtime("hpvmstop", "-P", "g1", "-F", "-Q").status == 0)
    }

    @Test func theCounterGuestBootsAndCountsOnItsConsoleUntilStopped() throws {
        // Given a guest of 256 MB whose only device is the counter guest's ISO, copied into the host
        let image = try CounterGuest.imagePath()
        let cli = try CLIHost(sanDisks: 0, multipathMaps: 0)
        defer { cli.stopQEMUs() }
        try FileManager.default.copyItem(atPath: image, toPath: cli.root + "/hpvm/disks/counter.iso")
        let created = try cli.tool("hpvmcreate", "-P", "counter", "-r", "256M", "-a", "dvd:scsi::file:/hpvm/disks/counter.iso")
        #expect(created.status == 0, "\(created.stderr)")
        let folder = CounterGuest.runFolder(root: cli.root, guest: "counter")
        #expect(folder == (try RunFolder(root: cli.host.root, guest: "counter")).path)
        // When it starts, SeaBIOS boots the CD on virtio-scsi and the kernel reaches /init
        let launched = ContinuousClock.now
        let started = try cli.runtime("hpvmstart", "-P", "counter")
        try #require(started.status == 0, "\(started.stderr)")
        let startTook = ContinuousClock.now - launched
        let first = try #require(try CounterGuest.counters(1, runFolder: folder, within: 60).first)
        let bootTook = ContinuousClock.now - launched
        print("counter guest: hpvmstart took \(startTook), first counter line (\(first)) \(bootTook) after hpvmstart began")
        // Then its counter goes up: read again a second later
        sleep(1)
        let later = try CounterGuest.counters(2, runFolder: folder, within: 10)
        #expect(later.count == 2 && later[0] > first && later[1] == later[0] + 1, "first \(first), then \(later)")
        // and the console was let go: hpvmconsole attaches; while it is attached, the counter
        // cannot be read, naming the session; once it leaves, it can
        let (console, input, _, attached) = try Self.attachedConsole(cli, guest: "counter")
        defer { if console.isRunning { kill(console.processIdentifier, SIGKILL) } }
        #expect(String(decoding: attached, as: UTF8.self).contains("attached to guest counter"))
        #expect {
            _ = try CounterGuest.counters(1, runFolder: folder, within: 0.5)
        } throws: { error in
            let error = error as? CounterGuestError
            return error?.code == .consoleBusy && error?.message.contains("pid \(console.processIdentifier)") == true
        }
        input.fileHandleForWriting.write(Data("~.".utf8))
        console.waitUntilExit()
        #expect(console.terminationStatus == 0)
        #expect(try CounterGuest.counters(1, runFolder: folder, within: 10).count == 1)
        // When it is stopped at once, its QEMU is gone and its console cannot be read
        #expect(cli.qemuPID("counter") != nil)
        #expect(try cli.runtime("hpvmstop", "-P", "counter", "-F", "-Q").status == 0)
        #expect(cli.qemuPID("counter") == nil)
        #expect {
            _ = try CounterGuest.counters(1, runFolder: folder, within: 1)
        } throws: { error in
            (error as? CounterGuestError)?.code == .consoleUnavailable
        }
    }

    /// An `hpvmconsole -P <guest>` session, returned once it says it is attached (or its standard error
    /// closed): the process, its standard input, its standard error and what it has said there so far.
    static func attachedConsole(_ cli: CLIHost, guest: String = "g1") throws -> (Process, Pipe, Pipe, Data) {
        let console = Process()
        console.executableURL = URL(fileURLWithPath: binDirectory + "/hpvmconsole")
        console.arguments = ["-P", guest]
        console.environment = ["HPVM_ROOT": cli.root, "PATH": "/usr/bin:/bin"]
        let input = Pipe()
        let errors = Pipe()
        console.standardInput = input
        console.standardOutput = FileHandle.nullDevice
        console.standardError = errors
        try console.run()
        var attached = Data()
        while !String(decoding: attached, as: UTF8.self).contains("type ~. to leave") {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            attached.append(chunk)
        }
        return (console, input, errors, attached)
    }

    @Test func consoleAttachesLeavesOnTildeDotAndIsOneAtATime() throws {
        let cli = try Self.hostWithGuest()
        // Not running: refused
        let off = try cli.runtime("hpvmconsole", "-P", "g1")
        #expect(off.status == 1 && off.stderr == "hpvmconsole: guest g1 is not running.\n")
        #expect(try cli.runtime("hpvmstart", "-P", "g1").status == 0)
        // Given one console session held open
        let (first, input, errors, _) = try Self.attachedConsole(cli)
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        // Then a second is refused, naming the holder
        let second = try cli.runtime("hpvmconsole", "-P", "g1")
        #expect(second.status == 1)
        #expect(second.stderr.hasPrefix("hpvmconsole: the serial console of guest g1 is in use by another command (pid \(first.processIdentifier))"))
        // When ~. is typed at the start of a line, the first leaves
        input.fileHandleForWriting.write(Data("help\r~.".utf8))
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
        #expect(String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("left guest g1's console"))
        // and a console attached when the guest stops says so
        let (last, held, said, attachedLast) = try Self.attachedConsole(cli)
        var heard = attachedLast
        defer { if last.isRunning { kill(last.processIdentifier, SIGKILL) } }
        #expect(try cli.runtime("hpvmstop", "-P", "g1", "-F", "-Q").status == 0)
        withExtendedLifetime(held) { last.waitUntilExit() }  // its standard input stays open: it leaves because the guest stopped
        #expect(last.terminationStatus == 0)
        heard.append(said.fileHandleForReading.readDataToEndOfFile())
        #expect(String(decoding: heard, as: UTF8.self).hasSuffix("hpvmconsole: guest g1 stopped; its console closed.\n"))
    }
}
