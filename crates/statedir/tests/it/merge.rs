//! Fan-in of parallel session copies.

use std::path::PathBuf;

use dagster_deploy_statedir::{Error, Session, TakenOutput};

use crate::support::{create, info, new_location, registry_image, strings};

/// A session plus two copies, each of which built one location.
fn fan_out() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let main = root.path().join("main");
    create(&main, &["a", "b", "c"]);
    let mut copies = Vec::new();
    for (job, location) in [("job-a", "a"), ("job-b", "b")] {
        let copy = root.path().join(job);
        std::fs::create_dir(&copy).unwrap();
        for entry in std::fs::read_dir(&main).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
        Session::open(&copy)
            .unwrap()
            .record_build_output(&strings(&[location]), registry_image(job))
            .unwrap();
        copies.push(copy);
    }
    let job_b = copies.pop().unwrap();
    let job_a = copies.pop().unwrap();
    (root, main, job_a, job_b)
}

#[test]
fn merge_takes_each_copys_build_outputs() {
    let (_root, main, job_a, job_b) = fan_out();
    let report = Session::merge(&main, &[job_a.clone(), job_b.clone()]).unwrap();
    assert_eq!(
        report.taken,
        [
            TakenOutput {
                location: "a".into(),
                image: "registry.example.com/data/a:job-a".into(),
                source: job_a
            },
            TakenOutput {
                location: "b".into(),
                image: "registry.example.com/data/b:job-b".into(),
                source: job_b
            },
        ]
    );
    assert_eq!(report.unbuilt, ["c"]);
    assert_eq!(report.locations, 3);
    let session = Session::open(&main).unwrap();
    assert_eq!(
        session.location("a").unwrap().image(),
        Some("registry.example.com/data/a:job-a")
    );
    assert_eq!(
        session.location("b").unwrap().image(),
        Some("registry.example.com/data/b:job-b")
    );
    assert_eq!(session.location("a").unwrap().history.len(), 1);
}

#[test]
fn merge_is_idempotent_and_accepts_equal_outputs() {
    let (_root, main, job_a, job_b) = fan_out();
    Session::merge(&main, &[job_a.clone(), job_b.clone()]).unwrap();
    let again = Session::merge(&main, &[job_a, job_b]).unwrap();
    assert!(again.taken.is_empty());
}

#[test]
fn merge_into_a_missing_directory_builds_the_session_from_the_copies() {
    let (root, _main, job_a, job_b) = fan_out();
    let target = root.path().join("merged");
    let report = Session::merge(&target, &[job_a, job_b]).unwrap();
    assert_eq!(report.locations, 3);
    let session = Session::open(&target).unwrap();
    assert_eq!(session.info().unwrap(), Some(info()));
    assert!(session.location("b").unwrap().image().is_some());
}

#[test]
fn merge_refuses_different_outputs_for_one_location_naming_both_directories() {
    let (_root, main, job_a, job_b) = fan_out();
    Session::open(&job_b)
        .unwrap()
        .record_build_output(&strings(&["a"]), registry_image("other"))
        .unwrap();
    let before = std::fs::read(main.join("location-a.json")).unwrap();
    let err = Session::merge(&main, &[job_a.clone(), job_b.clone()]).unwrap_err();
    assert!(err.is_merge_conflict());
    let message = err.to_string();
    assert!(message.contains("location a"), "{message}");
    assert!(message.contains(&job_a.display().to_string()), "{message}");
    assert!(message.contains(&job_b.display().to_string()), "{message}");
    assert!(
        message.contains("registry.example.com/data/a:other"),
        "{message}"
    );
    assert_eq!(std::fs::read(main.join("location-a.json")).unwrap(), before);
}

#[test]
fn merge_refuses_copies_of_different_deployments() {
    let root = tempfile::tempdir().unwrap();
    let (one, two) = (root.path().join("one"), root.path().join("two"));
    create(&one, &["a"]);
    let mut other = new_location("a");
    other.deployment_name = "staging".into();
    Session::create(&two, info(), vec![other]).unwrap();
    let err = Session::merge(&one, &[two]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::MergeMismatch {
                field: "deployment_name",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn merge_refuses_a_source_without_session() {
    let (root, main, _job_a, _job_b) = fan_out();
    let err = Session::merge(&main, &[root.path().join("nope")]).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}
