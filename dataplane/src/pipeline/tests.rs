//! The executor on a small hand-built program (Ethernet, IPv4, UDP; an
//! exact L2 table, an LPM route table that rewrites the TTL, a ternary ACL,
//! a packets meter and a counter). The P4 front end's own tests run the
//! real `fairnic.p4` through the same executor.

use super::*;
use crate::abi::{MeterConfig, MeterMode, MeterResource, TableEntry};
use crate::packet::build_udp4;
use proptest::prelude::*;

const ETH: u16 = 0;
const IPV4: u16 = 1;
const UDP: u16 = 2;
/// Metadata: std fields, then `color` (index 8).
const COLOR: u16 = 8;
const A_TO_LIF: u16 = 0;
const A_DROP: u16 = 1;
const A_NOP: u16 = 2;
const A_DEC_TTL: u16 = 3;
const T_L2: u16 = 0;
const T_ROUTE: u16 = 1;
const T_ACL: u16 = 2;

fn header(name: &str, fields: &[(&str, u16)]) -> HeaderDef {
    let mut at = 0;
    let fields: Vec<FieldDef> = fields
        .iter()
        .map(|&(n, w)| {
            let f = FieldDef {
                name: n.into(),
                bit_off: at,
                width: w,
            };
            at += w;
            f
        })
        .collect();
    HeaderDef {
        name: name.into(),
        type_name: format!("{name}_t"),
        fields,
        len: at / 8,
    }
}

fn f(header: u16, field: u16) -> FieldRef {
    FieldRef::Header { header, field }
}

fn k(width: u16, value: u64) -> Expr {
    Expr::Const { value, width }
}

fn key(expr: FieldRef, kind: MatchKind, width: u16) -> KeyDef {
    KeyDef {
        expr: KeyExpr::Field(expr),
        kind,
        width,
        name: format!("{expr:?}"),
    }
}

