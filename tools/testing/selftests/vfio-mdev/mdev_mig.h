/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VFIO migration v2 of the mtty sample, shared by mdev_mig_test and
 * mdev_mig_xfer: the save stream layout, the VFIO_DEVICE_FEATURE calls, and
 * the distinctive UART state both programs put into a device and expect
 * back.  Nothing in here depends on kselftest_harness.h: every helper
 * returns 0 or -errno.
 *
 * The stream is the C sample's struct mtty_data in native byte order (both
 * mtty implementations write it byte for byte): a 24-byte header, then, once
 * the device entered STOP_COPY, nr_ports 36-byte struct serial_port records
 * (samples/vfio-mdev/mtty.c, padding bytes zero).  In PRE_COPY only the
 * header is in the stream.
 */
#ifndef __MDEV_MIG_H
#define __MDEV_MIG_H

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/serial_reg.h>
#include <linux/types.h>
#include <linux/vfio.h>

/* BAR n of an mtty device is at file offset n << 40 */
#define MTTY_MIG_BAR(n)		((__u64)(n) << 40)

#define MTTY_MIG_MAGIC		0x7e9d09898c3e2c4eULL
#define MTTY_MIG_MAJOR		1
#define MTTY_MIG_MINOR		0
#define MTTY_MIG_FIFO_SIZE	16
#define MTTY_MIG_MAX_PORTS	2

#define MTTY_MIG_ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

/* struct mtty_data without its ports */
struct mtty_mig_header {
	__u64 magic;
	__u32 major;
	__u32 minor;
	__u32 nr_ports;
	__u32 flags;
};

/* struct serial_port, its struct rxtx inlined and its padding spelled out */
struct mtty_mig_port {
	__u8 uart_reg[8];
	__u8 fifo[MTTY_MIG_FIFO_SIZE];
	__u8 head;
	__u8 tail;
	__u8 count;
	__u8 dlab;		/* bool */
	__u8 overrun;		/* bool */
	__u8 pad0;
	__u16 divisor;
	__u8 fcr;
	__u8 max_fifo_size;
	__u8 intr_trigger_level;
	__u8 pad1;
};

struct mtty_mig_stream {
	struct mtty_mig_header hdr;
	struct mtty_mig_port port[MTTY_MIG_MAX_PORTS];
};

#define MTTY_MIG_HDR_LEN	24
#define MTTY_MIG_PORT_LEN	36
#define MTTY_MIG_LEN(nr)	(MTTY_MIG_HDR_LEN + MTTY_MIG_PORT_LEN * (nr))

_Static_assert(sizeof(struct mtty_mig_header) == MTTY_MIG_HDR_LEN,
	       "stream header");
_Static_assert(sizeof(struct mtty_mig_port) == MTTY_MIG_PORT_LEN,
	       "port record");
_Static_assert(offsetof(struct mtty_mig_port, head) == 24 &&
	       offsetof(struct mtty_mig_port, dlab) == 27 &&
	       offsetof(struct mtty_mig_port, divisor) == 30 &&
	       offsetof(struct mtty_mig_port, fcr) == 32 &&
	       offsetof(struct mtty_mig_port, intr_trigger_level) == 34,
	       "struct serial_port layout");
_Static_assert(offsetof(struct mtty_mig_stream, port) == MTTY_MIG_HDR_LEN &&
	       sizeof(struct mtty_mig_stream) ==
	       MTTY_MIG_LEN(MTTY_MIG_MAX_PORTS), "struct mtty_data layout");

static const char *const mtty_mig_state_names[] = {
	[VFIO_DEVICE_STATE_ERROR] = "ERROR",
	[VFIO_DEVICE_STATE_STOP] = "STOP",
	[VFIO_DEVICE_STATE_RUNNING] = "RUNNING",
	[VFIO_DEVICE_STATE_STOP_COPY] = "STOP_COPY",
	[VFIO_DEVICE_STATE_RESUMING] = "RESUMING",
	[VFIO_DEVICE_STATE_RUNNING_P2P] = "RUNNING_P2P",
	[VFIO_DEVICE_STATE_PRE_COPY] = "PRE_COPY",
	[VFIO_DEVICE_STATE_PRE_COPY_P2P] = "PRE_COPY_P2P",
};

static inline const char *mtty_mig_state_name(__u32 state)
{
	if (state < MTTY_MIG_ARRAY_LEN(mtty_mig_state_names))
		return mtty_mig_state_names[state];
	return "(invalid)";
}

