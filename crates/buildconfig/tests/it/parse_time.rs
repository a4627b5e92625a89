//! Parse time is bounded by the input's size: documents built to make the YAML or TOML parser
//! slow (deep nesting, long dotted keys) are refused at once with a positioned error, and
//! arbitrary inputs parse within a time bound each. The bound is loose (the failure this guards
//! against took tens of seconds); speed itself is measured by the benchmarks.

use std::path::Path;
use std::time::{Duration, Instant};

use dagster_deploy_buildconfig::{DagsterCloudYaml, DgContext};
use proptest::prelude::*;

/// Longest any one input may take to parse or be refused, on a busy two-core machine.
const BOUND: Duration = Duration::from_secs(3);

fn timed<T>(what: &str, size: usize, parse: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = parse();
    let elapsed = start.elapsed();
    assert!(
        elapsed < BOUND,
        "{what} ({size} bytes) took {elapsed:?}, more than {BOUND:?}"
    );
    result
}

fn parse_yaml(what: &str, text: &str) -> Result<DagsterCloudYaml, String> {
    timed(what, text.len(), || {
        DagsterCloudYaml::parse(text, Path::new("deep.yaml")).map_err(|err| crate::render(&err))
    })
}

fn parse_dg_toml(what: &str, text: &str) -> Result<DgContext, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dg.toml"), text).unwrap();
    timed(what, text.len(), || {
        DgContext::discover(dir.path()).map_err(|err| crate::render(&err))
    })
}

#[test]
fn two_hundred_kilobytes_of_nested_lists_are_refused_at_once_with_the_position() {
    let cases = [
        ("flow lists", "[".repeat(200_000)),
        (
            "closed flow lists",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        ),
        ("flow lists with items", "[a, ".repeat(50_000)),
        ("flow mappings", "{".repeat(200_000)),
        ("block lists on one line", "- ".repeat(100_000)),
        ("block mapping keys on one line", "? ".repeat(100_000)),
        (
            "a location whose code source nests",
            format!(
                "locations:\n  - location_name: a\n    code_source: {}\n",
                "[".repeat(200_000)
            ),
        ),
    ];
    for (what, text) in cases {
        let error = parse_yaml(what, &text).unwrap_err();
        assert!(error.contains("deep.yaml:"), "{what}: {error}");
        assert!(error.contains("nest"), "{what}: {error}");
        assert!(error.contains("help: "), "{what}: {error}");
    }
}

#[test]
fn nesting_up_to_the_limit_still_parses() {
    // 120 levels of lists under a location's container context: deep, but allowed.
    let text = format!(
        "locations:\n  - location_name: a\n    code_source: {{package_name: a}}\n    container_context:\n      k8s:\n        env_vars: []\n        deep: {}{}\n",
        "[".repeat(120),
        "]".repeat(120)
    );
    let config = parse_yaml("120 levels", &text).unwrap();
    assert_eq!(config.locations().len(), 1);
}

#[test]
fn long_dotted_toml_keys_are_refused_at_once_with_the_position() {
    let key = vec!["a"; 100_000].join(".");
    for (what, text) in [
        (
            "dotted key",
            format!("[project]\nroot_module = \"x\"\n{key} = 1\n"),
        ),
        (
            "table header",
            format!("[project]\nroot_module = \"x\"\n[{key}]\n"),
        ),
        (
            "inline table key",
            format!("[project]\nroot_module = \"x\"\nx = {{{key} = 1}}\n"),
        ),
    ] {
        let error = parse_dg_toml(what, &text).unwrap_err();
        assert!(error.contains("dg.toml:3:"), "{what}: {error}");
        assert!(error.contains("dotted key"), "{what}: {error}");
    }
}

#[test]
fn large_valid_yaml_parses_in_time() {
    // 5,000 locations (about 800 KB): a big monorepo.
    let mut text = String::from("defaults:\n  build: {registry: ghcr.io/acme/base}\nlocations:\n");
    for index in 0..5_000 {
        text.push_str(&format!(
            "  - location_name: loc-{index:04}\n    code_source: {{package_name: pkg_{index}}}\n    build:\n      directory: ./loc-{index:04}\n    container_context: {{k8s: {{env_vars: [A=1, B=2]}}}}\n"
        ));
    }
    let config = parse_yaml("5,000 locations", &text).unwrap();
    assert_eq!(config.locations().len(), 5_000);
}

/// A YAML document nesting `depth` collections, each of a random style, with random scalars
/// and comments around them.
fn nested_yaml() -> impl Strategy<Value = String> {
    let level = prop_oneof![
        Just(("[", "]")),
        Just(("{k: ", "}")),
        Just(("[a, ", ", 'x[y']")),
        Just(("{\"a\": [", "]}")),
    ];
    (
        proptest::collection::vec(level, 1..400),
        proptest::collection::vec("[a-z]{0,3}", 0..20),
        0usize..3,
    )
        .prop_map(|(levels, padding, block_prefix)| {
            let mut text = String::from("locations:\n  - location_name: a\n    code_source: ");
            text.push_str(&"- ".repeat(block_prefix));
            for (open, _) in &levels {
                text.push_str(open);
            }
            text.push_str(&padding.join(" "));
            for (_, close) in levels.iter().rev() {
                text.push_str(close);
            }
            text.push_str(" # done\n");
            text
        })
}

proptest! {
    // Each case runs in a forked child that is stopped after 10 s: a parser that hangs fails
    // the test instead of stalling it (and one that is merely slow fails `timed`).
    #![proptest_config(ProptestConfig { cases: 64, timeout: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn nested_yaml_of_any_depth_is_parsed_or_refused_in_time(text in nested_yaml()) {
        let _ = parse_yaml("nested YAML", &text);
    }

    #[test]
    fn repeated_yaml_fragments_are_parsed_or_refused_in_time(
        fragment in "[-?:\\[\\]{}, a#'\"\n]{1,6}",
        count in 1usize..40_000,
    ) {
        let text = fragment.repeat(count);
        let _ = parse_yaml("repeated fragment", &text);
    }

    #[test]
    fn repeated_toml_fragments_are_parsed_or_refused_in_time(
        fragment in "[a.=\\[\\]{},\"' \n1]{1,6}",
        count in 1usize..40_000,
    ) {
        let text = format!("[project]\nroot_module = \"x\"\n{}", fragment.repeat(count));
        let _ = parse_dg_toml("repeated fragment", &text);
    }
}
