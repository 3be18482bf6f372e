/*
 * fairnic.p4: the device pipeline.
 *
 * L2 switching between the LIFs and the uplink, as the built-in switch
 * does (sim/src/device/switch.rs):
 *
 *   - l2_fwd (exact on the destination MAC) decides when it hits: the
 *     device fills it with every LIF's MAC (to_lif) and the control plane
 *     may add entries (to_lif, to_uplink, drop, to_lif_recirc, flood,
 *     to_cpu);
 *   - on a miss, a group destination (I/G bit set) floods; unknown unicast
 *     from a LIF goes to the uplink; unknown unicast from the wire gets no
 *     destination (the device counts it as no route), unless an IPv4
 *     `route` places it on a LIF or drops it.
 *
 * Alongside: per-LIF meters (packets, bytes) whose colors land in the
 * metadata and are counted by color, per-LIF ingress and egress counters,
 * a count of L3 kinds, and an IPv4 `acl` (ternary) that can drop or send
 * to the controller (to_cpu: the CPU port, a P4Runtime PacketIn).
 *
 * Cost: 1 unit per header parsed, 1 per l2_fwd lookup, 1 base: a plain
 * Ethernet/IPv4/UDP frame costs 5 units a pass, as with the built-in
 * switch. `acl` and `route` are empty unless the control plane fills
 * them, and cost nothing.
 *
 * Table and action order matters to the control plane: tables are
 * numbered acl 0, l2_fwd 1, route 2; actions NoAction 0, to_lif 1,
 * to_uplink 2, drop 3, to_lif_recirc 4, flood 5 (the built-in switch's
 * numbers for the same actions), to_cpu 6.
 */

#include <fairnic_arch.p4>

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<16> ETHERTYPE_VLAN = 0x8100;
const bit<16> ETHERTYPE_IPV6 = 0x86dd;
const bit<8>  IP_PROTO_TCP   = 6;
const bit<8>  IP_PROTO_UDP   = 17;

/* ingress_lif / egress_lif: no LIF. */
const bit<16> LIF_NONE  = 0xffff;
/* Meters and counters per LIF. */
const bit<32> LIF_COUNT = 4096;

/* meta.l3 and the l3_kind counter's index. */
const bit<8> L3_OTHER = 0;
const bit<8> L3_IPV4  = 1;
const bit<8> L3_IPV6  = 2;

typedef bit<48> mac_addr_t;
typedef bit<32> ipv4_addr_t;
typedef bit<128> ipv6_addr_t;

header ethernet_t {
    mac_addr_t dst_addr;
    mac_addr_t src_addr;
    bit<16>    ether_type;
}

/* 802.1Q tag. */
header vlan_t {
    bit<3>  pcp;
    bit<1>  dei;
    bit<12> vid;
    bit<16> ether_type;
}

/* The fixed 20 bytes; options are not parsed. */
header ipv4_t {
    bit<4>      version;
    bit<4>      ihl;
    bit<6>      dscp;
    bit<2>      ecn;
    bit<16>     total_len;
    bit<16>     identification;
    bit<3>      flags;
    bit<13>     frag_offset;
    bit<8>      ttl;
    bit<8>      protocol;
    bit<16>     hdr_checksum;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
}

header ipv6_t {
    bit<4>      version;
    bit<8>      traffic_class;
    bit<20>     flow_label;
    bit<16>     payload_len;
    bit<8>      next_hdr;
    bit<8>      hop_limit;
    ipv6_addr_t src_addr;
    ipv6_addr_t dst_addr;
}

/* Without options. */
header tcp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<32> seq_no;
    bit<32> ack_no;
    bit<4>  data_offset;
    bit<4>  res;
    bit<8>  flags;
    bit<16> window;
    bit<16> checksum;
    bit<16> urgent_ptr;
}

header udp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> length;
    bit<16> checksum;
}

struct headers_t {
    ethernet_t ethernet;
    vlan_t     vlan;
    ipv4_t     ipv4;
    ipv6_t     ipv6;
    tcp_t      tcp;
    udp_t      udp;
}

struct meta_t {
    /* Colors of the ingress LIF's meters: 0 green, 1 yellow, 2 red. */
    bit<2> color_packets;
    bit<2> color_bytes;
    /* L3_OTHER, L3_IPV4 or L3_IPV6. */
    bit<8> l3;
}

parser DeviceParser(packet_in pkt,
                    out headers_t hdr,
                    inout meta_t meta,
                    inout standard_metadata_t std) {
    @cost(1)
    state start {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_VLAN: parse_vlan;
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            default: accept;
        }
    }

    @cost(1)
    state parse_vlan {
        pkt.extract(hdr.vlan);
        transition select(hdr.vlan.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            default: accept;
        }
    }

    @cost(1)
    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        transition select(hdr.ipv4.ihl, hdr.ipv4.protocol) {
            (0 &&& 0xc, _): reject;           /* ihl 0..3: malformed */
            (4, _): reject;                   /* ihl 4: malformed */
            (5, IP_PROTO_TCP): parse_tcp;
            (5, IP_PROTO_UDP): parse_udp;
            default: accept;                  /* options: L4 not parsed */
        }
    }

    @cost(1)
    state parse_ipv6 {
        pkt.extract(hdr.ipv6);
        transition select(hdr.ipv6.next_hdr) {
            IP_PROTO_TCP: parse_tcp;
            IP_PROTO_UDP: parse_udp;
            default: accept;
        }
    }

    @cost(1)
    state parse_tcp {
        pkt.extract(hdr.tcp);
        transition accept;
    }

    @cost(1)
    state parse_udp {
        pkt.extract(hdr.udp);
        transition accept;
    }
}

