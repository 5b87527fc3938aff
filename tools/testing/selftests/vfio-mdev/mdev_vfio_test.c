// SPDX-License-Identifier: GPL-2.0
/*
 * VFIO access to mdevs through both paths: the group/container path
 * (/dev/vfio/vfio + /dev/vfio/N, type1) and the iommufd cdev path
 * (/dev/vfio/devices/vfioM + /dev/iommu).  Every fixture has one variant
 * per path and runs the same checks on both.
 *
 *  vfio:       device/region/irq info and PCI config space of every sample
 *  mtty_uart:  the mtty 16550 emulation, loop-back FIFO and interrupts
 *  mdpy_dev:   mdpy display plane, BAR sizing, reset
 *  mbochs_dev: mbochs dispi registers, EDID region, BAR sizing, reset
 *
 * Expected values come from samples/vfio-mdev/{mtty,mdpy,mbochs}.c (read in
 * 6.12, re-checked on 7.3.4; since 7.x the VFIO core answers
 * GET_REGION_INFO around the samples' get_region_info_caps).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <linux/serial_reg.h>
#include <linux/vfio.h>

#include "mdev_harness.h"

#define MTTY_REGION(i)		((__u64)(i) << 40)
#define MTTY_CFG		MTTY_REGION(VFIO_PCI_CONFIG_REGION_INDEX)

/* 16550 registers as mtty decodes them (offset within the BAR) */
#define REG_RBR_THR	UART_RX
#define REG_IER		UART_IER
#define REG_IIR_FCR	UART_IIR
#define REG_LCR		UART_LCR
#define REG_MCR		UART_MCR
#define REG_LSR		UART_LSR
#define REG_MSR		UART_MSR
#define REG_SCR		UART_SCR

#define FCR_RESET_FIFO	(UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | \
			 UART_FCR_CLEAR_XMIT)
#define LSR_EMPTY	(UART_LSR_TEMT | UART_LSR_THRE)		/* 0x60 */
#define IIR_NONE	(0xc0 | UART_IIR_NO_INT)		/* 0xc1 */
#define MSR_IDLE	(UART_MSR_DCD | UART_MSR_DSR | UART_MSR_DDSR | \
			 UART_MSR_CTS | UART_MSR_DCTS)		/* 0xb3 */

#define EVENT_TIMEOUT_MS	5000
#define NO_EVENT_MS		300

static __u32 le_val(const __u8 *p, unsigned int width)
{
	__u32 v = 0;
	unsigned int i;

	for (i = 0; i < width; i++)
		v |= (__u32)p[i] << (8 * i);
	return v;
}

static void cfg_read(struct __test_metadata *_metadata, int fd, __u64 base,
		     unsigned int off, void *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len, base + off);

	ASSERT_EQ((ssize_t)len, n) {
		TH_LOG("pread config 0x%x+%zu: %s", off, len, strerror(errno));
	}
}

static __u32 cfg_read32(struct __test_metadata *_metadata, int fd, __u64 base,
			unsigned int off)
{
	__u8 b[4];

	cfg_read(_metadata, fd, base, off, b, 4);
	return le_val(b, 4);
}

static void cfg_write(struct __test_metadata *_metadata, int fd, __u64 base,
		      unsigned int off, __u32 val, size_t len)
{
	__u8 b[4] = { val, val >> 8, val >> 16, val >> 24 };
	ssize_t n = pwrite(fd, b, len, base + off);

	ASSERT_EQ((ssize_t)len, n) {
		TH_LOG("pwrite config 0x%x+%zu: %s", off, len, strerror(errno));
	}
}

static void region_info(struct __test_metadata *_metadata, int fd,
			__u32 index, struct vfio_region_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	ri->argsz = sizeof(*ri);
	ri->index = index;
	ASSERT_EQ(0, ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, ri)) {
		TH_LOG("VFIO_DEVICE_GET_REGION_INFO(%u): %s", index,
		       strerror(errno));
	}
}

/* ------------------------------------------------------------------ */

FIXTURE(vfio) {
	const struct mdev_sample_desc *s;
	struct mdev_tracker t;
	struct mdev_vfio v;
	char uuid[MDEV_UUID_LEN + 1];
	struct vfio_device_info info;
};

FIXTURE_VARIANT(vfio) {
	const char *sample;
	enum mdev_vfio_path path;
};

FIXTURE_VARIANT_ADD(vfio, mtty_group) { "mtty", MDEV_VFIO_GROUP };
FIXTURE_VARIANT_ADD(vfio, mtty_cdev) { "mtty", MDEV_VFIO_CDEV };
FIXTURE_VARIANT_ADD(vfio, mdpy_group) { "mdpy", MDEV_VFIO_GROUP };
FIXTURE_VARIANT_ADD(vfio, mdpy_cdev) { "mdpy", MDEV_VFIO_CDEV };
FIXTURE_VARIANT_ADD(vfio, mbochs_group) { "mbochs", MDEV_VFIO_GROUP };
FIXTURE_VARIANT_ADD(vfio, mbochs_cdev) { "mbochs", MDEV_VFIO_CDEV };

FIXTURE_SETUP(vfio)
{
	self->t.n = 0;
	mdev_vfio_init(&self->v);
	self->s = mdev_setup_sample(_metadata, variant->sample);
}

FIXTURE_TEARDOWN(vfio)
{
	mdev_vfio_close(&self->v);
	mdev_cleanup(&self->t);
}

/* create an mdev of the sample's first type and open it */
static void vfio_open_dev(struct __test_metadata *_metadata,
			  FIXTURE_DATA(vfio) *self,
			  const FIXTURE_VARIANT(vfio) *variant)
{
	mdev_new(_metadata, &self->t, self->s, self->s->types[0].id,
		 self->uuid);
	mdev_vfio_open(_metadata, &self->v, self->uuid, variant->path);
	mdev_vfio_info(_metadata, self->v.device, &self->info);
}

/* path specific open semantics */
TEST_F_TIMEOUT(vfio, open_device, MDEV_TIMEOUT)
{
	char upper[MDEV_UUID_LEN + 1], other[MDEV_UUID_LEN + 1];

	vfio_open_dev(_metadata, self, variant);
	if (variant->path == MDEV_VFIO_GROUP) {
		/* the device name is matched exactly (lower case %pUl) */
		mdev_str_upper(upper, self->uuid, sizeof(upper));
		ASSERT_EQ(-1, ioctl(self->v.group, VFIO_GROUP_GET_DEVICE_FD,
				    upper));
		ASSERT_EQ(ENODEV, errno);
		ASSERT_EQ(0, mdev_uuid_gen(other));
		ASSERT_EQ(-1, ioctl(self->v.group, VFIO_GROUP_GET_DEVICE_FD,
				    other));
		ASSERT_EQ(ENODEV, errno);
	} else {
		struct vfio_device_bind_iommufd bind = {
			.argsz = sizeof(bind),
			.iommufd = self->v.iommufd,
		};

		/* a cdev fd binds once */
		ASSERT_EQ(-1, ioctl(self->v.device, VFIO_DEVICE_BIND_IOMMUFD,
				    &bind));
		ASSERT_EQ(EINVAL, errno);
	}
}

TEST_F_TIMEOUT(vfio, device_info, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;

	vfio_open_dev(_metadata, self, variant);
	ASSERT_EQ(s->vfio_flags, self->info.flags) {
		TH_LOG("flags 0x%x (PCI=0x%x RESET=0x%x)", self->info.flags,
		       VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET);
	}
	ASSERT_EQ(s->num_regions, self->info.num_regions);
	ASSERT_EQ(s->num_irqs, self->info.num_irqs);
	/* the samples copy back up to num_irqs only */
	ASSERT_EQ(sizeof(self->info), self->info.argsz);
	ASSERT_EQ(0, self->info.cap_offset);
}

TEST_F_TIMEOUT(vfio, region_info, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	unsigned int i;

	vfio_open_dev(_metadata, self, variant);
	for (i = 0; i < s->nr_regions; i++) {
		const struct mdev_region_desc *r = &s->regions[i];
		struct vfio_region_info ri = {
			.argsz = sizeof(ri),
			.index = r->index,
		};
		int ret;

		ret = ioctl(self->v.device, VFIO_DEVICE_GET_REGION_INFO, &ri);
		if (r->err) {
			ASSERT_EQ(-1, ret) {
				TH_LOG("region %u should fail", r->index);
			}
			ASSERT_EQ(r->err, errno);
			continue;
		}
		ASSERT_EQ(0, ret) {
			TH_LOG("region %u: %s", r->index, strerror(errno));
		}
		ASSERT_EQ(r->offset, ri.offset) {
			TH_LOG("region %u offset", r->index);
		}
		ASSERT_EQ(r->size, ri.size) {
			TH_LOG("region %u size", r->index);
		}
		ASSERT_EQ(r->flags, ri.flags) {
			TH_LOG("region %u flags", r->index);
		}
	}
}

TEST_F_TIMEOUT(vfio, irq_info, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	unsigned int i;

	vfio_open_dev(_metadata, self, variant);
	for (i = 0; i < s->nr_irqs; i++) {
		const struct mdev_irq_desc *q = &s->irqs[i];
		struct vfio_irq_info ii = {
			.argsz = sizeof(ii),
			.index = q->index,
		};
		int ret;

		ret = ioctl(self->v.device, VFIO_DEVICE_GET_IRQ_INFO, &ii);
		if (q->err) {
			ASSERT_EQ(-1, ret) {
				TH_LOG("irq index %u should fail", q->index);
			}
			ASSERT_EQ(q->err, errno);
			continue;
		}
		ASSERT_EQ(0, ret) {
			TH_LOG("irq index %u: %s", q->index, strerror(errno));
		}
		ASSERT_EQ(q->count, ii.count) {
			TH_LOG("irq index %u count", q->index);
		}
		ASSERT_EQ(q->flags, ii.flags) {
			TH_LOG("irq index %u flags", q->index);
		}
	}
}

TEST_F_TIMEOUT(vfio, config_space, MDEV_TIMEOUT)
{
	const struct mdev_sample_desc *s = self->s;
	struct vfio_region_info ri;
	__u8 cfg[0x80];
	unsigned int i;

	vfio_open_dev(_metadata, self, variant);
	region_info(_metadata, self->v.device, VFIO_PCI_CONFIG_REGION_INDEX,
		    &ri);
	ASSERT_EQ(s->config_offset, ri.offset);
	ASSERT_EQ(0xff, ri.size);

	memset(cfg, 0xee, sizeof(cfg));
	cfg_read(_metadata, self->v.device, s->config_offset, 0, cfg,
		 sizeof(cfg));
	for (i = 0; i < s->nr_config; i++) {
		const struct mdev_cfg_desc *c = &s->config[i];

		ASSERT_EQ(c->value, le_val(cfg + c->offset, c->width)) {
			TH_LOG("config 0x%02x (%u bytes)", c->offset, c->width);
		}
	}
}

