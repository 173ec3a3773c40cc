/// Indexes for the look-ups every guest command makes: a MAC address across the host, the disk
/// holding a partition, and entries by attribute (`RECURSIVE`, `SHARE`, `AUTORDEV`).
enum M0002AddLookupIndexes {
    static let identifier = "0002-add-lookup-indexes"

    static let sql = """
        CREATE INDEX guestResource_mac ON guestResource(mac) WHERE mac IS NOT NULL;
        CREATE INDEX device_containerKey ON device(containerKey) WHERE containerKey IS NOT NULL;
        CREATE INDEX deviceAttribute_name ON deviceAttribute(name, value);
        """
}
