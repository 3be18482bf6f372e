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
use fairnic_benches::{interleave, pin_to_cpu, tsc, tsc_per_ns, Need, Report, Variant};
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

/// RFC 2697 and RFC 2698, color-blind, written from the RFCs in exact
/// integer arithmetic (tokens in byte-nanoseconds, no rounding): the
/// reference both fairnic's meters and rte_meter are checked against,
/// check by check, on the bench's own trace.
mod reference {
    const NS: u128 = 1_000_000_000;

    #[derive(Clone, Copy)]
    pub struct Sr {
        tc: u128,
        te: u128,
        last: u64,
    }

    #[derive(Clone, Copy)]
    pub struct Tr {
        tc: u128,
        tp: u128,
        last: u64,
    }

    /// Colors (0 green, 1 yellow, 2 red) of the trace's checks.
    pub fn srtcm(lifs: usize, cir: u64, cbs: u64, ebs: u64, trace: &[(u32, u32)], step: u64) -> Vec<u8> {
        let (cbs, ebs) = (u128::from(cbs) * NS, u128::from(ebs) * NS);
        let mut st = vec![
            Sr {
                tc: cbs,
                te: ebs,
                last: 0
            };
            lifs
        ];
        let mut now = 0;
        trace
            .iter()
            .map(|&(l, len)| {
                now += step;
                let s = &mut st[l as usize];
                // Tokens arrive at CIR into C; what overflows C goes to E.
                let credit = u128::from(now - s.last) * u128::from(cir);
                s.last = now;
                let c = s.tc + credit;
                s.tc = c.min(cbs);
                s.te = (s.te + (c - s.tc)).min(ebs);
                let b = u128::from(len) * NS;
                if s.tc >= b {
                    s.tc -= b;
                    0
                } else if s.te >= b {
                    s.te -= b;
                    1
                } else {
                    2
                }
            })
            .collect()
    }

    /// Colors of the trace's checks under a trTCM.
    pub fn trtcm(lifs: usize, cir: u64, cbs: u64, pir: u64, pbs: u64, trace: &[(u32, u32)], step: u64) -> Vec<u8> {
        let (cbs, pbs) = (u128::from(cbs) * NS, u128::from(pbs) * NS);
        let mut st = vec![
            Tr {
                tc: cbs,
                tp: pbs,
                last: 0
            };
            lifs
        ];
        let mut now = 0;
        trace
            .iter()
            .map(|&(l, len)| {
                now += step;
                let s = &mut st[l as usize];
                let dt = u128::from(now - s.last);
                s.last = now;
                s.tc = (s.tc + dt * u128::from(cir)).min(cbs);
                s.tp = (s.tp + dt * u128::from(pir)).min(pbs);
                let b = u128::from(len) * NS;
                if s.tp < b {
                    2
                } else if s.tc < b {
                    s.tp -= b;
                    1
                } else {
                    s.tp -= b;
                    s.tc -= b;
                    0
                }
            })
            .collect()
    }
}

/// Each check's color from fresh fairnic meters over the trace (untimed):
/// srTCM, trTCM, and the device's `Meter<Bytes>` form (an srTCM).
fn ours_colors(lifs: usize, t: &Trace) -> [Vec<u8>; 3] {
    let mut o = Ours::new(lifs);
    let mut out: [Vec<u8>; 3] = Default::default();
    let mut now = 0;
    for (&l, &len) in t.lif.iter().zip(&t.len) {
        now += STEP_NS;
        let (l, b) = (l as usize, Amount::new(u64::from(len)));
        out[0].push(color_sum(o.sr.color(&mut o.sr_state[l], now, b)) as u8);
        out[1].push(color_sum(o.tr.color(&mut o.tr_state[l], now, b)) as u8);
        out[2].push(color_sum(o.meters[l].color(now, b)) as u8);
    }
    out
}

