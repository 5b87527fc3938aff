// SPDX-License-Identifier: GPL-2.0

//! Mediated virtual PCI serial host device driver, in Rust.
//!
//! A port of `samples/vfio-mdev/mtty.c` to the `kernel::mdev` and `kernel::vfio` abstractions,
//! with no `unsafe` code. It behaves like the C sample: class and parent device `mtty`, types
//! `mtty-1` (one port) and `mtty-2` (two ports) sharing a pool of 24 ports, a PCI device
//! 4348:3253 (a WCH CH352 two-port serial card) whose BAR0/BAR1 are 16550 UARTs looping
//! transmitted bytes back into a 16-byte receive FIFO, INTx and MSI through eventfds, and the
//! vendor attribute `vendor/sample_mdev_dev`.
//!
//! Migration (v2, with pre-copy and the P2P states, as the C sample) streams the C sample's
//! format byte for byte (`MIG_MAGIC`), so a device moves between the two drivers in both
//! directions; unlike the C sample, a resumed stream is validated completely before it is
//! loaded (FIFO indexes, flags), and a bad header fails the `RESUMING` to `STOP` arc
//! (`EINVAL`) instead of the `write()` (`EFAULT`). Accesses outside a region
//! (configuration space past 256 bytes, BAR offsets past 8, BAR2..5), which the C sample
//! aliases, ignores or serves out of bounds, fail with `EFAULT`, the C sample's error for
//! other failed accesses; see "Differences from the C samples" in the vendor guide.

use core::{
    fmt::Write,
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::{
    c_str, class,
    device::Core,
    mdev,
    prelude::*,
    sync::{new_mutex, Arc, Mutex},
    uaccess::{UserPtr, UserSliceReader, UserSliceWriter},
    vfio::{
        self, migration,
        pci::{self, cfg, ConfigSpace},
        Caps, DeviceInfo, IrqInfo, IrqSet, RegionInfo,
    },
};

module! {
    type: MttyModule,
    name: "mtty_rs",
    authors: ["mdev-rs developers"],
    description: "Test driver that simulate serial port over PCI",
    license: "GPL v2",
}

// `MODULE_VERSION("0.1")`, as the C sample.
#[link_section = ".modinfo"]
#[used]
static MODINFO_VERSION: [u8; 12] = *b"version=0.1\0";

const MTTY_NAME: &CStr = c_str!("mtty");
const MAX_MTTYS: u32 = 24;
/// The size the configuration space region reports.
const CONFIG_SPACE_SIZE: u64 = 0xff;
const IO_BAR_SIZE: u32 = 0x8;
const MAX_FIFO_SIZE: u8 = 16;

// 16550 registers (include/uapi/linux/serial_reg.h).
const UART_RX: u64 = 0;
const UART_TX: u64 = 0;
const UART_IER: u64 = 1;
const UART_IIR: u64 = 2;
const UART_FCR: u64 = 2;
const UART_LCR: u64 = 3;
const UART_MCR: u64 = 4;
const UART_LSR: u64 = 5;
const UART_MSR: u64 = 6;
const UART_SCR: u64 = 7;

const UART_IER_MSI: u8 = 0x08;
const UART_IER_RLSI: u8 = 0x04;
const UART_IER_THRI: u8 = 0x02;
const UART_IER_RDI: u8 = 0x01;
const UART_IIR_NO_INT: u8 = 0x01;
const UART_IIR_MSI: u8 = 0x00;
const UART_IIR_THRI: u8 = 0x02;
const UART_IIR_RDI: u8 = 0x04;
const UART_IIR_RLSI: u8 = 0x06;
const UART_FCR_ENABLE_FIFO: u8 = 0x01;
const UART_FCR_CLEAR_RCVR: u8 = 0x02;
const UART_FCR_CLEAR_XMIT: u8 = 0x04;
const UART_LCR_DLAB: u8 = 0x80;
const UART_MCR_AFE: u8 = 0x20;
const UART_MCR_OUT2: u8 = 0x08;
const UART_MCR_RTS: u8 = 0x02;
const UART_MCR_DTR: u8 = 0x01;
const UART_LSR_TEMT: u8 = 0x40;
const UART_LSR_THRE: u8 = 0x20;
const UART_LSR_OE: u8 = 0x02;
const UART_LSR_DR: u8 = 0x01;
const UART_MSR_DCD: u8 = 0x80;
const UART_MSR_DSR: u8 = 0x20;
const UART_MSR_CTS: u8 = 0x10;
const UART_MSR_DDSR: u8 = 0x02;
const UART_MSR_DCTS: u8 = 0x01;

/// Migration stream: the C sample's `struct mtty_data` header, `{magic: u64, major_ver,
/// minor_ver, nr_ports, flags: u32}` in native byte order, then `nr_ports` port records.
const MIG_MAGIC: u64 = 0x7e9d_0989_8c3e_2c4e;
const MIG_MAJOR: u32 = 1;
const MIG_MINOR: u32 = 0;
const MIG_HEADER_LEN: usize = 24;
/// A port record: the C sample's `struct serial_port` (35 bytes of fields, padded to 36).
const MIG_PORT_LEN: usize = 36;

/// The ports all mtty devices share.
struct PortPool {
    avail: AtomicU32,
}

impl PortPool {
    /// Takes `n` ports, `ENOSPC` if fewer are left.
    fn take(self: &Arc<Self>, n: u32) -> Result<Ports> {
        self.avail
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| a.checked_sub(n))
            .map_err(|_| ENOSPC)?;
        Ok(Ports {
            pool: self.clone(),
            n,
        })
    }
}

