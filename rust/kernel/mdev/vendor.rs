// SPDX-License-Identifier: GPL-2.0

//! The vendor-driver side of mdev: drivers, parents, types, vendor device attributes.
//!
//! C header: [`include/linux/mdev.h`](srctree/include/linux/mdev.h)
//!
//! A vendor driver implements [`Driver`] (a `#[vtable]` trait with typed per-type, per-parent
//! and per-device data) and registers it once with a [`DriverRegistration`]; every parent
//! device then gets a [`ParentRegistration`] listing its types ([`TypeInfo`]). Userspace
//! creates an mdev by writing a UUID to a type's `create` file; the core then calls
//! [`Driver::probe`] with the new [`Device`], the parent's data and the type's data, and keeps
//! what it returns until [`Driver::remove`]. Both registrations undo themselves on drop.
//!
//! # Linking
//!
//! `mdev.ko` is a module, and `vmlinux`, which contains this crate, cannot reference its
//! symbols. Everything here that calls `mdev_register_driver()` and friends is generic over
//! the driver type `T`, so the calls are compiled into the vendor module, which `modpost` then
//! links against `mdev.ko` like a C vendor driver. The only non-generic code ([`SysfsBuf`] and
//! the waits for kobject releases) calls functions of `vmlinux`.
//!
//! A driver without a hardware parent registers a [`ClassDevice`](crate::class::ClassDevice)
//! as its parent, as the C samples do with `class_create()` and `device_create()`.

use super::Device;
use crate::{
    alloc::{flags::GFP_KERNEL, KBox, KVec},
    bindings, device,
    error::{code::*, from_result, to_result, Error, Result},
    ffi::{c_char, c_int, c_uint},
    prelude::*,
    str::{CStr, Formatter},
    sync::aref::ARef,
    sync::Arc,
    types::{ForeignOwnable, Opaque},
    ThisModule,
};
use core::{
    cell::UnsafeCell,
    fmt,
    marker::{PhantomData, PhantomPinned},
    mem::ManuallyDrop,
    pin::Pin,
    ptr::{self, addr_of, addr_of_mut, null, null_mut, NonNull},
    sync::atomic::{AtomicBool, AtomicI32, Ordering},
};

/// A vendor driver for mediated devices.
///
/// # Examples
///
/// A driver with one type whose devices are plain counters (the real use is a VFIO device,
/// see `samples/vfio-mdev/mtty_rs.rs`):
///
/// ```ignore
/// use kernel::{c_str, device::Core, mdev, prelude::*, sync::Arc};
///
/// struct Counter;
///
/// #[vtable]
/// impl mdev::Driver for Counter {
///     type TypeData = u32;
///     type ParentData = ();
///     type DeviceData = u32;
///     const NAME: &'static CStr = c_str!("counter");
///     const DEVICE_API: &'static CStr = c_str!("vfio-pci");
///     const MAX_INSTANCES: u32 = 4;
///
///     fn probe(_mdev: &mdev::Device<Core<'_>>, _parent: &(), ty: &u32) -> Result<u32> {
///         Ok(*ty)
///     }
/// }
/// ```
#[vtable]
pub trait Driver: Sized + 'static {
    /// Data of each type (for example the resources an instance takes).
    type TypeData: Send + Sync;
    /// Data of each parent device (for example a pool of resources shared by its types).
    type ParentData: Send + Sync;
    /// Data of each mediated device, from [`Driver::probe`] to [`Driver::remove`] (for a VFIO
    /// device: its [`crate::vfio::Registration`]).
    type DeviceData: Send + Sync;

    /// The driver name (`/sys/bus/mdev/drivers/<NAME>`).
    const NAME: &'static CStr;
    /// The `device_api` of every type, e.g. [`crate::vfio::pci::DEVICE_API`].
    const DEVICE_API: &'static CStr;
    /// Instances a parent may have in total, when [`Driver::available`] is not implemented
    /// (the core then counts; `EUSERS` when exhausted).
    const MAX_INSTANCES: u32 = 0;
    /// Instances a parent may have in total, read once when the driver registers; the default
    /// is [`Driver::MAX_INSTANCES`]. For a limit that a module parameter sets (the C samples'
    /// `count`).
    fn max_instances() -> u32 {
        Self::MAX_INSTANCES
    }
    /// Name of the directory of the vendor device attributes (`None`: the device directory).
    const ATTRIBUTE_GROUP: Option<&'static CStr> = None;
    /// Vendor attributes of every mediated device of this driver.
    const ATTRIBUTES: &'static [DeviceAttribute<Self>] = &[];

    /// Userspace created `mdev` of type `ty` on a parent with data `parent`.
    ///
    /// The mdev is bound to this driver for as long as `mdev` lives: its
    /// [`device::Device<Bound>`](device::Bound) is what [`crate::vfio::Registration::new`]
    /// needs.
    fn probe(
        mdev: &Device<device::Core<'_>>,
        parent: &Self::ParentData,
        ty: &Self::TypeData,
    ) -> Result<Self::DeviceData>;

    /// `mdev` is being removed; `data` is what [`Driver::probe`] returned.
    fn remove(_mdev: &Device<device::Core<'_>>, data: Self::DeviceData) {
        drop(data);
    }

    /// The `available_instances` of type `ty` (when implemented, the core does not count).
    fn available(_parent: &Self::ParentData, _ty: &Self::TypeData) -> u32 {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes the `description` of type `ty` (the file exists only when implemented).
    fn description(
        _parent: &Self::ParentData,
        _ty: &Self::TypeData,
        _buf: &mut SysfsBuf<'_>,
    ) -> Result {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The `PAGE_SIZE` buffer of a sysfs `show` callback; write to it with `write!`.
///
/// Output that does not fit fails with [`fmt::Error`] (the callback then returns `EINVAL`).
pub struct SysfsBuf<'a> {
    f: Formatter<'a>,
    _p: PhantomData<&'a mut [u8]>,
}

impl SysfsBuf<'_> {
    /// # Safety
    ///
    /// `buf` must be a sysfs buffer of `PAGE_SIZE` bytes, writable for `'a`.
    unsafe fn new(buf: *mut c_char) -> Self {
        Self {
            // SAFETY: The caller guarantees `PAGE_SIZE` writable bytes.
            // One byte short: sysfs warns about a `show` that returns `PAGE_SIZE`.
            f: unsafe { Formatter::from_buffer(buf.cast(), bindings::PAGE_SIZE - 1) },
            _p: PhantomData,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.f.bytes_written()
    }

    /// Returns `true` if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Write for SysfsBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.f.write_str(s)
    }
}

