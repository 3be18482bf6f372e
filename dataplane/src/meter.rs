//! Token-bucket meters: the single rate and the two rate three color
//! markers of RFC 2697 and RFC 2698 (color-blind), and a level meter for
//! quantities that are levels rather than rates (descriptors in flight).
//!
//! Units live in types. A meter is a `Meter<R>` for one resource `R`
//! ([`Packets`], [`Bytes`], [`Cost`], [`DmaBytes`]); it takes `Rate<R>`
//! and `Amount<R>` and nothing else, so a byte rate can never configure a
//! packet meter and a packet count can never be charged to a byte meter.
//!
//! Arithmetic: tokens are fixed point, units x 2^32, in `u64`; a rate is
//! kept as units per nanosecond x 2^32. Refill is `dt * rate` computed in
//! `u128` and capped at the bucket size before it is added, so no input
//! (any `now`, any gap, time going backwards, any amount) overflows,
//! wraps, or panics; the property tests check this, and that the optimised
//! meters agree exactly with a straightforward transcription of the RFCs
//! on random arrival traces.
//!
//! Limits: rates up to 10^12 units/s, bursts up to 2^31 - 1 units. A rate
//! is held to 10^9 / 2^32 units/s (about 0.23), so every whole rate is
//! kept to within 0.12 units/s and [`Meter::applied`] reports it back
//! exactly.
//! This module reads no clock: `now` is an argument.

use crate::abi::{MeterConfig, MeterMode, MeterPolicy, MeterResource};
use core::marker::PhantomData;

/// Nanoseconds.
pub type Nanos = u64;

/// Fixed-point fraction bits of tokens and rates.
pub const FP: u32 = 32;
/// Largest rate a meter accepts, units per second.
pub const MAX_RATE: u64 = 1_000_000_000_000;
/// Largest burst a meter accepts, units.
pub const MAX_BURST: u64 = (1 << 31) - 1;

mod sealed {
    pub trait Sealed {}
}

/// A metered resource: fixes the unit of amounts and rates.
pub trait Resource: sealed::Sealed + Copy + core::fmt::Debug + 'static {
    /// The unit, plural (`packets`, `bytes`, `units`).
    const UNIT: &'static str;
    /// The ABI's name for it.
    const ABI: MeterResource;
}

