//! Property tests of every parser that reads input from outside: image references (flags,
//! config files, state files), `WWW-Authenticate` challenges and token responses (registries),
//! Docker's `config.json` and credential helper output, manifests and indexes (registries and
//! image layouts written by other jobs), and `--platform`.
//!
//! Each property runs every generated input in a forked child with a time limit
//! (`ProptestConfig::timeout`), so a parser that hangs or turns quadratic on a large input fails
//! the test instead of stalling it. Inputs go up to tens of kilobytes for that reason.

use proptest::prelude::*;

use crate::client::auth::challenge::{Challenge, parse_challenge, parse_token_response};
use crate::credentials::{parse_docker_config, parse_helper_output};
use crate::manifest::{self, ManifestContents};
use crate::platform::Platform;
use crate::reference::ImageRef;

/// Cases per property, and the time each may take (milliseconds, debug build, loaded machine).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        timeout: 5_000,
        ..ProptestConfig::default()
    }
}

/// A path component of a repository name, as the grammar allows it.
fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}"
}

/// A valid tag.
fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}"
}

fn digest() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}".prop_map(|hex| format!("sha256:{hex}"))
}

/// A valid reference and the parts it must parse into.
fn reference() -> impl Strategy<Value = (String, String, String, Option<String>)> {
    (
        prop_oneof![
            Just("ghcr.io".to_owned()),
            Just("127.0.0.1:5000".to_owned()),
            Just("localhost".to_owned()),
            "[a-z]{1,8}\\.[a-z]{2,4}(:[0-9]{1,4})?"
                .prop_filter("Docker Hub names are normalised", |name| name
                    != "docker.io"),
        ],
        prop::collection::vec(component(), 1..4),
        prop::option::of(tag()),
    )
        .prop_map(|(registry, path, tag)| {
            let repository = path.join("/");
            let text = match &tag {
                Some(tag) => format!("{registry}/{repository}:{tag}"),
                None => format!("{registry}/{repository}"),
            };
            (text, registry, repository, tag)
        })
}

