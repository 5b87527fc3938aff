// SPDX-License-Identifier: GPL-2.0
/*
 * mdma, the mediated DMA engine sample (samples/vfio-mdev/mdma.rs): a PCI
 * device whose BAR0 registers run COPY, FILL and CRC32 operations on guest
 * memory given by IOVA.  The device translates IOVAs by pinning the pages
 * (vfio_pin_pages) and keeps the pins in an IOVA -> page cache until
 * userspace unmaps the range or closes the device.
 *
 * Every test runs on both VFIO paths: the group/container path (type1 v2,
 * VFIO_IOMMU_MAP_DMA) and the iommufd cdev path (IOMMU_IOAS_MAP with a
 * fixed IOVA).  All data is checked byte for byte, the whole buffer around
 * the touched range included; a failed operation must not change memory.
 *
 * Pinned-page accounting of the process (read in 6.12, holds on 7.3.4):
 *  - type1 (drivers/vfio/vfio_iommu_type1.c): vfio_pin_pages on a container
 *    without an IOMMU domain accounts each newly pinned page with
 *    vfio_lock_acct() -> __account_locked_vm(): mm->locked_vm, /proc VmLck,
 *    also for CAP_IPC_LOCK (only the rlimit check is skipped).  Nothing is
 *    pinned by VFIO_IOMMU_MAP_DMA itself (no domain).
 *  - iommufd (drivers/iommu/iommufd/pages.c do_update_pinned()): every
 *    change of the number of pinned pages of an iopt_pages goes to
 *    mm->pinned_vm, /proc VmPin, whatever the account mode; root has
 *    CAP_IPC_LOCK so the mode is IOPT_PAGES_ACCOUNT_NONE and locked_vm
 *    (VmLck) is not touched.  IOMMU_IOAS_MAP pins nothing without a domain.
 *
 * Needs "mdma" in $MDEV_SAMPLES (skipped otherwise); listed but without
 * /sys/class/mdev_bus/mdma fails.
 *
 * MDMA_PARENT=<PCI address> runs the same tests against mdma_edu
 * (samples/vfio-mdev/mdma_edu.rs), whose mdevs have this device's registers
 * but whose requests QEMU's edu device runs with its DMA engine: the parent
 * is that PCI function, the sample key, module and mdev driver "mdma_edu",
 * the type "mdma_edu-dma".
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "mdev_harness.h"

/* kernel::vfio::pinmap::UNMAP_GRACE_NS (20 ms), with a margin */
#define MDMA_UNMAP_GRACE_US	(60 * 1000)

#define MDMA_SAMPLE		(mdma_desc.sample)
#define MDMA_TYPE		(mdma_desc.types[0].id)
#define MDMA_TYPE_NAME		"Mediated DMA engine\n"
#define MDMA_INSTANCES		8

#define PG			4096UL
#define MiB			(1UL << 20)

#define REGION(i)		((__u64)(i) << 40)
#define BAR0			REGION(VFIO_PCI_BAR0_REGION_INDEX)
#define CFG			REGION(VFIO_PCI_CONFIG_REGION_INDEX)
#define BAR0_SIZE		4096
#define CFG_SIZE		256

/* BAR0 registers, 32 bit little endian */
#define REG_ID			0x00
#define REG_STATUS		0x04
#define REG_SRC_LO		0x08
#define REG_SRC_HI		0x0c
#define REG_DST_LO		0x10
#define REG_DST_HI		0x14
#define REG_LEN			0x18
#define REG_OP			0x1c
#define REG_FILL		0x20
#define REG_RESULT		0x24
#define REG_DOORBELL		0x28
#define REG_IRQ_ENABLE		0x2c

#define MDMA_ID			0x4d444d41

#define ST_DONE			(1u << 1)
#define ST_ERROR		(1u << 2)
#define ERR_FAULT		1
#define ERR_PERM		2
#define ERR_LENGTH		3
#define ERR_OP			4
/* STATUS after a failed operation: completed (DONE), ERROR and the code */
#define ST_ERR(code)		(ST_DONE | ST_ERROR | ((__u32)(code) << 8))

#define OP_COPY			1
#define OP_FILL			2
#define OP_CRC32		3

#define MAX_LEN			(64u << 20)

/*
 * IOVAs.  DST is above 4 GiB so that the _HI registers matter; HOLE is
 * never mapped; TOP + 0x2000 overflows 64 bits.
 */
#define IOVA_SRC		0x10000000ULL
#define IOVA_AUX		0x20000000ULL
#define IOVA_RO			0x30000000ULL
#define IOVA_HOLE		0x40000000ULL
#define IOVA_DST		0x4d4100000000ULL
#define IOVA_TOP		0xfffffffffffff000ULL

#define EVENT_TIMEOUT_MS	5000
#define NO_EVENT_MS		300

/* Everything the tests need to know about mdma, for the mdev_common helpers */
static struct mdev_sample_desc mdma_desc = {
	.sample = "mdma",
	.module = "mdma",
	.parent = "mdma",
	.parent_devpath = "/devices/virtual/mdma/mdma",
	.parent_subsystem = "mdma",
	.driver = "mdma",
	.device_api = "vfio-pci\n",
	.pool = MDMA_INSTANCES,
	.core_counter = true,
	.exhausted_errno = EUSERS,
	.nr_types = 1,
	.types = {
		{ "mdma-dma", MDMA_TYPE_NAME, NULL, 1, "vendor/dma_stats",
		  NULL },
	},
	.vfio_flags = VFIO_DEVICE_FLAGS_PCI,
	.num_regions = VFIO_PCI_NUM_REGIONS,
	.num_irqs = VFIO_PCI_NUM_IRQS,
	.config_offset = CFG,
};

/* MDMA_PARENT=<PCI address>: the mdevs of that edu function (mdma_edu) */
static void __attribute__((constructor)) mdma_desc_from_env(void)
{
	static char devpath[MDEV_PATH_MAX];
	const char *parent = getenv("MDMA_PARENT");
	char link[MDEV_PATH_MAX], real[MDEV_PATH_MAX];

	if (!parent || !*parent)
		return;
	snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s", parent);
	if (!realpath(link, real) || strncmp(real, "/sys/", 5)) {
		fprintf(stderr, "MDMA_PARENT=%s: %s is not a device\n", parent,
			link);
		exit(KSFT_FAIL);
	}
	snprintf(devpath, sizeof(devpath), "%s", real + 4);
	mdma_desc.sample = "mdma_edu";
	mdma_desc.module = "mdma_edu";
	mdma_desc.parent = parent;
	mdma_desc.parent_devpath = devpath;
	mdma_desc.parent_subsystem = "pci";
	mdma_desc.driver = "mdma_edu";
	mdma_desc.types[0].id = "mdma_edu-dma";
}

/* ------------------------------------------------------------------ */
/* data helpers */

static __u32 crc_table[256];

static void crc_init(void)
{
	__u32 i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* zlib / IEEE 802.3 crc32: crc32_le(~0, buf, len) ^ ~0 */
static __u32 crc32_ieee(const void *buf, size_t len)
{
	const __u8 *p = buf;
	__u32 c = ~0u;

	if (!crc_table[1])
		crc_init();
	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

/* First differing offset of a and b, or -1 */
static long first_diff(const void *a, const void *b, size_t len)
{
	const __u8 *x = a, *y = b;
	size_t i;

	if (!memcmp(a, b, len))
		return -1;
	for (i = 0; i < len; i++)
		if (x[i] != y[i])
			return (long)i;
	return -1;
}

static const char *status_str(__u32 st, char *buf, size_t size)
{
	static const char *const codes[] = {
		"none", "FAULT", "PERM", "LENGTH", "OP",
	};
	unsigned int code = (st >> 8) & 0xff;

	snprintf(buf, size, "%s%s%scode %u (%s)%s",
		 st & ST_DONE ? "DONE " : "", st & ST_ERROR ? "ERROR " : "",
		 !(st & (ST_DONE | ST_ERROR)) ? "idle " : "", code,
		 code < 5 ? codes[code] : "?",
		 st & ~(ST_DONE | ST_ERROR | 0xff00u) ? " + unknown bits" : "");
	return buf;
}

/* ------------------------------------------------------------------ */
/* fixture */

FIXTURE(mdma) {
	struct mdev_tracker t;
	struct mdev_vfio v;
	enum mdev_vfio_path path;
	char uuid[MDEV_UUID_LEN + 1];
	struct vfio_device_info info;
	int fd;
	int efd;
	/* a second device in the same container / IOAS */
	char uuid2[MDEV_UUID_LEN + 1];
	int group2;
	int fd2;
	/* more devices (concurrent_devices), closed by the teardown */
	int xgroup[3];
	int xfd[3];
};

FIXTURE_VARIANT(mdma) {
	enum mdev_vfio_path path;
};

FIXTURE_VARIANT_ADD(mdma, group) { MDEV_VFIO_GROUP };
FIXTURE_VARIANT_ADD(mdma, cdev) { MDEV_VFIO_CDEV };

/* SKIP if mdma is not listed, FAIL if it is but its parent is missing */
static bool mdma_sample_ready(struct __test_metadata *_metadata)
{
	char path[MDEV_PATH_MAX];
	int err;

	if (!mdev_sample_listed(MDMA_SAMPLE)) {
		SKIP(return false, "sample %s not in MDEV_SAMPLES=\"%s\"",
		     MDMA_SAMPLE, mdev_samples_env());
	}
	mdev_parent_path(path, sizeof(path), &mdma_desc, NULL);
	err = mdev_lstat_errno(path);
	ASSERT_EQ(0, err) {
		TH_LOG("sample %s is listed in MDEV_SAMPLES but %s: %s (module %s loaded: %d)",
		       MDMA_SAMPLE, path, strerror(err), mdma_desc.module,
		       mdev_module_loaded(mdma_desc.module));
	}
	mdev_reap_all();
	return true;
}

static void mdma_open(struct __test_metadata *_metadata,
		      FIXTURE_DATA(mdma) *self)
{
	mdev_vfio_open(_metadata, &self->v, self->uuid, self->path);
	self->fd = self->v.device;
	mdev_vfio_info(_metadata, self->fd, &self->info);
}

/* Close the device fd only; the container / iommufd stays */
static void mdma_close_device(FIXTURE_DATA(mdma) *self)
{
	if (self->v.device >= 0)
		close(self->v.device);
	self->v.device = -1;
	self->fd = -1;
}

FIXTURE_SETUP(mdma)
{
	self->t.n = 0;
	self->fd = -1;
	self->efd = -1;
	self->group2 = -1;
	self->fd2 = -1;
	for (int i = 0; i < 3; i++)
		self->xgroup[i] = self->xfd[i] = -1;
	self->path = variant->path;
	mdev_vfio_init(&self->v);
	if (!mdma_sample_ready(_metadata))
		return;
	mdev_new(_metadata, &self->t, &mdma_desc, MDMA_TYPE, self->uuid);
	mdma_open(_metadata, self);
}

FIXTURE_TEARDOWN(mdma)
{
	if (self->efd >= 0)
		close(self->efd);
	/* remove blocks while a device is open: close everything first */
	if (self->fd2 >= 0)
		close(self->fd2);
	if (self->group2 >= 0)
		close(self->group2);
	for (int i = 0; i < 3; i++) {
		if (self->xfd[i] >= 0)
			close(self->xfd[i]);
		if (self->xgroup[i] >= 0)
			close(self->xgroup[i]);
	}
	mdev_vfio_close(&self->v);
	mdev_cleanup(&self->t);
}

/* ------------------------------------------------------------------ */
/* registers */

static __u32 reg_rd(struct __test_metadata *_metadata, int fd,
		    unsigned int off)
{
	__u32 v = 0;
	ssize_t n = pread(fd, &v, 4, BAR0 + off);

	ASSERT_EQ(4, n) {
		TH_LOG("pread BAR0 0x%x: %s", off, strerror(errno));
	}
	return le32toh(v);
}

static void reg_wr(struct __test_metadata *_metadata, int fd,
		   unsigned int off, __u32 val)
{
	__u32 v = htole32(val);
	ssize_t n = pwrite(fd, &v, 4, BAR0 + off);

	ASSERT_EQ(4, n) {
		TH_LOG("pwrite BAR0 0x%x = 0x%x: %s", off, val,
		       strerror(errno));
	}
}

#define RD(off)		reg_rd(_metadata, self->fd, off)
#define WR(off, val)	reg_wr(_metadata, self->fd, off, val)

/* Program every operand register, ring the doorbell, return STATUS */
static __u32 dma_run(struct __test_metadata *_metadata, int fd, __u32 op,
		     __u64 src, __u64 dst, __u32 len, __u32 fill)
{
	reg_wr(_metadata, fd, REG_SRC_LO, (__u32)src);
	reg_wr(_metadata, fd, REG_SRC_HI, (__u32)(src >> 32));
	reg_wr(_metadata, fd, REG_DST_LO, (__u32)dst);
	reg_wr(_metadata, fd, REG_DST_HI, (__u32)(dst >> 32));
	reg_wr(_metadata, fd, REG_LEN, len);
	reg_wr(_metadata, fd, REG_OP, op);
	reg_wr(_metadata, fd, REG_FILL, fill);
	reg_wr(_metadata, fd, REG_DOORBELL, 1);
	return reg_rd(_metadata, fd, REG_STATUS);
}

#define DMA_EXPECT(want, op, src, dst, len, fill) do {			\
	__u32 __want = (want);						\
	__u32 __st = dma_run(_metadata, self->fd, op, src, dst, len, fill); \
	char __b1[80], __b2[80];					\
	ASSERT_EQ(__want, __st) {					\
		TH_LOG("op %u src 0x%llx dst 0x%llx len 0x%x fill 0x%x: STATUS 0x%x (%s), expected 0x%x (%s)", \
		       (__u32)(op), (unsigned long long)(src),		\
		       (unsigned long long)(dst), (__u32)(len), (__u32)(fill), \
		       __st, status_str(__st, __b1, sizeof(__b1)),	\
		       __want, status_str(__want, __b2, sizeof(__b2)));	\
	}								\
} while (0)

#define COPY_OK(src, dst, len)	DMA_EXPECT(ST_DONE, OP_COPY, src, dst, len, 0)
#define FILL_OK(dst, len, v)	DMA_EXPECT(ST_DONE, OP_FILL, 0, dst, len, v)
#define CRC_OK(src, len)	DMA_EXPECT(ST_DONE, OP_CRC32, src, 0, len, 0)

/* Buffers are compared whole: the touched range and what is around it */
#define BUF_EXPECT(buf, want, len, what) do {				\
	long __d = first_diff(buf, want, len);				\
	ASSERT_EQ(-1, __d) {						\
		TH_LOG("%s: byte 0x%lx is 0x%02x, expected 0x%02x", what, \
		       __d, ((__u8 *)(buf))[__d], ((__u8 *)(want))[__d]); \
	}								\
} while (0)