fn program() -> Program {
    let mut meta: Vec<FieldDef> = std_meta::defs();
    meta.push(FieldDef {
        name: "color".into(),
        bit_off: 0,
        width: 2,
    });
    let eth = header("ethernet", &[("dst", 48), ("src", 48), ("ether_type", 16)]);
    let ipv4 = header(
        "ipv4",
        &[
            ("version", 4),
            ("ihl", 4),
            ("tos", 8),
            ("total_len", 16),
            ("id", 16),
            ("frag", 16),
            ("ttl", 8),
            ("protocol", 8),
            ("csum", 16),
            ("src", 32),
            ("dst", 32),
        ],
    );
    let udp = header("udp", &[("sport", 16), ("dport", 16), ("len", 16), ("csum", 16)]);
    let parser = vec![
        ParserState {
            name: "start".into(),
            cost: 1,
            ops: vec![ParserOp::Extract(ETH)],
            transition: Transition::Select {
                keys: vec![Expr::Field(f(ETH, 2))],
                cases: vec![SelectCase {
                    matches: vec![(0x0800, 0xffff)],
                    next: Next::State(1),
                }],
                default: Next::Accept,
            },
        },
        ParserState {
            name: "parse_ipv4".into(),
            cost: 1,
            ops: vec![ParserOp::Extract(IPV4)],
            transition: Transition::Select {
                keys: vec![Expr::Field(f(IPV4, 0)), Expr::Field(f(IPV4, 7))],
                cases: vec![
                    SelectCase {
                        matches: vec![(4, 0xf), (17, 0xff)],
                        next: Next::State(2),
                    },
                    SelectCase {
                        matches: vec![(4, 0xf), (0, 0)],
                        next: Next::Accept,
                    },
                ],
                default: Next::Reject,
            },
        },
        ParserState {
            name: "parse_udp".into(),
            cost: 1,
            ops: vec![ParserOp::Extract(UDP)],
            transition: Transition::Next(Next::Accept),
        },
    ];
    let actions = vec![
        ActionDef {
            name: "to_lif".into(),
            params: vec![ParamDef {
                name: "lif".into(),
                width: 16,
            }],
            body: vec![Stmt::Assign {
                dst: FieldRef::Meta(std_meta::EGRESS_LIF),
                value: Expr::Param(0),
            }],
            cost: 1,
        },
        ActionDef {
            name: "drop".into(),
            params: vec![],
            body: vec![Stmt::Drop],
            cost: 0,
        },
        ActionDef {
            name: "NoAction".into(),
            params: vec![],
            body: vec![],
            cost: 0,
        },
        ActionDef {
            name: "dec_ttl".into(),
            params: vec![],
            body: vec![Stmt::Assign {
                dst: f(IPV4, 6),
                value: Expr::Binary {
                    op: BinOp::Sub,
                    lhs: Box::new(Expr::Field(f(IPV4, 6))),
                    rhs: Box::new(k(8, 1)),
                    width: 8,
                },
            }],
            cost: 2,
        },
    ];
    let tables = vec![
        TableDef {
            name: "l2_fwd".into(),
            keys: vec![key(f(ETH, 0), MatchKind::Exact, 48)],
            actions: vec![A_TO_LIF, A_DROP, A_NOP],
            default_action: A_NOP,
            default_args: vec![],
            size: 1024,
            cost: 1,
            entries: vec![],
            direct_counter: None,
            direct_meter: None,
        },
        TableDef {
            name: "route".into(),
            keys: vec![key(f(IPV4, 10), MatchKind::Lpm, 32)],
            actions: vec![A_DEC_TTL, A_NOP],
            default_action: A_NOP,
            default_args: vec![],
            size: 1024,
            cost: 1,
            entries: vec![],
            direct_counter: None,
            direct_meter: None,
        },
        TableDef {
            name: "acl".into(),
            keys: vec![
                key(f(IPV4, 9), MatchKind::Ternary, 32),
                key(f(IPV4, 7), MatchKind::Ternary, 8),
            ],
            actions: vec![A_DROP, A_NOP],
            default_action: A_NOP,
            default_args: vec![],
            size: 64,
            cost: 1,
            // A program-stated entry: drop everything from 192.0.2.0/24.
            entries: vec![EntryDef {
                key: vec![(0xc000_0200, 0xffff_ff00), (0, 0)],
                priority: 1,
                action: A_DROP,
                args: vec![],
            }],
            direct_counter: None,
            direct_meter: None,
        },
    ];
    let ingress = vec![
        Stmt::Count {
            counter: 0,
            index: Expr::Field(FieldRef::Meta(std_meta::INGRESS_LIF)),
        },
        Stmt::Meter {
            meter: 0,
            index: Expr::Field(FieldRef::Meta(std_meta::INGRESS_LIF)),
            dst: FieldRef::Meta(COLOR),
        },
        Stmt::If {
            cond: Expr::Binary {
                op: BinOp::Eq,
                lhs: Box::new(Expr::Field(FieldRef::Meta(COLOR))),
                rhs: Box::new(k(2, 2)),
                width: 1,
            },
            then: vec![Stmt::Drop, Stmt::Exit],
            otherwise: vec![],
        },
        Stmt::If {
            cond: Expr::Valid(IPV4),
            then: vec![
                Stmt::Apply {
                    table: T_ACL,
                    on_hit: vec![],
                    on_miss: vec![],
                },
                Stmt::Apply {
                    table: T_ROUTE,
                    on_hit: vec![],
                    on_miss: vec![],
                },
            ],
            otherwise: vec![],
        },
        Stmt::Apply {
            table: T_L2,
            on_hit: vec![],
            on_miss: vec![Stmt::If {
                cond: Expr::Binary {
                    op: BinOp::Ne,
                    lhs: Box::new(Expr::Field(FieldRef::Meta(std_meta::INGRESS_LIF))),
                    rhs: Box::new(k(16, 0xffff)),
                    width: 1,
                },
                then: vec![Stmt::Assign {
                    dst: FieldRef::Meta(std_meta::TO_UPLINK),
                    value: k(1, 1),
                }],
                otherwise: vec![],
            }],
        },
    ];
    Program {
        name: "mini".into(),
        headers: vec![eth, ipv4, udp],
        meta,
        parser,
        actions,
        tables,
        meters: vec![MeterDef {
            name: "lif_packets".into(),
            size: 16,
            unit: MeterUnit::Packets,
        }],
        counters: vec![CounterDef {
            name: "lif_in".into(),
            size: 16,
            unit: CounterUnit::PacketsAndBytes,
        }],
        ingress,
        deparse: vec![ETH, IPV4, UDP],
        base_cost: 1,
    }
}

