// SPDX-License-Identifier: GPL-2.0

//! A mediated DMA engine: copies, fills and checksums guest memory through pinned pages.
//!
//! The device (PCI 4d44:4d41, `vfio-pci`) has one 4 KiB register BAR. Userspace writes the
//! source and destination IOVAs, a length and an operation, then rings the doorbell; the
//! operation runs synchronously through [`kernel::vfio::PinnedMap`], which pins the guest pages
//! with `vfio_pin_pages()` and keeps them until userspace unmaps them or closes the device.
//! A request that cannot complete (unmapped IOVA, read-only destination, bad length or
//! operation) sets an error status and changes no guest memory. A completion interrupt
//! (INTx or MSI through an eventfd) can be enabled.
//!
//! The device model (registers, configuration space, interrupts, migration) is in
//! `mdma_dev.rs`, shared with `mdma_edu`, whose requests QEMU's edu device runs. Migration
//! streams are `"MDMA"`, version 1. Every page the engine writes (copy, fill) is
//! recorded by the pinned-page map while userspace logs DMA (`DMA_LOGGING_*`), so QEMU
//! re-sends exactly those pages.
//!
//! Each device also has `vendor/dma_stats` (the map's counters) and `vendor/map_bench` (write
//! a power of two N: benchmark the map's data structure with N single-page entries; read the
//! result).

use core::sync::atomic::AtomicBool;
use kernel::{c_str, class, device, mdev, prelude::*, sync::Arc, vfio::pci};

#[path = "mdma_dev.rs"]
mod dev;

use dev::{crc32_update, DmaError, Engine, Request};

module! {
    type: MdmaModule,
    name: "mdma",
    authors: ["mdev-rs developers"],
    description: "Mediated DMA engine sample",
    license: "GPL v2",
}

const MDMA_NAME: &CStr = c_str!("mdma");

/// The CPU engine: copies through a bounce buffer with the pinned-page map's accessors.
struct Cpu;

/// Bounce buffer size for a request of `len` bytes.
fn bounce_size(len: usize) -> usize {
    len.min(64 * 1024)
}

impl Engine for Cpu {
    fn run(&self, req: &Request<'_>, _stop: &AtomicBool) -> Result<Option<u32>, DmaError> {
        let len = req.len();
        let mut bounce = KVec::from_elem(0u8, bounce_size(len), GFP_KERNEL)?;
        let mut crc = !0u32;
        let mut pos = 0;
        while pos < len {
            let n = (len - pos).min(bounce.len());
            let buf = &mut bounce[..n];
            match req {
                Request::Copy { src, dst } => {
                    src.read(pos, buf)?;
                    dst.write(pos, buf)?;
                }
                Request::Fill { dst, byte } => dst.fill(pos, n, *byte)?,
                Request::Crc32 { src } => {
                    src.read(pos, buf)?;
                    crc = crc32_update(crc, buf);
                }
            }
            pos += n;
        }
        Ok(matches!(req, Request::Crc32 { .. }).then_some(!crc))
    }
}

/// The mdev driver.
struct MdmaDriver;

type Reg = dev::Reg<Cpu>;

#[vtable]
impl mdev::Driver for MdmaDriver {
    type TypeData = ();
    type ParentData = ();
    type DeviceData = Reg;

    const NAME: &'static CStr = MDMA_NAME;
    const DEVICE_API: &'static CStr = pci::DEVICE_API;
    const MAX_INSTANCES: u32 = dev::MAX_INSTANCES;
    const ATTRIBUTE_GROUP: Option<&'static CStr> = Some(c_str!("vendor"));
    const ATTRIBUTES: &'static [mdev::DeviceAttribute<Self>] = &[
        mdev::DeviceAttribute::read_only(c_str!("dma_stats"), dev::show_dma_stats),
        mdev::DeviceAttribute::read_write(
            c_str!("map_bench"),
            dev::show_map_bench,
            dev::store_map_bench,
        ),
    ];

    fn probe(mdev: &mdev::Device<device::Core<'_>>, _parent: &(), _ty: &()) -> Result<Reg> {
        dev::new_device(mdev, Arc::new(Cpu, GFP_KERNEL)?)
    }
}

// Fields drop in declaration order: the parent registration (which removes every mdev), then
// the parent device, the driver and the class.
//
// The parent is a class device, not a faux device: the mdev ABI names every type
// "<driver of the parent>-<type>" (`dev_driver_string()`, the class name for a device without a
// driver), so under a faux parent the type would be "faux_driver-dma" instead of "mdma-dma".
struct MdmaModule {
    _parent: Pin<KBox<mdev::ParentRegistration<MdmaDriver>>>,
    _dev: class::ClassDevice,
    _driver: Arc<mdev::DriverRegistration<MdmaDriver>>,
    _class: Arc<class::Class>,
}

impl kernel::Module for MdmaModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let driver = Arc::pin_init(mdev::DriverRegistration::new(module), GFP_KERNEL)?;
        let cls = class::Class::new(MDMA_NAME)?;
        let dev = class::ClassDevice::new(&cls, MDMA_NAME)?;
        let types = dev::types()?;
        let parent = KBox::pin_init(
            mdev::ParentRegistration::new(dev.device(), &driver, types, ()),
            GFP_KERNEL,
        )?;
        Ok(MdmaModule {
            _parent: parent,
            _dev: dev,
            _driver: driver,
            _class: cls,
        })
    }
}
