//! The P4Runtime gRPC server (tonic), on a runtime thread of its own.
//!
//! What it serves so far: `Capabilities` (API version 1.4.1); the
//! `StreamChannel`'s client arbitration ([`arbitration`]): primary and
//! backups by election id per role, every update answered, every stream of
//! a role told when its primary changes, a taken election id or an unknown
//! device refused by ending that stream with the status; a stream ends
//! when its client half-closes (p4runtime-shell's teardown waits for it).
//! `SetForwardingPipelineConfig` (VERIFY, VERIFY_AND_SAVE,
//! VERIFY_AND_COMMIT, COMMIT; primary only) with the pipeline image as
//! `p4_device_config`, checked against the P4Info given
//! ([`crate::p4info::check_matches`]) before the device sees it, and
//! `GetForwardingPipelineConfig` (every response type); `Write` and
//! `Read` of table entries ([`crate::entries`] checks them; one
//! `p4.v1.Error` per update when any fails), per-LIF meters and counters;
//! the StreamChannel's PacketOut and PacketIn through the device's CPU
//! port ([`packets`]); RECONCILE_AND_COMMIT keeps the table entries
//! across a compatible program ([`reconcile`]); direct counters and meters
//! ([`direct`]). Other entities answer `UNIMPLEMENTED`.

pub mod arbitration;
mod direct;
pub mod packets;
mod reconcile;

use crate::proto::p4::v1::p4_runtime_server::{P4Runtime, P4RuntimeServer};
use crate::proto::p4::v1::stream_message_request::Update as In;
use crate::proto::p4::v1::stream_message_response::Update as Out;
use crate::proto::p4::v1::*;
use arbitration::{Arbiter, Notices};
use dataplane::abi::{MeterConfig, MeterResource, TableEntry};
use dataplane::pipeline::Program;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// The P4Runtime API version this server speaks.
pub const API_VERSION: &str = "1.4.1";

/// Messages a stream may have queued towards its client before the server
/// drops further notices to it (a client that does not read).
pub const STREAM_QUEUE: usize = 64;

type Outbox = mpsc::Sender<Result<StreamMessageResponse, Status>>;

