//! Everything `rack-gateway serve` needs, validated.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use rack_gateway_core::rbac::Role;
use rack_gateway_core::settings::EnvOverrides;
use rack_gateway_layers::audit::Cidr;
use rack_gateway_layers::forward::{parse_pin, RackTarget, RackTls};

use super::audit::AuditKeys;
use crate::anchors::AnchorConfig;

use super::env::{ConfigError, Env};
use super::secret::Secret;
use super::sign_in::SignInConfig;
use super::store::StoreConfig;

/// The upstream rack.
#[derive(Clone, Debug)]
pub struct RackConfig {
    /// Where and how to reach the rack.
    pub target: RackTarget,
    /// Short name shown to users.
    pub alias: String,
    /// Longer name shown to users.
    pub display_name: String,
}

/// The server certificate and key for HTTPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The validated configuration of `serve`.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Main listener.
    pub listen: SocketAddr,
    /// Relaxed cookies and origins for local work.
    pub dev_mode: bool,
    /// Public host name.
    pub domain: Option<String>,
    /// Session, CSRF and MFA secret.
    pub app_secret_key: Secret,
    /// Audit chain key.
    pub audit_hmac_secret: Secret,
    /// Earlier audit keys that still verify old rows.
    pub audit_hmac_previous: Vec<Secret>,
    /// Where state lives.
    pub store: StoreConfig,
    /// The upstream rack.
    pub rack: RackConfig,
    /// HTTPS, when set.
    pub tls: Option<TlsFiles>,
    /// Users ensured at start-up, with their role.
    pub bootstrap_users: Vec<(String, Role)>,
    /// Setting overrides (`RGW_SETTING_*`, `RGW_APP_*_SETTING_*`), parsed and checked.
    pub settings_env: Arc<EnvOverrides>,
    /// JSON logs (default) or human-readable text.
    pub json_logs: bool,
    /// Peers whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Audit records older than this many days are pruned (up to the newest anchor).
    pub log_retention_days: u32,
    /// Extra env names treated as secrets (CONVOX_SECRET_ENV_VARS).
    pub secret_env_vars: Vec<String>,
    /// S3 Object Lock anchoring, when AUDIT_ANCHOR_BUCKET is set.
    pub anchors: Option<AnchorConfig>,
    /// Client connections open at once (MAX_CONNECTIONS).
    pub max_connections: usize,
    /// Human sign-in through OIDC; `None` when GOOGLE_CLIENT_ID is unset (sign-in is off).
    pub sign_in: Option<SignInConfig>,
}

impl ServeConfig {
    /// The audit chain keys.
    pub fn audit_keys(&self) -> AuditKeys {
        AuditKeys {
            current: self.audit_hmac_secret.clone(),
            previous: self.audit_hmac_previous.clone(),
        }
    }

