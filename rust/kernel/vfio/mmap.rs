// SPDX-License-Identifier: GPL-2.0

//! Device memory that userspace maps: a driver-owned framebuffer or aperture.
//!
//! A vendor driver keeps the memory of a region in [`SharedPages`] (zeroed pages, allocated
//! on first use), accesses it from its `read`/`write` callbacks with bounds-checked copies,
//! and from [`DeviceOps::mmap`](super::DeviceOps::mmap) hands a range of it to the user's
//! mapping with [`VmArea::map_pages`](super::VmArea::map_pages). The pages are not inserted
//! at `mmap` time: every page fault looks the page up (allocating it if needed) and inserts
//! it, under the device's mapping lock.
//!
//! The abstraction revokes every user mapping of a device (all its page table entries are
//! zapped, `unmap_mapping_range()` on the device file's address space):
//!
//! - after `VFIO_DEVICE_RESET`: the next touch faults and maps the (reset) page again;
//! - when the device is being removed while open ([`DeviceOps::request`]
//!   (super::DeviceOps::request) time): from then on a touch gets `SIGBUS`;
//! - on a migration arc that changes what the device does ([`super::migration::Activity`]):
//!   the next touch maps the page again. Accesses while the device is stopped are not
//!   refused: the uAPI leaves it to the user not to change a stopped device, and a `SIGBUS`
//!   would kill a VMM whose display code reads the framebuffer during `STOP_COPY`.
//!
//! A driver may also zap the mappings itself ([`Device::zap_mappings`]
//! (super::Device::zap_mappings)); the next touch maps the same page of the same
//! [`SharedPages`] again (a mapping keeps the memory it was made with).
//!
//! Mappings are `VM_IO` (the slow `get_user_pages()` path refuses them, so a writable
//! long-term pin cannot be taken; a read-only pin through the fast path of a present entry
//! still can, and outlives a zap: it holds a page reference, so the memory stays valid, but
//! such a pin is not revoked) and `VM_DONTDUMP` (a core dump does not fault in the whole
//! framebuffer), as C drivers' `remap_*()` mappings are.
//!
//! The pages live as long as the [`SharedPages`] does, which every mapping of it holds a
//! reference on: a driver may drop or replace its own reference at any time.

use super::{Device, DeviceOps};
use crate::{
    alloc::{flags::__GFP_ZERO, KVVec},
    bindings,
    page::{Page, PAGE_SIZE},
    prelude::*,
    sync::{Arc, ArcBorrow},
};
use core::{
    ptr::null_mut,
    sync::atomic::{AtomicPtr, Ordering},
};

/// Pages of device memory that userspace may map and the driver reads and writes.
///
/// Pages are allocated zeroed on first use (a write, [`SharedPages::populate`] or a page fault
/// of a mapping), and freed when the last reference (the driver's and every mapping's) is
/// gone. Reads of pages that were never allocated return zeros.
///
/// The memory is shared with userspace, which may write it at any time through a mapping: the
/// copies in and out are C copies (`memcpy_to_page()`, `memcpy_from_page()`) and no Rust
/// reference to the memory exists.
///
/// # Invariants
///
/// Every slot is NULL or points to an order-0 page allocated by `alloc_pages()`, owned by this
/// object (freed by its `drop`, never replaced once set).
///
/// # Examples
///
/// ```
/// use kernel::vfio::mmap::SharedPages;
///
/// let fb = SharedPages::new(2 * kernel::page::PAGE_SIZE)?;
/// assert_eq!(fb.size(), 8192);
/// let mut b = [0xffu8; 4];
/// fb.read(4094, &mut b)?; // never written: zeros, nothing allocated
/// assert_eq!(b, [0; 4]);
/// fb.write(4094, &[1, 2, 3, 4])?; // across the page boundary
/// fb.read(4094, &mut b)?;
/// assert_eq!(b, [1, 2, 3, 4]);
/// fb.fill(0, 2, 0xaa)?;
/// fb.read(0, &mut b[..3])?;
/// assert_eq!(b[..3], [0xaa, 0xaa, 0]);
/// assert_eq!(fb.write(8190, &[0; 4]), Err(ERANGE)); // past the end
/// assert_eq!(SharedPages::new(100).err(), Some(EINVAL)); // not whole pages
/// # Ok::<(), Error>(())
/// ```
pub struct SharedPages {
    slots: KVVec<AtomicPtr<bindings::page>>,
}

