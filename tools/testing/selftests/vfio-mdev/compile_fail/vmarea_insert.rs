// SPDX-License-Identifier: GPL-2.0
// expect: error\[E0599\]: no method named `set_mixedmap`
// A device mapping gets its pages only from the fault handler of `VmArea::map_pages`, which
// the abstraction revokes on reset and removal: `VmArea` does not hand out 7.3's `VmaNew`,
// whose `set_mixedmap().vm_insert_page()` would put pages in the mapping at `mmap` time that no
// revocation could see (the area is not in the file's tree yet).

legal_in_probe!();

legal_in_attribute!();

#[allow(dead_code)]
struct Sneaky {
    page: kernel::page::Page,
}

#[vtable]
impl vfio::DeviceOps for Sneaky {
    const NAME: &'static CStr = c_str!("cf-sneaky");

    fn mmap(dev: &vfio::Device<Self>, vma: &vfio::VmArea) -> Result {
        vma.set_mixedmap().vm_insert_page(vma.start(), &dev.page)
    }
}
