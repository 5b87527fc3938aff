// SPDX-License-Identifier: GPL-2.0
/*
 * Shared helpers and the per-sample expectation table for the VFIO mediated
 * device (mdev) selftests.
 *
 * Every expectation in mdev_samples[] was read from the Linux sources (6.12,
 * re-checked on 7.3.4, the target):
 * samples/vfio-mdev/{mtty,mdpy,mbochs}.c (types, pools, PCI config space,
 * VFIO regions and interrupts) and drivers/vfio/mdev/ (sysfs layout, errno).
 * mtty_rs, the Rust port of mtty, must match mtty exactly and shares its
 * expectations.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/netlink.h>
#include <linux/vfio.h>

#include "mdev_common.h"

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

#define RD	VFIO_REGION_INFO_FLAG_READ
#define WR	VFIO_REGION_INFO_FLAG_WRITE
#define MM	VFIO_REGION_INFO_FLAG_MMAP
#define CAPS	VFIO_REGION_INFO_FLAG_CAPS

/*
 * mtty: regions live at file offset index << 40; every index below
 * VFIO_PCI_NUM_REGIONS reports READ|WRITE, only BAR0 (and BAR1 with two
 * ports) and the config space (0xff bytes) have a size.  Values for mtty-1.
 */
#define MTTY_OFF(i)	((__u64)(i) << 40)
static const struct mdev_region_desc mtty_regions[] = {
	{ 0, 0, MTTY_OFF(0), 8, RD | WR },
	{ 1, 0, MTTY_OFF(1), 0, RD | WR },
	{ 2, 0, MTTY_OFF(2), 0, RD | WR },
	{ 3, 0, MTTY_OFF(3), 0, RD | WR },
	{ 4, 0, MTTY_OFF(4), 0, RD | WR },
	{ 5, 0, MTTY_OFF(5), 0, RD | WR },
	{ 6, 0, MTTY_OFF(6), 0, RD | WR },
	{ 7, 0, MTTY_OFF(7), 0xff, RD | WR },
	{ 8, 0, MTTY_OFF(8), 0, RD | WR },
	{ 9, EINVAL },
	{ 16, EINVAL },
};

/* INTx: EVENTFD|MASKABLE|AUTOMASKED, MSI: EVENTFD|NORESIZE, rest EINVAL */
static const struct mdev_irq_desc mtty_irqs[] = {
	{ 0, 0, 1, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
		   VFIO_IRQ_INFO_AUTOMASKED },
	{ 1, 0, 1, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE },
	{ 2, EINVAL },
	{ 3, EINVAL },
	{ 4, EINVAL },
	{ 5, EINVAL },
};

/* mtty_create_config_space(), one port */
static const struct mdev_cfg_desc mtty_config[] = {
	{ 0x00, 2, 0x4348 },	/* vendor */
	{ 0x02, 2, 0x3253 },	/* device */
	{ 0x04, 2, 0x0001 },	/* command: I/O+ */
	{ 0x06, 2, 0x0200 },	/* status */
	{ 0x08, 1, 0x10 },	/* revision */
	{ 0x09, 1, 0x02 },	/* prog-if: 16550 */
	{ 0x0a, 1, 0x00 },	/* subclass */
	{ 0x0b, 1, 0x07 },	/* class: simple communication */
	{ 0x10, 4, 0x00000001 },/* BAR0: I/O */
	{ 0x14, 4, 0x00000000 },/* BAR1: none with one port */
	{ 0x2c, 2, 0x4348 },	/* subsystem vendor */
	{ 0x2e, 2, 0x3253 },	/* subsystem */
	{ 0x34, 1, 0x00 },	/* capability pointer */
	{ 0x3c, 1, 0x00 },	/* interrupt line */
	{ 0x3d, 1, 0x01 },	/* interrupt pin INTA# */
	{ 0x40, 4, 0x80000023 },
	{ 0x44, 1, 0x23 },
	{ 0x48, 1, 0x23 },
	{ 0x4c, 1, 0x23 },
	{ 0x60, 4, 0x20494350 },/* "PCI " */
	{ 0x64, 4, 0x69726553 },/* "Seri" */
	{ 0x68, 4, 0x552f6c61 },/* "al/U" */
	{ 0x6c, 2, 0x5241 },	/* "AR" */
	{ 0x6e, 1, 0x54 },	/* "T" */
};

/*
 * mdpy: config space at offset 0, BAR0 (framebuffer, roundup_pow_of_two of
 * 640*480*4 = 2 MiB for mdpy-vga) at PAGE_SIZE, region 16 is the display
 * region (same as BAR0), every other index below 9 is all zero.
 */
