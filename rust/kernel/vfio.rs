// SPDX-License-Identifier: GPL-2.0

//! VFIO devices with an emulated IOMMU, as mediated-device vendor drivers register them.
//!
//! C header: [`include/linux/vfio.h`](srctree/include/linux/vfio.h)
//!
//! A vendor driver describes its device with a type implementing [`DeviceOps`] (a `#[vtable]`
//! trait: open, close, read, write, mmap, request, dma_unmap, and typed `VFIO_DEVICE_*`
//! ioctls) and registers one [`Registration`] per device, usually from
//! [`mdev::Driver::probe`](crate::mdev::Driver::probe). The registration allocates the
//! `struct vfio_device` with the driver's data behind it, registers it with
//! `vfio_register_emulated_iommu_dev()` (which creates the singleton IOMMU group, `/dev/vfio/N`
//! and, with `CONFIG_VFIO_DEVICE_CDEV`, `/dev/vfio/devices/vfioM`), and unregisters it on drop.
//!
//! The ioctl trampoline decodes `VFIO_DEVICE_GET_INFO`, `VFIO_DEVICE_GET_IRQ_INFO`,
//! `VFIO_DEVICE_SET_IRQS` ([`IrqSet`], validated as `vfio_set_irqs_validate_and_prepare()` does)
//! and `VFIO_DEVICE_RESET` into the `bindings` UAPI structures, checks the user's `argsz`, and
//! copies the answers back, so drivers never touch user memory for them.
//! `VFIO_DEVICE_GET_REGION_INFO` never reaches a driver's ioctl since Linux 7.x: the VFIO core
//! decodes it, calls `get_region_info_caps` (wired to [`DeviceOps::region_info`], whose
//! capabilities, [`Caps`], are handed to `vfio_info_cap_add()`), places the chain and copies it
//! out; without `region_info` the core answers `EINVAL`.
//! [`pci`] has helpers for emulated PCI devices: region offsets, the split of region accesses
//! into naturally aligned pieces, and an emulated configuration space.
//!
//! # Linking
//!
//! `vfio.ko` may be a module while this crate is part of `vmlinux`, which cannot reference
//! module symbols. Every function here that calls into VFIO is therefore generic over the
//! driver or `#[inline]`, so the calls are compiled into the vendor module that uses them.
//! Only [`EventFd`] (`fs/eventfd.c`, always built in) has ordinary functions.

use crate::{
    alloc::{
        flags::{__GFP_NOWARN, GFP_KERNEL},
        KVec,
    },
    bindings, device,
    devres::Devres,
    error::{from_result, to_result, Error, Result},
    ffi::{c_char, c_int, c_long, c_uint, c_ulong},
    ioctl::_IO,
    prelude::*,
    str::CStr,
    sync::{Completion, Mutex},
    transmute::{AsBytes, FromBytes},
    types::Opaque,
    uaccess::{UserPtr, UserSlice, UserSliceReader, UserSliceWriter},
};
use core::{
    marker::PhantomData,
    mem::size_of,
    ops::Deref,
    ptr::NonNull,
    sync::atomic::{AtomicPtr, Ordering},
};

pub mod dirty;
pub mod dma;
#[cfg(CONFIG_DMA_SHARED_BUFFER)]
pub mod dmabuf;
pub mod gfx;
pub mod migration;
pub mod mmap;
pub mod pci;
pub mod pci_irq;
pub mod pinmap;

pub use pinmap::{Mapping, PinnedMap};

const VFIO_TYPE: u32 = b';' as u32;
const VFIO_BASE: u32 = 100;
/// `VFIO_DEVICE_GET_INFO`.
pub const DEVICE_GET_INFO: u32 = _IO(VFIO_TYPE, VFIO_BASE + 7);
/// `VFIO_DEVICE_GET_REGION_INFO`.
pub const DEVICE_GET_REGION_INFO: u32 = _IO(VFIO_TYPE, VFIO_BASE + 8);
/// `VFIO_DEVICE_GET_IRQ_INFO`.
pub const DEVICE_GET_IRQ_INFO: u32 = _IO(VFIO_TYPE, VFIO_BASE + 9);
/// `VFIO_DEVICE_SET_IRQS`.
pub const DEVICE_SET_IRQS: u32 = _IO(VFIO_TYPE, VFIO_BASE + 10);
/// `VFIO_DEVICE_RESET`.
pub const DEVICE_RESET: u32 = _IO(VFIO_TYPE, VFIO_BASE + 11);

/// `VFIO_DEVICE_FLAGS_*` of [`DeviceInfo::flags`].
pub mod device_flags {
    /// The device supports `VFIO_DEVICE_RESET`.
    pub const RESET: u32 = crate::bindings::VFIO_DEVICE_FLAGS_RESET;
    /// A vfio-pci device.
    pub const PCI: u32 = crate::bindings::VFIO_DEVICE_FLAGS_PCI;
}

/// `VFIO_REGION_INFO_FLAG_*` of [`RegionInfo::flags`].
pub mod region_flags {
    /// The region can be read.
    pub const READ: u32 = crate::bindings::VFIO_REGION_INFO_FLAG_READ;
    /// The region can be written.
    pub const WRITE: u32 = crate::bindings::VFIO_REGION_INFO_FLAG_WRITE;
    /// The region can be mapped.
    pub const MMAP: u32 = crate::bindings::VFIO_REGION_INFO_FLAG_MMAP;
}

/// `VFIO_IRQ_INFO_*` of [`IrqInfo::flags`].
pub mod irq_flags {
    /// The interrupt is signalled through an eventfd.
    pub const EVENTFD: u32 = crate::bindings::VFIO_IRQ_INFO_EVENTFD;
    /// The interrupt can be masked.
    pub const MASKABLE: u32 = crate::bindings::VFIO_IRQ_INFO_MASKABLE;
    /// The interrupt is masked when it fires (level-triggered, e.g. INTx).
    pub const AUTOMASKED: u32 = crate::bindings::VFIO_IRQ_INFO_AUTOMASKED;
    /// The number of vectors cannot be changed once set.
    pub const NORESIZE: u32 = crate::bindings::VFIO_IRQ_INFO_NORESIZE;
}

/// The answer to `VFIO_DEVICE_GET_INFO`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// [`device_flags`].
    pub flags: u32,
    /// Number of regions.
    pub num_regions: u32,
    /// Number of interrupt indexes.
    pub num_irqs: u32,
}

/// The answer to `VFIO_DEVICE_GET_REGION_INFO`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionInfo {
    /// [`region_flags`] (`VFIO_REGION_INFO_FLAG_CAPS` is added when capabilities exist).
    pub flags: u32,
    /// Size of the region in bytes.
    pub size: u64,
    /// Offset of the region in the device file.
    pub offset: u64,
}

/// The answer to `VFIO_DEVICE_GET_IRQ_INFO`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqInfo {
    /// [`irq_flags`].
    pub flags: u32,
    /// Number of vectors.
    pub count: u32,
}

/// The capabilities of a `VFIO_DEVICE_GET_REGION_INFO` answer.
///
/// Each capability is a `struct vfio_info_cap_header` (id, version, offset of the next one)
/// followed by its payload, padded to 8 bytes as `vfio_info_cap_add()` aligns them. The VFIO
/// core links the headers, places the chain after the user's `struct vfio_region_info` and
/// copies it out (or reports the `argsz` it needs).
///
/// # Examples
///
/// ```
/// use kernel::vfio::Caps;
///
/// let mut caps = Caps::new();
/// assert!(caps.is_empty());
/// caps.add(2, 1, &[7, 0, 0, 0])?;
/// caps.add_region_type(3, 1)?;
/// // each capability is an 8-byte header and its payload padded to 8 bytes: (8 + 8) + (8 + 8)
/// assert_eq!(caps.len(), 32);
/// # Ok::<(), Error>(())
/// ```
pub struct Caps {
    buf: KVec<u8>,
    /// Offsets (in `buf`) of the headers, in order.
    heads: KVec<usize>,
    /// The areas of the sparse-mmap capabilities, checked against the region's answer.
    sparse: KVec<(u64, u64)>,
}

impl Default for Caps {
    fn default() -> Self {
        Self::new()
    }
}

impl Caps {
    /// Creates an empty chain.
    pub const fn new() -> Self {
        Self {
            buf: KVec::new(),
            heads: KVec::new(),
            sparse: KVec::new(),
        }
    }

    /// Returns `true` if no capability was added.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Appends a capability with `id`, `version` and `payload` (the bytes after the header).
    ///
    /// Payloads are padded to 8 bytes, as the C helpers align them.
    pub fn add(&mut self, id: u16, version: u16, payload: &[u8]) -> Result {
        let start = self.buf.len();
        self.heads.push(start, GFP_KERNEL)?;
        self.buf.extend_from_slice(&id.to_ne_bytes(), GFP_KERNEL)?;
        self.buf
            .extend_from_slice(&version.to_ne_bytes(), GFP_KERNEL)?;
        self.buf.extend_from_slice(&[0; 4], GFP_KERNEL)?;
        self.buf.extend_from_slice(payload, GFP_KERNEL)?;
        let pad = (8 - payload.len() % 8) % 8;
        self.buf.extend_with(pad, 0, GFP_KERNEL)?;
        Ok(())
    }

