//! Client arbitration (P4Runtime v1.4, "Client Arbitration and Controller
//! Replication"): each controller stream names a device, a role and an
//! election id; per role, the stream with the highest election id is the
//! primary, the others are backups. Every arbitration update gets an
//! answer; when a role's primary changes, every stream of that role is
//! told. An election id a live stream of the role already holds is
//! refused, and so is an unknown device.
//!
//! Pure bookkeeping (no I/O): [`Arbiter`] says who is to be told what, and
//! the server sends it.

use crate::proto::google::rpc::Status as RpcStatus;
use crate::proto::p4::v1::{MasterArbitrationUpdate, Role, Uint128};
use std::collections::BTreeMap;
use tonic::Code;

/// A stream's place in the arbitration.
#[derive(Debug, Clone)]
struct Member<T> {
    role: String,
    election_id: Option<u128>,
    /// How to reach the stream (the server's sender; tests use anything).
    to: T,
}

/// Who to tell what after an arbitration event: each stream's answer.
pub type Notices<T> = Vec<(T, MasterArbitrationUpdate)>;

/// Why an arbitration update was refused (the stream then ends with this
/// status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: Code,
    pub message: String,
}

/// The arbitration state of one device.
#[derive(Debug)]
pub struct Arbiter<T> {
    device_id: u64,
    members: BTreeMap<u64, Member<T>>,
}

/// An election id as a number (`None`: unset).
pub(crate) fn to_u128(id: &Option<Uint128>) -> Option<u128> {
    id.as_ref().map(|u| (u128::from(u.high) << 64) | u128::from(u.low))
}

fn from_u128(v: u128) -> Uint128 {
    Uint128 {
        high: (v >> 64) as u64,
        low: v as u64,
    }
}

impl<T: Clone> Arbiter<T> {
    pub fn new(device_id: u64) -> Arbiter<T> {
        Arbiter {
            device_id,
            members: BTreeMap::new(),
        }
    }

    /// The device this arbiter serves.
    pub fn device_id(&self) -> u64 {
        self.device_id
    }

    /// The highest election id of `role`'s streams (its primary's).
    pub fn primary(&self, role: &str) -> Option<u128> {
        self.members
            .values()
            .filter(|m| m.role == role)
            .filter_map(|m| m.election_id)
            .max()
    }

    /// Whether a request of `role` carrying `election_id` comes from the
    /// role's primary.
    pub fn is_primary(&self, role: &str, election_id: Option<u128>) -> bool {
        election_id.is_some() && self.primary(role) == election_id
    }

    /// The answer `stream` is due: OK to the primary, ALREADY_EXISTS to a
    /// backup, NOT_FOUND while the role has no primary; with the primary's
    /// election id.
    fn notice(&self, stream: u64) -> Option<(T, MasterArbitrationUpdate)> {
        let m = self.members.get(&stream)?;
        let primary = self.primary(&m.role);
        let (code, message) = match primary {
            Some(p) if m.election_id == Some(p) => (Code::Ok, "you are the primary".to_string()),
            Some(_) => (
                Code::AlreadyExists,
                "a primary is connected; you are a backup".to_string(),
            ),
            None => (
                Code::NotFound,
                "no primary: no stream of this role has an election id".to_string(),
            ),
        };
        Some((
            m.to.clone(),
            MasterArbitrationUpdate {
                device_id: self.device_id,
                role: (!m.role.is_empty()).then(|| Role {
                    name: m.role.clone(),
                    config: None,
                }),
                election_id: primary.map(from_u128),
                status: Some(RpcStatus {
                    code: code as i32,
                    message,
                    details: Vec::new(),
                }),
            },
        ))
    }

    /// Every stream of `role`'s notice.
    fn notify_role(&self, role: &str) -> Notices<T> {
        self.members
            .iter()
            .filter(|(_, m)| m.role == role)
            .filter_map(|(&s, _)| self.notice(s))
            .collect()
    }

    /// Stream `stream` (reached through `to`) sent `u`: join or change its
    /// election id. Returns who is to be told what, or why `u` is refused
    /// (the stream's membership is then unchanged; the server ends it).
    pub fn update(&mut self, stream: u64, u: &MasterArbitrationUpdate, to: T) -> Result<Notices<T>, Refused> {
        if u.device_id != self.device_id {
            return Err(Refused {
                code: Code::NotFound,
                message: format!(
                    "no device {}: this server serves device {}",
                    u.device_id, self.device_id
                ),
            });
        }
        let role = u.role.as_ref().map_or_else(String::new, |r| r.name.clone());
        let election_id = to_u128(&u.election_id);
        if let Some(old) = self.members.get(&stream) {
            if old.role != role {
                return Err(Refused {
                    code: Code::InvalidArgument,
                    message: format!(
                        "a stream keeps its role: this one is {:?}, the update names {:?}",
                        old.role, role
                    ),
                });
            }
        }
        if let Some(e) = election_id {
            if self
                .members
                .iter()
                .any(|(&s, m)| s != stream && m.role == role && m.election_id == Some(e))
            {
                return Err(Refused {
                    code: Code::InvalidArgument,
                    message: format!("election id {e} is already held by another stream of this role"),
                });
            }
        }
        let before = self.primary(&role);
        self.members.insert(
            stream,
            Member {
                role: role.clone(),
                election_id,
                to,
            },
        );
        if self.primary(&role) != before {
            Ok(self.notify_role(&role))
        } else {
            Ok(self.notice(stream).into_iter().collect())
        }
    }

