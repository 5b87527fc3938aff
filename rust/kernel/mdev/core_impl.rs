// SPDX-License-Identifier: GPL-2.0

//! What an implementation of the mdev core needs.
//!
//! C header: [`include/linux/mdev.h`](srctree/include/linux/mdev.h)
//!
//! The mdev core registers the `mdev` bus, gives every parent an `mdev_supported_types` kset
//! with one kobject per [`Type`] (attributes `create`, `name`, `device_api`,
//! `available_instances`, `description`, and a `devices` directory), creates [`Device`]s when
//! userspace writes a UUID to `create`, and removes them through their `remove` attribute.
//! This module holds all the `unsafe` glue for that: the bus and its callbacks, the kobject type
//! and sysfs trampolines of types, the device attribute `remove`, the device release callback,
//! the parent's unregistration semaphore, the `mdev_bus` compatibility class, and the four C
//! functions of `include/linux/mdev.h`, which [`mdev_core_exports!`] defines in the core module.
//!
//! The policy (the global device list, duplicate and capacity checks, the order of creation and
//! removal, uevents) belongs to the core module, which implements [`Core`].

use super::{parse_ulong, Device, DriverDesc, Parent, Type};
use crate::{
    alloc::{flags::GFP_KERNEL, KBox},
    bindings, c_str, container_of, device,
    error::{code::*, from_result, to_result, Error, Result},
    ffi::{c_char, c_int, c_uint, c_void},
    str::{CStr, CStrExt as _},
    types::Opaque,
    uuid::{Guid, UUID_STRING_LEN},
};
use core::{
    cell::Cell,
    mem::ManuallyDrop,
    ptr::{self, null_mut},
    sync::atomic::{AtomicBool, Ordering},
};

/// The policy of an mdev core; the glue in this module calls it.
pub trait Core: 'static {
    /// Userspace wrote a well-formed UUID to the `create` attribute of `ty`.
    fn create(ty: &Type, uuid: Guid) -> Result;

    /// Userspace wrote a non-zero number to the `remove` attribute of `dev`, and this writer
    /// removed the attribute (a concurrent writer gets success without calling this).
    fn remove(dev: &Device) -> Result;

    /// The last reference to `dev` is gone; its memory is freed after this returns.
    fn release(dev: &Device);

    /// A vendor driver registers `parent`; its fields are initialised.
    fn register_parent(parent: &Parent) -> Result;

    /// A vendor driver unregisters `parent`.
    fn unregister_parent(parent: &Parent);

    /// The statics the glue needs, defined by [`mdev_core_exports!`].
    fn statics() -> &'static Statics;
}

/// A static C object that C code may write to, shared between threads.
///
/// # Invariants
///
/// The object is only accessed through raw pointers by C code or by this module, under the
/// C API's own synchronisation.
#[repr(transparent)]
pub struct StaticCell<T>(Opaque<T>);

// SAFETY: Accesses go through raw pointers under the C API's synchronisation (invariant).
unsafe impl<T> Sync for StaticCell<T> {}

impl<T> StaticCell<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Self(Opaque::new(value))
    }

    /// Returns a raw pointer to the object.
    pub const fn get(&self) -> *mut T {
        self.0.get()
    }
}

const fn attribute(name: &'static CStr, mode: u16) -> bindings::attribute {
    // SAFETY: All-zero is a valid `attribute`; the lockdep fields that exist with
    // `CONFIG_DEBUG_LOCK_ALLOC` stay zero, as for a static C attribute.
    let mut attr: bindings::attribute = unsafe { core::mem::zeroed() };
    attr.name = crate::str::as_char_ptr_in_const_context(name);
    attr.mode = mode;
    attr
}

// The `mdev` bus. Drivers are never matched automatically; the core binds them explicitly
// with `device_driver_attach()`.
static MDEV_BUS: StaticCell<bindings::bus_type> = StaticCell::new(bindings::bus_type {
    name: crate::str::as_char_ptr_in_const_context(c_str!("mdev")),
    probe: Some(bus_probe),
    remove: Some(bus_remove),
    match_: Some(bus_match),
    // SAFETY: All-zero is a valid `bus_type` (NULL pointers, no callbacks).
    ..unsafe { core::mem::zeroed() }
});

/// Returns the vendor driver of `dev`, which the driver core is binding or unbinding.
///
/// # Safety
///
/// `dev` must be an mdev being probed or removed, so `dev->driver` is set and embedded in a
/// `struct mdev_driver`.
unsafe fn bound_driver(dev: *mut bindings::device) -> *mut bindings::mdev_driver {
    // SAFETY: Per the function's safety requirements.
    unsafe { container_of!((*dev).driver, bindings::mdev_driver, driver) }
}

/// `probe` of the `mdev` bus: calls the vendor driver's `probe`.
///
/// # Safety
///
/// Called by the driver core for an mdev it binds to a driver of the `mdev` bus.
unsafe extern "C" fn bus_probe(dev: *mut bindings::device) -> c_int {
    // SAFETY: The driver core calls `probe` of the `mdev` bus for an mdev it binds.
    let drv = unsafe { bound_driver(dev) };
    // SAFETY: `drv` is a registered `struct mdev_driver`.
    match unsafe { (*drv).probe } {
        // SAFETY: `dev` is embedded in a live `struct mdev_device`; the vendor's probe takes it.
        Some(probe) => unsafe { probe(Device::from_dev(dev).as_raw()) },
        None => 0,
    }
}

