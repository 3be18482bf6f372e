//! P4Runtime meter entries onto the device's per-LIF meters.
//!
//! A program's meter arrays named in [`dataplane::pipeline::LIF_METERS`]
//! (fairnic.p4's `lif_packets` and `lif_bytes`, indexed by LIF) are the
//! device's own LIF meters: a `MeterEntry` of cell `i` sets LIF `i`'s
//! `Packets` or `Bytes` meter with `MeterSet`, in the meter's unit (packets
//! per second and packets, bytes per second and bytes, as P4Runtime's
//! `MeterConfig` has them), and reads back what the device applied (it
//! rounds to its granularity). The LIF's policy for red is kept.
//!
//! A config with `pir` and `pburst` zero and `eburst` set is a single-rate
//! meter (RFC 2697: `cir`, `cburst`, `eburst`), any other a two-rate one
//! (RFC 2698: `cir`, `cburst`, `pir`, `pburst`; `eburst` must be zero); no
//! config turns the meter off (everything green), as the specification
//! says of a reset. The program's other indexed meter arrays are the
//! device's program meters (`PipelineMeterSet`/`Get`, device ABI 1.6), cell
//! by cell in the array's unit; direct meters are `DirectMeterEntry`s.

use crate::entries::Refusal;
use crate::p4info::Ids;
use crate::proto::p4::v1 as p4v1;
use dataplane::abi::{MeterConfig, MeterMode, MeterResource};
use dataplane::pipeline::{lif_meter_resource, Program};
use tonic::Code;

/// What a P4Runtime meter id names: a per-LIF meter array, or another
/// indexed array of the program's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Array {
    /// Cell `i` is LIF `i`'s meter of this resource.
    Lif(MeterResource),
    /// The program's own array, in this unit (`Packets` or `Bytes`).
    Program(MeterResource),
}

/// The meter array behind a P4Runtime meter id: its index in the program,
/// its size and what it is. A direct meter's id is refused: it is a
/// `DirectMeterEntry`.
pub fn meter_array(program: &Program, ids: &Ids, meter_id: u32) -> Result<(usize, u32, Array), Refusal> {
    let Some(m) = ids.meters.iter().position(|&id| id == meter_id) else {
        return Err((Code::NotFound, format!("no meter with id {meter_id:#x}")));
    };
    let def = &program.meters[m];
    if Ids::is_direct(meter_id) {
        return Err((
            Code::InvalidArgument,
            format!("meter {}: a direct meter, set and read as DirectMeterEntry", def.name),
        ));
    }
    let array = match lif_meter_resource(&def.name) {
        Some(r) => Array::Lif(r),
        None => Array::Program(def.unit.resource()),
    };
    Ok((m, def.size, array))
}

/// The cell a meter entry's index names (a per-LIF array's: the LIF),
/// checked against the array's size; a write needs one.
pub fn cell_of<T: TryFrom<i64>>(index: Option<&p4v1::Index>, size: u32, name: &str) -> Result<T, Refusal> {
    let Some(i) = index else {
        return Err((
            Code::InvalidArgument,
            format!("meter {name}: an entry to write needs an index"),
        ));
    };
    crate::entries::array_index("meter", name, i.index, size)
}

/// The device's config for a P4Runtime one (`None`: off), keeping
/// `policy`.
pub fn to_device(resource: MeterResource, policy: u8, c: Option<&p4v1::MeterConfig>) -> Result<MeterConfig, Refusal> {
    let mut out = MeterConfig {
        resource: resource.raw(),
        mode: MeterMode::Off.raw(),
        policy,
        ..Default::default()
    };
    let Some(c) = c else { return Ok(out) };
    let v =
        |x: i64, what: &str| u64::try_from(x).map_err(|_| (Code::InvalidArgument, format!("{what} {x} is negative")));
    let (cir, cburst, pir, pburst, eburst) = (
        v(c.cir, "cir")?,
        v(c.cburst, "cburst")?,
        v(c.pir, "pir")?,
        v(c.pburst, "pburst")?,
        v(c.eburst, "eburst")?,
    );
    if pir == 0 && pburst == 0 && eburst != 0 {
        out.mode = MeterMode::SrTcm.raw();
        out.eburst = eburst.into();
    } else {
        if eburst != 0 {
            return Err((
                Code::InvalidArgument,
                "eburst is for a single-rate meter (pir and pburst 0)".into(),
            ));
        }
        out.mode = MeterMode::TrTcm.raw();
        out.pir = pir.into();
        out.pburst = pburst.into();
    }
    out.cir = cir.into();
    out.cburst = cburst.into();
    Ok(out)
}

/// The P4Runtime config for what the device applied (`None`: off).
pub fn from_device(m: &MeterConfig) -> Option<p4v1::MeterConfig> {
    let i = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
    match m.mode() {
        MeterMode::Off => None,
        _ => Some(p4v1::MeterConfig {
            cir: i(m.cir.get()),
            cburst: i(m.cburst.get()),
            pir: i(m.pir.get()),
            pburst: i(m.pburst.get()),
            eburst: i(m.eburst.get()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(cir: i64, cburst: i64, pir: i64, pburst: i64, eburst: i64) -> p4v1::MeterConfig {
        p4v1::MeterConfig {
            cir,
            cburst,
            pir,
            pburst,
            eburst,
        }
    }

    #[test]
    fn configs_map_to_the_devices_modes_and_back() {
        let two = to_device(MeterResource::Bytes, 1, Some(&cfg(1000, 64, 2000, 128, 0))).unwrap();
        assert_eq!(
            (two.mode(), two.policy, two.resource(), two.cir.get(), two.pburst.get()),
            (MeterMode::TrTcm, 1, MeterResource::Bytes, 1000, 128)
        );
        assert_eq!(from_device(&two), Some(cfg(1000, 64, 2000, 128, 0)));
        let one = to_device(MeterResource::Packets, 0, Some(&cfg(10, 5, 0, 0, 7))).unwrap();
        assert_eq!((one.mode(), one.eburst.get()), (MeterMode::SrTcm, 7));
        assert_eq!(from_device(&one), Some(cfg(10, 5, 0, 0, 7)));
        let off = to_device(MeterResource::Packets, 2, None).unwrap();
        assert_eq!((off.mode(), off.policy, from_device(&off)), (MeterMode::Off, 2, None));
        for bad in [cfg(-1, 0, 0, 0, 0), cfg(1, 1, 2, 2, 3)] {
            assert_eq!(
                to_device(MeterResource::Bytes, 0, Some(&bad)).unwrap_err().0,
                Code::InvalidArgument
            );
        }
    }

    #[test]
    fn indices_are_lifs_within_the_array() {
        let at = |i: i64| cell_of::<u16>(Some(&p4v1::Index { index: i }), 64, "lif_bytes");
        assert_eq!(at(3), Ok(3));
        for bad in [-1, 64, 1 << 40] {
            assert_eq!(at(bad).unwrap_err().0, Code::OutOfRange);
        }
        assert_eq!(cell_of::<u16>(None, 64, "m").unwrap_err().0, Code::InvalidArgument);
    }
}