/* none of the samples advertises VFIO_DEVICE_FLAGS_RESET, reset works */
TEST_F_TIMEOUT(vfio, reset, MDEV_TIMEOUT)
{
	vfio_open_dev(_metadata, self, variant);
	ASSERT_EQ(0, self->info.flags & VFIO_DEVICE_FLAGS_RESET);
	ASSERT_EQ(0, ioctl(self->v.device, VFIO_DEVICE_RESET)) {
		TH_LOG("VFIO_DEVICE_RESET: %s", strerror(errno));
	}
}

/*
 * SET_IRQS: mdpy and mbochs reject every request with EINVAL; mtty accepts
 * INTx/MSI eventfds and returns ENOTTY for MSI-X, ERR and REQ.
 */
TEST_F_TIMEOUT(vfio, set_irqs, MDEV_TIMEOUT)
{
	bool has_irqs = self->s->irqs[0].count != 0;
	int efd, ret;

	vfio_open_dev(_metadata, self, variant);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	ret = mdev_set_irq_eventfd(self->v.device, VFIO_PCI_INTX_IRQ_INDEX, efd);
	ASSERT_EQ(has_irqs ? 0 : -EINVAL, ret);
	if (has_irqs) {
		ASSERT_EQ(0, mdev_set_irq_none(self->v.device,
					  VFIO_PCI_INTX_IRQ_INDEX,
					  VFIO_IRQ_SET_ACTION_TRIGGER, 0));
		ret = mdev_set_irq_eventfd(self->v.device, VFIO_PCI_MSIX_IRQ_INDEX,
				      efd);
		ASSERT_EQ(-ENOTTY, ret);
		ret = mdev_set_irq_eventfd(self->v.device, VFIO_PCI_ERR_IRQ_INDEX,
				      efd);
		ASSERT_EQ(-ENOTTY, ret);
		ret = mdev_set_irq_eventfd(self->v.device, VFIO_PCI_REQ_IRQ_INDEX,
				      efd);
		ASSERT_EQ(-ENOTTY, ret);
	}
	/* index out of range: rejected by vfio_set_irqs_validate_and_prepare */
	ret = mdev_set_irq_eventfd(self->v.device, VFIO_PCI_NUM_IRQS, efd);
	ASSERT_EQ(-EINVAL, ret);
	close(efd);
}

/* ------------------------------------------------------------------ */

FIXTURE(mtty_uart) {
	const struct mdev_sample_desc *s;
	struct mdev_tracker t;
	struct mdev_vfio v;
	char uuid[MDEV_UUID_LEN + 1];
	int fd;
	int efd;
};

FIXTURE_VARIANT(mtty_uart) {
	enum mdev_vfio_path path;
};

FIXTURE_VARIANT_ADD(mtty_uart, group) { MDEV_VFIO_GROUP };
FIXTURE_VARIANT_ADD(mtty_uart, cdev) { MDEV_VFIO_CDEV };

FIXTURE_SETUP(mtty_uart)
{
	self->t.n = 0;
	self->fd = -1;
	self->efd = -1;
	mdev_vfio_init(&self->v);
	self->s = mdev_setup_sample(_metadata, "mtty");
}

FIXTURE_TEARDOWN(mtty_uart)
{
	if (self->efd >= 0)
		close(self->efd);
	mdev_vfio_close(&self->v);
	mdev_cleanup(&self->t);
}

/* a dual port mtty (mtty-2: BAR0 and BAR1), opened, GET_INFO done */
static void uart_open(struct __test_metadata *_metadata,
		      FIXTURE_DATA(mtty_uart) *self,
		      const FIXTURE_VARIANT(mtty_uart) *variant)
{
	struct vfio_device_info info;

	mdev_new(_metadata, &self->t, self->s, "mtty-2", self->uuid);
	mdev_vfio_open(_metadata, &self->v, self->uuid, variant->path);
	self->fd = self->v.device;
	mdev_vfio_info(_metadata, self->fd, &info);
	ASSERT_EQ(VFIO_DEVICE_FLAGS_PCI, info.flags);
}

static __u8 uart_rd(struct __test_metadata *_metadata, int fd,
		    unsigned int port, unsigned int reg)
{
	__u8 val = 0;
	ssize_t n = pread(fd, &val, 1, MTTY_REGION(port) + reg);

	ASSERT_EQ(1, n) {
		TH_LOG("pread port %u reg %u: %s", port, reg, strerror(errno));
	}
	return val;
}

static void uart_wr(struct __test_metadata *_metadata, int fd,
		    unsigned int port, unsigned int reg, __u8 val)
{
	ssize_t n = pwrite(fd, &val, 1, MTTY_REGION(port) + reg);

	ASSERT_EQ(1, n) {
		TH_LOG("pwrite port %u reg %u: %s", port, reg, strerror(errno));
	}
}

#define RD(port, reg)		uart_rd(_metadata, self->fd, port, reg)
#define WR(port, reg, val)	uart_wr(_metadata, self->fd, port, reg, val)

TEST_F_TIMEOUT(mtty_uart, bar_regions, MDEV_TIMEOUT)
{
	struct vfio_region_info ri;
	unsigned int i;

	uart_open(_metadata, self, variant);
	for (i = 0; i < 2; i++) {
		region_info(_metadata, self->fd, i, &ri);
		ASSERT_EQ(MTTY_REGION(i), ri.offset);
		ASSERT_EQ(8, ri.size);
		ASSERT_EQ(VFIO_REGION_INFO_FLAG_READ |
			  VFIO_REGION_INFO_FLAG_WRITE, ri.flags);
	}
	region_info(_metadata, self->fd, 2, &ri);
	ASSERT_EQ(0, ri.size);
	/* both BARs are I/O BARs in config space */
	ASSERT_EQ(0x00000001, cfg_read32(_metadata, self->fd, MTTY_CFG, 0x10));
	ASSERT_EQ(0x00000001, cfg_read32(_metadata, self->fd, MTTY_CFG, 0x14));
}

