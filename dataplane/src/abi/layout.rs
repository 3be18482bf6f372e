//! The ABI described as data: every structure's fields with offsets and
//! sizes, every enumeration with its values. `nicdrv abi` prints it, and
//! `docs/device-abi.md` embeds the Markdown form, checked by a test, so the
//! document a hardware engineer implements from cannot drift from the code.

use super::*;
use core::fmt::Write as _;
use core::mem::{offset_of, size_of};

/// One field of an ABI structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLayout {
    /// The field's name in the Rust structure.
    pub name: &'static str,
    /// Offset from the start of the structure, bytes.
    pub offset: usize,
    /// Size, bytes.
    pub size: usize,
}

/// One ABI structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructLayout {
    /// The structure's Rust name.
    pub name: &'static str,
    /// Size, bytes.
    pub size: usize,
    /// Every field, in offset order, together covering every byte.
    pub fields: Vec<FieldLayout>,
}

/// One ABI enumeration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumLayout {
    /// The enumeration's Rust name.
    pub name: &'static str,
    /// Where its values appear (a field, or what uses them).
    pub field: &'static str,
    /// (name, key, raw value, meaning) per value.
    pub values: Vec<(&'static str, &'static str, u64, &'static str)>,
}

fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

macro_rules! layout {
    ($ty:ty { $($f:ident),* $(,)? }) => {
        StructLayout {
            name: stringify!($ty),
            size: size_of::<$ty>(),
            fields: vec![$(FieldLayout {
                name: stringify!($f),
                offset: offset_of!($ty, $f),
                size: field_size(|s: &$ty| &s.$f),
            }),*],
        }
    };
}

macro_rules! enum_layout {
    ($ty:ident, $field:literal) => {
        EnumLayout {
            name: stringify!($ty),
            field: $field,
            values: $ty::ALL
                .iter()
                .map(|&v| (v.name(), v.key(), v.raw() as u64, AbiEnum::doc(v)))
                .collect(),
        }
    };
}

