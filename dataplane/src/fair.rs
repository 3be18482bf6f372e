//! The fetch scheduler and per-LIF regulation.
//!
//! Which LIF's rings the device serves next is decided by deficit round
//! robin over the LIFs that have work, charging each LIF for what it
//! consumed: pipeline cost units ([`Basis::Cost`], fairnic's default) or,
//! for comparison with a conventional NIC, packets ([`Basis::Packets`]).
//! Charging cost rather than packets is what makes LIFs share the
//! pipeline by what their traffic really costs: a LIF sending packets
//! four times as expensive gets a quarter of the packets.
//!
//! Regulation sorts LIFs into [`Class`]es each time the scheduler picks:
//! a LIF whose meter is red is, by its [`MeterPolicy`], `Blocked`
//! (backpressure: its rings are not fetched, nothing is lost) or
//! `Deprioritized` (served only when no normal LIF has work: work
//! conserving). The `Drop` policy applies where there is no ring to hold
//! back, to frames from the wire (the device drops and counts them); for a
//! LIF's own rings it acts as backpressure.
//!
//! Deterministic: the order is the LIF order, nothing reads a clock.

use crate::abi::MeterPolicy;

/// What the scheduler charges a LIF for each packet served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// One per packet (round robin by packets, as most NICs arbitrate).
    Packets,
    /// The packet's pipeline cost (fairnic).
    Cost,
}

/// A LIF's standing with the scheduler at this moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Within its meters: served in turn.
    Normal,
    /// Red under `Deprioritize`: served only when no normal LIF has work.
    Deprioritized,
    /// Red under `Backpressure` (or `Drop`, on its rings): not served.
    Blocked,
}

