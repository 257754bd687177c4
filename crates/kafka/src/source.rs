//! Kafka as a source: the CloudEvents that `skystream kafka` wrote, read back into the
//! pipeline as a member of a consumer group, so several indexers can share one ingester.
//!
//! Offsets are committed per partition, and only for messages whose events every consumer of
//! the pipeline has acknowledged. The pipeline knows one cursor, so each event read gets the
//! next number of a local sequence as its cursor; the [`OffsetBook`] remembers which
//! (partition, offset) each number came from. When the pipeline's committed cursor reaches
//! `n`, every message numbered up to `n` is durable, and for each partition the offset after
//! the highest such message is committed. Messages that are not events (undecodable, or of a
//! type this build does not read) are counted, skipped, and committed with the event before
//! them.
//!
//! Each envelope also carries its message's (partition, offset), so a consumer that keeps its
//! own durable state (the Jetstream replay log) can store, in the same transaction, the next
//! offset of every partition it holds, and recognise a message it already has when a restart
//! reads it again: the local sequence numbers say nothing across runs.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use skystream_pipeline::{Envelope, Position};
use skystream_source::{Backoff, Source, SourceContext, SourceEnd};
use tracing::{debug, info, warn};

use crate::cloudevent;

/// Most headers looked at on one message (ours carry seven).
const MAX_HEADERS: usize = 32;

/// How long shutdown waits for the pipeline to acknowledge what was read, so its offsets can
/// be committed before leaving the group.
const FINAL_WAIT: Duration = Duration::from_secs(5);

/// How often acknowledged offsets are committed while running.
const COMMIT_EVERY: Duration = Duration::from_millis(500);

/// Which messages are durable, by the pipeline's cursor, and what to commit for them.
#[derive(Debug, Default)]
pub struct OffsetBook {
    /// (local sequence number, partition, offset), in the order read.
    pending: VecDeque<(u64, i32, i64)>,
    /// Per partition, the next offset to commit (one past the last durable message).
    ready: BTreeMap<i32, i64>,
}

impl OffsetBook {
    /// Records that the message at (`partition`, `offset`) became sequence number `seq` (or,
    /// for a skipped message, is covered once `seq` is durable).
    pub fn record(&mut self, seq: u64, partition: i32, offset: i64) {
        self.pending.push_back((seq, partition, offset));
    }

    /// The pipeline has durably handled everything up to `committed`.
    pub fn advance(&mut self, committed: u64) {
        while let Some(&(seq, partition, offset)) = self.pending.front() {
            if seq > committed {
                break;
            }
            let next = self.ready.entry(partition).or_insert(offset + 1);
            *next = (*next).max(offset + 1);
            self.pending.pop_front();
        }
    }

    /// The offsets to commit now (and forgets them).
    pub fn take_ready(&mut self) -> BTreeMap<i32, i64> {
        std::mem::take(&mut self.ready)
    }

    /// Partitions were taken away by a rebalance: their messages still in the pipeline will be
    /// read again by the new owner (at-least-once), and committing for them would be
    /// meaningless now. Returns what was already durable for them, to commit before letting go.
    pub fn revoke(&mut self, partitions: &[i32]) -> BTreeMap<i32, i64> {
        self.pending.retain(|(_, p, _)| !partitions.contains(p));
        let mut out = BTreeMap::new();
        for p in partitions {
            if let Some(o) = self.ready.remove(p) {
                out.insert(*p, o);
            }
        }
        out
    }

    /// Puts back offsets whose commit failed, to be committed with the next ones.
    pub fn restore(&mut self, offsets: &BTreeMap<i32, i64>) {
        for (p, o) in offsets {
            let next = self.ready.entry(*p).or_insert(*o);
            *next = (*next).max(*o);
        }
    }

    /// Messages read but not yet durable.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

/// Where to read and as whom.
#[derive(Clone, Debug)]
pub struct KafkaSourceConfig {
    /// `host:port[,…]`.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// The consumer group.
    pub group: String,
    /// Further librdkafka settings, applied last.
    pub client: Vec<(String, String)>,
    /// Longest wait between reconnect attempts.
    pub backoff_max: Duration,
}

/// The consumer's context: commits what is durable for partitions a rebalance takes away.
struct GroupContext {
    topic: String,
    book: Arc<Mutex<OffsetBook>>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts: Vec<i32> = tpl
                .elements_for_topic(&self.topic)
                .iter()
                .map(|e| e.partition())
                .collect();
            let ready = self
                .book
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .revoke(&parts);
            info!(partitions = ?parts, "Kafka partitions revoked");
            if let Err(e) = commit(consumer, &self.topic, &ready, CommitMode::Sync) {
                warn!(error = %e, "could not commit offsets of revoked partitions; they will be read again");
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let parts: Vec<i32> = tpl
                .elements_for_topic(&self.topic)
                .iter()
                .map(|e| e.partition())
                .collect();
            info!(partitions = ?parts, "Kafka partitions assigned");
        }
    }
}

