//! The edge layer that turns infrastructure errors into responses, so nothing below it has to.
//!
//! Inner layers refuse requests with `Ok` responses and return `Err` only when something the
//! gateway depends on failed. [`RescueLayer`] maps those errors by cause: an unreachable rack
//! or a certificate mismatch is 502, a rack that does not answer in time is 504, a store that
//! cannot answer is 503, and anything else is 500. The caller sees one line; the full error
//! goes to the log.
//!
//! ```
//! use rack_gateway_layers::rescue::RescueLayer;
//! use tower::ServiceBuilder;
//!
//! # async fn demo() {
//! use tower::ServiceExt as _;
//!
//! let service = ServiceBuilder::new().layer(RescueLayer::new()).service_fn(
//!     |_req: http::Request<()>| async {
//!         Err::<http::Response<String>, _>(rack_gateway_layers::error::RackUnavailable(
//!             "connection refused".into(),
//!         ))
//!     },
//! );
//! let response = service.oneshot(http::Request::new(())).await.unwrap();
//! assert_eq!(response.status(), http::StatusCode::BAD_GATEWAY);
//! # }
//! ```

mod classify;
mod future;
mod layer;

pub use classify::rescue_response;
pub use future::ResponseFuture;
pub use layer::{Rescue, RescueLayer};