static const struct mdev_region_desc mdpy_regions[] = {
	{ 0, 0, 4096, 2 << 20, RD | WR | MM },
	{ 1, 0, 0, 0, 0 },
	{ 2, 0, 0, 0, 0 },
	{ 3, 0, 0, 0, 0 },
	{ 4, 0, 0, 0, 0 },
	{ 5, 0, 0, 0, 0 },
	{ 6, 0, 0, 0, 0 },
	{ 7, 0, 0, 0xff, RD | WR },
	{ 8, 0, 0, 0, 0 },
	{ 9, EINVAL },
	{ 15, EINVAL },
	{ 16, 0, 4096, 2 << 20, RD | WR | MM },
	{ 17, EINVAL },
};

/* mdpy and mbochs report count 0 for every index below VFIO_PCI_NUM_IRQS */
static const struct mdev_irq_desc display_irqs[] = {
	{ 0, 0, 0, 0 },
	{ 1, 0, 0, 0 },
	{ 2, 0, 0, 0 },
	{ 3, 0, 0, 0 },
	{ 4, 0, 0, 0 },
	{ 5, EINVAL },
};

/* mdpy_create_config_space(), mdpy-vga */
static const struct mdev_cfg_desc mdpy_config[] = {
	{ 0x00, 2, 0x1b36 },	/* PCI_VENDOR_ID_REDHAT */
	{ 0x02, 2, 0x000f },
	{ 0x04, 2, 0x0003 },	/* IO | MEMORY */
	{ 0x06, 2, 0x0010 },	/* CAP_LIST */
	{ 0x08, 1, 0x01 },
	{ 0x09, 1, 0x00 },
	{ 0x0a, 1, 0x80 },	/* PCI_CLASS_DISPLAY_OTHER */
	{ 0x0b, 1, 0x03 },
	{ 0x10, 4, 0x00000008 },/* BAR0: mem, 32 bit, prefetchable */
	{ 0x14, 4, 0x00000000 },
	{ 0x2c, 2, 0x1af4 },	/* PCI_SUBVENDOR_ID_REDHAT_QUMRANET */
	{ 0x2e, 2, 0x1100 },	/* PCI_SUBDEVICE_ID_QEMU */
	{ 0x34, 1, 0x40 },	/* capability pointer */
	{ 0x3d, 1, 0x00 },
	{ 0x40, 1, 0x09 },	/* vendor capability */
	{ 0x41, 1, 0x00 },
	{ 0x42, 1, 0x10 },
	{ 0x44, 4, 0x34325258 },/* DRM_FORMAT_XRGB8888 */
	{ 0x48, 4, 640 },
	{ 0x4c, 4, 480 },
};

/*
 * mbochs: 10 regions; BAR0 (vram, 4 MiB for mbochs-small) at 3 * PAGE_SIZE,
 * BAR2 (mmio) at PAGE_SIZE, the EDID region (index 9) at 2 * PAGE_SIZE with
 * a region type capability.
 */
static const struct mdev_region_desc mbochs_regions[] = {
	{ 0, 0, 3 * 4096, 4 << 20, RD | WR | MM },
	{ 1, 0, 0, 0, 0 },
	{ 2, 0, 4096, 4096, RD | WR },
	{ 3, 0, 0, 0, 0 },
	{ 4, 0, 0, 0, 0 },
	{ 5, 0, 0, 0, 0 },
	{ 6, 0, 0, 0, 0 },
	{ 7, 0, 0, 0xff, RD | WR },
	{ 8, 0, 0, 0, 0 },
	{ 9, 0, 2 * 4096, 4096, RD | WR | CAPS },
	{ 10, EINVAL },
};

/* mbochs_create_config_space() */
static const struct mdev_cfg_desc mbochs_config[] = {
	{ 0x00, 2, 0x1234 },
	{ 0x02, 2, 0x1111 },
	{ 0x04, 2, 0x0003 },
	{ 0x06, 2, 0x0000 },
	{ 0x08, 1, 0x01 },
	{ 0x09, 1, 0x00 },
	{ 0x0a, 1, 0x80 },
	{ 0x0b, 1, 0x03 },
	{ 0x10, 4, 0x00000008 },/* BAR0: mem, 32 bit, prefetchable */
	{ 0x14, 4, 0x00000000 },
	{ 0x18, 4, 0x00000000 },/* BAR2: mem, 32 bit */
	{ 0x2c, 2, 0x1af4 },
	{ 0x2e, 2, 0x1100 },
	{ 0x34, 1, 0x00 },
	{ 0x3d, 1, 0x00 },
};

