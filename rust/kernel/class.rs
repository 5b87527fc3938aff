// SPDX-License-Identifier: GPL-2.0

//! Device classes and devices in them that no driver binds (`class_register()` + `device_add()`).
//!
//! C header: [`include/linux/device/class.h`](srctree/include/linux/device/class.h)
//!
//! A [`Class`] is `/sys/class/<name>`; a [`ClassDevice`] is `/sys/devices/virtual/<class>/<name>`,
//! a software device for a driver that has no hardware device to hang its objects from (the
//! parent of the mdev samples). The C samples use `class_create()` and `device_create()`; this
//! module does the same registrations on memory it owns, so that memory lives until the last
//! release and not only until the Rust handle drops:
//!
//! - a device whose handle was dropped can still be referenced (an [`ARef<device::Device>`]
//!   taken with [`ClassDevice::device`]), and the driver core reads its class when it prints it
//!   (`dev_driver_string()` falls back to the class name) or releases it. The device therefore
//!   holds a reference on its class's memory, given back by its release callback;
//! - the driver core's object for a registered class (`subsys_private`) reads the class in its
//!   own release, which `CONFIG_DEBUG_KOBJECT_RELEASE` defers by seconds; the registration holds
//!   another reference, given back by the class's `class_release` callback.
//!
//! Handles can therefore be dropped and references kept in any order. The callbacks are in
//! `vmlinux`, so a reference may even outlive the module that created the device.
//!
//! Not `faux`: a faux device always has the faux driver, so code that names things after the
//! driver of a device (the mdev core names types `<driver of the parent>-<type>`) sees
//! `faux_driver`; a device without a driver is named after its class (`dev_driver_string()`).

use crate::{
    alloc::{flags::GFP_KERNEL, KBox},
    bindings, device,
    error::{code::*, to_result, Result},
    ffi::c_void,
    prelude::*,
    str::{CStr, CString},
    sync::{aref::ARef, new_mutex, Arc, Mutex, UniqueArc},
    types::Opaque,
};
use core::ptr::{addr_of_mut, NonNull};

/// The memory of a class: the C `struct class` and its name.
///
/// # Invariants
///
/// `class.name` points to `name`. Every registration of `class` holds a reference on the `Arc`
/// this lives in (taken back by [`class_release`]), and so does every device whose class it is
/// (taken back by [`device_release`]).
#[repr(C)]
#[pin_data]
struct ClassMem {
    // First field: the callbacks get `*const bindings::class` and cast it to `ClassMem`.
    #[pin]
    class: Opaque<bindings::class>,
    name: CString,
    /// Serialises [`ClassDevice::new`], whose check for a name in use must not race.
    #[pin]
    adding: Mutex<()>,
}

// SAFETY: The C structure is written only by `Class::new` before it is registered, when
// nothing else can reach it; afterwards the driver core only reads it (it takes
// `const struct class *`), from any thread. `name` is never written after creation, and the
// mutex is `Send + Sync`.
unsafe impl Send for ClassMem {}
// SAFETY: As for `Send`: after registration, shared access only reads the C structure.
unsafe impl Sync for ClassMem {}

/// Refuses names that the driver core would warn about: empty (a kobject needs a name) or
/// with a `/` (turned into `!`, which may clash with another name).
fn check_name(name: &CStr) -> Result {
    let bytes = name.to_bytes();
    if bytes.is_empty() || bytes.contains(&b'/') {
        return Err(EINVAL);
    }
    Ok(())
}

/// A registered device class, `/sys/class/<name>`; unregistered when the last [`Arc`] of it is
/// dropped.
///
/// Every [`ClassDevice`] holds an [`Arc`] of its class, so the class stays registered while
/// any of its devices is.
///
/// # Invariants
///
/// `mem.class` is registered with the driver core until drop.
pub struct Class {
    mem: Arc<ClassMem>,
}

/// Gives back the registration's reference on the class memory, when the driver core releases
/// the object it made for the registration.
///
/// # Safety
///
/// `class` is the `class` field of a [`ClassMem`] whose registration reference this call
/// consumes (the driver core calls `class_release` once per successful `class_register()`).
unsafe extern "C" fn class_release(class: *const bindings::class) {
    // SAFETY: `class` is the first field of a `repr(C)` `ClassMem` in an `Arc`, and the
    // registration reference that `Class::new` leaked with `Arc::into_raw` is given back once.
    drop(unsafe { Arc::from_raw(class.cast::<ClassMem>()) });
}

