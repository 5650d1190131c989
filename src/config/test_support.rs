//! Helpers shared by the config unit tests: the system defaults they parse against and the
//! check that a bad configuration is refused naming its key.

use super::{Config, SystemDefaults};

/// The machine the config tests pretend to run on: `mx.example.org` with `cores` cores
/// (the default `workers`).
pub(crate) fn sys(cores: usize) -> SystemDefaults {
    SystemDefaults { hostname: "mx.example.org".to_owned(), cores }
}

/// Each `(TOML text, key, words)`: parsing fails with an error at `key` whose problem
/// contains `words`.
pub(crate) fn assert_refused(cases: &[(&str, &str, &str)]) {
    for &(text, key, words) in cases {
        let err = Config::from_toml_str(text, &sys(4)).expect_err(text);
        assert_eq!(err.key, key, "{text:?}: {err}");
        assert!(err.problem.contains(words), "{text:?}: {err}");
    }
}
