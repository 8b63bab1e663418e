//! The rustls client configuration for the rack, and the verifier used for the `Insecure` and
//! `Pinned` modes.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, SignatureScheme};
use subtle::ConstantTimeEq as _;

use super::config::{fingerprint_hex, ForwardConfigError, RackTls};
use crate::error::RackCertificateMismatch;

/// Builds the one client configuration used for every connection to the rack.
///
/// The ring provider is passed explicitly, so this does not depend on a process-wide default.
pub(crate) fn client_config(tls: &RackTls) -> Result<ClientConfig, ForwardConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match tls {
        RackTls::Verify => {
            use hyper_rustls::ConfigBuilderExt as _;
            builder
                .with_native_roots()
                .map_err(ForwardConfigError::NoRootCertificates)?
                .with_no_client_auth()
        }
        RackTls::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RackCertVerifier::new(&provider, None)))
            .with_no_client_auth(),
        RackTls::Pinned(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RackCertVerifier::new(
                &provider,
                Some(*pin),
            )))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Accepts the rack's certificate without a chain check, optionally requiring its SHA-256
/// fingerprint to equal a pin.
///
/// Handshake signatures are still verified with the provider's algorithms, so the peer must hold
/// the private key of the certificate it presents: with a pin, that means the pinned key.
#[derive(Debug)]
pub(crate) struct RackCertVerifier {
    pin: Option<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

// === impl RackCertVerifier ===

impl RackCertVerifier {
    pub(crate) fn new(provider: &CryptoProvider, pin: Option<[u8; 32]>) -> Self {
        Self {
            pin,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for RackCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pin) = &self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        let actual = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        if bool::from(actual.as_ref().ct_eq(pin.as_slice())) {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::warn!(
                expected = %fingerprint_hex(pin),
                actual = %fingerprint_hex(actual.as_ref()),
                "rack certificate does not match RACK_TLS_PIN_SHA256"
            );
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(RackCertificateMismatch)),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Whether a rustls error is our pin mismatch.
pub(crate) fn is_pin_mismatch(error: &rustls::Error) -> bool {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
        | rustls::Error::Other(other) => other.0.is::<RackCertificateMismatch>(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_mismatch_is_recognised() {
        let provider = rustls::crypto::ring::default_provider();
        let verifier = RackCertVerifier::new(&provider, Some([7; 32]));
        let cert = CertificateDer::from(vec![1u8, 2, 3]);
        let name = ServerName::try_from("rack.example")
            .unwrap_or(ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let result = verifier.verify_server_cert(&cert, &[], &name, &[], UnixTime::now());
        assert!(matches!(&result, Err(e) if is_pin_mismatch(e)));

        let good = ring::digest::digest(&ring::digest::SHA256, &[1, 2, 3]);
        let mut pin = [0u8; 32];
        pin.copy_from_slice(good.as_ref());
        let verifier = RackCertVerifier::new(&provider, Some(pin));
        assert!(verifier
            .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
            .is_ok());
    }

    #[test]
    fn every_mode_builds() {
        assert!(client_config(&RackTls::Insecure).is_ok());
        assert!(client_config(&RackTls::Pinned([0; 32])).is_ok());
    }
}
