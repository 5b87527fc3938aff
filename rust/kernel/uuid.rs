// SPDX-License-Identifier: GPL-2.0

//! UUIDs in the kernel's `guid_t` layout.
//!
//! C header: [`include/linux/uuid.h`](srctree/include/linux/uuid.h)
//!
//! A [`Guid`] has the exact layout of the C `guid_t`: the first three fields are stored little
//! endian, so parsing `"00112233-4455-6677-8899-aabbccddeeff"` gives the bytes
//! `33 22 11 00 55 44 77 66 88 99 aa bb cc dd ee ff`, as `guid_parse()` does. Its
//! [`Display`](core::fmt::Display) output is what `%pUl` prints: the canonical lower-case text.
//! Parsing then printing therefore gives back the input in lower case.

use crate::error::{code::EINVAL, Result};
use core::fmt;

/// Length of the text form of a UUID, without a terminator (`UUID_STRING_LEN`).
pub const UUID_STRING_LEN: usize = 36;

/// Byte order of `guid_t` relative to the text (`guid_index` in `lib/uuid.c`).
const GUID_INDEX: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];

/// Offsets in the text of the 16 hex-digit pairs.
const HEX_OFFSETS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// A UUID in the layout of the C `guid_t`.
///
/// # Examples
///
/// ```
/// use kernel::uuid::Guid;
///
/// let g = Guid::parse(b"00112233-4455-6677-8899-AABBCCDDEEFF")?;
/// assert_eq!(
///     g.as_bytes(),
///     &[0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
///       0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]
/// );
/// // Upper and lower case name the same UUID.
/// assert!(g == Guid::parse(b"00112233-4455-6677-8899-aabbccddeeff")?);
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(transparent)]
pub struct Guid([u8; 16]);

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Returns whether the first [`UUID_STRING_LEN`] bytes of `text` are a UUID (`uuid_is_valid()`).
///
/// Dashes must be at offsets 8, 13, 18 and 23 and every other byte must be a hex digit (either
/// case). Bytes after the first 36 are not looked at.
///
/// # Examples
///
/// ```
/// use kernel::uuid::is_valid;
///
/// assert!(is_valid(b"01234567-89ab-cdef-0123-456789ABCDEF"));
/// assert!(is_valid(b"01234567-89ab-cdef-0123-456789abcdef\n"));
/// assert!(is_valid(b"01234567-89ab-cdef-0123-456789abcdefXYZ"));
/// assert!(!is_valid(b"01234567-89ab-cdef-0123-456789abcde"));   // too short
/// assert!(!is_valid(b"01234567-89ab-cdef-0123-456789abcdeg"));  // not hex
/// assert!(!is_valid(b"0123456-789ab-cdef-0123-456789abcdef"));  // dash misplaced
/// assert!(!is_valid(b"01234567089ab-cdef-0123-456789abcdef"));  // dash missing
/// ```
pub fn is_valid(text: &[u8]) -> bool {
    if text.len() < UUID_STRING_LEN {
        return false;
    }
    text[..UUID_STRING_LEN]
        .iter()
        .enumerate()
        .all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => hex_value(c).is_some(),
        })
}

impl Guid {
    /// The all-zero UUID.
    pub const NULL: Guid = Guid([0; 16]);

    /// Parses the first [`UUID_STRING_LEN`] bytes of `text`, as `guid_parse()` does.
    ///
    /// Returns [`EINVAL`] when they are not a UUID (see [`is_valid`]). Bytes after the first 36
    /// are ignored.
    pub fn parse(text: &[u8]) -> Result<Self> {
        if !is_valid(text) {
            return Err(EINVAL);
        }
        let mut bytes = [0u8; 16];
        for (i, &off) in HEX_OFFSETS.iter().enumerate() {
            // Both are hex digits: `is_valid` checked every non-dash byte.
            let hi = hex_value(text[off]).ok_or(EINVAL)?;
            let lo = hex_value(text[off + 1]).ok_or(EINVAL)?;
            bytes[GUID_INDEX[i]] = (hi << 4) | lo;
        }
        Ok(Guid(bytes))
    }

    /// Creates a [`Guid`] from the 16 bytes of a `guid_t`.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Guid(bytes)
    }

    /// Returns the 16 bytes of the `guid_t`.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Returns the `guid_t` value.
    pub fn to_raw(self) -> crate::bindings::guid_t {
        crate::bindings::guid_t { b: self.0 }
    }

    /// Creates a [`Guid`] from a `guid_t` value.
    pub fn from_raw(raw: &crate::bindings::guid_t) -> Self {
        Guid(raw.b)
    }

    /// Writes the text form into `buf` and returns it (what `%pUl` prints).
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::uuid::{Guid, UUID_STRING_LEN};
    ///
    /// let g = Guid::parse(b"DEADBEEF-0000-4000-8000-0123456789AB")?;
    /// let mut buf = [0u8; UUID_STRING_LEN];
    /// assert_eq!(g.format(&mut buf), b"deadbeef-0000-4000-8000-0123456789ab");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn format<'a>(&self, buf: &'a mut [u8; UUID_STRING_LEN]) -> &'a [u8] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        buf.fill(b'-');
        for (i, &off) in HEX_OFFSETS.iter().enumerate() {
            let b = self.0[GUID_INDEX[i]];
            buf[off] = HEX[usize::from(b >> 4)];
            buf[off + 1] = HEX[usize::from(b & 0xf)];
        }
        &buf[..]
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; UUID_STRING_LEN];
        let text = self.format(&mut buf);
        // The text is ASCII (hex digits and dashes).
        f.write_str(core::str::from_utf8(text).map_err(|_| fmt::Error)?)
    }
}

/// The same text for the kernel's printing macros (`pr_info!("{uuid}")`).
impl crate::fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
