// SPDX-License-Identifier: GPL-2.0

//! Mediated device core, in Rust.
//!
//! A drop-in replacement for the C core, in three files with the jobs of its three: this one
//! (`mdev_core.c`: parents, and the creation, removal and release of mdevs), `sysfs.rs`
//! (`mdev_sysfs.c`: the `mdev_supported_types` directories and the `remove` attribute) and
//! `bus.rs` (`mdev_driver.c`: the `mdev` bus and vendor drivers). It defines the four
//! functions of `include/linux/mdev.h` (exported by `mdev_exports.c`), with the C core's sysfs
//! ABI and errno values.
//!
//! Everything here, `unsafe` included, is private to the module: vendor drivers only see
//! `kernel::mdev`. Differences from C: Documentation/driver-api/vfio-mdev-rust-core.rst.
//!
//! Locking, as in C: `MDEV_LIST` (`mdev_list_lock`) guards the device table, the `active` flag
//! of every mdev and the parents' instance counters, and is never held across `device_add()`
//! or a vendor callback. A parent's `unreg_sem` is try-locked for reading by create (from
//! before `device_add()` until the mdev is complete) and by remove (`ENODEV` once
//! unregistration started), and held for writing by unregistration, which removes every mdev.

use core::{
    ptr::{addr_of, addr_of_mut, null_mut},
    sync::atomic::{AtomicI32, AtomicPtr, Ordering},
};
use kernel::{
    bindings, c_str,
    error::{from_result, to_result},
    ffi::{c_int, c_uint, c_void},
    mdev::{Parent, Type},
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::global_lock,
    types::{Opaque, ScopeGuard},
    uuid::Guid,
};

mod bus;
mod sysfs;

module! {
    type: MdevCore,
    name: "mdev",
    authors: ["mdev-rs developers"],
    description: "Mediated device Core Driver",
    license: "GPL v2",
}

// `MODULE_VERSION("0.1")` of the C core: userspace sees it as /sys/module/mdev/version.
#[link_section = ".modinfo"]
#[used]
static MODINFO_VERSION: [u8; 12] = *b"version=0.1\0";

/// A C table (bus type, kobject type, sysfs operations, attributes) in a `static`.
///
/// # Invariants
///
/// The table is written only by its initialiser; afterwards C code reads it through
/// [`Table::get`] and nobody writes it.
#[repr(transparent)]
struct Table<T>(Opaque<T>);

// SAFETY: Sharing a table between threads only shares reads of data that never changes (type
// invariant); the raw pointers in it point to other tables or to static strings.
unsafe impl<T> Sync for Table<T> {}

impl<T> Table<T> {
    const fn new(table: T) -> Self {
        Self(Opaque::new(table))
    }

