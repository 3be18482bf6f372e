//! TX and RX descriptors and completions, 16 bytes each.
//!
//! A TX or RX queue is three pieces of host memory: a descriptor ring the
//! driver fills ([`TxDesc`] or [`RxDesc`], managed by the three-index
//! protocol of [`crate::ring`]), a completion ring of the same length the
//! device fills ([`Completion`]), and a [`crate::abi::QueueStateBlock`].
//!
//! Completion rings use a color bit instead of a producer index: the device
//! writes the completion at free-running index `i` with color
//! [`expected_color`]`(i, order)`, which flips every lap, and the driver
//! consumes while the color matches what it expects. The driver publishes how
//! far it has consumed in the queue state block's `cq_head`, and the device
//! never writes a completion more than one lap ahead of it.

use super::{abi_enum, assert_layout, check_reserved_bits, check_span, read_prefix, AbiError, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of every descriptor and completion.
pub const DESC_SIZE: usize = 16;
/// Smallest frame a TX descriptor may carry: an Ethernet header, no FCS.
pub const MIN_FRAME_LEN: u16 = 14;
/// Largest frame (jumbo), without FCS.
pub const MAX_FRAME_LEN: u16 = 9216;
/// Whether `len` bytes is a frame the ABI carries
/// ([`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN`]).
pub fn frame_len_ok(len: usize) -> bool {
    (usize::from(MIN_FRAME_LEN)..=usize::from(MAX_FRAME_LEN)).contains(&len)
}

/// Smallest RX buffer the device accepts.
pub const MIN_RX_BUF_LEN: u16 = 64;
/// LIF number a completion carries for traffic from the uplink port.
pub const LIF_UPLINK: u16 = 0xffff;

/// TX descriptor flags.
pub mod tx_flags {
    /// Insert an 802.1Q tag with `vlan_tci`.
    pub const VLAN_INSERT: u16 = 1 << 0;
    /// Reserved for L4 (TCP/UDP) checksum insertion: accepted, and in
    /// ABI 1 without effect (the device inserts no checksum).
    pub const CSUM_L4: u16 = 1 << 1;
    /// Write a completion once this descriptor is done (the head write-back
    /// always happens; a completion is for an interrupt or a timestamp).
    pub const COMPLETE: u16 = 1 << 2;
    /// Every defined bit.
    pub const ALL: u16 = VLAN_INSERT | CSUM_L4 | COMPLETE;
}

/// A transmit descriptor: one frame in one buffer.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct TxDesc {
    /// IOVA of the frame's first byte.
    pub addr: U64,
    /// Frame length in bytes, [`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN`].
    pub len: U16,
    /// [`tx_flags`].
    pub flags: U16,
    /// 802.1Q TCI to insert; zero unless `VLAN_INSERT`.
    pub vlan_tci: U16,
    /// Reserved, zero.
    pub rsvd: U16,
}
assert_layout!(TxDesc, size = 16, addr @ 0, len @ 8, flags @ 10, vlan_tci @ 12, rsvd @ 14);

impl TxDesc {
    /// A descriptor for `len` bytes at `addr`.
    pub fn new(addr: u64, len: u16, flags: u16) -> Self {
        TxDesc {
            addr: addr.into(),
            len: len.into(),
            flags: flags.into(),
            vlan_tci: 0.into(),
            rsvd: 0.into(),
        }
    }

    /// Parse and validate a descriptor from raw ring bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, AbiError> {
        let d: TxDesc = read_prefix("tx_desc", bytes)?;
        d.validate()?;
        Ok(d)
    }

    /// Check lengths, flags and reserved fields (not the address: only the
    /// device knows which IOVAs the function mapped).
    pub fn validate(&self) -> Result<(), AbiError> {
        let len = self.len.get();
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&len) {
            return Err(AbiError::OutOfRange {
                field: "tx_desc.len",
                value: len.into(),
                reason: "a frame is 14..=9216 bytes",
            });
        }
        let flags = self.flags.get();
        check_reserved_bits("tx_desc.flags", flags.into(), tx_flags::ALL.into())?;
        if flags & tx_flags::VLAN_INSERT == 0 && self.vlan_tci.get() != 0 {
            return Err(AbiError::ReservedBits {
                field: "tx_desc.vlan_tci",
                value: self.vlan_tci.get().into(),
            });
        }
        check_reserved_bits("tx_desc.rsvd", self.rsvd.get().into(), 0)?;
        check_span("tx_desc.addr", self.addr.get(), len.into())
    }
}