macro_rules! resource {
    ($(#[$m:meta])* $name:ident, $unit:literal, $abi:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {}
        impl sealed::Sealed for $name {}
        impl Resource for $name {
            const UNIT: &'static str = $unit;
            const ABI: MeterResource = MeterResource::$abi;
        }
    };
}

resource!(
    /// Packets.
    Packets, "packets", Packets);
resource!(
    /// Frame bytes.
    Bytes, "bytes", Bytes);
resource!(
    /// Pipeline cost units (charged per stage, lookup, recirculation).
    Cost, "units", Cost);
resource!(
    /// Bytes moved by DMA.
    DmaBytes, "bytes", DmaBytes);

/// A quantity of resource `R`.
#[derive(Debug)]
pub struct Amount<R>(u64, PhantomData<fn() -> R>);

/// A rate of resource `R`, per second.
#[derive(Debug)]
pub struct Rate<R>(u64, PhantomData<fn() -> R>);

macro_rules! quantity {
    ($t:ident) => {
        impl<R> $t<R> {
            /// Wrap a raw number of this resource's unit.
            pub const fn new(v: u64) -> Self {
                $t(v, PhantomData)
            }
            /// The raw number.
            pub const fn get(self) -> u64 {
                self.0
            }
        }
        impl<R> Clone for $t<R> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<R> Copy for $t<R> {}
        impl<R> PartialEq for $t<R> {
            fn eq(&self, o: &Self) -> bool {
                self.0 == o.0
            }
        }
        impl<R> Eq for $t<R> {}
        impl<R> PartialOrd for $t<R> {
            fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl<R> Ord for $t<R> {
            fn cmp(&self, o: &Self) -> core::cmp::Ordering {
                self.0.cmp(&o.0)
            }
        }
    };
}
quantity!(Amount);
quantity!(Rate);

/// A meter's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Color {
    Green,
    Yellow,
    Red,
}

impl Color {
    /// The ABI's encoding.
    pub fn abi(self) -> crate::abi::MeterColor {
        match self {
            Color::Green => crate::abi::MeterColor::Green,
            Color::Yellow => crate::abi::MeterColor::Yellow,
            Color::Red => crate::abi::MeterColor::Red,
        }
    }
}

/// Why a configuration cannot be a meter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeterError {
    #[error("{field}: {value} {unit}/s is above the device's {MAX_RATE}")]
    RateTooHigh {
        field: &'static str,
        value: u64,
        unit: &'static str,
    },
    #[error("{field}: {value} {unit} is above the device's {MAX_BURST}")]
    BurstTooLarge {
        field: &'static str,
        value: u64,
        unit: &'static str,
    },
    #[error("pir: {pir} is below cir {cir} (RFC 2698 needs PIR >= CIR)")]
    PirBelowCir { cir: u64, pir: u64 },
    #[error("{0}")]
    Invalid(&'static str),
    #[error("resource {got:?} configured on a {want:?} meter")]
    WrongResource { want: MeterResource, got: MeterResource },
}

#[inline]
fn rate_fp<R: Resource>(field: &'static str, r: Rate<R>) -> Result<u64, MeterError> {
    if r.0 > MAX_RATE {
        return Err(MeterError::RateTooHigh {
            field,
            value: r.0,
            unit: R::UNIT,
        });
    }
    // Rounded to nearest: the step is 10^9 / 2^32 (0.23) units/s, so every
    // integer rate comes back exactly from `applied_rate`.
    Ok((((u128::from(r.0) << FP) + 500_000_000) / 1_000_000_000) as u64)
}

#[inline]
fn burst_fp<R: Resource>(field: &'static str, b: Amount<R>) -> Result<u64, MeterError> {
    if b.0 > MAX_BURST {
        return Err(MeterError::BurstTooLarge {
            field,
            value: b.0,
            unit: R::UNIT,
        });
    }
    Ok(b.0 << FP)
}

/// The rate a fixed-point rate really is, to the nearest unit/s.
#[inline]
fn applied_rate(fp: u64) -> u64 {
    ((u128::from(fp) * 1_000_000_000 + (1 << (FP - 1))) >> FP) as u64
}

/// Tokens `dt` nanoseconds of `rate_fp` add, capped at `cap` (so the
/// caller's addition cannot overflow when it saturates at `cap` too).
#[inline(always)]
fn refill(dt: u64, rate_fp: u64, cap: u64) -> u64 {
    let add = u128::from(dt) * u128::from(rate_fp);
    if add >= u128::from(cap) {
        cap
    } else {
        add as u64
    }
}

#[inline(always)]
fn elapsed(last: &mut u64, now: Nanos) -> u64 {
    // Time never runs backwards for a meter: an earlier `now` adds nothing
    // and does not move `last` back.
    let dt = now.saturating_sub(*last);
    if now > *last {
        *last = now;
    }
    dt
}

/// RFC 2697 srTCM parameters, shared by every meter that uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrTcmProfile<R> {
    cir_fp: u64,
    cbs_fp: u64,
    ebs_fp: u64,
    _r: PhantomData<fn() -> R>,
}

/// RFC 2697 srTCM state: the committed and excess buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrTcmState {
    tc: u64,
    te: u64,
    last: Nanos,
}

impl<R: Resource> SrTcmProfile<R> {
    /// CIR, CBS, EBS; at least one burst must be positive.
    pub fn new(cir: Rate<R>, cbs: Amount<R>, ebs: Amount<R>) -> Result<Self, MeterError> {
        if cbs.0 == 0 && ebs.0 == 0 {
            return Err(MeterError::Invalid("RFC 2697 needs CBS or EBS above 0"));
        }
        Ok(SrTcmProfile {
            cir_fp: rate_fp("cir", cir)?,
            cbs_fp: burst_fp("cburst", cbs)?,
            ebs_fp: burst_fp("eburst", ebs)?,
            _r: PhantomData,
        })
    }

