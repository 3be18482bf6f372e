//! Ring tests: a model-based property test over random operation sequences
//! (crossing the u32 wrap), hostile-peer cases, and a two-thread transfer
//! with doorbell suppression. All of these also run under Miri
//! (`cargo +nightly miri test -p dataplane ring::`), which checks the unsafe
//! slot accesses and the Release/Acquire edges for data races.

use super::*;
use proptest::prelude::*;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
enum Op {
    Fill(u8),
    Commit,
    Rollback,
    SetMode(Mode),
    Fetch(u8),
    FetchBulk(u8),
    WriteBack,
    Reclaim,
    Doorbell,
    SetFetching,
    TryIdle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..20).prop_map(Op::Fill),
        1 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => prop_oneof![Just(Mode::Normal), Just(Mode::Commit)].prop_map(Op::SetMode),
        3 => (0u8..20).prop_map(Op::Fetch),
        1 => (0u8..20).prop_map(Op::FetchBulk),
        2 => Just(Op::WriteBack),
        2 => Just(Op::Reclaim),
        1 => Just(Op::Doorbell),
        1 => Just(Op::SetFetching),
        1 => Just(Op::TryIdle),
    ]
}

/// What the ring should contain, in plain collections.
#[derive(Default)]
struct Model {
    staged: Vec<u64>,
    published: VecDeque<u64>,
    fetched_not_written_back: u32,
    written_back_not_reclaimed: u32,
    fetching: bool,
    announced_is_current: bool,
    mode_commit: bool,
}

impl Model {
    fn used(&self) -> u32 {
        self.staged.len() as u32
            + self.published.len() as u32
            + self.fetched_not_written_back
            + self.written_back_not_reclaimed
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 512 }, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_match_the_model(
        order in 1u8..=5,
        start in prop_oneof![Just(0u32), Just(u32::MAX - 30), any::<u32>()],
        ops in proptest::collection::vec(op(), 1..150),
    ) {
        let mut mem = RingMemory::<u64>::with_start(order, start).unwrap();
        let size = 1u32 << order;
        let (mut p, mut c) = mem.split();
        let mut m = Model { announced_is_current: true, ..Model::default() };
        let mut next = 0u64;

        for op in ops {
            match op {
                Op::Fill(k) => {
                    let items: Vec<u64> = (next..next + u64::from(k)).collect();
                    let fits = u32::from(k) <= size - m.used();
                    prop_assert_eq!(p.fill_bulk(&items), fits);
                    if fits {
                        next += u64::from(k);
                        if m.mode_commit {
                            m.staged.extend(items);
                        } else {
                            if k > 0 { m.announced_is_current = false; }
                            m.published.extend(items);
                        }
                    }
                }
                Op::Commit => {
                    prop_assert_eq!(p.commit(), m.staged.len() as u32);
                    if !m.staged.is_empty() { m.announced_is_current = false; }
                    m.published.extend(m.staged.drain(..));
                }
                Op::Rollback => {
                    prop_assert_eq!(p.rollback(), m.staged.len() as u32);
                    m.staged.clear();
                }
                Op::SetMode(mode) => {
                    p.set_mode(mode);
                    m.mode_commit = mode == Mode::Commit;
                    if !m.mode_commit {
                        if !m.staged.is_empty() { m.announced_is_current = false; }
                        m.published.extend(m.staged.drain(..));
                    }
                }
                Op::Fetch(k) => {
                    let mut buf = vec![0u64; usize::from(k)];
                    let n = c.fetch_burst(&mut buf).unwrap();
                    prop_assert_eq!(n, m.published.len().min(usize::from(k)));
                    for got in &buf[..n] {
                        prop_assert_eq!(Some(*got), m.published.pop_front());
                    }
                    m.fetched_not_written_back += n as u32;
                }
                Op::FetchBulk(k) => {
                    let mut buf = vec![0u64; usize::from(k)];
                    let ok = c.fetch_bulk(&mut buf).unwrap();
                    prop_assert_eq!(ok, m.published.len() >= usize::from(k));
                    if ok {
                        for got in &buf {
                            prop_assert_eq!(Some(*got), m.published.pop_front());
                        }
                        m.fetched_not_written_back += u32::from(k);
                    }
                }
                Op::WriteBack => {
                    c.write_back();
                    m.written_back_not_reclaimed += m.fetched_not_written_back;
                    m.fetched_not_written_back = 0;
                }
                Op::Reclaim => {
                    prop_assert_eq!(p.reclaim().unwrap(), m.written_back_not_reclaimed);
                    m.written_back_not_reclaimed = 0;
                }
                Op::Doorbell => {
                    let rung = p.doorbell();
                    let expect = !m.announced_is_current && !m.fetching;
                    prop_assert_eq!(rung.is_some(), expect);
                    if let Some(t) = rung {
                        prop_assert_eq!(t, p.indices().outgoing_tail);
                    }
                    m.announced_is_current = true;
                }
                Op::SetFetching => {
                    c.set_fetching();
                    m.fetching = true;
                }
                Op::TryIdle => {
                    let idle = c.try_idle().unwrap();
                    prop_assert_eq!(idle, m.published.is_empty());
                    m.fetching = !idle;
                }
            }

            // The producer's view, and the shared one (the device's
            // written-back head with the producer's tails), both hold the
            // invariant.
            let pi = p.indices();
            prop_assert!(pi.holds(), "producer view {:?}", pi);
            let shared = Indices { head: RingIndex(load_le(&mem_state(&c).head, Ordering::Relaxed)), ..pi };
            prop_assert!(shared.holds(), "shared view {:?}", shared);
            prop_assert_eq!(p.free(), size - m.used());
            prop_assert_eq!(p.staged(), m.staged.len() as u32);
        }
    }

