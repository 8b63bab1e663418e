//! Route tables written as TOML or JSON, for services that keep their routes as configuration.
//!
//! ```toml
//! [[route]]
//! method = "GET"                 # GET, POST, PUT, DELETE or SOCKET
//! pattern = "/orders/{id}"
//! permission = "shop:order:read" # omitted: any authenticated caller
//! action = "order.read"
//! mfa = "none"                   # none (default), step_up or always
//! # optional flags: mutating (default: POST/PUT/DELETE), destructive, approval_gated,
//! # carries_env, merges_env
//! ```
//!
//! JSON is the same shape: `{"route": [{"method": "GET", ...}]}`.

use serde::Deserialize;

use super::{MfaLevel, Route, RouteMethod, RouteTable, RouteTableBuilder};

/// Why a route file could not be read; start-up should stop with this message.
#[derive(Debug, thiserror::Error)]
pub enum RouteFileError {
    /// The text is not the expected TOML.
    #[error("route table TOML: {0}")]
    Toml(String),
    /// The text is not the expected JSON.
    #[error("route table JSON: {0}")]
    Json(String),
    /// A row does not make a valid table.
    #[error(transparent)]
    Table(#[from] super::RouteTableError),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    #[serde(default)]
    route: Vec<RouteRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteRow {
    method: RouteMethod,
    pattern: String,
    #[serde(default)]
    permission: String,
    action: String,
    #[serde(default)]
    mfa: Option<MfaLevel>,
    #[serde(default)]
    mutating: Option<bool>,
    #[serde(default)]
    destructive: bool,
    #[serde(default)]
    approval_gated: bool,
    #[serde(default)]
    carries_env: bool,
    #[serde(default)]
    merges_env: bool,
}

impl RouteRow {
    fn into_route(self) -> Route {
        let by_method = self.method.changes_state();
        Route {
            method: self.method,
            pattern: self.pattern.into(),
            permission: self.permission.into(),
            mfa: self.mfa.unwrap_or(MfaLevel::None),
            action: self.action.into(),
            approval_gated: self.approval_gated,
            destructive: self.destructive,
            mutating: self.mutating.unwrap_or(by_method),
            carries_env: self.carries_env,
            merges_env: self.merges_env,
        }
    }
}

impl RouteTableBuilder {
    /// Adds the rows of a TOML route file (see the module docs).
    pub fn toml(self, text: &str) -> Result<Self, RouteFileError> {
        let file: RouteFile =
            toml::from_str(text).map_err(|e| RouteFileError::Toml(e.to_string()))?;
        Ok(self.routes(file.route.into_iter().map(RouteRow::into_route)))
    }

    /// Adds the rows of a JSON route file (`{"route": [...]}`).
    pub fn json(self, text: &str) -> Result<Self, RouteFileError> {
        let file: RouteFile =
            serde_json::from_str(text).map_err(|e| RouteFileError::Json(e.to_string()))?;
        Ok(self.routes(file.route.into_iter().map(RouteRow::into_route)))
    }
}

impl RouteTable {
    /// A table from a TOML route file, checked (see [`RouteTableBuilder::build`]).
    pub fn from_toml(text: &str) -> Result<RouteTable, RouteFileError> {
        Ok(RouteTable::builder().toml(text)?.build()?)
    }

    /// A table from a JSON route file, checked.
    pub fn from_json(text: &str) -> Result<RouteTable, RouteFileError> {
        Ok(RouteTable::builder().json(text)?.build()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = r#"
[[route]]
method = "GET"
pattern = "/orders/{id}"
permission = "shop:order:read"
action = "order.read"

[[route]]
method = "POST"
pattern = "/orders/{id}/refund"
permission = "shop:order:refund"
action = "order.refund"
mfa = "always"

[[route]]
method = "GET"
pattern = "/me"
action = "me.read"
"#;

    #[test]
    fn toml_and_json_tables_match_like_built_ones() {
        let table = RouteTable::from_toml(SHOP).expect("valid");
        let refund = table
            .classify("POST", false, "/orders/7/refund")
            .expect("matched");
        assert_eq!(refund.route.mfa, MfaLevel::Always);
        assert!(refund.route.mutating);
        let me = table.classify("GET", false, "/me").expect("matched");
        assert!(!me.route.requires_permission());
        let json = r#"{"route": [{"method": "SOCKET", "pattern": "/feed", "permission": "shop:feed:read", "action": "feed.read"}]}"#;
        let table = RouteTable::from_json(json).expect("valid");
        assert!(table.classify("GET", true, "/feed").is_ok());
        assert!(table.classify("GET", false, "/feed").is_err());
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let unknown_field =
            "[[route]]\nmethod = \"GET\"\npattern = \"/a\"\naction = \"a.b\"\nperms = \"x\"\n";
        assert!(matches!(
            RouteTable::from_toml(unknown_field),
            Err(RouteFileError::Toml(_))
        ));
        let bad_method = "[[route]]\nmethod = \"PATCH\"\npattern = \"/a\"\naction = \"a.b\"\n";
        assert!(RouteTable::from_toml(bad_method).is_err());
        let shadowed = format!("{SHOP}\n[[route]]\nmethod = \"GET\"\npattern = \"/orders/export\"\npermission = \"shop:order:read\"\naction = \"order.export\"\n");
        let error = RouteTable::from_toml(&shadowed).unwrap_err().to_string();
        assert!(error.contains("never reached"), "{error}");
    }
}
