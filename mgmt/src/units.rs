//! Quantities on the command line: rates (`2Gbit/s`, `250MB/s`, `1.5Mpps`,
//! `50Munits/s`) and sizes (`64KiB`, `1500B`, `32pkt`, `4096units`), in the
//! unit of the meter's resource, which the device speaks: bytes/s and
//! bytes, packets/s and packets, cost units/s and units, descriptors.
//!
//! Parsed with nom. Decimal prefixes (k, M, G, T) are powers of 1000,
//! binary ones (Ki, Mi, Gi, Ti) powers of 1024; bit rates are divided by
//! 8. A bare number is in the resource's own unit. A value that is not a
//! whole number of the device's unit is rounded to the nearest and the
//! caller is told ([`Parsed::exact`]). An error names the bad token and
//! points at it:
//!
//! ```text
//! --cir 2Gbitz/s: unknown unit 'Gbitz/s' for the bytes meter (rates: bit/s, B/s, bps, Bps)
//!   2Gbitz/s
//!    ^^^^^^^
//! ```

use crate::proto::MeterResource;
use nom::bytes::complete::take_while1;
use nom::character::complete::{char, digit1, space0};
use nom::combinator::{opt, recognize};
use nom::sequence::pair;
use nom::{IResult, Parser};
use std::fmt;

/// A rate or a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Per second.
    Rate,
    /// An amount: a burst or a level.
    Size,
}

/// A parsed quantity in the device's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parsed {
    /// Rounded to the device's unit.
    pub value: u64,
    /// The value before rounding.
    pub exact: f64,
}

/// Why a quantity did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    /// The text as given.
    pub input: String,
    /// Byte offset and length of the bad token.
    pub at: usize,
    pub len: usize,
    pub reason: String,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Columns are counted in characters, for the caret.
        let col = self.input[..self.at.min(self.input.len())].chars().count();
        let width = self.input[self.at.min(self.input.len())..]
            .chars()
            .take(self.len.max(1))
            .count()
            .max(1);
        write!(
            f,
            "{}\n  {}\n  {}{}",
            self.reason,
            self.input,
            " ".repeat(col),
            "^".repeat(width)
        )
    }
}

impl std::error::Error for UnitError {}

/// The resource's units: (suffix, factor) for rates and for sizes, and the
/// names to list in an error.
fn units(resource: MeterResource, kind: Kind) -> (&'static [(&'static str, f64)], &'static str) {
    match (resource, kind) {
        (MeterResource::Bytes | MeterResource::DmaBytes, Kind::Rate) => (
            &[
                ("bit/s", 0.125),
                ("bps", 0.125),
                ("b/s", 0.125),
                ("B/s", 1.0),
                ("Bps", 1.0),
            ],
            "bit/s, B/s, bps, Bps",
        ),
        (MeterResource::Bytes | MeterResource::DmaBytes, Kind::Size) => {
            (&[("B", 1.0), ("bytes", 1.0), ("byte", 1.0)], "B, bytes")
        }
        (MeterResource::Packets, Kind::Rate) => (&[("pps", 1.0), ("pkt/s", 1.0), ("p/s", 1.0)], "pps, pkt/s"),
        (MeterResource::Packets, Kind::Size) => (
            &[("pkt", 1.0), ("pkts", 1.0), ("packets", 1.0), ("p", 1.0)],
            "pkt, packets",
        ),
        (MeterResource::Cost, Kind::Rate) => (&[("units/s", 1.0), ("u/s", 1.0)], "units/s, u/s"),
        (MeterResource::Cost, Kind::Size) => (&[("units", 1.0), ("u", 1.0)], "units, u"),
        (MeterResource::DescInFlight, Kind::Rate) => (&[], "none: descriptors in flight is a level, it has no rate"),
        (MeterResource::DescInFlight, Kind::Size) => (
            &[("desc", 1.0), ("descs", 1.0), ("descriptors", 1.0)],
            "desc, descriptors",
        ),
    }
}

