//! PCI identity and the BAR0 register map.
//!
//! Each PCI function (the PF and every VF) has its own BAR0:
//!
//! | offset            | size            | what                                   | access        |
//! |-------------------|-----------------|----------------------------------------|---------------|
//! | `0x0000`          | 4 KiB           | identity page ([`Identity`])           | read-only     |
//! | `0x1000`          | 4 KiB           | device-command mailbox ([`DevCmdRegs`])| read/write    |
//! | `0x2000`          | 4 KiB           | interrupt control blocks ([`IntrCtrl`], 32 B per MSI-X vector) | read/write |
//! | `0x3000`          | 2 KiB + 2 KiB   | MSI-X table (16 B per vector), then PBA at `0x3800` | per PCI spec |
//! | `0x4000`          | 16 KiB          | reserved (reads zero, writes ignored)  |               |
//! | `0x8000 + n*4K`   | 4 KiB per LIF   | doorbell page of the function's LIF `n` | write-only   |
//!
//! BAR0's size is the next power of two at or above
//! `DOORBELL_OFFSET + nlifs * DOORBELL_STRIDE`. Doorbell pages are 4 KiB so
//! that each can be mapped into exactly one process, and a function's BAR
//! holds only its own LIFs' pages: a VF cannot even address another's
//! doorbells. The identity page repeats every offset, so a driver reads the
//! map from the device rather than trusting these constants.

mod identity;

pub use identity::*;

