//! The Kafka sink: a pipeline [`Consumer`] that publishes each batch as CloudEvents and returns
//! only when the broker has acknowledged every message of it.
//!
//! The producer is idempotent with `acks=all`, so librdkafka's own retries neither duplicate
//! nor reorder within a partition. A message whose delivery still fails (the broker is down
//! longer than `message.timeout.ms`) is sent again, with backoff, until it is acknowledged:
//! `handle` does not return meanwhile, so the pipeline's committed cursor stays behind the
//! undelivered events and the source is slowed by the pipeline's bounded queues. Nothing is
//! dropped, and a restart resumes from the last batch the broker took in full.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use skystream_pipeline::{Batch, Consumer, ConsumerError};
use tracing::{info, warn};

use crate::cloudevent::{self, ContentMode, KafkaMessage, Mapping};
use crate::sample::Sampler;

/// How the sink connects and what it writes.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// librdkafka settings (`bootstrap.servers`, SASL, and `--kafka-option`s), applied after
    /// the sink's defaults so they can override them.
    pub client: Vec<(String, String)>,
    /// The topic.
    pub topic: String,
    /// Structured or binary CloudEvents.
    pub mode: ContentMode,
    /// Which events, and the `source` attribute.
    pub mapping: Mapping,
    /// Deterministic sampling.
    pub sampler: Sampler,
    /// First wait before sending failed messages again.
    pub retry_initial: Duration,
    /// Longest wait between attempts.
    pub retry_max: Duration,
}

impl SinkConfig {
    /// Defaults for `topic` on `bootstrap_servers`.
    pub fn new(bootstrap_servers: &str, topic: &str) -> Self {
        SinkConfig {
            client: vec![("bootstrap.servers".into(), bootstrap_servers.into())],
            topic: topic.into(),
            mode: ContentMode::Structured,
            mapping: Mapping::default(),
            sampler: Sampler::new(1.0),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// The producer settings: idempotence (which implies `acks=all` and ordered retries), a
/// short linger so batches form under load, and a delivery timeout short enough that an outage
/// shows in the logs within half a minute (the sink then sends again; nothing is dropped).
pub fn producer_config(client: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("client.id", "skystream")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("queue.buffering.max.messages", "200000")
        // Statistics are how `KafkaSink::connect` learns that the producer has its id.
        .set("statistics.interval.ms", "100");
    for (k, v) in client {
        c.set(k, v);
    }
    c
}

/// The producer's context: it keeps the idempotent producer's id from librdkafka's
/// statistics (-1 until the broker has assigned one), which no other API exposes.
#[derive(Clone)]
struct SinkContext {
    producer_id: Arc<AtomicI64>,
}

impl Default for SinkContext {
    fn default() -> Self {
        SinkContext {
            producer_id: Arc::new(AtomicI64::new(-1)),
        }
    }
}

impl ClientContext for SinkContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(eos) = statistics.eos {
            self.producer_id.store(eos.producer_id, Ordering::Release);
        }
    }
}

/// Publishes batches to Kafka.
pub struct KafkaSink {
    cfg: SinkConfig,
    context: SinkContext,
    producer: FutureProducer<SinkContext>,
    produced: u64,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.cfg.topic)
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

/// One message that failed, and why.
struct Failed {
    index: usize,
    error: String,
}

impl KafkaSink {
    /// Creates the producer (it connects lazily; a wrong setting fails here).
    pub fn new(cfg: SinkConfig) -> Result<Self, KafkaError> {
        let context = SinkContext::default();
        let producer = producer_config(&cfg.client).create_with_context(context.clone())?;
        Ok(KafkaSink {
            cfg,
            context,
            producer,
            produced: 0,
        })
    }

    /// Connects before the first batch and returns the topic's partition count: the
    /// topic's metadata is fetched now, so a wrong address, topic or credentials fail at
    /// start-up with the broker's reason rather than as delivery timeouts half a minute into
    /// the stream; then it waits (within `timeout`) for the idempotent producer's id, which
    /// librdkafka asks for again only every 500 ms when no broker was connected at the first
    /// try, so the first batch does not wait for either. The id is read from librdkafka's
    /// statistics, so a `statistics.interval.ms=0` passed as a client option makes this time
    /// out (the sink still works).
    pub async fn connect(&self, timeout: Duration) -> Result<usize, KafkaError> {
        let deadline = Instant::now() + timeout;
        let partitions = self.fetch_topic(timeout).await?;
        while self.context.producer_id.load(Ordering::Acquire) < 0 {
            if Instant::now() >= deadline {
                return Err(KafkaError::MetadataFetch(
                    RDKafkaErrorCode::OperationTimedOut,
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(partitions)
    }

    /// The topic's partition count, from its metadata.
    async fn fetch_topic(&self, timeout: Duration) -> Result<usize, KafkaError> {
        let producer = self.producer.clone();
        let topic = self.cfg.topic.clone();
        let metadata = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Timeout::After(timeout))
        })
        .await
        .map_err(|_| KafkaError::Canceled)??;
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == self.cfg.topic);
        match topic {
            Some(t) if t.error().is_none() => Ok(t.partitions().len()),
            Some(t) => Err(KafkaError::MetadataFetch(
                t.error()
                    .map_or(RDKafkaErrorCode::Unknown, RDKafkaErrorCode::from),
            )),
            None => Err(KafkaError::MetadataFetch(
                RDKafkaErrorCode::UnknownTopicOrPartition,
            )),
        }
    }

