//! The reference's own words, run unchanged: the command lines of the Dagster+ docs' "other CI"
//! flow (`dg plus deploy start`, `set-build-output`, bare `dg plus deploy`) and of the
//! reference's documented CI flows (`dagster-cloud ci init/…/deploy/status`, the dg flow
//! start/set-build-output/finish, select/deselect/list, branch-deployment), run by `sh` through
//! links named `dg` and `dagster-cloud` to our binary, and through the reference CLIs installed
//! by scripts/setup.sh, side by side on the same project, each against its own emulator. What
//! a script can see is compared: exit codes, stdout, the state files (timestamps and the
//! side's temp paths masked) and the documents the emulator received.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dagster_deploy_e2e::{Emulator, EmulatorConfig};
use serde_json::Value;

use crate::support::{FIXTURES, command, dagster_deploy, git, installed_program, reference_cli};

/// The reference `dg` installed by scripts/setup.sh.
fn reference_dg() -> PathBuf {
    installed_program(
        "DAGSTER_DEPLOY_REFERENCE_DG",
        "/var/tmp/dagster-deploy-reference-dg-venv/bin/dg",
        "the reference dg",
    )
}

/// Which tool a side runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Ours,
    Reference,
}

/// One side of a comparison: a home with the project and the state directory, a `bin`
/// directory put first on PATH (links to our binary, or to the reference's programs), a
/// `docker` that only records its arguments, and an emulator.
struct Side {
    tool: Tool,
    home: tempfile::TempDir,
    emulator: Emulator,
}

