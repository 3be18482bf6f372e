/* DPDK's SWX pipeline (rte_swx_pipeline, DPDK 22.11) as a peer for
 * fairnic's pipeline benchmark: fairnic_swx.spec, fed from memory through
 * ring ports, driven from one thread. See rte_swx_shim.h for the API.
 *
 * Build mode. DPDK 22.11 builds a pipeline from a .spec file only through
 * code generation: rte_swx_pipeline_codegen() turns the spec into C (every
 * run of non-table instructions becomes one C function), which is compiled
 * into a shared object and loaded with rte_swx_pipeline_build_from_lib()
 * together with an I/O spec naming the ports (22.07's
 * rte_swx_pipeline_build_from_spec() is gone from the API). So fnic_swx_new
 * runs gcc at run time; the generated C includes two headers of DPDK's
 * lib/pipeline/ that Debian does not install (see rte_swx_shim.h).
 *
 * Ports. build_from_lib only knows the I/O spec's port types (ethdev, ring,
 * source, fd; sink), so a custom in-memory port type cannot be used with a
 * generated pipeline: input port N is the single-producer/single-consumer
 * rte_ring RXN (LIF N), output port N the ring TXN. rte_swx_pipeline_build
 * adds one more output port itself, a sink that the `drop` instruction uses
 * and that rte_pktmbuf_free()s what it gets: every working-set mbuf carries
 * an extra reference, so a drop only takes that reference away, and the run
 * loop gives it back (drops are read from the sink's statistics; the bench
 * traffic has none). The working set lives in mbufs from a mempool; the run
 * loop enqueues them on the rings of their sending LIF, runs the pipeline,
 * dequeues what the output rings hold and enqueues it again (bulk, staged per
 * input ring), so the per-frame cost outside the pipeline is one ring slot
 * in, one ring slot out, and one staging store. The pipeline leaves the
 * frame bytes unchanged (headers are extracted in place and emitted back in
 * place), so recycling an mbuf replays the same frame.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* The SWX pipeline API is experimental in DPDK 22.11. */
#ifndef ALLOW_EXPERIMENTAL_API
#define ALLOW_EXPERIMENTAL_API
#endif
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dlfcn.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_meter.h>
#include <rte_ring.h>
#include <rte_swx_ctl.h>
#include <rte_swx_pipeline.h>

#include "rte_swx_shim.h"

/* Ring capacity (power of 2; holds the whole working set). */
#define RING_SIZE 16384u
/* Ring port burst sizes (reader dequeue, writer enqueue). */
#define PORT_BSZ 32u
/* Pipeline instructions (instruction groups once generated) per
 * rte_swx_pipeline_run() call in the run loop. */
#define RUN_CHUNK_DEFAULT 1024u
/* Output-ring dequeue burst. */
#define DRAIN_BURST 256u
/* Passes without output before the run loop gives up. */
#define IDLE_PASSES_MAX 1000000u

