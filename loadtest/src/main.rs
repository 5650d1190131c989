//! mailroot-loadtest: the load tools shipped with mailroot (after Postfix's smtp-source and
//! smtp-sink).
//!
//! * `source`: N concurrent SMTP sessions send M messages to a server and report msgs/s,
//!   bytes/s, errors by reply code and latency percentiles per stage (hdrhistogram);
//!   optionally over STARTTLS or implicit TLS, with handshakes per second.
//! * `sink`: accept every message (or refuse a seeded share of recipients with 451/550),
//!   discard it, count it; print a summary at the end; optionally offers STARTTLS.
//! * `relay`: an in-process sink, a source through a relaying server into it; end-to-end
//!   rate and spool-to-sink latency (TLS on either side, or both).
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
mod tls;
#[cfg(test)]
mod tls_tests;

use std::path::PathBuf;
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
    #[command(flatten)]
    tls: SourceTlsArgs,
}

#[derive(clap::Args, Debug)]
struct SourceTlsArgs {
    /// After EHLO: STARTTLS, the TLS handshake, EHLO again, then the transactions (RFC 3207).
    /// Needs --tls-ca or --tls-insecure.
    #[arg(long, conflicts_with = "implicit_tls")]
    starttls: bool,
    /// TLS from the first byte, greeting after the handshake (RFC 8314, port 465 style).
    /// Needs --tls-ca or --tls-insecure.
    #[arg(long)]
    implicit_tls: bool,
    /// PEM file of the certificates to trust: a CA, or the server's self-signed certificate.
    #[arg(long, value_name = "FILE", conflicts_with = "tls_insecure")]
    tls_ca: Option<PathBuf>,
    /// Do NOT verify the server's certificate or name (the handshake signature is still
    /// checked): for benchmarks against self-signed certificates on loopback only.
    #[arg(long)]
    tls_insecure: bool,
    /// Name sent as SNI and checked against the certificate.
    #[arg(long, default_value = "localhost")]
    tls_name: String,
    /// Allow TLS session resumption (default: off, every handshake is a full one).
    #[arg(long)]
    tls_resume: bool,
    /// No mail: each of the --messages numbers is one connection (connect, TLS, EHLO,
    /// QUIT); reports sessions and handshakes per second.
    #[arg(long)]
    handshake_only: bool,
}

#[derive(clap::Args, Debug)]
struct SinkTlsArgs {
    /// Offer STARTTLS with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
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
    #[command(flatten)]
    tls: SinkTlsArgs,
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
    /// The sink offers STARTTLS with this PEM certificate chain (with --sink-tls-key), so
    /// that the server's delivery can run over TLS.
    #[arg(long, value_name = "FILE", requires = "sink_tls_key")]
    sink_tls_cert: Option<PathBuf>,
    /// The PEM private key of --sink-tls-cert.
    #[arg(long, value_name = "FILE", requires = "sink_tls_cert")]
    sink_tls_key: Option<PathBuf>,
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

/// Print a usage error; exit status 2.
fn usage(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("mailroot-loadtest: {e}");
    ExitCode::from(EXIT_USAGE)
}

/// The client TLS set-up the source arguments ask for (None: plaintext).
fn source_tls(a: &SourceTlsArgs) -> Result<Option<tls::ClientTls>, String> {
    let mode = match (a.starttls, a.implicit_tls) {
        (true, _) => tls::Mode::StartTls,
        (false, true) => tls::Mode::Implicit,
        (false, false) => {
            if a.tls_ca.is_some() || a.tls_insecure || a.tls_resume {
                return Err("--tls-ca, --tls-insecure and --tls-resume need --starttls or \
                            --implicit-tls"
                    .to_owned());
            }
            return Ok(None);
        }
    };
    let trust = match (&a.tls_ca, a.tls_insecure) {
        (Some(path), _) => tls::Trust::CaFile(path.clone()),
        (None, true) => tls::Trust::Insecure,
        (None, false) => {
            return Err(format!(
                "--{} needs --tls-ca FILE (the CA or self-signed certificate to trust) or \
                 --tls-insecure (no verification, benchmarks only)",
                if a.starttls { "starttls" } else { "implicit-tls" }
            ));
        }
    };
    tls::ClientTls::new(mode, trust, &a.tls_name, a.tls_resume).map(Some).map_err(|e| e.to_string())
}

/// The sink's TLS configuration from a cert/key pair of options (None: plaintext only).
fn sink_tls(
    cert: Option<&PathBuf>,
    key: Option<&PathBuf>,
) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, String> {
    match (cert, key) {
        (Some(c), Some(k)) => tls::server_config(c, k).map(Some).map_err(|e| e.to_string()),
        _ => Ok(None),
    }
}

/// Check the source arguments and build its options; the error is already printed.
fn source_options(a: &SourceArgs) -> Result<source::SourceOptions, ExitCode> {
    let server = loopback("server", &a.server)?;
    for (name, value) in [("helo", &a.helo), ("from", &a.from), ("to", &a.to)] {
        if let Err(e) = single_line(name, value) {
            return Err(usage(e));
        }
    }
    let tls = source_tls(&a.tls).map_err(usage)?;
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
        tls,
        handshake_only: a.tls.handshake_only,
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
    let tls = match sink_tls(a.tls.tls_cert.as_ref(), a.tls.tls_key.as_ref()) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let opts = sink::SinkOptions {
        listen,
        max_duration: Duration::from_secs(a.max_seconds),
        messages: a.messages,
        max_connections: a.max_connections as usize,
        tempfail_bp: a.fail.tempfail_pct,
        permfail_bp: a.fail.permfail_pct,
        seed: a.fail.seed,
        tracker: None,
        tls,
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
    if source.handshake_only {
        return usage("--handshake-only sends no mail: use it with `source`, not `relay`");
    }
    let tls = match sink_tls(a.sink_tls_cert.as_ref(), a.sink_tls_key.as_ref()) {
        Ok(t) => t,
        Err(e) => return usage(e),
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
        tls,
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

    #[test]
    fn tls_options_parse_and_are_checked() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["lt"], args].concat());
        assert!(parse(&["source", "--starttls", "--tls-insecure", "--handshake-only"]).is_ok());
        assert!(parse(&["source", "--implicit-tls", "--tls-ca", "ca.pem"]).is_ok());
        assert!(parse(&["source", "--starttls", "--implicit-tls", "--tls-insecure"]).is_err());
        assert!(parse(&["source", "--starttls", "--tls-ca", "x", "--tls-insecure"]).is_err());
        assert!(parse(&["sink", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).is_ok());
        assert!(parse(&["sink", "--tls-cert", "c.pem"]).is_err());
        assert!(parse(&["relay", "--sink-tls-key", "k.pem"]).is_err());
        let tls_of = |args: &[&str]| match parse(args).expect("parses").mode {
            Mode::Source(a) => source_tls(&a.tls).map(|t| t.map(|t| t.mode)),
            _ => unreachable!("a source command line"),
        };
        // TLS needs a trust choice; trust options need TLS.
        assert!(tls_of(&["source", "--starttls"]).unwrap_err().contains("--tls-insecure"));
        assert!(tls_of(&["source", "--tls-insecure"]).unwrap_err().contains("--starttls"));
        assert_eq!(tls_of(&["source"]), Ok(None));
        assert_eq!(
            tls_of(&["source", "--implicit-tls", "--tls-insecure"]),
            Ok(Some(tls::Mode::Implicit))
        );
        assert!(tls_of(&["source", "--starttls", "--tls-ca", "/nonexistent.pem"]).is_err());
    }
}
