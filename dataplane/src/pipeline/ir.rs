//! The pipeline IR: what the P4 front end (`p4` crate) produces and the
//! device loads (`PipelineLoad`) and executes ([`super::Pipeline`]).
//!
//! Everything is numbered: header instances, fields, parser states,
//! actions, tables, meters and counters are indices into the program's
//! vectors, so the executor resolves nothing by name at run time. An image
//! is the program encoded with `postcard`, flattened (`image.rs`: decoding
//! never recurses), behind a magic and a version ([`Program::to_image`],
//! [`Program::from_image`]); a decoded program is checked
//! ([`Program::validate`]) before anything executes it, since it arrives
//! from the host.
//!
//! Values are at most 64 bits wide in expressions (a field wider than that,
//! such as an IPv6 address, can be extracted and carried, and matched as a
//! table key of up to 128 bits, but not computed with). Header fields are
//! big-endian bit strings at fixed bit offsets in their header.

use serde::{Deserialize, Serialize};

/// The first bytes of an image.
pub const IMAGE_MAGIC: [u8; 4] = *b"FNP4";
/// The IR version an image carries; the executor loads only its own.
pub const IR_VERSION: u16 = 2;

/// Limits a valid program stays within (the device's resources).
pub mod limits {
    /// Header instances.
    pub const HEADERS: usize = 32;
    /// Fields of one header.
    pub const FIELDS_PER_HEADER: usize = 64;
    /// Header length, bytes.
    pub const HEADER_BYTES: usize = 64;
    /// Metadata fields, the standard ones included.
    pub const META_FIELDS: usize = 128;
    /// Parser states.
    pub const STATES: usize = 64;
    /// Actions.
    pub const ACTIONS: usize = 256;
    /// Parameters of one action.
    pub const PARAMS: usize = 8;
    /// Tables.
    pub const TABLES: usize = 64;
    /// Key fields of one table, and keys of one `select`.
    pub const KEYS: usize = 8;
    /// Key width of a table, bits (all its key fields together).
    pub const KEY_BITS: u32 = 128;
    /// Entries one table may hold (its `size`).
    pub const TABLE_SIZE: u32 = 1 << 20;
    /// Meter arrays.
    pub const METERS: usize = 16;
    /// Counter arrays.
    pub const COUNTERS: usize = 64;
    /// Cells of one meter or counter array.
    pub const ARRAY_SIZE: u32 = 1 << 20;
    /// Parser states one packet may visit (P4 parsers may loop).
    pub const PARSE_STEPS: usize = 32;
    /// Expression nesting.
    pub const EXPR_DEPTH: usize = 32;
    /// Statement nesting.
    pub const BLOCK_DEPTH: usize = 16;
    /// Statements of the ingress control and every action body together,
    /// nested ones included.
    pub const STMTS: usize = 4096;
    /// Most cost units one `@cost` annotation (or the base cost) may
    /// charge.
    pub const COST: u32 = 65_535;
    /// Most cost units one pass of one packet can be charged, along the
    /// costliest path through the program (checked at load, so the sums
    /// cannot overflow and no image can make a packet free or endless).
    pub const PACKET_COST: u64 = 1_000_000;
    /// The largest pipeline image the device takes, bytes (`PipelineLoad`'s
    /// `total_len`; the device allocates this much when the first chunk
    /// arrives, and no more).
    pub const IMAGE_BYTES: u32 = 16 << 20;
    /// The device's state budget for one program, bytes: its meter and
    /// counter arrays, and its tables at full size, must fit. A small
    /// image cannot make the device allocate more.
    pub const STATE_BYTES: u64 = 64 << 20;
    /// What a table entry of capacity counts against [`STATE_BYTES`]
    /// (key, mask, priority and action as stored, with map overhead).
    pub const TABLE_ENTRY_BYTES: u64 = 96;
    /// What a counter cell counts (packets and bytes).
    pub const COUNTER_BYTES: u64 = 16;
}