/// The `show` callback of a [`DeviceAttribute`]: writes the value to the buffer.
pub type ShowFn<T> = fn(&Device, &<T as Driver>::DeviceData, &mut SysfsBuf<'_>) -> Result;

/// The `store` callback of a [`DeviceAttribute`]: gets the bytes userspace wrote.
pub type StoreFn<T> = fn(&Device, &<T as Driver>::DeviceData, &[u8]) -> Result;

/// A vendor attribute of the mediated devices of driver `T`.
///
/// The callbacks get the device and the driver's data of it; `store` gets the bytes written.
pub struct DeviceAttribute<T: Driver> {
    name: &'static CStr,
    show: Option<ShowFn<T>>,
    store: Option<StoreFn<T>>,
}

impl<T: Driver> DeviceAttribute<T> {
    /// A read-only attribute (mode 0444).
    pub const fn read_only(name: &'static CStr, show: ShowFn<T>) -> Self {
        Self {
            name,
            show: Some(show),
            store: None,
        }
    }

    /// A write-only attribute (mode 0200).
    pub const fn write_only(name: &'static CStr, store: StoreFn<T>) -> Self {
        Self {
            name,
            show: None,
            store: Some(store),
        }
    }

    /// A read-write attribute (mode 0644).
    pub const fn read_write(name: &'static CStr, show: ShowFn<T>, store: StoreFn<T>) -> Self {
        Self {
            name,
            show: Some(show),
            store: Some(store),
        }
    }

    const fn mode(&self) -> u16 {
        (if self.show.is_some() { 0o444 } else { 0 })
            | (if self.store.is_some() { 0o200 } else { 0 })
    }
}

/// A device attribute in the driver's registration.
#[repr(C)]
struct AttrEntry<T: Driver> {
    raw: Opaque<bindings::device_attribute>,
    desc: &'static DeviceAttribute<T>,
}

/// The registration of a vendor driver (`mdev_register_driver()`); unregisters on drop.
///
/// Keep it in an [`Arc`] (`Arc::pin_init`): every [`ParentRegistration`] holds a reference.
///
/// # Invariants
///
/// `drv` is registered with the mdev core and points to `groups`, which points to `group`,
/// `attr_ptrs` and `attrs`; none of them moves or changes while registered.
pub struct DriverRegistration<T: Driver> {
    drv: Opaque<bindings::mdev_driver>,
    attrs: KVec<AttrEntry<T>>,
    attr_ptrs: KVec<*mut bindings::attribute>,
    group: Opaque<bindings::attribute_group>,
    groups: [*const bindings::attribute_group; 2],
    _pin: PhantomPinned,
}

// SAFETY: Its raw pointers point into itself or to `'static` data; `drop` only calls
// `mdev_unregister_driver()` (`driver_unregister()`, callable from any thread in process context)
// and frees memory. The callbacks only reach `T`'s data, which is `Send + Sync`.
unsafe impl<T: Driver> Send for DriverRegistration<T> {}
// SAFETY: `&DriverRegistration` exposes no data: its only `&self` method, the private `as_raw`,
// hands `drv` to `mdev_register_parent()`, and the core only reads it.
unsafe impl<T: Driver> Sync for DriverRegistration<T> {}

impl<T: Driver> DriverRegistration<T> {
    /// Registers `T` as the mdev driver `T::NAME` of `module`.
    pub fn new(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let init = move |slot: *mut Self| -> Result {
            let mut attrs = KVec::with_capacity(T::ATTRIBUTES.len(), GFP_KERNEL)?;
            for desc in T::ATTRIBUTES {
                // SAFETY: All-zero is a valid `device_attribute` (no callbacks, no name).
                let mut raw: bindings::device_attribute = unsafe { core::mem::zeroed() };
                raw.attr.name = desc.name.as_char_ptr();
                raw.attr.mode = desc.mode();
                #[cfg(CONFIG_DEBUG_LOCK_ALLOC)]
                {
                    raw.attr.key = crate::static_lock_class!().as_ptr();
                }
                if desc.show.is_some() {
                    raw.__bindgen_anon_1.show = Some(Adapter::<T>::attr_show);
                }
                if desc.store.is_some() {
                    raw.__bindgen_anon_2.store = Some(Adapter::<T>::attr_store);
                }
                attrs.push(
                    AttrEntry {
                        raw: Opaque::new(raw),
                        desc,
                    },
                    GFP_KERNEL,
                )?;
            }
            let mut attr_ptrs = KVec::with_capacity(attrs.len() + 1, GFP_KERNEL)?;
            for a in attrs.iter() {
                // SAFETY: Taking the address of a field of a valid attribute.
                attr_ptrs.push(unsafe { addr_of_mut!((*a.raw.get()).attr) }, GFP_KERNEL)?;
            }
            attr_ptrs.push(null_mut(), GFP_KERNEL)?;
            let has_attrs = !attrs.is_empty();
            // SAFETY: `slot` is valid for writes and pinned; the vectors' buffers do not move
            // when the vectors are moved into it.
            unsafe {
                // SAFETY: All-zero is a valid `attribute_group`.
                let mut group: bindings::attribute_group = core::mem::zeroed();
                group.name = T::ATTRIBUTE_GROUP.map_or(null(), |n| n.as_char_ptr());
                group.__bindgen_anon_2.attrs = attr_ptrs.as_mut_ptr();
                ptr::write(addr_of_mut!((*slot).attrs), attrs);
                ptr::write(addr_of_mut!((*slot).attr_ptrs), attr_ptrs);
                ptr::write(addr_of_mut!((*slot).group), Opaque::new(group));
                let gp = (*slot).group.get().cast_const();
                ptr::write(
                    addr_of_mut!((*slot).groups),
                    [if has_attrs { gp } else { null() }, null()],
                );
                // SAFETY: All-zero is a valid `mdev_driver`.
                let mut drv: bindings::mdev_driver = core::mem::zeroed();
                drv.device_api = T::DEVICE_API.as_char_ptr();
                drv.max_instances = T::max_instances();
                drv.probe = Some(Adapter::<T>::probe);
                drv.remove = Some(Adapter::<T>::remove);
                if T::HAS_AVAILABLE {
                    drv.get_available = Some(Adapter::<T>::get_available);
                }
                if T::HAS_DESCRIPTION {
                    drv.show_description = Some(Adapter::<T>::show_description);
                }
                drv.driver.name = T::NAME.as_char_ptr();
                drv.driver.owner = module.as_ptr();
                if has_attrs {
                    drv.driver.dev_groups = addr_of_mut!((*slot).groups).cast();
                }
                ptr::write(addr_of_mut!((*slot).drv), Opaque::new(drv));
                ptr::write(addr_of_mut!((*slot)._pin), PhantomPinned);
            }
            // SAFETY: `drv` was just written (so not registered) with a `device_api`; it is pinned
            // in `slot`, and nothing changes it or what it points to (`'static` or in `slot`) until
            // `drop` unregisters it, as `mdev_register_driver()` requires.
            let ret = to_result(unsafe { bindings::mdev_register_driver((*slot).drv.get()) });
            if ret.is_err() {
                // SAFETY: The fields were written above; nothing else refers to them.
                unsafe {
                    ptr::drop_in_place(addr_of_mut!((*slot).attrs));
                    ptr::drop_in_place(addr_of_mut!((*slot).attr_ptrs));
                }
            }
            ret
        };
        // SAFETY: On success every field is initialised; on failure the written fields are
        // dropped and the rest need no drop.
        unsafe { pin_init::pin_init_from_closure(init) }
    }

    fn as_raw(&self) -> *mut bindings::mdev_driver {
        self.drv.get()
    }
}

impl<T: Driver> Drop for DriverRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: Registered by `new` (type invariant) and unregistered only here, as
        // `mdev_unregister_driver()` requires. No parent uses it (each holds an `Arc` of it), and
        // `driver_unregister()` keeps no pointer into the fields once it returns.
        unsafe { bindings::mdev_unregister_driver(self.as_raw()) };
    }
}

