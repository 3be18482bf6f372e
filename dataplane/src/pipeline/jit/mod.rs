//! Load-time compilation of a validated program to machine code, with
//! Cranelift (`cranelift-codegen`, `cranelift-frontend`, `cranelift-jit`):
//! the back end a SmartNIC's P4 compiler has, here run by the device when
//! a program loads.
//!
//! One function per program, called once per batch:
//! `extern "C" fn(*mut Frame) -> u64`. For each packet of the batch it
//! sets the frame's packet and length and every metadata slot (zero but
//! for the standard metadata the device sets), runs the parser (each state a
//! block, the parse position, header offsets and validity in registers),
//! then the ingress control with every action body inlined where it is
//! called or applied, and writes the packet's `Outcome` (its verdict from
//! the standard metadata, as the reference executor decides it, the
//! recirculations and the cost) straight into the caller's output
//! vector, counting parse errors, drops and packets without a route; it
//! returns the packets run. Header
//! fields are read and written in place with big-endian loads and stores
//! of the bytes they span; metadata lives in the caller's array.
//!
//! What it calls back into Rust (`extern "C"` helpers below): LPM and
//! ternary table lookups (the tables are the executor's own, so the
//! control plane edits one structure) and fields wider than 64 bits.
//! Exact tables it probes in place; counters it updates in place; meters
//! it colors in place, with the srTCM and trTCM arithmetic of
//! `crate::meter` emitted inline (their arrays come in the frame).
//!
//! Staying in bounds: the generated code touches the packet only inside a
//! header that the parser extracted in this call, and extracts a header
//! only after checking, in the generated code, that it ends within the
//! packet (`at + len <= frame.len`, else `PacketTooShort`); a field lies
//! within its header (validation: the fields cover the header exactly), so
//! every load and store of a field is within the packet. A field of a
//! header that is not valid reads 0 and is not written, tested on the
//! validity bits before the access. Metadata indices, table, meter and
//! counter numbers and action parameter numbers are constants the
//! validator has checked against the program; meter and counter cells are
//! indexed by packet data and are checked against the array's length in
//! the generated code, as the reference executor checks them (outside: an
//! index error). A table's direct counter and meter cells are indexed by
//! the matched entry's slot (the exact probe's flat index, or what
//! [`h_apply`] returns), below the table's size by construction, which
//! is the arrays' size; the code compares it all the same. The helpers
//! check again what they index with.
//!
//! Semantics are the reference executor's run one packet at a time
//! ([`super::Pipeline::process`]); the differential tests hold the two to
//! the same verdicts, bytes, metadata, counters and meter colors.

mod lower;

#[cfg(test)]
pub(super) use lower::ParserFacts;

use super::exec::{Loc, MeterArray, Outcome, Runtime, Stats, Verdict};
use super::ir::*;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

/// What the compiled function gets for one packet (its only argument).
#[repr(C)]
#[derive(Debug)]
pub(super) struct Frame {
    /// The running packet's bytes (`len` of them), edited in place: set
    /// by the generated code for each packet of the batch, as are `len`
    /// and `meta` (the helpers read them here).
    pub data: *mut u8,
    /// The running packet's length in bytes.
    pub len: u64,
    /// The running packet's metadata, one slot per `Program::meta` field.
    pub meta: *mut u64,
    /// The pipeline's tables, meters, counters and statistics.
    pub rt: *mut Runtime,
    /// The caller's clock, for meters.
    pub now: u64,
    /// Out: the cost units of the pass.
    pub cost: u64,
    /// Each counter array's cells and length (the generated code counts
    /// in place, the index checked against the declared size, which
    /// `Pipeline` checks the length equals).
    pub counters: *const CounterRef,
    /// The pipeline's statistics: the generated code counts index errors
    /// (an index outside a counter or meter array), parse errors, drops
    /// and packets without a route here.
    pub stats: *mut Stats,
    /// Each table's entry count (taken again after every table change,
    /// which the control plane cannot make during a batch): an empty
    /// table is a miss without a call.
    pub table_lens: *const u64,
    /// Each table's (hits, misses), counted in place for those misses.
    pub hits: *mut (u64, u64),
    /// Each table's exact index (`ExactView`; zeros for LPM and ternary
    /// tables), taken again after every table change: exact tables are
    /// probed in place.
    pub tables: *const super::table::ExactView,
    /// Each meter array's cells (`meter::Meter`, `repr(C, u64)`, laid out
    /// as `meter::layout` says) and length: the generated code colors in
    /// place, the index checked as for counters.
    pub meters: *const CounterRef,
    /// The batch: `n` packets, each one's bytes and sending LIF.
    pub batch: *const PktIn,
    /// Packets in `batch`.
    pub n: u64,
    /// The batch's metadata: `Program::meta.len()` slots per packet, one
    /// packet after the other (the generated code sets them all).
    pub meta_base: *mut u64,
    /// Out: each packet's `Outcome`, in batch order.
    pub outcomes: *mut Outcome,
}