/*
 * VFIO_DEVICE_FEATURE with size bytes of data and the given argsz (header
 * included).  data is copied back also on failure: a failed SET of
 * MIG_DEVICE_STATE reports data_fd -1.
 */
static inline int mtty_mig_feature_argsz(int fd, __u32 flags, void *data,
					 size_t size, __u32 argsz)
{
	__u64 buf[8];
	struct vfio_device_feature *f = (struct vfio_device_feature *)buf;
	int ret;

	if (sizeof(*f) + size > sizeof(buf))
		return -E2BIG;
	memset(buf, 0, sizeof(buf));
	f->argsz = argsz;
	f->flags = flags;
	if (size)
		memcpy(f->data, data, size);
	ret = ioctl(fd, VFIO_DEVICE_FEATURE, f) ? -errno : 0;
	if (size)
		memcpy(data, f->data, size);
	return ret;
}

static inline int mtty_mig_feature(int fd, __u32 flags, void *data,
				   size_t size)
{
	return mtty_mig_feature_argsz(fd, flags, data, size,
				      sizeof(struct vfio_device_feature) + size);
}

static inline int mtty_mig_get_state(int fd, __u32 *state)
{
	struct vfio_device_feature_mig_state st = { .data_fd = -2 };
	int ret;

	ret = mtty_mig_feature(fd, VFIO_DEVICE_FEATURE_GET |
			       VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			       &st, sizeof(st));
	*state = st.device_state;
	return ret;
}

/* SET MIG_DEVICE_STATE; *data_fd: the new stream's fd or -1 */
static inline int mtty_mig_set_state(int fd, __u32 state, int *data_fd)
{
	struct vfio_device_feature_mig_state st = {
		.device_state = state,
		.data_fd = -2,
	};
	int ret;

	ret = mtty_mig_feature(fd, VFIO_DEVICE_FEATURE_SET |
			       VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			       &st, sizeof(st));
	*data_fd = st.data_fd;
	return ret;
}

static inline int mtty_mig_data_size(int fd, __u64 *len)
{
	struct vfio_device_feature_mig_data_size ds = { 0 };
	int ret;

	ret = mtty_mig_feature(fd, VFIO_DEVICE_FEATURE_GET |
			       VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
			       &ds, sizeof(ds));
	*len = ds.stop_copy_length;
	return ret;
}

static inline int mtty_mig_uart_rd(int fd, unsigned int port,
				   unsigned int reg, __u8 *val)
{
	return pread(fd, val, 1, MTTY_MIG_BAR(port) + reg) == 1 ? 0 : -errno;
}

static inline int mtty_mig_uart_wr(int fd, unsigned int port,
				   unsigned int reg, __u8 val)
{
	return pwrite(fd, &val, 1, MTTY_MIG_BAR(port) + reg) == 1 ? 0 : -errno;
}

/*
 * The distinctive state of each port: FIFO control (enable and clear, plus
 * a trigger level that mtty records in fcr but does not use), a divisor
 * latched through DLAB, line control, modem control, interrupt enable (with
 * bits of the upper nibble, kept in the register but read back masked to
 * 0x0f) and scratch, and MTTY_MIG_TX_LEN bytes written to THR that wait in
 * the loop-back FIFO.  MCR is written before IER and IER enables neither
 * RDI nor THRI, so programming raises no interrupt.
 */
#define MTTY_MIG_TX_LEN		5

struct mtty_mig_prog {
	__u8 fcr;
	__u8 dll;
	__u8 dlm;
	__u8 lcr;
	__u8 mcr;
	__u8 ier;
	__u8 scr;
	__u8 tx[MTTY_MIG_TX_LEN];
};

#define MTTY_MIG_FCR_RESET	(UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | \
				 UART_FCR_CLEAR_XMIT)

static const struct mtty_mig_prog mtty_mig_prog[MTTY_MIG_MAX_PORTS] = {
	{
		.fcr = MTTY_MIG_FCR_RESET | UART_FCR_TRIGGER_8,	/* 0x87 */
		.dll = 0x0c,
		.dlm = 0x01,
		.lcr = UART_LCR_WLEN8 | UART_LCR_STOP,		/* 0x07 */
		.mcr = UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2, /* 0x0b */
		.ier = 0xa0 | UART_IER_MSI | UART_IER_RLSI,	/* 0xac */
		.scr = 0x5a,
		.tx = { 'm', 't', 0x00, 0xff, 'y' },
	},
	{
		.fcr = MTTY_MIG_FCR_RESET | UART_FCR_TRIGGER_4,	/* 0x47 */
		.dll = 0x30,
		.dlm = 0x02,
		.lcr = UART_LCR_WLEN7 | UART_LCR_PARITY | UART_LCR_EPAR, /* 0x1a */
		.mcr = UART_MCR_RTS | UART_MCR_OUT1,		/* 0x06 */
		.ier = 0x50 | UART_IER_RLSI,			/* 0x54 */
		.scr = 0xc3,
		.tx = { 'P', '1', 0x80, 0x7f, 0x01 },
	},
};