impl Class {
    /// Registers the class `name`.
    ///
    /// The name is copied; an empty one, or one with a `/`, is refused with `EINVAL`. A name
    /// that another class has already is refused with `EEXIST`, and the driver core warns
    /// about it (with a stack trace): class names are global, and no lock of the driver core
    /// lets a check for them be race-free.
    pub fn new(name: &CStr) -> Result<Arc<Self>> {
        check_name(name)?;
        let name = CString::try_from(name)?;
        let mem = Arc::pin_init(
            pin_init!(ClassMem {
                class: Opaque::zeroed(),
                name,
                adding <- new_mutex!(()),
            }),
            GFP_KERNEL,
        )?;
        let class = mem.class.get();
        // SAFETY: Nothing else refers to the zeroed structure yet. `name` lives with `mem`.
        unsafe {
            (*class).name = mem.name.as_char_ptr();
            (*class).class_release = Some(class_release);
        }
        // Allocated first: nothing can fail once the class is registered.
        let handle = UniqueArc::new_uninit(GFP_KERNEL)?;
        // SAFETY: `class` is initialised above (name, release callback, the rest zero) and
        // pinned in `mem`'s `Arc`. A successful registration gets its own reference on that
        // `Arc` below, before anything can unregister it (only `Class::drop` does), and the
        // driver core gives it back through `class_release` only after the unregistration. A
        // failed `class_register()` frees its `subsys_private` itself, without a put, so it
        // never calls `class_release`.
        to_result(unsafe { bindings::class_register(class) })?;
        // Hand one reference over to the registration; `class_release` takes it back.
        let _ = Arc::into_raw(mem.clone());
        // INVARIANT: Registered above.
        Ok(handle.write(Self { mem }).into())
    }

    /// The class's name.
    pub fn name(&self) -> &CStr {
        &self.mem.name
    }
}

impl Drop for Class {
    fn drop(&mut self) {
        // SAFETY: Registered (type invariant). Its devices hold an `Arc<Class>`, so none is
        // registered any more; devices still referenced hold the memory, not the registration.
        unsafe { bindings::class_unregister(self.mem.class.get()) };
    }
}

/// The memory of a [`ClassDevice`], freed by the device's release callback.
///
/// # Invariants
///
/// `dev` was initialised by `device_initialize()` with `release` set to [`device_release`];
/// `class` is the memory of the class `dev.class` points to.
#[repr(C)]
struct ClassDeviceMem {
    // First field: the release callback gets `*mut bindings::device` and casts it.
    dev: Opaque<bindings::device>,
    class: Arc<ClassMem>,
}

/// Frees a [`ClassDevice`]'s memory when the last reference on its `struct device` goes.
///
/// # Safety
///
/// `dev` is the `dev` field of a `ClassDeviceMem` that `ClassDevice::new` leaked with
/// `KBox::into_raw`, and its reference count reached zero.
unsafe extern "C" fn device_release(dev: *mut bindings::device) {
    // SAFETY: `dev` is the first field of a `repr(C)` `ClassDeviceMem` allocated by `KBox` (the
    // only devices with this release callback), and the driver core calls the release once, when
    // nothing refers to the device any more. Dropping it puts the device's class reference.
    drop(unsafe { KBox::from_raw(dev.cast::<ClassDeviceMem>()) });
}

/// A registered device of a [`Class`], `/sys/devices/virtual/<class>/<name>`, without a parent
/// and without a driver; unregistered on drop.
///
/// References taken with [`ClassDevice::device`] stay valid after the drop: the memory goes
/// with the last of them.
///
/// # Invariants
///
/// `dev` is the `dev` of a `ClassDeviceMem` registered with `device_add()` until drop; this
/// object owns the reference `device_initialize()` created.
pub struct ClassDevice {
    dev: NonNull<bindings::device>,
    _class: Arc<Class>,
}

// SAFETY: The pointer only gives out `&device::Device` (`Device` is `Sync`) and, in `drop`, goes
// to `device_unregister()`, which any thread may call (process context); `Arc<Class>` is `Send`.
unsafe impl Send for ClassDevice {}
// SAFETY: `&self` only gives out `&device::Device`, which is `Sync`.
unsafe impl Sync for ClassDevice {}

