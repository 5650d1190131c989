//! The service events of the event log, as data, and their JSON line (layer 0: no clock,
//! no file; the time comes in as Unix milliseconds).
//!
//! One event is one JSON object on one line:
//! `{"ts":"2026-12-05T17:00:00.123Z","event":"site.pause","site":"default","by":"admin-api"}`.
//! `ts` and `event` come first, then `site` and `by` when the event has them, then the
//! event's own fields in a fixed order. Strings are escaped by `serde_json`, so no value
//! can break the line (a CR or LF becomes `\r` / `\n`).
//!
//! SECURITY: nothing secret is ever put in an event. A configuration change carries its
//! values as `config::diff` printed them, with secrets already masked (`<redacted>`).

use serde_json::Value;

use crate::config::diff::Change;
use crate::smtp::date::rfc3339_utc_ms;

/// Who or what caused an event (`"by"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// A POST to the admin listener (the web page, `curl`, or a `mailroot` command: see
    /// the `client` field of the request events).
    AdminApi,
    /// A Unix signal (SIGHUP reload, SIGTERM stop).
    Signal,
    /// A `mailroot` command line run.
    Command,
    /// A file dropped in the Mailroot (e.g. `Queue/flush.req`).
    File,
    /// The server itself while starting or running (recovery, disk checks).
    Startup,
}

impl By {
    /// The JSON spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            By::AdminApi => "admin-api",
            By::Signal => "signal",
            By::Command => "command",
            By::File => "file",
            By::Startup => "startup",
        }
    }
}

