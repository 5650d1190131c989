//! mailroot-loadtest: the load tools shipped with mailroot (after Postfix's smtp-source and
//! smtp-sink).
//!
//! * `source`: N concurrent SMTP sessions send M messages to a server and report msgs/s,
//!   bytes/s, errors by reply code and latency percentiles per stage (hdrhistogram).
//! * `sink`: accept every message (or refuse a seeded share of recipients with 451/550),
//!   discard it, count it; print a summary at the end.
//! * `relay`: an in-process sink, a source through a relaying server into it; end-to-end
//!   rate and spool-to-sink latency.
//! * `idle`: hold N connections after EHLO; report the server's RSS.
//!
//! SECURITY: every mode refuses any address outside loopback (`127.0.0.0/8`, `::1`) and
//! exit 2; every run is bounded in messages and in seconds.
//!
//! Exit status: 0 ok; 1 the run completed but nothing was accepted (source), not every
//! accepted message reached the sink in time (relay), not every connection could be held
//! (idle), or the sink could not listen; 2 usage error or non-loopback address.

mod client;
mod idle;
mod message;
mod relay;
mod sink;
mod size;
mod source;
mod stats;
mod target;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use size::SizeDist;

/// Exit status for usage errors, as clap uses.
const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "mailroot-loadtest",
    version,
    about = "SMTP load generator and sink (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Send messages to an SMTP server over N concurrent sessions and report rates/latencies.
    Source(SourceArgs),
    /// Accept and discard messages, counting them; print a summary when stopped.
    Sink(SinkArgs),
    /// Start a sink, drive a source through a relaying server into it, report end to end.
    Relay(RelayArgs),
    /// Hold N connections open after EHLO and report the server's RSS.
    Idle(IdleArgs),
}

#[derive(clap::Args, Debug)]
struct SourceArgs {
    /// Server to load: loopback only (127.0.0.0/8 or `[::1]`).
    #[arg(long, default_value = "127.0.0.1:2525")]
    server: String,
    /// Concurrent sessions (one thread each).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    sessions: u32,
    /// Total transactions to attempt.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Message size in bytes, headers included (without the final "." line): `1024` or
    /// `10k` fixed, `1k..100k` uniform, `1k:70,10k:25,100k:5` weighted (SIZE:WEIGHT pairs).
    #[arg(long, default_value = "1024", value_parser = SizeDist::parse)]
    size: SizeDist,
    /// Open loop: send this many messages per second in total, on schedule, whatever the
    /// replies; adds the `sched` latency (due time to 250). Default: closed loop.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// No progress bar (it is shown only when stderr is a terminal anyway).
    #[arg(long)]
    no_progress: bool,
    /// Recipients per message (b@x, b1@x, b2@x, ...).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    rcpts: u32,
    /// Send MAIL, RCPTs and DATA in one write when the server advertises PIPELINING.
    #[arg(long)]
    pipelining: bool,
    /// EHLO argument.
    #[arg(long, default_value = "loadtest.example.com")]
    helo: String,
    /// Envelope sender.
    #[arg(long, default_value = "a@example.com")]
    from: String,
    /// First envelope recipient.
    #[arg(long, default_value = "b@example.net")]
    to: String,
    /// Transactions per connection before QUIT and reconnect.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    per_connection: u32,
    /// Stop after this many seconds even if not all messages were sent.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    max_seconds: u64,
    /// Timeout for each connect, read and write, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout_secs: u64,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct SinkArgs {
    /// Address to listen on: loopback only.
    #[arg(long, default_value = "127.0.0.1:2526")]
    listen: String,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    max_seconds: u64,
    /// Stop once this many messages have been received.
    #[arg(long)]
    messages: Option<u64>,
    /// Connections served at once; more get 421.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_connections: u32,
    #[command(flatten)]
    fail: FailArgs,
    /// Print one JSON object instead of the text summary.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct FailArgs {
    /// Percent of recipients answered 451 4.2.0 (0..100, decimals allowed).
    #[arg(long, default_value = "0", value_parser = parse_pct)]
    tempfail_pct: u32,
    /// Percent of recipients answered 550 5.1.1 (0..100, decimals allowed).
    #[arg(long, default_value = "0", value_parser = parse_pct)]
    permfail_pct: u32,
    /// Seed of the choice of failing recipients (same seed, same choice).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args, Debug)]
struct RelayArgs {
    /// Where the in-process sink listens (loopback only); the server must relay there.
    #[arg(long, default_value = "127.0.0.1:2526")]
    sink_listen: String,
    /// After the source finished, wait at most this long for the last messages.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    wait_seconds: u64,
    #[command(flatten)]
    source: SourceArgs,
}

#[derive(clap::Args, Debug)]
struct IdleArgs {
    /// Server to connect to: loopback only.
    #[arg(long, default_value = "127.0.0.1:2525")]
    server: String,
    /// Connections to open and hold.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    connections: u32,
    /// Seconds to hold them once all are open.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3600))]
    hold_seconds: u64,
    /// Bound on the opening phase, in seconds.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    max_seconds: u64,
    /// Timeout for each connect and read, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout_secs: u64,
    /// Server process id: report its VmRSS before and while the connections are held.
    #[arg(long)]
    pid: Option<u32>,
    /// EHLO argument.
    #[arg(long, default_value = "idle.loadtest.example")]
    helo: String,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    json: bool,
}

/// Parse a percentage (0..=100, up to two decimals) into basis points.
fn parse_pct(s: &str) -> Result<u32, String> {
    let p: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !(0.0..=100.0).contains(&p) {
        return Err(format!("`{s}` is not between 0 and 100"));
    }
    Ok((p * 100.0).round() as u32)
}

/// Parse `--rate`: a positive, finite number of messages per second.
fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !(r.is_finite() && r > 0.0 && r <= 10_000_000.0) {
        return Err(format!("`{s}`: the rate must be > 0 and <= 10000000 msgs/s"));
    }
    Ok(r)
}

