//! Meter benchmark: one color-blind meter check in fairnic's
//! `dataplane::meter` (RFC 2697 srTCM, RFC 2698 trTCM, 32.32 fixed point)
//! against DPDK's `rte_meter` (with `--features dpdk`), in the same run,
//! with 64K LIFs configured, each with its own meter.
//!
//! Both sides run the same trace: 4M (LIF, frame length) pairs drawn from a
//! seeded generator (LIFs uniform over 64K, lengths 64..=1518), time moving
//! by a fixed step per check (1 ns here; the same in TSC cycles for DPDK,
//! whose meters count cycles). Rates and bursts are set so the trace sees
//! all three colors. The per-meter state is what each side keeps per LIF:
//! DPDK's `rte_meter_srtcm` (24 bytes) with a shared profile; ours the same
//! split (`SrTcmState` + shared `SrTcmProfile`), and also the self-contained
//! `Meter<Bytes>` the simulated device stores per LIF and resource.
//!
//! `cargo bench -p fairnic-benches --bench meter [--features dpdk]`;
//! `FAIRNIC_BENCH_ROUNDS` sets the rounds (default 7).

use dataplane::meter::{Amount, Bytes, Color, Meter, Rate, SrTcmProfile, SrTcmState, TrTcmProfile, TrTcmState};
use fairnic_benches::{interleave, pin_to_cpu, tsc, tsc_per_ns, Report, Variant};
use std::hint::black_box;
use std::time::Instant;

const LIFS: usize = 1 << 16;
const TRACE: usize = 1 << 22;
/// Per LIF (of 64K): 4 MB/s committed, 8 MB/s peak, 16 KiB bursts. The
/// trace offers each LIF about 12 MB/s, so all three colors occur; with
/// one LIF, rates scale by 64K for the same mix.
const CIR: u64 = 4_000_000;
const PIR: u64 = 8_000_000;
const BURST: u64 = 16 * 1024;
/// Virtual ns between checks.
const STEP_NS: u64 = 1;

struct Trace {
    lif: Vec<u32>,
    len: Vec<u32>,
}

fn trace(lifs: usize) -> Trace {
    let mut s = 0x5eed_u64;
    let mut next = || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut t = Trace {
        lif: Vec::with_capacity(TRACE),
        len: Vec::with_capacity(TRACE),
    };
    for _ in 0..TRACE {
        let r = next();
        t.lif.push((r % lifs as u64) as u32);
        t.len.push(64 + ((r >> 32) % (1518 - 64 + 1)) as u32);
    }
    t
}

fn color_sum(c: Color) -> u64 {
    match c {
        Color::Green => 0,
        Color::Yellow => 1,
        Color::Red => 2,
    }
}

/// One measured pass: (ns per check, TSC cycles per check, color sum).
fn timed(run: impl FnOnce() -> u64) -> (f64, f64, u64) {
    let (t0, c0) = (Instant::now(), tsc());
    let sum = black_box(run());
    let (dt, dc) = (t0.elapsed(), tsc() - c0);
    (dt.as_nanos() as f64 / TRACE as f64, dc as f64 / TRACE as f64, sum)
}

struct Ours {
    sr: SrTcmProfile<Bytes>,
    tr: TrTcmProfile<Bytes>,
    sr_state: Vec<SrTcmState>,
    tr_state: Vec<TrTcmState>,
    meters: Vec<Meter<Bytes>>,
    /// Where time stands (runs continue from it, as DPDK's do).
    now: u64,
}

impl Ours {
    fn new(lifs: usize) -> Ours {
        let k = (LIFS / lifs) as u64;
        let sr = SrTcmProfile::new(Rate::new(CIR * k), Amount::new(BURST), Amount::new(BURST)).expect("valid");
        let tr = TrTcmProfile::new(
            Rate::new(CIR * k),
            Amount::new(BURST),
            Rate::new(PIR * k),
            Amount::new(BURST),
        )
        .expect("valid");
        Ours {
            sr,
            tr,
            sr_state: vec![sr.state(0); lifs],
            tr_state: vec![tr.state(0); lifs],
            meters: vec![Meter::SrTcm(sr, sr.state(0)); lifs],
            now: 0,
        }
    }

    fn srtcm(&mut self, t: &Trace) -> u64 {
        let mut acc = 0;
        let mut now = self.now;
        for (&l, &len) in t.lif.iter().zip(&t.len) {
            now += STEP_NS;
            acc += color_sum(
                self.sr
                    .color(&mut self.sr_state[l as usize], now, Amount::new(u64::from(len))),
            );
        }
        self.now = now;
        acc
    }

