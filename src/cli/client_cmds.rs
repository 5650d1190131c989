//! The client commands: `send`, `inbox` and `sendmail` (also reached as `sendmail` through
//! a symlink: argv[0] dispatch in `cli::run`). They are thin: the library
//! (`crate::client`) does the work; this file reads stdin, files, the environment and the
//! configuration, and maps errors to exit codes.
//!
//! Exit codes: `send` and `inbox` use mailroot's (0, 1 runtime failure, 2 usage or
//! configuration); `sendmail` uses `<sysexits.h>` as callers of sendmail expect (64 usage,
//! 65 data, 66 no input, 75 temporary failure, 78 configuration).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;

use super::{ConfigArg, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, load_config, report};
use crate::client::sendmail::{self, Context, SendmailError};
use crate::client::{Importance, Inbox, InboxMessage, Kind, Session, SmtpServer, Transport};
use crate::config::Config;
use crate::plan::route::{Route, route};

/// Where `sendmail` looks for the configuration when neither `-C` nor `--config` is given
/// and `MAILROOT_CONFIG` is unset.
pub(super) const SENDMAIL_DEFAULT_CONFIG: &str = "/etc/mailroot/mailroot.toml";
/// Environment variable naming the configuration file for `sendmail`.
pub(super) const CONFIG_ENV: &str = "MAILROOT_CONFIG";
/// Environment variable holding the AUTH password for `send --user`.
pub(super) const PASSWORD_ENV: &str = "MAILROOT_PASSWORD";

/// `mailroot send`: one message, body from stdin.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Sender address (also the From: header).
    #[arg(long, value_name = "ADDRESS")]
    pub from: String,
    /// Sender display name.
    #[arg(long, value_name = "NAME", default_value = "")]
    pub name: String,
    /// To: recipient (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    pub to: Vec<String>,
    /// Cc: recipient (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    pub cc: Vec<String>,
    /// Blind copy recipient (repeatable; in no header).
    #[arg(long, value_name = "ADDRESS")]
    pub bcc: Vec<String>,
    /// Subject.
    #[arg(long, default_value = "")]
    pub subject: String,
    /// Attach a file (repeatable).
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// An HTML body from this file (stdin stays the text body).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// low, normal or high.
    #[arg(long, default_value = "normal", value_parser = parse_importance)]
    pub importance: Importance,
    /// Submit over SMTP to this server instead of the Pickup folder.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "pickup")]
    pub server: Option<String>,
    /// Require STARTTLS (the certificate is checked).
    #[arg(long, requires = "server")]
    pub starttls: bool,
    /// Extra PEM roots for the certificate check.
    #[arg(long, value_name = "FILE", requires = "starttls")]
    pub ca_file: Option<PathBuf>,
    /// AUTH user (with --starttls); the password comes from --password-file or the
    /// MAILROOT_PASSWORD environment variable.
    #[arg(long, value_name = "USER", requires = "starttls")]
    pub user: Option<String>,
    /// File holding the AUTH password (one line).
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
    /// Write into the configured Mailroot's Pickup folder (the default).
    #[arg(long)]
    pub pickup: bool,
    /// The configuration file (for the Mailroot folder and host name).
    #[command(flatten)]
    pub config: ConfigArg,
}

/// `mailroot inbox`: the Drop folder as one address sees it.
#[derive(Debug, Args)]
pub struct InboxArgs {
    /// The address whose mail to list (an `x-receiver:` of the Drop files).
    #[arg(long, value_name = "ADDRESS")]
    pub address: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print message N (1 = newest) in full.
    #[arg(long, value_name = "N", conflicts_with = "delete")]
    pub show: Option<usize>,
    /// Delete message N (1 = newest).
    #[arg(long, value_name = "N")]
    pub delete: Option<usize>,
    /// The configuration file (for the Mailroot folder and `[[domain]] drop` folders).
    #[command(flatten)]
    pub config: ConfigArg,
}

fn parse_importance(s: &str) -> Result<Importance, String> {
    Importance::from_word(s).ok_or_else(|| format!("{s:?}: expected low, normal or high"))
}

/// The domain for unqualified addresses: the first local domain, else the host name.
fn default_domain(config: &Config) -> &str {
    config.domains.local.first().map_or(config.hostname.as_str(), String::as_str)
}

/// The Drop folder mail for `address` is delivered to (its domain's `[[domain]] drop`, or
/// `<mailroot>/Drop`).
fn drop_folder_for(config: &Config, address: &str) -> PathBuf {
    let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
    match route(config, domain) {
        Route::Local { drop_dir } => drop_dir,
        _ => config.drop_dir(),
    }
}

