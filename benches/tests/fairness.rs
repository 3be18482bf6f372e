//! The fairness scenario, short: the bar holds with meters on, and
//! the same run with meters off shows the starvation. Virtual time, fixed
//! seed: the figures are the same on every machine.

use fairnic_benches::fairness::{run, Comparison, Scenario, Setting, Who};

/// Steady state: the aggressor's initial burst (4096 units, spent at its
/// 0.03 C excess over its meter) lasts about 0.7 ms; the window starts
/// after it.
fn short() -> Scenario {
    Scenario {
        warmup_ns: 1_500_000,
        measure_ns: 2_000_000,
        ..Scenario::standard()
    }
}

#[test]
fn meters_on_meet_the_bar_and_meters_off_starve_the_victims() {
    let sc = short();
    let c = Comparison::run(&sc).expect("the scenario runs");
    eprintln!("{}", c.table());
    for k in c.checks() {
        assert!(k.met, "{} = {:.3}, needs {}", k.what, k.value, k.bar);
    }
    // Meters on: each victim got what it asked for (within 3 %), the
    // aggressor the rest; victims were never red, the aggressor was.
    for (i, t) in c.on.tenants.iter().enumerate() {
        assert!(
            (t.share - t.fair_share).abs() < 0.03 * t.fair_share,
            "{}: share {:.3} vs max-min {:.3}",
            t.name,
            t.share,
            t.fair_share
        );
        if t.aggressor {
            assert!(t.colors[2] > 0, "the aggressor ran red");
        } else {
            assert_eq!(t.colors[2], 0, "victim{i} never red");
            assert_eq!(t.refused, 0, "victim{i}'s ring never filled");
        }
    }
    // Meters off: packet round robin gives the aggressor 4 x a victim's
    // cost; victims get about C/7 each instead of 0.24 C, their rings fill
    // and their latency is two orders of magnitude above solo.
    let off = &c.off;
    assert!(off.jain < 0.7, "Jain {:.3}", off.jain);
    for (i, t) in off.tenants.iter().enumerate().filter(|(_, t)| !t.aggressor) {
        assert!(t.share < 0.16, "victim{i} share {:.3}", t.share);
        assert!(t.refused > 0, "victim{i}'s ring filled");
        assert!(
            c.p99_ratio(off, i) > 20.0,
            "victim{i} p99 ratio {:.1}",
            c.p99_ratio(off, i)
        );
    }
    let agg = off.tenants.iter().find(|t| t.aggressor).expect("an aggressor");
    assert!(agg.share > 0.5, "aggressor share {:.3}", agg.share);
    // Every run: in order, none lost, all accounted.
    for r in [&c.off, &c.cost_drr, &c.on].into_iter().chain(&c.solo) {
        assert_eq!(r.unaccounted, 0);
        assert_eq!(r.dropped_total, 0, "nothing needed dropping: the sink keeps up");
        assert_eq!(r.posted_total, r.received_total);
        for t in &r.tenants {
            assert_eq!(t.misordered, 0, "{} in order", t.name);
            assert_eq!(
                t.posted, t.received,
                "{}: every frame posted in the window arrived",
                t.name
            );
        }
    }
}

#[test]
fn a_seeded_run_replays_exactly() {
    let sc = Scenario {
        measure_ns: 500_000,
        warmup_ns: 100_000,
        ..Scenario::standard()
    };
    let a = run(&sc, Setting::On, Who::All).unwrap();
    let b = run(&sc, Setting::On, Who::All).unwrap();
    let key = |r: &fairnic_benches::fairness::RunResult| {
        r.tenants
            .iter()
            .map(|t| (t.consumed, t.posted, t.received, t.p99_ns, t.colors))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&a), key(&b));
}

/// Everyone over their share: each victim offers half the pipeline. Max-min
/// fairness is then an equal quarter of the cost for each tenant, whatever
/// its packets cost; packet round robin gives the aggressor four times a
/// victim's share instead.
#[test]
fn with_every_tenant_overloaded_each_gets_an_equal_share_of_the_cost() {
    let sc = Scenario {
        victim_load: 0.5,
        warmup_ns: 1_000_000,
        measure_ns: 1_000_000,
        ..Scenario::standard()
    };
    let on = run(&sc, Setting::On, Who::All).unwrap();
    for t in &on.tenants {
        assert!((t.share - 0.25).abs() < 0.0125, "{}: {:.3}", t.name, t.share);
    }
    assert!(on.jain > 0.999, "{:.4}", on.jain);
    assert_eq!(on.unaccounted, 0);
    let off = run(&sc, Setting::Off, Who::All).unwrap();
    let agg = off.tenants.iter().find(|t| t.aggressor).unwrap();
    assert!(
        (agg.share - 4.0 / 7.0).abs() < 0.02,
        "packet RR: aggressor {:.3}",
        agg.share
    );
    assert_eq!(off.unaccounted, 0);
}
