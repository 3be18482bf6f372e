//! A P4Runtime controller is a client on the network: whatever it sends
//! in a Write, a Read or on its StreamChannel is answered with a status,
//! never a panic, a hang or a dropped server. Each input is decoded (by
//! prost, as tonic's server decodes it) as a `WriteRequest`, a
//! `ReadRequest` and a `StreamMessageRequest`, and each that decodes is
//! sent to a real server (fairnic's P4Runtime service over TCP, the same
//! as nicdrv serves) driving an in-memory device: fairnic.p4 on the
//! reference pipeline, with per-LIF meters and a CPU port. The request's
//! device and election ids are set to the server's, so that a Write
//! reaches the entity checks rather than the arbitration's refusal.
#![no_main]

use dataplane::abi::{MeterConfig, MeterResource, TableEntry};
use dataplane::pipeline::{Pipeline, Program};
use libfuzzer_sys::fuzz_target;
use p4rt::proto::p4::v1::stream_message_request::Update as In;
use p4rt::proto::p4::v1::*;
use p4rt::server::{Server, Service};
use p4rt::tonic::{self, Code};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const DEVICE: u64 = 1;
const ELECTION: u64 = 7;

/// The device behind the server: the reference pipeline, LIFs 0..4.
#[derive(Default, Clone)]
struct Device {
    pipeline: Arc<Mutex<Option<Pipeline>>>,
    meters: Arc<Mutex<HashMap<(u16, u8), MeterConfig>>>,
}

type Refusal = p4rt::entries::Refusal;

impl p4rt::server::Target for Device {
    fn load_pipeline(&self, p: &Program, _: &[u8]) -> Result<(), String> {
        *self.pipeline.lock().unwrap() = Some(Pipeline::new(p.clone()).map_err(|e| e.to_string())?);
        Ok(())
    }
    fn table_entry(&self, insert: bool, e: &TableEntry) -> Result<(), Refusal> {
        let mut d = self.pipeline.lock().unwrap();
        let p = d.as_mut().ok_or((Code::FailedPrecondition, "no pipeline".to_string()))?;
        p.apply_entry(e, insert)
            .map(|_| ())
            .map_err(|err| (Code::InvalidArgument, err.to_string()))
    }
    fn table_entries(&self, table: u32) -> Result<Vec<TableEntry>, Refusal> {
        let d = self.pipeline.lock().unwrap();
        let p = d.as_ref().ok_or((Code::FailedPrecondition, "no pipeline".to_string()))?;
        u16::try_from(table)
            .ok()
            .and_then(|t| p.abi_entries(t, 0, usize::MAX))
            .map(|(entries, _)| entries)
            .ok_or((Code::NotFound, format!("no table {table}")))
    }
    fn meter_set(&self, lif: u16, cfg: &MeterConfig) -> Result<MeterConfig, Refusal> {
        if lif >= 4 {
            return Err((Code::NotFound, format!("no LIF {lif}")));
        }
        self.meters.lock().unwrap().insert((lif, cfg.resource), *cfg);
        Ok(*cfg)
    }
    fn meter_get(&self, lif: u16, resource: MeterResource) -> Result<MeterConfig, Refusal> {
        if lif >= 4 {
            return Err((Code::NotFound, format!("no LIF {lif}")));
        }
        Ok(self
            .meters
            .lock()
            .unwrap()
            .get(&(lif, resource.raw()))
            .copied()
            .unwrap_or(MeterConfig {
                resource: resource.raw(),
                ..Default::default()
            }))
    }
    fn lifs(&self) -> Result<Vec<u16>, Refusal> {
        Ok(vec![0, 1, 2, 3])
    }
    fn counters(&self, counter: u32) -> Result<Vec<(u64, u64)>, Refusal> {
        let d = self.pipeline.lock().unwrap();
        let p = d.as_ref().ok_or((Code::FailedPrecondition, "no pipeline".to_string()))?;
        let c = u16::try_from(counter).map_err(|_| (Code::NotFound, "no counter".to_string()))?;
        let size = p
            .program()
            .counters
            .get(usize::from(c))
            .ok_or((Code::NotFound, "no counter".to_string()))?
            .size;
        Ok((0..size).map(|i| p.counter(c, i).unwrap_or((0, 0))).collect())
    }
    fn packet_out(&self, lif: Option<u16>, _: &[u8]) -> Result<(), Refusal> {
        match lif {
            Some(l) if l >= 4 => Err((Code::NotFound, format!("no LIF {l}"))),
            _ => Ok(()),
        }
    }
    fn packet_in(&self) -> Result<(Vec<p4rt::server::packets::Frame>, u64), Refusal> {
        Ok((Vec::new(), 0))
    }
}

struct World {
    rt: tokio::runtime::Runtime,
    _server: Server,
    client: p4rt::proto::p4::v1::p4_runtime_client::P4RuntimeClient<tonic::transport::Channel>,
    stream: tokio::sync::mpsc::Sender<StreamMessageRequest>,
}

fn world() -> &'static Mutex<World> {
    static W: OnceLock<Mutex<World>> = OnceLock::new();
    W.get_or_init(|| {
        let server = Server::start("127.0.0.1:0".parse().unwrap(), Service::new(DEVICE, Device::default())).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let addr = format!("http://{}", server.addr());
        let p4rt::client::Controller { client, stream } = rt.block_on(async {
            let mut c = p4rt::client::primary(addr, DEVICE, ELECTION).await.unwrap();
            c.commit(DEVICE, ELECTION, &p4::fairnic()).await.unwrap();
            c
        });
        Mutex::new(World {
            rt,
            _server: server,
            client,
            stream,
        })
    })
}

/// Within 10 s, or a hang: a finding.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("the server did not answer the {what} within 10 s"))
}

fuzz_target!(|data: &[u8]| {
    let mut w = world().lock().unwrap();
    let World { rt, client, stream, .. } = &mut *w;
    rt.block_on(async {
        if let Ok(mut r) = WriteRequest::decode(data) {
            r.device_id = DEVICE;
            r.role.clear();
            r.election_id = Some(Uint128 { high: 0, low: ELECTION });
            // Any status will do; a transport error means the server died.
            if let Err(s) = bounded("Write", client.write(r)).await {
                assert_ne!(s.code(), Code::Unavailable, "the server went away: {s}");
            }
        }
        if let Ok(mut r) = ReadRequest::decode(data) {
            r.device_id = DEVICE;
            if let Ok(resp) = bounded("Read", client.read(r)).await {
                let mut s = resp.into_inner();
                while let Ok(Some(_)) = bounded("Read stream", s.message()).await {}
            }
        }
        if let Ok(m) = StreamMessageRequest::decode(data) {
            // Packets only: an arbitration update would give primacy away.
            if matches!(m.update, Some(In::Packet(_))) {
                bounded("StreamChannel", stream.send(m)).await.expect("the stream is open");
            }
        }
    });
});