impl SharedPages {
    /// Creates `size` bytes of device memory (a non-zero multiple of `PAGE_SIZE`, else
    /// `EINVAL`); no page is allocated yet.
    pub fn new(size: usize) -> Result<Arc<Self>> {
        if size == 0 || size % PAGE_SIZE != 0 {
            return Err(EINVAL);
        }
        let n = size / PAGE_SIZE;
        // 16384 slots (128 KiB) for 64 MiB: vmalloc when kmalloc cannot.
        let mut slots = KVVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            slots.push(AtomicPtr::new(null_mut()), GFP_KERNEL)?;
        }
        // INVARIANT: Every slot is NULL.
        Ok(Arc::new(Self { slots }, GFP_KERNEL)?)
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.slots.len() * PAGE_SIZE
    }

    /// Number of pages.
    pub fn page_count(&self) -> usize {
        self.slots.len()
    }

    /// Number of pages allocated so far.
    pub fn resident(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !s.load(Ordering::Acquire).is_null())
            .count()
    }

    /// The page at index `i`, allocated (zeroed) if it was not; `ERANGE` past the end,
    /// `ENOMEM` if it cannot be allocated.
    pub(crate) fn page(&self, i: usize) -> Result<*mut bindings::page> {
        let slot = self.slots.get(i).ok_or(ERANGE)?;
        let p = slot.load(Ordering::Acquire);
        if !p.is_null() {
            return Ok(p);
        }
        let page = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
        let new = page.as_ptr();
        match slot.compare_exchange(null_mut(), new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                // INVARIANT: The slot now owns the page; `drop` frees it.
                core::mem::forget(page);
                Ok(new)
            }
            // Another thread was first: ours is freed when `page` drops.
            Err(other) => Ok(other),
        }
    }

    /// The page at index `i` if it was allocated.
    fn existing(&self, i: usize) -> Option<*mut bindings::page> {
        let p = self.slots.get(i)?.load(Ordering::Acquire);
        (!p.is_null()).then_some(p)
    }

    /// Allocates every page (a driver that wants the whole memory at once, as the C `mdpy`
    /// allocates its framebuffer).
    pub fn populate(&self) -> Result {
        for i in 0..self.slots.len() {
            self.page(i)?;
        }
        Ok(())
    }

    /// Checks that `[offset, offset + len)` is within the memory (`ERANGE` otherwise).
    fn check(&self, offset: usize, len: usize) -> Result {
        match offset.checked_add(len) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(ERANGE),
        }
    }

    /// Calls `f(page index, offset in the page, range in the caller's buffer)` for each page
    /// piece of `[offset, offset + len)`, which the caller checked.
    fn pieces(
        offset: usize,
        len: usize,
        mut f: impl FnMut(usize, usize, core::ops::Range<usize>) -> Result,
    ) -> Result {
        let mut done = 0;
        while done < len {
            let pos = offset + done;
            let in_page = pos % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page).min(len - done);
            f(pos / PAGE_SIZE, in_page, done..done + n)?;
            done += n;
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes at `offset` into `buf` (`ERANGE` past the end). Pages that were
    /// never allocated read as zeros.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result {
        self.check(offset, buf.len())?;
        Self::pieces(offset, buf.len(), |i, off, r| {
            let p = self.slots[i].load(Ordering::Acquire);
            let dst = &mut buf[r];
            if p.is_null() {
                dst.fill(0);
            } else {
                // SAFETY: `p` is a page this object owns (type invariant), alive while `self`
                // is; `off + dst.len() <= PAGE_SIZE` (`pieces`); `dst` is valid for writes of
                // its length. The page is shared with userspace, so C copies it.
                unsafe { bindings::memcpy_from_page(dst.as_mut_ptr().cast(), p, off, dst.len()) };
            }
            Ok(())
        })
    }

    /// Copies `data` to `offset` (`ERANGE` past the end, `ENOMEM` if a page cannot be
    /// allocated: then a prefix may have been written).
    pub fn write(&self, offset: usize, data: &[u8]) -> Result {
        self.check(offset, data.len())?;
        Self::pieces(offset, data.len(), |i, off, r| {
            let p = self.page(i)?;
            let src = &data[r];
            // SAFETY: As in `read`, with `src` valid for reads of its length.
            unsafe { bindings::memcpy_to_page(p, off, src.as_ptr().cast(), src.len()) };
            Ok(())
        })
    }

    /// Sets `len` bytes at `offset` to `byte` (`ERANGE` past the end, `ENOMEM` as `write`).
    pub fn fill(&self, offset: usize, len: usize, byte: u8) -> Result {
        self.check(offset, len)?;
        Self::pieces(offset, len, |i, off, r| {
            let p = self.page(i)?;
            // SAFETY: As in `read`: a page this object owns, `off + r.len() <= PAGE_SIZE`.
            unsafe { bindings::memset_page(p, off, byte.into(), r.len()) };
            Ok(())
        })
    }
}