use super::{abi_enum, assert_layout, check_reserved_bits, read_prefix, AbiError, ABI_MAJOR, ABI_MINOR, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// PCI vendor ID the simulator presents. Not PCI-SIG assigned: fairnic is a
/// project, not a silicon vendor. The driver's ID table is configurable, so
/// lab hardware with other IDs binds too.
pub const PCI_VENDOR_ID: u16 = 0xf41c;
/// PCI device ID of the physical function.
pub const PCI_DEVICE_ID_PF: u16 = 0x0001;
/// PCI device ID of a virtual function (also in the PF's SR-IOV capability).
pub const PCI_DEVICE_ID_VF: u16 = 0x0002;
/// PCI class code: network controller, Ethernet (0x02_00_00).
pub const PCI_CLASS_ETHERNET: u32 = 0x02_00_00;

/// Identity page offset in BAR0.
pub const IDENTITY_OFFSET: u64 = 0x0000;
/// Device-command mailbox offset in BAR0.
pub const DEVCMD_OFFSET: u64 = 0x1000;
/// Interrupt control blocks offset in BAR0.
pub const INTR_CTRL_OFFSET: u64 = 0x2000;
/// Size of one interrupt control block.
pub const INTR_CTRL_STRIDE: u64 = 32;
/// MSI-X table offset in BAR0 (16 bytes per vector, PCI layout).
pub const MSIX_TABLE_OFFSET: u64 = 0x3000;
/// MSI-X pending-bit array offset in BAR0.
pub const MSIX_PBA_OFFSET: u64 = 0x3800;
/// First doorbell page in BAR0.
pub const DOORBELL_OFFSET: u64 = 0x8000;
/// Distance between two LIFs' doorbell pages: one 4 KiB page each.
pub const DOORBELL_STRIDE: u64 = 0x1000;
/// Most MSI-X vectors a function may have (limited by the 4 KiB interrupt
/// control page and the 2 KiB MSI-X table).
pub const MAX_INTRS: u16 = 128;
/// Most LIFs one function may own.
pub const MAX_LIFS_PER_FUNCTION: u16 = 256;

/// The identity page's signature, `"FNIC"` in memory order.
pub const SIGNATURE: u32 = u32::from_le_bytes(*b"FNIC");

/// Smallest ring a queue may have: `1 << MIN_RING_ORDER` descriptors.
pub const MIN_RING_ORDER: u8 = 2;
/// Largest ring a queue may have: `1 << MAX_RING_ORDER` descriptors.
pub const MAX_RING_ORDER: u8 = 15;

/// BAR0 size for a function with `nlifs` LIFs (power of two, per PCI).
pub const fn bar0_size(nlifs: u16) -> u64 {
    (DOORBELL_OFFSET + nlifs as u64 * DOORBELL_STRIDE).next_power_of_two()
}

/// Offset in BAR0 of LIF `lif_slot`'s doorbell page (`lif_slot` counts the
/// function's own LIFs from 0).
pub const fn doorbell_page_offset(lif_slot: u16) -> u64 {
    DOORBELL_OFFSET + lif_slot as u64 * DOORBELL_STRIDE
}

/// Most queues of one type a LIF may have (a doorbell page holds 256 TX and
/// 256 RX slots).
pub const MAX_QUEUES_PER_TYPE: u16 = 256;

/// Offset within a LIF's doorbell page of queue `(qtype, qindex)`'s
/// doorbell slot; `None` for the admin queue (its doorbell is
/// [`devcmd::ADMIN_DOORBELL`]) or an index past [`MAX_QUEUES_PER_TYPE`].
pub const fn doorbell_offset_in_page(qtype: QueueType, qindex: u16) -> Option<u64> {
    if qindex >= MAX_QUEUES_PER_TYPE {
        return None;
    }
    match qtype {
        QueueType::Admin => None,
        QueueType::Tx => Some(8 * qindex as u64),
        QueueType::Rx => Some(0x800 + 8 * qindex as u64),
    }
}

/// Offset in BAR0 of MSI-X vector `vector`'s interrupt control block.
pub const fn intr_ctrl_offset(vector: u16) -> u64 {
    INTR_CTRL_OFFSET + vector as u64 * INTR_CTRL_STRIDE
}

abi_enum! {
    /// What kind of PCI function a BAR0 belongs to.
    pub enum FunctionKind: u8, "identity.function_kind" {
        /// The physical function: the management function, the only one
        /// allowed to change meters, other LIFs and the pipeline.
        Pf = 0,
        /// An SR-IOV virtual function.
        Vf = 1,
    }
}

/// Capability bits in [`Identity::capabilities`].
pub mod caps {
    /// Descriptor rings follow the three-index protocol with a shared
    /// `outgoing_tail` (always set in ABI 1).
    pub const THREE_INDEX_RING: u64 = 1 << 0;
    /// The device writes `head` back into the queue state block.
    pub const HEAD_WRITEBACK: u64 = 1 << 1;
    /// The device sets the fetch flag while it fetches, so the driver may
    /// skip doorbells.
    pub const DOORBELL_SUPPRESSION: u64 = 1 << 2;
    /// The device honours the consumer flag (no interrupt while polling).
    pub const CONSUMER_FLAG: u64 = 1 << 3;
    /// Per-vector moderation with latency and overflow intervals.
    pub const MODERATION: u64 = 1 << 4;
    /// Adaptive moderation mode.
    pub const ADAPTIVE_MODERATION: u64 = 1 << 5;
    /// Per-LIF meters and regulation.
    pub const METERS: u64 = 1 << 6;
    /// A loadable P4 pipeline.
    pub const P4_PIPELINE: u64 = 1 << 7;
    /// Completions carry a device timestamp (ns, low 32 bits).
    pub const TIMESTAMPS: u64 = 1 << 8;
    /// ABI 1.1: `EventsGet` and its event log.
    pub const EVENTS: u64 = 1 << 9;
    /// ABI 1.1: `FunctionConfigSet/Get` (assigned MACs, spoof check,
    /// trust) and the source checks (`DropSpoofed`, `DropBadSource`).
    pub const FUNCTION_CONFIG: u64 = 1 << 10;
    /// ABI 1.1: `PortStatsGet`.
    pub const PORT_STATS: u64 = 1 << 11;
    /// Every bit ABI 1.1 defines.
    pub const ALL: u64 = (1 << 12) - 1;
}

/// The device-command mailbox at BAR0 + [`DEVCMD_OFFSET`], used for bring-up
/// before the admin queue exists (reset, identify, admin queue init).
///
/// Protocol: the driver writes `cmd`, clears `done`, then writes 1 to
/// `doorbell`. The device executes the command, writes `comp` (and `data`,
/// for commands that return data), then sets `done` to 1. The driver polls
/// `done` with a timeout; a device that never sets it has stopped answering.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct DevCmdRegs {
    /// Write 1 to execute `cmd`.
    pub doorbell: U32,
    /// The device sets 1 when `comp` is valid; the driver clears it.
    pub done: U32,
    /// The admin queue's doorbell: a [`Doorbell`] with queue type Admin and
    /// index 0. (Admin traffic is rare; its doorbell is a trapped register,
    /// not a page of its own.)
    pub admin_doorbell: U64,
    /// Reserved, zero.
    pub rsvd0: [u8; 48],
    /// The command, an [`super::AdminCmd`] with a [`super::DevCmdOpcode`].
    pub cmd: [u8; 64],
    /// The completion, an [`super::AdminComp`].
    pub comp: [u8; 16],
    /// Reserved, zero.
    pub rsvd1: [u8; 1904],
    /// Data returned by the command (e.g. identify's [`super::DeviceInfo`]).
    pub data: [u8; 2048],
}
assert_layout!(DevCmdRegs, size = 4096, doorbell @ 0x00, done @ 0x04, admin_doorbell @ 0x08, cmd @ 0x40, comp @ 0x80, data @ 0x800);