/*
 * mtty and mtty_rs (samples/vfio-mdev/mtty_rs.rs, the Rust port) share every
 * expectation: the same class, parent, driver, types, PCI IDs, regions,
 * interrupts and config space; only the module differs.
 */
#define MTTY_SAMPLE(_sample, _module, _compat) {			\
	.sample = _sample,						\
	.module = _module,						\
	.compat = _compat,						\
	.parent = "mtty",						\
	.parent_devpath = "/devices/virtual/mtty/mtty",			\
	.parent_subsystem = "mtty",					\
	.driver = "mtty",						\
	.device_api = "vfio-pci\n",					\
	.pool = 24,			/* MAX_MTTYS ports */		\
	.core_counter = false,		/* mtty_get_available() */	\
	.exhausted_errno = ENOSPC,	/* mtty_init_dev() */		\
	.nr_types = 2,							\
	.types = {							\
		{ "mtty-1", "Single port serial\n", NULL, 1,		\
		  "vendor/sample_mdev_dev", "This is MDEV %s\n" },	\
		{ "mtty-2", "Dual port serial\n", NULL, 2,		\
		  "vendor/sample_mdev_dev", "This is MDEV %s\n" },	\
	},								\
	.vfio_flags = VFIO_DEVICE_FLAGS_PCI,				\
	.num_regions = VFIO_PCI_NUM_REGIONS,				\
	.num_irqs = VFIO_PCI_NUM_IRQS,					\
	.config_offset = MTTY_OFF(VFIO_PCI_CONFIG_REGION_INDEX),	\
	.regions = mtty_regions,					\
	.nr_regions = ARRAY_LEN(mtty_regions),				\
	.irqs = mtty_irqs,						\
	.nr_irqs = ARRAY_LEN(mtty_irqs),				\
	.config = mtty_config,						\
	.nr_config = ARRAY_LEN(mtty_config),				\
}

/*
 * mdpy and mdpy_rs (samples/vfio-mdev/mdpy_rs.rs, the Rust port) share every
 * expectation, as mtty and mtty_rs do.
 */
#define MDPY_SAMPLE(_sample, _module, _compat) {			\
	.sample = _sample,						\
	.module = _module,						\
	.compat = _compat,						\
	.parent = "mdpy",						\
	.parent_devpath = "/devices/virtual/mdpy/mdpy",			\
	.parent_subsystem = "mdpy",					\
	.driver = "mdpy",						\
	.device_api = "vfio-pci\n",					\
	.pool = 4,			/* max_instances (count=4) */	\
	.core_counter = true,						\
	.exhausted_errno = EUSERS,	/* mdev_device_create() */	\
	.nr_types = 3,							\
	.types = {							\
		{ "mdpy-vga", "mdpy-vga\n",				\
		  "virtual display, 640x480 framebuffer\n", 1,		\
		  "vendor/resolution", "640x480\n" },			\
		{ "mdpy-xga", "mdpy-xga\n",				\
		  "virtual display, 1024x768 framebuffer\n", 1,	\
		  "vendor/resolution", "1024x768\n" },			\
		{ "mdpy-hd", "mdpy-hd\n",				\
		  "virtual display, 1920x1080 framebuffer\n", 1,	\
		  "vendor/resolution", "1920x1080\n" },			\
	},								\
	.vfio_flags = VFIO_DEVICE_FLAGS_PCI,				\
	.num_regions = VFIO_PCI_NUM_REGIONS,				\
	.num_irqs = VFIO_PCI_NUM_IRQS,					\
	.config_offset = 0,						\
	.regions = mdpy_regions,					\
	.nr_regions = ARRAY_LEN(mdpy_regions),				\
	.irqs = display_irqs,						\
	.nr_irqs = ARRAY_LEN(display_irqs),				\
	.config = mdpy_config,						\
	.nr_config = ARRAY_LEN(mdpy_config),				\
}

/*
 * mbochs and mbochs_rs (samples/vfio-mdev/mbochs_rs.rs, the Rust port) share
 * every expectation, as mtty and mtty_rs do.
 */
