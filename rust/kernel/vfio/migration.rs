// SPDX-License-Identifier: GPL-2.0

//! VFIO migration v2 for Rust vendor drivers.
//!
//! C header: [`include/uapi/linux/vfio.h`](srctree/include/uapi/linux/vfio.h) (the protocol),
//! [`include/linux/vfio.h`](srctree/include/linux/vfio.h) (`struct vfio_migration_ops`).
//!
//! A driver opts in with [`DeviceOps::MIGRATION_FLAGS`] and implements
//! [`DeviceOps::mig_save`], [`DeviceOps::mig_load`] and [`DeviceOps::mig_data_size`], plus
//! [`DeviceOps::mig_set_activity`] if the device does anything on its own (DMA, interrupts,
//! timers). The abstraction does the rest of the protocol, as the C drivers each do by hand:
//!
//! - it keeps the device's [`State`] under its own lock and walks a requested transition arc
//!   by arc with `vfio_mig_get_next_state()`, so a driver only ever sees the arcs of the uAPI's
//!   state machine, as typed calls: an activity change ([`Activity`]), a save
//!   ([`SavePhase`]) or a load;
//! - it owns the save and resume streams: anonymous-inode files with `read` (save),
//!   `write` (resume), `VFIO_MIG_GET_PRECOPY_INFO` and `release`, whose bytes live in a buffer
//!   the abstraction allocates. A driver writes its state into a [`SaveWriter`] and parses it
//!   from a byte slice; it never sees a `struct file` or user memory;
//! - a stream ends (`ENODEV` afterwards) when the device leaves the state that streams it, on
//!   `VFIO_DEVICE_RESET` and when the device is closed, as the uAPI requires;
//! - a failed arc leaves the device in the state before it; if the driver cannot undo an
//!   activity change, the device enters [`State::Error`], which only `VFIO_DEVICE_RESET`
//!   leaves (to [`State::Running`]).
//!
//! Errors userspace sees (as `errno`): a state the device does not support, `ERROR`, a value
//! past the last state, or an arc the uAPI forbids (`STOP_COPY` to `PRE_COPY`): `EINVAL`; any
//! request while in `ERROR`: `EINVAL`; reading or writing a stream that has ended: `ENODEV`;
//! reading a save stream at its temporary end during pre-copy: `ENOMSG` (and 0 at the end of a
//! stop-copy stream); writing more than [`DeviceOps::mig_stream_limit`] bytes into a resume
//! stream: `ENOMEM` (a save that would exceed it fails its arc with `EFBIG`);
//! `VFIO_MIG_GET_PRECOPY_INFO` outside `PRE_COPY`/`PRE_COPY_P2P` (an ended stream included)
//! or with a short `argsz`: `EINVAL`; any other ioctl on a stream: `ENOTTY`;
//! `pread`/`pwrite`: `ESPIPE`. DMA logging (`vfio_log_ops`, for every migrating device when
//! `CONFIG_IOMMUFD_DRIVER` is set) is described in [`super::dirty`].
//!
//! [`DeviceOps::MIGRATION_FLAGS`]: super::DeviceOps::MIGRATION_FLAGS
//! [`DeviceOps::mig_save`]: super::DeviceOps::mig_save
//! [`DeviceOps::mig_load`]: super::DeviceOps::mig_load
//! [`DeviceOps::mig_data_size`]: super::DeviceOps::mig_data_size
//! [`DeviceOps::mig_stream_limit`]: super::DeviceOps::mig_stream_limit
//! [`DeviceOps::mig_set_activity`]: super::DeviceOps::mig_set_activity

use super::{Device, DeviceOps};
use crate::{
    alloc::{
        flags::{__GFP_NOWARN, GFP_KERNEL_ACCOUNT},
        Flags, KVVec,
    },
    bindings,
    error::{to_result, Result},
    ffi::{c_char, c_int, c_long, c_uint, c_ulong},
    ioctl::_IO,
    module::this_module,
    prelude::*,
    sync::{new_mutex, Arc, ArcBorrow, Mutex},
    transmute::{AsBytes, FromBytes},
    types::ForeignOwnable,
    uaccess::{UserPtr, UserSlice},
};
use core::{
    marker::PhantomData,
    mem::size_of,
    ptr,
    sync::atomic::{AtomicBool, Ordering},
};

/// Allocations of stream bytes: accounted to the user's memory cgroup, and failing quietly
/// (sizes are the user's and the driver's).
fn stream_gfp() -> Flags {
    GFP_KERNEL_ACCOUNT | __GFP_NOWARN
}