impl ClassDevice {
    /// Registers the device `name` in `class`.
    ///
    /// The name is copied; an empty one, or one with a `/`, is refused with `EINVAL`, and one
    /// already used in the class with `EEXIST`.
    pub fn new(class: &Arc<Class>, name: &CStr) -> Result<Self> {
        check_name(name)?;
        let cls = class.mem.class.get();
        // Held until the device is added: no other device of the class gets the name meanwhile.
        let _adding = class.mem.adding.lock();
        // SAFETY: `cls` is registered (invariant of `Class`), `name` is a NUL-terminated
        // string and `device_match_name` compares it with each device's name.
        let other = unsafe {
            bindings::class_find_device(
                cls,
                core::ptr::null_mut(),
                name.as_char_ptr().cast::<c_void>(),
                Some(bindings::device_match_name),
            )
        };
        if !other.is_null() {
            // SAFETY: `class_find_device()` returned the device with a reference we own.
            unsafe { bindings::put_device(other) };
            return Err(EEXIST);
        }
        // Initialised in place: a `struct device` is too large for the stack.
        let mem = KBox::init(
            init!(ClassDeviceMem {
                dev <- pin_init::init_zeroed(),
                class: class.mem.clone(),
            }),
            GFP_KERNEL,
        )?;
        // The device's reference on the class memory is `mem.class`; from here on the memory
        // is owned by the device's reference count and freed by `device_release`.
        let mem = KBox::into_raw(mem);
        // SAFETY: `mem` points to the live allocation just leaked; this only takes a field's
        // address.
        let dev = Opaque::cast_into(unsafe { addr_of_mut!((*mem).dev) });
        // SAFETY: `dev` is a zeroed, uninitialised `struct device` that `device_release` frees;
        // `cls` is registered and `mem.class` keeps its memory as long as the device. Every error
        // after `device_initialize()` drops the initial reference with `put_device()`.
        unsafe {
            bindings::device_initialize(dev);
            (*dev).class = cls;
            (*dev).release = Some(device_release);
            let ret = bindings::dev_set_name(dev, c"%s".as_char_ptr(), name.as_char_ptr());
            if ret == 0 {
                to_result(bindings::device_add(dev))
            } else {
                to_result(ret)
            }
            .inspect_err(|_| bindings::put_device(dev))?;
        }
        // INVARIANT: Added above; the initial reference is ours. `dev` is not NULL.
        Ok(Self {
            // SAFETY: A field address of a live allocation is not NULL.
            dev: unsafe { NonNull::new_unchecked(dev) },
            _class: class.clone(),
        })
    }

    /// The device.
    pub fn device(&self) -> &device::Device {
        // SAFETY: Registered until drop, and its memory lives at least as long as the initial
        // reference this object owns (type invariant).
        unsafe { device::Device::from_raw(self.dev.as_ptr()) }
    }
}

impl Drop for ClassDevice {
    fn drop(&mut self) {
        // SAFETY: Registered, with the initial reference ours (type invariant): this removes it
        // and drops that reference; other references keep the memory until `device_release`.
        unsafe { bindings::device_unregister(self.dev.as_ptr()) };
    }
}

impl From<&ClassDevice> for ARef<device::Device> {
    fn from(d: &ClassDevice) -> Self {
        d.device().into()
    }
}

#[macros::kunit_tests(rust_kernel_class)]
mod tests {
    use super::*;

    /// References outlive both handles, in the order that freed the class first before this
    /// module existed: the device is still printable (its class's name is read) and its class
    /// name can be registered again. Under `CONFIG_DEBUG_KOBJECT_RELEASE` the driver core
    /// frees a released class 1 to 4 s late, so the test waits 5 s before it prints: memory
    /// freed with the class would be freed by then (and KASAN would report the read).
    #[test]
    fn reference_outlives_class() -> Result {
        let class = Class::new(c"rust_kunit_class")?;
        let dev = ClassDevice::new(&class, c"dev0")?;
        assert_eq!(dev.device().name(), c"dev0");
        assert_eq!(ClassDevice::new(&class, c"dev0").err(), Some(EEXIST));
        assert_eq!(ClassDevice::new(&class, c"").err(), Some(EINVAL));
        assert_eq!(ClassDevice::new(&class, c"a/b").err(), Some(EINVAL));
        assert_eq!(Class::new(c"").err(), Some(EINVAL));
        let kept: ARef<device::Device> = (&dev).into();
        drop(dev);
        drop(class);
        if cfg!(CONFIG_DEBUG_KOBJECT_RELEASE) {
            crate::time::delay::fsleep(crate::time::Delta::from_secs(5));
        }
        crate::dev_info!(kept, "kept after its class was unregistered\n");
        let again = Class::new(c"rust_kunit_class")?;
        let dev = ClassDevice::new(&again, c"dev0")?;
        drop(kept);
        drop(dev);
        Ok(())
    }
}
