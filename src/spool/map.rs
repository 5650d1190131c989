//! The only `unsafe` in mailroot: a shared, writable memory map of one spool segment file.
//!
//! TRUST / SAFETY ARGUMENT (in the spirit of ripgrep's `searcher/mmap.rs` and memmap2's
//! `MmapOptions::map_mut` "## Safety" section, which says behaviour is undefined if the
//! underlying file is modified or truncated by another process while mapped):
//!
//! * Spool segment files are created by mailroot with mode 0600 inside `Queue/`, a directory
//!   created with mode 0700 and locked (`Queue/lock`, `flock`) by the one running server. No
//!   other process is supposed to write them; `mailroot queue list` only reads them with
//!   `read(2)`. We trust the operator not to edit `Queue/` by hand (documented).
//! * A segment file is never truncated or shrunk while it is mapped (that would turn accesses
//!   past the new end into SIGBUS). Its blocks are reserved with `fallocate` (or written with
//!   zeros) BEFORE the map is created, so writing through the map never has to allocate a
//!   block and cannot SIGBUS on a full disk. Files are unlinked while mapped only when no
//!   record in them is live; unlinking keeps the pages valid until the map is dropped.
//! * Inside the process, accesses follow a single-appender discipline that rules out data
//!   races:
//!   - bytes at or above `tail` are written only through [`Appender`], of which at most one
//!     exists per map (taken once, `&mut` to use): copied into the mapping
//!     ([`Map::append`]) or written to the mapped file with `pwrite(2)`
//!     ([`Map::append_through`]; a `MAP_SHARED` mapping and `write(2)` share the page
//!     cache, so the bytes are the same either way); zeros are written ahead of the tail
//!     the same way, and only by the appender ([`Map::prewrite_zeros`]);
//!   - `tail` is advanced with `Release` after the bytes are written; readers load it with
//!     `Acquire` and may copy only bytes below it ([`Map::copy_out`] asserts this);
//!   - bytes below `tail` are mutated only through aligned atomic stores
//!     ([`Map::store_u8`], [`Map::store_u32`]): recipient status bytes and record magics.
//!     Crate code never copies those bytes with [`Map::copy_out`]; it reads them with
//!     [`Map::load_u8`].
//!
//! The libc calls the spool needs, `fallocate(2)`, `statvfs(3)` and `preadv(2)` (into
//! uninitialised buffers), also live here so that this file stays the only one with `unsafe`.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering};

use memmap2::{MmapMut, MmapOptions};

/// Bytes per `pwrite` of [`Map::prewrite_zeros`] (a page).
const ZERO_PAGE_BYTES: usize = 4096;

/// A shared read-write mapping of a whole segment file.
pub(crate) struct Map {
    /// The mapping; kept alive for as long as `ptr` is used. Never remapped or resized.
    mmap: MmapMut,
    /// Start of the mapping (`mmap.as_mut_ptr()`, taken once at creation).
    ptr: *mut u8,
    /// Length of the mapping in bytes (= file length at creation; the file never shrinks).
    len: usize,
    /// Bytes `[0, tail)` are written and published; only atomic stores change them.
    tail: AtomicUsize,
    /// Bytes `[tail, zeroed_to)` (when above the tail) were written with zeros through the
    /// file ([`Map::prewrite_zeros`]); only the holder of the [`Appender`] advances it.
    zeroed_to: AtomicUsize,
    /// Whether the single [`Appender`] has been handed out.
    appender_taken: AtomicBool,
}

// SAFETY: `Map` owns its mapping (the raw pointer is derived from `mmap`, which lives as long
// as the `Map`). Cross-thread access follows the discipline in the module docs: plain writes
// only above `tail` through the unique `Appender`, plain reads only below `tail` (published
// with Release/Acquire), and in-place mutation below `tail` only via atomics. So sharing
// `&Map` between threads and moving it to another thread cannot cause a data race.
unsafe impl Send for Map {}
// SAFETY: see the `Send` impl above; every `&self` method upholds the same discipline.
unsafe impl Sync for Map {}

/// The right to append to a [`Map`] (at most one per map).
pub(crate) struct Appender {
    /// Identity of the map this appender belongs to (checked on every use).
    map_id: usize,
}

