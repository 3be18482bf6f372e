//! Faults the simulator injects on purpose, so the driver's detection and
//! recovery are tested deterministically (virtual time, and where a plan
//! is drawn at random, a seed).

use super::queue::DeviceQueue;
use super::Device;
use crate::clock::{Nanos, SimRng};
use dataplane::abi::{RxDesc, TxDesc};

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
            Fault::ResetFunction { function } => {
                if usize::from(function) >= self.functions.len() {
                    return Err(FaultError::NoFunction(function));
                }
                self.reset_function(function, dataplane::abi::reset_reason::DEVICE);
            }
        }
        Ok(())
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
