use super::*;
use p4v1::field_match::{Exact, FieldMatchType as F, Lpm, Ternary};

struct Fx {
    prog: Program,
    ids: Ids,
}

fn fx() -> Fx {
    let prog = p4::fairnic();
    let ids = Ids::of(&prog);
    Fx { prog, ids }
}

impl Fx {
    fn table(&self, name: &str) -> u32 {
        self.ids.tables[self.prog.tables.iter().position(|t| t.name == name).unwrap()]
    }
    fn action(&self, name: &str) -> u32 {
        self.ids.actions[self.prog.actions.iter().position(|a| a.name == name).unwrap()]
    }
    fn entry(
        &self,
        table: &str,
        m: Vec<(u32, F)>,
        action: &str,
        params: Vec<Vec<u8>>,
        priority: i32,
    ) -> p4v1::TableEntry {
        p4v1::TableEntry {
            table_id: self.table(table),
            r#match: m
                .into_iter()
                .map(|(id, f)| p4v1::FieldMatch {
                    field_id: id,
                    field_match_type: Some(f),
                })
                .collect(),
            action: Some(p4v1::TableAction {
                r#type: Some(p4v1::table_action::Type::Action(p4v1::Action {
                    action_id: self.action(action),
                    params: params
                        .into_iter()
                        .zip(1u32..)
                        .map(|(value, param_id)| p4v1::action::Param { param_id, value })
                        .collect(),
                })),
            }),
            priority,
            ..Default::default()
        }
    }
}

fn exact(v: &[u8]) -> F {
    F::Exact(Exact { value: v.to_vec() })
}

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x66];

#[test]
fn an_exact_entry_lays_out_as_the_device_takes_it_and_reads_back_canonical() {
    let f = fx();
    let e = f.entry("l2_fwd", vec![(1, exact(&MAC))], "to_lif", vec![vec![0, 3]], 0);
    let a = to_abi(&f.prog, &f.ids, &e, true).unwrap();
    assert_eq!(a.key_len, 6);
    assert_eq!(&a.key[..6], &MAC);
    assert_eq!(&a.mask[..6], &[0xff; 6]);
    assert_eq!(a.param_len, 2);
    assert_eq!(&a.params[..2], &[0, 3]);
    let back = from_abi(&f.prog, &f.ids, &a).unwrap();
    // The parameter comes back canonical: no leading zero byte.
    let canon = f.entry("l2_fwd", vec![(1, exact(&MAC[1..]))], "to_lif", vec![vec![3]], 0);
    let mut canon = canon;
    if let Some(F::Exact(x)) = &mut canon.r#match[0].field_match_type {
        x.value = canonical_bytes(u128::from_be_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0x66]));
    }
    assert_eq!(back, canon);
    // Zero-padded input means the same entry.
    let padded = f.entry(
        "l2_fwd",
        vec![(1, exact(&[0, 0, 2, 0, 0, 0, 0, 0x66]))],
        "to_lif",
        vec![vec![0, 0, 3]],
        0,
    );
    assert_eq!(to_abi(&f.prog, &f.ids, &padded, true).unwrap(), a);
}

#[test]
fn faults_get_the_status_p4runtime_names() {
    let f = fx();
    let code = |e: &p4v1::TableEntry| to_abi(&f.prog, &f.ids, e, true).unwrap_err().0;
    let ok = f.entry("l2_fwd", vec![(1, exact(&MAC))], "to_lif", vec![vec![3]], 0);
    let mut e = ok.clone();
    e.table_id += 1;
    assert_eq!(code(&e), Code::NotFound);
    let e = f.entry(
        "l2_fwd",
        vec![(1, exact(&[1, 2, 3, 4, 5, 6, 7]))],
        "to_lif",
        vec![vec![3]],
        0,
    );
    assert_eq!(code(&e), Code::OutOfRange, "49 bits for a 48-bit key");
    let e = f.entry("l2_fwd", vec![(1, exact(&[]))], "to_lif", vec![vec![3]], 0);
    assert_eq!(code(&e), Code::InvalidArgument, "empty bytestring");
    let e = f.entry("l2_fwd", vec![], "to_lif", vec![vec![3]], 0);
    assert_eq!(code(&e), Code::InvalidArgument, "exact field left out");
    let e = f.entry("l2_fwd", vec![(2, exact(&MAC))], "to_lif", vec![vec![3]], 0);
    assert_eq!(code(&e), Code::InvalidArgument, "no field 2");
    let e = f.entry(
        "l2_fwd",
        vec![(1, exact(&MAC)), (1, exact(&MAC))],
        "to_lif",
        vec![vec![3]],
        0,
    );
    assert_eq!(code(&e), Code::InvalidArgument, "field twice");
    let e = f.entry("l2_fwd", vec![(1, exact(&MAC))], "to_lif", vec![vec![3]], 5);
    assert_eq!(code(&e), Code::InvalidArgument, "priority on an exact table");
    let e = f.entry(
        "l2_fwd",
        vec![(
            1,
            F::Lpm(Lpm {
                value: MAC.to_vec(),
                prefix_len: 8,
            }),
        )],
        "to_lif",
        vec![vec![3]],
        0,
    );
    assert_eq!(code(&e), Code::InvalidArgument, "wrong match kind");
    // Actions: not the table's, unknown, parameters missing, twice, too wide.
    let e = f.entry(
        "route",
        vec![(
            1,
            F::Lpm(Lpm {
                value: vec![10, 0, 0, 0],
                prefix_len: 8,
            }),
        )],
        "to_uplink",
        vec![],
        0,
    );
    assert_eq!(code(&e), Code::InvalidArgument, "route may not run to_uplink");
    let mut e = ok.clone();
    if let Some(p4v1::table_action::Type::Action(a)) = &mut e.action.as_mut().unwrap().r#type {
        a.action_id ^= 1;
    }
    assert_eq!(code(&e), Code::NotFound);
    let e = f.entry("l2_fwd", vec![(1, exact(&MAC))], "to_lif", vec![], 0);
    assert_eq!(code(&e), Code::InvalidArgument, "parameter missing");
    let e = f.entry("l2_fwd", vec![(1, exact(&MAC))], "to_lif", vec![vec![1, 0, 0]], 0);
    assert_eq!(code(&e), Code::OutOfRange, "17 bits for a 16-bit parameter");
    let mut e = ok.clone();
    e.action = None;
    assert_eq!(code(&e), Code::InvalidArgument, "insert without an action");
    assert!(to_abi(&f.prog, &f.ids, &e, false).is_ok(), "a delete names no action");
    let mut e = ok;
    e.is_default_action = true;
    assert_eq!(code(&e), Code::Unimplemented);
}