    const fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// All mdevs of the system: the identity (address) of each `struct mdev_device`, by UUID.
struct DeviceTable(Option<RBTree<Guid, usize>>);

impl DeviceTable {
    fn tree(&mut self) -> &mut RBTree<Guid, usize> {
        self.0.get_or_insert_with(RBTree::new)
    }
}

global_lock! {
    // SAFETY: `MdevCore::init` initialises it before the bus and sysfs files exist, and modules
    // linking against our exports wait for our init to return (`resolve_symbol_wait()`).
    unsafe(uninit) static MDEV_LIST: Mutex<DeviceTable> = DeviceTable(None);
}

/// `/sys/class/mdev_bus`, between `MdevCore::init` and the module's exit.
static COMPAT: AtomicPtr<bindings::class_compat> = AtomicPtr::new(null_mut());

/// Returns whether the vendor driver of `parent` counts its instances itself (`get_available`).
fn counts_itself(parent: &Parent) -> bool {
    // SAFETY: By the invariants of `Parent`, `mdev_driver` points to a registered driver,
    // unchanged while the parent lives, which it does for the borrow.
    unsafe { (*(*parent.as_raw()).mdev_driver).get_available.is_some() }
}

/// The parent device of `parent`.
fn parent_dev(parent: &Parent) -> *mut bindings::device {
    // SAFETY: `dev` is set at registration and valid while the parent is.
    unsafe { (*parent.as_raw()).dev }
}

/// The instance counter of `parent` (`available_instances`), when the core counts.
fn counter(parent: &Parent) -> &AtomicI32 {
    // SAFETY: `atomic_t` is an `int` that C only accesses atomically, with the layout of
    // `AtomicI32`, and lives as long as the parent.
    unsafe { AtomicI32::from_ptr(addr_of_mut!((*parent.as_raw()).available_instances.counter)) }
}

/// `parent->unreg_sem`, held for reading.
struct ReadGuard(*mut bindings::rw_semaphore);

impl ReadGuard {
    /// Takes it if unregistration has not started.
    fn try_new(parent: &Parent) -> Option<Self> {
        // SAFETY: `unreg_sem` is initialised by `mdev_register_parent()` and alive while the
        // parent is (invariants of `Parent`).
        let (sem, taken) = unsafe {
            let sem = addr_of_mut!((*parent.as_raw()).unreg_sem);
            (sem, bindings::down_read_trylock(sem) != 0)
        };
        // `then`, not `then_some`: a guard built on failure would `up_read` when dropped.
        taken.then(|| Self(sem))
    }
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        // SAFETY: Taken for reading in `try_new`; the hold keeps `mdev_unregister_parent()`,
        // and so the end of the parent's memory, out.
        unsafe { bindings::up_read(self.0) }
    }
}

/// Creates an mdev of type `ty` (`mdev_device_create()`); the `create` attribute calls it.
fn create(ty: &Type, uuid: Guid) -> Result {
    let parent = ty.parent();
    let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
    // Zeroed in place (a `struct device` is too large for the stack), before counting.
    let mdev = KBox::<bindings::mdev_device>::init(pin_init::init_zeroed(), GFP_KERNEL)?;
    let mdev = {
        let mut list = MDEV_LIST.lock();
        if list.tree().get(&uuid).is_some() {
            return Err(EEXIST);
        }
        if !counts_itself(parent) {
            // All changes happen under `MDEV_LIST`: load and store do not race.
            let n = counter(parent).load(Ordering::Relaxed);
            if n == 0 {
                return Err(EUSERS);
            }
            counter(parent).store(n - 1, Ordering::Relaxed);
        }
        let mdev = KBox::into_raw(mdev);
        // SAFETY: A fresh allocation nobody else can reach; the release callback frees it.
        // `ty` is registered (we run from its `create` attribute, which sysfs keeps active), so
        // its kobject is initialised and alive for the `kobject_get()`.
        unsafe {
            let dev = addr_of_mut!((*mdev).dev);
            bindings::device_initialize(dev);
            (*dev).parent = parent_dev(parent);
            (*dev).bus = bus::MDEV_BUS.get();
            (*dev).release = Some(device_release);
            (*dev).groups = sysfs::DEVICE_GROUPS.get().cast();
            (*mdev).type_ = ty.as_raw();
            // Pairs with the put in `device_release`.
            bindings::kobject_get(addr_of_mut!((*ty.as_raw()).kobj));
            (*mdev).uuid = uuid.to_raw();
        }
        list.tree().insert(node.into_node(uuid, mdev as usize));
        mdev
    };
    // SAFETY: Field address of the live allocation.
    let dev = unsafe { addr_of_mut!((*mdev).dev) };
    // Drops the reference of `device_initialize()` on failure: the release callback takes the
    // mdev off the table and gives its instance back.
    // SAFETY: We own that reference until `dismiss()`.
    let put = ScopeGuard::new(|| unsafe { bindings::put_device(dev) });
    // SAFETY: Not added yet; the format takes a `guid_t *`.
    to_result(unsafe {
        bindings::dev_set_name(dev, c_str!("%pUl").as_char_ptr(), addr_of!((*mdev).uuid))
    })?;
    let held = ReadGuard::try_new(parent).ok_or(ENODEV)?;
    // SAFETY: Initialised and named, never added.
    to_result(unsafe { bindings::device_add(dev) })?;
    // SAFETY: `dev` is added; the parent's driver is registered on the mdev bus.
    let mut ret = to_result(unsafe {
        bindings::device_driver_attach(addr_of!((*(*parent.as_raw()).mdev_driver).driver), dev)
    });
    if ret.is_ok() {
        // SAFETY: `dev` is added (so named), and its type registered: we hold `unreg_sem`.
        ret = unsafe { sysfs::create_links(mdev) };
    }
    if let Err(e) = ret {
        // SAFETY: Added above and not deleted; the links are not there (`create_links` undoes
        // its own work on failure).
        unsafe { bindings::device_del(dev) };
        return Err(e);
    }
    let list = MDEV_LIST.lock();
    // SAFETY: `active` is only accessed under `MDEV_LIST`.
    unsafe { (*mdev).active = true };
    drop(list);
    // SAFETY: We still own the reference of `device_initialize()`: `put` is dismissed only after
    // the last use of `d`.
    let d = unsafe { kernel::device::Device::<kernel::device::Normal>::from_raw(dev) };
    dev_dbg!(d, "MDEV: created\n");
    // The reference of `device_initialize()` now belongs to the registered mdev.
    put.dismiss();
    drop(held);
    Ok(())
}

