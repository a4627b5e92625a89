//! Releases, tested as far as they can be without publishing: the dist configuration validates
//! and the committed release workflow is what it generates; the archive the release job builds
//! for this machine (built by `scripts/dist-build.sh`) is static, unpacks, and says its version,
//! commit and target; the shell installer, the CI install script and the GitHub Action install
//! it from a local server; and the binary deploys from a chroot holding nothing but itself,
//! CA certificates, /etc/hosts and /etc/resolv.conf.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dagster_deploy_e2e::{Emulator, EmulatorConfig, Registry};
use sha2::{Digest, Sha256};

use crate::ci_runner::{GitHubRun, OS_PATH};
use crate::file_server::FileServer;
use crate::support::{
    DgWorkspace, TOKEN, describe, dist_dir, head_commit_short, host_target, release_archive,
    repository_root, run, seed_base_image, success, unpack_release_archive,
};
use crate::tls_front::TlsFront;

/// The `dist` binary scripts/setup.sh installs.
fn dist() -> PathBuf {
    let path = std::env::var_os("DAGSTER_DEPLOY_DIST").map_or_else(
        || PathBuf::from("/var/tmp/dagster-deploy-tools/bin/dist"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "dist is not at {}: run scripts/setup.sh (it installs cargo-dist), or set DAGSTER_DEPLOY_DIST",
        path.display()
    );
    path
}

/// The `repository` of the workspace manifest: the one place the release host is named.
fn release_repository_url() -> String {
    let manifest: toml::Table = std::fs::read_to_string(repository_root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    manifest["workspace"]["package"]["repository"]
        .as_str()
        .expect("workspace.package.repository")
        .to_owned()
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn dist_config_validates_and_the_release_workflow_is_generated_from_it() {
    let root = repository_root();
    success(
        Command::new(dist())
            .current_dir(&root)
            .args(["generate", "--check"]),
    );
    let plan: serde_json::Value = serde_json::from_str(&success(
        Command::new(dist())
            .current_dir(&root)
            .args(["plan", "--output-format=json"]),
    ))
    .expect("dist plan prints JSON");
    let artifacts = plan["artifacts"].as_object().expect("artifacts");
    for target in [
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ] {
        let archive = format!("dagster-deploy-{target}.tar.gz");
        assert!(
            artifacts.contains_key(&archive),
            "no {archive} in {artifacts:?}"
        );
        assert!(
            artifacts.contains_key(&format!("{archive}.sha256")),
            "no checksum for {archive}"
        );
    }
    assert!(artifacts.contains_key("dagster-deploy-installer.sh"));
    let runners: Vec<&str> = plan["ci"]["github"]["artifacts_matrix"]["include"]
        .as_array()
        .expect("a build matrix")
        .iter()
        .filter_map(|build| build["runner"].as_str())
        .collect();
    assert_eq!(runners.len(), 4, "{runners:?}");
    // The build job makes the Linux binaries static with the same script scripts/dist-build.sh
    // runs, which is what the archive tests below check.
    let workflow = std::fs::read_to_string(root.join(".github/workflows/release.yml")).unwrap();
    assert!(
        workflow.contains("bash scripts/release-env.sh >> \\\"$GITHUB_ENV\\\""),
        "the release workflow does not run scripts/release-env.sh:\n{workflow}"
    );
    let flags = success(Command::new("bash").arg(root.join("scripts/release-env.sh")));
    assert_eq!(
        flags.trim(),
        "RUSTFLAGS=-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\""
    );
}

/// Every `owner/name` of this project a text names: in `github.com/owner/name` links and in
/// `owner/name@ref` Action references.
fn project_repositories(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_./:@".contains(c)))
        .filter_map(|token| {
            let path = match token.split_once("github.com/") {
                Some((_, path)) => path,
                None if token.contains("/dagster-deploy@") => token,
                None => return None,
            };
            let parts: Vec<&str> = path.split('/').take(2).collect();
            let name = parts.get(1)?.split('@').next()?;
            (name == "dagster-deploy").then(|| format!("{}/{name}", parts[0]))
        })
        .collect()
}

#[test]
fn the_release_host_is_named_in_one_place() {
    let repository = release_repository_url();
    let owner_and_name = repository
        .strip_prefix("https://github.com/")
        .unwrap_or_else(|| {
            panic!("dist's GitHub CI and the Action need a GitHub repository: {repository}")
        });
    let files = [
        repository_root().join("README.md"),
        repository_root().join("action.yml"),
        repository_root().join("crates/ci-context/src/scaffold/install.sh"),
        dist_dir().join("dagster-deploy-installer.sh"),
    ];
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        let named = project_repositories(&text);
        assert!(
            !named.is_empty(),
            "{} does not name the release host",
            file.display()
        );
        for found in named {
            assert_eq!(
                found,
                owner_and_name,
                "{} names another release host",
                file.display()
            );
        }
    }
    let action = std::fs::read_to_string(repository_root().join("action.yml")).unwrap();
    let action: serde_yaml_ng::Value = serde_yaml_ng::from_str(&action).unwrap();
    assert_eq!(
        action["inputs"]["version"]["default"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "the Action's default version follows the workspace version"
    );
}

#[test]
fn the_release_archive_is_static_and_says_its_version_commit_and_target() {
    let archive = release_archive();
    let published = std::fs::read_to_string(archive.with_extension("gz.sha256")).unwrap();
    assert_eq!(
        published.split_whitespace().next(),
        Some(sha256_file(&archive).as_str()),
        "the published checksum matches the archive"
    );
    let dir = tempfile::tempdir().unwrap();
    let binary = unpack_release_archive(dir.path());
    assert!(
        dir.path()
            .join(format!("dagster-deploy-{}", host_target()))
            .join("README.md")
            .is_file()
    );

    let file = success(Command::new("file").arg(&binary));
    assert!(
        file.contains("statically linked") || file.contains("static-pie linked"),
        "not static: {file}"
    );
    let ldd = run(Command::new("ldd").arg(&binary));
    let ldd_text = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        ldd_text.contains("not a dynamic executable") || ldd_text.contains("statically linked"),
        "ldd finds shared libraries: {ldd_text}"
    );

    let version = success(Command::new(&binary).arg("--version"));
    assert_eq!(
        version.trim(),
        format!(
            "dagster-deploy {} (commit {}, {})",
            env!("CARGO_PKG_VERSION"),
            head_commit_short(),
            host_target()
        ),
        "rebuild the archive with scripts/dist-build.sh if HEAD moved since"
    );
}

#[test]
fn a_source_tarball_knows_its_commit() {
    // dist's source.tar.gz is `git archive` of HEAD, which fills in git-commit.txt.
    let tarball = dist_dir().join("source.tar.gz");
    assert!(
        tarball.is_file(),
        "{} is missing: run scripts/dist-build.sh",
        tarball.display()
    );
    let dir = tempfile::tempdir().unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&tarball).unwrap(),
    ))
    .unpack(dir.path())
    .unwrap();
    let root = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .expect("one folder in the tarball")
        .unwrap()
        .path();
    assert!(!root.join(".git").exists());
    let commit = std::fs::read_to_string(root.join("crates/cli/git-commit.txt")).unwrap();
    assert!(
        commit.trim().starts_with(&head_commit_short()),
        "git-commit.txt holds {commit:?}"
    );
    // The build script of the unpacked sources (no .git) tells the compiler that commit. It is
    // compiled and run as cargo would (the rest of a build does not depend on git).
    let script = dir.path().join("build-script");
    success(
        Command::new("rustc")
            .args(["--edition", "2024", "-o"])
            .arg(&script)
            .arg(root.join("crates/cli/build.rs")),
    );
    let printed = success(
        Command::new(&script)
            .current_dir(root.join("crates/cli"))
            .env_remove("DAGSTER_DEPLOY_GIT_COMMIT")
            .env("CARGO_MANIFEST_DIR", root.join("crates/cli"))
            .env("TARGET", host_target()),
    );
    assert!(
        printed.contains(&format!(
            "cargo:rustc-env=DAGSTER_DEPLOY_GIT_COMMIT={}\n",
            head_commit_short()
        )),
        "{printed}"
    );
    assert!(printed.contains(&format!(
        "cargo:rustc-env=DAGSTER_DEPLOY_TARGET={}\n",
        host_target()
    )));
}

