// SPDX-License-Identifier: GPL-2.0
/*
 * mdev_stress: a concurrency stress test of the mdev core.
 *
 *   mdev_stress [-t threads] [-w watchdog-slack-s] [-n|-k] [duration-s]
 *
 * For duration seconds (default 20), N worker threads (-t, default 4)
 * create and remove mdevs on every type of every sample listed in
 * $MDEV_SAMPLES (mtty or mtty_rs, mdpy, mbochs; they must be loaded at
 * start, with no mdev present), while a loader thread unloads and reloads
 * the sample modules one at a time.  A worker picks, at random:
 *
 *   create      a fresh random UUID on a random type; published as the "hot"
 *               UUID once created, so that other workers race with each
 *               other to remove it;
 *   create_hot  the same (a quarter of the creates), but the UUID is
 *               published before the write, so that other workers race
 *               with the creation (create_dup, remove_hot);
 *   create_dup  a UUID that is (or just was) in use: the hot one or one of
 *               the table of created devices, on a random type of any
 *               parent, half of the time in upper case;
 *   remove      a device of the table, or one listed in /sys/bus/mdev/devices;
 *   remove_hot  the hot UUID: a device another worker is creating or
 *               removing right now;
 *   avail       read available_instances of a random type, which must never
 *               exceed its initial value.
 *
 * The loader (not with -n) unloads a random sample with
 * delete_module(O_NONBLOCK) (what "modprobe -r" does, minus removing unused
 * dependencies, but with the errno), waits up to 100 ms, loads it again with
 * "modprobe <sample>" (which resolves the core dependency to the chosen
 * core, see scripts/guest/lib.sh) and waits up to 200 ms.
 *
 * Every result that is not legitimate is also written to /dev/kmsg
 * ("mdev_stress: ..."), as are the start and the end, to find the context
 * in the kernel log.
 *
 * Every result is counted per operation (ok, and per errno).  Results that
 * the upstream core legitimately returns under these races are accepted (see
 * drivers/vfio/mdev/mdev_core.c and mdev_sysfs.c):
 *
 *   create      ENOENT (type directory gone: parent unregistered), ENODEV
 *               (kernfs node deactivated, or unreg_sem trylock failed: the
 *               parent is unregistering), the sample's exhausted-pool errno
 *               (ENOSPC from the mtty/mbochs probe, EUSERS from the core
 *               counter of mdpy);
 *   create_dup  the same, and EEXIST;
 *   create_hot  the same as create_dup (a create_dup may take the UUID
 *               first); a fresh UUID that nobody else knows, i.e. create,
 *               must never get EEXIST;
 *   remove      ENOENT (device gone), ENODEV (gone from the list, attribute
 *               deactivated, or parent unregistering), EAGAIN (device not
 *               active: being created or removed by another writer);
 *   avail       ENOENT, ENODEV;
 *   unload      EBUSY, EAGAIN (EWOULDBLOCK);
 *   load        nothing: modprobe must always succeed.
 *
 * Anything else is a failure.  A remove that returns EAGAIN has already
 * removed the device's "remove" attribute (device_remove_file_self() comes
 * first in remove_store()), so the device stays until its parent goes away:
 * such "orphans" are legitimate, but there can be no more of them at the end
 * than EAGAIN results of remove.  Without the loader (-n, -k) nothing
 * clears them during the run, so after 12 of them the workers stop racing
 * removes with creates, lest the orphans fill every pool.
 *
 * At the end all threads stop, every sample is loaded again, every mdev is
 * removed (orphans by reloading their sample; with -k they stay, and the
 * expected available_instances and devices/ account for them: -k never
 * unloads a module, for kernels where that is fatal, see
 * scripts/guest/stress.sh), and the state must become
 * clean within 30 s (DEBUG_KOBJECT_RELEASE delays the release of a device,
 * and with it the instance it gives back): no device in /sys/bus/mdev/devices
 * and in no type's devices/, every parent present, available_instances of
 * every type equal to its initial value (mdev_samples[]), the sample
 * modules' and the core module's reference counts as at start.
 *
 * A watchdog thread ends the program with status 1 if it has not finished
 * duration + 120 s (-w) after the start, printing what every unfinished
 * thread is doing, its wchan and kernel stack.
 *
 * Exit status: 0 pass, 1 fail, 4 (KSFT_SKIP) not root or no mdev bus.  The
 * last line is "mdev_stress: PASS ..." or "mdev_stress: FAIL ...".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/syscall.h>

#include "mdev_common.h"

#define ARRAY_LEN(a)		(sizeof(a) / sizeof((a)[0]))

#define KSFT_SKIP		4
#define DEFAULT_DURATION_S	20
#define DEFAULT_THREADS		4
#define MAX_THREADS		64
#define WATCHDOG_SLACK_S	120
#define SETTLE_TIMEOUT_MS	30000
#define PROGRESS_MS		5000
#define TABLE_SIZE		32
#define NR_CODES		256	/* 0: ok, errno/exit status, last: other */
#define MAX_SAMPLES		8
#define MAX_TYPES		(MAX_SAMPLES * MDEV_MAX_TYPES)
#define MAX_REPORTS		30
#define MAX_LISTED		4096
#define ORPHAN_BUDGET		12	/* without the loader, see do_remove() */

enum op {
	OP_CREATE,
	OP_CREATE_HOT,
	OP_CREATE_DUP,
	OP_REMOVE,
	OP_REMOVE_HOT,
	OP_AVAIL,
	OP_UNLOAD,
	OP_LOAD,
	OP_FINAL_UNLOAD,
	OP_FINAL_LOAD,
	OP_FINAL_REMOVE,
	NR_OPS
};

