//! "How big may a message be?": the one size rule every entry point asks.
//!
//! What: [`exceeds_size_limit`] is the rule for the SMTP `SIZE` parameter and the content
//! received in DATA/BDAT (`smtp::server`, replying `552 5.3.4`), for the `SIZE` check of
//! `receive::inbound`, and for files in `Pickup/` (`pickup::watch`, Badmail "too large").
//! The limit is `[limits] max_message_size` (`max_message_size_bytes`, never 0 in a
//! validated `Config`); a limit of 0 means "no limit" (a bare `smtp::ServerConfig` in
//! tests may use it).
//!
//! Trust: sizes are declared by peers (`SIZE=`) or counted by us; they are only compared.
//!
//! Layer 0: no I/O, no clock. Standards: RFC 1870 (SIZE; the limit is on the message as
//! transmitted, the unit is octets).

/// True when a message of `size_bytes` is larger than `max_message_size_bytes` (0: no
/// limit). A message of exactly the limit is accepted (RFC 1870 §6: "exceeds").
#[must_use]
pub fn exceeds_size_limit(size_bytes: u64, max_message_size_bytes: u64) -> bool {
    max_message_size_bytes != 0 && size_bytes > max_message_size_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_rule() {
        // (size, limit, too big?)
        let cases: &[(u64, u64, bool)] = &[
            (0, 10, false),
            (10, 10, false),
            (11, 10, true),
            (u64::MAX, 10, true),
            (u64::MAX, 0, false),
            (0, 0, false),
        ];
        for &(size, limit, want) in cases {
            assert_eq!(exceeds_size_limit(size, limit), want, "{size} {limit}");
        }
    }
}