/// Ports taken from the pool; given back on drop (when the VFIO device is released).
struct Ports {
    pool: Arc<PortPool>,
    n: u32,
}

impl Drop for Ports {
    fn drop(&mut self) {
        self.pool.avail.fetch_add(self.n, Ordering::AcqRel);
    }
}

/// A type: how many ports an instance has.
struct MttyType {
    nr_ports: u32,
}

/// One emulated 16550 with its loop-back FIFO.
#[derive(Clone, Copy, Default)]
struct SerialPort {
    uart_reg: [u8; 8],
    fifo: [u8; MAX_FIFO_SIZE as usize],
    head: u8,
    tail: u8,
    count: u8,
    dlab: bool,
    overrun: bool,
    divisor: u16,
    fcr: u8,
    max_fifo_size: u8,
    intr_trigger_level: u8,
}

impl SerialPort {
    fn fifo_empty(&self) -> bool {
        self.head == self.tail
    }

    /// The port as the C sample's `struct serial_port` (padding zero).
    fn record(&self) -> [u8; MIG_PORT_LEN] {
        let mut b = [0u8; MIG_PORT_LEN];
        b[0..8].copy_from_slice(&self.uart_reg);
        b[8..24].copy_from_slice(&self.fifo);
        b[24] = self.head;
        b[25] = self.tail;
        b[26] = self.count;
        b[27] = self.dlab.into();
        b[28] = self.overrun.into();
        b[30..32].copy_from_slice(&self.divisor.to_ne_bytes());
        b[32] = self.fcr;
        b[33] = self.max_fifo_size;
        b[34] = self.intr_trigger_level;
        b
    }

    /// A port from its record, if the record is one this driver could have written: FIFO
    /// indexes within the FIFO and consistent with the count (the loop-back code relies on
    /// both), flags 0 or 1, a FIFO size of 1 or 16. Padding is ignored.
    fn from_record(b: &[u8]) -> Result<Self> {
        let b: &[u8; MIG_PORT_LEN] = b.try_into().map_err(|_| EINVAL)?;
        let flag = |v: u8| match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(EINVAL),
        };
        let mut p = SerialPort {
            head: b[24],
            tail: b[25],
            count: b[26],
            dlab: flag(b[27])?,
            overrun: flag(b[28])?,
            divisor: u16::from_ne_bytes([b[30], b[31]]),
            fcr: b[32],
            max_fifo_size: b[33],
            intr_trigger_level: b[34],
            ..Default::default()
        };
        p.uart_reg.copy_from_slice(&b[0..8]);
        p.fifo.copy_from_slice(&b[8..24]);
        let n = MAX_FIFO_SIZE;
        if p.head >= n
            || p.tail >= n
            || p.count > n
            || (p.tail + p.count) % n != p.head
            || !matches!(p.max_fifo_size, 1 | MAX_FIFO_SIZE)
        {
            return Err(EINVAL);
        }
        Ok(p)
    }
}

