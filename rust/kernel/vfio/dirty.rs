// SPDX-License-Identifier: GPL-2.0

//! The dirty-page log of a device's DMA writes, for VFIO DMA logging
//! (`VFIO_DEVICE_FEATURE_DMA_LOGGING_{START,STOP,REPORT}`).
//!
//! A log covers the IOVA ranges userspace asked to track, one bit per page of the tracking
//! page size. [`PinnedMap`](super::PinnedMap) marks in it every page a device writes through a
//! [`Mapping`](super::Mapping) while logging is on, so a vendor driver cannot forget a write;
//! a report reads and clears the bits of a window of IOVAs, a bounded number of runs at a time,
//! so that the caller can fill the user's bitmap without holding the log's lock. This file is
//! the logic (no locking, no user memory, no allocation after [`DirtyLog::new`]), tested by
//! KUnit.

use crate::{
    alloc::{
        flags::{__GFP_NOWARN, GFP_KERNEL_ACCOUNT},
        KVVec, KVec,
    },
    bindings,
    ffi::c_ulong,
    page::PAGE_SIZE,
    prelude::*,
};

/// The most pages a log tracks, over all its ranges (a 32 MiB bitmap): 1 TiB at 4 KiB. A
/// request for more is tracked with larger pages.
pub const LOG_MAX_PAGES: u64 = 1 << 28;

/// One tracked range, `[first, last]` (inclusive, aligned to the page size), with one bit per
/// page.
struct Range {
    first: u64,
    last: u64,
    bits: KVVec<u64>,
}

/// A dirty-page log over sorted, disjoint IOVA ranges.
///
/// # Invariants
///
/// `ranges` is sorted by `first` and disjoint; each range's `first` and `last + 1` (mod 2^64)
/// are multiples of `1 << shift`, and its `bits` hold at least one bit per page of it.
pub struct DirtyLog {
    shift: u32,
    ranges: KVec<Range>,
}

/// The tracking page size for a request: `hint` rounded up to a power of two of at least
/// `PAGE_SIZE`, then doubled until `ranges` (rounded outwards to it) hold at most
/// [`LOG_MAX_PAGES`] pages. Userspace's page size is a hint (the uAPI lets the driver choose);
/// the choice is written back to it. `EINVAL` for no range or an empty one.
pub fn page_shift(ranges: &[(u64, u64)], hint: u64) -> Result<u32> {
    if ranges.is_empty() || ranges.iter().any(|&(f, l)| l < f) {
        return Err(EINVAL);
    }
    let min = (PAGE_SIZE as u64).trailing_zeros();
    let mut shift = match hint.checked_next_power_of_two() {
        Some(p) => p.trailing_zeros().max(min),
        None => 63,
    };
    while shift < 63 {
        // Overlaps after rounding only make this count larger than the log's.
        let total = ranges.iter().fold(0u64, |t, &(f, l)| {
            t.saturating_add(((l >> shift) - (f >> shift)).saturating_add(1))
        });
        if total <= LOG_MAX_PAGES {
            break;
        }
        shift += 1;
    }
    Ok(shift)
}