/// Offsets within the device-command mailbox, from [`DevCmdRegs`]'s layout.
pub mod devcmd {
    use super::DevCmdRegs;
    use core::mem::{offset_of, size_of};

    /// `doorbell` register.
    pub const DOORBELL: u64 = offset_of!(DevCmdRegs, doorbell) as u64;
    /// `done` register.
    pub const DONE: u64 = offset_of!(DevCmdRegs, done) as u64;
    /// Admin queue doorbell register (64-bit).
    pub const ADMIN_DOORBELL: u64 = offset_of!(DevCmdRegs, admin_doorbell) as u64;
    /// Command, 64 bytes.
    pub const CMD: u64 = offset_of!(DevCmdRegs, cmd) as u64;
    /// Completion, 16 bytes.
    pub const COMP: u64 = offset_of!(DevCmdRegs, comp) as u64;
    /// Data area.
    pub const DATA: u64 = offset_of!(DevCmdRegs, data) as u64;
    /// Size of the data area (the last field).
    pub const DATA_LEN: usize = size_of::<DevCmdRegs>() - DATA as usize;
}

abi_enum! {
    /// Interrupt moderation mode of a vector.
    pub enum ModerationMode: u8, "moderation.mode" {
        /// One interrupt per completion.
        Off = 0,
        /// Fixed latency/overflow intervals and frame threshold.
        Fixed = 1,
        /// The device picks the interval from the observed rate.
        Adaptive = 2,
    }
}

/// An interrupt control block, one per MSI-X vector at
/// BAR0 + [`intr_ctrl_offset`]`(vector)`. Moderation settings are changed
/// through the admin queue; the block reflects what the device applied.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct IntrCtrl {
    /// Applied latency interval, µs (consumer active).
    pub latency_interval_us: U32,
    /// Applied overflow interval, µs (consumer inactive).
    pub overflow_interval_us: U32,
    /// Applied frame threshold: interrupt once this many completions wait.
    pub frame_threshold: U32,
    /// Applied [`ModerationMode`] (low byte).
    pub mode: U32,
    /// Write 1 to mask the vector, 0 to unmask. Reads the current mask.
    pub mask: U32,
    /// Reads the interrupts raised and not yet acknowledged; writing `n`
    /// acknowledges `n` of them (bits 0..31), and with bit 31 set the
    /// write also unmasks. Credits are a count for the driver's books:
    /// they never hold an interrupt back.
    pub credits: U32,
    /// Read-only: 1 if an interrupt arrived while the vector was masked and
    /// waits for the unmask (the MSI-X pending bit), else 0.
    pub pending: U32,
    /// Read-only: the interval (µs) adaptive mode currently uses.
    pub current_interval_us: U32,
}
assert_layout!(IntrCtrl, size = 32,
    latency_interval_us @ 0x00, overflow_interval_us @ 0x04, frame_threshold @ 0x08,
    mode @ 0x0c, mask @ 0x10, credits @ 0x14, pending @ 0x18, current_interval_us @ 0x1c);
