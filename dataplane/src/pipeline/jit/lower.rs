//! The program lowered to one Cranelift function (see the module above).

use super::{frame, Helpers};
use crate::pipeline::compile::mask64;
use crate::pipeline::exec::{max_params, Loc, ParserError, Verdict};
use crate::pipeline::ir::*;
use crate::pipeline::table::{Slot, EMPTY, HASH_MIX, HASH_MUL};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I16, I32, I64, I8};
use cranelift_codegen::ir::{
    AbiParam, AliasRegionData, AliasRegionSet, Block, BlockArg, Function, InstBuilder, MemFlagsData, SigRef, Signature,
    StackSlot, StackSlotData, StackSlotKind, Type, Value,
};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};

/// Lower `prog` into `func` (whose signature is `(pointer) -> i64`).
pub(super) fn lower(
    prog: &Program,
    locs: &[Vec<Loc>],
    func: &mut Function,
    fctx: &mut FunctionBuilderContext,
    cfg: TargetFrontendConfig,
) {
    let mut b = FunctionBuilder::new(func, fctx);
    let mem = Mem::new(&mut b.func.dfg.alias_regions);
    let ptr = cfg.pointer_type();
    let call_conv = cfg.default_call_conv;
    let sig = |params: &[Type], ret: bool| {
        let mut s = Signature::new(call_conv);
        s.params.extend(params.iter().map(|&t| AbiParam::new(t)));
        if ret {
            s.returns.push(AbiParam::new(I64));
        }
        s
    };
    let sigs = Sigs {
        apply: b.import_signature(sig(&[ptr, I64, I64, I64, ptr], true)),
        read_wide: b.import_signature(sig(&[ptr, I64, I64, I64], true)),
        write_wide: b.import_signature(sig(&[ptr, I64, I64, I64], false)),
    };
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let fr = b.block_params(entry)[0];
    // The batch loop: packet `i` of `n` each time round.
    let i_var = b.declare_var(I64);
    let zero = b.ins().iconst(I64, 0);
    b.def_var(i_var, zero);
    let off: Vec<Variable> = (0..prog.headers.len()).map(|_| b.declare_var(I64)).collect();
    let valid = b.declare_var(I64);
    let (head, pkt, finish) = (b.create_block(), b.create_block(), b.create_block());
    b.ins().jump(head, &[]);
    b.switch_to_block(head);
    let i = b.use_var(i_var);
    let n = b.ins().load(I64, mem.frame, fr, frame::N);
    let more = b.ins().icmp(IntCC::UnsignedLessThan, i, n);
    b.ins().brif(more, pkt, &[], finish, &[]);
    // This packet: its bytes, length and metadata slots in the frame, and
    // the standard metadata the device sets.
    b.switch_to_block(pkt);
    let batch = b.ins().load(ptr, mem.frame, fr, frame::BATCH);
    let at = mul_imm(&mut b, i, frame::IN_SIZE);
    let inp = b.ins().iadd(batch, at);
    let data = b.ins().load(ptr, mem.frame, inp, frame::IN_DATA);
    let len = b.ins().load(I64, mem.frame, inp, frame::IN_LEN);
    let lif = b.ins().load(I64, mem.frame, inp, frame::IN_LIF);
    b.ins().store(mem.frame, data, fr, frame::DATA);
    b.ins().store(mem.frame, len, fr, frame::LEN);
    let meta_base = b.ins().load(ptr, mem.frame, fr, frame::META_BASE);
    let slots = 8 * prog.meta.len() as i64;
    let mo = mul_imm(&mut b, i, slots);
    let meta = b.ins().iadd(meta_base, mo);
    b.ins().store(mem.frame, meta, fr, frame::META);
    // Every slot: zero but for what the device sets (a store each, not a
    // memset of the batch's slots by the caller).
    let none = b.ins().iconst(I64, std_meta::LIF_NONE as i64);
    let zero = b.ins().iconst(I64, 0);
    for f in 0..prog.meta.len() {
        let v = match f as u16 {
            std_meta::INGRESS_LIF => lif,
            std_meta::EGRESS_LIF => none,
            std_meta::PACKET_LENGTH => len,
            _ => zero,
        };
        b.ins().store(mem.meta, v, meta, (8 * f) as i32);
    }
    for &v in &off {
        b.def_var(v, zero);
    }
    b.def_var(valid, zero);
    // The cost accumulates in the frame (no register held for it through
    // the whole function).
    let base = b.ins().iconst(I64, i64::from(prog.base_cost));
    b.ins().store(mem.cost, base, fr, frame::COST);
    let apply_params = b.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        (8 * limits::PARAMS) as u32,
        3,
    ));
    let done = b.create_block();
    let code = b.append_block_param(done, I64);
    let mut l = Lower {
        prog,
        locs,
        b,
        ptr,
        mem,
        fr,
        off,
        valid,
        done,
        sigs,
        params: None,
        apply_params,
        errors: Vec::new(),
        exit: None,
        known: 0,
        slot: None,
    };
    l.parser();
    l.fill_errors();
    // The end of every packet's path: its `Outcome`, as the reference
    // executor's `verdict` decides it from the standard metadata (the
    // code to `parser_error` too), on to the next.
    l.b.switch_to_block(done);
    l.outcome(i_var, code);
    let i = l.b.use_var(i_var);
    let next = l.b.ins().iadd_imm_s(i, 1);
    l.b.def_var(i_var, next);
    l.b.ins().jump(head, &[]);
    // Every packet run: how many.
    l.b.switch_to_block(finish);
    let i = l.b.use_var(i_var);
    l.b.ins().return_(&[i]);
    l.b.seal_all_blocks();
    l.b.finalize(cfg);
}

/// Memory flags by what an access reaches. Each kind of memory the
/// generated code touches is its own alias region, so Cranelift's alias
/// analysis knows that a store to one (a counter, a meter's bucket, a
/// header field) leaves the others as they were: it reuses a pointer or
/// a metadata slot already loaded (or just stored) instead of loading it
/// again, and drops a store to the packet's cost that a later one
/// overwrites unread. Sound because the five are disjoint memory: the
/// frame's fields and the batch's inputs and array lists (`frame`, its
/// `cost` field apart), the batch's metadata slots (`meta`), the packet's
/// bytes (`packet`); everything else (counter and meter cells, tables,
/// stats, outcomes, the parameters' stack slot) keeps the default
/// region, as before. A helper call may touch any of them and is treated
/// as touching all.
#[derive(Clone, Copy)]
struct Mem {
    frame: MemFlagsData,
    cost: MemFlagsData,
    meta: MemFlagsData,
    packet: MemFlagsData,
}

impl Mem {
    fn new(regions: &mut AliasRegionSet) -> Mem {
        let mut region = |user_id: u32, description: &'static str| {
            Some(regions.insert(AliasRegionData {
                user_id,
                description: description.into(),
            }))
        };
        let trusted = MemFlagsData::trusted();
        // The packet's bytes: no alignment promised, never trapping.
        let mut packet = MemFlagsData::new();
        packet.set_notrap();
        Mem {
            frame: trusted.with_alias_region(region(1, "frame")),
            cost: trusted.with_alias_region(region(2, "frame cost")),
            meta: trusted.with_alias_region(region(3, "metadata")),
            packet: packet.with_alias_region(region(4, "packet")),
        }
    }
}

/// The helpers' signatures.
struct Sigs {
    apply: SigRef,
    read_wide: SigRef,
    write_wide: SigRef,
}

struct Lower<'a, 'f> {
    prog: &'a Program,
    locs: &'a [Vec<Loc>],
    b: FunctionBuilder<'f>,
    ptr: Type,
    mem: Mem,
    fr: Value,
    /// Each header's offset in the packet, and the validity bits.
    off: Vec<Variable>,
    valid: Variable,
    /// Where every path ends, with the parser's code.
    done: Block,
    sigs: Sigs,
    /// Where the running action's parameters are (None outside an
    /// action): a stack slot's address, or a table entry's arguments.
    params: Option<Value>,
    /// The slot a table apply's helper writes the entry's arguments to.
    apply_params: StackSlot,
    /// Blocks that end with a parser error, by code (made on first use).
    errors: Vec<(u64, Block)>,
    /// Headers known valid where code is being generated (a bit per
    /// header, from [`ParserFacts`]): their validity is not tested.
    known: u64,
    /// `exit;` and the end of the ingress control (made with it).
    exit: Option<Block>,
    /// The matched entry's slot while the action a table hit chose is
    /// generated, for a table with a direct meter (its cell for
    /// `Stmt::DirectMeter`); `None` everywhere else: the default action
    /// on a miss (green, no meter run) and the actions a statement calls
    /// (the validator lets no statement call an action that reads a direct
    /// meter).
    slot: Option<Value>,
}

