/* Loops over DPDK's rte_meter for fairnic's meter benchmark.
 *
 * The whole loop lives here so rte_meter's static-inline checks inline as
 * in a DPDK application. Profiles are filled with the same token-bucket
 * parameters rte_meter_*_profile_config() computes, but from the TSC rate
 * the caller measured: that function reads rte_get_tsc_hz(), which needs
 * the EAL, and the meters themselves are plain memory. Time is in TSC
 * cycles, as DPDK's meters count it. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <rte_meter.h>

#define TB_PERIOD_MIN 100 /* as RTE_METER_TB_PERIOD_MIN in rte_meter.c */

static void tb_params(uint64_t hz, uint64_t rate, uint64_t *period, uint64_t *bytes_per_period)
{
	double p = (double)hz / (double)rate;
	if (p >= TB_PERIOD_MIN) {
		*bytes_per_period = 1;
		*period = (uint64_t)p;
	} else {
		*bytes_per_period = (uint64_t)ceil(TB_PERIOD_MIN / p);
		*period = (hz * *bytes_per_period) / rate;
	}
}

struct fnic_meters {
	struct rte_meter_srtcm_profile sp;
	struct rte_meter_trtcm_profile tp;
	struct rte_meter_srtcm *sr;
	struct rte_meter_trtcm *tr;
	uint32_t n;
};

struct fnic_meters *fnic_rte_meters_new(uint32_t n, uint64_t hz, uint64_t cir, uint64_t cbs, uint64_t ebs,
					uint64_t pir, uint64_t pbs)
{
	struct fnic_meters *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->n = n;
	m->sp.cbs = cbs;
	m->sp.ebs = ebs;
	tb_params(hz, cir, &m->sp.cir_period, &m->sp.cir_bytes_per_period);
	m->tp.cbs = cbs;
	m->tp.pbs = pbs;
	tb_params(hz, cir, &m->tp.cir_period, &m->tp.cir_bytes_per_period);
	tb_params(hz, pir, &m->tp.pir_period, &m->tp.pir_bytes_per_period);
	m->sr = aligned_alloc(64, ((size_t)n * sizeof(*m->sr) + 63) & ~(size_t)63);
	m->tr = aligned_alloc(64, ((size_t)n * sizeof(*m->tr) + 63) & ~(size_t)63);
	if (m->sr == NULL || m->tr == NULL) {
		free(m->sr);
		free(m->tr);
		free(m);
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++) {
		m->sr[i] = (struct rte_meter_srtcm){ .time = 0, .tc = cbs, .te = ebs };
		m->tr[i] = (struct rte_meter_trtcm){ .time_tc = 0, .time_tp = 0, .tc = cbs, .tp = pbs };
	}
	return m;
}

void fnic_rte_meters_free(struct fnic_meters *m)
{
	if (m == NULL)
		return;
	free(m->sr);
	free(m->tr);
	free(m);
}

/* For each trace entry i: time = t0 + i * step (cycles), check meter lif[i]
 * with len[i]. Returns the sum of colors (green 0, yellow 1, red 2). */
uint64_t fnic_rte_srtcm_run(struct fnic_meters *m, const uint32_t *lif, const uint32_t *len, uint64_t count,
			    uint64_t t0, uint64_t step)
{
	uint64_t acc = 0, t = t0;
	for (uint64_t i = 0; i < count; i++, t += step)
		acc += rte_meter_srtcm_color_blind_check(&m->sr[lif[i]], &m->sp, t, len[i]);
	return acc;
}

uint64_t fnic_rte_trtcm_run(struct fnic_meters *m, const uint32_t *lif, const uint32_t *len, uint64_t count,
			    uint64_t t0, uint64_t step)
{
	uint64_t acc = 0, t = t0;
	for (uint64_t i = 0; i < count; i++, t += step)
		acc += rte_meter_trtcm_color_blind_check(&m->tr[lif[i]], &m->tp, t, len[i]);
	return acc;
}

/* As fnic_rte_srtcm_run, untimed: each check's color into out[i]. */
void fnic_rte_srtcm_colors(struct fnic_meters *m, const uint32_t *lif, const uint32_t *len, uint64_t count,
			   uint64_t t0, uint64_t step, uint8_t *out)
{
	uint64_t t = t0;
	for (uint64_t i = 0; i < count; i++, t += step)
		out[i] = (uint8_t)rte_meter_srtcm_color_blind_check(&m->sr[lif[i]], &m->sp, t, len[i]);
}

/* As fnic_rte_trtcm_run, untimed: each check's color into out[i]. */
void fnic_rte_trtcm_colors(struct fnic_meters *m, const uint32_t *lif, const uint32_t *len, uint64_t count,
			   uint64_t t0, uint64_t step, uint8_t *out)
{
	uint64_t t = t0;
	for (uint64_t i = 0; i < count; i++, t += step)
		out[i] = (uint8_t)rte_meter_trtcm_color_blind_check(&m->tr[lif[i]], &m->tp, t, len[i]);
}
