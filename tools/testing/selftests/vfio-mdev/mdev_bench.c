// SPDX-License-Identifier: GPL-2.0
/*
 * mdev_bench - benchmarks of the mdev core through its sysfs ABI.
 *
 * Not a test: it asserts nothing about speed and is not run by the kselftest
 * runner (TEST_GEN_PROGS_EXTENDED).  scripts/guest/bench.sh runs it on each
 * mdev core in turn and compares the figures.  Every figure is one line
 *
 *	bench <name> core=<core> value=<number> unit=<unit>
 *
 * on stdout; progress and errors go to stderr as "# ..." lines.
 *
 *   mdev_bench [options] cycle
 *	create + remove one mdev in a loop on one parent/type (default mtty,
 *	mtty-1; each cycle frees its instance again, so a small pool does not
 *	limit it).  Reports cycles/s and the mean and median latency of the
 *	create write and of the remove write, separately.
 *
 *   mdev_bench [options] uart
 *	VFIO region accesses of the vendor driver (the mdev core is not on
 *	this path, so this compares mtty implementations: C mtty and the Rust
 *	mtty_rs): one mtty-1 mdev opened through the VFIO group/container path
 *	(as QEMU does, and as mdev_vfio_test does), then 1-byte pread/pwrite on
 *	the device fd against the UART registers of BAR0, COUNT times each:
 *	"scr" writes the scratch register and reads it back, "loop" writes a
 *	byte to THR and reads it back from RBR (mtty's loop-back FIFO), "lsr"
 *	reads the line status register.  Every value read is checked.  Reports
 *	region accesses per second (a pread or a pwrite is one access) of a
 *	loop without clock reads, run as UART_CHUNKS chunks whose median time
 *	counts (so that a burst of load on the host does not), and the median
 *	time of one pair (one read for "lsr") from a second loop that times
 *	every pair.
 *
 *   mdev_bench [options] scale
 *	create N mdevs on one parent/type (default mbochs, mbochs-small: the
 *	only upstream sample whose pool is a module parameter and whose
 *	instances allocate no backing memory up front; load it with
 *	"modprobe mbochs count=<4 * N>", count is its pool in MiB), then
 *	remove them all.  Reports the total and mean/median time of create and
 *	of remove, the latency of the 1st, STEP-th, 2*STEP-th ... N-th create
 *	and remove (single operation, and the median of the WINDOW operations
 *	ending there: the first WINDOW for the 1st), the median cost of a
 *	duplicate create (EEXIST: the core's UUID lookup and nothing else) of
 *	the oldest mdev with 1, STEP, 2*STEP ... N present, reading
 *	available_instances and listing the type's devices directory with 0
 *	and N present, and the memory N mdevs take (MemAvailable,
 *	Slab, Percpu, ... of /proc/meminfo, after dropping caches) and how
 *	much of it is not returned after removing them.
 *
 *   mdev_bench [options] display
 *	the display samples (vendor drivers: compares mdpy with mdpy_rs and
 *	mbochs with mbochs_rs, whichever $MDEV_SAMPLES lists).  fb: an
 *	mdpy-vga mdev opened through the group/container path, its 2 MiB
 *	framebuffer mapped (BAR0), written whole with 64-bit stores COUNT
 *	times (default 200); reports MiB/s of the first pass over a fresh
 *	mapping (fb_write_cold: page faults included, the Rust mdpy inserts
 *	pages at fault time, the C one at mmap time) and the median of the
 *	other passes (fb_write_warm); the last pass is read back and checked.
 *	dmabuf: an mbochs-small mdev, its video memory touched whole, then
 *	for each of 144 page-aligned 640x480 modes (Y offsets 0, 8, ...
 *	1144 lines) the plane query and VFIO_DEVICE_GET_GFX_DMABUF of its new
 *	buffer (an export of 300 pages each time, on both), the descriptor
 *	closed; reports the median latency of the GET (dmabuf_export) and of
 *	the close (dmabuf_close), over COUNT / 144 rounds (reopening the
 *	device between them, default 3).
 *
 * Options:
 *   -c CORE	core label of the output lines (default $MDEV_CORE, "unknown")
 *   -s SAMPLE	parent sample (cycle, uart: the mtty implementation listed in
 *		$MDEV_SAMPLES, mtty or mtty_rs, default mtty; scale: mbochs)
 *   -t TYPE	type id (cycle, uart: mtty-1, scale: mbochs-small)
 *   -n COUNT	cycle: number of cycles (default 2000); scale: N (10000);
 *		uart: accesses (pairs) per register loop (500000)
 *   -d SECONDS	cycle: run for this long instead of COUNT cycles
 *   -k STEP	scale: checkpoint every STEP operations (default N / 10)
 *   -w WINDOW	scale: operations per windowed median (default STEP)
 *   -o ORDER	scale: remove order, fifo (oldest first, default) or lifo
 *
 * Before each timed loop and each memory sample it waits for udevd to handle
 * the uevents so far (udevadm settle, skipped if udevadm is missing); during
 * a loop udevd works concurrently, the same for every core.
 *
 * The upstream C core keeps its mdevs on a list with the newest first and
 * scans it for duplicates on create and for the device on remove, so fifo
 * removal and the duplicate create of the oldest mdev are its worst case.
 *
 * Exit status: 0, 1 on a failure, 4 (KSFT_SKIP) when the parent is missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/serial_reg.h>
#include <linux/vfio.h>

#include "mdev_common.h"

#define KSFT_SKIP	4
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static const char *core = "unknown";

struct opts {
	const char *sample;
	const char *type;
	long count;
	double duration;
	long step;
	long window;
	bool lifo;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void report(const char *name, double value, const char *unit)
{
	printf("bench %s core=%s value=%.3f unit=%s\n", name, core, value, unit);
	fflush(stdout);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double mean_ns(const uint64_t *v, long n)
{
	double sum = 0;
	long i;

	for (i = 0; i < n; i++)
		sum += v[i];
	return n ? sum / n : 0;
}

/* Median of v[0..n), v unchanged */
static double median_ns(const uint64_t *v, long n)
{
	uint64_t *s;
	double m;

	if (n <= 0)
		return 0;
	s = malloc(n * sizeof(*s));
	if (!s)
		return 0;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_u64);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
	free(s);
	return m;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "# out of memory\n");
		exit(1);
	}
	/* touched now, so that it does not count as mdev memory later */
	memset(p, 0, n * size);
	return p;
}

