//! Faults the simulator injects on purpose, so the driver's detection and
//! recovery are tested deterministically (virtual time, and where a plan
//! is drawn at random, a seed).

use super::queue::DeviceQueue;
use super::Device;
use crate::clock::{Nanos, SimRng};
use dataplane::abi::{
    AdminCmd, AdminComp, AdminOpcode, AdminStatus, CompStatus, FromBytes, RxDesc, TxDesc, LIF_UPLINK,
};

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next descriptor the fetch engine takes from this TX queue is
    /// treated as malformed: the queue stops with `BadDescriptor` at it.
    BadDescriptor { lif: u16, queue: u16 },
    /// The next RX buffer this queue hands the device is treated as
    /// malformed: the frame is dropped (`DropQueueError`) and the queue
    /// stops with `BadDescriptor`.
    BadRxDescriptor { lif: u16, queue: u16 },
    /// The function's next `count` interrupts are lost on the way (the
    /// device raised them; no eventfd is signalled).
    LoseInterrupts { function: u16, count: u32 },
    /// The fetch engine ignores this TX queue (its doorbells and ring)
    /// until `until`.
    StallFetch { lif: u16, queue: u16, until: Nanos },
    /// The function resets by itself (a firmware restart): its LIFs and
    /// queues are gone, its admin queue too, mid-traffic.
    ResetFunction { function: u16 },
    /// The engine panics the next time it serves this LIF: a stand-in for
    /// a bug, to show that the device contains it (the LIF's function
    /// stops in an error state, every other function carries on).
    Panic { lif: u16 },
    /// The function's next successful admin command that `lie` is about
    /// completes with the lie's value instead of the truth (a buggy or
    /// hostile device, for the driver's range checks). Lies queue up and
    /// are told in order, each once.
    Lie { function: u16, lie: Lie },
    /// An RX completion the device never earned, written now to this
    /// queue's completion ring: status Ok, naming descriptor `index` and
    /// `len` bytes, from the wire. Nothing else changes (the ring, the
    /// buffer, the counters).
    ForgeRxCompletion { lif: u16, queue: u16, index: u32, len: u16 },
}

/// What a lying device says in an admin completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// `QueueCreate` answers this queue index (`value`).
    QueueIndex(u32),
    /// `LifCreate` answers this LIF number (`value`).
    LifNumber(u32),
    /// `LifCreate` answers this doorbell slot (`data`).
    LifSlot(u64),
    /// `LifList` answers that it wrote this many entries (`data`) of as
    /// many (`value`, saturated).
    LifListCount(u64),
    /// `TableEntryList` answers that it wrote `written` entries (`value`)
    /// of a table of `total` (`data`).
    TableListCount { written: u32, total: u64 },
    /// `PipelineCounterGet` answers that it wrote `written` cells (`value`)
    /// of an array of `total` (`data`).
    CounterCellCount { written: u32, total: u64 },
    /// `PacketInRead` answers that it wrote this many records (`value`).
    PacketInCount(u32),
    /// `TableDataList` answers that it wrote `written` records (`value`)
    /// of a table of `total` (`data`).
    TableDataCount { written: u32, total: u64 },
    /// `PipelineMeterGet` answers that it wrote `written` cells (`value`)
    /// of an array of `total` (`data`).
    MeterCellCount { written: u32, total: u64 },
}

impl Lie {
    /// The command the lie is about.
    pub fn opcode(self) -> AdminOpcode {
        match self {
            Lie::QueueIndex(_) => AdminOpcode::QueueCreate,
            Lie::LifNumber(_) | Lie::LifSlot(_) => AdminOpcode::LifCreate,
            Lie::LifListCount(_) => AdminOpcode::LifList,
            Lie::TableListCount { .. } => AdminOpcode::TableEntryList,
            Lie::CounterCellCount { .. } => AdminOpcode::PipelineCounterGet,
            Lie::PacketInCount(_) => AdminOpcode::PacketInRead,
            Lie::TableDataCount { .. } => AdminOpcode::TableDataList,
            Lie::MeterCellCount { .. } => AdminOpcode::PipelineMeterGet,
        }
    }

    /// Tell it in `comp`.
    fn tell(self, comp: &mut AdminComp) {
        match self {
            Lie::QueueIndex(v) | Lie::LifNumber(v) | Lie::PacketInCount(v) => comp.value = v.into(),
            Lie::LifSlot(d) => comp.data = d.into(),
            Lie::LifListCount(n) => {
                comp.data = n.into();
                comp.value = u32::try_from(n).unwrap_or(u32::MAX).into();
            }
            Lie::TableListCount { written, total }
            | Lie::CounterCellCount { written, total }
            | Lie::TableDataCount { written, total }
            | Lie::MeterCellCount { written, total } => {
                comp.value = written.into();
                comp.data = total.into();
            }
        }
    }
}

