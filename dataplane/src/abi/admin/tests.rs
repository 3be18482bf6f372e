//! The envelope's tests: every command round-trips, unknown opcodes and
//! reserved bytes are refused, parsing never panics.

use super::*;
use proptest::prelude::*;

pub(crate) const HDR: CmdHeader = CmdHeader { tag: 9, lif: 3 };

pub(crate) fn qc() -> QueueCreate {
    QueueCreate {
        qtype: QueueType::Tx.raw(),
        ring_order: 10,
        flags: queue_flags::INTR,
        intr_vector: 1.into(),
        ring_base: 0x10_0000.into(),
        cq_base: 0x20_0000.into(),
        state_base: 0x30_0000.into(),
        start_index: 0.into(),
        ..Default::default()
    }
}

pub(crate) fn trtcm() -> MeterConfig {
    MeterConfig {
        resource: MeterResource::Bytes.raw(),
        mode: MeterMode::TrTcm.raw(),
        policy: MeterPolicy::Backpressure.raw(),
        cir: 250_000_000.into(),
        cburst: 65_536.into(),
        pir: 500_000_000.into(),
        pburst: 131_072.into(),
        ..Default::default()
    }
}

fn samples() -> Vec<AdminCommand> {
    vec![
        AdminCommand::Nop,
        AdminCommand::Identify(DmaRef::new(0x1000, 128)),
        AdminCommand::LifCreate(LifCreate {
            name: crate::abi::pad_ascii("vf0"),
            mac: lif_mac(7),
            ..Default::default()
        }),
        AdminCommand::LifDestroy,
        AdminCommand::LifList(DmaRef::new(0x1000, 4096)),
        AdminCommand::QueueCreate(qc()),
        AdminCommand::QueueDestroy(QueueRef {
            qtype: 2,
            qindex: 1.into(),
            ..Default::default()
        }),
        AdminCommand::QueueReset(QueueRef {
            qtype: 1,
            qindex: 0.into(),
            start_index: 77.into(),
            ..Default::default()
        }),
        AdminCommand::MeterGet(MeterRef {
            resource: 2,
            dma: DmaRef::new(0x2000, 48),
            ..Default::default()
        }),
        AdminCommand::MeterSet(trtcm()),
        AdminCommand::ModerationGet(ModerationRef {
            vector: 1.into(),
            dma: DmaRef::new(0x3000, 16),
            ..Default::default()
        }),
        AdminCommand::ModerationSet(Moderation {
            vector: 1.into(),
            mode: ModerationMode::Adaptive.raw(),
            high_watermark_pct: 90,
            latency_interval_us: 20.into(),
            overflow_interval_us: 200.into(),
            frame_threshold: 64.into(),
        }),
        AdminCommand::StatsGet(DmaRef::new(0x4000, 272)),
        AdminCommand::PipelineLoad(PipelineChunk {
            dma: DmaRef::new(0x5000, 4096),
            offset: 0.into(),
            total_len: 4096.into(),
            flags: pipeline_flags::FIRST | pipeline_flags::LAST,
            ..Default::default()
        }),
        AdminCommand::TableEntryAdd(DmaRef::new(0x6000, 64)),
        AdminCommand::TableEntryDel(DmaRef::new(0x6000, 64)),
        AdminCommand::PipelineCounterGet(CounterRef {
            counter_id: 1.into(),
            from: 3.into(),
            dma: DmaRef::new(0x6000, 4096),
        }),
        AdminCommand::TableEntryList(TableListRef {
            table_id: 2.into(),
            from: 5.into(),
            dma: DmaRef::new(0x6000, 4096),
        }),
        AdminCommand::TableDataList(TableListRef {
            table_id: 2.into(),
            from: 0.into(),
            dma: DmaRef::new(0x6000, 4096),
        }),
        AdminCommand::TableDataSet(DmaRef::new(0x6000, 192)),
        AdminCommand::PipelineMeterGet(PipelineMeterRef {
            meter_id: 1.into(),
            from: 2.into(),
            dma: DmaRef::new(0x6000, 4096),
        }),
        AdminCommand::PipelineMeterSet(PipelineMeterSet {
            meter_id: 1.into(),
            index: 7.into(),
            config: trtcm(),
        }),
        AdminCommand::PortStatsGet(DmaRef::new(0x4000, 272)),
        AdminCommand::PacketInRead(DmaRef::new(0x8000, 65536)),
        AdminCommand::PipelineCounterSet(CounterSet {
            counter_id: 2.into(),
            index: COUNTER_ALL_CELLS.into(),
            packets: 0.into(),
            bytes: 0.into(),
        }),
        AdminCommand::PacketInject(PacketInject {
            lif: 3.into(),
            rsvd: [0; 6],
            dma: DmaRef::new(0x8000, 60),
        }),
        AdminCommand::EventsGet(EventsRef {
            from_seq: 17.into(),
            dma: DmaRef::new(0x7000, 4096),
        }),
        AdminCommand::FunctionConfigSet(FunctionConfig {
            function: 2.into(),
            slot: 1.into(),
            flags: function_config_flags::MAC | function_config_flags::SPOOF_CHECK,
            mac: [2, 0, 0, 0, 0, 7],
            ..Default::default()
        }),
        AdminCommand::FunctionConfigGet(FunctionConfigRef {
            function: 2.into(),
            slot: 1.into(),
            dma: DmaRef::new(0x7000, 16),
            ..Default::default()
        }),
    ]
}

