//! Reading a body into memory, up to a limit.

use bytes::{Bytes, BytesMut};
use http_body::Body as HttpBody;
use http_body_util::BodyExt as _;

use crate::error::BoxError;

/// A body read whole, or the sign that it was longer than the limit.
#[derive(Debug)]
pub(crate) enum Collected {
    /// The whole body.
    Whole(Bytes),
    /// More than the limit; the rest was not read.
    TooLarge,
}

/// Reads `body` until its end, or until it has more than `limit` bytes. Trailers are dropped.
pub(crate) async fn collect_limited<B>(body: B, limit: usize) -> Result<Collected, BoxError>
where
    B: HttpBody<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    if body.size_hint().lower() > limit as u64 {
        return Ok(Collected::TooLarge);
    }
    let mut body = std::pin::pin!(body);
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Into::into)?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > limit {
                return Ok(Collected::TooLarge);
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(Collected::Whole(buffer.freeze()))
}
