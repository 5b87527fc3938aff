// SPDX-License-Identifier: GPL-2.0
/*
 * mdev sysfs ABI: parent and type layout, file modes and contents, the
 * device lifecycle through "create"/"remove", available_instances accounting
 * and the errno of every create/remove path (drivers/vfio/mdev/mdev_sysfs.c,
 * mdev_core.c, mdev_driver.c).
 *
 * Every fixture has one variant per sample; a sample that is not listed in
 * $MDEV_SAMPLES is skipped, a listed one without its parent fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "mdev_harness.h"

/* st_mode permission bits of a path (following symlinks), or -errno */
static int mode_of(const char *path, bool *regular)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	if (regular)
		*regular = S_ISREG(st.st_mode);
	return st.st_mode & 07777;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return !lstat(path, &st) && S_ISDIR(st.st_mode);
}

static bool is_link(const char *path)
{
	struct stat st;

	return !lstat(path, &st) && S_ISLNK(st.st_mode);
}

/* Replace the first "%s" of fmt by uuid */
static void expand(char *dst, size_t size, const char *fmt, const char *uuid)
{
	const char *p = strstr(fmt, "%s");

	if (!p) {
		snprintf(dst, size, "%s", fmt);
		return;
	}
	snprintf(dst, size, "%.*s%s%s", (int)(p - fmt), fmt, uuid, p + 2);
}

static void expect_mode(struct __test_metadata *_metadata, const char *path,
			int mode)
{
	bool regular = false;
	int m = mode_of(path, &regular);

	ASSERT_LE(0, m) {
		TH_LOG("stat %s: %s", path, strerror(-m));
	}
	ASSERT_TRUE(regular) {
		TH_LOG("%s is not a regular file", path);
	}
	ASSERT_EQ(mode, m) {
		TH_LOG("mode of %s: 0%o, expected 0%o", path, m, mode);
	}
}

static void expect_realpath(struct __test_metadata *_metadata,
			    const char *path, const char *want)
{
	char real[MDEV_PATH_MAX];
	int ret;

	ret = mdev_realpath(path, real, sizeof(real));
	ASSERT_EQ(0, ret) {
		TH_LOG("realpath %s: %s", path, strerror(-ret));
	}
	ASSERT_STREQ(want, real) {
		TH_LOG("%s resolves to %s", path, real);
	}
}

static void expect_absent(struct __test_metadata *_metadata, const char *path)
{
	int err = mdev_lstat_errno(path);

	ASSERT_EQ(ENOENT, err) {
		TH_LOG("%s should not exist (lstat: %s)", path,
		       err ? strerror(err) : "exists");
	}
}

static void expect_no_device(struct __test_metadata *_metadata,
			     const struct mdev_sample_desc *s,
			     const char *uuid)
{
	char path[MDEV_PATH_MAX];

	expect_absent(_metadata, mdev_dev_path(path, sizeof(path), uuid, NULL));
	expect_absent(_metadata, mdev_dev_realdir(path, sizeof(path), s, uuid));
}

/* Everything that must exist as soon as the create write returns */
static void check_device(struct __test_metadata *_metadata,
			 const struct mdev_sample_desc *s,
			 const struct mdev_type_desc *t, const char *uuid,
			 int *group_out, int *cdev_out)
{
	char path[MDEV_PATH_MAX], dir[MDEV_PATH_MAX], want[MDEV_PATH_MAX];
	char link[MDEV_PATH_MAX], parent[MDEV_PATH_MAX];
	struct stat st;
	int group, cdev;

	/* /sys/bus/mdev/devices/UUID -> <parent device>/UUID */
	mdev_dev_path(path, sizeof(path), uuid, NULL);
	ASSERT_TRUE(is_link(path)) {
		TH_LOG("%s is not a symlink (%s)", path, strerror(errno));
	}
	mdev_dev_realdir(dir, sizeof(dir), s, uuid);
	expect_realpath(_metadata, path, dir);
	ASSERT_TRUE(is_dir(dir));

	/* a direct child of the parent device (mdevctl relies on it) */
	mdev_parent_path(path, sizeof(path), s, NULL);
	ASSERT_EQ(0, mdev_realpath(path, parent, sizeof(parent)));
	mdev_pathf(want, sizeof(want), "%s/%s", parent, uuid);
	ASSERT_STREQ(want, dir);

	/* mdev_type -> ../mdev_supported_types/<type> */
	mdev_dev_path(path, sizeof(path), uuid, "mdev_type");
	ASSERT_TRUE(is_link(path)) {
		TH_LOG("%s is not a symlink", path);
	}
	ASSERT_EQ(0, mdev_readlink(path, link, sizeof(link)));
	ASSERT_STREQ(t->id, mdev_basename(link));
	mdev_pathf(want, sizeof(want), "%s/mdev_supported_types/%s", parent,
		   t->id);
	expect_realpath(_metadata, path, want);

	/* the type's devices/UUID link */
	mdev_type_path(path, sizeof(path), s, t->id, "devices");
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", uuid);
	ASSERT_TRUE(is_link(path)) {
		TH_LOG("%s is not a symlink", path);
	}
	expect_realpath(_metadata, path, dir);

	/* subsystem: QEMU compares the realpath with exactly this */
	mdev_dev_path(path, sizeof(path), uuid, "subsystem");
	expect_realpath(_metadata, path, "/sys/bus/mdev");

	/* driver */
	mdev_dev_path(path, sizeof(path), uuid, "driver");
	snprintf(want, sizeof(want), MDEV_BUS_DIR "/drivers/%s", s->driver);
	expect_realpath(_metadata, path, want);

	/* remove 0200 */
	mdev_dev_path(path, sizeof(path), uuid, "remove");
	expect_mode(_metadata, path, 0200);

	/* uevent: the mdev bus adds nothing, only DRIVER= */
	mdev_dev_path(path, sizeof(path), uuid, "uevent");
	snprintf(want, sizeof(want), "DRIVER=%s\n", s->driver);
	mdev_expect_file(_metadata, path, want);

	/* vendor attribute (driver dev_groups) */
	mdev_dev_path(path, sizeof(path), uuid, t->vendor_attr);
	expect_mode(_metadata, path, 0444);
	expand(want, sizeof(want), t->vendor_value, uuid);
	mdev_expect_file(_metadata, path, want);

	/* iommu_group -> /sys/kernel/iommu_groups/N, "vfio-noiommu" */
	group = mdev_iommu_group(_metadata, uuid);
	snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/name", group);
	mdev_expect_file(_metadata, path, "vfio-noiommu\n");
	snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices/%s",
		 group, uuid);
	expect_realpath(_metadata, path, dir);
	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	ASSERT_EQ(0, stat(path, &st)) {
		TH_LOG("stat %s: %s", path, strerror(errno));
	}
	ASSERT_TRUE(S_ISCHR(st.st_mode));

	/* vfio-dev/vfioM and /dev/vfio/devices/vfioM */
	cdev = mdev_cdev_id(_metadata, uuid);
	snprintf(path, sizeof(path), "/dev/vfio/devices/vfio%d", cdev);
	ASSERT_EQ(0, stat(path, &st)) {
		TH_LOG("stat %s: %s", path, strerror(errno));
	}
	ASSERT_TRUE(S_ISCHR(st.st_mode));

	if (group_out)
		*group_out = group;
	if (cdev_out)
		*cdev_out = cdev;
}

