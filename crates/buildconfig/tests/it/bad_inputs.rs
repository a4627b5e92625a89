//! Every file in `tests/fixtures/bad/` must fail to load with a message that names the file,
//! the position and the field, and gives a hint. The rendered messages are pinned as snapshots.

use std::path::{Path, PathBuf};

use dagster_deploy_buildconfig::{DagsterCloudYaml, Error};

fn bad_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad")
}

fn bad_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(bad_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// The rendered error with the machine-specific fixture folder replaced by `bad`.
fn rendered_error(path: &Path) -> (Error, String) {
    let err = match DagsterCloudYaml::load(path) {
        Ok(_) => panic!("{} loaded without error", path.display()),
        Err(err) => err,
    };
    let rendered = crate::render(&err).replace(&bad_dir().to_string_lossy().into_owned(), "bad");
    (err, rendered)
}

#[test]
fn every_bad_input_renders_a_positioned_message_with_help() {
    let files = bad_files();
    assert!(files.len() >= 30, "corpus has only {} files", files.len());
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let (err, rendered) = rendered_error(&path);
        assert!(
            rendered.starts_with(&format!("error: bad/{name}.yaml")),
            "{rendered}"
        );
        assert!(rendered.contains("\n  help: "), "{rendered}");
        let file_level = matches!(err, Error::Empty { .. });
        if !file_level {
            let (line, column) = err
                .line_column()
                .unwrap_or_else(|| panic!("no position: {rendered}"));
            assert!(
                rendered.contains(&format!(".yaml:{line}:{column}: ")),
                "{rendered}"
            );
        }
        insta::assert_snapshot!(name, rendered);
    }
}

#[test]
fn a_file_with_several_mistakes_reports_every_one() {
    let (err, rendered) = rendered_error(&bad_dir().join("several-mistakes.yaml"));
    // The registry in `defaults`, the unknown key and the missing build directory of the first
    // location, two code sources and a list for a string in the second, and the third reusing
    // the first one's name.
    assert_eq!(err.problem_count(), 6, "{rendered}");
    assert_eq!(
        rendered
            .matches("error: bad/several-mistakes.yaml:")
            .count(),
        6
    );
    assert_eq!(rendered.matches("\n  help: ").count(), 6);
    let lines: Vec<usize> = err
        .diagnostics()
        .iter()
        .map(|problem| problem.line())
        .collect();
    assert_eq!(lines, [4, 8, 10, 12, 13, 14]);
}

#[test]
fn schema_errors_name_the_field_path() {
    let (_, rendered) = rendered_error(&bad_dir().join("registry-with-tag.yaml"));
    assert!(
        rendered.contains(":6:17: locations[2].build.registry: "),
        "{rendered}"
    );
}
