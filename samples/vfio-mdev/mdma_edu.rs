// SPDX-License-Identifier: GPL-2.0

//! mdma on hardware: QEMU's `edu` PCI device (1234:11e8) runs the requests of mediated mdma
//! devices with its own DMA engine.
//!
//! The driver binds each edu function, maps its BAR (a devres-managed [`pci::DevresBar`]) and
//! registers the function as an mdev parent with one type, `mdma_edu-dma` (up to 8 instances
//! per function). Every mdev is the device of `mdma_dev.rs`, the same VFIO PCI device as the
//! `mdma` sample (register layout, configuration space, interrupts, migration), so the
//! `mdma_test` selftest runs against it unchanged; only the engine differs. A doorbell pins
//! the request's guest pages in the mdev's pinned-page map, maps them for the edu function with
//! the DMA API ([`DmaParent::map`]: DMA-API addresses, right with or without an IOMMU and
//! refused, not corrupted, when the device's mask cannot reach them) and moves the data through
//! the device's 4 KiB buffer at device address 0x40000, one chunk at a time:
//!
//! - copy: guest source -> device buffer -> guest destination;
//! - fill: a 4 KiB page of the fill byte in coherent DMA memory -> device buffer -> destination;
//! - CRC32: guest source -> device buffer -> coherent memory, summed by the CPU.
//!
//! The mdevs of one function share its engine: every chunk takes a ticket, so concurrent
//! requests are served chunk by chunk in turn (first come, first served), and a request that
//! faults (unmapped, unreachable or read-only memory) fails alone. A request stops at its next
//! chunk when its caller was killed or its device is going away (the VFIO core's request to
//! release it); a migration state change waits for it (as for mdma, a request runs under the
//! device's lock). A transfer is done when the engine's command register says so, and is never
//! abandoned before (the memory is unmapped after it); the function's INTx interrupt
//! (registered through the devres-owned [`pci_irq`]) wakes the waiter, and without one the
//! driver polls every 2 ms (edu finishes a transfer 100 ms after the command). edu has no
//! register that tells its DMA mask (`-device edu,dma_mask=...`, default 28 bits): the
//! `dma_bits` parameter says it and must not exceed it; the driver uses at most 32 bits, as it
//! programs the address registers with 32-bit accesses (the BAR's alignment).
//!
//! When the function is unbound (or removed), the driver cancels the requests in flight at the
//! next chunk boundary, then drops the parent registration, which removes every mdev (the
//! VFIO core asks their users to close, through the request eventfd, and waits); the DMA
//! mappings and pins go with the requests and the mdevs.
//!
//! Each mdev has `vendor/dma_stats` (its pinned-page map) and `vendor/engine_stats` (the
//! function's engine: transfers, bytes, refused mappings, faults, completion interrupts).

use core::{
    fmt::Write,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};
use kernel::{
    c_str,
    device::{self, Core},
    dma::{Coherent, DataDirection, DmaAddress, DmaMask},
    io::Io,
    irq, mdev, pci,
    prelude::*,
    sync::{new_condvar, new_mutex, Arc, CondVar, CondVarTimeoutResult, Mutex},
    time::{delay::fsleep, msecs_to_jiffies, Delta, Instant, Monotonic},
    vfio::{
        self,
        dma::{DmaMapped, DmaParent},
        pci_irq, Mapping,
    },
};

#[path = "mdma_dev.rs"]
mod dev;

use dev::{crc32_update, DmaError, Engine, Request};

module! {
    type: EduModule,
    name: "mdma_edu",
    authors: ["mdev-rs developers"],
    description: "mdma mediated devices on QEMU's edu DMA engine",
    license: "GPL v2",
    params: {
        dma_bits: u32 {
            default: 28,
            description: "DMA mask of the edu devices in bits (edu's dma_mask property; 28 by default)",
        },
    },
}

const NAME: &CStr = c_str!("mdma_edu");

