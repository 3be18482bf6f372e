//! Table writes from a controller: 10,000 `l2_fwd` entries inserted (then
//! deleted) with one batched P4Runtime `Write` through nicdrv's P4Runtime
//! server (tonic client over TCP), against the same entries through
//! nicdrv's JSON control socket (one `table_add` line each, as `nicctl
//! table add` sends them), in the same run, on the embedded simulator's
//! PF. Both paths end in the same `TableEntryAdd` admin command per entry;
//! the figure is entries per second, insert and delete, and P4Runtime's
//! ratio to the socket.
//!
//! The program is fairnic.p4 with `l2_fwd` sized 16,384 (its own 8,192
//! would not take 10,000 entries).
//!
//! `cargo bench -p fairnic-benches --bench p4runtime`; `FAIRNIC_P4RT_ENTRIES`
//! sets the batch (default 10,000), `FAIRNIC_BENCH_ROUNDS` the rounds.

use fairnic_benches::{interleave, Need, Report};
use host_driver::backend::vfio_user::VfioUserBackend;
use host_driver::control::{ControlServer, ControlState};
use host_driver::nic::{Nic, NicConfig};
use p4rt::proto::p4::v1::*;
use sim::device::DeviceConfig;
use sim::{ClockKind, PortSpec, Sim, SimConfig};
use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const DEVICE: u64 = nicdrv::p4runtime::DEVICE_ID;
const ELECTION: u64 = 1;

/// Entry `i`'s destination MAC (locally administered, unicast).
fn mac(i: usize) -> [u8; 6] {
    let b = (i as u32).to_be_bytes();
    [2, 0x42, b[0], b[1], b[2], b[3]]
}

/// The control socket: one request line, one answer line, each checked.
struct Socket {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Socket {
    fn connect(path: &std::path::Path) -> Socket {
        let w = UnixStream::connect(path).expect("the control socket answers");
        let r = BufReader::new(w.try_clone().unwrap());
        Socket { w, r }
    }

    fn ask(&mut self, req: &mgmt::proto::Request) {
        self.w.write_all(mgmt::proto::encode(req).as_bytes()).unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        match mgmt::proto::parse_response(line.trim_end().as_bytes()) {
            Ok(mgmt::proto::Response::Ok(_)) => {}
            other => panic!("the control socket refused: {other:?}"),
        }
    }
}

/// Seconds to add (or delete) `n` entries through the control socket.
fn socket_run(path: &std::path::Path, n: usize, add: bool) -> f64 {
    let mut s = Socket::connect(path);
    let t0 = Instant::now();
    for i in 0..n {
        let m = mac(i);
        let key = m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        let req = if add {
            mgmt::proto::Request::TableAdd {
                table: "l2_fwd".into(),
                keys: vec![key],
                action: "drop".into(),
                args: Vec::new(),
                priority: 0,
            }
        } else {
            mgmt::proto::Request::TableDel {
                table: "l2_fwd".into(),
                keys: vec![key],
                priority: 0,
            }
        };
        s.ask(&req);
    }
    t0.elapsed().as_secs_f64()
}

/// One batched Write of `n` entries (insert or delete).
fn write_request(n: usize, kind: update::Type, table_id: u32, drop_id: u32) -> WriteRequest {
    WriteRequest {
        device_id: DEVICE,
        role: String::new(),
        election_id: Some(Uint128 { high: 0, low: ELECTION }),
        updates: (0..n)
            .map(|i| Update {
                r#type: kind as i32,
                entity: Some(Entity {
                    entity: Some(entity::Entity::TableEntry(TableEntry {
                        table_id,
                        r#match: vec![FieldMatch {
                            field_id: 1,
                            field_match_type: Some(field_match::FieldMatchType::Exact(field_match::Exact {
                                value: mac(i).to_vec(),
                            })),
                        }],
                        action: Some(TableAction {
                            r#type: Some(table_action::Type::Action(Action {
                                action_id: drop_id,
                                params: Vec::new(),
                            })),
                        }),
                        ..Default::default()
                    })),
                }),
            })
            .collect(),
        atomicity: 0,
    }
}

