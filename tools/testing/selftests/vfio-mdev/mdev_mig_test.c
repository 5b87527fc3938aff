// SPDX-License-Identifier: GPL-2.0
/*
 * VFIO migration v2 (include/uapi/linux/vfio.h: VFIO_DEVICE_FEATURE_MIGRATION,
 * _MIG_DEVICE_STATE, _MIG_DATA_SIZE, VFIO_MIG_GET_PRECOPY_INFO) of the mtty
 * sample, on both VFIO paths (group/container and iommufd cdev).
 *
 * The cell has one mtty implementation loaded: the C mtty or the Rust
 * mtty_rs.  They stream the same bytes (the C sample's struct mtty_data, see
 * mdev_mig.h) and behave the same, except where a test says otherwise:
 *
 *  - at the temporary end of a pre-copy stream, read() fails with ENOMSG on
 *    mtty_rs, as the uAPI asks; the C mtty returns 0;
 *  - a bad stream header fails the write() that completes it with EFAULT on
 *    the C mtty; mtty_rs takes it and fails RESUMING -> STOP with EINVAL;
 *  - mtty_rs validates the port records before loading them (FIFO indexes,
 *    count, boolean flags); the C mtty trusts them and would index its FIFO
 *    out of bounds, so such streams are only fed to mtty_rs.
 *
 * Neither mtty resets its UARTs on VFIO_DEVICE_RESET, only the migration
 * state (RUNNING, streams ended); the resume tests rely on that to check
 * that a refused stream left the device untouched.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/serial_reg.h>
#include <linux/vfio.h>

#include "mdev_harness.h"
#include "mdev_mig.h"

#define LSR_EMPTY	(UART_LSR_TEMT | UART_LSR_THRE)		/* 0x60 */

#define S_ERROR		VFIO_DEVICE_STATE_ERROR
#define S_STOP		VFIO_DEVICE_STATE_STOP
#define S_RUNNING	VFIO_DEVICE_STATE_RUNNING
#define S_STOP_COPY	VFIO_DEVICE_STATE_STOP_COPY
#define S_RESUMING	VFIO_DEVICE_STATE_RESUMING
#define S_RUNNING_P2P	VFIO_DEVICE_STATE_RUNNING_P2P
#define S_PRE_COPY	VFIO_DEVICE_STATE_PRE_COPY
#define S_PRE_COPY_P2P	VFIO_DEVICE_STATE_PRE_COPY_P2P

#define LEN2		MTTY_MIG_LEN(2)		/* 96: an mtty-2 stream */
#define LEN1		MTTY_MIG_LEN(1)		/* 60: an mtty-1 stream */

/* chunk sizes that cut through fields and records */
#define RD_CHUNK	11
#define WR_CHUNK	13

#define MAX_DATA_FDS	8

/* A stream, as bytes or as struct mtty_data */
union mig_buf {
	struct mtty_mig_stream s;
	__u8 b[sizeof(struct mtty_mig_stream)];
};

FIXTURE(mtty_mig) {
	const struct mdev_sample_desc *s;
	struct mdev_tracker t;
	bool rust;
	struct mdev_vfio src, dst;
	char src_uuid[MDEV_UUID_LEN + 1];
	char dst_uuid[MDEV_UUID_LEN + 1];
	/* stream fds, closed before the mdevs are removed */
	int data_fd[MAX_DATA_FDS];
};

FIXTURE_VARIANT(mtty_mig) {
	enum mdev_vfio_path path;
};

FIXTURE_VARIANT_ADD(mtty_mig, group) { MDEV_VFIO_GROUP };
FIXTURE_VARIANT_ADD(mtty_mig, cdev) { MDEV_VFIO_CDEV };

FIXTURE_SETUP(mtty_mig)
{
	unsigned int i;

	self->t.n = 0;
	for (i = 0; i < MAX_DATA_FDS; i++)
		self->data_fd[i] = -1;
	mdev_vfio_init(&self->src);
	mdev_vfio_init(&self->dst);
	self->s = mdev_setup_sample(_metadata, "mtty");
	if (!self->s)
		return;
	/* mdev_setup_sample() checked that the listed one is loaded */
	self->rust = mdev_module_loaded("mtty_rs");
	ASSERT_EQ(!!self->s->compat, self->rust) {
		TH_LOG("testing %s, module mtty_rs loaded: %d", self->s->sample,
		       self->rust);
	}
}

FIXTURE_TEARDOWN(mtty_mig)
{
	unsigned int i;

	for (i = 0; i < MAX_DATA_FDS; i++)
		if (self->data_fd[i] >= 0)
			close(self->data_fd[i]);
	mdev_vfio_close(&self->src);
	mdev_vfio_close(&self->dst);
	mdev_cleanup(&self->t);
}

static void keep_fd(struct __test_metadata *_metadata,
		    FIXTURE_DATA(mtty_mig) *self, int fd)
{
	unsigned int i;

	for (i = 0; i < MAX_DATA_FDS; i++) {
		if (self->data_fd[i] < 0) {
			self->data_fd[i] = fd;
			return;
		}
	}
	close(fd);
	ASSERT_TRUE(false) {
		TH_LOG("more than %d stream fds open", MAX_DATA_FDS);
	}
}

static void close_fd(FIXTURE_DATA(mtty_mig) *self, int fd)
{
	unsigned int i;

	for (i = 0; i < MAX_DATA_FDS; i++) {
		if (self->data_fd[i] == fd) {
			self->data_fd[i] = -1;
			close(fd);
		}
	}
}

/* a new mdev of type, opened on the variant's path, GET_INFO done */
static int mig_open(struct __test_metadata *_metadata,
		    FIXTURE_DATA(mtty_mig) *self,
		    const FIXTURE_VARIANT(mtty_mig) *variant,
		    struct mdev_vfio *v, char *uuid, const char *type)
{
	struct vfio_device_info info;

	mdev_new(_metadata, &self->t, self->s, type, uuid);
	mdev_vfio_open(_metadata, v, uuid, variant->path);
	mdev_vfio_info(_metadata, v->device, &info);
	return v->device;
}

static __u8 uart_rd(struct __test_metadata *_metadata, int fd,
		    unsigned int port, unsigned int reg)
{
	__u8 val = 0;
	int ret = mtty_mig_uart_rd(fd, port, reg, &val);

	ASSERT_EQ(0, ret) {
		TH_LOG("pread port %u reg %u: %s", port, reg, strerror(-ret));
	}
	return val;
}