/// Why a fault could not be injected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("no such queue {queue} on LIF {lif}")]
    NoQueue { lif: u16, queue: u16 },
    #[error("no function {0}")]
    NoFunction(u16),
}

impl Device {
    /// The LIF a fault names.
    fn fault_lif(&mut self, lif: u16, queue: u16) -> Result<&mut super::Lif, FaultError> {
        self.lifs
            .get_mut(usize::from(lif))
            .and_then(Option::as_mut)
            .ok_or(FaultError::NoQueue { lif, queue })
    }

    /// The TX queue a fault names.
    fn fault_txq(&mut self, lif: u16, queue: u16) -> Result<&mut DeviceQueue<TxDesc>, FaultError> {
        let l = self.fault_lif(lif, queue)?;
        l.txqs
            .get_mut(usize::from(queue))
            .and_then(Option::as_mut)
            .ok_or(FaultError::NoQueue { lif, queue })
    }

    /// The RX queue a fault names.
    fn fault_rxq(&mut self, lif: u16, queue: u16) -> Result<&mut DeviceQueue<RxDesc>, FaultError> {
        let l = self.fault_lif(lif, queue)?;
        l.rxqs
            .get_mut(usize::from(queue))
            .and_then(Option::as_mut)
            .ok_or(FaultError::NoQueue { lif, queue })
    }

    /// Inject `f` now.
    pub fn inject(&mut self, f: Fault) -> Result<(), FaultError> {
        match f {
            Fault::BadDescriptor { lif, queue } => self.fault_txq(lif, queue)?.inject_bad = true,
            Fault::LoseInterrupts { function, count } => {
                let func = self
                    .functions
                    .get_mut(usize::from(function))
                    .ok_or(FaultError::NoFunction(function))?;
                func.lose_interrupts = func.lose_interrupts.saturating_add(count);
            }
            Fault::BadRxDescriptor { lif, queue } => self.fault_rxq(lif, queue)?.inject_bad = true,
            Fault::StallFetch { lif, queue, until } => self.fault_txq(lif, queue)?.stalled_until = until,
            Fault::Panic { lif } => self.fault_lif(lif, 0)?.inject_panic = true,
            Fault::ResetFunction { function } => {
                if usize::from(function) >= self.functions.len() {
                    return Err(FaultError::NoFunction(function));
                }
                self.reset_function(function, dataplane::abi::reset_reason::DEVICE);
            }
            Fault::Lie { function, lie } => self
                .functions
                .get_mut(usize::from(function))
                .ok_or(FaultError::NoFunction(function))?
                .lies
                .push(lie),
            Fault::ForgeRxCompletion { lif, queue, index, len } => {
                let now = self.now();
                let q = self.fault_rxq(lif, queue)?;
                let c = super::queue::completion(
                    CompStatus::Ok,
                    LIF_UPLINK,
                    dataplane::ring::RingIndex(index),
                    len,
                    0,
                    now,
                );
                q.core.post_completion(c);
                q.core.publish_cq_tail();
            }
        }
        Ok(())
    }

    /// Replace what the admin completion `comp` (16 bytes, for `cmd`) of
    /// function `fi` says with the first pending lie about its command, if
    /// the command succeeded and there is one (`Fault::Lie`).
    pub(super) fn apply_lies(&mut self, fi: usize, cmd: &AdminCmd, comp: &mut [u8; 16]) {
        let Some(func) = self.functions.get_mut(fi) else { return };
        let Ok(op) = AdminOpcode::from_raw(cmd.opcode) else {
            return;
        };
        let Ok(c) = AdminComp::mut_from_bytes(comp) else { return };
        if c.status != AdminStatus::Ok.raw() {
            return;
        }
        if let Some(i) = func.lies.iter().position(|l| l.opcode() == op) {
            let lie = func.lies.remove(i);
            tracing::debug!(function = fi, "admin {op:?}: lying ({lie:?})");
            lie.tell(c);
        }
    }
}

/// Faults at times drawn from a seed: `n` faults over `[start, end)`, each
/// of a kind `pick` chooses from the drawn number.
pub fn plan(seed: u64, n: usize, start: Nanos, end: Nanos, pick: impl Fn(u64) -> Fault) -> Vec<(Nanos, Fault)> {
    let mut rng = SimRng::new(seed);
    let mut v: Vec<(Nanos, Fault)> = (0..n)
        .map(|_| {
            let t = start + rng.below(end.saturating_sub(start).max(1));
            (t, pick(rng.next_u64()))
        })
        .collect();
    v.sort_by_key(|(t, _)| *t);
    v
}
