//! One module per subcommand.

pub mod backfill;
pub mod convert;
pub mod init;
pub mod inspect;
pub mod jetstream;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod migrate;
pub mod publish;
pub mod record;
pub mod serve;

use std::path::Path;

use skystream_capture::{CaptureErrorKind, CaptureReader};

/// Opens a capture file; the error names the file and says what was expected.
pub fn open_capture(path: &Path) -> anyhow::Result<CaptureReader<std::fs::File>> {
    CaptureReader::open(path).map_err(|e| match e.kind() {
        // I/O errors already name the file.
        CaptureErrorKind::Io => anyhow::anyhow!("{e}"),
        _ => anyhow::anyhow!("{}: {e}", path.display()),
    })
}