/// SI and IEC prefixes, longest first so `Ki` wins over `K`.
const PREFIXES: &[(&str, f64)] = &[
    ("Ki", 1024.0),
    ("Mi", 1_048_576.0),
    ("Gi", 1_073_741_824.0),
    ("Ti", 1_099_511_627_776.0),
    ("k", 1e3),
    ("K", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
];

fn number(i: &str) -> IResult<&str, &str> {
    recognize(pair(digit1, opt(pair(char('.'), digit1)))).parse(i)
}

fn unit_token(i: &str) -> IResult<&str, &str> {
    take_while1(|c: char| !c.is_whitespace()).parse(i)
}

/// `number [spaces] [prefix]unit`, nothing after it.
fn lex(i: &str) -> IResult<&str, (&str, Option<&str>)> {
    let (i, n) = number(i)?;
    let (i, _) = space0(i)?;
    let (i, u) = opt(unit_token).parse(i)?;
    Ok((i, (n, u)))
}

/// Parse a quantity of `kind` for a meter of `resource`.
pub fn parse(input: &str, resource: MeterResource, kind: Kind) -> Result<Parsed, UnitError> {
    let err = |at: usize, len: usize, reason: String| UnitError {
        input: input.to_string(),
        at,
        len,
        reason,
    };
    let lead = input.len() - input.trim_start().len();
    let text = input.trim();
    if text.is_empty() {
        return Err(err(
            0,
            1,
            "empty: give a number with a unit, e.g. 2Gbit/s or 64KiB".into(),
        ));
    }
    let (table, names) = units(resource, kind);
    let what = match kind {
        Kind::Rate => "rates",
        Kind::Size => "sizes",
    };
    let (rest, (num, unit)) = lex(text).map_err(|_| {
        let bad = text.chars().next().map_or(1, char::len_utf8);
        err(
            lead,
            bad,
            format!("expected a number at '{}' (no sign; units: {names})", text),
        )
    })?;
    if !rest.trim().is_empty() {
        let at = lead + (text.len() - rest.len()) + (rest.len() - rest.trim_start().len());
        return Err(err(
            at,
            rest.trim().len(),
            format!("unexpected '{}' after the quantity", rest.trim()),
        ));
    }
    let unit_at = lead + (text.len() - rest.len()) - unit.map_or(0, str::len);
    let value: f64 = num
        .parse()
        .map_err(|_| err(lead, num.len(), format!("'{num}' is not a number")))?;
    let factor = match unit {
        None => {
            if table.is_empty() {
                return Err(err(
                    lead,
                    num.len(),
                    format!("the {} meter has no {what}: {names}", resource),
                ));
            }
            1.0
        }
        Some(u) => lookup(u, table).ok_or_else(|| {
            err(
                unit_at,
                u.len(),
                format!("unknown unit '{u}' for the {} meter ({what}: {names})", resource),
            )
        })?,
    };
    let exact = value * factor;
    if !exact.is_finite() || exact > u64::MAX as f64 {
        return Err(err(lead, text.len(), format!("'{text}' is too large")));
    }
    Ok(Parsed {
        value: exact.round() as u64,
        exact,
    })
}

fn lookup(u: &str, table: &[(&str, f64)]) -> Option<f64> {
    if let Some(&(_, f)) = table.iter().find(|(s, _)| *s == u) {
        return Some(f);
    }
    PREFIXES.iter().find_map(|(p, m)| {
        let base = u.strip_prefix(p)?;
        table.iter().find(|(s, _)| *s == base).map(|(_, f)| f * m)
    })
}

/// The device's unit of a rate / size of `r`, for display.
pub fn unit_of(r: MeterResource, kind: Kind) -> &'static str {
    match (r, kind) {
        (MeterResource::Bytes | MeterResource::DmaBytes, Kind::Rate) => "B/s",
        (MeterResource::Bytes | MeterResource::DmaBytes, Kind::Size) => "B",
        (MeterResource::Packets, Kind::Rate) => "pps",
        (MeterResource::Packets, Kind::Size) => "pkt",
        (MeterResource::Cost, Kind::Rate) => "units/s",
        (MeterResource::Cost, Kind::Size) => "units",
        (MeterResource::DescInFlight, Kind::Rate) => "-",
        (MeterResource::DescInFlight, Kind::Size) => "desc",
    }
}

/// A value in the device's unit, also in a friendlier one where that
/// helps (`250000000 B/s (2 Gbit/s)`, `65536 B (64 KiB)`).
pub fn human(v: u64, r: MeterResource, kind: Kind) -> String {
    let base = format!("{v} {}", unit_of(r, kind));
    let extra = match (r, kind) {
        (MeterResource::Bytes | MeterResource::DmaBytes, Kind::Rate) if v >= 125 => Some(si(v as f64 * 8.0, "bit/s")),
        (MeterResource::Bytes | MeterResource::DmaBytes, Kind::Size) if v >= 1024 => Some(iec(v, "B")),
        (MeterResource::Packets, Kind::Rate) if v >= 1000 => Some(si(v as f64, "pps")),
        (MeterResource::Cost, Kind::Rate) if v >= 1000 => Some(si(v as f64, "units/s")),
        _ => None,
    };
    match extra {
        Some(e) => format!("{base} ({e})"),
        None => base,
    }
}

fn si(v: f64, unit: &str) -> String {
    let (d, p) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(d, _)| v >= *d)
        .unwrap_or((1.0, ""));
    trim(format!("{:.3}", v / d)) + " " + p + unit
}

