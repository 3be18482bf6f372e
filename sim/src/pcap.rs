//! The classic libpcap file format (what tcpdump writes and Wireshark,
//! tshark and scapy read): a 24-byte global header, then a 16-byte record
//! header before each frame.
//!
//! The writer always writes nanosecond timestamps (magic `0xa1b23c4d`) and
//! link type Ethernet. The reader takes either byte order and either
//! timestamp resolution, and treats the file as untrusted: a bad magic, a
//! record longer than the snap length or the file, or a truncated header
//! is an error naming what was wrong, never a panic.

use std::io::{self, Read, Write};

/// Magic of a microsecond-resolution file, in the writer's byte order.
pub const MAGIC_US: u32 = 0xa1b2_c3d4;
/// Magic of a nanosecond-resolution file.
pub const MAGIC_NS: u32 = 0xa1b2_3c4d;
/// Link type: Ethernet.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Snap length we write and the largest record we accept.
pub const SNAPLEN: u32 = 65535;

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("pcap: {0}")]
    Io(#[from] io::Error),
    #[error("pcap: bad magic {0:#010x} (not a pcap file; pcapng is not supported)")]
    BadMagic(u32),
    #[error("pcap: link type {0} is not Ethernet (1)")]
    LinkType(u32),
    #[error("pcap: record {index}: captured length {incl_len} exceeds {limit}")]
    RecordTooLong { index: u64, incl_len: u32, limit: u32 },
    #[error("pcap: record {index}: truncated ({what})")]
    Truncated { index: u64, what: &'static str },
}

/// One frame read from a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapRecord {
    /// Timestamp in nanoseconds since the epoch of the capture.
    pub ts_ns: u64,
    /// The frame as captured.
    pub data: Vec<u8>,
    /// Length of the frame on the wire.
    pub orig_len: u32,
}

/// Reads a capture frame by frame.
#[derive(Debug)]
pub struct PcapReader<R: Read> {
    input: R,
    swapped: bool,
    nanos: bool,
    snaplen: u32,
    index: u64,
}

impl<R: Read> PcapReader<R> {
    /// Read and check the global header.
    pub fn new(mut input: R) -> Result<Self, PcapError> {
        let mut h = [0u8; 24];
        input.read_exact(&mut h).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => PcapError::Truncated {
                index: 0,
                what: "global header",
            },
            _ => PcapError::Io(e),
        })?;
        let magic = u32::from_le_bytes(h[0..4].try_into().expect("4 bytes"));
        let (swapped, nanos) = match magic {
            MAGIC_US => (false, false),
            MAGIC_NS => (false, true),
            m if m.swap_bytes() == MAGIC_US => (true, false),
            m if m.swap_bytes() == MAGIC_NS => (true, true),
            m => return Err(PcapError::BadMagic(m)),
        };
        let rd = |b: &[u8]| {
            let v = u32::from_le_bytes(b.try_into().expect("4 bytes"));
            if swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        let snaplen = rd(&h[16..20]);
        let linktype = rd(&h[20..24]) & 0x0fff_ffff;
        if linktype != LINKTYPE_ETHERNET {
            return Err(PcapError::LinkType(linktype));
        }
        Ok(PcapReader {
            input,
            swapped,
            nanos,
            // Some writers put 0 or absurd values here; bound it ourselves.
            snaplen: if snaplen == 0 || snaplen > 262_144 {
                262_144
            } else {
                snaplen
            },
            index: 0,
        })
    }

    /// The next record, or `None` at a clean end of file.
    pub fn next_record(&mut self) -> Result<Option<PcapRecord>, PcapError> {
        let mut h = [0u8; 16];
        let mut got = 0;
        while got < h.len() {
            match self.input.read(&mut h[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(PcapError::Truncated {
                        index: self.index,
                        what: "record header",
                    })
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let rd = |i: usize| {
            let v = u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
            if self.swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        let (sec, frac, incl_len, orig_len) = (rd(0), rd(4), rd(8), rd(12));
        if incl_len > self.snaplen {
            return Err(PcapError::RecordTooLong {
                index: self.index,
                incl_len,
                limit: self.snaplen,
            });
        }
        let mut data = vec![0u8; incl_len as usize];
        self.input.read_exact(&mut data).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => PcapError::Truncated {
                index: self.index,
                what: "record data",
            },
            _ => PcapError::Io(e),
        })?;
        self.index += 1;
        let frac_ns = if self.nanos {
            u64::from(frac)
        } else {
            u64::from(frac) * 1000
        };
        Ok(Some(PcapRecord {
            ts_ns: u64::from(sec) * 1_000_000_000 + frac_ns,
            data,
            orig_len: orig_len.max(incl_len),
        }))
    }
}

/// Writes a capture.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    records: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Write the global header (nanosecond timestamps, Ethernet).
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&MAGIC_NS.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, records: 0 })
    }

    /// Append one frame stamped `ts_ns` (truncated to the snap length).
    pub fn write(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        let incl = frame.len().min(SNAPLEN as usize);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(incl as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&frame[..incl])?;
        self.records += 1;
        Ok(())
    }

    /// Frames written.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flush the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(1_500_000_123, &[1, 2, 3]).unwrap();
        w.write(2_000_000_000, &[9; 60]).unwrap();
        let bytes = w.out;
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        let a = r.next_record().unwrap().unwrap();
        assert_eq!(
            (a.ts_ns, a.data.as_slice(), a.orig_len),
            (1_500_000_123, &[1u8, 2, 3][..], 3)
        );
        assert_eq!(r.next_record().unwrap().unwrap().data, vec![9; 60]);
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn microsecond_big_endian_files_read() {
        let mut f = Vec::new();
        f.extend_from_slice(&MAGIC_US.to_be_bytes());
        f.extend_from_slice(&2u16.to_be_bytes());
        f.extend_from_slice(&4u16.to_be_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&65535u32.to_be_bytes());
        f.extend_from_slice(&1u32.to_be_bytes());
        f.extend_from_slice(&3u32.to_be_bytes());
        f.extend_from_slice(&7u32.to_be_bytes());
        f.extend_from_slice(&2u32.to_be_bytes());
        f.extend_from_slice(&2u32.to_be_bytes());
        f.extend_from_slice(&[0xaa, 0xbb]);
        let mut r = PcapReader::new(&f[..]).unwrap();
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(rec.ts_ns, 3_000_007_000);
        assert_eq!(rec.data, vec![0xaa, 0xbb]);
    }

    #[test]
    fn bad_files_are_named_errors() {
        assert!(matches!(
            PcapReader::new(&[0u8; 10][..]),
            Err(PcapError::Truncated { .. })
        ));
        assert!(matches!(PcapReader::new(&[0u8; 24][..]), Err(PcapError::BadMagic(0))));
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(0, &[1; 40]).unwrap();
        let mut bytes = w.out;
        bytes.truncate(24 + 16 + 10);
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        assert!(matches!(
            r.next_record(),
            Err(PcapError::Truncated {
                index: 0,
                what: "record data"
            })
        ));
        let mut huge = PcapWriter::new(Vec::new()).unwrap().out;
        huge.extend_from_slice(&[0; 8]);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut r = PcapReader::new(&huge[..]).unwrap();
        assert!(matches!(r.next_record(), Err(PcapError::RecordTooLong { .. })));
    }

    proptest! {
        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(mut r) = PcapReader::new(&bytes[..]) {
                for _ in 0..20 {
                    match r.next_record() {
                        Ok(Some(_)) => {}
                        _ => break,
                    }
                }
            }
        }
    }
}
