//! Command line: arguments -> [`Command`], then dispatch. No relay logic lives here.
//!
//! ```text
//! mailroot serve        [--config FILE]           run the relay
//! mailroot check-config [--config FILE]           print the effective config as TOML
//! mailroot queue list   [--json] [--domain D] [--state S] [--config FILE]
//!                                                 list the messages in Queue/
//! mailroot queue show   ID [--json] [--config FILE]  one message in full
//! mailroot queue shape  [--json] [--config FILE]  qshape: pending recipients by domain x age
//! mailroot queue flush  [ID | --domain D] [--config FILE]  retry now (all, one, a domain)
//! mailroot queue delete|bounce|hold|release ID [--config FILE]
//!                                                 act on one message (through the running
//!                                                 server's admin listener; without a
//!                                                 server, on Queue/ under its lock)
//! mailroot stats        [--watch SECONDS [--count N]] [--json] [--config FILE]
//!                                                 the counters, from the admin listener
//! mailroot hash-password                          read a password on stdin, print its
//!                                                 argon2id PHC hash for `[[user]]`
//! mailroot pause|resume [--site S] [--config FILE]  stop / start taking new connections
//! mailroot stop|start --site S [--config FILE]    close / re-bind one site's listeners
//! mailroot drain  [--timeout SECONDS] [--config FILE]  pause all, wait for an empty queue,
//!                                                 then the server exits 0
//! mailroot reload [--config FILE]                 re-read the server's configuration
//!
//! Client commands (`cli/client_cmds.rs`, over the `client` library):
//! mailroot send --from A --to B ... [--server HOST:PORT [--starttls] [--user U]] | [--pickup]
//! mailroot inbox --address A [--json] [--show N] [--delete N]
//! mailroot sendmail [-t] [-f sender] [-i] [-oi] [-F name] [recipient...]
//!          (also as `sendmail` through a symlink: argv[0] decides; sysexits exit codes)
//! ```
//!
//! Exit status: [`EXIT_OK`] 0; [`EXIT_FAILURE`] 1 for a runtime failure (cannot bind,
//! spool unreadable); [`EXIT_USAGE`] 2 for a configuration or usage error (clap's usage
//! errors use 2 as well). Errors go to stderr as `mailroot: <what went wrong>`, e.g.
//! ``mailroot: config error at `limits.max_connections`: must be > 0``.
//!
//! This is the layer that does the I/O `config` must not: it reads the config file, asks
//! the OS for the host name and core count ([`system_defaults`]) and creates the Mailroot
//! folders ([`create_mailroot`]).

mod client_cmds;
mod control;
mod queue_action;
mod queue_inspect;
mod queue_offline;
mod serve;
mod stats;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, MAILROOT_DIRS, QUEUE_DIR, SystemDefaults};

/// Exit status: success.
pub const EXIT_OK: i32 = 0;
/// Exit status: a runtime failure (I/O, bind, spool).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status: a bad configuration or bad command line.
pub const EXIT_USAGE: i32 = 2;
/// Exit status of `mailroot drain` when the timeout passed with mail still queued (the
/// server stays paused).
pub const EXIT_DRAIN_TIMEOUT: i32 = 3;

/// Where the kernel publishes the host name on Linux (what `gethostname(2)` returns);
/// read as a file so this crate needs no `unsafe` FFI call.
const PROC_HOSTNAME: &str = "/proc/sys/kernel/hostname";
/// Fallback host name file on other Unix systems.
const ETC_HOSTNAME: &str = "/etc/hostname";
/// Mode of `Queue/`: only the relay's user may read or write the spool (the spool's mmap
/// safety argument relies on nobody else truncating its files).
const QUEUE_DIR_MODE: u32 = 0o700;

