//! Frames from the wire or a tenant: classification and the switch never
//! panic, whatever the bytes.
#![no_main]

use dataplane::packet::{classify, EthernetFrame};
use libfuzzer_sys::fuzz_target;
use sim::device::switch::{Source, Switch};

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    if let Ok(eth) = EthernetFrame::new_checked(data) {
        let _ = (eth.dst(), eth.src(), eth.ethertype(), eth.payload().len());
    }
    let mut sw = Switch::default();
    sw.add_lif([2, 0, 0, 0, 0, 1], 1);
    let _ = sw.forward(Source::Uplink, data);
    let _ = sw.forward(Source::Lif(1), data);
});
