//! Admin and device-command formats: 64-byte commands, 16-byte completions,
//! status codes, and the structures commands read or write by DMA.
//!
//! The device-command mailbox ([`super::DevCmdRegs`]) carries
//! [`DevCommand`]s during bring-up; afterwards the admin queue (a three-index
//! ring of [`AdminCmd`] with a completion ring of [`AdminComp`]) carries
//! [`AdminCommand`]s. Both share the 64-byte [`AdminCmd`] envelope:
//!
//! | offset | field    | meaning |
//! |--------|----------|---------|
//! | 0      | `opcode` | [`AdminOpcode`] or [`DevCmdOpcode`] |
//! | 1      | `flags`  | reserved, zero |
//! | 2      | `tag`    | echoed in the completion |
//! | 4      | `lif`    | the LIF the command addresses (device-wide number) |
//! | 6      | `rsvd`   | zero |
//! | 8      | `body`   | 56 bytes, per opcode; unused bytes zero |
//!
//! Every command completes with an [`AdminStatus`]. A command the device
//! cannot parse completes with `Invalid` or `UnknownOpcode`; it never stops
//! the queue. Commands that change meters, the pipeline, or another
//! function's LIFs complete with `Permission` when a VF sends them.

use super::{
    abi_enum, assert_layout, check_aligned, check_reserved_bits, check_reserved_bytes, check_span, read_prefix,
    AbiError, ModerationMode, QueueType, MAX_RING_ORDER, MIN_RING_ORDER, QUEUE_STATE_ALIGN, U16, U32, U64,
};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of a command.
pub const ADMIN_CMD_SIZE: usize = 64;
/// Size of a command body.
pub const ADMIN_BODY_SIZE: usize = 56;
/// Size of a completion.
pub const ADMIN_COMP_SIZE: usize = 16;
/// Largest buffer an admin command may name for DMA.
pub const MAX_ADMIN_DMA_LEN: u32 = 1 << 20;
/// Largest pipeline program image.
pub const MAX_PIPELINE_LEN: u32 = 16 << 20;
/// Longest moderation interval, µs (1 s).
pub const MAX_INTERVAL_US: u32 = 1_000_000;
/// Largest moderation frame threshold.
pub const MAX_FRAME_THRESHOLD: u32 = 1 << 16;
/// `lif` value meaning "no particular LIF" (device-wide commands).
pub const LIF_NONE: u16 = 0xffff;

/// The 64-byte command envelope.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct AdminCmd {
    pub opcode: u8,
    pub flags: u8,
    pub tag: U16,
    pub lif: U16,
    pub rsvd: U16,
    pub body: [u8; ADMIN_BODY_SIZE],
}
assert_layout!(AdminCmd, size = ADMIN_CMD_SIZE, opcode @ 0, flags @ 1, tag @ 2, lif @ 4, rsvd @ 6, body @ 8);

/// The 16-byte completion.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct AdminComp {
    /// [`AdminStatus`].
    pub status: u8,
    /// Bit 7: color (see [`super::expected_color`]); others reserved.
    pub flags: u8,
    /// The command's tag.
    pub tag: U16,
    /// Small result: a new LIF number, a queue index, a count of entries.
    pub value: U32,
    /// Wide result: command specific (e.g. bytes written by DMA).
    pub data: U64,
}
assert_layout!(AdminComp, size = ADMIN_COMP_SIZE, status @ 0, flags @ 1, tag @ 2, value @ 4, data @ 8);

abi_enum! {
    /// Outcome of a command.
    pub enum AdminStatus: u8, "admin_comp.status" {
        /// Done.
        Ok = 0,
        /// Try again later (resource busy for a moment).
        Again = 1,
        /// A field is malformed or out of range.
        Invalid = 2,
        /// The opcode is not defined.
        UnknownOpcode = 3,
        /// Only the PF may do this.
        Permission = 4,
        /// The LIF, queue, vector or table entry does not exist.
        NoEntry = 5,
        /// It exists already.
        Exists = 6,
        /// Out of LIFs, queues, table entries or memory.
        NoSpace = 7,
        /// A buffer the command names is outside the function's DMA mappings.
        DmaFault = 8,
        /// The object is in a state that does not allow this.
        Busy = 9,
        /// Defined, but this device does not implement it.
        Unsupported = 10,
        /// The device failed; see its log.
        Internal = 11,
        /// The P4 program image was rejected (details in the device log and
        /// the completion's `value`: the byte offset of the problem).
        BadProgram = 12,
    }
}

impl AdminComp {
    /// A completion for `tag`.
    pub fn new(status: AdminStatus, tag: u16, value: u32, data: u64, color: bool) -> Self {
        AdminComp {
            status: status.raw(),
            flags: if color { 0x80 } else { 0 },
            tag: tag.into(),
            value: value.into(),
            data: data.into(),
        }
    }

    /// The color bit.
    pub fn color(&self) -> bool {
        self.flags & 0x80 != 0
    }

    /// Validate a completion the device wrote.
    pub fn parse(bytes: &[u8]) -> Result<(AdminStatus, AdminComp), AbiError> {
        let c: AdminComp = read_prefix("admin_comp", bytes)?;
        check_reserved_bits("admin_comp.flags", c.flags.into(), 0x80)?;
        Ok((AdminStatus::from_raw(c.status)?, c))
    }
}

abi_enum! {
    /// Admin queue opcodes.
    pub enum AdminOpcode: u8, "admin.opcode" {
        /// Nothing; completes `Ok` (a liveness check).
        Nop = 0x00,
        /// Write a [`DeviceInfo`] to the buffer.
        Identify = 0x01,
        /// Create a LIF on the sending function; `value` = its LIF number,
        /// `data` = its doorbell slot.
        LifCreate = 0x10,
        /// Destroy the LIF and its queues (their descriptors complete
        /// `Flushed`).
        LifDestroy = 0x11,
        /// Write an array of [`LifInfo`] (PF: every LIF; VF: its own);
        /// `value` = count.
        LifList = 0x12,
        /// `value` = the queue index.
        QueueCreate = 0x20,
        /// Destroy a queue; its pending descriptors complete `Flushed`.
        QueueDestroy = 0x21,
        /// Take a queue out of the error state and restart it empty.
        QueueReset = 0x22,
        /// Write the applied [`MeterConfig`].
        MeterGet = 0x30,
        /// PF only: set a LIF's [`MeterConfig`] (any function's LIF).
        MeterSet = 0x31,
        /// Write the applied [`Moderation`].
        ModerationGet = 0x40,
        /// Set a vector's [`Moderation`]; the interrupt control block
        /// shows what was applied.
        ModerationSet = 0x41,
        /// Write the LIF's [`LifStats`].
        StatsGet = 0x50,
        /// PF only: write the uplink's [`LifStats`] (`lif` = `LIF_NONE`):
        /// frames from the wire and where each ended, frames sent to it.
        PortStatsGet = 0x51,
        /// PF only: one chunk of a pipeline program image.
        PipelineLoad = 0x60,
        /// PF only: add a [`TableEntry`] to a table of the loaded program.
        TableEntryAdd = 0x61,
        /// PF only: delete the [`TableEntry`] with this key (and priority).
        TableEntryDel = 0x62,
        /// PF only: write the device's [`DeviceEvent`]s from a sequence
        /// number on; `value` = events written, `data` = the sequence
        /// number to ask from next.
        EventsGet = 0x70,
        /// PF only: set a function's LIF slot's [`FunctionConfig`] (MAC,
        /// spoof check, trust), as `ip link set DEV vf N mac M spoofchk on`.
        FunctionConfigSet = 0x71,
        /// PF only: write a slot's applied [`FunctionConfig`].
        FunctionConfigGet = 0x72,
    }
}

impl AdminOpcode {
    /// Whether only the PF may send this command (for any LIF).
    pub fn pf_only(self) -> bool {
        matches!(
            self,
            AdminOpcode::MeterSet
                | AdminOpcode::PipelineLoad
                | AdminOpcode::TableEntryAdd
                | AdminOpcode::TableEntryDel
                | AdminOpcode::PortStatsGet
                | AdminOpcode::EventsGet
                | AdminOpcode::FunctionConfigSet
                | AdminOpcode::FunctionConfigGet
        )
    }
}

