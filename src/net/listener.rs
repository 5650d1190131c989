//! Listening sockets: one per (worker, address), all bound with `SO_REUSEPORT`.
//!
//! WHAT: every worker binds its own listener for every configured address, so the kernel
//! spreads incoming connections across workers (by 4-tuple hash) and no accept lock or
//! hand-off between threads exists (sozu's shared-nothing model).
//! Options: `SO_REUSEADDR` (restart while old connections sit in TIME_WAIT), `SO_REUSEPORT`,
//! `IPV6_V6ONLY` on v6 addresses (a `[::]` listener never swallows v4 traffic meant for a
//! separate v4 listener), `TCP_NODELAY` (SMTP replies are small and written once per
//! pass: Nagle would only add latency; Linux copies it to every accepted socket, which
//! saves a `setsockopt` per connection, and a test below checks that it does),
//! non-blocking, backlog `LISTEN_BACKLOG`.
//!
//! SECURITY: Linux only lets sockets of the same effective UID share a port with
//! `SO_REUSEPORT`; another user cannot steal a share of our connections. A second process
//! of the *same* user listening with `SO_REUSEPORT` on the same address would silently get
//! a share of them, so the relay first calls `ensure_unused` (a bind *without*
//! `SO_REUSEPORT`, which fails while anybody listens there) and refuses to start.

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
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

/// Fail with `AddrInUse` if some socket already listens on `addr` (ours or another
/// process's, `SO_REUSEPORT` or not). The probe socket is bound, never listened on, and
/// closed at once.
pub fn ensure_unused(addr: SocketAddr) -> io::Result<()> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_detects_a_listener_already_there() {
        let a = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = a.local_addr().unwrap();
        let err = ensure_unused(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        drop(a);
        ensure_unused(addr).unwrap();
    }

    #[test]
    fn ipv6_loopback_if_available() {
        let Ok(a) = bind("[::1]:0".parse().unwrap()) else { return }; // no IPv6 here
        let addr = a.local_addr().unwrap();
        assert!(addr.is_ipv6());
        bind(addr).unwrap();
    }

    #[test]
    fn accepted_sockets_inherit_nodelay() {
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let _client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let accepted = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        assert!(accepted.nodelay().unwrap(), "the worker relies on the listener's TCP_NODELAY");
    }

    #[test]
    fn two_listeners_share_a_port() {
        let a = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = a.local_addr().unwrap();
        let b = bind(addr).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
    }
}