/// Every ABI structure, in the order the document presents them.
pub fn structs() -> Vec<StructLayout> {
    vec![
        layout!(Identity {
            signature,
            abi_major,
            abi_minor,
            capabilities,
            function_id,
            function_kind,
            rsvd0,
            nlifs,
            nqueues,
            nintrs,
            min_ring_order,
            max_ring_order,
            doorbell_offset,
            doorbell_stride,
            intr_ctrl_offset,
            devcmd_offset,
            rsvd2,
            clock_hz,
            device_clock,
            serial,
            fw_version,
            rsvd1
        }),
        layout!(DevCmdRegs {
            doorbell,
            done,
            admin_doorbell,
            rsvd0,
            cmd,
            comp,
            rsvd1,
            data
        }),
        layout!(IntrCtrl {
            latency_interval_us,
            overflow_interval_us,
            frame_threshold,
            mode,
            mask,
            credits,
            pending,
            current_interval_us
        }),
        layout!(QueueStateBlock {
            head,
            cq_tail,
            rsvd_device_hot,
            fetch_flag,
            qstatus,
            error_index,
            rsvd_device_cold,
            outgoing_tail,
            cq_head,
            rsvd_driver_hot,
            consumer_flag,
            rsvd_driver_cold
        }),
        layout!(TxDesc {
            addr,
            len,
            flags,
            vlan_tci,
            rsvd
        }),
        layout!(RxDesc { addr, len, flags, rsvd }),
        layout!(Completion {
            status,
            flags,
            lif,
            index,
            len,
            pkt_flags,
            timestamp
        }),
        layout!(AdminCmd {
            opcode,
            flags,
            tag,
            lif,
            rsvd,
            body
        }),
        layout!(AdminComp {
            status,
            flags,
            tag,
            value,
            data
        }),
        layout!(DmaRef { addr, len, rsvd }),
        layout!(LifCreate { name, mac, rsvd }),
        layout!(QueueCreate {
            qtype,
            ring_order,
            flags,
            rsvd0,
            intr_vector,
            rsvd1,
            ring_base,
            cq_base,
            state_base,
            start_index,
            rsvd2
        }),
        layout!(QueueRef {
            qtype,
            rsvd0,
            qindex,
            start_index
        }),
        layout!(MeterConfig {
            resource,
            mode,
            policy,
            rsvd0,
            rsvd1,
            cir,
            cburst,
            pir,
            pburst,
            eburst
        }),
        layout!(MeterRef { resource, rsvd, dma }),
        layout!(Moderation {
            vector,
            mode,
            high_watermark_pct,
            latency_interval_us,
            overflow_interval_us,
            frame_threshold
        }),
        layout!(ModerationRef { vector, rsvd, dma }),
        layout!(PipelineChunk {
            dma,
            offset,
            total_len,
            flags,
            rsvd
        }),
        layout!(DeviceInfo {
            abi_major,
            abi_minor,
            nfunctions,
            max_lifs,
            capabilities,
            meter_rate_granularity,
            meter_burst_granularity,
            moderation_granularity_ns,
            nports,
            pipeline_active,
            pipeline_executor,
            device_clock,
            serial,
            fw_version,
            pipeline_code_bytes,
            rsvd1
        }),
        layout!(LifInfo {
            lif,
            function_id,
            slot,
            state,
            rsvd0,
            ntxq,
            nrxq,
            mac,
            rsvd1,
            name,
            rsvd2
        }),
        layout!(TableEntry {
            table_id,
            action_id,
            priority,
            prefix_len,
            key_len,
            param_len,
            key,
            mask,
            params
        }),
        layout!(LifStats {
            lif,
            rsvd,
            device_clock,
            counters
        }),
        layout!(TableListRef { table_id, from, dma }),
        layout!(PipelineMeterRef { meter_id, from, dma }),
        layout!(PipelineMeterSet {
            meter_id,
            index,
            config
        }),
        layout!(TableEntryData {
            entry,
            flags,
            slot,
            packets,
            bytes,
            meter,
            rsvd
        }),
        layout!(CounterRef { counter_id, from, dma }),
        layout!(CounterCell { packets, bytes }),
        layout!(CounterSet {
            counter_id,
            index,
            packets,
            bytes
        }),
        layout!(PacketInRecord { ingress_lif, rsvd, len }),
        layout!(PacketInject { lif, rsvd, dma }),
        layout!(EventsRef { from_seq, dma }),
        layout!(DeviceEvent {
            seq,
            device_clock,
            kind,
            rsvd0,
            function,
            lif,
            slot,
            detail
        }),
        layout!(FunctionConfig {
            function,
            slot,
            flags,
            rsvd0,
            mac,
            rsvd1
        }),
        layout!(FunctionConfigRef {
            function,
            slot,
            rsvd,
            dma
        }),
    ]
}

/// Every ABI enumeration.
pub fn enums() -> Vec<EnumLayout> {
    vec![
        enum_layout!(FunctionKind, "identity.function_kind"),
        enum_layout!(QueueType, "doorbell, queue commands"),
        enum_layout!(ModerationMode, "moderation.mode"),
        enum_layout!(CompStatus, "completion.status"),
        enum_layout!(MeterColor, "completion.flags bits 0..2"),
        enum_layout!(AdminOpcode, "admin_cmd.opcode (admin queue)"),
        enum_layout!(DevCmdOpcode, "admin_cmd.opcode (mailbox)"),
        enum_layout!(AdminStatus, "admin_comp.status"),
        enum_layout!(MeterResource, "meter.resource"),
        enum_layout!(MeterMode, "meter.mode"),
        enum_layout!(MeterPolicy, "meter.policy"),
        enum_layout!(LifCounter, "lif_stats.counters index"),
        enum_layout!(EventKind, "event.kind"),
        enum_layout!(FetchFlag, "queue_state.fetch_flag"),
        enum_layout!(ConsumerFlag, "queue_state.consumer_flag"),
    ]
}

