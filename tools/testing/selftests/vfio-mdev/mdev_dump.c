// SPDX-License-Identifier: GPL-2.0
/*
 * mdev_dump: a canonical, deterministic text dump of what user space can see
 * of the mdev core ABI, for differential testing of two implementations of
 * the core (scripts/guest/differential.sh loads one core after the other
 * with the same samples, runs this program for each and diffs the dumps).
 *
 * The dump has four parts:
 *  1. every parent under /sys/class/mdev_bus (sorted): the class link and
 *     every entry of every type directory (sorted) with its kind, mode and
 *     contents (or the errno of open/read), plus the /sys/bus/mdev tree;
 *  2. for every sample of mdev_samples[] listed in $MDEV_SAMPLES (mtty or
 *     mtty_rs for the mtty ABI; listing both is an error): a fixed
 *     script of writes to create/remove/bind/unbind/drivers_probe with fixed
 *     UUIDs (00000000-0000-4000-8000-000000000SNN, S = sample, NN = step),
 *     each recorded as "op -> byte count or errno name", followed by the
 *     kernel uevents it caused, the full listing of a device it created, and
 *     available_instances and devices/ of every type of the parent;
 *  3. for every such sample: unloading the sample module with two live mdevs
 *     (delete_module) and loading it again (modprobe), with the uevents;
 *  4. part 1 again, which must show the same state as at the start.
 *
 * Type directories are dumped without the class attributes of the Rust core
 * (class, fb_length, resolution, heads: an extension C drivers never have,
 * which mdev_sysfs_test checks), so that a Rust port declaring a class dumps
 * like its C sample.
 *
 * errno values are data, never failures.  The exit status is 1 when the
 * program itself cannot do its job (no mdev bus, mdevs present at start, a
 * uevent barrier that never arrives, lost uevents, a module that cannot be
 * loaded again, a cleanup that fails); such spots are also marked with an
 * "!error" line in the dump.  Whatever happens, every mdev it created is
 * removed and every module it unloaded is loaded again (atexit and signal
 * handlers; removal also scans /sys/bus/mdev/devices for its UUIDs).
 *
 * Normalised, because they legitimately vary between boots, module loads
 * and runs, and do not come from the mdev core:
 *  - the IOMMU group number N in "iommu_groups/N", "/dev/vfio/N",
 *    "devices/virtual/vfio/N" and DEVNAME=vfio/N becomes "<group>": vfio
 *    allocates one "vfio-noiommu" group per emulated device and the number
 *    comes from the IOMMU core's IDA, i.e. depends on every group allocated
 *    and freed before (earlier runs, the other core's run, other devices);
 *  - the vfio cdev index M in "vfio-dev/vfioM" and "/dev/vfio/devices/vfioM"
 *    (and DEVNAME=vfio/devices/vfioM) becomes "vfio<M>": from vfio's device
 *    IDA, for the same reason;
 *  - MAJOR=/MINOR= values (uevent files and uevents) and the contents of
 *    "dev" files become "<major>"/"<minor>": dynamic char device numbers
 *    (vfio and the samples allocate their majors at load time);
 *  - SEQNUM is dropped from uevents: a global counter;
 *  - a sample that implements the ABI of another one (mtty_rs, the Rust
 *    port of mtty, see "compat" in mdev_common.h) is dumped under the name
 *    of that sample, so that the dumps of two implementations can be diffed
 *    like the dumps of two cores: the "== <sample>" headers, the UUIDs, the
 *    module name of the unload/reload steps, the MDEV_SAMPLES header line,
 *    and "module/<module>" in paths (the driver's "module" link, the module's
 *    uevents) use the name of the ABI sample and its module.  The module
 *    name appears nowhere else; the class, parent and driver names are the
 *    same by definition and are not normalised.
 * The IOMMU group is still checked: its name, type and devices/ (which must
 * hold exactly the mdev) are listed through the iommu_group link, and the
 * /dev/vfio nodes are stat()ed.  Nothing else is normalised: UUIDs are fixed
 * and every other string is printed as read, escaped (\\, \n, \t, \xNN).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "mdev_common.h"

#define ARRAY_LEN(a)		(sizeof(a) / sizeof((a)[0]))

#define DUMP_UUID_PREFIX	"00000000-0000-4000-8000-"
#define NIL_UUID		"00000000-0000-0000-0000-000000000000"
#define BUS_UEVENT		MDEV_BUS_DIR "/uevent"
#define BARRIER_TIMEOUT_MS	20000
#define MAX_PARENTS		16
#define MAX_DIR_ENTRIES		256
#define CONTENT_MAX		8192
#define NORM_MAX		(CONTENT_MAX * 2)
#define POOL_ATTEMPTS_MAX	40

/* Parents seen at start: name and DEVPATH, for relative uevent devpaths */
struct parent_info {
	char name[256];
	char devpath[MDEV_PATH_MAX];
};

static struct parent_info parents[MAX_PARENTS];
static unsigned int nr_parents;

static const struct mdev_sample_desc *scripted[8];
static unsigned int nr_scripted;

static int uevent_fd = -1;
static unsigned int barrier_seq;
static int errors;

/* Set by the signal handler: end after the current step */
static volatile sig_atomic_t stop_signal;

/* Module names normalised to the module of the ABI sample (mtty_rs -> mtty) */
static struct {
	const char *from;
	const char *to;
} module_names[8];
static unsigned int nr_module_names;

/* A sample module this program unloaded and has not loaded again */
static const char *unloaded_module;

/* Devices created by the current phase, in creation order */
static struct mdev_tracker created;

/* ------------------------------------------------------------------ */
/* Output helpers */

