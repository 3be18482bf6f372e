//! Checks a decoded program before anything executes it: every index in
//! range, every width possible, every limit kept. An image comes from the
//! host, so nothing here trusts it; after `validate` the executor may index
//! without checks failing.

use super::ir::*;

type R = Result<(), ProgramError>;

fn bad(msg: impl Into<String>) -> ProgramError {
    ProgramError::Invalid(msg.into())
}

fn within(what: &str, n: usize, max: usize) -> R {
    if n > max {
        return Err(bad(format!("{n} {what}, at most {max}")));
    }
    Ok(())
}

struct Ctx<'a> {
    p: &'a Program,
    /// Parameters of the action being checked (None: not in an action).
    params: Option<&'a [ParamDef]>,
    stmts: usize,
}

impl Program {
    /// Check every index, width and limit.
    pub fn validate(&self) -> R {
        let p = self;
        within("headers", p.headers.len(), limits::HEADERS)?;
        within("metadata fields", p.meta.len(), limits::META_FIELDS)?;
        within("parser states", p.parser.len(), limits::STATES)?;
        within("actions", p.actions.len(), limits::ACTIONS)?;
        within("tables", p.tables.len(), limits::TABLES)?;
        within("meters", p.meters.len(), limits::METERS)?;
        within("counters", p.counters.len(), limits::COUNTERS)?;
        if p.parser.is_empty() {
            return Err(bad("no parser state (start)"));
        }
        if p.meta.len() < std_meta::FIELDS.len()
            || p.meta
                .iter()
                .zip(std_meta::FIELDS)
                .any(|(f, (n, w))| f.name != n || f.width != w)
        {
            return Err(bad("metadata does not start with the standard metadata"));
        }
        for h in &p.headers {
            within("fields in a header", h.fields.len(), limits::FIELDS_PER_HEADER)?;
            if h.len == 0 || usize::from(h.len) > limits::HEADER_BYTES {
                return Err(bad(format!("header {}: length {} bytes", h.name, h.len)));
            }
            let mut at = 0u32;
            for f in &h.fields {
                if f.width == 0 || u32::from(f.bit_off) != at {
                    return Err(bad(format!("header {}: field {} misplaced", h.name, f.name)));
                }
                at += u32::from(f.width);
            }
            if at != u32::from(h.len) * 8 {
                return Err(bad(format!(
                    "header {}: fields cover {at} bits of {}",
                    h.name,
                    h.len * 8
                )));
            }
        }
        for f in &p.meta {
            if f.width == 0 || f.width > 64 {
                return Err(bad(format!("metadata {}: width {}", f.name, f.width)));
            }
        }
        let mut cx = Ctx {
            p,
            params: None,
            stmts: 0,
        };
        for s in &p.parser {
            for op in &s.ops {
                match op {
                    ParserOp::Extract(h) => cx.header(*h)?,
                    ParserOp::Assign { dst, value } => {
                        if !matches!(dst, FieldRef::Meta(_)) {
                            return Err(bad(format!("state {}: the parser assigns only metadata", s.name)));
                        }
                        cx.writable(*dst)?;
                        cx.expr(value, 0)?;
                    }
                }
            }
            match &s.transition {
                Transition::Next(n) => cx.next(*n)?,
                Transition::Select { keys, cases, default } => {
                    within("select keys", keys.len(), limits::KEYS)?;
                    for k in keys {
                        cx.expr(k, 0)?;
                    }
                    for c in cases {
                        if c.matches.len() != keys.len() {
                            return Err(bad(format!("state {}: a case has the wrong number of values", s.name)));
                        }
                        cx.next(c.next)?;
                    }
                    cx.next(*default)?;
                }
            }
        }
        for a in &p.actions {
            within("action parameters", a.params.len(), limits::PARAMS)?;
            if a.params.iter().any(|x| x.width == 0 || x.width > 64) {
                return Err(bad(format!("action {}: a parameter is 1..=64 bits", a.name)));
            }
            cx.params = Some(&a.params);
            cx.block(&a.body, 0)?;
        }
        cx.params = None;
        for t in &p.tables {
            within("key fields", t.keys.len(), limits::KEYS)?;
            let bits: u32 = t.keys.iter().map(|k| u32::from(k.width)).sum();
            if bits > limits::KEY_BITS {
                return Err(bad(format!("table {}: key of {bits} bits", t.name)));
            }
            if t.keys.iter().filter(|k| k.kind == MatchKind::Lpm).count() > 1 {
                return Err(bad(format!("table {}: more than one LPM key", t.name)));
            }
            for k in &t.keys {
                let w = match k.expr {
                    KeyExpr::Field(f) => cx.field(f, false)?,
                    KeyExpr::Valid(h) => {
                        cx.header(h)?;
                        1
                    }
                };
                if w != k.width || w > 128 {
                    return Err(bad(format!("table {}: key {} width", t.name, k.name)));
                }
            }
            if t.size == 0 || t.size > limits::TABLE_SIZE {
                return Err(bad(format!("table {}: size {}", t.name, t.size)));
            }
            for &a in &t.actions {
                cx.action(a)?;
            }
            cx.args(t.default_action, t.default_args.len())?;
            let d = cx.action(t.default_action)?;
            let no_op = d.params.is_empty() && d.body.is_empty();
            if !no_op && !t.actions.contains(&t.default_action) {
                return Err(bad(format!(
                    "table {}: the default action is not one of its actions",
                    t.name
                )));
            }
            for e in &t.entries {
                if e.key.len() != t.keys.len() || !t.actions.contains(&e.action) {
                    return Err(bad(format!("table {}: an entry does not fit the table", t.name)));
                }
                cx.args(e.action, e.args.len())?;
            }
        }
        for m in &p.meters {
            if m.size == 0 || m.size > limits::ARRAY_SIZE {
                return Err(bad(format!("meter {}: size {}", m.name, m.size)));
            }
        }
        for c in &p.counters {
            if c.size == 0 || c.size > limits::ARRAY_SIZE {
                return Err(bad(format!("counter {}: size {}", c.name, c.size)));
            }
        }
        p.check_direct()?;
        cx.block(&p.ingress, 0)?;
        for &h in &p.deparse {
            cx.header(h)?;
        }
        p.check_state_budget()?;
        p.check_costs()
    }