/// One service event. Every variant is listed with its `event` name in [`Event::name`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The server started: `service.start`.
    ServiceStart {
        /// `CARGO_PKG_VERSION`.
        version: String,
        /// The configuration file, `None` for the embedded default.
        config_file: Option<String>,
        /// Site names.
        sites: Vec<String>,
        /// Every bound SMTP address (`site=addr`).
        listen: Vec<String>,
    },
    /// The server is stopping: `service.stop`.
    ServiceStop {
        /// Why (`"SIGTERM"`, `"drained"`, `"worker failed"`, ...).
        reason: String,
        /// Who asked.
        by: By,
    },
    /// A site is accepting connections: `site.start`.
    SiteStart {
        /// The site.
        site: String,
        /// Its bound addresses.
        listen: Vec<String>,
    },
    /// A site stopped accepting for good (shutdown): `site.stop`.
    SiteStop {
        /// The site.
        site: String,
    },
    /// A site was paused (new connections get `421 4.3.2`): `site.pause`.
    SitePause {
        /// The site.
        site: String,
        /// Who asked.
        by: By,
    },
    /// A paused site accepts again: `site.resume`.
    SiteResume {
        /// The site.
        site: String,
        /// Who asked.
        by: By,
    },
    /// A site's listeners were closed at run time (connections refused; its sessions
    /// told `421 4.3.2`; the queue untouched): `site.stopped`.
    SiteStopped {
        /// The site.
        site: String,
        /// Who asked.
        by: By,
    },
    /// A stopped site's addresses were bound again: `site.started`.
    SiteStarted {
        /// The site.
        site: String,
        /// Who asked.
        by: By,
        /// Its bound addresses.
        listen: Vec<String>,
    },
    /// A stopped site could not be started (e.g. its address is in use); it stays
    /// stopped: `site.start_refused`.
    SiteStartRefused {
        /// The site.
        site: String,
        /// Who asked.
        by: By,
        /// What failed.
        error: String,
    },
    /// A drain began (every site paused; the server stops once the queue is empty):
    /// `service.drain`.
    DrainStart {
        /// Who asked.
        by: By,
        /// How long the drain may take, ms.
        timeout_ms: u64,
    },
    /// The queue emptied during a drain; the server stops next: `service.drained`.
    Drained {
        /// Who asked for the drain.
        by: By,
    },
    /// The drain timed out with messages left; the server stays paused:
    /// `service.drain_timeout`.
    DrainTimeout {
        /// Who asked for the drain.
        by: By,
        /// Messages still queued.
        queued: u64,
        /// Inbound connections still open.
        connections: u64,
    },
    /// A new configuration was accepted: `config.reload`.
    ConfigReload {
        /// Who asked.
        by: By,
        /// The file read.
        config_file: Option<String>,
        /// Every changed key, secrets masked.
        changes: Vec<Change>,
        /// Changed keys that take effect only after a restart (the running server keeps
        /// the old value for them).
        restart_needed: Vec<String>,
    },
    /// A configuration reload was refused; the running configuration is kept:
    /// `config.reload_refused`.
    ConfigReloadRefused {
        /// Who asked.
        by: By,
        /// The file read.
        config_file: Option<String>,
        /// The error (naming the key).
        error: String,
    },
    /// A certificate was read again and is used for new handshakes: `tls.cert_reload`.
    CertReload {
        /// Who asked.
        by: By,
        /// The certificate chain file.
        cert: String,
    },
    /// A certificate file did not load; the old one is kept: `tls.cert_reload_refused`.
    CertReloadRefused {
        /// Who asked.
        by: By,
        /// The certificate chain file.
        cert: String,
        /// The error.
        error: String,
    },
    /// What spool recovery found at start-up: `spool.recovered`.
    SpoolRecovered {
        /// Messages with pending recipients, back in the queue.
        messages: u64,
        /// Segment files kept.
        segments: u64,
        /// Segments whose unverifiable tail was dropped (a crash mid-append).
        torn_tails: u64,
        /// Records skipped whose header verified but whose envelope or content did not
        /// (the records after them were kept).
        bad_records: u64,
        /// Segments set aside as `*.seg.corrupt`.
        corrupt_segments: u64,
    },
    /// The spool's file system fell below `limits.min_free_disk` (MAIL gets 452 4.3.1):
    /// `disk.low`.
    DiskLow {
        /// The folder measured.
        path: String,
        /// The threshold, bytes.
        min_free_bytes: u64,
    },
    /// Free space is back above the threshold: `disk.recovered`.
    DiskRecovered {
        /// The folder measured.
        path: String,
        /// The threshold, bytes.
        min_free_bytes: u64,
    },
    /// The event log's own queue was full and events were lost: `log.events_dropped`.
    EventsDropped {
        /// How many since the last report.
        count: u64,
    },
    /// The protocol (W3C) log fell behind and dropped lines: `log.protocol_dropped`.
    ProtocolLogDropped {
        /// The site whose log dropped them (`None`: all sites together).
        site: Option<String>,
        /// How many lines since the last report.
        lines: u64,
    },
    /// An operator's action on one queued message or the whole queue: `queue.<action>`
    /// (`queue.delete`, `queue.bounce`, `queue.hold`, `queue.release`, `queue.flush`).
    QueueAction {
        /// The action word (`delete`, `bounce`, `hold`, `release`, `flush`); becomes the
        /// event name `queue.<action>`.
        action: String,
        /// The queue id (16 hex digits), a domain, or `None` for the whole queue.
        target: Option<String>,
        /// Who asked.
        by: By,
        /// `"ok"` or the error.
        result: String,
    },
    /// An admin-API request that changed nothing because it was refused (no or a wrong
    /// token): `admin.refused`. At most one per second is written (a flood of bad
    /// requests must not fill the disk); `unlogged` counts those left out before it.
    AdminRefused {
        /// Method and path (no query string, no body).
        request: String,
        /// The HTTP status answered.
        status: u16,
        /// Why.
        reason: String,
        /// Refusals since the previous `admin.refused` event that were not written.
        unlogged: u64,
    },
}

impl Event {
    /// The `event` name.
    #[must_use]
    pub fn name(&self) -> String {
        let s = match self {
            Event::ServiceStart { .. } => "service.start",
            Event::ServiceStop { .. } => "service.stop",
            Event::SiteStart { .. } => "site.start",
            Event::SiteStop { .. } => "site.stop",
            Event::SitePause { .. } => "site.pause",
            Event::SiteResume { .. } => "site.resume",
            Event::SiteStopped { .. } => "site.stopped",
            Event::SiteStarted { .. } => "site.started",
            Event::SiteStartRefused { .. } => "site.start_refused",
            Event::DrainStart { .. } => "service.drain",
            Event::Drained { .. } => "service.drained",
            Event::DrainTimeout { .. } => "service.drain_timeout",
            Event::ConfigReload { .. } => "config.reload",
            Event::ConfigReloadRefused { .. } => "config.reload_refused",
            Event::CertReload { .. } => "tls.cert_reload",
            Event::CertReloadRefused { .. } => "tls.cert_reload_refused",
            Event::SpoolRecovered { .. } => "spool.recovered",
            Event::DiskLow { .. } => "disk.low",
            Event::DiskRecovered { .. } => "disk.recovered",
            Event::EventsDropped { .. } => "log.events_dropped",
            Event::ProtocolLogDropped { .. } => "log.protocol_dropped",
            Event::QueueAction { action, .. } => return format!("queue.{action}"),
            Event::AdminRefused { .. } => "admin.refused",
        };
        s.to_owned()
    }

