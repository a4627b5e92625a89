//! Selection, build outputs, history, deploy results and the status table.

use std::fs;

use dagster_deploy_statedir::{
    BuildOutput, DeployOutcome, DeployRecord, DeployResult, Error, RecordedOutcome, Session, Status,
};

use crate::support::{create, names, registry_image, strings};

/// The result of deploying a location's current state with `outcome`.
fn result(session: &Session, name: &str, outcome: DeployOutcome) -> DeployResult {
    let sent = session.location(name).unwrap_or_else(|_| {
        // A location that is not (or no longer) in the session.
        let mut state = session.locations().unwrap().remove(0);
        state.location_name = name.to_owned();
        state
    });
    DeployResult { sent, outcome }
}

fn deployed(session: &Session, name: &str) -> DeployResult {
    result(session, name, DeployOutcome::Deployed)
}

fn failed(session: &Session, name: &str, reason: String) -> DeployResult {
    result(session, name, DeployOutcome::Failed(reason))
}

fn last(session: &Session, name: &str) -> (Status, String) {
    let state = session.location(name).unwrap();
    let last = state.last_status().unwrap();
    (last.status, last.log.clone())
}

#[test]
fn selected_filters_by_requested_names_and_reports_unknown_ones() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a", "b", "c"]);
    session.set_selected(&strings(&["c"]), false).unwrap();
    assert_eq!(names(&session.selected(&[]).unwrap()), ["a", "b"]);
    assert_eq!(
        names(&session.selected(&strings(&["b", "a", "b"])).unwrap()),
        ["a", "b"]
    );

    let err = session.selected(&strings(&["a", "c", "zz"])).unwrap_err();
    match &err {
        Error::UnknownLocations {
            requested, known, ..
        } => {
            assert_eq!(requested, &strings(&["c", "zz"]));
            assert_eq!(known.len(), 3);
        }
        other => panic!("unexpected {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("requested: c, zz"), "{message}");
    assert!(message.contains("has: a, b, c (deselected)"), "{message}");
}

#[test]
fn select_and_deselect_check_every_name_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a", "b"]);
    let err = session
        .set_selected(&strings(&["a", "nope"]), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
    assert!(session.location("a").unwrap().selected);

    session.set_selected(&strings(&["a", "b"]), false).unwrap();
    assert!(session.selected(&[]).unwrap().is_empty());
    session.set_selected(&strings(&["b"]), true).unwrap();
    assert_eq!(names(&session.selected(&[]).unwrap()), ["b"]);
    assert!(!session.location("a").unwrap().selected);
}

#[test]
fn record_build_output_sets_a_docker_image_without_history() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a", "b"]);
    let recorded = session
        .record_build_output(&strings(&["b"]), registry_image("t1"))
        .unwrap();
    assert_eq!(
        recorded,
        [("b".to_owned(), "registry.example.com/data/b:t1".to_owned())]
    );
    let b = session.location("b").unwrap();
    assert_eq!(
        b.build_output,
        Some(BuildOutput::Docker {
            image: "registry.example.com/data/b:t1".into(),
            python_version: None,
            pex_bundle: false
        })
    );
    assert_eq!(b.history.len(), 1);
    assert_eq!(session.location("a").unwrap().image(), None);
}

#[test]
fn record_build_output_validates_every_location_before_writing_any() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a", "b", "c"]);
    let before: Vec<Vec<u8>> = ["a", "b", "c"]
        .iter()
        .map(|name| fs::read(dir.path().join(format!("location-{name}.json"))).unwrap())
        .collect();
    let err = session
        .record_build_output(&[], |state| match state.location_name.as_str() {
            "a" => Ok("img:a".into()),
            other => Err(format!("no registry for {other} in /w/dagster_cloud.yaml")),
        })
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("nothing was changed"), "{message}");
    assert!(
        message.contains("location b: no registry for b in /w/dagster_cloud.yaml"),
        "{message}"
    );
    assert!(
        message.contains("location c: no registry for c"),
        "{message}"
    );
    let after: Vec<Vec<u8>> = ["a", "b", "c"]
        .iter()
        .map(|name| fs::read(dir.path().join(format!("location-{name}.json"))).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn record_build_output_refuses_deselected_locations() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a", "b"]);
    session.set_selected(&strings(&["b"]), false).unwrap();
    assert!(
        session
            .record_build_output(&strings(&["b"]), registry_image("t"))
            .is_err()
    );
    assert_eq!(names(&[session.location("a").unwrap()]), ["a"]);
    let all = session
        .record_build_output(&[], registry_image("t"))
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(session.location("b").unwrap().image(), None);
}

#[test]
fn deploy_results_are_recorded_per_location_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["marketing", "warehouse"]);
    session
        .record_deploy_results(&[
            deployed(&session, "warehouse"),
            failed(
                &session,
                "marketing",
                "ImportError: no module named marketing".into(),
            ),
        ])
        .unwrap();
    let warehouse = session.location("warehouse").unwrap();
    let last = warehouse.last_status().unwrap();
    assert_eq!(
        (last.status, last.log.as_str()),
        (Status::Success, "deploy successful")
    );
    let marketing = session.location("marketing").unwrap();
    let last = marketing.last_status().unwrap();
    assert_eq!(
        (last.status, last.log.as_str()),
        (
            Status::Failed,
            "deploy failed: ImportError: no module named marketing"
        )
    );
}

