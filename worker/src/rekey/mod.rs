//! Stage 1, re-key: input records are decoded and checked ([`decode`]),
//! likes of the same video in the same combining bucket are summed
//! ([`combiner`]) into one repartition record keyed by video id, and what
//! cannot be counted goes to the dead-letter topic ([`dead_letter`]).

pub mod combiner;
pub mod dead_letter;
pub mod decode;
