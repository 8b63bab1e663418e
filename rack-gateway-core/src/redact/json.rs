//! Canonical JSON for audit details: object keys sorted, no spaces.

use serde_json::Value;

/// Renders `value` with object keys sorted (by byte order) at every level and no whitespace.
///
/// The sort is explicit, so the result does not depend on serde_json's `preserve_order` feature.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (position, (key, item)) in entries.into_iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_and_compact() {
        let value =
            json!({"b": 1, "a": {"z": [true, null, {"y": "x", "x": 1.5}], "c": "d"}, "": -2});
        assert_eq!(
            canonical_json(&value),
            r#"{"":-2,"a":{"c":"d","z":[true,null,{"x":1.5,"y":"x"}]},"b":1}"#
        );
    }

    #[test]
    fn leaves_and_escapes() {
        assert_eq!(canonical_json(&json!(null)), "null");
        assert_eq!(canonical_json(&json!({})), "{}");
        assert_eq!(canonical_json(&json!([])), "[]");
        assert_eq!(
            canonical_json(&json!({"k\"\n": "v\u{1}é\\/", "é": 1, "Z": 2})),
            "{\"Z\":2,\"k\\\"\\n\":\"v\\u0001é\\\\/\",\"é\":1}"
        );
    }

    #[test]
    fn matches_serde_json_compact_for_sorted_maps() {
        let value = json!({"old": "[REDACTED]", "new": {"n": 12345678901234567890u64, "f": -0.5}});
        let parsed: Value = serde_json::from_str(&canonical_json(&value)).expect("valid json");
        assert_eq!(parsed, value);
    }
}