/// `remove` of the `mdev` bus: calls the vendor driver's `remove`.
///
/// # Safety
///
/// Called by the driver core for an mdev it unbinds from a driver of the `mdev` bus.
unsafe extern "C" fn bus_remove(dev: *mut bindings::device) {
    // SAFETY: The driver core calls `remove` of the `mdev` bus for an mdev it unbinds.
    let drv = unsafe { bound_driver(dev) };
    // SAFETY: `drv` is a registered `struct mdev_driver`.
    if let Some(remove) = unsafe { (*drv).remove } {
        // SAFETY: `dev` is embedded in a live `struct mdev_device`; the vendor's remove takes it.
        unsafe { remove(Device::from_dev(dev).as_raw()) }
    }
}

/// `match` of the `mdev` bus: never (drivers are attached explicitly).
///
/// # Safety
///
/// Any arguments; they are not used.
unsafe extern "C" fn bus_match(
    _dev: *mut bindings::device,
    _drv: *const bindings::device_driver,
) -> c_int {
    0
}

/// Registration of the `mdev` bus; unregisters it on drop.
pub struct BusRegistration(());

impl BusRegistration {
    /// Registers the `mdev` bus.
    pub fn new() -> Result<Self> {
        // SAFETY: `MDEV_BUS` is a valid, static `bus_type`.
        to_result(unsafe { bindings::bus_register(MDEV_BUS.get()) })?;
        Ok(Self(()))
    }
}

impl Drop for BusRegistration {
    fn drop(&mut self) {
        // SAFETY: Registered in `new`.
        unsafe { bindings::bus_unregister(MDEV_BUS.get()) };
    }
}

/// A compatibility class (`class_compat`): links `/sys/class/<name>/<dev>` to devices.
///
/// # Invariants
///
/// `self.0` is a registered `class_compat`.
pub struct ClassCompat(*mut bindings::class_compat);

// SAFETY: The C functions on `class_compat` can be called from any thread.
unsafe impl Send for ClassCompat {}
// SAFETY: As above; `&ClassCompat` only allows creating and removing links.
unsafe impl Sync for ClassCompat {}

impl ClassCompat {
    /// Registers `/sys/class/<name>`.
    pub fn register(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a valid string that outlives the class.
        let cls = unsafe { bindings::class_compat_register(name.as_char_ptr()) };
        if cls.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: Registered above.
        Ok(Self(cls))
    }

    /// Creates the link `/sys/class/<name>/<dev_name(dev)>` to `dev`.
    pub fn create_link(&self, dev: &device::Device) -> Result {
        // SAFETY: `self.0` is registered and `dev` is a valid device.
        to_result(unsafe { bindings::class_compat_create_link(self.0, dev.as_raw()) })
    }

    /// Removes the link created by [`Self::create_link`].
    pub fn remove_link(&self, dev: &device::Device) {
        // SAFETY: `self.0` is registered and `dev` is a valid device.
        unsafe { bindings::class_compat_remove_link(self.0, dev.as_raw()) }
    }
}

impl Drop for ClassCompat {
    fn drop(&mut self) {
        // SAFETY: Registered (type invariant), unregistered once here.
        unsafe { bindings::class_compat_unregister(self.0) }
    }
}

// Type attributes. `description` is visible only if the driver has `show_description`.
static ATTR_CREATE: StaticCell<bindings::attribute> =
    StaticCell::new(attribute(c_str!("create"), 0o200));
static ATTR_DEVICE_API: StaticCell<bindings::attribute> =
    StaticCell::new(attribute(c_str!("device_api"), 0o444));
static ATTR_NAME: StaticCell<bindings::attribute> =
    StaticCell::new(attribute(c_str!("name"), 0o444));
static ATTR_AVAILABLE: StaticCell<bindings::attribute> =
    StaticCell::new(attribute(c_str!("available_instances"), 0o444));
static ATTR_DESCRIPTION: StaticCell<bindings::attribute> =
    StaticCell::new(attribute(c_str!("description"), 0o444));

static TYPE_ATTRS: StaticCell<[*mut bindings::attribute; 6]> = StaticCell::new([
    ATTR_CREATE.get(),
    ATTR_DEVICE_API.get(),
    ATTR_NAME.get(),
    ATTR_AVAILABLE.get(),
    ATTR_DESCRIPTION.get(),
    null_mut(),
]);

// `is_visible`, `show` and `store` are members of `__SYSFS_FUNCTION_ALTERNATIVE` (a union, or
// a struct with `CONFIG_CFI`), and `attrs` of an anonymous union: all are assigned, never
// written as literals, so the code builds with either layout.
static TYPE_GROUP: StaticCell<bindings::attribute_group> = StaticCell::new({
    // SAFETY: All-zero is a valid `attribute_group` (no name, no callbacks, no attributes).
    let mut g: bindings::attribute_group = unsafe { core::mem::zeroed() };
    g.__bindgen_anon_1.is_visible = Some(type_attr_visible);
    g.__bindgen_anon_2.attrs = TYPE_ATTRS.get().cast();
    g
});

