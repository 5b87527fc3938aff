// SPDX-License-Identifier: GPL-2.0
// expect: error\[E0624\]: method `page` is private
// The pages of device memory are shared with userspace: a driver reaches them only through
// the bounds-checked copies of `SharedPages` (and mappings, dma-bufs), never as a raw page it
// could free, map twice or keep past the memory.

legal_in_probe!();

legal_in_attribute!();

#[allow(dead_code)]
fn raw_page(fb: &vfio::mmap::SharedPages) -> Result<*mut kernel::bindings::page> {
    fb.page(0)
}
