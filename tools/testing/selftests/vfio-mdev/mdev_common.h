/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers and per-sample expectations for the VFIO mediated device
 * (mdev) selftests.  Nothing in here depends on kselftest_harness.h, so it
 * can be linked into every test program; the ASSERT-based wrappers live in
 * mdev_harness.h.
 */
#ifndef __MDEV_COMMON_H
#define __MDEV_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

#define MDEV_UUID_LEN		36
#define MDEV_MAX_TYPES		4
#define MDEV_MAX_TRACKED	64
#define MDEV_PATH_MAX		512

#define MDEV_CLASS_DIR		"/sys/class/mdev_bus"
#define MDEV_BUS_DIR		"/sys/bus/mdev"
#define MDEV_BUS_DEVICES	"/sys/bus/mdev/devices"

/* Default value of $MDEV_SAMPLES */
#define MDEV_SAMPLES_DEFAULT	"mtty mdpy mbochs"

/* One mdev type of a sample parent. */
struct mdev_type_desc {
	const char *id;		/* directory name: "<driver>-<sysfs_name>" */
	const char *name;	/* exact content of the "name" attribute */
	const char *description; /* exact content, NULL: no "description" */
	unsigned int cost;	/* units of the sample's pool one instance uses */
	const char *vendor_attr; /* vendor attribute of a device of this type */
	const char *vendor_value; /* its content; "%s" is replaced by the uuid */
};

/* VFIO_DEVICE_GET_REGION_INFO expectation; err != 0: the ioctl fails */
struct mdev_region_desc {
	__u32 index;
	int err;
	__u64 offset;
	__u64 size;
	__u32 flags;
};

/* VFIO_DEVICE_GET_IRQ_INFO expectation; err != 0: the ioctl fails */
struct mdev_irq_desc {
	__u32 index;
	int err;
	__u32 count;
	__u32 flags;
};

/* A little-endian value in PCI config space */
struct mdev_cfg_desc {
	unsigned int offset;
	unsigned int width;	/* 1, 2 or 4 */
	__u32 value;
};

struct mdev_sample_desc {
	const char *sample;	/* key used in $MDEV_SAMPLES */
	const char *module;	/* module name for modprobe */
	/*
	 * NULL, or the sample whose ABI this one implements exactly (same
	 * parent, driver, types and every expectation below): "mtty" for
	 * mtty_rs, the Rust mtty.  Such samples register the same class and
	 * driver names, so at most one of them can be loaded and listed.
	 */
	const char *compat;
	const char *parent;	/* dev_name() of the parent device */
	const char *parent_devpath; /* its DEVPATH (sysfs path without /sys) */
	const char *parent_subsystem; /* SUBSYSTEM of the parent (class) */
	const char *driver;	/* name of the mdev driver on the mdev bus */
	const char *device_api;	/* exact content of "device_api" */
	/*
	 * Accounting: every type draws "cost" units from one pool of "pool"
	 * units; available_instances of a type is remaining / cost.
	 * core_counter: the pool is the core's max_instances counter (no
	 * get_available), exhausted create fails with EUSERS before any device
	 * is added; otherwise the vendor driver refuses in its probe.
	 */
	unsigned int pool;
	bool core_counter;
	int exhausted_errno;
	unsigned int nr_types;
	struct mdev_type_desc types[MDEV_MAX_TYPES];

	/* VFIO device of types[0] */
	__u32 vfio_flags;
	__u32 num_regions;
	__u32 num_irqs;
	__u64 config_offset;	/* file offset of the config region */
	const struct mdev_region_desc *regions;
	unsigned int nr_regions;
	const struct mdev_irq_desc *irqs;
	unsigned int nr_irqs;
	const struct mdev_cfg_desc *config;
	unsigned int nr_config;
};

extern const struct mdev_sample_desc mdev_samples[];
extern const unsigned int mdev_nr_samples;

const struct mdev_sample_desc *mdev_sample_find(const char *sample);
const char *mdev_samples_env(void);
bool mdev_sample_listed(const char *sample);
const struct mdev_sample_desc *
mdev_sample_base(const struct mdev_sample_desc *s);
bool mdev_sample_shared(const struct mdev_sample_desc *s);
const struct mdev_sample_desc *mdev_sample_impl(const char *name);
const char *mdev_samples_conflict(void);
const struct mdev_type_desc *mdev_type_find(const struct mdev_sample_desc *s,
					    const char *id);