static const struct {
	int err;
	const char *name;
} errno_names[] = {
	{ EPERM, "EPERM" },		{ ENOENT, "ENOENT" },
	{ ESRCH, "ESRCH" },		{ EINTR, "EINTR" },
	{ EIO, "EIO" },			{ ENXIO, "ENXIO" },
	{ E2BIG, "E2BIG" },		{ ENOEXEC, "ENOEXEC" },
	{ EBADF, "EBADF" },		{ ECHILD, "ECHILD" },
	{ EAGAIN, "EAGAIN" },		{ ENOMEM, "ENOMEM" },
	{ EACCES, "EACCES" },		{ EFAULT, "EFAULT" },
	{ EBUSY, "EBUSY" },		{ EEXIST, "EEXIST" },
	{ EXDEV, "EXDEV" },		{ ENODEV, "ENODEV" },
	{ ENOTDIR, "ENOTDIR" },		{ EISDIR, "EISDIR" },
	{ EINVAL, "EINVAL" },		{ ENFILE, "ENFILE" },
	{ EMFILE, "EMFILE" },		{ ENOTTY, "ENOTTY" },
	{ EFBIG, "EFBIG" },		{ ENOSPC, "ENOSPC" },
	{ ESPIPE, "ESPIPE" },		{ EROFS, "EROFS" },
	{ EMLINK, "EMLINK" },		{ EPIPE, "EPIPE" },
	{ EDOM, "EDOM" },		{ ERANGE, "ERANGE" },
	{ EDEADLK, "EDEADLK" },		{ ENAMETOOLONG, "ENAMETOOLONG" },
	{ ENOSYS, "ENOSYS" },		{ ENOTEMPTY, "ENOTEMPTY" },
	{ ELOOP, "ELOOP" },		{ ENODATA, "ENODATA" },
	{ EOVERFLOW, "EOVERFLOW" },	{ EUSERS, "EUSERS" },
	{ EOPNOTSUPP, "EOPNOTSUPP" },	{ ENOBUFS, "ENOBUFS" },
	{ ETIMEDOUT, "ETIMEDOUT" },	{ EALREADY, "EALREADY" },
	{ EINPROGRESS, "EINPROGRESS" },	{ ESTALE, "ESTALE" },
	{ ECANCELED, "ECANCELED" },	{ ENOKEY, "ENOKEY" },
	{ 512, "ERESTARTSYS" },		{ 517, "EPROBE_DEFER" },
	{ 524, "ENOTSUPP" },
};

static const char *errname(int err)
{
	static char buf[32];
	unsigned int i;

	if (err < 0)
		err = -err;
	for (i = 0; i < ARRAY_LEN(errno_names); i++)
		if (errno_names[i].err == err)
			return errno_names[i].name;
	snprintf(buf, sizeof(buf), "E#%d", err);
	return buf;
}

/* "N" for a byte count, the errno name for -errno */
static const char *result_str(ssize_t ret)
{
	static char buf[32];

	if (ret < 0)
		return errname((int)-ret);
	snprintf(buf, sizeof(buf), "%zd", ret);
	return buf;
}

