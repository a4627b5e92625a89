//! Mixed pipelines with the reference CLI (`dagster-cloud ci`, installed by scripts/setup.sh):
//! each tool must read and update the other's session, and our deploy document must equal the
//! reference's for the same input.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dagster_deploy_e2e::{Emulator, EmulatorConfig};
use serde_json::Value;

use crate::support::{FIXTURES, TOKEN, command, dagster_deploy, reference_cli, success};

const GIT_URL: &str = "https://github.com/acme/data/tree/4f2a9c1";
const COMMIT: &str = "4f2a9c1";
const TAG: &str = "4f2a9c1-42";

/// The recorded legacy-flow project: its dagster_cloud.yaml and the `pkg_a` build directory.
struct Project {
    home: tempfile::TempDir,
    project: PathBuf,
    statedir: PathBuf,
    emulator: Emulator,
}

impl Project {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let project = home.path().join("project");
        std::fs::create_dir_all(project.join("pkg_a")).unwrap();
        std::fs::copy(
            Path::new(FIXTURES).join("dagster_cloud.yaml"),
            project.join("dagster_cloud.yaml"),
        )
        .unwrap();
        let statedir = home.path().join("state");
        let emulator = Emulator::start_blocking(
            EmulatorConfig::default()
                .with_token(TOKEN)
                .with_load_time(Duration::from_millis(100)),
        );
        Project {
            home,
            project,
            statedir,
            emulator,
        }
    }

    fn ours(&self) -> Command {
        command(
            &dagster_deploy(),
            self.home.path(),
            &self.emulator.url(),
            &self.statedir,
        )
    }

    fn reference(&self) -> Command {
        let mut command = command(
            &reference_cli(),
            self.home.path(),
            &self.emulator.url(),
            &self.statedir,
        );
        command.arg("ci");
        command
    }

    fn reference_init(&self) {
        success(
            self.reference()
                .args(["init", "--statedir"])
                .arg(&self.statedir)
                .arg("--project-dir")
                .arg(&self.project)
                .args([
                    "--organization",
                    "acme",
                    "--deployment",
                    "prod",
                    "--git-url",
                    GIT_URL,
                    "--commit-hash",
                    COMMIT,
                ]),
        );
    }

    fn our_start(&self) {
        success(
            self.ours()
                .arg("start")
                .arg("--dagster-cloud-yaml")
                .arg(self.project.join("dagster_cloud.yaml"))
                .args(["--project-dir"])
                .arg(&self.project)
                .args([
                    "--deployment",
                    "prod",
                    "--deployment-type",
                    "full",
                    "--git-url",
                    GIT_URL,
                    "--commit-hash",
                    COMMIT,
                ]),
        );
    }

    fn deployed_document(&self) -> Value {
        let requests = self.emulator.requests_for("deployLocations");
        assert_eq!(requests.len(), 1, "one batched deploy");
        requests[0].variables["document"].clone()
    }
}

fn recorded_document() -> Value {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join("requests-success.json")).unwrap();
    let recording: Value = serde_json::from_str(&text).unwrap();
    recording[0]["variables"]["document"].clone()
}

#[test]
fn reference_init_then_our_set_build_output_and_deploy_sends_the_recorded_document() {
    let project = Project::new();
    project.reference_init();
    success(
        project
            .ours()
            .args(["set-build-output", "--image-tag", TAG]),
    );
    success(project.ours().args(["deploy"]));
    assert_eq!(project.deployed_document(), recorded_document());
    // The reference still reads the session after our updates.
    let status = success(
        project
            .reference()
            .args(["status", "--statedir"])
            .arg(&project.statedir),
    );
    assert_eq!(status.matches("deploy successful").count(), 2, "{status}");
}

#[test]
fn our_start_then_reference_set_build_output_and_status_then_our_deploy() {
    let project = Project::new();
    project.our_start();
    success(
        project
            .reference()
            .args(["set-build-output", "--statedir"])
            .arg(&project.statedir)
            .args(["--image-tag", TAG]),
    );
    let status = success(
        project
            .reference()
            .args(["status", "--statedir"])
            .arg(&project.statedir),
    );
    assert!(
        status.contains("registry.example.com/data/marketing:4f2a9c1-42"),
        "{status}"
    );
    assert!(
        status.contains("registry.example.com/data/warehouse:4f2a9c1-42"),
        "{status}"
    );
    success(project.ours().args(["deploy"]));
    assert_eq!(project.deployed_document(), recorded_document());
}

#[test]
fn our_deploy_document_equals_the_reference_deploy_for_the_same_input() {
    let reference = Project::new();
    reference.reference_init();
    success(
        reference
            .reference()
            .args(["set-build-output", "--statedir"])
            .arg(&reference.statedir)
            .args(["--image-tag", TAG]),
    );
    success(
        reference
            .reference()
            .args(["deploy", "--statedir"])
            .arg(&reference.statedir),
    );

    let ours = Project::new();
    ours.our_start();
    success(ours.ours().args(["set-build-output", "--image-tag", TAG]));
    success(ours.ours().args(["deploy"]));
    assert_eq!(ours.deployed_document(), reference.deployed_document());
}