    /// Appends a `VFIO_REGION_INFO_CAP_TYPE` capability (a device-specific region type).
    pub fn add_region_type(&mut self, ty: u32, subtype: u32) -> Result {
        let mut p = [0u8; 8];
        p[..4].copy_from_slice(&ty.to_ne_bytes());
        p[4..].copy_from_slice(&subtype.to_ne_bytes());
        self.add(bindings::VFIO_REGION_INFO_CAP_TYPE as u16, 1, &p)
    }

    /// Appends a `VFIO_REGION_INFO_CAP_SPARSE_MMAP` capability: the `(offset, size)` areas of
    /// the region that can be mapped.
    ///
    /// The abstraction checks them against the region the driver describes
    /// ([`Caps::sparse_areas_valid`]): a region with areas it could not map is answered with
    /// `EINVAL`, not handed to the VMM.
    pub fn add_sparse_mmap(&mut self, areas: &[(u64, u64)]) -> Result {
        self.sparse.extend_from_slice(areas, GFP_KERNEL)?;
        let mut p = KVec::new();
        p.extend_from_slice(&(areas.len() as u32).to_ne_bytes(), GFP_KERNEL)?;
        p.extend_from_slice(&[0; 4], GFP_KERNEL)?;
        for (offset, size) in areas {
            p.extend_from_slice(&offset.to_ne_bytes(), GFP_KERNEL)?;
            p.extend_from_slice(&size.to_ne_bytes(), GFP_KERNEL)?;
        }
        self.add(bindings::VFIO_REGION_INFO_CAP_SPARSE_MMAP as u16, 1, &p)
    }

    /// Whether sparse-mmap `areas` can really be mapped in a region of `size` bytes with
    /// `flags`: the region is mappable ([`region_flags::MMAP`]), and each area is whole pages
    /// (not empty) within the region.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::vfio::{region_flags::{MMAP, READ}, Caps};
    ///
    /// let r = 1 << 20;
    /// assert!(Caps::sparse_areas_valid(&[(0, 4096), (8192, 4096)], r, READ | MMAP));
    /// assert!(!Caps::sparse_areas_valid(&[(0, 4096)], r, READ)); // not mappable
    /// assert!(!Caps::sparse_areas_valid(&[(100, 4096)], r, MMAP)); // not page aligned
    /// assert!(!Caps::sparse_areas_valid(&[(0, 100)], r, MMAP));
    /// assert!(!Caps::sparse_areas_valid(&[(0, 0)], r, MMAP)); // empty
    /// assert!(!Caps::sparse_areas_valid(&[(r - 4096, 8192)], r, MMAP)); // past the end
    /// assert!(!Caps::sparse_areas_valid(&[(u64::MAX - 4095, 4096)], r, MMAP));
    /// assert!(Caps::sparse_areas_valid(&[], r, 0)); // no areas: nothing to check
    /// ```
    pub fn sparse_areas_valid(areas: &[(u64, u64)], size: u64, flags: u32) -> bool {
        let page = crate::page::PAGE_SIZE as u64;
        areas.is_empty()
            || (flags & region_flags::MMAP != 0
                && areas.iter().all(|&(off, len)| {
                    off % page == 0
                        && len % page == 0
                        && len != 0
                        && off.checked_add(len).is_some_and(|end| end <= size)
                }))
    }

    /// Length of the chain in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The capabilities in order: `(id, version, payload)`, the payload padded to 8 bytes.
    fn entries(&self) -> impl Iterator<Item = (u16, u16, &[u8])> + '_ {
        self.heads.iter().enumerate().map(move |(i, &h)| {
            let end = self.heads.get(i + 1).copied().unwrap_or(self.buf.len());
            let id = u16::from_ne_bytes([self.buf[h], self.buf[h + 1]]);
            let version = u16::from_ne_bytes([self.buf[h + 2], self.buf[h + 3]]);
            (id, version, &self.buf[h + 8..end])
        })
    }
}

/// What a `VFIO_DEVICE_SET_IRQS` request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqAction {
    /// `VFIO_IRQ_SET_ACTION_MASK`.
    Mask,
    /// `VFIO_IRQ_SET_ACTION_UNMASK`.
    Unmask,
    /// `VFIO_IRQ_SET_ACTION_TRIGGER`.
    Trigger,
}

/// The data of a `VFIO_DEVICE_SET_IRQS` request, one entry per vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqData<'a> {
    /// `VFIO_IRQ_SET_DATA_NONE`: act on every vector of the range.
    None,
    /// `VFIO_IRQ_SET_DATA_BOOL`: act on the vectors whose byte is non-zero.
    Bool(&'a [u8]),
    /// `VFIO_IRQ_SET_DATA_EVENTFD`: file descriptors (`-1` tears a trigger down).
    Eventfd(&'a [i32]),
}

/// A validated `VFIO_DEVICE_SET_IRQS` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqSet<'a> {
    /// Interrupt index (for PCI: [`pci::INTX_IRQ_INDEX`], ...).
    pub index: u32,
    /// First vector.
    pub start: u32,
    /// Number of vectors (the length of the data, if any). For an index that
    /// [`DeviceOps::irq_info`] describes, `start + count` is at most its `count`, so a driver
    /// can index an array of that many vectors with `start..start + count`; for an index it
    /// refuses, at most [`DeviceOps::num_irqs`] (the driver should refuse such a request: the
    /// C mtty answers `ENOTTY`).
    pub count: u32,
    /// The action.
    pub action: IrqAction,
    /// The data.
    pub data: IrqData<'a>,
}

/// The header of a `VFIO_DEVICE_SET_IRQS` request, before validation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqSetHeader {
    /// `argsz`: size of the header plus data as userspace gave it.
    pub argsz: u32,
    /// `VFIO_IRQ_SET_DATA_*` | `VFIO_IRQ_SET_ACTION_*`.
    pub flags: u32,
    /// Interrupt index.
    pub index: u32,
    /// First vector.
    pub start: u32,
    /// Number of vectors.
    pub count: u32,
}

/// Size of the fixed part of `struct vfio_irq_set` (up to and including `count`):
/// `offsetofend(struct vfio_irq_set, count)`, 20.
pub const IRQ_SET_MINSZ: usize =
    core::mem::offset_of!(bindings::vfio_irq_set, count) + size_of::<u32>();

impl IrqSetHeader {
    /// Validates the header the way `vfio_set_irqs_validate_and_prepare()` does, for a device
    /// with `indexes` interrupt indexes, of which index `i` has `vectors(i)` vectors; returns
    /// the action and the number of data bytes that follow the header. `vectors` is called
    /// once, with an index below `indexes`.
    ///
    /// Unlike the C helper it also requires exactly one action bit, as the uAPI header asks
    /// (`EINVAL` otherwise). Drivers on the C helper answer such requests in their own ways:
    /// the C mtty ignores them on INTx and MSI (success, nothing done) and answers `ENOTTY` on
    /// its other indexes; vfio-pci answers `ENOTTY`.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::vfio::{IrqAction, IrqSetHeader};
    ///
    /// const EVENTFD: u32 = 1 << 2;
    /// const TRIGGER: u32 = 1 << 5;
    /// let h = IrqSetHeader { argsz: 24, flags: EVENTFD | TRIGGER, index: 1, start: 0, count: 1 };
    /// let one = |_| Ok(1); // every index has one vector
    /// assert_eq!(h.validate(5, one), Ok((IrqAction::Trigger, 4)));
    /// // data shorter than count * 4
    /// assert!(IrqSetHeader { argsz: 23, ..h }.validate(5, one).is_err());
    /// // index beyond the device's interrupts
    /// assert!(IrqSetHeader { index: 5, ..h }.validate(5, one).is_err());
    /// // vectors beyond the index's: checked against the index, not the number of indexes
    /// assert!(IrqSetHeader { start: 1, ..h }.validate(5, one).is_err());
    /// assert!(IrqSetHeader { argsz: 28, count: 2, ..h }.validate(5, one).is_err());
    /// assert_eq!(IrqSetHeader { argsz: 28, count: 2, ..h }.validate(5, |_| Ok(2)), Ok((IrqAction::Trigger, 8)));
    /// // start + count overflowing
    /// assert!(IrqSetHeader { start: 1, count: u32::MAX - 1, ..h }.validate(5, one).is_err());
    /// // two data types
    /// assert!(IrqSetHeader { flags: EVENTFD | 1 | TRIGGER, ..h }.validate(5, one).is_err());
    /// // no action
    /// assert!(IrqSetHeader { flags: EVENTFD, ..h }.validate(5, one).is_err());
    /// // a device that reports no interrupts
    /// assert!(h.validate(0, one).is_err());
    /// ```
    pub fn validate(
        &self,
        indexes: u32,
        vectors: impl FnOnce(u32) -> Result<u32>,
    ) -> Result<(IrqAction, usize)> {
        let data_mask = bindings::VFIO_IRQ_SET_DATA_TYPE_MASK;
        let action_mask = bindings::VFIO_IRQ_SET_ACTION_TYPE_MASK;
        if (self.argsz as usize) < IRQ_SET_MINSZ
            || self.index >= indexes
            || self.count >= u32::MAX - self.start
            || self.flags & !(data_mask | action_mask) != 0
        {
            return Err(EINVAL);
        }
        let num_irqs = vectors(self.index)?;
        if self.start >= num_irqs || self.start + self.count > num_irqs {
            return Err(EINVAL);
        }
        let size = match self.flags & data_mask {
            bindings::VFIO_IRQ_SET_DATA_NONE => 0,
            bindings::VFIO_IRQ_SET_DATA_BOOL => 1,
            bindings::VFIO_IRQ_SET_DATA_EVENTFD => 4,
            _ => return Err(EINVAL),
        };
        let bytes = self.count as usize * size;
        if self.argsz as usize - IRQ_SET_MINSZ < bytes {
            return Err(EINVAL);
        }
        let action = match self.flags & action_mask {
            bindings::VFIO_IRQ_SET_ACTION_MASK => IrqAction::Mask,
            bindings::VFIO_IRQ_SET_ACTION_UNMASK => IrqAction::Unmask,
            bindings::VFIO_IRQ_SET_ACTION_TRIGGER => IrqAction::Trigger,
            _ => return Err(EINVAL),
        };
        Ok((action, bytes))
    }
}

