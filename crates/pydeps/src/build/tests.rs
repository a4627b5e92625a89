//! Tests of `build.rs` that need no uv.

use super::*;
use crate::target::UnpackedRoot;

#[test]
fn exported_requirements_are_counted_without_hashes_comments_or_options() {
    let requirements = "--index-url https://example.org/simple\n# a comment\nalembic==1.20.1 \\\n    --hash=sha256:83 \\\n    --hash=sha256:99\nannotated-doc==0.0.6 ; python_full_version < '3.11' \\\n    --hash=sha256:36\n-e ./libs/local\n";
    assert_eq!(count_packages(requirements), 3);
    assert_eq!(count_packages(""), 0);
}

#[test]
fn the_environment_directory_must_be_free_in_the_base() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("opt/venv/bin")).unwrap();
    std::fs::create_dir_all(dir.path().join("srv/empty")).unwrap();
    let root = UnpackedRoot::new(dir.path());
    let error = check_venv_dir(&root, "/opt/venv").unwrap_err();
    assert_eq!(error.to_string(), "the base image already has /opt/venv");
    check_venv_dir(&root, "/srv/empty").unwrap();
    check_venv_dir(&root, "/app/.venv").unwrap();
    for invalid in ["relative", "/", "/opt/../etc", "/opt/./venv"] {
        let error = check_venv_dir(&root, invalid).unwrap_err();
        assert!(
            matches!(error, Error::InvalidVenvDir { .. }),
            "{invalid}: {error:?}"
        );
    }
}