static void uart_wr(struct __test_metadata *_metadata, int fd,
		    unsigned int port, unsigned int reg, __u8 val)
{
	int ret = mtty_mig_uart_wr(fd, port, reg, val);

	ASSERT_EQ(0, ret) {
		TH_LOG("pwrite port %u reg %u: %s", port, reg, strerror(-ret));
	}
}

#define RD(fd, port, reg)	uart_rd(_metadata, fd, port, reg)
#define WR(fd, port, reg, val)	uart_wr(_metadata, fd, port, reg, val)

static void program(struct __test_metadata *_metadata, int fd,
		    unsigned int nr_ports)
{
	int ret = mtty_mig_program(fd, nr_ports);

	ASSERT_EQ(0, ret) {
		TH_LOG("programming the UARTs: %s", strerror(-ret));
	}
}

static __u32 mig_get(struct __test_metadata *_metadata, int dev)
{
	__u32 state = 0xdead;
	int ret = mtty_mig_get_state(dev, &state);

	ASSERT_EQ(0, ret) {
		TH_LOG("GET MIG_DEVICE_STATE: %s", strerror(-ret));
	}
	return state;
}

static void expect_state(struct __test_metadata *_metadata, int dev,
			 __u32 want)
{
	__u32 state = mig_get(_metadata, dev);

	ASSERT_EQ(want, state) {
		TH_LOG("device state %s, expected %s",
		       mtty_mig_state_name(state), mtty_mig_state_name(want));
	}
}

#define ASSERT_STATE(dev, want)	expect_state(_metadata, dev, want)

/*
 * SET MIG_DEVICE_STATE that must succeed, with a new stream fd (kept for
 * the teardown) or with data_fd -1; GET reports the new state.  Returns the
 * data fd.
 */
static int mig_set(struct __test_metadata *_metadata,
		   FIXTURE_DATA(mtty_mig) *self, int dev, __u32 state,
		   bool new_fd)
{
	__u32 from = mig_get(_metadata, dev);
	int data_fd = -2, ret;

	ret = mtty_mig_set_state(dev, state, &data_fd);
	if (data_fd >= 0)
		keep_fd(_metadata, self, data_fd);
	ASSERT_EQ(0, ret) {
		TH_LOG("SET %s -> %s: %s", mtty_mig_state_name(from),
		       mtty_mig_state_name(state), strerror(-ret));
	}
	if (new_fd) {
		ASSERT_LE(0, data_fd) {
			TH_LOG("SET %s -> %s: no data fd",
			       mtty_mig_state_name(from),
			       mtty_mig_state_name(state));
		}
	} else {
		ASSERT_EQ(-1, data_fd) {
			TH_LOG("SET %s -> %s: data fd %d, expected -1",
			       mtty_mig_state_name(from),
			       mtty_mig_state_name(state), data_fd);
		}
	}
	ASSERT_STATE(dev, state);
	return data_fd;
}

/* SET MIG_DEVICE_STATE that must fail with err and leave the state alone */
static void mig_set_fail(struct __test_metadata *_metadata, int dev,
			 __u32 state, int err)
{
	__u32 from = mig_get(_metadata, dev);
	int data_fd = -2, ret;

	ret = mtty_mig_set_state(dev, state, &data_fd);
	if (data_fd >= 0)
		close(data_fd);
	ASSERT_EQ(-err, ret) {
		TH_LOG("SET %s -> %s (%u): %s, expected %s",
		       mtty_mig_state_name(from), mtty_mig_state_name(state),
		       state, ret ? strerror(-ret) : "success", strerror(err));
	}
	/* the VFIO core reports no fd for a failed SET */
	ASSERT_EQ(-1, data_fd);
	ASSERT_STATE(dev, from);
}

/* read() must return exactly len bytes in reads of chunk bytes */
static void stream_read(struct __test_metadata *_metadata, int fd, void *buf,
			size_t len, size_t chunk)
{
	size_t done = 0;

	while (done < len) {
		size_t want = len - done < chunk ? len - done : chunk;
		__u8 tmp[128];
		ssize_t n;

		ASSERT_LE(chunk, sizeof(tmp));
		n = read(fd, tmp, chunk);

		ASSERT_EQ((ssize_t)want, n) {
			TH_LOG("read(%zu) at stream offset %zu of %zu: %s",
			       chunk, done, len,
			       n < 0 ? strerror(errno) : "wrong length");
		}
		memcpy((__u8 *)buf + done, tmp, n);
		done += n;
	}
}

/* the permanent end of a stop-copy stream: read() returns 0, again */
static void stream_eof(struct __test_metadata *_metadata, int fd)
{
	__u8 tmp[16];

	ASSERT_EQ(0, read(fd, tmp, sizeof(tmp))) {
		TH_LOG("read at the end of the stream: %s", strerror(errno));
	}
	ASSERT_EQ(0, read(fd, tmp, sizeof(tmp)));
}

/* write() of len bytes in writes of chunk bytes, each taken completely */
static void stream_write(struct __test_metadata *_metadata, int fd,
			 const void *buf, size_t len, size_t chunk)
{
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < chunk ? len - done : chunk;
		ssize_t ret = write(fd, (const __u8 *)buf + done, n);

		ASSERT_EQ((ssize_t)n, ret) {
			TH_LOG("write(%zu) at stream offset %zu of %zu: %s",
			       n, done, len,
			       ret < 0 ? strerror(errno) : "wrong length");
		}
		done += n;
	}
}

/* an access to a stream that has ended fails with ENODEV */
static void stream_ended(struct __test_metadata *_metadata, int fd,
			 bool save)
{
	__u8 b[8] = { 0 };
	ssize_t n;

	n = save ? read(fd, b, sizeof(b)) : write(fd, b, sizeof(b));
	ASSERT_EQ(-1, n);
	ASSERT_EQ(ENODEV, errno) {
		TH_LOG("%s on an ended stream: %s", save ? "read" : "write",
		       strerror(errno));
	}
}

static int precopy_info(int fd, __u32 argsz, struct vfio_precopy_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = argsz;
	return ioctl(fd, VFIO_MIG_GET_PRECOPY_INFO, info) ? -errno : 0;
}

static void expect_precopy(struct __test_metadata *_metadata, int fd,
			   __u64 initial)
{
	struct vfio_precopy_info info;
	int ret = precopy_info(fd, sizeof(info), &info);

	ASSERT_EQ(0, ret) {
		TH_LOG("VFIO_MIG_GET_PRECOPY_INFO: %s", strerror(-ret));
	}
	ASSERT_EQ(initial, info.initial_bytes);
	ASSERT_EQ(0, info.dirty_bytes);
}

