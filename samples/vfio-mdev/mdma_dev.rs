// SPDX-License-Identifier: GPL-2.0

//! The mdma device model, shared by the `mdma` sample (the CPU moves the data) and `mdma_edu`
//! (QEMU's edu device moves it with its DMA engine): a VFIO PCI device with one 4 KiB register
//! BAR, its configuration space, INTx/MSI, migration and the pinned-page map. Each module
//! includes this file (`#[path = "mdma_dev.rs"] mod dev;`) and supplies an [`Engine`].
//!
//! Registers (32 bits, little endian, accessed 4 bytes at a time):
//!
//! | offset | name | |
//! |---|---|---|
//! | 0x00 | ID | `0x4d444d41` |
//! | 0x04 | STATUS | bit 1 done, bit 2 error, bits 8..15 error code (1 fault, 2 permission, 3 length, 4 operation) |
//! | 0x08/0x0c | SRC_LO/HI | source IOVA |
//! | 0x10/0x14 | DST_LO/HI | destination IOVA |
//! | 0x18 | LEN | bytes, 1..=64 MiB |
//! | 0x1c | OP | 1 copy, 2 fill, 3 CRC32 |
//! | 0x20 | FILL | the fill byte (low 8 bits) |
//! | 0x24 | RESULT | CRC32 (zlib) of the last checksum |
//! | 0x28 | DOORBELL | write 1 to run |
//! | 0x2c | IRQ_ENABLE | bit 0: interrupt on completion |
//!
//! A doorbell runs the request synchronously: the write returns when the engine is done, so
//! STATUS read right after it is final. The request's guest memory is translated and pinned
//! before the engine touches it; a request that cannot complete sets an error status and
//! changes no guest memory, except a fault of the engine in the middle of a request, after
//! which the destination may be written in part (real DMA engines do the same).
//!
//! Interrupts: INTx or MSI on completion (`IRQ_ENABLE`), and the device request interrupt
//! (`VFIO_PCI_REQ_IRQ_INDEX`), signalled when the device is going away (its parent unbinds).
//!
//! Live migration (v2, with `PRE_COPY` and the P2P states): while the device is stopped or
//! P2P-quiesced a doorbell runs nothing; the request stays pending (STATUS 0) and runs when
//! the device runs again, on this host or, migrated, on the destination. The stream is
//! `"MDMA"`, version 1, then the registers, the pending flag and the writable configuration
//! space fields (see `MIG_LEN`), little endian.

