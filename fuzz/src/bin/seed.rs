//! Writes seed corpora for the fuzz targets from the repository's relay corpus
//! (`testdata/relay-corpus`): `seed TESTDATA_DIR OUT_DIR`.

use std::path::Path;

use skystream_capture::CaptureReader;
use skystream_firehose::{decode_frame, Frame};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (testdata, out) = (Path::new(&args[1]), Path::new(&args[2]));
    for t in ["frame", "car", "cbor", "capture", "jetstream_line"] {
        std::fs::create_dir_all(out.join(t)).expect("mkdir");
    }
    let corpus = testdata.join("relay-corpus");
    let mut r = CaptureReader::open(corpus.join("frames.bin.zst")).expect("corpus");
    let mut n = 0;
    while let Some(rec) = r.next_record().expect("record") {
        let data = rec.data();
        std::fs::write(out.join(format!("frame/{n}")), data).expect("write");
        if let Ok(Frame::Commit(c)) = decode_frame(data) {
            std::fs::write(out.join(format!("car/{n}")), c.blocks).expect("write");
            if let Ok(car) = c.car() {
                for (i, b) in car.blocks().iter().enumerate().take(3) {
                    std::fs::write(out.join(format!("cbor/{n}_{i}")), b.data).expect("write");
                }
            }
        }
        if n < 4 {
            let mut cap = (data.len() as u32).to_le_bytes().to_vec();
            cap.extend_from_slice(data);
            std::fs::write(out.join(format!("capture/{n}")), cap).expect("write");
        }
        n += 1;
    }
    std::fs::copy(corpus.join("repo.car"), out.join("car/repo")).expect("copy");
    let lines = std::fs::read_to_string(corpus.join("expected_v1.jsonl")).expect("jsonl");
    for (i, l) in lines.lines().enumerate() {
        std::fs::write(out.join(format!("jetstream_line/{i}")), l).expect("write");
    }
    println!("seeded {n} frames");
}
