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
pub const IR_VERSION: u16 = 1;

/// Limits a valid program stays within (the device's resources).
pub mod limits {
    pub const HEADERS: usize = 32;
    pub const FIELDS_PER_HEADER: usize = 64;
    /// Header length, bytes.
    pub const HEADER_BYTES: usize = 64;
    pub const META_FIELDS: usize = 128;
    pub const STATES: usize = 64;
    pub const ACTIONS: usize = 256;
    pub const PARAMS: usize = 8;
    pub const TABLES: usize = 64;
    pub const KEYS: usize = 8;
    /// Key width of a table, bits (all its key fields together).
    pub const KEY_BITS: u32 = 128;
    pub const TABLE_SIZE: u32 = 1 << 20;
    pub const METERS: usize = 16;
    pub const COUNTERS: usize = 64;
    pub const ARRAY_SIZE: u32 = 1 << 20;
    /// Parser states one packet may visit (P4 parsers may loop).
    pub const PARSE_STEPS: usize = 32;
    /// Expression nesting.
    pub const EXPR_DEPTH: usize = 32;
    /// Statement nesting.
    pub const BLOCK_DEPTH: usize = 16;
    pub const STMTS: usize = 4096;
    /// Most cost units one `@cost` annotation (or the base cost) may
    /// charge.
    pub const COST: u32 = 65_535;
    /// Most cost units one pass of one packet can be charged, along the
    /// costliest path through the program (checked at load, so the sums
    /// cannot overflow and no image can make a packet free or endless).
    pub const PACKET_COST: u64 = 1_000_000;
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
    pub actions: Vec<ActionDef>,
    pub tables: Vec<TableDef>,
    pub meters: Vec<MeterDef>,
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
    pub fields: Vec<FieldDef>,
    /// Length in bytes (the fields' widths sum to 8x this).
    pub len: u16,
}

/// A field: `width` bits at `bit_off` from the start of its header
/// (metadata fields: `bit_off` is 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    pub name: String,
    pub bit_off: u16,
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
    pub const INGRESS_LIF: u16 = 0;
    pub const EGRESS_LIF: u16 = 1;
    pub const TO_UPLINK: u16 = 2;
    pub const FLOOD: u16 = 3;
    pub const DROP: u16 = 4;
    pub const RECIRCULATE: u16 = 5;
    pub const PACKET_LENGTH: u16 = 6;
    pub const PARSER_ERROR: u16 = 7;
    /// `egress_lif` before the program sets it, and `ingress_lif` of a
    /// frame from the wire.
    pub const LIF_NONE: u64 = 0xffff;
}

/// A field reference, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldRef {
    /// Field `field` of header instance `header`.
    Header { header: u16, field: u16 },
    /// Metadata field.
    Meta(u16),
}

/// A parser state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParserState {
    pub name: String,
    /// `@cost(n)`: charged each time a packet passes this state.
    pub cost: u32,
    /// What the state does, in order.
    pub ops: Vec<ParserOp>,
    pub transition: Transition,
}

/// A parser statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParserOp {
    /// `pkt.extract(hdr.<header>)`.
    Extract(u16),
    /// An assignment to a metadata field.
    Assign { dst: FieldRef, value: Expr },
}

/// Where a parser state goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transition {
    Next(Next),
    /// `transition select(keys) { cases; default }`: the first case whose
    /// every `(value, mask)` matches its key.
    Select {
        keys: Vec<Expr>,
        cases: Vec<SelectCase>,
        default: Next,
    },
}

/// A destination of a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Next {
    Accept,
    /// A parser error: the packet is dropped and counted.
    Reject,
    State(u16),
}

/// One case of a select: one `(value, mask)` per key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectCase {
    pub matches: Vec<(u64, u64)>,
    pub next: Next,
}

