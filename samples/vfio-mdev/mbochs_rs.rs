// SPDX-License-Identifier: GPL-2.0

//! Mediated virtual PCI display host device driver (bochs dispi), in Rust.
//!
//! A port of `samples/vfio-mdev/mbochs.c` to the `kernel::mdev` and `kernel::vfio`
//! abstractions, with no `unsafe` code. It behaves like the C sample: class and parent device
//! `mbochs`, types `mbochs-small` (4 MB of video memory, EDID limit 800x600), `mbochs-medium`
//! (16 MB, 1920x1440) and `mbochs-large` (64 MB, no limit) sharing a pool of `count` (module
//! parameter) megabytes, a PCI display 1234:1111 with the bochs dispi registers at 0x500 of
//! BAR2, the video memory as BAR0 (pages allocated when first touched, all dropped when the
//! device is closed, mappable), the EDID region (`VFIO_REGION_SUBTYPE_GFX_EDID`) and the
//! display plane as dma-bufs (`VFIO_DEVICE_QUERY_GFX_PLANE`, `VFIO_DEVICE_GET_GFX_DMABUF`);
//! the vendor attribute `vendor/memory`.
//!
//! Where the C sample is wrong this port is not (see "Differences from the C samples" in the
//! vendor guide): reads and writes of BAR0 reach the video memory at their offset (the C
//! sample subtracts the MMIO BAR's offset, so it reaches two pages further and indexes its page
//! array out of bounds in the last two pages); the first plane query of a new mode returns its
//! dma-buf (the C sample drops the buffer it just made and answers `ENOMEM` once); EDID
//! register and blob accesses it ignores read as zeros (the C sample returns uninitialised
//! stack bytes); every `VFIO_DEVICE_GET_GFX_DMABUF` gets a descriptor with its own reference
//! (the C sample installs its single reference again, and a dma-buf released after the device
//! is gone takes a lock in freed memory); its dma-bufs can be mapped (shared, read-only; the C
//! sample's read-only files can never be), and it keeps at most 64 plane buffers (the C sample
//! every mode the guest set, until the close); a 1- or 2-byte write to a BAR register changes
//! those bytes of it. The types also declare the `gpu` class on the Rust mdev core.

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
        self,
        dmabuf::DmaBuf,
        gfx,
        mmap::SharedPages,
        pci::{self, cfg, ConfigSpace},
        Caps, DeviceInfo, IrqInfo, RegionInfo, VmArea,
    },
};

module! {
    type: MbochsModule,
    name: "mbochs_rs",
    authors: ["mdev-rs developers"],
    description: "Mediated virtual PCI display host device driver",
    license: "GPL v2",
    params: {
        count: u32 {
            default: 256,
            description: "megabytes available to mbochs devices",
        },
    },
}

const MBOCHS_NAME: &CStr = c_str!("mbochs");

const PAGE: u64 = PAGE_SIZE as u64;
/// `MBOCHS_CONFIG_SPACE_SIZE`: the configuration space region is 255 bytes.
const CONFIG_SPACE_SIZE: u64 = 0xff;
/// BAR2, the registers (bochs dispi at 0x500), at this offset of the device file.
const MMIO_BAR_OFFSET: u64 = PAGE;
const MMIO_BAR_SIZE: u64 = PAGE;
/// The EDID region: its registers, then the blob at half a page.
const EDID_OFFSET: u64 = MMIO_BAR_OFFSET + MMIO_BAR_SIZE;
const EDID_SIZE: u64 = PAGE;
const EDID_BLOB_OFFSET: u64 = EDID_SIZE / 2;
/// BAR0, the video memory.
const MEMORY_BAR_OFFSET: u64 = EDID_OFFSET + EDID_SIZE;
const EDID_REGION_INDEX: u32 = pci::NUM_REGIONS;
const NUM_REGIONS: u32 = EDID_REGION_INDEX + 1;
const EDID_BLOB_SIZE: usize = 0x400;

