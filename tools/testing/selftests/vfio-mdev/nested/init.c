// SPDX-License-Identifier: GPL-2.0
/*
 * /init of the nested guest of the QEMU end-to-end test
 * (scripts/guest/qemu-e2e.sh, built by scripts/nested-build.sh).
 *
 * QEMU passes the mtty mdev to this guest with -device vfio-pci.  The guest's
 * 8250_pci binds it (PCI 4348:3253, a WCH CH352 2S: one 8-byte I/O BAR per
 * port).  mtty is a loop-back UART: bytes written to THR come back in RBR,
 * and its interrupts reach this guest as INTx through a VFIO eventfd.  For
 * every port of the device, this program puts the tty in raw mode (8N1, no
 * echo), writes a byte pattern longer than the 16-byte FIFO, reads it back
 * with a timeout and compares, and checks that the port's IRQ fired.
 *
 * The pattern goes out in chunks smaller than the FIFO, each one once the
 * previous one came back: mtty cannot tell a full FIFO from an empty one
 * (its ring is 16 bytes and "empty" is head == tail), so when 8250 fills all
 * 16 bytes in one go (its tx_loadsz) LSR.DR reads 0, RBR returns nothing and
 * the loop-back stalls.  MTTY_E2E_CHUNK=16 shows that.
 *
 * It prints on the console, one line each:
 *
 *   MTTY-E2E: INIT                             (main() runs)
 *   MTTY-E2E: START ports=2 uptime=10.02
 *   MTTY-E2E: PASS port=ttyS1 irq=10 wrote=64 read=64 chunk=8 irqs=9
 *   MTTY-E2E: FAIL port=ttyS1 <why>
 *   MTTY-E2E: FAIL <why>                       (no port at all, ...)
 *   MTTY-E2E: END pass=2 fail=0 uptime=12.34
 *
 * then reboots, which QEMU's -no-reboot turns into an exit.
 *
 * Words of the kernel command line with a '=' that the kernel does not know
 * reach init in its environment:
 *   MTTY_E2E_LEN=N       bytes per port (default 64, at most 4096)
 *   MTTY_E2E_CHUNK=N     bytes written before waiting for their echo (8)
 *   MTTY_E2E_TIMEOUT=S   seconds to wait for the echo of one port (60)
 *   MTTY_E2E_PORTS=N     number of ports expected (default: any, at least 1)
 *   MTTY_E2E_CORRUPT=1   compare against a wrong pattern, to see a FAIL
 *   MTTY_E2E_DEBUG=1     dump /proc/tty/driver/serial and /proc/interrupts
 *                        (also done after any FAIL)
 *   MDMA_E2E_ROUNDS=N    instead of the mtty test: drive the mdma DMA engine
 *                        (PCI 4d44:4d41, samples/vfio-mdev/mdma.rs) from user
 *                        space for N rounds, MDMA_E2E_PAUSE_MS (default
 *                        50) apart, lines prefixed "MDMA-E2E: " (see
 *                        mdma_run() below)
 *   MTTY_E2E_ROUNDS=N    test every port N times (default 1; the ports stay
 *                        open between rounds unless MTTY_E2E_REOPEN=1), each round
 *                        announced by "MTTY-E2E: ROUND r/N uptime=...", with
 *                        MTTY_E2E_PAUSE_MS (default 500) between rounds: the
 *                        live-migration check moves the guest to another
 *                        QEMU meanwhile; "total=" in the PASS lines is the
 *                        port's interrupt count since boot, which must keep
 *                        growing across the move
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/fb.h>

#define MTTY_VENDOR	0x4348
#define MTTY_DEVICE	0x3253
#define MAX_PORTS	8
#define MAX_LEN		4096

static int npass, nfail;
/* the prefix of every line this program prints */
static const char *tag = "MTTY-E2E";

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("%s: ", tag);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	fflush(stdout);
}

static long env_long(const char *name, long def)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	v = strtol(s, &end, 0);
	return *end ? def : v;
}

