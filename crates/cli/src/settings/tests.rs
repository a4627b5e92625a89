//! The config file readers against arbitrary and hostile text: they never panic, finish in time
//! (each input runs in a forked child with a time limit), and never quote the token in an error.

use std::path::Path;

use proptest::prelude::*;

use super::{parse_dg_config, parse_legacy_config, redact_quoted};

const TOKEN: &str = "user:PROP-t0ken-9f2c";

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        timeout: 5_000,
        ..ProptestConfig::default()
    }
}

/// Legacy YAML lines, some valid, some not, with the token in every kind of place.
fn legacy_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(format!("user_token: {TOKEN}")),
        Just(format!("user_token: \"{TOKEN}\"")),
        Just(format!("user_token: [{TOKEN}")),
        Just(format!("agent_timeout: {TOKEN}")),
        Just(format!("organization: {{{TOKEN}")),
        Just(format!("{TOKEN}: 1")),
        Just(format!("url: {TOKEN}")),
        Just(format!("- {TOKEN}")),
        Just("organization: acme".to_owned()),
        Just("url: https://eu.dagster.cloud".to_owned()),
        Just("agent_timeout: 30".to_owned()),
        "[a-z_]{1,12}: [a-z0-9\"'{}\\[\\]:, ]{0,20}",
    ]
}

/// dg.toml lines, likewise.
fn dg_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[cli.plus]".to_owned()),
        Just("[cli]".to_owned()),
        Just(format!("user_token = {TOKEN}")),
        Just(format!("user_token = \"{TOKEN}\"")),
        Just(format!("user_token = \"{TOKEN}")),
        Just(format!("agent_timeout = \"{TOKEN}\"")),
        Just(format!("organization = [\"{TOKEN}\"]")),
        Just(format!("\"{TOKEN}\" = 1")),
        Just(format!("url = {{ x = \"{TOKEN}\" }}")),
        Just("organization = \"acme\"".to_owned()),
        Just("agent_timeout = 30".to_owned()),
        "[a-z_.\\[\\]]{1,12} = [a-z0-9\"'{}\\[\\]=, ]{0,20}",
    ]
}

fn assert_hides_token(error: &crate::failure::Failure) {
    let rendered = error.render();
    assert!(!rendered.contains(TOKEN), "{rendered}");
    assert!(!rendered.contains("PROP-t0ken"), "{rendered}");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn legacy_config_errors_never_quote_the_token(lines in prop::collection::vec(legacy_line(), 0..8)) {
        if let Err(error) = parse_legacy_config(&lines.join("\n"), Path::new("/home/u/.dagster_cloud_cli/config")) {
            assert_hides_token(&error);
            prop_assert!(error.message.starts_with("/home/u/.dagster_cloud_cli/config"), "{}", error.message);
        }
    }

    #[test]
    fn dg_config_errors_never_quote_the_token(lines in prop::collection::vec(dg_line(), 0..8)) {
        if let Err(error) = parse_dg_config(&lines.join("\n"), Path::new("/home/u/.config/dg.toml")) {
            assert_hides_token(&error);
            prop_assert!(error.message.starts_with("/home/u/.config/dg.toml"), "{}", error.message);
        }
    }

    #[test]
    fn any_text_is_a_legacy_config_or_a_clean_error(text in "\\PC{0,400}") {
        let _ = parse_legacy_config(&text, Path::new("config"));
    }

    #[test]
    fn any_text_is_a_dg_config_or_a_clean_error(text in "\\PC{0,400}") {
        let _ = parse_dg_config(&text, Path::new("dg.toml"));
    }

    #[test]
    fn deeply_nested_config_files_fail_in_time(depth in 100usize..20_000) {
        let yaml = format!("url: {}{}", "[".repeat(depth), "]".repeat(depth));
        prop_assert!(parse_legacy_config(&yaml, Path::new("config")).is_err());
        let block = format!("url:\n{}x\n", "- ".repeat(depth));
        prop_assert!(parse_legacy_config(&block, Path::new("config")).is_err());
        let mappings = format!("url:\n{}", (0..depth.min(2_000)).map(|level| format!("{}k:\n", " ".repeat(level + 1))).collect::<String>());
        prop_assert!(parse_legacy_config(&mappings, Path::new("config")).is_err());
        let toml = format!("[cli.plus]\nurl = {}{}", "[".repeat(depth), "]".repeat(depth));
        prop_assert!(parse_dg_config(&toml, Path::new("dg.toml")).is_err());
    }

    #[test]
    fn long_config_files_parse_in_time(repeat in 1_000usize..20_000) {
        let yaml = format!("organization: acme\n{}", "# comment line\n".repeat(repeat));
        prop_assert!(parse_legacy_config(&yaml, Path::new("config")).is_ok());
        let toml = format!("[cli.plus]\norganization = \"acme\"\n{}", "# comment\n".repeat(repeat));
        prop_assert!(parse_dg_config(&toml, Path::new("dg.toml")).is_ok());
    }
}

#[test]
fn every_key_the_reference_writes_is_read_from_both_files() {
    let legacy = parse_legacy_config(
        "url: https://eu.dagster.cloud\norganization: acme\ndefault_deployment: prod\nuser_token: t\nagent_timeout: 30\n",
        Path::new("config"),
    )
    .unwrap();
    let dg = parse_dg_config(
        "[cli.plus]\nurl = \"https://eu.dagster.cloud\"\norganization = \"acme\"\ndefault_deployment = \"prod\"\nuser_token = \"t\"\nagent_timeout = 30\n",
        Path::new("dg.toml"),
    )
    .unwrap()
    .unwrap();
    for config in [legacy, dg] {
        assert_eq!(config.url.as_deref(), Some("https://eu.dagster.cloud"));
        assert_eq!(config.organization.as_deref(), Some("acme"));
        assert_eq!(config.default_deployment.as_deref(), Some("prod"));
        assert_eq!(config.user_token.as_deref(), Some("t"));
        assert_eq!(config.agent_timeout, Some(30));
    }
}

#[test]
fn quoted_words_are_redacted_unless_they_are_config_keys() {
    assert_eq!(
        redact_quoted("invalid type: string \"user:abc\", expected u64"),
        "invalid type: string \"…\", expected u64"
    );
    assert_eq!(
        redact_quoted("unknown field `user:abc`, expected one of `url`, `user_token`"),
        "unknown field `…`, expected one of `url`, `user_token`"
    );
    assert_eq!(redact_quoted("unclosed \"quote"), "unclosed \"…");
    assert_eq!(redact_quoted("no quotes"), "no quotes");
}

#[test]
fn flow_nesting_is_refused_before_parsing_but_quotes_and_comments_do_not_count() {
    let deep = format!("url: {}", "[".repeat(40));
    let error = parse_legacy_config(&deep, Path::new("config")).unwrap_err();
    assert!(
        error.message.contains("nested more than 32 levels"),
        "{}",
        error.message
    );
    let quoted = format!(
        "organization: \"{}\"  # {}\n",
        "[".repeat(40),
        "{".repeat(40)
    );
    assert!(parse_legacy_config(&quoted, Path::new("config")).is_ok());
}
