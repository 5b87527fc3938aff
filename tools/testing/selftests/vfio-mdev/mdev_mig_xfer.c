// SPDX-License-Identifier: GPL-2.0
/*
 * mdev_mig_xfer - migrate an mtty device through a file, for migration
 * between the two mtty implementations (C mtty and Rust mtty_rs) driven by a
 * script that swaps the module between the steps.  Not a test: it is not run
 * by the kselftest runner (TEST_GEN_PROGS_EXTENDED).
 *
 *   mdev_mig_xfer save <uuid> <file> [group|cdev]
 *	open the mdev (mtty-1 or mtty-2), program the distinctive state of
 *	mdev_mig.h (mtty_mig_prog[], the state of mdev_mig_test), save it
 *	through RUNNING -> STOP_COPY into <file> and print the stream length.
 *	A stream that is not the expected one is written anyway; what differs
 *	is printed and the exit status is 1.
 *
 *   mdev_mig_xfer load <uuid> <file> [group|cdev]
 *	resume the mdev from <file>, go to RUNNING and check the registers
 *	and the FIFO contents against the programmed state: prints "ok", or
 *	what differs and exits with 1.  Reading the FIFO empties it.
 *
 *   mdev_mig_xfer resave <uuid> <in> <out> [group|cdev]
 *	resume the mdev from <in>, go to RUNNING and save it again into <out>
 *	without touching the UARTs, so that "cmp <in> <out>" compares the
 *	streams of two implementations byte for byte; prints the length of
 *	<out>.
 *
 * The VFIO path defaults to group (group/container, type1); cdev is the
 * iommufd cdev path.  The device is left RUNNING: the C mtty keeps its
 * migration state when the device is closed.
 *
 * Exit status: 0, 1 on a failure or a difference, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/iommufd.h>
#include <linux/serial_reg.h>
#include <linux/vfio.h>

#include "mdev_common.h"
#include "mdev_mig.h"

#define STREAM_MAX	4096

struct xfer_dev {
	int container;
	int group;
	int iommufd;
	int device;
};

static void dev_close(struct xfer_dev *d)
{
	if (d->device >= 0)
		close(d->device);
	if (d->group >= 0)
		close(d->group);
	if (d->container >= 0)
		close(d->container);
	if (d->iommufd >= 0)
		close(d->iommufd);
	d->device = -1;
	d->group = -1;
	d->container = -1;
	d->iommufd = -1;
}

/* The steps of mdev_vfio_open_group() in mdev_harness.h; NULL or what failed */
static const char *open_group(struct xfer_dev *d, const char *uuid)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	char path[MDEV_PATH_MAX], real[MDEV_PATH_MAX];
	int ret;

	mdev_dev_path(path, sizeof(path), uuid, "iommu_group");
	ret = mdev_realpath(path, real, sizeof(real));
	if (ret) {
		errno = -ret;
		return "realpath <dev>/iommu_group";
	}
	d->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (d->container < 0)
		return "open /dev/vfio/vfio";
	mdev_pathf(path, sizeof(path), "/dev/vfio/%s", mdev_basename(real));
	d->group = open(path, O_RDWR | O_CLOEXEC);
	if (d->group < 0)
		return "open /dev/vfio/<group>";
	if (ioctl(d->group, VFIO_GROUP_GET_STATUS, &status))
		return "VFIO_GROUP_GET_STATUS";
	errno = EINVAL;
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		return "group not viable";
	if (ioctl(d->group, VFIO_GROUP_SET_CONTAINER, &d->container))
		return "VFIO_GROUP_SET_CONTAINER";
	if (ioctl(d->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return "VFIO_SET_IOMMU(TYPE1v2)";
	d->device = ioctl(d->group, VFIO_GROUP_GET_DEVICE_FD, uuid);
	if (d->device < 0)
		return "VFIO_GROUP_GET_DEVICE_FD";
	return NULL;
}

/* The steps of mdev_vfio_open_cdev() in mdev_harness.h */
static const char *open_cdev(struct xfer_dev *d, const char *uuid)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
	};
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	char path[MDEV_PATH_MAX], name[256];
	int n;

	mdev_dev_path(path, sizeof(path), uuid, "vfio-dev");
	n = mdev_count_dir(path, name, sizeof(name));
	if (n != 1) {
		errno = n < 0 ? -n : ENOENT;
		return "the one entry of <dev>/vfio-dev";
	}
	mdev_pathf(path, sizeof(path), "/dev/vfio/devices/%s", name);
	d->device = open(path, O_RDWR | O_CLOEXEC);
	if (d->device < 0)
		return "open /dev/vfio/devices/vfioM";
	d->iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (d->iommufd < 0)
		return "open /dev/iommu";
	bind.iommufd = d->iommufd;
	if (ioctl(d->device, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return "VFIO_DEVICE_BIND_IOMMUFD";
	if (ioctl(d->iommufd, IOMMU_IOAS_ALLOC, &alloc))
		return "IOMMU_IOAS_ALLOC";
	attach.pt_id = alloc.out_ioas_id;
	if (ioctl(d->device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		return "VFIO_DEVICE_ATTACH_IOMMUFD_PT";
	return NULL;
}

static int dev_open(struct xfer_dev *d, const char *uuid, bool cdev)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	const char *what;

	d->device = -1;
	d->group = -1;
	d->container = -1;
	d->iommufd = -1;
	what = cdev ? open_cdev(d, uuid) : open_group(d, uuid);
	if (!what && ioctl(d->device, VFIO_DEVICE_GET_INFO, &info))
		what = "VFIO_DEVICE_GET_INFO";
	if (what) {
		fprintf(stderr, "# %s (%s path): %s: %s\n", uuid,
			cdev ? "cdev" : "group", what, strerror(errno));
		dev_close(d);
		return -1;
	}
	return 0;
}

/* SET MIG_DEVICE_STATE; want_fd: the arc must open a stream (returned) */
static int set_state(int dev, __u32 state, bool want_fd)
{
	int fd = -1, ret;

	ret = mtty_mig_set_state(dev, state, &fd);
	if (ret) {
		fprintf(stderr, "# SET %s: %s\n", mtty_mig_state_name(state),
			strerror(-ret));
		return -1;
	}
	if (want_fd ? fd < 0 : fd != -1) {
		fprintf(stderr, "# SET %s: data fd %d\n",
			mtty_mig_state_name(state), fd);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return want_fd ? fd : 0;
}

/* Start from RUNNING whatever an earlier user left */
static int to_running(int dev)
{
	__u32 state;
	int ret = mtty_mig_get_state(dev, &state);

	if (ret) {
		fprintf(stderr, "# GET MIG_DEVICE_STATE: %s\n", strerror(-ret));
		return -1;
	}
	if (state == VFIO_DEVICE_STATE_RUNNING)
		return 0;
	fprintf(stderr, "# device in %s, setting RUNNING\n",
		mtty_mig_state_name(state));
	return set_state(dev, VFIO_DEVICE_STATE_RUNNING, false);
}

/* The number of ports, from the stop-copy size */
static int nr_ports(int dev)
{
	__u64 len = 0;
	int ret = mtty_mig_data_size(dev, &len);

	if (ret) {
		fprintf(stderr, "# GET MIG_DATA_SIZE: %s\n", strerror(-ret));
		return -1;
	}
	if (len != MTTY_MIG_LEN(1) && len != MTTY_MIG_LEN(2)) {
		fprintf(stderr, "# stop_copy_length %llu: not an mtty\n",
			(unsigned long long)len);
		return -1;
	}
	return len == MTTY_MIG_LEN(1) ? 1 : 2;
}

/* RUNNING -> STOP_COPY, the whole stream into buf, back to RUNNING */
static ssize_t save(int dev, void *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = set_state(dev, VFIO_DEVICE_STATE_STOP_COPY, true);
	if (fd < 0)
		return -1;
	do {
		n = read(fd, (char *)buf + len, size - len);
		if (n > 0)
			len += n;
	} while (n > 0 && len < size);
	if (n < 0)
		fprintf(stderr, "# reading the stream: %s\n",
			strerror(errno));
	else if (len == size)
		fprintf(stderr, "# stream longer than %zu bytes\n", size);
	close(fd);
	if (set_state(dev, VFIO_DEVICE_STATE_RUNNING, false) || n < 0 ||
	    len == size)
		return -1;
	return len;
}

/* RUNNING -> RESUMING, the stream, -> STOP (loads it) -> RUNNING */
static int load(int dev, const void *buf, size_t len)
{
	size_t done = 0;
	int fd;

	fd = set_state(dev, VFIO_DEVICE_STATE_RESUMING, true);
	if (fd < 0)
		return -1;
	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n <= 0) {
			fprintf(stderr, "# write of the resume stream at %zu of %zu: %s\n",
				done, len, n < 0 ? strerror(errno) : "0");
			close(fd);
			return -1;
		}
		done += n;
	}
	if (set_state(dev, VFIO_DEVICE_STATE_STOP, false)) {
		close(fd);
		return -1;
	}
	close(fd);
	return set_state(dev, VFIO_DEVICE_STATE_RUNNING, false);
}

static ssize_t read_file(const char *path, void *buf, size_t size)
{
	ssize_t len = mdev_read_file(path, buf, size);

	if (len < 0) {
		fprintf(stderr, "# reading %s: %s\n", path, strerror(-len));
		return -1;
	}
	/* mdev_read_file() reads at most size - 1 bytes */
	if ((size_t)len >= size - 1) {
		fprintf(stderr, "# %s: %zu bytes or more\n", path, size - 1);
		return -1;
	}
	return len;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n = -1;

	if (fd >= 0) {
		n = write(fd, buf, len);
		if (close(fd) && n >= 0)
			n = -1;
	}
	if (n != (ssize_t)len) {
		fprintf(stderr, "# writing %s: %s\n", path,
			n < 0 ? strerror(errno) : "short write");
		return -1;
	}
	return 0;
}

/* The stream against the one of a programmed device; differences */
static int check_stream(const void *buf, size_t len, int ports)
{
	struct mtty_mig_stream want;
	size_t want_len = mtty_mig_expect_stream(&want, ports);
	const __u8 *got = buf, *w = (const __u8 *)&want;
	int diffs = 0;
	size_t i;

	if (len != want_len) {
		printf("stream length %zu, expected %zu\n", len, want_len);
		diffs++;
	}
	for (i = 0; i < len && i < want_len; i++) {
		if (got[i] == w[i])
			continue;
		if (i < MTTY_MIG_HDR_LEN)
			printf("stream byte %zu (header +%zu): 0x%02x, expected 0x%02x\n",
			       i, i, got[i], w[i]);
		else
			printf("stream byte %zu (port %zu +%zu): 0x%02x, expected 0x%02x\n",
			       i, (i - MTTY_MIG_HDR_LEN) / MTTY_MIG_PORT_LEN,
			       (i - MTTY_MIG_HDR_LEN) % MTTY_MIG_PORT_LEN,
			       got[i], w[i]);
		diffs++;
	}
	return diffs;
}

static int check_reg(int dev, unsigned int port, unsigned int reg,
		     const char *name, __u8 want, int *diffs)
{
	__u8 val = 0;
	int ret = mtty_mig_uart_rd(dev, port, reg, &val);

	if (ret) {
		fprintf(stderr, "# pread port %u %s: %s\n", port, name,
			strerror(-ret));
		return -1;
	}
	if (val != want) {
		printf("port %u %s: 0x%02x, expected 0x%02x\n", port, name,
		       val, want);
		(*diffs)++;
	}
	return 0;
}

/* Registers and FIFO against the programmed state; -1 or the differences */
static int check_uarts(int dev, int ports)
{
	int p, i, diffs = 0;

	for (p = 0; p < ports; p++) {
		const struct mtty_mig_prog *g = &mtty_mig_prog[p];

		if (check_reg(dev, p, UART_LSR, "LSR", UART_LSR_DR, &diffs) ||
		    check_reg(dev, p, UART_SCR, "SCR", g->scr, &diffs) ||
		    check_reg(dev, p, UART_LCR, "LCR", g->lcr, &diffs) ||
		    check_reg(dev, p, UART_MCR, "MCR", g->mcr, &diffs) ||
		    check_reg(dev, p, UART_IER, "IER", g->ier & 0x0f, &diffs))
			return -1;
		for (i = 0; i < MTTY_MIG_TX_LEN; i++) {
			char name[32];

			snprintf(name, sizeof(name), "RX byte %d", i);
			if (check_reg(dev, p, UART_RX, name, g->tx[i], &diffs))
				return -1;
		}
		if (check_reg(dev, p, UART_LSR, "LSR after the FIFO",
			      UART_LSR_TEMT | UART_LSR_THRE, &diffs))
			return -1;
	}
	return diffs;
}

static int cmd_save(int dev, const char *file)
{
	__u8 buf[STREAM_MAX];
	ssize_t len;
	int ports, diffs, ret;

	ports = nr_ports(dev);
	if (ports < 0 || to_running(dev))
		return 1;
	ret = mtty_mig_program(dev, ports);
	if (ret) {
		fprintf(stderr, "# programming the UARTs: %s\n", strerror(-ret));
		return 1;
	}
	len = save(dev, buf, sizeof(buf));
	if (len < 0 || write_file(file, buf, len))
		return 1;
	diffs = check_stream(buf, len, ports);
	printf("%zd\n", len);
	return diffs ? 1 : 0;
}

static int cmd_load(int dev, const char *file)
{
	__u8 buf[STREAM_MAX];
	ssize_t len;
	int ports, diffs;

	ports = nr_ports(dev);
	len = read_file(file, buf, sizeof(buf));
	if (ports < 0 || len < 0 || load(dev, buf, len))
		return 1;
	diffs = check_uarts(dev, ports);
	if (diffs < 0)
		return 1;
	if (diffs)
		return 1;
	printf("ok\n");
	return 0;
}

static int cmd_resave(int dev, const char *in, const char *out)
{
	__u8 buf[STREAM_MAX];
	ssize_t len;

	len = read_file(in, buf, sizeof(buf));
	if (len < 0 || load(dev, buf, len))
		return 1;
	len = save(dev, buf, sizeof(buf));
	if (len < 0 || write_file(out, buf, len))
		return 1;
	printf("%zd\n", len);
	return 0;
}

static int print_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s save <uuid> <file> [group|cdev]\n"
		"       %s load <uuid> <file> [group|cdev]\n"
		"       %s resave <uuid> <in> <out> [group|cdev]\n",
		prog, prog, prog);
	return 2;
}

int main(int argc, char **argv)
{
	bool resave = argc > 1 && !strcmp(argv[1], "resave");
	int nargs = resave ? 5 : 4;
	const char *how = "group";
	struct xfer_dev d;
	int ret;

	if (argc < nargs || argc > nargs + 1)
		return print_usage(argv[0]);
	if (!resave && strcmp(argv[1], "save") && strcmp(argv[1], "load"))
		return print_usage(argv[0]);
	if (argc == nargs + 1)
		how = argv[nargs];
	if (strcmp(how, "group") && strcmp(how, "cdev"))
		return print_usage(argv[0]);

	if (dev_open(&d, argv[2], !strcmp(how, "cdev")))
		return 1;
	if (resave)
		ret = cmd_resave(d.device, argv[3], argv[4]);
	else if (!strcmp(argv[1], "save"))
		ret = cmd_save(d.device, argv[3]);
	else
		ret = cmd_load(d.device, argv[3]);
	dev_close(&d);
	return ret;
}
