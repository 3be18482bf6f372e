/* Loops over DPDK's rte_ring for fairnic's ring benchmark.
 *
 * The whole producer/consumer loops live here, in C, so that rte_ring's
 * static-inline enqueue/dequeue are inlined and specialised exactly as in a
 * DPDK application; Rust only starts the threads and reads the clock. The
 * Rust loops for fairnic's ring and crossbeam's ArrayQueue do the same work
 * per element (write a counter value, check it on the other side).
 *
 * rte_ring_init() on memory from aligned_alloc() needs no EAL: the ring is
 * plain memory, like ours. */
#include <stdint.h>
#include <stdlib.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_pause.h>

#define MAX_BULK 64

struct rte_ring *fnic_rte_ring_new(unsigned count, unsigned esize)
{
	ssize_t sz = rte_ring_get_memsize_elem(esize, count);
	if (sz < 0)
		return NULL;
	size_t len = ((size_t)sz + RTE_CACHE_LINE_SIZE - 1) & ~((size_t)RTE_CACHE_LINE_SIZE - 1);
	struct rte_ring *r = aligned_alloc(RTE_CACHE_LINE_SIZE, len);
	if (r == NULL)
		return NULL;
	if (rte_ring_init(r, "fairnic-bench", count, RING_F_SP_ENQ | RING_F_SC_DEQ) != 0) {
		free(r);
		return NULL;
	}
	return r;
}

void fnic_rte_ring_free(struct rte_ring *r)
{
	free(r);
}

/* esize is a compile-time constant in each instance, as in real code. */
#define DEFINE_LOOPS(ES, WORDS)                                                          \
	uint64_t fnic_rte_ring_produce_##ES(struct rte_ring *r, uint64_t n, unsigned bulk)   \
	{                                                                                    \
		uint64_t buf[MAX_BULK * WORDS];                                                  \
		uint64_t next = 0, full = 0;                                                     \
		if (bulk > MAX_BULK)                                                             \
			return UINT64_MAX;                                                           \
		while (next < n) {                                                               \
			for (unsigned i = 0; i < bulk; i++)                                          \
				buf[i * WORDS] = next + i;                                               \
			while (rte_ring_enqueue_bulk_elem(r, buf, ES, bulk, NULL) == 0) {            \
				full++;                                                                  \
				rte_pause();                                                             \
			}                                                                            \
			next += bulk;                                                                \
		}                                                                                \
		return full;                                                                     \
	}                                                                                    \
	uint64_t fnic_rte_ring_consume_##ES(struct rte_ring *r, uint64_t n, unsigned bulk)   \
	{                                                                                    \
		uint64_t buf[MAX_BULK * WORDS];                                                  \
		uint64_t expect = 0, errors = 0;                                                 \
		if (bulk > MAX_BULK)                                                             \
			return UINT64_MAX;                                                           \
		while (expect < n) {                                                             \
			while (rte_ring_dequeue_bulk_elem(r, buf, ES, bulk, NULL) == 0)              \
				rte_pause();                                                             \
			for (unsigned i = 0; i < bulk; i++)                                          \
				errors += buf[i * WORDS] != expect + i;                                  \
			expect += bulk;                                                              \
		}                                                                                \
		return errors;                                                                   \
	}                                                                                    \
	uint64_t fnic_rte_ring_pingpong_##ES(struct rte_ring *r, uint64_t iters, unsigned bulk) \
	{                                                                                    \
		uint64_t in[MAX_BULK * WORDS] = {0}, out[MAX_BULK * WORDS];                      \
		uint64_t errors = 0;                                                             \
		if (bulk > MAX_BULK)                                                             \
			return UINT64_MAX;                                                           \
		for (uint64_t it = 0; it < iters; it++) {                                        \
			in[0] = it;                                                                  \
			errors += rte_ring_enqueue_bulk_elem(r, in, ES, bulk, NULL) != bulk;         \
			errors += rte_ring_dequeue_bulk_elem(r, out, ES, bulk, NULL) != bulk;        \
			errors += out[0] != it;                                                      \
		}                                                                                \
		return errors;                                                                   \
	}

DEFINE_LOOPS(8, 1)
DEFINE_LOOPS(16, 2)
