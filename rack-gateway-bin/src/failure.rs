//! How a command fails, and the exit status that goes with it.

use std::fmt;

use crate::config::ConfigError;

/// A failed command: 2 for bad usage or configuration, 1 for everything else.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or configuration (exit 2).
    Usage(String),
    /// The command could not do its work (exit 1).
    Failed(anyhow::Error),
}

impl Failure {
    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Failed(_) => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) => f.write_str(message),
            // `{:#}` prints the whole context chain on one line.
            Failure::Failed(error) => write!(f, "{error:#}"),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Self {
        Failure::Usage(error.to_string())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Failed(error)
    }
}

impl From<rack_gateway_core::store::StoreError> for Failure {
    fn from(error: rack_gateway_core::store::StoreError) -> Self {
        Failure::Failed(error.into())
    }
}
