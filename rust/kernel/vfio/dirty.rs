// SPDX-License-Identifier: GPL-2.0

//! The dirty-page log of a device's DMA writes, for VFIO DMA logging
//! (`VFIO_DEVICE_FEATURE_DMA_LOGGING_{START,STOP,REPORT}`).
//!
//! A log covers the IOVA ranges userspace asked to track, one bit per page of the tracking
//! page size. [`PinnedMap`](super::PinnedMap) marks in it every page a device writes through a
//! [`Mapping`](super::Mapping) while logging is on, so a vendor driver cannot forget a write;
//! a report reads and clears the bits of a window of IOVAs. This file is the pure logic (no
//! locking, no user memory), tested by KUnit.

use crate::{
    alloc::{flags::GFP_KERNEL, KVVec, KVec},
    bindings,
    ffi::c_ulong,
    page::PAGE_SIZE,
    prelude::*,
};

/// The most pages a log tracks, over all its ranges: 1 TiB at 4 KiB (a 32 MiB bitmap).
/// Larger requests fail with `E2BIG`.
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

impl DirtyLog {
    /// A log with no dirty page over `ranges` (`(first, last)`, inclusive), tracked per
    /// `page_size` bytes.
    ///
    /// Errors: `EINVAL` for a page size that is not a power of two of at least `PAGE_SIZE`,
    /// no range, a range that is empty, unaligned or overlaps another; `E2BIG` for more than
    /// [`LOG_MAX_PAGES`] pages; `ENOMEM`.
    pub fn new(ranges: &[(u64, u64)], page_size: u64) -> Result<Self> {
        if !page_size.is_power_of_two() || page_size < PAGE_SIZE as u64 || ranges.is_empty() {
            return Err(EINVAL);
        }
        let shift = page_size.trailing_zeros();
        let mask = page_size - 1;
        let mut sorted = KVec::with_capacity(ranges.len(), GFP_KERNEL)?;
        for &(first, last) in ranges {
            if last < first || first & mask != 0 || last & mask != mask {
                return Err(EINVAL);
            }
            sorted.push((first, last), GFP_KERNEL)?;
        }
        sorted.sort_unstable_by_key(|r| r.0);
        let mut total = 0u64;
        for (i, &(first, last)) in sorted.iter().enumerate() {
            if i > 0 && sorted[i - 1].1 >= first {
                return Err(EINVAL);
            }
            total = total.saturating_add(((last - first) >> shift) + 1);
        }
        if total > LOG_MAX_PAGES {
            return Err(E2BIG);
        }
        let mut out = KVec::with_capacity(sorted.len(), GFP_KERNEL)?;
        for &(first, last) in sorted.iter() {
            let pages = ((last - first) >> shift) + 1;
            // At most `LOG_MAX_PAGES / 64` words: fits `usize`.
            let words = pages.div_ceil(64) as usize;
            let bits = KVVec::from_elem(0u64, words, GFP_KERNEL)?;
            out.push(Range { first, last, bits }, GFP_KERNEL)?;
        }
        // INVARIANT: sorted, disjoint and aligned (checked above), one bit per page.
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

    /// Reads and clears the dirty pages of the window `[iova, iova + len)`: calls `f(start,
    /// length)` for each run of dirty pages, clipped to the window, in IOVA order. A dirty page
    /// that the window covers only in part is reported and stays dirty (the rest of it is
    /// reported by the window that covers it).
    pub fn report(&mut self, iova: u64, len: u64, mut f: impl FnMut(u64, u64)) {
        if len == 0 {
            return;
        }
        let end = iova.saturating_add(len - 1);
        let shift = self.shift;
        let psize = 1u64 << shift;
        // The run being gathered: `[run.0, run.1]`.
        let mut run: Option<(u64, u64)> = None;
        let start = self.first_from(iova);
        for r in self.ranges[start..].iter_mut() {
            if r.first > end {
                break;
            }
            let a = (iova.max(r.first) - r.first) >> shift;
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
                    if ps >= iova && pe <= end {
                        *w &= !(1 << (p % 64));
                    }
                    let (s, e) = (ps.max(iova), pe.min(end));
                    run = match run {
                        Some((rs, re)) if re.checked_add(1) == Some(s) => Some((rs, e)),
                        Some((rs, re)) => {
                            f(rs, re - rs + 1);
                            Some((s, e))
                        }
                        None => Some((s, e)),
                    };
                }
                p += 1;
            }
        }
        if let Some((rs, re)) = run {
            f(rs, re - rs + 1);
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
/// calling the driver, so this is never called.
///
/// # Safety
///
/// None needed; the signature matches the other configuration's.
#[cfg(not(CONFIG_IOMMUFD_DRIVER))]
pub(super) unsafe fn set_dirty(_bitmap: *mut bindings::iova_bitmap, _iova: u64, _len: u64) {}

#[kunit_tests(rust_kernel_vfio_dirty)]
mod tests {
    use super::*;

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
        });
        err?;
        Ok(v)
    }

    #[test]
    fn validation() {
        assert_eq!(DirtyLog::new(&[(0, K4 - 1)], 0).err(), Some(EINVAL));
        assert_eq!(DirtyLog::new(&[(0, K4 - 1)], 3 * K4).err(), Some(EINVAL));
        assert_eq!(DirtyLog::new(&[(0, 511)], 512).err(), Some(EINVAL));
        assert_eq!(DirtyLog::new(&[], K4).err(), Some(EINVAL));
        // unaligned start, unaligned end, empty
        assert_eq!(DirtyLog::new(&[(1, K4 - 1)], K4).err(), Some(EINVAL));
        assert_eq!(DirtyLog::new(&[(0, K4)], K4).err(), Some(EINVAL));
        assert_eq!(DirtyLog::new(&[(K4, K4 - 1)], K4).err(), Some(EINVAL));
        // overlapping, in any order
        assert_eq!(
            DirtyLog::new(&[(4 * K4, 8 * K4 - 1), (0, 5 * K4 - 1)], K4).err(),
            Some(EINVAL)
        );
        // too many pages
        assert_eq!(
            DirtyLog::new(&[(0, (LOG_MAX_PAGES + 1) * K4 - 1)], K4).err(),
            Some(E2BIG)
        );
        // the whole 64-bit space at 2^40: 2^24 pages
        assert!(DirtyLog::new(&[(0, u64::MAX)], 1 << 40).is_ok());
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
}
