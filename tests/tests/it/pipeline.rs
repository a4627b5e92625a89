//! The whole pipeline through the real binary: start, build-and-push (native), set-build-output,
//! deploy and status, against the emulator and a real registry; and how it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dagster_deploy_e2e::{AgentBehaviour, Emulator, EmulatorConfig, Registry};
use serde_json::Value;

use crate::support::{
    DgWorkspace, TOKEN, command, dagster_deploy, describe, run, seed_base_image, start_legacy,
    success,
};

/// One pipeline: an emulator, a registry, a dg workspace and a state directory.
struct Pipeline {
    emulator: Emulator,
    registry: Registry,
    workspace: DgWorkspace,
    home: tempfile::TempDir,
    statedir: PathBuf,
}

impl Pipeline {
    fn new(projects: &[&str], config: EmulatorConfig) -> Self {
        let emulator = Emulator::start_blocking(
            config
                .with_token(TOKEN)
                .with_load_time(Duration::from_millis(300)),
        );
        let registry = Registry::start();
        let workspace = DgWorkspace::new(projects, &format!("{}/e2e/code", registry.host()));
        let home = tempfile::tempdir().unwrap();
        let statedir = home.path().join("state");
        Pipeline {
            emulator,
            registry,
            workspace,
            home,
            statedir,
        }
    }

    fn cli(&self) -> Command {
        command(
            &dagster_deploy(),
            self.home.path(),
            &self.emulator.url(),
            &self.statedir,
        )
    }

    fn start(&self) {
        let project = self.workspace.path().to_str().unwrap().to_owned();
        success(self.cli().args([
            "start",
            "--deployment",
            "prod",
            "--deployment-type",
            "full",
            "--project-dir",
            &project,
        ]));
    }

    fn status(&self, statedir: &Path) -> Vec<Value> {
        let stdout = success(
            self.cli()
                .args(["status", "--output-format", "json"])
                .env("DAGSTER_BUILD_STATEDIR", statedir),
        );
        stdout
            .lines()
            .map(|line| serde_json::from_str(line).expect("status prints one JSON object per line"))
            .collect()
    }
}

fn last_status(state: &Value) -> (&str, &str) {
    let last = state["history"]
        .as_array()
        .and_then(|history| history.last())
        .expect("a history entry");
    (
        last["status"].as_str().unwrap(),
        last["log"].as_str().unwrap(),
    )
}

