//! The audit trail from the binary's side: verification, export, retention, and records of
//! gateway actions taken from the operator's shell.

mod export;
mod operator;
mod retention;
mod verify;

pub use export::{export, parse_time, ExportFormat};
pub use operator::{record_operator_action, OperatorAudit};
pub use retention::{prune_once, spawn_retention, RetentionConfig};
pub use verify::{verify_chain, VerifyError, VerifyReport};