const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

fn udp(dst: [u8; 6], ip_dst: [u8; 4]) -> Vec<u8> {
    build_udp4(dst, A, [10, 0, 0, 1], ip_dst, (1, 2), b"payload", 64)
}

fn l2(p: &mut Pipeline, mac: [u8; 6], lif: u16) {
    p.apply_entry(
        &TableEntry::exact(T_L2.into(), &mac, A_TO_LIF.into(), &lif.to_be_bytes()),
        true,
    )
    .unwrap();
}

#[test]
fn exact_hit_forwards_and_a_miss_takes_the_default() {
    let mut p = Pipeline::new(program()).unwrap();
    l2(&mut p, B, 7);
    let o = p.process(0, &mut udp(B, [10, 0, 0, 2]), 3);
    assert_eq!(o.verdict, Verdict::ToLif(7));
    // base 1 + 3 states + acl 1 + route 1 + l2 1 + to_lif 1
    assert_eq!(o.cost, 8);
    assert_eq!(p.process(0, &mut udp(A, [10, 0, 0, 2]), 3).verdict, Verdict::ToUplink);
    assert_eq!(
        p.process(0, &mut udp(A, [10, 0, 0, 2]), 0xffff).verdict,
        Verdict::NoRoute,
        "a miss from the wire has nowhere to go"
    );
    assert_eq!(p.table_hits(T_L2), Some((1, 2)));
    assert_eq!(p.counter(0, 3), Some((2, 128)));
}

#[test]
fn malformed_packets_are_counted_parse_errors() {
    let mut p = Pipeline::new(program()).unwrap();
    let good = udp(B, [10, 0, 0, 2]);
    // Truncated in the IPv4 header; IPv4 version 6; empty.
    let mut short = good[..20].to_vec();
    let mut v6 = good.clone();
    v6[14] = 0x65;
    let mut empty: Vec<u8> = Vec::new();
    for pkt in [&mut short, &mut v6, &mut empty] {
        assert_eq!(p.process(0, pkt, 1).verdict, Verdict::ParseError);
    }
    assert_eq!(p.stats().parse_errors, 3);
    assert_eq!(p.stats().packets, 3);
    // A non-IPv4 frame parses (Ethernet only) and is switched.
    let mut arp = good.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    l2(&mut p, B, 4);
    assert_eq!(p.process(0, &mut arp, 1).verdict, Verdict::ToLif(4));
}

#[test]
fn lpm_route_rewrites_the_ttl_in_place() {
    let mut p = Pipeline::new(program()).unwrap();
    let mut e = TableEntry::exact(T_ROUTE.into(), &[10, 1, 0, 0], A_DEC_TTL.into(), &[]);
    e.mask = [0; 32];
    e.prefix_len = 16.into();
    p.apply_entry(&e, true).unwrap();
    let mut pkt = udp(B, [10, 1, 2, 3]);
    let ttl = pkt[22];
    p.process(0, &mut pkt, 1);
    assert_eq!(pkt[22], ttl - 1, "TTL decremented in the packet");
    let mut other = udp(B, [10, 2, 2, 3]);
    p.process(0, &mut other, 1);
    assert_eq!(other[22], ttl, "outside the prefix: untouched");
    e.prefix_len = 33.into();
    assert!(matches!(p.apply_entry(&e, true), Err(EntryError::Invalid { .. })));
}