#define MBOCHS_SAMPLE(_sample, _module, _compat) {			\
	.sample = _sample,						\
	.module = _module,						\
	.compat = _compat,						\
	.parent = "mbochs",						\
	.parent_devpath = "/devices/virtual/mbochs/mbochs",		\
	.parent_subsystem = "mbochs",					\
	.driver = "mbochs",						\
	.device_api = "vfio-pci\n",					\
	.pool = 256,			/* max_mbytes (count=256) */	\
	.core_counter = false,		/* mbochs_get_available() */	\
	.exhausted_errno = ENOSPC,	/* mbochs_init_dev() */		\
	.nr_types = 3,							\
	.types = {							\
		{ "mbochs-small", "mbochs-small\n",			\
		  "virtual display, 4 MB video memory\n", 4,		\
		  "vendor/memory", "4 MB\n" },				\
		{ "mbochs-medium", "mbochs-medium\n",			\
		  "virtual display, 16 MB video memory\n", 16,		\
		  "vendor/memory", "16 MB\n" },				\
		{ "mbochs-large", "mbochs-large\n",			\
		  "virtual display, 64 MB video memory\n", 64,		\
		  "vendor/memory", "64 MB\n" },				\
	},								\
	.vfio_flags = VFIO_DEVICE_FLAGS_PCI,				\
	.num_regions = VFIO_PCI_NUM_REGIONS + 1,			\
	.num_irqs = VFIO_PCI_NUM_IRQS,					\
	.config_offset = 0,						\
	.regions = mbochs_regions,					\
	.nr_regions = ARRAY_LEN(mbochs_regions),			\
	.irqs = display_irqs,						\
	.nr_irqs = ARRAY_LEN(display_irqs),				\
	.config = mbochs_config,					\
	.nr_config = ARRAY_LEN(mbochs_config),				\
}

/*
 * The ABI samples come first, in this order (mdev_dump derives its UUIDs
 * from the index of a sample's ABI sample); alternative implementations of
 * one of them follow.
 */
const struct mdev_sample_desc mdev_samples[] = {
	MTTY_SAMPLE("mtty", "mtty", NULL),
	MDPY_SAMPLE("mdpy", "mdpy", NULL),
	MBOCHS_SAMPLE("mbochs", "mbochs", NULL),
	MTTY_SAMPLE("mtty_rs", "mtty_rs", "mtty"),
	MDPY_SAMPLE("mdpy_rs", "mdpy_rs", "mdpy"),
	MBOCHS_SAMPLE("mbochs_rs", "mbochs_rs", "mbochs"),
};

const unsigned int mdev_nr_samples = ARRAY_LEN(mdev_samples);

const struct mdev_sample_desc *mdev_sample_find(const char *sample)
{
	unsigned int i;

	for (i = 0; i < mdev_nr_samples; i++)
		if (!strcmp(mdev_samples[i].sample, sample))
			return &mdev_samples[i];
	return NULL;
}

const char *mdev_samples_env(void)
{
	const char *env = getenv("MDEV_SAMPLES");

	return env ? env : MDEV_SAMPLES_DEFAULT;
}

bool mdev_sample_listed(const char *sample)
{
	const char *p = mdev_samples_env();
	size_t len = strlen(sample);

	while (*p) {
		size_t n;

		while (*p && (isspace((unsigned char)*p) || *p == ','))
			p++;
		n = strcspn(p, " \t\n,");
		if (n == len && !strncmp(p, sample, len))
			return true;
		p += n;
	}
	return false;
}

/* The sample whose ABI s implements: s itself, or the one s->compat names */
const struct mdev_sample_desc *
mdev_sample_base(const struct mdev_sample_desc *s)
{
	const struct mdev_sample_desc *b;

	if (!s->compat)
		return s;
	b = mdev_sample_find(s->compat);
	return b ? b : s;
}

/* Another sample of the table implements the same ABI (mtty, mtty_rs) */
bool mdev_sample_shared(const struct mdev_sample_desc *s)
{
	const struct mdev_sample_desc *base = mdev_sample_base(s);
	unsigned int i;

	for (i = 0; i < mdev_nr_samples; i++)
		if (&mdev_samples[i] != s &&
		    mdev_sample_base(&mdev_samples[i]) == base)
			return true;
	return false;
}

/*
 * The sample that implements the ABI of sample "name" and is listed in
 * $MDEV_SAMPLES: for "mtty", mtty or mtty_rs, whichever is listed (the
 * first one if both are, see mdev_samples_conflict()).  If none is listed,
 * the sample "name" itself; NULL for an unknown name.
 */
const struct mdev_sample_desc *mdev_sample_impl(const char *name)
{
	const struct mdev_sample_desc *s = mdev_sample_find(name), *base;
	unsigned int i;

	if (!s)
		return NULL;
	base = mdev_sample_base(s);
	for (i = 0; i < mdev_nr_samples; i++) {
		const struct mdev_sample_desc *o = &mdev_samples[i];

		if (mdev_sample_base(o) == base && mdev_sample_listed(o->sample))
			return o;
	}
	return s;
}

