//! [`Config`] -> TOML text: the full effective configuration, every key present, in the
//! syntax `parse.rs` accepts (sizes and durations with units where exact).

use std::fmt::Write as _;

use super::Config;
use super::units::{format_duration_ms, format_size};

/// A TOML basic string for `s`, quotes included (escaping done by the `toml` crate).
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML array of strings on one line.
fn list<T: ToString>(items: &[T]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(&i.to_string())).collect();
    format!("[{}]", quoted.join(", "))
}

/// See [`Config::to_toml`].
pub(super) fn to_toml(c: &Config) -> String {
    let l = &c.limits;
    let mut out = String::new();
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(out, "# mailroot effective configuration");
    let _ = writeln!(out, "hostname = {}", quote(&c.hostname));
    let _ = writeln!(out, "mailroot = {}", quote(&c.mailroot.to_string_lossy()));
    let _ = writeln!(out, "workers = {}", c.workers);
    let _ = writeln!(out, "log_level = {}", quote(&c.log_level));
    let _ = writeln!(out, "\n[limits]");
    let _ = writeln!(out, "max_message_size = {}", format_size(l.max_message_size_bytes));
    let _ = writeln!(out, "max_recipients = {}", l.max_recipients);
    let _ = writeln!(out, "max_messages_per_connection = {}", l.max_messages_per_connection);
    let _ = writeln!(out, "max_connections = {}", l.max_connections);
    let _ = writeln!(out, "max_connections_per_ip = {}", l.max_connections_per_ip);
    let _ = writeln!(out, "command_timeout = {}", format_duration_ms(l.command_timeout_ms));
    let _ = writeln!(out, "data_timeout = {}", format_duration_ms(l.data_timeout_ms));
    let _ = writeln!(out, "max_errors = {}", l.max_errors);
    let _ = writeln!(out, "min_free_disk = {}", format_size(l.min_free_disk_bytes));
    let _ = writeln!(out, "shutdown_grace = {}", format_duration_ms(l.shutdown_grace_ms));
    let _ = writeln!(out, "\n[relay]\nallow = {}", list(&c.relay.allow));
    let _ = writeln!(out, "\n[connections]");
    let _ = writeln!(out, "allow = {}", list(&c.connections.allow));
    let _ = writeln!(out, "deny = {}", list(&c.connections.deny));
    let _ = writeln!(out, "\n[domains]\nlocal = {}", list(&c.domains.local));
    let _ =
        writeln!(out, "\n[smtp]\nbare_line_ending = {}", quote(c.smtp.bare_line_ending.as_str()));
    let _ = writeln!(out, "\n[spool]\nsegment_size = {}", format_size(c.spool.segment_bytes));
    for site in &c.sites {
        let _ = writeln!(out, "\n[[site]]\nname = {}", quote(&site.name));
        let _ = writeln!(out, "listen = {}", list(&site.listen));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{BareLineEnding, SystemDefaults};
    use super::*;

    fn sys() -> SystemDefaults {
        SystemDefaults { hostname: "mx.example.org".to_owned(), cores: 3 }
    }

    fn round_trip(c: &Config) {
        let text = c.to_toml();
        let back = Config::from_toml_str(&text, &sys()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(&back, c, "{text}");
    }

    #[test]
    fn default_round_trips() {
        round_trip(&Config::embedded_default(&sys()));
    }

    #[test]
    fn default_text() {
        let text = Config::embedded_default(&sys()).to_toml();
        let expect = [
            "hostname = \"mx.example.org\"",
            "mailroot = \"./mailroot\"",
            "workers = 3",
            "log_level = \"info\"",
            "max_message_size = \"10MiB\"",
            "max_recipients = 100",
            "max_messages_per_connection = 20",
            "max_connections = 10000",
            "max_connections_per_ip = 100",
            "command_timeout = \"5m\"",
            "data_timeout = \"10m\"",
            "max_errors = 10",
            "min_free_disk = \"100MiB\"",
            "shutdown_grace = \"30s\"",
            "[relay]\nallow = [\"127.0.0.0/8\", \"::1/128\"]",
            "[connections]\nallow = []\ndeny = []",
            "[domains]\nlocal = [\"localhost\"]",
            "bare_line_ending = \"normalize\"",
            "segment_size = \"64MiB\"",
            "[[site]]\nname = \"default\"\nlisten = [\"127.0.0.1:2525\"]",
        ];
        for line in expect {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn custom_round_trips() {
        let text = r#"
            hostname = "relay.example.net"
            mailroot = "/srv/mail root/\"quoted\"\\x"
            workers = 7
            log_level = "trace"
            [limits]
            max_message_size = 1234567
            max_recipients = 1
            max_messages_per_connection = 4294967295
            max_connections = 1
            max_connections_per_ip = 1
            command_timeout = "250ms"
            data_timeout = "1500ms"
            max_errors = 1
            min_free_disk = 0
            shutdown_grace = 0
            [relay]
            allow = ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"]
            [connections]
            allow = ["0.0.0.0/0", "::/0"]
            deny = ["198.51.100.0/24"]
            [domains]
            local = ["example.net", "xn--bcher-kva.example"]
            [smtp]
            bare_line_ending = "reject"
            [spool]
            segment_size = 1048577
            [[site]]
            name = "inbound"
            listen = ["0.0.0.0:25", "[::]:25"]
            [[site]]
            name = "submission.v2"
            listen = ["127.0.0.1:587", "[::1]:587"]
        "#;
        let c = Config::from_toml_str(text, &sys()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.smtp.bare_line_ending, BareLineEnding::Reject);
        assert_eq!(c.mailroot.to_string_lossy(), "/srv/mail root/\"quoted\"\\x");
        round_trip(&c);
    }
}