static const char *const op_names[NR_OPS] = {
	[OP_CREATE] = "create",
	[OP_CREATE_HOT] = "create_hot",
	[OP_CREATE_DUP] = "create_dup",
	[OP_REMOVE] = "remove",
	[OP_REMOVE_HOT] = "remove_hot",
	[OP_AVAIL] = "avail",
	[OP_UNLOAD] = "unload",
	[OP_LOAD] = "load",
	[OP_FINAL_UNLOAD] = "final_unload",
	[OP_FINAL_LOAD] = "final_load",
	[OP_FINAL_REMOVE] = "final_remove",
};

/* Operations whose codes are modprobe exit statuses, not errno values */
static bool op_exit_status(enum op op)
{
	return op == OP_LOAD || op == OP_FINAL_LOAD;
}

struct thread {
	pthread_t thread;
	bool created;
	char name[32];
	pid_t tid;
	__u64 rng;
	bool started;
	bool finished;

	/* what it is doing, for the watchdog */
	pthread_mutex_t lock;
	const char *op;
	char what[MDEV_PATH_MAX];
	long long since;

	unsigned long ops;
	long long max_ms[NR_OPS];
	unsigned long count[NR_OPS][NR_CODES];
	unsigned long bad[NR_OPS][NR_CODES];
};

struct type_ref {
	const struct mdev_sample_desc *s;
	const struct mdev_type_desc *t;
	unsigned int initial;
};

static struct {
	const struct mdev_sample_desc *samples[MAX_SAMPLES];
	unsigned int nr_samples;
	struct type_ref types[MAX_TYPES];
	unsigned int nr_types;
	int sample_refcnt[MAX_SAMPLES];
	char core[32];
	int core_extra_refs;	/* refcnt - holders of the core at start */

	/* UUIDs of devices that (probably) exist, and the hot one */
	pthread_mutex_t lock;
	char table[TABLE_SIZE][MDEV_UUID_LEN + 1];
	unsigned int table_n;
	char hot[MDEV_UUID_LEN + 1];

	/* -k: orphans left in place, with their type */
	bool keep_modules;
	struct {
		char uuid[MDEV_UUID_LEN + 1];
		const struct type_ref *ty;
	} orphans[MAX_LISTED];
	unsigned int nr_orphans;

	/* without the loader: EAGAIN removes so far, i.e. orphans made */
	bool no_loader;
	unsigned long eagain;

	bool stop;
	bool done;
	unsigned long reports;
	unsigned long violations;	/* invariants other than errno */

	struct thread *threads;
	unsigned int nr_threads;	/* workers + loader + main */
	long long start_ms;
	long long deadline_ms;
	unsigned int duration_s;
} g = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- small helpers ---- */

static bool load_bool(bool *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store_bool(bool *p, bool v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static __u64 rnd(struct thread *t)
{
	/* xorshift64* */
	t->rng ^= t->rng >> 12;
	t->rng ^= t->rng << 25;
	t->rng ^= t->rng >> 27;
	return t->rng * 0x2545f4914f6cdd1dULL;
}

static unsigned int rnd_below(struct thread *t, unsigned int n)
{
	return n ? (unsigned int)((rnd(t) >> 32) % n) : 0;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* one write per line: threads print concurrently */
	printf("# %s\n", buf);
	fflush(stdout);
}

/* A marker in the kernel log, to find the context of a failure there */
static void kmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void kmsg(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int len;

	len = snprintf(buf, sizeof(buf), "mdev_stress: ");
	va_start(ap, fmt);
	vsnprintf(buf + len, sizeof(buf) - len, fmt, ap);
	va_end(ap);
	mdev_write_str("/dev/kmsg", buf);
}

static const char *code_name(enum op op, unsigned int code, char *buf,
			     size_t size)
{
	const char *name;

	if (code == NR_CODES - 1) {
		snprintf(buf, size, "other");
	} else if (op_exit_status(op)) {
		snprintf(buf, size, "exit%u", code);
	} else {
		name = strerrorname_np(code);
		if (name)
			snprintf(buf, size, "%s", name);
		else
			snprintf(buf, size, "errno%u", code);
	}
	return buf;
}

static unsigned int code_of(int ret)
{
	unsigned int code = ret < 0 ? -ret : ret;

	return code >= NR_CODES - 1 ? NR_CODES - 1 : code;
}

/* ---- what a thread is doing, for the watchdog ---- */

static void begin(struct thread *t, const char *op, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void begin(struct thread *t, const char *op, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&t->lock);
	t->op = op;
	va_start(ap, fmt);
	vsnprintf(t->what, sizeof(t->what), fmt, ap);
	va_end(ap);
	t->since = mdev_now_ms();
	pthread_mutex_unlock(&t->lock);
}

static void end(struct thread *t, enum op op)
{
	long long now = mdev_now_ms();

	pthread_mutex_lock(&t->lock);
	if (op < NR_OPS && now - t->since > t->max_ms[op])
		t->max_ms[op] = now - t->since;
	t->op = NULL;
	t->since = now;
	pthread_mutex_unlock(&t->lock);
	__atomic_add_fetch(&t->ops, 1, __ATOMIC_RELAXED);
}

/* ---- legitimate results ---- */

static bool legit(enum op op, const struct mdev_sample_desc *s, int ret)
{
	int err = -ret;

	if (!ret)
		return true;
	switch (op) {
	case OP_CREATE_HOT:
	case OP_CREATE_DUP:
		if (err == EEXIST)
			return true;
		/* fall through */
	case OP_CREATE:
		return err == ENOENT || err == ENODEV ||
		       (s && err == s->exhausted_errno);
	case OP_REMOVE:
	case OP_REMOVE_HOT:
		return err == ENOENT || err == ENODEV || err == EAGAIN;
	case OP_AVAIL:
		return err == ENOENT || err == ENODEV;
	case OP_UNLOAD:
		return err == EBUSY || err == EAGAIN;
	default:
		/* load, final_*: decided by the caller */
		return false;
	}
}

/*
 * Count a result; ret is 0, -errno, or a positive modprobe exit status.
 * Returns whether it was legitimate.
 */
static bool account(struct thread *t, enum op op,
		    const struct mdev_sample_desc *s, int ret, bool ok,
		    const char *what)
{
	unsigned int code = code_of(ret);
	char name[32];

	t->count[op][code]++;
	if (ok)
		return true;
	t->bad[op][code]++;
	if (__atomic_add_fetch(&g.reports, 1, __ATOMIC_RELAXED) <= MAX_REPORTS) {
		code_name(op, code, name, sizeof(name));
		say("!! %s: %s %s: %s (t=%lld ms)", t->name, op_names[op], what,
		    name, mdev_now_ms() - g.start_ms);
		kmsg("%s: %s %s: %s", t->name, op_names[op], what, name);
	}
	return false;
}

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	__atomic_add_fetch(&g.violations, 1, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&g.reports, 1, __ATOMIC_RELAXED) <= MAX_REPORTS) {
		say("!! %s", buf);
		kmsg("%s", buf);
	}
}

