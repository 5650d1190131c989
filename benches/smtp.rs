//! Criterion benches for smtp.
fn main() {}
