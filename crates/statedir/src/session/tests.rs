//! Unit tests of the session operations: history lines in the reference schema, and
//! compare-and-set recording of deploy results.

use super::*;

fn keys(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn log_line_is_one_trimmed_capped_line() {
    assert_eq!(
        log_line("deploy failed", "Boom: x\nTraceback\n"),
        "deploy failed: Boom: x"
    );
    assert_eq!(
        log_line("deploy failed", "\r\n  a\tb \u{2028}c"),
        "deploy failed: a b"
    );
    assert_eq!(log_line("deploy failed", ""), "deploy failed");
    let exact = "é".repeat(MAX_REASON_CHARS);
    assert_eq!(
        log_line("deploy failed", &exact),
        format!("deploy failed: {exact}")
    );
    let longer = format!("{exact}z");
    assert_eq!(
        log_line("deploy failed", &longer),
        format!("deploy failed: {exact}...")
    );
}

#[test]
fn a_multi_line_deploy_failure_is_stored_in_the_reference_schema() {
    let dir = tempfile::tempdir().unwrap();
    let session = crate::testing::session(dir.path(), &["marketing"]);
    let traceback = "Traceback (most recent call last):\n  File \"/app/defs.py\", line 3, in <module>\n    import marketing\nModuleNotFoundError: No module named 'marketing'\n";
    let sent = session.location("marketing").unwrap();
    session
        .record_deploy_results(&[DeployResult {
            sent,
            outcome: DeployOutcome::Failed(traceback.into()),
        }])
        .unwrap();

    // The strict parser (unknown keys rejected) reads it back, and rewriting it is lossless.
    let path = dir.path().join("location-marketing.json");
    let bytes = std::fs::read(&path).unwrap();
    let state = format::parse_location(&path, &bytes).unwrap();
    assert_eq!(format::render_location(&state).as_bytes(), bytes);
    let last = state.last_status().unwrap();
    assert_eq!(last.status, Status::Failed);
    assert_eq!(
        last.log,
        "deploy failed: Traceback (most recent call last):"
    );
    assert!(!last.log.contains(['\n', '\r']), "{:?}", last.log);
    let text = String::from_utf8(bytes).unwrap();
    assert!(!text.contains("\\n"), "{text}");

    // Same keys as the file the reference wrote after a failed deploy.
    let recorded =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "tests/fixtures/legacy-flow/statedir-after-deploy-failure/location-marketing.json",
        ))
        .unwrap();
    let recorded: serde_json::Value = serde_json::from_slice(&recorded).unwrap();
    let ours: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys(&ours), keys(&recorded));
    assert_eq!(keys(&ours["build"]), keys(&recorded["build"]));
    assert_eq!(keys(&ours["history"][1]), keys(&recorded["history"][1]));
    assert_eq!(
        ours["history"][1]["status"],
        recorded["history"][1]["status"]
    );
}
