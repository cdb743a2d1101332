//! Stage 3, commit: the worker's one producer ([`sink`]; one Kafka
//! transaction per commit in exactly-once mode) and the records a counting
//! partition writes in it ([`records`]), and one transaction's work on the
//! commit thread ([`transaction`]). The engine decides when and what to
//! commit; see `engine::commit`.

pub mod records;
pub mod sink;
pub mod transaction;