/* ------------------------------------------------------------------ */

FIXTURE(layout) {
	const struct mdev_sample_desc *s;
};

FIXTURE_VARIANT(layout) {
	const char *sample;
};

FIXTURE_VARIANT_ADD(layout, mtty) { .sample = "mtty" };
FIXTURE_VARIANT_ADD(layout, mdpy) { .sample = "mdpy" };
FIXTURE_VARIANT_ADD(layout, mbochs) { .sample = "mbochs" };

FIXTURE_SETUP(layout)
{
	self->s = mdev_setup_sample(_metadata, variant->sample);
}

FIXTURE_TEARDOWN(layout)
{
}

/* /sys/class/mdev_bus/<parent> is a symlink to the parent device */
TEST_F_TIMEOUT(layout, class_link, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char path[MDEV_PATH_MAX], want[MDEV_PATH_MAX], link[MDEV_PATH_MAX];

	mdev_parent_path(path, sizeof(path), s, NULL);
	ASSERT_TRUE(is_link(path)) {
		TH_LOG("%s is not a symlink", path);
	}
	ASSERT_EQ(0, mdev_readlink(path, link, sizeof(link)));
	ASSERT_STREQ(s->parent, mdev_basename(link));
	snprintf(want, sizeof(want), "/sys%s", s->parent_devpath);
	expect_realpath(_metadata, path, want);

	/* the parent's own subsystem (its class) */
	snprintf(path, sizeof(path), "/sys%s/subsystem", s->parent_devpath);
	snprintf(want, sizeof(want), "/sys/class/%s", s->parent_subsystem);
	expect_realpath(_metadata, path, want);

	mdev_parent_path(path, sizeof(path), s, "mdev_supported_types");
	ASSERT_TRUE(is_dir(path)) {
		TH_LOG("%s is not a directory", path);
	}
}

/* mdev_supported_types/ holds exactly the sample's types, as directories */
TEST_F_TIMEOUT(layout, supported_types, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char path[MDEV_PATH_MAX], sub[MDEV_PATH_MAX];
	struct dirent *de;
	unsigned int seen = 0;
	DIR *d;

	mdev_parent_path(path, sizeof(path), s, "mdev_supported_types");
	d = opendir(path);
	ASSERT_TRUE(d != NULL) {
		TH_LOG("opendir %s: %s", path, strerror(errno));
	}
	while ((de = readdir(d))) {
		const struct mdev_type_desc *t;
		unsigned int i;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		t = mdev_type_find(s, de->d_name);
		EXPECT_TRUE(t != NULL) {
			TH_LOG("unexpected entry %s/%s", path, de->d_name);
		}
		if (!t)
			continue;
		i = t - s->types;
		EXPECT_EQ(0, seen & (1u << i));
		seen |= 1u << i;
		mdev_pathf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		EXPECT_TRUE(is_dir(sub)) {
			TH_LOG("%s is not a real directory", sub);
		}
	}
	closedir(d);
	ASSERT_EQ((1u << s->nr_types) - 1, seen) {
		TH_LOG("types found (bitmap of the expected list)");
	}
}

/* create 0200, the others 0444, description only where the driver has it */
TEST_F_TIMEOUT(layout, type_modes, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char path[MDEV_PATH_MAX];
	unsigned int i;

	for (i = 0; i < s->nr_types; i++) {
		const char *type = s->types[i].id;

		expect_mode(_metadata, mdev_type_path(path, sizeof(path), s,
						      type, "create"), 0200);
		expect_mode(_metadata, mdev_type_path(path, sizeof(path), s,
						      type, "name"), 0444);
		expect_mode(_metadata, mdev_type_path(path, sizeof(path), s,
						      type, "device_api"), 0444);
		expect_mode(_metadata, mdev_type_path(path, sizeof(path), s, type,
						      "available_instances"),
			    0444);
		mdev_type_path(path, sizeof(path), s, type, "description");
		if (s->types[i].description)
			expect_mode(_metadata, path, 0444);
		else
			expect_absent(_metadata, path);
		mdev_type_path(path, sizeof(path), s, type, "devices");
		ASSERT_TRUE(is_dir(path)) {
			TH_LOG("%s is not a directory", path);
		}
	}
}