    /// Direct counters and meters: each array is one table's at most, has
    /// one cell per entry of it (its size), and is not a per-LIF meter; an
    /// action that reads a direct meter runs only from the tables that
    /// have it (never called directly), so that a matched entry's cell is
    /// the one it reads.
    fn check_direct(&self) -> R {
        for (i, t) in self.tables.iter().enumerate() {
            let before = &self.tables[..i];
            let counter = t.direct_counter.map(|c| {
                let def = self.counters.get(usize::from(c)).map(|d| (d.name.as_str(), d.size));
                ("counter", c, def, before.iter().any(|u| u.direct_counter == Some(c)))
            });
            let meter = t.direct_meter.map(|m| {
                let def = self.meters.get(usize::from(m)).map(|d| (d.name.as_str(), d.size));
                ("meter", m, def, before.iter().any(|u| u.direct_meter == Some(m)))
            });
            for (kind, x, def, taken) in counter.into_iter().chain(meter) {
                let (name, size) =
                    def.ok_or_else(|| bad(format!("table {}: direct {kind} {x} does not exist", t.name)))?;
                if size != t.size {
                    return Err(bad(format!(
                        "table {}: direct {kind} {name} has {size} cells for {} entries",
                        t.name, t.size
                    )));
                }
                if taken {
                    return Err(bad(format!("{kind} {name} is the direct {kind} of two tables")));
                }
                if kind == "meter" && super::lif_meter_resource(name).is_some() {
                    return Err(bad(format!("meter {name} is a per-LIF meter: it cannot be direct")));
                }
            }
        }
        for (a, act) in self.actions.iter().enumerate() {
            let read = act.direct_meters();
            if read.is_empty() {
                continue;
            }
            let a = a as u16;
            for t in &self.tables {
                if !t.actions.contains(&a) && t.default_action != a {
                    continue;
                }
                if let Some(&m) = read.iter().find(|&&m| t.direct_meter != Some(m)) {
                    return Err(bad(format!(
                        "action {} reads direct meter {m}, which table {} does not have",
                        act.name, t.name
                    )));
                }
            }
            if calls(&self.ingress, a) {
                return Err(bad(format!(
                    "action {} reads a direct meter: only its table may run it",
                    act.name
                )));
            }
        }
        Ok(())
    }

