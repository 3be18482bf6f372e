//! Pipeline images, loaded in chunks by `PipelineLoad`.

use super::*;

/// Pipeline chunk flags.
pub mod pipeline_flags {
    /// First chunk: discard any partial image.
    pub const FIRST: u8 = 1 << 0;
    /// Last chunk: verify and activate the image.
    pub const LAST: u8 = 1 << 1;
    /// Every defined bit.
    pub const ALL: u8 = FIRST | LAST;
}

/// Body of `PipelineLoad`: bytes `[offset, offset + dma.len)` of an image
/// of `total_len` bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct PipelineChunk {
    /// Where to read this chunk's bytes; `dma.len` is the chunk's length (1
    /// byte to 1 MiB).
    pub dma: DmaRef,
    /// Byte offset of this chunk in the image: the bytes received so far (0
    /// with `FIRST`).
    pub offset: U32,
    /// Length of the whole image in bytes, 1 to [`MAX_PIPELINE_LEN`]; the
    /// `FIRST` chunk's value in every chunk of the image.
    pub total_len: U32,
    /// [`pipeline_flags`].
    pub flags: u8,
    /// Reserved, zero.
    pub rsvd: [u8; 7],
}
assert_layout!(PipelineChunk, size = 32, dma @ 0, offset @ 16, total_len @ 20, flags @ 24);

pub(super) fn validate_pipeline_chunk(p: &PipelineChunk) -> Result<(), AbiError> {
    p.dma.check("pipeline.dma.len", "pipeline.dma.rsvd")?;
    check_reserved_bits("pipeline.flags", p.flags.into(), pipeline_flags::ALL.into())?;
    check_reserved_bytes("pipeline.rsvd", &p.rsvd)?;
    let total = p.total_len.get();
    if total == 0 || total > MAX_PIPELINE_LEN {
        return Err(AbiError::OutOfRange {
            field: "pipeline.total_len",
            value: total.into(),
            reason: "an image is 1 byte to 16 MiB",
        });
    }
    let end = u64::from(p.offset.get()) + u64::from(p.dma.len.get());
    if end > u64::from(total) {
        return Err(AbiError::OutOfRange {
            field: "pipeline.offset",
            value: p.offset.get().into(),
            reason: "offset + len is past total_len",
        });
    }
    if p.flags & pipeline_flags::FIRST != 0 && p.offset.get() != 0 {
        return Err(AbiError::OutOfRange {
            field: "pipeline.offset",
            value: p.offset.get().into(),
            reason: "the FIRST chunk starts at offset 0",
        });
    }
    if p.flags & pipeline_flags::LAST != 0 && end != u64::from(total) {
        return Err(AbiError::OutOfRange {
            field: "pipeline.offset",
            value: p.offset.get().into(),
            reason: "the LAST chunk ends at total_len",
        });
    }
    Ok(())
}

/// Body of `PipelineCounterGet`: which of the loaded program's counter
/// arrays, from which cell, and where to write the cells (as many whole
/// 16-byte [`CounterCell`]s as fit).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct CounterRef {
    /// The counter array (numbered by the loaded program, in declaration
    /// order).
    pub counter_id: U32,
    /// The first cell wanted; past the end, nothing is written.
    pub from: U32,
    /// Where to write them.
    pub dma: DmaRef,
}
assert_layout!(CounterRef, size = 24, counter_id @ 0, from @ 4, dma @ 8);

/// One cell of a program's counter array, as `PipelineCounterGet` writes
/// it: the device counts packets and bytes in every cell, whatever the
/// program declared (P4Runtime's `CounterData` shows what the unit says).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct CounterCell {
    /// Packets counted since the program was loaded.
    pub packets: U64,
    /// Their bytes.
    pub bytes: U64,
}
assert_layout!(CounterCell, size = 16, packets @ 0, bytes @ 8);

/// Body of `PipelineMeterGet` (ABI 1.6): which of the loaded program's
/// indexed meter arrays, from which cell, and where to write the cells (as
/// many whole 48-byte [`MeterConfig`]s as fit, each as applied).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct PipelineMeterRef {
    /// The meter array (numbered by the loaded program, in declaration
    /// order, direct meters among them).
    pub meter_id: U32,
    /// The first cell wanted; past the end, nothing is written.
    pub from: U32,
    /// Where to write them.
    pub dma: DmaRef,
}
assert_layout!(PipelineMeterRef, size = 24, meter_id @ 0, from @ 4, dma @ 8);

/// Body of `PipelineMeterSet` (ABI 1.6): cell `index` of the loaded
/// program's indexed meter array `meter_id` takes `config` (in the
/// array's unit; buckets full from now). It fills the whole body.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct PipelineMeterSet {
    /// The meter array.
    pub meter_id: U32,
    /// The cell.
    pub index: U32,
    /// What the cell runs (`resource` the array's unit, `Packets` or
    /// `Bytes`; mode `Off`, `SrTcm` or `TrTcm`).
    pub config: MeterConfig,
}
assert_layout!(PipelineMeterSet, size = 56, meter_id @ 0, index @ 4, config @ 8);

/// [`CounterSet::index`] for every cell of the array.
pub const COUNTER_ALL_CELLS: u32 = u32::MAX;

/// Body of `PipelineCounterSet` (ABI 1.5): one cell of a program counter
/// array, or all of them, takes these values (zero resets it).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct CounterSet {
    /// The counter array (numbered by the loaded program, in declaration
    /// order).
    pub counter_id: U32,
    /// The cell, or [`COUNTER_ALL_CELLS`] for every cell.
    pub index: U32,
    /// The packets the cell counts from now on.
    pub packets: U64,
    /// Its bytes.
    pub bytes: U64,
}
assert_layout!(CounterSet, size = 24, counter_id @ 0, index @ 4, packets @ 8, bytes @ 16);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::admin::tests::*;

    #[test]
    fn pipeline_chunks_must_fit_the_image() {
        let chunk = |offset: u32, len: u32, total: u32, flags: u8| PipelineChunk {
            dma: DmaRef::new(0, len),
            offset: offset.into(),
            total_len: total.into(),
            flags,
            ..Default::default()
        };
        let dec = |p| AdminCommand::decode(&AdminCommand::PipelineLoad(p).encode(HDR));
        assert!(dec(chunk(0, 100, 300, pipeline_flags::FIRST)).is_ok());
        assert!(dec(chunk(200, 100, 300, pipeline_flags::LAST)).is_ok());
        assert!(dec(chunk(250, 100, 300, 0)).is_err());
        assert!(dec(chunk(100, 100, 300, pipeline_flags::FIRST)).is_err());
        assert!(dec(chunk(100, 100, 300, pipeline_flags::LAST)).is_err());
        assert!(dec(chunk(0, 0, 300, 0)).is_err());
    }
}