/*
 * Wait until udevd (if it runs) has handled every uevent so far, so that
 * its work on earlier events is neither timed nor sampled as memory.
 */
static void udev_settle(void)
{
	static const char *const argv[] = {
		"udevadm", "settle", "--timeout=600", NULL
	};
	static bool missing;

	if (!missing && mdev_run(argv) == 127)
		missing = true;
}

static const struct mdev_sample_desc *
find_parent(const char *sample, const char *type)
{
	const struct mdev_sample_desc *s = mdev_sample_find(sample);
	char path[MDEV_PATH_MAX];

	if (!s) {
		fprintf(stderr, "# unknown sample %s\n", sample);
		exit(1);
	}
	mdev_type_path(path, sizeof(path), s, type, "create");
	if (!mdev_exists(path)) {
		fprintf(stderr, "# %s missing: load %s\n", path, s->module);
		exit(KSFT_SKIP);
	}
	return s;
}

static int gen_uuid(char *uuid)
{
	int ret = mdev_uuid_gen(uuid);

	if (ret)
		fprintf(stderr, "# uuid: %s\n", strerror(-ret));
	return ret;
}

/* cycle: create + remove, one mdev at a time */
static int bench_cycle(const struct opts *o)
{
	const struct mdev_sample_desc *s = find_parent(o->sample, o->type);
	long cap = o->duration > 0 ? 4096 : o->count, n = 0, i, warmup;
	uint64_t *c_ns, *r_ns, start, end, limit;
	char uuid[MDEV_UUID_LEN + 1];
	int ret;

	c_ns = xcalloc(cap, sizeof(*c_ns));
	r_ns = xcalloc(cap, sizeof(*r_ns));
	limit = o->duration > 0 ? (uint64_t)(o->duration * 1e9) : 0;

	/* warm the caches and the dentries of the sysfs paths */
	warmup = 20;
	for (i = 0; i < warmup; i++) {
		if (gen_uuid(uuid))
			return 1;
		ret = mdev_create(s, o->type, uuid);
		if (!ret)
			ret = mdev_remove(uuid);
		if (ret) {
			fprintf(stderr, "# warm-up cycle %ld: %s\n", i,
				strerror(-ret));
			return 1;
		}
	}

	udev_settle();
	start = now_ns();
	for (;;) {
		uint64_t t0, t1, t2;

		if (limit ? now_ns() - start >= limit : n >= o->count)
			break;
		if (n == cap) {
			cap *= 2;
			c_ns = realloc(c_ns, cap * sizeof(*c_ns));
			r_ns = realloc(r_ns, cap * sizeof(*r_ns));
			if (!c_ns || !r_ns) {
				fprintf(stderr, "# out of memory\n");
				return 1;
			}
		}
		if (gen_uuid(uuid))
			return 1;
		t0 = now_ns();
		ret = mdev_create(s, o->type, uuid);
		t1 = now_ns();
		if (ret) {
			fprintf(stderr, "# create %ld: %s\n", n, strerror(-ret));
			return 1;
		}
		ret = mdev_remove(uuid);
		t2 = now_ns();
		if (ret) {
			fprintf(stderr, "# remove %ld: %s\n", n, strerror(-ret));
			return 1;
		}
		c_ns[n] = t1 - t0;
		r_ns[n] = t2 - t1;
		n++;
	}
	end = now_ns();

	fprintf(stderr, "# cycle: %ld create+remove of %s in %.3f s\n", n,
		o->type, (end - start) / 1e9);
	report("cycle_rate", n / ((end - start) / 1e9), "cycles/s");
	report("cycle_create_mean", mean_ns(c_ns, n) / 1e3, "us");
	report("cycle_create_median", median_ns(c_ns, n) / 1e3, "us");
	report("cycle_remove_mean", mean_ns(r_ns, n) / 1e3, "us");
	report("cycle_remove_median", median_ns(r_ns, n) / 1e3, "us");
	free(c_ns);
	free(r_ns);
	return 0;
}

/* The kB value of one /proc/meminfo field, -1 if missing */
static long meminfo_kb(const char *field)
{
	char buf[8192], *p;
	size_t len = strlen(field);

	if (mdev_read_file("/proc/meminfo", buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, field, len) && p[len] == ':')
			return strtol(p + len + 1, NULL, 10);
	}
	return -1;
}