/* ------------------------------------------------------------------ */
/* DMA mappings on either path */

static void *buf_alloc(struct __test_metadata *_metadata, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, p) {
		TH_LOG("mmap %zu bytes: %s", size, strerror(errno));
	}
	return p;
}

static int dma_map(FIXTURE_DATA(mdma) *self, void *va, size_t size,
		   __u64 iova, bool writable)
{
	if (self->path == MDEV_VFIO_GROUP) {
		struct vfio_iommu_type1_dma_map m = {
			.argsz = sizeof(m),
			.flags = VFIO_DMA_MAP_FLAG_READ |
				 (writable ? VFIO_DMA_MAP_FLAG_WRITE : 0),
			.vaddr = (uintptr_t)va,
			.iova = iova,
			.size = size,
		};

		return ioctl(self->v.container, VFIO_IOMMU_MAP_DMA, &m) ?
			-errno : 0;
	} else {
		struct iommu_ioas_map m = {
			.size = sizeof(m),
			.flags = IOMMU_IOAS_MAP_FIXED_IOVA |
				 IOMMU_IOAS_MAP_READABLE |
				 (writable ? IOMMU_IOAS_MAP_WRITEABLE : 0),
			.ioas_id = self->v.ioas_id,
			.user_va = (uintptr_t)va,
			.length = size,
			.iova = iova,
		};

		if (ioctl(self->v.iommufd, IOMMU_IOAS_MAP, &m))
			return -errno;
		return m.iova == iova ? 0 : -EADDRNOTAVAIL;
	}
}

/* 0 or -errno; *done: the size the kernel reports as unmapped */
static int dma_unmap(FIXTURE_DATA(mdma) *self, __u64 iova, size_t size,
		     __u64 *done)
{
	if (self->path == MDEV_VFIO_GROUP) {
		struct vfio_iommu_type1_dma_unmap u = {
			.argsz = sizeof(u),
			.iova = iova,
			.size = size,
		};

		if (ioctl(self->v.container, VFIO_IOMMU_UNMAP_DMA, &u))
			return -errno;
		*done = u.size;
	} else {
		struct iommu_ioas_unmap u = {
			.size = sizeof(u),
			.ioas_id = self->v.ioas_id,
			.iova = iova,
			.length = size,
		};

		if (ioctl(self->v.iommufd, IOMMU_IOAS_UNMAP, &u))
			return -errno;
		*done = u.length;
	}
	return 0;
}

static void map_ok(struct __test_metadata *_metadata, FIXTURE_DATA(mdma) *self,
		   void *va, size_t size, __u64 iova, bool writable)
{
	int ret = dma_map(self, va, size, iova, writable);

	ASSERT_EQ(0, ret) {
		TH_LOG("%s map of %zu bytes at IOVA 0x%llx (%s): %s",
		       mdev_path_name(self->path), size,
		       (unsigned long long)iova, writable ? "rw" : "ro",
		       strerror(-ret));
	}
}

static void unmap_ok(struct __test_metadata *_metadata,
		     FIXTURE_DATA(mdma) *self, __u64 iova, size_t size)
{
	__u64 done = 0;
	int ret = dma_unmap(self, iova, size, &done);

	ASSERT_EQ(0, ret) {
		TH_LOG("%s unmap of %zu bytes at IOVA 0x%llx: %s",
		       mdev_path_name(self->path), size,
		       (unsigned long long)iova, strerror(-ret));
	}
	ASSERT_EQ(size, done);
	/*
	 * For 20 ms after an unmap the device refuses to pin the range again
	 * (DMAs to it fail with FAULT), so that type1's unmap retry loop
	 * cannot be fed new pins; let that pass before the IOVAs are reused.
	 */
	usleep(MDMA_UNMAP_GRACE_US);
}

/* A mapped buffer filled with pseudo-random bytes of seed */
static __u8 *dma_buf(struct __test_metadata *_metadata,
		     FIXTURE_DATA(mdma) *self, size_t size, __u64 iova,
		     bool writable, __u64 seed)
{
	__u8 *p = buf_alloc(_metadata, size);

	mdev_fill_random(p, size, seed);
	map_ok(_metadata, self, p, size, iova, writable);
	return p;
}

/* A copy of a buffer, for "unchanged" checks */
static __u8 *snapshot(struct __test_metadata *_metadata, const void *p,
		      size_t size)
{
	__u8 *s = buf_alloc(_metadata, size);

	memcpy(s, p, size);
	return s;
}

/* ------------------------------------------------------------------ */
/* statistics and accounting */

enum {
	S_PINNED, S_RANGES, S_HITS, S_MISSES, S_PINS, S_UNPINS, S_NR,
};

static const char *const stat_keys[S_NR] = {
	"pinned_pages", "ranges", "hits", "misses", "pins", "unpins",
};

struct dma_stats {
	unsigned long long v[S_NR];
};

/* vendor/dma_stats: exactly "<key> <decimal>\n" for each key, in order */
static void stats_read(struct __test_metadata *_metadata, const char *uuid,
		       struct dma_stats *st)
{
	char path[MDEV_PATH_MAX], buf[1024], *p, *end;
	ssize_t n;
	int i;

	mdev_dev_path(path, sizeof(path), uuid, "vendor/dma_stats");
	n = mdev_read_file(path, buf, sizeof(buf));
	ASSERT_LT(0, n) {
		TH_LOG("reading %s: %s", path, strerror((int)-n));
	}
	p = buf;
	for (i = 0; i < S_NR; i++) {
		size_t klen = strlen(stat_keys[i]);

		ASSERT_TRUE(!strncmp(p, stat_keys[i], klen) && p[klen] == ' ') {
			TH_LOG("%s: line %d is not \"%s N\": %s", path, i + 1,
			       stat_keys[i], buf);
		}
		p += klen + 1;
		ASSERT_TRUE(*p >= '0' && *p <= '9') {
			TH_LOG("%s: no number for %s: %s", path, stat_keys[i],
			       buf);
		}
		errno = 0;
		st->v[i] = strtoull(p, &end, 10);
		ASSERT_TRUE(!errno && *end == '\n') {
			TH_LOG("%s: bad value for %s: %s", path, stat_keys[i],
			       buf);
		}
		p = end + 1;
	}
	ASSERT_EQ('\0', *p) {
		TH_LOG("%s: trailing content: %s", path, buf);
	}
}

static unsigned long long stat_get(struct __test_metadata *_metadata,
				   const char *uuid, int key)
{
	struct dma_stats st;

	stats_read(_metadata, uuid, &st);
	return st.v[key];
}

#define STATS_EXPECT(uuid, pinned, ranges, hits, misses, pins, unpins) do { \
	const unsigned long long __w[S_NR] = {				\
		pinned, ranges, hits, misses, pins, unpins,		\
	};								\
	struct dma_stats __s;						\
	int __i;							\
	stats_read(_metadata, uuid, &__s);				\
	for (__i = 0; __i < S_NR; __i++) {				\
		ASSERT_EQ(__w[__i], __s.v[__i]) {			\
			TH_LOG("dma_stats %s", stat_keys[__i]);		\
		}							\
	}								\
} while (0)

/* A "VmXxx:   N kB" line of /proc/self/status, in kB */
static long long proc_status_kb(struct __test_metadata *_metadata,
				const char *field)
{
	char buf[8192], key[32], *p, *end;
	long long v;
	ssize_t n;

	n = mdev_read_file("/proc/self/status", buf, sizeof(buf));
	ASSERT_LT(0, n) {
		TH_LOG("reading /proc/self/status: %s", strerror((int)-n));
	}
	snprintf(key, sizeof(key), "\n%s:", field);
	p = strstr(buf, key);
	ASSERT_TRUE(p != NULL) {
		TH_LOG("no %s in /proc/self/status", field);
	}
	p += strlen(key);
	v = strtoll(p, &end, 10);
	ASSERT_EQ(0, strncmp(end, " kB\n", 4)) {
		TH_LOG("%s line of /proc/self/status", field);
	}
	return v;
}

/* The /proc/self/status field that counts this path's pinned pages */
static const char *acct_field(FIXTURE_DATA(mdma) *self)
{
	return self->path == MDEV_VFIO_GROUP ? "VmLck" : "VmPin";
}

static const char *other_field(FIXTURE_DATA(mdma) *self)
{
	return self->path == MDEV_VFIO_GROUP ? "VmPin" : "VmLck";
}

struct acct {
	long long pinned;	/* kB in acct_field() */
	long long other;	/* kB in other_field() */
};

static void acct_read(struct __test_metadata *_metadata,
		      FIXTURE_DATA(mdma) *self, struct acct *a)
{
	a->pinned = proc_status_kb(_metadata, acct_field(self));
	a->other = proc_status_kb(_metadata, other_field(self));
}

/* the process accounts exactly the device's pinned pages above base */
#define ACCT_EXPECT(base, pages) do {					\
	struct acct __a;						\
	acct_read(_metadata, self, &__a);				\
	ASSERT_EQ((base)->pinned + (long long)(pages) * (long long)(PG / 1024), \
		  __a.pinned) {						\
		TH_LOG("%s with %llu pages pinned (%s path), base %lld kB", \
		       acct_field(self), (unsigned long long)(pages),	\
		       mdev_path_name(self->path), (base)->pinned);	\
	}								\
	ASSERT_EQ((base)->other, __a.other) {				\
		TH_LOG("%s must not change on the %s path",		\
		       other_field(self), mdev_path_name(self->path));	\
	}								\
} while (0)

/* ------------------------------------------------------------------ */
/* interrupts */

/* ------------------------------------------------------------------ */
/* sysfs */

/*
 * available_instances once the releases in flight are done: the core gives an
 * instance back when the mdev is released, which CONFIG_DEBUG_KOBJECT_RELEASE
 * (make test-kasan) defers by up to 3 s after the removal.  Waits up to 10 s
 * for at least want, then returns the value (the caller asserts it exactly).
 */
static unsigned int avail_settled(struct __test_metadata *_metadata,
				  unsigned int want)
{
	unsigned int val = 0;
	int i;

	for (i = 0; i < 100; i++) {
		val = mdev_avail(_metadata, &mdma_desc, MDMA_TYPE);
		if (val >= want)
			break;
		usleep(100000);
	}
	return val;
}

/* type attributes, the core's instance counter, dma_stats of a new device */
TEST_F_TIMEOUT(mdma, sysfs, MDEV_TIMEOUT)
{
	char path[MDEV_PATH_MAX], uuid[MDEV_UUID_LEN + 1];
	char extra[MDMA_INSTANCES][MDEV_UUID_LEN + 1];
	unsigned int i;
	int ret;

	mdev_type_path(path, sizeof(path), &mdma_desc, MDMA_TYPE, "name");
	mdev_expect_file(_metadata, path, MDMA_TYPE_NAME);
	mdev_type_path(path, sizeof(path), &mdma_desc, MDMA_TYPE, "device_api");
	mdev_expect_file(_metadata, path, "vfio-pci\n");
	mdev_parent_path(path, sizeof(path), &mdma_desc, "mdev_supported_types");
	ASSERT_EQ(1, mdev_count_dir(path, NULL, 0));

	/* one device from the fixture */
	ASSERT_EQ(MDMA_INSTANCES - 1, avail_settled(_metadata, MDMA_INSTANCES - 1));
	STATS_EXPECT(self->uuid, 0, 0, 0, 0, 0, 0);

	for (i = 1; i < MDMA_INSTANCES; i++) {
		mdev_new(_metadata, &self->t, &mdma_desc, MDMA_TYPE, extra[i]);
		ASSERT_EQ(MDMA_INSTANCES - 1 - i,
			  mdev_avail(_metadata, &mdma_desc, MDMA_TYPE));
		STATS_EXPECT(extra[i], 0, 0, 0, 0, 0, 0);
	}
	ASSERT_EQ(0, mdev_uuid_gen(uuid));
	ret = mdev_create(&mdma_desc, MDMA_TYPE, uuid);
	if (!ret)
		mdev_track(&self->t, uuid);
	ASSERT_EQ(-EUSERS, ret);
	mdev_del(_metadata, &self->t, extra[1]);
	ASSERT_EQ(1, avail_settled(_metadata, 1));
}

/* ------------------------------------------------------------------ */
/* device description */

TEST_F_TIMEOUT(mdma, device_info, MDEV_TIMEOUT)
{
	struct vfio_region_info ri;
	struct vfio_irq_info ii;
	__u8 cfg[CFG_SIZE];
	unsigned int i;

	ASSERT_EQ(VFIO_DEVICE_FLAGS_PCI,
		  self->info.flags & ~VFIO_DEVICE_FLAGS_RESET);
	ASSERT_EQ(VFIO_PCI_NUM_REGIONS, self->info.num_regions);
	ASSERT_EQ(VFIO_PCI_NUM_IRQS, self->info.num_irqs);

	for (i = 0; i < VFIO_PCI_NUM_REGIONS; i++) {
		memset(&ri, 0, sizeof(ri));
		ri.argsz = sizeof(ri);
		ri.index = i;
		ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_REGION_INFO, &ri)) {
			TH_LOG("VFIO_DEVICE_GET_REGION_INFO(%u): %s", i,
			       strerror(errno));
		}
		ASSERT_EQ(REGION(i), ri.offset) {
			TH_LOG("region %u offset", i);
		}
		if (i == VFIO_PCI_BAR0_REGION_INDEX) {
			ASSERT_EQ(BAR0_SIZE, ri.size);
			ASSERT_EQ(VFIO_REGION_INFO_FLAG_READ |
				  VFIO_REGION_INFO_FLAG_WRITE, ri.flags);
		} else if (i == VFIO_PCI_CONFIG_REGION_INDEX) {
			ASSERT_EQ(CFG_SIZE, ri.size);
			ASSERT_EQ(VFIO_REGION_INFO_FLAG_READ |
				  VFIO_REGION_INFO_FLAG_WRITE, ri.flags);
		} else {
			ASSERT_EQ(0, ri.size) {
				TH_LOG("region %u size", i);
			}
		}
	}

	memset(&ii, 0, sizeof(ii));
	ii.argsz = sizeof(ii);
	ii.index = VFIO_PCI_INTX_IRQ_INDEX;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_IRQ_INFO, &ii));
	ASSERT_EQ(1, ii.count);
	ASSERT_EQ(VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
		  VFIO_IRQ_INFO_AUTOMASKED, ii.flags);
	memset(&ii, 0, sizeof(ii));
	ii.argsz = sizeof(ii);
	ii.index = VFIO_PCI_MSI_IRQ_INDEX;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_IRQ_INFO, &ii));
	ASSERT_EQ(1, ii.count);
	ASSERT_EQ(VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, ii.flags);

	/* PCI config space, read as dwords */
	for (i = 0; i < CFG_SIZE; i += 4) {
		ASSERT_EQ(4, pread(self->fd, cfg + i, 4, CFG + i)) {
			TH_LOG("pread config 0x%x: %s", i, strerror(errno));
		}
	}
	ASSERT_EQ(0x4d44, cfg[0] | cfg[1] << 8);	/* vendor */
	ASSERT_EQ(0x4d41, cfg[2] | cfg[3] << 8);	/* device */
	ASSERT_EQ(0, cfg[6] & 0x10);			/* no capability list */
	ASSERT_EQ(0x00, cfg[0x09]);			/* prog-if */
	ASSERT_EQ(0x80, cfg[0x0a]);			/* other */
	ASSERT_EQ(0x08, cfg[0x0b]);			/* system peripheral */
	ASSERT_EQ(0x00, cfg[0x34]);			/* capability pointer */
	ASSERT_EQ(0x01, cfg[0x3d]);			/* INTA# */
}

