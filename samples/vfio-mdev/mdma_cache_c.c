// SPDX-License-Identifier: GPL-2.0
/*
 * mdma_cache_c: benchmark of the pinned-page cache GVT-g uses
 * (drivers/gpu/drm/i915/gvt/kvmgt.c: struct gvt_dma, __gvt_cache_add,
 * __gvt_cache_find_gfn, __gvt_cache_remove_entry), the C baseline for the
 * IOVA -> page map of the Rust mdma sample.
 *
 * The data structure is kvmgt's, unchanged but for names: one entry per
 * pinned guest page, linked into two rb-trees (by gfn and by dma_addr),
 * with a kref; the cache is protected by a mutex, taken once per insert,
 * lookup and remove (kvmgt takes its cache_lock around each of these).
 * Pinning is simulated: dma_addr is a made-up value, nothing is mapped.
 *
 * At module load, for each N of the "sizes" parameter (default 1024, 65536,
 * 1048576), "runs" times:
 *
 *   insert  N entries: kzalloc + insert into both trees + kref_init, keys
 *           in scrambled order (below);
 *   lookup  N lookups by gfn, every key once: __gvt_cache_find_gfn +
 *           kref_get + kref_put in one locked section, as a user of the
 *           cache takes and drops a reference (the put never releases: the
 *           cache holds the first reference);
 *   remove  N removals, every key once: find by gfn, then
 *           __gvt_cache_remove_entry (erase from both trees, kfree), as
 *           kvmgt's dma_unmap callback does;
 *
 * each phase timed as a whole with ktime_get_ns() and printed as ns per
 * operation:
 *
 *   mdma_cache_c: n=%u insert_ns=%llu lookup_ns=%llu remove_ns=%llu
 *
 * Key order, the same as the Rust map's benchmark (bench_key() in
 * rust/kernel/vfio/pinmap.rs): step i = 0 .. N-1 of every phase uses page
 * key(i) = (i * 0x9e3779b1) mod N, a permutation of 0 .. N-1 for N a power
 * of two (for other N the multiplier is raised by 2 until it is coprime
 * with N).  Insert, lookup and remove go through the keys in this same
 * order.  The entry of key k has
 *
 *   gfn      = GFN_BASE + k
 *   dma_addr = DMA_BASE + ((i * 0x85ebca77) mod N) * PAGE_SIZE
 *
 * (i the insert step: the second tree is filled in a different scrambled
 * order), GFN_BASE = 0x100000, DMA_BASE = 0x100000000.  cond_resched() is
 * called every 4096 operations, outside the lock.  Lookups check that the
 * entry found has the gfn and dma_addr inserted; a mismatch, a missing
 * entry or a non-empty cache at the end is reported with pr_err and stops
 * the benchmark.  Module init returns 0 either way; rmmod unloads it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/gcd.h>
#include <linux/kref.h>
#include <linux/kvm_types.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/sched.h>
#include <linux/slab.h>

#define GFN_BASE	0x100000UL
#define DMA_BASE	0x100000000ULL

#define MUL_KEY		0x9e3779b1U
#define MUL_DMA		0x85ebca77U

#define RESCHED_EVERY	4096

#define MAX_SIZES	8

static unsigned int sizes[MAX_SIZES] = { 1024, 65536, 1048576 };
static int nr_sizes = 3;
module_param_array(sizes, uint, &nr_sizes, 0444);
MODULE_PARM_DESC(sizes, "numbers of entries to benchmark (default 1024,65536,1048576)");

static unsigned int runs = 1;
module_param(runs, uint, 0444);
MODULE_PARM_DESC(runs, "runs per size, one line each (default 1)");

/* the cache of a vGPU: the fields of struct intel_vgpu that kvmgt uses */
struct mdma_cache {
	struct mutex cache_lock;
	struct rb_root gfn_cache;
	struct rb_root dma_addr_cache;
	unsigned long nr_cache_entries;
};

/* struct gvt_dma */
struct mdma_dma {
	struct mdma_cache *cache;
	struct rb_node gfn_node;
	struct rb_node dma_addr_node;
	gfn_t gfn;
	dma_addr_t dma_addr;
	unsigned long size;
	struct kref ref;
};

/* __gvt_cache_find_gfn() */
static struct mdma_dma *cache_find_gfn(struct mdma_cache *cache, gfn_t gfn)
{
	struct rb_node *node = cache->gfn_cache.rb_node;
	struct mdma_dma *itr;