/// What the server needs of the device behind it.
pub trait Target: Send + Sync + 'static {
    /// Load `program` (its image is `image`; the server decoded, validated
    /// and checked it against the controller's P4Info) into the device,
    /// replacing what runs there. `Err`: the device's refusal, in words
    /// (the running pipeline stays).
    fn load_pipeline(&self, program: &Program, image: &[u8]) -> Result<(), String>;

    /// Add (`insert`) or delete a table entry of the loaded program
    /// (checked against it by [`crate::entries::to_abi`]). `Err`: the
    /// P4Runtime status for the device's refusal and its words.
    fn table_entry(&self, insert: bool, entry: &TableEntry) -> Result<(), crate::entries::Refusal>;

    /// Every entry of table `table` (the program's number) as the device
    /// holds it, those it installed itself included. `Err`: the status
    /// and words for a device that cannot answer.
    fn table_entries(&self, table: u32) -> Result<Vec<TableEntry>, crate::entries::Refusal>;

    /// Set LIF `lif`'s meter (`cfg.resource`) and answer what the device
    /// applied (see [`crate::meters`]).
    fn meter_set(&self, lif: u16, cfg: &MeterConfig) -> Result<MeterConfig, crate::entries::Refusal>;

    /// LIF `lif`'s applied meter for `resource`.
    fn meter_get(&self, lif: u16, resource: MeterResource) -> Result<MeterConfig, crate::entries::Refusal>;

    /// The device's LIFs (for a read of every cell of a per-LIF meter).
    fn lifs(&self) -> Result<Vec<u16>, crate::entries::Refusal>;

    /// Every cell of the loaded program's counter array `counter` (its
    /// number in the program), `(packets, bytes)` each.
    fn counters(&self, counter: u32) -> Result<Vec<(u64, u64)>, crate::entries::Refusal>;

    /// Set cell `index` of the loaded program's counter array `counter`
    /// (every cell with `None`) to `(packets, bytes)`.
    fn counter_set(&self, counter: u32, index: Option<u32>, value: (u64, u64)) -> Result<(), crate::entries::Refusal> {
        let _ = (counter, index, value);
        Err((tonic::Code::Unimplemented, "this device cannot set its counters".into()))
    }

    /// Every cell of the loaded program's meter array `meter` as the
    /// device applied it (device ABI 1.6, `PipelineMeterGet`).
    fn pipeline_meters(&self, meter: u32) -> Result<Vec<MeterConfig>, crate::entries::Refusal> {
        let _ = meter;
        Err((
            tonic::Code::Unimplemented,
            "this device has no program meter commands".into(),
        ))
    }

    /// Configure cell `index` of the loaded program's indexed meter array
    /// `meter` (device ABI 1.6, `PipelineMeterSet`).
    fn pipeline_meter_set(&self, meter: u32, index: u32, cfg: &MeterConfig) -> Result<(), crate::entries::Refusal> {
        let _ = (meter, index, cfg);
        Err((
            tonic::Code::Unimplemented,
            "this device has no program meter commands".into(),
        ))
    }

    /// Every entry of table `table` with its direct counter and meter
    /// cells (device ABI 1.6, `TableDataList`).
    fn table_data(&self, table: u32) -> Result<Vec<dataplane::abi::TableEntryData>, crate::entries::Refusal> {
        let _ = table;
        Err((
            tonic::Code::Unimplemented,
            "this device has no direct counters or meters".into(),
        ))
    }

    /// Set the direct cells `d.flags` names of the entry `d.entry` names
    /// (device ABI 1.6, `TableDataSet`).
    fn set_table_data(&self, d: &dataplane::abi::TableEntryData) -> Result<(), crate::entries::Refusal> {
        let _ = d;
        Err((
            tonic::Code::Unimplemented,
            "this device has no direct counters or meters".into(),
        ))
    }

    /// Send `frame` through the CPU port to LIF `lif`, or out of the
    /// uplink with `None`, past the pipeline (a PacketOut).
    fn packet_out(&self, lif: Option<u16>, frame: &[u8]) -> Result<(), crate::entries::Refusal> {
        let _ = (lif, frame);
        Err((tonic::Code::Unimplemented, "this device has no CPU port".into()))
    }

    /// Frames the program sent to the CPU port, oldest first, each with
    /// the LIF that sent it (0xffff: the wire), and how many more wait.
    fn packet_in(&self) -> Result<(Vec<packets::Frame>, u64), crate::entries::Refusal> {
        Err((tonic::Code::Unimplemented, "this device has no CPU port".into()))
    }
}

/// What identifies a table entry: its table, key, mask, prefix and
/// priority (the device's own rule).
fn entry_key(e: &TableEntry) -> (u32, Vec<u8>) {
    let mut k = Vec::with_capacity(72);
    k.extend_from_slice(&e.key[..usize::from(e.key_len)]);
    k.extend_from_slice(&e.mask[..usize::from(e.key_len)]);
    k.extend_from_slice(&e.prefix_len.get().to_be_bytes());
    k.extend_from_slice(&e.priority.get().to_be_bytes());
    (e.table_id.get(), k)
}

/// What the device runs, committed through this server: the config as
/// the controller sent it, its program and the program's ids.
#[derive(Debug)]
struct Committed {
    config: ForwardingPipelineConfig,
    program: Program,
    ids: crate::p4info::Ids,
}

#[derive(Debug, Default)]
struct Pipelines {
    committed: Option<Committed>,
    /// VERIFY_AND_SAVE's config and program, waiting for a COMMIT.
    saved: Option<(ForwardingPipelineConfig, Program)>,
}

/// The service's state.
pub struct Service {
    arbiter: Arc<Mutex<Arbiter<Outbox>>>,
    next_stream: AtomicU64,
    target: Arc<dyn Target>,
    pipelines: Mutex<Pipelines>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("arbiter", &self.arbiter)
            .field("pipelines", &self.pipelines)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// A service for device `device_id`, driving `target`.
    pub fn new(device_id: u64, target: impl Target) -> Service {
        Service {
            arbiter: Arc::new(Mutex::new(Arbiter::new(device_id))),
            next_stream: AtomicU64::new(1),
            target: Arc::new(target),
            pipelines: Mutex::default(),
        }
    }

    fn arbiter(&self) -> std::sync::MutexGuard<'_, Arbiter<Outbox>> {
        self.arbiter.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The request's device must be ours.
    fn check_device(&self, device_id: u64) -> Result<(), Status> {
        let ours = self.arbiter().device_id();
        if device_id == ours {
            Ok(())
        } else {
            Err(Status::not_found(format!(
                "no device {device_id}: this server serves device {ours}"
            )))
        }
    }

