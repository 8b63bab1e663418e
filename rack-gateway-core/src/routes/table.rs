//! A route table compiled for matching, and what a request that matched a row carries.

use std::fmt;
use std::sync::{Arc, LazyLock};

use super::path::check_path;
use super::{Route, RouteMethod, RouteTableBuilder, CONVOX_ROUTES};

/// A request that matched a row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    /// The row.
    pub route: Arc<Route>,
    /// The `{app}` / `{name}` of `/apps/...` paths.
    pub app: Option<String>,
    /// Every `{param}` of the pattern with its value, in path order.
    pub params: Vec<(Arc<str>, String)>,
}

impl RouteMatch {
    /// The value of `{name}` in the pattern, if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| &**key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Why a request matched no row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The path is ambiguous or malformed (400).
    BadPath(&'static str),
    /// No row has this method and path (404).
    NotFound,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::BadPath(reason) => write!(f, "bad request path: {reason}"),
            RouteError::NotFound => f.write_str("route not allowed by the gateway"),
        }
    }
}

impl std::error::Error for RouteError {}

/// One segment of a compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Literal(String),
    Param(Arc<str>),
    /// `{name}` followed by a literal suffix, such as `{id}.tgz`.
    ParamWithSuffix(Arc<str>, String),
}

#[derive(Debug)]
pub(crate) struct CompiledRoute {
    pub(crate) route: Arc<Route>,
    pub(crate) segments: Vec<Segment>,
}

/// A route table compiled for matching: first match wins. Build it once, with
/// [`RouteTable::builder`] (or from a file), which checks every row; share it behind an `Arc`.
#[derive(Debug)]
pub struct RouteTable {
    pub(crate) routes: Vec<CompiledRoute>,
}

static CONVOX: LazyLock<Arc<RouteTable>> = LazyLock::new(|| {
    let table = RouteTable::builder()
        .routes(CONVOX_ROUTES)
        .check_permissions(crate::rbac::RoleSet::convox())
        .build()
        .unwrap_or_else(|error| {
            // Cannot happen (a test builds this table), and must not panic if it did: an
            // empty table refuses every request with 404.
            tracing::error!(%error, "the Convox route table is invalid; refusing every route");
            RouteTable { routes: Vec::new() }
        });
    Arc::new(table)
});

impl RouteTable {
    /// Starts a table.
    pub fn builder() -> RouteTableBuilder {
        RouteTableBuilder::default()
    }

    /// The Convox allow-list ([`CONVOX_ROUTES`]), compiled on first use.
    pub fn global() -> &'static RouteTable {
        &CONVOX
    }

    /// The Convox allow-list, shared (for layers that hold any table behind an `Arc`).
    pub fn convox() -> Arc<RouteTable> {
        Arc::clone(&CONVOX)
    }

    /// The rows, in matching order.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.iter().map(|compiled| &compiled.route)
    }

    /// Finds the first row matching `method` (or SOCKET when `websocket`) and `path`.
    ///
    /// `method` is the HTTP method, case-sensitive (`GET`, `POST`, `PUT`, `DELETE`); a
    /// websocket upgrade must use `GET` (HTTP/1.1): `CONNECT` matches nothing, with or without
    /// the upgrade flag, since the gateway does not accept HTTP/2 extended CONNECT and a plain
    /// `CONNECT` would make the upstream client tunnel to the rack's authority instead of the
    /// path. A method named `SOCKET` without the upgrade flag is not a websocket and matches
    /// nothing. `path` is checked by [`check_path`] first.
    pub fn classify(
        &self,
        method: &str,
        websocket: bool,
        path: &str,
    ) -> Result<RouteMatch, RouteError> {
        let path = check_path(path).map_err(|e| RouteError::BadPath(e.reason()))?;
        let method = match (websocket, method) {
            (true, "GET") => RouteMethod::Socket,
            (true, _) => return Err(RouteError::NotFound),
            (false, "GET") => RouteMethod::Get,
            (false, "POST") => RouteMethod::Post,
            (false, "PUT") => RouteMethod::Put,
            (false, "DELETE") => RouteMethod::Delete,
            (false, _) => return Err(RouteError::NotFound),
        };
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for compiled in &self.routes {
            if compiled.route.method != method || compiled.segments.len() != parts.len() {
                continue;
            }
            if let Some(params) = match_segments(&compiled.segments, &parts) {
                let app = app_of(&compiled.segments, &parts);
                return Ok(RouteMatch {
                    route: Arc::clone(&compiled.route),
                    app,
                    params,
                });
            }
        }
        Err(RouteError::NotFound)
    }
}

/// The app of an `/apps/{x}...` pattern: the parameter right after `apps`, whatever its name
/// (`/apps/{name}` and `/apps/{app}/...`).
fn app_of(segments: &[Segment], parts: &[&str]) -> Option<String> {
    match (segments, parts) {
        ([Segment::Literal(apps), Segment::Param(_), ..], [_, app, ..]) if apps == "apps" => {
            Some((*app).to_owned())
        }
        _ => None,
    }
}

/// The segments of a pattern (`/a/{b}/{c}.tgz`).
pub(crate) fn compile_pattern(pattern: &str) -> Vec<Segment> {
    pattern
        .trim_start_matches('/')
        .split('/')
        .map(|segment| {
            if let Some(inner) = segment.strip_prefix('{') {
                if let Some((name, suffix)) = inner.split_once('}') {
                    return if suffix.is_empty() {
                        Segment::Param(Arc::from(name))
                    } else {
                        Segment::ParamWithSuffix(Arc::from(name), suffix.to_owned())
                    };
                }
            }
            Segment::Literal(segment.to_owned())
        })
        .collect()
}

fn match_segments(segments: &[Segment], parts: &[&str]) -> Option<Vec<(Arc<str>, String)>> {
    let mut params = Vec::new();
    for (segment, part) in segments.iter().zip(parts) {
        match segment {
            Segment::Literal(literal) => {
                if literal != part {
                    return None;
                }
            }
            Segment::Param(name) => {
                if part.is_empty() {
                    return None;
                }
                params.push((Arc::clone(name), (*part).to_owned()));
            }
            Segment::ParamWithSuffix(name, suffix) => {
                let value = part.strip_suffix(suffix.as_str())?;
                if value.is_empty() {
                    return None;
                }
                params.push((Arc::clone(name), value.to_owned()));
            }
        }
    }
    Some(params)
}