/* Reads a small sysfs/proc file; returns its length or -1. */
static int read_file(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

static long read_hex(const char *dir, const char *attr)
{
	char path[PATH_MAX + 32], buf[64];

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	return strtol(buf, NULL, 16);
}

/*
 * Whether @tty belongs to PCI vendor:device.  Its "device" link is the
 * serial core's port device (0000:00:02.0:0.0, on the serial-base bus) or,
 * in older kernels, the PCI function itself: walk up to the first PCI
 * device.
 */
static int tty_is_pci(const char *tty, long vendor, long device)
{
	char link[128], dir[PATH_MAX], sub[PATH_MAX + 16], bus[PATH_MAX];
	char *slash;
	ssize_t n;
	int up;

	snprintf(link, sizeof(link), "/sys/class/tty/%s/device", tty);
	if (!realpath(link, dir))
		return 0;
	for (up = 0; up < 4; up++) {
		snprintf(sub, sizeof(sub), "%s/subsystem", dir);
		n = readlink(sub, bus, sizeof(bus) - 1);
		if (n > 0) {
			bus[n] = '\0';
			slash = strrchr(bus, '/');
			if (slash && !strcmp(slash, "/pci"))
				return read_hex(dir, "vendor") == vendor &&
				       read_hex(dir, "device") == device;
		}
		slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			break;
		*slash = '\0';
	}
	return 0;
}

static int tty_number(const char *name)
{
	return atoi(name + 4);
}

static int cmp_tty(const void *a, const void *b)
{
	return tty_number(a) - tty_number(b);
}

/* The ttyS ports whose device is the mtty PCI function, in number order. */
static int find_ports(char ports[][16], int max)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir("/sys/class/tty");
	if (!d)
		return -1;
	while ((de = readdir(d)) && n < max) {
		if (strncmp(de->d_name, "ttyS", 4) || !isdigit(de->d_name[4]) ||
		    strlen(de->d_name) >= 16)
			continue;
		if (!tty_is_pci(de->d_name, MTTY_VENDOR, MTTY_DEVICE))
			continue;
		snprintf(ports[n++], sizeof(ports[0]), "%s", de->d_name);
	}
	closedir(d);
	qsort(ports, n, sizeof(ports[0]), cmp_tty);
	return n;
}

/* The count of @irq summed over CPUs, from /proc/interrupts, or -1. */
static long irq_count(int irq)
{
	static char buf[16384];
	char *line, *save, *p, *end;
	long sum, v;

	if (irq <= 0 || read_file("/proc/interrupts", buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		v = strtol(line, &end, 10);
		if (end == line || *end != ':' || v != irq)
			continue;
		sum = 0;
		for (p = end + 1;;) {
			v = strtol(p, &end, 10);
			if (end == p)
				break;
			sum += v;
			p = end;
		}
		return sum;
	}
	return -1;
}

/* Copies a /proc file to the console, as "MTTY-E2E: | <line>". */
static void dump(const char *path)
{
	static char buf[16384];
	char *line, *save;

	if (read_file(path, buf, sizeof(buf)) < 0)
		return;
	say("%s:", path);
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		say("| %s", line);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int set_raw(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t))
		return -1;
	cfmakeraw(&t);
	t.c_iflag &= ~(IXON | IXOFF | IXANY | INPCK);
	t.c_cflag &= ~(CSIZE | PARENB | CSTOPB | CRTSCTS);
	t.c_cflag |= CS8 | CREAD | CLOCAL;
	t.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	cfsetispeed(&t, B115200);
	cfsetospeed(&t, B115200);
	if (tcsetattr(fd, TCSANOW, &t))
		return -1;
	return tcflush(fd, TCIOFLUSH);
}

/*
 * Writes @len bytes of pattern to @tty and reads them back; returns 0 when
 * what came back is the expected pattern and the port's IRQ fired.
 */