/* ID, initial STATUS, operand read-back, access size and alignment */
TEST_F_TIMEOUT(mdma, registers, MDEV_TIMEOUT)
{
	static const unsigned int rw[] = {
		REG_SRC_LO, REG_SRC_HI, REG_DST_LO, REG_DST_HI, REG_LEN,
		REG_OP, REG_FILL,
	};
	__u8 b[8] = { 0 };
	unsigned int i;

	ASSERT_EQ(MDMA_ID, RD(REG_ID));
	ASSERT_EQ(0, RD(REG_STATUS));

	for (i = 0; i < ARRAY_SIZE(rw); i++)
		WR(rw[i], 0xa5c30f00u + i);
	for (i = 0; i < ARRAY_SIZE(rw); i++) {
		ASSERT_EQ(0xa5c30f00u + i, RD(rw[i])) {
			TH_LOG("register 0x%x", rw[i]);
		}
	}
	WR(REG_IRQ_ENABLE, 1);
	ASSERT_EQ(1, RD(REG_IRQ_ENABLE));
	WR(REG_IRQ_ENABLE, 0);
	ASSERT_EQ(0, RD(REG_IRQ_ENABLE));
	/* reading operands does not start anything */
	ASSERT_EQ(0, RD(REG_STATUS));

	/*
	 * Only 4 bytes at 4-aligned offsets; anything else fails with
	 * EINVAL as a whole and changes nothing (a write of 5 to 8 bytes at
	 * FILL must not store FILL and then fail on RESULT).
	 */
	for (i = 1; i <= 8; i++) {
		if (i == 4)
			continue;
		errno = 0;
		ASSERT_EQ(-1, pread(self->fd, b, i, BAR0 + REG_ID)) {
			TH_LOG("%u byte read of ID", i);
		}
		ASSERT_EQ(EINVAL, errno);
		errno = 0;
		ASSERT_EQ(-1, pwrite(self->fd, b, i, BAR0 + REG_FILL)) {
			TH_LOG("%u byte write of FILL", i);
		}
		ASSERT_EQ(EINVAL, errno);
		ASSERT_EQ(0xa5c30f00u + 6, RD(REG_FILL)) {
			TH_LOG("the refused %u byte write changed FILL", i);
		}
	}
	for (i = 1; i < 4; i++) {
		errno = 0;
		ASSERT_EQ(-1, pread(self->fd, b, 4, BAR0 + REG_ID + i)) {
			TH_LOG("read at 0x%x", REG_ID + i);
		}
		ASSERT_EQ(EINVAL, errno);
		errno = 0;
		ASSERT_EQ(-1, pwrite(self->fd, b, 4, BAR0 + REG_SRC_LO + i)) {
			TH_LOG("write at 0x%x", REG_SRC_LO + i);
		}
		ASSERT_EQ(EINVAL, errno);
	}
	/* the refused writes changed nothing */
	ASSERT_EQ(0xa5c30f00u + 6, RD(REG_FILL));
	ASSERT_EQ(0xa5c30f00u, RD(REG_SRC_LO));
	ASSERT_EQ(0xa5c30f01u, RD(REG_SRC_HI));
	ASSERT_EQ(MDMA_ID, RD(REG_ID));
	ASSERT_EQ(0, RD(REG_STATUS));
}

/* ------------------------------------------------------------------ */
/* operations */

TEST_F_TIMEOUT(mdma, copy_page, MDEV_TIMEOUT)
{
	__u8 *src, *dst, *want, *src0;

	src = dma_buf(_metadata, self, PG, IOVA_SRC, true, 1);
	dst = dma_buf(_metadata, self, PG, IOVA_DST, true, 2);
	src0 = snapshot(_metadata, src, PG);
	want = snapshot(_metadata, dst, PG);

	COPY_OK(IOVA_SRC + 0x10, IOVA_DST + 0x80, 100);
	memcpy(want + 0x80, src + 0x10, 100);
	BUF_EXPECT(dst, want, PG, "dst after copy of 100 bytes");

	COPY_OK(IOVA_SRC + PG - 1, IOVA_DST, 1);
	want[0] = src[PG - 1];
	BUF_EXPECT(dst, want, PG, "dst after copy of the last byte");

	COPY_OK(IOVA_SRC, IOVA_DST, PG);
	BUF_EXPECT(dst, src, PG, "dst after copy of the page");
	BUF_EXPECT(src, src0, PG, "src");
}

/* unaligned copies over page boundaries, and over two IOVA-adjacent maps */
TEST_F_TIMEOUT(mdma, copy_unaligned, MDEV_TIMEOUT)
{
	static const struct { unsigned long s, d, len; } cases[] = {
		{ 0x123, 0xffd, 3 * PG + 77 },
		{ PG - 1, 1, 2 * PG },
		{ 1, PG - 1, 2 },
		{ 0, 0x800, 7 * PG },
		{ 0x801, 0, 7 * PG + 0x7ff },
		{ 3, 5, 8 * PG - 5 },
	};
	const size_t size = 8 * PG;
	__u8 *src, *dst, *want, *src0, *a, *b;
	unsigned int i;

	src = dma_buf(_metadata, self, size, IOVA_SRC, true, 3);
	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 4);
	src0 = snapshot(_metadata, src, size);
	want = buf_alloc(_metadata, size);

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		char what[64];

		mdev_fill_random(dst, size, 100 + i);
		memcpy(want, dst, size);
		memcpy(want + cases[i].d, src + cases[i].s, cases[i].len);
		COPY_OK(IOVA_SRC + cases[i].s, IOVA_DST + cases[i].d,
			cases[i].len);
		snprintf(what, sizeof(what), "dst after copy %u", i);
		BUF_EXPECT(dst, want, size, what);
	}
	BUF_EXPECT(src, src0, size, "src");

	/* two maps adjacent in IOVA, not in the process's address space */
	a = dma_buf(_metadata, self, 2 * PG, IOVA_AUX, true, 5);
	b = dma_buf(_metadata, self, 2 * PG, IOVA_AUX + 2 * PG, true, 6);
	mdev_fill_random(dst, size, 7);
	memcpy(want, dst, size);
	memcpy(want + 3, a + 0x1800, 0x800);
	memcpy(want + 3 + 0x800, b, 0x1800);
	COPY_OK(IOVA_AUX + 0x1800, IOVA_DST + 3, 0x2000);
	BUF_EXPECT(dst, want, size, "dst after copy from two maps");

	/* and into them */
	memcpy(want, a, 2 * PG);
	memcpy(want + 2 * PG, b, 2 * PG);
	memcpy(want + PG + 9, src + 11, 2 * PG);
	COPY_OK(IOVA_SRC + 11, IOVA_AUX + PG + 9, 2 * PG);
	BUF_EXPECT(a, want, 2 * PG, "first map after copy into two maps");
	BUF_EXPECT(b, want + 2 * PG, 2 * PG,
		   "second map after copy into two maps");
}

/* 4 MiB of random data: copy, then CRC32 of source and copy */
TEST_F_TIMEOUT(mdma, copy_4mib_crc, MDEV_LONG_TIMEOUT)
{
	const size_t size = 4 * MiB;
	__u8 *src, *dst;
	__u32 crc;

	src = dma_buf(_metadata, self, size, IOVA_SRC, true, 8);
	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 9);

	COPY_OK(IOVA_SRC, IOVA_DST, size);
	BUF_EXPECT(dst, src, size, "4 MiB copy");

	crc = crc32_ieee(src, size);
	CRC_OK(IOVA_SRC, size);
	ASSERT_EQ(crc, RD(REG_RESULT));
	CRC_OK(IOVA_DST, size);
	ASSERT_EQ(crc, RD(REG_RESULT));

	crc = crc32_ieee(src + 1, size - 3);
	CRC_OK(IOVA_SRC + 1, size - 3);
	ASSERT_EQ(crc, RD(REG_RESULT));

	/* everything touched stays pinned: 1024 + 1024 pages */
	ASSERT_EQ(2 * size / PG, stat_get(_metadata, self->uuid, S_PINNED));
}

TEST_F_TIMEOUT(mdma, fill, MDEV_TIMEOUT)
{
	const size_t size = 4 * PG;
	__u8 *dst, *want;

	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 10);
	want = snapshot(_metadata, dst, size);

	FILL_OK(IOVA_DST + 5, 3 * PG, 0x123456a5);
	memset(want + 5, 0xa5, 3 * PG);
	BUF_EXPECT(dst, want, size, "fill 0xa5");

	FILL_OK(IOVA_DST + size - 1, 1, 0xffffff00);
	want[size - 1] = 0;
	BUF_EXPECT(dst, want, size, "fill of the last byte with 0x00");

	FILL_OK(IOVA_DST, size, 0x3c);
	memset(want, 0x3c, size);
	BUF_EXPECT(dst, want, size, "fill of the buffer");
}

/* LEN = 64 MiB is the largest operation */
TEST_F_TIMEOUT(mdma, max_len, MDEV_LONG_TIMEOUT)
{
	const size_t size = MAX_LEN;
	struct acct base;
	__u8 *dst;
	size_t i;

	acct_read(_metadata, self, &base);
	dst = dma_buf(_metadata, self, size + PG, IOVA_DST, true, 11);
	dst[size] = 0x11;

	FILL_OK(IOVA_DST, size, 0x5a);
	for (i = 0; i < size; i++) {
		if (dst[i] != 0x5a)
			break;
	}
	ASSERT_EQ(size, i) {
		TH_LOG("byte 0x%zx is 0x%02x after a 64 MiB fill", i, dst[i]);
	}
	ASSERT_EQ(0x11, dst[size]);

	mdev_fill_random(dst, size, 12);
	CRC_OK(IOVA_DST, size);
	ASSERT_EQ(crc32_ieee(dst, size), RD(REG_RESULT));

	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_FILL, 0, IOVA_DST, size + 1, 0);
	ASSERT_EQ(0x11, dst[size]);

	ASSERT_EQ(size / PG, stat_get(_metadata, self->uuid, S_PINNED));
	ACCT_EXPECT(&base, size / PG);
}

TEST_F_TIMEOUT(mdma, crc32_vector, MDEV_TIMEOUT)
{
	static const char vec[] = "123456789";
	__u8 *src;

	src = dma_buf(_metadata, self, 2 * PG, IOVA_SRC, true, 13);
	memcpy(src, vec, 9);
	CRC_OK(IOVA_SRC, 9);
	ASSERT_EQ(0xcbf43926u, RD(REG_RESULT));

	/* straddling the page boundary */
	memcpy(src + PG - 4, vec, 9);
	CRC_OK(IOVA_SRC + PG - 4, 9);
	ASSERT_EQ(0xcbf43926u, RD(REG_RESULT));

	src[100] = 'a';
	CRC_OK(IOVA_SRC + 100, 1);
	ASSERT_EQ(0xe8b7be43u, RD(REG_RESULT));

	memset(src, 0, 2 * PG);
	CRC_OK(IOVA_SRC, 2 * PG);
	ASSERT_EQ(crc32_ieee(src, 2 * PG), RD(REG_RESULT));
	ASSERT_NE(0, RD(REG_RESULT));
}

/* ------------------------------------------------------------------ */
/* errors: STATUS, and memory stays as it was */

TEST_F_TIMEOUT(mdma, fault_unmapped, MDEV_TIMEOUT)
{
	const size_t size = 2 * PG;
	__u8 *src, *dst, *dst0;

	src = dma_buf(_metadata, self, size, IOVA_SRC, true, 14);
	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 15);
	dst0 = snapshot(_metadata, dst, size);

	/* source not mapped at all */
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_COPY, IOVA_HOLE, IOVA_DST, 64, 0);
	BUF_EXPECT(dst, dst0, size, "dst after copy from a hole");
	/* destination not mapped */
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_COPY, IOVA_SRC, IOVA_HOLE, 64, 0);
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_FILL, 0, IOVA_HOLE, 64, 0x77);
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_CRC32, IOVA_HOLE, 0, 64, 0);

	/* source runs past the end of its map */
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_COPY, IOVA_SRC + PG + 100, IOVA_DST,
		   PG, 0);
	BUF_EXPECT(dst, dst0, size, "dst after copy from past a map's end");
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_CRC32, IOVA_SRC + 1, 0, size, 0);
	/* destination runs past the end of its map */
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_COPY, IOVA_SRC, IOVA_DST + PG + 8,
		   PG, 0);
	BUF_EXPECT(dst, dst0, size, "dst after copy past its end");
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_FILL, 0, IOVA_DST + 8, size, 0x77);
	BUF_EXPECT(dst, dst0, size, "dst after fill past its end");
	/* destination starts before its map */
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_COPY, IOVA_SRC, IOVA_DST - 8, PG, 0);
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_FILL, 0, IOVA_DST - PG, 2 * PG, 0x77);
	BUF_EXPECT(dst, dst0, size, "dst after fill from before its start");

	/* the doorbell clears STATUS: a good operation reads DONE alone */
	COPY_OK(IOVA_SRC, IOVA_DST, size);
	BUF_EXPECT(dst, src, size, "dst after a good copy");
}

