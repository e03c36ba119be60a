use clap::Parser;

fn main() {
    let cli = l2watch::cli::Cli::parse();
    let status = match l2watch::cli::run(cli) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("l2watch: error: {e:#}");
            2
        }
    };
    std::process::exit(status);
}