fn commit<C: rdkafka::consumer::Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
    mode: CommitMode,
) -> Result<(), rdkafka::error::KafkaError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::with_capacity(offsets.len());
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))?;
    }
    debug!(?offsets, "committing Kafka offsets");
    consumer.commit(&tpl, mode)
}

/// Reads CloudEvents from a topic as a consumer group.
pub struct KafkaSource {
    cfg: KafkaSourceConfig,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("brokers", &self.cfg.brokers)
            .field("topic", &self.cfg.topic)
            .field("group", &self.cfg.group)
            .finish_non_exhaustive()
    }
}

impl KafkaSource {
    /// A source for `cfg`.
    pub fn new(cfg: KafkaSourceConfig) -> Self {
        KafkaSource { cfg }
    }

    fn consumer(
        &self,
        book: Arc<Mutex<OffsetBook>>,
    ) -> Result<StreamConsumer<GroupContext>, rdkafka::error::KafkaError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.cfg.brokers)
            .set("group.id", &self.cfg.group)
            .set("client.id", "skystream")
            // Offsets are committed by hand, only for what the pipeline made durable.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A new group reads the topic from its start: the ingester may have run first.
            .set("auto.offset.reset", "earliest")
            // Bound what one fetch and the prefetch queue may hold (hostile or huge topics).
            .set("fetch.max.bytes", "16777216")
            .set("receive.message.max.bytes", "17825792")
            .set("queued.max.messages.kbytes", "65536");
        for (k, v) in &self.cfg.client {
            c.set(k, v);
        }
        let consumer: StreamConsumer<GroupContext> = c.create_with_context(GroupContext {
            topic: self.cfg.topic.clone(),
            book,
        })?;
        consumer.subscribe(&[&self.cfg.topic])?;
        Ok(consumer)
    }
}

/// An envelope that carries where its message sits in the topic, so a consumer can tell a
/// message it already has from a new one across restarts (the event's cursor is local).
fn positioned(event: skystream_event::Event, partition: i32, offset: i64) -> Envelope {
    let mut env = Envelope::new(event);
    // librdkafka never hands out a message with a negative partition or offset.
    env.position = Some(Position {
        partition: u32::try_from(partition).unwrap_or(0),
        offset: u64::try_from(offset).unwrap_or(0),
    });
    env
}

