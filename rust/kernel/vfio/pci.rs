// SPDX-License-Identifier: GPL-2.0

//! Helpers for emulated vfio-pci devices.
//!
//! C headers: [`include/uapi/linux/vfio.h`](srctree/include/uapi/linux/vfio.h),
//! [`include/uapi/linux/pci_regs.h`](srctree/include/uapi/linux/pci_regs.h)
//!
//! An emulated PCI device exposes its BARs and configuration space as VFIO regions at fixed
//! file offsets ([`region_offset`], [`split_offset`]), answers accesses of 1, 2 or 4 bytes
//! ([`read_split`], [`write_split`] turn a `read()`/`write()` into such accesses, as the C
//! samples do), and keeps a configuration space image ([`ConfigSpace`]).

use super::{irq_flags, EventFd, IrqAction, IrqData, IrqInfo, IrqSet};
use crate::{
    error::{code::*, Result},
    uaccess::{UserSliceReader, UserSliceWriter},
};

/// Region index of BAR0 (BARn is `BAR0_REGION_INDEX + n`).
pub const BAR0_REGION_INDEX: u32 = 0;
/// Region index of BAR5.
pub const BAR5_REGION_INDEX: u32 = 5;
/// Region index of the expansion ROM.
pub const ROM_REGION_INDEX: u32 = 6;
/// Region index of the configuration space.
pub const CONFIG_REGION_INDEX: u32 = 7;
/// Region index of the VGA ranges.
pub const VGA_REGION_INDEX: u32 = 8;
/// Number of vfio-pci regions (`VFIO_PCI_NUM_REGIONS`).
pub const NUM_REGIONS: u32 = 9;

/// Interrupt index of INTx.
pub const INTX_IRQ_INDEX: u32 = 0;
/// Interrupt index of MSI.
pub const MSI_IRQ_INDEX: u32 = 1;
/// Interrupt index of MSI-X.
pub const MSIX_IRQ_INDEX: u32 = 2;
/// Interrupt index of the error notification.
pub const ERR_IRQ_INDEX: u32 = 3;
/// Interrupt index of the device request notification.
pub const REQ_IRQ_INDEX: u32 = 4;
/// Number of vfio-pci interrupt indexes (`VFIO_PCI_NUM_IRQS`).
pub const NUM_IRQS: u32 = 5;

/// The `device_api` string of vfio-pci devices.
pub const DEVICE_API: &crate::str::CStr = crate::c_str!("vfio-pci");

/// Bits of the file offset below the region index.
pub const OFFSET_SHIFT: u32 = 40;

/// Returns the file offset of region `index`: `index << 40`, the layout of vfio-pci and of
/// the mdev samples.
///
/// # Examples
///
/// ```
/// use kernel::vfio::pci::{region_offset, split_offset, CONFIG_REGION_INDEX};
///
/// assert_eq!(region_offset(CONFIG_REGION_INDEX), 7 << 40);
/// assert_eq!(split_offset(region_offset(1) + 5), (1, 5));
/// ```
pub const fn region_offset(index: u32) -> u64 {
    (index as u64) << OFFSET_SHIFT
}

/// Splits a file offset into the region index and the offset in the region.
pub const fn split_offset(pos: u64) -> (u64, u64) {
    (pos >> OFFSET_SHIFT, pos & ((1u64 << OFFSET_SHIFT) - 1))
}

/// The size of the next access of a `count`-byte transfer at `pos`: 4 if at least 4 bytes are
/// left and `pos` is 4-aligned, else 2 if 2-aligned, else 1.
///
/// # Examples
///
/// ```
/// use kernel::vfio::pci::access_width;
///
/// assert_eq!(access_width(0x10, 8), 4);
/// assert_eq!(access_width(0x12, 8), 2);
/// assert_eq!(access_width(0x13, 8), 1);
/// assert_eq!(access_width(0x10, 3), 2);
/// ```
pub const fn access_width(pos: u64, count: usize) -> usize {
    if count >= 4 && pos % 4 == 0 {
        4
    } else if count >= 2 && pos % 2 == 0 {
        2
    } else {
        1
    }
}

/// Serves a `read()` of the device file as naturally aligned accesses of 1, 2 or 4 bytes.
///
/// `access(pos, bytes)` fills `bytes` (pre-zeroed) with the value at file offset `pos`. An
/// error of `access` or of the copy to userspace ends the transfer with that error, as the C
/// samples do (they report `EFAULT` for both).
pub fn read_split(
    buf: &mut UserSliceWriter,
    mut pos: u64,
    mut access: impl FnMut(u64, &mut [u8]) -> Result,
) -> Result<usize> {
    let mut done = 0;
    while !buf.is_empty() {
        let n = access_width(pos, buf.len());
        let mut val = [0u8; 4];
        access(pos, &mut val[..n])?;
        buf.write_slice(&val[..n])?;
        done += n;
        pos = pos.checked_add(n as u64).ok_or(EINVAL)?;
    }
    Ok(done)
}