/* name, device_api, available_instances, description: exact contents */
TEST_F_TIMEOUT(layout, type_attrs, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char path[MDEV_PATH_MAX], want[64];
	unsigned int i;

	for (i = 0; i < s->nr_types; i++) {
		const struct mdev_type_desc *t = &s->types[i];

		mdev_type_path(path, sizeof(path), s, t->id, "name");
		mdev_expect_file(_metadata, path, t->name);
		mdev_type_path(path, sizeof(path), s, t->id, "device_api");
		mdev_expect_file(_metadata, path, s->device_api);
		mdev_type_path(path, sizeof(path), s, t->id,
			       "available_instances");
		snprintf(want, sizeof(want), "%u\n", s->pool / t->cost);
		mdev_expect_file(_metadata, path, want);
		if (t->description) {
			mdev_type_path(path, sizeof(path), s, t->id,
				       "description");
			mdev_expect_file(_metadata, path, t->description);
		} else {
			mdev_type_path(path, sizeof(path), s, t->id,
				       "description");
			ASSERT_EQ(ENOENT, mdev_open_errno(path, O_RDONLY));
		}
	}
}

/*
 * The class attributes of the Rust core (Documentation/ABI/testing/
 * sysfs-class-mdev_bus-class): a type whose driver declares a class shows
 * "class" and that class's attributes, read-only; the Rust mdpy declares the
 * "gpu" class for its types, and so does the Rust mbochs (resolution: the
 * EDID limit, 0x0 for none).  The C core ignores classes, and the C samples
 * (and mtty_rs) declare none: no such file there.
 */
static const struct {
	const char *type, *fb_length, *resolution;
} gpu_types[] = {
	{ "mdpy-vga", "2M\n", "640x480\n" },
	{ "mdpy-xga", "4M\n", "1024x768\n" },
	{ "mdpy-hd", "8M\n", "1920x1080\n" },
	{ "mbochs-small", "4M\n", "800x600\n" },
	{ "mbochs-medium", "16M\n", "1920x1440\n" },
	{ "mbochs-large", "64M\n", "0x0\n" },	/* no EDID limit */
};

TEST_F_TIMEOUT(layout, type_class, MDEV_TIMEOUT)
{
	static const char *const attrs[] = {
		"class", "fb_length", "resolution", "heads",
	};
	const struct mdev_sample_desc *s = self->s;
	bool shown = (!strcmp(s->sample, "mdpy_rs") ||
		      !strcmp(s->sample, "mbochs_rs")) &&
		     mdev_module_loaded("mdev");
	char path[MDEV_PATH_MAX];
	unsigned int i, j, k;

	for (i = 0; i < s->nr_types; i++) {
		const char *type = s->types[i].id;

		if (!shown) {
			for (j = 0; j < ARRAY_SIZE(attrs); j++)
				expect_absent(_metadata,
					      mdev_type_path(path, sizeof(path),
							     s, type,
							     attrs[j]));
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(gpu_types); k++)
			if (!strcmp(gpu_types[k].type, type))
				break;
		ASSERT_LT(k, ARRAY_SIZE(gpu_types)) {
			TH_LOG("no class expectations for %s", type);
		}
		for (j = 0; j < ARRAY_SIZE(attrs); j++)
			expect_mode(_metadata,
				    mdev_type_path(path, sizeof(path), s, type,
						   attrs[j]), 0444);
		mdev_type_path(path, sizeof(path), s, type, "class");
		mdev_expect_file(_metadata, path, "gpu\n");
		mdev_type_path(path, sizeof(path), s, type, "fb_length");
		mdev_expect_file(_metadata, path, gpu_types[k].fb_length);
		mdev_type_path(path, sizeof(path), s, type, "resolution");
		mdev_expect_file(_metadata, path, gpu_types[k].resolution);
		mdev_type_path(path, sizeof(path), s, type, "heads");
		mdev_expect_file(_metadata, path, "1\n");
		/* read-only for root too */
		mdev_type_path(path, sizeof(path), s, type, "heads");
		ASSERT_EQ(EACCES, mdev_open_errno(path, O_WRONLY));
	}
}

/* kernfs refuses opens against the mode even for root */
TEST_F_TIMEOUT(layout, open_eacces, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	static const char * const ro[] = {
		"name", "device_api", "available_instances", "description",
	};
	char path[MDEV_PATH_MAX];
	unsigned int i, j;

	ASSERT_EQ(0, geteuid());
	for (i = 0; i < s->nr_types; i++) {
		const struct mdev_type_desc *t = &s->types[i];

		mdev_type_path(path, sizeof(path), s, t->id, "create");
		EXPECT_EQ(EACCES, mdev_open_errno(path, O_RDONLY)) {
			TH_LOG("open(%s, O_RDONLY)", path);
		}
		EXPECT_EQ(EACCES, mdev_open_errno(path, O_RDWR)) {
			TH_LOG("open(%s, O_RDWR)", path);
		}
		for (j = 0; j < ARRAY_SIZE(ro); j++) {
			if (!strcmp(ro[j], "description") && !t->description)
				continue;
			mdev_type_path(path, sizeof(path), s, t->id, ro[j]);
			EXPECT_EQ(EACCES, mdev_open_errno(path, O_WRONLY)) {
				TH_LOG("open(%s, O_WRONLY)", path);
			}
			EXPECT_EQ(0, mdev_open_errno(path, O_RDONLY)) {
				TH_LOG("open(%s, O_RDONLY)", path);
			}
		}
	}
}