static void expect_header(struct __test_metadata *_metadata,
			  const struct mtty_mig_header *h, __u32 nr_ports)
{
	struct mtty_mig_header want;

	ASSERT_EQ(MTTY_MIG_MAGIC, h->magic);
	ASSERT_EQ(MTTY_MIG_MAJOR, h->major);
	ASSERT_EQ(MTTY_MIG_MINOR, h->minor);
	ASSERT_EQ(nr_ports, h->nr_ports);
	ASSERT_EQ(0, h->flags);
	mtty_mig_expect_header(&want, nr_ports);
	ASSERT_EQ(0, memcmp(&want, h, sizeof(want)));
}

/* a saved port record against the expected one, field by field */
static void expect_port(struct __test_metadata *_metadata,
			const struct mtty_mig_port *got,
			const struct mtty_mig_port *want, unsigned int port)
{
	unsigned int i;

	for (i = 0; i < 8; i++) {
		ASSERT_EQ(want->uart_reg[i], got->uart_reg[i]) {
			TH_LOG("port %u uart_reg[%u]", port, i);
		}
	}
	ASSERT_EQ(want->count, got->count) {
		TH_LOG("port %u FIFO count", port);
	}
	ASSERT_EQ(want->head, got->head) {
		TH_LOG("port %u FIFO head", port);
	}
	ASSERT_EQ(want->tail, got->tail) {
		TH_LOG("port %u FIFO tail", port);
	}
	for (i = 0; i < MTTY_MIG_FIFO_SIZE; i++) {
		ASSERT_EQ(want->fifo[i], got->fifo[i]) {
			TH_LOG("port %u fifo[%u]", port, i);
		}
	}
	ASSERT_EQ(want->dlab, got->dlab) {
		TH_LOG("port %u dlab", port);
	}
	ASSERT_EQ(want->overrun, got->overrun) {
		TH_LOG("port %u overrun", port);
	}
	ASSERT_EQ(want->divisor, got->divisor) {
		TH_LOG("port %u divisor", port);
	}
	ASSERT_EQ(want->fcr, got->fcr) {
		TH_LOG("port %u fcr", port);
	}
	ASSERT_EQ(want->max_fifo_size, got->max_fifo_size) {
		TH_LOG("port %u max_fifo_size", port);
	}
	ASSERT_EQ(want->intr_trigger_level, got->intr_trigger_level) {
		TH_LOG("port %u intr_trigger_level", port);
	}
	ASSERT_EQ(0, memcmp(want, got, sizeof(*want))) {
		TH_LOG("port %u padding bytes", port);
	}
}

/* the stream of a new device: only the FIFO sizes are set */
static void expect_fresh(struct __test_metadata *_metadata,
			 const union mig_buf *got, unsigned int nr_ports)
{
	struct mtty_mig_port want;
	unsigned int p;

	mtty_mig_fresh_port(&want);
	expect_header(_metadata, &got->s.hdr, nr_ports);
	for (p = 0; p < nr_ports; p++)
		expect_port(_metadata, &got->s.port[p], &want, p);
}

/* the stream of a device after program() */
static void expect_programmed(struct __test_metadata *_metadata,
			      const union mig_buf *got, unsigned int nr_ports)
{
	union mig_buf want;
	unsigned int p;

	mtty_mig_expect_stream(&want.s, nr_ports);
	expect_header(_metadata, &got->s.hdr, nr_ports);
	for (p = 0; p < nr_ports; p++)
		expect_port(_metadata, &got->s.port[p], &want.s.port[p], p);
}

static void expect_same_stream(struct __test_metadata *_metadata,
			       const union mig_buf *a, const union mig_buf *b,
			       size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		ASSERT_EQ(a->b[i], b->b[i]) {
			TH_LOG("streams differ at byte %zu (port record %zd, offset %zu)",
			       i, i < MTTY_MIG_HDR_LEN ? (ssize_t)-1 :
			       (ssize_t)((i - MTTY_MIG_HDR_LEN) / MTTY_MIG_PORT_LEN),
			       i < MTTY_MIG_HDR_LEN ? i :
			       (i - MTTY_MIG_HDR_LEN) % MTTY_MIG_PORT_LEN);
		}
	}
}

/*
 * Save a RUNNING device through RUNNING -> STOP -> STOP_COPY, reading the
 * stream in RD_CHUNK reads, and return it to RUNNING.
 */
static void dev_save(struct __test_metadata *_metadata,
		     FIXTURE_DATA(mtty_mig) *self, int dev, union mig_buf *out,
		     unsigned int nr_ports)
{
	int fd;

	memset(out, 0xee, sizeof(*out));
	mig_set(_metadata, self, dev, S_STOP, false);
	fd = mig_set(_metadata, self, dev, S_STOP_COPY, true);
	stream_read(_metadata, fd, out->b, MTTY_MIG_LEN(nr_ports), RD_CHUNK);
	stream_eof(_metadata, fd);
	mig_set(_metadata, self, dev, S_STOP, false);
	stream_ended(_metadata, fd, true);
	close_fd(self, fd);
	mig_set(_metadata, self, dev, S_RUNNING, false);
}

/* Load a stream into a RUNNING device (WR_CHUNK writes), back to RUNNING */
static void dev_load(struct __test_metadata *_metadata,
		     FIXTURE_DATA(mtty_mig) *self, int dev, const void *stream,
		     size_t len)
{
	int fd = mig_set(_metadata, self, dev, S_RESUMING, true);

	stream_write(_metadata, fd, stream, len, WR_CHUNK);
	mig_set(_metadata, self, dev, S_STOP, false);
	stream_ended(_metadata, fd, false);
	close_fd(self, fd);
	mig_set(_metadata, self, dev, S_RUNNING, false);
}

