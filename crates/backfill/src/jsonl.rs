//! `--out FILE`: what a backfill read, as Jetstream JSON lines (a capture `file:` replays), so a
//! history export needs no database.

use std::io::Write as _;
use std::path::Path;

use async_trait::async_trait;
use skystream_event::jetstream::write_event;
use skystream_pipeline::{Batch, Consumer, ConsumerError};

/// A consumer appending each batch's events to a file as Jetstream lines, flushed and synced
/// before the batch counts as handled.
pub struct JsonlOut {
    file: std::fs::File,
    buf: String,
}

impl JsonlOut {
    /// Appends to `path` (created if missing): a resumed backfill adds to what is there.
    pub fn open(path: &Path) -> std::io::Result<JsonlOut> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(JsonlOut {
            file,
            buf: String::new(),
        })
    }
}

#[async_trait]
impl Consumer for JsonlOut {
    fn name(&self) -> &str {
        "jsonl-out"
    }

    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        self.buf.clear();
        for env in &batch.items {
            let t = env.event.time_us;
            write_event(&env.event, &mut || t, &mut self.buf);
        }
        let mut file = self.file.try_clone()?;
        let buf = std::mem::take(&mut self.buf);
        // Disk writes and fsync off the async threads.
        self.buf = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            file.write_all(buf.as_bytes())?;
            file.sync_data()?;
            Ok(buf)
        })
        .await??;
        Ok(())
    }
}
