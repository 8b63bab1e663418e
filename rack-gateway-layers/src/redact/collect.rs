//! Reading a body into memory, up to a limit, within the shared buffer budget.

use bytes::{Bytes, BytesMut};
use http_body::Body as HttpBody;
use http_body_util::BodyExt as _;

use super::budget::{BufferBudget, Claim};
use crate::error::BoxError;

/// A body read whole, or why it was not.
#[derive(Debug)]
pub(crate) enum Collected {
    /// The whole body, and its claim on the budget (keep it while the bytes live).
    Whole(Bytes, Claim),
    /// More than the limit; the rest was not read.
    TooLarge,
    /// The buffer budget stayed spent for the whole wait.
    Busy,
}

/// Reads `body` until its end, or until it has more than `limit` bytes, taking each frame's
/// size from `budget` before buffering it. Trailers are dropped.
pub(crate) async fn collect_limited<B>(
    body: B,
    limit: usize,
    budget: &BufferBudget,
) -> Result<Collected, BoxError>
where
    B: HttpBody<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    if body.size_hint().lower() > limit as u64 {
        return Ok(Collected::TooLarge);
    }
    let mut claim = budget.claim();
    // A declared length (already known to be within the limit) saves the regrowth copies.
    let capacity = body.size_hint().exact().map_or(0, |n| n as usize);
    let mut body = std::pin::pin!(body);
    let mut buffer = BytesMut::with_capacity(capacity);
    loop {
        // Matched at once: a body error (not necessarily `Send`) must not live across the
        // budget's await below.
        let data = match body.frame().await {
            None => break,
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(frame)) => frame.into_data(),
        };
        if let Ok(data) = data {
            if buffer.len() + data.len() > limit {
                return Ok(Collected::TooLarge);
            }
            if claim.grow(data.len()).await.is_err() {
                return Ok(Collected::Busy);
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(Collected::Whole(buffer.freeze(), claim))
}
