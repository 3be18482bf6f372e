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
//! - [`pci`]: configuration space registers and capabilities, by name.
//! - [`regs`]: PCI identity and the BAR0 map (identity page, device-command
//!   mailbox, interrupt control blocks, MSI-X table, doorbell pages).
//! - [`desc`]: TX and RX descriptors and completions.
//! - [`queue`]: the queue state block both ends share in host memory.
//! - [`admin`]: admin (and device-command) commands, completions and status
//!   codes.

pub mod admin;
pub mod desc;
pub mod flags;
pub mod layout;
pub mod pci;
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
        /// The structure, as the document names it.
        what: &'static str,
        /// Its size, bytes.
        need: usize,
        /// Bytes there were.
        got: usize,
    },
    /// A field holds a value outside its enumeration.
    #[error("{field}: invalid value {value:#x}")]
    InvalidValue {
        /// The field, as `struct.field`.
        field: &'static str,
        /// What it held.
        value: u64,
    },
    /// Reserved bits or bytes are not zero.
    #[error("{field}: reserved bits set ({value:#x})")]
    ReservedBits {
        /// The field, as `struct.field`.
        field: &'static str,
        /// The reserved bits that were set.
        value: u64,
    },
    /// A numeric field is outside what the ABI allows.
    #[error("{field}: {value} is out of range: {reason}")]
    OutOfRange {
        /// The field, as `struct.field`.
        field: &'static str,
        /// What it held.
        value: u64,
        /// The rule it broke.
        reason: &'static str,
    },
    /// An address field is not aligned as the ABI requires.
    #[error("{field}: address {addr:#x} is not {align}-byte aligned")]
    Misaligned {
        /// The field, as `struct.field`.
        field: &'static str,
        /// The address given.
        addr: u64,
        /// The alignment required, bytes.
        align: u64,
    },
    /// The identity page does not carry fairnic's signature.
    #[error(
        "identity.signature: found {found:#010x}, expected {expected:#010x} (not a fairnic device, or BAR0 not mapped)"
    )]
    BadSignature {
        /// What the identity page held.
        found: u32,
        /// [`SIGNATURE`].
        expected: u32,
    },
    /// The device speaks an ABI major version this build does not.
    #[error("identity.abi_major: device ABI {device_major}.{device_minor}, driver ABI {driver_major}.{driver_minor}: major versions must match")]
    VersionMismatch {
        /// The device's ABI major version.
        device_major: u16,
        /// The device's ABI minor version.
        device_minor: u16,
        /// This build's [`ABI_MAJOR`].
        driver_major: u16,
        /// This build's [`ABI_MINOR`].
        driver_minor: u16,
    },
    /// An opcode this ABI version does not define.
    #[error("{field}: unknown opcode {opcode:#04x}")]
    UnknownOpcode {
        /// `admin.opcode` or `devcmd.opcode`.
        field: &'static str,
        /// The opcode given.
        opcode: u8,
    },
}

/// ABI major version: bumped on any incompatible change. The driver refuses a
/// device whose major differs.
pub const ABI_MAJOR: u16 = 1;
/// ABI minor version: bumped on compatible additions (a reserved field given a
/// meaning, a new opcode, a new capability bit).
pub const ABI_MINOR: u16 = 6;

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