impl Class {
    /// The class of a LIF whose meters say `red` under `policy`.
    pub fn of(red: bool, policy: MeterPolicy) -> Class {
        match (red, policy) {
            (false, _) => Class::Normal,
            (true, MeterPolicy::Deprioritize) => Class::Deprioritized,
            (true, MeterPolicy::Backpressure | MeterPolicy::Drop) => Class::Blocked,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    deficit: i64,
    weight: u32,
}

/// Deficit round robin over LIFs, per packet.
#[derive(Debug, Clone)]
pub struct Scheduler {
    basis: Basis,
    quantum: u64,
    entries: Vec<Entry>,
    /// The LIF being served in this round, if any.
    current: Option<usize>,
    /// Where the round stands (the next candidate is after it).
    cursor: usize,
}

impl Scheduler {
    /// A scheduler for LIFs `0..n`, charging on `basis`, giving each LIF
    /// `quantum` (times its weight, 1 by default) per round.
    pub fn new(n: usize, basis: Basis, quantum: u64) -> Scheduler {
        Scheduler {
            basis,
            quantum: quantum.max(1),
            entries: vec![Entry { deficit: 0, weight: 1 }; n],
            current: None,
            cursor: n.saturating_sub(1),
        }
    }

    /// The charging basis.
    pub fn basis(&self) -> Basis {
        self.basis
    }

    /// Change the basis (deficits start over).
    pub fn set_basis(&mut self, basis: Basis, quantum: u64) {
        self.basis = basis;
        self.quantum = quantum.max(1);
        for e in &mut self.entries {
            e.deficit = 0;
        }
        self.current = None;
    }

    /// Set a LIF's weight (its share relative to the others).
    pub fn set_weight(&mut self, lif: usize, weight: u32) {
        if let Some(e) = self.entries.get_mut(lif) {
            e.weight = weight.max(1);
        }
    }

    /// Pick the LIF to serve one packet from. `class(l)` is `None` when LIF
    /// `l` has no work (or does not exist), else its class. Normal LIFs are
    /// served by DRR; deprioritized ones by DRR among themselves when no
    /// normal LIF has work; blocked ones never.
    pub fn next(&mut self, class: impl FnMut(usize) -> Option<Class>) -> Option<usize> {
        let classes: Vec<Option<Class>> = (0..self.entries.len()).map(class).collect();
        self.next_of(&classes)
    }

    /// [`Scheduler::next`] with every LIF's class already known:
    /// `classes[l]` for LIF `l` (a LIF past the slice has no work). The
    /// device's engine calls this once a turn with classes it keeps, so
    /// that picking allocates nothing.
    pub fn next_of(&mut self, classes: &[Option<Class>]) -> Option<usize> {
        let n = self.entries.len();
        if n == 0 {
            return None;
        }
        if classes.len() < n {
            // LIFs past the slice have no work.
            let mut all = classes.to_vec();
            all.resize(n, None);
            return self.next_of(&all);
        }
        let classes = &classes[..n];
        let want = classes
            .iter()
            .flatten()
            .filter(|c| **c != Class::Blocked)
            .min()
            .copied()?;
        // Idle or blocked LIFs lose their deficit (classic DRR: credit is
        // not saved up while there is nothing to send).
        for (e, c) in self.entries.iter_mut().zip(classes) {
            if c.is_none_or(|c| c == Class::Blocked) {
                e.deficit = 0;
            }
        }
        if let Some(l) = self.current {
            if classes.get(l) == Some(&Some(want)) && self.entries[l].deficit > 0 {
                return Some(l);
            }
        }
        // Move on: the next LIF of the wanted class gets its quantum; one
        // whose deficit is still not positive (it overdrew) waits its turn.
        for _ in 0..2 * n + 1 {
            self.cursor = if self.cursor + 1 >= n { 0 } else { self.cursor + 1 };
            let l = self.cursor;
            if classes[l] != Some(want) {
                continue;
            }
            let e = &mut self.entries[l];
            e.deficit = e.deficit.saturating_add((self.quantum * u64::from(e.weight)) as i64);
            if e.deficit > 0 {
                self.current = Some(l);
                return Some(l);
            }
        }
        // Every candidate overdrew by more than two quanta (a packet costlier
        // than 2 x quantum): serve the first anyway so work is not stranded.
        let l = classes.iter().position(|c| *c == Some(want))?;
        self.current = Some(l);
        Some(l)
    }

    /// Whether `lif` is still within its turn (the caller may serve it
    /// again without asking [`Scheduler::next`], if its class is unchanged).
    pub fn still_serving(&self, lif: usize) -> bool {
        self.current == Some(lif) && self.entries.get(lif).is_some_and(|e| e.deficit > 0)
    }

    /// Charge `lif` for a packet of `cost` units just served.
    pub fn charge(&mut self, lif: usize, cost: u64) {
        let amount = match self.basis {
            Basis::Packets => 1,
            Basis::Cost => cost.max(1),
        };
        if let Some(e) = self.entries.get_mut(lif) {
            e.deficit = e.deficit.saturating_sub(amount as i64);
        }
    }

    /// Number of LIF slots.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no LIF slots.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Jain's fairness index of `x` (1 = perfectly even, 1/n = one takes all).
pub fn jain(x: &[f64]) -> f64 {
    let sum: f64 = x.iter().sum();
    let sq: f64 = x.iter().map(|v| v * v).sum();
    if sq == 0.0 {
        return 1.0;
    }
    sum * sum / (x.len() as f64 * sq)
}

/// The max-min fair allocation of `capacity` among `demands` (water
/// filling): each gets its demand or an equal share of what is left,
/// whichever is smaller.
pub fn max_min_fair(capacity: f64, demands: &[f64]) -> Vec<f64> {
    let mut alloc = vec![0.0; demands.len()];
    let mut left = capacity;
    let mut open: Vec<usize> = (0..demands.len()).collect();
    while !open.is_empty() && left > 1e-12 {
        let share = left / open.len() as f64;
        let (sat, unsat): (Vec<usize>, Vec<usize>) = open.iter().partition(|&&i| demands[i] - alloc[i] <= share);
        if sat.is_empty() {
            for &i in &unsat {
                alloc[i] += share;
            }
            break;
        }
        for &i in &sat {
            left -= demands[i] - alloc[i];
            alloc[i] = demands[i];
        }
        open = unsat;
    }
    alloc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serve `rounds` packets from always-backlogged LIFs whose packets
    /// cost `costs[l]`; returns (packets, cost) per LIF.
    fn run(
        s: &mut Scheduler,
        costs: &[u64],
        class: impl Fn(usize) -> Option<Class>,
        packets: usize,
    ) -> (Vec<u64>, Vec<u64>) {
        let mut p = vec![0; costs.len()];
        let mut c = vec![0; costs.len()];
        for _ in 0..packets {
            let Some(l) = s.next(&class) else { break };
            p[l] += 1;
            c[l] += costs[l];
            s.charge(l, costs[l]);
        }
        (p, c)
    }

    #[test]
    fn cost_basis_shares_cost_packet_basis_shares_packets() {
        let costs = [5, 5, 5, 20];
        let mut s = Scheduler::new(4, Basis::Cost, 20);
        let (_, cost) = run(&mut s, &costs, |_| Some(Class::Normal), 100_000);
        let total: u64 = cost.iter().sum();
        for c in &cost {
            let share = *c as f64 / total as f64;
            assert!((share - 0.25).abs() < 0.001, "cost shares {cost:?}");
        }
        assert!(jain(&cost.iter().map(|&c| c as f64).collect::<Vec<_>>()) > 0.9999);

        let mut s = Scheduler::new(4, Basis::Packets, 32);
        let (pk, cost) = run(&mut s, &costs, |_| Some(Class::Normal), 100_000);
        assert!(pk.iter().all(|&p| p.abs_diff(25_000) <= 32), "packets {pk:?}");
        // The expensive LIF takes 20/35 of the pipeline.
        let total: u64 = cost.iter().sum();
        assert!((cost[3] as f64 / total as f64 - 20.0 / 35.0).abs() < 0.01);
    }

    #[test]
    fn deprioritized_only_when_normal_idle_and_blocked_never() {
        let costs = [5, 20];
        let mut s = Scheduler::new(2, Basis::Cost, 20);
        let (p, _) = run(
            &mut s,
            &costs,
            |l| Some(if l == 1 { Class::Deprioritized } else { Class::Normal }),
            1000,
        );
        assert_eq!(p, vec![1000, 0]);
        let (p, _) = run(
            &mut s,
            &costs,
            |l| if l == 0 { None } else { Some(Class::Deprioritized) },
            1000,
        );
        assert_eq!(p, vec![0, 1000], "work conserving");
        let (p, _) = run(
            &mut s,
            &costs,
            |l| if l == 0 { None } else { Some(Class::Blocked) },
            1000,
        );
        assert_eq!(p, vec![0, 0]);
        assert_eq!(s.next(|_| Some(Class::Blocked)), None);
        assert_eq!(s.next(|_| None), None);
    }

    #[test]
    fn weights_scale_shares() {
        let mut s = Scheduler::new(2, Basis::Cost, 10);
        s.set_weight(1, 3);
        let (_, cost) = run(&mut s, &[5, 5], |_| Some(Class::Normal), 40_000);
        let r = cost[1] as f64 / cost[0] as f64;
        assert!((r - 3.0).abs() < 0.01, "{cost:?}");
    }

    #[test]
    fn a_lone_lif_is_served_whatever_its_overdraft() {
        let mut s = Scheduler::new(3, Basis::Cost, 1);
        let (p, _) = run(&mut s, &[1000, 1, 1], |l| (l == 0).then_some(Class::Normal), 50);
        assert_eq!(p[0], 50);
    }

    #[test]
    fn next_of_with_a_short_slice_picks_as_with_the_whole() {
        // The same sequence of classes and charges, given whole to one
        // scheduler and to the other without its trailing idle LIFs: the
        // same LIFs, in the same order.
        let (mut a, mut b) = (Scheduler::new(5, Basis::Cost, 7), Scheduler::new(5, Basis::Cost, 7));
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let classes: Vec<Option<Class>> = (0..5)
                .map(|l| match (x >> (3 * l)) & 7 {
                    0 | 1 => None,
                    2 => Some(Class::Blocked),
                    3 => Some(Class::Deprioritized),
                    _ => Some(Class::Normal),
                })
                .collect();
            let kept = classes.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
            let (pa, pb) = (a.next(|l| classes[l]), b.next_of(&classes[..kept]));
            assert_eq!(pa, pb, "{classes:?}");
            if let Some(l) = pa {
                let cost = 1 + (x >> 40) % 9;
                a.charge(l, cost);
                b.charge(l, cost);
            }
        }
        // Past the slice: no work there.
        let mut s = Scheduler::new(4, Basis::Packets, 1);
        assert_eq!(s.next_of(&[None, Some(Class::Normal)]), Some(1));
        assert_eq!(s.next_of(&[]), None);
    }

    #[test]
    fn classes_follow_policy() {
        assert_eq!(Class::of(false, MeterPolicy::Backpressure), Class::Normal);
        assert_eq!(Class::of(true, MeterPolicy::Deprioritize), Class::Deprioritized);
        assert_eq!(Class::of(true, MeterPolicy::Drop), Class::Blocked);
    }

    #[test]
    fn max_min_fair_and_jain() {
        let a = max_min_fair(100.0, &[20.0, 20.0, 20.0, 1000.0]);
        assert_eq!(a, vec![20.0, 20.0, 20.0, 40.0]);
        let a = max_min_fair(100.0, &[30.0, 30.0, 30.0, 30.0]);
        assert_eq!(a, vec![25.0; 4]);
        assert!((jain(&[1.0, 1.0, 1.0, 1.0]) - 1.0).abs() < 1e-12);
        assert!((jain(&[1.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
    }
}
