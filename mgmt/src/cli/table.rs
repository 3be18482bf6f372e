//! `nicctl table`: entries of the loaded P4 program's tables.

use super::{json_line, unexpected, Ctx, Failure};
use crate::proto::{Answer, Request};
use clap::Subcommand;
use std::io::Write;

#[derive(Debug, Subcommand)]
pub(super) enum TableCmd {
    /// Add an entry: one --key per key field in order (MAC, IPv4, number;
    /// `10.0.0.0/8` for LPM; `value&&&mask` or `*` for ternary).
    Add {
        table: String,
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        #[arg(long)]
        action: String,
        /// One per action parameter, in order.
        #[arg(long = "arg")]
        args: Vec<String>,
        /// Ternary entries: larger wins.
        #[arg(long, default_value_t = 0)]
        priority: u32,
    },
    /// Delete the entry with these keys (and priority).
    Del {
        table: String,
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        #[arg(long, default_value_t = 0)]
        priority: u32,
    },
    /// The program's tables (or one) with their entries as the device
    /// holds them (added here, over P4Runtime, or by the device itself).
    Show { table: Option<String> },
}

/// Run `nicctl table ...`.
pub(super) fn run(ctx: &Ctx, cmd: &TableCmd, out: &mut dyn Write) -> Result<(), Failure> {
    let req = match cmd {
        TableCmd::Add {
            table,
            keys,
            action,
            args,
            priority,
        } => Request::TableAdd {
            table: table.clone(),
            keys: keys.clone(),
            action: action.clone(),
            args: args.clone(),
            priority: *priority,
        },
        TableCmd::Del { table, keys, priority } => Request::TableDel {
            table: table.clone(),
            keys: keys.clone(),
            priority: *priority,
        },
        TableCmd::Show { table } => Request::TableShow { table: table.clone() },
    };
    let a = (ctx.call)(&req)?;
    if ctx.json {
        return json_line(out, &a);
    }
    write_tables(out, &a)
}

fn write_tables(out: &mut dyn Write, a: &Answer) -> Result<(), Failure> {
    let Answer::Tables {
        program,
        tables,
        executor,
    } = a
    else {
        return Err(unexpected(a));
    };
    if let Some(e) = executor {
        writeln!(out, "{program}: executor: {e}")?;
    }
    for t in tables {
        let total = t.total.max(t.entries.len());
        let shown = if t.entries.len() < total {
            format!(" (the first {} shown)", t.entries.len())
        } else {
            String::new()
        };
        writeln!(
            out,
            "{program}.{} (table {}): key {}; actions {}; default {}; size {}; {} entr{}{shown}",
            t.name,
            t.id,
            t.keys.join(", "),
            t.actions.join(", "),
            t.default_action,
            t.size,
            total,
            if total == 1 { "y" } else { "ies" }
        )?;
        for e in &t.entries {
            let prio = if e.priority != 0 {
                format!(" priority {}", e.priority)
            } else {
                String::new()
            };
            let counter = e
                .counter
                .map_or(String::new(), |(p, b)| format!("; hits {p} packets {b} bytes"));
            let meter = e.meter.as_ref().map_or(String::new(), |m| format!("; meter {m}"));
            writeln!(
                out,
                "  {} -> {}({}){prio}{counter}{meter}",
                e.keys.join(", "),
                e.action,
                e.args.join(", ")
            )?;
        }
    }
    Ok(())
}
