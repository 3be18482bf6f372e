//! What the demo does every interval of the generator: read each LIF's
//! device counters, make the row of figures, add it to its phase, draw the
//! live table, and at half time have the operator lower the aggressor's
//! meter.

use super::super::gen::{latency_histogram, Interval};
use super::super::AppError;
use super::operator::{cost_meter, Operator};
use super::report::{format_row, phase_title, table_header, LifFigures, Marks, Tick};
use super::{DemoConfig, Role};
use dataplane::abi::{LifCounter, LifStats};
use hdrhistogram::Histogram;
use host_driver::nic::Nic;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Running sums of one phase for one LIF.
pub(super) struct Acc {
    pub(super) seconds: f64,
    pub(super) tx: f64,
    pub(super) rx: f64,
    pub(super) held: f64,
    pub(super) cost: f64,
    pub(super) marks: Marks,
    pub(super) drops: BTreeMap<String, u64>,
    pub(super) interrupts: f64,
    pub(super) hist: Histogram<u64>,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            seconds: 0.0,
            tx: 0.0,
            rx: 0.0,
            held: 0.0,
            cost: 0.0,
            marks: Marks::default(),
            drops: BTreeMap::new(),
            interrupts: 0.0,
            hist: latency_histogram(),
        }
    }
}

/// Who the LIFs are, and where their counters are read.
pub(super) struct Lifs {
    pub(super) ids: Vec<u16>,
    pub(super) roles: Vec<Role>,
    /// Frames per second each offers (0: all the ring takes).
    pub(super) offered: Vec<u64>,
    /// Each one's function.
    pub(super) handles: Vec<Arc<Mutex<Nic>>>,
}

impl Lifs {
    /// LIF `i`'s device counters.
    pub(super) fn read_stats(&self, i: usize) -> Result<LifStats, String> {
        let mut g = self.handles[i].lock().unwrap_or_else(|e| e.into_inner());
        g.stats(self.ids[i]).map_err(|e| e.to_string())
    }

    /// Every LIF's device counters.
    fn read_all(&self) -> Result<Vec<LifStats>, String> {
        (0..self.ids.len()).map(|i| self.read_stats(i)).collect()
    }

    /// The aggressor's LIF (the last).
    pub(super) fn aggressor(&self) -> u16 {
        self.ids[self.ids.len() - 1]
    }
}

/// The demo's view of the run, interval by interval.
pub(super) struct Observer<'a> {
    cfg: &'a DemoConfig,
    pub(super) lifs: &'a Lifs,
    operator: &'a mut Operator,
    /// Receives the generator's per-LIF figures (for `nicctl stats`).
    publish: &'a mut dyn FnMut(&Interval<'_>),
    /// The aggressor's share after the change, cost units per second.
    pub(super) fair_share: u64,
    half: Duration,
    /// 1 before the meter change, 2 after.
    phase: u8,
    /// When each phase's figures start.
    pub(super) phase_start: [f64; 2],
    /// When the meter changed.
    pub(super) change_at: f64,
    /// Whether the interval after the change (left out of phase 2) is over.
    settled: bool,
    /// Per phase, per LIF.
    pub(super) accs: [Vec<Acc>; 2],
    /// The counters at the start of the interval.
    last: Vec<LifStats>,
    pub(super) timeline: Vec<Tick>,
    /// Why the demo stopped the generator, if it did.
    pub(super) failure: Option<AppError>,
    /// Redraw the table in place (stdout is a terminal).
    tty: bool,
    /// Lines of the table last drawn.
    drawn: usize,
    header: String,
}

