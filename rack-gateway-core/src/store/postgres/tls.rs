//! TLS for PostgreSQL connections, configured as libpq is: `sslmode` and `sslrootcert` in
//! DATABASE_URL.
//!
//! tokio-postgres only knows `disable`, `prefer` and `require`, and rejects `sslrootcert`, so
//! both parameters are taken out of the connection string here (URL and `key=value` forms alike)
//! and turned into a rustls client configuration with the ring provider:
//!
//! | sslmode | TLS | certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it | not checked |
//! | `require` | always | not checked |
//! | `verify-ca` | always | chain checked against `sslrootcert`, else the system roots |
//! | `verify-full` | always | chain and host name checked |
//!
//! As in libpq, an explicit `sslrootcert` also makes `prefer` and `require` check the chain (not
//! the host name). Unlike libpq, `prefer` does not retry without TLS when the handshake fails.

use std::error::Error as StdError;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode as DriverSslMode;
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StoreError;

/// Names the `sslmode` parameter in errors.
const SSLMODE_FIELD: &str = "DATABASE_URL sslmode";
/// Names the `sslrootcert` parameter in errors.
const SSLROOTCERT_FIELD: &str = "DATABASE_URL sslrootcert";

/// The libpq `sslmode` values the store understands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it.
    #[default]
    Prefer,
    /// TLS always; any certificate.
    Require,
    /// TLS always; a trusted chain, any host name.
    VerifyCa,
    /// TLS always; a trusted chain naming the host.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => {
                // Echo the value only when it looks like a mode name, so that a pasted secret
                // never ends up in an error message.
                let shown = if other.len() <= 32
                    && other
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    format!("`{other}` is not")
                } else {
                    "the value is not".to_owned()
                };
                Err(StoreError::Invalid {
                    field: SSLMODE_FIELD,
                    reason: format!(
                        "{shown} one of disable, prefer, require, verify-ca, verify-full"
                    ),
                })
            }
        }
    }

    /// What tokio-postgres itself is told: it only decides whether to ask for TLS.
    fn driver_mode(self) -> DriverSslMode {
        match self {
            SslMode::Disable => DriverSslMode::Disable,
            SslMode::Prefer => DriverSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
        }
    }
}

/// The TLS parameters found in (and removed from) a connection string.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsParams {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

impl TlsParams {
    /// Keeps `value` if `key` is one of ours; true when it was (the last one given wins, as in
    /// libpq and tokio-postgres).
    fn take(&mut self, key: &str, value: String) -> bool {
        match key {
            "sslmode" => self.sslmode = Some(value),
            "sslrootcert" => self.sslrootcert = Some(value),
            _ => return false,
        }
        true
    }
}

/// Parses DATABASE_URL into the driver's configuration and the TLS connector its `sslmode` asks
/// for.
pub(super) fn configure(url: &str) -> Result<(Config, MakeRustlsConnect), StoreError> {
    let (rest, params) = split_tls_params(url)?;
    let mut config = Config::from_str(&rest).map_err(|e| StoreError::Invalid {
        field: "DATABASE_URL",
        reason: describe_error(&e),
    })?;
    let mode = params
        .sslmode
        .as_deref()
        .map(SslMode::parse)
        .transpose()?
        .unwrap_or_default();
    config.ssl_mode(mode.driver_mode());
    let root_cert = params.sslrootcert.map(PathBuf::from);
    let tls = client_config(mode, root_cert.as_deref())?;
    Ok((config, MakeRustlsConnect::new(tls)))
}

/// Splits `sslmode` and `sslrootcert` off a connection string, leaving the rest as it was.
fn split_tls_params(url: &str) -> Result<(String, TlsParams), StoreError> {
    let after_scheme = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme).map(|_| scheme.len()));
    match after_scheme {
        Some(start) => split_url(url, start),
        None => split_key_values(url),
    }
}