abi_enum! {
    /// Device-command mailbox opcodes (bring-up, before the admin queue).
    pub enum DevCmdOpcode: u8, "devcmd.opcode" {
        /// Reset the function: every queue is destroyed, every LIF of the
        /// function removed, moderation back to defaults.
        Reset = 0x80,
        /// Write a [`DeviceInfo`] into the mailbox data area.
        Identify = 0x81,
        /// Create the function's admin queue (body: [`QueueCreate`], qtype
        /// Admin).
        AdminQueueInit = 0x82,
    }
}

/// A host buffer a command reads or writes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct DmaRef {
    pub addr: U64,
    pub len: U32,
    pub rsvd: U32,
}
assert_layout!(DmaRef, size = 16, addr @ 0, len @ 8, rsvd @ 12);

impl DmaRef {
    pub fn new(addr: u64, len: u32) -> Self {
        DmaRef {
            addr: addr.into(),
            len: len.into(),
            rsvd: 0.into(),
        }
    }

    fn check(&self, field: &'static str, rsvd_field: &'static str) -> Result<(), AbiError> {
        let len = self.len.get();
        if len == 0 || len > MAX_ADMIN_DMA_LEN {
            return Err(AbiError::OutOfRange {
                field,
                value: len.into(),
                reason: "a DMA buffer is 1 byte to 1 MiB",
            });
        }
        check_span(field, self.addr.get(), len.into())?;
        check_reserved_bits(rsvd_field, self.rsvd.get().into(), 0)
    }
}

/// Body of `LifCreate`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct LifCreate {
    /// Human-readable name, ASCII, NUL padded.
    pub name: [u8; 16],
    /// The LIF's MAC address; all zeros: the device assigns
    /// [`lif_mac`]`(lif)`.
    pub mac: [u8; 6],
    pub rsvd: [u8; 2],
}
assert_layout!(LifCreate, size = 24, name @ 0, mac @ 16, rsvd @ 22);

/// The MAC address the device assigns LIF `lif` when `LifCreate` asks for
/// none: locally administered, `02:f4:1c:00:HH:LL`.
pub const fn lif_mac(lif: u16) -> [u8; 6] {
    [0x02, 0xf4, 0x1c, 0x00, (lif >> 8) as u8, lif as u8]
}

/// Queue flags in [`QueueCreate::flags`].
pub mod queue_flags {
    /// Raise interrupts on `intr_vector` for this queue's completions.
    pub const INTR: u8 = 1 << 0;
    /// Every defined bit.
    pub const ALL: u8 = INTR;
}

/// Body of `QueueCreate` and of the mailbox's `AdminQueueInit`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct QueueCreate {
    /// [`QueueType`].
    pub qtype: u8,
    /// log2 of the ring's length in descriptors (the completion ring has
    /// the same length).
    pub ring_order: u8,
    /// [`queue_flags`].
    pub flags: u8,
    pub rsvd0: u8,
    /// MSI-X vector for completions (with `queue_flags::INTR`).
    pub intr_vector: U16,
    pub rsvd1: U16,
    /// IOVA of the descriptor ring; 64-byte aligned.
    pub ring_base: U64,
    /// IOVA of the completion ring; 64-byte aligned.
    pub cq_base: U64,
    /// IOVA of the [`super::QueueStateBlock`]; 128-byte aligned.
    pub state_base: U64,
    /// Free-running index the queue starts at (head = outgoing_tail =
    /// start_index; the completion ring always starts at 0).
    pub start_index: U32,
    pub rsvd2: U32,
}
assert_layout!(QueueCreate, size = 40, qtype @ 0, ring_order @ 1, flags @ 2, intr_vector @ 4,
    ring_base @ 8, cq_base @ 16, state_base @ 24, start_index @ 32);

impl QueueCreate {
    pub fn qtype(&self) -> QueueType {
        QueueType::from_raw(self.qtype).unwrap_or(QueueType::Admin)
    }
}

/// Body of `QueueDestroy`, `QueueReset`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct QueueRef {
    /// [`QueueType`].
    pub qtype: u8,
    pub rsvd0: u8,
    pub qindex: U16,
    /// `QueueReset`: the index the queue restarts at. Otherwise zero.
    pub start_index: U32,
}
assert_layout!(QueueRef, size = 8, qtype @ 0, qindex @ 2, start_index @ 4);

impl QueueRef {
    pub fn qtype(&self) -> QueueType {
        QueueType::from_raw(self.qtype).unwrap_or(QueueType::Admin)
    }
}

abi_enum! {
    /// The resource a meter measures; it fixes the meter's units.
    pub enum MeterResource: u8, "meter.resource" {
        /// Packets: rates in packets/s, bursts in packets.
        Packets = 0,
        /// Frame bytes: rates in bytes/s, bursts in bytes.
        Bytes = 1,
        /// Pipeline cost units the program charges: units/s, units.
        Cost = 2,
        /// Bytes moved by DMA (descriptors, buffers, completions): bytes/s.
        DmaBytes = 3,
        /// Descriptors fetched but not yet completed: a level, not a rate;
        /// `cburst`/`pburst` are the yellow/red thresholds, rates are zero.
        DescInFlight = 4,
    }
}

abi_enum! {
    /// Meter algorithm.
    pub enum MeterMode: u8, "meter.mode" {
        /// No metering: everything is green.
        Off = 0,
        /// Single rate three color marker, RFC 2697: `cir`, `cburst`, `eburst`.
        SrTcm = 1,
        /// Two rate three color marker, RFC 2698: `cir`, `cburst`, `pir`, `pburst`.
        TrTcm = 2,
    }
}

abi_enum! {
    /// What the device does with a LIF whose meter is red.
    pub enum MeterPolicy: u8, "meter.policy" {
        /// Stop fetching the LIF's rings until it is green again; nothing lost.
        Backpressure = 0,
        /// Serve the LIF only when no other LIF has work (work-conserving).
        Deprioritize = 1,
        /// Drop (wire ingress only), counted per LIF and reason.
        Drop = 2,
    }
}

/// Body of `MeterSet` and the structure `MeterGet` writes: thresholds in
/// the units of P4Runtime's `MeterConfig`, per [`MeterResource`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MeterConfig {
    /// [`MeterResource`].
    pub resource: u8,
    /// [`MeterMode`].
    pub mode: u8,
    /// [`MeterPolicy`].
    pub policy: u8,
    pub rsvd0: u8,
    pub rsvd1: U32,
    /// Committed information rate, units/s.
    pub cir: U64,
    /// Committed burst size, units.
    pub cburst: U64,
    /// Peak information rate, units/s (trTCM).
    pub pir: U64,
    /// Peak burst size, units (trTCM).
    pub pburst: U64,
    /// Excess burst size, units (srTCM).
    pub eburst: U64,
}
assert_layout!(MeterConfig, size = 48, resource @ 0, mode @ 1, policy @ 2, cir @ 8, cburst @ 16, pir @ 24, pburst @ 32, eburst @ 40);

impl MeterConfig {
    pub fn resource(&self) -> MeterResource {
        MeterResource::from_raw(self.resource).unwrap_or(MeterResource::Packets)
    }
    pub fn mode(&self) -> MeterMode {
        MeterMode::from_raw(self.mode).unwrap_or(MeterMode::Off)
    }
    pub fn policy(&self) -> MeterPolicy {
        MeterPolicy::from_raw(self.policy).unwrap_or(MeterPolicy::Backpressure)
    }
}

/// Body of `MeterGet`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MeterRef {
    /// [`MeterResource`].
    pub resource: u8,
    pub rsvd: [u8; 7],
    /// Where to write the applied [`MeterConfig`] (at least 48 bytes).
    pub dma: DmaRef,
}
assert_layout!(MeterRef, size = 24, resource @ 0, dma @ 8);

/// Body of `ModerationSet` and the structure `ModerationGet` writes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Moderation {
    /// MSI-X vector.
    pub vector: U16,
    /// [`ModerationMode`].
    pub mode: u8,
    /// Critical event: interrupt at once when a ring on this vector is this
    /// full, percent (1..=100; 0 = never).
    pub high_watermark_pct: u8,
    /// Interval while the consumer is active, µs.
    pub latency_interval_us: U32,
    /// Interval while the consumer is inactive, µs.
    pub overflow_interval_us: U32,
    /// Interrupt once this many completions wait (0 = no threshold).
    pub frame_threshold: U32,
}
assert_layout!(Moderation, size = 16, vector @ 0, mode @ 2, high_watermark_pct @ 3,
    latency_interval_us @ 4, overflow_interval_us @ 8, frame_threshold @ 12);

impl Moderation {
    pub fn mode(&self) -> ModerationMode {
        ModerationMode::from_raw(self.mode).unwrap_or(ModerationMode::Off)
    }
}