/* an unprivileged user may read the type attributes but not create */
TEST_F_TIMEOUT(layout, open_unprivileged, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char path[MDEV_PATH_MAX];
	unsigned int i;

	for (i = 0; i < s->nr_types; i++) {
		const struct mdev_type_desc *t = &s->types[i];

		mdev_type_path(path, sizeof(path), s, t->id, "create");
		ASSERT_EQ(EACCES, mdev_open_as_nobody(path, O_WRONLY)) {
			TH_LOG("open(%s, O_WRONLY) as uid 65534", path);
		}
		mdev_type_path(path, sizeof(path), s, t->id,
			       "available_instances");
		ASSERT_EQ(0, mdev_open_as_nobody(path, O_RDONLY)) {
			TH_LOG("open(%s, O_RDONLY) as uid 65534", path);
		}
	}
}

/* devices/ is an empty directory while no mdev exists */
TEST_F_TIMEOUT(layout, devices_empty, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char path[MDEV_PATH_MAX], first[256];
	unsigned int i;

	for (i = 0; i < s->nr_types; i++) {
		mdev_type_path(path, sizeof(path), s, s->types[i].id,
			       "devices");
		ASSERT_EQ(0, mdev_count_dir(path, first, sizeof(first))) {
			TH_LOG("%s is not empty or unreadable (first: %s)",
			       path, first);
		}
	}
}

/* the mdev driver on the mdev bus, with bind/unbind */
TEST_F_TIMEOUT(layout, driver_dir, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char path[MDEV_PATH_MAX];

	snprintf(path, sizeof(path), MDEV_BUS_DIR "/drivers/%s", s->driver);
	ASSERT_TRUE(is_dir(path)) {
		TH_LOG("%s is not a directory", path);
	}
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/drivers/%s/bind", s->driver);
	expect_mode(_metadata, path, 0200);
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/drivers/%s/unbind",
		 s->driver);
	expect_mode(_metadata, path, 0200);
}

/* ------------------------------------------------------------------ */

FIXTURE(lifecycle) {
	const struct mdev_sample_desc *s;
	struct mdev_tracker t;
};

FIXTURE_VARIANT(lifecycle) {
	const char *sample;
};

FIXTURE_VARIANT_ADD(lifecycle, mtty) { .sample = "mtty" };
FIXTURE_VARIANT_ADD(lifecycle, mdpy) { .sample = "mdpy" };
FIXTURE_VARIANT_ADD(lifecycle, mbochs) { .sample = "mbochs" };

FIXTURE_SETUP(lifecycle)
{
	self->t.n = 0;
	self->s = mdev_setup_sample(_metadata, variant->sample);
}

FIXTURE_TEARDOWN(lifecycle)
{
	mdev_cleanup(&self->t);
}

/*
 * For every type: create, everything is there when the write returns,
 * remove, everything is gone when that write returns.
 */
TEST_F_TIMEOUT(lifecycle, create_remove, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char uuid[MDEV_UUID_LEN + 1], path[MDEV_PATH_MAX];
	unsigned int i;

	for (i = 0; i < s->nr_types; i++) {
		const struct mdev_type_desc *t = &s->types[i];
		int group = -1, cdev = -1;
		ssize_t ret;

		ASSERT_EQ(0, mdev_uuid_gen(uuid));
		mdev_type_path(path, sizeof(path), s, t->id, "create");
		ret = mdev_write_file(path, uuid, MDEV_UUID_LEN);
		if (ret > 0)
			mdev_track(&self->t, uuid);
		ASSERT_EQ(MDEV_UUID_LEN, ret) {
			TH_LOG("write %s to %s: %s", uuid, path,
			       ret < 0 ? strerror((int)-ret) : "short");
		}
		/* no sleep: all of it must exist now */
		check_device(_metadata, s, t, uuid, &group, &cdev);

		mdev_dev_path(path, sizeof(path), uuid, "remove");
		ret = mdev_write_file(path, "1", 1);
		ASSERT_EQ(1, ret) {
			TH_LOG("write 1 to %s: %s", path,
			       ret < 0 ? strerror((int)-ret) : "short");
		}
		mdev_untrack(&self->t, uuid);

		expect_no_device(_metadata, s, uuid);
		mdev_type_path(path, sizeof(path), s, t->id, "devices");
		snprintf(path + strlen(path), sizeof(path) - strlen(path),
			 "/%s", uuid);
		expect_absent(_metadata, path);
		snprintf(path, sizeof(path), "/dev/vfio/%d", group);
		ASSERT_TRUE(mdev_wait_exists(path, false, 5000)) {
			TH_LOG("%s still exists", path);
		}
		snprintf(path, sizeof(path), "/dev/vfio/devices/vfio%d", cdev);
		ASSERT_TRUE(mdev_wait_exists(path, false, 5000)) {
			TH_LOG("%s still exists", path);
		}
		mdev_expect_avail_all(_metadata, s, 0);
	}
}