/// A receive descriptor: one empty buffer the device may fill.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct RxDesc {
    /// IOVA of the buffer.
    pub addr: U64,
    /// Buffer capacity in bytes, at least [`MIN_RX_BUF_LEN`].
    pub len: U16,
    /// Reserved, zero.
    pub flags: U16,
    /// Reserved, zero.
    pub rsvd: U32,
}
assert_layout!(RxDesc, size = 16, addr @ 0, len @ 8, flags @ 10, rsvd @ 12);

impl RxDesc {
    /// A descriptor for a buffer of `len` bytes at `addr`.
    pub fn new(addr: u64, len: u16) -> Self {
        RxDesc {
            addr: addr.into(),
            len: len.into(),
            flags: 0.into(),
            rsvd: 0.into(),
        }
    }

    /// Parse and validate a descriptor from raw ring bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, AbiError> {
        let d: RxDesc = read_prefix("rx_desc", bytes)?;
        d.validate()?;
        Ok(d)
    }

    /// Check length and reserved fields.
    pub fn validate(&self) -> Result<(), AbiError> {
        if self.len.get() < MIN_RX_BUF_LEN {
            return Err(AbiError::OutOfRange {
                field: "rx_desc.len",
                value: self.len.get().into(),
                reason: "an RX buffer holds at least 64 bytes",
            });
        }
        check_reserved_bits("rx_desc.flags", self.flags.get().into(), 0)?;
        check_reserved_bits("rx_desc.rsvd", self.rsvd.get().into(), 0)?;
        check_span("rx_desc.addr", self.addr.get(), self.len.get().into())
    }
}

abi_enum! {
    /// Status of a TX/RX completion. Anything but `Ok` names why the queue
    /// stopped; the queue is then in the error state until reset.
    pub enum CompStatus: u8, "completion.status" {
        /// Done.
        Ok = 0,
        /// The descriptor's buffer lies outside the memory the function
        /// mapped for DMA.
        DmaFault = 1,
        /// The descriptor failed validation (length, flags, reserved bits).
        BadDescriptor = 2,
        /// `outgoing_tail` is more than a ring ahead of `head`, or moved back.
        BadOutgoingTail = 3,
        /// The queue was flushed by a reset or destroy; the descriptor was not
        /// processed.
        Flushed = 4,
        /// The device stopped the function after an internal error (a bug,
        /// not the host's doing): reset the function (mailbox `Reset` or an
        /// FLR) to bring it back. ABI 1.1.
        DeviceError = 5,
    }
}

/// Completion flags (the `flags` byte).
pub mod comp_flags {
    /// Color bit: flips every lap of the completion ring.
    pub const COLOR: u8 = 1 << 7;
    /// Mask of the meter color the frame was marked with.
    pub const METER_MASK: u8 = 0b11;
    /// The frame was truncated to the RX buffer (`len` is the buffer size).
    pub const TRUNCATED: u8 = 1 << 2;
    /// Every defined bit.
    pub const ALL: u8 = COLOR | METER_MASK | TRUNCATED;
}

abi_enum! {
    /// Meter color a frame was marked with, in completion flags bits 0..2.
    pub enum MeterColor: u8, "completion.flags.meter" {
        /// No meter applied.
        None = 0,
        /// Within the committed rate and burst.
        Green = 1,
        /// Above the committed, within the peak (trTCM) or excess (srTCM) burst.
        Yellow = 2,
        /// Above the peak rate or out of burst: the LIF's policy applies.
        Red = 3,
    }
}