/// Body of `ModerationGet`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct ModerationRef {
    pub vector: U16,
    pub rsvd: [u8; 6],
    /// Where to write the applied [`Moderation`] (at least 16 bytes).
    pub dma: DmaRef,
}
assert_layout!(ModerationRef, size = 24, vector @ 0, dma @ 8);

/// Pipeline chunk flags.
pub mod pipeline_flags {
    /// First chunk: discard any partial image.
    pub const FIRST: u8 = 1 << 0;
    /// Last chunk: verify and activate the image.
    pub const LAST: u8 = 1 << 1;
    pub const ALL: u8 = FIRST | LAST;
}

/// Body of `PipelineLoad`: bytes `[offset, offset + dma.len)` of an image
/// of `total_len` bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct PipelineChunk {
    pub dma: DmaRef,
    pub offset: U32,
    pub total_len: U32,
    /// [`pipeline_flags`].
    pub flags: u8,
    pub rsvd: [u8; 7],
}
assert_layout!(PipelineChunk, size = 32, dma @ 0, offset @ 16, total_len @ 20, flags @ 24);

/// Body of `EventsGet`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct EventsRef {
    /// The first sequence number wanted (0: the oldest the device keeps).
    pub from_seq: U64,
    /// Where to write `DeviceEvent`s (as many as fit).
    pub dma: DmaRef,
}
assert_layout!(EventsRef, size = 24, from_seq @ 0, dma @ 8);

abi_enum! {
    /// What happened, in a [`DeviceEvent`].
    pub enum EventKind: u8, "event.kind" {
        /// A LIF was created (`detail`: 0).
        LifCreated = 1,
        /// A LIF was destroyed (`LifDestroy`, or the reset of its function).
        LifDestroyed = 2,
        /// A function was reset; `detail`: [`reset_reason`].
        FunctionReset = 3,
        /// A LIF was created in a slot the PF regulates: the PF's meters
        /// were applied to it. `detail`: bit `1 << resource` for each
        /// [`MeterResource`] applied; the function's count of such
        /// re-applications is in bits 32..64.
        RegulationApplied = 4,
        /// The device stopped a function after an internal error (a bug);
        /// a reset of the function recovers it. `detail`: 0.
        FunctionError = 5,
        /// A LIF's first frame with a spoofed or group source address was
        /// dropped (one event per LIF, per reason: `detail` is the
        /// `LifCounter` that counts them all).
        SourceDropped = 6,
    }
}

/// Why a function was reset, in a `FunctionReset` event's `detail`.
pub mod reset_reason {
    /// The mailbox's `Reset` command.
    pub const MAILBOX: u64 = 1;
    /// A PCI function-level reset (vfio-user `DEVICE_RESET`).
    pub const FLR: u64 = 2;
    /// Its client disconnected.
    pub const CLIENT_GONE: u64 = 3;
    /// The device reset it by itself (fault injection: a firmware restart).
    pub const DEVICE: u64 = 4;
}

/// One event `EventsGet` writes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct DeviceEvent {
    /// Sequence number: consecutive; a gap means the device's event log
    /// (the last [`EVENT_LOG_LEN`]) overflowed.
    pub seq: U64,
    /// Device clock, ns.
    pub device_clock: U64,
    /// [`EventKind`].
    pub kind: u8,
    pub rsvd0: u8,
    /// The function it concerns.
    pub function: U16,
    /// The LIF (`LIF_NONE` if none).
    pub lif: U16,
    /// The LIF's doorbell slot in its function (`0xffff` if none).
    pub slot: U16,
    /// Per kind (see [`EventKind`]).
    pub detail: U64,
}
assert_layout!(DeviceEvent, size = 32, seq @ 0, device_clock @ 8, kind @ 16, function @ 18, lif @ 20, slot @ 22, detail @ 24);

/// Events the device keeps for `EventsGet`.
pub const EVENT_LOG_LEN: usize = 1024;

/// Flags of a [`FunctionConfig`].
pub mod function_config_flags {
    /// `mac` is the slot's assigned MAC: a LIF created in the slot gets it
    /// (clear: the device assigns `lif_mac(lif)`).
    pub const MAC: u8 = 1 << 0;
    /// Drop (and count as `DropSpoofed`) frames the slot's LIF sends with
    /// a source MAC that is not the LIF's own.
    pub const SPOOF_CHECK: u8 = 1 << 1;
    /// The function may choose its LIF's MAC in `LifCreate` (else only the
    /// assigned one, or the device's).
    pub const TRUST: u8 = 1 << 2;
    pub const ALL: u8 = MAC | SPOOF_CHECK | TRUST;
}

/// Body of `FunctionConfigSet`, and what `FunctionConfigGet` writes: the
/// PF's settings for one LIF slot of a function. At reset a VF's slots
/// have spoof check on and trust off, the PF's spoof check off and trust
/// on; no slot has an assigned MAC.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FunctionConfig {
    /// 0 for the PF, `n + 1` for VF `n`.
    pub function: U16,
    /// The LIF slot.
    pub slot: U16,
    /// [`function_config_flags`].
    pub flags: u8,
    pub rsvd0: u8,
    /// The assigned MAC (with `MAC`); unicast.
    pub mac: [u8; 6],
    pub rsvd1: [u8; 4],
}
assert_layout!(FunctionConfig, size = 16, function @ 0, slot @ 2, flags @ 4, mac @ 6, rsvd1 @ 12);

/// Body of `FunctionConfigGet`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct FunctionConfigRef {
    pub function: U16,
    pub slot: U16,
    pub rsvd: [u8; 4],
    /// Where to write the [`FunctionConfig`] (at least 16 bytes).
    pub dma: DmaRef,
}
assert_layout!(FunctionConfigRef, size = 24, function @ 0, slot @ 2, dma @ 8);

/// A decoded, validated admin command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCommand {
    Nop,
    Identify(DmaRef),
    LifCreate(LifCreate),
    LifDestroy,
    LifList(DmaRef),
    QueueCreate(QueueCreate),
    QueueDestroy(QueueRef),
    QueueReset(QueueRef),
    MeterGet(MeterRef),
    MeterSet(MeterConfig),
    ModerationGet(ModerationRef),
    ModerationSet(Moderation),
    StatsGet(DmaRef),
    PortStatsGet(DmaRef),
    PipelineLoad(PipelineChunk),
    TableEntryAdd(DmaRef),
    TableEntryDel(DmaRef),
    EventsGet(EventsRef),
    FunctionConfigSet(FunctionConfig),
    FunctionConfigGet(FunctionConfigRef),
}

/// A decoded, validated device command (mailbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevCommand {
    Reset,
    Identify,
    AdminQueueInit(QueueCreate),
}

/// The envelope's fields other than the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmdHeader {
    pub tag: u16,
    pub lif: u16,
}

/// Read the body struct `B` from the front of `body`; the rest must be zero.
fn body<B>(name: &'static str, rsvd: &'static str, body: &[u8; ADMIN_BODY_SIZE]) -> Result<B, AbiError>
where
    B: FromBytes + KnownLayout + Immutable,
{
    let b: B = read_prefix(name, body)?;
    check_reserved_bytes(rsvd, &body[core::mem::size_of::<B>()..])?;
    Ok(b)
}

fn put<B: IntoBytes + Immutable>(b: &B) -> [u8; ADMIN_BODY_SIZE] {
    let mut out = [0u8; ADMIN_BODY_SIZE];
    let bytes = b.as_bytes();
    out[..bytes.len()].copy_from_slice(bytes);
    out
}

fn envelope(opcode: u8, hdr: CmdHeader, body: [u8; ADMIN_BODY_SIZE]) -> AdminCmd {
    AdminCmd {
        opcode,
        flags: 0,
        tag: hdr.tag.into(),
        lif: hdr.lif.into(),
        rsvd: 0.into(),
        body,
    }
}

fn check_header(cmd: &AdminCmd) -> Result<CmdHeader, AbiError> {
    check_reserved_bits("admin.flags", cmd.flags.into(), 0)?;
    check_reserved_bits("admin.rsvd", cmd.rsvd.get().into(), 0)?;
    Ok(CmdHeader {
        tag: cmd.tag.get(),
        lif: cmd.lif.get(),
    })
}

