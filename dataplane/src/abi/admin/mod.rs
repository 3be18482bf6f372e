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

mod events;
mod function_config;
mod lif;
mod meter;
mod moderation;
mod packet;
mod pipeline;
mod queue;
mod stats;
mod table;
#[cfg(test)]
pub(crate) mod tests;

pub use events::*;
pub use function_config::*;
pub use lif::*;
pub use meter::*;
pub use moderation::*;
pub use packet::*;
pub use pipeline::*;
pub use queue::*;
pub use stats::*;
pub use table::*;

use super::{
    abi_enum, assert_layout, check_aligned, check_reserved_bits, check_reserved_bytes, check_span, read_prefix,
    AbiError, ModerationMode, QueueType, MAX_RING_ORDER, MIN_RING_ORDER, QUEUE_STATE_ALIGN, U16, U32, U64,
};
use crate::packet::EthernetAddress;
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
    /// [`AdminOpcode`] on the admin queue, [`DevCmdOpcode`] in the mailbox.
    pub opcode: u8,
    /// Reserved, zero.
    pub flags: u8,
    /// Any value the driver chooses; the completion echoes it.
    pub tag: U16,
    /// Device-wide number of the LIF the command addresses; commands that
    /// address none ignore it (drivers write [`LIF_NONE`]).
    pub lif: U16,
    /// Reserved, zero.
    pub rsvd: U16,
    /// The opcode's body structure from byte 0; the bytes past it zero.
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
        /// PF only: write the [`TableEntry`]s of one table from an index
        /// on; `value` = entries written, `data` = entries the table has.
        TableEntryList = 0x63,
        /// PF only: write the cells of one of the loaded program's counter
        /// arrays from a cell on; `value` = cells written, `data` = cells
        /// the array has.
        PipelineCounterGet = 0x64,
        /// PF only: write the frames the program sent to the CPU port
        /// ([`LIF_CPU`]), oldest first, each a [`PacketInRecord`] and its
        /// bytes; `value` = frames written, `data` = frames still queued.
        PacketInRead = 0x65,
        /// PF only: send one frame, read from the host, to a LIF's RX rings
        /// or out of the uplink ([`PacketInject`]), past the pipeline.
        PacketInject = 0x66,
        /// PF only: set one cell, or every cell, of one of the loaded
        /// program's counter arrays ([`CounterSet`]; zero: a reset);
        /// `value` = cells set.
        PipelineCounterSet = 0x67,
        /// PF only (ABI 1.6): write [`TableEntryData`]s (each entry with its
        /// direct counter and meter) of one table from an index on, in
        /// `TableEntryList`'s order; `value` = entries written, `data` =
        /// entries the table has.
        TableDataList = 0x68,
        /// PF only (ABI 1.6): set the direct counter and/or meter of the
        /// entry a [`TableEntryData`] read from the host names.
        TableDataSet = 0x69,
        /// PF only (ABI 1.6): write the applied [`MeterConfig`]s of one of
        /// the loaded program's indexed meter arrays from a cell on;
        /// `value` = cells written, `data` = cells the array has.
        PipelineMeterGet = 0x6a,
        /// PF only (ABI 1.6): configure one cell of one of the loaded
        /// program's indexed meter arrays ([`PipelineMeterSet`]).
        PipelineMeterSet = 0x6b,
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
                | AdminOpcode::TableEntryList
                | AdminOpcode::PipelineCounterGet
                | AdminOpcode::PacketInRead
                | AdminOpcode::PacketInject
                | AdminOpcode::PipelineCounterSet
                | AdminOpcode::TableDataList
                | AdminOpcode::TableDataSet
                | AdminOpcode::PipelineMeterGet
                | AdminOpcode::PipelineMeterSet
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
    /// IOVA of the buffer's first byte, in the sending function's DMA
    /// mappings; `addr + len` must not pass 2^64.
    pub addr: U64,
    /// Buffer length in bytes, 1 to [`MAX_ADMIN_DMA_LEN`]; a command that
    /// writes a structure writes at most this many bytes of it.
    pub len: U32,
    /// Reserved, zero.
    pub rsvd: U32,
}
assert_layout!(DmaRef, size = 16, addr @ 0, len @ 8, rsvd @ 12);