/// The `default_groups` of type kobjects.
pub static TYPE_GROUPS: StaticCell<[*const bindings::attribute_group; 2]> =
    StaticCell::new([TYPE_GROUP.get().cast_const(), ptr::null()]);

/// Returns the type whose kobject is `kobj`.
///
/// # Safety
///
/// `kobj` must be the `kobj` field of a registered `struct mdev_type` that stays registered for
/// `'a`.
unsafe fn type_of_kobj<'a>(kobj: *mut bindings::kobject) -> &'a Type {
    // SAFETY: Per the function's safety requirements.
    unsafe { Type::from_raw(container_of!(kobj, bindings::mdev_type, kobj)) }
}

/// `is_visible` of type attributes: hides `description` without `show_description`.
///
/// # Safety
///
/// Called by sysfs with the kobject of a type being registered and one of its attributes.
unsafe extern "C" fn type_attr_visible(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::attribute,
    _n: c_int,
) -> bindings::umode_t {
    // SAFETY: sysfs calls this for the kobject of a type being registered.
    let ty = unsafe { type_of_kobj(kobj) };
    if attr == ATTR_DESCRIPTION.get() && !ty.parent().driver().has_description() {
        return 0;
    }
    // SAFETY: `attr` is one of our static attributes.
    unsafe { (*attr).mode }
}

/// `show` of type attributes.
///
/// # Safety
///
/// Called by sysfs with the kobject of a registered type, one of its attributes, and a buffer
/// of `PAGE_SIZE` bytes.
pub unsafe extern "C" fn type_attr_show(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: sysfs holds an active reference on the attribute, so the type is registered.
    let ty = unsafe { type_of_kobj(kobj) };
    let drv = ty.parent().driver();
    let emit_str = |s: &CStr| -> isize {
        // SAFETY: `buf` is a sysfs buffer; the format takes one string.
        unsafe { bindings::sysfs_emit(buf, c_str!("%s\n").as_char_ptr(), s.as_char_ptr()) as isize }
    };
    if attr == ATTR_DEVICE_API.get() {
        emit_str(drv.device_api())
    } else if attr == ATTR_NAME.get() {
        emit_str(ty.pretty_name().unwrap_or(ty.sysfs_name()))
    } else if attr == ATTR_AVAILABLE.get() {
        let n: c_uint = ty.available_instances();
        // SAFETY: `buf` is a sysfs buffer; the format takes one unsigned int.
        unsafe { bindings::sysfs_emit(buf, c_str!("%u\n").as_char_ptr(), n) as isize }
    } else if attr == ATTR_DESCRIPTION.get() {
        // SAFETY: `self.as_raw()` is valid; the attribute is visible only with a callback.
        match unsafe { (*drv.as_raw()).show_description } {
            // SAFETY: The vendor's callback takes a registered type and a sysfs buffer.
            Some(show) => unsafe { show(ty.as_raw(), buf) },
            None => EIO.to_errno() as isize,
        }
    } else {
        EIO.to_errno() as isize
    }
}

/// `store` of type attributes: `create`.
///
/// # Safety
///
/// Called by sysfs with the kobject of a registered type, one of its attributes, and `count`
/// readable bytes at `buf`.
pub unsafe extern "C" fn type_attr_store<T: Core>(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: sysfs holds an active reference on the attribute, so the type is registered.
    let ty = unsafe { type_of_kobj(kobj) };
    from_result(|| {
        if attr != ATTR_CREATE.get() {
            return Err(EIO);
        }
        // The text form and an optional 37th byte, which is not looked at.
        if !(UUID_STRING_LEN..=UUID_STRING_LEN + 1).contains(&count) {
            return Err(EINVAL);
        }
        // SAFETY: sysfs passes `count` readable bytes.
        let data = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
        T::create(ty, Guid::parse(data)?)?;
        Ok(count as isize)
    })
}

/// `release` of type kobjects: drops the type's reference on the parent device.
///
/// # Safety
///
/// Called by the kobject core when the last reference to a type's kobject is gone.
unsafe extern "C" fn type_release(kobj: *mut bindings::kobject) {
    // SAFETY: The last reference to a type kobject; its `parent` is still set.
    let ty = unsafe { type_of_kobj(kobj) };
    // SAFETY: Pairs with the `get_device()` in `Parent::add_type`.
    unsafe { bindings::put_device(ty.parent().raw_device()) };
}

/// The `remove` attribute of mdevs.
///
/// # Safety
///
/// Called by sysfs with an mdev, its `remove` attribute and `count` readable bytes at `buf`.
pub unsafe extern "C" fn remove_store<T: Core>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: sysfs passes `count` readable bytes.
    let data = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    from_result(|| {
        let val = parse_ulong(data).map_err(|_| EINVAL)?;
        // SAFETY: `dev` is a live mdev and `attr` its attribute.
        if val != 0 && unsafe { bindings::device_remove_file_self(dev, attr) } {
            // SAFETY: The device is alive while its attribute's store runs.
            T::remove(unsafe { Device::from_dev(dev) })?;
        }
        Ok(count as isize)
    })
}

