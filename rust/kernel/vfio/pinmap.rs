// SPDX-License-Identifier: GPL-2.0

//! Pinned guest pages of a VFIO device: an IOVA → page map for devices that DMA.
//!
//! C header: [`include/linux/vfio.h`](srctree/include/linux/vfio.h) (`vfio_pin_pages()`,
//! `vfio_unpin_pages()`)
//!
//! A mediated device that reads or writes guest memory pins the pages behind the guest's I/O
//! virtual addresses (IOVAs) with `vfio_pin_pages()` and must unpin them as soon as userspace
//! unmaps the IOVAs (the VFIO core calls [`super::DeviceOps::dma_unmap`] and retries until no
//! pin is left in the range). [`PinnedMap`] does this bookkeeping:
//!
//! - [`PinnedMap::acquire`] translates `(iova, len)` into pinned pages, pinning what is missing
//!   in runs of at most [`PIN_PAGES_MAX`] contiguous pages (one `vfio_pin_pages()` call each),
//!   and returns a [`Mapping`] through which the device copies to or from guest memory, or
//!   reads the pages' physical addresses. Pinned runs stay cached in an rb-tree keyed by their
//!   last page, so later DMAs to the same pages only look them up.
//! - Every run is unpinned with exactly the `(iova, npages)` it was pinned with, as iommufd
//!   requires (type1 would accept any split).
//! - The VFIO abstraction owns the wiring (see [`super::DeviceOps::pinned_map`]): it binds the
//!   map to the device when the device is opened, and only then does `acquire` pin, through
//!   that device only. When userspace unmaps a range (`dma_unmap`), it drops the runs that
//!   intersect it: a run in use by a [`Mapping`] is marked so that no new DMA can use it and is
//!   unpinned when the last mapping of it is dropped; the unmap waits for that and for pins of
//!   the range in progress, so it returns only when the range holds no pin. For
//!   [`UNMAP_GRACE_NS`] after it, new pins of the range are refused, so that DMAs racing the
//!   unmap cannot feed VFIO's retry loop (type1 `BUG()`s after 10 rounds). When the device is
//!   closed, it unbinds the map (no pin can start any more) and drops every pin.
//!
//! # Locking
//!
//! One mutex guards the tree. It is not held while pinning or unpinning: type1 calls
//! `dma_unmap` (which takes it) with its `device_list_lock` held, and takes that lock while
//! holding `iommu->lock`, which `vfio_pin_pages()` takes. A pin in progress is announced under
//! the mutex (`unmap` waits for it), and the new run is checked against runs and unmaps that
//! appeared meanwhile before it is inserted. A [`Mapping`] keeps its runs pinned with atomic
//! use counts, without the mutex: copies never wait for an unmap, and an unmap waits only for
//! copies in flight in its range.
//!
//! DMA logging (see [`super::dirty`]): the log is behind a spinlock of its own, taken by a
//! write only while logging is on and only to set bits, so copies still never sleep; a report
//! takes it to read and clear a bounded number of runs at a time and fills the user's bitmap
//! without it.

