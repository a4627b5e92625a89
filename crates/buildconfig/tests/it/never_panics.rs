//! Property tests: arbitrary text, and arbitrary mutations of a valid file, never make the parser
//! panic; any error it returns renders with the file name.

use std::path::Path;

use dagster_deploy_buildconfig::DagsterCloudYaml;
use proptest::prelude::*;

const VALID: &str = "defaults:
  build: {registry: ghcr.io/acme/base}
  container_context:
    k8s: {env_vars: [A=1], namespace: n}
locations:
  - location_name: a
    code_source: {module_name: a.defs}
    build:
      directory: .
  - location_name: b
    code_source:
      package_name: b
    container_context:
      k8s:
        env_vars: [A=2]
";

fn check(text: &str) {
    if let Err(err) = DagsterCloudYaml::parse(text, Path::new("fuzz.yaml")) {
        let rendered = crate::render(&err);
        assert!(rendered.starts_with("error: fuzz.yaml"), "{rendered}");
        assert!(rendered.contains("help: "), "{rendered}");
        assert!(err.to_string().starts_with("fuzz.yaml"), "{err}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        check(&text);
    }

    #[test]
    fn yaml_like_text_never_panics(text in "[-:&*!{}\\[\\],'\"#|>? \n a-z0-9_.<]{0,200}") {
        check(&text);
    }

    #[test]
    fn mutated_valid_files_never_panic(position in 0usize..VALID.len(), insert in "[-:&*!{}\\[\\],'\"# \n\ta-z<]{0,4}", cut in 0usize..6) {
        let mut text = VALID.to_owned();
        let start = position.min(text.len());
        let end = (start + cut).min(text.len());
        text.replace_range(start..end, &insert);
        check(&text);
    }
}

#[test]
fn the_unmutated_valid_file_parses() {
    let config = DagsterCloudYaml::parse(VALID, Path::new("/r/fuzz.yaml")).unwrap();
    assert_eq!(config.locations().len(), 2);
}
