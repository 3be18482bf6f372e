use super::*;
use proptest::prelude::*;

/// RFC 2698 section 3, transcribed with exact arithmetic: tokens are
/// rationals kept as numerators over 2^32 (the meter's own resolution
/// of rates), refilled with no shortcut, compared as the RFC says.
#[derive(Clone)]
struct RfcTrTcm {
    cir: u128,
    pir: u128,
    cbs: u128,
    pbs: u128,
    tc: u128,
    tp: u128,
    last: u64,
}

impl RfcTrTcm {
    fn new(p: &TrTcmProfile<Bytes>, now: u64) -> Self {
        RfcTrTcm {
            cir: p.cir_fp.into(),
            pir: p.pir_fp.into(),
            cbs: p.cbs_fp.into(),
            pbs: p.pbs_fp.into(),
            tc: p.cbs_fp.into(),
            tp: p.pbs_fp.into(),
            last: now,
        }
    }
    fn color(&mut self, now: u64, b: u64) -> Color {
        if now > self.last {
            let dt = u128::from(now - self.last);
            // "The token count Tp is incremented by one PIR times per
            // second up to PBS and the token count Tc is incremented by
            // one CIR times per second up to CBS."
            self.tp = (self.tp + dt * self.pir).min(self.pbs);
            self.tc = (self.tc + dt * self.cir).min(self.cbs);
            self.last = now;
        }
        let b = u128::from(b) << 32;
        // "If Tp(t)-B < 0, the packet is red, else if Tc(t)-B < 0, the
        // packet is yellow and Tp is decremented by B, else the packet
        // is green and both Tp and Tc are decremented by B."
        if self.tp < b {
            Color::Red
        } else if self.tc < b {
            self.tp -= b;
            Color::Yellow
        } else {
            self.tp -= b;
            self.tc -= b;
            Color::Green
        }
    }
}

/// RFC 2697 section 3, likewise.
struct RfcSrTcm {
    cir: u128,
    cbs: u128,
    ebs: u128,
    tc: u128,
    te: u128,
    last: u64,
}

impl RfcSrTcm {
    fn new(p: &SrTcmProfile<Packets>, now: u64) -> Self {
        RfcSrTcm {
            cir: p.cir_fp.into(),
            cbs: p.cbs_fp.into(),
            ebs: p.ebs_fp.into(),
            tc: p.cbs_fp.into(),
            te: p.ebs_fp.into(),
            last: now,
        }
    }
    fn color(&mut self, now: u64, b: u64) -> Color {
        if now > self.last {
            // "If Tc is less than CBS, Tc is incremented by one, else if
            // Te is less then EBS, Te is incremented by one, else
            // neither Tc nor Te is incremented" (CIR times a second):
            // Tc fills first, the overflow goes to Te.
            let add = u128::from(now - self.last) * self.cir;
            let to_c = add.min(self.cbs - self.tc);
            self.tc += to_c;
            self.te = (self.te + (add - to_c)).min(self.ebs);
            self.last = now;
        }
        let b = u128::from(b) << 32;
        if self.tc >= b {
            self.tc -= b;
            Color::Green
        } else if self.te >= b {
            self.te -= b;
            Color::Yellow
        } else {
            Color::Red
        }
    }
}