/// `VFIO_MIGRATION_*` flags of [`DeviceOps::MIGRATION_FLAGS`](super::DeviceOps::MIGRATION_FLAGS).
pub mod flags {
    /// Stop-copy migration (`STOP`, `STOP_COPY`, `RESUMING`, `RUNNING`): required.
    pub const STOP_COPY: u32 = crate::bindings::VFIO_MIGRATION_STOP_COPY;
    /// The P2P quiescent states (`RUNNING_P2P`, and `PRE_COPY_P2P` with `PRE_COPY`).
    pub const P2P: u32 = crate::bindings::VFIO_MIGRATION_P2P;
    /// Pre-copy (`PRE_COPY`): the save stream opens while the device still runs.
    pub const PRE_COPY: u32 = crate::bindings::VFIO_MIGRATION_PRE_COPY;
}

/// Whether `f` is a valid [`DeviceOps::MIGRATION_FLAGS`](super::DeviceOps::MIGRATION_FLAGS):
/// 0 (no migration), or `STOP_COPY` with any of `P2P` and `PRE_COPY`.
pub const fn flags_valid(f: u32) -> bool {
    f == 0
        || (f & flags::STOP_COPY != 0
            && f & !(flags::STOP_COPY | flags::P2P | flags::PRE_COPY) == 0)
}

/// A migration state (`enum vfio_device_mig_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum State {
    /// The device failed an arc and could not return to a valid state; left by reset only.
    Error = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_ERROR,
    /// Stopped: no DMA, no interrupts, no change of internal state.
    Stop = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_STOP,
    /// Fully running (the state after open and after reset).
    Running = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING,
    /// Stopped, with the save stream carrying the device state.
    StopCopy = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_STOP_COPY,
    /// Stopped, with the resume stream receiving a saved state.
    Resuming = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RESUMING,
    /// Running, but initiating no new peer-to-peer DMA.
    RunningP2p = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING_P2P,
    /// Running, with the save stream open for initial data.
    PreCopy = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY,
    /// `RunningP2p`, with the save stream open for initial data.
    PreCopyP2p = bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY_P2P,
}

impl State {
    /// The state of the uAPI value `v`, if it names one.
    pub const fn from_raw(v: u32) -> Option<Self> {
        Some(match v {
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_ERROR => Self::Error,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_STOP => Self::Stop,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING => Self::Running,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_STOP_COPY => Self::StopCopy,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RESUMING => Self::Resuming,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING_P2P => Self::RunningP2p,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY => Self::PreCopy,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY_P2P => Self::PreCopyP2p,
            _ => return None,
        })
    }

    /// What the device may do on its own in this state.
    pub const fn activity(self) -> Activity {
        match self {
            Self::Running | Self::PreCopy => Activity::Running,
            Self::RunningP2p | Self::PreCopyP2p => Activity::P2pQuiesced,
            Self::Stop | Self::StopCopy | Self::Resuming | Self::Error => Activity::Stopped,
        }
    }

    /// Whether the state is in the saving group (`PRE_COPY`, `PRE_COPY_P2P`, `STOP_COPY`),
    /// whose states share one save stream.
    pub const fn saving(self) -> bool {
        matches!(self, Self::PreCopy | Self::PreCopyP2p | Self::StopCopy)
    }
}

/// What a device may do on its own, as [`DeviceOps::mig_set_activity`] sets it.
///
/// [`DeviceOps::mig_set_activity`]: super::DeviceOps::mig_set_activity
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Fully operational: DMA, interrupts, internal state changes.
    Running,
    /// The P2P quiescent state: no new peer-to-peer DMA (a device that cannot tell P2P DMA
    /// apart stops all DMA), outstanding DMA completed before the arc returns.
    P2pQuiesced,
    /// No DMA, no interrupts, no change of internal state; the device still answers its
    /// regions (configuration space, registers) for the user.
    Stopped,
}

/// Why [`DeviceOps::mig_save`](super::DeviceOps::mig_save) is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavePhase {
    /// Entering `PRE_COPY` or `PRE_COPY_P2P`: a new save stream, the device still runs; write
    /// the initial data (what is worth sending before the device stops).
    PreCopy,
    /// Entering `STOP_COPY`: the device is stopped; write the rest of the state. `continued`
    /// is true when the stream already holds what the [`SavePhase::PreCopy`] call wrote, false
    /// for a new stream (from `STOP`).
    StopCopy {
        /// Whether the stream continues a pre-copy.
        continued: bool,
    },
}

/// Where [`DeviceOps::mig_save`](super::DeviceOps::mig_save) writes the device state.
///
/// The bytes are appended to the save stream only if the save succeeds.
pub struct SaveWriter<'a> {
    buf: &'a mut KVVec<u8>,
}

