// SPDX-License-Identifier: GPL-2.0

//! DMA-API addresses of pinned guest pages, for a parent device that moves the data itself.
//!
//! C header: [`include/linux/dma-mapping.h`](srctree/include/linux/dma-mapping.h)
//!
//! [`Mapping::segments`] hands out CPU physical addresses: right for a driver that copies with
//! the CPU, wrong for hardware as soon as the parent sits behind an IOMMU or has a DMA mask
//! narrower than memory. A driver whose parent device DMAs creates a [`DmaParent`] when it binds
//! the device, from its probe, and runs each request for the device inside
//! [`DmaParent::map`]: the closure gets a [`DmaMapped`], the `dma_map_page()` mappings of the
//! request's pinned pages, which are unmapped when it returns (so no driver can forget a
//! mapping), as [`DmaSegment`]s, a type of their own that cannot outlive the mapping, so that a
//! physical address cannot reach the device by mistake.
//!
//! A mapping must be undone while the device is still bound (its IOMMU domain, its swiotlb
//! slots). A [`DmaParent`] belongs to the binding it was created in: when the driver unbinds
//! (devres), it refuses new mappings and waits until the closures of the mappings in progress
//! returned. A parent's mediated devices, and their VFIO files, are gone before its driver
//! unbinds (the parent registration is dropped in the driver's remove), so that wait is
//! normally empty; a driver that keeps a request running past its unbind delays it.
//!
//! Pages the device cannot reach through its mask without an IOMMU are refused (`ERANGE`)
//! before anything is mapped, and so is every mapping that the direct mapping would bounce
//! through swiotlb (forced bounce buffering, a confidential guest, a non-coherent device's
//! unaligned buffer): swiotlb's buffer may be out of the device's reach too, and the DMA layer
//! then fails with a kernel warning. The driver chooses what to do instead (fail the request,
//! or copy through memory it allocated within its mask).

use super::pinmap::Mapping;
use crate::{
    bindings,
    device::{Core, Device},
    dma::{DataDirection, DmaAddress, DmaMask},
    error::to_result,
    new_condvar, new_mutex,
    prelude::*,
    sync::{aref::ARef, Arc, CondVar, Mutex},
};
use core::{ffi::c_void, marker::PhantomData};

/// Who maps through a [`DmaParent`] and whether the binding ended.
struct Users {
    /// The driver unbound: no new mapping.
    revoked: bool,
    /// Live [`DmaMapped`]s.
    count: usize,
}

#[pin_data]
struct Inner {
    dev: ARef<Device>,
    #[pin]
    users: Mutex<Users>,
    #[pin]
    idle: CondVar,
}

/// A bound parent device that DMAs to pinned guest pages; see the [module](self) docs.
///
/// # Invariants
///
/// Until `inner.users` says `revoked`, the driver that created this object is bound to
/// `inner.dev`; the devres action that sets `revoked` on unbind then waits until `count` is 0.
/// The device's DMA mask was set by [`DmaParent::new`] before any mapping through it.
pub struct DmaParent {
    inner: Arc<Inner>,
}

/// The devres action that ends a [`DmaParent`]'s binding: no new mapping, then wait for the
/// live ones to go.
///
/// # Safety
///
/// `data` is the `Arc<Inner>` reference that [`DmaParent::new`] gave the action; called once.
unsafe extern "C" fn dma_parent_release(data: *mut c_void) {
    // SAFETY: `data` is the pointer `Arc::into_raw` gave in `DmaParent::new`, whose reference
    // this action owns; it runs once.
    let inner = unsafe { Arc::<Inner>::from_raw(data.cast()) };
    let mut users = inner.users.lock();
    users.revoked = true;
    while users.count > 0 {
        inner.idle.wait(&mut users);
    }
}

/// Marks a device whose binding has a [`DmaParent`] (`data` is the device).
///
/// # Safety
///
/// None: it does nothing (`unsafe` for the devres action's type).
unsafe extern "C" fn dma_parent_marker(_data: *mut c_void) {}

