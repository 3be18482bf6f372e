//! The fairness scenario: several tenants share the simulated device's
//! pipeline; one of them (the aggressor) offers far more than its share,
//! with packets that cost several times the pipeline work of the others'.
//!
//! Everything runs on the simulator's virtual clock, driven by this
//! harness through the real driver (`Nic`, `TxQueue`, `RxQueue` over
//! vfio-user): each tenant is one VF with one LIF and one TX queue; every
//! frame goes to one sink LIF on the PF, which the harness drains at every
//! event. Victims' arrivals are Poisson and each is posted at its own
//! instant (the harness advances the device to it), so the latency a frame
//! reports (its RX completion's device timestamp minus the instant it was
//! posted, both virtual ns) is what the device's scheduling did to it and
//! nothing else. The aggressor's arrivals are Poisson too, posted at the
//! next event; what its full ring refuses stays with the sender (counted
//! as `refused`, not lost).
//!
//! Each run has a warm-up, a measured window, and a drain: arrivals stop
//! and the device runs until every posted frame is received or dropped, so
//! conservation (`posted = received + dropped with a reason`) is checked
//! exactly, and frames sent in the window but received in the drain count
//! with their true latency.
//!
//! Settings compared: `Off` (no meters, the fetch scheduler round-robins
//! packets: what a NIC without the fairness feature does), `CostDrr` (the
//! deficit round robin by cost, no meters), and `On` (cost DRR plus a cost
//! meter per LIF at its equal share, `deprioritize` when red). A victim's
//! solo run replays the same arrival trace (same seed) alone on the device.

use crate::setup_err;
use dataplane::abi::{LifCounter, MeterConfig, MeterMode, MeterPolicy, MeterResource, TableEntry};
use dataplane::fair::{jain, max_min_fair, Basis};
use dataplane::packet::{build_udp4, Mac};
use hdrhistogram::Histogram;
mod compare;

pub use compare::{Check, Comparison};
use host_driver::backend::vfio_user::VfioUserBackend;
use host_driver::mem::{DmaMemory, MemKind};
use host_driver::nic::{Lif, Nic, NicConfig};
use host_driver::pool::{Mbuf, Pool};
use host_driver::queue::{RxQueue, TxQueue};
use serde::Serialize;
use sim::clock::SimRng;
use sim::device::switch::{ACTION_TO_LIF_RECIRC, L2_TABLE};
use sim::device::DeviceConfig;
use sim::{ClockKind, PortSpec, Sim, SimConfig};
use std::fmt::Write as _;
use std::sync::Arc;

const POOL_IOVA: u64 = 0x20_0000_0000;
/// Payload layout (after the 42 bytes of Ethernet/IPv4/UDP headers).
const OFF_SEQ: usize = 42;
const OFF_SENT: usize = 50;
const OFF_SENDER: usize = 58;
/// The aggressor's destination: a MAC the PF routes to the sink through
/// `to_lif_recirc`.
const AGGRESSOR_DST: Mac = [0x02, 0xa6, 0x00, 0x00, 0x00, 0x01];

/// The scenario's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Pipeline capacity, cost units per second.
    pub capacity: u64,
    /// Fixed latency from leaving the pipeline to the completion, ns.
    pub transit_ns: u64,
    /// Number of victims (the aggressor makes one more tenant).
    pub victims: usize,
    /// Each victim's offered cost, as a fraction of the capacity.
    pub victim_load: f64,
    /// The aggressor's packet rate as a multiple of one victim's.
    pub aggressor_rate_x: f64,
    /// Extra pipeline passes of an aggressor packet (cost x (1 + passes)).
    pub aggressor_passes: u8,
    /// Frame length, bytes (all tenants).
    pub frame_len: usize,
    pub warmup_ns: u64,
    pub measure_ns: u64,
    /// TX ring order of every tenant.
    pub tx_order: u8,
    /// Committed burst of the cost meters (setting `On`), units.
    pub cburst: u64,
    /// DRR quantum of the cost scheduler, units per round.
    pub quantum: u64,
    pub seed: u64,
}

