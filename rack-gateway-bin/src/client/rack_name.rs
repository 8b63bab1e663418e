//! The short name a user gives a gateway when signing in to it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest rack name: one DNS label, so that names stay usable in host names and paths.
const MAX_LEN: usize = 63;

/// A rack name: `[a-z0-9][a-z0-9-]{0,62}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RackName(String);

/// A rack name that breaks the naming rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a rack name: use lower-case letters, digits and '-', starting with a letter or digit, at most 63 characters")]
pub struct InvalidRackName(String);

impl RackName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RackName {
    type Err = InvalidRackName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut chars = text.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if first_ok && rest_ok && text.len() <= MAX_LEN {
            Ok(RackName(text.to_owned()))
        } else {
            Err(InvalidRackName(text.to_owned()))
        }
    }
}

impl TryFrom<String> for RackName {
    type Error = InvalidRackName;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<RackName> for String {
    fn from(name: RackName) -> Self {
        name.0
    }
}

impl fmt::Display for RackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_short_lower_case_names() {
        for name in ["prod", "0", "eu-west-1", &"a".repeat(63)] {
            assert_eq!(
                name.parse::<RackName>().map(String::from).as_deref(),
                Ok(name)
            );
        }
    }

    #[test]
    fn refuses_anything_else() {
        for name in [
            "",
            "-prod",
            "Prod",
            "prod_1",
            "prod.eu",
            "pröd",
            &"a".repeat(64),
        ] {
            assert!(name.parse::<RackName>().is_err(), "{name:?}");
        }
    }
}
