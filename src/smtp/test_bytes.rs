//! Test-only: the proptest strategy over the bytes that matter to DATA framing (`.`, CR,
//! LF), one ordinary letter and any byte, shared by the `data` and `stuff` property tests.

use proptest::prelude::*;

/// Byte strings of up to `max_len - 1` bytes, rich in dots, bare CRs and bare LFs.
pub(crate) fn smtp_bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()],
        0..max_len,
    )
}