impl<'a> Observer<'a> {
    /// An observer from the counters as they are now.
    pub(super) fn new(
        cfg: &'a DemoConfig,
        lifs: &'a Lifs,
        operator: &'a mut Operator,
        publish: &'a mut dyn FnMut(&Interval<'_>),
    ) -> Result<Observer<'a>, AppError> {
        let n = lifs.ids.len();
        let half = cfg.duration / 2;
        let last = lifs.read_all().map_err(AppError::Config)?;
        Ok(Observer {
            cfg,
            lifs,
            operator,
            publish,
            fair_share: cfg.capacity / n as u64,
            half,
            phase: 1,
            phase_start: [0.0f64, half.as_secs_f64()],
            change_at: half.as_secs_f64(),
            settled: false,
            accs: [
                (0..n).map(|_| Acc::new()).collect(),
                (0..n).map(|_| Acc::new()).collect(),
            ],
            last,
            timeline: Vec::new(),
            failure: None,
            tty: cfg.live && std::io::stdout().is_terminal(),
            drawn: 0,
            header: table_header(),
        })
    }

    /// The interval `iv`: publish it, read the counters, make the row,
    /// add it to its phase (but the interval after the change), draw the
    /// table, and change the aggressor's meter at half time. Breaks when
    /// the counters cannot be read or the change fails (the demo reports
    /// why).
    pub(super) fn observe(&mut self, iv: &Interval<'_>) -> ControlFlow<()> {
        (self.publish)(iv);
        let dt = iv.length.as_secs_f64().max(1e-9);
        let now: Vec<LifStats> = match self.lifs.read_all() {
            Ok(v) => v,
            Err(e) => {
                // Stop at once (the report says why) rather than run on
                // with a frozen table.
                self.failure = Some(AppError::Config(format!("reading the device's counters: {e}")));
                return ControlFlow::Break(());
            }
        };
        // The first interval after the change drains what the old
        // thresholds queued: in the timeline, not in the phase's figures.
        let settling = self.phase == 2 && !self.settled;
        let row = self.row(iv, &now, dt, settling);
        self.last = now;
        let t = iv.elapsed.as_secs_f64();
        if settling {
            self.settled = true;
            self.phase_start[1] = t;
        }
        if self.cfg.live {
            self.draw(t, &row);
        }
        self.timeline.push(Tick {
            t_s: t,
            phase: self.phase,
            lifs: row,
        });
        if self.phase == 1 && iv.elapsed >= self.half {
            // The operator lowers the aggressor's threshold to its share.
            self.drawn = 0;
            if let Err(e) = self.operator.nicctl(cost_meter(self.lifs.aggressor(), self.fair_share)) {
                self.failure = Some(e);
                return ControlFlow::Break(());
            }
            self.phase = 2;
            self.phase_start[1] = t;
            self.change_at = t;
        }
        ControlFlow::Continue(())
    }

    /// The interval's figures per LIF, from the generator's and the
    /// device's counters (`now` against the interval's start), each added
    /// to its phase unless `settling`.
    fn row(&mut self, iv: &Interval<'_>, now: &[LifStats], dt: f64, settling: bool) -> Vec<LifFigures> {
        let n = self.lifs.ids.len();
        let last = &self.last;
        let cost: Vec<f64> = (0..n)
            .map(|i| {
                now[i]
                    .get(LifCounter::CostUnits)
                    .saturating_sub(last[i].get(LifCounter::CostUnits)) as f64
            })
            .collect();
        let total_cost: f64 = cost.iter().sum::<f64>().max(1.0);
        let p = usize::from(self.phase - 1);
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            let mut drops = BTreeMap::new();
            for c in LifCounter::DROPS {
                let d = now[i].get(c).saturating_sub(last[i].get(c));
                if d > 0 {
                    drops.insert(c.key().to_string(), d);
                }
            }
            let marks = Marks::of(&now[i], &last[i]);
            let irqs = now[i]
                .get(LifCounter::Interrupts)
                .saturating_sub(last[i].get(LifCounter::Interrupts)) as f64;
            let l = &iv.lifs[i];
            // Ring flows: port i's frames arrive at port i + 1.
            let sent_latency = &iv.latency[(i + 1) % n];
            let p99_us = iv.lifs[(i + 1) % n].p99_us;
            let f = LifFigures {
                lif: self.lifs.ids[i],
                role: self.lifs.roles[i],
                offered_pps: self.lifs.offered[i],
                tx_pps: l.tx_pps,
                rx_pps: l.rx_pps,
                held_back_pps: iv.backpressured[i] as f64 / dt,
                cost_units_per_s: cost[i] / dt,
                cost_share: cost[i] / total_cost,
                marks,
                drops,
                p99_us,
                interrupts_per_s: irqs / dt,
            };
            if !settling {
                let a = &mut self.accs[p][i];
                a.seconds += dt;
                a.tx += l.tx_pps * dt;
                a.rx += l.rx_pps * dt;
                a.held += iv.backpressured[i] as f64;
                a.cost += cost[i];
                a.marks.add(marks);
                for (k, v) in &f.drops {
                    *a.drops.entry(k.clone()).or_default() += v;
                }
                a.interrupts += irqs;
                let _ = a.hist.add(sent_latency);
            }
            row.push(f);
        }
        row
    }

    /// The live table at `t`: redrawn in place on a terminal, else
    /// printed below the last.
    fn draw(&mut self, t: f64, row: &[LifFigures]) {
        let mut out = String::new();
        out.push_str(&format!(
            "t={t:>5.1} s  phase {}: {}\n{}\n",
            self.phase,
            phase_title(self.phase, self.cfg.capacity, self.fair_share, self.lifs.aggressor()),
            self.header
        ));
        for f in row {
            out.push_str(&format_row(f));
            out.push('\n');
        }
        if self.tty {
            // Rows longer than the terminal would wrap, and the redraw
            // would go up too few lines.
            let width = terminal_width();
            out = out
                .lines()
                .map(|l| l.chars().take(width.saturating_sub(1)).collect::<String>() + "\n")
                .collect();
        }
        let mut stdout = std::io::stdout().lock();
        if self.tty && self.drawn > 0 {
            // Redraw in place: up over the last table, clear below.
            let _ = write!(stdout, "\x1b[{}A\x1b[J", self.drawn);
        }
        let _ = write!(stdout, "{out}");
        let _ = stdout.flush();
        self.drawn = if self.tty { out.lines().count() } else { 0 };
    }
}

/// Columns of the terminal on stdout (80 when it cannot say).
fn terminal_width() -> usize {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into `ws`, which lives across
    // the call; a failure leaves it zeroed.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}