/*
 * The /proc/meminfo fields sampled around the scale run.  grows: the field
 * grows with the memory used (Slab); otherwise it shrinks (MemAvailable).
 */
static const struct {
	const char *field;
	const char *name;
	bool grows;
} mem_fields[] = {
	{ "MemAvailable", "memavailable", false },
	{ "MemFree", "memfree", false },
	{ "Slab", "slab", true },
	{ "Shmem", "shmem", true },
	{ "Percpu", "percpu", true },
	{ "VmallocUsed", "vmalloc", true },
	{ "KernelStack", "kernelstack", true },
	{ "PageTables", "pagetables", true },
};

#define NR_MEM_FIELDS	ARRAY_SIZE(mem_fields)

#define VMSTAT_SIZE	16384

struct mem {
	long kb[NR_MEM_FIELDS];
	char vmstat[VMSTAT_SIZE];	/* /proc/vmstat, for the diagnostics */
};

static void mem_sample(struct mem *m)
{
	unsigned int i;

	udev_settle();
	sync();
	mdev_write_str("/proc/sys/vm/drop_caches", "3");
	mdev_msleep(200);
	for (i = 0; i < NR_MEM_FIELDS; i++)
		m->kb[i] = meminfo_kb(mem_fields[i].field);
	if (mdev_read_file("/proc/vmstat", m->vmstat, sizeof(m->vmstat)) < 0)
		m->vmstat[0] = '\0';
}

/* One counter of a /proc/vmstat copy; 0 if missing */
static long vmstat_get(const char *vmstat, const char *name, size_t len)
{
	const char *p;

	for (p = vmstat; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, name, len) && p[len] == ' ')
			return strtol(p + len + 1, NULL, 10);
	return 0;
}

/* Diagnostics on stderr: the nr_* counters of /proc/vmstat that changed */
static void vmstat_diff(const char *what, const struct mem *m0,
			const struct mem *m1)
{
	const char *p;

	fprintf(stderr, "# vmstat %s (pages):", what);
	for (p = m1->vmstat; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		size_t len = strcspn(p, " ");
		long d;

		if (strncmp(p, "nr_", 3) || !p[len])
			continue;
		d = strtol(p + len + 1, NULL, 10) - vmstat_get(m0->vmstat, p, len);
		if (d)
			fprintf(stderr, " %.*s=%+ld", (int)len, p, d);
	}
	fprintf(stderr, "\n");
}

/* KiB the mdevs use by field i between two samples */
static long mem_used(const struct mem *before, const struct mem *after,
		     unsigned int i)
{
	long d = after->kb[i] - before->kb[i];

	return mem_fields[i].grows ? d : -d;
}

/*
 * Per field: KiB per mdev with n present, and KiB still used after they
 * were all removed (slab caches keep empty slabs, so not all of it leaks).
 */
static void report_mem(const struct mem *m0, const struct mem *m1,
		       const struct mem *m2, long n)
{
	char name[96];
	unsigned int i;

	for (i = 0; i < NR_MEM_FIELDS; i++) {
		if (m0->kb[i] < 0 || m1->kb[i] < 0 || m2->kb[i] < 0)
			continue;
		snprintf(name, sizeof(name), "scale_mem_%s_per_mdev",
			 mem_fields[i].name);
		report(name, (double)mem_used(m0, m1, i) / n, "KiB");
		snprintf(name, sizeof(name), "scale_mem_%s_not_returned",
			 mem_fields[i].name);
		report(name, (double)mem_used(m0, m2, i), "KiB");
	}
	if (m0->kb[0] >= 0 && m1->kb[0] >= 0)
		report("scale_mem_total", mem_used(m0, m1, 0) / 1024.0, "MiB");
}

/* Median time of reps reads of a sysfs file, in ns; 0 on error */
static double time_reads(const char *path, int reps)
{
	uint64_t *v = xcalloc(reps, sizeof(*v));
	char buf[64];
	double m;
	int i;

	for (i = 0; i < reps; i++) {
		uint64_t t0 = now_ns();

		if (mdev_read_file(path, buf, sizeof(buf)) < 0) {
			free(v);
			return 0;
		}
		v[i] = now_ns() - t0;
	}
	m = median_ns(v, reps);
	free(v);
	return m;
}

/* Median time of reps duplicate creates of uuid (must fail with EEXIST) */
static double time_dup(const struct mdev_sample_desc *s, const char *type,
		       const char *uuid, int reps)
{
	uint64_t *v = xcalloc(reps, sizeof(*v));
	double m;
	int i, ret;

	for (i = 0; i < reps; i++) {
		uint64_t t0 = now_ns();

		ret = mdev_create(s, type, uuid);
		v[i] = now_ns() - t0;
		if (ret != -EEXIST) {
			fprintf(stderr, "# duplicate create of %s: %s, not EEXIST\n",
				uuid, ret ? strerror(-ret) : "success");
			if (!ret)
				mdev_remove(uuid);
			free(v);
			return 0;
		}
	}
	m = median_ns(v, reps);
	free(v);
	return m;
}

/* Entries of a directory and the median time of 5 readdirs of it, in ns */
static int time_list(const char *path, double *ns)
{
	uint64_t v[5];
	int i, n = 0;

	for (i = 0; i < 5; i++) {
		uint64_t t0 = now_ns();

		n = mdev_count_dir(path, NULL, 0);
		v[i] = now_ns() - t0;
	}
	*ns = median_ns(v, 5);
	return n;
}