#[test]
fn ternary_acl_from_the_program_and_the_control_plane() {
    let mut p = Pipeline::new(program()).unwrap();
    l2(&mut p, B, 2);
    let mut from_test_net = build_udp4(B, A, [192, 0, 2, 9], [10, 0, 0, 1], (1, 2), b"x", 64);
    assert_eq!(
        p.process(0, &mut from_test_net, 1).verdict,
        Verdict::Drop,
        "program entry"
    );
    // Control plane: drop UDP (protocol 17) from anywhere, priority 5.
    let mut e = TableEntry::exact(T_ACL.into(), &[0, 0, 0, 0, 17], A_DROP.into(), &[]);
    e.mask[..5].copy_from_slice(&[0, 0, 0, 0, 0xff]);
    e.priority = 5.into();
    p.apply_entry(&e, true).unwrap();
    assert_eq!(p.process(0, &mut udp(B, [10, 0, 0, 2]), 1).verdict, Verdict::Drop);
    p.apply_entry(&e, false).unwrap();
    assert_eq!(p.process(0, &mut udp(B, [10, 0, 0, 2]), 1).verdict, Verdict::ToLif(2));
    assert!(matches!(p.apply_entry(&e, false), Err(EntryError::NotFound(_))));
    assert_eq!(p.entries(T_ACL).unwrap().len(), 1);
}

#[test]
fn entries_read_back_in_the_abi_form_they_were_given_in_key_order_and_in_pages() {
    let mut p = Pipeline::new(program()).unwrap();
    let mut given = Vec::new();
    for (mac, lif) in [(B, 7u16), (A, 3)] {
        let e = TableEntry::exact(T_L2.into(), &mac, A_TO_LIF.into(), &lif.to_be_bytes());
        p.apply_entry(&e, true).unwrap();
        given.push(e);
    }
    // Exact: ordered by key (A before B), each byte as given.
    assert_eq!(p.abi_entries(T_L2, 0, 10), Some((vec![given[1], given[0]], 2)));
    // In pages of one, and past the end.
    assert_eq!(p.abi_entries(T_L2, 1, 1), Some((vec![given[0]], 2)));
    assert_eq!(p.abi_entries(T_L2, 2, 1), Some((vec![], 2)));
    // LPM: the prefix length, a zero mask.
    let mut r = TableEntry::exact(T_ROUTE.into(), &[10, 1, 0, 0], A_DEC_TTL.into(), &[]);
    r.mask = [0; 32];
    r.prefix_len = 16.into();
    p.apply_entry(&r, true).unwrap();
    assert_eq!(p.abi_entries(T_ROUTE, 0, 10), Some((vec![r], 1)));
    // Ternary: mask and priority; the program's own entry is listed too.
    let mut t = TableEntry::exact(T_ACL.into(), &[0, 0, 0, 0, 17], A_DROP.into(), &[]);
    t.mask[..5].copy_from_slice(&[0, 0, 0, 0, 0xff]);
    t.priority = 5.into();
    p.apply_entry(&t, true).unwrap();
    let (acl, total) = p.abi_entries(T_ACL, 0, 10).unwrap();
    assert_eq!(total, 2);
    assert!(acl.contains(&t), "{acl:?}");
    for e in &acl {
        TableEntry::parse(zerocopy::IntoBytes::as_bytes(e)).unwrap();
    }
    assert_eq!(p.abi_entries(99, 0, 10), None);
}

#[test]
fn control_plane_entries_are_checked() {
    let mut p = Pipeline::new(program()).unwrap();
    let e = TableEntry::exact(99, &B, 0, &[0, 1]);
    assert_eq!(p.apply_entry(&e, true), Err(EntryError::NoTable(99)));
    let e = TableEntry::exact(T_L2.into(), &B, A_DEC_TTL.into(), &[]);
    assert!(
        matches!(p.apply_entry(&e, true), Err(EntryError::NoAction { .. })),
        "not one of l2_fwd's"
    );
    let e = TableEntry::exact(T_L2.into(), &B[..4], A_TO_LIF.into(), &[0, 1]);
    assert!(
        matches!(p.apply_entry(&e, true), Err(EntryError::Invalid { .. })),
        "short key"
    );
    let e = TableEntry::exact(T_L2.into(), &B, A_TO_LIF.into(), &[1]);
    assert!(
        matches!(p.apply_entry(&e, true), Err(EntryError::Invalid { .. })),
        "short params"
    );
    l2(&mut p, B, 1);
    let e = TableEntry::exact(T_L2.into(), &B, A_TO_LIF.into(), &[0, 2]);
    assert!(matches!(p.apply_entry(&e, true), Err(EntryError::Exists(_))));
}

