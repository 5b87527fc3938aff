// SPDX-License-Identifier: GPL-2.0

//! Mediated devices (mdev).
//!
//! C header: [`include/linux/mdev.h`](srctree/include/linux/mdev.h)
//!
//! A parent device ([`Parent`], `struct mdev_parent`) offers types ([`Type`],
//! `struct mdev_type`), of which userspace creates mediated devices ([`Device`],
//! `struct mdev_device`) that the parent's vendor driver (`struct mdev_driver`, seen as
//! [`DriverDesc`]) binds. These wrappers are `#[repr(transparent)]` views of the C structures,
//! which C vendor drivers or the core allocate; they never own them.
//!
//! Rust vendor drivers implement [`Driver`] and register it with [`DriverRegistration`]; each
//! parent device is registered with a [`ParentRegistration`] (see the `vendor` module below and
//! `samples/vfio-mdev/mtty_rs.rs`). [`core_impl`] has what an implementation of the mdev core
//! needs on top of the wrappers.

use crate::{
    bindings, device,
    error::{code::*, Result},
    str::{CStr, CStrExt as _},
    types::Opaque,
    uuid::Guid,
};
use core::{
    marker::PhantomData,
    sync::atomic::{AtomicI32, Ordering},
};

pub mod core_impl;
mod vendor;

pub use vendor::{
    DeviceAttribute, Driver, DriverRegistration, ParentRegistration, ShowFn, StoreFn, SysfsBuf,
    TypeInfo, VirtualClass, VirtualParent,
};

/// A mediated device type (`struct mdev_type`).
///
/// # Invariants
///
/// `self.0` is a `struct mdev_type` that was passed to `mdev_register_parent()`: `sysfs_name`
/// points to a NUL-terminated string, `pretty_name` is NULL or points to one, and `parent` points
/// to the registered [`Parent`], all valid as long as the type's kobject is registered or an
/// mdev of this type exists.
#[repr(transparent)]
pub struct Type(Opaque<bindings::mdev_type>);

impl Type {
    /// Creates a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a registered `struct mdev_type` (see the type invariants) that stays
    /// registered for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::mdev_type) -> &'a Self {
        // SAFETY: `Type` is `repr(transparent)` over the C struct; the caller guarantees
        // validity for `'a`.
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

    /// Returns the parent the type belongs to.
    pub fn parent(&self) -> &Parent {
        // SAFETY: By the type invariants `parent` points to the registered parent.
        unsafe { Parent::from_raw((*self.as_raw()).parent) }
    }

    /// Returns the type's kobject.
    pub(crate) fn kobj(&self) -> *mut bindings::kobject {
        // SAFETY: `self.as_raw()` is valid; taking a field address does not dereference.
        unsafe { core::ptr::addr_of_mut!((*self.as_raw()).kobj) }
    }

    /// Returns the number of instances that can still be created: the vendor's
    /// `get_available()` if it has one, else the parent's shared counter.
    pub fn available_instances(&self) -> u32 {
        let drv = self.parent().driver();
        match drv.get_available_fn() {
            // SAFETY: The vendor's callback takes a registered type, which `self` is.
            Some(f) => unsafe { f(self.as_raw()) },
            None => self.parent().available_counter().load(Ordering::Relaxed) as u32,
        }
    }
}

/// A parent of mediated devices (`struct mdev_parent`).
///
/// # Invariants
///
/// `self.0` is a `struct mdev_parent` embedded in a vendor structure, between the start of
/// `mdev_register_parent()` and the end of `mdev_unregister_parent()`; from the end of the
/// core's initialisation on, `dev`, `mdev_driver`, `types` (`nr_types` entries) are valid.
#[repr(transparent)]
pub struct Parent(Opaque<bindings::mdev_parent>);

impl Parent {
    /// Creates a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a registered `struct mdev_parent` (see the type invariants) that
    /// stays registered for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::mdev_parent) -> &'a Self {
        // SAFETY: `repr(transparent)` over the C struct; validity is the caller's guarantee.
        unsafe { &*ptr.cast() }
    }

    /// Returns the raw pointer.
    pub fn as_raw(&self) -> *mut bindings::mdev_parent {
        self.0.get()
    }

    /// Returns the parent device.
    pub fn device(&self) -> &device::Device {
        // SAFETY: By the type invariants `dev` is a valid device, and the caller of
        // `mdev_register_parent()` holds a reference on it until unregistration.
        unsafe { device::Device::from_raw((*self.as_raw()).dev) }
    }

    /// Returns the raw parent device pointer.
    pub(crate) fn raw_device(&self) -> *mut bindings::device {
        // SAFETY: `self.as_raw()` is valid by the type invariants.
        unsafe { (*self.as_raw()).dev }
    }

    /// Returns the vendor driver that binds this parent's mdevs.
    pub fn driver(&self) -> &DriverDesc {
        // SAFETY: By the type invariants `mdev_driver` is valid while the parent is registered.
        unsafe { DriverDesc::from_raw((*self.as_raw()).mdev_driver) }
    }

    /// Returns the parent's types.
    pub fn types(&self) -> impl Iterator<Item = &Type> + '_ {
        // SAFETY: By the type invariants `types` has `nr_types` valid entries.
        let (types, n) = unsafe { ((*self.as_raw()).types, (*self.as_raw()).nr_types) };
        (0..n as usize).map(move |i| {
            // SAFETY: `i < nr_types`, and each entry is a registered type.
            unsafe { Type::from_raw(*types.add(i)) }
        })
    }

    /// The shared instance counter (`available_instances`), used when the driver has no
    /// `get_available()`.
    pub fn available_counter(&self) -> &AtomicI32 {
        // SAFETY: `atomic_t` is a `struct { int counter; }` that C only accesses atomically;
        // `AtomicI32` has the same layout, and the field lives as long as `self`.
        unsafe {
            AtomicI32::from_ptr(core::ptr::addr_of_mut!(
                (*self.as_raw()).available_instances.counter
            ))
        }
    }
}