/// Device state under the device's lock (the C sample's `ops_lock` and `rxtx_lock`).
struct State {
    nr_ports: u32,
    /// 256 bytes as the C sample's allocation; the region reports 0xff.
    cfg: ConfigSpace<0x100>,
    bar_mask: [u32; 2],
    s: [SerialPort; 2],
    irq: pci::Irqs,
}

impl State {
    fn new(nr_ports: u32) -> Result<Self> {
        let mut st = State {
            nr_ports,
            cfg: ConfigSpace::new(),
            bar_mask: [0; 2],
            s: [SerialPort {
                max_fifo_size: MAX_FIFO_SIZE,
                ..Default::default()
            }; 2],
            irq: pci::Irqs::default(),
        };
        st.create_config_space()?;
        Ok(st)
    }

    fn create_config_space(&mut self) -> Result {
        let c = &mut self.cfg;
        // PCI vendor and device ID: 4348:3253
        c.set_u32(cfg::VENDOR_ID, 0x3253_4348)?;
        // Control: I/O+, Mem-, BusMaster-
        c.set_u16(cfg::COMMAND, 0x0001)?;
        // Status: capabilities list absent
        c.set_u16(cfg::STATUS, 0x0200)?;
        c.set_u8(cfg::REVISION_ID, 0x10)?;
        // 16550-compatible serial controller
        c.set_u8(cfg::CLASS_PROG, 0x02)?;
        c.set_u8(cfg::CLASS_DEVICE, 0x00)?;
        c.set_u8(cfg::CLASS_BASE, 0x07)?;
        // BAR0: I/O space
        c.set_u32(cfg::BASE_ADDRESS_0, cfg::BASE_ADDRESS_SPACE_IO)?;
        self.bar_mask[0] = !IO_BAR_SIZE + 1;
        if self.nr_ports == 2 {
            // BAR1: I/O space
            c.set_u32(cfg::BASE_ADDRESS_0 + 4, cfg::BASE_ADDRESS_SPACE_IO)?;
            self.bar_mask[1] = !IO_BAR_SIZE + 1;
        }
        c.set_u32(cfg::SUBSYSTEM_VENDOR_ID, 0x3253_4348)?;
        c.set_u8(cfg::CAPABILITY_LIST, 0x00)?;
        // interrupt pin INTA#
        c.set_u8(cfg::INTERRUPT_PIN, 0x01)?;
        // vendor specific data
        for (off, v) in [
            (0x40, 0x23),
            (0x43, 0x80),
            (0x44, 0x23),
            (0x48, 0x23),
            (0x4c, 0x23),
        ] {
            c.set_u8(off, v)?;
        }
        c.write(0x60, b"PCI Serial/UART")?;
        Ok(())
    }

    /// The migration stream's header for this device.
    fn mig_header(&self) -> [u8; MIG_HEADER_LEN] {
        let mut h = [0u8; MIG_HEADER_LEN];
        h[0..8].copy_from_slice(&MIG_MAGIC.to_ne_bytes());
        h[8..12].copy_from_slice(&MIG_MAJOR.to_ne_bytes());
        h[12..16].copy_from_slice(&MIG_MINOR.to_ne_bytes());
        h[16..20].copy_from_slice(&self.nr_ports.to_ne_bytes());
        // flags: 0
        h
    }

    /// The length of a complete stream for this device.
    fn mig_len(&self) -> usize {
        MIG_HEADER_LEN + MIG_PORT_LEN * self.nr_ports as usize
    }

    /// Loads a complete stream, all of it checked before anything changes.
    fn mig_load(&mut self, data: &[u8]) -> Result {
        if data.len() != self.mig_len() {
            return Err(EINVAL);
        }
        let (h, ports) = data.split_at(MIG_HEADER_LEN);
        if h[..20] != self.mig_header()[..20] || h[20..24] != [0; 4] {
            return Err(EINVAL);
        }
        let mut s = self.s;
        for (i, rec) in ports.chunks(MIG_PORT_LEN).enumerate() {
            s[i] = SerialPort::from_record(rec)?;
        }
        self.s = s;
        Ok(())
    }