impl DmaParent {
    /// Sets `dev`'s DMA mask (streaming and coherent) to `mask` and makes `dev` a DMA parent
    /// for the rest of this binding.
    ///
    /// Call it from the driver's probe, before the device has children. A binding has at most
    /// one, and a device with children none (`EBUSY`): the mask is changed only before the first
    /// mapping.
    pub fn new(dev: &Device<Core<'_>>, mask: DmaMask) -> Result<Self> {
        let raw = dev.as_raw();
        // SAFETY: `raw` is a valid device (type invariant of `Device`); the action pointer is a
        // function of this file.
        if unsafe { bindings::devm_is_action_added(raw, Some(dma_parent_marker), raw.cast()) } {
            return Err(EBUSY);
        }
        // The drivers of children (auxiliary devices) get the parent as `&Device<Bound>` and
        // could allocate DMA memory for it while the mask changes.
        // SAFETY: `raw` is a valid device.
        if unsafe { bindings::device_has_children(raw) } {
            return Err(EBUSY);
        }
        // SAFETY: `raw` is valid. No DMA mapping or allocation for it runs concurrently, as
        // `dma_set_mask_and_coherent()` requires: the kernel crate's other DMA primitives take a
        // `&Device<Bound>`, which only the bus callbacks of this binding hand out (in probe,
        // `Core`: the device lock is held and no other callback runs) and the drivers of its
        // children get (it has none, checked above; this driver would make them); mappings of
        // this module go through a `DmaParent`, and none exists for this binding (checked
        // above, under the device lock that `Core` holds). What an earlier binding left (a
        // `Coherent` kept in an `Arc`) can only be freed, and `dma_free_attrs()` reads neither
        // mask.
        to_result(unsafe { bindings::dma_set_mask_and_coherent(raw, mask.value()) })?;
        let inner = Arc::pin_init(
            pin_init!(Inner {
                dev: ARef::from(&**dev),
                users <- new_mutex!(Users { revoked: false, count: 0 }),
                idle <- new_condvar!(),
            }),
            GFP_KERNEL,
        )?;
        let data = Arc::into_raw(inner.clone()).cast_mut().cast::<c_void>();
        // INVARIANT: The action, which owns a reference on `inner`, sets `revoked` when the
        // driver unbinds and waits for the mappings; on failure it ran already (the object is
        // then not returned).
        // SAFETY: `raw` is valid and bound; `data` is an `Arc` reference that the action (or the
        // failure path of `devm_add_action_or_reset()`) consumes exactly once.
        to_result(unsafe {
            bindings::devm_add_action_or_reset(raw, Some(dma_parent_release), data)
        })?;
        // SAFETY: `raw` is valid and bound (`Core`); the marker does nothing with its data.
        to_result(unsafe { bindings::devm_add_action(raw, Some(dma_parent_marker), raw.cast()) })?;
        Ok(Self { inner })
    }

    /// The parent device.
    pub fn device(&self) -> &Device {
        &self.inner.dev
    }