    /// Buckets full at `now` (RFC 2697: "initially full").
    pub fn state(&self, now: Nanos) -> SrTcmState {
        SrTcmState {
            tc: self.cbs_fp,
            te: self.ebs_fp,
            last: now,
        }
    }

    /// Color a packet of `b` arriving at `now` (color-blind).
    #[inline]
    pub fn color(&self, s: &mut SrTcmState, now: Nanos, b: Amount<R>) -> Color {
        let dt = elapsed(&mut s.last, now);
        if dt > 0 {
            // Tokens go to Tc until it is full, the rest to Te.
            let add = refill(dt, self.cir_fp, self.cbs_fp.saturating_add(self.ebs_fp));
            let to_c = add.min(self.cbs_fp - s.tc);
            s.tc += to_c;
            s.te = (s.te.saturating_add(add - to_c)).min(self.ebs_fp);
        }
        let need = b.0.min(MAX_BURST + 1) << FP;
        if s.tc >= need {
            s.tc -= need;
            Color::Green
        } else if s.te >= need {
            s.te -= need;
            Color::Yellow
        } else {
            Color::Red
        }
    }

    /// Whether, at `now`, a packet of `b` would find tokens in either
    /// bucket (without taking any).
    pub fn would_pass(&self, s: &SrTcmState, now: Nanos, b: Amount<R>) -> bool {
        let mut t = *s;
        self.color(&mut t, now, b) != Color::Red
    }

    /// Take up to `b` tokens at `now` (committed bucket first, then the
    /// excess one) and return how many were taken: a regulator repaying
    /// what its LIF used while red (RFC 2697 takes nothing for a red
    /// packet). Color marking is unchanged by it except that the tokens
    /// are gone.
    pub fn repay(&self, s: &mut SrTcmState, now: Nanos, b: Amount<R>) -> Amount<R> {
        // A zero-sized color refills the buckets to `now` and takes nothing.
        self.color(s, now, Amount::new(0));
        // Whole tokens only: a fraction taken would be lost to the caller.
        let whole = |t: u64| t >> FP << FP;
        let need = b.0.min(MAX_BURST + 1) << FP;
        let from_c = need.min(whole(s.tc));
        s.tc -= from_c;
        let from_e = (need - from_c).min(whole(s.te));
        s.te -= from_e;
        Amount::new((from_c + from_e) >> FP)
    }

    /// (CIR, CBS, EBS) as applied.
    pub fn applied(&self) -> (Rate<R>, Amount<R>, Amount<R>) {
        (
            Rate::new(applied_rate(self.cir_fp)),
            Amount::new(self.cbs_fp >> FP),
            Amount::new(self.ebs_fp >> FP),
        )
    }
}

/// RFC 2698 trTCM parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrTcmProfile<R> {
    cir_fp: u64,
    pir_fp: u64,
    cbs_fp: u64,
    pbs_fp: u64,
    _r: PhantomData<fn() -> R>,
}

/// RFC 2698 trTCM state: the committed and peak buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrTcmState {
    tc: u64,
    tp: u64,
    last: Nanos,
}

impl<R: Resource> TrTcmProfile<R> {
    /// CIR, CBS, PIR >= CIR, PBS; both bursts positive.
    pub fn new(cir: Rate<R>, cbs: Amount<R>, pir: Rate<R>, pbs: Amount<R>) -> Result<Self, MeterError> {
        if pir.0 < cir.0 {
            return Err(MeterError::PirBelowCir { cir: cir.0, pir: pir.0 });
        }
        if cbs.0 == 0 || pbs.0 == 0 {
            return Err(MeterError::Invalid("RFC 2698 needs CBS and PBS above 0"));
        }
        Ok(TrTcmProfile {
            cir_fp: rate_fp("cir", cir)?,
            pir_fp: rate_fp("pir", pir)?,
            cbs_fp: burst_fp("cburst", cbs)?,
            pbs_fp: burst_fp("pburst", pbs)?,
            _r: PhantomData,
        })
    }

