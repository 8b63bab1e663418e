//! `/apps/{app}/builds`: list (newest first, query `limit`), create (SDK form `url`,
//! `description`, `manifest`, `git-sha`), import (raw tarball body, streamed), read, export
//! (`{id}.tgz`) and update. Builds finish at once and produce a release carrying the latest env.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDateTime, Utc};

use super::error::{MockError, MockResult};
use super::ids;
use super::model::{Build, Release};
use super::objects::drain;
use super::params::Params;
use super::state::State as RackState;
use super::MockRack;

/// Applies the `limit` query parameter to a newest-first list.
pub(super) fn limited<T: Clone>(items: &[T], params: &Params) -> MockResult<Vec<T>> {
    let limit = params.parse::<usize>("limit")?.unwrap_or(usize::MAX);
    Ok(items.iter().rev().take(limit).cloned().collect())
}

/// `GET /apps/{app}/builds`.
pub(super) async fn list(
    State(rack): State<MockRack>,
    Path(app): Path<String>,
    params: Params,
) -> MockResult<Json<Vec<Build>>> {
    Ok(Json(limited(&rack.state().app(&app)?.builds, &params)?))
}

/// What a new build is made of.
struct NewBuild {
    description: String,
    git_sha: String,
    manifest: Option<String>,
    repository: String,
}

/// Records a complete build of `app` and the release it produced; returns the build.
fn record(state: &mut RackState, app: &str, new: NewBuild) -> MockResult<Build> {
    let entry = state.app_mut(app)?;
    let base = entry.latest_release().cloned();
    let manifest = new
        .manifest
        .or_else(|| base.as_ref().map(|r| r.manifest.clone()))
        .unwrap_or_else(|| "services:\n  web:\n    build: .\n    port: 3000\n".to_string());
    let now = Utc::now();
    let (build_id, release_id) = (ids::build_id(), ids::release_id());
    let build = Build {
        id: build_id.clone(),
        app: app.to_string(),
        description: new.description.clone(),
        entrypoint: String::new(),
        git_sha: new.git_sha,
        logs: format!("object:///{app}/build/{build_id}/logs"),
        manifest: manifest.clone(),
        process: String::new(),
        release: release_id.clone(),
        reason: String::new(),
        repository: new.repository,
        status: "complete".to_string(),
        started: now,
        ended: now,
    };
    entry.builds.push(build.clone());
    entry.releases.push(Release {
        id: release_id,
        app: app.to_string(),
        build: build_id,
        env: base.map(|r| r.env).unwrap_or_default(),
        manifest,
        description: new.description,
        created: now,
    });
    Ok(build)
}

/// `POST /apps/{app}/builds`.
pub(super) async fn create(
    State(rack): State<MockRack>,
    Path(app): Path<String>,
    params: Params,
) -> MockResult<Json<Build>> {
    let url = params.get("url").unwrap_or_default().to_string();
    let new = NewBuild {
        description: params.get("description").unwrap_or_default().to_string(),
        git_sha: params.get("git-sha").unwrap_or_default().to_string(),
        manifest: params.non_empty("manifest").map(str::to_string),
        repository: url,
    };
    Ok(Json(record(&mut rack.state(), &app, new)?))
}

/// `POST /apps/{app}/builds/import`: the raw tarball body is counted, never buffered.
pub(super) async fn import(
    State(rack): State<MockRack>,
    Path(app): Path<String>,
    body: Body,
) -> MockResult<Json<Build>> {
    rack.state().app(&app)?;
    let size = drain(body).await?;
    let new = NewBuild {
        description: format!("imported ({size} bytes)"),
        git_sha: String::new(),
        manifest: None,
        repository: String::new(),
    };
    Ok(Json(record(&mut rack.state(), &app, new)?))
}

/// `GET /apps/{app}/builds/{id}`, or the export bytes for `{id}.tgz`.
pub(super) async fn get(
    State(rack): State<MockRack>,
    Path((app, id)): Path<(String, String)>,
) -> MockResult<Response> {
    let state = rack.state();
    let entry = state.app(&app)?;
    if let Some(id) = id.strip_suffix(".tgz") {
        let build = entry.build(id)?;
        let body = format!(
            "mock-rack build export\napp={app}\nbuild={}\nrelease={}\n\n{}",
            build.id, build.release, build.manifest
        );
        return Ok((
            [(header::CONTENT_TYPE, "application/octet-stream")],
            body.into_bytes(),
        )
            .into_response());
    }
    Ok(Json(entry.build(&id)?.clone()).into_response())
}

/// A time as the SDK sends it (`20060102.150405.000000000`) or RFC 3339.
fn parse_time(key: &str, raw: &str) -> MockResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(raw, "%Y%m%d.%H%M%S%.f")
        .map(|t| t.and_utc())
        .map_err(|_| MockError::bad_request(format!("invalid {key}: {raw:?}")))
}

/// `PUT /apps/{app}/builds/{id}` (form `ended`, `entrypoint`, `logs`, `manifest`, `release`,
/// `started`, `status`) → the updated build.
pub(super) async fn update(
    State(rack): State<MockRack>,
    Path((app, id)): Path<(String, String)>,
    params: Params,
) -> MockResult<Json<Build>> {
    let started = params
        .non_empty("started")
        .map(|t| parse_time("started", t))
        .transpose()?;
    let ended = params
        .non_empty("ended")
        .map(|t| parse_time("ended", t))
        .transpose()?;
    let mut state = rack.state();
    let entry = state.app_mut(&app)?;
    let build = entry
        .builds
        .iter_mut()
        .find(|b| b.id == id)
        .ok_or_else(|| MockError::not_found(format!("no such build: {id}")))?;
    let fields = [
        ("entrypoint", &mut build.entrypoint),
        ("logs", &mut build.logs),
        ("manifest", &mut build.manifest),
        ("release", &mut build.release),
        ("status", &mut build.status),
    ];
    for (key, field) in fields {
        if let Some(value) = params.get(key) {
            *field = value.to_string();
        }
    }
    build.started = started.unwrap_or(build.started);
    build.ended = ended.unwrap_or(build.ended);
    Ok(Json(build.clone()))
}