use super::{dirty::DirtyLog, Device, DeviceOps};
use crate::{
    alloc::{
        flags::{GFP_KERNEL, GFP_KERNEL_ACCOUNT},
        KVec,
    },
    bindings,
    error::{Error, Result},
    ffi::c_int,
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    rbtree::{RBTree, RBTreeNode, RBTreeNodeReservation},
    sync::{CondVar, Mutex, SpinLock},
};
use core::{
    ptr::null_mut,
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

/// The monotonic clock in nanoseconds (`ktime_get()`).
fn now_ns() -> i64 {
    crate::time::Instant::<crate::time::Monotonic>::now().as_nanos()
}

/// The most pages one `vfio_pin_pages()` call may pin (`VFIO_PIN_PAGES_MAX_ENTRIES`).
pub const PIN_PAGES_MAX: usize = PAGE_SIZE / core::mem::size_of::<usize>();

/// A run in use by a [`Mapping`].
#[derive(Clone, Copy)]
struct RunPtr(*const Run);

/// A pinned page.
#[derive(Clone, Copy)]
#[repr(transparent)]
struct PagePtr(*mut bindings::page);

// SAFETY: A `struct page *` has no thread affinity: what is done with it here
// (`memcpy_from_page()` and friends, `page_to_phys()`) may be done on any thread.
unsafe impl Send for PagePtr {}

/// The pages of a run: one inline (the common single-page case), or a vector.
enum Pages {
    One(PagePtr),
    Many(KVec<PagePtr>),
}

impl Pages {
    fn get(&self, i: usize) -> PagePtr {
        match self {
            Pages::One(p) => *p,
            Pages::Many(v) => v[i],
        }
    }
}

/// A vector that keeps its first element inline: single-page requests allocate nothing.
struct Small<T: Copy> {
    head: Option<T>,
    tail: KVec<T>,
}

impl<T: Copy> Small<T> {
    const fn new() -> Self {
        Self {
            head: None,
            tail: KVec::new(),
        }
    }

    fn push(&mut self, v: T) -> Result {
        if self.head.is_none() {
            self.head = Some(v);
            Ok(())
        } else {
            Ok(self.tail.push(v, GFP_KERNEL)?)
        }
    }

    fn get(&self, i: usize) -> Option<T> {
        match i {
            0 => self.head,
            _ => self.tail.get(i - 1).copied(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = T> + '_ {
        Iterator::chain(self.head.into_iter(), self.tail.iter().copied())
    }
}

/// Pages pinned by one `vfio_pin_pages()` call.
struct Run {
    /// First page number (IOVA >> `PAGE_SHIFT`).
    first: u64,
    npages: usize,
    /// Pinned for writing too.
    write: bool,
    /// Live [`Mapping`]s using the run: incremented under the map's lock, decremented
    /// without it.
    users: AtomicUsize,
    /// Being unmapped: no new users; unpinned when `users` drops to 0. Changed under the
    /// map's lock.
    doomed: AtomicBool,
    pages: Pages,
}

impl Run {
    fn last(&self) -> u64 {
        self.first + self.npages as u64 - 1
    }
}

/// How long after `dma_unmap` of a range new pins of it are refused, in nanoseconds.
///
/// While the unmap runs (it may wait for DMAs in flight for any time), its range is refused
/// unconditionally, and pins announced before it are waited for: no wall clock is involved
/// until `dma_unmap` returns. Only the window after the return is timed.
///
/// type1 keeps the IOVAs mapped while it calls `dma_unmap` and checks right after it returns
/// that no pin is left; a DMA that pins the range again in between makes it call `dma_unmap`
/// again, and after 10 such rounds it `BUG()`s. Refusing pins of a just-unmapped range for a
/// moment closes that window (iommufd does the same itself with `prevent_access`).
///
/// Why a time and not a protocol: `vfio_dma_do_unmap()` drops `iommu->lock` around the
/// `dma_unmap` calls and takes it again to re-check the `vfio_dma`'s pins; until it removes
/// the `vfio_dma`, `vfio_pin_pages()` of the range succeeds, and type1 gives a pinner no state
/// ("unmap in progress") and no event (after `vfio_remove_dma()`) to tell that window from a
/// pin of a new mapping of the same IOVAs, which userspace may create as soon as its unmap
/// ioctl returned. A fence that lasts until one of those would need one of them. The exact
/// limit: type1 `BUG()`s only if, ten times in a row for the same `vfio_dma`, a pin of the
/// range lands between a `dma_unmap` return and the re-check, each more than this long after
/// the return. The fix belongs in type1 (fail pins of a `vfio_dma` being unmapped, as
/// iommufd's `prevent_access` does); iommufd needs no window.
pub const UNMAP_GRACE_NS: i64 = 20_000_000;

/// A range recently unmapped: `(first page, last page, end of the grace period)`.
#[derive(Clone, Copy)]
struct Tombstone(u64, u64, i64);

/// Ranges remembered at once; more are merged (which refuses more pins, never fewer).
const TOMBSTONES: usize = 16;

/// Pins in progress at once; more wait for a slot.
const PINNING: usize = 16;

/// Unmaps in progress at once; more wait for a slot.
const UNMAPPING: usize = 16;

/// The state under the map's lock.
struct Inner {
    /// Runs by their last page number; runs never overlap.
    tree: RBTree<u64, Run>,
    pinned_pages: u64,
    runs: u64,
    /// Ranges unmapped less than [`UNMAP_GRACE_NS`] ago.
    tombstones: [Option<Tombstone>; TOMBSTONES],
    /// Ranges of the unmaps in progress, `(first page, last page)`: refused for the whole
    /// unmap, however long it waits for DMAs in flight, and the map cannot be opened while
    /// there is one (a device opening it could pin a range whose unmap is not done).
    unmapping: [Option<(u64, u64)>; UNMAPPING],
    /// Pins in progress (without the lock): `(first page, last page)`.
    pinning: [Option<(u64, u64)>; PINNING],
    /// Runs taken out of the tree whose unpin is in progress (without the lock).
    unpinning: usize,
    /// The `struct vfio_device` the map is bound to while that device is open.
    open_for: Option<usize>,
    /// The device whose close is dropping the pins: the map cannot be opened again, and the
    /// device's unmaps wait, until it is done.
    closing: Option<usize>,
}

impl Inner {
    /// Returns `true` if a pin in progress intersects `[first, last]`.
    fn pinning_in(&self, first: u64, last: u64) -> bool {
        self.pinning
            .iter()
            .flatten()
            .any(|&(f, l)| f <= last && first <= l)
    }

    /// Returns `true` if pins of `[first, last]` are refused: it intersects a range being
    /// unmapped, or one unmapped within the grace period.
    fn refused(&mut self, first: u64, last: u64) -> bool {
        self.unmapping_in(first, last) || self.recently_unmapped(first, last)
    }

    /// Returns `true` if `[first, last]` intersects the range of an unmap in progress.
    fn unmapping_in(&self, first: u64, last: u64) -> bool {
        self.unmapping
            .iter()
            .flatten()
            .any(|&(f, l)| f <= last && first <= l)
    }

    /// Returns `true` if `[first, last]` intersects a range unmapped within the grace period
    /// (and forgets the expired ones).
    fn recently_unmapped(&mut self, first: u64, last: u64) -> bool {
        let mut now = None;
        let mut hit = false;
        for slot in self.tombstones.iter_mut() {
            if let Some(Tombstone(f, l, until)) = *slot {
                let now = *now.get_or_insert_with(now_ns);
                if until <= now {
                    *slot = None;
                } else if f <= last && first <= l {
                    hit = true;
                }
            }
        }
        hit
    }

    /// Refuses pins of `[first, last]` for [`UNMAP_GRACE_NS`] from now.
    fn add_tombstone(&mut self, first: u64, last: u64) {
        self.recently_unmapped(0, 0);
        let until = now_ns() + UNMAP_GRACE_NS;
        if let Some(slot) = self.tombstones.iter_mut().find(|s| s.is_none()) {
            *slot = Some(Tombstone(first, last, until));
        } else if let Some(t) = self.tombstones[0].as_mut() {
            *t = Tombstone(t.0.min(first), t.1.max(last), until);
        }
    }
}

/// Counters of a [`PinnedMap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Pages pinned now.
    pub pinned_pages: u64,
    /// Runs (pin calls) cached now.
    pub runs: u64,
    /// Page lookups that found the page pinned.
    pub hits: u64,
    /// Page lookups that had to pin.
    pub misses: u64,
    /// `vfio_pin_pages()` calls so far.
    pub pins: u64,
    /// `vfio_unpin_pages()` calls so far.
    pub unpins: u64,
}

/// The pinned pages of one VFIO device.
///
/// Embed it in the device's data (it is pinned) and return it from
/// [`DeviceOps::pinned_map`]: the abstraction then binds it to the device when the device is
/// opened, drops the pins of ranges userspace unmaps and every pin when the device is closed.
/// [`PinnedMap::acquire`] pins only through the open device the map is bound to (`ENODEV`
/// otherwise), so no pin outlives the device's open state or is dropped through another
/// device.
#[pin_data]
pub struct PinnedMap {
    #[pin]
    inner: Mutex<Inner>,
    /// Signalled when the last user of a doomed run goes.
    #[pin]
    idle: CondVar,
    hits: AtomicU64,
    misses: AtomicU64,
    pins: AtomicU64,
    unpins: AtomicU64,
    /// Unmaps in progress; a [`Mapping`] dropping the last use of a run wakes them.
    unmappers: AtomicUsize,
    /// DMA logging is on: `log` holds a log. Read without the lock by every write.
    logging: AtomicBool,
    /// The dirty-page log while DMA logging is on. A spinlock, so that writes through a
    /// [`Mapping`] never sleep; only bits are set, read and cleared under it (allocation and
    /// freeing happen outside it, and the user's bitmap is written without it).
    #[pin]
    log: SpinLock<Option<DirtyLog>>,
}

/// Where the pages come from: VFIO for devices, nothing for the benchmark.
trait Backend {
    /// Pins `pages.len()` pages from page number `first`.
    fn pin(&mut self, first: u64, pages: &mut [PagePtr], write: bool) -> Result;
    /// Unpins what one `pin` call pinned.
    fn unpin(&mut self, first: u64, npages: usize);
}

struct Vfio<'a, T: DeviceOps>(&'a Device<T>);

impl<T: DeviceOps> Backend for Vfio<'_, T> {
    #[inline]
    fn pin(&mut self, first: u64, pages: &mut [PagePtr], write: bool) -> Result {
        let prot = bindings::IOMMU_READ | if write { bindings::IOMMU_WRITE } else { 0 };
        // SAFETY: The device is open: `acquire_with` checked under the map's lock that the map
        // is open for it, and the VFIO core closes the map (in `close_device`, which waits for
        // this pin) before the device stops being open. `pages` has room for
        // `pages.len()` (at most `PIN_PAGES_MAX`) pointers, and `PagePtr` is
        // `#[repr(transparent)]` over `*mut page`, so `*mut PagePtr` is a `struct page **`.
        let ret = unsafe {
            bindings::vfio_pin_pages(
                self.0.as_raw(),
                first << PAGE_SHIFT,
                pages.len() as i32,
                prot as i32,
                pages.as_mut_ptr().cast(),
            )
        };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        if ret as usize != pages.len() {
            // Not expected from either backend; give back what was pinned.
            // SAFETY: Undoes exactly the pin above.
            unsafe { bindings::vfio_unpin_pages(self.0.as_raw(), first << PAGE_SHIFT, ret) };
            return Err(EFAULT);
        }
        Ok(())
    }

    #[inline]
    fn unpin(&mut self, first: u64, npages: usize) {
        // SAFETY: `(first, npages)` is exactly what one `pin` call pinned.
        unsafe { bindings::vfio_unpin_pages(self.0.as_raw(), first << PAGE_SHIFT, npages as i32) }
    }
}

