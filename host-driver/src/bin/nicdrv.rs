//! nicdrv: fairnic's userspace driver.
//!
//! For now it prints the device ABI it is written against (the driver
//! proper, its apps and the embedded simulator arrive with the driver
//! issue).

use dataplane::abi::{self, layout};
use std::process::ExitCode;

const USAGE: &str = "usage: nicdrv [abi] [--markdown]

  abi          print the device ABI summary (the default)
  --markdown   print it as the Markdown tables of docs/device-abi.md
  -h, --help   this text";

fn main() -> ExitCode {
    let mut markdown = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "abi" => {}
            "--markdown" => markdown = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("nicdrv: unknown argument '{other}'\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if markdown {
        print!("{}", layout::markdown());
    } else {
        print!("{}", summary());
    }
    ExitCode::SUCCESS
}

fn summary() -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "fairnic device ABI {}.{}  (PCI {:04x}:{:04x} PF, {:04x}:{:04x} VF)\n",
        abi::ABI_MAJOR,
        abi::ABI_MINOR,
        abi::PCI_VENDOR_ID,
        abi::PCI_DEVICE_ID_PF,
        abi::PCI_VENDOR_ID,
        abi::PCI_DEVICE_ID_VF
    );
    let _ = writeln!(s, "BAR0");
    for (off, size, what) in layout::bar0_map() {
        let _ = writeln!(s, "  {off:#07x} +{size:<#7x} {what}");
    }
    let _ = writeln!(s, "\nStructures (offset:size, little-endian)");
    for st in layout::structs() {
        let fields: Vec<String> = st
            .fields
            .iter()
            .filter(|f| !f.name.starts_with("rsvd"))
            .map(|f| format!("{}@{}:{}", f.name, f.offset, f.size))
            .collect();
        let _ = writeln!(s, "  {:<16} {:>4} B  {}", st.name, st.size, fields.join(" "));
    }
    let _ = writeln!(s, "\nEnumerations");
    for en in layout::enums() {
        let values: Vec<String> = en.values.iter().map(|(n, v)| format!("{n}={v:#x}")).collect();
        let _ = writeln!(s, "  {:<14} {}", en.name, values.join(" "));
    }
    let _ = writeln!(s, "\nSpec: docs/device-abi.md");
    s
}
