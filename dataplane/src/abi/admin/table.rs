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

    /// Start an entry for table `table_id` to be laid out field by field
    /// (see [`EntryBuilder`]).
    pub fn builder(table_id: u32, priority: u32) -> EntryBuilder {
        EntryBuilder {
            e: TableEntry {
                table_id: table_id.into(),
                priority: priority.into(),
                ..zerocopy::FromZeros::new_zeroed()
            },
        }
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

/// Body of `TableEntryList`: which table, from which entry, and where to
/// write the entries (as many whole 112-byte [`TableEntry`]s as fit).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct TableListRef {
    /// Which table (numbered by the loaded program; 0 is the built-in
    /// switch's `l2_fwd` when no program is loaded).
    pub table_id: U32,
    /// The index of the first entry wanted, in the device's order (by key,
    /// then mask, then priority); past the end, nothing is written.
    pub from: U32,
    /// Where to write them.
    pub dma: DmaRef,
}
assert_layout!(TableListRef, size = 24, table_id @ 0, from @ 4, dma @ 8);

/// What `TableDataList` and `TableDataSet` carry (ABI 1.6): a table
/// entry's direct counter and direct meter.
pub mod table_data_flags {
    /// The table has a direct counter: `packets` and `bytes` are its cell
    /// (`TableDataSet`: set them).
    pub const COUNTER: u32 = 1 << 0;
    /// The table has a direct meter: `meter` is its cell as applied
    /// (`TableDataSet`: configure it).
    pub const METER: u32 = 1 << 1;
    /// Every defined bit.
    pub const ALL: u32 = COUNTER | METER;
}

/// An entry with its direct counter and meter (ABI 1.6): what
/// `TableDataList` writes, one per entry, and what `TableDataSet` reads.
/// `entry` names the entry as `TableEntryList` writes it (`TableDataSet`
/// finds it by table, key, mask or prefix and priority, and ignores its
/// action and parameters).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct TableEntryData {
    /// The entry.
    pub entry: TableEntry,
    /// [`table_data_flags`]: which of the fields below mean something.
    pub flags: U32,
    /// The entry's slot: its cell in the table's direct arrays (written by
    /// the device; zero in `TableDataSet`).
    pub slot: U32,
    /// Direct counter: packets counted since the entry was added (or set).
    pub packets: U64,
    /// Direct counter: their bytes.
    pub bytes: U64,
    /// Direct meter: its config as applied (`resource` `Packets` or
    /// `Bytes`, the meter's unit; mode `Off` for a new entry's).
    pub meter: MeterConfig,
    /// Reserved, zero.
    pub rsvd: [u8; 8],
}
assert_layout!(TableEntryData, size = 192, entry @ 0, flags @ 112, slot @ 116, packets @ 120, bytes @ 128,
    meter @ 136, rsvd @ 184);

impl TableEntryData {
    /// Parse what `TableDataSet` reads: the entry checked as
    /// [`TableEntry::parse`] does, known flags (at least one), `slot` and
    /// `rsvd` zero, and the meter's fields as `MeterSet` checks them when
    /// [`table_data_flags::METER`] is set (zero otherwise).
    pub fn parse(bytes: &[u8]) -> Result<TableEntryData, AbiError> {
        let d: TableEntryData = read_prefix("table_entry_data", bytes)?;
        TableEntry::parse(d.entry.as_bytes())?;
        let flags = d.flags.get();
        check_reserved_bits("table_entry_data.flags", flags.into(), table_data_flags::ALL.into())?;
        if flags == 0 {
            return Err(AbiError::InvalidValue {
                field: "table_entry_data.flags",
                value: 0,
            });
        }
        check_reserved_bits("table_entry_data.slot", d.slot.get().into(), 0)?;
        check_reserved_bytes("table_entry_data.rsvd", &d.rsvd)?;
        if flags & table_data_flags::COUNTER == 0 && (d.packets.get() != 0 || d.bytes.get() != 0) {
            return Err(AbiError::InvalidValue {
                field: "table_entry_data.packets",
                value: d.packets.get().max(d.bytes.get()),
            });
        }
        if flags & table_data_flags::METER == 0 {
            check_reserved_bytes("table_entry_data.meter", d.meter.as_bytes())?;
        } else {
            super::meter::validate_meter_config(&d.meter)?;
        }
        Ok(d)
    }
}