/// `send`.
pub(super) fn send(a: SendArgs) -> i32 {
    let config = match load_config(a.config.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let transport = match &a.server {
        None => Transport::Pickup(config.pickup_dir()),
        Some(hp) => {
            let Some((host, port)) =
                hp.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            else {
                report(format!("--server {hp:?}: expected HOST:PORT"));
                return EXIT_USAGE;
            };
            let mut s = SmtpServer::new(host, port).helo_name(&config.hostname);
            if a.starttls {
                s = s.starttls(a.ca_file.as_deref());
            }
            if let Some(user) = &a.user {
                let password = match password(a.password_file.as_deref()) {
                    Ok(p) => p,
                    Err(msg) => {
                        report(msg);
                        return EXIT_USAGE;
                    }
                };
                s = s.auth(user, &password);
            }
            Transport::Smtp(s)
        }
    };
    let session = match Session::logon(&a.name, &a.from, transport) {
        Ok(s) => s,
        Err(e) => {
            report(format!("--from: {e}"));
            return EXIT_USAGE;
        }
    };
    let mut text = String::new();
    if let Err(e) = io::stdin().read_to_string(&mut text) {
        report(format!("cannot read the message text from stdin: {e}"));
        return EXIT_FAILURE;
    }
    let mut message = session.outbox().add(&a.subject, &text, a.importance);
    for (list, kind) in [(&a.to, Kind::To), (&a.cc, Kind::Cc), (&a.bcc, Kind::Bcc)] {
        for addr in list {
            if let Err(e) = message.recipients_mut().add("", addr, kind) {
                report(e);
                return EXIT_USAGE;
            }
        }
    }
    if message.recipients().is_empty() {
        report("no recipients (--to, --cc or --bcc)");
        return EXIT_USAGE;
    }
    if let Some(path) = &a.html {
        match std::fs::read_to_string(path) {
            Ok(h) => {
                message.set_html(&h);
            }
            Err(e) => {
                report(format!("cannot read {}: {e}", path.display()));
                return EXIT_USAGE;
            }
        }
    }
    for path in &a.attach {
        if let Err(e) = message.attachments_mut().add_file(path) {
            report(e);
            return EXIT_USAGE;
        }
    }
    match message.send() {
        Ok(r) => {
            let what = match (&r.reply, &r.file) {
                (_, Some(f)) => format!("written to {}", f.display()),
                (Some(reply), None) => reply.clone(),
                (None, None) => "sent".to_owned(),
            };
            let _ = writeln!(io::stdout().lock(), "{what}");
            EXIT_OK
        }
        Err(e) => {
            report(format!("not sent: {e}"));
            EXIT_FAILURE
        }
    }
}

/// The AUTH password: the file's first line, else `MAILROOT_PASSWORD`.
fn password(file: Option<&Path>) -> Result<String, String> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| format!("--password-file {}: {e}", f.display()))?;
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    std::env::var(PASSWORD_ENV)
        .map_err(|_| format!("--user needs --password-file or {PASSWORD_ENV}"))
}

/// Seconds since the epoch of `t`, as RFC 3339.
fn rfc3339(t: Option<SystemTime>) -> Option<String> {
    let ms = t?.duration_since(UNIX_EPOCH).ok()?.as_millis();
    Some(crate::smtp::date::rfc3339_utc_ms(i64::try_from(ms).ok()?))
}

/// One message as JSON.
fn message_json(n: usize, m: &InboxMessage) -> serde_json::Value {
    serde_json::json!({
        "index": n,
        "file": m.path().display().to_string(),
        "subject": m.subject(),
        "from": m.sender(),
        "envelope_sender": m.envelope_sender(),
        "to": m.to(),
        "cc": m.cc(),
        "time_sent": rfc3339(m.time_sent()),
        "time_received": rfc3339(m.time_received()),
        "text": m.text(),
        "html": m.html(),
        "attachments": m.attachments().iter().map(|a| serde_json::json!({
            "name": a.name, "content_type": a.content_type, "size": a.bytes.len(),
        })).collect::<Vec<_>>(),
    })
}

/// `inbox`.
pub(super) fn inbox(a: InboxArgs) -> i32 {
    let config = match load_config(a.config.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = crate::client::draft::check_address(&a.address) {
        report(format!("--address: {e}"));
        return EXIT_USAGE;
    }
    let folder = drop_folder_for(&config, &a.address);
    let inbox = match Inbox::read(&folder, &a.address) {
        Ok(i) => i,
        Err(e) => {
            report(e);
            return EXIT_FAILURE;
        }
    };
    for s in inbox.skipped() {
        report(format!("skipped {}: {}", s.path.display(), s.reason));
    }
    let pick = |n: usize| -> Result<&InboxMessage, i32> {
        n.checked_sub(1).and_then(|i| inbox.get(i)).ok_or_else(|| {
            report(format!("no message {n} (the inbox holds {})", inbox.len()));
            EXIT_USAGE
        })
    };
    let mut out = io::stdout().lock();
    if let Some(n) = a.delete {
        let m = match pick(n) {
            Ok(m) => m,
            Err(code) => return code,
        };
        return match m.delete() {
            Ok(()) => {
                let _ = writeln!(out, "deleted {}", m.path().display());
                EXIT_OK
            }
            Err(e) => {
                report(format!("cannot delete {}: {e}", m.path().display()));
                EXIT_FAILURE
            }
        };
    }
    let text = if let Some(n) = a.show {
        let m = match pick(n) {
            Ok(m) => m,
            Err(code) => return code,
        };
        if a.json { format!("{:#}\n", message_json(n, m)) } else { show(m) }
    } else if a.json {
        let all: Vec<_> = inbox.iter().enumerate().map(|(i, m)| message_json(i + 1, m)).collect();
        format!("{:#}\n", serde_json::Value::Array(all))
    } else {
        table(&inbox)
    };
    match out.write_all(text.as_bytes()) {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            report(format!("cannot write to stdout: {e}"));
            EXIT_FAILURE
        }
    }
}

