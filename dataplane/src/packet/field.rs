//! Where each header field lies, as byte ranges from the start of its
//! header (smoltcp's `field` modules): the views and the `emit`s read and
//! write through these names, never through bare offsets.

/// A field of several bytes.
pub type Field = core::ops::Range<usize>;

/// Ethernet II.
pub mod ethernet {
    use super::Field;
    /// Destination address.
    pub const DESTINATION: Field = 0..6;
    /// Source address.
    pub const SOURCE: Field = 6..12;
    /// EtherType (or the TPID of a tag).
    pub const ETHERTYPE: Field = 12..14;
    /// Header length without tags.
    pub const HEADER_LEN: usize = 14;
}

/// An 802.1Q tag, after the TPID.
pub mod vlan {
    use super::Field;
    /// Priority, DEI and VLAN ID.
    pub const TCI: Field = 0..2;
    /// The EtherType of what follows.
    pub const ETHERTYPE: Field = 2..4;
    /// Tag length after the TPID.
    pub const HEADER_LEN: usize = 4;
}

/// IPv4 (RFC 791).
pub mod ipv4 {
    use super::Field;
    /// Version (high nibble) and header length in words (low nibble).
    pub const VER_IHL: usize = 0;
    /// Total length: header and payload.
    pub const LENGTH: Field = 2..4;
    /// Flags (3 bits) and fragment offset (13 bits).
    pub const FLG_OFF: Field = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// The payload's protocol.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Field = 10..12;
    /// Source address.
    pub const SRC_ADDR: Field = 12..16;
    /// Destination address.
    pub const DST_ADDR: Field = 16..20;
    /// Header length without options.
    pub const HEADER_LEN: usize = 20;
}

/// IPv6 (RFC 8200).
pub mod ipv6 {
    use super::Field;
    /// Version, traffic class and flow label.
    pub const VER_TC_FLOW: Field = 0..4;
    /// Payload length.
    pub const LENGTH: Field = 4..6;
    /// Next header.
    pub const NXT_HDR: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC_ADDR: Field = 8..24;
    /// Destination address.
    pub const DST_ADDR: Field = 24..40;
    /// Fixed header length.
    pub const HEADER_LEN: usize = 40;
}

/// TCP (RFC 9293).
pub mod tcp {
    use super::Field;
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Data offset in words (high nibble).
    pub const DATA_OFF: usize = 12;
    /// Checksum.
    pub const CHECKSUM: Field = 16..18;
    /// Header length without options.
    pub const HEADER_LEN: usize = 20;
}

/// UDP (RFC 768).
pub mod udp {
    use super::Field;
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Length: header and payload.
    pub const LENGTH: Field = 4..6;
    /// Checksum (0: none).
    pub const CHECKSUM: Field = 6..8;
    /// Header length.
    pub const HEADER_LEN: usize = 8;
}