/* registers and FIFO of a device that holds the programmed state */
static void expect_uarts(struct __test_metadata *_metadata, int dev,
			 unsigned int nr_ports)
{
	unsigned int p, i;

	for (p = 0; p < nr_ports; p++) {
		const struct mtty_mig_prog *g = &mtty_mig_prog[p];

		ASSERT_EQ(UART_LSR_DR, RD(dev, p, UART_LSR)) {
			TH_LOG("port %u: no data ready", p);
		}
		ASSERT_EQ(g->scr, RD(dev, p, UART_SCR)) {
			TH_LOG("port %u SCR", p);
		}
		ASSERT_EQ(g->lcr, RD(dev, p, UART_LCR)) {
			TH_LOG("port %u LCR", p);
		}
		ASSERT_EQ(g->mcr, RD(dev, p, UART_MCR)) {
			TH_LOG("port %u MCR", p);
		}
		ASSERT_EQ(g->ier & 0x0f, RD(dev, p, UART_IER)) {
			TH_LOG("port %u IER (reads back masked with 0x0f)", p);
		}
		for (i = 0; i < MTTY_MIG_TX_LEN; i++) {
			ASSERT_EQ(UART_LSR_DR, RD(dev, p, UART_LSR)) {
				TH_LOG("port %u: FIFO empty after %u bytes",
				       p, i);
			}
			ASSERT_EQ(g->tx[i], RD(dev, p, UART_RX)) {
				TH_LOG("port %u: byte %u from the FIFO", p, i);
			}
		}
		ASSERT_EQ(LSR_EMPTY, RD(dev, p, UART_LSR)) {
			TH_LOG("port %u: FIFO not empty after %u bytes", p,
			       MTTY_MIG_TX_LEN);
		}
	}
}

/* ------------------------------------------------------------------ */

/* migration features: flags, PROBE, data size, short argsz */
TEST_F_TIMEOUT(mtty_mig, features, MDEV_TIMEOUT)
{
	const __u32 hdr = sizeof(struct vfio_device_feature);
	struct vfio_device_feature_migration mig = { 0 };
	struct vfio_device_feature_mig_state st = { 0 };
	struct vfio_device_feature_mig_data_size ds = { 0 };
	__u64 len = 0;
	int dev, ret;

	dev = mig_open(_metadata, self, variant, &self->src, self->src_uuid,
		       "mtty-2");

	ret = mtty_mig_feature(dev, VFIO_DEVICE_FEATURE_GET |
			       VFIO_DEVICE_FEATURE_MIGRATION, &mig, sizeof(mig));
	ASSERT_EQ(0, ret) {
		TH_LOG("GET MIGRATION: %s", strerror(-ret));
	}
	ASSERT_EQ(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
		  VFIO_MIGRATION_PRE_COPY, mig.flags);

	/* PROBE: the operations each feature supports */
	ASSERT_EQ(0, mtty_mig_feature(dev, VFIO_DEVICE_FEATURE_PROBE |
				      VFIO_DEVICE_FEATURE_GET |
				      VFIO_DEVICE_FEATURE_MIGRATION, NULL, 0));
	ASSERT_EQ(-EINVAL, mtty_mig_feature(dev, VFIO_DEVICE_FEATURE_PROBE |
					    VFIO_DEVICE_FEATURE_SET |
					    VFIO_DEVICE_FEATURE_MIGRATION,
					    NULL, 0));
	ASSERT_EQ(0, mtty_mig_feature(dev, VFIO_DEVICE_FEATURE_PROBE |
				      VFIO_DEVICE_FEATURE_GET |
				      VFIO_DEVICE_FEATURE_SET |
				      VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
				      NULL, 0));
	ASSERT_EQ(0, mtty_mig_feature(dev, VFIO_DEVICE_FEATURE_PROBE |
				      VFIO_DEVICE_FEATURE_GET |
				      VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
				      NULL, 0));
	ASSERT_EQ(-EINVAL, mtty_mig_feature(dev, VFIO_DEVICE_FEATURE_PROBE |
					    VFIO_DEVICE_FEATURE_SET |
					    VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
					    NULL, 0));

	ret = mtty_mig_data_size(dev, &len);
	ASSERT_EQ(0, ret) {
		TH_LOG("GET MIG_DATA_SIZE: %s", strerror(-ret));
	}
	ASSERT_EQ(LEN2, len) {
		TH_LOG("stop_copy_length of an mtty-2: 24 + 2 * 36");
	}

	/* argsz too small for the feature's data */
	ASSERT_EQ(-EINVAL, mtty_mig_feature_argsz(dev, VFIO_DEVICE_FEATURE_GET |
				VFIO_DEVICE_FEATURE_MIGRATION,
				&mig, sizeof(mig), hdr + sizeof(mig) - 1));
	ASSERT_EQ(-EINVAL, mtty_mig_feature_argsz(dev, VFIO_DEVICE_FEATURE_GET |
				VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
				&st, sizeof(st), hdr + 4));
	st.device_state = S_STOP;
	ASSERT_EQ(-EINVAL, mtty_mig_feature_argsz(dev, VFIO_DEVICE_FEATURE_SET |
				VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
				&st, sizeof(st), hdr + 4));
	ASSERT_EQ(-EINVAL, mtty_mig_feature_argsz(dev, VFIO_DEVICE_FEATURE_GET |
				VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
				&ds, sizeof(ds), hdr + sizeof(ds) - 1));
	/* shorter than struct vfio_device_feature itself */
	ASSERT_EQ(-EINVAL, mtty_mig_feature_argsz(dev, VFIO_DEVICE_FEATURE_GET |
				VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
				&st, sizeof(st), hdr - 1));
	/* GET and SET together without PROBE */
	ASSERT_EQ(-EINVAL, mtty_mig_feature(dev, VFIO_DEVICE_FEATURE_GET |
					    VFIO_DEVICE_FEATURE_SET |
					    VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
					    &st, sizeof(st)));
	/* the refused SET did nothing */
	ASSERT_STATE(dev, S_RUNNING);
}

/* a single-port mtty: its size, its stream, and a stream that does not fit */
TEST_F_TIMEOUT(mtty_mig, one_port, MDEV_TIMEOUT)
{
	union mig_buf saved, big;
	__u64 len = 0;
	int src, dst, fd;

	src = mig_open(_metadata, self, variant, &self->src, self->src_uuid,
		       "mtty-1");
	dst = mig_open(_metadata, self, variant, &self->dst, self->dst_uuid,
		       "mtty-1");
	ASSERT_EQ(0, mtty_mig_data_size(src, &len));
	ASSERT_EQ(LEN1, len) {
		TH_LOG("stop_copy_length of an mtty-1: 24 + 36");
	}

	program(_metadata, src, 1);
	dev_save(_metadata, self, src, &saved, 1);
	expect_programmed(_metadata, &saved, 1);

	/* one byte more than an mtty-1 takes: nothing of it is taken */
	fd = mig_set(_metadata, self, dst, S_RESUMING, true);
	memcpy(&big, &saved, sizeof(big));
	ASSERT_EQ(-1, write(fd, big.b, LEN1 + 1));
	ASSERT_EQ(ENOMEM, errno);
	/* a dual-port stream does not fit either */
	mtty_mig_expect_stream(&big.s, 2);
	ASSERT_EQ(-1, write(fd, big.b, LEN2));
	ASSERT_EQ(ENOMEM, errno);
	stream_write(_metadata, fd, saved.b, LEN1, WR_CHUNK);
	ASSERT_EQ(-1, write(fd, big.b, 1));
	ASSERT_EQ(ENOMEM, errno);
	mig_set(_metadata, self, dst, S_STOP, false);
	close_fd(self, fd);
	mig_set(_metadata, self, dst, S_RUNNING, false);
	expect_uarts(_metadata, dst, 1);
}