const _: () = assert!(INTR_CTRL_STRIDE as usize == core::mem::size_of::<IntrCtrl>());
const _: () = assert!(INTR_CTRL_STRIDE * MAX_INTRS as u64 <= 0x1000);
const _: () = assert!(16 * MAX_INTRS as u64 <= MSIX_PBA_OFFSET - MSIX_TABLE_OFFSET);

/// Offsets within an interrupt control block, from [`IntrCtrl`]'s layout.
pub mod intr_ctrl {
    use super::IntrCtrl;
    use core::mem::offset_of;

    /// `mask` register.
    pub const MASK: u64 = offset_of!(IntrCtrl, mask) as u64;
    /// `credits` register.
    pub const CREDITS: u64 = offset_of!(IntrCtrl, credits) as u64;
    /// Bit in a `credits` write that also unmasks the vector.
    pub const CREDITS_UNMASK: u32 = 1 << 31;
}

abi_enum! {
    /// Queue type, in doorbells and queue commands.
    pub enum QueueType: u8, "queue.qtype" {
        /// The admin queue (one per function, created by the mailbox).
        Admin = 0,
        /// Transmit: host to device.
        Tx = 1,
        /// Receive: device to host.
        Rx = 2,
    }
}

/// A doorbell: one 64-bit write that publishes a queue's `outgoing_tail`
/// to the device. Each queue has its own 8-byte slot in its LIF's doorbell
/// page ([`doorbell_offset_in_page`]): TX queue `n` at `8n`, RX queue `n` at
/// `0x800 + 8n`. (A slot per queue, not one register per page, because on a
/// device that polls memory, as the simulator does, a later write to a
/// shared register would hide an earlier one.)
///
/// | bits   | field           |
/// |--------|-----------------|
/// | 0..32  | `outgoing_tail` (free-running index) |
/// | 32..48 | queue index within the LIF and type |
/// | 48..56 | [`QueueType`]    |
/// | 56..64 | reserved, zero   |
///
/// The value repeats the queue's type and index; a value that does not
/// match its slot is ignored and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doorbell {
    /// The queue's type (bits 48..56).
    pub qtype: QueueType,
    /// The queue's index within its LIF and type (bits 32..48).
    pub qindex: u16,
    /// The new `outgoing_tail`, free-running (bits 0..32).
    pub outgoing_tail: u32,
}

impl Doorbell {
    /// The 64-bit value to write.
    pub const fn encode(self) -> u64 {
        self.outgoing_tail as u64 | (self.qindex as u64) << 32 | (self.qtype as u64) << 48
    }

