//! Property tests of what this crate reads from outside: URLs and names from flags, env vars,
//! config and state files (`OrgUrl`, deployment names), and Dagster+'s answers (the GraphQL
//! envelope). Each input runs in a forked child with a time limit, so a parser that hangs fails
//! the test instead of stalling it.

use proptest::prelude::*;
use reqwest::StatusCode;

use crate::endpoint::{OrgUrl, UrlDerivation, validate_deployment_name};
use crate::error::Error;
use crate::token::ApiToken;
use crate::transport::{Attempt, ClientOptions, Idempotency, Transport};

const TOKEN: &str = "user:PROPERTY-t0ken-77e1";

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        timeout: 5_000,
        ..ProptestConfig::default()
    }
}

fn transport() -> Transport {
    Transport::new(
        ApiToken::new(TOKEN),
        &OrgUrl::parse("https://acme.dagster.cloud").unwrap(),
        ClientOptions::default(),
    )
    .unwrap()
}

/// The text of whatever error an attempt ended in, if any.
fn error_text(attempt: &Attempt) -> Option<String> {
    let error: &Error = match attempt {
        Attempt::Data(_) | Attempt::Maintenance { .. } => return None,
        Attempt::Retry { error, .. } | Attempt::Fail(error) => error,
    };
    Some(format!("{error} {error:?}"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_url_text_is_a_usable_org_url_or_an_error(text in "\\PC{0,200}") {
        if let Ok(url) = OrgUrl::parse(&text) {
            let parsed = url::Url::parse(url.as_str()).unwrap();
            prop_assert!(matches!(parsed.scheme(), "http" | "https"));
            prop_assert!(parsed.username().is_empty() && parsed.password().is_none());
            prop_assert!(parsed.query().is_none() && parsed.fragment().is_none());
        }
    }

    #[test]
    fn credentials_in_a_url_never_reach_the_error(
        scheme in prop_oneof![Just("https://"), Just("http://"), Just("ftp://"), Just("")],
        user in "[a-z]{0,6}",
        secret in "[A-Za-z0-9/?#%]{6,20}",
        host in "[a-z.]{1,20}(:[0-9]{1,6})?",
        tail in "[/?#a-z=]{0,20}",
    ) {
        let text = format!("{scheme}{user}:{secret}@{host}{tail}");
        if let Err(error) = OrgUrl::parse(&text) {
            let shown = format!("{error} {error:?}");
            prop_assert!(!shown.contains(&secret), "{}", shown);
        }
    }

    #[test]
    fn a_configured_url_is_never_replaced_by_a_default(
        base in prop_oneof![
            "https?://[a-z]{1,10}(\\.[a-z]{2,5}){1,2}(:[0-9]{2,4})?(/[a-z]{1,8}){0,2}",
            "http://127\\.0\\.0\\.1:[0-9]{2,4}",
            "https://[a-z]{1,6}\\.dagster\\.cloud",
        ],
        organization in "[a-z][a-z0-9-]{0,20}[a-z0-9]",
    ) {
        let (url, derivation) = OrgUrl::from_configured(&base, &organization).unwrap();
        let host = |text: &str| url::Url::parse(text).unwrap().host_str().unwrap_or_default().to_owned();
        match derivation {
            UrlDerivation::Base | UrlDerivation::AlreadyOrganization => {
                prop_assert!(url.as_str().starts_with(base.trim_end_matches('/')), "{} from {}", url, base);
            }
            UrlDerivation::Region(_) => {
                // Only Dagster+'s own region bases are expanded, and only within dagster.cloud.
                prop_assert!(host(&base) == "dagster.cloud" || host(&base).ends_with(".dagster.cloud"));
                prop_assert!(host(url.as_str()).ends_with(".dagster.cloud"));
            }
        }
    }

    #[test]
    fn accepted_deployment_names_stay_one_path_segment(name in "\\PC{0,40}") {
        if validate_deployment_name(&name).is_ok() {
            prop_assert!(!name.contains(['/', '?', '#', '%', '\\', ' ']));
            prop_assert!(name != "." && name != "..");
            let url = OrgUrl::parse("https://acme.dagster.cloud").unwrap();
            let endpoint = url.deployment_url(&name).unwrap();
            let parsed = url::Url::parse(&endpoint).unwrap();
            prop_assert_eq!(parsed.path(), format!("/{name}"));
        }
    }

    #[test]
    fn any_answer_is_interpreted_without_panicking_or_echoing_the_token(
        body in prop_oneof![
            "\\PC{0,300}",
            "[{}\\[\\]\":,a-z ]{0,200}".prop_map(|text| text.replace("a", TOKEN)),
            Just(format!(r#"{{"errors":[{{"message":"bad {TOKEN}"}}]}}"#)),
            Just(format!(r#"{{"maintenance":{{"message":"{TOKEN}","retry_interval":-1,"timeout":1e400}}}}"#)),
            Just(format!(r#"{{"errors":[{{"extensions":{{"code":"UNAUTHORIZED"}},"message":"{TOKEN}"}}]}}"#)),
        ],
        status in prop_oneof![Just(200u16), Just(400), Just(401), Just(409), Just(429), Just(500), Just(503), 100u16..600],
        idempotent in any::<bool>(),
    ) {
        let transport = transport();
        let idempotency = if idempotent { Idempotency::Idempotent } else { Idempotency::NotIdempotent };
        let status = StatusCode::from_u16(status).unwrap();
        let attempt = transport.interpret("https://acme.dagster.cloud/graphql", "Op", status, None, body.as_bytes(), idempotency);
        if let Some(text) = error_text(&attempt) {
            prop_assert!(!text.contains(TOKEN), "{}", text);
        }
        if let Attempt::Maintenance { message, .. } = &attempt {
            prop_assert!(!message.contains(TOKEN), "{}", message);
        }
    }

    #[test]
    fn deeply_nested_answers_are_interpreted_in_time(depth in 200usize..50_000) {
        let body = format!("{{\"data\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        // The JSON parser's depth limit refuses it, promptly.
        let attempt = transport().interpret("https://acme.dagster.cloud/graphql", "Op", StatusCode::OK, None, body.as_bytes(), Idempotency::Idempotent);
        prop_assert!(error_text(&attempt).is_some());
    }
}
