//! The privilege drop (`[service] user`, `group`, `allow_root`): `mailroot serve` started
//! as root binds every listener, then becomes the service account before it opens a file
//! or starts a thread.
//!
//! Order (see `relay::serve`): the listeners and the admin listener are bound and the
//! open-file limit raised as root; then [`drop_to`] runs while the process still has one
//! thread, so no thread (and no thread of a library: tiny_http's accept thread, the
//! spool's syncers) ever runs as root; only then are the spool, the logs and the
//! certificates opened, so every file mailroot creates belongs to the service account,
//! and the certificate files are read at start-up exactly as a SIGHUP reload reads them
//! later (a key the account cannot read fails at start, not at the first reload).
//!
//! SECURITY: the drop sets the supplementary groups (the user's, from the group
//! database: `initgroups` semantics, so a key file readable by Debian's `ssl-cert` group
//! works by adding the user to that group), then the real, effective and saved group ids,
//! then the real, effective and saved user ids; and then proves that `setuid(0)` fails.
//! The Mailroot folder is prepared as root by [`prepare_mailroot`]: only entries owned by
//! root are given to the account (a folder another user owns is the operator's choice,
//! e.g. a Pickup folder owned by the application that writes it), symbolic links inside
//! are never followed.

use std::ffi::CString;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User};

use crate::config::{Config, LOGS_DIR, MAILROOT_DIRS, QUEUE_DIR, ServiceConfig};

/// The account the relay switches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `service.user`.
    pub user: String,
    /// Its user id. Invariant: not 0 unless `service.allow_root`.
    pub uid: Uid,
    /// The primary group: `service.group`'s id, else the user's.
    pub gid: Gid,
    /// Supplementary groups: the user's groups in the group database, with `gid`.
    pub groups: Vec<Gid>,
}

/// What start-up does about its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Keep the account we were started as (not root, or root with `allow_root`, or
    /// already the service account, e.g. systemd's `User=`).
    Stay,
    /// Started as root: switch to this account after binding.
    Switch(Account),
}

/// Why the account could not be settled or switched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivilegeError {
    /// Started as root with no `service.user` and no `service.allow_root`.
    #[error(
        "config error at `service.user`: mailroot was started as root and has no account to \
         drop to after binding; set `[service] user = \"mailroot\"` (an unprivileged account), \
         or `[service] allow_root = true` to run as root anyway"
    )]
    RootRefused,
    /// `service.user` names no account in the password database.
    #[error("config error at `service.user`: no user {0:?} on this system")]
    UnknownUser(String),
    /// `service.group` names no group in the group database.
    #[error("config error at `service.group`: no group {0:?} on this system")]
    UnknownGroup(String),
    /// Started as neither root nor the service account: no way to switch.
    #[error(
        "config error at `service.user`: started as uid {current}, not root, so cannot switch \
         to {user:?} (uid {target}); start as root or as {user:?}"
    )]
    CannotSwitch {
        /// `service.user`.
        user: String,
        /// Our effective uid.
        current: u32,
        /// The user's uid.
        target: u32,
    },
    /// The password or group database could not be read.
    #[error("cannot look up `{key}` {name:?}: {source}")]
    Lookup {
        /// `service.user` or `service.group`.
        key: &'static str,
        /// The name looked up.
        name: String,
        /// The error.
        source: nix::Error,
    },
    /// A Mailroot folder the account must write is not writable by it and not root's to
    /// give away.
    #[error(
        "{path}: owned by uid {owner} with mode {mode:o}: the service account {user:?} \
         (uid {uid}) cannot write it; chown it to {user:?} (mailroot gives only root's \
         folders away)"
    )]
    NotWritable {
        /// The folder.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
        /// `service.user`.
        user: String,
        /// Its uid.
        uid: u32,
    },
    /// Creating or chowning the Mailroot folder failed.
    #[error("preparing the Mailroot folder {path}: {source}")]
    Prepare {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A step of the drop itself failed.
    #[error("dropping privileges to {user:?}: {step}: {source}")]
    Drop {
        /// `service.user`.
        user: String,
        /// `setgroups`, `setresgid` or `setresuid`.
        step: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// After the drop, root could be regained: refuse to go on.
    #[error("dropping privileges to {0:?}: setuid(0) still succeeds after the drop")]
    StillRoot(String),
}

impl PrivilegeError {
    /// A bad or impossible `[service]` setting (exit status 2), rather than a runtime
    /// failure (exit status 1).
    #[must_use]
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            PrivilegeError::RootRefused
                | PrivilegeError::UnknownUser(_)
                | PrivilegeError::UnknownGroup(_)
                | PrivilegeError::CannotSwitch { .. }
        )
    }
}

