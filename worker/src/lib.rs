//! The videocounter worker: counts likes per video in tumbling windows on
//! Kafka, exactly once, with RocksDB state restored from a changelog.
//!
//! The data path, in stage order:
//! - [`rekey`]: decode input records, combine likes per video, dead letters;
//!   out to the repartition topic ([`repartition`] is that record).
//! - [`count`]: one task per repartition partition: its store, restore,
//!   windows and what each commit writes.
//! - [`commit`]: the producer and the transaction's records.
//!
//! [`engine`] is the coordinator of one consumer session: it routes records
//! to the stages, owns each partition's offsets and commits. [`runtime`] is
//! the process around it: sessions, HTTP, metrics, signals. [`config`] and
//! [`kafka`] are the settings.

pub mod commit;
pub mod config;
pub mod count;
pub mod engine;
pub mod kafka;
pub mod rekey;
pub mod repartition;
pub mod runtime;
