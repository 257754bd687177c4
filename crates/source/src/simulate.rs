//! The simulator as a source: validly signed, realistic traffic at a chosen rate, for demos,
//! load tests and offline development.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use skystream_event::{from_frame, FrameOptions};
use skystream_firehose::decode_frame;
use skystream_pipeline::{Envelope, Raw};
use skystream_simulate::{SimConfig, Simulator};
use tracing::warn;

use crate::relay::now_us;
use crate::{Source, SourceContext, SourceEnd};

/// Generated traffic at `rate` events per second (0 = as fast as it can be signed).
#[derive(Debug)]
pub struct SimulateSource {
    rate: u64,
    keep_raw: bool,
    cfg: SimConfig,
}

impl SimulateSource {
    /// A simulator with the default world (500 accounts, seed 0).
    pub fn new(rate: u64, keep_raw: bool) -> Self {
        Self::with_config(rate, keep_raw, SimConfig::default())
    }

    /// A simulator with a chosen world.
    pub fn with_config(rate: u64, keep_raw: bool, cfg: SimConfig) -> Self {
        SimulateSource {
            rate,
            keep_raw,
            cfg,
        }
    }
}

#[async_trait]
impl Source for SimulateSource {
    fn cursor_key(&self) -> String {
        "simulate".to_owned()
    }

    async fn run(&mut self, start: Option<u64>, ctx: SourceContext) -> SourceEnd {
        let mut cfg = self.cfg.clone();
        // Sequence numbers continue after a saved cursor, so a restart looks like a relay
        // that kept going.
        if let Some(s) = start {
            cfg.start_seq = s as i64 + 1;
        }
        let (rate, keep_raw) = (self.rate, self.keep_raw);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Envelope>(1024);
        let stop = ctx.shutdown.child_token();
        let stop_generator = stop.clone();
        // Signing is CPU work: generate on a blocking thread, paced by wall time.
        let generator = tokio::task::spawn_blocking(move || {
            let mut sim = Simulator::new(cfg);
            let opts = FrameOptions::default();
            let began = Instant::now();
            let mut n: u64 = 0;
            while !stop_generator.is_cancelled() {
                if rate > 0 {
                    let due = began + Duration::from_secs_f64(n as f64 / rate as f64);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep((due - now).min(Duration::from_millis(50)));
                        continue;
                    }
                }
                let frame = sim.next_frame(now_us());
                n += 1;
                let event = match decode_frame(&frame.bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|f| from_frame(&f, &opts).map_err(|e| e.to_string()))
                {
                    Ok(o) => match o.event {
                        Some(e) => e,
                        None => continue,
                    },
                    Err(e) => {
                        warn!(error = %e, "the simulator produced a frame that does not decode");
                        continue;
                    }
                };
                let raw = keep_raw.then_some(Raw::Frame(frame.bytes));
                if tx.blocking_send(Envelope::with_raw(event, raw)).is_err() {
                    return;
                }
            }
        });
        let end = loop {
            let env = tokio::select! {
                _ = ctx.shutdown.cancelled() => break SourceEnd::Shutdown,
                env = rx.recv() => match env {
                    Some(env) => env,
                    None => break SourceEnd::Shutdown,
                },
            };
            metrics::counter!("skystream_events_total", "kind" => env.event.kind_name())
                .increment(1);
            tokio::select! {
                biased;
                _ = ctx.shutdown.cancelled() => break SourceEnd::Shutdown,
                sent = ctx.out.send(env) => if sent.is_err() { break SourceEnd::PipelineClosed },
            }
        };
        stop.cancel();
        drop(rx);
        let _ = generator.await;
        end
    }
}