/// `x * c` for the constant strides of the frame and the tables, without
/// a multiply where a shift or an `lea` does it: `c` a power of two is a
/// shift, `c` = 3, 5 or 9 times one is `x + (x << 1, 2 or 3)` (one `lea`)
/// then a shift, which x86 folds into the address of the load or store
/// that uses it. A multiply takes three cycles on the lookups' chains of
/// dependent loads; these take one. Anything else multiplies.
fn mul_imm(b: &mut FunctionBuilder<'_>, x: Value, c: i64) -> Value {
    if c > 0 {
        let k = c.trailing_zeros();
        let m = c >> k;
        let head = match m {
            1 => Some(x),
            3 | 5 | 9 => {
                let s = b.ins().ishl_imm_s(x, i64::from((m - 1).trailing_zeros()));
                Some(b.ins().iadd(x, s))
            }
            _ => None,
        };
        if let Some(h) = head {
            return if k == 0 { h } else { b.ins().ishl_imm_s(h, i64::from(k)) };
        }
    }
    b.ins().imul_imm_s(x, c)
}

/// Bytes of a field's big-endian load or store, from its first byte: the
/// widest loads that fit.
fn pieces(span: u8) -> impl Iterator<Item = (u8, u8)> {
    let mut pos = 0u8;
    std::iter::from_fn(move || {
        if pos >= span {
            return None;
        }
        let left = span - pos;
        let k = match left {
            8.. => 8,
            4..=7 => 4,
            2..=3 => 2,
            _ => 1,
        };
        let at = pos;
        pos += k;
        Some((at, k))
    })
}

impl Lower<'_, '_> {
    fn iconst(&mut self, v: u64) -> Value {
        self.b.ins().iconst(I64, v as i64)
    }

    /// `x & m`, skipped for an all-ones mask.
    fn mask(&mut self, x: Value, m: u64) -> Value {
        if m == u64::MAX {
            x
        } else {
            self.b.ins().band_imm_s(x, m as i64)
        }
    }

    fn add_cost(&mut self, c: u32) {
        if c != 0 {
            let t = self.mem.cost;
            let v = self.b.ins().load(I64, t, self.fr, frame::COST);
            let v = self.b.ins().iadd_imm_s(v, i64::from(c));
            self.b.ins().store(t, v, self.fr, frame::COST);
        }
    }

    /// The block that ends the packet with parser error `code` (filled
    /// at the end, [`Lower::fill_errors`]).
    fn error(&mut self, code: ParserError) -> Block {
        let code = code as u64;
        if let Some(&(_, blk)) = self.errors.iter().find(|(c, _)| *c == code) {
            return blk;
        }
        let blk = self.b.create_block();
        self.errors.push((code, blk));
        blk
    }

    /// Each parser error's block: on to the end with its code.
    fn fill_errors(&mut self) {
        for (code, blk) in std::mem::take(&mut self.errors) {
            self.b.switch_to_block(blk);
            let c = self.iconst(code);
            self.b.ins().jump(self.done, &[c.into()]);
        }
    }

    /// Continue in a fresh block after a terminator (code there is
    /// unreachable and removed).
    fn dead_block(&mut self) {
        let blk = self.b.create_block();
        self.b.switch_to_block(blk);
    }

    /// `isValid()` of header `h`: 1 or 0.
    fn valid_bit(&mut self, h: usize) -> Value {
        if self.known & (1 << h) != 0 {
            return self.iconst(1);
        }
        let v = self.b.use_var(self.valid);
        let v = self.b.ins().ushr_imm_s(v, h as i64);
        self.b.ins().band_imm_s(v, 1)
    }

    /// The value `then` computes when header `h` is valid, else 0.
    fn if_valid(&mut self, h: usize, then: impl FnOnce(&mut Self) -> Value) -> Value {
        let var = self.b.declare_var(I64);
        let zero = self.iconst(0);
        self.b.def_var(var, zero);
        self.when_valid(h, |s| {
            let x = then(s);
            s.b.def_var(var, x);
        });
        self.b.use_var(var)
    }

    /// Run `then` when header `h` is valid (without a test where it is
    /// known to be).
    fn when_valid(&mut self, h: usize, then: impl FnOnce(&mut Self)) {
        if self.known & (1 << h) != 0 {
            then(self);
            return;
        }
        let v = self.b.use_var(self.valid);
        let t = self.b.ins().band_imm_s(v, 1i64 << h);
        let yes = self.b.create_block();
        let merge = self.b.create_block();
        self.b.ins().brif(t, yes, &[], merge, &[]);
        self.b.switch_to_block(yes);
        then(self);
        self.b.ins().jump(merge, &[]);
        self.b.switch_to_block(merge);
    }

    /// The address of header `h` (its offset in the packet).
    fn header_base(&mut self, h: usize) -> Value {
        let o = self.b.use_var(self.off[h]);
        let data = self.frame_ptr(frame::DATA);
        self.b.ins().iadd(data, o)
    }

    /// The big-endian integer in the `span` bytes at `base + byte`.
    fn load_be(&mut self, base: Value, byte: u16, span: u8) -> Value {
        let mut acc: Option<Value> = None;
        for (at, k) in pieces(span) {
            let o = i32::from(byte) + i32::from(at);
            let piece = match k {
                1 => self.b.ins().uload8(I64, self.mem.packet, base, o),
                2 => {
                    let x = self.b.ins().load(I16, self.mem.packet, base, o);
                    let x = self.b.ins().bswap(x);
                    self.b.ins().uextend(I64, x)
                }
                4 => {
                    let x = self.b.ins().load(I32, self.mem.packet, base, o);
                    let x = self.b.ins().bswap(x);
                    self.b.ins().uextend(I64, x)
                }
                _ => {
                    let x = self.b.ins().load(I64, self.mem.packet, base, o);
                    self.b.ins().bswap(x)
                }
            };
            acc = Some(match acc {
                None => piece,
                Some(a) => {
                    let a = self.b.ins().ishl_imm_s(a, i64::from(8 * k));
                    self.b.ins().bor(a, piece)
                }
            });
        }
        acc.expect("a field spans at least one byte")
    }

    /// Store the low `span` bytes of `v` big-endian at `base + byte`.
    fn store_be(&mut self, base: Value, byte: u16, span: u8, v: Value) {
        for (at, k) in pieces(span) {
            let o = i32::from(byte) + i32::from(at);
            let sh = 8 * i64::from(span - at - k);
            let x = if sh == 0 { v } else { self.b.ins().ushr_imm_s(v, sh) };
            match k {
                1 => {
                    self.b.ins().istore8(self.mem.packet, x, base, o);
                }
                2 => {
                    let x = self.b.ins().ireduce(I16, x);
                    let x = self.b.ins().bswap(x);
                    self.b.ins().store(self.mem.packet, x, base, o);
                }
                4 => {
                    let x = self.b.ins().ireduce(I32, x);
                    let x = self.b.ins().bswap(x);
                    self.b.ins().store(self.mem.packet, x, base, o);
                }
                _ => {
                    let x = self.b.ins().bswap(x);
                    self.b.ins().store(self.mem.packet, x, base, o);
                }
            }
        }
    }

    /// `loc` packed for the wide-field helpers.
    fn packed(&self, h: usize, f: usize) -> u64 {
        let d = &self.prog.headers[h].fields[f];
        u64::from(d.bit_off) | (u64::from(d.width) << 16)
    }

    fn call(&mut self, sig: SigRef, f: usize, args: &[Value]) -> Option<Value> {
        let callee = self.b.ins().iconst(self.ptr, f as i64);
        let call = self.b.ins().call_indirect(sig, callee, args);
        self.b.inst_results(call).first().copied()
    }

    /// Header field `(h, f)` as an expression value (0 when the header is
    /// not valid; the low 64 bits of a wider field).
    fn field(&mut self, h: usize, f: usize) -> Value {
        let loc = self.locs[h][f];
        let (byte, span, shift, _, mask) = loc.parts();
        let packed = self.packed(h, f);
        self.if_valid(h, |s| {
            if span <= 8 {
                let base = s.header_base(h);
                let x = s.load_be(base, byte, span);
                let x = if shift == 0 {
                    x
                } else {
                    s.b.ins().ushr_imm_s(x, i64::from(shift))
                };
                s.mask(x, mask)
            } else {
                s.wide(h, packed, 0)
            }
        })
    }

