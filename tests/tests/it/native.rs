//! What `build-and-push --builder native` checks and says about how each location's code will
//! load, before building anything (on a stub base image; the real loads are in
//! `real_python.rs`).

use std::path::Path;
use std::process::Command;

use dagster_deploy_e2e::{Emulator, EmulatorConfig, Registry};

use crate::support::{
    TOKEN, command, dagster_deploy, describe, run, seed_base_image, start_legacy, success,
};

/// A build-and-push run, with the session it ran in (alive while this is).
struct Built {
    output: std::process::Output,
    _session: Session,
}

/// A session opened on a project, with its Dagster+ emulator and the registry it pushes to.
struct Session {
    emulator: Emulator,
    registry: Registry,
    base: String,
    home: tempfile::TempDir,
}

impl Session {
    /// Opens a session on `yaml` (`REGISTRY` stands for the test registry) in `dir`.
    fn start(dir: &Path, yaml: &str) -> Self {
        let emulator = Emulator::start_blocking(EmulatorConfig::default().with_token(TOKEN));
        let registry = Registry::start();
        let base = seed_base_image(&registry.host());
        let yaml = yaml.replace("REGISTRY", &format!("{}/code/app", registry.host()));
        std::fs::write(dir.join("dagster_cloud.yaml"), yaml).unwrap();
        let session = Session {
            emulator,
            registry,
            base,
            home: tempfile::tempdir().unwrap(),
        };
        success(start_legacy(
            &mut session.cli(),
            &dir.join("dagster_cloud.yaml"),
        ));
        session
    }

    fn cli(&self) -> Command {
        let statedir = self.home.path().join("state");
        command(
            &dagster_deploy(),
            self.home.path(),
            &self.emulator.url(),
            &statedir,
        )
    }

    /// Runs build-and-push with `extra` flags.
    fn build(&self, extra: &[&str]) -> std::process::Output {
        run(self
            .cli()
            .args([
                "build-and-push",
                "--builder",
                "native",
                "--base-image",
                &self.base,
            ])
            .args(extra))
    }
}

/// Opens a session on `yaml` in `dir` and runs build-and-push with `extra` flags.
fn build(dir: &Path, yaml: &str, extra: &[&str]) -> Built {
    let session = Session::start(dir, yaml);
    Built {
        output: session.build(extra),
        _session: session,
    }
}

fn write(dir: &Path, path: &str, contents: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

#[test]
fn a_missing_python_file_is_a_configuration_error_before_anything_is_pushed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "repo.py", "");
    let Built { output, .. } = build(
        dir.path(),
        "locations:\n  - location_name: ok\n    code_source: {python_file: repo.py}\n    build: {directory: ., registry: REGISTRY}\n  - location_name: missing\n    code_source: {python_file: jobs/repo.py}\n    build: {directory: ., registry: REGISTRY}\n",
        &[],
    );
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("location missing: python_file `jobs/repo.py` is not in the build directory"),
        "{stderr}"
    );
    assert!(!stderr.contains("Pushed"), "nothing is built: {stderr}");
}

#[test]
fn a_module_outside_the_build_directory_is_a_warning_that_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "pkg/__init__.py", "");
    let yaml = "locations:\n  - location_name: legacy\n    code_source: {package_name: pkg}\n    working_directory: /opt/dagster/app\n    build: {directory: ., registry: REGISTRY}\n";
    let Built { output, .. } = build(dir.path(), yaml, &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("location legacy: `pkg` is not in the build directory")
            && stderr.contains("pass --workdir /opt/dagster/app"),
        "{stderr}"
    );

    let Built { output, .. } = build(dir.path(), yaml, &["--workdir", "/opt/dagster/app"]);
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("not in the build directory"), "{stderr}");
}

#[test]
fn a_src_layout_gets_its_source_directory_on_pythonpath_in_the_image_config() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "src/pkg/__init__.py", "");
    let built = build(
        dir.path(),
        "locations:\n  - location_name: src-layout\n    code_source: {module_name: pkg.defs}\n    build: {directory: ., registry: REGISTRY}\n",
        &["--verbose"],
    );
    let output = &built.output;
    assert!(output.status.success(), "{}", describe(output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/app/src/pkg is imported from /app/src, which goes on PYTHONPATH"),
        "{stderr}"
    );
    let image = stderr
        .lines()
        .find_map(|line| line.split("Pushed ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .expect("the pushed image")
        .to_owned();
    let inspect = Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!("docker://{image}"))
        .output()
        .expect("skopeo is installed (scripts/setup.sh)");
    assert!(inspect.status.success(), "{}", describe(&inspect));
    let config: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|value| value.as_str())
        .collect();
    assert!(env.contains(&"PYTHONPATH=/app/src"), "{env:?}");
}