/// A virtual memory area that userspace maps from the device file (`struct vm_area_struct`),
/// being set up by the device's `mmap`.
///
/// A driver checks it (start, end, offset, flags) and backs it with device memory
/// ([`VmArea::map_pages`]). Unlike [`VmaNew`](crate::mm::virt::VmaNew), it does not let the
/// driver insert pages of its own at `mmap` time: every page of a device mapping goes through
/// the fault handler, which the abstraction can revoke ([`mod@mmap`]).
///
/// # Invariants
///
/// The area is being set up by `mmap` for the lifetime of the reference (the invariant of
/// `VmaNew`), and its file is the file of a VFIO device.
#[repr(transparent)]
pub struct VmArea(crate::mm::virt::VmaNew);

impl VmArea {
    /// Start address.
    pub fn start(&self) -> usize {
        self.0.start()
    }

    /// End address (exclusive).
    pub fn end(&self) -> usize {
        self.0.end()
    }

    /// The `VM_*` flags (e.g. `VM_SHARED` for a shared mapping, `VM_WRITE`).
    pub fn flags(&self) -> crate::mm::virt::vm_flags_t {
        self.0.flags()
    }

    /// Clears `VM_MAYWRITE` (the mapping can never become writable); `EINVAL` if it is
    /// writable already.
    pub fn try_clear_maywrite(&self) -> Result {
        self.0.try_clear_maywrite()
    }

    /// Offset in the file, in pages.
    pub fn pgoff(&self) -> usize {
        // SAFETY: `mmap_region()` set `vm_pgoff` before `mmap` and nothing else can reach the
        // area meanwhile (type invariant).
        unsafe { (*self.0.as_ptr()).vm_pgoff }
    }
}

/// Returns `true` if the calling task was killed (`fatal_signal_pending(current)`).
///
/// A device operation that takes long, such as a DMA request that a `write` runs, checks it at
/// its safe points (between two transfers) and gives up: the task will not return to
/// userspace, and its VFIO files can only be closed once the operation returned.
pub fn current_killed() -> bool {
    // SAFETY: Reads the calling task's signal state; always valid in process context.
    unsafe { bindings::current_fatal_signal_pending() }
}

/// A reference to an eventfd context that interrupts are signalled through.
///
/// # Invariants
///
/// `self.0` is a `struct eventfd_ctx` on which this object holds a reference.
pub struct EventFd(NonNull<bindings::eventfd_ctx>);

// SAFETY: An `EventFd` only owns a reference on the context, and both operations on it,
// `eventfd_signal_mask()` and `eventfd_ctx_put()` (a `kref_put()`), may run on any thread.
unsafe impl Send for EventFd {}
// SAFETY: The only operation through `&EventFd` is `signal`, and `eventfd_signal_mask()`
// serialises concurrent callers with the context's `wqh.lock`.
unsafe impl Sync for EventFd {}

impl EventFd {
    /// Takes a reference on the eventfd context behind file descriptor `fd` of the current
    /// task (`EBADF` if it is not an open file, `EINVAL` if it is not an eventfd).
    pub fn from_fd(fd: i32) -> Result<Self> {
        // SAFETY: Any fd value is accepted; errors come back as an `ERR_PTR`.
        let ctx = crate::error::from_err_ptr(unsafe { bindings::eventfd_ctx_fdget(fd) })?;
        // INVARIANT: `eventfd_ctx_fdget` returned a context with a reference for us.
        NonNull::new(ctx).map(Self).ok_or(EINVAL)
    }

    /// Adds one to the counter and wakes up readers (`eventfd_signal()`).
    pub fn signal(&self) {
        // SAFETY: We hold a reference on the context (type invariant), so it is alive for the
        // call.
        unsafe { bindings::eventfd_signal_mask(self.0.as_ptr(), 0) }
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: We own a reference (type invariant).
        unsafe { bindings::eventfd_ctx_put(self.0.as_ptr()) }
    }
}

