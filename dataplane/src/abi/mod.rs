//! The device ABI: every byte the host driver and the device exchange.
//!
//! This module owns each layout; nothing else in the project defines a byte
//! the other side reads. It is the Rust twin of `docs/device-abi.md`, which a
//! hardware engineer implements from; when the two disagree, this file wins
//! and the document is fixed.
//!
//! Rules every layout here follows:
//! - `#[repr(C)]`, fields in explicit little-endian types (`U16`, `U32`,
//!   `U64` from `zerocopy::little_endian`), so the layout is the same on any
//!   host and is `Unaligned`: a view can sit at any byte offset of a buffer.
//! - Size and every field offset are pinned by compile-time assertions.
//! - Bytes from the other side are untrusted. `parse`/`decode` functions
//!   validate them and return [`AbiError`] naming the field that was wrong;
//!   no conversion in this module panics on any input.
//! - Reserved fields and bits are written as zero and checked as zero, so a
//!   later ABI minor version can give them a meaning without ambiguity.
//!
//! Parts:
//! - [`regs`]: PCI identity and the BAR0 map (identity page, device-command
//!   mailbox, interrupt control blocks, MSI-X table, doorbell pages).
//! - [`desc`]: TX and RX descriptors and completions.
//! - [`queue`]: the queue state block both ends share in host memory.
//! - [`admin`]: admin (and device-command) commands, completions and status
//!   codes.

pub mod admin;
pub mod desc;
pub mod layout;
pub mod queue;
pub mod regs;

pub use admin::*;
pub use desc::*;
pub use queue::*;
pub use regs::*;

