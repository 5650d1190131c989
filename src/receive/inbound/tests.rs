//! Unit tests of `receive::inbound` helpers.

use super::handler::spool_reply;
use super::*;
use crate::spool::SpoolError;

#[test]
fn spool_errors_map_to_replies() {
    // (error, reply) — full disk is the only 452; everything else is a local error.
    let cases: Vec<(SpoolError, Reply)> = vec![
        (SpoolError::NoSpace, Reply::insufficient_storage()),
        (SpoolError::Io(std::io::Error::other("x")), Reply::local_error()),
        (SpoolError::NotFound(QueueId(1)), Reply::local_error()),
    ];
    for (e, want) in cases {
        assert_eq!(spool_reply(&e), want, "{e}");
    }
}
