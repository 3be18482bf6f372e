//! STF-style test vectors for the fairnic pipeline (`p4/tests/stf/*.stf`),
//! run against `dataplane::pipeline` executing the compiled `fairnic.p4` (or the
//! program a vector names with `program`), on both executors.
//!
//! One command per line (`#` starts a comment):
//!
//! | command | meaning |
//! |---|---|
//! | `add TABLE KEY... ACTION(ARGS) [priority N]` | install an entry (keys in `mgmt::tables` forms: MAC, IPv4, numbers, `a/len`, `v&&&m`, `*`) |
//! | `meter NAME INDEX CIR CBURST EBURST` | configure an srTCM meter of the program (units of the meter) |
//! | `packet LIF HEX...` | run a frame from LIF (a number, or `wire`) |
//! | `expect VERDICT [HEX...]` | the last packet's verdict: `lif N`, `uplink`, `flood`, `drop`, `noroute`, `parse_error`; and its bytes after the program (`*` matches any byte) |
//! | `cost N` | the last packet's cost units (one pass) |
//! | `recirculate N` | the extra passes the last packet asked for |
//! | `counter NAME INDEX PACKETS BYTES` | a counter's value |
//! | `program FILE` | (first line) run `p4/tests/programs/FILE` instead of fairnic.p4 |
//! | `del TABLE KEY... [priority N]` | delete an entry |
//! | `direct TABLE KEY... [priority N] PACKETS BYTES` | an entry's direct counter |
//! | `direct_meter TABLE KEY... [priority N] CIR CBURST EBURST` | configure an entry's direct meter (srTCM, in the meter's unit) |
//! | `stats parse_errors N` | the executor's parse-error count |

use dataplane::abi::{MeterConfig, MeterMode, TableEntry};
use dataplane::pipeline::{Backend, Executor, MatchKind, Outcome, Pipeline, Program, Verdict};
use mgmt::tables::{parse_match, parse_value, Kind};
use std::path::Path;

fn hex(words: &[&str]) -> Result<Vec<Option<u8>>, String> {
    let s: String = words.concat();
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", s.len()));
    }
    (0..s.len() / 2)
        .map(|i| {
            let b = &s[2 * i..2 * i + 2];
            if b == "**" {
                Ok(None)
            } else {
                u8::from_str_radix(b, 16)
                    .map(Some)
                    .map_err(|_| format!("'{b}' is not a hex byte"))
            }
        })
        .collect()
}

struct Run {
    prog: Program,
    p: Pipeline,
    last: Option<(Outcome, Vec<u8>)>,
    now: u64,
}

