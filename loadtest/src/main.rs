//! mailroot-loadtest: bundled SMTP load generator (source mode).
fn main() {}
