//! Reading the few query parameters a sign-in endpoint takes, strictly: a parameter given twice
//! is refused rather than one of its values picked (a provider and a proxy might pick
//! differently).

use std::collections::HashMap;

use http::StatusCode;

use super::refusal::Refused;

/// The values of `names` in `raw` (percent-decoded); other parameters are ignored.
pub(crate) fn params<'n>(
    raw: Option<&str>,
    names: &[&'n str],
) -> Result<HashMap<&'n str, String>, Refused> {
    let mut found = HashMap::new();
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let Some(name) = names.iter().find(|name| **name == key) else {
            continue;
        };
        if found.insert(*name, value.into_owned()).is_some() {
            return Err(Refused::page(
                StatusCode::BAD_REQUEST,
                format!("query parameter {name} given more than once"),
            ));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_and_the_rest_decoded() {
        let found = params(
            Some("state=a%2Fb&code=c&other=1&other=2"),
            &["state", "code"],
        )
        .unwrap();
        assert_eq!(found["state"], "a/b");
        assert_eq!(found["code"], "c");
        let twice = params(Some("state=a&state=b"), &["state"]).unwrap_err();
        assert!(twice.reason().contains("state"));
        assert!(params(None, &["state"]).unwrap().is_empty());
    }
}
