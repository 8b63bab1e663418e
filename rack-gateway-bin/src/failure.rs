//! How a command fails, and the exit status that goes with it.

use std::fmt;

use crate::client::config_store::ConfigFileError;
use crate::client::convox::{ConvoxFailed, ConvoxMissing};
use crate::client::http::CallError;
use crate::client::sign_in::SignInError;
use crate::client::RackChoiceError;
use crate::config::ConfigError;

/// A failed command: 2 for bad usage or configuration, 1 for everything else.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or configuration (exit 2).
    Usage(String),
    /// The command could not do its work (exit 1).
    Failed(anyhow::Error),
    /// A program run for the user (the Convox CLI) ended with this non-zero status; it has
    /// said why itself, so nothing more is printed.
    PassedOn(u8),
}

impl Failure {
    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Failed(_) => 1,
            Failure::PassedOn(status) => *status,
        }
    }

    /// Whether there is a message to print.
    pub fn has_message(&self) -> bool {
        !matches!(self, Failure::PassedOn(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) => f.write_str(message),
            // `{:#}` prints the whole context chain on one line.
            Failure::Failed(error) => write!(f, "{error:#}"),
            Failure::PassedOn(status) => write!(f, "exit status {status}"),
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

impl From<ConfigFileError> for Failure {
    fn from(error: ConfigFileError) -> Self {
        if error.is_configuration() {
            Failure::Usage(error.to_string())
        } else {
            Failure::Failed(error.into())
        }
    }
}

impl From<RackChoiceError> for Failure {
    fn from(error: RackChoiceError) -> Self {
        Failure::Usage(error.to_string())
    }
}

impl From<ConvoxMissing> for Failure {
    fn from(error: ConvoxMissing) -> Self {
        Failure::Usage(error.to_string())
    }
}

impl From<ConvoxFailed> for Failure {
    fn from(error: ConvoxFailed) -> Self {
        Failure::Failed(error.into())
    }
}

impl From<CallError> for Failure {
    fn from(error: CallError) -> Self {
        Failure::Failed(error.into())
    }
}

impl From<SignInError> for Failure {
    fn from(error: SignInError) -> Self {
        Failure::Failed(error.into())
    }
}