impl Drop for SharedPages {
    fn drop(&mut self) {
        for s in self.slots.iter() {
            let p = s.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: The page was allocated by `alloc_pages()` with order 0 and is owned by
                // this object (type invariant); mappings took their own references
                // (`vm_insert_page()`), so it lives on until they are unmapped.
                unsafe { bindings::__free_pages(p, 0) };
            }
        }
    }
}

/// What the device's mappings may do, under the device's mapping lock.
#[derive(Default)]
pub(super) struct MmapGate {
    /// The device is being removed: no more pages are mapped.
    removed: bool,
}

/// The backing of one user mapping: its pages, where it starts, and its device's gate.
///
/// # Invariants
///
/// `gate` is NULL (a dma-buf mapping: nothing revokes it) or points to the `mmap` mutex of the
/// [`Device<T>`] whose file the mapping maps. The mapping holds a reference on that file
/// (`vm_file`), whose release is what lets the VFIO core unregister the device, and the
/// device's memory is freed only after that, so the mutex outlives every mapping that uses
/// this backing.
pub(super) struct Backing {
    pages: Arc<SharedPages>,
    /// The file offset (in pages) of the mapping when it was made (`vm_pgoff`).
    base_pgoff: usize,
    /// The page of `pages` mapped at `base_pgoff`.
    first: usize,
    gate: *const crate::sync::Mutex<MmapGate>,
}

// SAFETY: `gate` is only used to lock the mutex (`Sync`), which outlives the backing (type
// invariant); `Arc<SharedPages>` is `Send + Sync` (its pages are only reached through atomics
// and C copies).
unsafe impl Send for Backing {}
// SAFETY: See `Send`: every access through `&Backing` is a lock or an atomic.
unsafe impl Sync for Backing {}

impl<T: DeviceOps> Device<T> {
    /// Zaps every user mapping of the device (all page table entries of its file, every
    /// offset): the next touch of a mapping made with [`super::VmArea::map_pages`] faults and
    /// maps the same page again, unless the device is being removed.
    pub fn zap_mappings(&self) {
        let _g = self.mmap.lock();
        self.zap_locked();
    }

    /// Zaps every user mapping; the caller holds `self.mmap`.
    fn zap_locked(&self) {
        // SAFETY: `inode` is set by `vfio_init_device()` before the device is registered and
        // put at its release, so it is alive while `self` is; `unmap_mapping_range()` on its
        // address space with `holelen` 0 zaps every mapping of every offset of the device
        // file (both the group and the cdev file use this address space, `f_mapping`).
        unsafe {
            bindings::unmap_mapping_range((*(*self.as_raw()).inode).i_mapping, 0, 0, 1);
        }
    }

    /// The device is being removed: from now on no page is mapped, and the existing mappings
    /// are zapped.
    pub(super) fn revoke_mappings(&self) {
        let mut g = self.mmap.lock();
        g.removed = true;
        self.zap_locked();
    }
}