/* Operation k (1-based) of n is a checkpoint: the 1st, every step-th, last */
static bool checkpoint(long k, long n, long step)
{
	return k == 1 || k % step == 0 || k == n;
}

static void report_checkpoint(const char *what, const uint64_t *v, long n,
			      long k, long window)
{
	long from = k - window, len = window;
	char name[96];

	/* the window of ops (k - window, k]; the first ones for small k */
	if (from < 0)
		from = 0;
	if (from + len > n)
		len = n - from;
	snprintf(name, sizeof(name), "scale_%s_at_%ld", what, k);
	report(name, v[k - 1] / 1e3, "us");
	snprintf(name, sizeof(name), "scale_%s_win_at_%ld", what, k);
	report(name, median_ns(v + from, len) / 1e3, "us");
}

/* Checkpoints: op 1, then every step-th op, and the last one (1-based) */
static void report_checkpoints(const char *what, const uint64_t *v, long n,
			       long step, long window)
{
	long k;

	for (k = 1; k <= n; k++)
		if (checkpoint(k, n, step))
			report_checkpoint(what, v, n, k, window);
}

/* scale: N mdevs on one parent */
static int bench_scale(const struct opts *o)
{
	const struct mdev_sample_desc *s = find_parent(o->sample, o->type);
	char avail_path[MDEV_PATH_MAX], devs_path[MDEV_PATH_MAX], name[96];
	long n = o->count, step = o->step, created = 0, removed = 0, i;
	double avail0_ns, availn_ns = 0, list0_ns, listn_ns = 0, *dup_ns;
	long window = o->window, ndup = 0;
	uint64_t *c_ns, *r_ns, t, create_ns, remove_ns;
	unsigned int avail, avail_after;
	static struct mem m0, m1, m2;
	char (*uuids)[MDEV_UUID_LEN + 1];
	int ret, failed = 0, listed;

	if (n < 1) {
		fprintf(stderr, "# -n must be at least 1\n");
		return 1;
	}
	if (step <= 0)
		step = n >= 10 ? n / 10 : 1;
	if (window <= 0)
		window = step;

	mdev_type_path(avail_path, sizeof(avail_path), s, o->type,
		       "available_instances");
	mdev_type_path(devs_path, sizeof(devs_path), s, o->type, "devices");
	ret = mdev_read_uint(avail_path, &avail);
	if (ret) {
		fprintf(stderr, "# %s: %s\n", avail_path, strerror(-ret));
		return 1;
	}
	if (avail < n) {
		fprintf(stderr,
			"# %s has %u available instances, %ld needed (mbochs: modprobe mbochs count=<4 * N>; mdpy: count=N)\n",
			o->type, avail, n);
		return 1;
	}
	listed = mdev_count_dir(MDEV_BUS_DEVICES, NULL, 0);
	if (listed > 0)
		fprintf(stderr, "# warning: %d mdevs present before the run\n",
			listed);

	uuids = xcalloc(n, sizeof(*uuids));
	c_ns = xcalloc(n, sizeof(*c_ns));
	r_ns = xcalloc(n, sizeof(*r_ns));
	dup_ns = xcalloc(n / step + 2, sizeof(*dup_ns));
	for (i = 0; i < n; i++)
		if (gen_uuid(uuids[i]))
			return 1;

	avail0_ns = time_reads(avail_path, 200);
	listed = time_list(devs_path, &list0_ns);
	mem_sample(&m0);

	fprintf(stderr, "# scale: creating %ld mdevs of %s\n", n, o->type);
	t = now_ns();
	for (i = 0; i < n; i++) {
		uint64_t t0 = now_ns();

		ret = mdev_create(s, o->type, uuids[i]);
		c_ns[i] = now_ns() - t0;
		if (ret) {
			fprintf(stderr, "# create %ld of %ld: %s\n", i + 1, n,
				strerror(-ret));
			report("scale_failed_at", i + 1, "creates");
			failed = 1;
			break;
		}
		created++;
		if (checkpoint(i + 1, n, step)) {
			/*
			 * The UUID lookup with i + 1 mdevs: a duplicate of the
			 * oldest one, outside the timed loop.
			 */
			uint64_t pause = now_ns();

			dup_ns[ndup] = time_dup(s, o->type, uuids[0], 100);
			if (!dup_ns[ndup++])
				failed = 1;
			fprintf(stderr, "# %ld created, last %.1f us, duplicate %.1f us\n",
				i + 1, c_ns[i] / 1e3, dup_ns[ndup - 1] / 1e3);
			t += now_ns() - pause;
			if (failed)
				break;
		}
	}
	create_ns = now_ns() - t;

	if (!failed) {
		mem_sample(&m1);
		availn_ns = time_reads(avail_path, 200);
		ret = mdev_read_uint(avail_path, &avail_after);
		if (ret || avail_after != avail - n) {
			fprintf(stderr,
				"# available_instances %u with %ld mdevs, expected %u\n",
				avail_after, n, avail - (unsigned int)n);
			failed = 1;
		}
		listed = time_list(devs_path, &listn_ns);
		if (listed != n) {
			fprintf(stderr, "# %s lists %d devices, expected %ld\n",
				devs_path, listed, n);
			failed = 1;
		}
	}

	udev_settle();
	fprintf(stderr, "# scale: removing %ld mdevs (%s)\n", created,
		o->lifo ? "newest first" : "oldest first");
	t = now_ns();
	for (i = 0; i < created; i++) {
		long idx = o->lifo ? created - 1 - i : i;
		uint64_t t0 = now_ns();

		ret = mdev_remove(uuids[idx]);
		r_ns[i] = now_ns() - t0;
		if (ret) {
			fprintf(stderr, "# remove %ld: %s\n", i + 1,
				strerror(-ret));
			failed = 1;
			continue;
		}
		removed++;
		if ((i + 1) % step == 0)
			fprintf(stderr, "# %ld removed, last %.1f us\n", i + 1,
				r_ns[i] / 1e3);
	}
	remove_ns = now_ns() - t;
	mem_sample(&m2);

	if (failed || removed != n) {
		fprintf(stderr, "# scale: failed (%ld created, %ld removed)\n",
			created, removed);
		return 1;
	}

	report("scale_create_total", create_ns / 1e9, "s");
	report("scale_create_mean", mean_ns(c_ns, n) / 1e3, "us");
	report("scale_create_median", median_ns(c_ns, n) / 1e3, "us");
	report_checkpoints("create", c_ns, n, step, window);
	for (i = 1, ndup = 0; i <= n; i++) {
		if (!checkpoint(i, n, step))
			continue;
		snprintf(name, sizeof(name), "scale_dup_create_at_%ld", i);
		report(name, dup_ns[ndup++] / 1e3, "us");
	}
	report("scale_avail_read_at_0", avail0_ns / 1e3, "us");
	snprintf(name, sizeof(name), "scale_avail_read_at_%ld", n);
	report(name, availn_ns / 1e3, "us");
	report("scale_list_devices_at_0", list0_ns / 1e6, "ms");
	snprintf(name, sizeof(name), "scale_list_devices_at_%ld", n);
	report(name, listn_ns / 1e6, "ms");
	report("scale_remove_total", remove_ns / 1e9, "s");
	report("scale_remove_mean", mean_ns(r_ns, n) / 1e3, "us");
	report("scale_remove_median", median_ns(r_ns, n) / 1e3, "us");
	report_checkpoints("remove", r_ns, n, step, window);
	report_mem(&m0, &m1, &m2, n);
	vmstat_diff("with the mdevs", &m0, &m1);
	vmstat_diff("after removing them", &m0, &m2);
	free(uuids);
	free(c_ns);
	free(r_ns);
	free(dup_ns);
	return 0;
}