/// The lockdep names of a map's lock and condition variable. `static`s, not literals: the
/// initialiser below may be instantiated in a vendor module as well as in this crate (its
/// KUnit tests and benchmark), and a literal would then have two addresses, which lockdep
/// reports as two different names for one lock class key.
static INNER_NAME: &CStr = crate::c_str!("vfio::PinnedMap::inner");
static IDLE_NAME: &CStr = crate::c_str!("vfio::PinnedMap::idle");
static LOG_NAME: &CStr = crate::c_str!("vfio::PinnedMap::log");
/// Runs of dirty pages a report gathers per lock hold.
const REPORT_RUNS: usize = 256;

impl PinnedMap {
    /// Creates an empty map.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            inner <- Mutex::new(Inner {
                tree: RBTree::new(),
                pinned_pages: 0,
                runs: 0,
                tombstones: [None; TOMBSTONES],
                unmapping: [None; UNMAPPING],
                pinning: [None; PINNING],
                unpinning: 0,
                open_for: None,
                closing: None,
            }, INNER_NAME, crate::static_lock_class!()),
            idle <- CondVar::new(IDLE_NAME, crate::static_lock_class!()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            pins: AtomicU64::new(0),
            unpins: AtomicU64::new(0),
            unmappers: AtomicUsize::new(0),
            logging: AtomicBool::new(false),
            log <- SpinLock::new(None, LOG_NAME, crate::static_lock_class!()),
        })
    }

    /// Starts DMA logging over `ranges` (`(first, last)`, inclusive) at `page_size` (a hint,
    /// see [`dirty::page_shift`](super::dirty::page_shift)): from now on every page written
    /// through a [`Mapping`] of the map is recorded. Returns the page size used. Errors:
    /// `EBUSY` if logging is on already, the errors of [`DirtyLog::new`].
    pub(super) fn log_start(&self, ranges: &[(u64, u64)], page_size: u64) -> Result<u64> {
        let new = DirtyLog::new(ranges, page_size)?;
        let ps = new.page_size();
        let mut log = self.log.lock();
        if log.is_some() {
            drop(log);
            // `new` is freed here, without the spinlock.
            return Err(EBUSY);
        }
        *log = Some(new);
        self.logging.store(true, Ordering::SeqCst);
        drop(log);
        // Pairs with the fence in `mark_dirty` (store buffering): either a write sees
        // `logging` and marks its pages, or its data is visible to everything userspace reads
        // after this returns (its first pass over guest memory).
        core::sync::atomic::fence(Ordering::SeqCst);
        Ok(ps)
    }

    /// Stops DMA logging (nothing if it is off).
    pub(super) fn log_stop(&self) {
        let mut log = self.log.lock();
        self.logging.store(false, Ordering::SeqCst);
        let old = log.take();
        drop(log);
        // The bitmap is freed without the spinlock.
        drop(old);
    }

    /// Reads and clears the dirty pages of `[iova, iova + length)` (see
    /// [`DirtyLog::report_some`]), calling `f(start, length)` for each run without the log's
    /// lock held (`f` fills the user's bitmap, which may fault). `EINVAL` if logging is off.
    pub(super) fn log_report(&self, iova: u64, length: u64, mut f: impl FnMut(u64, u64)) -> Result {
        let mut out = KVec::with_capacity(REPORT_RUNS, GFP_KERNEL_ACCOUNT)?;
        let mut from = iova;
        loop {
            out.clear();
            let next = {
                let mut guard = self.log.lock();
                let log = Option::as_mut(&mut *guard).ok_or(EINVAL)?;
                log.report_some(iova, length, from, &mut out)
            };
            for &(s, l) in out.iter() {
                f(s, l);
            }
            match next {
                Some(n) => from = n,
                None => return Ok(()),
            }
        }
    }

    /// Records a device write of `[iova, iova + len)`, after its data was written. Does not
    /// sleep.
    fn mark_dirty(&self, iova: u64, len: u64) {
        // Orders the data written before the check (see `log_start`).
        core::sync::atomic::fence(Ordering::SeqCst);
        if self.logging.load(Ordering::Relaxed) {
            if let Some(log) = Option::as_mut(&mut *self.log.lock()) {
                log.mark(iova, len);
            }
        }
    }

    /// Returns the counters.
    pub fn stats(&self) -> Stats {
        let inner = self.inner.lock();
        Stats {
            pinned_pages: inner.pinned_pages,
            runs: inner.runs,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            pins: self.pins.load(Ordering::Relaxed),
            unpins: self.unpins.load(Ordering::Relaxed),
        }
    }

    /// Translates `[iova, iova + len)` for a DMA that reads (`write == false`) or writes guest
    /// memory, pinning the pages that are not pinned yet.
    ///
    /// Errors: `ENODEV` unless `dev` is the open device the map is bound to (see
    /// [`DeviceOps::pinned_map`]), `EINVAL` for `len == 0` or an overflowing range, `EPERM` for
    /// a write to pages userspace mapped read-only, `EFAULT` (or the backend's error) for IOVAs
    /// that are not mapped or are being unmapped. On error nothing stays acquired.
    #[inline]
    pub fn acquire<T: DeviceOps>(
        &self,
        dev: &Device<T>,
        iova: u64,
        len: u64,
        write: bool,
    ) -> Result<Mapping<'_>> {
        self.acquire_with(&mut Vfio(dev), dev.as_raw() as usize, iova, len, write)
    }

    /// Binds the map to `owner` as it is opened; forgets the ranges unmapped before (a new user
    /// of the device comes with new IOMMU mappings). `EBUSY` if it is open for a device, or a
    /// close or an unmap of a previous one is still in progress.
    pub(super) fn open(&self, owner: *mut bindings::vfio_device) -> Result {
        self.open_for(owner as usize)
    }

    fn open_for(&self, owner: usize) -> Result {
        let mut inner = self.inner.lock();
        if inner.open_for.is_some()
            || inner.closing.is_some()
            || inner.unmapping.iter().any(Option::is_some)
        {
            return Err(EBUSY);
        }
        inner.open_for = Some(owner);
        inner.tombstones = [None; TOMBSTONES];
        Ok(())
    }

    /// Unbinds the map from `dev`, which is being closed, and drops every pin: from the
    /// unbinding on, no pin can start, and those in progress are undone. The map cannot be
    /// opened again (by any device) before every pin is dropped, so all the runs this drops
    /// were pinned through `dev`.
    #[inline]
    pub(super) fn close<T: DeviceOps>(&self, dev: &Device<T>) {
        self.close_with(&mut Vfio(dev), dev.as_raw() as usize)
    }

    fn close_with(&self, backend: &mut impl Backend, owner: usize) {
        {
            let mut inner = self.inner.lock();
            if inner.open_for != Some(owner) {
                return;
            }
            inner.open_for = None;
            inner.closing = Some(owner);
        }
        // Logging is a state of the open device.
        self.log_stop();
        self.unmap_with(backend, 0, u64::MAX, None);
        let mut inner = self.inner.lock();
        inner.closing = None;
        // Wakes the device's unmaps that wait for the close.
        self.idle.notify_all();
    }

    /// Drops every pin in `[iova, iova + length)` of `dev`'s map, waiting for DMAs in flight
    /// there (the device's `dma_unmap`). If `dev` is being closed, waits for the close, which
    /// drops every pin; nothing if the map is not open for `dev`: then it holds no pin of it.
    #[inline]
    pub(super) fn unmap<T: DeviceOps>(&self, dev: &Device<T>, iova: u64, length: u64) {
        if length == 0 {
            return;
        }
        let first = iova >> PAGE_SHIFT;
        let last = iova.saturating_add(length - 1) >> PAGE_SHIFT;
        self.unmap_for(&mut Vfio(dev), dev.as_raw() as usize, first, last)
    }

    fn unmap_for(&self, backend: &mut impl Backend, owner: usize, first: u64, last: u64) {
        let slot = {
            let mut inner = self.inner.lock();
            loop {
                if inner.open_for != Some(owner) {
                    if inner.closing != Some(owner) {
                        return;
                    }
                    // The IOMMU back end expects no pin of the range left when we return: wait
                    // for the close to drop them, then check again.
                    self.idle.wait(&mut inner);
                    continue;
                }
                // Taken under the lock of the check: until this unmap ends, the map cannot be
                // closed and opened for another device, whose pins it would otherwise drop.
                match inner.unmapping.iter().position(Option::is_none) {
                    Some(i) => {
                        inner.unmapping[i] = Some((first, last));
                        break i;
                    }
                    None => self.idle.wait(&mut inner),
                }
            }
        };
        self.unmap_with(backend, first, last, Some(slot))
    }

    fn acquire_with(
        &self,
        backend: &mut impl Backend,
        owner: usize,
        iova: u64,
        len: u64,
        write: bool,
    ) -> Result<Mapping<'_>> {
        if len == 0 {
            return Err(EINVAL);
        }
        let end = iova.checked_add(len - 1).ok_or(EINVAL)?;
        let first = iova >> PAGE_SHIFT;
        let last = end >> PAGE_SHIFT;
        let mut m = Mapping {
            map: self,
            iova,
            offset: (iova as usize) & (PAGE_SIZE - 1),
            len: usize::try_from(len).map_err(|_| EINVAL)?,
            pages: Small::new(),
            held: Small::new(),
            // INVARIANT: A request for writing pins every page writable, or fails (below).
            writable: write,
            handed_out: AtomicBool::new(false),
        };
        let mut inner = self.inner.lock();
        if inner.open_for != Some(owner) {
            return Err(ENODEV);
        }
        if inner.refused(first, last) {
            return Err(EFAULT);
        }
        let mut pfn = first;
        while pfn <= last {
            // Checked again after every pin, for which the lock was dropped.
            if inner.open_for != Some(owner) {
                return Err(ENODEV);
            }
            // The run containing `pfn`, if any: the first run whose last page is >= pfn.
            let found = inner.tree.cursor_lower_bound(&pfn).map(|c| {
                let (&k, r) = c.current();
                (k, r.first, r.doomed.load(Ordering::Relaxed), r.write)
            });
            let gap_end = match found {
                Some((key, start, doomed, w)) if start <= pfn => {
                    if doomed {
                        drop(inner);
                        return Err(EFAULT);
                    }
                    if write && !w {
                        // Pinned read-only because pinning for writing failed with EPERM;
                        // only an unmap (which drops the run) can change the permission.
                        return Err(EPERM);
                    }
                    let upto = inner.tree.get(&key).ok_or(EINVAL)?.last().min(last);
                    // A run of a range whose unmap began after the checks above (the lock was
                    // dropped for a pin): not used either. (Tombstones cover no run: an unmap
                    // leaves none in its range, and none can be added to it for the period.)
                    if inner.unmapping_in(pfn, upto) {
                        return Err(EFAULT);
                    }
                    let run = inner.tree.get(&key).ok_or(EINVAL)?;
                    for p in pfn..=upto {
                        m.pages.push(run.pages.get((p - run.first) as usize))?;
                    }
                    // INVARIANT: counted as a user before being listed.
                    run.users.fetch_add(1, Ordering::SeqCst);
                    if let Err(e) = m.held.push(RunPtr(run)) {
                        run.users.fetch_sub(1, Ordering::SeqCst);
                        return Err(e);
                    }
                    self.hits.fetch_add(upto - pfn + 1, Ordering::Relaxed);
                    pfn = upto + 1;
                    continue;
                }
                // A gap up to the next run or to the end of the request.
                Some((_, start, ..)) => (start - 1).min(last),
                None => last,
            };
            let n = ((gap_end - pfn + 1) as usize).min(PIN_PAGES_MAX);
            // One page pins into `one`, more into a vector the run keeps.
            let mut one = [PagePtr(null_mut())];
            let mut many = if n > 1 {
                KVec::from_elem(PagePtr(null_mut()), n, GFP_KERNEL)?
            } else {
                KVec::new()
            };
            let pages: &mut [PagePtr] = if n > 1 { &mut many } else { &mut one };
            // A node allocated before pinning, so that a failed allocation does not leave pins.
            let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
            // Pin without the map's lock: type1 calls `dma_unmap` (which takes the lock) with
            // its `device_list_lock` held, and takes that lock while holding `iommu->lock`,
            // which pinning takes. The pin is announced in `pinning`, for which `unmap` waits:
            // iommufd expects the unmap callback to return only when no pin of the range can
            // appear any more.
            let end = pfn + n as u64 - 1;
            // Checked under the lock that announces the pin, also after every wait for a slot
            // (which drops the lock): a close or an unmap that began meanwhile does not wait
            // for pins announced after it, so none may be announced.
            let slot = loop {
                if inner.open_for != Some(owner) {
                    return Err(ENODEV);
                }
                if inner.refused(pfn, end) {
                    return Err(EFAULT);
                }
                match inner.pinning.iter().position(|p| p.is_none()) {
                    Some(i) => break i,
                    None => self.idle.wait(&mut inner),
                }
            };
            inner.pinning[slot] = Some((pfn, end));
            drop(inner);
            let mut pinned_write = true;
            let mut ret = backend.pin(pfn, pages, true);
            if ret == Err(EPERM) && !write {
                // A read-only mapping: good enough for reading.
                pinned_write = false;
                ret = backend.pin(pfn, pages, false);
            }
            if ret.is_ok() {
                self.pins.fetch_add(1, Ordering::Relaxed);
            }
            inner = self.inner.lock();
            // Another DMA may have pinned some of these pages meanwhile (keep its run), or an
            // unmap of them, or the device's close, may have started.
            let closed = ret.is_ok() && inner.open_for != Some(owner);
            let unmapped = ret.is_ok() && (closed || inner.refused(pfn, end));
            let raced = ret.is_ok()
                && inner
                    .tree
                    .cursor_lower_bound(&pfn)
                    .is_some_and(|c| c.current().1.first <= end);
            if unmapped || raced {
                drop(inner);
                backend.unpin(pfn, n);
                self.unpins.fetch_add(1, Ordering::Relaxed);
                inner = self.inner.lock();
            }
            if let Err(e) = ret {
                self.pin_done(&mut inner, slot);
                return Err(e);
            }
            if unmapped {
                self.pin_done(&mut inner, slot);
                return Err(if closed { ENODEV } else { EFAULT });
            }
            if raced {
                self.pin_done(&mut inner, slot);
                continue;
            }
            self.misses.fetch_add(n as u64, Ordering::Relaxed);
            let run = Run {
                first: pfn,
                npages: n,
                write: pinned_write,
                users: AtomicUsize::new(1),
                doomed: AtomicBool::new(false),
                pages: if n > 1 {
                    Pages::Many(many)
                } else {
                    Pages::One(one[0])
                },
            };
            let key = run.last();
            // In the tree first, so that the pins are never lost on an error below.
            inner.tree.insert(node.into_node(key, run));
            inner.pinned_pages += n as u64;
            inner.runs += 1;
            self.pin_done(&mut inner, slot);
            let run = inner.tree.get(&key).ok_or(EINVAL)?;
            // INVARIANT: the run was created with this mapping as its user.
            if let Err(e) = m.held.push(RunPtr(run)) {
                run.users.fetch_sub(1, Ordering::SeqCst);
                return Err(e);
            }
            for i in 0..n {
                m.pages.push(run.pages.get(i))?;
            }
            pfn += n as u64;
        }
        Ok(m)
    }

    /// Ends the pin in progress in `slot`; wakes unmaps waiting for it.
    fn pin_done(&self, inner: &mut Inner, slot: usize) {
        inner.pinning[slot] = None;
        self.idle.notify_all();
    }

    fn unpin_run(inner: &mut Inner, backend: &mut impl Backend, run: &Run, unpins: &AtomicU64) {
        backend.unpin(run.first, run.npages);
        unpins.fetch_add(1, Ordering::Relaxed);
        inner.pinned_pages -= run.npages as u64;
        inner.runs -= 1;
    }

    /// Drops the pins of `[first, last]`. `slot`: an unmap, whose range `unmap_for` put in
    /// `unmapping[slot]` (refused until the end, then for a while); otherwise the device's
    /// close.
    fn unmap_with(&self, backend: &mut impl Backend, first: u64, last: u64, slot: Option<usize>) {
        // Before looking at `users`: a mapping that drops a last use after this sees us.
        self.unmappers.fetch_add(1, Ordering::SeqCst);
        let mut inner = self.inner.lock();
        if slot.is_none() {
            inner.tombstones = [None; TOMBSTONES];
        }
        // Pins of the range in progress end in the tree, or undone since the range is now
        // refused; wait for them. (New pins of the range cannot start.)
        while inner.pinning_in(first, last) {
            self.idle.wait(&mut inner);
        }
        loop {
            let mut busy = false;
            let mut key = first;
            // Visit the runs intersecting [first, last] in order.
            while let Some((k, start, users)) = inner.tree.cursor_lower_bound(&key).map(|c| {
                let (&k, r) = c.current();
                (k, r.first, r.users.load(Ordering::SeqCst))
            }) {
                if start > last {
                    break;
                }
                if users == 0 {
                    if let Some(node) = inner.tree.remove_node(&k) {
                        let (_, run) = node.to_key_value();
                        inner.pinned_pages -= run.npages as u64;
                        inner.runs -= 1;
                        // Unpin without the map's lock (see `acquire_with`), announced: an
                        // unmap of an overlapping range that finds the run gone waits for it.
                        inner.unpinning += 1;
                        drop(inner);
                        backend.unpin(run.first, run.npages);
                        self.unpins.fetch_add(1, Ordering::Relaxed);
                        drop(run);
                        inner = self.inner.lock();
                        inner.unpinning -= 1;
                        self.idle.notify_all();
                    }
                } else if let Some(run) = inner.tree.get(&k) {
                    run.doomed.store(true, Ordering::Relaxed);
                    busy = true;
                }
                match k.checked_add(1) {
                    Some(n) => key = n,
                    None => break,
                }
            }
            if !busy {
                break;
            }
            // DMAs in flight hold doomed runs; the last one to finish wakes us.
            self.idle.wait(&mut inner);
        }
        // Runs of the range that another unmap (or the close) took out are unpinned when we
        // return. Any unpin is waited for: it waits for no `PinnedMap` state, only, in type1,
        // for `iommu->lock`, which type1 does not hold while it calls `dma_unmap` (it holds
        // `device_list_lock` then, as when the unmap unpins a run itself).
        while inner.unpinning > 0 {
            self.idle.wait(&mut inner);
        }
        if let Some(slot) = slot {
            // The grace period counts from the return to the IOMMU back end.
            inner.add_tombstone(first, last);
            inner.unmapping[slot] = None;
            // Wakes unmaps waiting for a slot.
            self.idle.notify_all();
        }
        drop(inner);
        self.unmappers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Called by a dropped [`Mapping`]: drops its uses without taking the lock, unless an
    /// unmap may be waiting for them.
    fn put(&self, held: &Small<RunPtr>) {
        let mut last = false;
        for r in held.iter() {
            // SAFETY: The mapping counts as a user of the run (invariant of `Mapping`), so the
            // run is in the tree and not freed: runs are removed only without users. The run
            // is not touched after the decrement.
            last |= unsafe { (*r.0).users.fetch_sub(1, Ordering::SeqCst) } == 1;
        }
        // Pairs with `unmap_with`: it counts itself before reading `users`, we decrement
        // before reading its count, so one of us sees the other.
        if last && self.unmappers.load(Ordering::SeqCst) > 0 {
            // Under the lock, so that the wake-up cannot fall between an unmapper's check of
            // `users` and its sleep.
            let _guard = self.inner.lock();
            self.idle.notify_all();
        }
    }
}

