import Host
import Testing

@Suite struct WWIDTests {
    @Test(arguments: [
        "naa.600508b4000115d000012000003a0000",
        "0x600508b4000115d000012000003a0000",
        "6005-08b4-0001-15d0-0001-2000-003a-0000",
        "3600508b4000115d000012000003a0000",
        "mpath-3600508b4000115d000012000003a0000",
        "  NAA.600508B4000115D000012000003A0000\n",
    ])
    func everySpellingNormalisesToOneForm(raw: String) throws {
        // Given a WWID as sysfs, multipath or HPVM spells it
        // When it is normalised
        let wwid = try #require(WWID(raw))
        // Then it is the same identifier, printed HPVM-style
        #expect(wwid.normalized == "600508b4000115d000012000003a0000")
        #expect(wwid.description == "6005-08b4-0001-15d0-0001-2000-003a-0000")
    }

    @Test func nvmeEUIAndNAA5KeepTheirDigits() throws {
        #expect(try #require(WWID("eui.0025388b91b5d7e1")).normalized == "0025388b91b5d7e1")
        #expect(try #require(WWID("mpath-20025388b91b5d7e1")).normalized == "0025388b91b5d7e1")
        #expect(try #require(WWID("naa.5000c50012345678")).description == "5000-c500-1234-5678")
    }

    @Test func emptyAndAllZeroMeanUnknown() {
        #expect(WWID("") == nil)
        #expect(WWID("  \n") == nil)
        #expect(WWID("naa.00000000000000000000000000000000") == nil)
    }

    @Test func vendorStringsAreSanitisedSoTheyCannotBreakAListLine() throws {
        let wwid = try #require(WWID("t10.ATA     SAMSUNG: SSD,  S1234"))
        #expect(!wwid.description.contains(":"))
        #expect(!wwid.description.contains(","))
        #expect(!wwid.description.contains(" "))
    }
}
