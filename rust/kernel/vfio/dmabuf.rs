// SPDX-License-Identifier: GPL-2.0

//! dma-bufs of device memory: the display planes of `VFIO_DEVICE_GET_GFX_DMABUF`.
//!
//! C header: [`include/linux/dma-buf.h`](srctree/include/linux/dma-buf.h)
//!
//! [`SharedPages::export`] makes a dma-buf of a page-aligned range of device memory. The
//! dma-buf holds a reference on the [`SharedPages`], so its pages live as long as the dma-buf
//! does, whatever happens to the device (closed, reset, removed) or to the driver's own
//! reference: a compositor that still holds the buffer reads the last picture, never freed
//! memory. Importers get the pages through an sg table mapped for their device
//! (`map_dma_buf`); the dma-buf file is read-only, and userspace may map it (shared mappings
//! only, so read-only): the pages are inserted at fault time as for the device's own mappings
//! ([`super::mmap`]), but never revoked. The dma-buf's size is the plane's, so a last partial
//! page cannot be mapped (the dma-buf core checks a mapping against whole pages of it).
//!
//! A [`DmaBuf`] is a counted reference; [`DeviceOps::get_gfx_dmabuf`]
//! (super::DeviceOps::get_gfx_dmabuf) returns one, and the abstraction installs a new file
//! descriptor for it (each call its own reference, unlike the C `mbochs`, which installs the one
//! reference it holds again and again).

use super::mmap::{Backing, SharedPages};
use crate::{
    alloc::{KBox, KVVec},
    bindings,
    error::{from_result, to_result},
    ffi::c_int,
    page::PAGE_SIZE,
    prelude::*,
    sync::Arc,
};
use core::ptr::NonNull;

/// What a dma-buf of ours owns: its pages and which of them it shows.
///
/// It must never hold anything of a vendor module (a callback, a trait object, a generic
/// type): the dma-buf is exported with no owner module (its ops and this type are in the
/// kernel image), so it may outlive the module that made it.
///
/// # Invariants
///
/// `first + count <= pages.page_count()`, and `count` pages cover the dma-buf's size.
struct Export {
    pages: Arc<SharedPages>,
    first: usize,
    count: usize,
}

/// A reference on a dma-buf of device memory (a file reference); put on drop.
///
/// # Invariants
///
/// `self.0` is a dma-buf exported by [`SharedPages::export`] (its `priv` a `Box<Export>`
/// pointer that its release frees), on which this object holds a reference.
pub struct DmaBuf(NonNull<bindings::dma_buf>);

// SAFETY: A `DmaBuf` only holds a file reference, which may be taken and put on any thread.
unsafe impl Send for DmaBuf {}
// SAFETY: `&DmaBuf` allows taking another reference (`clone`) and reading the immutable
// `size`, both safe from any thread.
unsafe impl Sync for DmaBuf {}

impl Clone for DmaBuf {
    fn clone(&self) -> Self {
        // SAFETY: We hold a reference (type invariant), so the dma-buf and its file are alive.
        unsafe { bindings::get_dma_buf(self.0.as_ptr()) };
        // INVARIANT: The reference just taken.
        Self(self.0)
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        // SAFETY: We own a reference (type invariant).
        unsafe { bindings::dma_buf_put(self.0.as_ptr()) };
    }
}

impl DmaBuf {
    /// Size in bytes.
    pub fn size(&self) -> usize {
        // SAFETY: We hold a reference (type invariant); `size` is set at export and never
        // changes.
        unsafe { (*self.0.as_ptr()).size }
    }

    /// Installs a new file descriptor for the dma-buf in the current task (`O_CLOEXEC` not
    /// set, as the C samples do) and returns it; the descriptor takes the reference.
    pub(super) fn into_fd(self) -> Result<c_int> {
        let raw = self.0.as_ptr();
        // SAFETY: `raw` is a dma-buf we hold a reference on; on success `dma_buf_fd()` moves
        // that reference into the new descriptor (`fd_install()`), so we must not put it.
        let fd = unsafe { bindings::dma_buf_fd(raw, 0) };
        to_result(fd)?;
        core::mem::forget(self);
        Ok(fd)
    }
}

