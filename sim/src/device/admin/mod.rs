//! The device-command mailbox and the admin queue: parsing (through the
//! ABI's validating decoders), privilege checks, and execution.
//!
//! Every command completes with a status; a malformed one completes with
//! `Invalid` or `UnknownOpcode` and the queue goes on. Only the PF may
//! change meters or the pipeline or act on another function's LIF.

mod lif;
mod pipeline;
mod queue;

use super::function::default_moderation;
use super::queue::{DeviceQueue, QueueMemError};
use super::{Device, Lif};
use dataplane::abi::{
    self, lif_mac, lif_state, pipeline_flags, AbiError, AdminCmd, AdminCommand, AdminComp, AdminOpcode, AdminStatus,
    CmdHeader, CounterCell, DevCommand, DeviceEvent, DeviceInfo, Doorbell, EventKind, FromZeros, FunctionKind,
    IntoBytes, LifInfo, LifStats, MeterConfig, MeterResource, ModerationMode, QueueCreate, QueueRef, QueueType,
    TableEntry, TableEntryData, LIF_COUNTERS, U64,
};

/// A pipeline image being uploaded in chunks.
#[derive(Debug, Default)]
pub(super) struct PipelineUpload {
    image: Vec<u8>,
    total: u32,
    /// Bytes received in order so far.
    received: u32,
}

/// Meter rates are applied in steps of this many units/s.
pub const METER_RATE_GRANULARITY: u64 = 1;
/// Meter bursts are applied in steps of this many units.
pub const METER_BURST_GRANULARITY: u64 = 1;
/// Moderation intervals are applied in steps of this many ns.
pub const MODERATION_GRANULARITY_NS: u32 = 1000;

/// The outcome of a command: status, small and wide results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    status: AdminStatus,
    value: u32,
    data: u64,
}

impl Outcome {
    fn ok(value: u32, data: u64) -> Outcome {
        Outcome {
            status: AdminStatus::Ok,
            value,
            data,
        }
    }

    fn err(status: AdminStatus) -> Outcome {
        Outcome {
            status,
            value: 0,
            data: 0,
        }
    }
}

impl From<AdminStatus> for Outcome {
    fn from(s: AdminStatus) -> Outcome {
        Outcome::err(s)
    }
}

type Res = Result<Outcome, Outcome>;

fn decode_status(e: &AbiError) -> AdminStatus {
    match e {
        AbiError::UnknownOpcode { .. } => AdminStatus::UnknownOpcode,
        _ => AdminStatus::Invalid,
    }
}

impl Device {
    /// Execute the mailbox command of function `fi` and set `done`.
    pub(super) fn devcmd(&mut self, fi: usize) {
        let raw = self.functions[fi].mailbox.cmd;
        let (tag, outcome) = match DevCommand::parse(&raw) {
            Err(e) => {
                tracing::debug!(function = fi, "mailbox: {e}");
                (u16::from_le_bytes([raw[2], raw[3]]), Outcome::err(decode_status(&e)))
            }
            Ok((hdr, cmd)) => (hdr.tag, self.exec_devcmd(fi, cmd).unwrap_or_else(|e| e)),
        };
        if outcome.status != AdminStatus::Ok {
            self.functions[fi].counters.admin_errors += 1;
        }
        let comp = AdminComp::new(outcome.status, tag, outcome.value, outcome.data, false);
        let f = &mut self.functions[fi];
        f.mailbox.comp.copy_from_slice(comp.as_bytes());
        // An admin queue in memory reached by message: its state block was
        // written by a posted message, and `done` is a register the client
        // may read before it applies that write. `done` waits for a fence.
        f.devcmd_fence = f
            .admin
            .as_ref()
            .filter(|aq| outcome.status == AdminStatus::Ok && aq.core.is_remote())
            .map(|aq| aq.core.state_base);
        self.devcmd_finish(fi);
    }