/* GET after open, SET to the current state, a new fd exactly where expected */
TEST_F_TIMEOUT(mtty_mig, state_fds, MDEV_TIMEOUT)
{
	union mig_buf a, b;
	int dev, fd, fd2;

	dev = mig_open(_metadata, self, variant, &self->src, self->src_uuid,
		       "mtty-2");
	ASSERT_STATE(dev, S_RUNNING);
	mig_set(_metadata, self, dev, S_RUNNING, false);

	/* RUNNING -> STOP_COPY: through RUNNING_P2P and STOP, a new stream */
	fd = mig_set(_metadata, self, dev, S_STOP_COPY, true);
	ASSERT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD));
	ASSERT_EQ(O_RDONLY, fcntl(fd, F_GETFL) & O_ACCMODE);
	mig_set(_metadata, self, dev, S_STOP_COPY, false);
	stream_read(_metadata, fd, a.b, LEN2, sizeof(a));
	stream_eof(_metadata, fd);
	expect_fresh(_metadata, &a, 2);
	/* STOP_COPY -> RUNNING ends it */
	mig_set(_metadata, self, dev, S_RUNNING, false);
	stream_ended(_metadata, fd, true);
	close_fd(self, fd);

	/* RUNNING -> RESUMING: a resume stream */
	fd = mig_set(_metadata, self, dev, S_RESUMING, true);
	ASSERT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD));
	ASSERT_EQ(O_WRONLY, fcntl(fd, F_GETFL) & O_ACCMODE);
	mig_set(_metadata, self, dev, S_RESUMING, false);
	stream_write(_metadata, fd, a.b, LEN2, sizeof(a));
	/* RESUMING -> RUNNING loads it on the way through STOP */
	mig_set(_metadata, self, dev, S_RUNNING, false);
	stream_ended(_metadata, fd, false);
	close_fd(self, fd);

	/* RUNNING -> PRE_COPY, then PRE_COPY -> STOP_COPY continues it */
	fd = mig_set(_metadata, self, dev, S_PRE_COPY, true);
	mig_set(_metadata, self, dev, S_PRE_COPY, false);
	mig_set(_metadata, self, dev, S_STOP_COPY, false);
	stream_read(_metadata, fd, b.b, LEN2, sizeof(b));
	stream_eof(_metadata, fd);
	expect_same_stream(_metadata, &a, &b, LEN2);
	mig_set(_metadata, self, dev, S_STOP, false);
	close_fd(self, fd);

	/* STOP -> STOP_COPY and STOP -> RESUMING */
	mig_set(_metadata, self, dev, S_STOP, false);
	fd = mig_set(_metadata, self, dev, S_STOP_COPY, true);
	stream_read(_metadata, fd, b.b, LEN2, sizeof(b));
	expect_same_stream(_metadata, &a, &b, LEN2);
	mig_set(_metadata, self, dev, S_STOP, false);
	fd2 = mig_set(_metadata, self, dev, S_RESUMING, true);
	stream_write(_metadata, fd2, a.b, LEN2, sizeof(a));
	mig_set(_metadata, self, dev, S_STOP, false);
	close_fd(self, fd);
	close_fd(self, fd2);

	/* RUNNING_P2P -> PRE_COPY_P2P, then PRE_COPY_P2P -> STOP_COPY */
	mig_set(_metadata, self, dev, S_RUNNING_P2P, false);
	fd = mig_set(_metadata, self, dev, S_PRE_COPY_P2P, true);
	mig_set(_metadata, self, dev, S_STOP_COPY, false);
	stream_read(_metadata, fd, b.b, LEN2, sizeof(b));
	stream_eof(_metadata, fd);
	expect_same_stream(_metadata, &a, &b, LEN2);
	mig_set(_metadata, self, dev, S_RUNNING, false);
	close_fd(self, fd);
}

/*
 * Every arc of the state machine the uAPI lists for a device with
 * STOP_COPY | P2P | PRE_COPY, one SET each, GET after each.
 */
enum arc_act {
	ACT_NONE,
	ACT_READ,	/* read the whole stream of the current save fd */
	ACT_WRITE,	/* write the saved stream into the resume fd */
	ACT_ENDED,	/* the stream opened before has ended */
};

static const struct mig_arc {
	__u32 to;
	bool new_fd;
	enum arc_act act;
} mig_walk[] = {
	{ S_RUNNING_P2P,	false,	ACT_NONE },
	{ S_RUNNING,		false,	ACT_NONE },
	{ S_RUNNING_P2P,	false,	ACT_NONE },
	{ S_STOP,		false,	ACT_NONE },
	{ S_RUNNING_P2P,	false,	ACT_NONE },
	{ S_STOP,		false,	ACT_NONE },
	{ S_STOP_COPY,		true,	ACT_READ },
	{ S_STOP,		false,	ACT_ENDED },
	{ S_RESUMING,		true,	ACT_WRITE },
	{ S_STOP,		false,	ACT_ENDED },
	{ S_RUNNING_P2P,	false,	ACT_NONE },
	{ S_RUNNING,		false,	ACT_NONE },
	{ S_PRE_COPY,		true,	ACT_NONE },
	{ S_RUNNING,		false,	ACT_ENDED },
	{ S_PRE_COPY,		true,	ACT_NONE },
	{ S_PRE_COPY_P2P,	false,	ACT_NONE },
	{ S_PRE_COPY,		false,	ACT_NONE },
	{ S_PRE_COPY_P2P,	false,	ACT_NONE },
	{ S_RUNNING_P2P,	false,	ACT_ENDED },
	{ S_PRE_COPY_P2P,	true,	ACT_NONE },
	{ S_STOP_COPY,		false,	ACT_READ },
	{ S_STOP,		false,	ACT_ENDED },
	{ S_RUNNING_P2P,	false,	ACT_NONE },
	{ S_RUNNING,		false,	ACT_NONE },
};

