// SPDX-License-Identifier: GPL-2.0

//! Mediated virtual PCI display host device driver, in Rust.
//!
//! A port of `samples/vfio-mdev/mdpy.c` (see `mdpy-defs.h` for the device) to the
//! `kernel::mdev` and `kernel::vfio` abstractions, with no `unsafe` code. It behaves like the C
//! sample: class and parent device `mdpy`, types `mdpy-vga` (640x480), `mdpy-xga` (1024x768)
//! and `mdpy-hd` (1920x1080), at most `count` (module parameter, 4) devices in total, a PCI
//! display 1b36:000f whose configuration space has a vendor capability with the framebuffer's
//! format, width and height, BAR0 the framebuffer (XRGB8888, the next power of two of its
//! size), mappable, and region 16 its display plane (`VFIO_DEVICE_QUERY_GFX_PLANE`,
//! region type); the vendor attribute `vendor/resolution`.
//!
//! Where the C sample is wrong this port is not (see "Differences from the C samples" in the
//! vendor guide): reads and writes of BAR0 reach the framebuffer at their offset (the C sample
//! copies every one to or from its first bytes), and a 1- or 2-byte write to the BAR0 register
//! changes those bytes of it (the C sample reads 4 bytes from a 1- or 2-byte variable). The
//! framebuffer is mapped through `kernel::vfio::mmap`, so the abstraction zaps the user's
//! mappings on reset and revokes them when the device is removed. The types also declare the
//! `gpu` class (`class`, `fb_length`, `resolution`, `heads` in the type directory) on the Rust
//! mdev core.