fn main() {
    let n: usize = std::env::var("FAIRNIC_P4RT_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = std::env::var("FAIRNIC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1 } else { 3usize });
    let src = p4::FAIRNIC_P4.replace("size = 8192;", "size = 16384;");
    let program = p4::compile_str(&src, "fairnic.p4").expect("fairnic.p4 with a larger l2_fwd compiles");

    // The device, its PF, the control socket and the P4Runtime server over
    // the same PF, as `nicdrv --control ... --p4runtime` has them.
    let sim = Sim::start(SimConfig {
        device: DeviceConfig {
            vfs: 0,
            ..DeviceConfig::default()
        },
        clock: ClockKind::Real,
        port: PortSpec::Null,
        ..SimConfig::default()
    })
    .expect("the simulator starts");
    let backend = VfioUserBackend::connect(sim.pf_socket()).expect("connect to the PF");
    let pf = Nic::open(Box::new(backend), &NicConfig::default()).expect("the PF comes up");
    let state = Arc::new(ControlState {
        nics: vec![Arc::new(Mutex::new(pf))],
        app: "bench".into(),
        app_stats: Mutex::new((0.0, Vec::new())),
        pipeline: Mutex::new(None),
    });
    let dir = std::env::temp_dir().join(format!("fairnic-p4rt-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("control.sock");
    let control = ControlServer::start(&socket, state.clone()).expect("the control socket listens");
    let service = p4rt::server::Service::new(DEVICE, nicdrv::p4runtime::PfTarget { state });
    let server = p4rt::server::Server::start("127.0.0.1:0".parse().unwrap(), service).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = format!("http://{}", server.addr());
    // Primacy (its stream kept open for the run) and the program.
    let mut controller = rt
        .block_on(p4rt::client::primary(addr, DEVICE, ELECTION))
        .expect("the P4Runtime server makes this client primary");
    rt.block_on(controller.commit(DEVICE, ELECTION, &program))
        .expect("the program is committed");
    let client = &mut controller.client;
    let ids = p4rt::p4info::Ids::of(&program);
    let table_id = ids.tables[usize::from(program.table("l2_fwd").unwrap().0)];
    let drop_id = ids.actions[usize::from(program.action("drop").unwrap().0)];
    let inserts = write_request(n, update::Type::Insert, table_id, drop_id);
    let deletes = write_request(n, update::Type::Delete, table_id, drop_id);

    let mut p4rt_del: Vec<f64> = Vec::new();
    let mut p4rt_run = || {
        let t0 = Instant::now();
        rt.block_on(client.write(inserts.clone()))
            .expect("the batch is written");
        let add = t0.elapsed().as_secs_f64();
        assert_eq!(l2_entries(&socket), n, "the device holds the batch");
        let t0 = Instant::now();
        rt.block_on(client.write(deletes.clone()))
            .expect("the batch is deleted");
        p4rt_del.push(n as f64 / t0.elapsed().as_secs_f64());
        n as f64 / add
    };
    let mut socket_del = Vec::new();
    let mut socket_run_all = || {
        let add = socket_run(&socket, n, true);
        assert_eq!(l2_entries(&socket), n, "the device holds the entries");
        socket_del.push(n as f64 / socket_run(&socket, n, false));
        n as f64 / add
    };
    const P4RT: &str = "P4Runtime Write, one batch (tonic client)";
    const SOCKET: &str = "control socket, one table_add line each";
    let r = interleave(
        rounds,
        &mut [
            (P4RT, &mut p4rt_run as &mut dyn FnMut() -> f64),
            (SOCKET, &mut socket_run_all as &mut dyn FnMut() -> f64),
        ],
    );
    let mut report = Report::new("p4runtime");
    let g = "l2_fwd inserts";
    report.add(g, P4RT, "entries/s", true, r[0].clone());
    report.add(g, SOCKET, "entries/s", true, r[1].clone());
    report.compare(g, P4RT, SOCKET);
    let gd = "l2_fwd deletes";
    report.add(gd, P4RT, "entries/s", true, p4rt_del.clone());
    report.add(gd, SOCKET, "entries/s", true, socket_del.clone());
    report.compare(gd, P4RT, SOCKET);
    // A batch of P4Runtime's must not be slower than the socket's lines:
    // both pay one admin command per entry, and the batch saves the round
    // trips.
    report.bar_vs(g, P4RT, SOCKET, Need::AtLeast(1.0));
    drop(control);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    report.conclude();
}

/// How many entries `l2_fwd` holds (the control socket's table view,
/// whose total is the device's count), through nicctl's own client.
fn l2_entries(socket: &std::path::Path) -> usize {
    let req = mgmt::proto::Request::TableShow {
        table: Some("l2_fwd".into()),
    };
    match mgmt::client::call(socket, &req) {
        Ok(mgmt::proto::Answer::Tables { tables, .. }) if tables.len() == 1 => tables[0].total,
        other => panic!("the control socket did not show l2_fwd: {other:?}"),
    }
}