    /// Come back to what function `fi`'s client put off by waiting for
    /// the device: an admin doorbell, a mailbox command's `done`. The
    /// engine does at every pass, a server thread once it answered the
    /// client (then the client is likely to answer the device).
    pub fn finish_put_off(&mut self, fi: usize) {
        if let Some(v) = self.functions[fi].admin_retry.take() {
            self.admin_doorbell(fi, v);
        }
        self.devcmd_finish(fi);
    }

    /// Whether function `fi` has something put off (see
    /// [`Device::finish_put_off`]).
    pub fn has_put_off(&self, fi: usize) -> bool {
        self.functions[fi].has_put_off()
    }

    /// Set `done` for the mailbox command of `fi` once what it wrote by
    /// message has landed; put off while the client waits for the device
    /// (the engine comes back to it).
    pub(super) fn devcmd_finish(&mut self, fi: usize) {
        let f = &mut self.functions[fi];
        if let Some(iova) = f.devcmd_fence {
            match f.dma.remote().map_or(Ok(()), |r| r.fence(iova)) {
                Ok(()) => {}
                Err(e) if e.busy => return,
                Err(e) => {
                    // The admin queue's memory cannot be reached: the
                    // command failed after all.
                    tracing::debug!(function = fi, "admin queue memory not reachable: {e}");
                    f.admin = None;
                    f.counters.admin_errors += 1;
                    let tag = u16::from_le_bytes([f.mailbox.cmd[2], f.mailbox.cmd[3]]);
                    let comp = AdminComp::new(AdminStatus::DmaFault, tag, 0, 0, false);
                    f.mailbox.comp.copy_from_slice(comp.as_bytes());
                }
            }
        }
        f.devcmd_fence = None;
        f.mailbox.done = 1.into();
    }

    fn exec_devcmd(&mut self, fi: usize, cmd: DevCommand) -> Res {
        match cmd {
            DevCommand::Reset => {
                self.reset_function(fi as u16, abi::reset_reason::MAILBOX);
                Ok(Outcome::ok(0, 0))
            }
            DevCommand::Identify => {
                let info = self.device_info();
                let data = &mut self.functions[fi].mailbox.data;
                data.fill(0);
                data[..info.as_bytes().len()].copy_from_slice(info.as_bytes());
                Ok(Outcome::ok(0, info.as_bytes().len() as u64))
            }
            DevCommand::AdminQueueInit(q) => {
                let func = &mut self.functions[fi];
                if !ring_order_ok(func.limits.min_ring_order, func.limits.max_ring_order, &q) {
                    return Err(AdminStatus::Invalid.into());
                }
                if q.flags & abi::queue_flags::INTR != 0 && q.intr_vector.get() >= func.limits.nintrs {
                    return Err(AdminStatus::NoEntry.into());
                }
                let aq = DeviceQueue::new(&func.dma, &q, abi::LIF_NONE, 0).map_err(queue_mem_status)?;
                func.admin = Some(aq);
                Ok(Outcome::ok(0, 0))
            }
        }
    }

