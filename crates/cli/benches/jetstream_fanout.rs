//! Jetstream server fan-out: `skystream jetstream` replays a `file:` capture of simulated relay
//! traffic paced at 2,000 events/s, and 500 subscribers count what they receive: 25 unfiltered,
//! 225 on one collection (`app.bsky.feed.like`), 250 on 100 `wantedDids` each; half of each
//! group compressed; per-IP limits off. Reports the server process's CPU (from /proc, after a
//! warm-up) and memory (resident now and peak). Target: under one core and under 300 MB.
//!
//! `cargo bench -p skystream --bench jetstream_fanout [-- --quick]` (60 s measured; 15 s quick).
//! The subscribers run in this process on the same two cores, so the server's figure is its own
//! but the machine is shared.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use skystream_capture::{CaptureFormat, CaptureWriter, Compression};
use skystream_simulate::{SimConfig, Simulator};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const DICT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/zstd/jetstream-v1.zdict"
);
const RATE: u64 = 2_000;
const WARMUP: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Counts {
    clients: AtomicU64,
    messages: AtomicU64,
    bytes: AtomicU64,
    connected: AtomicU64,
}

impl Counts {
    fn snapshot(&self) -> (u64, u64) {
        (
            self.messages.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

fn proc_kib(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(key))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(0.0)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // The fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Writes `frames` simulated relay frames spaced 1/RATE s apart; returns the accounts' DIDs.
fn capture(path: &std::path::Path, frames: u64) -> Vec<String> {
    let mut sim = Simulator::new(SimConfig {
        seed: 42,
        ..SimConfig::default()
    });
    let mut w = CaptureWriter::create(path, CaptureFormat::RelayFrames, Compression::None)
        .expect("create capture");
    let start = skystream_simulate::DEFAULT_START_TIME_US;
    for i in 0..frames {
        let f = sim.next_frame(start + (i * 1_000_000 / RATE) as i64);
        w.write_frame(&f.bytes).expect("write frame");
    }
    w.finish().expect("finish capture");
    sim.dids().map(str::to_owned).collect()
}

fn start_server(cap: &std::path::Path, data: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args([
            "jetstream",
            "--source",
            &format!("file:{}", cap.display()),
            "--pace",
            "realtime",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data.to_str().expect("path"),
            "--dictionary",
            DICT,
            "--max-connections-per-ip",
            "0",
            "--max-events-per-ip",
            "0",
            "--log",
            "warn",
        ])
        .env_remove("SKYSTREAM_SOURCE")
        .env_remove("SKYSTREAM_DATABASE")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start skystream jetstream")
}

async fn subscriber(url: String, compressed: bool, counts: Arc<Counts>) {
    let mut req = url.into_client_request().expect("request");
    if compressed {
        req.headers_mut()
            .insert("socket-encoding", "zstd".parse().expect("header"));
    }
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(req).await else {
        eprintln!("a subscriber could not connect");
        return;
    };
    counts.connected.fetch_add(1, Ordering::Relaxed);
    while let Some(Ok(m)) = ws.next().await {
        let len = match &m {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => continue,
        };
        counts.messages.fetch_add(1, Ordering::Relaxed);
        counts.bytes.fetch_add(len as u64, Ordering::Relaxed);
    }
}

struct Group {
    name: &'static str,
    json: Arc<Counts>,
    zstd: Arc<Counts>,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let measured = Duration::from_secs(if quick { 15 } else { 60 });
    let dir = std::env::temp_dir().join(format!("skystream-fanout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let cap = dir.join("capture.bin");
    let frames = (WARMUP + measured + Duration::from_secs(10)).as_secs() * RATE;
    let t = Instant::now();
    let dids = capture(&cap, frames);
    println!(
        "capture: {frames} simulated relay frames ({} accounts) in {:.1}s",
        dids.len(),
        t.elapsed().as_secs_f64()
    );

    let port = free_port();
    let mut server = start_server(&cap, &dir.join("data"), port);
    let pid = server.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let groups: Vec<Group> = ["unfiltered", "one collection", "100 DIDs"]
        .into_iter()
        .map(|name| Group {
            name,
            json: Arc::new(Counts::default()),
            zstd: Arc::new(Counts::default()),
        })
        .collect();
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let base = format!("ws://127.0.0.1:{port}/subscribe");
        let mut n = 0usize;
        for (group, size) in [(0usize, 25usize), (1, 225), (2, 250)] {
            for i in 0..size {
                let url = match group {
                    0 => base.clone(),
                    1 => format!("{base}?wantedCollections=app.bsky.feed.like"),
                    _ => {
                        let q: Vec<String> = (0..100)
                            .map(|k| format!("wantedDids={}", dids[(n * 7 + k * 5) % dids.len()]))
                            .collect();
                        format!("{base}?{}", q.join("&"))
                    }
                };
                n += 1;
                let compressed = i % 2 == 1;
                let g = &groups[group];
                let counts = if compressed { &g.zstd } else { &g.json };
                counts.clients.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(subscriber(url, compressed, counts.clone()));
            }
        }
        tokio::time::sleep(WARMUP).await;
        let connected: u64 = groups
            .iter()
            .map(|g| g.json.connected.load(Ordering::Relaxed) + g.zstd.connected.load(Ordering::Relaxed))
            .sum();
        let before: Vec<_> = groups
            .iter()
            .map(|g| (g.json.snapshot(), g.zstd.snapshot()))
            .collect();
        let (ticks0, t0) = (cpu_ticks(pid), Instant::now());
        tokio::time::sleep(measured).await;
        let (ticks1, secs) = (cpu_ticks(pid), t0.elapsed().as_secs_f64());
        let cores = (ticks1 - ticks0) as f64 / clock_ticks_per_sec() / secs;
        let rss = proc_kib(pid, "VmRSS:") / 1024.0;
        let hwm = proc_kib(pid, "VmHWM:") / 1024.0;
        println!(
            "subscribers connected: {connected} of 500; measured {secs:.0}s after a {}s warm-up",
            WARMUP.as_secs()
        );
        println!(
            "{:<16} {:>8} {:>15} {:>10} {:>15} {:>10}",
            "group", "clients", "json msg/s/sub", "json MB/s", "zstd msg/s/sub", "zstd MB/s"
        );
        for (g, (bj, bz)) in groups.iter().zip(&before) {
            let (jm, jb) = g.json.snapshot();
            let (zm, zb) = g.zstd.snapshot();
            let jc = g.json.clients.load(Ordering::Relaxed).max(1) as f64;
            let zc = g.zstd.clients.load(Ordering::Relaxed).max(1) as f64;
            println!(
                "{:<16} {:>8} {:>15.1} {:>10.2} {:>15.1} {:>10.2}",
                g.name,
                (jc + zc) as u64,
                (jm - bj.0) as f64 / jc / secs,
                (jb - bj.1) as f64 / secs / 1e6,
                (zm - bz.0) as f64 / zc / secs,
                (zb - bz.1) as f64 / secs / 1e6,
            );
        }
        println!(
            "server: {cores:.2} cores (target < 1), resident {rss:.0} MiB, peak {hwm:.0} MiB (target < 300 MB)"
        );
    });
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
