//! Queue inspection: `mailroot queue show ID [--json]`, the `--domain D --state S`
//! filters of `queue list`, and `mailroot queue shape [--json]` (qshape). All read `Queue/`
//! read-only and are safe while the server runs.

use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;

use super::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, init_logging, load_config, report};
use crate::spool::listing::{self, Filter, Listing};
use crate::spool::shape::Shape;
use crate::spool::show;

/// `queue list` filters.
#[derive(Debug, Args, Default)]
pub struct ListFilter {
    /// Only messages with a pending recipient in this domain.
    #[arg(long, value_name = "D")]
    pub domain: Option<String>,
    /// Only messages in this state: queued, deferred, partially-delivered, completed.
    #[arg(long, value_name = "S")]
    pub state: Option<String>,
}

/// Load the config and scan the queue; `Err` is the exit status (already reported).
fn listings(path: Option<&Path>) -> Result<(crate::config::Config, Vec<Listing>), i32> {
    let config = load_config(path)?;
    // The scan warns (on stderr) about segments it has to skip.
    init_logging(&config);
    match listing::list(&config.queue_dir()) {
        Ok(l) => Ok((config, l)),
        Err(e) => {
            report(format_args!("{e}"));
            Err(EXIT_FAILURE)
        }
    }
}

/// Write with `f` to stdout; a closed pipe (`| head`) is not an error.
fn print(f: impl FnOnce(&mut io::StdoutLock<'_>) -> io::Result<()>) -> i32 {
    let mut out = io::stdout().lock();
    match f(&mut out).and_then(|()| out.flush()) {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            report(format_args!("cannot write to stdout: {e}"));
            EXIT_FAILURE
        }
    }
}

/// `queue list [--domain D] [--state S]`.
pub(super) fn queue_list(path: Option<&Path>, json: bool, filter: ListFilter) -> i32 {
    let filter = match Filter::new(filter.domain, filter.state) {
        Ok(f) => f,
        Err(e) => {
            report(format_args!("--state: {e}"));
            return EXIT_USAGE;
        }
    };
    let (_, mut all) = match listings(path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    all.retain(|l| filter.matches(l));
    print(|out| if json { listing::write_json(&all, out) } else { listing::write_table(&all, out) })
}

/// `queue show ID`: exit 1 with a message when the id is not queued.
pub(super) fn queue_show(path: Option<&Path>, id: &str, json: bool) -> i32 {
    let Ok(qid) = id.parse::<crate::spool::QueueId>() else {
        report(format!("{id:?} is not a queue id (16 hex digits)"));
        return EXIT_USAGE;
    };
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_logging(&config);
    match show::show(&config.queue_dir(), qid) {
        Ok(Some(d)) => print(|out| if json { d.write_json(out) } else { d.write_text(out) }),
        Ok(None) => {
            report(format!("{qid} is not in the queue"));
            EXIT_FAILURE
        }
        Err(e) => {
            report(e);
            EXIT_FAILURE
        }
    }
}

/// `queue shape`: the qshape table at the current wall-clock time.
pub(super) fn queue_shape(path: Option<&Path>, json: bool) -> i32 {
    let (_, all) = match listings(path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let shape = Shape::compute(&all, now_ms);
    print(|out| if json { shape.write_json(out) } else { shape.write_table(out) })
}