/// The statics of a core that depend on its [`Core`] implementation; defined by
/// [`mdev_core_exports!`].
pub struct Statics {
    /// The kobject type of mdev types.
    pub type_ktype: StaticCell<bindings::kobj_type>,
    /// Its sysfs operations.
    pub type_sysfs_ops: StaticCell<bindings::sysfs_ops>,
    /// The `remove` attribute of mdevs.
    pub remove_attr: StaticCell<bindings::device_attribute>,
    /// The attribute list of mdevs.
    pub dev_attrs: StaticCell<[*mut bindings::attribute; 2]>,
    /// The attribute group of mdevs.
    pub dev_group: StaticCell<bindings::attribute_group>,
    /// The `groups` of mdevs.
    pub dev_groups: StaticCell<[*const bindings::attribute_group; 2]>,
}

/// Helpers for [`mdev_core_exports!`] to build [`Statics`] in a `static` initialiser.
pub mod statics {
    use super::*;

    /// The sysfs operations of type kobjects.
    pub const fn type_sysfs_ops<T: Core>() -> bindings::sysfs_ops {
        bindings::sysfs_ops {
            show: Some(type_attr_show),
            store: Some(type_attr_store::<T>),
        }
    }

    /// The kobject type of mdev types.
    pub const fn type_ktype(ops: *const bindings::sysfs_ops) -> bindings::kobj_type {
        bindings::kobj_type {
            release: Some(type_release),
            sysfs_ops: ops,
            default_groups: TYPE_GROUPS.get().cast(),
            // SAFETY: All-zero is a valid `kobj_type` (no namespace callbacks).
            ..unsafe { core::mem::zeroed() }
        }
    }

    /// The `remove` attribute of mdevs (mode 0200).
    pub const fn remove_attr<T: Core>() -> bindings::device_attribute {
        // SAFETY: All-zero is a valid `device_attribute` (no name, no callbacks).
        let mut a: bindings::device_attribute = unsafe { core::mem::zeroed() };
        a.attr = attribute(c_str!("remove"), 0o200);
        a.__bindgen_anon_2.store = Some(remove_store::<T>);
        a
    }

    /// An attribute group of `attrs`.
    pub const fn group(attrs: *mut *mut bindings::attribute) -> bindings::attribute_group {
        // SAFETY: All-zero is a valid `attribute_group` (no name, no callbacks).
        let mut g: bindings::attribute_group = unsafe { core::mem::zeroed() };
        g.__bindgen_anon_2.attrs = attrs;
        g
    }
}

/// The unregistration semaphore of a parent, held for reading.
pub struct UnregReadGuard<'a>(&'a Parent);

impl Drop for UnregReadGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: Acquired in `Parent::try_read_unreg`.
        unsafe { bindings::up_read(self.0.unreg_sem()) }
    }
}

/// The unregistration semaphore of a parent, held for writing.
pub struct UnregWriteGuard<'a>(&'a Parent);

impl Drop for UnregWriteGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: Acquired in `Parent::write_unreg`.
        unsafe { bindings::up_write(self.0.unreg_sem()) }
    }
}

/// Proof that a parent's unregistration semaphore is held (either way).
pub trait UnregHeld {
    /// The parent whose semaphore is held.
    fn parent(&self) -> &Parent;
}

impl UnregHeld for UnregReadGuard<'_> {
    fn parent(&self) -> &Parent {
        self.0
    }
}

impl UnregHeld for UnregWriteGuard<'_> {
    fn parent(&self) -> &Parent {
        self.0
    }
}

impl Parent {
    fn unreg_sem(&self) -> *mut bindings::rw_semaphore {
        // SAFETY: Field address of a valid struct.
        unsafe { ptr::addr_of_mut!((*self.as_raw()).unreg_sem) }
    }

