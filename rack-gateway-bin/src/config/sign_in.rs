//! Human sign-in through an OpenID Connect provider (Google Workspace): [`SignInConfig`].
//!
//! Sign-in is off unless `GOOGLE_CLIENT_ID` is set; then `GOOGLE_CLIENT_SECRET` is required
//! too. `GOOGLE_OAUTH_BASE_URL` (default `https://accounts.google.com`) is the issuer;
//! `GOOGLE_ALLOWED_DOMAIN` restricts sign-in to one Workspace domain.
//!
//! ```
//! use rack_gateway_bin::config::{Env, SignInConfig, SignInKind};
//!
//! let env = Env::from_pairs([
//!     ("GOOGLE_CLIENT_ID", "client-id.apps.googleusercontent.com"),
//!     ("GOOGLE_CLIENT_SECRET", "client-secret"),
//!     ("GOOGLE_ALLOWED_DOMAIN", "Example.com"),
//! ]);
//! let config = SignInConfig::from_env(&env, false, "gateway.example.com")
//!     .unwrap()
//!     .expect("sign-in is configured");
//! assert_eq!(config.issuer, "https://accounts.google.com");
//! assert_eq!(config.allowed_domain.as_deref(), Some("example.com"));
//! assert_eq!(
//!     config.redirect_uri(SignInKind::Cli).as_str(),
//!     "https://gateway.example.com/api/v1/auth/cli/callback"
//! );
//! assert!(!format!("{config:?}").contains("client-secret"));
//! ```

use std::net::IpAddr;

use url::Url;

use super::env::{ConfigError, Env};
use super::secret::Secret;

/// The issuer used when `GOOGLE_OAUTH_BASE_URL` is unset.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// The validated sign-in settings; `Debug` never shows the client secret.
#[derive(Clone, Debug)]
pub struct SignInConfig {
    /// The OAuth client id (`GOOGLE_CLIENT_ID`).
    pub client_id: String,
    /// The OAuth client secret (`GOOGLE_CLIENT_SECRET`).
    pub client_secret: Secret,
    /// The only Workspace domain allowed to sign in, lower-cased (`GOOGLE_ALLOWED_DOMAIN`).
    pub allowed_domain: Option<String>,
    /// The issuer, exactly as the provider names itself: no trailing slash
    /// (`GOOGLE_OAUTH_BASE_URL`).
    pub issuer: String,
    /// Which plain-HTTP addresses the OIDC client may talk to.
    pub plain_http: PlainHttpPolicy,
    web_callback: Url,
    cli_callback: Url,
}

/// Which callback the provider sends the browser back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInKind {
    /// Browser sign-in: `/api/v1/auth/web/callback`.
    Web,
    /// `rack-gateway login`: `/api/v1/auth/cli/callback`.
    Cli,
}

/// Where the OIDC client may use `http://` instead of `https://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainHttpPolicy {
    /// Only to loopback hosts (a provider on the same machine, as in tests).
    LoopbackOnly,
    /// Anywhere (DEV_MODE=true).
    Anywhere,
}

impl PlainHttpPolicy {
    /// Whether a request to `scheme://host` is allowed.
    pub fn permits(self, scheme: &str, host: &str) -> bool {
        match scheme {
            "https" => true,
            "http" => self == PlainHttpPolicy::Anywhere || is_loopback_host(host),
            _ => false,
        }
    }
}

/// `localhost`, `*.localhost`, or a loopback IP address (IPv6 with or without brackets).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl SignInConfig {
    /// Reads the `GOOGLE_*` variables; `Ok(None)` when `GOOGLE_CLIENT_ID` and
    /// `GOOGLE_CLIENT_SECRET` are both unset (human sign-in is off).
    ///
    /// `public_host` is the gateway's public host (DOMAIN, or `localhost:PORT` in dev mode);
    /// the callbacks are `https://` on it, `http://` when `dev_mode`.
    pub fn from_env(
        env: &Env,
        dev_mode: bool,
        public_host: &str,
    ) -> Result<Option<Self>, ConfigError> {
        let (client_id, client_secret) =
            match (env.get("GOOGLE_CLIENT_ID"), env.get("GOOGLE_CLIENT_SECRET")) {
                (None, None) => return Ok(None),
                (Some(id), Some(secret)) => (id, secret),
                (Some(_), None) => {
                    return Err(ConfigError::new(
                        "GOOGLE_CLIENT_SECRET",
                        "is required when GOOGLE_CLIENT_ID is set",
                    ))
                }
                (None, Some(_)) => {
                    return Err(ConfigError::new(
                        "GOOGLE_CLIENT_ID",
                        "is required when GOOGLE_CLIENT_SECRET is set",
                    ))
                }
            };
        if client_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError::new(
                "GOOGLE_CLIENT_ID",
                "must not contain spaces or control characters",
            ));
        }
        let plain_http = if dev_mode {
            PlainHttpPolicy::Anywhere
        } else {
            PlainHttpPolicy::LoopbackOnly
        };
        let issuer = issuer(
            env.get("GOOGLE_OAUTH_BASE_URL").unwrap_or(GOOGLE_ISSUER),
            plain_http,
        )?;
        let allowed_domain = env
            .get("GOOGLE_ALLOWED_DOMAIN")
            .map(allowed_domain)
            .transpose()?;
        let scheme = if dev_mode { "http" } else { "https" };
        Ok(Some(SignInConfig {
            client_id: client_id.to_owned(),
            client_secret: Secret::new(client_secret.as_bytes().to_vec()),
            allowed_domain,
            issuer,
            plain_http,
            web_callback: callback(scheme, public_host, "web")?,
            cli_callback: callback(scheme, public_host, "cli")?,
        }))
    }

    /// The redirect URI registered with the provider for `kind`.
    pub fn redirect_uri(&self, kind: SignInKind) -> &Url {
        match kind {
            SignInKind::Web => &self.web_callback,
            SignInKind::Cli => &self.cli_callback,
        }
    }
}