/* a destination mapped read-only */
TEST_F_TIMEOUT(mdma, perm_readonly, MDEV_TIMEOUT)
{
	const size_t size = 2 * PG;
	__u8 *ro, *ro0, *dst, *want, *rw, *rw0;

	ro = dma_buf(_metadata, self, size, IOVA_RO, false, 16);
	ro0 = snapshot(_metadata, ro, size);
	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 17);
	want = buf_alloc(_metadata, size);

	DMA_EXPECT(ST_ERR(ERR_PERM), OP_COPY, IOVA_DST, IOVA_RO, 64, 0);
	DMA_EXPECT(ST_ERR(ERR_PERM), OP_FILL, 0, IOVA_RO + 100, size - 100, 1);
	BUF_EXPECT(ro, ro0, size, "read-only map after refused writes");

	/* reading it is fine */
	memcpy(want, dst, size);
	memcpy(want + 1, ro + 2, size - 2);
	COPY_OK(IOVA_RO + 2, IOVA_DST + 1, size - 2);
	BUF_EXPECT(dst, want, size, "copy from a read-only map");
	CRC_OK(IOVA_RO, size);
	ASSERT_EQ(crc32_ieee(ro, size), RD(REG_RESULT));

	/* pages pinned (cached) for reading still refuse writes */
	DMA_EXPECT(ST_ERR(ERR_PERM), OP_COPY, IOVA_DST, IOVA_RO, size, 0);
	DMA_EXPECT(ST_ERR(ERR_PERM), OP_FILL, 0, IOVA_RO, 1, 1);
	BUF_EXPECT(ro, ro0, size, "read-only map after refused writes");

	/*
	 * A copy inside the read-only map: the source pages are held for
	 * reading by the same operation when the destination is translated.
	 */
	DMA_EXPECT(ST_ERR(ERR_PERM), OP_COPY, IOVA_RO, IOVA_RO + PG, 64, 0);
	DMA_EXPECT(ST_ERR(ERR_PERM), OP_COPY, IOVA_RO, IOVA_RO + 64, 64, 0);
	DMA_EXPECT(ST_ERR(ERR_PERM), OP_COPY, IOVA_RO + 8, IOVA_RO, size - 8, 0);
	BUF_EXPECT(ro, ro0, size, "read-only map after copies into itself");

	/* a range that starts writable and ends read-only: nothing written */
	rw = dma_buf(_metadata, self, PG, IOVA_AUX, true, 18);
	rw0 = snapshot(_metadata, rw, PG);
	map_ok(_metadata, self, ro0, PG, IOVA_AUX + PG, false);
	DMA_EXPECT(ST_ERR(ERR_PERM), OP_FILL, 0, IOVA_AUX + 100, PG, 0x99);
	BUF_EXPECT(rw, rw0, PG, "writable part after a refused fill");
	DMA_EXPECT(ST_ERR(ERR_PERM), OP_COPY, IOVA_DST, IOVA_AUX + 100, PG, 0);
	BUF_EXPECT(rw, rw0, PG, "writable part after a refused copy");

	FILL_OK(IOVA_AUX + 100, PG - 100, 0x99);
	memset(rw0 + 100, 0x99, PG - 100);
	BUF_EXPECT(rw, rw0, PG, "writable part after a good fill");
}

TEST_F_TIMEOUT(mdma, length_errors, MDEV_TIMEOUT)
{
	const size_t size = 2 * PG;
	__u8 *src, *dst, *dst0;

	src = dma_buf(_metadata, self, size, IOVA_SRC, true, 19);
	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 20);
	dst0 = snapshot(_metadata, dst, size);

	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_COPY, IOVA_SRC, IOVA_DST, 0, 0);
	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_FILL, 0, IOVA_DST, 0, 0x55);
	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_CRC32, IOVA_SRC, 0, 0, 0);
	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_COPY, IOVA_SRC, IOVA_DST,
		   MAX_LEN + 1, 0);
	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_FILL, 0, IOVA_DST, MAX_LEN + 1, 0x55);
	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_CRC32, IOVA_SRC, 0, MAX_LEN + 1, 0);
	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_COPY, IOVA_SRC, IOVA_DST,
		   0xffffffffu, 0);
	/* src + len or dst + len wraps around 2^64 */
	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_COPY, IOVA_TOP, IOVA_DST, 0x2000, 0);
	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_COPY, IOVA_SRC, IOVA_TOP, 0x2000, 0);
	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_FILL, 0, IOVA_TOP, 0x2000, 0x55);
	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_CRC32, IOVA_TOP, 0, 0x2000, 0);
	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_COPY, ~0ULL, IOVA_DST, 2, 0);
	BUF_EXPECT(dst, dst0, size, "dst after length errors");

	COPY_OK(IOVA_SRC, IOVA_DST, size);
	BUF_EXPECT(dst, src, size, "dst after a good copy");
}

TEST_F_TIMEOUT(mdma, bad_op, MDEV_TIMEOUT)
{
	static const __u32 ops[] = { 0, 4, 5, 0x101, 0x80000001u, ~0u };
	const size_t size = PG;
	__u8 *dst, *dst0;
	unsigned int i;

	dma_buf(_metadata, self, size, IOVA_SRC, true, 21);
	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 22);
	dst0 = snapshot(_metadata, dst, size);

	for (i = 0; i < ARRAY_SIZE(ops); i++)
		DMA_EXPECT(ST_ERR(ERR_OP), ops[i], IOVA_SRC, IOVA_DST, 16, 0x42);
	BUF_EXPECT(dst, dst0, size, "dst after unknown operations");
	FILL_OK(IOVA_DST, 16, 0x42);
	memset(dst0, 0x42, 16);
	BUF_EXPECT(dst, dst0, size, "dst after a good fill");
}

/* ------------------------------------------------------------------ */
/* the pin cache */

/* exact counters for single-page operations, then multi-page ones */
TEST_F_TIMEOUT(mdma, stats_cache, MDEV_TIMEOUT)
{
	__u8 *src, *dst;

	src = dma_buf(_metadata, self, PG, IOVA_SRC, true, 23);
	dst = dma_buf(_metadata, self, PG, IOVA_DST, true, 24);
	STATS_EXPECT(self->uuid, 0, 0, 0, 0, 0, 0);

	/* pinned_pages, ranges, hits, misses, pins, unpins */
	COPY_OK(IOVA_SRC, IOVA_DST, PG);
	STATS_EXPECT(self->uuid, 2, 2, 0, 2, 2, 0);
	COPY_OK(IOVA_SRC, IOVA_DST, PG);
	STATS_EXPECT(self->uuid, 2, 2, 2, 2, 2, 0);
	COPY_OK(IOVA_SRC + 100, IOVA_DST + 100, 50);
	STATS_EXPECT(self->uuid, 2, 2, 4, 2, 2, 0);
	CRC_OK(IOVA_DST, 10);
	STATS_EXPECT(self->uuid, 2, 2, 5, 2, 2, 0);
	BUF_EXPECT(dst, src, PG, "dst");

	/* unmapping the source drops its pin only */
	unmap_ok(_metadata, self, IOVA_SRC, PG);
	STATS_EXPECT(self->uuid, 1, 1, 5, 2, 2, 1);
	/* mapped again: a miss and a new pin */
	map_ok(_metadata, self, src, PG, IOVA_SRC, true);
	FILL_OK(IOVA_SRC, PG, 0);
	STATS_EXPECT(self->uuid, 2, 2, 5, 3, 3, 1);

	/* closing the device releases both ranges; readable while closed */
	mdma_close_device(self);
	STATS_EXPECT(self->uuid, 0, 0, 5, 3, 3, 3);
}

TEST_F_TIMEOUT(mdma, stats_multipage, MDEV_TIMEOUT)
{
	const size_t size = 4 * PG;
	struct dma_stats a, b;

	dma_buf(_metadata, self, size, IOVA_SRC, true, 25);
	dma_buf(_metadata, self, size, IOVA_DST, true, 26);

	COPY_OK(IOVA_SRC, IOVA_DST, size);
	stats_read(_metadata, self->uuid, &a);
	ASSERT_EQ(8, a.v[S_PINNED]);
	ASSERT_EQ(0, a.v[S_HITS]);
	ASSERT_EQ(8, a.v[S_MISSES]);
	ASSERT_LE(2, a.v[S_PINS]);	/* one or more calls per range */
	ASSERT_GE(8, a.v[S_PINS]);
	ASSERT_EQ(0, a.v[S_UNPINS]);

	/* all cached: 8 hits, nothing pinned */
	COPY_OK(IOVA_SRC, IOVA_DST, size);
	stats_read(_metadata, self->uuid, &b);
	ASSERT_EQ(8, b.v[S_PINNED]);
	ASSERT_EQ(a.v[S_RANGES], b.v[S_RANGES]);
	ASSERT_EQ(8, b.v[S_HITS]);
	ASSERT_EQ(8, b.v[S_MISSES]);
	ASSERT_EQ(a.v[S_PINS], b.v[S_PINS]);
	ASSERT_EQ(0, b.v[S_UNPINS]);

	/* an unaligned copy over 3 pages of each: 6 hits */
	COPY_OK(IOVA_SRC + 0x10, IOVA_DST + 0x20, 2 * PG);
	stats_read(_metadata, self->uuid, &a);
	ASSERT_EQ(14, a.v[S_HITS]);
	ASSERT_EQ(8, a.v[S_MISSES]);
	ASSERT_EQ(b.v[S_PINS], a.v[S_PINS]);
}

/* unmapping drops the cached pins; the IOVA is then unmapped for the device */
TEST_F_TIMEOUT(mdma, unmap_drops_pins, MDEV_TIMEOUT)
{
	const size_t size = 4 * PG;
	__u8 *src, *dst, *dst0, *src2, *dst2, *want, *b, *a2;
	struct acct base;
	unsigned long long pinned;

	acct_read(_metadata, self, &base);
	src = dma_buf(_metadata, self, size, IOVA_SRC, true, 27);
	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 28);
	ACCT_EXPECT(&base, 0);	/* mapping alone pins nothing */

	COPY_OK(IOVA_SRC, IOVA_DST, size);
	BUF_EXPECT(dst, src, size, "dst");
	ASSERT_EQ(8, stat_get(_metadata, self->uuid, S_PINNED));
	ACCT_EXPECT(&base, 8);

	unmap_ok(_metadata, self, IOVA_DST, size);
	ASSERT_EQ(4, stat_get(_metadata, self->uuid, S_PINNED));
	ACCT_EXPECT(&base, 4);
	unmap_ok(_metadata, self, IOVA_SRC, size);
	ASSERT_EQ(0, stat_get(_metadata, self->uuid, S_PINNED));
	ASSERT_EQ(0, stat_get(_metadata, self->uuid, S_RANGES));
	ACCT_EXPECT(&base, 0);

	/* the IOVAs are gone for the device */
	mdev_fill_random(dst, size, 29);
	dst0 = snapshot(_metadata, dst, size);
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_COPY, IOVA_SRC, IOVA_HOLE, 16, 0);
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_FILL, 0, IOVA_DST, 16, 0x42);
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_CRC32, IOVA_SRC, 0, 16, 0);
	BUF_EXPECT(dst, dst0, size, "old dst after DMA to its unmapped IOVA");
	ASSERT_EQ(0, stat_get(_metadata, self->uuid, S_PINNED));

	/* new buffers at the same IOVAs: no stale page is used */
	src2 = dma_buf(_metadata, self, size, IOVA_SRC, true, 30);
	dst2 = dma_buf(_metadata, self, size, IOVA_DST, true, 31);
	COPY_OK(IOVA_SRC, IOVA_DST, size);
	BUF_EXPECT(dst2, src2, size, "new dst");
	BUF_EXPECT(dst, dst0, size, "old dst");
	ASSERT_EQ(8, stat_get(_metadata, self->uuid, S_PINNED));
	ACCT_EXPECT(&base, 8);
	unmap_ok(_metadata, self, IOVA_DST, size);
	ACCT_EXPECT(&base, 4);

	/*
	 * Pins spanning two IOVA-adjacent maps A and B (page 1 of A, page 0
	 * of B): unmapping A releases A's page; B keeps working.
	 */
	a2 = dma_buf(_metadata, self, 2 * PG, IOVA_AUX, true, 32);
	b = dma_buf(_metadata, self, 2 * PG, IOVA_AUX + 2 * PG, true, 33);
	want = buf_alloc(_metadata, 2 * PG);
	memcpy(want, a2 + PG, PG);
	memcpy(want + PG, b, PG);
	CRC_OK(IOVA_AUX + PG, 2 * PG);
	ASSERT_EQ(crc32_ieee(want, 2 * PG), RD(REG_RESULT));
	ASSERT_EQ(4 + 2, stat_get(_metadata, self->uuid, S_PINNED));
	ACCT_EXPECT(&base, 6);

	unmap_ok(_metadata, self, IOVA_AUX, 2 * PG);
	pinned = stat_get(_metadata, self->uuid, S_PINNED);
	/* B's page may be dropped with the range it shared with A's page */
	ASSERT_TRUE(pinned == 4 || pinned == 5) {
		TH_LOG("pinned_pages %llu after unmapping A", pinned);
	}
	ACCT_EXPECT(&base, pinned);
	CRC_OK(IOVA_AUX + 2 * PG, PG);
	ASSERT_EQ(crc32_ieee(b, PG), RD(REG_RESULT));
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_CRC32, IOVA_AUX + PG, 0, 2 * PG, 0);

	a2 = dma_buf(_metadata, self, 2 * PG, IOVA_AUX, true, 34);
	memcpy(want, a2 + PG, PG);
	CRC_OK(IOVA_AUX + PG, 2 * PG);
	ASSERT_EQ(crc32_ieee(want, 2 * PG), RD(REG_RESULT));
	ASSERT_EQ(4 + 2, stat_get(_metadata, self->uuid, S_PINNED));
	ACCT_EXPECT(&base, 6);
}

/* closing the device releases every pin, and the process's accounting */
TEST_F_TIMEOUT(mdma, close_releases_pins, MDEV_TIMEOUT)
{
	const size_t size = 16 * PG;
	struct acct base, now;
	__u8 *src, *dst;

	acct_read(_metadata, self, &base);
	src = dma_buf(_metadata, self, size, IOVA_SRC, true, 35);
	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 36);
	dma_buf(_metadata, self, size, IOVA_RO, false, 37);

	COPY_OK(IOVA_SRC, IOVA_DST, size / 2);
	FILL_OK(IOVA_DST + size / 2 + 1, size / 2 - 1, 7);
	CRC_OK(IOVA_RO + 3, size - 3);
	ASSERT_EQ(24 + 16, stat_get(_metadata, self->uuid, S_PINNED));
	ACCT_EXPECT(&base, 40);
	BUF_EXPECT(dst, src, size / 2, "dst");
	acct_read(_metadata, self, &now);
	TH_LOG("%s path: %s %lld kB before, %lld kB with 40 pages pinned",
	       mdev_path_name(self->path), acct_field(self), base.pinned,
	       now.pinned);

	mdma_close_device(self);
	ASSERT_EQ(0, stat_get(_metadata, self->uuid, S_PINNED));
	ASSERT_EQ(0, stat_get(_metadata, self->uuid, S_RANGES));
	ACCT_EXPECT(&base, 0);

	/* and the container / iommufd go without anything left */
	mdev_vfio_close(&self->v);
	ASSERT_EQ(0, stat_get(_metadata, self->uuid, S_PINNED));
	ACCT_EXPECT(&base, 0);

	/* a new open works (registers are not specified to reset on open) */
	mdma_open(_metadata, self);
	ASSERT_EQ(MDMA_ID, RD(REG_ID));
	map_ok(_metadata, self, src, size, IOVA_SRC, true);
	map_ok(_metadata, self, dst, size, IOVA_DST, true);
	mdev_fill_random(src, size, 38);
	COPY_OK(IOVA_SRC, IOVA_DST, size);
	BUF_EXPECT(dst, src, size, "dst after reopen");
	ASSERT_EQ(32, stat_get(_metadata, self->uuid, S_PINNED));
	ACCT_EXPECT(&base, 32);
	mdma_close_device(self);
	ACCT_EXPECT(&base, 0);
}

