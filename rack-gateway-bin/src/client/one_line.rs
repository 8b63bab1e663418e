//! Text from a server, made safe to print as part of one line.

/// The most characters of a server's text shown; a reason is a sentence, not a page.
const MAX_CHARS: usize = 300;

/// `text` with control characters (newlines, terminal escapes) turned into spaces, runs of
/// white space collapsed, trimmed, and cut to a few hundred characters.
pub fn one_line(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut line = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((cut, _)) = line.char_indices().nth(MAX_CHARS) {
        line.truncate(cut);
        line.push('…');
    }
    line
}

/// What is wrong with a JSON text, without quoting any of its values (a value may be a
/// secret): a missing field by name, anything else by kind and position.
pub fn json_problem(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let message = error.to_string();
    if message.starts_with("missing field") {
        // Names a field of our own type, never a value.
        return one_line(message.split(" at line").next().unwrap_or(&message));
    }
    let kind = match error.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "not JSON",
        Category::Data => "a value of the wrong kind",
        Category::Eof => "cut short",
    };
    format!("{kind} at line {}, column {}", error.line(), error.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_line_breaks_are_flattened() {
        assert_eq!(
            one_line("  denied\r\n\x1b[31mred\x1b[0m\tnow "),
            "denied [31mred [0m now"
        );
        assert_eq!(one_line(&"x".repeat(400)).chars().count(), MAX_CHARS + 1);
    }

    #[test]
    fn json_problems_never_quote_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Wanted {
            token: String,
            count: u64,
        }
        let wrong = serde_json::from_str::<Wanted>(r#"{"token":"t","count":"rgs_secret"}"#)
            .expect_err("wrong kind");
        assert_eq!(
            json_problem(&wrong),
            "a value of the wrong kind at line 1, column 33"
        );
        let missing = serde_json::from_str::<Wanted>(r#"{"count":1}"#).expect_err("missing");
        assert_eq!(json_problem(&missing), "missing field `token`");
    }
}
