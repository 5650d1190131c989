//! What the protocol log needs from a session: one [`Entry`] per command with its reply,
//! recorded by the `ServerSession` when the caller turned it on (`enable_transcript`) and
//! drained by the caller after each call into the session.
//!
//! WHAT: a command line opens an entry (verb and arguments, its bytes); every byte the
//! session consumes until the command's exchange is over (DATA or BDAT content, SASL
//! response lines, the rest of an over-long line, a refused BDAT's chunk) adds to its
//! `cs_bytes`, and every reply byte written meanwhile to its `sc_bytes`; `status` is the
//! code of the last reply (the final one: 250 after DATA's 354, 235 after AUTH's 334s).
//! The entry is done when the session is ready for the next command line (or closed, or
//! waiting for TLS). So DATA is one entry from the `DATA` line to the reply after the
//! content, the commit included. Times: the caller gives `now` when it drains; an entry
//! started or finished in that call gets that time, so `time-taken` spans the passes
//! between the command's line and its reply, in the caller's clock.
//!
//! SECURITY: nothing of an AUTH exchange is kept but the verb and a known mechanism name
//! (`PLAIN`, `LOGIN`; anything else is dropped): not the initial response, not the SASL
//! lines (only counted), and the entry's `cs_bytes` is withheld (`None`) so the log does
//! not even tell the length of the credentials. A line that is not a known command keeps
//! no verb and no arguments: it may be a credential sent out of turn.
//!
//! Layer 0: no clock, no I/O. Memory: three buffers per session, reused (no allocation
//! per command once they have grown).

use super::super::command::MAX_COMMAND_LINE_BYTES;
use super::{ServerSession, State};

/// The verbs written to the log (upper case); a line starting with anything else is
/// logged without a verb.
const VERBS: &[&str] = &[
    "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP",
    "STARTTLS", "AUTH",
];

/// SASL mechanisms whose name is written in an AUTH entry's arguments.
const MECHANISMS: &[&str] = &["PLAIN", "LOGIN"];

/// One finished command, as the caller reads it in [`Transcript::drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The verb (one of the known ones), or `""` for a line that is not a known command.
    pub method: &'static str,
    /// Code of the last reply written for the command; 0 = none (the client left first).
    pub status: u16,
    /// Reply bytes written for the command.
    pub sc_bytes: u64,
    /// Bytes received for the command (line, CRLF, content); `None` for AUTH (withheld).
    pub cs_bytes: Option<u64>,
    /// The caller's `now` (ms) of the drain after the command's line was read.
    pub started_ms: u64,
    /// The caller's `now` (ms) of the drain after its reply was written.
    pub done_ms: u64,
}

/// The entry of the command in progress.
#[derive(Debug)]
struct Open {
    /// See [`Entry`].
    method: &'static str,
    /// See [`Entry`].
    status: u16,
    /// See [`Entry`].
    sc_bytes: u64,
    /// See [`Entry`]; counted even for AUTH, withheld when done.
    cs_bytes: u64,
    /// `None` until the first drain after the line.
    started_ms: Option<u64>,
}

/// Finished entries waiting for the caller, and the entry in progress.
#[derive(Debug, Default)]
pub struct Transcript {
    /// The command in progress.
    open: Option<Open>,
    /// Its arguments.
    open_args: Vec<u8>,
    /// Finished entries, oldest first (`started_ms`/`done_ms` are stamped at drain).
    done: Vec<(Open, (usize, usize))>,
    /// Arguments of the finished entries.
    args: Vec<u8>,
}

impl Transcript {
    /// A command line (with its line ending, or the first part of an over-long line) was
    /// consumed: open its entry.
    pub(super) fn line(&mut self, line: &[u8]) {
        self.finish(); // never left open here; defensive
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let body = &body[..body.len().min(MAX_COMMAND_LINE_BYTES)];
        let (verb, rest) = match body.iter().position(|&b| b == b' ') {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (body, &[][..]),
        };
        let method = VERBS.iter().copied().find(|v| v.as_bytes().eq_ignore_ascii_case(verb));
        self.open_args.clear();
        match method {
            Some("AUTH") => {
                let mech = rest.split(|&b| b == b' ').next().unwrap_or_default();
                if let Some(m) = MECHANISMS.iter().find(|m| m.as_bytes().eq_ignore_ascii_case(mech))
                {
                    self.open_args.extend_from_slice(m.as_bytes());
                }
            }
            Some(_) => self.open_args.extend_from_slice(rest),
            None => {}
        }
        self.open = Some(Open {
            method: method.unwrap_or(""),
            status: 0,
            sc_bytes: 0,
            cs_bytes: line.len() as u64,
            started_ms: None,
        });
    }