/// mailroot: a high-throughput SMTP relay, a modern re-creation of the IIS SMTP Service.
#[derive(Debug, Parser)]
#[command(name = "mailroot", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay until SIGTERM or SIGINT.
    Serve(ConfigArg),
    /// Validate the configuration and print the full effective configuration as TOML.
    CheckConfig(ConfigArg),
    /// Inspect the queue (Queue/ in the Mailroot).
    Queue {
        /// The queue operation.
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Show the performance counters of the running server (read from its admin listener).
    Stats {
        /// Read again every SECONDS and show per-second rates (stop with Ctrl-C).
        #[arg(long, value_name = "SECONDS")]
        watch: Option<u64>,
        /// With --watch: stop after N reads.
        #[arg(long, value_name = "N", requires = "watch")]
        count: Option<u64>,
        /// Print the raw JSON of `GET /api/stats` instead of the table.
        #[arg(long)]
        json: bool,
        /// The configuration file (for `[admin] listen` and `token`).
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Read a password from stdin (one line) and print its argon2id PHC hash, the
    /// `password_hash` of a `[[user]]` (SMTP AUTH).
    HashPassword,
    /// Pause the running server (one site or all): new connections get `421 4.3.2`,
    /// open sessions finish, the queue keeps delivering.
    Pause(SiteArg),
    /// Resume a paused site (or all).
    Resume(SiteArg),
    /// Stop one site of the running server: its listeners close (connections refused),
    /// its sessions are told `421 4.3.2`, the queue keeps delivering.
    Stop(SiteName),
    /// Start a stopped site: bind its addresses again (exit 1 if one is in use; the site
    /// stays stopped).
    Start(SiteName),
    /// Pause every site, wait until the queue is empty, then stop the server (exit 0).
    /// If the timeout passes first the server stays paused and this exits 3.
    Drain {
        /// How long to wait, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = crate::admin::control::DEFAULT_DRAIN_TIMEOUT_SECS)]
        timeout: u64,
        /// The configuration file (for `[admin] listen` and `token`).
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Make the running server re-read its configuration file (as SIGHUP does).
    Reload(ConfigArg),
    // ---- client commands (cli/client_cmds.rs) ----
    /// Send one message (body from stdin) through the Pickup folder or an SMTP server.
    Send(Box<client_cmds::SendArgs>),
    /// List, show or delete the messages one address has in the Drop folder.
    Inbox(client_cmds::InboxArgs),
    /// The sendmail interface (cron, PHP mail(), mail(1)): `mailroot sendmail [-t] [-i]
    /// [-f sender] [-F name] [recipient...]`, message on stdin, into the Pickup folder.
    /// Exit codes are sysexits (64 usage, 65 data, 66 no input, 75 try again, 78 config).
    Sendmail {
        /// sendmail options and recipients (parsed by sendmail's rules, not these).
        #[arg(num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
}

/// `--site S` and `--config FILE` for pause and resume.
#[derive(Debug, Args)]
pub struct SiteArg {
    /// Only this site (default: every site).
    #[arg(long, value_name = "SITE")]
    pub site: Option<String>,
    /// The configuration file (for `[admin] listen` and `token`).
    #[command(flatten)]
    pub config: ConfigArg,
}

/// `--site S` (required) and `--config FILE` for stop and start.
#[derive(Debug, Args)]
pub struct SiteName {
    /// The site.
    #[arg(long, value_name = "SITE")]
    pub site: String,
    /// The configuration file (for `[admin] listen` and `token`).
    #[command(flatten)]
    pub config: ConfigArg,
}

/// Queue operations.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queued messages (safe while the server runs).
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Filters (`--domain`, `--state`).
        #[command(flatten)]
        filter: queue_inspect::ListFilter,
        /// The configuration file.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// One message in full: envelope, DSN parameters, recipients with their delivery
    /// state, header section (safe while the server runs).
    Show {
        /// The queue id (16 hex digits).
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The configuration file.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// qshape: pending recipients by destination domain and age (minutes).
    Shape {
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// The configuration file.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Retry deferred messages now: all of them, one queue id, or one domain. The running
    /// server picks the request up from `Queue/flush.req` within a quarter second.
    Flush {
        /// Only this queue id (16 hex digits).
        id: Option<String>,
        /// Only recipients in this domain.
        #[arg(long, conflicts_with = "id")]
        domain: Option<String>,
        /// The configuration file.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Delete a message: every pending recipient given up, no report to the sender.
    Delete(QueueIdArg),
    /// Bounce a message now: an NDR to its sender for every pending recipient.
    Bounce(QueueIdArg),
    /// Hold a message: not tried until released (survives a restart).
    Hold(QueueIdArg),
    /// Release a held message: back into the schedule, tried now.
    Release(QueueIdArg),
}

/// A queue id and the configuration (for the admin listener's address and token).
#[derive(Debug, Args)]
pub struct QueueIdArg {
    /// The queue id (16 hex digits, as `mailroot queue list` shows it).
    pub id: String,
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
}

/// The `--config FILE` option shared by the subcommands.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// TOML configuration file; without it the embedded defaults are used.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Parse the process arguments and run; returns the process exit status.
pub fn main() -> i32 {
    run(std::env::args_os())
}

/// Parse `args` (program name first) and run; returns the exit status.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> i32 {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // sendmail's command line is not clap's: `sendmail` as the program name (a symlink to
    // this binary, e.g. /usr/sbin/sendmail) or as the subcommand is dispatched here.
    let program = args.first().map(Path::new).and_then(Path::file_name);
    let sendmail_args = if program.is_some_and(|p| p == "sendmail") {
        Some(&args[1..])
    } else if args.get(1).is_some_and(|a| a == "sendmail") {
        Some(&args[2..])
    } else {
        None
    };
    if let Some(rest) = sendmail_args {
        let rest: Vec<String> = rest.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        return client_cmds::sendmail(&rest);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" that print to stdout and exit 0.
            let _ = e.print();
            return e.exit_code();
        }
    };
    match cli.command {
        Command::Serve(arg) => serve::serve(arg.config.as_deref()),
        Command::CheckConfig(arg) => check_config(arg.config.as_deref()),
        Command::Queue { command: QueueCommand::List { json, filter, config } } => {
            queue_inspect::queue_list(config.config.as_deref(), json, filter)
        }
        Command::Queue { command: QueueCommand::Show { id, json, config } } => {
            queue_inspect::queue_show(config.config.as_deref(), &id, json)
        }
        Command::Queue { command: QueueCommand::Shape { json, config } } => {
            queue_inspect::queue_shape(config.config.as_deref(), json)
        }
        Command::Queue { command: QueueCommand::Flush { id, domain, config } } => {
            queue_flush(config.config.as_deref(), id.as_deref(), domain.as_deref())
        }
        Command::Queue { command: QueueCommand::Delete(a) } => queue_action("delete", &a),
        Command::Queue { command: QueueCommand::Bounce(a) } => queue_action("bounce", &a),
        Command::Queue { command: QueueCommand::Hold(a) } => queue_action("hold", &a),
        Command::Queue { command: QueueCommand::Release(a) } => queue_action("release", &a),
        Command::Stats { watch, count, json, config } => {
            show_stats(config.config.as_deref(), watch, count, json)
        }
        Command::HashPassword => hash_password(),
        Command::Send(a) => client_cmds::send(*a),
        Command::Inbox(a) => client_cmds::inbox(a),
        Command::Sendmail { args } => client_cmds::sendmail(&args),
        Command::Pause(a) => {
            control_command(a.config.config.as_deref(), control::Action::Pause(a.site))
        }
        Command::Resume(a) => {
            control_command(a.config.config.as_deref(), control::Action::Resume(a.site))
        }
        Command::Stop(a) => {
            control_command(a.config.config.as_deref(), control::Action::Stop(a.site))
        }
        Command::Start(a) => {
            control_command(a.config.config.as_deref(), control::Action::Start(a.site))
        }
        Command::Drain { timeout, config } => {
            control_command(config.config.as_deref(), control::Action::Drain(timeout))
        }
        Command::Reload(arg) => control_command(arg.config.as_deref(), control::Action::Reload),
    }
}

/// `pause`, `resume`, `drain`, `reload`: one POST to the admin listener.
fn control_command(path: Option<&Path>, action: control::Action) -> i32 {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(addr) = stats::admin_addr(&config) else {
        report("the admin listener is disabled (admin.listen)");
        return EXIT_USAGE;
    };
    match control::send(addr, config.admin.token.as_deref(), &action) {
        Ok((200, body)) => {
            let _ = io::stdout().lock().write_all(control::describe(&action, &body).as_bytes());
            EXIT_OK
        }
        Ok((504, body)) if matches!(action, control::Action::Drain(_)) => {
            report(format_args!(
                "drain timed out with {} message(s) queued and {} connection(s) open; \
                 every site stays paused (`mailroot resume` to undo)",
                body["queued"], body["connections"]
            ));
            EXIT_DRAIN_TIMEOUT
        }
        Ok((status, body)) => {
            report(control::refusal(status, &body));
            EXIT_FAILURE
        }
        Err(e) => {
            report(e);
            EXIT_FAILURE
        }
    }
}

/// `hash-password`: one line from stdin (its line ending removed) -> the PHC string on
/// stdout. The password is never echoed or logged, and wiped from memory after use.
fn hash_password() -> i32 {
    let mut line = zeroize::Zeroizing::new(String::new());
    if let Err(e) = io::stdin().read_line(&mut line) {
        report(format!("cannot read the password from stdin: {e}"));
        return EXIT_FAILURE;
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        report("empty password (give it on stdin, e.g. `mailroot hash-password < file`)");
        return EXIT_USAGE;
    }
    match crate::receive::auth::hash_password(password.as_bytes()) {
        Ok(hash) => {
            let _ = writeln!(io::stdout().lock(), "{hash}");
            EXIT_OK
        }
        Err(e) => {
            report(format!("cannot hash the password: {e}"));
            EXIT_FAILURE
        }
    }
}

/// `stats`: one read (or `--watch` reads) of `GET /api/stats`, as a table or JSON.
fn show_stats(path: Option<&Path>, watch: Option<u64>, count: Option<u64>, json: bool) -> i32 {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(addr) = stats::admin_addr(&config) else {
        report("the admin listener is disabled (admin.listen)");
        return EXIT_USAGE;
    };
    let token = config.admin.token.as_deref();
    let mut prev: Option<(serde_json::Value, std::time::Instant)> = None;
    let mut reads = 0u64;
    loop {
        let cur = match stats::fetch(addr, token) {
            Ok(v) => v,
            Err(e) => {
                report(e);
                return EXIT_FAILURE;
            }
        };
        let now = std::time::Instant::now();
        let text = if json {
            format!("{cur}\n")
        } else {
            let p = prev.as_ref().map(|(v, t)| (v, now.duration_since(*t).as_secs_f64()));
            stats::table(&cur, p)
        };
        let mut out = io::stdout().lock();
        if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
            return EXIT_OK; // closed pipe
        }
        reads += 1;
        let Some(secs) = watch else { return EXIT_OK };
        if count.is_some_and(|n| reads >= n) {
            return EXIT_OK;
        }
        prev = Some((cur, now));
        std::thread::sleep(std::time::Duration::from_secs(secs.max(1)));
    }
}

/// Print `mailroot: <msg>` to stderr.
fn report(msg: impl std::fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "mailroot: {msg}");
}

/// Facts about this machine for the defaults: host name and usable cores.
#[must_use]
pub fn system_defaults() -> SystemDefaults {
    let hostname = [PROC_HOSTNAME, ETC_HOSTNAME]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    SystemDefaults { hostname, cores }
}

/// Read and validate the configuration: the file if given, else the embedded default.
/// On error, reports it and returns the exit status.
fn load_config(path: Option<&Path>) -> Result<Config, i32> {
    let sys = system_defaults();
    let Some(path) = path else {
        return Ok(Config::embedded_default(&sys));
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        report(format_args!("cannot read config file {}: {e}", path.display()));
        EXIT_USAGE
    })?;
    let mut config = Config::from_toml_str(&text, &sys).map_err(|e| {
        report(&e);
        EXIT_USAGE
    })?;
    // Secrets kept in files are read now, once (a missing file is a config error).
    config.read_password_files(|p| std::fs::read_to_string(p)).map_err(|e| {
        report(&e);
        EXIT_USAGE
    })?;
    Ok(config)
}