/* ------------------------------------------------------------------ */
/* uart: VFIO region accesses of an mtty device */

struct vfio_dev {
	int container;
	int group;
	int device;
};

static void vfio_dev_close(struct vfio_dev *v)
{
	if (v->device >= 0)
		close(v->device);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	v->device = v->group = v->container = -1;
}

/*
 * The group/container path, the same steps as mdev_vfio_open_group() of
 * mdev_harness.h: container, group, TYPE1v2, device fd, GET_INFO.
 * 0 or -errno, with a message on stderr.
 */
static int vfio_dev_open(struct vfio_dev *v, const char *uuid)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_device_info info = { .argsz = sizeof(info) };
	char path[MDEV_PATH_MAX], real[MDEV_PATH_MAX];
	const char *what;
	int ret;

	v->container = v->group = v->device = -1;
	mdev_dev_path(path, sizeof(path), uuid, "iommu_group");
	ret = mdev_realpath(path, real, sizeof(real));
	if (ret) {
		fprintf(stderr, "# realpath %s: %s\n", path, strerror(-ret));
		return ret;
	}
	what = "open /dev/vfio/vfio";
	v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (v->container < 0)
		goto fail;
	what = "VFIO_GET_API_VERSION";
	errno = EINVAL;
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		goto fail;
	what = "VFIO_CHECK_EXTENSION(TYPE1v2)";
	if (ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1)
		goto fail;
	mdev_pathf(path, sizeof(path), "/dev/vfio/%s", mdev_basename(real));
	what = path;
	v->group = open(path, O_RDWR | O_CLOEXEC);
	if (v->group < 0)
		goto fail;
	what = "VFIO_GROUP_GET_STATUS";
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &status))
		goto fail;
	errno = EINVAL;
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		goto fail;
	what = "VFIO_GROUP_SET_CONTAINER";
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container))
		goto fail;
	what = "VFIO_SET_IOMMU(TYPE1v2)";
	if (ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		goto fail;
	what = "VFIO_GROUP_GET_DEVICE_FD";
	v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, uuid);
	if (v->device < 0)
		goto fail;
	what = "VFIO_DEVICE_GET_INFO";
	if (ioctl(v->device, VFIO_DEVICE_GET_INFO, &info))
		goto fail;
	return 0;
fail:
	ret = -errno;
	fprintf(stderr, "# %s: %s\n", what, strerror(errno));
	vfio_dev_close(v);
	return ret;
}

enum uart_kind { KIND_SCR, KIND_LOOP, KIND_LSR };

#define UART_CHUNKS	10

/*
 * count accesses (pairs) of one kind on the register block at base, in
 * *total_ns; with v, each pair is timed too (ns in v[]).  0, or -1 after a
 * failed or wrong access.
 */
