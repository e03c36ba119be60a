//! The `l2watch` binary: parses the command line and hands it to [`l2watch::cmd::run`].
#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    let cli = l2watch::cmd::Cli::parse();
    let status = match l2watch::cmd::run(cli) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("l2watch: error: {e:#}");
            2
        }
    };
    std::process::exit(status);
}
