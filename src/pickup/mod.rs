//! The Pickup folder: files written into `Mailroot/Pickup/` are queued like mail from a
//! client (IIS and .NET `SmtpClient` "pickup directory" delivery).
//!
//! * `parse` (pure, layer 0): file bytes -> envelope + content, or the Badmail reason.
//! * `watch` (service): the `pickup` thread: inotify + periodic rescan, spool writes with
//!   a group commit, the file removed only once its message is durable, unparseable files
//!   moved to `Badmail/`.

pub mod parse;
pub mod watch;

pub use parse::{PickupError, PickupMessage, parse};
pub use watch::{PICKUP_RESCAN_MS, PickupConfig, spawn, spawn_following};
