//! A controller's first steps against a P4Runtime server, for fairnic's
//! own tools (the bench, the fuzz target): connect, win primacy with an
//! election id on a StreamChannel kept open, and commit a program.

use crate::proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use crate::proto::p4::v1::stream_message_request::Update as In;
use crate::proto::p4::v1::*;
use dataplane::pipeline::Program;

/// A connected controller: its client, and the sender of its StreamChannel
/// (primacy lasts while it is kept); the stream's answers after the first
/// are read by a task on the caller's runtime.
#[derive(Debug)]
pub struct Controller {
    pub client: P4RuntimeClient<tonic::transport::Channel>,
    pub stream: tokio::sync::mpsc::Sender<StreamMessageRequest>,
}

/// Connect to `addr` (`http://host:port`), arbitrate for `device_id` with
/// `election_id` and wait for the answer; `Err` if any step fails or the
/// server does not make this client primary.
pub async fn primary(addr: String, device_id: u64, election_id: u64) -> Result<Controller, String> {
    let mut client = P4RuntimeClient::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?
        .max_encoding_message_size(64 << 20);
    let (stream, rx) = tokio::sync::mpsc::channel(16);
    let mut from = client
        .stream_channel(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|e| format!("StreamChannel: {e}"))?
        .into_inner();
    let update = MasterArbitrationUpdate {
        device_id,
        role: None,
        election_id: Some(Uint128 {
            high: 0,
            low: election_id,
        }),
        status: None,
    };
    stream
        .send(StreamMessageRequest {
            update: Some(In::Arbitration(update)),
        })
        .await
        .map_err(|_| "the stream closed".to_string())?;
    let answer = from.message().await.map_err(|e| format!("arbitration: {e}"))?;
    match answer.and_then(|m| m.update) {
        Some(stream_message_response::Update::Arbitration(a))
            if a.status.as_ref().is_some_and(|s| s.code == tonic::Code::Ok as i32) => {}
        other => return Err(format!("not made primary: {other:?}")),
    }
    tokio::spawn(async move { while let Ok(Some(_)) = from.message().await {} });
    Ok(Controller { client, stream })
}

impl Controller {
    /// VERIFY_AND_COMMIT `program` (its P4Info and image) on `device_id`.
    pub async fn commit(&mut self, device_id: u64, election_id: u64, program: &Program) -> Result<(), tonic::Status> {
        let config = ForwardingPipelineConfig {
            p4info: Some(crate::p4info::p4info(program)),
            p4_device_config: program.to_image(),
            cookie: None,
        };
        self.client
            .set_forwarding_pipeline_config(SetForwardingPipelineConfigRequest {
                device_id,
                role: String::new(),
                election_id: Some(Uint128 {
                    high: 0,
                    low: election_id,
                }),
                action: set_forwarding_pipeline_config_request::Action::VerifyAndCommit as i32,
                config: Some(config),
            })
            .await
            .map(|_| ())
    }
}
