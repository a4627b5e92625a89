//! What the end-to-end tests share: finding the binaries, making dg workspaces in git
//! checkouts, seeding a base image into a registry, and running commands with a clean
//! environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dagster_deploy_e2e::{Emulator, EmulatorConfig, Registry};
use sha2::{Digest, Sha256};

pub(crate) const FIXTURES: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/legacy-flow");
pub(crate) const TOKEN: &str = "user:e2e-secret-token-5f3a9c";

/// The reference CLI installed by `scripts/setup.sh`.
pub(crate) fn reference_cli() -> PathBuf {
    installed_program(
        "DAGSTER_DEPLOY_REFERENCE_CLI",
        "/var/tmp/dagster-deploy-reference-venv/bin/dagster-cloud",
        "the reference CLI",
    )
}

/// A program `scripts/setup.sh` installs: the path in env var `variable`, else `default`. A
/// missing one fails the test, saying how to install it.
pub(crate) fn installed_program(variable: &str, default: &str, what: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{what} is not at {}: run scripts/setup.sh (or set {variable})",
        path.display()
    );
    path
}

/// The `dagster-deploy` binary: `DAGSTER_DEPLOY_BIN`, or the one cargo built next to this test.
pub(crate) fn dagster_deploy() -> PathBuf {
    if let Some(path) = std::env::var_os("DAGSTER_DEPLOY_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = target.join("dagster-deploy");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p dagster-deploy` (scripts/test.sh does), or set DAGSTER_DEPLOY_BIN",
        path.display()
    );
    path
}

/// Environment variables that would make the CLI think it runs in some CI system.
const CI_VARIABLES: &[&str] = &[
    "CI",
    "GITHUB_ACTIONS",
    "GITHUB_ACTION",
    "GITHUB_EVENT_PATH",
    "GITHUB_REPOSITORY",
    "GITHUB_SHA",
    "GITLAB_CI",
    "CI_PROJECT_PATH",
    "CI_MERGE_REQUEST_IID",
    "BITBUCKET_BUILD_NUMBER",
    "BUILDKITE",
    "CIRCLECI",
    "CODEBUILD_BUILD_ID",
    "JENKINS_URL",
    "TRAVIS",
    "TF_BUILD",
    "DAGSTER_CLOUD_ORGANIZATION",
    "DAGSTER_CLOUD_DEPLOYMENT",
    "DAGSTER_CLOUD_API_TOKEN",
    "DAGSTER_CLOUD_URL",
    "DAGSTER_BUILD_STATEDIR",
    "DAGSTER_CLOUD_LOCATION_LOAD_TIMEOUT",
    "DAGSTER_CLOUD_AGENT_HEARTBEAT_TIMEOUT",
    "DAGSTER_CLOUD_CLI_CONFIG",
    "DG_CLI_CONFIG",
    // Tokens and API URLs of the forges: a test run inside GitHub Actions or GitLab CI must
    // not comment on, or look avatars up from, the real forge.
    "GITHUB_TOKEN",
    "GITHUB_API_URL",
    "GITLAB_TOKEN",
    "CI_JOB_TOKEN",
    "CI_API_V4_URL",
];

/// A command with a clean environment: no CI variables, a private HOME (so no config file is
/// read), and the emulator's URL and token.
pub(crate) fn command(program: &Path, home: &Path, emulator_url: &str, statedir: &Path) -> Command {
    let mut command = Command::new(program);
    for name in CI_VARIABLES {
        command.env_remove(name);
    }
    command
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("DAGSTER_CLOUD_URL", emulator_url)
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .env("DAGSTER_CLOUD_ORGANIZATION", "acme")
        .env("DAGSTER_BUILD_STATEDIR", statedir)
        .env("SOURCE_DATE_EPOCH", "0");
    command
}

/// Adds the arguments of `start` for a full `prod` deployment of a hand-written
/// `dagster_cloud.yaml`, without checking the locations against Dagster+.
pub(crate) fn start_legacy<'a>(command: &'a mut Command, yaml: &Path) -> &'a mut Command {
    command
        .args([
            "start",
            "--deployment",
            "prod",
            "--deployment-type",
            "full",
            "--skip-validation",
            "--dagster-cloud-yaml",
        ])
        .arg(yaml)
}

/// Runs a command and returns its output.
pub(crate) fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"))
}

