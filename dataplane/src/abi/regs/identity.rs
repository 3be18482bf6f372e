//! The identity page: what a function says it is, and its checked,
//! native-typed form.

use super::*;

/// The identity page at BAR0 + [`IDENTITY_OFFSET`]: read-only; the first
/// thing a driver reads. Only the first 128 bytes are defined; the rest of
/// the page reads zero.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Identity {
    /// [`SIGNATURE`]: `"FNIC"`.
    pub signature: U32,
    /// ABI major version the device speaks.
    pub abi_major: U16,
    /// ABI minor version the device speaks.
    pub abi_minor: U16,
    /// Capability bits, see [`caps`].
    pub capabilities: U64,
    /// 0 for the PF, `n + 1` for VF `n`.
    pub function_id: U16,
    /// [`FunctionKind`].
    pub function_kind: u8,
    /// Reserved, zero.
    pub rsvd0: u8,
    /// LIFs this function may own (doorbell pages in this BAR).
    pub nlifs: U16,
    /// Queues per queue type per LIF.
    pub nqueues: U16,
    /// MSI-X vectors of this function.
    pub nintrs: U16,
    /// log2 of the smallest ring, descriptors.
    pub min_ring_order: u8,
    /// log2 of the largest ring, descriptors.
    pub max_ring_order: u8,
    /// Offset of the first doorbell page (== [`DOORBELL_OFFSET`] in ABI 1).
    pub doorbell_offset: U32,
    /// Distance between doorbell pages (== [`DOORBELL_STRIDE`]).
    pub doorbell_stride: U32,
    /// Offset of the interrupt control blocks (== [`INTR_CTRL_OFFSET`]).
    pub intr_ctrl_offset: U32,
    /// Offset of the device-command mailbox (== [`DEVCMD_OFFSET`]).
    pub devcmd_offset: U32,
    /// Reserved, zero.
    pub rsvd2: U32,
    /// Device clock frequency in Hz (1_000_000_000: the clock counts ns).
    pub clock_hz: U64,
    /// Free-running device clock, ns since device power-on. Read it to
    /// relate completion timestamps to host time (I/O time profiling).
    pub device_clock: U64,
    /// Device serial number, ASCII, NUL padded.
    pub serial: [u8; 16],
    /// Firmware/simulator version, ASCII, NUL padded.
    pub fw_version: [u8; 32],
    /// Reserved, zero.
    pub rsvd1: [u8; 16],
}
assert_layout!(Identity, size = 128,
    signature @ 0x00, abi_major @ 0x04, abi_minor @ 0x06, capabilities @ 0x08,
    function_id @ 0x10, function_kind @ 0x12, nlifs @ 0x14, nqueues @ 0x16,
    nintrs @ 0x18, min_ring_order @ 0x1a, max_ring_order @ 0x1b,
    doorbell_offset @ 0x1c, doorbell_stride @ 0x20, intr_ctrl_offset @ 0x24,
    devcmd_offset @ 0x28, clock_hz @ 0x30, device_clock @ 0x38, serial @ 0x40,
    fw_version @ 0x50, rsvd1 @ 0x70);

/// [`Identity`] after validation, in native types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// ABI major version the device speaks (must equal [`ABI_MAJOR`]).
    pub abi_major: u16,
    /// ABI minor version: features added compatibly.
    pub abi_minor: u16,
    /// Capability bits ([`caps`]).
    pub capabilities: u64,
    /// This function: 0 the PF, `n + 1` VF `n`.
    pub function_id: u16,
    /// PF or VF.
    pub function_kind: FunctionKind,
    /// LIFs this function may create.
    pub nlifs: u16,
    /// Queues per type (TX, RX) per LIF.
    pub nqueues: u16,
    /// MSI-X vectors of this function.
    pub nintrs: u16,
    /// Smallest ring order the device takes (`2^order` entries).
    pub min_ring_order: u8,
    /// Largest ring order the device takes.
    pub max_ring_order: u8,
    /// Ticks per second of `device_clock`.
    pub clock_hz: u64,
    /// The device clock when the identity page was read.
    pub device_clock: u64,
    /// Serial number, as text.
    pub serial: String,
    /// Firmware version, as text.
    pub fw_version: String,
}

impl Identity {
    /// Validate an identity page read from BAR0: signature, ABI version
    /// compatibility with this build, enumerations, limits and the BAR map.
    pub fn parse(bytes: &[u8]) -> Result<DeviceIdentity, AbiError> {
        let id: Identity = read_prefix("identity", bytes)?;
        id.validate()
    }

