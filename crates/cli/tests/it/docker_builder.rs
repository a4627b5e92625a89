//! `build-and-push --builder docker` with a stand-in `docker` on PATH that logs its arguments:
//! the exact `docker build` / `docker push` invocations, what the session records, and the
//! failures (missing Dockerfile, failing build or push, no docker at all).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{DEFAULT_PATH, Sandbox, snapshot};

const CONFIG: i32 = 3;
const REGISTRY: i32 = 5;

/// A stand-in `docker` in `<sandbox>/bin` that appends its argv (one line per call) to
/// `<sandbox>/docker.log` and exits with `status_for_build` for `build`, and
/// `status_for_push` for `push`.
struct FakeDocker {
    bin_dir: PathBuf,
    log: PathBuf,
}

impl FakeDocker {
    fn install(sandbox: &Sandbox, status_for_build: i32, status_for_push: i32) -> Self {
        let bin_dir = sandbox.path().join("bin");
        let log = sandbox.path().join("docker.log");
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\ncase \"$1\" in\n  build) exit {status_for_build} ;;\n  push) exit {status_for_push} ;;\nesac\nexit 0\n",
            log.display()
        );
        let path = sandbox.write("bin/docker", &script);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make docker executable");
        FakeDocker { bin_dir, log }
    }

    fn path_var(&self) -> String {
        format!("{}:{DEFAULT_PATH}", self.bin_dir.display())
    }

    /// The logged invocations, one per call; empty when docker never ran.
    fn calls(&self) -> Vec<String> {
        match std::fs::read_to_string(&self.log) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn build_and_push(sandbox: &Sandbox, docker: &FakeDocker, extra: &[&str]) -> crate::support::Run {
    sandbox
        .in_session(["build-and-push", "--builder", "docker"])
        .args(extra)
        .env("PATH", docker.path_var())
        .run()
}

fn build_invocation(context: &Path, image: &str) -> String {
    format!(
        "build {} -t {image} -f {}/Dockerfile --platform linux/amd64",
        context.display(),
        context.display()
    )
}

#[test]
fn docker_builder_runs_the_reference_build_and_push_commands_and_records_the_images() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let docker = FakeDocker::install(&sandbox, 0, 0);
    let run = build_and_push(&sandbox, &docker, &["--tag", "v1"]).success();
    let proj = sandbox.path().join("proj");
    assert_eq!(
        docker.calls(),
        [
            build_invocation(&proj.join("alpha"), "registry.example.com/team/alpha:v1"),
            "push registry.example.com/team/alpha:v1".to_owned(),
            build_invocation(&proj.join("beta"), "registry.example.com/team/beta:v1"),
            "push registry.example.com/team/beta:v1".to_owned(),
        ]
    );
    assert_eq!(
        sandbox.images(),
        [
            (
                "alpha".to_owned(),
                Some("registry.example.com/team/alpha:v1".to_owned())
            ),
            (
                "beta".to_owned(),
                Some("registry.example.com/team/beta:v1".to_owned())
            ),
        ]
    );
    snapshot!("docker_build_and_push", run.stderr);
}

#[test]
fn docker_builder_tags_images_like_the_reference_without_a_tag() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let docker = FakeDocker::install(&sandbox, 0, 0);
    build_and_push(&sandbox, &docker, &["--location-name", "alpha"]).success();
    let calls = docker.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let pushed = calls[1].strip_prefix("push ").expect("a push");
    let tag = pushed
        .strip_prefix("registry.example.com/team/alpha:alpha-")
        .expect("tag <location>-<hex>");
    assert!(
        tag.len() == 32 && tag.chars().all(|c| c.is_ascii_hexdigit()),
        "{tag}"
    );
    assert_eq!(
        calls[0],
        build_invocation(&sandbox.path().join("proj/alpha"), pushed)
    );
    assert_eq!(
        sandbox.images(),
        [
            ("alpha".to_owned(), Some(pushed.to_owned())),
            ("beta".to_owned(), None)
        ]
    );
}

#[test]
fn docker_builder_passes_the_platform_flag_through() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let docker = FakeDocker::install(&sandbox, 0, 0);
    build_and_push(
        &sandbox,
        &docker,
        &[
            "--tag",
            "v1",
            "--location-name",
            "beta",
            "--platform",
            "linux/arm64",
        ],
    )
    .success();
    assert!(
        docker.calls()[0].ends_with(" --platform linux/arm64"),
        "{:?}",
        docker.calls()
    );
}

#[test]
fn a_missing_dockerfile_is_a_config_error_before_anything_runs() {
    let sandbox = Sandbox::with_project();
    std::fs::remove_file(sandbox.path().join("proj/beta/Dockerfile")).expect("remove Dockerfile");
    sandbox.start(None);
    let docker = FakeDocker::install(&sandbox, 0, 0);
    let run = build_and_push(
        &sandbox,
        &docker,
        &["--tag", "v1", "--location-name", "beta"],
    )
    .code(CONFIG);
    assert!(
        run.stderr.contains(&format!(
            "location beta: no Dockerfile at {}",
            sandbox.path().join("proj/beta/Dockerfile").display()
        )),
        "{}",
        run.stderr
    );
    assert!(docker.calls().is_empty(), "{:?}", docker.calls());
    assert_eq!(
        sandbox.images(),
        [("alpha".to_owned(), None), ("beta".to_owned(), None)]
    );
    snapshot!("docker_missing_dockerfile", run.stderr);
}