    /// The request must come from its role's primary.
    fn check_primary(&self, role: &str, election_id: &Option<Uint128>) -> Result<(), Status> {
        if self.arbiter().is_primary(role, arbitration::to_u128(election_id)) {
            Ok(())
        } else {
            Err(Status::permission_denied(
                "only the primary controller may do this: open a StreamChannel and win the arbitration with this election id",
            ))
        }
    }

    /// Decode and check a config's image against its P4Info.
    fn verify(config: &Option<ForwardingPipelineConfig>) -> Result<(ForwardingPipelineConfig, Program), Status> {
        let Some(config) = config else {
            return Err(Status::invalid_argument("no config: VERIFY and its kin need one"));
        };
        let Some(info) = &config.p4info else {
            return Err(Status::invalid_argument("the config has no p4info"));
        };
        let program = Program::from_image(&config.p4_device_config).map_err(|e| {
            Status::invalid_argument(format!(
                "p4_device_config is not a fairnic pipeline image (what p4c-fairnic -o writes): {e}"
            ))
        })?;
        crate::p4info::check_matches(info, &program).map_err(Status::invalid_argument)?;
        Ok((config.clone(), program))
    }

    fn commit(&self, config: ForwardingPipelineConfig, program: Program) -> Result<(), Status> {
        self.target
            .load_pipeline(&program, &config.p4_device_config)
            .map_err(|e| Status::internal(format!("the device refused the program: {e}")))?;
        let mut g = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        let ids = crate::p4info::Ids::of(&program);
        g.committed = Some(Committed { config, program, ids });
        Ok(())
    }

    /// One update of a Write: done, or the refusal for its `p4.v1.Error`.
    /// The device's tables are the truth (entries added by `nicctl`, or
    /// gone with a device reset, are what the device says): INSERT and
    /// DELETE go to the device, whose refusal (`Exists`, `NoEntry`)
    /// becomes ALREADY_EXISTS or NOT_FOUND; MODIFY takes the entry it
    /// replaces from `listed`, the device's listing of the table, read at
    /// the request's first MODIFY of that table and kept up to date by the
    /// request's later updates.
    fn apply(&self, u: &Update, listed: &mut Listed) -> Result<(), crate::entries::Refusal> {
        use crate::entries::to_abi;
        use tonic::Code;
        let g = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        let Some(c) = g.committed.as_ref() else {
            return Err((Code::FailedPrecondition, "no pipeline: set one first".into()));
        };
        let kind = update::Type::try_from(u.r#type).unwrap_or(update::Type::Unspecified);
        let te = match u.entity.as_ref().and_then(|e| e.entity.as_ref()) {
            Some(entity::Entity::TableEntry(te)) => te,
            Some(entity::Entity::MeterEntry(me)) => return self.apply_meter(c, me, kind),
            Some(entity::Entity::CounterEntry(ce)) => return self.apply_counter(c, ce, kind),
            Some(entity::Entity::DirectCounterEntry(d)) => {
                return self.apply_direct(
                    c,
                    direct::Kind::Counter,
                    d.table_entry.as_ref(),
                    d.data.as_ref(),
                    None,
                    kind,
                )
            }
            Some(entity::Entity::DirectMeterEntry(d)) => {
                if d.counter_data.is_some() {
                    return Err((Code::Unimplemented, "meter counter data".into()));
                }
                return self.apply_direct(
                    c,
                    direct::Kind::Meter,
                    d.table_entry.as_ref(),
                    None,
                    d.config.as_ref(),
                    kind,
                );
            }
            _ => {
                return Err((
                    Code::Unimplemented,
                    "only table, meter and counter entries (direct ones too) can be written to this fairnic server"
                        .into(),
                ))
            }
        };
        let e = to_abi(&c.program, &c.ids, te, kind != update::Type::Delete)?;
        // Direct cells given with an INSERT or MODIFY: checked before the
        // entry is written, set once it is in.
        let cells = match kind {
            update::Type::Insert | update::Type::Modify => self.entry_cells(c, te, &e)?,
            _ => None,
        };
        let (table, key) = entry_key(&e);
        match kind {
            update::Type::Insert => {
                self.target.table_entry(true, &e)?;
                if let Some(t) = listed.get_mut(&table) {
                    t.insert(key, e);
                }
                if let Some(d) = cells {
                    self.set_cells(&d)?;
                }
            }
            update::Type::Modify => {
                let t = match listed.entry(table) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let held = self.target.table_entries(table)?;
                        v.insert(held.into_iter().map(|h| (entry_key(&h).1, h)).collect())
                    }
                };
                let Some(old) = t.get(&key).copied() else {
                    return Err((Code::NotFound, "no entry with this key to modify".into()));
                };
                // A MODIFY changes what the entry does, not its direct
                // counter and meter: the cells not given are kept.
                let kept = self.kept_cells(c, &old, cells.as_ref())?;
                // The device has no modify: delete and add, and put the old
                // entry back if the new one is refused.
                if let Err(r) = self.target.table_entry(false, &old) {
                    // Gone since the listing: what the device says now.
                    if r.0 == Code::NotFound {
                        t.remove(&key);
                    }
                    return Err(r);
                }
                if let Err(r) = self.target.table_entry(true, &e) {
                    if self.target.table_entry(true, &old).is_err() {
                        t.remove(&key);
                    } else if let Some(k) = &kept {
                        self.set_cells(k)?;
                    }
                    return Err(r);
                }
                t.insert(key, e);
                for d in kept.iter().chain(cells.iter()) {
                    self.set_cells(d)?;
                }
            }
            update::Type::Delete => {
                self.target.table_entry(false, &e)?;
                if let Some(t) = listed.get_mut(&table) {
                    t.remove(&key);
                }
            }
            update::Type::Unspecified => {
                return Err((
                    Code::InvalidArgument,
                    "an update needs a type: INSERT, MODIFY or DELETE".into(),
                ))
            }
        }
        Ok(())
    }
}