/// URL form: the query starts at the first `?` after the userinfo, which (as tokio-postgres reads
/// it) ends at the first `@`, so a `?` in the password is never taken for the query.
fn split_url(url: &str, start: usize) -> Result<(String, TlsParams), StoreError> {
    let host_start = url[start..].find('@').map_or(start, |at| start + at + 1);
    let Some(question) = url[host_start..].find('?').map(|q| host_start + q) else {
        return Ok((url.to_owned(), TlsParams::default()));
    };
    let mut params = TlsParams::default();
    let mut kept: Vec<&str> = Vec::new();
    let mut removed = false;
    let mut query = &url[question + 1..];
    while !query.is_empty() {
        // tokio-postgres reads a key up to the next `=`, then the value up to the next `&`;
        // reading the same way keeps both parsers in step.
        let Some(equals) = query.find('=') else {
            kept.push(query);
            break;
        };
        let pair_end = query[equals + 1..]
            .find('&')
            .map_or(query.len(), |amp| equals + 1 + amp);
        let pair = &query[..pair_end];
        let key = percent_decode_str(&query[..equals]).decode_utf8_lossy();
        if matches!(key.as_ref(), "sslmode" | "sslrootcert") {
            let field = if key == "sslmode" {
                SSLMODE_FIELD
            } else {
                SSLROOTCERT_FIELD
            };
            let value = percent_decode_str(&query[equals + 1..pair_end])
                .decode_utf8()
                .map_err(|_| StoreError::Invalid {
                    field,
                    reason: "not valid UTF-8 once percent-decoded".into(),
                })?;
            params.take(&key, value.into_owned());
            removed = true;
        } else {
            kept.push(pair);
        }
        query = query.get(pair_end + 1..).unwrap_or("");
    }
    if !removed {
        return Ok((url.to_owned(), params));
    }
    let mut rest = url[..question].to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok((rest, params))
}

/// `key=value` form (libpq's, as tokio-postgres reads it): values may be single-quoted, and a
/// backslash escapes the next character. Our parameters are cut out, the rest kept byte for byte.
fn split_key_values(text: &str) -> Result<(String, TlsParams), StoreError> {
    let mut params = TlsParams::default();
    let mut rest = String::with_capacity(text.len());
    let mut copied = 0;
    let mut chars = text.char_indices().peekable();
    let invalid = |reason: &str| StoreError::Invalid {
        field: "DATABASE_URL",
        reason: reason.to_owned(),
    };
    loop {
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(key_start, _)) = chars.peek() else {
            break;
        };
        while chars
            .next_if(|&(_, c)| !c.is_whitespace() && c != '=')
            .is_some()
        {}
        let key_end = chars.peek().map_or(text.len(), |&(at, _)| at);
        let key = &text[key_start..key_end];
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|&(_, c)| c == '=').is_none() {
            return Err(invalid("expected `=` after a parameter name"));
        }
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if(|&(_, c)| c == '\'').is_some();
        let mut value = String::new();
        let mut closed = !quoted;
        while let Some(&(_, c)) = chars.peek() {
            if quoted && c == '\'' {
                chars.next();
                closed = true;
                break;
            }
            if !quoted && c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '\\' {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            } else {
                value.push(c);
            }
        }
        if !closed {
            return Err(invalid("unterminated quoted parameter value"));
        }
        let value_end = chars.peek().map_or(text.len(), |&(at, _)| at);
        if params.take(key, value) {
            rest.push_str(&text[copied..key_start]);
            copied = value_end;
        }
    }
    rest.push_str(&text[copied..]);
    Ok((rest, params))
}

/// Builds the rustls configuration for `mode`, with the ring provider passed explicitly.
fn client_config(mode: SslMode, root_cert: Option<&Path>) -> Result<ClientConfig, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match (mode, root_cert) {
        // No handshake ever happens: the file is not even read (libpq does the same).
        (SslMode::Disable, _) => None,
        (_, Some(path)) => Some(read_root_cert(path)?),
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => Some(system_roots()?),
        (SslMode::Prefer | SslMode::Require, None) => None,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Invalid {
            field: SSLMODE_FIELD,
            reason: format!("TLS set-up failed: {e}"),
        })?;
    let config = match (mode, roots) {
        (SslMode::VerifyFull, Some(roots)) => {
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| StoreError::Invalid {
                    field: SSLROOTCERT_FIELD,
                    reason: format!("cannot build a certificate verifier: {e}"),
                })?;
            builder.with_webpki_verifier(verifier).with_no_client_auth()
        }
        (_, roots) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainVerifier {
                roots: roots.map(Arc::new),
                provider,
            }))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// The trust anchors in a PEM file (`sslrootcert`).
