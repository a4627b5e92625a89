//! Fan-in of parallel session copies.

use std::fs;
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
        copy_files(&main, &copy);
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

const GENERATED: &str = "locations:\n- location_name: a\n- location_name: b\n";

/// Copies every file of `from` into a new directory `to`.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir(to).unwrap();
    copy_files(from, to);
}

/// Copies the files of `from` into `to`, as an artifact upload of a session would hand them
/// over; our spare directory is left out (nothing reads it).
fn copy_files(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A session started in `root/a` with a generated file its locations point at, copied to
/// `root/b1` (which builds `a`) and `root/b2` (which builds `b`).
fn generated_fan_out(root: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let start = root.join("a");
    let location_file = Session::generated_location_file_path(&start).unwrap();
    let locations = ["a", "b"]
        .iter()
        .map(|name| {
            let mut location = new_location(name);
            location.location_file = location_file.to_str().unwrap().to_owned();
            location
        })
        .collect();
    Session::create_with_location_file(&start, info(), locations, GENERATED).unwrap();
    let (b1, b2) = (root.join("b1"), root.join("b2"));
    for (copy, location) in [(&b1, "a"), (&b2, "b")] {
        copy_dir(&start, copy);
        Session::open(copy)
            .unwrap()
            .record_build_output(&strings(&[location]), registry_image("t"))
            .unwrap();
    }
    (start, b1, b2)
}

#[test]
fn merge_into_a_fresh_directory_carries_the_generated_file_and_points_locations_at_it() {
    let root = tempfile::tempdir().unwrap();
    let (start, b1, b2) = generated_fan_out(root.path());
    std::fs::remove_dir_all(&start).unwrap();
    let target = root.path().join("c");
    let report = Session::merge(&target, &[b1, b2]).unwrap();
    assert!(report.unbuilt.is_empty(), "{report:?}");
    let generated = target.join("dagster_cloud.yaml");
    assert_eq!(std::fs::read_to_string(&generated).unwrap(), GENERATED);
    let session = Session::open(&target).unwrap();
    let states = session.locations().unwrap();
    assert_eq!(states.len(), 2);
    for state in states {
        assert_eq!(
            state.location_file,
            generated.to_str().unwrap(),
            "{}",
            state.location_name
        );
        assert!(state.image().is_some(), "{}", state.location_name);
    }
    assert_eq!(session.info().unwrap(), Some(info()));
}

#[test]
fn merge_points_locations_at_the_target_even_when_the_start_directory_still_exists() {
    let root = tempfile::tempdir().unwrap();
    let (_start, b1, b2) = generated_fan_out(root.path());
    let target = root.path().join("c");
    Session::merge(&target, &[b1.clone(), b2]).unwrap();
    let expected = target.join("dagster_cloud.yaml");
    for state in Session::open(&target).unwrap().locations().unwrap() {
        assert_eq!(state.location_file, expected.to_str().unwrap());
    }
    // Merging again into one of the copies rewrites its own pointers too.
    Session::merge(&b1, std::slice::from_ref(&target)).unwrap();
    for state in Session::open(&b1).unwrap().locations().unwrap() {
        assert_eq!(
            state.location_file,
            b1.join("dagster_cloud.yaml").to_str().unwrap()
        );
    }
}

#[test]
fn merge_refuses_copies_with_different_generated_files_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (_start, b1, b2) = generated_fan_out(root.path());
    std::fs::write(b2.join("dagster_cloud.yaml"), "locations: []\n").unwrap();
    let target = root.path().join("c");
    let err = Session::merge(&target, &[b1.clone(), b2.clone()]).unwrap_err();
    assert!(err.is_merge_conflict(), "{err:?}");
    assert!(
        matches!(err, Error::GeneratedFileConflict { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("dagster_cloud.yaml"), "{message}");
    assert!(message.contains(&b1.display().to_string()), "{message}");
    assert!(message.contains(&b2.display().to_string()), "{message}");
    assert_eq!(
        crate::support::entries(&target),
        [".dagster-deploy.lock"],
        "the target was written to"
    );
}

#[test]
fn merge_leaves_a_users_own_location_file_alone() {
    let root = tempfile::tempdir().unwrap();
    // Legacy sessions written by the reference point at the user's file and hold no generated
    // file.
    let copy = root.path().join("copy");
    copy_dir(
        &crate::support::fixtures().join("legacy-flow/statedir-after-set-build-output"),
        &copy,
    );
    let target = root.path().join("merged");
    Session::merge(&target, std::slice::from_ref(&copy)).unwrap();
    assert!(!target.join("dagster_cloud.yaml").exists());
    for state in Session::open(&target).unwrap().locations().unwrap() {
        assert_eq!(
            state.location_file,
            "/home/runner/work/data/data/dagster_cloud.yaml"
        );
    }
    // Still so when another copy brings a generated file: these locations' copy holds none.
    let other = root.path().join("other");
    copy_dir(&copy, &other);
    std::fs::write(other.join("dagster_cloud.yaml"), GENERATED).unwrap();
    let target = root.path().join("merged-mixed");
    Session::merge(&target, &[copy.clone(), other]).unwrap();
    for state in Session::open(&target).unwrap().locations().unwrap() {
        assert_eq!(
            state.location_file,
            "/home/runner/work/data/data/dagster_cloud.yaml"
        );
    }

    // A session whose copy holds a generated file but whose locations name an existing user
    // file with other content keeps pointing at the user's file.
    let project = root.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let user_file = project.join("dagster_cloud.yaml");
    std::fs::write(&user_file, "locations: [] # mine\n").unwrap();
    let mut location = new_location("a");
    location.location_file = user_file.to_str().unwrap().to_owned();
    let start = root.path().join("start");
    Session::create_with_location_file(&start, info(), vec![location], GENERATED).unwrap();
    let target = root.path().join("merged-2");
    Session::merge(&target, &[start]).unwrap();
    assert_eq!(
        Session::open(&target)
            .unwrap()
            .location("a")
            .unwrap()
            .location_file,
        user_file.to_str().unwrap()
    );
}

#[test]
fn merge_of_a_reference_dg_session_points_at_the_merged_generated_file() {
    let root = tempfile::tempdir().unwrap();
    let fixture = crate::support::fixtures().join("dg-workspace/statedir-start-at-workspace-root");
    let copy = root.path().join("copy");
    copy_dir(&fixture, &copy);
    let target = root.path().join("merged");
    Session::merge(&target, &[copy]).unwrap();
    let generated = target.join("dagster_cloud.yaml");
    assert_eq!(
        std::fs::read(&generated).unwrap(),
        std::fs::read(fixture.join("dagster_cloud.yaml")).unwrap()
    );
    let states = Session::open(&target).unwrap().locations().unwrap();
    assert_eq!(states.len(), 2);
    for state in states {
        assert_eq!(state.location_file, generated.to_str().unwrap());
    }
}

#[test]
fn merges_in_opposite_directions_at_once_do_not_wait_for_each_other() {
    // Each merge reads its copies before it locks its target, so two merges that are each
    // other's copy cannot deadlock.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    create(&a, &["x", "y"]);
    fs::create_dir(&b).unwrap();
    copy_files(&a, &b);
    for _ in 0..50 {
        std::thread::scope(|scope| {
            scope.spawn(|| Session::merge(&a, std::slice::from_ref(&b)).unwrap());
            scope.spawn(|| Session::merge(&b, std::slice::from_ref(&a)).unwrap());
        });
    }
}

#[test]
fn merging_reads_the_copies_without_writing_to_them() {
    let (_root, main, copy_a, copy_b) = fan_out();
    // As an artifact upload that leaves hidden files out would hand them over.
    for copy in [&copy_a, &copy_b] {
        fs::remove_file(copy.join(".dagster-deploy.lock")).unwrap();
    }
    let before: Vec<Vec<String>> = [&copy_a, &copy_b]
        .iter()
        .map(|dir| crate::support::entries(dir))
        .collect();
    Session::merge(&main, &[copy_a.clone(), copy_b.clone()]).unwrap();
    let after: Vec<Vec<String>> = [&copy_a, &copy_b]
        .iter()
        .map(|dir| crate::support::entries(dir))
        .collect();
    assert_eq!(before, after);
}