/// The list: `N  RECEIVED  FROM  SUBJECT  [n attachments]`.
fn table(inbox: &Inbox) -> String {
    let mut s = format!("{} message(s)\n", inbox.len());
    for (i, m) in inbox.iter().enumerate() {
        let when = rfc3339(m.time_received().or(Some(m.time_delivered()))).unwrap_or_default();
        let from = m.sender().map_or(m.envelope_sender(), |p| p.address.as_str());
        let att = match m.attachments().len() {
            0 => String::new(),
            n => format!("  [{n} attachment(s)]"),
        };
        s += &format!(
            "{:>3}  {when}  {from}  {}{att}\n",
            i + 1,
            m.subject().unwrap_or("(no subject)")
        );
    }
    s
}

/// One message in full (headers we know, the text, the attachment list).
fn show(m: &InboxMessage) -> String {
    let person = |p: &crate::client::Person| {
        if p.name.is_empty() { p.address.clone() } else { format!("{} <{}>", p.name, p.address) }
    };
    let mut s = String::new();
    s += &format!("File: {}\n", m.path().display());
    s += &format!("From: {}\n", m.sender().map(person).unwrap_or_default());
    let to: Vec<_> = m.to().iter().map(person).collect();
    s += &format!("To: {}\n", to.join(", "));
    if !m.cc().is_empty() {
        let cc: Vec<_> = m.cc().iter().map(person).collect();
        s += &format!("Cc: {}\n", cc.join(", "));
    }
    s += &format!("Subject: {}\n", m.subject().unwrap_or(""));
    s += &format!("Sent: {}\n", rfc3339(m.time_sent()).unwrap_or_else(|| "(unknown)".into()));
    s += &format!(
        "Received: {}\n",
        rfc3339(m.time_received()).unwrap_or_else(|| "(unknown)".into())
    );
    for a in m.attachments() {
        s += &format!("Attachment: {} ({}, {} bytes)\n", a.name, a.content_type, a.bytes.len());
    }
    s += "\n";
    s += m.text().unwrap_or("");
    if !s.ends_with('\n') {
        s += "\n";
    }
    s
}

/// The configuration `sendmail` uses: `-C`/`--config`, else `MAILROOT_CONFIG`, else
/// `/etc/mailroot/mailroot.toml` when it exists, else the embedded default.
fn sendmail_config(arg: Option<&Path>) -> Result<Config, SendmailError> {
    let env = std::env::var_os(CONFIG_ENV).map(PathBuf::from);
    let default = Path::new(SENDMAIL_DEFAULT_CONFIG);
    let path = arg
        .map(Path::to_path_buf)
        .or(env)
        .or_else(|| default.is_file().then(|| default.to_path_buf()));
    load_config(path.as_deref())
        .map_err(|_| SendmailError::Config("the configuration cannot be used (see above)".into()))
}

/// The login name: `LOGNAME`, `USER`, else the process owner's name in /etc/passwd.
fn login_name() -> String {
    use std::os::unix::fs::MetadataExt as _;
    for var in ["LOGNAME", "USER"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
            && crate::client::draft::check_address(&format!("{v}@x.example")).is_ok()
        {
            return v;
        }
    }
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && uid.is_some_and(|u| f[2] == u.to_string()))
        .map_or_else(|| "nobody".to_owned(), |f| f[0].to_owned())
}

/// `sendmail [options] [recipient...]` (`args` without the program name).
pub(super) fn sendmail(args: &[String]) -> i32 {
    match sendmail_inner(args) {
        Ok(()) => sendmail::EX_OK,
        Err(e) => {
            let _ = writeln!(io::stderr().lock(), "sendmail: {e}");
            e.exit_code()
        }
    }
}

fn sendmail_inner(args: &[String]) -> Result<(), SendmailError> {
    let a = sendmail::parse_args(args)?;
    let config = sendmail_config(a.config.as_deref())?;
    let mut input = Vec::new();
    io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| SendmailError::NoInput(format!("cannot read the message from stdin: {e}")))?;
    let login = login_name();
    let domain = default_domain(&config);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let id = crate::client::mime::message_id(
        now.as_millis(),
        crate::client::transport::next_unique(),
        domain,
    );
    let ctx = Context {
        login: &login,
        default_domain: domain,
        now_unix: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
        message_id: &id,
    };
    let prepared = sendmail::prepare(&a, &input, &ctx)?;
    crate::client::transport::write_pickup_file(&config.pickup_dir(), &prepared.file)
        .map(|_| ())
        .map_err(|e| SendmailError::TempFail(e.to_string()))
}