    /// Takes the unregistration semaphore for reading if unregistration has not started.
    pub fn try_read_unreg(&self) -> Option<UnregReadGuard<'_>> {
        // SAFETY: The semaphore was initialised at registration.
        let taken = unsafe { bindings::down_read_trylock(self.unreg_sem()) } != 0;
        // The guard (whose drop releases the semaphore) may only exist if it was taken: build
        // it lazily (`then_some` would build and drop it on failure, an unbalanced `up_read`).
        taken.then(|| UnregReadGuard(self))
    }

    /// Takes the unregistration semaphore for writing.
    pub fn write_unreg(&self) -> UnregWriteGuard<'_> {
        // SAFETY: The semaphore was initialised at registration.
        unsafe { bindings::down_write(self.unreg_sem()) };
        UnregWriteGuard(self)
    }

    /// Sends a `KOBJ_CHANGE` uevent with `env` (e.g. `MDEV_STATE=registered`) for the parent
    /// device.
    pub fn uevent_change(&self, env: &CStr) {
        let mut envp = [env.as_char_ptr().cast_mut(), null_mut()];
        // SAFETY: The parent device is valid; `envp` is a NULL-terminated array of strings.
        unsafe {
            bindings::kobject_uevent_env(
                ptr::addr_of_mut!((*self.raw_device()).kobj),
                bindings::kobject_action_KOBJ_CHANGE,
                envp.as_mut_ptr(),
            )
        };
    }

    /// Prints `msg` (a complete line) as an info message of the parent device.
    pub fn info(&self, msg: &CStr) {
        // SAFETY: The device is valid; the format takes one string.
        unsafe {
            bindings::_dev_info(
                self.raw_device(),
                c_str!("%s").as_char_ptr(),
                msg.as_char_ptr(),
            )
        }
    }

    /// Prints `msg` (a complete line) as a warning of the parent device.
    pub fn warn(&self, msg: &CStr) {
        // SAFETY: The device is valid; the format takes one string.
        unsafe {
            bindings::_dev_warn(
                self.raw_device(),
                c_str!("%s").as_char_ptr(),
                msg.as_char_ptr(),
            )
        }
    }

    /// Creates `mdev_supported_types` and the type directories (`parent_create_sysfs_files()`).
    pub fn create_sysfs_files(&self, statics: &'static Statics) -> Result {
        // SAFETY: The parent device is valid; the name is a valid string.
        let kset = unsafe {
            bindings::kset_create_and_add(
                c_str!("mdev_supported_types").as_char_ptr(),
                null_mut(),
                ptr::addr_of_mut!((*self.raw_device()).kobj),
            )
        };
        if kset.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: Only the core writes this field, under the parent's registration.
        unsafe { (*self.as_raw()).mdev_types_kset = kset };
        for (added, ty) in self.types().enumerate() {
            if let Err(e) = self.add_type(ty, statics) {
                for ty in self.types().take(added) {
                    Self::remove_type(ty);
                }
                // SAFETY: Created above; no type is left in it.
                unsafe { bindings::kset_unregister(kset) };
                return Err(e);
            }
        }
        Ok(())
    }

    fn add_type(&self, ty: &Type, statics: &'static Statics) -> Result {
        let kobj = ty.kobj();
        // SAFETY: The type is owned by the registering vendor driver; the core initialises its
        // kobject, `parent` and `devices_kobj` here.
        unsafe {
            (*kobj).kset = (*self.as_raw()).mdev_types_kset;
            (*ty.as_raw()).parent = self.as_raw();
            // Pairs with the put in `type_release`.
            bindings::get_device(self.raw_device());
        }
        // SAFETY: `kobj` is embedded in the type and not initialised yet; the format takes two
        // strings, the driver name of the parent device and the type's `sysfs_name`.
        let ret = unsafe {
            bindings::kobject_init_and_add(
                kobj,
                statics.type_ktype.get(),
                null_mut(),
                c_str!("%s-%s").as_char_ptr(),
                bindings::dev_driver_string(self.raw_device()),
                ty.sysfs_name().as_char_ptr(),
            )
        };
        if ret != 0 {
            // SAFETY: Initialised by `kobject_init_and_add` even on failure.
            unsafe { bindings::kobject_put(kobj) };
            return Err(Error::from_errno(ret));
        }
        // SAFETY: `kobj` is registered; the name is a valid string.
        let devices =
            unsafe { bindings::kobject_create_and_add(c_str!("devices").as_char_ptr(), kobj) };
        if devices.is_null() {
            // SAFETY: Registered above.
            unsafe {
                bindings::kobject_del(kobj);
                bindings::kobject_put(kobj);
            }
            return Err(ENOMEM);
        }
        // SAFETY: Only the core writes this field.
        unsafe { (*ty.as_raw()).devices_kobj = devices };
        Ok(())
    }

    fn remove_type(ty: &Type) {
        // SAFETY: Added by `add_type`; undone in the same order as `mdev_type_remove()`.
        unsafe {
            bindings::kobject_put((*ty.as_raw()).devices_kobj);
            bindings::kobject_del(ty.kobj());
            bindings::kobject_put(ty.kobj());
        }
    }

    /// Removes the type directories and `mdev_supported_types` (`parent_remove_sysfs_files()`).
    pub fn remove_sysfs_files(&self, _held: &UnregWriteGuard<'_>) {
        for ty in self.types() {
            Self::remove_type(ty);
        }
        // SAFETY: Created by `create_sysfs_files`.
        unsafe { bindings::kset_unregister((*self.as_raw()).mdev_types_kset) };
    }

    /// Calls `f` for every mdev that is a child of the parent device.
    pub fn for_each_mdev<F: FnMut(&Device)>(&self, _held: &UnregWriteGuard<'_>, mut f: F) {
        /// Calls the closure at `data` for `dev` if it is an mdev.
        ///
        /// # Safety
        ///
        /// `data` is a `&mut G` and `dev` a live child device, for the call.
        unsafe extern "C" fn visit<G: FnMut(&Device)>(
            dev: *mut bindings::device,
            data: *mut c_void,
        ) -> c_int {
            // SAFETY: `dev` is a child of the parent device, alive during the iteration.
            if unsafe { (*dev).bus } == MDEV_BUS.get().cast_const() {
                // SAFETY: `data` is the `&mut F` passed below; `dev` is on the mdev bus, so it
                // is embedded in a `struct mdev_device`.
                unsafe { (*data.cast::<G>())(Device::from_dev(dev)) };
            }
            0
        }
        // SAFETY: `visit::<F>` matches the callback type and only uses `data` as `&mut F`;
        // `device_for_each_child` does not keep `data` after returning.
        unsafe {
            bindings::device_for_each_child(
                self.raw_device(),
                ptr::addr_of_mut!(f).cast(),
                Some(visit::<F>),
            )
        };
    }
}

