//! `POST /apps/{app}/objects/tmp/{name}`: the raw body is streamed and counted, never held in
//! memory, so uploads of any size are cheap; the answer is `{"Url":"object://<app>/tmp/<name>"}`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::Json;
use futures_util::StreamExt as _;

use super::error::{MockError, MockResult};
use super::model::Object;
use super::MockRack;

/// Reads `body` to the end chunk by chunk, returning its size.
pub(super) async fn drain(body: Body) -> MockResult<u64> {
    let mut stream = body.into_data_stream();
    let mut size: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| MockError::bad_request(format!("could not read request body: {e}")))?;
        size = size.saturating_add(chunk.len() as u64);
    }
    Ok(size)
}

/// `POST /apps/{app}/objects/tmp/{name}`.
pub(super) async fn upload(
    State(rack): State<MockRack>,
    Path((app, name)): Path<(String, String)>,
    body: Body,
) -> MockResult<Json<Object>> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
        return Err(MockError::bad_request(format!(
            "invalid object name: {name:?}"
        )));
    }
    rack.state().app(&app)?;
    let size = drain(body).await?;
    let key = format!("{app}/tmp/{name}");
    tracing::info!(target: "mock_rack", key = %key, bytes = size, "object stored");
    let mut state = rack.state();
    state.app(&app)?;
    state.objects.insert(key.clone(), size);
    Ok(Json(Object {
        url: format!("object://{key}"),
    }))
}