/* reset values and simple read/write registers */
TEST_F_TIMEOUT(mtty_uart, registers, MDEV_TIMEOUT)
{
	unsigned int p;

	uart_open(_metadata, self, variant);
	for (p = 0; p < 2; p++) {
		ASSERT_EQ(0x00, RD(p, REG_IER));
		ASSERT_EQ(IIR_NONE, RD(p, REG_IIR_FCR));
		ASSERT_EQ(0x00, RD(p, REG_LCR));
		ASSERT_EQ(0x00, RD(p, REG_MCR));
		ASSERT_EQ(LSR_EMPTY, RD(p, REG_LSR));
		ASSERT_EQ(MSR_IDLE, RD(p, REG_MSR));
		ASSERT_EQ(0x00, RD(p, REG_SCR));

		WR(p, REG_LCR, UART_LCR_WLEN8);
		ASSERT_EQ(UART_LCR_WLEN8, RD(p, REG_LCR));
		WR(p, REG_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
		ASSERT_EQ(UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2,
			  RD(p, REG_MCR));
		WR(p, REG_SCR, 0x5a + p);
		ASSERT_EQ(0x5a + p, RD(p, REG_SCR));
		/* IER reads back masked to the low nibble */
		WR(p, REG_IER, 0xf5);
		ASSERT_EQ(0x05, RD(p, REG_IER));
		WR(p, REG_IER, 0x00);
		ASSERT_EQ(0x00, RD(p, REG_IER));
		/* MSR and LSR ignore writes */
		WR(p, REG_LSR, 0xff);
		ASSERT_EQ(LSR_EMPTY, RD(p, REG_LSR));
		WR(p, REG_MSR, 0x00);
		ASSERT_EQ(MSR_IDLE, RD(p, REG_MSR));
		/* with auto flow control and room in the FIFO CTS stays set */
		WR(p, REG_MCR, UART_MCR_AFE);
		ASSERT_EQ(MSR_IDLE, RD(p, REG_MSR));
	}
	/* the two ports are independent */
	ASSERT_EQ(0x5a, RD(0, REG_SCR));
	ASSERT_EQ(0x5b, RD(1, REG_SCR));
}

/* DLAB: offsets 0/1 become the divisor latch */
TEST_F_TIMEOUT(mtty_uart, divisor_latch, MDEV_TIMEOUT)
{
	uart_open(_metadata, self, variant);
	WR(0, REG_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
	ASSERT_EQ(UART_LCR_DLAB | UART_LCR_WLEN8, RD(0, REG_LCR));
	ASSERT_EQ(0x00, RD(0, REG_RBR_THR));
	ASSERT_EQ(0x00, RD(0, REG_IER));
	WR(0, REG_RBR_THR, 0x0c);
	WR(0, REG_IER, 0x01);
	ASSERT_EQ(0x0c, RD(0, REG_RBR_THR));
	ASSERT_EQ(0x01, RD(0, REG_IER));
	/* divisor writes did not reach the FIFO or IER */
	WR(0, REG_LCR, UART_LCR_WLEN8);
	ASSERT_EQ(LSR_EMPTY, RD(0, REG_LSR));
	ASSERT_EQ(0x00, RD(0, REG_IER));
	/* setting DLAB again clears the latch */
	WR(0, REG_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
	ASSERT_EQ(0x00, RD(0, REG_RBR_THR));
	ASSERT_EQ(0x00, RD(0, REG_IER));
	WR(0, REG_LCR, UART_LCR_WLEN8);
}

/* THR -> loop-back FIFO -> RBR, in order, per port */
TEST_F_TIMEOUT(mtty_uart, loopback, MDEV_TIMEOUT)
{
	static const char msg0[] = "Hello, mdev";
	static const char msg1[] = "port1";
	unsigned int i;

	uart_open(_metadata, self, variant);
	WR(0, REG_LCR, UART_LCR_WLEN8);
	WR(0, REG_MCR, UART_MCR_DTR | UART_MCR_RTS);
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(1, REG_IIR_FCR, FCR_RESET_FIFO);
	ASSERT_EQ(LSR_EMPTY, RD(0, REG_LSR));

	for (i = 0; i < strlen(msg0); i++) {
		WR(0, REG_RBR_THR, msg0[i]);
		/* data ready, transmitter not empty */
		ASSERT_EQ(UART_LSR_DR, RD(0, REG_LSR));
	}
	for (i = 0; i < strlen(msg1); i++)
		WR(1, REG_RBR_THR, msg1[i]);
	ASSERT_EQ(UART_LSR_DR, RD(1, REG_LSR));
	/* no interrupt enabled: IIR reports none pending */
	ASSERT_EQ(IIR_NONE, RD(0, REG_IIR_FCR));

	for (i = 0; i < strlen(msg0); i++) {
		ASSERT_EQ(UART_LSR_DR, RD(0, REG_LSR));
		ASSERT_EQ((__u8)msg0[i], RD(0, REG_RBR_THR)) {
			TH_LOG("byte %u of port 0", i);
		}
	}
	ASSERT_EQ(LSR_EMPTY, RD(0, REG_LSR));
	ASSERT_EQ(UART_LSR_DR, RD(1, REG_LSR));
	for (i = 0; i < strlen(msg1); i++) {
		ASSERT_EQ((__u8)msg1[i], RD(1, REG_RBR_THR)) {
			TH_LOG("byte %u of port 1", i);
		}
	}
	ASSERT_EQ(LSR_EMPTY, RD(1, REG_LSR));

	/* FCR clear drops pending bytes */
	WR(0, REG_RBR_THR, 'x');
	ASSERT_EQ(UART_LSR_DR, RD(0, REG_LSR));
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	ASSERT_EQ(LSR_EMPTY, RD(0, REG_LSR));
}

/*
 * The 16 byte FIFO.  mtty keeps head/tail in a 16 entry ring and tests
 * "data ready" as head != tail, so a completely full FIFO reads as empty
 * (LSR 0x60); the 17th byte is dropped and sets the overrun bit, which
 * stays set until the next byte is accepted (FCR does not clear it).
 */
TEST_F_TIMEOUT(mtty_uart, fifo_overflow, MDEV_TIMEOUT)
{
	unsigned int i;

	uart_open(_metadata, self, variant);
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);

	for (i = 0; i < 15; i++)
		WR(0, REG_RBR_THR, 'a' + i);
	ASSERT_EQ(UART_LSR_DR, RD(0, REG_LSR));
	for (i = 0; i < 15; i++) {
		ASSERT_EQ('a' + i, RD(0, REG_RBR_THR)) {
			TH_LOG("byte %u", i);
		}
	}
	ASSERT_EQ(LSR_EMPTY, RD(0, REG_LSR));

	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	for (i = 0; i < 16; i++)
		WR(0, REG_RBR_THR, 'A' + i);
	ASSERT_EQ(LSR_EMPTY, RD(0, REG_LSR)) {
		TH_LOG("16 bytes queued: mtty reports a full FIFO as empty");
	}
	WR(0, REG_RBR_THR, '!');
	ASSERT_EQ(LSR_EMPTY | UART_LSR_OE, RD(0, REG_LSR));
	ASSERT_EQ(IIR_NONE, RD(0, REG_IIR_FCR));

	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	ASSERT_EQ(LSR_EMPTY | UART_LSR_OE, RD(0, REG_LSR));
	WR(0, REG_RBR_THR, 'z');
	ASSERT_EQ(UART_LSR_DR, RD(0, REG_LSR));
	ASSERT_EQ('z', RD(0, REG_RBR_THR));
	ASSERT_EQ(LSR_EMPTY, RD(0, REG_LSR));
}

/* without FCR_ENABLE_FIFO the FIFO holds a single byte */
TEST_F_TIMEOUT(mtty_uart, fifo_disabled, MDEV_TIMEOUT)
{
	uart_open(_metadata, self, variant);
	WR(0, REG_IIR_FCR, UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
	WR(0, REG_RBR_THR, '1');
	ASSERT_EQ(UART_LSR_DR, RD(0, REG_LSR));
	WR(0, REG_RBR_THR, '2');
	ASSERT_EQ(UART_LSR_DR | UART_LSR_OE, RD(0, REG_LSR));
	ASSERT_EQ('1', RD(0, REG_RBR_THR));
	ASSERT_EQ(LSR_EMPTY | UART_LSR_OE, RD(0, REG_LSR));
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
}

/* config space writes: BAR sizing, interrupt line, read-only fields */
TEST_F_TIMEOUT(mtty_uart, config_write, MDEV_TIMEOUT)
{
	int fd;

	uart_open(_metadata, self, variant);
	fd = self->fd;
	cfg_write(_metadata, fd, MTTY_CFG, 0x10, 0xffffffff, 4);
	ASSERT_EQ(0xfffffff9, cfg_read32(_metadata, fd, MTTY_CFG, 0x10));
	cfg_write(_metadata, fd, MTTY_CFG, 0x10, 0x0000c000, 4);
	ASSERT_EQ(0x0000c001, cfg_read32(_metadata, fd, MTTY_CFG, 0x10));
	cfg_write(_metadata, fd, MTTY_CFG, 0x14, 0xffffffff, 4);
	ASSERT_EQ(0xfffffff9, cfg_read32(_metadata, fd, MTTY_CFG, 0x14));
	cfg_write(_metadata, fd, MTTY_CFG, 0x18, 0xffffffff, 4);
	ASSERT_EQ(0, cfg_read32(_metadata, fd, MTTY_CFG, 0x18));

	cfg_write(_metadata, fd, MTTY_CFG, 0x3c, 0x0a, 1);
	cfg_write(_metadata, fd, MTTY_CFG, 0x3d, 0x04, 1);
	ASSERT_EQ(0x010a, cfg_read32(_metadata, fd, MTTY_CFG, 0x3c) & 0xffff);
	cfg_write(_metadata, fd, MTTY_CFG, 0x04, 0x0007, 2);
	ASSERT_EQ(0x02000001, cfg_read32(_metadata, fd, MTTY_CFG, 0x04));
	ASSERT_EQ(0x32534348, cfg_read32(_metadata, fd, MTTY_CFG, 0x00));
}

/*
 * INTx: no event without IER, an event when the receive FIFO reaches the
 * trigger level (1 after any FCR write) with IER.RDI, automasked until
 * VFIO_IRQ_SET_ACTION_UNMASK, disabled with count 0.
 */
TEST_F_TIMEOUT(mtty_uart, intx, MDEV_TIMEOUT)
{
	int fd;

	uart_open(_metadata, self, variant);
	fd = self->fd;
	self->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, self->efd);
	ASSERT_EQ(0, mdev_set_irq_eventfd(fd, VFIO_PCI_INTX_IRQ_INDEX, self->efd));

	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_IER, 0);
	WR(0, REG_RBR_THR, 'a');
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS)) {
		TH_LOG("interrupt without IER");
	}
	ASSERT_EQ('a', RD(0, REG_RBR_THR));

	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_IER, UART_IER_RDI);
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS));
	WR(0, REG_RBR_THR, 'b');
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS)) {
		TH_LOG("no INTx after a byte with IER.RDI");
	}
	ASSERT_EQ(0xc0 | UART_IIR_RDI, RD(0, REG_IIR_FCR));
	ASSERT_EQ('b', RD(0, REG_RBR_THR));
	ASSERT_EQ(IIR_NONE, RD(0, REG_IIR_FCR));

	/* automasked: the next trigger is swallowed */
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_RBR_THR, 'c');
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS)) {
		TH_LOG("INTx fired while automasked");
	}
	/* unmask does not replay */
	ASSERT_EQ(0, mdev_set_irq_none(fd, VFIO_PCI_INTX_IRQ_INDEX,
				  VFIO_IRQ_SET_ACTION_UNMASK, 1));
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS));
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_RBR_THR, 'd');
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS)) {
		TH_LOG("no INTx after unmask");
	}

	/* software trigger (DATA_NONE) honours the mask too */
	ASSERT_EQ(0, mdev_set_irq_none(fd, VFIO_PCI_INTX_IRQ_INDEX,
				  VFIO_IRQ_SET_ACTION_UNMASK, 1));
	ASSERT_EQ(0, mdev_set_irq_none(fd, VFIO_PCI_INTX_IRQ_INDEX,
				  VFIO_IRQ_SET_ACTION_TRIGGER, 1));
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS));
	ASSERT_EQ(0, mdev_set_irq_none(fd, VFIO_PCI_INTX_IRQ_INDEX,
				  VFIO_IRQ_SET_ACTION_TRIGGER, 1));
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS));

	/* explicit mask */
	ASSERT_EQ(0, mdev_set_irq_none(fd, VFIO_PCI_INTX_IRQ_INDEX,
				  VFIO_IRQ_SET_ACTION_UNMASK, 1));
	ASSERT_EQ(0, mdev_set_irq_none(fd, VFIO_PCI_INTX_IRQ_INDEX,
				  VFIO_IRQ_SET_ACTION_MASK, 1));
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_RBR_THR, 'e');
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS));

	/* MSI cannot be set up while INTx is in use */
	ASSERT_EQ(-EINVAL, mdev_set_irq_eventfd(fd, VFIO_PCI_MSI_IRQ_INDEX,
					   self->efd));

	/* disable */
	ASSERT_EQ(0, mdev_set_irq_none(fd, VFIO_PCI_INTX_IRQ_INDEX,
				  VFIO_IRQ_SET_ACTION_UNMASK, 1));
	ASSERT_EQ(0, mdev_set_irq_none(fd, VFIO_PCI_INTX_IRQ_INDEX,
				  VFIO_IRQ_SET_ACTION_TRIGGER, 0));
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_RBR_THR, 'f');
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS)) {
		TH_LOG("INTx fired after disable");
	}
	/* masking needs INTx enabled */
	ASSERT_EQ(-EINVAL, mdev_set_irq_none(fd, VFIO_PCI_INTX_IRQ_INDEX,
					VFIO_IRQ_SET_ACTION_MASK, 1));
}