TEST_F_TIMEOUT(mtty_mig, state_arcs, MDEV_TIMEOUT)
{
	union mig_buf saved, got;
	bool have_saved = false, save = false;
	int dev, fd = -1;
	unsigned int i;

	dev = mig_open(_metadata, self, variant, &self->src, self->src_uuid,
		       "mtty-2");
	program(_metadata, dev, 2);
	for (i = 0; i < ARRAY_SIZE(mig_walk); i++) {
		const struct mig_arc *a = &mig_walk[i];
		int nfd;

		nfd = mig_set(_metadata, self, dev, a->to, a->new_fd);
		if (nfd >= 0) {
			if (fd >= 0)
				close_fd(self, fd);
			fd = nfd;
			save = a->to != S_RESUMING;
		}
		switch (a->act) {
		case ACT_READ:
			stream_read(_metadata, fd, got.b, LEN2, RD_CHUNK);
			stream_eof(_metadata, fd);
			expect_programmed(_metadata, &got, 2);
			if (!have_saved)
				memcpy(&saved, &got, sizeof(saved));
			have_saved = true;
			break;
		case ACT_WRITE:
			ASSERT_TRUE(have_saved);
			stream_write(_metadata, fd, saved.b, LEN2, WR_CHUNK);
			break;
		case ACT_ENDED:
			stream_ended(_metadata, fd, save);
			close_fd(self, fd);
			fd = -1;
			break;
		case ACT_NONE:
			break;
		}
	}
	/* resuming its own stream kept the device's state */
	expect_uarts(_metadata, dev, 2);
}

/* arcs the uAPI forbids and states that do not exist */
TEST_F_TIMEOUT(mtty_mig, state_invalid, MDEV_TIMEOUT)
{
	static const __u32 bad[] = { S_ERROR, VFIO_DEVICE_STATE_NR, 1000,
				     0xffffffff };
	union mig_buf buf;
	unsigned int i;
	int dev, fd;

	dev = mig_open(_metadata, self, variant, &self->src, self->src_uuid,
		       "mtty-2");
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		mig_set_fail(_metadata, dev, bad[i], EINVAL);

	fd = mig_set(_metadata, self, dev, S_STOP_COPY, true);
	mig_set_fail(_metadata, dev, S_PRE_COPY, EINVAL);
	mig_set_fail(_metadata, dev, S_PRE_COPY_P2P, EINVAL);
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		mig_set_fail(_metadata, dev, bad[i], EINVAL);
	/* the stream survived the refused requests */
	stream_read(_metadata, fd, buf.b, LEN2, RD_CHUNK);
	stream_eof(_metadata, fd);
	expect_header(_metadata, &buf.s.hdr, 2);
	mig_set(_metadata, self, dev, S_RUNNING, false);
	close_fd(self, fd);

	fd = mig_set(_metadata, self, dev, S_PRE_COPY, true);
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		mig_set_fail(_metadata, dev, bad[i], EINVAL);
	mig_set(_metadata, self, dev, S_RUNNING, false);
	close_fd(self, fd);
}

/* the save stream: pre-copy part, stop-copy part, its end, its fd */
TEST_F_TIMEOUT(mtty_mig, save_stream, MDEV_TIMEOUT)
{
	struct vfio_precopy_info info;
	struct vfio_device_info dinfo;
	union mig_buf got;
	__u8 tmp[8];
	ssize_t n;
	int dev, fd;

	dev = mig_open(_metadata, self, variant, &self->src, self->src_uuid,
		       "mtty-2");
	program(_metadata, dev, 2);
	memset(&got, 0xee, sizeof(got));
	fd = mig_set(_metadata, self, dev, S_PRE_COPY, true);

	/* a stream: no positional I/O, no seeking, read only */
	ASSERT_EQ(-1, pread(fd, tmp, 1, 0));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(-1, pwrite(fd, tmp, 1, 0));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(-1, lseek(fd, 0, SEEK_SET));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(-1, write(fd, tmp, 1));
	ASSERT_EQ(EBADF, errno);

	/* pre-copy: the header is the initial data, nothing gets dirty */
	expect_precopy(_metadata, fd, MTTY_MIG_HDR_LEN);
	stream_read(_metadata, fd, got.b, 5, 5);
	expect_precopy(_metadata, fd, MTTY_MIG_HDR_LEN - 5);
	stream_read(_metadata, fd, got.b + 5, MTTY_MIG_HDR_LEN - 5, 7);
	expect_precopy(_metadata, fd, 0);
	expect_header(_metadata, &got.s.hdr, 2);

	/*
	 * The temporary end of a pre-copy stream: the uAPI asks for ENOMSG,
	 * which mtty_rs returns; the C mtty returns 0 (end of file).
	 */
	n = read(fd, tmp, sizeof(tmp));
	if (self->rust) {
		ASSERT_EQ(-1, n);
		ASSERT_EQ(ENOMSG, errno) {
			TH_LOG("read at the pre-copy end: %s", strerror(errno));
		}
	} else {
		ASSERT_EQ(0, n) {
			TH_LOG("read at the pre-copy end: %zd (%s)", n,
			       n < 0 ? strerror(errno) : "data");
		}
	}

	/* PRECOPY_INFO wants the whole struct; other ioctls are unknown */
	ASSERT_EQ(-EINVAL, precopy_info(fd, sizeof(info) - 1, &info));
	ASSERT_EQ(-EINVAL, precopy_info(fd, 0, &info));
	memset(&dinfo, 0, sizeof(dinfo));
	dinfo.argsz = sizeof(dinfo);
	ASSERT_EQ(-1, ioctl(fd, VFIO_DEVICE_GET_INFO, &dinfo));
	ASSERT_EQ(ENOTTY, errno);
	expect_precopy(_metadata, fd, 0);

	/* STOP_COPY continues the stream with the port records */
	mig_set(_metadata, self, dev, S_STOP_COPY, false);
	ASSERT_EQ(-EINVAL, precopy_info(fd, sizeof(info), &info)) {
		TH_LOG("VFIO_MIG_GET_PRECOPY_INFO in STOP_COPY");
	}
	stream_read(_metadata, fd, got.b + MTTY_MIG_HDR_LEN,
		    LEN2 - MTTY_MIG_HDR_LEN, RD_CHUNK);
	stream_eof(_metadata, fd);
	expect_programmed(_metadata, &got, 2);

	/* leaving STOP_COPY ends the stream */
	mig_set(_metadata, self, dev, S_STOP, false);
	stream_ended(_metadata, fd, true);
	close_fd(self, fd);
	mig_set(_metadata, self, dev, S_RUNNING, false);
	/* saving did not consume the FIFOs */
	expect_uarts(_metadata, dev, 2);
}