fn arrivals() -> impl Strategy<Value = Vec<(u64, u64)>> {
    // (gap in ns, packet size): gaps from back-to-back to long idle.
    proptest::collection::vec(
        (
            prop_oneof![0u64..100, 0u64..100_000, 0u64..100_000_000, Just(0u64)],
            prop_oneof![1u64..64, 64u64..1600, 0u64..10, 1u64..100_000],
        ),
        1..300,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, ..ProptestConfig::default() })]

    /// Repaying takes at most what is owed and at most what the buckets
    /// hold: after a partial repayment nothing whole is left, and a
    /// packet then finds no committed tokens (srTCM with EBS 0), for
    /// any rates, bursts and arrivals (no overflow on the way).
    #[test]
    fn repay_takes_no_more_than_owed_or_held(
        cir in 1u64..MAX_RATE,
        cbs in 1u64..=MAX_BURST,
        trace in arrivals(),
        owe in 0u64..u64::MAX,
    ) {
        let p = SrTcmProfile::<Bytes>::new(Rate::new(cir), Amount::new(cbs), Amount::new(0)).unwrap();
        let mut s = p.state(0);
        let mut now = 0u64;
        for (gap, size) in trace {
            now = now.saturating_add(gap);
            p.color(&mut s, now, Amount::new(size));
            let paid = p.repay(&mut s, now, Amount::new(owe)).get();
            prop_assert!(paid <= owe.min(MAX_BURST + 1));
            if paid < owe.min(MAX_BURST + 1) {
                prop_assert_eq!(p.repay(&mut s, now, Amount::new(owe)).get(), 0);
                prop_assert!(!p.would_pass(&s, now, Amount::new(1)));
            }
        }
    }

    #[test]
    fn trtcm_matches_rfc_2698(
        cir in 0u64..20_000_000_000,
        extra in 0u64..20_000_000_000,
        cbs in 1u64..200_000,
        pbs in 1u64..200_000,
        start in any::<u32>(),
        trace in arrivals(),
    ) {
        let p = TrTcmProfile::<Bytes>::new(Rate::new(cir), Amount::new(cbs), Rate::new(cir + extra), Amount::new(pbs)).unwrap();
        let mut s = p.state(u64::from(start));
        let mut rfc = RfcTrTcm::new(&p, u64::from(start));
        let mut now = u64::from(start);
        for (gap, b) in trace {
            now += gap;
            let ours = p.color(&mut s, now, Amount::new(b));
            prop_assert_eq!(ours, rfc.color(now, b), "at {} size {}", now, b);
            prop_assert!(s.tc <= p.cbs_fp && s.tp <= p.pbs_fp);
        }
    }

    #[test]
    fn srtcm_matches_rfc_2697(
        cir in 0u64..50_000_000,
        cbs in 0u64..10_000,
        ebs in 0u64..10_000,
        trace in arrivals(),
    ) {
        prop_assume!(cbs + ebs > 0);
        let p = SrTcmProfile::<Packets>::new(Rate::new(cir), Amount::new(cbs), Amount::new(ebs)).unwrap();
        let mut s = p.state(0);
        let mut rfc = RfcSrTcm::new(&p, 0);
        let mut now = 0;
        for (gap, b) in trace {
            now += gap;
            prop_assert_eq!(p.color(&mut s, now, Amount::new(b)), rfc.color(now, b));
            prop_assert!(s.tc <= p.cbs_fp && s.te <= p.ebs_fp);
        }
    }

    /// Extreme inputs: any configuration the checks accept, any times
    /// (including backwards and u64::MAX), any amounts: no panic, no
    /// overflow, buckets stay within their sizes.
    #[test]
    fn no_input_overflows(
        cir in 0u64..=MAX_RATE,
        extra in 0u64..=MAX_RATE,
        cbs in 1u64..=MAX_BURST,
        pbs in 1u64..=MAX_BURST,
        times in proptest::collection::vec(any::<u64>(), 1..50),
        sizes in proptest::collection::vec(any::<u64>(), 1..50),
    ) {
        let pir = (cir + extra).min(MAX_RATE);
        let p = TrTcmProfile::<Cost>::new(Rate::new(cir), Amount::new(cbs), Rate::new(pir), Amount::new(pbs)).unwrap();
        let mut s = p.state(0);
        let q = SrTcmProfile::<Cost>::new(Rate::new(cir), Amount::new(cbs), Amount::new(pbs)).unwrap();
        let mut r = q.state(0);
        for (t, b) in times.iter().zip(sizes.iter().cycle()) {
            p.color(&mut s, *t, Amount::new(*b));
            q.color(&mut r, *t, Amount::new(*b));
            prop_assert!(s.tc <= p.cbs_fp && s.tp <= p.pbs_fp);
            prop_assert!(r.tc <= q.cbs_fp && r.te <= q.ebs_fp);
        }
    }

    /// Over a long run a trTCM passes (green + yellow) at most PIR*T + PBS
    /// and colors green at most CIR*T + CBS.
    #[test]
    fn long_run_rates_are_bounded(cir in 1_000u64..1_000_000, extra in 0u64..1_000_000, cbs in 1u64..5000, pbs in 1u64..5000) {
        let pir = cir + extra;
        let p = TrTcmProfile::<Packets>::new(Rate::new(cir), Amount::new(cbs), Rate::new(pir), Amount::new(pbs)).unwrap();
        let mut s = p.state(0);
        let (mut green, mut passed) = (0u64, 0u64);
        let horizon = 100_000_000u64;
        let mut t = 0;
        while t < horizon {
            match p.color(&mut s, t, Amount::new(1)) {
                Color::Green => { green += 1; passed += 1 }
                Color::Yellow => passed += 1,
                Color::Red => {}
            }
            t += 97;
        }
        prop_assert!(green <= cir * horizon / 1_000_000_000 + cbs + 1);
        prop_assert!(passed <= pir * horizon / 1_000_000_000 + pbs + 1);
    }
}