/// `release` of mdevs: [`Core::release`], then drop the type reference and free the memory.
///
/// # Safety
///
/// Called by the driver core when the last reference to an mdev allocated by
/// [`NewDevice::new`] is gone.
unsafe extern "C" fn device_release<T: Core>(dev: *mut bindings::device) {
    // SAFETY: The release callback of an mdev the core allocated in `NewDevice::new`.
    let mdev = unsafe { Device::from_dev(dev) };
    T::release(mdev);
    // SAFETY: Pairs with the `kobject_get()` in `NewDevice::new`.
    unsafe { bindings::kobject_put(mdev.mdev_type().kobj()) };
    // SAFETY: Allocated by `KBox::into_raw` in `NewDevice::new`; this was the last reference.
    drop(unsafe { KBox::from_raw(mdev.as_raw()) });
}

/// How far the creation of a [`NewDevice`] got.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Initialised (and maybe named), not added.
    New,
    /// Added to the driver core.
    Added,
    /// Added, with the `devices/<uuid>` and `mdev_type` links.
    Linked,
    /// Deleted from the driver core again; cannot be added.
    Deleted,
}

/// An mdev being created; holds the reference of `device_initialize()` and drops it (freeing
/// the device through its release callback, after deleting it from the driver core if it was
/// added) unless [`NewDevice::publish`] hands it to the registered device.
///
/// The steps must come in order (`add`, then `attach` and `create_links`, then `publish`); a
/// step out of order fails with `EINVAL` instead of corrupting the driver core's state.
///
/// # Invariants
///
/// `mdev` was allocated and initialised by [`NewDevice::new`] and this holds one reference;
/// `step` says what was done to it.
pub struct NewDevice {
    mdev: *mut bindings::mdev_device,
    step: Cell<Step>,
}

impl NewDevice {
    /// Allocates an mdev of `ty` named after `uuid` and initialises its `struct device`
    /// (parent, bus, release, `remove` attribute, type reference).
    pub fn new<T: Core>(ty: &Type, uuid: Guid) -> Result<Self> {
        // SAFETY: All-zero is a valid `struct mdev_device` before `device_initialize()`.
        let mdev: KBox<bindings::mdev_device> =
            KBox::new(unsafe { core::mem::zeroed() }, GFP_KERNEL)?;
        let mdev = KBox::into_raw(mdev);
        let statics = T::statics();
        // SAFETY: `mdev` is a fresh allocation that nothing else references yet.
        unsafe {
            let dev = ptr::addr_of_mut!((*mdev).dev);
            bindings::device_initialize(dev);
            (*dev).parent = ty.parent().raw_device();
            (*dev).bus = MDEV_BUS.get();
            (*dev).release = Some(device_release::<T>);
            (*dev).groups = statics.dev_groups.get().cast();
            (*mdev).type_ = ty.as_raw();
            // Pairs with the put in `device_release`.
            bindings::kobject_get(ty.kobj());
            (*mdev).uuid = uuid.to_raw();
        }
        // INVARIANT: Initialised above, with the reference of `device_initialize()`.
        Ok(Self {
            mdev,
            step: Cell::new(Step::New),
        })
    }

    /// Returns the device.
    pub fn device(&self) -> &Device {
        // SAFETY: Alive while `self` holds its reference.
        unsafe { Device::from_raw(self.mdev) }
    }