/*
 * NULL if $MDEV_SAMPLES is usable, else why not: it lists two samples that
 * implement the same ABI (mtty and mtty_rs register the same class and
 * driver names, so they cannot be loaded together).
 */
const char *mdev_samples_conflict(void)
{
	static char msg[256];
	unsigned int i, j;

	for (i = 0; i < mdev_nr_samples; i++) {
		const struct mdev_sample_desc *a = &mdev_samples[i];

		if (!mdev_sample_listed(a->sample))
			continue;
		for (j = i + 1; j < mdev_nr_samples; j++) {
			const struct mdev_sample_desc *b = &mdev_samples[j];

			if (mdev_sample_base(a) != mdev_sample_base(b) ||
			    !mdev_sample_listed(b->sample))
				continue;
			snprintf(msg, sizeof(msg),
				 "MDEV_SAMPLES=\"%s\" lists both %s and %s: both implement %s (same parent, class and driver names) and cannot be loaded together; list one of them",
				 mdev_samples_env(), a->sample, b->sample,
				 mdev_sample_base(a)->sample);
			return msg;
		}
	}
	return NULL;
}

const struct mdev_type_desc *mdev_type_find(const struct mdev_sample_desc *s,
					    const char *id)
{
	unsigned int i;

	for (i = 0; i < s->nr_types; i++)
		if (!strcmp(s->types[i].id, id))
			return &s->types[i];
	return NULL;
}

unsigned int mdev_expected_avail(const struct mdev_sample_desc *s,
				 const struct mdev_type_desc *t,
				 unsigned int used)
{
	if (used >= s->pool)
		return 0;
	return (s->pool - used) / t->cost;
}