/* devices/ of the type lists the device, and only that type's does */
TEST_F_TIMEOUT(lifecycle, type_devices_dir, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char uuid[MDEV_UUID_LEN + 1], path[MDEV_PATH_MAX], first[256];
	unsigned int i;

	mdev_new(_metadata, &self->t, s, s->types[0].id, uuid);
	for (i = 0; i < s->nr_types; i++) {
		int n;

		mdev_type_path(path, sizeof(path), s, s->types[i].id,
			       "devices");
		n = mdev_count_dir(path, first, sizeof(first));
		ASSERT_EQ(i == 0 ? 1 : 0, n) {
			TH_LOG("entries in %s", path);
		}
	}
	mdev_type_path(path, sizeof(path), s, s->types[0].id, "devices");
	ASSERT_EQ(1, mdev_count_dir(path, first, sizeof(first)));
	ASSERT_STREQ(uuid, first);
	mdev_del(_metadata, &self->t, uuid);
	mdev_type_path(path, sizeof(path), s, s->types[0].id, "devices");
	ASSERT_EQ(0, mdev_count_dir(path, NULL, 0));
}

/* available_instances follows create/remove across all types */
TEST_F_TIMEOUT(lifecycle, accounting, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	const struct mdev_type_desc *big = &s->types[s->nr_types - 1];
	const struct mdev_type_desc *small = &s->types[0];
	char u1[MDEV_UUID_LEN + 1], u2[MDEV_UUID_LEN + 1];
	unsigned int used = 0;

	mdev_expect_avail_all(_metadata, s, used);

	mdev_new(_metadata, &self->t, s, big->id, u1);
	used += big->cost;
	mdev_expect_avail_all(_metadata, s, used);

	mdev_new(_metadata, &self->t, s, small->id, u2);
	used += small->cost;
	mdev_expect_avail_all(_metadata, s, used);

	mdev_del(_metadata, &self->t, u1);
	used -= big->cost;
	mdev_expect_avail_all(_metadata, s, used);

	mdev_del(_metadata, &self->t, u2);
	used -= small->cost;
	mdev_expect_avail_all(_metadata, s, used);
}

/*
 * Fill the pool with the biggest type; every further create fails with the
 * sample's errno and leaves nothing behind; a freed slot is usable again,
 * even with a UUID whose create failed.
 */
TEST_F_TIMEOUT(lifecycle, exhaustion, MDEV_LONG_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	const struct mdev_type_desc *big = &s->types[s->nr_types - 1];
	const struct mdev_type_desc *small = &s->types[0];
	char uuids[MDEV_MAX_TRACKED][MDEV_UUID_LEN + 1];
	char failed[MDEV_MAX_TYPES][MDEV_UUID_LEN + 1];
	char uuid[MDEV_UUID_LEN + 1], path[MDEV_PATH_MAX];
	unsigned int used = 0, n = 0, i;

	while (used + big->cost <= s->pool) {
		ASSERT_LT(n, MDEV_MAX_TRACKED - 4);
		mdev_new(_metadata, &self->t, s, big->id, uuids[n++]);
		used += big->cost;
	}
	mdev_expect_avail_all(_metadata, s, used);

	for (i = 0; i < s->nr_types; i++) {
		const struct mdev_type_desc *t = &s->types[i];
		int ret;

		ASSERT_EQ(0, mdev_uuid_gen(failed[i]));
		if (t->cost <= s->pool - used)
			continue;
		ret = mdev_create(s, t->id, failed[i]);
		if (!ret)
			mdev_track(&self->t, failed[i]);
		ASSERT_EQ(-s->exhausted_errno, ret) {
			TH_LOG("%s create with %u of %u units used: %s",
			       t->id, used, s->pool, strerror(-ret));
		}
		expect_no_device(_metadata, s, failed[i]);
		mdev_type_path(path, sizeof(path), s, t->id, "devices");
		ASSERT_EQ(t == big ? (int)n : 0, mdev_count_dir(path, NULL, 0));
	}
	mdev_expect_avail_all(_metadata, s, used);

	/* free one big instance, take one small one */
	mdev_del(_metadata, &self->t, uuids[--n]);
	used -= big->cost;
	mdev_expect_avail_all(_metadata, s, used);

	/* the UUID of a failed create is free again */
	snprintf(uuid, sizeof(uuid), "%s", failed[0]);
	ASSERT_EQ(0, mdev_create(s, small->id, uuid));
	mdev_track(&self->t, uuid);
	used += small->cost;
	mdev_expect_avail_all(_metadata, s, used);

	for (i = 0; i < s->nr_types; i++) {
		const struct mdev_type_desc *t = &s->types[i];
		char u[MDEV_UUID_LEN + 1];
		int ret;

		if (t->cost <= s->pool - used)
			continue;
		ASSERT_EQ(0, mdev_uuid_gen(u));
		ret = mdev_create(s, t->id, u);
		if (!ret)
			mdev_track(&self->t, u);
		ASSERT_EQ(-s->exhausted_errno, ret) {
			TH_LOG("%s create with %u of %u units used: %s",
			       t->id, used, s->pool, strerror(-ret));
		}
		expect_no_device(_metadata, s, u);
	}

	ASSERT_EQ(0, mdev_cleanup(&self->t));
	mdev_expect_avail_all(_metadata, s, 0);
}

/* ------------------------------------------------------------------ */

FIXTURE(create_errno) {
	const struct mdev_sample_desc *s;
	const struct mdev_type_desc *t;
	struct mdev_tracker tr;
	char uuid[MDEV_UUID_LEN + 1];
	char create[MDEV_PATH_MAX];
};

FIXTURE_VARIANT(create_errno) {
	const char *sample;
};

FIXTURE_VARIANT_ADD(create_errno, mtty) { .sample = "mtty" };
FIXTURE_VARIANT_ADD(create_errno, mdpy) { .sample = "mdpy" };
FIXTURE_VARIANT_ADD(create_errno, mbochs) { .sample = "mbochs" };