pub use zerocopy::little_endian::{U16, U32, U64};
/// Re-exported so users of the ABI structures can view them as bytes
/// (`as_bytes`) and read them from bytes without naming zerocopy.
pub use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Why a byte buffer is not a valid ABI structure. Every variant names the
/// field (as `struct.field`) so the message alone says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbiError {
    /// The buffer is shorter than the structure.
    #[error("{what}: need {need} bytes, got {got}")]
    Truncated {
        what: &'static str,
        need: usize,
        got: usize,
    },
    /// A field holds a value outside its enumeration.
    #[error("{field}: invalid value {value:#x}")]
    InvalidValue { field: &'static str, value: u64 },
    /// Reserved bits or bytes are not zero.
    #[error("{field}: reserved bits set ({value:#x})")]
    ReservedBits { field: &'static str, value: u64 },
    /// A numeric field is outside what the ABI allows.
    #[error("{field}: {value} is out of range: {reason}")]
    OutOfRange {
        field: &'static str,
        value: u64,
        reason: &'static str,
    },
    /// An address field is not aligned as the ABI requires.
    #[error("{field}: address {addr:#x} is not {align}-byte aligned")]
    Misaligned { field: &'static str, addr: u64, align: u64 },
    /// The identity page does not carry fairnic's signature.
    #[error(
        "identity.signature: found {found:#010x}, expected {expected:#010x} (not a fairnic device, or BAR0 not mapped)"
    )]
    BadSignature { found: u32, expected: u32 },
    /// The device speaks an ABI major version this build does not.
    #[error("identity.abi_major: device ABI {device_major}.{device_minor}, driver ABI {driver_major}.{driver_minor}: major versions must match")]
    VersionMismatch {
        device_major: u16,
        device_minor: u16,
        driver_major: u16,
        driver_minor: u16,
    },
    /// An opcode this ABI version does not define.
    #[error("{field}: unknown opcode {opcode:#04x}")]
    UnknownOpcode { field: &'static str, opcode: u8 },
}

/// ABI major version: bumped on any incompatible change. The driver refuses a
/// device whose major differs.
pub const ABI_MAJOR: u16 = 1;
/// ABI minor version: bumped on compatible additions (a reserved field given a
/// meaning, a new opcode, a new capability bit).
pub const ABI_MINOR: u16 = 1;

/// Read a `T` from the front of `bytes`, naming `what` if it is too short.
pub(crate) fn read_prefix<T>(what: &'static str, bytes: &[u8]) -> Result<T, AbiError>
where
    T: zerocopy::FromBytes + zerocopy::KnownLayout + zerocopy::Immutable,
{
    T::read_from_prefix(bytes)
        .map(|(v, _)| v)
        .map_err(|_| AbiError::Truncated {
            what,
            need: core::mem::size_of::<T>(),
            got: bytes.len(),
        })
}

/// Check that `value` has no bits outside `known`.
pub(crate) fn check_reserved_bits(field: &'static str, value: u64, known: u64) -> Result<(), AbiError> {
    let extra = value & !known;
    if extra != 0 {
        return Err(AbiError::ReservedBits { field, value: extra });
    }
    Ok(())
}

/// Check that every byte of a reserved area is zero.
pub(crate) fn check_reserved_bytes(field: &'static str, bytes: &[u8]) -> Result<(), AbiError> {
    match bytes.iter().position(|&b| b != 0) {
        None => Ok(()),
        Some(i) => Err(AbiError::ReservedBits {
            field,
            value: u64::from(bytes[i]) << (8 * (i % 8)),
        }),
    }
}

/// Check that the buffer `[addr, addr + len)` does not wrap the address
/// space.
pub(crate) fn check_span(field: &'static str, addr: u64, len: u64) -> Result<(), AbiError> {
    if addr.checked_add(len).is_none() {
        return Err(AbiError::OutOfRange {
            field,
            value: addr,
            reason: "addr + len overflows",
        });
    }
    Ok(())
}

/// Check that an address is a multiple of `align` (a power of two).
pub(crate) fn check_aligned(field: &'static str, addr: u64, align: u64) -> Result<(), AbiError> {
    debug_assert!(align.is_power_of_two());
    if addr & (align - 1) != 0 {
        return Err(AbiError::Misaligned { field, addr, align });
    }
    Ok(())
}

/// Declare a `u8`/`u16`/`u32`-coded enumeration of the ABI, with a checked
/// conversion from the raw value that names the field on error.
macro_rules! abi_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ty, $field:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Parse the raw value, naming the field if it is not defined.
            pub fn from_raw(raw: $repr) -> Result<Self, $crate::abi::AbiError> {
                match raw {
                    $( v if v == $value => Ok($name::$variant), )+
                    other => Err($crate::abi::AbiError::InvalidValue { field: $field, value: other as u64 }),
                }
            }

            /// The raw value on the wire.
            pub const fn raw(self) -> $repr {
                self as $repr
            }

            /// The value's name, as the ABI document spells it.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => stringify!($variant), )+
                }
            }
        }

        impl TryFrom<$repr> for $name {
            type Error = $crate::abi::AbiError;
            fn try_from(raw: $repr) -> Result<Self, Self::Error> {
                Self::from_raw(raw)
            }
        }
    };
}
pub(crate) use abi_enum;

/// Pin a structure's size and field offsets at compile time.
macro_rules! assert_layout {
    ($ty:ty, size = $size:expr $(, $field:ident @ $off:expr)* $(,)?) => {
        const _: () = assert!(core::mem::size_of::<$ty>() == $size);
        $( const _: () = assert!(core::mem::offset_of!($ty, $field) == $off); )*
    };
}
pub(crate) use assert_layout;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_bytes_error_names_field() {
        assert_eq!(check_reserved_bytes("x.rsvd", &[0, 0, 0]), Ok(()));
        assert_eq!(
            check_reserved_bytes("x.rsvd", &[0, 7, 0]),
            Err(AbiError::ReservedBits {
                field: "x.rsvd",
                value: 0x700
            })
        );
    }

    #[test]
    fn misaligned_address_is_reported() {
        let e = check_aligned("q.ring_base", 0x1008, 64).unwrap_err();
        assert_eq!(e.to_string(), "q.ring_base: address 0x1008 is not 64-byte aligned");
    }
}
