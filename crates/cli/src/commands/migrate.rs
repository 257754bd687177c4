//! `skystream migrate`: bring the database schema up to date and exit.

use std::process::ExitCode;

use anyhow::Context as _;
use skystream_store::Store;

use crate::cli::MigrateArgs;

pub async fn run(args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let report = Store::migrate_only(&args.database)
        .await
        .with_context(|| format!("cannot migrate the database {}", args.database))?;
    if report.is_noop() {
        println!(
            "{}: schema already at version {}",
            args.database, report.to_version
        );
    } else {
        println!(
            "{}: migrated from version {} to {} (applied {:?})",
            args.database, report.from_version, report.to_version, report.applied
        );
    }
    Ok(ExitCode::SUCCESS)
}