struct fnic_swx {
	struct rte_swx_pipeline *p;
	struct rte_swx_ctl_pipeline *ctl;
	uint32_t id;
	uint32_t lifs;
	uint32_t n_in;  /* input ports: lifs rounded up to a power of 2 */
	uint32_t n_out; /* output ring ports: lifs (the pipeline adds the drop port) */
	uint64_t drop_seen; /* drop port packets accounted for */
	uint32_t chunk;
	struct rte_ring **in;
	struct rte_ring **out;
	struct rte_mempool *pool;
	struct rte_mbuf **ws;
	uint32_t n_ws;
	uint64_t *left; /* per working-set frame: passes still to run */
	struct rte_mbuf ***stage; /* per input port, FNIC_SWX_MAX_FRAMES each */
	uint32_t *stage_n;
	uint64_t dropped;
	int last_error;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * EAL: once per process.
 */
static pthread_mutex_t eal_lock = PTHREAD_MUTEX_INITIALIZER;
static int eal_status = 1; /* 1: not tried, 0: up, < 0: failed */
static char eal_msg[256];

static int eal_up(char *err, size_t errlen)
{
	cpu_set_t orig;
	int have_orig, lcore = -1, n = 0, rc;
	char lcore_arg[16];
	const char *env;
	char *argv[16];

	pthread_mutex_lock(&eal_lock);
	if (eal_status <= 0) {
		rc = eal_status;
		if (rc)
			set_err(err, errlen, "%s", eal_msg);
		pthread_mutex_unlock(&eal_lock);
		return rc;
	}

	have_orig = pthread_getaffinity_np(pthread_self(), sizeof(orig), &orig) == 0;
	env = getenv("FNIC_SWX_LCORE");
	if (env && *env) {
		char *end;
		long v = strtol(env, &end, 10);

		if (*end || v < 0 || v >= CPU_SETSIZE) {
			eal_status = -EINVAL;
			snprintf(eal_msg, sizeof(eal_msg), "FNIC_SWX_LCORE=%s: not a CPU number", env);
			goto out;
		}
		lcore = (int)v;
	} else if (have_orig) {
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &orig)) {
				lcore = c;
				break;
			}
	}
	if (lcore < 0)
		lcore = 0;
	snprintf(lcore_arg, sizeof(lcore_arg), "%d", lcore);

	/* No hugepages (malloc'd memory), no PCI scan, no shared config or
	 * multi-process socket (nothing in /var/run; --in-memory cannot go
	 * with --no-huge), no telemetry socket, one lcore (the calling
	 * thread's CPU), errors only. */
	argv[n++] = "fnic_swx";
	argv[n++] = "--no-huge";
	argv[n++] = "--no-pci";
	argv[n++] = "--no-shconf";
	argv[n++] = "--no-telemetry";
	argv[n++] = "-m";
	argv[n++] = "512";
	argv[n++] = "-l";
	argv[n++] = lcore_arg;
	argv[n++] = "--log-level=error";
	argv[n++] = "--log-level=*:error";
	argv[n] = NULL;

	rc = rte_eal_init(n, argv);
	if (rc < 0 && rte_errno != EALREADY) {
		eal_status = rte_errno > 0 ? -rte_errno : -EIO;
		snprintf(eal_msg, sizeof(eal_msg),
			 "rte_eal_init(--no-huge --no-pci --no-shconf --no-telemetry -m 512 -l %d) failed: %s",
			 lcore, rte_strerror(rte_errno));
		goto out;
	}
	eal_status = 0;
	/* rte_eal_init pinned this thread to the lcore: give it back its
	 * affinity (the caller pins it as it likes). */
	if (have_orig)
		pthread_setaffinity_np(pthread_self(), sizeof(orig), &orig);

out:
	rc = eal_status;
	if (rc)
		set_err(err, errlen, "%s", eal_msg);
	pthread_mutex_unlock(&eal_lock);
	return rc;
}

/*
 * Build: codegen, gcc, build_from_lib.
 */
static atomic_uint next_id;

static int file_readable(const char *path)
{
	return access(path, R_OK) == 0;
}

static int has_quote(const char *s)
{
	return strchr(s, '\'') != NULL;
}

/* Directory of the DPDK internal pipeline headers. */
static int internal_include_dir(const char *spec_path, char *dir, size_t len, char *err, size_t errlen)
{
	const char *env = getenv("FNIC_SWX_DPDK_INTERNAL_INCLUDE");
	char hdr[PATH_MAX + 64];

	if (env && *env) {
		if ((size_t)snprintf(dir, len, "%s", env) >= len)
			goto toolong;
	} else {
		const char *slash = strrchr(spec_path, '/');
		size_t dlen = slash ? (size_t)(slash - spec_path) : 1;
		const char *base = slash ? spec_path : ".";

		if ((size_t)snprintf(dir, len, "%.*s/dpdk-internal", (int)dlen, base) >= len)
			goto toolong;
	}
	snprintf(hdr, sizeof(hdr), "%s/rte_swx_pipeline_internal.h", dir);
	if (!file_readable(hdr)) {
		set_err(err, errlen,
			"%s not found: the generated pipeline C needs DPDK 22.11's lib/pipeline/"
			"rte_swx_pipeline_internal.h and rte_swx_pipeline_spec.h (not installed by "
			"libdpdk-dev); set FNIC_SWX_DPDK_INTERNAL_INCLUDE to their directory",
			hdr);
		return -ENOENT;
	}
	snprintf(hdr, sizeof(hdr), "%s/rte_swx_pipeline_spec.h", dir);
	if (!file_readable(hdr)) {
		set_err(err, errlen, "%s not found (set FNIC_SWX_DPDK_INTERNAL_INCLUDE)", hdr);
		return -ENOENT;
	}
	return 0;
toolong:
	set_err(err, errlen, "include directory path too long");
	return -ENAMETOOLONG;
}

