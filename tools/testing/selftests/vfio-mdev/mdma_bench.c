// SPDX-License-Identifier: GPL-2.0
/*
 * mdma_bench - end-to-end COPY throughput of the mdma sample (the mediated
 * DMA engine, samples/vfio-mdev/mdma.rs) from user space, on both VFIO
 * paths: the group/container path (type1 v2, VFIO_IOMMU_MAP_DMA) and the
 * iommufd cdev path (IOMMU_IOAS_MAP with a fixed IOVA).
 *
 * Not a test: it asserts nothing about speed and is not run by the kselftest
 * runner (TEST_GEN_PROGS_EXTENDED); scripts/guest/bench.sh runs it on each
 * mdev core.  It does check what it measures: the bytes copied (once per
 * path, size and kind, against the source), the STATUS of every DMA, and
 * from vendor/dma_stats that every cold DMA pinned all its pages and that
 * no warm DMA pinned any.
 *
 * Per path: one mdma-dma mdev, opened as mdma_test does; two buffers of
 * BUF_SIZE (64 MiB, the largest mdma request) mapped read/write, the
 * source at IOVA_SRC, the destination at IOVA_DST (above 4 GiB).  Then for
 * each size (default 4 KiB, 64 KiB, 1 MiB, 16 MiB):
 *
 *   cold	REPS repetitions of: unmap both buffers (which unpins what the
 *		device pinned), wait MDMA_UNMAP_GRACE_US (the device refuses
 *		pins of a just-unmapped range for 20 ms), map them again, then
 *		time WINDOWS COPYs, each the first DMA of fresh IOVAs (window
 *		w copies [w * size, (w + 1) * size) of the source to the same
 *		offset of the destination): translation includes pinning every
 *		page, vfio_pin_pages() and the insert into the device's cache.
 *		WINDOWS = min(BUF_SIZE / size, -k).  The unmap, the wait and the
 *		map are not timed.
 *   warm	REPS repetitions of ITERS COPYs of window 0 again (its pages
 *		are pinned and cached since the last cold repetition), ITERS =
 *		max(1, -b / size).
 *   warmlog	the same with DMA logging on (VFIO_DEVICE_FEATURE_DMA_LOGGING_*,
 *		4 KiB pages over both buffers): every page the engine writes is
 *		recorded; a report afterwards must hold exactly window 0's
 *		destination pages.  warmlog / warm is the cost of logging.
 *
 * And once per path, with logging over 1 GiB of IOVA (the destination
 * buffer and what follows it): the time of one DMA_LOGGING_REPORT of the
 * whole GiB (a 32 KiB bitmap), clean and after a 16 MiB copy dirtied 4096
 * pages (checked: exactly those bits), as
 *
 *	bench mdma_<path>_report1g_<clean|16m> core=<core> value=<us> unit=us reps=<REPS>
 *
 * and the time of a stop-copy save of the device: SET STOP_COPY from
 * RUNNING (through RUNNING_P2P and STOP), reading the whole stream, and
 * SET RUNNING again (checked: the stream has the device's data size):
 *
 *	bench mdma_<path>_stopcopy core=<core> value=<us> unit=us bytes=<stream length> reps=<REPS>
 *
 * A DMA is the register writes SRC_LO/HI, DST_LO/HI, LEN, OP, DOORBELL
 * (pwrite of 4 bytes each on the device fd) and a read of STATUS; the
 * device copies synchronously in the DOORBELL write.  Each repetition gives
 * bytes / time; the figure is the median over the repetitions.  One line per
 * path, size and kind on stdout:
 *
 *	bench mdma_<path>_<kind>_<size> core=<core> value=<MiB/s> unit=MiB/s \
 *		dma_us=<median time of one DMA, us> reps=<REPS> dmas=<per rep>
 *
 * path is type1 or iommufd, kind cold or warm, size 4k, 64k, 1m, 16m (the
 * first five fields are those of mdev_bench, so bench.sh's summary reads
 * both).  Progress, min/max and errors go to stderr as "# ..." lines.
 *
 * With -n, instead: N devices copy at the same time, one thread each, on
 * the first path of -p (each its own container or IOAS): every device COPYs
 * the first size of -s back and forth until it moved -b bytes (warm: its
 * pages are pinned by an untimed first COPY, whose result is checked).  One
 * line per N:
 *
 *	bench <driver>_<path>_conc<N>_<size> core=<core> value=<MiB/s> unit=MiB/s \
 *		min=<slowest device, MiB/s> max=<fastest device, MiB/s> \
 *		fair=<min/max> bytes=<per device>
 *
 * value is the aggregate (all bytes over the time of the slowest device).
 * MDMA_PARENT=<PCI address> measures mdma_edu's devices of that edu
 * function (driver mdma_edu, type mdma_edu-dma) instead of mdma's.
 *
 *   mdma_bench [-c core] [-p type1|iommufd|both] [-s sizes] [-r reps]
 *		[-k windows] [-b bytes] [-n N[,N...]]
 *
 *   -c CORE	core label of the output lines (default $MDEV_CORE, "unknown")
 *   -p PATH	VFIO path(s) (default both: type1, then iommufd)
 *   -s SIZES	comma-separated sizes in bytes, K/M suffixes allowed, each a
 *		multiple of 4 KiB up to 64 MiB (default 4K,64K,1M,16M)
 *   -r REPS	repetitions of each cold and warm figure (default 5)
 *   -k WINDOWS	most cold DMAs per repetition (default 256)
 *   -b BYTES	bytes per warm repetition (default 32M)
 *
 * Needs root and the mdma sample loaded (/sys/class/mdev_bus/mdma).
 * Exit status: 0, 1 on a failure, 4 (KSFT_SKIP) when mdma is missing.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "mdev_common.h"

#define KSFT_SKIP		4

#define MDMA_TYPE		"mdma-dma"

/* kernel::vfio::pinmap::UNMAP_GRACE_NS (20 ms), with a margin */
#define MDMA_UNMAP_GRACE_US	(60 * 1000)