    /// Decode a doorbell write; an undefined queue type or reserved bits
    /// are errors (the device ignores such a write and counts it).
    pub fn decode(value: u64) -> Result<Self, AbiError> {
        check_reserved_bits("doorbell.rsvd", value, (1 << 56) - 1)?;
        Ok(Doorbell {
            qtype: QueueType::from_raw((value >> 48) as u8)?,
            qindex: (value >> 32) as u16,
            outgoing_tail: value as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> DeviceIdentity {
        DeviceIdentity {
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            capabilities: caps::ALL,
            function_id: 2,
            function_kind: FunctionKind::Vf,
            nlifs: 1,
            nqueues: 8,
            nintrs: 4,
            min_ring_order: 4,
            max_ring_order: 12,
            clock_hz: 1_000_000_000,
            device_clock: 12345,
            serial: "FN0001".into(),
            fw_version: "nicsim 0.1.0".into(),
        }
    }

    #[test]
    fn identity_round_trips() {
        let id = sample();
        let page = id.encode();
        assert_eq!(Identity::parse(page.as_bytes()).unwrap(), id);
    }

    #[test]
    fn identity_rejects_wrong_signature_and_version() {
        let mut page = sample().encode();
        page.signature = 0xffff_ffff.into();
        assert!(matches!(
            Identity::parse(page.as_bytes()),
            Err(AbiError::BadSignature { found: 0xffff_ffff, .. })
        ));
        let mut page = sample().encode();
        page.abi_major = 2.into();
        let err = Identity::parse(page.as_bytes()).unwrap_err();
        assert!(matches!(err, AbiError::VersionMismatch { device_major: 2, .. }));
        assert!(err.to_string().starts_with("identity.abi_major"));
    }

    #[test]
    fn identity_rejects_vf_claiming_function_zero() {
        let mut page = sample().encode();
        page.function_id = 0.into();
        let err = Identity::parse(page.as_bytes()).unwrap_err();
        assert!(matches!(
            err,
            AbiError::OutOfRange {
                field: "identity.function_id",
                ..
            }
        ));
    }

    #[test]
    fn identity_truncated_is_an_error() {
        let page = sample().encode();
        let err = Identity::parse(&page.as_bytes()[..100]).unwrap_err();
        assert_eq!(
            err,
            AbiError::Truncated {
                what: "identity",
                need: 128,
                got: 100
            }
        );
    }

    #[test]
    fn ascii_fields_are_sanitised() {
        assert_eq!(ascii_field(b"ab\x1b[2Jc\0zz"), "ab?[2Jc");
        assert_eq!(&pad_ascii::<4>("abcdef"), b"abcd");
    }

    #[test]
    fn bar0_map_is_consistent() {
        assert_eq!(bar0_size(1), 0x10000);
        assert_eq!(bar0_size(8), 0x10000);
        assert_eq!(bar0_size(9), 0x20000);
        assert_eq!(doorbell_page_offset(3), 0xb000);
        assert_eq!(intr_ctrl_offset(127), 0x2fe0);
        assert_eq!(doorbell_offset_in_page(QueueType::Tx, 3), Some(24));
        assert_eq!(doorbell_offset_in_page(QueueType::Rx, 255), Some(0xff8));
        assert_eq!(doorbell_offset_in_page(QueueType::Rx, 256), None);
        assert_eq!(doorbell_offset_in_page(QueueType::Admin, 0), None);
    }

    #[test]
    fn doorbell_round_trips_and_rejects_reserved() {
        let db = Doorbell {
            qtype: QueueType::Rx,
            qindex: 7,
            outgoing_tail: 0xdead_beef,
        };
        assert_eq!(db.encode(), 0x0002_0007_dead_beef);
        assert_eq!(Doorbell::decode(db.encode()), Ok(db));
        assert!(matches!(
            Doorbell::decode(1 << 60),
            Err(AbiError::ReservedBits {
                field: "doorbell.rsvd",
                ..
            })
        ));
        assert!(matches!(
            Doorbell::decode(9 << 48),
            Err(AbiError::InvalidValue {
                field: "queue.qtype",
                value: 9
            })
        ));
    }

    proptest! {
        #[test]
        fn identity_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Identity::parse(&bytes);
        }

        #[test]
        fn doorbell_decode_never_panics(v in any::<u64>()) {
            if let Ok(db) = Doorbell::decode(v) {
                prop_assert_eq!(db.encode(), v);
            }
        }
    }
}