impl SharedPages {
    /// Exports `size` bytes from byte `offset` of the memory as a dma-buf (`offset` page
    /// aligned, `size` not zero, the range within the memory: `EINVAL` otherwise). The pages
    /// are allocated now, and stay alive as long as the dma-buf.
    pub fn export(self: &Arc<Self>, offset: usize, size: usize) -> Result<DmaBuf> {
        if offset % PAGE_SIZE != 0 || size == 0 {
            return Err(EINVAL);
        }
        let first = offset / PAGE_SIZE;
        let count = size.div_ceil(PAGE_SIZE);
        match first.checked_add(count) {
            Some(end) if end <= self.page_count() => {}
            _ => return Err(EINVAL),
        }
        for i in first..first + count {
            self.page(i)?;
        }
        // INVARIANT: The range was checked above and covers `size`.
        let priv_ = KBox::new(
            Export {
                pages: self.clone(),
                first,
                count,
            },
            GFP_KERNEL,
        )?;
        let priv_ = KBox::into_raw(priv_);
        // SAFETY: All-zero is a valid `dma_buf_export_info` (no reservation object: the core
        // makes one).
        let mut info: bindings::dma_buf_export_info = unsafe { core::mem::zeroed() };
        info.exp_name = crate::c_str!("vfio-mmap").as_char_ptr();
        // The ops are in the kernel image: no module to hold.
        info.owner = core::ptr::null_mut();
        info.ops = &OPS;
        info.size = size;
        // Read-only: what holds a descriptor may read the picture (and map it, shared
        // read-only), not change the guest's video memory.
        info.flags = bindings::O_RDONLY as c_int;
        info.priv_ = priv_.cast();
        // SAFETY: `info` is complete and valid for the call; on success the dma-buf owns
        // `priv_` (its release frees it).
        let buf = unsafe { bindings::dma_buf_export(&info) };
        match crate::error::from_err_ptr(buf).map(NonNull::new) {
            // INVARIANT: A dma-buf of ours; the export's reference is ours.
            Ok(Some(b)) => Ok(DmaBuf(b)),
            res => {
                // SAFETY: The export failed (`dma_buf_export()` never returns NULL, but that
                // would be a failure too), so nothing else owns `priv_`.
                drop(unsafe { KBox::from_raw(priv_) });
                Err(res.err().unwrap_or(ENOMEM))
            }
        }
    }
}

static OPS: bindings::dma_buf_ops = bindings::dma_buf_ops {
    map_dma_buf: Some(map_dma_buf),
    unmap_dma_buf: Some(unmap_dma_buf),
    release: Some(release),
    mmap: Some(mmap),
    // SAFETY: All-zero is a valid `dma_buf_ops` (no other callbacks).
    ..unsafe { core::mem::zeroed() }
};

/// The export of a dma-buf of ours.
///
/// # Safety
///
/// `buf` is a dma-buf exported by [`SharedPages::export`] that is alive for `'a`.
unsafe fn export_of<'a>(buf: *mut bindings::dma_buf) -> &'a Export {
    // SAFETY: `priv_` is the `Export` the dma-buf owns until its release (function safety
    // requirements).
    unsafe { &*(*buf).priv_.cast::<Export>() }
}

