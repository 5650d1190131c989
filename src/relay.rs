//! Wiring: builds the workers, the spool syncers, the queue runner; signals; shutdown order.
//! (Owned by the net/receive helper.)

use crate::config::Config;

/// Errors that stop the relay from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// Could not bind a listen address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the site's `listen` list.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The spool could not be opened or recovered.
    #[error("spool: {0}")]
    Spool(String),
    /// Any other I/O failure while starting.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Run the relay until SIGTERM/SIGINT; returns after a clean shutdown.
pub fn serve(config: Config) -> Result<(), RelayError> {
    let _ = config;
    unimplemented!("relay::serve")
}
