//! `mailroot stats [--watch SECONDS [--count N]] [--json]`: the perfmon-style table of the
//! counters, read from the running server's admin listener (`GET /api/stats`).
//!
//! Trust: the JSON comes from our own server on the configured admin address; it is only
//! printed. With `--watch`, per-second rates are computed between two reads.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::admin::PATH_STATS;
use crate::config::Config;

/// Connect and read timeout of the admin request.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Where to connect for `config`'s admin listener (an unspecified address means loopback).
pub(super) fn admin_addr(config: &Config) -> Option<SocketAddr> {
    let mut addr = config.admin.listen?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Some(addr)
}

/// `GET /api/stats` over HTTP/1.0 and parse the JSON body.
pub(super) fn fetch(addr: SocketAddr, token: Option<&str>) -> Result<Value, String> {
    let mut s = TcpStream::connect_timeout(&addr, ADMIN_TIMEOUT)
        .map_err(|e| format!("cannot connect to the admin listener {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(ADMIN_TIMEOUT));
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {PATH_STATS} HTTP/1.0\r\nHost: {addr}\r\n{auth}\r\n")
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("{addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed HTTP response")?;
    let status = head.lines().next().unwrap_or("");
    if status.split(' ').nth(1) != Some("200") {
        return Err(format!("{addr}{PATH_STATS}: {status}"));
    }
    serde_json::from_str(body).map_err(|e| format!("bad JSON from {addr}: {e}"))
}

/// The table: one row per counter (IIS name, total, and the per-second rate since `prev`
/// when given with the seconds between the reads; a per-site counter of a server with
/// several sites is followed by one `  site NAME` row per site), then the derived ratios and the
/// histograms' p50/p99; then each site's state (`running`, `paused`, `stopped`).
pub(super) fn table(cur: &Value, prev: Option<(&Value, f64)>) -> String {
    let mut out = String::new();
    let rate_head = if prev.is_some() { "/s" } else { "" };
    out += &format!("{:<46} {:>16} {:>12}\n", "Counter", "Total", rate_head);
    let empty = Vec::new();
    let counters = cur["counters"].as_array().unwrap_or(&empty);
    let before = prev.and_then(|(p, _)| p["counters"].as_array());
    for (i, c) in counters.iter().enumerate() {
        let v = c["value"].as_u64().unwrap_or(0);
        let rate = match (prev, before.and_then(|b| b.get(i))) {
            (Some((_, secs)), Some(p)) if c["kind"] == "counter" && secs > 0.0 => {
                let dv = v.saturating_sub(p["value"].as_u64().unwrap_or(0));
                format!("{:.1}", dv as f64 / secs)
            }
            _ => String::new(),
        };
        let name = c["iis"].as_str().unwrap_or("?");
        out += &format!("{name:<46} {v:>16} {rate:>12}\n");
        // Per-site counters, one indented row per site when there are several.
        if let Some(sites) = c["sites"].as_object().filter(|m| m.len() > 1) {
            for (site, n) in sites {
                let label = format!("  site {site}");
                out += &format!("{label:<46} {:>16}\n", n.as_u64().unwrap_or(0));
            }
        }
    }
    for d in cur["derived"].as_array().unwrap_or(&empty) {
        let name = d["iis"].as_str().unwrap_or("?");
        out += &format!("{name:<46} {:>16.2}\n", d["value"].as_f64().unwrap_or(0.0));
    }
    for h in cur["histograms"].as_array().unwrap_or(&empty) {
        let name = h["iis"].as_str().unwrap_or("?");
        let q = |k: &str| h["quantiles"][k].as_f64().unwrap_or(0.0);
        out += &format!(
            "{name:<46} {:>16} p50={} p99={} {}\n",
            h["count"].as_u64().unwrap_or(0),
            q("0.5"),
            q("0.99"),
            h["unit"].as_str().unwrap_or("")
        );
    }
    for site in cur["sites"].as_array().unwrap_or(&empty) {
        let listen: Vec<&str> = site["listen"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let name = format!("Site {}", site["name"].as_str().unwrap_or("?"));
        let state = site["state"].as_str().unwrap_or("?");
        out += &format!("{name:<46} {state:>16} {}\n", listen.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Counter, Registry};

    #[test]
    fn table_rows_and_rates() {
        let r = Registry::new();
        let b = r.site_block("default");
        r.site_block("b").add(Counter::MessagesReceived, 2);
        let prev = crate::stats::render_json(&r.snapshot());
        b.add(Counter::MessagesReceived, 20);
        b.set(Counter::RetryQueueLength, 3);
        let mut cur = crate::stats::render_json(&r.snapshot());
        cur["sites"] = serde_json::json!([
            {"name": "default", "state": "running", "paused": false, "listen": ["127.0.0.1:25"]},
            {"name": "b", "state": "stopped", "paused": false, "listen": ["127.0.0.1:26"]},
        ]);
        let t = table(&cur, Some((&prev, 2.0)));
        // (row prefix, words the row must contain)
        let cases: &[(&str, &[&str])] = &[
            ("Messages Received Total", &["22", "10.0"]),
            ("  site default ", &["20"]),
            ("  site b ", &["2"]),
            ("Remote Retry Queue Length", &["3"]),
            ("% Recipients Local", &["0.00"]),
            ("Site default ", &["running", "127.0.0.1:25"]),
            ("Site b ", &["stopped", "127.0.0.1:26"]),
        ];
        for (row, words) in cases {
            let line = t.lines().find(|l| l.starts_with(row)).unwrap_or_else(|| panic!("{t}"));
            for w in *words {
                assert!(line.contains(w), "{line}");
            }
        }
        let retry = t.lines().find(|l| l.starts_with("Remote Retry")).unwrap();
        assert!(!retry.contains('.'), "gauges get no rate: {retry}");
        assert!(!table(&cur, None).lines().next().unwrap().contains("/s"));
    }
}
