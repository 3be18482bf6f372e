//! The compiled program against the reference executor on random valid
//! programs ([`super::gen`]) and random packets: verdicts, costs, packet
//! bytes, metadata (meter colors included), statistics, counters and table
//! hit counts must be the same, bit for bit. The compiled program runs
//! each batch as it does in the device; the reference runs one packet at
//! a time (the semantics the compiler implements).

use super::gen::{self, Rng};
use super::*;
use crate::abi::{MeterConfig, MeterMode};

/// Programs each run of the test checks (`FAIRNIC_DIFF_PROGRAMS`).
fn programs() -> usize {
    std::env::var("FAIRNIC_DIFF_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// Run one program on both executors; an `Err` says where they differ.
fn differential(seed: u64) -> Option<Result<(), String>> {
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
                resource: match def.unit {
                    MeterUnit::Packets => crate::abi::MeterResource::Packets.raw(),
                    MeterUnit::Bytes => crate::abi::MeterResource::Bytes.raw(),
                },
                mode: r.pick(&[MeterMode::SrTcm, MeterMode::TrTcm]).raw(),
                cir: (1 + r.below(1_000_000)).into(),
                cburst: (1 + r.below(3_000)).into(),
                eburst: r.below(3_000).into(),
                pir: (1 + r.below(2_000_000)).into(),
                pburst: (1 + r.below(3_000)).into(),
                ..Default::default()
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
    for t in 0..prog.tables.len() as u16 {
        if c.table_hits(t) != x.table_hits(t) {
            return Some(Err(format!(
                "seed {seed}: table {t} hits {:?} vs {:?}",
                c.table_hits(t),
                x.table_hits(t)
            )));
        }
    }
    Some(Ok(()))
}

#[test]
fn compiled_and_reference_agree_on_random_programs() {
    let want = programs();
    let mut checked = 0;
    let mut tried = 0u64;
    let mut failures = Vec::new();
    while checked < want && tried < 20 * want as u64 {
        // Seeds spread over the space, the same every run.
        let seed = tried.wrapping_mul(0x2545_f491_4f6c_dd1d);
        tried += 1;
        match differential(seed) {
            None => {}
            Some(Ok(())) => checked += 1,
            Some(Err(e)) => {
                checked += 1;
                failures.push(e);
            }
        }
    }
    eprintln!(
        "{checked} random programs checked ({tried} drawn), {} differ",
        failures.len()
    );
    assert!(checked >= want, "only {checked} valid programs in {tried} draws");
    assert!(failures.is_empty(), "{}", failures[..failures.len().min(5)].join("\n"));
}

/// The generator is not vacuous: its programs parse packets, apply tables
/// that hit, meter, count and drop.
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

fn probe_index() -> u16 {
    std_meta::FIELDS.len() as u16
}

/// The exact probe through control-plane churn: entries added, removed
/// (runs shifted back in the index) and added again, each hit's action
/// writing its argument where the test sees it; compiled and reference
/// agree on every packet, and a hit carries its own entry's argument.
#[test]
fn exact_probe_follows_adds_and_removes() {
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
            keys: vec![KeyDef {
                expr: KeyExpr::Field(FieldRef::Header { header: 0, field: 0 }),
                kind: MatchKind::Exact,
                width: 48,
                name: "eth.dst".into(),
            }],
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
    let mut installed: std::collections::HashMap<[u8; 6], u64> = std::collections::HashMap::new();
    for round in 0..6 {
        for (i, k) in keys.iter().enumerate() {
            let add = (i + round) % 3 != 0;
            let v = r.next();
            let e = TableEntry::exact(0, k, 0, &v.to_be_bytes());
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