/// What every enumeration of the ABI offers, so the control protocol, the
/// CLI, the counters' names and the ABI document's tables all spell a value
/// the same way (implemented by [`abi_enum!`]).
///
/// Each value has two spellings: [`name`](AbiEnum::name), the Rust variant
/// as `docs/device-abi.md` writes it (`DmaBytes`), and
/// [`key`](AbiEnum::key), its snake-case key (`dma_bytes`), which
/// `Display`, serde and the CLI use. Parsing (`FromStr`, serde) accepts
/// either, in any case, with or without `_` and `-` (`dma-bytes`,
/// `DMA_BYTES`, `dmabytes`).
pub trait AbiEnum:
    Copy + Eq + core::fmt::Debug + core::fmt::Display + core::str::FromStr<Err = ParseEnumError> + Send + Sync + 'static
{
    /// The field the value lives in, as `struct.field`.
    const FIELD: &'static str;
    /// Every value, in declaration order.
    fn all() -> &'static [Self];
    /// The variant's name (`DmaBytes`).
    fn name(self) -> &'static str;
    /// The snake-case key (`dma_bytes`).
    fn key(self) -> &'static str;
    /// The raw value, widened.
    fn raw_u64(self) -> u64;
    /// The variant's documentation, its lines joined (empty if none).
    fn doc(self) -> &'static str;

    /// The value a spelling names, if any (see the trait's documentation).
    fn parse_key(s: &str) -> Option<Self> {
        Self::all().iter().copied().find(|v| loose_eq(s, v.name()))
    }
}

/// A spelling that names no value of an ABI enumeration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: unknown value `{got}` (expected one of: {expected})")]
pub struct ParseEnumError {
    /// The field, as `struct.field`.
    pub field: &'static str,
    /// What was given.
    pub got: String,
    /// The keys that are accepted, comma separated.
    pub expected: String,
}

impl ParseEnumError {
    /// The error for `got`, listing `T`'s keys.
    pub fn new<T: AbiEnum>(got: &str) -> ParseEnumError {
        ParseEnumError {
            field: T::FIELD,
            got: got.chars().take(64).collect(),
            expected: T::all().iter().map(|v| v.key()).collect::<Vec<_>>().join(", "),
        }
    }
}

/// `a` and `b` equal ignoring ASCII case, `_` and `-` (no allocation:
/// `parse_key` calls it once per value).
fn loose_eq(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> impl Iterator<Item = u8> + '_ {
        s.bytes()
            .filter(|c| *c != b'_' && *c != b'-')
            .map(|c| c.to_ascii_lowercase())
    }
    norm(a).eq(norm(b))
}

/// A variant name in snake case, made at compile time (`DmaBytes` ->
/// `dma_bytes`, `SrTcm` -> `sr_tcm`, `TCPSeen` -> `tcp_seen`). Used by [`abi_enum!`]; not part of the ABI.
#[doc(hidden)]
#[derive(Debug)]
pub struct SnakeName {
    bytes: [u8; SnakeName::CAP],
    len: usize,
}

impl SnakeName {
    const CAP: usize = 64;

    /// The snake-case form of an ASCII identifier in camel case.
    pub const fn new(name: &str) -> SnakeName {
        let src = name.as_bytes();
        let mut bytes = [0u8; SnakeName::CAP];
        let mut len = 0;
        let mut i = 0;
        while i < src.len() {
            let c = src[i];
            if c.is_ascii_uppercase() {
                let prev_lower = i > 0 && (src[i - 1].is_ascii_lowercase() || src[i - 1].is_ascii_digit());
                let next_lower = i + 1 < src.len() && src[i + 1].is_ascii_lowercase();
                let prev_upper = i > 0 && src[i - 1].is_ascii_uppercase();
                if prev_lower || (prev_upper && next_lower) {
                    bytes[len] = b'_';
                    len += 1;
                }
                bytes[len] = c.to_ascii_lowercase();
            } else {
                bytes[len] = c;
            }
            len += 1;
            i += 1;
        }
        SnakeName { bytes, len }
    }

    #[cfg(test)]
    fn as_str_owned(&self) -> String {
        String::from_utf8_lossy(&self.bytes[..self.len]).into_owned()
    }

