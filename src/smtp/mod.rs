//! Sans-IO SMTP protocol core (RFC 5321 and extensions). No sockets, no clock.
pub mod client;
pub mod command;
pub mod data;
pub mod date;
pub mod params;
pub mod path;
pub mod reply;
pub mod reply_parse;
pub mod sasl;
pub mod server;
pub mod stuff;
#[cfg(test)]
mod test_bytes;
pub mod trace;
