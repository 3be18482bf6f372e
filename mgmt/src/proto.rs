//! The control-socket protocol between `nicdrv` (server) and `nicctl`
//! (client): one JSON object per line each way, over a Unix stream socket.
//!
//! Every request gets exactly one response line: `{"ok": ...}` or
//! `{"error": "..."}`. Lines longer than [`MAX_LINE`] are refused, and a
//! malformed line gets an error response naming what was wrong; the server
//! never panics or hangs on what a client sends.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of this protocol (in `Request::Hello`'s answer). 2: the
/// moderation requests and answer say `moderation` where 1 said
/// `coalesce` (requests in the old spelling are still accepted).
pub const PROTOCOL_VERSION: u32 = 2;
/// Longest line either side accepts.
pub const MAX_LINE: usize = 64 * 1024;

/// The meter and moderation enumerations are the device ABI's own: on the
/// wire each is its snake-case key (`dma_bytes`, `sr_tcm`,
/// `backpressure`, `adaptive`); parsing also takes `dma-bytes`, `srtcm`,
/// `DmaBytes` (see [`dataplane::abi::AbiEnum`]).
pub use dataplane::abi::{MeterMode, MeterPolicy, MeterResource, ModerationMode};

/// A meter setting (rates per second and bursts in the resource's unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meter {
    pub resource: MeterResource,
    pub mode: MeterMode,
    pub policy: MeterPolicy,
    pub cir: u64,
    pub cburst: u64,
    pub pir: u64,
    pub pburst: u64,
    pub eburst: u64,
}

/// A vector's interrupt moderation (the ABI's `Moderation` without the
/// vector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationSettings {
    pub mode: ModerationMode,
    pub latency_interval_us: u32,
    pub overflow_interval_us: u32,
    pub frame_threshold: u32,
    pub high_watermark_pct: u8,
}

/// A request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Who are you.
    Hello,
    /// Every LIF the driver can see.
    LifList,
    /// Device counters of one LIF, or of all (and the uplink's, when the
    /// driver has the PF). `lif` [`UPLINK`] (65535, the ABI's
    /// `LIF_UPLINK`): the uplink's counters only.
    Stats { lif: Option<u16> },
    /// The applied meter of a LIF.
    MeterGet { lif: u16, resource: MeterResource },
    /// Set a LIF's meter (through the PF); answers what was applied.
    MeterSet { lif: u16, meter: Meter },
    /// A function's vector moderation (`coalesce_get` before protocol 2).
    #[serde(alias = "coalesce_get")]
    ModerationGet { function: u16, vector: u16 },
    /// Set it; answers what was applied (`coalesce_set` with the field
    /// `coalesce` before protocol 2).
    #[serde(alias = "coalesce_set")]
    ModerationSet {
        function: u16,
        vector: u16,
        #[serde(alias = "coalesce")]
        moderation: ModerationSettings,
    },
    /// The running application's live figures.
    AppStats,
    /// Add a pipeline table entry: one match per key field, in order
    /// (`mgmt::tables` forms), an action and its arguments.
    TableAdd {
        table: String,
        keys: Vec<String>,
        action: String,
        args: Vec<String>,
        priority: u32,
    },
    /// Delete the entry with these matches (and priority, ternary).
    TableDel {
        table: String,
        keys: Vec<String>,
        priority: u32,
    },
    /// The loaded program's tables (one, or all) with their entries as the
    /// device lists them (`TableEntryList`); from a device older than ABI
    /// 1.3, the entries added through this driver.
    TableShow { table: Option<String> },
    /// The device's events (read through the PF) from sequence number
    /// `from` on (none: the oldest the device keeps); at most
    /// [`MAX_EVENTS`] per answer, which says where to ask from next.
    Events { from: Option<u64> },
    /// The PF's settings for a function's LIF slots (one, or all).
    SlotGet { function: u16, slot: Option<u16> },
    /// Set them (through the PF); answers what the device applied.
    SlotSet { settings: SlotSettings },
}

/// The PF's settings for one LIF slot of a function (the ABI's
/// `FunctionConfig`): the MAC a LIF created there gets (`None`: the
/// device assigns one), whether frames it sends from another source MAC
/// are dropped, whether the function may choose its own MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSettings {
    /// 0 the PF, `n + 1` VF `n`.
    pub function: u16,
    pub slot: u16,
    pub mac: Option<String>,
    pub spoof_check: bool,
    pub trust: bool,
}

/// The "LIF number" of the uplink in [`Request::Stats`] and
/// [`LifCounters`]: the ABI's `LIF_UPLINK`, which no LIF has.
pub const UPLINK: u16 = dataplane::abi::LIF_UPLINK;

/// Most events in one [`Answer::Events`] (the answer stays well inside
/// [`MAX_LINE`]).
pub const MAX_EVENTS: usize = 128;