/// A Write request's view of the tables it modifies: each table's
/// entries by key, as the device listed them and the request changed them.
type Listed = std::collections::HashMap<u32, std::collections::BTreeMap<Vec<u8>, TableEntry>>;

impl Service {
    /// A `MeterEntry` update: MODIFY of one cell of a per-LIF meter or of
    /// another indexed meter array of the program.
    fn apply_meter(&self, c: &Committed, me: &MeterEntry, kind: update::Type) -> Result<(), crate::entries::Refusal> {
        use crate::meters::{cell_of, meter_array, to_device, Array};
        use tonic::Code;
        if kind != update::Type::Modify {
            return Err((
                Code::InvalidArgument,
                "meter entries are modified only (INSERT and DELETE do not apply to a meter array)".into(),
            ));
        }
        let (m, size, array) = meter_array(&c.program, &c.ids, me.meter_id)?;
        let name = &c.program.meters[m].name;
        if me.counter_data.is_some() {
            return Err((Code::Unimplemented, "meter counter data".into()));
        }
        match array {
            Array::Lif(resource) => {
                let lif = cell_of(me.index.as_ref(), size, name)?;
                let now = self.target.meter_get(lif, resource)?;
                let cfg = to_device(resource, now.policy, me.config.as_ref())?;
                self.target.meter_set(lif, &cfg)?;
            }
            Array::Program(unit) => {
                let i = cell_of(me.index.as_ref(), size, name)?;
                let cfg = to_device(unit, 0, me.config.as_ref())?;
                self.target.pipeline_meter_set(m as u32, i, &cfg)?;
            }
        }
        Ok(())
    }

