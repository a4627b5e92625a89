//! Crash tests of multi-file changes: a simulated death at every step of a commit, then the
//! next opener completes it; and the recovery rules for files changed (or damaged) since.

use std::fs;
use std::path::Path;

use super::*;
use crate::session::{Session, View};

const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

fn session(dir: &Path) -> Session {
    crate::testing::session(dir, &NAMES)
}

/// A session whose `record build outputs` to tag `new` died at `step` of its commit.
fn crashed_at(step: usize) -> (tempfile::TempDir, Session) {
    let dir = tempfile::tempdir().unwrap();
    let first = session(dir.path());
    crash_point::arm(step);
    assert!(record(&first, "new").is_err(), "step {step}: no crash");
    (dir, first)
}

fn images(dir: &Path) -> Vec<Option<String>> {
    NAMES
        .iter()
        .map(|name| {
            let path = dir.join(format!("location-{name}.json"));
            let bytes = fs::read(&path).unwrap();
            // Every file is complete at every moment, whatever else happened.
            let state = crate::format::parse_location(&path, &bytes).unwrap();
            state.image().map(str::to_owned)
        })
        .collect()
}

fn record(session: &Session, tag: &str) -> Result<Vec<(String, String)>> {
    session.record_build_output(&[], |state| Ok(format!("r/{}:{tag}", state.location_name)))
}

fn all(tag: &str) -> Vec<Option<String>> {
    NAMES
        .iter()
        .map(|name| Some(format!("r/{name}:{tag}")))
        .collect()
}

#[test]
fn a_crash_at_any_step_is_completed_by_the_next_opener() {
    // Steps 0..6 replace one file each; step 6 is after the last rename, before the flush.
    for step in 0..=NAMES.len() {
        let dir = tempfile::tempdir().unwrap();
        let first = session(dir.path());
        record(&first, "old").unwrap();
        crash_point::arm(step);
        assert!(record(&first, "new").is_err(), "step {step}: no crash");
        // Every file is old or new; exactly the first `step` ones are new.
        let seen = images(dir.path());
        for (index, image) in seen.iter().enumerate() {
            let tag = if index < step { "new" } else { "old" };
            assert_eq!(image, &all(tag)[index], "step {step}");
        }
        assert!(is_pending(dir.path()), "step {step}: journal missing");

        let next = Session::open(dir.path()).unwrap();
        assert_eq!(images(dir.path()), all("new"), "step {step}");
        let repairs = next.take_repairs();
        assert_eq!(repairs.len(), 1, "step {step}");
        let repair = &repairs[0];
        assert_eq!(repair.operation, "record build outputs");
        assert_eq!(repair.changes, NAMES.len());
        assert_eq!(repair.already_done, step);
        assert_eq!(repair.completed.len(), NAMES.len() - step);
        assert!(repair.kept.is_empty());
        assert!(repair.on_disk);
        assert!(!is_pending(dir.path()));
        assert!(next.take_repairs().is_empty(), "reported twice");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn a_crash_before_the_journal_is_in_place_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = session(dir.path());
    record(&first, "old").unwrap();
    // What a process killed while writing the journal leaves: a temp file, never the journal.
    fs::write(
        dir.path().join(".tmp-99-1-dagster-deploy-journal.json"),
        "{\"dagster_dep",
    )
    .unwrap();
    let next = Session::open(dir.path()).unwrap();
    assert!(next.take_repairs().is_empty());
    assert_eq!(images(dir.path()), all("old"));
    record(&next, "new").unwrap();
    assert_eq!(images(dir.path()), all("new"));
}

#[test]
fn every_reader_waits_for_the_completion_before_reading() {
    let (_dir, first) = crashed_at(2);
    // A reader of a handle opened before the crash sees all or nothing too.
    let images: Vec<_> = first
        .locations()
        .unwrap()
        .into_iter()
        .map(|state| state.image().map(str::to_owned))
        .collect();
    assert_eq!(images, all("new"));
    assert_eq!(first.take_repairs().len(), 1);
}

#[test]
fn a_file_changed_by_another_tool_after_the_crash_is_kept_and_reported() {
    let (dir, _) = crashed_at(1);
    // The reference CLI (which knows no journal) writes location f meanwhile.
    let path = dir.path().join("location-f.json");
    let mut state = crate::format::parse_location(&path, &fs::read(&path).unwrap()).unwrap();
    state.selected = false;
    fs::write(&path, crate::format::render_location(&state)).unwrap();

    let next = Session::open(dir.path()).unwrap();
    let repair = next.take_repairs().remove(0);
    assert_eq!(repair.kept, ["location-f.json"]);
    assert_eq!(repair.completed.len(), 4);
    assert!(!next.location("f").unwrap().selected);
    assert_eq!(next.location("f").unwrap().image(), None);
    assert_eq!(next.location("e").unwrap().image(), Some("r/e:new"));
}

#[test]
fn a_file_emptied_by_a_power_loss_gets_its_new_content() {
    let (dir, _) = crashed_at(3);
    // After a power loss, a renamed but unflushed file can be empty.
    fs::write(dir.path().join("location-b.json"), "").unwrap();
    let next = Session::open(dir.path()).unwrap();
    assert_eq!(images(dir.path()), all("new"));
    assert!(next.take_repairs()[0].kept.is_empty());
}

#[test]
fn a_copy_that_cannot_be_written_is_read_as_completed_without_writing() {
    let (dir, _) = crashed_at(2);
    let before = fs::read(dir.path().join("location-e.json")).unwrap();
    let (view, repair) = View::of_copy(dir.path()).unwrap();
    let repair = repair.unwrap();
    assert!(!repair.on_disk);
    assert_eq!(repair.completed.len(), 4);
    let (state, _) = view.load("e").unwrap().unwrap();
    assert_eq!(state.image(), Some("r/e:new"));
    drop(view);
    assert_eq!(
        fs::read(dir.path().join("location-e.json")).unwrap(),
        before
    );
    assert!(is_pending(dir.path()));
}

#[test]
fn a_journal_from_a_newer_version_is_refused_and_nothing_changes() {
    let (dir, _) = crashed_at(2);
    let path = dir.path().join(fsio::JOURNAL_FILE);
    let text = fs::read_to_string(&path).unwrap().replace(
        "\"dagster_deploy_journal\":1",
        "\"dagster_deploy_journal\":7",
    );
    fs::write(&path, &text).unwrap();
    let before = images(dir.path());
    let err = Session::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::NewerFormat { .. }), "{err:?}");
    let message = format!("{err}; {}", err.help().unwrap_or_default());
    assert!(message.contains("newer version"), "{message}");
    assert!(!message.contains("remove"), "{message}");
    assert!(!message.contains("delete"), "{message}");
    assert_eq!(images(dir.path()), before);
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn a_journal_naming_a_file_outside_the_session_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    session(dir.path());
    for file in [
        "../escape.json",
        "location-../x.json",
        "notes.txt",
        "location-a\n.json",
    ] {
        let journal = serde_json::json!({
            "dagster_deploy_journal": 1,
            "operation": "x",
            "pid": 1,
            "started_at": "2026-01-01T00:00:00Z",
            "changes": [{"file": file, "before": null, "after": "x"}],
        });
        fs::write(dir.path().join(fsio::JOURNAL_FILE), journal.to_string()).unwrap();
        let err = Session::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Journal { .. }), "{file}: {err:?}");
    }
    assert!(!dir.path().parent().unwrap().join("escape.json").exists());
}

