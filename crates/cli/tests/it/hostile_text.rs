//! Text from outside (state files merged from other CI jobs, load errors from Dagster+) never
//! reaches the terminal as control sequences: escape sequences, control characters and
//! bidirectional overrides print as visible `\u{..}` text, JSON stays the same value, and the
//! markdown report escapes what could break its table or inject HTML.

use std::time::Duration;

use dagster_deploy_e2e::{Emulator, EmulatorConfig, LoadError};

use crate::support::{Run, Sandbox, TOKEN};

/// Clears the screen, retitles the terminal, rings the bell, turns text red (8-bit CSI),
/// reverses the text direction and overwrites the line.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31mred\u{202e}desrever\rfake line";

/// A name a copy of the session may bring along: legal in a file name and in the reference's
/// schema, but markup in markdown.
const MARKUP_NAME: &str = "evil|<img src=x onerror=alert(1)>";

fn assert_inert(what: &str, text: &str) {
    for c in text.chars() {
        let acts = (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}');
        assert!(
            !acts,
            "{what}: a raw {c:?} reached the terminal in:\n{text}"
        );
    }
}

fn assert_run_inert(what: &str, run: &Run) {
    assert_inert(&format!("{what} stdout"), &run.stdout);
    assert_inert(&format!("{what} stderr"), &run.stderr);
}

/// A copy of the sandbox's session, as another CI job would hand it over, with hostile text
/// in alpha's history and an extra location named [`MARKUP_NAME`] with a hostile link.
fn hostile_copy(sandbox: &Sandbox) -> std::path::PathBuf {
    let copy = sandbox.path().join("other-job");
    std::fs::create_dir(&copy).expect("create the copy");
    for mut state in sandbox.states() {
        let name = state["location_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        state["build_output"] = serde_json::json!({
            "strategy": "docker",
            "python_version": null,
            "image": format!("registry.example.com/team/{name}:v1"),
            "pex_bundle": false,
        });
        if name == "alpha" {
            state["history"]
                .as_array_mut()
                .expect("a history")
                .push(serde_json::json!({
                    "timestamp": "2030-01-01T00:00:00Z",
                    "status": "failed",
                    "log": HOSTILE,
                }));
        }
        let text = serde_json::to_string(&state).expect("serialise");
        std::fs::write(copy.join(format!("location-{name}.json")), text).expect("write");
        if name == "beta" {
            // A location only the copy has is taken whole, with its link.
            state["location_name"] = MARKUP_NAME.into();
            state["status_url"] = "https://ci.example/run)<script>|x".into();
            std::fs::write(
                copy.join(format!("location-{MARKUP_NAME}.json")),
                serde_json::to_string(&state).expect("serialise"),
            )
            .expect("write");
        }
    }
    copy
}

#[test]
fn merged_text_from_another_job_prints_inert_everywhere() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let copy = hostile_copy(&sandbox);
    let merge = sandbox
        .in_session(["state", "merge"])
        .arg(&copy)
        .run()
        .success();
    assert_run_inert("state merge", &merge);

    let table = sandbox.in_session(["status"]).run().success();
    assert_run_inert("status", &table);
    assert!(table.stdout.contains("\\u{1b}[2J"), "{}", table.stdout);
    assert!(
        table
            .stdout
            .contains("\\u{9b}31mred\\u{202e}desrever\\u{d}fake line")
    );

    let list = sandbox.in_session(["locations", "list"]).run().success();
    assert_run_inert("locations list", &list);

    let json = sandbox
        .in_session(["status", "--output-format", "json"])
        .run()
        .success();
    assert_run_inert("status json", &json);
    // The same JSON values, only written with escapes.
    let logs: Vec<String> = json
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON line"))
        .filter_map(|state| {
            state["history"]
                .as_array()
                .and_then(|history| history.last())
                .and_then(|last| last["log"].as_str().map(str::to_owned))
        })
        .collect();
    assert!(logs.iter().any(|log| log == HOSTILE), "{logs:?}");

    let markdown = sandbox
        .in_session(["status", "--output-format", "markdown"])
        .run()
        .success();
    assert_run_inert("status markdown", &markdown);
    let report = &markdown.stdout;
    assert!(
        report.contains("| evil\\|&lt;img src=x onerror=alert(1)&gt; |"),
        "{report}"
    );
    assert!(!report.contains("<img src=x"), "{report}");
    assert!(
        report.contains("(https://ci.example/run%29%3Cscript%3E%7Cx)"),
        "{report}"
    );
    assert!(!report.contains("<script>"), "{report}");
    // Every row still has its four cells.
    for row in report.lines().filter(|line| line.starts_with("| ")).skip(2) {
        let cells = row.split(" | ").count();
        assert_eq!(cells, 4, "{row}");
    }
}

#[test]
fn a_copy_whose_file_name_holds_control_characters_is_refused_with_an_inert_error() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let copy = hostile_copy(&sandbox);
    let source = copy.join("location-beta.json");
    std::fs::rename(&source, copy.join("location-\u{1b}[31mbeta.json")).expect("rename");
    let run = sandbox
        .in_session(["state", "merge"])
        .arg(&copy)
        .run()
        .code(3);
    assert_run_inert("state merge", &run);
    assert!(run.stderr.contains("control character"), "{}", run.stderr);
}

#[test]
fn a_load_error_from_dagster_plus_prints_inert() {
    let mut config = EmulatorConfig::default()
        .with_token(TOKEN)
        .with_load_time(Duration::from_millis(100));
    config.load_errors.insert(
        "alpha".to_owned(),
        LoadError {
            message: HOSTILE.to_owned(),
            stack: vec![format!("  File \"x.py\", line 1\n{HOSTILE}\n")],
            error_chain: Vec::new(),
        },
    );
    let emulator = Emulator::start_blocking(config);
    let sandbox = Sandbox::built(&emulator.url());
    let run = sandbox
        .in_session(["deploy"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .run()
        .code(7);
    assert_run_inert("deploy", &run);
    assert!(run.stderr.contains("\\u{1b}[2J"), "{}", run.stderr);
    let status = sandbox.in_session(["status"]).run().success();
    assert_run_inert("status", &status);
}