/* ---- the UUID table ---- */

static void table_add(const char *uuid)
{
	unsigned int i;

	pthread_mutex_lock(&g.lock);
	for (i = 0; i < g.table_n; i++)
		if (!strcmp(g.table[i], uuid))
			goto out;
	if (g.table_n < TABLE_SIZE)
		i = g.table_n++;
	else
		i = (unsigned int)(mdev_now_ms() % TABLE_SIZE);
	/* a replaced entry may still exist; "remove" also scans the bus */
	snprintf(g.table[i], sizeof(g.table[i]), "%s", uuid);
out:
	pthread_mutex_unlock(&g.lock);
}

static void table_del(const char *uuid)
{
	unsigned int i;

	pthread_mutex_lock(&g.lock);
	for (i = 0; i < g.table_n; i++) {
		if (strcmp(g.table[i], uuid))
			continue;
		g.table_n--;
		if (i != g.table_n)
			memcpy(g.table[i], g.table[g.table_n],
			       sizeof(g.table[i]));
		break;
	}
	pthread_mutex_unlock(&g.lock);
}

static bool table_pick(struct thread *t, char uuid[MDEV_UUID_LEN + 1])
{
	bool found = false;

	pthread_mutex_lock(&g.lock);
	if (g.table_n) {
		memcpy(uuid, g.table[rnd_below(t, g.table_n)],
		       MDEV_UUID_LEN + 1);
		found = true;
	}
	pthread_mutex_unlock(&g.lock);
	return found;
}

static bool hot_pick(char uuid[MDEV_UUID_LEN + 1])
{
	pthread_mutex_lock(&g.lock);
	memcpy(uuid, g.hot, MDEV_UUID_LEN + 1);
	pthread_mutex_unlock(&g.lock);
	return uuid[0] != '\0';
}

static void hot_set(const char *uuid)
{
	pthread_mutex_lock(&g.lock);
	snprintf(g.hot, sizeof(g.hot), "%s", uuid);
	pthread_mutex_unlock(&g.lock);
}

/* A random entry of /sys/bus/mdev/devices */
static bool bus_pick(struct thread *t, char uuid[MDEV_UUID_LEN + 1])
{
	unsigned int n = 0;
	struct dirent *e;
	DIR *d;

	d = opendir(MDEV_BUS_DEVICES);
	if (!d)
		return false;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strlen(e->d_name) != MDEV_UUID_LEN)
			continue;
		/* reservoir sampling */
		if (!rnd_below(t, ++n))
			memcpy(uuid, e->d_name, MDEV_UUID_LEN + 1);
	}
	closedir(d);
	return n > 0;
}

/* ---- worker operations ---- */

/*
 * A remove that races with a create (EAGAIN) orphans the device until its
 * parent goes away.  Without the loader nothing reloads the samples, and
 * the orphans would soon fill every pool; after ORPHAN_BUDGET of them,
 * creates are no longer published before they finish (create_hot) and
 * removes only take devices of the table, which were created completely.
 */
static bool orphans_spent(void)
{
	return g.no_loader &&
	       __atomic_load_n(&g.eagain, __ATOMIC_RELAXED) >= ORPHAN_BUDGET;
}

static void do_create(struct thread *t, bool dup)
{
	const struct type_ref *ty = &g.types[rnd_below(t, g.nr_types)];
	char uuid[MDEV_UUID_LEN + 1], wuuid[MDEV_UUID_LEN + 1];
	char what[MDEV_PATH_MAX];
	enum op op = dup ? OP_CREATE_DUP : OP_CREATE;
	int ret;

	if (dup) {
		bool found;

		if (rnd_below(t, 2))
			found = hot_pick(uuid) || table_pick(t, uuid);
		else
			found = table_pick(t, uuid) || hot_pick(uuid);
		if (!found)
			return;
	} else {
		ret = mdev_uuid_gen(uuid);
		if (ret) {
			violation("%s: uuid generation: %s", t->name,
				  strerror(-ret));
			return;
		}
		/*
		 * Racing a create is what makes a remove return EAGAIN, and
		 * such a remove orphans the device (see the top): a quarter
		 * of the time, or the orphans exhaust the pools.
		 */
		if (!rnd_below(t, 4) && !orphans_spent()) {
			hot_set(uuid);
			op = OP_CREATE_HOT;
		}
	}
	memcpy(wuuid, uuid, sizeof(wuuid));
	if (dup && rnd_below(t, 2))
		mdev_str_upper(wuuid, uuid, sizeof(wuuid));

	snprintf(what, sizeof(what), "%s %s", ty->t->id, wuuid);
	begin(t, op_names[op], "%s", what);
	ret = mdev_create(ty->s, ty->t->id, wuuid);
	end(t, op);
	account(t, op, ty->s, ret, legit(op, ty->s, ret), what);
	if (!ret) {
		table_add(uuid);
		/* now removers race with each other */
		if (op == OP_CREATE)
			hot_set(uuid);
	}
}

