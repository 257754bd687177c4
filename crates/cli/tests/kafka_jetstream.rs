//! `kafka:` into `skystream jetstream`, killed with SIGKILL at random points: the replay log
//! ends up holding every message of the topic exactly once.
//!
//! The Kafka source numbers events locally (from the pipeline's saved cursor), while reading
//! resumes from the group's committed offsets, which move with every acknowledged batch and so
//! run ahead of the cursor saved about once a second. The log therefore goes by each message's
//! (partition, offset), stored with the events in one transaction; this test is where that
//! promise meets a real broker (tansu) and a real crash.

#![cfg(feature = "kafka")]

#[path = "../../kafka/tests/common/mod.rs"]
mod kafka_common;

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, XorShift};

use kafka_common::Broker;

/// Messages in the topic: enough that every kill lands while the log is still filling.
const MESSAGES: usize = 100_000;
/// SIGKILLs before the last, uninterrupted run.
const KILLS: usize = 20;
/// Accounts the posts are spread over (the sink keys messages by DID, so all partitions fill).
const ACCOUNTS: usize = 97;

fn did(i: usize) -> String {
    format!("did:plc:{:0>24}", format!("kafkajs{}", i % ACCOUNTS))
}

fn rkey(i: usize) -> String {
    format!("3kaf{i:09}")
}