/// Pinned pages of one DMA request, from [`PinnedMap::acquire`]; dropping it lets them be
/// unpinned.
///
/// # Invariants
///
/// Every entry of `held` points to a run of `map` on which this mapping counts as a user, and
/// every page of `pages` belongs to one of them, so the runs stay in the tree and the pages
/// pinned as long as the mapping lives. If `writable`, every page was pinned for writing
/// (`IOMMU_WRITE`: `FOLL_WRITE`, so a private page of its own, never the shared zero page or a
/// read-only page cache page).
pub struct Mapping<'a> {
    map: &'a PinnedMap,
    /// IOVA of the first byte.
    iova: u64,
    /// Offset of the first byte in the first page.
    offset: usize,
    len: usize,
    pages: Small<PagePtr>,
    held: Small<RunPtr>,
    /// Acquired for writing: [`Mapping::write`] and [`Mapping::fill`] are allowed.
    writable: bool,
    /// [`Mapping::segments`] handed the (writable) pages to hardware: they count as written
    /// again when the mapping is dropped, after the hardware is done.
    handed_out: AtomicBool,
}

impl Mapping<'_> {
    /// Whether the request was acquired for writing (`write == true` in
    /// [`PinnedMap::acquire`]); only then can it be written.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Length of the request in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns `true` for an empty request (never: `acquire` refuses them).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f(page_index, offset_in_page, range_in_buf)` for each page piece of
    /// `[pos, pos + n)` of the request.
    fn pieces(
        &self,
        pos: usize,
        n: usize,
        mut f: impl FnMut(*mut bindings::page, usize, core::ops::Range<usize>),
    ) -> Result {
        match pos.checked_add(n) {
            Some(end) if end <= self.len => {}
            _ => return Err(EINVAL),
        }
        let mut done = 0;
        while done < n {
            let abs = self.offset + pos + done;
            let (page, off) = (abs / PAGE_SIZE, abs % PAGE_SIZE);
            let chunk = (PAGE_SIZE - off).min(n - done);
            f(
                self.pages.get(page).ok_or(EINVAL)?.0,
                off,
                done..done + chunk,
            );
            done += chunk;
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes of guest memory at `pos` (from the start of the request) into
    /// `buf`.
    pub fn read(&self, pos: usize, buf: &mut [u8]) -> Result {
        self.pieces(pos, buf.len(), |p, off, r| {
            // SAFETY: `p` is pinned (type invariant), `off + r.len() <= PAGE_SIZE` and `buf[r]`
            // is writable. Guest memory can change under the copy (the guest and userspace
            // write it), so C copies it (`memcpy_from_page()`, instrumented like any C copy),
            // as for a device's DMA, not a Rust read of memory nobody else writes.
            unsafe {
                let dst = buf[r.clone()].as_mut_ptr().cast();
                bindings::memcpy_from_page(dst, p, off, r.len());
            }
        })
    }

    /// Copies `data` into guest memory at `pos`.
    ///
    /// Fails with `EPERM` unless the request was acquired for writing: a read-only request may
    /// have pinned the shared zero page or a page of a file the user cannot write.
    pub fn write(&self, pos: usize, data: &[u8]) -> Result {
        if !self.writable {
            return Err(EPERM);
        }
        self.pieces(pos, data.len(), |p, off, r| {
            // SAFETY: `p` is pinned for writing (type invariant, `writable` checked above) and
            // `off + r.len() <= PAGE_SIZE`. Written by C (`memcpy_to_page()`, which also flushes
            // the data cache where that is needed), as guest memory is shared (see `read`).
            unsafe { bindings::memcpy_to_page(p, off, data[r.clone()].as_ptr().cast(), r.len()) }
        })?;
        self.map
            .mark_dirty(self.iova + pos as u64, data.len() as u64);
        Ok(())
    }

    /// Fills `n` bytes of guest memory at `pos` with `byte`; `EPERM` as for [`Mapping::write`].
    pub fn fill(&self, pos: usize, n: usize, byte: u8) -> Result {
        if !self.writable {
            return Err(EPERM);
        }
        self.pieces(pos, n, |p, off, r| {
            // SAFETY: `p` is pinned for writing (type invariant, `writable` checked above) and
            // `off + r.len() <= PAGE_SIZE`. Written by C (`memset_page()`), as guest memory is
            // shared (see `read`).
            unsafe { bindings::memset_page(p, off, c_int::from(byte), r.len()) }
        })?;
        self.map.mark_dirty(self.iova + pos as u64, n as u64);
        Ok(())
    }

    /// The request's pieces, page by page: `(page, offset in the page, length)`. The pages
    /// stay pinned while `self` lives (type invariant).
    pub(super) fn page_pieces(
        &self,
    ) -> impl Iterator<Item = (*mut bindings::page, usize, usize)> + '_ {
        let mut pos = 0;
        core::iter::from_fn(move || {
            if pos >= self.len {
                return None;
            }
            let abs = self.offset + pos;
            let (page, off) = (abs / PAGE_SIZE, abs % PAGE_SIZE);
            let chunk = (PAGE_SIZE - off).min(self.len - pos);
            let p = self.pages.get(page)?.0;
            pos += chunk;
            Some((p, off, chunk))
        })
    }

    /// Hardware may write the request from now on until the mapping is dropped (see
    /// [`Mapping::segments`]): it counts as written now and again on drop.
    pub(super) fn hand_out(&self) {
        if self.writable {
            self.handed_out.store(true, Ordering::Relaxed);
            self.map.mark_dirty(self.iova, self.len as u64);
        }
    }

    /// The physical segments of the request, `(host physical address, length)`, page by page
    /// (contiguous pages are not merged).
    ///
    /// CPU physical addresses, which no device may be given: one behind an IOMMU, with a DMA
    /// mask narrower than memory or with a DMA offset sees other addresses. A device that DMAs
    /// itself gets DMA-API addresses from [`DmaParent::map`](super::dma::DmaParent::map).
    ///
    /// The abstraction cannot see what hardware writes: with DMA logging on, a writable
    /// request counts as written in full, when its segments are handed out and again when the
    /// mapping is dropped (a report between the two must not lose a write that comes after
    /// it). A device that DMAs must therefore drop its mappings before it reports
    /// [`Activity::Stopped`](super::migration::Activity::Stopped).
    pub fn segments(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        self.hand_out();
        self.page_pieces().map(|(p, off, chunk)| {
            // SAFETY: The page is pinned (type invariant).
            let phys = unsafe { bindings::page_to_phys(p) };
            (phys + off as u64, chunk)
        })
    }
}

