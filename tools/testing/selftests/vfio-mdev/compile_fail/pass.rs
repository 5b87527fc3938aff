// SPDX-License-Identifier: GPL-2.0
// expect: pass
//! The control case: the legal uses of what the other cases misuse, so that their errors come
//! from the misuse and not from the harness.

use kernel::{c_str, device::Core, mdev, prelude::*, vfio};

module! {
    type: M,
    name: "cf_pass",
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
        vfio::Registration::new(m.device(), Nothing)
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

#[allow(dead_code)]
#[pin_data]
struct Dma {
    #[pin]
    map: vfio::PinnedMap,
}

#[vtable]
impl vfio::DeviceOps for Dma {
    const NAME: &'static CStr = c_str!("cf-dma");

    fn pinned_map(&self) -> &vfio::PinnedMap {
        &self.map
    }

    fn write(
        dev: &vfio::Device<Self>,
        _buf: &mut kernel::uaccess::UserSliceReader,
        _pos: u64,
    ) -> Result<usize> {
        let m = dev.map.acquire(dev, 0x1000, 8, true)?;
        m.write(0, &[0; 8])?;
        Ok(8)
    }
}
