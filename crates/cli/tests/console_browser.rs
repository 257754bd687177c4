//! The web console in a real browser: `skystream serve --source simulate:2000` with an
//! in-memory database, and `skystream jetstream --source simulate:2000` with two subscribers
//! connected, and `peers/browser/check.mjs` driving Debian's Chromium through npm's
//! `playwright-core` (both installed by `.ci/browser`). For `serve` the script checks that the
//! status charts draw with data, the preview shows items with reasons, a draft filter changes
//! the list, hostile post texts stay inert text, and nothing is fetched from elsewhere; for
//! `jetstream` that the charts draw, there is no feed preview, and the Jetstream section shows
//! the subscribers by mode and the bytes sent to them. It writes a screenshot of each page
//! under the target directory, whose paths this test prints.
//!
//! Chromium is `SKYSTREAM_CHROMIUM` (default `/usr/bin/chromium`), playwright-core is found in
//! `SKYSTREAM_BROWSER_PEER` (default `~/.cache/skystream/peers/browser`), node is on the PATH.
//! The tests are ignored unless asked for (`-- --include-ignored`), and then a missing tool
//! fails them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::{self, stream::MaybeTlsStream};

/// Jetstream v1's zstd dictionary, so a subscriber can ask for compression.
const DICT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/zstd/jetstream-v1.zdict"
);

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the check needs, or why it cannot run.
struct Tools {
    chromium: PathBuf,
    peer: PathBuf,
}