#[test]
fn a_red_meter_drops_and_exits() {
    let mut p = Pipeline::new(program()).unwrap();
    l2(&mut p, B, 2);
    let cfg = MeterConfig {
        resource: MeterResource::Packets.raw(),
        mode: MeterMode::SrTcm.raw(),
        cir: 1.into(),
        cburst: 2.into(),
        eburst: 1.into(),
        ..Default::default()
    };
    p.set_meter(0, 5, &cfg, 0).unwrap();
    let v: Vec<Verdict> = (0..5)
        .map(|_| p.process(0, &mut udp(B, [10, 0, 0, 2]), 5).verdict)
        .collect();
    assert_eq!(
        v,
        [
            Verdict::ToLif(2),
            Verdict::ToLif(2),
            Verdict::ToLif(2),
            Verdict::Drop,
            Verdict::Drop
        ],
        "2 green, 1 yellow, then red"
    );
    // LIF 6 has no meter configured: always green.
    assert_eq!(p.process(0, &mut udp(B, [10, 0, 0, 2]), 6).verdict, Verdict::ToLif(2));
    // An index outside the arrays is counted, not a crash.
    p.process(0, &mut udp(B, [10, 0, 0, 2]), 100);
    assert_eq!(p.stats().index_errors, 2, "counter and meter");
    assert!(p.set_meter(0, 16, &cfg, 0).is_err());
}

#[test]
fn batches_give_the_same_results_as_single_packets() {
    let mut a = Pipeline::new(program()).unwrap();
    let mut b = Pipeline::new(program()).unwrap();
    for p in [&mut a, &mut b] {
        l2(p, B, 9);
    }
    let mut pkts: Vec<Vec<u8>> = (0..40)
        .map(|i| match i % 4 {
            0 => udp(B, [10, 0, 0, i]),
            1 => udp(A, [10, 0, 0, i]),
            2 => udp(B, [10, 0, 0, i])[..30].to_vec(),
            _ => build_udp4(B, A, [192, 0, 2, 1], [10, 0, 0, 1], (1, 2), b"x", 64),
        })
        .collect();
    let mut copy = pkts.clone();
    let single: Vec<Outcome> = copy.iter_mut().map(|d| a.process(0, d, 1)).collect();
    let mut batch: Vec<Input<'_>> = pkts
        .iter_mut()
        .map(|d| Input {
            data: d,
            ingress_lif: 1,
        })
        .collect();
    let mut out = Vec::new();
    b.process_batch(0, &mut batch, &mut out);
    assert_eq!(single, out);
    assert_eq!(a.stats(), b.stats());
}

#[test]
fn images_round_trip_and_bad_images_are_refused() {
    let prog = program();
    let img = prog.to_image();
    assert_eq!(Program::from_image(&img).unwrap(), prog);
    assert_eq!(Program::from_image(b"nope"), Err(ProgramError::Magic));
    let mut v2 = img.clone();
    v2[4] = 9;
    assert_eq!(Program::from_image(&v2), Err(ProgramError::Version(9)));
    assert!(matches!(
        Program::from_image(&img[..img.len() - 3]),
        Err(ProgramError::Decode(_))
    ));
    let mut extra = img.clone();
    extra.push(0);
    assert!(matches!(Program::from_image(&extra), Err(ProgramError::Decode(_))));
    // Decodes, but refers to a header that does not exist.
    let mut bad = prog.clone();
    bad.parser[0].ops = vec![ParserOp::Extract(42)];
    assert!(matches!(
        Program::from_image(&bad.to_image()),
        Err(ProgramError::Invalid(_))
    ));
    let mut bad = prog.clone();
    bad.tables[0].keys[0].width = 12;
    assert!(matches!(bad.validate(), Err(ProgramError::Invalid(_))));
    let mut bad = prog;
    bad.actions[0].body = vec![Stmt::Assign {
        dst: FieldRef::Meta(1),
        value: Expr::Param(3),
    }];
    assert!(matches!(bad.validate(), Err(ProgramError::Invalid(_))));
}