// `struct vfio_region_gfx_edid`: six `__u32`.
const EDID_REG_MAX_SIZE: usize = 4;
const EDID_REG_SIZE: usize = 8;
const EDID_REG_LINK_STATE: usize = 20;
const EDID_REGS_LEN: usize = 24;
const GFX_LINK_STATE_UP: u32 = 1;
const REGION_TYPE_GFX: u32 = 1;
const REGION_SUBTYPE_GFX_EDID: u32 = 1;

const VBE_DISPI_INDEX_ID: usize = 0x0;
const VBE_DISPI_INDEX_XRES: usize = 0x1;
const VBE_DISPI_INDEX_YRES: usize = 0x2;
const VBE_DISPI_INDEX_BPP: usize = 0x3;
const VBE_DISPI_INDEX_ENABLE: usize = 0x4;
const VBE_DISPI_INDEX_VIRT_WIDTH: usize = 0x6;
const VBE_DISPI_INDEX_X_OFFSET: usize = 0x8;
const VBE_DISPI_INDEX_Y_OFFSET: usize = 0x9;
const VBE_DISPI_INDEX_VIDEO_MEMORY_64K: usize = 0xa;
const VBE_DISPI_INDEX_COUNT: usize = 0xb;
const VBE_DISPI_ID5: u16 = 0xb0c5;
const VBE_DISPI_ENABLED: u16 = 0x01;

const PCI_COMMAND_IO: u16 = 0x1;
const PCI_COMMAND_MEMORY: u16 = 0x2;
const PCI_CLASS_DISPLAY_OTHER: u16 = 0x0380;
const PCI_SUBVENDOR_ID_REDHAT_QUMRANET: u16 = 0x1af4;
const PCI_SUBDEVICE_ID_QEMU: u16 = 0x1100;
const PCI_BASE_ADDRESS_2: usize = 0x18;
const PCI_BASE_ADDRESS_MEM_PREFETCH: u32 = 0x08;
const PCI_BASE_ADDRESS_MEM_MASK: u32 = !0xf;

/// `DRM_FORMAT_XRGB8888`: fourcc "XR24".
const DRM_FORMAT_XRGB8888: u32 = u32::from_le_bytes(*b"XR24");
/// `DRM_PLANE_TYPE_PRIMARY`.
const DRM_PLANE_TYPE_PRIMARY: u32 = 1;
/// Plane buffers a device keeps at most (the C sample keeps every mode it saw).
const MAX_PLANE_BUFS: usize = 64;

/// The megabytes of video memory the parent has left (the `count` parameter at load).
struct Pool {
    avail_mbytes: AtomicU32,
}

/// Video memory taken from the pool; given back on drop (when the VFIO device is released).
struct Reservation {
    pool: Arc<Pool>,
    mbytes: u32,
}

impl Pool {
    /// Takes `mbytes`, `ENOSPC` if fewer are left (`mbochs_init_dev()`).
    fn take(self: &Arc<Self>, mbytes: u32) -> Result<Reservation> {
        self.avail_mbytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                a.checked_sub(mbytes)
            })
            .map_err(|_| ENOSPC)?;
        Ok(Reservation {
            pool: self.clone(),
            mbytes,
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool
            .avail_mbytes
            .fetch_add(self.mbytes, Ordering::AcqRel);
    }
}

/// A type: its video memory and the resolution limit of its EDID.
struct MbochsType {
    mbytes: u32,
    max_x: u32,
    max_y: u32,
}

static TYPES: [MbochsType; 3] = [
    MbochsType {
        mbytes: 4,
        max_x: 800,
        max_y: 600,
    },
    MbochsType {
        mbytes: 16,
        max_x: 1920,
        max_y: 1440,
    },
    MbochsType {
        mbytes: 64,
        max_x: 0,
        max_y: 0,
    },
];

/// A display mode the guest set (`struct mbochs_mode`).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Mode {
    drm_format: u32,
    bytepp: u32,
    width: u32,
    height: u32,
    stride: u32,
    offset: u64,
    size: u64,
}