fn validate_queue_create(q: &QueueCreate, admin: bool) -> Result<(), AbiError> {
    let qtype = QueueType::from_raw(q.qtype)?;
    if admin != (qtype == QueueType::Admin) {
        return Err(AbiError::InvalidValue {
            field: "queue_create.qtype",
            value: q.qtype.into(),
        });
    }
    if !(MIN_RING_ORDER..=MAX_RING_ORDER).contains(&q.ring_order) {
        return Err(AbiError::OutOfRange {
            field: "queue_create.ring_order",
            value: q.ring_order.into(),
            reason: "a ring holds 2^2 to 2^15 descriptors",
        });
    }
    check_reserved_bits("queue_create.flags", q.flags.into(), queue_flags::ALL.into())?;
    check_reserved_bits("queue_create.rsvd0", q.rsvd0.into(), 0)?;
    check_reserved_bits("queue_create.rsvd1", q.rsvd1.get().into(), 0)?;
    check_reserved_bits("queue_create.rsvd2", q.rsvd2.get().into(), 0)?;
    check_aligned("queue_create.ring_base", q.ring_base.get(), 64)?;
    check_aligned("queue_create.cq_base", q.cq_base.get(), 64)?;
    check_aligned("queue_create.state_base", q.state_base.get(), QUEUE_STATE_ALIGN)?;
    Ok(())
}

fn validate_queue_ref(q: &QueueRef, reset: bool) -> Result<(), AbiError> {
    QueueType::from_raw(q.qtype)?;
    check_reserved_bits("queue_ref.rsvd0", q.rsvd0.into(), 0)?;
    if !reset {
        check_reserved_bits("queue_ref.start_index", q.start_index.get().into(), 0)?;
    }
    Ok(())
}

fn validate_meter_config(m: &MeterConfig) -> Result<(), AbiError> {
    let resource = MeterResource::from_raw(m.resource)?;
    let mode = MeterMode::from_raw(m.mode)?;
    MeterPolicy::from_raw(m.policy)?;
    check_reserved_bits("meter.rsvd0", m.rsvd0.into(), 0)?;
    check_reserved_bits("meter.rsvd1", m.rsvd1.get().into(), 0)?;
    let (cir, cburst, pir, pburst, eburst) = (m.cir.get(), m.cburst.get(), m.pir.get(), m.pburst.get(), m.eburst.get());
    // P4Runtime carries these as int64: values above i64::MAX are not
    // representable there and are refused here.
    for (field, v) in [
        ("meter.cir", cir),
        ("meter.cburst", cburst),
        ("meter.pir", pir),
        ("meter.pburst", pburst),
        ("meter.eburst", eburst),
    ] {
        if v > i64::MAX as u64 {
            return Err(AbiError::OutOfRange {
                field,
                value: v,
                reason: "larger than P4Runtime's int64",
            });
        }
    }
    let unused = |field: &'static str, v: u64| check_reserved_bits(field, v, 0);
    match mode {
        MeterMode::Off => {
            unused("meter.cir", cir)?;
            unused("meter.cburst", cburst)?;
            unused("meter.pir", pir)?;
            unused("meter.pburst", pburst)?;
            unused("meter.eburst", eburst)?;
        }
        _ if resource == MeterResource::DescInFlight => {
            // A level meter: yellow at cburst, red at pburst.
            unused("meter.cir", cir)?;
            unused("meter.pir", pir)?;
            unused("meter.eburst", eburst)?;
            if cburst == 0 || pburst < cburst {
                return Err(AbiError::OutOfRange {
                    field: "meter.pburst",
                    value: pburst,
                    reason: "a level meter needs 0 < cburst <= pburst",
                });
            }
        }
        MeterMode::SrTcm => {
            unused("meter.pir", pir)?;
            unused("meter.pburst", pburst)?;
            if cburst == 0 && eburst == 0 {
                return Err(AbiError::OutOfRange {
                    field: "meter.cburst",
                    value: 0,
                    reason: "RFC 2697: CBS or EBS must be larger than 0",
                });
            }
        }
        MeterMode::TrTcm => {
            unused("meter.eburst", eburst)?;
            if pir < cir {
                return Err(AbiError::OutOfRange {
                    field: "meter.pir",
                    value: pir,
                    reason: "RFC 2698: PIR must be at least CIR",
                });
            }
            if cburst == 0 || pburst == 0 {
                return Err(AbiError::OutOfRange {
                    field: if cburst == 0 { "meter.cburst" } else { "meter.pburst" },
                    value: 0,
                    reason: "RFC 2698: CBS and PBS must be larger than 0",
                });
            }
        }
    }
    Ok(())
}

fn validate_moderation(m: &Moderation) -> Result<(), AbiError> {
    ModerationMode::from_raw(m.mode)?;
    if m.high_watermark_pct > 100 {
        return Err(AbiError::OutOfRange {
            field: "moderation.high_watermark_pct",
            value: m.high_watermark_pct.into(),
            reason: "a percentage, 0..=100",
        });
    }
    for (field, v) in [
        ("moderation.latency_interval_us", m.latency_interval_us.get()),
        ("moderation.overflow_interval_us", m.overflow_interval_us.get()),
    ] {
        if v > MAX_INTERVAL_US {
            return Err(AbiError::OutOfRange {
                field,
                value: v.into(),
                reason: "at most 1 s",
            });
        }
    }
    if m.frame_threshold.get() > MAX_FRAME_THRESHOLD {
        return Err(AbiError::OutOfRange {
            field: "moderation.frame_threshold",
            value: m.frame_threshold.get().into(),
            reason: "at most 65536",
        });
    }
    Ok(())
}

fn validate_pipeline_chunk(p: &PipelineChunk) -> Result<(), AbiError> {
    p.dma.check("pipeline.dma.len", "pipeline.dma.rsvd")?;
    check_reserved_bits("pipeline.flags", p.flags.into(), pipeline_flags::ALL.into())?;
    check_reserved_bytes("pipeline.rsvd", &p.rsvd)?;
    let total = p.total_len.get();
    if total == 0 || total > MAX_PIPELINE_LEN {
        return Err(AbiError::OutOfRange {
            field: "pipeline.total_len",
            value: total.into(),
            reason: "an image is 1 byte to 16 MiB",
        });
    }
    let end = u64::from(p.offset.get()) + u64::from(p.dma.len.get());
    if end > u64::from(total) {
        return Err(AbiError::OutOfRange {
            field: "pipeline.offset",
            value: p.offset.get().into(),
            reason: "offset + len is past total_len",
        });
    }
    if p.flags & pipeline_flags::FIRST != 0 && p.offset.get() != 0 {
        return Err(AbiError::OutOfRange {
            field: "pipeline.offset",
            value: p.offset.get().into(),
            reason: "the FIRST chunk starts at offset 0",
        });
    }
    if p.flags & pipeline_flags::LAST != 0 && end != u64::from(total) {
        return Err(AbiError::OutOfRange {
            field: "pipeline.offset",
            value: p.offset.get().into(),
            reason: "the LAST chunk ends at total_len",
        });
    }
    Ok(())
}

impl AdminCommand {
    /// The opcode of this command.
    pub fn opcode(&self) -> AdminOpcode {
        match self {
            AdminCommand::Nop => AdminOpcode::Nop,
            AdminCommand::Identify(_) => AdminOpcode::Identify,
            AdminCommand::LifCreate(_) => AdminOpcode::LifCreate,
            AdminCommand::LifDestroy => AdminOpcode::LifDestroy,
            AdminCommand::LifList(_) => AdminOpcode::LifList,
            AdminCommand::QueueCreate(_) => AdminOpcode::QueueCreate,
            AdminCommand::QueueDestroy(_) => AdminOpcode::QueueDestroy,
            AdminCommand::QueueReset(_) => AdminOpcode::QueueReset,
            AdminCommand::MeterGet(_) => AdminOpcode::MeterGet,
            AdminCommand::MeterSet(_) => AdminOpcode::MeterSet,
            AdminCommand::ModerationGet(_) => AdminOpcode::ModerationGet,
            AdminCommand::ModerationSet(_) => AdminOpcode::ModerationSet,
            AdminCommand::StatsGet(_) => AdminOpcode::StatsGet,
            AdminCommand::PortStatsGet(_) => AdminOpcode::PortStatsGet,
            AdminCommand::EventsGet(_) => AdminOpcode::EventsGet,
            AdminCommand::FunctionConfigSet(_) => AdminOpcode::FunctionConfigSet,
            AdminCommand::FunctionConfigGet(_) => AdminOpcode::FunctionConfigGet,
            AdminCommand::PipelineLoad(_) => AdminOpcode::PipelineLoad,
            AdminCommand::TableEntryAdd(_) => AdminOpcode::TableEntryAdd,
            AdminCommand::TableEntryDel(_) => AdminOpcode::TableEntryDel,
        }
    }

