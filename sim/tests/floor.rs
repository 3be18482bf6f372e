//! The benchmark floor (`Forwarding::Floor`): the engine moves a frame to
//! the LIF its destination MAC's LIF number names, with no table, program
//! or source check, and the books still balance (the e2e bench measures
//! the device against it).

#![allow(missing_debug_implementations)]

mod common;

use common::*;
use dataplane::abi::*;
use sim::device::{DeviceConfig, Forwarding};
use sim::{ClockKind, PortSpec, Sim, SimConfig};

#[test]
fn the_floor_delivers_by_the_lif_number_in_the_destination_mac() {
    let s = Sim::start(SimConfig {
        device: DeviceConfig {
            vfs: 2,
            forwarding: Forwarding::Floor,
            ..DeviceConfig::default()
        },
        clock: ClockKind::Virtual,
        port: PortSpec::Null,
        ..SimConfig::default()
    })
    .expect("sim starts");
    let mut a = bring_up(s.vf_socket(0).unwrap(), "a");
    let mut b = bring_up(s.vf_socket(1).unwrap(), "b");
    assert_eq!(b.mac, lif_mac(b.lif), "LIF MACs carry the LIF number");
    // A spoofed source and a program-less device: the floor looks at
    // neither, only at the destination's LIF number.
    let spoofed = [0x02, 0, 0, 0, 0, 0x99];
    let mut send = |pkt: &[u8]| {
        let buf = a.f.alloc(2048, 64);
        a.f.mem.write(buf, pkt);
        assert!(a.tx.ring.fill_bulk(&[TxDesc::new(buf, pkt.len() as u16, 0)]));
        a.f.ring_doorbell(&mut a.tx);
        s.advance(10_000);
    };
    send(&frame(b.mac, spoofed, 1, 64));
    let c = b.f.completion(&mut b.rx).expect("delivered to the LIF the MAC names");
    assert_eq!((c.status, c.len), (CompStatus::Ok, 64));
    // A MAC naming no LIF: no delivery, a drop on the sender, books even.
    send(&frame(lif_mac(999), a.mac, 2, 64));
    assert!(b.f.completion(&mut b.rx).is_none());
    let d = s.device();
    assert_eq!(d.lif(b.lif).unwrap().counter(LifCounter::RxPackets), 1);
    assert_eq!(d.lif(a.lif).unwrap().counter(LifCounter::TxPackets), 2);
    d.check_books().expect("every frame ended in exactly one counter");
}