static int uart_run(int fd, __u64 base, enum uart_kind kind, long count,
		    uint64_t *v, uint64_t *total_ns)
{
	static const char *const names[] = { "scr", "loop", "lsr" };
	uint64_t start = now_ns(), t0 = 0;
	__u8 w, r;
	long i;

	*total_ns = 0;
	for (i = 0; i < count; i++) {
		ssize_t nw = 1, nr;

		if (v)
			t0 = now_ns();

		w = (__u8)(i * 7 + 1);
		r = ~w;
		switch (kind) {
		case KIND_SCR:
			nw = pwrite(fd, &w, 1, base + UART_SCR);
			nr = pread(fd, &r, 1, base + UART_SCR);
			break;
		case KIND_LOOP:
			nw = pwrite(fd, &w, 1, base + UART_TX);
			nr = pread(fd, &r, 1, base + UART_RX);
			break;
		default:
			w = UART_LSR_TEMT | UART_LSR_THRE;
			nr = pread(fd, &r, 1, base + UART_LSR);
			break;
		}
		if (v)
			v[i] = now_ns() - t0;
		if (nw != 1 || nr != 1 || r != w) {
			fprintf(stderr, "# uart %s access %ld: write %zd, read %zd: %s; wrote/expected 0x%02x, read 0x%02x\n",
				names[kind], i, nw, nr,
				nw != 1 || nr != 1 ? strerror(errno) : "wrong value",
				w, r);
			return -1;
		}
	}
	*total_ns = now_ns() - start;
	return 0;
}

/* uart: 1-byte region accesses to the UART registers of an mtty-1 */
static int bench_uart(const struct opts *o)
{
	static const struct {
		enum uart_kind kind;
		const char *name;
		int ops;	/* region accesses per timed step */
	} loops[] = {
		{ KIND_SCR, "scr", 2 },
		{ KIND_LOOP, "loop", 2 },
		{ KIND_LSR, "lsr", 1 },
	};
	const struct mdev_sample_desc *s = find_parent(o->sample, o->type);
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = 0 };
	struct vfio_dev dev = { -1, -1, -1 };
	char uuid[MDEV_UUID_LEN + 1], name[96];
	uint64_t *v, total;
	unsigned int i;
	int ret, failed = 0;
	__u8 b;

	if (strcmp(mdev_sample_base(s)->sample, "mtty")) {
		fprintf(stderr, "# uart needs an mtty sample (mtty, mtty_rs), not %s\n",
			s->sample);
		return 1;
	}
	if (o->count < 1) {
		fprintf(stderr, "# -n must be at least 1\n");
		return 1;
	}
	if (gen_uuid(uuid))
		return 1;
	ret = mdev_create(s, o->type, uuid);
	if (ret) {
		fprintf(stderr, "# create %s %s: %s\n", o->type, uuid,
			strerror(-ret));
		return 1;
	}
	v = xcalloc(o->count, sizeof(*v));
	if (vfio_dev_open(&dev, uuid)) {
		failed = 1;
		goto out;
	}
	if (ioctl(dev.device, VFIO_DEVICE_GET_REGION_INFO, &ri) ||
	    ri.size < UART_SCR + 1) {
		fprintf(stderr, "# BAR0 region info: %s, size %llu\n",
			strerror(errno), (unsigned long long)ri.size);
		failed = 1;
		goto out;
	}
	/* 8 bit words, FIFO enabled and empty */
	b = UART_LCR_WLEN8;
	if (pwrite(dev.device, &b, 1, ri.offset + UART_LCR) != 1)
		failed = 1;
	b = UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT;
	if (pwrite(dev.device, &b, 1, ri.offset + UART_FCR) != 1)
		failed = 1;
	if (failed) {
		fprintf(stderr, "# UART set-up: %s\n", strerror(errno));
		goto out;
	}
	fprintf(stderr, "# uart: %s %s %s, BAR0 at 0x%llx, %ld accesses per loop\n",
		s->module, o->type, uuid, (unsigned long long)ri.offset,
		o->count);

	for (i = 0; i < ARRAY_SIZE(loops); i++) {
		long warm = o->count < 2000 ? o->count : 2000;
		long chunk = (o->count + UART_CHUNKS - 1) / UART_CHUNKS;
		uint64_t chunk_ns[UART_CHUNKS], timed, lo = UINT64_MAX, hi = 0;
		unsigned int c;

		udev_settle();
		/* warm-up (not reported), the rate, then the latencies */
		if (uart_run(dev.device, ri.offset, loops[i].kind, warm, NULL,
			     &total)) {
			failed = 1;
			break;
		}
		for (c = 0, total = 0; c < UART_CHUNKS && !failed; c++) {
			if (uart_run(dev.device, ri.offset, loops[i].kind,
				     chunk, NULL, &chunk_ns[c]))
				failed = 1;
			total += chunk_ns[c];
			lo = chunk_ns[c] < lo ? chunk_ns[c] : lo;
			hi = chunk_ns[c] > hi ? chunk_ns[c] : hi;
		}
		if (failed ||
		    uart_run(dev.device, ri.offset, loops[i].kind, o->count, v,
			     &timed)) {
			failed = 1;
			break;
		}
		fprintf(stderr, "# uart %s: %d x %ld in %.3f s (chunks %.3f .. %.3f s), timed %ld in %.3f s\n",
			loops[i].name, UART_CHUNKS, chunk, total / 1e9,
			lo / 1e9, hi / 1e9, o->count, timed / 1e9);
		snprintf(name, sizeof(name), "uart_%s_rate", loops[i].name);
		report(name, loops[i].ops * chunk /
			     (median_ns(chunk_ns, UART_CHUNKS) / 1e9), "ops/s");
		snprintf(name, sizeof(name), "uart_%s_median", loops[i].name);
		report(name, median_ns(v, o->count) / 1e3, "us");
	}