/// The BAR0 map as rows of (offset, size, what).
pub fn bar0_map() -> Vec<(u64, u64, &'static str)> {
    vec![
        (IDENTITY_OFFSET, 0x1000, "identity page (Identity), read-only"),
        (DEVCMD_OFFSET, 0x1000, "device-command mailbox (DevCmdRegs)"),
        (
            INTR_CTRL_OFFSET,
            0x1000,
            "interrupt control blocks (IntrCtrl), 32 B per MSI-X vector",
        ),
        (
            MSIX_TABLE_OFFSET,
            MSIX_PBA_OFFSET - MSIX_TABLE_OFFSET,
            "MSI-X table, 16 B per vector",
        ),
        (MSIX_PBA_OFFSET, 0x800, "MSI-X pending-bit array"),
        (0x4000, DOORBELL_OFFSET - 0x4000, "reserved: reads zero, writes ignored"),
        (
            DOORBELL_OFFSET,
            DOORBELL_STRIDE,
            "doorbell page of LIF slot 0; slot n at +n*0x1000, write-only",
        ),
    ]
}

/// The whole ABI as Markdown tables (embedded in `docs/device-abi.md`).
pub fn markdown() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "ABI version {ABI_MAJOR}.{ABI_MINOR}. PCI vendor {PCI_VENDOR_ID:#06x}, PF device {PCI_DEVICE_ID_PF:#06x}, VF device {PCI_DEVICE_ID_VF:#06x}, class {PCI_CLASS_ETHERNET:#08x}.");
    let _ = writeln!(s, "\n### BAR0 map\n\n| offset | size | what |\n|---|---|---|");
    for (off, size, what) in bar0_map() {
        let _ = writeln!(s, "| `{off:#06x}` | `{size:#x}` | {what} |");
    }
    for st in structs() {
        let _ = writeln!(
            s,
            "\n### `{}` ({} bytes)\n\n| offset | size | field |\n|---|---|---|",
            st.name, st.size
        );
        for f in &st.fields {
            let _ = writeln!(s, "| `{:#05x}` | {} | `{}` |", f.offset, f.size, f.name);
        }
    }
    for g in super::flags::groups() {
        let (what, col) = if g.bits { ("bits", "mask") } else { ("values", "value") };
        let _ = writeln!(
            s,
            "\n### `{}` ({}, {what})\n\n| {col} | name |\n|---|---|",
            g.name, g.field
        );
        for (name, v) in &g.items {
            let _ = writeln!(s, "| `{v:#x}` | `{name}` |");
        }
    }
    for en in enums() {
        let _ = writeln!(
            s,
            "\n### `{}` ({})\n\n| value | name | key | meaning |\n|---|---|---|---|",
            en.name, en.field
        );
        for (name, key, v, doc) in &en.values {
            let _ = writeln!(s, "| `{v:#04x}` | {name} | `{key}` | {} |", doc.replace('|', "\\|"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field lists are complete: fields are contiguous and cover the
    /// whole structure, so a field added without its entry here fails.
    #[test]
    fn field_lists_cover_every_byte() {
        for st in structs() {
            let mut at = 0;
            for f in &st.fields {
                assert_eq!(
                    f.offset, at,
                    "{}.{} does not follow the previous field",
                    st.name, f.name
                );
                at += f.size;
            }
            assert_eq!(at, st.size, "{}: fields cover {at} of {} bytes", st.name, st.size);
        }
    }

    /// `docs/device-abi.md` embeds exactly what `markdown()` generates.
    /// Regenerate with `FAIRNIC_BLESS=1 cargo test -p dataplane abi::layout`.
    #[test]
    fn device_abi_doc_is_current() {
        const BEGIN: &str = "<!-- BEGIN GENERATED: dataplane::abi::layout::markdown() -->\n";
        const END: &str = "<!-- END GENERATED -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/device-abi.md");
        let doc = std::fs::read_to_string(path).expect("docs/device-abi.md exists");
        let start = doc.find(BEGIN).expect("doc has the BEGIN marker") + BEGIN.len();
        let end = doc.find(END).expect("doc has the END marker");
        let generated = markdown();
        if std::env::var_os("FAIRNIC_BLESS").is_some() {
            let new = format!("{}{}{}", &doc[..start], generated, &doc[end..]);
            std::fs::write(path, new).unwrap();
            return;
        }
        assert!(
            doc[start..end] == generated,
            "docs/device-abi.md is stale: run FAIRNIC_BLESS=1 cargo test -p dataplane abi::layout"
        );
    }
}