static int codegen(const char *spec_path, const char *c_path, char *err, size_t errlen)
{
	FILE *spec, *code;
	uint32_t line = 0;
	const char *msg = NULL;
	int rc;

	spec = fopen(spec_path, "r");
	if (!spec) {
		rc = -errno;
		set_err(err, errlen, "cannot open spec %s: %s", spec_path, strerror(errno));
		return rc;
	}
	code = fopen(c_path, "w");
	if (!code) {
		rc = -errno;
		set_err(err, errlen, "cannot create %s: %s", c_path, strerror(errno));
		fclose(spec);
		return rc;
	}
	rc = rte_swx_pipeline_codegen(spec, code, &line, &msg);
	fclose(spec);
	if (fclose(code) != 0 && rc == 0) {
		rc = -EIO;
		msg = "writing the generated C failed";
	}
	if (rc) {
		set_err(err, errlen, "rte_swx_pipeline_codegen(%s): %s (spec line %u, status %d)", spec_path,
			msg ? msg : "error", line, rc);
		return rc < 0 ? rc : -EINVAL;
	}
	return 0;
}

static int compile(const char *inc, const char *c_path, const char *so_path, const char *log_path, char *err,
		   size_t errlen)
{
	const char *cc = getenv("FNIC_SWX_CC");
	const char *extra = getenv("FNIC_SWX_EXTRA_CFLAGS");
	char cmd[4 * PATH_MAX + 1024];
	int st;

	if (!cc || !*cc)
		cc = "gcc";
	if (!extra)
		extra = "";
	if (strlen(extra) > 256 || strpbrk(extra, "'\"`$;&|<>\\")) {
		set_err(err, errlen, "FNIC_SWX_EXTRA_CFLAGS: at most 256 characters, no shell metacharacters");
		return -EINVAL;
	}
	if (has_quote(inc) || has_quote(c_path) || has_quote(so_path) || has_quote(log_path) || has_quote(cc)) {
		set_err(err, errlen, "paths must not contain a single quote");
		return -EINVAL;
	}
	if ((size_t)snprintf(cmd, sizeof(cmd),
			     "'%s' -O3 -fPIC -shared -DALLOW_EXPERIMENTAL_API -Wno-deprecated-declarations "
			     "$(pkg-config --cflags libdpdk) %s -I'%s' -o '%s' '%s' >'%s' 2>&1",
			     cc, extra, inc, so_path, c_path, log_path) >= sizeof(cmd)) {
		set_err(err, errlen, "compiler command too long");
		return -ENAMETOOLONG;
	}
	st = system(cmd);
	if (st == -1) {
		set_err(err, errlen, "cannot run the compiler: %s", strerror(errno));
		return -ECHILD;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char log[512] = "";
		FILE *f = fopen(log_path, "r");

		if (f) {
			size_t n = fread(log, 1, sizeof(log) - 1, f);

			log[n] = 0;
			fclose(f);
		}
		set_err(err, errlen, "compiling the generated pipeline failed (%s, status %d): %s", cc,
			WIFEXITED(st) ? WEXITSTATUS(st) : -1, log);
		return -ENOEXEC;
	}
	return 0;
}