    /// Half (`hi` 0: low, 1: high) of a wide field of header `h`.
    fn wide(&mut self, h: usize, packed: u64, hi: u64) -> Value {
        let o = self.b.use_var(self.off[h]);
        let p = self.iconst(packed);
        let hi = self.iconst(hi);
        let sig = self.sigs.read_wide;
        self.call(sig, Helpers::READ_WIDE as usize, &[self.fr, o, p, hi])
            .expect("returns a value")
    }

    /// A pointer field of the frame (`data`, `meta`), loaded where it is
    /// used: held in a register through the whole function it would be
    /// spilled to the stack and reloaded from there anyway.
    fn frame_ptr(&mut self, field: i32) -> Value {
        self.b.ins().load(self.ptr, self.mem.frame, self.fr, field)
    }

    /// The packet's length, loaded where it is used (as `frame_ptr`).
    fn frame_len(&mut self) -> Value {
        self.b.ins().load(I64, self.mem.frame, self.fr, frame::LEN)
    }

    fn meta_load(&mut self, f: usize) -> Value {
        let meta = self.frame_ptr(frame::META);
        self.b.ins().load(I64, self.mem.meta, meta, (8 * f) as i32)
    }

    fn meta_store(&mut self, f: usize, v: Value) {
        let meta = self.frame_ptr(frame::META);
        self.b.ins().store(self.mem.meta, v, meta, (8 * f) as i32);
    }

    fn expr(&mut self, e: &Expr) -> Value {
        match e {
            Expr::Const { value, .. } => self.iconst(*value),
            Expr::Field(FieldRef::Meta(f)) => self.meta_load(usize::from(*f)),
            Expr::Field(FieldRef::Header { header, field }) => self.field(usize::from(*header), usize::from(*field)),
            Expr::Param(p) => match self.params {
                Some(base) => {
                    let p = usize::from(*p).min(limits::PARAMS - 1);
                    self.b.ins().load(I64, MemFlagsData::trusted(), base, (8 * p) as i32)
                }
                // The parser has no parameters: they read 0 there.
                None => self.iconst(0),
            },
            Expr::Valid(h) => self.valid_bit(usize::from(*h)),
            Expr::Unary { op, arg, width } => {
                let a = self.expr(arg);
                let w = mask64(*width);
                match op {
                    UnOp::Not => {
                        let c = self.b.ins().icmp_imm_s(IntCC::Equal, a, 0);
                        self.b.ins().uextend(I64, c)
                    }
                    UnOp::BitNot => {
                        let x = self.b.ins().bnot(a);
                        self.mask(x, w)
                    }
                    UnOp::Neg => {
                        let x = self.b.ins().ineg(a);
                        self.mask(x, w)
                    }
                }
            }
            Expr::Binary { op, lhs, rhs, width } => {
                let a = self.expr(lhs);
                let c = self.expr(rhs);
                self.binary(*op, a, c, mask64(*width))
            }
            Expr::Slice { arg, hi, lo } => {
                let a = self.expr(arg);
                let x = if *lo == 0 {
                    a
                } else {
                    self.b.ins().ushr_imm_s(a, i64::from(*lo))
                };
                self.mask(x, mask64(hi - lo + 1))
            }
            Expr::Cast { arg, width } => {
                let a = self.expr(arg);
                // A value already within the width needs no mask (a
                // widening cast).
                if self.bound(arg) <= mask64(*width) {
                    a
                } else {
                    self.mask(a, mask64(*width))
                }
            }
        }
    }

    /// The largest value `e` can have, as the generated code keeps every
    /// value within its width (fields and metadata masked when stored,
    /// operators masked to their width, comparisons 0 or 1); `u64::MAX`
    /// where that is not known: an action's parameter, and
    /// `packet_length`, which the caller sets from the frame's length.
    fn bound(&self, e: &Expr) -> u64 {
        match e {
            Expr::Const { value, .. } => *value,
            Expr::Field(FieldRef::Meta(f)) if *f == std_meta::PACKET_LENGTH => u64::MAX,
            Expr::Field(FieldRef::Meta(f)) => self
                .prog
                .meta
                .get(usize::from(*f))
                .map_or(u64::MAX, |m| mask64(m.width)),
            Expr::Field(FieldRef::Header { header, field }) => self
                .prog
                .headers
                .get(usize::from(*header))
                .and_then(|h| h.fields.get(usize::from(*field)))
                .map_or(u64::MAX, |f| mask64(f.width)),
            Expr::Param(_) => u64::MAX,
            Expr::Valid(_) => 1,
            Expr::Unary { op: UnOp::Not, .. } => 1,
            Expr::Unary { width, .. } => mask64(*width),
            Expr::Binary { op, lhs, rhs, width } => match op {
                BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::And | BinOp::Or => 1,
                // Not masked by the code: within the operands' bounds.
                BinOp::BitAnd => self.bound(lhs).min(self.bound(rhs)),
                BinOp::BitOr | BinOp::BitXor => {
                    let m = self.bound(lhs).max(self.bound(rhs));
                    if m == 0 {
                        0
                    } else {
                        u64::MAX >> m.leading_zeros()
                    }
                }
                BinOp::Shr => self.bound(lhs),
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Shl => mask64(*width),
            },
            Expr::Slice { hi, lo, .. } => mask64(hi - lo + 1),
            Expr::Cast { arg, width } => self.bound(arg).min(mask64(*width)),
        }
    }

