//! The compiled program against the reference executor on random valid
//! programs ([`super::gen`]) and random packets: verdicts, costs, packet
//! bytes, metadata (meter colors included), statistics, counters and table
//! hit counts must be the same, bit for bit. The compiled program runs
//! each batch as it does in the device; the reference runs one packet at
//! a time (the semantics the compiler implements).

use super::gen::{self, probe_index, Rng};
use super::*;
use crate::abi::{MeterConfig, MeterMode};

/// Programs each run of the test checks (`FAIRNIC_DIFF_PROGRAMS`).
fn programs() -> usize {
    std::env::var("FAIRNIC_DIFF_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// What a program's run did with direct counters and meters: packets
/// counted in direct counter cells, and hits and misses of tables whose
/// actions read a direct meter (the hit's entry's, the miss's green).
#[derive(Debug, Default, Clone, Copy)]
struct DirectSeen {
    counted: u64,
    read_hits: u64,
    read_misses: u64,
}

/// Run one program on both executors; an `Err` says where they differ.
fn differential(seed: u64) -> Option<Result<DirectSeen, String>> {
    let mut r = Rng::new(seed);
    let prog = gen::program(&mut r)?;
    let mut c = Pipeline::with_executor(prog.clone(), Executor::Best).expect("loads");
    let mut x = Pipeline::with_executor(prog.clone(), Executor::Reference).expect("loads");
    if !matches!(c.backend(), Backend::Compiled { .. }) {
        return Some(Err(format!("seed {seed}: not compiled: {}", c.backend())));
    }
    // The same meter settings on both.
    for (m, def) in prog.meters.iter().enumerate() {
        for i in 0..def.size {
            if r.pct(30) {
                continue;
            }
            let cfg = MeterConfig {
                resource: def.unit.resource().raw(),
                mode: r.pick(&[MeterMode::SrTcm, MeterMode::TrTcm]).raw(),
                cir: (1 + r.below(1_000_000)).into(),
                cburst: (1 + r.below(3_000)).into(),
                eburst: r.below(3_000).into(),
                pir: (1 + r.below(2_000_000)).into(),
                pburst: (1 + r.below(3_000)).into(),
                ..Default::default()
            };
            // Often bursts of a few packets or a few hundred bytes, so that
            // a batch's packets see all three colors.
            let cfg = if r.pct(40) {
                let unit = if def.unit == MeterUnit::Bytes { 100 } else { 1 };
                MeterConfig {
                    cburst: (unit * (1 + r.below(3))).into(),
                    eburst: (unit * r.below(3)).into(),
                    pburst: (unit * (3 + r.below(3))).into(),
                    ..cfg
                }
            } else {
                cfg
            };
            // Now and then the edges: rates whose refill overflows 64 bits
            // in one step, bursts at the largest a meter takes (or past
            // it: then both refuse).
            let cfg = if r.pct(15) {
                MeterConfig {
                    cir: r.pick(&[1u64 << 40, u64::MAX >> 8, u64::MAX]).into(),
                    pir: u64::MAX.into(),
                    cburst: r
                        .pick(&[crate::meter::MAX_BURST, crate::meter::MAX_BURST + 1, 1])
                        .into(),
                    eburst: r.pick(&[crate::meter::MAX_BURST, 0]).into(),
                    pburst: crate::meter::MAX_BURST.into(),
                    ..cfg
                }
            } else {
                cfg
            };
            let a = c.set_meter(m as u16, i, &cfg, 0);
            let b = x.set_meter(m as u16, i, &cfg, 0);
            if a.is_ok() != b.is_ok() {
                return Some(Err(format!("seed {seed}: meter {m}[{i}] set {a:?} vs {b:?}")));
            }
        }
    }
    let nm = prog.meta.len();
    let mut now = 0u64;
    for batch in 0..4 {
        let n = 1 + r.below(24) as usize;
        let mut pc = gen::packets(&mut r, &prog, n);
        let mut px = pc.clone();
        // Mostly forward by up to 50 us; now and then back (a meter's time
        // never runs backwards) or a long idle (a full refill).
        now = match r.below(10) {
            0 => now.saturating_sub(r.below(20_000)),
            1 => now + (1 << 40),
            _ => now + r.below(50_000),
        };
        let lifs: Vec<u16> = (0..n)
            .map(|_| if r.pct(20) { 0xffff } else { r.below(8) as u16 })
            .collect();
        let mut inputs: Vec<Input<'_>> = pc
            .iter_mut()
            .zip(&lifs)
            .map(|(d, &l)| Input {
                data: d,
                ingress_lif: l,
            })
            .collect();
        let mut out = Vec::new();
        c.process_batch(now, &mut inputs, &mut out);
        let meta = c.last_meta().to_vec();
        for (i, d) in px.iter_mut().enumerate() {
            let o = x.process(now, d, lifs[i]);
            let at = format!("seed {seed}, batch {batch}, packet {i} ({:02x?})", pc[i]);
            if o != out[i] {
                return Some(Err(format!("{at}: compiled {:?}, reference {o:?}", out[i])));
            }
            if *d != pc[i] {
                return Some(Err(format!("{at}: bytes: compiled {:02x?}, reference {d:02x?}", pc[i])));
            }
            if x.last_meta() != &meta[i * nm..(i + 1) * nm] {
                return Some(Err(format!(
                    "{at}: metadata: compiled {:?}, reference {:?}",
                    &meta[i * nm..(i + 1) * nm],
                    x.last_meta()
                )));
            }
        }
    }
    if c.stats() != x.stats() {
        return Some(Err(format!("seed {seed}: stats {:?} vs {:?}", c.stats(), x.stats())));
    }
    for (k, def) in prog.counters.iter().enumerate() {
        for i in 0..def.size {
            if c.counter(k as u16, i) != x.counter(k as u16, i) {
                return Some(Err(format!("seed {seed}: counter {k}[{i}]")));
            }
        }
    }
    let mut seen = DirectSeen::default();
    for t in 0..prog.tables.len() as u16 {
        if c.table_hits(t) != x.table_hits(t) {
            return Some(Err(format!(
                "seed {seed}: table {t} hits {:?} vs {:?}",
                c.table_hits(t),
                x.table_hits(t)
            )));
        }
        let def = &prog.tables[usize::from(t)];
        let (h, m) = x.table_hits(t).unwrap_or_default();
        if let Some(k) = def.direct_counter {
            seen.counted += (0..def.size).filter_map(|i| x.counter(k, i)).map(|v| v.0).sum::<u64>();
        }
        let reads = |a: u16| !prog.actions[usize::from(a)].direct_meters().is_empty();
        if def.actions.iter().any(|&a| reads(a)) {
            seen.read_hits += h;
        }
        if reads(def.default_action) {
            seen.read_misses += m;
        }
    }
    Some(Ok(seen))
}

#[test]
fn compiled_and_reference_agree_on_random_programs() {
    let want = programs();
    let mut checked = 0;
    let mut tried = 0u64;
    let mut failures = Vec::new();
    let mut direct = DirectSeen::default();
    while checked < want && tried < 20 * want as u64 {
        // Seeds spread over the space, the same every run.
        let seed = tried.wrapping_mul(0x2545_f491_4f6c_dd1d);
        tried += 1;
        match differential(seed) {
            None => {}
            Some(Ok(seen)) => {
                checked += 1;
                direct.counted += seen.counted;
                direct.read_hits += seen.read_hits;
                direct.read_misses += seen.read_misses;
            }
            Some(Err(e)) => {
                checked += 1;
                failures.push(e);
            }
        }
    }
    eprintln!(
        "{checked} random programs checked ({tried} drawn), {} differ; direct: {direct:?}",
        failures.len()
    );
    assert!(checked >= want, "only {checked} valid programs in {tried} draws");
    // Direct counters counted, and direct meters read on hits and misses
    // (not vacuous; at the default 300 programs).
    if want >= 300 {
        assert!(
            direct.counted > 50 && direct.read_hits > 50 && direct.read_misses > 50,
            "{direct:?}"
        );
    }
    assert!(failures.is_empty(), "{}", failures[..failures.len().min(5)].join("\n"));
}

/// The generator is not vacuous: its programs parse packets, apply tables
/// that hit, meter, count and drop (direct counters and meters: see
/// `compiled_and_reference_agree_on_random_programs`).
#[test]
fn random_programs_exercise_the_pipeline() {
    let (mut hits, mut counted, mut accepted, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut seed = 0u64;
    let mut n = 0;
    while n < 100 {
        seed += 1;
        let mut r = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let Some(prog) = gen::program(&mut r) else { continue };
        n += 1;
        let mut p = Pipeline::new(prog.clone()).unwrap();
        for mut d in gen::packets(&mut r, &prog, 20) {
            let o = p.process(0, &mut d, 1);
            if o.verdict == Verdict::ParseError {
                errors += 1;
            } else {
                accepted += 1;
            }
        }
        hits += (0..prog.tables.len() as u16)
            .map(|t| p.table_hits(t).unwrap().0)
            .sum::<u64>();
        counted += prog
            .counters
            .iter()
            .enumerate()
            .map(|(k, d)| (0..d.size).map(|i| p.counter(k as u16, i).unwrap().0).sum::<u64>())
            .sum::<u64>();
    }
    eprintln!("100 programs: {accepted} packets accepted, {errors} parse errors, {hits} table hits, {counted} counted");
    assert!(accepted > 200 && errors > 100 && hits > 20 && counted > 100);
}

/// Every operator at the edges of its widths, on both executors: a program
/// that assigns each expression to a 64-bit metadata field.
#[test]
fn operators_at_their_edges_agree() {
    let mut r = Rng::new(7);
    // A program to borrow the headers, parser and metadata layout from.
    let base = loop {
        if let Some(p) = gen::program(&mut r) {
            break p;
        }
    };
    let probe = FieldRef::Meta(std_meta::FIELDS.len() as u16);
    let values = [
        0u64,
        1,
        2,
        5,
        63,
        64,
        65,
        0x7f,
        0x80,
        0xff,
        1 << 63,
        u64::MAX - 1,
        u64::MAX,
    ];
    let widths = [1u16, 7, 8, 31, 32, 63, 64];
    let ops = BinOp::ALL;
    let c = |value: u64| Expr::Const { value, width: 64 };
    let mut exprs = Vec::new();
    for &w in &widths {
        for &a in &values {
            for op in [UnOp::Not, UnOp::BitNot, UnOp::Neg] {
                exprs.push(Expr::Unary {
                    op,
                    arg: Box::new(c(a)),
                    width: w,
                });
            }
            exprs.push(Expr::Cast {
                arg: Box::new(c(a)),
                width: w,
            });
            for &b in &values {
                for op in ops {
                    exprs.push(Expr::Binary {
                        op,
                        lhs: Box::new(c(a)),
                        rhs: Box::new(c(b)),
                        width: w,
                    });
                }
            }
        }
    }
    for lo in [0u16, 1, 31, 63] {
        for hi in [lo, 32.max(lo), 63] {
            for &a in &values {
                exprs.push(Expr::Slice {
                    arg: Box::new(c(a)),
                    hi,
                    lo,
                });
            }
        }
    }
    let mut checked = 0;
    for chunk in exprs.chunks(256) {
        let mut p = base.clone();
        p.parser = vec![ParserState {
            name: "start".into(),
            cost: 0,
            ops: Vec::new(),
            transition: Transition::Next(Next::Accept),
        }];
        p.ingress = chunk
            .iter()
            .flat_map(|e| {
                [
                    Stmt::Assign {
                        dst: probe,
                        value: e.clone(),
                    },
                    // Every value, folded into the second probe (the first
                    // holds only the last).
                    Stmt::Assign {
                        dst: FieldRef::Meta(probe_index() + 1),
                        value: Expr::Binary {
                            op: BinOp::BitXor,
                            lhs: Box::new(Expr::Binary {
                                op: BinOp::Mul,
                                lhs: Box::new(Expr::Field(FieldRef::Meta(probe_index() + 1))),
                                rhs: Box::new(c(0x9e37_79b9_7f4a_7c15)),
                                width: 64,
                            }),
                            rhs: Box::new(Expr::Field(probe)),
                            width: 64,
                        },
                    },
                ]
            })
            .collect();
        p.validate().expect("valid");
        let mut cp = Pipeline::with_executor(p.clone(), Executor::Best).unwrap();
        let mut rp = Pipeline::with_executor(p.clone(), Executor::Reference).unwrap();
        assert!(matches!(cp.backend(), Backend::Compiled { .. }));
        // A packet the parser accepts.
        let mut accepted = false;
        for mut d in gen::packets(&mut r, &p, 200) {
            let mut e = d.clone();
            let a = cp.process(0, &mut d, 1);
            let b = rp.process(0, &mut e, 1);
            assert_eq!(a, b);
            if a.verdict != Verdict::ParseError {
                assert_eq!(cp.last_meta(), rp.last_meta(), "{chunk:?}");
                accepted = true;
                break;
            }
        }
        assert!(accepted, "no packet got past the parser");
        checked += chunk.len();
    }
    assert!(checked > 10_000, "{checked}");
}

/// The exact probe through control-plane churn: entries added, removed
/// (runs shifted back in the index) and added again, each hit's action
/// writing its argument where the test sees it; compiled and reference
/// agree on every packet, and a hit carries its own entry's argument.
#[test]
fn exact_probe_follows_adds_and_removes() {
    exact_churn(false);
}

/// As [`exact_probe_follows_adds_and_removes`] with a 112-bit key (the
/// 48-bit `eth.dst`, then a 64-bit field every key shares): the keys'
/// low halves are all equal, so a probe must compare the high halves too.
#[test]
fn exact_probe_compares_both_halves_of_a_wide_key() {
    exact_churn(true);
}

fn exact_churn(wide: bool) {
    use crate::abi::TableEntry;
    let mut meta: Vec<FieldDef> = std_meta::defs();
    let probe = meta.len() as u16;
    meta.push(FieldDef {
        name: "probe".into(),
        bit_off: 0,
        width: 64,
    });
    let eth = HeaderDef {
        name: "eth".into(),
        type_name: "eth_t".into(),
        fields: vec![
            FieldDef {
                name: "dst".into(),
                bit_off: 0,
                width: 48,
            },
            FieldDef {
                name: "rest".into(),
                bit_off: 48,
                width: 64,
            },
        ],
        len: 14,
    };
    let prog = Program {
        name: "churn".into(),
        headers: vec![eth],
        meta,
        parser: vec![ParserState {
            name: "start".into(),
            cost: 0,
            ops: vec![ParserOp::Extract(0)],
            transition: Transition::Next(Next::Accept),
        }],
        actions: vec![
            ActionDef {
                name: "set".into(),
                params: vec![ParamDef {
                    name: "v".into(),
                    width: 64,
                }],
                body: vec![Stmt::Assign {
                    dst: FieldRef::Meta(probe),
                    value: Expr::Param(0),
                }],
                cost: 1,
            },
            ActionDef {
                name: "nop".into(),
                params: vec![],
                body: vec![],
                cost: 0,
            },
        ],
        tables: vec![TableDef {
            name: "t".into(),
            keys: std::iter::once(KeyDef {
                expr: KeyExpr::Field(FieldRef::Header { header: 0, field: 0 }),
                kind: MatchKind::Exact,
                width: 48,
                name: "eth.dst".into(),
            })
            .chain(wide.then(|| KeyDef {
                expr: KeyExpr::Field(FieldRef::Header { header: 0, field: 1 }),
                kind: MatchKind::Exact,
                width: 64,
                name: "eth.rest".into(),
            }))
            .collect(),
            actions: vec![0, 1],
            default_action: 1,
            default_args: vec![],
            size: 256,
            cost: 0,
            entries: vec![],
            direct_counter: None,
            direct_meter: None,
        }],
        meters: vec![],
        counters: vec![],
        ingress: vec![Stmt::Apply {
            table: 0,
            on_hit: vec![],
            on_miss: vec![],
        }],
        deparse: vec![0],
        base_cost: 1,
    };
    let mut c = Pipeline::with_executor(prog.clone(), Executor::Best).unwrap();
    let mut x = Pipeline::with_executor(prog, Executor::Reference).unwrap();
    assert!(matches!(c.backend(), Backend::Compiled { .. }));
    let mut r = Rng::new(11);
    // Keys that crowd a few home slots as the index grows and shrinks.
    let keys: Vec<[u8; 6]> = (0..200u64)
        .map(|i| {
            let k = (i * 0x0101) ^ (r.below(4) << 40);
            let b = k.to_be_bytes();
            [b[2], b[3], b[4], b[5], b[6], b[7]]
        })
        .collect();
    // The wide key's second field: the same in every key and frame.
    const REST: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
    let mut installed: std::collections::HashMap<[u8; 6], u64> = std::collections::HashMap::new();
    for round in 0..6 {
        for (i, k) in keys.iter().enumerate() {
            let add = (i + round) % 3 != 0;
            let v = r.next();
            let key: Vec<u8> = k
                .iter()
                .chain(wide.then_some(&REST).into_iter().flatten())
                .copied()
                .collect();
            let e = TableEntry::exact(0, &key, 0, &v.to_be_bytes());
            let (a, b) = (c.apply_entry(&e, add), x.apply_entry(&e, add));
            assert_eq!(a.is_ok(), b.is_ok(), "round {round} key {i} add {add}");
            if a.is_ok() {
                if add {
                    installed.insert(*k, v);
                } else {
                    installed.remove(k);
                }
            }
        }
        for k in &keys {
            let mut f = vec![0u8; 14];
            f[..6].copy_from_slice(k);
            if wide {
                f[6..].copy_from_slice(&REST);
            }
            let mut g = f.clone();
            let a = c.process(0, &mut f, 1);
            let b = x.process(0, &mut g, 1);
            assert_eq!(a, b);
            assert_eq!(c.last_meta(), x.last_meta());
            let seen = c.last_meta()[usize::from(probe)];
            match installed.get(k) {
                Some(&v) => assert_eq!(seen, v, "a hit runs its own entry's argument"),
                None => assert_eq!(seen, 0, "a miss runs the no-op default"),
            }
        }
        assert_eq!(c.table_hits(0), x.table_hits(0));
    }
    assert!(c.table_hits(0).unwrap().0 > 500, "{:?}", c.table_hits(0));
}

/// The compiler leaves out validity tests where the parser's paths prove a
/// header valid (`jit::lower::ParserFacts`): a header extracted on one path
/// only must still read 0 on the other, in the parser after the paths join
/// and in the ingress; a parser without loops keeps no step count.
#[test]
fn validity_known_only_where_every_path_extracted() {
    let mut r = Rng::new(11);
    let base = loop {
        if let Some(p) = gen::program(&mut r) {
            if p.headers.len() >= 2 {
                break p;
            }
        }
    };
    let f = |h: u16| Expr::Field(FieldRef::Header { header: h, field: 0 });
    let state = |name: &str, ops: Vec<ParserOp>, transition| ParserState {
        name: name.into(),
        cost: 0,
        ops,
        transition,
    };
    let mut p = base.clone();
    p.parser = vec![
        // A, then B on one path only (the low bit of A's first field).
        state(
            "start",
            vec![ParserOp::Extract(0)],
            Transition::Select {
                keys: vec![f(0)],
                cases: vec![SelectCase {
                    matches: vec![(1, 1)],
                    next: Next::State(1),
                }],
                default: Next::State(2),
            },
        ),
        state("b", vec![ParserOp::Extract(1)], Transition::Next(Next::State(3))),
        state("no_b", vec![], Transition::Next(Next::State(3))),
        // The paths join: B's field is 0 where B was not extracted.
        state(
            "join",
            vec![],
            Transition::Select {
                keys: vec![f(1)],
                cases: vec![SelectCase {
                    matches: vec![(0, u64::MAX)],
                    next: Next::Accept,
                }],
                default: Next::Reject,
            },
        ),
    ];
    let probe = FieldRef::Meta(probe_index());
    p.ingress = vec![
        Stmt::Assign {
            dst: probe,
            value: f(1),
        },
        Stmt::Assign {
            dst: FieldRef::Meta(probe_index() + 1),
            value: Expr::Binary {
                op: BinOp::Add,
                lhs: Box::new(Expr::Valid(1)),
                rhs: Box::new(Expr::Binary {
                    op: BinOp::Shl,
                    lhs: Box::new(Expr::Valid(0)),
                    rhs: Box::new(Expr::Const { value: 1, width: 64 }),
                    width: 64,
                }),
                width: 64,
            },
        },
    ];
    p.validate().expect("valid");
    let facts = super::jit::ParserFacts::of(&p);
    assert!(facts.bounded, "no loops: no step count");
    assert_eq!((facts.must[3], facts.may[3], facts.at_accept), (0b01, 0b11, 0b01));
    let mut cp = Pipeline::with_executor(p.clone(), Executor::Best).unwrap();
    let mut rp = Pipeline::with_executor(p.clone(), Executor::Reference).unwrap();
    assert!(matches!(cp.backend(), Backend::Compiled { .. }));
    // Accepted without B (the path that skipped it), and rejected (B
    // extracted with a nonzero field).
    let (mut accepted, mut rejected) = (0, 0);
    for mut d in gen::packets(&mut r, &p, 400) {
        let mut e = d.clone();
        let a = cp.process(0, &mut d, 1);
        let b = rp.process(0, &mut e, 1);
        assert_eq!(a, b, "{d:02x?}");
        assert_eq!(cp.last_meta(), rp.last_meta());
        assert_eq!(d, e);
        if a.verdict == Verdict::ParseError {
            rejected += 1;
        } else {
            let valid = rp.last_meta()[usize::from(probe_index()) + 1];
            assert!(valid & 0b10 != 0, "A is valid on every accepted path");
            if valid & 1 == 0 {
                accepted += 1;
            }
        }
    }
    assert!(
        accepted > 20 && rejected > 20,
        "both paths: {accepted} accepted, {rejected} rejected"
    );
}

/// A program with an exact table and a ternary table, each with a direct
/// counter and a direct meter: the exact table's hit action and its
/// default action read its meter into probe 0, the ternary table's hit
/// action reads its meter into probe 1 (default: no-op); both probes
/// start at 7, so that a read that writes 0 and no read at all differ.
fn direct_program() -> Program {
    let meta = gen::probe_meta();
    let probe = |i: u16| FieldRef::Meta(probe_index() + i);
    let h = HeaderDef {
        name: "h".into(),
        type_name: "h_t".into(),
        fields: vec![
            FieldDef {
                name: "a".into(),
                bit_off: 0,
                width: 16,
            },
            FieldDef {
                name: "b".into(),
                bit_off: 16,
                width: 16,
            },
        ],
        len: 4,
    };
    let key = |field: u16, kind| KeyDef {
        expr: KeyExpr::Field(FieldRef::Header { header: 0, field }),
        kind,
        width: 16,
        name: format!("h.{field}"),
    };
    let action = |name: &str, body| ActionDef {
        name: name.into(),
        params: vec![],
        body,
        cost: 1,
    };
    let table = |name: &str, keys, actions, default_action, direct: u16| TableDef {
        name: name.into(),
        keys,
        actions,
        default_action,
        default_args: vec![],
        size: 4,
        cost: 1,
        entries: vec![],
        direct_counter: Some(direct),
        direct_meter: Some(direct),
    };
    let p = Program {
        name: "direct".into(),
        headers: vec![h],
        meta,
        parser: vec![ParserState {
            name: "start".into(),
            cost: 0,
            ops: vec![ParserOp::Extract(0)],
            transition: Transition::Next(Next::Accept),
        }],
        actions: vec![
            action(
                "ex_meter",
                vec![Stmt::DirectMeter {
                    meter: 0,
                    dst: probe(0),
                }],
            ),
            action(
                "tern_meter",
                vec![Stmt::DirectMeter {
                    meter: 1,
                    dst: probe(1),
                }],
            ),
            action("nop", vec![]),
        ],
        tables: vec![
            table("ex", vec![key(0, MatchKind::Exact)], vec![0, 2], 0, 0),
            table("tern", vec![key(1, MatchKind::Ternary)], vec![1, 2], 2, 1),
        ],
        meters: vec![
            MeterDef {
                name: "ex_rate".into(),
                size: 4,
                unit: MeterUnit::Packets,
            },
            MeterDef {
                name: "tern_rate".into(),
                size: 4,
                unit: MeterUnit::Bytes,
            },
        ],
        counters: ["ex_hits", "tern_hits"]
            .map(|n| CounterDef {
                name: n.into(),
                size: 4,
                unit: CounterUnit::PacketsAndBytes,
            })
            .into(),
        ingress: vec![
            Stmt::Assign {
                dst: probe(0),
                value: Expr::Const { value: 7, width: 64 },
            },
            Stmt::Assign {
                dst: probe(1),
                value: Expr::Const { value: 7, width: 64 },
            },
            Stmt::Apply {
                table: 0,
                on_hit: vec![],
                on_miss: vec![],
            },
            Stmt::Apply {
                table: 1,
                on_hit: vec![],
                on_miss: vec![],
            },
        ],
        deparse: vec![0],
        base_cost: 1,
    };
    p.validate().expect("valid");
    p
}

/// An entry of [`direct_program`]'s exact table (key `a`, action
/// `ex_meter` or, `nop` true, `nop`).
fn ex_entry(a: u16, nop: bool) -> crate::abi::TableEntry {
    crate::abi::TableEntry::exact(0, &a.to_be_bytes(), if nop { 2 } else { 0 }, &[])
}

/// An entry of [`direct_program`]'s ternary table (`b` under `mask`,
/// action `tern_meter`).
fn tern_entry(b: u16, mask: u16, priority: u32) -> crate::abi::TableEntry {
    crate::abi::TableEntry::builder(1, priority)
        .key(16, b.into(), mask.into())
        .expect("fits")
        .action(1)
        .build()
}

/// A packet of [`direct_program`]: fields `a` and `b`, 60 bytes.
fn direct_packet(a: u16, b: u16) -> Vec<u8> {
    let mut d = vec![0u8; 60];
    d[..2].copy_from_slice(&a.to_be_bytes());
    d[2..4].copy_from_slice(&b.to_be_bytes());
    d
}

/// Direct counters and direct meters on both executors, per entry: every
/// hit counts in its own entry's cell (a miss nowhere), a meter read
/// colors with the matched entry's meter, and as the default action on a
/// miss it writes green and runs no meter.
#[test]
fn direct_counters_and_meters_count_and_color_per_entry() {
    use crate::abi::MeterResource;
    let sr = |resource: MeterResource, burst: u64| MeterConfig {
        resource: resource.raw(),
        mode: MeterMode::SrTcm.raw(),
        cir: 1000.into(),
        cburst: burst.into(),
        eburst: burst.into(),
        ..Default::default()
    };
    let ex = [ex_entry(1, false), ex_entry(2, false), ex_entry(3, true)];
    let tern = [tern_entry(0x1000, 0xf000, 2), tern_entry(0x2000, 0xf000, 1)];
    // (a, b) of each packet; the probes each should end with; the clock
    // stands still (no refill).
    let packets: [(u16, u16); 10] = [
        (1, 0x1000),
        (1, 0x1234),
        (1, 0x2000),
        (2, 0x3000),
        (2, 0x1fff),
        (2, 0),
        (2, 0),
        (3, 0x2001),
        (9, 0x1000),
        (9, 0x5555),
    ];
    // ex 1: srTCM of 1 + 1 packets: green, yellow, red. ex 2: trTCM of
    // 2 committed and 3 peak packets: green, green, yellow, red. ex 3:
    // nop, no read. A miss (a = 9): the default action's read, 0.
    let want0 = [0, 1, 2, 0, 0, 1, 2, 7, 0, 0];
    // tern 0x1000/0xf000: srTCM of 100 + 100 bytes, 60-byte packets:
    // green, yellow, red, red. 0x2000/0xf000: its meter off, green. A
    // miss: the no-op default, 7.
    let want1 = [0, 1, 0, 7, 2, 7, 7, 0, 2, 7];
    for exec in [Executor::Reference, Executor::Best] {
        let mut p = Pipeline::with_executor(direct_program(), exec).unwrap();
        if exec == Executor::Best {
            assert!(matches!(p.backend(), Backend::Compiled { .. }), "{}", p.backend());
        }
        for e in ex.iter().chain(&tern) {
            p.apply_entry(e, true).unwrap();
        }
        p.set_direct(&ex[0], None, Some(&sr(MeterResource::Packets, 1)), 0)
            .unwrap();
        let tr = MeterConfig {
            resource: MeterResource::Packets.raw(),
            mode: MeterMode::TrTcm.raw(),
            cir: 1000.into(),
            cburst: 2.into(),
            pir: 1000.into(),
            pburst: 3.into(),
            ..Default::default()
        };
        p.set_direct(&ex[1], None, Some(&tr), 0).unwrap();
        p.set_direct(&tern[0], None, Some(&sr(MeterResource::Bytes, 100)), 0)
            .unwrap();
        for (i, &(a, b)) in packets.iter().enumerate() {
            let mut d = direct_packet(a, b);
            p.process(0, &mut d, 1);
            let m = p.last_meta();
            let got = (m[usize::from(probe_index())], m[usize::from(probe_index()) + 1]);
            assert_eq!(got, (want0[i], want1[i]), "{exec:?}: packet {i} ({a:#x}, {b:#x})");
        }
        let counter = |e| p.direct(e).unwrap().counter;
        assert_eq!(counter(&ex[0]), Some((3, 180)), "{exec:?}");
        assert_eq!(counter(&ex[1]), Some((4, 240)), "{exec:?}");
        assert_eq!(counter(&ex[2]), Some((1, 60)), "{exec:?}");
        assert_eq!(counter(&tern[0]), Some((4, 240)), "{exec:?}");
        assert_eq!(counter(&tern[1]), Some((2, 120)), "{exec:?}");
        // Every cell is an entry's: the misses counted nowhere.
        let all = |c: u16| (0..4).map(|i| p.counter(c, i).unwrap().0).sum::<u64>();
        assert_eq!((all(0), all(1)), (8, 6), "{exec:?}");
        assert_eq!(p.table_hits(0), Some((8, 2)), "{exec:?}");
        assert_eq!(p.table_hits(1), Some((6, 4)), "{exec:?}");
        // The misses ran no meter: ex 1's meter is where its three
        // packets left it (the next packet red), ex 2's likewise.
        let mut d = direct_packet(1, 0);
        p.process(0, &mut d, 1);
        assert_eq!(p.last_meta()[usize::from(probe_index())], 2, "{exec:?}");
        assert_eq!(p.stats().index_errors, 0, "{exec:?}");
    }
}

/// An entry deleted and added again starts with a zero counter and its
/// meter off, and so does a new entry that takes a deleted one's slot;
/// the compiled code counts where the control plane reads.
#[test]
fn reinserted_entries_start_with_fresh_direct_cells() {
    use crate::abi::MeterResource;
    let sr = MeterConfig {
        resource: MeterResource::Packets.raw(),
        mode: MeterMode::SrTcm.raw(),
        cir: 1000.into(),
        cburst: 1.into(),
        eburst: 1.into(),
        ..Default::default()
    };
    for exec in [Executor::Reference, Executor::Best] {
        let mut p = Pipeline::with_executor(direct_program(), exec).unwrap();
        if exec == Executor::Best {
            assert!(matches!(p.backend(), Backend::Compiled { .. }), "{}", p.backend());
        }
        let (e1, e4) = (ex_entry(1, false), ex_entry(4, false));
        let t1 = tern_entry(0x1000, 0xf000, 2);
        let send = |p: &mut Pipeline, a: u16, b: u16, n: usize| {
            let mut colors = Vec::new();
            for _ in 0..n {
                let mut d = direct_packet(a, b);
                p.process(0, &mut d, 1);
                let m = p.last_meta();
                colors.push((m[usize::from(probe_index())], m[usize::from(probe_index()) + 1]));
            }
            colors
        };
        p.apply_entry(&e1, true).unwrap();
        p.apply_entry(&t1, true).unwrap();
        p.set_direct(&e1, None, Some(&sr), 0).unwrap();
        p.set_direct(
            &t1,
            None,
            Some(&MeterConfig {
                resource: MeterResource::Bytes.raw(),
                cburst: 60.into(),
                eburst: 60.into(),
                ..sr
            }),
            0,
        )
        .unwrap();
        assert_eq!(send(&mut p, 1, 0x1000, 3), [(0, 0), (1, 1), (2, 2)], "{exec:?}");
        let slot = p.direct(&e1).unwrap().slot;
        assert_eq!(p.direct(&e1).unwrap().counter, Some((3, 180)));
        assert_eq!(p.direct(&t1).unwrap().counter, Some((3, 180)));
        // Deleted and added again: zero, meter off (green).
        p.apply_entry(&e1, false).unwrap();
        p.apply_entry(&t1, false).unwrap();
        p.apply_entry(&e1, true).unwrap();
        p.apply_entry(&t1, true).unwrap();
        let d = p.direct(&e1).unwrap();
        assert_eq!(
            (d.counter, d.meter.map(|m| m.mode)),
            (Some((0, 0)), Some(MeterMode::Off.raw()))
        );
        assert_eq!(p.direct(&t1).unwrap().counter, Some((0, 0)));
        assert_eq!(send(&mut p, 1, 0x1000, 2), [(0, 0), (0, 0)], "{exec:?}");
        assert_eq!(p.direct(&e1).unwrap().counter, Some((2, 120)), "{exec:?}");
        assert_eq!(p.direct(&t1).unwrap().counter, Some((2, 120)), "{exec:?}");
        // Another key in the freed slot: its own count from zero.
        p.apply_entry(&e1, false).unwrap();
        p.apply_entry(&e4, true).unwrap();
        assert_eq!(p.direct(&e4).unwrap().slot, slot, "the freed slot is reused");
        assert_eq!(p.direct(&e4).unwrap().counter, Some((0, 0)));
        // Key 1 misses now (the default action's read: 0), key 4 hits.
        assert_eq!(send(&mut p, 1, 0, 1), [(0, 7)], "{exec:?}");
        send(&mut p, 4, 0, 1);
        assert_eq!(p.direct(&e4).unwrap().counter, Some((1, 60)), "{exec:?}");
        assert_eq!(p.counter(0, slot), Some((1, 60)), "{exec:?}");
        assert_eq!(p.table_hits(0), Some((6, 1)), "{exec:?}");
    }
}
