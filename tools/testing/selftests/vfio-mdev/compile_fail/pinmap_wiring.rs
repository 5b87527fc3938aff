// SPDX-License-Identifier: GPL-2.0
// expect: error\[E0624\]: method `unmap` is private
//! S5/S6: a vendor cannot unpin through a `PinnedMap` itself (possibly through another
//! device, or while pins are in use): the VFIO abstraction owns the map's open, unmap and close.

use kernel::{c_str, prelude::*, vfio};

module! {
    type: M,
    name: "cf_pinmap_wiring",
    authors: ["mdev-rs developers"],
    description: "compile-fail case",
    license: "GPL v2",
}

#[pin_data]
struct Dma {
    #[pin]
    map: vfio::PinnedMap,
}

#[vtable]
impl vfio::DeviceOps for Dma {
    const NAME: &'static CStr = c_str!("cf");

    fn pinned_map(&self) -> &vfio::PinnedMap {
        &self.map
    }

    fn close(dev: &vfio::Device<Self>) {
        dev.map.unmap(dev, 0, 4096);
    }
}

struct M;

impl kernel::Module for M {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(M)
    }
}
