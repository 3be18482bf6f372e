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
        store_le(
            &c.state().fetch_flag,
            crate::abi::FetchFlag::Idle.raw(),
            Ordering::Relaxed,
        );
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

/// The consumer-flag protocol between the device posting a completion and
/// the driver going to sleep. The device publishes the completion (its
/// status word, Release), then asks [`SharedQueueState::consumer_after_post`]
/// and interrupts if the driver is ARMED. The driver arms with
/// `arm` and sleeps only if that finds no completion. Property: a driver
/// that sleeps is woken (the device interrupted), in every interleaving.
fn wakeup_model(arm: fn(&SharedQueueState, &LoomU32) -> bool) {
    model(move || {
        let state = Arc::new(SharedQueueState::new(0));
        let entry = Arc::new(LoomU32::new(0));
        state.set_consumer(crate::abi::ConsumerFlag::Polling);
        let (st_d, entry_d) = (state.clone(), entry.clone());
        let device = thread::spawn(move || {
            entry_d.store(1, O::Release);
            st_d.consumer_after_post() == crate::abi::ConsumerFlag::Armed
        });
        let work_seen = arm(&state, &entry);
        let interrupted = device.join().unwrap();
        assert!(
            work_seen || interrupted,
            "lost wakeup: the driver sleeps on a completion"
        );
    });
}

#[test]
fn no_lost_wakeup() {
    wakeup_model(|st, entry| st.arm_consumer(|| entry.load(O::Acquire) != 0));
}

/// The model catches the bug the fence prevents: arming and re-checking
/// with acquire/release alone (a store followed by a load of another
/// location may be reordered).
#[test]
#[should_panic(expected = "lost wakeup")]
fn arming_without_the_fence_loses_wakeups() {
    wakeup_model(|st, entry| {
        st.consumer_flag
            .store(crate::abi::ConsumerFlag::Armed.raw().to_le(), O::Release);
        entry.load(O::Acquire) != 0
    });
}

/// Symmetrically on the device: reading the flag right after posting,
/// without the fence, misses an ARMED driver.
#[test]
#[should_panic(expected = "lost wakeup")]
fn checking_the_flag_without_the_fence_loses_wakeups() {
    model(|| {
        let state = Arc::new(SharedQueueState::new(0));
        let entry = Arc::new(LoomU32::new(0));
        let (st_d, entry_d) = (state.clone(), entry.clone());
        let device = thread::spawn(move || {
            entry_d.store(1, O::Release);
            u32::from_le(st_d.consumer_flag.load(O::Acquire)) == crate::abi::ConsumerFlag::Armed.raw()
        });
        let work_seen = state.arm_consumer(|| entry.load(O::Acquire) != 0);
        let interrupted = device.join().unwrap();
        assert!(
            work_seen || interrupted,
            "lost wakeup: the driver sleeps on a completion"
        );
    });
}

/// The completion ring's protocol (`ring::completion`): entries cross a
/// 2-entry ring over two laps, in order, each body read only after its
/// color says it is there (loom's cells would report a body read racing
/// its write), and the writer never overwrites an entry the reader has
/// not released through `cq_head`.
#[test]
fn completions_cross_by_color_and_cq_head() {
    model(|| {
        let (mut w, mut r) = super::completion::pair(1);
        let cq_head = Arc::new(LoomU32::new(0));
        let head_w = cq_head.clone();
        let writer = thread::spawn(move || {
            for v in 1..=3u8 {
                while w.room(RingIndex(head_w.load(O::Acquire))) == 0 {
                    thread::yield_now();
                }
                let mut e = [0u8; 16];
                e[2] = v;
                let _ = w.post(e);
                let _ = w.flush();
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            match r.next_entry() {
                Some(e) => {
                    got.push(e[2]);
                    if let Some(h) = r.to_publish() {
                        cq_head.store(h.get(), O::Release);
                    }
                }
                None => thread::yield_now(),
            }
        }
        writer.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
    });
}