    /// Stream `stream` ended: whoever is to be told (its role, when the
    /// primary changed). Its sender is dropped here.
    pub fn leave(&mut self, stream: u64) -> Notices<T> {
        let Some(m) = self.members.remove(&stream) else {
            return Vec::new();
        };
        let was_primary = m.election_id.is_some() && m.election_id > self.primary(&m.role);
        if was_primary {
            self.notify_role(&m.role)
        } else {
            Vec::new()
        }
    }

    /// Whether `stream` has joined.
    pub fn is_member(&self, stream: u64) -> bool {
        self.members.contains_key(&stream)
    }

    /// How to reach `role`'s primary stream, if it has one.
    pub fn primary_stream(&self, role: &str) -> Option<T> {
        let p = self.primary(role)?;
        self.members
            .values()
            .find(|m| m.role == role && m.election_id == Some(p))
            .map(|m| m.to.clone())
    }

    /// Whether `stream` is its role's primary.
    pub fn stream_is_primary(&self, stream: u64) -> bool {
        self.members
            .get(&stream)
            .is_some_and(|m| self.is_primary(&m.role, m.election_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upd(device: u64, role: &str, id: Option<u128>) -> MasterArbitrationUpdate {
        MasterArbitrationUpdate {
            device_id: device,
            role: (!role.is_empty()).then(|| Role {
                name: role.into(),
                config: None,
            }),
            election_id: id.map(from_u128),
            status: None,
        }
    }

    fn codes(n: &Notices<u64>) -> Vec<(u64, i32, Option<u128>)> {
        let mut v: Vec<_> = n
            .iter()
            .map(|(to, m)| (*to, m.status.as_ref().unwrap().code, to_u128(&m.election_id)))
            .collect();
        v.sort();
        v
    }

    const OK: i32 = Code::Ok as i32;
    const BACKUP: i32 = Code::AlreadyExists as i32;
    const NONE: i32 = Code::NotFound as i32;

    #[test]
    fn the_highest_election_id_is_primary_and_everyone_hears_of_a_change() {
        let mut a = Arbiter::new(1);
        assert_eq!(
            codes(&a.update(10, &upd(1, "", Some(5)), 10).unwrap()),
            [(10, OK, Some(5))]
        );
        // A lower id joins: a backup, only it is told.
        assert_eq!(
            codes(&a.update(11, &upd(1, "", Some(3)), 11).unwrap()),
            [(11, BACKUP, Some(5))]
        );
        // A higher one: the primary changes, both others hear it.
        assert_eq!(
            codes(&a.update(12, &upd(1, "", Some(1u128 << 64)), 12).unwrap()),
            [
                (10, BACKUP, Some(1 << 64)),
                (11, BACKUP, Some(1 << 64)),
                (12, OK, Some(1 << 64))
            ]
        );
        assert!(a.stream_is_primary(12) && !a.stream_is_primary(10));
        assert!(a.is_primary("", Some(1 << 64)) && !a.is_primary("", Some(5)) && !a.is_primary("", None));
        // The primary leaves: the next highest takes over, all are told.
        assert_eq!(codes(&a.leave(12)), [(10, OK, Some(5)), (11, BACKUP, Some(5))]);
        // A backup leaving changes nothing.
        assert!(a.leave(11).is_empty());
        assert!(a.leave(99).is_empty());
    }

    #[test]
    fn taken_ids_unknown_devices_and_role_changes_are_refused() {
        let mut a = Arbiter::new(7);
        a.update(1, &upd(7, "", Some(2)), 1).unwrap();
        let e = a.update(2, &upd(7, "", Some(2)), 2).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(!a.is_member(2));
        assert_eq!(a.update(2, &upd(8, "", Some(3)), 2).unwrap_err().code, Code::NotFound);
        // The same id in another role is that role's business.
        assert_eq!(
            codes(&a.update(3, &upd(7, "ops", Some(2)), 3).unwrap()),
            [(3, OK, Some(2))]
        );
        assert_eq!(
            a.update(3, &upd(7, "", Some(9)), 3).unwrap_err().code,
            Code::InvalidArgument
        );
        // A stream may raise its own id (re-election).
        assert_eq!(
            codes(&a.update(1, &upd(7, "", Some(4)), 1).unwrap()),
            [(1, OK, Some(4))]
        );
    }

    #[test]
    fn without_an_election_id_nobody_is_primary() {
        let mut a = Arbiter::new(1);
        assert_eq!(codes(&a.update(1, &upd(1, "", None), 1).unwrap()), [(1, NONE, None)]);
        assert!(!a.stream_is_primary(1));
        // An id of 0 is set, and ranks above unset.
        assert_eq!(
            codes(&a.update(2, &upd(1, "", Some(0)), 2).unwrap()),
            [(1, BACKUP, Some(0)), (2, OK, Some(0))]
        );
    }
}