#define PG			4096UL
#define KiB			(1UL << 10)
#define MiB			(1UL << 20)
#define BUF_SIZE		(64 * MiB)	/* mdma's largest request */

#define BAR0			((__u64)VFIO_PCI_BAR0_REGION_INDEX << 40)

#define REG_ID			0x00
#define REG_STATUS		0x04
#define REG_SRC_LO		0x08
#define REG_SRC_HI		0x0c
#define REG_DST_LO		0x10
#define REG_DST_HI		0x14
#define REG_LEN			0x18
#define REG_OP			0x1c
#define REG_DOORBELL		0x28

#define MDMA_ID			0x4d444d41
#define ST_DONE			(1u << 1)
#define OP_COPY			1

#define IOVA_SRC		0x10000000ULL
#define IOVA_DST		0x4d4100000000ULL

#define MAX_SIZES		16
#define MAX_REPS		101

enum dma_path { PATH_TYPE1, PATH_IOMMUFD };

static const char *const path_names[] = { "type1", "iommufd" };

/* mdev_create() and mdev_type_path() only need the parent's name */
static struct mdev_sample_desc mdma_desc = {
	.sample = "mdma",
	.module = "mdma",
	.parent = "mdma",
};
static const char *mdma_type = MDMA_TYPE;
static const char *driver_name = "mdma";

#define MAX_CONC		8

static const char *core = "unknown";

/* mdma's stop-copy stream (samples/vfio-mdev/mdma.rs, MIG_LEN) */
#define MDMA_MIG_LEN	59

struct opts {
	unsigned long sizes[MAX_SIZES];
	int nr_sizes;
	int reps;
	unsigned long windows;
	unsigned long warm_bytes;
	bool path[2];
	int conc[MAX_CONC];	/* -n: device counts, 0-terminated */
};

/* One open mdma device and its DMA address space */
struct mdma {
	enum dma_path path;
	const char *uuid;
	int container;
	int group;
	int iommufd;
	__u32 ioas_id;
	int fd;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of v[0..n); sorts v */
static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *size_name(unsigned long size, char *buf, size_t len)
{
	if (!(size % MiB))
		snprintf(buf, len, "%lum", size / MiB);
	else if (!(size % KiB))
		snprintf(buf, len, "%luk", size / KiB);
	else
		snprintf(buf, len, "%lu", size);
	return buf;
}

/* ------------------------------------------------------------------ */
/* the device */

static void mdma_close(struct mdma *m)
{
	if (m->fd >= 0)
		close(m->fd);
	if (m->group >= 0)
		close(m->group);
	if (m->container >= 0)
		close(m->container);
	if (m->iommufd >= 0)
		close(m->iommufd);
	m->fd = m->group = m->container = m->iommufd = -1;
}

/*
 * The group/container path, the steps of mdev_vfio_open_group() in
 * mdev_harness.h: container, group, TYPE1v2, device fd.
 */
static const char *open_type1(struct mdma *m)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	char path[MDEV_PATH_MAX], real[MDEV_PATH_MAX];
	int ret;

