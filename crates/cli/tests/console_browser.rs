//! The web console in a real browser: `skystream serve --source simulate:2000` with an
//! in-memory database, and `peers/browser/check.mjs` driving Debian's Chromium through npm's
//! `playwright-core` (both installed by `.ci/browser`). The script checks that the status
//! charts draw with data, the preview shows items with reasons, a draft filter changes the
//! list, hostile post texts stay inert text, and nothing is fetched from elsewhere; it writes a
//! screenshot of each page under the target directory, whose paths this test prints.
//!
//! Chromium is `SKYSTREAM_CHROMIUM` (default `/usr/bin/chromium`), playwright-core is found in
//! `SKYSTREAM_BROWSER_PEER` (default `~/.cache/skystream/peers/browser`), node is on the PATH.
//! Without them the test is skipped with a message, except under `CI=true`, where it fails.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

#[test]
fn console_works_in_a_real_browser() {
    let tools = match tools() {
        Ok(t) => t,
        Err(why) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("the browser test cannot run: {why}");
            }
            eprintln!("skipped: {why}");
            return;
        }
    };
    let out = target_dir().join("console-screenshots");
    std::fs::create_dir_all(&out).expect("screenshot directory");
    let log_path = out.join("serve.log");
    let cwd = scratch("browser");

    let (server, port) = start_server(&cwd, &log_path, &[]);
    let listen = format!("127.0.0.1:{port}");
    wait_for(port, "/", &log_path);

    // The script runs from the install so its import of playwright-core resolves.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../peers/browser/check.mjs");
    let run = tools.peer.join(format!("check-{}.mjs", std::process::id()));
    std::fs::copy(&script, &run).expect("copy check.mjs beside the install");
    let base = format!("http://{listen}/");
    let output = Command::new("node")
        .arg(&run)
        .arg(&base)
        .arg(&out)
        .env("CHROMIUM", &tools.chromium)
        .current_dir(&tools.peer)
        .output()
        .expect("run node");
    let _ = std::fs::remove_file(&run);
    drop(server);
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
        "the browser check failed:\n{stderr}\nserver log: {}",
        log_path.display()
    );
    let _ = std::fs::remove_dir_all(&cwd);
}