    /// Buckets full at `now`.
    pub fn state(&self, now: Nanos) -> TrTcmState {
        TrTcmState {
            tc: self.cbs_fp,
            tp: self.pbs_fp,
            last: now,
        }
    }

    /// Color a packet of `b` arriving at `now` (color-blind).
    #[inline]
    pub fn color(&self, s: &mut TrTcmState, now: Nanos, b: Amount<R>) -> Color {
        let dt = elapsed(&mut s.last, now);
        if dt > 0 {
            s.tc =
                s.tc.saturating_add(refill(dt, self.cir_fp, self.cbs_fp))
                    .min(self.cbs_fp);
            s.tp =
                s.tp.saturating_add(refill(dt, self.pir_fp, self.pbs_fp))
                    .min(self.pbs_fp);
        }
        let need = b.0.min(MAX_BURST + 1) << FP;
        if s.tp < need {
            Color::Red
        } else if s.tc < need {
            s.tp -= need;
            Color::Yellow
        } else {
            s.tp -= need;
            s.tc -= need;
            Color::Green
        }
    }

    /// Whether, at `now`, a packet of `b` would not be red.
    pub fn would_pass(&self, s: &TrTcmState, now: Nanos, b: Amount<R>) -> bool {
        let mut t = *s;
        self.color(&mut t, now, b) != Color::Red
    }

    /// Take up to `b` tokens of the peak bucket at `now` (and as many of
    /// the committed bucket as it holds, up to the same amount); returns
    /// how many peak tokens were taken. See [`SrTcmProfile::repay`].
    pub fn repay(&self, s: &mut TrTcmState, now: Nanos, b: Amount<R>) -> Amount<R> {
        self.color(s, now, Amount::new(0));
        let need = b.0.min(MAX_BURST + 1) << FP;
        let from_p = need.min(s.tp >> FP << FP);
        s.tp -= from_p;
        s.tc -= from_p.min(s.tc);
        Amount::new(from_p >> FP)
    }

    /// (CIR, CBS, PIR, PBS) as applied.
    pub fn applied(&self) -> (Rate<R>, Amount<R>, Rate<R>, Amount<R>) {
        (
            Rate::new(applied_rate(self.cir_fp)),
            Amount::new(self.cbs_fp >> FP),
            Rate::new(applied_rate(self.pir_fp)),
            Amount::new(self.pbs_fp >> FP),
        )
    }
}

/// A configured meter of resource `R`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meter<R> {
    /// Everything is green.
    Off,
    SrTcm(SrTcmProfile<R>, SrTcmState),
    TrTcm(TrTcmProfile<R>, TrTcmState),
}

impl<R: Resource> Meter<R> {
    /// Build from the ABI's configuration (already validated by the ABI
    /// decoder), with buckets full at `now`.
    pub fn from_config(cfg: &MeterConfig, now: Nanos) -> Result<Meter<R>, MeterError> {
        let got = MeterResource::from_raw(cfg.resource).map_err(|_| MeterError::Invalid("unknown resource"))?;
        if got != R::ABI {
            return Err(MeterError::WrongResource { want: R::ABI, got });
        }
        Ok(
            match MeterMode::from_raw(cfg.mode).map_err(|_| MeterError::Invalid("unknown meter mode"))? {
                MeterMode::Off => Meter::Off,
                MeterMode::SrTcm => {
                    let p = SrTcmProfile::new(
                        Rate::new(cfg.cir.get()),
                        Amount::new(cfg.cburst.get()),
                        Amount::new(cfg.eburst.get()),
                    )?;
                    Meter::SrTcm(p, p.state(now))
                }
                MeterMode::TrTcm => {
                    let p = TrTcmProfile::new(
                        Rate::new(cfg.cir.get()),
                        Amount::new(cfg.cburst.get()),
                        Rate::new(cfg.pir.get()),
                        Amount::new(cfg.pburst.get()),
                    )?;
                    Meter::TrTcm(p, p.state(now))
                }
            },
        )
    }

