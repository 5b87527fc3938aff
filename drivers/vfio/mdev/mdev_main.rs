// SPDX-License-Identifier: GPL-2.0

//! Mediated device core, in Rust.
//!
//! A drop-in replacement for `mdev_core.c`, `mdev_sysfs.c` and `mdev_driver.c`: the same
//! `include/linux/mdev.h` API (exported by `mdev_exports.c`), the same sysfs ABI and errno
//! values. The `unsafe` glue lives in `kernel::mdev::core_impl`; this file is the policy:
//!
//! - a global device table (`MDEV_LIST`, keyed by UUID) decides duplicates (`EEXIST`), holds the
//!   `active` state that `remove` checks (`EAGAIN`), and guards the parents' shared instance
//!   counters (`EUSERS`), as `mdev_list_lock` does in C; it is never held across `device_add()`
//!   or a vendor probe;
//! - a parent's unregistration semaphore is only try-locked for reading by create and remove
//!   (`ENODEV` once unregistration started) and held for writing by unregistration, which
//!   removes every child and then the sysfs files.

use kernel::{
    alloc::flags::GFP_KERNEL,
    c_str,
    mdev::{
        core_impl::{BusRegistration, ClassCompat, Core, NewDevice, Statics},
        Device, Parent, Type,
    },
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::global_lock,
    uuid::Guid,
};

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

/// What the core remembers of an mdev.
struct Entry {
    /// Identity of the `struct mdev_device`.
    dev: usize,
    /// Created completely and not being removed.
    active: bool,
}

/// All mdevs of the system, by UUID.
struct DeviceTable(Option<RBTree<Guid, Entry>>);

impl DeviceTable {
    fn tree(&mut self) -> &mut RBTree<Guid, Entry> {
        self.0.get_or_insert_with(RBTree::new)
    }
}

global_lock! {
    // SAFETY: Initialised in `MdevCore::init` before the bus and the exported functions can
    // be used.
    unsafe(uninit) static MDEV_LIST: Mutex<DeviceTable> = DeviceTable(None);
}

global_lock! {
    // SAFETY: Initialised in `MdevCore::init`, as above.
    unsafe(uninit) static COMPAT: Mutex<Option<ClassCompat>> = None;
}

kernel::mdev_core_exports!(MdevCore, STATICS);

fn id(dev: &Device) -> usize {
    dev.as_raw() as usize
}

struct MdevCore {
    _bus: BusRegistration,
}

impl Core for MdevCore {
    fn create(ty: &Type, uuid: Guid) -> Result {
        let parent = ty.parent();
        let drv = parent.driver();
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let new = {
            let mut list = MDEV_LIST.lock();
            if list.tree().get(&uuid).is_some() {
                return Err(EEXIST);
            }
            let counter = parent.available_counter();
            if !drv.has_get_available() {
                // Only changed under `MDEV_LIST`, so load and store do not race.
                let n = counter.load(core::sync::atomic::Ordering::Relaxed);
                if n == 0 {
                    return Err(EUSERS);
                }
                counter.store(n - 1, core::sync::atomic::Ordering::Relaxed);
            }
            let new = match NewDevice::new::<MdevCore>(ty, uuid) {
                Ok(new) => new,
                Err(e) => {
                    // Unlike the C core, give the instance back.
                    if !drv.has_get_available() {
                        counter.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                    }
                    return Err(e);
                }
            };
            let entry = Entry {
                dev: id(new.device()),
                active: false,
            };
            list.tree().insert(node.into_node(uuid, entry));
            new
        };
        // From here on, dropping `new` releases the device, which takes it off the list.
        new.set_name()?;
        let held = parent.try_read_unreg().ok_or(ENODEV)?;
        new.add(&held)?;
        if let Err(e) = new.attach(drv).and_then(|()| new.create_links()) {
            new.del();
            return Err(e);
        }
        new.publish()?;
        if let Some(e) = MDEV_LIST.lock().tree().get_mut(&uuid) {
            e.active = true;
        }
        Ok(())
    }

    fn remove(dev: &Device) -> Result {
        {
            let mut list = MDEV_LIST.lock();
            match list.tree().get_mut(&dev.uuid()) {
                Some(e) if e.dev == id(dev) => {
                    if !e.active {
                        return Err(EAGAIN);
                    }
                    e.active = false;
                }
                _ => return Err(ENODEV),
            }
        }
        let held = dev.parent().try_read_unreg().ok_or(ENODEV)?;
        dev.remove_common(&held);
        Ok(())
    }

    fn release(dev: &Device) {
        let parent = dev.parent();
        let mut list = MDEV_LIST.lock();
        let uuid = dev.uuid();
        if matches!(list.tree().get(&uuid), Some(e) if e.dev == id(dev)) {
            list.tree().remove(&uuid);
        }
        if !parent.driver().has_get_available() {
            parent
                .available_counter()
                .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        }
    }

    fn register_parent(parent: &Parent) -> Result {
        parent.create_sysfs_files(&STATICS)?;
        let linked = match COMPAT.lock().as_ref() {
            Some(compat) => compat.create_link(parent.device()).is_ok(),
            None => false,
        };
        if !linked {
            parent.warn(c_str!("Failed to create compatibility class link\n"));
        }
        parent.info(c_str!("MDEV: Registered\n"));
        parent.uevent_change(c_str!("MDEV_STATE=registered"));
        Ok(())
    }

    fn unregister_parent(parent: &Parent) {
        parent.info(c_str!("MDEV: Unregistering\n"));
        {
            let held = parent.write_unreg();
            if let Some(compat) = COMPAT.lock().as_ref() {
                compat.remove_link(parent.device());
            }
            parent.for_each_mdev(&held, |dev| dev.remove_common(&held));
            parent.remove_sysfs_files(&held);
        }
        parent.uevent_change(c_str!("MDEV_STATE=unregistered"));
    }

    fn statics() -> &'static Statics {
        &STATICS
    }
}

impl kernel::Module for MdevCore {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: Called exactly once, before anything else can use the locks.
        unsafe {
            MDEV_LIST.init();
            COMPAT.init();
        }
        let bus = BusRegistration::new()?;
        *COMPAT.lock() = Some(ClassCompat::register(c_str!("mdev_bus"))?);
        Ok(MdevCore { _bus: bus })
    }
}

impl Drop for MdevCore {
    fn drop(&mut self) {
        // The class goes first, then the bus (field), as in the C core's exit.
        drop(COMPAT.lock().take());
    }
}