    #[test]
    fn hostile_outgoing_tail_never_panics(order in 1u8..=6, start in any::<u32>(), tail in any::<u32>()) {
        let mut mem = RingMemory::<u64>::with_start(order, start).unwrap();
        let size = 1u32 << order;
        let (_p, mut c) = mem.split();
        store_le(&c.state().outgoing_tail, tail, Ordering::Release);
        let mut buf = [0u64; 8];
        match c.fetch_burst(&mut buf) {
            Ok(n) => {
                prop_assert!(tail.wrapping_sub(start) <= size);
                prop_assert_eq!(n as u32, tail.wrapping_sub(start).min(8));
            }
            Err(e) => {
                prop_assert!(tail.wrapping_sub(start) > size);
                prop_assert_eq!(e, RingError::OutgoingTailOutOfRange { head: start, outgoing_tail: tail, size });
            }
        }
    }

    #[test]
    fn hostile_head_write_back_never_panics(order in 1u8..=6, start in any::<u32>(), fill in 0u32..64, head in any::<u32>()) {
        let mut mem = RingMemory::<u64>::with_start(order, start).unwrap();
        let (mut p, c) = mem.split();
        let fill = fill.min(p.size());
        prop_assert!(p.fill_bulk(&vec![7u64; fill as usize]));
        store_le(&c.state().head, head, Ordering::Release);
        match p.reclaim() {
            Ok(n) => {
                prop_assert!(head.wrapping_sub(start) <= fill);
                prop_assert_eq!(n, head.wrapping_sub(start));
            }
            Err(e) => prop_assert!(matches!(e, RingError::HeadOutOfRange { .. }), "{:?}", e),
        }
        prop_assert!(p.indices().holds());
    }
}

fn mem_state<'a, T: RingElem>(c: &Consumer<'a, T>) -> &'a SharedQueueState {
    c.state()
}

#[test]
fn bad_orders_are_refused() {
    assert_eq!(RingMemory::<u64>::new(0).unwrap_err(), RingError::BadOrder(0));
    assert_eq!(RingMemory::<u64>::new(25).unwrap_err(), RingError::BadOrder(25));
}

#[test]
fn regressed_outgoing_tail_is_an_error_and_recoverable() {
    let mut mem = RingMemory::<u64>::new(3).unwrap();
    let (mut p, mut c) = mem.split();
    assert!(p.fill_bulk(&[1, 2, 3, 4]));
    assert_eq!(c.available(), Ok(4));
    store_le(&c.state().outgoing_tail, 2, Ordering::Release);
    assert_eq!(c.available(), Err(RingError::OutgoingTailRegressed { was: 4, now: 2 }));
    // Nothing was consumed by the failed call; a correct tail works again.
    store_le(&c.state().outgoing_tail, 4, Ordering::Release);
    let mut buf = [0u64; 4];
    assert_eq!(c.fetch_bulk(&mut buf), Ok(true));
    assert_eq!(buf, [1, 2, 3, 4]);
}

#[test]
fn partial_write_back_frees_only_what_is_done() {
    let mut mem = RingMemory::<u64>::with_start(3, u32::MAX - 1).unwrap();
    let (mut p, mut c) = mem.split();
    assert!(p.fill_bulk(&[1, 2, 3, 4, 5]));
    let mut buf = [0u64; 5];
    assert_eq!(c.fetch_bulk(&mut buf), Ok(true));
    let start = RingIndex(u32::MAX - 1);
    assert!(c.write_back_to(start + 2));
    assert_eq!(p.reclaim(), Ok(2));
    assert!(!c.write_back_to(start + 6), "past the fetch cursor");
    assert!(!c.write_back_to(start), "behind the written-back head");
    assert!(c.write_back_to(start + 5));
    assert_eq!(p.reclaim(), Ok(3));
    assert!(p.indices().holds());
}

