//! The report of a `source` run: the text summary and the one-line JSON object.

use std::fmt::Write as _;

use super::SourceReport;
use crate::stats::{Stage, json_errors, json_escape, json_f64, per_second};
use crate::tls::Trust;

impl SourceReport {
    /// Human-readable report.
    pub(crate) fn to_text(&self) -> String {
        let o = &self.opts;
        let s = &self.stats;
        let secs = self.secs();
        let mut t = String::new();
        let _ = writeln!(
            t,
            "mailroot-loadtest source -> {}: {} sessions, {} messages of {} bytes, {} rcpt(s), \
             {} per connection, pipelining {}, {}",
            o.server,
            o.sessions,
            o.messages,
            o.size,
            o.rcpts,
            o.per_connection,
            match (o.pipelining, s.pipelining_refused) {
                (false, _) => "off",
                (true, false) => "on",
                (true, true) => "asked but NOT advertised by server (fell back)",
            },
            match o.rate {
                Some(r) => format!("open loop at {r} msgs/s"),
                None => "closed loop".to_owned(),
            }
        );
        let stopped_by = if self.hit_deadline { "--max-seconds" } else { "--messages" };
        if o.handshake_only {
            let _ = writeln!(
                t,
                "handshake only (connect, {}EHLO, QUIT; no mail): {} sessions completed, {} \
                 failed, {} attempted in {secs:.3} s (stopped by {stopped_by})",
                if o.tls.is_some() { "TLS, " } else { "" },
                s.accepted,
                s.failed,
                self.attempted,
            );
            let _ = writeln!(t, "rate: {:.1} sessions/s", per_second(s.accepted, secs));
        } else {
            let _ = writeln!(
                t,
                "messages: {} accepted, {} failed, {} attempted in {secs:.3} s (stopped by \
                 {stopped_by})",
                s.accepted, s.failed, self.attempted,
            );
            let bps = per_second(s.accepted_bytes, secs);
            let _ = writeln!(
                t,
                "rate: {:.1} msgs/s, {:.0} bytes/s ({:.2} MiB/s); connections: {}",
                per_second(s.accepted, secs),
                bps,
                bps / (1024.0 * 1024.0),
                s.connections
            );
        }
        if let Some(tls) = &o.tls {
            let [p50, _, p99, _, _] =
                s.latency(Stage::Handshake).percentiles_us().map(|us| us as f64 / 1000.0);
            let _ = writeln!(
                t,
                "tls: {}; negotiated {}; {} handshakes ({} resumed), {:.1} handshakes/s over \
                 the run; handshake ms p50 {p50:.3} p99 {p99:.3}",
                tls.describe(),
                s.tls.as_deref().unwrap_or("nothing"),
                s.handshakes,
                s.resumed,
                per_second(s.handshakes, secs),
            );
        }
        if s.errors.is_empty() {
            let _ = writeln!(t, "errors: none");
        } else {
            let _ = writeln!(t, "errors:");
            for (k, v) in &s.errors {
                let _ = writeln!(t, "  {k}: {v}");
            }
        }
        let _ = writeln!(
            t,
            "latency ms {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "count", "p50", "p90", "p99", "p99.9", "max"
        );
        for stage in Stage::ALL {
            let shown = match stage {
                Stage::Scheduled => o.rate.is_some() && !o.handshake_only,
                Stage::Handshake => o.tls.is_some(),
                Stage::EndOfData | Stage::Transaction => !o.handshake_only,
                Stage::Connect | Stage::Ehlo => true,
            };
            if !shown {
                continue;
            }
            let l = s.latency(stage);
            let p = l.percentiles_us().map(|us| us as f64 / 1000.0);
            let _ = writeln!(
                t,
                "  {:<8} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                stage.name(),
                l.count(),
                p[0],
                p[1],
                p[2],
                p[3],
                p[4]
            );
        }
        t
    }

    /// The `tls` member of the JSON report: `null` without TLS.
    fn tls_json(&self) -> String {
        let Some(tls) = &self.opts.tls else { return "null".to_owned() };
        let s = &self.stats;
        format!(
            "{{\"mode\":\"{}\",\"verified\":{},\"resumption\":{},\"negotiated\":\"{}\",\
             \"handshakes\":{},\"resumed\":{},\"handshakes_per_s\":{}}}",
            tls.mode.name(),
            !matches!(tls.trust, Trust::Insecure),
            tls.resume,
            json_escape(s.tls.as_deref().unwrap_or("")),
            s.handshakes,
            s.resumed,
            json_f64(per_second(s.handshakes, self.secs()))
        )
    }

    /// One JSON object on one line.
    pub(crate) fn to_json(&self) -> String {
        let o = &self.opts;
        let s = &self.stats;
        let secs = self.secs();
        let latency: Vec<String> = Stage::ALL
            .iter()
            .map(|&stage| {
                let l = s.latency(stage);
                let [p50, p90, p99, p999, max] = l.percentiles_us();
                format!(
                    "\"{}\":{{\"count\":{},\"p50\":{p50},\"p90\":{p90},\"p99\":{p99},\
                     \"p99_9\":{p999},\"max\":{max}}}",
                    stage.name(),
                    l.count()
                )
            })
            .collect();
        format!(
            "{{\"mode\":\"source\",\"server\":\"{}\",\"sessions\":{},\"messages\":{},\
             \"size\":\"{}\",\"size_mean_bytes\":{},\"rate\":{},\"rcpts\":{},\"per_connection\":{},\"pipelining\":{},\
             \"server_pipelining\":{},\"attempted\":{},\"accepted\":{},\"failed\":{},\
             \"accepted_bytes\":{},\"connections\":{},\"elapsed_s\":{},\"msgs_per_s\":{},\
             \"bytes_per_s\":{},\"stopped_by\":\"{}\",\"handshake_only\":{},\"tls\":{},\
             \"errors\":{},\"latency_us\":{{{}}}}}",
            json_escape(&o.server.to_string()),
            o.sessions,
            o.messages,
            o.size,
            json_f64(o.size.mean()),
            o.rate.map_or_else(|| "null".to_owned(), json_f64),
            o.rcpts,
            o.per_connection,
            o.pipelining,
            o.pipelining && !s.pipelining_refused,
            self.attempted,
            s.accepted,
            s.failed,
            s.accepted_bytes,
            s.connections,
            json_f64(secs),
            json_f64(per_second(s.accepted, secs)),
            json_f64(per_second(s.accepted_bytes, secs)),
            if self.hit_deadline { "max-seconds" } else { "messages" },
            o.handshake_only,
            self.tls_json(),
            json_errors(&s.errors),
            latency.join(",")
        )
    }
}