/// One device event, as `events` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    /// The device's sequence number (consecutive; a gap means its log
    /// overflowed).
    pub seq: u64,
    /// Device clock, ns since power-on.
    pub device_clock_ns: u64,
    /// `lif_created`, `function_reset`, ... (`unknown_N` for a kind this
    /// driver does not know).
    pub kind: String,
    /// 0 the PF, `n + 1` VF `n`.
    pub function: u16,
    pub lif: Option<u16>,
    pub slot: Option<u16>,
    /// Per kind (see the device ABI's `EventKind`).
    pub detail: u64,
    /// What happened, in words.
    pub text: String,
}

/// A pipeline table as `table show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableView {
    pub name: String,
    pub id: u16,
    /// `name:kind:width` per key field.
    pub keys: Vec<String>,
    /// `name(param:width, ...)` per action.
    pub actions: Vec<String>,
    pub default_action: String,
    pub size: u32,
    /// The first [`MAX_TABLE_ROWS`] entries, in the device's order.
    pub entries: Vec<TableEntryRow>,
    /// How many entries the table holds (0 from a driver older than this
    /// field: then `entries` is all of them).
    #[serde(default)]
    pub total: usize,
}

/// Most entries of one table in a [`TableView`] (the answer stays well
/// inside [`MAX_LINE`] with every table of a program listed).
pub const MAX_TABLE_ROWS: usize = 128;

/// One entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntryRow {
    pub keys: Vec<String>,
    pub action: String,
    pub args: Vec<String>,
    pub priority: u32,
    /// The entry's direct counter (packets, bytes), when its table has one
    /// (device ABI 1.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<(u64, u64)>,
    /// The entry's direct meter as the device applied it (`off`, or its
    /// mode and rates in the meter's unit), when its table has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
}

/// One LIF, as `lif list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifRow {
    pub lif: u16,
    pub function: u16,
    pub name: String,
    pub mac: String,
    pub state: String,
    pub txq: u16,
    pub rxq: u16,
}

/// A LIF's device counters by name; `lif` [`UPLINK`]: the uplink's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifCounters {
    pub lif: u16,
    pub device_clock_ns: u64,
    pub counters: BTreeMap<String, u64>,
}

/// The application's live figures for one LIF.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppLif {
    pub lif: u16,
    pub tx_pps: f64,
    pub rx_pps: f64,
    pub tx_packets: u64,
    pub rx_packets: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
}

/// What the driver is and runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub driver: String,
    pub app: String,
    pub functions: Vec<String>,
    /// The device's meter rate step, in the resource's unit per second
    /// (what `meter set` rounds to).
    #[serde(default)]
    pub meter_rate_granularity: u64,
    /// The device's meter burst step, in the resource's unit.
    #[serde(default)]
    pub meter_burst_granularity: u64,
    /// The device's moderation timer step, ns.
    #[serde(default)]
    pub moderation_granularity_ns: u32,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    Hello(Hello),
    Lifs {
        lifs: Vec<LifRow>,
    },
    Stats {
        stats: Vec<LifCounters>,
    },
    Meter {
        lif: u16,
        meter: Meter,
    },
    /// A vector's moderation (`coalesce` with the field `coalesce`
    /// before protocol 2).
    Moderation {
        function: u16,
        vector: u16,
        moderation: ModerationSettings,
    },
    App {
        elapsed_s: f64,
        lifs: Vec<AppLif>,
    },
    /// The loaded pipeline program and its tables.
    Tables {
        program: String,
        tables: Vec<TableView>,
        /// How the device runs the program ("compiled to machine code
        /// (N bytes)", "the reference executor (interpreted)"), when the
        /// device says (absent from older servers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        executor: Option<String>,
    },
    /// Device events, oldest first, and the sequence number to ask from
    /// next.
    Events {
        events: Vec<EventRow>,
        next: u64,
    },
    /// LIF slot settings.
    Slots {
        slots: Vec<SlotSettings>,
    },
}

/// A response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Ok(Answer),
    Error(String),
}

/// Why a line is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("line of {0} bytes exceeds {MAX_LINE}")]
    TooLong(usize),
    #[error("not a valid message: {0}")]
    Malformed(String),
}

/// Parse a request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, ProtoError> {
    if line.len() > MAX_LINE {
        return Err(ProtoError::TooLong(line.len()));
    }
    serde_json::from_slice(line).map_err(|e| ProtoError::Malformed(e.to_string()))
}

/// Parse a response line.
pub fn parse_response(line: &[u8]) -> Result<Response, ProtoError> {
    if line.len() > MAX_LINE {
        return Err(ProtoError::TooLong(line.len()));
    }
    serde_json::from_slice(line).map_err(|e| ProtoError::Malformed(e.to_string()))
}