    fn expect(&self, step: Step) -> Result {
        if self.step.get() == step {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }

    /// Names the device after its UUID (`%pUl`).
    pub fn set_name(&self) -> Result {
        self.expect(Step::New)?;
        let dev = self.device();
        // SAFETY: The device is initialised and not added; the format takes a pointer to a
        // `guid_t`.
        to_result(unsafe {
            bindings::dev_set_name(
                dev.raw_device(),
                c_str!("%pUl").as_char_ptr(),
                ptr::addr_of!((*dev.as_raw()).uuid),
            )
        })
    }

    /// Adds the device to the driver core (`device_add()`).
    pub fn add(&self, _held: &UnregReadGuard<'_>) -> Result {
        self.expect(Step::New)?;
        // SAFETY: The device is initialised and was never added.
        to_result(unsafe { bindings::device_add(self.device().raw_device()) })?;
        self.step.set(Step::Added);
        Ok(())
    }

    /// Binds the parent's vendor driver (`device_driver_attach()`), which calls its probe.
    pub fn attach(&self, drv: &DriverDesc) -> Result {
        self.expect(Step::Added)?;
        // SAFETY: The device was added; `drv` is registered on the mdev bus.
        to_result(unsafe {
            bindings::device_driver_attach(
                ptr::addr_of!((*drv.as_raw()).driver),
                self.device().raw_device(),
            )
        })
    }

    /// Creates the `devices/<uuid>` link of the type and the `mdev_type` link of the device.
    pub fn create_links(&self) -> Result {
        self.expect(Step::Added)?;
        let dev = self.device();
        let ty = dev.mdev_type();
        // SAFETY: The device was added, so its kobject is named; the type is registered.
        unsafe {
            let kobj = ptr::addr_of_mut!((*dev.raw_device()).kobj);
            let name = (*kobj).name;
            to_result(bindings::sysfs_create_link(
                (*ty.as_raw()).devices_kobj,
                kobj,
                name,
            ))?;
            let ret =
                bindings::sysfs_create_link(kobj, ty.kobj(), c_str!("mdev_type").as_char_ptr());
            if ret != 0 {
                bindings::sysfs_remove_link((*ty.as_raw()).devices_kobj, name);
                return to_result(ret);
            }
        }
        self.step.set(Step::Linked);
        Ok(())
    }

    /// Deletes the device from the driver core after a failed step (its links, then
    /// `device_del()`); does nothing if it was not added.
    pub fn del(&self) {
        let step = self.step.get();
        if step == Step::Linked {
            self.device().remove_links();
        }
        if matches!(step, Step::Added | Step::Linked) {
            // SAFETY: The device was added and not deleted yet.
            unsafe { bindings::device_del(self.device().raw_device()) };
            self.step.set(Step::Deleted);
        }
    }

    /// Completes creation: the reference of `device_initialize()` now belongs to the
    /// registered device and is dropped by [`Device::remove_common`]. Fails with `EINVAL` (and
    /// drops the device) unless the device was added and linked.
    pub fn publish(self) -> Result {
        self.expect(Step::Linked)?;
        let this = ManuallyDrop::new(self);
        // INVARIANT: The `registered` flag of a published (added and linked) device is set
        // exactly once here.
        this.device().registered().store(true, Ordering::Release);
        Ok(())
    }
}

impl Drop for NewDevice {
    fn drop(&mut self) {
        self.del();
        // SAFETY: Drops the reference this holds (type invariant).
        unsafe { bindings::put_device(self.device().raw_device()) }
    }
}

impl Device {
    /// The core's "registered" flag of the device, stored in `struct mdev_device.active`: set
    /// by [`NewDevice::publish`], cleared by [`Device::remove_common`].
    fn registered(&self) -> &AtomicBool {
        // SAFETY: `active` is a `bool` only the core accesses, atomically through this.
        unsafe { AtomicBool::from_ptr(ptr::addr_of_mut!((*self.as_raw()).active)) }
    }

    /// Removes a published device: its links, `device_del()` (which unbinds the vendor driver
    /// and waits for its users), and the reference of registration. Does nothing if the device
    /// was already removed.
    pub fn remove_common(&self, _held: &dyn UnregHeld) {
        if !self.registered().swap(false, Ordering::AcqRel) {
            return;
        }
        self.remove_links();
        // SAFETY: The device is published, so added; the reference dropped is the one of
        // registration, and `self` is not used after it.
        unsafe {
            bindings::device_del(self.raw_device());
            bindings::put_device(self.raw_device());
        }
    }