/// Removes `mdev` (`mdev_device_remove()`); the `remove` attribute calls it.
///
/// # Safety
///
/// `mdev` is an mdev of this core that the caller holds a reference on, and whose `remove`
/// attribute the caller removed.
unsafe fn remove(mdev: *mut bindings::mdev_device) -> Result {
    {
        let mut list = MDEV_LIST.lock();
        // SAFETY: Live (function safety requirements); `uuid` never changes.
        let uuid = Guid::from_raw(unsafe { &(*mdev).uuid });
        if list.tree().get(&uuid) != Some(&(mdev as usize)) {
            return Err(ENODEV);
        }
        // SAFETY: `active` is only accessed under `MDEV_LIST`.
        unsafe {
            if !(*mdev).active {
                return Err(EAGAIN);
            }
            (*mdev).active = false;
        }
    }
    // SAFETY: The mdev is alive (function safety requirements) and holds a reference on its
    // type, whose memory, `parent` included, the vendor keeps until the type's release (the
    // contract of `mdev_register_parent()`); the parent's `unreg_sem` lives as long.
    let parent = unsafe { Type::from_raw((*mdev).type_) }.parent();
    let _held = ReadGuard::try_new(parent).ok_or(ENODEV)?;
    // SAFETY: Alive (function safety requirements); `device_add()`/`device_del()` of mdevs run
    // under `unreg_sem`, held. An unregistration between the check of `active` and the guard
    // deleted it (regardless of `active`; the C core then removes it twice).
    if unsafe { bindings::kobject::state_in_sysfs_raw(addr_of!((*mdev).dev.kobj)) } == 0 {
        return Err(ENODEV);
    }
    // SAFETY: We cleared `active`, so no other `remove` deletes it, and it is not deleted yet
    // (checked above under `unreg_sem`, which keeps the unregistration out).
    unsafe { remove_common(mdev) };
    Ok(())
}

/// Deletes a complete mdev from the driver core and drops the reference of its registration
/// (`mdev_device_remove_common()`).
///
/// # Safety
///
/// `mdev` is complete (added, linked) and not removed yet, the caller holds its parent's
/// `unreg_sem` and removes it only once.
unsafe fn remove_common(mdev: *mut bindings::mdev_device) {
    // SAFETY: The caller guarantees `mdev` is complete (added, so named, and linked) and not
    // removed yet; `unreg_sem` held keeps its type registered. The put balances
    // `device_initialize()`.
    unsafe {
        sysfs::remove_links(mdev);
        bindings::device_del(addr_of_mut!((*mdev).dev));
        bindings::put_device(addr_of_mut!((*mdev).dev));
    }
}

