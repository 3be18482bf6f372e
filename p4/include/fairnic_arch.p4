/*
 * fairnic_arch.p4: the fairnic SmartNIC architecture, for P4_16 pipeline
 * programs. Include it first:
 *
 *     #include <fairnic_arch.p4>
 *
 * A fairnic pipeline is three blocks, run on every packet in this order:
 *
 *   1. a parser    (FairnicParser):   extracts headers from the packet;
 *   2. an ingress  (FairnicIngress):  decides the packet's fate with tables,
 *                                     actions, meters and counters;
 *   3. a deparser  (FairnicDeparser): emits the valid headers back in front
 *                                     of the payload.
 *
 * The program ends by instantiating the package with its three blocks:
 *
 *     @base_cost(1)
 *     FairnicPipeline(MyParser(), MyIngress(), MyDeparser()) main;
 *
 * Many logical interfaces (LIFs) share the pipeline; each is charged for
 * what its packets cost it (see "Cost" below and docs/fairness.md).
 *
 * The fairnic compiler (p4c-fairnic) accepts a subset of P4_16: no header
 * stacks or unions, no varbit, no setValid/setInvalid, no switch, no
 * functions, registers or checksum externs, no value_set. Run-time values
 * are at most 64 bits wide (wider fields, such as IPv6 addresses, can be
 * extracted, emitted and matched as table keys).
 */

/* ------------------------------------------------------------------ */
/* Cost annotations                                                    */
/* ------------------------------------------------------------------ */
/*
 * The device charges every packet's ingress LIF cost units for each pass
 * through the pipeline (a recirculation is another full pass):
 *
 *   @base_cost(n)  on the `main` package instantiation: n units for every
 *                  packet (egress, deparsing, DMA set-up);
 *   @cost(n)       on a parser state: n units each time a packet passes
 *                  through the state (e.g. 1 per header parsed);
 *   @cost(n)       on a table: n units each time the table is applied,
 *                  hit or miss;
 *   @cost(n)       on an action: n units each time the action runs (from a
 *                  table or called directly).
 *
 * Anything without an annotation costs 0. @cost and @base_cost anywhere
 * else are errors. The fairness meters and the fetch scheduler use these
 * units, so they should reflect what the work really costs the device.
 */

/* ------------------------------------------------------------------ */
/* Core declarations                                                   */
/* ------------------------------------------------------------------ */

/* Parser errors; the device records why a packet was rejected in
 * standard_metadata_t.parser_error (as a number, in this order). */
error {
    NoError,
    PacketTooShort,
    NoMatch,
    StackOutOfBounds,
    HeaderTooShort,
    ParserTimeout
}

/* How a table key field matches:
 *   exact    the whole value;
 *   ternary  value and mask (entries are tried in priority order);
 *   lpm      longest prefix (at most one lpm field per table). */
match_kind {
    exact,
    ternary,
    lpm
}

/* The packet being parsed. `extract` copies the next bytes of the packet
 * into a header and makes it valid; a packet too short for the header is
 * rejected (PacketTooShort). */
extern packet_in {
    void extract<T>(out T hdr);
}

/* The packet being rebuilt. `emit` appends a header if it is valid (an
 * invalid header is skipped); the rest of the payload follows. */
extern packet_out {
    void emit<T>(in T hdr);
}

/* ------------------------------------------------------------------ */
/* Standard metadata                                                   */
/* ------------------------------------------------------------------ */
/*
 * What the device tells the program about a packet and what the program
 * tells the device to do with it. The fields, their order and widths are
 * fixed (the compiler checks them against the device's).
 */
struct standard_metadata_t {
    /* The LIF that sent the packet; 0xffff for a frame from the wire
     * (the uplink). Set by the device; read-only. */
    bit<16> ingress_lif;
    /* Set to deliver the packet to a LIF; 0xffff (the initial value)
     * means none. */
    bit<16> egress_lif;
    /* Set to 1 to send the packet out of the uplink (to the wire). */
    bit<1>  to_uplink;
    /* Set to 1 to flood: deliver to every LIF but the sender, and to the
     * uplink too when a LIF sent the packet. */
    bit<1>  flood;
    /* Set to 1 to drop the packet (mark_to_drop does this). A dropped
     * packet goes nowhere whatever else is set. */
    bit<1>  drop;
    /* Extra passes through the whole pipeline before delivery, 0..7 (as
     * tunnel processing needs); every pass is charged again. */
    bit<8>  recirculate;
    /* The packet's length in bytes. Set by the device; read-only. */
    bit<32> packet_length;
    /* The error (number of a member of `error`) that made the parser
     * reject the packet, 0 (NoError) otherwise. Set by the device;
     * read-only. */
    bit<8>  parser_error;
}

