//! Listening sockets: one per (worker, address), all bound with `SO_REUSEPORT`.
//!
//! WHAT: every worker binds its own listener for every configured address, so the kernel
//! spreads incoming connections across workers (by 4-tuple hash) and no accept lock or
//! hand-off between threads exists (sozu's shared-nothing model).
//! Options: `SO_REUSEADDR` (restart while old connections sit in TIME_WAIT), `SO_REUSEPORT`,
//! `IPV6_V6ONLY` on v6 addresses (a `[::]` listener never swallows v4 traffic meant for a
//! separate v4 listener), non-blocking, backlog `LISTEN_BACKLOG`.
//!
//! SECURITY: Linux only lets sockets of the same effective UID share a port with
//! `SO_REUSEPORT`; another user cannot steal a share of our connections. A second mailroot
//! of the *same* user on the same port would, though: run one instance per address.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// `listen(2)` backlog per listener.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Bind `addr` with the options above and return a non-blocking mio listener.
pub fn bind(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_listeners_share_a_port() {
        let a = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = a.local_addr().unwrap();
        let b = bind(addr).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
    }
}