    /// The admin queue's doorbell was written: run every published command.
    pub(super) fn admin_doorbell(&mut self, fi: usize, value: u64) {
        match Doorbell::decode(value) {
            Ok(d) if d.qtype == QueueType::Admin && d.qindex == 0 => {}
            _ => {
                self.functions[fi].counters.bad_doorbells += 1;
                return;
            }
        }
        if !self.functions[fi].config.bus_master() {
            return;
        }
        let Some(mut aq) = self.functions[fi].admin.take() else {
            self.functions[fi].counters.bad_doorbells += 1;
            return;
        };
        let mut cmd = [AdminCmd::new_zeroed()];
        aq.core.put_off = false;
        while aq.core.error.is_none() && aq.core.cq_has_room() {
            match aq.fetch(&mut cmd) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => {
                    // The state block says why; the completion ring (of
                    // AdminComps) gets nothing it could misread.
                    aq.core.enter_error(abi::CompStatus::BadOutgoingTail, aq.ring.head());
                    break;
                }
            }
            let comp = self.admin_command(fi as u16, &cmd[0]);
            let mut e = [0u8; 16];
            e.copy_from_slice(comp.as_bytes());
            self.apply_lies(fi, &cmd[0], &mut e);
            aq.core.post(e);
            aq.core.publish_cq_tail();
            aq.write_back();
        }
        let intr = aq.core.intr.filter(|_| aq.core.unsignalled > 0);
        aq.core.unsignalled = 0;
        // A read by message put off: the engine comes back to it.
        self.functions[fi].admin_retry = std::mem::take(&mut aq.core.put_off).then_some(value);
        self.functions[fi].admin = Some(aq);
        if let Some(v) = intr {
            self.functions[fi].fire(v);
        }
    }

    /// Decode and execute one admin command of function `f`, as the admin
    /// queue does for each command it fetches; the completion's color is
    /// left to the queue. (Public for the fuzz target and tests, which
    /// drive commands without a ring.)
    pub fn admin_command(&mut self, f: u16, cmd: &AdminCmd) -> AdminComp {
        let fi = usize::from(f);
        if fi >= self.functions.len() {
            return AdminComp::new(AdminStatus::Invalid, cmd.tag.get(), 0, 0, false);
        }
        let (tag, outcome) = match AdminCommand::decode(cmd) {
            Err(e) => {
                tracing::debug!(function = fi, "admin: {e}");
                (cmd.tag.get(), Outcome::err(decode_status(&e)))
            }
            Ok((hdr, c)) => (hdr.tag, self.exec_admin(fi, hdr, c).unwrap_or_else(|e| e)),
        };
        if outcome.status != AdminStatus::Ok {
            self.functions[fi].counters.admin_errors += 1;
        }
        AdminComp::new(outcome.status, tag, outcome.value, outcome.data, false)
    }

    /// What the device is, for `Identify`.
    fn device_info(&self) -> DeviceInfo {
        use abi::pipeline_executor as ex;
        use dataplane::pipeline::Backend;
        let (executor, code_bytes) = match self.switch.program().map(|p| p.backend()) {
            None => (ex::NONE, 0),
            Some(Backend::Compiled { code_bytes }) => (ex::COMPILED, u32::try_from(*code_bytes).unwrap_or(u32::MAX)),
            Some(Backend::Reference { .. }) => (ex::REFERENCE, 0),
        };
        DeviceInfo {
            abi_major: abi::ABI_MAJOR.into(),
            abi_minor: abi::ABI_MINOR.into(),
            nfunctions: (self.functions.len() as u16).into(),
            max_lifs: (self.lifs.len() as u16).into(),
            capabilities: self.functions[0].identity(0, "").capabilities,
            meter_rate_granularity: METER_RATE_GRANULARITY.into(),
            meter_burst_granularity: METER_BURST_GRANULARITY.into(),
            moderation_granularity_ns: MODERATION_GRANULARITY_NS.into(),
            nports: 1.into(),
            pipeline_active: u8::from(self.switch.program().is_some()),
            pipeline_executor: executor,
            device_clock: self.now().into(),
            serial: abi::pad_ascii(&self.cfg.serial),
            fw_version: abi::pad_ascii(concat!("nicsim ", env!("CARGO_PKG_VERSION"))),
            pipeline_code_bytes: code_bytes.into(),
            rsvd1: [0; 28],
        }
    }

    /// The LIF a command addresses, if the sender may act on it.
    fn owned_lif(&self, fi: usize, lif: u16) -> Result<&Lif, Outcome> {
        let l = self.lif(lif).ok_or(Outcome::err(AdminStatus::NoEntry))?;
        if usize::from(l.function) != fi && self.functions[fi].kind != FunctionKind::Pf {
            return Err(AdminStatus::Permission.into());
        }
        Ok(l)
    }

    fn dma_out(&self, fi: usize, dma: &abi::DmaRef, bytes: &[u8]) -> Res {
        let n = bytes.len().min(dma.len.get() as usize);
        self.functions[fi]
            .dma
            .write(dma.addr.get(), &bytes[..n])
            .map_err(|_| Outcome::err(AdminStatus::DmaFault))?;
        Ok(Outcome::ok(0, n as u64))
    }

    fn exec_admin(&mut self, fi: usize, hdr: CmdHeader, cmd: AdminCommand) -> Res {
        let op = cmd.opcode();
        if self.functions[fi].failed.is_some() && op != AdminOpcode::Nop {
            // Stopped after an internal error: only a reset brings it back
            // (Nop still answers, so a driver can tell it from a dead one).
            return Err(AdminStatus::Internal.into());
        }
        if op.pf_only() && self.functions[fi].kind != FunctionKind::Pf {
            return Err(AdminStatus::Permission.into());
        }
        match cmd {
            AdminCommand::Nop => Ok(Outcome::ok(0, 0)),
            AdminCommand::Identify(dma) => self.dma_out(fi, &dma, self.device_info().as_bytes()),
            AdminCommand::LifCreate(l) => self.lif_create(fi, &l),
            AdminCommand::LifDestroy => {
                self.owned_lif(fi, hdr.lif)?;
                self.destroy_lif(hdr.lif);
                Ok(Outcome::ok(0, 0))
            }
            AdminCommand::LifList(dma) => {
                let pf = self.functions[fi].kind == FunctionKind::Pf;
                let infos: Vec<LifInfo> = self
                    .lifs
                    .iter()
                    .flatten()
                    .filter(|l| pf || usize::from(l.function) == fi)
                    .map(lif_info)
                    .collect();
                let bytes: Vec<u8> = infos.iter().flat_map(|i| i.as_bytes().to_vec()).collect();
                let room = dma.len.get() as usize / core::mem::size_of::<LifInfo>();
                let n = infos.len().min(room);
                self.dma_out(fi, &dma, &bytes[..n * core::mem::size_of::<LifInfo>()])?;
                Ok(Outcome::ok(infos.len() as u32, n as u64))
            }
            AdminCommand::QueueCreate(q) => self.queue_create(fi, hdr.lif, &q),
            AdminCommand::QueueDestroy(q) => {
                self.owned_lif(fi, hdr.lif)?;
                let lif = self.lifs[usize::from(hdr.lif)].as_mut().expect("checked");
                let gone = match QueueType::from_raw(q.qtype) {
                    Ok(QueueType::Tx) => lif
                        .txqs
                        .get_mut(usize::from(q.qindex.get()))
                        .and_then(Option::take)
                        .is_some(),
                    Ok(QueueType::Rx) => lif
                        .rxqs
                        .get_mut(usize::from(q.qindex.get()))
                        .and_then(Option::take)
                        .is_some(),
                    _ => false,
                };
                if !gone {
                    return Err(AdminStatus::NoEntry.into());
                }
                lif.trim_queues();
                Ok(Outcome::ok(0, 0))
            }
            AdminCommand::QueueReset(q) => self.queue_reset(fi, hdr.lif, &q),
            AdminCommand::MeterGet(m) => {
                let l = self.owned_lif(fi, hdr.lif)?;
                let cfg = l
                    .meters
                    .applied(MeterResource::from_raw(m.resource).expect("decoder checked"));
                self.dma_out(fi, &m.dma, cfg.as_bytes())
            }
            AdminCommand::MeterSet(m) => {
                if self.lif(hdr.lif).is_none() {
                    return Err(AdminStatus::NoEntry.into());
                }
                let now = self.now();
                let lif = self.lifs[usize::from(hdr.lif)]
                    .as_mut()
                    .ok_or(Outcome::err(AdminStatus::NoEntry))?;
                lif.meters.set(&m, now).map_err(|(s, why)| {
                    tracing::debug!(function = fi, "MeterSet refused: {why}");
                    Outcome::err(s)
                })?;
                // The PF's regulation belongs to the slot: it outlives the
                // LIF and applies to the next one created there.
                let (owner, slot) = (usize::from(lif.function), usize::from(lif.slot));
                let applied = lif.meters.applied(m.resource());
                let r = usize::from(m.resource);
                if let Some(reg) = self.functions[owner].regulation.get_mut(slot) {
                    reg[r] = (m.mode() != abi::MeterMode::Off).then_some(applied);
                }
                self.switch.mirror_meter(hdr.lif, &m, now);
                Ok(Outcome::ok(0, 0))
            }
            AdminCommand::ModerationGet(m) => {
                let v = usize::from(m.vector.get());
                let func = &self.functions[fi];
                let applied = func
                    .vectors
                    .get(v)
                    .ok_or(Outcome::err(AdminStatus::NoEntry))?
                    .moderation;
                self.dma_out(fi, &m.dma, applied.as_bytes())
            }
            AdminCommand::ModerationSet(m) => {
                let v = usize::from(m.vector.get());
                let func = &mut self.functions[fi];
                let vec = func.vectors.get_mut(v).ok_or(Outcome::err(AdminStatus::NoEntry))?;
                // Intervals are in µs, the device's step is 1 µs: applied
                // as given. Off clears the intervals.
                let mut applied = m;
                if m.mode() == ModerationMode::Off {
                    applied = default_moderation(v as u16);
                    applied.high_watermark_pct = m.high_watermark_pct;
                }
                vec.set_moderation(applied);
                Ok(Outcome::ok(0, 0))
            }
            AdminCommand::StatsGet(dma) if hdr.lif == abi::LIF_NONE => {
                // The function's retired counters.
                let mut st = LifStats {
                    lif: abi::LIF_NONE.into(),
                    device_clock: self.now().into(),
                    ..Default::default()
                };
                for (i, c) in self.functions[fi].retired.iter().enumerate().take(LIF_COUNTERS) {
                    st.counters[i] = U64::new(*c);
                }
                self.dma_out(fi, &dma, st.as_bytes())
            }
            AdminCommand::StatsGet(dma) => {
                let l = self.owned_lif(fi, hdr.lif)?;
                let mut st = LifStats {
                    lif: l.id.into(),
                    device_clock: self.now().into(),
                    ..Default::default()
                };
                for (i, c) in l.counters.iter().enumerate().take(LIF_COUNTERS) {
                    st.counters[i] = U64::new(*c);
                }
                self.dma_out(fi, &dma, st.as_bytes())
            }
            AdminCommand::PortStatsGet(dma) => {
                let mut st = LifStats {
                    lif: abi::LIF_NONE.into(),
                    device_clock: self.now().into(),
                    ..Default::default()
                };
                for (i, c) in self.uplink_counters.iter().enumerate().take(LIF_COUNTERS) {
                    st.counters[i] = U64::new(*c);
                }
                self.dma_out(fi, &dma, st.as_bytes())
            }
            AdminCommand::TableEntryList(t) => {
                let (sw, tid, from) = (&self.switch, t.table_id.get(), t.from.get() as usize);
                let page = |room| sw.list(tid, from, room);
                let (bytes, n, total) = table_page("TableEntryList", &t, page)?;
                if !bytes.is_empty() {
                    self.dma_out(fi, &t.dma, &bytes)?;
                }
                Ok(Outcome::ok(n, total))
            }
            AdminCommand::PipelineCounterGet(c) => {
                let room = page_room::<CounterCell>(&c.dma)?;
                let p = self.switch.program().ok_or(Outcome::err(AdminStatus::NoEntry))?;
                let id = u16::try_from(c.counter_id.get()).map_err(|_| Outcome::err(AdminStatus::NoEntry))?;
                let cells = p
                    .program()
                    .counters
                    .get(usize::from(id))
                    .map(|d| d.size)
                    .ok_or(Outcome::err(AdminStatus::NoEntry))?;
                let (bytes, n) = cells_page(c.from.get(), cells, room, |i| {
                    let (packets, octets) = p.counter(id, i).unwrap_or((0, 0));
                    CounterCell {
                        packets: packets.into(),
                        bytes: octets.into(),
                    }
                });
                if !bytes.is_empty() {
                    self.dma_out(fi, &c.dma, &bytes)?;
                }
                Ok(Outcome::ok(n, u64::from(cells)))
            }
            AdminCommand::PacketInRead(dma) => self.packet_in_read(fi, &dma),
            AdminCommand::PipelineCounterSet(c) => {
                let p = self.switch.program_mut().ok_or(Outcome::err(AdminStatus::NoEntry))?;
                let id = u16::try_from(c.counter_id.get()).map_err(|_| Outcome::err(AdminStatus::NoEntry))?;
                let index = Some(c.index.get()).filter(|&i| i != abi::COUNTER_ALL_CELLS);
                let set = p
                    .set_counter(id, index, (c.packets.get(), c.bytes.get()))
                    .ok_or(Outcome::err(AdminStatus::NoEntry))?;
                Ok(Outcome::ok(set, 0))
            }
            AdminCommand::PacketInject(p) => self.packet_inject(fi, &p),
            AdminCommand::EventsGet(e) => {
                let room = e.dma.len.get() as usize / core::mem::size_of::<DeviceEvent>();
                if room == 0 {
                    return Err(AdminStatus::Invalid.into());
                }
                let (events, next) = self.events.since(e.from_seq.get(), room);
                let bytes: Vec<u8> = events.iter().flat_map(|x| x.as_bytes().to_vec()).collect();
                if !bytes.is_empty() {
                    self.dma_out(fi, &e.dma, &bytes)?;
                }
                Ok(Outcome::ok(events.len() as u32, next))
            }
            AdminCommand::FunctionConfigSet(c) => self.function_config_set(&c),
            AdminCommand::FunctionConfigGet(c) => {
                let (f, slot) = (c.function.get(), c.slot.get());
                let sc = self
                    .functions
                    .get(usize::from(f))
                    .and_then(|func| func.slot_config.get(usize::from(slot)))
                    .ok_or(Outcome::err(AdminStatus::NoEntry))?;
                let out = sc.to_abi(f, slot);
                self.dma_out(fi, &c.dma, out.as_bytes())
            }
            AdminCommand::PipelineLoad(p) => self.pipeline_chunk(fi, &p),
            AdminCommand::TableDataList(t) => {
                let (sw, tid, from) = (&self.switch, t.table_id.get(), t.from.get() as usize);
                let page = |room| sw.list_data(tid, from, room);
                let (bytes, n, total) = table_page("TableDataList", &t, page)?;
                if !bytes.is_empty() {
                    self.dma_out(fi, &t.dma, &bytes)?;
                }
                Ok(Outcome::ok(n, total))
            }
            AdminCommand::PipelineMeterGet(m) => {
                let room = page_room::<MeterConfig>(&m.dma)?;
                let p = self.switch.program().ok_or(Outcome::err(AdminStatus::NoEntry))?;
                let id = u16::try_from(m.meter_id.get()).map_err(|_| Outcome::err(AdminStatus::NoEntry))?;
                let cells = p
                    .program()
                    .meters
                    .get(usize::from(id))
                    .map(|d| d.size)
                    .ok_or(Outcome::err(AdminStatus::NoEntry))?;
                let (bytes, n) = cells_page(m.from.get(), cells, room, |i| p.meter_config(id, i).unwrap_or_default());
                if !bytes.is_empty() {
                    self.dma_out(fi, &m.dma, &bytes)?;
                }
                Ok(Outcome::ok(n, u64::from(cells)))
            }
            AdminCommand::PipelineMeterSet(m) => {
                let now = self.now();
                let p = self.switch.program_mut().ok_or(Outcome::err(AdminStatus::NoEntry))?;
                let id = u16::try_from(m.meter_id.get()).map_err(|_| Outcome::err(AdminStatus::NoEntry))?;
                let prog = p.program();
                let def = prog
                    .meters
                    .get(usize::from(id))
                    .ok_or(Outcome::err(AdminStatus::NoEntry))?;
                // A per-LIF meter is the LIF's (MeterSet), a direct one its
                // entry's (TableDataSet).
                if !prog.is_indexed_meter(usize::from(id)) {
                    return Err(AdminStatus::Invalid.into());
                }
                if m.index.get() >= def.size {
                    return Err(AdminStatus::NoEntry.into());
                }
                p.set_meter(id, m.index.get(), &m.config, now).map_err(|e| {
                    tracing::debug!(function = fi, "PipelineMeterSet refused: {e}");
                    Outcome::err(AdminStatus::Invalid)
                })?;
                Ok(Outcome::ok(1, 0))
            }
            AdminCommand::TableDataSet(dma) => {
                let mut buf = [0u8; core::mem::size_of::<TableEntryData>()];
                if (dma.len.get() as usize) < buf.len() {
                    return Err(AdminStatus::Invalid.into());
                }
                self.functions[fi]
                    .dma
                    .read(dma.addr.get(), &mut buf)
                    .map_err(|_| Outcome::err(AdminStatus::DmaFault))?;
                let d = TableEntryData::parse(&buf).map_err(|_| Outcome::err(AdminStatus::Invalid))?;
                let now = self.now();
                self.switch.set_data(&d, now).map_err(|(s, why)| {
                    tracing::debug!(function = fi, "TableDataSet refused: {why}");
                    Outcome::err(s)
                })?;
                Ok(Outcome::ok(0, 0))
            }
            AdminCommand::TableEntryAdd(dma) | AdminCommand::TableEntryDel(dma) => {
                let add = op == AdminOpcode::TableEntryAdd;
                let mut buf = [0u8; core::mem::size_of::<TableEntry>()];
                if (dma.len.get() as usize) < buf.len() {
                    return Err(AdminStatus::Invalid.into());
                }
                self.functions[fi]
                    .dma
                    .read(dma.addr.get(), &mut buf)
                    .map_err(|_| Outcome::err(AdminStatus::DmaFault))?;
                let entry = TableEntry::parse(&buf).map_err(|_| Outcome::err(AdminStatus::Invalid))?;
                let lifs = &self.lifs;
                let exists = |l: u16| lifs.get(usize::from(l)).is_some_and(Option::is_some);
                self.switch.apply(&entry, add, exists).map_err(|(s, why)| {
                    tracing::debug!(function = fi, "table entry refused: {why}");
                    Outcome::err(s)
                })?;
                Ok(Outcome::ok(self.switch.static_entries() as u32, 0))
            }
        }
    }
}