    /// Maps the pinned pages of `mapping` for DMA by the parent, in direction `dir`, runs `f`
    /// with the mapping, and unmaps it.
    ///
    /// `DataDirection::None` is `EINVAL`. `FromDevice` and `Bidirectional` need a request
    /// acquired for writing (`EPERM`); with DMA
    /// logging on, such a request counts as written when `f` starts and when it returned.
    /// Fails with `ERANGE` if a page is out of the device's direct reach (see the
    /// [module](self) docs), `ENODEV` once the driver unbinds, `ENOMEM` if the DMA layer cannot
    /// map; `f` is then not called. The device must be done with the segments when `f`
    /// returns.
    pub fn map<R>(
        &self,
        mapping: &Mapping<'_>,
        dir: DataDirection,
        f: impl FnOnce(&DmaMapped<'_>) -> R,
    ) -> Result<R> {
        // The DMA layer `BUG()`s on a mapping in no direction.
        if matches!(dir, DataDirection::None) {
            return Err(EINVAL);
        }
        let writes = !matches!(dir, DataDirection::ToDevice);
        if writes && !mapping.is_writable() {
            return Err(EPERM);
        }
        {
            let mut users = self.inner.users.lock();
            if users.revoked {
                return Err(ENODEV);
            }
            users.count += 1;
        }
        // From here on `out` owns the count (its drop releases it, after unmapping).
        let mut out = DmaMapped {
            parent: self,
            segs: KVec::new(),
            dir,
        };
        let raw = self.inner.dev.as_raw();
        // Refuse what cannot be reached before mapping anything (the count keeps the binding,
        // and so the device's DMA configuration, alive).
        for (page, off, len) in mapping.page_pieces() {
            // SAFETY: `page` is pinned while `mapping` lives; `raw` is a valid device, bound
            // (not revoked, and the count keeps the unbind waiting).
            let reachable = unsafe {
                bindings::dma_page_reachable(
                    raw,
                    bindings::page_to_phys(page) + off as u64,
                    len,
                    dir.into(),
                )
            };
            if !reachable {
                return Err(ERANGE);
            }
        }
        for (page, off, len) in mapping.page_pieces() {
            out.segs.reserve(1, GFP_KERNEL)?;
            // SAFETY: The driver is bound to `raw` (type invariant: not revoked, and the count
            // taken above keeps the unbind waiting), `page` is pinned for as long as `mapping`
            // lives, which outlives `out`, and `off + len <= PAGE_SIZE`.
            let addr = unsafe { bindings::dma_map_page_attrs(raw, page, off, len, dir.into(), 0) };
            // SAFETY: `raw` is valid; `addr` came from `dma_map_page_attrs()` for it.
            if unsafe { bindings::dma_mapping_error(raw, addr) } != 0 {
                return Err(ENOMEM);
            }
            out.segs.push(DmaSegment::new(addr, len), GFP_KERNEL)?;
        }
        if writes {
            mapping.hand_out();
        }
        Ok(f(&out))
    }
}

/// A piece of a request as the parent device addresses it: `len` bytes at `addr`.
///
/// Only [`DmaMapped`] makes them, so the address is always a DMA-API address for the parent,
/// and they cannot outlive the mapping (`'a`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaSegment<'a> {
    addr: DmaAddress,
    len: usize,
    _mapped: PhantomData<&'a ()>,
}

impl DmaSegment<'_> {
    fn new(addr: DmaAddress, len: usize) -> Self {
        Self {
            addr,
            len,
            _mapped: PhantomData,
        }
    }

    /// The device address of the first byte.
    pub fn addr(&self) -> DmaAddress {
        self.addr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns `true` for an empty piece (never made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The DMA mappings of one request's pinned pages for the parent, as [`DmaParent::map`] hands
/// them to its closure (only by reference: they are unmapped when the closure returned, while
/// the [`Mapping`] still keeps the pages pinned).
///
/// # Invariants
///
/// Every entry of `segs` was mapped with `dma_map_page_attrs()` for the parent device in
/// direction `dir` and is unmapped exactly once, in `drop`; the object holds one count of
/// `parent`'s users.
pub struct DmaMapped<'a> {
    parent: &'a DmaParent,
    segs: KVec<DmaSegment<'static>>,
    dir: DataDirection,
}

impl DmaMapped<'_> {
    /// The request's pieces in order, page by page.
    pub fn segments(&self) -> &[DmaSegment<'_>] {
        &self.segs
    }

    /// The pieces covering bytes `[pos, pos + n)` of the request, cut to that range
    /// (`EINVAL` if it is not inside the request).
    pub fn range(&self, pos: usize, n: usize) -> Result<KVec<DmaSegment<'_>>> {
        let total: usize = self.segs.iter().map(|s| s.len).sum();
        match pos.checked_add(n) {
            Some(end) if end <= total => {}
            _ => return Err(EINVAL),
        }
        let mut out = KVec::new();
        let mut start = 0;
        for s in self.segs.iter() {
            let end = start + s.len;
            let lo = start.max(pos);
            let hi = end.min(pos + n);
            if lo < hi {
                out.push(
                    DmaSegment::new(s.addr + (lo - start) as DmaAddress, hi - lo),
                    GFP_KERNEL,
                )?;
            }
            start = end;
        }
        Ok(out)
    }
}

impl Drop for DmaMapped<'_> {
    fn drop(&mut self) {
        let raw = self.parent.inner.dev.as_raw();
        for s in self.segs.iter() {
            // SAFETY: Mapped for `raw` in `dir` and unmapped only here (type invariant); the
            // driver is still bound (the count this object holds keeps the unbind waiting).
            unsafe { bindings::dma_unmap_page_attrs(raw, s.addr, s.len, self.dir.into(), 0) };
        }
        let mut users = self.parent.inner.users.lock();
        users.count -= 1;
        if users.count == 0 {
            self.parent.inner.idle.notify_all();
        }
    }
}