/// Serves a `write()` of the device file as naturally aligned accesses of 1, 2 or 4 bytes.
///
/// `access(pos, bytes)` stores `bytes` at file offset `pos`.
pub fn write_split(
    buf: &mut UserSliceReader,
    mut pos: u64,
    mut access: impl FnMut(u64, &[u8]) -> Result,
) -> Result<usize> {
    let mut done = 0;
    while !buf.is_empty() {
        let n = access_width(pos, buf.len());
        let mut val = [0u8; 4];
        buf.read_slice(&mut val[..n])?;
        access(pos, &val[..n])?;
        done += n;
        pos = pos.checked_add(n as u64).ok_or(EINVAL)?;
    }
    Ok(done)
}

/// Offsets in the configuration space header (`include/uapi/linux/pci_regs.h`).
pub mod cfg {
    /// Vendor ID (16 bits).
    pub const VENDOR_ID: usize = 0x00;
    /// Device ID (16 bits).
    pub const DEVICE_ID: usize = 0x02;
    /// Command (16 bits).
    pub const COMMAND: usize = 0x04;
    /// Status (16 bits).
    pub const STATUS: usize = 0x06;
    /// Revision ID.
    pub const REVISION_ID: usize = 0x08;
    /// Programming interface.
    pub const CLASS_PROG: usize = 0x09;
    /// Sub-class.
    pub const CLASS_DEVICE: usize = 0x0a;
    /// Base class.
    pub const CLASS_BASE: usize = 0x0b;
    /// BAR0 (BARn at `BASE_ADDRESS_0 + 4 * n`).
    pub const BASE_ADDRESS_0: usize = 0x10;
    /// BAR5.
    pub const BASE_ADDRESS_5: usize = 0x24;
    /// Subsystem vendor ID (16 bits).
    pub const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
    /// Subsystem ID (16 bits).
    pub const SUBSYSTEM_ID: usize = 0x2e;
    /// Capability list pointer.
    pub const CAPABILITY_LIST: usize = 0x34;
    /// Interrupt line.
    pub const INTERRUPT_LINE: usize = 0x3c;
    /// Interrupt pin (1 = INTA#).
    pub const INTERRUPT_PIN: usize = 0x3d;
    /// BAR bit 0: I/O space.
    pub const BASE_ADDRESS_SPACE_IO: u32 = 0x01;
}

/// An emulated PCI configuration space of `N` bytes, little endian.
///
/// Reads and writes are bounds checked: an access that does not fit returns `EINVAL` and
/// changes nothing.
///
/// # Examples
///
/// ```
/// use kernel::vfio::pci::{cfg, ConfigSpace};
///
/// let mut c = ConfigSpace::<0x100>::new();
/// c.set_u32(cfg::VENDOR_ID, 0x3253_4348)?;
/// c.set_u32(cfg::BASE_ADDRESS_0, cfg::BASE_ADDRESS_SPACE_IO)?;
/// let mut b = [0u8; 2];
/// c.read(cfg::DEVICE_ID, &mut b)?;
/// assert_eq!(u16::from_le_bytes(b), 0x3253);
/// // BAR sizing: all ones reads back the size mask with the flag bits kept.
/// c.write_bar(cfg::BASE_ADDRESS_0, 0xffff_ffff, !(8u32 - 1))?;
/// assert_eq!(c.u32_at(cfg::BASE_ADDRESS_0)?, 0xffff_fff9);
/// c.write_bar(cfg::BASE_ADDRESS_0, 0xc000, !(8u32 - 1))?;
/// assert_eq!(c.u32_at(cfg::BASE_ADDRESS_0)?, 0xc001);
/// assert!(c.read(0xfe, &mut [0u8; 4]).is_err());
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone)]
pub struct ConfigSpace<const N: usize> {
    bytes: [u8; N],
}

impl<const N: usize> Default for ConfigSpace<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ConfigSpace<N> {
    /// Creates an all-zero configuration space.
    pub const fn new() -> Self {
        Self { bytes: [0; N] }
    }

    /// Size in bytes.
    pub const fn size(&self) -> usize {
        N
    }

    fn range(off: usize, len: usize) -> Result<core::ops::Range<usize>> {
        match off.checked_add(len) {
            Some(end) if end <= N => Ok(off..end),
            _ => Err(EINVAL),
        }
    }