/// The event in a message, or why there is none (counted by reason).
fn decode(msg: &BorrowedMessage<'_>, cursor: u64) -> Result<skystream_event::Event, &'static str> {
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    if let Some(h) = msg.headers() {
        for header in h.iter().take(MAX_HEADERS) {
            if let Some(v) = header.value {
                headers.push((header.key, v));
            }
        }
    }
    cloudevent::read_message(&headers, msg.payload())
        .and_then(|r| r.to_event(cursor))
        .map_err(|e| {
            debug!(error = %e, partition = msg.partition(), offset = msg.offset(), "skipping a Kafka message");
            e.kind.name()
        })
}

#[async_trait]
impl Source for KafkaSource {
    fn cursor_key(&self) -> String {
        format!(
            "kafka:{}/{}?group={}",
            self.cfg.brokers, self.cfg.topic, self.cfg.group
        )
    }

    async fn run(&mut self, start: Option<u64>, ctx: SourceContext) -> SourceEnd {
        let book = Arc::new(Mutex::new(OffsetBook::default()));
        let mut backoff = Backoff::new(Duration::from_secs(1), self.cfg.backoff_max);
        let consumer = loop {
            match self.consumer(book.clone()) {
                Ok(c) => break c,
                Err(e) => {
                    let delay = backoff.next_delay();
                    warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot create the Kafka consumer");
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => return SourceEnd::Shutdown,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        info!(topic = %self.cfg.topic, group = %self.cfg.group, "reading CloudEvents from Kafka");
        metrics::gauge!("skystream_source_connected").set(1.0);
        // Sequence numbers continue from the saved cursor so the pipeline's cursor only grows;
        // where to read is the group's committed offsets, not this number.
        let mut seq = start.unwrap_or(0);
        let mut committed = ctx.committed.clone();
        let mut watching = true;
        let mut tick = tokio::time::interval(COMMIT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let with_book = |f: &mut dyn FnMut(&mut OffsetBook)| {
            f(&mut book.lock().unwrap_or_else(|p| p.into_inner()));
        };
        let mut errors = 0u32;
        let end = loop {
            tokio::select! {
                biased;
                _ = ctx.shutdown.cancelled() => break SourceEnd::Shutdown,
                changed = committed.changed(), if watching => {
                    if changed.is_err() {
                        watching = false;
                        continue;
                    }
                    let c = (*committed.borrow_and_update()).unwrap_or(0);
                    with_book(&mut |b| b.advance(c));
                }
                _ = tick.tick() => {
                    let mut ready = BTreeMap::new();
                    with_book(&mut |b| ready = b.take_ready());
                    if let Err(e) = commit(&consumer, &self.cfg.topic, &ready, CommitMode::Async) {
                        warn!(error = %e, "could not commit Kafka offsets; will retry");
                        with_book(&mut |b| b.restore(&ready));
                    }
                }
                msg = consumer.recv() => {
                    let msg = match msg {
                        Ok(m) => { errors = 0; m }
                        Err(e) => {
                            // librdkafka reconnects by itself; errors here are reported
                            // conditions (broker down, topic missing). Pause so a persistent
                            // one does not spin.
                            errors += 1;
                            metrics::counter!("skystream_source_reconnects_total", "reason" => "kafka_error").increment(1);
                            warn!(error = %e, "Kafka consumer error");
                            let pause = Duration::from_millis(100 * u64::from(errors.min(50)));
                            tokio::select! {
                                _ = ctx.shutdown.cancelled() => break SourceEnd::Shutdown,
                                _ = tokio::time::sleep(pause) => {}
                            }
                            continue;
                        }
                    };
                    let (partition, offset) = (msg.partition(), msg.offset());
                    match decode(&msg, seq + 1) {
                        Ok(event) => {
                            seq += 1;
                            with_book(&mut |b| b.record(seq, partition, offset));
                            drop(msg);
                            metrics::counter!("skystream_events_total", "kind" => event.kind_name()).increment(1);
                            tokio::select! {
                                biased;
                                _ = ctx.shutdown.cancelled() => break SourceEnd::Shutdown,
                                sent = ctx.out.send(positioned(event, partition, offset)) => if sent.is_err() { break SourceEnd::PipelineClosed },
                            }
                        }
                        Err(reason) => {
                            metrics::counter!("skystream_decode_errors_total", "reason" => reason).increment(1);
                            with_book(&mut |b| b.record(seq, partition, offset));
                        }
                    }
                }
            }
        };
        // Give the pipeline a moment to acknowledge what was read, then commit it, so the
        // group resumes after it rather than reading it again.
        let deadline = tokio::time::Instant::now() + FINAL_WAIT;
        while watching && committed.borrow().unwrap_or(0) < seq {
            tokio::select! {
                changed = committed.changed() => if changed.is_err() { break },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let c = (*committed.borrow()).unwrap_or(0);
        let mut ready = BTreeMap::new();
        with_book(&mut |b| {
            b.advance(c);
            ready = b.take_ready();
        });
        if let Err(e) = commit(&consumer, &self.cfg.topic, &ready, CommitMode::Sync) {
            warn!(error = %e, "could not commit the final Kafka offsets; those messages will be read again");
        }
        let left = book.lock().map(|b| b.in_flight()).unwrap_or(0);
        info!(
            read = seq - start.unwrap_or(0),
            not_acknowledged = left,
            "Kafka source stopped"
        );
        metrics::gauge!("skystream_source_connected").set(0.0);
        // Leaving the group (on drop) revokes the partitions; nothing is left to commit.
        consumer.unsubscribe();
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_what_the_pipeline_made_durable() {
        let mut b = OffsetBook::default();
        b.record(1, 0, 10);
        b.record(2, 1, 5);
        b.record(3, 0, 11);
        b.record(3, 2, 7); // a skipped message, covered by event 3
        b.record(4, 1, 6);
        b.advance(0);
        assert!(b.take_ready().is_empty());
        b.advance(2);
        assert_eq!(b.take_ready(), BTreeMap::from([(0, 11), (1, 6)]));
        assert!(b.take_ready().is_empty(), "taken once");
        b.advance(3);
        assert_eq!(b.take_ready(), BTreeMap::from([(0, 12), (2, 8)]));
        assert_eq!(b.in_flight(), 1);
        b.advance(10);
        assert_eq!(b.take_ready(), BTreeMap::from([(1, 7)]));
        assert_eq!(b.in_flight(), 0);
    }

    #[test]
    fn revoked_partitions_are_dropped_and_their_durable_offsets_returned() {
        let mut b = OffsetBook::default();
        b.record(1, 0, 1);
        b.record(2, 1, 1);
        b.record(3, 0, 2);
        b.advance(2);
        let out = b.revoke(&[0]);
        assert_eq!(out, BTreeMap::from([(0, 2)]));
        b.advance(3);
        // Partition 0's message 3 was dropped with the revocation; partition 1's stays.
        assert_eq!(b.take_ready(), BTreeMap::from([(1, 2)]));
        assert_eq!(b.in_flight(), 0);
    }
}
