//! `notify` through the real binary against the forge stub (GitHub and GitLab) and the
//! Dagster+ emulator: one comment per pull request kept up to date across runs, foreign
//! comments untouched, pagination, the token kept to its origin and out of every output, clear
//! permission errors, skipping outside a pull request; and the branch deployment's author
//! avatar, whose failed lookup never fails `start`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dagster_deploy_e2e::{
    Emulator, EmulatorConfig, ForgeStub, ForgeStubConfig, github_thread, gitlab_thread,
};

use crate::support::{DgWorkspace, TOKEN, command, dagster_deploy, describe, run, success};

const EVENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/github/pull_request_opened.json"
);

const FORGE_TOKEN: &str = "ghs_notify_test_token_0123456789";

const MARKER_START: &str = "<!-- dagster-deploy:notify ";

/// A deploy session of one location in the pull request of the recorded event, with the
/// emulator, the forge stub and a private home.
struct PullRequestRun {
    emulator: Emulator,
    forge: ForgeStub,
    workspace: DgWorkspace,
    home: tempfile::TempDir,
}

impl PullRequestRun {
    fn new(config: ForgeStubConfig) -> Self {
        let emulator = Emulator::start_blocking(
            EmulatorConfig::default()
                .with_token(TOKEN)
                .with_load_time(Duration::from_millis(100)),
        );
        PullRequestRun {
            emulator,
            forge: ForgeStub::start_blocking(ForgeStubConfig {
                token: FORGE_TOKEN.into(),
                ..config
            }),
            workspace: DgWorkspace::new(&["sales"], "registry.example.com/team/code"),
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn statedir(&self) -> PathBuf {
        self.home.path().join("state")
    }

    /// The binary in the GitHub pull request, with `GITHUB_TOKEN` and the stub as the API.
    fn github(&self) -> Command {
        let mut command = command(
            &dagster_deploy(),
            self.home.path(),
            &self.emulator.url(),
            &self.statedir(),
        );
        command
            .current_dir(self.workspace.path())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_ACTION", "deploy")
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", EVENT)
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("GITHUB_REPOSITORY", "acme/data")
            .env("GITHUB_SHA", "9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6")
            .env("GITHUB_RUN_ID", "99")
            .env("GITHUB_BASE_REF", "main")
            .env("GITHUB_HEAD_REF", "feature/sales-report")
            .env("GITHUB_TOKEN", FORGE_TOKEN)
            .env("GITHUB_API_URL", self.forge.url());
        command
    }

    fn start(&self) -> Output {
        let output = run(self
            .github()
            .args(["start", "--deployment", "prod", "--yes", "--project-dir"])
            .arg(self.workspace.path()));
        assert!(output.status.success(), "{}", describe(&output));
        output
    }

    fn notify(&self) -> Output {
        run(self
            .github()
            .args(["notify", "--project-dir"])
            .arg(self.workspace.path()))
    }

    fn thread(&self) -> String {
        github_thread("acme/data", 42)
    }

    /// The comments `notify` wrote: the token's identity's, with the marker.
    fn ours(&self) -> Vec<String> {
        self.forge
            .comments(&self.thread())
            .into_iter()
            .filter(|comment| {
                comment.author == "github-actions[bot]" && comment.body.starts_with(MARKER_START)
            })
            .map(|comment| comment.body)
            .collect()
    }
}

/// Neither output nor any file of the state directory (its spare files included) holds the
/// token.
fn assert_token_nowhere(outputs: &[&Output], statedir: &Path) {
    for output in outputs {
        let text = describe(output);
        assert!(
            !text.contains(FORGE_TOKEN),
            "the token was printed:\n{text}"
        );
    }
    let spares = std::fs::read_dir(statedir.join(".dagster-deploy-spare"))
        .into_iter()
        .flatten();
    for entry in std::fs::read_dir(statedir).unwrap().chain(spares) {
        let path = entry.unwrap().path();
        if path.is_file() {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            assert!(
                !text.contains(FORGE_TOKEN),
                "{} holds the token",
                path.display()
            );
        }
    }
}

#[test]
fn notify_keeps_exactly_one_up_to_date_comment_and_leaves_foreign_ones_alone() {
    let pr = PullRequestRun::new(ForgeStubConfig {
        per_page: 2,
        avatar_url: Some("https://avatars.example/u/7?v=4".into()),
        ..ForgeStubConfig::default()
    });
    let started = pr.start();
    let branch = pr
        .emulator
        .deployments()
        .into_iter()
        .find(|deployment| deployment.deployment_type == "BRANCH")
        .expect("start created a branch deployment");
    assert_eq!(
        branch.commit.as_ref().unwrap()["authorAvatarUrl"],
        "https://avatars.example/u/7?v=4",
        "the avatar of the head commit's author is sent"
    );

    // Comments of others, some copying what ours looks like, spread over several pages.
    let thread = pr.thread();
    pr.forge.seed_comment(&thread, "alice", "Looks good");
    let copy = format!("{MARKER_START}{} -->\nforged report", branch.name);
    let forged = pr.forge.seed_comment(&thread, "mallory", &copy);
    let quoted = format!("> {MARKER_START}{} -->\n> Dagster+ deploy", branch.name);
    pr.forge.seed_comment(&thread, "bob", &quoted);

    success(
        pr.github()
            .args(["set-build-output", "--image-tag", "pr42"]),
    );
    let first = pr.notify();
    assert!(first.status.success(), "{}", describe(&first));
    let ours = pr.ours();
    assert_eq!(
        ours.len(),
        1,
        "one comment of ours after the first run: {ours:#?}"
    );
    let report = &ours[0];
    assert!(
        report.contains(&format!("{MARKER_START}{} -->", branch.name)),
        "{report}"
    );
    assert!(
        report.contains("registry.example.com/team/code:pr42"),
        "{report}"
    );
    assert!(
        report.contains(&format!("/{}/locations/sales", branch.name)),
        "{report}"
    );
    assert!(report.contains("Building..."), "{report}");

    success(pr.github().arg("deploy"));
    let mut outputs = vec![started, first];
    for _ in 0..3 {
        let again = pr.notify();
        assert!(again.status.success(), "{}", describe(&again));
        outputs.push(again);
    }
    let ours: Vec<_> = pr
        .forge
        .comments(&thread)
        .into_iter()
        .filter(|comment| comment.author == "github-actions[bot]")
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "still one comment of ours after four runs: {ours:#?}"
    );
    assert!(ours[0].body.contains("✅ [Deployed]"), "{}", ours[0].body);
    let foreign = pr.forge.comments(&thread);
    assert!(
        foreign
            .iter()
            .any(|comment| comment.id == forged && comment.body == copy),
        "the forged copy was touched: {foreign:#?}"
    );
    assert!(foreign.iter().any(|comment| comment.body == quoted));
    assert!(foreign.iter().any(|comment| comment.body == "Looks good"));
    assert!(
        pr.forge.requests().iter().all(|request| request.had_token),
        "every request carried the token"
    );
    assert!(
        pr.forge
            .requests()
            .iter()
            .any(|request| request.path_and_query.contains("page=2")),
        "the comments were read page by page"
    );
    let refs: Vec<&Output> = outputs.iter().collect();
    assert_token_nowhere(&refs, &pr.statedir());
}

#[test]
fn a_pagination_link_to_another_host_does_not_get_the_token() {
    let elsewhere = ForgeStub::start_blocking(ForgeStubConfig {
        token: FORGE_TOKEN.into(),
        ..ForgeStubConfig::default()
    });
    let pr = PullRequestRun::new(ForgeStubConfig {
        per_page: 1,
        next_link_base: Some(elsewhere.url().replace("127.0.0.1", "localhost")),
        ..ForgeStubConfig::default()
    });
    pr.start();
    pr.forge.seed_comment(&pr.thread(), "alice", "one");
    pr.forge.seed_comment(&pr.thread(), "alice", "two");
    let refused = pr.notify();
    assert_eq!(refused.status.code(), Some(3), "{}", describe(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("refusing to send the GitHub token"),
        "{stderr}"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "{:#?}",
        elsewhere.requests()
    );
    assert!(pr.ours().is_empty());
    assert_token_nowhere(&[&refused], &pr.statedir());
}

#[test]
fn a_redirect_is_not_followed_and_the_target_gets_nothing() {
    let elsewhere = ForgeStub::start_blocking(ForgeStubConfig::default());
    let pr = PullRequestRun::new(ForgeStubConfig {
        redirect_to: Some(format!("{}/user", elsewhere.url())),
        ..ForgeStubConfig::default()
    });
    pr.start();
    let refused = pr.notify();
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("redirects are not followed"),
        "{}",
        describe(&refused)
    );
    assert!(
        elsewhere.requests().is_empty(),
        "{:#?}",
        elsewhere.requests()
    );
}

#[test]
fn a_token_without_write_permission_gets_an_error_naming_it() {
    let pr = PullRequestRun::new(ForgeStubConfig {
        forbid_writes: true,
        ..ForgeStubConfig::default()
    });
    pr.start();
    let refused = pr.notify();
    assert_eq!(refused.status.code(), Some(4), "{}", describe(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    assert!(stderr.contains("pull-requests: write"), "{stderr}");
    assert_token_nowhere(&[&refused], &pr.statedir());
}

#[test]
fn outside_a_pull_request_or_without_a_token_notify_says_so_and_succeeds_unless_strict() {
    let pr = PullRequestRun::new(ForgeStubConfig::default());
    pr.start();
    let without_token = run(pr.github().env_remove("GITHUB_TOKEN").arg("notify"));
    assert!(
        without_token.status.success(),
        "{}",
        describe(&without_token)
    );
    assert!(
        String::from_utf8_lossy(&without_token.stderr).contains("GITHUB_TOKEN is not set"),
        "{}",
        describe(&without_token)
    );
    let local = || {
        let mut command = command(
            &dagster_deploy(),
            pr.home.path(),
            &pr.emulator.url(),
            &pr.statedir(),
        );
        command
            .current_dir(pr.workspace.path())
            .env("GITHUB_TOKEN", FORGE_TOKEN);
        command
    };
    let skipped = run(local().arg("notify"));
    assert!(skipped.status.success(), "{}", describe(&skipped));
    assert!(
        String::from_utf8_lossy(&skipped.stderr).contains("not part of a pull or merge request"),
        "{}",
        describe(&skipped)
    );
    let strict = run(local().args(["notify", "--strict"]));
    assert_eq!(strict.status.code(), Some(3), "{}", describe(&strict));
    assert!(
        pr.forge
            .requests()
            .iter()
            .all(|request| request.method == "GET")
    );
    assert!(pr.ours().is_empty());
}

#[test]
fn a_failed_avatar_lookup_is_one_warning_and_start_succeeds() {
    let pr = PullRequestRun::new(ForgeStubConfig::default());
    // Nothing listens on the API: the lookup fails to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let output = run(pr
        .github()
        .env("GITHUB_API_URL", &dead_url)
        .args(["start", "--deployment", "prod", "--yes", "--project-dir"])
        .arg(pr.workspace.path()));
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings: Vec<_> = stderr
        .lines()
        .filter(|line| line.contains("avatar"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    let branch = pr
        .emulator
        .deployments()
        .into_iter()
        .find(|deployment| deployment.deployment_type == "BRANCH")
        .unwrap();
    assert!(branch.commit.unwrap()["authorAvatarUrl"].is_null());
}

#[test]
fn gitlab_merge_requests_get_one_note_updated_in_place() {
    let pr = PullRequestRun::new(ForgeStubConfig::default());
    success(
        command(
            &dagster_deploy(),
            pr.home.path(),
            &pr.emulator.url(),
            &pr.statedir(),
        )
        .current_dir(pr.workspace.path())
        .args([
            "start",
            "--deployment",
            "prod",
            "--deployment-type",
            "full",
            "--yes",
            "--project-dir",
        ])
        .arg(pr.workspace.path()),
    );
    let gitlab = |job_token_only: bool| {
        let mut command = command(
            &dagster_deploy(),
            pr.home.path(),
            &pr.emulator.url(),
            &pr.statedir(),
        );
        command
            .current_dir(pr.workspace.path())
            .env("GITLAB_CI", "true")
            .env("CI_COMMIT_SHA", "2222222222222222222222222222222222222222")
            .env("CI_COMMIT_REF_NAME", "feature/forecast")
            .env("CI_JOB_URL", "https://gitlab.example/acme/data/-/jobs/5")
            .env("CI_PROJECT_NAME", "data")
            .env("CI_PROJECT_NAMESPACE", "acme")
            .env("CI_PROJECT_PATH", "acme/data")
            .env("CI_PROJECT_URL", "https://gitlab.example/acme/data")
            .env("CI_SERVER_URL", "https://gitlab.example")
            .env("CI_MERGE_REQUEST_IID", "7")
            .env("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main")
            .env("CI_API_V4_URL", pr.forge.gitlab_url())
            .env("CI_JOB_TOKEN", "job-token-value")
            .args(["notify", "--project-dir"])
            .arg(pr.workspace.path());
        if !job_token_only {
            command.env("GITLAB_TOKEN", FORGE_TOKEN);
        }
        command
    };
    let skipped = run(&mut gitlab(true));
    assert!(skipped.status.success(), "{}", describe(&skipped));
    assert!(
        String::from_utf8_lossy(&skipped.stderr).contains("does not let CI_JOB_TOKEN write"),
        "{}",
        describe(&skipped)
    );
    let thread = gitlab_thread("acme/data", 7);
    pr.forge.seed_comment(&thread, "alice", "please deploy");
    let first = run(&mut gitlab(false));
    assert!(first.status.success(), "{}", describe(&first));
    success(
        command(
            &dagster_deploy(),
            pr.home.path(),
            &pr.emulator.url(),
            &pr.statedir(),
        )
        .args(["set-build-output", "--image-tag", "mr7"]),
    );
    let second = run(&mut gitlab(false));
    assert!(second.status.success(), "{}", describe(&second));
    let notes = pr.forge.comments(&thread);
    let ours: Vec<_> = notes
        .iter()
        .filter(|note| note.author == "project_1_bot")
        .collect();
    assert_eq!(ours.len(), 1, "{notes:#?}");
    assert!(
        ours[0].body.contains("registry.example.com/team/code:mr7"),
        "{}",
        ours[0].body
    );
    assert!(notes.iter().any(|note| note.body == "please deploy"));
    assert_token_nowhere(&[&skipped, &first, &second], &pr.statedir());
    assert!(
        pr.forge.requests().iter().all(|request| !request
            .header_values
            .iter()
            .any(|value| value == "job-token-value")),
        "the job token is never sent"
    );
}

#[test]
fn markup_in_a_state_file_written_by_another_tool_is_escaped_in_the_comment() {
    let pr = PullRequestRun::new(ForgeStubConfig::default());
    pr.start();
    success(
        pr.github()
            .args(["set-build-output", "--image-tag", "pr42"]),
    );
    // Another tool (the reference takes no lock) rewrites the image with markup.
    let file = pr.statedir().join("location-sales.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    state["build_output"]["image"] =
        "x](https://evil.example)<img src=x onerror=alert(1)>|`".into();
    std::fs::write(&file, serde_json::to_vec(&state).unwrap()).unwrap();
    let posted = pr.notify();
    assert!(posted.status.success(), "{}", describe(&posted));
    let ours = pr.ours();
    assert_eq!(ours.len(), 1);
    let row = ours[0]
        .lines()
        .find(|line| line.starts_with("| [sales]"))
        .unwrap();
    assert!(!row.contains("<img"), "{row}");
    assert!(
        row.contains(r"x\](https://evil.example)&lt;img src=x onerror=alert(1)&gt;\|\`"),
        "{row}"
    );
}