/// Jetstream lines, one post each, with increasing times.
fn write_input(path: &Path) {
    let mut out = String::with_capacity(MESSAGES * 400);
    for i in 0..MESSAGES {
        let line = serde_json::json!({
            "did": did(i),
            "time_us": 1_780_000_000_000_000u64 + i as u64,
            "kind": "commit",
            "commit": {
                "rev": "3mptbypcq372f",
                "operation": "create",
                "collection": "app.bsky.feed.post",
                "rkey": rkey(i),
                "record": {
                    "$type": "app.bsky.feed.post",
                    "createdAt": "2026-07-04T14:38:06.240Z",
                    "langs": ["en"],
                    "text": format!("post number {i}")
                },
                "cid": "bafyreiapzyf65cmq55jklpnrihiygze2jmmdqvvkwqeiomd72pbp2iazuu"
            }
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    std::fs::write(path, out).expect("write the input");
}

fn skystream(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_skystream"));
    c.args(args)
        .env_remove("SKYSTREAM_SOURCE")
        .env_remove("SKYSTREAM_DATABASE")
        .env("SKYSTREAM_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    c
}

fn start_jetstream(source: &str, data: &Path, log: &Path) -> Child {
    let mut c = skystream(&[
        "jetstream",
        "--source",
        source,
        "--data-dir",
        data.to_str().expect("path"),
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--no-console",
        // A wide gap between the group's offsets (committed every 500 ms) and the pipeline's
        // saved cursor: where a crash used to lose events.
        "--cursor-save-interval",
        "3s",
    ]);
    c.env(
        "SKYSTREAM_LOG",
        "warn,skystream_jetstream=debug,skystream_kafka=debug",
    )
    .stderr(std::fs::File::create(log).expect("log"));
    c.spawn().expect("spawn skystream jetstream")
}

/// The (did, rkey) of every event in the log, with how many times each is there.
fn log_contents(data: &Path) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    let Some(conn) = open_log(data) else {
        return out;
    };
    let mut stmt = conn.prepare("SELECT json FROM events").expect("prepare");
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query");
    for json in rows {
        let e: serde_json::Value = serde_json::from_str(&json.expect("row")).expect("json");
        let key = (
            e["did"].as_str().unwrap_or_default().to_owned(),
            e["commit"]["rkey"].as_str().unwrap_or_default().to_owned(),
        );
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

fn log_len(data: &Path) -> usize {
    open_log(data)
        .and_then(|c| {
            c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
                .ok()
        })
        .unwrap_or(0) as usize
}

fn open_log(data: &Path) -> Option<rusqlite::Connection> {
    let path = data.join("jetstream.sqlite");
    if !path.exists() {
        return None;
    }
    let c = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    c.busy_timeout(Duration::from_secs(5)).ok()?;
    Some(c)
}

fn kill_9(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[test]
#[ignore = "needs tansu (SKYSTREAM_TANSU; bash .ci/kafka installs it)"]
fn kill_dash_nine_at_random_points_loses_nothing_and_appends_nothing_twice() {
    let broker = Broker::start();
    broker.create_topic("posts");
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("posts.jsonl");
    write_input(&input);

    // The ingester: the file into the topic, to its end.
    let started = Instant::now();
    let status = skystream(&[
        "kafka",
        "--source",
        &format!("file:{}", input.display()),
        "--database",
        dir.path().join("ingester.db").to_str().expect("path"),
        "--kafka-bootstrap-servers",
        &broker.bootstrap(),
        "--kafka-topic",
        "posts",
        "--collections",
        "post",
    ])
    .status()
    .expect("skystream kafka runs");
    assert!(status.success(), "skystream kafka: {status}");
    eprintln!(
        "{MESSAGES} messages produced in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // A killed member stays in the group until its session times out, and the group waits for
    // it before handing its partitions on: keep that short so each restart reads soon.
    let source = format!(
        "kafka:{}/posts?group=jetstream&session.timeout.ms=3000&heartbeat.interval.ms=300",
        broker.bootstrap()
    );
    let data = dir.path().join("jetstream");
    let mut rng = XorShift::from_env("SKYSTREAM_KILL_SEED", 0x5eed_cafe_u64);
    let mut mid_read = 0;
    // Each run's log (debug for the replay log and the Kafka source), kept with the scratch
    // directory when the test fails.
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs");
    for round in 0..KILLS {
        let before = log_len(&data);
        let mut child = start_jetstream(&source, &data, &logs.join(format!("round-{round}.log")));
        // Wait until this run has appended something (it joined the group and reads), then
        // kill it at a random point of its reading.
        let deadline = Instant::now() + Duration::from_secs(60);
        while log_len(&data) == before && before < MESSAGES && Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("wait") {
                panic!("skystream jetstream exited by itself in round {round}: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rng.below(500)));
        let at = log_len(&data);
        kill_9(&mut child);
        if at < MESSAGES {
            mid_read += 1;
        }
        eprintln!("round {round}: killed with {at} events in the log");
    }

    // The last run reads to the end of the topic.
    let mut child = start_jetstream(&source, &data, &logs.join("last.log"));
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut last = (log_len(&data), Instant::now());
    loop {
        let n = log_len(&data);
        if n != last.0 {
            last = (n, Instant::now());
        }
        // Done once it has everything and nothing more arrives for a while (a repeat would).
        if n >= MESSAGES && last.1.elapsed() > Duration::from_secs(3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the log never filled: {n} of {MESSAGES}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    kill_9(&mut child);

    let got = log_contents(&data);
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(5).collect();
    let missing: Vec<_> = (0..MESSAGES)
        .map(|i| (did(i), rkey(i)))
        .filter(|k| !got.contains_key(k))
        .take(5)
        .collect();
    let total: usize = got.values().sum();
    eprintln!(
        "{KILLS} kills, {mid_read} while reading; the log holds {total} events, {} distinct",
        got.len()
    );
    if !(twice.is_empty() && missing.is_empty() && total == MESSAGES) {
        let kept = dir.keep();
        eprintln!("logs and the replay log kept in {}", kept.display());
    }
    assert!(
        twice.is_empty() && missing.is_empty() && total == MESSAGES,
        "the log must hold every message once: {total} events; twice e.g. {twice:?}; \
         missing e.g. {missing:?}"
    );
    assert!(
        mid_read >= KILLS / 2,
        "too few kills landed while the log was filling ({mid_read} of {KILLS}): make the \
         input larger"
    );
}