/// The operations of a VFIO device; the data of the device is `Self`.
///
/// Every method gets the [`Device`], which dereferences to `Self`. Methods that are not
/// implemented behave as for a C driver that leaves the operation `NULL`: the ioctls decoded
/// here answer `ENOTTY`, `VFIO_DEVICE_GET_REGION_INFO` (decoded by the VFIO core) `EINVAL`.
#[vtable]
pub trait DeviceOps: Sized + Send + Sync + 'static {
    /// Name of the operations, as `vfio_device_ops.name`.
    const NAME: &'static CStr;

    /// The first open of the device file (`open_device`).
    fn open(_dev: &Device<Self>) -> Result {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The last close of the device file (`close_device`).
    fn close(_dev: &Device<Self>) {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `read()`/`pread()` on the device file at offset `pos`; returns the bytes written to
    /// `buf`, whose length is what userspace asked for.
    fn read(_dev: &Device<Self>, _buf: &mut UserSliceWriter, _pos: u64) -> Result<usize> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `write()`/`pwrite()` on the device file at offset `pos`; returns the bytes consumed.
    fn write(_dev: &Device<Self>, _buf: &mut UserSliceReader, _pos: u64) -> Result<usize> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `VFIO_DEVICE_GET_INFO`.
    fn device_info(_dev: &Device<Self>) -> Result<DeviceInfo> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` for region `index`; capabilities go to `caps`.
    fn region_info(_dev: &Device<Self>, _index: u32, _caps: &mut Caps) -> Result<RegionInfo> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `VFIO_DEVICE_GET_IRQ_INFO` for interrupt `index`.
    fn irq_info(_dev: &Device<Self>, _index: u32) -> Result<IrqInfo> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The number of interrupt indexes `VFIO_DEVICE_SET_IRQS` requests are validated
    /// against (indexes beyond it get `EINVAL`). Vectors are validated against the `count`
    /// of [`DeviceOps::irq_info`] for the index, so [`IrqSet`]'s `start + count` never
    /// exceeds it; for an index `irq_info` refuses (or without `irq_info`), against this
    /// number.
    fn num_irqs(_dev: &Device<Self>) -> u32 {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// A validated `VFIO_DEVICE_SET_IRQS` request.
    fn set_irqs(_dev: &Device<Self>, _set: &IrqSet<'_>) -> Result {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `VFIO_DEVICE_RESET`.
    fn reset(_dev: &Device<Self>) -> Result {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// How the device gives its display planes (with [`DeviceOps::query_gfx_plane`]).
    const GFX_PLANE: gfx::PlaneKind = gfx::PlaneKind::Region;

    /// `VFIO_DEVICE_QUERY_GFX_PLANE` for DRM plane type `drm_plane_type`, once the abstraction
    /// checked that the query names [`DeviceOps::GFX_PLANE`] (probes are answered without
    /// calling this).
    fn query_gfx_plane(_dev: &Device<Self>, _drm_plane_type: u32) -> Result<gfx::Plane> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `VFIO_DEVICE_GET_GFX_DMABUF`: the dma-buf of id `dmabuf_id` (an id the device gave in
    /// [`gfx::Plane::id`]; `ENOENT` for one it does not know). The abstraction installs a new
    /// file descriptor for it, which takes the reference returned.
    #[cfg(CONFIG_DMA_SHARED_BUFFER)]
    fn get_gfx_dmabuf(_dev: &Device<Self>, _dmabuf_id: u32) -> Result<dmabuf::DmaBuf> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Any other ioctl: `cmd` and the user pointer `arg`. The VFIO core handles
    /// `VFIO_DEVICE_GET_REGION_INFO` and `VFIO_DEVICE_FEATURE` itself; they never get here.
    fn ioctl(_dev: &Device<Self>, _cmd: u32, _arg: UserPtr) -> Result<isize> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `mmap()` of the device file: check the area (offset, size, flags) and back it, e.g.
    /// with [`VmArea::map_pages`]. With `mmap`, the abstraction revokes the user mappings of
    /// the device on reset, removal and migration arcs (see [`mod@mmap`]).
    fn mmap(_dev: &Device<Self>, _vma: &VmArea) -> Result {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The device is being unregistered while open; asks userspace to release it (`count`
    /// is the number of requests so far).
    fn request(_dev: &Device<Self>, _count: u32) {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Userspace unmapped `[iova, iova + length)`: drop every pin in the range. May be
    /// called while the device is not open. Pins of the device's [`DeviceOps::pinned_map`]
    /// are dropped by the abstraction before this is called.
    fn dma_unmap(_dev: &Device<Self>, _iova: u64, _length: u64) {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The device's [`PinnedMap`], if it DMAs to guest memory through one.
    ///
    /// The abstraction then wires the map to the device: it binds and opens it before
    /// [`DeviceOps::open`] (`EBUSY` if another device has the same map open, or is still
    /// closing or unmapping through it), drops the pins of an unmapped range before [`DeviceOps::dma_unmap`], and closes it
    /// (no pin from then on, every pin dropped) after [`DeviceOps::close`]. It uses the map
    /// returned at open until the close. [`PinnedMap::acquire`] only pins through the open
    /// device it is bound to.
    fn pinned_map(&self) -> &PinnedMap {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The device's migration support ([`migration::flags`]): 0 (the default) for none, or
    /// `STOP_COPY` with any of `P2P` and `PRE_COPY`. With migration, [`DeviceOps::mig_save`],
    /// [`DeviceOps::mig_load`] and [`DeviceOps::mig_data_size`] are required (the build fails
    /// otherwise), and `VFIO_DEVICE_RESET` works even without [`DeviceOps::reset`] (it returns
    /// the device to `RUNNING`). See [`migration`] for the protocol the abstraction runs.
    const MIGRATION_FLAGS: u32 = 0;

    /// Migration: the device must now do only what `activity` allows, before this returns
    /// (outstanding DMA completed, and every [`Mapping`] whose segments went to hardware
    /// dropped, for [`migration::Activity::P2pQuiesced`] and
    /// [`migration::Activity::Stopped`]). Called on every arc that changes it, with the
    /// migration lock held (do not wait here for anything that makes a migration request),
    /// and when reset or close return the device to running. It must accept the activity the
    /// device already has (after a failure, or from `ERROR`, the abstraction may repeat it).
    /// Not needed by a device that does nothing on its own (no DMA, interrupts only in answer
    /// to the user's accesses, as mtty).
    ///
    /// An error fails the arc; the abstraction then asks for the previous activity again, and
    /// if that fails too, the device enters `ERROR`.
    fn mig_set_activity(_dev: &Device<Self>, _activity: migration::Activity) -> Result {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Migration: writes the device state for `phase` into `out` (appended to the save stream
    /// if this succeeds). For [`migration::SavePhase::StopCopy`] the device is stopped.
    fn mig_save(
        _dev: &Device<Self>,
        _out: &mut migration::SaveWriter<'_>,
        _phase: migration::SavePhase,
    ) -> Result {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Migration: loads the state in `data`, all the bytes userspace wrote into the resume
    /// stream (at most [`DeviceOps::mig_stream_limit`]), at the `RESUMING` to `STOP` arc. The
    /// bytes are untrusted: validate all of them before changing anything, and fail with
    /// `EINVAL` on a stream that is truncated, too long or inconsistent; the device must be
    /// unchanged on error (it stays `RESUMING`).
    fn mig_load(_dev: &Device<Self>, _data: &[u8]) -> Result {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Migration: the estimated number of bytes it takes to complete a stop-copy
    /// (`VFIO_DEVICE_FEATURE_MIG_DATA_SIZE`; it may shrink once pre-copy sent data).
    fn mig_data_size(_dev: &Device<Self>) -> usize {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Migration: the most a stream holds, pre-copy and stop-copy together (default
    /// [`migration::DEFAULT_STREAM_LIMIT`], capped at [`migration::MAX_STREAM_LIMIT`]). A
    /// save that would exceed it fails its arc with `EFBIG` on the source; a resume write
    /// beyond it fails with `ENOMEM` (as in the C mtty, whose limit is its exact stream
    /// length).
    fn mig_stream_limit(_dev: &Device<Self>) -> usize {
        migration::DEFAULT_STREAM_LIMIT
    }
}

/// A VFIO device with the driver's data `T`.
///
/// The `struct vfio_device` comes first, as `vfio_alloc_device()` requires; the VFIO core
/// allocates and frees the whole object.
///
/// # Invariants
///
/// `vdev` is a `struct vfio_device` allocated by `_vfio_alloc_device()` with
/// `Adapter::<T>::VTABLE`; `mig` and `mmap` are initialised right after the allocation, before
/// anything else can fail, and dropped by the release callback; `data` is initialised once
/// `initialized` is set, which happens before the device is registered, and is dropped by the
/// release callback. `released` is NULL or points to a [`Completion`] that the release
/// callback completes as its last access to anything of the vendor module. `map` is NULL, or
/// between `open_device` and `close_device` the [`PinnedMap`] that [`DeviceOps::pinned_map`]
/// returned at open, which
/// `data` keeps alive and in place (it was borrowed from it, and `data` is neither moved nor
/// mutably borrowed before the release).
#[repr(C)]
pub struct Device<T: DeviceOps> {
    vdev: Opaque<bindings::vfio_device>,
    initialized: bool,
    released: AtomicPtr<Completion>,
    map: AtomicPtr<PinnedMap>,
    mig: Mutex<migration::MigState>,
    mmap: Mutex<mmap::MmapGate>,
    data: T,
}

impl<T: DeviceOps> Device<T> {
    /// # Safety
    ///
    /// `vdev` must be the `vfio_device` of a `Device<T>` whose data is initialised, for `'a`.
    #[inline]
    unsafe fn from_raw<'a>(vdev: *mut bindings::vfio_device) -> &'a Self {
        // SAFETY: `vdev` is at offset 0 of the `repr(C)` `Device<T>`, which
        // `Registration::new` asserts at compile time when it allocates it; the caller
        // guarantees that `Device<T>` is alive with initialised `data` for `'a`, and after
        // initialisation it is only ever accessed through shared references.
        unsafe { &*vdev.cast::<Self>() }
    }

    /// Returns the raw `struct vfio_device`.
    pub fn as_raw(&self) -> *mut bindings::vfio_device {
        self.vdev.get()
    }

    /// Returns the device the VFIO device was registered for (for mdevs: the mdev).
    pub fn parent(&self) -> &device::Device {
        // SAFETY: `dev` is set by `_vfio_alloc_device()`. While the VFIO device is registered
        // (the only time the VFIO core calls `DeviceOps`), `device_add()` holds a reference on
        // it as the parent; afterwards a `&Device<T>` can only come from a `Registration`, whose
        // `Devres` holds a reference on the same device until the registration is dropped.
        unsafe { device::Device::from_raw((*self.as_raw()).dev) }
    }
}

impl<T: DeviceOps> Device<T> {
    /// The [`PinnedMap`] bound at open, until the close.
    fn open_map(&self) -> Option<&PinnedMap> {
        let map = self.map.load(Ordering::Acquire);
        // SAFETY: NULL, or the map borrowed from `data` at open, alive and in place while `data`
        // is (type invariant), which is at least as long as `self`.
        unsafe { map.as_ref() }
    }

    /// Closes the map bound at open, if any (the device is closing).
    fn close_map(&self) {
        if let Some(map) = self.open_map() {
            map.close(self);
            self.map.store(core::ptr::null_mut(), Ordering::Release);
        }
    }
}

impl<T: DeviceOps> Deref for Device<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

/// A registered VFIO device with an emulated IOMMU; unregisters it on drop, and at the latest
/// when its parent is unbound.
///
/// Dropping waits, as `vfio_unregister_group_dev()` does, until userspace closed the device
/// (calling [`DeviceOps::request`] meanwhile).
///
/// The VFIO core uses the parent's driver for as long as the device is registered (it takes a
/// reference on the driver's module at the first open), so the registration must not outlive
/// the binding. A vendor driver keeps it in its per-device data, which the mdev core drops in
/// `remove`; if it keeps it anywhere else (or forgets it), the [`Devres`] inside unregisters the
/// VFIO device when the parent is unbound. Afterwards [`Registration::device`] still works (the
/// registration holds a reference), but userspace can no longer reach the device.
///
/// What a registration kept past `remove` still holds: its [`Devres`] keeps a reference on the
/// parent (the mdev), so the mdev's memory, its UUID and its instance slot stay taken until the
/// registration is dropped (a `create` of the same UUID answers `EEXIST` meanwhile), and the
/// mdev's release runs then; dropping it before its parent registration is gone (as
/// `mdev_misuse` does, in its parent data) is what keeps that release within the lifetime of
/// the mdev's type (issue S2 of the review for the general case).
///
/// Do not drop a registration from one of its own device's callbacks ([`DeviceOps`]): the
/// unregistration waits for the device's users, the calling file among them, and for
/// [`DeviceOps::request`], so it would wait for itself.
///
/// # Invariants
///
/// `dev` holds a reference on a [`Device<T>`] whose data is initialised; `_unreg` owns its
/// registration.
pub struct Registration<T: DeviceOps> {
    // Dropped first: unregisters (if the parent's unbind did not already), then `dev` puts the
    // reference.
    _unreg: Devres<Unregister<T>>,
    dev: DeviceRef<T>,
}

/// A reference on a [`Device<T>`] whose data is initialised; put on drop.
///
/// # Invariants
///
/// `self.0` points to a [`Device<T>`] with initialised data, on which this object holds a
/// reference (`get_device()` or the allocation's).
struct DeviceRef<T: DeviceOps>(NonNull<Device<T>>);

// SAFETY: The reference only gives out `&Device<T>`, usable from any thread although the
// `Opaque` makes it `!Sync`: Rust only reads the C part's immutable `dev` (and, volatile, the
// byte `precopy_info_v2`, see `migration::info_v2_of`) or passes it to VFIO functions that
// lock themselves, `initialized` is written before the device is shared, `released` and `map`
// are atomics, `mig` is a mutex of `Send` data and `T: Sync`. Putting it may run the
// release, which drops `T: Send`, on the putting thread.
unsafe impl<T: DeviceOps> Send for DeviceRef<T> {}
// SAFETY: `&DeviceRef<T>` only gives out `&Device<T>`, usable from any thread (see `Send`).
unsafe impl<T: DeviceOps> Sync for DeviceRef<T> {}

impl<T: DeviceOps> Device<T> {
    /// The `struct vfio_device` of `this`, without creating a reference (the data may be
    /// uninitialised or the device unregistered).
    fn raw_of(this: NonNull<Self>) -> *mut bindings::vfio_device {
        // `vdev` is at offset 0 of `Device<T>` (asserted in `Registration::new`).
        this.as_ptr().cast()
    }
}

impl<T: DeviceOps> Device<T> {
    /// Drops the last reference on `this` and waits until its release callback ran.
    ///
    /// The release callback and the ops table are code and data of the vendor module, and the
    /// release may be deferred (`CONFIG_DEBUG_KOBJECT_RELEASE` delays it by seconds): without
    /// the wait, a module unloaded right after dropping its registration could have its
    /// callback run from freed memory. Waits for any other reference too (none is left once
    /// the device is unregistered).
    ///
    /// # Safety
    ///
    /// `this` was allocated by [`Registration::new`] and the caller owns a reference on it,
    /// which this drops; nobody sets `released` concurrently.
    unsafe fn put_and_wait(this: NonNull<Self>) {
        pin_init::stack_pin_init!(let done = Completion::new());
        let vdev = Self::raw_of(this);
        // SAFETY: The caller's reference keeps the memory alive; `released` is an atomic (a
        // zeroed allocation starts it at NULL), written only here. `done` lives until the
        // release callback completed it: we wait for that below.
        unsafe {
            (*this.as_ptr()).released.store(
                core::ptr::from_ref::<Completion>(&*done).cast_mut(),
                Ordering::Release,
            );
            bindings::put_device(core::ptr::addr_of_mut!((*vdev).device));
        }
        done.wait_for_completion();
    }
}

impl<T: DeviceOps> Drop for DeviceRef<T> {
    fn drop(&mut self) {
        // SAFETY: We own a reference on a device of `Registration::new` (type invariant), which
        // creates one `DeviceRef` per device: nobody else sets `released`.
        unsafe { Device::put_and_wait(self.0) };
    }
}

/// The registration of a [`Device<T>`] with the VFIO core; unregisters it on drop.
///
/// # Invariants
///
/// `self.0` points to a registered [`Device<T>`]; whoever owns this object keeps a reference
/// on the device for as long as it exists (the [`Registration`]'s `dev`, which is dropped after
/// its `_unreg`, or leaked with it).
struct Unregister<T: DeviceOps>(NonNull<Device<T>>);

// SAFETY: `vfio_unregister_group_dev()` may be called from any thread.
unsafe impl<T: DeviceOps> Send for Unregister<T> {}
// SAFETY: `&Unregister<T>` gives access to nothing (the pointer is private and only used by
// `drop`, which takes `&mut self`).
unsafe impl<T: DeviceOps> Sync for Unregister<T> {}

impl<T: DeviceOps> Drop for Unregister<T> {
    fn drop(&mut self) {
        let vdev = Device::raw_of(self.0);
        // SAFETY: The device is registered and its memory is alive (type invariants); this
        // waits for userspace to close it.
        unsafe { bindings::vfio_unregister_group_dev(vdev) };
    }
}

impl<T: DeviceOps> Registration<T> {
    /// Allocates a VFIO device for `parent` (for an mdev vendor driver: the mdev), initialises
    /// its data with `init` and registers it with `vfio_register_emulated_iommu_dev()`.
    ///
    /// `parent` must be bound to a driver, which a `&Device<Bound>` proves: a vendor driver
    /// passes its mdev from [`crate::mdev::Driver::probe`].
    pub fn new<E>(parent: &device::Device<device::Bound>, init: impl PinInit<T, E>) -> Result<Self>
    where
        Error: From<E>,
    {
        // `_vfio_alloc_device()` returns `kvzalloc(size)` and treats its start as the
        // `struct vfio_device`, as `fwctl` does with `_fwctl_alloc_device()`.
        const_assert!(
            core::mem::offset_of!(Device<T>, vdev) == 0,
            "struct vfio_device must be at offset 0"
        );
        const_assert!(
            core::mem::align_of::<Device<T>>() <= bindings::ARCH_SLAB_MINALIGN,
            "kvzalloc() does not align Device<T> enough"
        );
        // SAFETY: `parent` is alive for the call (a reference) and `_vfio_alloc_device()` only
        // stores it (see `Device::parent`); the size covers `Device<T>`, whose first field is the
        // `vfio_device`; the ops table is a constant of this module, which `put_and_wait` keeps
        // loaded until the device's release has run.
        let vdev = unsafe {
            bindings::_vfio_alloc_device(
                size_of::<Device<T>>(),
                parent.as_raw(),
                Adapter::<T>::VTABLE_PTR,
            )
        };
        let vdev = crate::error::from_err_ptr(vdev)?;
        let ptr = vdev.cast::<Device<T>>();
        // SAFETY: The allocation is zeroed, large enough and aligned for `Device<T>` (asserted
        // above), nobody else can reach it yet, and it does not move; the initialisers cannot
        // fail, so `mig` and `mmap` are initialised from here on, as the release callback
        // expects.
        let res = unsafe {
            pin_init::raw_try_init(
                core::ptr::addr_of_mut!((*ptr).mig),
                migration::MigState::new(),
            )
            .and_then(|()| {
                pin_init::raw_try_init(
                    core::ptr::addr_of_mut!((*ptr).mmap),
                    crate::new_mutex!(mmap::MmapGate::default()),
                )
            })
        };
        if let Err(e) = res {
            match e {}
        }
        // SAFETY: The allocation is zeroed, large enough and aligned for `Device<T>` (asserted
        // above); nobody else can reach it yet, and it does not move. On error `raw_try_init`
        // leaves `data` uninitialised and we only free the allocation.
        let res = unsafe { pin_init::raw_try_init(core::ptr::addr_of_mut!((*ptr).data), init) };
        if let Err(e) = res {
            // SAFETY: We own the only reference on a device allocated above; `initialized` is
            // false (zeroed allocation), so the release callback does not drop `data`.
            unsafe { Device::put_and_wait(NonNull::new_unchecked(ptr)) };
            return Err(e.into());
        }
        // SAFETY: `ptr` is the allocation above, which nothing else can reach before it is
        // registered below.
        unsafe { (*ptr).initialized = true };
        const {
            assert!(
                migration::flags_valid(T::MIGRATION_FLAGS),
                "MIGRATION_FLAGS must be 0 or STOP_COPY with P2P and PRE_COPY only"
            );
            assert!(
                T::MIGRATION_FLAGS == 0
                    || (T::HAS_MIG_SAVE && T::HAS_MIG_LOAD && T::HAS_MIG_DATA_SIZE),
                "migration needs mig_save, mig_load and mig_data_size"
            );
        }
        if T::MIGRATION_FLAGS != 0 {
            // SAFETY: Not registered yet, so the VFIO core does not read these fields; the ops
            // table is a constant of this module, loaded as long as the device exists
            // (`put_and_wait`).
            unsafe {
                (*vdev).migration_flags = T::MIGRATION_FLAGS;
                (*vdev).mig_ops = migration::ops_ptr::<T>();
                (*vdev).log_ops = migration::log_ops_ptr::<T>();
            }
        }
        // INVARIANT: `data` is initialised and the allocation's reference is `dev`'s.
        // SAFETY: `ptr` is not NULL (`from_err_ptr` checked it is no error pointer and
        // `_vfio_alloc_device()` never returns NULL).
        let dev = DeviceRef(unsafe { NonNull::new_unchecked(ptr) });
        // SAFETY: `vdev` is an allocated, initialised, not yet registered VFIO device. On
        // failure, dropping `dev` puts the only reference and release drops `data`.
        to_result(unsafe { bindings::vfio_register_emulated_iommu_dev(vdev) })?;
        // INVARIANT: Registered; `dev` outlives `_unreg` in `Self` (field order), or is leaked
        // with it.
        let unreg = Unregister(dev.0);
        // On failure `Devres::new` drops `unreg`, which unregisters; then `dev` is put.
        let unreg = Devres::new::<Error>(parent, Ok::<_, Error>(unreg))?;
        Ok(Self { _unreg: unreg, dev })
    }

    /// Returns the device.
    pub fn device(&self) -> &Device<T> {
        // SAFETY: `dev` holds a reference and the data is initialised (type invariants).
        unsafe { self.dev.0.as_ref() }
    }
}

impl<T: DeviceOps> Deref for Registration<T> {
    type Target = Device<T>;

    fn deref(&self) -> &Device<T> {
        self.device()
    }
}

struct Adapter<T: DeviceOps>(PhantomData<T>);

/// `minsz` of `VFIO_DEVICE_GET_INFO`: `offsetofend(struct vfio_device_info, num_irqs)`.
const DEVICE_INFO_MINSZ: usize =
    core::mem::offset_of!(bindings::vfio_device_info, num_irqs) + size_of::<u32>();
/// `minsz` of `VFIO_DEVICE_GET_IRQ_INFO`: `offsetofend(struct vfio_irq_info, count)`.
const IRQ_INFO_MINSZ: usize =
    core::mem::offset_of!(bindings::vfio_irq_info, count) + size_of::<u32>();

// The VFIO UAPI structures the ioctl trampolines exchange with userspace, as `bindgen`
// generates them from `include/uapi/linux/vfio.h`. Their sizes are checked at compile time, so
// a layout change in the header (a field that is not a `__u32`, padding) fails the build
// instead of breaking the arguments below.
const _: () = assert!(size_of::<bindings::vfio_device_info>() == 6 * 4);
const _: () = assert!(size_of::<bindings::vfio_irq_info>() == 4 * 4);
const _: () = assert!(size_of::<bindings::vfio_irq_set>() == 5 * 4);

// SAFETY: `struct vfio_device_info` is `{argsz, flags, num_regions, num_irqs, cap_offset,
// pad}`, six `__u32` (24 bytes, asserted above): any bit pattern is a valid value.
unsafe impl FromBytes for bindings::vfio_device_info {}
// SAFETY: The six `__u32` of `struct vfio_device_info` fill its 24 bytes: no padding.
unsafe impl AsBytes for bindings::vfio_device_info {}
// SAFETY: `struct vfio_irq_info` is `{argsz, flags, index, count}`, four `__u32` (16 bytes,
// asserted above): any bit pattern is a valid value.
unsafe impl FromBytes for bindings::vfio_irq_info {}
// SAFETY: The four `__u32` of `struct vfio_irq_info` fill its 16 bytes: no padding.
unsafe impl AsBytes for bindings::vfio_irq_info {}
// SAFETY: `struct vfio_irq_set` is `{argsz, flags, index, start, count}`, five `__u32`, and a
// zero-sized flexible array `data[]` (20 bytes, asserted above): any bit pattern is valid.
unsafe impl FromBytes for bindings::vfio_irq_set {}
// SAFETY: The five `__u32` of `struct vfio_irq_set` fill its 20 bytes: no padding.
unsafe impl AsBytes for bindings::vfio_irq_set {}

/// Advances the file position of a `read` or `write` by the `n` bytes the driver says it
/// transferred, out of the `count` userspace asked for, and returns the syscall's result.
///
/// A driver cannot report more than `count` bytes (`EIO`), and the position never overflows
/// `loff_t` (`EOVERFLOW`): either would make the syscall lie to userspace, or panic.
///
/// # Safety
///
/// `ppos` must be the position pointer the VFIO core passed to the running `read`/`write`
/// callback.
unsafe fn commit_pos(ppos: *mut bindings::loff_t, n: usize, count: usize) -> Result<isize> {
    if n > count {
        return Err(EIO);
    }
    let delta = bindings::loff_t::try_from(n).map_err(|_| EIO)?;
    // SAFETY: The caller passes the callback's position pointer, valid for reads and writes
    // for the duration of the callback and not accessed concurrently (the VFS hands the VFIO
    // core a pointer to its own copy of the position, e.g. in `ksys_read()`).
    let pos = unsafe { &mut *ppos };
    *pos = pos.checked_add(delta).ok_or(EOVERFLOW)?;
    isize::try_from(n).map_err(|_| EIO)
}

/// Reads the first `minsz` bytes of the user's `T` at `arg`; the rest of `T` is zero, as the
/// C handlers' `copy_from_user(&info, arg, minsz)` into a zeroed structure.
#[inline]
fn read_minsz<T: FromBytes + AsBytes>(arg: UserPtr, minsz: usize) -> Result<T> {
    // SAFETY: `T: FromBytes`: every bit pattern, all-zero among them, is a valid `T`.
    let mut v: T = unsafe { core::mem::zeroed() };
    let bytes = v.as_bytes_mut().get_mut(..minsz).ok_or(EINVAL)?;
    UserSlice::new(arg, minsz).reader().read_slice(bytes)?;
    Ok(v)
}

/// Writes the first `minsz` bytes of `v` back to the user's `T` at `arg`.
#[inline]
fn write_minsz<T: AsBytes>(arg: UserPtr, v: &T, minsz: usize) -> Result {
    let bytes = v.as_bytes().get(..minsz).ok_or(EINVAL)?;
    UserSlice::new(arg, minsz).writer().write_slice(bytes)
}

impl<T: DeviceOps> Adapter<T> {
    const VTABLE: bindings::vfio_device_ops = bindings::vfio_device_ops {
        name: crate::str::as_char_ptr_in_const_context(T::NAME).cast_mut(),
        init: None,
        release: Some(Self::release),
        #[cfg(CONFIG_IOMMUFD)]
        bind_iommufd: Some(bindings::vfio_iommufd_emulated_bind),
        #[cfg(CONFIG_IOMMUFD)]
        unbind_iommufd: Some(bindings::vfio_iommufd_emulated_unbind),
        #[cfg(CONFIG_IOMMUFD)]
        attach_ioas: Some(bindings::vfio_iommufd_emulated_attach_ioas),
        #[cfg(CONFIG_IOMMUFD)]
        detach_ioas: Some(bindings::vfio_iommufd_emulated_detach_ioas),
        #[cfg(not(CONFIG_IOMMUFD))]
        bind_iommufd: None,
        #[cfg(not(CONFIG_IOMMUFD))]
        unbind_iommufd: None,
        #[cfg(not(CONFIG_IOMMUFD))]
        attach_ioas: None,
        #[cfg(not(CONFIG_IOMMUFD))]
        detach_ioas: None,
        pasid_attach_ioas: None,
        pasid_detach_ioas: None,
        open_device: if T::HAS_OPEN || T::HAS_PINNED_MAP {
            Some(Self::open_device)
        } else {
            None
        },
        close_device: if T::HAS_CLOSE || T::HAS_PINNED_MAP || T::MIGRATION_FLAGS != 0 {
            Some(Self::close_device)
        } else {
            None
        },
        read: if T::HAS_READ { Some(Self::read) } else { None },
        write: if T::HAS_WRITE {
            Some(Self::write)
        } else {
            None
        },
        ioctl: Some(Self::ioctl),
        mmap: if T::HAS_MMAP { Some(Self::mmap) } else { None },
        // With `mmap`, the abstraction revokes the mappings when the device goes away.
        request: if T::HAS_REQUEST || T::HAS_MMAP {
            Some(Self::request)
        } else {
            None
        },
        match_: None,
        match_token_uuid: None,
        get_region_info_caps: if T::HAS_REGION_INFO {
            Some(Self::get_region_info_caps)
        } else {
            None
        },
        dma_unmap: if T::HAS_DMA_UNMAP || T::HAS_PINNED_MAP {
            Some(Self::dma_unmap)
        } else {
            None
        },
        device_feature: None,
    };
    const VTABLE_PTR: *const bindings::vfio_device_ops = &Self::VTABLE;

    /// # Safety
    ///
    /// Called by the VFIO core with the last reference of a device allocated by
    /// [`Registration::new`].
    unsafe extern "C" fn release(vdev: *mut bindings::vfio_device) {
        let ptr = vdev.cast::<Device<T>>();
        // SAFETY: The last reference is gone, so no `&Device<T>` exists any more (nor a user
        // mapping of it: each holds the device file); `data` is initialised if `initialized`
        // is set, `mig` and `mmap` always (type invariant); they may be
        // dropped on this thread (`T: Send`, the streams are `Send`). The VFIO core frees the
        // memory afterwards.
        let done = unsafe {
            if (*ptr).initialized {
                core::ptr::drop_in_place(core::ptr::addr_of_mut!((*ptr).data));
            }
            core::ptr::drop_in_place(core::ptr::addr_of_mut!((*ptr).mig));
            core::ptr::drop_in_place(core::ptr::addr_of_mut!((*ptr).mmap));
            (*ptr).released.load(Ordering::Acquire)
        };
        if !done.is_null() {
            // SAFETY: A non-NULL `released` is the completion `Device::put_and_wait` waits on,
            // alive until completed. This is the last thing the callback does: once the waiter
            // returns, the vendor module may go.
            unsafe { (*done).complete_all() };
        }
    }

    /// # Safety
    ///
    /// Called by the VFIO core with a registered device.
    unsafe extern "C" fn open_device(vdev: *mut bindings::vfio_device) -> c_int {
        // SAFETY: The VFIO core calls the ops of `Adapter::<T>::VTABLE` only for devices that
        // `Registration::new` allocated with that table as a `Device<T>` and registered after
        // initialising `data`; the core keeps the device alive for the call.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        from_result(|| {
            if T::HAS_PINNED_MAP {
                // The map of this open, used until the close whatever `pinned_map` returns
                // later.
                let map = dev.pinned_map();
                map.open(vdev)?;
                // INVARIANT: Borrowed from `data`, which outlives the close.
                dev.map
                    .store(core::ptr::from_ref(map).cast_mut(), Ordering::Release);
            }
            if T::HAS_OPEN {
                if let Err(e) = T::open(dev) {
                    dev.close_map();
                    return Err(e);
                }
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFIO core with a registered, open device.
    unsafe extern "C" fn close_device(vdev: *mut bindings::vfio_device) {
        // SAFETY: The VFIO core calls the ops of `Adapter::<T>::VTABLE` only for devices that
        // `Registration::new` allocated with that table as a `Device<T>` and registered after
        // initialising `data`; the core keeps the device alive for the call.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        if T::MIGRATION_FLAGS != 0 {
            // The streams end before the close returns, as `struct vfio_migration_ops`
            // requires.
            migration::MigAdapter::<T>::close_begin(dev);
        }
        // The driver's close runs while the device is still stopped, if it was: it drops what
        // it held back.
        if T::HAS_CLOSE {
            T::close(dev);
        }
        dev.close_map();
        if T::MIGRATION_FLAGS != 0 {
            // No DMA can start any more (the map is closed): the device may run again, and
            // the next open finds it `RUNNING`.
            migration::MigAdapter::<T>::close_end(dev);
        }
    }

    /// # Safety
    ///
    /// Called by the VFIO core with an open device, a user buffer of `count` bytes and the
    /// file position.
    unsafe extern "C" fn read(
        vdev: *mut bindings::vfio_device,
        buf: *mut c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: The VFIO core calls the ops of `Adapter::<T>::VTABLE` only for devices that
        // `Registration::new` allocated with that table as a `Device<T>` and registered after
        // initialising `data`; the core keeps the device alive for the call.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        from_result(|| {
            // SAFETY: `ppos` is the position the VFS passed for this call (function safety
            // requirements), a pointer to its own copy (e.g. in `ksys_read()`), which nothing
            // writes concurrently.
            let pos = u64::try_from(unsafe { *ppos }).map_err(|_| EINVAL)?;
            let mut w = UserSlice::new(UserPtr::from_ptr(buf.cast()), count).writer();
            let n = T::read(dev, &mut w, pos)?;
            // SAFETY: `ppos` is this callback's position pointer.
            unsafe { commit_pos(ppos, n, count) }
        })
    }

    /// # Safety
    ///
    /// Called by the VFIO core with an open device, a user buffer of `count` bytes and the
    /// file position.
    unsafe extern "C" fn write(
        vdev: *mut bindings::vfio_device,
        buf: *const c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: The VFIO core calls the ops of `Adapter::<T>::VTABLE` only for devices that
        // `Registration::new` allocated with that table as a `Device<T>` and registered after
        // initialising `data`; the core keeps the device alive for the call.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        from_result(|| {
            // SAFETY: `ppos` is the position the VFS passed for this call (function safety
            // requirements), a pointer to its own copy (e.g. in `ksys_write()`), which nothing
            // writes concurrently.
            let pos = u64::try_from(unsafe { *ppos }).map_err(|_| EINVAL)?;
            let mut r = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
            let n = T::write(dev, &mut r, pos)?;
            // SAFETY: `ppos` is this callback's position pointer.
            unsafe { commit_pos(ppos, n, count) }
        })
    }

    /// # Safety
    ///
    /// Called by the VFIO core with an open device and the user's ioctl arguments.
    unsafe extern "C" fn ioctl(
        vdev: *mut bindings::vfio_device,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long {
        // SAFETY: The VFIO core calls the ops of `Adapter::<T>::VTABLE` only for devices that
        // `Registration::new` allocated with that table as a `Device<T>` and registered after
        // initialising `data`; the core keeps the device alive for the call.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        let arg = UserPtr::from_addr(arg);
        from_result(|| match cmd {
            DEVICE_GET_INFO if T::HAS_DEVICE_INFO => Self::get_info(dev, arg).map(|()| 0),
            DEVICE_GET_IRQ_INFO if T::HAS_IRQ_INFO => Self::get_irq_info(dev, arg).map(|()| 0),
            DEVICE_SET_IRQS if T::HAS_SET_IRQS => Self::set_irqs(dev, arg).map(|()| 0),
            DEVICE_RESET if T::HAS_RESET || T::MIGRATION_FLAGS != 0 => Self::reset(dev),
            gfx::DEVICE_QUERY_GFX_PLANE if T::HAS_QUERY_GFX_PLANE => {
                Self::query_gfx_plane(dev, arg).map(|()| 0)
            }
            #[cfg(CONFIG_DMA_SHARED_BUFFER)]
            gfx::DEVICE_GET_GFX_DMABUF if T::HAS_GET_GFX_DMABUF => {
                // `__u32 dmabuf_id` in; the new descriptor is the ioctl's result.
                let mut id = [0u8; 4];
                UserSlice::new(arg, 4).reader().read_slice(&mut id)?;
                T::get_gfx_dmabuf(dev, u32::from_ne_bytes(id))?
                    .into_fd()
                    .map(|fd| fd as c_long)
            }
            _ if T::HAS_IOCTL => T::ioctl(dev, cmd, arg).map(|n| n as c_long),
            _ => Err(ENOTTY),
        })
    }

    /// `VFIO_DEVICE_RESET`: the streams end, the driver's reset runs, and the migration state
    /// returns to `RUNNING` (the driver is told after its reset, so that it drops what it was
    /// holding back while stopped).
    #[inline]
    fn reset(dev: &Device<T>) -> Result<c_long> {
        let reset = || {
            let res = if T::HAS_RESET { T::reset(dev) } else { Ok(()) };
            // The next touch of a mapping sees the device as reset left it.
            if T::HAS_MMAP {
                dev.zap_mappings();
            }
            res
        };
        if T::MIGRATION_FLAGS != 0 {
            migration::MigAdapter::<T>::reset(dev, reset)?;
        } else {
            reset()?;
        }
        Ok(0)
    }

    /// `VFIO_DEVICE_QUERY_GFX_PLANE`: the structure up to `region_index` in; for a query, the
    /// same out with the plane filled in (a probe writes nothing back).
    #[inline]
    fn query_gfx_plane(dev: &Device<T>, arg: UserPtr) -> Result {
        let mut u: bindings::vfio_device_gfx_plane_info = read_minsz(arg, gfx::PLANE_INFO_MINSZ)?;
        if (u.argsz as usize) < gfx::PLANE_INFO_MINSZ {
            return Err(EINVAL);
        }
        match gfx::validate(T::GFX_PLANE, u.flags, u.drm_plane_type)? {
            // The C samples copy the structure back unchanged.
            gfx::Query::Probe => write_minsz(arg, &u, gfx::PLANE_INFO_MINSZ),
            gfx::Query::Plane { drm_plane_type } => {
                T::query_gfx_plane(dev, drm_plane_type)?.fill(&mut u);
                write_minsz(arg, &u, gfx::PLANE_INFO_MINSZ)
            }
        }
    }

    /// `VFIO_DEVICE_GET_INFO`: `{argsz, flags, num_regions, num_irqs}` in, the same out.
    #[inline]
    fn get_info(dev: &Device<T>, arg: UserPtr) -> Result {
        let mut u: bindings::vfio_device_info = read_minsz(arg, DEVICE_INFO_MINSZ)?;
        if (u.argsz as usize) < DEVICE_INFO_MINSZ {
            return Err(EINVAL);
        }
        let info = T::device_info(dev)?;
        u.flags = info.flags;
        u.num_regions = info.num_regions;
        u.num_irqs = info.num_irqs;
        write_minsz(arg, &u, DEVICE_INFO_MINSZ)
    }

    /// `VFIO_DEVICE_GET_REGION_INFO`, which the VFIO core decodes (argsz, index) and answers
    /// (capability chain placement, `VFIO_REGION_INFO_FLAG_CAPS`, copy-out).
    ///
    /// # Safety
    ///
    /// Called by the VFIO core with an open device, the region info it copied from the user
    /// (`index` set) and an empty capability chain, both valid for the call.
    unsafe extern "C" fn get_region_info_caps(
        vdev: *mut bindings::vfio_device,
        info: *mut bindings::vfio_region_info,
        caps: *mut bindings::vfio_info_cap,
    ) -> c_int {
        // SAFETY: The VFIO core calls the ops of `Adapter::<T>::VTABLE` only for devices that
        // `Registration::new` allocated with that table as a `Device<T>` and registered after
        // initialising `data`; the core keeps the device alive for the call.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        from_result(|| {
            // SAFETY: `info` points to the local `struct vfio_region_info` of
            // `vfio_get_region_info()`, which nothing else uses until this call returns.
            let info = unsafe { &mut *info };
            let mut chain = Caps::new();
            let ri = T::region_info(dev, info.index, &mut chain)?;
            if !Caps::sparse_areas_valid(&chain.sparse, ri.size, ri.flags) {
                crate::pr_warn_once!("vfio: a sparse-mmap area that the region cannot map\n");
                return Err(EINVAL);
            }
            info.flags = ri.flags;
            info.size = ri.size;
            info.offset = ri.offset;
            for (id, version, payload) in chain.entries() {
                let size = size_of::<bindings::vfio_info_cap_header>() + payload.len();
                // SAFETY: `caps` points to the local (zero-initialised) chain of
                // `vfio_get_region_info()`, which `kfree()`s its buffer after this call.
                let hdr = unsafe { bindings::vfio_info_cap_add(caps, size, id, version) };
                let hdr = crate::error::from_err_ptr(hdr)?;
                // SAFETY: `vfio_info_cap_add()` returned a header followed by at least
                // `payload.len()` zeroed bytes of the chain's buffer, which nothing else
                // references; the next `vfio_info_cap_add()` (which may move it) comes after.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        payload.as_ptr(),
                        hdr.add(1).cast::<u8>(),
                        payload.len(),
                    )
                };
            }
            Ok(0)
        })
    }

    /// `VFIO_DEVICE_GET_IRQ_INFO`: `{argsz, flags, index, count}`.
    #[inline]
    fn get_irq_info(dev: &Device<T>, arg: UserPtr) -> Result {
        let mut u: bindings::vfio_irq_info = read_minsz(arg, IRQ_INFO_MINSZ)?;
        if (u.argsz as usize) < IRQ_INFO_MINSZ {
            return Err(EINVAL);
        }
        let info = T::irq_info(dev, u.index)?;
        u.flags = info.flags;
        u.count = info.count;
        write_minsz(arg, &u, IRQ_INFO_MINSZ)
    }

    /// `VFIO_DEVICE_SET_IRQS`: validates the header, copies the data, decodes it.
    #[inline]
    fn set_irqs(dev: &Device<T>, arg: UserPtr) -> Result {
        let u: bindings::vfio_irq_set = read_minsz(arg, IRQ_SET_MINSZ)?;
        let hdr = IrqSetHeader {
            argsz: u.argsz,
            flags: u.flags,
            index: u.index,
            start: u.start,
            count: u.count,
        };
        let indexes = T::num_irqs(dev);
        let (action, bytes) = hdr.validate(indexes, |index| {
            Ok(if T::HAS_IRQ_INFO {
                T::irq_info(dev, index).map_or(indexes, |info| info.count)
            } else {
                indexes
            })
        })?;
        let mut raw = KVec::new();
        if bytes > 0 {
            UserSlice::new(arg.wrapping_byte_add(IRQ_SET_MINSZ), bytes)
                .read_all(&mut raw, GFP_KERNEL | __GFP_NOWARN)?;
        }
        let mut fds = KVec::new();
        let data = match hdr.flags & bindings::VFIO_IRQ_SET_DATA_TYPE_MASK {
            bindings::VFIO_IRQ_SET_DATA_BOOL => IrqData::Bool(&raw),
            bindings::VFIO_IRQ_SET_DATA_EVENTFD => {
                for c in raw.chunks_exact(4) {
                    fds.push(
                        i32::from_ne_bytes([c[0], c[1], c[2], c[3]]),
                        GFP_KERNEL | __GFP_NOWARN,
                    )?;
                }
                IrqData::Eventfd(&fds)
            }
            _ => IrqData::None,
        };
        T::set_irqs(
            dev,
            &IrqSet {
                index: hdr.index,
                start: hdr.start,
                count: hdr.count,
                action,
                data,
            },
        )
    }

    /// # Safety
    ///
    /// Called by the VFIO core with an open device and an area being mapped.
    unsafe extern "C" fn mmap(
        vdev: *mut bindings::vfio_device,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: The VFIO core calls the ops of `Adapter::<T>::VTABLE` only for devices that
        // `Registration::new` allocated with that table as a `Device<T>` and registered after
        // initialising `data`; the core keeps the device alive for the call.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        // SAFETY: `VmArea` is `repr(transparent)` over `VmaNew`, itself over the
        // `vm_area_struct`; `vma` is the area `mmap_region()` is setting up for the device file,
        // and the reference cannot outlive this call.
        let area = unsafe { &*vma.cast::<VmArea>() };
        let res = T::mmap(dev, area);
        if res.is_err() {
            // SAFETY: The callback failed: the area is still private to this `mmap`.
            unsafe { mmap::undo_install(vma) };
        }
        from_result(|| res.map(|()| 0))
    }

    /// # Safety
    ///
    /// Called by the VFIO core with a registered device being unregistered.
    unsafe extern "C" fn request(vdev: *mut bindings::vfio_device, count: c_uint) {
        // SAFETY: The VFIO core calls the ops of `Adapter::<T>::VTABLE` only for devices that
        // `Registration::new` allocated with that table as a `Device<T>` and registered after
        // initialising `data`; the core keeps the device alive for the call.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        if T::HAS_MMAP {
            dev.revoke_mappings();
        }
        if T::HAS_REQUEST {
            T::request(dev, count);
        }
    }

    /// # Safety
    ///
    /// Called by the VFIO core with a registered device.
    unsafe extern "C" fn dma_unmap(vdev: *mut bindings::vfio_device, iova: u64, length: u64) {
        // SAFETY: The VFIO core calls the ops of `Adapter::<T>::VTABLE` only for devices that
        // `Registration::new` allocated with that table as a `Device<T>` and registered after
        // initialising `data`; the core keeps the device alive for the call.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        if let Some(map) = dev.open_map() {
            map.unmap(dev, iova, length);
        }
        if T::HAS_DMA_UNMAP {
            T::dma_unmap(dev, iova, length);
        }
    }
}