impl Map {
    /// Map all of `file` (whose length is `len` and whose blocks are already allocated).
    /// `published` bytes at the start are considered written (the tail starts there).
    pub(crate) fn new(file: &File, len: usize, published: usize) -> io::Result<Map> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot map an empty file"));
        }
        let meta_len = file.metadata()?.len();
        if meta_len < len as u64 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "file shorter than map"));
        }
        // SAFETY: memmap2's `map_mut` is unsafe because the file could be modified or
        // truncated by someone else while mapped (MmapOptions "## Safety"). The file is a
        // spool segment: created by us with mode 0600 in our 0700, flock'ed Queue/, its
        // blocks reserved before mapping (checked length above), and never truncated while
        // mapped (see module docs). Other processes only read it.
        let mut mmap = unsafe { MmapOptions::new().len(len).map_mut(file)? };
        // No read-ahead on faults: read-around grows the page cache's folios (large folios
        // on ext4 since Linux 6.16) as a segment fills, a store then dirties the whole
        // folio and each group-commit msync writes all of it (a 1 KiB message cost up to
        // 180 KiB of disk writes). With `Random` a fault brings in one page. A hint only:
        // if the kernel refuses it, the spool works as before.
        if let Err(e) = mmap.advise(memmap2::Advice::Random) {
            log::debug!("spool: madvise(MADV_RANDOM) on a segment failed: {e}");
        }
        let ptr = mmap.as_mut_ptr();
        Ok(Map {
            mmap,
            ptr,
            len,
            tail: AtomicUsize::new(published.min(len)),
            zeroed_to: AtomicUsize::new(published.min(len)),
            appender_taken: AtomicBool::new(false),
        })
    }

    /// Mapping length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes written and published so far.
    pub(crate) fn tail(&self) -> usize {
        self.tail.load(Ordering::Acquire)
    }

    /// The unique appender, the first time this is called; `None` afterwards.
    pub(crate) fn take_appender(&self) -> Option<Appender> {
        if self.appender_taken.swap(true, Ordering::AcqRel) {
            None
        } else {
            Some(Appender { map_id: self.ptr as usize })
        }
    }

    /// Write `parts` one after the other at the tail, then publish them. Returns the offset
    /// at which the first part starts. Panics (a bug) when they do not fit or `app` is not
    /// this map's appender; callers check [`Map::len`] - [`Map::tail`] first.
    pub(crate) fn append(&self, app: &mut Appender, parts: &[&[u8]]) -> usize {
        assert_eq!(app.map_id, self.ptr as usize, "appender used on another map");
        let start = self.tail.load(Ordering::Acquire);
        let total: usize = parts.iter().map(|p| p.len()).sum();
        assert!(total <= self.len - start, "append past the end of the segment");
        let mut at = start;
        for p in parts {
            // SAFETY: `at + p.len() <= start + total <= self.len`, so the destination is
            // inside the mapping. Bytes at or above `tail` are touched only by the holder of
            // the unique `Appender`, which we hold by `&mut`, so nobody reads or writes them
            // concurrently. `p` is a normal slice and cannot overlap the mapping's unpublished
            // part (no reference to it exists).
            unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), self.ptr.add(at), p.len()) };
            at += p.len();
        }
        self.tail.store(start + total, Ordering::Release);
        start
    }

    /// [`Map::append`] of one part, written with `pwrite(2)` to `file`, which must be the
    /// file this map maps, instead of copied into the mapping: the kernel copies the bytes
    /// into the page cache the mapping shares, and pages the write covers whole are never
    /// faulted in (no page fault, no read or zeroing of a fresh page, nothing added to the
    /// RSS). Worth it for large records (`Segment::append`). On an error nothing is
    /// published (the tail stays; bytes written above it are overwritten by the next
    /// append, and a scan stops at them since they are not followed by a valid tail).
    pub(crate) fn append_through(
        &self,
        app: &mut Appender,
        file: &File,
        bytes: &[u8],
    ) -> io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        assert_eq!(app.map_id, self.ptr as usize, "appender used on another map");
        let start = self.tail.load(Ordering::Acquire);
        assert!(bytes.len() <= self.len - start, "append past the end of the segment");
        // No `unsafe`: the kernel writes above the tail, which only the holder of the
        // unique `Appender` (us, by `&mut`) writes, and nobody reads until it is published.
        file.write_all_at(bytes, start as u64)?;
        self.tail.store(start + bytes.len(), Ordering::Release);
        Ok(start)
    }

    /// How far zeros were written ahead of the tail ([`Map::prewrite_zeros`]); at most
    /// [`Map::len`]. Bytes between the tail and this offset are unpublished zeros.
    pub(crate) fn zeroed_to(&self) -> usize {
        self.zeroed_to.load(Ordering::Acquire)
    }

    /// Write zeros through `file` (the file this map maps) from where the last call
    /// stopped (or the tail, if that is further) up to `upto` (clamped to the length),
    /// one page per `pwrite(2)`, and publish nothing. Blocks `fallocate` reserved are
    /// *unwritten* extents: the first write-back of each range converts it to written, a
    /// metadata change that makes that commit's `msync` wait for a journal commit. Writing
    /// zeros ahead lets one later flush convert a whole window at once (`Segment::append`).
    /// One page per call keeps those page-cache folios at one page, so a record stored into
    /// one later dirties (and a commit writes back) only that page.
    /// Only the holder of the unique `Appender` writes above the tail, so this cannot
    /// overwrite a record; an error leaves `zeroed_to` at the last page written.
    pub(crate) fn prewrite_zeros(
        &self,
        app: &mut Appender,
        file: &File,
        upto: usize,
    ) -> io::Result<()> {
        use std::os::unix::fs::FileExt as _;
        static ZEROS: [u8; ZERO_PAGE_BYTES] = [0; ZERO_PAGE_BYTES];
        assert_eq!(app.map_id, self.ptr as usize, "appender used on another map");
        let upto = upto.min(self.len);
        let mut at = self.zeroed_to.load(Ordering::Acquire).max(self.tail.load(Ordering::Acquire));
        while at < upto {
            // Up to the next page boundary (the first write may start mid-page).
            let n = (ZERO_PAGE_BYTES - at % ZERO_PAGE_BYTES).min(upto - at);
            file.write_all_at(&ZEROS[..n], at as u64)?;
            at += n;
            self.zeroed_to.store(at, Ordering::Release);
        }
        Ok(())
    }

    /// Copy `len` published bytes starting at `offset` into `out` (appended).
    /// Panics (a bug) when the range is not entirely below the tail.
    pub(crate) fn copy_out(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        let tail = self.tail.load(Ordering::Acquire);
        assert!(offset <= tail && len <= tail - offset, "copy_out beyond the published tail");
        out.reserve(len);
        let old = out.len();
        // SAFETY: the source range is inside the mapping and below the published tail, so
        // its bytes were fully written before the Release store we Acquired; below the tail
        // only atomic stores to status bytes/magics happen, and crate code never copies
        // those with `copy_out`. The destination has `len` spare bytes reserved above.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.add(offset), out.as_mut_ptr().add(old), len);
            out.set_len(old + len);
        }
    }

    /// Atomically store one published byte (a recipient status byte).
    pub(crate) fn store_u8(&self, offset: usize, value: u8) {
        assert!(offset < self.tail.load(Ordering::Acquire), "store beyond the tail");
        // SAFETY: in bounds and published (asserted). Any address is aligned for a u8, and
        // this location is only ever accessed atomically (module docs).
        let a = unsafe { AtomicU8::from_ptr(self.ptr.add(offset)) };
        a.store(value, Ordering::Release);
    }

    /// Atomically load one published byte (a recipient status byte).
    pub(crate) fn load_u8(&self, offset: usize) -> u8 {
        assert!(offset < self.tail.load(Ordering::Acquire), "load beyond the tail");
        // SAFETY: as for `store_u8`.
        let a = unsafe { AtomicU8::from_ptr(self.ptr.add(offset)) };
        a.load(Ordering::Acquire)
    }

    /// Atomically store a published, 4-aligned 32-bit word (a record magic).
    pub(crate) fn store_u32(&self, offset: usize, value: [u8; 4]) {
        assert!(offset.is_multiple_of(4), "unaligned magic");
        assert!(offset + 4 <= self.tail.load(Ordering::Acquire), "store beyond the tail");
        // The mapping is page-aligned, so offset.is_multiple_of(4) makes the address 4-aligned.
        // SAFETY: in bounds, published and 4-aligned (asserted above); the magic word of a
        // record is only mutated atomically after publication, and never read by
        // `copy_out` in crate code.
        let a = unsafe { AtomicU32::from_ptr(self.ptr.add(offset).cast::<u32>()) };
        a.store(u32::from_ne_bytes(value), Ordering::Release);
    }

    /// Drop the pages of `[offset, offset + len)` from this process's page tables
    /// (`madvise(MADV_DONTNEED)`), so mapped spool data that is already on disk stops
    /// counting in the RSS (and in the OOM killer's score). The bytes are not lost: this is
    /// a shared file mapping, so the pages stay in the page cache (a dirty one is written
    /// back as usual) and the next access maps them again. `offset` must be page-aligned;
    /// the range is clamped to the mapping.
    pub(crate) fn release(&self, offset: usize, len: usize) -> io::Result<()> {
        let end = offset.saturating_add(len).min(self.len);
        if offset >= end {
            return Ok(());
        }
        // SAFETY: memmap2 marks MADV_DONTNEED unchecked because on a *private* mapping it
        // discards the process's copy of the data. This mapping is MAP_SHARED over a file
        // (`MmapOptions::map_mut`), for which DONTNEED only unmaps: the data lives in the
        // page cache and the file, and any later load or store through `ptr` (concurrent
        // ones included) faults the same page back in. No reference into the mapping is
        // invalidated, since nothing is freed: `ptr` and `len` stay valid.
        unsafe {
            self.mmap.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                offset,
                end - offset,
            )
        }
    }

    /// msync(MS_SYNC) the pages covering `[offset, offset + len)`.
    pub(crate) fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.mmap.flush_range(offset, len)
    }
}