#[test]
fn a_failing_docker_build_is_a_registry_error_and_records_nothing() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let docker = FakeDocker::install(&sandbox, 1, 0);
    let run = build_and_push(&sandbox, &docker, &["--tag", "v1"]).code(REGISTRY);
    assert_eq!(docker.calls().len(), 1, "no push after a failed build");
    assert!(docker.calls()[0].starts_with("build "));
    assert_eq!(
        sandbox.images(),
        [("alpha".to_owned(), None), ("beta".to_owned(), None)]
    );
    snapshot!("docker_build_fails", run.stderr);
}

#[test]
fn a_failing_docker_push_is_a_registry_error_and_records_nothing() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let docker = FakeDocker::install(&sandbox, 0, 1);
    let run = build_and_push(&sandbox, &docker, &["--tag", "v1"]).code(REGISTRY);
    assert!(
        run.stderr.contains("`docker push` failed"),
        "{}",
        run.stderr
    );
    assert_eq!(docker.calls().len(), 2);
    assert_eq!(
        sandbox.images(),
        [("alpha".to_owned(), None), ("beta".to_owned(), None)]
    );
}

#[test]
fn without_docker_on_path_the_error_says_what_to_do() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let empty = sandbox.path().join("empty-bin");
    std::fs::create_dir(&empty).expect("create an empty bin dir");
    let run = sandbox
        .in_session(["build-and-push", "--builder", "docker", "--tag", "v1"])
        .env("PATH", &empty)
        .run()
        .code(REGISTRY);
    assert!(run.stderr.contains("cannot run docker"), "{}", run.stderr);
    assert!(run.stderr.contains("--builder native"), "{}", run.stderr);
}

#[test]
fn an_unknown_location_name_runs_no_docker_command() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let docker = FakeDocker::install(&sandbox, 0, 0);
    build_and_push(
        &sandbox,
        &docker,
        &["--tag", "v1", "--location-name", "gamma"],
    )
    .code(2);
    assert!(docker.calls().is_empty());
}

const USAGE: i32 = 2;

/// `--tag` becomes a URL path (native builder) and an image name (docker builder): it is
/// checked like `set-build-output --image-tag`, before anything is built, sent or recorded.
#[test]
fn build_and_push_rejects_a_bad_tag_before_anything_runs() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let docker = FakeDocker::install(&sandbox, 0, 0);
    for tag in ["../../other/app", "bad tag", "-v1", ".hidden", "v1/../../x"] {
        // `--tag=VALUE`, so that a tag starting with `-` reaches the check, not clap.
        let flag = format!("--tag={tag}");
        let run = build_and_push(&sandbox, &docker, &[&flag]).code(USAGE);
        assert!(
            run.stderr
                .contains(&format!("--tag {tag:?}: {tag:?} is not a valid image tag")),
            "{}",
            run.stderr
        );
        // The native builder would have contacted this (unreachable) base registry first.
        let native = sandbox
            .in_session([
                "build-and-push",
                "--base-image",
                "127.0.0.1:9/base:1",
                &flag,
            ])
            .run()
            .code(USAGE);
        assert!(native.stderr.contains("--tag"), "{}", native.stderr);
    }
    assert!(docker.calls().is_empty(), "{:?}", docker.calls());
    assert_eq!(
        sandbox.images(),
        [("alpha".to_owned(), None), ("beta".to_owned(), None)]
    );
}

/// A location name may hold characters a tag may not (spaces, `+`, non-ASCII); the tag the
/// docker builder derives from it must still be a valid tag.
#[test]
fn docker_builder_derives_a_valid_tag_from_any_location_name() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "proj/dagster_cloud.yaml",
        "locations:\n  - location_name: \"Sales + Ops é\"\n    code_source:\n      package_name: sales\n    build:\n      directory: sales\n      registry: registry.example.com/team/sales\n",
    );
    sandbox.write("proj/sales/Dockerfile", "FROM python:3.12-slim\n");
    sandbox.start(None);
    let docker = FakeDocker::install(&sandbox, 0, 0);
    build_and_push(&sandbox, &docker, &[]).success();
    let calls = docker.calls();
    let pushed = calls[1].strip_prefix("push ").expect("a push");
    let tag = pushed
        .strip_prefix("registry.example.com/team/sales:")
        .expect("the registry");
    assert!(
        tag.len() <= 128
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            && tag.starts_with("Sales-Ops-"),
        "{tag}"
    );
}

/// A `docker build` that never ends (a hung daemon) is stopped at `--build-timeout`, with an
/// error naming it and what to do; nothing is recorded.
#[test]
fn a_hanging_docker_build_is_stopped_at_the_build_timeout() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let docker = FakeDocker::install(&sandbox, 0, 0);
    let path = sandbox.write("bin/docker", "#!/bin/sh\nexec sleep 30\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let started = std::time::Instant::now();
    let run = build_and_push(&sandbox, &docker, &["--tag", "v1", "--build-timeout", "1"]).code(8);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        run.stderr
            .contains("`docker build` did not finish within 1 s and was stopped")
            && run.stderr.contains("docker info")
            && run.stderr.contains("--build-timeout"),
        "{}",
        run.stderr
    );
    assert_eq!(
        sandbox.images(),
        [("alpha".to_owned(), None), ("beta".to_owned(), None)]
    );
}