impl Drop for Mapping<'_> {
    fn drop(&mut self) {
        if self.handed_out.load(Ordering::Relaxed) {
            // Hardware may have written any of the pages since `segments`.
            self.map.mark_dirty(self.iova, self.len as u64);
        }
        self.map.put(&self.held);
    }
}

/// Per-operation timings of the map's data structure, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct BenchResult {
    /// Entries.
    pub n: u32,
    /// Insert of a single-page run (simulated pin, node allocation, tree insert).
    pub insert_ns: u64,
    /// Lookup of a page and taking/dropping a use of its run.
    pub lookup_ns: u64,
    /// Removal of a run (tree erase, simulated unpin, free).
    pub remove_ns: u64,
}

struct NoPages;

/// The owner the benchmark and the tests open maps for (not a device: `NoPages` never uses it).
const BENCH_OWNER: usize = 1;

impl Backend for NoPages {
    fn pin(&mut self, first: u64, pages: &mut [PagePtr], _write: bool) -> Result {
        for (i, p) in pages.iter_mut().enumerate() {
            // Fake, never dereferenced: the benchmark does not copy.
            p.0 = ((first + i as u64) << PAGE_SHIFT) as *mut bindings::page;
        }
        Ok(())
    }

    fn unpin(&mut self, _first: u64, _npages: usize) {}
}