impl super::VmArea {
    /// Backs this mapping with `pages`: the page at file offset `vm_pgoff + k` is page
    /// `first + k` of `pages`, mapped when first touched.
    ///
    /// `dev` must be the device whose file is being mapped (`EINVAL` otherwise, as for a
    /// mapping that is not shared, `MAP_SHARED`, or that reaches past the end of `pages`).
    /// A mapping can be backed once (`EBUSY` after that). The mapping cannot grow with
    /// `mremap()` (`VM_DONTEXPAND`), and holds a reference on `pages` until it is unmapped.
    pub fn map_pages<T: DeviceOps>(
        &self,
        dev: &Device<T>,
        pages: &Arc<SharedPages>,
        first: usize,
    ) -> Result {
        let vma = self.0.as_ptr();
        // SAFETY: The area is being set up by `mmap` (type invariant of `VmArea`): `vm_file` is
        // the device file, alive for the call, and nothing else writes these fields meanwhile.
        let (file_mapping, ops) = unsafe { ((*(*vma).vm_file).f_mapping, (*vma).vm_ops) };
        // SAFETY: `inode` is alive while the device is (see `zap_locked`).
        if file_mapping != unsafe { (*(*dev.as_raw()).inode).i_mapping } {
            return Err(EINVAL);
        }
        if self.flags() & bindings::VM_SHARED == 0 {
            return Err(EINVAL);
        }
        // Nothing else in the safe API sets `vm_ops`: ours means this area was backed before.
        if core::ptr::eq(ops, &OPS) {
            return Err(EBUSY);
        }
        let npages = (self.end() - self.start()) / PAGE_SIZE;
        match first.checked_add(npages) {
            Some(end) if end <= pages.page_count() => {}
            _ => return Err(EINVAL),
        }
        // INVARIANT: `dev` is the device of the mapped file (checked above).
        let backing = Backing {
            pages: pages.clone(),
            base_pgoff: self.pgoff(),
            first,
            gate: core::ptr::from_ref(&dev.mmap),
        };
        // SAFETY: The area is being set up by `mmap` (type invariant of `VmArea`).
        unsafe { install(&self.0, backing) }
    }
}

/// Backs the area `vma` with `backing`: `VM_DONTEXPAND`, `VM_IO`, `VM_DONTDUMP`,
/// `VM_MIXEDMAP`, our ops and a reference on the backing in `vm_private_data`.
///
/// # Safety
///
/// `vma` is being set up by an `mmap` callback (so its `vm_ops` is not ours yet), and the
/// invariants of `Backing` hold for `backing` as long as the area exists.
pub(super) unsafe fn install(vma: &crate::mm::virt::VmaNew, backing: Backing) -> Result {
    let backing = Arc::new(backing, GFP_KERNEL)?;
    vma.set_dontexpand();
    vma.set_io();
    vma.set_dontdump();
    // Pages are inserted by the fault handler with `vm_insert_page()`.
    vma.set_mixedmap();
    let raw = vma.as_ptr();
    // SAFETY: The area is not visible to anybody else yet (function safety requirements).
    // `vm_private_data` takes the backing's reference, which `close` gives back; `OPS` is a
    // static.
    unsafe {
        (*raw).vm_private_data = Arc::into_raw(backing).cast_mut().cast();
        (*raw).vm_ops = &OPS;
    }
    Ok(())
}

/// Undoes `install` on an area whose `mmap` callback failed after backing it: the MM then
/// frees the area without calling `close` (`mmap_file()` replaces the ops), so the backing's
/// reference is taken back here.
///
/// # Safety
///
/// `vma` is the area of an `mmap` callback that just failed, not visible to anybody else.
pub(super) unsafe fn undo_install(vma: *mut bindings::vm_area_struct) {
    // SAFETY: The area is still private to the failed `mmap` (function safety requirements).
    unsafe {
        if core::ptr::eq((*vma).vm_ops, &OPS) {
            drop(Arc::from_raw(
                (*vma).vm_private_data.cast::<Backing>().cast_const(),
            ));
            (*vma).vm_private_data = core::ptr::null_mut();
            (*vma).vm_ops = core::ptr::null();
        }
    }
}

impl Backing {
    /// The backing of a dma-buf mapping of `pages` from page `first` on, mapped at file page
    /// offset `base_pgoff`: no gate.
    pub(super) fn unrevocable(pages: Arc<SharedPages>, base_pgoff: usize, first: usize) -> Self {
        // INVARIANT: A NULL gate.
        Self {
            pages,
            base_pgoff,
            first,
            gate: core::ptr::null(),
        }
    }
}

static OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
    open: Some(vma_open),
    close: Some(vma_close),
    fault: Some(vma_fault),
    // SAFETY: All-zero is a valid `vm_operations_struct` (no callbacks).
    ..unsafe { core::mem::zeroed() }
};

/// The backing of `vma`.
///
/// # Safety
///
/// `vma` is an area that `install` backed (a device mapping of `map_pages` or a dma-buf
/// mapping; its `vm_ops` is `OPS`), not yet closed, so its `vm_private_data` holds a reference
/// on a `Backing` for `'a`.
unsafe fn backing_of<'a>(vma: *mut bindings::vm_area_struct) -> ArcBorrow<'a, Backing> {
    // SAFETY: By the safety requirements, `vm_private_data` came from `Arc::into_raw` and the
    // reference it stands for is alive for `'a`.
    unsafe { ArcBorrow::from_raw((*vma).vm_private_data.cast::<Backing>().cast_const()) }
}

