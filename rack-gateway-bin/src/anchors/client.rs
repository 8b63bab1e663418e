//! The S3 client: rustls on ring (no aws-lc-rs, no OpenSSL), region and endpoint from
//! [`AnchorConfig`], credentials from the SDK's default chain.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::Region;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use super::AnchorConfig;

/// Builds an S3 client for `config`.
///
/// Credentials come from the SDK's default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
/// (and AWS_SESSION_TOKEN), web identity (IRSA), the shared config files, ECS and IMDS. They
/// are resolved lazily, on the first request, and never logged. The endpoint in `config`
/// (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL) wins over any other configured endpoint and
/// switches to path-style addressing (MinIO, moto).
pub async fn s3_client(config: &AnchorConfig) -> aws_sdk_s3::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(config.region.clone()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .load()
        .await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}
