//! Interrupts for the completions a pass wrote, as each vector's moderation
//! decides.

use super::*;
use crate::device::function::TimerLateness;
use hdrhistogram::Histogram;

impl Device {
    /// How late the moderation timers of every function fired since the
    /// last [`Device::reset_timer_lateness`]: per interrupt raised at or
    /// after its vector's timer deadline, the device clock when it was
    /// raised minus the deadline, ns.
    pub fn timer_lateness(&self) -> Histogram<u64> {
        let mut all = TimerLateness::empty();
        for h in self.functions.iter().filter_map(|f| f.timer_lateness.histogram()) {
            all.add(h).expect("same bounds");
        }
        all
    }

    /// Forget the timer lateness recorded so far.
    pub fn reset_timer_lateness(&mut self) {
        for f in &mut self.functions {
            f.timer_lateness.clear();
        }
    }

    /// Interrupts for the completions written this pass, as each vector's
    /// moderation decides (`dataplane::moderation`): none while the
    /// consumer polls, otherwise now or when the vector's timer expires.
    pub(super) fn signal_completions(&mut self, now: Nanos) {
        for l in 0..self.lifs.len() {
            let Some(lif) = self.lifs[l].as_mut() else { continue };
            let f = usize::from(lif.function);
            self.blame = Some(lif.function);
            let func = &mut self.functions[f];
            let mut suppressed = 0;
            let mut sent = 0;
            // Published once per pass rather than per packet: the TX and
            // RX heads' write-back and the informational cq_tail.
            for q in lif.txqs.iter_mut().flatten() {
                q.flush_write_back();
                q.core.publish_cq_tail();
            }
            for q in lif.rxqs.iter_mut().flatten() {
                q.flush_write_back();
                q.core.publish_cq_tail();
            }
            let cores = lif
                .txqs
                .iter_mut()
                .flatten()
                .map(|q| &mut q.core)
                .chain(lif.rxqs.iter_mut().flatten().map(|q| &mut q.core));
            for core in cores {
                let Some(v) = core.intr else {
                    core.unsignalled = 0;
                    continue;
                };
                let Some(vec) = func.vectors.get_mut(usize::from(v)) else {
                    continue;
                };
                let n = std::mem::take(&mut core.unsignalled);
                // Read the flag only when it matters (a fence and a load).
                if n == 0 && vec.timer.is_none() {
                    continue;
                }
                let consumer = core.consumer_flag();
                vec.seen = Some(match (vec.seen, consumer) {
                    (Some(ConsumerFlag::Armed), _) | (_, ConsumerFlag::Armed) => ConsumerFlag::Armed,
                    (Some(ConsumerFlag::Polling), _) | (_, ConsumerFlag::Polling) => ConsumerFlag::Polling,
                    _ => ConsumerFlag::Idle,
                });
                if n == 0 {
                    continue;
                }
                if consumer == ConsumerFlag::Polling {
                    suppressed += u64::from(n);
                }
                let size = core.size();
                let fill = (u64::from(size - core.cq_room().min(size)) * 100 / u64::from(size)) as u8;
                sent += func.completions(v, l as u16, now, consumer, fill, n);
            }
            lif.count(LifCounter::InterruptsSuppressed, suppressed);
            lif.count(LifCounter::Interrupts, sent);
        }
        let mut raised = std::mem::take(&mut self.raised_scratch);
        for func in &mut self.functions {
            func.expire(now, &mut raised);
        }
        for (id, n) in raised.drain(..) {
            if let Some(lif) = self.lifs.get_mut(usize::from(id)).and_then(|l| l.as_mut()) {
                lif.count(LifCounter::Interrupts, n);
            }
        }
        self.raised_scratch = raised;
    }
}