control DeviceIngress(inout headers_t hdr,
                      inout meta_t meta,
                      inout standard_metadata_t std) {
    /* Per-LIF meters, indexed by the sending LIF. */
    meter(LIF_COUNT, MeterType.packets) lif_packets;
    meter(LIF_COUNT, MeterType.bytes) lif_bytes;

    /* Packets and bytes a LIF sent / was delivered. */
    counter(LIF_COUNT, CounterType.packets_and_bytes) lif_in;
    counter(LIF_COUNT, CounterType.packets_and_bytes) lif_out;
    /* Packets by L3 kind: L3_OTHER, L3_IPV4, L3_IPV6. */
    counter(4, CounterType.packets) l3_kind;
    /* Frames from LIFs by meter color (0 green, 1 yellow, 2 red). */
    counter(4, CounterType.packets_and_bytes) packet_colors;
    counter(4, CounterType.packets_and_bytes) byte_colors;
    /* Each acl entry's hits (a direct counter: one cell per entry, read
     * with the entry; P4Runtime's DirectCounterEntry). */
    direct_counter(CounterType.packets_and_bytes) acl_hits;

    /* Deliver to LIF `lif`. */
    action to_lif(bit<16> lif) {
        std.egress_lif = lif;
    }

    /* Send out of the uplink. */
    action to_uplink() {
        std.to_uplink = 1;
    }

    action drop() {
        mark_to_drop(std);
    }

    /* Deliver to LIF `lif` after `passes` (1..7) extra pipeline passes;
     * more than 7 are capped at 7. */
    action to_lif_recirc(bit<16> lif, bit<8> passes) {
        std.egress_lif = lif;
        if (passes > 7) {
            std.recirculate = 7;
        } else {
            std.recirculate = passes;
        }
    }

    /* Every LIF but the sender, and the uplink when a LIF sent it. */
    action flood() {
        std.flood = 1;
    }

    /* To the controller, through the CPU port (a P4Runtime PacketIn). */
    action to_cpu() {
        std.egress_lif = LIF_CPU;
    }

    /* IPv4 filter: entries drop what they match. */
    @cost(0)
    table acl {
        key = {
            hdr.ipv4.src_addr: ternary;
            hdr.ipv4.dst_addr: ternary;
            hdr.ipv4.protocol: ternary;
        }
        actions = {
            drop;
            to_cpu;
            NoAction;
        }
        default_action = NoAction();
        size = 1024;
        counters = acl_hits;
    }

    /* L2 forwarding by destination MAC. */
    @cost(1)
    table l2_fwd {
        key = {
            hdr.ethernet.dst_addr: exact;
        }
        actions = {
            to_lif;
            to_uplink;
            drop;
            to_lif_recirc;
            flood;
            to_cpu;
            NoAction;
        }
        default_action = NoAction();
        size = 8192;
    }

    /* IPv4 routes for unknown unicast from the wire. */
    @cost(0)
    table route {
        key = {
            hdr.ipv4.dst_addr: lpm;
        }
        actions = {
            to_lif;
            drop;
            NoAction;
        }
        default_action = NoAction();
        size = 4096;
    }

    apply {
        /* The sending LIF's meters and counter (frames from the wire have
         * no sending LIF). */
        if (std.ingress_lif != LIF_NONE) {
            lif_packets.execute_meter((bit<32>) std.ingress_lif, meta.color_packets);
            lif_bytes.execute_meter((bit<32>) std.ingress_lif, meta.color_bytes);
            lif_in.count((bit<32>) std.ingress_lif);
            packet_colors.count((bit<32>) meta.color_packets);
            byte_colors.count((bit<32>) meta.color_bytes);
        }

        if (hdr.ipv4.isValid()) {
            meta.l3 = L3_IPV4;
        } else if (hdr.ipv6.isValid()) {
            meta.l3 = L3_IPV6;
        } else {
            meta.l3 = L3_OTHER;
        }
        l3_kind.count((bit<32>) meta.l3);

        if (hdr.ipv4.isValid()) {
            acl.apply();
        }

        /* An acl entry that sent it to the CPU port decides. */
        if (std.drop == 0 && std.egress_lif != LIF_CPU) {
            if (!l2_fwd.apply().hit) {
                if (hdr.ethernet.dst_addr[40:40] == 1) {
                    flood();
                } else if (std.ingress_lif != LIF_NONE) {
                    to_uplink();
                } else if (hdr.ipv4.isValid()) {
                    /* A miss leaves no destination: no route. */
                    route.apply();
                }
            }
        }

        if (std.drop == 0 && std.egress_lif != LIF_NONE && std.egress_lif != LIF_CPU) {
            lif_out.count((bit<32>) std.egress_lif);
        }
    }
}

control DeviceDeparser(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.vlan);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.ipv6);
        pkt.emit(hdr.tcp);
        pkt.emit(hdr.udp);
    }
}

@base_cost(1)
FairnicPipeline(DeviceParser(), DeviceIngress(), DeviceDeparser()) main;