use core::{
    fmt::Write,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{
    alloc::AllocError,
    c_str, device, mdev,
    prelude::*,
    sync::{new_mutex, Arc, Mutex},
    uaccess::{UserSliceReader, UserSliceWriter},
    vfio::{
        self,
        migration::{Activity, SavePhase},
        pci::{self, cfg, ConfigSpace},
        pinmap::{self, BenchResult},
        Caps, DeviceInfo, IrqInfo, IrqSet, Mapping, PinnedMap, RegionInfo,
    },
};

const BAR0_SIZE: u64 = 0x1000;
const CONFIG_SIZE: u64 = 0x100;
pub(crate) const MAX_INSTANCES: u32 = 8;
pub(crate) const MAX_LEN: u64 = 64 << 20;

const REG_ID: u64 = 0x00;
const REG_STATUS: u64 = 0x04;
const REG_SRC_LO: u64 = 0x08;
const REG_SRC_HI: u64 = 0x0c;
const REG_DST_LO: u64 = 0x10;
const REG_DST_HI: u64 = 0x14;
const REG_LEN: u64 = 0x18;
const REG_OP: u64 = 0x1c;
const REG_FILL: u64 = 0x20;
const REG_RESULT: u64 = 0x24;
const REG_DOORBELL: u64 = 0x28;
const REG_IRQ_ENABLE: u64 = 0x2c;

const ID: u32 = 0x4d44_4d41;
const STATUS_DONE: u32 = 1 << 1;
const STATUS_ERROR: u32 = 1 << 2;

const OP_COPY: u32 = 1;
const OP_FILL: u32 = 2;
const OP_CRC32: u32 = 3;

/// Why a request failed (the STATUS error code).
#[derive(Clone, Copy)]
pub(crate) enum DmaError {
    Fault = 1,
    Perm = 2,
    Length = 3,
    Op = 4,
}

impl From<AllocError> for DmaError {
    fn from(_: AllocError) -> Self {
        DmaError::Fault
    }
}

impl From<Error> for DmaError {
    fn from(e: Error) -> Self {
        if e == EPERM {
            DmaError::Perm
        } else {
            DmaError::Fault
        }
    }
}

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// Continues a reflected CRC32 (IEEE 802.3, as zlib) over `data`.
pub(crate) fn crc32_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// The register file.
#[derive(Default)]
struct Regs {
    status: u32,
    src: u64,
    dst: u64,
    len: u32,
    op: u32,
    fill: u32,
    result: u32,
    irq_enable: u32,
}

/// Migration stream: magic, version, then `MIG_REGS_LEN` bytes of registers and state.
const MIG_MAGIC: u32 = 0x4d44_4d41;
const MIG_VERSION: u32 = 1;
const MIG_HEADER_LEN: usize = 8;
/// status, src, dst, len, op, fill, result, irq_enable, pending; command, BAR0, interrupt line.
const MIG_REGS_LEN: usize = 4 + 8 + 8 + 4 * 6 + 2 + 4 + 1;
const MIG_LEN: usize = MIG_HEADER_LEN + MIG_REGS_LEN;

/// Device state under the device's lock.
struct State {
    cfg: ConfigSpace<0x100>,
    regs: Regs,
    irq: pci::Irqs,
    /// The device request eventfd (the device is going away).
    req: pci::RequestIrq,
    bench: KVec<BenchResult>,
    /// Stopped or P2P-quiesced for migration: doorbells wait in `pending`.
    stopped: bool,
    /// A doorbell rang while stopped; it runs when the device runs again.
    pending: bool,
}

impl State {
    fn new() -> Result<Self> {
        let mut c = ConfigSpace::new();
        c.set_u16(cfg::VENDOR_ID, 0x4d44)?;
        c.set_u16(cfg::DEVICE_ID, 0x4d41)?;
        c.set_u8(cfg::REVISION_ID, 0x01)?;
        // system peripheral, other
        c.set_u8(cfg::CLASS_DEVICE, 0x80)?;
        c.set_u8(cfg::CLASS_BASE, 0x08)?;
        // BAR0: 32-bit memory, not prefetchable
        c.set_u32(cfg::BASE_ADDRESS_0, 0)?;
        c.set_u16(cfg::SUBSYSTEM_VENDOR_ID, 0x4d44)?;
        c.set_u16(cfg::SUBSYSTEM_ID, 0x0001)?;
        c.set_u8(cfg::INTERRUPT_PIN, 0x01)?;
        Ok(State {
            cfg: c,
            regs: Regs::default(),
            irq: pci::Irqs::default(),
            req: pci::RequestIrq::default(),
            bench: KVec::new(),
            stopped: false,
            pending: false,
        })
    }

    /// The migration header.
    fn mig_header() -> [u8; MIG_HEADER_LEN] {
        let mut h = [0u8; MIG_HEADER_LEN];
        h[..4].copy_from_slice(&MIG_MAGIC.to_le_bytes());
        h[4..].copy_from_slice(&MIG_VERSION.to_le_bytes());
        h
    }

    /// The registers, the pending flag and the writable configuration fields.
    fn mig_regs(&self) -> Result<[u8; MIG_REGS_LEN]> {
        let r = &self.regs;
        let mut b = [0u8; MIG_REGS_LEN];
        let mut w = 0;
        let mut put = |bytes: &[u8]| {
            b[w..w + bytes.len()].copy_from_slice(bytes);
            w += bytes.len();
        };
        put(&r.status.to_le_bytes());
        put(&r.src.to_le_bytes());
        put(&r.dst.to_le_bytes());
        for v in [
            r.len,
            r.op,
            r.fill,
            r.result,
            r.irq_enable,
            u32::from(self.pending),
        ] {
            put(&v.to_le_bytes());
        }
        let mut cmd = [0u8; 2];
        self.cfg.read(cfg::COMMAND, &mut cmd)?;
        put(&cmd);
        let mut bar = [0u8; 4];
        self.cfg.read(cfg::BASE_ADDRESS_0, &mut bar)?;
        put(&bar);
        let mut line = [0u8; 1];
        self.cfg.read(cfg::INTERRUPT_LINE, &mut line)?;
        put(&line);
        Ok(b)
    }

    /// Loads a complete stream, checked in full before anything changes.
    fn mig_load(&mut self, data: &[u8]) -> Result {
        if data.len() != MIG_LEN || data[..MIG_HEADER_LEN] != Self::mig_header() {
            return Err(EINVAL);
        }
        let mut b = &data[MIG_HEADER_LEN..];
        let mut take = |n: usize| {
            let (a, rest) = b.split_at(n);
            b = rest;
            a
        };
        let u32_at = |a: &[u8]| u32::from_le_bytes([a[0], a[1], a[2], a[3]]);
        let u64_at =
            |a: &[u8]| u64::from_le_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]);
        let status = u32_at(take(4));
        let src = u64_at(take(8));
        let dst = u64_at(take(8));
        let mut w = [0u32; 6];
        for v in w.iter_mut() {
            *v = u32_at(take(4));
        }
        let [len, op, fill, result, irq_enable, pending] = w;
        let cmd = take(2);
        let bar = u32_at(take(4));
        let line = take(1)[0];
        if irq_enable > 1 || pending > 1 {
            return Err(EINVAL);
        }
        // Everything that can fail first, on a copy: the device is unchanged on error.
        let mut cfg = self.cfg.clone();
        cfg.write(cfg::COMMAND, cmd)?;
        cfg.write_bar(cfg::BASE_ADDRESS_0, bar, !(BAR0_SIZE as u32 - 1))?;
        cfg.set_u8(cfg::INTERRUPT_LINE, line)?;
        self.cfg = cfg;
        self.regs = Regs {
            status,
            src,
            dst,
            len,
            op,
            fill,
            result,
            irq_enable,
        };
        self.pending = pending == 1;
        Ok(())
    }

    fn cfg_write(&mut self, off: u64, data: &[u8]) -> Result {
        let mut v = [0u8; 4];
        v[..data.len()].copy_from_slice(data);
        let value = u32::from_le_bytes(v);
        match off as usize {
            cfg::COMMAND if data.len() >= 2 => self.cfg.write(cfg::COMMAND, &data[..2]),
            cfg::BASE_ADDRESS_0 if data.len() == 4 => {
                self.cfg
                    .write_bar(cfg::BASE_ADDRESS_0, value, !(BAR0_SIZE as u32 - 1))
            }
            cfg::INTERRUPT_LINE => self.cfg.set_u8(cfg::INTERRUPT_LINE, data[0]),
            // everything else is read-only
            _ => Ok(()),
        }
    }

    fn reg_read(&self, off: u64) -> u32 {
        let r = &self.regs;
        match off {
            REG_ID => ID,
            REG_STATUS => r.status,
            REG_SRC_LO => r.src as u32,
            REG_SRC_HI => (r.src >> 32) as u32,
            REG_DST_LO => r.dst as u32,
            REG_DST_HI => (r.dst >> 32) as u32,
            REG_LEN => r.len,
            REG_OP => r.op,
            REG_FILL => r.fill,
            REG_RESULT => r.result,
            REG_IRQ_ENABLE => r.irq_enable,
            _ => 0,
        }
    }
}