    fn trigger_interrupt(&mut self) {
        self.irq.trigger();
    }

    fn cfg_write(&mut self, offset: u64, buf: &[u8]) -> Result {
        let mut v = [0u8; 4];
        v[..buf.len()].copy_from_slice(buf);
        let value = u32::from_le_bytes(v);
        match offset as usize {
            // command, status: read-only here; interrupt pin: hardwired to INTA#
            cfg::COMMAND | cfg::STATUS | cfg::INTERRUPT_PIN => {}
            cfg::INTERRUPT_LINE => self.cfg.set_u8(cfg::INTERRUPT_LINE, buf[0])?,
            off @ (0x10 | 0x14) => {
                let bar = (off - cfg::BASE_ADDRESS_0) / 4;
                if self.nr_ports == 1 && bar == 1 {
                    self.cfg.set_u32(off, 0)?;
                } else {
                    pr_info!("BAR{} addr {:#x}\n", bar, value);
                    self.cfg.write_bar(off, value, self.bar_mask[bar])?;
                }
            }
            off @ (0x18 | 0x1c | 0x20) => self.cfg.set_u32(off, 0)?,
            off => pr_info!(
                "PCI config write @{:#x} of {} bytes not handled\n",
                off,
                buf.len()
            ),
        }
        Ok(())
    }

    fn bar_write(&mut self, index: usize, offset: u64, data: u8) {
        match offset {
            UART_TX => {
                let p = &mut self.s[index];
                // with DLAB set, the divisor's low byte
                if p.dlab {
                    p.divisor |= u16::from(data);
                    return;
                }
                if p.count < p.max_fifo_size {
                    p.fifo[usize::from(p.head)] = data;
                    p.count += 1;
                    p.head = (p.head + 1) & (MAX_FIFO_SIZE - 1);
                    p.overrun = false;
                    // receive interrupt at the trigger level
                    if p.uart_reg[UART_IER as usize] & UART_IER_RDI != 0
                        && p.count == p.intr_trigger_level
                    {
                        self.trigger_interrupt();
                    }
                } else {
                    p.overrun = true;
                    if p.uart_reg[UART_IER as usize] & UART_IER_RLSI != 0 {
                        self.trigger_interrupt();
                    }
                }
            }
            UART_IER => {
                let p = &mut self.s[index];
                // with DLAB set, the divisor's high byte
                if p.dlab {
                    p.divisor |= u16::from(data) << 8;
                } else {
                    p.uart_reg[UART_IER as usize] = data;
                    if data & UART_IER_THRI != 0 && p.fifo_empty() {
                        self.trigger_interrupt();
                    }
                }
            }
            UART_FCR => {
                let p = &mut self.s[index];
                p.fcr = data;
                if data & (UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT) != 0 {
                    // clear the loop-back FIFO
                    p.count = 0;
                    p.head = 0;
                    p.tail = 0;
                }
                // The C sample decodes the trigger level and then always uses 1 (no
                // character timeout emulation).
                p.intr_trigger_level = 1;
                p.max_fifo_size = if data & UART_FCR_ENABLE_FIFO != 0 {
                    MAX_FIFO_SIZE
                } else {
                    1
                };
            }
            UART_LCR => {
                let p = &mut self.s[index];
                if data & UART_LCR_DLAB != 0 {
                    p.dlab = true;
                    p.divisor = 0;
                } else {
                    p.dlab = false;
                }
                p.uart_reg[UART_LCR as usize] = data;
            }
            UART_MCR => {
                let p = &mut self.s[index];
                p.uart_reg[UART_MCR as usize] = data;
                let msi_enabled = p.uart_reg[UART_IER as usize] & UART_IER_MSI != 0;
                if msi_enabled && data & UART_MCR_OUT2 != 0 {
                    self.trigger_interrupt();
                }
                if msi_enabled && data & (UART_MCR_RTS | UART_MCR_DTR) != 0 {
                    self.trigger_interrupt();
                }
            }
            UART_SCR => self.s[index].uart_reg[UART_SCR as usize] = data,
            // LSR, MSR: read-only
            _ => {}
        }
    }

