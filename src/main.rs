//! The `mailroot` binary: parse the CLI, run, map errors to exit codes.
fn main() {
    std::process::exit(mailroot::cli::main());
}
