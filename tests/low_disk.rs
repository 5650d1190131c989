//! Low disk behaviour of the real binary (DESIGN invariant 3: low disk gets 452 4.3.1, never a
//! corrupt spool). The mailroot lives on a small filesystem mounted just for the test; each
//! scenario runs on a tmpfs (`mount -t tmpfs -o size=16m`) and on a loop-mounted ext4 image
//! (each falls back to the other kind). Both need root; when neither can be mounted the test
//! prints why and returns (CI runs as root).
//! The filesystem is unmounted by a Drop guard, after the server (declared later) is killed.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Conf, Raw, Server, free_bytes, wait_until};
use lettre::Transport;
use lettre::address::Envelope;

const FS_MIB: u64 = 16;
const MIB: u64 = 1 << 20;

/// A small mounted filesystem; unmounted on drop.
struct SmallFs {
    /// The mount point.
    dir: PathBuf,
    /// How it was made, for messages.
    kind: &'static str,
    /// Holds the mount point (and the image file for ext4); removed after unmounting.
    _holder: tempfile::TempDir,
}

/// Which filesystem a test wants first (it falls back to the other one).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `mount -t tmpfs -o size=16m`: no block layer, pages count against `size`.
    Tmpfs,
    /// A 16 MiB ext4 image on a loop device: real blocks, real ENOSPC paths, no reserve.
    Ext4Loop,
}

