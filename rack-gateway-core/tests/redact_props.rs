//! Properties of redaction: no secret value or URL password survives masking (env and query
//! strings, raw and percent-decoded), env text round-trips, and nothing panics.
//!
//! Secrets and passwords are drawn from upper-case `N`–`Z` runs (at least 8 characters in all),
//! which no other generated text uses, so "does not appear" cannot be an accident.

use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use proptest::prelude::*;
use rack_gateway_core::redact::{
    mask_env, mask_env_with, mask_url_credentials, redact_form_pairs, redact_query, redact_text,
    EnvMap, Reveal, SecretRules, MASK, REDACTED,
};

const EXTRA: &str = "LICENSE_BLOB,otp";

const SECRET_KEYS: &[&str] = &[
    "DB_PASSWORD",
    "API_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "STRIPE_KEY",
    "AWS_ACCESS_KEY_ID",
    "private_pem",
    "Gcp_Credentials",
    "MYSQL_PASSWD",
    "license_blob",
];

const PLAIN_KEYS: &[&str] = &[
    "PORT",
    "NAME",
    "DATABASE_URL",
    "REDIS_URLS",
    "HOST",
    "MONKEY",
    "KEYS",
    "ÜBER",
    "APP_ONLY",
];

const SENSITIVE_NAMES: &[&str] = &[
    "token",
    "access_token",
    "Password",
    "X-Auth-Token",
    "session_id",
    "Cookie",
    "X-Amz-Signature",
    "api_key",
    "client_secret",
    "oauth_verifier",
    "otp",
];

const PLAIN_NAMES: &[&str] = &["page", "q", "app", "url", "next", "limit", "ünï"];

fn rules() -> SecretRules {
    SecretRules::from_list(EXTRA)
}

/// A distinctive secret: `N`–`Z` runs around a few awkward characters (`=`, `@`, `%`, unicode…).
fn secret() -> impl Strategy<Value = String> {
    "[N-Z]{4,8}[N-Z@:/?#!%+=&é日]{0,4}[N-Z]{4,8}"
        .prop_filter("no nested ://", |s| !s.contains("://"))
}

/// Plain text: never upper-case `N`–`Z`, never `@`, `:` or `/`; may hold `=`, spaces and unicode.
fn plain() -> impl Strategy<Value = String> {
    "[a-m0-9 =._é日-]{0,12}"
}

/// A URL with credentials; yields the URL and its password.
fn credential_url() -> impl Strategy<Value = (String, String)> {
    let scheme = prop::sample::select(vec!["postgres", "redis", "mysql", "amqps", "s3", "x+y"]);
    let host = prop::sample::select(vec![
        "db",
        "db.internal:5432",
        "[::1]:5432",
        "[2001:db8::1]",
        "h1,h2:27017",
        "höst.example",
    ]);
    let path = prop::sample::select(vec![
        "",
        "/app",
        "/db?sslmode=require",
        "/0",
        "/x?mail=a@b.example",
    ]);
    (scheme, "[a-m]{0,6}", secret(), host, path).prop_map(|(scheme, user, password, host, path)| {
        (
            format!("{scheme}://{user}:{password}@{host}{path}"),
            password,
        )
    })
}

/// A value made of URLs with credentials and plain text; yields it and the passwords in it.
fn url_list() -> impl Strategy<Value = (String, Vec<String>)> {
    let item = prop_oneof![
        credential_url().prop_map(|(url, password)| (url, vec![password])),
        plain().prop_map(|text| (text, Vec::new())),
    ];
    let separator = prop::sample::select(vec![",", " ", ";", " , "]);
    (prop::collection::vec(item, 1..4), separator).prop_map(|(items, separator)| {
        let value = items
            .iter()
            .map(|(text, _)| text.as_str())
            .collect::<Vec<_>>()
            .join(separator);
        let secrets = items.into_iter().flat_map(|(_, secrets)| secrets).collect();
        (value, secrets)
    })
}