/// edu registers (BAR 0).
const EDU_BAR_SIZE: usize = 0x100;
const EDU_ID: usize = 0x00;
const EDU_IRQ_STATUS: usize = 0x24;
const EDU_IRQ_ACK: usize = 0x64;
/// The interrupt status bit of a finished transfer.
const IRQ_DMA: u32 = 0x100;
const EDU_DMA_SRC: usize = 0x80;
const EDU_DMA_DST: usize = 0x88;
const EDU_DMA_CNT: usize = 0x90;
const EDU_DMA_CMD: usize = 0x98;
const CMD_RUN: u32 = 1;
/// Direction bit: device buffer to RAM (clear: RAM to device buffer).
const CMD_TO_RAM: u32 = 2;
/// Raise the interrupt when the transfer is done.
const CMD_IRQ: u32 = 4;
/// The device buffer's address on the device's side, and its size.
const BUF_ADDR: u64 = 0x40000;
const BUF_SIZE: usize = 4096;
/// edu takes 100 ms of virtual time per transfer; a transfer that takes longer than this is
/// reported (and still waited for).
const XFER_SLOW_MS: i64 = 5000;
const POLL: Delta = Delta::from_millis(2);
/// Longest sleep between two looks at the command register when interrupts wake us.
const IRQ_WAIT_MS: u32 = 50;

/// The order in which chunks use the engine.
struct Tickets {
    next: u64,
    serving: u64,
}

/// Counters of one function's engine.
#[derive(Default)]
struct Stats {
    transfers: AtomicU64,
    bytes: AtomicU64,
    refused: AtomicU64,
    faults: AtomicU64,
    irqs: AtomicU64,
    slow: AtomicU64,
}

/// One edu function's DMA engine, shared by its mdevs (the parent's data).
#[pin_data]
struct EduEngine {
    bar: pci::DevresBar<EDU_BAR_SIZE>,
    dma: DmaParent,
    /// A page of coherent memory within the mask, for fills and checksums (`None` if the DMA
    /// layer had none to give: fills and checksums then fail).
    staging: Option<Coherent<[u8]>>,
    #[pin]
    tickets: Mutex<Tickets>,
    #[pin]
    turn: CondVar,
    /// The function is being unbound: no new chunk.
    cancelled: AtomicBool,
    /// The interrupt is registered: transfers ask for it and `xfer` sleeps until it comes
    /// (else the engine polls).
    has_irq: AtomicBool,
    /// Transfers the interrupt reported done.
    irq_done: AtomicU64,
    /// Where `xfer` waits for the interrupt (the mutex only serves the condition variable).
    #[pin]
    irq_wait: Mutex<()>,
    #[pin]
    irq_cv: CondVar,
    stats: Stats,
}

/// The function's interrupt handler (owned by devres through `vfio::pci_irq`).
///
/// It does its work in the hard handler (read the status, acknowledge it, count, wake), so it
/// can share a level-triggered INTx line with handlers that do not use `ONESHOT`.
struct EduIrq(Arc<EduEngine>);

impl irq::ThreadedHandler for EduIrq {
    fn handle(&self) -> irq::ThreadedIrqReturn {
        let e = &self.0;
        let status = e
            .bar
            .try_access_with(|bar| {
                let status = bar.read32(EDU_IRQ_STATUS);
                if status != 0 {
                    bar.write32(status, EDU_IRQ_ACK);
                }
                status
            })
            .unwrap_or(0);
        if status == 0 {
            return irq::ThreadedIrqReturn::None;
        }
        if status & IRQ_DMA != 0 {
            e.stats.irqs.fetch_add(1, Ordering::Relaxed);
            e.irq_done.fetch_add(1, Ordering::Release);
            // Without the waiter's lock: a wakeup that comes between its check and its sleep
            // is lost, and it looks at the command register again after `IRQ_WAIT_MS`.
            e.irq_cv.notify_all();
        }
        irq::ThreadedIrqReturn::Handled
    }

    fn handle_threaded(&self) -> irq::IrqReturn {
        // Never woken: `handle` does everything.
        irq::IrqReturn::Handled
    }
}

/// The engine, held by one chunk until dropped.
struct Turn<'a>(&'a EduEngine);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut t = self.0.tickets.lock();
        t.serving += 1;
        self.0.turn.notify_all();
    }
}