    /// Encode into the 64-byte envelope.
    pub fn encode(&self, hdr: CmdHeader) -> AdminCmd {
        let b = match self {
            AdminCommand::Nop | AdminCommand::LifDestroy => [0; ADMIN_BODY_SIZE],
            AdminCommand::Identify(d)
            | AdminCommand::LifList(d)
            | AdminCommand::StatsGet(d)
            | AdminCommand::PortStatsGet(d)
            | AdminCommand::TableEntryAdd(d)
            | AdminCommand::TableEntryDel(d) => put(d),
            AdminCommand::LifCreate(l) => put(l),
            AdminCommand::QueueCreate(q) => put(q),
            AdminCommand::QueueDestroy(q) | AdminCommand::QueueReset(q) => put(q),
            AdminCommand::MeterGet(m) => put(m),
            AdminCommand::MeterSet(m) => put(m),
            AdminCommand::ModerationGet(m) => put(m),
            AdminCommand::ModerationSet(m) => put(m),
            AdminCommand::PipelineLoad(p) => put(p),
            AdminCommand::EventsGet(e) => put(e),
            AdminCommand::FunctionConfigSet(c) => put(c),
            AdminCommand::FunctionConfigGet(c) => put(c),
        };
        envelope(self.opcode().raw(), hdr, b)
    }

    /// Parse and validate 64 untrusted bytes.
    pub fn parse(bytes: &[u8]) -> Result<(CmdHeader, AdminCommand), AbiError> {
        let cmd: AdminCmd = read_prefix("admin", bytes)?;
        Self::decode(&cmd)
    }

    /// Validate an envelope and decode its body.
    pub fn decode(cmd: &AdminCmd) -> Result<(CmdHeader, AdminCommand), AbiError> {
        let opcode = AdminOpcode::from_raw(cmd.opcode).map_err(|_| AbiError::UnknownOpcode {
            field: "admin.opcode",
            opcode: cmd.opcode,
        })?;
        let hdr = check_header(cmd)?;
        let b = &cmd.body;
        let dma = |name, rsvd, len_field, rsvd_field| -> Result<DmaRef, AbiError> {
            let d: DmaRef = body(name, rsvd, b)?;
            d.check(len_field, rsvd_field)?;
            Ok(d)
        };
        let c = match opcode {
            AdminOpcode::Nop => {
                check_reserved_bytes("admin.nop.body", b)?;
                AdminCommand::Nop
            }
            AdminOpcode::LifDestroy => {
                check_reserved_bytes("admin.lif_destroy.body", b)?;
                AdminCommand::LifDestroy
            }
            AdminOpcode::Identify => AdminCommand::Identify(dma(
                "identify",
                "identify.rsvd",
                "identify.dma.len",
                "identify.dma.rsvd",
            )?),
            AdminOpcode::LifList => AdminCommand::LifList(dma(
                "lif_list",
                "lif_list.rsvd",
                "lif_list.dma.len",
                "lif_list.dma.rsvd",
            )?),
            AdminOpcode::StatsGet => AdminCommand::StatsGet(dma(
                "stats_get",
                "stats_get.rsvd",
                "stats_get.dma.len",
                "stats_get.dma.rsvd",
            )?),
            AdminOpcode::PortStatsGet => AdminCommand::PortStatsGet(dma(
                "port_stats_get",
                "port_stats_get.rsvd",
                "port_stats_get.dma.len",
                "port_stats_get.dma.rsvd",
            )?),
            AdminOpcode::EventsGet => {
                let e: EventsRef = body("events_get", "events_get.rsvd", b)?;
                e.dma.check("events_get.dma.len", "events_get.dma.rsvd")?;
                AdminCommand::EventsGet(e)
            }
            AdminOpcode::FunctionConfigSet => {
                let c: FunctionConfig = body("function_config", "function_config.rsvd", b)?;
                check_reserved_bits(
                    "function_config.flags",
                    c.flags.into(),
                    function_config_flags::ALL.into(),
                )?;
                check_reserved_bits("function_config.rsvd0", c.rsvd0.into(), 0)?;
                check_reserved_bytes("function_config.rsvd1", &c.rsvd1)?;
                if c.flags & function_config_flags::MAC != 0 && (c.mac[0] & 1 != 0 || c.mac == [0; 6]) {
                    return Err(AbiError::InvalidValue {
                        field: "function_config.mac",
                        value: u64::from(c.mac[0]),
                    });
                }
                if c.flags & function_config_flags::MAC == 0 {
                    check_reserved_bytes("function_config.mac", &c.mac)?;
                }
                AdminCommand::FunctionConfigSet(c)
            }
            AdminOpcode::FunctionConfigGet => {
                let c: FunctionConfigRef = body("function_config_get", "function_config_get.rsvd", b)?;
                check_reserved_bytes("function_config_get.rsvd", &c.rsvd)?;
                c.dma
                    .check("function_config_get.dma.len", "function_config_get.dma.rsvd")?;
                AdminCommand::FunctionConfigGet(c)
            }
            AdminOpcode::TableEntryAdd => AdminCommand::TableEntryAdd(dma(
                "table_entry_add",
                "table_entry_add.rsvd",
                "table_entry_add.dma.len",
                "table_entry_add.dma.rsvd",
            )?),
            AdminOpcode::TableEntryDel => AdminCommand::TableEntryDel(dma(
                "table_entry_del",
                "table_entry_del.rsvd",
                "table_entry_del.dma.len",
                "table_entry_del.dma.rsvd",
            )?),
            AdminOpcode::LifCreate => {
                let l: LifCreate = body("lif_create", "lif_create.rsvd", b)?;
                check_reserved_bytes("lif_create.rsvd", &l.rsvd)?;
                if l.mac[0] & 1 != 0 {
                    return Err(AbiError::InvalidValue {
                        field: "lif_create.mac",
                        value: u64::from(l.mac[0]),
                    });
                }
                AdminCommand::LifCreate(l)
            }
            AdminOpcode::QueueCreate => {
                let q: QueueCreate = body("queue_create", "queue_create.rsvd", b)?;
                validate_queue_create(&q, false)?;
                AdminCommand::QueueCreate(q)
            }
            AdminOpcode::QueueDestroy | AdminOpcode::QueueReset => {
                let reset = opcode == AdminOpcode::QueueReset;
                let q: QueueRef = body("queue_ref", "queue_ref.rsvd", b)?;
                validate_queue_ref(&q, reset)?;
                if reset {
                    AdminCommand::QueueReset(q)
                } else {
                    AdminCommand::QueueDestroy(q)
                }
            }
            AdminOpcode::MeterGet => {
                let m: MeterRef = body("meter_get", "meter_get.rsvd", b)?;
                MeterResource::from_raw(m.resource)?;
                check_reserved_bytes("meter_get.rsvd", &m.rsvd)?;
                m.dma.check("meter_get.dma.len", "meter_get.dma.rsvd")?;
                AdminCommand::MeterGet(m)
            }
            AdminOpcode::MeterSet => {
                let m: MeterConfig = body("meter_set", "meter_set.rsvd", b)?;
                validate_meter_config(&m)?;
                AdminCommand::MeterSet(m)
            }
            AdminOpcode::ModerationGet => {
                let m: ModerationRef = body("moderation_get", "moderation_get.rsvd", b)?;
                check_reserved_bytes("moderation_get.rsvd", &m.rsvd)?;
                m.dma.check("moderation_get.dma.len", "moderation_get.dma.rsvd")?;
                AdminCommand::ModerationGet(m)
            }
            AdminOpcode::ModerationSet => {
                let m: Moderation = body("moderation_set", "moderation_set.rsvd", b)?;
                validate_moderation(&m)?;
                AdminCommand::ModerationSet(m)
            }
            AdminOpcode::PipelineLoad => {
                let p: PipelineChunk = body("pipeline_load", "pipeline_load.rsvd", b)?;
                validate_pipeline_chunk(&p)?;
                AdminCommand::PipelineLoad(p)
            }
        };
        Ok((hdr, c))
    }
}

impl DevCommand {
    pub fn opcode(&self) -> DevCmdOpcode {
        match self {
            DevCommand::Reset => DevCmdOpcode::Reset,
            DevCommand::Identify => DevCmdOpcode::Identify,
            DevCommand::AdminQueueInit(_) => DevCmdOpcode::AdminQueueInit,
        }
    }

