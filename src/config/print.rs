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
    let _ = writeln!(out, "min_data_rate = {}", l.min_data_rate_bytes_per_s);
    let _ = writeln!(out, "max_errors = {}", l.max_errors);
    let _ = writeln!(out, "min_free_disk = {}", format_size(l.min_free_disk_bytes));
    let _ = writeln!(out, "shutdown_grace = {}", format_duration_ms(l.shutdown_grace_ms));
    let r = &c.relay;
    let _ = writeln!(out, "\n[relay]\nallow = {}", list(&r.allow));
    // Optional keys are printed commented out when unset, so the text still parses.
    let _ = writeln!(out, "{}", optional("smart_host", r.smart_host.as_ref()));
    let _ = writeln!(out, "attempt_direct_first = {}", r.attempt_direct_first);
    let _ = writeln!(out, "{}", optional("masquerade_domain", r.masquerade_domain.as_ref()));
    let _ = writeln!(out, "max_hop_count = {}", r.max_hop_count);
    let _ = writeln!(out, "{}", optional("send_ndr_copy_to", r.send_ndr_copy_to.as_ref()));
    // SECURITY: never the password, only where it comes from.
    match &r.smart_host_auth {
        Some(a) => {
            let secret = match &a.password_file {
                Some(f) => format!("password_file = {}", quote(&f.to_string_lossy())),
                None => "password = \"<redacted>\"".to_owned(),
            };
            let user = quote(&a.credentials.user);
            let _ = writeln!(out, "smart_host_auth = {{ user = {user}, {secret} }}");
        }
        None => {
            let _ = writeln!(out, "# smart_host_auth = (unset)");
        }
    }
    let _ = writeln!(out, "\n[connections]");
    let _ = writeln!(out, "allow = {}", list(&c.connections.allow));
    let _ = writeln!(out, "deny = {}", list(&c.connections.deny));
    let _ = writeln!(out, "\n[domains]\nlocal = {}", list(&c.domains.local));
    let _ = writeln!(out, "aliases = {}", list(&c.domains.aliases));
    let _ =
        writeln!(out, "\n[smtp]\nbare_line_ending = {}", quote(c.smtp.bare_line_ending.as_str()));
    let _ = writeln!(out, "\n[spool]\nsegment_size = {}", format_size(c.spool.segment_bytes));
    let _ = writeln!(out, "commit_delay = {}", format_duration_ms(c.spool.commit_delay_ms));
    for site in &c.sites {
        let _ = writeln!(out, "\n[[site]]\nname = {}", quote(&site.name));
        let _ = writeln!(out, "listen = {}", list(&site.listen));
        super::tls::print_site(&site.tls, &mut out);
        super::proxy::print_site(&site.proxy, &mut out);
        super::protolog::print_site(&site.protocol_log, &mut out);
        super::site::print_site(c, site, &mut out);
    }
    outbound(c, &mut out);
    super::admin::print(&c.admin, &mut out);
    super::auth::print(&c.auth, &mut out);
    super::tls::print(&c.tls, &mut out);
    super::protolog::print(&c.protocol_log, &mut out);
    super::event_log::print(&c.event_log, &mut out);
    super::service::print(&c.service, &mut out);
    out
}

/// `key = "value"`, or `# key = (unset)` when there is no value.
fn optional<T: ToString>(key: &str, v: Option<&T>) -> String {
    match v {
        Some(v) => format!("{key} = {}", quote(&v.to_string())),
        None => format!("# {key} = (unset)"),
    }
}

