// SPDX-License-Identifier: GPL-2.0

//! sysfs of the mdev core (`mdev_sysfs.c`): a parent's `mdev_supported_types` kset with a
//! kobject per type (`create`, `name`, `device_api`, `available_instances`, `description` and
//! a `devices` directory), the links between an mdev and its type, and the `remove` attribute.

use super::{counter, create, parent_dev, remove, Table};
use core::fmt::Write;
use core::ptr::{addr_of_mut, null, null_mut};
use kernel::{
    bindings, c_str, container_of,
    error::{from_result, to_result},
    ffi::{c_char, c_int, c_uint},
    mdev::{Parent, Type, TypeClass},
    prelude::*,
    uuid::{Guid, UUID_STRING_LEN},
};

const fn attribute(name: &'static CStr, mode: u16) -> bindings::attribute {
    // SAFETY: All-zero is a valid `attribute`; the lockdep fields of `CONFIG_DEBUG_LOCK_ALLOC`
    // stay zero, as in a static C attribute.
    let mut attr: bindings::attribute = unsafe { core::mem::zeroed() };
    attr.name = kernel::str::as_char_ptr_in_const_context(name);
    attr.mode = mode;
    attr
}

static CREATE: Table<bindings::attribute> = Table::new(attribute(c_str!("create"), 0o200));
static DEVICE_API: Table<bindings::attribute> = Table::new(attribute(c_str!("device_api"), 0o444));
static NAME: Table<bindings::attribute> = Table::new(attribute(c_str!("name"), 0o444));
static AVAILABLE: Table<bindings::attribute> =
    Table::new(attribute(c_str!("available_instances"), 0o444));
static DESCRIPTION: Table<bindings::attribute> =
    Table::new(attribute(c_str!("description"), 0o444));
static TYPE_ATTRS: Table<[*mut bindings::attribute; 6]> = Table::new([
    CREATE.get(),
    DEVICE_API.get(),
    NAME.get(),
    AVAILABLE.get(),
    DESCRIPTION.get(),
    null_mut(),
]);

// `is_visible`, `show`, `store` and `attrs` are members of (anonymous) unions, or of a struct
// with `CONFIG_CFI`: assigned, never written as literals, so either layout builds.
static TYPE_GROUP: Table<bindings::attribute_group> = Table::new({
    // SAFETY: All-zero is a valid `attribute_group` (no name, no callbacks, no attributes).
    let mut g: bindings::attribute_group = unsafe { core::mem::zeroed() };
    g.__bindgen_anon_1.is_visible = Some(type_visible);
    g.__bindgen_anon_2.attrs = TYPE_ATTRS.get().cast();
    g
});

// The class of a type and its attributes (`struct mdev_type_class`, an extension of this core:
// Documentation/ABI/testing/sysfs-class-mdev_bus-class): `class` for a type with a class, and
// for the `gpu` class `fb_length`, `resolution` and `heads`; nothing for a type without.
static CLASS: Table<bindings::attribute> = Table::new(attribute(c_str!("class"), 0o444));
static FB_LENGTH: Table<bindings::attribute> = Table::new(attribute(c_str!("fb_length"), 0o444));
static RESOLUTION: Table<bindings::attribute> = Table::new(attribute(c_str!("resolution"), 0o444));
static HEADS: Table<bindings::attribute> = Table::new(attribute(c_str!("heads"), 0o444));
static CLASS_ATTRS: Table<[*mut bindings::attribute; 5]> = Table::new([
    CLASS.get(),
    FB_LENGTH.get(),
    RESOLUTION.get(),
    HEADS.get(),
    null_mut(),
]);
static CLASS_GROUP: Table<bindings::attribute_group> = Table::new({
    // SAFETY: All-zero is a valid `attribute_group` (no name, no callbacks, no attributes).
    let mut g: bindings::attribute_group = unsafe { core::mem::zeroed() };
    g.__bindgen_anon_1.is_visible = Some(class_visible);
    g.__bindgen_anon_2.attrs = CLASS_ATTRS.get().cast();
    g
});