/// A validated request whose guest memory is translated and pinned.
pub(crate) enum Request<'a> {
    /// Copy `src` to `dst` (same length).
    Copy {
        src: &'a Mapping<'a>,
        dst: &'a Mapping<'a>,
    },
    /// Fill `dst` with a byte.
    Fill { dst: &'a Mapping<'a>, byte: u8 },
    /// CRC32 of `src`.
    Crc32 { src: &'a Mapping<'a> },
}

impl Request<'_> {
    /// Length in bytes (`1..=MAX_LEN`).
    pub(crate) fn len(&self) -> usize {
        match self {
            Request::Copy { src, .. } => src.len(),
            Request::Fill { dst, .. } => dst.len(),
            Request::Crc32 { src } => src.len(),
        }
    }
}

/// What moves the data of a request.
pub(crate) trait Engine: Send + Sync + 'static {
    /// Runs `req`; returns the CRC of a checksum. An engine that takes long stops with a fault
    /// at a safe point once `stop` is set (the device is going away).
    fn run(&self, req: &Request<'_>, stop: &AtomicBool) -> Result<Option<u32>, DmaError>;
}

/// An mdma device: the VFIO device's data.
#[pin_data]
pub(crate) struct Mdma<E: Engine> {
    #[pin]
    map: PinnedMap,
    #[pin]
    state: Mutex<State>,
    pub(crate) engine: Arc<E>,
    /// The device is going away (`request`): a request in flight stops.
    stop: AtomicBool,
}