    /// Messages acknowledged so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// The messages for a batch, in order, after the collection filter and sampling.
    pub fn messages(&self, batch: &Batch) -> Vec<KafkaMessage> {
        let mut out = Vec::with_capacity(batch.items.len());
        for env in &batch.items {
            for ce in cloudevent::from_event(&env.event, &self.cfg.mapping) {
                if self.cfg.sampler.keep(&ce.id) {
                    out.push(ce.to_message(self.cfg.mode));
                } else {
                    metrics::counter!("skystream_kafka_sampled_out_total").increment(1);
                }
            }
        }
        out
    }

    /// Sends `msgs[i]` for each `i` in `which` and waits for every delivery report. Returns the
    /// ones that failed.
    async fn deliver(&self, msgs: &[KafkaMessage], which: &[usize]) -> Vec<Failed> {
        let mut failed = Vec::new();
        let mut inflight: std::collections::VecDeque<(usize, DeliveryFuture)> =
            std::collections::VecDeque::with_capacity(which.len());
        for &index in which {
            let msg = &msgs[index];
            let mut headers = OwnedHeaders::new_with_capacity(msg.headers.len());
            for (k, v) in &msg.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            let mut record = FutureRecord::to(&self.cfg.topic)
                .key(msg.key.as_bytes())
                .payload(msg.payload.as_bytes())
                .headers(headers);
            loop {
                match self.producer.send_result(record) {
                    Ok(fut) => {
                        inflight.push_back((index, fut));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), rec)) => {
                        // The local queue is full: wait for the oldest message to be delivered
                        // (that frees room) and try again.
                        record = rec;
                        match inflight.pop_front() {
                            Some((i, fut)) => {
                                if let Some(f) = check(i, fut.await) {
                                    failed.push(f);
                                }
                            }
                            None => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                    Err((e, _)) => {
                        failed.push(Failed {
                            index,
                            error: e.to_string(),
                        });
                        break;
                    }
                }
            }
        }
        for (i, fut) in inflight {
            if let Some(f) = check(i, fut.await) {
                failed.push(f);
            }
        }
        failed.sort_by_key(|f| f.index);
        failed
    }
}

/// A delivery report: `None` when the broker acknowledged the message. (The error type of a
/// dropped report is rdkafka's oneshot `Canceled`; generic here so it need not be named.)
fn check<E>(index: usize, report: Result<OwnedDeliveryResult, E>) -> Option<Failed> {
    match report {
        Ok(Ok(_)) => None,
        Ok(Err((e, _))) => Some(Failed {
            index,
            error: e.to_string(),
        }),
        Err(_) => Some(Failed {
            index,
            error: "the producer dropped the message".into(),
        }),
    }
}

#[async_trait]
impl Consumer for KafkaSink {
    fn name(&self) -> &str {
        "kafka"
    }

    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        let msgs = self.messages(batch);
        let mut which: Vec<usize> = (0..msgs.len()).collect();
        let mut backoff = self.cfg.retry_initial;
        loop {
            let failed = self.deliver(&msgs, &which).await;
            let delivered = which.len() - failed.len();
            self.produced += delivered as u64;
            metrics::counter!("skystream_kafka_produced_total").increment(delivered as u64);
            let Some(first) = failed.first() else {
                return Ok(());
            };
            metrics::counter!("skystream_kafka_delivery_failures_total")
                .increment(failed.len() as u64);
            warn!(batch = batch.id, failed = failed.len(), error = %first.error, retry_in_ms = backoff.as_millis() as u64,
                "Kafka did not acknowledge every message; sending those again (the cursor waits)");
            if let Some((code, reason)) = self.producer.client().fatal_error() {
                // A fatal error (e.g. the idempotent producer's sequence was lost) makes this
                // producer unusable: start a fresh one and send the failed messages with it.
                warn!(?code, %reason, "the Kafka producer hit a fatal error; creating a new one");
                self.context = SinkContext::default();
                self.producer =
                    producer_config(&self.cfg.client).create_with_context(self.context.clone())?;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.cfg.retry_max);
            which = failed.into_iter().map(|f| f.index).collect();
        }
    }

    async fn close(&mut self) -> Result<(), ConsumerError> {
        // Every batch handed in was already acknowledged; this only drains bookkeeping.
        self.producer
            .flush(Timeout::After(Duration::from_secs(5)))?;
        info!(messages = self.produced, topic = %self.cfg.topic, "Kafka sink closed");
        Ok(())
    }
}
