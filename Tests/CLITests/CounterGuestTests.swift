import HPVMTestSupport
import Testing

/// The counter guest's helper without a guest: how console output is read, and a missing ISO.
@Suite struct CounterGuestTests {
    @Test func counterLinesAreReadAcrossChunksAndOtherLinesArePassedOver() {
        // Given console output cut at arbitrary places, starting mid-line, with a kernel message between
        var reader = CounterLineReader()
        // When it is fed in pieces
        reader.feed(Array("ter 6\r\nhpvm-coun".utf8))
        reader.feed(Array("ter 7\r\n[    3.141] random: crng init done\r\nhpvm-counter 8\r".utf8))
        reader.feed(Array("\nhpvm-counter 9x\r\nhpvm-counter \r\nhpvm-counter 10\nhpvm-counter 11".utf8))
        // Then only whole counter lines count: the tail of line 6 and the unfinished 11 do not
        #expect(reader.values == [7, 8, 10])
        #expect(reader.recentText.hasSuffix("hpvm-counter 11"))
    }

    @Test func aMissingImageSaysToRunTheScript() {
        // Given HPVM_TEST_GUEST_IMAGE naming a file that is not there
        let environment = [CounterGuest.imageVariable: "/nonexistent/test-guest/counter.iso"]
        // When the image is asked for, Then the error names the file and the script that makes it
        #expect {
            _ = try CounterGuest.imagePath(environment: environment)
        } throws: { error in
            let error = error as? CounterGuestError
            return error?.code == .imageMissing
                && error?.message == "the counter guest's ISO /nonexistent/test-guest/counter.iso (named by HPVM_TEST_GUEST_IMAGE) "
                    + "does not exist: run scripts/guest-image /nonexistent/test-guest (scripts/test runs it before swift test)."
        }
        // and without the variable, the default is the package's .build/test-guest/counter.iso
        #expect(CounterGuest.defaultImagePath.hasSuffix("/.build/test-guest/counter.iso"))
        #expect(CounterGuest.defaultImagePath.hasPrefix(ManPageTests.packageRoot))
    }

    @Test func aGuestThatDoesNotRunHasNoConsoleToRead() {
        // Given a run folder that does not exist, When its counter is read, Then it says the guest does not run
        #expect {
            _ = try CounterGuest.counters(runFolder: "/nonexistent/var/opt/hpvm/run/g1", within: 1)
        } throws: { error in
            (error as? CounterGuestError)?.code == .consoleUnavailable
        }
    }
}