/// `[[domain]]`, `[hosts]`, `[dns]` and `[delivery]`.
fn outbound(c: &Config, out: &mut String) {
    for rule in &c.domain_rules {
        let _ = writeln!(out, "\n[[domain]]\nname = {}", quote(&rule.pattern.to_string()));
        let _ = writeln!(out, "relay = {}\nhelo = {}", rule.relay, rule.helo);
        let _ = writeln!(out, "{}", optional("smart_host", rule.smart_host.as_ref()));
        if let Some(p) = rule.port {
            let _ = writeln!(out, "port = {p}");
        }
        if let Some(d) = &rule.drop {
            let _ = writeln!(out, "drop = {}", quote(&d.to_string_lossy()));
        }
        let _ = writeln!(out, "{}", optional("tls", rule.tls.as_ref()));
    }
    let _ = writeln!(out, "\n[hosts]");
    for (name, addrs) in &c.hosts {
        let _ = writeln!(out, "{} = {}", quote(name), list(addrs));
    }
    let d = &c.dns;
    let _ = writeln!(out, "\n[dns]\nservers = {}", list(&d.servers));
    let _ = writeln!(out, "timeout = {}", format_duration_ms(d.timeout_ms));
    let _ = writeln!(out, "attempts = {}", d.attempts);
    let d = &c.delivery;
    let retry: Vec<String> = d.retry_ms.iter().map(|&ms| format_duration_ms(ms)).collect();
    let _ = writeln!(out, "\n[delivery]\nretry = [{}]", retry.join(", "));
    let durations = [
        ("delay_notify", d.delay_notify_ms),
        ("expire", d.expire_ms),
        ("connect_timeout", d.connect_timeout_ms),
        ("greeting_timeout", d.greeting_timeout_ms),
        ("mail_timeout", d.mail_timeout_ms),
        ("rcpt_timeout", d.rcpt_timeout_ms),
        ("data_init_timeout", d.data_init_timeout_ms),
        ("data_block_timeout", d.data_block_timeout_ms),
        ("data_term_timeout", d.data_term_timeout_ms),
    ];
    for (key, ms) in durations {
        let _ = writeln!(out, "{key} = {}", format_duration_ms(ms));
    }
    let _ = writeln!(out, "max_messages_per_connection = {}", d.max_messages_per_connection);
    let _ = writeln!(out, "max_connections = {}", d.max_connections);
    let _ = writeln!(out, "max_connections_per_domain = {}", d.max_connections_per_domain);
    let _ = writeln!(out, "active_limit = {}", d.active_limit);
    let _ = writeln!(out, "local_concurrency = {}", d.local_concurrency);
    let _ = writeln!(out, "port = {}", d.port);
    let _ = writeln!(out, "hold = {}", d.hold);
    let _ = writeln!(out, "tls = {}", quote(d.tls.as_str()));
    if let Some(f) = &d.tls_ca_file {
        let _ = writeln!(out, "tls_ca_file = {}", quote(&f.to_string_lossy()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BareLineEnding, SystemDefaults};
    use super::*;

    fn sys() -> SystemDefaults {
        crate::config::test_support::sys(3)
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
            "workers = 2", // 3 cores: half, rounded up
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
            "# smart_host = (unset)\nattempt_direct_first = false",
            "max_hop_count = 50",
            "aliases = []",
            "[hosts]\n",
            "[dns]\nservers = []\ntimeout = \"5s\"\nattempts = 2",
            "retry = [\"15m\", \"30m\", \"1h\", \"4h\"]",
            "delay_notify = \"12h\"\nexpire = \"2d\"\nconnect_timeout = \"5m\"",
            "greeting_timeout = \"5m\"\nmail_timeout = \"5m\"\nrcpt_timeout = \"5m\"",
            "data_init_timeout = \"2m\"\ndata_block_timeout = \"3m\"\ndata_term_timeout = \"10m\"",
            "max_messages_per_connection = 20\nmax_connections = 500",
            "max_connections_per_domain = 20\nactive_limit = 20000\nlocal_concurrency = 8\nport = 25",
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
        let text = r#"
            [relay]
            smart_host = "[2001:db8::25]:2525"
            attempt_direct_first = true
            masquerade_domain = "example.net"
            max_hop_count = 7
            send_ndr_copy_to = "postmaster@example.net"
            [domains]
            local = ["example.net", "b.example"]
            aliases = ["alias.example"]
            [[domain]]
            name = "*.corp.example"
            relay = true
            smart_host = "gw.corp.example:587"
            [[domain]]
            name = "b.example"
            helo = true
            port = 2526
            drop = "/srv/drop b"
            [hosts]
            "db.corp.example" = ["10.0.0.1", "2001:db8::1"]
            "x" = ["192.0.2.1"]
            [dns]
            servers = ["127.0.0.1:5353", "[::1]:53"]
            timeout = "1500ms"
            attempts = 4
            [delivery]
            retry = ["1m", "90s", 7]
            delay_notify = 0
            expire = "3d"
            max_messages_per_connection = 3
            max_connections = 9
            max_connections_per_domain = 2
            connect_timeout = "1s"
            greeting_timeout = "2s"
            mail_timeout = "3s"
            rcpt_timeout = "4s"
            data_init_timeout = "5s"
            data_block_timeout = "6s"
            data_term_timeout = "7s"
            port = 2525
        "#;
        let c = Config::from_toml_str(text, &sys()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.domain_rules.len(), 2);
        assert_eq!(c.delivery.retry_ms, [60_000, 90_000, 7_000]);
        round_trip(&c);
    }
}