/// Where a module keeps its [`DriverRegistration`] for the probes of a bus driver.
///
/// A parent that is a real device (a PCI function) is registered from its bus driver's probe,
/// which gets no module state, while the mdev driver is registered once per module. The module
/// puts its registration in a `static` slot in `init` and keeps the [`DriverSlotGuard`] until
/// its exit, which empties the slot; a probe takes a reference with [`DriverSlot::get`] (each
/// parent holds one, so the driver stays registered until its last parent is gone). As with
/// the `Arc` itself, a module must not leak a reference past its exit (`mem::forget`). Not for
/// interrupt handlers: the slot is a spinlock that disables local interrupts while held.
///
/// ```ignore
/// static DRIVER: mdev::DriverSlot<MyMdevDriver> = mdev::DriverSlot::new();
/// // Module::init:
/// let driver = Arc::pin_init(mdev::DriverRegistration::new(module), GFP_KERNEL)?;
/// let guard = DRIVER.set(driver)?; // kept in the module
/// // pci::Driver::probe:
/// let driver = DRIVER.get().ok_or(ENODEV)?;
/// ```
///
/// # Invariants
///
/// `reg` is only accessed by the thread that set `locked` from `false` to `true`, until it
/// stores `false` again.
pub struct DriverSlot<T: Driver> {
    locked: AtomicBool,
    reg: UnsafeCell<Option<Arc<DriverRegistration<T>>>>,
}

// SAFETY: `reg` is only accessed under `locked` (type invariant), with acquire/release ordering,
// so shared references on several threads never access it concurrently; what it holds
// (`Arc<DriverRegistration<T>>`) is `Send + Sync`.
unsafe impl<T: Driver> Sync for DriverSlot<T> {}

impl<T: Driver> Default for DriverSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Driver> DriverSlot<T> {
    /// An empty slot (for a `static`).
    pub const fn new() -> Self {
        Self {
            locked: AtomicBool::new(false),
            reg: UnsafeCell::new(None),
        }
    }