/* MSI: every trigger signals, no masking support */
TEST_F_TIMEOUT(mtty_uart, msi, MDEV_TIMEOUT)
{
	int fd;

	uart_open(_metadata, self, variant);
	fd = self->fd;
	self->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, self->efd);
	ASSERT_EQ(0, mdev_set_irq_eventfd(fd, VFIO_PCI_MSI_IRQ_INDEX, self->efd));

	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_RBR_THR, 'a');
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS)) {
		TH_LOG("interrupt without IER");
	}

	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_IER, UART_IER_RDI);
	WR(0, REG_RBR_THR, 'b');
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS)) {
		TH_LOG("no MSI after a byte with IER.RDI");
	}
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_RBR_THR, 'c');
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS)) {
		TH_LOG("no second MSI");
	}
	/* second port, same vector */
	WR(1, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(1, REG_IER, UART_IER_RDI);
	WR(1, REG_RBR_THR, 'p');
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS)) {
		TH_LOG("no MSI from port 1");
	}
	WR(1, REG_IER, 0);

	/* THRI with an empty FIFO fires on the IER write */
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_IER, UART_IER_RDI | UART_IER_THRI);
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS)) {
		TH_LOG("no MSI for IER.THRI with an empty FIFO");
	}
	ASSERT_EQ(0xc0 | UART_IIR_THRI, RD(0, REG_IIR_FCR));
	WR(0, REG_IER, 0);

	/* software trigger */
	ASSERT_EQ(0, mdev_set_irq_none(fd, VFIO_PCI_MSI_IRQ_INDEX,
				  VFIO_IRQ_SET_ACTION_TRIGGER, 1));
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS));

	ASSERT_EQ(-ENOTTY, mdev_set_irq_none(fd, VFIO_PCI_MSI_IRQ_INDEX,
					VFIO_IRQ_SET_ACTION_MASK, 1));
	ASSERT_EQ(-EINVAL, mdev_set_irq_eventfd(fd, VFIO_PCI_INTX_IRQ_INDEX,
					   self->efd));

	/* disable */
	ASSERT_EQ(0, mdev_set_irq_none(fd, VFIO_PCI_MSI_IRQ_INDEX,
				  VFIO_IRQ_SET_ACTION_TRIGGER, 0));
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_IER, UART_IER_RDI);
	WR(0, REG_RBR_THR, 'd');
	ASSERT_EQ(0, mdev_wait_event(self->efd, NO_EVENT_MS)) {
		TH_LOG("MSI fired after disable");
	}
	/* INTx is possible again */
	ASSERT_EQ(0, mdev_set_irq_eventfd(fd, VFIO_PCI_INTX_IRQ_INDEX, self->efd));
}

/* closing the device tears the interrupt down; a new open starts clean */
TEST_F_TIMEOUT(mtty_uart, irq_released_on_close, MDEV_TIMEOUT)
{
	struct vfio_device_info info;

	uart_open(_metadata, self, variant);
	self->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, self->efd);
	ASSERT_EQ(0, mdev_set_irq_eventfd(self->fd, VFIO_PCI_MSI_IRQ_INDEX,
				     self->efd));
	mdev_vfio_close(&self->v);

	mdev_vfio_open(_metadata, &self->v, self->uuid, variant->path);
	self->fd = self->v.device;
	mdev_vfio_info(_metadata, self->fd, &info);
	/* MSI was disabled by close: INTx can be set up */
	ASSERT_EQ(0, mdev_set_irq_eventfd(self->fd, VFIO_PCI_INTX_IRQ_INDEX,
				     self->efd));
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_IER, UART_IER_RDI);
	WR(0, REG_RBR_THR, 'a');
	ASSERT_EQ(1, mdev_wait_event(self->efd, EVENT_TIMEOUT_MS));
}

/*
 * VFIO_DEVICE_RESET returns 0.  mtty_reset() only resets the migration
 * state machine; the UART registers and the FIFO keep their contents.
 */
TEST_F_TIMEOUT(mtty_uart, reset, MDEV_TIMEOUT)
{
	uart_open(_metadata, self, variant);
	WR(0, REG_SCR, 0xa5);
	WR(0, REG_LCR, UART_LCR_WLEN8);
	WR(0, REG_IIR_FCR, FCR_RESET_FIFO);
	WR(0, REG_RBR_THR, 'x');
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_RESET)) {
		TH_LOG("VFIO_DEVICE_RESET: %s", strerror(errno));
	}
	ASSERT_EQ(0xa5, RD(0, REG_SCR));
	ASSERT_EQ(UART_LCR_WLEN8, RD(0, REG_LCR));
	ASSERT_EQ(UART_LSR_DR, RD(0, REG_LSR));
	ASSERT_EQ('x', RD(0, REG_RBR_THR));
	ASSERT_EQ(0x32534348, cfg_read32(_metadata, self->fd, MTTY_CFG, 0));
}

/*
 * Where the Rust mtty (mtty_rs) deliberately answers differently from the C
 * one; the table "Differences from the C samples" in
 * Documentation/driver-api/vfio-mdev-rust-vendor.rst says why.
 */
static bool uart_is_rust(FIXTURE_DATA(mtty_uart) *self)
{
	return self->s->compat != NULL;	/* mtty_rs implements mtty's ABI */
}

static int uart_pread(int fd, __u64 pos)
{
	__u8 val;

	return pread(fd, &val, 1, pos) == 1 ? 0 : -errno;
}

static int uart_pwrite(int fd, __u64 pos, __u8 val)
{
	return pwrite(fd, &val, 1, pos) == 1 ? 0 : -errno;
}

/*
 * SET_IRQS with no action bit or two: the uAPI asks for exactly one.  The
 * Rust abstraction refuses the request (EINVAL) before the driver sees it; the
 * C mtty ignores it on INTx and MSI (success, nothing done) and answers
 * ENOTTY on the indexes it does not support.
 */
TEST_F_TIMEOUT(mtty_uart, differs_irq_action, MDEV_TIMEOUT)
{
	bool rust = uart_is_rust(self);

	uart_open(_metadata, self, variant);
	ASSERT_EQ(rust ? -EINVAL : 0,
		  mdev_set_irq_none(self->fd, VFIO_PCI_INTX_IRQ_INDEX, 0, 1));
	ASSERT_EQ(rust ? -EINVAL : 0,
		  mdev_set_irq_none(self->fd, VFIO_PCI_MSI_IRQ_INDEX, 0, 1));
	ASSERT_EQ(rust ? -EINVAL : -ENOTTY,
		  mdev_set_irq_none(self->fd, VFIO_PCI_MSIX_IRQ_INDEX, 0, 1));
	ASSERT_EQ(rust ? -EINVAL : 0,
		  mdev_set_irq_none(self->fd, VFIO_PCI_INTX_IRQ_INDEX,
				    VFIO_IRQ_SET_ACTION_MASK |
				    VFIO_IRQ_SET_ACTION_UNMASK, 1));
	/* well-formed requests work on both */
	self->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, self->efd);
	ASSERT_EQ(0, mdev_set_irq_eventfd(self->fd, VFIO_PCI_INTX_IRQ_INDEX,
					  self->efd));
	ASSERT_EQ(0, mdev_set_irq_none(self->fd, VFIO_PCI_INTX_IRQ_INDEX,
				       VFIO_IRQ_SET_ACTION_MASK, 1));
}

/*
 * Vectors beyond an index's: INTx has one vector.  The C mtty validates
 * start/count against the number of indexes (5) and its INTx code refuses
 * start != 0; the Rust abstraction validates against the index's vector
 * count (GET_IRQ_INFO).  Same answer, EINVAL, for different reasons.
 */
TEST_F_TIMEOUT(mtty_uart, same_irq_vectors, MDEV_TIMEOUT)
{
	char buf[sizeof(struct vfio_irq_set) + 2 * sizeof(__s32)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	__s32 fds[2] = { -1, -1 };

	uart_open(_metadata, self, variant);
	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_INTX_IRQ_INDEX;
	set->start = 1;
	set->count = 1;
	memcpy(set->data, fds, sizeof(fds));
	ASSERT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_SET_IRQS, set));
	ASSERT_EQ(EINVAL, errno);
	set->start = 0;
	set->count = 2;
	ASSERT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_SET_IRQS, set));
	ASSERT_EQ(EINVAL, errno);
}

/*
 * GET_REGION_INFO of a region without capabilities: since Linux 7.x the VFIO
 * core decodes the ioctl for both, and hands back the caller's cap_offset.
 */
TEST_F_TIMEOUT(mtty_uart, same_region_cap_offset, MDEV_TIMEOUT)
{
	struct vfio_region_info ri = {
		.argsz = sizeof(ri),
		.index = VFIO_PCI_BAR0_REGION_INDEX,
		.cap_offset = 0x1234,
	};

	uart_open(_metadata, self, variant);
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_REGION_INFO, &ri));
	ASSERT_EQ(0, ri.flags & VFIO_REGION_INFO_FLAG_CAPS);
	ASSERT_EQ(0x1234, ri.cap_offset);
	ASSERT_EQ(8, ri.size);
}

/*
 * Accesses outside a region (BARs are 8 bytes, the configuration space 256,
 * of which both report 255 as its size): the Rust mtty refuses them (EFAULT,
 * its error for every failed access).
 * The C mtty takes BAR offsets modulo 0x10000 (a u16 parameter), so offset
 * 0x10000 is the receive register again and offsets 8..0xffff do nothing,
 * and ignores configuration writes past 256 bytes; its configuration reads
 * at 255 and beyond read past its 255-byte buffer, which this test does not
 * do.
 */
TEST_F_TIMEOUT(mtty_uart, differs_out_of_region, MDEV_TIMEOUT)
{
	bool rust = uart_is_rust(self);
	int err = rust ? -EFAULT : 0;

	uart_open(_metadata, self, variant);
	ASSERT_EQ(0, uart_pwrite(self->fd, MTTY_REGION(0) + REG_RBR_THR, 'a'));
	ASSERT_EQ(err, uart_pread(self->fd, MTTY_REGION(0) + 8));
	ASSERT_EQ(err, uart_pwrite(self->fd, MTTY_REGION(0) + 8, 0));
	ASSERT_EQ(err, uart_pwrite(self->fd, MTTY_REGION(0) + 0xffff, 0));
	/* C: 0x10000 aliases the receive register and takes the byte out */
	ASSERT_EQ(err, uart_pread(self->fd, MTTY_REGION(0) + 0x10000));
	ASSERT_EQ(rust ? 'a' : 0, RD(0, REG_RBR_THR));
	ASSERT_EQ(err, uart_pwrite(self->fd, MTTY_CFG + 0x100, 0));
	ASSERT_EQ(err, uart_pwrite(self->fd, MTTY_CFG + 0x10004, 0));
	if (rust)
		ASSERT_EQ(-EFAULT, uart_pread(self->fd, MTTY_CFG + 0x100));
	/* the last valid bytes still work */
	ASSERT_EQ(0, uart_pread(self->fd, MTTY_REGION(0) + 7));
	ASSERT_EQ(0, uart_pread(self->fd, MTTY_CFG + 0xfe));
}

/* ------------------------------------------------------------------ */

FIXTURE(mdpy_dev) {
	const struct mdev_sample_desc *s;
	struct mdev_tracker t;
	struct mdev_vfio v;
	char uuid[MDEV_UUID_LEN + 1];
	int fd;
};

FIXTURE_VARIANT(mdpy_dev) {
	enum mdev_vfio_path path;
};

FIXTURE_VARIANT_ADD(mdpy_dev, group) { MDEV_VFIO_GROUP };
FIXTURE_VARIANT_ADD(mdpy_dev, cdev) { MDEV_VFIO_CDEV };