	mdev_dev_path(path, sizeof(path), m->uuid, "iommu_group");
	ret = mdev_realpath(path, real, sizeof(real));
	if (ret) {
		errno = -ret;
		return "realpath <mdev>/iommu_group";
	}
	m->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (m->container < 0)
		return "open /dev/vfio/vfio";
	errno = EINVAL;
	if (ioctl(m->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		return "VFIO_GET_API_VERSION";
	if (ioctl(m->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1)
		return "VFIO_CHECK_EXTENSION(TYPE1v2)";
	mdev_pathf(path, sizeof(path), "/dev/vfio/%s", mdev_basename(real));
	m->group = open(path, O_RDWR | O_CLOEXEC);
	if (m->group < 0)
		return "open /dev/vfio/<group>";
	if (ioctl(m->group, VFIO_GROUP_GET_STATUS, &status))
		return "VFIO_GROUP_GET_STATUS";
	errno = EINVAL;
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		return "group not viable";
	if (ioctl(m->group, VFIO_GROUP_SET_CONTAINER, &m->container))
		return "VFIO_GROUP_SET_CONTAINER";
	if (ioctl(m->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return "VFIO_SET_IOMMU(TYPE1v2)";
	m->fd = ioctl(m->group, VFIO_GROUP_GET_DEVICE_FD, m->uuid);
	if (m->fd < 0)
		return "VFIO_GROUP_GET_DEVICE_FD";
	return NULL;
}

/*
 * The iommufd cdev path, the steps of mdev_vfio_open_cdev() in
 * mdev_harness.h: /dev/vfio/devices/vfioM bound to a new IOAS.
 */
static const char *open_iommufd(struct mdma *m)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
	};
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	char path[MDEV_PATH_MAX], name[256];

	mdev_dev_path(path, sizeof(path), m->uuid, "vfio-dev");
	errno = ENOENT;
	if (mdev_count_dir(path, name, sizeof(name)) != 1 ||
	    strncmp(name, "vfio", 4))
		return "one vfioM in <mdev>/vfio-dev";
	mdev_pathf(path, sizeof(path), "/dev/vfio/devices/%s", name);
	m->fd = open(path, O_RDWR | O_CLOEXEC);
	if (m->fd < 0)
		return "open /dev/vfio/devices/vfioM";
	m->iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (m->iommufd < 0)
		return "open /dev/iommu";
	bind.iommufd = m->iommufd;
	if (ioctl(m->fd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return "VFIO_DEVICE_BIND_IOMMUFD";
	if (ioctl(m->iommufd, IOMMU_IOAS_ALLOC, &alloc))
		return "IOMMU_IOAS_ALLOC";
	m->ioas_id = alloc.out_ioas_id;
	attach.pt_id = m->ioas_id;
	if (ioctl(m->fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		return "VFIO_DEVICE_ATTACH_IOMMUFD_PT";
	return NULL;
}

static int mdma_open(struct mdma *m, enum dma_path path, const char *uuid)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	const char *what;

	m->path = path;
	m->uuid = uuid;
	m->fd = m->group = m->container = m->iommufd = -1;
	what = path == PATH_TYPE1 ? open_type1(m) : open_iommufd(m);
	if (!what && ioctl(m->fd, VFIO_DEVICE_GET_INFO, &info))
		what = "VFIO_DEVICE_GET_INFO";
	if (what) {
		fprintf(stderr, "# %s: %s: %s\n", path_names[path], what,
			strerror(errno));
		mdma_close(m);
		return -1;
	}
	return 0;
}

/* 0 or -errno */
static int dma_map(struct mdma *m, void *va, size_t size, __u64 iova)
{
	if (m->path == PATH_TYPE1) {
		struct vfio_iommu_type1_dma_map map = {
			.argsz = sizeof(map),
			.flags = VFIO_DMA_MAP_FLAG_READ |
				 VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = (uintptr_t)va,
			.iova = iova,
			.size = size,
		};

		return ioctl(m->container, VFIO_IOMMU_MAP_DMA, &map) ?
			-errno : 0;
	} else {
		struct iommu_ioas_map map = {
			.size = sizeof(map),
			.flags = IOMMU_IOAS_MAP_FIXED_IOVA |
				 IOMMU_IOAS_MAP_READABLE |
				 IOMMU_IOAS_MAP_WRITEABLE,
			.ioas_id = m->ioas_id,
			.user_va = (uintptr_t)va,
			.length = size,
			.iova = iova,
		};

		if (ioctl(m->iommufd, IOMMU_IOAS_MAP, &map))
			return -errno;
		return map.iova == iova ? 0 : -EADDRNOTAVAIL;
	}
}

/* 0 or -errno; the whole range must be unmapped */
static int dma_unmap(struct mdma *m, __u64 iova, size_t size)
{
	__u64 done;

	if (m->path == PATH_TYPE1) {
		struct vfio_iommu_type1_dma_unmap u = {
			.argsz = sizeof(u),
			.iova = iova,
			.size = size,
		};

		if (ioctl(m->container, VFIO_IOMMU_UNMAP_DMA, &u))
			return -errno;
		done = u.size;
	} else {
		struct iommu_ioas_unmap u = {
			.size = sizeof(u),
			.ioas_id = m->ioas_id,
			.iova = iova,
			.length = size,
		};

		if (ioctl(m->iommufd, IOMMU_IOAS_UNMAP, &u))
			return -errno;
		done = u.length;
	}
	return done == size ? 0 : -EIO;
}

static int map_both(struct mdma *m, void *src, void *dst)
{
	int ret = dma_map(m, src, BUF_SIZE, IOVA_SRC);

	if (!ret)
		ret = dma_map(m, dst, BUF_SIZE, IOVA_DST);
	if (ret)
		fprintf(stderr, "# %s: map: %s\n", path_names[m->path],
			strerror(-ret));
	return ret;
}

/*
 * Unmap both buffers (the device unpins them in its dma_unmap callback),
 * let the device's grace period pass, map them again: fresh IOVAs.
 */
static int remap_both(struct mdma *m, void *src, void *dst)
{
	int ret = dma_unmap(m, IOVA_SRC, BUF_SIZE);

	if (!ret)
		ret = dma_unmap(m, IOVA_DST, BUF_SIZE);
	if (ret) {
		fprintf(stderr, "# %s: unmap: %s\n", path_names[m->path],
			strerror(-ret));
		return ret;
	}
	usleep(MDMA_UNMAP_GRACE_US);
	return map_both(m, src, dst);
}

static int reg_wr(int fd, unsigned int off, __u32 val)
{
	__u32 v = htole32(val);

	return pwrite(fd, &v, 4, BAR0 + off) == 4 ? 0 : -1;
}

static int reg_rd(int fd, unsigned int off, __u32 *val)
{
	__u32 v;

	if (pread(fd, &v, 4, BAR0 + off) != 4)
		return -1;
	*val = le32toh(v);
	return 0;
}

/* One COPY; 0, or -1 with a message */
static int dma_copy(struct mdma *m, __u64 src, __u64 dst, __u32 len)
{
	__u32 st = 0;

	if (reg_wr(m->fd, REG_SRC_LO, (__u32)src) ||
	    reg_wr(m->fd, REG_SRC_HI, (__u32)(src >> 32)) ||
	    reg_wr(m->fd, REG_DST_LO, (__u32)dst) ||
	    reg_wr(m->fd, REG_DST_HI, (__u32)(dst >> 32)) ||
	    reg_wr(m->fd, REG_LEN, len) ||
	    reg_wr(m->fd, REG_OP, OP_COPY) ||
	    reg_wr(m->fd, REG_DOORBELL, 1) ||
	    reg_rd(m->fd, REG_STATUS, &st)) {
		fprintf(stderr, "# %s: register access: %s\n",
			path_names[m->path], strerror(errno));
		return -1;
	}
	if (st != ST_DONE) {
		fprintf(stderr, "# %s: COPY 0x%llx -> 0x%llx, 0x%x bytes: STATUS 0x%x\n",
			path_names[m->path], (unsigned long long)src,
			(unsigned long long)dst, len, st);
		return -1;
	}
	return 0;
}

/* vendor/dma_stats "misses": pages that had to be pinned so far */
static long long stat_misses(const char *uuid)
{
	char path[MDEV_PATH_MAX], buf[1024], *p;
	ssize_t n;

	mdev_dev_path(path, sizeof(path), uuid, "vendor/dma_stats");
	n = mdev_read_file(path, buf, sizeof(buf));
	if (n <= 0) {
		fprintf(stderr, "# reading %s: %s\n", path, strerror((int)-n));
		return -1;
	}
	p = strstr(buf, "\nmisses ");
	if (!p) {
		fprintf(stderr, "# %s: no misses line: %s\n", path, buf);
		return -1;
	}
	return strtoll(p + strlen("\nmisses "), NULL, 10);
}

/* The destination range holds the source range */
static int verify(const char *what, const __u8 *src, const __u8 *dst,
		  size_t len)
{
	size_t i;

	if (!memcmp(src, dst, len))
		return 0;
	for (i = 0; i < len && src[i] == dst[i]; i++)
		;
	fprintf(stderr, "# %s: byte 0x%zx of the destination is 0x%02x, expected 0x%02x\n",
		what, i, dst[i], src[i]);
	return -1;
}

static void report(enum dma_path path, const char *kind, unsigned long size,
		   double *mibs, double *us, int reps, unsigned long dmas)
{
	char sz[32];
	double lo, hi, m;

	m = median(mibs, reps);
	lo = mibs[0];
	hi = mibs[reps - 1];
	printf("bench mdma_%s_%s_%s core=%s value=%.3f unit=MiB/s dma_us=%.3f reps=%d dmas=%lu\n",
	       path_names[path], kind, size_name(size, sz, sizeof(sz)), core,
	       m, median(us, reps), reps, dmas);
	fflush(stdout);
	fprintf(stderr, "# %s %s %s: %.3f MiB/s (min %.3f, max %.3f), %d x %lu DMAs\n",
		path_names[path], kind, sz, m, lo, hi, reps, dmas);
}

static int dev_feature(int fd, __u32 flags, void *data, size_t size)
{
	__u64 buf[(sizeof(struct vfio_device_feature) + 32) / 8] = { 0 };
	struct vfio_device_feature *f = (void *)buf;

	f->argsz = sizeof(*f) + size;
	f->flags = VFIO_DEVICE_FEATURE_SET | flags;
	if (flags == VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT)
		f->flags = VFIO_DEVICE_FEATURE_GET | flags;
	if (size)
		memcpy(f->data, data, size);
	return ioctl(fd, VFIO_DEVICE_FEATURE, f) ? -errno : 0;
}

/* DMA logging at 4 KiB over [a, a + alen) and [b, b + blen) (blen 0: one range) */
static int log_start(struct mdma *m, __u64 a, __u64 alen, __u64 b, __u64 blen)
{
	struct vfio_device_feature_dma_logging_range r[2] = {
		{ .iova = a, .length = alen }, { .iova = b, .length = blen },
	};
	struct vfio_device_feature_dma_logging_control c = {
		.page_size = PG,
		.num_ranges = blen ? 2 : 1,
		.ranges = (uintptr_t)r,
	};
	int ret = dev_feature(m->fd, VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
			      &c, sizeof(c));

	if (ret)
		fprintf(stderr, "# DMA_LOGGING_START: %s\n", strerror(-ret));
	return ret;
}

static int log_stop(struct mdma *m)
{
	return dev_feature(m->fd, VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0);
}

/* A report of [iova, iova + len) at 4 KiB into bm; its number of set bits */
static long log_report(struct mdma *m, __u64 iova, __u64 len, __u64 *bm)
{
	struct vfio_device_feature_dma_logging_report r = {
		.iova = iova,
		.length = len,
		.page_size = PG,
		.bitmap = (uintptr_t)bm,
	};
	unsigned long i, words = len / PG / 64;
	long n = 0;
	int ret;

	memset(bm, 0, words * 8);
	ret = dev_feature(m->fd, VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
			  &r, sizeof(r));
	if (ret) {
		fprintf(stderr, "# DMA_LOGGING_REPORT: %s\n", strerror(-ret));
		return ret;
	}
	for (i = 0; i < words; i++)
		n += __builtin_popcountll(bm[i]);
	return n;
}

/* The first set bits of bm are exactly [0, n) */
static bool bits_prefix(const __u64 *bm, unsigned long nbits, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < nbits; i++)
		if (!!(bm[i / 64] >> (i % 64) & 1) != (i < n))
			return false;
	return true;
}

/* The report figures of one path: 1 GiB tracked, clean and 16 MiB dirty */
static int bench_report(struct mdma *m, const struct opts *o)
{
	const unsigned long len = 1024 * MiB, nbits = len / PG;
	double us[MAX_REPS];
	__u64 *bm = calloc(nbits / 64, 8);
	uint64_t t0;
	long n;
	int r, k;

	if (!bm || log_start(m, IOVA_DST, len, 0, 0))
		return -1;
	for (k = 0; k < 2; k++) {
		for (r = 0; r < o->reps; r++) {
			if (k && dma_copy(m, IOVA_SRC, IOVA_DST, 16 * MiB))
				goto fail;
			t0 = now_ns();
			n = log_report(m, IOVA_DST, len, bm);
			us[r] = (now_ns() - t0) / 1e3;
			if (n != (k ? 4096 : 0) ||
			    (k && !bits_prefix(bm, nbits, 4096))) {
				fprintf(stderr, "# %s report of 1 GiB: %ld pages dirty, expected %d\n",
					path_names[m->path], n, k ? 4096 : 0);
				goto fail;
			}
		}
		printf("bench mdma_%s_report1g_%s core=%s value=%.3f unit=us reps=%d\n",
		       path_names[m->path], k ? "16m" : "clean", core,
		       median(us, o->reps), o->reps);
		fflush(stdout);
	}
	free(bm);
	return log_stop(m);
fail:
	free(bm);
	log_stop(m);
	return -1;
}

static int mig_set(struct mdma *m, __u32 state, int *data_fd)
{
	struct vfio_device_feature_mig_state st = {
		.device_state = state,
		.data_fd = -1,
	};
	__u64 buf[(sizeof(struct vfio_device_feature) + sizeof(st) + 7) / 8] = { 0 };
	struct vfio_device_feature *f = (void *)buf;

	f->argsz = sizeof(*f) + sizeof(st);
	f->flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE;
	memcpy(f->data, &st, sizeof(st));
	if (ioctl(m->fd, VFIO_DEVICE_FEATURE, f))
		return -errno;
	memcpy(&st, f->data, sizeof(st));
	*data_fd = st.data_fd;
	return 0;
}

/* The stop-copy figure of one path */
static int bench_stopcopy(struct mdma *m, const struct opts *o)
{
	double us[MAX_REPS];
	__u8 stream[256];
	ssize_t len = 0, n;
	uint64_t t0;
	int r, fd = -1, dummy;

	for (r = 0; r < o->reps; r++) {
		t0 = now_ns();
		if (mig_set(m, VFIO_DEVICE_STATE_STOP_COPY, &fd) || fd < 0) {
			fprintf(stderr, "# STOP_COPY: %s\n", strerror(errno));
			return -1;
		}
		len = 0;
		while ((n = read(fd, stream + len, sizeof(stream) - len)) > 0)
			len += n;
		if (mig_set(m, VFIO_DEVICE_STATE_RUNNING, &dummy)) {
			close(fd);
			return -1;
		}
		us[r] = (now_ns() - t0) / 1e3;
		close(fd);
		if (n < 0 || len != MDMA_MIG_LEN) {
			fprintf(stderr, "# stop-copy stream of %zd bytes, expected %d\n",
				len, MDMA_MIG_LEN);
			return -1;
		}
	}
	printf("bench mdma_%s_stopcopy core=%s value=%.3f unit=us bytes=%zd reps=%d\n",
	       path_names[m->path], core, median(us, o->reps), len, o->reps);
	fflush(stdout);
	return 0;
}

/* REPS repetitions of ITERS copies of window 0: MiB/s and us per DMA of each */
static int time_warm(struct mdma *m, const struct opts *o, unsigned long size,
		     unsigned long iters, double *mibs, double *us)
{
	unsigned long i;
	uint64_t t0, t;
	int r;

	for (r = 0; r < o->reps; r++) {
		t0 = now_ns();
		for (i = 0; i < iters; i++)
			if (dma_copy(m, IOVA_SRC, IOVA_DST, size))
				return -1;
		t = now_ns() - t0;
		mibs[r] = (double)iters * size / MiB / (t / 1e9);
		us[r] = t / 1e3 / iters;
	}
	return 0;
}

/* The cold and warm figures of one size */
static int bench_size(struct mdma *m, const struct opts *o, __u8 *src,
		      __u8 *dst, unsigned long size)
{
	unsigned long windows = BUF_SIZE / size, iters, w;
	unsigned long pages = size / PG;
	double mibs[MAX_REPS], us[MAX_REPS];
	long long miss0, miss1;
	char what[96], sz[32];
	uint64_t t0, t;
	int r;

	if (windows > o->windows)
		windows = o->windows;
	iters = o->warm_bytes / size;
	if (!iters)
		iters = 1;
	size_name(size, sz, sizeof(sz));

	/* cold: the first DMA of each window after a remap pins its pages */
	for (r = 0; r < o->reps; r++) {
		if (!r) {
			/* what the first repetition copies is checked */
			memset(dst, (__u8)~size, windows * size);
		}
		if (remap_both(m, src, dst))
			return -1;
		miss0 = stat_misses(m->uuid);
		t0 = now_ns();
		for (w = 0; w < windows; w++)
			if (dma_copy(m, IOVA_SRC + w * size,
				     IOVA_DST + w * size, size))
				return -1;
		t = now_ns() - t0;
		miss1 = stat_misses(m->uuid);
		if (miss0 < 0 || miss1 < 0)
			return -1;
		if (miss1 - miss0 != (long long)(2 * windows * pages)) {
			fprintf(stderr, "# %s cold %s: %lld pages pinned, expected %lu: not cold\n",
				path_names[m->path], sz, miss1 - miss0,
				2 * windows * pages);
			return -1;
		}
		if (!r) {
			snprintf(what, sizeof(what), "%s cold %s",
				 path_names[m->path], sz);
			if (verify(what, src, dst, windows * size))
				return -1;
		}
		mibs[r] = (double)windows * size / MiB / (t / 1e9);
		us[r] = t / 1e3 / windows;
	}
	report(m->path, "cold", size, mibs, us, o->reps, windows);

	/* warm: window 0 again, its pages are pinned and cached */
	memset(dst, (__u8)size ^ 0x5a, size);
	miss0 = stat_misses(m->uuid);
	if (dma_copy(m, IOVA_SRC, IOVA_DST, size))
		return -1;
	snprintf(what, sizeof(what), "%s warm %s", path_names[m->path], sz);
	if (verify(what, src, dst, size))
		return -1;
	if (time_warm(m, o, size, iters, mibs, us))
		return -1;
	miss1 = stat_misses(m->uuid);
	if (miss0 < 0 || miss1 < 0)
		return -1;
	if (miss1 != miss0) {
		fprintf(stderr, "# %s warm %s: %lld pages pinned, expected none: not warm\n",
			path_names[m->path], sz, miss1 - miss0);
		return -1;
	}
	report(m->path, "warm", size, mibs, us, o->reps, iters);

	/* warmlog: the same with DMA logging on */
	if (log_start(m, IOVA_SRC, BUF_SIZE, IOVA_DST, BUF_SIZE))
		return -1;
	if (time_warm(m, o, size, iters, mibs, us))
		return -1;
	{
		unsigned long nbits = BUF_SIZE / PG;
		__u64 *bm = calloc(nbits / 64, 8);
		long n = bm ? log_report(m, IOVA_DST, BUF_SIZE, bm) : -ENOMEM;
		bool exact = n == (long)pages && bits_prefix(bm, nbits, pages);

		if (bm && exact)
			n = log_report(m, IOVA_SRC, BUF_SIZE, bm);
		free(bm);
		if (!exact || n) {
			fprintf(stderr, "# %s warmlog %s: the report is not exactly window 0's %lu destination pages\n",
				path_names[m->path], sz, pages);
			log_stop(m);
			return -1;
		}
	}
	if (log_stop(m))
		return -1;
	report(m->path, "warmlog", size, mibs, us, o->reps, iters);
	return 0;
}

/* Every size on one path, with its own mdev */
static int bench_path(const struct opts *o, enum dma_path path, __u8 *src,
		      __u8 *dst)
{
	char uuid[MDEV_UUID_LEN + 1];
	struct mdma m;
	__u32 id = 0;
	int ret, i, failed = 0;

	ret = mdev_uuid_gen(uuid);
	if (!ret)
		ret = mdev_create(&mdma_desc, mdma_type, uuid);
	if (ret) {
		fprintf(stderr, "# create %s: %s\n", mdma_type, strerror(-ret));
		return 1;
	}
	if (mdma_open(&m, path, uuid)) {
		failed = 1;
		goto out;
	}
	if (reg_rd(m.fd, REG_ID, &id) || id != MDMA_ID) {
		fprintf(stderr, "# %s: ID register 0x%x, expected 0x%x\n",
			path_names[path], id, MDMA_ID);
		failed = 1;
		goto out;
	}
	if (map_both(&m, src, dst)) {
		failed = 1;
		goto out;
	}
	fprintf(stderr, "# %s: mdma %s, 2 x %lu MiB mapped at 0x%llx and 0x%llx\n",
		path_names[path], uuid, BUF_SIZE / MiB,
		(unsigned long long)IOVA_SRC, (unsigned long long)IOVA_DST);
	for (i = 0; i < o->nr_sizes && !failed; i++)
		if (bench_size(&m, o, src, dst, o->sizes[i]))
			failed = 1;
	if (!failed && bench_report(&m, o))
		failed = 1;
	if (!failed && bench_stopcopy(&m, o))
		failed = 1;
out:
	/* closing the device unpins everything; the unmaps go with the fds */
	mdma_close(&m);
	ret = mdev_remove(uuid);
	if (ret) {
		fprintf(stderr, "# remove %s: %s\n", uuid, strerror(-ret));
		failed = 1;
	}
	return failed;
}

static void *buf_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "# mmap %zu bytes: %s\n", size, strerror(errno));
		exit(1);
	}
	return p;
}

/* ------------------------------------------------------------------ */
/* -n: devices copying at the same time */

struct conc {
	struct mdma m;
	char uuid[MDEV_UUID_LEN + 1];
	__u8 *src, *dst, *want;	/* want: the source's bytes */
	unsigned long size, iters;
	pthread_barrier_t *start;
	uint64_t ns;
	int failed;
	bool created;
};

static void *conc_run(void *arg)
{
	struct conc *c = arg;
	unsigned long i;
	uint64_t t0;

	pthread_barrier_wait(c->start);
	t0 = now_ns();
	for (i = 0; i < c->iters && !c->failed; i++)
		c->failed = !!dma_copy(&c->m, i % 2 ? IOVA_DST : IOVA_SRC,
				       i % 2 ? IOVA_SRC : IOVA_DST, c->size);
	c->ns = now_ns() - t0;
	return NULL;
}

/* Sets up device i of c; 0 or -1 with a message */
static int conc_setup(struct conc *c, enum dma_path path, unsigned long size)
{
	int ret = mdev_uuid_gen(c->uuid);

	if (!ret)
		ret = mdev_create(&mdma_desc, mdma_type, c->uuid);
	if (ret) {
		fprintf(stderr, "# create %s: %s\n", mdma_type, strerror(-ret));
		return -1;
	}
	c->created = true;
	if (mdma_open(&c->m, path, c->uuid))
		return -1;
	c->src = buf_alloc(size);
	c->dst = buf_alloc(size);
	c->want = buf_alloc(size);
	mdev_fill_random(c->src, size, 7);
	memcpy(c->want, c->src, size);
	memset(c->dst, 0, size);
	ret = dma_map(&c->m, c->src, size, IOVA_SRC);
	if (!ret)
		ret = dma_map(&c->m, c->dst, size, IOVA_DST);
	if (ret) {
		fprintf(stderr, "# %s: map: %s\n", path_names[path], strerror(-ret));
		return -1;
	}
	/* pins both buffers, untimed */
	if (dma_copy(&c->m, IOVA_SRC, IOVA_DST, size) ||
	    verify("first copy", c->src, c->dst, size))
		return -1;
	return 0;
}

static int bench_concurrent(const struct opts *o, enum dma_path path, int n)
{
	unsigned long size = o->sizes[0];
	unsigned long iters = o->warm_bytes / size ? o->warm_bytes / size : 1;
	double lo = 0, hi = 0, slowest = 0;
	struct conc c[MAX_CONC] = { 0 };
	pthread_t th[MAX_CONC];
	pthread_barrier_t start;
	int i, failed = 0;
	char sz[32];

	for (i = 0; i < n; i++)
		c[i].m.fd = c[i].m.group = c[i].m.container =
			c[i].m.iommufd = -1;
	for (i = 0; i < n && !failed; i++) {
		c[i].size = size;
		c[i].iters = iters;
		c[i].start = &start;
		failed = conc_setup(&c[i], path, size) ? 1 : 0;
	}
	if (!failed && pthread_barrier_init(&start, NULL, n)) {
		fprintf(stderr, "# pthread_barrier_init failed\n");
		failed = 1;
	}
	if (!failed) {
		for (i = 0; i < n; i++) {
			if (pthread_create(&th[i], NULL, conc_run, &c[i])) {
				/* the barrier would wait for it forever */
				fprintf(stderr, "# pthread_create failed\n");
				exit(1);
			}
		}
		for (i = 0; i < n; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&start);
		for (i = 0; i < n; i++) {
			double mibs = (double)size * iters / MiB /
				      (c[i].ns / 1e9);

			failed |= c[i].failed;
			lo = !i || mibs < lo ? mibs : lo;
			hi = mibs > hi ? mibs : hi;
			slowest = c[i].ns / 1e9 > slowest ? c[i].ns / 1e9 : slowest;
		}
		/* the data went back and forth: both buffers hold the source */
		for (i = 0; i < n && !failed; i++)
			failed = verify("source after the copies", c[i].want,
					c[i].src, size) ||
				 verify("destination after the copies",
					c[i].want, c[i].dst, size) ? 1 : 0;
	}
	if (!failed) {
		printf("bench %s_%s_conc%d_%s core=%s value=%.4f unit=MiB/s min=%.4f max=%.4f fair=%.3f bytes=%lu\n",
		       driver_name, path_names[path], n,
		       size_name(size, sz, sizeof(sz)), core,
		       (double)n * size * iters / MiB / slowest, lo, hi,
		       lo / hi, size * iters);
		fflush(stdout);
	}
	for (i = 0; i < n; i++) {
		mdma_close(&c[i].m);
		if (c[i].created && mdev_remove(c[i].uuid)) {
			fprintf(stderr, "# remove %s failed\n", c[i].uuid);
			failed = 1;
		}
		if (c[i].src)
			munmap(c[i].src, size);
		if (c[i].dst)
			munmap(c[i].dst, size);
		if (c[i].want)
			munmap(c[i].want, size);
	}
	return failed;
}

static unsigned long parse_size(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (*end == 'k' || *end == 'K')
		v *= KiB, end++;
	else if (*end == 'm' || *end == 'M')
		v *= MiB, end++;
	return *end ? 0 : v;
}

static void die_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-c core] [-p type1|iommufd|both] [-s sizes] [-r reps]\n"
		"          [-k windows] [-b bytes] [-n N[,N...]]\n", prog);
	exit(1);
}