/// Whatever a parsed reference holds is safe to put in a URL path.
fn assert_path_safe(image: &ImageRef) {
    for part in image.repository().split('/') {
        assert!(!part.is_empty() && part != "." && part != "..", "{image:?}");
        assert!(
            part.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)),
            "{image:?}"
        );
    }
    if let Some(tag) = image.tag() {
        assert!(ImageRef::validate_tag(tag).is_ok(), "{image:?}");
    }
    if let Some(digest) = image.digest() {
        assert!(ImageRef::validate_digest(digest).is_ok(), "{image:?}");
        assert!(!digest.contains(['/', '%', '?', '#']), "{image:?}");
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_parses_as_a_path_safe_reference_or_is_an_error(text in "\\PC{0,300}") {
        if let Ok(image) = ImageRef::parse(&text) {
            assert_path_safe(&image);
            let again = ImageRef::parse(&image.to_string()).unwrap();
            prop_assert_eq!(again, image);
        }
    }

    #[test]
    fn reference_like_text_parses_as_a_path_safe_reference_or_is_an_error(
        text in "[a-zA-Z0-9./:@_%-]{0,120}",
    ) {
        if let Ok(image) = ImageRef::parse(&text) {
            assert_path_safe(&image);
        }
    }

    #[test]
    fn valid_references_parse_into_their_parts((text, registry, repository, tag) in reference(), pinned in prop::option::of(digest())) {
        let text = match &pinned {
            Some(digest) => format!("{text}@{digest}"),
            None => text,
        };
        let image = ImageRef::parse(&text).unwrap();
        prop_assert_eq!(image.registry(), registry.as_str());
        prop_assert_eq!(image.repository(), repository.as_str());
        let expected_tag = match (&tag, &pinned) {
            (None, None) => Some("latest"),
            (tag, _) => tag.as_deref(),
        };
        prop_assert_eq!(image.tag(), expected_tag);
        prop_assert_eq!(image.digest(), pinned.as_deref());
        prop_assert_eq!(image.to_string(), if tag.is_none() && pinned.is_none() { format!("{text}:latest") } else { text });
    }

    #[test]
    fn huge_references_are_rejected_quickly(repeat in 1_000usize..50_000, piece in "[a-z/:.@]{1,4}") {
        let text = format!("ghcr.io/{}", piece.repeat(repeat));
        prop_assert!(ImageRef::parse(&text).is_err() || text.len() <= 255);
    }

    #[test]
    fn with_tag_and_with_digest_accept_only_tags_and_digests(text in "\\PC{0,80}") {
        let image = ImageRef::parse("ghcr.io/team/app").unwrap();
        if let Ok(tagged) = image.with_tag(&text) {
            assert_path_safe(&tagged);
        }
        if let Ok(pinned) = image.with_digest(&text) {
            assert_path_safe(&pinned);
        }
    }

    #[test]
    fn any_challenge_header_parses_or_is_ignored_without_panicking(text in "\\PC{0,400}") {
        let _ = parse_challenge(&text);
    }

    #[test]
    fn long_challenge_headers_parse_in_linear_time(
        repeat in 1_000usize..20_000,
        piece in "[a-z=\",\\\\ ]{1,6}",
    ) {
        let _ = parse_challenge(&format!("Bearer {}", piece.repeat(repeat)));
    }

    #[test]
    fn bearer_challenges_round_trip_with_quotes_and_commas(
        realm in "https://[a-z]{1,10}\\.example/[a-z/,]{0,20}",
        service in "[a-zA-Z0-9.,:\" -]{0,30}",
        scope in "[a-z/:,]{0,40}",
    ) {
        let quote = |value: &str| value.replace('\\', "\\\\").replace('"', "\\\"");
        let header = format!(
            r#"Bearer realm="{}",service="{}",scope="{}""#,
            quote(&realm), quote(&service), quote(&scope)
        );
        prop_assert_eq!(
            parse_challenge(&header),
            Some(Challenge::Bearer { realm, service: Some(service) })
        );
    }

    #[test]
    fn docker_config_errors_never_quote_the_file(
        secret in "[A-Za-z0-9]{12,24}",
        cut in 0usize..80,
    ) {
        let text = format!(r#"{{"auths":{{"r.io":{{"auth":"{secret}","password":"{secret}"}}}},"credsStore":"x"}}"#);
        let broken = &text[..cut.min(text.len())];
        if let Err(error) = parse_docker_config(broken) {
            prop_assert!(!error.contains(&secret), "{}", error);
        }
        prop_assert!(parse_docker_config(&text).is_ok());
    }

    #[test]
    fn any_docker_config_text_parses_or_fails_cleanly(text in "\\PC{0,400}") {
        let _ = parse_docker_config(&text);
    }

    #[test]
    fn helper_output_errors_never_quote_the_secret(
        secret in "[A-Za-z0-9]{12,24}",
        shape in 0usize..5,
    ) {
        let output = match shape {
            0 => format!(r#"{{"Username":"u","Secret":"{secret}"}}"#),
            1 => format!(r#"{{"Username":1,"Secret":"{secret}"}}"#),
            2 => format!(r#"{{"Secret":"{secret}"}}"#),
            3 => format!(r#"{{"Username":"<token>","Secret":"{secret}"}}"#),
            _ => format!("not json {secret}"),
        };
        match parse_helper_output(output.as_bytes()) {
            Ok(found) => prop_assert_eq!(found.password.expose(), secret.as_str()),
            Err(error) => prop_assert!(!error.contains(&secret), "{}", error),
        }
    }

    #[test]
    fn token_responses_parse_or_fail_without_quoting_them(text in "\\PC{0,300}") {
        if let Err(error) = parse_token_response(text.as_bytes()) {
            prop_assert!(text.len() < 8 || !error.contains(&text), "{}", error);
        }
    }

    #[test]
    fn any_manifest_bytes_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..2_000)) {
        let _ = manifest::parse(&bytes, "fuzz");
        let _ = manifest::media_type_of(&bytes, "fuzz");
    }

    #[test]
    fn parsed_manifests_hold_only_valid_digests(
        digests in prop::collection::vec(
            prop_oneof![digest(), "\\PC{0,70}", "sha256:[./a-f0-9%]{1,70}"],
            1..6,
        ),
        index in any::<bool>(),
    ) {
        let descriptors: Vec<serde_json::Value> = digests
            .iter()
            .map(|digest| serde_json::json!({"mediaType": "m", "digest": digest, "size": 1}))
            .collect();
        let document = if index {
            serde_json::json!({"manifests": descriptors})
        } else {
            serde_json::json!({"config": descriptors[0], "layers": descriptors[1..]})
        };
        let bytes = serde_json::to_vec(&document).unwrap();
        let all_valid = digests.iter().all(|digest| ImageRef::validate_digest(digest).is_ok());
        match manifest::parse(&bytes, "fuzz") {
            Ok(ManifestContents::Index { manifests }) => {
                prop_assert!(all_valid);
                prop_assert_eq!(manifests.len(), digests.len());
            }
            Ok(ManifestContents::Image { layers, .. }) => {
                prop_assert!(all_valid);
                prop_assert_eq!(layers.len() + 1, digests.len());
            }
            Err(_) => prop_assert!(!all_valid),
        }
    }

    #[test]
    fn deeply_nested_manifests_fail_quickly(depth in 100usize..5_000) {
        let bytes = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        prop_assert!(manifest::parse(bytes.as_bytes(), "fuzz").is_err());
    }

    #[test]
    fn any_platform_text_parses_or_fails_cleanly(text in "\\PC{0,100}") {
        if let Ok(platform) = text.parse::<Platform>() {
            prop_assert_eq!(platform.to_string().parse::<Platform>().unwrap(), platform);
        }
    }
}
