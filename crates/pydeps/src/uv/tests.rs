//! Tests of `uv.rs` that need no uv: reading its failures.

use std::time::Instant;

use super::*;

#[test]
fn the_package_of_a_no_build_failure_is_named() {
    // What uv 0.13 prints for an sdist-only package under `--no-build`.
    let output = "error: No solution found when resolving dependencies\n  cause: Because docopt==0.6.2 has no usable wheels and you require docopt==0.6.2, we can conclude that your requirements are unsatisfiable.\n\nhint: Wheels are required for `docopt` because building from source is disabled for all packages (i.e., with `--no-build`)";
    assert_eq!(packages_needing_build(output), ["docopt"]);
}

#[test]
fn a_local_path_package_is_named_too() {
    // What uv 0.13 prints for a path dependency under `--no-build`.
    let output =
        "error: Building source distributions is disabled, but attempted to build `helper`";
    assert_eq!(packages_needing_build(output), ["helper"]);
}

#[test]
fn every_package_uv_names_is_kept_once() {
    let output = "Because numpy==2.3.0 has no wheels with a matching Python ABI tag and pandas==2.0 has no usable wheels\nWheels are required for `numpy` because";
    assert_eq!(packages_needing_build(output), ["numpy", "pandas"]);
    assert!(packages_needing_build("something else went wrong").is_empty());
}

#[test]
fn the_needs_build_error_names_the_packages_and_suggests_no_flag() {
    let error = Error::NeedsBuild {
        packages: vec!["docopt".to_owned(), "psycopg2".to_owned()],
        platform: "x86_64-manylinux_2_36".to_owned(),
        python: "3.11.2".to_owned(),
        output: String::new(),
    };
    assert_eq!(
        error.to_string(),
        "`docopt` and `psycopg2` have no wheel for x86_64-manylinux_2_36 and Python 3.11.2, so they would have to be built from source"
    );
    let help = error.help().unwrap();
    assert!(help.contains("Docker"), "{help}");
    assert!(!help.contains("--"), "the CLI adds flags: {help}");
}

#[test]
fn a_program_that_is_not_there_is_named() {
    let error = Uv::new("/nonexistent/uv").unwrap_err();
    assert!(matches!(error, Error::UvNotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("/nonexistent/uv"), "{error}");
    assert!(error.help().is_some());
}

#[test]
fn a_program_that_is_not_uv_is_refused() {
    let error = Uv::new("/bin/echo").unwrap_err();
    assert!(matches!(error, Error::UvVersion { .. }), "{error:?}");
}

/// A fake uv in `dir`: it answers `--version` with 9.9.9 and runs `script` for anything else.
#[cfg(unix)]
fn fake_uv(dir: &std::path::Path, script: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let program = dir.join("uv");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'uv 9.9.9'; exit 0; fi\n{script}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    program
}

#[cfg(unix)]
#[test]
fn a_uv_that_hangs_is_stopped_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let program = fake_uv(dir.path(), "exec sleep 30");
    let uv = Uv::new(&program)
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    assert_eq!(uv.version(), "9.9.9");
    let started = Instant::now();
    let error = uv
        .run("export", &[OsString::from("export")], None)
        .err()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(error, Error::UvTimedOut { .. }), "{error:?}");
    assert!(error.to_string().starts_with("uv export ("), "{error}");
}

#[cfg(unix)]
#[test]
fn hidden_variables_never_reach_uv() {
    let dir = tempfile::tempdir().unwrap();
    let program = fake_uv(
        dir.path(),
        "printf '%s|%s' \"${HOME:+home}\" \"${DD_TEST_SECRET_FOR_UV:-unset}\"",
    );
    let uv = Uv::new(&program)
        .unwrap()
        .with_env("DD_TEST_SECRET_FOR_UV", "hunter2")
        .without_env("DD_TEST_SECRET_FOR_UV");
    let output = uv.run("export", &[OsString::from("export")], None).unwrap();
    // Set explicitly, it wins; hidden from this process's environment alone, it is removed.
    assert_eq!(String::from_utf8_lossy(&output.stdout), "home|hunter2");
    let uv = Uv::new(&program).unwrap().without_env("HOME");
    let output = uv.run("export", &[OsString::from("export")], None).unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "|unset");
}
