use super::*;
use proptest::prelude::*;

#[test]
fn udp4_frames_classify_and_checksum() {
    let f = build_udp4(
        BROADCAST,
        [2, 0, 0, 0, 0, 1],
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        (1, 2),
        b"hi",
        64,
    );
    assert_eq!(f.len(), 64);
    assert_eq!(classify(&f), Ok(pkt_flags::IPV4 | pkt_flags::UDP));
    // A correct IPv4 header sums to 0xffff.
    assert_eq!(ones_complement_sum(&f[14..34], 0), 0xffff);
    let eth = EthernetFrame::new_checked(&f[..]).unwrap();
    assert!(eth.is_group_dst());
    assert_eq!(eth.src(), [2, 0, 0, 0, 0, 1]);
}

#[test]
fn truncated_headers_are_named() {
    let f = build_udp4(BROADCAST, [2; 6], [1; 4], [2; 4], (1, 2), b"", 64);
    assert_eq!(
        classify(&f[..13]),
        Err(ParseError::Truncated {
            layer: "ethernet",
            need: 14,
            have: 13
        })
    );
    assert!(matches!(
        classify(&f[..30]),
        Err(ParseError::Truncated { layer: "ipv4", .. })
    ));
    let mut bad = f.clone();
    bad[14] = 0x65;
    assert!(matches!(
        classify(&bad),
        Err(ParseError::Malformed {
            field: "ipv4.version",
            ..
        })
    ));
}

#[test]
fn unknown_ethertypes_are_not_errors() {
    let mut f = vec![0u8; 60];
    f[12] = 0x88;
    f[13] = 0xb5;
    assert_eq!(classify(&f), Ok(0));
}

proptest! {
    #[test]
    fn classify_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = classify(&bytes);
    }
}

/// The views read what the Reprs wrote, and a MAC prints and parses back.
#[test]
fn views_read_what_reprs_emit_and_addresses_round_trip() {
    let f = build_udp4(
        [2, 0, 0, 0, 0, 9],
        [2, 0, 0, 0, 0, 1],
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        (7, 9),
        b"abc",
        80,
    );
    let eth = EthernetFrame::new_checked(&f[..]).unwrap();
    assert_eq!(EthernetAddress(eth.dst()).to_string(), "02:00:00:00:00:09");
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.protocol()),
        ([10, 0, 0, 1], [10, 0, 0, 2], IPPROTO_UDP)
    );
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((udp.src_port(), udp.dst_port()), (7, 9));
    assert_eq!(&udp.payload()[..3], b"abc");
    let a: EthernetAddress = "2:f4:1c:0:0:ff".parse().unwrap();
    assert_eq!(a, EthernetAddress([2, 0xf4, 0x1c, 0, 0, 0xff]));
    assert_eq!(a.to_string().parse::<EthernetAddress>(), Ok(a));
    assert!(a.is_unicast() && !a.is_multicast());
    assert!(EthernetAddress::BROADCAST.is_multicast() && EthernetAddress::BROADCAST.is_broadcast());
    assert!(!EthernetAddress([0; 6]).is_unicast());
    for bad in [
        "",
        "02:00:00:00:00",
        "02:00:00:00:00:zz",
        "02:00:00:00:00:123",
        "02:00:00:00:00:00:00",
    ] {
        assert!(bad.parse::<EthernetAddress>().is_err(), "{bad}");
    }
    assert!("02:00:00:00:00"
        .parse::<EthernetAddress>()
        .unwrap_err()
        .to_string()
        .contains("six hex bytes"));
}

proptest! {
    /// Any text parses to an address that prints back to a text that
    /// parses to the same address, or gives an error; never a panic.
    #[test]
    fn address_parsing_never_panics(s in ".{0,40}") {
        if let Ok(a) = s.parse::<EthernetAddress>() {
            prop_assert_eq!(a.to_string().parse::<EthernetAddress>(), Ok(a));
        }
    }
}
