// SPDX-License-Identifier: GPL-2.0

//! Mediated devices (mdev).
//!
//! C header: [`include/linux/mdev.h`](srctree/include/linux/mdev.h)
//!
//! A parent device ([`Parent`], `struct mdev_parent`) offers types ([`Type`],
//! `struct mdev_type`), of which userspace creates mediated devices ([`Device`],
//! `struct mdev_device`) that the parent's vendor driver (`struct mdev_driver`) binds. These
//! wrappers are `#[repr(transparent)]` read-only views of the C structures, which vendor
//! drivers or the mdev core allocate; they never own them, and offer no operation of the core.
//!
//! Rust vendor drivers implement [`Driver`] and register it with [`DriverRegistration`]; each
//! parent device is registered with a [`ParentRegistration`] (see the `vendor` module below and
//! `samples/vfio-mdev/mtty_rs.rs`). The mdev core itself (`drivers/vfio/mdev/`) keeps its glue
//! to itself.

use crate::{
    bindings, device,
    str::{CStr, CStrExt as _},
    types::Opaque,
    uuid::Guid,
};
use core::marker::PhantomData;

mod vendor;

pub use vendor::{
    DeviceAttribute, Driver, DriverRegistration, DriverSlot, DriverSlotGuard, ParentRegistration,
    ShowFn, StoreFn, SysfsBuf, TypeInfo,
};

/// A mediated device type (`struct mdev_type`).
///
/// # Invariants
///
/// `self.0` is a `struct mdev_type` that was passed to `mdev_register_parent()`: `sysfs_name`
/// points to a NUL-terminated string, `pretty_name` is NULL or points to one, and `parent` points
/// to its [`Parent`] (set by the core as it adds the type; only the core's registration loop
/// sees the type earlier); `class` is NULL or points to a `struct mdev_type_class` whose `name`
/// is NULL or points to a NUL-terminated string. All stay valid and unchanged until every type of that parent has been
/// released, as `mdev_register_parent()` requires; in particular while the type is registered or
/// an mdev of it holds a reference (a [`ParentRegistration`] frees nothing before the releases of
/// all its types).
#[repr(transparent)]
pub struct Type(Opaque<bindings::mdev_type>);

impl Type {
    /// Creates a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a `struct mdev_type` for which the type invariants hold for `'a`,
    /// e.g. one that stays registered, or referenced by an mdev, for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::mdev_type) -> &'a Self {
        // SAFETY: `Type` is `repr(transparent)` over `Opaque<mdev_type>`, so the cast keeps the
        // layout and lets C keep using the struct; the caller guarantees the type invariants
        // for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// Returns the raw pointer.
    pub fn as_raw(&self) -> *mut bindings::mdev_type {
        self.0.get()
    }

    /// Returns the name the vendor driver gave the type (`sysfs_name`).
    pub fn sysfs_name(&self) -> &CStr {
        // SAFETY: By the type invariants `sysfs_name` is a valid NUL-terminated string.
        unsafe { CStr::from_char_ptr((*self.as_raw()).sysfs_name) }
    }

    /// Returns the human-readable name (`pretty_name`), if the vendor driver set one.
    pub fn pretty_name(&self) -> Option<&CStr> {
        // SAFETY: By the type invariants `pretty_name` is NULL or a valid string.
        let p = unsafe { (*self.as_raw()).pretty_name };
        if p.is_null() {
            None
        } else {
            // SAFETY: Checked for NULL above; valid by the type invariants.
            Some(unsafe { CStr::from_char_ptr(p) })
        }
    }

    /// Returns the class the vendor driver declared for the type, if any.
    ///
    /// `None` also for a class this crate does not know (a C driver may name any).
    pub fn class(&self) -> Option<TypeClass> {
        let c = self.class_raw()?;
        // SAFETY: By the type invariants `name` is a valid string.
        let name = unsafe { CStr::from_char_ptr(c.name) };
        (name == TypeClass::GPU).then_some(TypeClass::Gpu {
            fb_length: c.fb_length,
            hres: c.hres,
            vres: c.vres,
            heads: c.heads,
        })
    }

    /// Returns the name of the class the vendor driver declared for the type, if any.
    pub fn class_name(&self) -> Option<&CStr> {
        let c = self.class_raw()?;
        // SAFETY: By the type invariants `name` is a valid string.
        Some(unsafe { CStr::from_char_ptr(c.name) })
    }

    /// The class, if the type has one with a name (a C driver might leave `name` NULL,
    /// which counts as no class).
    fn class_raw(&self) -> Option<&bindings::mdev_type_class> {
        // SAFETY: By the type invariants `class` is NULL or points to a valid, unchanging
        // `struct mdev_type_class` for as long as `self` is borrowed.
        let c = unsafe { (*self.as_raw()).class.as_ref() }?;
        (!c.name.is_null()).then_some(c)
    }

