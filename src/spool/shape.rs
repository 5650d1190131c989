//! The shape of the queue, as Postfix's `qshape` shows it: queued recipients by destination
//! domain (rows) and age (columns), for `mailroot queue shape` and `GET /api/queue/shape`.
//!
//! WHAT: [`Shape::compute`] is a pure function of the queue listing and `now` (Unix ms,
//! passed in): every *pending* recipient of every message counts once, in the row of its
//! domain (the part after the last `@`, lower-cased; `(none)` when there is no `@`) and the
//! column of its message's age. Rows are sorted by total, largest first (ties: by domain),
//! after a `TOTAL` row. A message that arrived "in the future" (clock stepped back) is age 0.
//!
//! Columns (minutes, lower bound inclusive): `0-5 5-10 10-20 20-40 40-80 80-160 160+`:
//! qshape's doubling buckets, so a stuck destination walks right one column per doubling.
//!
//! Table: `DOMAIN  TOTAL  0-5 ... 160+`, one line per row. JSON: `{"buckets": [labels],
//! "total": {"domain": "TOTAL", "total", "counts": [..]}, "domains": [{"domain", "total",
//! "counts"}]}`.
//!
//! TRUST: domains come from SMTP clients: the table escapes control characters (as
//! `queue list` does), JSON is escaped by serde_json.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;

use super::listing::{Listing, printable};

/// Lower bounds of the age columns, in minutes (the last column is open-ended).
pub const BUCKET_LOWER_MINUTES: [u64; 7] = [0, 5, 10, 20, 40, 80, 160];

/// Column labels, one per bucket.
pub const BUCKET_LABELS: [&str; 7] = ["0-5", "5-10", "10-20", "20-40", "40-80", "80-160", "160+"];

/// Label of the sum row.
pub const TOTAL_LABEL: &str = "TOTAL";

/// Row label of a recipient without `@`.
const NO_DOMAIN: &str = "(none)";

/// One row: a destination domain (or `TOTAL`) with its recipient counts per age bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShapeRow {
    /// Destination domain, lower case; `TOTAL` for the sum row.
    pub domain: String,
    /// Sum of `counts`.
    pub total: u64,
    /// Pending recipients per bucket of [`BUCKET_LABELS`].
    pub counts: [u64; 7],
}

/// The qshape table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shape {
    /// The column labels ([`BUCKET_LABELS`]).
    pub buckets: [&'static str; 7],
    /// The sum over every domain.
    pub total: ShapeRow,
    /// One row per domain, largest total first, then by name.
    pub domains: Vec<ShapeRow>,
}

/// Column of a message `age_ms` old.
#[must_use]
pub fn bucket_of(age_ms: u64) -> usize {
    let minutes = age_ms / 60_000;
    BUCKET_LOWER_MINUTES.iter().rposition(|&lo| minutes >= lo).unwrap_or(0)
}

/// Destination domain of a forward path, lower-cased.
fn domain_of(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((_, d)) if !d.is_empty() => d.to_ascii_lowercase(),
        _ => NO_DOMAIN.to_owned(),
    }
}