#[test]
fn commit_mode_holds_output_until_commit() {
    let mut mem = RingMemory::<u64>::new(3).unwrap();
    let (mut p, mut c) = mem.split();
    p.set_mode(Mode::Commit);
    assert!(p.fill_bulk(&[1, 2, 3]));
    assert_eq!(p.doorbell(), None, "nothing published, nothing to ring");
    let mut buf = [0u64; 8];
    assert_eq!(c.fetch_burst(&mut buf), Ok(0), "staged output is invisible");
    assert_eq!(p.rollback(), 3);
    assert!(p.fill_bulk(&[4, 5]));
    assert_eq!(p.commit(), 2);
    assert_eq!(p.doorbell(), Some(RingIndex(2)));
    assert_eq!(c.fetch_burst(&mut buf), Ok(2));
    assert_eq!(&buf[..2], &[4, 5], "rolled-back entries never reach the consumer");
}

#[test]
fn full_ring_refuses_until_reclaimed() {
    let mut mem = RingMemory::<u64>::with_start(2, u32::MAX - 1).unwrap();
    let (mut p, mut c) = mem.split();
    assert!(p.fill_bulk(&[1, 2, 3, 4]));
    assert!(!p.fill_bulk(&[5]));
    assert_eq!(p.fill_burst(&[5, 6]), 0);
    let mut buf = [0u64; 3];
    assert_eq!(c.fetch_bulk(&mut buf), Ok(true));
    assert!(!p.fill_bulk(&[5]), "not written back yet");
    c.write_back();
    assert!(!p.fill_bulk(&[5]), "not reclaimed yet");
    assert_eq!(p.reclaim(), Ok(3));
    assert_eq!(p.fill_burst(&[5, 6, 7, 8]), 3);
    assert!(p.indices().holds());
}

#[test]
fn sixteen_byte_descriptors_cross_the_wrap() {
    use crate::abi::TxDesc;
    let mut mem = RingMemory::<TxDesc>::with_start(2, u32::MAX - 2).unwrap();
    let (mut p, mut c) = mem.split();
    let descs: Vec<TxDesc> = (0..4).map(|i| TxDesc::new(0x1000 * i, 64 + i as u16, 0)).collect();
    assert!(p.fill_bulk(&descs));
    let mut out = [TxDesc::default(); 4];
    assert_eq!(c.fetch_bulk(&mut out), Ok(true));
    assert_eq!(&out[..], &descs[..]);
}

/// Two threads move `n` values through a small ring in uneven batches. The
/// consumer fetches only after a doorbell, the way the device does, so a
/// lost doorbell shows as values never fetched.
fn two_thread_transfer(n: u64, order: u8) {
    use std::sync::atomic::{AtomicBool, AtomicU64};
    let mut mem = RingMemory::<u64>::with_start(order, u32::MAX - 100).unwrap();
    let (mut p, mut c) = mem.split();
    let doorbells = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut next = 0u64;
            let mut rng = 0x2545_f491_4f6c_dd1du64;
            while next < n {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let k = (1 + rng % 9).min(n - next);
                let batch: Vec<u64> = (next..next + k).collect();
                let sent = p.fill_burst(&batch) as u64;
                next += sent;
                if p.doorbell().is_some() {
                    doorbells.fetch_add(1, std::sync::atomic::Ordering::Release);
                }
                if sent == 0 {
                    p.reclaim().unwrap();
                    std::thread::yield_now();
                }
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        s.spawn(|| {
            let mut expect = 0u64;
            let mut serviced = 0u64;
            let mut buf = [0u64; 7];
            loop {
                let rung = doorbells.load(std::sync::atomic::Ordering::Acquire);
                if rung == serviced {
                    if done.load(std::sync::atomic::Ordering::Acquire)
                        && doorbells.load(std::sync::atomic::Ordering::Acquire) == serviced
                    {
                        break;
                    }
                    std::thread::yield_now();
                    continue;
                }
                serviced = rung;
                // A fetch session: active until try_idle agrees.
                c.set_fetching();
                loop {
                    loop {
                        let got = c.fetch_burst(&mut buf).unwrap();
                        for v in &buf[..got] {
                            assert_eq!(*v, expect, "values arrive in order, exactly once");
                            expect += 1;
                        }
                        c.write_back();
                        if got == 0 {
                            break;
                        }
                    }
                    if c.try_idle().unwrap() {
                        break;
                    }
                }
            }
            assert_eq!(expect, n, "every value published was fetched: no doorbell lost");
        });
    });
}

#[test]
fn two_threads_with_doorbell_suppression() {
    if cfg!(miri) {
        two_thread_transfer(300, 3);
    } else {
        two_thread_transfer(300_000, 3);
        two_thread_transfer(300_000, 10);
    }
}