/// What a step left for a script to see.
#[derive(Debug)]
struct Step {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Step {
    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Side {
    fn new(tool: Tool, project: &dyn Fn(&Path)) -> Side {
        let home = tempfile::tempdir().unwrap();
        let bin = home.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let (dg, dagster_cloud) = match tool {
            Tool::Ours => (dagster_deploy(), dagster_deploy()),
            Tool::Reference => (reference_dg(), reference_cli()),
        };
        std::os::unix::fs::symlink(dg, bin.join("dg")).unwrap();
        std::os::unix::fs::symlink(dagster_cloud, bin.join("dagster-cloud")).unwrap();
        let docker = bin.join("docker");
        std::fs::write(
            &docker,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n",
                home.path().join("docker.log").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&docker, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::create_dir_all(home.path().join("project")).unwrap();
        project(&home.path().join("project"));
        let emulator = Emulator::start_blocking(
            EmulatorConfig::default()
                .with_token(crate::support::TOKEN)
                .with_load_time(Duration::from_millis(100)),
        );
        Side {
            tool,
            home,
            emulator,
        }
    }

    fn project(&self) -> PathBuf {
        self.home.path().join("project")
    }

    fn statedir(&self) -> PathBuf {
        self.home.path().join("state")
    }

    /// Runs one CI step, verbatim, with `sh -c` in the project directory, without a terminal.
    fn run(&self, line: &str, env: &[(&str, &str)]) -> Step {
        let mut sh = command(
            Path::new("/bin/sh"),
            self.home.path(),
            &self.emulator.url(),
            &self.statedir(),
        );
        let path = std::env::var("PATH").unwrap_or_default();
        sh.arg("-c")
            .arg(line)
            .current_dir(self.project())
            .env(
                "PATH",
                format!("{}:{path}", self.home.path().join("bin").display()),
            )
            // dg's telemetry notice and its dagster instance stay inside the side's home.
            .env("DAGSTER_HOME", self.home.path())
            .env("DAGSTER_DISABLE_TELEMETRY", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        let output = sh
            .output()
            .unwrap_or_else(|error| panic!("cannot run sh: {error}"));
        Step {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs a step that must succeed.
    fn ok(&self, line: &str, env: &[(&str, &str)]) -> Step {
        let step = self.run(line, env);
        assert_eq!(
            step.code,
            Some(0),
            "{:?}: `{line}` failed:\n{}",
            self.tool,
            step.describe()
        );
        step
    }

    /// Masks what differs between sides by construction: the side's temp directory, the
    /// emulator's URL, and timestamps.
    fn mask(&self, text: &str) -> String {
        // `ci init` records `--project-dir` as given, relative to where it ran (the project
        // here); we record it absolute, so that later steps may run anywhere.
        let masked = text
            .replace(&self.home.path().display().to_string(), "<home>")
            .replace(&self.emulator.url(), "<url>")
            .replace(r#""project_dir":".""#, r#""project_dir":"<home>/project""#);
        mask_report_times(&mask_timestamps(&masked))
    }

    /// The session's location files, parsed and masked, by file name.
    fn state_files(&self) -> Vec<(String, Value)> {
        let mut files: Vec<(String, Value)> = std::fs::read_dir(self.statedir())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("location-"))
            .map(|name| {
                let text = std::fs::read_to_string(self.statedir().join(&name)).unwrap();
                (name, serde_json::from_str(&self.mask(&text)).unwrap())
            })
            .collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        files
    }

    /// The `document` of every deploy the emulator received, masked.
    fn deploy_documents(&self) -> Vec<Value> {
        self.emulator
            .requests_for("deployLocations")
            .into_iter()
            .map(|request| {
                let text = request.variables["document"].to_string();
                serde_json::from_str(&self.mask(&text)).unwrap()
            })
            .collect()
    }

    fn docker_log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("docker.log")).unwrap_or_default()
    }
}

/// Replaces RFC 3339 timestamps (`2026-01-02T03:04:05.123456Z`) with `<timestamp>`.
fn mask_timestamps(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < text.len() {
        let rest = &bytes[index..];
        let looks_like_timestamp = rest.len() >= 20
            && rest[..4].iter().all(u8::is_ascii_digit)
            && rest[4] == b'-'
            && rest[7] == b'-'
            && rest[10] == b'T'
            && rest[13] == b':';
        if looks_like_timestamp {
            let end = rest
                .iter()
                .position(|byte| !(byte.is_ascii_digit() || b"-T:.Z+".contains(byte)))
                .unwrap_or(rest.len());
            out.push_str("<timestamp>");
            index += end;
        } else {
            let character = text[index..].chars().next().unwrap();
            out.push(character);
            index += character.len_utf8();
        }
    }
    out
}

/// Replaces the markdown report's times (`Nov 27, 2026 at 04:50 PM`) with `<time>`.
fn mask_report_times(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" at ") {
        let (before, after) = rest.split_at(at);
        let date_start = before.len().saturating_sub(12);
        let date = before.get(date_start..).unwrap_or("");
        let time = after.get(4..12).unwrap_or("");
        let is_date = date.len() == 12
            && date.as_bytes()[3] == b' '
            && date.as_bytes()[6] == b','
            && date[8..].bytes().all(|byte| byte.is_ascii_digit());
        let is_time = time.len() == 8
            && time.as_bytes()[2] == b':'
            && (time.ends_with("AM") || time.ends_with("PM"));
        if is_date && is_time {
            out.push_str(&before[..date_start]);
            out.push_str("<time>");
            rest = &after[12..];
        } else {
            out.push_str(before);
            out.push_str(" at ");
            rest = &after[4..];
        }
    }
    out.push_str(rest);
    out
}

/// A dg project (the docs' layout: `src/<module>/defs`), with a Dockerfile, in a git checkout.
fn dg_project(dir: &Path) {
    let module = dir.join("src/project_code");
    std::fs::create_dir_all(module.join("defs")).unwrap();
    std::fs::write(
        dir.join("pyproject.toml"),
        "[project]\nname = \"project-code\"\nversion = \"0.1.0\"\n\n[tool.dg]\ndirectory_type = \"project\"\n\n[tool.dg.project]\nroot_module = \"project_code\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("build.yaml"),
        "registry: ghcr.io/org/dagster-cloud-image\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM python:3.12-slim\nCOPY . /app\n",
    )
    .unwrap();
    std::fs::write(module.join("__init__.py"), "").unwrap();
    std::fs::write(module.join("defs/__init__.py"), "").unwrap();
    std::fs::write(
        module.join("definitions.py"),
        "import dagster as dg\n\ndefs = dg.Definitions()\n",
    )
    .unwrap();
    commit_at_a_fixed_time(dir, "main", "initial");
}

/// Makes `dir` a git checkout with one commit, whose hash is the same on both sides: its dates
/// are fixed, not the second the test ran in.
fn commit_at_a_fixed_time(dir: &Path, branch: &str, message: &str) {
    git(dir, &["init", "-q", "-b", branch]);
    git(dir, &["add", "-A"]);
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=E2E", "-c", "user.email=e2e@example.com"])
        .args(["-c", "commit.gpgsign=false", "commit", "-q", "-m", message])
        .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
        .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z")
        .output()
        .unwrap();
    assert!(output.status.success(), "git commit failed: {output:?}");
}

/// The recorded legacy-flow project: a dagster_cloud.yaml with two locations.
fn legacy_project(dir: &Path) {
    std::fs::create_dir_all(dir.join("pkg_a")).unwrap();
    std::fs::copy(
        Path::new(FIXTURES).join("dagster_cloud.yaml"),
        dir.join("dagster_cloud.yaml"),
    )
    .unwrap();
}

fn head_commit(dir: &Path) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Removes what we record and the reference leaves out: without CI and without
/// `--commit-hash`, the commit of the local checkout (docs/reference-behaviour.md,
/// "Invoked as the reference"). It must be the checkout's HEAD on our side, and null or absent
/// on the reference's.
fn without_local_commit(value: &mut Value, head: &str, tool: Tool) {
    match value {
        Value::Object(map) => {
            if let Some(commit) = map.remove("commit_hash") {
                match tool {
                    Tool::Ours => assert_eq!(commit, head, "our commit hash is the checkout's"),
                    Tool::Reference => assert!(commit.is_null(), "{commit}"),
                }
            }
            for child in map.values_mut() {
                without_local_commit(child, head, tool);
            }
        }
        Value::Array(items) => {
            for item in items {
                without_local_commit(item, head, tool);
            }
        }
        _ => {}
    }
}

#[test]
fn the_docs_other_ci_flow_runs_verbatim_through_dg_and_deploys_what_the_reference_deploys() {
    let ours = Side::new(Tool::Ours, &dg_project);
    let reference = Side::new(Tool::Reference, &dg_project);
    let head = head_commit(&ours.project());

    // Step 2 of the docs, verbatim. dg itself rejects its own docs' `--project-dir` (its flag
    // is `--target-path`) and, without a terminal, aborts at its confirmation prompt; we take
    // both (reference-behaviour: compatibility).
    let start = "dg plus deploy start --deployment=prod --project-dir=.";
    ours.ok(start, &[]);
    let theirs = reference.run(start, &[]);
    assert_eq!(theirs.code, Some(2), "{}", theirs.describe());
    assert!(theirs.stdout.contains("--project-dir") || theirs.stderr.contains("--project-dir"));
    reference.ok(
        "dg plus deploy start --deployment=prod --target-path=. --yes",
        &[],
    );
    // Step 3 (the user's own build) and step 4, with the tag exported as the docs do.
    let build = "export IMAGE_TAG=`git log --format=format:%H -n 1` && \
        docker build . -t ghcr.io/org/dagster-cloud-image:$IMAGE_TAG && \
        docker push ghcr.io/org/dagster-cloud-image:$IMAGE_TAG && \
        dg plus deploy set-build-output --location-name=project --image-tag=$IMAGE_TAG";
    ours.ok(build, &[]);
    reference.ok(build, &[]);
    assert_eq!(ours.docker_log(), reference.docker_log());

    let mut our_states = ours.state_files();
    let mut their_states = reference.state_files();
    for state in &mut our_states {
        without_local_commit(&mut state.1, &head, Tool::Ours);
    }
    for state in &mut their_states {
        without_local_commit(&mut state.1, &head, Tool::Reference);
    }
    assert_eq!(our_states, their_states, "sessions after set-build-output");

    // `status` prints JSON lines by default, as dg does.
    let our_status = ours.ok("dg plus deploy status", &[]);
    let their_status = reference.ok("dg plus deploy status", &[]);
    let lines = |side: &Side, step: &Step, tool: Tool| -> Vec<Value> {
        step.stdout
            .lines()
            .map(|line| {
                let mut value: Value = serde_json::from_str(&side.mask(line)).unwrap();
                without_local_commit(&mut value, &head, tool);
                value
            })
            .collect()
    };
    assert_eq!(
        lines(&ours, &our_status, Tool::Ours),
        lines(&reference, &their_status, Tool::Reference)
    );

    // Step 5, verbatim: bare `dg plus deploy`. dg needs a deployment here and stops; we deploy
    // the open session, which is what the docs mean, and what `finish` does in dg.
    ours.ok("dg plus deploy", &[]);
    let theirs = reference.run("dg plus deploy", &[]);
    assert_ne!(theirs.code, Some(0), "{}", theirs.describe());
    reference.ok("dg plus deploy finish", &[]);

    let mut our_documents = ours.deploy_documents();
    let mut their_documents = reference.deploy_documents();
    for document in &mut our_documents {
        without_local_commit(document, &head, Tool::Ours);
    }
    for document in &mut their_documents {
        without_local_commit(document, &head, Tool::Reference);
    }
    assert_eq!(our_documents.len(), 1);
    assert_eq!(our_documents, their_documents);
}

/// Whether a reference command's stdout is its result, which scripts read (`status`, the
/// location list, the branch deployment's name), rather than progress messages, which we print
/// on stderr (reference-behaviour ref-bug 42).
fn prints_a_result(line: &str) -> bool {
    [
        "status",
        "locations-list",
        "list-locations",
        "branch-deployment",
    ]
    .iter()
    .any(|command| line.split_whitespace().any(|word| word == *command))
}

/// Runs `line` on both sides and checks that a script sees the same: success or failure, and
/// the stdout of commands that print a result (masked). Others print nothing on our stdout.
fn same(ours: &Side, reference: &Side, line: &str) -> (Step, Step) {
    let our_step = ours.run(line, &[]);
    let their_step = reference.run(line, &[]);
    let context = format!(
        "`{line}`:\nours: {}\nreference: {}",
        our_step.describe(),
        their_step.describe()
    );
    assert_eq!(
        our_step.code == Some(0),
        their_step.code == Some(0),
        "{context}"
    );
    if prints_a_result(line) {
        assert_eq!(
            ours.mask(&our_step.stdout),
            reference.mask(&their_step.stdout),
            "stdout of {context}"
        );
    } else {
        assert_eq!(our_step.stdout, "", "stdout of {context}");
    }
    (our_step, their_step)
}

/// Runs each step with [`same`], and checks that both sessions are the same after each.
fn same_steps(ours: &Side, reference: &Side, lines: &[&str]) {
    for line in lines {
        same(ours, reference, line);
        assert_eq!(
            ours.state_files(),
            reference.state_files(),
            "after `{line}`"
        );
    }
}

#[test]
fn the_legacy_ci_flow_runs_verbatim_through_dagster_cloud_with_the_reference_outputs() {
    let ours = Side::new(Tool::Ours, &legacy_project);
    let reference = Side::new(Tool::Reference, &legacy_project);
    // The documented legacy flow, step by step (reference-behaviour §3.2, §2.5, §3.5, §3.6, §3.8).
    same_steps(
        &ours,
        &reference,
        &[
            "dagster-cloud ci init --project-dir=. --deployment=prod --git-url=https://github.com/acme/data/tree/4f2a9c1 --commit-hash=4f2a9c1",
            "dagster-cloud ci locations-list",
            "dagster-cloud ci locations-deselect marketing",
            "dagster-cloud ci locations-list",
            "dagster-cloud ci set-build-output --image-tag=4f2a9c1-42",
            "dagster-cloud ci locations-select marketing",
            "dagster-cloud ci set-build-output --location-name=marketing --image-tag=4f2a9c1-43",
            "dagster-cloud ci status",
        ],
    );
    // A deploy of one location, then of the rest, with the reference's timeout spellings.
    same(
        &ours,
        &reference,
        "dagster-cloud ci deploy --location-name=marketing --agent-timeout=60",
    );
    same(
        &ours,
        &reference,
        "dagster-cloud ci deploy --location-load-timeout=600 --agent-heartbeat-timeout=60",
    );
    assert_eq!(ours.deploy_documents().len(), 2);
    assert_eq!(ours.deploy_documents(), reference.deploy_documents());
    assert_eq!(ours.state_files(), reference.state_files(), "after deploy");
    same(
        &ours,
        &reference,
        "dagster-cloud ci status --output-format=markdown",
    );
    same(
        &ours,
        &reference,
        "dagster-cloud ci status --output-format json",
    );
}

#[test]
fn the_dg_flow_runs_verbatim_through_dg_with_the_reference_outputs() {
    let ours = Side::new(Tool::Ours, &dg_project);
    let reference = Side::new(Tool::Reference, &dg_project);
    // The dg flow of the reference's scaffolded CI files (reference-behaviour §6.2), with the
    // commit and URLs given, as they give them.
    same_steps(
        &ours,
        &reference,
        &[
            "dg plus deploy start --deployment=prod --target-path=. --git-url=https://github.com/acme/data/tree/4f2a9c1 --commit-hash=4f2a9c1 --status-url=https://ci.example.com/run/7 --yes",
            "dg plus deploy list-locations",
            "dg plus deploy deselect project",
            "dg plus deploy list-locations",
            "dg plus deploy select project",
            "dg plus deploy set-build-output --location-name=project --image-tag=4f2a9c1-7",
            "dg plus deploy status",
            "dg plus deploy finish",
            "dg plus deploy status --output-format=markdown",
        ],
    );
    assert_eq!(ours.deploy_documents().len(), 1);
    assert_eq!(ours.deploy_documents(), reference.deploy_documents());
}

#[test]
fn reference_commands_we_do_not_implement_fail_naming_the_reference_command() {
    let ours = Side::new(Tool::Ours, &legacy_project);
    for (line, named) in [
        ("dagster-cloud ci build", "dagster-cloud ci build"),
        ("dagster-cloud ci template", "dagster-cloud ci template"),
        (
            "dg plus deploy refresh-defs-state",
            "dg plus deploy refresh-defs-state",
        ),
        ("dg plus deploy inspect", "dg plus deploy inspect"),
    ] {
        let step = ours.run(line, &[]);
        assert_eq!(step.code, Some(2), "{}", step.describe());
        assert!(step.stdout.is_empty(), "{}", step.describe());
        assert!(
            step.stderr
                .contains(&format!("`{named}` is not implemented by dagster-deploy")),
            "{}",
            step.describe()
        );
    }
}

/// The legacy project in a git checkout, as a pull request's CI job sees it.
fn legacy_project_in_git(dir: &Path) {
    legacy_project(dir);
    commit_at_a_fixed_time(dir, "feature/sales-report", "Add the sales report");
}

/// A GitHub Actions pull-request job (the recorded `pull_request` event of acme/data#42).
const PULL_REQUEST: &[(&str, &str)] = &[
    ("GITHUB_ACTIONS", "true"),
    ("GITHUB_ACTION", "deploy"),
    ("GITHUB_EVENT_NAME", "pull_request"),
    (
        "GITHUB_EVENT_PATH",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/github/pull_request_opened.json"
        ),
    ),
    ("GITHUB_SERVER_URL", "https://github.com"),
    ("GITHUB_REPOSITORY", "acme/data"),
    ("GITHUB_SHA", "9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6"),
    ("GITHUB_RUN_ID", "99"),
    ("GITHUB_BASE_REF", "main"),
    ("GITHUB_HEAD_REF", "feature/sales-report"),
];

/// The variables of every branch-deployment mutation the emulator received, without what we
/// send and the reference does not: the commit URL (reference-behaviour ref-bug 16).
fn branch_deployment_requests(side: &Side) -> Vec<Value> {
    side.emulator
        .requests_for("createOrUpdateBranchDeployment")
        .into_iter()
        .map(|request| {
            let mut variables: Value =
                serde_json::from_str(&side.mask(&request.variables.to_string())).unwrap();
            if let Some(commit) = variables["commit"].as_object_mut() {
                commit.remove("commitUrl");
            }
            variables
        })
        .collect()
}

#[test]
fn branch_deployments_of_a_pull_request_match_the_reference() {
    let ours = Side::new(Tool::Ours, &legacy_project_in_git);
    let reference = Side::new(Tool::Reference, &legacy_project_in_git);
    let both = |line: &str| {
        let our_step = ours.run(line, PULL_REQUEST);
        let their_step = reference.run(line, PULL_REQUEST);
        let context = format!(
            "`{line}`:\nours: {}\nreference: {}",
            our_step.describe(),
            their_step.describe()
        );
        assert_eq!(our_step.code, Some(0), "{context}");
        assert_eq!(their_step.code, Some(0), "{context}");
        if prints_a_result(line) {
            assert_eq!(our_step.stdout, their_step.stdout, "{context}");
        } else {
            assert_eq!(our_step.stdout, "", "{context}");
        }
    };
    // The legacy GitHub Action's init step: the commit and run links come from the job.
    both(
        "dagster-cloud ci init --project-dir=. --deployment=prod --require-branch-deployment \
         --git-url=$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/tree/$GITHUB_SHA --commit-hash=$GITHUB_SHA \
         --status-url=$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID",
    );
    assert_eq!(ours.state_files(), reference.state_files());
    assert_eq!(
        branch_deployment_requests(&ours),
        branch_deployment_requests(&reference)
    );
    both("dagster-cloud ci set-build-output --image-tag=9f1c2d3-99");
    both("dagster-cloud ci deploy");
    assert_eq!(ours.deploy_documents(), reference.deploy_documents());
    assert_eq!(ours.state_files(), reference.state_files());

    // `ci branch-deployment` prints the name alone on stdout, as scripts capture it
    // (`NAME=$(dagster-cloud ci branch-deployment .)`). The reference's sends its request to
    // `https://<organization>.dagster.cloud` whatever DAGSTER_CLOUD_URL says, so it cannot reach
    // the emulator: ours is compared with what the reference's `ci init` made and sent.
    let name = reference.state_files()[0].1["deployment_name"].clone();
    let step = ours.ok(
        // From the parent directory, with the project as the reference's positional argument:
        // the commit's message and author come from that checkout.
        "cd .. && dagster-cloud ci branch-deployment project --base-deployment-name=prod",
        PULL_REQUEST,
    );
    assert_eq!(step.stdout, format!("{}\n", name.as_str().unwrap()));
    let step = ours.ok(
        "dagster-cloud ci branch-deployment . --mark-closed --base-deployment-name=prod",
        PULL_REQUEST,
    );
    assert_eq!(step.stdout, format!("{}\n", name.as_str().unwrap()));
    let requests = branch_deployment_requests(&ours);
    let mut expected = branch_deployment_requests(&reference)[0].clone();
    assert_eq!(requests[1], expected);
    expected["branchData"]["pullRequestStatus"] = "CLOSED".into();
    assert_eq!(requests[2], expected);
}

#[test]
fn ci_check_takes_the_reference_check_levels() {
    let ours = Side::new(Tool::Ours, &legacy_project);
    let reference = Side::new(Tool::Reference, &legacy_project);
    same(
        &ours,
        &reference,
        "dagster-cloud ci check --project-dir=. --dagster-cloud-connect-check=skip",
    );
    for side in [&ours, &reference] {
        std::fs::write(
            side.project().join("dagster_cloud.yaml"),
            "locations:\n  - location_name: a\n    code_source: {package_name: a}\n    unknown_key: 1\n",
        )
        .unwrap();
    }
    for line in [
        "dagster-cloud ci check --dagster-cloud-connect-check=skip",
        "dagster-cloud ci check --dagster-cloud-yaml-check=warn --dagster-cloud-connect-check=skip",
        "dagster-cloud ci check --dagster-cloud-yaml-check=skip --dagster-cloud-connect-check=skip",
    ] {
        same(&ours, &reference, line);
    }
    assert_ne!(
        ours.run(
            "dagster-cloud ci check --dagster-cloud-connect-check=skip",
            &[]
        )
        .code,
        Some(0),
        "an invalid file fails the default check"
    );
}

#[test]
fn ci_init_cleans_the_statedir_unless_told_not_to_and_refuses_foreign_files() {
    let ours = Side::new(Tool::Ours, &legacy_project);
    let reference = Side::new(Tool::Reference, &legacy_project);
    let init = "dagster-cloud ci init --project-dir=. --deployment=prod --commit-hash=4f2a9c1";
    for line in [
        format!("{init} --location-name=warehouse"),
        "dagster-cloud ci set-build-output --image-tag=4f2a9c1-1".to_owned(),
        format!("{init} --no-clean-statedir --location-name=marketing"),
        "dagster-cloud ci locations-list".to_owned(),
    ] {
        same(&ours, &reference, &line);
        assert_eq!(
            ours.state_files(),
            reference.state_files(),
            "after `{line}`"
        );
    }
    // Cleaning (the default) replaces the whole session, as in the reference.
    same(
        &ours,
        &reference,
        &format!("{init} --location-name=marketing"),
    );
    assert_eq!(ours.state_files(), reference.state_files());
    assert_eq!(ours.state_files().len(), 1);

    // A file that is not part of a session is never deleted: the error says what to set.
    std::fs::write(ours.statedir().join("notes.txt"), "mine").unwrap();
    let step = ours.run(init, &[]);
    assert_ne!(step.code, Some(0), "{}", step.describe());
    assert!(step.stderr.contains("notes.txt"), "{}", step.describe());
    assert!(
        step.stderr.contains("DAGSTER_BUILD_STATEDIR"),
        "{}",
        step.describe()
    );
    assert_eq!(
        std::fs::read_to_string(ours.statedir().join("notes.txt")).unwrap(),
        "mine"
    );
}
