//! Queues: `QueueCreate` (and the mailbox's `AdminQueueInit`), `QueueDestroy`
//! and `QueueReset`, with their checks.

use super::*;

/// Queue flags in [`QueueCreate::flags`].
pub mod queue_flags {
    /// Raise interrupts on `intr_vector` for this queue's completions.
    pub const INTR: u8 = 1 << 0;
    /// Every defined bit.
    pub const ALL: u8 = INTR;
}

/// Body of `QueueCreate` and of the mailbox's `AdminQueueInit`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct QueueCreate {
    /// [`QueueType`].
    pub qtype: u8,
    /// log2 of the ring's length in descriptors (the completion ring has
    /// the same length).
    pub ring_order: u8,
    /// [`queue_flags`].
    pub flags: u8,
    /// Reserved, zero.
    pub rsvd0: u8,
    /// MSI-X vector for completions (with `queue_flags::INTR`).
    pub intr_vector: U16,
    /// Reserved, zero.
    pub rsvd1: U16,
    /// IOVA of the descriptor ring; 64-byte aligned.
    pub ring_base: U64,
    /// IOVA of the completion ring; 64-byte aligned.
    pub cq_base: U64,
    /// IOVA of the [`crate::abi::QueueStateBlock`]; 128-byte aligned.
    pub state_base: U64,
    /// Free-running index the queue starts at (head = outgoing_tail =
    /// start_index; the completion ring always starts at 0).
    pub start_index: U32,
    /// Reserved, zero.
    pub rsvd2: U32,
}
assert_layout!(QueueCreate, size = 40, qtype @ 0, ring_order @ 1, flags @ 2, intr_vector @ 4,
    ring_base @ 8, cq_base @ 16, state_base @ 24, start_index @ 32);

impl QueueCreate {
    /// The [`QueueType`]; `Admin` for a value outside the enumeration (which
    /// the command decoders refuse).
    pub fn qtype(&self) -> QueueType {
        QueueType::from_raw(self.qtype).unwrap_or(QueueType::Admin)
    }
}

/// Body of `QueueDestroy`, `QueueReset`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct QueueRef {
    /// [`QueueType`].
    pub qtype: u8,
    /// Reserved, zero.
    pub rsvd0: u8,
    /// The queue's index on the command's LIF among queues of its type (the
    /// `value` `QueueCreate` returned).
    pub qindex: U16,
    /// `QueueReset`: the index the queue restarts at. Otherwise zero.
    pub start_index: U32,
}
assert_layout!(QueueRef, size = 8, qtype @ 0, qindex @ 2, start_index @ 4);

impl QueueRef {
    /// The [`QueueType`]; `Admin` for a value outside the enumeration (which
    /// the command decoder refuses).
    pub fn qtype(&self) -> QueueType {
        QueueType::from_raw(self.qtype).unwrap_or(QueueType::Admin)
    }
}

pub(super) fn validate_queue_create(q: &QueueCreate, admin: bool) -> Result<(), AbiError> {
    let qtype = QueueType::from_raw(q.qtype)?;
    if admin != (qtype == QueueType::Admin) {
        return Err(AbiError::InvalidValue {
            field: "queue_create.qtype",
            value: q.qtype.into(),
        });
    }
    if !(MIN_RING_ORDER..=MAX_RING_ORDER).contains(&q.ring_order) {
        return Err(AbiError::OutOfRange {
            field: "queue_create.ring_order",
            value: q.ring_order.into(),
            reason: "a ring holds 2^2 to 2^15 descriptors",
        });
    }
    check_reserved_bits("queue_create.flags", q.flags.into(), queue_flags::ALL.into())?;
    check_reserved_bits("queue_create.rsvd0", q.rsvd0.into(), 0)?;
    check_reserved_bits("queue_create.rsvd1", q.rsvd1.get().into(), 0)?;
    check_reserved_bits("queue_create.rsvd2", q.rsvd2.get().into(), 0)?;
    check_aligned("queue_create.ring_base", q.ring_base.get(), 64)?;
    check_aligned("queue_create.cq_base", q.cq_base.get(), 64)?;
    check_aligned("queue_create.state_base", q.state_base.get(), QUEUE_STATE_ALIGN)?;
    Ok(())
}

pub(super) fn validate_queue_ref(q: &QueueRef, reset: bool) -> Result<(), AbiError> {
    QueueType::from_raw(q.qtype)?;
    check_reserved_bits("queue_ref.rsvd0", q.rsvd0.into(), 0)?;
    if !reset {
        check_reserved_bits("queue_ref.start_index", q.start_index.get().into(), 0)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::admin::tests::*;

    #[test]
    fn queue_create_validation_names_fields() {
        let cases: Vec<(QueueCreate, &str)> = vec![
            (QueueCreate { ring_order: 16, ..qc() }, "queue_create.ring_order"),
            (QueueCreate { ring_order: 1, ..qc() }, "queue_create.ring_order"),
            (QueueCreate { qtype: 0, ..qc() }, "queue_create.qtype"),
            (QueueCreate { qtype: 7, ..qc() }, "queue.qtype"),
            (
                QueueCreate {
                    ring_base: 0x10_0008.into(),
                    ..qc()
                },
                "queue_create.ring_base",
            ),
            (
                QueueCreate {
                    state_base: 0x30_0020.into(),
                    ..qc()
                },
                "queue_create.state_base",
            ),
            (QueueCreate { flags: 0x80, ..qc() }, "queue_create.flags"),
        ];
        for (q, field) in cases {
            let err = AdminCommand::decode(&AdminCommand::QueueCreate(q).encode(HDR)).unwrap_err();
            assert!(err.to_string().starts_with(field), "{field}: {err}");
        }
    }
}
