//! The syntax tree of the supported P4_16 subset, as the parser builds it:
//! names are still names, types still written types. Every node that can
//! be the subject of an error carries a [`Span`].

use crate::diag::Span;
use crate::lexer::{IntLit, Token};

/// The tallest expression tree the parser builds (bounds every recursion
/// over expressions that follows).
pub const MAX_EXPR_HEIGHT: u32 = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// `@name(tokens)`; the tokens between the parentheses are kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub name: Ident,
    pub args: Vec<Token>,
}

/// A type as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeRef {
    /// `bit<N>` (`bit` alone is `bit<1>`).
    Bit(u16, Span),
    Bool(Span),
    Void(Span),
    /// A named type, with type arguments (`FairnicParser<H, M>`).
    Named(Ident, Vec<TypeRef>),
}

impl TypeRef {
    pub fn span(&self) -> Span {
        match self {
            TypeRef::Bit(_, s) | TypeRef::Bool(s) | TypeRef::Void(s) => *s,
            TypeRef::Named(i, _) => i.span,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    None,
    In,
    Out,
    InOut,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub dir: Direction,
    pub ty: TypeRef,
    pub name: Ident,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    BitNot,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Mul,
    Add,
    Sub,
    Shl,
    Shr,
    BitAnd,
    BitXor,
    BitOr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinaryOp {
    pub fn text(self) -> &'static str {
        match self {
            BinaryOp::Mul => "*",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Shl => "<<",
            BinaryOp::Shr => ">>",
            BinaryOp::BitAnd => "&",
            BinaryOp::BitXor => "^",
            BinaryOp::BitOr => "|",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprKind {
    Int(IntLit),
    Bool(bool),
    Name(String),
    /// `e.name`
    Member(Box<Expr>, Ident),
    /// `e(args)`
    Call(Box<Expr>, Vec<Expr>),
    /// `e[hi:lo]`
    Slice(Box<Expr>, Box<Expr>, Box<Expr>),
    Unary(UnaryOp, Box<Expr>),
    /// The operator, where it is, and the operands.
    Binary(BinaryOp, Span, Box<Expr>, Box<Expr>),
    /// `(type) e`
    Cast(TypeRef, Box<Expr>),
}

/// An expression; `span` is where it starts, `height` the depth of its
/// tree (a leaf is 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    pub height: u32,
}

impl Expr {
    pub fn leaf(kind: ExprKind, span: Span) -> Expr {
        Expr { kind, span, height: 1 }
    }

    /// A node over `children`, or None when the tree would be taller than
    /// [`MAX_EXPR_HEIGHT`].
    pub fn node(kind: ExprKind, span: Span) -> Option<Expr> {
        let height = 1 + kind_children(&kind).iter().map(|c| c.height).max().unwrap_or(0);
        (height <= MAX_EXPR_HEIGHT).then_some(Expr { kind, span, height })
    }

    /// `a.b.c` as written (for key names and messages).
    pub fn render(&self) -> String {
        match &self.kind {
            ExprKind::Int(l) => match l.width {
                Some(w) => format!("{w}w{}", l.value),
                None => l.value.to_string(),
            },
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::Name(n) => n.clone(),
            ExprKind::Member(e, m) => format!("{}.{}", e.render(), m.name),
            ExprKind::Call(e, args) => {
                let args: Vec<String> = args.iter().map(Expr::render).collect();
                format!("{}({})", e.render(), args.join(", "))
            }
            ExprKind::Slice(e, h, l) => format!("{}[{}:{}]", e.render(), h.render(), l.render()),
            ExprKind::Unary(op, e) => {
                let o = match op {
                    UnaryOp::Not => "!",
                    UnaryOp::BitNot => "~",
                    UnaryOp::Neg => "-",
                };
                format!("{o}{}", e.render())
            }
            ExprKind::Binary(op, _, a, b) => format!("({} {} {})", a.render(), op.text(), b.render()),
            ExprKind::Cast(_, e) => format!("(cast){}", e.render()),
        }
    }
}

fn kind_children(k: &ExprKind) -> Vec<&Expr> {
    match k {
        ExprKind::Int(_) | ExprKind::Bool(_) | ExprKind::Name(_) => vec![],
        ExprKind::Member(e, _) | ExprKind::Unary(_, e) | ExprKind::Cast(_, e) => vec![e],
        ExprKind::Call(e, args) => std::iter::once(&**e).chain(args.iter()).collect(),
        ExprKind::Slice(e, h, l) => vec![e, h, l],
        ExprKind::Binary(_, _, a, b) => vec![a, b],
    }
}

/// One element of a keyset (select case or table entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySet {
    /// `default` or `_`.
    Any(Span),
    Value(Expr),
    /// `value &&& mask`
    Mask(Expr, Expr),
}

impl KeySet {
    pub fn span(&self) -> Span {
        match self {
            KeySet::Any(s) => *s,
            KeySet::Value(e) | KeySet::Mask(e, _) => e.span,
        }
    }
}

/// A keyset: a tuple `(a, b)` or a single element; `whole_default` when it
/// is a bare `default` or `_` (matches anything whatever the key count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub elems: Vec<KeySet>,
    pub whole_default: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StmtKind {
    Assign(Expr, Expr),
    /// A method or function call.
    Call(Expr),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    Block(Vec<Stmt>),
    Exit,
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// `transition name;`
    Direct(Ident),
    Select {
        keys: Vec<Expr>,
        cases: Vec<(Keys, Ident)>,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub annotations: Vec<Annotation>,
    pub name: Ident,
    pub stmts: Vec<Stmt>,
    /// None: the state ends without `transition` (that is `reject`).
    pub transition: Option<Transition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParserDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub states: Vec<State>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionDecl {
    pub annotations: Vec<Annotation>,
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyElem {
    pub expr: Expr,
    pub kind: Ident,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub keys: Keys,
    pub action: Expr,
}

/// An action in a table's `actions` list, with where P4 lets it run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRef {
    pub name: Ident,
    /// `@defaultonly`: only as the table's default action.
    pub default_only: bool,
    /// `@tableonly`: only from an entry, never as the default.
    pub table_only: bool,
}

/// A table property (`key`, `actions`, `default_action`, `size`,
/// `entries`, `counters`, `meters`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableProp {
    Key(Vec<KeyElem>),
    Actions(Vec<ActionRef>),
    DefaultAction(Expr),
    Size(Expr),
    Entries(Vec<Entry>),
    /// `counters = c;`: the table's direct counter.
    Counters(Expr),
    /// `meters = m;`: the table's direct meter.
    Meters(Expr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDecl {
    pub annotations: Vec<Annotation>,
    pub name: Ident,
    /// Each property with the span of its name.
    pub props: Vec<(TableProp, Span)>,
}

/// `Type(args) name;`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub annotations: Vec<Annotation>,
    pub ty: TypeRef,
    pub args: Vec<Expr>,
    pub name: Ident,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstDecl {
    pub ty: TypeRef,
    pub name: Ident,
    pub value: Expr,
}

/// A declaration inside a control, before `apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    Action(ActionDecl),
    Table(TableDecl),
    Instance(Instance),
    Const(ConstDecl),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub locals: Vec<Local>,
    pub apply: Vec<Stmt>,
}

/// A method (or function) prototype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    pub ret: TypeRef,
    pub name: Ident,
    pub type_params: Vec<Ident>,
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternDecl {
    Object {
        name: Ident,
        type_params: Vec<Ident>,
        ctors: Vec<Vec<Param>>,
        methods: Vec<Method>,
    },
    Function(Method),
}

/// A parser, control or package type: `name<T...>(params);`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proto {
    pub name: Ident,
    pub type_params: Vec<Ident>,
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub ty: TypeRef,
    pub name: Ident,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclKind {
    Const(ConstDecl),
    Typedef(TypeRef, Ident),
    Header(Ident, Vec<Field>),
    Struct(Ident, Vec<Field>),
    Enum(Ident, Vec<Ident>),
    Errors(Vec<Ident>),
    MatchKinds(Vec<Ident>),
    Extern(ExternDecl),
    ParserType(Proto),
    ControlType(Proto),
    Package(Proto),
    Parser(ParserDecl),
    Control(ControlDecl),
    Action(ActionDecl),
    Instance(Instance),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decl {
    pub annotations: Vec<Annotation>,
    pub kind: DeclKind,
    /// Where it starts (its first keyword or name).
    pub span: Span,
}