/// A fresh nonce per run (clock and pid, hashed), written into every `X-Loadtest-Id`.
fn run_nonce() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    size::mix64(nanos ^ (u64::from(std::process::id()) << 32))
}

fn main() -> ExitCode {
    match Cli::parse().mode {
        Mode::Source(a) => run_source(a),
        Mode::Sink(a) => run_sink(a),
        Mode::Relay(a) => run_relay(a),
        Mode::Idle(a) => run_idle(a),
    }
}

/// Check that header-safe text has no CR/LF (they would inject SMTP commands).
fn single_line(name: &str, value: &str) -> Result<(), String> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) || value.is_empty() {
        return Err(format!("--{name} must be non-empty and must not contain CR, LF or NUL"));
    }
    Ok(())
}

/// Check a loopback address argument; the error is already printed.
fn loopback(flag: &str, given: &str) -> Result<std::net::SocketAddr, ExitCode> {
    target::loopback_addr(given).map_err(|e| {
        eprintln!("mailroot-loadtest: refusing --{flag}: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

/// Check the source arguments and build its options; the error is already printed.
fn source_options(a: &SourceArgs) -> Result<source::SourceOptions, ExitCode> {
    let server = loopback("server", &a.server)?;
    for (name, value) in [("helo", &a.helo), ("from", &a.from), ("to", &a.to)] {
        if let Err(e) = single_line(name, value) {
            eprintln!("mailroot-loadtest: {e}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    }
    Ok(source::SourceOptions {
        server,
        sessions: a.sessions as usize,
        messages: a.messages,
        size: a.size.clone(),
        rate: a.rate,
        run: run_nonce(),
        progress: !a.no_progress && !a.json,
        tracker: None,
        rcpts: a.rcpts as usize,
        pipelining: a.pipelining,
        helo: a.helo.clone(),
        from: a.from.clone(),
        to: a.to.clone(),
        per_connection: a.per_connection,
        max_duration: Duration::from_secs(a.max_seconds),
        io_timeout: Duration::from_secs(a.timeout_secs),
    })
}

fn run_source(a: SourceArgs) -> ExitCode {
    let opts = match source_options(&a) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let report = source::run(opts);
    if a.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    ExitCode::from(u8::try_from(report.exit_code()).unwrap_or(1))
}

fn run_sink(a: SinkArgs) -> ExitCode {
    let listen = match loopback("listen", &a.listen) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    if a.fail.tempfail_pct + a.fail.permfail_pct > 10_000 {
        eprintln!("mailroot-loadtest: --tempfail-pct + --permfail-pct must not exceed 100");
        return ExitCode::from(EXIT_USAGE);
    }
    let opts = sink::SinkOptions {
        listen,
        max_duration: Duration::from_secs(a.max_seconds),
        messages: a.messages,
        max_connections: a.max_connections as usize,
        tempfail_bp: a.fail.tempfail_pct,
        permfail_bp: a.fail.permfail_pct,
        seed: a.fail.seed,
        tracker: None,
    };
    match sink::run(&opts) {
        Ok(report) => {
            if a.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mailroot-loadtest: sink on {listen}: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_relay(a: RelayArgs) -> ExitCode {
    let listen = match loopback("sink-listen", &a.sink_listen) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    let source = match source_options(&a.source) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let sink = sink::SinkOptions {
        listen,
        max_duration: Duration::from_secs(a.source.max_seconds + a.wait_seconds),
        messages: None,
        max_connections: 2000,
        tempfail_bp: 0,
        permfail_bp: 0,
        seed: 0,
        tracker: None,
    };
    let opts = relay::RelayOptions { source, sink, wait: Duration::from_secs(a.wait_seconds) };
    match relay::run(opts) {
        Ok(report) => {
            if a.source.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            ExitCode::from(u8::try_from(report.exit_code()).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("mailroot-loadtest: sink on {listen}: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_idle(a: IdleArgs) -> ExitCode {
    let server = match loopback("server", &a.server) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    if let Err(e) = single_line("helo", &a.helo) {
        eprintln!("mailroot-loadtest: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let opts = idle::IdleOptions {
        server,
        connections: a.connections as usize,
        hold: Duration::from_secs(a.hold_seconds),
        max_duration: Duration::from_secs(a.max_seconds),
        io_timeout: Duration::from_secs(a.timeout_secs),
        pid: a.pid,
        helo: a.helo,
    };
    let report = idle::run(&opts);
    if a.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    ExitCode::from(u8::try_from(report.exit_code()).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_become_basis_points() {
        assert_eq!(parse_pct("5"), Ok(500));
        assert_eq!(parse_pct("0.25"), Ok(25));
        assert_eq!(parse_pct("100"), Ok(10_000));
        assert!(parse_pct("101").is_err());
        assert!(parse_pct("-1").is_err());
        assert!(parse_pct("x").is_err());
    }

    #[test]
    fn rates_must_be_positive() {
        assert_eq!(parse_rate("500"), Ok(500.0));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("inf").is_err());
        assert!(parse_rate("NaN").is_err());
    }

    #[test]
    fn cli_parses_every_mode() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
        let c = Cli::try_parse_from(["lt", "source", "--size", "1k..2k", "--rate", "100"]);
        assert!(c.is_ok());
        assert!(
            Cli::try_parse_from(["lt", "sink", "--tempfail-pct", "5", "--permfail-pct", "1"])
                .is_ok()
        );
        assert!(
            Cli::try_parse_from([
                "lt",
                "relay",
                "--server",
                "127.0.0.1:1",
                "--sink-listen",
                "127.0.0.1:2"
            ])
            .is_ok()
        );
        assert!(Cli::try_parse_from(["lt", "idle", "--connections", "10", "--pid", "1"]).is_ok());
        assert!(Cli::try_parse_from(["lt", "source", "--size", "0"]).is_err());
    }
}