impl<E: Engine> Mdma<E> {
    /// Runs the programmed operation; returns the CRC for checksums.
    fn execute(dev: &vfio::Device<Self>, r: &Regs) -> Result<Option<u32>, DmaError> {
        if !matches!(r.op, OP_COPY | OP_FILL | OP_CRC32) {
            return Err(DmaError::Op);
        }
        let len = u64::from(r.len);
        if len == 0 || len > MAX_LEN {
            return Err(DmaError::Length);
        }
        let reads = r.op != OP_FILL;
        let writes = r.op != OP_CRC32;
        if (reads && r.src.checked_add(len).is_none())
            || (writes && r.dst.checked_add(len).is_none())
        {
            return Err(DmaError::Length);
        }
        // Translate (and pin) everything before touching guest memory.
        let src = if reads {
            Some(dev.map.acquire(dev, r.src, len, false)?)
        } else {
            None
        };
        let dst = if writes {
            Some(dev.map.acquire(dev, r.dst, len, true)?)
        } else {
            None
        };
        let req = match (&src, &dst) {
            (Some(src), Some(dst)) => Request::Copy { src, dst },
            (None, Some(dst)) => Request::Fill {
                dst,
                byte: r.fill as u8,
            },
            (Some(src), None) => Request::Crc32 { src },
            (None, None) => return Err(DmaError::Op),
        };
        dev.engine.run(&req, &dev.stop)
    }

    fn doorbell(dev: &vfio::Device<Self>, st: &mut State) {
        st.regs.status = 0;
        if st.stopped {
            // No DMA and no interrupt while stopped: the request runs when the device runs.
            st.pending = true;
            return;
        }
        st.pending = false;
        st.regs.status = match Self::execute(dev, &st.regs) {
            Ok(crc) => {
                if let Some(crc) = crc {
                    st.regs.result = crc;
                }
                STATUS_DONE
            }
            Err(e) => STATUS_DONE | STATUS_ERROR | ((e as u32) << 8),
        };
        if st.regs.irq_enable & 1 != 0 {
            st.irq.trigger();
        }
    }

    fn reg_write(dev: &vfio::Device<Self>, st: &mut State, off: u64, v: u32) {
        let r = &mut st.regs;
        match off {
            REG_SRC_LO => r.src = (r.src & !0xffff_ffff) | u64::from(v),
            REG_SRC_HI => r.src = (r.src & 0xffff_ffff) | (u64::from(v) << 32),
            REG_DST_LO => r.dst = (r.dst & !0xffff_ffff) | u64::from(v),
            REG_DST_HI => r.dst = (r.dst & 0xffff_ffff) | (u64::from(v) << 32),
            REG_LEN => r.len = v,
            REG_OP => r.op = v,
            REG_FILL => r.fill = v,
            REG_IRQ_ENABLE => r.irq_enable = v & 1,
            REG_DOORBELL if v == 1 => Self::doorbell(dev, st),
            // read-only or unknown
            _ => {}
        }
    }

