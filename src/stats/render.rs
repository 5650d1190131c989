//! Renderers over a [`Snapshot`]: Prometheus text exposition format 0.0.4 and JSON.
//!
//! Layer 0: pure functions of the snapshot (no I/O, no clock), so a fixed snapshot renders
//! to a fixed text. Histograms are exposed as Prometheus summaries (quantiles from
//! `names::QUANTILES`, `_sum`, `_count`); `_sum` is `mean × count` of the hdrhistogram
//! (exact within its 3 significant digits).

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::names::{self, CATALOGUE, COUNTERS, Counter, HISTOGRAMS, Kind, QUANTILES, SITE_LABEL};

/// Every counter and histogram at one moment, merged over all threads.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Site names, in the order their blocks were registered.
    pub sites: Vec<String>,
    /// Per-site sums, `per_site[k][Counter as usize]` for `sites[k]`.
    pub per_site: Vec<Vec<u64>>,
    /// Sums over every block, indexed by `Counter as usize`. Invariant: length `COUNTERS`.
    pub totals: Vec<u64>,
    /// Merged histograms, indexed by `Hist as usize`.
    pub hists: Vec<Histogram<u64>>,
}

impl Snapshot {
    /// All zero, no sites.
    pub fn empty() -> Snapshot {
        Snapshot {
            sites: Vec::new(),
            per_site: Vec::new(),
            totals: vec![0; COUNTERS],
            hists: HISTOGRAMS.iter().map(super::new_histogram).collect(),
        }
    }

    /// The value of `c` summed over every thread and site.
    pub fn total(&self, c: Counter) -> u64 {
        self.totals[c as usize]
    }

    /// Recipients (local + remote) of accepted messages.
    fn recipients(&self) -> u64 {
        self.total(Counter::RecipientsLocal) + self.total(Counter::RecipientsRemote)
    }

    /// % Recipients Local, % Recipients Remote, Avg Recipients per Message (0 when undefined).
    pub fn derived(&self) -> (f64, f64, f64) {
        let r = self.recipients() as f64;
        let pct = |n: u64| if r > 0.0 { 100.0 * n as f64 / r } else { 0.0 };
        let m = self.total(Counter::MessagesAccepted) as f64;
        (
            pct(self.total(Counter::RecipientsLocal)),
            pct(self.total(Counter::RecipientsRemote)),
            if m > 0.0 { r / m } else { 0.0 },
        )
    }
}