impl Device {
    /// `PacketInRead`: as many whole records as the buffer holds, oldest
    /// first; frames that do not fit stay queued for the next read.
    fn packet_in_read(&mut self, fi: usize, dma: &abi::DmaRef) -> Res {
        let room = dma.len.get() as usize;
        let mut out = Vec::new();
        let mut n = 0usize;
        for (lif, frame) in &self.cpu_queue {
            if out.len() + abi::PacketInRecord::span(frame.len()) > room {
                break;
            }
            n += 1;
            let rec = abi::PacketInRecord {
                ingress_lif: (*lif).into(),
                rsvd: 0.into(),
                len: (frame.len() as u32).into(),
            };
            out.extend_from_slice(rec.as_bytes());
            out.extend_from_slice(frame);
            out.resize(out.len().next_multiple_of(8), 0);
        }
        if n == 0 && !self.cpu_queue.is_empty() {
            // Not even the oldest frame fits: the buffer is too small.
            return Err(AdminStatus::Invalid.into());
        }
        if !out.is_empty() {
            // Written first, drained after: a DMA fault loses no frame.
            self.dma_out(fi, dma, &out)?;
        }
        self.cpu_queue.drain(..n);
        Ok(Outcome::ok(n as u32, self.cpu_queue.len() as u64))
    }