FIXTURE_SETUP(create_errno)
{
	self->tr.n = 0;
	self->s = mdev_setup_sample(_metadata, variant->sample);
	if (!self->s)
		return;
	self->t = &self->s->types[0];
	ASSERT_EQ(0, mdev_uuid_gen(self->uuid));
	mdev_type_path(self->create, sizeof(self->create), self->s,
		       self->t->id, "create");
}

FIXTURE_TEARDOWN(create_errno)
{
	mdev_cleanup(&self->tr);
}

/* write buf to create; track whatever UUID the kernel may have created */
static ssize_t create_raw(FIXTURE_DATA(create_errno) *self, const char *buf,
			  size_t len)
{
	ssize_t ret;

	mdev_track(&self->tr, self->uuid);
	ret = mdev_write_file(self->create, buf, len);
	return ret;
}

static void expect_create(struct __test_metadata *_metadata,
			  FIXTURE_DATA(create_errno) *self, const char *buf,
			  size_t len, ssize_t want, const char *row)
{
	ssize_t ret = create_raw(self, buf, len);

	ASSERT_EQ(want, ret) {
		TH_LOG("row \"%s\": write of %zu bytes to %s returned %zd (%s)",
		       row, len, self->create, ret,
		       ret < 0 ? strerror((int)-ret) : "count");
	}
	if (want > 0) {
		check_device(_metadata, self->s, self->t, self->uuid, NULL,
			     NULL);
	} else {
		char path[MDEV_PATH_MAX];

		expect_no_device(_metadata, self->s, self->uuid);
		mdev_type_path(path, sizeof(path), self->s, self->t->id,
			       "devices");
		ASSERT_EQ(0, mdev_count_dir(path, NULL, 0));
	}
}

TEST_F_TIMEOUT(create_errno, len35_einval, MDEV_TIMEOUT)
{
	expect_create(_metadata, self, self->uuid, 35, -EINVAL, "35 bytes");
}

TEST_F_TIMEOUT(create_errno, len36_ok, MDEV_TIMEOUT)
{
	expect_create(_metadata, self, self->uuid, 36, 36, "36 bytes");
}

TEST_F_TIMEOUT(create_errno, len37_newline_ok, MDEV_TIMEOUT)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%s\n", self->uuid);
	expect_create(_metadata, self, buf, 37, 37, "uuid + \\n");
}

/* the 37th byte is not looked at */
TEST_F_TIMEOUT(create_errno, len37_any_byte_ok, MDEV_TIMEOUT)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%sx", self->uuid);
	expect_create(_metadata, self, buf, 37, 37, "uuid + x");
}

TEST_F_TIMEOUT(create_errno, len37_nul_ok, MDEV_TIMEOUT)
{
	char buf[64];

	memcpy(buf, self->uuid, 36);
	buf[36] = '\0';
	expect_create(_metadata, self, buf, 37, 37, "uuid + NUL");
}

TEST_F_TIMEOUT(create_errno, len38_einval, MDEV_TIMEOUT)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%s\n\n", self->uuid);
	expect_create(_metadata, self, buf, 38, -EINVAL, "uuid + \\n\\n");
}

TEST_F_TIMEOUT(create_errno, long_einval, MDEV_TIMEOUT)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "%s %s", self->uuid, self->uuid);
	expect_create(_metadata, self, buf, strlen(buf), -EINVAL,
		      "two uuids");
}

TEST_F_TIMEOUT(create_errno, empty_write, MDEV_TIMEOUT)
{
	expect_create(_metadata, self, self->uuid, 0, 0, "0 bytes");
}

TEST_F_TIMEOUT(create_errno, bad_hex_first_einval, MDEV_TIMEOUT)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%s", self->uuid);
	buf[0] = 'g';
	expect_create(_metadata, self, buf, 36, -EINVAL, "g at 0");
}

TEST_F_TIMEOUT(create_errno, bad_hex_last_einval, MDEV_TIMEOUT)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%s\n", self->uuid);
	buf[35] = 'z';
	expect_create(_metadata, self, buf, 37, -EINVAL, "z at 35");
}

TEST_F_TIMEOUT(create_errno, dash_misplaced_einval, MDEV_TIMEOUT)
{
	char buf[64];

	/* move the first '-' from index 8 to 9 */
	snprintf(buf, sizeof(buf), "%s", self->uuid);
	buf[8] = buf[9];
	buf[9] = '-';
	expect_create(_metadata, self, buf, 36, -EINVAL, "dash at 9");
}

TEST_F_TIMEOUT(create_errno, dash_replaced_einval, MDEV_TIMEOUT)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%s", self->uuid);
	buf[23] = 'a';
	expect_create(_metadata, self, buf, 36, -EINVAL, "no dash at 23");
}

TEST_F_TIMEOUT(create_errno, leading_space_einval, MDEV_TIMEOUT)
{
	char buf[64];

	snprintf(buf, sizeof(buf), " %s", self->uuid);
	expect_create(_metadata, self, buf, 37, -EINVAL, "space + uuid");
}

/* upper case hex is accepted, the device is named in lower case */
TEST_F_TIMEOUT(create_errno, upper_case_ok, MDEV_TIMEOUT)
{
	char upper[MDEV_UUID_LEN + 1], path[MDEV_PATH_MAX];

	mdev_str_upper(upper, self->uuid, sizeof(upper));
	ASSERT_STRNE(upper, self->uuid);
	expect_create(_metadata, self, upper, 36, 36, "upper case");
	expect_absent(_metadata, mdev_dev_path(path, sizeof(path), upper,
					       NULL));
}