    /// Copies `buf.len()` bytes at `off` into `buf`.
    pub fn read(&self, off: usize, buf: &mut [u8]) -> Result {
        buf.copy_from_slice(&self.bytes[Self::range(off, buf.len())?]);
        Ok(())
    }

    /// Stores `buf` at `off`.
    pub fn write(&mut self, off: usize, buf: &[u8]) -> Result {
        self.bytes[Self::range(off, buf.len())?].copy_from_slice(buf);
        Ok(())
    }

    /// Stores a byte.
    pub fn set_u8(&mut self, off: usize, v: u8) -> Result {
        self.write(off, &[v])
    }

    /// Stores a little-endian 16-bit value.
    pub fn set_u16(&mut self, off: usize, v: u16) -> Result {
        self.write(off, &v.to_le_bytes())
    }

    /// Stores a little-endian 32-bit value.
    pub fn set_u32(&mut self, off: usize, v: u32) -> Result {
        self.write(off, &v.to_le_bytes())
    }

    /// Returns the byte at `off`.
    pub fn u8_at(&self, off: usize) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read(off, &mut b)?;
        Ok(b[0])
    }

    /// Returns the little-endian 32-bit value at `off`.
    pub fn u32_at(&self, off: usize) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read(off, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// A guest write of `value` to the BAR at `off` whose size mask is `mask` (`!(size - 1)`):
    /// all ones reads back the mask (BAR sizing), any other value is stored; the two low flag
    /// bits of the BAR (I/O space, reserved) are kept.
    pub fn write_bar(&mut self, off: usize, value: u32, mask: u32) -> Result {
        let old = self.u32_at(off)?;
        let mut v = value;
        if v == 0xffff_ffff {
            v &= mask;
        }
        v |= old & 0x3;
        self.set_u32(off, v)
    }
}

/// INTx and MSI (one vector each) signalled through eventfds, with the `VFIO_DEVICE_SET_IRQS`
/// semantics of the mdev samples (`mtty.c`).
///
/// - `TRIGGER` with an eventfd on INTx or MSI selects that interrupt (when no other one is
///   selected; `EINVAL` otherwise) and sets its eventfd; fd `-1` tears it down; `count == 0`
///   with `DATA_NONE` disables the selected interrupt; `DATA_NONE`/`DATA_BOOL` (true) fires it.
/// - INTx is masked when it fires ([`irq_flags::AUTOMASKED`]) and unmasked with `UNMASK`;
///   `MASK`/`UNMASK` need INTx selected (`EINVAL`), eventfds for them are not supported
///   (`ENOTTY`), nor masking MSI (`ENOTTY`).
/// - MSI-X, error and request interrupts: `ENOTTY`.
#[derive(Default)]
pub struct Irqs {
    index: Option<u32>,
    intx: Option<EventFd>,
    msi: Option<EventFd>,
    intx_masked: bool,
}

impl Irqs {
    /// The `VFIO_DEVICE_GET_IRQ_INFO` answer for INTx and MSI (`EINVAL` for other indexes).
    pub fn info(index: u32) -> Result<IrqInfo> {
        match index {
            INTX_IRQ_INDEX => Ok(IrqInfo {
                flags: irq_flags::EVENTFD | irq_flags::MASKABLE | irq_flags::AUTOMASKED,
                count: 1,
            }),
            MSI_IRQ_INDEX => Ok(IrqInfo {
                flags: irq_flags::EVENTFD | irq_flags::NORESIZE,
                count: 1,
            }),
            _ => Err(EINVAL),
        }
    }

    fn is(&self, index: u32) -> bool {
        self.index == Some(index)
    }

    /// Signals the selected interrupt (INTx only when unmasked; it is then masked).
    pub fn trigger(&mut self) {
        if self.is(MSI_IRQ_INDEX) {
            if let Some(e) = &self.msi {
                e.signal();
            }
        } else if self.is(INTX_IRQ_INDEX) {
            if let Some(e) = &self.intx {
                if !self.intx_masked {
                    e.signal();
                    self.intx_masked = true;
                }
            }
        }
    }

    /// Returns `true` if INTx is masked.
    pub fn intx_masked(&self) -> bool {
        self.intx_masked
    }

    fn disable_intx(&mut self) {
        if self.intx.take().is_some() {
            self.intx_masked = false;
            self.index = None;
        }
    }

    fn disable_msi(&mut self) {
        if self.msi.take().is_some() {
            self.index = None;
        }
    }

    /// Releases both eventfds (call it from `close`).
    pub fn disable(&mut self) {
        self.disable_intx();
        self.disable_msi();
    }