/*
 * Opens the mdev @uuid as a VFIO device on the fixture's container or IOAS:
 * through @group (already set on the container) on the group path, through
 * its cdev (bound to the fixture's iommufd, attached to its IOAS) on the
 * iommufd path.  Returns the device fd.
 */
static int mdma_open_on(struct __test_metadata *_metadata,
			FIXTURE_DATA(mdma) *self, const char *uuid, int group)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = self->v.iommufd,
	};
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = self->v.ioas_id,
	};
	char path[MDEV_PATH_MAX];
	int fd;

	if (self->path == MDEV_VFIO_GROUP) {
		fd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, uuid);
		ASSERT_LE(0, fd) {
			TH_LOG("VFIO_GROUP_GET_DEVICE_FD: %s", strerror(errno));
		}
		return fd;
	}
	snprintf(path, sizeof(path), "/dev/vfio/devices/vfio%d",
		 mdev_cdev_id(_metadata, uuid));
	fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd) {
		TH_LOG("open %s: %s", path, strerror(errno));
	}
	ASSERT_EQ(0, ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind)) {
		TH_LOG("VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(errno));
	}
	ASSERT_EQ(0, ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach)) {
		TH_LOG("VFIO_DEVICE_ATTACH_IOMMUFD_PT: %s", strerror(errno));
	}
	return fd;
}

/*
 * A second mdma device in the same container (type1) or IOAS (iommufd)
 * pins the same pages: an unmap reaches both devices, the process accounts
 * each page once, and closing one device keeps the other's pins.
 */
static void open_second(struct __test_metadata *_metadata,
			FIXTURE_DATA(mdma) *self)
{
	char path[MDEV_PATH_MAX];
	struct vfio_device_info info;

	mdev_new(_metadata, &self->t, &mdma_desc, MDMA_TYPE, self->uuid2);
	if (self->path == MDEV_VFIO_GROUP) {
		snprintf(path, sizeof(path), "/dev/vfio/%d",
			 mdev_iommu_group(_metadata, self->uuid2));
		self->group2 = open(path, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, self->group2) {
			TH_LOG("open %s: %s", path, strerror(errno));
		}
		ASSERT_EQ(0, ioctl(self->group2, VFIO_GROUP_SET_CONTAINER,
				   &self->v.container)) {
			TH_LOG("VFIO_GROUP_SET_CONTAINER: %s", strerror(errno));
		}
	}
	self->fd2 = mdma_open_on(_metadata, self, self->uuid2, self->group2);
	mdev_vfio_info(_metadata, self->fd2, &info);
}

#define DMA2_EXPECT(want, op, src, dst, len, fill) do {			\
	__u32 __st = dma_run(_metadata, self->fd2, op, src, dst, len, fill); \
	ASSERT_EQ((__u32)(want), __st) {				\
		TH_LOG("second device: op %u: STATUS 0x%x", (__u32)(op), __st); \
	}								\
} while (0)

TEST_F_TIMEOUT(mdma, two_devices, MDEV_TIMEOUT)
{
	const size_t size = 4 * PG;
	__u8 *src, *dst1, *dst2, *dst2_0;
	struct acct base;

	acct_read(_metadata, self, &base);
	open_second(_metadata, self);
	src = dma_buf(_metadata, self, size, IOVA_SRC, true, 43);
	dst1 = dma_buf(_metadata, self, size, IOVA_DST, true, 44);
	dst2 = dma_buf(_metadata, self, size, IOVA_AUX, true, 45);

	COPY_OK(IOVA_SRC, IOVA_DST, size);
	DMA2_EXPECT(ST_DONE, OP_COPY, IOVA_SRC, IOVA_AUX, size, 0);
	BUF_EXPECT(dst1, src, size, "first device's copy");
	BUF_EXPECT(dst2, src, size, "second device's copy");
	ASSERT_EQ(8, stat_get(_metadata, self->uuid, S_PINNED));
	ASSERT_EQ(8, stat_get(_metadata, self->uuid2, S_PINNED));
	/* src is pinned by both devices and accounted once */
	ACCT_EXPECT(&base, 12);

	unmap_ok(_metadata, self, IOVA_SRC, size);
	ASSERT_EQ(4, stat_get(_metadata, self->uuid, S_PINNED));
	ASSERT_EQ(4, stat_get(_metadata, self->uuid2, S_PINNED));
	ACCT_EXPECT(&base, 8);

	mdma_close_device(self);
	ASSERT_EQ(0, stat_get(_metadata, self->uuid, S_PINNED));
	ASSERT_EQ(4, stat_get(_metadata, self->uuid2, S_PINNED));
	ACCT_EXPECT(&base, 4);

	dst2_0 = snapshot(_metadata, dst2, size);
	DMA2_EXPECT(ST_ERR(ERR_FAULT), OP_COPY, IOVA_SRC, IOVA_AUX, size, 0);
	BUF_EXPECT(dst2, dst2_0, size, "second device's dst after a fault");
	DMA2_EXPECT(ST_DONE, OP_FILL, 0, IOVA_AUX + 1, 10, 0xee);
	memset(dst2_0 + 1, 0xee, 10);
	BUF_EXPECT(dst2, dst2_0, size, "second device's fill");

	close(self->fd2);
	self->fd2 = -1;
	ASSERT_EQ(0, stat_get(_metadata, self->uuid2, S_PINNED));
	ACCT_EXPECT(&base, 0);
}

/*
 * Unmap and map of the source again, from another thread, while DMAs run.
 * The buffer behind the IOVA is always the same, so every copy either
 * completes with the source's bytes or faults without writing.
 */
struct remapper {
	FIXTURE_DATA(mdma) *self;
	void *va;
	size_t size;
	bool stop;		/* __atomic */
	int err;		/* first failure, -errno */
	const char *what;
	unsigned long cycles;
};

static void *remap_loop(void *arg)
{
	struct remapper *r = arg;
	__u64 done;
	int ret;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		ret = dma_unmap(r->self, IOVA_SRC, r->size, &done);
		if (!ret && done != r->size)
			ret = -EIO;
		if (ret) {
			r->what = "unmap";
			__atomic_store_n(&r->err, ret, __ATOMIC_RELAXED);
			break;
		}
		ret = dma_map(r->self, r->va, r->size, IOVA_SRC, true);
		if (ret) {
			r->what = "map";
			__atomic_store_n(&r->err, ret, __ATOMIC_RELAXED);
			break;
		}
		r->cycles++;
	}
	return NULL;
}

TEST_F_TIMEOUT(mdma, concurrent_unmap, MDEV_LONG_TIMEOUT)
{
	const size_t size = 64 * PG;
	struct remapper r = { .self = self, .size = size };
	unsigned long ok = 0, fault = 0, i;
	__u8 *src, *dst, *pat;
	struct acct base;
	long long end;
	pthread_t th;

	acct_read(_metadata, self, &base);
	src = dma_buf(_metadata, self, size, IOVA_SRC, true, 46);
	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 47);
	pat = snapshot(_metadata, dst, size);
	r.va = src;

	ASSERT_EQ(0, pthread_create(&th, NULL, remap_loop, &r));
	end = mdev_now_ms() + 3000;
	for (i = 0; mdev_now_ms() < end || i < 20; i++) {
		__u32 st;

		memcpy(dst, pat, size);
		st = dma_run(_metadata, self->fd, OP_COPY, IOVA_SRC + 3,
			     IOVA_DST + 5, size - 8, 0);
		if (st == ST_DONE) {
			ok++;
			if (memcmp(dst + 5, src + 3, size - 8) ||
			    memcmp(dst, pat, 5) ||
			    memcmp(dst + size - 3, pat + size - 3, 3))
				break;
		} else if (st == ST_ERR(ERR_FAULT)) {
			fault++;
			if (memcmp(dst, pat, size))
				break;
		} else {
			break;
		}
		if (__atomic_load_n(&r.err, __ATOMIC_RELAXED))
			break;
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	TH_LOG("%lu copies done, %lu faulted, %lu unmap+map cycles",
	       ok, fault, r.cycles);
	ASSERT_EQ(0, r.err) {
		TH_LOG("%s of the source failed: %s", r.what, strerror(-r.err));
	}
	ASSERT_TRUE(mdev_now_ms() >= end && i >= 20) {
		TH_LOG("copy %lu: STATUS 0x%x, or wrong bytes in dst",
		       i, RD(REG_STATUS));
	}

	/* the source is mapped (the loop ends with a map): it works */
	usleep(MDMA_UNMAP_GRACE_US);
	COPY_OK(IOVA_SRC, IOVA_DST, size);
	BUF_EXPECT(dst, src, size, "dst after the race");
	ASSERT_EQ(128, stat_get(_metadata, self->uuid, S_PINNED));
	ACCT_EXPECT(&base, 128);
	mdma_close_device(self);
	ASSERT_EQ(0, stat_get(_metadata, self->uuid, S_PINNED));
	ACCT_EXPECT(&base, 0);
}

/*
 * The same race, repeated under load and decided by counts only: nothing in
 * it depends on how long anything takes.  Each round remaps both ends a
 * fixed number of times, the source between two read-only buffers A and B,
 * the destination between two buffers C and D, while copies of the whole
 * range run; a child process meanwhile maps, fills, checks and unmaps
 * memory over and over.
 *
 * The device pins a copy's whole source and destination before it moves a
 * byte, and an unmap waits for the pins of a copy in progress: a copy either
 * faults without writing or writes one whole buffer's bytes into one whole
 * buffer, and once an unmap returned, nothing reads or writes that buffer
 * through the device.  So the remapper poisons each buffer as soon as its
 * unmap returns (sources with SRC_POISON, restored before they are mapped
 * again; destinations with DST_POISON) and checks, before it maps a
 * destination again, that it still holds only poison: a late write is
 * caught there, a late read shows as poison bytes in a destination.  After
 * every round the mapped destination holds poison or one whole source, the
 * unmapped one poison; a copy after the round completes (retried while it
 * faults, bounded only by the test timeout); at the end the load found only
 * its own bytes and close leaves 0 pins and 0 accounted.
 */
#define RACE_ROUNDS		6
#define RACE_CYCLES		16	/* even: A and C are mapped after a round */
#define RACE_MIN_COPIES		16
#define CHURN_SIZE		(4 * MiB)
#define SRC_POISON		0x5a
#define DST_POISON		0xee

struct remap2 {
	FIXTURE_DATA(mdma) *self;
	__u8 *src[2], *dst[2];
	const __u8 *src0[2];	/* the bytes of A and B */
	size_t size;
	bool done;		/* __atomic */
	int err;		/* first failure, -errno */
	const char *what;
};