/// An importer maps the dma-buf for its device: an sg table of the pages, DMA-mapped.
///
/// # Safety
///
/// Called by the dma-buf core with an attachment of one of our dma-bufs.
unsafe extern "C" fn map_dma_buf(
    at: *mut bindings::dma_buf_attachment,
    dir: bindings::dma_data_direction,
) -> *mut bindings::sg_table {
    // SAFETY: The attachment and its dma-buf are alive for the call.
    let (e, dev, size) = unsafe {
        let buf = (*at).dmabuf;
        (export_of(buf), (*at).dev, (*buf).size)
    };
    let res = (|| -> Result<*mut bindings::sg_table> {
        let n_pages = u32::try_from(e.count).map_err(|_| EINVAL)?;
        let mut pages = KVVec::with_capacity(e.count, GFP_KERNEL)?;
        for i in e.first..e.first + e.count {
            pages.push(e.pages.page(i)?, GFP_KERNEL)?;
        }
        // SAFETY: All-zero is an empty `sg_table`.
        let sgt = KBox::new(
            unsafe { core::mem::zeroed::<bindings::sg_table>() },
            GFP_KERNEL,
        )?;
        let sgt = KBox::into_raw(sgt);
        // SAFETY: `sgt` is an empty table; `pages` holds `count` pages of the export, which
        // it keeps alive (the dma-buf holds `e.pages`) for as long as the table is mapped
        // (the attachment holds the dma-buf); `size` is at most `count` pages.
        let r = unsafe {
            bindings::sg_alloc_table_from_pages_segment(
                sgt,
                pages.as_mut_ptr(),
                n_pages,
                0,
                size,
                u32::MAX,
                GFP_KERNEL.as_raw(),
            )
        };
        if let Err(err) = to_result(r) {
            // SAFETY: Our allocation, unused.
            drop(unsafe { KBox::from_raw(sgt) });
            return Err(err);
        }
        // SAFETY: `dev` is the importer's device, alive for the attachment; `sgt` is a
        // complete table.
        if let Err(err) = to_result(unsafe { bindings::dma_map_sgtable(dev, sgt, dir, 0) }) {
            // SAFETY: The table is allocated and not mapped.
            unsafe {
                bindings::sg_free_table(sgt);
                drop(KBox::from_raw(sgt));
            }
            return Err(err);
        }
        Ok(sgt)
    })();
    match res {
        Ok(sgt) => sgt,
        Err(e) => crate::error::Error::to_ptr(e),
    }
}

/// The importer is done with the sg table `map_dma_buf` made.
///
/// # Safety
///
/// Called by the dma-buf core with a table `map_dma_buf` returned for `at`, and its direction.
unsafe extern "C" fn unmap_dma_buf(
    at: *mut bindings::dma_buf_attachment,
    sgt: *mut bindings::sg_table,
    dir: bindings::dma_data_direction,
) {
    // SAFETY: `sgt` was mapped for the attachment's device in `map_dma_buf` and allocated by
    // `KBox` there; nothing uses it after this call.
    unsafe {
        bindings::dma_unmap_sgtable((*at).dev, sgt, dir, 0);
        bindings::sg_free_table(sgt);
        drop(KBox::from_raw(sgt));
    }
}

/// The last reference on the dma-buf is gone: its export (and its reference on the pages).
///
/// # Safety
///
/// Called once by the dma-buf core for one of our dma-bufs.
unsafe extern "C" fn release(buf: *mut bindings::dma_buf) {
    // SAFETY: `priv_` is the `Export` box the dma-buf owns, freed only here.
    drop(unsafe { KBox::from_raw((*buf).priv_.cast::<Export>()) });
}

/// `mmap()` of the dma-buf: a shared (read-only: the file is) mapping whose pages are inserted
/// at fault time.
///
/// # Safety
///
/// Called by the dma-buf core with one of our dma-bufs and an area being set up, whose range
/// (`vm_pgoff` and length) it checked against the dma-buf's size.
unsafe extern "C" fn mmap(
    buf: *mut bindings::dma_buf,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: The dma-buf is alive for the call.
    let e = unsafe { export_of(buf) };
    // SAFETY: The area is being set up by `mmap` for the call.
    let vma = unsafe { crate::mm::virt::VmaNew::from_raw(vma) };
    from_result(|| {
        // The file is read-only, so a shared mapping has `VM_MAYSHARE` but not `VM_SHARED`
        // (`do_mmap()` clears it with `VM_MAYWRITE`); a private one could copy on write.
        if vma.flags() & bindings::VM_MAYSHARE == 0 || vma.flags() & bindings::VM_MAYWRITE != 0 {
            return Err(EINVAL);
        }
        // SAFETY: The area is being set up (`vm_pgoff` is stable).
        let pgoff = unsafe { (*vma.as_ptr()).vm_pgoff };
        // `dma_buf_mmap_internal()` checked `pgoff + pages <= size / PAGE_SIZE`.
        let first = e.first.checked_add(pgoff).ok_or(EINVAL)?;
        let backing = Backing::unrevocable(e.pages.clone(), pgoff, first);
        // SAFETY: The area is being set up; the backing has no gate.
        unsafe { super::mmap::install(vma, backing) }?;
        Ok(0)
    })
}