use core::{
    fmt::Write,
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::{
    c_str, class,
    device::Core,
    mdev,
    page::PAGE_SIZE,
    prelude::*,
    sync::{new_mutex, Arc, Mutex},
    uaccess::{UserPtr, UserSliceReader, UserSliceWriter},
    vfio::{
        self, gfx,
        mmap::SharedPages,
        pci::{self, cfg, ConfigSpace},
        Caps, DeviceInfo, IrqInfo, RegionInfo, VmArea,
    },
};

module! {
    type: MdpyModule,
    name: "mdpy_rs",
    authors: ["mdev-rs developers"],
    description: "Mediated virtual PCI display host device driver",
    license: "GPL v2",
    params: {
        count: u32 {
            default: 4,
            description: "number of mdpy devices",
        },
    },
}

const MDPY_NAME: &CStr = c_str!("mdpy");

/// `MDPY_CONFIG_SPACE_SIZE`: the configuration space region is 255 bytes.
const CONFIG_SPACE_SIZE: u64 = 0xff;
/// BAR0 (the framebuffer) starts at this offset of the device file.
const MEMORY_BAR_OFFSET: u64 = PAGE_SIZE as u64;
/// The region index of the display plane (BAR0 again).
const DISPLAY_REGION: u32 = 16;

// `mdpy-defs.h`
const PCI_VENDOR_ID_REDHAT: u16 = 0x1b36;
const MDPY_PCI_DEVICE_ID: u16 = 0x000f;
const PCI_SUBVENDOR_ID_REDHAT_QUMRANET: u16 = 0x1af4;
const PCI_SUBDEVICE_ID_QEMU: u16 = 0x1100;
const VENDORCAP_OFFSET: usize = 0x40;
const VENDORCAP_SIZE: u8 = 0x10;
const FORMAT_OFFSET: usize = VENDORCAP_OFFSET + 0x04;
const WIDTH_OFFSET: usize = VENDORCAP_OFFSET + 0x08;
const HEIGHT_OFFSET: usize = VENDORCAP_OFFSET + 0x0c;

const PCI_COMMAND_IO: u16 = 0x1;
const PCI_COMMAND_MEMORY: u16 = 0x2;
const PCI_STATUS_CAP_LIST: u16 = 0x10;
const PCI_CLASS_DISPLAY_OTHER: u16 = 0x0380;
const PCI_BASE_ADDRESS_MEM_PREFETCH: u32 = 0x08;
const PCI_BASE_ADDRESS_MEM_MASK: u32 = !0xf;
const PCI_CAP_ID_VNDR: u8 = 0x09;

/// `DRM_FORMAT_XRGB8888`: fourcc "XR24".
const DRM_FORMAT_XRGB8888: u32 = u32::from_le_bytes(*b"XR24");

/// A type: the framebuffer's format and geometry.
struct MdpyType {
    format: u32,
    bytepp: u32,
    width: u32,
    height: u32,
}

impl MdpyType {
    fn stride(&self) -> u32 {
        self.width * self.bytepp
    }

    /// The framebuffer (BAR0) size: the next power of two of the picture's.
    fn memsize(&self) -> u32 {
        (self.stride() * self.height).next_power_of_two()
    }
}

/// Paints the gray gradient of `mdpy_reset()` into `fb`, one level per line.
fn paint(fb: &SharedPages, ty: &MdpyType) -> Result {
    let stride = ty.stride();
    for i in 0..ty.height {
        // At most 255: `i < height`.
        let level = (i * 255 / ty.height) as u8;
        fb.fill((i * stride) as usize, stride as usize, level)?;
    }
    Ok(())
}

/// The state the C sample keeps under `ops_lock`.
struct State {
    vconfig: ConfigSpace<256>,
    bar_mask: u32,
}

/// An mdpy device: the VFIO device's data.
#[pin_data]
struct MdpyDevice {
    ty: &'static MdpyType,
    memsize: u32,
    fb: Arc<SharedPages>,
    /// `num_irqs` of the last `VFIO_DEVICE_GET_INFO` (0 before the first).
    num_irqs: AtomicU32,
    #[pin]
    state: Mutex<State>,
}

impl MdpyDevice {
    /// `mdpy_create_config_space()`.
    fn config_space(ty: &MdpyType, memsize: u32) -> Result<State> {
        let mut c = ConfigSpace::new();
        c.set_u16(cfg::VENDOR_ID, PCI_VENDOR_ID_REDHAT)?;
        c.set_u16(cfg::DEVICE_ID, MDPY_PCI_DEVICE_ID)?;
        c.set_u16(cfg::SUBSYSTEM_VENDOR_ID, PCI_SUBVENDOR_ID_REDHAT_QUMRANET)?;
        c.set_u16(cfg::SUBSYSTEM_ID, PCI_SUBDEVICE_ID_QEMU)?;
        c.set_u16(cfg::COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY)?;
        c.set_u16(cfg::STATUS, PCI_STATUS_CAP_LIST)?;
        c.set_u16(cfg::CLASS_DEVICE, PCI_CLASS_DISPLAY_OTHER)?;
        c.set_u8(cfg::REVISION_ID, 0x01)?;
        // memory, 32-bit, prefetchable
        c.set_u32(cfg::BASE_ADDRESS_0, PCI_BASE_ADDRESS_MEM_PREFETCH)?;
        c.set_u8(cfg::CAPABILITY_LIST, VENDORCAP_OFFSET as u8)?;
        c.set_u8(VENDORCAP_OFFSET, PCI_CAP_ID_VNDR)?;
        c.set_u8(VENDORCAP_OFFSET + 1, 0)?;
        c.set_u8(VENDORCAP_OFFSET + 2, VENDORCAP_SIZE)?;
        c.set_u32(FORMAT_OFFSET, ty.format)?;
        c.set_u32(WIDTH_OFFSET, ty.width)?;
        c.set_u32(HEIGHT_OFFSET, ty.height)?;
        Ok(State {
            vconfig: c,
            bar_mask: (!memsize).wrapping_add(1),
        })
    }

    /// `mdpy_reset()`: a gray gradient, one level per line.
    fn reset(&self) -> Result {
        paint(&self.fb, self.ty)
    }

    /// `handle_pci_cfg_write()`: only the BAR0 register is writable.
    ///
    /// A 1- or 2-byte write changes those bytes of the register (the C sample reads 4 bytes
    /// from the 1- or 2-byte value it was given); the result is handled as a 4-byte write.
    fn cfg_write(dev: &vfio::Device<Self>, st: &mut State, off: usize, bytes: &[u8]) -> Result {
        if off != cfg::BASE_ADDRESS_0 {
            return Ok(());
        }
        let mut v = st.vconfig.u32_at(off)?.to_le_bytes();
        v[..bytes.len()].copy_from_slice(bytes);
        let mut addr = u32::from_le_bytes(v);
        if addr == 0xffff_ffff {
            addr &= st.bar_mask;
        } else {
            addr &= PCI_BASE_ADDRESS_MEM_MASK;
            if addr != 0 {
                dev_info!(dev.parent(), "BAR0 @ 0x{:x}\n", addr);
            }
        }
        addr |= u32::from(st.vconfig.u8_at(off)?) & !PCI_BASE_ADDRESS_MEM_MASK;
        st.vconfig.set_u32(off, addr)
    }

    /// `mdev_access()`: one naturally aligned access of 1, 2 or 4 bytes at file offset `pos`.
    fn access(dev: &vfio::Device<Self>, pos: u64, buf: &mut [u8], write: bool) -> Result {
        let len = buf.len() as u64;
        if pos < CONFIG_SPACE_SIZE {
            // An aligned access below 0xff ends at 0x100 at the latest.
            let mut st = dev.state.lock();
            if write {
                Self::cfg_write(dev, &mut st, pos as usize, buf)
            } else {
                st.vconfig.read(pos as usize, buf)
            }
        } else if pos >= MEMORY_BAR_OFFSET
            && pos + len <= MEMORY_BAR_OFFSET + u64::from(dev.memsize)
        {
            let off = (pos - MEMORY_BAR_OFFSET) as usize;
            if write {
                dev.fb.write(off, buf)
            } else {
                dev.fb.read(off, buf)
            }
        } else {
            Err(EFAULT)
        }
    }
}

#[vtable]
impl vfio::DeviceOps for MdpyDevice {
    const NAME: &'static CStr = c_str!("vfio-mdpy");
    const GFX_PLANE: gfx::PlaneKind = gfx::PlaneKind::Region;

    fn read(dev: &vfio::Device<Self>, buf: &mut UserSliceWriter, pos: u64) -> Result<usize> {
        pci::read_split(buf, pos, |pos, b| Self::access(dev, pos, b, false)).map_err(|_| EFAULT)
    }

    fn write(dev: &vfio::Device<Self>, buf: &mut UserSliceReader, pos: u64) -> Result<usize> {
        pci::write_split(buf, pos, |pos, b| {
            let mut v = [0u8; 4];
            let v = &mut v[..b.len()];
            v.copy_from_slice(b);
            Self::access(dev, pos, v, true)
        })
        .map_err(|_| EFAULT)
    }

    fn mmap(dev: &vfio::Device<Self>, vma: &VmArea) -> Result {
        if vma.pgoff() as u64 != MEMORY_BAR_OFFSET / PAGE_SIZE as u64 {
            return Err(EINVAL);
        }
        if vma.end() - vma.start() > dev.memsize as usize {
            return Err(EINVAL);
        }
        // `map_pages` refuses a private mapping (EINVAL), as the C sample does.
        vma.map_pages(dev, &dev.fb, 0)
    }

    fn device_info(dev: &vfio::Device<Self>) -> Result<DeviceInfo> {
        dev.num_irqs.store(pci::NUM_IRQS, Ordering::Relaxed);
        Ok(DeviceInfo {
            flags: vfio::device_flags::PCI,
            num_regions: pci::NUM_REGIONS,
            num_irqs: pci::NUM_IRQS,
        })
    }

    fn region_info(dev: &vfio::Device<Self>, index: u32, _caps: &mut Caps) -> Result<RegionInfo> {
        use vfio::region_flags::{MMAP, READ, WRITE};
        Ok(match index {
            pci::CONFIG_REGION_INDEX => RegionInfo {
                offset: 0,
                size: CONFIG_SPACE_SIZE,
                flags: READ | WRITE,
            },
            pci::BAR0_REGION_INDEX | DISPLAY_REGION => RegionInfo {
                offset: MEMORY_BAR_OFFSET,
                size: dev.memsize.into(),
                flags: READ | WRITE | MMAP,
            },
            i if i < pci::NUM_REGIONS => RegionInfo::default(),
            _ => return Err(EINVAL),
        })
    }

    fn irq_info(dev: &vfio::Device<Self>, index: u32) -> Result<IrqInfo> {
        if index >= dev.num_irqs.load(Ordering::Relaxed) {
            return Err(EINVAL);
        }
        Ok(IrqInfo { flags: 0, count: 0 })
    }

    fn reset(dev: &vfio::Device<Self>) -> Result {
        dev.reset()
    }

    fn query_gfx_plane(dev: &vfio::Device<Self>, _drm_plane_type: u32) -> Result<gfx::Plane> {
        Ok(gfx::Plane {
            drm_format: dev.ty.format,
            width: dev.ty.width,
            height: dev.ty.height,
            stride: dev.ty.stride(),
            size: dev.memsize,
            id: DISPLAY_REGION,
            ..Default::default()
        })
    }

    fn ioctl(_dev: &vfio::Device<Self>, cmd: u32, _arg: UserPtr) -> Result<isize> {
        // As the C sample: interrupt requests are refused before anything is read.
        if cmd == vfio::DEVICE_SET_IRQS {
            return Err(EINVAL);
        }
        Err(ENOTTY)
    }
}

/// The mdev driver.
struct Mdpy;

fn show_resolution(
    _mdev: &mdev::Device,
    reg: &vfio::Registration<MdpyDevice>,
    buf: &mut mdev::SysfsBuf<'_>,
) -> Result {
    writeln!(buf, "{}x{}", reg.ty.width, reg.ty.height).map_err(|_| EINVAL)
}

static TYPES: [MdpyType; 3] = [
    MdpyType {
        format: DRM_FORMAT_XRGB8888,
        bytepp: 4,
        width: 640,
        height: 480,
    },
    MdpyType {
        format: DRM_FORMAT_XRGB8888,
        bytepp: 4,
        width: 1024,
        height: 768,
    },
    MdpyType {
        format: DRM_FORMAT_XRGB8888,
        bytepp: 4,
        width: 1920,
        height: 1080,
    },
];

#[vtable]
impl mdev::Driver for Mdpy {
    type TypeData = &'static MdpyType;
    type ParentData = ();
    type DeviceData = vfio::Registration<MdpyDevice>;

    const NAME: &'static CStr = MDPY_NAME;
    const DEVICE_API: &'static CStr = pci::DEVICE_API;
    const ATTRIBUTE_GROUP: Option<&'static CStr> = Some(c_str!("vendor"));
    const ATTRIBUTES: &'static [mdev::DeviceAttribute<Self>] = &[mdev::DeviceAttribute::read_only(
        c_str!("resolution"),
        show_resolution,
    )];

    fn max_instances() -> u32 {
        module_parameters::count.value()
    }

    fn probe(
        mdev: &mdev::Device<Core<'_>>,
        _parent: &(),
        ty: &&'static MdpyType,
    ) -> Result<vfio::Registration<MdpyDevice>> {
        let ty: &'static MdpyType = ty;
        let memsize = ty.memsize();
        let fb = SharedPages::new(memsize as usize)?;
        // All of it now, as the C sample's vmalloc_user(), painted before userspace can open
        // the device.
        fb.populate()?;
        paint(&fb, ty)?;
        let state = MdpyDevice::config_space(ty, memsize)?;
        let reg = vfio::Registration::new(
            mdev.device(),
            try_pin_init!(MdpyDevice {
                ty,
                memsize,
                fb,
                num_irqs: AtomicU32::new(0),
                state <- new_mutex!(state),
            }),
        )?;
        dev_info!(
            mdev.device(),
            "mdpy_init_dev: {} ({}x{})\n",
            mdev.mdev_type().pretty_name().unwrap_or(c_str!("")),
            ty.width,
            ty.height
        );
        Ok(reg)
    }

    fn remove(mdev: &mdev::Device<Core<'_>>, data: vfio::Registration<MdpyDevice>) {
        dev_info!(mdev.device(), "mdpy_remove\n");
        drop(data);
    }

    fn description(_parent: &(), ty: &&'static MdpyType, buf: &mut mdev::SysfsBuf<'_>) -> Result {
        writeln!(
            buf,
            "virtual display, {}x{} framebuffer",
            ty.width, ty.height
        )
        .map_err(|_| EINVAL)
    }
}

