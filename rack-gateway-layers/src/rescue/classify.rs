//! Which status and message an infrastructure error becomes.

use http::{Response, StatusCode};

use crate::body::{refusal, GatewayBody};
use crate::error::{
    is_caused_by, ClientBodyError, RackCertificateMismatch, RackTimeout, RackUnavailable,
    StoreUnavailable,
};

/// The response for an infrastructure error; the error itself is logged, not shown.
pub fn rescue_response<B>(error: &(dyn std::error::Error + 'static)) -> Response<GatewayBody<B>> {
    // The caller sees a fixed line per cause: the full error (with the rack's address and the
    // transport's words) goes to the log only.
    let (status, message) = if is_caused_by::<ClientBodyError>(error) {
        (
            StatusCode::BAD_REQUEST,
            "the request body could not be read (malformed or cut short)".to_owned(),
        )
    } else if is_caused_by::<RackCertificateMismatch>(error) {
        (
            StatusCode::BAD_GATEWAY,
            "rack certificate verification failed".to_owned(),
        )
    } else if is_caused_by::<RackUnavailable>(error) {
        (
            StatusCode::BAD_GATEWAY,
            "rack unavailable; try again shortly".to_owned(),
        )
    } else if let Some(timeout) = find::<RackTimeout>(error) {
        (StatusCode::GATEWAY_TIMEOUT, timeout.to_string())
    } else if is_caused_by::<StoreUnavailable>(error) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "gateway store unavailable; try again shortly".to_owned(),
        )
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal gateway error".to_owned(),
        )
    };
    tracing::warn!(status = status.as_u16(), error = %error, "request failed");
    refusal(status, &message)
}

fn find<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::BoxError;

    #[test]
    fn causes_map_to_statuses() {
        let cases: Vec<(BoxError, StatusCode)> = vec![
            (
                RackUnavailable("connection refused".into()).into(),
                StatusCode::BAD_GATEWAY,
            ),
            (RackCertificateMismatch.into(), StatusCode::BAD_GATEWAY),
            (
                RackTimeout(std::time::Duration::from_secs(30)).into(),
                StatusCode::GATEWAY_TIMEOUT,
            ),
            (
                StoreUnavailable("pool timed out".into()).into(),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                ClientBodyError("invalid chunk size".into()).into(),
                StatusCode::BAD_REQUEST,
            ),
            ("something else".into(), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (error, status) in cases {
            assert_eq!(
                rescue_response::<()>(error.as_ref()).status(),
                status,
                "{error}"
            );
        }
    }

    #[test]
    fn rack_addresses_are_not_shown_to_callers() {
        let error: BoxError =
            RackUnavailable("cannot connect to 10.1.2.3:5443: connection refused".into()).into();
        let response = rescue_response::<()>(error.as_ref());
        let reason = response.headers()["x-error-reason"].to_str().unwrap();
        assert!(!reason.contains("10.1.2.3"), "{reason}");
    }

    #[test]
    fn store_details_are_not_shown_to_callers() {
        let error: BoxError =
            StoreUnavailable("password authentication failed for user x".into()).into();
        let response = rescue_response::<()>(error.as_ref());
        let reason = response.headers()["x-error-reason"].to_str().unwrap();
        assert!(!reason.contains("password"), "{reason}");
    }
}