FIXTURE_SETUP(mdpy_dev)
{
	self->t.n = 0;
	self->fd = -1;
	mdev_vfio_init(&self->v);
	self->s = mdev_setup_sample(_metadata, "mdpy");
}

FIXTURE_TEARDOWN(mdpy_dev)
{
	mdev_drop_mappings();
	mdev_vfio_close(&self->v);
	mdev_cleanup(&self->t);
}

static bool mdpy_is_rust(FIXTURE_DATA(mdpy_dev) *self);

static void mdpy_open(struct __test_metadata *_metadata,
		      FIXTURE_DATA(mdpy_dev) *self,
		      const FIXTURE_VARIANT(mdpy_dev) *variant)
{
	struct vfio_device_info info;

	mdev_new(_metadata, &self->t, self->s, "mdpy-vga", self->uuid);
	mdev_vfio_open(_metadata, &self->v, self->uuid, variant->path);
	self->fd = self->v.device;
	mdev_vfio_info(_metadata, self->fd, &info);
}

TEST_F_TIMEOUT(mdpy_dev, gfx_plane, MDEV_TIMEOUT)
{
	struct vfio_device_gfx_plane_info plane;

	mdpy_open(_metadata, self, variant);
	memset(&plane, 0, sizeof(plane));
	plane.argsz = sizeof(plane);
	plane.flags = VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_REGION;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &plane));
	plane.flags = VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_DMABUF;
	ASSERT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &plane));
	ASSERT_EQ(EINVAL, errno);

	memset(&plane, 0, sizeof(plane));
	plane.argsz = sizeof(plane);
	plane.flags = VFIO_GFX_PLANE_TYPE_REGION;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &plane));
	ASSERT_EQ(0x34325258, plane.drm_format);	/* XRGB8888 */
	ASSERT_EQ(640, plane.width);
	ASSERT_EQ(480, plane.height);
	ASSERT_EQ(640 * 4, plane.stride);
	ASSERT_EQ(2 << 20, plane.size);
	ASSERT_EQ(16, plane.region_index);
}

TEST_F_TIMEOUT(mdpy_dev, config_write, MDEV_TIMEOUT)
{
	mdpy_open(_metadata, self, variant);
	cfg_write(_metadata, self->fd, 0, 0x10, 0xffffffff, 4);
	ASSERT_EQ(0xffe00008, cfg_read32(_metadata, self->fd, 0, 0x10));
	cfg_write(_metadata, self->fd, 0, 0x10, 0xfe000000, 4);
	ASSERT_EQ(0xfe000008, cfg_read32(_metadata, self->fd, 0, 0x10));
	/* everything else is read-only */
	cfg_write(_metadata, self->fd, 0, 0x48, 1234, 4);
	ASSERT_EQ(640, cfg_read32(_metadata, self->fd, 0, 0x48));
}

/*
 * A 1- or 2-byte write to the BAR0 register: the C mdpy reads 4 bytes from
 * the 1- or 2-byte value (stack bytes: what it stores is unpredictable, so
 * only the write is checked there); the Rust mdpy changes those bytes of
 * the register and handles the result as a 4-byte write.  A write that
 * starts inside the register is ignored by both.
 */
TEST_F_TIMEOUT(mdpy_dev, config_write_short, MDEV_TIMEOUT)
{
	mdpy_open(_metadata, self, variant);
	cfg_write(_metadata, self->fd, 0, 0x12, 0xffff, 2);
	ASSERT_EQ(0x00000008, cfg_read32(_metadata, self->fd, 0, 0x10));
	cfg_write(_metadata, self->fd, 0, 0x10, 0xff, 1);
	if (!mdpy_is_rust(self))
		return;
	/* 0x000000ff: not all ones, so masked, the flag bits kept */
	ASSERT_EQ(0x000000f8, cfg_read32(_metadata, self->fd, 0, 0x10));
	cfg_write(_metadata, self->fd, 0, 0x10, 0x1234, 2);
	ASSERT_EQ(0x00001238, cfg_read32(_metadata, self->fd, 0, 0x10));
	cfg_write(_metadata, self->fd, 0, 0x10, 0xffffffff, 4);
	ASSERT_EQ(0xffe00008, cfg_read32(_metadata, self->fd, 0, 0x10));
}

/* reset repaints the framebuffer (first row: gray level 0) */
TEST_F_TIMEOUT(mdpy_dev, reset, MDEV_TIMEOUT)
{
	__u32 val = 0x12345678, rd = 0;

	mdpy_open(_metadata, self, variant);
	ASSERT_EQ(4, pread(self->fd, &rd, 4, 4096));
	ASSERT_EQ(0, rd);
	ASSERT_EQ(4, pwrite(self->fd, &val, 4, 4096));
	ASSERT_EQ(4, pread(self->fd, &rd, 4, 4096));
	ASSERT_EQ(val, rd);
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_RESET));
	ASSERT_EQ(4, pread(self->fd, &rd, 4, 4096));
	ASSERT_EQ(0, rd);
}

/*
 * The framebuffer through mmap.  BAR0 (and region 16, the display plane)
 * starts at file offset 4096; mdpy-vga's is 2 MiB, 640x480 XRGB8888 visible.
 *
 * Where the Rust mdpy (mdpy_rs) deliberately differs from the C one (see
 * "Differences from the C samples" in vfio-mdev-rust-vendor.rst): read() and
 * write() of BAR0 reach the framebuffer at their offset (the C mdpy copies
 * every access to or from its first bytes); the mappings are zapped on
 * reset (the next touch faults) and revoked when the device is removed
 * (SIGBUS), which the C mdpy never does.
 */
#define MDPY_BAR	4096
#define MDPY_FB_SIZE	(2 << 20)
#define MDPY_STRIDE	(640 * 4)

static bool mdpy_is_rust(FIXTURE_DATA(mdpy_dev) *self)
{
	return self->s->compat != NULL;	/* mdpy_rs implements mdpy's ABI */
}

static __u32 *mdpy_map(struct __test_metadata *_metadata, int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		       MDPY_BAR);

	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	return p;
}

static long mdpy_minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static __u32 mdpy_pattern(unsigned int i)
{
	return i * 2654435761u ^ 0x5a5a5a5a;
}

TEST_F_TIMEOUT(mdpy_dev, mmap_framebuffer, MDEV_TIMEOUT)
{
	struct vfio_device_gfx_plane_info plane;
	struct vfio_region_info ri;
	unsigned int i, n = 640 * 480;
	__u32 *fb, *fb2, rd = 0, val;

	mdpy_open(_metadata, self, variant);
	fb = mdpy_map(_metadata, self->fd, MDPY_FB_SIZE);
	/* the reset gradient: line r has gray level r * 255 / 480 */
	ASSERT_EQ(0, ((__u8 *)fb)[0]);
	ASSERT_EQ(240 * 255 / 480, ((__u8 *)fb)[240 * MDPY_STRIDE + 7]);
	ASSERT_EQ(479 * 255 / 480, ((__u8 *)fb)[479 * MDPY_STRIDE + 2559]);
	for (i = 0; i < n; i++)
		fb[i] = mdpy_pattern(i);
	/* the plane is region 16, at the same offset: a second mapping of it */
	memset(&plane, 0, sizeof(plane));
	plane.argsz = sizeof(plane);
	plane.flags = VFIO_GFX_PLANE_TYPE_REGION;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &plane));
	ASSERT_EQ(16, plane.region_index);
	memset(&ri, 0, sizeof(ri));
	ri.argsz = sizeof(ri);
	ri.index = plane.region_index;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_REGION_INFO, &ri));
	ASSERT_EQ(MDPY_BAR, ri.offset);
	ASSERT_EQ(MDPY_FB_SIZE, ri.size);
	ASSERT_TRUE(ri.flags & VFIO_REGION_INFO_FLAG_MMAP);
	fb2 = mmap(NULL, plane.stride * plane.height, PROT_READ, MAP_SHARED,
		   self->fd, ri.offset);
	ASSERT_NE(MAP_FAILED, fb2);
	for (i = 0; i < n; i++)
		ASSERT_EQ(mdpy_pattern(i), fb2[i]) TH_LOG("pixel %u", i);
	munmap(fb2, plane.stride * plane.height);
	/* read() of the first pixel: the same bytes */
	ASSERT_EQ(4, pread(self->fd, &rd, 4, MDPY_BAR));
	ASSERT_EQ(mdpy_pattern(0), rd);
	/* further in: the Rust mdpy reads there, the C one its first bytes */
	ASSERT_EQ(4, pread(self->fd, &rd, 4, MDPY_BAR + 4 * 12345));
	ASSERT_EQ(mdpy_is_rust(self) ? mdpy_pattern(12345) : mdpy_pattern(0),
		  rd);
	val = 0xc0ffee00;
	ASSERT_EQ(4, pwrite(self->fd, &val, 4, MDPY_BAR + 8));
	if (mdpy_is_rust(self)) {
		ASSERT_EQ(val, fb[2]);
		ASSERT_EQ(mdpy_pattern(0), fb[0]);
	} else {
		ASSERT_EQ(val, fb[0]);
		ASSERT_EQ(mdpy_pattern(2), fb[2]);
	}
	/* the last page of the BAR maps and reads (zero: beyond the picture) */
	ASSERT_EQ(0, fb[MDPY_FB_SIZE / 4 - 1]);
	munmap(fb, MDPY_FB_SIZE);
}

/*
 * A mapping split by a partial munmap(), moved by mremap() and copied by
 * fork() still shows the framebuffer page at its file offset; it cannot
 * grow (VM_DONTEXPAND).
 */
