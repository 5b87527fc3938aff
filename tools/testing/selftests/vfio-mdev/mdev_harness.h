/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kselftest_harness based helpers for the mdev selftests: sample lookup with
 * the $MDEV_SAMPLES skip/fail policy, creation with cleanup tracking, and
 * opening an mdev through both VFIO paths (group/container and iommufd cdev).
 *
 * Include this only from the test programs (one translation unit each), not
 * from mdev_common.c: kselftest_harness.h defines global objects.
 */
#ifndef __MDEV_HARNESS_H
#define __MDEV_HARNESS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "../kselftest_harness.h"
#include "mdev_common.h"

/* Generous: everything runs under TCG */
#define MDEV_TIMEOUT		180
#define MDEV_LONG_TIMEOUT	600

/*
 * The sample of a fixture variant: SKIP if it is not in $MDEV_SAMPLES,
 * FAIL if it is listed but its parent is not registered.  A variant names
 * an ABI ("mtty"); the sample tested is the listed implementation of it
 * (mtty or mtty_rs, see mdev_sample_impl()), whose module must be the one
 * loaded.  $MDEV_SAMPLES listing two implementations of one ABI fails.
 * Returns NULL after SKIP; the caller must return.
 */
static inline const struct mdev_sample_desc *
mdev_setup_sample(struct __test_metadata *_metadata, const char *name)
{
	const struct mdev_sample_desc *s = mdev_sample_impl(name);
	const char *conflict = mdev_samples_conflict();
	char path[MDEV_PATH_MAX];
	int err;

	ASSERT_TRUE(s != NULL) {
		TH_LOG("no expectations for sample \"%s\"", name);
	}
	ASSERT_TRUE(conflict == NULL) {
		TH_LOG("%s", conflict);
	}
	if (!mdev_sample_listed(s->sample)) {
		SKIP(return NULL, "sample %s not in MDEV_SAMPLES=\"%s\"",
		     s->sample, mdev_samples_env());
	}
	mdev_parent_path(path, sizeof(path), s, NULL);
	err = mdev_lstat_errno(path);
	ASSERT_EQ(0, err) {
		TH_LOG("sample %s is listed in MDEV_SAMPLES but %s: %s (module %s loaded: %d)",
		       s->sample, path, strerror(err), s->module,
		       mdev_module_loaded(s->module));
	}
	/* the parent could belong to another implementation of the ABI */
	if (mdev_sample_shared(s)) {
		ASSERT_TRUE(mdev_module_loaded(s->module)) {
			TH_LOG("sample %s is listed in MDEV_SAMPLES and %s exists, but module %s is not loaded",
			       s->sample, path, s->module);
		}
	}
	mdev_reap_all();
	return s;
}

/* Another listed sample with a registered parent, or NULL */
static inline const struct mdev_sample_desc *
mdev_other_sample(const struct mdev_sample_desc *s)
{
	char path[MDEV_PATH_MAX];
	unsigned int i;

	for (i = 0; i < mdev_nr_samples; i++) {
		const struct mdev_sample_desc *o = &mdev_samples[i];

		if (o == s || !mdev_sample_listed(o->sample))
			continue;
		if (mdev_exists(mdev_parent_path(path, sizeof(path), o, NULL)))
			return o;
	}
	return NULL;
}

/* Create an mdev with a fresh UUID (returned in uuid) and track it */
static inline void mdev_new(struct __test_metadata *_metadata,
			    struct mdev_tracker *t,
			    const struct mdev_sample_desc *s, const char *type,
			    char uuid[MDEV_UUID_LEN + 1])
{
	int ret;

	ASSERT_EQ(0, mdev_uuid_gen(uuid));
	ret = mdev_create(s, type, uuid);
	if (!ret)
		mdev_track(t, uuid);
	ASSERT_EQ(0, ret) {
		TH_LOG("creating %s mdev %s failed: %s", type, uuid,
		       strerror(-ret));
	}
}