    /// `(key, value)` pairs after `ts` and `event`, in output order.
    fn fields(&self) -> Vec<(&'static str, Value)> {
        let s = |v: &str| Value::String(v.to_owned());
        let list = |v: &[String]| Value::Array(v.iter().map(|x| s(x)).collect());
        let opt = |v: &Option<String>| v.as_deref().map_or(Value::Null, s);
        let by = |b: &By| s(b.as_str());
        match self {
            Event::ServiceStart { version, config_file, sites, listen } => vec![
                ("version", s(version)),
                ("config_file", opt(config_file)),
                ("sites", list(sites)),
                ("listen", list(listen)),
            ],
            Event::ServiceStop { reason, by: b } => vec![("by", by(b)), ("reason", s(reason))],
            Event::SiteStart { site, listen } => vec![("site", s(site)), ("listen", list(listen))],
            Event::SiteStop { site } => vec![("site", s(site))],
            Event::SitePause { site, by: b }
            | Event::SiteResume { site, by: b }
            | Event::SiteStopped { site, by: b } => vec![("site", s(site)), ("by", by(b))],
            Event::SiteStarted { site, by: b, listen } => {
                vec![("site", s(site)), ("by", by(b)), ("listen", list(listen))]
            }
            Event::SiteStartRefused { site, by: b, error } => {
                vec![("site", s(site)), ("by", by(b)), ("error", s(error))]
            }
            Event::DrainStart { by: b, timeout_ms } => {
                vec![("by", by(b)), ("timeout_ms", (*timeout_ms).into())]
            }
            Event::Drained { by: b } => vec![("by", by(b))],
            Event::DrainTimeout { by: b, queued, connections } => vec![
                ("by", by(b)),
                ("queued", (*queued).into()),
                ("connections", (*connections).into()),
            ],
            Event::ConfigReload { by: b, config_file, changes, restart_needed } => vec![
                ("by", by(b)),
                ("config_file", opt(config_file)),
                ("changes", Value::Array(changes.iter().map(change_json).collect())),
                ("restart_needed", list(restart_needed)),
            ],
            Event::ConfigReloadRefused { by: b, config_file, error } => {
                vec![("by", by(b)), ("config_file", opt(config_file)), ("error", s(error))]
            }
            Event::CertReload { by: b, cert } => vec![("by", by(b)), ("cert", s(cert))],
            Event::CertReloadRefused { by: b, cert, error } => {
                vec![("by", by(b)), ("cert", s(cert)), ("error", s(error))]
            }
            Event::SpoolRecovered {
                messages,
                segments,
                torn_tails,
                bad_records,
                corrupt_segments,
            } => vec![
                ("messages", (*messages).into()),
                ("segments", (*segments).into()),
                ("torn_tails", (*torn_tails).into()),
                ("bad_records", (*bad_records).into()),
                ("corrupt_segments", (*corrupt_segments).into()),
            ],
            Event::DiskLow { path, min_free_bytes }
            | Event::DiskRecovered { path, min_free_bytes } => {
                vec![("path", s(path)), ("min_free_bytes", (*min_free_bytes).into())]
            }
            Event::EventsDropped { count } => vec![("count", (*count).into())],
            Event::ProtocolLogDropped { site, lines } => {
                let mut v = Vec::new();
                if let Some(site) = site {
                    v.push(("site", s(site)));
                }
                v.push(("lines", (*lines).into()));
                v
            }
            Event::QueueAction { action: _, target, by: b, result } => {
                vec![("by", by(b)), ("target", opt(target)), ("result", s(result))]
            }
            Event::AdminRefused { request, status, reason, unlogged } => vec![
                ("request", s(request)),
                ("status", (*status).into()),
                ("reason", s(reason)),
                ("unlogged", (*unlogged).into()),
            ],
        }
    }

    /// The JSON line (without the trailing newline) of this event at `unix_ms`.
    #[must_use]
    pub fn to_json_line(&self, unix_ms: i64) -> String {
        let mut out = String::with_capacity(128);
        out.push_str("{\"ts\":");
        out.push_str(&Value::String(rfc3339_utc_ms(unix_ms)).to_string());
        out.push_str(",\"event\":");
        out.push_str(&Value::String(self.name()).to_string());
        for (k, v) in self.fields() {
            out.push(',');
            out.push_str(&Value::String(k.to_owned()).to_string());
            out.push(':');
            out.push_str(&v.to_string());
        }
        out.push('}');
        out
    }
}