    /// Reads and validates the environment of `serve`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let dev_mode = env.flag("DEV_MODE", false)?;
        let port: u16 = env.parsed("PORT", 8447)?;
        let bind: IpAddr = env.parsed("BIND", IpAddr::from([0, 0, 0, 0]))?;
        let domain = env.get("DOMAIN").map(str::to_owned);
        if domain.is_none() && !dev_mode {
            return Err(ConfigError::new(
                "DOMAIN",
                "is required (the public host name of the gateway) unless DEV_MODE=true",
            ));
        }
        if let Some(domain) = &domain {
            if domain.contains('/') || domain.contains(' ') {
                return Err(ConfigError::new(
                    "DOMAIN",
                    "must be a bare host name, without scheme or path",
                ));
            }
        }
        // Without DOMAIN (dev mode only) the gateway is reached on this machine.
        let public_host = domain
            .clone()
            .unwrap_or_else(|| format!("localhost:{port}"));
        let app_secret_key =
            Secret::from_base64("APP_SECRET_KEY", env.required("APP_SECRET_KEY")?)?;
        let audit_hmac_secret =
            Secret::from_text("AUDIT_HMAC_SECRET", env.required("AUDIT_HMAC_SECRET")?)?;
        if audit_hmac_secret.expose() == env.required("APP_SECRET_KEY")?.as_bytes()
            || audit_hmac_secret == app_secret_key
        {
            return Err(ConfigError::new(
                "AUDIT_HMAC_SECRET",
                "must differ from APP_SECRET_KEY",
            ));
        }
        let audit_hmac_previous = env
            .list("AUDIT_HMAC_PREVIOUS_SECRETS")
            .iter()
            .map(|raw| Secret::from_text("AUDIT_HMAC_PREVIOUS_SECRETS", raw))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match (env.get("TLS_CERT_FILE"), env.get("TLS_KEY_FILE")) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            }),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "TLS_KEY_FILE",
                    "is required when TLS_CERT_FILE is set",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "TLS_CERT_FILE",
                    "is required when TLS_KEY_FILE is set",
                ))
            }
        };
        let mut bootstrap_users = Vec::new();
        for (variable, role) in [
            ("VIEWER_USERS", Role::Viewer),
            ("OPERATIONS_USERS", Role::Ops),
            ("DEPLOYER_USERS", Role::Deployer),
            ("ADMIN_USERS", Role::Admin),
        ] {
            for email in env.list(variable) {
                if !email.contains('@') || email.len() > 254 {
                    return Err(ConfigError::new(
                        variable,
                        format!("{email:?} is not an email address"),
                    ));
                }
                bootstrap_users.push((email.to_ascii_lowercase(), role));
            }
        }
        Ok(ServeConfig {
            listen: SocketAddr::new(bind, port),
            dev_mode,
            domain,
            app_secret_key,
            audit_hmac_secret,
            audit_hmac_previous,
            store: StoreConfig::from_env(env)?,
            rack: RackConfig::from_env(env)?,
            tls,
            bootstrap_users,
            settings_env: Arc::new(env.settings_overrides()?),
            trusted_proxies: env
                .list("TRUSTED_PROXY_CIDRS")
                .iter()
                .map(|raw| {
                    raw.parse::<Cidr>()
                        .map_err(|e| ConfigError::new("TRUSTED_PROXY_CIDRS", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
            log_retention_days: {
                let days: u32 = env.parsed("LOG_RETENTION_DAYS", 400)?;
                if days == 0 {
                    return Err(ConfigError::new("LOG_RETENTION_DAYS", "must be at least 1"));
                }
                days
            },
            secret_env_vars: env.list("CONVOX_SECRET_ENV_VARS"),
            anchors: AnchorConfig::from_env(env)?,
            max_connections: max_connections(env)?,
            sign_in: SignInConfig::from_env(env, dev_mode, &public_host)?,
            json_logs: match env.get("LOG_FORMAT").unwrap_or("json") {
                "json" => true,
                "text" => false,
                other => {
                    return Err(ConfigError::new(
                        "LOG_FORMAT",
                        format!("expected json or text, got {other:?}"),
                    ))
                }
            },
        })
    }
}

/// Descriptors kept for everything but client connections: the store, logs, the listener.
const RESERVED_DESCRIPTORS: u64 = 128;
/// The default cap when the open-file limit allows more.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// The default cap however low the open-file limit: past it, accept's own shedding copes.
const MIN_DEFAULT_MAX_CONNECTIONS: usize = 16;
/// The default cap when the open-file limit cannot be read.
const UNKNOWN_LIMIT_MAX_CONNECTIONS: usize = 1024;

/// MAX_CONNECTIONS, checked against this process's open-file limit.
pub fn max_connections(env: &Env) -> Result<usize, ConfigError> {
    max_connections_within(env, open_file_limit())
}

/// MAX_CONNECTIONS given the soft open-file limit (`None` when unknown).
///
/// The default leaves room for one upstream connection per client connection plus
/// [`RESERVED_DESCRIPTORS`], so a full gateway still has descriptors to reach the rack with.
fn max_connections_within(env: &Env, fd_limit: Option<u64>) -> Result<usize, ConfigError> {
    let default = match fd_limit {
        None => UNKNOWN_LIMIT_MAX_CONNECTIONS,
        Some(limit) => {
            let fitting = limit.saturating_sub(RESERVED_DESCRIPTORS) / 2;
            usize::try_from(fitting)
                .unwrap_or(usize::MAX)
                .clamp(MIN_DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS)
        }
    };
    let max: usize = env.parsed("MAX_CONNECTIONS", default)?;
    if max == 0 {
        return Err(ConfigError::new("MAX_CONNECTIONS", "must be at least 1"));
    }
    if let Some(limit) = fd_limit {
        if u64::try_from(max).map_or(true, |max| max > limit) {
            return Err(ConfigError::new(
                "MAX_CONNECTIONS",
                format!(
                    "{max} is more than this process may open ({limit} files, see ulimit -n); \
                     lower it or raise the limit"
                ),
            ));
        }
    }
    Ok(max)
}

/// The soft limit on open files, when the platform tells.
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _hard)| soft)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

