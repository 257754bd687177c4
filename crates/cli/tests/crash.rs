//! `kill -9` at random moments while `skystream record` ingests from a replaying relay: after
//! every crash the saved cursor must not be ahead of what is on disk, and after the last
//! restart every event is in the capture.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use skystream_simulate::{SimConfig, Simulator};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::Message;

const TOTAL: usize = 3000;

/// A relay that replays `seq > cursor` from a fixed log at about 3,000 frames/s, then idles.
async fn replay_server(frames: Arc<Vec<Vec<u8>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let frames = frames.clone();
            tokio::spawn(async move {
                let cursor = Arc::new(std::sync::Mutex::new(0usize));
                let c2 = cursor.clone();
                #[allow(clippy::result_large_err)]
                let cb = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                    let c = req
                        .uri()
                        .query()
                        .and_then(|q| {
                            q.split('&')
                                .find_map(|kv| kv.strip_prefix("cursor=")?.parse().ok())
                        })
                        .unwrap_or(0);
                    *c2.lock().expect("lock") = c;
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, cb).await else {
                    return;
                };
                let from = *cursor.lock().expect("lock");
                for (i, f) in frames.iter().enumerate().skip(from) {
                    if ws.send(Message::Binary(f.clone().into())).await.is_err() {
                        return;
                    }
                    if i % 30 == 0 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
        }
    });
    format!("ws://{addr}")
}

fn record(url: &str, out: &Path, db: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args(["record", "--source", &format!("relay:{url}")])
        .arg("--out")
        .arg(out)
        .arg("--database")
        .arg(db)
        .args(["--cursor-save-interval", "50ms", "--idle-timeout", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn skystream record")
}

/// The seqs in the capture (a torn last record is ignored, as `record` will cut it).
fn seqs_on_disk(out: &Path) -> (BTreeSet<i64>, usize) {
    let mut seqs = BTreeSet::new();
    let mut n = 0;
    let Ok(mut r) = skystream_capture::CaptureReader::open(out) else {
        return (seqs, 0);
    };
    while let Ok(Some(rec)) = r.next_record() {
        if let Ok(f) = skystream_firehose::decode_frame(rec.data()) {
            if let Some(s) = f.seq() {
                seqs.insert(s);
            }
        }
        n += 1;
    }
    (seqs, n)
}

fn saved_cursor(db: &Path, key: &str) -> Option<u64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        use skystream_store::CursorStore;
        let store = skystream_store::Store::open(db.to_str().expect("path"))
            .await
            .expect("open");
        store.load_cursor(key).await.expect("load")
    })
}

#[test]
fn kill_dash_nine_never_loses_events_or_runs_the_cursor_ahead() {
    let mut sim = Simulator::new(SimConfig {
        seed: 42,
        accounts: 50,
        ..SimConfig::default()
    });
    let frames: Vec<Vec<u8>> = (0..TOTAL)
        .map(|_| sim.next_frame(1_800_000_000_000_000).bytes)
        .collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = rt.block_on(replay_server(Arc::new(frames)));
    let key = format!("relay:{url}/xrpc/com.atproto.sync.subscribeRepos");

    let dir = std::env::temp_dir().join(format!("skystream-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (out, db) = (dir.join("capture.bin"), dir.join("state.db"));

    // Kill at pseudo-random moments (fixed seed, so a failure reproduces).
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut kills = 0;
    let mut progress = Vec::new();
    for _ in 0..5 {
        let mut child = record(&url, &out, &db);
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        std::thread::sleep(Duration::from_millis(150 + state % 350));
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        kills += 1;
        let (seqs, _) = seqs_on_disk(&out);
        let saved = saved_cursor(&db, &key);
        eprintln!(
            "kill {kills}: {} events on disk, saved cursor {saved:?}",
            seqs.len()
        );
        progress.push(saved.unwrap_or(0));
        if let Some(cursor) = saved {
            let missing: Vec<i64> = (1..=cursor as i64).filter(|s| !seqs.contains(s)).collect();
            assert!(
                missing.is_empty(),
                "after kill {kills}: cursor {cursor} saved but seqs {missing:?} are not on disk"
            );
        }
    }

    // The kills must have landed mid-stream, or this test proves nothing.
    assert!(
        progress.iter().any(|&c| c > 0 && (c as usize) < TOTAL),
        "no kill interrupted the stream: {progress:?}"
    );

    // A last run to completion, stopped politely.
    let mut child = record(&url, &out, &db);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (seqs, _) = seqs_on_disk(&out);
        if seqs.len() >= TOTAL {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {TOTAL} events recorded",
            seqs.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped = Instant::now();
    // SIGTERM: drain, save the cursor, exit 0.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(stopped.elapsed() < Duration::from_secs(10));

    let (seqs, records) = seqs_on_disk(&out);
    assert_eq!(
        seqs,
        (1..=TOTAL as i64).collect::<BTreeSet<_>>(),
        "no event lost across {kills} crashes"
    );
    assert!(records >= TOTAL);
    assert_eq!(saved_cursor(&db, &key), Some(TOTAL as u64));
    let _ = std::fs::remove_dir_all(&dir);
}
