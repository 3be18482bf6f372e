//! The internal switch between LIFs and the uplink: until a P4 program is
//! loaded, the device forwards on destination MAC through one exact-match
//! table, `l2_fwd` (table 1), which the device fills with every LIF's MAC
//! and the PF can extend with `TableEntryAdd`.
//!
//! | action | id | parameters |
//! |---|---|---|
//! | `to_lif` | 1 | LIF number, u16 little-endian |
//! | `to_uplink` | 2 | none |
//! | `drop` | 3 | none |
//! | `to_lif_recirc` | 4 | LIF number (u16 LE), extra passes (u8, 1..=7) |
//!
//! `to_lif_recirc` sends the frame through the pipeline again that many
//! times before delivering it (as tunnel processing does), and each pass
//! costs a full pass's cost units.
//!
//! A miss floods group addresses (to every LIF but the sender, and to the
//! uplink if a LIF sent it), sends unknown unicast from a LIF to the uplink,
//! and drops unknown unicast from the uplink (`DropNoRoute`).

use dataplane::abi::{AdminStatus, TableEntry};
use dataplane::packet::{EthernetFrame, Mac};
use std::collections::HashMap;

/// Table id of the built-in L2 table.
pub const L2_TABLE: u32 = 1;
/// Action: forward to a LIF.
pub const ACTION_TO_LIF: u32 = 1;
/// Action: send to the uplink.
pub const ACTION_TO_UPLINK: u32 = 2;
/// Action: drop.
pub const ACTION_DROP: u32 = 3;
/// Action: forward to a LIF after recirculating.
pub const ACTION_TO_LIF_RECIRC: u32 = 4;
/// Most extra passes a frame may make.
pub const MAX_RECIRCULATIONS: u8 = 7;
/// Most static entries.
pub const L2_CAPACITY: usize = 4096;

/// Where a frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Lif(u16),
    Uplink,
}

/// What the switch decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    ToLif(u16),
    ToUplink,
    Flood,
    /// Dropped by a `drop` entry.
    DropByTable,
    /// Unknown unicast from the uplink.
    NoRoute,
    /// Too short to have a MAC header.
    ParseError,
}

/// Why a table entry was refused.
pub type EntryError = (AdminStatus, &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    ToLif(u16, u8),
    ToUplink,
    Drop,
}

/// The L2 forwarding table.
#[derive(Debug, Default)]
pub struct Switch {
    /// MACs of LIFs (installed by the device).
    lif_macs: HashMap<Mac, u16>,
    /// Entries the PF installed; they take precedence over LIF MACs.
    statics: HashMap<Mac, Action>,
}

impl Switch {
    /// A LIF appeared with `mac`. Returns false if another LIF has it.
    pub fn add_lif(&mut self, mac: Mac, lif: u16) -> bool {
        if self.lif_macs.contains_key(&mac) {
            return false;
        }
        self.lif_macs.insert(mac, lif);
        true
    }

    /// A LIF went away: its MAC and every static entry pointing at it.
    pub fn remove_lif(&mut self, mac: Mac, lif: u16) {
        self.lif_macs.remove(&mac);
        self.statics
            .retain(|_, a| !matches!(*a, Action::ToLif(l, _) if l == lif));
    }

    /// Whether `mac` belongs to a LIF.
    pub fn mac_in_use(&self, mac: &Mac) -> bool {
        self.lif_macs.contains_key(mac)
    }

    /// Decide where `frame` from `src` goes.
    pub fn forward(&self, src: Source, frame: &[u8]) -> Verdict {
        self.decide(src, frame).0
    }