static void do_remove(struct thread *t, bool hot)
{
	char uuid[MDEV_UUID_LEN + 1];
	enum op op = hot ? OP_REMOVE_HOT : OP_REMOVE;
	bool found;
	int ret;

	if (orphans_spent())
		found = table_pick(t, uuid);
	else if (hot)
		found = hot_pick(uuid);
	else if (rnd_below(t, 10) < 7)
		found = table_pick(t, uuid) || bus_pick(t, uuid);
	else
		found = bus_pick(t, uuid);
	if (!found)
		return;

	begin(t, op_names[op], "%s", uuid);
	ret = mdev_remove(uuid);
	end(t, op);
	account(t, op, NULL, ret, legit(op, NULL, ret), uuid);
	if (ret == -EAGAIN && g.no_loader &&
	    __atomic_add_fetch(&g.eagain, 1, __ATOMIC_RELAXED) == ORPHAN_BUDGET)
		say("%u removes returned EAGAIN (orphans): no more racing with creates",
		    ORPHAN_BUDGET);
	if (!ret || ret == -ENOENT || ret == -ENODEV)
		table_del(uuid);
}

static void do_avail(struct thread *t)
{
	const struct type_ref *ty = &g.types[rnd_below(t, g.nr_types)];
	unsigned int val;
	int ret;

	begin(t, op_names[OP_AVAIL], "%s", ty->t->id);
	ret = mdev_available(ty->s, ty->t->id, &val);
	end(t, OP_AVAIL);
	account(t, OP_AVAIL, ty->s, ret, legit(OP_AVAIL, ty->s, ret),
		ty->t->id);
	if (!ret && val > ty->initial)
		violation("%s: %s available_instances %u > initial %u",
			  t->name, ty->t->id, val, ty->initial);
}

static void *worker(void *arg)
{
	struct thread *t = arg;

	t->tid = gettid();
	store_bool(&t->started, true);
	while (!load_bool(&g.stop)) {
		unsigned int r = rnd_below(t, 100);

		if (r < 35)
			do_create(t, false);
		else if (r < 45)
			do_create(t, true);
		else if (r < 75)
			do_remove(t, false);
		else if (r < 85)
			do_remove(t, true);
		else
			do_avail(t);
	}
	store_bool(&t->finished, true);
	return NULL;
}

/* ---- module unload/load ---- */

static int unload_module(const char *module)
{
	/* what modprobe -r does for the module itself */
	if (syscall(SYS_delete_module, module, O_NONBLOCK))
		return -errno;
	return 0;
}

static int load_module(const char *module)
{
	int ret = mdev_modprobe(module, false);

	/* -errno: modprobe could not be started */
	return ret < 0 ? NR_CODES - 1 : ret;
}

static void *loader(void *arg)
{
	struct thread *t = arg;

	t->tid = gettid();
	store_bool(&t->started, true);
	while (!load_bool(&g.stop)) {
		const struct mdev_sample_desc *s =
			g.samples[rnd_below(t, g.nr_samples)];
		int ret;

		begin(t, op_names[OP_UNLOAD], "%s", s->module);
		ret = unload_module(s->module);
		end(t, OP_UNLOAD);
		account(t, OP_UNLOAD, s, ret, legit(OP_UNLOAD, s, ret),
			s->module);

		mdev_msleep(rnd_below(t, 100));

		/* always load it again, also once told to stop */
		begin(t, op_names[OP_LOAD], "modprobe %s", s->module);
		ret = load_module(s->module);
		end(t, OP_LOAD);
		account(t, OP_LOAD, s, ret, !ret, s->module);

		if (!load_bool(&g.stop))
			mdev_msleep(rnd_below(t, 200));
	}
	store_bool(&t->finished, true);
	return NULL;
}

/* ---- the watchdog ---- */

static void print_file_indented(const char *path, const char *prefix)
{
	char buf[4096], *line, *save;

	if (mdev_read_file(path, buf, sizeof(buf)) < 0)
		return;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		printf("# %s%s\n", prefix, line);
}

static void dump_threads(void)
{
	long long now = mdev_now_ms();
	unsigned int i;

	for (i = 0; i < g.nr_threads; i++) {
		struct thread *t = &g.threads[i];
		char path[MDEV_PATH_MAX], wchan[128] = "";
		const char *op;
		char what[MDEV_PATH_MAX];
		long long since;

		if (!load_bool(&t->started) || load_bool(&t->finished))
			continue;
		/* no lock: the owner may hold it forever */
		op = t->op;
		snprintf(what, sizeof(what), "%s", t->what);
		since = t->since;
		snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", t->tid);
		mdev_read_file(path, wchan, sizeof(wchan));
		if (op)
			printf("# watchdog: %s (tid %d) stuck in %s %s for %lld ms, wchan %s\n",
			       t->name, t->tid, op, what, now - since,
			       wchan[0] ? wchan : "?");
		else
			printf("# watchdog: %s (tid %d) not finished, between operations for %lld ms (last: %s), wchan %s\n",
			       t->name, t->tid, now - since, what,
			       wchan[0] ? wchan : "?");
		snprintf(path, sizeof(path), "/proc/self/task/%d/stack", t->tid);
		print_file_indented(path, "    ");
	}
	fflush(stdout);
}