    /// Removes the `mdev_type` link and the type's `devices/<uuid>` link.
    fn remove_links(&self) {
        let ty = self.mdev_type();
        // SAFETY: The device is added and linked (callers); its kobject is named.
        unsafe {
            let kobj = ptr::addr_of_mut!((*self.raw_device()).kobj);
            bindings::sysfs_remove_link(kobj, c_str!("mdev_type").as_char_ptr());
            bindings::sysfs_remove_link((*ty.as_raw()).devices_kobj, (*kobj).name);
        }
    }
}

/// Initialises `parent` and calls [`Core::register_parent`] (`mdev_register_parent()`).
///
/// # Safety
///
/// As `mdev_register_parent()` requires: `parent` is writable and stays valid until
/// [`unregister_parent`] returns; `dev` is a device the caller holds a reference on until then;
/// `drv` is registered with `mdev_register_driver()`; `types` has `nr_types` valid types that
/// stay valid until their kobjects are released.
pub unsafe fn register_parent<T: Core>(
    parent: *mut bindings::mdev_parent,
    dev: *mut bindings::device,
    drv: *mut bindings::mdev_driver,
    types: *mut *mut bindings::mdev_type,
    nr_types: c_uint,
) -> c_int {
    // SAFETY: `parent` is writable (function safety requirements); all-zero is its initial
    // state, as the C core's `memset()`.
    unsafe {
        ptr::write_bytes(parent, 0, 1);
        bindings::__init_rwsem(
            ptr::addr_of_mut!((*parent).unreg_sem),
            c_str!("&parent->unreg_sem").as_char_ptr(),
            crate::static_lock_class!().as_ptr(),
        );
        (*parent).dev = dev;
        (*parent).mdev_driver = drv;
        (*parent).types = types;
        (*parent).nr_types = nr_types;
    }
    // SAFETY: Initialised above and valid until unregistration.
    let p = unsafe { Parent::from_raw(parent) };
    p.available_counter()
        .store(p.driver().max_instances() as i32, Ordering::Relaxed);
    from_result(|| T::register_parent(p).map(|()| 0))
}

/// Calls [`Core::unregister_parent`] (`mdev_unregister_parent()`).
///
/// # Safety
///
/// `parent` was registered with [`register_parent`] and is not unregistered yet.
pub unsafe fn unregister_parent<T: Core>(parent: *mut bindings::mdev_parent) {
    // SAFETY: Registered (function safety requirements).
    T::unregister_parent(unsafe { Parent::from_raw(parent) })
}

/// `mdev_register_driver()`: puts `drv` on the mdev bus.
///
/// # Safety
///
/// `drv` points to a `struct mdev_driver` that stays valid until [`unregister_driver`].
pub unsafe fn register_driver(drv: *mut bindings::mdev_driver) -> c_int {
    // SAFETY: Valid (function safety requirements).
    unsafe {
        if (*drv).device_api.is_null() {
            return EINVAL.to_errno();
        }
        (*drv).driver.bus = MDEV_BUS.get();
        bindings::driver_register(ptr::addr_of_mut!((*drv).driver))
    }
}

/// `mdev_unregister_driver()`.
///
/// # Safety
///
/// `drv` was registered with [`register_driver`].
pub unsafe fn unregister_driver(drv: *mut bindings::mdev_driver) {
    // SAFETY: Registered (function safety requirements).
    unsafe { bindings::driver_unregister(ptr::addr_of_mut!((*drv).driver)) }
}

/// Defines, in the core module, the [`Statics`] of `$core` and the four functions of
/// `include/linux/mdev.h` (`mdev_register_parent`, `mdev_unregister_parent`,
/// `mdev_register_driver`, `mdev_unregister_driver`). A C file of the module exports them with
/// `EXPORT_SYMBOL`, so C vendor drivers link against them unchanged.
#[macro_export]
macro_rules! mdev_core_exports {
    ($core:ty, $statics:ident) => {
        static $statics: $crate::mdev::core_impl::Statics = {
            use $crate::mdev::core_impl::{statics, StaticCell, Statics};
            Statics {
                type_sysfs_ops: StaticCell::new(statics::type_sysfs_ops::<$core>()),
                type_ktype: StaticCell::new(statics::type_ktype($statics.type_sysfs_ops.get())),
                remove_attr: StaticCell::new(statics::remove_attr::<$core>()),
                dev_attrs: StaticCell::new([
                    // SAFETY: Field address inside a static; no dereference.
                    unsafe { ::core::ptr::addr_of_mut!((*$statics.remove_attr.get()).attr) },
                    ::core::ptr::null_mut(),
                ]),
                dev_group: StaticCell::new(statics::group($statics.dev_attrs.get().cast())),
                dev_groups: StaticCell::new([
                    $statics.dev_group.get().cast_const(),
                    ::core::ptr::null(),
                ]),
            }
        };

        /// `mdev_register_parent()` of `include/linux/mdev.h`.
        ///
        /// # Safety
        ///
        /// As documented in `include/linux/mdev.h`.
        #[no_mangle]
        pub unsafe extern "C" fn mdev_register_parent(
            parent: *mut $crate::bindings::mdev_parent,
            dev: *mut $crate::bindings::device,
            drv: *mut $crate::bindings::mdev_driver,
            types: *mut *mut $crate::bindings::mdev_type,
            nr_types: $crate::ffi::c_uint,
        ) -> $crate::ffi::c_int {
            // SAFETY: The C caller follows the contract of `mdev_register_parent()`.
            unsafe {
                $crate::mdev::core_impl::register_parent::<$core>(parent, dev, drv, types, nr_types)
            }
        }

        /// `mdev_unregister_parent()` of `include/linux/mdev.h`.
        ///
        /// # Safety
        ///
        /// As documented in `include/linux/mdev.h`.
        #[no_mangle]
        pub unsafe extern "C" fn mdev_unregister_parent(
            parent: *mut $crate::bindings::mdev_parent,
        ) {
            // SAFETY: The C caller registered `parent`.
            unsafe { $crate::mdev::core_impl::unregister_parent::<$core>(parent) }
        }

        /// `mdev_register_driver()` of `include/linux/mdev.h`.
        ///
        /// # Safety
        ///
        /// As documented in `include/linux/mdev.h`.
        #[no_mangle]
        pub unsafe extern "C" fn mdev_register_driver(
            drv: *mut $crate::bindings::mdev_driver,
        ) -> $crate::ffi::c_int {
            // SAFETY: The C caller passes a driver that lives until it unregisters it.
            unsafe { $crate::mdev::core_impl::register_driver(drv) }
        }

        /// `mdev_unregister_driver()` of `include/linux/mdev.h`.
        ///
        /// # Safety
        ///
        /// As documented in `include/linux/mdev.h`.
        #[no_mangle]
        pub unsafe extern "C" fn mdev_unregister_driver(drv: *mut $crate::bindings::mdev_driver) {
            // SAFETY: The C caller registered `drv`.
            unsafe { $crate::mdev::core_impl::unregister_driver(drv) }
        }
    };
}