    /// Encode into the 64-byte envelope.
    pub fn encode(&self, hdr: CmdHeader) -> AdminCmd {
        let b = match self {
            DevCommand::Reset | DevCommand::Identify => [0; ADMIN_BODY_SIZE],
            DevCommand::AdminQueueInit(q) => put(q),
        };
        envelope(self.opcode().raw(), hdr, b)
    }

    /// Parse and validate 64 untrusted bytes from the mailbox.
    pub fn parse(bytes: &[u8]) -> Result<(CmdHeader, DevCommand), AbiError> {
        let cmd: AdminCmd = read_prefix("devcmd", bytes)?;
        let opcode = DevCmdOpcode::from_raw(cmd.opcode).map_err(|_| AbiError::UnknownOpcode {
            field: "devcmd.opcode",
            opcode: cmd.opcode,
        })?;
        let hdr = check_header(&cmd)?;
        let c = match opcode {
            DevCmdOpcode::Reset => {
                check_reserved_bytes("devcmd.reset.body", &cmd.body)?;
                DevCommand::Reset
            }
            DevCmdOpcode::Identify => {
                check_reserved_bytes("devcmd.identify.body", &cmd.body)?;
                DevCommand::Identify
            }
            DevCmdOpcode::AdminQueueInit => {
                let q: QueueCreate = body("admin_queue_init", "admin_queue_init.rsvd", &cmd.body)?;
                validate_queue_create(&q, true)?;
                DevCommand::AdminQueueInit(q)
            }
        };
        Ok((hdr, c))
    }
}

/// What `Identify` writes: the device as a whole, as seen by the function
/// that asked.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct DeviceInfo {
    pub abi_major: U16,
    pub abi_minor: U16,
    /// PCI functions: the PF plus its VFs.
    pub nfunctions: U16,
    /// LIFs the device supports in all.
    pub max_lifs: U16,
    /// [`super::caps`].
    pub capabilities: U64,
    /// Meters round rates to a multiple of this many units/s.
    pub meter_rate_granularity: U64,
    /// Meters round bursts to a multiple of this many units.
    pub meter_burst_granularity: U64,
    /// Moderation intervals are applied in steps of this many ns.
    pub moderation_granularity_ns: U32,
    /// Wire ports.
    pub nports: U16,
    /// 1 when a pipeline program is loaded and active.
    pub pipeline_active: u8,
    pub rsvd0: u8,
    /// Device clock, ns, when the structure was written.
    pub device_clock: U64,
    pub serial: [u8; 16],
    pub fw_version: [u8; 32],
    pub rsvd1: [u8; 32],
}
assert_layout!(DeviceInfo, size = 128, nfunctions @ 4, capabilities @ 8, meter_rate_granularity @ 16,
    meter_burst_granularity @ 24, moderation_granularity_ns @ 32, nports @ 36, pipeline_active @ 38,
    device_clock @ 40, serial @ 48, fw_version @ 64, rsvd1 @ 96);

/// LIF states in [`LifInfo::state`].
pub mod lif_state {
    pub const DOWN: u8 = 0;
    pub const UP: u8 = 1;
    /// A queue of the LIF is in the error state.
    pub const ERROR: u8 = 2;
}

/// One entry of `LifList`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct LifInfo {
    /// Device-wide LIF number.
    pub lif: U16,
    /// Owning function: 0 for the PF, `n + 1` for VF `n`.
    pub function_id: U16,
    /// Doorbell slot within the owning function's BAR0.
    pub slot: U16,
    /// [`lif_state`].
    pub state: u8,
    pub rsvd0: u8,
    pub ntxq: U16,
    pub nrxq: U16,
    /// The LIF's MAC address.
    pub mac: [u8; 6],
    pub rsvd1: [u8; 6],
    pub name: [u8; 16],
    pub rsvd2: [u8; 8],
}
assert_layout!(LifInfo, size = 48, lif @ 0, function_id @ 2, slot @ 4, state @ 6, ntxq @ 8, nrxq @ 10, mac @ 12, name @ 24);

/// Largest match key of a table entry, bytes.
pub const MAX_KEY_LEN: usize = 32;
/// Largest action parameter block of a table entry, bytes.
pub const MAX_PARAM_LEN: usize = 32;

/// What `TableEntryAdd` / `TableEntryDel` read by DMA: one entry of a
/// pipeline table. Exact keys carry an all-ones mask, LPM keys a
/// `prefix_len` and a zero mask, ternary keys a mask and a `priority`.
/// Bytes past `key_len` / `param_len` are zero.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct TableEntry {
    /// Which table (numbered by the loaded program).
    pub table_id: U32,
    /// Which action (numbered by the loaded program); zero for `Del`.
    pub action_id: U32,
    /// Ternary match priority: larger wins.
    pub priority: U32,
    /// LPM prefix length in bits.
    pub prefix_len: U16,
    /// Key bytes used.
    pub key_len: u8,
    /// Parameter bytes used.
    pub param_len: u8,
    pub key: [u8; MAX_KEY_LEN],
    pub mask: [u8; MAX_KEY_LEN],
    pub params: [u8; MAX_PARAM_LEN],
}
assert_layout!(TableEntry, size = 112, table_id @ 0, action_id @ 4, priority @ 8, prefix_len @ 12,
    key_len @ 14, param_len @ 15, key @ 16, mask @ 48, params @ 80);

impl TableEntry {
    /// Parse and validate an entry read from host memory.
    pub fn parse(bytes: &[u8]) -> Result<TableEntry, AbiError> {
        let e: TableEntry = read_prefix("table_entry", bytes)?;
        let key_len = usize::from(e.key_len);
        let param_len = usize::from(e.param_len);
        if key_len == 0 || key_len > MAX_KEY_LEN {
            return Err(AbiError::OutOfRange {
                field: "table_entry.key_len",
                value: key_len as u64,
                reason: "a key is 1..=32 bytes",
            });
        }
        if param_len > MAX_PARAM_LEN {
            return Err(AbiError::OutOfRange {
                field: "table_entry.param_len",
                value: param_len as u64,
                reason: "parameters are at most 32 bytes",
            });
        }
        if usize::from(e.prefix_len.get()) > key_len * 8 {
            return Err(AbiError::OutOfRange {
                field: "table_entry.prefix_len",
                value: e.prefix_len.get().into(),
                reason: "longer than the key",
            });
        }
        check_reserved_bytes("table_entry.key", &e.key[key_len..])?;
        check_reserved_bytes("table_entry.mask", &e.mask[key_len..])?;
        check_reserved_bytes("table_entry.params", &e.params[param_len..])?;
        Ok(e)
    }

    /// An exact-match entry: `key` fully masked, action `action_id` with
    /// `params`. Panics if either is longer than the ABI allows (a
    /// programming error, not input).
    pub fn exact(table_id: u32, key: &[u8], action_id: u32, params: &[u8]) -> TableEntry {
        assert!(key.len() <= MAX_KEY_LEN && params.len() <= MAX_PARAM_LEN);
        let mut e = TableEntry {
            table_id: table_id.into(),
            action_id: action_id.into(),
            key_len: key.len() as u8,
            param_len: params.len() as u8,
            ..zerocopy::FromZeros::new_zeroed()
        };
        e.key[..key.len()].copy_from_slice(key);
        e.mask[..key.len()].fill(0xff);
        e.params[..params.len()].copy_from_slice(params);
        e
    }

    /// The key bytes in use.
    pub fn key(&self) -> &[u8] {
        &self.key[..usize::from(self.key_len).min(MAX_KEY_LEN)]
    }

    /// The mask bytes in use.
    pub fn mask(&self) -> &[u8] {
        &self.mask[..usize::from(self.key_len).min(MAX_KEY_LEN)]
    }

    /// The parameter bytes in use.
    pub fn params(&self) -> &[u8] {
        &self.params[..usize::from(self.param_len).min(MAX_PARAM_LEN)]
    }
}

