// SPDX-License-Identifier: GPL-2.0
// expect: error\[E0308\]: mismatched types
//! S3: a VFIO device can only be registered on a bound device, not on any `&device::Device`
//! (here: the parent, a class device without a driver).

use kernel::{c_str, device::Core, mdev, prelude::*, vfio};

module! {
    type: M,
    name: "cf_vfio_unbound",
    authors: ["mdev-rs developers"],
    description: "compile-fail control",
    license: "GPL v2",
}

struct Nothing;

#[vtable]
impl vfio::DeviceOps for Nothing {
    const NAME: &'static CStr = c_str!("cf");
}

struct D;

#[vtable]
impl mdev::Driver for D {
    type TypeData = ();
    type ParentData = ();
    type DeviceData = vfio::Registration<Nothing>;
    const NAME: &'static CStr = c_str!("cf");
    const DEVICE_API: &'static CStr = vfio::pci::DEVICE_API;
    const ATTRIBUTES: &'static [mdev::DeviceAttribute<Self>] =
        &[mdev::DeviceAttribute::read_only(c_str!("a"), show)];

    fn probe(m: &mdev::Device<Core<'_>>, _p: &(), _t: &()) -> Result<Self::DeviceData> {
        let _name = m.parent().device();
        let _ty = m.mdev_type().sysfs_name();
        vfio::Registration::new(m.parent().device(), Nothing)
    }
}

fn show(m: &mdev::Device, _d: &vfio::Registration<Nothing>, _b: &mut mdev::SysfsBuf<'_>) -> Result {
    let _uuid = m.uuid();
    Ok(())
}

struct M;

impl kernel::Module for M {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(M)
    }
}