/// The `i`-th key of the benchmark: a permutation of `0..n` (`n` a power of two) by an odd
/// multiplier, so that inserts and lookups do not go in sorted order.
pub fn bench_key(i: u32, n: u32) -> u64 {
    u64::from(i.wrapping_mul(0x9e37_79b1) & (n - 1))
}

/// Measures the map's data structure with `n` single-page runs (`n` a power of two) and no
/// real pinning: insert all (as misses), look each up as a DMA does (hits), remove all. The
/// C comparison (`samples/vfio-mdev/mdma_cache_c.c`) does the same with the GVT cache.
pub fn benchmark(n: u32) -> Result<BenchResult> {
    if n == 0 || !n.is_power_of_two() {
        return Err(EINVAL);
    }
    let map = KBox::pin_init(PinnedMap::new(), GFP_KERNEL)?;
    map.open_for(BENCH_OWNER)?;
    let mut backend = NoPages;
    let now = || now_ns() as u64;

    let t0 = now();
    for i in 0..n {
        let pfn = bench_key(i, n);
        drop(map.acquire_with(&mut backend, BENCH_OWNER, pfn << PAGE_SHIFT, 1, false)?);
    }
    let t1 = now();
    for i in 0..n {
        let pfn = bench_key(i, n);
        let inner = map.inner.lock();
        let page = {
            let cursor = inner.tree.cursor_lower_bound(&pfn).ok_or(EINVAL)?;
            let (_, run) = cursor.current();
            run.users.fetch_add(1, Ordering::SeqCst);
            let page = run.pages.get((pfn - run.first) as usize);
            run.users.fetch_sub(1, Ordering::SeqCst);
            page
        };
        drop(inner);
        core::hint::black_box(page.0);
    }
    let t2 = now();
    for i in 0..n {
        let pfn = bench_key(i, n);
        let mut inner = map.inner.lock();
        let node: Option<RBTreeNode<u64, Run>> = inner.tree.remove_node(&pfn);
        let (_, run) = node.ok_or(EINVAL)?.to_key_value();
        PinnedMap::unpin_run(&mut inner, &mut backend, &run, &map.unpins);
    }
    let t3 = now();
    let per = |d: u64| d / u64::from(n);
    Ok(BenchResult {
        n,
        insert_ns: per(t1 - t0),
        lookup_ns: per(t2 - t1),
        remove_ns: per(t3 - t2),
    })
}