static bool all_bytes(const __u8 *p, __u8 v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static int unmap_whole(struct remap2 *r, __u64 iova)
{
	__u64 done = 0;
	int ret = dma_unmap(r->self, iova, r->size, &done);

	return ret ? ret : done == r->size ? 0 : -EIO;
}

/* Cycle i maps src[i & 1] and dst[i & 1] in place of the other two */
static void *remap2_loop(void *arg)
{
	struct remap2 *r = arg;
	unsigned int i;
	int ret = 0;

	for (i = 1; i <= RACE_CYCLES && !ret; i++) {
		unsigned int in = i & 1, out = !in;

		r->what = "unmap of the source";
		ret = unmap_whole(r, IOVA_SRC);
		if (ret)
			break;
		memset(r->src[out], SRC_POISON, r->size);
		memcpy(r->src[in], r->src0[in], r->size);
		r->what = "map of the source";
		ret = dma_map(r->self, r->src[in], r->size, IOVA_SRC, false);
		if (ret)
			break;
		r->what = "unmap of the destination";
		ret = unmap_whole(r, IOVA_DST);
		if (ret)
			break;
		memset(r->dst[out], DST_POISON, r->size);
		r->what = "a write into an unmapped destination";
		if (!all_bytes(r->dst[in], DST_POISON, r->size)) {
			ret = -EFAULT;
			break;
		}
		r->what = "map of the destination";
		ret = dma_map(r->self, r->dst[in], r->size, IOVA_DST, true);
	}
	r->err = ret;
	__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* The load: never returns; exits 1 if a page it wrote changed under it */
static void churn(void)
{
	unsigned long gen, w, n = CHURN_SIZE / sizeof(__u64);

	for (gen = 1;; gen++) {
		__u64 *p = mmap(NULL, CHURN_SIZE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			_exit(2);
		for (w = 0; w < n; w++)
			p[w] = gen << 32 | w;
		for (w = 0; w < n; w++)
			if (p[w] != (gen << 32 | w))
				_exit(1);
		munmap(p, CHURN_SIZE);
	}
}

TEST_F_TIMEOUT(mdma, unmap_race_repeated, MDEV_LONG_TIMEOUT)
{
	const size_t size = 16 * PG;
	struct remap2 r = { .self = self, .size = size };
	unsigned long ok = 0, ok_racing = 0, fault = 0, retries = 0;
	struct acct base;
	unsigned int round;
	int status = 0;
	pid_t load;

	/*
	 * Before any buffer exists, so that no page of the test is shared;
	 * without our files (the device must not stay open if we fail) and
	 * killed with us.
	 */
	load = fork();
	ASSERT_LE(0, load);
	if (!load) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close_range(3, ~0U, 0);
		churn();
	}

	acct_read(_metadata, self, &base);
	r.src[0] = dma_buf(_metadata, self, size, IOVA_SRC, false, 61);
	r.dst[0] = dma_buf(_metadata, self, size, IOVA_DST, true, 62);
	r.src[1] = buf_alloc(_metadata, size);
	r.dst[1] = buf_alloc(_metadata, size);
	mdev_fill_random(r.src[1], size, 63);
	r.src0[0] = snapshot(_metadata, r.src[0], size);
	r.src0[1] = snapshot(_metadata, r.src[1], size);

	for (round = 0; round < RACE_ROUNDS; round++) {
		__u32 bad = 0;
		unsigned long i;
		pthread_t th;

		/* src[1] and dst[1] are not mapped */
		memset(r.src[1], SRC_POISON, size);
		memset(r.dst[1], DST_POISON, size);
		__atomic_store_n(&r.done, false, __ATOMIC_RELAXED);
		ASSERT_EQ(0, pthread_create(&th, NULL, remap2_loop, &r));
		for (i = 0; !__atomic_load_n(&r.done, __ATOMIC_ACQUIRE) ||
			    i < RACE_MIN_COPIES; i++) {
			bool racing = !__atomic_load_n(&r.done, __ATOMIC_ACQUIRE);
			__u32 st = dma_run(_metadata, self->fd, OP_COPY,
					   IOVA_SRC, IOVA_DST, size, 0);

			if (st == ST_DONE) {
				ok++;
				ok_racing += racing;
			} else if (st == ST_ERR(ERR_FAULT)) {
				fault++;
			} else {
				bad = st;
				break;
			}
		}
		pthread_join(th, NULL);
		ASSERT_EQ(0, bad) {
			TH_LOG("round %u copy %lu: STATUS 0x%x", round, i, bad);
		}
		ASSERT_EQ(0, r.err) {
			TH_LOG("round %u: %s: %s", round, r.what,
			       strerror(-r.err));
		}
		ASSERT_TRUE(all_bytes(r.dst[1], DST_POISON, size)) {
			TH_LOG("round %u: a write into the unmapped destination",
			       round);
		}
		ASSERT_TRUE(all_bytes(r.dst[0], DST_POISON, size) ||
			    !memcmp(r.dst[0], r.src0[0], size) ||
			    !memcmp(r.dst[0], r.src0[1], size)) {
			TH_LOG("round %u: the destination holds neither poison nor a whole source",
			       round);
		}
		ASSERT_EQ(0, waitpid(load, &status, WNOHANG)) {
			TH_LOG("round %u: the load process ended: status 0x%x",
			       round, status);
		}

		/* what is mapped now works, once the device lets it */
		for (;;) {
			__u32 st = dma_run(_metadata, self->fd, OP_COPY,
					   IOVA_SRC, IOVA_DST, size, 0);

			if (st == ST_DONE)
				break;
			ASSERT_EQ(ST_ERR(ERR_FAULT), st);
			retries++;
			sched_yield();
		}
		BUF_EXPECT(r.dst[0], r.src0[0], size,
			   "the destination after the round");
	}

	ASSERT_EQ(0, kill(load, SIGTERM));
	ASSERT_EQ(load, waitpid(load, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) {
		TH_LOG("the load process found its memory changed: status 0x%x",
		       status);
	}
	TH_LOG("%u rounds: %lu copies done (%lu while remapping), %lu faulted, %lu retries after the remaps",
	       RACE_ROUNDS, ok, ok_racing, fault, retries);
	mdma_close_device(self);
	ASSERT_EQ(0, stat_get(_metadata, self->uuid, S_PINNED));
	ACCT_EXPECT(&base, 0);
}

/* ------------------------------------------------------------------ */
/* completion interrupts */

TEST_F_TIMEOUT(mdma, irq_msi, MDEV_TIMEOUT)
{
	unsigned int i;

	dma_buf(_metadata, self, PG, IOVA_SRC, true, 39);
	dma_buf(_metadata, self, PG, IOVA_DST, true, 40);
	self->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, self->efd);
	ASSERT_EQ(0, mdev_set_irq_eventfd(self->fd, VFIO_PCI_MSI_IRQ_INDEX,
				     self->efd));

	/* IRQ_ENABLE clear: nothing */
	COPY_OK(IOVA_SRC, IOVA_DST, 64);
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS));

	WR(REG_IRQ_ENABLE, 1);
	COPY_OK(IOVA_SRC, IOVA_DST, 64);
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS)) {
		TH_LOG("no MSI after a copy");
	}
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS));

	/* errors complete too */
	DMA_EXPECT(ST_ERR(ERR_FAULT), OP_COPY, IOVA_HOLE, IOVA_DST, 64, 0);
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS)) {
		TH_LOG("no MSI after a failed copy");
	}
	DMA_EXPECT(ST_ERR(ERR_OP), 9, IOVA_SRC, IOVA_DST, 64, 0);
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS));

	/* one per operation, no masking */
	for (i = 0; i < 3; i++)
		FILL_OK(IOVA_DST, 8, i);
	mdev_msleep(NO_EVENT_MS);
	ASSERT_EQ(3, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS));

	WR(REG_IRQ_ENABLE, 0);
	CRC_OK(IOVA_SRC, 8);
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS));
}

TEST_F_TIMEOUT(mdma, irq_intx, MDEV_TIMEOUT)
{
	dma_buf(_metadata, self, PG, IOVA_SRC, true, 41);
	dma_buf(_metadata, self, PG, IOVA_DST, true, 42);
	self->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, self->efd);
	ASSERT_EQ(0, mdev_set_irq_eventfd(self->fd, VFIO_PCI_INTX_IRQ_INDEX,
				     self->efd));

	COPY_OK(IOVA_SRC, IOVA_DST, 64);
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS));

	WR(REG_IRQ_ENABLE, 1);
	COPY_OK(IOVA_SRC, IOVA_DST, 64);
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS)) {
		TH_LOG("no INTx after a copy");
	}
	/* automasked until unmasked */
	COPY_OK(IOVA_SRC, IOVA_DST, 64);
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS)) {
		TH_LOG("INTx fired while automasked");
	}
	ASSERT_EQ(0, mdev_set_irq_none(self->fd, VFIO_PCI_INTX_IRQ_INDEX,
				  VFIO_IRQ_SET_ACTION_UNMASK, 1));
	DMA_EXPECT(ST_ERR(ERR_LENGTH), OP_FILL, 0, IOVA_DST, 0, 0);
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS)) {
		TH_LOG("no INTx after a failed fill");
	}

	ASSERT_EQ(0, mdev_set_irq_none(self->fd, VFIO_PCI_INTX_IRQ_INDEX,
				  VFIO_IRQ_SET_ACTION_UNMASK, 1));
	WR(REG_IRQ_ENABLE, 0);
	CRC_OK(IOVA_SRC, 8);
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS));
}

/* ------------------------------------------------------------------ */
/*
 * Live migration and DMA logging (kernel::vfio::migration and
 * rust/kernel/vfio/dirty.rs).  mdma's stream: "MDMA", version 1, then
 * STATUS, SRC, DST, LEN, OP, FILL, RESULT, IRQ_ENABLE, the pending flag,
 * and the configuration space's COMMAND, BAR0 and INTERRUPT_LINE (59 bytes,
 * little endian).  While stopped (STOP*, RUNNING_P2P, PRE_COPY_P2P) a
 * doorbell leaves STATUS 0 and runs when the device runs again.
 */
#define MDMA_MIG_LEN		59
#define MDMA_MIG_HDR		8

static int dev_feature(int fd, __u32 flags, void *data, size_t size)
{
	__u64 buf[(sizeof(struct vfio_device_feature) + 64) / 8] = { 0 };
	struct vfio_device_feature *f = (void *)buf;

	if (size > 64)
		return -E2BIG;
	f->argsz = sizeof(*f) + size;
	f->flags = flags;
	if (size)
		memcpy(f->data, data, size);
	if (ioctl(fd, VFIO_DEVICE_FEATURE, f))
		return -errno;
	if (size)
		memcpy(data, f->data, size);
	return 0;
}

/* 0 or -errno; *page_size: in, the size asked; out, the size the device uses */
static int log_start(int fd, __u64 *page_size,
		     const struct vfio_device_feature_dma_logging_range *r,
		     __u32 n)
{
	struct vfio_device_feature_dma_logging_control c = {
		.page_size = *page_size,
		.num_ranges = n,
		.ranges = (uintptr_t)r,
	};
	int ret = dev_feature(fd, VFIO_DEVICE_FEATURE_SET |
			      VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
			      &c, sizeof(c));

	*page_size = c.page_size;
	return ret;
}

static int log_stop(int fd)
{
	return dev_feature(fd, VFIO_DEVICE_FEATURE_SET |
			   VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0);
}

static int log_report(int fd, __u64 iova, __u64 len, __u64 page_size,
		      __u64 *bitmap)
{
	struct vfio_device_feature_dma_logging_report r = {
		.iova = iova,
		.length = len,
		.page_size = page_size,
		.bitmap = (uintptr_t)bitmap,
	};

	return dev_feature(fd, VFIO_DEVICE_FEATURE_GET |
			   VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
			   &r, sizeof(r));
}

static int mig_set(int fd, __u32 state, int *data_fd)
{
	struct vfio_device_feature_mig_state m = {
		.device_state = state,
		.data_fd = -1,
	};
	int ret = dev_feature(fd, VFIO_DEVICE_FEATURE_SET |
			      VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			      &m, sizeof(m));

	if (data_fd)
		*data_fd = m.data_fd;
	return ret;
}

static __u32 mig_get(struct __test_metadata *_metadata, int fd)
{
	struct vfio_device_feature_mig_state m = { .data_fd = -1 };

	ASSERT_EQ(0, dev_feature(fd, VFIO_DEVICE_FEATURE_GET |
				 VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
				 &m, sizeof(m)));
	return m.device_state;
}

/*
 * The bitmap of a report holds exactly the bits of want[] (n of them, in
 * any order) among its nbits; logs the first bit that differs.
 */
static bool bits_exactly(const __u64 *bm, unsigned long nbits,
			 const unsigned long *want, unsigned int n,
			 unsigned long *bad)
{
	unsigned long i;
	unsigned int k;

	for (i = 0; i < nbits; i++) {
		bool set = bm[i / 64] >> (i % 64) & 1, expect = false;

		for (k = 0; k < n; k++)
			expect |= want[k] == i;
		if (set != expect) {
			*bad = i;
			return false;
		}
	}
	return true;
}

#define REPORT_EXACTLY(iova, len, ps, ...) do {				\
	const unsigned long __want[] = { __VA_ARGS__ };			\
	unsigned long __nbits = (len) / (ps), __bad = 0;		\
	__u64 *__bm = calloc((__nbits + 63) / 64 + 1, 8);		\
	int __ret;							\
	ASSERT_NE(NULL, __bm);						\
	__ret = log_report(self->fd, iova, len, ps, __bm);		\
	ASSERT_EQ(0, __ret) {						\
		TH_LOG("report of 0x%llx+0x%llx at %llu: %s",		\
		       (unsigned long long)(iova),			\
		       (unsigned long long)(len),			\
		       (unsigned long long)(ps), strerror(-__ret));	\
	}								\
	EXPECT_TRUE(bits_exactly(__bm, __nbits, __want,			\
				 sizeof(__want) / sizeof(__want[0]) -	\
				 (__want[0] == ~0UL), &__bad)) {	\
		TH_LOG("report of 0x%llx+0x%llx at page size %llu: bit %lu (IOVA 0x%llx) is wrong", \
		       (unsigned long long)(iova),			\
		       (unsigned long long)(len),			\
		       (unsigned long long)(ps), __bad,			\
		       (unsigned long long)((iova) + __bad * (ps)));	\
	}								\
	free(__bm);							\
} while (0)
/* REPORT_EXACTLY(..., NO_BITS): a clean report */
#define NO_BITS		(~0UL)

/* Opens the device again after mdma_close_device(), on the same container / IOAS */
static void mdma_reopen(struct __test_metadata *_metadata,
			FIXTURE_DATA(mdma) *self)
{
	self->fd = mdma_open_on(_metadata, self, self->uuid, self->v.group);
	self->v.device = self->fd;
}

TEST_F_TIMEOUT(mdma, dirty_log_4k, MDEV_TIMEOUT)
{
	const size_t ssize = 64 * PG, dsize = 256 * PG;
	const struct vfio_device_feature_dma_logging_range r[2] = {
		{ .iova = IOVA_SRC, .length = ssize },
		{ .iova = IOVA_DST, .length = dsize },
	};
	__u64 ps = PG;
	__u8 *src, *dst, *want;

	src = dma_buf(_metadata, self, ssize, IOVA_SRC, true, 51);
	dst = dma_buf(_metadata, self, dsize, IOVA_DST, true, 52);
	dma_buf(_metadata, self, 4 * PG, IOVA_AUX, true, 53);

	/* not logging: no report; a copy now is not recorded */
	ASSERT_EQ(-EINVAL, log_report(self->fd, IOVA_DST, dsize, PG, &ps));
	COPY_OK(IOVA_SRC, IOVA_DST, 2 * PG);
	ASSERT_EQ(0, log_start(self->fd, &ps, r, 2));
	ASSERT_EQ(PG, ps);
	ps = PG;
	ASSERT_EQ(-EBUSY, log_start(self->fd, &ps, r, 2));
	REPORT_EXACTLY(IOVA_DST, dsize, PG, NO_BITS);

	/* bytes 0x3800..0x57ff: pages 3, 4, 5 */
	COPY_OK(IOVA_SRC, IOVA_DST + 3 * PG + 0x800, 2 * PG);
	/* 0x20 bytes across the 16/17 boundary */
	FILL_OK(IOVA_DST + 17 * PG - 0x10, 0x20, 0xab);
	/* the last page */
	FILL_OK(IOVA_DST + 255 * PG, PG, 1);
	/* reads only, and a write outside the tracked ranges */
	CRC_OK(IOVA_DST, dsize);
	COPY_OK(IOVA_DST, IOVA_AUX, PG);
	want = snapshot(_metadata, dst, dsize);
	memcpy(want, src, 2 * PG);
	memcpy(want + 3 * PG + 0x800, src, 2 * PG);
	memset(want + 17 * PG - 0x10, 0xab, 0x20);
	memset(want + 255 * PG, 1, PG);
	BUF_EXPECT(dst, want, dsize, "dst after the logged DMAs");

	REPORT_EXACTLY(IOVA_DST, dsize, PG, 3, 4, 5, 16, 17, 255);
	REPORT_EXACTLY(IOVA_SRC, ssize, PG, NO_BITS);
	/* read and cleared */
	REPORT_EXACTLY(IOVA_DST, dsize, PG, NO_BITS);

	/* a window of part of the range: its bit only, cleared */
	FILL_OK(IOVA_DST + 40 * PG + 7, 1, 2);
	FILL_OK(IOVA_DST + 60 * PG, 1, 2);
	REPORT_EXACTLY(IOVA_DST + 32 * PG, 16 * PG, PG, 8);
	REPORT_EXACTLY(IOVA_DST, dsize, PG, 60);

	/* a coarser report: one bit per 64 KiB */
	FILL_OK(IOVA_DST + 100 * PG, 1, 3);
	FILL_OK(IOVA_DST + 101 * PG, 1, 3);
	FILL_OK(IOVA_DST + 200 * PG, 1, 3);
	REPORT_EXACTLY(IOVA_DST, dsize, 16 * PG, 6, 12);
	REPORT_EXACTLY(IOVA_DST, dsize, PG, NO_BITS);

	ASSERT_EQ(0, log_stop(self->fd));
	ASSERT_EQ(0, log_stop(self->fd));
	FILL_OK(IOVA_DST, PG, 4);
	ASSERT_EQ(-EINVAL, log_report(self->fd, IOVA_DST, dsize, PG, &ps));
	/* logging can start again, clean */
	ps = PG;
	ASSERT_EQ(0, log_start(self->fd, &ps, r, 2));
	REPORT_EXACTLY(IOVA_DST, dsize, PG, NO_BITS);
}