int main(int argc, char **argv)
{
	struct opts o = {
		.sizes = { 4 * KiB, 64 * KiB, MiB, 16 * MiB },
		.nr_sizes = 4,
		.reps = 5,
		.windows = 256,
		.warm_bytes = 32 * MiB,
		.path = { true, true },
	};
	const char *env = getenv("MDEV_CORE");
	char path[MDEV_PATH_MAX], *s, *tok, *save;
	__u8 *src, *dst;
	int opt, failed = 0;

	if (env && *env)
		core = env;
	while ((opt = getopt(argc, argv, "c:p:s:r:k:b:n:h")) != -1) {
		switch (opt) {
		case 'c':
			core = optarg;
			break;
		case 'p':
			o.path[PATH_TYPE1] = !strcmp(optarg, "type1") ||
					     !strcmp(optarg, "both");
			o.path[PATH_IOMMUFD] = !strcmp(optarg, "iommufd") ||
					       !strcmp(optarg, "both");
			if (!o.path[PATH_TYPE1] && !o.path[PATH_IOMMUFD])
				die_usage(argv[0]);
			break;
		case 's':
			o.nr_sizes = 0;
			s = strdup(optarg);
			for (tok = strtok_r(s, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				unsigned long v = parse_size(tok);

				if (!v || v % PG || v > BUF_SIZE ||
				    o.nr_sizes == MAX_SIZES) {
					fprintf(stderr, "# bad size %s\n", tok);
					die_usage(argv[0]);
				}
				o.sizes[o.nr_sizes++] = v;
			}
			free(s);
			if (!o.nr_sizes)
				die_usage(argv[0]);
			break;
		case 'r':
			o.reps = atoi(optarg);
			if (o.reps < 1 || o.reps > MAX_REPS)
				die_usage(argv[0]);
			break;
		case 'k':
			o.windows = parse_size(optarg);
			if (!o.windows)
				die_usage(argv[0]);
			break;
		case 'b':
			o.warm_bytes = parse_size(optarg);
			if (!o.warm_bytes)
				die_usage(argv[0]);
			break;
		case 'n': {
			int k = 0;

			s = strdup(optarg);
			for (tok = strtok_r(s, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				int v = atoi(tok);

				if (v < 1 || v > MAX_CONC || k == MAX_CONC - 1)
					die_usage(argv[0]);
				o.conc[k++] = v;
			}
			free(s);
			o.conc[k] = 0;
			if (!k)
				die_usage(argv[0]);
			break;
		}
		default:
			die_usage(argv[0]);
		}
	}
	if (optind != argc)
		die_usage(argv[0]);
	if (geteuid()) {
		fprintf(stderr, "# needs root\n");
		return KSFT_SKIP;
	}
	env = getenv("MDMA_PARENT");
	if (env && *env) {
		mdma_desc.parent = env;
		mdma_type = "mdma_edu-dma";
		driver_name = "mdma_edu";
	}
	mdev_type_path(path, sizeof(path), &mdma_desc, mdma_type, "create");
	if (!mdev_exists(path)) {
		fprintf(stderr, "# %s missing: load mdma\n", path);
		return KSFT_SKIP;
	}

	if (o.conc[0]) {
		enum dma_path p = o.path[PATH_TYPE1] ? PATH_TYPE1 : PATH_IOMMUFD;
		int k;

		for (k = 0; o.conc[k]; k++)
			failed |= bench_concurrent(&o, p, o.conc[k]);
		return failed;
	}

	/* every page present before the first pin: pinning faults nothing in */
	src = buf_alloc(BUF_SIZE);
	dst = buf_alloc(BUF_SIZE);
	mdev_fill_random(src, BUF_SIZE, 1);
	memset(dst, 0, BUF_SIZE);

	if (o.path[PATH_TYPE1])
		failed |= bench_path(&o, PATH_TYPE1, src, dst);
	if (o.path[PATH_IOMMUFD])
		failed |= bench_path(&o, PATH_IOMMUFD, src, dst);
	munmap(src, BUF_SIZE);
	munmap(dst, BUF_SIZE);
	return failed;
}