impl SaveWriter<'_> {
    /// Appends `bytes` (`ENOMEM` when the buffer cannot grow).
    pub fn write(&mut self, bytes: &[u8]) -> Result {
        self.buf.extend_from_slice(bytes, stream_gfp())?;
        Ok(())
    }

    /// Appends the bytes of `v`.
    pub fn write_obj<V: AsBytes>(&mut self, v: &V) -> Result {
        self.write(v.as_bytes())
    }

    /// The number of bytes written by this call so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written by this call so far.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// The default of [`DeviceOps::mig_stream_limit`](super::DeviceOps::mig_stream_limit).
pub const DEFAULT_STREAM_LIMIT: usize = 64 << 20;
/// The most any stream holds, whatever the driver says (a stream's buffer is one
/// `kvmalloc()`).
pub const MAX_STREAM_LIMIT: usize = 1 << 30;

/// The bytes of a save or resume stream.
///
/// # Invariants
///
/// `pos <= data.len()`.
struct StreamData {
    /// The bytes of the stream: saved (read out from `pos`) or received. `kvmalloc`ed and
    /// accounted to the user: a device state may be large (a GPU's).
    data: KVVec<u8>,
    /// Read position of a save stream.
    pos: usize,
    /// A save stream in pre-copy: at its end, reads fail with `ENOMSG`, and
    /// `VFIO_MIG_GET_PRECOPY_INFO` works.
    precopy: bool,
    /// The most the stream holds (the driver's `mig_stream_limit` at its start).
    limit: usize,
}

/// A save or resume stream, shared by the device (which ends it) and its file (which keeps
/// it until it is released).
///
/// # Invariants
///
/// Once `ended` is set, it stays set.
#[pin_data]
struct Stream {
    /// The stream has ended: reads and writes fail with `ENODEV`, the pre-copy ioctl with
    /// `EINVAL` (the device left pre-copy). Set without `data`'s lock, so that ending a stream
    /// (at reset, at close) never waits for a copy to or from user memory in progress.
    ended: AtomicBool,
    /// Userspace opted in to `VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2` (the flags of
    /// `struct vfio_precopy_info` are an output); refreshed at every migration request.
    info_v2: AtomicBool,
    #[pin]
    data: Mutex<StreamData>,
}

impl Stream {
    /// Ends the stream (its bytes are freed with the file).
    fn end(&self) {
        self.ended.store(true, Ordering::Release);
    }

    fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }
}

/// The migration state of a device, under its lock in [`Device`].
///
/// # Invariants
///
/// `saving` is `Some` only while `current` is a saving state, `resuming` only while it is
/// `Resuming` (each may be `None` there after a failed arc that ended it).
pub(super) struct MigState {
    current: State,
    saving: Option<Arc<Stream>>,
    resuming: Option<Arc<Stream>>,
    /// DMA logging is on, for a device without a [`PinnedMap`](super::PinnedMap): such a
    /// device cannot write guest memory through the safe API, so its reports are clean and
    /// need no bitmap.
    logging: bool,
}

impl MigState {
    /// A device that is `RUNNING` with no stream.
    pub(super) fn new() -> impl PinInit<Mutex<MigState>> {
        new_mutex!(MigState {
            current: State::Running,
            saving: None,
            resuming: None,
            logging: false,
        })
    }

    /// Ends both streams.
    fn end_streams(&mut self) {
        for s in [self.saving.take(), self.resuming.take()]
            .into_iter()
            .flatten()
        {
            s.end();
        }
    }

    /// Gives the open streams the user's pre-copy opt-in as it is now.
    fn refresh_info_v2(&self, v2: bool) {
        for s in [&self.saving, &self.resuming].into_iter().flatten() {
            s.info_v2.store(v2, Ordering::Relaxed);
        }
    }
}

/// Whether the user opted in to `VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2` on `vdev`.
///
/// # Safety
///
/// `vdev` is a valid `struct vfio_device` for the duration of the call.
unsafe fn info_v2_of(vdev: *mut bindings::vfio_device) -> bool {
    // SAFETY: `vdev` is valid (function safety requirements). The VFIO core writes
    // `precopy_info_v2` without a lock, from its feature ioctl (possibly on another thread)
    // and at close: a volatile byte read, as C's `READ_ONCE`, sees one value or the other.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*vdev).precopy_info_v2)) != 0 }
}

/// A reference on a `struct file`, put on drop unless handed to the VFIO core.
///
/// # Invariants
///
/// `self.0` is a valid file on which this object owns a reference.
struct FileRef(*mut bindings::file);