#[test]
fn deploy_results_for_locations_no_longer_in_the_session_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a"]);
    let record = session
        .record_deploy_results(&[deployed(&session, "a"), deployed(&session, "ghost")])
        .unwrap();
    assert_eq!(
        record,
        DeployRecord {
            superseded: vec![],
            gone: vec!["ghost".to_owned()],
        }
    );
    assert_eq!(
        last(&session, "a"),
        (Status::Success, "deploy successful".into())
    );
    assert!(!dir.path().join("location-ghost.json").exists());
}

#[test]
fn a_deploy_result_is_recorded_only_against_the_inputs_it_deployed() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a", "b"]);
    session
        .record_build_output(&[], registry_image("v1"))
        .unwrap();
    // The deploy reads the session, then a build records v2 for b while it waits.
    let sent_a = deployed(&session, "a");
    let sent_b = deployed(&session, "b");
    session
        .record_build_output(&strings(&["b"]), registry_image("v2"))
        .unwrap();
    let record = session.record_deploy_results(&[sent_a, sent_b]).unwrap();
    assert_eq!(record.superseded, ["b"]);
    assert_eq!(
        last(&session, "a"),
        (Status::Success, "deploy successful".into())
    );
    assert_eq!(
        last(&session, "b"),
        (
            Status::Pending,
            "deploy of registry.example.com/data/b:v1 succeeded, but the location changed during the deploy: deploy again".into()
        )
    );
    assert_eq!(
        session.location("b").unwrap().image(),
        Some("registry.example.com/data/b:v2")
    );
    assert_eq!(
        session.recorded_outcome("b").unwrap(),
        Some(RecordedOutcome::Superseded)
    );
    assert_eq!(
        session.recorded_outcome("a").unwrap(),
        Some(RecordedOutcome::Deployed)
    );
}

#[test]
fn accepted_but_untracked_and_interrupted_deploys_are_pending_with_their_own_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a", "b", "c"]);
    session
        .record_deploy_results(&[
            result(
                &session,
                "a",
                DeployOutcome::NotTracked("connection refused\nmore".into()),
            ),
            result(
                &session,
                "b",
                DeployOutcome::Interrupted("Ctrl-C after Dagster+ accepted the deploy".into()),
            ),
            deployed(&session, "c"),
        ])
        .unwrap();
    assert_eq!(
        last(&session, "a"),
        (
            Status::Pending,
            "deploy accepted, load not tracked: connection refused".into()
        )
    );
    assert_eq!(
        last(&session, "b"),
        (
            Status::Pending,
            "deploy interrupted: Ctrl-C after Dagster+ accepted the deploy".into()
        )
    );
    assert_eq!(
        session.recorded_outcome("a").unwrap(),
        Some(RecordedOutcome::NotTracked)
    );
    assert_eq!(
        session.recorded_outcome("b").unwrap(),
        Some(RecordedOutcome::Interrupted)
    );
    // The reference's schema is kept: these files still parse with the strict parser, and
    // `status` refines only the entry our outcome was recorded for.
    let table = session.status_table().unwrap();
    let status_of = |name: &str| {
        table
            .lines()
            .find(|line| line.starts_with(&format!("{name} ")))
            .unwrap()
            .split("  ")
            .filter(|cell| !cell.is_empty())
            .nth(2)
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(status_of("a"), "not tracked");
    assert_eq!(status_of("b"), "interrupted");
    assert_eq!(status_of("c"), "success");
    let markdown = session.status_markdown().unwrap();
    assert!(markdown.contains("[Deploy not tracked]"), "{markdown}");
    assert!(markdown.contains("[Deploy interrupted]"), "{markdown}");
    // A later entry by any tool makes our refinement stale.
    session
        .append_history("a", Status::Pending, "building")
        .unwrap();
    assert_eq!(session.recorded_outcome("a").unwrap(), None);
}

#[test]
fn append_history_adds_an_entry_and_rejects_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a"]);
    session
        .append_history("a", Status::Failed, "build failed")
        .unwrap();
    let a = session.location("a").unwrap();
    assert_eq!(a.history.len(), 2);
    assert!(a.history[1].timestamp >= a.history[0].timestamp);
    assert_eq!(a.last_status().unwrap().log, "build failed");
    let err = session
        .append_history("b", Status::Failed, "x")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("requested: b") && err.contains("has: a"),
        "{err}"
    );
}

#[test]
fn status_table_is_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["marketing", "ops"]);
    session
        .record_build_output(&strings(&["ops"]), registry_image("t1"))
        .unwrap();
    session
        .set_selected(&strings(&["marketing"]), false)
        .unwrap();
    let table = session.status_table().unwrap();
    let stamp = jiff::tz::TimeZone::UTC
        .to_datetime(session.location("ops").unwrap().history[0].timestamp)
        .strftime("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    insta::assert_snapshot!(table.replace(&stamp, "YYYY-MM-DD HH:MM:SS UTC"), @r"
    LOCATION   SELECTED  STATUS   UPDATED                  IMAGE                             LAST LOG
    marketing  no        pending  YYYY-MM-DD HH:MM:SS UTC  -                                 initialized
    ops        yes       pending  YYYY-MM-DD HH:MM:SS UTC  registry.example.com/data/ops:t1  initialized
    ");
}

