//! Pipeline table entries: from the text nicctl sends (keys, action,
//! arguments) to the ABI's `TableEntry` against the loaded program, and
//! the tables as `nicctl table show` lists them.

use dataplane::abi::{FromZeros, TableEntry};
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
    let mut e = TableEntry::new_zeroed();
    e.table_id = u32::from(t).into();
    e.priority = priority.into();
    let mut at = 0usize;
    let mut shown = Vec::with_capacity(keys.len());
    for (k, text) in def.keys.iter().zip(keys) {
        let kind = kind_of(k.kind);
        let m = tables::parse_match(text, k.width, kind).map_err(|why| format!("key {}: {why}", k.name))?;
        let n = usize::from(k.width).div_ceil(8);
        if at + n > e.key.len() {
            return Err(format!("table {table}: key longer than {} bytes", e.key.len()));
        }
        let vb = m.value.to_be_bytes();
        let mb = m.mask.to_be_bytes();
        e.key[at..at + n].copy_from_slice(&vb[16 - n..]);
        if k.kind == MatchKind::Ternary {
            e.mask[at..at + n].copy_from_slice(&mb[16 - n..]);
        } else if k.kind == MatchKind::Exact {
            e.mask[at..at + n].fill(0xff);
        } else {
            e.prefix_len = m.prefix.into();
        }
        shown.push(tables::format_match(&m, k.width, kind, is_address(&k.name)));
        at += n;
    }
    e.key_len = at as u8;
    let mut row = TableEntryRow {
        keys: shown,
        action: String::new(),
        args: Vec::new(),
        priority,
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
        let mut at = 0usize;
        for (p, text) in act.params.iter().zip(args) {
            let v = tables::parse_value(text, p.width).map_err(|why| format!("argument {}: {why}", p.name))?;
            let n = usize::from(p.width).div_ceil(8);
            if at + n > e.params.len() {
                return Err(format!(
                    "action {name}: parameters longer than {} bytes",
                    e.params.len()
                ));
            }
            e.params[at..at + n].copy_from_slice(&v.to_be_bytes()[16 - n..]);
            row.args.push(tables::format_value(v, p.width, false));
            at += n;
        }
        e.param_len = at as u8;
        e.action_id = u32::from(a).into();
        row.action = name.to_string();
    }
    Ok((e, row))
}

/// The program's table names, for messages.
pub(super) fn table_names(p: &Program) -> String {
    p.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// Table `id` of `p` as `nicctl table show` lists it, with `entries`.
pub(super) fn view(p: &Program, id: usize, entries: &[TableEntryRow]) -> TableView {
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
        entries: entries.to_vec(),
    }
}
