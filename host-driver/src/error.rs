//! Why a function could not be brought up or an admin command failed:
//! [`DriverError`], the function it happened to ([`DriverError::device`])
//! and what happened ([`ErrorKind`]).

use crate::backend::BackendError;
use crate::mem::MemError;
use dataplane::abi::{AbiError, AdminStatus, PCI_DEVICE_ID_PF, PCI_DEVICE_ID_VF, PCI_VENDOR_ID};
use dataplane::ring::RingError;
use std::fmt;
use std::time::Duration;

/// Why a function could not be brought up or a command failed.
///
/// Shown as `DEVICE: what happened` (`DEVICE (FUNCTION): ...` for
/// [`ErrorKind::DeviceLied`]); a backend or memory error is shown as its
/// own message, which names the device where it knows it.
#[derive(Debug)]
pub struct DriverError {
    device: String,
    kind: ErrorKind,
}

/// What went wrong, without the function it went wrong on.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("{0}")]
    Backend(#[from] BackendError),
    #[error("{0}")]
    Mem(#[from] MemError),
    #[error("vendor:device {vendor:04x}:{id:04x} is not a fairnic function (expected {PCI_VENDOR_ID:04x}:{PCI_DEVICE_ID_PF:04x} or {PCI_VENDOR_ID:04x}:{PCI_DEVICE_ID_VF:04x}; pass --pci-id VENDOR:DEVICE for other hardware)")]
    UnknownDevice { vendor: u16, id: u16 },
    #[error("the device's ABI does not match this driver: {source} (update nicdrv or the device firmware)")]
    Abi { source: AbiError },
    #[error("the device stopped answering: {what} not done after {after:?}")]
    NotAnswering { what: String, after: Duration },
    #[error("{command} failed: the device said {status:?}")]
    Admin { command: &'static str, status: AdminStatus },
    #[error("{what}: {source}")]
    Ring { what: &'static str, source: RingError },
    #[error("{what}")]
    Other { what: String },
    /// The device answered a command with a value the driver cannot use
    /// (an index, a count, a slot out of range): a buggy or hostile
    /// device. The value was not used; nothing panicked.
    #[error("{command} answered {what} {value}, outside the allowed {allowed}; a buggy or hostile device: nicdrv did not use the value (reset the function, or update its firmware)")]
    DeviceLied {
        /// `PF` or `VF n`.
        function: String,
        /// The admin command that answered.
        command: &'static str,
        /// The field, in words (`queue index`, `doorbell slot`, ...).
        what: &'static str,
        value: u64,
        /// The range the driver accepts, and where it comes from.
        allowed: String,
    },
}

impl DriverError {
    /// `kind` on the function `device` (as [`crate::nic::Nic::device`]
    /// names it).
    pub fn new(device: impl Into<String>, kind: ErrorKind) -> DriverError {
        DriverError {
            device: device.into(),
            kind,
        }
    }

    /// An [`ErrorKind::Other`]: `what`, in words.
    pub fn other(device: impl Into<String>, what: impl Into<String>) -> DriverError {
        DriverError::new(device, ErrorKind::Other { what: what.into() })
    }

    /// For `map_err`: a ring protocol error on `device`'s `what`.
    pub(crate) fn ring<'a>(device: &'a str, what: &'static str) -> impl FnOnce(RingError) -> DriverError + 'a {
        move |source| DriverError::new(device, ErrorKind::Ring { what, source })
    }

    /// The function it happened to.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// What happened.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What happened, taken out.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }

    /// The status the device refused an admin command with, if it did.
    pub fn admin_status(&self) -> Option<AdminStatus> {
        match self.kind {
            ErrorKind::Admin { status, .. } => Some(status),
            _ => None,
        }
    }

    /// Whether the device is gone (the simulator exited, the VFIO device
    /// was removed): nothing more will answer.
    pub fn is_gone(&self) -> bool {
        matches!(self.kind, ErrorKind::Backend(BackendError::Gone { .. }))
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Backend(_) | ErrorKind::Mem(_) => write!(f, "{}", self.kind),
            ErrorKind::DeviceLied { function, .. } => write!(f, "{} ({function}): {}", self.device, self.kind),
            _ => write!(f, "{}: {}", self.device, self.kind),
        }
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// Name the function a backend, memory or ring error happened on:
/// `backend.config_read16(0).on(&device)?`.
pub(crate) trait OnDevice<T> {
    fn on(self, device: &str) -> Result<T, DriverError>;
}

impl<T, E: Into<ErrorKind>> OnDevice<T> for Result<T, E> {
    fn on(self, device: &str) -> Result<T, DriverError> {
        self.map_err(|e| DriverError::new(device, e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_device_as_before() {
        let e = DriverError::new(
            "sim:/tmp/pf.sock",
            ErrorKind::Admin {
                command: "MeterSet",
                status: AdminStatus::Permission,
            },
        );
        assert_eq!(
            e.to_string(),
            "sim:/tmp/pf.sock: MeterSet failed: the device said Permission"
        );
        assert_eq!(e.admin_status(), Some(AdminStatus::Permission));
        assert_eq!(e.device(), "sim:/tmp/pf.sock");
        let e = DriverError::new(
            "vfio:0000:3b:02.0",
            ErrorKind::DeviceLied {
                function: "VF 1".into(),
                command: "LifCreate",
                what: "LIF number",
                value: 9,
                allowed: "0..4 (DeviceInfo.max_lifs)".into(),
            },
        );
        assert!(
            e.to_string()
                .starts_with("vfio:0000:3b:02.0 (VF 1): LifCreate answered LIF number 9, outside the allowed 0..4"),
            "{e}"
        );
        let e = DriverError::new(
            "sim:/x",
            ErrorKind::Backend(BackendError::Op {
                what: "bar_read",
                why: "boom".into(),
            }),
        );
        assert_eq!(e.to_string(), "bar_read: boom", "a backend error speaks for itself");
        assert!(std::error::Error::source(&e).is_some());
        assert!(!e.is_gone());
        assert_eq!(
            DriverError::other("d", "admin queue full").to_string(),
            "d: admin queue full"
        );
    }
}