/// `release` of mdevs (`mdev_device_release()`).
///
/// # Safety
///
/// Called by the driver core when the last reference to an mdev of `create` is gone.
unsafe extern "C" fn device_release(dev: *mut bindings::device) {
    // SAFETY: `dev` is embedded in an mdev allocated by `create`, which holds a reference on its
    // type (a registered type, or one whose parent registration waits for this reference).
    let (mdev, ty) = unsafe {
        let mdev = kernel::container_of!(dev, bindings::mdev_device, dev);
        (mdev, Type::from_raw((*mdev).type_))
    };
    {
        let mut list = MDEV_LIST.lock();
        // SAFETY: Live until freed below.
        let uuid = Guid::from_raw(unsafe { &(*mdev).uuid });
        if list.tree().get(&uuid) == Some(&(mdev as usize)) {
            list.tree().remove(&uuid);
        }
        if !counts_itself(ty.parent()) {
            counter(ty.parent()).fetch_add(1, Ordering::Relaxed);
        }
    }
    // SAFETY: Live until freed below (a `Device`, for `dev_dbg!`, needs a reference count).
    let uuid = Guid::from_raw(unsafe { &(*mdev).uuid });
    pr_debug!("{uuid}: MDEV: destroying\n");
    // SAFETY: Pairs with the get in `create`; the type is not used afterwards. The memory was
    // allocated by `KBox` in `create`, and this was the last reference.
    unsafe {
        bindings::kobject_put(addr_of_mut!((*ty.as_raw()).kobj));
        drop(KBox::from_raw(mdev));
    }
}

/// Sends a `KOBJ_CHANGE` uevent with `env` for the parent device.
fn uevent(parent: &Parent, env: &'static CStr) {
    let mut envp = [env.as_char_ptr().cast_mut(), null_mut()];
    // SAFETY: The registering vendor holds a reference on the parent device until
    // `mdev_unregister_parent()` returns; `envp` is a NULL-terminated array of static strings.
    unsafe {
        bindings::kobject_uevent_env(
            addr_of_mut!((*parent_dev(parent)).kobj),
            bindings::kobject_action_KOBJ_CHANGE,
            envp.as_mut_ptr(),
        )
    };
}

/// `mdev_register_parent()` of `include/linux/mdev.h`.
///
/// # Safety
///
/// `parent` is writable and stays valid until [`mdev_unregister_parent`] returns and the
/// release of every type in `types` ran; the caller holds a reference on `dev` until then;
/// `drv` is registered with [`bus::mdev_register_driver`] and stays so as long as `parent`
/// lives; `types` has `nr_types` types, initialised as `include/linux/mdev.h` says.
#[no_mangle]
pub unsafe extern "C" fn mdev_register_parent(
    parent: *mut bindings::mdev_parent,
    dev: *mut bindings::device,
    drv: *mut bindings::mdev_driver,
    types: *mut *mut bindings::mdev_type,
    nr_types: c_uint,
) -> c_int {
    // SAFETY: `parent` is writable (function safety requirements); all-zero is its initial
    // state, as the C core's `memset()`.
    unsafe {
        core::ptr::write_bytes(parent, 0, 1);
        bindings::__init_rwsem(
            addr_of_mut!((*parent).unreg_sem),
            c_str!("&parent->unreg_sem").as_char_ptr(),
            kernel::static_lock_class!().as_ptr(),
        );
        (*parent).dev = dev;
        (*parent).mdev_driver = drv;
        (*parent).types = types;
        (*parent).nr_types = nr_types;
    }
    // SAFETY: Initialised above, registered until `mdev_unregister_parent()`.
    let p = unsafe { Parent::from_raw(parent) };
    // SAFETY: The caller passes a driver registered with `mdev_register_driver`.
    let max = unsafe { (*drv).max_instances };
    counter(p).store(max as i32, Ordering::Relaxed);
    from_result(|| {
        // Held for writing while the types appear, so that no mdev can be created before
        // registration succeeded (on failure the types go, and no mdev may hold them).
        // SAFETY: Initialised above.
        unsafe { bindings::down_write(addr_of_mut!((*parent).unreg_sem)) };
        // SAFETY: Being registered: initialised, without sysfs files, not visible yet.
        let ret = unsafe { sysfs::add_parent(p) };
        // SAFETY: Taken above.
        unsafe { bindings::up_write(addr_of_mut!((*parent).unreg_sem)) };
        ret?;
        // SAFETY: `COMPAT` is registered from `init` to exit, which enclose every vendor call;
        // the caller holds a reference on `dev` (function safety requirements).
        if unsafe { bindings::class_compat_create_link(COMPAT.load(Ordering::Relaxed), dev) } != 0 {
            dev_warn!(p.device(), "Failed to create compatibility class link\n");
        }
        dev_info!(p.device(), "MDEV: Registered\n");
        uevent(p, c_str!("MDEV_STATE=registered"));
        Ok(0)
    })
}