    fn bar_read(&mut self, index: usize, offset: u64) -> u8 {
        match offset {
            UART_RX => {
                let p = &mut self.s[index];
                if p.dlab {
                    return p.divisor as u8;
                }
                let mut v = 0;
                if !p.fifo_empty() {
                    v = p.fifo[usize::from(p.tail)];
                    p.count -= 1;
                    p.tail = (p.tail + 1) & (MAX_FIFO_SIZE - 1);
                }
                // transmitter empty interrupt once the FIFO drained
                if p.fifo_empty() && p.uart_reg[UART_IER as usize] & UART_IER_THRI != 0 {
                    self.trigger_interrupt();
                }
                v
            }
            UART_IER => {
                let p = &self.s[index];
                if p.dlab {
                    (p.divisor >> 8) as u8
                } else {
                    p.uart_reg[UART_IER as usize] & 0x0f
                }
            }
            UART_IIR => {
                let p = &self.s[index];
                let ier = p.uart_reg[UART_IER as usize];
                let mut v = 0;
                // priority 1: parity, overrun, framing or break
                if ier & UART_IER_RLSI != 0 && p.overrun {
                    v |= UART_IIR_RLSI;
                }
                // priority 2: FIFO trigger level reached
                if ier & UART_IER_RDI != 0 && p.count >= p.intr_trigger_level {
                    v |= UART_IIR_RDI;
                }
                // priority 3: transmitter holding register empty
                if ier & UART_IER_THRI != 0 && p.fifo_empty() {
                    v |= UART_IIR_THRI;
                }
                // priority 4: modem status
                if ier & UART_IER_MSI != 0
                    && p.uart_reg[UART_MCR as usize] & (UART_MCR_RTS | UART_MCR_DTR) != 0
                {
                    v |= UART_IIR_MSI;
                }
                if v == 0 {
                    v = UART_IIR_NO_INT;
                }
                // bits 6 and 7: 16550 FIFOs
                v | 0xc0
            }
            UART_LCR | UART_MCR | UART_SCR => self.s[index].uart_reg[offset as usize],
            UART_LSR => {
                let p = &self.s[index];
                let mut lsr = 0;
                if !p.fifo_empty() {
                    lsr |= UART_LSR_DR;
                }
                if p.overrun {
                    lsr |= UART_LSR_OE;
                }
                if p.fifo_empty() {
                    lsr |= UART_LSR_TEMT | UART_LSR_THRE;
                }
                lsr
            }
            UART_MSR => {
                let p = &self.s[index];
                let mut v = UART_MSR_DSR | UART_MSR_DDSR | UART_MSR_DCD;
                // with auto flow control, CTS while the FIFO has room
                if p.uart_reg[UART_MCR as usize] & UART_MCR_AFE == 0 || p.count < p.max_fifo_size {
                    v |= UART_MSR_CTS | UART_MSR_DCTS;
                }
                v
            }
            _ => 0,
        }
    }

    /// One access of 1, 2 or 4 bytes at file offset `pos`. Accesses outside a region (the
    /// 256 bytes of configuration space, the 8 bytes of a BAR) fail (`EFAULT`), where the C
    /// sample aliases or ignores them.
    fn access(&mut self, pos: u64, buf: &mut [u8], write: bool) -> Result {
        let (index, offset) = pci::split_offset(pos);
        let end = offset.checked_add(buf.len() as u64).ok_or(EFAULT)?;
        match index as u32 {
            pci::CONFIG_REGION_INDEX => {
                if end > CONFIG_SPACE_SIZE + 1 {
                    return Err(EFAULT);
                }
                if write {
                    self.cfg_write(offset, buf)
                } else {
                    let off = usize::try_from(offset).map_err(|_| EFAULT)?;
                    self.cfg.read(off, buf).map_err(|_| EFAULT)
                }
            }
            i @ (pci::BAR0_REGION_INDEX | 1) => {
                if end > u64::from(IO_BAR_SIZE) {
                    return Err(EFAULT);
                }
                if write {
                    self.bar_write(i as usize, offset, buf[0]);
                } else {
                    buf[0] = self.bar_read(i as usize, offset);
                }
                Ok(())
            }
            _ => Err(EFAULT),
        }
    }
}