#[kunit_tests(rust_kernel_vfio)]
mod tests {
    use super::*;

    /// The `minsz` values are C's `offsetofend()` of the UAPI structures (`vfio_main.c`,
    /// `mtty.c`): a wrong one would read or write the wrong bytes of the user's structure.
    #[test]
    fn uapi_minsz() {
        assert_eq!(DEVICE_INFO_MINSZ, 16);
        assert_eq!(IRQ_INFO_MINSZ, 16);
        assert_eq!(IRQ_SET_MINSZ, 20);
        assert_eq!(size_of::<bindings::vfio_device_info>(), 24);
        assert_eq!(size_of::<bindings::vfio_irq_info>(), 16);
        assert_eq!(size_of::<bindings::vfio_irq_set>(), 20);
    }

    /// A decoded structure is the user's bytes in field order, native endian.
    #[test]
    fn uapi_decode() {
        let mut raw = [0u8; 20];
        for (i, v) in [24u32, 0x24, 1, 2, 3].iter().enumerate() {
            raw[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        let s = bindings::vfio_irq_set::from_bytes_copy(&raw).expect("20 bytes");
        assert_eq!(
            (s.argsz, s.flags, s.index, s.start, s.count),
            (24, 0x24, 1, 2, 3)
        );
        assert_eq!(s.as_bytes(), &raw[..]);
    }

    /// `Caps::entries` hands the VFIO core each capability with its id, version and padded
    /// payload, in the order the driver added them.
    #[test]
    fn caps_entries() -> Result {
        let mut caps = Caps::new();
        caps.add_region_type(3, 7)?;
        caps.add(9, 2, &[1, 2, 3])?;
        let mut it = caps.entries();
        let (id, ver, p) = it.next().expect("first");
        assert_eq!(
            (id, ver, p.len()),
            (bindings::VFIO_REGION_INFO_CAP_TYPE as u16, 1, 8)
        );
        assert_eq!(&p[..4], &3u32.to_ne_bytes());
        assert_eq!(&p[4..], &7u32.to_ne_bytes());
        let (id, ver, p) = it.next().expect("second");
        assert_eq!((id, ver), (9, 2));
        assert_eq!(p, &[1, 2, 3, 0, 0, 0, 0, 0]);
        assert!(it.next().is_none());
        Ok(())
    }
}