impl Run {
    /// `TABLE KEY...`: the entry's table and key, and the words after.
    fn key<'w>(&self, words: &'w [&'w str]) -> Result<(TableEntry, &'w [&'w str]), String> {
        let table = words.first().ok_or("no table")?;
        let (t, def) = self.prog.table(table).ok_or(format!("no table {table}"))?;
        let nk = def.keys.len();
        if words.len() < 1 + nk {
            return Err(format!("{table}: {nk} keys expected"));
        }
        let mut e = TableEntry::exact(u32::from(t), &[0], 0, &[]);
        e.key = [0; 32];
        e.mask = [0; 32];
        let mut at = 0;
        for (k, text) in def.keys.iter().zip(&words[1..1 + nk]) {
            let kind = match k.kind {
                MatchKind::Exact => Kind::Exact,
                MatchKind::Lpm => Kind::Lpm,
                MatchKind::Ternary => Kind::Ternary,
            };
            let m = parse_match(text, k.width, kind)?;
            let n = usize::from(k.width).div_ceil(8);
            e.key[at..at + n].copy_from_slice(&m.value.to_be_bytes()[16 - n..]);
            e.mask[at..at + n].copy_from_slice(&m.mask.to_be_bytes()[16 - n..]);
            if k.kind == MatchKind::Lpm {
                e.mask[at..at + n].fill(0);
                e.prefix_len = m.prefix.into();
            }
            at += n;
        }
        e.key_len = at as u8;
        if let Some(i) = words.iter().position(|w| *w == "priority") {
            let p: u32 = words.get(i + 1).and_then(|x| x.parse().ok()).ok_or("priority N")?;
            e.priority = p.into();
        }
        Ok((e, &words[1 + nk..]))
    }

    fn add(&mut self, words: &[&str]) -> Result<(), String> {
        let (mut e, rest) = self.key(words)?;
        let call = *rest.first().ok_or("an action expected after the keys")?;
        let (name, rest) = call.split_once('(').ok_or(format!("'{call}': ACTION(ARGS) expected"))?;
        let args: Vec<&str> = rest
            .trim_end_matches(')')
            .split(',')
            .filter(|a| !a.is_empty())
            .collect();
        let (a, act) = self.prog.action(name).ok_or(format!("no action {name}"))?;
        if args.len() != act.params.len() {
            return Err(format!("{name} takes {} arguments", act.params.len()));
        }
        let mut at = 0;
        for (p, text) in act.params.iter().zip(&args) {
            let v = parse_value(text, p.width)?;
            let n = usize::from(p.width).div_ceil(8);
            e.params[at..at + n].copy_from_slice(&v.to_be_bytes()[16 - n..]);
            at += n;
        }
        e.param_len = at as u8;
        e.action_id = u32::from(a).into();
        self.p.apply_entry(&e, true).map(drop).map_err(|e| e.to_string())
    }

    /// The numbers at the end of a `direct`/`direct_meter` line (after the
    /// keys and an optional `priority N`).
    fn tail<const N: usize>(rest: &[&str], usage: &str) -> Result<[u64; N], String> {
        let nums: Vec<&str> = match rest.iter().position(|w| *w == "priority") {
            Some(i) => rest[..i]
                .iter()
                .chain(rest.get(i + 2..).unwrap_or(&[]))
                .copied()
                .collect(),
            None => rest.to_vec(),
        };
        let v: Vec<u64> = nums
            .iter()
            .map(|x| x.parse().map_err(|_| format!("'{x}' is not a number")))
            .collect::<Result<_, _>>()?;
        v.try_into().map_err(|_| usage.to_string())
    }

    fn line(&mut self, words: &[&str]) -> Result<(), String> {
        match words[0] {
            "add" => self.add(&words[1..]),
            "direct" => {
                let usage = "direct TABLE KEY... [priority N] PACKETS BYTES";
                let (e, rest) = self.key(&words[1..])?;
                let [packets, bytes] = Self::tail::<2>(rest, usage)?;
                let got = self.p.direct(&e).map_err(|e| e.to_string())?.counter;
                if got != Some((packets, bytes)) {
                    return Err(format!("direct counter {got:?}, expected {:?}", (packets, bytes)));
                }
                Ok(())
            }
            "direct_meter" => {
                let usage = "direct_meter TABLE KEY... [priority N] CIR CBURST EBURST";
                let (e, rest) = self.key(&words[1..])?;
                let [cir, cburst, eburst] = Self::tail::<3>(rest, usage)?;
                let t = usize::try_from(e.table_id.get()).map_err(|_| "table")?;
                let m = self.prog.tables[t]
                    .direct_meter
                    .ok_or("the table has no direct meter")?;
                let resource = self.prog.meters[usize::from(m)].unit.resource();
                let cfg = MeterConfig {
                    resource: resource.raw(),
                    mode: MeterMode::SrTcm.raw(),
                    cir: cir.into(),
                    cburst: cburst.into(),
                    eburst: eburst.into(),
                    ..Default::default()
                };
                self.p
                    .set_direct(&e, None, Some(&cfg), self.now)
                    .map_err(|e| e.to_string())
            }
            "del" => {
                let (e, _) = self.key(&words[1..])?;
                self.p.apply_entry(&e, false).map(drop).map_err(|e| e.to_string())
            }
            "meter" => {
                let [name, index, cir, cburst, eburst] = words[1..] else {
                    return Err("meter NAME INDEX CIR CBURST EBURST".into());
                };
                let m = self
                    .prog
                    .meters
                    .iter()
                    .position(|m| m.name == name)
                    .ok_or(format!("no meter {name}"))?;
                let resource = self.prog.meters[m].unit.resource();
                let num = |s: &str| s.parse::<u64>().map_err(|_| format!("'{s}' is not a number"));
                let cfg = MeterConfig {
                    resource: resource.raw(),
                    mode: MeterMode::SrTcm.raw(),
                    cir: num(cir)?.into(),
                    cburst: num(cburst)?.into(),
                    eburst: num(eburst)?.into(),
                    ..Default::default()
                };
                self.p
                    .set_meter(m as u16, num(index)? as u32, &cfg, self.now)
                    .map_err(|e| e.to_string())
            }
            "packet" => {
                let lif = match words.get(1) {
                    Some(&"wire") => 0xffff,
                    Some(x) => x.parse().map_err(|_| format!("'{x}': a LIF number or 'wire'"))?,
                    None => return Err("packet LIF HEX...".into()),
                };
                let mut data: Vec<u8> = hex(&words[2..])?
                    .into_iter()
                    .map(|b| b.ok_or("'**' only in expect"))
                    .collect::<Result<_, _>>()?;
                self.now += 1_000;
                let o = self.p.process(self.now, &mut data, lif);
                self.last = Some((o, data));
                Ok(())
            }
            "expect" => {
                let (o, data) = self.last.as_ref().ok_or("expect before any packet")?;
                let (want, bytes_at) = match words.get(1).copied() {
                    Some("lif") => {
                        let n: u16 = words.get(2).and_then(|x| x.parse().ok()).ok_or("expect lif N")?;
                        (Verdict::ToLif(n), 3)
                    }
                    Some("uplink") => (Verdict::ToUplink, 2),
                    Some("flood") => (Verdict::Flood, 2),
                    Some("drop") => (Verdict::Drop, 2),
                    Some("noroute") => (Verdict::NoRoute, 2),
                    Some("parse_error") => (Verdict::ParseError, 2),
                    other => return Err(format!("unknown verdict {other:?}")),
                };
                if o.verdict != want {
                    return Err(format!("verdict {:?}, expected {want:?}", o.verdict));
                }
                if words.len() > bytes_at {
                    let exp = hex(&words[bytes_at..])?;
                    if exp.len() != data.len() {
                        return Err(format!("{} bytes out, expected {}", data.len(), exp.len()));
                    }
                    for (i, (e, g)) in exp.iter().zip(data).enumerate() {
                        if let Some(e) = e {
                            if e != g {
                                return Err(format!("byte {i}: {g:02x}, expected {e:02x}"));
                            }
                        }
                    }
                }
                Ok(())
            }
            "recirculate" => {
                let (o, _) = self.last.as_ref().ok_or("recirculate before any packet")?;
                let n: u8 = words.get(1).and_then(|x| x.parse().ok()).ok_or("recirculate N")?;
                if o.recirculate != n {
                    return Err(format!("recirculate {}, expected {n}", o.recirculate));
                }
                Ok(())
            }
            "cost" => {
                let (o, _) = self.last.as_ref().ok_or("cost before any packet")?;
                let n: u32 = words.get(1).and_then(|x| x.parse().ok()).ok_or("cost N")?;
                if o.cost != n {
                    return Err(format!("cost {}, expected {n}", o.cost));
                }
                Ok(())
            }
            "counter" => {
                let [name, index, packets, bytes] = words[1..] else {
                    return Err("counter NAME INDEX PACKETS BYTES".into());
                };
                let c = self
                    .prog
                    .counters
                    .iter()
                    .position(|c| c.name == name)
                    .ok_or(format!("no counter {name}"))?;
                let i: u32 = index.parse().map_err(|_| "index")?;
                let got = self.p.counter(c as u16, i).ok_or("index outside the counter")?;
                let want = (
                    packets.parse::<u64>().map_err(|_| "packets")?,
                    bytes.parse::<u64>().map_err(|_| "bytes")?,
                );
                if got != want {
                    return Err(format!("counter {name}[{i}] = {got:?}, expected {want:?}"));
                }
                Ok(())
            }
            "stats" => {
                let n: u64 = words
                    .get(2)
                    .and_then(|x| x.parse().ok())
                    .ok_or("stats parse_errors N")?;
                if words.get(1) != Some(&"parse_errors") || self.p.stats().parse_errors != n {
                    return Err(format!("parse errors {}, expected {n}", self.p.stats().parse_errors));
                }
                Ok(())
            }
            other => Err(format!("unknown command '{other}'")),
        }
    }
}

/// Run a vector file on the executor `exec` picks.
fn run_file_on(path: &Path, exec: Executor) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // `program FILE` on the first line: another program than fairnic.p4.
    let first = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .find(|l| !l.is_empty());
    let prog = match first.and_then(|l| l.strip_prefix("program ")) {
        Some(f) => {
            let file = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/programs")
                .join(f.trim());
            p4::compile_file(&file).map_err(|d| format!("{}: {}", file.display(), d[0]))?
        }
        None => p4::fairnic(),
    };
    let p = Pipeline::with_executor(prog.clone(), exec).map_err(|e| e.to_string())?;
    if exec == Executor::Best && !matches!(p.backend(), Backend::Compiled { .. }) {
        return Err(format!("{} was not compiled: {}", prog.name, p.backend()));
    }
    let mut r = Run {
        p,
        prog,
        last: None,
        now: 0,
    };
    let mut checks = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[0] == "program" {
            continue;
        }
        r.line(&words)
            .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        if matches!(
            words[0],
            "expect" | "cost" | "counter" | "stats" | "recirculate" | "direct"
        ) {
            checks += 1;
        }
    }
    Ok(checks)
}