/* a programmed mtty-2 to a fresh one and back out, byte for byte */
TEST_F_TIMEOUT(mtty_mig, round_trip, MDEV_TIMEOUT)
{
	union mig_buf saved, resaved;
	__u8 b = 0;
	int src, dst, fd;

	src = mig_open(_metadata, self, variant, &self->src, self->src_uuid,
		       "mtty-2");
	dst = mig_open(_metadata, self, variant, &self->dst, self->dst_uuid,
		       "mtty-2");
	program(_metadata, src, 2);
	dev_save(_metadata, self, src, &saved, 2);
	expect_programmed(_metadata, &saved, 2);

	ASSERT_EQ(0, RD(dst, 0, UART_SCR));
	ASSERT_EQ(LSR_EMPTY, RD(dst, 1, UART_LSR));
	fd = mig_set(_metadata, self, dst, S_RESUMING, true);
	ASSERT_EQ(-1, pwrite(fd, &b, 1, 0));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(-1, read(fd, &b, 1));
	ASSERT_EQ(EBADF, errno);
	stream_write(_metadata, fd, saved.b, LEN2, WR_CHUNK);
	mig_set(_metadata, self, dst, S_STOP, false);
	stream_ended(_metadata, fd, false);
	close_fd(self, fd);
	mig_set(_metadata, self, dst, S_RUNNING, false);

	/* the destination streams what it was given */
	dev_save(_metadata, self, dst, &resaved, 2);
	expect_same_stream(_metadata, &saved, &resaved, LEN2);

	expect_uarts(_metadata, dst, 2);
	/* the source kept its state too */
	expect_uarts(_metadata, src, 2);
}

/* ------------------------------------------------------------------ */
/* Refused resume streams leave the destination as it was */

#define DST_SCR0	0x3c
#define DST_SCR1	0x96

/* a valid stream of a programmed source, and a destination with a mark */
static int resume_setup(struct __test_metadata *_metadata,
			FIXTURE_DATA(mtty_mig) *self,
			const FIXTURE_VARIANT(mtty_mig) *variant,
			union mig_buf *saved)
{
	int src, dst;

	src = mig_open(_metadata, self, variant, &self->src, self->src_uuid,
		       "mtty-2");
	dst = mig_open(_metadata, self, variant, &self->dst, self->dst_uuid,
		       "mtty-2");
	program(_metadata, src, 2);
	dev_save(_metadata, self, src, saved, 2);
	expect_programmed(_metadata, saved, 2);
	WR(dst, 0, UART_SCR, DST_SCR0);
	WR(dst, 1, UART_SCR, DST_SCR1);
	return dst;
}

/* after a refused stream: reset, RUNNING, the mark still there */
static void resume_unchanged(struct __test_metadata *_metadata,
			     FIXTURE_DATA(mtty_mig) *self, int dst, int fd)
{
	close_fd(self, fd);
	ASSERT_EQ(0, ioctl(dst, VFIO_DEVICE_RESET)) {
		TH_LOG("VFIO_DEVICE_RESET: %s", strerror(errno));
	}
	ASSERT_STATE(dst, S_RUNNING);
	mig_set(_metadata, self, dst, S_RUNNING, false);
	ASSERT_EQ(DST_SCR0, RD(dst, 0, UART_SCR));
	ASSERT_EQ(DST_SCR1, RD(dst, 1, UART_SCR));
	ASSERT_EQ(LSR_EMPTY, RD(dst, 0, UART_LSR));
	ASSERT_EQ(LSR_EMPTY, RD(dst, 1, UART_LSR));
	ASSERT_EQ(0, RD(dst, 0, UART_LCR));
	ASSERT_EQ(0, RD(dst, 1, UART_MCR));
}

/* fewer bytes than the stream: RESUMING -> STOP fails, still RESUMING */
TEST_F_TIMEOUT(mtty_mig, resume_truncated, MDEV_TIMEOUT)
{
	static const size_t lens[] = { 0, MTTY_MIG_HDR_LEN + 10, LEN2 - 1 };
	union mig_buf saved;
	unsigned int i;
	int dst, fd;

	dst = resume_setup(_metadata, self, variant, &saved);
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		TH_LOG("%zu of %u bytes", lens[i], LEN2);
		fd = mig_set(_metadata, self, dst, S_RESUMING, true);
		stream_write(_metadata, fd, saved.b, lens[i], WR_CHUNK);
		mig_set_fail(_metadata, dst, S_STOP, EINVAL);
		/* through STOP as well */
		mig_set_fail(_metadata, dst, S_RUNNING, EINVAL);
		ASSERT_STATE(dst, S_RESUMING);
		resume_unchanged(_metadata, self, dst, fd);
	}
}

/* more bytes than the stream: the write that goes past it fails ENOMEM */
TEST_F_TIMEOUT(mtty_mig, resume_too_long, MDEV_TIMEOUT)
{
	__u8 big[LEN2 + 1];
	union mig_buf saved;
	int dst, fd;

	dst = resume_setup(_metadata, self, variant, &saved);
	memcpy(big, saved.b, LEN2);
	big[LEN2] = 0;
	fd = mig_set(_metadata, self, dst, S_RESUMING, true);
	ASSERT_EQ(-1, write(fd, big, LEN2 + 1));
	ASSERT_EQ(ENOMEM, errno);
	stream_write(_metadata, fd, big, 90, 90);
	ASSERT_EQ(-1, write(fd, big + 90, 7));
	ASSERT_EQ(ENOMEM, errno);
	/* a refused write took nothing: the rest still fits exactly */
	stream_write(_metadata, fd, big + 90, 6, 6);
	ASSERT_EQ(-1, write(fd, big + LEN2, 1));
	ASSERT_EQ(ENOMEM, errno);
	ASSERT_STATE(dst, S_RESUMING);
	resume_unchanged(_metadata, self, dst, fd);
}

/*
 * A header of another device: bad magic, or one port for an mtty-2.  The
 * C mtty checks the header when a write() completes it and fails that
 * write with EFAULT; mtty_rs takes the bytes and fails RESUMING -> STOP
 * with EINVAL.
 */