impl DmaRef {
    /// A reference to `len` bytes at IOVA `addr`.
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

/// A decoded, validated admin command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCommand {
    /// `Nop`: no body; completes `Ok`.
    Nop,
    /// `Identify`: write a [`DeviceInfo`] to this buffer.
    Identify(DmaRef),
    /// `LifCreate`: create a LIF on the sending function.
    LifCreate(LifCreate),
    /// `LifDestroy`: destroy the command's LIF and its queues; no body.
    LifDestroy,
    /// `LifList`: write [`LifInfo`] entries to this buffer.
    LifList(DmaRef),
    /// `QueueCreate`: create a TX or RX queue on the command's LIF.
    QueueCreate(QueueCreate),
    /// `QueueDestroy`: destroy this queue of the command's LIF.
    QueueDestroy(QueueRef),
    /// `QueueReset`: restart this queue of the command's LIF, empty, at its
    /// `start_index`.
    QueueReset(QueueRef),
    /// `MeterGet`: write the applied [`MeterConfig`] of the command's LIF for
    /// one resource.
    MeterGet(MeterRef),
    /// `MeterSet`: PF only: configure one meter of the command's LIF.
    MeterSet(MeterConfig),
    /// `ModerationGet`: write a vector's applied [`Moderation`].
    ModerationGet(ModerationRef),
    /// `ModerationSet`: set one of the sending function's vectors' moderation.
    ModerationSet(Moderation),
    /// `StatsGet`: write the command's LIF's [`LifStats`] (with [`LIF_NONE`]:
    /// the function's retired counters) to this buffer.
    StatsGet(DmaRef),
    /// `PortStatsGet`: PF only: write the uplink's [`LifStats`] to this buffer.
    PortStatsGet(DmaRef),
    /// `PipelineLoad`: PF only: one chunk of a pipeline image.
    PipelineLoad(PipelineChunk),
    /// `TableEntryAdd`: PF only: add the [`TableEntry`] read from this buffer.
    TableEntryAdd(DmaRef),
    /// `TableEntryDel`: PF only: delete the [`TableEntry`] read from this
    /// buffer.
    TableEntryDel(DmaRef),
    /// `TableEntryList`: PF only: write a table's [`TableEntry`]s from an
    /// index on.
    TableEntryList(TableListRef),
    /// `PipelineCounterGet`: PF only: write a counter array's
    /// [`CounterCell`]s from a cell on.
    PipelineCounterGet(CounterRef),
    /// `PacketInRead`: PF only: write the CPU port's queued frames to this
    /// buffer.
    PacketInRead(DmaRef),
    /// `PacketInject`: PF only: send a frame to a LIF or the uplink.
    PacketInject(PacketInject),
    /// `PipelineCounterSet`: PF only: set (reset) program counter cells.
    PipelineCounterSet(CounterSet),
    /// `TableDataList`: PF only: write a table's [`TableEntryData`]s from
    /// an index on.
    TableDataList(TableListRef),
    /// `TableDataSet`: PF only: set an entry's direct counter and/or meter
    /// from the [`TableEntryData`] read from this buffer.
    TableDataSet(DmaRef),
    /// `PipelineMeterGet`: PF only: write a meter array's applied
    /// [`MeterConfig`]s from a cell on.
    PipelineMeterGet(PipelineMeterRef),
    /// `PipelineMeterSet`: PF only: configure one cell of a meter array.
    PipelineMeterSet(PipelineMeterSet),
    /// `EventsGet`: PF only: write [`DeviceEvent`]s from a sequence number on.
    EventsGet(EventsRef),
    /// `FunctionConfigSet`: PF only: set a function's LIF slot's MAC, spoof
    /// check and trust.
    FunctionConfigSet(FunctionConfig),
    /// `FunctionConfigGet`: PF only: write a slot's applied [`FunctionConfig`].
    FunctionConfigGet(FunctionConfigRef),
}

/// A decoded, validated device command (mailbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevCommand {
    /// `Reset`: reset the function; no body.
    Reset,
    /// `Identify`: write a [`DeviceInfo`] into the mailbox data area; no body.
    Identify,
    /// `AdminQueueInit`: create the function's admin queue (`qtype` Admin).
    AdminQueueInit(QueueCreate),
}

