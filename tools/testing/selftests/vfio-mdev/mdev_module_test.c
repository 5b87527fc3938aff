// SPDX-License-Identifier: GPL-2.0
/*
 * mdev uevents and module unload behaviour:
 *  - MDEV_STATE=unregistered/registered change events of the parent
 *    (mdev_unregister_parent()/mdev_register_parent()),
 *  - add/bind and unbind/remove events of mdev devices (SUBSYSTEM=mdev),
 *  - unloading a sample removes its live mdevs,
 *  - a remove write blocks while the VFIO device is open and completes
 *    once it is closed,
 *  - the sample module cannot be unloaded while a device is open.
 *
 * Tests unload and reload the sample modules with modprobe and leave them
 * loaded with no mdevs, as they found them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "mdev_harness.h"

#define UEVENT_TIMEOUT_MS	20000
#define BLOCK_CHECK_MS		2000
#define UNBLOCK_TIMEOUT_MS	30000

FIXTURE(module) {
	const struct mdev_sample_desc *s;
	struct mdev_tracker t;
	struct mdev_vfio v;
	int uevent_fd;
	pid_t child;
};

FIXTURE_VARIANT(module) {
	const char *sample;
};

FIXTURE_VARIANT_ADD(module, mtty) { .sample = "mtty" };
FIXTURE_VARIANT_ADD(module, mdpy) { .sample = "mdpy" };
FIXTURE_VARIANT_ADD(module, mbochs) { .sample = "mbochs" };

FIXTURE_SETUP(module)
{
	self->t.n = 0;
	self->uevent_fd = -1;
	self->child = -1;
	mdev_vfio_init(&self->v);
	self->s = mdev_setup_sample(_metadata, variant->sample);
	if (!self->s)
		return;
	ASSERT_TRUE(mdev_module_loaded(self->s->module)) {
		TH_LOG("module %s is not loaded", self->s->module);
	}
}

FIXTURE_TEARDOWN(module)
{
	const struct mdev_sample_desc *s = self->s;

	/* first drop VFIO so that no remove can block */
	mdev_vfio_close(&self->v);
	if (self->child > 0) {
		int status;

		if (mdev_wait_child(self->child, UNBLOCK_TIMEOUT_MS, &status)) {
			kill(self->child, SIGKILL);
			waitpid(self->child, &status, 0);
		}
	}
	if (self->uevent_fd >= 0)
		close(self->uevent_fd);
	if (!s)
		return;
	if (mdev_module_loaded(s->module))
		mdev_cleanup(&self->t);
	if (!mdev_module_loaded(s->module)) {
		int ret = mdev_modprobe(s->module, false);

		if (ret)
			fprintf(stderr, "# teardown: modprobe %s: %d\n",
				s->module, ret);
	}
}

static void listen_uevents(struct __test_metadata *_metadata,
			   FIXTURE_DATA(module) *self)
{
	self->uevent_fd = mdev_uevent_open();
	ASSERT_LE(0, self->uevent_fd) {
		TH_LOG("NETLINK_KOBJECT_UEVENT: %s",
		       strerror(-self->uevent_fd));
	}
}

/* wait for action@devpath; returns its SEQNUM */
static unsigned long long expect_uevent(struct __test_metadata *_metadata,
					int fd, const char *action,
					const char *devpath,
					struct mdev_uevent *ev)
{
	const char *v;
	int ret;

	ret = mdev_uevent_wait(fd, action, devpath, ev, UEVENT_TIMEOUT_MS);
	ASSERT_EQ(0, ret) {
		TH_LOG("no %s@%s uevent: %s", action, devpath, strerror(-ret));
	}
	v = mdev_uevent_get(ev, "ACTION");
	ASSERT_TRUE(v && !strcmp(v, action));
	v = mdev_uevent_get(ev, "DEVPATH");
	ASSERT_TRUE(v && !strcmp(v, devpath));
	v = mdev_uevent_get(ev, "SEQNUM");
	ASSERT_TRUE(v != NULL);
	return strtoull(v, NULL, 10);
}

static void expect_env(struct __test_metadata *_metadata,
		       const struct mdev_uevent *ev, const char *key,
		       const char *want)
{
	const char *v = mdev_uevent_get(ev, key);

	if (!want) {
		ASSERT_TRUE(v == NULL) {
			TH_LOG("%s@%s has %s=%s", ev->action, ev->devpath, key,
			       v);
		}
		return;
	}
	ASSERT_TRUE(v != NULL) {
		TH_LOG("%s@%s has no %s", ev->action, ev->devpath, key);
	}
	ASSERT_STREQ(want, v) {
		TH_LOG("%s of %s@%s", key, ev->action, ev->devpath);
	}
}