abi_enum! {
    /// Index of each counter in [`LifStats::counters`]. Every packet a LIF
    /// sends or receives ends in exactly one of the packet counters
    /// (delivered, or one `Drop*` reason).
    pub enum LifCounter: u8, "lif_stats.counter" {
        /// Frames the LIF sent that the device took from its TX rings.
        TxPackets = 0,
        /// Their bytes.
        TxBytes = 1,
        /// Frames delivered to the LIF's RX rings.
        RxPackets = 2,
        /// Their bytes.
        RxBytes = 3,
        /// Pipeline cost units charged.
        CostUnits = 4,
        /// Bytes moved by DMA on the LIF's behalf.
        DmaBytes = 5,
        /// Dropped: no RX buffer posted.
        DropNoRxBuffer = 6,
        /// Dropped: meter red under the drop policy.
        DropMeterRed = 7,
        /// Dropped: the parser rejected the frame.
        DropParseError = 8,
        /// Dropped: no table entry forwards it.
        DropNoRoute = 9,
        /// Dropped: the destination queue is in the error state.
        DropQueueError = 10,
        /// Dropped: larger than the RX buffer.
        DropTooLong = 11,
        /// Dropped: the pipeline's `drop` action.
        DropPipeline = 12,
        /// Frames the LIF's meters marked green.
        MeterGreen = 13,
        /// Frames the LIF's meters marked yellow.
        MeterYellow = 14,
        /// Frames the LIF's meters marked red.
        MeterRed = 15,
        /// Doorbells received.
        Doorbells = 16,
        /// Interrupts raised for the LIF's queues.
        Interrupts = 17,
        /// Interrupts withheld because the consumer was polling.
        InterruptsSuppressed = 18,
        /// Times the fetch scheduler skipped the LIF for backpressure.
        Backpressured = 19,
        /// Frames the LIF sent that the switch sent out of the uplink only
        /// (to the wire: neither received by a LIF nor dropped; the uplink
        /// copy of a flooded frame is not counted).
        ToUplink = 20,
        /// Dropped: sent with a source MAC that is not the LIF's, while
        /// its slot's spoof check is on.
        DropSpoofed = 21,
        /// Dropped: the source MAC is a group (multicast or broadcast)
        /// address, which no station has (from a LIF, or from the wire on
        /// the uplink's counters).
        DropBadSource = 22,
        /// Uplink only (`PortStatsGet`): frames that arrived from the wire.
        /// Each ends in exactly one of: a LIF's `RxPackets` or `Drop*`
        /// counters (the LIF it was delivered to), or the uplink's own
        /// `Drop*` counters. A flood is one frame here and one arrival at
        /// every LIF it reaches.
        WireRxPackets = 23,
        /// Uplink only: frames sent out of the uplink (from any LIF).
        WireTxPackets = 24,
        /// Frames from the wire that arrived at this LIF, then delivered
        /// (`RxPackets`) or dropped here (a `Drop*` counter): what of the
        /// LIF's counters is wire traffic rather than other LIFs'.
        RxFromWire = 25,
    }
}

/// Number of counter slots in [`LifStats`] (room to grow within ABI 1).
pub const LIF_COUNTERS: usize = 32;

/// What `StatsGet` writes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct LifStats {
    pub lif: U16,
    pub rsvd: [u8; 6],
    /// Device clock, ns, when the counters were read.
    pub device_clock: U64,
    /// Indexed by [`LifCounter`]; unused slots read zero.
    pub counters: [U64; LIF_COUNTERS],
}
assert_layout!(LifStats, size = 16 + 8 * LIF_COUNTERS, lif @ 0, device_clock @ 8, counters @ 16);

impl Default for LifStats {
    fn default() -> Self {
        LifStats {
            lif: 0.into(),
            rsvd: [0; 6],
            device_clock: 0.into(),
            counters: [U64::new(0); LIF_COUNTERS],
        }
    }
}

impl LifCounter {
    /// Every drop counter: each dropped frame lands in exactly one.
    pub const DROPS: [LifCounter; 9] = [
        LifCounter::DropNoRxBuffer,
        LifCounter::DropMeterRed,
        LifCounter::DropParseError,
        LifCounter::DropNoRoute,
        LifCounter::DropQueueError,
        LifCounter::DropTooLong,
        LifCounter::DropPipeline,
        LifCounter::DropSpoofed,
        LifCounter::DropBadSource,
    ];
}

impl LifStats {
    pub fn get(&self, c: LifCounter) -> u64 {
        self.counters[c as usize].get()
    }