static void put_escaped(const char *buf, size_t len)
{
	size_t i;

	putchar('"');
	for (i = 0; i < len; i++) {
		unsigned char c = buf[i];

		if (c == '\\' || c == '"')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void error_line(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Something unexpected: mark it in the dump and on stderr, fail the run */
static void error_line(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("!error %s\n", msg);
	fflush(stdout);
	fprintf(stderr, "mdev_dump: %s\n", msg);
	errors++;
}

static bool starts_digit(const char *p)
{
	return isdigit((unsigned char)*p);
}

/*
 * Copy src to dst with the normalisation described at the top of the file.
 * dev_file: src is the contents of a "dev" attribute ("MAJ:MIN\n").
 */
static void normalise(char *dst, size_t size, const char *src, size_t len,
		      bool dev_file)
{
	size_t o = 0, i = 0;

#define EMIT(str) do {						\
		const char *__s = (str);			\
		while (*__s && o + 1 < size)			\
			dst[o++] = *__s++;			\
	} while (0)
#define SKIP_DIGITS() do {					\
		while (i < len && isdigit((unsigned char)src[i]))	\
			i++;					\
	} while (0)

	if (dev_file) {
		size_t n = strspn(src, "0123456789:");

		if (n && memchr(src, ':', n)) {
			EMIT("<major>:<minor>");
			i = n;
		}
	}
	while (i < len) {
		bool boundary = !i || !isalnum((unsigned char)src[i - 1]);

		if (!strncmp(src + i, "iommu_groups/", 13) &&
		    starts_digit(src + i + 13)) {
			EMIT("iommu_groups/<group>");
			i += 13;
			SKIP_DIGITS();
			continue;
		}
		if (boundary && !strncmp(src + i, "vfio/", 5) &&
		    starts_digit(src + i + 5)) {
			EMIT("vfio/<group>");
			i += 5;
			SKIP_DIGITS();
			continue;
		}
		if (boundary && !strncmp(src + i, "vfio", 4) &&
		    starts_digit(src + i + 4)) {
			EMIT("vfio<M>");
			i += 4;
			SKIP_DIGITS();
			continue;
		}
		if ((!i || src[i - 1] == '/') &&
		    !strncmp(src + i, "module/", 7)) {
			const char *to = NULL;
			unsigned int k;
			size_t n = 0;

			for (k = 0; k < nr_module_names && !to; k++) {
				n = strlen(module_names[k].from);
				if (i + 7 + n > len ||
				    strncmp(src + i + 7, module_names[k].from, n))
					continue;
				if (i + 7 + n == len ||
				    (!isalnum((unsigned char)src[i + 7 + n]) &&
				     src[i + 7 + n] != '_'))
					to = module_names[k].to;
			}
			if (to) {
				EMIT("module/");
				EMIT(to);
				i += 7 + n;
				continue;
			}
		}
		if (boundary && (!strncmp(src + i, "MAJOR=", 6) ||
				 !strncmp(src + i, "MINOR=", 6)) &&
		    starts_digit(src + i + 6)) {
			EMIT(src[i + 1] == 'A' ? "MAJOR=<major>" :
						 "MINOR=<minor>");
			i += 6;
			SKIP_DIGITS();
			continue;
		}
		if (o + 1 < size)
			dst[o++] = src[i];
		i++;
	}
	dst[o] = '\0';
#undef EMIT
#undef SKIP_DIGITS
}

static const char *norm(const char *s)
{
	static char buf[4][NORM_MAX];
	static unsigned int slot;
	char *dst = buf[slot++ % ARRAY_LEN(buf)];

	normalise(dst, NORM_MAX, s, strlen(s), false);
	return dst;
}

/* ------------------------------------------------------------------ */
/* Directories */

struct dir_list {
	unsigned int n;
	char *names[MAX_DIR_ENTRIES];
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of a directory without . and ..; 0 or -errno */
static int dir_read(const char *path, struct dir_list *l)
{
	struct dirent *de;
	DIR *d;

	l->n = 0;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (l->n == MAX_DIR_ENTRIES) {
			error_line("more than %d entries in %s",
				   MAX_DIR_ENTRIES, path);
			break;
		}
		l->names[l->n] = strdup(de->d_name);
		if (!l->names[l->n])
			break;
		l->n++;
	}
	closedir(d);
	qsort(l->names, l->n, sizeof(l->names[0]), cmp_str);
	return 0;
}

static void dir_free(struct dir_list *l)
{
	while (l->n)
		free(l->names[--l->n]);
}

/* Print " = "contents"" or " open:ERR" / " read:ERR" for a regular file */
static void show_contents(const char *path, const char *name)
{
	char buf[CONTENT_MAX], out[NORM_MAX];
	ssize_t total = 0, n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		printf(" open:%s", errname(errno));
		return;
	}
	while ((size_t)total < sizeof(buf) - 1) {
		n = read(fd, buf + total, sizeof(buf) - 1 - total);
		if (n < 0) {
			printf(" read:%s", errname(errno));
			close(fd);
			return;
		}
		if (!n)
			break;
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	normalise(out, sizeof(out), buf, total, !strcmp(name, "dev"));
	fputs(" = ", stdout);
	/* normalise() stops at a NUL: print NULs of the raw text escaped */
	if (memchr(buf, '\0', total))
		put_escaped(buf, total);
	else
		put_escaped(out, strlen(out));
}

static void list_tree(const char *path, const char *rel, int depth,
		      int maxdepth, int indent);

/* stat() a device node and print its kind and mode */
static void show_devnode(const char *node, int indent)
{
	struct stat st;

	printf("%*sdevnode %s", indent, "", norm(node));
	if (stat(node, &st)) {
		printf(" stat:%s\n", errname(errno));
		return;
	}
	printf(" %s %04o\n", S_ISCHR(st.st_mode) ? "chr" :
	       S_ISBLK(st.st_mode) ? "blk" : "other",
	       (unsigned int)(st.st_mode & 07777));
}

/*
 * One entry: "<rel> <kind> <mode>" then the link target or the file
 * contents; directories are descended while depth < maxdepth.  The
 * iommu_group link of a device is followed (its group is listed), and the
 * /dev nodes of the group and of vfio-dev/vfioM are stat()ed.
 */
static void show_entry(const char *dir, const char *name, const char *rel,
		       int depth, int maxdepth, int indent)
{
	char path[MDEV_PATH_MAX], disp[MDEV_PATH_MAX], target[MDEV_PATH_MAX];
	struct stat st;

	mdev_pathf(path, sizeof(path), "%s/%s", dir, name);
	if (rel)
		mdev_pathf(disp, sizeof(disp), "%s/%s", rel, name);
	else
		mdev_pathf(disp, sizeof(disp), "%s", name);

	printf("%*s%s", indent, "", norm(disp));
	if (lstat(path, &st)) {
		printf(" lstat:%s\n", errname(errno));
		return;
	}
	if (S_ISLNK(st.st_mode)) {
		int ret = mdev_readlink(path, target, sizeof(target));

		printf(" link %04o -> %s\n", (unsigned int)(st.st_mode & 07777),
		       ret ? errname(-ret) : norm(target));
		if (!ret && !strcmp(name, "iommu_group") && depth == 0) {
			char real[MDEV_PATH_MAX], node[MDEV_PATH_MAX];

			list_tree(path, disp, depth + 1, depth + 2, indent);
			if (!mdev_realpath(path, real, sizeof(real))) {
				mdev_pathf(node, sizeof(node), "/dev/vfio/%s",
					   mdev_basename(real));
				show_devnode(node, indent);
			}
		}
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		printf(" dir %04o\n", (unsigned int)(st.st_mode & 07777));
		if (rel && !strcmp(rel, "vfio-dev") &&
		    !strncmp(name, "vfio", 4)) {
			char node[MDEV_PATH_MAX];

			mdev_pathf(node, sizeof(node), "/dev/vfio/devices/%s",
				   name);
			show_devnode(node, indent);
		}
		if (depth < maxdepth)
			list_tree(path, disp, depth + 1, maxdepth, indent);
		return;
	}
	printf(" %s %04o", S_ISREG(st.st_mode) ? "file" : "other",
	       (unsigned int)(st.st_mode & 07777));
	if (S_ISREG(st.st_mode))
		show_contents(path, name);
	putchar('\n');
}

/*
 * The class attributes of the Rust core's type directories (an extension
 * that C drivers never have, Documentation/ABI/testing/
 * sysfs-class-mdev_bus-class), left out of the dump so that a Rust port that
 * declares a class (mdpy_rs) dumps like its C sample; mdev_sysfs_test checks
 * them.
 */
static bool type_class_attr(const char *name)
{
	static const char *const names[] = {
		"class", "fb_length", "resolution", "heads",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(names); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

/*
 * Every entry of path (sorted), names shown relative as rel/<name>; in a
 * type directory (type_dir), without the class attributes.
 */
static void list_tree_in(const char *path, const char *rel, int depth,
			 int maxdepth, int indent, bool type_dir)
{
	struct dir_list l;
	unsigned int i;
	int ret;

	ret = dir_read(path, &l);
	if (ret) {
		printf("%*s%s opendir:%s\n", indent, "", rel ? norm(rel) : ".",
		       errname(-ret));
		return;
	}
	for (i = 0; i < l.n; i++)
		if (!type_dir || !type_class_attr(l.names[i]))
			show_entry(path, l.names[i], rel, depth, maxdepth,
				   indent);
	dir_free(&l);
}

/* Every entry of path (sorted), names shown relative as rel/<name> */
static void list_tree(const char *path, const char *rel, int depth,
		      int maxdepth, int indent)
{
	list_tree_in(path, rel, depth, maxdepth, indent, false);
}

/* ------------------------------------------------------------------ */
/* Parents, types and the bus */

static void dump_parent(const char *name)
{
	char path[MDEV_PATH_MAX], target[MDEV_PATH_MAX];
	struct dir_list types;
	unsigned int i;
	int ret;

	mdev_pathf(path, sizeof(path), MDEV_CLASS_DIR "/%s", name);
	ret = mdev_readlink(path, target, sizeof(target));
	printf("parent %s -> %s\n", name, ret ? errname(-ret) : norm(target));

	mdev_pathf(path, sizeof(path), MDEV_CLASS_DIR "/%s/mdev_supported_types",
		   name);
	ret = dir_read(path, &types);
	if (ret) {
		printf("  mdev_supported_types opendir:%s\n", errname(-ret));
		return;
	}
	for (i = 0; i < types.n; i++) {
		char tpath[MDEV_PATH_MAX];

		mdev_pathf(tpath, sizeof(tpath), "%s/%s", path, types.names[i]);
		printf("  type %s\n", types.names[i]);
		list_tree_in(tpath, NULL, 0, 1, 4, true);
	}
	dir_free(&types);
}

static void dump_parents(const char *title)
{
	struct dir_list l;
	unsigned int i;
	int ret;

	printf("== %s: parents in " MDEV_CLASS_DIR "\n", title);
	ret = dir_read(MDEV_CLASS_DIR, &l);
	if (ret) {
		error_line("opendir " MDEV_CLASS_DIR ": %s", errname(-ret));
		return;
	}
	for (i = 0; i < l.n; i++)
		dump_parent(l.names[i]);
	dir_free(&l);

	printf("== %s: " MDEV_BUS_DIR "\n", title);
	list_tree(MDEV_BUS_DIR, NULL, 0, 2, 2);
}

/* Remember the parents' DEVPATHs (for uevents after they are gone) */
static void scan_parents(void)
{
	struct dir_list l;
	unsigned int i;

	if (dir_read(MDEV_CLASS_DIR, &l))
		return;
	for (i = 0; i < l.n && nr_parents < MAX_PARENTS; i++) {
		struct parent_info *p = &parents[nr_parents];
		char path[MDEV_PATH_MAX], real[MDEV_PATH_MAX];

		mdev_pathf(path, sizeof(path), MDEV_CLASS_DIR "/%s", l.names[i]);
		if (mdev_realpath(path, real, sizeof(real)) ||
		    strncmp(real, "/sys/", 5))
			continue;
		snprintf(p->name, sizeof(p->name), "%s", l.names[i]);
		snprintf(p->devpath, sizeof(p->devpath), "%s", real + 4);
		nr_parents++;
	}
	dir_free(&l);
}

/* ------------------------------------------------------------------ */
/* Uevents */

/* devpath relative to a parent ("{mtty}/<uuid>"), else normalised */
static void print_devpath(const char *devpath)
{
	unsigned int i;

	for (i = 0; i < nr_parents; i++) {
		size_t n = strlen(parents[i].devpath);

		if (!strncmp(devpath, parents[i].devpath, n) &&
		    (devpath[n] == '/' || !devpath[n])) {
			printf("{%s}%s", parents[i].name, norm(devpath + n));
			return;
		}
	}
	fputs(norm(devpath), stdout);
}

static void print_uevent(const struct mdev_uevent *ev)
{
	const char *p = ev->devpath + strlen(ev->devpath) + 1;
	const char *end = ev->buf + ev->len;

	printf("  uevent %s ", ev->action);
	print_devpath(ev->devpath);
	for (; p < end; p += strlen(p) + 1) {
		if (!strncmp(p, "ACTION=", 7) || !strncmp(p, "DEVPATH=", 8) ||
		    !strncmp(p, "SEQNUM=", 7))
			continue;
		printf(" %s", norm(p));
	}
	putchar('\n');
}

/*
 * Print every uevent received since the last call, in order.  Uevents are
 * sent synchronously by the writer, so a synthetic "change" uevent of the
 * mdev bus, requested afterwards with a unique SYNTH_UUID, marks the end of
 * what the step caused.
 */
static void flush_uevents(void)
{
	char want[64], cmd[128];
	struct mdev_uevent ev;
	ssize_t ret;

	barrier_seq++;
	snprintf(want, sizeof(want), "ffffffff-0000-4000-8000-%012x",
		 barrier_seq);
	snprintf(cmd, sizeof(cmd), "change %s", want);
	ret = mdev_write_str(BUS_UEVENT, cmd);
	if (ret < 0) {
		error_line("uevent barrier: write %s: %s", BUS_UEVENT,
			   errname(-ret));
		return;
	}
	for (;;) {
		const char *v;
		int r = mdev_uevent_recv(uevent_fd, &ev, BARRIER_TIMEOUT_MS);

		if (r) {
			error_line("uevent barrier %u: %s", barrier_seq,
				   errname(-r));
			return;
		}
		v = mdev_uevent_get(&ev, "SYNTH_UUID");
		if (!strcmp(ev.action, "change") &&
		    !strcmp(ev.devpath, "/bus/mdev") && v) {
			if (!strcmp(v, want))
				return;
			continue;	/* an older barrier */
		}
		print_uevent(&ev);
	}
}

/* ------------------------------------------------------------------ */
/* State after a step */

static void print_names(const char *label, const char *path, bool uuids_only)
{
	struct dir_list l;
	unsigned int i;
	bool any = false;
	int ret;

	ret = dir_read(path, &l);
	if (ret) {
		printf("  %s: opendir:%s\n", label, errname(-ret));
		return;
	}
	for (i = 0; i < l.n; i++) {
		if (uuids_only && strlen(l.names[i]) != MDEV_UUID_LEN)
			continue;
		if (!any)
			printf("  %s:", label);
		printf(" %s", l.names[i]);
		any = true;
	}
	if (any)
		putchar('\n');
	dir_free(&l);
}

/*
 * available_instances of every type of the parent in one line, then the
 * non-empty devices/ of its types, the devices on the mdev bus and the
 * devices bound to the sample's driver.
 */
static void show_state(const struct mdev_sample_desc *s)
{
	char path[MDEV_PATH_MAX], label[MDEV_PATH_MAX], buf[64];
	struct dir_list types;
	unsigned int i;
	int ret;

	mdev_parent_path(path, sizeof(path), s, "mdev_supported_types");
	ret = dir_read(path, &types);
	if (ret) {
		printf("  avail: mdev_supported_types opendir:%s\n",
		       errname(-ret));
	} else {
		printf("  avail:");
		for (i = 0; i < types.n; i++) {
			ssize_t n;

			mdev_type_path(path, sizeof(path), s, types.names[i],
				       "available_instances");
			n = mdev_read_file(path, buf, sizeof(buf));
			if (n < 0) {
				printf(" %s=%s", types.names[i], errname(-n));
				continue;
			}
			printf(" %s=", types.names[i]);
			put_escaped(buf, n);
		}
		putchar('\n');
		for (i = 0; i < types.n; i++) {
			mdev_type_path(path, sizeof(path), s, types.names[i],
				       "devices");
			mdev_pathf(label, sizeof(label), "%s/devices",
				   types.names[i]);
			print_names(label, path, false);
		}
		dir_free(&types);
	}
	print_names("bus", MDEV_BUS_DEVICES, false);
	mdev_pathf(path, sizeof(path), MDEV_BUS_DIR "/drivers/%s", s->driver);
	mdev_pathf(label, sizeof(label), "bound %s", s->driver);
	print_names(label, path, true);
}

/* Full listing of /sys/bus/mdev/devices/<uuid>/ */
static void show_device(const char *uuid)
{
	char path[MDEV_PATH_MAX], target[MDEV_PATH_MAX];
	int ret;

	mdev_dev_path(path, sizeof(path), uuid, NULL);
	ret = mdev_readlink(path, target, sizeof(target));
	printf("  device %s -> %s\n", uuid, ret ? errname(-ret) : norm(target));
	if (ret)
		return;
	list_tree(path, NULL, 0, 2, 4);
}

/* ------------------------------------------------------------------ */
/* Operations */

/* The name a sample is dumped under: that of the ABI it implements */
static const char *abi_name(const struct mdev_sample_desc *s)
{
	return mdev_sample_base(s)->sample;
}

static void uuid_of(char uuid[MDEV_UUID_LEN + 1],
		    const struct mdev_sample_desc *s, unsigned int n)
{
	unsigned int idx = mdev_sample_base(s) - mdev_samples + 1;

	snprintf(uuid, MDEV_UUID_LEN + 1, DUMP_UUID_PREFIX "%09x%03x", idx, n);
}

/* the lower-case device name a create of buf would make, or "" */
static void created_name(char name[MDEV_UUID_LEN + 1], const char *buf,
			 size_t len)
{
	size_t i;

	name[0] = '\0';
	if (len < MDEV_UUID_LEN)
		return;
	for (i = 0; i < MDEV_UUID_LEN; i++)
		name[i] = tolower((unsigned char)buf[i]);
	name[MDEV_UUID_LEN] = '\0';
}

static void step_head(const char *id, const char *what, const char *path,
		      const void *buf, size_t len)
{
	printf("step %s: %s %s", id, what, path);
	if (buf) {
		printf(" %zu ", len);
		put_escaped(buf, len);
	}
}

/* The end of every step: result, uevents, created device, state */
static void step_tail(const struct mdev_sample_desc *s, const char *res,
		      const char *listing)
{
	printf(" -> %s\n", res);
	flush_uevents();
	if (listing && *listing)
		show_device(listing);
	show_state(s);
	fflush(stdout);
	if (stop_signal) {
		error_line("interrupted by signal %d", (int)stop_signal);
		exit(128 + stop_signal);
	}
}

/* One open() + one write() of buf to path */
static ssize_t step_write(const struct mdev_sample_desc *s, const char *id,
			  const char *path, const void *buf, size_t len)
{
	ssize_t ret;

	step_head(id, "write", path, buf, len);
	ret = mdev_write_file(path, buf, len);
	step_tail(s, result_str(ret), NULL);
	return ret;
}

/* Write buf to <type>/create; list and track the device it made */
static ssize_t step_create(const struct mdev_sample_desc *s, const char *id,
			   const char *type, const void *buf, size_t len)
{
	char path[MDEV_PATH_MAX], name[MDEV_UUID_LEN + 1];
	ssize_t ret;

	mdev_type_path(path, sizeof(path), s, type, "create");
	created_name(name, buf, len);
	step_head(id, "write", path, buf, len);
	ret = mdev_write_file(path, buf, len);
	if (ret > 0 && name[0])
		mdev_track(&created, name);
	step_tail(s, result_str(ret), ret > 0 ? name : NULL);
	return ret;
}

static ssize_t step_create_uuid(const struct mdev_sample_desc *s,
				const char *id, const char *type,
				const char *uuid)
{
	return step_create(s, id, type, uuid, MDEV_UUID_LEN);
}

static ssize_t step_remove(const struct mdev_sample_desc *s, const char *id,
			   const char *uuid, const char *buf, size_t len)
{
	char path[MDEV_PATH_MAX];

	mdev_dev_path(path, sizeof(path), uuid, "remove");
	return step_write(s, id, path, buf, len);
}

static void step_open(const struct mdev_sample_desc *s, const char *id,
		      const char *path, int flags)
{
	int err = mdev_open_errno(path, flags);

	printf("step %s: open %s %s", id, path,
	       flags == O_RDONLY ? "O_RDONLY" :
	       flags == O_WRONLY ? "O_WRONLY" : "O_RDWR");
	step_tail(s, err ? errname(err) : "0", NULL);
}

static void step_lstat(const struct mdev_sample_desc *s, const char *id,
		       const char *path)
{
	int err = mdev_lstat_errno(path);

	printf("step %s: lstat %s", id, path);
	step_tail(s, err ? errname(err) : "0", NULL);
}

/* Remove what the phase created, in creation order */
static void remove_created(const struct mdev_sample_desc *s, const char *id)
{
	char path[MDEV_PATH_MAX], sid[64];
	unsigned int i;

	for (i = 0; i < created.n; i++) {
		mdev_dev_path(path, sizeof(path), created.uuid[i], NULL);
		if (!mdev_exists(path))
			continue;
		snprintf(sid, sizeof(sid), "%s.%02u", id, i);
		step_remove(s, sid, created.uuid[i], "1", 1);
	}
	created.n = 0;
}

/* ------------------------------------------------------------------ */
/* The script */

static const struct mdev_sample_desc *
other_sample(const struct mdev_sample_desc *s)
{
	unsigned int i;

	for (i = 0; i < nr_scripted; i++)
		if (scripted[i] == s)
			return scripted[(i + 1) % nr_scripted] != s ?
			       scripted[(i + 1) % nr_scripted] : NULL;
	return NULL;
}

/* Remove a device with "1" and forget it */
static void step_remove_tracked(const struct mdev_sample_desc *s,
				const char *id, const char *uuid)
{
	step_remove(s, id, uuid, "1", 1);
	mdev_untrack(&created, uuid);
}

/*
 * A: the create errno table on the first type.  At most two devices exist
 * at a time, so that the smallest pool (mdpy, 4) never runs out here.
 */
static void phase_create(const struct mdev_sample_desc *s)
{
	const struct mdev_sample_desc *o = other_sample(s);
	const char *t0 = s->types[0].id;
	char u[MDEV_UUID_LEN + 1], up[MDEV_UUID_LEN + 1];
	char buf[128], path[MDEV_PATH_MAX], sid[32];
	unsigned int i;

	printf("== %s A: create table on %s\n", abi_name(s), t0);
	created.n = 0;

	uuid_of(u, s, 0x01);
	step_create(s, "A01 35 bytes", t0, u, 35);
	step_create(s, "A02 36 bytes", t0, u, 36);

	uuid_of(u, s, 0x02);
	snprintf(buf, sizeof(buf), "%s\n", u);
	step_create(s, "A03 uuid+\\n", t0, buf, 37);
	step_remove_tracked(s, "A03r remove", u);

	uuid_of(u, s, 0x03);
	snprintf(buf, sizeof(buf), "%sx", u);
	step_create(s, "A04 uuid+x", t0, buf, 37);
	step_remove_tracked(s, "A04r remove", u);

	uuid_of(u, s, 0x04);
	memcpy(buf, u, MDEV_UUID_LEN);
	buf[MDEV_UUID_LEN] = '\0';
	step_create(s, "A05 uuid+NUL", t0, buf, 37);
	step_remove_tracked(s, "A05r remove", u);

	uuid_of(u, s, 0x05);
	snprintf(buf, sizeof(buf), "%s\n\n", u);
	step_create(s, "A06 38 bytes", t0, buf, 38);
	snprintf(buf, sizeof(buf), "%s %s", u, u);
	step_create(s, "A07 two uuids", t0, buf, strlen(buf));
	step_create(s, "A08 0 bytes", t0, u, 0);

	uuid_of(u, s, 0x06);
	snprintf(buf, sizeof(buf), "%s", u);
	buf[0] = 'g';
	step_create(s, "A09 g at 0", t0, buf, 36);
	snprintf(buf, sizeof(buf), "%s\n", u);
	buf[35] = 'z';
	step_create(s, "A10 z at 35", t0, buf, 37);
	snprintf(buf, sizeof(buf), "%s", u);
	buf[8] = buf[9];
	buf[9] = '-';
	step_create(s, "A11 dash at 9", t0, buf, 36);
	snprintf(buf, sizeof(buf), "%s", u);
	buf[23] = 'a';
	step_create(s, "A12 no dash at 23", t0, buf, 36);
	snprintf(buf, sizeof(buf), " %s", u);
	step_create(s, "A13 space+uuid", t0, buf, 37);
	snprintf(buf, sizeof(buf), "{%s}", u);
	step_create(s, "A14 braces", t0, buf, 38);
	memset(buf, '-', MDEV_UUID_LEN);
	step_create(s, "A15 all dashes", t0, buf, MDEV_UUID_LEN);

	/* the nil UUID is a valid UUID */
	step_create(s, "A16 nil uuid", t0, NIL_UUID, MDEV_UUID_LEN);
	step_remove_tracked(s, "A16r remove", NIL_UUID);

	/* upper case is accepted, the device is named in lower case */
	uuid_of(u, s, 0xab);
	mdev_str_upper(up, u, sizeof(up));
	step_create(s, "A17 upper case", t0, up, MDEV_UUID_LEN);
	mdev_dev_path(path, sizeof(path), up, NULL);
	step_lstat(s, "A18 upper-case name", path);

	/* duplicates: on every type, in both cases, on another parent */
	uuid_of(u, s, 0x01);
	for (i = 0; i < s->nr_types; i++) {
		snprintf(sid, sizeof(sid), "A19.%u dup", i);
		step_create_uuid(s, sid, s->types[i].id, u);
	}
	uuid_of(u, s, 0xab);
	step_create_uuid(s, "A20 dup lower of upper", t0, u);
	step_create_uuid(s, "A21 dup upper", t0, up);
	if (o) {
		uuid_of(u, s, 0x01);
		step_create_uuid(o, "A22 dup on other parent",
				 o->types[0].id, u);
		step_create_uuid(o, "A23 dup upper on other parent",
				 o->types[0].id, up);
	} else {
		printf("step A22: no other parent\n");
	}

	remove_created(s, "A99 remove");
}

/* B: pool exhaustion with the most expensive type */
static void phase_pool(const struct mdev_sample_desc *s)
{
	const struct mdev_type_desc *big = &s->types[0];
	char u[MDEV_UUID_LEN + 1], sid[32];
	unsigned int i, n = 0;
	ssize_t ret;

	for (i = 1; i < s->nr_types; i++)
		if (s->types[i].cost > big->cost)
			big = &s->types[i];
	printf("== %s B: pool exhaustion with %s\n", abi_name(s), big->id);
	created.n = 0;

	do {
		uuid_of(u, s, 0x20 + n);
		snprintf(sid, sizeof(sid), "B01.%02u fill", n);
		ret = step_create_uuid(s, sid, big->id, u);
	} while (ret > 0 && ++n < POOL_ATTEMPTS_MAX);

	for (i = 0; i < s->nr_types; i++) {
		uuid_of(u, s, 0x60 + i);
		snprintf(sid, sizeof(sid), "B02.%u full", i);
		step_create_uuid(s, sid, s->types[i].id, u);
	}

	/* give back one big instance, take a small one */
	if (n) {
		uuid_of(u, s, 0x20 + n - 1);
		step_remove_tracked(s, "B03 free one", u);
	}
	uuid_of(u, s, 0x68);
	step_create_uuid(s, "B04 small after free", s->types[0].id, u);
	for (i = 0; i < s->nr_types; i++) {
		uuid_of(u, s, 0x70 + i);
		snprintf(sid, sizeof(sid), "B05.%u again", i);
		step_create_uuid(s, sid, s->types[i].id, u);
	}

	remove_created(s, "B99 remove");
}

struct remove_row {
	const char *id;
	const char *data;
	size_t len;
};

static const struct remove_row remove_rows[] = {
	{ "C01 0", "0", 1 },
	{ "C02 0\\n", "0\n", 2 },
	{ "C03 0x0", "0x0", 3 },
	{ "C04 0 bytes", "", 0 },
	{ "C05 garbage", "garbage", 7 },
	{ "C06 -1", "-1", 2 },
	{ "C07 1x", "1x", 2 },
	{ "C08 space 1", " 1", 2 },
	{ "C09 overflow", "18446744073709551616", 20 },
	{ "C10 1", "1", 1 },
	{ "C11 1\\n", "1\n", 2 },
	{ "C12 0x1", "0x1", 3 },
	{ "C13 2", "2", 1 },
	{ "C14 1\\n\\n", "1\n\n", 3 },
};

/* C: the remove table, stale fds, bind/unbind */
static void phase_remove(const struct mdev_sample_desc *s, int *fds)
{
	const char *t0 = s->types[0].id;
	char u[MDEV_UUID_LEN + 1], path[MDEV_PATH_MAX], sid[32];
	char bind[MDEV_PATH_MAX], unbind[MDEV_PATH_MAX];
	unsigned int i;
	ssize_t ret;

	printf("== %s C: remove table on %s\n", abi_name(s), t0);
	created.n = 0;

	for (i = 0; i < ARRAY_LEN(remove_rows); i++) {
		const struct remove_row *r = &remove_rows[i];

		uuid_of(u, s, 0x80 + i);
		snprintf(sid, sizeof(sid), "%s create", r->id);
		if (step_create_uuid(s, sid, t0, u) <= 0)
			continue;
		step_remove(s, r->id, u, r->data, r->len);
		mdev_dev_path(path, sizeof(path), u, NULL);
		if (mdev_exists(path)) {
			snprintf(sid, sizeof(sid), "%s then 1", r->id);
			step_remove(s, sid, u, "1", 1);
		}
		mdev_untrack(&created, u);
	}
	remove_created(s, "C29 remove rest");

	/* the remove file goes with the device: a new open is ENOENT */
	uuid_of(u, s, 0xa0);
	step_create_uuid(s, "C30 create", t0, u);
	mdev_dev_path(path, sizeof(path), u, "remove");
	step_open(s, "C31 open remove", path, O_RDONLY);
	step_open(s, "C32 open remove", path, O_RDWR);
	step_remove_tracked(s, "C33 remove", u);
	step_open(s, "C34 open removed", path, O_WRONLY);
	step_remove(s, "C35 remove again", u, "1", 1);

	/* two fds opened before the removal: both stale afterwards */
	uuid_of(u, s, 0xa1);
	step_create_uuid(s, "C40 create", t0, u);
	mdev_dev_path(path, sizeof(path), u, "remove");
	fds[0] = open(path, O_WRONLY | O_CLOEXEC);
	fds[1] = open(path, O_WRONLY | O_CLOEXEC);
	if (fds[0] < 0 || fds[1] < 0) {
		error_line("open %s: %s", path, errname(errno));
	} else {
		printf("step C41 fd1: write %s 1 \"1\"", path);
		ret = write(fds[0], "1", 1);
		step_tail(s, result_str(ret < 0 ? -errno : ret), NULL);
		printf("step C42 fd2 stale: write %s 1 \"1\"", path);
		ret = write(fds[1], "1", 1);
		step_tail(s, result_str(ret < 0 ? -errno : ret), NULL);
		printf("step C43 fd1 stale: write %s 1 \"1\"", path);
		ret = write(fds[0], "1", 1);
		step_tail(s, result_str(ret < 0 ? -errno : ret), NULL);
	}
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	fds[0] = fds[1] = -1;
	remove_created(s, "C49 remove rest");

	/* bind never matches; unbind detaches the vendor driver */
	snprintf(bind, sizeof(bind), MDEV_BUS_DIR "/drivers/%s/bind", s->driver);
	snprintf(unbind, sizeof(unbind), MDEV_BUS_DIR "/drivers/%s/unbind",
		 s->driver);
	uuid_of(u, s, 0xa2);
	step_create_uuid(s, "C50 create", t0, u);
	step_write(s, "C51 bind bound", bind, u, MDEV_UUID_LEN);
	step_write(s, "C52 bind nil", bind, NIL_UUID, MDEV_UUID_LEN);
	step_write(s, "C53 bind garbage", bind, "garbage", 7);
	step_write(s, "C54 unbind garbage", unbind, "garbage", 7);
	step_write(s, "C55 unbind", unbind, u, MDEV_UUID_LEN);
	show_device(u);
	step_write(s, "C56 unbind unbound", unbind, u, MDEV_UUID_LEN);
	step_write(s, "C57 bind unbound", bind, u, MDEV_UUID_LEN);
	step_write(s, "C58 drivers_probe", MDEV_BUS_DIR "/drivers_probe", u,
		   MDEV_UUID_LEN);
	show_device(u);
	step_remove_tracked(s, "C59 remove unbound", u);
	remove_created(s, "C99 remove rest");
}

/* D: unload the sample with live mdevs, load it again */
static void phase_module(const struct mdev_sample_desc *s)
{
	const struct mdev_type_desc *last = &s->types[s->nr_types - 1];
	char u[MDEV_UUID_LEN + 1], path[MDEV_PATH_MAX];
	long ret;
	int rc;

	printf("== %s D: module unload with live mdevs, reload\n",
	       abi_name(s));
	created.n = 0;
	uuid_of(u, s, 0xc0);
	step_create_uuid(s, "D01 create", s->types[0].id, u);
	uuid_of(u, s, 0xc1);
	step_create_uuid(s, "D02 create", last->id, u);

	printf("step D03: delete_module %s O_NONBLOCK",
	       mdev_sample_base(s)->module);
	fflush(stdout);
	unloaded_module = s->module;
	ret = syscall(__NR_delete_module, s->module, O_NONBLOCK);
	if (ret) {
		int err = errno;

		unloaded_module = NULL;
		step_tail(s, errname(err), NULL);
	} else {
		created.n = 0;
		step_tail(s, "0", NULL);
	}
	mdev_parent_path(path, sizeof(path), s, NULL);
	step_lstat(s, "D04 parent", path);
	snprintf(path, sizeof(path), MDEV_BUS_DIR "/drivers/%s", s->driver);
	step_lstat(s, "D05 driver", path);

	if (unloaded_module) {
		printf("step D06: modprobe %s", mdev_sample_base(s)->module);
		fflush(stdout);
		rc = mdev_modprobe(s->module, false);
		step_tail(s, rc ? "failed" : "0", NULL);
		if (!rc && mdev_module_loaded(s->module))
			unloaded_module = NULL;
		else
			error_line("modprobe %s: status %d", s->module, rc);
		dump_parent(s->parent);
	}
	remove_created(s, "D99 remove");
}

/* ------------------------------------------------------------------ */
/* Cleanup */

static int stale_fds[2] = { -1, -1 };

static bool ours(const char *name)
{
	return !strncmp(name, DUMP_UUID_PREFIX, strlen(DUMP_UUID_PREFIX)) ||
	       !strcmp(name, NIL_UUID);
}

/* Remove every mdev of ours, reload an unloaded module; 0 or failures */
static int cleanup(void)
{
	static bool done;
	struct dir_list l;
	int failed = 0;
	unsigned int i;

	if (done)
		return 0;
	done = true;
	for (i = 0; i < 2; i++)
		if (stale_fds[i] >= 0)
			close(stale_fds[i]);
	if (!dir_read(MDEV_BUS_DEVICES, &l)) {
		for (i = 0; i < l.n; i++) {
			int ret;

			if (!ours(l.names[i]))
				continue;
			ret = mdev_remove(l.names[i]);
			if (ret && ret != -ENOENT) {
				fprintf(stderr, "mdev_dump: cleanup: remove %s: %s\n",
					l.names[i], errname(-ret));
				failed++;
			}
		}
		dir_free(&l);
	}
	if (unloaded_module) {
		int rc = mdev_modprobe(unloaded_module, false);

		if (rc) {
			fprintf(stderr, "mdev_dump: cleanup: modprobe %s: %d\n",
				unloaded_module, rc);
			failed++;
		}
		unloaded_module = NULL;
	}
	return failed;
}

static void cleanup_atexit(void)
{
	cleanup();
}

/*
 * A signal only sets stop_signal (async-signal safe); the next step ends the
 * program through exit() and the atexit cleanup.  A second signal while the
 * program still runs (e.g. stuck in a write) takes the default action.
 */
static void on_signal(int sig)
{
	if (stop_signal) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	stop_signal = sig;
}

/*
 * $MDEV_SAMPLES for the header line, every sample replaced by the name of
 * the ABI it implements ("mtty_rs mdpy" -> "mtty mdpy").
 */
static const char *samples_header(void)
{
	static char buf[1024];
	const char *p = mdev_samples_env();
	size_t o = 0;

	buf[0] = '\0';
	while (*p) {
		const struct mdev_sample_desc *s;
		char word[128];
		size_t n = strcspn(p, " \t\n,");

		if (!n) {
			if (o + 1 < sizeof(buf))
				buf[o++] = *p;
			buf[o] = '\0';
			p++;
			continue;
		}
		snprintf(word, sizeof(word), "%.*s", (int)n, p);
		s = mdev_sample_find(word);
		o += snprintf(buf + o, sizeof(buf) - o, "%s",
			      s ? abi_name(s) : word);
		if (o >= sizeof(buf))
			o = sizeof(buf) - 1;
		p += n;
	}
	return buf;
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	static char outbuf[1 << 16];
	unsigned int i;
	int n;

	if (argc > 1) {
		fprintf(stderr,
			"usage: %s\n"
			"Prints a deterministic dump of the mdev ABI to stdout; "
			"see the comment at the top of mdev_dump.c.\n"
			"$MDEV_SAMPLES chooses the scripted samples (default \"%s\").\n",
			argv[0], MDEV_SAMPLES_DEFAULT);
		return 2;
	}
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));

	if (mdev_samples_conflict()) {
		fprintf(stderr, "mdev_dump: %s\n", mdev_samples_conflict());
		return 1;
	}

	if (!mdev_exists(MDEV_BUS_DIR) || !mdev_exists(MDEV_CLASS_DIR)) {
		fprintf(stderr, "mdev_dump: no %s or %s: is an mdev core loaded?\n",
			MDEV_BUS_DIR, MDEV_CLASS_DIR);
		return 1;
	}
	n = mdev_count_dir(MDEV_BUS_DEVICES, NULL, 0);
	if (n) {
		fprintf(stderr, "mdev_dump: %s: %s; the dump needs a system without mdevs\n",
			MDEV_BUS_DEVICES, n < 0 ? errname(-n) : "not empty");
		return 1;
	}

	atexit(cleanup_atexit);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);	/* a closed stdout shows in ferror() */

	uevent_fd = mdev_uevent_open();
	if (uevent_fd < 0) {
		fprintf(stderr, "mdev_dump: NETLINK_KOBJECT_UEVENT: %s\n",
			errname(-uevent_fd));
		return 1;
	}
	scan_parents();

	/* before anything is dumped: module names of listed implementations */
	for (i = 0; i < mdev_nr_samples; i++) {
		const struct mdev_sample_desc *s = &mdev_samples[i];

		if (!s->compat || !mdev_sample_listed(s->sample) ||
		    nr_module_names == ARRAY_LEN(module_names))
			continue;
		module_names[nr_module_names].from = s->module;
		module_names[nr_module_names++].to = mdev_sample_base(s)->module;
	}

	printf("# mdev_dump 1: MDEV_SAMPLES=\"%s\"\n", samples_header());
	printf("# normalised: IOMMU group numbers -> <group>, vfio cdev index -> vfio<M>,\n"
	       "# MAJOR/MINOR and dev numbers -> <major>/<minor>, uevent SEQNUM dropped\n");
	/* start from a quiet socket */
	flush_uevents();
	dump_parents("start");

	/* one entry per ABI, served by its listed implementation */
	for (i = 0; i < mdev_nr_samples; i++) {
		const struct mdev_sample_desc *s;
		char path[MDEV_PATH_MAX];

		if (mdev_samples[i].compat)
			continue;
		s = mdev_sample_impl(mdev_samples[i].sample);
		if (!mdev_sample_listed(s->sample)) {
			printf("== sample %s: not in MDEV_SAMPLES\n", abi_name(s));
			continue;
		}
		if (!mdev_exists(mdev_parent_path(path, sizeof(path), s, NULL))) {
			printf("== sample %s: no parent\n", abi_name(s));
			error_line("sample %s is listed but %s is missing",
				   s->sample, path);
			continue;
		}
		if (mdev_sample_shared(s) && !mdev_module_loaded(s->module)) {
			printf("== sample %s: module not loaded\n", abi_name(s));
			error_line("sample %s is listed and %s exists, but module %s is not loaded",
				   s->sample, path, s->module);
			continue;
		}
		if (nr_scripted < ARRAY_LEN(scripted))
			scripted[nr_scripted++] = s;
	}

	for (i = 0; i < nr_scripted; i++) {
		phase_create(scripted[i]);
		phase_pool(scripted[i]);
		phase_remove(scripted[i], stale_fds);
	}
	for (i = 0; i < nr_scripted; i++)
		phase_module(scripted[i]);

	dump_parents("end");
	n = cleanup();
	if (n)
		error_line("cleanup: %d failures", n);
	printf("# end\n");
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "mdev_dump: writing the dump failed\n");
		return 1;
	}
	if (errors)
		fprintf(stderr, "mdev_dump: %d errors\n", errors);
	return errors ? 1 : 0;
}