/// Settle the account from `[service]` and who we are now (reads the password and group
/// databases).
pub fn plan(service: &ServiceConfig) -> Result<Plan, PrivilegeError> {
    plan_as(service, nix::unistd::geteuid())
}

/// [`plan`] for a process whose effective uid is `euid`.
fn plan_as(service: &ServiceConfig, euid: Uid) -> Result<Plan, PrivilegeError> {
    let Some(name) = &service.user else {
        if euid.is_root() && !service.allow_root {
            return Err(PrivilegeError::RootRefused);
        }
        return Ok(Plan::Stay);
    };
    let lookup = |key, source| PrivilegeError::Lookup { key, name: name.clone(), source };
    let user = User::from_name(name)
        .map_err(|e| lookup("service.user", e))?
        .ok_or_else(|| PrivilegeError::UnknownUser(name.clone()))?;
    let gid = match &service.group {
        Some(g) => {
            Group::from_name(g)
                .map_err(|source| PrivilegeError::Lookup {
                    key: "service.group",
                    name: g.clone(),
                    source,
                })?
                .ok_or_else(|| PrivilegeError::UnknownGroup(g.clone()))?
                .gid
        }
        None => user.gid,
    };
    if user.uid.is_root() && !service.allow_root {
        return Err(PrivilegeError::RootRefused);
    }
    if !euid.is_root() {
        if euid == user.uid {
            return Ok(Plan::Stay); // already the service account (systemd `User=`)
        }
        return Err(PrivilegeError::CannotSwitch {
            user: name.clone(),
            current: euid.as_raw(),
            target: user.uid.as_raw(),
        });
    }
    if user.uid.is_root() {
        return Ok(Plan::Stay); // `user = "root"` with `allow_root`: nothing to drop
    }
    // The name came through `config::service`'s check: no NUL byte.
    let cname =
        CString::new(name.as_bytes()).map_err(|_| PrivilegeError::UnknownUser(name.clone()))?;
    let mut groups =
        nix::unistd::getgrouplist(&cname, gid).map_err(|e| lookup("service.user", e))?;
    if !groups.contains(&gid) {
        groups.push(gid);
    }
    Ok(Plan::Switch(Account { user: name.clone(), uid: user.uid, gid, groups }))
}

/// As root, before the drop: create the Mailroot folders (`Queue/` 0700, the others
/// 0755 as `cli::create_mailroot` does), give every one of them owned by root to the
/// account, and the files and folders inside `Queue/` and `Logs/` too (spool segments and
/// logs are reopened for writing; Drop/Badmail files are only ever created anew and
/// Pickup files only read and removed). A folder the account still cannot write is an
/// error.
pub fn prepare_mailroot(config: &Config, account: &Account) -> Result<(), PrivilegeError> {
    let root = &config.mailroot;
    let logs = root.join(LOGS_DIR);
    let fail = |path: &Path| {
        let path = path.to_owned();
        move |source| PrivilegeError::Prepare { path, source }
    };
    std::fs::create_dir_all(&logs).map_err(fail(&logs))?;
    let mut folders = vec![root.clone(), logs.clone()];
    folders.extend(MAILROOT_DIRS.iter().map(|d| root.join(d)));
    for dir in &folders {
        give_if_root(dir, account).map_err(fail(dir))?;
    }
    for dir in [root.join(QUEUE_DIR), logs] {
        give_tree(&dir, account).map_err(fail(&dir))?;
    }
    for dir in &folders {
        let meta = std::fs::metadata(dir).map_err(fail(dir))?;
        if !writable_by(&meta, account) {
            return Err(PrivilegeError::NotWritable {
                path: dir.clone(),
                owner: meta.uid(),
                mode: meta.mode() & 0o7777,
                user: account.user.clone(),
                uid: account.uid.as_raw(),
            });
        }
    }
    Ok(())
}

/// `chown` `path` (following a symlink: the operator may point the Mailroot elsewhere)
/// to the account when root owns it.
fn give_if_root(path: &Path, account: &Account) -> io::Result<()> {
    if std::fs::metadata(path)?.uid() == 0 {
        std::os::unix::fs::chown(path, Some(account.uid.as_raw()), Some(account.gid.as_raw()))?;
    }
    Ok(())
}

/// Every entry under `dir` owned by root goes to the account; symbolic links are neither
/// followed nor changed.
fn give_tree(dir: &Path, account: &Account) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.path().symlink_metadata()?;
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.uid() == 0 {
            std::os::unix::fs::lchown(
                entry.path(),
                Some(account.uid.as_raw()),
                Some(account.gid.as_raw()),
            )?;
        }
        if meta.is_dir() {
            give_tree(&entry.path(), account)?;
        }
    }
    Ok(())
}