    /// Decide where `frame` from `src` goes, and how many extra pipeline
    /// passes it makes on the way.
    pub fn decide(&self, src: Source, frame: &[u8]) -> (Verdict, u8) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return (Verdict::ParseError, 0);
        };
        let dst = eth.dst();
        if let Some(a) = self.statics.get(&dst) {
            return match *a {
                Action::ToLif(l, passes) => (Verdict::ToLif(l), passes),
                Action::ToUplink => (Verdict::ToUplink, 0),
                Action::Drop => (Verdict::DropByTable, 0),
            };
        }
        (self.by_mac(src, &eth), 0)
    }

    fn by_mac(&self, src: Source, eth: &EthernetFrame<&[u8]>) -> Verdict {
        let dst = eth.dst();
        if eth.is_group_dst() {
            return Verdict::Flood;
        }
        match (self.lif_macs.get(&dst), src) {
            (Some(&l), _) => Verdict::ToLif(l),
            (None, Source::Lif(_)) => Verdict::ToUplink,
            (None, Source::Uplink) => Verdict::NoRoute,
        }
    }

    /// Apply a `TableEntryAdd` (`add`) or `TableEntryDel`; `lif_exists`
    /// tells whether a `to_lif` target is real.
    pub fn apply(&mut self, e: &TableEntry, add: bool, lif_exists: impl Fn(u16) -> bool) -> Result<(), EntryError> {
        if e.table_id.get() != L2_TABLE {
            return Err((AdminStatus::NoEntry, "no such table"));
        }
        if e.key_len != 6 || e.mask() != [0xff; 6] || e.prefix_len.get() != 0 {
            return Err((AdminStatus::Invalid, "l2_fwd is an exact match on a 6-byte MAC"));
        }
        let mac: Mac = e.key().try_into().expect("key_len is 6");
        if !add {
            return match self.statics.remove(&mac) {
                Some(_) => Ok(()),
                None => Err((AdminStatus::NoEntry, "no such entry")),
            };
        }
        let action = match (e.action_id.get(), e.params()) {
            (ACTION_TO_LIF, [lo, hi]) => {
                let lif = u16::from_le_bytes([*lo, *hi]);
                if !lif_exists(lif) {
                    return Err((AdminStatus::NoEntry, "to_lif names no LIF"));
                }
                Action::ToLif(lif, 0)
            }
            (ACTION_TO_LIF_RECIRC, [lo, hi, passes]) => {
                let lif = u16::from_le_bytes([*lo, *hi]);
                if !lif_exists(lif) {
                    return Err((AdminStatus::NoEntry, "to_lif_recirc names no LIF"));
                }
                if !(1..=MAX_RECIRCULATIONS).contains(passes) {
                    return Err((AdminStatus::Invalid, "to_lif_recirc passes must be 1..=7"));
                }
                Action::ToLif(lif, *passes)
            }
            (ACTION_TO_UPLINK, []) => Action::ToUplink,
            (ACTION_DROP, []) => Action::Drop,
            (ACTION_TO_LIF | ACTION_TO_UPLINK | ACTION_DROP | ACTION_TO_LIF_RECIRC, _) => {
                return Err((AdminStatus::Invalid, "wrong parameter length for the action"))
            }
            _ => return Err((AdminStatus::NoEntry, "no such action")),
        };
        if !self.statics.contains_key(&mac) && self.statics.len() >= L2_CAPACITY {
            return Err((AdminStatus::NoSpace, "l2_fwd is full"));
        }
        self.statics.insert(mac, action);
        Ok(())
    }

    /// Static entries (for stats and tests).
    pub fn static_entries(&self) -> usize {
        self.statics.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::abi::FromZeros;

    fn frame(dst: Mac) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&dst);
        f
    }

    fn entry(mac: Mac, action: u32, params: &[u8]) -> TableEntry {
        let mut e = TableEntry::new_zeroed();
        e.table_id = L2_TABLE.into();
        e.action_id = action.into();
        e.key_len = 6;
        e.key[..6].copy_from_slice(&mac);
        e.mask[..6].copy_from_slice(&[0xff; 6]);
        e.param_len = params.len() as u8;
        e.params[..params.len()].copy_from_slice(params);
        e
    }

    #[test]
    fn forwards_floods_and_drops() {
        let mut s = Switch::default();
        assert!(s.add_lif([2, 0, 0, 0, 0, 1], 1));
        assert!(!s.add_lif([2, 0, 0, 0, 0, 1], 2), "MACs are unique");
        assert_eq!(s.forward(Source::Uplink, &frame([2, 0, 0, 0, 0, 1])), Verdict::ToLif(1));
        assert_eq!(s.forward(Source::Lif(1), &frame([2, 9, 9, 9, 9, 9])), Verdict::ToUplink);
        assert_eq!(s.forward(Source::Uplink, &frame([2, 9, 9, 9, 9, 9])), Verdict::NoRoute);
        assert_eq!(s.forward(Source::Lif(1), &frame([0xff; 6])), Verdict::Flood);
        assert_eq!(s.forward(Source::Lif(1), &[0; 10]), Verdict::ParseError);
    }

    #[test]
    fn static_entries_override_and_are_checked() {
        let mut s = Switch::default();
        s.add_lif([2, 0, 0, 0, 0, 1], 1);
        let exists = |l| l == 1 || l == 2;
        s.apply(&entry([2, 0, 0, 0, 0, 1], ACTION_DROP, &[]), true, exists)
            .unwrap();
        assert_eq!(
            s.forward(Source::Uplink, &frame([2, 0, 0, 0, 0, 1])),
            Verdict::DropByTable
        );
        s.apply(
            &entry([2, 7, 7, 7, 7, 7], ACTION_TO_LIF, &2u16.to_le_bytes()),
            true,
            exists,
        )
        .unwrap();
        assert_eq!(s.forward(Source::Uplink, &frame([2, 7, 7, 7, 7, 7])), Verdict::ToLif(2));
        assert_eq!(
            s.apply(
                &entry([2, 7, 7, 7, 7, 8], ACTION_TO_LIF, &9u16.to_le_bytes()),
                true,
                exists
            ),
            Err((AdminStatus::NoEntry, "to_lif names no LIF"))
        );
        assert_eq!(
            s.apply(&entry([2, 7, 7, 7, 7, 8], 99, &[]), true, exists)
                .unwrap_err()
                .0,
            AdminStatus::NoEntry
        );
        assert_eq!(
            s.apply(&entry([2, 7, 7, 7, 7, 8], ACTION_DROP, &[1]), true, exists)
                .unwrap_err()
                .0,
            AdminStatus::Invalid
        );
        s.apply(
            &entry([2, 7, 7, 7, 7, 9], ACTION_TO_LIF_RECIRC, &[1, 0, 3]),
            true,
            exists,
        )
        .unwrap();
        assert_eq!(
            s.decide(Source::Uplink, &frame([2, 7, 7, 7, 7, 9])),
            (Verdict::ToLif(1), 3)
        );
        assert_eq!(
            s.apply(
                &entry([2, 7, 7, 7, 7, 9], ACTION_TO_LIF_RECIRC, &[1, 0, 9]),
                true,
                exists
            )
            .unwrap_err()
            .0,
            AdminStatus::Invalid
        );
        s.remove_lif([2, 7, 7, 7, 7, 6], 2);
        assert_eq!(
            s.forward(Source::Uplink, &frame([2, 7, 7, 7, 7, 7])),
            Verdict::NoRoute,
            "entries to a removed LIF go"
        );
        s.apply(&entry([2, 0, 0, 0, 0, 1], 0, &[]), false, exists).unwrap();
        assert_eq!(s.forward(Source::Uplink, &frame([2, 0, 0, 0, 0, 1])), Verdict::ToLif(1));
        assert_eq!(
            s.apply(&entry([2, 0, 0, 0, 0, 1], 0, &[]), false, exists)
                .unwrap_err()
                .0,
            AdminStatus::NoEntry
        );
    }
}