    /// The bytes of state the program makes the device hold, at most: its
    /// meter and counter arrays, and its tables at full size.
    pub fn state_bytes(&self) -> u64 {
        self.state_by_name().map(|(_, n)| n).sum()
    }

    /// Each meter array's, counter array's and table's share of
    /// [`Program::state_bytes`], by name.
    pub fn state_by_name(&self) -> impl Iterator<Item = (&str, u64)> {
        let meter = core::mem::size_of::<crate::meter::Meter<crate::meter::Bytes>>()
            .max(core::mem::size_of::<crate::meter::Meter<crate::meter::Packets>>()) as u64;
        let meters = self
            .meters
            .iter()
            .map(move |m| (m.name.as_str(), u64::from(m.size) * meter));
        let counters = self
            .counters
            .iter()
            .map(|c| (c.name.as_str(), u64::from(c.size) * limits::COUNTER_BYTES));
        let tables = self
            .tables
            .iter()
            .map(|t| (t.name.as_str(), u64::from(t.size) * limits::TABLE_ENTRY_BYTES));
        meters.chain(counters).chain(tables)
    }

    fn check_state_budget(&self) -> R {
        let n = self.state_bytes();
        if n > limits::STATE_BYTES {
            return Err(bad(format!(
                "the program's meters, counters and tables need {} KiB of device state, the device's budget is {} KiB \
                 (shrink array or table sizes)",
                n >> 10,
                limits::STATE_BYTES >> 10
            )));
        }
        Ok(())
    }

    /// The most cost units one pass of a packet can be charged: the base
    /// cost, the costliest parser state at every parse step, and every
    /// table applied and action called in the ingress control (both arms
    /// of every branch, each table's costliest action).
    pub fn max_packet_cost(&self) -> u64 {
        let action = |a: u16| self.actions.get(usize::from(a)).map_or(0, |x| u64::from(x.cost));
        fn block(p: &Program, b: &[Stmt], action: &dyn Fn(u16) -> u64) -> u64 {
            b.iter()
                .map(|s| match s {
                    Stmt::Apply { table, on_hit, on_miss } => {
                        let t = &p.tables[usize::from(*table)];
                        let worst = t
                            .actions
                            .iter()
                            .chain(std::iter::once(&t.default_action))
                            .map(|&a| action(a))
                            .max()
                            .unwrap_or(0);
                        u64::from(t.cost) + worst + block(p, on_hit, action) + block(p, on_miss, action)
                    }
                    Stmt::If { then, otherwise, .. } => block(p, then, action) + block(p, otherwise, action),
                    Stmt::Call { action: a, .. } => action(*a),
                    _ => 0,
                })
                .sum()
        }
        let parse = self.parser.iter().map(|s| u64::from(s.cost)).max().unwrap_or(0) * limits::PARSE_STEPS as u64;
        u64::from(self.base_cost) + parse + block(self, &self.ingress, &action)
    }