int mdev_uuid_gen(char uuid[MDEV_UUID_LEN + 1])
{
	unsigned char b[16];
	ssize_t ret;

	ret = getrandom(b, sizeof(b), 0);
	if (ret != sizeof(b)) {
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return -errno;
		ret = read(fd, b, sizeof(b));
		close(fd);
		if (ret != sizeof(b))
			return -EIO;
	}
	b[6] = (b[6] & 0x0f) | 0x40;	/* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	snprintf(uuid, MDEV_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
		 b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

void mdev_str_upper(char *dst, const char *src, size_t size)
{
	size_t i;

	for (i = 0; i + 1 < size && src[i]; i++)
		dst[i] = toupper((unsigned char)src[i]);
	if (size)
		dst[i] = '\0';
}

char *mdev_pathf(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, size, fmt, ap);
	va_end(ap);
	return dst;
}

static char *join(char *dst, size_t size, const char *base, const char *file)
{
	if (file && *file)
		return mdev_pathf(dst, size, "%s/%s", base, file);
	return mdev_pathf(dst, size, "%s", base);
}

char *mdev_parent_path(char *dst, size_t size, const struct mdev_sample_desc *s,
		       const char *file)
{
	char base[MDEV_PATH_MAX];

	snprintf(base, sizeof(base), MDEV_CLASS_DIR "/%s", s->parent);
	return join(dst, size, base, file);
}

char *mdev_type_path(char *dst, size_t size, const struct mdev_sample_desc *s,
		     const char *type, const char *file)
{
	char base[MDEV_PATH_MAX];

	snprintf(base, sizeof(base), MDEV_CLASS_DIR "/%s/mdev_supported_types/%s",
		 s->parent, type);
	return join(dst, size, base, file);
}

char *mdev_dev_path(char *dst, size_t size, const char *uuid, const char *file)
{
	char base[MDEV_PATH_MAX];

	snprintf(base, sizeof(base), MDEV_BUS_DEVICES "/%s", uuid);
	return join(dst, size, base, file);
}

/* The device directory as a child of the parent: /sys<devpath>/<uuid> */
char *mdev_dev_realdir(char *dst, size_t size, const struct mdev_sample_desc *s,
		       const char *uuid)
{
	snprintf(dst, size, "/sys%s/%s", s->parent_devpath, uuid);
	return dst;
}

ssize_t mdev_read_file(const char *path, char *buf, size_t size)
{
	ssize_t total = 0, ret;
	int fd;

	if (!size)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((size_t)total < size - 1) {
		ret = read(fd, buf + total, size - 1 - total);
		if (ret < 0) {
			ret = -errno;
			close(fd);
			buf[total] = '\0';
			return ret;
		}
		if (!ret)
			break;
		total += ret;
	}
	buf[total] = '\0';
	close(fd);
	return total;
}

/* One open() and one write(); the return value of write() or -errno */
ssize_t mdev_write_file(const char *path, const void *buf, size_t len)
{
	ssize_t ret;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = write(fd, buf, len);
	if (ret < 0)
		ret = -errno;
	close(fd);
	return ret;
}

ssize_t mdev_write_str(const char *path, const char *str)
{
	return mdev_write_file(path, str, strlen(str));
}

/* 0 if open() with these flags works, errno otherwise */
int mdev_open_errno(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

int mdev_read_uint(const char *path, unsigned int *val)
{
	char buf[64], *end;
	unsigned long v;
	ssize_t ret;

	ret = mdev_read_file(path, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || v > UINT_MAX)
		return -EINVAL;
	*val = v;
	return 0;
}

/* 0 if the path exists (without following a final symlink), else errno */
int mdev_lstat_errno(const char *path)
{
	struct stat st;

	return lstat(path, &st) ? errno : 0;
}

bool mdev_exists(const char *path)
{
	return mdev_lstat_errno(path) == 0;
}

int mdev_realpath(const char *path, char *dst, size_t size)
{
	char tmp[PATH_MAX];

	if (!realpath(path, tmp))
		return -errno;
	snprintf(dst, size, "%s", tmp);
	return 0;
}

int mdev_readlink(const char *path, char *dst, size_t size)
{
	ssize_t n = readlink(path, dst, size - 1);

	if (n < 0)
		return -errno;
	dst[n] = '\0';
	return 0;
}

const char *mdev_basename(const char *path)
{
	const char *p = strrchr(path, '/');

	return p ? p + 1 : path;
}

/* Number of entries other than . and ..; the first one is copied to first */
int mdev_count_dir(const char *path, char *first, size_t size)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(path);
	if (!d)
		return -errno;
	if (first && size)
		first[0] = '\0';
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!n && first && size)
			snprintf(first, size, "%s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

void mdev_msleep(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000L,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

long long mdev_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool mdev_wait_exists(const char *path, bool present, int timeout_ms)
{
	long long deadline = mdev_now_ms() + timeout_ms;

	for (;;) {
		if (mdev_exists(path) == present)
			return true;
		if (mdev_now_ms() >= deadline)
			return false;
		mdev_msleep(10);
	}
}

int mdev_create(const struct mdev_sample_desc *s, const char *type,
		const char *uuid)
{
	char path[MDEV_PATH_MAX];
	ssize_t ret;

	mdev_type_path(path, sizeof(path), s, type, "create");
	ret = mdev_write_file(path, uuid, MDEV_UUID_LEN);
	if (ret < 0)
		return ret;
	return ret == MDEV_UUID_LEN ? 0 : -EIO;
}

int mdev_remove(const char *uuid)
{
	char path[MDEV_PATH_MAX];
	ssize_t ret;

	mdev_dev_path(path, sizeof(path), uuid, "remove");
	ret = mdev_write_file(path, "1", 1);
	if (ret < 0)
		return ret;
	return ret == 1 ? 0 : -EIO;
}

int mdev_available(const struct mdev_sample_desc *s, const char *type,
		   unsigned int *val)
{
	char path[MDEV_PATH_MAX];

	mdev_type_path(path, sizeof(path), s, type, "available_instances");
	return mdev_read_uint(path, val);
}

void mdev_track(struct mdev_tracker *t, const char *uuid)
{
	unsigned int i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->uuid[i], uuid))
			return;
	if (t->n < MDEV_MAX_TRACKED)
		snprintf(t->uuid[t->n++], MDEV_UUID_LEN + 1, "%s", uuid);
}

void mdev_untrack(struct mdev_tracker *t, const char *uuid)
{
	unsigned int i;

	for (i = 0; i < t->n; i++) {
		if (strcmp(t->uuid[i], uuid))
			continue;
		t->n--;
		if (i != t->n)
			memcpy(t->uuid[i], t->uuid[t->n], sizeof(t->uuid[i]));
		return;
	}
}

/* Remove every tracked device that still exists; returns the failures */
int mdev_cleanup(struct mdev_tracker *t)
{
	char path[MDEV_PATH_MAX];
	int failed = 0;
	unsigned int i;

	for (i = 0; i < t->n; i++) {
		int ret;

		mdev_dev_path(path, sizeof(path), t->uuid[i], NULL);
		if (!mdev_exists(path))
			continue;
		ret = mdev_remove(t->uuid[i]);
		if (ret) {
			fprintf(stderr, "# cleanup: removing mdev %s failed: %s\n",
				t->uuid[i], strerror(-ret));
			failed++;
		}
	}
	t->n = 0;
	return failed;
}

/*
 * Remove every mdev on the bus.  kselftest_harness.h of 6.12 did not run
 * FIXTURE_TEARDOWN after a failed ASSERT in the test body (the longjmp back
 * into the wrapper lost track of the forked child; 7.3's harness does run
 * it), so mdevs of a failed test stayed and made later tests fail too;
 * fixture setups still call this so that one failure stays one failure
 * whatever the harness does.  Returns how many were removed.
 */
int mdev_reap_all(void)
{
	DIR *d = opendir("/sys/bus/mdev/devices");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (!mdev_remove(e->d_name)) {
			fprintf(stderr, "# reaped mdev %s left by an earlier test\n",
				e->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

void mdev_close_fds_from(int lowfd)
{
	long max = sysconf(_SC_OPEN_MAX);
	int fd;

	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = lowfd; fd < max; fd++)
		close(fd);
}

/*
 * Run a command, its output copied to stderr as TAP comments.  Returns the
 * exit status, 128 + signal, or -errno if it could not be started.
 */
int mdev_run(const char *const argv[])
{
	char buf[512], line[1024];
	size_t llen = 0;
	int pipefd[2], status;
	ssize_t n;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		int err = errno;

		close(pipefd[0]);
		close(pipefd[1]);
		return -err;
	}
	if (!pid) {
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		mdev_close_fds_from(3);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	while ((n = read(pipefd[0], buf, sizeof(buf))) != 0) {
		ssize_t i;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n' || llen == sizeof(line) - 1) {
				line[llen] = '\0';
				fprintf(stderr, "# [%s] %s\n", argv[0], line);
				llen = 0;
				if (buf[i] == '\n')
					continue;
			}
			line[llen++] = buf[i];
		}
	}
	if (llen) {
		line[llen] = '\0';
		fprintf(stderr, "# [%s] %s\n", argv[0], line);
	}
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -EIO;
}

int mdev_modprobe(const char *module, bool remove)
{
	const char *argv[4];
	int i = 0;

	argv[i++] = "modprobe";
	if (remove)
		argv[i++] = "-r";
	argv[i++] = module;
	argv[i] = NULL;
	return mdev_run(argv);
}

bool mdev_module_loaded(const char *module)
{
	char path[MDEV_PATH_MAX], buf[32];

	snprintf(path, sizeof(path), "/sys/module/%s/initstate", module);
	if (mdev_read_file(path, buf, sizeof(buf)) < 0)
		return false;
	return !strcmp(buf, "live\n");
}

int mdev_module_refcnt(const char *module)
{
	char path[MDEV_PATH_MAX];
	unsigned int val;
	int ret;

	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", module);
	ret = mdev_read_uint(path, &val);
	return ret ? ret : (int)val;
}

/*
 * Fork a child that writes data to path once and exits with 0 if write()
 * returned strlen(data), errno if open() or write() failed, 255 for a short
 * or long write.  The child closes every inherited descriptor first so that
 * it does not keep a VFIO device of its parent open.
 */
pid_t mdev_fork_writer(const char *path, const char *data)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid)
		return pid;

	mdev_close_fds_from(3);
	{
		size_t len = strlen(data);
		ssize_t ret;
		int fd;

		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			_exit(errno ? errno : 254);
		ret = write(fd, data, len);
		if (ret < 0)
			_exit(errno ? errno : 254);
		_exit(ret == (ssize_t)len ? 0 : 255);
	}
}