static TYPE_GROUPS: Table<[*const bindings::attribute_group; 3]> = Table::new([
    TYPE_GROUP.get().cast_const(),
    CLASS_GROUP.get().cast_const(),
    null(),
]);
static TYPE_OPS: Table<bindings::sysfs_ops> = Table::new(bindings::sysfs_ops {
    show: Some(type_show),
    store: Some(type_store),
});
static TYPE_KTYPE: Table<bindings::kobj_type> = Table::new(bindings::kobj_type {
    release: Some(type_release),
    sysfs_ops: TYPE_OPS.get(),
    default_groups: TYPE_GROUPS.get().cast(),
    // SAFETY: All-zero is a valid `kobj_type` (no namespace callbacks).
    ..unsafe { core::mem::zeroed() }
});

static REMOVE: Table<bindings::device_attribute> = Table::new({
    // SAFETY: All-zero is a valid `device_attribute` (no name, no callbacks).
    let mut a: bindings::device_attribute = unsafe { core::mem::zeroed() };
    a.attr = attribute(c_str!("remove"), 0o200);
    a.__bindgen_anon_2.store = Some(remove_store);
    a
});
// `attr` is the first field of `device_attribute`.
static DEVICE_ATTRS: Table<[*mut bindings::attribute; 2]> =
    Table::new([REMOVE.get().cast(), null_mut()]);
static DEVICE_GROUP: Table<bindings::attribute_group> = Table::new({
    // SAFETY: All-zero is a valid `attribute_group`.
    let mut g: bindings::attribute_group = unsafe { core::mem::zeroed() };
    g.__bindgen_anon_2.attrs = DEVICE_ATTRS.get().cast();
    g
});
/// The `groups` of every mdev.
pub(crate) static DEVICE_GROUPS: Table<[*const bindings::attribute_group; 2]> =
    Table::new([DEVICE_GROUP.get().cast_const(), null()]);

/// Returns the type whose kobject is `kobj`.
///
/// # Safety
///
/// `kobj` is the kobject of a type that `add_type` added (or is adding), and the invariants of
/// [`Type`] hold for `'a` (as while the kobject is registered, or in its release).
unsafe fn type_of<'a>(kobj: *mut bindings::kobject) -> &'a Type {
    // SAFETY: The kobject is embedded in a `struct mdev_type` whose invariants hold for `'a`
    // (function safety requirements), which is what `Type::from_raw` requires.
    unsafe { Type::from_raw(container_of!(kobj, bindings::mdev_type, kobj)) }
}

/// `is_visible` of type attributes: hides `description` without `show_description`.
///
/// # Safety
///
/// Called by sysfs with the kobject of a type being added and one of its attributes.
unsafe extern "C" fn type_visible(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::attribute,
    _n: c_int,
) -> bindings::umode_t {
    // SAFETY: The kobject of a type that `add_type` is adding, so registered during the call.
    let ty = unsafe { type_of(kobj) };
    // SAFETY: By the invariants of `Parent`, `mdev_driver` points to a registered driver,
    // unchanged while the parent lives, which it does while `ty` is (invariants of `Type`).
    let desc = unsafe { (*(*ty.parent().as_raw()).mdev_driver).show_description };
    if attr == DESCRIPTION.get() && desc.is_none() {
        return 0;
    }
    // SAFETY: `attr` is one of `TYPE_ATTRS`.
    unsafe { (*attr).mode }
}

/// `is_visible` of the class attributes: `class` for a type with a class, the others for the
/// `gpu` class.
///
/// # Safety
///
/// Called by sysfs with the kobject of a type being added and one of `CLASS_ATTRS`.
unsafe extern "C" fn class_visible(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::attribute,
    _n: c_int,
) -> bindings::umode_t {
    // SAFETY: The kobject of a type that `add_type` is adding, so registered during the call.
    let ty = unsafe { type_of(kobj) };
    let visible = if attr == CLASS.get() {
        ty.class_name().is_some()
    } else {
        matches!(ty.class(), Some(TypeClass::Gpu { .. }))
    };
    if visible {
        // SAFETY: `attr` is one of `CLASS_ATTRS`.
        unsafe { (*attr).mode }
    } else {
        0
    }
}