/// A compiled P4 program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// The program's name (its source file's stem).
    pub name: String,
    /// Header instances (the members of the parser's headers struct), in
    /// declaration order.
    pub headers: Vec<HeaderDef>,
    /// Metadata fields: the architecture's standard metadata first (see
    /// [`std_meta`]), then the program's user metadata, each held in a
    /// 64-bit slot.
    pub meta: Vec<FieldDef>,
    /// Parser states; state 0 is `start`.
    pub parser: Vec<ParserState>,
    /// Actions, indexed by calls, tables and their entries.
    pub actions: Vec<ActionDef>,
    /// Tables, indexed by [`Stmt::Apply`] and by `TableEntry::table_id`.
    pub tables: Vec<TableDef>,
    /// Meter arrays, indexed by [`Stmt::Meter`].
    pub meters: Vec<MeterDef>,
    /// Counter arrays, indexed by [`Stmt::Count`].
    pub counters: Vec<CounterDef>,
    /// The ingress control's apply block.
    pub ingress: Vec<Stmt>,
    /// Header instances in the order the deparser emits them.
    pub deparse: Vec<u16>,
    /// Cost units every packet is charged (egress, DMA set-up).
    pub base_cost: u32,
}

/// A header instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderDef {
    /// Instance name, e.g. `ipv4` (member of the headers struct).
    pub name: String,
    /// Header type name, e.g. `ipv4_t`.
    pub type_name: String,
    /// Fields in order from the header's first bit; their widths cover it
    /// exactly.
    pub fields: Vec<FieldDef>,
    /// Length in bytes (the fields' widths sum to 8x this).
    pub len: u16,
}

/// A field: `width` bits at `bit_off` from the start of its header
/// (metadata fields: `bit_off` is 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    /// Field name as declared.
    pub name: String,
    /// Offset of the field's first (most significant) bit from the start of
    /// its header, bits.
    pub bit_off: u16,
    /// Width in bits (metadata: 1..=64).
    pub width: u16,
}

/// The standard metadata every program starts its `meta` with, in this
/// order (the architecture file `fairnic_arch.p4` declares them).
pub mod std_meta {
    /// (name, width)
    pub const FIELDS: [(&str, u16); 8] = [
        ("ingress_lif", 16),
        ("egress_lif", 16),
        ("to_uplink", 1),
        ("flood", 1),
        ("drop", 1),
        ("recirculate", 8),
        ("packet_length", 32),
        ("parser_error", 8),
    ];
    /// Index of `ingress_lif` in `meta`: the LIF that sent the packet
    /// ([`LIF_NONE`] for the wire); set by the device.
    pub const INGRESS_LIF: u16 = 0;
    /// Index of `egress_lif`: the LIF to deliver to; [`LIF_NONE`] until the
    /// program sets it.
    pub const EGRESS_LIF: u16 = 1;
    /// Index of `to_uplink`: nonzero sends the packet out of the uplink
    /// (over `egress_lif`).
    pub const TO_UPLINK: u16 = 2;
    /// Index of `flood`: nonzero floods the packet (over `to_uplink` and
    /// `egress_lif`).
    pub const FLOOD: u16 = 3;
    /// Index of `drop`: nonzero drops the packet (`mark_to_drop`); it
    /// overrides every other destination.
    pub const DROP: u16 = 4;
    /// Index of `recirculate`: extra passes the program asks for (at most 7
    /// are taken).
    pub const RECIRCULATE: u16 = 5;
    /// Index of `packet_length`: the frame's length in bytes; set by the
    /// device.
    pub const PACKET_LENGTH: u16 = 6;
    /// Index of `parser_error`: the parser's error code (0: none); set by the
    /// device.
    pub const PARSER_ERROR: u16 = 7;
    /// `egress_lif` before the program sets it, and `ingress_lif` of a
    /// frame from the wire.
    pub const LIF_NONE: u64 = 0xffff;

