// SPDX-License-Identifier: GPL-2.0
// expect: pass
// The control case: the legal uses of what the other cases misuse (the parent's device, the
// type's name, the UUID, a VFIO registration in probe, a PinnedMap acquired for writing), so
// that their errors come from the misuse and not from the harness.

legal_in_probe!();

legal_in_attribute!();

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