    /// Registers are accessed 4 bytes at a time: refuse anything else before any access.
    fn check_bar_access(pos: u64, len: usize) -> Result {
        let (index, off) = pci::split_offset(pos);
        if index == u64::from(pci::BAR0_REGION_INDEX) && (len != 4 || off % 4 != 0) {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// One access of 1, 2 or 4 bytes at file offset `pos`.
    fn access(dev: &vfio::Device<Self>, pos: u64, buf: &mut [u8], write: bool) -> Result {
        let (index, off) = pci::split_offset(pos);
        let mut st = dev.state.lock();
        match index as u32 {
            pci::CONFIG_REGION_INDEX => {
                if off + buf.len() as u64 > CONFIG_SIZE {
                    return Err(EINVAL);
                }
                if write {
                    st.cfg_write(off, buf)
                } else {
                    st.cfg.read(off as usize, buf)
                }
            }
            pci::BAR0_REGION_INDEX => {
                if buf.len() != 4 || off % 4 != 0 || off >= BAR0_SIZE {
                    return Err(EINVAL);
                }
                if write {
                    let v = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
                    Self::reg_write(dev, &mut st, off, v);
                } else {
                    buf.copy_from_slice(&st.reg_read(off).to_le_bytes());
                }
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }
}

#[vtable]
impl<E: Engine> vfio::DeviceOps for Mdma<E> {
    const NAME: &'static CStr = c_str!("vfio-mdma");

    fn close(dev: &vfio::Device<Self>) {
        let mut st = dev.state.lock();
        st.irq.disable();
        st.req.disable();
        // A request held back while stopped dies with the user that made it.
        st.pending = false;
    }

    fn pinned_map(&self) -> &PinnedMap {
        &self.map
    }

    fn read(dev: &vfio::Device<Self>, buf: &mut UserSliceWriter, pos: u64) -> Result<usize> {
        Self::check_bar_access(pos, buf.len())?;
        pci::read_split(buf, pos, |pos, b| Self::access(dev, pos, b, false))
    }

    fn write(dev: &vfio::Device<Self>, buf: &mut UserSliceReader, pos: u64) -> Result<usize> {
        Self::check_bar_access(pos, buf.len())?;
        pci::write_split(buf, pos, |pos, b| {
            let mut v = [0u8; 4];
            let v = &mut v[..b.len()];
            v.copy_from_slice(b);
            Self::access(dev, pos, v, true)
        })
    }

    fn device_info(_dev: &vfio::Device<Self>) -> Result<DeviceInfo> {
        Ok(DeviceInfo {
            flags: vfio::device_flags::PCI,
            num_regions: pci::NUM_REGIONS,
            num_irqs: pci::NUM_IRQS,
        })
    }

    fn region_info(_dev: &vfio::Device<Self>, index: u32, _caps: &mut Caps) -> Result<RegionInfo> {
        let size = match index {
            pci::BAR0_REGION_INDEX => BAR0_SIZE,
            pci::CONFIG_REGION_INDEX => CONFIG_SIZE,
            i if i < pci::NUM_REGIONS => 0,
            _ => return Err(EINVAL),
        };
        let flags = if size > 0 {
            vfio::region_flags::READ | vfio::region_flags::WRITE
        } else {
            0
        };
        Ok(RegionInfo {
            flags,
            size,
            offset: pci::region_offset(index),
        })
    }

    fn irq_info(_dev: &vfio::Device<Self>, index: u32) -> Result<IrqInfo> {
        if index == pci::REQ_IRQ_INDEX {
            return Ok(pci::RequestIrq::INFO);
        }
        pci::Irqs::info(index)
    }

    fn num_irqs(_dev: &vfio::Device<Self>) -> u32 {
        pci::NUM_IRQS
    }

    fn set_irqs(dev: &vfio::Device<Self>, set: &IrqSet<'_>) -> Result {
        let mut st = dev.state.lock();
        if set.index == pci::REQ_IRQ_INDEX {
            return st.req.set(set);
        }
        st.irq.set(set)
    }

    fn request(dev: &vfio::Device<Self>, _count: u32) {
        // A request in flight holds the state lock: it stops at its next safe point.
        dev.stop.store(true, Ordering::Release);
        // The core asks again every 10 s until the device is released.
        dev.state.lock().req.signal();
    }

    fn reset(dev: &vfio::Device<Self>) -> Result {
        let mut st = dev.state.lock();
        st.regs = Regs::default();
        st.pending = false;
        Ok(())
    }

    const MIGRATION_FLAGS: u32 = vfio::migration::flags::STOP_COPY
        | vfio::migration::flags::P2P
        | vfio::migration::flags::PRE_COPY;

    fn mig_set_activity(dev: &vfio::Device<Self>, activity: Activity) -> Result {
        let mut st = dev.state.lock();
        // The engine runs requests synchronously under this lock: once we hold it, no DMA is
        // in flight. It cannot tell peer-to-peer DMA apart, so P2P quiescing stops it too.
        st.stopped = activity != Activity::Running;
        if !st.stopped && st.pending {
            Self::doorbell(dev, &mut st);
        }
        Ok(())
    }

    fn mig_save(
        dev: &vfio::Device<Self>,
        out: &mut vfio::migration::SaveWriter<'_>,
        phase: SavePhase,
    ) -> Result {
        if !matches!(phase, SavePhase::StopCopy { continued: true }) {
            out.write(&State::mig_header())?;
        }
        if matches!(phase, SavePhase::StopCopy { .. }) {
            out.write(&dev.state.lock().mig_regs()?)?;
        }
        Ok(())
    }

    fn mig_load(dev: &vfio::Device<Self>, data: &[u8]) -> Result {
        dev.state.lock().mig_load(data)
    }

    fn mig_data_size(_dev: &vfio::Device<Self>) -> usize {
        MIG_LEN
    }

    fn mig_stream_limit(_dev: &vfio::Device<Self>) -> usize {
        MIG_LEN
    }
}

/// An mdma device's registration, the mdev's data.
pub(crate) type Reg<E> = vfio::Registration<Mdma<E>>;

/// `vendor/dma_stats`: the pinned-page map's counters.
pub(crate) fn show_dma_stats<E: Engine>(
    _m: &mdev::Device,
    reg: &Reg<E>,
    buf: &mut mdev::SysfsBuf<'_>,
) -> Result {
    let s = reg.map.stats();
    write!(
        buf,
        "pinned_pages {}\nranges {}\nhits {}\nmisses {}\npins {}\nunpins {}\n",
        s.pinned_pages, s.runs, s.hits, s.misses, s.pins, s.unpins
    )
    .map_err(|_| EINVAL)
}

/// `vendor/map_bench`: the results of the map benchmarks run so far.
pub(crate) fn show_map_bench<E: Engine>(
    _m: &mdev::Device,
    reg: &Reg<E>,
    buf: &mut mdev::SysfsBuf<'_>,
) -> Result {
    for r in reg.state.lock().bench.iter() {
        writeln!(
            buf,
            "mdma_map_rs: n={} insert_ns={} lookup_ns={} remove_ns={}",
            r.n, r.insert_ns, r.lookup_ns, r.remove_ns
        )
        .map_err(|_| EINVAL)?;
    }
    Ok(())
}

/// `vendor/map_bench`: runs the map benchmark with N entries.
pub(crate) fn store_map_bench<E: Engine>(_m: &mdev::Device, reg: &Reg<E>, data: &[u8]) -> Result {
    let text = core::str::from_utf8(data).map_err(|_| EINVAL)?;
    let n: u32 = text.trim().parse().map_err(|_| EINVAL)?;
    let r = pinmap::benchmark(n)?;
    reg.state.lock().bench.push(r, GFP_KERNEL)?;
    Ok(())
}

/// The one type of an mdma parent: `<driver>-dma`, "Mediated DMA engine".
pub(crate) fn types() -> Result<KVec<mdev::TypeInfo<()>>> {
    let mut types = KVec::new();
    types.push(
        mdev::TypeInfo {
            sysfs_name: c_str!("dma"),
            pretty_name: Some(c_str!("Mediated DMA engine")),
            class: None,
            data: (),
        },
        GFP_KERNEL,
    )?;
    Ok(types)
}

/// Makes the VFIO device of `mdev`, whose requests `engine` runs.
pub(crate) fn new_device<E: Engine>(
    mdev: &mdev::Device<device::Core<'_>>,
    engine: Arc<E>,
) -> Result<Reg<E>> {
    let state = State::new()?;
    vfio::Registration::new(
        mdev.device(),
        try_pin_init!(Mdma {
            map <- PinnedMap::new(),
            state <- new_mutex!(state),
            engine,
            stop: AtomicBool::new(false),
        }),
    )
}
