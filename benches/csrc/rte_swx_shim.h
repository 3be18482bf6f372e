/* C API of rte_swx_shim.c: DPDK's SWX pipeline (rte_swx_pipeline, DPDK
 * 22.11) running fairnic_swx.spec, fed from memory through ring ports, for
 * fairnic's pipeline benchmark. All functions return 0 (or a count) on
 * success and a negative errno on failure; none aborts the process. */
#ifndef FNIC_RTE_SWX_SHIM_H
#define FNIC_RTE_SWX_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct fnic_swx;

/* Largest working set fnic_swx_load accepts, and the largest frame. */
#define FNIC_SWX_MAX_FRAMES 8192u
#define FNIC_SWX_MAX_FRAME_LEN 2048u
/* Largest number of LIFs (input ports are rounded up to a power of 2). */
#define FNIC_SWX_MAX_LIFS 1024u

/* Initialise the EAL (once per process), generate C from the spec with
 * rte_swx_pipeline_codegen, compile it with gcc into a shared object, build
 * the pipeline from it (rte_swx_pipeline_build_from_lib) with `lifs` input
 * ring ports (rounded up to a power of 2) and `lifs` output ring ports (DPDK
 * adds output port `lifs`, a sink, for drops), fill l2_fwd with
 * 02:f4:1c:00:(lif>>8):(lif&0xff) -> to_lif(lif) for lif in 0..lifs, set
 * every meter of lif_packets/lif_bytes to an all-green profile and commit.
 * On failure returns NULL with a message in err.
 *
 * Environment: FNIC_SWX_DPDK_INTERNAL_INCLUDE names the directory holding
 * DPDK 22.11's rte_swx_pipeline_internal.h and rte_swx_pipeline_spec.h
 * (lib/pipeline/ of the DPDK source of the installed version; the generated
 * C includes them and Debian does not install them); default: the
 * `dpdk-internal` directory next to the spec file. FNIC_SWX_CC overrides the
 * compiler (default gcc; pkg-config must find libdpdk). FNIC_SWX_LCORE
 * overrides the EAL lcore (default: the first CPU the calling thread may
 * run on); the calling thread's CPU affinity is restored after rte_eal_init.
 * FNIC_SWX_KEEP_TMP=1 keeps the generated files. */
struct fnic_swx *fnic_swx_new(const char *spec_path, uint32_t lifs, char *err, size_t errlen);

/* Copy the working set into mbufs (once; the timed loop recycles them).
 * Frame i is lens[i] bytes at frames + lens[0] + ... + lens[i-1] (frames
 * packed back to back) and enters on input port (LIF) in_lif[i]. */
int fnic_swx_load(struct fnic_swx *s, const uint8_t *frames, const uint32_t *lens,
		  const uint16_t *in_lif, uint32_t n);

/* Run working-set frame i alone through the pipeline; *egress = the output
 * port (LIF) it left on, -1 if dropped; *color_packets / *color_bytes = the
 * colors (0 green, 1 yellow, 2 red) the two meters gave it, read as the
 * packet_colors_packets / byte_colors_packets register that grew by one
 * (UINT32_MAX if none did). */
int fnic_swx_trace(struct fnic_swx *s, uint32_t i, int32_t *egress, uint32_t *color_packets,
		   uint32_t *color_bytes);

/* The timed loop: push `frames` frames of the working set through the
 * pipeline in this thread, cycling the working set, and wait until every one
 * has come out. Returns the number of frames delivered to LIF output ports
 * (not counting drops); 0 on error (also see fnic_swx_last_error). */
uint64_t fnic_swx_run(struct fnic_swx *s, uint64_t frames);

/* Frames dropped by the pipeline, and the last error (negative errno or 0),
 * since fnic_swx_new. */
uint64_t fnic_swx_dropped(const struct fnic_swx *s);
int fnic_swx_last_error(const struct fnic_swx *s);

/* Read register idx of a register array of the spec (lif_in_packets,
 * lif_in_bytes, lif_out_packets, lif_out_bytes, l3_kind_packets,
 * packet_colors_packets, packet_colors_bytes, byte_colors_packets,
 * byte_colors_bytes). */
int fnic_swx_counter(struct fnic_swx *s, const char *regarray, uint32_t idx, uint64_t *val);

void fnic_swx_free(struct fnic_swx *s);

#ifdef __cplusplus
}
#endif

#endif
