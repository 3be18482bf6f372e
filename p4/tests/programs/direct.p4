/*
 * direct.p4: direct counters and meters (test program for the STF vectors
 * and the front end's tests). `flows` forwards IPv4 by destination address
 * and polices each flow with its entry's own meter; `acl` drops by source,
 * each rule counting its own hits; `lif_rate` is an indexed meter for
 * the control plane's tests.
 */
#include <fairnic_arch.p4>

header ethernet_t {
    bit<48> dst_addr;
    bit<48> src_addr;
    bit<16> ether_type;
}

header ipv4_t {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  tos;
    bit<16> total_len;
    bit<16> identification;
    bit<16> frag;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdr_checksum;
    bit<32> src_addr;
    bit<32> dst_addr;
}

struct headers_t {
    ethernet_t ethernet;
    ipv4_t     ipv4;
}

struct meta_t {
    bit<2> color;
    bit<2> rate_color;
}

parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t std) {
    state start {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            0x0800: ipv4;
            default: accept;
        }
    }
    state ipv4 {
        pkt.extract(hdr.ipv4);
        transition accept;
    }
}

control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t std) {
    direct_counter(CounterType.packets_and_bytes) flow_hits;
    direct_meter<bit<2>>(MeterType.bytes) flow_rate;
    direct_counter(CounterType.packets) acl_hits;
    counter(4, CounterType.packets_and_bytes) colors;
    /* An indexed meter beside the direct ones (by the sender's LIF, low
     * two bits); its color is kept apart and decides nothing. */
    meter(4, MeterType.packets) lif_rate;

    action police(bit<16> lif) {
        flow_rate.read(meta.color);
        flow_hits.count();
        std.egress_lif = lif;
    }
    action deny() {
        mark_to_drop(std);
    }

    table acl {
        key = { hdr.ipv4.src_addr: ternary; }
        actions = { deny; NoAction; }
        default_action = NoAction();
        counters = acl_hits;
        size = 64;
    }

    table flows {
        key = { hdr.ipv4.dst_addr: exact; }
        actions = { police; NoAction; }
        default_action = NoAction();
        counters = flow_hits;
        meters = flow_rate;
        size = 256;
    }

    apply {
        if (hdr.ipv4.isValid()) {
            acl.apply();
            flows.apply();
            colors.count((bit<32>) meta.color);
            lif_rate.execute_meter((bit<32>) std.ingress_lif[1:0], meta.rate_color);
            if (meta.color == 2) {
                mark_to_drop(std);
            }
        }
    }
}

control D(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.ipv4);
    }
}

FairnicPipeline(P(), I(), D()) main;
