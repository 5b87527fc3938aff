// SPDX-License-Identifier: GPL-2.0

//! Display planes of a mediated GPU: `VFIO_DEVICE_QUERY_GFX_PLANE`.
//!
//! A device that shows a picture implements [`DeviceOps::query_gfx_plane`] and says with
//! [`DeviceOps::GFX_PLANE`] how its planes are given: in a region of the device file
//! ([`PlaneKind::Region`], as `mdpy`) or as dma-bufs ([`PlaneKind::DmaBuf`], as `mbochs`). The
//! abstraction decodes the ioctl, answers the probe (`VFIO_GFX_PLANE_TYPE_PROBE`) itself, as
//! the C samples do: a probe succeeds exactly for the device's kind, and a query must name that
//! kind and nothing else (`EINVAL` otherwise); the driver only describes the plane.
//!
//! [`DeviceOps::query_gfx_plane`]: super::DeviceOps::query_gfx_plane
//! [`DeviceOps::GFX_PLANE`]: super::DeviceOps::GFX_PLANE

use crate::{
    bindings,
    prelude::*,
    transmute::{AsBytes, FromBytes},
};
use core::mem::{offset_of, size_of};

/// `VFIO_DEVICE_QUERY_GFX_PLANE`.
pub const DEVICE_QUERY_GFX_PLANE: u32 = crate::ioctl::_IO(b';' as u32, 100 + 14);
/// `VFIO_DEVICE_GET_GFX_DMABUF`.
pub const DEVICE_GET_GFX_DMABUF: u32 = crate::ioctl::_IO(b';' as u32, 100 + 15);

/// How a device gives its display planes to userspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaneKind {
    /// In a region of the device file (`VFIO_GFX_PLANE_TYPE_REGION`); [`Plane::id`] is the
    /// region index.
    Region,
    /// As dma-bufs (`VFIO_GFX_PLANE_TYPE_DMABUF`); [`Plane::id`] is the dma-buf id that
    /// `VFIO_DEVICE_GET_GFX_DMABUF` takes.
    DmaBuf,
}

impl PlaneKind {
    /// The `VFIO_GFX_PLANE_TYPE_*` flag.
    pub const fn flag(self) -> u32 {
        match self {
            Self::Region => bindings::VFIO_GFX_PLANE_TYPE_REGION,
            Self::DmaBuf => bindings::VFIO_GFX_PLANE_TYPE_DMABUF,
        }
    }
}

/// What a query asks, once the abstraction validated its flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// A probe: the answer is the return value only (0), nothing is written back.
    Probe,
    /// A query for the plane of DRM plane type `drm_plane_type` (`DRM_PLANE_TYPE_*`: 1 primary,
    /// 2 cursor), which the driver describes.
    Plane {
        /// `drm_plane_type` as the user gave it.
        drm_plane_type: u32,
    },
}

/// Validates the `flags` of a query to a device whose planes are of kind `kind`.
///
/// # Examples
///
/// ```
/// use kernel::vfio::gfx::{validate, PlaneKind, Query};
///
/// const PROBE: u32 = 1;
/// const DMABUF: u32 = 2;
/// const REGION: u32 = 4;
/// let k = PlaneKind::Region;
/// assert_eq!(validate(k, PROBE | REGION, 1), Ok(Query::Probe));
/// assert_eq!(validate(k, PROBE | DMABUF, 1), Err(EINVAL));
/// assert_eq!(validate(k, PROBE, 1), Err(EINVAL));
/// assert_eq!(validate(k, PROBE | REGION | DMABUF, 1), Err(EINVAL));
/// assert_eq!(validate(k, REGION, 1), Ok(Query::Plane { drm_plane_type: 1 }));
/// assert_eq!(validate(k, DMABUF, 1), Err(EINVAL));
/// assert_eq!(validate(k, 0, 1), Err(EINVAL));
/// assert_eq!(validate(k, REGION | 8, 1), Err(EINVAL));
/// assert_eq!(validate(PlaneKind::DmaBuf, DMABUF, 2), Ok(Query::Plane { drm_plane_type: 2 }));
/// ```
pub fn validate(kind: PlaneKind, flags: u32, drm_plane_type: u32) -> Result<Query> {
    let probe = bindings::VFIO_GFX_PLANE_TYPE_PROBE;
    if flags & probe != 0 {
        return if flags == probe | kind.flag() {
            Ok(Query::Probe)
        } else {
            Err(EINVAL)
        };
    }
    if flags != kind.flag() {
        return Err(EINVAL);
    }
    Ok(Query::Plane { drm_plane_type })
}

/// The description of a plane, the answer to a query.
///
/// A plane the device does not show (no mode set, a cursor it does not have) is described
/// with zeros ([`Plane::default`]), as the C samples do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plane {
    /// DRM fourcc format (`DRM_FORMAT_*`).
    pub drm_format: u32,
    /// DRM format modifier.
    pub drm_format_mod: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per line.
    pub stride: u32,
    /// Size in bytes.
    pub size: u32,
    /// Horizontal position (cursor).
    pub x_pos: u32,
    /// Vertical position (cursor).
    pub y_pos: u32,
    /// Horizontal hotspot (cursor).
    pub x_hot: u32,
    /// Vertical hotspot (cursor).
    pub y_hot: u32,
    /// The region index ([`PlaneKind::Region`]) or the dma-buf id ([`PlaneKind::DmaBuf`]).
    pub id: u32,
}

// `struct vfio_device_gfx_plane_info`: four `__u32`, a `__u64`, eight `__u32`, the
// `region_index`/`dmabuf_id` union (one `__u32`) and `reserved`: 64 bytes, no padding.
const _: () = assert!(size_of::<bindings::vfio_device_gfx_plane_info>() == 64);
const _: () = assert!(offset_of!(bindings::vfio_device_gfx_plane_info, drm_format_mod) == 16);

/// `minsz` of `VFIO_DEVICE_QUERY_GFX_PLANE`: `offsetofend(struct vfio_device_gfx_plane_info,
/// region_index)`, 60.
pub(super) const PLANE_INFO_MINSZ: usize =
    offset_of!(bindings::vfio_device_gfx_plane_info, __bindgen_anon_1) + size_of::<u32>();

// SAFETY: `struct vfio_device_gfx_plane_info` is made of integers and a union of two `__u32`
// (asserted sizes above): any bit pattern is a valid value.
unsafe impl FromBytes for bindings::vfio_device_gfx_plane_info {}
// SAFETY: Its fields fill its 64 bytes (asserted above): no padding.
unsafe impl AsBytes for bindings::vfio_device_gfx_plane_info {}

impl Plane {
    /// Writes the plane into the user's structure `u` (every field the C samples set).
    pub(super) fn fill(&self, u: &mut bindings::vfio_device_gfx_plane_info) {
        u.drm_format = self.drm_format;
        u.drm_format_mod = self.drm_format_mod;
        u.width = self.width;
        u.height = self.height;
        u.stride = self.stride;
        u.size = self.size;
        u.x_pos = self.x_pos;
        u.y_pos = self.y_pos;
        u.x_hot = self.x_hot;
        u.y_hot = self.y_hot;
        u.__bindgen_anon_1.region_index = self.id;
    }
}