static void mdev_devpath(char *dst, size_t size,
			 const struct mdev_sample_desc *s, const char *uuid)
{
	snprintf(dst, size, "%s/%s", s->parent_devpath, uuid);
}

static void unload(struct __test_metadata *_metadata,
		   const struct mdev_sample_desc *s)
{
	int ret = mdev_modprobe(s->module, true);

	ASSERT_EQ(0, ret) {
		TH_LOG("modprobe -r %s", s->module);
	}
	ASSERT_FALSE(mdev_module_loaded(s->module));
}

static void load(struct __test_metadata *_metadata,
		 const struct mdev_sample_desc *s)
{
	int ret = mdev_modprobe(s->module, false);

	ASSERT_EQ(0, ret) {
		TH_LOG("modprobe %s", s->module);
	}
	ASSERT_TRUE(mdev_module_loaded(s->module));
}

/* after a (re)load: parent registered, full pool, no devices */
static void expect_fresh_parent(struct __test_metadata *_metadata,
				const struct mdev_sample_desc *s)
{
	char path[MDEV_PATH_MAX];
	unsigned int i;

	mdev_parent_path(path, sizeof(path), s, "mdev_supported_types");
	ASSERT_TRUE(mdev_exists(path)) {
		TH_LOG("%s missing after modprobe %s", path, s->module);
	}
	for (i = 0; i < s->nr_types; i++) {
		mdev_type_path(path, sizeof(path), s, s->types[i].id,
			       "devices");
		ASSERT_EQ(0, mdev_count_dir(path, NULL, 0));
	}
	mdev_expect_avail_all(_metadata, s, 0);
}

/*
 * create: add@ (SUBSYSTEM=mdev, no driver yet), then bind@ (DRIVER=);
 * remove: unbind@, then remove@.
 */
TEST_F_TIMEOUT(module, uevent_create_remove, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char uuid[MDEV_UUID_LEN + 1], devpath[MDEV_PATH_MAX];
	unsigned long long add, bind, unbind, remove;
	struct mdev_uevent ev;

	listen_uevents(_metadata, self);
	mdev_new(_metadata, &self->t, s, s->types[0].id, uuid);
	mdev_devpath(devpath, sizeof(devpath), s, uuid);

	add = expect_uevent(_metadata, self->uevent_fd, "add", devpath, &ev);
	expect_env(_metadata, &ev, "SUBSYSTEM", "mdev");
	expect_env(_metadata, &ev, "DRIVER", NULL);
	expect_env(_metadata, &ev, "MODALIAS", NULL);
	bind = expect_uevent(_metadata, self->uevent_fd, "bind", devpath, &ev);
	expect_env(_metadata, &ev, "SUBSYSTEM", "mdev");
	expect_env(_metadata, &ev, "DRIVER", s->driver);
	ASSERT_LT(add, bind);

	mdev_del(_metadata, &self->t, uuid);
	unbind = expect_uevent(_metadata, self->uevent_fd, "unbind", devpath,
			       &ev);
	expect_env(_metadata, &ev, "SUBSYSTEM", "mdev");
	remove = expect_uevent(_metadata, self->uevent_fd, "remove", devpath,
			       &ev);
	expect_env(_metadata, &ev, "SUBSYSTEM", "mdev");
	expect_env(_metadata, &ev, "DRIVER", NULL);
	ASSERT_LT(bind, unbind);
	ASSERT_LT(unbind, remove);
}

/*
 * modprobe -r: change@<parent> MDEV_STATE=unregistered after the parent's
 * mdevs are gone and before the parent device itself is removed;
 * modprobe: add@<parent>, then change@<parent> MDEV_STATE=registered.
 */
