//! LIFs: `LifCreate`'s body, the MAC a LIF gets, and `LifList`'s entries.

use super::*;

/// Body of `LifCreate`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct LifCreate {
    /// Human-readable name, ASCII, NUL padded.
    pub name: [u8; 16],
    /// The LIF's MAC address; all zeros: the device assigns
    /// [`lif_mac`]`(lif)`.
    pub mac: [u8; 6],
    /// Reserved, zero.
    pub rsvd: [u8; 2],
}
assert_layout!(LifCreate, size = 24, name @ 0, mac @ 16, rsvd @ 22);

/// The MAC address the device assigns LIF `lif` when `LifCreate` asks for
/// none: locally administered, `02:f4:1c:00:HH:LL`.
pub const fn lif_mac(lif: u16) -> [u8; 6] {
    [0x02, 0xf4, 0x1c, 0x00, (lif >> 8) as u8, lif as u8]
}

/// LIF states in [`LifInfo::state`].
pub mod lif_state {
    /// Down: defined by the ABI; nicsim never reports it.
    pub const DOWN: u8 = 0;
    /// The LIF exists and none of its queues is in the error state.
    pub const UP: u8 = 1;
    /// A queue of the LIF is in the error state.
    pub const ERROR: u8 = 2;
}

/// One entry of `LifList`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct LifInfo {
    /// Device-wide LIF number.
    pub lif: U16,
    /// Owning function: 0 for the PF, `n + 1` for VF `n`.
    pub function_id: U16,
    /// Doorbell slot within the owning function's BAR0.
    pub slot: U16,
    /// [`lif_state`].
    pub state: u8,
    /// Reserved, zero.
    pub rsvd0: u8,
    /// TX queues the LIF has now.
    pub ntxq: U16,
    /// RX queues the LIF has now.
    pub nrxq: U16,
    /// The LIF's MAC address.
    pub mac: [u8; 6],
    /// Reserved, zero.
    pub rsvd1: [u8; 6],
    /// The name given in `LifCreate`, ASCII, NUL padded.
    pub name: [u8; 16],
    /// Reserved, zero.
    pub rsvd2: [u8; 8],
}
assert_layout!(LifInfo, size = 48, lif @ 0, function_id @ 2, slot @ 4, state @ 6, ntxq @ 8, nrxq @ 10, mac @ 12, name @ 24);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::admin::tests::*;

    #[test]
    fn lif_create_refuses_a_multicast_mac() {
        let l = LifCreate {
            mac: [1, 0, 0, 0, 0, 0],
            ..Default::default()
        };
        let err = AdminCommand::decode(&AdminCommand::LifCreate(l).encode(HDR)).unwrap_err();
        assert!(err.to_string().starts_with("lif_create.mac"), "{err}");
        assert_eq!(lif_mac(0x0102), [0x02, 0xf4, 0x1c, 0, 1, 2]);
    }
}