out:
	vfio_dev_close(&dev);
	ret = mdev_remove(uuid);
	if (ret) {
		fprintf(stderr, "# remove %s: %s\n", uuid, strerror(-ret));
		failed = 1;
	}
	free(v);
	return failed;
}

/* ------------------------------------------------------------------ */
/* display: the mdpy framebuffer through mmap, mbochs dma-buf exports */

#define FB_SIZE		(2 << 20)
#define MBOCHS_MMIO_OFF	4096
#define MBOCHS_VRAM_OFF	(3 * 4096)
#define MBOCHS_VRAM	(4 << 20)

static int new_mdev(const char *sample, const char *type, char *uuid,
		    struct vfio_dev *dev)
{
	const struct mdev_sample_desc *s = mdev_sample_impl(sample);
	int ret;

	if (!s || !mdev_sample_listed(s->sample)) {
		fprintf(stderr, "# %s is not in MDEV_SAMPLES\n", sample);
		return -1;
	}
	if (gen_uuid(uuid))
		return -1;
	ret = mdev_create(s, type, uuid);
	if (ret) {
		fprintf(stderr, "# create %s %s: %s\n", type, uuid,
			strerror(-ret));
		return -1;
	}
	fprintf(stderr, "# display: %s %s %s\n", s->module, type, uuid);
	if (vfio_dev_open(dev, uuid)) {
		mdev_remove(uuid);
		return -1;
	}
	return 0;
}

static int end_mdev(const char *uuid, struct vfio_dev *dev)
{
	int ret;

	vfio_dev_close(dev);
	ret = mdev_remove(uuid);
	if (ret)
		fprintf(stderr, "# remove %s: %s\n", uuid, strerror(-ret));
	return !!ret;
}

static uint64_t fb_pass(volatile uint64_t *fb, uint64_t seed)
{
	uint64_t t0 = now_ns();
	size_t i;

	for (i = 0; i < FB_SIZE / 8; i++)
		fb[i] = seed + i;
	return now_ns() - t0;
}

static int bench_fb(long passes)
{
	struct vfio_dev dev = { -1, -1, -1 };
	char uuid[MDEV_UUID_LEN + 1];
	volatile uint64_t *fb;
	uint64_t *v, cold;
	int failed = 0;
	long p;
	size_t i;

	if (passes < 2)
		passes = 2;
	if (new_mdev("mdpy", "mdpy-vga", uuid, &dev))
		return 1;
	v = xcalloc(passes, sizeof(*v));
	fb = mmap(NULL, FB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		  dev.device, 4096);
	if (fb == MAP_FAILED) {
		fprintf(stderr, "# mmap BAR0: %s\n", strerror(errno));
		failed = 1;
		goto out;
	}
	cold = fb_pass(fb, 0);
	for (p = 1; p < passes; p++)
		v[p - 1] = fb_pass(fb, p << 32);
	for (i = 0; i < FB_SIZE / 8; i++)
		if (fb[i] != ((uint64_t)(passes - 1) << 32) + i) {
			fprintf(stderr, "# word %zu reads back wrong\n", i);
			failed = 1;
			break;
		}
	munmap((void *)fb, FB_SIZE);
	if (!failed) {
		report("fb_write_cold", FB_SIZE / 1048576.0 / (cold / 1e9),
		       "MiB/s");
		report("fb_write_warm", FB_SIZE / 1048576.0 /
			       (median_ns(v, passes - 1) / 1e9), "MiB/s");
	}
out:
	failed |= end_mdev(uuid, &dev);
	free(v);
	return failed;
}

static int dispi(int fd, unsigned int index, __u16 val)
{
	return pwrite(fd, &val, 2, MBOCHS_MMIO_OFF + 0x500 + 2 * index) == 2 ?
		0 : -1;
}

/* the primary plane's dma-buf id (the C mbochs answers ENOMEM once) */
static int plane_id(int fd, __u32 *id)
{
	struct vfio_device_gfx_plane_info p;
	int i;

	for (i = 0; i < 2; i++) {
		memset(&p, 0, sizeof(p));
		p.argsz = sizeof(p);
		p.flags = VFIO_GFX_PLANE_TYPE_DMABUF;
		p.drm_plane_type = 1;
		if (!ioctl(fd, VFIO_DEVICE_QUERY_GFX_PLANE, &p) && p.dmabuf_id) {
			*id = p.dmabuf_id;
			return 0;
		}
	}
	return -1;
}

#define DISPLAY_MODES	144

