//! Pipeline table entries: from the text nicctl sends (keys, action,
//! arguments) to the ABI's `TableEntry` against the loaded program, and
//! the tables as `nicctl table show` lists them.

use dataplane::abi::{EntryLayoutError, TableEntry};
use dataplane::pipeline::{MatchKind, Program};
use mgmt::proto::{TableEntryRow, TableView};
use mgmt::tables;

/// The match kind as the text parser knows it.
fn kind_of(k: MatchKind) -> tables::Kind {
    match k {
        MatchKind::Exact => tables::Kind::Exact,
        MatchKind::Lpm => tables::Kind::Lpm,
        MatchKind::Ternary => tables::Kind::Ternary,
    }
}

/// Whether a key reads as an address (dotted IPv4) when shown.
fn is_address(name: &str) -> bool {
    name.contains("addr")
}

/// The ABI entry for `keys` (text) in table `t` of `prog`, with `action`
/// and `args` when adding; also the row as it will be shown.
pub(super) fn encode_entry(
    prog: &Program,
    table: &str,
    keys: &[String],
    action: Option<(&str, &[String])>,
    priority: u32,
) -> Result<(TableEntry, TableEntryRow), String> {
    let (t, def) = prog
        .table(table)
        .ok_or_else(|| format!("no table '{table}' in {} (tables: {})", prog.name, table_names(prog)))?;
    if keys.len() != def.keys.len() {
        return Err(format!(
            "table {table} has {} key field(s) ({}), given {}",
            def.keys.len(),
            def.keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", "),
            keys.len()
        ));
    }
    let mut e = TableEntry::builder(u32::from(t), priority);
    let layout = |why: EntryLayoutError| format!("table {table}: {why}");
    let mut shown = Vec::with_capacity(keys.len());
    for (k, text) in def.keys.iter().zip(keys) {
        let kind = kind_of(k.kind);
        let m = tables::parse_match(text, k.width, kind).map_err(|why| format!("key {}: {why}", k.name))?;
        match k.kind {
            MatchKind::Ternary => e.key(k.width, m.value, m.mask),
            MatchKind::Exact => e.exact(k.width, m.value),
            MatchKind::Lpm => e.key(k.width, m.value, 0).map(|e| e.prefix_len(m.prefix)),
        }
        .map_err(layout)?;
        shown.push(tables::format_match(&m, k.width, kind, is_address(&k.name)));
    }
    let mut row = TableEntryRow {
        keys: shown,
        action: String::new(),
        args: Vec::new(),
        priority,
        counter: None,
        meter: None,
    };
    if let Some((name, args)) = action {
        let (a, act) = prog
            .action(name)
            .filter(|(a, _)| def.actions.contains(a))
            .ok_or_else(|| {
                let names: Vec<&str> = def
                    .actions
                    .iter()
                    .map(|&a| prog.actions[usize::from(a)].name.as_str())
                    .collect();
                format!("table {table} has no action '{name}' (actions: {})", names.join(", "))
            })?;
        if args.len() != act.params.len() {
            return Err(format!(
                "action {name} takes {} argument(s) ({}), given {}",
                act.params.len(),
                act.params
                    .iter()
                    .map(|p| format!("{}:{}", p.name, p.width))
                    .collect::<Vec<_>>()
                    .join(", "),
                args.len()
            ));
        }
        for (p, text) in act.params.iter().zip(args) {
            let v = tables::parse_value(text, p.width).map_err(|why| format!("argument {}: {why}", p.name))?;
            e.param(p.width, v).map_err(|why| format!("action {name}: {why}"))?;
            row.args.push(tables::format_value(v, p.width, false));
        }
        e.action(u32::from(a));
        row.action = name.to_string();
    }
    Ok((e.build(), row))
}

/// The row `nicctl table show` gives for entry `e` of table `t`, as the
/// device lists it (`TableEntryList`); `None` for an entry that does not
/// fit the table's key or its action's parameters.
pub(super) fn row_of(prog: &Program, t: usize, e: &TableEntry) -> Option<TableEntryRow> {
    let def = prog.tables.get(t)?;
    let fields = e.key_fields(def.keys.iter().map(|k| k.width))?;
    let keys = def
        .keys
        .iter()
        .zip(fields)
        .map(|(k, (value, mask))| {
            let prefix = if k.kind == MatchKind::Lpm {
                e.prefix_len.get()
            } else {
                0
            };
            let m = tables::Match { value, mask, prefix };
            tables::format_match(&m, k.width, kind_of(k.kind), is_address(&k.name))
        })
        .collect();
    let act = prog.actions.get(usize::try_from(e.action_id.get()).ok()?)?;
    let args = e
        .param_fields(act.params.iter().map(|p| p.width))?
        .into_iter()
        .zip(&act.params)
        .map(|(v, p)| tables::format_value(v, p.width, false))
        .collect();
    Some(TableEntryRow {
        keys,
        action: act.name.clone(),
        args,
        priority: e.priority.get(),
        counter: None,
        meter: None,
    })
}

/// The row of a `TableDataList` record: [`row_of`] its entry, with its
/// direct counter and meter where the device says the table has them.
pub(super) fn row_of_data(prog: &Program, t: usize, d: &dataplane::abi::TableEntryData) -> Option<TableEntryRow> {
    use dataplane::abi::{table_data_flags as f, MeterMode};
    let mut row = row_of(prog, t, &d.entry)?;
    let flags = d.flags.get();
    if flags & f::COUNTER != 0 {
        row.counter = Some((d.packets.get(), d.bytes.get()));
    }
    if flags & f::METER != 0 {
        let m = &d.meter;
        let unit = if m.resource() == dataplane::abi::MeterResource::Packets {
            "packets"
        } else {
            "bytes"
        };
        row.meter = Some(match m.mode() {
            MeterMode::Off => "off".into(),
            MeterMode::SrTcm => format!(
                "srtcm cir {}/s cburst {} eburst {} ({unit})",
                m.cir.get(),
                m.cburst.get(),
                m.eburst.get()
            ),
            MeterMode::TrTcm => format!(
                "trtcm cir {}/s cburst {} pir {}/s pburst {} ({unit})",
                m.cir.get(),
                m.cburst.get(),
                m.pir.get(),
                m.pburst.get()
            ),
        });
    }
    Some(row)
}

/// The program's table names, for messages.
pub(super) fn table_names(p: &Program) -> String {
    p.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// Table `id` of `p` as `nicctl table show` lists it, with the first of
/// its `total` entries.
pub(super) fn view(p: &Program, id: usize, entries: &[TableEntryRow], total: usize) -> TableView {
    let t = &p.tables[id];
    let kind = |k: MatchKind| match k {
        MatchKind::Exact => "exact",
        MatchKind::Lpm => "lpm",
        MatchKind::Ternary => "ternary",
    };
    TableView {
        name: t.name.clone(),
        id: id as u16,
        keys: t
            .keys
            .iter()
            .map(|k| format!("{}:{}:{}", k.name, kind(k.kind), k.width))
            .collect(),
        actions: t
            .actions
            .iter()
            .map(|&a| {
                let a = &p.actions[usize::from(a)];
                let ps: Vec<String> = a.params.iter().map(|x| format!("{}:{}", x.name, x.width)).collect();
                format!("{}({})", a.name, ps.join(", "))
            })
            .collect(),
        default_action: p.actions[usize::from(t.default_action)].name.clone(),
        size: t.size,
        entries: entries.iter().take(mgmt::proto::MAX_TABLE_ROWS).cloned().collect(),
        total,
    }
}