static int test_port(const char *tty, int idx, int len, int chunk,
		     int timeout_s, int corrupt)
{
	static unsigned char out[MAX_LEN], in[MAX_LEN], expect[MAX_LEN];
	long long deadline;
	long irqs0, irqs1;
	int fd, i, wr = 0, rd = 0, target = 0, irq;
	char path[256], buf[32];

	/*
	 * First the bytes a cooked tty would eat or change (NUL, ^C, ^D,
	 * BS, LF, CR, XON, XOFF, ^U, ^Z, ^\, DEL, 0xff), then distinct
	 * values spread over 0..255, different on every port.
	 */
	static const unsigned char special[] = {
		0x00, 0x03, 0x04, 0x08, 0x0a, 0x0d, 0x11, 0x13, 0x15, 0x1a,
		0x1c, 0x7f, 0xff,
	};

	for (i = 0; i < len; i++)
		out[i] = i < (int)sizeof(special) ? special[i] :
			 (unsigned char)(i * 37 + 11 + idx * 101);
	memcpy(expect, out, len);
	if (corrupt)
		expect[len / 2] ^= 0x80;

	snprintf(path, sizeof(path), "/sys/class/tty/%s/irq", tty);
	irq = read_file(path, buf, sizeof(buf)) < 0 ? -1 : atoi(buf);

	snprintf(path, sizeof(path), "/dev/%s", tty);
	fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		say("FAIL port=%s open %s: %s", tty, path, strerror(errno));
		return -1;
	}
	if (set_raw(fd)) {
		say("FAIL port=%s termios: %s", tty, strerror(errno));
		close(fd);
		return -1;
	}

	irqs0 = irq_count(irq);
	deadline = now_ms() + timeout_s * 1000LL;
	while (rd < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0) {
			say("FAIL port=%s irq=%d timeout after %d s: wrote=%d read=%d",
			    tty, irq, timeout_s, wr, rd);
			close(fd);
			return -1;
		}
		/* the next chunk once everything sent so far came back */
		if (wr == rd && wr < len)
			target = wr + chunk < len ? wr + chunk : len;
		if (wr < target)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, left > 1000 ? 1000 : (int)left) < 0) {
			if (errno == EINTR)
				continue;
			say("FAIL port=%s poll: %s", tty, strerror(errno));
			close(fd);
			return -1;
		}
		if (pfd.revents & (POLLERR | POLLNVAL)) {
			say("FAIL port=%s poll revents 0x%x", tty, pfd.revents);
			close(fd);
			return -1;
		}
		if (pfd.revents & POLLOUT) {
			n = write(fd, out + wr, target - wr);
			if (n > 0)
				wr += n;
			else if (n < 0 && errno != EAGAIN)
				goto io_error;
		}
		if (pfd.revents & POLLIN) {
			n = read(fd, in + rd, len - rd);
			if (n > 0)
				rd += n;
			else if (n < 0 && errno != EAGAIN)
				goto io_error;
		}
	}
	irqs1 = irq_count(irq);
	close(fd);

	for (i = 0; i < len; i++) {
		if (in[i] != expect[i]) {
			say("FAIL port=%s wrote=%d read=%d byte %d: got 0x%02x, want 0x%02x",
			    tty, wr, rd, i, in[i], expect[i]);
			return -1;
		}
	}
	if (irqs0 < 0 || irqs1 <= irqs0) {
		say("FAIL port=%s irq=%d did not fire (count %ld -> %ld): polled?",
		    tty, irq, irqs0, irqs1);
		return -1;
	}
	say("PASS port=%s irq=%d wrote=%d read=%d chunk=%d irqs=%ld total=%ld",
	    tty, irq, wr, rd, chunk, irqs1 - irqs0, irqs1);
	return 0;

io_error:
	say("FAIL port=%s wrote=%d read=%d: %s", tty, wr, rd, strerror(errno));
	close(fd);
	return -1;
}

static void mount_fs(const char *src, const char *dir, const char *type)
{
	mkdir(dir, 0755);
	if (mount(src, dir, type, 0, NULL) && errno != EBUSY)
		say("WARN mount %s on %s: %s", type, dir, strerror(errno));
}

