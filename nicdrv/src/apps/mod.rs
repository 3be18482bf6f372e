//! nicdrv's built-in applications, on a set of ports (one LIF with a TX
//! and an RX queue each) driven from one thread, in poll or interrupt
//! mode:
//!
//! - [`demo`]: the main job: victims and an aggressor sharing the
//!   pipeline, a live per-LIF table, the aggressor's meter lowered halfway
//!   through with nicctl, and a report comparing the two halves.
//! - [`gen`]: offers load on every LIF toward others, measures throughput
//!   and latency (hdrhistogram), and balances the books.
//! - [`relay`]: `forward` (RX on one LIF, TX on its partner) and `echo`
//!   (back out of the LIF it came in on).

pub mod demo;
pub mod gen;
pub mod relay;

use dataplane::abi::QueueType;
use host_driver::irq::Waiter;
use host_driver::mem::{DmaMemory, MemKind};
use host_driver::nic::{DriverError, Lif, Nic};
use host_driver::pool::{Mbuf, Pool, BUF_SIZE};
use host_driver::queue::{QueueError, RxQueue, TxQueue};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the application waits for packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Spin on the completion rings; the device raises no interrupts.
    Poll,
    /// Sleep on MSI-X eventfds when idle (consumer-flag protocol).
    Interrupt,
}

