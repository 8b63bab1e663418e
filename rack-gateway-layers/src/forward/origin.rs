//! The `Origin` check on websocket upgrades (cross-site websocket hijacking guard).

use http::header::{self, HeaderMap};

use super::config::OriginPolicy;

/// A parsed `host[:port]`, host lowercased, brackets kept on IPv6 literals.
#[derive(Debug, PartialEq, Eq)]
struct HostPort {
    host: String,
    port: Option<u16>,
}

fn split_host_port(authority: &str) -> Option<HostPort> {
    let authority = authority.trim();
    if authority.is_empty() || authority.contains(['/', '@', ' ']) {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok()?),
        None => None,
    };
    Some(HostPort {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// A serialized origin `scheme://host[:port]` as its host and effective port.
fn parse_origin(origin: &str) -> Option<(HostPort, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        _ => return None,
    };
    let parsed = split_host_port(rest.strip_suffix('/').unwrap_or(rest))?;
    let port = parsed.port.unwrap_or(default_port);
    Some((parsed, port))
}

fn is_localhost(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost") || host == "127.0.0.1" || host == "[::1]"
}

/// `Ok(())` when the upgrade may proceed, else the one-line reason for the 403.
pub(crate) fn check(policy: &OriginPolicy, headers: &HeaderMap) -> Result<(), String> {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return Ok(());
    };
    if origins.next().is_some() {
        return Err("websocket refused: more than one Origin header".to_owned());
    }
    let refused = || {
        format!(
            "websocket refused: origin {:?} is not allowed",
            String::from_utf8_lossy(origin.as_bytes())
        )
    };
    let Some((origin, origin_port)) = origin.to_str().ok().and_then(parse_origin) else {
        return Err(refused());
    };

    // Same host as the request's Host; a Host without a port means the origin's default port.
    let request_host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .and_then(split_host_port);
    if let Some(request_host) = request_host {
        let same_port = match request_host.port {
            Some(port) => port == origin_port,
            None => origin.port.is_none(),
        };
        if request_host.host == origin.host && same_port {
            return Ok(());
        }
    }

    for allowed in &policy.allowed_hosts {
        let Some(allowed) = split_host_port(allowed) else {
            continue;
        };
        if allowed.host == origin.host && allowed.port.is_none_or(|port| port == origin_port) {
            return Ok(());
        }
    }

    if policy.allow_localhost && is_localhost(&origin.host) {
        return Ok(());
    }
    Err(refused())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(host: &'static str, origin: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        headers
    }

    #[test]
    fn policy() {
        let strict = OriginPolicy::default();
        assert!(check(&strict, &headers("gw.example", None)).is_ok());
        assert!(check(&strict, &headers("gw.example", Some("https://gw.example"))).is_ok());
        assert!(check(
            &strict,
            &headers("GW.example:443", Some("https://gw.example"))
        )
        .is_ok());
        assert!(check(
            &strict,
            &headers("gw.example:8443", Some("https://gw.example:8443"))
        )
        .is_ok());
        assert!(check(
            &strict,
            &headers("gw.example:8443", Some("https://gw.example"))
        )
        .is_err());
        assert!(check(
            &strict,
            &headers("gw.example", Some("https://evil.example"))
        )
        .is_err());
        assert!(check(&strict, &headers("gw.example", Some("null"))).is_err());
        assert!(check(
            &strict,
            &headers("localhost:3000", Some("http://localhost:5173"))
        )
        .is_err());

        let listed = OriginPolicy {
            allowed_hosts: vec!["app.example".into(), "dev.example:5173".into()],
            allow_localhost: true,
        };
        assert!(check(
            &listed,
            &headers("gw.example", Some("https://app.example:444"))
        )
        .is_ok());
        assert!(check(
            &listed,
            &headers("gw.example", Some("http://dev.example:5173"))
        )
        .is_ok());
        assert!(check(
            &listed,
            &headers("gw.example", Some("http://dev.example:5174"))
        )
        .is_err());
        assert!(check(
            &listed,
            &headers("gw.example", Some("http://localhost:5173"))
        )
        .is_ok());
        assert!(check(&listed, &headers("gw.example", Some("http://[::1]:5173"))).is_ok());
        assert!(check(
            &listed,
            &headers("gw.example", Some("https://evil.example"))
        )
        .is_err());
    }
}
