//! What the videocounter worker, operator and gateway must agree on: the
//! worker's configuration file, the records on the wire, and topic names.

pub mod config;
pub mod duration;
pub mod records;
pub mod topics;

pub use config::{EmitMode, InputFormat, ProcessingGuarantee, ResolvedWindow, WindowConfig, WorkerConfig};
pub use duration::HumanDuration;
pub use records::{LikeEvent, WindowCountRecord, validate_video_id};