struct MdpyModule {
    // Dropped in this order, as the C sample: the parent (removes every mdev), its device,
    // the driver, the class.
    _parent: Pin<KBox<mdev::ParentRegistration<Mdpy>>>,
    _dev: class::ClassDevice,
    _driver: Arc<mdev::DriverRegistration<Mdpy>>,
    _class: Arc<class::Class>,
}

impl kernel::Module for MdpyModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let driver = Arc::pin_init(mdev::DriverRegistration::new(module), GFP_KERNEL)?;
        let cls = class::Class::new(MDPY_NAME)?;
        let dev = class::ClassDevice::new(&cls, MDPY_NAME)?;
        let mut types = KVec::new();
        for (ty, (name, pretty)) in TYPES.iter().zip([
            (c_str!("vga"), c_str!("mdpy-vga")),
            (c_str!("xga"), c_str!("mdpy-xga")),
            (c_str!("hd"), c_str!("mdpy-hd")),
        ]) {
            types.push(
                mdev::TypeInfo {
                    sysfs_name: name,
                    pretty_name: Some(pretty),
                    class: Some(mdev::TypeClass::Gpu {
                        fb_length: ty.memsize().into(),
                        hres: ty.width,
                        vres: ty.height,
                        heads: 1,
                    }),
                    data: ty,
                },
                GFP_KERNEL,
            )?;
        }
        let parent = KBox::pin_init(
            mdev::ParentRegistration::new(dev.device(), &driver, types, ()),
            GFP_KERNEL,
        )?;
        Ok(MdpyModule {
            _parent: parent,
            _dev: dev,
            _driver: driver,
            _class: cls,
        })
    }
}
