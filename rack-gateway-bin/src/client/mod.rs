//! The client side of the command line: signing in to gateways, keeping one credential per
//! rack, and running the Convox CLI through a gateway with it.
//!
//! The credentials live in `$RACK_GATEWAY_CONFIG_DIR/config.json` (default
//! `~/.config/rack-gateway`), a file only its owner may read; the token in it is sent to its own
//! gateway and to the Convox CLI, and shown nowhere.

pub mod browser;
pub mod config_file;
pub mod config_store;
pub mod convox;
pub mod gateway_url;
pub mod http;
pub mod one_line;
pub mod private_file;
pub mod rack_name;
pub mod revoke;
pub mod sign_in;
pub mod token;

pub use config_file::{ClientConfig, RackChoiceError, RackCredential};
pub use config_store::{ConfigFileError, ConfigStore};
pub use gateway_url::GatewayUrl;
pub use rack_name::RackName;
pub use token::SessionToken;