/// One packet of a batch as the generated code reads it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct PktIn {
    /// The packet's first byte: an address, not a pointer (the scratch
    /// that holds these is rebuilt for every batch, and only the
    /// generated code dereferences it, during the call).
    pub data: u64,
    pub len: u64,
    pub ingress_lif: u64,
}

/// One counter array as the generated code sees it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct CounterRef {
    /// The first cell's address: (packets, bytes). An address, not a
    /// pointer: the scratch that holds these is rebuilt from the runtime
    /// before every batch and only the generated code dereferences it.
    pub base: u64,
    /// Cells (what `Pipeline` holds to the program's declared size).
    pub len: u64,
}

impl CounterRef {
    /// The array `cells` as the generated code sees it.
    fn to<T>(cells: &mut [T]) -> CounterRef {
        CounterRef {
            base: cells.as_mut_ptr() as u64,
            len: cells.len() as u64,
        }
    }

    /// The counter arrays of `rt`, in program order.
    pub fn of(rt: &mut Runtime, out: &mut Vec<CounterRef>) {
        out.clear();
        out.extend(rt.counters.iter_mut().map(|c| CounterRef::to(c)));
    }

    /// The meter arrays of `rt`, in program order (the same shape: the
    /// first meter's address and the count).
    pub fn meters_of(rt: &mut Runtime, out: &mut Vec<CounterRef>) {
        out.clear();
        out.extend(rt.meters.iter_mut().map(|m| match m {
            MeterArray::Packets(v) => CounterRef::to(v),
            MeterArray::Bytes(v) => CounterRef::to(v),
        }));
    }
}