/// Checks whose colors differ between `a` and `b`.
fn mismatches(a: &[u8], b: &[u8]) -> usize {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

/// The share of each color (green, yellow, red), percent.
fn mix(c: &[u8]) -> [f64; 3] {
    let n = c.len() as f64 / 100.0;
    [0, 1, 2].map(|v| c.iter().filter(|&&x| x == v).count() as f64 / n)
}

/// The largest difference between two mixes, percentage points.
fn mix_gap(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|i| (a[i] - b[i]).abs()).fold(0.0, f64::max)
}

fn show(m: [f64; 3]) -> String {
    format!("{:.2}% green, {:.2}% yellow, {:.2}% red", m[0], m[1], m[2])
}

/// Colors: fairnic against the RFC reference, and against rte_meter with
/// `--features dpdk`. Deterministic figures (the trace and its clock are
/// fixed), judged in every run. The bars are on the color mix: a check by
/// check comparison also runs and is reported, but one check whose bucket
/// holds exactly its frame's length can go either way by rounding (fairnic
/// keeps rates in 32.32 fixed point per ns, rte_meter credits whole
/// periods of TSC cycles), and from there that meter's later colors
/// differ too, so per-check counts measure ties in the trace more than the
/// meters.
#[cfg_attr(not(feature = "dpdk"), allow(unused_variables))]
fn agreement(report: &mut Report, lifs: usize, t: &Trace, label: &str, tpn: f64) {
    let k = (LIFS / lifs) as u64;
    let trace: Vec<(u32, u32)> = t.lif.iter().copied().zip(t.len.iter().copied()).collect();
    let ref_sr = reference::srtcm(lifs, CIR * k, BURST, BURST, &trace, STEP_NS);
    let ref_tr = reference::trtcm(lifs, CIR * k, BURST, PIR * k, BURST, &trace, STEP_NS);
    let [sr, tr, en] = ours_colors(lifs, t);
    let per_million = |m: usize| m as f64 * 1e6 / TRACE as f64;
    for (what, ours, refc) in [("srTCM", &sr, &ref_sr), ("trTCM", &tr, &ref_tr)] {
        report.notes.push(format!(
            "{label}, {what}: RFC reference {}; fairnic {}; {:.1} per million checks colored differently.",
            show(mix(refc)),
            show(mix(ours)),
            per_million(mismatches(ours, refc))
        ));
        report.bar_exact(
            &format!("{label}: fairnic {what} color mix vs the RFC reference, largest gap in percentage points"),
            mix_gap(mix(ours), mix(refc)),
            Need::AtMost(MIX_GAP_VS_RFC),
        );
    }
    report.bar_exact(
        &format!("{label}: checks Meter<Bytes> colors differently from fairnic srTCM"),
        mismatches(&en, &sr) as f64,
        Need::AtMost(0.0),
    );
    #[cfg(feature = "dpdk")]
    {
        let rte_sr = rte::Rte::colors(lifs, tpn, t, false);
        let rte_tr = rte::Rte::colors(lifs, tpn, t, true);
        for (what, ours, theirs, refc) in [("srTCM", &sr, &rte_sr, &ref_sr), ("trTCM", &tr, &rte_tr, &ref_tr)] {
            report.notes.push(format!(
                "{label}, {what}: rte_meter {}; {:.1} per million checks colored differently from the RFC reference, {:.1} from fairnic.",
                show(mix(theirs)),
                per_million(mismatches(theirs, refc)),
                per_million(mismatches(ours, theirs))
            ));
            let gap = mix_gap(mix(ours), mix(theirs));
            let what = format!("{label}: fairnic {what} color mix vs rte_meter's, largest gap in percentage points");
            if lifs == LIFS {
                report.bar_exact(&what, gap, Need::AtMost(MIX_GAP_VS_RTE));
            } else {
                report.bar_not_judged(
                    &what,
                    gap,
                    Need::AtMost(MIX_GAP_VS_RTE),
                    "outside rte_meter's range: at this rate it credits over 10 KB at a time (one lump per 100 TSC cycles, its shortest period), close to the 16 KiB buckets",
                );
            }
        }
    }
}

/// Color mix gaps allowed, percentage points: against the exact RFC
/// reference, and against rte_meter (whose whole-period crediting colors
/// a few more checks differently).
const MIX_GAP_VS_RFC: f64 = 0.1;
#[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
const MIX_GAP_VS_RTE: f64 = 0.5;

