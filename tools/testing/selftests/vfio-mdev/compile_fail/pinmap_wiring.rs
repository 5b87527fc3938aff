// SPDX-License-Identifier: GPL-2.0
// expect: error\[E0624\]: method `unmap` is private
// S5/S6: a vendor cannot unpin through a `PinnedMap` itself (possibly through another
// device, or while pins are in use): the VFIO abstraction owns the map's open, unmap and close.

legal_in_probe!();

legal_in_attribute!();

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

    fn close(dev: &vfio::Device<Self>) {
        dev.map.unmap(dev, 0, 4096);
    }
}
