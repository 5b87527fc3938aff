// SPDX-License-Identifier: GPL-2.0

//! The interrupt of a parent PCI function, owned by devres.
//!
//! C header: [`include/linux/interrupt.h`](srctree/include/linux/interrupt.h)
//!
//! A vendor driver that mediates a real PCI function completes its devices' requests on the
//! function's interrupt. The kernel crate's [`irq::ThreadedRegistration`] is `unsafe` to create:
//! a registration that is forgotten would keep a handler that borrows the device. Here the
//! registration belongs to devres instead: [`request_threaded`] registers a `'static` handler
//! (it owns what it uses, `Arc`s and a [`DevresBar`](crate::pci::DevresBar), and borrows
//! nothing) and frees it when the driver unbinds, so nothing the driver does can leak it.
//!
//! Only the function's INTx line (shared), and only while MSI and MSI-X are off: an MSI vector
//! belongs to the kernel crate's safe [`pci::Device::alloc_irq_vectors`], whose registration's
//! drop disables every vector of the device, under any handler on them, so MSI waits for a
//! devres-owned vector set in `kernel::pci`. A handler on the INTx line is not affected by
//! vectors enabled later: its interrupt number stays allocated.

use crate::{
    bindings,
    device::Bound,
    error::to_result,
    irq::{self, ThreadedHandler},
    pci,
    prelude::*,
};
use core::ffi::c_void;

/// What the devres action frees.
///
/// # Invariants
///
/// `handler` points to a pinned `T` from `KBox`, registered with `request_threaded_irq()` as the
/// cookie of `irq`.
struct Registered<T> {
    irq: u32,
    handler: *mut T,
}

/// Registers `handler` for the INTx interrupt of `pdev` until the driver unbinds; returns the
/// Linux interrupt number.
///
/// The line may be shared (`IRQF_SHARED` is always added): the handler must return
/// [`irq::ThreadedIrqReturn::None`] for interrupts that are not its device's. `flags` are further
/// `request_threaded_irq()` flags. Fails with `ENODEV` if the function has no INTx line and with
/// `EBUSY` while MSI or MSI-X is enabled (`pci_dev->irq` is then an MSI vector).
pub fn request_threaded<T: ThreadedHandler + Send + 'static>(
    pdev: &pci::Device<Bound>,
    flags: irq::Flags,
    name: &'static CStr,
    handler: impl PinInit<T, Error>,
) -> Result<u32> {
    let dev: &crate::device::Device<Bound> = pdev.as_ref();
    // SAFETY: `dev` is the `dev` field of the `struct pci_dev` that `pdev` wraps.
    let raw = unsafe { crate::container_of!(dev.as_raw(), bindings::pci_dev, dev) };
    // SAFETY: `raw` is a valid PCI device while `pdev` is borrowed.
    if unsafe { bindings::pci_dev_msi_enabled(raw) } {
        return Err(EBUSY);
    }
    // SAFETY: As above; `irq` is a plain field, the INTx line while MSI is off (checked).
    let irq = unsafe { (*raw).irq };
    if irq == 0 {
        return Err(ENODEV);
    }
    let handler = KBox::pin_init(handler, GFP_KERNEL)?;
    // SAFETY: Never moved out of: freed in place by the devres action (or below).
    let handler = KBox::into_raw(unsafe { Pin::into_inner_unchecked(handler) });
    let flags = flags | irq::Flags::SHARED;
    // SAFETY: `irq` is the function's INTx line; the callbacks match the cookie `handler`, a pinned
    // `T` that stays allocated until `free_irq()` returned (the devres action, or the failure
    // paths below); `name` is `'static`.
    let ret = to_result(unsafe {
        bindings::request_threaded_irq(
            irq,
            Some(hard_irq::<T>),
            Some(thread_fn::<T>),
            flags.into_inner(),
            name.as_char_ptr(),
            handler.cast(),
        )
    });
    if let Err(e) = ret {
        // SAFETY: From `KBox::into_raw` above; the registration failed, so no callback has it.
        drop(unsafe { KBox::from_raw(handler) });
        return Err(e);
    }
    // INVARIANT: `handler` is registered for `irq`.
    let reg = match KBox::new(Registered { irq, handler }, GFP_KERNEL) {
        Ok(r) => r,
        Err(e) => {
            // SAFETY: Registered above, freed once, here.
            unsafe { free(irq, handler) };
            return Err(e.into());
        }
    };
    // SAFETY: `dev` is bound; the action owns `reg` and runs once: at unbind, or right away
    // (`_or_reset`) if it cannot be added.
    to_result(unsafe {
        bindings::devm_add_action_or_reset(
            dev.as_raw(),
            Some(release::<T>),
            KBox::into_raw(reg).cast(),
        )
    })?;
    Ok(irq)
}

/// Frees the interrupt, then the handler.
///
/// # Safety
///
/// `handler` is registered for `irq`, and this is the one call that frees it.
unsafe fn free<T>(irq: u32, handler: *mut T) {
    // SAFETY: Per the function's requirements; `free_irq()` waits for running handlers, so
    // none uses `handler` once it returns.
    unsafe { bindings::free_irq(irq, handler.cast()) };
    // SAFETY: From `KBox::into_raw` in `request_threaded`; no callback can run any more.
    drop(unsafe { KBox::from_raw(handler) });
}

/// The devres action of [`request_threaded`].
///
/// # Safety
///
/// `data` is the `KBox<Registered<T>>` of one registration, passed once.
unsafe extern "C" fn release<T>(data: *mut c_void) {
    // SAFETY: Per the function's requirements.
    let reg = unsafe { KBox::from_raw(data.cast::<Registered<T>>()) };
    // SAFETY: Type invariant of `Registered`; the action runs once.
    unsafe { free(reg.irq, reg.handler) };
}

/// # Safety
///
/// Only the hard-interrupt callback of a registration made by [`request_threaded`].
unsafe extern "C" fn hard_irq<T: ThreadedHandler>(
    _irq: i32,
    ptr: *mut c_void,
) -> bindings::irqreturn_t {
    // SAFETY: `ptr` is the registered `T`, alive until `free_irq()` returned.
    let h = unsafe { &*ptr.cast::<T>() };
    bindings::irqreturn_t(h.handle() as c_uint)
}

/// # Safety
///
/// Only the thread callback of a registration made by [`request_threaded`].
unsafe extern "C" fn thread_fn<T: ThreadedHandler>(
    _irq: i32,
    ptr: *mut c_void,
) -> bindings::irqreturn_t {
    // SAFETY: `ptr` is the registered `T`, alive until `free_irq()` returned.
    let h = unsafe { &*ptr.cast::<T>() };
    bindings::irqreturn_t(h.handle_threaded() as c_uint)
}
