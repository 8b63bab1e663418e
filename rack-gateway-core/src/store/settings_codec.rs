//! Input checks for the settings table, shared by both backends.
//!
//! The store does not know the catalogue (other features keep keys of their own here); it only
//! refuses what no key, app or value could be, before any SQL runs.

use super::StoreError;

/// Longest key accepted.
const KEY_MAX: usize = 100;
/// Longest app name accepted.
const APP_MAX: usize = 100;
/// Longest `updated_by` accepted.
const UPDATED_BY_MAX: usize = 254;
/// Largest value accepted, as JSON text (bytes).
pub(crate) const VALUE_MAX: usize = 64 * 1024;
/// Most keys one call may write or delete.
const BATCH_MAX: usize = 100;

fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A key: lower-case letters, digits and `_`, starting with a letter.
pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    let valid = key.len() <= KEY_MAX
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "key",
            format!("{key:?}: expected lower-case letters, digits and '_', at most {KEY_MAX}"),
        ))
    }
}

/// An app name: not empty, no whitespace or control characters.
pub(crate) fn check_app(app: Option<&str>) -> Result<(), StoreError> {
    let Some(app) = app else {
        return Ok(());
    };
    if app.is_empty() || app.chars().count() > APP_MAX {
        return Err(invalid("app", format!("must be 1 to {APP_MAX} characters")));
    }
    if app.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid("app", "contains whitespace or control characters"));
    }
    Ok(())
}

/// Who wrote the setting.
pub(crate) fn check_updated_by(updated_by: Option<&str>) -> Result<(), StoreError> {
    match updated_by {
        Some(who) if who.chars().count() > UPDATED_BY_MAX => Err(invalid(
            "updated_by",
            format!("longer than {UPDATED_BY_MAX} characters"),
        )),
        Some(who) if who.chars().any(char::is_control) => {
            Err(invalid("updated_by", "contains control characters"))
        }
        _ => Ok(()),
    }
}

/// The value as JSON text, refusing NUL characters (PostgreSQL cannot store them) and values
/// over [`VALUE_MAX`].
pub(crate) fn encode_value(value: &serde_json::Value) -> Result<String, StoreError> {
    let text = serde_json::to_string(value)
        .map_err(|e| invalid("value", format!("cannot be encoded: {e}")))?;
    if text.len() > VALUE_MAX {
        return Err(invalid("value", format!("larger than {VALUE_MAX} bytes")));
    }
    if has_nul(value) {
        return Err(invalid("value", "contains a NUL character"));
    }
    Ok(text)
}

fn has_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Checks a batch of writes; returns the encoded values in order.
pub(crate) fn check_writes(
    app: Option<&str>,
    values: &[(String, serde_json::Value)],
    updated_by: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    check_app(app)?;
    check_updated_by(updated_by)?;
    check_batch(values.len())?;
    values
        .iter()
        .map(|(key, value)| {
            check_key(key)?;
            encode_value(value)
        })
        .collect()
}

/// Checks a batch of deletions.
pub(crate) fn check_deletes(app: Option<&str>, keys: &[String]) -> Result<(), StoreError> {
    check_app(app)?;
    check_batch(keys.len())?;
    keys.iter().try_for_each(|key| check_key(key))
}

fn check_batch(len: usize) -> Result<(), StoreError> {
    if len > BATCH_MAX {
        return Err(invalid(
            "keys",
            format!("more than {BATCH_MAX} in one call"),
        ));
    }
    Ok(())
}

/// Decodes a stored value.
#[cfg(feature = "sqlite")]
pub(crate) fn decode_value(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("setting value: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bad_input_is_refused() {
        assert!(check_key("allow_destructive_actions").is_ok());
        for key in ["", "Upper", "1abc", "a-b", "a b", &"a".repeat(101)] {
            assert!(check_key(key).is_err(), "{key}");
        }
        assert!(check_app(None).is_ok());
        assert!(check_app(Some("web")).is_ok());
        assert!(check_app(Some("")).is_err());
        assert!(check_app(Some("a b")).is_err());
        assert!(check_updated_by(Some("a\nb")).is_err());
        assert!(encode_value(&json!("a\u{0}b")).is_err());
        assert!(encode_value(&json!({"k\u{0}": 1})).is_err());
        assert!(encode_value(&json!(["\\u0000"])).is_ok());
        assert!(encode_value(&json!("x".repeat(VALUE_MAX))).is_err());
        assert_eq!(
            encode_value(&json!({"b": 1, "a": [true]})).unwrap(),
            r#"{"a":[true],"b":1}"#
        );
    }
}