/// `show` of the class attributes of `ty`, into the sysfs buffer `buf`.
fn class_show(ty: &Type, attr: *mut bindings::attribute, buf: *mut c_char) -> isize {
    let mut text = [0u8; 64];
    let mut w = kernel::str::Formatter::new(&mut text);
    let res = if attr == CLASS.get() {
        match ty.class_name() {
            Some(n) => writeln!(w, "{}", n.to_str().unwrap_or("?")),
            None => return EIO.to_errno() as isize,
        }
    } else {
        let Some(TypeClass::Gpu {
            fb_length,
            hres,
            vres,
            heads,
        }) = ty.class()
        else {
            return EIO.to_errno() as isize;
        };
        if attr == FB_LENGTH.get() {
            let (n, unit) = TypeClass::size_with_unit(fb_length);
            writeln!(w, "{n}{unit}")
        } else if attr == RESOLUTION.get() {
            writeln!(w, "{hres}x{vres}")
        } else {
            writeln!(w, "{heads}")
        }
    };
    if res.is_err() {
        return EIO.to_errno() as isize;
    }
    let len = w.bytes_written();
    // SAFETY: `buf` is a sysfs buffer of `PAGE_SIZE` bytes, more than `text` holds.
    unsafe { core::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), len) };
    len as isize
}

/// `show` of type attributes.
///
/// # Safety
///
/// Called by sysfs with the kobject of a registered type, one of its attributes and a buffer
/// of `PAGE_SIZE` bytes.
unsafe extern "C" fn type_show(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: sysfs holds an active reference on the attribute, and `remove_parent` deletes the
    // kobject (draining such references) before the type can go.
    let ty = unsafe { type_of(kobj) };
    // SAFETY: The parent lives while `ty` does (invariants of `Type`), and its `drv` stays
    // registered and unchanged for as long (invariants of `Parent`).
    let drv = unsafe { (*ty.parent().as_raw()).mdev_driver };
    let emit = |s: *const c_char| -> isize {
        // SAFETY: `buf` is a sysfs buffer; the format takes one string, which `s` is.
        unsafe { bindings::sysfs_emit(buf, c_str!("%s\n").as_char_ptr(), s) as isize }
    };
    if [CLASS.get(), FB_LENGTH.get(), RESOLUTION.get(), HEADS.get()].contains(&attr) {
        class_show(ty, attr, buf)
    } else if attr == DEVICE_API.get() {
        // SAFETY: `mdev_register_driver()` refuses drivers without `device_api`.
        emit(unsafe { (*drv).device_api })
    } else if attr == NAME.get() {
        emit(ty.pretty_name().unwrap_or(ty.sysfs_name()).as_char_ptr())
    } else if attr == AVAILABLE.get() {
        // SAFETY: `drv` is registered and unchanged while `ty` is (see above).
        let n: c_uint = match unsafe { (*drv).get_available } {
            // SAFETY: The vendor's callback takes a registered type, which `ty` is.
            Some(f) => unsafe { f(ty.as_raw()) },
            None => counter(ty.parent()).load(core::sync::atomic::Ordering::Relaxed) as c_uint,
        };
        // SAFETY: `buf` is a sysfs buffer; the format takes one unsigned int.
        unsafe { bindings::sysfs_emit(buf, c_str!("%u\n").as_char_ptr(), n) as isize }
    } else {
        // `description`, visible only with a callback (`type_visible`).
        // SAFETY: `drv` is registered and unchanged while `ty` is, as for `get_available`.
        match unsafe { (*drv).show_description } {
            // SAFETY: The vendor's callback takes a registered type and a sysfs buffer.
            Some(f) => unsafe { f(ty.as_raw(), buf) },
            None => EIO.to_errno() as isize,
        }
    }
}

/// `store` of type attributes: `create`, the only writable one.
///
/// # Safety
///
/// Called by sysfs with the kobject of a registered type, one of its attributes and `count`
/// readable bytes at `buf`.
unsafe extern "C" fn type_store(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: sysfs holds an active reference on the attribute during `store`, and
    // `remove_parent` deletes the kobject (draining such references) before the type can go.
    let ty = unsafe { type_of(kobj) };
    from_result(|| {
        if attr != CREATE.get() {
            return Err(EIO);
        }
        // The text form, and a 37th byte that is not looked at (usually a newline).
        if !(UUID_STRING_LEN..=UUID_STRING_LEN + 1).contains(&count) {
            return Err(EINVAL);
        }
        // SAFETY: sysfs passes `count` readable bytes.
        let text = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
        create(ty, Guid::parse(text)?)?;
        Ok(count as isize)
    })
}