impl Scenario {
    /// The benchmark's scenario: 3 victims at 0.24 of the pipeline each
    /// (under their 0.25 fair share), an aggressor at 10x a victim's packet
    /// rate with 4x the cost per packet (40x a victim's cost load), a
    /// 200 M units/s pipeline (40 Mpps of 64-byte UDP) with 2 us of transit.
    pub fn standard() -> Scenario {
        Scenario {
            capacity: 200_000_000,
            transit_ns: 2_000,
            victims: 3,
            victim_load: 0.24,
            aggressor_rate_x: 10.0,
            aggressor_passes: 3,
            frame_len: 64,
            warmup_ns: 2_000_000,
            measure_ns: 20_000_000,
            tx_order: 10,
            cburst: 4096,
            quantum: 256,
            seed: 0x5eed_fa1e,
        }
    }

    /// Tenants in all.
    pub fn tenants(&self) -> usize {
        self.victims + 1
    }

    /// Cost of one victim packet (plain UDP) under the device's model.
    fn unit_cost(&self) -> u64 {
        sim::device::engine::CostModel::default().cost(&self.template(0, [0; 6], [0; 6]), 0)
    }

    fn template(&self, sender: usize, dst: Mac, src: Mac) -> Vec<u8> {
        let mut f = build_udp4(
            dst,
            src,
            [10, 0, 0, 1 + sender as u8],
            [10, 0, 9, 9],
            (4000, 4001),
            &[],
            self.frame_len,
        );
        f[OFF_SENDER] = sender as u8;
        f
    }
}

/// Which fairness machinery the device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Setting {
    /// No meters; packet round robin.
    Off,
    /// No meters; deficit round robin by cost.
    CostDrr,
    /// Cost DRR and a cost meter per tenant at its equal share,
    /// `deprioritize` when red.
    On,
}

impl Setting {
    pub fn name(self) -> &'static str {
        match self {
            Setting::Off => "meters off (packet RR)",
            Setting::CostDrr => "cost DRR, no meters",
            Setting::On => "meters on (cost DRR + srTCM)",
        }
    }
}

/// Who sends in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Who {
    All,
    /// Victim `i` alone.
    Solo(usize),
}

/// One tenant's figures over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct TenantResult {
    pub name: String,
    pub aggressor: bool,
    pub lif: u16,
    /// Offered cost rate (units/s): what it would use if it had the
    /// pipeline to itself.
    pub demand: f64,
    /// Frames that arrived at the sender in the window.
    pub offered: u64,
    /// Of those, frames its full ring refused (kept by the sender).
    pub refused: u64,
    /// Posted to the device in the window.
    pub posted: u64,
    /// Of the posted, received by the sink (drain included).
    pub received: u64,
    /// Cost units the device charged it in the window.
    pub consumed: u64,
    /// Its share of the capacity over the window.
    pub share: f64,
    /// Its max-min fair share of the capacity, given every demand.
    pub fair_share: f64,
    /// Frames in the window the device marked green / yellow / red.
    pub colors: [u64; 3],
    /// Latency of its frames posted in the window, ns.
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    /// Frames out of order or duplicated at the sink (must be 0).
    pub misordered: u64,
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub setting: Setting,
    pub who: Who,
    pub tenants: Vec<TenantResult>,
    /// Jain's index over consumed cost.
    pub jain: f64,
    /// Jain's index over consumed cost / max-min fair share (1.0: each got
    /// exactly its fair share).
    pub jain_normalized: f64,
    /// Consumed cost / (capacity x window).
    pub utilisation: f64,
    /// Over the whole run: posted, received, dropped by the device (every
    /// reason, every LIF), and the difference (must be 0).
    pub posted_total: u64,
    pub received_total: u64,
    pub dropped_total: u64,
    pub unaccounted: i64,
}

struct Tenant {
    nic: Nic,
    lif: Lif,
    tx: TxQueue,
    template: Vec<u8>,
    aggressor: bool,
    active: bool,
    /// Mean inter-arrival time, ns.
    mean_gap: f64,
    rng: SimRng,
    /// Next arrival, virtual ns (fractional).
    next: f64,
    seq: u64,
    /// Next sequence number expected at the sink.
    expect: u64,
    offered: u64,
    refused: u64,
    posted: u64,
    received: u64,
    posted_all: u64,
    received_all: u64,
    misordered: u64,
    /// Sequence numbers posted in the window: [first, last].
    window_seqs: Option<(u64, u64)>,
    hist: Histogram<u64>,
}

