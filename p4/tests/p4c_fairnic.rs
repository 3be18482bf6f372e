//! The `p4c-fairnic` binary as a user runs it.

use std::process::Command;

// The outside-tool checks the integration tests share.
#[path = "../../host-driver/tests/support/tools.rs"]
mod tools;
use tools::p4runtime_python;

fn p4c() -> Command {
    Command::new(env!("CARGO_BIN_EXE_p4c-fairnic"))
}

const FAIRNIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/programs/fairnic.p4");

#[test]
fn writes_the_image_and_the_p4info_a_controller_loads() {
    let dir = std::env::temp_dir().join(format!("p4c-fairnic-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (img, info) = (dir.join("fairnic.img"), dir.join("fairnic.p4info.txt"));
    let out = p4c()
        .arg(FAIRNIC)
        .arg("-o")
        .arg(&img)
        .arg("--p4info")
        .arg(&info)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let program = p4::fairnic();
    assert_eq!(std::fs::read(&img).unwrap(), program.to_image());
    let text = std::fs::read_to_string(&info).unwrap();
    assert_eq!(p4rt::p4info::from_text(&text).unwrap(), p4rt::p4info::p4info(&program));
    // `-`: standard output, the same text.
    let out = p4c().arg(FAIRNIC).args(["--p4info", "-"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_output_it_cannot_write_is_exit_status_2() {
    let out = p4c()
        .arg(FAIRNIC)
        .args(["--p4info", "/nonexistent-dir/x.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write /nonexistent-dir/x.txt"));
    let out = p4c().arg(FAIRNIC).arg("--p4info").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--p4info needs a file name"));
}

/// What the reference client reads from `p4c-fairnic --p4info`: every
/// object's kind, name and id, and the ids p4runtime-shell resolves names
/// to, are what fairnic's own P4Info says.
#[test]
fn the_reference_p4runtime_client_reads_the_p4info() {
    let Some(python) = p4runtime_python(
        "the P4Info check with p4runtime-shell",
        "p4runtime_sh.context, p4.config.v1.p4info_pb2",
    ) else {
        return;
    };
    let out = p4c().arg(FAIRNIC).args(["--p4info", "-"]).output().unwrap();
    assert!(out.status.success());
    let script = r#"
import sys
from google.protobuf import text_format
from p4.config.v1 import p4info_pb2
from p4runtime_sh import context
info = p4info_pb2.P4Info()
text_format.Merge(sys.stdin.read(), info)
ctx = context.Context()
ctx.set_p4info(info)
kinds = [("table", info.tables, context.P4Type.table), ("action", info.actions, context.P4Type.action),
         ("meter", info.meters, context.P4Type.meter), ("counter", info.counters, context.P4Type.counter),
         ("direct_counter", info.direct_counters, context.P4Type.direct_counter)]
for kind, objs, t in kinds:
    for o in objs:
        print(kind, o.preamble.name, o.preamble.id, ctx.get_obj_id(t, o.preamble.name))
for t in info.tables:
    for f in t.match_fields:
        print("key", t.preamble.name, f.id, f.name, f.bitwidth, p4info_pb2.MatchField.MatchType.Name(f.match_type))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &out.stdout).unwrap();
    let res = child.wait_with_output().unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let program = p4::fairnic();
    let ids = p4rt::p4info::Ids::of(&program);
    let mut want = Vec::new();
    for (t, id) in program.tables.iter().zip(&ids.tables) {
        want.push(format!("table {} {id} {id}", t.name));
    }
    for (a, id) in program.actions.iter().zip(&ids.actions) {
        want.push(format!("action {} {id} {id}", a.name));
    }
    for (m, id) in program.meters.iter().zip(&ids.meters) {
        want.push(format!("meter {} {id} {id}", m.name));
    }
    let (direct, indexed): (Vec<_>, Vec<_>) = program
        .counters
        .iter()
        .zip(&ids.counters)
        .enumerate()
        .partition(|(i, _)| program.direct_counter_table(*i).is_some());
    for (_, (c, id)) in indexed {
        want.push(format!("counter {} {id} {id}", c.name));
    }
    for (_, (c, id)) in direct {
        want.push(format!("direct_counter {} {id} {id}", c.name));
    }
    for t in &program.tables {
        for (i, k) in t.keys.iter().enumerate() {
            let kind = match k.kind {
                dataplane::pipeline::MatchKind::Exact => "EXACT",
                dataplane::pipeline::MatchKind::Lpm => "LPM",
                dataplane::pipeline::MatchKind::Ternary => "TERNARY",
            };
            want.push(format!("key {} {} {} {} {kind}", t.name, i + 1, k.name, k.width));
        }
    }
    let got: Vec<String> = String::from_utf8(res.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(got, want);
}