impl SmallFs {
    /// Mount `first`, else the other kind; Err lists why each failed.
    fn mount(first: Kind) -> Result<SmallFs, String> {
        let holder = tempfile::Builder::new()
            .prefix("mailroot-lowdisk-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let dir = holder.path().join("mnt");
        fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let order = match first {
            Kind::Tmpfs => [Kind::Tmpfs, Kind::Ext4Loop],
            Kind::Ext4Loop => [Kind::Ext4Loop, Kind::Tmpfs],
        };
        let mut why = Vec::new();
        for kind in order {
            let r = match kind {
                Kind::Tmpfs => mount_tmpfs(&dir),
                Kind::Ext4Loop => mount_ext4(holder.path(), &dir),
            };
            match r {
                Ok(name) => return Ok(SmallFs { dir, kind: name, _holder: holder }),
                Err(e) => why.push(e),
            }
        }
        Err(why.join("; "))
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("{what}: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

fn mount_tmpfs(dir: &Path) -> Result<&'static str, String> {
    let size = format!("size={FS_MIB}m");
    run(Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(dir), "tmpfs")?;
    Ok("tmpfs")
}

fn mount_ext4(holder: &Path, dir: &Path) -> Result<&'static str, String> {
    let img = holder.join("fs.img");
    fs::File::create(&img)
        .and_then(|f| f.set_len(FS_MIB * MIB))
        .map_err(|e| format!("ext4 image: {e}"))?;
    // -m 0: no root reserve, so "free" means the same to the server (root) and statvfs.
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-m", "0"]).arg(&img), "mkfs.ext4")?;
    run(Command::new("mount").args(["-o", "loop"]).arg(&img).arg(dir), "mount -o loop")?;
    Ok("ext4 loop")
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        for _ in 0..50 {
            let ok = Command::new("umount").arg(&self.dir).status().is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Mount or explain why not (and skip).
fn small_fs_or_skip(test: &str, kind: Kind) -> Option<SmallFs> {
    match SmallFs::mount(kind) {
        Ok(fs) => {
            eprintln!("{test}: spool on {} at {}", fs.kind, fs.dir.display());
            Some(fs)
        }
        Err(why) => {
            eprintln!("{test}: SKIPPED, cannot mount a small filesystem: {why}");
            None
        }
    }
}

fn conf_on(fs: &SmallFs, min_free: &str) -> Conf {
    let mut c = Conf::default().limit("min_free_disk", &format!("{min_free:?}"));
    c.mailroot = Some(fs.dir.join("mailroot"));
    c.segment_size = Some("\"1MiB\"".into());
    c
}

/// Append to `path` until the filesystem has less than `leave` bytes free (or ENOSPC).
fn fill_until(path: &Path, leave: u64) {
    let dir = path.parent().expect("parent");
    let mut f = fs::OpenOptions::new().create(true).append(true).open(path).expect("filler");
    let mut chunk = vec![0x5Au8; 64 * 1024];
    for _ in 0..100_000 {
        let free = free_bytes(dir);
        if free < leave || (leave == 0 && free == 0) {
            break;
        }
        if free < chunk.len() as u64 {
            chunk.truncate(usize::try_from(free.max(1)).expect("small"));
        }
        if f.write_all(&chunk).is_err() {
            // ENOSPC: shrink and keep going until not even one byte fits.
            if chunk.len() == 1 {
                break;
            }
            chunk.truncate(chunk.len() / 2);
        }
    }
    let _ = f.sync_all();
}

fn envelope(from: &str) -> Envelope {
    Envelope::new(Some(from.parse().expect("from")), vec!["r@localhost".parse().expect("to")])
        .expect("envelope")
}

/// Try MAIL on a fresh connection until its reply code satisfies `want` (bounded; the server
/// may cache its free-space answer for about a second).
fn mail_reply_until(srv: &Server, want: impl Fn(u16) -> bool) -> Option<common::Reply> {
    wait_until(Duration::from_secs(8), Duration::from_millis(200), || {
        let mut c = Raw::connect(srv.addr()).ok()?;
        c.hello();
        let r = c.cmd("MAIL FROM:<probe@client.test>");
        want(r.code).then_some(r)
    })
}

fn body(from: &str) -> Vec<u8> {
    format!("Subject: {from}\r\n\r\nlow disk test\r\n").into_bytes()
}

#[test]
fn below_min_free_disk_tmpfs() {
    below_min_free_disk(Kind::Tmpfs);
}

#[test]
fn below_min_free_disk_ext4() {
    below_min_free_disk(Kind::Ext4Loop);
}

#[test]
fn disk_full_during_data_tmpfs() {
    disk_full_during_data(Kind::Tmpfs);
}

#[test]
fn disk_full_during_data_ext4() {
    disk_full_during_data(Kind::Ext4Loop);
}

/// MAIL gets 452 4.3.1 while free space < min_free_disk, and is accepted again after.
fn below_min_free_disk(kind: Kind) {
    let Some(small) = small_fs_or_skip("low_disk below min_free", kind) else { return };
    let mut srv = Server::start(conf_on(&small, "4MiB"));
    let mailer = srv.lettre();
    mailer.send_raw(&envelope("before@client.test"), &body("before")).expect("first message");

    let filler = small.dir.join("filler");
    fill_until(&filler, 2 * MIB);
    let free = free_bytes(&small.dir);
    assert!(free > 0 && free < 4 * MIB, "filler left {free} bytes free");
    let r = mail_reply_until(&srv, |c| c != 250);
    let r = r.expect("MAIL still accepted with free space below min_free_disk");
    assert_eq!(r.code, 452, "{r}");
    assert!(r.text().contains("4.3.1"), "{r}");
    assert!(srv.is_alive());
    let low = srv.wait_event("disk.low", |_| true);
    assert_eq!(low["min_free_bytes"], 4 * MIB, "{low}");

    fs::remove_file(&filler).expect("remove filler");
    let ok = mail_reply_until(&srv, |c| c == 250);
    assert!(ok.is_some(), "MAIL not accepted again after freeing space");
    srv.wait_event("disk.recovered", |_| true);
    mailer.send_raw(&envelope("after@client.test"), &body("after")).expect("message after freeing");
    let q = srv.queued_senders();
    assert!(q.contains(&"before@client.test".to_string()), "{q:?}");
    assert!(q.contains(&"after@client.test".to_string()), "{q:?}");
    drop(srv); // kill before the SmallFs guard unmounts
}

/// The disk fills to 0 bytes while a message is in DATA: 451/452 for it, the server lives,
/// earlier messages stay listed and byte-exact, and mail flows again once space is freed.
fn disk_full_during_data(kind: Kind) {
    let Some(small) = small_fs_or_skip("low_disk full in DATA", kind) else { return };
    let mut srv = Server::start(conf_on(&small, "1MiB"));
    let mailer = srv.lettre();
    let mut acked = Vec::new();
    for i in 0..3 {
        let from = format!("early{i}@client.test");
        mailer.send_raw(&envelope(&from), &body(&from)).expect("early message");
        acked.push(from);
    }

    // A message in DATA when the disk becomes completely full.
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    assert_eq!(c.cmd("MAIL FROM:<doomed@client.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<r@localhost>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    let line = b"this message will not fit on the disk ...................................\r\n";
    let mut part = b"Subject: doomed\r\n\r\n".to_vec();
    while part.len() < 64 * 1024 {
        part.extend_from_slice(line);
    }
    c.send(&part);
    std::thread::sleep(Duration::from_millis(100));
    let filler = small.dir.join("filler");
    fill_until(&filler, 0);
    eprintln!("free after filling: {} bytes", free_bytes(&small.dir));
    let mut rest = Vec::new();
    while rest.len() < 3 * MIB as usize {
        rest.extend_from_slice(line);
    }
    c.send(&rest);
    c.send(b".\r\n");
    let r = c.read_reply().expect("a reply to end of data on a full disk");
    assert!(r.code == 452 || r.code == 451, "full disk during DATA must be 451/452: {r}");
    assert!(srv.is_alive(), "server died on a full disk:\n{}", srv.log_tail(4000));
    // The session goes on: a new MAIL is refused for lack of space (bounded retry: the
    // free-space answer may be cached for about a second).
    let r = wait_until(Duration::from_secs(8), Duration::from_millis(200), || {
        let r = c.cmd("MAIL FROM:<later@client.test>");
        if r.code == 250 {
            c.cmd("RSET");
            return None;
        }
        Some(r)
    });
    let r = r.expect("MAIL keeps being accepted on a full disk");
    assert_eq!(r.code, 452, "MAIL on a full disk: {r}");
    assert!(r.text().contains("4.3.1"), "{r}");
    drop(c);

    let q = srv.queued_senders();
    for a in &acked {
        assert!(q.contains(a), "{a} lost on a full disk: {q:?}");
    }
    assert!(!q.contains(&"doomed@client.test".to_string()), "{q:?}");

    fs::remove_file(&filler).expect("remove filler");
    let sent = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
        mailer.send_raw(&envelope("recovered@client.test"), &body("recovered@client.test")).ok()
    });
    assert!(sent.is_some(), "no message accepted after freeing the disk");
    acked.push("recovered@client.test".into());

    // Restart on the same spool: everything acknowledged is there, byte-exact.
    srv.restart();
    let stored = srv.stop_and_read_all();
    for a in &acked {
        let (_, bytes) = stored
            .iter()
            .find(|(m, _)| &m.envelope.reverse_path == a)
            .unwrap_or_else(|| panic!("{a} missing after restart"));
        let mut want = body(a);
        want.extend_from_slice(b"\r\n"); // lettre adds CRLF before the final dot
        common::assert_stored_exactly(bytes, &want);
    }
    assert!(stored.iter().all(|(m, _)| m.envelope.reverse_path != "doomed@client.test"));
    // Nothing else either: no partial or corrupt record of the doomed message came back.
    assert_eq!(stored.len(), acked.len(), "only the acknowledged messages are in the spool");
    drop(srv);
}

#[test]
fn disk_fills_under_concurrent_data_tmpfs() {
    disk_fills_under_concurrent_data(Kind::Tmpfs);
}

#[test]
fn disk_fills_under_concurrent_data_ext4() {
    disk_fills_under_concurrent_data(Kind::Ext4Loop);
}

/// The content client `from` sends in `disk_fills_under_concurrent_data` (~256 KiB, so many
/// messages are in DATA at the moment the disk runs out; no line starts with a dot).
fn big_body(from: &str) -> Vec<u8> {
    let mut b = format!("Subject: {from}\r\n\r\n").into_bytes();
    let line =
        format!("{from} fills the disk ................................................\r\n");
    while b.len() < 256 * 1024 {
        b.extend_from_slice(line.as_bytes());
    }
    b
}

/// Four clients send ~256 KiB messages until the spool's filesystem is full (delivery is
/// held, so the messages themselves fill it; `min_free_disk` off, so the space runs out in
/// the middle of DATA): each message gets 250 or 451/452. Then SIGKILL and restart on the same spool: exactly
/// the acknowledged messages come back, each byte-exact, and no refused one (nothing
/// partial or corrupt is ever recovered).
fn disk_fills_under_concurrent_data(kind: Kind) {
    const CLIENTS: usize = 4;
    const MAX_PER_CLIENT: usize = 40; // 40 x 256 KiB x 4 = 40 MiB: more than the 16 MiB disk
    let Some(small) = small_fs_or_skip("low_disk concurrent fill", kind) else { return };
    // min_free_disk = 0: no 452 at MAIL, so the disk runs out while messages are in DATA.
    let mut srv = Server::start(conf_on(&small, "0"));
    let addr = srv.addr();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            std::thread::spawn(move || {
                let (mut acked, mut refused) = (Vec::new(), Vec::new());
                let mut c = Raw::connect(addr).expect("connect");
                c.hello();
                let mut failures_in_a_row = 0;
                for i in 0..MAX_PER_CLIENT {
                    let from = format!("c{t}m{i}@client.test");
                    let r = c.send_message(&from, &["r@localhost"], &big_body(&from));
                    match r.code {
                        250 => {
                            acked.push(from);
                            failures_in_a_row = 0;
                        }
                        451 | 452 => {
                            refused.push((from, r.to_string()));
                            failures_in_a_row += 1;
                            if failures_in_a_row == 3 {
                                break; // full: three refusals in a row
                            }
                        }
                        _ => panic!("{from}: only 250, 451 or 452 may answer: {r}"),
                    }
                }
                (acked, refused)
            })
        })
        .collect();
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    for t in threads {
        let (a, r) = t.join().expect("client thread");
        acked.extend(a);
        refused.extend(r);
    }
    eprintln!("acknowledged {}, refused {}: {:?}", acked.len(), refused.len(), refused.first());
    assert!(!acked.is_empty(), "nothing was accepted before the disk filled");
    assert!(!refused.is_empty(), "the disk never filled");
    assert!(srv.is_alive(), "server died on a full disk:\n{}", srv.log_tail(4000));

    // Crash, then recover on the same spool.
    srv.restart();
    let stored = srv.stop_and_read_all();
    let mut got: Vec<&str> = stored.iter().map(|(m, _)| m.envelope.reverse_path.as_str()).collect();
    got.sort_unstable();
    let mut want: Vec<&str> = acked.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want, "the spool after a restart holds exactly the acknowledged messages");
    for (m, bytes) in &stored {
        common::assert_stored_exactly(bytes, &big_body(&m.envelope.reverse_path));
    }
    drop(srv);
}