/// An mtty device: the VFIO device's data.
#[pin_data]
struct MttyDevice {
    _ports: Ports,
    /// `num_irqs` of the last `VFIO_DEVICE_GET_INFO`: like the C sample, interrupt requests
    /// are checked against it (0 before the first `GET_INFO`).
    num_irqs: AtomicU32,
    #[pin]
    state: Mutex<State>,
}

#[vtable]
impl vfio::DeviceOps for MttyDevice {
    const NAME: &'static CStr = c_str!("vfio-mtty");

    fn close(dev: &vfio::Device<Self>) {
        dev.state.lock().irq.disable();
    }

    fn read(dev: &vfio::Device<Self>, buf: &mut UserSliceWriter, pos: u64) -> Result<usize> {
        pci::read_split(buf, pos, |pos, b| dev.state.lock().access(pos, b, false))
            .map_err(|_| EFAULT)
    }

    fn write(dev: &vfio::Device<Self>, buf: &mut UserSliceReader, pos: u64) -> Result<usize> {
        pci::write_split(buf, pos, |pos, b| {
            let mut v = [0u8; 4];
            let v = &mut v[..b.len()];
            v.copy_from_slice(b);
            dev.state.lock().access(pos, v, true)
        })
        .map_err(|_| EFAULT)
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
        if index >= pci::NUM_REGIONS {
            return Err(EINVAL);
        }
        let nr_ports = dev.state.lock().nr_ports;
        let size = match index {
            pci::CONFIG_REGION_INDEX => CONFIG_SPACE_SIZE,
            pci::BAR0_REGION_INDEX => IO_BAR_SIZE.into(),
            1 if nr_ports == 2 => IO_BAR_SIZE.into(),
            _ => 0,
        };
        Ok(RegionInfo {
            flags: vfio::region_flags::READ | vfio::region_flags::WRITE,
            size,
            offset: pci::region_offset(index),
        })
    }

    fn irq_info(dev: &vfio::Device<Self>, index: u32) -> Result<IrqInfo> {
        if index >= dev.num_irqs.load(Ordering::Relaxed) {
            return Err(EINVAL);
        }
        pci::Irqs::info(index)
    }

    fn num_irqs(dev: &vfio::Device<Self>) -> u32 {
        dev.num_irqs.load(Ordering::Relaxed)
    }

    fn set_irqs(dev: &vfio::Device<Self>, set: &IrqSet<'_>) -> Result {
        dev.state.lock().irq.set(set)
    }

    fn reset(dev: &vfio::Device<Self>) -> Result {
        // The C sample's reset only concerns its migration state; the UARTs keep theirs.
        dev_info!(dev.parent(), "mtty_reset: called\n");
        Ok(())
    }

    fn ioctl(_dev: &vfio::Device<Self>, _cmd: u32, _arg: UserPtr) -> Result<isize> {
        Err(ENOTTY)
    }

    // The UARTs only act on the user's accesses: no activity to stop (no `mig_set_activity`).
    const MIGRATION_FLAGS: u32 =
        migration::flags::STOP_COPY | migration::flags::P2P | migration::flags::PRE_COPY;

    fn mig_save(
        dev: &vfio::Device<Self>,
        out: &mut migration::SaveWriter<'_>,
        phase: migration::SavePhase,
    ) -> Result {
        let st = dev.state.lock();
        // As the C sample: the header when the stream opens, the ports at stop-copy.
        if !matches!(phase, migration::SavePhase::StopCopy { continued: true }) {
            out.write(&st.mig_header())?;
        }
        if matches!(phase, migration::SavePhase::StopCopy { .. }) {
            for p in &st.s[..st.nr_ports as usize] {
                out.write(&p.record())?;
            }
        }
        Ok(())
    }