TEST_F_TIMEOUT(create_errno, duplicate_eexist, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	unsigned int before, i;
	ssize_t ret;

	expect_create(_metadata, self, self->uuid, 36, 36, "first");
	before = mdev_avail(_metadata, s, self->t->id);
	for (i = 0; i < s->nr_types; i++) {
		char path[MDEV_PATH_MAX];

		mdev_type_path(path, sizeof(path), s, s->types[i].id, "create");
		ret = mdev_write_file(path, self->uuid, 36);
		ASSERT_EQ(-EEXIST, ret) {
			TH_LOG("same uuid again on %s: %zd", s->types[i].id,
			       ret);
		}
	}
	/* the rejected create took nothing from the pool */
	ASSERT_EQ(before, mdev_avail(_metadata, s, self->t->id));
	check_device(_metadata, s, self->t, self->uuid, NULL, NULL);
}

TEST_F_TIMEOUT(create_errno, duplicate_upper_case_eexist, MDEV_TIMEOUT)
{
	char upper[MDEV_UUID_LEN + 1];
	ssize_t ret;

	expect_create(_metadata, self, self->uuid, 36, 36, "first");
	mdev_str_upper(upper, self->uuid, sizeof(upper));
	ret = mdev_write_file(self->create, upper, 36);
	ASSERT_EQ(-EEXIST, ret);
	ret = mdev_write_file(self->create, self->uuid, 36);
	ASSERT_EQ(-EEXIST, ret);
}

/* UUIDs are unique across all parents */
TEST_F_TIMEOUT(create_errno, duplicate_other_parent_eexist, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *o = mdev_other_sample(self->s);
	char path[MDEV_PATH_MAX];
	ssize_t ret;

	if (!o)
		SKIP(return, "needs a second sample parent in MDEV_SAMPLES");
	expect_create(_metadata, self, self->uuid, 36, 36, "first");
	mdev_type_path(path, sizeof(path), o, o->types[0].id, "create");
	ret = mdev_write_file(path, self->uuid, 36);
	if (ret > 0)
		mdev_track(&self->tr, self->uuid);
	ASSERT_EQ(-EEXIST, ret) {
		TH_LOG("same uuid on parent %s: %zd", o->parent, ret);
	}
	mdev_type_path(path, sizeof(path), o, o->types[0].id, "devices");
	ASSERT_EQ(0, mdev_count_dir(path, NULL, 0));
}

/* ------------------------------------------------------------------ */

FIXTURE(remove_errno) {
	const struct mdev_sample_desc *s;
	struct mdev_tracker tr;
	char uuid[MDEV_UUID_LEN + 1];
	char remove[MDEV_PATH_MAX];
};

FIXTURE_VARIANT(remove_errno) {
	const char *sample;
};

FIXTURE_VARIANT_ADD(remove_errno, mtty) { .sample = "mtty" };
FIXTURE_VARIANT_ADD(remove_errno, mdpy) { .sample = "mdpy" };
FIXTURE_VARIANT_ADD(remove_errno, mbochs) { .sample = "mbochs" };

FIXTURE_SETUP(remove_errno)
{
	self->tr.n = 0;
	self->uuid[0] = '\0';
	self->s = mdev_setup_sample(_metadata, variant->sample);
}

FIXTURE_TEARDOWN(remove_errno)
{
	mdev_cleanup(&self->tr);
}

static void remove_setup(struct __test_metadata *_metadata,
			 FIXTURE_DATA(remove_errno) *self)
{
	mdev_new(_metadata, &self->tr, self->s, self->s->types[0].id,
		 self->uuid);
	mdev_dev_path(self->remove, sizeof(self->remove), self->uuid, "remove");
}

static void expect_remove(struct __test_metadata *_metadata,
			  FIXTURE_DATA(remove_errno) *self, const char *buf,
			  size_t len, ssize_t want, bool gone)
{
	ssize_t ret;

	remove_setup(_metadata, self);
	ret = mdev_write_file(self->remove, buf, len);
	ASSERT_EQ(want, ret) {
		TH_LOG("row \"%.*s\" (%zu bytes): %zd (%s)", (int)len, buf,
		       len, ret, ret < 0 ? strerror((int)-ret) : "count");
	}
	ASSERT_EQ(!gone, mdev_dev_present(self->s, self->uuid)) {
		TH_LOG("row \"%.*s\": device should be %s", (int)len, buf,
		       gone ? "gone" : "present");
	}
	if (gone) {
		expect_no_device(_metadata, self->s, self->uuid);
		mdev_untrack(&self->tr, self->uuid);
		mdev_expect_avail_all(_metadata, self->s, 0);
	} else {
		check_device(_metadata, self->s, &self->s->types[0],
			     self->uuid, NULL, NULL);
	}
}

TEST_F_TIMEOUT(remove_errno, zero_noop, MDEV_TIMEOUT)
{
	expect_remove(_metadata, self, "0", 1, 1, false);
}

TEST_F_TIMEOUT(remove_errno, zero_newline_noop, MDEV_TIMEOUT)
{
	expect_remove(_metadata, self, "0\n", 2, 2, false);
}

TEST_F_TIMEOUT(remove_errno, zero_hex_noop, MDEV_TIMEOUT)
{
	expect_remove(_metadata, self, "0x0", 3, 3, false);
}

TEST_F_TIMEOUT(remove_errno, empty_noop, MDEV_TIMEOUT)
{
	expect_remove(_metadata, self, "", 0, 0, false);
}