static int bench_dmabuf(long count)
{
	long rounds = count / DISPLAY_MODES, r, n = 0;
	struct vfio_dev dev = { -1, -1, -1 };
	char uuid[MDEV_UUID_LEN + 1];
	uint64_t *get, *put, t0;
	volatile uint32_t *vram;
	int failed = 0, fd, m;
	size_t i;
	__u32 id;

	if (rounds < 1)
		rounds = 1;
	if (new_mdev("mbochs", "mbochs-small", uuid, &dev))
		return 1;
	get = xcalloc(rounds * DISPLAY_MODES, sizeof(*get));
	put = xcalloc(rounds * DISPLAY_MODES, sizeof(*put));
	for (r = 0; r < rounds && !failed; r++) {
		if (r && (vfio_dev_close(&dev), vfio_dev_open(&dev, uuid))) {
			failed = 1;
			break;
		}
		/* every page of the video memory exists: only exports count */
		vram = mmap(NULL, MBOCHS_VRAM, PROT_READ | PROT_WRITE,
			    MAP_SHARED, dev.device, MBOCHS_VRAM_OFF);
		if (vram == MAP_FAILED) {
			fprintf(stderr, "# mmap vram: %s\n", strerror(errno));
			failed = 1;
			break;
		}
		for (i = 0; i < MBOCHS_VRAM / 4; i += 1024)
			vram[i] = i;
		munmap((void *)vram, MBOCHS_VRAM);
		if (dispi(dev.device, 1, 640) || dispi(dev.device, 2, 480) ||
		    dispi(dev.device, 3, 32) || dispi(dev.device, 6, 640) ||
		    dispi(dev.device, 4, 1)) {
			fprintf(stderr, "# dispi: %s\n", strerror(errno));
			failed = 1;
			break;
		}
		for (m = 0; m < DISPLAY_MODES; m++) {
			if (dispi(dev.device, 9, 8 * m) ||
			    plane_id(dev.device, &id)) {
				fprintf(stderr, "# mode %d: no plane\n", m);
				failed = 1;
				break;
			}
			t0 = now_ns();
			fd = ioctl(dev.device, VFIO_DEVICE_GET_GFX_DMABUF, &id);
			get[n] = now_ns() - t0;
			if (fd < 0) {
				fprintf(stderr, "# GET_GFX_DMABUF %u: %s\n", id,
					strerror(errno));
				failed = 1;
				break;
			}
			if (lseek(fd, 0, SEEK_END) != 640 * 480 * 4) {
				fprintf(stderr, "# dma-buf %u: wrong size\n", id);
				failed = 1;
			}
			t0 = now_ns();
			close(fd);
			put[n++] = now_ns() - t0;
		}
	}
	if (!failed) {
		fprintf(stderr, "# dmabuf: %ld exports of 300 pages\n", n);
		report("dmabuf_export", median_ns(get, n) / 1e3, "us");
		report("dmabuf_close", median_ns(put, n) / 1e3, "us");
	}
	failed |= end_mdev(uuid, &dev);
	free(get);
	free(put);
	return failed;
}

static int bench_display(const struct opts *o)
{
	int failed = bench_fb(o->count ? o->count : 200);

	return bench_dmabuf(o->count ? o->count : 3 * DISPLAY_MODES) || failed;
}

static void die_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-c core] [-s sample] [-t type] [-n count] [-d seconds]\n"
		"          [-k step] [-w window] [-o fifo|lifo] cycle|scale|uart|display\n",
		prog);
	exit(1);
}

int main(int argc, char **argv)
{
	struct opts o = { };
	const char *mode, *env = getenv("MDEV_CORE");
	int opt;

	if (env && *env)
		core = env;
	while ((opt = getopt(argc, argv, "c:s:t:n:d:k:w:o:h")) != -1) {
		switch (opt) {
		case 'c':
			core = optarg;
			break;
		case 's':
			o.sample = optarg;
			break;
		case 't':
			o.type = optarg;
			break;
		case 'n':
			o.count = strtol(optarg, NULL, 0);
			break;
		case 'd':
			o.duration = strtod(optarg, NULL);
			break;
		case 'k':
			o.step = strtol(optarg, NULL, 0);
			break;
		case 'w':
			o.window = strtol(optarg, NULL, 0);
			break;
		case 'o':
			if (strcmp(optarg, "fifo") && strcmp(optarg, "lifo"))
				die_usage(argv[0]);
			o.lifo = !strcmp(optarg, "lifo");
			break;
		default:
			die_usage(argv[0]);
		}
	}
	if (optind != argc - 1)
		die_usage(argv[0]);
	mode = argv[optind];
	if (geteuid()) {
		fprintf(stderr, "# needs root\n");
		return KSFT_SKIP;
	}
	if (mdev_samples_conflict()) {
		fprintf(stderr, "# %s\n", mdev_samples_conflict());
		return 1;
	}

	if (!strcmp(mode, "cycle") || !strcmp(mode, "uart")) {
		/* mtty or mtty_rs, whichever $MDEV_SAMPLES lists */
		if (!o.sample)
			o.sample = mdev_sample_impl("mtty")->sample;
		if (!o.type)
			o.type = "mtty-1";
		if (!o.count)
			o.count = !strcmp(mode, "cycle") ? 2000 : 500000;
		return !strcmp(mode, "cycle") ? bench_cycle(&o) :
						bench_uart(&o);
	}
	if (!strcmp(mode, "display"))
		return bench_display(&o);
	if (!strcmp(mode, "scale")) {
		if (!o.sample)
			o.sample = "mbochs";
		if (!o.type)
			o.type = "mbochs-small";
		if (!o.count)
			o.count = 10000;
		return bench_scale(&o);
	}
	die_usage(argv[0]);
	return 1;
}
