//! Stage 2, count: each repartition partition is one task ([`task`]) with
//! its RocksDB store ([`store`]), restored from its changelog on
//! assignment ([`restore`]). Records are counted in memory ([`counts`]) in
//! tumbling windows ([`window`]); each commit decides what to write
//! ([`emit`]) from the committed counts (the open windows' in memory,
//! [`open_counts`]): output records ([`output`]), changelog records and
//! store writes ([`keys`]), written back to RocksDB in turn
//! ([`write_back`]).

pub mod changelog;
pub mod changelog_batch;
pub mod counts;
pub mod emit;
pub mod keys;
pub mod open_counts;
pub mod output;
pub mod partitioner;
pub mod restore;
pub mod store;
pub mod task;
pub mod window;
pub mod write_back;
