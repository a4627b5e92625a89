//! Tests of the on-disk JSON: byte-exact round trips of every recorded reference file, the
//! strictness rules of reference-behaviour §2.3 and the timestamp forms.

use std::path::{Path, PathBuf};

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every `location-*.json` under `tests/fixtures`, sorted.
fn recorded_state_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![fixtures()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("location-"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn parse(json: &str) -> Result<LocationState> {
    parse_location(Path::new("/state/location-x.json"), json.as_bytes())
}

const MINIMAL: &str = r#"{"url":"https://acme.dagster.cloud","deployment_name":"prod","location_file":"/w/dagster_cloud.yaml","location_name":"x","is_branch_deployment":false,"build":{"git_url":null,"commit_hash":null,"build_config":null},"status_url":null}"#;

/// `MINIMAL` with `"key":value` inserted at the top level or in `build`.
fn with_top(extra: &str) -> String {
    MINIMAL.replacen("\"url\"", &format!("{extra},\"url\""), 1)
}

#[test]
fn every_recorded_state_file_round_trips_byte_for_byte() {
    let files = recorded_state_files();
    assert_eq!(files.len(), 11, "fixture set changed: {files:?}");
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let state = parse_location(&path, &bytes).unwrap();
        assert_eq!(
            render_location(&state),
            String::from_utf8(bytes).unwrap(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn recorded_file_is_read_into_domain_types() {
    let path = fixtures().join("legacy-flow/statedir-after-deploy-success/location-warehouse.json");
    let state = parse_location(&path, &std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(state.location_name, "warehouse");
    assert_eq!(
        state.image(),
        Some("registry.example.com/data/warehouse:4f2a9c1-42")
    );
    assert_eq!(
        state
            .build
            .build_config
            .as_ref()
            .unwrap()
            .directory
            .as_deref(),
        Some("./pkg_a")
    );
    assert_eq!(state.history.len(), 2);
    let last = state.last_status().unwrap();
    assert_eq!(last.status, Status::Success);
    assert_eq!(last.log, "deploy successful");
    assert_eq!(last.timestamp.to_string(), "2026-11-26T13:47:56.725427Z");
}

#[test]
fn minimal_file_gets_reference_defaults_and_is_written_in_full() {
    let state = parse(MINIMAL).unwrap();
    assert!(state.selected);
    assert!(state.history.is_empty());
    assert_eq!(state.build_output, None);
    insta::assert_snapshot!(render_location(&state), @r#"{"url":"https://acme.dagster.cloud","deployment_name":"prod","location_file":"/w/dagster_cloud.yaml","location_name":"x","is_branch_deployment":false,"selected":true,"build":{"git_url":null,"commit_hash":null,"build_config":null,"git_provider":null,"repo_owner":null,"repo_name":null,"base_branch":null,"defs_base_path":null},"build_output":null,"defs_state_info":null,"status_url":null,"history":[],"project_dir":null}"#);
}

#[test]
fn unknown_keys_and_values_are_rejected_as_a_newer_schema_never_as_damage() {
    let check_newer = |json: String, needle: &str| {
        let err = parse(&json).unwrap_err();
        assert!(
            matches!(err, Error::NewerFormat { .. }),
            "{needle}: {err:?}"
        );
        let err = format!("{err}; {}", err.help().unwrap_or_default());
        assert!(err.contains("/state/location-x.json"), "{err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
        assert!(err.contains("newer version"), "{err}");
        assert!(err.contains("same (or a newer) version"), "{err}");
        // The file is not damaged: no advice to remove it or to start over.
        for advice in ["remove", "delete", "start"] {
            assert!(!err.contains(advice), "{advice:?} in {err}");
        }
    };
    check_newer(with_top(r#""surprise":1"#), "surprise");
    check_newer(with_top(r#""schema_version":2"#), "schema_version");
    check_newer(
        MINIMAL.replace(
            r#""build_config":null"#,
            r#""build_config":{"directory":null,"registry":null,"tag":"x"}"#,
        ),
        "tag",
    );
    check_newer(
        with_top(r#""build_output":{"strategy":"docker","image":"i","extra":1}"#),
        "extra",
    );
    check_newer(
        with_top(r#""build_output":{"strategy":"zip","image":"i"}"#),
        "zip",
    );
    check_newer(
        with_top(r#""history":[{"timestamp":"2026-01-01T00:00:00Z","status":"done","log":""}]"#),
        "done",
    );
}

#[test]
fn files_that_break_the_schema_are_damaged_and_say_how_to_start_over() {
    let check_corrupt = |json: String, needle: &str| {
        let err = parse(&json).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{needle}: {err:?}");
        let err = format!("{err}; {}", err.help().unwrap_or_default());
        assert!(err.contains("/state/location-x.json"), "{err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
        assert!(err.contains("start a new session"), "{err}");
        // Removing one location's file would silently drop that location from the deploy.
        assert!(!err.contains("remove"), "{err}");
    };
    check_corrupt(with_top(r#""build_output":{"image":"i"}"#), "strategy");
    check_corrupt(
        with_top(r#""history":[{"timestamp":"yesterday","status":"pending","log":""}]"#),
        "yesterday",
    );
    check_corrupt(MINIMAL.replace(r#","status_url":null"#, ""), "status_url");
    check_corrupt(MINIMAL.replace(r#""git_url":null,"#, ""), "git_url");
    check_corrupt(with_top(r#""selected":"yes""#), "boolean");
    check_corrupt("{\"url\":".to_owned(), "EOF");
    check_corrupt("[1,2]".to_owned(), "expected");
}

#[test]
fn unknown_build_keys_are_tolerated_and_kept() {
    let json = MINIMAL.replace(
        r#""build_config":null"#,
        r#""build_config":null,"future":{"a":[1,2]}"#,
    );
    let state = parse(&json).unwrap();
    let written = render_location(&state);
    assert!(
        written.contains(r#""defs_base_path":null,"future":{"a":[1,2]}}"#),
        "{written}"
    );
    assert_eq!(render_location(&parse(&written).unwrap()), written);
}

#[test]
fn python_executable_output_and_defs_state_round_trip() {
    let json = r#"{"url":"u","deployment_name":"d","location_file":"f","location_name":"x","is_branch_deployment":true,"selected":false,"build":{"git_url":"g","commit_hash":"c","build_config":{"directory":".","registry":null},"git_provider":"gitlab","repo_owner":"o","repo_name":"r","base_branch":"main","defs_base_path":"p"},"build_output":{"strategy":"python-executable","python_version":"3.11","image":null,"pex_tag":"files=abc:deps=def"},"defs_state_info":{"info_mapping":{"k1":{"version":"v1","create_timestamp":1732629000.25},"k2":null,"k3":{"version":"v3","create_timestamp":1700000000.0}}},"status_url":"s","history":[{"timestamp":"2024-03-05T14:07:00Z","status":"failed","log":"build failed"}],"project_dir":"/w"}"#;
    let state = parse(json).unwrap();
    assert!(!state.selected);
    assert_eq!(state.image(), None);
    assert_eq!(
        state.build_output,
        Some(BuildOutput::PythonExecutable {
            python_version: "3.11".into(),
            image: None,
            pex_tag: "files=abc:deps=def".into()
        })
    );
    let info = state.defs_state_info.as_ref().unwrap();
    assert_eq!(info.info_mapping.len(), 3);
    assert_eq!(info.info_mapping[1], ("k2".to_owned(), None));
    assert_eq!(render_location(&state), json);
}

#[test]
fn docker_output_defaults_optional_keys() {
    let state = parse(&with_top(
        r#""build_output":{"strategy":"docker","image":"reg/x:1"}"#,
    ))
    .unwrap();
    assert_eq!(
        state.build_output,
        Some(BuildOutput::Docker {
            image: "reg/x:1".into(),
            python_version: None,
            pex_bundle: false
        })
    );
}

#[test]
fn timestamps_are_read_in_every_reference_form_and_written_as_the_reference() {
    let check = |input: &str, written: &str, naive: bool| {
        let (timestamp, form) = parse_timestamp(input).unwrap();
        assert_eq!(form == TimestampForm::Naive, naive, "{input}");
        assert_eq!(format_timestamp(timestamp, form), written, "{input}");
    };
    check(
        "2026-11-26T13:47:58.554906Z",
        "2026-11-26T13:47:58.554906Z",
        false,
    );
    check(
        "2026-11-26T13:47:58.554906+00:00",
        "2026-11-26T13:47:58.554906Z",
        false,
    );
    check(
        "2026-11-26T15:47:58.5+02:00",
        "2026-11-26T13:47:58.500000Z",
        false,
    );
    check("2026-11-26T13:47:58Z", "2026-11-26T13:47:58Z", false);
    check("2026-11-26T13:47:58.000000Z", "2026-11-26T13:47:58Z", false);
    check(
        "2026-11-26T13:47:58.554906",
        "2026-11-26T13:47:58.554906",
        true,
    );
    check("2026-11-26T13:47:58", "2026-11-26T13:47:58", true);
    assert!(parse_timestamp("26/11/2026").is_err());
}

#[test]
fn naive_history_timestamps_round_trip_without_offset() {
    let json = with_top(
        r#""history":[{"timestamp":"2026-11-26T13:47:58.1","status":"pending","log":"initialized"}]"#,
    );
    let state = parse(&json).unwrap();
    assert!(state.history[0].is_naive());
    assert!(render_location(&state).contains(r#""timestamp":"2026-11-26T13:47:58.100000""#));
}

#[test]
fn session_file_round_trips_and_tolerates_new_keys() {
    let info = SessionInfo {
        tool_version: "0.1.0".into(),
        created_at: "2026-11-26T13:47:58.554906123Z".parse().unwrap(),
        project_dir: "/w/projects/sales".into(),
        organization_url: "https://acme.dagster.cloud".into(),
    };
    let text = render_session(&info);
    insta::assert_snapshot!(text, @r#"{"tool_version":"0.1.0","created_at":"2026-11-26T13:47:58.554906Z","project_dir":"/w/projects/sales","organization_url":"https://acme.dagster.cloud"}"#);
    let with_new_key = text.replacen('{', r#"{"newer":true,"#, 1);
    let read = parse_session(Path::new("s.json"), with_new_key.as_bytes()).unwrap();
    assert_eq!(read.project_dir, info.project_dir);
    assert_eq!(read.created_at.to_string(), "2026-11-26T13:47:58.554906Z");
    let err = parse_session(Path::new("/d/s.json"), b"[]")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/d/s.json"), "{err}");
}

/// Longest any one state file may take to parse or be refused (the files are at most 16 MiB;
/// these are far smaller). Loose on purpose: it catches super-linear parsing, not slowness.
const PARSE_BOUND: std::time::Duration = std::time::Duration::from_secs(2);

/// Parses `bytes` as a location file and as our own files, within [`PARSE_BOUND`] each, and
/// checks that an error names the file.
fn parse_in_time(bytes: &[u8]) {
    let path = Path::new("/state/location-x.json");
    let started = std::time::Instant::now();
    let location = parse_location(path, bytes);
    let outcomes = parse_outcomes(path, bytes);
    let session = parse_session(path, bytes);
    let elapsed = started.elapsed();
    assert!(
        elapsed < PARSE_BOUND,
        "{} bytes took {elapsed:?}",
        bytes.len()
    );
    for error in [location.err(), outcomes.err(), session.err()]
        .into_iter()
        .flatten()
    {
        let message = error.to_string();
        assert!(message.contains("/state/location-x.json"), "{message}");
    }
}

#[test]
fn deeply_nested_json_is_refused_in_linear_time() {
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        for depth in [1_000usize, 100_000, 1_000_000] {
            let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            parse_in_time(with_top(&format!("\"selected\":{nested}")).as_bytes());
            parse_in_time(nested.as_bytes());
        }
    }
}

proptest::proptest! {
    // Each case runs in a forked child that is stopped after 10 s, so a parser that hangs
    // fails the test instead of stalling it.
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 256,
        timeout: 10_000,
        ..proptest::prelude::ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_parse_or_are_refused_in_time(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
        parse_in_time(&bytes);
    }

    #[test]
    fn mutated_state_files_parse_or_are_refused_in_time(
        position in 0usize..MINIMAL.len(),
        insert in "[\\[\\]{}\",:a-z0-9 \\\\]{0,8}",
        cut in 0usize..8,
        repeat in 1usize..20_000,
    ) {
        let mut text = MINIMAL.to_owned();
        let start = position.min(text.len());
        let end = (start + cut).min(text.len());
        text.replace_range(start..end, &insert.repeat(repeat));
        parse_in_time(text.as_bytes());
    }
}