/* Seconds since boot, as /proc/uptime says (guest time: jiffies). */
static const char *boot_seconds(void)
{
	static char up[64];
	char *space;

	if (read_file("/proc/uptime", up, sizeof(up)) < 0)
		return "?";
	space = strchr(up, ' ');
	if (space)
		*space = '\0';
	return up;
}

static void finish(void)
{
	say("END pass=%d fail=%d uptime=%s", npass, nfail, boot_seconds());
	tcdrain(STDOUT_FILENO);
	sync();
	/* QEMU runs with -no-reboot: a reboot ends it, without ACPI. */
	reboot(RB_AUTOBOOT);
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

/*
 * The mdma workload.  The engine's BAR0 (4 KiB of 32-bit registers) is
 * mapped through sysfs (resource0); with no IOMMU in this guest, the IOVAs
 * it takes are guest physical addresses, found in /proc/self/pagemap for
 * locked buffers.  Each round first checks what the engine wrote in the
 * previous round, then writes again: FILL of each page of D with a byte of
 * (round, page), and COPY of each page of S (written by the CPU) into E.
 * The CPU never writes D or E: after a live migration only the device's
 * DMA logging can have told QEMU that their pages changed, so the first
 * check on the destination proves that the dirty tracking was exact.
 */
#define MDMA_VENDOR	0x4d44
#define MDMA_DEVICE	0x4d41
#define PG		4096UL
#define D_PAGES		64
#define S_PAGES		16
#define R_STATUS	0x04
#define R_SRC_LO	0x08
#define R_SRC_HI	0x0c
#define R_DST_LO	0x10
#define R_DST_HI	0x14
#define R_LEN		0x18
#define R_OP		0x1c
#define R_FILL		0x20
#define R_DOORBELL	0x28
#define ST_DONE		(1u << 1)

static volatile unsigned int *bar;

static unsigned long long phys_of(int pagemap, const void *va)
{
	unsigned long long e;

	if (pread(pagemap, &e, 8, (unsigned long)va / PG * 8) != 8 ||
	    !(e >> 63))
		return 0;
	return (e & ((1ULL << 55) - 1)) * PG;
}

static unsigned int dma(unsigned int op, unsigned long long src,
			unsigned long long dst, unsigned int fill)
{
	bar[R_SRC_LO / 4] = (unsigned int)src;
	bar[R_SRC_HI / 4] = (unsigned int)(src >> 32);
	bar[R_DST_LO / 4] = (unsigned int)dst;
	bar[R_DST_HI / 4] = (unsigned int)(dst >> 32);
	bar[R_LEN / 4] = PG;
	bar[R_OP / 4] = op;
	bar[R_FILL / 4] = fill;
	bar[R_DOORBELL / 4] = 1;
	return bar[R_STATUS / 4];
}

static unsigned char d_byte(long r, int i) { return (unsigned char)(r * 7 + i * 3 + 1); }
static unsigned char s_byte(long r, int i, int k) { return (unsigned char)(r + i * 5 + k * 11); }

/* The first byte of a page that is not as expected, or -1 */
static long page_check(const unsigned char *p, unsigned char (*f)(long, int, int),
		       long r, int i, unsigned char fixed)
{
	unsigned long k;

	for (k = 0; k < PG; k++)
		if (p[k] != (f ? f(r, i, (int)k) : fixed))
			return (long)k;
	return -1;
}

static void mdma_run(long rounds, long pause_ms)
{
	static unsigned char *d, *s, *e;
	unsigned long long pd[D_PAGES], ps[S_PAGES], pe[S_PAGES];
	char path[300];
	struct dirent *de;
	int pagemap, cfg, res = -1, i;
	unsigned short cmd;
	long r, bad;
	DIR *dir;

	tag = "MDMA-E2E";
	dir = opendir("/sys/bus/pci/devices");
	while (dir && (de = readdir(dir))) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", de->d_name);
		if (de->d_name[0] == '.' ||
		    read_hex(path, "vendor") != MDMA_VENDOR ||
		    read_hex(path, "device") != MDMA_DEVICE)
			continue;
		/* memory decoding and bus mastering on */
		strcat(path, "/config");
		cfg = open(path, O_RDWR);
		if (cfg >= 0 && pread(cfg, &cmd, 2, 4) == 2) {
			cmd |= 0x6;
			if (pwrite(cfg, &cmd, 2, 4) != 2)
				say("FAIL command register: %s", strerror(errno));
		}
		if (cfg >= 0)
			close(cfg);
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0",
			 de->d_name);
		res = open(path, O_RDWR | O_SYNC);
		break;
	}
	if (dir)
		closedir(dir);
	say("START rounds=%ld uptime=%s", rounds, boot_seconds());
	if (res < 0) {
		say("FAIL no PCI %04x:%04x with a BAR0 (%s)", MDMA_VENDOR, MDMA_DEVICE,
		    strerror(errno));
		nfail++;
		finish();
	}
	bar = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, res, 0);
	d = mmap(NULL, D_PAGES * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);
	s = mmap(NULL, S_PAGES * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);
	e = mmap(NULL, S_PAGES * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1, 0);
	pagemap = open("/proc/self/pagemap", O_RDONLY);
	if (bar == MAP_FAILED || d == MAP_FAILED || s == MAP_FAILED ||
	    e == MAP_FAILED || pagemap < 0) {
		say("FAIL mapping the BAR, the buffers or pagemap: %s", strerror(errno));
		nfail++;
		finish();
	}
	if (bar[0] != 0x4d444d41) {
		say("FAIL ID register 0x%x", bar[0]);
		nfail++;
		finish();
	}
	for (i = 0; i < D_PAGES; i++)
		pd[i] = phys_of(pagemap, d + i * PG);
	for (i = 0; i < S_PAGES; i++) {
		ps[i] = phys_of(pagemap, s + i * PG);
		pe[i] = phys_of(pagemap, e + i * PG);
	}
	for (i = 0; i < D_PAGES; i++)
		if (!pd[i] || (i < S_PAGES && (!ps[i] || !pe[i]))) {
			say("FAIL no physical address for a buffer page (pagemap)");
			nfail++;
			finish();
		}
	for (r = 1; r <= rounds; r++) {
		struct timespec ts = {
			.tv_sec = pause_ms / 1000,
			.tv_nsec = (pause_ms % 1000) * 1000000L,
		};
		int bad_pages = 0, failed_dmas = 0;
		unsigned int st;

		if (r > 1 && pause_ms > 0)
			nanosleep(&ts, NULL);

		/* what the engine wrote last round, possibly on another host */
		for (i = 0; r > 1 && i < D_PAGES; i++) {
			bad = page_check(d + i * PG, NULL, 0, 0, d_byte(r - 1, i));
			if (bad >= 0) {
				if (!bad_pages)
					say("FAIL round %ld: D page %d byte %ld is 0x%02x, expected 0x%02x",
					    r, i, bad, d[i * PG + bad], d_byte(r - 1, i));
				bad_pages++;
			}
		}
		for (i = 0; r > 1 && i < S_PAGES; i++) {
			bad = page_check(e + i * PG, s_byte, r - 1, i, 0);
			if (bad >= 0) {
				if (!bad_pages)
					say("FAIL round %ld: E page %d byte %ld is 0x%02x, expected 0x%02x",
					    r, i, bad, e[i * PG + bad], s_byte(r - 1, i, (int)bad));
				bad_pages++;
			}
		}
		for (i = 0; i < S_PAGES; i++) {
			unsigned long k;

			for (k = 0; k < PG; k++)
				s[i * PG + k] = s_byte(r, i, (int)k);
		}
		for (i = 0; i < D_PAGES; i++) {
			st = dma(2, 0, pd[i], d_byte(r, i));
			failed_dmas += st != ST_DONE;
		}
		for (i = 0; i < S_PAGES; i++) {
			st = dma(1, ps[i], pe[i], 0);
			failed_dmas += st != ST_DONE;
		}
		if (bad_pages || failed_dmas) {
			say("FAIL round %ld/%ld: %d pages not as the engine wrote them, %d DMAs failed",
			    r, rounds, bad_pages, failed_dmas);
			nfail++;
		} else {
			say("ROUND %ld/%ld ok: checked %d pages the engine wrote, %d DMAs uptime=%s",
			    r, rounds, r > 1 ? D_PAGES + S_PAGES : 0,
			    D_PAGES + S_PAGES, boot_seconds());
			npass++;
		}
	}
	finish();
}