TEST_F_TIMEOUT(mdma, dirty_log_2m, MDEV_TIMEOUT)
{
	const size_t size = 8 * MiB;
	const struct vfio_device_feature_dma_logging_range r = {
		.iova = IOVA_DST, .length = size,
	};
	__u64 ps = 2 * MiB;

	dma_buf(_metadata, self, size, IOVA_DST, true, 54);
	ASSERT_EQ(0, log_start(self->fd, &ps, &r, 1));
	ASSERT_EQ(2 * MiB, ps);
	FILL_OK(IOVA_DST + 3 * MiB + 5, 1, 7);
	FILL_OK(IOVA_DST + 6 * MiB - 2, 4, 9);
	REPORT_EXACTLY(IOVA_DST, size, 2 * MiB, 1, 2, 3);
	REPORT_EXACTLY(IOVA_DST, size, 2 * MiB, NO_BITS);
	/* at 4 KiB: the whole 2 MiB page */
	FILL_OK(IOVA_DST + 5 * MiB, 1, 1);
	{
		unsigned long nbits = size / PG, i, n = 0, bad = ~0UL;
		__u64 *bm = calloc(nbits / 64, 8);

		ASSERT_NE(NULL, bm);
		ASSERT_EQ(0, log_report(self->fd, IOVA_DST, size, PG, bm));
		/* 5 MiB is in the 2 MiB page [4 MiB, 6 MiB): bits 1024..1535 */
		for (i = 0; i < nbits; i++) {
			bool set = bm[i / 64] >> (i % 64) & 1;

			n += set;
			if (set != (i >= 1024 && i < 1536) && bad == ~0UL)
				bad = i;
		}
		EXPECT_EQ(~0UL, bad) {
			TH_LOG("4 KiB bit %lu is wrong (%lu bits set)", bad, n);
		}
		EXPECT_EQ(512, n);
		free(bm);
	}
	ASSERT_EQ(0, log_stop(self->fd));
}

TEST_F_TIMEOUT(mdma, dirty_log_errors, MDEV_TIMEOUT)
{
	struct vfio_device_feature_dma_logging_range r[2] = {
		{ .iova = IOVA_DST, .length = 16 * PG },
		{ .iova = IOVA_DST + 8 * PG, .length = 16 * PG },
	};
	__u64 ps, bm[4];

	/* the core: no range, overlapping ranges, unaligned for 2 MiB */
	ps = PG;
	ASSERT_EQ(-EINVAL, log_start(self->fd, &ps, r, 0));
	ps = PG;
	ASSERT_EQ(-EINVAL, log_start(self->fd, &ps, r, 2));
	ps = 2 * MiB;
	ASSERT_EQ(-EINVAL, log_start(self->fd, &ps, r, 1));
	/*
	 * The page size is a hint (the uAPI lets the device choose and
	 * return it): rounded up to a power of two of at least 4 KiB, and
	 * doubled while the ranges hold more than 2^28 pages.
	 */
	ps = 3 * PG;
	ASSERT_EQ(0, log_start(self->fd, &ps, r, 1));
	ASSERT_EQ(4 * PG, ps);
	ASSERT_EQ(0, log_stop(self->fd));
	ps = 2048;
	ASSERT_EQ(0, log_start(self->fd, &ps, r, 1));
	ASSERT_EQ(PG, ps);
	ASSERT_EQ(0, log_stop(self->fd));
	r[0].iova = 0;
	r[0].length = 1ULL << 52;
	ps = PG;
	ASSERT_EQ(0, log_start(self->fd, &ps, r, 1));
	ASSERT_EQ(1ULL << 24, ps);
	ASSERT_EQ(0, log_stop(self->fd));
	/* nothing started: reports fail, stop is harmless */
	ASSERT_EQ(-EINVAL, log_report(self->fd, IOVA_DST, 16 * PG, PG, bm));
	ASSERT_EQ(0, log_stop(self->fd));
	/* the core: report page size below 4 KiB */
	r[0].iova = IOVA_DST;
	r[0].length = 16 * PG;
	ps = PG;
	ASSERT_EQ(0, log_start(self->fd, &ps, r, 1));
	ASSERT_EQ(-EINVAL, log_report(self->fd, IOVA_DST, 16 * PG, 1024, bm));
	/* closing the device stops logging */
	mdma_close_device(self);
	mdma_reopen(_metadata, self);
	ASSERT_EQ(-EINVAL, log_report(self->fd, IOVA_DST, 16 * PG, PG, bm));
}

TEST_F_TIMEOUT(mdma, mig_stopped_doorbell_waits, MDEV_TIMEOUT)
{
	const size_t size = 4 * PG;
	__u8 *dst, *want;

	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 61);
	want = snapshot(_metadata, dst, size);
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, mig_get(_metadata, self->fd));

	ASSERT_EQ(0, mig_set(self->fd, VFIO_DEVICE_STATE_STOP, NULL));
	DMA_EXPECT(0, OP_FILL, 0, IOVA_DST + 1, 10, 0x5a);
	BUF_EXPECT(dst, want, size, "dst while stopped");
	ASSERT_EQ(0, mig_set(self->fd, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(ST_DONE, RD(REG_STATUS));
	memset(want + 1, 0x5a, 10);
	BUF_EXPECT(dst, want, size, "dst once running again");

	/* P2P quiescing stops the engine too (it cannot tell P2P DMA apart) */
	ASSERT_EQ(0, mig_set(self->fd, VFIO_DEVICE_STATE_RUNNING_P2P, NULL));
	DMA_EXPECT(0, OP_FILL, 0, IOVA_DST + 100, 3, 0x11);
	BUF_EXPECT(dst, want, size, "dst while P2P quiesced");
	ASSERT_EQ(0, mig_set(self->fd, VFIO_DEVICE_STATE_RUNNING, NULL));
	memset(want + 100, 0x11, 3);
	BUF_EXPECT(dst, want, size, "dst after P2P");

	/* reset drops a waiting request and returns to RUNNING */
	ASSERT_EQ(0, mig_set(self->fd, VFIO_DEVICE_STATE_STOP, NULL));
	DMA_EXPECT(0, OP_FILL, 0, IOVA_DST + 200, 3, 0x22);
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_RESET));
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, mig_get(_metadata, self->fd));
	ASSERT_EQ(0, RD(REG_STATUS));
	BUF_EXPECT(dst, want, size, "dst after a reset");

	/* a request waiting at close does not run (nor at the next open) */
	ASSERT_EQ(0, mig_set(self->fd, VFIO_DEVICE_STATE_STOP, NULL));
	DMA_EXPECT(0, OP_FILL, 0, IOVA_DST + 300, 3, 0x33);
	mdma_close_device(self);
	mdma_reopen(_metadata, self);
	ASSERT_EQ(VFIO_DEVICE_STATE_RUNNING, mig_get(_metadata, self->fd));
	BUF_EXPECT(dst, want, size, "dst after a close with a request waiting");
	FILL_OK(IOVA_DST + 400, 2, 0x44);
	memset(want + 400, 0x44, 2);
	BUF_EXPECT(dst, want, size, "dst after the reopen");
}

static ssize_t read_all(int fd, __u8 *buf, size_t size, size_t chunk)
{
	size_t got = 0;
	ssize_t n;

	while (got < size) {
		n = read(fd, buf + got, chunk < size - got ? chunk : size - got);
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += n;
	}
	return got;
}

TEST_F_TIMEOUT(mdma, mig_round_trip, MDEV_TIMEOUT)
{
	struct vfio_device_feature_mig_data_size ds = { 0 };
	struct vfio_precopy_info info = { .argsz = sizeof(info) };
	const size_t size = 4 * PG;
	__u8 stream[MDMA_MIG_LEN + 16], bad[MDMA_MIG_LEN];
	__u8 *dst, *want;
	int sfd, rfd;
	ssize_t n;
	size_t off;

	open_second(_metadata, self);
	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 62);
	want = snapshot(_metadata, dst, size);
	ASSERT_EQ(0, dev_feature(self->fd, VFIO_DEVICE_FEATURE_GET |
				 VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
				 &ds, sizeof(ds)));
	ASSERT_EQ(MDMA_MIG_LEN, ds.stop_copy_length);

	/* pre-copy: the header, then the temporary end */
	ASSERT_EQ(0, mig_set(self->fd, VFIO_DEVICE_STATE_PRE_COPY, &sfd));
	ASSERT_LE(0, sfd);
	ASSERT_EQ(0, ioctl(sfd, VFIO_MIG_GET_PRECOPY_INFO, &info));
	ASSERT_EQ(MDMA_MIG_HDR, info.initial_bytes);
	ASSERT_EQ(0, info.dirty_bytes);
	ASSERT_EQ(MDMA_MIG_HDR, read_all(sfd, stream, MDMA_MIG_HDR, 3));
	ASSERT_EQ(0, memcmp(stream, "AMDM\1\0\0\0", 8));
	ASSERT_EQ(-1, read(sfd, stream, 1));
	ASSERT_EQ(ENOMSG, errno);

	/* program the engine and ring while P2P: the request waits */
	WR(REG_SRC_LO, 0x12345678);
	WR(REG_SRC_HI, 0x9abc);
	WR(REG_DST_LO, (__u32)IOVA_DST + 0x100);
	WR(REG_DST_HI, (__u32)(IOVA_DST >> 32));
	WR(REG_LEN, 0x40);
	WR(REG_OP, OP_FILL);
	WR(REG_FILL, 0x77);
	WR(REG_IRQ_ENABLE, 1);
	ASSERT_EQ(0, mig_set(self->fd, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL));
	WR(REG_DOORBELL, 1);
	ASSERT_EQ(0, RD(REG_STATUS));
	ASSERT_EQ(0, mig_set(self->fd, VFIO_DEVICE_STATE_STOP_COPY, &rfd));
	ASSERT_EQ(-1, rfd);
	n = read_all(sfd, stream + MDMA_MIG_HDR, sizeof(stream) - MDMA_MIG_HDR,
		     7);
	ASSERT_EQ(MDMA_MIG_LEN - MDMA_MIG_HDR, n);
	ASSERT_EQ(0, read(sfd, stream, 1));
	ASSERT_EQ(0, mig_set(self->fd, VFIO_DEVICE_STATE_STOP, NULL));
	close(sfd);
	BUF_EXPECT(dst, want, size, "dst after the source stopped");
	/* the source is abandoned, its request with it */
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_RESET));

	/* corrupted streams leave the destination RESUMING, unchanged */
	memcpy(bad, stream, MDMA_MIG_LEN);
	bad[MDMA_MIG_HDR + 4 + 8 + 8 + 4 * 5] = 2;	/* pending = 2 */
	ASSERT_EQ(0, mig_set(self->fd2, VFIO_DEVICE_STATE_RESUMING, &rfd));
	ASSERT_EQ(MDMA_MIG_LEN, write(rfd, bad, MDMA_MIG_LEN));
	ASSERT_EQ(-EINVAL, mig_set(self->fd2, VFIO_DEVICE_STATE_STOP, NULL));
	ASSERT_EQ(VFIO_DEVICE_STATE_RESUMING, mig_get(_metadata, self->fd2));
	ASSERT_EQ(-1, write(rfd, bad, 1));
	ASSERT_EQ(ENOMEM, errno);
	close(rfd);
	ASSERT_EQ(0, ioctl(self->fd2, VFIO_DEVICE_RESET));
	ASSERT_EQ(0, mig_set(self->fd2, VFIO_DEVICE_STATE_RESUMING, &rfd));
	ASSERT_EQ(MDMA_MIG_LEN - 1, write(rfd, stream, MDMA_MIG_LEN - 1));
	ASSERT_EQ(-EINVAL, mig_set(self->fd2, VFIO_DEVICE_STATE_STOP, NULL));
	close(rfd);
	ASSERT_EQ(0, ioctl(self->fd2, VFIO_DEVICE_RESET));
	ASSERT_EQ(0, reg_rd(_metadata, self->fd2, REG_LEN));

	/* the real stream, in odd chunks */
	ASSERT_EQ(0, mig_set(self->fd2, VFIO_DEVICE_STATE_RESUMING, &rfd));
	for (off = 0; off < MDMA_MIG_LEN; off += 11) {
		size_t c = MDMA_MIG_LEN - off < 11 ? MDMA_MIG_LEN - off : 11;

		ASSERT_EQ((ssize_t)c, write(rfd, stream + off, c));
	}
	ASSERT_EQ(0, mig_set(self->fd2, VFIO_DEVICE_STATE_STOP, NULL));
	close(rfd);
	ASSERT_EQ(0x12345678, reg_rd(_metadata, self->fd2, REG_SRC_LO));
	ASSERT_EQ(0x9abc, reg_rd(_metadata, self->fd2, REG_SRC_HI));
	ASSERT_EQ((__u32)IOVA_DST + 0x100, reg_rd(_metadata, self->fd2, REG_DST_LO));
	ASSERT_EQ((__u32)(IOVA_DST >> 32), reg_rd(_metadata, self->fd2, REG_DST_HI));
	ASSERT_EQ(0x40, reg_rd(_metadata, self->fd2, REG_LEN));
	ASSERT_EQ(OP_FILL, reg_rd(_metadata, self->fd2, REG_OP));
	ASSERT_EQ(0x77, reg_rd(_metadata, self->fd2, REG_FILL));
	ASSERT_EQ(1, reg_rd(_metadata, self->fd2, REG_IRQ_ENABLE));
	ASSERT_EQ(0, reg_rd(_metadata, self->fd2, REG_STATUS));
	BUF_EXPECT(dst, want, size, "dst before the destination runs");
	/* running, the destination completes the request the source took */
	ASSERT_EQ(0, mig_set(self->fd2, VFIO_DEVICE_STATE_RUNNING, NULL));
	ASSERT_EQ(ST_DONE, reg_rd(_metadata, self->fd2, REG_STATUS));
	memset(want + 0x100, 0x77, 0x40);
	BUF_EXPECT(dst, want, size, "dst after the destination ran");
}


/* ------------------------------------------------------------------ */
/* several devices, one engine; the parent going away (mdma_edu) */

/* vendor/engine_stats "<key> N" of mdma_edu's devices; -1: no such file */
static long long engine_stat(const char *uuid, const char *key)
{
	char path[MDEV_PATH_MAX], buf[512], *p;
	size_t klen = strlen(key);
	ssize_t n;

	mdev_dev_path(path, sizeof(path), uuid, "vendor/engine_stats");
	n = mdev_read_file(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return -1;
	buf[n] = 0;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, klen) && p[klen] == ' ')
			return strtoll(p + klen + 1, NULL, 10);
	return -1;
}