TEST_F_TIMEOUT(mdpy_dev, mmap_split_fork, MDEV_TIMEOUT)
{
	__u32 *fb, *tail, *moved;
	unsigned int i;
	int status;
	pid_t pid;

	mdpy_open(_metadata, self, variant);
	fb = mdpy_map(_metadata, self->fd, MDPY_FB_SIZE);
	for (i = 0; i < MDPY_FB_SIZE / 4; i += 1024)
		fb[i] = mdpy_pattern(i);
	/* a hole of 16 pages at 1 MiB */
	ASSERT_EQ(0, munmap((char *)fb + (1 << 20), 16 * 4096));
	tail = (__u32 *)((char *)fb + (1 << 20) + 16 * 4096);
	ASSERT_EQ(mdpy_pattern(0), fb[0]);
	ASSERT_EQ(mdpy_pattern(((1 << 20) - 4096) / 4),
		  fb[((1 << 20) - 4096) / 4]);
	ASSERT_EQ(mdpy_pattern(((1 << 20) + 16 * 4096) / 4), tail[0]);
	/* move the tail elsewhere */
	moved = mremap(tail, MDPY_FB_SIZE - (1 << 20) - 16 * 4096,
		       MDPY_FB_SIZE - (1 << 20) - 16 * 4096, MREMAP_MAYMOVE);
	ASSERT_NE(MAP_FAILED, moved);
	ASSERT_EQ(mdpy_pattern(((1 << 20) + 16 * 4096) / 4), moved[0]);
	ASSERT_EQ(mdpy_pattern((MDPY_FB_SIZE - 4096) / 4),
		  moved[(MDPY_FB_SIZE - (1 << 20) - 17 * 4096) / 4]);
	/* it cannot grow */
	ASSERT_EQ(MAP_FAILED, mremap(fb, 1 << 20, (1 << 20) + 4096,
				     MREMAP_MAYMOVE));
	/* a child sees the same memory and writes it */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (fb[1024] != mdpy_pattern(1024) ||
		    moved[1024] != mdpy_pattern(((1 << 20) + 17 * 4096) / 4))
			_exit(1);
		fb[2048] = 0xfeedf00d;
		_exit(0);
	}
	ASSERT_EQ(0, mdev_wait_child(pid, 10000, &status));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_EQ(0xfeedf00d, fb[2048]);
	munmap(fb, 1 << 20);
	munmap(moved, MDPY_FB_SIZE - (1 << 20) - 16 * 4096);
}

/* mdpy_mmap(): shared, at BAR0's offset, at most its size */
TEST_F_TIMEOUT(mdpy_dev, mmap_refused, MDEV_TIMEOUT)
{
	int prot = PROT_READ | PROT_WRITE;

	mdpy_open(_metadata, self, variant);
	ASSERT_EQ(MAP_FAILED, mmap(NULL, 4096, prot, MAP_PRIVATE, self->fd,
				   MDPY_BAR));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(MAP_FAILED, mmap(NULL, 4096, prot, MAP_SHARED, self->fd, 0));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(MAP_FAILED, mmap(NULL, 4096, prot, MAP_SHARED, self->fd,
				   2 * MDPY_BAR));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(MAP_FAILED, mmap(NULL, MDPY_FB_SIZE + 4096, prot, MAP_SHARED,
				   self->fd, MDPY_BAR));
	ASSERT_EQ(EINVAL, errno);
}

/*
 * Reset repaints the framebuffer under the mapping; the Rust mdpy's
 * mappings are zapped, so touching the pages again faults them back in.
 */
TEST_F_TIMEOUT(mdpy_dev, mmap_reset, MDEV_TIMEOUT)
{
	unsigned int i, pages = 64;
	long before, faults;
	__u32 *fb;
	__u8 sum = 0;

	mdpy_open(_metadata, self, variant);
	fb = mdpy_map(_metadata, self->fd, MDPY_FB_SIZE);
	for (i = 0; i < pages; i++)
		fb[i * 1024] = 0xffffffff;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_RESET));
	before = mdpy_minflt();
	for (i = 0; i < pages; i++)
		sum |= ((volatile __u8 *)fb)[i * 4096];
	faults = mdpy_minflt() - before;
	/* 64 pages are the first 102 lines: gray levels 0 to 53 */
	ASSERT_EQ(0, ((__u8 *)fb)[0]);
	ASSERT_EQ(101 * 255 / 480, ((__u8 *)fb)[101 * MDPY_STRIDE]);
	ASSERT_NE(0xff, sum);
	/* the Rust mappings fault in up to 16 existing pages at a time */
	if (mdpy_is_rust(self)) {
		ASSERT_LE(pages / 16, faults);
	} else {
		ASSERT_GT(pages / 16, faults);
	}
	munmap(fb, MDPY_FB_SIZE);
}

static sigjmp_buf mdpy_jmp;

static void mdpy_sigbus(int sig)
{
	siglongjmp(mdpy_jmp, 1);
}

/*
 * Remove with the framebuffer mapped: the remove waits for the close.  The
 * Rust mdpy revokes the mapping as soon as the removal starts (a touch gets
 * SIGBUS); the C one leaves it working.  Either way the remove completes
 * once the mapping and the device are closed.
 */
TEST_F_TIMEOUT(mdpy_dev, mmap_remove, MDEV_TIMEOUT)
{
	struct sigaction sa = { .sa_handler = mdpy_sigbus };
	volatile __u32 *fb;
	volatile bool bus = false;
	unsigned int waited = 0;
	char path[256];
	int status;
	pid_t pid;

	mdpy_open(_metadata, self, variant);
	fb = mdpy_map(_metadata, self->fd, MDPY_FB_SIZE);
	fb[0] = 0x12345678;
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, NULL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* the device file and mapping copies would hold the remove */
		munmap((void *)fb, MDPY_FB_SIZE);
		mdev_close_fds_from(3);
		_exit(mdev_remove(self->uuid) ? 1 : 0);
	}
	/* the removal asks for the device at once; give the C one 1 s */
	while (waited < (mdpy_is_rust(self) ? 10000 : 1000)) {
		if (sigsetjmp(mdpy_jmp, 1)) {
			bus = true;
			break;
		}
		ASSERT_EQ(0x12345678, fb[0]);
		mdev_msleep(20);
		waited += 20;
	}
	ASSERT_EQ(mdpy_is_rust(self), bus) TH_LOG("after %u ms", waited);
	/* the remove waits until the device is closed */
	ASSERT_EQ(0, waitpid(pid, &status, WNOHANG));
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/devices/%s", self->uuid);
	munmap((void *)fb, MDPY_FB_SIZE);
	mdev_vfio_close(&self->v);
	ASSERT_EQ(0, mdev_wait_child(pid, 10000, &status));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_FALSE(mdev_exists(path));
	mdev_untrack(&self->t, self->uuid);
}

/* ------------------------------------------------------------------ */

#define MBOCHS_MMIO	4096		/* BAR2 file offset */
#define MBOCHS_EDID	(2 * 4096)	/* region 9 file offset */
#define MBOCHS_VRAM	(3 * 4096)	/* BAR0 file offset */
#define DISPI(i)	(MBOCHS_MMIO + 0x500 + 2 * (i))

FIXTURE(mbochs_dev) {
	const struct mdev_sample_desc *s;
	struct mdev_tracker t;
	struct mdev_vfio v;
	char uuid[MDEV_UUID_LEN + 1];
	int fd;
};

FIXTURE_VARIANT(mbochs_dev) {
	enum mdev_vfio_path path;
};

FIXTURE_VARIANT_ADD(mbochs_dev, group) { MDEV_VFIO_GROUP };
FIXTURE_VARIANT_ADD(mbochs_dev, cdev) { MDEV_VFIO_CDEV };

FIXTURE_SETUP(mbochs_dev)
{
	self->t.n = 0;
	self->fd = -1;
	mdev_vfio_init(&self->v);
	self->s = mdev_setup_sample(_metadata, "mbochs");
}

FIXTURE_TEARDOWN(mbochs_dev)
{
	mdev_drop_mappings();
	mdev_vfio_close(&self->v);
	mdev_cleanup(&self->t);
}

static void mbochs_open(struct __test_metadata *_metadata,
			FIXTURE_DATA(mbochs_dev) *self,
			const FIXTURE_VARIANT(mbochs_dev) *variant)
{
	struct vfio_device_info info;

	mdev_new(_metadata, &self->t, self->s, "mbochs-small", self->uuid);
	mdev_vfio_open(_metadata, &self->v, self->uuid, variant->path);
	self->fd = self->v.device;
	mdev_vfio_info(_metadata, self->fd, &info);
}

static __u16 dispi_rd(struct __test_metadata *_metadata, int fd,
		      unsigned int index)
{
	__u16 v = 0;

	ASSERT_EQ(2, pread(fd, &v, 2, DISPI(index))) {
		TH_LOG("dispi read %u: %s", index, strerror(errno));
	}
	return v;
}

static void dispi_wr(struct __test_metadata *_metadata, int fd,
		     unsigned int index, __u16 v)
{
	ASSERT_EQ(2, pwrite(fd, &v, 2, DISPI(index))) {
		TH_LOG("dispi write %u: %s", index, strerror(errno));
	}
}

/* bochs dispi registers in BAR2, restored by VFIO_DEVICE_RESET */
TEST_F_TIMEOUT(mbochs_dev, dispi_reset, MDEV_TIMEOUT)
{
	int fd;

	mbochs_open(_metadata, self, variant);
	fd = self->fd;
	ASSERT_EQ(0xb0c5, dispi_rd(_metadata, fd, 0));	/* ID5 */
	ASSERT_EQ(64, dispi_rd(_metadata, fd, 0xa));	/* 4 MiB / 64 KiB */
	ASSERT_EQ(0, dispi_rd(_metadata, fd, 1));
	dispi_wr(_metadata, fd, 1, 800);		/* XRES */
	dispi_wr(_metadata, fd, 2, 600);		/* YRES */
	dispi_wr(_metadata, fd, 3, 32);			/* BPP */
	ASSERT_EQ(800, dispi_rd(_metadata, fd, 1));
	ASSERT_EQ(600, dispi_rd(_metadata, fd, 2));
	ASSERT_EQ(32, dispi_rd(_metadata, fd, 3));

	ASSERT_EQ(0, ioctl(fd, VFIO_DEVICE_RESET));
	ASSERT_EQ(0xb0c5, dispi_rd(_metadata, fd, 0));
	ASSERT_EQ(0, dispi_rd(_metadata, fd, 1));
	ASSERT_EQ(0, dispi_rd(_metadata, fd, 2));
	ASSERT_EQ(0, dispi_rd(_metadata, fd, 3));
	ASSERT_EQ(64, dispi_rd(_metadata, fd, 0xa));
}