    fn binary(&mut self, op: BinOp, a: Value, c: Value, w: u64) -> Value {
        let cmp = |s: &mut Self, cc: IntCC| {
            let x = s.b.ins().icmp(cc, a, c);
            s.b.ins().uextend(I64, x)
        };
        match op {
            BinOp::Add => {
                let x = self.b.ins().iadd(a, c);
                self.mask(x, w)
            }
            BinOp::Sub => {
                let x = self.b.ins().isub(a, c);
                self.mask(x, w)
            }
            BinOp::Mul => {
                let x = self.b.ins().imul(a, c);
                self.mask(x, w)
            }
            BinOp::BitAnd => self.b.ins().band(a, c),
            BinOp::BitOr => self.b.ins().bor(a, c),
            BinOp::BitXor => self.b.ins().bxor(a, c),
            BinOp::Shl | BinOp::Shr => {
                // Cranelift takes the amount modulo 64; P4 here gives 0.
                let x = if op == BinOp::Shl {
                    self.b.ins().ishl(a, c)
                } else {
                    self.b.ins().ushr(a, c)
                };
                let big = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, c, 64);
                let zero = self.iconst(0);
                let x = self.b.ins().select(big, zero, x);
                if op == BinOp::Shl {
                    self.mask(x, w)
                } else {
                    x
                }
            }
            BinOp::Eq => cmp(self, IntCC::Equal),
            BinOp::Ne => cmp(self, IntCC::NotEqual),
            BinOp::Lt => cmp(self, IntCC::UnsignedLessThan),
            BinOp::Le => cmp(self, IntCC::UnsignedLessThanOrEqual),
            BinOp::Gt => cmp(self, IntCC::UnsignedGreaterThan),
            BinOp::Ge => cmp(self, IntCC::UnsignedGreaterThanOrEqual),
            BinOp::And | BinOp::Or => {
                let x = self.b.ins().icmp_imm_s(IntCC::NotEqual, a, 0);
                let y = self.b.ins().icmp_imm_s(IntCC::NotEqual, c, 0);
                let z = if op == BinOp::And {
                    self.b.ins().band(x, y)
                } else {
                    self.b.ins().bor(x, y)
                };
                self.b.ins().uextend(I64, z)
            }
        }
    }

    /// Store `v` into a field (truncated to its width; a header field of a
    /// header that is not valid is left alone).
    fn store(&mut self, dst: FieldRef, v: Value) {
        match dst {
            FieldRef::Meta(f) => {
                let f = usize::from(f);
                let v = self.mask(v, mask64(self.prog.meta[f].width));
                self.meta_store(f, v);
            }
            FieldRef::Header { header, field } => {
                let (h, f) = (usize::from(header), usize::from(field));
                let loc = self.locs[h][f];
                let (byte, span, shift, _, mask) = loc.parts();
                let packed = self.packed(h, f);
                self.when_valid(h, |s| {
                    if span <= 8 {
                        let base = s.header_base(h);
                        let acc = s.load_be(base, byte, span);
                        let m = mask << shift;
                        let keep = s.b.ins().band_imm_s(acc, !m as i64);
                        let x = if shift == 0 {
                            v
                        } else {
                            s.b.ins().ishl_imm_s(v, i64::from(shift))
                        };
                        let x = s.b.ins().band_imm_s(x, m as i64);
                        let new = s.b.ins().bor(keep, x);
                        s.store_be(base, byte, span, new);
                    } else {
                        let o = s.b.use_var(s.off[h]);
                        let p = s.iconst(packed);
                        let sig = s.sigs.write_wide;
                        s.call(sig, Helpers::WRITE_WIDE as usize, &[s.fr, o, p, v]);
                    }
                });
            }
        }
    }

    fn parser(&mut self) {
        let prog = self.prog;
        let facts = ParserFacts::of(prog);
        let states: Vec<Block> = prog.parser.iter().map(|_| self.b.create_block()).collect();
        let steps = self.b.declare_var(I64);
        let zero = self.iconst(0);
        self.b.def_var(steps, zero);
        let at = self.b.declare_var(I64);
        self.b.def_var(at, zero);
        let accept = self.b.create_block();
        self.b.ins().jump(states[0], &[]);
        for (i, s) in prog.parser.iter().enumerate() {
            self.b.switch_to_block(states[i]);
            // At most PARSE_STEPS states per packet: counted unless no path
            // is that long.
            if !facts.bounded {
                let n = self.b.use_var(steps);
                let more = self
                    .b
                    .ins()
                    .icmp_imm_s(IntCC::UnsignedLessThan, n, limits::PARSE_STEPS as i64);
                let go = self.b.create_block();
                let timeout = self.error(ParserError::ParserTimeout);
                self.b.ins().brif(more, go, &[], timeout, &[]);
                self.b.switch_to_block(go);
                let n = self.b.ins().iadd_imm_s(n, 1);
                self.b.def_var(steps, n);
            }
            self.add_cost(s.cost);
            self.known = facts.must[i];
            let mut may = facts.may[i];
            for op in &s.ops {
                match op {
                    ParserOp::Extract(h) => {
                        let h = usize::from(*h);
                        let hl = i64::from(prog.headers[h].len);
                        let v = self.b.use_var(self.valid);
                        // Extracted twice on this path: an error, tested
                        // unless no path here can have extracted it.
                        if may & (1 << h) != 0 {
                            let twice = self.b.ins().band_imm_s(v, 1i64 << h);
                            let ok = self.b.create_block();
                            let stack = self.error(ParserError::StackOutOfBounds);
                            self.b.ins().brif(twice, stack, &[], ok, &[]);
                            self.b.switch_to_block(ok);
                        }
                        may |= 1 << h;
                        // In bounds: the header ends within the packet.
                        let start = self.b.use_var(at);
                        let end = self.b.ins().iadd_imm_s(start, hl);
                        let len = self.frame_len();
                        let short = self.b.ins().icmp(IntCC::UnsignedGreaterThan, end, len);
                        let fits = self.b.create_block();
                        let too_short = self.error(ParserError::PacketTooShort);
                        self.b.ins().brif(short, too_short, &[], fits, &[]);
                        self.b.switch_to_block(fits);
                        self.b.def_var(self.off[h], start);
                        let v = self.b.ins().bor_imm_s(v, 1i64 << h);
                        self.b.def_var(self.valid, v);
                        self.b.def_var(at, end);
                        self.known |= 1 << h;
                    }
                    ParserOp::Assign { dst, value } => {
                        let v = self.expr(value);
                        if let FieldRef::Meta(_) = dst {
                            self.store(*dst, v);
                        }
                    }
                }
            }
            let target = |s: &mut Self, n: Next| match n {
                Next::Accept => accept,
                Next::Reject => s.error(ParserError::NoMatch),
                Next::State(k) => states[usize::from(k)],
            };
            match &s.transition {
                Transition::Next(n) => {
                    let t = target(self, *n);
                    self.b.ins().jump(t, &[]);
                }
                Transition::Select { keys, cases, default } => {
                    let vals: Vec<Value> = keys.iter().map(|k| self.expr(k)).collect();
                    for c in cases {
                        let mut all: Option<Value> = None;
                        for (&(v, m), &x) in c.matches.iter().zip(&vals) {
                            let y = self.mask(x, m);
                            let eq = self.b.ins().icmp_imm_s(IntCC::Equal, y, (v & m) as i64);
                            all = Some(match all {
                                None => eq,
                                Some(a) => self.b.ins().band(a, eq),
                            });
                        }
                        let t = target(self, c.next);
                        let next = self.b.create_block();
                        match all {
                            Some(cond) => {
                                self.b.ins().brif(cond, t, &[], next, &[]);
                            }
                            // A case with no keys matches everything.
                            None => {
                                self.b.ins().jump(t, &[]);
                            }
                        }
                        self.b.switch_to_block(next);
                    }
                    let t = target(self, *default);
                    self.b.ins().jump(t, &[]);
                }
            }
        }
        self.b.switch_to_block(accept);
        // Headers every path to accept extracted: valid in the whole
        // ingress (nothing there changes validity).
        self.known = facts.at_accept;
        let exit = self.b.create_block();
        self.exit = Some(exit);
        self.block(&prog.ingress);
        self.b.ins().jump(exit, &[]);
        self.b.switch_to_block(exit);
        let z = self.iconst(0);
        self.b.ins().jump(self.done, &[z.into()]);
    }

    fn block(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Assign { dst, value } => {
                let v = self.expr(value);
                self.store(*dst, v);
            }
            Stmt::If { cond, then, otherwise } => {
                let c = self.expr(cond);
                let (t, o, merge) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
                self.b.ins().brif(c, t, &[], o, &[]);
                self.b.switch_to_block(t);
                self.block(then);
                self.b.ins().jump(merge, &[]);
                self.b.switch_to_block(o);
                self.block(otherwise);
                self.b.ins().jump(merge, &[]);
                self.b.switch_to_block(merge);
            }
            Stmt::Apply { table, on_hit, on_miss } => self.apply(usize::from(*table), on_hit, on_miss),
            Stmt::Call { action, args } => {
                let slot = self.b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    (8 * limits::PARAMS) as u32,
                    3,
                ));
                for (k, a) in args.iter().enumerate() {
                    let v = self.expr(a);
                    self.b.ins().stack_store(self.ptr, v, slot, (8 * k) as i32);
                }
                let a = &self.prog.actions[usize::from(*action)];
                self.add_cost(a.cost);
                let base = self.b.ins().stack_addr(self.ptr, slot, 0);
                self.action_body(a, base);
            }
            Stmt::Drop => {
                let one = self.iconst(1);
                self.meta_store(usize::from(std_meta::DROP), one);
            }
            Stmt::DirectMeter { meter, dst } => {
                // The cell of the entry the table hit matched, with the
                // indexed meter's code (the index checked as there); no
                // entry (the default action on a miss): green, no meter.
                let color = match self.slot {
                    Some(slot) => self.meter(usize::from(*meter), slot, u64::MAX),
                    None => self.iconst(0),
                };
                self.store(*dst, color);
            }
            Stmt::Exit => {
                let exit = self.exit.expect("exit is made before the ingress");
                self.b.ins().jump(exit, &[]);
                self.dead_block();
            }
            Stmt::Count { counter, index } => {
                // In place: the array's cells from the frame, the index
                // checked against the array's size where it could be
                // outside.
                let c = usize::from(*counter);
                let idx = self.expr(index);
                let base = self.array_base(frame::COUNTERS, c);
                let merge = self.b.create_block();
                self.check_index(
                    idx,
                    self.bound(index),
                    u64::from(self.prog.counters[c].size),
                    merge,
                    &[],
                );
                self.count_cell(base, idx);
                self.b.ins().jump(merge, &[]);
                self.b.switch_to_block(merge);
            }
            Stmt::Meter { meter, index, dst } => {
                let idx = self.expr(index);
                let color = self.meter(usize::from(*meter), idx, self.bound(index));
                self.store(*dst, color);
            }
        }
    }

    /// `meter[m].execute_meter(idx)` in place, as `Meter::color` does it
    /// (RFC 2697 and 2698, color-blind, in fixed point): the array's cells
    /// from the frame, the index checked against the array's declared size
    /// unless `bound` (its largest value) is below it (outside: an index
    /// error and green), the variant by its tag. The
    /// color's code (0 green, 1 yellow, 2 red).
    fn meter(&mut self, m: usize, idx: Value, bound: u64) -> Value {
        use crate::meter::{layout as ml, FP, MAX_BURST};
        let t = MemFlagsData::trusted();
        let base = self.array_base(frame::METERS, m);
        let [not_sr, off, sr, tr, merge] = [(); 5].map(|()| self.b.create_block());
        let color = self.b.append_block_param(merge, I64);
        // Outside the array: counted, green.
        let green = self.iconst(0);
        self.check_index(idx, bound, u64::from(self.prog.meters[m].size), merge, &[green.into()]);
        // The meter's cell, its variant.
        let o = self.b.ins().ishl_imm_s(idx, 6);
        const _: () = assert!(ml::SIZE == 1 << 6);
        let p = self.b.ins().iadd(base, o);
        let tag = self.b.ins().load(I64, t, p, ml::TAG);
        let is_sr = self.b.ins().icmp_imm_s(IntCC::Equal, tag, ml::TAG_SRTCM as i64);
        self.b.ins().brif(is_sr, sr, &[], not_sr, &[]);
        self.b.switch_to_block(not_sr);
        let is_tr = self.b.ins().icmp_imm_s(IntCC::Equal, tag, ml::TAG_TRTCM as i64);
        self.b.ins().brif(is_tr, tr, &[], off, &[]);
        self.b.switch_to_block(off);
        let green = self.iconst(0);
        self.b.ins().jump(merge, &[green.into()]);
        // What the packet takes: 1 packet or its bytes, capped, in fixed
        // point.
        let bytes = self.prog.meters[m].unit == MeterUnit::Bytes;
        let need = |s: &mut Self| {
            if bytes {
                let len = s.frame_len();
                let cap = s.iconst(MAX_BURST + 1);
                let a = s.b.ins().umin(len, cap);
                s.b.ins().ishl_imm_s(a, i64::from(FP))
            } else {
                s.iconst(1u64.min(MAX_BURST + 1) << FP)
            }
        };
        // srTCM: refill Tc, the overflow to Te; green from Tc, yellow
        // from Te, else red. Branches, not selects: the refill runs only
        // when the clock moved, and each color stores only what it takes
        // (the common path, a refill and a green, is predicted and its
        // stores do not wait on the multiply's chain).
        self.b.switch_to_block(sr);
        let [tc, te] = [ml::SR_TC, ml::SR_TE].map(|off| self.b.ins().load(I64, t, p, off));
        let now = self.b.ins().load(I64, self.mem.frame, self.fr, frame::NOW);
        let last = self.b.ins().load(I64, t, p, ml::SR_LAST);
        let later = self.b.ins().icmp(IntCC::UnsignedGreaterThan, now, last);
        let [fill, judge, green_b, not_green, yellow_b, red_b] = [(); 6].map(|()| self.b.create_block());
        let tc1 = self.b.append_block_param(judge, I64);
        let te1 = self.b.append_block_param(judge, I64);
        self.b.ins().brif(later, fill, &[], judge, &[tc.into(), te.into()]);
        self.b.switch_to_block(fill);
        self.b.ins().store(t, now, p, ml::SR_LAST);
        let dt = self.b.ins().isub(now, last);
        let [cir, cbs, ebs, full_dt] =
            [ml::SR_CIR, ml::SR_CBS, ml::SR_EBS, ml::SR_FULL_DT].map(|off| self.b.ins().load(I64, t, p, off));
        // Bursts are at most MAX_BURST in fixed point: their sum cannot
        // overflow (`saturating_add` in `Meter::color` never saturates).
        const _: () = assert!((MAX_BURST << FP).checked_add(MAX_BURST << FP).is_some());
        let cap = self.b.ins().iadd(cbs, ebs);
        // `meter::refill_upto`: a gap past `full_dt` fills both buckets,
        // a shorter one adds `dt * cir` (no 128-bit product).
        let lo = self.b.ins().imul(dt, cir);
        let full = self.b.ins().icmp(IntCC::UnsignedGreaterThan, dt, full_dt);
        let add = self.b.ins().select(full, cap, lo);
        let room = self.b.ins().isub(cbs, tc);
        let to_c = self.b.ins().umin(add, room);
        let tc_f = self.b.ins().iadd(tc, to_c);
        let rest = self.b.ins().isub(add, to_c);
        let te_f = self.sat_add(te, rest);
        let te_f = self.b.ins().umin(te_f, ebs);
        self.b.ins().jump(judge, &[tc_f.into(), te_f.into()]);
        self.b.switch_to_block(judge);
        let need_v = need(self);
        let g = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, tc1, need_v);
        self.b.ins().brif(g, green_b, &[], not_green, &[]);
        self.b.switch_to_block(green_b);
        let tc2 = self.b.ins().isub(tc1, need_v);
        self.b.ins().store(t, tc2, p, ml::SR_TC);
        self.b.ins().store(t, te1, p, ml::SR_TE);
        let c = self.iconst(0);
        self.b.ins().jump(merge, &[c.into()]);
        self.b.switch_to_block(not_green);
        self.b.ins().store(t, tc1, p, ml::SR_TC);
        let y = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, te1, need_v);
        self.b.ins().brif(y, yellow_b, &[], red_b, &[]);
        self.b.switch_to_block(yellow_b);
        let te2 = self.b.ins().isub(te1, need_v);
        self.b.ins().store(t, te2, p, ml::SR_TE);
        let c = self.iconst(1);
        self.b.ins().jump(merge, &[c.into()]);
        self.b.switch_to_block(red_b);
        self.b.ins().store(t, te1, p, ml::SR_TE);
        let c = self.iconst(2);
        self.b.ins().jump(merge, &[c.into()]);
        // trTCM: refill both buckets; red without peak tokens, yellow
        // without committed ones, else green (each takes what it passed).
        self.b.switch_to_block(tr);
        let (dt, later) = self.meter_elapsed(p, ml::TR_LAST);
        let [cir, pir, cbs, pbs, tc, tp] = [ml::TR_CIR, ml::TR_PIR, ml::TR_CBS, ml::TR_PBS, ml::TR_TC, ml::TR_TP]
            .map(|off| self.b.ins().load(I64, t, p, off));
        let add_c = self.refill(dt, cir, cbs);
        let tc1 = self.sat_add(tc, add_c);
        let tc1 = self.b.ins().umin(tc1, cbs);
        let add_p = self.refill(dt, pir, pbs);
        let tp1 = self.sat_add(tp, add_p);
        let tp1 = self.b.ins().umin(tp1, pbs);
        let tc1 = self.b.ins().select(later, tc1, tc);
        let tp1 = self.b.ins().select(later, tp1, tp);
        let need_v = need(self);
        let red = self.b.ins().icmp(IntCC::UnsignedLessThan, tp1, need_v);
        let yel = self.b.ins().icmp(IntCC::UnsignedLessThan, tc1, need_v);
        let tp_less = self.b.ins().isub(tp1, need_v);
        let tp2 = self.b.ins().select(red, tp1, tp_less);
        let tc_less = self.b.ins().isub(tc1, need_v);
        let tc_g = self.b.ins().select(yel, tc1, tc_less);
        let tc2 = self.b.ins().select(red, tc1, tc_g);
        self.b.ins().store(t, tc2, p, ml::TR_TC);
        self.b.ins().store(t, tp2, p, ml::TR_TP);
        let (c0, c1, c2) = (self.iconst(0), self.iconst(1), self.iconst(2));
        let not_red = self.b.ins().select(yel, c1, c0);
        let c = self.b.ins().select(red, c2, not_red);
        self.b.ins().jump(merge, &[c.into()]);
        self.b.switch_to_block(merge);
        color
    }

    /// The first cell's address of array `k` of the frame's array list at
    /// `field` (`Frame::counters`, `Frame::meters`). The array has the
    /// size the program declares (the runtime makes it so and never
    /// resizes it; `Pipeline` checks it whenever it takes the views).
    fn array_base(&mut self, field: i32, k: usize) -> Value {
        let arrays = self.b.ins().load(self.ptr, self.mem.frame, self.fr, field);
        self.b.ins().load(self.ptr, self.mem.frame, arrays, (16 * k) as i32)
    }

    /// Go on where `idx` is below `size`, else count an index error and
    /// jump to `out` with `args`. No test where `bound` (the index's
    /// largest value) is below `size`.
    fn check_index(&mut self, idx: Value, bound: u64, size: u64, out: Block, args: &[BlockArg]) {
        if bound < size {
            return;
        }
        let inside = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, idx, size as i64);
        let (yes, no) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(inside, yes, &[], no, &[]);
        self.b.switch_to_block(no);
        self.count_index_error();
        self.b.ins().jump(out, args);
        self.b.switch_to_block(yes);
    }

    /// Write the running packet's `Outcome` (at `frame.outcomes[i]`) for
    /// the parser's `code`: a parse error, else from the standard
    /// metadata in `verdict`'s order (drop, flood, uplink, a LIF, no
    /// route), counting parse errors, drops and packets without a route;
    /// the recirculations (`recirculate as u8`, at most 7) and the cost
    /// (at most `u32::MAX`). Ends in the block after it.
    fn outcome(&mut self, i_var: Variable, code: Value) {
        let t = MemFlagsData::trusted();
        let i = self.b.use_var(i_var);
        let outs = self.b.ins().load(self.ptr, self.mem.frame, self.fr, frame::OUTCOMES);
        let at = mul_imm(&mut self.b, i, frame::OUT_SIZE);
        let o = self.b.ins().iadd(outs, at);
        let cost = self.b.ins().load(I64, self.mem.cost, self.fr, frame::COST);
        let cap = self.iconst(u64::from(u32::MAX));
        let cost = self.b.ins().umin(cost, cap);
        let cost = self.b.ins().ireduce(I32, cost);
        self.b.ins().store(t, cost, o, frame::OUT_COST);
        self.meta_store(usize::from(std_meta::PARSER_ERROR), code);
        let tag_of = |v: Verdict| i64::from(v.tag());
        let fin = self.b.create_block();
        let tag = self.b.append_block_param(fin, I16);
        let recirc = self.b.append_block_param(fin, I64);
        let (perr, ok) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(code, perr, &[], ok, &[]);
        // The parser refused it: no pass ran.
        self.b.switch_to_block(perr);
        self.count_stat(frame::ST_PARSE_ERRORS);
        let v = self.b.ins().iconst(I16, tag_of(Verdict::ParseError));
        let zero = self.iconst(0);
        self.b.ins().jump(fin, &[v.into(), zero.into()]);
        self.b.switch_to_block(ok);
        let r = self.meta_load(usize::from(std_meta::RECIRCULATE));
        let r = self.b.ins().band_imm_s(r, 0xff);
        let seven = self.iconst(7);
        let r = self.b.ins().umin(r, seven);
        let drop = self.meta_load(usize::from(std_meta::DROP));
        let (dropped, c1) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(drop, dropped, &[], c1, &[]);
        self.b.switch_to_block(dropped);
        self.count_stat(frame::ST_DROPS);
        let v = self.b.ins().iconst(I16, tag_of(Verdict::Drop));
        self.b.ins().jump(fin, &[v.into(), r.into()]);
        self.b.switch_to_block(c1);
        let flood = self.meta_load(usize::from(std_meta::FLOOD));
        let c2 = self.b.create_block();
        let v = self.b.ins().iconst(I16, tag_of(Verdict::Flood));
        self.b.ins().brif(flood, fin, &[v.into(), r.into()], c2, &[]);
        self.b.switch_to_block(c2);
        let up = self.meta_load(usize::from(std_meta::TO_UPLINK));
        let c3 = self.b.create_block();
        let v = self.b.ins().iconst(I16, tag_of(Verdict::ToUplink));
        self.b.ins().brif(up, fin, &[v.into(), r.into()], c3, &[]);
        self.b.switch_to_block(c3);
        let eg = self.meta_load(usize::from(std_meta::EGRESS_LIF));
        let none = self.b.ins().icmp_imm_s(IntCC::Equal, eg, std_meta::LIF_NONE as i64);
        let (to_lif, no_route) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(none, no_route, &[], to_lif, &[]);
        self.b.switch_to_block(to_lif);
        let lif = self.b.ins().ireduce(I16, eg);
        self.b.ins().store(t, lif, o, frame::OUT_LIF);
        let v = self.b.ins().iconst(I16, tag_of(Verdict::ToLif(0)));
        self.b.ins().jump(fin, &[v.into(), r.into()]);
        self.b.switch_to_block(no_route);
        self.count_stat(frame::ST_NO_ROUTE);
        let v = self.b.ins().iconst(I16, tag_of(Verdict::NoRoute));
        self.b.ins().jump(fin, &[v.into(), r.into()]);
        self.b.switch_to_block(fin);
        self.b.ins().store(t, tag, o, frame::OUT_TAG);
        let r8 = self.b.ins().ireduce(I8, recirc);
        self.b.ins().store(t, r8, o, frame::OUT_RECIRC);
    }

    /// Count an index outside a counter or meter array
    /// (`Stats::index_errors`).
    fn count_index_error(&mut self) {
        self.count_stat(frame::ST_INDEX_ERRORS);
    }

    /// Add one to the `Stats` field at `at` (`frame::ST_*`).
    fn count_stat(&mut self, at: i32) {
        let t = MemFlagsData::trusted();
        let e = self.b.ins().load(self.ptr, self.mem.frame, self.fr, frame::STATS);
        let x = self.b.ins().load(I64, t, e, at);
        let x = self.b.ins().iadd_imm_s(x, 1);
        self.b.ins().store(t, x, e, at);
    }

    /// A meter's time since its last update at `last` (0 if the clock is
    /// not past it), and whether it is past (then `last` moves to now).
    fn meter_elapsed(&mut self, p: Value, last_at: i32) -> (Value, Value) {
        let t = MemFlagsData::trusted();
        let now = self.b.ins().load(I64, self.mem.frame, self.fr, frame::NOW);
        let last = self.b.ins().load(I64, t, p, last_at);
        let later = self.b.ins().icmp(IntCC::UnsignedGreaterThan, now, last);
        let d = self.b.ins().isub(now, last);
        let zero = self.iconst(0);
        let dt = self.b.ins().select(later, d, zero);
        let last = self.b.ins().select(later, now, last);
        self.b.ins().store(t, last, p, last_at);
        (dt, later)
    }

    /// `dt * rate` tokens, capped at `cap` (the 128-bit product compared,
    /// as `meter::refill` does).
    fn refill(&mut self, dt: Value, rate: Value, cap: Value) -> Value {
        let lo = self.b.ins().imul(dt, rate);
        let hi = self.b.ins().umulhi(dt, rate);
        let over = self.b.ins().icmp_imm_s(IntCC::NotEqual, hi, 0);
        let at_cap = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, lo, cap);
        let big = self.b.ins().bor(over, at_cap);
        self.b.ins().select(big, cap, lo)
    }

    /// `a.saturating_add(b)` on u64.
    fn sat_add(&mut self, a: Value, b: Value) -> Value {
        let s = self.b.ins().iadd(a, b);
        let wrapped = self.b.ins().icmp(IntCC::UnsignedLessThan, s, a);
        let max = self.iconst(u64::MAX);
        self.b.ins().select(wrapped, max, s)
    }

    fn action_body(&mut self, a: &ActionDef, params: Value) {
        let saved = self.params.replace(params);
        self.block(&a.body);
        self.params = saved;
    }

    /// The key part of one table key field, as (low, high) 64-bit halves.
    fn key_part(&mut self, k: &KeyDef) -> (Value, Value) {
        let zero = self.iconst(0);
        match k.expr {
            KeyExpr::Valid(h) => (self.valid_bit(usize::from(h)), zero),
            KeyExpr::Field(FieldRef::Meta(f)) => (self.meta_load(usize::from(f)), zero),
            KeyExpr::Field(FieldRef::Header { header, field }) => {
                let (h, f) = (usize::from(header), usize::from(field));
                let (_, span, _, _, _) = self.locs[h][f].parts();
                if span <= 8 {
                    (self.field(h, f), zero)
                } else {
                    let packed = self.packed(h, f);
                    let lo = self.if_valid(h, |s| s.wide(h, packed, 0));
                    let hi = self.if_valid(h, |s| s.wide(h, packed, 1));
                    (lo, hi)
                }
            }
        }
    }

    /// `(lo, hi) << w` on 128 bits.
    fn shl128(&mut self, lo: Value, hi: Value, w: u32) -> (Value, Value) {
        match w {
            0 => (lo, hi),
            128.. => {
                let z = self.iconst(0);
                (z, z)
            }
            64..=127 => {
                let z = self.iconst(0);
                let h = if w == 64 {
                    lo
                } else {
                    self.b.ins().ishl_imm_s(lo, i64::from(w - 64))
                };
                (z, h)
            }
            _ => {
                let h = self.b.ins().ishl_imm_s(hi, i64::from(w));
                let carry = self.b.ins().ushr_imm_s(lo, i64::from(64 - w));
                let h = self.b.ins().bor(h, carry);
                (self.b.ins().ishl_imm_s(lo, i64::from(w)), h)
            }
        }
    }

    /// Count a hit or a miss of table `t` in place (`Frame::hits`).
    fn count_lookup(&mut self, t: usize, hit: bool) {
        let tr = MemFlagsData::trusted();
        let hits = self.b.ins().load(self.ptr, self.mem.frame, self.fr, frame::HITS);
        let at = (16 * t) as i32 + if hit { frame::CELL_PACKETS } else { frame::CELL_BYTES };
        let n = self.b.ins().load(I64, tr, hits, at);
        let n = self.b.ins().iadd_imm_s(n, 1);
        self.b.ins().store(tr, n, hits, at);
    }

    /// Count the running packet (1, its length) in cell `slot` of counter
    /// array `c`, a table's direct counter, in place. `slot` is a matched
    /// entry's (the exact probe's flat index or the helper's
    /// `Table::lookup_slot`): every entry's slot is below the table's size
    /// (`Table::insert` refuses an entry past it and hands out the slots
    /// below it), which the validator holds equal to the array's size,
    /// which `Pipeline` holds equal to the array's length. The compare
    /// below costs one predicted branch and keeps a broken invariant from
    /// writing outside the array: a slot outside counts nothing, as the
    /// reference executor's `get_mut` does.
    fn count_direct(&mut self, c: usize, slot: Value) {
        let size = u64::from(self.prog.counters[c].size);
        let (yes, merge) = (self.b.create_block(), self.b.create_block());
        let inside = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, slot, size as i64);
        self.b.ins().brif(inside, yes, &[], merge, &[]);
        self.b.switch_to_block(yes);
        let base = self.array_base(frame::COUNTERS, c);
        self.count_cell(base, slot);
        self.b.ins().jump(merge, &[]);
        self.b.switch_to_block(merge);
    }

    /// Add (1, the packet's length) to the counter cell `idx` of the
    /// array at `base` (checked by the caller).
    fn count_cell(&mut self, base: Value, idx: Value) {
        let t = MemFlagsData::trusted();
        let o = self.b.ins().ishl_imm_s(idx, 4);
        let cell = self.b.ins().iadd(base, o);
        let p = self.b.ins().load(I64, t, cell, frame::CELL_PACKETS);
        let p = self.b.ins().iadd_imm_s(p, 1);
        self.b.ins().store(t, p, cell, frame::CELL_PACKETS);
        let bytes = self.b.ins().load(I64, t, cell, frame::CELL_BYTES);
        let len = self.frame_len();
        let bytes = self.b.ins().iadd(bytes, len);
        self.b.ins().store(t, bytes, cell, frame::CELL_BYTES);
    }

    /// Look the key `hi:lo` up in exact table `t`'s index (the table's
    /// `ExactView`, taken again after every table change) in the generated code: hash, probe
    /// from the home slot to the key or a free slot. A hit sets `act_v`
    /// and `par_v` (the flat entry's action and arguments) and goes to
    /// `hit_b`; a miss to `miss_b`; both counted. With `slot_v`, a hit
    /// sets it to the entry's slot: the flat entry's index, which is the
    /// slot `Table::lookup_slot` gives (the cell of the table's direct
    /// arrays).
    #[allow(clippy::too_many_arguments)]
    fn exact_probe(
        &mut self,
        t: usize,
        lo: Value,
        hi: Value,
        act_v: Variable,
        par_v: Variable,
        slot_v: Option<Variable>,
        hit_b: Block,
        miss_b: Block,
    ) {
        let tr = MemFlagsData::trusted();
        let views = self.b.ins().load(self.ptr, self.mem.frame, self.fr, frame::TABLES);
        let at = (32 * t) as i32;
        let slots = self.b.ins().load(self.ptr, tr, views, at);
        let mask = self.b.ins().load(I64, tr, views, at + 8);
        let flat = self.b.ins().load(self.ptr, tr, views, at + 16);
        let shift = self.b.ins().load(I64, tr, views, at + 24);
        let stride = 8 * (1 + max_params(self.prog, &self.prog.tables[t])) as i64;
        // The hash `table::exact_hash` computes.
        let r = self.b.ins().rotl_imm_s(hi, 29);
        let x = self.b.ins().bxor(lo, r);
        let x = self.b.ins().bxor_imm_s(x, HASH_MIX as i64);
        let k = self.iconst(HASH_MUL);
        let h = self.b.ins().imul(x, k);
        // The product's top bits (`ExactIndex::home`): the view's shift
        // is 64 - log2(slots), from 61 (8 slots) down, so the home slot
        // is below the slots.
        let home = self.b.ins().ushr(h, shift);
        // Two slots a step (`i` and the one after it, wrapping), compared
        // without a branch between them: a key at its home slot or the
        // next one (most keys of a table at most half full) is found
        // with one predictable branch, not a probe loop whose trip count
        // the branch predictor has to guess per key.
        let size = std::mem::size_of::<Slot>() as i64;
        let (lo_at, hi_at, idx_at) = (
            std::mem::offset_of!(Slot, lo) as i32,
            std::mem::offset_of!(Slot, hi) as i32,
            std::mem::offset_of!(Slot, idx) as i32,
        );
        // A key of 64 bits or fewer has a zero high half, and so has every
        // slot's (a free slot's too).
        let wide = self.prog.tables[t].keys.iter().map(|k| u32::from(k.width)).sum::<u32>() > 64;
        let probe = self.b.create_block();
        let i = self.b.append_block_param(probe, I64);
        self.b.ins().jump(probe, &[home.into()]);
        self.b.switch_to_block(probe);
        let j = self.b.ins().iadd_imm_s(i, 1);
        let j = self.b.ins().band(j, mask);
        let [a, b] = [i, j].map(|k| {
            let off = mul_imm(&mut self.b, k, size);
            self.b.ins().iadd(slots, off)
        });
        let [a_idx, b_idx] = [a, b].map(|s| self.b.ins().uload32(tr, s, idx_at));
        let [ka, kb] = [a, b].map(|s| {
            let l = self.b.ins().load(I64, tr, s, lo_at);
            let e = self.b.ins().icmp(IntCC::Equal, l, lo);
            if wide {
                let h = self.b.ins().load(I64, tr, s, hi_at);
                let eh = self.b.ins().icmp(IntCC::Equal, h, hi);
                self.b.ins().band(e, eh)
            } else {
                e
            }
        });
        // The key's entry: in `a` if it matches, else in `b` if that
        // matches. A free slot's key can equal the one looked for (all
        // zeros): its index is EMPTY and the probe ends there as a miss.
        // The key cannot be in `b` with `a` free (a probe run has no
        // gaps), so `b`'s match needs no test of `a`.
        let idx = self.b.ins().select(ka, a_idx, b_idx);
        let k = self.b.ins().bor(ka, kb);
        let taken = self.b.ins().icmp_imm_s(IntCC::NotEqual, idx, i64::from(EMPTY));
        let hit = self.b.ins().band(k, taken);
        let (found, look_on, missed) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        self.b.ins().brif(hit, found, &[], look_on, &[]);
        // Not found: a free slot of the two ends the probe, else on to the
        // next two.
        self.b.switch_to_block(look_on);
        let [ea, eb] = [a_idx, b_idx].map(|x| self.b.ins().icmp_imm_s(IntCC::Equal, x, i64::from(EMPTY)));
        let end = self.b.ins().bor(ea, eb);
        let next = self.b.create_block();
        self.b.ins().brif(end, missed, &[], next, &[]);
        self.b.switch_to_block(next);
        let i2 = self.b.ins().iadd_imm_s(j, 1);
        let i2 = self.b.ins().band(i2, mask);
        self.b.ins().jump(probe, &[i2.into()]);
        self.b.switch_to_block(found);
        self.count_lookup(t, true);
        if let Some(v) = slot_v {
            self.b.def_var(v, idx);
        }
        let eo = mul_imm(&mut self.b, idx, stride);
        let entry = self.b.ins().iadd(flat, eo);
        let action = self.b.ins().load(I64, tr, entry, 0);
        self.b.def_var(act_v, action);
        let args = self.b.ins().iadd_imm_s(entry, 8);
        self.b.def_var(par_v, args);
        self.b.ins().jump(hit_b, &[]);
        self.b.switch_to_block(missed);
        self.count_lookup(t, false);
        self.b.ins().jump(miss_b, &[]);
    }

    fn apply(&mut self, t: usize, on_hit: &[Stmt], on_miss: &[Stmt]) {
        let prog = self.prog;
        let def = &prog.tables[t];
        self.add_cost(def.cost);
        let (hit_b, miss_b, after) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        // An empty table: a miss, counted here, no call.
        let tr = MemFlagsData::trusted();
        let lens = self.b.ins().load(self.ptr, self.mem.frame, self.fr, frame::TABLE_LENS);
        let n = self.b.ins().load(I64, tr, lens, (8 * t) as i32);
        let (look, empty) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(n, look, &[], empty, &[]);
        self.b.switch_to_block(empty);
        self.count_lookup(t, false);
        self.b.ins().jump(miss_b, &[]);
        self.b.switch_to_block(look);
        let mut lo = self.iconst(0);
        let mut hi = lo;
        for k in &def.keys {
            let w = u32::from(k.width);
            (lo, hi) = self.shl128(lo, hi, w);
            let (plo, phi) = self.key_part(k);
            // The part's bits: `w` low bits of (phi:plo).
            let (mlo, mhi) = match w {
                0..=63 => (mask64(w as u16), 0),
                64..=127 => (u64::MAX, mask64((w - 64) as u16)),
                _ => (u64::MAX, u64::MAX),
            };
            let plo = self.mask(plo, mlo);
            lo = self.b.ins().bor(lo, plo);
            if mhi != 0 {
                let phi = self.mask(phi, mhi);
                hi = self.b.ins().bor(hi, phi);
            }
        }
        // The hit's action and where its arguments are, from whichever
        // lookup found it.
        let act_v = self.b.declare_var(I64);
        let par_v = self.b.declare_var(self.ptr);
        // The hit's slot, only for a table with direct resources (the
        // code of every other table is what it was without them).
        let direct = def.direct_counter.is_some() || def.direct_meter.is_some();
        let slot_v = direct.then(|| self.b.declare_var(I64));
        if def.keys.iter().all(|k| k.kind == MatchKind::Exact) {
            self.exact_probe(t, lo, hi, act_v, par_v, slot_v, hit_b, miss_b);
        } else {
            let t_v = self.iconst(t as u64);
            let params = self.b.ins().stack_addr(self.ptr, self.apply_params, 0);
            let sig = self.sigs.apply;
            let r = self
                .call(sig, Helpers::APPLY as usize, &[self.fr, t_v, lo, hi, params])
                .expect("returns a value");
            let action = self.b.ins().band_imm_s(r, 0xffff);
            self.b.def_var(act_v, action);
            self.b.def_var(par_v, params);
            if let Some(v) = slot_v {
                // The helper's bits 33 and up: the entry's slot.
                let slot = self.b.ins().ushr_imm_s(r, 33);
                self.b.def_var(v, slot);
            }
            let hit = self.b.ins().ushr_imm_s(r, 32);
            self.b.ins().brif(hit, hit_b, &[], miss_b, &[]);
        }

        // A miss: the default action with its arguments, then `on_miss`.
        self.b.switch_to_block(miss_b);
        let da = &prog.actions[usize::from(def.default_action)];
        if !da.params.is_empty() {
            for (k, &a) in def.default_args.iter().enumerate().take(limits::PARAMS) {
                let v = self.iconst(a);
                self.b.ins().stack_store(self.ptr, v, self.apply_params, (8 * k) as i32);
            }
        }
        self.add_cost(da.cost);
        let base = self.b.ins().stack_addr(self.ptr, self.apply_params, 0);
        self.action_body(da, base);
        self.block(on_miss);
        self.b.ins().jump(after, &[]);

        // A hit: the entry's direct counter, its action (with the entry's
        // slot for a direct meter), then `on_hit`.
        self.b.switch_to_block(hit_b);
        let slot = slot_v.map(|v| self.b.use_var(v));
        if let (Some(c), Some(slot)) = (def.direct_counter, slot) {
            self.count_direct(usize::from(c), slot);
        }
        let saved_slot = self.slot;
        self.slot = if def.direct_meter.is_some() { slot } else { None };
        let action = self.b.use_var(act_v);
        let params = self.b.use_var(par_v);
        let mut candidates: Vec<u16> = def.actions.clone();
        candidates.extend(def.entries.iter().map(|e| e.action));
        candidates.push(def.default_action);
        candidates.sort_unstable();
        candidates.dedup();
        let hit_after = self.b.create_block();
        for a in candidates {
            let Some(ad) = prog.actions.get(usize::from(a)) else {
                continue;
            };
            let (this, next) = (self.b.create_block(), self.b.create_block());
            let is = self.b.ins().icmp_imm_s(IntCC::Equal, action, i64::from(a));
            self.b.ins().brif(is, this, &[], next, &[]);
            self.b.switch_to_block(this);
            self.add_cost(ad.cost);
            self.action_body(ad, params);
            self.b.ins().jump(hit_after, &[]);
            self.b.switch_to_block(next);
        }
        // An action the table cannot hold: nothing to run (the control
        // plane refuses such entries).
        self.b.ins().jump(hit_after, &[]);
        self.slot = saved_slot;
        self.b.switch_to_block(hit_after);
        self.block(on_hit);
        self.b.ins().jump(after, &[]);
        self.b.switch_to_block(after);
    }
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn pieces_cover_the_span_with_the_widest_loads() {
        let p = |s| pieces(s).collect::<Vec<_>>();
        assert_eq!(p(1), [(0, 1)]);
        assert_eq!(p(3), [(0, 2), (2, 1)]);
        assert_eq!(p(6), [(0, 4), (4, 2)]);
        assert_eq!(p(7), [(0, 4), (4, 2), (6, 1)]);
        assert_eq!(p(8), [(0, 8)]);
    }
}

