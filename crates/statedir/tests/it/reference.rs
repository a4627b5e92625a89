//! Compatibility with the reference tools: sessions they wrote are read, rendered and updated
//! exactly as they would be, byte for byte.

use std::fs;

use dagster_deploy_statedir::{Session, Status};

use crate::support::{copy_fixture, create, entries, fixtures, names, registry_image, strings};

fn recorded(relative: &str) -> String {
    fs::read_to_string(fixtures().join(relative)).unwrap()
}

fn open_recorded(relative: &str) -> Session {
    Session::open(&fixtures().join(relative)).unwrap()
}

#[test]
fn status_json_lines_match_the_reference_byte_for_byte() {
    let session = open_recorded("legacy-flow/statedir-after-deploy-success");
    assert_eq!(
        session.status_json_lines().unwrap(),
        recorded("legacy-flow/status-success.jsonl")
    );
}

#[test]
fn status_markdown_matches_the_reference_at_every_recorded_step() {
    let check = |statedir: &str, report: &str| {
        let session = open_recorded(&format!("legacy-flow/{statedir}"));
        assert_eq!(
            session.status_markdown().unwrap(),
            recorded(&format!("legacy-flow/{report}")),
            "{statedir}"
        );
    };
    check("statedir-after-init", "status-pending.md");
    check("statedir-after-set-build-output", "status-pending.md");
    check("statedir-after-deploy-success", "status-success.md");
    check("statedir-after-deploy-failure", "status-failure.md");
}

#[test]
fn every_recorded_state_directory_opens_sorted_without_session_info() {
    let check = |statedir: &str, expected: &[&str]| {
        let session = open_recorded(statedir);
        assert_eq!(names(&session.locations().unwrap()), expected, "{statedir}");
        assert_eq!(session.info().unwrap(), None);
    };
    for step in [
        "after-init",
        "after-set-build-output",
        "after-deploy-success",
        "after-deploy-failure",
    ] {
        check(
            &format!("legacy-flow/statedir-{step}"),
            &["marketing", "warehouse"],
        );
    }
    check(
        "dg-workspace/statedir-start-at-workspace-root",
        &["ops-core", "sales"],
    );
    check(
        "dg-workspace/statedir-start-inside-projects-sales",
        &["sales"],
    );
}

#[test]
fn recording_a_build_output_on_a_reference_session_writes_what_the_reference_wrote() {
    let dir = copy_fixture("legacy-flow/statedir-after-init");
    let session = Session::open(dir.path()).unwrap();
    let recorded_images = session
        .record_build_output(&[], registry_image("4f2a9c1-42"))
        .unwrap();
    assert_eq!(
        recorded_images,
        [
            (
                "marketing".to_owned(),
                "registry.example.com/data/marketing:4f2a9c1-42".to_owned()
            ),
            (
                "warehouse".to_owned(),
                "registry.example.com/data/warehouse:4f2a9c1-42".to_owned()
            ),
        ]
    );
    for file in ["location-marketing.json", "location-warehouse.json"] {
        assert_eq!(
            fs::read_to_string(dir.path().join(file)).unwrap(),
            recorded(&format!(
                "legacy-flow/statedir-after-set-build-output/{file}"
            )),
            "{file}"
        );
    }
    // Only the two location files, our lock file and our spare files: no temp file is left
    // behind.
    assert_eq!(
        entries(dir.path()),
        [
            ".dagster-deploy-spare",
            ".dagster-deploy.lock",
            "location-marketing.json",
            "location-warehouse.json"
        ]
    );
}

#[test]
fn dg_session_without_registry_fails_set_build_output_and_changes_nothing() {
    let dir = copy_fixture("dg-workspace/statedir-start-inside-projects-sales");
    let before = fs::read(dir.path().join("location-sales.json")).unwrap();
    let session = Session::open(dir.path()).unwrap();
    let err = session
        .record_build_output(&strings(&["sales"]), registry_image("abc"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("location sales: no build registry defined"),
        "{err}"
    );
    assert_eq!(
        fs::read(dir.path().join("location-sales.json")).unwrap(),
        before
    );
}

#[test]
fn deploy_results_on_a_reference_session_keep_its_format() {
    let dir = copy_fixture("legacy-flow/statedir-after-set-build-output");
    let session = Session::open(dir.path()).unwrap();
    session
        .append_history("warehouse", Status::Success, "deploy successful")
        .unwrap();
    let text = fs::read_to_string(dir.path().join("location-warehouse.json")).unwrap();
    let prefix = recorded("legacy-flow/statedir-after-set-build-output/location-warehouse.json");
    let prefix = prefix.strip_suffix(r#"],"project_dir":"."}"#).unwrap();
    assert!(text.starts_with(prefix), "{text}");
    assert!(
        text.ends_with(r#"Z","status":"success","log":"deploy successful"}],"project_dir":"."}"#),
        "{text}"
    );
}

#[test]
fn start_over_a_reference_dg_session_clears_it() {
    let dir = copy_fixture("dg-workspace/statedir-start-at-workspace-root");
    create(dir.path(), &["analytics"]);
    assert_eq!(
        entries(dir.path()),
        [
            ".dagster-deploy-spare",
            ".dagster-deploy.lock",
            "dagster-deploy-session.json",
            "location-analytics.json"
        ]
    );
}
