//! Path normalisation: a path that would change under normalisation is refused, not fixed.

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathError(&'static str);

impl PathError {
    /// One-line reason.
    pub fn reason(self) -> &'static str {
        self.0
    }
}

/// Checks that `path` is an unambiguous absolute path and returns it unchanged.
pub fn normalize(path: &str) -> Result<&str, PathError> {
    if path.is_empty() {
        return Ok("/");
    }
    if !path.starts_with('/') {
        return Err(PathError("path must start with /"));
    }
    if path.contains('\\') {
        return Err(PathError("backslash in path"));
    }
    if path.contains("//") {
        return Err(PathError("empty path segment (//)"));
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2e") || lower.contains("%2f") || lower.contains("%5c") || lower.contains("%00") {
        return Err(PathError("encoded dot, slash, backslash or NUL in path"));
    }
    if path.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(PathError("dot segment (. or ..) in path"));
    }
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(PathError("control character or space in path"));
    }
    Ok(path)
}
