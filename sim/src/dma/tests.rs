use super::*;

/// A memfd of `len` bytes (test helper shared with other modules).
pub(crate) fn memfd(len: u64) -> File {
    let f = unsealed_memfd(len);
    seal(&f, libc::F_SEAL_SHRINK).unwrap();
    f
}

/// A memfd of `len` bytes that may be sealed but is not.
pub(crate) fn unsealed_memfd(len: u64) -> File {
    // SAFETY: plain syscalls, results checked.
    unsafe {
        let fd = libc::memfd_create(c"dma-test".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, len as libc::off_t), 0);
        std::os::fd::FromRawFd::from_raw_fd(fd)
    }
}

#[test]
fn map_translate_and_fault() {
    let mut d = DmaSpace::default();
    d.map(0x10000, 0x2000, Some(memfd(0x2000)), 0, true, 256).unwrap();
    d.map(0x12000, 0x1000, Some(memfd(0x1000)), 0, true, 256).unwrap();
    d.write(0x10ff0, &[7; 32]).unwrap();
    let mut b = [0u8; 32];
    d.read(0x10ff0, &mut b).unwrap();
    assert_eq!(b, [7; 32]);
    // Spanning two adjacent mappings is fine for copies...
    d.write(0x11ff0, &[1; 32]).unwrap();
    // ...but not for a host range (rings must sit in one mapping).
    assert!(d.host_range(0x11ff0, 32).is_err());
    assert!(d.host_range(0x10000, 0x2000).is_ok());
    assert_eq!(d.read(0x13000, &mut b), Err(DmaFault::new(0x13000, 32)));
    assert!(d.write(0xfff0, &[0; 32]).is_err());
}

#[test]
fn refuses_bad_mappings() {
    let mut d = DmaSpace::default();
    assert!(matches!(
        d.map(0x1001, 0x1000, Some(memfd(0x1000)), 0, true, 256),
        Err(DmaMapError::Unaligned { .. })
    ));
    assert!(matches!(
        d.map(0x1000, 0, Some(memfd(0x1000)), 0, true, 256),
        Err(DmaMapError::Unaligned { .. })
    ));
    assert!(matches!(
        d.map(0x1000, 0x1000, None, 0, true, 256),
        Err(DmaMapError::NoFd)
    ));
    assert!(matches!(
        d.map(!0xfff, 0x2000, Some(memfd(0x2000)), 0, true, 256),
        Err(DmaMapError::Wraps { .. })
    ));
    // Past the end of the file: mmap would SIGBUS later, so refuse now.
    assert!(matches!(
        d.map(0x1000, 0x2000, Some(memfd(0x1000)), 0, true, 256),
        Err(DmaMapError::PastEof { .. })
    ));
    d.map(0x1000, 0x1000, Some(memfd(0x1000)), 0, true, 256).unwrap();
    assert!(matches!(
        d.map(0x1000, 0x1000, Some(memfd(0x1000)), 0, true, 256),
        Err(DmaMapError::Overlap { .. })
    ));
    // A range that would cut a mapping is refused; one around it (or
    // around nothing) is not.
    assert!(matches!(
        d.unmap(0x1000, 0x800),
        Err(DmaMapError::Splits { mapping: 0x1000, .. })
    ));
    assert_eq!(d.unmap(0x8000, 0x1000).unwrap(), 0);
    d.map(0x3000, 0x1000, Some(memfd(0x1000)), 0, true, 256).unwrap();
    assert!(matches!(
        d.unmap(0x2000, 0x1800),
        Err(DmaMapError::Splits { mapping: 0x3000, .. })
    ));
    assert!(matches!(
        d.unmap(0x3800, 0x1000),
        Err(DmaMapError::Splits { mapping: 0x3000, .. })
    ));
    assert_eq!(d.len(), 2, "a refused unmap removes nothing");
    assert!(matches!(d.unmap(0x1000, 0), Err(DmaMapError::Wraps { .. })));
    assert_eq!(
        d.unmap(0x100_0000, 0u64.wrapping_sub(0x100_0000)).unwrap(),
        0,
        "up to 2^64"
    );
    assert_eq!(d.unmap(0, 0x10000).unwrap(), 2);
    assert!(d.is_empty());
}

#[test]
fn snapshots_keep_memory_alive_after_unmap() {
    let mut d = DmaSpace::default();
    d.map(0x1000, 0x1000, Some(memfd(0x1000)), 0, true, 256).unwrap();
    let snap = d.clone();
    let p = snap.host_range(0x1000, 16).unwrap();
    d.unmap(0x1000, 0x1000).unwrap();
    assert!(d.read(0x1000, &mut [0; 4]).is_err(), "unmapped for new accesses");
    // SAFETY: the snapshot still holds the mapping.
    unsafe { p.as_ptr().write(5) };
    let mut b = [0u8; 1];
    snap.read(0x1000, &mut b).unwrap();
    assert_eq!(b, [5]);
}

