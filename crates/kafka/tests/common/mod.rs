//! What the broker tests, the indexer test and the benchmark share: the tansu broker on a free
//! loopback port, and the shared relay corpus. The binary comes from `SKYSTREAM_TANSU`, else
//! `~/.cargo/bin/tansu`, else `PATH` (`.ci/kafka` installs it).

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skystream_capture::CaptureReader;
use skystream_event::{Event, FrameOptions};

/// Partitions of the topics the tests create.
pub const PARTITIONS: i32 = 3;

/// The shared relay corpus, decoded.
pub fn corpus() -> Vec<Event> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/relay-corpus/frames.bin.zst");
    let mut r = CaptureReader::open(&path).expect("the shared relay corpus");
    let format = r.format();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().expect("record") {
        if let Some(e) =
            skystream_source::decode_capture_record(format, rec.data(), &FrameOptions::default())
                .expect("decodes")
        {
            out.push(e);
        }
    }
    assert_eq!(out.len(), 150, "the corpus has 150 events (manifest)");
    out
}

/// The tansu binary, if there is one.
pub fn tansu_bin() -> Option<PathBuf> {
    std::env::var_os("SKYSTREAM_TANSU")
        .map(PathBuf::from)
        .or_else(|| {
            let p = PathBuf::from(std::env::var_os("HOME")?).join(".cargo/bin/tansu");
            p.exists().then_some(p)
        })
        .or_else(|| {
            Command::new("tansu")
                .arg("--version")
                .output()
                .ok()
                .map(|_| PathBuf::from("tansu"))
        })
}

/// A tansu broker with in-memory storage, killed on drop.
pub struct Broker {
    child: Child,
    port: u16,
    bin: PathBuf,
}

impl Broker {
    /// Starts tansu. A missing tansu fails the test: only tests marked `#[ignore = "needs
    /// tansu …"]` call this, and they run only when asked for (`-- --include-ignored`).
    pub fn start() -> Broker {
        let Some(bin) = tansu_bin() else {
            panic!(
                "this test needs tansu, which is not installed: run bash .ci/kafka (or cargo \
                 install tansu --locked --features dynostore) or set SKYSTREAM_TANSU"
            );
        };
        Broker::start_with(bin)
    }

    /// Starts `bin` on a free loopback port and waits until it listens.
    pub fn start_with(bin: PathBuf) -> Broker {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("addr")
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("tansu-{port}.log"));
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("tansu starts");
        let broker = Broker { child, port, bin };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {port}; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Creates `name` with [`PARTITIONS`] partitions.
    pub fn create_topic(&self, name: &str) {
        let out = Command::new(&self.bin)
            .args([
                "topic",
                "create",
                name,
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
                "--partitions",
                &PARTITIONS.to_string(),
            ])
            .output()
            .expect("tansu topic create runs");
        assert!(
            out.status.success(),
            "tansu topic create {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Sends a signal (`-STOP`, `-CONT`) to the broker.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill {sig}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // A frozen broker must be thawed to be killed cleanly.
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