#[test]
fn ternary_and_lpm_fields_may_be_left_out_and_are_checked_when_given() {
    let f = fx();
    let t = |v: &[u8], m: &[u8]| {
        F::Ternary(Ternary {
            value: v.to_vec(),
            mask: m.to_vec(),
        })
    };
    // acl: only the protocol given; the addresses are don't care.
    let e = f.entry("acl", vec![(3, t(&[17], &[0xff]))], "drop", vec![], 10);
    let a = to_abi(&f.prog, &f.ids, &e, true).unwrap();
    assert_eq!(a.key_len, 9);
    assert_eq!(&a.mask[..9], &[0, 0, 0, 0, 0, 0, 0, 0, 0xff]);
    assert_eq!(a.priority.get(), 10);
    assert_eq!(from_abi(&f.prog, &f.ids, &a).unwrap(), e);
    let code = |e: &p4v1::TableEntry| to_abi(&f.prog, &f.ids, e, true).unwrap_err().0;
    assert_eq!(
        code(&f.entry("acl", vec![(3, t(&[17], &[0xff]))], "drop", vec![], 0)),
        Code::InvalidArgument,
        "no priority"
    );
    assert_eq!(
        code(&f.entry("acl", vec![(3, t(&[0x11], &[0x10]))], "drop", vec![], 1)),
        Code::InvalidArgument,
        "value outside mask"
    );
    assert_eq!(
        code(&f.entry("acl", vec![(3, t(&[0], &[0]))], "drop", vec![], 1)),
        Code::InvalidArgument,
        "all-zero mask"
    );
    // route: 10.0.0.0/8.
    let l = |v: &[u8], p: i32| {
        F::Lpm(Lpm {
            value: v.to_vec(),
            prefix_len: p,
        })
    };
    let e = f.entry("route", vec![(1, l(&[10, 0, 0, 0], 8))], "to_lif", vec![vec![2]], 0);
    let a = to_abi(&f.prog, &f.ids, &e, true).unwrap();
    assert_eq!(a.prefix_len.get(), 8);
    assert_eq!(from_abi(&f.prog, &f.ids, &a).unwrap(), e);
    assert_eq!(
        code(&f.entry("route", vec![(1, l(&[10, 0, 0, 1], 8))], "to_lif", vec![vec![2]], 0)),
        Code::InvalidArgument,
        "bits past the prefix"
    );
    assert_eq!(
        code(&f.entry("route", vec![(1, l(&[0], 0))], "to_lif", vec![vec![2]], 0)),
        Code::InvalidArgument,
        "prefix 0 is left out"
    );
    assert_eq!(
        code(&f.entry("route", vec![(1, l(&[10, 0, 0, 0], 33))], "to_lif", vec![vec![2]], 0)),
        Code::InvalidArgument
    );
}

proptest::proptest! {
    /// Any bytes in any field: an entry or a refusal, never a panic; an
    /// entry reads back to the canonical form of what was sent.
    #[test]
    fn any_bytes_give_an_entry_or_a_refusal(
        key in proptest::collection::vec(proptest::num::u8::ANY, 0..20),
        param in proptest::collection::vec(proptest::num::u8::ANY, 0..5),
        field in 0u32..3,
    ) {
        let f = fx();
        let e = f.entry("l2_fwd", vec![(field, exact(&key))], "to_lif", vec![param.clone()], 0);
        if let Ok(a) = to_abi(&f.prog, &f.ids, &e, true) {
            let back = from_abi(&f.prog, &f.ids, &a).unwrap();
            let again = to_abi(&f.prog, &f.ids, &back, true).unwrap();
            proptest::prop_assert_eq!(again, a);
        }
    }
}