	while (node) {
		itr = rb_entry(node, struct mdma_dma, gfn_node);

		if (gfn < itr->gfn)
			node = node->rb_left;
		else if (gfn > itr->gfn)
			node = node->rb_right;
		else
			return itr;
	}
	return NULL;
}

/* __gvt_cache_add() */
static int cache_add(struct mdma_cache *cache, gfn_t gfn, dma_addr_t dma_addr,
		     unsigned long size)
{
	struct mdma_dma *new, *itr;
	struct rb_node **link, *parent = NULL;

	new = kzalloc(sizeof(*new), GFP_KERNEL);
	if (!new)
		return -ENOMEM;

	new->cache = cache;
	new->gfn = gfn;
	new->dma_addr = dma_addr;
	new->size = size;
	kref_init(&new->ref);

	/* gfn_cache maps gfn to struct mdma_dma */
	link = &cache->gfn_cache.rb_node;
	while (*link) {
		parent = *link;
		itr = rb_entry(parent, struct mdma_dma, gfn_node);

		if (gfn < itr->gfn)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&new->gfn_node, parent, link);
	rb_insert_color(&new->gfn_node, &cache->gfn_cache);

	/* dma_addr_cache maps dma addr to struct mdma_dma */
	parent = NULL;
	link = &cache->dma_addr_cache.rb_node;
	while (*link) {
		parent = *link;
		itr = rb_entry(parent, struct mdma_dma, dma_addr_node);

		if (dma_addr < itr->dma_addr)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&new->dma_addr_node, parent, link);
	rb_insert_color(&new->dma_addr_node, &cache->dma_addr_cache);

	cache->nr_cache_entries++;
	return 0;
}

/* __gvt_cache_remove_entry() */
static void cache_remove_entry(struct mdma_cache *cache, struct mdma_dma *entry)
{
	rb_erase(&entry->gfn_node, &cache->gfn_cache);
	rb_erase(&entry->dma_addr_node, &cache->dma_addr_cache);
	kfree(entry);
	cache->nr_cache_entries--;
}

/* kvmgt's kref release (the unpin is simulated: nothing to undo) */
static void cache_dma_release(struct kref *ref)
{
	struct mdma_dma *entry = container_of(ref, typeof(*entry), ref);

	cache_remove_entry(entry->cache, entry);
}

/* gvt_cache_destroy(), for the error paths */
static void cache_destroy(struct mdma_cache *cache)
{
	struct rb_node *node;

	mutex_lock(&cache->cache_lock);
	while ((node = rb_first(&cache->gfn_cache)))
		cache_remove_entry(cache,
				   rb_entry(node, struct mdma_dma, gfn_node));
	mutex_unlock(&cache->cache_lock);
}

/* the multiplier m, or the next odd number coprime with n */
static u32 coprime(u32 m, u32 n)
{
	while (gcd(m, n) != 1)
		m += 2;
	return m;
}

static inline u32 perm(u32 i, u32 m, u32 n)
{
	u32 rem;

	div_u64_rem((u64)i * m, n, &rem);
	return rem;
}

static inline dma_addr_t fake_dma_addr(u32 i, u32 m, u32 n)
{
	return (dma_addr_t)(DMA_BASE + ((u64)perm(i, m, n) << PAGE_SHIFT));
}