/// A dma-buf the device described to userspace (`struct mbochs_dmabuf`).
struct PlaneBuf {
    mode: Mode,
    id: u32,
    /// Exported at the first `VFIO_DEVICE_GET_GFX_DMABUF`.
    buf: Option<DmaBuf>,
}

/// The state the C sample keeps under `ops_lock`.
struct State {
    vconfig: ConfigSpace<256>,
    bar_mask: [u32; 3],
    vbe: [u16; VBE_DISPI_INDEX_COUNT],
    /// The video memory while the device is open: fresh pages at every open, dropped at the
    /// close (dma-bufs keep what they show).
    vram: Option<Arc<SharedPages>>,
    /// `struct vfio_region_gfx_edid`, six little-endian `__u32`.
    edid_regs: [u8; EDID_REGS_LEN],
    edid_blob: [u8; EDID_BLOB_SIZE],
    dmabufs: KVec<PlaneBuf>,
    active_id: u32,
    next_id: u32,
}

impl State {
    fn edid_reg(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.edid_regs[off..off + 4]);
        u32::from_le_bytes(b)
    }

    /// `mbochs_reset()`: the dispi registers only.
    fn reset(&mut self, memsize: u64) {
        self.vbe = [0; VBE_DISPI_INDEX_COUNT];
        self.vbe[VBE_DISPI_INDEX_ID] = VBE_DISPI_ID5;
        self.vbe[VBE_DISPI_INDEX_VIDEO_MEMORY_64K] = (memsize / (64 * 1024)) as u16;
    }

    /// `mbochs_check_framebuffer()`: the mode the dispi registers set, if it is usable.
    fn framebuffer(&self, memsize: u64) -> Option<Mode> {
        let vbe = &self.vbe;
        if vbe[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED == 0 || vbe[VBE_DISPI_INDEX_BPP] != 32 {
            return None;
        }
        let bytepp = 4u32;
        let width = u32::from(vbe[VBE_DISPI_INDEX_XRES]);
        let height = u32::from(vbe[VBE_DISPI_INDEX_YRES]);
        let virt_width = u32::from(vbe[VBE_DISPI_INDEX_VIRT_WIDTH]).max(width);
        let stride = virt_width * bytepp;
        let size = u64::from(stride) * u64::from(height);
        let offset = u64::from(vbe[VBE_DISPI_INDEX_X_OFFSET]) * u64::from(bytepp)
            + u64::from(vbe[VBE_DISPI_INDEX_Y_OFFSET]) * u64::from(stride);
        if width < 64 || height < 64 || offset + size > memsize {
            return None;
        }
        Some(Mode {
            drm_format: DRM_FORMAT_XRGB8888,
            bytepp,
            width,
            height,
            stride,
            offset,
            size,
        })
    }
}

/// An mbochs device: the VFIO device's data.
#[pin_data]
struct MbochsDevice {
    ty: &'static MbochsType,
    memsize: u64,
    _mem: Reservation,
    #[pin]
    state: Mutex<State>,
}

