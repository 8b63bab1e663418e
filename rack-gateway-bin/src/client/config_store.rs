//! Where `config.json` lives, and reading and writing it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::config_file::ClientConfig;
use super::one_line::json_problem;
use super::private_file::{read_private, write_private, PrivateFileError};

/// The variable that chooses the directory.
pub const CONFIG_DIR_VAR: &str = "RACK_GATEWAY_CONFIG_DIR";

/// The file in that directory.
const FILE_NAME: &str = "config.json";

/// The directory below `$HOME` when the variable is unset.
const DEFAULT_DIR_IN_HOME: &str = ".config/rack-gateway";

/// The stored credentials of the CLI client, in one directory.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    dir: PathBuf,
}

/// The configuration file could not be found, read, understood or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// Neither the variable nor `$HOME` says where the file is.
    #[error("HOME is not set, so there is no default place for rack-gateway's credentials: set HOME or {CONFIG_DIR_VAR}")]
    NoHome,
    /// Exposed, unreadable or unwritable.
    #[error(transparent)]
    File(#[from] PrivateFileError),
    /// Not the JSON this program writes. Only the position is shown: the parser's own message
    /// can quote a value, and a value in this file can be a token.
    #[error("{path} is not a valid rack-gateway configuration ({problem}); fix it, or move it away and sign in again")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, and where.
        problem: String,
    },
}

impl ConfigFileError {
    /// Whether this is a problem the user fixes in their setup (exit status 2) rather than a
    /// failure of the moment.
    pub fn is_configuration(&self) -> bool {
        !matches!(self, ConfigFileError::File(PrivateFileError::Io { .. }))
    }
}

impl ConfigStore {
    /// The directory from the process environment.
    pub fn from_env() -> Result<Self, ConfigFileError> {
        Self::from_vars(std::env::var_os(CONFIG_DIR_VAR), std::env::var_os("HOME"))
    }

    /// `config_dir` when set, else `<home>/.config/rack-gateway`; empty counts as unset.
    pub fn from_vars(
        config_dir: Option<OsString>,
        home: Option<OsString>,
    ) -> Result<Self, ConfigFileError> {
        let set = |value: Option<OsString>| value.filter(|v| !v.is_empty()).map(PathBuf::from);
        let dir = match (set(config_dir), set(home)) {
            (Some(dir), _) => dir,
            (None, Some(home)) => home.join(DEFAULT_DIR_IN_HOME),
            (None, None) => return Err(ConfigFileError::NoHome),
        };
        Ok(ConfigStore { dir })
    }

    /// The configuration file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The stored configuration; empty when there is no file yet.
    pub fn load(&self) -> Result<ClientConfig, ConfigFileError> {
        let path = self.path();
        match read_private(&path)? {
            None => Ok(ClientConfig::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|error| invalid(&path, &error)),
        }
    }

    /// Replaces the stored configuration.
    pub fn save(&self, config: &ClientConfig) -> Result<(), ConfigFileError> {
        let mut text =
            serde_json::to_vec_pretty(config).map_err(|error| invalid(&self.path(), &error))?;
        text.push(b'\n');
        write_private(&self.path(), &text)?;
        Ok(())
    }
}

fn invalid(path: &Path, error: &serde_json::Error) -> ConfigFileError {
    ConfigFileError::Invalid {
        path: path.display().to_string(),
        problem: json_problem(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_wins_over_home_and_empty_counts_as_unset() {
        let store =
            ConfigStore::from_vars(Some("/etc/rgw".into()), Some("/home/a".into())).expect("store");
        assert_eq!(store.path(), Path::new("/etc/rgw/config.json"));
        let store = ConfigStore::from_vars(Some("".into()), Some("/home/a".into())).expect("store");
        assert_eq!(
            store.path(),
            Path::new("/home/a/.config/rack-gateway/config.json")
        );
        assert!(matches!(
            ConfigStore::from_vars(None, Some("".into())),
            Err(ConfigFileError::NoHome)
        ));
    }

    #[test]
    fn a_broken_file_is_reported_without_its_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::from_vars(Some(dir.path().into()), None).expect("store");
        write_private(&store.path(), br#"{"racks": {"prod": "rgs_secret_value"}}"#).expect("write");
        let error = store.load().expect_err("invalid");
        assert!(error.is_configuration());
        let message = error.to_string();
        assert!(message.contains("line 1"), "{message}");
        assert!(!message.contains("rgs_secret_value"), "{message}");
    }
}