#[test]
fn configuration_errors_name_the_problem() {
    let e = TrTcmProfile::<Bytes>::new(Rate::new(10), Amount::new(1), Rate::new(5), Amount::new(1)).unwrap_err();
    assert_eq!(e, MeterError::PirBelowCir { cir: 10, pir: 5 });
    let e = TrTcmProfile::<Bytes>::new(
        Rate::new(MAX_RATE + 1),
        Amount::new(1),
        Rate::new(MAX_RATE + 1),
        Amount::new(1),
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("cir:") && e.to_string().contains("bytes/s"),
        "{e}"
    );
    let e = SrTcmProfile::<Packets>::new(Rate::new(1), Amount::new(MAX_BURST + 1), Amount::new(0)).unwrap_err();
    assert!(e.to_string().contains("packets"), "{e}");
    assert!(SrTcmProfile::<Packets>::new(Rate::new(1), Amount::new(0), Amount::new(0)).is_err());
}

#[test]
fn applied_rates_are_the_configured_ones() {
    // 2 Gbit/s is exact in fixed point; 1 Mpps is not, but is kept to
    // within 0.12 pps, and reported back as configured.
    let p = TrTcmProfile::<Bytes>::new(
        Rate::new(250_000_000),
        Amount::new(65536),
        Rate::new(250_000_000),
        Amount::new(65536),
    )
    .unwrap();
    assert_eq!(p.applied().0.get(), 250_000_000);
    for r in [1u64, 7, 999, 1_000_000, 123_456_789, MAX_RATE] {
        let q = SrTcmProfile::<Packets>::new(Rate::new(r), Amount::new(32), Amount::new(0)).unwrap();
        assert_eq!(q.applied().0.get(), r);
        let exact = q.cir_fp as f64 * 1e9 / 4294967296.0;
        assert!((exact - r as f64).abs() <= 0.117, "{r}: {exact}");
    }
}

#[test]
fn meter_from_abi_config_checks_the_resource() {
    let cfg = MeterConfig {
        resource: MeterResource::Bytes.raw(),
        mode: MeterMode::TrTcm.raw(),
        cir: 1000.into(),
        cburst: 100.into(),
        pir: 2000.into(),
        pburst: 200.into(),
        ..Default::default()
    };
    let m = Meter::<Bytes>::from_config(&cfg, 0).unwrap();
    assert_eq!(m.applied(MeterPolicy::Backpressure), cfg);
    assert_eq!(
        Meter::<Packets>::from_config(&cfg, 0).unwrap_err(),
        MeterError::WrongResource {
            want: MeterResource::Packets,
            got: MeterResource::Bytes
        }
    );
    let mut m = m;
    assert_eq!(m.color(0, Amount::new(100)), Color::Green);
    assert_eq!(m.color(0, Amount::new(100)), Color::Yellow);
    assert_eq!(m.color(0, Amount::new(1)), Color::Red);
    assert!(!m.would_pass(0, Amount::new(1)));
    assert!(m.would_pass(1_000_000, Amount::new(1)), "1 ms refills 2 bytes of peak");
}

