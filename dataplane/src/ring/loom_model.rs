//! Loom models of the ring's cross-thread protocol. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p dataplane --release --lib ring::loom_model`
//! (`.ci/run` does).
//!
//! Loom explores every interleaving (up to its preemption bound) and every
//! value a relaxed or acquire load may return under the C++11 memory model,
//! and its `UnsafeCell` reports any slot access not ordered by the indices.

use super::*;
use loom::sync::atomic::{AtomicU32 as LoomU32, Ordering as O};
use loom::sync::Arc;
use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// Values cross a 2-slot ring in order, exactly once, across the wrap of
/// both the slot array and the u32 indices; every slot reuse is ordered
/// after the consumer's read (loom's UnsafeCell would report otherwise).
#[test]
fn transfer_is_ordered_and_race_free() {
    model(|| {
        let mem = Box::leak(Box::new(RingMemory::<u64>::with_start(1, u32::MAX - 1).unwrap()));
        let (mut p, mut c) = mem.split();
        let producer = thread::spawn(move || {
            for v in 1..=3u64 {
                while !p.fill_bulk(&[v]) {
                    p.reclaim().unwrap();
                    thread::yield_now();
                }
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u64; 2];
        while got.len() < 3 {
            let n = c.fetch_burst(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            c.write_back();
            if n == 0 {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
    });
}

/// The device's side of the doorbell protocol: service every doorbell rung
/// so far with a fetch session that ends only when `try_idle` agrees.
/// Returns how many values it fetched.
fn service(
    c: &mut Consumer<'_, u64>,
    rung: &LoomU32,
    serviced: &mut u32,
    idle: impl Fn(&mut Consumer<'_, u64>) -> bool,
) -> usize {
    let mut fetched = 0;
    let now = rung.load(O::Acquire);
    if now == *serviced {
        return 0;
    }
    *serviced = now;
    c.set_fetching();
    let mut buf = [0u64; 4];
    loop {
        loop {
            let n = c.fetch_burst(&mut buf).unwrap();
            fetched += n;
            c.write_back();
            if n == 0 {
                break;
            }
        }
        if idle(c) {
            return fetched;
        }
    }
}

/// No lost doorbell: whenever the device is idle with no doorbell pending,
/// everything published has been fetched.
fn doorbell_model(idle: fn(&mut Consumer<'_, u64>) -> bool) {
    model(move || {
        let mem = Box::leak(Box::new(RingMemory::<u64>::new(2).unwrap()));
        let (mut p, mut c) = mem.split();
        let rung = Arc::new(LoomU32::new(0));
        let rung_p = rung.clone();
        let producer = thread::spawn(move || {
            for v in 0..2u64 {
                assert!(p.fill_bulk(&[v]));
                if p.doorbell().is_some() {
                    rung_p.fetch_add(1, O::Release);
                }
            }
        });
        let mut serviced = 0;
        let mut fetched = 0;
        for _ in 0..2 {
            fetched += service(&mut c, &rung, &mut serviced, idle);
        }
        producer.join().unwrap();
        // The producer is done. The device services what is pending; if a
        // doorbell had been lost, nothing is pending and values are stranded.
        fetched += service(&mut c, &rung, &mut serviced, idle);
        assert_eq!(
            fetched, 2,
            "lost doorbell: published values stranded with the device idle"
        );
    });
}

#[test]
fn no_lost_doorbell() {
    doorbell_model(|c| c.try_idle().unwrap());
}

/// The model catches the bug the re-check prevents: a device that clears
/// the fetch flag and goes idle without looking at `outgoing_tail` again.
#[test]
#[should_panic(expected = "lost doorbell")]
fn idling_without_recheck_loses_doorbells() {
    doorbell_model(|c| {
        store_le(&c.state().fetch_flag, FETCH_IDLE, Ordering::Relaxed);
        true
    });
}

/// Commit mode: the consumer never sees rolled-back entries, even racing
/// with the producer's staging.
#[test]
fn rollback_is_never_visible() {
    model(|| {
        let mem = Box::leak(Box::new(RingMemory::<u64>::new(2).unwrap()));
        let (mut p, mut c) = mem.split();
        let producer = thread::spawn(move || {
            p.set_mode(Mode::Commit);
            assert!(p.fill_bulk(&[66, 67]));
            assert_eq!(p.rollback(), 2);
            assert!(p.fill_bulk(&[1]));
            assert_eq!(p.commit(), 1);
        });
        let mut buf = [0u64; 4];
        let mut got = Vec::new();
        while got.is_empty() {
            let n = c.fetch_burst(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            if n == 0 {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        let n = c.fetch_burst(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
        assert_eq!(got, [1]);
    });
}
