//! The front end end to end: the shipped program compiles to the IR the
//! device expects; constructs lower as specified; every error carries the
//! right `line:column`; no input makes the compiler panic or hang.

use dataplane::pipeline::*;
use p4::{compile_file, compile_file_with, compile_str, fairnic, Diagnostic, FAIRNIC_P4};
use std::path::Path;

// ---------------------------------------------------------------------
// The shipped program
// ---------------------------------------------------------------------

#[test]
fn fairnic_compiles_validates_and_round_trips() {
    let p = fairnic();
    p.validate().unwrap();
    assert_eq!(p.name, "fairnic");
    let image = p.to_image();
    assert_eq!(Program::from_image(&image).unwrap(), p);
}

#[test]
fn fairnic_from_disk_equals_the_built_in_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/fairnic.p4");
    assert_eq!(compile_file(&path).unwrap(), fairnic());
}

#[test]
fn fairnic_standard_metadata_comes_first() {
    let p = fairnic();
    for (i, (name, width)) in std_meta::FIELDS.iter().enumerate() {
        assert_eq!(p.meta[i].name, *name);
        assert_eq!(p.meta[i].width, *width);
    }
    let user: Vec<(&str, u16)> = p.meta[8..].iter().map(|f| (f.name.as_str(), f.width)).collect();
    assert_eq!(user, [("color_packets", 2), ("color_bytes", 2), ("l3", 8)]);
}

#[test]
fn fairnic_headers_and_deparser() {
    let p = fairnic();
    let names: Vec<(&str, u16)> = p.headers.iter().map(|h| (h.name.as_str(), h.len)).collect();
    assert_eq!(
        names,
        [
            ("ethernet", 14),
            ("vlan", 4),
            ("ipv4", 20),
            ("ipv6", 40),
            ("tcp", 20),
            ("udp", 8)
        ]
    );
    assert_eq!(p.deparse, [0, 1, 2, 3, 4, 5]);
    let ipv4 = &p.headers[2];
    let dst = ipv4.fields.iter().find(|f| f.name == "dst_addr").unwrap();
    assert_eq!((dst.bit_off, dst.width), (128, 32));
}

#[test]
fn fairnic_tables_match_kinds_and_actions() {
    let p = fairnic();
    let (l2, t) = p.table("l2_fwd").unwrap();
    assert_eq!(l2, 1, "l2_fwd keeps the built-in switch's table number");
    assert_eq!(t.keys.len(), 1);
    assert_eq!(t.keys[0].kind, MatchKind::Exact);
    assert_eq!(t.keys[0].width, 48);
    assert_eq!(t.keys[0].name, "hdr.ethernet.dst_addr");
    assert_eq!(t.keys[0].expr, KeyExpr::Field(FieldRef::Header { header: 0, field: 0 }));
    assert_eq!(t.size, 8192);
    assert_eq!(t.cost, 1);
    assert_eq!(t.default_action, p.action("NoAction").unwrap().0);
    let acts: Vec<&str> = t
        .actions
        .iter()
        .map(|&a| p.actions[usize::from(a)].name.as_str())
        .collect();
    assert_eq!(
        acts,
        [
            "to_lif",
            "to_uplink",
            "drop",
            "to_lif_recirc",
            "flood",
            "to_cpu",
            "NoAction"
        ]
    );
    // to_cpu sends to the CPU port: egress_lif = LIF_CPU (fairnic_arch.p4).
    assert_eq!(p.action("to_cpu").unwrap().0, 6);

    let (_, acl) = p.table("acl").unwrap();
    assert!(acl.keys.iter().all(|k| k.kind == MatchKind::Ternary));
    assert_eq!(acl.keys.len(), 3);
    let (_, route) = p.table("route").unwrap();
    assert_eq!(route.keys[0].kind, MatchKind::Lpm);
    assert_eq!(route.keys[0].width, 32);

    // The built-in switch's action numbers.
    for (name, id) in [("to_lif", 1), ("to_uplink", 2), ("drop", 3), ("to_lif_recirc", 4)] {
        assert_eq!(p.action(name).unwrap().0, id, "{name}");
    }
    let (_, recirc) = p.action("to_lif_recirc").unwrap();
    let params: Vec<(&str, u16)> = recirc.params.iter().map(|x| (x.name.as_str(), x.width)).collect();
    assert_eq!(params, [("lif", 16), ("passes", 8)]);
    let (_, noaction) = p.action("NoAction").unwrap();
    assert!(noaction.params.is_empty() && noaction.body.is_empty());
    assert_eq!(p.action("drop").unwrap().1.body, [Stmt::Drop]);
}

#[test]
fn fairnic_meters_counters_and_costs() {
    let p = fairnic();
    let meters: Vec<(&str, u32, MeterUnit)> = p.meters.iter().map(|m| (m.name.as_str(), m.size, m.unit)).collect();
    assert_eq!(
        meters,
        [
            ("lif_packets", 4096, MeterUnit::Packets),
            ("lif_bytes", 4096, MeterUnit::Bytes)
        ]
    );
    let counters: Vec<(&str, u32, CounterUnit)> =
        p.counters.iter().map(|c| (c.name.as_str(), c.size, c.unit)).collect();
    assert_eq!(
        counters,
        [
            ("lif_in", 4096, CounterUnit::PacketsAndBytes),
            ("lif_out", 4096, CounterUnit::PacketsAndBytes),
            ("l3_kind", 4, CounterUnit::Packets),
            ("packet_colors", 4, CounterUnit::PacketsAndBytes),
            ("byte_colors", 4, CounterUnit::PacketsAndBytes),
            ("acl_hits", 1024, CounterUnit::PacketsAndBytes)
        ]
    );
    // acl_hits is the acl's direct counter, one cell per entry.
    let (_, acl) = p.table("acl").unwrap();
    assert_eq!(acl.direct_counter, Some(5));
    assert_eq!(p.base_cost, 1);
    assert_eq!(p.parser[0].name, "start");
    assert!(p.parser.iter().all(|s| s.cost == 1));
    // Ethernet/IPv4/UDP: three states, the l2_fwd lookup, the base: 5.
    let state = |n: &str| p.parser.iter().find(|s| s.name == n).unwrap().cost;
    let udp = state("start") + state("parse_ipv4") + state("parse_udp");
    assert_eq!(udp + p.table("l2_fwd").unwrap().1.cost + p.base_cost, 5);
}

#[test]
fn fairnic_parser_selects() {
    let p = fairnic();
    let Transition::Select { keys, cases, default } = &p.parser[0].transition else {
        panic!("start selects")
    };
    assert_eq!(keys, &[Expr::Field(FieldRef::Header { header: 0, field: 2 })]);
    assert_eq!(cases[0].matches, [(0x8100, 0xffff)]);
    assert_eq!(*default, Next::Accept);
    let ipv4 = p.parser.iter().find(|s| s.name == "parse_ipv4").unwrap();
    let Transition::Select { keys, cases, .. } = &ipv4.transition else {
        panic!("parse_ipv4 selects")
    };
    assert_eq!(keys.len(), 2);
    assert_eq!(cases[0].matches, [(0, 0xc), (0, 0)]);
    assert_eq!(cases[0].next, Next::Reject);
    assert_eq!(cases[2].matches, [(5, 0xf), (6, 0xff)]);
}