    /// The name.
    pub fn as_str(&'static self) -> &'static str {
        // Built from an identifier's ASCII bytes, so always UTF-8.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("?")
    }
}

/// Declare a `u8`/`u16`/`u32`-coded enumeration of the ABI, with a checked
/// conversion from the raw value that names the field on error, its
/// [`AbiEnum`] spellings, `Display` (the key), `FromStr` and serde (by key).
macro_rules! abi_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ty, $field:literal {
            $( $(#[doc = $vdoc:literal])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[doc = $vdoc])* $variant = $value ),+
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

            /// The value's snake-case key (`Display`, serde, the CLI).
            pub fn key(self) -> &'static str {
                match self {
                    $( $name::$variant => {
                        static KEY: $crate::abi::SnakeName = $crate::abi::SnakeName::new(stringify!($variant));
                        KEY.as_str()
                    } )+
                }
            }
        }

        impl $crate::abi::AbiEnum for $name {
            const FIELD: &'static str = $field;
            fn all() -> &'static [Self] {
                Self::ALL
            }
            fn name(self) -> &'static str {
                $name::name(self)
            }
            fn key(self) -> &'static str {
                $name::key(self)
            }
            fn raw_u64(self) -> u64 {
                self.raw() as u64
            }
            fn doc(self) -> &'static str {
                match self {
                    $( $name::$variant => concat!($($vdoc),*).trim_ascii(), )+
                }
            }
        }

        impl TryFrom<$repr> for $name {
            type Error = $crate::abi::AbiError;
            fn try_from(raw: $repr) -> Result<Self, Self::Error> {
                Self::from_raw(raw)
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.pad(self.key())
            }
        }

        impl core::str::FromStr for $name {
            type Err = $crate::abi::ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$name as $crate::abi::AbiEnum>::parse_key(s)
                    .ok_or_else(|| $crate::abi::ParseEnumError::new::<$name>(s))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.key())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
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

    /// Every spelling rule of [`AbiEnum`], over every enumeration: the key
    /// round-trips through `Display`/`FromStr` and serde, the raw value
    /// through `from_raw`, no two values of one enumeration share a
    /// spelling, and every value is documented.
    fn spellings_hold<T: AbiEnum + serde::Serialize + serde::de::DeserializeOwned>() {
        let mut seen = std::collections::BTreeSet::new();
        for &v in T::all() {
            let key = v.key();
            assert!(
                key.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'),
                "{key}"
            );
            assert_eq!(v.to_string(), key);
            assert_eq!(key.parse::<T>(), Ok(v));
            assert_eq!(v.name().parse::<T>(), Ok(v));
            assert_eq!(key.replace('_', "-").to_uppercase().parse::<T>(), Ok(v));
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{key}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
            assert!(
                seen.insert(key.replace('_', "")),
                "{}: two values spell {key}",
                T::FIELD
            );
            assert!(
                !v.doc().is_empty() || T::FIELD == "completion.flags.meter",
                "{}::{} has no doc",
                T::FIELD,
                v.name()
            );
        }
        let e = "no such value".parse::<T>().unwrap_err();
        assert_eq!(e.field, T::FIELD);
        assert!(e.to_string().contains(T::all()[0].key()), "{e}");
    }

    #[test]
    fn every_enumeration_spells_its_values_one_way() {
        spellings_hold::<FunctionKind>();
        spellings_hold::<ModerationMode>();
        spellings_hold::<QueueType>();
        spellings_hold::<CompStatus>();
        spellings_hold::<MeterColor>();
        spellings_hold::<AdminStatus>();
        spellings_hold::<AdminOpcode>();
        spellings_hold::<DevCmdOpcode>();
        spellings_hold::<MeterResource>();
        spellings_hold::<MeterMode>();
        spellings_hold::<MeterPolicy>();
        spellings_hold::<EventKind>();
        spellings_hold::<LifCounter>();
        spellings_hold::<FetchFlag>();
        spellings_hold::<ConsumerFlag>();
        assert_eq!(MeterResource::DescInFlight.key(), "desc_in_flight");
        assert_eq!(MeterMode::SrTcm.key(), "sr_tcm");
        assert_eq!(LifCounter::DropNoRxBuffer.key(), "drop_no_rx_buffer");
        assert_eq!(SnakeName::new("MsixTable").as_str_owned(), "msix_table");
        assert_eq!(SnakeName::new("TCPSeen").as_str_owned(), "tcp_seen");
    }

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
