//! The videocounter worker: counts likes per video in tumbling windows on
//! Kafka, exactly once, with RocksDB state restored from a changelog.
//!
//! Pure core: [`window`], [`codec`], [`partitioner`], [`combiner`],
//! [`counts`], [`emit`], [`owners`]. Shell: [`store`], [`restore`],
//! [`sink`], [`engine`], [`session`], [`http`], [`signals`].

pub mod codec;
pub mod combiner;
pub mod config;
pub mod counts;
pub mod emit;
pub mod engine;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod owners;
pub mod partitioner;
pub mod positions;
pub mod restore;
pub mod session;
pub mod signals;
pub mod sink;
pub mod state;
pub mod store;
pub mod task;
pub mod window;
