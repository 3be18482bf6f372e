//! The simulator's engine on a fixed workload in virtual time, for
//! counting its instructions per frame (deterministic where the e2e
//! bench's wall-clock figures are not):
//!
//! ```text
//! cargo build --profile bench -p fairnic-benches --bin engine-frames
//! valgrind --tool=callgrind --toggle-collect='*Device>::poll' \
//!     target/release/engine-frames p4 200000
//! ```
//!
//! The variants are the e2e bench's: `p4` (fairnic.p4 with every LIF's
//! cost meter on), `switch` (the built-in switch, meters off) and `floor`
//! (the engine only moves descriptors). Four VFs each send 64-byte UDP
//! frames to the next one's MAC, a ring's worth at a time, and the
//! device runs until every frame sent has arrived or been counted; the
//! pipeline may be booked far ahead, so its occupancy never ends a pass. Prints the frames moved and the device's
//! books; with callgrind's count of `Device::poll` that is the engine's
//! instructions per frame.

use dataplane::packet::build_udp4;
use fairnic_benches::setup_err;
use host_driver::backend::vfio_user::VfioUserBackend;
use host_driver::mem::{DmaMemory, MemKind};
use host_driver::nic::{Nic, NicConfig};
use host_driver::pool::{Mbuf, Pool};
use sim::device::{DeviceConfig, Forwarding};
use sim::{ClockKind, PortSpec, Sim, SimConfig};
use std::sync::Arc;

const VFS: usize = 4;
const ORDER: u8 = 10;
const POOL_IOVA: u64 = 0x20_0000_0000;

fn main() {
    if let Err(e) = run() {
        eprintln!("engine-frames: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: engine-frames p4|switch|floor [FRAMES]";
    let kind = args.first().map(String::as_str).ok_or(usage)?;
    let (p4, meters, floor) = match kind {
        "p4" => (true, true, false),
        "switch" => (false, false, false),
        "floor" => (false, false, true),
        other => return Err(format!("unknown variant `{other}`; {usage}")),
    };
    let frames: u64 = match args.get(1) {
        Some(n) => n.parse().map_err(|e| format!("FRAMES `{n}`: {e}"))?,
        None => 200_000,
    };
    let sim = Sim::start(SimConfig {
        device: DeviceConfig {
            vfs: VFS as u16,
            forwarding: if floor { Forwarding::Floor } else { Forwarding::Switch },
            // Virtual time needs a pipeline rate; booked this far ahead
            // its occupancy never ends a pass (as on the real clock,
            // where the e2e bench runs without one).
            pipeline_units_per_sec: Some(1 << 50),
            pipeline_lead_ns: 1 << 50,
            ..DeviceConfig::default()
        },
        clock: ClockKind::Virtual,
        port: PortSpec::Null,
        ..SimConfig::default()
    })
    .map_err(setup_err("simulator"))?;
    let buffers = (VFS * 2 * (1 << ORDER)).next_power_of_two() as u32 * 2;
    let mem = Arc::new(
        DmaMemory::new(u64::from(buffers) * 2048 + (2 << 20), POOL_IOVA, MemKind::Pages)
            .map_err(setup_err("DMA memory"))?,
    );
    let mut pool = Pool::new(mem.clone(), buffers).map_err(setup_err("pool"))?;
    let open = |p: &std::path::Path| -> Result<Nic, String> {
        let b = VfioUserBackend::connect(p).map_err(setup_err("connect"))?;
        Nic::open(Box::new(b), &NicConfig::default()).map_err(setup_err("bring-up"))
    };
    let mut pf = open(sim.pf_socket())?;
    if p4 {
        pf.load_pipeline(&p4::fairnic().to_image())
            .map_err(setup_err("load fairnic.p4"))?;
    }
    let mut vfs = Vec::new();
    for i in 0..VFS {
        let mut nic = open(sim.vf_socket(i).ok_or("a VF socket is missing")?)?;
        nic.map_memory(&mem).map_err(setup_err("map"))?;
        let lif = nic.create_lif(&format!("vf{i}"), None).map_err(setup_err("LIF"))?;
        let tx = nic.create_txq(&lif, ORDER, None).map_err(setup_err("TX queue"))?;
        let rx = nic.create_rxq(&lif, ORDER, None).map_err(setup_err("RX queue"))?;
        rx.set_polling();
        if meters {
            let cfg = fairnic_benches::unregulating_cost_meter();
            pf.set_meter(lif.id, cfg).map_err(setup_err("meter"))?;
        }
        vfs.push((nic, lif, tx, rx));
    }
    for (_, _, _, rx) in &mut vfs {
        rx.refill(&mut pool).map_err(setup_err("refill"))?;
    }
    let templates: Vec<Vec<u8>> = (0..VFS)
        .map(|i| {
            let (src, dst) = (vfs[i].1.mac, vfs[(i + 1) % VFS].1.mac);
            build_udp4(dst, src, [10, 0, 0, i as u8], [10, 0, 1, 1], (1000, 2000), &[], 64)
        })
        .collect();
    let (mut sent, mut received) = (0u64, 0u64);
    let mut burst: Vec<Mbuf> = Vec::with_capacity(1 << ORDER);
    let mut out: Vec<Mbuf> = Vec::with_capacity(1 << ORDER);
    let mut engine = std::time::Duration::ZERO;
    while received < frames {
        for (i, (_, _, tx, _)) in vfs.iter_mut().enumerate() {
            let room = tx.room(&mut pool).map_err(setup_err("TX room"))?;
            let k = u64::from(room).min(frames.saturating_sub(sent));
            burst.clear();
            for _ in 0..k {
                let mut m = pool.alloc().ok_or("the pool ran dry")?;
                pool.buffer_mut(&mut m)[..templates[i].len()].copy_from_slice(&templates[i]);
                m.set_len(templates[i].len());
                burst.push(m);
            }
            sent += tx.tx_burst(&mut pool, &mut burst).map_err(setup_err("TX"))? as u64;
            for m in burst.drain(..) {
                pool.free(m);
            }
        }
        let before = received;
        let t = std::time::Instant::now();
        sim.advance(1_000_000);
        engine += t.elapsed();
        for (_, _, _, rx) in &mut vfs {
            loop {
                out.clear();
                let k = rx.rx_burst(&mut pool, &mut out, 1 << ORDER).map_err(setup_err("RX"))?;
                received += k as u64;
                for m in out.drain(..) {
                    pool.free(m);
                }
                if k == 0 {
                    break;
                }
            }
        }
        if received == before && sent >= frames {
            return Err(format!("stalled: {received} of {sent} frames arrived"));
        }
    }
    let d = sim.device();
    d.check_books().map_err(|x| format!("books: {x}"))?;
    println!("{kind}: {received} frames received of {sent} sent; the device's books balance");
    println!(
        "{kind}: the device's passes took {:.1} ns a frame (wall clock, not judged)",
        engine.as_nanos() as f64 / received.max(1) as f64
    );
    Ok(())
}