/// GOOGLE_OAUTH_BASE_URL: an absolute http(s) URL without credentials, query or fragment.
fn issuer(raw: &str, plain_http: PlainHttpPolicy) -> Result<String, ConfigError> {
    const VARIABLE: &str = "GOOGLE_OAUTH_BASE_URL";
    let url = Url::parse(raw)
        .map_err(|e| ConfigError::new(VARIABLE, format!("not an absolute URL: {e}")))?;
    let host = match url.host_str() {
        Some(host) if matches!(url.scheme(), "http" | "https") => host,
        _ => {
            return Err(ConfigError::new(
                VARIABLE,
                "must be an http:// or https:// URL with a host",
            ))
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(VARIABLE, "must not contain credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            VARIABLE,
            "must not contain a query or a fragment",
        ));
    }
    if !plain_http.permits(url.scheme(), host) {
        return Err(ConfigError::new(
            VARIABLE,
            "must be https:// (http:// only for a loopback host, or with DEV_MODE=true)",
        ));
    }
    // The provider's discovery document must name exactly this issuer, and providers name
    // themselves without a trailing slash (`https://accounts.google.com`).
    Ok(raw.trim_end_matches('/').to_owned())
}

/// GOOGLE_ALLOWED_DOMAIN: a bare DNS name such as `example.com`, lower-cased.
fn allowed_domain(raw: &str) -> Result<String, ConfigError> {
    let domain = raw.to_ascii_lowercase();
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok || !domain.contains('.') || domain.len() > 253 {
        return Err(ConfigError::new(
            "GOOGLE_ALLOWED_DOMAIN",
            "must be a domain name such as example.com (no @, scheme or path)",
        ));
    }
    Ok(domain)
}