    /// Runs `f` on the slot's content with local interrupts off (a spinlock: `f` only moves or
    /// clones an `Arc`, it never sleeps or drops a registration).
    fn with<R>(&self, f: impl FnOnce(&mut Option<Arc<DriverRegistration<T>>>) -> R) -> R {
        // No preemption and no interrupt on this CPU while the bit is held, so a holder is
        // never waited for by its own CPU.
        let _irq = crate::interrupt::local_interrupt_disable();
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: This thread set `locked`: no other accesses `reg` until it is cleared below.
        let r = f(unsafe { &mut *self.reg.get() });
        self.locked.store(false, Ordering::Release);
        r
    }

    /// Puts `reg` in the slot until the returned guard is dropped (`EBUSY` if it is full).
    pub fn set(&self, reg: Arc<DriverRegistration<T>>) -> Result<DriverSlotGuard<'_, T>> {
        let mut reg = Some(reg);
        let full = self.with(|r| {
            if r.is_some() {
                return true;
            }
            *r = reg.take();
            false
        });
        // On `EBUSY`, `reg` still holds the caller's reference and drops it here, outside the lock.
        if full {
            return Err(EBUSY);
        }
        Ok(DriverSlotGuard(self))
    }

    /// A reference on the registration, if the module set one.
    pub fn get(&self) -> Option<Arc<DriverRegistration<T>>> {
        self.with(|r| r.clone())
    }
}

/// Empties a [`DriverSlot`] when dropped (see [`DriverSlot::set`]).
pub struct DriverSlotGuard<'a, T: Driver>(&'a DriverSlot<T>);

impl<T: Driver> Drop for DriverSlotGuard<'_, T> {
    fn drop(&mut self) {
        // Dropped outside the lock: the last reference unregisters the driver, which sleeps.
        drop(self.0.with(|r| r.take()));
    }
}

/// What a parent says about one of its types.
pub struct TypeInfo<D> {
    /// The type's sysfs name; the directory is `<driver>-<sysfs_name>`.
    pub sysfs_name: &'static CStr,
    /// The `name` file; `None` shows `sysfs_name`.
    pub pretty_name: Option<&'static CStr>,
    /// The type's class and its attributes (shown by the Rust mdev core only), if any.
    pub class: Option<super::TypeClass>,
    /// The driver's data of the type.
    pub data: D,
}

/// A type in a parent's registration.
#[repr(C)]
struct TypeEntry<T: Driver> {
    raw: Opaque<bindings::mdev_type>,
    /// What `raw.class` points to, if the type has a class.
    class: Option<Opaque<bindings::mdev_type_class>>,
    data: T::TypeData,
}

/// The registration of a parent device (`mdev_register_parent()`); unregisters on drop,
/// which first removes every mediated device of the parent.
///
/// Everything the core and the callbacks use lives in a separate allocation
/// (`ParentInner`), which this object owns through a raw pointer: `drop`, which gets
/// `&mut self`, never aliases the shared references that callbacks running concurrently hold
/// until `mdev_unregister_parent()` drained them.
///
/// # Invariants
///
/// `inner` points to a pinned `ParentInner<T>` allocated by `KBox` in [`Self::new`], owned by
/// this object and freed by its `drop`.
pub struct ParentRegistration<T: Driver> {
    inner: NonNull<ParentInner<T>>,
    _p: PhantomData<ParentInner<T>>,
}

/// The `struct mdev_parent` of a [`ParentRegistration`], with a pointer back to the rest.
///
/// # Invariants
///
/// `inner` points to the `ParentInner<T>` whose `parent` this is, while it is registered.
#[repr(C)]
struct ParentBox<T: Driver> {
    // First field: the core gives callbacks `*mut bindings::mdev_parent`.
    raw: Opaque<bindings::mdev_parent>,
    inner: *const ParentInner<T>,
}

/// What a [`ParentRegistration`] registers.
///
/// # Invariants
///
/// `parent` is registered with the core for `dev`, the driver of `driver` and the types of
/// `types` (through `type_ptrs`); none of them moves or changes while registered. `data` is
/// initialised until the registration's `drop`. The registration holds a reference on the
/// kobject of every type in `types`, so their release waits for it.
struct ParentInner<T: Driver> {
    // Dropped right after `mdev_unregister_parent()`: it may hold the last references on
    // removed mdevs (a driver that keeps its `vfio::Registration`s there, see
    // `samples/vfio-mdev/mdev_misuse.rs`), whose release reads their type and parent.
    data: ManuallyDrop<T::ParentData>,
    // The other fields drop in declaration order after every type's kobject was released.
    // In its own allocation, which a failed registration leaks with `types` (see `new`).
    parent: KBox<ParentBox<T>>,
    types: KVec<TypeEntry<T>>,
    type_ptrs: KVec<*mut bindings::mdev_type>,
    dev: ARef<device::Device>,
    driver: Arc<DriverRegistration<T>>,
    _pin: PhantomPinned,
}

impl<T: Driver> ParentInner<T> {
    /// The `struct mdev_parent` registered with the core.
    fn raw_parent(&self) -> *mut bindings::mdev_parent {
        self.parent.raw.get()
    }
}

// SAFETY: The registration only owns its `ParentInner`; the registered C structures in it are
// only used by the core under its locks, and its Rust fields are `Send + Sync` (`T::ParentData`,
// `T::TypeData`, `ARef`, `Arc`) or only read. Dropping it on another thread is fine:
// `mdev_unregister_parent()` may be called from any thread.
unsafe impl<T: Driver> Send for ParentRegistration<T> {}
// SAFETY: `&ParentRegistration` only gives out `&T::ParentData` (`Sync`) and the parent device.
unsafe impl<T: Driver> Sync for ParentRegistration<T> {}

