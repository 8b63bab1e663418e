//! RackForward to an HTTPS rack with a self-signed certificate, in each TLS mode.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rack_gateway_layers::error::{is_caused_by, RackCertificateMismatch, RackUnavailable};
use rack_gateway_layers::forward::{
    parse_pin, ForwardConfigError, OriginPolicy, RackForward, RackPath, RackTarget, RackTls,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

struct TlsRack {
    addr: SocketAddr,
    cert_der: CertificateDer<'static>,
}

/// An HTTPS fake rack with a fresh rcgen self-signed certificate, answering "tls ok".
async fn tls_rack() -> TlsRack {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert_der = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert_der.clone()], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(|_request: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"tls ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    TlsRack { addr, cert_der }
}

fn target(base: String, tls: RackTls) -> RackTarget {
    RackTarget {
        base: base.parse().expect("base"),
        username: "convox".into(),
        token: "rack-token".into(),
        tls,
        connect_timeout: Duration::from_secs(2),
        header_timeout: Duration::from_secs(5),
    }
}

async fn call(rack: &TlsRack, tls: RackTls) -> Result<String, rack_gateway_layers::BoxError> {
    let forward = RackForward::new(
        target(format!("https://{}", rack.addr), tls),
        OriginPolicy::default(),
    )
    .expect("valid target");
    let mut request = Request::new(rack_gateway_layers::body::empty());
    request.extensions_mut().insert(RackPath("/system".into()));
    let response = forward.oneshot(request).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[tokio::test]
async fn insecure_accepts_a_self_signed_rack() {
    let rack = tls_rack().await;
    assert_eq!(
        call(&rack, RackTls::Insecure)
            .await
            .expect("insecure connects"),
        "tls ok"
    );
}

#[tokio::test]
async fn verify_rejects_a_self_signed_rack() {
    let rack = tls_rack().await;
    let error = call(&rack, RackTls::Verify)
        .await
        .expect_err("untrusted issuer");
    assert!(is_caused_by::<RackUnavailable>(&*error), "{error}");
    assert!(!is_caused_by::<RackCertificateMismatch>(&*error), "{error}");
    assert!(error.to_string().contains("certificate"), "{error}");
}

#[tokio::test]
async fn correct_pin_connects() {
    let rack = tls_rack().await;
    let pin = parse_pin(&fingerprint(&rack.cert_der)).expect("pin");
    assert_eq!(
        call(&rack, RackTls::Pinned(pin))
            .await
            .expect("pinned connects"),
        "tls ok"
    );
}

#[tokio::test]
async fn wrong_pin_is_a_certificate_mismatch() {
    let rack = tls_rack().await;
    let mut pin = parse_pin(&fingerprint(&rack.cert_der)).expect("pin");
    pin[31] ^= 1;
    let error = call(&rack, RackTls::Pinned(pin))
        .await
        .expect_err("wrong pin");
    assert!(is_caused_by::<RackCertificateMismatch>(&*error), "{error}");
}

#[test]
fn pin_without_tls_is_a_config_error() {
    let result = RackForward::new(
        target("http://rack.example:5443".into(), RackTls::Pinned([1; 32])),
        OriginPolicy::default(),
    );
    assert!(matches!(result, Err(ForwardConfigError::PinWithoutTls(_))));
}

#[test]
fn bad_targets_are_config_errors() {
    let mut no_token = target("https://rack.example".into(), RackTls::Insecure);
    no_token.token.clear();
    assert!(RackForward::new(no_token, OriginPolicy::default()).is_err());
    let relative = target("/just/a/path".into(), RackTls::Insecure);
    assert!(RackForward::new(relative, OriginPolicy::default()).is_err());
    let ftp = target("ftp://rack.example".into(), RackTls::Insecure);
    assert!(RackForward::new(ftp, OriginPolicy::default()).is_err());
    let with_query = target("https://rack.example/?a=1".into(), RackTls::Insecure);
    assert!(RackForward::new(with_query, OriginPolicy::default()).is_err());
}