#[test]
fn deploy_failure_history_keeps_only_the_first_line_of_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a", "b", "c"]);
    let long = "x".repeat(2_000);
    session
        .record_deploy_results(&[
            failed(&session, "a", "\n  ImportError: no module named a  \r\nTraceback (most recent call last):\n  File \"defs.py\", line 1\n".into()),
            failed(&session, "b", long),
            failed(&session, "c", " \n\t\n".into()),
        ])
        .unwrap();
    let log = |name: &str| {
        session
            .location(name)
            .unwrap()
            .last_status()
            .unwrap()
            .log
            .clone()
    };
    assert_eq!(log("a"), "deploy failed: ImportError: no module named a");
    assert_eq!(log("b"), format!("deploy failed: {}...", "x".repeat(500)));
    assert_eq!(log("c"), "deploy failed");
    let text = fs::read_to_string(dir.path().join("location-a.json")).unwrap();
    assert!(!text.contains("Traceback"), "{text}");
}

#[test]
fn pull_request_report_escapes_names_images_and_logs_and_links_each_location() {
    let dir = tempfile::tempdir().unwrap();
    let hostile_name = "evil|<img src=x onerror=alert(1)>";
    let session = create(dir.path(), &["sales", hostile_name]);
    session
        .record_build_output(&strings(&["sales"]), |_| {
            Ok::<_, String>("ghcr.io/acme/sales:v1".to_owned())
        })
        .unwrap();
    session
        .record_build_output(&strings(&[hostile_name]), |_| {
            Ok::<_, String>("x](https://evil.example)<script>`|".to_owned())
        })
        .unwrap();
    session
        .append_history(
            hostile_name,
            Status::Failed,
            "boom | [click](https://evil.example) <b>x</b>\nsecond line",
        )
        .unwrap();
    let report = session.pull_request_report(100).unwrap();
    assert!(
        report.starts_with(
            "**Dagster+ deploy** to deployment [prod](https://acme.dagster.cloud/prod/)"
        ),
        "{report}"
    );
    let sales = report
        .lines()
        .find(|line| line.starts_with("| [sales]"))
        .unwrap();
    assert!(
        sales.contains("(https://acme.dagster.cloud/prod/locations/sales)")
            && sales.contains("ghcr.io/acme/sales:v1"),
        "{sales}"
    );
    let evil = report.lines().find(|line| line.contains("evil")).unwrap();
    // Every row keeps its five cells: no `|` from the session ends one, and no `[`, `]` or
    // `<` from it starts a link or HTML.
    let unescaped = |c: char| {
        evil.char_indices()
            .filter(|(at, found)| *found == c && !evil[..*at].ends_with('\\'))
            .count()
    };
    assert_eq!(unescaped('|'), 6, "{evil}");
    assert_eq!(unescaped('['), 2, "{evil}");
    for injected in ["<img", "<script>", "<b>", "second line"] {
        assert!(!evil.contains(injected), "{injected} in {evil}");
    }
    assert!(
        evil.contains("locations/evil%7C%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"),
        "{evil}"
    );
    assert!(evil.contains("❌ [Deploy failed]"), "{evil}");

    let truncated = session.pull_request_report(1).unwrap();
    assert!(truncated.contains("…and 1 more location(s)"), "{truncated}");
}

#[test]
fn an_unchanged_location_is_a_success_in_the_reference_schema_and_unchanged_in_status() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a", "b"]);
    session
        .record_build_output(&[], registry_image("v1"))
        .unwrap();
    session
        .record_deploy_results(&[
            result(
                &session,
                "a",
                DeployOutcome::Unchanged("prod runs registry.example.com/data/a:v1".into()),
            ),
            deployed(&session, "b"),
        ])
        .unwrap();
    assert_eq!(
        last(&session, "a"),
        (
            Status::Success,
            "deploy skipped, unchanged: prod runs registry.example.com/data/a:v1".into()
        )
    );
    assert_eq!(
        session.recorded_outcome("a").unwrap(),
        Some(RecordedOutcome::Unchanged)
    );
    let table = session.status_table().unwrap();
    let row = |name: &str| {
        table
            .lines()
            .find(|line| line.starts_with(&format!("{name} ")))
            .unwrap()
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_owned()
    };
    assert_eq!(row("a"), "unchanged");
    assert_eq!(row("b"), "success");
    let markdown = session.status_markdown().unwrap();
    assert!(markdown.contains("[Unchanged]("), "{markdown}");
    assert!(markdown.contains("[View in Cloud]("), "{markdown}");
    // The status value the reference parses is one of its own three.
    let stored: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("location-a.json")).unwrap()).unwrap();
    assert_eq!(
        stored["history"].as_array().unwrap().last().unwrap()["status"],
        "success"
    );
}