static void *watchdog(void *arg)
{
	(void)arg;
	while (!load_bool(&g.done)) {
		if (mdev_now_ms() >= g.deadline_ms) {
			printf("# watchdog: not finished %u s + %lld s after the start\n",
			       g.duration_s,
			       (g.deadline_ms - g.start_ms) / 1000 - g.duration_s);
			dump_threads();
			kmsg("watchdog: hang");
			printf("mdev_stress: FAIL hang (watchdog)\n");
			fflush(stdout);
			_exit(1);
		}
		mdev_msleep(200);
	}
	return NULL;
}

/* ---- start and end state ---- */

static int holders(const char *module)
{
	char path[MDEV_PATH_MAX];

	snprintf(path, sizeof(path), "/sys/module/%s/holders", module);
	return mdev_count_dir(path, NULL, 0);
}

static bool find_core(void)
{
	static const char *const cores[] = { "mdev", "mdev_c" };
	unsigned int i, n = 0;

	for (i = 0; i < ARRAY_LEN(cores); i++) {
		if (!mdev_module_loaded(cores[i]))
			continue;
		snprintf(g.core, sizeof(g.core), "%s", cores[i]);
		n++;
	}
	return n == 1;
}

static int list_devices(char (*names)[MDEV_UUID_LEN + 1], unsigned int max)
{
	unsigned int n = 0;
	struct dirent *e;
	DIR *d;

	d = opendir(MDEV_BUS_DEVICES);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		/* mdevs are named by their UUID */
		if (n < max && strlen(e->d_name) == MDEV_UUID_LEN)
			memcpy(names[n], e->d_name, MDEV_UUID_LEN + 1);
		else if (n < max)
			snprintf(names[n], MDEV_UUID_LEN + 1, "?");
		n++;
	}
	closedir(d);
	return n;
}

/*
 * Problems of the current state compared with a clean one; printed if
 * verbose.  Returns their number.
 */
static int check_clean(bool verbose)
{
	char path[MDEV_PATH_MAX], first[256];
	int problems = 0, n, refs, hold;
	unsigned int i, val;

#define PROBLEM(...) do { problems++; if (verbose) say(__VA_ARGS__); } while (0)

	n = mdev_count_dir(MDEV_BUS_DEVICES, first, sizeof(first));
	if (n < 0)
		PROBLEM("%s: %s", MDEV_BUS_DEVICES, strerror(-n));
	else if ((unsigned int)n != g.nr_orphans)
		PROBLEM("%d mdevs left in %s (first: %s), %u orphans kept", n,
			MDEV_BUS_DEVICES, first, g.nr_orphans);
	for (i = 0; i < g.nr_orphans; i++) {
		mdev_dev_path(path, sizeof(path), g.orphans[i].uuid, NULL);
		if (!mdev_exists(path))
			PROBLEM("orphan %s vanished", g.orphans[i].uuid);
	}

	for (i = 0; i < g.nr_samples; i++) {
		const struct mdev_sample_desc *s = g.samples[i];

		if (!mdev_module_loaded(s->module))
			PROBLEM("module %s not loaded", s->module);
		mdev_parent_path(path, sizeof(path), s, NULL);
		if (!mdev_exists(path))
			PROBLEM("parent %s missing", path);
		refs = mdev_module_refcnt(s->module);
		if (refs != g.sample_refcnt[i])
			PROBLEM("module %s: refcnt %d, %d at start", s->module,
				refs, g.sample_refcnt[i]);
	}
	for (i = 0; i < g.nr_types; i++) {
		const struct type_ref *ty = &g.types[i];
		unsigned int used = 0, mine = 0, expect, j;
		int ret;

		/* the pool units and devices of the orphans kept (-k) */
		for (j = 0; j < g.nr_orphans; j++) {
			if (!g.orphans[j].ty || g.orphans[j].ty->s != ty->s)
				continue;
			used += g.orphans[j].ty->t->cost;
			mine += g.orphans[j].ty == ty;
		}
		expect = mdev_expected_avail(ty->s, ty->t, used);
		ret = mdev_available(ty->s, ty->t->id, &val);
		if (ret)
			PROBLEM("%s available_instances: %s", ty->t->id,
				strerror(-ret));
		else if (val != expect)
			PROBLEM("%s available_instances %u, expected %u",
				ty->t->id, val, expect);
		mdev_type_path(path, sizeof(path), ty->s, ty->t->id, "devices");
		n = mdev_count_dir(path, first, sizeof(first));
		if (n < 0)
			PROBLEM("%s: %s", path, strerror(-n));
		else if ((unsigned int)n != mine)
			PROBLEM("%s: %d entries (first: %s), %u orphans kept",
				path, n, first, mine);
	}

	refs = mdev_module_refcnt(g.core);
	hold = holders(g.core);
	if (refs < 0 || hold < 0)
		PROBLEM("core module %s: refcnt %d, holders %d", g.core, refs,
			hold);
	else if (refs - hold != g.core_extra_refs)
		PROBLEM("core module %s: refcnt %d with %d holders, %d + holders at start",
			g.core, refs, hold, g.core_extra_refs);
#undef PROBLEM
	return problems;
}