/*
 * The display workload (MDPY_E2E=1): mdpy-fb (samples/vfio-mdev/mdpy-fb.c)
 * drives the mdpy mdev's framebuffer as /dev/fb0; this draws the picture
 * whose every pixel the host checks in QEMU's screendump
 * (scripts/guest/qemu-e2e.sh --display, mdpy_pixel there): red grows left
 * to right, green top to bottom, blue is a checkerboard of 80x60 squares
 * (inverted with MDPY_E2E_CORRUPT=1, which the check must catch).  Prints
 * DRAWN, reads the picture back after MDPY_E2E_HOLD seconds (the host takes
 * its screendump meanwhile) and ends.
 */
static unsigned int mdpy_pixel(unsigned int x, unsigned int y,
			       unsigned int w, unsigned int h, int corrupt)
{
	unsigned int r = x * 255 / (w - 1), g = y * 255 / (h - 1);
	unsigned int b = ((x / 80 + y / 60) & 1) ? 0xff : 0x00;

	if (corrupt)
		b ^= 0xff;
	return r << 16 | g << 8 | b;
}

static void mdpy_run(long hold, int corrupt)
{
	struct fb_var_screeninfo var;
	struct fb_fix_screeninfo fix;
	unsigned int x, y, bad = 0;
	volatile unsigned int *fb;
	struct timespec ts;
	int fd = -1, i;

	tag = "MDPY-E2E";
	for (i = 0; i < 100 && fd < 0; i++) {
		fd = open("/dev/fb0", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			usleep(100000);
	}
	if (fd < 0) {
		say("FAIL open /dev/fb0: %s (mdpy-fb bound to the mdev?)",
		    strerror(errno));
		nfail++;
		finish();
	}
	if (ioctl(fd, FBIOGET_VSCREENINFO, &var) ||
	    ioctl(fd, FBIOGET_FSCREENINFO, &fix)) {
		say("FAIL fb ioctls: %s", strerror(errno));
		nfail++;
		finish();
	}
	say("FB id=%.16s %ux%u bpp=%u line=%u mem=%u", fix.id, var.xres,
	    var.yres, var.bits_per_pixel, fix.line_length, fix.smem_len);
	if (var.bits_per_pixel != 32 || var.xres < 2 || var.yres < 2 ||
	    fix.line_length < var.xres * 4 ||
	    fix.smem_len < fix.line_length * var.yres) {
		say("FAIL unexpected framebuffer");
		nfail++;
		finish();
	}
	fb = mmap(NULL, fix.smem_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		  0);
	if (fb == MAP_FAILED) {
		say("FAIL mmap /dev/fb0: %s", strerror(errno));
		nfail++;
		finish();
	}
	for (y = 0; y < var.yres; y++)
		for (x = 0; x < var.xres; x++)
			fb[y * (fix.line_length / 4) + x] =
				mdpy_pixel(x, y, var.xres, var.yres, corrupt);
	say("DRAWN %ux%u uptime=%s", var.xres, var.yres, boot_seconds());
	ts.tv_sec = hold;
	ts.tv_nsec = 0;
	nanosleep(&ts, NULL);
	for (y = 0; y < var.yres; y++)
		for (x = 0; x < var.xres; x++)
			bad += fb[y * (fix.line_length / 4) + x] !=
			       mdpy_pixel(x, y, var.xres, var.yres, corrupt);
	if (bad) {
		say("FAIL %u pixels changed under the guest", bad);
		nfail++;
	} else {
		say("PASS the picture reads back");
		npass++;
	}
	finish();
}

int main(void)
{
	char ports[MAX_PORTS][16];
	long len, chunk, timeout, want, rounds, pause_ms, r;
	int corrupt, n, i;

	/* the kernel gave us /dev/console from the initramfs as fd 0, 1, 2 */
	say("INIT");
	mount_fs("devtmpfs", "/dev", "devtmpfs");
	mount_fs("proc", "/proc", "proc");
	mount_fs("sysfs", "/sys", "sysfs");
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (env_long("MDPY_E2E", 0))
		mdpy_run(env_long("MDPY_E2E_HOLD", 30),
			 env_long("MDPY_E2E_CORRUPT", 0) != 0);

	if (env_long("MDMA_E2E_ROUNDS", 0) > 0)
		mdma_run(env_long("MDMA_E2E_ROUNDS", 0),
			 env_long("MDMA_E2E_PAUSE_MS", 50));

	len = env_long("MTTY_E2E_LEN", 64);
	chunk = env_long("MTTY_E2E_CHUNK", 8);
	timeout = env_long("MTTY_E2E_TIMEOUT", 60);
	want = env_long("MTTY_E2E_PORTS", 0);
	corrupt = env_long("MTTY_E2E_CORRUPT", 0) != 0;
	if (len < 1 || len > MAX_LEN)
		len = 64;
	if (chunk < 1 || chunk > len)
		chunk = len;
	if (timeout < 1)
		timeout = 60;

	n = find_ports(ports, MAX_PORTS);
	say("START ports=%d uptime=%s", n < 0 ? 0 : n, boot_seconds());
	if (n <= 0) {
		say("FAIL no tty of PCI %04x:%04x (no vfio-pci device? 8250_pci?)",
		    MTTY_VENDOR, MTTY_DEVICE);
		nfail++;
		finish();
	}
	if (want && n != want) {
		say("FAIL found %d ports of PCI %04x:%04x, expected %ld",
		    n, MTTY_VENDOR, MTTY_DEVICE, want);
		nfail++;
	}
	rounds = env_long("MTTY_E2E_ROUNDS", 1);
	pause_ms = env_long("MTTY_E2E_PAUSE_MS", 500);
	if (rounds < 1)
		rounds = 1;
	/*
	 * Over several rounds, each port stays open in between, as a serial
	 * user keeps its line: the ports are started (request_irq) once, not
	 * shut down and started again every round (MTTY_E2E_REOPEN=1 does
	 * that; after a live migration it has shown an interrupt storm in
	 * QEMU 10, see the testing guide).
	 */
	for (i = 0; rounds > 1 && !env_long("MTTY_E2E_REOPEN", 0) && i < n; i++) {
		char path[160];

		snprintf(path, sizeof(path), "/dev/%s", ports[i]);
		if (open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC) < 0)
			say("FAIL port=%s open %s: %s", ports[i], path, strerror(errno));
	}
	for (r = 1; r <= rounds; r++) {
		if (rounds > 1) {
			say("ROUND %ld/%ld uptime=%s", r, rounds, boot_seconds());
			if (r > 1 && pause_ms > 0) {
				struct timespec ts = {
					.tv_sec = pause_ms / 1000,
					.tv_nsec = (pause_ms % 1000) * 1000000L,
				};

				nanosleep(&ts, NULL);
			}
		}
		for (i = 0; i < n; i++) {
			if (test_port(ports[i], i, len, chunk, timeout, corrupt))
				nfail++;
			else
				npass++;
		}
	}
	if (nfail || env_long("MTTY_E2E_DEBUG", 0)) {
		dump("/proc/tty/driver/serial");
		dump("/proc/interrupts");
	}
	finish();
	return 0;
}