impl<T: Driver> ParentRegistration<T> {
    /// Registers `dev` as a parent of mediated devices of `types`, driven by `driver`, with
    /// the parent data `data`.
    ///
    /// The types appear in `mdev_supported_types` in this order.
    pub fn new<E>(
        dev: &device::Device,
        driver: &Arc<DriverRegistration<T>>,
        types: KVec<TypeInfo<T::TypeData>>,
        data: impl PinInit<T::ParentData, E>,
    ) -> impl PinInit<Self, Error>
    where
        Error: From<E>,
    {
        let dev: ARef<device::Device> = dev.into();
        let driver = driver.clone();
        let init = move |slot: *mut ParentInner<T>| -> Result {
            // INVARIANT: `slot` is where the `ParentInner` is built, which this box goes into.
            let parent = KBox::new(
                ParentBox {
                    raw: Opaque::uninit(),
                    inner: slot,
                },
                GFP_KERNEL,
            )?;
            let mut entries = KVec::with_capacity(types.len(), GFP_KERNEL)?;
            for info in types {
                // The core names the type's directory after it, as sysfs would rename a `/`.
                let name = info.sysfs_name.to_bytes();
                if name.is_empty() || name.contains(&b'/') {
                    return Err(EINVAL);
                }
                // SAFETY: All-zero is a valid `mdev_type` before registration.
                let mut raw: bindings::mdev_type = unsafe { core::mem::zeroed() };
                raw.sysfs_name = info.sysfs_name.as_char_ptr();
                raw.pretty_name = info.pretty_name.map_or(null(), |n| n.as_char_ptr());
                entries.push(
                    TypeEntry {
                        raw: Opaque::new(raw),
                        class: info.class.map(|c| Opaque::new(c.to_raw())),
                        data: info.data,
                    },
                    GFP_KERNEL,
                )?;
            }
            // The entries are in place (the vector had the capacity): point each type to its
            // class. The buffer does not move when the vector moves below.
            for e in entries.iter() {
                if let Some(c) = &e.class {
                    // SAFETY: Not registered yet: nothing else reads `raw`.
                    unsafe { (*e.raw.get()).class = c.get() };
                }
            }
            // Two types of one name would collide in sysfs (a `kobject_add()` failure).
            for (i, a) in entries.iter().enumerate() {
                // SAFETY: `sysfs_name` was set above from a `&'static CStr`.
                let name =
                    |e: &TypeEntry<T>| unsafe { CStr::from_char_ptr((*e.raw.get()).sysfs_name) };
                if entries.iter().skip(i + 1).any(|b| name(a) == name(b)) {
                    return Err(EEXIST);
                }
            }
            let mut type_ptrs = KVec::with_capacity(entries.len(), GFP_KERNEL)?;
            for e in entries.iter() {
                type_ptrs.push(e.raw.get(), GFP_KERNEL)?;
            }
            let nr = type_ptrs.len() as c_uint;
            // SAFETY: `slot` is valid for writes and pinned. The entries' buffer does not move
            // when the vector moves into it.
            unsafe {
                ptr::write(addr_of_mut!((*slot).parent), parent);
                ptr::write(addr_of_mut!((*slot).types), entries);
                ptr::write(addr_of_mut!((*slot).type_ptrs), type_ptrs);
                ptr::write(addr_of_mut!((*slot).dev), dev);
                ptr::write(addr_of_mut!((*slot).driver), driver);
                ptr::write(addr_of_mut!((*slot)._pin), PhantomPinned);
            }
            let drop_fields = |slot: *mut ParentInner<T>| {
                // SAFETY: These fields were written above and are not referenced elsewhere.
                unsafe {
                    ptr::drop_in_place(addr_of_mut!((*slot).parent));
                    ptr::drop_in_place(addr_of_mut!((*slot).types));
                    ptr::drop_in_place(addr_of_mut!((*slot).type_ptrs));
                    ptr::drop_in_place(addr_of_mut!((*slot).dev));
                    ptr::drop_in_place(addr_of_mut!((*slot).driver));
                }
            };
            // SAFETY: `data` is pinned in `slot`, which does not move; `ManuallyDrop` is
            // `repr(transparent)`.
            let data_slot = unsafe { addr_of_mut!((*slot).data) }.cast::<T::ParentData>();
            // SAFETY: `data_slot` is the uninitialised, pinned `data` field of `slot`, valid for
            // writes; on `Err` it is not touched again (only the other fields are dropped).
            if let Err(e) = unsafe { pin_init::raw_try_init(data_slot, data) } {
                drop_fields(slot);
                return Err(e.into());
            }
            // SAFETY: As `mdev_register_parent()` requires: `type_ptrs` has `nr` types set up per
            // `mdev.h`; `parent` (the core initialises it) and the types stay in `slot`, and `dev`
            // and `driver` (registered) are held, until every type's release ran (`drop`; below).
            let ret = to_result(unsafe {
                bindings::mdev_register_parent(
                    (*slot).raw_parent(),
                    (*slot).dev.as_raw(),
                    (*slot).driver.as_raw(),
                    (*slot).type_ptrs.as_mut_ptr(),
                    nr,
                )
            });
            if let Err(e) = ret {
                // SAFETY: `data` was initialised above. Before failing, the core removed the type
                // files (`kobject_del()` drains the callbacks that borrow `data`); the Rust core
                // held `unreg_sem` for writing meanwhile, so no mdev was probed. (The C core does
                // not: an mdev created during a registration it fails outlives it, a C core bug
                // that the vendor guide's safety contract names.)
                unsafe { ptr::drop_in_place(data_slot) };
                // The core put the kobjects of the types it had added, and their releases
                // (which read `parent` and the types) may still run, deferred or on another
                // thread, with nothing that tells when they are done: a reference count of 0
                // is seen before the release ran. So the types and `parent` are leaked (with
                // the types' data, never dropped); the rest goes.
                crate::pr_warn!(
                    "mdev: registering a parent failed ({:?}): its types are leaked\n",
                    e
                );
                // SAFETY: The fields were written above; `types` and `parent` are moved out and
                // forgotten, so their memory stays allocated; the other three are not referenced
                // by the core after the failure and are dropped once.
                unsafe {
                    core::mem::forget(ptr::read(addr_of!((*slot).types)));
                    core::mem::forget(ptr::read(addr_of!((*slot).parent)));
                    ptr::drop_in_place(addr_of_mut!((*slot).type_ptrs));
                    ptr::drop_in_place(addr_of_mut!((*slot).dev));
                    ptr::drop_in_place(addr_of_mut!((*slot).driver));
                }
                return Err(e);
            }
            // INVARIANT: A reference on each type's kobject, which the core initialised in
            // `mdev_register_parent()`; `drop` puts them.
            // SAFETY: Registered: the kobjects are initialised and alive.
            for e in unsafe { (*slot).types.iter() } {
                // SAFETY: `mdev_register_parent()` succeeded: the core initialised each type's
                // kobject and holds a reference on it until `mdev_unregister_parent()`.
                unsafe { bindings::kobject_get(addr_of_mut!((*e.raw.get()).kobj)) };
            }
            Ok(())
        };
        // SAFETY: On success every field is initialised; on failure everything written was
        // dropped.
        let inner = unsafe { pin_init::pin_init_from_closure::<_, Error>(init) };
        let outer = move |slot: *mut Self| -> Result {
            let inner = KBox::pin_init::<Error>(inner, GFP_KERNEL)?;
            // SAFETY: The allocation is never moved out of: it is freed in place by `drop`.
            let inner = KBox::into_raw(unsafe { Pin::into_inner_unchecked(inner) });
            // SAFETY: `slot` is valid for writes. `KBox::into_raw` never returns NULL.
            // INVARIANT: A pinned `ParentInner<T>` from `KBox`, owned by the new object.
            unsafe {
                ptr::write(
                    slot,
                    Self {
                        inner: NonNull::new_unchecked(inner),
                        _p: PhantomData,
                    },
                )
            };
            Ok(())
        };
        // SAFETY: On success `slot` is initialised; on failure nothing was written.
        unsafe { pin_init::pin_init_from_closure(outer) }
    }