    /// The `MeterEntry`s a read asks for: one meter array or every indexed
    /// one (`meter_id` 0), one cell or every cell (a per-LIF meter's: every
    /// LIF's); each as the device applied it.
    fn read_meters(&self, c: &Committed, want: &MeterEntry) -> Result<Vec<Entity>, Status> {
        use crate::meters::{cell_of, from_device, meter_array, Array};
        let status = |(code, why): crate::entries::Refusal| Status::new(code, why);
        let arrays: Vec<(usize, u32, Array)> = if want.meter_id == 0 {
            c.ids
                .meters
                .iter()
                .filter_map(|&id| meter_array(&c.program, &c.ids, id).ok())
                .collect()
        } else {
            vec![meter_array(&c.program, &c.ids, want.meter_id).map_err(status)?]
        };
        let mut all_lifs = None;
        let mut out = Vec::new();
        let mut push = |m: usize, index: i64, cfg: &MeterConfig| {
            out.push(Entity {
                entity: Some(entity::Entity::MeterEntry(MeterEntry {
                    meter_id: c.ids.meters[m],
                    index: Some(Index { index }),
                    config: from_device(cfg),
                    counter_data: None,
                })),
            })
        };
        for (m, size, array) in arrays {
            let name = &c.program.meters[m].name;
            match array {
                Array::Lif(resource) => {
                    let lifs: Vec<u16> = match want.index {
                        Some(_) => vec![cell_of(want.index.as_ref(), size, name).map_err(status)?],
                        None => {
                            if all_lifs.is_none() {
                                all_lifs = Some(self.target.lifs().map_err(status)?);
                            }
                            let l = all_lifs.as_deref().unwrap_or_default();
                            l.iter().copied().filter(|&l| u32::from(l) < size).collect()
                        }
                    };
                    for lif in lifs {
                        let got = self.target.meter_get(lif, resource).map_err(status)?;
                        push(m, i64::from(lif), &got);
                    }
                }
                Array::Program(_) => {
                    let cells = self.target.pipeline_meters(m as u32).map_err(status)?;
                    let wanted: Vec<usize> = match &want.index {
                        None => (0..cells.len()).collect(),
                        Some(ix) => {
                            let n = u32::try_from(cells.len()).unwrap_or(u32::MAX);
                            vec![crate::entries::array_index("meter", name, ix.index, n).map_err(status)?]
                        }
                    };
                    for i in wanted {
                        push(m, i as i64, &cells[i]);
                    }
                }
            }
        }
        Ok(out)
    }
}

impl Service {
    /// A `CounterEntry` Write: MODIFY sets one cell, or every cell with the
    /// index left out, to the data given (none, or zeros: a reset).
    fn apply_counter(
        &self,
        c: &Committed,
        ce: &CounterEntry,
        kind: update::Type,
    ) -> Result<(), crate::entries::Refusal> {
        use tonic::Code;
        if kind != update::Type::Modify {
            return Err((
                Code::InvalidArgument,
                "a counter array's cells exist with the program: only MODIFY (set or reset) applies".into(),
            ));
        }
        let Some(i) = c.ids.counters.iter().position(|&id| id == ce.counter_id) else {
            return Err((Code::NotFound, format!("no counter with id {:#x}", ce.counter_id)));
        };
        if crate::p4info::Ids::is_direct(ce.counter_id) {
            return Err((
                Code::InvalidArgument,
                format!(
                    "counter {:#x} is a direct counter: write DirectCounterEntry",
                    ce.counter_id
                ),
            ));
        }
        let def = &c.program.counters[i];
        let index = match &ce.index {
            None => None,
            Some(ix) => Some(crate::entries::array_index("counter", &def.name, ix.index, def.size)?),
        };
        let d = ce.data.unwrap_or_default();
        let (Ok(packets), Ok(bytes)) = (u64::try_from(d.packet_count), u64::try_from(d.byte_count)) else {
            return Err((Code::InvalidArgument, "a counter's counts are not negative".into()));
        };
        self.target.counter_set(i as u32, index, (packets, bytes))
    }

    /// The `CounterEntry`s a read asks for: one array or every one, one
    /// cell or all; each as the device counted it, in the array's unit.
    fn read_counters(&self, c: &Committed, want: &CounterEntry) -> Result<Vec<Entity>, Status> {
        let arrays: Vec<usize> = if want.counter_id == 0 {
            (0..c.ids.counters.len())
                .filter(|&i| !crate::p4info::Ids::is_direct(c.ids.counters[i]))
                .collect()
        } else {
            match c.ids.counters.iter().position(|&id| id == want.counter_id) {
                Some(_) if crate::p4info::Ids::is_direct(want.counter_id) => {
                    return Err(Status::invalid_argument(format!(
                        "counter {:#x} is a direct counter: read DirectCounterEntry",
                        want.counter_id
                    )))
                }
                Some(i) => vec![i],
                None => return Err(Status::not_found(format!("no counter with id {:#x}", want.counter_id))),
            }
        };
        let mut out = Vec::new();
        for i in arrays {
            let def = &c.program.counters[i];
            let cells = self
                .target
                .counters(i as u32)
                .map_err(|(code, why)| Status::new(code, why))?;
            let wanted: Vec<usize> = match &want.index {
                None => (0..cells.len()).collect(),
                Some(ix) => {
                    let size = u32::try_from(cells.len()).unwrap_or(u32::MAX);
                    vec![crate::entries::array_index("counter", &def.name, ix.index, size)
                        .map_err(|(code, why)| Status::new(code, why))?]
                }
            };
            for x in wanted {
                let (packets, bytes) = cells[x];
                let data = direct::counter_data(def.unit, packets, bytes);
                out.push(Entity {
                    entity: Some(entity::Entity::CounterEntry(CounterEntry {
                        counter_id: c.ids.counters[i],
                        index: Some(Index { index: x as i64 }),
                        data: Some(data),
                    })),
                });
            }
        }
        Ok(out)
    }
}