    /// `PacketInject`: read the frame, then deliver it to the LIF's RX
    /// rings or out of the uplink, past the pipeline. It ends in the
    /// receiver's counters (or `WireTxPackets`), and the uplink's
    /// `CpuInjected` counts it.
    fn packet_inject(&mut self, fi: usize, p: &abi::PacketInject) -> Res {
        let target = p.lif.get();
        if target != abi::LIF_NONE && !self.lifs.get(usize::from(target)).is_some_and(Option::is_some) {
            return Err(AdminStatus::NoEntry.into());
        }
        // The length was checked against MAX_FRAME_LEN when decoded.
        let mut frame = vec![0u8; p.dma.len.get() as usize];
        self.functions[fi]
            .dma
            .read(p.dma.addr.get(), &mut frame)
            .map_err(|_| Outcome::err(AdminStatus::DmaFault))?;
        let now = self.now();
        self.uplink_counters[abi::LifCounter::CpuInjected as usize] += 1;
        if target == abi::LIF_NONE {
            self.port.transmit(now, &frame);
            self.uplink_counters[abi::LifCounter::WireTxPackets as usize] += 1;
            self.audit.injected_to_wire += 1;
        } else {
            self.audit.to_lif += 1;
            self.inject_to_lif(usize::from(target), &frame, now);
        }
        Ok(Outcome::ok(0, 0))
    }
}

