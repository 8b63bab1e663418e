//! Infrastructure failures: the only things the layers return as `Err`.

/// The boxed error type every service in the stack uses.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The rack could not be reached or did not answer in time.
#[derive(Debug, thiserror::Error)]
#[error("rack unavailable: {0}")]
pub struct RackUnavailable(pub String);

/// The caller's request body failed while it was being sent to the rack (malformed chunked
/// encoding, a connection closed mid-body): the client's fault, answered 400, never 502.
#[derive(Debug, thiserror::Error)]
#[error("the request body could not be read: {0}")]
pub struct ClientBodyError(pub BoxError);

/// The rack did not send response headers in time.
#[derive(Debug, thiserror::Error)]
#[error("rack did not answer within {0:?}")]
pub struct RackTimeout(pub std::time::Duration);

/// The rack's TLS certificate did not match the pinned fingerprint.
#[derive(Debug, thiserror::Error)]
#[error("rack certificate verification failed")]
pub struct RackCertificateMismatch;

/// The identity store could not answer.
#[derive(Debug, thiserror::Error)]
#[error("identity store unavailable: {0}")]
pub struct StoreUnavailable(pub String);

/// Whether `error` or any of its sources is an `E`.
pub fn is_caused_by<E: std::error::Error + 'static>(
    error: &(dyn std::error::Error + 'static),
) -> bool {
    let mut current = Some(error);
    while let Some(err) = current {
        if err.is::<E>() {
            return true;
        }
        current = err.source();
    }
    false
}
