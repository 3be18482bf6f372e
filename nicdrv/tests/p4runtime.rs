//! nicdrv's P4Runtime server against p4runtime-shell 0.0.6, the reference
//! controller, run as it runs for a user (a Python subprocess, from the
//! venv `scripts/install-deps --p4runtime` makes): it wins the
//! arbitration, sets the forwarding pipeline (fairnic.p4's P4Info as
//! `p4c-fairnic --p4info` writes it, and its image) with
//! VERIFY_AND_COMMIT, reads it back, resolves names by it, writes and
//! reads table entries, a per-LIF meter and counters; a second client
//! with a lower election id is told it is a backup and refused a write;
//! then it tears down. nicdrv ran with `--pipeline none`, so the program
//! in the device is the controller's: nicctl sees its tables.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

// The outside-tool checks the integration tests share.
#[path = "../../host-driver/tests/support/tools.rs"]
mod tools;
use tools::p4runtime_python;

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("nicdrv-p4rt-{}-{name}", std::process::id()))
}

#[test]
#[cfg_attr(not(feature = "sim"), ignore = "needs the embedded simulator (feature sim)")]
fn p4runtime_shell_sets_the_pipeline_and_reads_it_back() {
    let Some(python) = p4runtime_python("the p4runtime-shell check", "p4runtime_sh.shell") else {
        return;
    };
    let program = p4::fairnic();
    let (info, image) = (tmp("fairnic.p4info.txt"), tmp("fairnic.img"));
    std::fs::write(&info, p4rt::p4info::to_text(&p4rt::p4info::p4info(&program))).unwrap();
    std::fs::write(&image, program.to_image()).unwrap();
    let control = tmp("control.sock");
    let mut nicdrv = Command::new(env!("CARGO_BIN_EXE_nicdrv"))
        .args(["gen", "--vfs", "2", "--duration", "60", "--rate", "1000", "--quiet"])
        .args(["--pipeline", "none", "--p4runtime", "127.0.0.1:0", "--control"])
        .arg(&control)
        .arg("--json")
        .arg(tmp("report.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nicdrv runs");
    let mut lines = BufReader::new(nicdrv.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("nicdrv: P4Runtime at ")
                .and_then(|r| r.split(' ').next())
                .map(String::from)
        })
        .expect("nicdrv says where P4Runtime is");
    // Drain the rest of nicdrv's output meanwhile.
    let drain = std::thread::spawn(move || for _ in lines {});
    let script = r#"
import sys
import p4runtime_sh.shell as sh
from p4runtime_sh.context import P4Type
sh.setup(device_id=1, grpc_addr=sys.argv[1], election_id=(0, 5),
         config=sh.FwdPipeConfig(sys.argv[2], sys.argv[3]))
print("l2_fwd", sh.context.get_obj_id(P4Type.table, "l2_fwd"))
print("lif_packets", sh.context.get_obj_id(P4Type.meter, "lif_packets"))
te = sh.TableEntry("l2_fwd")(action="to_lif")
te.match["hdr.ethernet.dst_addr"] = "02:00:00:00:00:66"
te.action["lif"] = "1"
te.insert()
try:
    te.insert()
    print("duplicate accepted")
except Exception as e:
    print("duplicate refused:", "ALREADY_EXISTS" in str(e))
def mac(r):
    return r.match["hdr.ethernet.dst_addr"].exact.value.hex()
rows = list(sh.TableEntry("l2_fwd").read())
mine = [r for r in rows if mac(r) == "020000000066"]
print("read", len(mine), mine[0].action["lif"].value.hex())
# The device's own entries: one per LIF, its MAC to it.
print("device entries", sorted(int(r.action["lif"].value.hex(), 16) for r in rows if mac(r) != "020000000066"))
te.delete()
print("after delete", len([r for r in sh.TableEntry("l2_fwd").read() if mac(r) == "020000000066"]))
# LIF 1's bytes meter, two-rate, in bytes/s and bytes; read back as the
# device applied it (every LIF's cell, then LIF 1's alone).
me = sh.MeterEntry("lif_bytes")
me.index = 1
me.cir = 1000003
me.cburst = 65536
me.pir = 2000003
me.pburst = 131072
me.modify()
cells = list(sh.MeterEntry("lif_bytes").read())
print("meter cells", sorted(m.index for m in cells))
m = list(sh.MeterEntry("lif_bytes")(index=1).read())[0]
print("meter applied", m.cir, m.cburst, m.pir, m.pburst)
# The counters gen's traffic moved since the program was loaded: every
# LIF's frames into the pipeline.
import time
time.sleep(0.5)
cs = list(sh.CounterEntry("lif_in").read())
print("counters moved", sorted(c.index for c in cs if c.packet_count > 0))
# A reset of every cell (index left out, counts 0), then LIF 0's alone.
before = sum(c.packet_count for c in cs)
z = sh.CounterEntry("lif_in")
z.packet_count = 0
z.byte_count = 0
z.modify()
after = sum(c.packet_count for c in sh.CounterEntry("lif_in").read())
z.index = 0
z.modify()
print("counters reset", after < before, list(sh.CounterEntry("lif_in")(index=0).read())[0].packet_count < 50)
# PacketIn: an acl entry sends gen's UDP frames to the CPU port; the
# shell's PacketIn gets them with the LIF that sent each.
pin = sh.PacketIn()
acl = sh.TableEntry("acl")(action="to_cpu")
acl.match["hdr.ipv4.protocol"] = "17&&&0xff"
acl.priority = 1
acl.insert()
got = list(pin.sniff(timeout=2))
# The acl entry's direct counter (acl_hits): the frames it sent up, at
# least; then reset through the entry.
dc = sh.DirectCounterEntry("acl_hits")
hits = list(dc.read())
print("acl hits", len(hits), hits[0].packet_count >= len(got) > 0)
dc.table_entry = acl
dc.packet_count = 0
dc.byte_count = 0
dc.modify()
print("acl hits reset", list(dc.read())[0].packet_count < hits[0].packet_count)
acl.delete()
lifs = sorted({int(m.packet.metadata[0].value.hex(), 16) for m in got})
print("packet in", len(got) > 0, lifs, all(len(m.packet.payload) >= 60 for m in got))
# PacketOut: three frames to LIF 1, past the pipeline (gen's receiver on
# LIF 1 counts them as the controller's).
frame = bytes.fromhex("02f41c000001" "020000000042" "88b5") + bytes(50)
for i in range(3):
    sh.PacketOut(payload=frame, egress_lif="1").send()
print("packet out sent")
# One left for nicctl to see.
kept = sh.TableEntry("l2_fwd")(action="to_lif")
kept.match["hdr.ethernet.dst_addr"] = "02:00:00:00:00:77"
kept.action["lif"] = "1"
kept.insert()
# Reload the program with RECONCILE_AND_COMMIT while gen's traffic runs:
# the entry and LIF 1's meter stay (the shell's own client, raw request).
import google.protobuf.text_format
from p4.v1 import p4runtime_pb2 as pb
req = pb.SetForwardingPipelineConfigRequest(device_id=1)
req.election_id.low = 5
req.action = pb.SetForwardingPipelineConfigRequest.RECONCILE_AND_COMMIT
google.protobuf.text_format.Merge(open(sys.argv[2]).read(), req.config.p4info)
req.config.p4_device_config = open(sys.argv[3], "rb").read()
sh.client.stub.SetForwardingPipelineConfig(req)
print("reconciled", len([r for r in sh.TableEntry("l2_fwd").read() if mac(r) == "020000000077"]))
m = list(sh.MeterEntry("lif_bytes")(index=1).read())[0]
print("meter kept", m.cir, m.cburst, m.pir, m.pburst)
# A second controller with a lower election id: told it is a backup, and
# its write refused while the shell holds primacy.
from p4runtime_sh.p4runtime import P4RuntimeClient
from p4.v1 import p4runtime_pb2
backup = P4RuntimeClient(1, sys.argv[1], (0, 2))  # arbitrates as it connects
req = p4runtime_pb2.WriteRequest()
u = req.updates.add()
u.type = p4runtime_pb2.Update.INSERT
u.entity.table_entry.table_id = sh.context.get_obj_id(P4Type.table, "l2_fwd")
try:
    backup.write(req)
    print("backup write accepted")
except Exception as e:
    print("backup refused:", "PERMISSION_DENIED" in str(e))
backup.tear_down()
sh.teardown()
print("done")
"#;
    let mut shell = Command::new(&python)
        .args(["-c", script, &addr])
        .arg(&info)
        .arg(&image)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The shell must not hang (a server that kept the stream open would
    // hold its teardown).
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while shell.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = shell.kill();
            let _ = nicdrv.kill();
            panic!("p4runtime-shell did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = shell.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let ids = p4rt::p4info::Ids::of(&program);
    let l2 = ids.tables[program.tables.iter().position(|t| t.name == "l2_fwd").unwrap()];
    let meter = ids.meters[program.meters.iter().position(|m| m.name == "lif_packets").unwrap()];
    // The meter as the device applied it, by nicctl (the same PF).
    let nicctl = |args: &[&str]| {
        let mut argv = vec!["nicctl".to_string(), "--socket".into(), control.display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let code = mgmt::cli::run(argv, &mut o, &mut e);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&e));
        String::from_utf8(o).unwrap()
    };
    let shown: serde_json::Value = serde_json::from_str(&nicctl(&[
        "--json",
        "meter",
        "show",
        "--lif",
        "1",
        "--resource",
        "bytes",
    ]))
    .unwrap();
    let applied = ["cir", "cburst", "pir", "pburst"]
        .map(|k| {
            find_u64(&shown, k)
                .unwrap_or_else(|| panic!("{k} in {shown}"))
                .to_string()
        })
        .join(" ");
    // The device's own entries: gen's two LIFs (one on each VF, made
    // before the P4Runtime server starts), each MAC to its LIF.
    let want = format!(
        "l2_fwd {l2}\nlif_packets {meter}\nduplicate refused: True\nread 1 01\ndevice entries [0, 1]\nafter delete 0\nmeter cells [0, 1]\nmeter applied {applied}\ncounters moved [0, 1]\ncounters reset True True\nacl hits 1 True\nacl hits reset True\npacket in True [0, 1] True\npacket out sent\nreconciled 1\nmeter kept {applied}\nYou are not the primary client, you only have read access to the server\nbackup refused: True\ndone\n"
    );
    // The shell also echoes each match and parameter as it is set: only
    // the script's own lines are compared.
    let ours: String = stdout
        .lines()
        .filter(|l| {
            [
                "l2_fwd ",
                "lif_packets ",
                "duplicate ",
                "read ",
                "device entries ",
                "meter ",
                "counters ",
                "acl hits ",
                "packet ",
                "reconciled ",
                "You are not the primary",
                "backup ",
                "after delete ",
                "done",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        out.status.success() && ours == want,
        "p4runtime-shell: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The device runs the controller's program: nicctl sees its tables,
    // with the entry the controller left and the device's own.
    let shown = nicctl(&["table", "show", "l2_fwd"]);
    for want in [
        "l2_fwd (table 1)",
        "; 3 entries\n",
        "02:00:00:00:00:77 -> to_lif(1)",
        "02:f4:1c:00:00:00 -> to_lif(0)",
        "02:f4:1c:00:00:01 -> to_lif(1)",
    ] {
        assert!(shown.contains(want), "{want:?} in {shown}");
    }
    // SAFETY: kill(2) with a pid this test spawned and has not reaped.
    unsafe { libc::kill(nicdrv.id() as i32, libc::SIGINT) };
    assert!(nicdrv.wait().unwrap().success());
    drain.join().unwrap();
    // gen's receiver on LIF 1 took the controller's three PacketOuts (and
    // nothing else came from the CPU port).
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(tmp("report.json")).unwrap()).unwrap();
    assert_eq!(
        report["conservation"]["foreign"]["from_cpu"],
        serde_json::json!(3),
        "{report}"
    );
    // Every frame gen sent is accounted for, across the reload and the
    // frames sent to the controller.
    assert_eq!(report["conservation"]["balanced"], serde_json::json!(true), "{report}");
    for f in [info, image] {
        let _ = std::fs::remove_file(f);
    }
}

/// The first number under key `k` anywhere in `v`.
fn find_u64(v: &serde_json::Value, k: &str) -> Option<u64> {
    match v {
        serde_json::Value::Object(m) => m
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .or_else(|| m.values().find_map(|x| find_u64(x, k))),
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_u64(x, k)),
        _ => None,
    }
}