#[kunit_tests(rust_kernel_vfio_pinmap)]
mod tests {
    use super::*;

    /// Pins like `NoPages`, but refuses write pins with `EPERM` (pages userspace mapped
    /// read-only).
    struct ReadOnly;

    impl Backend for ReadOnly {
        fn pin(&mut self, first: u64, pages: &mut [PagePtr], write: bool) -> Result {
            if write {
                return Err(EPERM);
            }
            NoPages.pin(first, pages, false)
        }

        fn unpin(&mut self, _first: u64, _npages: usize) {}
    }

    /// A request acquired for reading cannot be written through: `write` and `fill` fail with
    /// `EPERM` before touching a page (the fake pages here would fault).
    #[test]
    fn read_request_is_not_writable() -> Result {
        let map = KBox::pin_init(PinnedMap::new(), GFP_KERNEL)?;
        map.open_for(BENCH_OWNER)?;
        let m = map.acquire_with(&mut NoPages, BENCH_OWNER, 0x1000, 100, false)?;
        assert!(!m.is_writable());
        assert_eq!(m.write(0, &[1, 2, 3]), Err(EPERM));
        assert_eq!(m.fill(0, 3, 0xff), Err(EPERM));
        drop(m);
        // The same pages, now hits, requested for writing: a writable mapping.
        let m = map.acquire_with(&mut NoPages, BENCH_OWNER, 0x1000, 100, true)?;
        assert!(m.is_writable());
        Ok(())
    }

