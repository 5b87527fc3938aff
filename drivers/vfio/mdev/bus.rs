// SPDX-License-Identifier: GPL-2.0

//! The `mdev` bus and vendor drivers (`mdev_driver.c`). Drivers never match automatically:
//! `create` binds an mdev to its parent's driver with `device_driver_attach()`.

use super::Table;
use core::ptr::addr_of_mut;
use kernel::{bindings, c_str, container_of, error::to_result, ffi::c_int, prelude::*};

/// The `mdev` bus.
pub(crate) static MDEV_BUS: Table<bindings::bus_type> = Table::new(bindings::bus_type {
    name: kernel::str::as_char_ptr_in_const_context(c_str!("mdev")),
    probe: Some(probe),
    remove: Some(remove),
    match_: Some(match_),
    // SAFETY: All-zero is a valid `bus_type` (NULL pointers, no callbacks).
    ..unsafe { core::mem::zeroed() }
});

/// Returns the vendor driver that the driver core is binding `dev` to, or unbinding it from.
///
/// # Safety
///
/// `dev` is an mdev in the `probe` or `remove` of the bus, so `dev->driver` is set, and is a
/// driver of the bus, embedded in a `struct mdev_driver`.
unsafe fn driver_of(dev: *mut bindings::device) -> *mut bindings::mdev_driver {
    // SAFETY: The caller guarantees `dev->driver` is set and is the `driver` field of a
    // `struct mdev_driver` (every driver of the bus is registered by `mdev_register_driver`).
    unsafe { container_of!((*dev).driver, bindings::mdev_driver, driver) }
}

/// `probe` of the bus: the vendor driver's `probe`.
///
/// # Safety
///
/// Called by the driver core for an mdev that it binds to a driver of the bus.
unsafe extern "C" fn probe(dev: *mut bindings::device) -> c_int {
    // SAFETY: Binding an mdev to a driver of the bus; a registered `mdev_driver` stays valid
    // while a device is bound to it.
    match unsafe { (*driver_of(dev)).probe } {
        // SAFETY: Only `create` adds devices to this (private) bus: `dev` is in an `mdev_device`.
        Some(f) => unsafe { f(container_of!(dev, bindings::mdev_device, dev)) },
        None => 0,
    }
}

/// `remove` of the bus: the vendor driver's `remove`.
///
/// # Safety
///
/// Called by the driver core for an mdev that it unbinds from a driver of the bus.
unsafe extern "C" fn remove(dev: *mut bindings::device) {
    // SAFETY: Unbinding an mdev from a driver of the bus, which is still registered.
    if let Some(f) = unsafe { (*driver_of(dev)).remove } {
        // SAFETY: Only `create` adds devices to this (private) bus: `dev` is in an `mdev_device`.
        unsafe { f(container_of!(dev, bindings::mdev_device, dev)) }
    }
}

/// `match` of the bus: never.
///
/// # Safety
///
/// Any arguments: they are not used.
unsafe extern "C" fn match_(
    _dev: *mut bindings::device,
    _drv: *const bindings::device_driver,
) -> c_int {
    0
}

/// The bus, registered from module init to exit.
pub(crate) struct Registration(());

impl Registration {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: A fully initialised static, unregistered by `drop` before the module goes.
        to_result(unsafe { bindings::bus_register(MDEV_BUS.get()) })?;
        Ok(Self(()))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: Registered in `new`; every vendor driver is gone (each holds a reference on
        // this module).
        unsafe { bindings::bus_unregister(MDEV_BUS.get()) };
    }
}

/// `mdev_register_driver()` of `include/linux/mdev.h`.
///
/// # Safety
///
/// `drv` is a `struct mdev_driver` that is not registered, and stays valid and unchanged (but
/// for what this core sets) until [`mdev_unregister_driver`].
#[no_mangle]
pub(crate) unsafe extern "C" fn mdev_register_driver(drv: *mut bindings::mdev_driver) -> c_int {
    // SAFETY: `drv` is valid and not registered yet (function safety requirements), so its
    // `driver` field is ours to set up and register.
    unsafe {
        if (*drv).device_api.is_null() {
            return EINVAL.to_errno();
        }
        (*drv).driver.bus = MDEV_BUS.get();
        bindings::driver_register(addr_of_mut!((*drv).driver))
    }
}

/// `mdev_unregister_driver()` of `include/linux/mdev.h`.
///
/// # Safety
///
/// `drv` was registered with [`mdev_register_driver`] and is not unregistered yet.
#[no_mangle]
pub(crate) unsafe extern "C" fn mdev_unregister_driver(drv: *mut bindings::mdev_driver) {
    // SAFETY: The caller registered `drv` with `mdev_register_driver`, and unregisters it once.
    unsafe { bindings::driver_unregister(addr_of_mut!((*drv).driver)) }
}
