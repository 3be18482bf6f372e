//! What the PF sets on the device: meters, interrupt moderation, the
//! pipeline program and its table entries.

use super::{read_struct, Nic, SCRATCH};
use crate::error::DriverError;
use dataplane::abi::{
    self, AdminCommand, DeviceInfo, DmaRef, IntoBytes, MeterConfig, MeterRef, MeterResource, Moderation, ModerationRef,
    TableEntry, LIF_NONE,
};

impl Nic {
    /// Set a LIF's meter (PF only); returns what the device applied.
    pub fn set_meter(&mut self, lif: u16, m: MeterConfig) -> Result<MeterConfig, DriverError> {
        self.admin(AdminCommand::MeterSet(m), lif)?;
        self.meter(lif, m.resource())
    }

    /// A LIF's applied meter for `resource`.
    pub fn meter(&mut self, lif: u16, resource: MeterResource) -> Result<MeterConfig, DriverError> {
        let r = MeterRef {
            resource: resource.raw(),
            dma: DmaRef::new(self.scratch.addr.get(), 48),
            ..Default::default()
        };
        self.admin(AdminCommand::MeterGet(r), lif)?;
        let m: MeterConfig = read_struct(&self.device, "MeterGet", &self.read_scratch(48)?)?;
        if m.resource != resource.raw() {
            return Err(self.lied(
                "MeterGet",
                "meter resource",
                m.resource,
                format!("{} (the resource asked for)", resource.raw()),
            ));
        }
        if abi::MeterMode::from_raw(m.mode).is_err() || abi::MeterPolicy::from_raw(m.policy).is_err() {
            return Err(self.lied(
                "MeterGet",
                "meter mode or policy",
                u64::from(m.mode) << 8 | u64::from(m.policy),
                "the modes and policies of the ABI (mode << 8 | policy)".into(),
            ));
        }
        Ok(m)
    }

    /// Load a pipeline program image into the device (PF only), in
    /// chunks through the scratch buffer; the device activates it with the
    /// last chunk, or refuses it whole (then the running pipeline stays).
    pub fn load_pipeline(&mut self, image: &[u8]) -> Result<(), DriverError> {
        let total =
            u32::try_from(image.len()).map_err(|_| self.other(format!("pipeline image of {} bytes", image.len())))?;
        let step = SCRATCH as usize;
        let n = image.len().div_ceil(step).max(1);
        for (i, chunk) in image.chunks(step).enumerate() {
            self.write_scratch(chunk)?;
            let mut flags = 0;
            if i == 0 {
                flags |= abi::pipeline_flags::FIRST;
            }
            if i + 1 == n {
                flags |= abi::pipeline_flags::LAST;
            }
            let c = abi::PipelineChunk {
                dma: DmaRef::new(self.scratch.addr.get(), chunk.len() as u32),
                offset: ((i * step) as u32).into(),
                total_len: total.into(),
                flags,
                rsvd: [0; 7],
            };
            self.admin(AdminCommand::PipelineLoad(c), LIF_NONE)?;
        }
        Ok(())
    }

    /// Whether the device runs a loaded pipeline program.
    pub fn pipeline_active(&mut self) -> Result<bool, DriverError> {
        Ok(self.device_info()?.pipeline_active != 0)
    }

    /// How the device runs the loaded program, in words (`None`: no
    /// program loaded): `DeviceInfo::pipeline_executor`, ABI 1.2.
    pub fn pipeline_executor(&mut self) -> Result<Option<String>, DriverError> {
        let info = self.device_info()?;
        Ok(describe_executor(&info))
    }

    /// The device's information, read again through the admin queue.
    pub fn device_info(&mut self) -> Result<DeviceInfo, DriverError> {
        let r = DmaRef::new(self.scratch.addr.get(), 128);
        self.admin(AdminCommand::Identify(r), LIF_NONE)?;
        let info: DeviceInfo = read_struct(&self.device, "Identify", &self.read_scratch(128)?)?;
        self.info = info;
        Ok(info)
    }

    /// Add a pipeline table entry (PF only).
    pub fn table_add(&mut self, e: &TableEntry) -> Result<(), DriverError> {
        self.write_scratch(e.as_bytes())?;
        let r = DmaRef::new(self.scratch.addr.get(), std::mem::size_of::<TableEntry>() as u32);
        self.admin(AdminCommand::TableEntryAdd(r), LIF_NONE).map(|_| ())
    }