impl Tenant {
    fn exp_gap(&mut self) -> f64 {
        // Uniform in (0, 1]: never ln(0).
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        -(1.0 - u).ln() * self.mean_gap
    }
}

/// Run one setting. Errors name what failed to come up.
pub fn run(sc: &Scenario, setting: Setting, who: Who) -> Result<RunResult, String> {
    let (basis, quantum) = match setting {
        Setting::Off => (Basis::Packets, 32),
        Setting::CostDrr | Setting::On => (Basis::Cost, sc.quantum),
    };
    let n = sc.tenants();
    let sim = Sim::start(SimConfig {
        device: DeviceConfig {
            vfs: n as u16,
            pipeline_units_per_sec: Some(sc.capacity),
            transit_ns: sc.transit_ns,
            basis,
            quantum,
            ..DeviceConfig::default()
        },
        clock: ClockKind::Virtual,
        port: PortSpec::Null,
        seed: sc.seed,
        ..SimConfig::default()
    })
    .map_err(setup_err("simulator"))?;
    let ring = 1usize << sc.tx_order;
    let buffers = (n * ring + 4096 + 1024).next_power_of_two() as u32;
    let mem = Arc::new(
        DmaMemory::new(u64::from(buffers) * 2048 + (2 << 20), POOL_IOVA, MemKind::Pages)
            .map_err(setup_err("DMA memory"))?,
    );
    let mut pool = Pool::new(mem.clone(), buffers).map_err(setup_err("pool"))?;

    let mut pf = Nic::open(
        Box::new(VfioUserBackend::connect(sim.pf_socket()).map_err(setup_err("PF"))?),
        &NicConfig::default(),
    )
    .map_err(setup_err("PF bring-up"))?;
    pf.map_memory(&mem).map_err(setup_err("PF map"))?;
    let sink = pf.create_lif("sink", None).map_err(setup_err("sink LIF"))?;
    let mut rx: RxQueue = pf.create_rxq(&sink, 12, None).map_err(setup_err("sink RX queue"))?;
    rx.set_polling();
    rx.refill(&mut pool).map_err(setup_err("sink refill"))?;

    let unit = sc.unit_cost() as f64;
    let victim_pps = sc.victim_load * sc.capacity as f64 / unit;
    let mut tenants = Vec::with_capacity(n);
    for i in 0..n {
        let aggressor = i == n - 1;
        let sock = sim.vf_socket(i).ok_or("a VF socket is missing")?;
        let mut nic = Nic::open(
            Box::new(VfioUserBackend::connect(sock).map_err(setup_err("VF"))?),
            &NicConfig::default(),
        )
        .map_err(setup_err("VF bring-up"))?;
        nic.map_memory(&mem).map_err(setup_err("VF map"))?;
        let name = if aggressor {
            "aggressor".to_string()
        } else {
            format!("victim{i}")
        };
        let lif = nic.create_lif(&name, None).map_err(setup_err("VF LIF"))?;
        let tx = nic.create_txq(&lif, sc.tx_order, None).map_err(setup_err("TX queue"))?;
        let dst = if aggressor { AGGRESSOR_DST } else { sink.mac };
        let pps = if aggressor {
            victim_pps * sc.aggressor_rate_x
        } else {
            victim_pps
        };
        let active = match who {
            Who::All => true,
            Who::Solo(v) => v == i,
        };
        let mut rng = SimRng::new(sc.seed ^ (0x1000 + i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let first = (rng.next_u64() % 1000) as f64;
        tenants.push(Tenant {
            nic,
            lif,
            tx,
            template: sc.template(i, dst, lif.mac),
            aggressor,
            active,
            mean_gap: 1e9 / pps,
            rng,
            next: first,
            seq: 0,
            expect: 0,
            offered: 0,
            refused: 0,
            posted: 0,
            received: 0,
            posted_all: 0,
            received_all: 0,
            misordered: 0,
            window_seqs: None,
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
        });
    }
    let mut params = sink.id.to_le_bytes().to_vec();
    params.push(sc.aggressor_passes);
    pf.table_add(&TableEntry::exact(
        L2_TABLE,
        &AGGRESSOR_DST,
        ACTION_TO_LIF_RECIRC,
        &params,
    ))
    .map_err(setup_err("aggressor route"))?;
    if setting == Setting::On {
        let share = sc.capacity / n as u64;
        for t in &tenants {
            let m = MeterConfig {
                resource: MeterResource::Cost.raw(),
                mode: MeterMode::SrTcm.raw(),
                policy: MeterPolicy::Deprioritize.raw(),
                cir: share.into(),
                cburst: sc.cburst.into(),
                eburst: 0.into(),
                ..Default::default()
            };
            pf.set_meter(t.lif.id, m).map_err(setup_err("meter"))?;
        }
    }

    let by_lif = |tenants: &[Tenant], lif: u16| tenants.iter().position(|t| t.lif.id == lif);
    let t0 = sim.clock().now();
    let w0 = t0 + sc.warmup_ns;
    let w1 = w0 + sc.measure_ns;
    let mut before: Vec<[u64; 4]> = Vec::new();
    let mut out: Vec<Mbuf> = Vec::with_capacity(512);
    let mut burst: Vec<Mbuf> = Vec::with_capacity(ring);
    let mut in_window = false;

    let drain = |rx: &mut RxQueue, pool: &mut Pool, out: &mut Vec<Mbuf>, tenants: &mut [Tenant]| loop {
        out.clear();
        let k = rx.rx_burst(pool, out, 512).expect("the sink queue stays healthy");
        for m in out.drain(..) {
            let meta = m.rx_meta();
            let d = pool.data(&m);
            let seq = u64::from_le_bytes(d[OFF_SEQ..OFF_SEQ + 8].try_into().expect("8 bytes"));
            let sent = u64::from_le_bytes(d[OFF_SENT..OFF_SENT + 8].try_into().expect("8 bytes"));
            if let Some(i) = by_lif(tenants, meta.src_lif) {
                let t = &mut tenants[i];
                if seq != t.expect {
                    t.misordered += 1;
                }
                t.expect = seq + 1;
                t.received_all += 1;
                if t.window_seqs.is_some_and(|(a, b)| (a..=b).contains(&seq)) {
                    t.received += 1;
                    let lat = meta.timestamp.wrapping_sub(sent as u32).max(1);
                    t.hist.saturating_record(u64::from(lat));
                }
            }
            pool.free(m);
        }
        if k < 512 {
            break;
        }
    };

    loop {
        let now = sim.clock().now();
        if !in_window && now >= w0 {
            in_window = true;
            before = counters(&mut pf, &tenants)?;
        }
        if now >= w1 {
            break;
        }
        // Post every arrival due by now.
        for t in tenants.iter_mut().filter(|t| t.active) {
            let mut due = 0u64;
            while t.next <= now as f64 {
                due += 1;
                let g = t.exp_gap();
                t.next += g;
            }
            if due == 0 {
                continue;
            }
            let room = u64::from(t.tx.room(&mut pool).map_err(setup_err("TX queue"))?);
            let k = due.min(room);
            burst.clear();
            for _ in 0..k {
                let mut m = pool.alloc().ok_or("the pool ran dry")?;
                let b = pool.buffer_mut(&mut m);
                b[..t.template.len()].copy_from_slice(&t.template);
                b[OFF_SEQ..OFF_SEQ + 8].copy_from_slice(&t.seq.to_le_bytes());
                b[OFF_SENT..OFF_SENT + 8].copy_from_slice(&now.to_le_bytes());
                m.set_len(t.template.len());
                if in_window {
                    let w = t.window_seqs.get_or_insert((t.seq, t.seq));
                    w.1 = t.seq;
                }
                t.seq += 1;
                burst.push(m);
            }
            let sent = t.tx.tx_burst(&mut pool, &mut burst).map_err(setup_err("TX"))?;
            debug_assert_eq!(sent as u64, k, "room said so");
            for m in burst.drain(..) {
                pool.free(m);
            }
            t.posted_all += k;
            if in_window {
                t.offered += due;
                t.refused += due - k;
                t.posted += k;
            }
        }
        // Run the device to the next victim arrival (the aggressor's are
        // posted at whatever event comes next), or the window's edges.
        let mut next = tenants
            .iter()
            .filter(|t| t.active && !t.aggressor)
            .map(|t| t.next.ceil() as u64)
            .min()
            .unwrap_or(w1)
            .min(w1);
        if !in_window {
            next = next.min(w0);
        }
        if tenants.iter().all(|t| !t.active || t.aggressor) {
            next = next.min(now + 100);
        }
        sim.advance(next.saturating_sub(now).max(1));
        drain(&mut rx, &mut pool, &mut out, &mut tenants);
    }
    let after = counters(&mut pf, &tenants)?;
    // Drain: arrivals stop; run until every TX ring is empty.
    for _ in 0..100_000 {
        sim.advance(10_000);
        drain(&mut rx, &mut pool, &mut out, &mut tenants);
        let mut idle = true;
        for t in tenants.iter_mut() {
            let room = t.tx.room(&mut pool).map_err(setup_err("TX queue"))?;
            idle &= room == ring as u32 - 1 || room == ring as u32;
        }
        if idle && tenants.iter().all(|t| t.received_all == t.posted_all) {
            break;
        }
    }
    sim.advance(100_000);
    drain(&mut rx, &mut pool, &mut out, &mut tenants);

    let mut dropped_total = 0;
    let mut lifs: Vec<u16> = tenants.iter().map(|t| t.lif.id).collect();
    lifs.push(sink.id);
    for l in lifs {
        dropped_total += pf.stats(l).map_err(setup_err("stats"))?.dropped();
    }
    let posted_total: u64 = tenants.iter().map(|t| t.posted_all).sum();
    let received_total: u64 = tenants.iter().map(|t| t.received_all).sum();
    let unaccounted = posted_total as i64 - received_total as i64 - dropped_total as i64;

    let window_s = sc.measure_ns as f64 / 1e9;
    let cap = sc.capacity as f64 * window_s;
    let demands: Vec<f64> = tenants
        .iter()
        .map(|t| {
            if !t.active {
                0.0
            } else if t.aggressor {
                victim_pps * sc.aggressor_rate_x * unit * f64::from(1 + u32::from(sc.aggressor_passes))
            } else {
                victim_pps * unit
            }
        })
        .collect();
    let fair = max_min_fair(sc.capacity as f64, &demands);
    let results: Vec<TenantResult> = tenants
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let d = |k: usize| after[i][k] - before[i][k];
            let consumed = d(0);
            let q = |p: f64| {
                if t.hist.is_empty() {
                    0
                } else {
                    t.hist.value_at_quantile(p)
                }
            };
            TenantResult {
                name: if t.aggressor {
                    "aggressor".into()
                } else {
                    format!("victim{i}")
                },
                aggressor: t.aggressor,
                lif: t.lif.id,
                demand: demands[i],
                offered: t.offered,
                refused: t.refused,
                posted: t.posted,
                received: t.received,
                consumed,
                share: consumed as f64 / cap,
                fair_share: fair[i] / sc.capacity as f64,
                colors: [d(1), d(2), d(3)],
                p50_ns: q(0.5),
                p99_ns: q(0.99),
                p999_ns: q(0.999),
                max_ns: t.hist.max(),
                misordered: t.misordered,
            }
        })
        .collect();
    let active: Vec<&TenantResult> = results.iter().filter(|r| r.demand > 0.0).collect();
    let consumed: Vec<f64> = active.iter().map(|r| r.consumed as f64).collect();
    let normalized: Vec<f64> = active.iter().map(|r| r.share / r.fair_share).collect();
    let r = RunResult {
        setting,
        who,
        jain: jain(&consumed),
        jain_normalized: jain(&normalized),
        utilisation: consumed.iter().sum::<f64>() / cap,
        tenants: results,
        posted_total,
        received_total,
        dropped_total,
        unaccounted,
    };
    for t in tenants {
        t.nic.close().map_err(setup_err("VF close"))?;
    }
    drop(rx);
    pf.close().map_err(setup_err("PF close"))?;
    sim.shutdown();
    Ok(r)
}

/// Per tenant: cost units, green, yellow, red marks.
fn counters(pf: &mut Nic, tenants: &[Tenant]) -> Result<Vec<[u64; 4]>, String> {
    tenants
        .iter()
        .map(|t| {
            let st = pf.stats(t.lif.id).map_err(setup_err("stats"))?;
            Ok([
                st.get(LifCounter::CostUnits),
                st.get(LifCounter::MeterGreen),
                st.get(LifCounter::MeterYellow),
                st.get(LifCounter::MeterRed),
            ])
        })
        .collect()
}