/// A reload (SIGHUP, `POST /api/reload`): the same reading and checks as start-up, the
/// error as text (it goes to the event log and the admin API, not to stderr).
fn reload_config(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    let mut config = Config::from_toml_str(&text, &system_defaults()).map_err(|e| e.to_string())?;
    config.read_password_files(|p| std::fs::read_to_string(p)).map_err(|e| e.to_string())?;
    certificate_problem(&config).map_or(Ok(config), Err)
}

/// Every certificate and key the configuration names loads (the files exist, the PEM
/// parses, the key matches its certificate; `[delivery] tls_ca_file` holds roots): a configuration error otherwise, naming the
/// key (`tls.cert`, `site[1].tls_cert`) and the file.
fn check_certificates(config: &Config) -> Result<(), i32> {
    match certificate_problem(config) {
        Some(problem) => {
            report(problem);
            Err(EXIT_USAGE)
        }
        None => Ok(()),
    }
}

/// The first certificate problem of `config` (see [`check_certificates`]), as text.
fn certificate_problem(config: &Config) -> Option<String> {
    let mut pairs = Vec::new();
    if let Some(f) = &config.tls.files {
        pairs.push(("tls.cert".to_owned(), f));
    }
    for (i, site) in config.sites.iter().enumerate() {
        if let Some(f) = &site.tls.files {
            pairs.push((format!("site[{i}].tls_cert"), f));
        }
    }
    for (key, f) in pairs {
        if let Err(e) = crate::net::tls_cert::load_certified_key(&f.cert, &f.key) {
            return Some(format!("config error at `{key}`: {e}"));
        }
    }
    if let Some(ca) = &config.delivery.tls_ca_file
        && let Err(e) = crate::deliver::tls::OutboundTls::new(Some(ca))
    {
        return Some(format!("config error at `delivery.tls_ca_file`: {e}"));
    }
    None
}