/// Byte offsets of [`Frame`]'s fields, as the generated code loads them.
pub(super) mod frame {
    /// `data`.
    pub const DATA: i32 = 0;
    /// `len`.
    pub const LEN: i32 = 8;
    /// `meta`.
    pub const META: i32 = 16;
    /// `now`.
    pub const NOW: i32 = 32;
    /// `cost`.
    pub const COST: i32 = 40;
    /// `counters`.
    pub const COUNTERS: i32 = 48;
    /// `stats`.
    pub const STATS: i32 = 56;
    /// `table_lens`.
    pub const TABLE_LENS: i32 = 64;
    /// `hits`.
    pub const HITS: i32 = 72;
    /// `tables`.
    pub const TABLES: i32 = 80;
    /// `meters`.
    pub const METERS: i32 = 88;
    /// `batch`.
    pub const BATCH: i32 = 96;
    /// `n`.
    pub const N: i32 = 104;
    /// `meta_base`.
    pub const META_BASE: i32 = 112;
    /// `outcomes`.
    pub const OUTCOMES: i32 = 120;
    /// `PktIn`'s fields and size.
    pub const IN_DATA: i32 = std::mem::offset_of!(super::PktIn, data) as i32;
    pub const IN_LEN: i32 = std::mem::offset_of!(super::PktIn, len) as i32;
    pub const IN_LIF: i32 = std::mem::offset_of!(super::PktIn, ingress_lif) as i32;
    pub const IN_SIZE: i64 = std::mem::size_of::<super::PktIn>() as i64;
    /// `Outcome`'s fields and size: `Verdict`'s tag and `ToLif`'s LIF
    /// (`repr(C, u16)`), the recirculations, the cost.
    pub const OUT_TAG: i32 = std::mem::offset_of!(super::Outcome, verdict) as i32;
    pub const OUT_LIF: i32 = OUT_TAG + 2;
    pub const OUT_RECIRC: i32 = std::mem::offset_of!(super::Outcome, recirculate) as i32;
    pub const OUT_COST: i32 = std::mem::offset_of!(super::Outcome, cost) as i32;
    pub const OUT_SIZE: i64 = std::mem::size_of::<super::Outcome>() as i64;
    /// `Stats`' fields the generated code counts.
    pub const ST_PARSE_ERRORS: i32 = std::mem::offset_of!(super::Stats, parse_errors) as i32;
    pub const ST_DROPS: i32 = std::mem::offset_of!(super::Stats, drops) as i32;
    pub const ST_NO_ROUTE: i32 = std::mem::offset_of!(super::Stats, no_route) as i32;
    pub const ST_INDEX_ERRORS: i32 = std::mem::offset_of!(super::Stats, index_errors) as i32;
    /// The first and second word of a `(u64, u64)`: a counter cell's
    /// packets and bytes, a table's hits and misses.
    pub const CELL_PACKETS: i32 = std::mem::offset_of!((u64, u64), 0) as i32;
    /// The second word.
    pub const CELL_BYTES: i32 = std::mem::offset_of!((u64, u64), 1) as i32;
}
const _: () = assert!(std::mem::offset_of!(Frame, counters) == frame::COUNTERS as usize);
const _: () = assert!(std::mem::offset_of!(Frame, stats) == frame::STATS as usize);
const _: () = assert!(std::mem::offset_of!(Frame, table_lens) == frame::TABLE_LENS as usize);
const _: () = assert!(std::mem::offset_of!(Frame, hits) == frame::HITS as usize);
const _: () = assert!(std::mem::offset_of!(Frame, tables) == frame::TABLES as usize);
const _: () = assert!(std::mem::offset_of!(Frame, meters) == frame::METERS as usize);
const _: () = assert!(std::mem::size_of::<super::table::ExactView>() == 32);
const _: () = assert!(std::mem::size_of::<(u64, u64)>() == 16);
const _: () = assert!(std::mem::size_of::<CounterRef>() == 16);
const _: () = assert!(std::mem::offset_of!(Frame, data) == frame::DATA as usize);
const _: () = assert!(std::mem::offset_of!(Frame, len) == frame::LEN as usize);
const _: () = assert!(std::mem::offset_of!(Frame, meta) == frame::META as usize);
const _: () = assert!(std::mem::offset_of!(Frame, cost) == frame::COST as usize);
const _: () = assert!(std::mem::offset_of!(Frame, now) == frame::NOW as usize);
const _: () = assert!(std::mem::offset_of!(Frame, batch) == frame::BATCH as usize);
const _: () = assert!(std::mem::offset_of!(Frame, n) == frame::N as usize);
const _: () = assert!(std::mem::offset_of!(Frame, meta_base) == frame::META_BASE as usize);
const _: () = assert!(std::mem::offset_of!(Frame, outcomes) == frame::OUTCOMES as usize);
// `Verdict` is a `u16` tag with `ToLif`'s `u16` after it.
const _: () = assert!(std::mem::size_of::<Verdict>() == 4);

/// The compiled function's type.
type PacketFn = unsafe extern "C" fn(*mut Frame) -> u64;

/// A program compiled to machine code.
pub(super) struct Jit {
    /// Owns the code's memory; freed on drop.
    module: Option<JITModule>,
    entry: PacketFn,
    /// Bytes of machine code generated.
    pub code_bytes: usize,
}

impl std::fmt::Debug for Jit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jit").field("code_bytes", &self.code_bytes).finish()
    }
}

// SAFETY: the module is only the code's memory and Cranelift's bookkeeping
// (a symbol table in a `RefCell` that nothing touches after
// `finalize_definitions`); the code itself is immutable once finalized
// and reentrant (all its state is in the `Frame` and on its stack), so the
// handle may move to another thread.
unsafe impl Send for Jit {}

impl Drop for Jit {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: `entry` points into this module's memory and dies with
            // `self`; nothing can call it after this.
            unsafe { m.free_memory() };
        }
    }
}

/// Why a program was not compiled (it runs on the reference executor).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JitError {
    /// This machine has no Cranelift back end.
    #[error("no code generator for this machine: {0}")]
    Host(String),
    /// Cranelift refused the generated function (a bug: reported, and the
    /// program runs on the reference executor).
    #[error("code generation failed: {0}")]
    Codegen(String),
}

