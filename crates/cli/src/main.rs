//! The `skystream` binary: flag parsing and wiring over the library crates; no protocol logic
//! lives here.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let result = match args.command {
        cli::Command::Inspect(a) => commands::inspect::run(&a),
        cli::Command::Convert(a) => commands::convert::run(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skystream: {e:#}");
            ExitCode::from(2)
        }
    }
}