impl MbochsDevice {
    /// `mbochs_create_config_space()`.
    fn new_state(memsize: u64, ty: &MbochsType) -> Result<State> {
        let mut c = ConfigSpace::new();
        c.set_u16(cfg::VENDOR_ID, 0x1234)?;
        c.set_u16(cfg::DEVICE_ID, 0x1111)?;
        c.set_u16(cfg::SUBSYSTEM_VENDOR_ID, PCI_SUBVENDOR_ID_REDHAT_QUMRANET)?;
        c.set_u16(cfg::SUBSYSTEM_ID, PCI_SUBDEVICE_ID_QEMU)?;
        c.set_u16(cfg::COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY)?;
        c.set_u16(cfg::CLASS_DEVICE, PCI_CLASS_DISPLAY_OTHER)?;
        c.set_u8(cfg::REVISION_ID, 0x01)?;
        // memory, 32-bit, prefetchable
        c.set_u32(cfg::BASE_ADDRESS_0, PCI_BASE_ADDRESS_MEM_PREFETCH)?;
        // memory, 32-bit
        c.set_u32(PCI_BASE_ADDRESS_2, 0)?;
        let mut edid_regs = [0u8; EDID_REGS_LEN];
        for (i, v) in [
            EDID_BLOB_OFFSET as u32,
            EDID_BLOB_SIZE as u32,
            0,
            ty.max_x,
            ty.max_y,
            0,
        ]
        .iter()
        .enumerate()
        {
            edid_regs[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        let mut st = State {
            vconfig: c,
            bar_mask: [
                (!(memsize as u32)).wrapping_add(1),
                0,
                (!(MMIO_BAR_SIZE as u32)).wrapping_add(1),
            ],
            vbe: [0; VBE_DISPI_INDEX_COUNT],
            vram: None,
            edid_regs,
            edid_blob: [0; EDID_BLOB_SIZE],
            dmabufs: KVec::new(),
            active_id: 0,
            next_id: 1,
        };
        st.reset(memsize);
        Ok(st)
    }

    /// `handle_pci_cfg_write()`: only the BAR0 and BAR2 registers are writable. A 1- or
    /// 2-byte write changes those bytes of the register.
    fn cfg_write(dev: &vfio::Device<Self>, st: &mut State, off: usize, bytes: &[u8]) -> Result {
        if off != cfg::BASE_ADDRESS_0 && off != PCI_BASE_ADDRESS_2 {
            return Ok(());
        }
        let index = (off - cfg::BASE_ADDRESS_0) / 4;
        let mut v = st.vconfig.u32_at(off)?.to_le_bytes();
        v[..bytes.len()].copy_from_slice(bytes);
        let mut addr = u32::from_le_bytes(v);
        if addr == 0xffff_ffff {
            addr &= st.bar_mask[index];
        } else {
            addr &= PCI_BASE_ADDRESS_MEM_MASK;
            if addr != 0 {
                dev_info!(dev.parent(), "BAR #{} @ 0x{:x}\n", index, addr);
            }
        }
        addr |= u32::from(st.vconfig.u8_at(off)?) & !PCI_BASE_ADDRESS_MEM_MASK;
        st.vconfig.set_u32(off, addr)
    }

    /// `handle_mmio_read()`/`handle_mmio_write()`: the EDID block (read only), the dispi
    /// registers (2-byte accesses); anything else reads as zeros and ignores writes.
    fn mmio(st: &mut State, off: usize, buf: &mut [u8], write: bool) {
        match off {
            0x000..=0x3ff if !write => {
                let size = st.edid_reg(EDID_REG_SIZE) as usize;
                if st.edid_reg(EDID_REG_LINK_STATE) != GFX_LINK_STATE_UP || off >= size {
                    buf.fill(0);
                } else {
                    // Aligned accesses below 0x400 end at 0x400 at the latest.
                    buf.copy_from_slice(&st.edid_blob[off..off + buf.len()]);
                }
            }
            0x500..=0x515 if buf.len() == 2 => {
                let index = (off - 0x500) / 2;
                if write {
                    st.vbe[index] = u16::from_le_bytes([buf[0], buf[1]]);
                } else {
                    buf.copy_from_slice(&st.vbe[index].to_le_bytes());
                }
            }
            _ if !write => buf.fill(0),
            _ => {}
        }
    }

    /// `handle_edid_regs()`/`handle_edid_blob()`: 4-byte aligned accesses of the registers
    /// (`link_state` and `edid_size` writable), any access of the blob. What the C sample
    /// ignores reads as zeros here.
    fn edid(st: &mut State, off: usize, buf: &mut [u8], write: bool) {
        if off < EDID_BLOB_OFFSET as usize {
            if off + buf.len() > EDID_REGS_LEN || buf.len() != 4 || off % 4 != 0 {
                if !write {
                    buf.fill(0);
                }
                return;
            }
            if !write {
                buf.copy_from_slice(&st.edid_regs[off..off + 4]);
            } else if off == EDID_REG_LINK_STATE || off == EDID_REG_SIZE {
                st.edid_regs[off..off + 4].copy_from_slice(buf);
            }
            return;
        }
        let off = off - EDID_BLOB_OFFSET as usize;
        let max = st.edid_reg(EDID_REG_MAX_SIZE) as usize;
        if off + buf.len() > max {
            if !write {
                buf.fill(0);
            }
        } else if write {
            st.edid_blob[off..off + buf.len()].copy_from_slice(buf);
        } else {
            buf.copy_from_slice(&st.edid_blob[off..off + buf.len()]);
        }
    }

    /// `mdev_access()`: one naturally aligned access of 1, 2 or 4 bytes at file offset `pos`.
    fn access(dev: &vfio::Device<Self>, pos: u64, buf: &mut [u8], write: bool) -> Result {
        let len = buf.len() as u64;
        let within = |start: u64, size: u64| pos >= start && pos + len <= start + size;
        let mut st = dev.state.lock();
        if pos < CONFIG_SPACE_SIZE {
            // An aligned access below 0xff ends at 0x100 at the latest.
            if write {
                Self::cfg_write(dev, &mut st, pos as usize, buf)
            } else {
                st.vconfig.read(pos as usize, buf)
            }
        } else if within(MMIO_BAR_OFFSET, MMIO_BAR_SIZE) {
            Self::mmio(&mut st, (pos - MMIO_BAR_OFFSET) as usize, buf, write);
            Ok(())
        } else if within(EDID_OFFSET, EDID_SIZE) {
            Self::edid(&mut st, (pos - EDID_OFFSET) as usize, buf, write);
            Ok(())
        } else if within(MEMORY_BAR_OFFSET, dev.memsize) {
            let off = (pos - MEMORY_BAR_OFFSET) as usize;
            // Only accessed while open, when there is video memory.
            let vram = st.vram.as_ref().ok_or(EFAULT)?;
            if write {
                vram.write(off, buf)
            } else {
                vram.read(off, buf)
            }
        } else {
            Err(EFAULT)
        }
    }
}

#[vtable]
impl vfio::DeviceOps for MbochsDevice {
    const NAME: &'static CStr = c_str!("vfio-mbochs");
    const GFX_PLANE: gfx::PlaneKind = gfx::PlaneKind::DmaBuf;

    /// Video memory for this opening: pages are allocated when first touched.
    fn open(dev: &vfio::Device<Self>) -> Result {
        let vram = SharedPages::new(dev.memsize as usize)?;
        dev.state.lock().vram = Some(vram);
        Ok(())
    }

    /// `mbochs_close_device()`: the plane buffers go (exported ones live on with their
    /// descriptors), and so does the video memory.
    fn close(dev: &vfio::Device<Self>) {
        let mut st = dev.state.lock();
        st.dmabufs.clear();
        st.vram = None;
    }

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
        if vma.pgoff() as u64 != MEMORY_BAR_OFFSET / PAGE {
            return Err(EINVAL);
        }
        if (vma.end() - vma.start()) as u64 > dev.memsize {
            return Err(EINVAL);
        }
        let vram = dev.state.lock().vram.clone().ok_or(EINVAL)?;
        // `map_pages` refuses a private mapping (EINVAL), as the C sample does.
        vma.map_pages(dev, &vram, 0)
    }

    fn device_info(_dev: &vfio::Device<Self>) -> Result<DeviceInfo> {
        Ok(DeviceInfo {
            flags: vfio::device_flags::PCI,
            num_regions: NUM_REGIONS,
            num_irqs: pci::NUM_IRQS,
        })
    }

    fn region_info(dev: &vfio::Device<Self>, index: u32, caps: &mut Caps) -> Result<RegionInfo> {
        use vfio::region_flags::{MMAP, READ, WRITE};
        Ok(match index {
            pci::CONFIG_REGION_INDEX => RegionInfo {
                offset: 0,
                size: CONFIG_SPACE_SIZE,
                flags: READ | WRITE,
            },
            pci::BAR0_REGION_INDEX => RegionInfo {
                offset: MEMORY_BAR_OFFSET,
                size: dev.memsize,
                flags: READ | WRITE | MMAP,
            },
            2 => RegionInfo {
                offset: MMIO_BAR_OFFSET,
                size: MMIO_BAR_SIZE,
                flags: READ | WRITE,
            },
            EDID_REGION_INDEX => {
                caps.add_region_type(REGION_TYPE_GFX, REGION_SUBTYPE_GFX_EDID)?;
                RegionInfo {
                    offset: EDID_OFFSET,
                    size: EDID_SIZE,
                    flags: READ | WRITE,
                }
            }
            i if i < NUM_REGIONS => RegionInfo::default(),
            _ => return Err(EINVAL),
        })
    }

    fn irq_info(_dev: &vfio::Device<Self>, index: u32) -> Result<IrqInfo> {
        if index >= pci::NUM_IRQS {
            return Err(EINVAL);
        }
        Ok(IrqInfo { flags: 0, count: 0 })
    }

    fn reset(dev: &vfio::Device<Self>) -> Result {
        dev.state.lock().reset(dev.memsize);
        Ok(())
    }

    fn query_gfx_plane(dev: &vfio::Device<Self>, drm_plane_type: u32) -> Result<gfx::Plane> {
        let mut st = dev.state.lock();
        let primary = drm_plane_type == DRM_PLANE_TYPE_PRIMARY;
        let mut plane = gfx::Plane::default();
        if let Some(mode) = primary.then(|| st.framebuffer(dev.memsize)).flatten() {
            let id = match st.dmabufs.iter().find(|b| b.mode == mode) {
                Some(b) => b.id,
                None => {
                    // A guest cycling through modes would grow the list (and keep every
                    // exported buffer) until the close: the oldest inactive one goes.
                    if st.dmabufs.len() >= MAX_PLANE_BUFS {
                        let active = st.active_id;
                        if let Some(i) = st.dmabufs.iter().position(|b| b.id != active) {
                            drop(st.dmabufs.remove(i));
                        }
                    }
                    let id = st.next_id;
                    st.dmabufs.push(
                        PlaneBuf {
                            mode,
                            id,
                            buf: None,
                        },
                        GFP_KERNEL,
                    )?;
                    st.next_id = st.next_id.wrapping_add(1);
                    id
                }
            };
            plane = gfx::Plane {
                drm_format: mode.drm_format,
                width: mode.width,
                height: mode.height,
                stride: mode.stride,
                // At most 65535 * 4 * 65535 bytes, which `memsize` (at most 4 GiB) bounds.
                size: mode.size as u32,
                id,
                ..Default::default()
            };
        }
        if primary {
            st.active_id = plane.id;
        }
        Ok(plane)
    }

    fn get_gfx_dmabuf(dev: &vfio::Device<Self>, dmabuf_id: u32) -> Result<DmaBuf> {
        let mut st = dev.state.lock();
        let vram = st.vram.clone().ok_or(EINVAL)?;
        let b = st
            .dmabufs
            .iter_mut()
            .find(|b| b.id == dmabuf_id)
            .ok_or(ENOENT)?;
        if let Some(buf) = &b.buf {
            return Ok(buf.clone());
        }
        if b.mode.offset % PAGE != 0 {
            dev_info!(dev.parent(), "framebuffer not page-aligned\n");
            return Err(EINVAL);
        }
        let buf = vram.export(b.mode.offset as usize, b.mode.size as usize)?;
        b.buf = Some(buf.clone());
        Ok(buf)
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
struct Mbochs;

fn show_memory(
    _mdev: &mdev::Device,
    reg: &vfio::Registration<MbochsDevice>,
    buf: &mut mdev::SysfsBuf<'_>,
) -> Result {
    writeln!(buf, "{} MB", reg.ty.mbytes).map_err(|_| EINVAL)
}

#[vtable]
impl mdev::Driver for Mbochs {
    type TypeData = &'static MbochsType;
    type ParentData = Arc<Pool>;
    type DeviceData = vfio::Registration<MbochsDevice>;

    const NAME: &'static CStr = MBOCHS_NAME;
    const DEVICE_API: &'static CStr = pci::DEVICE_API;
    const ATTRIBUTE_GROUP: Option<&'static CStr> = Some(c_str!("vendor"));
    const ATTRIBUTES: &'static [mdev::DeviceAttribute<Self>] = &[mdev::DeviceAttribute::read_only(
        c_str!("memory"),
        show_memory,
    )];

    fn probe(
        mdev: &mdev::Device<Core<'_>>,
        pool: &Arc<Pool>,
        ty: &&'static MbochsType,
    ) -> Result<vfio::Registration<MbochsDevice>> {
        let ty: &'static MbochsType = ty;
        let mem = pool.take(ty.mbytes)?;
        let memsize = u64::from(ty.mbytes) << 20;
        let state = MbochsDevice::new_state(memsize, ty)?;
        let reg = vfio::Registration::new(
            mdev.device(),
            try_pin_init!(MbochsDevice {
                ty,
                memsize,
                _mem: mem,
                state <- new_mutex!(state),
            }),
        )?;
        dev_info!(
            mdev.device(),
            "mbochs_init_dev: {}, {} MB, {} pages\n",
            mdev.mdev_type().pretty_name().unwrap_or(c_str!("")),
            ty.mbytes,
            memsize / PAGE
        );
        Ok(reg)
    }

    fn available(pool: &Arc<Pool>, ty: &&'static MbochsType) -> u32 {
        pool.avail_mbytes.load(Ordering::Acquire) / ty.mbytes
    }

    fn description(
        _pool: &Arc<Pool>,
        ty: &&'static MbochsType,
        buf: &mut mdev::SysfsBuf<'_>,
    ) -> Result {
        writeln!(buf, "virtual display, {} MB video memory", ty.mbytes).map_err(|_| EINVAL)
    }
}

struct MbochsModule {
    // Dropped in this order, as the C sample: the parent (removes every mdev), its device,
    // the driver, the class.
    _parent: Pin<KBox<mdev::ParentRegistration<Mbochs>>>,
    _dev: class::ClassDevice,
    _driver: Arc<mdev::DriverRegistration<Mbochs>>,
    _class: Arc<class::Class>,
}

impl kernel::Module for MbochsModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let pool = Arc::new(
            Pool {
                avail_mbytes: AtomicU32::new(module_parameters::count.value()),
            },
            GFP_KERNEL,
        )?;
        let driver = Arc::pin_init(mdev::DriverRegistration::new(module), GFP_KERNEL)?;
        let cls = class::Class::new(MBOCHS_NAME)?;
        let dev = class::ClassDevice::new(&cls, MBOCHS_NAME)?;
        let mut types = KVec::new();
        for (ty, (name, pretty)) in TYPES.iter().zip([
            (c_str!("small"), c_str!("mbochs-small")),
            (c_str!("medium"), c_str!("mbochs-medium")),
            (c_str!("large"), c_str!("mbochs-large")),
        ]) {
            types.push(
                mdev::TypeInfo {
                    sysfs_name: name,
                    pretty_name: Some(pretty),
                    class: Some(mdev::TypeClass::Gpu {
                        fb_length: u64::from(ty.mbytes) << 20,
                        hres: ty.max_x,
                        vres: ty.max_y,
                        heads: 1,
                    }),
                    data: ty,
                },
                GFP_KERNEL,
            )?;
        }
        let parent = KBox::pin_init(
            mdev::ParentRegistration::new(dev.device(), &driver, types, pool),
            GFP_KERNEL,
        )?;
        Ok(MbochsModule {
            _parent: parent,
            _dev: dev,
            _driver: driver,
            _class: cls,
        })
    }
}