/// Run a vector file on both executors: the compiled program (when the
/// compiler is built in) and the reference; both must pass.
fn run_file(path: &Path) -> Result<usize, String> {
    let n = run_file_on(path, Executor::Reference).map_err(|e| format!("reference executor: {e}"))?;
    let m = run_file_on(path, Executor::Best).map_err(|e| format!("compiled: {e}"))?;
    Ok(n + m)
}

#[test]
fn every_vector_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stf");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("p4/tests/stf exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "stf"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "the vectors are there");
    let mut failures = Vec::new();
    let mut total = 0;
    for f in &files {
        match run_file(f) {
            Ok(n) => {
                assert!(n > 0, "{} checks nothing", f.display());
                total += n;
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "STF failures:\n{}", failures.join("\n"));
    assert!(total >= 40, "{total} checks");
}

/// The runner itself catches a wrong expectation (it is not vacuous).
#[test]
fn a_wrong_expectation_fails() {
    let dir = std::env::temp_dir().join(format!("stf-neg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("neg.stf");
    std::fs::write(&f, "packet 1 00\nexpect lif 3\n").unwrap();
    let e = run_file(&f).unwrap_err();
    assert!(e.contains("neg.stf:2: verdict ParseError, expected ToLif(3)"), "{e}");
    let e = run_file_on(&f, Executor::Best).unwrap_err();
    assert!(e.contains("neg.stf:2: verdict ParseError, expected ToLif(3)"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