fn ring_order_ok(min: u8, max: u8, q: &QueueCreate) -> bool {
    (min..=max).contains(&q.ring_order)
}

fn queue_mem_status(e: QueueMemError) -> Outcome {
    match e {
        QueueMemError::Dma(f) => {
            tracing::debug!("queue memory not reachable: {f}");
            Outcome::err(AdminStatus::DmaFault)
        }
        QueueMemError::Ring => Outcome::err(AdminStatus::Internal),
    }
}

fn lif_info(l: &Lif) -> LifInfo {
    LifInfo {
        lif: l.id.into(),
        function_id: l.function.into(),
        slot: l.slot.into(),
        state: if l.has_error() { lif_state::ERROR } else { lif_state::UP },
        rsvd0: 0,
        ntxq: (l.txqs.iter().flatten().count() as u16).into(),
        nrxq: (l.rxqs.iter().flatten().count() as u16).into(),
        mac: l.mac,
        rsvd1: [0; 6],
        name: l.name,
        rsvd2: [0; 8],
    }
}

/// How many whole `T` records fit in `dma`; none is an invalid command.
fn page_room<T>(dma: &abi::DmaRef) -> Result<u32, Outcome> {
    let room = dma.len.get() as usize / core::mem::size_of::<T>();
    if room == 0 {
        return Err(AdminStatus::Invalid.into());
    }
    Ok(u32::try_from(room).unwrap_or(u32::MAX))
}