fn iec(v: u64, unit: &str) -> String {
    let (d, p) = [(1u64 << 40, "Ti"), (1 << 30, "Gi"), (1 << 20, "Mi"), (1 << 10, "Ki")]
        .into_iter()
        .find(|(d, _)| v >= *d)
        .unwrap_or((1, ""));
    trim(format!("{:.3}", v as f64 / d as f64)) + " " + p + unit
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rate(s: &str, r: MeterResource) -> Result<u64, UnitError> {
        parse(s, r, Kind::Rate).map(|p| p.value)
    }

    fn size(s: &str, r: MeterResource) -> Result<u64, UnitError> {
        parse(s, r, Kind::Size).map(|p| p.value)
    }

    #[test]
    fn rates_and_sizes_in_every_resource() {
        assert_eq!(rate("2Gbit/s", MeterResource::Bytes), Ok(250_000_000));
        assert_eq!(rate("2 Gbit/s", MeterResource::Bytes), Ok(250_000_000));
        assert_eq!(rate("250MB/s", MeterResource::Bytes), Ok(250_000_000));
        assert_eq!(rate("1Gbps", MeterResource::DmaBytes), Ok(125_000_000));
        assert_eq!(rate("1.5Mpps", MeterResource::Packets), Ok(1_500_000));
        assert_eq!(rate("50Munits/s", MeterResource::Cost), Ok(50_000_000));
        assert_eq!(rate("1000", MeterResource::Packets), Ok(1000));
        assert_eq!(size("64KiB", MeterResource::Bytes), Ok(65_536));
        assert_eq!(size("64KB", MeterResource::Bytes), Ok(64_000));
        assert_eq!(size("1500", MeterResource::Bytes), Ok(1500));
        assert_eq!(size("32pkt", MeterResource::Packets), Ok(32));
        assert_eq!(size("4Kiunits", MeterResource::Cost), Ok(4096));
        assert_eq!(size("512desc", MeterResource::DescInFlight), Ok(512));
        let p = parse("2.5kbit/s", MeterResource::Bytes, Kind::Rate).unwrap();
        assert_eq!((p.value, p.exact), (313, 312.5), "rounded, and the caller can tell");
    }

    #[test]
    fn errors_point_at_the_bad_token() {
        let e = parse("2Gbitz/s", MeterResource::Bytes, Kind::Rate).unwrap_err();
        assert_eq!((e.at, e.len), (1, 7));
        let shown = e.to_string();
        assert!(
            shown.starts_with("unknown unit 'Gbitz/s' for the bytes meter (rates: bit/s"),
            "{shown}"
        );
        assert!(shown.ends_with("\n  2Gbitz/s\n   ^^^^^^^"), "{shown}");
        // Bits are not a packet rate.
        let e = parse("10Gbit/s", MeterResource::Packets, Kind::Rate).unwrap_err();
        assert!(e.reason.contains("pps"), "{}", e.reason);
        // A sign, a missing number, trailing junk, a rate for a level.
        let e = parse("-5MB/s", MeterResource::Bytes, Kind::Rate).unwrap_err();
        assert_eq!(e.at, 0);
        assert!(e.reason.contains("expected a number"));
        assert_eq!(parse("", MeterResource::Bytes, Kind::Size).unwrap_err().at, 0);
        let e = parse("64KiB x", MeterResource::Bytes, Kind::Size).unwrap_err();
        assert_eq!((e.at, e.len), (6, 1), "{e}");
        let e = parse("100", MeterResource::DescInFlight, Kind::Rate).unwrap_err();
        assert!(e.reason.contains("level"), "{}", e.reason);
        let e = parse("99999999999999TiB", MeterResource::Bytes, Kind::Size).unwrap_err();
        assert!(e.reason.contains("too large"));
        // Leading spaces keep the caret honest.
        let e = parse("  7 Qb", MeterResource::Bytes, Kind::Size).unwrap_err();
        assert_eq!(e.at, 4);
    }

    #[test]
    fn humans_read_the_applied_values() {
        assert_eq!(
            human(250_000_000, MeterResource::Bytes, Kind::Rate),
            "250000000 B/s (2 Gbit/s)"
        );
        assert_eq!(human(65_536, MeterResource::Bytes, Kind::Size), "65536 B (64 KiB)");
        assert_eq!(
            human(1_500_000, MeterResource::Packets, Kind::Rate),
            "1500000 pps (1.5 Mpps)"
        );
        assert_eq!(human(32, MeterResource::Packets, Kind::Size), "32 pkt");
    }

    proptest! {
        /// Any text: an answer or a positioned error, never a panic, and
        /// the error's span lies inside the input.
        #[test]
        fn never_panics(s in "\\PC{0,24}", r in 0usize..5, k in any::<bool>()) {
            let r = [MeterResource::Packets, MeterResource::Bytes, MeterResource::Cost, MeterResource::DmaBytes, MeterResource::DescInFlight][r];
            let k = if k { Kind::Rate } else { Kind::Size };
            if let Err(e) = parse(&s, r, k) {
                prop_assert!(e.at <= s.len());
                prop_assert!(s.is_char_boundary(e.at));
                let _ = e.to_string();
            }
        }

        /// Whole numbers with the resource's own unit come back exactly.
        #[test]
        fn plain_values_round_trip(v in 0u64..(1u64 << 52)) {
            prop_assert_eq!(rate(&format!("{v}B/s"), MeterResource::Bytes), Ok(v));
            prop_assert_eq!(size(&format!("{v}"), MeterResource::Cost), Ok(v));
        }
    }
}
