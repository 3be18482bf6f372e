use super::*;
use crate::proto::p4::config::v1::match_field::{Match, MatchType};

fn fairnic() -> pi::P4Info {
    p4info(&p4::fairnic())
}

#[test]
fn the_descriptor_set_holds_every_message() {
    let pool = DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
    for m in [
        "p4.config.v1.P4Info",
        "p4.v1.WriteRequest",
        "p4.v1.StreamMessageRequest",
        "p4.v1.SetForwardingPipelineConfigRequest",
        "google.rpc.Status",
    ] {
        assert!(pool.get_message_by_name(m).is_some(), "{m}");
    }
    assert!(pool.get_service_by_name("p4.v1.P4Runtime").is_some());
}

#[test]
fn fairnic_p4info_names_every_object_with_ids_of_its_kind() {
    let prog = p4::fairnic();
    let info = fairnic();
    assert_eq!(info.pkg_info.as_ref().unwrap().name, "fairnic");
    assert_eq!(info.pkg_info.as_ref().unwrap().arch, ARCH);
    assert_eq!(info.tables.len(), prog.tables.len());
    assert_eq!(info.actions.len(), prog.actions.len());
    assert_eq!(info.meters.len(), prog.meters.len());
    // acl_hits is the acl's direct counter: listed apart, with its table.
    assert_eq!(info.counters.len() + info.direct_counters.len(), prog.counters.len());
    assert_eq!(info.direct_counters.len(), 1);
    let acl_hits = &info.direct_counters[0];
    let acl = info
        .tables
        .iter()
        .find(|t| t.preamble.as_ref().unwrap().name == "acl")
        .unwrap();
    assert_eq!(acl_hits.direct_table_id, acl.preamble.as_ref().unwrap().id);
    assert_eq!(acl.direct_resource_ids, [acl_hits.preamble.as_ref().unwrap().id]);
    let mut all = HashSet::new();
    let pre = |p: &Option<pi::Preamble>| p.clone().unwrap();
    for (t, p) in info.tables.iter().map(|t| (pre(&t.preamble), prefix::TABLE)).chain(
        info.actions
            .iter()
            .map(|a| (pre(&a.preamble), prefix::ACTION))
            .chain(info.meters.iter().map(|m| (pre(&m.preamble), prefix::METER)))
            .chain(info.counters.iter().map(|c| (pre(&c.preamble), prefix::COUNTER)))
            .chain(
                info.direct_counters
                    .iter()
                    .map(|c| (pre(&c.preamble), prefix::DIRECT_COUNTER)),
            ),
    ) {
        assert_eq!(t.id >> 24, u32::from(p), "{}", t.name);
        assert_ne!(t.id & 0xff_ffff, 0, "{}", t.name);
        assert!(all.insert(t.id), "{} repeats an id", t.name);
        assert_eq!(t.alias, t.name);
    }
    let l2 = info
        .tables
        .iter()
        .find(|t| t.preamble.as_ref().unwrap().name == "l2_fwd")
        .unwrap();
    let (_, def) = prog.table("l2_fwd").unwrap();
    assert_eq!(l2.size, i64::from(def.size));
    assert_eq!(l2.match_fields.len(), def.keys.len());
    for (i, (f, k)) in l2.match_fields.iter().zip(&def.keys).enumerate() {
        assert_eq!(f.id, i as u32 + 1);
        assert_eq!(f.name, k.name);
        assert_eq!(f.bitwidth, i32::from(k.width));
        assert_eq!(f.r#match, Some(Match::MatchType(MatchType::Exact as i32)));
    }
    // Every action a table names is in the P4Info, with its parameters.
    let action_ids: HashSet<u32> = info.actions.iter().map(|a| a.preamble.as_ref().unwrap().id).collect();
    for t in &info.tables {
        for r in &t.action_refs {
            assert!(action_ids.contains(&r.id));
        }
        let d = t.initial_default_action.as_ref().unwrap();
        assert!(t.action_refs.iter().any(|r| r.id == d.action_id));
    }
    let to_lif = info
        .actions
        .iter()
        .find(|a| a.preamble.as_ref().unwrap().name == "to_lif")
        .unwrap();
    assert_eq!(to_lif.params.len(), 1);
    assert_eq!(
        (
            to_lif.params[0].id,
            to_lif.params[0].name.as_str(),
            to_lif.params[0].bitwidth
        ),
        (1, "lif", 16)
    );
    let unit = |name: &str| {
        info.meters
            .iter()
            .find(|m| m.preamble.as_ref().unwrap().name == name)
            .unwrap()
            .spec
            .unwrap()
            .unit
    };
    assert_eq!(unit("lif_packets"), pi::meter_spec::Unit::Packets as i32);
    assert_eq!(unit("lif_bytes"), pi::meter_spec::Unit::Bytes as i32);
    let counter = |name: &str| {
        info.counters
            .iter()
            .find(|c| c.preamble.as_ref().unwrap().name == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        counter("lif_in").spec.unwrap().unit,
        pi::counter_spec::Unit::Both as i32
    );
    assert_eq!(
        counter("l3_kind").spec.unwrap().unit,
        pi::counter_spec::Unit::Packets as i32
    );
    assert_eq!(counter("l3_kind").size, 4);
}

#[test]
fn text_format_round_trips_and_reads_as_p4c_writes_it() {
    let info = fairnic();
    let text = to_text(&info);
    assert_eq!(from_text(&text).unwrap(), info);
    assert!(text.contains("tables {\n  preamble {\n"), "{text}");
    assert!(text.contains("name: \"l2_fwd\""));
    assert!(text.contains("match_type: EXACT"));
    assert!(text.contains("unit: PACKETS"));
    assert!(text.ends_with('\n'));
    // What a client's text parser accepts: fields it does not know are an
    // error here (a P4Info from another toolchain with extras would say so).
    assert!(matches!(from_text("tables { bogus: 1 }"), Err(TextError::Parse(_))));
    assert!(matches!(from_text("tables {"), Err(TextError::Parse(_))));
    assert_eq!(from_text("").unwrap(), pi::P4Info::default());
}

#[test]
fn ids_depend_on_kind_and_name_not_on_neighbours() {
    let a = assign(prefix::TABLE, ["acl", "l2_fwd", "route"].into_iter());
    let b = assign(prefix::TABLE, ["new_first", "l2_fwd", "route", "acl"].into_iter());
    assert_eq!(a[1], b[1]);
    assert_eq!(a[2], b[2]);
    assert_eq!(a[0], b[3]);
    assert_eq!(a[0] & 0xff_ffff, fnv1a("acl") & 0xff_ffff);
    // The same name in another kind: same suffix, other prefix.
    let m = assign(prefix::METER, ["acl"].into_iter());
    assert_eq!(m[0] & 0xff_ffff, a[0] & 0xff_ffff);
    assert_eq!(m[0] >> 24, u32::from(prefix::METER));
}

#[test]
fn colliding_hashes_take_the_next_free_suffix_in_declaration_order() {
    // 2^24 suffixes: among 60,000 names some hashes meet (about 100 by
    // the birthday bound).
    let names: Vec<String> = (0..60_000u64)
        .map(|i| format!("tbl_{:x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    let ids = assign(prefix::ACTION, names.iter().map(String::as_str));
    let unique: HashSet<u32> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len());
    let mut first_owner = std::collections::HashMap::new();
    let mut collided = 0;
    for (n, id) in names.iter().zip(&ids) {
        let h = fnv1a(n) & 0xff_ffff;
        assert_eq!(id >> 24, u32::from(prefix::ACTION));
        assert_ne!(id & 0xff_ffff, 0);
        if id & 0xff_ffff != h {
            collided += 1;
            assert!(first_owner.contains_key(&h), "{n} moved off a suffix nobody held");
        }
        first_owner.entry(id & 0xff_ffff).or_insert(n);
    }
    assert!(collided > 0, "the test needs a collision to check");
}

#[test]
fn canonical_bytestrings() {
    assert_eq!(canonical_bytes(0), [0]);
    assert_eq!(canonical_bytes(2), [2]);
    assert_eq!(canonical_bytes(0x1234), [0x12, 0x34]);
    assert_eq!(canonical_bytes(u128::MAX).len(), 16);
}

proptest::proptest! {
    /// Any names (quotes, backslashes, control bytes, non-ASCII) and
    /// numbers survive the text format.
    #[test]
    fn any_p4info_round_trips_through_text(
        names in proptest::collection::vec(".{0,12}", 1..6),
        sizes in proptest::collection::vec(proptest::num::i64::ANY, 1..6),
        width in proptest::num::i32::ANY,
        value in proptest::collection::vec(proptest::num::u8::ANY, 0..6),
    ) {
        let info = pi::P4Info {
            pkg_info: Some(pi::PkgInfo { name: names[0].clone(), ..Default::default() }),
            tables: names.iter().zip(sizes.iter().cycle()).enumerate().map(|(i, (n, &size))| pi::Table {
                preamble: preamble(i as u32, n),
                match_fields: vec![pi::MatchField {
                    id: 1,
                    name: n.clone(),
                    bitwidth: width,
                    r#match: Some(Match::MatchType(MatchType::Ternary as i32)),
                    ..Default::default()
                }],
                initial_default_action: Some(pi::TableActionCall {
                    action_id: 7,
                    arguments: vec![pi::table_action_call::Argument { param_id: 1, value: value.clone() }],
                }),
                size,
                ..Default::default()
            }).collect(),
            ..Default::default()
        };
        let text = to_text(&info);
        proptest::prop_assert_eq!(from_text(&text).unwrap(), info, "{}", text);
    }
}

#[test]
fn a_p4info_matches_its_program_and_any_difference_is_named() {
    let prog = p4::fairnic();
    let info = fairnic();
    assert_eq!(check_matches(&info, &prog), Ok(()));
    // Documentation and annotations are the controller's.
    let mut doc = info.clone();
    doc.tables[0]
        .preamble
        .as_mut()
        .unwrap()
        .annotations
        .push("@brief(\"x\")".into());
    doc.pkg_info = None;
    assert_eq!(check_matches(&doc, &prog), Ok(()));
    let mut id = info.clone();
    id.tables[1].preamble.as_mut().unwrap().id += 1;
    assert!(check_matches(&id, &prog).unwrap_err().contains("does not describe"));
    let mut width = info.clone();
    width.actions[0].params.push(pi::action::Param {
        id: 9,
        name: "extra".into(),
        bitwidth: 8,
        ..Default::default()
    });
    assert!(check_matches(&width, &prog).is_err());
    let mut fewer = info.clone();
    fewer.counters.pop();
    assert!(check_matches(&fewer, &prog).unwrap_err().contains("lacks"));
    let mut twice = info.clone();
    twice.actions.push(twice.actions[0].clone());
    assert!(check_matches(&twice, &prog).unwrap_err().contains("twice"));
    let mut more = info;
    more.direct_meters.push(pi::DirectMeter::default());
    assert!(check_matches(&more, &prog)
        .unwrap_err()
        .contains("which the program lacks"));
}