/// Encode a message as one line, newline included.
pub fn encode<T: Serialize>(msg: &T) -> String {
    let mut s = serde_json::to_string(msg).expect("protocol types serialise");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_read_like_json_should() {
        let r = Request::MeterSet {
            lif: 3,
            meter: Meter {
                resource: MeterResource::Bytes,
                mode: MeterMode::TrTcm,
                policy: MeterPolicy::Backpressure,
                cir: 250_000_000,
                cburst: 65536,
                pir: 500_000_000,
                pburst: 131072,
                eburst: 0,
            },
        };
        let line = encode(&r);
        assert!(
            line.starts_with(r#"{"op":"meter_set","lif":3,"meter":{"resource":"bytes","mode":"tr_tcm""#),
            "{line}"
        );
        assert_eq!(parse_request(line.trim_end().as_bytes()), Ok(r));
        assert_eq!(
            parse_request(br#"{"op":"stats","lif":null}"#),
            Ok(Request::Stats { lif: None })
        );
    }

    /// Protocol 1's moderation requests (`coalesce_*`) still parse; the
    /// ABI's enumerations read any spelling of their names and refuse
    /// others with the list of what is accepted.
    #[test]
    fn old_spellings_parse_and_unknown_names_are_listed() {
        let settings = ModerationSettings {
            mode: ModerationMode::Adaptive,
            latency_interval_us: 20,
            overflow_interval_us: 200,
            frame_threshold: 0,
            high_watermark_pct: 0,
        };
        assert_eq!(
            parse_request(br#"{"op":"coalesce_set","function":1,"vector":0,"coalesce":{"mode":"adaptive","latency_interval_us":20,"overflow_interval_us":200,"frame_threshold":0,"high_watermark_pct":0}}"#),
            Ok(Request::ModerationSet { function: 1, vector: 0, moderation: settings })
        );
        assert_eq!(
            parse_request(br#"{"op":"coalesce_get","function":2,"vector":1}"#),
            Ok(Request::ModerationGet { function: 2, vector: 1 })
        );
        assert!(encode(&Request::ModerationGet { function: 2, vector: 1 }).starts_with(r#"{"op":"moderation_get""#));
        let m = |mode: &str| format!(r#"{{"op":"meter_get","lif":1,"resource":"{mode}"}}"#);
        for spelling in ["dma_bytes", "dma-bytes", "DmaBytes", "DMABYTES"] {
            assert_eq!(
                parse_request(m(spelling).as_bytes()),
                Ok(Request::MeterGet {
                    lif: 1,
                    resource: MeterResource::DmaBytes
                }),
                "{spelling}"
            );
        }
        let Err(ProtoError::Malformed(e)) = parse_request(m("bits").as_bytes()) else {
            panic!("`bits` is no resource")
        };
        assert!(
            e.contains("meter.resource: unknown value `bits` (expected one of: packets, bytes, cost, dma_bytes, desc_in_flight)"),
            "{e}"
        );
    }

    #[test]
    fn the_uplink_and_events_have_their_requests() {
        assert_eq!(
            parse_request(br#"{"op":"stats","lif":65535}"#),
            Ok(Request::Stats { lif: Some(UPLINK) })
        );
        let r = Request::Events { from: Some(7) };
        assert_eq!(encode(&r), "{\"op\":\"events\",\"from\":7}\n");
        assert_eq!(
            parse_request(br#"{"op":"events","from":null}"#),
            Ok(Request::Events { from: None })
        );
        let a = Response::Ok(Answer::Events {
            events: vec![EventRow {
                seq: 3,
                device_clock_ns: 5,
                kind: "lif_created".into(),
                function: 2,
                lif: Some(5),
                slot: Some(0),
                detail: 0,
                text: "VF 1 created LIF 5 in slot 0".into(),
            }],
            next: 4,
        });
        assert_eq!(parse_response(encode(&a).trim_end().as_bytes()), Ok(a));
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(matches!(parse_request(b"{\"op\":\"fly\"}"), Err(ProtoError::Malformed(m)) if m.contains("fly")));
        assert!(matches!(parse_request(b"\xff\xfe"), Err(ProtoError::Malformed(_))));
        assert!(matches!(
            parse_request(&vec![b' '; MAX_LINE + 1]),
            Err(ProtoError::TooLong(_))
        ));
        assert!(matches!(
            parse_request(br#"{"op":"meter_get","lif":70000,"resource":"bytes"}"#),
            Err(ProtoError::Malformed(_))
        ));
    }

    #[test]
    fn responses_round_trip() {
        let r = Response::Ok(Answer::Lifs {
            lifs: vec![LifRow {
                lif: 0,
                function: 1,
                name: "vf0".into(),
                mac: "02:f4:1c:00:00:00".into(),
                state: "up".into(),
                txq: 1,
                rxq: 1,
            }],
        });
        assert_eq!(parse_response(encode(&r).trim_end().as_bytes()), Ok(r));
        let e = Response::Error("no".into());
        assert_eq!(parse_response(encode(&e).trim_end().as_bytes()), Ok(e));
    }
}