/// Whether the permission bits let the account write (and enter) the folder.
fn writable_by(meta: &std::fs::Metadata, account: &Account) -> bool {
    let mode = meta.mode();
    if meta.uid() == account.uid.as_raw() {
        return mode & 0o300 == 0o300;
    }
    if account.groups.iter().any(|g| g.as_raw() == meta.gid()) {
        return mode & 0o030 == 0o030;
    }
    mode & 0o003 == 0o003
}

/// Become the account: supplementary groups, then group ids, then user ids (real,
/// effective and saved, so nothing is left to switch back to); then check that root
/// cannot be regained. Call it while the process has a single thread.
pub fn drop_to(account: &Account) -> Result<(), PrivilegeError> {
    let fail = |step| {
        let user = account.user.clone();
        move |source| PrivilegeError::Drop { user, step, source }
    };
    nix::unistd::setgroups(&account.groups).map_err(fail("setgroups"))?;
    let g = account.gid;
    nix::unistd::setresgid(g, g, g).map_err(fail("setresgid"))?;
    let u = account.uid;
    nix::unistd::setresuid(u, u, u).map_err(fail("setresuid"))?;
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() || nix::unistd::geteuid().is_root() {
        return Err(PrivilegeError::StillRoot(account.user.clone()));
    }
    log::info!(
        "privileges dropped user={} uid={} gid={} groups={}",
        account.user,
        u,
        g,
        account.groups.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(user: Option<&str>, group: Option<&str>, allow_root: bool) -> ServiceConfig {
        ServiceConfig { user: user.map(str::to_owned), group: group.map(str::to_owned), allow_root }
    }

    /// `root` exists on every system this runs on; names that cannot exist are refused
    /// naming their key. The `euid` is passed in: no test here needs to be root.
    #[test]
    fn plans() {
        let root = Uid::from_raw(0);
        let me = Uid::from_raw(4242);
        let no_user = "mailroot-test-no-such-user";
        // (service, euid, Ok(plan is Stay) or Err(message words))
        let cases: &[(ServiceConfig, Uid, Result<(), &str>)] = &[
            (service(None, None, false), me, Ok(())),
            (service(None, None, false), root, Err("`service.user`")),
            (service(None, None, true), root, Ok(())),
            (service(Some(no_user), None, false), root, Err("no user")),
            (service(Some(no_user), None, true), me, Err("`service.user`")),
            (service(Some("root"), Some(no_user), true), root, Err("`service.group`")),
            (service(Some("root"), None, false), root, Err("allow_root")),
            (service(Some("root"), None, true), root, Ok(())),
            (service(Some("root"), None, true), me, Err("not root, so cannot switch")),
        ];
        // Already the service account (systemd `User=`): nothing to switch.
        if let Ok(Some(nobody)) = User::from_name("nobody") {
            let got = plan_as(&service(Some("nobody"), None, false), nobody.uid);
            assert!(matches!(got, Ok(Plan::Stay)), "{got:?}");
        }
        for (svc, euid, want) in cases {
            let got = plan_as(svc, *euid);
            match (want, got) {
                (Ok(()), Ok(Plan::Stay)) => {}
                (Err(words), Err(e)) => {
                    assert!(e.to_string().contains(words), "{svc:?} as {euid}: {e}");
                    assert!(e.is_config(), "{svc:?}: exit 2");
                }
                (want, got) => panic!("{svc:?} as {euid}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn write_permission_bits() {
        let dir = tempfile::tempdir().unwrap();
        let meta = std::fs::metadata(dir.path()).unwrap();
        let owner = Account {
            user: "x".into(),
            uid: Uid::from_raw(meta.uid()),
            gid: Gid::from_raw(meta.gid()),
            groups: vec![Gid::from_raw(meta.gid())],
        };
        let stranger = Account {
            uid: Uid::from_raw(meta.uid() + 1),
            groups: vec![Gid::from_raw(meta.gid() + 1)],
            ..owner.clone()
        };
        let in_group = Account { uid: Uid::from_raw(meta.uid() + 1), ..owner.clone() };
        use std::os::unix::fs::PermissionsExt as _;
        // (mode, owner may write, a group member may write, a stranger may write)
        for (mode, o, g, s) in [
            (0o700, true, false, false),
            (0o770, true, true, false),
            (0o777, true, true, true),
            (0o500, false, false, false),
            (0o1777, true, true, true),
        ] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let meta = std::fs::metadata(dir.path()).unwrap();
            assert_eq!(writable_by(&meta, &owner), o, "{mode:o} owner");
            assert_eq!(writable_by(&meta, &in_group), g, "{mode:o} group");
            assert_eq!(writable_by(&meta, &stranger), s, "{mode:o} stranger");
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}