/// RX packet-type flags (the `pkt_flags` field), from the pipeline's parser.
pub mod pkt_flags {
    /// An 802.1Q tag was present.
    pub const VLAN: u16 = 1 << 0;
    /// An IPv4 header (version 4, header length at least 20, total length
    /// within the frame).
    pub const IPV4: u16 = 1 << 1;
    /// An IPv6 header (version 6, payload length within the frame).
    pub const IPV6: u16 = 1 << 2;
    /// A TCP header directly after the IP header (IPv4: in the first
    /// fragment only).
    pub const TCP: u16 = 1 << 3;
    /// A UDP header directly after the IP header (IPv4: in the first
    /// fragment only).
    pub const UDP: u16 = 1 << 4;
    /// The L4 checksum was verified good.
    pub const L4_CSUM_OK: u16 = 1 << 5;
    /// Every defined bit.
    pub const ALL: u16 = (1 << 6) - 1;
}

/// A completion, written by the device into a queue's completion ring.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Completion {
    /// [`CompStatus`].
    pub status: u8,
    /// [`comp_flags`]: color, meter color, truncation.
    pub flags: u8,
    /// RX: LIF the frame came from ([`LIF_UPLINK`] for the wire). TX: the
    /// queue's LIF.
    pub lif: U16,
    /// Free-running ring index of the descriptor this completes (TX: a
    /// descriptor with [`tx_flags::COMPLETE`]).
    pub index: U32,
    /// RX: bytes written to the buffer. TX: zero.
    pub len: U16,
    /// RX: [`pkt_flags`]. TX: zero.
    pub pkt_flags: U16,
    /// Low 32 bits of the device clock (ns) when the frame left the
    /// pipeline.
    pub timestamp: U32,
}
assert_layout!(Completion, size = 16, status @ 0, flags @ 1, lif @ 2, index @ 4, len @ 8, pkt_flags @ 10, timestamp @ 12);

/// Color the completion at free-running index `index` of a ring of
/// `1 << order` entries carries: 1 on the first lap, 0 on the second, ...
#[inline]
pub const fn expected_color(index: u32, order: u8) -> bool {
    (index >> order) & 1 == 0
}

/// A validated completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletionInfo {
    /// [`CompStatus`]: anything but `Ok` means the queue stopped.
    pub status: CompStatus,
    /// The color bit ([`expected_color`]).
    pub color: bool,
    /// The meter color the frame was marked with.
    pub meter: MeterColor,
    /// RX: the frame was longer than the buffer; `len` bytes of it were
    /// written.
    pub truncated: bool,
    /// RX: LIF the frame came from ([`LIF_UPLINK`] for the wire). TX and
    /// error completions: the queue's LIF.
    pub lif: u16,
    /// Free-running descriptor-ring index of the descriptor completed.
    pub index: u32,
    /// RX: bytes written to the buffer. TX: zero.
    pub len: u16,
    /// RX: [`pkt_flags`]. TX: zero.
    pub pkt_flags: u16,
    /// Low 32 bits of the device clock, ns.
    pub timestamp: u32,
}

impl Completion {
    /// The color bit.
    #[inline]
    pub fn color(&self) -> bool {
        self.flags & comp_flags::COLOR != 0
    }

    /// Parse and validate a completion the device wrote.
    pub fn parse(bytes: &[u8]) -> Result<CompletionInfo, AbiError> {
        let c: Completion = read_prefix("completion", bytes)?;
        c.validate()
    }

    /// Validate: status and flag values, length bound.
    pub fn validate(&self) -> Result<CompletionInfo, AbiError> {
        let status = CompStatus::from_raw(self.status)?;
        check_reserved_bits("completion.flags", self.flags.into(), comp_flags::ALL.into())?;
        check_reserved_bits(
            "completion.pkt_flags",
            self.pkt_flags.get().into(),
            pkt_flags::ALL.into(),
        )?;
        if self.len.get() > MAX_FRAME_LEN {
            return Err(AbiError::OutOfRange {
                field: "completion.len",
                value: self.len.get().into(),
                reason: "longer than the largest frame",
            });
        }
        Ok(CompletionInfo {
            status,
            color: self.color(),
            meter: MeterColor::from_raw(self.flags & comp_flags::METER_MASK)?,
            truncated: self.flags & comp_flags::TRUNCATED != 0,
            lif: self.lif.get(),
            index: self.index.get(),
            len: self.len.get(),
            pkt_flags: self.pkt_flags.get(),
            timestamp: self.timestamp.get(),
        })
    }
}