    /// The configuration as applied (rates rounded to the device's step),
    /// with `policy`.
    pub fn applied(&self, policy: MeterPolicy) -> MeterConfig {
        let mut c = MeterConfig {
            resource: R::ABI.raw(),
            policy: policy.raw(),
            ..Default::default()
        };
        match self {
            Meter::Off => {}
            Meter::SrTcm(p, _) => {
                let (cir, cbs, ebs) = p.applied();
                c.mode = MeterMode::SrTcm.raw();
                c.cir = cir.get().into();
                c.cburst = cbs.get().into();
                c.eburst = ebs.get().into();
            }
            Meter::TrTcm(p, _) => {
                let (cir, cbs, pir, pbs) = p.applied();
                c.mode = MeterMode::TrTcm.raw();
                c.cir = cir.get().into();
                c.cburst = cbs.get().into();
                c.pir = pir.get().into();
                c.pburst = pbs.get().into();
            }
        }
        c
    }

    /// Color `b` arriving at `now`, taking tokens.
    #[inline]
    pub fn color(&mut self, now: Nanos, b: Amount<R>) -> Color {
        match self {
            Meter::Off => Color::Green,
            Meter::SrTcm(p, s) => p.color(s, now, b),
            Meter::TrTcm(p, s) => p.color(s, now, b),
        }
    }

    /// Whether `b` at `now` would be green or yellow (takes nothing).
    pub fn would_pass(&self, now: Nanos, b: Amount<R>) -> bool {
        match self {
            Meter::Off => true,
            Meter::SrTcm(p, s) => p.would_pass(s, now, b),
            Meter::TrTcm(p, s) => p.would_pass(s, now, b),
        }
    }

    /// Take up to `b` tokens (see [`SrTcmProfile::repay`]); returns how
    /// many were taken. An off meter owes nothing: everything is repaid.
    pub fn repay(&mut self, now: Nanos, b: Amount<R>) -> Amount<R> {
        match self {
            Meter::Off => b,
            Meter::SrTcm(p, s) => p.repay(s, now, b),
            Meter::TrTcm(p, s) => p.repay(s, now, b),
        }
    }

    /// The most a packet may take and not be red: CBS + EBS (srTCM), PBS
    /// (trTCM); 0 when off.
    pub fn depth(&self) -> u64 {
        match self {
            Meter::Off => 0,
            Meter::SrTcm(p, _) => {
                let (_, c, e) = p.applied();
                c.get().saturating_add(e.get())
            }
            Meter::TrTcm(p, _) => p.applied().3.get(),
        }
    }

    /// Whether the meter is configured.
    pub fn is_on(&self) -> bool {
        !matches!(self, Meter::Off)
    }
}

/// A level meter: green below `yellow_at`, yellow below `red_at`, red at
/// or above (for descriptors in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LevelMeter {
    pub yellow_at: u64,
    pub red_at: u64,
}

impl LevelMeter {
    /// Off: never red.
    pub const OFF: LevelMeter = LevelMeter {
        yellow_at: u64::MAX,
        red_at: u64::MAX,
    };

    /// The color of `level`.
    pub fn color(&self, level: u64) -> Color {
        if level >= self.red_at {
            Color::Red
        } else if level >= self.yellow_at {
            Color::Yellow
        } else {
            Color::Green
        }
    }

    /// From the ABI configuration (`cburst` yellow, `pburst` red).
    pub fn from_config(cfg: &MeterConfig) -> LevelMeter {
        match cfg.mode() {
            MeterMode::Off => LevelMeter::OFF,
            _ => LevelMeter {
                yellow_at: cfg.cburst.get(),
                red_at: cfg.pburst.get(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
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
}