    /// Delete a pipeline table entry (PF only; key and table as added).
    pub fn table_del(&mut self, e: &TableEntry) -> Result<(), DriverError> {
        self.write_scratch(e.as_bytes())?;
        let r = DmaRef::new(self.scratch.addr.get(), std::mem::size_of::<TableEntry>() as u32);
        self.admin(AdminCommand::TableEntryDel(r), LIF_NONE).map(|_| ())
    }

    /// Every entry of table `table` as the device holds it (PF only): the
    /// ones added with [`Nic::table_add`] and those the device installs
    /// itself (a LIF's MAC in `l2_fwd`), in the device's order, read a
    /// scratch buffer at a time with `TableEntryList`. A device that
    /// answers more than fits, an entry that does not parse or names
    /// another table, or more than `MAX_LISTED` entries is a lie.
    pub fn table_entries(&mut self, table: u32) -> Result<Vec<TableEntry>, DriverError> {
        self.table_entries_first(table, u64::MAX).map(|(entries, _)| entries)
    }

    /// The first `most` entries of table `table` in the device's order (at
    /// least; a page may bring more), and how many the table has: what a
    /// view of a big table needs without reading all of it. Checked as
    /// [`Nic::table_entries`] checks.
    pub fn table_entries_first(&mut self, table: u32, most: u64) -> Result<(Vec<TableEntry>, u64), DriverError> {
        /// More entries than any table of the device's programs holds.
        const MAX_LISTED: u64 = 1 << 20;
        let mut out = Vec::new();
        let names = ("TableEntryList", "entries", "entry count", "entries in the table");
        let total = self.read_pages::<TableEntry>(
            names,
            MAX_LISTED,
            most,
            |dma, from| {
                AdminCommand::TableEntryList(abi::TableListRef {
                    table_id: table.into(),
                    from: from.into(),
                    dma,
                })
            },
            |nic, b| {
                let e = TableEntry::parse(b)
                    .ok()
                    .filter(|e| e.table_id.get() == table)
                    .ok_or_else(|| {
                        nic.lied(
                            "TableEntryList",
                            "entry",
                            table,
                            "a valid entry of the table asked for".into(),
                        )
                    })?;
                out.push(e);
                Ok(())
            },
        )?;
        Ok((out, total))
    }

    /// Every entry of table `table` with its direct counter and meter
    /// (PF only, ABI 1.6), in the device's order, read a scratch buffer at
    /// a time with `TableDataList`. Checked as [`Nic::table_entries`]
    /// checks; a record with unknown flags, a slot past the table's
    /// limit, nonzero reserved bytes, or a meter that is not a valid
    /// `MeterConfig` is a lie too.
    pub fn table_data(&mut self, table: u32) -> Result<Vec<abi::TableEntryData>, DriverError> {
        self.table_data_first(table, u64::MAX).map(|(d, _)| d)
    }

    /// The first `most` entries of [`Nic::table_data`] (at least; a page
    /// may bring more), and how many the table has.
    pub fn table_data_first(&mut self, table: u32, most: u64) -> Result<(Vec<abi::TableEntryData>, u64), DriverError> {
        const MAX_LISTED: u64 = 1 << 20;
        let mut out = Vec::new();
        let names = ("TableDataList", "entries", "entry count", "entries in the table");
        let total = self.read_pages::<abi::TableEntryData>(
            names,
            MAX_LISTED,
            most,
            |dma, from| {
                AdminCommand::TableDataList(abi::TableListRef {
                    table_id: table.into(),
                    from: from.into(),
                    dma,
                })
            },
            |nic, b| {
                let d = listed_data(b, table).ok_or_else(|| {
                    nic.lied(
                        "TableDataList",
                        "entry",
                        table,
                        "a valid entry of the table asked for, with known flags and a valid meter".into(),
                    )
                })?;
                out.push(d);
                Ok(())
            },
        )?;
        Ok((out, total))
    }

    /// Set the direct counter and/or meter of the entry `d.entry` names, as
    /// `d.flags` says (PF only, ABI 1.6; `TableDataSet`).
    pub fn set_table_data(&mut self, d: &abi::TableEntryData) -> Result<(), DriverError> {
        self.write_scratch(d.as_bytes())?;
        let r = DmaRef::new(
            self.scratch.addr.get(),
            std::mem::size_of::<abi::TableEntryData>() as u32,
        );
        self.admin(AdminCommand::TableDataSet(r), LIF_NONE).map(|_| ())
    }