/// A registered vendor driver for mediated devices (`struct mdev_driver`), as the core sees it.
///
/// # Invariants
///
/// `self.0` is a `struct mdev_driver` registered with `mdev_register_driver()`.
#[repr(transparent)]
pub struct DriverDesc(Opaque<bindings::mdev_driver>);

impl DriverDesc {
    /// Creates a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a registered `struct mdev_driver` that stays registered for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::mdev_driver) -> &'a Self {
        // SAFETY: `repr(transparent)` over the C struct; validity is the caller's guarantee.
        unsafe { &*ptr.cast() }
    }

    /// Returns the raw pointer.
    pub fn as_raw(&self) -> *mut bindings::mdev_driver {
        self.0.get()
    }

    /// Returns the `device_api` string (e.g. `vfio-pci`).
    pub fn device_api(&self) -> &CStr {
        // SAFETY: `mdev_register_driver()` refuses drivers without `device_api`, and the string
        // lives as long as the registered driver.
        unsafe { CStr::from_char_ptr((*self.as_raw()).device_api) }
    }

    /// Returns `max_instances`, the initial value of a parent's shared counter.
    pub fn max_instances(&self) -> u32 {
        // SAFETY: `self.as_raw()` is valid by the type invariants.
        unsafe { (*self.as_raw()).max_instances }
    }

    /// Returns whether the driver counts available instances itself (`get_available`).
    pub fn has_get_available(&self) -> bool {
        self.get_available_fn().is_some()
    }

    fn get_available_fn(&self) -> Option<unsafe extern "C" fn(*mut bindings::mdev_type) -> u32> {
        // SAFETY: `self.as_raw()` is valid by the type invariants.
        unsafe { (*self.as_raw()).get_available }
    }

    /// Returns whether the driver describes its types (`show_description`).
    pub fn has_description(&self) -> bool {
        // SAFETY: `self.as_raw()` is valid by the type invariants.
        unsafe { (*self.as_raw()).show_description.is_some() }
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
        // SAFETY: The embedded device is initialised and lives as long as `self` (type
        // invariants); its context is `Ctx` by the type invariants.
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
        // SAFETY: Taking a field address of a valid struct.
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
        // SAFETY: By the type invariants the device holds a reference on its type.
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
        // SAFETY: `repr(transparent)` over the C struct; validity is the caller's guarantee.
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

/// Parses an unsigned number the way `kstrtoul(s, 0, &val)` does.
///
/// An optional `+`, then `0x`/`0X` and hex digits, `0` and octal digits, or decimal digits,
/// then an optional single newline; nothing else. Parsing stops at a NUL byte, as the C
/// function stops at the string's end.
///
/// # Examples
///
/// ```
/// use kernel::mdev::parse_ulong;
///
/// assert_eq!(parse_ulong(b"1"), Ok(1));
/// assert_eq!(parse_ulong(b"1\n"), Ok(1));
/// assert_eq!(parse_ulong(b"0x1f"), Ok(31));
/// assert_eq!(parse_ulong(b"010"), Ok(8));
/// assert_eq!(parse_ulong(b"+7"), Ok(7));
/// assert_eq!(parse_ulong(b"0"), Ok(0));
/// assert_eq!(parse_ulong(b"2\0junk"), Ok(2));
/// assert!(parse_ulong(b"").is_err());
/// assert!(parse_ulong(b"garbage").is_err());
/// assert!(parse_ulong(b"-1").is_err());
/// assert!(parse_ulong(b" 1").is_err());
/// assert!(parse_ulong(b"1\n\n").is_err());
/// assert!(parse_ulong(b"0x").is_err());
/// assert!(parse_ulong(b"08").is_err());
/// assert!(parse_ulong(b"18446744073709551616").is_err());
/// ```
pub fn parse_ulong(s: &[u8]) -> Result<u64> {
    let s = match s.iter().position(|&c| c == 0) {
        Some(n) => &s[..n],
        None => s,
    };
    let s = s.strip_prefix(b"+").unwrap_or(s);
    let (radix, digits) = match s {
        [b'0', b'x' | b'X', c, ..] if c.is_ascii_hexdigit() => (16, &s[2..]),
        [b'0', ..] => (8, s),
        _ => (10, s),
    };
    let mut val: u64 = 0;
    let mut n = 0;
    for &c in digits {
        let d = match c {
            b'0'..=b'9' => u64::from(c - b'0'),
            b'a'..=b'f' => u64::from(c - b'a' + 10),
            b'A'..=b'F' => u64::from(c - b'A' + 10),
            _ => break,
        };
        if d >= radix {
            break;
        }
        val = val
            .checked_mul(radix)
            .and_then(|v| v.checked_add(d))
            .ok_or(ERANGE)?;
        n += 1;
    }
    if n == 0 {
        return Err(EINVAL);
    }
    match &digits[n..] {
        [] | [b'\n'] => Ok(val),
        _ => Err(EINVAL),
    }
}