    /// More bytes consumed for the command in progress (content, SASL lines).
    pub(super) fn input(&mut self, n: usize) {
        if let Some(o) = &mut self.open {
            o.cs_bytes = o.cs_bytes.saturating_add(n as u64);
        }
    }

    /// Reply bytes written for the command in progress (whole replies, CRLF-terminated).
    pub(super) fn output(&mut self, replies: &[u8]) {
        let Some(o) = &mut self.open else { return };
        if replies.is_empty() {
            return;
        }
        o.sc_bytes = o.sc_bytes.saturating_add(replies.len() as u64);
        // The last reply line starts after the last LF before the final CRLF.
        let body = replies.strip_suffix(b"\r\n").unwrap_or(replies);
        let last = body.iter().rposition(|&b| b == b'\n').map_or(body, |i| &body[i + 1..]);
        if let Some(code) = last.get(..3).and_then(|c| std::str::from_utf8(c).ok())
            && let Ok(code) = code.parse::<u16>()
        {
            o.status = code;
        }
    }

    /// The command's exchange is over: its entry is done.
    pub(super) fn finish(&mut self) {
        if let Some(o) = self.open.take() {
            let start = self.args.len();
            self.args.extend_from_slice(&self.open_args);
            self.done.push((o, (start, self.args.len())));
        }
    }

    /// Hand every finished entry, with its arguments, to `f` (oldest first) and forget
    /// them. `now_ms` is the caller's clock: entries and the command in progress that
    /// have no start time yet get it, finished ones get it as their end time.
    pub fn drain(&mut self, now_ms: u64, mut f: impl FnMut(&Entry, &[u8])) {
        for (o, args) in self.done.drain(..) {
            let e = Entry {
                method: o.method,
                status: o.status,
                sc_bytes: o.sc_bytes,
                cs_bytes: (o.method != "AUTH").then_some(o.cs_bytes),
                started_ms: o.started_ms.unwrap_or(now_ms),
                done_ms: now_ms,
            };
            f(&e, &self.args[args.0..args.1]);
        }
        self.args.clear();
        if let Some(o) = &mut self.open {
            o.started_ms.get_or_insert(now_ms);
        }
    }
}

impl ServerSession {
    /// Record a [`Transcript`] of every command from now on (the protocol log).
    pub fn enable_transcript(&mut self) {
        self.transcript.get_or_insert_with(Box::default);
    }

    /// The transcript, if enabled: drain it after each call into the session.
    pub fn transcript(&mut self) -> Option<&mut Transcript> {
        self.transcript.as_deref_mut()
    }

    /// The next input is a command line (not content, not a SASL response).
    pub(super) fn reads_command_line(&self) -> bool {
        matches!(
            self.state,
            State::Greeted | State::Ready { .. } | State::Mail { .. } | State::BdatIdle { .. }
        )
    }

    /// Account one step or call: `line` (a command line consumed), or `consumed` other
    /// bytes, and the `written` replies; the entry is done once the session is between
    /// commands again (or closed, or waiting for TLS).
    pub(super) fn transcribe(&mut self, line: Option<&[u8]>, consumed: usize, written: &[u8]) {
        let boundary = self.reads_command_line()
            || matches!(self.state, State::Closed { .. } | State::StartTls);
        let Some(t) = self.transcript.as_deref_mut() else { return };
        match line {
            Some(l) => t.line(l),
            None => t.input(consumed),
        }
        t.output(written);
        if boundary {
            t.finish();
        }
    }
}

#[cfg(test)]
#[path = "transcript_tests.rs"]
mod tests;