/* dma_run() without assertions, for threads: 0 or -errno */
static int dma_run_nt(int fd, __u32 op, __u64 src, __u64 dst, __u32 len,
		      __u32 *status)
{
	const struct { unsigned int off; __u32 val; } w[] = {
		{ REG_SRC_LO, (__u32)src }, { REG_SRC_HI, (__u32)(src >> 32) },
		{ REG_DST_LO, (__u32)dst }, { REG_DST_HI, (__u32)(dst >> 32) },
		{ REG_LEN, len }, { REG_OP, op }, { REG_FILL, 0 },
		{ REG_DOORBELL, 1 },
	};
	unsigned int i;
	__u32 v;

	for (i = 0; i < ARRAY_SIZE(w); i++) {
		v = htole32(w[i].val);
		if (pwrite(fd, &v, 4, BAR0 + w[i].off) != 4)
			return -errno;
	}
	if (pread(fd, &v, 4, BAR0 + REG_STATUS) != 4)
		return -errno;
	*status = le32toh(v);
	return 0;
}

#define CONC_DEVS	4
#define CONC_SIZE	(4 * PG)
#define CONC_ROUNDS	2

struct copier {
	int fd;
	__u8 *src, *dst;
	__u64 iova_src, iova_dst;
	pthread_barrier_t *start;
	long long t0, t1;	/* ms */
	bool fault_first;	/* first a COPY from an unmapped IOVA */
	__u32 fault_status;	/* its STATUS */
	int err;		/* -errno of a failed access */
	__u32 bad_status;	/* a STATUS that was not DONE */
	long bad_byte;		/* first wrong byte of dst, -1: none */
};

/* CONC_ROUNDS unaligned copies of CONC_SIZE - 100 bytes, each checked */
static void *copy_loop(void *arg)
{
	struct copier *c = arg;
	const size_t len = CONC_SIZE - 100;
	unsigned int r;
	size_t i;
	__u32 st;

	pthread_barrier_wait(c->start);
	c->t0 = mdev_now_ms();
	if (c->fault_first)
		c->err = dma_run_nt(c->fd, OP_COPY, IOVA_HOLE, c->iova_dst,
				    len, &c->fault_status);
	for (r = 0; r < CONC_ROUNDS && !c->err && !c->bad_status &&
	     c->bad_byte < 0; r++) {
		memset(c->dst, 0, CONC_SIZE);
		c->err = dma_run_nt(c->fd, OP_COPY, c->iova_src + 37,
				    c->iova_dst + 63, len, &st);
		if (!c->err && st != ST_DONE) {
			c->bad_status = st;
		} else if (!c->err) {
			c->bad_byte = first_diff(c->dst + 63, c->src + 37, len);
			/* and nothing around the destination range */
			for (i = 0; i < CONC_SIZE && c->bad_byte < 0; i++)
				if ((i < 63 || i >= 63 + len) && c->dst[i])
					c->bad_byte = i;
		}
	}
	c->t1 = mdev_now_ms();
	return NULL;
}

/*
 * CONC_DEVS devices in one container / IOAS copy at the same time, each its
 * own buffers, every byte checked; one of them first asks for a copy from an
 * unmapped IOVA, which fails alone.  When the devices share one engine
 * (mdma_edu: vendor/engine_stats), it serves them chunk by chunk in turn, so
 * equal work finishes at about the same time.
 */
TEST_F_TIMEOUT(mdma, concurrent_devices, MDEV_LONG_TIMEOUT)
{
	char uuids[CONC_DEVS][MDEV_UUID_LEN + 1];
	struct copier c[CONC_DEVS];
	pthread_t th[CONC_DEVS];
	pthread_barrier_t start;
	long long min = -1, max = 0, xfers0, irqs0;
	char path[MDEV_PATH_MAX];
	unsigned int i;

	_Static_assert(CONC_DEVS - 1 == ARRAY_SIZE(self->xfd), "extra devices");
	snprintf(uuids[0], sizeof(uuids[0]), "%s", self->uuid);
	for (i = 1; i < CONC_DEVS; i++) {
		mdev_new(_metadata, &self->t, &mdma_desc, MDMA_TYPE, uuids[i]);
		if (self->path == MDEV_VFIO_GROUP) {
			snprintf(path, sizeof(path), "/dev/vfio/%d",
				 mdev_iommu_group(_metadata, uuids[i]));
			self->xgroup[i - 1] = open(path, O_RDWR | O_CLOEXEC);
			ASSERT_LE(0, self->xgroup[i - 1]);
			ASSERT_EQ(0, ioctl(self->xgroup[i - 1], VFIO_GROUP_SET_CONTAINER,
					   &self->v.container));
		}
		self->xfd[i - 1] = mdma_open_on(_metadata, self, uuids[i], self->xgroup[i - 1]);
	}
	xfers0 = engine_stat(self->uuid, "transfers");
	irqs0 = engine_stat(self->uuid, "irqs");
	ASSERT_EQ(0, pthread_barrier_init(&start, NULL, CONC_DEVS));
	for (i = 0; i < CONC_DEVS; i++) {
		c[i] = (struct copier){
			.fd = i ? self->xfd[i - 1] : self->fd,
			.iova_src = IOVA_AUX + 2ULL * i * CONC_SIZE,
			.iova_dst = IOVA_AUX + (2ULL * i + 1) * CONC_SIZE,
			.start = &start,
			.fault_first = i == 1,
			.bad_byte = -1,
		};
		c[i].src = dma_buf(_metadata, self, CONC_SIZE, c[i].iova_src,
				   true, 60 + i);
		c[i].dst = dma_buf(_metadata, self, CONC_SIZE, c[i].iova_dst,
				   true, 70 + i);
	}
	for (i = 0; i < CONC_DEVS; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, copy_loop, &c[i]));
	for (i = 0; i < CONC_DEVS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	for (i = 0; i < CONC_DEVS; i++) {
		long long t = c[i].t1 - c[i].t0;

		ASSERT_EQ(0, c[i].err) {
			TH_LOG("device %u: register access: %s", i,
			       strerror(-c[i].err));
		}
		ASSERT_EQ(0, c[i].bad_status) {
			TH_LOG("device %u: STATUS 0x%x", i, c[i].bad_status);
		}
		if (c[i].fault_first)
			ASSERT_EQ(ST_ERR(ERR_FAULT), c[i].fault_status);
		ASSERT_EQ(-1, c[i].bad_byte) {
			TH_LOG("device %u: copy differs at byte 0x%lx", i,
			       c[i].bad_byte);
		}
		TH_LOG("device %u: %d copies of %lu bytes in %lld ms", i,
		       CONC_ROUNDS, CONC_SIZE - 100, t);
		min = min < 0 || t < min ? t : min;
		max = t > max ? t : max;
	}
	if (xfers0 >= 0) {
		/* a shared engine: every chunk went through it, fairly */
		long long xfers = engine_stat(self->uuid, "transfers") - xfers0;
		long long irqs = engine_stat(self->uuid, "irqs") - irqs0;

		TH_LOG("engine transfers: %lld, completion interrupts: %lld; slowest %lld ms, fastest %lld ms",
		       xfers, irqs, max, min);
		ASSERT_LE(2LL * CONC_DEVS * CONC_ROUNDS * (CONC_SIZE / PG), xfers);
		/*
		 * one interrupt per transfer: the next transfer starts only
		 * once the last one is done, 100 ms before it could end
		 */
		ASSERT_EQ(xfers, irqs);
		ASSERT_LE(max * 3, min * 4) {
			TH_LOG("unfair: one device took %lld ms, another %lld ms",
			       max, min);
		}
	}
}

/*
 * MDMA_UNREACHABLE=1: the parent's DMA mask cannot reach the guest pages
 * (mdma_edu with a 24-bit edu): every request fails with FAULT, changes no
 * memory and is counted as refused.  Otherwise the same requests succeed
 * and nothing is refused.
 */
TEST_F_TIMEOUT(mdma, dma_reach, MDEV_TIMEOUT)
{
	const char *env = getenv("MDMA_UNREACHABLE");
	bool unreachable = env && !strcmp(env, "1");
	long long refused0 = engine_stat(self->uuid, "refused");
	__u8 *src, *dst, *dst0;
	__u32 crc;

	if (unreachable)
		ASSERT_LE(0, refused0) {
			TH_LOG("MDMA_UNREACHABLE=1 needs mdma_edu's engine_stats");
		}
	src = dma_buf(_metadata, self, PG, IOVA_SRC, true, 80);
	dst = dma_buf(_metadata, self, PG, IOVA_DST, true, 81);
	dst0 = snapshot(_metadata, dst, PG);
	crc = crc32_ieee(src + 5, 100);
	if (unreachable) {
		DMA_EXPECT(ST_ERR(ERR_FAULT), OP_COPY, IOVA_SRC, IOVA_DST, 100, 0);
		DMA_EXPECT(ST_ERR(ERR_FAULT), OP_FILL, 0, IOVA_DST, 100, 0x5a);
		DMA_EXPECT(ST_ERR(ERR_FAULT), OP_CRC32, IOVA_SRC + 5, 0, 100, 0);
		BUF_EXPECT(dst, dst0, PG, "dst after refused requests");
		ASSERT_EQ(refused0 + 3, engine_stat(self->uuid, "refused"));
		return;
	}
	COPY_OK(IOVA_SRC, IOVA_DST, 100);
	memcpy(dst0, src, 100);
	FILL_OK(IOVA_DST + 200, 100, 0x5a);
	memset(dst0 + 200, 0x5a, 100);
	BUF_EXPECT(dst, dst0, PG, "dst after copy and fill");
	CRC_OK(IOVA_SRC + 5, 100);
	ASSERT_EQ(crc, RD(REG_RESULT));
	if (refused0 >= 0)
		ASSERT_EQ(refused0, engine_stat(self->uuid, "refused"));
}

struct filler {
	int fd;
	__u64 iova;
	__u32 len;
	__u32 status;
	int err;
};

static void *fill_once(void *arg)
{
	struct filler *f = arg;

	f->err = dma_run_nt(f->fd, OP_FILL, 0, f->iova, f->len, &f->status);
	return NULL;
}

/*
 * The PCI parent goes away (unbind from mdma_edu, or PCI remove) while the
 * device is open with a request in flight: the request is cancelled (FAULT),
 * the device request eventfd fires, the unbind completes once the device is
 * closed, the mdev and the parent are gone and nothing stays pinned; the
 * function comes back (bind, or a PCI rescan) with its type.
 */
static void parent_gone(struct __test_metadata *_metadata,
			FIXTURE_DATA(mdma) *self, bool remove)
{
	const size_t size = 64 * PG;
	char path[MDEV_PATH_MAX], parent[MDEV_PATH_MAX];
	struct filler f = { .fd = self->fd, .iova = IOVA_DST, .len = size };
	__u8 *dst, *last0, *zero;
	struct acct base;
	long long t0, req_ms, fill_ms;
	int status, ret;
	pthread_t th;
	pid_t pid;

	ASSERT_TRUE(getenv("MDMA_PARENT") != NULL) {
		TH_LOG("needs MDMA_PARENT (mdma_edu): mdma's parent is not a PCI device");
	}
	acct_read(_metadata, self, &base);
	dst = dma_buf(_metadata, self, size, IOVA_DST, true, 90);
	last0 = snapshot(_metadata, dst + size - PG, PG);
	zero = buf_alloc(_metadata, PG);
	memset(zero, 0, PG);
	self->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, self->efd);
	ASSERT_EQ(0, mdev_set_irq_eventfd(self->fd, VFIO_PCI_REQ_IRQ_INDEX,
					 self->efd));
	fill_ms = mdev_now_ms();
	ASSERT_EQ(0, pthread_create(&th, NULL, fill_once, &f));
	mdev_msleep(500);

	if (remove)
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/remove",
			 mdma_desc.parent);
	else
		snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/unbind",
			 mdma_desc.driver);
	t0 = mdev_now_ms();
	pid = mdev_fork_writer(path, remove ? "1" : mdma_desc.parent);
	ASSERT_LT(0, pid);
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS)) {
		TH_LOG("no device request within %d ms of the %s",
		       EVENT_TIMEOUT_MS, remove ? "remove" : "unbind");
	}
	req_ms = mdev_now_ms() - t0;
	pthread_join(th, NULL);
	fill_ms = mdev_now_ms() - fill_ms;
	ASSERT_EQ(0, f.err);
	ASSERT_EQ(ST_ERR(ERR_FAULT), f.status) {
		TH_LOG("the request in flight ended with STATUS 0x%x", f.status);
	}
	/* cancelled in the middle: the first page filled (with 0), not the last */
	BUF_EXPECT(dst, zero, PG, "first page of the cancelled fill");
	BUF_EXPECT(dst + size - PG, last0, PG, "last page of the cancelled fill");
	TH_LOG("the fill of %zu pages was cancelled after %lld ms", size / PG,
	       fill_ms);
	/* the unbind waits for the device to be closed */
	ASSERT_EQ(-ETIMEDOUT, mdev_wait_child(pid, 300, &status));
	mdma_close_device(self);
	mdev_vfio_close(&self->v);
	ASSERT_EQ(0, mdev_wait_child(pid, 20000, &status));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		TH_LOG("writing %s: status 0x%x", path, status);
	}
	TH_LOG("%s: device request after %lld ms, done %lld ms after it began",
	       remove ? "remove" : "unbind", req_ms, mdev_now_ms() - t0);
	mdev_untrack(&self->t, self->uuid);
	mdev_dev_path(path, sizeof(path), self->uuid, NULL);
	ASSERT_FALSE(mdev_exists(path));
	mdev_parent_path(parent, sizeof(parent), &mdma_desc, NULL);
	ASSERT_FALSE(mdev_exists(parent));
	ACCT_EXPECT(&base, 0);

	if (remove) {
		ASSERT_EQ(1, mdev_write_str("/sys/bus/pci/rescan", "1"));
	} else {
		snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/bind",
			 mdma_desc.driver);
		ret = mdev_write_str(path, mdma_desc.parent);
		ASSERT_EQ((int)strlen(mdma_desc.parent), ret) {
			TH_LOG("bind %s: %s", mdma_desc.parent,
			       ret < 0 ? strerror(-ret) : "short write");
		}
	}
	ASSERT_TRUE(mdev_wait_exists(parent, true, 10000)) {
		TH_LOG("%s did not come back", parent);
	}
	ASSERT_EQ(MDMA_INSTANCES, avail_settled(_metadata, MDMA_INSTANCES));
}

TEST_F_TIMEOUT(mdma, parent_unbind, MDEV_TIMEOUT)
{
	parent_gone(_metadata, self, false);
}

TEST_F_TIMEOUT(mdma, parent_remove, MDEV_TIMEOUT)
{
	parent_gone(_metadata, self, true);
}

TEST_HARNESS_MAIN
