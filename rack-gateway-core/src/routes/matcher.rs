//! Matching a request against the compiled allow-list.

use std::fmt;
use std::sync::LazyLock;

use super::normalize::normalize;
use super::table::RACK_ROUTES;
use super::{RackRoute, RouteMethod};

/// A request that matched a row of the allow-list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    /// The row.
    pub route: &'static RackRoute,
    /// The `{app}` / `{name}` of `/apps/...` paths.
    pub app: Option<String>,
    /// Every `{param}` of the pattern with its value, in path order.
    pub params: Vec<(&'static str, String)>,
}

impl RouteMatch {
    /// The value of `{name}` in the pattern, if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| *key == name)
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

#[derive(Debug)]
enum Segment {
    Literal(&'static str),
    Param(&'static str),
    /// `{name}` followed by a literal suffix, such as `{id}.tgz`.
    ParamWithSuffix(&'static str, &'static str),
}

#[derive(Debug)]
struct CompiledRoute {
    route: &'static RackRoute,
    segments: Vec<Segment>,
}

/// The allow-list compiled for matching; build it once ([`RouteTable::global`]).
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<CompiledRoute>,
}

static GLOBAL: LazyLock<RouteTable> = LazyLock::new(|| RouteTable::compile(RACK_ROUTES));

impl RouteTable {
    /// The table of [`RACK_ROUTES`], compiled on first use.
    pub fn global() -> &'static RouteTable {
        &GLOBAL
    }

    /// Compiles rows into a table; patterns are checked by the table tests
    /// (`tests/routes_table.rs`).
    pub fn compile(rows: &'static [RackRoute]) -> Self {
        let routes = rows
            .iter()
            .map(|route| CompiledRoute {
                route,
                segments: route
                    .pattern
                    .trim_start_matches('/')
                    .split('/')
                    .map(compile_segment)
                    .collect(),
            })
            .collect();
        RouteTable { routes }
    }

    /// Finds the first row matching `method` (or SOCKET when `websocket`) and `path`.
    ///
    /// `method` is the HTTP method, case-sensitive (`GET`, `POST`, `PUT`, `DELETE`); a
    /// websocket upgrade must use `GET` (HTTP/1.1): `CONNECT` matches nothing, with or without
    /// the upgrade flag, since the gateway does not accept HTTP/2 extended CONNECT and a plain
    /// `CONNECT` would make the upstream client tunnel to the rack's authority instead of the
    /// path. A method named `SOCKET` without the upgrade flag is not a websocket and matches
    /// nothing.
    /// `path` is checked by [`normalize`] first.
    pub fn classify(
        &self,
        method: &str,
        websocket: bool,
        path: &str,
    ) -> Result<RouteMatch, RouteError> {
        let path = normalize(path).map_err(|e| RouteError::BadPath(e.reason()))?;
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
                    route: compiled.route,
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
        ([Segment::Literal("apps"), Segment::Param(_), ..], [_, app, ..]) => {
            Some((*app).to_owned())
        }
        _ => None,
    }
}

fn compile_segment(segment: &'static str) -> Segment {
    if let Some(inner) = segment.strip_prefix('{') {
        if let Some((name, suffix)) = inner.split_once('}') {
            return if suffix.is_empty() {
                Segment::Param(name)
            } else {
                Segment::ParamWithSuffix(name, suffix)
            };
        }
    }
    Segment::Literal(segment)
}

fn match_segments(segments: &[Segment], parts: &[&str]) -> Option<Vec<(&'static str, String)>> {
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
                params.push((*name, (*part).to_owned()));
            }
            Segment::ParamWithSuffix(name, suffix) => {
                let value = part.strip_suffix(suffix)?;
                if value.is_empty() {
                    return None;
                }
                params.push((*name, value.to_owned()));
            }
        }
    }
    Some(params)
}