impl EduEngine {
    /// Waits for the engine (first come, first served).
    fn take_turn(&self) -> Result<Turn<'_>, DmaError> {
        let mut t = self.tickets.lock();
        let me = t.next;
        t.next += 1;
        while t.serving != me {
            self.turn.wait(&mut t);
        }
        drop(t);
        let turn = Turn(self);
        if self.cancelled.load(Ordering::Acquire) {
            return Err(DmaError::Fault);
        }
        Ok(turn)
    }

    /// One transfer of `len <= BUF_SIZE` bytes between `ram` and the device buffer at
    /// `buf_off`; waits until the engine is done.
    fn xfer(
        &self,
        _turn: &Turn<'_>,
        to_ram: bool,
        ram: DmaAddress,
        buf_off: usize,
        len: usize,
    ) -> Result<(), DmaError> {
        if len == 0 || buf_off + len > BUF_SIZE {
            return Err(DmaError::Fault);
        }
        let dev_addr = BUF_ADDR + buf_off as u64;
        let irq = self.has_irq.load(Ordering::Acquire);
        let mut seen = self.irq_done.load(Ordering::Acquire);
        let (src, dst, mut cmd) = if to_ram {
            (dev_addr, ram, CMD_RUN | CMD_TO_RAM)
        } else {
            (ram, dev_addr, CMD_RUN)
        };
        if irq {
            cmd |= CMD_IRQ;
        }
        let started = self
            .bar
            .try_access_with(|bar| {
                if bar.read32(EDU_DMA_CMD) & CMD_RUN != 0 {
                    // The last transfer never finished: the engine is not ours to program.
                    return false;
                }
                // 32-bit accesses (the BAR's alignment): edu zero-extends them, and the mask
                // is at most 32 bits (see `probe`).
                bar.write32(src as u32, EDU_DMA_SRC);
                bar.write32(dst as u32, EDU_DMA_DST);
                bar.write32(len as u32, EDU_DMA_CNT);
                bar.write32(cmd, EDU_DMA_CMD);
                true
            })
            .unwrap_or(false);
        if !started {
            self.stats.faults.fetch_add(1, Ordering::Relaxed);
            return Err(DmaError::Fault);
        }
        // The command register says when the transfer is done; the interrupt only wakes us.
        // A transfer is never abandoned while the device may still be moving data: the
        // caller unmaps the memory when this returns.
        let t0 = Instant::<Monotonic>::now();
        let mut slow = false;
        loop {
            let cmd = self.bar.try_access_with(|bar| bar.read32(EDU_DMA_CMD));
            match cmd {
                Some(c) if c & CMD_RUN == 0 => break,
                // All ones: the function is gone (no DMA any more); `None`: unbound.
                Some(u32::MAX) | None => {
                    self.stats.faults.fetch_add(1, Ordering::Relaxed);
                    return Err(DmaError::Fault);
                }
                Some(_) => {}
            }
            if !slow && t0.elapsed().as_millis() > XFER_SLOW_MS {
                slow = true;
                self.stats.slow.fetch_add(1, Ordering::Relaxed);
                pr_warn!("mdma_edu: a transfer takes more than {} ms\n", XFER_SLOW_MS);
            }
            if !irq {
                fsleep(POLL);
                continue;
            }
            let now = self.irq_done.load(Ordering::Acquire);
            if now != seen {
                // An interrupt came (maybe the last transfer's): look at the register again.
                seen = now;
                continue;
            }
            let mut g = self.irq_wait.lock();
            if self.irq_done.load(Ordering::Acquire) == seen {
                let r = self
                    .irq_cv
                    .wait_interruptible_timeout(&mut g, msecs_to_jiffies(IRQ_WAIT_MS));
                if matches!(r, CondVarTimeoutResult::Signal { .. }) {
                    // The transfer runs on; sleep instead of spinning on the signal.
                    drop(g);
                    fsleep(POLL);
                }
            }
        }
        self.stats.transfers.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(len as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Moves bytes `[pos, pos + n)` of a mapped request between RAM and the device buffer.
    fn xfer_range(
        &self,
        turn: &Turn<'_>,
        to_ram: bool,
        mapped: &DmaMapped<'_>,
        pos: usize,
        n: usize,
    ) -> Result<(), DmaError> {
        let mut off = 0;
        for seg in mapped.range(pos, n)?.iter() {
            self.xfer(turn, to_ram, seg.addr(), off, seg.len())?;
            off += seg.len();
        }
        Ok(())
    }

    /// Runs `f` with `m` mapped for the device; counts the pages out of its reach.
    fn map<R>(
        &self,
        m: &Mapping<'_>,
        dir: DataDirection,
        f: impl FnOnce(&DmaMapped<'_>) -> Result<R, DmaError>,
    ) -> Result<R, DmaError> {
        self.dma.map(m, dir, f).map_err(|e| {
            if e == ERANGE {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
            }
            DmaError::from(e)
        })?
    }

    fn staging(&self) -> Result<&Coherent<[u8]>, DmaError> {
        self.staging.as_ref().ok_or(DmaError::Fault)
    }

    /// The chunks of a request of `len` bytes: `f(turn, pos, n)` for each, with the engine.
    /// Stops when the function is being unbound, the device is going away (`stop`) or the
    /// caller was killed.
    fn chunks(
        &self,
        len: usize,
        stop: &AtomicBool,
        mut f: impl FnMut(&Turn<'_>, usize, usize) -> Result<(), DmaError>,
    ) -> Result<(), DmaError> {
        let mut pos = 0;
        while pos < len {
            if vfio::current_killed() || stop.load(Ordering::Acquire) {
                return Err(DmaError::Fault);
            }
            let n = (len - pos).min(BUF_SIZE);
            let turn = self.take_turn()?;
            f(&turn, pos, n)?;
            pos += n;
        }
        Ok(())
    }
}

impl Engine for EduEngine {
    fn run(&self, req: &Request<'_>, stop: &AtomicBool) -> Result<Option<u32>, DmaError> {
        let len = req.len();
        let mut page = KVec::from_elem(0u8, BUF_SIZE, GFP_KERNEL)?;
        // Everything is mapped before the first transfer: a request that cannot be mapped
        // changes nothing.
        match req {
            Request::Copy { src, dst } => {
                self.map(src, DataDirection::ToDevice, |s| {
                    self.map(dst, DataDirection::FromDevice, |d| {
                        self.chunks(len, stop, |turn, pos, n| {
                            self.xfer_range(turn, false, s, pos, n)?;
                            self.xfer_range(turn, true, d, pos, n)
                        })
                    })
                })?;
                Ok(None)
            }
            Request::Fill { dst, byte } => {
                let staging = self.staging()?;
                page.iter_mut().for_each(|b| *b = *byte);
                self.map(dst, DataDirection::FromDevice, |d| {
                    self.chunks(len, stop, |turn, pos, n| {
                        // The staging page is the engine's: load it under the turn.
                        staging.copy_from_slice(&page);
                        self.xfer(turn, false, staging.dma_address(), 0, n)?;
                        self.xfer_range(turn, true, d, pos, n)
                    })
                })?;
                Ok(None)
            }
            Request::Crc32 { src } => {
                let staging = self.staging()?;
                let mut crc = !0u32;
                self.map(src, DataDirection::ToDevice, |s| {
                    self.chunks(len, stop, |turn, pos, n| {
                        self.xfer_range(turn, false, s, pos, n)?;
                        self.xfer(turn, true, staging.dma_address(), 0, n)?;
                        staging.copy_to_slice(&mut page);
                        crc = crc32_update(crc, &page[..n]);
                        Ok(())
                    })
                })?;
                Ok(Some(!crc))
            }
        }
    }
}

/// The mdev driver of the edu functions' mdevs.
struct EduMdev;

type Reg = dev::Reg<EduEngine>;

fn show_engine_stats(_m: &mdev::Device, reg: &Reg, buf: &mut mdev::SysfsBuf<'_>) -> Result {
    let s = &reg.engine.stats;
    write!(
        buf,
        "transfers {}\nbytes {}\nrefused {}\nfaults {}\nirqs {}\nslow {}\n",
        s.transfers.load(Ordering::Relaxed),
        s.bytes.load(Ordering::Relaxed),
        s.refused.load(Ordering::Relaxed),
        s.faults.load(Ordering::Relaxed),
        s.irqs.load(Ordering::Relaxed),
        s.slow.load(Ordering::Relaxed)
    )
    .map_err(|_| EINVAL)
}

#[vtable]
impl mdev::Driver for EduMdev {
    type TypeData = ();
    type ParentData = Arc<EduEngine>;
    type DeviceData = Reg;

    const NAME: &'static CStr = NAME;
    const DEVICE_API: &'static CStr = kernel::vfio::pci::DEVICE_API;
    const MAX_INSTANCES: u32 = dev::MAX_INSTANCES;
    const ATTRIBUTE_GROUP: Option<&'static CStr> = Some(c_str!("vendor"));
    const ATTRIBUTES: &'static [mdev::DeviceAttribute<Self>] = &[
        mdev::DeviceAttribute::read_only(c_str!("dma_stats"), dev::show_dma_stats),
        mdev::DeviceAttribute::read_only(c_str!("engine_stats"), show_engine_stats),
        mdev::DeviceAttribute::read_write(
            c_str!("map_bench"),
            dev::show_map_bench,
            dev::store_map_bench,
        ),
    ];

    fn probe(
        mdev: &mdev::Device<device::Core<'_>>,
        engine: &Arc<EduEngine>,
        _ty: &(),
    ) -> Result<Reg> {
        dev::new_device(mdev, engine.clone())
    }
}

static DRIVER: mdev::DriverSlot<EduMdev> = mdev::DriverSlot::new();

/// The PCI driver of the edu functions.
struct EduPci;

/// What a bound edu function keeps; fields drop in declaration order.
struct EduData {
    /// Dropped first: removes every mdev (waiting for their users), so no request is left.
    _parent: Pin<KBox<mdev::ParentRegistration<EduMdev>>>,
    engine: Arc<EduEngine>,
}

kernel::pci_device_table!(
    EDU_TABLE,
    <EduPci as pci::Driver>::IdInfo,
    [(pci::DeviceId::from_id(pci::Vendor::QEMU, 0x11e8), ())]
);

impl pci::Driver for EduPci {
    type IdInfo = ();
    type Data<'bound> = EduData;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &EDU_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound ()>,
    ) -> impl PinInit<EduData, Error> + 'bound {
        let driver = DRIVER.get().ok_or(ENODEV)?;
        // The engine's address registers are programmed with 32-bit accesses.
        let bits = module_parameters::dma_bits.value().min(32);
        let mask = DmaMask::try_new(bits)?;
        pdev.enable_device_mem()?;
        pdev.set_master();
        let bar = pdev.iomap_region_sized::<EDU_BAR_SIZE>(0, NAME)?;
        let id = bar.read32(EDU_ID);
        if id & 0xff != 0xed {
            dev_err!(pdev, "not an edu device (ID register {:#x})\n", id);
            return Err(ENODEV);
        }
        let bar = bar.into_devres()?;
        let dma = DmaParent::new(pdev.as_ref(), mask)?;
        let staging = Coherent::<u8>::zeroed_slice(pdev.as_ref(), BUF_SIZE, GFP_KERNEL).ok();
        dev_info!(
            pdev,
            "edu {}.{}: mdev parent, DMA mask {} bits, coherent staging page: {}\n",
            id >> 24,
            (id >> 16) & 0xff,
            bits,
            if staging.is_some() {
                "yes"
            } else {
                "none (fill and CRC32 fail)"
            }
        );
        let engine = Arc::pin_init(
            try_pin_init!(EduEngine {
                bar,
                dma,
                staging,
                tickets <- new_mutex!(Tickets { next: 0, serving: 0 }),
                turn <- new_condvar!(),
                cancelled: AtomicBool::new(false),
                has_irq: AtomicBool::new(false),
                irq_done: AtomicU64::new(0),
                irq_wait <- new_mutex!(()),
                irq_cv <- new_condvar!(),
                stats: Stats::default(),
            }),
            GFP_KERNEL,
        )?;
        // Completion on the interrupt (the function's INTx line); without it the engine
        // polls.
        match pci_irq::request_threaded(
            pdev,
            irq::Flags::TRIGGER_NONE,
            NAME,
            Ok::<_, Error>(EduIrq(engine.clone())),
        ) {
            Ok(n) => {
                engine.has_irq.store(true, Ordering::Release);
                dev_info!(pdev, "completion interrupt: IRQ {}\n", n);
            }
            Err(e) => dev_warn!(pdev, "no interrupt ({:?}): polling for completion\n", e),
        }
        let types = dev::types()?;
        let parent = KBox::pin_init(
            mdev::ParentRegistration::new(pdev.as_ref(), &driver, types, engine.clone()),
            GFP_KERNEL,
        )?;
        Ok(EduData {
            _parent: parent,
            engine,
        })
    }

    fn unbind<'bound>(pdev: &'bound pci::Device<Core<'_>>, this: Pin<&EduData>) {
        // Requests in flight stop at their next chunk; the parent registration, dropped
        // next, then removes the mdevs.
        this.engine.cancelled.store(true, Ordering::Release);
        dev_info!(
            pdev,
            "unbinding: mdevs go, requests in flight are cancelled\n"
        );
    }
}

/// The module: the mdev driver (in [`DRIVER`] for the probes) and the PCI driver.
#[pin_data]
struct EduModule {
    /// Unregistered first: unbinds every function, which drops its parent.
    #[pin]
    _pci: kernel::driver::Registration<pci::Adapter<EduPci>>,
    _driver: mdev::DriverSlotGuard<'static, EduMdev>,
}

impl kernel::InPlaceModule for EduModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _driver: {
                let driver = Arc::pin_init(mdev::DriverRegistration::new(module), GFP_KERNEL)?;
                DRIVER.set(driver)?
            },
            _pci <- kernel::driver::Registration::new(NAME, module),
        })
    }
}
