//! The header timeout, made safe for streamed uploads.
//!
//! A rack answers a build upload only after the whole tarball arrived, so a plain "headers
//! within N seconds of sending" limit would cut slow but healthy uploads. Instead the request
//! body reports progress: the limit applies to *no progress* while the body is sent, and then
//! to waiting for the response headers once it has been sent. After the headers nothing is
//! timed.

use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::sync::watch;

use crate::error::{BoxError, ClientBodyError};

pin_project_lite::pin_project! {
    /// A request body that signals each frame and its own end (or drop) to a [`header_deadline`].
    pub(crate) struct Progress<B> {
        #[pin]
        inner: B,
        signal: Option<watch::Sender<()>>,
    }
}

impl<B: Body> Progress<B> {
    /// Wraps `inner`; the receiver goes to [`header_deadline`].
    pub(crate) fn new(inner: B) -> (Self, watch::Receiver<()>) {
        let (signal, progress) = watch::channel(());
        // A body that is already complete may never be polled.
        let signal = (!inner.is_end_stream()).then_some(signal);
        (Self { inner, signal }, progress)
    }
}

impl<B> Body for Progress<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    /// The caller's body failing is the caller's fault: tagged so that it is answered 400, not
    /// mistaken for the rack failing.
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(_)) if !this.inner.is_end_stream() => {
                if let Some(signal) = this.signal.as_ref() {
                    signal.send_replace(());
                }
            }
            // End of body, last frame, or a client-side error: the upload phase is over.
            _ => {
                this.signal.take();
            }
        }
        Poll::Ready(
            frame.map(|frame| frame.map_err(|error| BoxError::from(ClientBodyError(error.into())))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Completes when the rack has had `limit` without upload progress, or `limit` after the upload
/// finished (or its body was dropped). Race it against the response future.
pub(crate) async fn header_deadline(mut progress: watch::Receiver<()>, limit: Duration) {
    let sleep = tokio::time::sleep(limit);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return,
            changed = progress.changed() => {
                sleep.as_mut().reset(tokio::time::Instant::now() + limit);
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    sleep.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Empty, Full};

    #[tokio::test(start_paused = true)]
    async fn empty_body_starts_the_clock_at_once() {
        let (_body, progress) = Progress::new(Empty::<Bytes>::new());
        let started = tokio::time::Instant::now();
        header_deadline(progress, Duration::from_secs(5)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn clock_restarts_after_the_body_is_sent() {
        let (body, progress) = Progress::new(Full::new(Bytes::from_static(b"abc")));
        let deadline = tokio::spawn(header_deadline(progress, Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_secs(4)).await;
        let sent = tokio::time::Instant::now();
        let _ = body.collect().await;
        let _ = deadline.await;
        assert_eq!(sent.elapsed(), Duration::from_secs(5));
    }
}
