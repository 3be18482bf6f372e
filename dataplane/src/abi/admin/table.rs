//! Pipeline table entries (`TableEntryAdd` / `TableEntryDel`).

use super::*;

/// Largest match key of a table entry, bytes.
pub const MAX_KEY_LEN: usize = 32;
/// Largest action parameter block of a table entry, bytes.
pub const MAX_PARAM_LEN: usize = 32;

/// What `TableEntryAdd` / `TableEntryDel` read by DMA: one entry of a
/// pipeline table. Exact keys carry an all-ones mask, LPM keys a
/// `prefix_len` and a zero mask, ternary keys a mask and a `priority`.
/// Bytes past `key_len` / `param_len` are zero.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct TableEntry {
    /// Which table (numbered by the loaded program).
    pub table_id: U32,
    /// Which action (numbered by the loaded program); zero for `Del`.
    pub action_id: U32,
    /// Ternary match priority: larger wins.
    pub priority: U32,
    /// LPM prefix length in bits.
    pub prefix_len: U16,
    /// Key bytes used.
    pub key_len: u8,
    /// Parameter bytes used.
    pub param_len: u8,
    /// Match key: the table's key fields concatenated, each big-endian in
    /// whole bytes; `key_len` bytes used, the rest zero.
    pub key: [u8; MAX_KEY_LEN],
    /// Mask over `key` (`key_len` bytes): all ones over exact fields, any
    /// mask over ternary ones, zero over the LPM field (see `prefix_len`).
    pub mask: [u8; MAX_KEY_LEN],
    /// Action parameters, each big-endian in whole bytes (the built-in
    /// switch's LIF numbers are little-endian); `param_len` bytes used.
    pub params: [u8; MAX_PARAM_LEN],
}
assert_layout!(TableEntry, size = 112, table_id @ 0, action_id @ 4, priority @ 8, prefix_len @ 12,
    key_len @ 14, param_len @ 15, key @ 16, mask @ 48, params @ 80);

impl TableEntry {
    /// Parse and validate an entry read from host memory.
    pub fn parse(bytes: &[u8]) -> Result<TableEntry, AbiError> {
        let e: TableEntry = read_prefix("table_entry", bytes)?;
        let key_len = usize::from(e.key_len);
        let param_len = usize::from(e.param_len);
        if key_len == 0 || key_len > MAX_KEY_LEN {
            return Err(AbiError::OutOfRange {
                field: "table_entry.key_len",
                value: key_len as u64,
                reason: "a key is 1..=32 bytes",
            });
        }
        if param_len > MAX_PARAM_LEN {
            return Err(AbiError::OutOfRange {
                field: "table_entry.param_len",
                value: param_len as u64,
                reason: "parameters are at most 32 bytes",
            });
        }
        if usize::from(e.prefix_len.get()) > key_len * 8 {
            return Err(AbiError::OutOfRange {
                field: "table_entry.prefix_len",
                value: e.prefix_len.get().into(),
                reason: "longer than the key",
            });
        }
        check_reserved_bytes("table_entry.key", &e.key[key_len..])?;
        check_reserved_bytes("table_entry.mask", &e.mask[key_len..])?;
        check_reserved_bytes("table_entry.params", &e.params[param_len..])?;
        Ok(e)
    }

    /// An exact-match entry: `key` fully masked, action `action_id` with
    /// `params`. Panics if either is longer than the ABI allows (a
    /// programming error, not input).
    pub fn exact(table_id: u32, key: &[u8], action_id: u32, params: &[u8]) -> TableEntry {
        assert!(key.len() <= MAX_KEY_LEN && params.len() <= MAX_PARAM_LEN);
        let mut e = TableEntry {
            table_id: table_id.into(),
            action_id: action_id.into(),
            key_len: key.len() as u8,
            param_len: params.len() as u8,
            ..zerocopy::FromZeros::new_zeroed()
        };
        e.key[..key.len()].copy_from_slice(key);
        e.mask[..key.len()].fill(0xff);
        e.params[..params.len()].copy_from_slice(params);
        e
    }

    /// The key bytes in use.
    pub fn key(&self) -> &[u8] {
        &self.key[..usize::from(self.key_len).min(MAX_KEY_LEN)]
    }

    /// The mask bytes in use.
    pub fn mask(&self) -> &[u8] {
        &self.mask[..usize::from(self.key_len).min(MAX_KEY_LEN)]
    }

    /// The parameter bytes in use.
    pub fn params(&self) -> &[u8] {
        &self.params[..usize::from(self.param_len).min(MAX_PARAM_LEN)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn table_entries_are_checked() {
        let mut e = TableEntry::new_zeroed();
        e.table_id = 1.into();
        e.action_id = 1.into();
        e.key_len = 6;
        e.param_len = 2;
        e.key[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        e.mask[..6].copy_from_slice(&[0xff; 6]);
        e.params[..2].copy_from_slice(&3u16.to_le_bytes());
        let ok = TableEntry::parse(e.as_bytes()).unwrap();
        assert_eq!(ok.key(), &[2, 0, 0, 0, 0, 1]);
        assert_eq!(ok.params(), &[3, 0]);
        let mut bad = e;
        bad.key[7] = 1;
        assert!(matches!(
            TableEntry::parse(bad.as_bytes()),
            Err(AbiError::ReservedBits {
                field: "table_entry.key",
                ..
            })
        ));
        let mut bad = e;
        bad.key_len = 33;
        assert!(matches!(
            TableEntry::parse(bad.as_bytes()),
            Err(AbiError::OutOfRange {
                field: "table_entry.key_len",
                ..
            })
        ));
        let mut bad = e;
        bad.prefix_len = 49.into();
        assert!(TableEntry::parse(bad.as_bytes()).is_err());
    }
}