static inline void mdev_del(struct __test_metadata *_metadata,
			    struct mdev_tracker *t, const char *uuid)
{
	int ret = mdev_remove(uuid);

	ASSERT_EQ(0, ret) {
		TH_LOG("removing mdev %s failed: %s", uuid, strerror(-ret));
	}
	mdev_untrack(t, uuid);
}

/* Exact content of a sysfs file */
static inline void mdev_expect_file(struct __test_metadata *_metadata,
				    const char *path, const char *expected)
{
	char buf[4096];
	ssize_t n;

	n = mdev_read_file(path, buf, sizeof(buf));
	ASSERT_LE(0, n) {
		TH_LOG("reading %s: %s", path, strerror((int)-n));
	}
	ASSERT_STREQ(expected, buf) {
		TH_LOG("content of %s", path);
	}
}

static inline unsigned int mdev_avail(struct __test_metadata *_metadata,
				      const struct mdev_sample_desc *s,
				      const char *type)
{
	unsigned int val = 0;
	int ret;

	ret = mdev_available(s, type, &val);
	ASSERT_EQ(0, ret) {
		TH_LOG("reading %s available_instances: %s", type,
		       strerror(-ret));
	}
	return val;
}

/* available_instances of every type matches "used" units of the pool */
static inline void mdev_expect_avail_all(struct __test_metadata *_metadata,
					 const struct mdev_sample_desc *s,
					 unsigned int used)
{
	unsigned int i;

	for (i = 0; i < s->nr_types; i++) {
		const struct mdev_type_desc *t = &s->types[i];
		unsigned int want = mdev_expected_avail(s, t, used);

		ASSERT_EQ(want, mdev_avail(_metadata, s, t->id)) {
			TH_LOG("%s available_instances with %u of %u units used",
			       t->id, used, s->pool);
		}
	}
}

/* The mdev's device directory exists under its parent, or not */
static inline bool mdev_dev_present(const struct mdev_sample_desc *s,
				    const char *uuid)
{
	char path[MDEV_PATH_MAX];

	return mdev_exists(mdev_dev_realdir(path, sizeof(path), s, uuid));
}

/* An mdev opened through one of the two VFIO paths */
enum mdev_vfio_path {
	MDEV_VFIO_GROUP,
	MDEV_VFIO_CDEV,
};

struct mdev_vfio {
	int container;
	int group;
	int iommufd;
	int device;
	__u32 ioas_id;
	int group_id;
	int cdev_id;
};

static inline void mdev_vfio_init(struct mdev_vfio *v)
{
	v->container = -1;
	v->group = -1;
	v->iommufd = -1;
	v->device = -1;
	v->ioas_id = 0;
	v->group_id = -1;
	v->cdev_id = -1;
}

/*
 * Teardown after a failed test: the process's mappings of VFIO device files
 * and dma-bufs, and its dma-buf descriptors, would keep the device in use,
 * and the removal of the test's mdevs (in this very process) would wait for
 * them forever.  Unmaps and closes them.
 */
static inline void mdev_drop_mappings(void)
{
	char line[512], path[300], link[256];
	unsigned long start, end;
	struct dirent *de;
	FILE *f;
	DIR *d;

	f = fopen("/proc/self/maps", "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			/* the group path's anon file, the cdev, a dma-buf */
			if ((strstr(line, "[vfio-device]") ||
			     strstr(line, " /dev/vfio/") ||
			     strstr(line, "dmabuf")) &&
			    sscanf(line, "%lx-%lx", &start, &end) == 2)
				munmap((void *)start, end - start);
		}
		fclose(f);
	}
	d = opendir("/proc/self/fd");
	if (!d)
		return;
	while ((de = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (strstr(link, "dmabuf"))
			close(atoi(de->d_name));
	}
	closedir(d);
}

static inline void mdev_vfio_close(struct mdev_vfio *v)
{
	if (v->device >= 0)
		close(v->device);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	if (v->iommufd >= 0)
		close(v->iommufd);
	mdev_vfio_init(v);
}

