//! The StreamChannel's packets: a primary controller's PacketOut goes to
//! the device's CPU port (to a LIF, or the uplink), and frames the program
//! sent to the CPU port go to the primary as PacketIn.
//!
//! PacketIn never loses a frame outside the device's counters: the poller
//! reads the device only while the default role has a primary, and a frame
//! read but not yet taken by a stream (the primary left, or does not read)
//! waits here for the next primary. Meanwhile the device's queue fills and
//! counts what it cannot hold (`DropCpuQueueFull`).

use super::{Arbiter, Outbox, Target};
use crate::entries::Refusal;
use crate::p4info::{canonical_bytes, cpu_port};
use crate::proto::p4::v1::stream_message_response::Update as Out;
use crate::proto::p4::v1::{PacketIn, PacketMetadata, PacketOut, StreamMessageResponse};
use dataplane::abi::{frame_len_ok, LIF_NONE};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::Code;

/// A frame at the CPU port: the LIF that sent it (0xffff: the wire), and
/// its bytes.
pub type Frame = (u16, Vec<u8>);

/// How often the device's CPU port is read while a primary is connected.
pub const POLL: Duration = Duration::from_millis(2);

/// How long a PacketIn may wait for room in the primary's stream before
/// the poller looks for the primary again (the frame stays pending).
const SEND_WAIT: Duration = Duration::from_secs(1);

/// Where a PacketOut goes: a LIF, or the uplink (`None`), and its frame.
pub fn packet_out_target(p: &PacketOut) -> Result<(Option<u16>, &[u8]), Refusal> {
    let (header, field) = cpu_port::PACKET_OUT;
    let mut egress = None;
    for m in &p.metadata {
        if m.metadata_id != cpu_port::FIELD_ID {
            return Err((
                Code::InvalidArgument,
                format!(
                    "{header} has no metadata id {}: its one field is {field} (id {})",
                    m.metadata_id,
                    cpu_port::FIELD_ID
                ),
            ));
        }
        if egress.is_some() {
            return Err((Code::InvalidArgument, format!("{header}.{field} is given twice")));
        }
        let first = m.value.iter().position(|&b| b != 0).unwrap_or(m.value.len());
        let digits = &m.value[first..];
        if m.value.is_empty() || digits.len() > 2 {
            return Err((
                Code::InvalidArgument,
                format!(
                    "{header}.{field} is {} bits wide: {:02x?} is not a value of it",
                    cpu_port::FIELD_BITS,
                    m.value
                ),
            ));
        }
        egress = Some(digits.iter().fold(0u16, |v, &b| (v << 8) | u16::from(b)));
    }
    let Some(lif) = egress else {
        return Err((
            Code::InvalidArgument,
            format!("a PacketOut needs {header}.{field} (id 1): the LIF to deliver to, or 0xffff for the uplink"),
        ));
    };
    let len = p.payload.len();
    if !frame_len_ok(len) {
        return Err((
            Code::InvalidArgument,
            format!("a PacketOut's payload is an Ethernet frame of 14 to 9216 bytes, not {len}"),
        ));
    }
    Ok(((lif != LIF_NONE).then_some(lif), &p.payload))
}

/// The PacketIn message for a frame the LIF `ingress_lif` sent to the CPU
/// port.
pub fn packet_in_message(ingress_lif: u16, frame: Vec<u8>) -> StreamMessageResponse {
    StreamMessageResponse {
        update: Some(Out::Packet(PacketIn {
            payload: frame,
            metadata: vec![PacketMetadata {
                metadata_id: cpu_port::FIELD_ID,
                value: canonical_bytes(u128::from(ingress_lif)),
            }],
        })),
    }
}

/// Read the CPU port and hand its frames to the default role's primary,
/// for as long as the server runs.
pub async fn poll_packet_in(arbiter: Arc<Mutex<Arbiter<Outbox>>>, target: Arc<dyn Target>) {
    let mut pending: VecDeque<Frame> = VecDeque::new();
    let mut more = false;
    loop {
        if !more {
            tokio::time::sleep(POLL).await;
        }
        more = false;
        let primary = arbiter.lock().unwrap_or_else(|p| p.into_inner()).primary_stream("");
        let Some(to) = primary else { continue };
        if pending.is_empty() {
            let t = target.clone();
            match tokio::task::spawn_blocking(move || t.packet_in()).await {
                Ok(Ok((frames, left))) => {
                    pending.extend(frames);
                    more = left > 0;
                }
                Ok(Err(_)) => {
                    // A device without a CPU port (older than ABI 1.5), or
                    // one gone: ask again in a second, not every 2 ms.
                    tokio::time::sleep(POLL * 500).await;
                    continue;
                }
                Err(_) => continue,
            }
        }
        while let Some((lif, frame)) = pending.front() {
            let msg = packet_in_message(*lif, frame.clone());
            match tokio::time::timeout(SEND_WAIT, to.send(Ok(msg))).await {
                Ok(Ok(())) => {
                    pending.pop_front();
                }
                // The stream ended, or its client does not read: keep the
                // frame for the next look at who is primary.
                Ok(Err(_)) | Err(_) => {
                    more = false;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(metadata: Vec<(u32, Vec<u8>)>, len: usize) -> PacketOut {
        PacketOut {
            payload: vec![0xab; len],
            metadata: metadata
                .into_iter()
                .map(|(metadata_id, value)| PacketMetadata { metadata_id, value })
                .collect(),
        }
    }

    #[test]
    fn packet_out_names_a_lif_or_the_uplink_and_carries_a_frame() {
        let t = |m, len| packet_out_target(&out(m, len)).map(|(l, f)| (l, f.len()));
        assert_eq!(t(vec![(1, vec![3])], 60), Ok((Some(3), 60)));
        assert_eq!(t(vec![(1, vec![0, 0, 3])], 60), Ok((Some(3), 60)), "leading zeros");
        assert_eq!(t(vec![(1, vec![0x0f, 0xa0])], 60), Ok((Some(4000), 60)));
        assert_eq!(t(vec![(1, vec![0xff, 0xff])], 9216), Ok((None, 9216)));
        let refused = |m, len| packet_out_target(&out(m, len)).unwrap_err();
        for (m, len, says) in [
            (vec![], 60, "needs packet_out.egress_lif"),
            (vec![(2, vec![1])], 60, "no metadata id 2"),
            (vec![(1, vec![1]), (1, vec![2])], 60, "given twice"),
            (vec![(1, vec![1, 0, 0])], 60, "16 bits wide"),
            (vec![(1, vec![])], 60, "16 bits wide"),
            (vec![(1, vec![1])], 13, "not 13"),
            (vec![(1, vec![1])], 9217, "not 9217"),
        ] {
            let (code, why) = refused(m, len);
            assert_eq!(code, Code::InvalidArgument);
            assert!(why.contains(says), "{why}");
        }
    }

    #[test]
    fn packet_in_carries_the_sender_in_canonical_bytes() {
        let m = packet_in_message(0x0102, vec![1; 20]);
        let Some(Out::Packet(p)) = m.update else { panic!() };
        assert_eq!(p.metadata[0].metadata_id, 1);
        assert_eq!(p.metadata[0].value, vec![1, 2]);
        let Some(Out::Packet(p)) = packet_in_message(0, vec![1; 20]).update else {
            panic!()
        };
        assert_eq!(p.metadata[0].value, vec![0]);
    }
}
