//! The P4Runtime gRPC server (tonic), on a runtime thread of its own.
//!
//! What it serves so far: `Capabilities` (API version 1.4.1) and the
//! `StreamChannel`'s client arbitration ([`arbitration`]): primary and
//! backups by election id per role, every update answered, every stream of
//! a role told when its primary changes, a taken election id or an unknown
//! device refused by ending that stream with the status. A stream ends
//! when its client half-closes (p4runtime-shell's teardown waits for it).
//! The pipeline, entity and packet RPCs answer `UNIMPLEMENTED` with what
//! is missing: issue 19 is in progress.

pub mod arbitration;

use crate::proto::p4::v1::p4_runtime_server::{P4Runtime, P4RuntimeServer};
use crate::proto::p4::v1::stream_message_request::Update as In;
use crate::proto::p4::v1::stream_message_response::Update as Out;
use crate::proto::p4::v1::*;
use arbitration::{Arbiter, Notices};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// The P4Runtime API version this server speaks.
pub const API_VERSION: &str = "1.4.1";

/// Messages a stream may have queued towards its client before the server
/// drops further notices to it (a client that does not read).
pub const STREAM_QUEUE: usize = 64;

type Outbox = mpsc::Sender<Result<StreamMessageResponse, Status>>;

/// The service's state.
#[derive(Debug)]
pub struct Service {
    arbiter: Arc<Mutex<Arbiter<Outbox>>>,
    next_stream: AtomicU64,
}

impl Service {
    /// A service for device `device_id`.
    pub fn new(device_id: u64) -> Service {
        Service {
            arbiter: Arc::new(Mutex::new(Arbiter::new(device_id))),
            next_stream: AtomicU64::new(1),
        }
    }
}

/// Hand each notice to its stream without waiting: a stream whose client
/// does not read loses notices past [`STREAM_QUEUE`], never holds up the
/// others.
fn send_all(notices: Notices<Outbox>) {
    for (to, m) in notices {
        let _ = to.try_send(Ok(StreamMessageResponse {
            update: Some(Out::Arbitration(m)),
        }));
    }
}

fn stream_error(code: tonic::Code, message: String, details: Option<stream_error::Details>) -> StreamMessageResponse {
    StreamMessageResponse {
        update: Some(Out::Error(StreamError {
            canonical_code: code as i32,
            message,
            space: String::new(),
            code: 0,
            details,
        })),
    }
}

type BoxStream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl P4Runtime for Service {
    async fn write(&self, _: Request<WriteRequest>) -> Result<Response<WriteResponse>, Status> {
        Err(Status::unimplemented(
            "Write is not implemented yet by this fairnic server",
        ))
    }

    type ReadStream = BoxStream<ReadResponse>;

    async fn read(&self, _: Request<ReadRequest>) -> Result<Response<Self::ReadStream>, Status> {
        Err(Status::unimplemented(
            "Read is not implemented yet by this fairnic server",
        ))
    }

    async fn set_forwarding_pipeline_config(
        &self,
        _: Request<SetForwardingPipelineConfigRequest>,
    ) -> Result<Response<SetForwardingPipelineConfigResponse>, Status> {
        Err(Status::unimplemented(
            "SetForwardingPipelineConfig is not implemented yet by this fairnic server",
        ))
    }

    async fn get_forwarding_pipeline_config(
        &self,
        _: Request<GetForwardingPipelineConfigRequest>,
    ) -> Result<Response<GetForwardingPipelineConfigResponse>, Status> {
        Err(Status::unimplemented(
            "GetForwardingPipelineConfig is not implemented yet by this fairnic server",
        ))
    }

    type StreamChannelStream = ReceiverStream<Result<StreamMessageResponse, Status>>;

    async fn stream_channel(
        &self,
        request: Request<tonic::Streaming<StreamMessageRequest>>,
    ) -> Result<Response<Self::StreamChannelStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let stream = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let arbiter = self.arbiter.clone();
        tokio::spawn(async move {
            loop {
                let msg = match inbound.message().await {
                    Ok(Some(m)) => m,
                    // The client half-closed, or the transport failed.
                    Ok(None) | Err(_) => break,
                };
                match msg.update {
                    Some(In::Arbitration(u)) => {
                        let r = arbiter
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .update(stream, &u, tx.clone());
                        match r {
                            Ok(notices) => send_all(notices),
                            Err(refused) => {
                                let _ = tx.send(Err(Status::new(refused.code, refused.message))).await;
                                break;
                            }
                        }
                    }
                    Some(In::Packet(p)) => {
                        let joined = arbiter.lock().unwrap_or_else(|p| p.into_inner()).is_member(stream);
                        let (code, why) = if joined {
                            (
                                tonic::Code::Unimplemented,
                                "PacketOut is not implemented yet by this fairnic server",
                            )
                        } else {
                            (
                                tonic::Code::PermissionDenied,
                                "send an arbitration update before any packet",
                            )
                        };
                        let details = Some(stream_error::Details::PacketOut(PacketOutError { packet_out: Some(p) }));
                        let _ = tx.try_send(Ok(stream_error(code, why.into(), details)));
                    }
                    Some(In::Other(_)) | None => {
                        let _ = tx.try_send(Ok(stream_error(
                            tonic::Code::InvalidArgument,
                            "a stream message must carry an arbitration update or a packet".into(),
                            None,
                        )));
                    }
                }
            }
            let notices = arbiter.lock().unwrap_or_else(|p| p.into_inner()).leave(stream);
            send_all(notices);
            // `tx` and the arbiter's copy are gone: the response stream ends.
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn capabilities(&self, _: Request<CapabilitiesRequest>) -> Result<Response<CapabilitiesResponse>, Status> {
        Ok(Response::new(CapabilitiesResponse {
            p4runtime_api_version: API_VERSION.into(),
        }))
    }
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serve `service` on `addr` (port 0: any free port) from a thread of
    /// its own (a single-threaded tokio runtime).
    pub fn start(addr: SocketAddr, service: Service) -> std::io::Result<Server> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("nicdrv-p4runtime".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                    let serve = tonic::transport::Server::builder()
                        .serve_with_incoming(P4RuntimeServer::new(service), incoming);
                    // Not a graceful shutdown: a controller's stream stays
                    // open for as long as it likes. Leaving block_on drops
                    // the runtime, which ends every connection.
                    tokio::select! {
                        r = serve => if let Err(e) = r { eprintln!("p4runtime server: {e}") },
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