static bool setup(void)
{
	unsigned int i, j;
	bool ok = true;
	int n;

	for (i = 0; i < mdev_nr_samples; i++) {
		const struct mdev_sample_desc *s = &mdev_samples[i];
		char path[MDEV_PATH_MAX];

		if (!mdev_sample_listed(s->sample))
			continue;
		if (g.nr_samples == MAX_SAMPLES)
			break;
		mdev_parent_path(path, sizeof(path), s, NULL);
		if (!mdev_exists(path)) {
			say("sample %s listed in $MDEV_SAMPLES but %s is missing",
			    s->sample, path);
			ok = false;
			continue;
		}
		g.sample_refcnt[g.nr_samples] = mdev_module_refcnt(s->module);
		g.samples[g.nr_samples++] = s;
		for (j = 0; j < s->nr_types && g.nr_types < MAX_TYPES; j++) {
			struct type_ref *ty = &g.types[g.nr_types++];
			unsigned int val;
			int ret;

			ty->s = s;
			ty->t = &s->types[j];
			ty->initial = mdev_expected_avail(s, ty->t, 0);
			ret = mdev_available(s, ty->t->id, &val);
			if (ret || val != ty->initial) {
				say("%s available_instances at start: %s%u, expected %u",
				    ty->t->id, ret ? strerror(-ret) : "",
				    ret ? 0 : val, ty->initial);
				ok = false;
			}
		}
	}
	if (!g.nr_samples) {
		say("no sample of $MDEV_SAMPLES (%s) present",
		    mdev_samples_env());
		return false;
	}
	if (!find_core()) {
		say("not exactly one of the modules mdev, mdev_c is loaded");
		return false;
	}
	g.core_extra_refs = mdev_module_refcnt(g.core) - holders(g.core);
	n = mdev_count_dir(MDEV_BUS_DEVICES, NULL, 0);
	if (n) {
		say("%d mdevs present at start", n);
		ok = false;
	}
	return ok;
}

/* ---- the end: reload, remove everything, verify ---- */

static const struct mdev_sample_desc *sample_of_device(const char *uuid)
{
	char path[MDEV_PATH_MAX], real[PATH_MAX], want[MDEV_PATH_MAX];
	unsigned int i;

	mdev_dev_path(path, sizeof(path), uuid, NULL);
	if (mdev_realpath(path, real, sizeof(real)))
		return NULL;
	for (i = 0; i < g.nr_samples; i++) {
		mdev_dev_realdir(want, sizeof(want), g.samples[i], uuid);
		if (!strcmp(want, real))
			return g.samples[i];
	}
	return NULL;
}

static bool reload_sample(struct thread *t, const struct mdev_sample_desc *s,
			  bool unload)
{
	int ret;

	if (unload) {
		begin(t, op_names[OP_FINAL_UNLOAD], "%s", s->module);
		ret = unload_module(s->module);
		end(t, OP_FINAL_UNLOAD);
		account(t, OP_FINAL_UNLOAD, s, ret, !ret, s->module);
		if (ret)
			return false;
	}
	begin(t, op_names[OP_FINAL_LOAD], "modprobe %s", s->module);
	ret = load_module(s->module);
	end(t, OP_FINAL_LOAD);
	account(t, OP_FINAL_LOAD, s, ret, !ret, s->module);
	return !ret;
}

/* -k: remember an orphan and its type, which check_clean() accounts for */
static void keep_orphan(const char *uuid)
{
	char path[MDEV_PATH_MAX], link[MDEV_PATH_MAX];
	const struct type_ref *ty = NULL;
	unsigned int i;

	mdev_dev_path(path, sizeof(path), uuid, "mdev_type");
	if (!mdev_readlink(path, link, sizeof(link)))
		for (i = 0; i < g.nr_types; i++)
			if (!strcmp(g.types[i].t->id, mdev_basename(link)))
				ty = &g.types[i];
	if (!ty)
		violation("orphan %s: no mdev_type link to a known type", uuid);
	if (g.nr_orphans == MAX_LISTED)
		return;
	/* names from list_devices(): exactly MDEV_UUID_LEN characters */
	memcpy(g.orphans[g.nr_orphans].uuid, uuid, MDEV_UUID_LEN);
	g.orphans[g.nr_orphans].uuid[MDEV_UUID_LEN] = '\0';
	g.orphans[g.nr_orphans++].ty = ty;
	say("final: orphan %s (%s) left in place (-k)", uuid,
	    ty ? ty->t->id : "?");
}

/* Returns the number of orphans (devices without "remove") found */
static unsigned int final_cleanup(struct thread *t, bool *ok)
{
	static char names[MAX_LISTED][MDEV_UUID_LEN + 1];
	bool reload[MAX_SAMPLES] = { false };
	unsigned int i, j, orphans = 0;
	int n, ret, removed = 0;

	for (i = 0; i < g.nr_samples; i++) {
		if (mdev_module_loaded(g.samples[i]->module))
			continue;
		say("final: %s not loaded, loading it", g.samples[i]->module);
		if (!reload_sample(t, g.samples[i], false))
			*ok = false;
	}

	n = list_devices(names, MAX_LISTED);
	if (n > MAX_LISTED)
		n = MAX_LISTED;
	for (i = 0; i < (unsigned int)(n > 0 ? n : 0); i++) {
		char path[MDEV_PATH_MAX];
		bool orphan;

		mdev_dev_path(path, sizeof(path), names[i], "remove");
		orphan = !mdev_exists(path);
		begin(t, op_names[OP_FINAL_REMOVE], "%s", names[i]);
		ret = mdev_remove(names[i]);
		end(t, OP_FINAL_REMOVE);
		/* ENOENT only for a device that has no "remove" */
		if (!account(t, OP_FINAL_REMOVE, NULL, ret,
			     !ret || (ret == -ENOENT && orphan), names[i]))
			*ok = false;
		if (!ret) {
			removed++;
			continue;
		}
		if (ret != -ENOENT || !orphan)
			continue;
		mdev_dev_path(path, sizeof(path), names[i], NULL);
		if (!mdev_exists(path))
			continue;
		orphans++;
		if (g.keep_modules) {
			keep_orphan(names[i]);
			continue;
		}
		for (j = 0; j < g.nr_samples; j++)
			if (sample_of_device(names[i]) == g.samples[j])
				reload[j] = true;
	}
	say("final: %d mdevs removed, %u without a remove attribute", removed,
	    orphans);
	for (j = 0; j < g.nr_samples; j++) {
		if (!reload[j])
			continue;
		say("final: reloading %s to remove its orphans",
		    g.samples[j]->module);
		if (!reload_sample(t, g.samples[j], true))
			*ok = false;
	}
	return orphans;
}