/// `{"key":..,"old":..,"new":..}`; a side that is absent (key added or removed) is null.
fn change_json(c: &Change) -> Value {
    let side = |v: &Option<String>| v.as_deref().map_or(Value::Null, |s| Value::String(s.into()));
    serde_json::json!({ "key": c.key, "old": side(&c.old), "new": side(&c.new) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_796_490_000_123; // 2026-12-05T17:00:00.123Z

    #[test]
    fn lines() {
        let site = || "default".to_owned();
        // (event, exact JSON line)
        let cases: Vec<(Event, &str)> = vec![
            (
                Event::SitePause { site: site(), by: By::AdminApi },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"site.pause","site":"default","by":"admin-api"}"#,
            ),
            (
                Event::SiteResume { site: site(), by: By::Command },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"site.resume","site":"default","by":"command"}"#,
            ),
            (
                Event::SiteStopped { site: site(), by: By::Command },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"site.stopped","site":"default","by":"command"}"#,
            ),
            (
                Event::SiteStarted {
                    site: site(),
                    by: By::AdminApi,
                    listen: vec!["127.0.0.1:25".into()],
                },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"site.started","site":"default","by":"admin-api","listen":["127.0.0.1:25"]}"#,
            ),
            (
                Event::SiteStartRefused { site: site(), by: By::Command, error: "in use".into() },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"site.start_refused","site":"default","by":"command","error":"in use"}"#,
            ),
            (
                Event::ServiceStart {
                    version: "0.1.0".into(),
                    config_file: None,
                    sites: vec![site()],
                    listen: vec!["default=127.0.0.1:2525".into()],
                },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"service.start","version":"0.1.0","config_file":null,"sites":["default"],"listen":["default=127.0.0.1:2525"]}"#,
            ),
            (
                Event::ServiceStop { reason: "SIGTERM".into(), by: By::Signal },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"service.stop","by":"signal","reason":"SIGTERM"}"#,
            ),
            (
                Event::ConfigReload {
                    by: By::Signal,
                    config_file: Some("/etc/m.toml".into()),
                    changes: vec![
                        Change {
                            key: "relay.allow".into(),
                            old: Some("[]".into()),
                            new: Some("[\"10.0.0.0/8\"]".into()),
                        },
                        Change { key: "user[0].name".into(), old: None, new: Some("\"a\"".into()) },
                    ],
                    restart_needed: vec!["workers".into()],
                },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"config.reload","by":"signal","config_file":"/etc/m.toml","changes":[{"key":"relay.allow","new":"[\"10.0.0.0/8\"]","old":"[]"},{"key":"user[0].name","new":"\"a\"","old":null}],"restart_needed":["workers"]}"#,
            ),
            (
                Event::ConfigReloadRefused {
                    by: By::AdminApi,
                    config_file: None,
                    error: "config error at `workers`: must be > 0\r\nforged".into(),
                },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"config.reload_refused","by":"admin-api","config_file":null,"error":"config error at `workers`: must be > 0\r\nforged"}"#,
            ),
            (
                Event::SpoolRecovered {
                    messages: 3,
                    segments: 2,
                    torn_tails: 1,
                    bad_records: 2,
                    corrupt_segments: 0,
                },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"spool.recovered","messages":3,"segments":2,"torn_tails":1,"bad_records":2,"corrupt_segments":0}"#,
            ),
            (
                Event::ProtocolLogDropped { site: Some(site()), lines: 7 },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"log.protocol_dropped","site":"default","lines":7}"#,
            ),
            (
                Event::QueueAction {
                    action: "delete".into(),
                    target: Some("0000000300000041".into()),
                    by: By::AdminApi,
                    result: "ok".into(),
                },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"queue.delete","by":"admin-api","target":"0000000300000041","result":"ok"}"#,
            ),
            (
                Event::EventsDropped { count: 2 },
                r#"{"ts":"2026-12-05T17:00:00.123Z","event":"log.events_dropped","count":2}"#,
            ),
        ];
        for (event, want) in cases {
            let line = event.to_json_line(T);
            assert_eq!(line, want);
            assert!(!line.contains('\n'), "one line: {line}");
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["event"], Value::String(event.name()));
        }
    }

    #[test]
    fn by_spellings() {
        let cases = [
            (By::AdminApi, "admin-api"),
            (By::Signal, "signal"),
            (By::Command, "command"),
            (By::File, "file"),
            (By::Startup, "startup"),
        ];
        for (by, want) in cases {
            assert_eq!(by.as_str(), want);
        }
    }
}
