//! The firehose into Kafka as CloudEvents 1.0, and Kafka back into the pipeline. The
//! [`cloudevent`] module maps events to CloudEvents with deterministic ids (a replay produces
//! the same ids) and reads them back, without I/O; [`sample`] keeps a deterministic fraction;
//! [`connection_string`] turns an Event Hubs / Fabric connection string into Kafka settings;
//! [`sink::KafkaSink`] is a pipeline consumer on rdkafka's idempotent producer that returns
//! from a batch only when the broker acknowledged all of it, so the cursor never passes an
//! undelivered event; and [`source::KafkaSource`] reads a topic as a consumer group, committing
//! per-partition offsets only for events every consumer of its pipeline acknowledged. The
//! schema is documented in `EVENTS.md`.

pub mod cloudevent;
pub mod connection_string;
pub mod sample;
pub mod sink;
pub mod source;

pub use cloudevent::{Collection, ContentMode, Mapping};
pub use connection_string::EventHubsConnection;
pub use sample::Sampler;
pub use sink::{KafkaSink, SinkConfig};
pub use source::{KafkaSource, KafkaSourceConfig, OffsetBook};