/// What the parser's state graph proves, for the code generator: computed
/// over the states reachable from `start` as the reference executor walks
/// them.
#[derive(Debug)]
pub(crate) struct ParserFacts {
    /// No path through the parser visits more than `PARSE_STEPS` states
    /// (the graph is acyclic and its longest path is short enough): the
    /// step count cannot time out and is not kept.
    pub(crate) bounded: bool,
    /// Per state, headers some path into it has extracted (a bit each).
    pub(crate) may: Vec<u64>,
    /// Per state, headers every path into it has extracted (0 for a state
    /// no path reaches).
    pub(crate) must: Vec<u64>,
    /// Headers every path to `accept` has extracted.
    pub(crate) at_accept: u64,
}

impl ParserFacts {
    pub(crate) fn of(prog: &Program) -> ParserFacts {
        let n = prog.parser.len();
        // Per state, once: the states it may go to, whether it may accept,
        // the headers it extracts.
        let mut succ: Vec<Vec<usize>> = Vec::with_capacity(n);
        let mut accepts: Vec<bool> = Vec::with_capacity(n);
        let mut ext: Vec<u64> = Vec::with_capacity(n);
        for s in &prog.parser {
            let nexts = s.transition.nexts();
            accepts.push(nexts.contains(&Next::Accept));
            succ.push(
                nexts
                    .iter()
                    .filter_map(|x| match *x {
                        Next::State(k) if usize::from(k) < n => Some(usize::from(k)),
                        _ => None,
                    })
                    .collect(),
            );
            ext.push(s.ops.iter().fold(0, |a, op| match op {
                ParserOp::Extract(h) => a | (1 << h),
                ParserOp::Assign { .. } => a,
            }));
        }
        let mut reach = vec![false; n];
        let mut may = vec![0u64; n];
        let mut must = vec![u64::MAX; n];
        if n == 0 {
            return ParserFacts {
                bounded: true,
                may,
                must: vec![],
                at_accept: 0,
            };
        }
        reach[0] = true;
        must[0] = 0;
        // Fixpoint: `may` grows by union, `must` shrinks by intersection;
        // both are monotone over a finite lattice.
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..n {
                if !reach[i] {
                    continue;
                }
                let (out_may, out_must) = (may[i] | ext[i], must[i] | ext[i]);
                for &k in &succ[i] {
                    let (m, u) = (may[k] | out_may, if reach[k] { must[k] & out_must } else { out_must });
                    if !reach[k] || m != may[k] || u != must[k] {
                        reach[k] = true;
                        may[k] = m;
                        must[k] = u;
                        changed = true;
                    }
                }
            }
        }
        let mut at_accept = u64::MAX;
        let mut any_accepts = false;
        for i in (0..n).filter(|&i| reach[i] && accepts[i]) {
            any_accepts = true;
            at_accept &= must[i] | ext[i];
        }
        if !any_accepts {
            at_accept = 0;
        }
        for i in 0..n {
            if !reach[i] {
                must[i] = 0;
            }
        }
        // Longest path in states, by depth-first search; a cycle among the
        // reachable states means unbounded.
        fn depth(i: usize, succ: &[Vec<usize>], memo: &mut [Option<usize>], on: &mut [bool]) -> Option<usize> {
            if on[i] {
                return None;
            }
            if let Some(d) = memo[i] {
                return Some(d);
            }
            on[i] = true;
            let mut best = 1;
            for &k in &succ[i] {
                best = best.max(1 + depth(k, succ, memo, on)?);
            }
            on[i] = false;
            memo[i] = Some(best);
            Some(best)
        }
        let mut memo = vec![None; n];
        let mut on = vec![false; n];
        let bounded = depth(0, &succ, &mut memo, &mut on).is_some_and(|d| d <= limits::PARSE_STEPS);
        ParserFacts {
            bounded,
            may,
            must,
            at_accept,
        }
    }
}