/// Hand each notice to its stream without waiting: a stream whose client
/// does not read loses notices past [`STREAM_QUEUE`], never holds up the
/// others.
fn send_all(notices: Notices<Outbox>) {
    for (to, m) in notices {
        let _ = to.try_send(Ok(StreamMessageResponse {
            update: Some(Out::Arbitration(m)),
        }));
    }
}

fn stream_error(code: tonic::Code, message: String, details: Option<stream_error::Details>) -> StreamMessageResponse {
    StreamMessageResponse {
        update: Some(Out::Error(StreamError {
            canonical_code: code as i32,
            message,
            space: String::new(),
            code: 0,
            details,
        })),
    }
}

type BoxStream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl P4Runtime for Service {
    async fn write(&self, request: Request<WriteRequest>) -> Result<Response<WriteResponse>, Status> {
        let r = request.into_inner();
        self.check_device(r.device_id)?;
        self.check_primary(&r.role, &r.election_id)?;
        if r.atomicity != write_request::Atomicity::ContinueOnError as i32 {
            return Err(Status::unimplemented(
                "atomicity: only CONTINUE_ON_ERROR (each update on its own)",
            ));
        }
        if self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .committed
            .is_none()
        {
            return Err(Status::failed_precondition("no pipeline: set one first"));
        }
        let mut listed = Listed::new();
        let results: Vec<Result<(), crate::entries::Refusal>> =
            r.updates.iter().map(|u| self.apply(u, &mut listed)).collect();
        if results.iter().all(Result::is_ok) {
            return Ok(Response::new(WriteResponse {}));
        }
        // One p4.v1.Error per update, in order, OK ones included.
        let details: Vec<prost_types::Any> = results
            .iter()
            .map(|r| {
                let (code, message) = match r {
                    Ok(()) => (tonic::Code::Ok, String::new()),
                    Err((c, m)) => (*c, m.clone()),
                };
                prost_types::Any {
                    type_url: "type.googleapis.com/p4.v1.Error".into(),
                    value: prost::Message::encode_to_vec(&Error {
                        canonical_code: code as i32,
                        message,
                        space: String::new(),
                        code: 0,
                        details: None,
                    }),
                }
            })
            .collect();
        let failed = results.iter().filter(|r| r.is_err()).count();
        let message = format!("{failed} of {} update(s) failed", results.len());
        let status = crate::proto::google::rpc::Status {
            code: tonic::Code::Unknown as i32,
            message: message.clone(),
            details,
        };
        Err(Status::with_details(
            tonic::Code::Unknown,
            message,
            prost::Message::encode_to_vec(&status).into(),
        ))
    }

    type ReadStream = BoxStream<ReadResponse>;

    async fn read(&self, request: Request<ReadRequest>) -> Result<Response<Self::ReadStream>, Status> {
        let r = request.into_inner();
        self.check_device(r.device_id)?;
        let g = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        let Some(committed) = g.committed.as_ref() else {
            return Err(Status::failed_precondition("no pipeline: set one first"));
        };
        let Committed { program, ids, .. } = committed;
        let mut out = Vec::new();
        for ent in &r.entities {
            match &ent.entity {
                Some(entity::Entity::TableEntry(want)) => {
                    // One table or, with table_id 0, every one; with match
                    // fields, only the entry with that key.
                    let tables: Vec<u32> = if want.table_id == 0 {
                        (0..ids.tables.len() as u32).collect()
                    } else {
                        match ids.tables.iter().position(|&id| id == want.table_id) {
                            Some(t) => vec![t as u32],
                            None => return Err(Status::not_found(format!("no table with id {:#x}", want.table_id))),
                        }
                    };
                    let only = if want.table_id != 0 && !want.r#match.is_empty() {
                        let key = crate::entries::to_abi(program, ids, want, false)
                            .map_err(|(code, why)| Status::new(code, why))?;
                        Some(entry_key(&key))
                    } else {
                        None
                    };
                    for t in tables {
                        // With counter_data or meter_config asked for, the
                        // entries of a table that has them come with them.
                        let entries: Vec<(TableEntry, Option<dataplane::abi::TableEntryData>)> =
                            match self.entry_cells_read(committed, t as usize, want)? {
                                Some(cells) => cells.into_iter().map(|d| (d.entry, Some(d))).collect(),
                                None => self
                                    .target
                                    .table_entries(t)
                                    .map_err(|(code, why)| Status::new(code, why))?
                                    .into_iter()
                                    .map(|e| (e, None))
                                    .collect(),
                            };
                        for (e, cells) in entries {
                            if only.as_ref().is_some_and(|o| *o != entry_key(&e)) {
                                continue;
                            }
                            if let Some(mut te) = crate::entries::from_abi(program, ids, &e) {
                                if let Some(d) = &cells {
                                    self.fill_cells(committed, t as usize, want, d, &mut te);
                                }
                                out.push(Entity {
                                    entity: Some(entity::Entity::TableEntry(te)),
                                });
                            }
                        }
                    }
                }
                Some(entity::Entity::MeterEntry(want)) => {
                    out.extend(self.read_meters(committed, want)?);
                }
                Some(entity::Entity::CounterEntry(want)) => {
                    out.extend(self.read_counters(committed, want)?);
                }
                Some(entity::Entity::DirectCounterEntry(want)) => {
                    out.extend(self.read_direct(committed, direct::Kind::Counter, want.table_entry.as_ref())?);
                }
                Some(entity::Entity::DirectMeterEntry(want)) => {
                    out.extend(self.read_direct(committed, direct::Kind::Meter, want.table_entry.as_ref())?);
                }
                _ => return Err(Status::unimplemented(
                    "only table, meter and counter entries (direct ones too) can be read from this fairnic server yet",
                )),
            }
        }
        let stream = tokio_stream::iter(vec![Ok(ReadResponse { entities: out })]);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn set_forwarding_pipeline_config(
        &self,
        request: Request<SetForwardingPipelineConfigRequest>,
    ) -> Result<Response<SetForwardingPipelineConfigResponse>, Status> {
        use set_forwarding_pipeline_config_request::Action;
        let r = request.into_inner();
        self.check_device(r.device_id)?;
        self.check_primary(&r.role, &r.election_id)?;
        match Action::try_from(r.action) {
            Ok(Action::Verify) => {
                Self::verify(&r.config)?;
            }
            Ok(Action::VerifyAndSave) => {
                let saved = Self::verify(&r.config)?;
                self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).saved = Some(saved);
            }
            Ok(Action::VerifyAndCommit) => {
                let (config, program) = Self::verify(&r.config)?;
                self.commit(config, program)?;
                self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).saved = None;
            }
            Ok(Action::Commit) => {
                if r.config.is_some() {
                    return Err(Status::invalid_argument(
                        "COMMIT commits the saved config and carries none",
                    ));
                }
                let saved = self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).saved.take();
                let Some((config, program)) = saved else {
                    return Err(Status::not_found("COMMIT: no config saved (VERIFY_AND_SAVE first)"));
                };
                self.commit(config, program)?;
            }
            Ok(Action::ReconcileAndCommit) => {
                let (config, program) = Self::verify(&r.config)?;
                self.reconcile(config, program)?;
                self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).saved = None;
            }
            Ok(Action::Unspecified) | Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "action {} is not one of P4Runtime's",
                    r.action
                )))
            }
        }
        Ok(Response::new(SetForwardingPipelineConfigResponse {}))
    }

    async fn get_forwarding_pipeline_config(
        &self,
        request: Request<GetForwardingPipelineConfigRequest>,
    ) -> Result<Response<GetForwardingPipelineConfigResponse>, Status> {
        use get_forwarding_pipeline_config_request::ResponseType;
        let r = request.into_inner();
        self.check_device(r.device_id)?;
        let Ok(kind) = ResponseType::try_from(r.response_type) else {
            return Err(Status::invalid_argument(format!(
                "response type {} is not one of P4Runtime's",
                r.response_type
            )));
        };
        let committed = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .committed
            .as_ref()
            .map(|c| c.config.clone());
        let config = committed.map(|c| {
            let (info, device) = match kind {
                ResponseType::All => (c.p4info, c.p4_device_config),
                ResponseType::CookieOnly => (None, Vec::new()),
                ResponseType::P4infoAndCookie => (c.p4info, Vec::new()),
                ResponseType::DeviceConfigAndCookie => (None, c.p4_device_config),
            };
            ForwardingPipelineConfig {
                p4info: info,
                p4_device_config: device,
                cookie: c.cookie,
            }
        });
        Ok(Response::new(GetForwardingPipelineConfigResponse { config }))
    }

    type StreamChannelStream = ReceiverStream<Result<StreamMessageResponse, Status>>;

    async fn stream_channel(
        &self,
        request: Request<tonic::Streaming<StreamMessageRequest>>,
    ) -> Result<Response<Self::StreamChannelStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let stream = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let arbiter = self.arbiter.clone();
        let target = self.target.clone();
        tokio::spawn(async move {
            loop {
                let msg = match inbound.message().await {
                    Ok(Some(m)) => m,
                    // The client half-closed, or the transport failed.
                    Ok(None) | Err(_) => break,
                };
                match msg.update {
                    Some(In::Arbitration(u)) => {
                        let r = arbiter
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .update(stream, &u, tx.clone());
                        match r {
                            Ok(notices) => send_all(notices),
                            Err(refused) => {
                                let _ = tx.send(Err(Status::new(refused.code, refused.message))).await;
                                break;
                            }
                        }
                    }
                    Some(In::Packet(p)) => {
                        let (joined, primary) = {
                            let a = arbiter.lock().unwrap_or_else(|p| p.into_inner());
                            (a.is_member(stream), a.stream_is_primary(stream))
                        };
                        let sent = if !joined {
                            Err((
                                tonic::Code::PermissionDenied,
                                "send an arbitration update before any packet".to_string(),
                            ))
                        } else if !primary {
                            Err((
                                tonic::Code::PermissionDenied,
                                "only the primary controller may send packets".to_string(),
                            ))
                        } else {
                            match packets::packet_out_target(&p) {
                                Ok((lif, frame)) => {
                                    let (t, frame) = (target.clone(), frame.to_vec());
                                    tokio::task::spawn_blocking(move || t.packet_out(lif, &frame))
                                        .await
                                        .unwrap_or_else(|_| {
                                            Err((tonic::Code::Internal, "the PacketOut task failed".into()))
                                        })
                                }
                                Err(r) => Err(r),
                            }
                        };
                        if let Err((code, why)) = sent {
                            let details =
                                Some(stream_error::Details::PacketOut(PacketOutError { packet_out: Some(p) }));
                            let _ = tx.try_send(Ok(stream_error(code, why, details)));
                        }
                    }
                    Some(In::Other(_)) | None => {
                        let _ = tx.try_send(Ok(stream_error(
                            tonic::Code::InvalidArgument,
                            "a stream message must carry an arbitration update or a packet".into(),
                            None,
                        )));
                    }
                }
            }
            let notices = arbiter.lock().unwrap_or_else(|p| p.into_inner()).leave(stream);
            send_all(notices);
            // `tx` and the arbiter's copy are gone: the response stream ends.
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn capabilities(&self, _: Request<CapabilitiesRequest>) -> Result<Response<CapabilitiesResponse>, Status> {
        Ok(Response::new(CapabilitiesResponse {
            p4runtime_api_version: API_VERSION.into(),
        }))
    }
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serve `service` on `addr` (port 0: any free port) from a thread of
    /// its own (a single-threaded tokio runtime).
    pub fn start(addr: SocketAddr, service: Service) -> std::io::Result<Server> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let poller = packets::poll_packet_in(service.arbiter.clone(), service.target.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("nicdrv-p4runtime".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::spawn(poller);
                    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                    let serve = tonic::transport::Server::builder()
                        .serve_with_incoming(P4RuntimeServer::new(service), incoming);
                    // Not a graceful shutdown: a controller's stream stays
                    // open for as long as it likes. Leaving block_on drops
                    // the runtime, which ends every connection.
                    tokio::select! {
                        r = serve => if let Err(e) = r { eprintln!("p4runtime server: {e}") },
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
