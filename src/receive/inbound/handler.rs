//! The session's `Handler` for one connection (`TxHandler`): the policy questions at MAIL
//! (spool free space, 452 4.3.1) and RCPT (`policy::access::check_rcpt`), and the spool
//! record the content streams into (`data_start` writes our `Received:` header first,
//! `data_chunk` appends, `data_end` finishes it and the reply waits for the group commit),
//! and the hand-over of AUTH credentials to the verifier. Lent by `Inbound::handler` for one
//! `feed`/`disconnect` call.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::SystemTime;

use super::{ConnTx, Pending, RecordState};
use crate::config::Config;
use crate::net::{ConnId, Peer};
use crate::policy::access::check_rcpt;
use crate::policy::domain::rcpt_split;
use crate::receive::auth::WorkerAuth;
use crate::smtp::command::{MailParams, RcptParams};
use crate::smtp::path::{ForwardPath, ReversePath};
use crate::smtp::reply::Reply;
use crate::smtp::server::{AuthOutcome, DataOutcome, Handler, Transaction};
use crate::spool::{Spool, SpoolError, SpoolWriter};
use crate::stats::{Counter, CounterBlock};

/// The session's `Handler` for one `feed` call: policy + spool for one connection.
pub(super) struct TxHandler<'a> {
    /// stats: the worker's block for the connection's site.
    pub(super) stats: &'a CounterBlock,
    /// Configuration.
    pub(super) cfg: &'a Config,
    /// The spool (free-space check).
    pub(super) spool: &'a Spool,
    /// This worker's writer.
    pub(super) writer: &'a mut SpoolWriter,
    /// The worker's commit-wait list.
    pub(super) pending: &'a mut VecDeque<Pending>,
    /// The connection's transaction state.
    pub(super) tx: &'a mut ConnTx,
    /// The connection's id (for the commit-wait list).
    pub(super) conn: ConnId,
    /// Wall clock of this pass.
    pub(super) now: SystemTime,
    /// The AUTH verifier, if users are configured.
    pub(super) auth: Option<&'a WorkerAuth>,
}

impl Handler for TxHandler<'_> {
    fn mail(&mut self, _from: &ReversePath<'_>, _params: &MailParams<'_>) -> Result<(), Reply> {
        if !self.spool.has_free_space() {
            return Err(Reply::insufficient_storage());
        }
        Ok(())
    }

    fn rcpt(&mut self, to: &ForwardPath<'_>, _params: &RcptParams<'_>) -> Result<(), Reply> {
        let authenticated = self.tx.authenticated.is_some();
        let verdict = check_rcpt(self.cfg, client_ip(&self.tx.peer), authenticated, to);
        if verdict.is_err() {
            self.stats.inc(Counter::MessagesRefusedPolicy); // stats
        }
        verdict
    }

    fn refused_for_size(&mut self) {
        self.stats.inc(Counter::MessagesRefusedSize); // stats
    }

    fn refused_smuggling(&mut self) {
        self.stats.inc(Counter::SmugglingRefused); // stats
        let site = self.cfg.sites.get(self.tx.peer.listener_tag).map_or("", |s| s.name.as_str());
        log::warn!(
            "client={} site={site} refused: end-of-data look-alike in content (SMTP smuggling), \
             554 5.6.0",
            self.tx.peer.remote
        );
    }

    fn data_start(&mut self, t: &Transaction) -> Result<(), Reply> {
        let env = self.envelope(t);
        self.tx.rcpts =
            rcpt_split(&self.cfg.domains, env.recipients.iter().map(|r| r.forward_path.as_str()));
        let mut rec = self.writer.begin(&env).map_err(|e| spool_reply(&e))?;
        self.tx.from = env.reverse_path; // moved, not copied: the envelope is done with
        let mut header = Vec::with_capacity(256);
        crate::receive::received::received_header(
            &mut header,
            self.cfg,
            &self.tx.peer,
            t,
            rec.id(),
            self.now,
        );
        if let Err(e) = self.writer.append(&mut rec, &header) {
            self.writer.abort(rec);
            return Err(spool_reply(&e));
        }
        self.tx.record = RecordState::Open(rec);
        Ok(())
    }

    fn data_chunk(&mut self, bytes: &[u8]) -> Result<(), Reply> {
        let RecordState::Open(rec) = &mut self.tx.record else {
            return match &self.tx.record {
                RecordState::Failed(r) => Err(r.clone()),
                _ => Err(Reply::local_error()),
            };
        };
        if let Err(e) = self.writer.append(rec, bytes) {
            let reply = spool_reply(&e);
            if let RecordState::Open(rec) =
                std::mem::replace(&mut self.tx.record, RecordState::Failed(reply.clone()))
            {
                self.writer.abort(rec);
            }
            return Err(reply);
        }
        Ok(())
    }

    fn data_end(&mut self) -> DataOutcome {
        match std::mem::replace(&mut self.tx.record, RecordState::Idle) {
            RecordState::Open(rec) => match (rec.bytes(), self.writer.finish(rec)) {
                (bytes, Ok(ticket)) => {
                    let client = self.tx.peer.remote;
                    self.pending.push_back(Pending {
                        ticket,
                        conn: self.conn,
                        bytes,
                        client,
                        site: self.tx.peer.listener_tag,
                        rcpts: self.tx.rcpts,
                        finished: self.now,
                        // Cloned only for authenticated sessions (a short name).
                        user: self.tx.authenticated.clone(),
                        from: std::mem::take(&mut self.tx.from),
                    });
                    self.tx.record = RecordState::Committing;
                    DataOutcome::Pending
                }
                (_, Err(e)) => DataOutcome::Done(spool_reply(&e)),
            },
            RecordState::Failed(reply) => DataOutcome::Done(reply),
            RecordState::Idle | RecordState::Committing => DataOutcome::Done(Reply::local_error()),
        }
    }

    fn data_abort(&mut self) {
        if let RecordState::Open(rec) = std::mem::replace(&mut self.tx.record, RecordState::Idle) {
            self.writer.abort(rec);
        }
    }

    fn auth_check(&mut self, authcid: &str, password: &[u8]) -> AuthOutcome {
        let Some(auth) = self.auth else { return AuthOutcome::Done(false) };
        let peer = &self.tx.peer;
        if auth.submit(self.conn, peer.listener_tag, client_ip(peer), authcid, password) {
            self.tx.auth_pending = Some(authcid.to_owned());
            AuthOutcome::Pending
        } else {
            log::error!("client={} AUTH verifier thread is gone", peer.remote);
            AuthOutcome::Done(false)
        }
    }
}

/// The client's address as policy sees it.
pub(super) fn client_ip(peer: &Peer) -> IpAddr {
    peer.remote.ip()
}

/// 452 4.3.1 for a full disk, 451 4.3.0 for anything else.
pub(super) fn spool_reply(e: &SpoolError) -> Reply {
    match e {
        SpoolError::NoSpace => Reply::insufficient_storage(),
        _ => Reply::local_error(),
    }
}