/// Sorts `(first, last)` pairs by `first`, in place. An insertion sort: the VFIO core passes at
/// most `LOG_MAX_RANGES` (256) ranges, and `core`'s slice sorts carry a panic path that objtool
/// does not know to be `noreturn` ("falls through to next function" in the kernel build).
fn sort_by_first(v: &mut [(u64, u64)]) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v[j - 1].0 > v[j].0 {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

impl DirtyLog {
    /// A log with no dirty page over `ranges` (`(first, last)`, inclusive), tracked per page
    /// of the size [`page_shift`] chooses for `page_size`.
    ///
    /// Errors: `EINVAL` (see [`page_shift`]), `ENOMEM`.
    pub fn new(ranges: &[(u64, u64)], page_size: u64) -> Result<Self> {
        let shift = page_shift(ranges, page_size)?;
        let flags = GFP_KERNEL_ACCOUNT | __GFP_NOWARN;
        // Rounded outwards to the page size, sorted, overlapping ones merged.
        let mut sorted = KVec::with_capacity(ranges.len(), flags)?;
        for &(first, last) in ranges {
            let f = first >> shift << shift;
            let l = (last >> shift << shift).saturating_add((1u64 << shift) - 1);
            sorted.push((f, l), flags)?;
        }
        sort_by_first(&mut sorted);
        let mut out: KVec<Range> = KVec::with_capacity(sorted.len(), flags)?;
        let mut cur: Option<(u64, u64)> = None;
        for &(f, l) in Iterator::chain(sorted.iter(), core::iter::once(&(u64::MAX, u64::MAX))) {
            match cur {
                Some((cf, cl)) if f <= cl.saturating_add(1) && f != u64::MAX => {
                    cur = Some((cf, cl.max(l)));
                }
                Some((cf, cl)) => {
                    let pages = ((cl - cf) >> shift) + 1;
                    // At most `LOG_MAX_PAGES / 64` words (`page_shift`): fits `usize`.
                    let words = pages.div_ceil(64) as usize;
                    let bits = KVVec::from_elem(0u64, words, flags)?;
                    out.push(
                        Range {
                            first: cf,
                            last: cl,
                            bits,
                        },
                        flags,
                    )?;
                    cur = Some((f, l));
                }
                None => cur = Some((f, l)),
            }
        }
        // INVARIANT: sorted, disjoint (merged) and aligned (rounded), one bit per page.
        Ok(Self { shift, ranges: out })
    }

    /// The tracking page size.
    pub fn page_size(&self) -> u64 {
        1 << self.shift
    }

    /// The index of the first range that ends at or after `iova`.
    fn first_from(&self, iova: u64) -> usize {
        self.ranges.partition_point(|r| r.last < iova)
    }

    /// Marks the pages of `[iova, iova + len)` that are tracked; the rest is ignored.
    pub fn mark(&mut self, iova: u64, len: u64) {
        if len == 0 {
            return;
        }
        let end = iova.saturating_add(len - 1);
        let shift = self.shift;
        let start = self.first_from(iova);
        for r in self.ranges[start..].iter_mut() {
            if r.first > end {
                break;
            }
            let a = (iova.max(r.first) - r.first) >> shift;
            let b = (end.min(r.last) - r.first) >> shift;
            for p in a..=b {
                if let Some(w) = r.bits.get_mut((p / 64) as usize) {
                    *w |= 1 << (p % 64);
                }
            }
        }
    }

    /// Reads and clears the dirty pages of the window `[iova, iova + len)` from `from` on
    /// (`from >= iova`): pushes each run of dirty pages, clipped to the window, in IOVA order,
    /// into `out`, without allocating, until `out` is full. Returns where to go on from when
    /// it stopped for that (`None`: the window is done). A dirty page that the window covers
    /// only in part is reported and stays dirty (the rest of it is reported by the window
    /// that covers it). `out` must have room for at least one run.
    pub fn report_some(
        &mut self,
        iova: u64,
        len: u64,
        from: u64,
        out: &mut KVec<(u64, u64)>,
    ) -> Option<u64> {
        if len == 0 || out.len() >= out.capacity() {
            return None;
        }
        let end = iova.saturating_add(len - 1);
        let from = from.max(iova);
        let shift = self.shift;
        let psize = 1u64 << shift;
        // The run being gathered: `[run.0, run.1]`; the last slot of `out` is kept for it.
        let mut run: Option<(u64, u64)> = None;
        let start = self.first_from(from);
        for r in self.ranges[start..].iter_mut() {
            if r.first > end {
                break;
            }
            let a = (from.max(r.first) - r.first) >> shift;
            let b = (end.min(r.last) - r.first) >> shift;
            let mut p = a;
            while p <= b {
                let Some(w) = r.bits.get_mut((p / 64) as usize) else {
                    break;
                };
                if *w >> (p % 64) == 0 {
                    // No dirty page left in this word: skip to the next one.
                    p = (p | 63) + 1;
                    continue;
                }
                if *w & (1 << (p % 64)) != 0 {
                    let ps = r.first + (p << shift);
                    let pe = ps + (psize - 1);
                    let (s, e) = (ps.max(iova), pe.min(end));
                    match run {
                        Some((_, re)) if re.checked_add(1) == Some(s) => {
                            run = run.map(|(rs, _)| (rs, e));
                        }
                        Some(prev) => {
                            let _ = out.push_within_capacity((prev.0, prev.1 - prev.0 + 1));
                            if out.len() + 1 >= out.capacity() {
                                // Full: this page has not been touched; go on from it.
                                return Some(s);
                            }
                            run = Some((s, e));
                        }
                        None => run = Some((s, e)),
                    }
                    if ps >= iova && pe <= end {
                        *w &= !(1 << (p % 64));
                    }
                }
                p += 1;
            }
        }
        if let Some(prev) = run {
            let _ = out.push_within_capacity((prev.0, prev.1 - prev.0 + 1));
        }
        None
    }

    /// Reads and clears the dirty pages of `[iova, iova + len)` (see
    /// [`DirtyLog::report_some`]), calling `f(start, length)` for each run. Allocates.
    pub fn report(&mut self, iova: u64, len: u64, mut f: impl FnMut(u64, u64)) -> Result {
        let mut out = KVec::with_capacity(64, GFP_KERNEL_ACCOUNT)?;
        let mut from = iova;
        loop {
            out.clear();
            let next = self.report_some(iova, len, from, &mut out);
            for &(s, l) in out.iter() {
                f(s, l);
            }
            match next {
                Some(n) => from = n,
                None => return Ok(()),
            }
        }
    }

    /// Whether any page is dirty.
    pub fn is_clean(&self) -> bool {
        self.ranges.iter().all(|r| r.bits.iter().all(|&w| w == 0))
    }
}

/// The ranges of a DMA logging request, `(first, last)`, from the VFIO core's interval tree.
///
/// # Safety
///
/// `root` is a valid interval tree of `struct interval_tree_node`s, not changed during the
/// call.
pub(super) unsafe fn ranges_of(
    root: *mut bindings::rb_root_cached,
    nnodes: u32,
) -> Result<KVec<(u64, u64)>> {
    let mut v = KVec::with_capacity(nnodes as usize, GFP_KERNEL)?;
    // SAFETY: `root` is a valid interval tree (function safety requirements).
    let mut node = unsafe { bindings::interval_tree_iter_first(root, 0, c_ulong::MAX) };
    while !node.is_null() {
        // SAFETY: `node` is a node of the tree, returned by the iterator.
        let (first, last) = unsafe { ((*node).start, (*node).last) };
        v.push((first as u64, last as u64), GFP_KERNEL)?;
        // SAFETY: As above; the tree does not change.
        node = unsafe { bindings::interval_tree_iter_next(node, 0, c_ulong::MAX) };
    }
    Ok(v)
}

/// Sets `[iova, iova + len)` in the user's dirty bitmap of a DMA logging report.
///
/// # Safety
///
/// `bitmap` is the `struct iova_bitmap` the VFIO core passed to the running
/// `log_read_and_clear`.
#[cfg(CONFIG_IOMMUFD_DRIVER)]
pub(super) unsafe fn set_dirty(bitmap: *mut bindings::iova_bitmap, iova: u64, len: u64) {
    // SAFETY: `bitmap` is valid for the call (function safety requirements);
    // `iova_bitmap_set()` pins and maps the user's bitmap pages itself, and ignores what lies
    // outside the bitmap.
    unsafe { bindings::iova_bitmap_set(bitmap, iova as c_ulong, len as usize) };
}

/// Without `CONFIG_IOMMUFD_DRIVER` the VFIO core answers reports with `EOPNOTSUPP` before
/// calling the driver (and the abstraction sets no `log_ops`), so this is never called.
///
/// # Safety
///
/// As in the other configuration (the contract does not depend on it).
#[cfg(not(CONFIG_IOMMUFD_DRIVER))]
pub(super) unsafe fn set_dirty(_bitmap: *mut bindings::iova_bitmap, _iova: u64, _len: u64) {}

// The cases use 4 KiB addresses and sizes.
#[cfg(CONFIG_PAGE_SIZE_4KB)]
#[kunit_tests(rust_kernel_vfio_dirty)]
mod tests {
    use super::*;
    use crate::alloc::flags::GFP_KERNEL;

    const K4: u64 = 4096;
    const M2: u64 = 2 << 20;

    /// The runs a report gives, as `(start, length)`.
    fn runs(log: &mut DirtyLog, iova: u64, len: u64) -> Result<KVec<(u64, u64)>> {
        let mut v = KVec::new();
        let mut err = Ok(());
        log.report(iova, len, |s, l| {
            if let Err(e) = v.push((s, l), GFP_KERNEL) {
                err = Err(e);
            }
        })?;
        err?;
        Ok(v)
    }

    #[test]
    fn page_size_is_a_hint() -> Result {
        assert_eq!(DirtyLog::new(&[], K4).err(), Some(EINVAL));
        assert_eq!(DirtyLog::new(&[(K4, K4 - 1)], K4).err(), Some(EINVAL));
        // rounded up to a power of two of at least PAGE_SIZE
        assert_eq!(DirtyLog::new(&[(0, K4 - 1)], 0)?.page_size(), K4);
        assert_eq!(DirtyLog::new(&[(0, K4 - 1)], 512)?.page_size(), K4);
        assert_eq!(DirtyLog::new(&[(0, K4 - 1)], 3 * K4)?.page_size(), 4 * K4);
        assert_eq!(
            DirtyLog::new(&[(0, K4 - 1)], u64::MAX)?.page_size(),
            1 << 63
        );
        // more than LOG_MAX_PAGES pages: larger pages
        let log = DirtyLog::new(&[(0, (LOG_MAX_PAGES + 1) * K4 - 1)], K4)?;
        assert_eq!(log.page_size(), 2 * K4);
        // the whole 64-bit space
        assert_eq!(DirtyLog::new(&[(0, u64::MAX)], K4)?.page_size(), 1 << 36);
        Ok(())
    }

    #[test]
    fn sort_by_first_sorts() {
        let mut v = [(9, 1), (3, 2), (7, 3), (3, 4), (0, 5), (u64::MAX, 6)];
        sort_by_first(&mut v);
        let firsts = v.map(|r| r.0);
        assert_eq!(firsts, [0, 3, 3, 7, 9, u64::MAX]);
        let mut empty: [(u64, u64); 0] = [];
        sort_by_first(&mut empty);
    }

    #[test]
    fn ranges_rounded_and_merged() -> Result {
        // unaligned and overlapping ranges, in any order: [0x1000, 0x5fff] after rounding
        let mut log = DirtyLog::new(&[(0x3000, 0x5010), (0x1800, 0x3fff)], K4)?;
        log.mark(0, 0x10_0000);
        let v = runs(&mut log, 0, u64::MAX)?;
        assert_eq!(&v[..], &[(0x1000, 0x5000)]);
        Ok(())
    }

    #[test]
    fn exact_pages_4k() -> Result {
        let mut log = DirtyLog::new(
            &[(0x10_0000, 0x20_0000 - 1), (0x100_0000, 0x110_0000 - 1)],
            K4,
        )?;
        assert!(log.is_clean());
        // a write of 1 byte, one of 2 pages straddling a boundary, one across the gap
        log.mark(0x10_0010, 1);
        log.mark(0x10_3ff0, 0x20);
        log.mark(0x1f_ffff, 0x100_0001 - 0x1f_ffff);
        // outside every range: ignored
        log.mark(0, 0x1000);
        log.mark(0x200_0000, 0x1000);
        let v = runs(&mut log, 0, u64::MAX)?;
        assert_eq!(
            &v[..],
            &[
                (0x10_0000, 0x1000),
                (0x10_3000, 0x2000),
                (0x1f_f000, 0x1000),
                (0x100_0000, 0x1000)
            ]
        );
        // read and cleared
        assert!(log.is_clean());
        assert_eq!(runs(&mut log, 0, u64::MAX)?.len(), 0);
        Ok(())
    }

    #[test]
    fn window_clips_and_keeps_partial_pages() -> Result {
        let mut log = DirtyLog::new(&[(0, 0x10_0000 - 1)], K4)?;
        // pages 1, 2, 3
        log.mark(0x1000, 0x3000);
        // a window from the middle of page 1 to the end of page 2: clipped, one run; page 1,
        // which it covers in part, stays dirty, page 2 is cleared
        let v = runs(&mut log, 0x1800, 0x1800)?;
        assert_eq!(&v[..], &[(0x1800, 0x1800)]);
        let v = runs(&mut log, 0, 0x10_0000)?;
        assert_eq!(&v[..], &[(0x1000, 0x1000), (0x3000, 0x1000)]);
        assert!(log.is_clean());
        Ok(())
    }

    #[test]
    fn huge_pages() -> Result {
        let mut log = DirtyLog::new(&[(0, 0x4000_0000 - 1)], M2)?;
        assert_eq!(log.page_size(), M2);
        log.mark(3 * M2 + 5, 1);
        log.mark(7 * M2 - 1, 2);
        let v = runs(&mut log, 0, 0x4000_0000)?;
        assert_eq!(&v[..], &[(3 * M2, M2), (6 * M2, 2 * M2)]);
        assert!(log.is_clean());
        Ok(())
    }

    #[test]
    fn word_boundaries() -> Result {
        // 200 pages: bits in three words
        let mut log = DirtyLog::new(&[(0, 200 * K4 - 1)], K4)?;
        for p in [0u64, 63, 64, 127, 128, 199] {
            log.mark(p * K4, 1);
        }
        let v = runs(&mut log, 0, 200 * K4)?;
        assert_eq!(
            &v[..],
            &[
                (0, K4),
                (63 * K4, 2 * K4),
                (127 * K4, 2 * K4),
                (199 * K4, K4)
            ]
        );
        Ok(())
    }

    #[test]
    fn report_in_small_pieces() -> Result {
        // every other page dirty: 50 runs, read 1 (a capacity of 2) at a time
        let mut log = DirtyLog::new(&[(0, 100 * K4 - 1)], K4)?;
        for p in (0..100u64).step_by(2) {
            log.mark(p * K4, 1);
        }
        let mut out = KVec::with_capacity(2, GFP_KERNEL)?;
        let (mut from, mut n) = (0, 0u64);
        loop {
            out.clear();
            let next = log.report_some(0, 100 * K4, from, &mut out);
            for &(s, l) in out.iter() {
                assert_eq!((s, l), (2 * n * K4, K4));
                n += 1;
            }
            match next {
                Some(f) => from = f,
                None => break,
            }
        }
        assert_eq!(n, 50);
        assert!(log.is_clean());
        Ok(())
    }
}