#[test]
fn every_command_round_trips() {
    for c in samples() {
        let raw = c.encode(HDR);
        assert_eq!(AdminCommand::parse(raw.as_bytes()), Ok((HDR, c)), "{c:?}");
    }
    for c in [
        DevCommand::Reset,
        DevCommand::Identify,
        DevCommand::AdminQueueInit(QueueCreate { qtype: 0, ..qc() }),
    ] {
        let raw = c.encode(HDR);
        assert_eq!(DevCommand::parse(raw.as_bytes()), Ok((HDR, c)));
    }
}

#[test]
fn every_opcode_has_a_sample() {
    let seen: Vec<_> = samples().iter().map(|c| c.opcode()).collect();
    for op in AdminOpcode::ALL {
        assert!(seen.contains(op), "{op:?} has no sample command");
    }
}

#[test]
fn unknown_opcode_and_reserved_bytes() {
    let mut raw = AdminCommand::Nop.encode(HDR);
    raw.opcode = 0x7f;
    assert_eq!(
        AdminCommand::decode(&raw),
        Err(AbiError::UnknownOpcode {
            field: "admin.opcode",
            opcode: 0x7f
        })
    );
    let mut raw = AdminCommand::QueueCreate(qc()).encode(HDR);
    raw.body[50] = 1;
    assert!(matches!(
        AdminCommand::decode(&raw),
        Err(AbiError::ReservedBits {
            field: "queue_create.rsvd",
            ..
        })
    ));
    let mut raw = AdminCommand::Nop.encode(HDR);
    raw.flags = 4;
    assert!(matches!(
        AdminCommand::decode(&raw),
        Err(AbiError::ReservedBits {
            field: "admin.flags",
            ..
        })
    ));
}

#[test]
fn dma_refs_are_bounded() {
    let dec = |d| AdminCommand::decode(&AdminCommand::StatsGet(d).encode(HDR));
    assert!(matches!(
        dec(DmaRef::new(0, 0)),
        Err(AbiError::OutOfRange {
            field: "stats_get.dma.len",
            ..
        })
    ));
    assert!(dec(DmaRef::new(0, MAX_ADMIN_DMA_LEN + 1)).is_err());
    assert!(dec(DmaRef::new(u64::MAX - 3, 16)).is_err());
}

#[test]
fn admin_comp_round_trip() {
    let c = AdminComp::new(AdminStatus::Permission, 7, 1, 2, true);
    let (st, back) = AdminComp::parse(c.as_bytes()).unwrap();
    assert_eq!(st, AdminStatus::Permission);
    assert!(back.color());
    assert_eq!(back.tag.get(), 7);
    let mut bad = c;
    bad.status = 99;
    assert!(AdminComp::parse(bad.as_bytes()).is_err());
}

#[test]
fn pf_only_opcodes() {
    assert!(AdminOpcode::MeterSet.pf_only());
    assert!(AdminOpcode::PipelineLoad.pf_only());
    assert!(!AdminOpcode::MeterGet.pf_only());
    assert!(!AdminOpcode::QueueCreate.pf_only());
}

proptest! {
    #[test]
    fn parse_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..80), op in any::<u8>()) {
        let mut bytes = bytes;
        if let Some(b) = bytes.first_mut() {
            // Steer half the cases to defined opcodes so bodies get exercised.
            if op & 1 == 0 {
                *b = AdminOpcode::ALL[(op as usize / 2) % AdminOpcode::ALL.len()].raw();
            }
        }
        if let Ok((hdr, cmd)) = AdminCommand::parse(&bytes) {
            let again = cmd.encode(hdr);
            prop_assert_eq!(again.as_bytes(), &bytes[..64]);
        }
        let _ = DevCommand::parse(&bytes);
        let _ = AdminComp::parse(&bytes);
    }

    #[test]
    fn valid_meter_configs_round_trip(cir in 0u64..1 << 40, extra in 0u64..1 << 40, cb in 1u64..1 << 30, pb in 1u64..1 << 30) {
        let m = MeterConfig { cir: cir.into(), pir: (cir + extra).into(), cburst: cb.into(), pburst: pb.into(), ..trtcm() };
        let raw = AdminCommand::MeterSet(m).encode(HDR);
        prop_assert_eq!(AdminCommand::decode(&raw), Ok((HDR, AdminCommand::MeterSet(m))));
    }
}