TEST_F_TIMEOUT(remove_errno, garbage_einval, MDEV_TIMEOUT)
{
	expect_remove(_metadata, self, "garbage", 7, -EINVAL, false);
}

TEST_F_TIMEOUT(remove_errno, negative_einval, MDEV_TIMEOUT)
{
	expect_remove(_metadata, self, "-1", 2, -EINVAL, false);
}

TEST_F_TIMEOUT(remove_errno, trailing_junk_einval, MDEV_TIMEOUT)
{
	expect_remove(_metadata, self, "1x", 2, -EINVAL, false);
}

TEST_F_TIMEOUT(remove_errno, one_removes, MDEV_TIMEOUT)
{
	expect_remove(_metadata, self, "1", 1, 1, true);
}

TEST_F_TIMEOUT(remove_errno, one_newline_removes, MDEV_TIMEOUT)
{
	expect_remove(_metadata, self, "1\n", 2, 2, true);
}

/* kstrtoul(buf, 0): "0x1" is a number */
TEST_F_TIMEOUT(remove_errno, hex_one_removes, MDEV_TIMEOUT)
{
	expect_remove(_metadata, self, "0x1", 3, 3, true);
}

/* any non-zero value removes */
TEST_F_TIMEOUT(remove_errno, two_removes, MDEV_TIMEOUT)
{
	expect_remove(_metadata, self, "2", 1, 1, true);
}

/* the remove file goes away with the device: the second open is ENOENT */
TEST_F_TIMEOUT(remove_errno, double_remove_enoent, MDEV_TIMEOUT)
{
	expect_remove(_metadata, self, "1", 1, 1, true);
	ASSERT_EQ(ENOENT, mdev_open_errno(self->remove, O_WRONLY));
	ASSERT_EQ(-ENOENT, mdev_remove(self->uuid));
}

/*
 * A remove file opened before the removal: writes on it fail with ENODEV
 * afterwards (kernfs deactivated the node), also on the writer's own fd.
 */
TEST_F_TIMEOUT(remove_errno, stale_fd_enodev, MDEV_TIMEOUT)
{
	int fd1, fd2;
	ssize_t ret;

	remove_setup(_metadata, self);
	fd1 = open(self->remove, O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, fd1);
	fd2 = open(self->remove, O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ret = write(fd1, "1", 1);
	ASSERT_EQ(1, ret) {
		TH_LOG("first write: %s", strerror(errno));
	}
	mdev_untrack(&self->tr, self->uuid);
	ASSERT_FALSE(mdev_dev_present(self->s, self->uuid));
	ret = write(fd2, "1", 1);
	ASSERT_EQ(-1, ret);
	ASSERT_EQ(ENODEV, errno);
	ret = write(fd1, "1", 1);
	ASSERT_EQ(-1, ret);
	ASSERT_EQ(ENODEV, errno);
	close(fd1);
	close(fd2);
}

TEST_F_TIMEOUT(remove_errno, remove_modes, MDEV_TIMEOUT)
{
	remove_setup(_metadata, self);
	ASSERT_EQ(EACCES, mdev_open_errno(self->remove, O_RDONLY));
	ASSERT_EQ(EACCES, mdev_open_as_nobody(self->remove, O_WRONLY));
	ASSERT_TRUE(mdev_dev_present(self->s, self->uuid));
}

/* the mdev bus never matches: bind is ENODEV, bound or not */
TEST_F_TIMEOUT(remove_errno, bind_enodev, MDEV_TIMEOUT)
{
	char path[MDEV_PATH_MAX], drv[MDEV_PATH_MAX];
	ssize_t ret;

	remove_setup(_metadata, self);
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/drivers/%s/bind",
		 self->s->driver);
	ret = mdev_write_str(path, self->uuid);
	ASSERT_EQ(-ENODEV, ret);
	ret = mdev_write_str(path, "00000000-0000-0000-0000-000000000000");
	ASSERT_EQ(-ENODEV, ret);
	mdev_dev_path(drv, sizeof(drv), self->uuid, "driver");
	ASSERT_TRUE(mdev_exists(drv));
}

/*
 * unbind detaches the vendor driver; the device stays on the bus, cannot be
 * bound again (ENODEV) and is still removable.
 */
TEST_F_TIMEOUT(remove_errno, unbind_then_remove, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char path[MDEV_PATH_MAX];
	ssize_t ret;

	remove_setup(_metadata, self);
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/drivers/%s/unbind",
		 s->driver);
	ret = mdev_write_str(path, self->uuid);
	ASSERT_EQ(MDEV_UUID_LEN, ret) {
		TH_LOG("unbind: %s", ret < 0 ? strerror((int)-ret) : "count");
	}
	expect_absent(_metadata, mdev_dev_path(path, sizeof(path), self->uuid,
					       "driver"));
	expect_absent(_metadata, mdev_dev_path(path, sizeof(path), self->uuid,
					       s->types[0].vendor_attr));
	ASSERT_TRUE(mdev_exists(mdev_dev_path(path, sizeof(path), self->uuid,
					      "mdev_type")));
	ASSERT_TRUE(mdev_exists(mdev_dev_path(path, sizeof(path), self->uuid,
					      "remove")));

	snprintf(path, sizeof(path), MDEV_BUS_DIR "/drivers/%s/bind",
		 s->driver);
	ASSERT_EQ(-ENODEV, mdev_write_str(path, self->uuid));

	ASSERT_EQ(0, mdev_remove(self->uuid));
	mdev_untrack(&self->tr, self->uuid);
	expect_no_device(_metadata, s, self->uuid);
	mdev_expect_avail_all(_metadata, s, 0);
}

TEST_HARNESS_MAIN