/// A folder of links to every program in the OS folders except `without`: a runner that lacks
/// that program.
fn os_path_without(dir: &Path, without: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for folder in OS_PATH.split(':') {
        let Ok(entries) = std::fs::read_dir(folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let link = dir.join(&name);
            if name != without && !link.exists() {
                let _ = std::os::unix::fs::symlink(entry.path(), link);
            }
        }
    }
    dir.display().to_string()
}

/// Runs the CI install script with nothing but `env` (and returns its output).
fn install_script(env: &[(&str, &str)]) -> std::process::Output {
    run(Command::new("/bin/sh")
        .arg(repository_root().join("crates/ci-context/src/scaffold/install.sh"))
        .env_clear()
        .envs(env.iter().copied()))
}

#[test]
fn the_ci_install_script_installs_the_pinned_archive_with_nothing_but_the_os() {
    let server = FileServer::start(&dist_dir());
    let home = tempfile::tempdir().unwrap();
    let home_text = home.path().display().to_string();
    let url = server.url();
    let version = env!("CARGO_PKG_VERSION");
    let installed = home.path().join(".dagster-deploy/bin/dagster-deploy");

    // curl, from the OS folders only.
    let output = install_script(&[
        ("PATH", OS_PATH),
        ("HOME", &home_text),
        ("DAGSTER_DEPLOY_VERSION", version),
        ("DAGSTER_DEPLOY_DOWNLOAD_URL", &url),
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().last(),
        Some(installed.display().to_string().as_str())
    );
    let archive = format!("/dagster-deploy-{}.tar.gz", host_target());
    assert!(
        server.requests().contains(&archive),
        "{:?}",
        server.requests()
    );
    assert!(server.requests().contains(&format!("{archive}.sha256")));
    let printed = success(Command::new(&installed).arg("--version"));
    assert!(
        printed.starts_with(&format!("dagster-deploy {version} (")),
        "{printed}"
    );

    // wget on a runner without curl, into another folder.
    let no_curl = os_path_without(&home.path().join("no-curl"), "curl");
    let other_dir = home.path().join("other");
    let output = install_script(&[
        ("PATH", &no_curl),
        ("HOME", &home_text),
        ("DAGSTER_DEPLOY_VERSION", &format!("v{version}")),
        ("DAGSTER_DEPLOY_DOWNLOAD_URL", &url),
        (
            "DAGSTER_DEPLOY_INSTALL_DIR",
            &other_dir.display().to_string(),
        ),
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(other_dir.join("dagster-deploy").is_file());

    // A pinned checksum that does not match: nothing is installed.
    let refused_dir = home.path().join("refused");
    let output = install_script(&[
        ("PATH", OS_PATH),
        ("HOME", &home_text),
        ("DAGSTER_DEPLOY_VERSION", version),
        ("DAGSTER_DEPLOY_DOWNLOAD_URL", &url),
        ("DAGSTER_DEPLOY_SHA256", &"0".repeat(64)),
        (
            "DAGSTER_DEPLOY_INSTALL_DIR",
            &refused_dir.display().to_string(),
        ),
    ]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not installing it"),
        "{}",
        describe(&output)
    );
    assert!(!refused_dir.join("dagster-deploy").exists());

    // The pinned version is checked against the binary.
    let output = install_script(&[
        ("PATH", OS_PATH),
        ("HOME", &home_text),
        ("DAGSTER_DEPLOY_VERSION", "9.9.9"),
        ("DAGSTER_DEPLOY_DOWNLOAD_URL", &url),
        (
            "DAGSTER_DEPLOY_INSTALL_DIR",
            &refused_dir.display().to_string(),
        ),
    ]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("asked for 9.9.9"),
        "{}",
        describe(&output)
    );
}

#[test]
fn the_shell_installer_installs_from_a_local_server() {
    let server = FileServer::start(&dist_dir());
    let home = tempfile::tempdir().unwrap();
    let output = run(Command::new("/bin/sh")
        .arg(dist_dir().join("dagster-deploy-installer.sh"))
        .env_clear()
        .env("PATH", OS_PATH)
        .env("HOME", home.path())
        .env("DAGSTER_DEPLOY_DOWNLOAD_URL", server.url())
        .env("INSTALLER_NO_MODIFY_PATH", "1"));
    assert!(output.status.success(), "{}", describe(&output));
    let installed = home.path().join(".dagster-deploy/bin/dagster-deploy");
    let printed = success(Command::new(&installed).arg("--version"));
    assert!(
        printed.starts_with(&format!("dagster-deploy {} (", env!("CARGO_PKG_VERSION"))),
        "{printed}"
    );
    assert!(
        server
            .requests()
            .contains(&format!("/dagster-deploy-{}.tar.gz", host_target())),
        "{:?}",
        server.requests()
    );
}

#[test]
fn the_action_installs_the_pinned_release_and_runs_a_command() {
    let server = FileServer::start(&dist_dir());
    let workspace = DgWorkspace::new(&["sales"], "ghcr.io/acme/code");
    let home = tempfile::tempdir().unwrap();
    let repository = release_repository_url();
    let action = repository
        .trim_start_matches("https://github.com/")
        .to_owned();
    let workflow = format!(
        r#"name: uses the action
on: push
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - id: install
        uses: {action}@v{version}
        with:
          run: check --offline --project-dir .
      - id: on-path
        run: |
          test "$(command -v dagster-deploy)" = "${{{{ steps.install.outputs.path }}}}"
          dagster-deploy --version
"#,
        version = env!("CARGO_PKG_VERSION"),
    );
    let github = GitHubRun {
        workflow: serde_yaml_ng::from_str(&workflow).unwrap(),
        workspace: workspace.path().to_path_buf(),
        our_action: (format!("{action}@"), repository_root()),
        secrets: BTreeMap::new(),
        event_name: "push".to_owned(),
        event: serde_json::json!({"ref": "refs/heads/main"}),
        git_ref: "refs/heads/main".to_owned(),
        sha: "0".repeat(40),
        head_ref: String::new(),
        base_ref: String::new(),
        repository: "acme/data".to_owned(),
        run_id: "1".to_owned(),
        actor: "octocat".to_owned(),
        home: home.path().to_path_buf(),
        runner_env: BTreeMap::from([("DAGSTER_DEPLOY_DOWNLOAD_URL".to_owned(), server.url())]),
    };
    let job = github.run_job("check");
    job.assert_success();
    let transcript = job.transcript();
    assert!(
        transcript.contains("Configuration valid: 1 location(s)"),
        "the action ran the command:\n{transcript}"
    );
    assert_eq!(
        job.steps_run(),
        ["install/install", "install/run", "on-path"],
        "{transcript}"
    );
}

/// The host names the chroot's /etc/hosts gives the emulator and the registry.
const EMULATOR_HOST: &str = "dagster.emulator.test";
const REGISTRY_HOST: &str = "registry.test";

/// A root folder with nothing but the binary, CA certificates, /etc/hosts, /etc/resolv.conf,
/// the project and empty /tmp and state folders.
fn chroot_root(binary: &Path, ca_bundle: &str, hosts: &str, project: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::copy(binary, r.join("dagster-deploy")).unwrap();
    std::fs::set_permissions(
        r.join("dagster-deploy"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(r.join("etc/ssl/certs")).unwrap();
    std::fs::write(r.join("etc/ssl/certs/ca-certificates.crt"), ca_bundle).unwrap();
    std::fs::write(r.join("etc/hosts"), hosts).unwrap();
    // No name server answers here: every name must come from /etc/hosts.
    std::fs::write(
        r.join("etc/resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .unwrap();
    for dir in ["tmp", "state"] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    let output = run(Command::new("cp")
        .arg("-a")
        .arg(project)
        .arg(r.join("project")));
    assert!(output.status.success(), "{}", describe(&output));
    root
}

fn in_chroot(root: &Path, url: &str, args: &[&str]) -> std::process::Output {
    run(Command::new("/usr/sbin/chroot")
        .arg(root)
        .arg("/dagster-deploy")
        .args(args)
        .env_clear()
        .env("HOME", "/tmp")
        .env("DAGSTER_CLOUD_URL", url)
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .env("DAGSTER_CLOUD_ORGANIZATION", "acme")
        .env("DAGSTER_BUILD_STATEDIR", "/state")
        .env("SOURCE_DATE_EPOCH", "0"))
}

#[test]
fn the_static_binary_deploys_from_an_empty_chroot_by_host_name() {
    let is_root = run(Command::new("id").arg("-u"));
    assert_eq!(
        String::from_utf8_lossy(&is_root.stdout).trim(),
        "0",
        "this test needs root for chroot (CI runs as root)"
    );
    let unpacked = tempfile::tempdir().unwrap();
    let binary = unpack_release_archive(unpacked.path());
    let emulator = Emulator::start_blocking(
        EmulatorConfig::default()
            .with_token(TOKEN)
            .with_load_time(Duration::from_millis(200)),
    );
    let front = TlsFront::start(EMULATOR_HOST, emulator.address());
    let registry = Registry::start();
    let port = registry.host().rsplit_once(':').unwrap().1.to_owned();
    let named_registry = format!("{REGISTRY_HOST}:{port}");
    let base = seed_base_image(&registry.host());
    let base_by_name = base.replacen(&registry.host(), &named_registry, 1);
    let workspace = DgWorkspace::new(&["sales"], &format!("{named_registry}/e2e/code"));
    let ca_bundle = format!(
        "{}{}",
        std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default(),
        front.ca_pem()
    );
    let url = format!("https://{EMULATOR_HOST}:{}", front.port());

    // Without the names in /etc/hosts nothing resolves: the names below come from that file.
    let unresolved = chroot_root(
        &binary,
        &ca_bundle,
        "127.0.0.1 localhost\n",
        workspace.path(),
    );
    let output = in_chroot(
        unresolved.path(),
        &url,
        &["check", "--project-dir", "/project"],
    );
    assert!(
        !output.status.success() && String::from_utf8_lossy(&output.stderr).contains("dns error"),
        "{}",
        describe(&output)
    );

    let hosts = format!("127.0.0.1 localhost\n127.0.0.1 {EMULATOR_HOST} {REGISTRY_HOST}\n");
    let root = chroot_root(&binary, &ca_bundle, &hosts, workspace.path());
    let steps: [Vec<&str>; 4] = [
        vec!["check", "--project-dir", "/project"],
        vec![
            "start",
            "--deployment",
            "prod",
            "--deployment-type",
            "full",
            "--project-dir",
            "/project",
            "--yes",
        ],
        vec![
            "build-and-push",
            "--builder",
            "native",
            "--base-image",
            &base_by_name,
            "--insecure-registry",
            &named_registry,
        ],
        vec!["deploy"],
    ];
    for args in &steps {
        let output = in_chroot(root.path(), &url, args);
        assert!(
            output.status.success(),
            "{args:?} in the chroot:\n{}",
            describe(&output)
        );
    }
    let deployed = emulator.deployed_locations();
    assert_eq!(deployed.len(), 1, "{deployed:?}");
    let image = deployed[0].document["image"].as_str().unwrap_or_default();
    assert!(
        image.starts_with(&format!("{named_registry}/e2e/code:")),
        "{}",
        deployed[0].document
    );
    // The chroot held only what the test put there.
    let mut entries: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        ["dagster-deploy", "etc", "project", "state", "tmp"]
    );
}