fn read_root_cert(path: &Path) -> Result<RootCertStore, StoreError> {
    let invalid = |reason: String| StoreError::Invalid {
        field: SSLROOTCERT_FIELD,
        reason,
    };
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| invalid(format!("cannot read {shown}: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("{shown} is not valid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("{shown} holds an unusable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid(format!("{shown} holds no PEM certificate")));
    }
    Ok(roots)
}

/// The operating system's trust anchors, for verify-ca and verify-full without `sslrootcert`.
fn system_roots() -> Result<RootCertStore, StoreError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    // Unparsable system certificates are skipped, as every TLS client does.
    let (_added, _skipped) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none installed".to_owned(), ToString::to_string);
        return Err(StoreError::Invalid {
            field: SSLROOTCERT_FIELD,
            reason: format!("not given, and no system root certificate could be loaded ({why})"),
        });
    }
    Ok(roots)
}

/// Checks the chain against `roots` but never the host name (verify-ca, or prefer/require with
/// `sslrootcert`); without roots accepts any certificate (prefer/require: encryption against
/// passive eavesdropping only, as libpq). Handshake signatures are always checked, so the server
/// must still hold the key of the certificate it presents.
#[derive(Debug)]
struct ChainVerifier {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One line for a driver or pool error with every cause, since tokio-postgres' own message only
/// names the kind ("error performing TLS handshake"); a TLS failure is spelled out.
///
/// Neither the driver nor the server puts the password in an error, and the connection string is
/// never formatted here.
pub(super) fn describe_error(error: &(dyn StdError + 'static)) -> String {
    let mut out = String::new();
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(tls) = rustls_error(current) {
            if !out.contains("TLS") {
                push_part(&mut out, "TLS handshake failed");
            }
            push_part(&mut out, &explain_tls(tls));
            break;
        }
        push_part(&mut out, &current.to_string());
        next = current.source();
    }
    out
}

/// Appends `part` unless the text so far already ends with it (wrappers often repeat their cause).
fn push_part(out: &mut String, part: &str) {
    if part.is_empty() || out.ends_with(part) {
        return;
    }
    if !out.is_empty() {
        out.push_str(": ");
    }
    out.push_str(part);
}

/// The rustls error in `error`, also when wrapped in an `io::Error` (whose `source` skips it).
fn rustls_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    error.downcast_ref::<rustls::Error>().or_else(|| {
        error
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

/// The rustls error, preceded by what it means for the person fixing DATABASE_URL.
fn explain_tls(error: &rustls::Error) -> String {
    let meaning = match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "server certificate not trusted (its issuer is not the sslrootcert CA, or without \
             sslrootcert not a system root)"
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            "server certificate does not name the host connected to (sslmode=verify-full checks it)"
        }
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "server certificate expired",
        rustls::Error::InvalidCertificate(_) => "server certificate refused",
        _ => return error.to_string(),
    };
    format!("{meaning}: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, TlsParams) {
        split_tls_params(url).unwrap()
    }

    /// The error `configure` gives for `url`, as shown.
    fn refusal(url: &str) -> String {
        match configure(url) {
            Ok(_) => panic!("accepted: {url}"),
            Err(error) => error.to_string(),
        }
    }

    fn params(sslmode: Option<&str>, sslrootcert: Option<&str>) -> TlsParams {
        TlsParams {
            sslmode: sslmode.map(str::to_owned),
            sslrootcert: sslrootcert.map(str::to_owned),
        }
    }

    #[test]
    fn url_parameters_are_taken_out() {
        assert_eq!(
            split("postgres://u:pw@db:5432/app?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem"),
            (
                "postgres://u:pw@db:5432/app".to_owned(),
                params(Some("verify-full"), Some("/etc/ca.pem"))
            )
        );
        assert_eq!(
            split("postgresql://db/app?connect_timeout=3&sslmode=require&application_name=x"),
            (
                "postgresql://db/app?connect_timeout=3&application_name=x".to_owned(),
                params(Some("require"), None)
            )
        );
        assert_eq!(
            split("postgres://db/app?sslmode=disable&sslmode=verify-ca"),
            (
                "postgres://db/app".to_owned(),
                params(Some("verify-ca"), None)
            )
        );
        assert_eq!(
            split("postgres://db?sslrootcert=/ca.pem"),
            ("postgres://db".to_owned(), params(None, Some("/ca.pem")))
        );
        for unchanged in [
            "postgres://db/app",
            "postgres://u:pw@db/app?connect_timeout=3",
            "postgres://db/app?",
        ] {
            assert_eq!(
                split(unchanged),
                (unchanged.to_owned(), TlsParams::default())
            );
        }
    }

    #[test]
    fn a_question_mark_in_the_password_is_not_the_query() {
        assert_eq!(
            split("postgres://u:a?sslmode=b@db/app?sslmode=require"),
            (
                "postgres://u:a?sslmode=b@db/app".to_owned(),
                params(Some("require"), None)
            )
        );
    }

    #[test]
    fn key_value_parameters_are_taken_out() {
        let (rest, found) = split(
            "host=db sslmode=verify-full user=u sslrootcert='/etc/my ca\\'s.pem' password=p\\ w",
        );
        assert_eq!(rest, "host=db  user=u  password=p\\ w");
        assert_eq!(found, params(Some("verify-full"), Some("/etc/my ca's.pem")));
        let (rest, found) = split("  sslmode = require");
        assert_eq!(rest, "  ");
        assert_eq!(found, params(Some("require"), None));
        assert!(split_tls_params("host=db sslmode='require").is_err());
        assert!(split_tls_params("host").is_err());
    }

    #[test]
    fn the_driver_sees_what_is_left() {
        let (config, _) = configure("postgres://u:pw@db:6543/app?sslmode=require").unwrap();
        assert_eq!(config.get_ssl_mode(), DriverSslMode::Require);
        for verifying in [SslMode::VerifyCa, SslMode::VerifyFull] {
            assert_eq!(verifying.driver_mode(), DriverSslMode::Require);
        }
        assert_eq!(config.get_ports(), [6543]);
        assert_eq!(config.get_dbname(), Some("app"));
        let (config, _) = configure("host=db user=u").unwrap();
        assert_eq!(config.get_ssl_mode(), DriverSslMode::Prefer);
        let (config, _) = configure("host=db sslmode=disable").unwrap();
        assert_eq!(config.get_ssl_mode(), DriverSslMode::Disable);
    }

    #[test]
    fn unknown_modes_are_refused_without_echoing_secrets() {
        let text = refusal("postgres://u:hunter2@db/app?sslmode=verify_full");
        assert!(text.contains("DATABASE_URL sslmode"), "{text}");
        assert!(text.contains("`verify_full`"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");

        let text = refusal("postgres://u:pw@db/app?sslmode=hunter2%20secret");
        assert!(text.contains("sslmode"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn bad_root_certs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "just text\n").unwrap();
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for path in [&missing, &not_pem, &broken] {
            let url = format!(
                "postgres://u:hunter2@db/app?sslmode=verify-full&sslrootcert={}",
                path.display()
            );
            let text = refusal(&url);
            assert!(text.contains("DATABASE_URL sslrootcert"), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
        // Never read when TLS is off.
        let url = format!(
            "postgres://db/app?sslmode=disable&sslrootcert={}",
            missing.display()
        );
        assert!(configure(&url).is_ok());
    }

    #[test]
    fn tls_failures_say_so() {
        let inner = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let text = describe_error(&inner);
        assert!(
            text.starts_with("TLS handshake failed: server certificate not trusted"),
            "{text}"
        );
        let plain = io::Error::other("connection refused");
        assert_eq!(describe_error(&plain), "connection refused");
    }
}