/// `release` of type kobjects: drops the type's reference on the parent device.
///
/// # Safety
///
/// Called by the kobject core when the last reference on the kobject of a type of
/// `add_type` is gone.
unsafe extern "C" fn type_release(kobj: *mut bindings::kobject) {
    // SAFETY: The type's memory outlives its release (`mdev_register_parent()`'s contract), and
    // `parent` was set by `add_type`. Pairs with the `get_device()` there.
    unsafe { bindings::put_device(parent_dev(type_of(kobj).parent())) };
}

/// Adds the kobject of `ty` and its `devices` directory (`mdev_type_add()`).
///
/// # Safety
///
/// `ty` is a type of `parent`, which is being registered, and was not added yet.
unsafe fn add_type(parent: &Parent, ty: &Type) -> Result {
    let kobj = ty.as_raw();
    // SAFETY: Not added yet, so the kobject, `parent` and `devices_kobj` are ours to initialise
    // (function safety requirements); the registering vendor holds a reference on the parent
    // device; the format takes two strings. Error paths put what they took.
    unsafe {
        let kobj = addr_of_mut!((*kobj).kobj);
        (*kobj).kset = (*parent.as_raw()).mdev_types_kset;
        (*ty.as_raw()).parent = parent.as_raw();
        // Pairs with the put in `type_release`.
        bindings::get_device(parent_dev(parent));
        let ret = bindings::kobject_init_and_add(
            kobj,
            TYPE_KTYPE.get(),
            null_mut(),
            c_str!("%s-%s").as_char_ptr(),
            bindings::dev_driver_string(parent_dev(parent)),
            ty.sysfs_name().as_char_ptr(),
        );
        if ret != 0 {
            // Initialised even on failure: the release puts the parent device.
            bindings::kobject_put(kobj);
            return to_result(ret);
        }
        let devices = bindings::kobject_create_and_add(c_str!("devices").as_char_ptr(), kobj);
        if devices.is_null() {
            bindings::kobject_del(kobj);
            bindings::kobject_put(kobj);
            return Err(ENOMEM);
        }
        (*ty.as_raw()).devices_kobj = devices;
    }
    Ok(())
}

/// Removes what `add_type` added (`mdev_type_remove()`).
///
/// # Safety
///
/// `ty` was added by `add_type` and not removed since.
unsafe fn remove_type(ty: &Type) {
    // SAFETY: `add_type` added `kobj` and created `devices_kobj` (function safety
    // requirements); we own one reference on each, put once. The order is the C core's.
    unsafe {
        bindings::kobject_put((*ty.as_raw()).devices_kobj);
        bindings::kobject_del(addr_of_mut!((*ty.as_raw()).kobj));
        bindings::kobject_put(addr_of_mut!((*ty.as_raw()).kobj));
    }
}

/// Creates `mdev_supported_types` and the type directories (`parent_create_sysfs_files()`).
///
/// # Safety
///
/// `parent` is being registered (initialised, without sysfs files, not visible yet).
pub(crate) unsafe fn add_parent(parent: &Parent) -> Result {
    // SAFETY: The registering vendor holds a reference on the parent; the name is static.
    let kset = unsafe {
        bindings::kset_create_and_add(
            c_str!("mdev_supported_types").as_char_ptr(),
            null(),
            addr_of_mut!((*parent_dev(parent)).kobj),
        )
    };
    if kset.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: Being registered: nobody else reads the field yet.
    unsafe { (*parent.as_raw()).mdev_types_kset = kset };
    for (added, ty) in parent.types().enumerate() {
        // SAFETY: A type of the parent being registered, added once (in order).
        if let Err(e) = unsafe { add_type(parent, ty) } {
            for ty in parent.types().take(added) {
                // SAFETY: The first `added` types were added by this loop and not removed.
                unsafe { remove_type(ty) };
            }
            // SAFETY: Created above; no type is left in it.
            unsafe { bindings::kset_unregister(kset) };
            return Err(e);
        }
    }
    Ok(())
}