/* 0: reaped (status set), -ETIMEDOUT: still running, -errno: error */
int mdev_wait_child(pid_t pid, int timeout_ms, int *status)
{
	long long deadline = mdev_now_ms() + timeout_ms;

	for (;;) {
		pid_t ret = waitpid(pid, status, WNOHANG);

		if (ret == pid)
			return 0;
		if (ret < 0 && errno != EINTR)
			return -errno;
		if (mdev_now_ms() >= deadline)
			return -ETIMEDOUT;
		mdev_msleep(10);
	}
}

/* open() as uid/gid 65534 in a child; returns 0 or the errno, -1 on error */
int mdev_open_as_nobody(const char *path, int flags)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		int fd;

		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(255);
		fd = open(path, flags | O_CLOEXEC);
		if (fd < 0)
			_exit(errno ? errno : 254);
		close(fd);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	if (WEXITSTATUS(status) == 255)
		return -1;
	return WEXITSTATUS(status);
}

int mdev_uevent_open(void)
{
	struct sockaddr_nl addr = {
		.nl_family = AF_NETLINK,
		.nl_pid = 0,
		.nl_groups = 1,	/* kernel uevents */
	};
	int size = 8 << 20;
	int fd;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
		    NETLINK_KOBJECT_UEVENT);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

