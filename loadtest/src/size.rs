//! Message size distributions for `source --size`, and the deterministic hash that picks
//! a size (and the sink's fail shares) per message.
//!
//! Syntax (sizes take an optional `k` = 1024 or `m` = 1024 * 1024 suffix, case-insensitive):
//!
//! * `1024`, `10k`: every message has that size;
//! * `1k..100k`: uniform between the two bounds, inclusive;
//! * `1k:70,10k:25,100k:5`: weighted choice, `SIZE:WEIGHT` pairs separated by commas
//!   (weights are relative, need not add up to 100).
//!
//! The size of message number `n` is a pure function of `n` (a splitmix64 hash), so two runs
//! with the same options send the same sizes in the same order.

use std::fmt;

/// Smallest accepted size: headers alone take about 150 bytes; smaller sizes are padded.
const MIN_SIZE_BYTES: u64 = 1;
/// Largest accepted size (1 GiB).
pub(crate) const MAX_SIZE_BYTES: u64 = 1 << 30;
/// Most `SIZE:WEIGHT` pairs in a weighted list.
const MAX_WEIGHTED_ENTRIES: usize = 64;

/// How message sizes are chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SizeDist {
    /// Every message has this many bytes.
    Fixed(u64),
    /// Uniform in `[low, high]`.
    Uniform {
        /// Smallest size.
        low: u64,
        /// Largest size (>= low).
        high: u64,
    },
    /// `(size, weight)` pairs, every weight >= 1.
    Weighted(Vec<(u64, u64)>),
}

/// splitmix64: a fast, well-mixed 64-bit hash of `x` (Steele, Lea, Flood 2014).
pub(crate) fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Parse one size with an optional k/m suffix.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1024),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    let n: u64 = digits.parse().map_err(|_| format!("`{s}` is not a size (e.g. 1024, 10k, 1m)"))?;
    let n = n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))?;
    if !(MIN_SIZE_BYTES..=MAX_SIZE_BYTES).contains(&n) {
        return Err(format!(
            "size `{s}` must be between {MIN_SIZE_BYTES} and {MAX_SIZE_BYTES} bytes"
        ));
    }
    Ok(n)
}

impl SizeDist {
    /// Parse the `--size` syntax described in the module documentation.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if let Some((a, b)) = s.split_once("..") {
            let (low, high) = (parse_size(a)?, parse_size(b)?);
            if low > high {
                return Err(format!("`{s}`: the lower bound is above the upper bound"));
            }
            return Ok(if low == high {
                SizeDist::Fixed(low)
            } else {
                SizeDist::Uniform { low, high }
            });
        }
        if !s.contains(':') {
            return parse_size(s).map(SizeDist::Fixed);
        }
        let mut entries = Vec::new();
        for part in s.split(',') {
            let (size, weight) = part
                .split_once(':')
                .ok_or_else(|| format!("`{part}`: expected SIZE:WEIGHT (e.g. 10k:25)"))?;
            let weight: u64 = weight
                .trim()
                .parse()
                .map_err(|_| format!("`{part}`: the weight must be a whole number"))?;
            if weight == 0 || weight > 1_000_000 {
                return Err(format!("`{part}`: the weight must be 1..=1000000"));
            }
            entries.push((parse_size(size)?, weight));
        }
        if entries.len() > MAX_WEIGHTED_ENTRIES {
            return Err(format!("at most {MAX_WEIGHTED_ENTRIES} SIZE:WEIGHT pairs"));
        }
        Ok(if entries.len() == 1 {
            SizeDist::Fixed(entries[0].0)
        } else {
            SizeDist::Weighted(entries)
        })
    }

    /// The size of message number `seq`.
    pub(crate) fn pick(&self, seq: u64) -> u64 {
        match self {
            SizeDist::Fixed(n) => *n,
            SizeDist::Uniform { low, high } => low + mix64(seq) % (high - low + 1),
            SizeDist::Weighted(entries) => {
                let total: u64 = entries.iter().map(|e| e.1).sum();
                let mut r = mix64(seq) % total;
                for &(size, weight) in entries {
                    if r < weight {
                        return size;
                    }
                    r -= weight;
                }
                entries.last().map_or(0, |e| e.0)
            }
        }
    }

    /// The largest size this distribution can produce.
    pub(crate) fn max(&self) -> u64 {
        match self {
            SizeDist::Fixed(n) => *n,
            SizeDist::Uniform { high, .. } => *high,
            SizeDist::Weighted(entries) => entries.iter().map(|e| e.0).max().unwrap_or(0),
        }
    }

    /// The expected (mean) size in bytes.
    pub(crate) fn mean(&self) -> f64 {
        match self {
            SizeDist::Fixed(n) => *n as f64,
            SizeDist::Uniform { low, high } => (*low as f64 + *high as f64) / 2.0,
            SizeDist::Weighted(entries) => {
                let total: u64 = entries.iter().map(|e| e.1).sum();
                entries.iter().map(|&(s, w)| s as f64 * w as f64).sum::<f64>() / total as f64
            }
        }
    }
}

impl fmt::Display for SizeDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeDist::Fixed(n) => write!(f, "{n}"),
            SizeDist::Uniform { low, high } => write!(f, "{low}..{high}"),
            SizeDist::Weighted(entries) => {
                let parts: Vec<String> = entries.iter().map(|(s, w)| format!("{s}:{w}")).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let cases: &[(&str, Option<SizeDist>)] = &[
            ("1024", Some(SizeDist::Fixed(1024))),
            ("10k", Some(SizeDist::Fixed(10_240))),
            ("1M", Some(SizeDist::Fixed(1 << 20))),
            ("1k..100k", Some(SizeDist::Uniform { low: 1024, high: 102_400 })),
            ("5k..5k", Some(SizeDist::Fixed(5120))),
            (
                "1k:70,10k:25,100k:5",
                Some(SizeDist::Weighted(vec![(1024, 70), (10_240, 25), (102_400, 5)])),
            ),
            ("2k:3", Some(SizeDist::Fixed(2048))),
            ("0", None),
            ("", None),
            ("abc", None),
            ("10x", None),
            ("100k..1k", None),
            ("1k:0,2k:1", None),
            ("1k:70,10k", None),
            ("2g", None),
            ("1048577k", None),
        ];
        for (s, want) in cases {
            assert_eq!(SizeDist::parse(s).ok(), *want, "{s}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["1024", "1024..102400", "1024:70,10240:25,102400:5"] {
            assert_eq!(SizeDist::parse(s).map(|d| d.to_string()).as_deref(), Ok(s));
        }
    }

    #[test]
    fn picks_are_deterministic_and_in_range() {
        let u = SizeDist::Uniform { low: 1000, high: 2000 };
        for seq in 0..10_000 {
            let n = u.pick(seq);
            assert!((1000..=2000).contains(&n));
            assert_eq!(n, u.pick(seq));
        }
        assert_eq!(SizeDist::Fixed(7).pick(99), 7);
    }

    #[test]
    fn weighted_shares_follow_weights() {
        let d = SizeDist::Weighted(vec![(1, 70), (2, 25), (3, 5)]);
        let mut counts = [0u32; 4];
        for seq in 0..100_000 {
            counts[d.pick(seq) as usize] += 1;
        }
        assert!((69_000..71_000).contains(&counts[1]), "{counts:?}");
        assert!((24_000..26_000).contains(&counts[2]), "{counts:?}");
        assert!((4_500..5_500).contains(&counts[3]), "{counts:?}");
        assert_eq!(d.max(), 3);
        assert!((d.mean() - 1.35).abs() < 1e-9);
    }
}