/* the EDID region: type capability and register block */
TEST_F_TIMEOUT(mbochs_dev, edid_region, MDEV_TIMEOUT)
{
	struct {
		struct vfio_region_info info;
		struct vfio_region_info_cap_type type;
	} ext;
	struct vfio_region_gfx_edid edid;

	mbochs_open(_metadata, self, variant);
	memset(&ext, 0, sizeof(ext));
	ext.info.argsz = sizeof(ext.info);
	ext.info.index = VFIO_PCI_NUM_REGIONS;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_REGION_INFO, &ext));
	ASSERT_EQ(sizeof(ext), ext.info.argsz);
	ASSERT_EQ(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
		  VFIO_REGION_INFO_FLAG_CAPS, ext.info.flags);
	/*
	 * Too small for the chain: since Linux 7.x the VFIO core answers
	 * GET_REGION_INFO itself (vfio_get_region_info() around the driver's
	 * get_region_info_caps) and reports no chain (cap_offset 0), as
	 * vfio-pci does; mbochs used to set cap_offset regardless.
	 */
	ASSERT_EQ(0, ext.info.cap_offset);

	memset(&ext, 0, sizeof(ext));
	ext.info.argsz = sizeof(ext);
	ext.info.index = VFIO_PCI_NUM_REGIONS;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_GET_REGION_INFO, &ext));
	ASSERT_EQ(MBOCHS_EDID, ext.info.offset);
	ASSERT_EQ(4096, ext.info.size);
	ASSERT_EQ(VFIO_REGION_INFO_CAP_TYPE, ext.type.header.id);
	ASSERT_EQ(1, ext.type.header.version);
	ASSERT_EQ(0, ext.type.header.next);
	ASSERT_EQ(VFIO_REGION_TYPE_GFX, ext.type.type);
	ASSERT_EQ(VFIO_REGION_SUBTYPE_GFX_EDID, ext.type.subtype);

	memset(&edid, 0xff, sizeof(edid));
	ASSERT_EQ(sizeof(edid), pread(self->fd, &edid, sizeof(edid),
				      MBOCHS_EDID));
	ASSERT_EQ(2048, edid.edid_offset);
	ASSERT_EQ(0x400, edid.edid_max_size);
	ASSERT_EQ(0, edid.edid_size);
	ASSERT_EQ(800, edid.max_xres);
	ASSERT_EQ(600, edid.max_yres);
	ASSERT_EQ(0, edid.link_state);
}

TEST_F_TIMEOUT(mbochs_dev, vram_rw, MDEV_TIMEOUT)
{
	__u32 val = 0xdeadbeef, rd = 0xffffffff;

	mbochs_open(_metadata, self, variant);
	ASSERT_EQ(4, pread(self->fd, &rd, 4, MBOCHS_VRAM + 0x200));
	ASSERT_EQ(0, rd);
	ASSERT_EQ(4, pwrite(self->fd, &val, 4, MBOCHS_VRAM + 0x100));
	ASSERT_EQ(4, pread(self->fd, &rd, 4, MBOCHS_VRAM + 0x100));
	ASSERT_EQ(val, rd);
}

TEST_F_TIMEOUT(mbochs_dev, gfx_plane, MDEV_TIMEOUT)
{
	struct vfio_device_gfx_plane_info plane;

	mbochs_open(_metadata, self, variant);
	memset(&plane, 0, sizeof(plane));
	plane.argsz = sizeof(plane);
	plane.flags = VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_DMABUF;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &plane));
	plane.flags = VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_REGION;
	ASSERT_EQ(-1, ioctl(self->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &plane));
	ASSERT_EQ(EINVAL, errno);

	/* display not enabled: an empty primary plane */
	memset(&plane, 0xff, sizeof(plane));
	plane.argsz = sizeof(plane);
	plane.flags = VFIO_GFX_PLANE_TYPE_DMABUF;
	plane.drm_plane_type = 1;	/* DRM_PLANE_TYPE_PRIMARY */
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_QUERY_GFX_PLANE, &plane));
	ASSERT_EQ(0, plane.drm_format);
	ASSERT_EQ(0, plane.width);
	ASSERT_EQ(0, plane.height);
	ASSERT_EQ(0, plane.dmabuf_id);
}

TEST_F_TIMEOUT(mbochs_dev, config_write, MDEV_TIMEOUT)
{
	mbochs_open(_metadata, self, variant);
	cfg_write(_metadata, self->fd, 0, 0x10, 0xffffffff, 4);
	ASSERT_EQ(0xffc00008, cfg_read32(_metadata, self->fd, 0, 0x10));
	cfg_write(_metadata, self->fd, 0, 0x18, 0xffffffff, 4);
	ASSERT_EQ(0xfffff000, cfg_read32(_metadata, self->fd, 0, 0x18));
	cfg_write(_metadata, self->fd, 0, 0x18, 0xfebff000, 4);
	ASSERT_EQ(0xfebff000, cfg_read32(_metadata, self->fd, 0, 0x18));
	cfg_write(_metadata, self->fd, 0, 0x00, 0xffffffff, 4);
	ASSERT_EQ(0x11111234, cfg_read32(_metadata, self->fd, 0, 0x00));
}

TEST_HARNESS_MAIN

/*
 * Where the Rust mbochs (mbochs_rs) deliberately differs from the C one (see
 * "Differences from the C samples" in vfio-mdev-rust-vendor.rst): read() and
 * write() of BAR0 reach the video memory at their offset (the C mbochs
 * subtracts the MMIO BAR's offset: two pages further, and out of bounds of
 * its page array in the last two pages, which these tests never touch on
 * it); the first plane query of a new mode returns its dma-buf (the C one
 * answers ENOMEM once); EDID accesses it ignores read as zeros; every
 * GET_GFX_DMABUF gets its own reference (the C one installs the same one
 * again, so these tests ask it once per buffer); its dma-bufs outlive the
 * device (the C one's release locks the freed device: these tests close
 * them first there); its mappings are zapped on reset and revoked on
 * removal.
 */
#define MBOCHS_VRAM_SIZE	(4 << 20)

static bool mbochs_is_rust(FIXTURE_DATA(mbochs_dev) *self)
{
	return self->s->compat != NULL;	/* mbochs_rs implements mbochs' ABI */
}

static __u32 *mbochs_map(struct __test_metadata *_metadata, int fd)
{
	void *p = mmap(NULL, MBOCHS_VRAM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED, fd, MBOCHS_VRAM);

	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	return p;
}

/* a 32 bpp mode of xres x yres at pixel (x, y) of a virt_width-wide screen */
static void mbochs_set_mode(struct __test_metadata *_metadata, int fd,
			    __u16 xres, __u16 yres, __u16 virt_width,
			    __u16 x, __u16 y)
{
	dispi_wr(_metadata, fd, 1, xres);
	dispi_wr(_metadata, fd, 2, yres);
	dispi_wr(_metadata, fd, 3, 32);
	dispi_wr(_metadata, fd, 6, virt_width);
	dispi_wr(_metadata, fd, 8, x);
	dispi_wr(_metadata, fd, 9, y);
	dispi_wr(_metadata, fd, 4, 1);		/* ENABLE */
}

static int mbochs_query(int fd, __u32 flags, __u32 plane_type,
			struct vfio_device_gfx_plane_info *p)
{
	memset(p, 0xa5, sizeof(*p));
	p->argsz = sizeof(*p);
	p->flags = flags;
	p->drm_plane_type = plane_type;
	return ioctl(fd, VFIO_DEVICE_QUERY_GFX_PLANE, p) ? -errno : 0;
}

/* the primary plane's dma-buf id: the C mbochs needs a second query */
static __u32 mbochs_primary(struct __test_metadata *_metadata,
			    FIXTURE_DATA(mbochs_dev) *self,
			    struct vfio_device_gfx_plane_info *p)
{
	int ret = mbochs_query(self->fd, VFIO_GFX_PLANE_TYPE_DMABUF, 1, p);

	if (!mbochs_is_rust(self)) {
		ASSERT_EQ(-ENOMEM, ret);
		ret = mbochs_query(self->fd, VFIO_GFX_PLANE_TYPE_DMABUF, 1, p);
	}
	ASSERT_EQ(0, ret);
	return p->dmabuf_id;
}

static int mbochs_get_dmabuf(int fd, __u32 id)
{
	int ret = ioctl(fd, VFIO_DEVICE_GET_GFX_DMABUF, &id);

	return ret < 0 ? -errno : ret;
}

/* BAR0 through mmap and through read(): the same bytes, at their offset */
TEST_F_TIMEOUT(mbochs_dev, vram_mmap, MDEV_TIMEOUT)
{
	unsigned int i, n = MBOCHS_VRAM_SIZE / 4;
	__u32 *vram, rd, val = 0x600dcafe;
	bool rust;

	mbochs_open(_metadata, self, variant);
	rust = mbochs_is_rust(self);
	vram = mbochs_map(_metadata, self->fd);
	ASSERT_EQ(0, vram[0]);
	for (i = 0; i < n; i++)
		vram[i] = mdpy_pattern(i);
	/* the C mbochs reads two pages further */
	for (i = 0; i < 8; i++) {
		__u64 off = (__u64)i * 4096 * 9 + 4 * i;

		ASSERT_EQ(4, pread(self->fd, &rd, 4, MBOCHS_VRAM + off));
		ASSERT_EQ(mdpy_pattern((off + (rust ? 0 : 8192)) / 4), rd);
	}
	ASSERT_EQ(4, pwrite(self->fd, &val, 4, MBOCHS_VRAM + 4096 + 12));
	ASSERT_EQ(val, vram[(rust ? 4096 + 12 : 3 * 4096 + 12) / 4]);
	if (rust) {
		/* the last bytes of the BAR (beyond the C one's page array) */
		ASSERT_EQ(4, pread(self->fd, &rd, 4,
				   MBOCHS_VRAM + MBOCHS_VRAM_SIZE - 4));
		ASSERT_EQ(mdpy_pattern(n - 1), rd);
		ASSERT_EQ(-1, pread(self->fd, &rd, 4,
				    MBOCHS_VRAM + MBOCHS_VRAM_SIZE));
		ASSERT_EQ(EFAULT, errno);
	}
	munmap(vram, MBOCHS_VRAM_SIZE);

	/* the close drops the video memory: fresh pages at the next open */
	mdev_vfio_close(&self->v);
	mdev_vfio_open(_metadata, &self->v, self->uuid, variant->path);
	self->fd = self->v.device;
	vram = mbochs_map(_metadata, self->fd);
	ASSERT_EQ(0, vram[0]);
	ASSERT_EQ(0, vram[n - 1]);
	munmap(vram, MBOCHS_VRAM_SIZE);

	ASSERT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_PRIVATE,
				   self->fd, MBOCHS_VRAM));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(MAP_FAILED, mmap(NULL, MBOCHS_VRAM_SIZE + 4096, PROT_READ,
				   MAP_SHARED, self->fd, MBOCHS_VRAM));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED,
				   self->fd, MBOCHS_MMIO));
	ASSERT_EQ(EINVAL, errno);
}

/* the Rust mbochs zaps its mappings on reset: the next touch faults */
TEST_F_TIMEOUT(mbochs_dev, vram_reset_zaps, MDEV_TIMEOUT)
{
	unsigned int i, pages = 64;
	volatile __u32 *vram;
	long before, faults;

	mbochs_open(_metadata, self, variant);
	vram = mbochs_map(_metadata, self->fd);
	for (i = 0; i < pages; i++)
		vram[i * 1024] = i;
	ASSERT_EQ(0, ioctl(self->fd, VFIO_DEVICE_RESET));
	before = mdpy_minflt();
	for (i = 0; i < pages; i++)
		ASSERT_EQ(i, vram[i * 1024]);	/* reset keeps the memory */
	faults = mdpy_minflt() - before;
	if (mbochs_is_rust(self)) {
		ASSERT_LE(pages / 16, faults);
	} else {
		ASSERT_GT(pages / 16, faults);
	}
	munmap((void *)vram, MBOCHS_VRAM_SIZE);
}