static inline int mdev_parse_id(const char *s, const char *prefix)
{
	size_t plen = strlen(prefix);
	char *end;
	long v;

	if (strncmp(s, prefix, plen) || !s[plen])
		return -1;
	v = strtol(s + plen, &end, 10);
	if (*end || v < 0)
		return -1;
	return (int)v;
}

/* The N of <dev>/iommu_group -> /sys/kernel/iommu_groups/N */
static inline int mdev_iommu_group(struct __test_metadata *_metadata,
				   const char *uuid)
{
	char path[MDEV_PATH_MAX], real[MDEV_PATH_MAX];
	int ret, id;

	mdev_dev_path(path, sizeof(path), uuid, "iommu_group");
	ret = mdev_realpath(path, real, sizeof(real));
	ASSERT_EQ(0, ret) {
		TH_LOG("realpath %s: %s", path, strerror(-ret));
	}
	ASSERT_EQ(0, strncmp(real, "/sys/kernel/iommu_groups/",
			     strlen("/sys/kernel/iommu_groups/"))) {
		TH_LOG("%s resolves to %s", path, real);
	}
	id = mdev_parse_id(mdev_basename(real), "");
	ASSERT_LE(0, id) {
		TH_LOG("%s resolves to %s", path, real);
	}
	return id;
}

/* M of <dev>/vfio-dev/vfioM, the only entry of that directory */
static inline int mdev_cdev_id(struct __test_metadata *_metadata,
			       const char *uuid)
{
	char path[MDEV_PATH_MAX], name[256];
	int n, id;

	mdev_dev_path(path, sizeof(path), uuid, "vfio-dev");
	n = mdev_count_dir(path, name, sizeof(name));
	ASSERT_EQ(1, n) {
		TH_LOG("entries in %s (first: %s)", path, name);
	}
	id = mdev_parse_id(name, "vfio");
	ASSERT_LE(0, id) {
		TH_LOG("entry in %s: %s", path, name);
	}
	return id;
}

/* VFIO group/container path, the way QEMU 7.2 opens an mdev */
static inline void mdev_vfio_open_group(struct __test_metadata *_metadata,
					struct mdev_vfio *v, const char *uuid)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	char path[MDEV_PATH_MAX];
	int ret;

	v->group_id = mdev_iommu_group(_metadata, uuid);

	v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, v->container) {
		TH_LOG("open /dev/vfio/vfio: %s", strerror(errno));
	}
	ASSERT_EQ(VFIO_API_VERSION, ioctl(v->container, VFIO_GET_API_VERSION));
	ASSERT_EQ(1, ioctl(v->container, VFIO_CHECK_EXTENSION,
			   VFIO_TYPE1v2_IOMMU));

	snprintf(path, sizeof(path), "/dev/vfio/%d", v->group_id);
	v->group = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, v->group) {
		TH_LOG("open %s: %s", path, strerror(errno));
	}
	ASSERT_EQ(0, ioctl(v->group, VFIO_GROUP_GET_STATUS, &status)) {
		TH_LOG("VFIO_GROUP_GET_STATUS: %s", strerror(errno));
	}
	ASSERT_EQ(VFIO_GROUP_FLAGS_VIABLE, status.flags);

	ASSERT_EQ(0, ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container)) {
		TH_LOG("VFIO_GROUP_SET_CONTAINER: %s", strerror(errno));
	}
	status.flags = 0;
	ASSERT_EQ(0, ioctl(v->group, VFIO_GROUP_GET_STATUS, &status));
	ASSERT_EQ(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET,
		  status.flags);

	ret = ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
	ASSERT_EQ(0, ret) {
		TH_LOG("VFIO_SET_IOMMU(TYPE1v2): %s", strerror(errno));
	}

	v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, uuid);
	ASSERT_LE(0, v->device) {
		TH_LOG("VFIO_GROUP_GET_DEVICE_FD(%s): %s", uuid,
		       strerror(errno));
	}
}