/// One env entry: key, value, and the secrets the value holds.
fn env_entry() -> impl Strategy<Value = (String, String, Vec<String>)> {
    let secret_value = prop_oneof![
        secret().prop_map(|s| (s.clone(), vec![s])),
        url_list().prop_filter("holds a secret", |(_, secrets)| !secrets.is_empty()),
    ];
    let plain_value = prop_oneof![plain().prop_map(|text| (text, Vec::new())), url_list()];
    prop_oneof![
        (prop::sample::select(SECRET_KEYS), secret_value).prop_map(|(key, (value, secrets))| (
            key.to_owned(),
            value,
            secrets
        )),
        (prop::sample::select(PLAIN_KEYS), plain_value).prop_map(|(key, (value, secrets))| (
            key.to_owned(),
            value,
            secrets
        )),
    ]
}

fn build_env(entries: &[(String, String, Vec<String>)]) -> EnvMap {
    let mut env = EnvMap::new();
    for (key, value, _) in entries {
        let inserted = env.insert(key.clone(), value.clone());
        assert!(inserted.is_ok(), "{key}: {inserted:?}");
    }
    env
}

/// Every byte as `%XX`.
fn encode_all(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// One query pair: raw text and the secrets its value holds.
fn query_pair() -> impl Strategy<Value = (String, Vec<String>)> {
    let sensitive = (
        prop::sample::select(SENSITIVE_NAMES),
        prop_oneof![secret().prop_map(|s| (s.clone(), vec![s])), url_list()],
    );
    let other = (
        prop::sample::select(PLAIN_NAMES),
        prop_oneof![plain().prop_map(|text| (text, Vec::new())), url_list()],
    );
    let name_style = 0..3u8;
    let value_style = 0..2u8;
    (prop_oneof![sensitive, other], name_style, value_style).prop_map(
        |((name, (value, secrets)), name_style, value_style)| {
            let name = match name_style {
                0 => name.to_owned(),
                1 => encode_all(name),
                _ => utf8_percent_encode(name, NON_ALPHANUMERIC).to_string(),
            };
            let value = if value_style == 0 && !value.contains('&') {
                value
            } else {
                utf8_percent_encode(&value, NON_ALPHANUMERIC).to_string()
            };
            (format!("{name}={value}"), secrets)
        },
    )
}

/// No secret appears whole in `output`, and no fragment of one either: `output` holds no run of
/// 4 or more `N`–`Z` letters (callers pass only text where just secrets could put such a run).
fn assert_absent(output: &str, secrets: &[String]) -> Result<(), TestCaseError> {
    for secret in secrets {
        prop_assert!(
            !output.contains(secret.as_str()),
            "{secret:?} in {output:?}"
        );
    }
    let mut run = 0;
    for c in output.chars() {
        run = if ('N'..='Z').contains(&c) { run + 1 } else { 0 };
        prop_assert!(run < 4, "a secret fragment in {output:?}");
    }
    Ok(())
}

/// The values of `env`, one a line (keys such as `DB_PASSWORD` hold `N`–`Z` runs themselves).
fn values(env: &EnvMap) -> String {
    env.iter()
        .map(|(_, value)| value)
        .collect::<Vec<_>>()
        .join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn non_secrets_view_hides_secrets_and_passwords(entries in prop::collection::vec(env_entry(), 0..12)) {
        let env = build_env(&entries);
        let secrets: Vec<String> = entries.iter().flat_map(|(_, _, s)| s.clone()).collect();
        let rules = rules();
        let shown = mask_env(&env, &rules, Reveal::NonSecrets);
        assert_absent(&values(&shown), &secrets)?;
        let text = shown.serialize();
        prop_assert!(secrets.iter().all(|secret| !text.contains(secret.as_str())));
        prop_assert_eq!(shown.keys().collect::<Vec<_>>(), env.keys().collect::<Vec<_>>());
        for (key, value) in env.iter() {
            let expected = if rules.is_secret_key(key) {
                MASK
            } else if value.contains("://") {
                continue;
            } else {
                value
            };
            prop_assert_eq!(shown.get(key), Some(expected));
        }
        let app = vec!["app_only".to_owned()];
        let with_app = mask_env_with(&env, &rules, &app, Reveal::NonSecrets);
        assert_absent(&values(&with_app), &secrets)?;
        if env.contains_key("APP_ONLY") {
            prop_assert_eq!(with_app.get("APP_ONLY"), Some(MASK));
        }
    }

    #[test]
    fn nothing_view_shows_only_masks(entries in prop::collection::vec(env_entry(), 0..12)) {
        let env = build_env(&entries);
        let secrets: Vec<String> = entries.iter().flat_map(|(_, _, s)| s.clone()).collect();
        let shown = mask_env(&env, &rules(), Reveal::Nothing);
        assert_absent(&values(&shown), &secrets)?;
        let text = shown.serialize();
        prop_assert!(secrets.iter().all(|secret| !text.contains(secret.as_str())));
        prop_assert_eq!(shown.len(), env.len());
        prop_assert!(shown.iter().all(|(_, value)| value == MASK));
        prop_assert_eq!(mask_env(&env, &rules(), Reveal::Everything), env);
    }

    #[test]
    fn query_redaction_hides_secrets(pairs in prop::collection::vec(query_pair(), 0..8)) {
        let query = pairs.iter().map(|(pair, _)| pair.as_str()).collect::<Vec<_>>().join("&");
        let secrets: Vec<String> = pairs.iter().flat_map(|(_, s)| s.clone()).collect();
        let redacted = redact_query(&query, &rules());
        assert_absent(&redacted, &secrets)?;
        assert_absent(&percent_decode_str(&redacted).decode_utf8_lossy(), &secrets)?;
        prop_assert_eq!(redacted.split('&').count(), query.split('&').count());
    }

    #[test]
    fn form_redaction_hides_secrets(pairs in prop::collection::vec(query_pair(), 0..8)) {
        let decoded: Vec<(String, String)> = pairs
            .iter()
            .map(|(pair, _)| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
                (decode(name), decode(value))
            })
            .collect();
        let secrets: Vec<String> = pairs.iter().flat_map(|(_, s)| s.clone()).collect();
        let redacted = redact_form_pairs(&decoded, &rules());
        prop_assert_eq!(redacted.len(), decoded.len());
        for ((name, value), (original_name, _)) in redacted.iter().zip(&decoded) {
            prop_assert_eq!(name, original_name);
            assert_absent(value, &secrets)?;
        }
    }

    #[test]
    fn text_redaction_hides_known_secrets_and_passwords(
        (text, passwords) in url_list(),
        known in secret(),
        filler in plain(),
    ) {
        let text = format!("{filler} {known} {text} {known}{filler}");
        let redacted = redact_text(&text, &[known.as_str()]);
        assert_absent(&redacted, &passwords)?;
        prop_assert!(!redacted.contains(known.as_str()));
        prop_assert!(redacted.contains(REDACTED));
    }

    #[test]
    fn env_round_trips(
        entries in prop::collection::vec(
            ("[A-Za-z_é][A-Za-z0-9_é.-]{0,10}", "[^\n]{0,24}".prop_filter("no trailing CR", |v| !v.ends_with('\r'))),
            0..10,
        ),
    ) {
        let mut env = EnvMap::new();
        for (key, value) in &entries {
            prop_assert!(env.insert(key.clone(), value.clone()).is_ok());
        }
        let text = env.serialize();
        let parsed = EnvMap::parse(&text);
        prop_assert_eq!(parsed.serialize(), text);
        prop_assert_eq!(parsed, env);
    }

    #[test]
    fn env_text_round_trips_after_one_parse(text in "[A-Za-z =\r\n日é]{0,80}|\\PC{0,80}") {
        let once = EnvMap::parse(&text).serialize();
        prop_assert_eq!(EnvMap::parse(&once).serialize(), once);
    }

    #[test]
    fn nothing_panics_on_arbitrary_input(text in any::<String>()) {
        let rules = rules();
        let _ = mask_url_credentials(&text);
        let _ = redact_query(&text, &rules);
        let _ = redact_text(&text, &[text.as_str(), "abcd"]);
        let env = EnvMap::parse(&text);
        let _ = mask_env(&env, &rules, Reveal::NonSecrets);
        let _ = rules.is_secret_key(&text);
        let _ = rules.is_sensitive_name(&text);
    }

    #[test]
    fn url_like_input_never_panics_and_masking_is_idempotent(
        text in "[:/@%a-cA-C0-9\\[\\]?#&=+ ,\"\r\né日]{0,64}",
    ) {
        let once = mask_url_credentials(&text).into_owned();
        prop_assert_eq!(mask_url_credentials(&once).into_owned(), once.clone());
        let redacted = redact_query(&text, &rules());
        prop_assert_eq!(redacted.split('&').count(), text.split('&').count());
        let pairs = vec![(text.clone(), text.clone())];
        prop_assert_eq!(redact_form_pairs(&pairs, &rules()).len(), 1);
    }
}