TEST_F_TIMEOUT(module, uevent_unregister_register, MDEV_LONG_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char uuid[MDEV_UUID_LEN + 1], devpath[MDEV_PATH_MAX];
	char path[MDEV_PATH_MAX], want[MDEV_PATH_MAX];
	unsigned long long rm_mdev, change, rm_parent, add_parent;
	struct mdev_uevent ev;
	int ret;

	/* the parent's DEVPATH is where the class link points */
	mdev_parent_path(path, sizeof(path), s, NULL);
	snprintf(want, sizeof(want), "/sys%s", s->parent_devpath);
	ASSERT_EQ(0, mdev_realpath(path, devpath, sizeof(devpath)));
	ASSERT_STREQ(want, devpath);

	mdev_new(_metadata, &self->t, s, s->types[0].id, uuid);
	listen_uevents(_metadata, self);
	unload(_metadata, s);

	mdev_devpath(devpath, sizeof(devpath), s, uuid);
	rm_mdev = expect_uevent(_metadata, self->uevent_fd, "remove", devpath,
				&ev);
	change = expect_uevent(_metadata, self->uevent_fd, "change",
			       s->parent_devpath, &ev);
	expect_env(_metadata, &ev, "MDEV_STATE", "unregistered");
	expect_env(_metadata, &ev, "SUBSYSTEM", s->parent_subsystem);
	rm_parent = expect_uevent(_metadata, self->uevent_fd, "remove",
				  s->parent_devpath, &ev);
	ASSERT_LT(rm_mdev, change);
	ASSERT_LT(change, rm_parent);

	mdev_parent_path(path, sizeof(path), s, NULL);
	ret = mdev_lstat_errno(path);
	ASSERT_EQ(ENOENT, ret) {
		TH_LOG("%s after modprobe -r", path);
	}
	ASSERT_FALSE(mdev_exists(mdev_dev_path(path, sizeof(path), uuid,
					       NULL)));
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/drivers/%s", s->driver);
	ASSERT_FALSE(mdev_exists(path));
	mdev_untrack(&self->t, uuid);

	load(_metadata, s);
	add_parent = expect_uevent(_metadata, self->uevent_fd, "add",
				   s->parent_devpath, &ev);
	expect_env(_metadata, &ev, "MDEV_STATE", NULL);
	change = expect_uevent(_metadata, self->uevent_fd, "change",
			       s->parent_devpath, &ev);
	expect_env(_metadata, &ev, "MDEV_STATE", "registered");
	expect_env(_metadata, &ev, "SUBSYSTEM", s->parent_subsystem);
	ASSERT_LT(add_parent, change);

	expect_fresh_parent(_metadata, s);
}

/* unloading a sample removes its live mdevs; reloading starts empty */
TEST_F_TIMEOUT(module, unload_with_live_mdevs, MDEV_LONG_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	char u1[MDEV_UUID_LEN + 1], u2[MDEV_UUID_LEN + 1];
	char path[MDEV_PATH_MAX];

	mdev_new(_metadata, &self->t, s, s->types[0].id, u1);
	mdev_new(_metadata, &self->t, s, s->types[s->nr_types - 1].id, u2);
	ASSERT_EQ(0, mdev_module_refcnt(s->module));

	unload(_metadata, s);
	ASSERT_FALSE(mdev_exists(mdev_dev_path(path, sizeof(path), u1, NULL)));
	ASSERT_FALSE(mdev_exists(mdev_dev_path(path, sizeof(path), u2, NULL)));
	ASSERT_FALSE(mdev_exists(mdev_dev_realdir(path, sizeof(path), s, u1)));
	ASSERT_FALSE(mdev_exists(mdev_dev_realdir(path, sizeof(path), s, u2)));
	ASSERT_FALSE(mdev_exists(mdev_parent_path(path, sizeof(path), s,
						  NULL)));
	mdev_untrack(&self->t, u1);
	mdev_untrack(&self->t, u2);

	load(_metadata, s);
	expect_fresh_parent(_metadata, s);
	/* the old UUIDs are free */
	ASSERT_EQ(0, mdev_create(s, s->types[0].id, u1));
	mdev_track(&self->t, u1);
	mdev_del(_metadata, &self->t, u1);
}

/*
 * A remove write blocks while the VFIO device is open (group or cdev path)
 * and returns the byte count once the last fd is closed.  While it waits,
 * the device directory under the parent still exists; the bus link and
 * mdev_type link are already gone (device_del() removes them before the
 * driver's remove callback waits), and the open fd still works.
 */
static void remove_blocks(struct __test_metadata *_metadata,
			  FIXTURE_DATA(module) *self,
			  enum mdev_vfio_path how)
{
	const struct mdev_sample_desc *s = self->s;
	char uuid[MDEV_UUID_LEN + 1], path[MDEV_PATH_MAX];
	struct vfio_device_info info;
	long long start;
	int status = 0, ret;

	mdev_new(_metadata, &self->t, s, s->types[0].id, uuid);
	mdev_vfio_open(_metadata, &self->v, uuid, how);
	mdev_vfio_info(_metadata, self->v.device, &info);