impl RackConfig {
    /// Reads RACK_HOST, RACK_TOKEN, RACK_USERNAME, RACK_TLS_VERIFY, RACK_TLS_PIN_SHA256 and names.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let host = env.required("RACK_HOST")?;
        // A bare host name means HTTPS: Convox rack APIs are served over TLS.
        let with_scheme = if host.contains("://") {
            host.to_owned()
        } else {
            format!("https://{host}")
        };
        let base: Uri = with_scheme
            .parse()
            .map_err(|e| ConfigError::new("RACK_HOST", format!("not a valid URL: {e}")))?;
        if !matches!(base.scheme_str(), Some("http" | "https")) || base.host().is_none() {
            return Err(ConfigError::new(
                "RACK_HOST",
                "must be an http:// or https:// URL with a host",
            ));
        }
        if base.query().is_some() {
            return Err(ConfigError::new(
                "RACK_HOST",
                "must not contain a query string",
            ));
        }
        let token = env.required("RACK_TOKEN")?.to_owned();
        let verify = env.flag("RACK_TLS_VERIFY", false)?;
        let tls = match env.get("RACK_TLS_PIN_SHA256") {
            Some(pin) => RackTls::Pinned(
                parse_pin(pin)
                    .map_err(|e| ConfigError::new("RACK_TLS_PIN_SHA256", e.to_string()))?,
            ),
            None if verify => RackTls::Verify,
            None => RackTls::Insecure,
        };
        let alias = env.get("RACK_ALIAS").unwrap_or("default").to_owned();
        Ok(RackConfig {
            target: RackTarget {
                base,
                username: env.get("RACK_USERNAME").unwrap_or("convox").to_owned(),
                token,
                tls,
                connect_timeout: Duration::from_secs(5),
                header_timeout: Duration::from_secs(60),
            },
            display_name: env.get("RACK_DISPLAY_NAME").unwrap_or(&alias).to_owned(),
            alias,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: [(&str, &str); 5] = [
        ("DOMAIN", "gateway.example.com"),
        (
            "APP_SECRET_KEY",
            "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8M=",
        ),
        ("AUDIT_HMAC_SECRET", "a-long-random-audit-secret-0123456789"),
        ("RACK_HOST", "rack.example.com:5443"),
        ("RACK_TOKEN", "rack-token"),
    ];

    fn env_with(overrides: &[(&'static str, &'static str)]) -> Env {
        let mut pairs: Vec<(&str, &str)> = GOOD.to_vec();
        pairs.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        pairs.extend(overrides.iter().filter(|(_, v)| !v.is_empty()));
        Env::from_pairs(pairs)
    }

    #[test]
    fn a_complete_environment_is_accepted() {
        let config = ServeConfig::from_env(&env_with(&[])).unwrap();
        assert_eq!(config.listen.port(), 8447);
        assert_eq!(config.rack.target.base.scheme_str(), Some("https"));
        assert!(matches!(config.rack.target.tls, RackTls::Insecure));
        assert!(config.settings_env.is_empty());
        assert!(
            config.sign_in.is_none(),
            "sign-in is off without GOOGLE_CLIENT_ID"
        );
    }

    #[test]
    fn sign_in_callbacks_are_on_the_domain() {
        use crate::config::SignInKind;
        let env = env_with(&[
            ("GOOGLE_CLIENT_ID", "id"),
            ("GOOGLE_CLIENT_SECRET", "secret"),
        ]);
        let sign_in = ServeConfig::from_env(&env).unwrap().sign_in.unwrap();
        assert_eq!(
            sign_in.redirect_uri(SignInKind::Web).as_str(),
            "https://gateway.example.com/api/v1/auth/web/callback"
        );
        let dev = env_with(&[
            ("DOMAIN", ""),
            ("DEV_MODE", "true"),
            ("PORT", "9447"),
            ("GOOGLE_CLIENT_ID", "id"),
            ("GOOGLE_CLIENT_SECRET", "secret"),
        ]);
        let sign_in = ServeConfig::from_env(&dev).unwrap().sign_in.unwrap();
        assert_eq!(
            sign_in.redirect_uri(SignInKind::Cli).as_str(),
            "http://localhost:9447/api/v1/auth/cli/callback"
        );
    }

    #[test]
    fn each_problem_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("DOMAIN", "")], "DOMAIN"),
            (&[("APP_SECRET_KEY", "")], "APP_SECRET_KEY"),
            (&[("APP_SECRET_KEY", "c2hvcnQ=")], "APP_SECRET_KEY"),
            (&[("AUDIT_HMAC_SECRET", "short")], "AUDIT_HMAC_SECRET"),
            (&[("RACK_HOST", "")], "RACK_HOST"),
            (&[("RACK_TOKEN", "")], "RACK_TOKEN"),
            (&[("PORT", "99999")], "PORT"),
            (&[("RACK_TLS_VERIFY", "maybe")], "RACK_TLS_VERIFY"),
            (&[("RACK_TLS_PIN_SHA256", "zz")], "RACK_TLS_PIN_SHA256"),
            (&[("TLS_CERT_FILE", "/x.pem")], "TLS_KEY_FILE"),
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (&[("ADMIN_USERS", "not-an-email")], "ADMIN_USERS"),
            (
                &[("TRUSTED_PROXY_CIDRS", "10.0.0.0/99")],
                "TRUSTED_PROXY_CIDRS",
            ),
            (&[("LOG_RETENTION_DAYS", "0")], "LOG_RETENTION_DAYS"),
            (&[("MAX_CONNECTIONS", "0")], "MAX_CONNECTIONS"),
            (&[("MAX_CONNECTIONS", "lots")], "MAX_CONNECTIONS"),
            (&[("MAX_CONNECTIONS", "-1")], "MAX_CONNECTIONS"),
            (&[("GOOGLE_CLIENT_ID", "id")], "GOOGLE_CLIENT_SECRET"),
            (&[("GOOGLE_CLIENT_SECRET", "secret")], "GOOGLE_CLIENT_ID"),
            (
                &[
                    ("GOOGLE_CLIENT_ID", "id"),
                    ("GOOGLE_CLIENT_SECRET", "secret"),
                    ("GOOGLE_OAUTH_BASE_URL", "http://idp.example.com"),
                ],
                "GOOGLE_OAUTH_BASE_URL",
            ),
            (
                &[("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "maybe")],
                "RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS",
            ),
            (
                &[("RGW_APP_WEB_SETTING_SESSION_TIMEOUT", "5")],
                "RGW_APP_WEB_SETTING_SESSION_TIMEOUT",
            ),
        ];
        for (overrides, variable) in cases {
            let env = env_with(overrides);
            let err = ServeConfig::from_env(&env).unwrap_err();
            assert_eq!(err.variable, *variable, "{overrides:?}: {err}");
        }
    }