#[test]
fn nesting_past_the_limits_is_refused() {
    let mut prog = program();
    prog.ingress = vec![Stmt::Assign {
        dst: FieldRef::Meta(COLOR),
        value: k(2, 0),
    }];
    let good = prog.to_image();
    assert!(Program::from_image(&good).is_ok());
    let mut deep = prog.clone();
    let mut e = k(1, 0);
    for _ in 0..40 {
        e = Expr::Unary {
            op: UnOp::Not,
            arg: Box::new(e),
            width: 1,
        };
    }
    deep.ingress = vec![Stmt::If {
        cond: e,
        then: vec![],
        otherwise: vec![],
    }];
    assert!(matches!(
        Program::from_image(&deep.to_image()),
        Err(ProgramError::Invalid(_))
    ));
}

#[test]
fn costs_and_state_past_the_device_budget_are_refused_naming_the_limit() {
    let msg = |r: Result<(), ProgramError>| match r {
        Err(ProgramError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    };
    // One cost past its limit: an image of base_cost u32::MAX used to
    // overflow the sum in a debug build and under-charge in release.
    let mut p = program();
    p.base_cost = u32::MAX;
    let m = msg(p.validate());
    assert!(m.contains("base cost") && m.contains("65535"), "{m}");
    assert!(Pipeline::from_image(&p.to_image()).is_err());
    let mut p = program();
    p.tables[0].cost = limits::COST + 1;
    assert!(msg(p.validate()).contains("a table's cost"));
    // Every cost at its limit but the costliest path past the bound.
    let mut p = program();
    for st in &mut p.parser {
        st.cost = limits::COST;
    }
    let m = msg(p.validate());
    assert!(m.contains("a packet may cost up to") && m.contains("1000000"), "{m}");
    // Arrays that a small image would turn into hundreds of MiB.
    let mut p = program();
    p.meters = (0..limits::METERS)
        .map(|i| MeterDef {
            name: format!("m{i}"),
            size: limits::ARRAY_SIZE,
            unit: MeterUnit::Bytes,
        })
        .collect();
    let image = p.to_image();
    assert!(image.len() < 2048, "a small image: {} bytes", image.len());
    let m = msg(p.validate());
    assert!(m.contains("device state") && m.contains("65536 KiB"), "{m}");
    assert!(Pipeline::from_image(&image).is_err());
    let mut p = program();
    p.tables[0].size = limits::TABLE_SIZE;
    p.tables.push(p.tables[0].clone());
    assert!(msg(p.validate()).contains("device state"));
    // The test program itself is well within both.
    let p = program();
    assert!(p.state_bytes() < limits::STATE_BYTES && p.max_packet_cost() < 100);
}

/// Conditions of every shape the compiler turns straight into masks
/// (validity, a metadata field against a constant, `!`, `&&`, `||`), and
/// others (a header field compared, a constant), nested.
fn arb_cond() -> impl Strategy<Value = Expr> {
    let cmp = prop_oneof![
        Just(BinOp::Eq),
        Just(BinOp::Ne),
        Just(BinOp::Lt),
        Just(BinOp::Le),
        Just(BinOp::Gt),
        Just(BinOp::Ge)
    ];
    let leaf = prop_oneof![
        (0u16..3).prop_map(Expr::Valid),
        (
            cmp.clone(),
            prop_oneof![Just(std_meta::INGRESS_LIF), Just(std_meta::PACKET_LENGTH)],
            0u64..70
        )
            .prop_map(|(op, m, v)| Expr::Binary {
                op,
                lhs: Box::new(Expr::Field(FieldRef::Meta(m))),
                rhs: Box::new(k(16, v)),
                width: 1,
            }),
        (cmp, 0u64..80).prop_map(|(op, v)| Expr::Binary {
            op,
            lhs: Box::new(Expr::Field(f(IPV4, 6))),
            rhs: Box::new(k(8, v)),
            width: 1,
        }),
        (0u64..2).prop_map(|v| k(1, v)),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|a| Expr::Unary {
                op: UnOp::Not,
                arg: Box::new(a),
                width: 1,
            }),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Binary {
                op: BinOp::And,
                lhs: Box::new(a),
                rhs: Box::new(b),
                width: 1,
            }),
            (inner.clone(), inner).prop_map(|(a, b)| Expr::Binary {
                op: BinOp::Or,
                lhs: Box::new(a),
                rhs: Box::new(b),
                width: 1,
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// An `if` on a condition (compiled to a mask) decides as the
    /// condition's value does (compiled as an expression): `if (c) lif = 1
    /// else lif = 2` against `lif = 2 - c`, over a batch of mixed packets
    /// (IPv4/UDP, IPv4 without UDP, not IPv4, truncated) from several LIFs.
    #[test]
    fn conditions_as_masks_agree_with_their_values(c in arb_cond()) {
        let egress = FieldRef::Meta(std_meta::EGRESS_LIF);
        let mut by_if = program();
        by_if.ingress = vec![Stmt::If {
            cond: c.clone(),
            then: vec![Stmt::Assign { dst: egress, value: k(16, 1) }],
            otherwise: vec![Stmt::Assign { dst: egress, value: k(16, 2) }],
        }];
        let mut by_value = program();
        by_value.ingress = vec![Stmt::Assign {
            dst: egress,
            value: Expr::Binary { op: BinOp::Sub, lhs: Box::new(k(16, 2)), rhs: Box::new(c), width: 16 },
        }];
        let mut pkts: Vec<Vec<u8>> = (0..48u8)
            .map(|i| {
                let mut f = match i % 4 {
                    0 => udp(B, [10, 0, 0, i]),
                    1 => build_udp4(B, A, [192, 0, 2, 1], [10, 0, 0, 1], (1, 2), &[i; 9], 60 + usize::from(i)),
                    2 => udp(B, [10, 0, 0, i])[..20].to_vec(),
                    _ => udp(B, [10, 0, 0, i]),
                };
                if i % 4 == 3 {
                    f[23] = 6; // IPv4, not UDP
                }
                if f.len() > 22 {
                    f[22] = i; // the TTL
                }
                f
            })
            .collect();
        let mut copy = pkts.clone();
        let run = |prog: Program, pkts: &mut Vec<Vec<u8>>| {
            let mut p = Pipeline::new(prog).unwrap();
            let mut batch: Vec<Input<'_>> = pkts
                .iter_mut()
                .enumerate()
                .map(|(i, d)| Input { data: d, ingress_lif: (i % 5) as u16 })
                .collect();
            let mut out = Vec::new();
            p.process_batch(0, &mut batch, &mut out);
            out
        };
        prop_assert_eq!(run(by_if, &mut pkts), run(by_value, &mut copy));
    }
}

proptest! {
    /// Whatever the bytes, one outcome per packet, nothing panics, and
    /// every packet is in exactly one of the verdicts the stats count.
    #[test]
    fn any_bytes_get_exactly_one_verdict(pkts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..20)) {
        let mut p = Pipeline::new(program()).unwrap();
        let mut pkts = pkts;
        let n = pkts.len();
        let mut batch: Vec<Input<'_>> = pkts.iter_mut().map(|d| Input { data: d, ingress_lif: 1 }).collect();
        let mut out = Vec::new();
        p.process_batch(0, &mut batch, &mut out);
        prop_assert_eq!(out.len(), n);
        let errors = out.iter().filter(|o| o.verdict == Verdict::ParseError).count() as u64;
        prop_assert_eq!(p.stats().parse_errors, errors);
        prop_assert_eq!(p.stats().packets, n as u64);
    }

    /// Random images never panic the decoder or the validator.
    #[test]
    fn random_images_are_refused_cleanly(mut bytes in proptest::collection::vec(any::<u8>(), 0..400), flip in any::<usize>()) {
        let _ = Program::from_image(&bytes);
        let mut img = program().to_image();
        let i = flip % img.len();
        img[i] ^= 0x5a;
        let _ = Pipeline::from_image(&img);
        bytes.truncate(0);
    }
}

/// An index whose widths prove it inside its array is not tested (the
/// compiler leaves the check out); one that can reach past the array is,
/// on both executors: a 2-bit value into 4 cells always lands, into 3
/// cells its 3 is an index error, and so is a wider value cast down.
#[test]
fn indices_proven_by_their_widths_and_the_others_checked() {
    let mut prog = program();
    let sport2 = Expr::Slice {
        arg: Box::new(Expr::Field(f(UDP, 0))),
        hi: 1,
        lo: 0,
    };
    let cast = |e: Expr, width: u16| Expr::Cast {
        arg: Box::new(e),
        width,
    };
    prog.counters.push(CounterDef {
        name: "four".into(),
        size: 4,
        unit: CounterUnit::PacketsAndBytes,
    });
    prog.counters.push(CounterDef {
        name: "three".into(),
        size: 3,
        unit: CounterUnit::PacketsAndBytes,
    });
    prog.meters.push(MeterDef {
        name: "three_m".into(),
        size: 3,
        unit: MeterUnit::Packets,
    });
    let color = Expr::Field(FieldRef::Meta(COLOR));
    let mut front = vec![
        Stmt::Assign {
            dst: FieldRef::Meta(COLOR),
            value: sport2,
        },
        Stmt::Count {
            counter: 1,
            index: cast(color.clone(), 32),
        },
        Stmt::Count {
            counter: 2,
            index: cast(color.clone(), 32),
        },
        // The port's low 3 bits cast to 2: within 4 cells, past 3.
        Stmt::Count {
            counter: 1,
            index: cast(
                Expr::Slice {
                    arg: Box::new(Expr::Field(f(UDP, 0))),
                    hi: 2,
                    lo: 0,
                },
                2,
            ),
        },
        Stmt::Meter {
            meter: 1,
            index: cast(color, 32),
            dst: FieldRef::Meta(COLOR),
        },
    ];
    front.append(&mut prog.ingress);
    prog.ingress = front;
    for exec in [Executor::Reference, Executor::Best] {
        let mut p = Pipeline::with_executor(prog.clone(), exec).unwrap();
        if exec == Executor::Best && cfg!(feature = "jit") {
            assert!(matches!(p.backend(), Backend::Compiled { .. }), "{}", p.backend());
        }
        for sport in 0..8u16 {
            let mut pkt = build_udp4(B, A, [10, 0, 0, 1], [10, 0, 0, 2], (sport, 2), b"x", 64);
            p.process(0, &mut pkt, 1);
        }
        // Each 2-bit value twice from the first count, and from the
        // second (the 3-bit value cast to 2 bits) twice again.
        for i in 0..4 {
            assert_eq!(p.counter(1, i).map(|c| c.0), Some(4), "{exec:?}: four[{i}]");
        }
        for i in 0..3 {
            assert_eq!(p.counter(2, i).map(|c| c.0), Some(2), "{exec:?}: three[{i}]");
        }
        // 3 past `three` and `three_m`: twice each.
        assert_eq!(p.stats().index_errors, 4, "{exec:?}");
    }
}

/// `Verdict::tag`, what the compiled program writes, is each variant's
/// discriminant as Rust lays it out (`repr(C, u16)`: the tag first).
#[test]
fn verdict_tags_are_the_discriminants() {
    for v in [
        Verdict::ToLif(7),
        Verdict::ToUplink,
        Verdict::Flood,
        Verdict::Drop,
        Verdict::NoRoute,
        Verdict::ParseError,
    ] {
        // SAFETY: `Verdict` is `repr(C, u16)`: its first two bytes are the
        // discriminant, always initialized.
        let d = unsafe { *std::ptr::from_ref(&v).cast::<u16>() };
        assert_eq!(v.tag(), d, "{v:?}");
    }
}