// ---------------------------------------------------------------------
// A small program with holes, for lowering and error tests
// ---------------------------------------------------------------------

const TEMPLATE: &str = "#include <fairnic_arch.p4>
{TOP}
header h_t { bit<8> a; bit<8> b; }
header w_t { bit<128> x; }
struct hs_t { h_t h; w_t w; }
struct m_t { bit<8> m; bit<1> one; bool flag; }
parser P(packet_in pkt, out hs_t hdr, inout m_t meta, inout standard_metadata_t std) {
state start {
{PARSER}
}
state next { transition accept; }
}
control I(inout hs_t hdr, inout m_t meta, inout standard_metadata_t std) {
action a(bit<8> v) { hdr.h.a = v; }
table t { key = { hdr.h.a: exact; } actions = { a; } }
{LOCALS}
apply {
{APPLY}
}
}
control D(packet_out pkt, in hs_t hdr) { apply { pkt.emit(hdr.h); } }
FairnicPipeline(P(), I(), D()) main;
";

const TOP: u32 = 2;
const PARSER: u32 = 9;
const LOCALS: u32 = 16;
const APPLY: u32 = 18;

#[derive(Default)]
struct Holes<'a> {
    top: &'a str,
    parser: &'a str,
    locals: &'a str,
    apply: &'a str,
}

fn source(h: Holes<'_>) -> String {
    let parser = if h.parser.is_empty() {
        "pkt.extract(hdr.h); transition next;"
    } else {
        h.parser
    };
    let apply = if h.apply.is_empty() { "t.apply();" } else { h.apply };
    TEMPLATE
        .replace("{TOP}", h.top)
        .replace("{PARSER}", parser)
        .replace("{LOCALS}", h.locals)
        .replace("{APPLY}", apply)
}

fn compile(h: Holes<'_>) -> Result<Program, Vec<Diagnostic>> {
    compile_str(&source(h), "t.p4")
}

fn ok(h: Holes<'_>) -> Program {
    match compile(h) {
        Ok(p) => p,
        Err(d) => panic!("{}", d[0]),
    }
}

/// The first diagnostic is at `line:col` and says `msg`.
#[track_caller]
fn fails(h: Holes<'_>, line: u32, col: u32, msg: &str) {
    let d = match compile(h) {
        Ok(_) => panic!("compiled, expected `{msg}`"),
        Err(d) => d[0].clone(),
    };
    assert_eq!(
        (d.file.as_str(), d.line, d.column),
        ("t.p4", line, col),
        "wrong position for: {d}"
    );
    assert!(d.message.contains(msg), "`{}` does not contain `{msg}`", d.message);
    assert_eq!(d.to_string(), format!("t.p4:{line}:{col}: error: {}", d.message));
}

fn apply(s: &str) -> Holes<'_> {
    Holes {
        apply: s,
        ..Holes::default()
    }
}

fn locals(s: &str) -> Holes<'_> {
    Holes {
        locals: s,
        ..Holes::default()
    }
}

fn parser(s: &str) -> Holes<'_> {
    Holes {
        parser: s,
        ..Holes::default()
    }
}

fn top(s: &str) -> Holes<'_> {
    Holes {
        top: s,
        ..Holes::default()
    }
}

#[test]
fn the_template_compiles() {
    let p = ok(Holes::default());
    assert_eq!(p.name, "t");
    assert_eq!(
        p.ingress,
        [Stmt::Apply {
            table: 0,
            on_hit: vec![],
            on_miss: vec![]
        }]
    );
    assert_eq!(p.parser[0].ops, [ParserOp::Extract(0)]);
    assert_eq!(p.parser[0].transition, Transition::Next(Next::State(1)));
    assert_eq!(p.tables[0].size, 1024);
    assert_eq!(p.meta.len(), 8 + 3);
}

// ---------------------------------------------------------------------
// Lowering
// ---------------------------------------------------------------------

fn field(h: u16, f: u16) -> Expr {
    Expr::Field(FieldRef::Header { header: h, field: f })
}

fn konst(value: u64, width: u16) -> Expr {
    Expr::Const { value, width }
}

#[test]
fn hit_and_miss_choose_the_branches() {
    let a = Stmt::Call {
        action: 1,
        args: vec![konst(1, 8)],
    };
    let b = Stmt::Call {
        action: 1,
        args: vec![konst(2, 8)],
    };
    let apply_of = |on_hit: Vec<Stmt>, on_miss: Vec<Stmt>| {
        vec![Stmt::Apply {
            table: 0,
            on_hit,
            on_miss,
        }]
    };
    let p = ok(apply("if (t.apply().hit) { a(1); } else { a(2); }"));
    assert_eq!(p.ingress, apply_of(vec![a.clone()], vec![b.clone()]));
    let p = ok(apply("if (!t.apply().hit) { a(1); }"));
    assert_eq!(p.ingress, apply_of(vec![], vec![a.clone()]));
    let p = ok(apply("if (t.apply().miss) a(1); else a(2);"));
    assert_eq!(p.ingress, apply_of(vec![b.clone()], vec![a.clone()]));
    let p = ok(apply("if (!t.apply().miss) a(1);"));
    assert_eq!(p.ingress, apply_of(vec![a], vec![]));
}

#[test]
fn expressions_fold_and_type() {
    let p = ok(apply(
        "hdr.h.a = 2 + 3 * 4; hdr.h.b = hdr.h.a >> 2; meta.m = (bit<8>) meta.one;",
    ));
    assert_eq!(
        p.ingress[0],
        Stmt::Assign {
            dst: FieldRef::Header { header: 0, field: 0 },
            value: konst(14, 8)
        }
    );
    assert_eq!(
        p.ingress[1],
        Stmt::Assign {
            dst: FieldRef::Header { header: 0, field: 1 },
            value: Expr::Binary {
                op: BinOp::Shr,
                lhs: Box::new(field(0, 0)),
                rhs: Box::new(konst(2, 2)),
                width: 8
            }
        }
    );
    assert_eq!(
        p.ingress[2],
        Stmt::Assign {
            dst: FieldRef::Meta(8),
            value: Expr::Cast {
                arg: Box::new(Expr::Field(FieldRef::Meta(9))),
                width: 8
            }
        }
    );
    let p = ok(apply(
        "if (hdr.h.isValid() && hdr.h.a & 0x0f == 8w3 || meta.flag) { exit; } meta.flag = (bool) meta.one;",
    ));
    let Stmt::If { cond, then, .. } = &p.ingress[0] else {
        panic!()
    };
    assert_eq!(then, &[Stmt::Exit]);
    let Expr::Binary { op: BinOp::Or, lhs, .. } = cond else {
        panic!("{cond:?}")
    };
    let Expr::Binary {
        op: BinOp::And, rhs, ..
    } = &**lhs
    else {
        panic!()
    };
    let Expr::Binary {
        op: BinOp::Eq,
        lhs,
        width: 1,
        ..
    } = &**rhs
    else {
        panic!()
    };
    assert!(matches!(
        **lhs,
        Expr::Binary {
            op: BinOp::BitAnd,
            width: 8,
            ..
        }
    ));
}

