//! The `skystream` binary: flag parsing and wiring over the library crates; no protocol logic
//! lives here.

mod cli;
mod commands;
mod ingest;
mod progress;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(args: &cli::Cli) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match args.log_format {
        cli::LogFormat::Json => builder.json().init(),
        cli::LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_logging(&args);
    let result = match &args.command {
        cli::Command::Init(a) => commands::init::run(a),
        cli::Command::Inspect(a) => commands::inspect::run(a),
        cli::Command::Convert(a) => commands::convert::run(a),
        cli::Command::Record(a) => block_on(commands::record::run(a)),
        cli::Command::Migrate(a) => block_on(commands::migrate::run(a)),
        cli::Command::Serve(a) => block_on(commands::serve::run(a, true)),
        cli::Command::Ingest(a) => block_on(commands::serve::run(a, false)),
        cli::Command::Publish(a) => block_on(commands::publish::publish(a)),
        cli::Command::Unpublish(a) => block_on(commands::publish::unpublish(a)),
        cli::Command::Verify(a) => block_on(commands::publish::verify(a)),
        cli::Command::Backfill(a) => block_on(commands::backfill::run(a)),
        #[cfg(feature = "kafka")]
        cli::Command::Kafka(a) => block_on(commands::kafka::run(a)),
        cli::Command::Jetstream(a) => block_on(commands::jetstream::run(a)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skystream: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    f: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)?
        .block_on(f)
}