	mdev_dev_path(path, sizeof(path), uuid, "remove");
	self->child = mdev_fork_writer(path, "1");
	ASSERT_LT(0, self->child);

	start = mdev_now_ms();
	while (mdev_now_ms() - start < BLOCK_CHECK_MS) {
		ret = waitpid(self->child, &status, WNOHANG);
		if (ret == self->child)
			self->child = -1;
		ASSERT_EQ(0, ret) {
			TH_LOG("remove writer finished while the device is open (status 0x%x)",
			       status);
		}
		mdev_msleep(50);
	}
	ASSERT_TRUE(mdev_dev_present(s, uuid)) {
		TH_LOG("device directory gone while the remove blocks");
	}
	ASSERT_FALSE(mdev_exists(mdev_dev_path(path, sizeof(path), uuid,
					       NULL)));
	mdev_dev_realdir(path, sizeof(path), s, uuid);
	strncat(path, "/mdev_type", sizeof(path) - strlen(path) - 1);
	ASSERT_FALSE(mdev_exists(path));
	mdev_vfio_info(_metadata, self->v.device, &info);
	ASSERT_EQ(s->num_regions, info.num_regions);

	mdev_vfio_close(&self->v);
	ret = mdev_wait_child(self->child, UNBLOCK_TIMEOUT_MS, &status);
	ASSERT_EQ(0, ret) {
		TH_LOG("remove still blocked %d ms after close",
		       UNBLOCK_TIMEOUT_MS);
	}
	self->child = -1;
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status)) {
		TH_LOG("remove writer: write() did not return 1 (errno %d)",
		       WEXITSTATUS(status));
	}
	mdev_untrack(&self->t, uuid);
	ASSERT_FALSE(mdev_dev_present(s, uuid));
	mdev_expect_avail_all(_metadata, s, 0);
}

TEST_F_TIMEOUT(module, remove_blocks_while_open_group, MDEV_TIMEOUT)
{
	remove_blocks(_metadata, self, MDEV_VFIO_GROUP);
}

TEST_F_TIMEOUT(module, remove_blocks_while_open_cdev, MDEV_TIMEOUT)
{
	remove_blocks(_metadata, self, MDEV_VFIO_CDEV);
}

/*
 * An open VFIO device holds a reference on the vendor module: delete_module
 * fails with EWOULDBLOCK (EAGAIN), modprobe -r fails, the module and the
 * device stay usable; after close the reference is gone.
 */
static void module_busy(struct __test_metadata *_metadata,
			FIXTURE_DATA(module) *self, enum mdev_vfio_path how)
{
	const struct mdev_sample_desc *s = self->s;
	char uuid[MDEV_UUID_LEN + 1];
	struct vfio_device_info info;
	long ret;

	mdev_new(_metadata, &self->t, s, s->types[0].id, uuid);
	ASSERT_EQ(0, mdev_module_refcnt(s->module));
	mdev_vfio_open(_metadata, &self->v, uuid, how);
	mdev_vfio_info(_metadata, self->v.device, &info);
	ASSERT_EQ(1, mdev_module_refcnt(s->module));

	ret = syscall(__NR_delete_module, s->module, O_NONBLOCK);
	ASSERT_EQ(-1, ret);
	ASSERT_EQ(EWOULDBLOCK, errno) {
		TH_LOG("delete_module(%s): %s", s->module, strerror(errno));
	}
	ASSERT_TRUE(mdev_module_loaded(s->module));

	ASSERT_NE(0, mdev_modprobe(s->module, true)) {
		TH_LOG("modprobe -r %s succeeded with an open device",
		       s->module);
	}
	ASSERT_TRUE(mdev_module_loaded(s->module));
	ASSERT_TRUE(mdev_dev_present(s, uuid));
	mdev_vfio_info(_metadata, self->v.device, &info);
	ASSERT_EQ(s->num_regions, info.num_regions);

	mdev_vfio_close(&self->v);
	ASSERT_EQ(0, mdev_module_refcnt(s->module));
	mdev_del(_metadata, &self->t, uuid);
}

TEST_F_TIMEOUT(module, module_busy_while_open_group, MDEV_TIMEOUT)
{
	module_busy(_metadata, self, MDEV_VFIO_GROUP);
}

TEST_F_TIMEOUT(module, module_busy_while_open_cdev, MDEV_TIMEOUT)
{
	module_busy(_metadata, self, MDEV_VFIO_CDEV);
}

TEST_HARNESS_MAIN