#[test]
fn constants_typedefs_and_slices() {
    let p = ok(Holes {
        top: "const bit<8> K = 0x10; typedef bit<8> byte_t;",
        apply: "hdr.h.a = K + 1; hdr.h.b = (byte_t) (hdr.h.a[3:0] - 1);",
        ..Holes::default()
    });
    assert_eq!(
        p.ingress[0],
        Stmt::Assign {
            dst: FieldRef::Header { header: 0, field: 0 },
            value: konst(17, 8)
        }
    );
    let Stmt::Assign {
        value: Expr::Cast { arg, width: 8 },
        ..
    } = &p.ingress[1]
    else {
        panic!("{:?}", p.ingress[1])
    };
    let Expr::Binary {
        op: BinOp::Sub,
        lhs,
        width: 4,
        ..
    } = &**arg
    else {
        panic!()
    };
    assert_eq!(
        **lhs,
        Expr::Slice {
            arg: Box::new(field(0, 0)),
            hi: 3,
            lo: 0
        }
    );
}

#[test]
fn const_entries_give_values_masks_and_priorities() {
    let p = ok(locals(
        "table e { key = { hdr.h.a: ternary; hdr.h.b: lpm; hdr.h.isValid(): exact; } \
         actions = { a; NoAction; } default_action = a(7); size = 64; \
         const entries = { (0x10 &&& 0xf0, 0x80 &&& 0xc0, true): a(1); (_, _, false): NoAction(); } }",
    ));
    let (_, e) = p.table("e").unwrap();
    assert_eq!(e.keys[2].expr, KeyExpr::Valid(0));
    assert_eq!(e.keys[2].name, "hdr.h.isValid()");
    assert_eq!(e.default_args, [7]);
    assert_eq!(e.size, 64);
    assert_eq!(e.entries.len(), 2);
    assert_eq!(e.entries[0].key, [(0x10, 0xf0), (0x80, 0xc0), (1, 1)]);
    assert_eq!(e.entries[0].args, [1]);
    assert_eq!(e.entries[1].key, [(0, 0), (0, 0), (0, 1)]);
    assert!(e.entries[0].priority > e.entries[1].priority);
}

#[test]
fn select_tuples_masks_and_default() {
    let p = ok(parser(
        "pkt.extract(hdr.h); meta.m = hdr.h.b; \
         transition select(hdr.h.a, meta.flag) { (1, true): next; (0x80 &&& 0x80, _): reject; default: accept; }",
    ));
    let s = &p.parser[0];
    assert_eq!(s.ops.len(), 2);
    let Transition::Select { keys, cases, default } = &s.transition else {
        panic!()
    };
    assert_eq!(keys.len(), 2);
    assert_eq!(cases[0].matches, [(1, 0xff), (1, 1)]);
    assert_eq!(cases[0].next, Next::State(1));
    assert_eq!(cases[1].matches, [(0x80, 0x80), (0, 0)]);
    assert_eq!(*default, Next::Accept);
    let p = ok(parser("pkt.extract(hdr.h); transition select(hdr.h.a) { 1: accept; }"));
    let Transition::Select { default, .. } = &p.parser[0].transition else {
        panic!()
    };
    assert_eq!(*default, Next::Reject, "no default case rejects");
    let p = ok(parser("pkt.extract(hdr.h);"));
    assert_eq!(p.parser[0].transition, Transition::Next(Next::Reject));
}

#[test]
fn meters_counters_drop_and_costs() {
    let p = ok(Holes {
        locals: "meter(16, MeterType.bytes) m; counter(8, CounterType.packets) c; \
                 @cost(3) action d() { mark_to_drop(std); } @cost(2) table u { actions = { d; } default_action = d; }",
        apply: "m.execute_meter(32w1, meta.m); c.count((bit<32>) hdr.h.a); d(); u.apply();",
        ..Holes::default()
    });
    assert_eq!(
        p.meters,
        [MeterDef {
            name: "m".into(),
            size: 16,
            unit: MeterUnit::Bytes
        }]
    );
    assert_eq!(
        p.counters,
        [CounterDef {
            name: "c".into(),
            size: 8,
            unit: CounterUnit::Packets
        }]
    );
    let (d, def) = p.action("d").unwrap();
    assert_eq!((def.cost, def.body.as_slice()), (3, &[Stmt::Drop][..]));
    let (u, t) = p.table("u").unwrap();
    assert_eq!((t.cost, t.default_action, t.keys.len()), (2, d, 0));
    assert_eq!(
        p.ingress,
        [
            Stmt::Meter {
                meter: 0,
                index: konst(1, 32),
                dst: FieldRef::Meta(8)
            },
            Stmt::Count {
                counter: 0,
                index: Expr::Cast {
                    arg: Box::new(field(0, 0)),
                    width: 32
                }
            },
            Stmt::Call {
                action: d,
                args: vec![]
            },
            Stmt::Apply {
                table: u,
                on_hit: vec![],
                on_miss: vec![]
            },
        ]
    );
}

#[test]
fn emit_of_the_headers_struct_emits_every_header() {
    let src = source(Holes::default()).replace("pkt.emit(hdr.h);", "pkt.emit(hdr);");
    assert_eq!(compile_str(&src, "t.p4").unwrap().deparse, [0, 1]);
}