    #[test]
    fn the_same_secret_twice_is_refused() {
        let same = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8M=";
        let env = env_with(&[("APP_SECRET_KEY", same), ("AUDIT_HMAC_SECRET", same)]);
        assert_eq!(
            ServeConfig::from_env(&env).unwrap_err().variable,
            "AUDIT_HMAC_SECRET"
        );
    }

    #[test]
    fn the_connection_cap_fits_the_open_file_limit() {
        let unset = Env::default();
        let cap = |limit| max_connections_within(&unset, limit).unwrap();
        assert_eq!(
            cap(Some(1024)),
            448,
            "half of what is left after the reserve"
        );
        assert_eq!(cap(Some(20_000)), 9_936);
        assert_eq!(cap(Some(1 << 20)), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(cap(Some(64)), 16, "never below a handful");
        assert_eq!(cap(None), 1024);

        let set = |value| Env::from_pairs([("MAX_CONNECTIONS", value)]);
        assert_eq!(max_connections_within(&set("500"), Some(1024)), Ok(500));
        assert_eq!(max_connections_within(&set("1024"), Some(1024)), Ok(1024));
        let err = max_connections_within(&set("1025"), Some(1024)).unwrap_err();
        assert_eq!(err.variable, "MAX_CONNECTIONS");
        assert!(err.problem.contains("1024"), "{err}");
        assert_eq!(
            max_connections_within(&set("50000"), None),
            Ok(50_000),
            "without a known limit the value is trusted"
        );
    }

    #[test]
    fn dev_mode_does_not_need_a_domain() {
        let env = env_with(&[("DOMAIN", ""), ("DEV_MODE", "true")]);
        assert!(ServeConfig::from_env(&env).unwrap().domain.is_none());
    }
}