    fn inner(&self) -> &ParentInner<T> {
        // SAFETY: Owned and alive until `drop` (type invariant); shared references are all the
        // C side and the callbacks create too.
        unsafe { self.inner.as_ref() }
    }

    /// The parent's data.
    pub fn data(&self) -> &T::ParentData {
        &self.inner().data
    }

    /// The parent device.
    pub fn device(&self) -> &device::Device {
        &self.inner().dev
    }
}

impl<T: Driver> Drop for ParentRegistration<T> {
    fn drop(&mut self) {
        let inner = self.inner.as_ptr();
        // SAFETY: Registered (invariant of `ParentInner`). This removes every mdev of the parent
        // (calling `Driver::remove`) and the types' sysfs files, and drains the callbacks: after
        // it nothing but this function reaches `inner`, except mdev and type releases, which
        // only use `parent` and the C part of `types`.
        unsafe { bindings::mdev_unregister_parent((*inner).raw_parent()) };
        // SAFETY: Initialised (invariant of `ParentInner`), dropped once, here; the callbacks
        // that borrowed it are gone, so this `&mut` to the field is unique.
        unsafe { ManuallyDrop::drop(&mut (*inner).data) };
        // SAFETY: `types` is alive and only read.
        for e in unsafe { (*inner).types.iter() } {
            // SAFETY: We hold a reference on the type's kobject (invariant of `ParentInner`),
            // which this drops; nothing else puts it on our behalf.
            unsafe { wait_released(addr_of_mut!((*e.raw.get()).kobj)) };
        }
        // SAFETY: Allocated by `KBox` in `new` and owned (type invariant); every type and mdev
        // is released, so nothing refers to it any more. The other fields drop now.
        drop(unsafe { KBox::from_raw(inner) });
    }
}

/// Drops our reference on the kobject of an unregistered type and returns once it is released.
///
/// Removing an mdev does not release it: whoever holds a reference on its `struct device`
/// (any driver can take one) keeps it, and its release, which reads its type and parent and
/// then puts the type's kobject, runs when the last one goes. The type's own release (which
/// puts the parent device) may be deferred as well (`CONFIG_DEBUG_KOBJECT_RELEASE`). So wait
/// until only our reference is left (every mdev of the type released, the `devices`
/// directory gone), then drop it and, if the release is deferred, wait for the deferred work.
/// A reference kept forever (an `ARef` of an mdev stored somewhere that outlives the parent
/// registration) makes this wait forever, with a warning every minute, rather than free
/// memory in use.
///
/// # Safety
///
/// `kobj` is the kobject of a type that was registered and is unregistered now, in memory that
/// stays valid until this returns (a type's release does not free it), and the caller owns a
/// reference on it, which this drops.
unsafe fn wait_released(kobj: *mut bindings::kobject) {
    // SAFETY: The memory stays valid, the type is unregistered (no new references) and we own a
    // reference (function safety requirements), as `wait_last_ref` requires.
    unsafe { wait_last_ref(kobj) };
    // SAFETY: Our reference (function safety requirements); the last one, so this releases.
    unsafe { bindings::kobject_put(kobj) };
    // SAFETY: Initialised (it was registered); the put above, on this thread, dropped its last
    // reference; the memory stays valid (function safety requirements).
    unsafe { flush_release(kobj) };
}