/// Describes a finished command for assertion messages.
pub(crate) fn describe(output: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts that a command succeeded and returns its stdout.
pub(crate) fn success(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        describe(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A registry holding the OCI layout `layout` (its `latest`) as `<repository>:latest`; returns
/// the registry and that image.
pub(crate) fn registry_with_base(layout: &Path, repository: &str) -> (Registry, String) {
    let registry = Registry::start();
    let base = format!("{}/{repository}:latest", registry.host());
    success(Command::new(dagster_deploy()).args([
        "image",
        "push",
        &format!("oci:{}:latest", layout.display()),
        &base,
    ]));
    (registry, base)
}

/// An emulator whose agent loads images for real (pulls, unpacks, starts the code server).
pub(crate) fn real_agent_emulator() -> Emulator {
    Emulator::start_blocking(
        EmulatorConfig::default()
            .with_token(TOKEN)
            .with_real_agent(),
    )
}

/// Runs git with an argument vector in `dir`.
pub(crate) fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=E2E", "-c", "user.email=e2e@example.com"])
        .args(args)
        .output()
        .expect("git is installed (apt-get install -y git)");
    assert!(
        output.status.success(),
        "git {args:?} failed:\n{}",
        describe(&output)
    );
}

/// A dg workspace with one project per name, in a git checkout of its own.
pub(crate) struct DgWorkspace {
    pub(crate) root: tempfile::TempDir,
}

impl DgWorkspace {
    pub(crate) fn new(projects: &[&str], registry: &str) -> Self {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        let mut dg = String::from("directory_type = \"workspace\"\n\n[workspace]\n");
        for project in projects {
            dg.push_str(&format!(
                "\n[[workspace.projects]]\npath = \"projects/{project}\"\n"
            ));
            let module = project.replace('-', "_");
            let project_dir = dir.join("projects").join(project);
            std::fs::create_dir_all(project_dir.join("src").join(&module)).unwrap();
            std::fs::write(
                project_dir.join("pyproject.toml"),
                format!(
                    "[project]\nname = \"{project}\"\nversion = \"0.1.0\"\n\n[tool.dg]\ndirectory_type = \"project\"\n\n[tool.dg.project]\nroot_module = \"{module}\"\n"
                ),
            )
            .unwrap();
            std::fs::write(project_dir.join("build.yaml"), "directory: .\n").unwrap();
            std::fs::write(
                project_dir.join("src").join(&module).join("__init__.py"),
                "",
            )
            .unwrap();
            std::fs::write(
                project_dir.join("src").join(&module).join("definitions.py"),
                format!("import dagster as dg\n\ndefs = dg.Definitions()  # {project}\n"),
            )
            .unwrap();
        }
        std::fs::write(dir.join("dg.toml"), dg).unwrap();
        std::fs::write(dir.join("build.yaml"), format!("registry: {registry}\n")).unwrap();
        git(dir, &["init", "-q", "-b", "main"]);
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", "initial"]);
        DgWorkspace { root }
    }

    pub(crate) fn path(&self) -> &Path {
        self.root.path()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes an OCI image layout holding one single-layer image tagged `tag`.
pub(crate) fn write_oci_layout(dir: &Path, tag: &str, files: &[(&str, &[u8])]) {
    let mut tar_bytes = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut tar_bytes);
        for (path, contents) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o755);
            header.set_mtime(0);
            header.set_cksum();
            builder.append_data(&mut header, path, *contents).unwrap();
        }
        builder.finish().unwrap();
    }
    let diff_id = sha256_hex(&tar_bytes);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &tar_bytes).unwrap();
    let layer = encoder.finish().unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["python"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
        "history": [{"created_by": "e2e base"}]
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", sha256_hex(&config)), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", sha256_hex(&layer)), "size": layer.len()}]
    }))
    .unwrap();
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for blob in [&layer, &config, &manifest] {
        std::fs::write(blobs.join(sha256_hex(blob)), blob).unwrap();
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", sha256_hex(&manifest)), "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": tag}}]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Pushes a small base image to `registry_host/e2e/base:deps` with our own `image push`, and
/// returns its reference.
pub(crate) fn seed_base_image(registry_host: &str) -> String {
    let layout = tempfile::tempdir().unwrap();
    write_oci_layout(
        layout.path(),
        "deps",
        &[("usr/local/bin/python", b"#!/bin/sh\necho python\n")],
    );
    let reference = format!("{registry_host}/e2e/base:deps");
    let source = format!("oci:{}:deps", layout.path().display());
    success(Command::new(dagster_deploy()).args(["image", "push", &source, &reference]));
    reference
}

/// The repository's root folder (the workspace manifest, action.yml, scripts/).
pub(crate) fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// This machine's target triple as the release archives name it.
pub(crate) fn host_target() -> String {
    match std::env::consts::OS {
        "linux" => format!("{}-unknown-linux-gnu", std::env::consts::ARCH),
        "macos" => format!("{}-apple-darwin", std::env::consts::ARCH),
        other => panic!("no release archives for {other}"),
    }
}

/// Where `scripts/dist-build.sh` puts the release artifacts: `DAGSTER_DEPLOY_DIST_DIR`, else
/// `distrib` in the cargo target folder these tests were built in.
pub(crate) fn dist_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DAGSTER_DEPLOY_DIST_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<test>")
        .join("distrib")
}

/// The release archive of this machine's target, as the release job builds it.
pub(crate) fn release_archive() -> PathBuf {
    let archive = dist_dir().join(format!("dagster-deploy-{}.tar.gz", host_target()));
    assert!(
        archive.is_file(),
        "{} is missing: build it with scripts/dist-build.sh (scripts/test.sh does), or set DAGSTER_DEPLOY_DIST_DIR",
        archive.display()
    );
    archive
}

/// Unpacks the release archive into `dir` and returns the binary in it.
pub(crate) fn unpack_release_archive(dir: &Path) -> PathBuf {
    let archive = std::fs::File::open(release_archive()).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(archive))
        .unpack(dir)
        .expect("the archive unpacks");
    let binary = dir
        .join(format!("dagster-deploy-{}", host_target()))
        .join("dagster-deploy");
    assert!(
        binary.is_file(),
        "{} is not in the archive",
        binary.display()
    );
    binary
}

/// The commit HEAD points to, shortened as `--version` prints it.
pub(crate) fn head_commit_short() -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(repository_root())
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .expect("git is installed (apt-get install -y git)");
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
