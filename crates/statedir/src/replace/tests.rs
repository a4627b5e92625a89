//! Replacing files through spares: the content lands, the old inode is reused by the next
//! replacement, and a spare that is not a plain file of ours is never written through.

use std::fs;
use std::path::Path;

use super::*;

fn replace(dir: &Path, files: &[(&str, &str)]) {
    let files: Vec<NewContent<'_>> = files
        .iter()
        .map(|(file, contents)| NewContent {
            file,
            contents: contents.as_bytes(),
        })
        .collect();
    replace_files(dir, &files, |_| Ok(())).unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Every temp file was renamed into place or removed.
fn assert_no_temp_file(dir: &Path) {
    let names = entries(dir);
    assert!(
        names
            .iter()
            .all(|name| !name.starts_with(fsio::TEMP_PREFIX)),
        "{names:?}"
    );
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).unwrap()
}

#[test]
fn files_get_their_new_content_and_no_temp_file_is_left() {
    let dir = tempfile::tempdir().unwrap();
    replace(
        dir.path(),
        &[("location-a.json", "one"), ("location-b.json", "1")],
    );
    replace(dir.path(), &[("location-a.json", "two")]);
    replace(
        dir.path(),
        &[("location-a.json", "three"), ("location-b.json", "3")],
    );
    assert_eq!(read(dir.path(), "location-a.json"), "three");
    assert_eq!(read(dir.path(), "location-b.json"), "3");
    assert_no_temp_file(dir.path());
}

#[cfg(target_os = "linux")]
mod spares {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn inode(path: &Path) -> u64 {
        fs::symlink_metadata(path).unwrap().ino()
    }

    #[test]
    fn a_replaced_file_keeps_its_old_inode_as_the_next_spare() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("location-a.json");
        let spare = dir.path().join(fsio::SPARE_DIR).join("location-a.json");
        replace(dir.path(), &[("location-a.json", "one")]);
        // A new file is renamed into place: it has no spare yet.
        assert!(!spare.exists());
        let first = inode(&file);
        replace(dir.path(), &[("location-a.json", "two")]);
        let second = inode(&file);
        assert_ne!(first, second);
        assert_eq!(inode(&spare), first, "the old inode is kept as the spare");
        assert_eq!(fs::read_to_string(&spare).unwrap(), "one");
        // From now on the two inodes take turns: nothing is allocated or freed.
        for (round, content) in ["three", "four", "five"].into_iter().enumerate() {
            replace(dir.path(), &[("location-a.json", content)]);
            let expected = if round % 2 == 0 { first } else { second };
            assert_eq!(inode(&file), expected, "round {round}");
            assert_eq!(read(dir.path(), "location-a.json"), content);
        }
    }

    #[test]
    fn a_shorter_content_leaves_nothing_of_the_longer_one() {
        let dir = tempfile::tempdir().unwrap();
        for content in ["a long first content", "x", "a long third content", "y"] {
            replace(dir.path(), &[("location-a.json", content)]);
            assert_eq!(read(dir.path(), "location-a.json"), content);
        }
    }

    #[test]
    fn a_spare_shared_with_another_copy_is_not_written_into() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        replace(dir.path(), &[("location-a.json", "one")]);
        // A copy of the session made with hard links (`cp -al`) shares the inodes.
        let copy = other.path().join("location-a.json");
        fs::hard_link(dir.path().join("location-a.json"), &copy).unwrap();
        replace(dir.path(), &[("location-a.json", "two")]);
        replace(dir.path(), &[("location-a.json", "three")]);
        assert_eq!(read(dir.path(), "location-a.json"), "three");
        assert_eq!(fs::read_to_string(&copy).unwrap(), "one");
    }

    #[test]
    fn a_spare_that_is_a_symbolic_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let outside = other.path().join("victim");
        fs::write(&outside, "keep me").unwrap();
        replace(dir.path(), &[("location-a.json", "one")]);
        std::os::unix::fs::symlink(
            &outside,
            dir.path().join(fsio::SPARE_DIR).join("location-a.json"),
        )
        .unwrap();
        replace(dir.path(), &[("location-a.json", "two")]);
        assert_eq!(read(dir.path(), "location-a.json"), "two");
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep me");
    }

    #[test]
    fn a_spare_directory_that_is_a_symbolic_link_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(other.path(), dir.path().join(fsio::SPARE_DIR)).unwrap();
        replace(
            dir.path(),
            &[("location-a.json", "one"), ("location-b.json", "1")],
        );
        replace(
            dir.path(),
            &[("location-a.json", "two"), ("location-b.json", "2")],
        );
        assert_eq!(read(dir.path(), "location-a.json"), "two");
        assert!(
            entries(other.path()).is_empty(),
            "{:?}",
            entries(other.path())
        );
        assert_no_temp_file(dir.path());
    }

    #[test]
    fn removing_a_file_removes_its_spare_and_start_prunes_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let spares = dir.path().join(fsio::SPARE_DIR);
        for round in 0..2 {
            let content = format!("{round}");
            replace(
                dir.path(),
                &[
                    ("location-a.json", &content),
                    ("location-b.json", &content),
                    ("location-c.json", &content),
                ],
            );
        }
        assert_eq!(
            entries(&spares),
            ["location-a.json", "location-b.json", "location-c.json"]
        );
        remove_file(dir.path(), "location-a.json").unwrap();
        assert!(!dir.path().join("location-a.json").exists());
        assert_eq!(entries(&spares), ["location-b.json", "location-c.json"]);
        prune_spares(dir.path(), |file| file == "location-c.json").unwrap();
        assert_eq!(entries(&spares), ["location-c.json"]);
    }
}
