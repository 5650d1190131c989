//! The bodies of mailroot's fuzz targets (`src/targets.rs`), shared by the libFuzzer
//! binaries in `fuzz_targets/` and the corpus replay test `tests/fuzz_corpus.rs` of the
//! main crate.

mod targets;

pub use targets::*;