#[test]
fn level_meter() {
    let l = LevelMeter {
        yellow_at: 10,
        red_at: 20,
    };
    assert_eq!(
        (l.color(9), l.color(10), l.color(20)),
        (Color::Green, Color::Yellow, Color::Red)
    );
    assert_eq!(LevelMeter::OFF.color(u64::MAX - 1), Color::Green);
}

/// Typed units: these would not compile, which is the point.
/// `Meter::<Packets>::Off.color(0, Amount::<Bytes>::new(1))`
/// `TrTcmProfile::<Bytes>::new(Rate::<Packets>::new(1), ..)`
#[test]
fn units_are_distinct_types() {
    fn takes_bytes(_: Amount<Bytes>) {}
    takes_bytes(Amount::new(5));
    assert_eq!(Amount::<Packets>::new(3).get(), 3);
}

/// The word at byte `off` of `m`.
fn word<R>(m: &Meter<R>, off: i32) -> u64 {
    // SAFETY: `Meter` is `repr(C, u64)` of u64 words only (its size is
    // checked at compile time), `off` is a multiple of 8 within it, and a
    // u64 read of initialised words is valid.
    unsafe {
        std::ptr::from_ref(m)
            .cast::<u8>()
            .add(off as usize)
            .cast::<u64>()
            .read()
    }
}

/// The offsets the pipeline compiler colors meters at in place are where
/// Rust keeps each word.
#[test]
fn layout_matches_the_compiler_s_offsets() {
    let sr = SrTcmProfile::<Bytes>::new(Rate::new(1000), Amount::new(200), Amount::new(300)).unwrap();
    let mut m = Meter::SrTcm(sr, sr.state(77));
    m.color(90, Amount::new(5));
    let Meter::SrTcm(p, s) = m else { unreachable!() };
    assert_eq!(word(&m, layout::TAG), layout::TAG_SRTCM);
    assert_eq!(
        [p.cir_fp, p.cbs_fp, p.ebs_fp, p.full_dt, s.tc, s.te, s.last],
        [
            word(&m, layout::SR_CIR),
            word(&m, layout::SR_CBS),
            word(&m, layout::SR_EBS),
            word(&m, layout::SR_FULL_DT),
            word(&m, layout::SR_TC),
            word(&m, layout::SR_TE),
            word(&m, layout::SR_LAST)
        ]
    );
    let tr = TrTcmProfile::<Packets>::new(Rate::new(10), Amount::new(2), Rate::new(20), Amount::new(3)).unwrap();
    let mut m = Meter::TrTcm(tr, tr.state(5));
    m.color(9, Amount::new(1));
    let Meter::TrTcm(p, s) = m else { unreachable!() };
    assert_eq!(word(&m, layout::TAG), layout::TAG_TRTCM);
    assert_eq!(
        [p.cir_fp, p.pir_fp, p.cbs_fp, p.pbs_fp, s.tc, s.tp, s.last],
        [
            word(&m, layout::TR_CIR),
            word(&m, layout::TR_PIR),
            word(&m, layout::TR_CBS),
            word(&m, layout::TR_PBS),
            word(&m, layout::TR_TC),
            word(&m, layout::TR_TP),
            word(&m, layout::TR_LAST)
        ]
    );
    assert_eq!(word(&Meter::<Bytes>::Off, layout::TAG), layout::TAG_OFF);
}

proptest! {
    /// The srTCM refill with the gap worked out once per profile adds what
    /// the 128-bit product capped at `cap` adds, at every rate (0
    /// included), cap and gap, around the edge gap too.
    #[test]
    fn a_refill_up_to_the_full_gap_is_the_capped_product(
        rate in prop_oneof![Just(0u64), 1u64..16, any::<u64>()],
        cap in prop_oneof![Just(0u64), any::<u64>()],
        dt in any::<u64>(),
        near in -2i64..=2,
    ) {
        let full_dt = cap.checked_div(rate).unwrap_or(u64::MAX);
        prop_assert_eq!(refill_upto(dt, rate, cap, full_dt), refill(dt, rate, cap));
        let edge = full_dt.saturating_add_signed(near);
        prop_assert_eq!(refill_upto(edge, rate, cap, full_dt), refill(edge, rate, cap));
    }
}