/// Label set text `{a,b}` (or nothing) from the non-empty parts.
fn labels(parts: &[&str]) -> String {
    let parts: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

/// Escape a label value (`\`, `"`, newline) as the exposition format requires.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The snapshot in Prometheus text exposition format (version 0.0.4).
pub fn render_prometheus(s: &Snapshot) -> String {
    let mut out = String::with_capacity(8192);
    let mut last = "";
    for (i, d) in CATALOGUE.iter().enumerate() {
        if d.prom != last {
            let kind = match d.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {} {}", d.prom, d.help);
            let _ = writeln!(out, "# TYPE {} {kind}", d.prom);
            last = d.prom;
        }
        if d.per_site && !s.sites.is_empty() {
            for (k, site) in s.sites.iter().enumerate() {
                let site = format!("{SITE_LABEL}=\"{}\"", escape_label(site));
                let _ =
                    writeln!(out, "{}{} {}", d.prom, labels(&[&site, d.label]), s.per_site[k][i]);
            }
        } else {
            let _ = writeln!(out, "{}{} {}", d.prom, labels(&[d.label]), s.totals[i]);
        }
    }
    for (h, d) in s.hists.iter().zip(HISTOGRAMS) {
        let _ = writeln!(out, "# HELP {} {}", d.prom, d.help);
        let _ = writeln!(out, "# TYPE {} summary", d.prom);
        for q in QUANTILES {
            let v = quantile(h, *q) / d.scale;
            let _ = writeln!(out, "{}{{quantile=\"{q}\"}} {v}", d.prom);
        }
        let _ = writeln!(out, "{}_sum {}", d.prom, sum(h) / d.scale);
        let _ = writeln!(out, "{}_count {}", d.prom, h.len());
    }
    out
}

/// The value at quantile `q` (0 for an empty histogram).
fn quantile(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() { 0.0 } else { h.value_at_quantile(q) as f64 }
}

/// Approximate sum of the recorded values.
fn sum(h: &Histogram<u64>) -> f64 {
    if h.is_empty() { 0.0 } else { (h.mean() * h.len() as f64).round() }
}

/// The snapshot as JSON (`GET /api/stats`, read by `mailroot stats`).
pub fn render_json(s: &Snapshot) -> Value {
    let counters: Vec<Value> = CATALOGUE
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut sites = serde_json::Map::new();
            if d.per_site {
                for (k, site) in s.sites.iter().enumerate() {
                    sites.insert(site.clone(), json!(s.per_site[k][i]));
                }
            }
            json!({
                "prom": d.prom,
                "label": d.label,
                "iis": d.iis,
                "unit": d.unit,
                "kind": match d.kind { Kind::Counter => "counter", Kind::Gauge => "gauge" },
                "value": s.totals[i],
                "sites": sites,
            })
        })
        .collect();
    let hists: Vec<Value> = s
        .hists
        .iter()
        .zip(HISTOGRAMS)
        .map(|(h, d)| {
            let q: serde_json::Map<String, Value> = QUANTILES
                .iter()
                .map(|q| (q.to_string(), json!(quantile(h, *q) / d.scale)))
                .collect();
            json!({
                "prom": d.prom,
                "iis": d.iis,
                "unit": d.unit,
                "count": h.len(),
                "sum": sum(h) / d.scale,
                "max": if h.is_empty() { 0.0 } else { h.max() as f64 / d.scale },
                "quantiles": q,
            })
        })
        .collect();
    let (local, remote, avg) = s.derived();
    json!({
        "sites": s.sites,
        "counters": counters,
        "histograms": hists,
        "derived": [
            { "iis": names::PCT_LOCAL, "value": local },
            { "iis": names::PCT_REMOTE, "value": remote },
            { "iis": names::AVG_RCPTS, "value": avg },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Hist;

    /// A fixed snapshot: one site, a few counters, one histogram.
    fn fixed() -> Snapshot {
        let mut s = Snapshot::empty();
        s.sites.push("default".into());
        let mut site = vec![0; COUNTERS];
        site[Counter::MessagesReceived as usize] = 3;
        s.per_site.push(site);
        s.totals[Counter::MessagesReceived as usize] = 3;
        s.totals[Counter::MessagesAccepted as usize] = 4;
        s.totals[Counter::RecipientsLocal as usize] = 2;
        s.totals[Counter::RecipientsRemote as usize] = 6;
        s.totals[Counter::BadmailHopCount as usize] = 1;
        for v in [1000, 2000, 3000, 4000] {
            s.hists[Hist::CommitLatency as usize].record(v).unwrap();
        }
        s
    }

    #[test]
    fn prometheus_lines() {
        let text = render_prometheus(&fixed());
        // (expected line) — each must appear exactly once.
        let cases: &[&str] = &[
            "# HELP mailroot_messages_received_total Messages accepted over SMTP (250 sent after the group commit).",
            "# TYPE mailroot_messages_received_total counter",
            "mailroot_messages_received_total{site=\"default\"} 3",
            "mailroot_messages_accepted_total 4",
            "# TYPE mailroot_inbound_connections gauge",
            "# TYPE mailroot_badmailed_messages_total counter",
            "mailroot_badmailed_messages_total{reason=\"hop_count\"} 1",
            "mailroot_badmailed_messages_total{reason=\"general\"} 0",
            "# TYPE mailroot_commit_latency_seconds summary",
            "mailroot_commit_latency_seconds{quantile=\"0.5\"} 0.002",
            "mailroot_commit_latency_seconds{quantile=\"0.999\"} 0.004001",
            "mailroot_commit_latency_seconds_sum 0.010002",
            "mailroot_commit_latency_seconds_count 4",
            "mailroot_queue_time_seconds_count 0",
        ];
        for want in cases {
            assert_eq!(text.lines().filter(|l| l == want).count(), 1, "{want}\n{text}");
        }
        assert_eq!(text.matches("# TYPE mailroot_badmailed_messages_total").count(), 1);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn prometheus_whole_text_of_first_entry() {
        let text = render_prometheus(&fixed());
        let head: Vec<&str> = text.lines().take(3).collect();
        assert_eq!(
            head,
            [
                "# HELP mailroot_messages_received_total Messages accepted over SMTP (250 sent after the group commit).",
                "# TYPE mailroot_messages_received_total counter",
                "mailroot_messages_received_total{site=\"default\"} 3",
            ]
        );
    }

    #[test]
    fn json_shape_and_derived() {
        let v = render_json(&fixed());
        let c = &v["counters"][Counter::MessagesReceived as usize];
        assert_eq!(c["iis"], "Messages Received Total");
        assert_eq!(c["value"], 3);
        assert_eq!(c["sites"]["default"], 3);
        assert_eq!(v["histograms"][0]["count"], 4);
        let derived: Vec<(String, f64)> = v["derived"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["iis"].as_str().unwrap().to_string(), d["value"].as_f64().unwrap()))
            .collect();
        assert_eq!(
            derived,
            [
                ("% Recipients Local".to_string(), 25.0),
                ("% Recipients Remote".to_string(), 75.0),
                ("Avg Recipients per Message".to_string(), 2.0),
            ]
        );
    }

    #[test]
    fn label_escaping() {
        let cases = [("a", "a"), ("a\"b", "a\\\"b"), ("a\\b", "a\\\\b"), ("a\nb", "a\\nb")];
        for (input, want) in cases {
            assert_eq!(escape_label(input), want);
        }
    }
}
