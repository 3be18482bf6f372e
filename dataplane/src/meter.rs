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
    /// Within the committed rate and burst (a level meter: below its yellow
    /// threshold).
    Green,
    /// Above the committed: within the excess burst (srTCM) or the peak rate
    /// and burst (trTCM); a level meter: at or above its yellow threshold.
    Yellow,
    /// Above the peak rate or burst (trTCM), or both bursts spent (srTCM);
    /// a level meter: at or above its red threshold.
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
    /// A rate above [`MAX_RATE`].
    #[error("{field}: {value} {unit}/s is above the device's {MAX_RATE}")]
    RateTooHigh {
        /// The configuration field (`cir`, `pir`).
        field: &'static str,
        /// The rate asked for, units per second.
        value: u64,
        /// The resource's unit ([`Resource::UNIT`]).
        unit: &'static str,
    },
    /// A burst above [`MAX_BURST`].
    #[error("{field}: {value} {unit} is above the device's {MAX_BURST}")]
    BurstTooLarge {
        /// The configuration field (`cburst`, `eburst`, `pburst`).
        field: &'static str,
        /// The burst asked for, in the resource's units.
        value: u64,
        /// The resource's unit ([`Resource::UNIT`]).
        unit: &'static str,
    },
    /// trTCM with a peak rate below the committed rate.
    #[error("pir: {pir} is below cir {cir} (RFC 2698 needs PIR >= CIR)")]
    PirBelowCir {
        /// The committed rate asked for, units per second.
        cir: u64,
        /// The peak rate asked for, units per second.
        pir: u64,
    },
    /// Another rule of the RFCs or the ABI broken, described.
    #[error("{0}")]
    Invalid(&'static str),
    /// A configuration for another resource than the meter's.
    #[error("resource {got:?} configured on a {want:?} meter")]
    WrongResource {
        /// The meter's resource.
        want: MeterResource,
        /// The configuration's resource.
        got: MeterResource,
    },
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

/// [`refill`] where `full_dt` is `cap / rate_fp` (`u64::MAX` when
/// `rate_fp` is 0), worked out once per profile: a gap of at most
/// `full_dt` adds `dt * rate_fp <= cap` (no overflow), a longer one at
/// least `(full_dt + 1) * rate_fp > cap`, so `cap`. The same result as
/// `refill`, without the 128-bit product (property test below).
#[inline(always)]
fn refill_upto(dt: u64, rate_fp: u64, cap: u64, full_dt: u64) -> u64 {
    if dt > full_dt {
        cap
    } else {
        dt * rate_fp
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
#[repr(C)]
pub struct SrTcmProfile<R> {
    cir_fp: u64,
    cbs_fp: u64,
    ebs_fp: u64,
    /// The longest gap whose refill does not fill both buckets from
    /// empty: `(cbs + ebs) / cir` (`u64::MAX` at a zero rate). A longer
    /// gap refills `cbs + ebs`, a shorter one `dt * cir` without a
    /// 128-bit product (see [`refill_upto`]).
    full_dt: u64,
    _r: PhantomData<fn() -> R>,
}

/// RFC 2697 srTCM state: the committed and excess buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
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
        let (cir_fp, cbs_fp, ebs_fp) = (rate_fp("cir", cir)?, burst_fp("cburst", cbs)?, burst_fp("eburst", ebs)?);
        Ok(SrTcmProfile {
            cir_fp,
            cbs_fp,
            ebs_fp,
            full_dt: (cbs_fp.saturating_add(ebs_fp)).checked_div(cir_fp).unwrap_or(u64::MAX),
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
            let add = refill_upto(dt, self.cir_fp, self.cbs_fp.saturating_add(self.ebs_fp), self.full_dt);
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
#[repr(C)]
pub struct TrTcmProfile<R> {
    cir_fp: u64,
    pir_fp: u64,
    cbs_fp: u64,
    pbs_fp: u64,
    _r: PhantomData<fn() -> R>,
}

/// RFC 2698 trTCM state: the committed and peak buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
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
///
/// Its layout is fixed (`repr(C, u64)`: a 64-bit tag, 0 `Off`, 1 `SrTcm`,
/// 2 `TrTcm`, then the variant's profile and state as `repr(C)` structs):
/// the pipeline compiler colors packets with it in place, at the offsets
/// in [`layout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, u64)]
pub enum Meter<R> {
    /// Everything is green.
    Off,
    /// RFC 2697 single rate three color marker: its parameters and buckets.
    SrTcm(SrTcmProfile<R>, SrTcmState),
    /// RFC 2698 two rate three color marker: its parameters and buckets.
    TrTcm(TrTcmProfile<R>, TrTcmState),
}

/// Byte offsets of [`Meter`]'s words, for code that colors in place (the
/// pipeline compiler). Checked against the Rust layout by the tests.
pub mod layout {
    /// Bytes per meter.
    pub const SIZE: i32 = 64;
    /// The tag: [`TAG_OFF`], [`TAG_SRTCM`] or [`TAG_TRTCM`].
    pub const TAG: i32 = 0;
    /// `Meter::Off`'s tag.
    pub const TAG_OFF: u64 = 0;
    /// `Meter::SrTcm`'s tag.
    pub const TAG_SRTCM: u64 = 1;
    /// `Meter::TrTcm`'s tag.
    pub const TAG_TRTCM: u64 = 2;
    /// srTCM CIR (fixed point).
    pub const SR_CIR: i32 = 8;
    /// srTCM CBS (fixed point).
    pub const SR_CBS: i32 = 16;
    /// srTCM EBS (fixed point).
    pub const SR_EBS: i32 = 24;
    /// srTCM: the longest gap that refills less than CBS + EBS.
    pub const SR_FULL_DT: i32 = 32;
    /// srTCM committed bucket.
    pub const SR_TC: i32 = 40;
    /// srTCM excess bucket.
    pub const SR_TE: i32 = 48;
    /// srTCM last update.
    pub const SR_LAST: i32 = 56;
    /// trTCM CIR (fixed point).
    pub const TR_CIR: i32 = 8;
    /// trTCM PIR (fixed point).
    pub const TR_PIR: i32 = 16;
    /// trTCM CBS (fixed point).
    pub const TR_CBS: i32 = 24;
    /// trTCM PBS (fixed point).
    pub const TR_PBS: i32 = 32;
    /// trTCM committed bucket.
    pub const TR_TC: i32 = 40;
    /// trTCM peak bucket.
    pub const TR_TP: i32 = 48;
    /// trTCM last update.
    pub const TR_LAST: i32 = 56;
}
const _: () = assert!(std::mem::size_of::<Meter<Packets>>() == layout::SIZE as usize);
const _: () = assert!(std::mem::size_of::<Meter<Bytes>>() == layout::SIZE as usize);

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
    #[inline]
    pub fn would_pass(&self, now: Nanos, b: Amount<R>) -> bool {
        match self {
            Meter::Off => true,
            Meter::SrTcm(p, s) => p.would_pass(s, now, b),
            Meter::TrTcm(p, s) => p.would_pass(s, now, b),
        }
    }

    /// Whether `b` would pass (green or yellow) with the tokens the meter
    /// holds, refilled to its last update and no further: what
    /// [`Meter::would_pass`] says at any `now` up to that update (such as
    /// right after a [`Meter::color`] at `now`). Takes nothing. Asked at
    /// time 0, which is no later than any update: a meter never refills
    /// for an earlier time, so the colors' own test decides on the tokens
    /// as they are.
    #[inline]
    pub fn would_pass_held(&self, b: Amount<R>) -> bool {
        self.would_pass(0, b)
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
    #[inline]
    pub fn is_on(&self) -> bool {
        !matches!(self, Meter::Off)
    }
}

/// A level meter: green below `yellow_at`, yellow below `red_at`, red at
/// or above (for descriptors in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LevelMeter {
    /// Level at or above which the color is yellow.
    pub yellow_at: u64,
    /// Level at or above which the color is red.
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
mod tests;