    /// The standard metadata as the first fields of a program's `meta`.
    pub fn defs() -> Vec<super::FieldDef> {
        FIELDS
            .iter()
            .map(|&(n, w)| super::FieldDef {
                name: n.into(),
                bit_off: 0,
                width: w,
            })
            .collect()
    }
}

/// A field reference, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldRef {
    /// Field `field` of header instance `header`.
    Header {
        /// Index into [`Program::headers`].
        header: u16,
        /// Index into that header's `fields`.
        field: u16,
    },
    /// Metadata field.
    Meta(u16),
}

/// A parser state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParserState {
    /// State name as declared.
    pub name: String,
    /// `@cost(n)`: charged each time a packet passes this state.
    pub cost: u32,
    /// What the state does, in order.
    pub ops: Vec<ParserOp>,
    /// Where the packet goes after the ops.
    pub transition: Transition,
}

/// A parser statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParserOp {
    /// `pkt.extract(hdr.<header>)`.
    Extract(u16),
    /// An assignment to a metadata field.
    Assign {
        /// The metadata field written (not one the device sets).
        dst: FieldRef,
        /// The value, truncated to the field's width.
        value: Expr,
    },
}

/// Where a parser state goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transition {
    /// Go to this destination unconditionally.
    Next(Next),
    /// `transition select(keys) { cases; default }`: the first case whose
    /// every `(value, mask)` matches its key.
    Select {
        /// The expressions matched, at most [`limits::KEYS`].
        keys: Vec<Expr>,
        /// The cases, in order: the first that matches wins.
        cases: Vec<SelectCase>,
        /// Where to go when no case matches.
        default: Next,
    },
}

impl Transition {
    /// Every destination the transition may take: each case's, then the
    /// default.
    pub fn nexts(&self) -> Vec<Next> {
        match self {
            Transition::Next(x) => vec![*x],
            Transition::Select { cases, default, .. } => {
                cases.iter().map(|c| c.next).chain(std::iter::once(*default)).collect()
            }
        }
    }
}

/// A destination of a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Next {
    /// End parsing: the packet goes on to the ingress control.
    Accept,
    /// A parser error: the packet is dropped and counted.
    Reject,
    /// Parser state, an index into [`Program::parser`].
    State(u16),
}

/// One case of a select: one `(value, mask)` per key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectCase {
    /// Per key, `(value, mask)`: the key matches when `key & mask == value &
    /// mask`.
    pub matches: Vec<(u64, u64)>,
    /// Where the case goes.
    pub next: Next,
}

/// An expression. Every value is a bit string of known width (<= 64)
/// held in a u64; arithmetic wraps at `width`; comparisons and logical
/// operators give a 1-bit 0 or 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expr {
    /// A constant.
    Const {
        /// Its bits, in the low `width` bits.
        value: u64,
        /// Width in bits, 1..=64.
        width: u16,
    },
    /// A field's value (a header field of a header that is not valid reads
    /// 0).
    Field(FieldRef),
    /// Parameter `n` of the running action.
    Param(u16),
    /// `hdr.<header>.isValid()`.
    Valid(u16),
    /// A unary operator applied.
    Unary {
        /// Which operator.
        op: UnOp,
        /// The operand.
        arg: Box<Expr>,
        /// Result width in bits, 1..=64.
        width: u16,
    },
    /// A binary operator applied.
    Binary {
        /// Which operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
        /// Result width in bits (arithmetic wraps at it), 1..=64.
        width: u16,
    },
    /// `expr[hi:lo]`.
    Slice {
        /// The value sliced.
        arg: Box<Expr>,
        /// Highest bit kept, below 64.
        hi: u16,
        /// Lowest bit kept, at most `hi`.
        lo: u16,
    },
    /// `(bit<width>) expr`: truncate or zero-extend.
    Cast {
        /// The value cast.
        arg: Box<Expr>,
        /// The width cast to, 1..=64.
        width: u16,
    },
}

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnOp {
    /// `!` (logical).
    Not,
    /// `~` (bitwise).
    BitNot,
    /// `-` (two's complement at `width`).
    Neg,
}

