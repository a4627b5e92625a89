//! Many processes working on one session at once: no lost update, never an unreadable file.

use std::sync::Barrier;

use dagster_deploy_statedir::{Session, Status};

use crate::support::{create, names, strings};

const WRITERS: usize = 32;

fn location_names() -> Vec<String> {
    (0..WRITERS).map(|index| format!("loc{index:02}")).collect()
}

#[test]
fn thirty_two_writers_on_distinct_locations_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let all = location_names();
    create(
        dir.path(),
        &all.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let barrier = Barrier::new(WRITERS);
    std::thread::scope(|scope| {
        for name in &all {
            let (barrier, path) = (&barrier, dir.path());
            scope.spawn(move || {
                let session = Session::open(path).unwrap();
                barrier.wait();
                session
                    .record_build_output(std::slice::from_ref(name), |state| {
                        Ok(format!("img/{}:1", state.location_name))
                    })
                    .unwrap();
            });
        }
    });
    let session = Session::open(dir.path()).unwrap();
    let states = session.locations().unwrap();
    assert_eq!(states.len(), WRITERS);
    for state in states {
        assert_eq!(
            state.image(),
            Some(format!("img/{}:1", state.location_name).as_str())
        );
    }
}

#[test]
fn thirty_two_writers_on_one_location_leave_a_valid_file_and_every_history_entry() {
    let dir = tempfile::tempdir().unwrap();
    create(dir.path(), &["shared"]);
    let barrier = Barrier::new(WRITERS + 1);
    std::thread::scope(|scope| {
        for index in 0..WRITERS {
            let (barrier, path) = (&barrier, dir.path());
            scope.spawn(move || {
                let session = Session::open(path).unwrap();
                barrier.wait();
                session
                    .record_build_output(&strings(&["shared"]), |_| Ok(format!("img:{index}")))
                    .unwrap();
                session
                    .append_history("shared", Status::Pending, &format!("writer {index}"))
                    .unwrap();
            });
        }
        // A reader racing the writers must always see a complete, valid file.
        let (barrier, path) = (&barrier, dir.path());
        scope.spawn(move || {
            let session = Session::open(path).unwrap();
            barrier.wait();
            for _ in 0..200 {
                assert_eq!(names(&session.locations().unwrap()), ["shared"]);
            }
        });
    });
    let state = Session::open(dir.path())
        .unwrap()
        .location("shared")
        .unwrap();
    let image = state.image().unwrap();
    assert!(image.starts_with("img:"), "{image}");
    assert_eq!(state.history.len(), WRITERS + 1, "lost history entries");
    let mut logs: Vec<&str> = state.history[1..]
        .iter()
        .map(|change| change.log.as_str())
        .collect();
    logs.sort();
    let mut expected: Vec<String> = (0..WRITERS)
        .map(|index| format!("writer {index}"))
        .collect();
    expected.sort();
    assert_eq!(logs, expected);
    // No temp file survives.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