/// Lays a [`TableEntry`] out as the device reads it: the table's key
/// fields one after the other, each big-endian in whole bytes (its width
/// in bits rounded up to bytes), and the action's parameters the same way.
/// The one place that layout is written: nicctl's `table add`, the
/// P4Runtime server and the device's own entries all build through it.
#[derive(Debug, Clone)]
pub struct EntryBuilder {
    e: TableEntry,
}

/// A field an [`EntryBuilder`] cannot lay out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryLayoutError {
    /// The key fields so far and this one pass [`MAX_KEY_LEN`] bytes.
    #[error("the key fields take more than {MAX_KEY_LEN} bytes")]
    KeyTooLong,
    /// The parameters so far and this one pass [`MAX_PARAM_LEN`] bytes.
    #[error("the parameters take more than {MAX_PARAM_LEN} bytes")]
    ParamsTooLong,
    /// A field wider than 128 bits (the values here are `u128`) or 0 bits.
    #[error("a field of {0} bits (1..=128 are laid out)")]
    Width(u16),
    /// A value or mask with bits set past the field's width.
    #[error("a value with bits set past its field's {0} bits")]
    PastWidth(u16),
}

/// The bytes a field of `width` bits takes, and the check that `v` fits.
fn field_bytes(width: u16, values: &[u128]) -> Result<usize, EntryLayoutError> {
    if width == 0 || width > 128 {
        return Err(EntryLayoutError::Width(width));
    }
    if width < 128 && values.iter().any(|v| v >> width != 0) {
        return Err(EntryLayoutError::PastWidth(width));
    }
    Ok(usize::from(width).div_ceil(8))
}

impl EntryBuilder {
    /// Append a key field `width` bits wide matching `value` under `mask`
    /// (all ones for an exact field, zero for an LPM field whose prefix
    /// [`prefix_len`](Self::prefix_len) gives, any mask for a ternary one).
    pub fn key(&mut self, width: u16, value: u128, mask: u128) -> Result<&mut Self, EntryLayoutError> {
        let n = field_bytes(width, &[value, mask])?;
        let at = usize::from(self.e.key_len);
        let end = at + n;
        if end > MAX_KEY_LEN {
            return Err(EntryLayoutError::KeyTooLong);
        }
        self.e.key[at..end].copy_from_slice(&value.to_be_bytes()[16 - n..]);
        self.e.mask[at..end].copy_from_slice(&mask.to_be_bytes()[16 - n..]);
        self.e.key_len = end as u8;
        Ok(self)
    }

    /// Append an exact key field: `value` under an all-ones mask.
    pub fn exact(&mut self, width: u16, value: u128) -> Result<&mut Self, EntryLayoutError> {
        self.key(width, value, Self::ones(width))
    }

    /// The LPM field's prefix length in bits.
    pub fn prefix_len(&mut self, bits: u16) -> &mut Self {
        self.e.prefix_len = bits.into();
        self
    }

    /// The action to run (the program's number).
    pub fn action(&mut self, action_id: u32) -> &mut Self {
        self.e.action_id = action_id.into();
        self
    }

    /// Append an action parameter `width` bits wide.
    pub fn param(&mut self, width: u16, value: u128) -> Result<&mut Self, EntryLayoutError> {
        let n = field_bytes(width, &[value])?;
        let at = usize::from(self.e.param_len);
        let end = at + n;
        if end > MAX_PARAM_LEN {
            return Err(EntryLayoutError::ParamsTooLong);
        }
        self.e.params[at..end].copy_from_slice(&value.to_be_bytes()[16 - n..]);
        self.e.param_len = end as u8;
        Ok(self)
    }

    /// The all-ones mask of a field `width` bits wide (up to 128).
    pub fn ones(width: u16) -> u128 {
        if width >= 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        }
    }

    /// The entry laid out so far.
    pub fn build(&self) -> TableEntry {
        self.e
    }
}

