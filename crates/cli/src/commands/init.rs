//! `skystream init`: writes a commented `skystream.toml` to start from.
//!
//! The file is the built-in example config (every key explained in its comments, Norsky's
//! Norwegian feeds) with the operator's answers filled in: the hostname, the publisher, the
//! source, the database and the feeds' requester auth. It is edited with `toml_edit`, so the
//! comments stay where they are, and parsed back with the same loader `serve` uses before it
//! is written: `init` never leaves a file that `serve` would refuse.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use skystream_feeds::Config;

use crate::cli::{AuthArg, InitArgs};
use crate::commands::serve::{EXAMPLE_CONFIG, PUBLIC_JETSTREAM};

/// The example's first line, replaced by one that says where this file came from.
const EXAMPLE_HEADER: &str =
    "# skystream feed generator: an example config. Copy it to skystream.toml and edit.";
const INIT_HEADER: &str = "# skystream feed generator config, written by `skystream init`. Edit it, then run `skystream serve`.";

pub fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    let text = render(args)?;
    let config = Config::from_toml_str(&text, &args.config.display().to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    write_new(&args.config, &text)?;
    print_next_steps(&args.config, &config);
    Ok(ExitCode::SUCCESS)
}

/// The config text: the example with the answers filled in.
fn render(args: &InitArgs) -> anyhow::Result<String> {
    let example = EXAMPLE_CONFIG
        .strip_prefix(EXAMPLE_HEADER)
        .context("the built-in example config lost its first line")?;
    let mut doc: toml_edit::DocumentMut = format!("{INIT_HEADER}{example}")
        .parse()
        .context("the built-in example config does not parse")?;

    let service = table(&mut doc, "service")?;
    service.insert("hostname", toml_edit::value(&args.hostname));
    if let Some(did) = &args.publisher_did {
        service.insert("publisher_did", toml_edit::value(did));
    }
    if let Some(listen) = &args.listen {
        service.insert("listen", toml_edit::value(listen.to_string()));
    }

    let ingest = table(&mut doc, "ingest")?;
    let source = args.source.as_deref().unwrap_or(PUBLIC_JETSTREAM);
    skystream_source::SourceSpec::parse(source)?;
    ingest.insert("source", toml_edit::value(source));
    ingest.insert("database", toml_edit::value(&args.database));

    let auth = match args.auth {
        AuthArg::Off => "off",
        AuthArg::Optional => "optional",
        AuthArg::Required => "required",
    };
    let feeds = doc
        .get_mut("feed")
        .and_then(|f| f.as_array_of_tables_mut())
        .context("the built-in example config has no [[feed]] tables")?;
    for feed in feeds.iter_mut() {
        feed.insert("auth", toml_edit::value(auth));
    }
    Ok(doc.to_string())
}

fn table<'a>(
    doc: &'a mut toml_edit::DocumentMut,
    name: &str,
) -> anyhow::Result<&'a mut toml_edit::Table> {
    doc.get_mut(name)
        .and_then(|t| t.as_table_mut())
        .with_context(|| format!("the built-in example config has no [{name}] table"))
}

/// Writes `text` to `path`, which must not exist yet: an existing config is never replaced.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => anyhow::bail!(
            "{} already exists; init never overwrites a config (move it away, or pass \
             --config OTHER.toml)",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn print_next_steps(path: &Path, config: &Config) {
    let ids: Vec<&str> = config.feeds.iter().map(|f| f.id()).collect();
    let did = config.service.did().unwrap_or_default();
    let flag = if path == Path::new("skystream.toml") {
        String::new()
    } else {
        format!(" --config {}", path.display())
    };
    println!(
        "wrote {}: {} feeds ({}) for {did}",
        path.display(),
        ids.len(),
        ids.join(", ")
    );
    println!();
    println!("next:");
    println!(
        "  skystream serve{flag}                  # ingest and serve on http://{}/",
        config.service.listen
    );
    println!(
        "  SKYSTREAM_APP_PASSWORD=… skystream publish{flag} --handle YOU.bsky.social   # write the feed records"
    );
    println!("  skystream verify{flag}                 # check the DID document, describeFeedGenerator and the records");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(auth: AuthArg) -> InitArgs {
        InitArgs {
            config: "skystream.toml".into(),
            hostname: "feeds.example.org".into(),
            publisher_did: Some("did:plc:ewvi7nxzyoun6zhxrhs64oiz".into()),
            source: None,
            database: "sqlite:feeds.db".into(),
            listen: None,
            auth,
        }
    }

    #[test]
    fn fills_in_the_answers_and_keeps_the_comments() {
        let text = render(&args(AuthArg::Optional)).expect("renders");
        assert!(text.starts_with(INIT_HEADER), "{text}");
        // The example's explanations are still there.
        assert!(text.contains("# Each [[feed]] is one feed."), "{text}");
        let c = Config::from_toml_str(&text, "skystream.toml").expect("parses");
        assert_eq!(c.service.hostname.as_deref(), Some("feeds.example.org"));
        assert_eq!(
            c.service.publisher_did.as_deref(),
            Some("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
        );
        assert_eq!(
            c.service.did().as_deref(),
            Some("did:web:feeds.example.org")
        );
        assert_eq!(c.ingest.database.as_deref(), Some("sqlite:feeds.db"));
        assert_eq!(c.ingest.source.as_deref(), Some(PUBLIC_JETSTREAM));
        assert_eq!(c.feeds.len(), 4);
        assert!(c
            .feeds
            .iter()
            .all(|f| f.config().auth == skystream_feeds::Auth::Optional));
    }

    #[test]
    fn a_bad_answer_is_refused_before_anything_is_written() {
        let mut a = args(AuthArg::Off);
        a.hostname = "not a host name".into();
        let text = render(&a).expect("renders");
        assert!(Config::from_toml_str(&text, "skystream.toml").is_err());
    }
}