/// `mdev_unregister_parent()` of `include/linux/mdev.h`: removes every mdev of `parent` and
/// its sysfs files.
///
/// # Safety
///
/// `parent` was registered with [`mdev_register_parent`] and is not unregistered yet.
#[no_mangle]
pub unsafe extern "C" fn mdev_unregister_parent(parent: *mut bindings::mdev_parent) {
    /// Removes `dev` if it is an mdev.
    ///
    /// # Safety
    ///
    /// `dev` is a child of a parent whose `unreg_sem` the caller holds for writing.
    unsafe extern "C" fn remove_cb(dev: *mut bindings::device, _data: *mut c_void) -> c_int {
        // SAFETY: `device_for_each_child()` holds a reference on `dev` during the callback
        // (`klist_children_get()`).
        if unsafe { (*dev).bus } == bus::MDEV_BUS.get().cast_const() {
            // SAFETY: On the mdev bus, so an mdev of `create`; being a child, it is complete
            // (create holds `unreg_sem` until then and deletes it on failure) and not removed
            // (removal deletes it), and the write lock keeps `remove` out.
            unsafe { remove_common(kernel::container_of!(dev, bindings::mdev_device, dev)) };
        }
        0
    }

    // SAFETY: The caller passes a parent registered with `mdev_register_parent`, not yet
    // unregistered: initialised, with a valid device and types.
    let p = unsafe { Parent::from_raw(parent) };
    let dev = parent_dev(p);
    dev_info!(p.device(), "MDEV: Unregistering\n");
    // SAFETY: `unreg_sem` was initialised at registration; `COMPAT` is registered while vendors
    // can call us; the caller holds a reference on `dev`. `remove_cb` matches the callback type
    // and ignores `data`. Under the write lock it removes every mdev and none can be created, as
    // `remove_parent` requires of a parent whose `add_parent` succeeded (its registration).
    unsafe {
        bindings::down_write(addr_of_mut!((*parent).unreg_sem));
        bindings::class_compat_remove_link(COMPAT.load(Ordering::Relaxed), dev);
        bindings::device_for_each_child(dev, null_mut(), Some(remove_cb));
        sysfs::remove_parent(p);
        bindings::up_write(addr_of_mut!((*parent).unreg_sem));
    }
    uevent(p, c_str!("MDEV_STATE=unregistered"));
}

struct MdevCore {
    _bus: bus::Registration,
}

impl kernel::Module for MdevCore {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: Module init runs once, before the bus, the sysfs files and the users of our
        // exports can reach the lock (see `MDEV_LIST`).
        unsafe { MDEV_LIST.init() };
        let bus = bus::Registration::new()?;
        // SAFETY: The name is a static string.
        let compat = unsafe { bindings::class_compat_register(c_str!("mdev_bus").as_char_ptr()) };
        if compat.is_null() {
            return Err(ENOMEM);
        }
        COMPAT.store(compat, Ordering::Relaxed);
        Ok(MdevCore { _bus: bus })
    }
}

impl Drop for MdevCore {
    fn drop(&mut self) {
        // SAFETY: Registered in `init`; vendor modules (linked to our exports, so holding a
        // reference on us) are gone. The bus goes next (field), as in the C core's exit.
        unsafe { bindings::class_compat_unregister(COMPAT.swap(null_mut(), Ordering::Relaxed)) };
    }
}