impl TableEntry {
    /// Read back the fields [`EntryBuilder`] laid out, for a table whose
    /// key fields are `widths` bits wide: each field's value and mask, or
    /// `None` when the entry holds fewer bytes than the widths take (or a
    /// width the builder refuses).
    pub fn key_fields(&self, widths: impl IntoIterator<Item = u16> + Clone) -> Option<Vec<(u128, u128)>> {
        let values = fields(&self.key, self.key_len, widths.clone())?;
        let masks = fields(&self.mask, self.key_len, widths)?;
        Some(values.into_iter().zip(masks).collect())
    }

    /// Read back the parameters [`EntryBuilder`] laid out, for an action
    /// whose parameters are `widths` bits wide.
    pub fn param_fields(&self, widths: impl IntoIterator<Item = u16>) -> Option<Vec<u128>> {
        fields(&self.params, self.param_len, widths)
    }
}

/// The fields of `widths` bits laid out one after the other in the first
/// `len` bytes of `bytes`; `None` past `len` or for a width the builder
/// refuses.
fn fields(bytes: &[u8], len: u8, widths: impl IntoIterator<Item = u16>) -> Option<Vec<u128>> {
    let used = bytes.get(..usize::from(len))?;
    let mut at = 0usize;
    let mut out = Vec::new();
    for w in widths {
        let n = field_bytes(w, &[]).ok()?;
        out.push(be(used.get(at..at + n)?));
        at += n;
    }
    Some(out)
}

/// A big-endian number of up to 16 bytes.
fn be(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |v, &x| (v << 8) | u128::from(x))
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

    #[test]
    fn the_builder_lays_fields_out_big_endian_in_whole_bytes_and_reads_them_back() {
        let mut b = TableEntry::builder(3, 7);
        b.exact(48, 0x0200_0000_0001).unwrap();
        b.key(12, 0x0ab, 0xfff).unwrap();
        b.key(32, 0x0a00_0000, 0).unwrap().prefix_len(8);
        b.action(2).param(9, 0x1ff).unwrap().param(16, 4).unwrap();
        let e = b.build();
        assert_eq!(e.key(), &[2, 0, 0, 0, 0, 1, 0x00, 0xab, 10, 0, 0, 0]);
        assert_eq!(
            e.mask(),
            &[0xff; 6]
                .iter()
                .chain(&[0x0f, 0xff, 0, 0, 0, 0])
                .copied()
                .collect::<Vec<_>>()[..]
        );
        assert_eq!(e.params(), &[0x01, 0xff, 0, 4]);
        assert_eq!(
            (
                e.table_id.get(),
                e.action_id.get(),
                e.priority.get(),
                e.prefix_len.get()
            ),
            (3, 2, 7, 8)
        );
        TableEntry::parse(e.as_bytes()).unwrap();
        assert_eq!(
            e.key_fields([48, 12, 32]),
            Some(vec![
                (0x0200_0000_0001, EntryBuilder::ones(48)),
                (0xab, 0xfff),
                (0x0a00_0000, 0)
            ])
        );
        assert_eq!(e.param_fields([9, 16]), Some(vec![0x1ff, 4]));
        assert_eq!(e.key_fields([48, 12, 40]), None, "more than the entry holds");
        assert_eq!(e.param_fields([0]), None);
    }

    #[test]
    fn the_builder_refuses_what_does_not_fit() {
        let mut b = TableEntry::builder(0, 0);
        assert_eq!(b.exact(0, 0).unwrap_err(), EntryLayoutError::Width(0));
        assert_eq!(b.exact(129, 0).unwrap_err(), EntryLayoutError::Width(129));
        assert_eq!(b.exact(8, 0x100).unwrap_err(), EntryLayoutError::PastWidth(8));
        b.exact(128, u128::MAX).unwrap().exact(128, 1).unwrap();
        assert_eq!(b.exact(1, 1).unwrap_err(), EntryLayoutError::KeyTooLong);
        assert_eq!(b.build().key_len, 32, "a refused field leaves the entry as it was");
        b.param(128, 1).unwrap().param(128, 2).unwrap();
        assert_eq!(b.param(8, 1).unwrap_err(), EntryLayoutError::ParamsTooLong);
        assert_eq!(b.build().param_len, 32);
    }
}