/* Receive one kernel uevent: 0, -ETIMEDOUT or -errno (-ENOBUFS: lost) */
int mdev_uevent_recv(int fd, struct mdev_uevent *ev, int timeout_ms)
{
	long long deadline = mdev_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct sockaddr_nl from;
		socklen_t fromlen = sizeof(from);
		long long left = deadline - mdev_now_ms();
		ssize_t n;
		char *at;
		int ret;

		if (left < 0)
			left = 0;
		ret = poll(&pfd, 1, (int)left);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!ret)
			return -ETIMEDOUT;
		n = recvfrom(fd, ev->buf, sizeof(ev->buf) - 1, MSG_DONTWAIT,
			     (struct sockaddr *)&from, &fromlen);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		/* only messages from the kernel, in "action@devpath" form */
		if (from.nl_pid != 0)
			continue;
		ev->buf[n] = '\0';
		ev->len = n;
		at = strchr(ev->buf, '@');
		if (!at || at - ev->buf >= n)
			continue;
		*at = '\0';
		ev->action = ev->buf;
		ev->devpath = at + 1;
		return 0;
	}
}

const char *mdev_uevent_get(const struct mdev_uevent *ev, const char *key)
{
	size_t klen = strlen(key);
	const char *p = ev->devpath + strlen(ev->devpath) + 1;
	const char *end = ev->buf + ev->len;

	while (p < end) {
		if (!strncmp(p, key, klen) && p[klen] == '=')
			return p + klen + 1;
		p += strlen(p) + 1;
	}
	return NULL;
}

/* Skip events until one with this action and exact DEVPATH arrives */
int mdev_uevent_wait(int fd, const char *action, const char *devpath,
		     struct mdev_uevent *ev, int timeout_ms)
{
	long long deadline = mdev_now_ms() + timeout_ms;

	for (;;) {
		long long left = deadline - mdev_now_ms();
		int ret;

		if (left <= 0)
			return -ETIMEDOUT;
		ret = mdev_uevent_recv(fd, ev, (int)left);
		if (ret)
			return ret;
		if (!strcmp(ev->action, action) && !strcmp(ev->devpath, devpath))
			return 0;
	}
}

/* VFIO_DEVICE_SET_IRQS: eventfd efd (-1 tears down) as the trigger of vector 0 of index */
int mdev_set_irq_eventfd(int fd, __u32 index, __s32 efd)
{
	char buf[sizeof(struct vfio_irq_set) + sizeof(__s32)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;

	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = index;
	set->start = 0;
	set->count = 1;
	memcpy(set->data, &efd, sizeof(efd));
	return ioctl(fd, VFIO_DEVICE_SET_IRQS, set) ? -errno : 0;
}

/* VFIO_DEVICE_SET_IRQS with DATA_NONE: action on count vectors of index */
int mdev_set_irq_none(int fd, __u32 index, __u32 action, __u32 count)
{
	struct vfio_irq_set set = {
		.argsz = sizeof(set),
		.flags = VFIO_IRQ_SET_DATA_NONE | action,
		.index = index,
		.start = 0,
		.count = count,
	};

	return ioctl(fd, VFIO_DEVICE_SET_IRQS, &set) ? -errno : 0;
}

/* eventfd counter after waiting up to timeout_ms, 0 if nothing fired */
__u64 mdev_wait_event(int efd, int timeout_ms)
{
	struct pollfd pfd = { .fd = efd, .events = POLLIN };
	__u64 cnt = 0;

	if (poll(&pfd, 1, timeout_ms) != 1)
		return 0;
	if (read(efd, &cnt, sizeof(cnt)) != sizeof(cnt))
		return 0;
	return cnt;
}

/* Deterministic pseudo-random bytes of seed (xorshift64*) */
void mdev_fill_random(void *buf, size_t len, __u64 seed)
{
	__u64 x = seed * 0x9e3779b97f4a7c15ULL + 1;
	__u8 *p = buf;
	size_t i;

	for (i = 0; i < len; i += 8) {
		__u64 v;

		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		v = x * 0x2545f4914f6cdd1dULL;
		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}