    /// Validate an identity page already read.
    pub fn validate(&self) -> Result<DeviceIdentity, AbiError> {
        if self.signature.get() != SIGNATURE {
            return Err(AbiError::BadSignature {
                found: self.signature.get(),
                expected: SIGNATURE,
            });
        }
        if self.abi_major.get() != ABI_MAJOR {
            return Err(AbiError::VersionMismatch {
                device_major: self.abi_major.get(),
                device_minor: self.abi_minor.get(),
                driver_major: ABI_MAJOR,
                driver_minor: ABI_MINOR,
            });
        }
        // A newer minor version may define capability bits this build does
        // not know; those are ignored. At our own minor they are an error.
        #[allow(clippy::absurd_extreme_comparisons, reason = "ABI_MINOR is 0 today, not forever")]
        if self.abi_minor.get() <= ABI_MINOR {
            check_reserved_bits("identity.capabilities", self.capabilities.get(), caps::ALL)?;
        }
        let function_kind = FunctionKind::from_raw(self.function_kind)?;
        let function_id = self.function_id.get();
        if (function_kind == FunctionKind::Pf) != (function_id == 0) {
            return Err(AbiError::OutOfRange {
                field: "identity.function_id",
                value: function_id.into(),
                reason: "the PF is function 0 and only the PF is",
            });
        }
        range(
            "identity.nlifs",
            self.nlifs.get().into(),
            1,
            MAX_LIFS_PER_FUNCTION.into(),
        )?;
        range(
            "identity.nqueues",
            self.nqueues.get().into(),
            1,
            MAX_QUEUES_PER_TYPE.into(),
        )?;
        range("identity.nintrs", self.nintrs.get().into(), 1, MAX_INTRS.into())?;
        range(
            "identity.min_ring_order",
            self.min_ring_order.into(),
            MIN_RING_ORDER.into(),
            MAX_RING_ORDER.into(),
        )?;
        range(
            "identity.max_ring_order",
            self.max_ring_order.into(),
            self.min_ring_order.into(),
            MAX_RING_ORDER.into(),
        )?;
        expect(
            "identity.doorbell_offset",
            self.doorbell_offset.get().into(),
            DOORBELL_OFFSET,
        )?;
        expect(
            "identity.doorbell_stride",
            self.doorbell_stride.get().into(),
            DOORBELL_STRIDE,
        )?;
        expect(
            "identity.intr_ctrl_offset",
            self.intr_ctrl_offset.get().into(),
            INTR_CTRL_OFFSET,
        )?;
        expect("identity.devcmd_offset", self.devcmd_offset.get().into(), DEVCMD_OFFSET)?;
        if self.clock_hz.get() == 0 {
            return Err(AbiError::OutOfRange {
                field: "identity.clock_hz",
                value: 0,
                reason: "the device clock must tick",
            });
        }
        Ok(DeviceIdentity {
            abi_major: self.abi_major.get(),
            abi_minor: self.abi_minor.get(),
            capabilities: self.capabilities.get(),
            function_id,
            function_kind,
            nlifs: self.nlifs.get(),
            nqueues: self.nqueues.get(),
            nintrs: self.nintrs.get(),
            min_ring_order: self.min_ring_order,
            max_ring_order: self.max_ring_order,
            clock_hz: self.clock_hz.get(),
            device_clock: self.device_clock.get(),
            serial: ascii_field(&self.serial),
            fw_version: ascii_field(&self.fw_version),
        })
    }
}

impl DeviceIdentity {
    /// Encode as the identity page a device presents.
    pub fn encode(&self) -> Identity {
        Identity {
            signature: SIGNATURE.into(),
            abi_major: self.abi_major.into(),
            abi_minor: self.abi_minor.into(),
            capabilities: self.capabilities.into(),
            function_id: self.function_id.into(),
            function_kind: self.function_kind.raw(),
            rsvd0: 0,
            nlifs: self.nlifs.into(),
            nqueues: self.nqueues.into(),
            nintrs: self.nintrs.into(),
            min_ring_order: self.min_ring_order,
            max_ring_order: self.max_ring_order,
            doorbell_offset: (DOORBELL_OFFSET as u32).into(),
            doorbell_stride: (DOORBELL_STRIDE as u32).into(),
            intr_ctrl_offset: (INTR_CTRL_OFFSET as u32).into(),
            devcmd_offset: (DEVCMD_OFFSET as u32).into(),
            rsvd2: 0.into(),
            clock_hz: self.clock_hz.into(),
            device_clock: self.device_clock.into(),
            serial: pad_ascii(&self.serial),
            fw_version: pad_ascii(&self.fw_version),
            rsvd1: [0; 16],
        }
    }

    /// Whether the device advertises capability bit(s) `cap`.
    pub fn has(&self, cap: u64) -> bool {
        self.capabilities & cap == cap
    }
}

fn range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), AbiError> {
    if value < min || value > max {
        return Err(AbiError::OutOfRange {
            field,
            value,
            reason: "outside the limits of ABI 1",
        });
    }
    Ok(())
}

fn expect(field: &'static str, value: u64, want: u64) -> Result<(), AbiError> {
    if value != want {
        return Err(AbiError::OutOfRange {
            field,
            value,
            reason: "ABI 1 fixes this offset",
        });
    }
    Ok(())
}

/// An ASCII, NUL-padded field as a string; bytes outside printable ASCII
/// become `?` so a hostile device cannot write escape sequences to a
/// terminal.
pub fn ascii_field(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// A string as an ASCII, NUL-padded field of `N` bytes (truncated to fit).
pub fn pad_ascii<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(s.bytes()) {
        *o = if b.is_ascii() { b } else { b'?' };
    }
    out
}