/// One callback URL on the public host.
fn callback(scheme: &str, public_host: &str, kind: &str) -> Result<Url, ConfigError> {
    Url::parse(&format!(
        "{scheme}://{public_host}/api/v1/auth/{kind}/callback"
    ))
    .map_err(|e| {
        ConfigError::new(
            "DOMAIN",
            format!("cannot build the sign-in callback URL from it: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: [(&str, &str); 2] = [
        ("GOOGLE_CLIENT_ID", "id.apps.googleusercontent.com"),
        ("GOOGLE_CLIENT_SECRET", "GOCSPX-not-a-real-secret"),
    ];

    fn parse(
        extra: &[(&'static str, &'static str)],
        dev_mode: bool,
    ) -> Result<SignInConfig, ConfigError> {
        let env = Env::from_pairs(CLIENT.iter().chain(extra).copied());
        SignInConfig::from_env(&env, dev_mode, "gateway.example.com")
            .map(|config| config.expect("configured"))
    }

    fn refused_variable(extra: &[(&'static str, &'static str)], dev_mode: bool) -> &'static str {
        parse(extra, dev_mode).expect_err("refused").variable
    }

    #[test]
    fn without_a_client_id_or_secret_sign_in_is_off() {
        let env = Env::from_pairs([("GOOGLE_ALLOWED_DOMAIN", "example.com")]);
        assert!(SignInConfig::from_env(&env, false, "gateway.example.com")
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_client_id_needs_a_secret_and_the_reverse() {
        let only_id = Env::from_pairs([CLIENT[0]]);
        let err = SignInConfig::from_env(&only_id, false, "g.example.com").unwrap_err();
        assert_eq!(err.variable, "GOOGLE_CLIENT_SECRET");
        assert_eq!(
            err.to_string(),
            "GOOGLE_CLIENT_SECRET: is required when GOOGLE_CLIENT_ID is set"
        );
        let only_secret = Env::from_pairs([CLIENT[1]]);
        let err = SignInConfig::from_env(&only_secret, false, "g.example.com").unwrap_err();
        assert_eq!(err.variable, "GOOGLE_CLIENT_ID");
    }

    #[test]
    fn defaults_to_google_with_https_callbacks() {
        let config = parse(&[], false).unwrap();
        assert_eq!(config.issuer, GOOGLE_ISSUER);
        assert_eq!(config.allowed_domain, None);
        assert_eq!(config.plain_http, PlainHttpPolicy::LoopbackOnly);
        assert_eq!(
            config.redirect_uri(SignInKind::Web).as_str(),
            "https://gateway.example.com/api/v1/auth/web/callback"
        );
        assert_eq!(
            config.redirect_uri(SignInKind::Cli).as_str(),
            "https://gateway.example.com/api/v1/auth/cli/callback"
        );
    }

    #[test]
    fn dev_mode_callbacks_are_plain_http() {
        let env = Env::from_pairs(CLIENT);
        let config = SignInConfig::from_env(&env, true, "localhost:8447")
            .unwrap()
            .unwrap();
        assert_eq!(
            config.redirect_uri(SignInKind::Web).as_str(),
            "http://localhost:8447/api/v1/auth/web/callback"
        );
        assert_eq!(config.plain_http, PlainHttpPolicy::Anywhere);
    }

    #[test]
    fn the_issuer_is_an_https_url_or_plain_http_on_loopback() {
        for good in [
            "https://accounts.google.com",
            "https://idp.example.com/realms/staff",
            "http://127.0.0.1:9400",
            "http://localhost:9400",
            "http://[::1]:9400",
        ] {
            let env = Env::from_pairs(CLIENT.into_iter().chain([("GOOGLE_OAUTH_BASE_URL", good)]));
            let config = SignInConfig::from_env(&env, false, "g.example.com");
            assert_eq!(config.unwrap().unwrap().issuer, good);
        }
        for bad in [
            "accounts.google.com",
            "ftp://accounts.google.com",
            "http://accounts.example.com",
            "http://10.0.0.1:9400",
            "https://user:pw@accounts.google.com",
            "https://accounts.google.com/?x=1",
            "https://accounts.google.com/#top",
            "https://",
        ] {
            let env = Env::from_pairs(CLIENT.into_iter().chain([("GOOGLE_OAUTH_BASE_URL", bad)]));
            let err = SignInConfig::from_env(&env, false, "g.example.com").unwrap_err();
            assert_eq!(err.variable, "GOOGLE_OAUTH_BASE_URL", "{bad}: {err}");
        }
    }

    #[test]
    fn dev_mode_allows_a_plain_http_issuer_anywhere() {
        let config = parse(
            &[("GOOGLE_OAUTH_BASE_URL", "http://idp.internal:3345")],
            true,
        );
        assert_eq!(config.unwrap().issuer, "http://idp.internal:3345");
    }

    #[test]
    fn the_trailing_slash_of_the_issuer_is_dropped() {
        let config = parse(
            &[("GOOGLE_OAUTH_BASE_URL", "https://accounts.google.com/")],
            false,
        );
        assert_eq!(config.unwrap().issuer, "https://accounts.google.com");
    }

    #[test]
    fn the_allowed_domain_is_a_lower_cased_domain_name() {
        let config = parse(&[("GOOGLE_ALLOWED_DOMAIN", "Example.COM")], false).unwrap();
        assert_eq!(config.allowed_domain.as_deref(), Some("example.com"));
        for bad in [
            "@example.com",
            "example",
            "https://example.com",
            "ex ample.com",
            "-x.com",
            "a..b",
        ] {
            let env = Env::from_pairs(CLIENT.into_iter().chain([("GOOGLE_ALLOWED_DOMAIN", bad)]));
            let err = SignInConfig::from_env(&env, false, "g.example.com").unwrap_err();
            assert_eq!(err.variable, "GOOGLE_ALLOWED_DOMAIN", "{bad}");
        }
    }

    #[test]
    fn a_client_id_with_spaces_is_refused() {
        assert_eq!(
            refused_variable(&[("GOOGLE_CLIENT_ID", "two words")], false),
            "GOOGLE_CLIENT_ID"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let config = parse(&[], false).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("not-a-real-secret"), "{shown}");
        assert!(shown.contains("id.apps.googleusercontent.com"));
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "a.localhost",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1",
            "localhost.example.com",
            "[::2]",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