impl CompletionInfo {
    /// Encode as the device writes it.
    pub fn encode(&self) -> Completion {
        let mut flags = self.meter.raw();
        if self.color {
            flags |= comp_flags::COLOR;
        }
        if self.truncated {
            flags |= comp_flags::TRUNCATED;
        }
        Completion {
            status: self.status.raw(),
            flags,
            lif: self.lif.into(),
            index: self.index.into(),
            len: self.len.into(),
            pkt_flags: self.pkt_flags.into(),
            timestamp: self.timestamp.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tx_desc_validation_names_fields() {
        let ok = TxDesc::new(0x1000, 64, tx_flags::COMPLETE);
        assert_eq!(TxDesc::parse(ok.as_bytes()), Ok(ok));

        let short = TxDesc::new(0x1000, 13, 0);
        assert!(matches!(
            short.validate(),
            Err(AbiError::OutOfRange {
                field: "tx_desc.len",
                value: 13,
                ..
            })
        ));

        let bad_flags = TxDesc::new(0x1000, 64, 1 << 9);
        assert!(matches!(
            bad_flags.validate(),
            Err(AbiError::ReservedBits {
                field: "tx_desc.flags",
                ..
            })
        ));

        let mut stray_tci = TxDesc::new(0x1000, 64, 0);
        stray_tci.vlan_tci = 5.into();
        assert!(matches!(
            stray_tci.validate(),
            Err(AbiError::ReservedBits {
                field: "tx_desc.vlan_tci",
                ..
            })
        ));

        let wrap = TxDesc::new(u64::MAX - 10, 64, 0);
        assert!(matches!(
            wrap.validate(),
            Err(AbiError::OutOfRange {
                field: "tx_desc.addr",
                ..
            })
        ));

        assert_eq!(
            TxDesc::parse(&[0u8; 15]),
            Err(AbiError::Truncated {
                what: "tx_desc",
                need: 16,
                got: 15
            })
        );
    }

    #[test]
    fn rx_desc_validation() {
        assert!(RxDesc::new(0, 2048).validate().is_ok());
        assert!(matches!(
            RxDesc::new(0, 63).validate(),
            Err(AbiError::OutOfRange {
                field: "rx_desc.len",
                ..
            })
        ));
        let mut d = RxDesc::new(0, 2048);
        d.rsvd = 1.into();
        assert!(matches!(
            d.validate(),
            Err(AbiError::ReservedBits {
                field: "rx_desc.rsvd",
                ..
            })
        ));
    }

    #[test]
    fn completion_round_trip() {
        let info = CompletionInfo {
            status: CompStatus::Ok,
            color: true,
            meter: MeterColor::Yellow,
            truncated: false,
            lif: LIF_UPLINK,
            index: 77,
            len: 1514,
            pkt_flags: pkt_flags::IPV4 | pkt_flags::UDP,
            timestamp: 99,
        };
        assert_eq!(Completion::parse(info.encode().as_bytes()), Ok(info));
        let mut bad = info.encode();
        bad.status = 200;
        assert!(matches!(
            bad.validate(),
            Err(AbiError::InvalidValue {
                field: "completion.status",
                value: 200
            })
        ));
    }

    #[test]
    fn colors_flip_every_lap() {
        assert!(expected_color(0, 4));
        assert!(expected_color(15, 4));
        assert!(!expected_color(16, 4));
        assert!(expected_color(32, 4));
        // Free-running indices wrap at 2^32, a multiple of every ring size.
        assert_eq!(expected_color(u32::MAX, 4), !expected_color(0, 4));
    }

    proptest! {
        #[test]
        fn desc_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = TxDesc::parse(&bytes);
            let _ = RxDesc::parse(&bytes);
            if let Ok(c) = Completion::parse(&bytes) {
                // What parses, re-encodes to the same bytes.
                let again = c.encode();
                prop_assert_eq!(again.as_bytes(), &bytes[..16]);
            }
        }
    }
}
