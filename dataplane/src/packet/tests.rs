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

proptest! {
    // Each near miss is one field of several: enough cases that every
    // field's is tried many times (a case takes about a microsecond).
    #![proptest_config(ProptestConfig::with_cases(8192))]

    /// The untagged-IPv4 shortcut answers only where the general path
    /// agrees: a UDP frame with each field the checks read (EtherType,
    /// version and IHL, total length, fragment offset, protocol, UDP
    /// length, TCP data offset) set to a near miss or anything, then
    /// perhaps cut short.
    #[test]
    fn the_ipv4_shortcut_agrees_with_the_general_path(
        payload in 0usize..48,
        ethertype in prop_oneof![5 => Just(0x0800u16), 1 => any::<u16>()],
        ver_ihl in prop_oneof![5 => Just(0x45u8), 1 => 0x40u8..0x50, 1 => any::<u8>()],
        total in prop_oneof![2 => Just(None), 1 => (0u16..100).prop_map(Some)],
        frag in prop_oneof![2 => Just(0u16), 2 => Just(0x4000), 1 => Just(0x2000), 1 => (0u16..13).prop_map(|b| 1 << b), 1 => any::<u16>()],
        proto in prop_oneof![2 => Just(IPPROTO_UDP), 2 => Just(IPPROTO_TCP), 1 => any::<u8>()],
        udp_len in proptest::option::of(0u16..80),
        tcp_off in 0u8..16,
        cut in prop_oneof![3 => Just(None), 1 => (0usize..120).prop_map(Some)],
    ) {
        let mut f = build_udp4([2; 6], [4; 6], [10, 0, 0, 1], [10, 0, 0, 2], (1, 2), &[], 42 + payload);
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f[14] = ver_ihl;
        if let Some(t) = total {
            f[16..18].copy_from_slice(&t.to_be_bytes());
        }
        f[20..22].copy_from_slice(&frag.to_be_bytes());
        f[23] = proto;
        if let Some(l) = udp_len {
            f[38..40].copy_from_slice(&l.to_be_bytes());
        }
        if let Some(b) = f.get_mut(46) {
            *b = tcp_off << 4;
        }
        if let Some(n) = cut {
            f.truncate(n);
        }
        if let Some(flags) = classify_plain_ipv4(&f) {
            prop_assert_eq!(Ok(flags), classify_any(&f));
        }
        prop_assert_eq!(classify(&f), classify_any(&f));
    }
}

/// The shortcut takes the frames it is for (it is not dead code that
/// the property above would pass vacuously).
#[test]
fn the_ipv4_shortcut_takes_plain_udp_and_tcp() {
    let udp = build_udp4([2; 6], [4; 6], [10, 0, 0, 1], [10, 0, 0, 2], (1, 2), &[], 64);
    assert_eq!(classify_plain_ipv4(&udp), Some(pkt_flags::IPV4 | pkt_flags::UDP));
    let mut tcp = udp.clone();
    tcp[23] = IPPROTO_TCP;
    tcp[16..18].copy_from_slice(&40u16.to_be_bytes());
    tcp[46] = 0x50;
    assert_eq!(classify_plain_ipv4(&tcp), Some(pkt_flags::IPV4 | pkt_flags::TCP));
    let mut frag = udp.clone();
    frag[21] = 1;
    assert_eq!(classify_plain_ipv4(&frag), Some(pkt_flags::IPV4));
    let mut opts = udp;
    opts[14] = 0x46;
    assert_eq!(classify_plain_ipv4(&opts), None, "options: the general path");
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
