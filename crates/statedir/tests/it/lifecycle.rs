//! Creating, opening and clearing sessions; listing and damaged files.

use std::fs;

use dagster_deploy_statedir::{Error, Session, Status};

use crate::support::{create, entries, info, names, new_location};

#[test]
fn create_writes_one_file_per_location_and_the_session_file() {
    let dir = tempfile::tempdir().unwrap();
    let statedir = dir.path().join("nested/state");
    let session = create(&statedir, &["warehouse", "marketing"]);
    assert_eq!(session.dir(), statedir);
    assert_eq!(
        entries(&statedir),
        [
            ".dagster-deploy-spare",
            ".dagster-deploy.lock",
            "dagster-deploy-session.json",
            "location-marketing.json",
            "location-warehouse.json"
        ]
    );
    assert_eq!(session.info().unwrap(), Some(info()));
    let states = session.locations().unwrap();
    assert_eq!(names(&states), ["marketing", "warehouse"]);
    let first = &states[0];
    assert!(first.selected);
    assert_eq!(first.history.len(), 1);
    assert_eq!(first.history[0].status, Status::Pending);
    assert_eq!(first.history[0].log, "initialized");
    assert_eq!(first.history[0].timestamp.subsec_nanosecond() % 1000, 0);

    let text = fs::read_to_string(statedir.join("location-marketing.json")).unwrap();
    // Redact the stored value itself (a `Timestamp`'s Display drops trailing zeros, the file
    // keeps six digits).
    let (head, rest) = text.split_once(r#""timestamp":""#).unwrap();
    let (stored, tail) = rest.split_once('"').unwrap();
    assert!(stored.ends_with('Z'), "{stored}");
    assert_eq!(
        stored.parse::<jiff::Timestamp>().unwrap(),
        first.history[0].timestamp
    );
    let text = format!(r#"{head}"timestamp":"[timestamp]"{tail}"#);
    insta::assert_snapshot!(text, @r#"{"url":"https://acme.dagster.cloud","deployment_name":"prod","location_file":"/w/dagster_cloud.yaml","location_name":"marketing","is_branch_deployment":false,"selected":true,"build":{"git_url":"https://github.com/acme/data/tree/4f2a9c1","commit_hash":"4f2a9c1","build_config":{"directory":"/w/marketing","registry":"registry.example.com/data/marketing"},"git_provider":null,"repo_owner":null,"repo_name":null,"base_branch":null,"defs_base_path":null},"build_output":null,"defs_state_info":null,"status_url":"https://github.com/acme/data/actions/runs/42","history":[{"timestamp":"[timestamp]","status":"pending","log":"initialized"}],"project_dir":"/w"}"#);
}

#[test]
fn create_clears_a_previous_session_with_its_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    create(dir.path(), &["old", "kept"]);
    fs::write(dir.path().join("dagster_cloud.yaml"), "locations: []").unwrap();
    fs::write(dir.path().join(".tmp-1-2-location-old.json"), "{").unwrap();
    let session = create(dir.path(), &["kept", "new"]);
    assert_eq!(names(&session.locations().unwrap()), ["kept", "new"]);
    assert_eq!(
        entries(dir.path()),
        [
            ".dagster-deploy-spare",
            ".dagster-deploy.lock",
            "dagster-deploy-session.json",
            "location-kept.json",
            "location-new.json"
        ]
    );
}

#[test]
fn create_keeping_other_locations_restarts_only_the_named_ones() {
    let dir = tempfile::tempdir().unwrap();
    let first = create(dir.path(), &["warehouse", "marketing"]);
    first
        .set_selected(&["marketing".to_owned()], false)
        .unwrap();
    let session = Session::create_keeping_other_locations(
        dir.path(),
        info(),
        vec![new_location("warehouse"), new_location("new")],
    )
    .unwrap();
    let states = session.locations().unwrap();
    assert_eq!(names(&states), ["marketing", "new", "warehouse"]);
    // The kept location is untouched (still deselected); the named ones start anew.
    assert!(!states[0].selected);
    assert!(states[1].selected && states[2].selected);
    // Foreign content is refused all the same.
    fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let err = Session::create_keeping_other_locations(dir.path(), info(), vec![new_location("a")])
        .unwrap_err();
    assert!(matches!(err, Error::ForeignEntries { .. }), "{err:?}");
}

#[test]
fn create_refuses_a_directory_with_foreign_entries_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    create(dir.path(), &["a"]);
    fs::write(dir.path().join("thesis.tex"), "precious").unwrap();
    fs::write(dir.path().join("location-a.json~"), "backup").unwrap();
    fs::create_dir(dir.path().join("src")).unwrap();
    let before = entries(dir.path());
    let err = Session::create(dir.path(), info(), vec![new_location("b")]).unwrap_err();
    assert!(matches!(err, Error::ForeignEntries { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("location-a.json~, src, thesis.tex"),
        "{message}"
    );
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert_eq!(entries(dir.path()), before);
}

#[test]
fn create_rejects_unusable_or_duplicate_names_before_touching_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    create(dir.path(), &["a"]);
    for (locations, needle) in [
        (vec![new_location("../escape")], "path separator"),
        (vec![new_location("")], "empty"),
        (vec![new_location("x"), new_location("x")], "more than once"),
    ] {
        let err = Session::create(dir.path(), info(), locations)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
    assert!(dir.path().join("location-a.json").exists());
}

#[test]
fn open_requires_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let check = |path: &std::path::Path| {
        let err = Session::open(path).unwrap_err();
        assert!(matches!(err, Error::NoSession { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert_eq!(err.path(), Some(path));
        assert!(
            err.help()
                .is_some_and(|help| help.contains("start a session")),
            "{err:?}"
        );
    };
    check(&dir.path().join("missing"));
    check(dir.path());
    fs::write(dir.path().join("location-x.json~"), "{}").unwrap();
    check(dir.path());
}

#[test]
fn listing_ignores_editor_backups_and_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["b", "a"]);
    for stray in [
        "location-a.json~",
        "location-b.json.swp",
        ".tmp-1-1-location-c.json",
        "location-c.yaml",
    ] {
        fs::write(dir.path().join(stray), "not json").unwrap();
    }
    assert_eq!(names(&session.locations().unwrap()), ["a", "b"]);
}

#[test]
fn corrupt_file_error_names_the_file_and_how_to_recover() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a", "b"]);
    let path = dir.path().join("location-b.json");
    fs::write(&path, r#"{"url": "#).unwrap();
    let err = session.locations().unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    let message = format!("{err}; {}", err.help().unwrap_or_default());
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("line 1"), "{message}");
    assert!(message.contains("start a new session"), "{message}");
    // Removing one location's file would silently drop it from the next deploy.
    assert!(!message.contains("remove"), "{message}");
}

#[test]
fn file_holding_another_location_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a", "b"]);
    fs::copy(
        dir.path().join("location-a.json"),
        dir.path().join("location-b.json"),
    )
    .unwrap();
    let message = session.location("b").unwrap_err().to_string();
    assert!(message.contains("location-b.json"), "{message}");
    assert!(message.contains(r#"holds location "a""#), "{message}");
}

#[test]
fn generated_location_file_is_written_into_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let session = create(dir.path(), &["a"]);
    let path = session
        .write_generated_location_file("locations: []\n")
        .unwrap();
    assert_eq!(path, dir.path().join("dagster_cloud.yaml"));
    assert_eq!(fs::read_to_string(&path).unwrap(), "locations: []\n");
    assert_eq!(names(&session.locations().unwrap()), ["a"]);
}

#[test]
fn create_with_location_file_writes_the_generated_file_with_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let statedir = dir.path().join("state");
    // An old session with an old generated file is replaced.
    create(&statedir, &["old"]);
    fs::write(statedir.join("dagster_cloud.yaml"), "old").unwrap();
    let path = Session::generated_location_file_path(&statedir).unwrap();
    assert_eq!(path, statedir.join("dagster_cloud.yaml"));
    let mut location = new_location("a");
    location.location_file = path.to_str().unwrap().to_owned();
    let session =
        Session::create_with_location_file(&statedir, info(), vec![location], "locations: []\n")
            .unwrap();
    assert_eq!(
        entries(&statedir),
        [
            ".dagster-deploy-spare",
            ".dagster-deploy.lock",
            "dagster-deploy-session.json",
            "dagster_cloud.yaml",
            "location-a.json"
        ]
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), "locations: []\n");
    assert_eq!(session.info().unwrap(), Some(info()));
    let state = session.location("a").unwrap();
    assert_eq!(state.location_file, path.to_str().unwrap());
    assert!(std::path::Path::new(&state.location_file).is_file());
}

#[test]
fn create_with_location_file_refusing_a_directory_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let err = Session::create_with_location_file(
        dir.path(),
        info(),
        vec![new_location("a")],
        "locations: []\n",
    )
    .unwrap_err();
    assert!(matches!(err, Error::ForeignEntries { .. }), "{err:?}");
    assert_eq!(entries(dir.path()), [".dagster-deploy.lock", "notes.txt"]);
}
