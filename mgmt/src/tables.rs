//! Table entries as people write them: match values and action parameters
//! in text, checked against a field's width and match kind.
//!
//! | form | example | meaning |
//! |---|---|---|
//! | MAC | `02:f4:1c:00:00:05` | 48 bits |
//! | IPv4 | `10.0.0.1` | 32 bits |
//! | number | `2048`, `0x800`, `0b101` | any width it fits |
//! | prefix (LPM) | `10.0.0.0/8`, `0x0a000000/8` | leading bits |
//! | value and mask (ternary) | `0x0800&&&0xffff` | P4's `&&&` |
//! | wildcard (ternary, LPM) | `*` | matches anything |

use dataplane::packet::{EthernetAddress, ParseAddressError};

/// How a key field matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Exact,
    Lpm,
    Ternary,
}

/// A parsed match: value, mask, and (LPM) prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub value: u128,
    pub mask: u128,
    pub prefix: u16,
}

fn ones(w: u16) -> u128 {
    if w >= 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    }
}

/// A value: MAC, IPv4 address or number, fitting `width` bits.
pub fn parse_value(text: &str, width: u16) -> Result<u128, String> {
    let t = text.trim();
    let v = if t.contains(':') {
        let mac: EthernetAddress = t.parse().map_err(|e: ParseAddressError| e.to_string())?;
        mac.0.iter().fold(0u128, |v, &b| (v << 8) | u128::from(b))
    } else if t.matches('.').count() == 3 {
        let mut v = 0u128;
        for p in t.split('.') {
            let b: u8 = p
                .parse()
                .map_err(|_| format!("'{t}': '{p}' is not an IPv4 byte (0..=255)"))?;
            v = (v << 8) | u128::from(b);
        }
        v
    } else if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u128::from_str_radix(&h.replace('_', ""), 16).map_err(|_| format!("'{t}' is not a hex number"))?
    } else if let Some(b) = t.strip_prefix("0b") {
        u128::from_str_radix(&b.replace('_', ""), 2).map_err(|_| format!("'{t}' is not a binary number"))?
    } else {
        t.replace('_', "")
            .parse::<u128>()
            .map_err(|_| format!("'{t}' is not a number, MAC or IPv4 address"))?
    };
    if v & !ones(width) != 0 {
        return Err(format!("'{t}' does not fit in {width} bits"));
    }
    Ok(v)
}

/// A match for a key field of `width` bits and `kind`.
pub fn parse_match(text: &str, width: u16, kind: Kind) -> Result<Match, String> {
    let t = text.trim();
    let all = ones(width);
    if t == "*" {
        return match kind {
            Kind::Exact => Err(format!("'*': an exact key needs a value ({width} bits)")),
            Kind::Lpm | Kind::Ternary => Ok(Match {
                value: 0,
                mask: 0,
                prefix: 0,
            }),
        };
    }
    match kind {
        Kind::Exact => {
            if t.contains("&&&") || t.contains('/') {
                return Err(format!("'{t}': an exact key takes a plain value"));
            }
            Ok(Match {
                value: parse_value(t, width)?,
                mask: all,
                prefix: 0,
            })
        }
        Kind::Lpm => {
            let (v, p) = match t.split_once('/') {
                Some((v, p)) => {
                    let p: u16 = p.parse().map_err(|_| format!("'{t}': '/{p}' is not a prefix length"))?;
                    (v, p)
                }
                None => (t, width),
            };
            if p > width {
                return Err(format!("'{t}': /{p} is longer than the {width}-bit key"));
            }
            let mask = all ^ ones(width - p);
            let value = parse_value(v, width)?;
            if value & !mask != 0 {
                return Err(format!("'{t}': bits set past the /{p} prefix"));
            }
            Ok(Match { value, mask, prefix: p })
        }
        Kind::Ternary => {
            let (v, m) = match t.split_once("&&&") {
                Some((v, m)) => (parse_value(v, width)?, parse_value(m, width)?),
                None => (parse_value(t, width)?, all),
            };
            if v & !m != 0 {
                return Err(format!("'{t}': value bits outside the mask"));
            }
            Ok(Match {
                value: v,
                mask: m,
                prefix: 0,
            })
        }
    }
}