impl Jit {
    /// Compile `prog` (validated) with its field locations.
    pub(super) fn compile(prog: &Program, locs: &[Vec<Loc>]) -> Result<Jit, JitError> {
        let mut flags = settings::builder();
        let set = |f: &mut settings::Builder, k: &str, v: &str| f.set(k, v).map_err(|e| JitError::Host(e.to_string()));
        set(&mut flags, "opt_level", "speed")?;
        set(&mut flags, "is_pic", "false")?;
        set(&mut flags, "use_colocated_libcalls", "false")?;
        let isa = cranelift_native::builder()
            .map_err(|e| JitError::Host(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| JitError::Host(e.to_string()))?;
        let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let ptr = module.target_config().pointer_type();
        let mut ctx = module.make_context();
        ctx.func
            .signature
            .params
            .push(cranelift_codegen::ir::AbiParam::new(ptr));
        ctx.func
            .signature
            .returns
            .push(cranelift_codegen::ir::AbiParam::new(cranelift_codegen::ir::types::I64));
        let id = module
            .declare_function("fairnic_packet", Linkage::Local, &ctx.func.signature)
            .map_err(|e| JitError::Codegen(e.to_string()))?;
        let mut fctx = cranelift_frontend::FunctionBuilderContext::new();
        lower::lower(prog, locs, &mut ctx.func, &mut fctx, module.target_config());
        // FAIRNIC_JIT_DISASM=1: the generated code on stderr (Cranelift's
        // IR before and the machine instructions after), for pipeline
        // authors and for profiling.
        let disasm = std::env::var_os("FAIRNIC_JIT_DISASM").is_some();
        if disasm {
            eprintln!("fairnic jit: {} IR:\n{}", prog.name, ctx.func.display());
            ctx.set_disasm(true);
        }
        module
            .define_function(id, &mut ctx)
            .map_err(|e| JitError::Codegen(format!("{e:?}")))?;
        let code_bytes = ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
        if disasm {
            if let Some(v) = ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
                eprintln!("fairnic jit: {} machine code ({code_bytes} bytes):\n{v}", prog.name);
            }
        }
        // FAIRNIC_JIT_DUMP=FILE: the code's bytes to FILE (and its address
        // on stderr), for `objdump -D -b binary -m i386:x86-64
        // --adjust-vma=ADDR FILE` beside a per-instruction profile.
        let dump = std::env::var_os("FAIRNIC_JIT_DUMP");
        if let (Some(path), Some(c)) = (&dump, ctx.compiled_code()) {
            if let Err(e) = std::fs::write(path, c.code_buffer()) {
                eprintln!(
                    "fairnic jit: cannot write {}: {e}",
                    std::path::Path::new(path).display()
                );
            }
        }
        module.clear_context(&mut ctx);
        module
            .finalize_definitions()
            .map_err(|e| JitError::Codegen(e.to_string()))?;
        let code = module.get_finalized_function(id);
        if dump.is_some() {
            eprintln!("fairnic jit: {} code at {code:p} ({code_bytes} bytes)", prog.name);
        }
        // SAFETY: `code` is the finalized function declared above with the
        // signature (pointer) -> i64 in the host's C calling convention
        // (the module's default), which is `PacketFn`.
        let entry = unsafe { std::mem::transmute::<*const u8, PacketFn>(code) };
        Ok(Jit {
            module: Some(module),
            entry,
            code_bytes,
        })
    }

    /// Run the program on each packet of the batch `fr` describes
    /// (`fr.n` of them at `fr.batch`); each one's `Outcome` lands in
    /// `fr.outcomes` (the statistics it counts in `fr.stats`).
    ///
    /// # Safety
    /// Each `PktIn::data` must point to `len` bytes the caller lets the
    /// program read and write, and no two packets may overlap;
    /// `fr.meta_base` to `n` times the program's metadata slots;
    /// `fr.outcomes` to room for `n` `Outcome`s; `fr.stats` to the
    /// runtime's statistics; `fr.rt` to the runtime of the
    /// pipeline this code was compiled for, with the counter, meter and
    /// table views as they are now; none of them used by anything else
    /// during the call.
    pub(super) unsafe fn run(&self, fr: &mut Frame) -> u64 {
        // SAFETY: the caller's contract (above) is what the generated code
        // needs: it touches only each packet within its `len` (extracts are
        // checked against it), that packet's metadata slots, the outcomes,
        // the statistics and the runtime (in place through the views, or through the
        // helpers).
        unsafe { (self.entry)(fr) }
    }
}

