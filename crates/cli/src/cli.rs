//! Command-line flags. Every flag can also be set through a `SKYSTREAM_*` environment
//! variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// skystream: the AT Protocol firehose, turned into the things people run on it.
#[derive(Debug, Parser)]
#[command(name = "skystream", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Summarise a capture file: frames by type, operations, collections, decode errors and,
    /// with --verify, signature and prevData checks.
    Inspect(InspectArgs),
    /// Convert a capture file to another format (Jetstream v1 JSON lines on stdout).
    Convert(ConvertArgs),
}

/// `skystream inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The capture file: relay frames or Jetstream JSON lines, optionally zstd-compressed.
    #[arg(env = "SKYSTREAM_INSPECT_FILE")]
    pub file: PathBuf,
    /// Verify every commit: block CIDs, the signature against the author's DID document, and
    /// the inversion of its operations to prevData.
    #[arg(long, env = "SKYSTREAM_VERIFY", requires = "did_docs")]
    pub verify: bool,
    /// A JSON object mapping each DID to its DID document, used by --verify.
    #[arg(long, env = "SKYSTREAM_DID_DOCS", value_name = "FILE")]
    pub did_docs: Option<PathBuf>,
    /// Print the report as JSON instead of text.
    #[arg(long, env = "SKYSTREAM_JSON")]
    pub json: bool,
}

/// Output formats for `convert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConvertTo {
    /// Jetstream v1 JSON lines.
    Jetstream,
}

/// `skystream convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The capture file: relay frames or Jetstream JSON lines, optionally zstd-compressed.
    #[arg(env = "SKYSTREAM_CONVERT_FILE")]
    pub file: PathBuf,
    /// The output format.
    #[arg(
        long,
        env = "SKYSTREAM_CONVERT_TO",
        value_enum,
        default_value = "jetstream"
    )]
    pub to: ConvertTo,
}