    fn trtcm(&mut self, t: &Trace) -> u64 {
        let mut acc = 0;
        let mut now = self.now;
        for (&l, &len) in t.lif.iter().zip(&t.len) {
            now += STEP_NS;
            acc += color_sum(
                self.tr
                    .color(&mut self.tr_state[l as usize], now, Amount::new(u64::from(len))),
            );
        }
        self.now = now;
        acc
    }

    fn meter_enum(&mut self, t: &Trace) -> u64 {
        let mut acc = 0;
        let mut now = self.now;
        for (&l, &len) in t.lif.iter().zip(&t.len) {
            now += STEP_NS;
            acc += color_sum(self.meters[l as usize].color(now, Amount::new(u64::from(len))));
        }
        self.now = now;
        acc
    }
}

#[cfg(feature = "dpdk")]
mod rte {
    use super::*;
    use std::ffi::c_void;

    extern "C" {
        fn fnic_rte_meters_new(n: u32, hz: u64, cir: u64, cbs: u64, ebs: u64, pir: u64, pbs: u64) -> *mut c_void;
        fn fnic_rte_meters_free(m: *mut c_void);
        fn fnic_rte_srtcm_run(m: *mut c_void, lif: *const u32, len: *const u32, count: u64, t0: u64, step: u64) -> u64;
        fn fnic_rte_trtcm_run(m: *mut c_void, lif: *const u32, len: *const u32, count: u64, t0: u64, step: u64) -> u64;
    }

    /// DPDK's meters for `n` LIFs. Their time is in cycles of a clock of
    /// a whole number of cycles per ns, the nearest to this TSC's, so the
    /// trace's time is exactly ours (and the colors the same).
    pub struct Rte {
        m: *mut c_void,
        cycles_per_ns: u64,
        now: u64,
    }

    impl Rte {
        pub fn new(n: usize, tsc_per_ns: f64) -> Rte {
            let cycles_per_ns = (tsc_per_ns.round() as u64).max(1);
            let k = (LIFS / n) as u64;
            // SAFETY: plain constructor; a null return is checked below.
            let m = unsafe {
                fnic_rte_meters_new(
                    n as u32,
                    cycles_per_ns * 1_000_000_000,
                    CIR * k,
                    BURST,
                    BURST,
                    PIR * k,
                    BURST,
                )
            };
            assert!(!m.is_null(), "rte meters allocated");
            Rte {
                m,
                cycles_per_ns,
                now: 0,
            }
        }

        fn step(&self) -> u64 {
            STEP_NS * self.cycles_per_ns
        }

        pub fn srtcm(&mut self, t: &Trace) -> u64 {
            let step = self.step();
            // SAFETY: `m` is live (freed only in Drop); the trace's two
            // arrays hold `TRACE` entries each, every LIF index < n.
            let r = unsafe { fnic_rte_srtcm_run(self.m, t.lif.as_ptr(), t.len.as_ptr(), TRACE as u64, self.now, step) };
            self.now += step * TRACE as u64;
            r
        }

        pub fn trtcm(&mut self, t: &Trace) -> u64 {
            let step = self.step();
            // SAFETY: as in `srtcm`.
            let r = unsafe { fnic_rte_trtcm_run(self.m, t.lif.as_ptr(), t.len.as_ptr(), TRACE as u64, self.now, step) };
            self.now += step * TRACE as u64;
            r
        }
    }

    impl Drop for Rte {
        fn drop(&mut self) {
            // SAFETY: allocated by fnic_rte_meters_new, freed once.
            unsafe { fnic_rte_meters_free(self.m) };
        }
    }
}

const OURS_SR: &str = "fairnic srTCM";
const OURS_ENUM: &str = "fairnic Meter<Bytes> (device's per-LIF form)";
const OURS_TR: &str = "fairnic trTCM";
const RTE_SR: &str = "rte_meter srTCM";
const RTE_TR: &str = "rte_meter trTCM";