/* ---- reporting ---- */

static void print_counts(unsigned long totals[NR_OPS][NR_CODES],
			 unsigned long bad[NR_OPS][NR_CODES],
			 const long long max_ms[NR_OPS])
{
	unsigned int op, c;

	say("%-13s %8s %8s %7s  %s", "operation", "total", "ok", "max ms",
	    "failures (! = not legitimate)");
	for (op = 0; op < NR_OPS; op++) {
		char line[1024], name[32];
		unsigned long total = 0;
		size_t len = 0;

		for (c = 0; c < NR_CODES; c++)
			total += totals[op][c];
		if (!total)
			continue;
		line[0] = '\0';
		for (c = 1; c < NR_CODES && len < sizeof(line) - 64; c++) {
			if (!totals[op][c])
				continue;
			len += snprintf(line + len, sizeof(line) - len,
					" %s=%lu%s",
					code_name(op, c, name, sizeof(name)),
					totals[op][c], bad[op][c] ? "!" : "");
		}
		say("%-13s %8lu %8lu %7lld %s", op_names[op], total,
		    totals[op][0], max_ms[op], line);
	}
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-t threads] [-w watchdog-slack-s] [-n|-k] [duration-s]\n"
		"  duration default %d s, threads default %d, slack default %d s\n"
		"  -n: no loader thread (no module unload/reload)\n"
		"  -k: -n, and orphans stay at the end instead of reloading their\n"
		"      sample: no module is ever unloaded\n",
		argv0, DEFAULT_DURATION_S, DEFAULT_THREADS, WATCHDOG_SLACK_S);
	exit(2);
}

