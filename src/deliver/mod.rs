//! Delivery services: the threads that carry a task to its next hop.
//!
//! * `inbox`: what the queue runner hands to delivery (`Task`, `ResolveRequest`,
//!   `LocalRequest`, `OutboundTask`) and the `Router` handle it sends remote tasks with;
//! * `resolve`: the DNS thread pool turning a route into connection targets;
//! * `outbound`: the mio event loop driving `smtp::client::ClientSession`s;
//! * `local_worker`: Drop folder writes (`local::drop`) on their own thread.
//!
//! The pure decisions they follow live in `plan::route` (next hop, loop checks); results go
//! back as `queue::inbox::TaskReport`. `route`, `task` and `bounce` are compatibility
//! re-exports kept while `outbound.rs` and `tests/architecture.rs` are being rewritten.

#[doc(hidden)]
pub mod bounce;
pub mod inbox;
pub mod local_worker;
pub mod outbound;
pub mod resolve;
#[doc(hidden)]
pub mod route;
#[doc(hidden)]
pub mod task;
