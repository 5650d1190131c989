//! Stand-in for `mailroot serve` / `mailroot queue list` until `cli.rs` lands:
//! `cargo run --release --example serve [serve|list] [config.toml]`, with the embedded
//! default configuration (127.0.0.1:2525, ./mailroot) when no file is given.

use mailroot::config::{Config, SystemDefaults};

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sys = SystemDefaults { hostname: "localhost".into(), cores };
    let config = match std::env::args().nth(2) {
        None => Config::embedded_default(&sys),
        Some(path) => {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                eprintln!("{path}: {e}");
                std::process::exit(2)
            });
            Config::from_toml_str(&text, &sys).unwrap_or_else(|e| {
                eprintln!("{path}: {e}");
                std::process::exit(2)
            })
        }
    };
    match std::env::args().nth(1).as_deref().unwrap_or("serve") {
        "list" => match mailroot::spool::scan(&config.queue_dir()) {
            Ok(msgs) => {
                for m in &msgs {
                    println!(
                        "{} {} bytes from=<{}> rcpts={}",
                        m.id,
                        m.message_bytes,
                        m.envelope.reverse_path,
                        m.envelope.recipients.len()
                    );
                }
                println!("{} messages", msgs.len());
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
        _ => {
            if let Err(e) = mailroot::relay::serve(config) {
                eprintln!("mailroot: {e}");
                std::process::exit(1);
            }
        }
    }
}
