//! Command line: arguments -> `Command`; no logic beyond dispatch.
//! (Owned by the config/cli helper.)

/// Parse arguments and run; returns the process exit status.
pub fn main() -> i32 {
    unimplemented!("cli")
}