    /// Applies a validated `VFIO_DEVICE_SET_IRQS` request.
    pub fn set(&mut self, set: &IrqSet<'_>) -> Result {
        let single = set.start == 0 && set.count == 1;
        // `None` for eventfd data; else whether the (first) vector is selected.
        let selected = match set.data {
            IrqData::None => Some(true),
            IrqData::Bool(b) => Some(b.first().is_some_and(|&v| v != 0)),
            IrqData::Eventfd(_) => None,
        };
        let index = set.index;
        match (index, set.action) {
            (INTX_IRQ_INDEX, IrqAction::Mask | IrqAction::Unmask) => {
                if !self.is(INTX_IRQ_INDEX) || !single {
                    return Err(EINVAL);
                }
                match selected {
                    None => return Err(ENOTTY),
                    Some(true) => self.intx_masked = set.action == IrqAction::Mask,
                    Some(false) => {}
                }
                Ok(())
            }
            (MSI_IRQ_INDEX, IrqAction::Mask | IrqAction::Unmask) => Err(ENOTTY),
            (INTX_IRQ_INDEX | MSI_IRQ_INDEX, IrqAction::Trigger) => {
                if self.is(index) && set.count == 0 && set.data == IrqData::None {
                    self.disable_index(index);
                    return Ok(());
                }
                if !(self.is(index) || self.index.is_none()) || !single {
                    return Err(EINVAL);
                }
                if let IrqData::Eventfd(fds) = set.data {
                    self.disable_index(index);
                    if fds[0] >= 0 {
                        let e = EventFd::from_fd(fds[0])?;
                        if index == INTX_IRQ_INDEX {
                            self.intx = Some(e);
                        } else {
                            self.msi = Some(e);
                        }
                        self.index = Some(index);
                    }
                    return Ok(());
                }
                if !self.is(index) {
                    return Err(EINVAL);
                }
                if selected == Some(true) {
                    self.trigger();
                }
                Ok(())
            }
            _ => Err(ENOTTY),
        }
    }

    fn disable_index(&mut self, index: u32) {
        if index == INTX_IRQ_INDEX {
            self.disable_intx();
        } else {
            self.disable_msi();
        }
    }
}

/// The device request interrupt (`VFIO_PCI_REQ_IRQ_INDEX`): the VFIO core asks userspace to
/// release a device that is going away (its parent unbinds; QEMU then unplugs it), and the
/// driver signals it from [`DeviceOps::request`](super::DeviceOps::request).
///
/// `VFIO_DEVICE_SET_IRQS` as vfio-pci handles it: `TRIGGER` with an eventfd sets it (fd `-1`
/// releases it), `count == 0` with `DATA_NONE` releases it, `DATA_NONE`/`DATA_BOOL` (true)
/// signals it; other actions are `ENOTTY`. Separate from [`Irqs`], whose answers match the C
/// samples, which have none.
#[derive(Default)]
pub struct RequestIrq(Option<EventFd>);

impl RequestIrq {
    /// The `VFIO_DEVICE_GET_IRQ_INFO` answer for [`REQ_IRQ_INDEX`].
    pub const INFO: IrqInfo = IrqInfo {
        flags: irq_flags::EVENTFD | irq_flags::NORESIZE,
        count: 1,
    };

    /// Applies a validated `VFIO_DEVICE_SET_IRQS` request for [`REQ_IRQ_INDEX`].
    pub fn set(&mut self, set: &IrqSet<'_>) -> Result {
        if set.index != REQ_IRQ_INDEX {
            return Err(EINVAL);
        }
        if set.action != IrqAction::Trigger {
            return Err(ENOTTY);
        }
        if set.count == 0 && set.data == IrqData::None {
            self.0 = None;
            return Ok(());
        }
        if set.start != 0 || set.count != 1 {
            return Err(EINVAL);
        }
        match set.data {
            IrqData::Eventfd(fds) => {
                // The old eventfd stays if the new one is not an eventfd.
                self.0 = if fds[0] >= 0 {
                    Some(EventFd::from_fd(fds[0])?)
                } else {
                    None
                };
            }
            IrqData::None => self.signal(),
            IrqData::Bool(b) => {
                if b.first().is_some_and(|&v| v != 0) {
                    self.signal();
                }
            }
        }
        Ok(())
    }

    /// Signals the eventfd, if userspace set one.
    pub fn signal(&self) {
        if let Some(e) = &self.0 {
            e.signal();
        }
    }

    /// Returns `true` if userspace set an eventfd.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Releases the eventfd (call it from `close`).
    pub fn disable(&mut self) {
        self.0 = None;
    }
}