    /// Frames dropped, every reason.
    pub fn dropped(&self) -> u64 {
        LifCounter::DROPS.iter().map(|&c| self.get(c)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use zerocopy::FromZeros;

    const HDR: CmdHeader = CmdHeader { tag: 9, lif: 3 };

    fn qc() -> QueueCreate {
        QueueCreate {
            qtype: QueueType::Tx.raw(),
            ring_order: 10,
            flags: queue_flags::INTR,
            intr_vector: 1.into(),
            ring_base: 0x10_0000.into(),
            cq_base: 0x20_0000.into(),
            state_base: 0x30_0000.into(),
            start_index: 0.into(),
            ..Default::default()
        }
    }

    fn trtcm() -> MeterConfig {
        MeterConfig {
            resource: MeterResource::Bytes.raw(),
            mode: MeterMode::TrTcm.raw(),
            policy: MeterPolicy::Backpressure.raw(),
            cir: 250_000_000.into(),
            cburst: 65_536.into(),
            pir: 500_000_000.into(),
            pburst: 131_072.into(),
            ..Default::default()
        }
    }

    fn samples() -> Vec<AdminCommand> {
        vec![
            AdminCommand::Nop,
            AdminCommand::Identify(DmaRef::new(0x1000, 128)),
            AdminCommand::LifCreate(LifCreate {
                name: crate::abi::pad_ascii("vf0"),
                mac: lif_mac(7),
                ..Default::default()
            }),
            AdminCommand::LifDestroy,
            AdminCommand::LifList(DmaRef::new(0x1000, 4096)),
            AdminCommand::QueueCreate(qc()),
            AdminCommand::QueueDestroy(QueueRef {
                qtype: 2,
                qindex: 1.into(),
                ..Default::default()
            }),
            AdminCommand::QueueReset(QueueRef {
                qtype: 1,
                qindex: 0.into(),
                start_index: 77.into(),
                ..Default::default()
            }),
            AdminCommand::MeterGet(MeterRef {
                resource: 2,
                dma: DmaRef::new(0x2000, 48),
                ..Default::default()
            }),
            AdminCommand::MeterSet(trtcm()),
            AdminCommand::ModerationGet(ModerationRef {
                vector: 1.into(),
                dma: DmaRef::new(0x3000, 16),
                ..Default::default()
            }),
            AdminCommand::ModerationSet(Moderation {
                vector: 1.into(),
                mode: ModerationMode::Adaptive.raw(),
                high_watermark_pct: 90,
                latency_interval_us: 20.into(),
                overflow_interval_us: 200.into(),
                frame_threshold: 64.into(),
            }),
            AdminCommand::StatsGet(DmaRef::new(0x4000, 272)),
            AdminCommand::PipelineLoad(PipelineChunk {
                dma: DmaRef::new(0x5000, 4096),
                offset: 0.into(),
                total_len: 4096.into(),
                flags: pipeline_flags::FIRST | pipeline_flags::LAST,
                ..Default::default()
            }),
            AdminCommand::TableEntryAdd(DmaRef::new(0x6000, 64)),
            AdminCommand::TableEntryDel(DmaRef::new(0x6000, 64)),
            AdminCommand::PortStatsGet(DmaRef::new(0x4000, 272)),
            AdminCommand::EventsGet(EventsRef {
                from_seq: 17.into(),
                dma: DmaRef::new(0x7000, 4096),
            }),
            AdminCommand::FunctionConfigSet(FunctionConfig {
                function: 2.into(),
                slot: 1.into(),
                flags: function_config_flags::MAC | function_config_flags::SPOOF_CHECK,
                mac: [2, 0, 0, 0, 0, 7],
                ..Default::default()
            }),
            AdminCommand::FunctionConfigGet(FunctionConfigRef {
                function: 2.into(),
                slot: 1.into(),
                dma: DmaRef::new(0x7000, 16),
                ..Default::default()
            }),
        ]
    }

    #[test]
    fn every_command_round_trips() {
        for c in samples() {
            let raw = c.encode(HDR);
            assert_eq!(AdminCommand::parse(raw.as_bytes()), Ok((HDR, c)), "{c:?}");
        }
        for c in [
            DevCommand::Reset,
            DevCommand::Identify,
            DevCommand::AdminQueueInit(QueueCreate { qtype: 0, ..qc() }),
        ] {
            let raw = c.encode(HDR);
            assert_eq!(DevCommand::parse(raw.as_bytes()), Ok((HDR, c)));
        }
    }

    #[test]
    fn every_opcode_has_a_sample() {
        let seen: Vec<_> = samples().iter().map(|c| c.opcode()).collect();
        for op in AdminOpcode::ALL {
            assert!(seen.contains(op), "{op:?} has no sample command");
        }
    }

    #[test]
    fn unknown_opcode_and_reserved_bytes() {
        let mut raw = AdminCommand::Nop.encode(HDR);
        raw.opcode = 0x7f;
        assert_eq!(
            AdminCommand::decode(&raw),
            Err(AbiError::UnknownOpcode {
                field: "admin.opcode",
                opcode: 0x7f
            })
        );
        let mut raw = AdminCommand::QueueCreate(qc()).encode(HDR);
        raw.body[50] = 1;
        assert!(matches!(
            AdminCommand::decode(&raw),
            Err(AbiError::ReservedBits {
                field: "queue_create.rsvd",
                ..
            })
        ));
        let mut raw = AdminCommand::Nop.encode(HDR);
        raw.flags = 4;
        assert!(matches!(
            AdminCommand::decode(&raw),
            Err(AbiError::ReservedBits {
                field: "admin.flags",
                ..
            })
        ));
    }

    #[test]
    fn queue_create_validation_names_fields() {
        let cases: Vec<(QueueCreate, &str)> = vec![
            (QueueCreate { ring_order: 16, ..qc() }, "queue_create.ring_order"),
            (QueueCreate { ring_order: 1, ..qc() }, "queue_create.ring_order"),
            (QueueCreate { qtype: 0, ..qc() }, "queue_create.qtype"),
            (QueueCreate { qtype: 7, ..qc() }, "queue.qtype"),
            (
                QueueCreate {
                    ring_base: 0x10_0008.into(),
                    ..qc()
                },
                "queue_create.ring_base",
            ),
            (
                QueueCreate {
                    state_base: 0x30_0020.into(),
                    ..qc()
                },
                "queue_create.state_base",
            ),
            (QueueCreate { flags: 0x80, ..qc() }, "queue_create.flags"),
        ];
        for (q, field) in cases {
            let err = AdminCommand::decode(&AdminCommand::QueueCreate(q).encode(HDR)).unwrap_err();
            assert!(err.to_string().starts_with(field), "{field}: {err}");
        }
    }

    #[test]
    fn meter_validation_follows_the_rfcs() {
        let bad_pir = MeterConfig {
            pir: 1.into(),
            ..trtcm()
        };
        let err = AdminCommand::decode(&AdminCommand::MeterSet(bad_pir).encode(HDR)).unwrap_err();
        assert!(err.to_string().contains("PIR must be at least CIR"), "{err}");

        let sr = MeterConfig {
            mode: MeterMode::SrTcm.raw(),
            pir: 0.into(),
            pburst: 0.into(),
            eburst: 1000.into(),
            ..trtcm()
        };
        assert!(AdminCommand::decode(&AdminCommand::MeterSet(sr).encode(HDR)).is_ok());
        let sr_with_pir = MeterConfig { pir: 5.into(), ..sr };
        assert!(matches!(
            AdminCommand::decode(&AdminCommand::MeterSet(sr_with_pir).encode(HDR)),
            Err(AbiError::ReservedBits { field: "meter.pir", .. })
        ));
        let huge = MeterConfig {
            cir: u64::MAX.into(),
            pir: u64::MAX.into(),
            ..trtcm()
        };
        assert!(matches!(
            AdminCommand::decode(&AdminCommand::MeterSet(huge).encode(HDR)),
            Err(AbiError::OutOfRange { field: "meter.cir", .. })
        ));
    }

    #[test]
    fn pipeline_chunks_must_fit_the_image() {
        let chunk = |offset: u32, len: u32, total: u32, flags: u8| PipelineChunk {
            dma: DmaRef::new(0, len),
            offset: offset.into(),
            total_len: total.into(),
            flags,
            ..Default::default()
        };
        let dec = |p| AdminCommand::decode(&AdminCommand::PipelineLoad(p).encode(HDR));
        assert!(dec(chunk(0, 100, 300, pipeline_flags::FIRST)).is_ok());
        assert!(dec(chunk(200, 100, 300, pipeline_flags::LAST)).is_ok());
        assert!(dec(chunk(250, 100, 300, 0)).is_err());
        assert!(dec(chunk(100, 100, 300, pipeline_flags::FIRST)).is_err());
        assert!(dec(chunk(100, 100, 300, pipeline_flags::LAST)).is_err());
        assert!(dec(chunk(0, 0, 300, 0)).is_err());
    }

    #[test]
    fn dma_refs_are_bounded() {
        let dec = |d| AdminCommand::decode(&AdminCommand::StatsGet(d).encode(HDR));
        assert!(matches!(
            dec(DmaRef::new(0, 0)),
            Err(AbiError::OutOfRange {
                field: "stats_get.dma.len",
                ..
            })
        ));
        assert!(dec(DmaRef::new(0, MAX_ADMIN_DMA_LEN + 1)).is_err());
        assert!(dec(DmaRef::new(u64::MAX - 3, 16)).is_err());
    }

    #[test]
    fn admin_comp_round_trip() {
        let c = AdminComp::new(AdminStatus::Permission, 7, 1, 2, true);
        let (st, back) = AdminComp::parse(c.as_bytes()).unwrap();
        assert_eq!(st, AdminStatus::Permission);
        assert!(back.color());
        assert_eq!(back.tag.get(), 7);
        let mut bad = c;
        bad.status = 99;
        assert!(AdminComp::parse(bad.as_bytes()).is_err());
    }

    #[test]
    fn table_entries_are_checked() {
        let mut e = TableEntry::new_zeroed();
        e.table_id = 1.into();
        e.action_id = 1.into();
        e.key_len = 6;
        e.param_len = 2;
        e.key[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        e.mask[..6].copy_from_slice(&[0xff; 6]);
        e.params[..2].copy_from_slice(&3u16.to_le_bytes());
        let ok = TableEntry::parse(e.as_bytes()).unwrap();
        assert_eq!(ok.key(), &[2, 0, 0, 0, 0, 1]);
        assert_eq!(ok.params(), &[3, 0]);
        let mut bad = e;
        bad.key[7] = 1;
        assert!(matches!(
            TableEntry::parse(bad.as_bytes()),
            Err(AbiError::ReservedBits {
                field: "table_entry.key",
                ..
            })
        ));
        let mut bad = e;
        bad.key_len = 33;
        assert!(matches!(
            TableEntry::parse(bad.as_bytes()),
            Err(AbiError::OutOfRange {
                field: "table_entry.key_len",
                ..
            })
        ));
        let mut bad = e;
        bad.prefix_len = 49.into();
        assert!(TableEntry::parse(bad.as_bytes()).is_err());
    }

    #[test]
    fn lif_create_refuses_a_multicast_mac() {
        let l = LifCreate {
            mac: [1, 0, 0, 0, 0, 0],
            ..Default::default()
        };
        let err = AdminCommand::decode(&AdminCommand::LifCreate(l).encode(HDR)).unwrap_err();
        assert!(err.to_string().starts_with("lif_create.mac"), "{err}");
        assert_eq!(lif_mac(0x0102), [0x02, 0xf4, 0x1c, 0, 1, 2]);
    }

    #[test]
    fn pf_only_opcodes() {
        assert!(AdminOpcode::MeterSet.pf_only());
        assert!(AdminOpcode::PipelineLoad.pf_only());
        assert!(!AdminOpcode::MeterGet.pf_only());
        assert!(!AdminOpcode::QueueCreate.pf_only());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..80), op in any::<u8>()) {
            let mut bytes = bytes;
            if let Some(b) = bytes.first_mut() {
                // Steer half the cases to defined opcodes so bodies get exercised.
                if op & 1 == 0 {
                    *b = AdminOpcode::ALL[(op as usize / 2) % AdminOpcode::ALL.len()].raw();
                }
            }
            if let Ok((hdr, cmd)) = AdminCommand::parse(&bytes) {
                let again = cmd.encode(hdr);
                prop_assert_eq!(again.as_bytes(), &bytes[..64]);
            }
            let _ = DevCommand::parse(&bytes);
            let _ = AdminComp::parse(&bytes);
        }

        #[test]
        fn valid_meter_configs_round_trip(cir in 0u64..1 << 40, extra in 0u64..1 << 40, cb in 1u64..1 << 30, pb in 1u64..1 << 30) {
            let m = MeterConfig { cir: cir.into(), pir: (cir + extra).into(), cburst: cb.into(), pburst: pb.into(), ..trtcm() };
            let raw = AdminCommand::MeterSet(m).encode(HDR);
            prop_assert_eq!(AdminCommand::decode(&raw), Ok((HDR, AdminCommand::MeterSet(m))));
        }
    }
}