/// Removes what `add_parent` created (`parent_remove_sysfs_files()`).
///
/// # Safety
///
/// `add_parent` succeeded for `parent`, and this is its unregistration, with every mdev
/// removed.
pub(crate) unsafe fn remove_parent(parent: &Parent) {
    for ty in parent.types() {
        // SAFETY: Added by `add_parent`, removed only here.
        unsafe { remove_type(ty) };
    }
    // SAFETY: Created by `add_parent`, which set the field.
    unsafe { bindings::kset_unregister((*parent.as_raw()).mdev_types_kset) };
}

/// Creates the `devices/<uuid>` link of the type and the `mdev_type` link of `mdev`
/// (`mdev_create_sysfs_files()`); creates neither on failure.
///
/// # Safety
///
/// `mdev` is added (so named) and its type registered.
pub(crate) unsafe fn create_links(mdev: *mut bindings::mdev_device) -> Result {
    // SAFETY: The caller guarantees `mdev` is added (its kobject named and in sysfs) and its
    // type registered (`devices_kobj` set and alive).
    unsafe {
        let kobj = addr_of_mut!((*mdev).dev.kobj);
        let ty = (*mdev).type_;
        to_result(bindings::sysfs_create_link(
            (*ty).devices_kobj,
            kobj,
            (*kobj).name,
        ))?;
        let ret = bindings::sysfs_create_link(
            kobj,
            addr_of_mut!((*ty).kobj),
            c_str!("mdev_type").as_char_ptr(),
        );
        if ret != 0 {
            bindings::sysfs_remove_link((*ty).devices_kobj, (*kobj).name);
        }
        to_result(ret)
    }
}

/// Removes the links of `create_links` (`mdev_remove_sysfs_files()`).
///
/// # Safety
///
/// `create_links` succeeded for `mdev`, whose type is registered.
pub(crate) unsafe fn remove_links(mdev: *mut bindings::mdev_device) {
    // SAFETY: The caller guarantees both links exist, on a named kobject, and that the type
    // (with its `devices_kobj`) is still registered.
    unsafe {
        let kobj = addr_of_mut!((*mdev).dev.kobj);
        bindings::sysfs_remove_link(kobj, c_str!("mdev_type").as_char_ptr());
        bindings::sysfs_remove_link((*(*mdev).type_).devices_kobj, (*kobj).name);
    }
}

/// The `remove` attribute of mdevs.
///
/// # Safety
///
/// Called by sysfs with an mdev, its `remove` attribute and `count` bytes at `buf`, followed
/// by a NUL (kernfs terminates what userspace wrote).
unsafe extern "C" fn remove_store(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    from_result(|| {
        let mut val: u64 = 0;
        // SAFETY: `buf` is NUL-terminated; `kstrtoul()` is `kstrtoull()` on 64-bit.
        if unsafe { bindings::kstrtoull(buf, 0, &mut val) } < 0 {
            return Err(EINVAL);
        }
        if val == 0 {
            return Ok(count as isize);
        }
        // Once the attribute is removed nothing keeps the mdev alive: unregistration may remove
        // and release it concurrently. Hold a reference until `remove` is done with it (the C
        // core does not, which `scsi_sysfs.c` does for its `delete` attribute).
        // SAFETY: sysfs calls `store` with an active reference on the attribute, so `dev` is
        // alive here.
        unsafe { bindings::get_device(dev) };
        // SAFETY: `dev` is a live mdev (our reference), and this is the `store` of `attr`, as
        // `device_remove_file_self()` requires.
        let ret = if unsafe { bindings::device_remove_file_self(dev, attr) } {
            // SAFETY: Our reference keeps the mdev alive; we removed its `remove` attribute.
            unsafe { remove(container_of!(dev, bindings::mdev_device, dev)) }
        } else {
            Ok(())
        };
        // SAFETY: Taken above.
        unsafe { bindings::put_device(dev) };
        ret.map(|()| count as isize)
    })
}