#[test]
fn quoted_includes_are_found_next_to_the_file() {
    let dir = std::env::temp_dir().join(format!("p4-front-end-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let main = source(Holes::default()).replace("{TOP}", "");
    let main = main.replacen("header h_t { bit<8> a; bit<8> b; }", "#include \"sub/h.p4\"", 1);
    std::fs::write(dir.join("sub/h.p4"), "header h_t { bit<8> a; bit<8> b; }\n").unwrap();
    std::fs::write(dir.join("main.p4"), &main).unwrap();
    let p = compile_file(&dir.join("main.p4")).unwrap();
    assert_eq!(p.name, "main");
    std::fs::write(dir.join("sub/h.p4"), "header h_t { bit<8> a; bit<8> b }\n").unwrap();
    let d = compile_file(&dir.join("main.p4")).unwrap_err();
    assert!(d[0].file.ends_with("h.p4"), "{}", d[0]);
    assert_eq!((d[0].line, d[0].column), (1, 33));
    std::fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------------
// Errors: position and message
// ---------------------------------------------------------------------

#[test]
fn unknown_names_and_fields() {
    fails(apply("hdr.h.zz = 1;"), APPLY, 7, "`h_t` (`hdr.h`) has no member `zz`");
    fails(apply("meta.nope = 1;"), APPLY, 6, "struct `m_t` has no member `nope`");
    fails(apply("foo.apply();"), APPLY, 1, "unknown name `foo`");
    fails(apply("hdr.h.a = bar;"), APPLY, 11, "unknown name `bar`");
    fails(
        locals("table u { key = { hdr.q.a: exact; } actions = { a; } }"),
        LOCALS,
        23,
        "has no member `q`",
    );
}

#[test]
fn width_and_type_mismatches() {
    fails(
        apply("hdr.h.a = std.egress_lif;"),
        APPLY,
        11,
        "width mismatch: cannot assign bit<16> to `hdr.h.a` (bit<8>)",
    );
    fails(apply("hdr.h.a = 16w5;"), APPLY, 11, "width mismatch");
    fails(apply("hdr.h.a = 300;"), APPLY, 11, "value 300 does not fit in bit<8>");
    fails(
        apply("hdr.h.a = hdr.h.b + std.egress_lif;"),
        APPLY,
        19,
        "different widths: bit<8> and bit<16>",
    );
    fails(apply("if (hdr.h.a) { }"), APPLY, 5, "expected bool, found bit<8>");
    fails(apply("meta.flag = meta.one;"), APPLY, 13, "type mismatch");
    fails(apply("meta.m = hdr.w.x[7:0];"), APPLY, 10, "128 bits");
}

#[test]
fn bad_literal() {
    fails(apply("hdr.h.a = 8w300;"), APPLY, 11, "value 300 does not fit in bit<8>");
    fails(apply("hdr.h.a = 12abc;"), APPLY, 11, "bad digit `a`");
}

#[test]
fn parser_errors() {
    fails(
        parser("pkt.extract(hdr.h); transition nowhere;"),
        PARSER,
        32,
        "undeclared parser state `nowhere`",
    );
    fails(
        parser("pkt.extract(meta); transition accept;"),
        PARSER,
        13,
        "cannot extract `meta`: it is a struct, not a header",
    );
    fails(
        parser("pkt.extract(hdr.h.a); transition accept;"),
        PARSER,
        13,
        "not a header",
    );
    fails(
        parser("hdr.h.a = 1; transition accept;"),
        PARSER,
        1,
        "may assign only metadata",
    );
    fails(
        parser("pkt.extract(hdr.h); transition select(hdr.h.a) { (1, 2): accept; default: reject; }"),
        PARSER,
        50,
        "the case has 2 values; the select has 1 keys",
    );
    fails(
        parser("pkt.extract(hdr.h); transition select(hdr.h.a) { default: accept; 1: reject; }"),
        PARSER,
        67,
        "never reached",
    );
    fails(
        parser("pkt.extract(hdr.h, 1); transition accept;"),
        PARSER,
        5,
        "`extract` takes 1 argument, 2 given",
    );
}

#[test]
fn table_and_action_errors() {
    fails(
        locals("table u { key = { hdr.h.b: exact; } actions = { NoAction; } default_action = a(1); }"),
        LOCALS,
        78,
        "action `a` is not in the actions of table `u`",
    );
    fails(
        locals("table u { key = { 8w1: exact; } actions = { a; } }"),
        LOCALS,
        19,
        "a table key must be",
    );
    fails(
        locals("table u { key = { hdr.h.b: range; } actions = { a; } }"),
        LOCALS,
        28,
        "unknown match kind `range`",
    );
    fails(
        locals("table u { key = { hdr.h.b: exact; } actions = { nope; } }"),
        LOCALS,
        49,
        "unknown action `nope`",
    );
    fails(apply("a();"), APPLY, 1, "`a` takes 1 argument, 0 given");
    fails(apply("t.apply(1);"), APPLY, 3, "`apply` takes 0 arguments, 1 given");
    fails(
        locals("action b() { t.apply(); }"),
        LOCALS,
        16,
        "an action cannot apply a table",
    );
    fails(locals("action b(inout bit<8> x) { }"), LOCALS, 23, "with a direction");
    fails(
        locals("table u { key = { hdr.h.b: lpm; } actions = { a; } const entries = { 1 &&& 0x0f: a(1); } }"),
        LOCALS,
        76,
        "not a prefix",
    );
    fails(
        locals("table u { actions = { a; } size = 0; }"),
        LOCALS,
        35,
        "a table size must be",
    );
    fails(
        locals("table u { actions = { a; } actions = { a; } }"),
        LOCALS,
        28,
        "duplicate table property `actions`",
    );
}

#[test]
fn duplicates() {
    fails(
        locals("action a(bit<8> v) { }"),
        LOCALS,
        8,
        "duplicate declaration of `a`",
    );
    fails(
        top("header h_t { bit<8> c; }"),
        TOP + 1,
        8,
        "duplicate declaration of `h_t` (first declared at line 2)",
    );
    fails(
        top("header x_t { bit<8> c; bit<8> c; }"),
        TOP,
        31,
        "duplicate field `c`",
    );
}

#[test]
fn unsupported_constructs() {
    fails(
        apply("hdr.h[2].a = 1;"),
        APPLY,
        6,
        "header stacks and indexing (`[i]`) are not supported",
    );
    fails(
        top("struct s_t { h_t[4] hs; }"),
        TOP,
        17,
        "header stacks are not supported",
    );
    fails(apply("hdr.h.setValid();"), APPLY, 7, "`setValid()` is not supported");
    fails(
        apply("hdr.h.setInvalid();"),
        APPLY,
        7,
        "`setInvalid()` is not supported",
    );
    fails(
        apply("switch (t.apply().action_run) { }"),
        APPLY,
        1,
        "switch statements are not supported",
    );
    fails(top("header_union u_t { }"), TOP, 1, "header unions are not supported");
    fails(top("header v_t { varbit<32> v; }"), TOP, 14, "varbit is not supported");
    fails(
        top("bit<8> f(in bit<8> x) { return x; }"),
        TOP,
        1,
        "function declarations are not supported",
    );
    fails(
        locals("register<bit<32>>(16) r;"),
        LOCALS,
        1,
        "extern `register` is not supported",
    );
    fails(
        parser("value_set<bit<8>>(4) vs;"),
        PARSER,
        1,
        "value_set is not supported",
    );
    let src = source(Holes::default()).replace("state start {", "value_set<bit<8>>(4) vs;\nstate start {");
    let d = compile_str(&src, "t.p4").unwrap_err();
    assert_eq!(d[0].to_string(), "t.p4:8:1: error: value_set is not supported");
    fails(apply("bit<8> x = 1;"), APPLY, 1, "local variables are not supported");
    fails(
        apply("hdr.h.a = hdr.h.a / 2;"),
        APPLY,
        19,
        "division (`/`) is not supported",
    );
    fails(apply("return;"), APPLY, 1, "`return` is not supported");
    fails(
        apply("hdr.h.a = (int<8>) 1;"),
        APPLY,
        12,
        "signed integers (int<N>) are not supported",
    );
    fails(
        top("#define X 1"),
        TOP,
        1,
        "preprocessor directive `#define` is not supported",
    );
    fails(
        apply("if (hdr.h.isValid()) { pkt.extract(hdr.h); }"),
        APPLY,
        24,
        "unknown name `pkt`",
    );
}

#[test]
fn syntax_errors() {
    fails(apply("hdr.h.a = 1"), APPLY + 1, 1, "expected `;`, found `}`");
    fails(apply("/* oops"), APPLY, 1, "unterminated comment");
    fails(apply("hdr.h.a = (1 + 2;"), APPLY, 17, "expected `)`, found `;`");
    fails(apply("hdr.h.a = 1 $ 2;"), APPLY, 13, "unexpected character `$`");
    fails(
        top("@cost(2) header x_t { bit<8> a; }"),
        TOP,
        2,
        "@cost belongs on parser states, tables and actions",
    );
    fails(locals("@cost(x) action b() { }"), LOCALS, 2, "@cost takes one integer");
    fails(apply("std.ingress_lif = 1;"), APPLY, 1, "set by the device");
}

#[test]
fn file_level_errors() {
    let d = compile_str("#include <nope.p4>\n", "x.p4").unwrap_err();
    assert_eq!(
        d[0].to_string(),
        "x.p4:1:1: error: cannot find include file `nope.p4` (looked next to the including file, in each -I directory and in the compiler's own include directory)"
    );
    let d = compile_str("#include <fairnic_arch.p4>\nconst bit<8> X = 1;\n", "x.p4").unwrap_err();
    assert_eq!((d[0].line, d[0].column), (3, 1));
    assert!(d[0].message.contains("no `main`"), "{}", d[0]);
    let d = compile_str("", "empty.p4").unwrap_err();
    assert!(d[0].message.contains("no `main`"));
    let d = compile_str("header h { bit<8> a; }\nFairnicPipeline(P(), I(), D()) main;", "x.p4").unwrap_err();
    assert_eq!((d[0].line, d[0].column), (2, 1));
    assert!(d[0].message.contains("unknown package `FairnicPipeline`"), "{}", d[0]);
}

#[test]
fn block_shapes_are_checked() {
    let src = source(Holes::default()).replace(
        "inout m_t meta, inout standard_metadata_t std) {\nstate",
        "inout m_t meta) {\nstate",
    );
    let d = compile_str(&src, "t.p4").unwrap_err();
    assert_eq!((d[0].line, d[0].column), (7, 8));
    assert!(d[0].message.contains("`P` must take 4 parameters"), "{}", d[0]);
    let src = source(Holes::default()).replace(
        "control D(packet_out pkt, in hs_t hdr)",
        "control D(packet_out pkt, in m_t hdr)",
    );
    let d = compile_str(&src, "t.p4").unwrap_err();
    assert!(
        d[0].message.contains("the headers struct is `hs_t` elsewhere"),
        "{}",
        d[0]
    );
}

#[test]
fn nesting_limits() {
    let deep = format!("hdr.h.a = {}1{};", "(".repeat(100), ")".repeat(100));
    // The statement and its value take two levels, each `(` one more.
    fails(apply(&deep), APPLY, 11 + 63, "nested too deeply");
    let ifs = "if (meta.flag) ".repeat(20) + "exit;";
    fails(
        apply(&ifs),
        APPLY,
        1 + 16 * 15,
        "statements nested too deeply (at most 16 levels)",
    );
    let sum = format!("hdr.h.a = hdr.h.a{};", " + hdr.h.a".repeat(40));
    fails(apply(&sum), APPLY, 11, "expression too complex");
}

// ---------------------------------------------------------------------
// Robustness: any input gives a result
// ---------------------------------------------------------------------

#[test]
fn every_truncation_of_fairnic_compiles_or_fails_cleanly() {
    let mut failed = 0;
    for (i, _) in FAIRNIC_P4.char_indices().step_by(3) {
        if let Err(d) = compile_str(&FAIRNIC_P4[..i], "cut.p4") {
            assert!(d.iter().all(|d| d.line >= 1 && d.column >= 1 && !d.message.is_empty()));
            failed += 1;
        }
    }
    assert!(failed > 0);
}

#[test]
fn deeply_nested_input_does_not_overflow_the_stack() {
    // Runs on a test thread (2 MiB of stack).
    for src in [
        "(".repeat(200_000),
        "{".repeat(200_000),
        format!("control c() {{ apply {{ {} }} }}", "{".repeat(100_000)),
        format!("const bit<8> X = {};", "-".repeat(100_000)),
        format!("const bit<8> X = {}1;", "(bit<8>) ".repeat(50_000)),
        format!("const bit<8> X = 1{};", " + 1".repeat(100_000)),
        format!("const bit<8> X = x{};", ".y".repeat(100_000)),
        format!("const bit<8> X = {}1{};", "f(".repeat(50_000), ")".repeat(50_000)),
        format!("const bit<8> X = {}1{};", "x[".repeat(50_000), ":0]".repeat(50_000)),
        format!("typedef {}bit<8>{} t;", "a<".repeat(50_000), ">".repeat(50_000)),
        format!("@a{} header h {{ bit<8> a; }}", "(".repeat(100_000)),
        format!("control c() {{ apply {{ {} exit; }} }}", "if (true) ".repeat(100_000)),
    ] {
        assert!(compile_str(&src, "deep.p4").is_err());
    }
}

mod random {
    use super::*;
    use proptest::prelude::*;

    const VOCAB: &[&str] = &[
        "header",
        "struct",
        "control",
        "parser",
        "state",
        "transition",
        "select",
        "apply",
        "action",
        "table",
        "key",
        "actions",
        "default_action",
        "entries",
        "size",
        "const",
        "typedef",
        "bit<8>",
        "bit<16>",
        "bool",
        "if",
        "else",
        "exit",
        "extern",
        "package",
        "main",
        "hdr",
        "meta",
        "std",
        ".",
        ",",
        ";",
        ":",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "<",
        ">",
        "=",
        "==",
        "&&&",
        "&&",
        "||",
        "!",
        "~",
        "-",
        "+",
        "*",
        "<<",
        ">>",
        "&",
        "|",
        "^",
        "1",
        "0x800",
        "8w5",
        "16w0",
        "x",
        "h",
        "start",
        "accept",
        "reject",
        "default",
        "_",
        "isValid",
        "hit",
        "miss",
        "@cost(1)",
        "#include <fairnic_arch.p4>\n",
        "/* c */",
        "// c\n",
        "\n",
        "exact",
        "lpm",
        "ternary",
        "mark_to_drop",
        "count",
        "execute_meter",
        "extract",
        "emit",
        "true",
    ];

    fn mutate(src: &str, edits: &[(usize, u8, u8)]) -> String {
        let mut bytes = src.as_bytes().to_vec();
        for &(at, kind, b) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at % bytes.len();
            match kind % 4 {
                0 => bytes[at] = b,
                1 => {
                    bytes.remove(at);
                }
                2 => bytes.insert(at, b),
                _ => bytes.truncate(at),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn mutations_of_fairnic_never_panic(edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)) {
            let src = mutate(FAIRNIC_P4, &edits);
            let _ = compile_str(&src, "mutated.p4");
        }

        #[test]
        fn token_soup_never_panics(words in prop::collection::vec(prop::sample::select(VOCAB), 0..200)) {
            let src = words.join(" ");
            let _ = compile_str(&src, "soup.p4");
        }

        #[test]
        fn random_text_never_panics(s in ".{0,400}") {
            let _ = compile_str(&s, "random.p4");
        }

        #[test]
        fn spliced_fairnic_never_panics(a in 0usize..20_000, b in 0usize..20_000) {
            // A random piece of the program repeated inside itself.
            let n = FAIRNIC_P4.len();
            let (lo, hi) = (a.min(b) % n, a.max(b) % n);
            let piece = String::from_utf8_lossy(&FAIRNIC_P4.as_bytes()[lo.min(hi)..hi.max(lo)]).into_owned();
            let at = (a ^ b) % n;
            let mut src = String::from_utf8_lossy(&FAIRNIC_P4.as_bytes()[..at]).into_owned();
            src.push_str(&piece);
            src.push_str(&String::from_utf8_lossy(&FAIRNIC_P4.as_bytes()[at..]));
            let _ = compile_str(&src, "spliced.p4");
        }
    }
}

// ---------------------------------------------------------------------
// What the device's loader or p4c would refuse is refused, at its place
// ---------------------------------------------------------------------

/// The column (1-based) of `pat` in the line `s`.
fn col(s: &str, pat: &str) -> u32 {
    s.find(pat).expect("pattern in line") as u32 + 1
}

#[test]
fn const_entries_the_device_would_refuse_are_refused_at_the_entry() {
    let dup = "table u { key = { hdr.h.b: exact; } actions = { a; } const entries = { 1: a(1); 2: a(2); 1: a(3); } }";
    fails(
        locals(dup),
        LOCALS,
        col(dup, "1: a(3)"),
        &format!("duplicate entry keys: this entry of table `u` matches what its entry 1 (line {LOCALS}) matches"),
    );
    // 0x1f &&& 0xf0 is 0x10/4 again.
    let lpm = "table u { key = { hdr.h.b: lpm; } actions = { a; } const entries = { 0x10 &&& 0xf0: a(1); 0x1f &&& 0xf0: a(2); } }";
    fails(locals(lpm), LOCALS, col(lpm, "0x1f"), "duplicate entry keys");
    let flag = "table u { key = { meta.flag: exact; } actions = { a; } const entries = { true: a(1); true: a(2); } }";
    fails(locals(flag), LOCALS, col(flag, "true: a(2)"), "duplicate entry keys");
    let full = "table u { key = { hdr.h.b: exact; } actions = { a; } size = 2; const entries = { 1: a(1); 2: a(2); 3: a(3); } }";
    fails(
        locals(full),
        LOCALS,
        col(full, "3: a(3)"),
        "table `u` has 3 const entries but size 2: declare `size = 3` or more",
    );
    // What the device takes: as many entries as the size; the same
    // ternary key twice (two priorities, the first wins); different
    // prefixes of one value.
    ok(locals(
        "table u { key = { hdr.h.b: exact; } actions = { a; } size = 2; const entries = { 1: a(1); 2: a(2); } }",
    ));
    ok(locals(
        "table u { key = { hdr.h.b: ternary; } actions = { a; } const entries = { 1 &&& 0xff: a(1); 1 &&& 0xff: a(2); } }",
    ));
    ok(locals(
        "table u { key = { hdr.h.b: lpm; } actions = { a; } const entries = { 0x10 &&& 0xf0: a(1); 0x10 &&& 0xff: a(2); } }",
    ));
}

#[test]
fn bool_keys_and_selects_take_bools_not_integers() {
    let t = "table u { key = { meta.flag: exact; } actions = { a; } const entries = { 1: a(1); } }";
    fails(
        locals(t),
        LOCALS,
        col(t, "1: a(1)"),
        "expected bool (`true` or `false`), found",
    );
    let s = "pkt.extract(hdr.h); transition select(meta.flag) { 1: next; default: accept; }";
    fails(
        parser(s),
        PARSER,
        col(s, "1: next"),
        "expected bool (`true` or `false`), found",
    );
    ok(locals(
        "table u { key = { meta.flag: exact; } actions = { a; } const entries = { true: a(1); false: a(1); } }",
    ));
    ok(parser(
        "pkt.extract(hdr.h); transition select(meta.flag) { true: next; default: accept; }",
    ));
}

/// One generated table: its declaration and what applies it.
fn gen_table(name: &str, keys: &[(usize, usize)], size: Option<u32>, entries: &[GenEntry]) -> String {
    const FIELDS: [&str; 4] = ["hdr.h.a", "hdr.h.b", "meta.m", "meta.flag"];
    const KINDS: [&str; 3] = ["exact", "lpm", "ternary"];
    let mut s = format!("table {name} {{ key = {{ ");
    for &(f, k) in keys {
        s += &format!("{}: {}; ", FIELDS[f], KINDS[k]);
    }
    s += "} actions = { a; NoAction; } ";
    if let Some(n) = size {
        s += &format!("size = {n}; ");
    }
    if !entries.is_empty() {
        s += "const entries = { ";
        for (vals, arg) in entries {
            let ks: Vec<String> = keys
                .iter()
                .zip(vals)
                .map(|(&(f, k), &(v, m, any))| {
                    if f == 3 {
                        return if v & 1 == 1 { "true".into() } else { "false".into() };
                    }
                    match k {
                        _ if any && k != 0 => "_".into(),
                        0 => format!("{v}"),
                        // A prefix of m's leading ones for lpm, m as is
                        // for ternary.
                        1 => format!("{v} &&& 0x{:02x}", 0xffu8.checked_shl(u32::from(m % 9)).unwrap_or(0)),
                        _ => format!("{v} &&& 0x{m:02x}"),
                    }
                })
                .collect();
            let ks = if ks.len() == 1 {
                ks[0].clone()
            } else {
                format!("({})", ks.join(", "))
            };
            s += &format!("{ks}: a({arg}); ");
        }
        s += "} ";
    }
    s + "}"
}

/// A generated const entry: (value, mask, wildcard) per key, and the
/// action's argument.
type GenEntry = (Vec<(u8, u8, bool)>, u8);

/// The generator's tables: keys as (field, kind), size, entries.
type GenTables = Vec<(Vec<(usize, usize)>, Option<u32>, Vec<GenEntry>)>;

fn gen_tables() -> impl proptest::strategy::Strategy<Value = GenTables> {
    use proptest::prelude::*;
    proptest::collection::vec(
        (
            proptest::collection::vec(
                (0usize..4, prop_oneof![2 => Just(0usize), 1 => Just(1), 2 => Just(2)]),
                1..3,
            ),
            prop_oneof![
                4 => Just(None),
                4 => (1u32..8).prop_map(Some),
                1 => Just(Some(0)),
                1 => Just(Some(1 << 16)),
                1 => Just(Some(limits::TABLE_SIZE)),
                1 => Just(Some(limits::TABLE_SIZE + 1)),
            ],
            proptest::collection::vec(
                (
                    proptest::collection::vec((0u8..4, any::<u8>(), any::<bool>()), 4),
                    0u8..3,
                ),
                0..7,
            ),
        ),
        1..4,
    )
}

/// Whatever the compiler accepts, the device loads: 400 generated
/// programs (deterministic) with tables of every match kind, const
/// entries that repeat keys (small values), sizes around the entry count,
/// at the limit and past it, and past the device's state budget. 290 are
/// refused (sizes 0 or past the limit 102, duplicate keys 96, more entries
/// than size 55, the state budget 24, two lpm keys 13; `GEN_SHOW=1` lists
/// them); every one of the 110 accepted decodes and loads.
#[test]
fn every_program_the_compiler_accepts_loads_on_the_device() {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = gen_tables();
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..400 {
        let tables = strategy.new_tree(&mut runner).expect("value").current();
        let mut decls = String::new();
        let mut applies = String::new();
        for (i, (keys, size, entries)) in tables.iter().enumerate() {
            decls += &gen_table(&format!("g{i}"), keys, *size, entries);
            decls += " ";
            applies += &format!("g{i}.apply(); ");
        }
        let src = source(Holes {
            locals: &decls,
            apply: &applies,
            ..Holes::default()
        });
        match compile_str(&src, "t.p4") {
            Ok(p) => {
                accepted += 1;
                let back = Program::from_image(&p.to_image()).unwrap_or_else(|e| {
                    panic!(
                        "{src}
image refused: {e:?}"
                    )
                });
                if let Err(e) = Pipeline::with_executor(back, Executor::Reference) {
                    panic!(
                        "{src}
the device refused what the compiler accepted: {e:?}"
                    );
                }
            }
            Err(d) => {
                refused += 1;
                if std::env::var_os("GEN_SHOW").is_some() {
                    eprintln!("REFUSED {}", d[0].message);
                }
            }
        }
    }
    assert!(
        accepted >= 100 && refused >= 50,
        "accepted {accepted}, refused {refused}: the generator lost its mix"
    );
}

#[test]
fn the_device_state_budget_is_said_at_the_largest_declaration() {
    let t = "table u { key = { hdr.h.b: exact; } actions = { a; } size = 1048576; }";
    fails(
        locals(t),
        LOCALS,
        col(t, "u {"),
        "need 98400 KiB of device state, the device has 65536 KiB; `u` alone takes 98304 KiB",
    );
    let c = "counter(1048576, CounterType.packets) c; meter(1048576, MeterType.packets) big;";
    fails(locals(c), LOCALS, col(c, "big"), "`big` alone takes 65536 KiB");
}

#[test]
fn table_properties_p4c_refuses() {
    let t = "table u { default_action = a(1); key = { hdr.h.b: exact; } actions = { a; } }";
    fails(
        locals(t),
        LOCALS,
        col(t, "default_action"),
        "`default_action` of table `u` comes before its `actions`",
    );
    let t = "table u { actions = { a; } const entries = { _: a(1); } }";
    fails(
        locals(t),
        LOCALS,
        col(t, "entries"),
        "table `u` has no key: it cannot have entries",
    );
    let t =
        "table u { key = { hdr.h.b: exact; } actions = { @defaultonly a; NoAction; } const entries = { 1: a(1); } }";
    fails(
        locals(t),
        LOCALS,
        col(t, "a(1)"),
        "action `a` is @defaultonly in table `u`: an entry cannot run it",
    );
    let t = "table u { key = { hdr.h.b: exact; } actions = { @tableonly a; NoAction; } default_action = a(1); }";
    fails(
        locals(t),
        LOCALS,
        col(t, "a(1)"),
        "action `a` is @tableonly in table `u`: it cannot be the default action",
    );
    // Where they may run, they do.
    ok(locals(
        "table u { key = { hdr.h.b: exact; } actions = { @tableonly a; @defaultonly NoAction; } const entries = { 1: a(1); } default_action = NoAction; }",
    ));
}

#[test]
fn duplicate_parameter_and_type_parameter_names() {
    let t = "parser Q(packet_in pkt, out hs_t hdr, inout m_t hdr) { state start { transition accept; } }";
    fails(
        top(t),
        TOP,
        col(t, "hdr)"),
        "duplicate parameter `hdr` (first at line 2)",
    );
    let t = "control C(inout bit<8> x, inout bit<8> x) { apply { } }";
    fails(top(t), TOP, col(t, "x)"), "duplicate parameter `x`");
    let t = "package Pk<H>(H a, H a);";
    fails(top(t), TOP, col(t, "a)"), "duplicate parameter `a`");
    let t = "package Pk<H, H>(H a);";
    fails(top(t), TOP, col(t, "H>"), "duplicate type parameter `H`");
}

#[test]
fn a_parser_that_never_ends_is_refused() {
    fails(
        parser("pkt.extract(hdr.h); transition start;"),
        PARSER - 2,
        8,
        "parser `P` never reaches `accept` or `reject`: every packet would end in a parser timeout",
    );
    // A loop with a way out is a parser.
    ok(parser("transition select(meta.flag) { true: start; default: next; }"));
}

#[test]
fn include_directories_are_searched_in_order_after_the_files_own() {
    let dir = std::env::temp_dir().join(format!("p4-include-dirs-{}", std::process::id()));
    for d in ["src", "inc1", "inc2"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let main = source(Holes::default()).replacen("header h_t { bit<8> a; bit<8> b; }", "#include <h.p4>", 1);
    std::fs::write(dir.join("src/main.p4"), &main).unwrap();
    // Not found without -I; found in the first -I directory that has it.
    let d = compile_file(&dir.join("src/main.p4")).unwrap_err();
    assert!(d[0].message.contains("cannot find include file `h.p4`"), "{}", d[0]);
    std::fs::write(dir.join("inc2/h.p4"), "header h_t { bit<8> a; bit<8> b; }\n").unwrap();
    std::fs::write(dir.join("inc1/h.p4"), "header h_t { bit<8> a; bit<8> b }\n").unwrap();
    let dirs = [dir.join("inc1"), dir.join("inc2")];
    let d = compile_file_with(&dir.join("src/main.p4"), &dirs).unwrap_err();
    assert!(d[0].file.ends_with("inc1/h.p4"), "the first directory wins: {}", d[0]);
    let p = compile_file_with(&dir.join("src/main.p4"), &[dir.join("inc2"), dir.join("inc1")]).unwrap();
    assert_eq!(p.name, "main");
    // fairnic_arch.p4 needs no directory: it is built in.
    assert!(compile_file_with(&dir.join("src/main.p4"), &[dir.join("nonexistent"), dir.join("inc2")]).is_ok());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn other_architectures_are_told_what_fairnic_has() {
    for arch in ["core.p4", "v1model.p4", "psa.p4"] {
        let src = format!("#include <{arch}>\n");
        let d = compile_str(&src, "t.p4").unwrap_err();
        assert_eq!((d[0].line, d[0].column), (1, 1), "{}", d[0]);
        let m = &d[0].message;
        assert!(m.contains("write `#include <fairnic_arch.p4>` instead"), "{m}");
        assert!(
            m.contains("FairnicPipeline(MyParser(), MyIngress(), MyDeparser()) main;"),
            "{m}"
        );
        assert!(m.contains(arch), "{m}");
    }
    // The architecture included, a v1model main: the package fairnic has.
    let src = source(Holes::default()).replace("FairnicPipeline(P(), I(), D()) main;", "V1Switch(P(), I(), D()) main;");
    let d = compile_str(&src, "t.p4").unwrap_err();
    assert!(
        d[0].message
            .contains("unknown package `V1Switch`: fairnic's architecture has one package"),
        "{}",
        d[0]
    );
    assert!(!d[0].message.contains("missing?"), "{}", d[0]);
}

#[test]
fn constructs_outside_the_subset_are_named_where_they_are() {
    let t = "typedef bit<2 + 2> t4;";
    fails(
        top(t),
        TOP,
        col(t, "2 +"),
        "width expressions in `bit<...>` are not supported",
    );
    let a = "lif_count.count<bit<32>>(1);";
    fails(
        Holes {
            locals: "counter(4, CounterType.packets) lif_count;",
            apply: a,
            ..Holes::default()
        },
        APPLY,
        col(a, "<bit"),
        "explicit type arguments (`f<T>(...)`) are not supported",
    );
    let f = "for (bit<8> i = 0; i < 4; i = i + 1) { }";
    fails(apply(f), APPLY, 1, "`for` loops are not supported");
    // `@pragma` takes the rest of its line; the next line is a
    // declaration again.
    ok(top("@pragma fairnic anything goes here\nconst bit<8> PRAGMA_NEXT = 1;"));
    // A string annotation may span lines.
    ok(top("@name(\"two\nlines\") const bit<8> NAMED = 1;"));
}

/// The template with `decl` declared just before the deparser; the line
/// `decl` starts on.
fn with_block(decl: &str) -> (String, u32) {
    let src = source(Holes::default()).replacen("control D(", &format!("{decl}\ncontrol D("), 1);
    let line = src
        .lines()
        .position(|l| l.starts_with(decl.lines().next().unwrap_or("")))
        .unwrap() as u32
        + 1;
    (src, line)
}

#[test]
fn blocks_main_does_not_use_are_checked_too() {
    let first = |src: &str| compile_str(src, "t.p4").unwrap_err()[0].clone();
    let u = "control U(inout hs_t hdr, inout m_t meta, inout standard_metadata_t std) { apply { hdr.nope.a = 1; } }";
    let (src, line) = with_block(u);
    let d = first(&src);
    assert_eq!((d.line, d.column), (line, col(u, "nope")), "{d}");
    assert!(d.message.contains("nope"), "{d}");
    let u = "control U(inout hs_t hdr, inout m_t meta, inout standard_metadata_t std) { apply { undefined_fn(); } }";
    let (src, line) = with_block(u);
    let d = first(&src);
    assert_eq!(d.line, line, "{d}");
    assert!(d.message.contains("undefined_fn"), "{d}");
    let q = "parser Q(packet_in pkt, out hs_t hdr, inout m_t meta, inout standard_metadata_t std) { state start { pkt.extract(hdr.nope); transition accept; } }";
    let (src, line) = with_block(q);
    let d = first(&src);
    assert_eq!((d.line, d.column), (line, col(q, "nope")), "{d}");
    let e = "control E(packet_out pkt, in hs_t hdr) { apply { pkt.emit(hdr.nope); } }";
    let (src, line) = with_block(e);
    assert_eq!(first(&src).line, line);
    // Other types than main's blocks use: said so.
    let o = "control O(inout m_t hdr, inout m_t meta, inout standard_metadata_t std) { apply { } }";
    let (src, line) = with_block(o);
    let d = first(&src);
    assert_eq!(d.line, line, "{d}");
    assert!(d.message.contains("every block must use the same type"), "{d}");
    // A correct block main does not use is no error.
    let (src, _) = with_block(
        "control U(inout hs_t hdr, inout m_t meta, inout standard_metadata_t std) { apply { hdr.h.a = 1; } }",
    );
    compile_str(&src, "t.p4").unwrap();
}

/// The table of docs/pipeline.md that says what the compiler takes and
/// refuses: every row's example, put where the row says, gets the row's
/// verdict.
#[test]
fn the_subset_table_in_the_docs_is_what_the_compiler_does() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/pipeline.md")).unwrap();
    let table = doc
        .split("<!-- subset:begin -->")
        .nth(1)
        .and_then(|t| t.split("<!-- subset:end -->").next())
        .expect("docs/pipeline.md has the subset table");
    let mut rows = 0;
    for line in table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| construct"))
    {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let [what, place, example, verdict] = cells[..] else {
            panic!("a row of four cells: {line}");
        };
        let example = example.trim_matches('`');
        let holes = match place {
            "top" => top(example),
            "parser" => parser(example),
            "locals" => locals(example),
            "apply" => apply(example),
            other => panic!("{what}: unknown place `{other}`"),
        };
        match (compile(holes), verdict) {
            (Ok(_), "accepted") => {}
            (Err(d), v) if v.starts_with("refused: ") => {
                let want = &v["refused: ".len()..];
                assert!(d[0].message.contains(want), "{what}: `{}` does not say `{want}`", d[0]);
            }
            (Ok(_), v) => panic!("{what}: accepted, the table says {v}"),
            (Err(d), v) => panic!("{what}: refused ({}), the table says {v}", d[0]),
        }
        rows += 1;
    }
    assert!(rows >= 30, "{rows} rows");
}

#[test]
fn direct_counters_and_meters_lower_to_their_tables() {
    let p = ok(locals(
        "direct_counter(CounterType.packets) dc;
         direct_meter<bit<8>>(MeterType.bytes) dm;
         action rd() { dm.read(meta.m); dc.count(); }
         table d { key = { hdr.h.b: ternary; } actions = { rd; NoAction; } counters = dc; meters = dm; size = 32; }",
    ));
    let (_, d) = p.table("d").unwrap();
    let c = usize::from(d.direct_counter.expect("counters = dc"));
    let m = usize::from(d.direct_meter.expect("meters = dm"));
    assert_eq!((p.counters[c].name.as_str(), p.counters[c].size), ("dc", 32));
    assert_eq!((p.meters[m].name.as_str(), p.meters[m].size), ("dm", 32));
    let (_, rd) = p.action("rd").unwrap();
    assert_eq!(
        rd.body,
        [Stmt::DirectMeter {
            meter: m as u16,
            dst: FieldRef::Meta(8),
        }],
        "count() adds nothing"
    );
}

#[test]
fn direct_resource_errors() {
    fails(
        locals("direct_counter(CounterType.packets) dc;"),
        LOCALS,
        37,
        "`dc` belongs to no table",
    );
    fails(
        locals(
            "direct_counter(CounterType.packets) dc;
table u { key = { hdr.h.b: exact; } actions = { a; } counters = dc; }
table v { key = { hdr.h.b: exact; } actions = { a; } counters = dc; }",
        ),
        LOCALS,
        37,
        "is table `u`'s already",
    );
    fails(
        locals("table u { key = { hdr.h.b: exact; } actions = { a; } counters = t; }"),
        LOCALS,
        65,
        "`t` is not a direct_counter",
    );
    fails(
        locals(
            "direct_meter<bit<8>>(MeterType.packets) dm;
action rd() { dm.read(meta.m); }
table u { key = { hdr.h.b: exact; } actions = { rd; } }
table v { key = { hdr.h.b: exact; } actions = { a; } meters = dm; }",
        ),
        LOCALS + 2,
        49,
        "reads a direct meter that table `u` does not have",
    );
    fails(
        Holes {
            locals: "direct_meter<bit<8>>(MeterType.packets) dm;
action rd() { dm.read(meta.m); }
table u { key = { hdr.h.b: exact; } actions = { rd; } meters = dm; }",
            apply: "rd();",
            ..Holes::default()
        },
        APPLY + 2,
        1,
        "action `rd` reads a direct meter",
    );
    fails(
        Holes {
            locals: "direct_meter<bit<8>>(MeterType.packets) dm;
table u { key = { hdr.h.b: exact; } actions = { a; } meters = dm; }",
            apply: "dm.read(meta.m);",
            ..Holes::default()
        },
        APPLY + 1,
        4,
        "a direct meter is read in an action of its table",
    );
    fails(
        locals(
            "direct_counter(CounterType.packets) dc;
table u { actions = { a; } counters = dc; }",
        ),
        LOCALS + 1,
        7,
        "has no key",
    );
    fails(
        locals("direct_meter<bit<8>>(MeterType.packets) lif_packets;"),
        LOCALS,
        41,
        "per-LIF meter's name",
    );
    fails(
        locals(
            "direct_meter<bit<1>>(MeterType.packets) dm;
action rd() { dm.read(meta.one); }",
        ),
        LOCALS + 1,
        23,
        "needs at least 2 bits",
    );
    fails(locals("direct_counter(7) dc;"), LOCALS, 16, "`7` is not a name");
}