impl Shape {
    /// Count the pending recipients of `listings` by domain and age at `now_unix_ms`.
    #[must_use]
    pub fn compute(listings: &[Listing], now_unix_ms: u64) -> Shape {
        let mut rows: HashMap<String, [u64; 7]> = HashMap::new();
        let mut total = [0u64; 7];
        for l in listings {
            let b = bucket_of(now_unix_ms.saturating_sub(l.arrival_unix_ms));
            for r in l.recipients.iter().filter(|r| r.is_pending()) {
                rows.entry(domain_of(&r.address)).or_default()[b] += 1;
                total[b] += 1;
            }
        }
        let mut domains: Vec<ShapeRow> = rows
            .into_iter()
            .map(|(domain, counts)| ShapeRow { domain, total: counts.iter().sum(), counts })
            .collect();
        domains.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.domain.cmp(&b.domain)));
        let total =
            ShapeRow { domain: TOTAL_LABEL.to_owned(), total: total.iter().sum(), counts: total };
        Shape { buckets: BUCKET_LABELS, total, domains }
    }

    /// Write the table: header, `TOTAL`, then the domains; numbers right-aligned.
    pub fn write_table(&self, out: &mut impl Write) -> io::Result<()> {
        let names: Vec<String> = std::iter::once(&self.total)
            .chain(&self.domains)
            .map(|r| printable(&r.domain))
            .collect();
        let name_w = names.iter().map(|n| n.chars().count()).max().unwrap_or(0).max(6);
        let num_w = 6;
        let mut line = format!("{:<name_w$} {:>num_w$}", "DOMAIN", "TOTAL");
        for label in BUCKET_LABELS {
            line.push_str(&format!(" {label:>num_w$}"));
        }
        writeln!(out, "{line}")?;
        for (name, row) in names.iter().zip(std::iter::once(&self.total).chain(&self.domains)) {
            let mut line = format!("{name:<name_w$} {:>num_w$}", row.total);
            for c in row.counts {
                line.push_str(&format!(" {c:>num_w$}"));
            }
            writeln!(out, "{line}")?;
        }
        Ok(())
    }

    /// Write the JSON object.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        writeln!(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::listing::RecipientListing;

    const MIN: u64 = 60_000;
    const NOW: u64 = 1_800_000_000_000;

    fn msg(age_ms: u64, rcpts: &[(&str, &'static str)]) -> Listing {
        let recipients = rcpts
            .iter()
            .map(|&(a, status)| RecipientListing {
                address: a.to_owned(),
                status,
                attempts: 0,
                next_retry: None,
                last_error: None,
            })
            .collect();
        Listing::new("0".into(), 1, NOW - age_ms, "s@x".into(), recipients)
    }

    #[test]
    fn buckets_have_inclusive_lower_bounds() {
        let cases: &[(u64, usize)] = &[
            (0, 0),
            (5 * MIN - 1, 0),
            (5 * MIN, 1),
            (10 * MIN - 1, 1),
            (10 * MIN, 2),
            (20 * MIN, 3),
            (39 * MIN, 3),
            (40 * MIN, 4),
            (80 * MIN, 5),
            (159 * MIN + 59_999, 5),
            (160 * MIN, 6),
            (u64::MAX, 6),
        ];
        for &(age, want) in cases {
            assert_eq!(bucket_of(age), want, "age {age} ms");
        }
    }

    #[test]
    fn counts_pending_recipients_by_domain_and_age() {
        let listings = vec![
            msg(MIN, &[("a@Dead.example", "pending"), ("b@dead.example", "pending")]),
            msg(7 * MIN, &[("c@dead.example", "pending"), ("d@other.example", "delivered")]),
            msg(200 * MIN, &[("e@slow.example", "pending"), ("f@other.example", "pending")]),
            msg(45 * MIN, &[("g@slow.example", "pending"), ("nodomain", "pending")]),
        ];
        let s = Shape::compute(&listings, NOW);
        assert_eq!(s.total.total, 7);
        assert_eq!(s.total.counts, [2, 1, 0, 0, 2, 0, 2]);
        let rows: Vec<(&str, u64, [u64; 7])> =
            s.domains.iter().map(|r| (r.domain.as_str(), r.total, r.counts)).collect();
        assert_eq!(
            rows,
            vec![
                ("dead.example", 3, [2, 1, 0, 0, 0, 0, 0]),
                ("slow.example", 2, [0, 0, 0, 0, 1, 0, 1]),
                ("(none)", 1, [0, 0, 0, 0, 1, 0, 0]),
                ("other.example", 1, [0, 0, 0, 0, 0, 0, 1]),
            ]
        );
    }

    #[test]
    fn future_arrival_is_age_zero_and_empty_queue_has_zero_total() {
        let s = Shape::compute(&[msg(0, &[("a@x.example", "pending")])], NOW - 10 * MIN);
        assert_eq!(s.total.counts, [1, 0, 0, 0, 0, 0, 0]);
        let empty = Shape::compute(&[], NOW);
        assert_eq!(empty.total.total, 0);
        assert!(empty.domains.is_empty());
    }

    #[test]
    fn table_and_json() {
        let s = Shape::compute(
            &[msg(MIN, &[("a@d.example", "pending")]), msg(170 * MIN, &[("b@e\x1b.x", "pending")])],
            NOW,
        );
        let mut out = Vec::new();
        s.write_table(&mut out).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"));
        let want = "\
DOMAIN     TOTAL    0-5   5-10  10-20  20-40  40-80 80-160   160+
TOTAL          2      1      0      0      0      0      0      1
d.example      1      1      0      0      0      0      0      0
e\\u{1b}.x      1      0      0      0      0      0      0      1
";
        assert_eq!(text, want);
        let mut out = Vec::new();
        s.write_json(&mut out).unwrap_or_else(|e| panic!("{e}"));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["buckets"][6], "160+");
        assert_eq!(v["total"]["counts"], serde_json::json!([1, 0, 0, 0, 0, 0, 1]));
        assert_eq!(v["domains"][0]["domain"], "d.example");
        assert_eq!(v["domains"][1]["domain"], "e\u{1b}.x");
    }
}