/// The helpers' `Frame`: the generated code passes its own argument.
///
/// # Safety
/// `fr` is the live frame of the current call ([`Jit::run`]'s contract).
unsafe fn frame<'a>(fr: *mut Frame) -> (&'a mut Frame, &'a mut Runtime) {
    // SAFETY: per the function's contract `fr` and `fr.rt` are valid and
    // not otherwise borrowed while the helper runs (the generated code
    // holds no Rust references).
    unsafe {
        let f = &mut *fr;
        let rt = &mut *f.rt;
        (f, rt)
    }
}

/// The packet as a slice.
fn packet(f: &mut Frame) -> &mut [u8] {
    // SAFETY: `data` points to `len` bytes the caller of `Jit::run` lends
    // to the program for the call.
    unsafe { std::slice::from_raw_parts_mut(f.data, f.len as usize) }
}

/// Table lookup: `t`'s entry for the key `hi:lo`. On a hit, writes its
/// arguments to `params` and returns its action (bits 0-15) with bit 32
/// set and the entry's slot (`Table::lookup_slot`, below the table's size,
/// at most `limits::TABLE_SIZE`) in bits 33 and up: the cell of the table's
/// direct counter and meter. On a miss, returns 0 (the generated code runs
/// the default action). Counts the hit or miss.
extern "C" fn h_apply(fr: *mut Frame, t: u64, lo: u64, hi: u64, params: *mut u64) -> u64 {
    // SAFETY: called only by the generated code, with its frame.
    let (_, rt) = unsafe { frame(fr) };
    let t = t as usize;
    let (Some(table), Some(hits)) = (rt.tables.get(t), rt.hits.get_mut(t)) else {
        return 0;
    };
    let key = (u128::from(hi) << 64) | u128::from(lo);
    match table.lookup_slot(key).and_then(|s| Some((s, table.hit_at(s)?))) {
        Some((slot, h)) => {
            hits.0 += 1;
            let n = h.args.len().min(limits::PARAMS);
            // SAFETY: `params` is the generated code's parameter slot of
            // `limits::PARAMS` u64s, alive for the call.
            let out = unsafe { std::slice::from_raw_parts_mut(params, limits::PARAMS) };
            // A loop, not `copy_from_slice`: one or two words, no memmove.
            for (o, a) in out.iter_mut().zip(&h.args[..n]) {
                *o = *a;
            }
            const _: () = assert!(limits::TABLE_SIZE as u64 <= u64::MAX >> 33);
            u64::from(h.action) | (1 << 32) | (u64::from(slot) << 33)
        }
        None => {
            hits.1 += 1;
            0
        }
    }
}

/// A field of more than 64 bits (or spanning more than 8 bytes) of the
/// header at `off`: `loc` packs its bit offset (low 16 bits) and width
/// (next 16). Returns the value's low 64 bits (`hi` 0) or its high ones
/// (`hi` 1).
extern "C" fn h_read_wide(fr: *mut Frame, off: u64, loc: u64, hi: u64) -> u64 {
    // SAFETY: called only by the generated code, with its frame.
    let (f, _) = unsafe { frame(fr) };
    let l = Loc::new(loc as u16, (loc >> 16) as u16);
    let data = packet(f);
    let Some(hdr) = data.get(off as usize..).filter(|h| h.len() >= l.end()) else {
        return 0;
    };
    let v = l.read(hdr);
    if hi != 0 {
        (v >> 64) as u64
    } else {
        v as u64
    }
}

/// Write `v` (zero-extended) to a wide field, as [`h_read_wide`] names it.
extern "C" fn h_write_wide(fr: *mut Frame, off: u64, loc: u64, v: u64) {
    // SAFETY: called only by the generated code, with its frame.
    let (f, _) = unsafe { frame(fr) };
    let l = Loc::new(loc as u16, (loc >> 16) as u16);
    let data = packet(f);
    if let Some(hdr) = data.get_mut(off as usize..).filter(|h| h.len() >= l.end()) {
        l.write(hdr, u128::from(v));
    }
}

/// The helpers' addresses, as the generated code calls them.
pub(super) struct Helpers;

impl Helpers {
    pub const APPLY: extern "C" fn(*mut Frame, u64, u64, u64, *mut u64) -> u64 = h_apply;
    pub const READ_WIDE: extern "C" fn(*mut Frame, u64, u64, u64) -> u64 = h_read_wide;
    pub const WRITE_WIDE: extern "C" fn(*mut Frame, u64, u64, u64) = h_write_wide;
}
