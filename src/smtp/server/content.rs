//! The content of one message inside a session (DATA, or every BDAT chunk together): how
//! many bytes reached the handler, and where further bytes go once the content failed.
//!
//! WHAT: [`Content::accept`] passes content bytes to `Handler::data_chunk` until the size
//! limit (`policy::size::exceeds_size_limit`, the one rule) or a handler error; after
//! that the content is drained and the reply remembered for its end (Stalwart's
//! `DataTooLarge`, generalised). An end-of-data look-alike switches to `Smuggling`, whose
//! `554 5.6.0` wins over any earlier failure.
//!
//! TRUST: the bytes are the peer's, never interpreted here; only counted and passed on.
//!
//! STANDARDS: RFC 1870 (SIZE: content over the limit gets 552 5.3.4), RFC 5321 §4.1.1.4.
//! Layer 0: no I/O, no clock.

use super::Handler;
use crate::policy::size::exceeds_size_limit;
use crate::smtp::reply::Reply;

/// Progress of one message's content (DATA or all BDAT chunks together).
#[derive(Debug)]
pub(super) struct Content {
    /// Content bytes passed to the handler so far. Invariant: ≤ the size limit.
    pub(super) received_bytes: u64,
    /// Where further content goes.
    pub(super) sink: Sink,
}

/// Where content bytes go.
#[derive(Debug)]
pub(super) enum Sink {
    /// To `Handler::data_chunk`.
    Handler,
    /// Nowhere: the content failed, `data_abort` was called, and this reply is sent when the
    /// content ends (Stalwart's `DataTooLarge`, generalised).
    Drain(Reply),
    /// Nowhere: the content held an end-of-data look-alike (`data.rs`); answered
    /// `554 5.6.0` when it ends. Overrides any earlier `Drain` reply (size, bare line
    /// ending, handler error), so the verdict does not depend on where the input was split.
    Smuggling,
}

impl Sink {
    /// The reply for content that went nowhere; `None` for `Handler`.
    pub(super) fn into_refusal(self) -> Option<Reply> {
        match self {
            Sink::Handler => None,
            Sink::Drain(reply) => Some(reply),
            Sink::Smuggling => Some(Reply::smuggling_refused()),
        }
    }
}

impl Content {
    /// Nothing received yet; content goes to the handler.
    pub(super) fn new() -> Self {
        Content { received_bytes: 0, sink: Sink::Handler }
    }

    /// Pass `bytes` on unless draining; switch to draining on overflow or handler error.
    pub(super) fn accept<H: Handler>(&mut self, bytes: &[u8], max_bytes: u64, h: &mut H) {
        if !matches!(self.sink, Sink::Handler) {
            return;
        }
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.received_bytes = self.received_bytes.saturating_add(len);
        if exceeds_size_limit(self.received_bytes, max_bytes) {
            h.refused_for_size();
            self.fail(Reply::message_too_big(), h);
        } else if let Err(r) = h.data_chunk(bytes) {
            self.fail(r, h);
        }
    }

    /// Refuse content that held an end-of-data look-alike: counted once, and it replaces any
    /// earlier failure's reply.
    pub(super) fn refuse_smuggling<H: Handler>(&mut self, h: &mut H) {
        match self.sink {
            Sink::Smuggling => return,
            Sink::Handler => h.data_abort(),
            Sink::Drain(_) => {}
        }
        h.refused_smuggling();
        self.sink = Sink::Smuggling;
    }

    /// Abandon the content (once) and remember the reply for its end.
    pub(super) fn fail<H: Handler>(&mut self, reply: Reply, h: &mut H) {
        if let Sink::Handler = self.sink {
            h.data_abort();
            self.sink = Sink::Drain(reply);
        }
    }
}
