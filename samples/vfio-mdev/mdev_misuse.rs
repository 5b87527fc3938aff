// SPDX-License-Identifier: GPL-2.0

//! A vendor driver that misuses the safe mdev/VFIO API on purpose, for the tests.
//!
//! Safe Rust only: whatever it does must not crash or corrupt the kernel. What it does:
//!
//! - it keeps every [`vfio::Registration`] it creates in its parent data (a list of "my
//!   devices", which looks reasonable) instead of returning it from `probe` as its device data,
//!   so the registrations outlive `remove` and live until the module is unloaded;
//! - it also keeps a reference on the `struct device` of every mdev it probed (an
//!   `ARef<device::Device>`, never dropped in `remove`), so removed mdevs are released only when
//!   the parent registration drops its data, after the core unregistered the parent.
//!
//! The mdev core's release of an mdev reads its type and parent, which live in the parent
//! registration, and a type's own release (deferred with `CONFIG_DEBUG_KOBJECT_RELEASE`) puts
//! the parent device: the parent registration must not free them before those releases ran.
//!
//! The VFIO core uses the driver of a VFIO device's parent for as long as the device is
//! registered, so such a registration must not stay registered after its mdev is unbound: the
//! abstraction unregisters it at unbind (through `Devres`). The test
//! (`scripts/guest/misuse.sh`) checks that the VFIO device is gone after `remove`, that
//! creating and removing again works, and that unloading with registrations kept and mdevs
//! present leaves no kernel report.
//!
//! It also keeps a reference on its parent, a [`class::ClassDevice`], until after it dropped the
//! device and its [`class::Class`], and prints through it then: the driver core reads the class
//! (its name) for that, so the class's memory must live as long as its devices, not as long as
//! the Rust handle.

use kernel::{
    c_str, class,
    device::{self, Core},
    mdev,
    prelude::*,
    sync::{aref::ARef, new_mutex, Arc, Mutex},
    time::{delay::fsleep, Delta},
    vfio,
};

module! {
    type: MisuseModule,
    name: "mdev_misuse",
    authors: ["mdev-rs developers"],
    description: "Misuse of the safe mdev/VFIO Rust API, for tests",
    license: "GPL v2",
}

const NAME: &CStr = c_str!("mdev_misuse");
/// The class of the parent: a name of its own, so that a line printed through the parent shows
/// whether the class's name was read (the driver core prints `<class> <device>: ...`). The
/// mdev core names the types after it (`mdev_misuse_class-keep`).
const CLASS_NAME: &CStr = c_str!("mdev_misuse_class");

/// A VFIO device that implements nothing beyond its name.
struct Nothing;

#[vtable]
impl vfio::DeviceOps for Nothing {
    const NAME: &'static CStr = c_str!("vfio-mdev-misuse");
}

/// The parent's data: every registration ever made and every mdev probed, kept until unload.
#[pin_data]
struct Kept {
    #[pin]
    regs: Mutex<KVec<vfio::Registration<Nothing>>>,
    #[pin]
    mdevs: Mutex<KVec<ARef<device::Device>>>,
}

struct MisuseDriver;

#[vtable]
impl mdev::Driver for MisuseDriver {
    type TypeData = ();
    type ParentData = Kept;
    type DeviceData = ();

    const NAME: &'static CStr = NAME;
    const DEVICE_API: &'static CStr = vfio::pci::DEVICE_API;
    const MAX_INSTANCES: u32 = 4;

    fn probe(mdev: &mdev::Device<Core<'_>>, kept: &Kept, _ty: &()) -> Result {
        let reg = vfio::Registration::new(mdev.device(), Nothing)?;
        kept.regs.lock().push(reg, GFP_KERNEL)?;
        let dev: &device::Device = mdev.as_ref();
        kept.mdevs.lock().push(dev.into(), GFP_KERNEL)?;
        Ok(())
    }
}

/// A reference on the parent device kept after its class was unregistered; printed through
/// (which reads the class's name) when dropped. With `CONFIG_DEBUG_KOBJECT_RELEASE` the driver
/// core frees released objects 1 to 4 s late, so it waits 5 s first: what goes with the class
/// is gone by then.
struct LateRef(ARef<device::Device>);

impl Drop for LateRef {
    fn drop(&mut self) {
        if cfg!(CONFIG_DEBUG_KOBJECT_RELEASE) {
            fsleep(Delta::from_secs(5));
        }
        dev_info!(self.0, "kept past its class\n");
    }
}

// Fields drop in declaration order: the parent registration (which removes every mdev, and
// then drops the kept registrations with the parent data), its device, the driver, the class,
// and last a reference on the parent device.
struct MisuseModule {
    _parent: Pin<KBox<mdev::ParentRegistration<MisuseDriver>>>,
    _dev: class::ClassDevice,
    _driver: Arc<mdev::DriverRegistration<MisuseDriver>>,
    _class: Arc<class::Class>,
    _late: LateRef,
}

impl kernel::Module for MisuseModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let driver = Arc::pin_init(mdev::DriverRegistration::new(module), GFP_KERNEL)?;
        let cls = class::Class::new(CLASS_NAME)?;
        let dev = class::ClassDevice::new(&cls, NAME)?;
        let mut types = KVec::new();
        types.push(
            mdev::TypeInfo {
                sysfs_name: c_str!("keep"),
                pretty_name: Some(c_str!("Keeps its VFIO registrations")),
                class: None,
                data: (),
            },
            GFP_KERNEL,
        )?;
        let parent = KBox::pin_init(
            mdev::ParentRegistration::new(
                dev.device(),
                &driver,
                types,
                pin_init!(Kept {
                    regs <- new_mutex!(KVec::new()),
                    mdevs <- new_mutex!(KVec::new()),
                }),
            ),
            GFP_KERNEL,
        )?;
        let late = LateRef((&dev).into());
        Ok(MisuseModule {
            _parent: parent,
            _dev: dev,
            _driver: driver,
            _class: cls,
            _late: late,
        })
    }
}
