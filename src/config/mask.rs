//! The effective configuration with its secrets masked, for the admin listener's
//! `GET /api/config` and the web admin page.
//!
//! WHAT: `Config::to_toml` (the text `check-config` prints) parsed back into a table, every
//! value under a secret key replaced by [`MASK`], then turned into JSON. Secret keys are
//! [`SECRET_KEYS`] at any depth: `[admin] token`, `[[user]] password_hash`, the
//! `password` of `[relay] smart_host_auth` (already `<redacted>` in the text: masked again
//! so that a future printer change cannot leak it here).
//!
//! SECURITY: the page is readable by whoever may `GET /` of the admin listener; nothing
//! here may ever carry a secret. Paths to secret files (`password_file`) are shown: they
//! are not secrets.

use super::Config;

/// What a secret value is replaced with.
pub const MASK: &str = "********";

/// Keys whose values are secrets, wherever they appear.
pub const SECRET_KEYS: &[&str] = &["password", "password_hash", "token", "secret"];

/// Replace every secret value in `v` (recursively).
fn mask(v: &mut toml::Value) {
    match v {
        toml::Value::Table(t) => mask_table(t),
        toml::Value::Array(a) => a.iter_mut().for_each(mask),
        _ => {}
    }
}

/// Replace every secret value in `t` (recursively).
fn mask_table(t: &mut toml::Table) {
    for (k, v) in t.iter_mut() {
        if SECRET_KEYS.contains(&k.as_str()) {
            *v = toml::Value::String(MASK.to_owned());
        } else {
            mask(v);
        }
    }
}

impl Config {
    /// The effective configuration as JSON, secrets masked (see the module doc).
    #[must_use]
    pub fn to_masked_json(&self) -> serde_json::Value {
        let text = self.to_toml();
        // The printer's output always parses (config/print.rs round-trip tests); if it
        // ever did not, show nothing rather than something unmasked.
        let Ok(mut table) = toml::from_str::<toml::Table>(&text) else {
            return serde_json::json!({"error": "the effective configuration did not parse"});
        };
        mask_table(&mut table);
        serde_json::to_value(&table)
            .unwrap_or_else(|e| serde_json::json!({"error": format!("not representable: {e}")}))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn secrets_are_masked() {
        // `secret`, as `mailroot hash-password` printed it (config/auth.rs tests).
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$Qdm/IffE4YDAAGITBws8Ng$\
                    bmd2utoRzDX3L5IMIzybEay5fu2pD8XqQyTInaGR5E4";
        let text = format!(
            "[admin]\ntoken = \"tok-s3cret\"\n[relay]\nsmart_host = \"[127.0.0.1]:2600\"\n\
             smart_host_auth = {{ user = \"relayuser\", password = \"pw-s3cret\" }}\n\
             [[user]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n"
        );
        let c = Config::from_toml_str(&text, &crate::config::test_support::sys(2))
            .unwrap_or_else(|e| panic!("{e}"));
        let v = c.to_masked_json();
        let out = v.to_string();
        for secret in ["tok-s3cret", "pw-s3cret", hash, "redacted"] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        // (JSON pointer, expected value)
        let cases: &[(&str, &str)] = &[
            ("/admin/token", super::MASK),
            ("/relay/smart_host_auth/password", super::MASK),
            ("/relay/smart_host_auth/user", "relayuser"),
            ("/user/0/password_hash", super::MASK),
            ("/user/0/name", "alice"),
        ];
        for (ptr, want) in cases {
            assert_eq!(v.pointer(ptr).and_then(|x| x.as_str()), Some(*want), "{ptr}: {out}");
        }
    }
}
