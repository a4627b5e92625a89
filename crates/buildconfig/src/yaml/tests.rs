//! Tests of `yaml.rs`: parsing limits, merge keys, and positions.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

fn parse(text: &str) -> Result<Value> {
    parse_value(text, Path::new("t.yaml"), "write something")
}

fn syntax_message(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Err(Error::Syntax {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected a syntax error for {text:?}, got {other:?}"),
    }
}

#[test]
fn date_like_and_boolean_like_scalars_stay_strings() {
    let value =
        parse("a: 2024-01-02\nb: yes\nc: 2024-01-02T10:00:00Z\nd: 1.5\ne: 7\nf: true\ng: ~\n")
            .unwrap();
    assert_eq!(
        value,
        json!({"a": "2024-01-02", "b": "yes", "c": "2024-01-02T10:00:00Z", "d": 1.5, "e": 7, "f": true, "g": null})
    );
}

#[test]
fn merge_keys_apply_and_explicit_keys_win() {
    let value = parse("base: &b {x: 1, y: 2}\nthing:\n  <<: *b\n  y: 3\n").unwrap();
    assert_eq!(value["thing"], json!({"x": 1, "y": 3}));
}

#[test]
fn duplicate_keys_are_rejected_at_the_second_key() {
    let (line, column, message) = syntax_message("a: 1\nb:\n  c: 1\n  c: 2\n");
    assert_eq!((line, column), (4, 3));
    assert!(message.contains("duplicate key `c`"), "{message}");
}

#[test]
fn tags_and_non_finite_numbers_are_rejected() {
    assert!(syntax_message("a: !secret x\n").2.contains("tags"));
    assert!(syntax_message("a: .nan\n").2.contains(".nan"));
    assert!(
        syntax_message("? [a]\n: 1\n")
            .2
            .contains("keys must be plain strings")
    );
}

#[test]
fn blank_and_comment_only_documents_are_empty() {
    for text in ["", "  \n\t\n", "# only a comment\n", "---\n", "~\n"] {
        assert!(matches!(parse(text), Err(Error::Empty { .. })), "{text:?}");
    }
}

#[test]
fn billion_laughs_fails_fast_with_bounded_work() {
    let mut text = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut previous = 'a';
    for name in 'b'..='j' {
        text.push_str(&format!(
            "{name}: &{name} [*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous}]\n"
        ));
        previous = name;
    }
    let started = Instant::now();
    let (_, _, message) = syntax_message(&text);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        message.contains("repetition limit") || message.contains("more than 2000000"),
        "{message}"
    );
}

#[test]
fn wide_alias_fan_out_is_capped_by_the_node_budget() {
    // One anchored list of 5,000 items referenced 5,000 times: 25 million nodes if expanded,
    // well inside serde_yaml_ng's own repetition limit.
    let mut text = String::from("a: &a [");
    text.push_str(&vec!["1"; 5_000].join(","));
    text.push_str("]\nb: [");
    text.push_str(&vec!["*a"; 5_000].join(","));
    text.push_str("]\n");
    let started = Instant::now();
    let (_, _, message) = syntax_message(&text);
    assert!(message.contains("more than 2000000"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (line, column, message) = syntax_message(&text);
    assert!(
        message.contains("nests deeper than 128 levels"),
        "{message}"
    );
    assert_eq!((line, column), (1, 129));
    let text = "a:\n".to_owned()
        + &(1..200)
            .map(|depth| format!("{}k:\n", "  ".repeat(depth)))
            .collect::<String>();
    let (line, column, message) = syntax_message(&text);
    assert!(
        message.contains("nests deeper than 128 levels"),
        "{message}"
    );
    assert_eq!((line, column), (129, 257));
}

#[test]
fn syntax_errors_carry_the_position_without_repeating_it() {
    let (line, column, message) = syntax_message("locations:\n  - a: 1\n   b: 2\n");
    assert_eq!(line, 3);
    assert!(column > 0);
    assert!(!message.is_empty());
    let (line, _, message) = syntax_message("a: 1\n---\nb: 2\n");
    assert!(
        message.contains("more than one document"),
        "{message} {line}"
    );
}

#[test]
fn invalid_utf8_reports_line_and_column() {
    let err = text_from_bytes(b"a: 1\nbb: \xff\n".to_vec(), Path::new("x.yaml")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidUtf8 {
                line: 2,
                column: 5,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn read_text_refuses_files_over_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_FILE_BYTES + 1).unwrap();
    let err = read_text(&path).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    let err = read_text(&dir.path().join("missing.yaml")).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
}

fn check_locate(text: &str, path: &[Segment], target: Target, expected: (usize, usize)) {
    assert_eq!(locate(text, path, target), expected, "{path:?} in {text:?}");
}

#[test]
fn locate_finds_keys_and_values_in_block_and_flow_style() {
    let text = "locations:\n  - location_name: a\n  - location_name: b\n    build: {registry: X, directory: .}\n";
    let key = |k: &str| Segment::Key(k.to_owned());
    check_locate(
        text,
        &[key("locations"), Segment::Index(1), key("location_name")],
        Target::Value,
        (3, 20),
    );
    check_locate(
        text,
        &[key("locations"), Segment::Index(1), key("location_name")],
        Target::Key,
        (3, 5),
    );
    check_locate(
        text,
        &[
            key("locations"),
            Segment::Index(1),
            key("build"),
            key("registry"),
        ],
        Target::Value,
        (4, 23),
    );
    check_locate(
        text,
        &[key("locations"), Segment::Index(1)],
        Target::Value,
        (3, 5),
    );
    // A missing key reports the nearest enclosing node.
    check_locate(
        text,
        &[key("locations"), Segment::Index(0), key("nope")],
        Target::Value,
        (2, 5),
    );
    check_locate(
        text,
        &[key("locations"), Segment::Index(9)],
        Target::Value,
        (2, 3),
    );
}

#[test]
fn field_paths_render_like_the_documented_form() {
    let path = FieldPath::root()
        .key("locations")
        .index(2)
        .key("build")
        .key("registry");
    assert_eq!(path.to_string(), "locations[2].build.registry");
    assert_eq!(FieldPath::root().to_string(), "(document)");
}

#[test]
fn line_column_counts_characters() {
    assert_eq!(line_column("ab\ncé d", 7), (2, 4));
    assert_eq!(line_column("", 0), (1, 1));
}