/// A copy of a backed area (split, `mremap()` move, `fork()`): one more reference.
///
/// # Safety
///
/// Called by the MM with a new area copied from a backed one (same `vm_private_data`).
unsafe extern "C" fn vma_open(vma: *mut bindings::vm_area_struct) {
    // SAFETY: The new area's `vm_private_data` is the original's, whose reference is alive.
    let b = unsafe { backing_of(vma) };
    // The clone's reference becomes the new area's (given back by its `close`).
    let _ = Arc::into_raw(Arc::from(b));
}

/// An area is unmapped: its reference goes.
///
/// # Safety
///
/// Called by the MM once per area that `install` backed or `vma_open` copied.
unsafe extern "C" fn vma_close(vma: *mut bindings::vm_area_struct) {
    // SAFETY: The area's reference (from `map_pages` or `vma_open`), given back once.
    drop(unsafe { Arc::from_raw((*vma).vm_private_data.cast::<Backing>().cast_const()) });
}

/// Pages a fault maps at most: the faulting one and the next ones that exist.
const FAULT_AROUND: usize = 16;

/// A page fault in a backed area: maps the page, unless the device is being removed.
///
/// # Safety
///
/// Called by the MM for a fault in an area that `install` backed, with `mmap_lock` held
/// for the call (without a `map_pages` op, 7.3 retries per-area-lock faults of such areas
/// under `mmap_lock`, `vmf_can_call_fault()`).
unsafe extern "C" fn vma_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: `vmf` is valid for the call; its `vma` is a backed area, alive and locked.
    let (vma, pgoff, address) = unsafe {
        let a = &(*vmf).__bindgen_anon_1;
        (a.vma, a.pgoff, a.address)
    };
    // SAFETY: A backed area, not closed while it faults.
    let b = unsafe { backing_of(vma) };
    let Some(i) = pgoff
        .checked_sub(b.base_pgoff)
        .and_then(|k| k.checked_add(b.first))
    else {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    };
    // SAFETY: NULL or the device's mutex, which outlives the area (type invariant of
    // `Backing`).
    let g = unsafe { b.gate.as_ref() }.map(|gate| gate.lock());
    if g.as_ref().is_some_and(|g| g.removed) {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    }
    let page = match b.pages.page(i) {
        Ok(p) => p,
        Err(e) if e == ENOMEM => return bindings::vm_fault_reason_VM_FAULT_OOM,
        Err(_) => return bindings::vm_fault_reason_VM_FAULT_SIGBUS,
    };
    // SAFETY: `vma` is alive and locked (`mmap_lock`) and has `VM_MIXEDMAP` (`install`), so
    // `vm_insert_page()` changes no flags; `page` is an order-0 page owned by `pages`,
    // on which the mapping takes its own reference. The gate lock orders this insertion
    // before any later zap.
    let ret = unsafe { bindings::vm_insert_page(vma, address, page) };
    if ret == 0 {
        // Fault-around: the next pages of the area that exist already, so that a sequential
        // pass over a framebuffer faults once per `FAULT_AROUND` pages, not on every page.
        // SAFETY: `vma` is locked (`mmap_lock`), so `vm_end` is stable.
        let end = unsafe { (*vma).__bindgen_anon_1.__bindgen_anon_1.vm_end };
        for k in 1..FAULT_AROUND {
            let a = address + k * PAGE_SIZE;
            let Some(p) = (a < end).then(|| b.pages.existing(i + k)).flatten() else {
                break;
            };
            // SAFETY: As for the faulting page: a page owned by `pages`, an address in the
            // locked area. A page already mapped (`EBUSY`) or any failure is left to its own
            // fault.
            if unsafe { bindings::vm_insert_page(vma, a, p) } != 0 {
                break;
            }
        }
    }
    drop(g);
    match ret {
        // `EBUSY`: a concurrent fault mapped it first.
        0 => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
        r if r == -(bindings::EBUSY as i32) => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
        r if r == -(bindings::ENOMEM as i32) => bindings::vm_fault_reason_VM_FAULT_OOM,
        _ => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
    }
}