/// `check-config`: the effective configuration on stdout.
fn check_config(path: Option<&Path>) -> i32 {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(code) = check_certificates(&config) {
        return code;
    }
    match io::stdout().lock().write_all(config.to_toml().as_bytes()) {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            report(format_args!("cannot write to stdout: {e}"));
            EXIT_FAILURE
        }
    }
}

/// Start `env_logger` at the config's `log_level`; `RUST_LOG`, when set, overrides it.
fn init_logging(config: &Config) {
    let env = env_logger::Env::default().default_filter_or(config.log_level.as_str());
    // A second init (tests calling `run` twice) fails harmlessly; the first logger stays.
    let _ = env_logger::Builder::from_env(env).try_init();
}

/// Create the Mailroot folder layout `Queue/ Pickup/ Drop/ Badmail/` if missing.
/// `Queue/` gets mode 0700: only the relay's user may use the spool.
pub fn create_mailroot(config: &Config) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::create_dir_all(&config.mailroot)?;
    for dir in MAILROOT_DIRS {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        if dir == QUEUE_DIR {
            builder.mode(QUEUE_DIR_MODE);
        }
        builder.create(config.mailroot.join(dir))?;
    }
    Ok(())
}

/// `queue delete|bounce|hold|release ID`: ask the running server (`queue_action`).
/// Exit 0 when done, 1 when the server refused or is unreachable, 2 for a bad id.
fn queue_action(verb: &str, arg: &QueueIdArg) -> i32 {
    let config = match load_config(arg.config.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Ok(id) = arg.id.parse::<crate::spool::QueueId>() else {
        report(format!("{:?} is not a queue id (16 hex digits)", arg.id));
        return EXIT_USAGE;
    };
    let Some(path) = queue_action::path_of(verb, id) else {
        report(format!("unknown queue action {verb:?}"));
        return EXIT_USAGE;
    };
    let answer = match stats::admin_addr(&config) {
        Some(addr) => queue_action::post(addr, &path, config.admin.token.as_deref()),
        None => Ok(queue_action::Answer::Unreachable("admin listener disabled".into())),
    };
    match answer {
        // No server answers: act on the spool under its lock (refused if a server holds it).
        Ok(queue_action::Answer::Unreachable(why)) => match queue_offline::act(&config, verb, id) {
            Ok(what) => {
                let _ = writeln!(io::stdout().lock(), "{id}: {what}");
                EXIT_OK
            }
            Err(e) => {
                report(format!("{verb} {id}: {e} (admin listener: {why})"));
                EXIT_FAILURE
            }
        },
        Ok(queue_action::Answer::Done(what)) => {
            let _ = writeln!(io::stdout().lock(), "{id}: {what}");
            EXIT_OK
        }
        Ok(queue_action::Answer::Refused(status @ (401 | 403), why)) => {
            report(format!(
                "{verb} {id}: refused ({status}): {why} (this command sends the [admin] token \
                 of the config file it is given)"
            ));
            EXIT_FAILURE
        }
        Ok(queue_action::Answer::Refused(status, why)) => {
            report(format!("{verb} {id}: {why} (HTTP {status})"));
            EXIT_FAILURE
        }
        Err(e) => {
            report(e);
            EXIT_FAILURE
        }
    }
}

/// `queue flush`: append one line to `Queue/flush.req` (`all`, `<ID>` or `domain <D>`);
/// the running server's queue runner reads and removes the file.
fn queue_flush(path: Option<&Path>, id: Option<&str>, domain: Option<&str>) -> i32 {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let line = match (id, domain) {
        (Some(id), _) => match id.parse::<crate::spool::QueueId>() {
            Ok(q) => q.to_string(),
            Err(_) => {
                report(format!("{id:?} is not a queue id (16 hex digits)"));
                return EXIT_USAGE;
            }
        },
        (None, Some(d)) if !d.is_empty() && !d.contains(char::is_whitespace) => {
            format!("domain {d}")
        }
        (None, Some(d)) => {
            report(format!("{d:?} is not a domain"));
            return EXIT_USAGE;
        }
        (None, None) => "all".to_owned(),
    };
    let file = config.queue_dir().join(crate::queue::runner::FLUSH_REQUEST_FILE);
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| writeln!(f, "{line}"));
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            report(format!("cannot write {}: {e}", file.display()));
            EXIT_FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (arguments, parses?) -- one line per command line shape.
    #[test]
    fn command_lines() {
        let cases: &[(&[&str], bool)] = &[
            (&["serve"], true),
            (&["serve", "--config", "x.toml"], true),
            (&["serve", "-c", "x.toml"], true),
            (&["check-config"], true),
            (&["check-config", "--config=x.toml"], true),
            (&["queue", "list"], true),
            (&["queue", "list", "--json"], true),
            (&["queue", "list", "--json", "--config", "x.toml"], true),
            (&[], false),
            (&["serve", "--config"], false),
            (&["serve", "extra"], false),
            (&["queue"], false),
            (&["queue", "flush"], true),
            (&["queue", "flush", "0000000300000041"], true),
            (&["queue", "flush", "--domain", "example.com"], true),
            (&["queue", "flush", "0000000300000041", "--domain", "example.com"], false),
            (&["queue", "frobnicate"], false),
            (&["queue", "list", "--domain", "d.example", "--state", "deferred"], true),
            (&["queue", "show", "0000000300000041"], true),
            (&["queue", "show", "0000000300000041", "--json"], true),
            (&["queue", "show"], false),
            (&["queue", "shape"], true),
            (&["queue", "shape", "--json", "-c", "x.toml"], true),
            (&["queue", "hold", "0000000300000041"], true),
            (&["queue", "release", "0000000300000041", "-c", "x.toml"], true),
            (&["queue", "delete", "0000000300000041"], true),
            (&["queue", "bounce", "0000000300000041"], true),
            (&["queue", "hold"], false),
            (&["queue", "delete", "a", "b"], false),
            (&["check-config", "--json"], false),
            (&["hash-password"], true),
            (&["hash-password", "x"], false),
            (&["pause"], true),
            (&["pause", "--site", "default", "-c", "x.toml"], true),
            (&["resume", "--site", "a"], true),
            (&["stop", "--site", "a"], true),
            (&["start", "--site", "a", "-c", "x.toml"], true),
            (&["stop"], false),
            (&["start", "a"], false),
            (&["drain", "--timeout", "30"], true),
            (&["drain", "--timeout", "soon"], false),
            (&["reload", "--config", "x.toml"], true),
            (&["reload", "--site", "a"], false),
            (&["frobnicate"], false),
            (&["send", "--from", "a@b.c", "--to", "d@e.f"], true),
            (&["send", "--from", "a@b.c", "--server", "h:25", "--pickup"], false),
            (&["send", "--from", "a@b.c", "--starttls"], false),
            (&["send", "--from", "a@b.c", "--server", "h:25", "--user", "u"], false),
            (&["send", "--from", "a@b.c", "--importance", "urgent"], false),
            (&["inbox", "--address", "a@b.c", "--json", "--show", "1"], true),
            (&["inbox", "--address", "a@b.c", "--show", "1", "--delete", "1"], false),
            (&["inbox"], false),
        ];
        for &(args, ok) in cases {
            let argv = std::iter::once("mailroot").chain(args.iter().copied());
            assert_eq!(Cli::try_parse_from(argv).is_ok(), ok, "{args:?}");
        }
    }

    #[test]
    fn parsed_shape() {
        let cli = Cli::try_parse_from(["mailroot", "queue", "list", "--json", "-c", "f.toml"]);
        let Ok(Cli {
            command: Command::Queue { command: QueueCommand::List { json, config, .. } },
        }) = cli
        else {
            panic!("unexpected parse: {cli:?}");
        };
        assert!(json);
        assert_eq!(config.config.as_deref(), Some(Path::new("f.toml")));
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(run(["mailroot", "frobnicate"]), EXIT_USAGE);
        assert_eq!(run(["mailroot", "--version"]), EXIT_OK);
    }

    #[test]
    fn mailroot_layout() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut config = Config::embedded_default(&system_defaults());
        config.mailroot = tmp.path().join("a").join("mailroot");
        create_mailroot(&config).unwrap_or_else(|e| panic!("{e}"));
        create_mailroot(&config).unwrap_or_else(|e| panic!("second run: {e}"));
        for dir in MAILROOT_DIRS {
            assert!(config.mailroot.join(dir).is_dir(), "{dir}");
        }
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(config.queue_dir())
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode, QUEUE_DIR_MODE);
    }
}