/// An expression. Every value is a bit string of known width (<= 64)
/// held in a u64; arithmetic wraps at `width`; comparisons and logical
/// operators give a 1-bit 0 or 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expr {
    Const {
        value: u64,
        width: u16,
    },
    Field(FieldRef),
    /// Parameter `n` of the running action.
    Param(u16),
    /// `hdr.<header>.isValid()`.
    Valid(u16),
    Unary {
        op: UnOp,
        arg: Box<Expr>,
        width: u16,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        width: u16,
    },
    /// `expr[hi:lo]`.
    Slice {
        arg: Box<Expr>,
        hi: u16,
        lo: u16,
    },
    /// `(bit<width>) expr`: truncate or zero-extend.
    Cast {
        arg: Box<Expr>,
        width: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnOp {
    /// `!` (logical).
    Not,
    /// `~` (bitwise).
    BitNot,
    /// `-` (two's complement at `width`).
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

/// A statement of a control's apply block or an action body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stmt {
    /// `dst = value;` (the value is truncated to the destination's width).
    Assign { dst: FieldRef, value: Expr },
    /// `t.apply();`, or `if (t.apply().hit) { on_hit } else { on_miss }`.
    Apply {
        table: u16,
        on_hit: Vec<Stmt>,
        on_miss: Vec<Stmt>,
    },
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
    /// A direct action call: `a(args);`.
    Call { action: u16, args: Vec<Expr> },
    /// `mark_to_drop(std);`
    Drop,
    /// `c.count(index);`
    Count { counter: u16, index: Expr },
    /// `m.execute_meter(index, dst);` (dst gets 0 green, 1 yellow, 2 red).
    Meter { meter: u16, index: Expr, dst: FieldRef },
    /// `exit;`
    Exit,
}

/// An action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionDef {
    pub name: String,
    /// Parameter names and widths; table entries carry their values.
    pub params: Vec<ParamDef>,
    pub body: Vec<Stmt>,
    /// `@cost(n)`.
    pub cost: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamDef {
    pub name: String,
    pub width: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchKind {
    Exact,
    Lpm,
    Ternary,
}

/// A table key field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDef {
    /// A field, or `isValid()` (width 1).
    pub expr: KeyExpr,
    pub kind: MatchKind,
    pub width: u16,
    /// As written in the source (`hdr.ethernet.dst_addr`), for the control
    /// plane.
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyExpr {
    Field(FieldRef),
    Valid(u16),
}

/// A table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    pub name: String,
    pub keys: Vec<KeyDef>,
    /// Actions an entry may name (indices into `Program::actions`).
    pub actions: Vec<u16>,
    pub default_action: u16,
    pub default_args: Vec<u64>,
    /// Most entries.
    pub size: u32,
    /// `@cost(n)`: charged on every apply.
    pub cost: u32,
    /// `const entries` / `entries` of the source.
    pub entries: Vec<EntryDef>,
}

/// A table entry as the program states it (the control plane adds more
/// through `TableEntryAdd`). Key values and masks are per key field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDef {
    /// Per key field: value and mask (exact: all ones; LPM: the prefix as
    /// a mask of leading ones).
    pub key: Vec<(u128, u128)>,
    pub priority: u32,
    pub action: u16,
    pub args: Vec<u64>,
}

/// What a meter measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeterUnit {
    Packets,
    Bytes,
}

/// A meter array (`meter(size, MeterType.x) name;`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterDef {
    pub name: String,
    pub size: u32,
    pub unit: MeterUnit,
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CounterUnit {
    Packets,
    Bytes,
    PacketsAndBytes,
}

/// A counter array (`counter(size, CounterType.x) name;`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterDef {
    pub name: String,
    pub size: u32,
    pub unit: CounterUnit,
}

/// Why an image or program was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    #[error("not a pipeline image (bad magic)")]
    Magic,
    #[error("pipeline IR version {0}, this device runs version {IR_VERSION}")]
    Version(u16),
    #[error("pipeline image does not decode: {0}")]
    Decode(String),
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