impl FileRef {
    /// Gives the reference to the caller (the VFIO core installs it as the data fd).
    fn into_raw(self) -> *mut bindings::file {
        let f = self.0;
        core::mem::forget(self);
        f
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: We own a reference on a valid file (type invariant).
        unsafe { bindings::fput(self.0) };
    }
}

/// `VFIO_MIG_GET_PRECOPY_INFO`.
pub const MIG_GET_PRECOPY_INFO: u32 = _IO(super::VFIO_TYPE, super::VFIO_BASE + 21);
/// `offsetofend(struct vfio_precopy_info, dirty_bytes)`.
const PRECOPY_INFO_MINSZ: usize = size_of::<bindings::vfio_precopy_info>();
const _: () = assert!(PRECOPY_INFO_MINSZ == 24);

// SAFETY: `struct vfio_precopy_info` is `{argsz, flags: __u32, initial_bytes, dirty_bytes:
// __aligned_u64}` (24 bytes, asserted above): any bit pattern is a valid value.
unsafe impl FromBytes for bindings::vfio_precopy_info {}
// SAFETY: Two `__u32` then two 8-byte aligned `__u64` fill the 24 bytes: no padding.
unsafe impl AsBytes for bindings::vfio_precopy_info {}

/// Borrows the stream of a stream file.
///
/// # Safety
///
/// `file` is a file created by [`MigAdapter::new_file`] that has not been released.
unsafe fn stream_of<'a>(file: *mut bindings::file) -> ArcBorrow<'a, Stream> {
    // SAFETY: `private_data` is the `Arc<Stream>` that `new_file` converted with
    // `into_foreign` and that `release` converts back, after the last use through the file;
    // the caller guarantees the file is not released for `'a`.
    unsafe { <Arc<Stream> as ForeignOwnable>::borrow((*file).private_data) }
}

/// The part `read()` and `write()` of a stream share: `ESPIPE` for a positioned access,
/// `ENODEV` once the stream ended, otherwise `f` on its data, under its lock. Streams are
/// opened with `stream_open()`, so `ppos` is NULL for `read()`/`write()` and
/// `pread()`/`pwrite()` fail with `ESPIPE` before getting here; the check is defensive.
///
/// # Safety
///
/// `file` is a live stream file (the VFS calls `read`/`write` between its creation and its
/// release).
unsafe fn with_stream_data(
    file: *mut bindings::file,
    ppos: *mut bindings::loff_t,
    f: impl FnOnce(&mut StreamData) -> isize,
) -> isize {
    if !ppos.is_null() {
        return ESPIPE.to_errno() as isize;
    }
    // SAFETY: The caller guarantees that `file` is a live stream file.
    let stream = unsafe { stream_of(file) };
    let mut s = stream.data.lock();
    if stream.ended() {
        return ENODEV.to_errno() as isize;
    }
    f(&mut s)
}

/// `read()` of a save stream.
///
/// # Safety
///
/// Called by the VFS with a live save-stream file and a user buffer of `len` bytes.
unsafe extern "C" fn save_read(
    file: *mut bindings::file,
    buf: *mut c_char,
    len: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: The VFS calls `read` between the file's creation and its release.
    unsafe { with_stream_data(file, ppos, |s| save_read_locked(s, buf, len)) }
}

/// [`save_read`] with the stream's lock held: the bytes after `pos`, at most `len`, to `buf`
/// (a user address: `copy_to_user` checks it).
fn save_read_locked(s: &mut StreamData, buf: *mut c_char, len: usize) -> isize {
    let rest = s.data.get(s.pos..).unwrap_or(&[]);
    let n = rest.len().min(len);
    if n == 0 {
        return if s.precopy && len != 0 {
            ENOMSG.to_errno() as isize
        } else {
            0
        };
    }
    let mut w = UserSlice::new(UserPtr::from_ptr(buf.cast()), n).writer();
    if let Err(e) = w.write_slice(&rest[..n]) {
        return e.to_errno() as isize;
    }
    // INVARIANT: `n` bytes were left after `pos`.
    s.pos += n;
    n as isize
}

/// `write()` of a resume stream.
///
/// # Safety
///
/// Called by the VFS with a live resume-stream file and a user buffer of `len` bytes.
unsafe extern "C" fn resume_write(
    file: *mut bindings::file,
    buf: *const c_char,
    len: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: The VFS calls `write` between the file's creation and its release.
    unsafe { with_stream_data(file, ppos, |s| resume_write_locked(s, buf, len)) }
}