fn tools() -> Result<Tools, String> {
    let chromium = std::env::var_os("SKYSTREAM_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let home = std::env::var("HOME").unwrap_or_default();
    let peer = std::env::var_os("SKYSTREAM_BROWSER_PEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(home).join(".cache/skystream/peers/browser"));
    if !chromium.is_file() {
        return Err(format!(
            "no Chromium at {} (apt-get install chromium, or run .ci/browser)",
            chromium.display()
        ));
    }
    if !peer.join("node_modules/playwright-core").is_dir() {
        return Err(format!(
            "playwright-core is not installed in {} (run .ci/browser)",
            peer.display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err("node is not on the PATH".to_owned()),
    }
    Ok(Tools { chromium, peer })
}

/// The target directory this test binary was built into (`<target>/debug/deps/<test>`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test's path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET `path` with a bare HTTP/1.1 request; the status code, if the server answered.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// An empty working directory: no skystream.toml is picked up, so the built-in example feeds
/// are served.
fn scratch(name: &str) -> PathBuf {
    let cwd = std::env::temp_dir().join(format!("skystream-console-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).expect("scratch directory");
    cwd
}

/// Starts `serve --source simulate:2000` on a free port with an in-memory database.
fn start_server(cwd: &Path, log_path: &Path, extra: &[&str]) -> (Server, u16) {
    let log = std::fs::File::create(log_path).expect("server log");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args(["serve", "--source", "simulate:2000"])
        .args(["--database", "sqlite::memory:", "--listen", &listen])
        .args(extra)
        .current_dir(cwd)
        .env_remove("SKYSTREAM_NO_CONSOLE")
        .env_remove("SKYSTREAM_CONFIG")
        .env_remove("SKYSTREAM_METRICS_LISTEN")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start skystream serve");
    (Server(child), port)
}

/// Waits until `path` answers 200.
fn wait_for(port: u16, path: &str, log_path: &Path) {
    let started = Instant::now();
    while http_status(port, path) != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{path} did not come up on port {port}; server log: {}",
            std::fs::read_to_string(log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn no_console_turns_it_off() {
    let cwd = scratch("off");
    let log_path = cwd.join("serve.log");
    let (server, port) = start_server(&cwd, &log_path, &["--no-console"]);
    wait_for(port, "/xrpc/app.bsky.feed.describeFeedGenerator", &log_path);
    assert_eq!(http_status(port, "/"), Some(404));
    assert_eq!(http_status(port, "/console/api/status"), Some(404));
    // The figures the console would read are still in /metrics.
    assert_eq!(http_status(port, "/metrics"), Some(200));
    drop(server);
    let _ = std::fs::remove_dir_all(&cwd);
}

/// What the browser check needs; a missing tool fails the test (it runs only when asked for).
fn tools_or_fail() -> Tools {
    tools().unwrap_or_else(|why| panic!("this test needs the browser tools: {why}"))
}

/// Runs `check.mjs` in `mode` against the server on `port`, writing screenshots to `out`;
/// prints their paths and panics with the script's reasons if it fails.
fn run_check(tools: &Tools, port: u16, out: &Path, mode: &str, log_path: &Path) {
    // The script runs from the install so its import of playwright-core resolves.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../peers/browser/check.mjs");
    let run = tools
        .peer
        .join(format!("check-{mode}-{}.mjs", std::process::id()));
    std::fs::copy(&script, &run).expect("copy check.mjs beside the install");
    let base = format!("http://127.0.0.1:{port}/");
    let output = Command::new("node")
        .arg(&run)
        .arg(&base)
        .arg(out)
        .arg(mode)
        .env("CHROMIUM", &tools.chromium)
        .current_dir(&tools.peer)
        .output()
        .expect("run node");
    let _ = std::fs::remove_file(&run);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Straight to stderr, past the test harness's capture: the screenshots' paths are the
    // point of a passing run too.
    let mut err = std::io::stderr();
    for line in stdout.lines() {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) if v["screenshot"].is_string() => {
                let _ = writeln!(
                    err,
                    "console screenshot: {}",
                    v["screenshot"].as_str().unwrap_or_default()
                );
            }
            _ => println!("{line}"),
        }
    }
    assert!(
        output.status.success() && stdout.contains("{\"ok\":true}"),
        "the browser check ({mode}) failed:\n{stderr}\nserver log: {}",
        log_path.display()
    );
}

#[test]
#[ignore = "needs Chromium and playwright-core (bash .ci/browser installs them)"]
fn console_works_in_a_real_browser() {
    let tools = tools_or_fail();
    let out = target_dir().join("console-screenshots");
    std::fs::create_dir_all(&out).expect("screenshot directory");
    let log_path = out.join("serve.log");
    let cwd = scratch("browser");

    let (server, port) = start_server(&cwd, &log_path, &[]);
    wait_for(port, "/", &log_path);
    run_check(&tools, port, &out, "serve", &log_path);
    drop(server);
    let _ = std::fs::remove_dir_all(&cwd);
}

/// Starts `jetstream --source simulate:2000` on a free port with its replay log in `cwd`.
fn start_jetstream(cwd: &Path, log_path: &Path, extra: &[&str]) -> (Server, u16) {
    let log = std::fs::File::create(log_path).expect("server log");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = cwd.join("jetstream-data");
    let child = Command::new(env!("CARGO_BIN_EXE_skystream"))
        .args([
            "jetstream",
            "--source",
            "simulate:2000",
            "--listen",
            &listen,
        ])
        .arg("--data-dir")
        .arg(&data)
        .args(["--dictionary", DICT])
        .args(extra)
        .current_dir(cwd)
        .env_remove("SKYSTREAM_NO_CONSOLE")
        .env_remove("SKYSTREAM_SOURCE")
        .env_remove("SKYSTREAM_DATABASE")
        .env_remove("SKYSTREAM_METRICS_LISTEN")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start skystream jetstream");
    (Server(child), port)
}

/// A Jetstream subscriber that keeps reading in a thread until dropped, so the server keeps
/// sending to it while the browser looks.
struct Subscriber {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Subscriber {
    fn connect(port: u16, query: &str) -> Subscriber {
        let url = format!("ws://127.0.0.1:{port}/subscribe?{query}");
        let (mut ws, _) = tungstenite::connect(url.as_str()).expect("connect a subscriber");
        if let MaybeTlsStream::Plain(s) = ws.get_mut() {
            // Wake up now and then to notice the stop flag.
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .expect("read timeout");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut messages = 0u64;
            while !flag.load(Ordering::Relaxed) {
                match ws.read() {
                    Ok(_) => messages += 1,
                    Err(tungstenite::Error::Io(e))
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            let _ = ws.close(None);
            messages
        });
        Subscriber {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops reading; how many messages arrived.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
#[ignore = "needs Chromium and playwright-core (bash .ci/browser installs them)"]
fn jetstream_console_works_in_a_real_browser() {
    let tools = tools_or_fail();
    let out = target_dir().join("console-screenshots");
    std::fs::create_dir_all(&out).expect("screenshot directory");
    let log_path = out.join("jetstream.log");
    let cwd = scratch("jetstream-browser");

    let (server, port) = start_jetstream(&cwd, &log_path, &[]);
    wait_for(port, "/", &log_path);
    // One compressed subscriber with a filter, one JSON subscriber taking everything: the
    // section must tell them apart.
    let zstd = Subscriber::connect(port, "compress=true&wantedCollections=app.bsky.feed.post");
    let json = Subscriber::connect(port, "");
    run_check(&tools, port, &out, "jetstream", &log_path);
    assert!(zstd.finish() > 0, "the compressed subscriber got events");
    assert!(json.finish() > 0, "the JSON subscriber got events");
    drop(server);
    let _ = std::fs::remove_dir_all(&cwd);
}

#[test]
fn jetstream_no_console_turns_it_off() {
    let cwd = scratch("jetstream-off");
    let log_path = cwd.join("jetstream.log");
    let (server, port) = start_jetstream(&cwd, &log_path, &["--no-console"]);
    wait_for(port, "/health", &log_path);
    assert_eq!(http_status(port, "/"), Some(404));
    assert_eq!(http_status(port, "/console/api/status"), Some(404));
    assert_eq!(http_status(port, "/metrics"), Some(200));
    drop(server);
    let _ = std::fs::remove_dir_all(&cwd);
}