    /// Pages that could only be pinned read-only serve reads but refuse write requests.
    #[test]
    fn read_only_pins_refuse_writes() -> Result {
        let map = KBox::pin_init(PinnedMap::new(), GFP_KERNEL)?;
        map.open_for(BENCH_OWNER)?;
        assert_eq!(
            map.acquire_with(&mut ReadOnly, BENCH_OWNER, 0x4000, 8192, true)
                .err(),
            Some(EPERM)
        );
        let m = map.acquire_with(&mut ReadOnly, BENCH_OWNER, 0x4000, 8192, false)?;
        assert!(!m.is_writable());
        assert_eq!(m.write(4096, &[0]), Err(EPERM));
        drop(m);
        // A hit on the read-only run, for writing.
        assert_eq!(
            map.acquire_with(&mut ReadOnly, BENCH_OWNER, 0x5000, 1, true)
                .err(),
            Some(EPERM)
        );
        Ok(())
    }

    /// A map pins only for the device it is open for: not before it is opened, not for another
    /// device, not after it is closed; a second device cannot open it.
    #[test]
    fn pins_only_for_the_open_device() -> Result {
        let map = KBox::pin_init(PinnedMap::new(), GFP_KERNEL)?;
        let other = BENCH_OWNER + 1;
        assert_eq!(
            map.acquire_with(&mut NoPages, BENCH_OWNER, 0x1000, 1, false)
                .err(),
            Some(ENODEV)
        );
        map.open_for(BENCH_OWNER)?;
        assert_eq!(map.open_for(other), Err(EBUSY));
        assert_eq!(
            map.acquire_with(&mut NoPages, other, 0x1000, 1, false)
                .err(),
            Some(ENODEV)
        );
        drop(map.acquire_with(&mut NoPages, BENCH_OWNER, 0x1000, 1, false)?);
        assert_eq!(map.stats().pinned_pages, 1);
        map.close_with(&mut NoPages, other);
        // A close for another device does nothing.
        assert_eq!(map.stats().pinned_pages, 1);
        map.close_with(&mut NoPages, BENCH_OWNER);
        assert_eq!(map.stats().pinned_pages, 0);
        assert_eq!(
            map.acquire_with(&mut NoPages, BENCH_OWNER, 0x1000, 1, false)
                .err(),
            Some(ENODEV)
        );
        // Another device can open it now.
        map.open_for(other)?;
        Ok(())
    }

    /// While an unmap of a range is in progress, pins of it are refused, whatever the time,
    /// and no other device can open the map; other ranges work.
    #[test]
    fn unmap_in_progress_refuses() -> Result {
        let map = KBox::pin_init(PinnedMap::new(), GFP_KERNEL)?;
        map.open_for(BENCH_OWNER)?;
        drop(map.acquire_with(&mut NoPages, BENCH_OWNER, 0x10000, 0x2000, false)?);
        // An unmap of pages 0x10-0x11 that has not finished.
        map.inner.lock().unmapping[0] = Some((0x10, 0x11));
        for (iova, len) in [(0x11000, 1), (0xf000, 0x2000), (0x10000, 0x3000)] {
            assert_eq!(
                map.acquire_with(&mut NoPages, BENCH_OWNER, iova, len, false)
                    .err(),
                Some(EFAULT)
            );
        }
        drop(map.acquire_with(&mut NoPages, BENCH_OWNER, 0x20000, 1, false)?);
        map.close_with(&mut NoPages, BENCH_OWNER);
        assert_eq!(map.open_for(BENCH_OWNER + 1), Err(EBUSY));
        map.inner.lock().unmapping[0] = None;
        map.open_for(BENCH_OWNER + 1)?;
        Ok(())
    }

    /// An unmap drops the pins of its range, gives its slot back, and the range is refused
    /// after it (for the grace period); an unmap for a device the map is not open for does
    /// nothing.
    #[test]
    fn unmap_gives_its_slot_back() -> Result {
        let map = KBox::pin_init(PinnedMap::new(), GFP_KERNEL)?;
        map.open_for(BENCH_OWNER)?;
        drop(map.acquire_with(&mut NoPages, BENCH_OWNER, 0x10000, 0x2000, false)?);
        drop(map.acquire_with(&mut NoPages, BENCH_OWNER, 0x20000, 1, false)?);
        assert_eq!(map.stats().pinned_pages, 3);
        map.unmap_for(&mut NoPages, BENCH_OWNER + 1, 0x10, 0x20);
        assert_eq!(map.stats().pinned_pages, 3);
        map.unmap_for(&mut NoPages, BENCH_OWNER, 0x10, 0x11);
        assert_eq!(map.stats().pinned_pages, 1);
        let inner = map.inner.lock();
        assert!(inner.unmapping.iter().all(Option::is_none));
        assert_eq!(inner.unpinning, 0);
        // Refused for the grace period from now (checked by structure, not by time).
        assert!(inner
            .tombstones
            .iter()
            .flatten()
            .any(|t| (t.0, t.1) == (0x10, 0x11)));
        Ok(())
    }

    /// Pins like `NoPages`, and while the lock is dropped for that, an unmap of `range` begins.
    struct UnmapDuringPin<'a>(&'a PinnedMap, (u64, u64));

    impl Backend for UnmapDuringPin<'_> {
        fn pin(&mut self, first: u64, pages: &mut [PagePtr], write: bool) -> Result {
            self.0.inner.lock().unmapping[0] = Some(self.1);
            NoPages.pin(first, pages, write)
        }

        fn unpin(&mut self, _first: u64, _npages: usize) {}
    }

    /// An unmap that begins while a request pins (the lock dropped) makes the request fail,
    /// whether it overlaps the new pin (undone) or a cached run the request reaches next.
    #[test]
    fn unmap_during_a_pin_refuses() -> Result {
        let map = KBox::pin_init(PinnedMap::new(), GFP_KERNEL)?;
        map.open_for(BENCH_OWNER)?;
        // A cached run at page 0x21.
        drop(map.acquire_with(&mut NoPages, BENCH_OWNER, 0x21000, 1, false)?);
        // The new pin of page 0x20 is undone, its range being unmapped now.
        let mut b = UnmapDuringPin(&map, (0x20, 0x20));
        let r = map.acquire_with(&mut b, BENCH_OWNER, 0x20000, 0x2000, false);
        assert_eq!(r.err(), Some(EFAULT));
        assert_eq!(map.stats().pinned_pages, 1);
        map.inner.lock().unmapping[0] = None;
        // The pin of page 0x20 succeeds, the cached run at 0x21 is being unmapped now.
        let mut b = UnmapDuringPin(&map, (0x21, 0x21));
        let r = map.acquire_with(&mut b, BENCH_OWNER, 0x20000, 0x2000, false);
        assert_eq!(r.err(), Some(EFAULT));
        Ok(())
    }
}
