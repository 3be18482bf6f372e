//! The P4Runtime server's client arbitration, over real gRPC (tonic's
//! client on TCP): who is primary, who hears of a change, what is refused,
//! and that a stream ends when its client half-closes.

use dataplane::abi::{MeterConfig as DevMeter, MeterPolicy, MeterResource};
use p4rt::proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use p4rt::proto::p4::v1::stream_message_request::Update as In;
use p4rt::proto::p4::v1::stream_message_response::Update as Out;
use p4rt::proto::p4::v1::*;
use p4rt::server::{Server, Service, API_VERSION};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

// The outside-tool checks the integration tests share.
#[path = "../../host-driver/tests/support/tools.rs"]
mod tools;
use tools::p4runtime_python;

const DEVICE: u64 = 1;

/// One controller's stream: what it sends, and what it receives.
struct Controller {
    to: mpsc::Sender<StreamMessageRequest>,
    from: tonic::Streaming<StreamMessageResponse>,
}

impl Controller {
    async fn connect(addr: std::net::SocketAddr) -> Controller {
        let mut client = P4RuntimeClient::connect(format!("http://{addr}")).await.unwrap();
        let (to, rx) = mpsc::channel(8);
        let from = client
            .stream_channel(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Controller { to, from }
    }

    async fn arbitrate(&self, device_id: u64, election_id: Option<u128>) {
        let u = MasterArbitrationUpdate {
            device_id,
            role: None,
            election_id: election_id.map(|e| Uint128 {
                high: (e >> 64) as u64,
                low: e as u64,
            }),
            status: None,
        };
        self.to
            .send(StreamMessageRequest {
                update: Some(In::Arbitration(u)),
            })
            .await
            .unwrap();
    }

    /// The next message, within 5 s.
    async fn next(&mut self) -> Result<Option<StreamMessageResponse>, tonic::Status> {
        tokio::time::timeout(Duration::from_secs(5), self.from.message())
            .await
            .expect("the server answers within 5 s")
    }

    /// The next arbitration answer: its status code and election id.
    async fn answer(&mut self) -> (Code, u64) {
        match self.next().await.unwrap().and_then(|m| m.update) {
            Some(Out::Arbitration(a)) => (
                Code::from_i32(a.status.unwrap().code),
                a.election_id.map_or(u64::MAX, |e| e.low),
            ),
            other => panic!("not an arbitration answer: {other:?}"),
        }
    }
}

/// A target that refuses every program: arbitration needs no device.
struct NoDevice;

impl p4rt::server::Target for NoDevice {
    fn load_pipeline(&self, _: &dataplane::pipeline::Program, _: &[u8]) -> Result<(), String> {
        Err("no device behind this test server".into())
    }
    fn table_entry(&self, _: bool, _: &dataplane::abi::TableEntry) -> Result<(), p4rt::entries::Refusal> {
        Err((Code::Unavailable, "no device behind this test server".into()))
    }
    fn table_entries(&self, _: u32) -> Result<Vec<dataplane::abi::TableEntry>, p4rt::entries::Refusal> {
        Err((Code::Unavailable, "no device behind this test server".into()))
    }
    fn meter_set(&self, _: u16, _: &DevMeter) -> Result<DevMeter, p4rt::entries::Refusal> {
        Err((Code::Unavailable, "no device behind this test server".into()))
    }
    fn meter_get(&self, _: u16, _: MeterResource) -> Result<DevMeter, p4rt::entries::Refusal> {
        Err((Code::Unavailable, "no device behind this test server".into()))
    }
    fn lifs(&self) -> Result<Vec<u16>, p4rt::entries::Refusal> {
        Err((Code::Unavailable, "no device behind this test server".into()))
    }
    fn counters(&self, _: u32) -> Result<Vec<(u64, u64)>, p4rt::entries::Refusal> {
        Err((Code::Unavailable, "no device behind this test server".into()))
    }
}

fn server() -> Server {
    Server::start("127.0.0.1:0".parse().unwrap(), Service::new(DEVICE, NoDevice)).unwrap()
}

#[tokio::test]
async fn capabilities_say_the_api_version() {
    let s = server();
    let mut c = P4RuntimeClient::connect(format!("http://{}", s.addr())).await.unwrap();
    let r = c.capabilities(CapabilitiesRequest {}).await.unwrap().into_inner();
    assert_eq!(r.p4runtime_api_version, API_VERSION);
}

#[tokio::test]
async fn primary_backups_and_every_change_told() {
    let s = server();
    let mut a = Controller::connect(s.addr()).await;
    a.arbitrate(DEVICE, Some(5)).await;
    assert_eq!(a.answer().await, (Code::Ok, 5));
    let mut b = Controller::connect(s.addr()).await;
    b.arbitrate(DEVICE, Some(3)).await;
    assert_eq!(b.answer().await, (Code::AlreadyExists, 5));
    // A higher id takes over: the old primary and the backup hear it.
    let mut c = Controller::connect(s.addr()).await;
    c.arbitrate(DEVICE, Some(9)).await;
    assert_eq!(c.answer().await, (Code::Ok, 9));
    assert_eq!(a.answer().await, (Code::AlreadyExists, 9));
    assert_eq!(b.answer().await, (Code::AlreadyExists, 9));
    // The primary half-closes: its stream ends, and the next highest is
    // primary again.
    let Controller { to, mut from } = c;
    drop(to);
    let end = tokio::time::timeout(Duration::from_secs(5), from.message())
        .await
        .expect("within 5 s");
    assert!(end.unwrap().is_none(), "the server ends the stream");
    assert_eq!(a.answer().await, (Code::Ok, 5));
    assert_eq!(b.answer().await, (Code::AlreadyExists, 5));
}

#[tokio::test]
async fn a_taken_election_id_and_an_unknown_device_are_refused() {
    let s = server();
    let mut a = Controller::connect(s.addr()).await;
    a.arbitrate(DEVICE, Some(2)).await;
    assert_eq!(a.answer().await, (Code::Ok, 2));
    let mut twin = Controller::connect(s.addr()).await;
    twin.arbitrate(DEVICE, Some(2)).await;
    assert_eq!(twin.next().await.unwrap_err().code(), Code::InvalidArgument);
    let mut lost = Controller::connect(s.addr()).await;
    lost.arbitrate(DEVICE + 1, Some(7)).await;
    assert_eq!(lost.next().await.unwrap_err().code(), Code::NotFound);
    // Neither disturbed the primary.
    a.arbitrate(DEVICE, Some(2)).await;
    assert_eq!(a.answer().await, (Code::Ok, 2));
}

#[tokio::test]
async fn a_packet_before_arbitration_is_refused_on_the_stream() {
    let s = server();
    let mut a = Controller::connect(s.addr()).await;
    a.to.send(StreamMessageRequest {
        update: Some(In::Packet(PacketOut {
            payload: vec![1, 2, 3],
            metadata: Vec::new(),
        })),
    })
    .await
    .unwrap();
    match a.next().await.unwrap().and_then(|m| m.update) {
        Some(Out::Error(e)) => {
            assert_eq!(e.canonical_code, Code::PermissionDenied as i32);
            assert!(matches!(e.details, Some(stream_error::Details::PacketOut(_))));
        }
        other => panic!("{other:?}"),
    }
}

/// A PacketOut from the primary reaches the device's CPU port with its
/// egress LIF; a backup's, or one with bad metadata, is answered with a
/// stream error carrying the packet; frames the device queued at its CPU
/// port reach the primary as PacketIn with the sender's LIF, in order,
/// and none is read while no stream is primary.
#[tokio::test]
async fn packets_go_out_from_the_primary_and_come_in_to_it() {
    let rec = Recorder::default();
    // Queued before any primary: the server leaves them on the device.
    rec.3
        .lock()
        .unwrap()
        .1
        .extend((0..5u8).map(|i| (u16::from(i % 2), vec![i; 60])));
    let s = Server::start("127.0.0.1:0".parse().unwrap(), Service::new(DEVICE, rec.clone())).unwrap();
    let mut backup = Controller::connect(s.addr()).await;
    backup.arbitrate(DEVICE, None).await;
    assert_eq!(backup.answer().await.0, Code::NotFound);
    tokio::time::sleep(p4rt::server::packets::POLL * 10).await;
    assert_eq!(rec.3.lock().unwrap().1.len(), 5, "nothing read without a primary");

    let mut primary = Controller::connect(s.addr()).await;
    primary.arbitrate(DEVICE, Some(9)).await;
    assert_eq!(primary.answer().await, (Code::Ok, 9));
    assert_eq!(backup.answer().await, (Code::AlreadyExists, 9), "told of the primary");
    // Five frames in three reads of at most two, in order.
    let mut got = Vec::new();
    while got.len() < 5 {
        match primary.next().await.unwrap().and_then(|m| m.update) {
            Some(Out::Packet(p)) => got.push((p.metadata, p.payload)),
            Some(Out::Arbitration(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    for (i, (meta, payload)) in got.iter().enumerate() {
        assert_eq!(meta.len(), 1);
        assert_eq!((meta[0].metadata_id, meta[0].value.clone()), (1, vec![(i % 2) as u8]));
        assert_eq!(payload, &vec![i as u8; 60]);
    }

    let packet = |lif: &[u8], len: usize| StreamMessageRequest {
        update: Some(In::Packet(PacketOut {
            payload: vec![0x5a; len],
            metadata: vec![PacketMetadata {
                metadata_id: 1,
                value: lif.to_vec(),
            }],
        })),
    };
    primary.to.send(packet(&[2], 64)).await.unwrap();
    primary.to.send(packet(&[0xff, 0xff], 64)).await.unwrap();
    // Refused, each on the sender's stream with its packet.
    let refused = |m: Option<StreamMessageResponse>| match m.and_then(|m| m.update) {
        Some(Out::Error(e)) => {
            let Some(stream_error::Details::PacketOut(p)) = e.details else {
                panic!("no packet in {e:?}")
            };
            (
                Code::from_i32(e.canonical_code),
                e.message,
                p.packet_out.unwrap().payload.len(),
            )
        }
        other => panic!("{other:?}"),
    };
    backup.to.send(packet(&[1], 64)).await.unwrap();
    let (code, why, len) = refused(backup.next().await.unwrap());
    assert_eq!((code, len), (Code::PermissionDenied, 64), "{why}");
    primary.to.send(packet(&[1], 10)).await.unwrap();
    let (code, why, _) = refused(primary.next().await.unwrap());
    assert_eq!(code, Code::InvalidArgument);
    assert!(why.contains("14 to 9216"), "{why}");
    primary.to.send(packet(&[7], 64)).await.unwrap();
    let (code, why, _) = refused(primary.next().await.unwrap());
    assert_eq!(code, Code::NotFound, "the device's refusal: {why}");
    assert_eq!(
        rec.3.lock().unwrap().0,
        vec![(Some(2), vec![0x5a; 64]), (None, vec![0x5a; 64])],
        "the primary's two PacketOuts, in order; nothing else"
    );

    // A frame queued later arrives too.
    rec.3.lock().unwrap().1.push((3, vec![9; 70]));
    match primary.next().await.unwrap().and_then(|m| m.update) {
        Some(Out::Packet(p)) => assert_eq!((p.metadata[0].value.clone(), p.payload.len()), (vec![3], 70)),
        other => panic!("{other:?}"),
    }
}

/// RECONCILE_AND_COMMIT: a compatible program takes the device's entries
/// under its own numbers; an incompatible one is refused before the
/// device sees it; an entry the device refuses after the load puts the
/// committed program and its entries back.
#[tokio::test]
async fn reconcile_keeps_the_entries_of_a_compatible_program() {
    use dataplane::abi::TableEntry as DevEntry;
    use set_forwarding_pipeline_config_request::Action;
    let (_s, rec, mut c, _primary) = primary_on_a_test_device().await;
    let config = |p: &dataplane::pipeline::Program| ForwardingPipelineConfig {
        p4info: Some(p4rt::p4info::p4info(p)),
        p4_device_config: p.to_image(),
        cookie: None,
    };
    let reconcile = |p: &dataplane::pipeline::Program| set(Action::ReconcileAndCommit, 3, Some(config(p)));
    let old = p4::fairnic();
    let e = c.set_forwarding_pipeline_config(reconcile(&old)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "nothing committed to keep");
    c.set_forwarding_pipeline_config(set(Action::VerifyAndCommit, 3, Some(config(&old))))
        .await
        .unwrap();
    let on_device = |mac_last: u8, p: &dataplane::pipeline::Program| {
        let (l2, _) = p.table("l2_fwd").unwrap();
        let to_lif = p.action("to_lif").unwrap().0;
        DevEntry::exact(l2.into(), &[2, 0, 0, 0, 0, mac_last], to_lif.into(), &[0, mac_last])
    };
    for last in [1, 2] {
        let e = on_device(last, &old);
        rec.1.lock().unwrap().as_mut().unwrap().apply_entry(&e, true).unwrap();
    }
    let held = |p: &dataplane::pipeline::Program| {
        let (l2, _) = p.table("l2_fwd").unwrap();
        let d = rec.1.lock().unwrap();
        d.as_ref().unwrap().abi_entries(l2, 0, 100).unwrap().0
    };
    // One more action, declared first: every action is renumbered.
    let src = p4::FAIRNIC_P4.replace(
        "    /* Deliver to LIF `lif`. */",
        "    action first() { }\n    /* Deliver to LIF `lif`. */",
    );
    let new = p4::compile_str(&src, "v2.p4").unwrap();
    assert_ne!(new.action("to_lif").unwrap().0, old.action("to_lif").unwrap().0);
    rec.0.lock().unwrap().clear();
    c.set_forwarding_pipeline_config(reconcile(&new)).await.unwrap();
    assert_eq!(rec.0.lock().unwrap()[0], new.name, "loaded, then the entries");
    assert_eq!(held(&new), [on_device(1, &new), on_device(2, &new)]);
    // Read through P4Runtime: the same entries, by the ids the new P4Info
    // gives (FNV-1a of the names: unchanged).
    let ids = p4rt::p4info::Ids::of(&new);
    let l2 = ids.tables[usize::from(new.table("l2_fwd").unwrap().0)];
    let read = read_all(
        &mut c,
        entity::Entity::TableEntry(TableEntry {
            table_id: l2,
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    assert_eq!(read.len(), 2);
    // Incompatible: l2_fwd keyed on another field. Refused, nothing loaded.
    let other = p4::compile_str(
        &p4::FAIRNIC_P4.replace("hdr.ethernet.dst_addr: exact;", "hdr.ethernet.src_addr: exact;"),
        "v3.p4",
    )
    .unwrap();
    rec.0.lock().unwrap().clear();
    let e = c.set_forwarding_pipeline_config(reconcile(&other)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("l2_fwd: its key is not the same"),
        "{}",
        e.message()
    );
    assert!(rec.0.lock().unwrap().is_empty(), "the device saw nothing");
    // An entry the device refuses after the load (this device's fairnic
    // has no room for ..:ee): v2 and its three entries are put back.
    let ee = on_device(0xee, &new);
    rec.1.lock().unwrap().as_mut().unwrap().apply_entry(&ee, true).unwrap();
    let e = c.set_forwarding_pipeline_config(reconcile(&old)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{}", e.message());
    assert!(
        e.message().contains("the committed program and its entries are back"),
        "{}",
        e.message()
    );
    assert_eq!(rec.1.lock().unwrap().as_ref().unwrap().program().name, new.name);
    assert_eq!(held(&new), [on_device(1, &new), on_device(2, &new), ee]);
}

/// The reference client's messages (p4runtime 1.6.0 from PyPI, over
/// grpcio) against this server: Capabilities, an arbitration answered as
/// primary, and the stream ended by the server after the client's
/// half-close. Our .proto files were written from the specification; this
/// is the check that they meet the reference on the wire.
#[test]
fn the_reference_clients_messages_arbitrate() {
    let Some(python) = p4runtime_python(
        "the arbitration check with the reference P4Runtime client",
        "grpc, p4.v1.p4runtime_pb2_grpc",
    ) else {
        return;
    };
    let s = server();
    let script = r#"
import sys, queue
import grpc
from p4.v1 import p4runtime_pb2, p4runtime_pb2_grpc
stub = p4runtime_pb2_grpc.P4RuntimeStub(grpc.insecure_channel(sys.argv[1]))
print(stub.Capabilities(p4runtime_pb2.CapabilitiesRequest(), timeout=10).p4runtime_api_version)
q = queue.Queue()
def requests():
    while True:
        m = q.get()
        if m is None:
            return
        yield m
r = p4runtime_pb2.StreamMessageRequest()
r.arbitration.device_id = 1
r.arbitration.election_id.high = 1
r.arbitration.election_id.low = 2
q.put(r)
it = stub.StreamChannel(requests(), timeout=10)
a = next(it).arbitration
print(a.device_id, a.status.code, a.election_id.high, a.election_id.low)
q.put(None)
print("ended after", len(list(it)), "more")
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, &s.addr().to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, format!("{API_VERSION}\n1 0 1 2\nended after 0 more\n"));
}

/// A target that records the programs it was given to load and the
/// table operations (refusing a delete of what it never added, as the
/// device does).
#[derive(Clone, Default)]
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<String>>>, Device, Meters, CpuPort);

/// The test device's CPU port: frames sent out (LIF or uplink), and
/// frames queued for PacketIn (sender LIF, frame).
type CpuPort = std::sync::Arc<std::sync::Mutex<(Vec<(Option<u16>, Vec<u8>)>, Vec<(u16, Vec<u8>)>)>>;

/// The test device's LIF meters, by LIF and resource.
type Meters = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<(u16, u8), DevMeter>>>;

/// The device's tables: the pipeline the simulator runs, loaded with the
/// program the server committed.
type Device = std::sync::Arc<std::sync::Mutex<Option<dataplane::pipeline::Pipeline>>>;

impl p4rt::server::Target for Recorder {
    fn load_pipeline(&self, p: &dataplane::pipeline::Program, _: &[u8]) -> Result<(), String> {
        self.0.lock().unwrap().push(p.name.clone());
        *self.1.lock().unwrap() = Some(dataplane::pipeline::Pipeline::new(p.clone()).map_err(|e| e.to_string())?);
        Ok(())
    }
    fn table_entry(&self, insert: bool, e: &dataplane::abi::TableEntry) -> Result<(), p4rt::entries::Refusal> {
        let what = format!(
            "{} table {} key {:02x?}",
            if insert { "add" } else { "del" },
            e.table_id.get(),
            &e.key[..usize::from(e.key_len)]
        );
        self.0.lock().unwrap().push(what);
        let mut d = self.1.lock().unwrap();
        let p = d
            .as_mut()
            .ok_or((Code::FailedPrecondition, "no pipeline".to_string()))?;
        // fairnic.p4 on this device has no room for a MAC ending in 0xee.
        if insert && p.program().name == "fairnic" && e.key().last() == Some(&0xee) {
            return Err((Code::ResourceExhausted, "test device: no room for ..:ee".into()));
        }
        p.apply_entry(e, insert).map(|_| ()).map_err(|err| {
            use dataplane::pipeline::EntryError as E;
            let code = match err {
                E::Exists(_) => Code::AlreadyExists,
                E::NotFound(_) | E::NoTable(_) | E::NoAction { .. } | E::NoDirect { .. } => Code::NotFound,
                E::Full(_) => Code::ResourceExhausted,
                E::Invalid { .. } | E::Meter { .. } => Code::InvalidArgument,
            };
            (code, err.to_string())
        })
    }
    fn table_entries(&self, table: u32) -> Result<Vec<dataplane::abi::TableEntry>, p4rt::entries::Refusal> {
        let d = self.1.lock().unwrap();
        let p = d
            .as_ref()
            .ok_or((Code::FailedPrecondition, "no pipeline".to_string()))?;
        u16::try_from(table)
            .ok()
            .and_then(|t| p.abi_entries(t, 0, usize::MAX))
            .map(|(entries, _)| entries)
            .ok_or((Code::NotFound, format!("no table {table}")))
    }
    // Meters: the test device has LIFs 0..4 and keeps what it is given,
    // rates rounded down to 8 as a device with a granularity would.
    fn meter_set(&self, lif: u16, cfg: &DevMeter) -> Result<DevMeter, p4rt::entries::Refusal> {
        if lif >= 4 {
            return Err((Code::NotFound, format!("no LIF {lif}")));
        }
        let mut applied = *cfg;
        applied.cir = (cfg.cir.get() / 8 * 8).into();
        applied.pir = (cfg.pir.get() / 8 * 8).into();
        self.0.lock().unwrap().push(format!("meter {lif} {:?}", cfg.resource()));
        self.2.lock().unwrap().insert((lif, cfg.resource), applied);
        Ok(applied)
    }
    fn meter_get(&self, lif: u16, resource: MeterResource) -> Result<DevMeter, p4rt::entries::Refusal> {
        if lif >= 4 {
            return Err((Code::NotFound, format!("no LIF {lif}")));
        }
        Ok(self
            .2
            .lock()
            .unwrap()
            .get(&(lif, resource.raw()))
            .copied()
            .unwrap_or(DevMeter {
                resource: resource.raw(),
                policy: MeterPolicy::Deprioritize.raw(),
                ..Default::default()
            }))
    }
    fn lifs(&self) -> Result<Vec<u16>, p4rt::entries::Refusal> {
        Ok(vec![0, 1, 2, 3])
    }
    fn counters(&self, counter: u32) -> Result<Vec<(u64, u64)>, p4rt::entries::Refusal> {
        let d = self.1.lock().unwrap();
        let p = d
            .as_ref()
            .ok_or((Code::FailedPrecondition, "no pipeline".to_string()))?;
        let c = u16::try_from(counter).map_err(|_| (Code::NotFound, format!("no counter {counter}")))?;
        let size = p
            .program()
            .counters
            .get(usize::from(c))
            .ok_or((Code::NotFound, format!("no counter {counter}")))?
            .size;
        Ok((0..size).map(|i| p.counter(c, i).unwrap_or((0, 0))).collect())
    }
    fn counter_set(&self, counter: u32, index: Option<u32>, value: (u64, u64)) -> Result<(), p4rt::entries::Refusal> {
        let mut d = self.1.lock().unwrap();
        let p = d
            .as_mut()
            .ok_or((Code::FailedPrecondition, "no pipeline".to_string()))?;
        let c = u16::try_from(counter).map_err(|_| (Code::NotFound, format!("no counter {counter}")))?;
        p.set_counter(c, index, value)
            .map(|_| ())
            .ok_or((Code::NotFound, format!("no counter {counter} cell {index:?}")))
    }
    fn pipeline_meters(&self, meter: u32) -> Result<Vec<DevMeter>, p4rt::entries::Refusal> {
        let d = self.1.lock().unwrap();
        let p = d
            .as_ref()
            .ok_or((Code::FailedPrecondition, "no pipeline".to_string()))?;
        let m = u16::try_from(meter).map_err(|_| (Code::NotFound, format!("no meter {meter}")))?;
        let size = p
            .program()
            .meters
            .get(usize::from(m))
            .ok_or((Code::NotFound, format!("no meter {meter}")))?
            .size;
        Ok((0..size).map(|i| p.meter_config(m, i).unwrap_or_default()).collect())
    }
    fn pipeline_meter_set(&self, meter: u32, index: u32, cfg: &DevMeter) -> Result<(), p4rt::entries::Refusal> {
        self.0
            .lock()
            .unwrap()
            .push(format!("program meter {meter} cell {index}"));
        let mut d = self.1.lock().unwrap();
        let p = d
            .as_mut()
            .ok_or((Code::FailedPrecondition, "no pipeline".to_string()))?;
        let m = u16::try_from(meter).map_err(|_| (Code::NotFound, format!("no meter {meter}")))?;
        p.set_meter(m, index, cfg, 0)
            .map_err(|e| (Code::InvalidArgument, e.to_string()))
    }
    fn table_data(&self, table: u32) -> Result<Vec<dataplane::abi::TableEntryData>, p4rt::entries::Refusal> {
        use dataplane::abi::table_data_flags as f;
        let d = self.1.lock().unwrap();
        let p = d
            .as_ref()
            .ok_or((Code::FailedPrecondition, "no pipeline".to_string()))?;
        let (entries, _) = u16::try_from(table)
            .ok()
            .and_then(|t| p.abi_entries_slots(t, 0, usize::MAX))
            .ok_or((Code::NotFound, format!("no table {table}")))?;
        Ok(entries
            .into_iter()
            .map(|(entry, slot)| {
                let cells = p.direct(&entry).expect("a listed entry has its cells");
                let (packets, bytes) = cells.counter.unwrap_or((0, 0));
                let flags = cells.counter.map_or(0, |_| f::COUNTER) | cells.meter.map_or(0, |_| f::METER);
                dataplane::abi::TableEntryData {
                    entry,
                    flags: flags.into(),
                    slot: slot.into(),
                    packets: packets.into(),
                    bytes: bytes.into(),
                    meter: cells.meter.unwrap_or_default(),
                    rsvd: [0; 8],
                }
            })
            .collect())
    }
    fn set_table_data(&self, t: &dataplane::abi::TableEntryData) -> Result<(), p4rt::entries::Refusal> {
        use dataplane::abi::table_data_flags as f;
        let flags = t.flags.get();
        self.0
            .lock()
            .unwrap()
            .push(format!("data table {} flags {flags}", t.entry.table_id.get()));
        let mut d = self.1.lock().unwrap();
        let p = d
            .as_mut()
            .ok_or((Code::FailedPrecondition, "no pipeline".to_string()))?;
        let counter = (flags & f::COUNTER != 0).then(|| (t.packets.get(), t.bytes.get()));
        let meter = (flags & f::METER != 0).then_some(&t.meter);
        p.set_direct(&t.entry, counter, meter, 0).map_err(|err| {
            use dataplane::pipeline::EntryError as E;
            let code = match err {
                E::NotFound(_) | E::NoTable(_) | E::NoDirect { .. } => Code::NotFound,
                _ => Code::InvalidArgument,
            };
            (code, err.to_string())
        })
    }
    fn packet_out(&self, lif: Option<u16>, frame: &[u8]) -> Result<(), p4rt::entries::Refusal> {
        if lif.is_some_and(|l| l >= 4) {
            return Err((Code::NotFound, format!("no LIF {lif:?}")));
        }
        self.3.lock().unwrap().0.push((lif, frame.to_vec()));
        Ok(())
    }
    // Two frames a read, as a device with a small buffer would.
    fn packet_in(&self) -> Result<(Vec<p4rt::server::packets::Frame>, u64), p4rt::entries::Refusal> {
        let mut q = self.3.lock().unwrap();
        let n = q.1.len().min(2);
        let frames: Vec<_> = q.1.drain(..n).collect();
        Ok((frames, q.1.len() as u64))
    }
}

fn fairnic_config() -> ForwardingPipelineConfig {
    let p = p4::fairnic();
    ForwardingPipelineConfig {
        p4info: Some(p4rt::p4info::p4info(&p)),
        p4_device_config: p.to_image(),
        cookie: Some(forwarding_pipeline_config::Cookie { cookie: 42 }),
    }
}

fn set(
    action: set_forwarding_pipeline_config_request::Action,
    election: u64,
    config: Option<ForwardingPipelineConfig>,
) -> SetForwardingPipelineConfigRequest {
    SetForwardingPipelineConfigRequest {
        device_id: DEVICE,
        role: String::new(),
        election_id: Some(Uint128 { high: 0, low: election }),
        action: action as i32,
        config,
    }
}

#[tokio::test]
async fn the_pipeline_is_set_by_the_primary_only_and_checked_before_the_device_sees_it() {
    use set_forwarding_pipeline_config_request::Action;
    let loads = Recorder::default();
    let s = Server::start("127.0.0.1:0".parse().unwrap(), Service::new(DEVICE, loads.clone())).unwrap();
    let mut c = P4RuntimeClient::connect(format!("http://{}", s.addr())).await.unwrap();
    // Before any arbitration: nobody is primary.
    let e = c
        .set_forwarding_pipeline_config(set(Action::VerifyAndCommit, 3, Some(fairnic_config())))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let mut primary = Controller::connect(s.addr()).await;
    primary.arbitrate(DEVICE, Some(3)).await;
    assert_eq!(primary.answer().await, (Code::Ok, 3));
    // A backup's id is refused.
    let e = c
        .set_forwarding_pipeline_config(set(Action::Verify, 2, Some(fairnic_config())))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Nothing committed yet: Get has no config.
    let get = |t: get_forwarding_pipeline_config_request::ResponseType| GetForwardingPipelineConfigRequest {
        device_id: DEVICE,
        response_type: t as i32,
    };
    use get_forwarding_pipeline_config_request::ResponseType;
    assert!(c
        .get_forwarding_pipeline_config(get(ResponseType::All))
        .await
        .unwrap()
        .into_inner()
        .config
        .is_none());
    // Images and P4Infos that do not fit are refused with the reason.
    let mut bad = fairnic_config();
    bad.p4_device_config.truncate(10);
    let e = c
        .set_forwarding_pipeline_config(set(Action::VerifyAndCommit, 3, Some(bad)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("not a fairnic pipeline image"), "{}", e.message());
    let mut other = fairnic_config();
    other.p4info.as_mut().unwrap().tables.pop();
    let e = c
        .set_forwarding_pipeline_config(set(Action::Verify, 3, Some(other)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("lacks"), "{}", e.message());
    let e = c
        .set_forwarding_pipeline_config(set(Action::Commit, 3, None))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(loads.0.lock().unwrap().is_empty(), "nothing reached the device");
    // VERIFY touches nothing; VERIFY_AND_SAVE then COMMIT loads once.
    c.set_forwarding_pipeline_config(set(Action::Verify, 3, Some(fairnic_config())))
        .await
        .unwrap();
    c.set_forwarding_pipeline_config(set(Action::VerifyAndSave, 3, Some(fairnic_config())))
        .await
        .unwrap();
    assert!(loads.0.lock().unwrap().is_empty());
    let e = c
        .set_forwarding_pipeline_config(set(Action::Commit, 3, Some(fairnic_config())))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "COMMIT carries no config");
    c.set_forwarding_pipeline_config(set(Action::Commit, 3, None))
        .await
        .unwrap();
    assert_eq!(*loads.0.lock().unwrap(), ["fairnic"]);
    // Get answers by response type, the cookie always.
    let all = c
        .get_forwarding_pipeline_config(get(ResponseType::All))
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    assert_eq!(all, fairnic_config());
    let cookie = c
        .get_forwarding_pipeline_config(get(ResponseType::CookieOnly))
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    assert!(cookie.p4info.is_none() && cookie.p4_device_config.is_empty());
    assert_eq!(cookie.cookie.unwrap().cookie, 42);
    let e = c
        .get_forwarding_pipeline_config(GetForwardingPipelineConfigRequest {
            device_id: DEVICE + 1,
            response_type: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

/// The `p4.v1.Error`s of a failed Write: (canonical code, message) per
/// update, decoded from `grpc-status-details-bin` as clients do.
fn write_errors(s: &tonic::Status) -> Vec<(i32, String)> {
    let st: p4rt::proto::google::rpc::Status = prost::Message::decode(s.details()).expect("details decode");
    st.details
        .iter()
        .map(|a| {
            assert_eq!(a.type_url, "type.googleapis.com/p4.v1.Error");
            let e: Error = prost::Message::decode(a.value.as_slice()).unwrap();
            (e.canonical_code, e.message)
        })
        .collect()
}

/// The failed Write `s` has one `p4.v1.Error` per update with the codes
/// `want`, in order (the messages shown if not).
fn assert_write_codes(s: &tonic::Status, want: &[Code]) {
    let errs = write_errors(s);
    let codes: Vec<i32> = errs.iter().map(|(c, _)| *c).collect();
    let want: Vec<i32> = want.iter().map(|&c| c as i32).collect();
    assert_eq!(codes, want, "{errs:?}");
}

/// A Write to the test device from election id `election`, one update per
/// (type, entity), continuing on errors.
fn write_request(election: u64, updates: Vec<(update::Type, entity::Entity)>) -> WriteRequest {
    WriteRequest {
        device_id: DEVICE,
        role: String::new(),
        election_id: Some(Uint128 { high: 0, low: election }),
        updates: updates
            .into_iter()
            .map(|(t, e)| Update {
                r#type: t as i32,
                entity: Some(Entity { entity: Some(e) }),
            })
            .collect(),
        atomicity: 0,
    }
}

/// Everything a Read of `want` answers, over every response of its stream.
async fn read_all(
    c: &mut P4RuntimeClient<tonic::transport::Channel>,
    want: entity::Entity,
) -> Result<Vec<Entity>, tonic::Status> {
    let r = ReadRequest {
        device_id: DEVICE,
        role: String::new(),
        entities: vec![Entity { entity: Some(want) }],
    };
    let mut stream = c.read(r).await?.into_inner();
    let mut out = Vec::new();
    while let Some(r) = stream.message().await? {
        out.extend(r.entities);
    }
    Ok(out)
}

/// A server on a test device, a client, and a controller stream that
/// holds primacy with election id 3.
async fn primary_on_a_test_device() -> (Server, Recorder, P4RuntimeClient<tonic::transport::Channel>, Controller) {
    let rec = Recorder::default();
    let s = Server::start("127.0.0.1:0".parse().unwrap(), Service::new(DEVICE, rec.clone())).unwrap();
    let c = P4RuntimeClient::connect(format!("http://{}", s.addr())).await.unwrap();
    let mut primary = Controller::connect(s.addr()).await;
    primary.arbitrate(DEVICE, Some(3)).await;
    assert_eq!(primary.answer().await, (Code::Ok, 3));
    (s, rec, c, primary)
}

#[tokio::test]
async fn table_entries_are_written_per_update_and_read_back() {
    use set_forwarding_pipeline_config_request::Action;
    let (_s, rec, mut c, _primary) = primary_on_a_test_device().await;
    let program = p4::fairnic();
    let ids = p4rt::p4info::Ids::of(&program);
    let l2 = ids.tables[program.tables.iter().position(|t| t.name == "l2_fwd").unwrap()];
    let to_lif = ids.actions[program.actions.iter().position(|a| a.name == "to_lif").unwrap()];
    let entry = |mac_last: u8, lif: u8| TableEntry {
        table_id: l2,
        r#match: vec![FieldMatch {
            field_id: 1,
            field_match_type: Some(field_match::FieldMatchType::Exact(field_match::Exact {
                value: vec![2, 0, 0, 0, 0, mac_last],
            })),
        }],
        action: Some(TableAction {
            r#type: Some(table_action::Type::Action(p4rt::proto::p4::v1::Action {
                action_id: to_lif,
                params: vec![action::Param {
                    param_id: 1,
                    value: vec![lif],
                }],
            })),
        }),
        ..Default::default()
    };
    let write = |updates: Vec<(update::Type, TableEntry)>, election: u64| {
        let updates = updates.into_iter().map(|(t, e)| (t, entity::Entity::TableEntry(e)));
        write_request(election, updates.collect())
    };
    // Before a pipeline: FAILED_PRECONDITION.
    let e = c
        .write(write(vec![(update::Type::Insert, entry(1, 1))], 3))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    c.set_forwarding_pipeline_config(set(Action::VerifyAndCommit, 3, Some(fairnic_config())))
        .await
        .unwrap();
    // A backup may not write.
    let e = c
        .write(write(vec![(update::Type::Insert, entry(1, 1))], 2))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    c.write(write(
        vec![(update::Type::Insert, entry(1, 1)), (update::Type::Insert, entry(2, 2))],
        3,
    ))
    .await
    .unwrap();
    // A batch with a duplicate and a delete of nothing: UNKNOWN, one error
    // per update in order, the good one done.
    let e = c
        .write(write(
            vec![
                (update::Type::Insert, entry(1, 1)),
                (update::Type::Insert, entry(3, 3)),
                (update::Type::Delete, entry(9, 0)),
            ],
            3,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unknown);
    assert_write_codes(&e, &[Code::AlreadyExists, Code::Ok, Code::NotFound]);
    // Modify: delete then add at the device.
    c.write(write(vec![(update::Type::Modify, entry(2, 7))], 3))
        .await
        .unwrap();
    let read = |table_id: u32| ReadRequest {
        device_id: DEVICE,
        role: String::new(),
        entities: vec![Entity {
            entity: Some(entity::Entity::TableEntry(TableEntry {
                table_id,
                ..Default::default()
            })),
        }],
    };
    let every_table = entity::Entity::TableEntry(TableEntry::default());
    // What a Read answers for these entries, in order.
    let entities = |es: &[TableEntry]| -> Vec<Entity> {
        es.iter()
            .map(|e| Entity {
                entity: Some(entity::Entity::TableEntry(e.clone())),
            })
            .collect()
    };
    let got = read_all(&mut c, every_table.clone()).await.unwrap();
    assert_eq!(got, entities(&[entry(1, 1), entry(2, 7), entry(3, 3)]));
    let e = c.read(read(12345)).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Read with the key given: that entry only, as the device holds it.
    let mut one = entry(2, 0);
    one.action = None;
    let got = read_all(&mut c, entity::Entity::TableEntry(one)).await.unwrap();
    assert_eq!(
        got,
        [Entity {
            entity: Some(entity::Entity::TableEntry(entry(2, 7))),
        }]
    );
    // The device is the truth: the duplicate and the delete of nothing
    // reached it and it refused them.
    let ops: Vec<String> = rec.0.lock().unwrap().iter().skip(1).cloned().collect();
    assert_eq!(
        ops,
        [
            "add table 1 key [02, 00, 00, 00, 00, 01]",
            "add table 1 key [02, 00, 00, 00, 00, 02]",
            "add table 1 key [02, 00, 00, 00, 00, 01]",
            "add table 1 key [02, 00, 00, 00, 00, 03]",
            "del table 1 key [02, 00, 00, 00, 00, 09]",
            "del table 1 key [02, 00, 00, 00, 00, 02]",
            "add table 1 key [02, 00, 00, 00, 00, 02]",
        ]
    );

    // Entries changed behind the server's back (`nicctl`, a device that
    // reset): the server answers from what the device holds.
    let on_device = |insert: bool, e: &TableEntry| {
        let abi = p4rt::entries::to_abi(&program, &ids, e, insert).unwrap();
        let mut d = rec.1.lock().unwrap();
        d.as_mut().unwrap().apply_entry(&abi, insert).unwrap();
    };
    // Gone from the device: INSERT it again is no duplicate, MODIFY and
    // DELETE find nothing.
    on_device(false, &entry(1, 0));
    c.write(write(vec![(update::Type::Insert, entry(1, 4))], 3))
        .await
        .unwrap();
    on_device(false, &entry(3, 0));
    let e = c
        .write(write(
            vec![(update::Type::Modify, entry(3, 5)), (update::Type::Delete, entry(3, 0))],
            3,
        ))
        .await
        .unwrap_err();
    assert_write_codes(&e, &[Code::NotFound, Code::NotFound]);
    // Added at the device: a duplicate to INSERT; MODIFY replaces it (the
    // request's later updates see the modify), DELETE removes it.
    on_device(true, &entry(5, 1));
    let e = c
        .write(write(
            vec![
                (update::Type::Insert, entry(5, 2)),
                (update::Type::Modify, entry(5, 6)),
                (update::Type::Modify, entry(5, 7)),
            ],
            3,
        ))
        .await
        .unwrap_err();
    assert_write_codes(&e, &[Code::AlreadyExists, Code::Ok, Code::Ok]);
    let got = read_all(&mut c, every_table).await.unwrap();
    assert_eq!(got, entities(&[entry(1, 4), entry(2, 7), entry(5, 7)]));
    c.write(write(vec![(update::Type::Delete, entry(5, 0))], 3))
        .await
        .unwrap();
}

#[tokio::test]
async fn per_lif_meters_are_modified_in_their_units_and_read_back_as_applied() {
    use set_forwarding_pipeline_config_request::Action;
    let (_s, rec, mut c, _primary) = primary_on_a_test_device().await;
    c.set_forwarding_pipeline_config(set(Action::VerifyAndCommit, 3, Some(fairnic_config())))
        .await
        .unwrap();
    let program = p4::fairnic();
    let ids = p4rt::p4info::Ids::of(&program);
    let meter = |name: &str| ids.meters[program.meters.iter().position(|m| m.name == name).unwrap()];
    let (bytes, packets) = (meter("lif_bytes"), meter("lif_packets"));
    let entry = |id: u32, index: Option<i64>, config: Option<MeterConfig>| MeterEntry {
        meter_id: id,
        index: index.map(|index| Index { index }),
        config,
        counter_data: None,
    };
    let two_rate = MeterConfig {
        cir: 1003,
        cburst: 64,
        pir: 2001,
        pburst: 128,
        eburst: 0,
    };
    let write = |t: update::Type, e: MeterEntry| write_request(3, vec![(t, entity::Entity::MeterEntry(e))]);
    c.write(write(update::Type::Modify, entry(bytes, Some(1), Some(two_rate))))
        .await
        .unwrap();
    // Refused, each with its code: INSERT, an index past the array, a LIF
    // the device lacks, an unknown meter, eburst on a two-rate meter.
    for (t, e, code) in [
        (
            update::Type::Insert,
            entry(bytes, Some(1), Some(two_rate)),
            Code::InvalidArgument,
        ),
        (
            update::Type::Modify,
            entry(bytes, Some(1 << 20), Some(two_rate)),
            Code::OutOfRange,
        ),
        (
            update::Type::Modify,
            entry(bytes, Some(5), Some(two_rate)),
            Code::NotFound,
        ),
        (
            update::Type::Modify,
            entry(12345, Some(1), Some(two_rate)),
            Code::NotFound,
        ),
        (
            update::Type::Modify,
            entry(bytes, Some(1), Some(MeterConfig { eburst: 9, ..two_rate })),
            Code::InvalidArgument,
        ),
    ] {
        let err = c.write(write(t, e)).await.unwrap_err();
        assert_eq!(write_errors(&err)[0].0, code as i32, "{err:?}");
    }
    let reader = c.clone();
    let got = move |e: MeterEntry| {
        let mut c = reader.clone();
        async move {
            let answered = read_all(&mut c, entity::Entity::MeterEntry(e)).await.unwrap();
            answered
                .into_iter()
                .filter_map(|e| match e.entity {
                    Some(entity::Entity::MeterEntry(m)) => Some(m),
                    _ => None,
                })
                .collect::<Vec<_>>()
        }
    };
    // As applied: rates rounded by the device, the LIF's policy kept.
    let applied = MeterConfig {
        cir: 1000,
        pir: 2000,
        ..two_rate
    };
    assert_eq!(
        got(entry(bytes, Some(1), None)).await,
        [entry(bytes, Some(1), Some(applied))]
    );
    let dev = rec.2.lock().unwrap()[&(1, MeterResource::Bytes.raw())];
    assert_eq!(dev.policy, MeterPolicy::Deprioritize.raw(), "the policy is kept");
    // Every LIF's cell of one meter; every per-LIF meter.
    let all = got(entry(bytes, None, None)).await;
    assert_eq!(all.len(), 4);
    assert_eq!(all.iter().filter(|m| m.config.is_some()).count(), 1);
    assert_eq!(got(entry(0, None, None)).await.len(), 8);
    // A single-rate config on the packets meter; no config turns it off.
    let one_rate = MeterConfig {
        cir: 80,
        cburst: 10,
        pir: 0,
        pburst: 0,
        eburst: 20,
    };
    c.write(write(update::Type::Modify, entry(packets, Some(2), Some(one_rate))))
        .await
        .unwrap();
    assert_eq!(got(entry(packets, Some(2), None)).await[0].config, Some(one_rate));
    c.write(write(update::Type::Modify, entry(packets, Some(2), None)))
        .await
        .unwrap();
    assert_eq!(got(entry(packets, Some(2), None)).await[0].config, None);
}

#[tokio::test]
async fn counters_are_read_as_the_device_counted_in_their_unit() {
    use set_forwarding_pipeline_config_request::Action;
    let (_s, rec, mut c, _primary) = primary_on_a_test_device().await;
    c.set_forwarding_pipeline_config(set(Action::VerifyAndCommit, 3, Some(fairnic_config())))
        .await
        .unwrap();
    let program = p4::fairnic();
    let ids = p4rt::p4info::Ids::of(&program);
    let counter = |name: &str| {
        let i = program.counters.iter().position(|m| m.name == name).unwrap();
        (ids.counters[i], program.counters[i].size)
    };
    // One frame from LIF 3 through the device's pipeline.
    let mut frame = dataplane::packet::build_udp4(
        [2, 0, 0, 0, 0, 9],
        [2, 0, 0, 0, 0, 3],
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        (1, 2),
        b"counted",
        64,
    );
    let len = frame.len() as i64;
    rec.1.lock().unwrap().as_mut().unwrap().process(0, &mut frame, 3);
    let read = |id: u32, index: Option<i64>| {
        entity::Entity::CounterEntry(CounterEntry {
            counter_id: id,
            index: index.map(|index| Index { index }),
            data: None,
        })
    };
    let reader = c.clone();
    let got = move |want: entity::Entity| {
        let mut c = reader.clone();
        async move {
            Ok::<_, tonic::Status>(
                read_all(&mut c, want)
                    .await?
                    .into_iter()
                    .filter_map(|e| match e.entity {
                        Some(entity::Entity::CounterEntry(m)) => Some(m),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    let (lif_in, cells) = counter("lif_in");
    let one = got(read(lif_in, Some(3))).await.unwrap();
    assert_eq!(
        one,
        [CounterEntry {
            counter_id: lif_in,
            index: Some(Index { index: 3 }),
            data: Some(CounterData {
                byte_count: len,
                packet_count: 1,
            }),
        }]
    );
    // Every cell; a packets-only array shows no bytes; every array.
    let all = got(read(lif_in, None)).await.unwrap();
    assert_eq!(all.len() as u32, cells);
    assert_eq!(all.iter().filter(|e| e.data.unwrap().packet_count > 0).count(), 1);
    let (l3_kind, _) = counter("l3_kind");
    let kinds = got(read(l3_kind, None)).await.unwrap();
    assert!(kinds.iter().any(|e| e.data.unwrap().packet_count == 1), "{kinds:?}");
    assert!(kinds.iter().all(|e| e.data.unwrap().byte_count == 0), "{kinds:?}");
    // Every indexed array's cells (not the acl's direct counter).
    let total: u32 = (0..program.counters.len())
        .filter(|&i| program.direct_counter_table(i).is_none())
        .map(|i| program.counters[i].size)
        .sum();
    assert_eq!(total, 4096 * 2 + 4 * 3);
    assert_eq!(got(read(0, None)).await.unwrap().len() as u32, total);
    // An index past the array, an unknown array.
    assert_eq!(
        got(read(lif_in, Some(i64::from(cells)))).await.unwrap_err().code(),
        Code::OutOfRange
    );
    assert_eq!(got(read(12345, None)).await.unwrap_err().code(), Code::NotFound);
    // MODIFY sets a cell (here to 5 packets, 500 bytes), then every cell
    // is reset (index and data left out); INSERT, an index past the
    // array and negative counts are refused, per update.
    let modify = |kind: update::Type, e: CounterEntry| write_request(3, vec![(kind, entity::Entity::CounterEntry(e))]);
    let five = CounterEntry {
        data: Some(CounterData {
            byte_count: 500,
            packet_count: 5,
        }),
        ..one[0]
    };
    c.write(modify(update::Type::Modify, five)).await.unwrap();
    assert_eq!(got(read(lif_in, Some(3))).await.unwrap(), [five]);
    let reset = CounterEntry {
        counter_id: lif_in,
        index: None,
        data: None,
    };
    c.write(modify(update::Type::Modify, reset)).await.unwrap();
    let all = got(read(lif_in, None)).await.unwrap();
    assert!(
        all.iter().all(|e| e.data == Some(CounterData::default())),
        "every cell reset"
    );
    for (kind, e, code) in [
        (update::Type::Insert, five, Code::InvalidArgument),
        (
            update::Type::Modify,
            CounterEntry {
                index: Some(Index {
                    index: i64::from(cells),
                }),
                ..five
            },
            Code::OutOfRange,
        ),
        (
            update::Type::Modify,
            CounterEntry {
                data: Some(CounterData {
                    byte_count: -1,
                    packet_count: 0,
                }),
                ..five
            },
            Code::InvalidArgument,
        ),
        (
            update::Type::Modify,
            CounterEntry {
                counter_id: 12345,
                ..five
            },
            Code::NotFound,
        ),
    ] {
        let err = c.write(modify(kind, e)).await.unwrap_err();
        assert_eq!(write_errors(&err)[0].0, code as i32, "{e:?}");
    }
}

/// direct.p4 (p4/tests/programs): `flows` has a direct counter and meter,
/// `acl` a direct counter only.
fn direct_program() -> dataplane::pipeline::Program {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../p4/tests/programs/direct.p4");
    p4::compile_file(std::path::Path::new(path)).expect("direct.p4 compiles")
}

#[tokio::test]
async fn direct_counters_and_meters_are_written_and_read_with_their_entries() {
    use set_forwarding_pipeline_config_request::Action;
    let (_s, rec, mut c, _primary) = primary_on_a_test_device().await;
    let program = direct_program();
    let info = p4rt::p4info::p4info(&program);
    let ids = p4rt::p4info::Ids::of(&program);
    // P4Info: the direct arrays are direct resources of their tables.
    let (flows_t, _) = program.table("flows").unwrap();
    let (acl_t, _) = program.table("acl").unwrap();
    let flows = ids.tables[usize::from(flows_t)];
    let acl = ids.tables[usize::from(acl_t)];
    assert_eq!(info.direct_counters.len(), 2);
    assert_eq!(info.direct_meters.len(), 1);
    assert_eq!(info.counters.len(), 1, "only `colors` is indexed");
    assert_eq!(info.meters.len(), 1, "only `lif_rate` is indexed");
    assert_eq!(info.direct_meters[0].direct_table_id, flows);
    let table_info = |id: u32| {
        info.tables
            .iter()
            .find(|t| t.preamble.as_ref().unwrap().id == id)
            .unwrap()
    };
    assert_eq!(table_info(flows).direct_resource_ids.len(), 2);
    assert_eq!(table_info(acl).direct_resource_ids.len(), 1);
    let config = ForwardingPipelineConfig {
        p4info: Some(info.clone()),
        p4_device_config: program.to_image(),
        cookie: None,
    };
    c.set_forwarding_pipeline_config(set(Action::VerifyAndCommit, 3, Some(config)))
        .await
        .unwrap();

    let police = ids.actions[usize::from(program.action("police").unwrap().0)];
    let deny = ids.actions[usize::from(program.action("deny").unwrap().0)];
    let key = |table: u32, v: &[u8], ternary: bool| TableEntry {
        table_id: table,
        r#match: vec![FieldMatch {
            field_id: 1,
            field_match_type: Some(if ternary {
                field_match::FieldMatchType::Ternary(field_match::Ternary {
                    value: v.to_vec(),
                    mask: vec![0xff; 4],
                })
            } else {
                field_match::FieldMatchType::Exact(field_match::Exact { value: v.to_vec() })
            }),
        }],
        priority: i32::from(ternary),
        ..Default::default()
    };
    let with_action = |mut e: TableEntry, action: u32, params: Vec<Vec<u8>>| {
        e.action = Some(TableAction {
            r#type: Some(table_action::Type::Action(p4rt::proto::p4::v1::Action {
                action_id: action,
                params: params
                    .into_iter()
                    .zip(1..)
                    .map(|(value, param_id)| action::Param { param_id, value })
                    .collect(),
            })),
        });
        e
    };
    let to2 = key(flows, &[10, 0, 0, 2], false);
    let meter = MeterConfig {
        cir: 1000,
        cburst: 100,
        pir: 0,
        pburst: 0,
        eburst: 50,
    };
    // INSERT with the entry's counter and meter given.
    let mut insert = with_action(to2.clone(), police, vec![vec![1]]);
    insert.counter_data = Some(CounterData {
        packet_count: 5,
        byte_count: 500,
    });
    insert.meter_config = Some(meter);
    let w = |kind: update::Type, e: entity::Entity| write_request(3, vec![(kind, e)]);
    c.write(w(update::Type::Insert, entity::Entity::TableEntry(insert)))
        .await
        .unwrap();
    // A meter for a table without one: refused before the entry is written.
    let mut bad = with_action(key(acl, &[10, 0, 0, 9], true), deny, vec![]);
    bad.meter_config = Some(meter);
    let s = c
        .write(w(update::Type::Insert, entity::Entity::TableEntry(bad)))
        .await
        .unwrap_err();
    assert_write_codes(&s, &[Code::InvalidArgument]);
    let every = |table: u32| TableEntry {
        table_id: table,
        ..Default::default()
    };
    let acl_entries = read_all(&mut c, entity::Entity::TableEntry(every(acl))).await.unwrap();
    assert!(acl_entries.is_empty(), "{acl_entries:?}");

    // One frame to 10.0.0.2 through the device: counted on the entry.
    let mut frame = dataplane::packet::build_udp4(
        [2, 0, 0, 0, 0, 9],
        [2, 0, 0, 0, 0, 3],
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        (1, 2),
        b"direct",
        64,
    );
    let len = frame.len() as i64;
    rec.1.lock().unwrap().as_mut().unwrap().process(1, &mut frame, 3);

    let counters = |c: P4RuntimeClient<tonic::transport::Channel>, table: u32, e: Option<TableEntry>| async move {
        let mut c = c;
        let want = DirectCounterEntry {
            table_entry: Some(e.unwrap_or(TableEntry {
                table_id: table,
                ..Default::default()
            })),
            data: None,
        };
        read_all(&mut c, entity::Entity::DirectCounterEntry(want))
            .await
            .map(|v| {
                v.into_iter()
                    .filter_map(|e| match e.entity {
                        Some(entity::Entity::DirectCounterEntry(d)) => Some(d),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
    };
    let got = counters(c.clone(), flows, None).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].data,
        Some(CounterData {
            packet_count: 6,
            byte_count: 500 + len,
        })
    );
    assert_eq!(got[0].table_entry.as_ref().unwrap().r#match, to2.r#match);
    // Every table with a direct counter (table_id 0): flows' one entry.
    assert_eq!(counters(c.clone(), 0, None).await.unwrap().len(), 1);
    // The meter, as applied; every direct meter with table_id 0.
    let meters = read_all(
        &mut c,
        entity::Entity::DirectMeterEntry(DirectMeterEntry {
            table_entry: Some(TableEntry::default()),
            config: None,
            counter_data: None,
        }),
    )
    .await
    .unwrap();
    let configs: Vec<_> = meters
        .iter()
        .filter_map(|e| match &e.entity {
            Some(entity::Entity::DirectMeterEntry(d)) => Some(d.config),
            _ => None,
        })
        .collect();
    assert_eq!(configs, [Some(meter)]);
    // A TableEntry read asking for counter_data and meter_config gets them.
    let mut want = every(flows);
    want.counter_data = Some(CounterData::default());
    want.meter_config = Some(MeterConfig::default());
    let read = read_all(&mut c, entity::Entity::TableEntry(want.clone()))
        .await
        .unwrap();
    let Some(entity::Entity::TableEntry(te)) = &read[0].entity else {
        panic!("{read:?}")
    };
    assert_eq!(
        (te.counter_data.unwrap().packet_count, te.meter_config),
        (6, Some(meter))
    );

    // MODIFY of the table entry (another LIF) keeps its counter and meter.
    c.write(w(
        update::Type::Modify,
        entity::Entity::TableEntry(with_action(to2.clone(), police, vec![vec![2]])),
    ))
    .await
    .unwrap();
    let read = read_all(&mut c, entity::Entity::TableEntry(want.clone()))
        .await
        .unwrap();
    let Some(entity::Entity::TableEntry(te)) = &read[0].entity else {
        panic!("{read:?}")
    };
    assert_eq!(
        (te.counter_data.unwrap().packet_count, te.meter_config),
        (6, Some(meter))
    );
    let Some(table_action::Type::Action(a)) = te.action.as_ref().unwrap().r#type.as_ref() else {
        panic!("{te:?}")
    };
    assert_eq!(a.params[0].value, vec![2]);

    // DirectCounterEntry MODIFY without data resets it; DirectMeterEntry
    // MODIFY without a config turns the meter off.
    let dce = DirectCounterEntry {
        table_entry: Some(to2.clone()),
        data: None,
    };
    c.write(w(update::Type::Modify, entity::Entity::DirectCounterEntry(dce.clone())))
        .await
        .unwrap();
    let got = counters(c.clone(), flows, Some(to2.clone())).await.unwrap();
    assert_eq!(got[0].data, Some(CounterData::default()));
    let dme = DirectMeterEntry {
        table_entry: Some(to2.clone()),
        config: None,
        counter_data: None,
    };
    c.write(w(update::Type::Modify, entity::Entity::DirectMeterEntry(dme.clone())))
        .await
        .unwrap();
    let read = read_all(&mut c, entity::Entity::TableEntry(want.clone()))
        .await
        .unwrap();
    let Some(entity::Entity::TableEntry(te)) = &read[0].entity else {
        panic!("{read:?}")
    };
    assert_eq!(te.meter_config, None, "off");

    // Refused, per update: INSERT and DELETE of a direct entry, a meter of
    // a table without one, an entry that is not there; a direct array's
    // id through CounterEntry.
    let s = c
        .write(write_request(
            3,
            vec![
                (update::Type::Insert, entity::Entity::DirectCounterEntry(dce.clone())),
                (update::Type::Delete, entity::Entity::DirectMeterEntry(dme)),
                (
                    update::Type::Modify,
                    entity::Entity::DirectMeterEntry(DirectMeterEntry {
                        table_entry: Some(key(acl, &[10, 0, 0, 9], true)),
                        config: Some(meter),
                        counter_data: None,
                    }),
                ),
                (
                    update::Type::Modify,
                    entity::Entity::DirectCounterEntry(DirectCounterEntry {
                        table_entry: Some(key(flows, &[10, 0, 0, 7], false)),
                        data: None,
                    }),
                ),
            ],
        ))
        .await
        .unwrap_err();
    assert_write_codes(
        &s,
        &[
            Code::InvalidArgument,
            Code::InvalidArgument,
            Code::InvalidArgument,
            Code::NotFound,
        ],
    );
    let flow_hits = ids.counters[program.counters.iter().position(|x| x.name == "flow_hits").unwrap()];
    let r = read_all(
        &mut c,
        entity::Entity::CounterEntry(CounterEntry {
            counter_id: flow_hits,
            index: None,
            data: None,
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(r.code(), Code::InvalidArgument);
    // RECONCILE_AND_COMMIT of the same program keeps the entry's cells.
    let seven = DirectCounterEntry {
        table_entry: Some(to2.clone()),
        data: Some(CounterData {
            packet_count: 7,
            byte_count: 700,
        }),
    };
    c.write(w(
        update::Type::Modify,
        entity::Entity::DirectCounterEntry(seven.clone()),
    ))
    .await
    .unwrap();
    let again = ForwardingPipelineConfig {
        p4info: Some(info.clone()),
        p4_device_config: program.to_image(),
        cookie: None,
    };
    c.set_forwarding_pipeline_config(set(Action::ReconcileAndCommit, 3, Some(again)))
        .await
        .unwrap();
    let got = counters(c.clone(), flows, Some(to2.clone())).await.unwrap();
    assert_eq!(got[0].data, seven.data, "carried across the reload");
    // An indexed meter of the program (lif_rate, 4 cells): one cell set
    // and read back; every indexed meter with meter_id 0 (the direct one
    // is not among them); the direct meter's id is refused here.
    let meter_id = |name: &str| ids.meters[program.meters.iter().position(|m| m.name == name).unwrap()];
    let rate = MeterConfig {
        cir: 10,
        cburst: 2,
        pir: 0,
        pburst: 0,
        eburst: 1,
    };
    let cell = MeterEntry {
        meter_id: meter_id("lif_rate"),
        index: Some(Index { index: 2 }),
        config: Some(rate),
        counter_data: None,
    };
    c.write(w(update::Type::Modify, entity::Entity::MeterEntry(cell)))
        .await
        .unwrap();
    let read_meter = |id: u32, index: Option<i64>| {
        entity::Entity::MeterEntry(MeterEntry {
            meter_id: id,
            index: index.map(|index| Index { index }),
            config: None,
            counter_data: None,
        })
    };
    let got = read_all(&mut c, read_meter(meter_id("lif_rate"), Some(2)))
        .await
        .unwrap();
    assert_eq!(got[0].entity, Some(entity::Entity::MeterEntry(cell)));
    // RECONCILE_AND_COMMIT carries the configured cell into the reloaded
    // program's array.
    c.set_forwarding_pipeline_config(set(
        Action::ReconcileAndCommit,
        3,
        Some(ForwardingPipelineConfig {
            p4info: Some(info.clone()),
            p4_device_config: program.to_image(),
            cookie: None,
        }),
    ))
    .await
    .unwrap();
    let got = read_all(&mut c, read_meter(meter_id("lif_rate"), Some(2)))
        .await
        .unwrap();
    assert_eq!(got[0].entity, Some(entity::Entity::MeterEntry(cell)), "carried");
    let every = read_all(&mut c, read_meter(0, None)).await.unwrap();
    assert_eq!(every.len(), 4);
    let set: Vec<_> = every
        .iter()
        .filter_map(|e| match &e.entity {
            Some(entity::Entity::MeterEntry(m)) if m.config.is_some() => m.index,
            _ => None,
        })
        .collect();
    assert_eq!(set, [Index { index: 2 }]);
    let direct_id = read_all(&mut c, read_meter(meter_id("flow_rate"), None)).await;
    assert_eq!(direct_id.unwrap_err().code(), Code::InvalidArgument);
    let s = c
        .write(write_request(
            3,
            vec![
                (
                    update::Type::Modify,
                    entity::Entity::MeterEntry(MeterEntry {
                        index: Some(Index { index: 4 }),
                        ..cell
                    }),
                ),
                (
                    update::Type::Modify,
                    entity::Entity::MeterEntry(MeterEntry { index: None, ..cell }),
                ),
            ],
        ))
        .await
        .unwrap_err();
    assert_write_codes(&s, &[Code::OutOfRange, Code::InvalidArgument]);
    // CounterEntry of every array: `colors` only (4 cells).
    let all = read_all(
        &mut c,
        entity::Entity::CounterEntry(CounterEntry {
            counter_id: 0,
            index: None,
            data: None,
        }),
    )
    .await
    .unwrap();
    assert_eq!(all.len(), 4);
}
