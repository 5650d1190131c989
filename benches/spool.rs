//! Criterion benches for spool.
fn main() {}