/// [`resume_write`] with the stream's lock held: `len` bytes from `buf` (a user address:
/// `copy_from_user` checks it) appended, or nothing.
fn resume_write_locked(s: &mut StreamData, buf: *const c_char, len: usize) -> isize {
    let old = s.data.len();
    match old.checked_add(len) {
        Some(end) if end <= s.limit => {}
        _ => return ENOMEM.to_errno() as isize,
    }
    if len == 0 {
        return 0;
    }
    let r = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), len).reader();
    if let Err(e) = r.read_all(&mut s.data, stream_gfp()) {
        // Nothing of a failed write stays in the stream.
        s.data.truncate(old);
        return e.to_errno() as isize;
    }
    len as isize
}

/// `VFIO_MIG_GET_PRECOPY_INFO` on a save stream; any other ioctl: `ENOTTY`.
///
/// # Safety
///
/// Called by the VFS with a live save-stream file.
unsafe extern "C" fn save_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    if cmd != MIG_GET_PRECOPY_INFO {
        return ENOTTY.to_errno() as c_long;
    }
    // SAFETY: The VFS calls `unlocked_ioctl` between the file's creation and its release.
    let stream = unsafe { stream_of(file) };
    let arg = UserPtr::from_addr(arg);
    let res = (|| -> Result {
        let mut info: bindings::vfio_precopy_info =
            UserSlice::new(arg, PRECOPY_INFO_MINSZ).reader().read()?;
        if (info.argsz as usize) < PRECOPY_INFO_MINSZ {
            return Err(EINVAL);
        }
        let s = stream.data.lock();
        // An ended stream: the device left pre-copy.
        if stream.ended() || !s.precopy {
            return Err(EINVAL);
        }
        if stream.info_v2.load(Ordering::Relaxed) {
            // An output since the opt-in; this driver never re-initialises its data.
            info.flags = 0;
        }
        // No underflow: `pos <= data.len()` (type invariant).
        info.initial_bytes = (s.data.len() - s.pos) as u64;
        info.dirty_bytes = 0;
        drop(s);
        UserSlice::new(arg, PRECOPY_INFO_MINSZ)
            .writer()
            .write(&info)
    })();
    match res {
        Ok(()) => 0,
        Err(e) => e.to_errno() as c_long,
    }
}

/// `release` of a stream file: drops the file's reference on the stream.
///
/// # Safety
///
/// Called by the VFS once, with the last reference on a stream file.
unsafe extern "C" fn stream_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `private_data` is the `Arc<Stream>` `new_file` converted with `into_foreign`;
    // this is the last use through the file, so it is converted back once.
    drop(unsafe { <Arc<Stream> as ForeignOwnable>::from_foreign((*file).private_data) });
    0
}

/// The migration callbacks and stream files of `T`'s devices.
pub(super) struct MigAdapter<T: DeviceOps>(PhantomData<T>);

impl<T: DeviceOps> MigAdapter<T> {
    /// The `struct vfio_migration_ops` of `T`'s devices.
    pub(super) const OPS: bindings::vfio_migration_ops = bindings::vfio_migration_ops {
        migration_set_state: Some(Self::set_state),
        migration_get_state: Some(Self::get_state),
        migration_get_data_size: Some(Self::get_data_size),
    };

    const SAVE_FOPS: bindings::file_operations = bindings::file_operations {
        owner: this_module::<T::OwnerModule>().as_ptr(),
        read: Some(save_read),
        unlocked_ioctl: Some(save_ioctl),
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: bindings::compat_ptr_ioctl,
        release: Some(stream_release),
        ..pin_init::zeroed()
    };

    const RESUME_FOPS: bindings::file_operations = bindings::file_operations {
        owner: this_module::<T::OwnerModule>().as_ptr(),
        write: Some(resume_write),
        release: Some(stream_release),
        ..pin_init::zeroed()
    };

    /// A new stream file over `stream`, holding a reference on it.
    fn new_file(stream: &Arc<Stream>, save: bool) -> Result<FileRef> {
        let (fops, flags): (&'static bindings::file_operations, u32) = if save {
            (&Self::SAVE_FOPS, bindings::O_RDONLY)
        } else {
            (&Self::RESUME_FOPS, bindings::O_WRONLY)
        };
        let private = stream.clone().into_foreign();
        // SAFETY: The name is a C string constant; `fops` is a static table of this module
        // whose handlers expect `private_data` to be an `Arc<Stream>`, which `private` is; its
        // `owner` keeps the vendor module loaded while the file exists.
        let file = unsafe {
            bindings::anon_inode_getfile(c"vfio-mig".as_char_ptr(), fops, private, flags as c_int)
        };
        let file = match crate::error::from_err_ptr(file) {
            Ok(f) => f,
            Err(e) => {
                // SAFETY: The file was not created, so `private` was not handed over: we
                // still own the reference `into_foreign` gave up.
                drop(unsafe { <Arc<Stream> as ForeignOwnable>::from_foreign(private) });
                return Err(e);
            }
        };
        // SAFETY: `file` is a new, valid file; `stream_open` only adjusts its mode (no
        // seeking, no positional I/O).
        unsafe { bindings::stream_open((*file).f_inode, file) };
        // INVARIANT: `anon_inode_getfile` returned a file with one reference, now ours.
        Ok(FileRef(file))
    }