/// The envelope's fields other than the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmdHeader {
    /// The command's tag, echoed in its completion.
    pub tag: u16,
    /// Device-wide number of the LIF the command addresses, or [`LIF_NONE`].
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
            AdminCommand::TableEntryList(_) => AdminOpcode::TableEntryList,
            AdminCommand::PipelineCounterGet(_) => AdminOpcode::PipelineCounterGet,
            AdminCommand::PacketInRead(_) => AdminOpcode::PacketInRead,
            AdminCommand::PacketInject(_) => AdminOpcode::PacketInject,
            AdminCommand::PipelineCounterSet(_) => AdminOpcode::PipelineCounterSet,
            AdminCommand::TableDataList(_) => AdminOpcode::TableDataList,
            AdminCommand::TableDataSet(_) => AdminOpcode::TableDataSet,
            AdminCommand::PipelineMeterGet(_) => AdminOpcode::PipelineMeterGet,
            AdminCommand::PipelineMeterSet(_) => AdminOpcode::PipelineMeterSet,
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
            | AdminCommand::TableEntryDel(d)
            | AdminCommand::TableDataSet(d)
            | AdminCommand::PacketInRead(d) => put(d),
            AdminCommand::PacketInject(p) => put(p),
            AdminCommand::PipelineCounterSet(c) => put(c),
            AdminCommand::LifCreate(l) => put(l),
            AdminCommand::QueueCreate(q) => put(q),
            AdminCommand::QueueDestroy(q) | AdminCommand::QueueReset(q) => put(q),
            AdminCommand::MeterGet(m) => put(m),
            AdminCommand::MeterSet(m) => put(m),
            AdminCommand::ModerationGet(m) => put(m),
            AdminCommand::ModerationSet(m) => put(m),
            AdminCommand::PipelineLoad(p) => put(p),
            AdminCommand::EventsGet(e) => put(e),
            AdminCommand::TableEntryList(t) | AdminCommand::TableDataList(t) => put(t),
            AdminCommand::PipelineMeterGet(m) => put(m),
            AdminCommand::PipelineMeterSet(m) => put(m),
            AdminCommand::PipelineCounterGet(c) => put(c),
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
            AdminOpcode::TableEntryList => {
                let t: TableListRef = body("table_entry_list", "table_entry_list.rsvd", b)?;
                t.dma.check("table_entry_list.dma.len", "table_entry_list.dma.rsvd")?;
                AdminCommand::TableEntryList(t)
            }
            AdminOpcode::TableDataList => {
                let t: TableListRef = body("table_data_list", "table_data_list.rsvd", b)?;
                t.dma.check("table_data_list.dma.len", "table_data_list.dma.rsvd")?;
                AdminCommand::TableDataList(t)
            }
            AdminOpcode::TableDataSet => AdminCommand::TableDataSet(dma(
                "table_data_set",
                "table_data_set.rsvd",
                "table_data_set.dma.len",
                "table_data_set.dma.rsvd",
            )?),
            AdminOpcode::PipelineMeterGet => {
                let m: PipelineMeterRef = body("pipeline_meter_get", "pipeline_meter_get.rsvd", b)?;
                m.dma
                    .check("pipeline_meter_get.dma.len", "pipeline_meter_get.dma.rsvd")?;
                AdminCommand::PipelineMeterGet(m)
            }
            AdminOpcode::PipelineMeterSet => {
                let m: PipelineMeterSet = body("pipeline_meter_set", "pipeline_meter_set.rsvd", b)?;
                validate_meter_config(&m.config)?;
                AdminCommand::PipelineMeterSet(m)
            }
            AdminOpcode::PipelineCounterGet => {
                let c: CounterRef = body("pipeline_counter_get", "pipeline_counter_get.rsvd", b)?;
                c.dma
                    .check("pipeline_counter_get.dma.len", "pipeline_counter_get.dma.rsvd")?;
                AdminCommand::PipelineCounterGet(c)
            }
            AdminOpcode::PacketInRead => AdminCommand::PacketInRead(dma(
                "packet_in_read",
                "packet_in_read.rsvd",
                "packet_in_read.dma.len",
                "packet_in_read.dma.rsvd",
            )?),
            AdminOpcode::PacketInject => {
                let p: PacketInject = body("packet_inject", "packet_inject.rsvd", b)?;
                p.check()?;
                AdminCommand::PacketInject(p)
            }
            AdminOpcode::PipelineCounterSet => {
                let c: CounterSet = body("pipeline_counter_set", "pipeline_counter_set.rsvd", b)?;
                AdminCommand::PipelineCounterSet(c)
            }
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
                if c.flags & function_config_flags::MAC != 0 && !EthernetAddress(c.mac).is_unicast() {
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
                if EthernetAddress(l.mac).is_multicast() {
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
    /// The opcode of this command.
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
    /// ABI major version the device implements ([`crate::abi::ABI_MAJOR`] in
    /// this build).
    pub abi_major: U16,
    /// ABI minor version the device implements ([`crate::abi::ABI_MINOR`] in
    /// this build).
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
    /// How the device runs the loaded program: [`pipeline_executor`]
    /// (ABI 1.2; zero before).
    pub pipeline_executor: u8,
    /// Device clock, ns, when the structure was written.
    pub device_clock: U64,
    /// Device serial number, ASCII, NUL padded.
    pub serial: [u8; 16],
    /// Firmware version, ASCII, NUL padded (nicsim: `nicsim <version>`).
    pub fw_version: [u8; 32],
    /// With [`pipeline_executor::COMPILED`]: bytes of machine code the
    /// program compiled to; else 0 (ABI 1.2).
    pub pipeline_code_bytes: U32,
    /// Reserved, zero.
    pub rsvd1: [u8; 28],
}
assert_layout!(DeviceInfo, size = 128, nfunctions @ 4, capabilities @ 8, meter_rate_granularity @ 16,
    meter_burst_granularity @ 24, moderation_granularity_ns @ 32, nports @ 36, pipeline_active @ 38,
    pipeline_executor @ 39, device_clock @ 40, serial @ 48, fw_version @ 64, pipeline_code_bytes @ 96,
    rsvd1 @ 100);

/// [`DeviceInfo::pipeline_executor`]: how the device runs the loaded
/// program.
pub mod pipeline_executor {
    /// No program is loaded (the built-in L2 switch forwards).
    pub const NONE: u8 = 0;
    /// The reference executor: the program interpreted (a device without
    /// the compiler, or a program the compiler does not cover).
    pub const REFERENCE: u8 = 1;
    /// Compiled to machine code when it loaded.
    pub const COMPILED: u8 = 2;
}
