//! The ABI's bit and value groups that are constants rather than
//! enumerations (`tx_flags`, `caps`, `lif_state`, ...) described as data,
//! so `docs/device-abi.md` can list them and a test can hold every table
//! of the document to the code.

use super::*;

/// One group of named constants: flag bits (or masks) of one field, or the
/// values of a field that is not an [`AbiEnum`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstGroup {
    /// The Rust module that holds the constants (`tx_flags`).
    pub name: &'static str,
    /// The field they describe, as `struct.field`.
    pub field: &'static str,
    /// True for bits (each constant a mask), false for values.
    pub bits: bool,
    /// (name, value) of each constant, `ALL` left out.
    pub items: Vec<(&'static str, u64)>,
    /// The group's `ALL` mask, where it has one.
    pub all: Option<u64>,
}

macro_rules! group {
    ($m:ident, $field:literal, bits, [$($c:ident),+ $(,)?]) => {
        ConstGroup {
            name: stringify!($m),
            field: $field,
            bits: true,
            items: vec![$((stringify!($c), u64::from($m::$c))),+],
            all: Some(u64::from($m::ALL)),
        }
    };
    ($m:ident, $field:literal, values, [$($c:ident),+ $(,)?]) => {
        ConstGroup {
            name: stringify!($m),
            field: $field,
            bits: false,
            items: vec![$((stringify!($c), u64::from($m::$c))),+],
            all: None,
        }
    };
}

/// Every constant group of the ABI.
pub fn groups() -> Vec<ConstGroup> {
    vec![
        group!(
            caps,
            "identity.capabilities",
            bits,
            [
                THREE_INDEX_RING,
                HEAD_WRITEBACK,
                DOORBELL_SUPPRESSION,
                CONSUMER_FLAG,
                MODERATION,
                ADAPTIVE_MODERATION,
                METERS,
                P4_PIPELINE,
                TIMESTAMPS,
                EVENTS,
                FUNCTION_CONFIG,
                PORT_STATS,
            ]
        ),
        group!(queue_flags, "queue_create.flags", bits, [INTR]),
        group!(tx_flags, "tx_desc.flags", bits, [VLAN_INSERT, CSUM_L4, COMPLETE]),
        group!(comp_flags, "completion.flags", bits, [METER_MASK, TRUNCATED, COLOR]),
        group!(
            pkt_flags,
            "completion.pkt_flags",
            bits,
            [VLAN, IPV4, IPV6, TCP, UDP, L4_CSUM_OK]
        ),
        group!(pipeline_flags, "pipeline_chunk.flags", bits, [FIRST, LAST]),
        group!(table_data_flags, "table_entry_data.flags", bits, [COUNTER, METER]),
        group!(
            function_config_flags,
            "function_config.flags",
            bits,
            [MAC, SPOOF_CHECK, TRUST]
        ),
        group!(lif_state, "lif_info.state", values, [DOWN, UP, ERROR]),
        group!(
            reset_reason,
            "event.detail (FunctionReset)",
            values,
            [MAILBOX, FLR, CLIENT_GONE, DEVICE]
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A group's masks are disjoint and `ALL` is exactly their union, so
    /// no constant is left out of [`groups`].
    #[test]
    fn groups_list_every_bit() {
        for g in groups() {
            let mut union = 0;
            for &(n, v) in &g.items {
                if g.bits {
                    assert_eq!(union & v, 0, "{}::{n} overlaps", g.name);
                }
                union |= v;
            }
            if let Some(all) = g.all {
                assert_eq!(all, union, "{}::ALL is not the union of the listed flags", g.name);
            }
        }
    }

    /// The (value, name) pairs a table of the document lists: the value
    /// from the `mask` column if there is one, else the first; the name is
    /// the first `identifier` of the column after it.
    fn table_after(doc: &str, marker: &str) -> BTreeSet<(u64, String)> {
        let at = doc
            .find(marker)
            .unwrap_or_else(|| panic!("{marker} not in the document"));
        let mut rows = doc[at + marker.len()..]
            .lines()
            .map(str::trim)
            .skip_while(|l| l.is_empty())
            .take_while(|l| l.starts_with('|'));
        let cells = |l: &str| -> Vec<String> { l.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect() };
        let header = cells(rows.next().expect("a header row"));
        let value_col = header.iter().position(|h| h == "mask").unwrap_or(0);
        let name_col = value_col + 1;
        rows.skip(1) // |---|
            .map(|row| {
                let c = cells(row);
                let v = c[value_col].trim_matches('`');
                let value = match v.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => v.parse(),
                }
                .unwrap_or_else(|_| panic!("{marker}: `{v}` is not a value"));
                let name = c[name_col]
                    .split('`')
                    .nth(1)
                    .unwrap_or_else(|| panic!("{marker}: no `name` in {row}"));
                (value, name.to_string())
            })
            .collect()
    }

    /// Every table of `docs/device-abi.md` marked `<!-- table: X -->`
    /// lists exactly the values and names the code defines for `X`: an
    /// enumeration of [`layout::enums`] or a group of [`groups`]. (Tables
    /// of prose, like the function limits, are listed as such.)
    #[test]
    fn the_documents_tables_match_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/device-abi.md");
        let doc = std::fs::read_to_string(path).expect("docs/device-abi.md exists");
        let mut code: Vec<(String, BTreeSet<(u64, String)>)> = layout::enums()
            .into_iter()
            .map(|e| {
                (
                    e.name.to_string(),
                    e.values.iter().map(|&(n, _, v, _)| (v, n.to_string())).collect(),
                )
            })
            .collect();
        code.extend(groups().into_iter().map(|g| {
            (
                g.name.to_string(),
                g.items.iter().map(|&(n, v)| (v, n.to_string())).collect(),
            )
        }));
        const PROSE: &[&str] = &["FunctionLimits"];
        let mut checked = 0;
        for marker in doc.match_indices("<!-- table: ").map(|(i, _)| &doc[i..]) {
            let end = marker.find("-->").expect("marker ends");
            let name = marker["<!-- table: ".len()..end].trim();
            if PROSE.contains(&name) {
                continue;
            }
            let want = &code
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("<!-- table: {name} -->: no such enumeration or group"))
                .1;
            let got = table_after(&doc, &marker[..end + 3]);
            assert_eq!(&got, want, "docs/device-abi.md's {name} table differs from the code");
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} tables checked");
    }
}