/// Why an application stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Driver(#[from] DriverError),
    #[error("{0}")]
    Queue(#[from] QueueError),
    #[error("{0}")]
    Mem(#[from] host_driver::mem::MemError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Config(String),
}

/// One LIF the application drives.
#[derive(Debug)]
pub struct Port {
    /// Index of its function in `Ports::nics`.
    pub nic: usize,
    pub lif: Lif,
    pub tx: TxQueue,
    pub rx: RxQueue,
}

/// Every port, their functions, and the packet pool they share.
#[derive(Debug)]
pub struct Ports {
    pub nics: Vec<Arc<Mutex<Nic>>>,
    pub ports: Vec<Port>,
    pub pool: Pool,
    pub waiter: Option<Waiter>,
    pub mode: Mode,
    /// log2 of each ring's length.
    pub order: u8,
    /// The device's events, read through a PF, from before the ports' LIFs
    /// were made (`None` without a PF: set one with [`EventWatch`] when the
    /// PF is driven apart from the ports, as nicdrv's embedded simulator
    /// does).
    pub events: Option<EventWatch>,
}

/// The device's event log as a PF reads it (`EventsGet`), from a cursor
/// on: what other functions did, or the device did to them.
#[derive(Debug)]
pub struct EventWatch {
    pf: Arc<Mutex<Nic>>,
    next: u64,
}

impl EventWatch {
    /// Events from now on (none of those the device logged before).
    pub fn from_now(pf: Arc<Mutex<Nic>>) -> Result<EventWatch, DriverError> {
        // Asking from past the end answers nothing, and where the end is.
        let next = pf.lock().unwrap_or_else(|e| e.into_inner()).events(u64::MAX)?.1;
        Ok(EventWatch { pf, next })
    }

    /// Every event the device keeps, oldest first.
    pub fn from_start(pf: Arc<Mutex<Nic>>) -> EventWatch {
        EventWatch { pf, next: 0 }
    }

    /// The events since the last call, each in words
    /// ([`host_driver::control::describe_event`]) with its device time; a gap (the
    /// device's log overflowed) is said too.
    pub fn poll(&mut self) -> Result<Vec<String>, DriverError> {
        let mut out = Vec::new();
        let mut nic = self.pf.lock().unwrap_or_else(|e| e.into_inner());
        // The device keeps EVENT_LOG_LEN events and answers as many as fit
        // the driver's buffer: a few rounds at most, whatever it claims.
        for _ in 0..16 {
            let (events, next) = nic.events(self.next)?;
            if let Some(first) = events.first() {
                let seq = first.seq.get();
                if seq > self.next {
                    out.push(format!(
                        "{} events lost: the device's log overflowed before they were read",
                        seq - self.next
                    ));
                }
            }
            for e in &events {
                out.push(format!(
                    "{} [device time {:.3} s]",
                    host_driver::control::describe_event(e),
                    e.device_clock.get() as f64 / 1e9
                ));
            }
            let moved = next != self.next;
            self.next = next;
            if events.is_empty() || !moved {
                break;
            }
        }
        Ok(out)
    }
}

/// How a watchdog check of a function came out.
#[derive(Debug)]
pub enum Health {
    /// It answers: a stalled queue was only slow, or its doorbell was
    /// lost; it was rung again.
    Kicked,
    /// It had reset by itself: brought back, with new LIFs and queues.
    /// Per port of that function: the frames its TX queue held (dropped,
    /// reason "device_reset"), and the frames that had arrived on its old
    /// RX queue and were not yet taken (for the application to receive).
    Recovered(Vec<(usize, u32, Vec<Mbuf>)>),
    /// The device is gone (the simulator exited, the VFIO device was
    /// removed): nothing more can be sent or counted.
    Gone(String),
}

/// IOVA of the shared packet pool in every function.
pub const POOL_IOVA: u64 = 0x40_0000_0000;

impl Ports {
    /// Create `lifs_per_function` LIFs with one queue pair each on every
    /// function, and a pool of `buffers` packet buffers mapped into all.
    pub fn setup(
        nics: Vec<Arc<Mutex<Nic>>>,
        lifs_per_function: u16,
        order: u8,
        buffers: u32,
        mode: Mode,
        mem_kind: MemKind,
    ) -> Result<Ports, AppError> {
        let bytes = u64::from(buffers) * u64::from(BUF_SIZE) + (1 << 20);
        let mem = Arc::new(DmaMemory::new(bytes, POOL_IOVA, mem_kind)?);
        let mut pool = Pool::new(mem.clone(), buffers)?;
        // A PF among the functions reads the device's events: from here on
        // (a device without events, ABI 1.0, has none to read).
        let events = nics
            .iter()
            .find(|n| n.lock().unwrap_or_else(|p| p.into_inner()).is_pf())
            .and_then(|pf| EventWatch::from_now(pf.clone()).ok());
        let mut ports = Vec::new();
        let mut eventfds = Vec::new();
        for (i, n) in nics.iter().enumerate() {
            let mut nic = n.lock().unwrap_or_else(|p| p.into_inner());
            nic.map_memory(&mem)?;
            for k in 0..lifs_per_function {
                let name = format!("f{}-lif{k}", nic.identity.function_id);
                let lif = nic.create_lif(&name, None)?;
                let vector = match mode {
                    Mode::Poll => None,
                    Mode::Interrupt if nic.vectors() > 0 => Some(k % nic.vectors()),
                    Mode::Interrupt => {
                        return Err(AppError::Config(format!(
                            "{}: no MSI-X vectors for interrupt mode",
                            nic.device()
                        )));
                    }
                };
                let tx = nic.create_txq(&lif, order, None)?;
                let mut rx = nic.create_rxq(&lif, order, vector)?;
                if mode == Mode::Poll {
                    rx.set_polling();
                }
                rx.refill(&mut pool)?;
                if let Some(v) = vector {
                    eventfds.push(nic.eventfd(v).expect("vector exists"));
                }
                ports.push(Port { nic: i, lif, tx, rx });
            }
        }
        let waiter = if mode == Mode::Interrupt {
            Some(Waiter::new(eventfds)?)
        } else {
            None
        };
        Ok(Ports {
            nics,
            ports,
            pool,
            waiter,
            mode,
            order,
            events,
        })
    }

    /// Reset port `i`'s TX queue, which the device stopped: returns the
    /// frames it held and never sent (dropped, reason "queue_reset").
    pub fn reset_tx(&mut self, i: usize) -> Result<u32, AppError> {
        let nic = self.nics[self.ports[i].nic].clone();
        let mut g = nic.lock().unwrap_or_else(|e| e.into_inner());
        Ok(g.reset_txq(&mut self.ports[i].tx, &mut self.pool)?.dropped)
    }

    /// Reset port `i`'s RX queue, which the device stopped (the frames it
    /// could not deliver meanwhile are its `drop_queue_error`).
    pub fn reset_rx(&mut self, i: usize) -> Result<(), AppError> {
        let nic = self.nics[self.ports[i].nic].clone();
        let mut g = nic.lock().unwrap_or_else(|e| e.into_inner());
        Ok(g.reset_rxq(&mut self.ports[i].rx, &mut self.pool)?)
    }

    /// Destroy port `i`'s RX queue and take the frames it holds: once the
    /// device has completed `QueueDestroy` it writes nothing more there,
    /// and every completion it owed the queue is in memory, so what the
    /// device counted as delivered to the LIF up to now is exactly what
    /// this returns and what was taken before. Frames that arrive
    /// meanwhile are dropped and counted by the device. The posted buffers
    /// go back to the pool; [`Ports::restart_rx`] gives the port a new
    /// queue.
    pub fn stop_rx(&mut self, i: usize) -> Result<Vec<Mbuf>, AppError> {
        let nic = self.nics[self.ports[i].nic].clone();
        let mut g = nic.lock().unwrap_or_else(|e| e.into_inner());
        let p = &mut self.ports[i];
        let (lif, q) = p.rx.id();
        g.destroy_queue(lif, QueueType::Rx, q)?;
        let mut out = Vec::new();
        if let Err(e) = p.rx.rx_take(&mut self.pool, &mut out, usize::MAX) {
            // A queue the device had stopped holds nothing more to take.
            tracing::warn!("{}: LIF {lif}'s RX queue: {e}", g.device());
        }
        p.rx.release_buffers(&mut self.pool);
        Ok(out)
    }

    /// A new RX queue for port `i` after [`Ports::stop_rx`] (same vector
    /// and mode), filled with buffers.
    pub fn restart_rx(&mut self, i: usize) -> Result<(), AppError> {
        let nic = self.nics[self.ports[i].nic].clone();
        let mut g = nic.lock().unwrap_or_else(|e| e.into_inner());
        let p = &mut self.ports[i];
        let vector = p.rx.vector();
        p.rx = g.create_rxq(&p.lif, self.order, vector)?;
        if self.mode == Mode::Poll {
            p.rx.set_polling();
        }
        p.rx.refill(&mut self.pool)?;
        Ok(())
    }

    /// The watchdog's remedy for port `i`, whose TX queue holds frames the
    /// device has not moved: ask its function whether it is alive. Alive:
    /// ring the doorbell again. Reset by itself: bring it back
    /// ([`Nic::recover_from_reset`]) and give every port of that function
    /// a new LIF and queues (new LIF ids and MACs: senders must re-address
    /// frames to them); what the old TX queues held is returned as
    /// dropped. Gone: say so.
    pub fn check_port(&mut self, i: usize) -> Result<Health, AppError> {
        let f = self.ports[i].nic;
        let nic = self.nics[f].clone();
        let mut g = nic.lock().unwrap_or_else(|e| e.into_inner());
        match g.check_alive() {
            Ok(()) => {
                self.ports[i].tx.kick();
                return Ok(Health::Kicked);
            }
            Err(e) if e.is_gone() => return Ok(Health::Gone(e.to_string())),
            Err(e) => tracing::warn!("{}: {e}; resetting the function", g.device()),
        }
        match g.recover_from_reset() {
            Ok(()) => {}
            Err(e) if e.is_gone() => return Ok(Health::Gone(e.to_string())),
            Err(e) => return Err(e.into()),
        }
        let mut dropped = Vec::new();
        for (k, p) in self.ports.iter_mut().enumerate().filter(|(_, p)| p.nic == f) {
            // What arrived before the reset is in memory still: take it.
            let mut arrived = Vec::new();
            if let Err(e) = p.rx.rx_take(&mut self.pool, &mut arrived, usize::MAX) {
                tracing::warn!("{}: the old RX queue: {e}", g.device());
            }
            dropped.push((k, p.tx.abandon(&mut self.pool), arrived));
            p.rx.release_buffers(&mut self.pool);
            let name = format!("f{}-lif{k}", g.identity.function_id);
            let lif = g.create_lif(&name, None)?;
            let vector = p.rx.vector();
            p.tx = g.create_txq(&lif, self.order, None)?;
            p.rx = g.create_rxq(&lif, self.order, vector)?;
            if self.mode == Mode::Poll {
                p.rx.set_polling();
            }
            p.rx.refill(&mut self.pool)?;
            p.lif = lif;
        }
        Ok(Health::Recovered(dropped))
    }

    /// In interrupt mode, sleep until a port has completions or `timeout`
    /// passes; in poll mode return at once.
    pub fn idle(&mut self, timeout: Duration) -> Result<(), AppError> {
        if let Some(w) = &mut self.waiter {
            let rxs: Vec<&RxQueue> = self.ports.iter().map(|p| &p.rx).collect();
            w.wait(&rxs, timeout)?;
        }
        Ok(())
    }

    /// Device counters of every port's LIF.
    pub fn device_stats(&self) -> Result<Vec<dataplane::abi::LifStats>, AppError> {
        self.ports
            .iter()
            .map(|p| {
                let mut n = self.nics[p.nic].lock().unwrap_or_else(|e| e.into_inner());
                Ok(n.stats(p.lif.id)?)
            })
            .collect()
    }
}

/// Parse `64:7,576:4,1500:1` into sizes with weights.
pub fn parse_sizes(s: &str) -> Result<Vec<(usize, u32)>, String> {
    let v: Vec<(usize, u32)> = s
        .split(',')
        .map(|part| {
            let (size, w) = part.split_once(':').unwrap_or((part, "1"));
            let size: usize = size
                .trim()
                .parse()
                .map_err(|_| format!("'{size}' is not a frame size"))?;
            let w: u32 = w.trim().parse().map_err(|_| format!("'{w}' is not a weight"))?;
            if !(60..=1514).contains(&size) {
                return Err(format!("frame size {size}: must be 60..=1514 (one buffer, no FCS)"));
            }
            Ok((size, w))
        })
        .collect::<Result<_, _>>()?;
    if v.iter().map(|&(_, w)| u64::from(w)).sum::<u64>() == 0 {
        return Err("the size weights sum to zero".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_clear_errors() {
        assert_eq!(
            parse_sizes("64:7,576:4,1500:1").unwrap(),
            vec![(64, 7), (576, 4), (1500, 1)]
        );
        assert_eq!(parse_sizes("128").unwrap(), vec![(128, 1)]);
        assert!(parse_sizes("64:x").unwrap_err().contains("'x' is not a weight"));
        assert!(parse_sizes("9000").unwrap_err().contains("60..=1514"));
        assert!(parse_sizes("64:0").unwrap_err().contains("sum to zero"));
    }
}
