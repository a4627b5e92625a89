//! Tests of `lock.rs`: which `uv.lock` a project uses.

use std::path::Path;

use super::*;

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

const WORKSPACE: &str =
    "[tool.uv.workspace]\nmembers = [\"projects/*\"]\nexclude = [\"projects/old*\"]\n";

#[test]
fn a_project_with_its_own_lock_is_its_own_root() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("pyproject.toml", "[project]\nname = \"sales\"\n"),
            ("uv.lock", "version = 1\n"),
        ],
    );
    let found = find_lock(dir.path()).unwrap().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(found.root_dir, root);
    assert_eq!(found.lock_path, root.join("uv.lock"));
    assert_eq!(found.package.as_deref(), Some("sales"));
}

#[test]
fn a_workspace_member_uses_the_lock_of_its_workspace_root() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("pyproject.toml", WORKSPACE),
            ("uv.lock", "version = 1\n"),
            (
                "projects/sales/pyproject.toml",
                "[project]\nname = \"sales\"\n",
            ),
        ],
    );
    let found = find_lock(&dir.path().join("projects/sales"))
        .unwrap()
        .unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(found.root_dir, root);
    assert_eq!(found.project_dir, root.join("projects/sales"));
    assert_eq!(found.package.as_deref(), Some("sales"));
}

#[test]
fn an_excluded_project_without_its_own_lock_has_none() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("pyproject.toml", WORKSPACE),
            ("uv.lock", "version = 1\n"),
            (
                "projects/old-sales/pyproject.toml",
                "[project]\nname = \"old-sales\"\n",
            ),
        ],
    );
    assert_eq!(
        find_lock(&dir.path().join("projects/old-sales")).unwrap(),
        None
    );
}

#[test]
fn a_project_outside_the_members_keeps_its_own_lock() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("pyproject.toml", WORKSPACE),
            ("uv.lock", "version = 1\n"),
            ("tools/lint/pyproject.toml", "[project]\nname = \"lint\"\n"),
            ("tools/lint/uv.lock", "version = 1\n"),
        ],
    );
    let found = find_lock(&dir.path().join("tools/lint")).unwrap().unwrap();
    assert_eq!(
        found.root_dir,
        std::fs::canonicalize(dir.path().join("tools/lint")).unwrap()
    );
}

#[test]
fn a_project_without_a_lock_has_none() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[("pyproject.toml", "[project]\nname = \"a\"\n")],
    );
    assert_eq!(find_lock(dir.path()).unwrap(), None);
    let bare = tempfile::tempdir().unwrap();
    assert_eq!(find_lock(bare.path()).unwrap(), None);
}

#[test]
fn a_virtual_workspace_root_selects_no_package() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[("pyproject.toml", WORKSPACE), ("uv.lock", "version = 1\n")],
    );
    let found = find_lock(dir.path()).unwrap().unwrap();
    assert_eq!(found.package, None);
}

#[test]
fn an_invalid_pyproject_is_named_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("pyproject.toml", "[project]\nname = \"a\"\nname = \"b\"\n"),
            ("uv.lock", ""),
        ],
    );
    let error = find_lock(dir.path()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("pyproject.toml: line 3, column 1"),
        "{message}"
    );
    assert!(error.help().is_some());
}

#[test]
fn a_missing_project_directory_is_named() {
    let error = find_lock(Path::new("/nonexistent/project")).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/project"),
        "{error}"
    );
}

#[test]
fn member_globs_follow_uv() {
    let check = |pattern: &str, path: &str, expected: bool| {
        let pattern: Vec<&str> = pattern.split('/').collect();
        let path: Vec<&str> = path.split('/').collect();
        assert_eq!(glob_path(&pattern, &path), expected, "{pattern:?} {path:?}");
    };
    check("projects/*", "projects/sales", true);
    check("projects/*", "projects/sales/inner", false);
    check("projects/*", "libs/sales", false);
    check("**/app", "a/b/app", true);
    check("**/app", "app", true);
    check("libs/**", "libs/a/b", true);
    check("p?", "pa", true);
    check("p?", "pab", false);
    check("[ab]*", "alpha", true);
    check("[!ab]*", "alpha", false);
    check("[a-c]x", "bx", true);
    check("[a-c]x", "dx", false);
    check("sales", "sales", true);
}