/* ------------------------------------------------------------------ */
/* The CPU port                                                        */
/* ------------------------------------------------------------------ */
/*
 * The controller (a P4Runtime client of nicdrv) is reached through the
 * CPU port. A program sends a packet there by setting
 *
 *     std.egress_lif = LIF_CPU;
 *
 * The device queues it for the PF, which hands it to the controller as a
 * PacketIn carrying the packet_in header's fields (the LIF that sent it;
 * 0xffff from the wire). A controller's PacketOut carries the packet_out
 * header's fields: the LIF whose RX rings receive the frame, or 0xffff
 * for the uplink; the device delivers it there without running the
 * pipeline. The device adds and strips these fields itself: a program
 * neither parses nor emits them, and the headers below only name them
 * for the controller (P4Info's controller_packet_metadata).
 */
const bit<16> LIF_CPU = 0xfffe;

@controller_header("packet_in")
header packet_in_header_t {
    bit<16> ingress_lif;
}

@controller_header("packet_out")
header packet_out_header_t {
    bit<16> egress_lif;
}

/* Drop the packet (sets std.drop). */
extern void mark_to_drop(inout standard_metadata_t std);

/* The action that does nothing: the usual default action of a table. */
action NoAction() {}

/* ------------------------------------------------------------------ */
/* Meters and counters                                                 */
/* ------------------------------------------------------------------ */

/* What a meter measures. */
enum MeterType {
    packets,
    bytes
}

/* What a counter counts. */
enum CounterType {
    packets,
    bytes,
    packets_and_bytes
}

/* An array of `size` meters (two-rate three-color markers configured by
 * the control plane). `execute_meter` runs meter `index` (0..size-1) for
 * this packet and writes its color to `result`: 0 green, 1 yellow, 2 red
 * (so `result` needs at least 2 bits). Declared inside the ingress
 * control:
 *
 *     meter(4096, MeterType.packets) lif_packets;
 */
extern meter {
    meter(bit<32> size, MeterType type);
    void execute_meter<T>(in bit<32> index, out T result);
}

/* An array of `size` counters, read by the control plane. `count` counts
 * this packet in counter `index` (0..size-1):
 *
 *     counter(4096, CounterType.packets_and_bytes) lif_in;
 */
extern counter {
    counter(bit<32> size, CounterType type);
    void count(in bit<32> index);
}

/* A counter with one cell per entry of the table that names it in its
 * `counters` property: every hit counts the packet (packets and bytes) in
 * the cell of the entry that matched; a miss counts nothing. A new entry's
 * cell starts at zero. `count()` in an action of the table may be written
 * (as in v1model) and does nothing more. Read by the control plane with
 * the entry (P4Runtime's DirectCounterEntry):
 *
 *     direct_counter(CounterType.packets_and_bytes) acl_hits;
 *     table acl { ... counters = acl_hits; }
 */
extern direct_counter {
    direct_counter(CounterType type);
    void count();
}

/* A meter with one cell per entry of the table that names it in its
 * `meters` property, configured by the control plane with the entry
 * (P4Runtime's DirectMeterEntry; a new entry's meter is off: green).
 * `read` in an action of that table runs the matched entry's meter for
 * this packet and writes its color: 0 green, 1 yellow, 2 red. Run as the
 * table's default action on a miss, it writes 0 and runs no meter. Only
 * the table's actions may read it, and no statement calls them directly.
 *
 *     direct_meter<bit<2>>(MeterType.bytes) flow_rate;
 *     action police() { flow_rate.read(meta.color); }
 *     table flows { ... actions = { police; } meters = flow_rate; }
 */
extern direct_meter<T> {
    direct_meter(MeterType type);
    void read(out T result);
}

/* ------------------------------------------------------------------ */
/* The pipeline                                                        */
/* ------------------------------------------------------------------ */
/*
 * H is the program's headers struct: its members (all headers) are the
 * header instances, in order. M is the program's metadata struct: bit<N>
 * (N <= 64) and bool fields, zero when a packet enters the pipeline.
 */

/* Starts in state `start`; `accept` ends parsing, `reject` drops the
 * packet (counted as a parser drop). States may assign metadata. */
parser FairnicParser<H, M>(packet_in pkt,
                           out H hdr,
                           inout M meta,
                           inout standard_metadata_t std);

/* The forwarding decision: tables, actions, meters, counters. */
control FairnicIngress<H, M>(inout H hdr,
                             inout M meta,
                             inout standard_metadata_t std);

/* Emits headers, in order: only `pkt.emit(hdr.x);` statements. */
control FairnicDeparser<H>(packet_out pkt, in H hdr);

package FairnicPipeline<H, M>(FairnicParser<H, M> p,
                              FairnicIngress<H, M> ig,
                              FairnicDeparser<H> dp);