/* iommufd cdev path: /dev/vfio/devices/vfioM bound to an IOAS */
static inline void mdev_vfio_open_cdev(struct __test_metadata *_metadata,
				       struct mdev_vfio *v, const char *uuid)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
	};
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	struct vfio_device_info info = { .argsz = sizeof(info) };
	char path[MDEV_PATH_MAX], dev[64], want[64];
	struct stat st;
	ssize_t n;

	v->cdev_id = mdev_cdev_id(_metadata, uuid);

	/* the char device matches <dev>/vfio-dev/vfioM/dev */
	snprintf(path, sizeof(path), MDEV_BUS_DEVICES "/%s/vfio-dev/vfio%d/dev",
		 uuid, v->cdev_id);
	n = mdev_read_file(path, dev, sizeof(dev));
	ASSERT_LT(0, n) {
		TH_LOG("reading %s: %s", path, strerror((int)-n));
	}
	snprintf(path, sizeof(path), "/dev/vfio/devices/vfio%d", v->cdev_id);
	ASSERT_EQ(0, stat(path, &st)) {
		TH_LOG("stat %s: %s", path, strerror(errno));
	}
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	snprintf(want, sizeof(want), "%u:%u\n", major(st.st_rdev),
		 minor(st.st_rdev));
	ASSERT_STREQ(want, dev);

	v->device = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, v->device) {
		TH_LOG("open %s: %s", path, strerror(errno));
	}
	/* no access before VFIO_DEVICE_BIND_IOMMUFD */
	ASSERT_EQ(-1, ioctl(v->device, VFIO_DEVICE_GET_INFO, &info));
	ASSERT_EQ(EINVAL, errno);

	v->iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, v->iommufd) {
		TH_LOG("open /dev/iommu: %s", strerror(errno));
	}
	bind.iommufd = v->iommufd;
	ASSERT_EQ(0, ioctl(v->device, VFIO_DEVICE_BIND_IOMMUFD, &bind)) {
		TH_LOG("VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(errno));
	}
	ASSERT_EQ(0, ioctl(v->iommufd, IOMMU_IOAS_ALLOC, &alloc)) {
		TH_LOG("IOMMU_IOAS_ALLOC: %s", strerror(errno));
	}
	v->ioas_id = alloc.out_ioas_id;
	attach.pt_id = v->ioas_id;
	ASSERT_EQ(0, ioctl(v->device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach)) {
		TH_LOG("VFIO_DEVICE_ATTACH_IOMMUFD_PT(%u): %s", v->ioas_id,
		       strerror(errno));
	}
	ASSERT_EQ(v->ioas_id, attach.pt_id);
}

static inline void mdev_vfio_open(struct __test_metadata *_metadata,
				  struct mdev_vfio *v, const char *uuid,
				  enum mdev_vfio_path how)
{
	if (how == MDEV_VFIO_GROUP)
		mdev_vfio_open_group(_metadata, v, uuid);
	else
		mdev_vfio_open_cdev(_metadata, v, uuid);
}

/*
 * VFIO_DEVICE_GET_INFO.  Every VFIO user (QEMU) issues it first; mtty and
 * mdpy also validate later GET_IRQ_INFO/SET_IRQS against the num_irqs it
 * stored, so the tests always call it right after opening.
 */
static inline void mdev_vfio_info(struct __test_metadata *_metadata,
				  int fd, struct vfio_device_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	ASSERT_EQ(0, ioctl(fd, VFIO_DEVICE_GET_INFO, info)) {
		TH_LOG("VFIO_DEVICE_GET_INFO: %s", strerror(errno));
	}
}

static inline const char *mdev_path_name(enum mdev_vfio_path how)
{
	return how == MDEV_VFIO_GROUP ? "group/container" : "iommufd cdev";
}

#endif /* __MDEV_HARNESS_H */