/// What the registry was asked since `before` requests, leaving out the base image's own
/// repository (its manifest and config are read on every build).
fn requests_since(registry: &Registry, before: usize) -> Vec<String> {
    registry.requests()[before..]
        .iter()
        .filter(|request| !request.contains("/v2/e2e/base/"))
        .cloned()
        .collect()
}

#[test]
fn an_unchanged_rebuild_uploads_nothing_and_a_changed_byte_mode_or_name_is_built_again() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "pkg/__init__.py", "");
    write(dir.path(), "pkg/defs.py", "defs = []\n");
    let session = Session::start(
        dir.path(),
        "locations:\n  - location_name: app\n    code_source: {package_name: pkg}\n    build: {directory: ., registry: REGISTRY}\n",
    );
    let registry = &session.registry;
    let build = |extra: &[&str]| -> String {
        let output = session.build(extra);
        assert!(output.status.success(), "{}", describe(&output));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let is_write = |request: &String| {
        ["PUT ", "POST ", "PATCH "]
            .iter()
            .any(|method| request.starts_with(method))
    };

    let first = build(&[]);
    assert!(first.contains("code layer uploaded"), "{first}");
    let image = first
        .lines()
        .find_map(|line| line.split("Pushed ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .expect("the pushed image")
        .to_owned();

    // Unchanged: one manifest GET by the content tag, no blob looked at or sent.
    let before = registry.requests().len();
    let unchanged = build(&[]);
    let digest_line = unchanged
        .lines()
        .find(|line| line.contains("Unchanged "))
        .unwrap_or_else(|| panic!("no `Unchanged` line: {unchanged}"));
    assert!(
        digest_line.contains(&format!("Unchanged {image}: reused sha256:")),
        "{digest_line}"
    );
    let requests = requests_since(registry, before);
    let tag = image.rsplit(':').next().unwrap();
    assert_eq!(
        requests,
        [format!("GET /v2/code/app/manifests/{tag} 200")],
        "{unchanged}"
    );

    // Unchanged, under a new tag: the same manifest PUT under it, nothing else written.
    let before = registry.requests().len();
    let tagged = build(&["--tag", "release-1"]);
    assert!(
        tagged.contains(&format!("Unchanged {}/code/app:release-1", registry.host())),
        "{tagged}"
    );
    let writes: Vec<String> = requests_since(registry, before)
        .into_iter()
        .filter(is_write)
        .collect();
    assert_eq!(writes, ["PUT /v2/code/app/manifests/release-1 201"]);

    // One byte, an execute bit, a name: each is a new layer, uploaded.
    let changes: [(&str, &dyn Fn()); 3] = [
        ("one byte", &|| {
            write(dir.path(), "pkg/defs.py", "defs = {}\n")
        }),
        ("execute bit", &|| {
            use std::os::unix::fs::PermissionsExt as _;
            let path = dir.path().join("pkg/defs.py");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }),
        ("rename", &|| {
            std::fs::rename(
                dir.path().join("pkg/defs.py"),
                dir.path().join("pkg/assets.py"),
            )
            .unwrap();
        }),
    ];
    for (what, change) in changes {
        change();
        let before = registry.requests().len();
        let rebuilt = build(&[]);
        assert!(
            rebuilt.contains("code layer uploaded") && !rebuilt.contains("Unchanged "),
            "{what}: {rebuilt}"
        );
        let uploads = requests_since(registry, before)
            .into_iter()
            .filter(|request| request.starts_with("POST /v2/code/app/blobs/uploads/"))
            .count();
        assert!(uploads >= 1, "{what}: the new layer is uploaded");
        // And the same content again is found without a build.
        let again = build(&[]);
        assert!(again.contains("Unchanged "), "{what}, again: {again}");
    }
}