int main(int argc, char **argv)
{
	static unsigned long totals[NR_OPS][NR_CODES], bad[NR_OPS][NR_CODES];
	long long max_ms[NR_OPS] = { 0 };
	unsigned int nr_workers = DEFAULT_THREADS, slack = WATCHDOG_SLACK_S;
	unsigned long worker_ops = 0, illegit = 0, eagain_removes;
	long long last_progress, now, elapsed_ms, settle_ms = 0;
	struct thread *main_thread, *loader_thread;
	char samples[MAX_SAMPLES * 16];
	pthread_t wd;
	unsigned int i, op, c, orphans;
	size_t len;
	bool ok = true, no_loader = false;
	int opt, ret, problems;
	char *end_ptr;

	g.duration_s = DEFAULT_DURATION_S;
	while ((opt = getopt(argc, argv, "t:w:nkh")) != -1) {
		switch (opt) {
		case 'k':
			g.keep_modules = true;
			/* fall through */
		case 'n':
			no_loader = true;
			break;
		case 't':
			nr_workers = strtoul(optarg, &end_ptr, 10);
			if (*end_ptr || !nr_workers || nr_workers > MAX_THREADS)
				usage(argv[0]);
			break;
		case 'w':
			slack = strtoul(optarg, &end_ptr, 10);
			if (*end_ptr)
				usage(argv[0]);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind < argc) {
		g.duration_s = strtoul(argv[optind], &end_ptr, 10);
		if (*end_ptr || optind + 1 < argc)
			usage(argv[0]);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (geteuid()) {
		printf("mdev_stress: SKIP not root\n");
		return KSFT_SKIP;
	}
	if (!mdev_exists(MDEV_BUS_DIR)) {
		printf("mdev_stress: SKIP no %s (mdev core not loaded)\n",
		       MDEV_BUS_DIR);
		return KSFT_SKIP;
	}
	if (mdev_samples_conflict()) {
		printf("mdev_stress: FAIL %s\n", mdev_samples_conflict());
		return 1;
	}
	g.no_loader = no_loader;
	if (!setup()) {
		printf("mdev_stress: FAIL the start state is not clean\n");
		return 1;
	}

	g.nr_threads = nr_workers + 2;
	g.threads = calloc(g.nr_threads, sizeof(*g.threads));
	if (!g.threads) {
		printf("mdev_stress: FAIL out of memory\n");
		return 1;
	}
	for (i = 0; i < g.nr_threads; i++) {
		struct thread *t = &g.threads[i];

		pthread_mutex_init(&t->lock, NULL);
		if (getrandom(&t->rng, sizeof(t->rng), 0) != sizeof(t->rng))
			t->rng = mdev_now_ms() * (i + 1);
		t->rng |= 1;
		if (i < nr_workers)
			snprintf(t->name, sizeof(t->name), "worker %u", i);
	}
	loader_thread = &g.threads[nr_workers];
	snprintf(loader_thread->name, sizeof(loader_thread->name), "loader");
	main_thread = &g.threads[nr_workers + 1];
	snprintf(main_thread->name, sizeof(main_thread->name), "main");
	main_thread->tid = gettid();
	store_bool(&main_thread->started, true);

	for (i = 0, len = 0; i < g.nr_samples; i++)
		len += snprintf(samples + len, sizeof(samples) - len, "%s%s",
				i ? " " : "", g.samples[i]->sample);
	say("mdev_stress: core %s, samples %s, %u types, %u workers%s, %u s, watchdog at %u s",
	    g.core, samples, g.nr_types, nr_workers,
	    g.keep_modules ? ", no loader, no unload (-k)" :
	    no_loader ? ", no loader" : " + loader", g.duration_s,
	    g.duration_s + slack);
	for (i = 0; i < g.nr_types; i++)
		say("  type %-14s initial available_instances %u",
		    g.types[i].t->id, g.types[i].initial);

	kmsg("start: core %s, samples %s, %u workers%s, %u s", g.core, samples,
	     nr_workers, no_loader ? ", no loader" : "", g.duration_s);
	g.start_ms = mdev_now_ms();
	g.deadline_ms = g.start_ms + (long long)(g.duration_s + slack) * 1000;
	ret = pthread_create(&wd, NULL, watchdog, NULL);
	if (ret) {
		printf("mdev_stress: FAIL pthread_create: %s\n", strerror(ret));
		return 1;
	}
	for (i = 0; i < nr_workers + 1; i++) {
		struct thread *t = &g.threads[i];

		if (i == nr_workers && no_loader)
			break;
		ret = pthread_create(&t->thread, NULL,
				     i < nr_workers ? worker : loader, t);
		if (ret) {
			say("pthread_create: %s", strerror(ret));
			store_bool(&g.stop, true);
			ok = false;
			break;
		}
		t->created = true;
	}

	begin(main_thread, "sleep", "running for %u s", g.duration_s);
	last_progress = g.start_ms;
	while (!load_bool(&g.stop)) {
		now = mdev_now_ms();
		if (now - g.start_ms >= (long long)g.duration_s * 1000)
			break;
		if (now - last_progress >= PROGRESS_MS) {
			unsigned long n = 0;

			for (i = 0; i < nr_workers; i++)
				n += __atomic_load_n(&g.threads[i].ops,
						     __ATOMIC_RELAXED);
			say("t=%llds: %lu worker ops, %lu loader ops, %d mdevs",
			    (now - g.start_ms) / 1000, n,
			    __atomic_load_n(&loader_thread->ops,
					    __ATOMIC_RELAXED),
			    mdev_count_dir(MDEV_BUS_DEVICES, NULL, 0));
			last_progress = now;
		}
		mdev_msleep(100);
	}
	store_bool(&g.stop, true);
	end(main_thread, NR_OPS);
	elapsed_ms = mdev_now_ms() - g.start_ms;

	begin(main_thread, "join", "waiting for the threads to stop");
	for (i = 0; i < nr_workers + 1; i++)
		if (g.threads[i].created)
			pthread_join(g.threads[i].thread, NULL);
	end(main_thread, NR_OPS);
	say("stopped %lld ms after the start; threads joined after %lld ms",
	    elapsed_ms, mdev_now_ms() - g.start_ms);

	orphans = final_cleanup(main_thread, &ok);

	begin(main_thread, "settle", "waiting for a clean state");
	now = mdev_now_ms();
	while ((problems = check_clean(false)) &&
	       mdev_now_ms() - now < SETTLE_TIMEOUT_MS)
		mdev_msleep(100);
	settle_ms = mdev_now_ms() - now;
	end(main_thread, NR_OPS);
	if (problems) {
		check_clean(true);
		say("final state not clean after %lld ms: %d problems",
		    settle_ms, problems);
		ok = false;
	} else {
		say("final state clean (after %lld ms)", settle_ms);
	}

	store_bool(&g.done, true);
	pthread_join(wd, NULL);

	for (i = 0; i < g.nr_threads; i++) {
		for (op = 0; op < NR_OPS; op++) {
			if (g.threads[i].max_ms[op] > max_ms[op])
				max_ms[op] = g.threads[i].max_ms[op];
			for (c = 0; c < NR_CODES; c++) {
				totals[op][c] += g.threads[i].count[op][c];
				bad[op][c] += g.threads[i].bad[op][c];
				illegit += g.threads[i].bad[op][c];
			}
		}
		if (i < nr_workers)
			worker_ops += g.threads[i].ops;
	}
	print_counts(totals, bad, max_ms);

	eagain_removes = totals[OP_REMOVE][EAGAIN] + totals[OP_REMOVE_HOT][EAGAIN];
	if (orphans > eagain_removes) {
		violation("%u devices without a remove attribute, only %lu removes returned EAGAIN",
			  orphans, eagain_removes);
	}
	if (illegit) {
		say("%lu results that are not legitimate", illegit);
		ok = false;
	}
	if (g.violations) {
		say("%lu invariant violations", g.violations);
		ok = false;
	}

	kmsg("end: %s", ok ? "PASS" : "FAIL");
	printf("mdev_stress: %s core=%s ops=%lu (%.0f/s, %u workers) reloads=%lu/%lu illegitimate=%lu violations=%lu orphans=%u final=%s\n",
	       ok ? "PASS" : "FAIL", g.core, worker_ops,
	       elapsed_ms ? worker_ops * 1000.0 / elapsed_ms : 0.0,
	       nr_workers, totals[OP_UNLOAD][0], totals[OP_LOAD][0], illegit,
	       g.violations, orphans, problems ? "dirty" : "clean");
	return ok ? 0 : 1;
}
