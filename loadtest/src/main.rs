//! mailroot-loadtest: the load tools shipped with mailroot (after Postfix's smtp-source and
//! smtp-sink).
//!
//! * `source`: N concurrent SMTP sessions send M messages to a server and report msgs/s,
//!   bytes/s, errors by reply code and latency percentiles per stage (hdrhistogram).
//! * `sink`: accept every message, discard it, count it; print a summary at the end.
//!
//! SECURITY: both modes refuse any address outside loopback (`127.0.0.0/8`, `::1`) and
//! exit 2; every run is bounded in messages and in seconds.
//!
//! Exit status: 0 ok; 1 the run completed but nothing was accepted (source) or the sink
//! could not listen; 2 usage error or non-loopback address.

mod client;
mod message;
mod sink;
mod source;
mod stats;
mod target;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

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
    /// Message size in bytes, headers included (without the final "." line).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_073_741_824))]
    size: u64,
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
    /// Print one JSON object instead of the text summary.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    match Cli::parse().mode {
        Mode::Source(a) => run_source(a),
        Mode::Sink(a) => run_sink(a),
    }
}

/// Check that header-safe text has no CR/LF (they would inject SMTP commands).
fn single_line(name: &str, value: &str) -> Result<(), String> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) || value.is_empty() {
        return Err(format!("--{name} must be non-empty and must not contain CR, LF or NUL"));
    }
    Ok(())
}

fn run_source(a: SourceArgs) -> ExitCode {
    let server = match target::loopback_addr(&a.server) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("mailroot-loadtest: refusing --server: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for (name, value) in [("helo", &a.helo), ("from", &a.from), ("to", &a.to)] {
        if let Err(e) = single_line(name, value) {
            eprintln!("mailroot-loadtest: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let opts = source::SourceOptions {
        server,
        sessions: a.sessions as usize,
        messages: a.messages,
        size_bytes: usize::try_from(a.size).unwrap_or(usize::MAX),
        rcpts: a.rcpts as usize,
        pipelining: a.pipelining,
        helo: a.helo,
        from: a.from,
        to: a.to,
        per_connection: a.per_connection,
        max_duration: Duration::from_secs(a.max_seconds),
        io_timeout: Duration::from_secs(a.timeout_secs),
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
    let listen = match target::loopback_addr(&a.listen) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("mailroot-loadtest: refusing --listen: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let opts = sink::SinkOptions {
        listen,
        max_duration: Duration::from_secs(a.max_seconds),
        messages: a.messages,
        max_connections: a.max_connections as usize,
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
