//! The `tributary` binary: parses the command line and reports errors with an exit code that
//! says what kind they are ([`tributary::exit`]); everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tributary::cli::Cli::parse();
    match tributary::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(tributary::exit::Exit::of(&e).code())
        }
    }
}