/// The data path's flat windows agree with vm-memory's general path on
/// every access near and across mapping edges: same faults, same bytes.
#[test]
fn windows_agree_with_the_general_path() {
    let mut d = DmaSpace::default();
    d.map(0x10000, 0x2000, Some(memfd(0x2000)), 0, true, 256).unwrap();
    d.map(0x12000, 0x1000, Some(memfd(0x1000)), 0, false, 256).unwrap();
    d.map(0x20000, 0x1000, Some(memfd(0x1000)), 0, true, 256).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let iova = 0xf000 + next() % 0x13000;
        let len = 1 + (next() % 300) as usize;
        let fill = next() as u8;
        let w = d.write(iova, &vec![fill; len]);
        let general = if d.touches_read_only(iova, len as u64) {
            Err(())
        } else {
            d.mem.check_range(GuestAddress(iova), len).then_some(()).ok_or(())
        };
        assert_eq!(w.is_ok(), general.is_ok(), "write {iova:#x}+{len}");
        let mut a = vec![0u8; len];
        let mut b = vec![0u8; len];
        let fast = d.read(iova, &mut a);
        let slow = d.mem.read_slice(&mut b, GuestAddress(iova));
        assert_eq!(fast.is_ok(), slow.is_ok(), "read {iova:#x}+{len}");
        assert_eq!(a, b);
        if w.is_ok() {
            assert!(a.iter().all(|&v| v == fill));
        }
        let h = d.host_range_for_read(iova, len as u64).is_ok();
        let one = d
            .mem
            .to_region_addr(GuestAddress(iova))
            .is_some_and(|(r, o)| r.get_slice(o, len).is_ok());
        assert_eq!(h, one, "host range {iova:#x}+{len}");
    }
    d.unmap(0x10000, 0x2000).unwrap();
    assert!(d.read(0x10000, &mut [0; 4]).is_err(), "windows follow unmap");
    assert!(d.read(0x20000, &mut [0; 4]).is_ok());
}

#[test]
fn read_only_mappings_refuse_writes() {
    let mut d = DmaSpace::default();
    d.map(0x1000, 0x1000, Some(memfd(0x1000)), 0, false, 256).unwrap();
    let mut b = [0u8; 8];
    d.read(0x1000, &mut b).unwrap();
    assert!(d.write(0x1000, &b).is_err());
    assert!(d.host_range(0x1000, 8).is_err());
}

/// Past the hot few mappings (the largest) the data path searches the
/// rest by halving: it finds the same window as a scan of every window,
/// with many mappings, adjacent ones and gaps, before and after unmaps;
/// and the bytes land where vm-memory's general path finds them.
#[test]
fn window_search_past_the_hot_few_agrees_with_a_scan() {
    let mut d = DmaSpace::default();
    let mut at = 0x10_0000u64;
    let mut maps = Vec::new();
    for i in 0..40u64 {
        let size = PAGE * (1 + i % 3);
        d.map(at, size, Some(memfd(size)), 0, i % 5 != 0, 256).unwrap();
        maps.push((at, size));
        at += size + if i % 3 == 2 { PAGE } else { 0 };
    }
    let end = at;
    let scan = |d: &DmaSpace, iova: u64, len: u64| {
        d.windows
            .iter()
            .find_map(|w| w.offset_of(iova, len).map(|o| (w.iova, o)))
    };
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut check = |d: &DmaSpace, what: &str| {
        let mut past_hot = 0;
        for _ in 0..20_000 {
            let iova = 0x10_0000 - PAGE + next() % (end - 0x10_0000 + 2 * PAGE);
            let len = 1 + next() % (3 * PAGE);
            let found = d.window(iova, len).map(|(w, o)| (w.iova, o));
            assert_eq!(found, scan(d, iova, len), "{what}: {iova:#x}+{len:#x}");
            past_hot += usize::from(found.is_some_and(|(a, _)| d.hot.iter().all(|h| h.iova != a || h.len == 0)));
        }
        assert!(
            past_hot > 2_000,
            "{what}: lookups that found a window past the hot few: {past_hot}"
        );
    };
    assert_eq!(d.rest.len(), 40 - HOT_WINDOWS);
    let largest_hot = |d: &DmaSpace| {
        let least_hot = d.hot.iter().map(|w| w.len).min().unwrap();
        assert!(d.rest.iter().all(|w| w.len <= least_hot), "the hot few are the largest");
        assert!(d.hot.windows(2).all(|p| p[0].len >= p[1].len), "largest first");
        assert!(
            d.rest.windows(2).all(|p| p[0].iova < p[1].iova),
            "the rest in IOVA order"
        );
    };
    largest_hot(&d);
    check(&d, "40 mappings");
    // The last mapping, far past the hot few, moves bytes both ways.
    let (last, size) = maps[39];
    d.write(last + size - 8, &[0xa5; 8]).unwrap();
    let mut b = [0u8; 8];
    d.mem.read_slice(&mut b, GuestAddress(last + size - 8)).unwrap();
    assert_eq!(b, [0xa5; 8]);
    let mut c = [0u8; 8];
    d.read(last + size - 8, &mut c).unwrap();
    assert_eq!(c, b);
    // Unmaps in the hot few, at their edge and past them: both views
    // follow.
    for &(a, s) in [maps[1], maps[4], maps[5], maps[30]].iter() {
        d.unmap(a, s).unwrap();
    }
    assert_eq!(d.windows.len(), 36);
    assert_eq!(d.rest.len(), 36 - HOT_WINDOWS);
    largest_hot(&d);
    check(&d, "after unmaps");
}
