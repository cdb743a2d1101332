//! One Kafka layer: how every client of a deployment connects, and how the
//! topics it needs are checked and created.

mod client;
mod topics;

pub use client::{Credentials, KafkaCredentials, SecretFileError, client_config, plaintext};
pub use topics::{Mismatch, TopicAdmin, TopicCheck, TopicError, check_topics};