/* QUERY_GFX_PLANE and GET_GFX_DMABUF: the plane the guest set */
TEST_F_TIMEOUT(mbochs_dev, dmabuf_plane, MDEV_TIMEOUT)
{
	struct vfio_device_gfx_plane_info p;
	unsigned int i, n = 640 * 480;
	__u32 *vram, *buf, id;
	int fd;

	mbochs_open(_metadata, self, variant);
	/* probes: only the dma-buf kind */
	ASSERT_EQ(0, mbochs_query(self->fd, VFIO_GFX_PLANE_TYPE_PROBE |
				  VFIO_GFX_PLANE_TYPE_DMABUF, 0, &p));
	ASSERT_EQ(-EINVAL, mbochs_query(self->fd, VFIO_GFX_PLANE_TYPE_PROBE |
					VFIO_GFX_PLANE_TYPE_REGION, 0, &p));
	ASSERT_EQ(-EINVAL, mbochs_query(self->fd, VFIO_GFX_PLANE_TYPE_REGION,
					1, &p));
	/* no mode yet: a zero plane, id 0 */
	ASSERT_EQ(0, mbochs_query(self->fd, VFIO_GFX_PLANE_TYPE_DMABUF, 1, &p));
	ASSERT_EQ(0, p.drm_format);
	ASSERT_EQ(0, p.width);
	ASSERT_EQ(0, p.size);
	ASSERT_EQ(0, p.dmabuf_id);
	ASSERT_EQ(-ENOENT, mbochs_get_dmabuf(self->fd, 0));

	vram = mbochs_map(_metadata, self->fd);
	for (i = 0; i < n; i++)
		vram[i] = mdpy_pattern(i);
	mbochs_set_mode(_metadata, self->fd, 640, 480, 640, 0, 0);
	id = mbochs_primary(_metadata, self, &p);
	ASSERT_EQ(1, id);
	ASSERT_EQ(0x34325258, p.drm_format);	/* XRGB8888 */
	ASSERT_EQ(0, p.drm_format_mod);
	ASSERT_EQ(640, p.width);
	ASSERT_EQ(480, p.height);
	ASSERT_EQ(640 * 4, p.stride);
	ASSERT_EQ(640 * 480 * 4, p.size);
	ASSERT_EQ(0, p.x_pos);
	ASSERT_EQ(0, p.y_hot);
	/* the same mode: the same buffer */
	ASSERT_EQ(0, mbochs_query(self->fd, VFIO_GFX_PLANE_TYPE_DMABUF, 1, &p));
	ASSERT_EQ(id, p.dmabuf_id);
	/* the cursor plane: none */
	ASSERT_EQ(0, mbochs_query(self->fd, VFIO_GFX_PLANE_TYPE_DMABUF, 2, &p));
	ASSERT_EQ(0, p.dmabuf_id);
	ASSERT_EQ(0, p.width);

	fd = mbochs_get_dmabuf(self->fd, id);
	ASSERT_LE(0, fd);
	ASSERT_EQ(640 * 480 * 4, lseek(fd, 0, SEEK_END));
	ASSERT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0));
	ASSERT_EQ(EINVAL, errno);
	/* read-only files: whoever holds one cannot change the video memory */
	ASSERT_EQ(O_RDONLY, fcntl(fd, F_GETFL) & O_ACCMODE);
	ASSERT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				   MAP_SHARED, fd, 0));
	ASSERT_EQ(EACCES, errno);
	if (!mbochs_is_rust(self)) {
		/* the C mbochs' dma-bufs are read-only files: never shared */
		ASSERT_EQ(MAP_FAILED, mmap(NULL, n * 4, PROT_READ, MAP_SHARED,
					   fd, 0));
		ASSERT_EQ(EINVAL, errno);
		close(fd);
		munmap(vram, MBOCHS_VRAM_SIZE);
		return;
	}
	buf = mmap(NULL, n * 4, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, buf);
	for (i = 0; i < n; i++)
		ASSERT_EQ(mdpy_pattern(i), buf[i]) TH_LOG("pixel %u", i);
	/* the buffer shows the video memory, not a copy */
	vram[7] = 0x77777777;
	ASSERT_EQ(0x77777777, buf[7]);
	munmap(buf, n * 4);
	close(fd);

	ASSERT_EQ(-ENOENT, mbochs_get_dmabuf(self->fd, 77));
	/* a plane that starts inside a page cannot be exported */
	mbochs_set_mode(_metadata, self->fd, 640, 480, 640, 1, 0);
	id = mbochs_primary(_metadata, self, &p);
	ASSERT_EQ(2, id);
	ASSERT_EQ(-EINVAL, mbochs_get_dmabuf(self->fd, id));
	/* a mode beyond the video memory: no plane */
	mbochs_set_mode(_metadata, self->fd, 1600, 1200, 1600, 0, 0);
	ASSERT_EQ(0, mbochs_query(self->fd, VFIO_GFX_PLANE_TYPE_DMABUF, 1, &p));
	ASSERT_EQ(0, p.dmabuf_id);
	munmap(vram, MBOCHS_VRAM_SIZE);
}

/*
 * A dma-buf outlives the device's close and removal with its picture (Rust
 * mbochs); each GET_GFX_DMABUF is a reference of its own.
 */
TEST_F_TIMEOUT(mbochs_dev, dmabuf_outlives_remove, MDEV_TIMEOUT)
{
	struct vfio_device_gfx_plane_info p;
	unsigned int i, n = 640 * 480;
	__u32 *vram, *buf = NULL, id;
	char path[256];
	int fd, fd2;

	mbochs_open(_metadata, self, variant);
	vram = mbochs_map(_metadata, self->fd);
	for (i = 0; i < n; i++)
		vram[i] = mdpy_pattern(i);
	mbochs_set_mode(_metadata, self->fd, 640, 480, 640, 0, 0);
	id = mbochs_primary(_metadata, self, &p);
	fd = mbochs_get_dmabuf(self->fd, id);
	ASSERT_LE(0, fd);
	if (mbochs_is_rust(self)) {
		fd2 = mbochs_get_dmabuf(self->fd, id);
		ASSERT_LE(0, fd2);
		ASSERT_NE(fd, fd2);
		close(fd2);
	}
	munmap(vram, MBOCHS_VRAM_SIZE);
	if (!mbochs_is_rust(self)) {
		/* the C mbochs' release needs the device: before the remove */
		close(fd);
	} else {
		buf = mmap(NULL, n * 4, PROT_READ, MAP_SHARED, fd, 0);
		ASSERT_NE(MAP_FAILED, buf);
		ASSERT_EQ(mdpy_pattern(n - 1), buf[n - 1]);
	}
	mdev_vfio_close(&self->v);
	ASSERT_EQ(0, mdev_remove(self->uuid));
	mdev_untrack(&self->t, self->uuid);
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/devices/%s", self->uuid);
	ASSERT_FALSE(mdev_exists(path));
	if (!mbochs_is_rust(self))
		return;
	for (i = 0; i < n; i++)
		ASSERT_EQ(mdpy_pattern(i), buf[i]) TH_LOG("pixel %u", i);
	munmap(buf, n * 4);
	/* and a new mapping of it after the removal */
	buf = mmap(NULL, n * 4, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_EQ(mdpy_pattern(n / 2), buf[n / 2]);
	munmap(buf, n * 4);
	close(fd);
}

/*
 * EDID: the registers (link_state and edid_size writable), the blob, and
 * the blob as BAR2's first KiB while the link is up.
 */
TEST_F_TIMEOUT(mbochs_dev, edid_blob, MDEV_TIMEOUT)
{
	__u8 blob[128], rd[128];
	__u32 v;
	__u16 v16 = 0xffff;

	mbochs_open(_metadata, self, variant);
	mdev_fill_random(blob, sizeof(blob), 12);
	ASSERT_EQ(sizeof(blob), pwrite(self->fd, blob, sizeof(blob),
				       MBOCHS_EDID + 2048));
	v = 128;
	ASSERT_EQ(4, pwrite(self->fd, &v, 4, MBOCHS_EDID + 8)); /* edid_size */
	/* link down: BAR2 reads zeros */
	ASSERT_EQ(4, pread(self->fd, &v, 4, MBOCHS_MMIO));
	ASSERT_EQ(0, v);
	v = 1;
	ASSERT_EQ(4, pwrite(self->fd, &v, 4, MBOCHS_EDID + 20)); /* link up */
	memset(rd, 0, sizeof(rd));
	ASSERT_EQ(sizeof(rd), pread(self->fd, rd, sizeof(rd), MBOCHS_MMIO));
	ASSERT_EQ(0, memcmp(blob, rd, sizeof(blob)));
	memset(rd, 0, sizeof(rd));
	ASSERT_EQ(sizeof(rd), pread(self->fd, rd, sizeof(rd),
				    MBOCHS_EDID + 2048));
	ASSERT_EQ(0, memcmp(blob, rd, sizeof(blob)));
	/* read-only registers keep their values */
	v = 1234;
	ASSERT_EQ(4, pwrite(self->fd, &v, 4, MBOCHS_EDID + 12)); /* max_xres */
	ASSERT_EQ(4, pread(self->fd, &v, 4, MBOCHS_EDID + 12));
	ASSERT_EQ(800, v);
	ASSERT_EQ(4, pread(self->fd, &v, 4, MBOCHS_EDID + 8));
	ASSERT_EQ(128, v);
	/* beyond edid_size: zeros in BAR2 */
	ASSERT_EQ(4, pread(self->fd, &v, 4, MBOCHS_MMIO + 128));
	ASSERT_EQ(0, v);
	/* a 2-byte register read is ignored: zeros from the Rust mbochs */
	ASSERT_EQ(2, pread(self->fd, &v16, 2, MBOCHS_EDID + 12));
	if (mbochs_is_rust(self)) {
		ASSERT_EQ(0, v16);
	}
	/* a blob access past edid_max_size is ignored */
	v = 0xffffffff;
	ASSERT_EQ(4, pwrite(self->fd, &v, 4, MBOCHS_EDID + 2048 + 0x400));
	ASSERT_EQ(4, pread(self->fd, &v, 4, MBOCHS_EDID + 2048 + 0x400));
	if (mbochs_is_rust(self)) {
		ASSERT_EQ(0, v);
	}
}
