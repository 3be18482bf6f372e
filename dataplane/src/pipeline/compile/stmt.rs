//! Statements compiled to closures: blocks, assignments, conditionals,
//! calls, and table applies with their hit and miss branches.

use super::*;

impl<const L: usize> Compiler<'_, L> {
    pub(super) fn block(&self, stmts: &[Stmt]) -> StmtFn {
        let stmts: Vec<StmtFn> = stmts.iter().map(|s| self.stmt(s)).collect();
        match stmts.len() {
            0 => Arc::new(|_, _, _| {}),
            1 => stmts.into_iter().next().expect("one statement"),
            _ => Arc::new(move |rt, b, m| {
                for s in &stmts {
                    let live = m & !b.exited;
                    if live == 0 {
                        return;
                    }
                    s(rt, b, live);
                }
            }),
        }
    }

    pub(super) fn stmt(&self, s: &Stmt) -> StmtFn {
        match s {
            Stmt::Assign { dst, value } => {
                let v = self.expr(value);
                let st = self.store(*dst);
                Arc::new(move |_, b, m| {
                    let mut x = [0u64; L];
                    v(b, m, &mut x);
                    for i in lanes(m) {
                        st.put(b, i, x[i]);
                    }
                })
            }
            Stmt::If { cond, then, otherwise } => {
                let c = self.cond(cond);
                let t = self.block(then);
                let o = self.block(otherwise);
                Arc::new(move |rt, b, m| {
                    let yes = c(b, m);
                    if yes != 0 {
                        t(rt, b, yes);
                    }
                    if m & !yes != 0 {
                        o(rt, b, m & !yes);
                    }
                })
            }
            Stmt::Apply { table, on_hit, on_miss } => self.apply(usize::from(*table), on_hit, on_miss),
            Stmt::Call { action, args } => {
                let (cost, body) = self.actions[usize::from(*action)].clone();
                let args: Vec<ExprFn<L>> = args.iter().map(|a| self.expr(a)).collect();
                Arc::new(move |rt, b, m| {
                    let mut saved = [[0u64; limits::PARAMS]; L];
                    for i in lanes(m) {
                        saved[i] = b.params[i];
                    }
                    for (k, a) in args.iter().enumerate() {
                        let mut x = [0u64; L];
                        a(b, m, &mut x);
                        for i in lanes(m) {
                            b.params[i][k] = x[i];
                        }
                    }
                    for i in lanes(m) {
                        b.st[i].cost = b.st[i].cost.saturating_add(cost);
                    }
                    body(rt, b, m);
                    for i in lanes(m) {
                        b.params[i] = saved[i];
                    }
                })
            }
            Stmt::Drop => Arc::new(|_, b, m| {
                for i in lanes(m) {
                    b.meta[i * b.nm + usize::from(std_meta::DROP)] = 1;
                }
            }),
            Stmt::Exit => Arc::new(|_, b, m| b.exited |= m),
            Stmt::Count { counter, index } => {
                let c = usize::from(*counter);
                let idx = self.expr(index);
                Arc::new(move |rt, b, m| {
                    let mut x = [0u64; L];
                    idx(b, m, &mut x);
                    let arr = &mut rt.counters[c];
                    // Runs of packets on the same index (most: one LIF's
                    // burst, one color) are summed first and added once, not
                    // one dependent increment per packet.
                    let mut run: Option<(u64, u64, u64)> = None;
                    let mut add = |run: (u64, u64, u64), errors: &mut u64| match arr.get_mut(run.0 as usize) {
                        Some(v) => {
                            v.0 += run.1;
                            v.1 += run.2;
                        }
                        None => *errors += run.1,
                    };
                    for i in lanes(m) {
                        let len = b.pkts[i].data.len() as u64;
                        run = match run {
                            Some((idx, n, bytes)) if idx == x[i] => Some((idx, n + 1, bytes + len)),
                            Some(r) => {
                                add(r, &mut rt.stats.index_errors);
                                Some((x[i], 1, len))
                            }
                            None => Some((x[i], 1, len)),
                        };
                    }
                    if let Some(r) = run {
                        add(r, &mut rt.stats.index_errors);
                    }
                })
            }
            Stmt::Meter { meter, index, dst } => self.meter(usize::from(*meter), Some(self.expr(index)), *dst),
            Stmt::DirectMeter { meter, dst } => self.meter(usize::from(*meter), None, *dst),
        }
    }

    /// `m.execute_meter(index, dst)`, or with no index `m.read(dst)` of a
    /// direct meter: the cell of the entry the packet's table apply
    /// matched (green, and no meter run, on a miss).
    fn meter(&self, mt: usize, index: Option<ExprFn<L>>, dst: FieldRef) -> StmtFn {
        let st = self.store(dst);
        Arc::new(move |rt, b, m| {
            let mut x = [0u64; L];
            let mut m = m;
            match &index {
                Some(idx) => idx(b, m, &mut x),
                None => {
                    for i in lanes(m) {
                        if b.st[i].slot == NO_SLOT {
                            st.put(b, i, 0);
                            m &= !(1 << i);
                        } else {
                            x[i] = u64::from(b.st[i].slot);
                        }
                    }
                }
            }
            let now = b.now;
            let mut colors = [None; L];
            match &mut rt.meters[mt] {
                MeterArray::Packets(v) => {
                    for i in lanes(m) {
                        colors[i] = v.get_mut(x[i] as usize).map(|x| x.color(now, meter::Amount::new(1)));
                    }
                }
                MeterArray::Bytes(v) => {
                    for i in lanes(m) {
                        let len = b.pkts[i].data.len() as u64;
                        colors[i] = v.get_mut(x[i] as usize).map(|x| x.color(now, meter::Amount::new(len)));
                    }
                }
            }
            for i in lanes(m) {
                let code = match colors[i] {
                    Some(Color::Green) => 0,
                    Some(Color::Yellow) => 1,
                    Some(Color::Red) => 2,
                    None => {
                        rt.stats.index_errors += 1;
                        0
                    }
                };
                st.put(b, i, code);
            }
        })
    }

    pub(super) fn apply(&self, t: usize, on_hit: &[Stmt], on_miss: &[Stmt]) -> StmtFn {
        let def = &self.prog.tables[t];
        let keys: Vec<(u32, KeyPart)> = def
            .keys
            .iter()
            .map(|k| {
                let part = match k.expr {
                    KeyExpr::Valid(h) => KeyPart::Valid(1u64 << h),
                    KeyExpr::Field(FieldRef::Meta(f)) => KeyPart::Meta(usize::from(f)),
                    KeyExpr::Field(FieldRef::Header { header, field }) => {
                        let (h, bit, loc) = self.field(header, field);
                        KeyPart::Header(h, bit, loc)
                    }
                };
                (u32::from(k.width), part)
            })
            .collect();
        let table_cost = def.cost;
        let direct_counter = def.direct_counter.map(usize::from);
        let actions: Vec<(u32, StmtFn)> = self.actions.clone();
        // Actions with nothing to run (NoAction): skipped, costs aside.
        let empty: Vec<bool> = self.prog.actions.iter().map(|a| a.body.is_empty()).collect();
        let d_nparams = self.prog.actions[usize::from(def.default_action)].params.len();
        let default = usize::from(def.default_action);
        let mut d_args = [0u64; limits::PARAMS];
        for (d, a) in d_args.iter_mut().zip(&def.default_args) {
            *d = *a;
        }
        let hit_block = self.block(on_hit);
        let miss_block = self.block(on_miss);
        let branches = !on_hit.is_empty() || !on_miss.is_empty();
        Arc::new(move |rt, b, m| {
            // Each packet's action: table entry or default.
            let mut chosen = [default as u16; L];
            let mut hits = 0u64;
            if table_cost != 0 {
                for i in lanes(m) {
                    b.st[i].cost = b.st[i].cost.saturating_add(table_cost);
                }
            }
            if !rt.tables[t].is_empty() {
                for i in lanes(m) {
                    let mut key = 0u128;
                    for (w, part) in &keys {
                        let v = part.read(b, i);
                        key = key.checked_shl(*w).unwrap_or(0) | (v & ones(*w));
                    }
                    let slot = rt.tables[t].lookup_slot(key);
                    b.st[i].slot = slot.unwrap_or(NO_SLOT);
                    if let Some(h) = slot.and_then(|s| rt.tables[t].hit_at(s)) {
                        hits |= 1 << i;
                        chosen[i] = h.action;
                        let n = h.args.len().min(limits::PARAMS);
                        if n > 0 {
                            b.params[i][..n].copy_from_slice(&h.args[..n]);
                        }
                        if let Some(c) = direct_counter {
                            // The slot is below the table's size, the
                            // array's (validated); `get_mut` all the same.
                            if let Some(v) = rt.counters[c].get_mut(b.st[i].slot as usize) {
                                v.0 += 1;
                                v.1 += b.pkts[i].data.len() as u64;
                            }
                        }
                    }
                }
            } else {
                for i in lanes(m) {
                    b.st[i].slot = NO_SLOT;
                }
            }
            rt.hits[t].0 += u64::from(hits.count_ones());
            rt.hits[t].1 += u64::from((m & !hits).count_ones());
            if d_nparams > 0 {
                for i in lanes(m & !hits) {
                    b.params[i] = d_args;
                }
            }
            // Run each action once over the packets that chose it.
            let mut todo = m;
            while todo != 0 {
                let a = chosen[todo.trailing_zeros() as usize];
                let mut group = 0u64;
                for i in lanes(todo) {
                    if chosen[i] == a {
                        group |= 1 << i;
                    }
                }
                todo &= !group;
                let (cost, body) = &actions[usize::from(a)];
                if *cost != 0 {
                    for i in lanes(group) {
                        b.st[i].cost = b.st[i].cost.saturating_add(*cost);
                    }
                }
                if !empty[usize::from(a)] {
                    body(rt, b, group);
                }
            }
            if branches {
                let live = m & !b.exited;
                if live & hits != 0 {
                    hit_block(rt, b, live & hits);
                }
                if live & !hits != 0 {
                    miss_block(rt, b, live & !hits);
                }
            }
        })
    }
}