fn group(report: &mut Report, rounds: usize, lifs: usize, tpn: f64, colors: &mut Vec<String>) {
    let t = trace(lifs);
    let g_ns = format!("{}K LIFs, ns/check", lifs / 1024);
    let g_cy = format!("{}K LIFs, TSC cycles/check", lifs / 1024);
    let g_ns = if lifs < 1024 {
        format!("{lifs} LIF, ns/check")
    } else {
        g_ns
    };
    let g_cy = if lifs < 1024 {
        format!("{lifs} LIF, TSC cycles/check")
    } else {
        g_cy
    };
    let ours = std::cell::RefCell::new(Ours::new(lifs));
    let mut cycles: Vec<(String, Vec<f64>)> = Vec::new();
    let record = |name: &str, r: (f64, f64, u64), cycles: &mut Vec<(String, Vec<f64>)>| {
        match cycles.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(r.1),
            None => cycles.push((name.to_string(), vec![r.1])),
        }
        r.0
    };
    let cyc = std::cell::RefCell::new(&mut cycles);
    let sums = std::cell::RefCell::new(Vec::<(String, u64)>::new());
    #[cfg(feature = "dpdk")]
    let rte = std::cell::RefCell::new(rte::Rte::new(lifs, tpn));
    let mut variants: Vec<Variant> = vec![
        (
            OURS_SR,
            Box::new(|| {
                let r = timed(|| ours.borrow_mut().srtcm(&t));
                sums.borrow_mut().push((OURS_SR.into(), r.2));
                record(OURS_SR, r, &mut cyc.borrow_mut())
            }),
        ),
        (
            OURS_ENUM,
            Box::new(|| {
                let r = timed(|| ours.borrow_mut().meter_enum(&t));
                record(OURS_ENUM, r, &mut cyc.borrow_mut())
            }),
        ),
        (
            OURS_TR,
            Box::new(|| {
                let r = timed(|| ours.borrow_mut().trtcm(&t));
                sums.borrow_mut().push((OURS_TR.into(), r.2));
                record(OURS_TR, r, &mut cyc.borrow_mut())
            }),
        ),
    ];
    #[cfg(feature = "dpdk")]
    {
        variants.push((
            RTE_SR,
            Box::new(|| {
                let r = timed(|| rte.borrow_mut().srtcm(&t));
                sums.borrow_mut().push((RTE_SR.into(), r.2));
                record(RTE_SR, r, &mut cyc.borrow_mut())
            }),
        ));
        variants.push((
            RTE_TR,
            Box::new(|| {
                let r = timed(|| rte.borrow_mut().trtcm(&t));
                sums.borrow_mut().push((RTE_TR.into(), r.2));
                record(RTE_TR, r, &mut cyc.borrow_mut())
            }),
        ));
    }
    let _ = tpn;
    let results = interleave(rounds, &mut variants);
    let names: Vec<&str> = variants.iter().map(|(n, _)| *n).collect();
    drop(variants);
    for (name, r) in names.iter().zip(results) {
        report.add(&g_ns, name, "ns/check", false, r);
    }
    for (name, r) in cycles {
        report.add(&g_cy, &name, "TSC cycles/check", false, r);
    }
    for g in [&g_ns, &g_cy] {
        report.compare(g, OURS_SR, RTE_SR);
        report.compare(g, OURS_ENUM, RTE_SR);
        report.compare(g, OURS_TR, RTE_TR);
    }
    // Mean color per check of the first round: both sides see the same mix.
    let mut seen = Vec::new();
    for (n, s) in sums.into_inner() {
        if !seen.contains(&n) {
            colors.push(format!(
                "{n} ({g_ns}): mean color {:.3} (0 green, 1 yellow, 2 red)",
                s as f64 / TRACE as f64
            ));
            seen.push(n);
        }
    }
}

fn main() {
    let rounds = fairnic_benches::rounds();
    pin_to_cpu(0);
    let tpn = tsc_per_ns();
    let mut report = Report::new("meter");
    report.notes.push(format!(
        "{rounds} interleaved rounds of {TRACE} checks each; per LIF CIR {CIR} B/s, PIR {PIR} B/s, bursts {BURST} B; \
         TSC at {tpn:.2} ticks/ns. Bar: fairnic's check <= 20 ns with 64K LIFs."
    ));
    if cfg!(not(feature = "dpdk")) {
        report
            .notes
            .push("rte_meter not measured: build with `--features dpdk` (needs libdpdk-dev).".into());
    }
    let mut colors = Vec::new();
    group(&mut report, rounds, LIFS, tpn, &mut colors);
    group(&mut report, rounds, 1, tpn, &mut colors);
    report.notes.extend(colors);
    let worst = report
        .rows
        .iter()
        .filter(|r| r.group.starts_with("64K") && r.unit == "ns/check" && r.name.starts_with("fairnic"))
        .map(|r| r.median)
        .fold(0.0, f64::max);
    report.notes.push(format!(
        "bar (<= 20 ns/check at 64K LIFs): worst fairnic variant {worst:.2} ns: {}",
        if worst <= 20.0 { "met" } else { "NOT met" }
    ));
    report.finish();
}
