//! Where a browser goes after signing in: a path of the gateway's own, never another site.

/// Where a sign-in lands when `returnTo` is missing or not acceptable.
pub const HOME: &str = "/app/";

/// `requested` when it is a local path (`/…`, not `//…`, no scheme, no backslash, no control
/// characters, at most 1 KiB), else [`HOME`].
pub fn local_path(requested: Option<&str>) -> &str {
    match requested {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.contains("://")
                && !path.contains('\\')
                && path.len() <= 1024
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => HOME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_kept() {
        for good in ["/app/", "/app/users?x=1", "/api/v1/me"] {
            assert_eq!(local_path(Some(good)), good);
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "/app/\r\nSet-Cookie: x",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), HOME, "{bad:?}");
        }
        assert_eq!(local_path(None), HOME);
    }
}