unsigned int mdev_expected_avail(const struct mdev_sample_desc *s,
				 const struct mdev_type_desc *t,
				 unsigned int used);

/* UUIDs */
int mdev_uuid_gen(char uuid[MDEV_UUID_LEN + 1]);
void mdev_str_upper(char *dst, const char *src, size_t size);

/* snprintf() for paths; truncates silently (paths are far below the size) */
char *mdev_pathf(char *dst, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Paths, all return dst */
char *mdev_parent_path(char *dst, size_t size, const struct mdev_sample_desc *s,
		       const char *file);
char *mdev_type_path(char *dst, size_t size, const struct mdev_sample_desc *s,
		     const char *type, const char *file);
char *mdev_dev_path(char *dst, size_t size, const char *uuid, const char *file);
char *mdev_dev_realdir(char *dst, size_t size, const struct mdev_sample_desc *s,
		       const char *uuid);

/* Files.  All return -errno on failure. */
ssize_t mdev_read_file(const char *path, char *buf, size_t size);
ssize_t mdev_write_file(const char *path, const void *buf, size_t len);
ssize_t mdev_write_str(const char *path, const char *str);
int mdev_open_errno(const char *path, int flags);
int mdev_read_uint(const char *path, unsigned int *val);
int mdev_lstat_errno(const char *path);
bool mdev_exists(const char *path);
int mdev_realpath(const char *path, char *dst, size_t size);
int mdev_readlink(const char *path, char *dst, size_t size);
const char *mdev_basename(const char *path);
int mdev_count_dir(const char *path, char *first, size_t size);
bool mdev_wait_exists(const char *path, bool present, int timeout_ms);

/* mdev lifecycle: 0 or -errno (-EIO: short write) */
int mdev_create(const struct mdev_sample_desc *s, const char *type,
		const char *uuid);
int mdev_remove(const char *uuid);
int mdev_available(const struct mdev_sample_desc *s, const char *type,
		   unsigned int *val);

/* Devices a test created and its teardown must remove */
struct mdev_tracker {
	unsigned int n;
	char uuid[MDEV_MAX_TRACKED][MDEV_UUID_LEN + 1];
};

void mdev_track(struct mdev_tracker *t, const char *uuid);
void mdev_untrack(struct mdev_tracker *t, const char *uuid);
int mdev_cleanup(struct mdev_tracker *t);
int mdev_reap_all(void);

/* Processes */
void mdev_close_fds_from(int lowfd);
int mdev_run(const char *const argv[]);
int mdev_modprobe(const char *module, bool remove);
bool mdev_module_loaded(const char *module);
int mdev_module_refcnt(const char *module);
pid_t mdev_fork_writer(const char *path, const char *data);
int mdev_wait_child(pid_t pid, int timeout_ms, int *status);
int mdev_open_as_nobody(const char *path, int flags);
void mdev_msleep(unsigned int ms);
long long mdev_now_ms(void);

/* Kernel uevents (NETLINK_KOBJECT_UEVENT, kernel multicast group) */
struct mdev_uevent {
	char buf[8192];
	size_t len;
	const char *action;
	const char *devpath;
};

int mdev_uevent_open(void);
int mdev_uevent_recv(int fd, struct mdev_uevent *ev, int timeout_ms);
const char *mdev_uevent_get(const struct mdev_uevent *ev, const char *key);
int mdev_uevent_wait(int fd, const char *action, const char *devpath,
		     struct mdev_uevent *ev, int timeout_ms);

/* VFIO interrupts through eventfds, and test data */
int mdev_set_irq_eventfd(int fd, __u32 index, __s32 efd);
int mdev_set_irq_none(int fd, __u32 index, __u32 action, __u32 count);
__u64 mdev_wait_event(int efd, int timeout_ms);
void mdev_fill_random(void *buf, size_t len, __u64 seed);

#endif /* __MDEV_COMMON_H */