fn manifest_exists(registry: &Registry, image: &str) -> bool {
    let (repository_and_host, tag) = image.rsplit_once(':').unwrap();
    let repository = repository_and_host
        .strip_prefix(&format!("{}/", registry.host()))
        .unwrap();
    let output = Command::new("curl")
        .args([
            "-fsS",
            "-o",
            "/dev/null",
            "-I",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!(
            "http://{}/v2/{repository}/manifests/{tag}",
            registry.host()
        ))
        .output()
        .expect("curl is installed (apt-get install -y curl)");
    output.status.success()
}

#[test]
fn full_pipeline_builds_pushes_deploys_and_reports_every_location() {
    let pipeline = Pipeline::new(
        &["sales", "marketing", "ops-core"],
        EmulatorConfig::default(),
    );
    let base = seed_base_image(&pipeline.registry.host());
    pipeline.start();
    success(pipeline.cli().args([
        "build-and-push",
        "--builder",
        "native",
        "--base-image",
        &base,
    ]));
    success(
        pipeline
            .cli()
            .args(["deploy", "--location-load-timeout", "60"]),
    );

    let deployed = pipeline.emulator.deployed_locations();
    let mut names: Vec<&str> = deployed
        .iter()
        .map(|location| location.name.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["marketing", "ops-core", "sales"]);
    assert_eq!(
        pipeline.emulator.requests_for("deployLocations").len(),
        1,
        "one batched deploy"
    );
    let states = pipeline.status(&pipeline.statedir);
    assert_eq!(states.len(), 3);
    for state in &states {
        let image = state["build_output"]["image"]
            .as_str()
            .expect("an image per location");
        assert!(
            manifest_exists(&pipeline.registry, image),
            "{image} is not in the registry"
        );
        assert_eq!(
            last_status(state),
            ("success", "deploy successful"),
            "{state}"
        );
        let sent = deployed
            .iter()
            .find(|location| location.name == state["location_name"])
            .unwrap();
        assert_eq!(sent.document["image"], state["build_output"]["image"]);
    }
}

#[test]
fn fan_out_build_jobs_merge_into_one_session_and_one_deploy() {
    let pipeline = Pipeline::new(
        &["sales", "marketing", "ops-core"],
        EmulatorConfig::default(),
    );
    let base = seed_base_image(&pipeline.registry.host());
    pipeline.start();
    let jobs: Vec<(String, PathBuf)> = ["sales", "marketing", "ops-core"]
        .iter()
        .map(|name| {
            let copy = pipeline.home.path().join(format!("job-{name}"));
            std::fs::create_dir_all(&copy).unwrap();
            for entry in std::fs::read_dir(&pipeline.statedir).unwrap() {
                let entry = entry.unwrap();
                // The session's files, as an artifact upload hands them over (our spare
                // directory is hidden, and nothing reads it).
                if entry.file_type().unwrap().is_file() {
                    std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
                }
            }
            ((*name).to_owned(), copy)
        })
        .collect();
    let children: Vec<_> = jobs
        .iter()
        .map(|(name, copy)| {
            pipeline
                .cli()
                .args([
                    "build-and-push",
                    "--builder",
                    "native",
                    "--base-image",
                    &base,
                    "--location-name",
                    name,
                ])
                .env("DAGSTER_BUILD_STATEDIR", copy)
                .output()
        })
        .collect();
    for child in children {
        let output = child.unwrap();
        assert!(output.status.success(), "{}", describe(&output));
    }
    for (name, copy) in &jobs {
        let built: Vec<Value> = pipeline
            .status(copy)
            .into_iter()
            .filter(|state| !state["build_output"].is_null())
            .collect();
        assert_eq!(built.len(), 1, "job {name} built only its own location");
    }
    // Fan in on a fresh runner: the start job's directory is gone.
    std::fs::remove_dir_all(&pipeline.statedir).unwrap();
    let merged = pipeline.home.path().join("merged");
    let mut merge = pipeline.cli();
    merge
        .args(["state", "merge"])
        .env("DAGSTER_BUILD_STATEDIR", &merged);
    for (_, copy) in &jobs {
        merge.arg(copy);
    }
    success(&mut merge);
    success(
        pipeline
            .cli()
            .args(["deploy"])
            .env("DAGSTER_BUILD_STATEDIR", &merged),
    );
    let requests = pipeline.emulator.requests_for("deployLocations");
    assert_eq!(requests.len(), 1);
    let locations = requests[0].variables["document"]["locations"]
        .as_array()
        .unwrap();
    assert_eq!(locations.len(), 3);
    assert!(locations.iter().all(|location| {
        location["image"]
            .as_str()
            .is_some_and(|image| image.contains("/e2e/code:"))
    }));
}

#[test]
fn one_failing_location_fails_the_deploy_and_records_each_outcome() {
    let pipeline = Pipeline::new(
        &["sales", "marketing", "ops-core"],
        EmulatorConfig::default().with_failing_location("marketing"),
    );
    pipeline.start();
    success(
        pipeline
            .cli()
            .args(["set-build-output", "--image-tag", "v1"]),
    );
    let output = run(pipeline.cli().args(["deploy"]));
    assert_eq!(output.status.code(), Some(7), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("marketing") && stderr.contains("ImportError"),
        "{}",
        describe(&output)
    );
    for state in pipeline.status(&pipeline.statedir) {
        let (status, log) = last_status(&state);
        if state["location_name"] == "marketing" {
            assert_eq!(status, "failed");
            assert!(log.contains("ImportError"), "{log}");
        } else {
            assert_eq!((status, log), ("success", "deploy successful"), "{state}");
        }
    }
}

#[test]
fn no_running_agent_times_out_with_a_hint() {
    let pipeline = Pipeline::new(
        &["sales"],
        EmulatorConfig::default().with_agent(AgentBehaviour::Absent),
    );
    pipeline.start();
    success(
        pipeline
            .cli()
            .args(["set-build-output", "--image-tag", "v1"]),
    );
    let output = run(pipeline
        .cli()
        .args(["deploy", "--agent-heartbeat-timeout", "1"]));
    assert_eq!(output.status.code(), Some(8), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("agent"),
        "{}",
        describe(&output)
    );
    let states = pipeline.status(&pipeline.statedir);
    assert_eq!(last_status(&states[0]).0, "failed");
}

#[test]
fn a_bad_token_is_an_authentication_error_that_never_shows_the_token() {
    let pipeline = Pipeline::new(&["sales"], EmulatorConfig::default());
    let wrong = "user:wrong-secret-token-77aa";
    let output = run(pipeline
        .cli()
        .args([
            "start",
            "--deployment",
            "prod",
            "--deployment-type",
            "full",
            "--project-dir",
        ])
        .arg(pipeline.workspace.path())
        .env("DAGSTER_CLOUD_API_TOKEN", wrong));
    assert_eq!(output.status.code(), Some(4), "{}", describe(&output));
    let text = describe(&output);
    assert!(
        !text.contains(wrong) && !text.contains("wrong-secret"),
        "the token leaked:\n{text}"
    );
    assert!(text.to_lowercase().contains("token"), "{text}");
    assert!(
        !pipeline.statedir.join("location-sales.json").exists(),
        "a failed start must not open a session"
    );
}

#[test]
fn a_registry_that_is_down_is_a_registry_error() {
    let pipeline = Pipeline::new(&["sales"], EmulatorConfig::default());
    let base = seed_base_image(&pipeline.registry.host());
    pipeline.start();
    drop(pipeline.registry);
    let output = run(command(
        &dagster_deploy(),
        pipeline.home.path(),
        &pipeline.emulator.url(),
        &pipeline.statedir,
    )
    .args([
        "build-and-push",
        "--builder",
        "native",
        "--base-image",
        &base,
    ]));
    assert_eq!(output.status.code(), Some(5), "{}", describe(&output));
    let status = success(
        command(
            &dagster_deploy(),
            pipeline.home.path(),
            &pipeline.emulator.url(),
            &pipeline.statedir,
        )
        .args(["status", "--output-format", "json"]),
    );
    assert!(
        status.contains("\"build_output\":null"),
        "nothing may be recorded: {status}"
    );
}

#[test]
fn bursts_of_server_errors_are_retried() {
    let pipeline = Pipeline::new(&["sales", "ops-core"], EmulatorConfig::default());
    pipeline.start();
    success(
        pipeline
            .cli()
            .args(["set-build-output", "--image-tag", "v1"]),
    );
    pipeline.emulator.fail_next(2, 503, None);
    success(pipeline.cli().args(["deploy"]));
    let statuses: Vec<u16> = pipeline
        .emulator
        .requests()
        .iter()
        .map(|request| request.response_status)
        .collect();
    assert!(
        statuses.iter().filter(|status| **status == 503).count() >= 2,
        "{statuses:?}"
    );
    assert_eq!(pipeline.emulator.deployed_locations().len(), 2);
}

fn legacy_yaml(dir: &Path, count: usize) -> PathBuf {
    let mut yaml = String::from("locations:\n");
    for index in 0..count {
        yaml.push_str(&format!(
            "  - location_name: loc{index:02}\n    code_source: {{package_name: pkg{index}}}\n    build: {{registry: registry.example.com/team/loc{index:02}}}\n"
        ));
    }
    let path = dir.join("dagster_cloud.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A session of `count` locations from a hand-written dagster_cloud.yaml, opened by `start`.
struct LegacySession {
    emulator: Emulator,
    home: tempfile::TempDir,
    statedir: PathBuf,
}

impl LegacySession {
    fn start(count: usize) -> Self {
        let emulator = Emulator::start_blocking(EmulatorConfig::default().with_token(TOKEN));
        let home = tempfile::tempdir().unwrap();
        let statedir = home.path().join("state");
        let yaml = legacy_yaml(home.path(), count);
        let session = LegacySession {
            emulator,
            home,
            statedir,
        };
        success(start_legacy(&mut session.cli(), &yaml));
        session
    }

    fn cli(&self) -> Command {
        command(
            &dagster_deploy(),
            self.home.path(),
            &self.emulator.url(),
            &self.statedir,
        )
    }
}

#[test]
fn thirty_two_concurrent_set_build_output_calls_lose_no_update() {
    let session = LegacySession::start(32);
    let cli = || session.cli();
    let children: Vec<_> = (0..32)
        .map(|index| {
            cli()
                .args([
                    "set-build-output",
                    "--location-name",
                    &format!("loc{index:02}"),
                    "--image-tag",
                    &format!("t{index}"),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", describe(&output));
    }
    let stdout = success(cli().args(["status", "--output-format", "json"]));
    let states: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(states.len(), 32);
    for (index, state) in states.iter().enumerate() {
        assert_eq!(
            state["build_output"]["image"],
            format!("registry.example.com/team/loc{index:02}:t{index}"),
            "lost update for loc{index:02}"
        );
    }
}

#[test]
fn sigkill_during_set_build_output_leaves_every_file_readable() {
    let session = LegacySession::start(8);
    let cli = || session.cli();
    for round in 0..24u64 {
        let mut child = cli()
            .args(["set-build-output", "--image-tag", &format!("r{round}")])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill at a different moment each round, from before start-up to mid-write.
        std::thread::sleep(Duration::from_micros(round * 700));
        child.kill().unwrap();
        child.wait().unwrap();
        let stdout = success(cli().args(["status", "--output-format", "json"]));
        assert_eq!(stdout.lines().count(), 8, "round {round}: {stdout}");
        for line in stdout.lines() {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|error| panic!("round {round}: {error}: {line}"));
        }
    }
    // The reference reads every file too.
    let reference = success(
        command(
            &crate::support::reference_cli(),
            session.home.path(),
            &session.emulator.url(),
            &session.statedir,
        )
        .args(["ci", "status", "--statedir"])
        .arg(&session.statedir),
    );
    assert_eq!(
        reference
            .lines()
            .filter(|line| line.starts_with('{'))
            .count(),
        8,
        "{reference}"
    );
}

#[test]
fn a_project_without_a_build_directory_is_built_from_its_own_root() {
    let pipeline = Pipeline::new(&["sales", "ops-core"], EmulatorConfig::default());
    for project in ["sales", "ops-core"] {
        std::fs::remove_file(
            pipeline
                .workspace
                .path()
                .join("projects")
                .join(project)
                .join("build.yaml"),
        )
        .unwrap();
    }
    std::fs::write(
        pipeline
            .workspace
            .path()
            .join("stray-at-workspace-root.txt"),
        "not code",
    )
    .unwrap();
    let base = seed_base_image(&pipeline.registry.host());
    pipeline.start();
    let output = run(pipeline.cli().args([
        "build-and-push",
        "--builder",
        "native",
        "--base-image",
        &base,
    ]));
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for project in ["sales", "ops-core"] {
        assert!(
            stderr.contains(&format!("projects/{project} on")),
            "{project} must be built from its own root:\n{stderr}"
        );
    }
}

/// The last history entry of each location, as `status --output-format table` shows its status.
fn table_statuses(table: &str) -> Vec<(String, String)> {
    table
        .lines()
        .skip(1)
        .filter(|line| line.starts_with("loc"))
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            (cells[0].to_owned(), cells[2].to_owned())
        })
        .collect()
}

#[test]
fn skip_unchanged_sends_only_the_changed_location_of_a_hundred() {
    let session = LegacySession::start(100);
    let home = session.home.path();
    let yaml = home.join("dagster_cloud.yaml");
    // A repository, so that each session records the commit it was started at.
    crate::support::git(home, &["init", "-q"]);
    crate::support::git(home, &["add", "dagster_cloud.yaml"]);
    crate::support::git(home, &["commit", "-q", "-m", "first"]);
    let first_commit = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(home)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let cli = || {
        let mut command = session.cli();
        command.current_dir(home);
        command
    };
    success(start_legacy(&mut cli(), &yaml));
    success(cli().args(["set-build-output", "--image-tag", "v1"]));
    let first = run(cli().args(["deploy", "--skip-unchanged"]));
    assert!(first.status.success(), "{}", describe(&first));
    assert_eq!(session.emulator.deployed_locations().len(), 100);
    // A hundred locations print counts, not a line per location.
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("0 locations unchanged in prod, left out of the deploy\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "Deploying 100 locations (loc00, loc01, loc02, loc03, loc04, … and 95 more) to prod"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("100 of 100 locations loaded"), "{stderr}");
    assert!(!stderr.contains("loc07: loaded"), "{stderr}");

    // A new commit touches one location's code: a new session, the same images but one.
    std::fs::write(home.join("README"), "touched\n").unwrap();
    crate::support::git(home, &["add", "README"]);
    crate::support::git(home, &["commit", "-q", "-m", "second"]);
    success(start_legacy(&mut cli(), &yaml));
    success(cli().args(["set-build-output", "--image-tag", "v1"]));
    success(cli().args([
        "set-build-output",
        "--location-name",
        "loc42",
        "--image-tag",
        "v2",
    ]));
    session.emulator.clear_requests();
    let output = run(cli().args(["deploy", "--skip-unchanged"]));
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("99 locations unchanged in prod, left out of the deploy (loc00, loc01, loc02, loc03, loc04, … and 94 more)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Deployed loc42 to prod; 99 locations unchanged"),
        "{stderr}"
    );

    // Dagster+ was sent one location; the others were deployed once, by the first deploy.
    let deploys = session.emulator.requests_for("deployLocations");
    assert_eq!(deploys.len(), 1);
    let sent = deploys[0].variables["document"]["locations"]
        .as_array()
        .unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["location_name"], "loc42");
    assert_eq!(sent[0]["image"], "registry.example.com/team/loc42:v2");
    for location in session.emulator.deployed_locations() {
        let expected = if location.name == "loc42" { 2 } else { 1 };
        assert_eq!(location.deploy_count, expected, "{}", location.name);
    }
    // Each read of what runs is one query, whatever the number of locations.
    assert_eq!(session.emulator.requests_for("workspace").len(), 1);
    assert_eq!(
        session.emulator.requests_for("locationsAsDocument").len(),
        1
    );

    // The session says so, and the reference's own status reads it.
    let status = run(cli().args(["status", "--output-format", "table"]));
    assert!(status.status.success(), "{}", describe(&status));
    let table = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        String::from_utf8_lossy(&status.stderr).contains("100 locations: 99 unchanged, 1 success"),
        "{}",
        describe(&status)
    );
    let statuses = table_statuses(&table);
    assert_eq!(statuses.len(), 100, "{table}");
    for (name, status) in &statuses {
        let expected = if name == "loc42" {
            "success"
        } else {
            "unchanged"
        };
        assert_eq!(status, expected, "{name}: {table}");
    }
    let reference = success(
        command(
            &crate::support::reference_cli(),
            home,
            &session.emulator.url(),
            &session.statedir,
        )
        .args(["ci", "status", "--statedir"])
        .arg(&session.statedir),
    );
    let states: Vec<Value> = reference
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(states.len(), 100, "{reference}");
    let loc07 = states
        .iter()
        .find(|state| state["location_name"] == "loc07")
        .unwrap();
    // Dagster+ keeps the commit of the deploy that last changed the location.
    assert_eq!(
        last_status(loc07),
        (
            "success",
            format!(
                "deploy skipped, unchanged: prod already runs registry.example.com/team/loc07:v1 (deployed from commit {first_commit})"
            )
            .as_str()
        )
    );
}
