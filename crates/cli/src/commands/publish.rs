//! `skystream publish`, `unpublish` and `verify`: the feed records in the publisher's
//! repository, and a check that they, the DID document and describeFeedGenerator agree.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{json, Value};
use skystream_feeds::{Config, Feed};
use skystream_pds::PdsClient;

use crate::cli::{PublishArgs, VerifyArgs};

const GENERATOR: &str = "app.bsky.feed.generator";
/// The lexicon's limit for a feed avatar.
const MAX_AVATAR: u64 = 1_000_000;

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn service_did(config: &Config, hostname: Option<&str>) -> anyhow::Result<String> {
    let mut service = config.service.clone();
    if let Some(h) = hostname {
        service.hostname = Some(h.to_owned());
    }
    service
        .did()
        .context("set [service] hostname (or service_did) in the config, or pass --hostname")
}

fn selected<'c>(config: &'c Config, only: Option<&str>) -> anyhow::Result<Vec<&'c Feed>> {
    match only {
        Some(id) => Ok(vec![config
            .feed(id)
            .with_context(|| format!("no feed {id:?} in the config"))?]),
        None => Ok(config.feeds.iter().collect()),
    }
}

fn now_rfc3339() -> String {
    let us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    skystream_syntax::rfc3339_millis(us)
}

pub async fn publish(args: &PublishArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config)?;
    let did = service_did(&config, args.hostname.as_deref())?;
    let feeds = selected(&config, args.feed.as_deref())?;
    let pds = PdsClient::new(&args.pds)?;
    let session = pds.create_session(&args.handle, &args.app_password).await?;
    for feed in feeds {
        let c = feed.config();
        let mut record = json!({
            "$type": GENERATOR,
            "did": did,
            "displayName": c.display_name,
            "acceptsInteractions": c.accepts_interactions,
            "contentMode": c.content_mode.token(),
            "createdAt": now_rfc3339(),
        });
        if let Some(d) = &c.description {
            record["description"] = Value::String(d.clone());
        }
        if let Some(path) = &c.avatar {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read the avatar {}", path.display()))?;
            if bytes.len() as u64 > MAX_AVATAR {
                anyhow::bail!("the avatar {} is larger than 1 MB", path.display());
            }
            let mime = if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("png"))
            {
                "image/png"
            } else {
                "image/jpeg"
            };
            record["avatar"] = pds.upload_blob(&session, bytes, mime).await?;
        }
        let uri = pds
            .put_record(&session, GENERATOR, feed.id(), record)
            .await?;
        println!("published {uri}");
    }
    if config.service.publisher_did.as_deref() != Some(session.did.as_str()) {
        record_publisher(&args.config, &session.did)?;
        println!(
            "set publisher_did = \"{}\" under [service] in {}",
            session.did,
            args.config.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `publisher_did` under `[service]` in the config file, keeping the rest of the file
/// (comments, order, formatting) as the user wrote it; the running server picks it up on reload.
fn record_publisher(path: &std::path::Path, did: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("cannot edit {}", path.display()))?;
    let service = doc
        .entry("service")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .context("[service] in the config is not a table")?;
    service.insert("publisher_did", toml_edit::value(did));
    // Written beside and renamed over, so a crash never leaves half a config.
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, doc.to_string())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

pub async fn unpublish(args: &PublishArgs) -> anyhow::Result<ExitCode> {
    let id = args
        .feed
        .as_deref()
        .context("unpublish needs --feed ID (it removes one record only)")?;
    let pds = PdsClient::new(&args.pds)?;
    let session = pds.create_session(&args.handle, &args.app_password).await?;
    pds.delete_record(&session, GENERATOR, id).await?;
    println!("unpublished at://{}/{GENERATOR}/{id}", session.did);
    Ok(ExitCode::SUCCESS)
}

pub async fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args.config)?;
    let did = service_did(&config, args.hostname.as_deref())?;
    let publisher = config
        .service
        .publisher_did
        .clone()
        .context("set publisher_did under [service] (publish prints it)")?;
    let host = args
        .hostname
        .clone()
        .or_else(|| config.service.hostname.clone())
        .unwrap_or_default();
    let base = args
        .service_url
        .clone()
        .unwrap_or_else(|| format!("https://{host}"));
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()?;
    let mut problems = Vec::new();

    if did.starts_with("did:web:") {
        match http
            .get(format!("{base}/.well-known/did.json"))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                let doc: Value = r.json().await.unwrap_or(Value::Null);
                if doc["id"] != did.as_str() {
                    problems.push(format!("did.json names {} instead of {did}", doc["id"]));
                }
            }
            Ok(r) => problems.push(format!("did.json answered HTTP {}", r.status())),
            Err(e) => problems.push(format!("did.json is not reachable: {e}")),
        }
    }
    let described: Vec<String> = match http
        .get(format!("{base}/xrpc/app.bsky.feed.describeFeedGenerator"))
        .send()
        .await
    {
        Ok(r) => {
            let v: Value = r.json().await.unwrap_or(Value::Null);
            if v["did"] != did.as_str() {
                problems.push(format!(
                    "describeFeedGenerator names {} instead of {did}",
                    v["did"]
                ));
            }
            v["feeds"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f["uri"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        }
        Err(e) => {
            problems.push(format!("describeFeedGenerator is not reachable: {e}"));
            Vec::new()
        }
    };
    let pds = PdsClient::new(&args.pds)?;
    for feed in &config.feeds {
        let uri = format!("at://{publisher}/{GENERATOR}/{}", feed.id());
        match pds.get_record(&publisher, GENERATOR, feed.id()).await? {
            None => problems.push(format!("{uri}: no record (run skystream publish)")),
            Some(r) if r["did"] != did.as_str() => problems.push(format!(
                "{uri}: the record points at {} instead of {did}",
                r["did"]
            )),
            Some(_) => {}
        }
        if !described.contains(&uri) {
            problems.push(format!("{uri}: not listed by describeFeedGenerator"));
        }
    }
    if problems.is_empty() {
        println!(
            "ok: {} feeds published and served by {did}",
            config.feeds.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            println!("problem: {p}");
        }
        Ok(ExitCode::from(1))
    }
}