    /// Every cell of the loaded program's meter array `meter` as the device
    /// applied it (PF only, ABI 1.6), read a scratch buffer at a time with
    /// `PipelineMeterGet`. A device that answers more cells than fit, more
    /// than it says the array has, an array past the programs' limit, or a
    /// config `MeterSet` would not take is a lie.
    pub fn pipeline_meters(&mut self, meter: u32) -> Result<Vec<abi::MeterConfig>, DriverError> {
        let limit = u64::from(dataplane::pipeline::limits::ARRAY_SIZE);
        let mut out = Vec::new();
        let names = ("PipelineMeterGet", "cells", "cell count", "cells in the array");
        self.read_pages::<abi::MeterConfig>(
            names,
            limit,
            u64::MAX,
            |dma, from| {
                AdminCommand::PipelineMeterGet(abi::PipelineMeterRef {
                    meter_id: meter.into(),
                    from: from.into(),
                    dma,
                })
            },
            |nic, b| {
                let c = <abi::MeterConfig as abi::FromBytes>::read_from_bytes(b)
                    .ok()
                    .filter(|c| c.validate().is_ok())
                    .ok_or_else(|| nic.lied("PipelineMeterGet", "cell", meter, "a valid MeterConfig".into()))?;
                out.push(c);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Configure cell `index` of the loaded program's indexed meter array
    /// `meter` (PF only, ABI 1.6; `PipelineMeterSet`): `cfg.resource` the
    /// array's unit.
    pub fn set_pipeline_meter(&mut self, meter: u32, index: u32, cfg: &abi::MeterConfig) -> Result<(), DriverError> {
        let m = abi::PipelineMeterSet {
            meter_id: meter.into(),
            index: index.into(),
            config: *cfg,
        };
        self.admin(AdminCommand::PipelineMeterSet(m), LIF_NONE).map(|_| ())
    }

    /// Every cell of the loaded program's counter array `counter` (PF
    /// only; `(packets, bytes)` each), read a scratch buffer at a time with
    /// `PipelineCounterGet`. A device that answers more cells than fit,
    /// more than it says the array has, or an array past the programs'
    /// limit (`limits::ARRAY_SIZE`) is a lie.
    pub fn pipeline_counters(&mut self, counter: u32) -> Result<Vec<(u64, u64)>, DriverError> {
        let limit = u64::from(dataplane::pipeline::limits::ARRAY_SIZE);
        let mut out = Vec::new();
        let names = ("PipelineCounterGet", "cells", "cell count", "cells in the array");
        self.read_pages::<abi::CounterCell>(
            names,
            limit,
            u64::MAX,
            |dma, from| {
                AdminCommand::PipelineCounterGet(abi::CounterRef {
                    counter_id: counter.into(),
                    from: from.into(),
                    dma,
                })
            },
            |_, b| {
                if let Ok(c) = <abi::CounterCell as abi::FromBytes>::read_from_bytes(b) {
                    out.push((c.packets.get(), c.bytes.get()));
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Set cell `index` of the loaded program's counter array `counter`
    /// (every cell with `None`) to `packets` and `bytes`; zero resets it
    /// (PF only, ABI 1.5). Returns the cells the device says it set.
    pub fn set_pipeline_counter(
        &mut self,
        counter: u32,
        index: Option<u32>,
        packets: u64,
        bytes: u64,
    ) -> Result<u32, DriverError> {
        let c = abi::CounterSet {
            counter_id: counter.into(),
            index: index.unwrap_or(abi::COUNTER_ALL_CELLS).into(),
            packets: packets.into(),
            bytes: bytes.into(),
        };
        let done = self.admin(AdminCommand::PipelineCounterSet(c), LIF_NONE)?.value.get();
        let most = if index.is_some() {
            1
        } else {
            dataplane::pipeline::limits::ARRAY_SIZE
        };
        if done > most {
            return Err(self.lied("PipelineCounterSet", "cells set", done, format!("0..={most}")));
        }
        Ok(done)
    }

    /// A listing the device writes in pages of `T`s into the scratch
    /// buffer: `cmd(dma, from)` asks for items from index `from` on, the
    /// device answers `value` = items written, `data` = items there are;
    /// each item's bytes go to `take`, until there are no more or `most`
    /// have been taken (after the page that reaches it). `names` are the
    /// command, the items, and the two figures as a lie names them; a page
    /// past the buffer, a total past `limit` or below what was read is a
    /// lie. Returns the total the device gave last.
    fn read_pages<T>(
        &mut self,
        names: (&'static str, &'static str, &'static str, &'static str),
        limit: u64,
        most: u64,
        cmd: impl Fn(DmaRef, u32) -> AdminCommand,
        mut take: impl FnMut(&Self, &[u8]) -> Result<(), DriverError>,
    ) -> Result<u64, DriverError> {
        let (command, items, count, in_all) = names;
        let size = std::mem::size_of::<T>();
        let mut done = 0u64;
        loop {
            // A page of what is still wanted, at most the scratch buffer.
            let room = (SCRATCH / size as u64).min(most.saturating_sub(done)).max(1);
            let dma = DmaRef::new(self.scratch.addr.get(), (room * size as u64) as u32);
            let c = self.admin(cmd(dma, done as u32), LIF_NONE)?;
            let (n, total) = (u64::from(c.value.get()), c.data.get());
            if n > room {
                return Err(self.lied(
                    command,
                    count,
                    n,
                    format!(
                        "0..={room} (the {items} that fit the {}-byte buffer)",
                        room * size as u64
                    ),
                ));
            }
            if total > limit || done + n > total {
                return Err(self.lied(
                    command,
                    in_all,
                    total,
                    format!("{}..={limit} (those read so far and this page)", done + n),
                ));
            }
            let bytes = self.read_scratch(n as usize * size)?;
            for b in bytes.chunks_exact(size) {
                take(self, b)?;
            }
            done += n;
            if n == 0 || done >= total || done >= most {
                return Ok(total);
            }
        }
    }

    /// Set a vector's moderation; returns what the device applied.
    pub fn set_moderation(&mut self, m: Moderation) -> Result<Moderation, DriverError> {
        self.admin(AdminCommand::ModerationSet(m), LIF_NONE)?;
        self.moderation(m.vector.get())
    }

    /// A vector's applied moderation.
    pub fn moderation(&mut self, vector: u16) -> Result<Moderation, DriverError> {
        let r = ModerationRef {
            vector: vector.into(),
            dma: DmaRef::new(self.scratch.addr.get(), 16),
            ..Default::default()
        };
        self.admin(AdminCommand::ModerationGet(r), LIF_NONE)?;
        let m: Moderation = read_struct(&self.device, "ModerationGet", &self.read_scratch(16)?)?;
        if m.vector.get() != vector {
            return Err(self.lied(
                "ModerationGet",
                "vector",
                m.vector.get(),
                format!("{vector} (the vector asked for)"),
            ));
        }
        if abi::ModerationMode::from_raw(m.mode).is_err() {
            return Err(self.lied(
                "ModerationGet",
                "moderation mode",
                m.mode,
                "the modes of the ABI".into(),
            ));
        }
        Ok(m)
    }
}

/// [`DeviceInfo::pipeline_executor`] in words; `None` without a loaded
/// program.
pub fn describe_executor(info: &DeviceInfo) -> Option<String> {
    use abi::pipeline_executor as ex;
    if info.pipeline_active == 0 {
        return None;
    }
    Some(match info.pipeline_executor {
        ex::COMPILED => format!("compiled to machine code ({} bytes)", info.pipeline_code_bytes.get()),
        ex::REFERENCE => "the reference executor (interpreted)".to_string(),
        ex::NONE if info.abi_minor.get() < 2 => format!(
            "not reported (device ABI {}.{} predates it)",
            info.abi_major.get(),
            info.abi_minor.get()
        ),
        other => format!("unknown executor code {other}"),
    })
}

/// A `TableDataList` record as a driver takes it: its entry valid and of
/// `table`, flags known, slot below the largest table, reserved bytes zero,
/// and its meter (when flagged) a config `MeterSet` would take, zero when
/// not. `None`: the device lied.
fn listed_data(b: &[u8], table: u32) -> Option<abi::TableEntryData> {
    let d = <abi::TableEntryData as abi::FromBytes>::read_from_bytes(b).ok()?;
    let e = TableEntry::parse(d.entry.as_bytes()).ok()?;
    let flags = d.flags.get();
    let ok = e.table_id.get() == table
        && flags & !abi::table_data_flags::ALL == 0
        && d.slot.get() < dataplane::pipeline::limits::TABLE_SIZE
        && d.rsvd == [0; 8]
        && (flags & abi::table_data_flags::COUNTER != 0 || (d.packets.get() == 0 && d.bytes.get() == 0));
    let meter_ok = if flags & abi::table_data_flags::METER != 0 {
        // What the device applied must be a config it would take back.
        d.meter.validate().is_ok()
    } else {
        d.meter.as_bytes().iter().all(|&x| x == 0)
    };
    (ok && meter_ok).then_some(d)
}