/// Read `head_len` bytes of `file` at `offset` into a fresh `Vec`, and the `body_len`
/// bytes after them into a fresh `Arc<[u8]>`, with `preadv(2)` (one system call, looping
/// only on a short read or EINTR) and without zero-filling the buffers first. Reading past
/// the end of the file is an `UnexpectedEof` error.
pub(crate) fn read_fresh(
    file: &File,
    offset: u64,
    head_len: usize,
    body_len: usize,
) -> io::Result<(Vec<u8>, Arc<[u8]>)> {
    let mut head: Vec<u8> = Vec::with_capacity(head_len);
    let mut body = Arc::<[u8]>::new_uninit_slice(body_len);
    let body_bytes = Arc::get_mut(&mut body).expect("a fresh Arc is unique");
    let head_bytes = &mut head.spare_capacity_mut()[..head_len];
    // Cannot overflow: both buffers were allocated above, so each is at most isize::MAX.
    let total = head_len + body_len;
    let mut done = 0; // bytes read so far, head first
    while done < total {
        // What is still to read: the rest of the head (if any), then the rest of the body.
        let (h, b) = if done < head_len {
            (&mut head_bytes[done..], &mut body_bytes[..])
        } else {
            (&mut head_bytes[head_len..], &mut body_bytes[done - head_len..])
        };
        let iov = [
            libc::iovec { iov_base: h.as_mut_ptr().cast(), iov_len: h.len() },
            libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() },
        ];
        let at = libc::off_t::try_from(offset + done as u64)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        // SAFETY: both iovecs point into buffers this function owns exclusively (`head`'s
        // spare capacity and the unique fresh `body`) and are exactly as long as what is
        // left of them, so the kernel writes only there; writing into uninitialised memory
        // is fine. The descriptor is valid: `file` is borrowed for the whole call.
        let n = unsafe { libc::preadv(file.as_raw_fd(), iov.as_ptr(), 2, at) };
        match n {
            n if n > 0 => done += n as usize,
            0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    // SAFETY: the loop ended with `done == head_len + body_len`, and preadv fills the
    // iovecs in order, so the first `head_len` bytes of `head`'s capacity and every byte
    // of `body` were written.
    let body = unsafe {
        head.set_len(head_len);
        body.assume_init()
    };
    Ok((head, body))
}

/// Reserve (allocate) the blocks of `[offset, offset + len)` of `file` with `fallocate(2)`
/// mode 0, extending the file size if needed. `EINTR` is retried; other errors are returned
/// as is (`ENOSPC`/`EDQUOT`: disk full; `EOPNOTSUPP`: the caller falls back to writing zeros).
pub(crate) fn fallocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "fallocate range too large");
    let off = libc::off_t::try_from(offset).map_err(|_| too_big())?;
    let l = libc::off_t::try_from(len).map_err(|_| too_big())?;
    loop {
        // SAFETY: `fallocate` takes no pointers; the descriptor is valid because `file`
        // is borrowed for the duration of the call.
        let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, off, l) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Bytes available to an unprivileged user on the filesystem holding `dir` (`statvfs(3)`:
/// `f_bavail * f_frsize`).
pub(crate) fn available_bytes(dir: &Path) -> io::Result<u64> {
    let c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in spool path"))?;
    let mut st = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call, and `st` points to
    // writable memory of the type `statvfs` fills in.
    let r = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `statvfs` returned 0, so it initialised the whole struct.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between libc targets
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh read-write file of `len` bytes in a temporary directory (kept alive by the
    /// returned guard).
    fn sized_file(len: usize) -> (tempfile::TempDir, std::path::PathBuf, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.set_len(len as u64).unwrap();
        (dir, path, f)
    }

    #[test]
    fn append_copy_store_flush() {
        let (_dir, path, f) = sized_file(4096);
        let m = Map::new(&f, 4096, 0).unwrap();
        let mut app = m.take_appender().unwrap();
        assert!(m.take_appender().is_none());
        assert_eq!(m.append(&mut app, &[b"abcd", b"efgh"]), 0);
        assert_eq!(m.append(&mut app, &[b"ij"]), 8);
        m.store_u8(1, b'Z');
        m.store_u32(4, *b"WXYZ");
        assert_eq!(m.load_u8(1), b'Z');
        let mut out = vec![];
        m.copy_out(8, 2, &mut out);
        assert_eq!(out, b"ij");
        m.flush_range(0, 10).unwrap();
        let disk = std::fs::read(&path).unwrap();
        assert_eq!(&disk[..10], b"aZcdWXYZij");
    }

    #[test]
    fn append_through_the_file_is_seen_through_the_mapping_and_maps_nothing() {
        const LEN: usize = 16 * 4096;
        let (_dir, path, f) = sized_file(LEN);
        let m = Map::new(&f, LEN, 0).unwrap();
        let mut app = m.take_appender().unwrap();
        assert_eq!(m.append(&mut app, &[b"head"]), 0);
        let data: Vec<u8> = (0..8 * 4096).map(|i| (i % 253) as u8).collect();
        assert_eq!(m.append_through(&mut app, &f, &data).unwrap(), 4);
        assert_eq!(m.tail(), 4 + data.len());
        // Whole pages written through the file were never faulted into this mapping.
        assert!(resident_kib(m.ptr) <= 8, "pwrite mapped {} KiB", resident_kib(m.ptr));
        assert_eq!(m.append(&mut app, &[b"tail"]), 4 + data.len());
        let mut out = vec![];
        m.copy_out(0, m.tail(), &mut out);
        assert_eq!(&out[..4], b"head");
        assert!(out[4..4 + data.len()] == data[..], "mapping sees the pwritten bytes");
        assert_eq!(&out[4 + data.len()..], b"tail");
        m.store_u8(5, 0xAA); // an atomic store below the tail lands on the written page
        m.flush_range(0, m.tail()).unwrap();
        let disk = std::fs::read(&path).unwrap();
        assert_eq!(disk[5], 0xAA);
        assert!(disk[6..4 + data.len()] == data[2..], "msync wrote the pwritten bytes");
    }

    #[test]
    fn zeros_go_above_the_tail_only_up_to_the_length() {
        const LEN: usize = 8 * 4096;
        let (_dir, path, f) = sized_file(0);
        std::os::unix::fs::FileExt::write_all_at(&f, &[0xEE; LEN], 0).unwrap();
        let m = Map::new(&f, LEN, 0).unwrap();
        let mut app = m.take_appender().unwrap();
        assert_eq!(m.zeroed_to(), 0);
        m.append(&mut app, &[b"record"]);
        m.prewrite_zeros(&mut app, &f, 3 * 4096 + 10).unwrap();
        assert_eq!(m.zeroed_to(), 3 * 4096 + 10);
        let disk = std::fs::read(&path).unwrap();
        assert_eq!(&disk[..6], b"record", "a published byte was overwritten");
        assert!(disk[6..3 * 4096 + 10].iter().all(|&b| b == 0), "zeros from the tail on");
        assert!(disk[3 * 4096 + 10..].iter().all(|&b| b == 0xEE), "nothing past `upto`");
        // The next record lands in the zeros; asking for less than is written does nothing.
        m.append(&mut app, &[b"next"]);
        m.prewrite_zeros(&mut app, &f, 2 * 4096).unwrap();
        assert_eq!(m.zeroed_to(), 3 * 4096 + 10);
        // Past the end: clamped to the length.
        m.prewrite_zeros(&mut app, &f, 100 * 4096).unwrap();
        assert_eq!(m.zeroed_to(), LEN);
        let disk = std::fs::read(&path).unwrap();
        assert_eq!(&disk[..10], b"recordnext");
        assert!(disk[10..].iter().all(|&b| b == 0));
        let mut out = vec![];
        m.copy_out(0, m.tail(), &mut out);
        assert_eq!(out, b"recordnext", "the mapping shows the same bytes");
    }

    /// Bytes this thread has caused to be written to storage (`/proc/thread-self/io`; the
    /// kernel charges a page, or a whole large folio, to the task that dirties it).
    fn thread_write_bytes() -> u64 {
        let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
        let line = io.lines().find(|l| l.starts_with("write_bytes:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Disk bytes written per commit (besides any zeros written ahead) for 20,000 1 KiB
    /// records each msynced as a group commit does, each crossing off the one before and
    /// read back with `pread` as the queue runner does; with `zeros_ahead`, zeros are written
    /// ahead of the tail as `Segment::append` does. Also returns the page size. `None` where
    /// this cannot be measured (no per-thread I/O accounting or no `fallocate`).
    fn bytes_per_small_commit(zeros_ahead: bool) -> Option<(u64, u64)> {
        const LEN: usize = 32 << 20;
        const N: usize = 20_000;
        // SAFETY: sysconf takes no pointers and has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap();
        let (_dir, _path, f) = sized_file(0);
        if std::fs::metadata("/proc/thread-self/io").is_err()
            || fallocate(&f, 0, LEN as u64).is_err()
        {
            eprintln!("skipped: no per-thread I/O accounting or no fallocate here");
            return None;
        }
        let m = Map::new(&f, LEN, 0).unwrap();
        let mut app = m.take_appender().unwrap();
        let rec = [0x5Au8; 1024];
        let before = thread_write_bytes();
        let mut synced = 0;
        for i in 0..N {
            let at = m.append(&mut app, &[&rec]);
            if zeros_ahead && m.zeroed_to() < m.tail() + 64 * 1024 {
                m.prewrite_zeros(&mut app, &f, m.tail() + 256 * 1024).unwrap();
            }
            if i > 0 {
                m.store_u8(at - 1024, 0xA5); // a cross-off of the record before
            }
            m.flush_range(synced, m.tail().max(m.zeroed_to()) - synced).unwrap();
            synced = m.tail() / page * page;
            let mut back = [0u8; 1024];
            std::os::unix::fs::FileExt::read_exact_at(&f, &mut back, at as u64).unwrap();
        }
        if zeros_ahead {
            assert!(m.zeroed_to() >= m.tail() + 64 * 1024, "zeros stay ahead of the tail");
        }
        let zeros = if zeros_ahead { m.zeroed_to() as u64 } else { 0 };
        let written = thread_write_bytes() - before;
        Some((written.saturating_sub(zeros) / N as u64, page as u64))
    }

    /// Every commit may rewrite the partial last page, but no more: two pages, the last one
    /// and the one before when a record straddles them (on tmpfs nothing is written back and
    /// this holds trivially). Before the mapping was advised `Random`, a fault on the
    /// segment read ahead into large page-cache folios (ext4 has them since Linux 6.16), a
    /// 1-byte store dirtied the whole folio and each msync wrote it all: 180 KiB of disk
    /// writes per 1 KiB message at 4,400 msg/s (perf/RESULTS.md 2026-12-05 22:20), growing
    /// as the segment filled.
    #[test]
    fn small_commits_write_about_a_page_each() {
        let Some((per_commit, page)) = bytes_per_small_commit(false) else { return };
        assert!(per_commit <= 2 * page, "{per_commit} bytes written per 1 KiB commit");
    }

    /// The same with zeros written ahead of the tail: the zeros are written once, and a
    /// record stored into a zeroed page still dirties about a page. Zeros written in large
    /// chunks would sit in large page-cache folios, and each record's store would then dirty
    /// (and its commit write back) a whole folio.
    #[test]
    fn small_commits_into_zeros_written_ahead_write_about_a_page_each() {
        let Some((per_commit, page)) = bytes_per_small_commit(true) else { return };
        assert!(per_commit <= 2 * page, "{per_commit} bytes per commit besides the zeros");
    }

    #[test]
    fn read_fresh_fills_head_then_body_with_one_read() {
        let (_dir, _path, f) = sized_file(0);
        let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        std::os::unix::fs::FileExt::write_all_at(&f, &data, 0).unwrap();
        for (off, head, body) in [(0, 0, 0), (3, 5, 0), (3, 0, 5), (7, 100, 65_536), (0, 1, 69_999)]
        {
            let (h, b) = read_fresh(&f, off as u64, head, body).unwrap();
            assert_eq!(h, data[off..off + head], "head at {off}+{head}");
            assert!(b[..] == data[off + head..off + head + body], "body at {off}+{head}+{body}");
        }
        let past = read_fresh(&f, 69_990, 5, 20).unwrap_err();
        assert_eq!(past.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    #[should_panic(expected = "past the end")]
    fn append_through_past_the_end_panics() {
        let (_dir, _path, f) = sized_file(4096);
        let m = Map::new(&f, 4096, 4000).unwrap();
        let mut app = m.take_appender().unwrap();
        let _ = m.append_through(&mut app, &f, &[0u8; 100]);
    }

    /// Resident pages of the mapping that starts at `ptr` (from /proc/self/smaps).
    fn resident_kib(ptr: *mut u8) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let start = format!("{:x}-", ptr as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
        assert!(lines.next().is_some(), "mapping not in smaps");
        let rss = lines.find(|l| l.starts_with("Rss:")).unwrap();
        rss.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn release_drops_residency_and_keeps_every_byte() {
        const LEN: usize = 64 * 4096;
        let (_dir, path, f) = sized_file(LEN);
        let m = Map::new(&f, LEN, 0).unwrap();
        let mut app = m.take_appender().unwrap();
        let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        m.append(&mut app, &[&data]);
        assert!(resident_kib(m.ptr) >= 256, "written pages are resident");
        // Not msynced first: dirty pages must survive DONTNEED on a shared mapping too.
        m.release(0, LEN).unwrap();
        assert_eq!(resident_kib(m.ptr), 0, "released pages left the page tables");
        let mut out = vec![];
        m.copy_out(0, LEN, &mut out);
        assert!(out == data, "bytes read back after release differ");
        m.store_u8(4096 * 3, 7); // a store after release lands in the file
        m.release(0, LEN).unwrap();
        assert_eq!(m.load_u8(4096 * 3), 7);
        m.flush_range(0, LEN).unwrap();
        let disk = std::fs::read(&path).unwrap();
        assert_eq!(disk[4096 * 3], 7);
        assert!(disk[..4096 * 3] == data[..4096 * 3]);
        m.release(LEN, 4096).unwrap(); // past the end: nothing to do
    }

    #[test]
    #[should_panic(expected = "beyond the published tail")]
    fn copy_out_past_tail_panics() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(4096).unwrap();
        let m = Map::new(&f, 4096, 10).unwrap();
        m.copy_out(5, 10, &mut vec![]);
    }
}