    /// Returns the parent the type belongs to.
    pub fn parent(&self) -> &Parent {
        // SAFETY: By the type invariants `parent` points to the type's parent, whose invariants
        // hold as long as this type's do (until its last type is released), i.e. while `self`
        // is borrowed.
        unsafe { Parent::from_raw((*self.as_raw()).parent) }
    }
}

/// The class of a type and the attributes that class defines (`struct mdev_type_class`).
///
/// A Rust vendor driver declares it in [`TypeInfo::class`]; the Rust mdev core then shows
/// `class` and the class's attributes in the type's directory (see
/// `Documentation/ABI/testing/sysfs-class-mdev_bus-class`). The C core ignores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeClass {
    /// `gpu`: a virtual GPU, with `fb_length`, `resolution` and `heads`.
    Gpu {
        /// Framebuffer size in bytes (`fb_length`, shown as `<number>{K,M,G}`).
        fb_length: u64,
        /// Horizontal resolution in pixels (`resolution`, `<hres>x<vres>`).
        hres: u32,
        /// Vertical resolution in pixels.
        vres: u32,
        /// Number of display heads (`heads`).
        heads: u32,
    },
}

impl TypeClass {
    /// The name of the `gpu` class.
    pub const GPU: &'static CStr = crate::c_str!("gpu");

    /// The class's name, as the `class` file shows it.
    pub const fn name(&self) -> &'static CStr {
        match self {
            Self::Gpu { .. } => Self::GPU,
        }
    }

    /// The C description of the class.
    pub(crate) fn to_raw(self) -> bindings::mdev_type_class {
        match self {
            Self::Gpu {
                fb_length,
                hres,
                vres,
                heads,
            } => bindings::mdev_type_class {
                name: Self::GPU.as_char_ptr(),
                fb_length,
                hres,
                vres,
                heads,
            },
        }
    }

    /// A size in bytes as `fb_length` shows it: the largest of G, M and K (binary units) that
    /// divides it exactly, else kilobytes rounded up.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::mdev::TypeClass;
    ///
    /// assert_eq!(TypeClass::size_with_unit(2 << 20), (2, 'M'));
    /// assert_eq!(TypeClass::size_with_unit(3 << 30), (3, 'G'));
    /// assert_eq!(TypeClass::size_with_unit(1536 << 20), (1536, 'M'));
    /// assert_eq!(TypeClass::size_with_unit(1228800), (1200, 'K'));
    /// assert_eq!(TypeClass::size_with_unit(1000), (1, 'K'));
    /// assert_eq!(TypeClass::size_with_unit(0), (0, 'K'));
    /// ```
    pub const fn size_with_unit(bytes: u64) -> (u64, char) {
        const K: u64 = 1 << 10;
        const M: u64 = 1 << 20;
        const G: u64 = 1 << 30;
        if bytes != 0 && bytes % G == 0 {
            (bytes / G, 'G')
        } else if bytes != 0 && bytes % M == 0 {
            (bytes / M, 'M')
        } else {
            (bytes.div_ceil(K), 'K')
        }
    }
}

/// A parent of mediated devices (`struct mdev_parent`).
///
/// # Invariants
///
/// `self.0` is a `struct mdev_parent` embedded in a vendor structure, from the end of the
/// core's initialisation in `mdev_register_parent()` on: `dev`, `mdev_driver` (a driver
/// registered with the core) and `types` (`nr_types` entries) are valid and unchanged until the
/// release of the last of its types, as `mdev_register_parent()` requires (see [`Type`]).
#[repr(transparent)]
pub struct Parent(Opaque<bindings::mdev_parent>);

impl Parent {
    /// Creates a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a `struct mdev_parent` for which the type invariants hold for `'a`,
    /// e.g. one that stays registered for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::mdev_parent) -> &'a Self {
        // SAFETY: `Parent` is `repr(transparent)` over `Opaque<mdev_parent>`, so the cast keeps
        // the layout and lets C keep using the struct; the caller guarantees the type
        // invariants for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// Returns the raw pointer.
    pub fn as_raw(&self) -> *mut bindings::mdev_parent {
        self.0.get()
    }

    /// Returns the parent device.
    pub fn device(&self) -> &device::Device {
        // SAFETY: By the type invariants `dev` is a valid device, with references for as long
        // as `self` is borrowed: the caller of `mdev_register_parent()` holds one until
        // unregistration, and every type one from its addition to its release.
        unsafe { device::Device::from_raw((*self.as_raw()).dev) }
    }