/// Waits until the kobject of a type has one reference left, the caller's (polling: the core
/// gives no signal).
///
/// # Safety
///
/// `kobj` is the kobject of a type in memory that stays valid, nobody takes new references on
/// it (the type is not registered), and the caller owns one.
unsafe fn wait_last_ref(kobj: *mut bindings::kobject) {
    // SAFETY: `refs` is the `atomic_t` counter of the kobject's `kref`, in memory that stays
    // valid (function safety requirements); C only accesses it atomically, and `AtomicI32` has
    // the layout of `int`.
    let count = unsafe { AtomicI32::from_ptr(addr_of_mut!((*kobj).kref.refcount.refs.counter)) };
    let mut waited = 0u32;
    // Acquire: pairs with the release ordering of `kobject_put()` (`refcount_dec_and_test()`),
    // the last access of a released mdev to its type.
    while count.load(Ordering::Acquire) > 1 {
        crate::time::delay::fsleep(crate::time::Delta::from_millis(10));
        waited += 1;
        if waited % 6000 == 0 {
            // SAFETY: The core named the kobject when adding it, and only its release frees the
            // name, which the caller's reference holds off.
            let name = unsafe { CStr::from_char_ptr((*kobj).name) };
            crate::pr_warn!(
                "mdev: parent unregistration waits for the last reference on type {}: an mdev of it is still referenced\n",
                name.to_str().unwrap_or("?")
            );
        }
    }
}

/// Waits for the deferred release of a kobject (`CONFIG_DEBUG_KOBJECT_RELEASE`) whose last
/// reference is gone; nothing otherwise, as the release ran in the last `kobject_put()`.
///
/// # Safety
///
/// `kobj` was initialised, the `kobject_put()` that dropped its last reference has returned (so
/// a deferred release is queued), and its memory stays valid.
unsafe fn flush_release(kobj: *mut bindings::kobject) {
    #[cfg(CONFIG_DEBUG_KOBJECT_RELEASE)]
    // SAFETY: The last put queued the release in the kobject's own `release` work item; the
    // memory stays valid until this returns, and the work does not free it.
    unsafe {
        bindings::flush_delayed_work(addr_of_mut!((*kobj).release));
    }
    #[cfg(not(CONFIG_DEBUG_KOBJECT_RELEASE))]
    let _ = kobj;
}

struct Adapter<T: Driver>(PhantomData<T>);