/* Put mtty_mig_prog[] into ports 0..nr_ports-1 of a RUNNING device */
static inline int mtty_mig_program(int fd, unsigned int nr_ports)
{
	unsigned int p, i;
	int ret = 0;

	for (p = 0; p < nr_ports && !ret; p++) {
		const struct mtty_mig_prog *g = &mtty_mig_prog[p];

		ret = mtty_mig_uart_wr(fd, p, UART_FCR, g->fcr);
		if (!ret)
			ret = mtty_mig_uart_wr(fd, p, UART_LCR,
					       UART_LCR_DLAB | g->lcr);
		if (!ret)
			ret = mtty_mig_uart_wr(fd, p, UART_DLL, g->dll);
		if (!ret)
			ret = mtty_mig_uart_wr(fd, p, UART_DLM, g->dlm);
		if (!ret)
			ret = mtty_mig_uart_wr(fd, p, UART_LCR, g->lcr);
		if (!ret)
			ret = mtty_mig_uart_wr(fd, p, UART_MCR, g->mcr);
		if (!ret)
			ret = mtty_mig_uart_wr(fd, p, UART_IER, g->ier);
		if (!ret)
			ret = mtty_mig_uart_wr(fd, p, UART_SCR, g->scr);
		for (i = 0; i < MTTY_MIG_TX_LEN && !ret; i++)
			ret = mtty_mig_uart_wr(fd, p, UART_TX, g->tx[i]);
	}
	return ret;
}

/* The record of a port of a new device: only the FIFO size is set */
static inline void mtty_mig_fresh_port(struct mtty_mig_port *r)
{
	memset(r, 0, sizeof(*r));
	r->max_fifo_size = MTTY_MIG_FIFO_SIZE;
}

/*
 * The record of port p after mtty_mig_program() on a new device, as mtty's
 * handle_bar_write() builds it: uart_reg[] holds IER (unmasked), LCR, MCR
 * and SCR and nothing at RX/IIR/LSR/MSR, setting DLAB cleared the divisor
 * before DLL/DLM were or-ed in, every FCR write sets the trigger level to 1.
 */
static inline void mtty_mig_expect_port(struct mtty_mig_port *r,
					unsigned int p)
{
	const struct mtty_mig_prog *g = &mtty_mig_prog[p];

	mtty_mig_fresh_port(r);
	r->uart_reg[UART_IER] = g->ier;
	r->uart_reg[UART_LCR] = g->lcr;
	r->uart_reg[UART_MCR] = g->mcr;
	r->uart_reg[UART_SCR] = g->scr;
	memcpy(r->fifo, g->tx, MTTY_MIG_TX_LEN);
	r->head = MTTY_MIG_TX_LEN;
	r->tail = 0;
	r->count = MTTY_MIG_TX_LEN;
	r->divisor = g->dll | g->dlm << 8;
	r->fcr = g->fcr;
	r->intr_trigger_level = 1;
}

static inline void mtty_mig_expect_header(struct mtty_mig_header *h,
					  unsigned int nr_ports)
{
	memset(h, 0, sizeof(*h));
	h->magic = MTTY_MIG_MAGIC;
	h->major = MTTY_MIG_MAJOR;
	h->minor = MTTY_MIG_MINOR;
	h->nr_ports = nr_ports;
}

/* The whole stream of a programmed device; returns its length */
static inline size_t mtty_mig_expect_stream(struct mtty_mig_stream *s,
					    unsigned int nr_ports)
{
	unsigned int p;

	memset(s, 0, sizeof(*s));
	mtty_mig_expect_header(&s->hdr, nr_ports);
	for (p = 0; p < nr_ports; p++)
		mtty_mig_expect_port(&s->port[p], p);
	return MTTY_MIG_LEN(nr_ports);
}

#endif /* __MDEV_MIG_H */