/// fairnic's srTCM and trTCM check with 64K LIFs against rte_meter's, TSC
/// cycles, as an advantage (above 1: fairnic is faster).
const SPEED_BAR: f64 = 0.8;

#[cfg(feature = "dpdk")]
mod rte {
    use super::*;
    use std::ffi::c_void;

    extern "C" {
        fn fnic_rte_meters_new(n: u32, hz: u64, cir: u64, cbs: u64, ebs: u64, pir: u64, pbs: u64) -> *mut c_void;
        fn fnic_rte_meters_free(m: *mut c_void);
        fn fnic_rte_srtcm_run(m: *mut c_void, lif: *const u32, len: *const u32, count: u64, t0: u64, step: u64) -> u64;
        fn fnic_rte_trtcm_run(m: *mut c_void, lif: *const u32, len: *const u32, count: u64, t0: u64, step: u64) -> u64;
        fn fnic_rte_srtcm_colors(
            m: *mut c_void,
            lif: *const u32,
            len: *const u32,
            count: u64,
            t0: u64,
            step: u64,
            out: *mut u8,
        );
        fn fnic_rte_trtcm_colors(
            m: *mut c_void,
            lif: *const u32,
            len: *const u32,
            count: u64,
            t0: u64,
            step: u64,
            out: *mut u8,
        );
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

        /// Each check's color, from fresh meters (untimed).
        pub fn colors(n: usize, tsc_per_ns: f64, t: &Trace, tr: bool) -> Vec<u8> {
            let me = Rte::new(n, tsc_per_ns);
            let mut out = vec![0u8; TRACE];
            let f = if tr {
                fnic_rte_trtcm_colors
            } else {
                fnic_rte_srtcm_colors
            };
            // SAFETY: as in `srtcm`; `out` holds `TRACE` bytes.
            unsafe {
                f(
                    me.m,
                    t.lif.as_ptr(),
                    t.len.as_ptr(),
                    TRACE as u64,
                    me.step(),
                    me.step(),
                    out.as_mut_ptr(),
                )
            };
            out
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

fn group(report: &mut Report, rounds: usize, lifs: usize, tpn: f64) {
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
    // The color sums keep the work observable; agreement() checks colors.
    drop(sums);
}

fn main() {
    let rounds = fairnic_benches::rounds();
    pin_to_cpu(0);
    let tpn = tsc_per_ns();
    let mut report = Report::new("meter");
    report.notes.push(format!(
        "{rounds} interleaved rounds of {TRACE} checks each; per LIF CIR {CIR} B/s, PIR {PIR} B/s, bursts {BURST} B; \
         TSC at {tpn:.2} ticks/ns."
    ));
    if cfg!(not(feature = "dpdk")) {
        report
            .notes
            .push("rte_meter not measured: build with `--features dpdk` (needs libdpdk-dev).".into());
    }
    group(&mut report, rounds, LIFS, tpn);
    group(&mut report, rounds, 1, tpn);
    agreement(&mut report, LIFS, &trace(LIFS), "64K LIFs", tpn);
    agreement(&mut report, 1, &trace(1), "1 LIF", tpn);
    // Speed: ratios against rte_meter in the same run, round by round.
    let g = "64K LIFs, TSC cycles/check";
    report.bar_vs(g, OURS_SR, RTE_SR, Need::AtLeast(SPEED_BAR));
    report.bar_vs(g, OURS_TR, RTE_TR, Need::AtLeast(SPEED_BAR));
    let worst = report
        .rows
        .iter()
        .filter(|r| r.group.starts_with("64K") && r.unit == "ns/check" && r.name.starts_with("fairnic"))
        .map(|r| r.median)
        .fold(0.0, f64::max);
    report.notes.push(format!(
        "Design target, an absolute figure on this machine and so not a bar: a check in 20 ns or less with 64K LIFs; \
         the slowest fairnic variant took {worst:.2} ns."
    ));
    report.conclude();
}
