//! CBOR's wire constants (RFC 8949), shared by the writer and the reader.

/// Major types: the top three bits of an item's first byte.
pub(super) const UNSIGNED: u8 = 0;
pub(super) const NEGATIVE: u8 = 1;
pub(super) const BYTES: u8 = 2;
pub(super) const TEXT: u8 = 3;
pub(super) const ARRAY: u8 = 4;
pub(super) const MAP: u8 = 5;
pub(super) const TAG: u8 = 6;

/// Whole first bytes of major type 7.
pub(super) const FALSE: u8 = 0xf4;
pub(super) const TRUE: u8 = 0xf5;
pub(super) const NULL: u8 = 0xf6;
pub(super) const F16: u8 = 0xf9;
pub(super) const F32: u8 = 0xfa;
pub(super) const F64: u8 = 0xfb;
/// Ends an item of indefinite length.
pub(super) const BREAK: u8 = 0xff;