/// A value for display: a MAC for 48 bits, dotted for 32-bit addresses,
/// else decimal below 2^16 and hex above.
pub fn format_value(v: u128, width: u16, address: bool) -> String {
    match width {
        48 => {
            let b = (v as u64).to_be_bytes();
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&b[2..]);
            EthernetAddress(mac).to_string()
        }
        32 if address => {
            let b = (v as u32).to_be_bytes();
            format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
        }
        _ if v < 1 << 16 => v.to_string(),
        _ => format!("{v:#x}"),
    }
}

/// A match for display, in the form `parse_match` reads.
pub fn format_match(m: &Match, width: u16, kind: Kind, address: bool) -> String {
    match kind {
        Kind::Exact => format_value(m.value, width, address),
        Kind::Lpm if m.prefix == 0 => "*".into(),
        Kind::Lpm => format!("{}/{}", format_value(m.value, width, address), m.prefix),
        Kind::Ternary if m.mask == 0 => "*".into(),
        Kind::Ternary if m.mask == ones(width) => format_value(m.value, width, address),
        Kind::Ternary => format!(
            "{}&&&{}",
            format_value(m.value, width, address),
            format_value(m.mask, width, false)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_in_every_form() {
        assert_eq!(parse_value("02:f4:1c:00:00:05", 48), Ok(0x02f4_1c00_0005));
        assert_eq!(parse_value("10.0.0.1", 32), Ok(0x0a00_0001));
        assert_eq!(parse_value("0x800", 16), Ok(0x800));
        assert_eq!(parse_value("0b101", 3), Ok(5));
        assert_eq!(parse_value("1_000", 16), Ok(1000));
        assert!(parse_value("256", 8).unwrap_err().contains("does not fit in 8 bits"));
        assert!(parse_value("10.0.0.300", 32).unwrap_err().contains("IPv4 byte"));
        assert!(parse_value("02:f4:1c", 48).unwrap_err().contains("six hex bytes"));
        assert!(parse_value("zz", 8).unwrap_err().contains("not a number"));
    }

    #[test]
    fn matches_by_kind() {
        assert_eq!(
            parse_match("10.0.0.0/8", 32, Kind::Lpm),
            Ok(Match {
                value: 0x0a00_0000,
                mask: 0xff00_0000,
                prefix: 8
            })
        );
        assert!(parse_match("10.1.0.0/8", 32, Kind::Lpm)
            .unwrap_err()
            .contains("past the /8"));
        assert!(parse_match("10.0.0.0/33", 32, Kind::Lpm)
            .unwrap_err()
            .contains("longer"));
        assert_eq!(
            parse_match("0x0800&&&0xff00", 16, Kind::Ternary).map(|m| (m.value, m.mask)),
            Ok((0x0800, 0xff00))
        );
        assert!(parse_match("0x0801&&&0xff00", 16, Kind::Ternary)
            .unwrap_err()
            .contains("outside the mask"));
        assert_eq!(parse_match("*", 16, Kind::Ternary).map(|m| m.mask), Ok(0));
        assert!(parse_match("*", 16, Kind::Exact).is_err());
        assert!(parse_match("1/2", 16, Kind::Exact).is_err());
    }

    proptest! {
        #[test]
        fn format_reads_back(v in any::<u64>(), w in 1u16..=64, p in 0u16..=64, kind in 0..3u8) {
            let w = w.max(p.max(1));
            let v = u128::from(v) & ones(w);
            let kind = [Kind::Exact, Kind::Lpm, Kind::Ternary][kind as usize];
            let m = match kind {
                Kind::Exact => Match { value: v, mask: ones(w), prefix: 0 },
                Kind::Lpm => { let mask = ones(w) ^ ones(w - p); Match { value: v & mask, mask, prefix: p } }
                Kind::Ternary => Match { value: v & (v >> 1), mask: v >> 1, prefix: 0 },
            };
            let text = format_match(&m, w, kind, false);
            let back = parse_match(&text, w, kind).unwrap();
            prop_assert_eq!((back.value, back.mask), (m.value, m.mask));
        }

        #[test]
        fn any_text_is_an_answer_not_a_panic(s in "\\PC{0,40}", w in 1u16..=128) {
            let _ = parse_match(&s, w, Kind::Ternary);
            let _ = parse_match(&s, w, Kind::Lpm);
            let _ = parse_value(&s, w);
        }
    }
}