    fn check_costs(&self) -> R {
        let each = [("the base cost", self.base_cost)]
            .into_iter()
            .chain(self.parser.iter().map(|s| ("a parser state's cost", s.cost)))
            .chain(self.tables.iter().map(|t| ("a table's cost", t.cost)))
            .chain(self.actions.iter().map(|a| ("an action's cost", a.cost)));
        for (what, c) in each {
            if c > limits::COST {
                return Err(bad(format!("{what} is {c} units, at most {}", limits::COST)));
            }
        }
        let worst = self.max_packet_cost();
        if worst > limits::PACKET_COST {
            return Err(bad(format!(
                "a packet may cost up to {worst} units in one pass, at most {} (lower the @cost annotations)",
                limits::PACKET_COST
            )));
        }
        Ok(())
    }
}

impl Ctx<'_> {
    fn header(&self, h: u16) -> R {
        if usize::from(h) >= self.p.headers.len() {
            return Err(bad(format!("header {h} does not exist")));
        }
        Ok(())
    }

    /// The field's width; `expr`: it is used in an expression (<= 64 bits).
    fn field(&self, f: FieldRef, expr: bool) -> Result<u16, ProgramError> {
        let w = self
            .p
            .field_width(f)
            .ok_or_else(|| bad(format!("field {f:?} does not exist")))?;
        if expr && w > 64 {
            return Err(bad(format!("field {f:?} is {w} bits: too wide for an expression")));
        }
        Ok(w)
    }

    /// A field a program may write: not the fields the device sets (the
    /// ingress LIF is what the device charges; an image must not forge it).
    fn writable(&self, f: FieldRef) -> R {
        if let FieldRef::Meta(m) = f {
            if [std_meta::INGRESS_LIF, std_meta::PACKET_LENGTH, std_meta::PARSER_ERROR].contains(&m) {
                return Err(bad(format!(
                    "the program writes {}, which the device sets",
                    std_meta::FIELDS[usize::from(m)].0
                )));
            }
        }
        self.field(f, true).map(|_| ())
    }

    fn next(&self, n: Next) -> R {
        if let Next::State(s) = n {
            if usize::from(s) >= self.p.parser.len() {
                return Err(bad(format!("parser state {s} does not exist")));
            }
        }
        Ok(())
    }

    fn action(&self, a: u16) -> Result<&ActionDef, ProgramError> {
        self.p
            .actions
            .get(usize::from(a))
            .ok_or_else(|| bad(format!("action {a} does not exist")))
    }

    fn args(&self, a: u16, n: usize) -> R {
        let def = self.action(a)?;
        if def.params.len() != n {
            return Err(bad(format!(
                "action {} takes {} arguments, given {n}",
                def.name,
                def.params.len()
            )));
        }
        Ok(())
    }

    fn width(w: u16) -> R {
        if w == 0 || w > 64 {
            return Err(bad(format!("expression width {w}")));
        }
        Ok(())
    }

    fn expr(&self, e: &Expr, depth: usize) -> R {
        if depth > limits::EXPR_DEPTH {
            return Err(bad("expression nested too deep"));
        }
        match e {
            Expr::Const { width, .. } => Self::width(*width),
            Expr::Field(f) => self.field(*f, true).map(|_| ()),
            Expr::Param(n) => match self.params {
                Some(ps) if usize::from(*n) < ps.len() => Ok(()),
                _ => Err(bad(format!("parameter {n} outside an action that has it"))),
            },
            Expr::Valid(h) => self.header(*h),
            Expr::Unary { arg, width, .. } => {
                Self::width(*width)?;
                self.expr(arg, depth + 1)
            }
            Expr::Binary { lhs, rhs, width, .. } => {
                Self::width(*width)?;
                self.expr(lhs, depth + 1)?;
                self.expr(rhs, depth + 1)
            }
            Expr::Slice { arg, hi, lo } => {
                if lo > hi || *hi >= 64 {
                    return Err(bad(format!("slice [{hi}:{lo}]")));
                }
                self.expr(arg, depth + 1)
            }
            Expr::Cast { arg, width } => {
                Self::width(*width)?;
                self.expr(arg, depth + 1)
            }
        }
    }

    fn block(&mut self, b: &[Stmt], depth: usize) -> R {
        if depth > limits::BLOCK_DEPTH {
            return Err(bad("blocks nested too deep"));
        }
        self.stmts += b.len();
        if self.stmts > limits::STMTS {
            return Err(bad(format!("more than {} statements", limits::STMTS)));
        }
        for s in b {
            match s {
                Stmt::Assign { dst, value } => {
                    self.writable(*dst)?;
                    self.expr(value, 0)?;
                }
                Stmt::Apply { table, on_hit, on_miss } => {
                    if self.params.is_some() {
                        return Err(bad("an action applies a table"));
                    }
                    if usize::from(*table) >= self.p.tables.len() {
                        return Err(bad(format!("table {table} does not exist")));
                    }
                    self.block(on_hit, depth + 1)?;
                    self.block(on_miss, depth + 1)?;
                }
                Stmt::If { cond, then, otherwise } => {
                    self.expr(cond, 0)?;
                    self.block(then, depth + 1)?;
                    self.block(otherwise, depth + 1)?;
                }
                Stmt::Call { action, args } => {
                    if self.params.is_some() {
                        return Err(bad("an action calls an action"));
                    }
                    self.args(*action, args.len())?;
                    for a in args {
                        self.expr(a, 0)?;
                    }
                }
                Stmt::Drop | Stmt::Exit => {}
                Stmt::Count { counter, index } => {
                    if usize::from(*counter) >= self.p.counters.len() {
                        return Err(bad(format!("counter {counter} does not exist")));
                    }
                    if self.p.tables.iter().any(|t| t.direct_counter == Some(*counter)) {
                        return Err(bad(format!(
                            "counter {counter} is a table's direct counter: no index counts it"
                        )));
                    }
                    self.expr(index, 0)?;
                }
                Stmt::Meter { meter, index, dst } => {
                    if usize::from(*meter) >= self.p.meters.len() {
                        return Err(bad(format!("meter {meter} does not exist")));
                    }
                    if self.p.tables.iter().any(|t| t.direct_meter == Some(*meter)) {
                        return Err(bad(format!(
                            "meter {meter} is a table's direct meter: no index runs it"
                        )));
                    }
                    self.expr(index, 0)?;
                    self.writable(*dst)?;
                }
                Stmt::DirectMeter { meter, dst } => {
                    if self.params.is_none() {
                        return Err(bad("a direct meter is read outside an action"));
                    }
                    if !self.p.tables.iter().any(|t| t.direct_meter == Some(*meter)) {
                        return Err(bad(format!("meter {meter} is no table's direct meter")));
                    }
                    self.writable(*dst)?;
                }
            }
        }
        Ok(())
    }
}

