//! Delivery services: the threads that carry a task to its next hop.
//!
//! * `inbox`: what the queue runner hands to delivery (`Task`, `ResolveRequest`,
//!   `LocalRequest`, `OutboundTask`, `Target`; plain data) and the shape of the submit
//!   handle it is wired with (`RemoteSubmit`);
//! * `resolve`: the DNS thread pool turning a route into connection targets (`Router`);
//! * `outbound`: a `net::Service` driving `smtp::client::ClientSession`s on the shared I/O
//!   core;
//! * `local_worker`: Drop folder writes (`local::drop`) on their own thread.
//!
//! Layer 0 pieces in this folder: `dest` (destination queues and connection limits of
//! outbound delivery) and `outcome` (what the remote replies mean per recipient). The pure
//! decisions delivery follows live in `plan::route` (next hop, loop checks); results go
//! back as `queue::inbox::TaskReport`.

pub mod dest;
pub mod inbox;
pub mod local_worker;
pub mod outbound;
pub mod outcome;
pub mod resolve;
pub mod tls;