    fn mig_load(dev: &vfio::Device<Self>, data: &[u8]) -> Result {
        dev.state.lock().mig_load(data)
    }

    fn mig_data_size(dev: &vfio::Device<Self>) -> usize {
        dev.state.lock().mig_len()
    }

    // As the C sample: a resume stream takes at most the exact stream length (`ENOMEM`).
    fn mig_stream_limit(dev: &vfio::Device<Self>) -> usize {
        dev.state.lock().mig_len()
    }
}

/// The mdev driver.
struct Mtty;

fn show_sample_mdev_dev(
    mdev: &mdev::Device,
    _reg: &vfio::Registration<MttyDevice>,
    buf: &mut mdev::SysfsBuf<'_>,
) -> Result {
    writeln!(buf, "This is MDEV {}", mdev.uuid()).map_err(|_| EINVAL)
}

#[vtable]
impl mdev::Driver for Mtty {
    type TypeData = MttyType;
    type ParentData = Arc<PortPool>;
    type DeviceData = vfio::Registration<MttyDevice>;

    const NAME: &'static CStr = MTTY_NAME;
    const DEVICE_API: &'static CStr = pci::DEVICE_API;
    const ATTRIBUTE_GROUP: Option<&'static CStr> = Some(c_str!("vendor"));
    const ATTRIBUTES: &'static [mdev::DeviceAttribute<Self>] = &[mdev::DeviceAttribute::read_only(
        c_str!("sample_mdev_dev"),
        show_sample_mdev_dev,
    )];

    fn probe(
        mdev: &mdev::Device<Core<'_>>,
        pool: &Arc<PortPool>,
        ty: &MttyType,
    ) -> Result<vfio::Registration<MttyDevice>> {
        let ports = pool.take(ty.nr_ports)?;
        let state = State::new(ty.nr_ports)?;
        vfio::Registration::new(
            mdev.device(),
            try_pin_init!(MttyDevice {
                _ports: ports,
                num_irqs: AtomicU32::new(0),
                state <- new_mutex!(state),
            }),
        )
    }

    fn available(pool: &Arc<PortPool>, ty: &MttyType) -> u32 {
        pool.avail
            .load(Ordering::Acquire)
            .checked_div(ty.nr_ports)
            .unwrap_or(0)
    }
}

struct MttyModule {
    // Dropped in this order, as the C sample: the parent (removes every mdev), its device,
    // the driver, the class.
    _parent: Pin<KBox<mdev::ParentRegistration<Mtty>>>,
    _dev: class::ClassDevice,
    _driver: Arc<mdev::DriverRegistration<Mtty>>,
    _class: Arc<class::Class>,
}

impl kernel::Module for MttyModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        pr_info!("mtty_dev: mtty_dev_init\n");
        let driver = Arc::pin_init(mdev::DriverRegistration::new(module), GFP_KERNEL)?;
        let cls = class::Class::new(MTTY_NAME)?;
        let dev = class::ClassDevice::new(&cls, MTTY_NAME)?;
        let mut types = KVec::new();
        types.push(
            mdev::TypeInfo {
                sysfs_name: c_str!("1"),
                pretty_name: Some(c_str!("Single port serial")),
                class: None,
                data: MttyType { nr_ports: 1 },
            },
            GFP_KERNEL,
        )?;
        types.push(
            mdev::TypeInfo {
                sysfs_name: c_str!("2"),
                pretty_name: Some(c_str!("Dual port serial")),
                class: None,
                data: MttyType { nr_ports: 2 },
            },
            GFP_KERNEL,
        )?;
        let pool = Arc::new(
            PortPool {
                avail: AtomicU32::new(MAX_MTTYS),
            },
            GFP_KERNEL,
        )?;
        let parent = KBox::pin_init(
            mdev::ParentRegistration::new(dev.device(), &driver, types, pool),
            GFP_KERNEL,
        )?;
        Ok(MttyModule {
            _parent: parent,
            _dev: dev,
            _driver: driver,
            _class: cls,
        })
    }
}

impl Drop for MttyModule {
    fn drop(&mut self) {
        pr_info!("mtty_dev: Unloaded!\n");
    }
}
