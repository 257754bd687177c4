//! One module per subcommand.

pub mod convert;
pub mod inspect;

use std::path::Path;

use anyhow::Context as _;
use skystream_capture::CaptureReader;

/// Opens a capture file with an error that says what to do.
pub fn open_capture(path: &Path) -> anyhow::Result<CaptureReader<std::fs::File>> {
    CaptureReader::open(path).with_context(|| {
        format!(
            "cannot read capture {}: give a file of relay frames ([u32 LE length][frame]…) or \
             Jetstream JSON lines, optionally zstd-compressed",
            path.display()
        )
    })
}