static int bench_one(u32 n)
{
	u32 m_key = coprime(MUL_KEY, n), m_dma = coprime(MUL_DMA, n);
	struct mdma_cache cache;
	u64 t0, t_insert, t_lookup, t_remove;
	int ret = 0;
	u32 i;

	mutex_init(&cache.cache_lock);
	cache.gfn_cache = RB_ROOT;
	cache.dma_addr_cache = RB_ROOT;
	cache.nr_cache_entries = 0;

	t0 = ktime_get_ns();
	for (i = 0; i < n; i++) {
		mutex_lock(&cache.cache_lock);
		ret = cache_add(&cache, GFN_BASE + perm(i, m_key, n),
				fake_dma_addr(i, m_dma, n), PAGE_SIZE);
		mutex_unlock(&cache.cache_lock);
		if (ret) {
			pr_err("n=%u: insert %u failed: %d\n", n, i, ret);
			goto out;
		}
		if (!(i % RESCHED_EVERY))
			cond_resched();
	}
	t_insert = ktime_get_ns() - t0;

	t0 = ktime_get_ns();
	for (i = 0; i < n; i++) {
		gfn_t gfn = GFN_BASE + perm(i, m_key, n);
		struct mdma_dma *entry;
		bool bad = false;

		mutex_lock(&cache.cache_lock);
		entry = cache_find_gfn(&cache, gfn);
		if (entry) {
			kref_get(&entry->ref);
			bad = entry->gfn != gfn;
			kref_put(&entry->ref, cache_dma_release);
		}
		mutex_unlock(&cache.cache_lock);
		if (!entry || bad) {
			pr_err("n=%u: lookup of gfn 0x%llx: %s\n", n, gfn,
			       entry ? "wrong entry" : "not found");
			ret = -EINVAL;
			goto out;
		}
		if (!(i % RESCHED_EVERY))
			cond_resched();
	}
	t_lookup = ktime_get_ns() - t0;

	t0 = ktime_get_ns();
	for (i = 0; i < n; i++) {
		gfn_t gfn = GFN_BASE + perm(i, m_key, n);
		struct mdma_dma *entry;

		mutex_lock(&cache.cache_lock);
		entry = cache_find_gfn(&cache, gfn);
		if (entry)
			cache_remove_entry(&cache, entry);
		mutex_unlock(&cache.cache_lock);
		if (!entry) {
			pr_err("n=%u: gfn 0x%llx to remove not found\n", n, gfn);
			ret = -EINVAL;
			goto out;
		}
		if (!(i % RESCHED_EVERY))
			cond_resched();
	}
	t_remove = ktime_get_ns() - t0;

	if (cache.nr_cache_entries || !RB_EMPTY_ROOT(&cache.gfn_cache) ||
	    !RB_EMPTY_ROOT(&cache.dma_addr_cache)) {
		pr_err("n=%u: cache not empty after removing every entry (%lu left)\n",
		       n, cache.nr_cache_entries);
		ret = -EINVAL;
		goto out;
	}

	pr_info("n=%u insert_ns=%llu lookup_ns=%llu remove_ns=%llu\n", n,
		div_u64(t_insert, n), div_u64(t_lookup, n),
		div_u64(t_remove, n));
out:
	cache_destroy(&cache);
	mutex_destroy(&cache.cache_lock);
	return ret;
}

/* the checks of the lookup phase depend on the dma_addr of each gfn */
static int check_trees(u32 n)
{
	u32 m_key = coprime(MUL_KEY, n), m_dma = coprime(MUL_DMA, n);
	struct mdma_cache cache = {
		.gfn_cache = RB_ROOT,
		.dma_addr_cache = RB_ROOT,
	};
	struct rb_node *node;
	dma_addr_t prev = 0;
	int ret = 0;
	u32 i, count = 0;

	mutex_init(&cache.cache_lock);
	for (i = 0; i < n && !ret; i++)
		ret = cache_add(&cache, GFN_BASE + perm(i, m_key, n),
				fake_dma_addr(i, m_dma, n), PAGE_SIZE);
	for (i = 0; i < n && !ret; i++) {
		struct mdma_dma *e = cache_find_gfn(&cache, GFN_BASE +
						    perm(i, m_key, n));

		if (!e || e->dma_addr != fake_dma_addr(i, m_dma, n))
			ret = -EINVAL;
	}
	for (node = rb_first(&cache.dma_addr_cache); node && !ret;
	     node = rb_next(node)) {
		struct mdma_dma *e = rb_entry(node, struct mdma_dma,
					      dma_addr_node);

		if (count && e->dma_addr <= prev)
			ret = -EINVAL;
		prev = e->dma_addr;
		count++;
	}
	if (!ret && count != n)
		ret = -EINVAL;
	if (ret)
		pr_err("n=%u: self-check of the two trees failed\n", n);
	cache_destroy(&cache);
	mutex_destroy(&cache.cache_lock);
	return ret;
}

static int __init mdma_cache_c_init(void)
{
	int i;
	u32 r;

	if (check_trees(1000) || check_trees(1024))
		return 0;
	for (i = 0; i < nr_sizes; i++) {
		if (!sizes[i])
			continue;
		for (r = 0; r < runs; r++)
			if (bench_one(sizes[i]))
				return 0;
	}
	return 0;
}

static void __exit mdma_cache_c_exit(void)
{
}

module_init(mdma_cache_c_init);
module_exit(mdma_cache_c_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Benchmark of the GVT-g gfn/dma_addr pinned-page cache (C baseline for mdma)");
