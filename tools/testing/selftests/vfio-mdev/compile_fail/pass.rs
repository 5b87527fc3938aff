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

/// Device memory: mapped through `map_pages`, a region display plane, dma-bufs of it, and a
/// `gpu` type class.
#[allow(dead_code)]
struct Display {
    fb: kernel::sync::Arc<vfio::mmap::SharedPages>,
}

#[vtable]
impl vfio::DeviceOps for Display {
    const NAME: &'static CStr = c_str!("cf-display");

    fn mmap(dev: &vfio::Device<Self>, vma: &vfio::VmArea) -> Result {
        if vma.pgoff() != 1 {
            return Err(EINVAL);
        }
        vma.map_pages(dev, &dev.fb, 0)
    }

    fn query_gfx_plane(_dev: &vfio::Device<Self>, _ty: u32) -> Result<vfio::gfx::Plane> {
        Ok(vfio::gfx::Plane {
            id: 16,
            ..Default::default()
        })
    }

    fn get_gfx_dmabuf(dev: &vfio::Device<Self>, _id: u32) -> Result<vfio::dmabuf::DmaBuf> {
        dev.fb.export(0, dev.fb.size())
    }
}

#[allow(dead_code)]
fn gpu_type() -> mdev::TypeInfo<()> {
    mdev::TypeInfo {
        sysfs_name: c_str!("gpu"),
        pretty_name: None,
        class: Some(mdev::TypeClass::Gpu {
            fb_length: 2 << 20,
            hres: 640,
            vres: 480,
            heads: 1,
        }),
        data: (),
    }
}