/// Cells `from..` of an array of `cells` (none past its end), as many as
/// `room` holds, each as `cell` gives it: their bytes and how many.
fn cells_page<T: IntoBytes + zerocopy::Immutable>(
    from: u32,
    cells: u32,
    room: u32,
    cell: impl Fn(u32) -> T,
) -> (Vec<u8>, u32) {
    let from = from.min(cells);
    let to = cells.min(from.saturating_add(room));
    let mut bytes = Vec::with_capacity((to - from) as usize * core::mem::size_of::<T>());
    for i in from..to {
        bytes.extend_from_slice(cell(i).as_bytes());
    }
    (bytes, to - from)
}

/// One page of a table listing (`TableEntryList`, `TableDataList`): as
/// many whole records as fit the buffer, from `page(room)`; the bytes to
/// write, the records in them and the table's total.
fn table_page<T: IntoBytes + zerocopy::Immutable>(
    what: &str,
    t: &abi::TableListRef,
    page: impl FnOnce(usize) -> Result<(Vec<T>, usize), crate::device::switch::EntryRefusal>,
) -> Result<(Vec<u8>, u32, u64), Outcome> {
    let room = page_room::<T>(&t.dma)? as usize;
    let (records, total) = page(room).map_err(|(status, why)| {
        tracing::debug!(table = t.table_id.get(), "{what} refused: {why}");
        Outcome::err(status)
    })?;
    let bytes: Vec<u8> = records.iter().flat_map(|e| e.as_bytes().to_vec()).collect();
    Ok((bytes, records.len() as u32, total as u64))
}