static int make_iospec(struct fnic_swx *s, char **buf, size_t *len)
{
	FILE *f = open_memstream(buf, len);
	int ok = 1;

	if (!f)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->n_in; i++)
		ok &= fprintf(f, "port in %u ring %s bsz %u\n", i, s->in[i]->name, PORT_BSZ) > 0;
	for (uint32_t i = 0; i < s->n_out; i++)
		ok &= fprintf(f, "port out %u ring %s bsz %u\n", i, s->out[i]->name, PORT_BSZ) > 0;
	if (fclose(f) != 0 || !ok) {
		free(*buf);
		*buf = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int build(struct fnic_swx *s, const char *spec_path, char *err, size_t errlen)
{
	char inc[PATH_MAX], dir[] = "/tmp/fnic_swx.XXXXXX";
	char c_path[PATH_MAX], so_path[PATH_MAX], log_path[PATH_MAX], name[32];
	const char *keep = getenv("FNIC_SWX_KEEP_TMP");
	char *io = NULL;
	size_t io_len = 0;
	FILE *iof = NULL;
	int rc;

	rc = internal_include_dir(spec_path, inc, sizeof(inc), err, errlen);
	if (rc)
		return rc;
	if (!mkdtemp(dir)) {
		rc = -errno;
		set_err(err, errlen, "mkdtemp(/tmp/fnic_swx.XXXXXX): %s", strerror(errno));
		return rc;
	}
	snprintf(c_path, sizeof(c_path), "%s/pipeline.c", dir);
	snprintf(so_path, sizeof(so_path), "%s/pipeline.so", dir);
	snprintf(log_path, sizeof(log_path), "%s/cc.log", dir);

	rc = codegen(spec_path, c_path, err, errlen);
	if (rc)
		goto out;
	rc = compile(inc, c_path, so_path, log_path, err, errlen);
	if (rc)
		goto out;
	rc = make_iospec(s, &io, &io_len);
	if (rc) {
		set_err(err, errlen, "I/O spec: out of memory");
		goto out;
	}
	iof = fmemopen(io, io_len, "r");
	if (!iof) {
		rc = -errno;
		set_err(err, errlen, "fmemopen: %s", strerror(errno));
		goto out;
	}
	snprintf(name, sizeof(name), "fnic_swx%u", s->id);
	dlerror();
	rc = rte_swx_pipeline_build_from_lib(&s->p, name, so_path, iof, 0);
	if (rc) {
		const char *dl = dlerror();

		s->p = NULL;
		set_err(err, errlen, "rte_swx_pipeline_build_from_lib(%s): %s%s%s", so_path, strerror(-rc),
			dl ? ": " : "", dl ? dl : "");
		goto out;
	}
out:
	if (iof)
		fclose(iof);
	free(io);
	if (!(keep && !strcmp(keep, "1"))) {
		unlink(c_path);
		unlink(so_path); /* dlopen keeps its mapping */
		unlink(log_path);
		rmdir(dir);
	}
	return rc;
}

/*
 * Control: l2_fwd entries, meters.
 */
static void entry_free(struct rte_swx_table_entry *e)
{
	/* rte_swx_ctl's own table_entry_free is not exported: same fields. */
	if (!e)
		return;
	free(e->key);
	free(e->key_mask);
	free(e->action_data);
	free(e);
}

static int fill_l2_fwd(struct fnic_swx *s, char *err, size_t errlen)
{
	char line[128];
	int rc;

	for (uint32_t lif = 0; lif < s->lifs; lif++) {
		struct rte_swx_table_entry *e;
		int blank = 0;

		snprintf(line, sizeof(line), "match 0x02f41c00%02x%02x action to_lif lif %u", (lif >> 8) & 0xff,
			 lif & 0xff, lif);
		e = rte_swx_ctl_pipeline_table_entry_read(s->ctl, "l2_fwd", line, &blank);
		if (!e) {
			set_err(err, errlen, "l2_fwd entry \"%s\" does not parse", line);
			rte_swx_ctl_pipeline_abort(s->ctl);
			return -EINVAL;
		}
		rc = rte_swx_ctl_pipeline_table_entry_add(s->ctl, "l2_fwd", e);
		entry_free(e);
		if (rc) {
			set_err(err, errlen, "l2_fwd entry add (lif %u): %s", lif, strerror(-rc));
			rte_swx_ctl_pipeline_abort(s->ctl);
			return rc;
		}
	}
	rc = rte_swx_ctl_pipeline_commit(s->ctl, 1);
	if (rc) {
		set_err(err, errlen, "l2_fwd commit: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

static int set_meters(struct fnic_swx *s, char *err, size_t errlen)
{
	/* 100 GB/s (or 100 G packets/s) committed and peak, 1 GB bursts: every
	 * frame is green. */
	struct rte_meter_trtcm_params green = {
		.cir = 100000000000ull,
		.pir = 100000000000ull,
		.cbs = 1ull << 30,
		.pbs = 1ull << 30,
	};
	const char *arrays[] = {"lif_packets", "lif_bytes"};
	struct rte_swx_ctl_pipeline_info info;
	int rc, found = 0;

	rc = rte_swx_ctl_meter_profile_add(s->p, "fnic_green", &green);
	if (rc) {
		set_err(err, errlen, "meter profile: %s", strerror(-rc));
		return rc;
	}
	rc = rte_swx_ctl_pipeline_info_get(s->p, &info);
	if (rc) {
		set_err(err, errlen, "pipeline info: %s", strerror(-rc));
		return rc;
	}
	for (uint32_t a = 0; a < info.n_metarrays; a++) {
		struct rte_swx_ctl_metarray_info mi;

		rc = rte_swx_ctl_metarray_info_get(s->p, a, &mi);
		if (rc) {
			set_err(err, errlen, "meter array info %u: %s", a, strerror(-rc));
			return rc;
		}
		if (strcmp(mi.name, arrays[0]) && strcmp(mi.name, arrays[1]))
			continue;
		found++;
		for (uint32_t i = 0; i < mi.size; i++) {
			rc = rte_swx_ctl_meter_set(s->p, mi.name, i, "fnic_green");
			if (rc) {
				set_err(err, errlen, "meter %s[%u]: %s", mi.name, i, strerror(-rc));
				return rc;
			}
		}
	}
	if (found != 2) {
		set_err(err, errlen, "the spec lacks metarray lif_packets or lif_bytes");
		return -EINVAL;
	}
	return 0;
}

/*
 * Setup and teardown.
 */
struct fnic_swx *fnic_swx_new(const char *spec_path, uint32_t lifs, char *err, size_t errlen)
{
	struct fnic_swx *s;
	char name[RTE_RING_NAMESIZE];
	int rc;

	if (err && errlen)
		err[0] = 0;
	if (!spec_path || !*spec_path) {
		set_err(err, errlen, "no spec path");
		return NULL;
	}
	if (lifs == 0 || lifs > FNIC_SWX_MAX_LIFS) {
		set_err(err, errlen, "lifs must be 1..%u", FNIC_SWX_MAX_LIFS);
		return NULL;
	}
	if (!file_readable(spec_path)) {
		set_err(err, errlen, "cannot read spec %s: %s", spec_path, strerror(errno));
		return NULL;
	}
	if (eal_up(err, errlen))
		return NULL;

	s = calloc(1, sizeof(*s));
	if (!s) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	s->id = atomic_fetch_add(&next_id, 1);
	s->lifs = lifs;
	s->n_in = rte_align32pow2(lifs);
	s->n_out = lifs;
	s->chunk = RUN_CHUNK_DEFAULT;
	{
		const char *env = getenv("FNIC_SWX_RUN_CHUNK");

		if (env && *env) {
			unsigned long v = strtoul(env, NULL, 0);

			if (v > 0 && v < (1ul << 24))
				s->chunk = (uint32_t)v;
		}
	}
	s->in = calloc(s->n_in, sizeof(*s->in));
	s->out = calloc(s->n_out, sizeof(*s->out));
	s->stage = calloc(s->n_in, sizeof(*s->stage));
	s->stage_n = calloc(s->n_in, sizeof(*s->stage_n));
	s->ws = calloc(FNIC_SWX_MAX_FRAMES, sizeof(*s->ws));
	s->left = calloc(FNIC_SWX_MAX_FRAMES, sizeof(*s->left));
	if (!s->in || !s->out || !s->stage || !s->stage_n || !s->ws || !s->left) {
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < s->n_in; i++) {
		s->stage[i] = malloc(FNIC_SWX_MAX_FRAMES * sizeof(**s->stage));
		if (!s->stage[i]) {
			set_err(err, errlen, "out of memory");
			goto fail;
		}
	}
	for (uint32_t i = 0; i < s->n_in; i++) {
		snprintf(name, sizeof(name), "fsw%u_rx%u", s->id, i);
		s->in[i] = rte_ring_create(name, RING_SIZE, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (!s->in[i]) {
			set_err(err, errlen, "rte_ring_create(%s): %s", name, rte_strerror(rte_errno));
			goto fail;
		}
	}
	for (uint32_t i = 0; i < s->n_out; i++) {
		snprintf(name, sizeof(name), "fsw%u_tx%u", s->id, i);
		s->out[i] = rte_ring_create(name, RING_SIZE, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (!s->out[i]) {
			set_err(err, errlen, "rte_ring_create(%s): %s", name, rte_strerror(rte_errno));
			goto fail;
		}
	}
	snprintf(name, sizeof(name), "fsw%u_mbufs", s->id);
	s->pool = rte_pktmbuf_pool_create(name, FNIC_SWX_MAX_FRAMES, 0, 0,
					  RTE_PKTMBUF_HEADROOM + FNIC_SWX_MAX_FRAME_LEN, SOCKET_ID_ANY);
	if (!s->pool) {
		set_err(err, errlen, "rte_pktmbuf_pool_create: %s", rte_strerror(rte_errno));
		goto fail;
	}

	rc = build(s, spec_path, err, errlen);
	if (rc)
		goto fail;
	s->ctl = rte_swx_ctl_pipeline_create(s->p);
	if (!s->ctl) {
		set_err(err, errlen, "rte_swx_ctl_pipeline_create failed");
		goto fail;
	}
	if (fill_l2_fwd(s, err, errlen))
		goto fail;
	if (set_meters(s, err, errlen))
		goto fail;
	return s;

fail:
	fnic_swx_free(s);
	return NULL;
}

void fnic_swx_free(struct fnic_swx *s)
{
	if (!s)
		return;
	if (s->ctl)
		rte_swx_ctl_pipeline_free(s->ctl);
	if (s->p) {
		/* The ring readers rte_pktmbuf_free() whatever their last burst
		 * held when freed, though those mbufs are ours: pin every mbuf
		 * so that this only drops a reference, then drop the pool. */
		for (uint32_t i = 0; i < s->n_ws; i++)
			rte_mbuf_refcnt_set(s->ws[i], 1000);
		rte_swx_pipeline_free(s->p);
	}
	rte_mempool_free(s->pool);
	if (s->in)
		for (uint32_t i = 0; i < s->n_in; i++)
			rte_ring_free(s->in[i]);
	if (s->out)
		for (uint32_t i = 0; i < s->n_out; i++)
			rte_ring_free(s->out[i]);
	if (s->stage)
		for (uint32_t i = 0; i < s->n_in; i++)
			free(s->stage[i]);
	free(s->stage);
	free(s->stage_n);
	free(s->in);
	free(s->out);
	free(s->ws);
	free(s->left);
	free(s);
}

/*
 * Working set.
 */
int fnic_swx_load(struct fnic_swx *s, const uint8_t *frames, const uint32_t *lens, const uint16_t *in_lif,
		  uint32_t n)
{
	struct rte_mbuf **m;
	size_t off = 0;

	if (!s || !frames || !lens || !in_lif || n == 0 || n > FNIC_SWX_MAX_FRAMES)
		return s ? (s->last_error = -EINVAL) : -EINVAL;
	for (uint32_t i = 0; i < n; i++)
		if (lens[i] == 0 || lens[i] > FNIC_SWX_MAX_FRAME_LEN || in_lif[i] >= s->lifs)
			return s->last_error = -EINVAL;

	m = calloc(n, sizeof(*m));
	if (!m)
		return s->last_error = -ENOMEM;
	/* Every mbuf is home (not in the pipeline) between calls. */
	if (s->n_ws) {
		for (uint32_t i = 0; i < s->n_ws; i++)
			rte_mbuf_refcnt_set(s->ws[i], 1);
		rte_pktmbuf_free_bulk(s->ws, s->n_ws);
		s->n_ws = 0;
	}
	if (rte_pktmbuf_alloc_bulk(s->pool, m, n) != 0) {
		free(m);
		return s->last_error = -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		char *d = rte_pktmbuf_append(m[i], (uint16_t)lens[i]);

		if (!d) {
			rte_pktmbuf_free_bulk(m, n);
			free(m);
			return s->last_error = -ENOSPC;
		}
		memcpy(d, frames + off, lens[i]);
		off += lens[i];
		m[i]->port = in_lif[i]; /* the sending LIF: its input ring */
		m[i]->hash.usr = i;      /* its working-set index */
		rte_mbuf_refcnt_set(m[i], 2); /* survives the drop port's free */
	}
	memcpy(s->ws, m, n * sizeof(*m));
	s->n_ws = n;
	free(m);
	return 0;
}

/*
 * Run loop.
 */
static inline void stage_push(struct fnic_swx *s, struct rte_mbuf *m)
{
	uint32_t k = m->port;

	s->stage[k][s->stage_n[k]++] = m;
}

/* Packets the pipeline's drop port (the last output port) has taken. */
static uint64_t drop_port_count(struct fnic_swx *s)
{
	struct rte_swx_port_out_stats st;

	memset(&st, 0, sizeof(st));
	rte_swx_ctl_pipeline_port_out_stats_read(s->p, s->n_out, &st);
	return st.n_pkts + st.n_pkts_drop;
}

static inline int stage_flush(struct fnic_swx *s)
{
	for (uint32_t k = 0; k < s->n_in; k++) {
		uint32_t n = s->stage_n[k];

		if (!n)
			continue;
		if (rte_ring_sp_enqueue_bulk(s->in[k], (void **)s->stage[k], n, NULL) != n)
			return -ENOBUFS;
		s->stage_n[k] = 0;
	}
	return 0;
}

/* Push `frames` frames (only working-set frame `only` if only >= 0) and wait
 * for all of them to come out. Frame i of the working set goes through
 * frames / n times, once more if i < frames % n, as when cycling the working
 * set in order; the order inside the pipeline is the order the rings give. */
static int pump(struct fnic_swx *s, uint64_t frames, int64_t only, uint64_t *delivered_out, int32_t *last_port)
{
	struct rte_mbuf *buf[DRAIN_BURST];
	uint64_t returned = 0, delivered = 0, dropped = 0, *left = s->left;
	uint32_t idle = 0, n_ws = s->n_ws;
	int32_t last = -1;
	int rc;

	*delivered_out = 0;
	if (n_ws == 0)
		return -ENODATA;
	if (frames == 0)
		return 0;
	if (only >= 0) {
		frames = 1;
		memset(left, 0, n_ws * sizeof(*left));
		stage_push(s, s->ws[only]);
	} else {
		uint64_t q = frames / n_ws, r = frames % n_ws;

		for (uint32_t i = 0; i < n_ws; i++) {
			uint64_t times = q + (i < r);

			left[i] = times ? times - 1 : 0;
			if (times)
				stage_push(s, s->ws[i]);
		}
	}
	rc = stage_flush(s);
	if (rc)
		return rc;

	while (returned < frames) {
		uint64_t got = 0;

		rte_swx_pipeline_run(s->p, s->chunk);
		rte_swx_pipeline_flush(s->p);
		for (uint32_t j = 0; j < s->n_out; j++) {
			unsigned n;

			do {
				n = rte_ring_sc_dequeue_burst(s->out[j], (void **)buf, DRAIN_BURST, NULL);
				if (!n)
					break;
				got += n;
				if (j < s->lifs) {
					delivered += n;
					last = (int32_t)j;
				} else {
					dropped += n;
					last = -1;
				}
				for (unsigned k = 0; k < n; k++) {
					struct rte_mbuf *m = buf[k];
					uint32_t idx = m->hash.usr;

					if (left[idx]) {
						left[idx]--;
						stage_push(s, m);
					}
				}
			} while (n == DRAIN_BURST);
		}
		if (unlikely(drop_port_count(s) != s->drop_seen)) {
			/* Dropped mbufs lost their extra reference: find them,
			 * give it back, and count them as out (dropped). */
			uint64_t now = drop_port_count(s);

			for (uint32_t i = 0; i < n_ws; i++) {
				struct rte_mbuf *m = s->ws[i];

				if (rte_mbuf_refcnt_read(m) != 1)
					continue;
				rte_mbuf_refcnt_set(m, 2);
				got++;
				dropped++;
				last = -1;
				if (left[i]) {
					left[i]--;
					stage_push(s, m);
				}
			}
			s->drop_seen = now;
		}
		if (got) {
			returned += got;
			idle = 0;
			rc = stage_flush(s);
			if (rc)
				return rc;
		} else if (++idle > IDLE_PASSES_MAX) {
			return -ETIMEDOUT; /* frames lost in the pipeline */
		}
	}
	s->dropped += dropped;
	*delivered_out = delivered;
	if (last_port)
		*last_port = last;
	return 0;
}

uint64_t fnic_swx_run(struct fnic_swx *s, uint64_t frames)
{
	uint64_t delivered = 0;
	int rc;

	if (!s)
		return 0;
	rc = pump(s, frames, -1, &delivered, NULL);
	if (rc) {
		s->last_error = rc;
		return 0;
	}
	return delivered;
}

static int read_colors(struct fnic_swx *s, const char *name, uint64_t v[4])
{
	for (uint32_t c = 0; c < 4; c++) {
		int rc = rte_swx_ctl_pipeline_regarray_read(s->p, name, c, &v[c]);

		if (rc)
			return rc;
	}
	return 0;
}

static uint32_t grown(const uint64_t a[4], const uint64_t b[4])
{
	for (uint32_t c = 0; c < 4; c++)
		if (b[c] == a[c] + 1)
			return c;
	return UINT32_MAX;
}

int fnic_swx_trace(struct fnic_swx *s, uint32_t i, int32_t *egress, uint32_t *color_packets,
		   uint32_t *color_bytes)
{
	uint64_t pc0[4], pc1[4], bc0[4], bc1[4], delivered = 0;
	int32_t last = -1;
	int rc;

	if (!s || !egress || !color_packets || !color_bytes)
		return -EINVAL;
	if (i >= s->n_ws)
		return s->last_error = -EINVAL;
	rc = read_colors(s, "packet_colors_packets", pc0);
	if (!rc)
		rc = read_colors(s, "byte_colors_packets", bc0);
	if (!rc)
		rc = pump(s, 1, i, &delivered, &last);
	if (!rc)
		rc = read_colors(s, "packet_colors_packets", pc1);
	if (!rc)
		rc = read_colors(s, "byte_colors_packets", bc1);
	if (rc)
		return s->last_error = rc;
	*egress = delivered ? last : -1;
	*color_packets = grown(pc0, pc1);
	*color_bytes = grown(bc0, bc1);
	return 0;
}

int fnic_swx_counter(struct fnic_swx *s, const char *regarray, uint32_t idx, uint64_t *val)
{
	if (!s || !regarray || !val)
		return -EINVAL;
	return rte_swx_ctl_pipeline_regarray_read(s->p, regarray, idx, val);
}

uint64_t fnic_swx_dropped(const struct fnic_swx *s)
{
	return s ? s->dropped : 0;
}

int fnic_swx_last_error(const struct fnic_swx *s)
{
	return s ? s->last_error : -EINVAL;
}