#[cfg(unix)]
#[test]
fn a_file_whose_content_does_not_change_is_not_rewritten() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let first = session(dir.path());
    record(&first, "same").unwrap();
    let inode = |name: &str| {
        fs::metadata(dir.path().join(format!("location-{name}.json")))
            .unwrap()
            .ino()
    };
    let before: Vec<u64> = NAMES.iter().map(|name| inode(name)).collect();
    record(&first, "same").unwrap();
    let after: Vec<u64> = NAMES.iter().map(|name| inode(name)).collect();
    assert_eq!(before, after, "unchanged files were replaced");
    first
        .record_build_output(&["a".to_owned()], |_| Ok("r/a:other".into()))
        .unwrap();
    assert_ne!(inode("a"), before[0]);
    assert_eq!(inode("b"), before[1]);
}

#[test]
fn fingerprints_are_stable_and_tell_contents_apart() {
    assert_eq!(fingerprint(b""), "fnv1a64:cbf29ce484222325:0");
    assert_eq!(fingerprint(b"a"), "fnv1a64:af63dc4c8601ec8c:1");
    assert_ne!(fingerprint(b"ab"), fingerprint(b"ba"));
}

proptest::proptest! {
    // Each case runs in a forked child that is stopped after 10 s.
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 64,
        timeout: 10_000,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Whatever a journal holds, opening the session completes it, or refuses it with an error
    /// naming it; it never panics, never takes long, and never writes outside the directory.
    #[test]
    fn any_journal_is_completed_or_refused_in_time(
        text in "[\\[\\]{}\",:a-z0-9 ._/-]{0,300}",
        valid_prefix in proptest::bool::ANY,
    ) {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        session(&dir);
        let text = if valid_prefix {
            format!("{{\"dagster_deploy_journal\":1,\"operation\":\"x\",\"pid\":1,\"started_at\":\"2026-01-01T00:00:00Z\",\"changes\":[{text}")
        } else {
            text
        };
        fs::write(dir.join(fsio::JOURNAL_FILE), &text).unwrap();
        let started = std::time::Instant::now();
        match Session::open(&dir) {
            Ok(_) => {}
            Err(err) => {
                let message = err.to_string();
                proptest::prop_assert!(message.contains("dagster-deploy-journal.json"), "{}", message);
            }
        }
        proptest::prop_assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let outside: Vec<_> = fs::read_dir(parent.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        proptest::prop_assert_eq!(outside, vec![std::ffi::OsString::from("state")]);
    }
}