impl<T: Driver> Adapter<T> {
    /// Returns the parent registration and the type entry of `mtype`.
    ///
    /// # Safety
    ///
    /// `mtype` must be a type registered by a [`ParentRegistration<T>`], which must stay
    /// registered for `'a`.
    unsafe fn context<'a>(
        mtype: *mut bindings::mdev_type,
    ) -> (&'a ParentInner<T>, &'a TypeEntry<T>) {
        // SAFETY: The caller guarantees `mtype` is the `raw` field, at offset 0, of a
        // `TypeEntry<T>` (`repr(C)`).
        let ty = unsafe { &*mtype.cast::<TypeEntry<T>>() };
        // SAFETY: The core set `parent` to the `mdev_parent` that the registration passed to
        // `mdev_register_parent()`: the `raw` field, at offset 0, of a `ParentBox<T>`
        // (`repr(C)`), whose `inner` points to its `ParentInner<T>` while the type is
        // registered (invariant of `ParentBox`), which the caller guarantees for `'a`.
        let parent = unsafe { &*(*(*mtype).parent.cast::<ParentBox<T>>()).inner };
        (parent, ty)
    }

    /// # Safety
    ///
    /// Called by the core with a new mdev of a type of a [`ParentRegistration<T>`] (only those
    /// parents use this driver), while the parent is registered.
    unsafe extern "C" fn probe(mdev: *mut bindings::mdev_device) -> c_int {
        // SAFETY: `Device<Ctx>` is `repr(transparent)` over the C struct for every `Ctx` (a
        // zero-sized marker), so the cast is a plain reborrow. The core holds a reference on
        // the device during probe, and the driver core calls `probe` from the bus callback that
        // binds it to this driver, with the device lock held: the `Core` context, for the
        // duration of this call only (the lifetime is local).
        let m = unsafe { &*mdev.cast::<Device<device::Core<'_>>>() };
        // SAFETY: The mdev's type was registered by a `ParentRegistration<T>` (only those use this
        // driver), and `create` holds the parent's `unreg_sem` for reading across this probe, so
        // `mdev_unregister_parent()`, which the registration's `drop` calls first, waits for us.
        let (parent, ty) = unsafe { Self::context(m.mdev_type().as_raw()) };
        from_result(|| {
            let data = T::probe(m, &parent.data, &ty.data)?;
            let data = KBox::new(data, GFP_KERNEL)?;
            // SAFETY: The driver core calls `probe` with the device lock held and creates this
            // driver's `dev_groups` (the readers of `driver_data`) only after it returns; `remove`
            // takes the `KBox` back, also when `really_probe()` fails after a successful `probe`.
            unsafe { (*mdev).dev.driver_data = data.into_foreign() };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the core with an mdev that [`Self::probe`] bound.
    unsafe extern "C" fn remove(mdev: *mut bindings::mdev_device) {
        // SAFETY: `Device<Ctx>` is `repr(transparent)` over the C struct for every `Ctx`, so the
        // cast is a reborrow. Every path into `device_remove()` holds a reference on the device and
        // its lock, with the driver still bound: the `Core` context, for this call only.
        let m = unsafe { &*mdev.cast::<Device<device::Core<'_>>>() };
        // SAFETY: `probe` stored a `KBox<T::DeviceData>` with `into_foreign`, and the driver core
        // calls `remove` once per successful `probe`; `device_remove()` removed the `dev_groups`
        // (draining `attr_context`'s borrows) before calling it.
        let data: KBox<T::DeviceData> = unsafe {
            let p = (*mdev).dev.driver_data;
            (*mdev).dev.driver_data = null_mut();
            KBox::from_foreign(p)
        };
        T::remove(m, KBox::into_inner(data));
    }

    /// # Safety
    ///
    /// Called by the core with a registered type of a [`ParentRegistration<T>`].
    unsafe extern "C" fn get_available(mtype: *mut bindings::mdev_type) -> c_uint {
        // SAFETY: The core calls `get_available` of this driver only for types of parents
        // registered with it, i.e. of `ParentRegistration<T>`s, from the type's
        // `available_instances` attribute, which is removed (draining callers) before the
        // registration's `drop` returns.
        let (parent, ty) = unsafe { Self::context(mtype) };
        T::available(&parent.data, &ty.data)
    }

    /// # Safety
    ///
    /// Called by the core with a registered type of a [`ParentRegistration<T>`] and the
    /// `PAGE_SIZE` buffer of the type's `description` file.
    unsafe extern "C" fn show_description(
        mtype: *mut bindings::mdev_type,
        buf: *mut c_char,
    ) -> isize {
        // SAFETY: As in `get_available`: a type of a `ParentRegistration<T>`, from its
        // `description` attribute, which unregistration removes before the type goes.
        let (parent, ty) = unsafe { Self::context(mtype) };
        // SAFETY: The core passes on the buffer of its `show`, which `sysfs_kf_seq_show()` makes
        // `PAGE_SIZE` writable bytes for the call; `b` does not outlive it.
        let mut b = unsafe { SysfsBuf::new(buf) };
        from_result(|| {
            T::description(&parent.data, &ty.data, &mut b)?;
            Ok(b.len() as isize)
        })
    }

    /// Returns the mdev, the vendor attribute and the driver data for a vendor attribute call.
    ///
    /// # Safety
    ///
    /// `dev` must be a bound mdev of this driver and `attr` one of its vendor attributes.
    unsafe fn attr_context<'a>(
        dev: *mut bindings::device,
        attr: *mut bindings::device_attribute,
    ) -> Result<(&'a Device, &'a DeviceAttribute<T>, &'a T::DeviceData)> {
        // SAFETY: `attr` is the `raw` field, at offset 0, of an `AttrEntry<T>` (`repr(C)`).
        let entry = unsafe { &*attr.cast::<AttrEntry<T>>() };
        // SAFETY: `dev` has this driver's `dev_groups`, which exist only on mdevs bound to it
        // (function safety requirements); the driver core removes them, draining this callback,
        // before unbinding and deleting the mdev, so it stays alive for the call.
        let m = unsafe { Device::from_dev(dev) };
        // SAFETY: The driver core creates the attributes after `probe` and removes them before
        // `remove`, so the driver data is NULL or the `KBox<T::DeviceData>` `probe` stored with
        // `into_foreign`, which `remove` takes back only after the attributes are gone.
        let p = unsafe { (*dev).driver_data };
        if p.is_null() {
            return Err(ENODEV);
        }
        // SAFETY: `p` is not NULL, so it is the `KBox<T::DeviceData>` that `probe` stored with
        // `into_foreign`; `remove` takes it back only after the driver core removed this
        // attribute, which waits for running callbacks, and the borrow ends with the callback.
        let data = unsafe { <KBox<T::DeviceData> as ForeignOwnable>::borrow(p) };
        Ok((m, entry.desc, data))
    }

    /// # Safety
    ///
    /// Called by sysfs with a bound mdev of this driver, one of its vendor attributes and a
    /// `PAGE_SIZE` buffer.
    unsafe extern "C" fn attr_show(
        dev: *mut bindings::device,
        attr: *mut bindings::device_attribute,
        buf: *mut c_char,
    ) -> isize {
        from_result(|| {
            // SAFETY: sysfs calls `show` of an attribute of `T::ATTRIBUTES` (only this driver's
            // `dev_groups` point to `attr_show`), which the driver core creates on mdevs bound
            // to this driver: `dev` is such an mdev and `attr` such an attribute.
            let (m, desc, data) = unsafe { Self::attr_context(dev, attr) }?;
            let show = desc.show.ok_or(EIO)?;
            // SAFETY: `dev_attr_show()` passes on the buffer of `sysfs_kf_seq_show()`, which has
            // `PAGE_SIZE` writable bytes for the call; `b` does not outlive it.
            let mut b = unsafe { SysfsBuf::new(buf) };
            show(m, data, &mut b)?;
            Ok(b.len() as isize)
        })
    }

    /// # Safety
    ///
    /// Called by sysfs with a bound mdev of this driver, one of its vendor attributes and
    /// `count` bytes at `buf`.
    unsafe extern "C" fn attr_store(
        dev: *mut bindings::device,
        attr: *mut bindings::device_attribute,
        buf: *const c_char,
        count: usize,
    ) -> isize {
        from_result(|| {
            // SAFETY: As in `attr_show`: `dev` is a bound mdev of this driver and `attr` one of
            // its `T::ATTRIBUTES`.
            let (m, desc, data) = unsafe { Self::attr_context(dev, attr) }?;
            let store = desc.store.ok_or(EIO)?;
            // SAFETY: `kernfs_fop_write_iter()` copied what userspace wrote into a buffer whose
            // `count` bytes `sysfs_kf_write()` and `dev_attr_store()` pass on, valid for the call.
            let bytes = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
            store(m, data, bytes)?;
            Ok(count as isize)
        })
    }
}