TEST_F_TIMEOUT(mtty_mig, resume_bad_header, MDEV_TIMEOUT)
{
	union mig_buf saved, bad;
	unsigned int i;
	ssize_t n;
	int dst, fd;

	dst = resume_setup(_metadata, self, variant, &saved);
	for (i = 0; i < 2; i++) {
		memcpy(&bad, &saved, sizeof(bad));
		if (i == 0)
			bad.s.hdr.magic ^= 0x100;
		else
			bad.s.hdr.nr_ports = 1;
		TH_LOG("%s", i == 0 ? "bad magic" : "nr_ports 1");

		fd = mig_set(_metadata, self, dst, S_RESUMING, true);
		stream_write(_metadata, fd, bad.b, 13, 13);
		n = write(fd, bad.b + 13, MTTY_MIG_HDR_LEN - 13);
		if (self->rust) {
			ASSERT_EQ(MTTY_MIG_HDR_LEN - 13, n) {
				TH_LOG("write completing the header: %s",
				       n < 0 ? strerror(errno) : "short");
			}
			stream_write(_metadata, fd, bad.b + MTTY_MIG_HDR_LEN,
				     LEN2 - MTTY_MIG_HDR_LEN, WR_CHUNK);
			mig_set_fail(_metadata, dst, S_STOP, EINVAL);
		} else {
			ASSERT_EQ(-1, n);
			ASSERT_EQ(EFAULT, errno) {
				TH_LOG("write completing the header: %s",
				       strerror(errno));
			}
		}
		ASSERT_STATE(dst, S_RESUMING);
		resume_unchanged(_metadata, self, dst, fd);
	}
}

/*
 * Port records this driver could not have written: mtty_rs refuses them
 * (RESUMING -> STOP fails with EINVAL).  The C mtty trusts the records
 * and would index its FIFO out of bounds with them, so it is not fed any.
 */
TEST_F_TIMEOUT(mtty_mig, resume_bad_port, MDEV_TIMEOUT)
{
	static const struct {
		unsigned int port;
		size_t off;
		__u8 val;
		const char *what;
	} bad[] = {
		{ 0, offsetof(struct mtty_mig_port, head), 200, "head 200" },
		{ 1, offsetof(struct mtty_mig_port, count), 17, "count 17" },
		{ 1, offsetof(struct mtty_mig_port, dlab), 2, "dlab 2" },
	};
	union mig_buf saved, corrupt;
	unsigned int i;
	int dst, fd;

	dst = resume_setup(_metadata, self, variant, &saved);
	if (!self->rust) {
		/*
		 * The documented difference: the C mtty loads port records
		 * unchecked.  Only a harmless one is tried on it (DLAB 2 reads
		 * as set); a FIFO index past the FIFO would make its next
		 * FIFO access go out of bounds.
		 */
		memcpy(&corrupt, &saved, sizeof(corrupt));
		corrupt.s.port[1].dlab = 2;
		fd = mig_set(_metadata, self, dst, S_RESUMING, true);
		stream_write(_metadata, fd, corrupt.b, LEN2, WR_CHUNK);
		mig_set(_metadata, self, dst, S_STOP, false);
		ASSERT_STATE(dst, S_STOP);
		close_fd(self, fd);
		return;
	}
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		TH_LOG("port %u: %s", bad[i].port, bad[i].what);
		memcpy(&corrupt, &saved, sizeof(corrupt));
		((__u8 *)&corrupt.s.port[bad[i].port])[bad[i].off] = bad[i].val;
		fd = mig_set(_metadata, self, dst, S_RESUMING, true);
		stream_write(_metadata, fd, corrupt.b, LEN2, WR_CHUNK);
		mig_set_fail(_metadata, dst, S_STOP, EINVAL);
		ASSERT_STATE(dst, S_RESUMING);
		resume_unchanged(_metadata, self, dst, fd);
	}
	/* the stream they were made from loads */
	dev_load(_metadata, self, dst, saved.b, LEN2);
	expect_uarts(_metadata, dst, 2);
}

/* VFIO_DEVICE_RESET returns to RUNNING and ends the streams */
TEST_F_TIMEOUT(mtty_mig, reset_ends_streams, MDEV_TIMEOUT)
{
	union mig_buf saved;
	int dst, fd;

	dst = resume_setup(_metadata, self, variant, &saved);

	fd = mig_set(_metadata, self, dst, S_RESUMING, true);
	stream_write(_metadata, fd, saved.b, WR_CHUNK, WR_CHUNK);
	ASSERT_EQ(0, ioctl(dst, VFIO_DEVICE_RESET));
	ASSERT_STATE(dst, S_RUNNING);
	stream_ended(_metadata, fd, false);
	close_fd(self, fd);

	fd = mig_set(_metadata, self, dst, S_PRE_COPY, true);
	ASSERT_EQ(0, ioctl(dst, VFIO_DEVICE_RESET));
	ASSERT_STATE(dst, S_RUNNING);
	stream_ended(_metadata, fd, true);
	close_fd(self, fd);

	fd = mig_set(_metadata, self, dst, S_STOP_COPY, true);
	ASSERT_EQ(0, ioctl(dst, VFIO_DEVICE_RESET));
	ASSERT_STATE(dst, S_RUNNING);
	stream_ended(_metadata, fd, true);
	close_fd(self, fd);

	/* nothing was loaded, and a full stream loads after the reset */
	ASSERT_EQ(DST_SCR0, RD(dst, 0, UART_SCR));
	ASSERT_EQ(LSR_EMPTY, RD(dst, 0, UART_LSR));
	dev_load(_metadata, self, dst, saved.b, LEN2);
	expect_uarts(_metadata, dst, 2);
}

/* closing the device ends its save streams */
TEST_F_TIMEOUT(mtty_mig, close_device, MDEV_TIMEOUT)
{
	union mig_buf buf;
	int src, dst, pre, stop;

	src = mig_open(_metadata, self, variant, &self->src, self->src_uuid,
		       "mtty-2");
	dst = mig_open(_metadata, self, variant, &self->dst, self->dst_uuid,
		       "mtty-2");
	pre = mig_set(_metadata, self, src, S_PRE_COPY, true);
	stream_read(_metadata, pre, buf.b, 5, 5);
	stop = mig_set(_metadata, self, dst, S_STOP_COPY, true);
	stream_read(_metadata, stop, buf.b, 30, 30);

	mdev_vfio_close(&self->src);
	mdev_vfio_close(&self->dst);
	stream_ended(_metadata, pre, true);
	stream_ended(_metadata, stop, true);
	close_fd(self, pre);
	close_fd(self, stop);
}

TEST_HARNESS_MAIN