    /// A new stream of at most `limit` bytes, with the user's pre-copy opt-in read from
    /// `dev`.
    fn new_stream(dev: &Device<T>, precopy: bool, limit: usize) -> Result<Arc<Stream>> {
        // SAFETY: `dev` is alive for the call (a reference), so is its `vfio_device`.
        let v2 = unsafe { info_v2_of(dev.as_raw()) };
        Arc::pin_init(
            pin_init!(Stream {
                ended: AtomicBool::new(false),
                info_v2: AtomicBool::new(v2),
                // INVARIANT: `pos == 0 == data.len()`.
                data <- new_mutex!(StreamData {
                    data: KVVec::new(),
                    pos: 0,
                    precopy,
                    limit: limit.min(MAX_STREAM_LIMIT),
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Changes what the device does from `from`'s activity to `to`'s, if they differ.
    ///
    /// User mappings of the device's memory ([`super::mmap`]) are zapped on every change,
    /// after the driver's.
    fn set_activity(dev: &Device<T>, from: State, to: State) -> Result {
        if from.activity() == to.activity() {
            return Ok(());
        }
        if T::HAS_MIG_SET_ACTIVITY {
            T::mig_set_activity(dev, to.activity())?;
        }
        if T::HAS_MMAP {
            dev.zap_mappings();
        }
        Ok(())
    }

    /// Runs the driver's save for `phase` and appends its bytes to `stream`.
    fn save(dev: &Device<T>, stream: &Stream, phase: SavePhase) -> Result {
        let mut buf = KVVec::new();
        T::mig_save(dev, &mut SaveWriter { buf: &mut buf }, phase)?;
        let mut s = stream.data.lock();
        // More than the destination would accept: fail here, not there.
        if s.data.len().saturating_add(buf.len()) > s.limit {
            return Err(EFBIG);
        }
        s.data.extend_from_slice(&buf, stream_gfp())?;
        if matches!(phase, SavePhase::StopCopy { .. }) {
            s.precopy = false;
        }
        Ok(())
    }

    /// One arc of the state machine, `m.current` to `next`; returns the new stream's file of an
    /// arc that opens one. On error `m.current` is unchanged, unless the device could not be
    /// returned to it (then [`State::Error`]).
    fn step(dev: &Device<T>, m: &mut MigState, next: State) -> Result<Option<FileRef>> {
        let cur = m.current;
        let res =
            Self::set_activity(dev, cur, next).and_then(|()| Self::step_data(dev, m, cur, next));
        // Back to the activity of `cur` (nothing if it did not change, or the change failed
        // before doing anything: `mig_set_activity` is idempotent).
        if res.is_err() && Self::set_activity(dev, next, cur).is_err() {
            m.end_streams();
            m.current = State::Error;
        }
        res
    }

    /// The stream part of an arc: opens, feeds, loads or ends the streams.
    fn step_data(
        dev: &Device<T>,
        m: &mut MigState,
        cur: State,
        next: State,
    ) -> Result<Option<FileRef>> {
        if next == State::StopCopy && cur.saving() {
            // PRE_COPY(_P2P) -> STOP_COPY: the same stream continues.
            let stream = m.saving.clone().ok_or(EINVAL)?;
            Self::save(dev, &stream, SavePhase::StopCopy { continued: true })?;
            return Ok(None);
        }
        if next.saving() && !cur.saving() {
            let precopy = next != State::StopCopy;
            let stream = Self::new_stream(dev, precopy, T::mig_stream_limit(dev))?;
            let phase = if precopy {
                SavePhase::PreCopy
            } else {
                SavePhase::StopCopy { continued: false }
            };
            Self::save(dev, &stream, phase)?;
            let file = Self::new_file(&stream, true)?;
            if let Some(old) = m.saving.replace(stream) {
                old.end();
            }
            return Ok(Some(file));
        }
        if cur.saving() && !next.saving() {
            if let Some(s) = m.saving.take() {
                s.end();
            }
            return Ok(None);
        }
        match (cur, next) {
            (State::Stop, State::Resuming) => {
                let stream = Self::new_stream(dev, false, T::mig_stream_limit(dev))?;
                let file = Self::new_file(&stream, false)?;
                if let Some(old) = m.resuming.replace(stream) {
                    old.end();
                }
                Ok(Some(file))
            }
            (State::Resuming, State::Stop) => {
                let stream = m.resuming.clone().ok_or(EINVAL)?;
                let s = stream.data.lock();
                // The device state is only changed by a load that succeeds; on error the
                // stream stays open, as the state stays `RESUMING`.
                T::mig_load(dev, &s.data)?;
                drop(s);
                stream.end();
                m.resuming = None;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// `migration_set_state`: walks to `new` arc by arc.
    fn set_state_locked(
        dev: &Device<T>,
        vdev: *mut bindings::vfio_device,
        new: u32,
    ) -> Result<Option<FileRef>> {
        let mut m = dev.mig.lock();
        // SAFETY: `vdev` is the device of the running callback, alive for the call.
        m.refresh_info_v2(unsafe { info_v2_of(vdev) });
        // `vfio_mig_get_next_state()` warns when asked from `ERROR`: refuse first.
        if m.current == State::Error {
            return Err(EINVAL);
        }
        let mut file = None;
        while m.current as u32 != new {
            let mut next: bindings::vfio_device_mig_state = 0;
            // SAFETY: `vdev` is the registered device of the running callback, whose
            // `migration_flags` were set before registration; `m.current` is a state those
            // flags support (it was reached through this function, or is `RUNNING`).
            to_result(unsafe {
                bindings::vfio_mig_get_next_state(vdev, m.current as u32, new, &mut next)
            })?;
            let next = State::from_raw(next).ok_or(EINVAL)?;
            let f = Self::step(dev, &mut m, next)?;
            m.current = next;
            // Only the last arc of a path opens a stream: `vfio_mig_get_next_state()` routes
            // through a saving state only from another (`PRE_COPY` to `STOP_COPY` through
            // `PRE_COPY_P2P`), which continues the stream. Should an earlier arc open one,
            // the later arcs end it, and its file is put here.
            file = f.or(file.filter(|_| m.current.saving() || m.current == State::Resuming));
        }
        Ok(file)
    }

    /// # Safety
    ///
    /// Called by the VFIO core with a registered, open device of `T`.
    unsafe extern "C" fn set_state(
        vdev: *mut bindings::vfio_device,
        new: bindings::vfio_device_mig_state,
    ) -> *mut bindings::file {
        // SAFETY: The VFIO core calls `mig_ops` only for devices whose `mig_ops`
        // `Registration::new` set, which it allocated as a `Device<T>` with initialised data;
        // the device is open for the call.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        match Self::set_state_locked(dev, vdev, new) {
            Ok(Some(f)) => f.into_raw(),
            Ok(None) => ptr::null_mut(),
            Err(e) => e.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// Called by the VFIO core with a registered, open device of `T`, and a pointer to its local state variable.
    unsafe extern "C" fn get_state(
        vdev: *mut bindings::vfio_device,
        state: *mut bindings::vfio_device_mig_state,
    ) -> c_int {
        // SAFETY: As in `set_state`.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        let m = dev.mig.lock();
        // SAFETY: `vdev` is the device of the running callback, alive for the call.
        m.refresh_info_v2(unsafe { info_v2_of(vdev) });
        let cur = m.current;
        drop(m);
        // SAFETY: The VFIO core passes a pointer to its local variable.
        unsafe { *state = cur as u32 };
        0
    }

    /// # Safety
    ///
    /// Called by the VFIO core with a registered, open device of `T`, and a pointer to its local length variable.
    unsafe extern "C" fn get_data_size(
        vdev: *mut bindings::vfio_device,
        len: *mut c_ulong,
    ) -> c_int {
        // SAFETY: As in `set_state`.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        let n = T::mig_data_size(dev);
        // SAFETY: The VFIO core passes a pointer to its local variable.
        unsafe { *len = n as c_ulong };
        0
    }

    /// # Safety
    ///
    /// Called by the VFIO core with a registered, open device of `T`, its interval tree of the user's ranges and a pointer to its copy of the page size.
    unsafe extern "C" fn log_start(
        vdev: *mut bindings::vfio_device,
        ranges: *mut bindings::rb_root_cached,
        nnodes: u32,
        page_size: *mut u64,
    ) -> c_int {
        // SAFETY: The VFIO core calls `log_ops` only for devices whose `log_ops`
        // `Registration::new` set, which it allocated as a `Device<T>` with initialised data;
        // the device is open for the call.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        crate::error::from_result(|| {
            // SAFETY: The VFIO core passes the interval tree it built from the user's ranges,
            // which it frees after the call.
            let ranges = unsafe { super::dirty::ranges_of(ranges, nnodes)? };
            // SAFETY: The VFIO core passes a pointer to its copy of the request, read and
            // written back after the call.
            let ps = unsafe { *page_size };
            let ps = if T::HAS_PINNED_MAP {
                dev.open_map().ok_or(ENODEV)?.log_start(&ranges, ps)?
            } else {
                let mut m = dev.mig.lock();
                if m.logging {
                    return Err(EBUSY);
                }
                let shift = super::dirty::page_shift(&ranges, ps)?;
                m.logging = true;
                1u64 << shift
            };
            // SAFETY: As above.
            unsafe { *page_size = ps };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFIO core with a registered, open device of `T`.
    unsafe extern "C" fn log_stop(vdev: *mut bindings::vfio_device) -> c_int {
        // SAFETY: As in `log_start`.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        if T::HAS_PINNED_MAP {
            if let Some(map) = dev.open_map() {
                map.log_stop();
            }
        } else {
            dev.mig.lock().logging = false;
        }
        0
    }

    /// # Safety
    ///
    /// Called by the VFIO core with a registered, open device of `T`, and the `iova_bitmap` of the report.
    unsafe extern "C" fn log_read_and_clear(
        vdev: *mut bindings::vfio_device,
        iova: c_ulong,
        length: c_ulong,
        dirty: *mut bindings::iova_bitmap,
    ) -> c_int {
        // SAFETY: As in `log_start`.
        let dev = unsafe { Device::<T>::from_raw(vdev) };
        let set = |s: u64, l: u64| {
            // SAFETY: `dirty` is the bitmap of this report, the callback's argument.
            unsafe { super::dirty::set_dirty(dirty, s, l) }
        };
        crate::error::from_result(|| {
            if T::HAS_PINNED_MAP {
                dev.open_map()
                    .ok_or(ENODEV)?
                    .log_report(iova as u64, length as u64, set)?;
            } else if !dev.mig.lock().logging {
                return Err(EINVAL);
            }
            Ok(0)
        })
    }

    /// The `struct vfio_log_ops` of `T`'s devices.
    pub(super) const LOG_OPS: bindings::vfio_log_ops = bindings::vfio_log_ops {
        log_start: Some(Self::log_start),
        log_stop: Some(Self::log_stop),
        log_read_and_clear: Some(Self::log_read_and_clear),
    };

    /// `VFIO_DEVICE_RESET`: ends the streams, runs the driver's reset (which drops what the
    /// device was holding back while stopped), then returns the device to `RUNNING` (from any
    /// state, `ERROR` included). If the device cannot be made to run, it enters `ERROR`.
    pub(super) fn reset(dev: &Device<T>, device_reset: impl FnOnce() -> Result) -> Result {
        let mut m = dev.mig.lock();
        m.end_streams();
        let cur = m.current;
        let res = device_reset();
        // `ERROR`'s activity is unknown: "stopped" makes the driver hear `Running` (it
        // accepts an activity it already has).
        match Self::set_activity(dev, cur, State::Running) {
            Ok(()) => {
                m.current = State::Running;
                res
            }
            Err(e) => {
                m.current = State::Error;
                Err(e)
            }
        }
    }

    /// The first half of the close, before the driver's: ends the streams (the VFIO core
    /// requires it before `close_device` returns) and DMA logging (the pinned map stops its
    /// own when it is closed).
    pub(super) fn close_begin(dev: &Device<T>) {
        let mut m = dev.mig.lock();
        m.end_streams();
        m.logging = false;
    }

    /// The second half, after the driver's close and the pinned map's (no DMA can start any
    /// more): the device runs again and the next open finds it `RUNNING`, or `ERROR` if it
    /// cannot be made to run.
    pub(super) fn close_end(dev: &Device<T>) {
        let mut m = dev.mig.lock();
        let cur = m.current;
        m.current = match Self::set_activity(dev, cur, State::Running) {
            Ok(()) => State::Running,
            Err(_) => State::Error,
        };
    }
}

/// The raw pointer to the ops table of `T`, for `vfio_device.mig_ops`.
pub(super) const fn ops_ptr<T: DeviceOps>() -> *const bindings::vfio_migration_ops {
    &MigAdapter::<T>::OPS
}

/// The raw pointer to the DMA logging table of `T`, for `vfio_device.log_ops`; NULL without
/// `CONFIG_IOMMUFD_DRIVER`, whose `iova_bitmap` the reports need (the VFIO core answers every
/// report `EOPNOTSUPP` without it, and QEMU falls back to its own dirty tracking when the
/// device offers none).
pub(super) const fn log_ops_ptr<T: DeviceOps>() -> *const bindings::vfio_log_ops {
    if cfg!(CONFIG_IOMMUFD_DRIVER) {
        &MigAdapter::<T>::LOG_OPS
    } else {
        ptr::null()
    }
}