/// A binary operator. Operands are unsigned; arithmetic and `<<` wrap at
/// the expression's width; comparisons and `&&`/`||` give 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `&` (bitwise).
    BitAnd,
    /// `|` (bitwise).
    BitOr,
    /// `^`.
    BitXor,
    /// `<<`; by 64 or more, 0.
    Shl,
    /// `>>` (logical); by 64 or more, 0.
    Shr,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<` (unsigned).
    Lt,
    /// `<=` (unsigned).
    Le,
    /// `>` (unsigned).
    Gt,
    /// `>=` (unsigned).
    Ge,
    /// `&&` (logical).
    And,
    /// `||` (logical).
    Or,
}

impl BinOp {
    /// Every operator.
    pub const ALL: [BinOp; 16] = [
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::BitAnd,
        BinOp::BitOr,
        BinOp::BitXor,
        BinOp::Shl,
        BinOp::Shr,
        BinOp::Eq,
        BinOp::Ne,
        BinOp::Lt,
        BinOp::Le,
        BinOp::Gt,
        BinOp::Ge,
        BinOp::And,
        BinOp::Or,
    ];
}

/// A statement of a control's apply block or an action body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stmt {
    /// `dst = value;` (the value is truncated to the destination's width).
    Assign {
        /// The field written (not one the device sets).
        dst: FieldRef,
        /// The value written.
        value: Expr,
    },
    /// `t.apply();`, or `if (t.apply().hit) { on_hit } else { on_miss }`.
    Apply {
        /// Index into [`Program::tables`].
        table: u16,
        /// Statements run for the packets an entry matched (after its action).
        on_hit: Vec<Stmt>,
        /// Statements run for the packets no entry matched (after the default
        /// action).
        on_miss: Vec<Stmt>,
    },
    /// `if (cond) { then } else { otherwise }`.
    If {
        /// The condition: true when nonzero.
        cond: Expr,
        /// Statements run for the packets `cond` holds for.
        then: Vec<Stmt>,
        /// Statements run for the others.
        otherwise: Vec<Stmt>,
    },
    /// A direct action call: `a(args);`.
    Call {
        /// Index into [`Program::actions`].
        action: u16,
        /// One argument per parameter.
        args: Vec<Expr>,
    },
    /// `mark_to_drop(std);`
    Drop,
    /// `c.count(index);`
    Count {
        /// Index into [`Program::counters`].
        counter: u16,
        /// The cell; outside the array the update is skipped and counted in
        /// [`Stats::index_errors`](super::Stats::index_errors).
        index: Expr,
    },
    /// `m.execute_meter(index, dst);` (dst gets 0 green, 1 yellow, 2 red).
    Meter {
        /// Index into [`Program::meters`].
        meter: u16,
        /// The cell; outside the array `dst` gets 0 and the miss is counted
        /// in [`Stats::index_errors`](super::Stats::index_errors).
        index: Expr,
        /// The field that receives the color.
        dst: FieldRef,
    },
    /// `m.read(dst);` of a direct meter, in the body of an action: runs
    /// the cell of the entry whose hit runs the action (dst gets 0 green, 1
    /// yellow, 2 red). Only actions of the table that has `meter` as its
    /// direct meter may read it, and no statement calls such an action
    /// directly; run as the table's default action on a miss, no meter runs
    /// and dst gets 0 (green).
    DirectMeter {
        /// Index into [`Program::meters`]: a table's `direct_meter`.
        meter: u16,
        /// The field that receives the color.
        dst: FieldRef,
    },
    /// `exit;`
    Exit,
}

/// An action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionDef {
    /// Action name as declared.
    pub name: String,
    /// Parameter names and widths; table entries carry their values.
    pub params: Vec<ParamDef>,
    /// Statements run when the action is called or chosen by a table (they
    /// apply no table and call no action).
    pub body: Vec<Stmt>,
    /// `@cost(n)`.
    pub cost: u32,
}

/// An action parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamDef {
    /// Parameter name as declared.
    pub name: String,
    /// Width in bits, 1..=64.
    pub width: u16,
}

/// How a table key field matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchKind {
    /// The field equals the entry's value.
    Exact,
    /// Longest prefix match: of the matching entries, the longest prefix wins
    /// (at most one LPM field per table).
    Lpm,
    /// Value and mask: of the matching entries, the largest priority wins.
    Ternary,
}

/// A table key field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDef {
    /// A field, or `isValid()` (width 1).
    pub expr: KeyExpr,
    /// How the field matches.
    pub kind: MatchKind,
    /// Width in bits: the field's, or 1 for `isValid()`; a table's key fields
    /// together have at most [`limits::KEY_BITS`].
    pub width: u16,
    /// As written in the source (`hdr.ethernet.dst_addr`), for the control
    /// plane.
    pub name: String,
}

/// What a table key field reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyExpr {
    /// A header or metadata field (a header field of a header that is not
    /// valid reads 0).
    Field(FieldRef),
    /// `hdr.<header>.isValid()` (1 bit), by header instance index.
    Valid(u16),
}

/// A table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    /// Table name as declared (the control plane names it so).
    pub name: String,
    /// Key fields; the first takes the high bits of the concatenated key.
    pub keys: Vec<KeyDef>,
    /// Actions an entry may name (indices into `Program::actions`).
    pub actions: Vec<u16>,
    /// Action run on a miss (index into [`Program::actions`]).
    pub default_action: u16,
    /// Its arguments, one per parameter.
    pub default_args: Vec<u64>,
    /// Most entries.
    pub size: u32,
    /// `@cost(n)`: charged on every apply.
    pub cost: u32,
    /// `const entries` / `entries` of the source.
    pub entries: Vec<EntryDef>,
    /// `counters = c;`: the counter array (index into
    /// [`Program::counters`]) that is this table's direct counter. It has
    /// one cell per entry (its size is the table's); every hit counts the
    /// packet in the cell of the entry that matched, a miss counts nothing.
    /// No statement indexes it, and no other table has it.
    pub direct_counter: Option<u16>,
    /// `meters = m;`: the meter array (index into [`Program::meters`]) that
    /// is this table's direct meter, one cell per entry as for
    /// `direct_counter`; [`Stmt::DirectMeter`] in an action the table runs
    /// colors the packet with the matched entry's cell.
    pub direct_meter: Option<u16>,
}

/// A table entry as the program states it (the control plane adds more
/// through `TableEntryAdd`). Key values and masks are per key field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDef {
    /// Per key field: value and mask (exact: all ones; LPM: the prefix as
    /// a mask of leading ones).
    pub key: Vec<(u128, u128)>,
    /// Ternary priority: larger wins.
    pub priority: u32,
    /// The action a hit runs, one of the table's `actions`.
    pub action: u16,
    /// Its arguments, one per parameter.
    pub args: Vec<u64>,
}

/// What a meter measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeterUnit {
    /// Each packet counts 1.
    Packets,
    /// Each packet counts its length in bytes.
    Bytes,
}

impl MeterUnit {
    /// The device's meter resource of this unit (a `MeterConfig`'s
    /// `resource` for a cell of such an array).
    pub fn resource(self) -> crate::abi::MeterResource {
        match self {
            MeterUnit::Packets => crate::abi::MeterResource::Packets,
            MeterUnit::Bytes => crate::abi::MeterResource::Bytes,
        }
    }
}

/// A meter array (`meter(size, MeterType.x) name;`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterDef {
    /// Meter name as declared.
    pub name: String,
    /// Cells, 1..=[`limits::ARRAY_SIZE`].
    pub size: u32,
    /// What each cell measures.
    pub unit: MeterUnit,
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CounterUnit {
    /// `CounterType.packets` (the executor counts packets and bytes in every
    /// counter whatever the unit).
    Packets,
    /// `CounterType.bytes` (packets and bytes are both counted).
    Bytes,
    /// `CounterType.packets_and_bytes`.
    PacketsAndBytes,
}

/// A counter array (`counter(size, CounterType.x) name;`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterDef {
    /// Counter name as declared.
    pub name: String,
    /// Cells, 1..=[`limits::ARRAY_SIZE`].
    pub size: u32,
    /// What the program declared each cell counts.
    pub unit: CounterUnit,
}

/// Why an image or program was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    /// The image does not start with [`IMAGE_MAGIC`].
    #[error("not a pipeline image (bad magic)")]
    Magic,
    /// The image carries an IR version other than [`IR_VERSION`].
    #[error("pipeline IR version {0}, this device runs version {IR_VERSION}")]
    Version(u16),
    /// The body is not a postcard-encoded program, or bytes follow it (the
    /// decoder's message).
    #[error("pipeline image does not decode: {0}")]
    Decode(String),
    /// The program breaks a rule of [`Program::validate`] (an index, width,
    /// limit or budget), or a nesting limit while the image is rebuilt.
    #[error("pipeline program invalid: {0}")]
    Invalid(String),
}

impl Program {
    /// Encode as an image for `PipelineLoad`.
    pub fn to_image(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(&IMAGE_MAGIC);
        out.extend_from_slice(&IR_VERSION.to_le_bytes());
        out.extend_from_slice(&super::image::encode(self));
        out
    }

    /// Decode and validate an image.
    pub fn from_image(image: &[u8]) -> Result<Program, ProgramError> {
        if image.len() > limits::IMAGE_BYTES as usize {
            return Err(ProgramError::Invalid(format!(
                "a {}-byte image; the device takes at most {} bytes",
                image.len(),
                limits::IMAGE_BYTES
            )));
        }
        if image.len() < 6 || image[..4] != IMAGE_MAGIC {
            return Err(ProgramError::Magic);
        }
        let v = u16::from_le_bytes([image[4], image[5]]);
        if v != IR_VERSION {
            return Err(ProgramError::Version(v));
        }
        let p = super::image::decode(&image[6..])?;
        p.validate()?;
        Ok(p)
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Option<(u16, &TableDef)> {
        self.tables
            .iter()
            .enumerate()
            .find(|(_, t)| t.name == name)
            .map(|(i, t)| (i as u16, t))
    }

    /// The table whose direct counter counter array `c` is, if any.
    pub fn direct_counter_table(&self, c: usize) -> Option<u16> {
        self.tables
            .iter()
            .position(|t| t.direct_counter.map(usize::from) == Some(c))
            .map(|t| t as u16)
    }

    /// Whether meter array `m` is one the program meters cell by cell
    /// (`PipelineMeterSet`/`Get`): neither a per-LIF meter (each cell a
    /// LIF's own, `MeterSet`) nor a direct one (each cell a table entry's,
    /// `TableDataSet`).
    pub fn is_indexed_meter(&self, m: usize) -> bool {
        self.meters
            .get(m)
            .is_some_and(|d| super::lif_meter_resource(&d.name).is_none() && self.direct_meter_table(m).is_none())
    }

    /// The table whose direct meter meter array `m` is, if any.
    pub fn direct_meter_table(&self, m: usize) -> Option<u16> {
        self.tables
            .iter()
            .position(|t| t.direct_meter.map(usize::from) == Some(m))
            .map(|t| t as u16)
    }

    /// An action by name.
    pub fn action(&self, name: &str) -> Option<(u16, &ActionDef)> {
        self.actions
            .iter()
            .enumerate()
            .find(|(_, a)| a.name == name)
            .map(|(i, a)| (i as u16, a))
    }

    /// The width of a field.
    pub fn field_width(&self, f: FieldRef) -> Option<u16> {
        match f {
            FieldRef::Header { header, field } => self
                .headers
                .get(usize::from(header))?
                .fields
                .get(usize::from(field))
                .map(|d| d.width),
            FieldRef::Meta(m) => self.meta.get(usize::from(m)).map(|d| d.width),
        }
    }
}