impl ActionDef {
    /// The direct meters the action's body reads (`m.read(dst)`), in
    /// order: each must be the direct meter of every table that runs it.
    pub fn direct_meters(&self) -> Vec<u16> {
        let mut out = Vec::new();
        direct_meters_read(&self.body, &mut out);
        out
    }
}

/// The direct meters a block reads, in order.
fn direct_meters_read(b: &[Stmt], out: &mut Vec<u16>) {
    for s in b {
        match s {
            Stmt::DirectMeter { meter, .. } => out.push(*meter),
            Stmt::If { then, otherwise, .. } => {
                direct_meters_read(then, out);
                direct_meters_read(otherwise, out);
            }
            Stmt::Apply { on_hit, on_miss, .. } => {
                direct_meters_read(on_hit, out);
                direct_meters_read(on_miss, out);
            }
            _ => {}
        }
    }
}

/// Whether a block calls action `a` directly.
fn calls(b: &[Stmt], a: u16) -> bool {
    b.iter().any(|s| match s {
        Stmt::Call { action, .. } => *action == a,
        Stmt::If { then, otherwise, .. } => calls(then, a) || calls(otherwise, a),
        Stmt::Apply { on_hit, on_miss, .. } => calls(on_hit, a) || calls(on_miss, a),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table `t` (exact on metadata slot 8, 16 entries) with a direct
    /// counter and a direct meter, and action 1 `rd` reading the meter.
    fn direct() -> Program {
        let mut meta = std_meta::defs();
        meta.push(FieldDef {
            name: "color".into(),
            bit_off: 0,
            width: 2,
        });
        let color = FieldRef::Meta(std_meta::FIELDS.len() as u16);
        let table = |name: &str| TableDef {
            name: name.into(),
            keys: vec![KeyDef {
                expr: KeyExpr::Field(color),
                kind: MatchKind::Exact,
                width: 2,
                name: "meta.color".into(),
            }],
            actions: vec![0, 1],
            default_action: 0,
            default_args: vec![],
            size: 16,
            cost: 0,
            entries: vec![],
            direct_counter: Some(0),
            direct_meter: Some(0),
        };
        Program {
            name: "direct".into(),
            headers: vec![],
            meta,
            parser: vec![ParserState {
                name: "start".into(),
                cost: 0,
                ops: vec![],
                transition: Transition::Next(Next::Accept),
            }],
            actions: vec![
                ActionDef {
                    name: "NoAction".into(),
                    params: vec![],
                    body: vec![],
                    cost: 0,
                },
                ActionDef {
                    name: "rd".into(),
                    params: vec![],
                    body: vec![Stmt::DirectMeter { meter: 0, dst: color }],
                    cost: 0,
                },
            ],
            tables: vec![
                table("t"),
                TableDef {
                    direct_counter: None,
                    direct_meter: None,
                    actions: vec![0],
                    ..table("u")
                },
            ],
            meters: vec![MeterDef {
                name: "m".into(),
                size: 16,
                unit: MeterUnit::Bytes,
            }],
            counters: vec![CounterDef {
                name: "c".into(),
                size: 16,
                unit: CounterUnit::Packets,
            }],
            ingress: vec![
                Stmt::Apply {
                    table: 0,
                    on_hit: vec![],
                    on_miss: vec![],
                },
                Stmt::Apply {
                    table: 1,
                    on_hit: vec![],
                    on_miss: vec![],
                },
            ],
            deparse: vec![],
            base_cost: 0,
        }
    }

    #[test]
    fn direct_resources_keep_their_rules() {
        direct().validate().expect("the base program is valid");
        let refused = |edit: &dyn Fn(&mut Program), says: &str| {
            let mut p = direct();
            edit(&mut p);
            let e = p.validate().expect_err(says).to_string();
            assert!(e.contains(says), "{says:?} in {e}");
        };
        refused(
            &|p| p.counters[0].size = 8,
            "direct counter c has 8 cells for 16 entries",
        );
        refused(&|p| p.meters[0].size = 32, "direct meter m has 32 cells");
        refused(
            &|p| p.tables[0].direct_counter = Some(3),
            "direct counter 3 does not exist",
        );
        refused(
            &|p| p.tables[1].direct_counter = Some(0),
            "counter c is the direct counter of two tables",
        );
        refused(&|p| p.meters[0].name = "lif_bytes".into(), "per-LIF meter");
        refused(
            &|p| p.tables[1].actions = vec![0, 1],
            "action rd reads direct meter 0, which table u does not have",
        );
        refused(
            &|p| {
                p.ingress.push(Stmt::Call {
                    action: 1,
                    args: vec![],
                })
            },
            "only its table may run it",
        );
        refused(
            &|p| {
                p.ingress.push(Stmt::Count {
                    counter: 0,
                    index: Expr::Const { value: 0, width: 4 },
                })
            },
            "no index counts it",
        );
        refused(
            &|p| {
                p.ingress.push(Stmt::DirectMeter {
                    meter: 0,
                    dst: FieldRef::Meta(8),
                })
            },
            "outside an action",
        );
        refused(
            &|p| {
                p.tables[0].direct_meter = None;
                p.tables[0].actions = vec![0];
            },
            "meter 0 is no table's direct meter",
        );
    }
}