    /// Returns the parent's types.
    pub fn types(&self) -> impl Iterator<Item = &Type> + '_ {
        // SAFETY: By the type invariants `types` has `nr_types` valid entries.
        let (types, n) = unsafe { ((*self.as_raw()).types, (*self.as_raw()).nr_types) };
        (0..n as usize).map(move |i| {
            // SAFETY: `i < nr_types`; each entry is a type passed to `mdev_register_parent()`
            // with this parent, whose invariants hold as long as the parent's (until its last
            // type is released).
            unsafe { Type::from_raw(*types.add(i)) }
        })
    }
}

/// A mediated device (`struct mdev_device`).
///
/// `Ctx` is the [`device::DeviceContext`] in which the reference was handed out: a vendor
/// driver's [`Driver::probe`] and [`Driver::remove`] get a `&Device<Core<'_>>`, which
/// dereferences to `&Device<Bound>` (the mdev is bound to the vendor driver for as long as the
/// reference lives, which is what [`crate::vfio::Registration::new`] requires) and to
/// `&Device` ([`device::Normal`]), the view everywhere else.
///
/// # Invariants
///
/// `self.0` is a `struct mdev_device` allocated by the core with `device_initialize()` done and
/// a reference held by whoever holds the `&Device`; `type_` points to a [`Type`] on which the
/// device holds a kobject reference. For `Ctx` other than [`device::Normal`], the device is
/// bound to a driver for the lifetime of the reference, as [`device::Device<Ctx>`] requires.
#[repr(transparent)]
pub struct Device<Ctx: device::DeviceContext = device::Normal>(
    Opaque<bindings::mdev_device>,
    PhantomData<Ctx>,
);

// SAFETY: `Device<Ctx>` is `repr(transparent)` over `Opaque<bindings::mdev_device>` (the
// `PhantomData<Ctx>` is zero-sized), so its layout does not depend on `Ctx` and a reference in
// one context may be reinterpreted as a reference in a weaker one; `AsRef` below hands out the
// embedded `struct device` in the same context.
kernel::impl_device_context_deref!(unsafe { Device });

impl<Ctx: device::DeviceContext> AsRef<device::Device<Ctx>> for Device<Ctx> {
    fn as_ref(&self) -> &device::Device<Ctx> {
        // SAFETY: The embedded device is initialised, and whoever holds `self` holds a
        // reference on it for the borrow (type invariants); its context is `Ctx` by the type
        // invariants.
        unsafe { device::Device::from_raw(self.raw_device()) }
    }
}

impl<Ctx: device::DeviceContext> Device<Ctx> {
    /// Returns the raw pointer.
    pub fn as_raw(&self) -> *mut bindings::mdev_device {
        self.0.get()
    }

    /// Returns the raw pointer to the embedded `struct device`.
    pub fn raw_device(&self) -> *mut bindings::device {
        // SAFETY: `self.as_raw()` points to a live `struct mdev_device` (type invariants), so
        // the projection to its `dev` field stays inside it.
        unsafe { core::ptr::addr_of_mut!((*self.as_raw()).dev) }
    }

    /// Returns the embedded device, in the context of this reference.
    pub fn device(&self) -> &device::Device<Ctx> {
        self.as_ref()
    }

    /// Returns the device's UUID.
    pub fn uuid(&self) -> Guid {
        // SAFETY: `uuid` is set before the device is visible and never changes.
        Guid::from_raw(unsafe { &(*self.as_raw()).uuid })
    }

    /// Returns the device's type.
    pub fn mdev_type(&self) -> &Type {
        // SAFETY: The device holds a reference on its type's kobject until the device's
        // release, which cannot run while `self` is borrowed (type invariants), so the
        // invariants of `Type` hold for the borrow.
        unsafe { Type::from_raw((*self.as_raw()).type_) }
    }

    /// Returns the device's parent.
    pub fn parent(&self) -> &Parent {
        self.mdev_type().parent()
    }
}

impl Device {
    /// Creates a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a live `struct mdev_device` (see the type invariants) for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::mdev_device) -> &'a Self {
        // SAFETY: `Device` is `repr(transparent)` over `Opaque<mdev_device>`; the caller
        // guarantees a live mdev, on which a reference is held for `'a`, as the type invariants
        // require.
        unsafe { &*ptr.cast() }
    }

    /// Creates a reference from the embedded `struct device`.
    ///
    /// # Safety
    ///
    /// `dev` must be the `dev` field of a live `struct mdev_device`, for `'a`.
    pub unsafe fn from_dev<'a>(dev: *mut bindings::device) -> &'a Self {
        // SAFETY: The caller guarantees `dev` is embedded in a `struct mdev_device`.
        let mdev = unsafe { crate::container_of!(dev, bindings::mdev_device, dev) };
        // SAFETY: Live for `'a`, as the caller guarantees.
        unsafe { Self::from_raw(mdev) }
    }
}
