//! The dependency layer (`crates/pydeps`) against the real things: the uv that setup.sh installs,
//! real wheels from the package index, and the plain Debian + python3 base that
//! `scripts/pybase.sh` caches. A layer built from a real `uv.lock` (dagster and dagster-cloud,
//! the version the dagster base holds) is added to the base as an OCI image with the Env the
//! crate asks for, unpacked by `umoci`, and its console scripts and imports run in a chroot
//! through that Env. Rebuilds with the same lock reuse the layer without installing; a fresh
//! build gives the same bytes; a lock with an sdist-only package fails naming it.
//!
//! Then the whole pipeline: `build-and-push --builder native` on the plain base in a real
//! registry, deployed to the emulator in real-agent mode (the image is pulled, unpacked and its
//! code server started and health-checked in a chroot); a code-only rebuild on a machine with an
//! empty layer cache uploads the code layer and not the dependency layer, and learns the base's
//! Python from the record the first build pushed instead of reading the base layers.
//!
//! Needs root (chroot, mounts), umoci, uv (`DAGSTER_DEPLOY_UV`) and the plain base
//! (`DAGSTER_DEPLOY_PYBASE_PLAIN`); `scripts/setup.sh` installs them all. Wheels are cached in
//! `DAGSTER_DEPLOY_UV_CACHE`, so only the first run on a machine downloads them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dagster_deploy_pydeps::{
    DepsLayer, DepsRequest, Error, ImageFacts, LayerCache, Progress, TargetPython, UnpackedRoot,
    Uv, build_deps_layer, check_venv_dir, find_lock,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use dagster_deploy_e2e::{Emulator, Registry};

use crate::support::{
    command, dagster_deploy, describe, git, real_agent_emulator, registry_with_base,
    repository_root, run, start_legacy, success,
};

/// The uv program installed by setup.sh.
fn uv_program() -> PathBuf {
    std::env::var_os("DAGSTER_DEPLOY_UV").map_or_else(
        || PathBuf::from("/var/tmp/dagster-deploy-tools/bin/uv"),
        PathBuf::from,
    )
}

/// The wheel cache shared by the tests, outside the clone, so re-runs download nothing.
fn uv_cache() -> PathBuf {
    std::env::var_os("DAGSTER_DEPLOY_UV_CACHE").map_or_else(
        || PathBuf::from("/var/tmp/dagster-deploy-uv-cache"),
        PathBuf::from,
    )
}

/// The uv installed by setup.sh.
fn uv() -> Uv {
    let program = uv_program();
    let cache = uv_cache();
    match Uv::new(&program) {
        // The package index is reached through a proxy whose CA is only in the system store.
        Ok(uv) => uv.with_cache_dir(cache).with_env("UV_SYSTEM_CERTS", "1"),
        Err(error) => panic!(
            "uv is not usable at {}: {error}; run scripts/setup.sh (it installs uv), or set DAGSTER_DEPLOY_UV",
            program.display()
        ),
    }
}

/// The OCI layout of the plain Debian + python3 base built by setup.sh.
fn plain_base_layout() -> PathBuf {
    let path = std::env::var_os("DAGSTER_DEPLOY_PYBASE_PLAIN").map_or_else(
        || PathBuf::from("/var/tmp/dagster-deploy-pybase-plain-v1"),
        PathBuf::from,
    );
    assert!(
        path.join("index.json").is_file(),
        "the plain Python base image is not at {}: run scripts/setup.sh (it calls scripts/pybase.sh), or set DAGSTER_DEPLOY_PYBASE_PLAIN",
        path.display()
    );
    path
}

fn fixture(name: &str) -> PathBuf {
    repository_root()
        .join("tests/tests/fixtures/pydeps")
        .join(name)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// Writes `bytes` as a blob of `layout` and returns its descriptor fields.
fn write_blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    std::fs::write(blob_path(layout, &digest), bytes).unwrap();
    (digest, bytes.len())
}

/// Runs umoci, failing with its output and an install hint.
fn umoci(args: &[&str]) {
    let output = Command::new("umoci")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run umoci ({error}): scripts/setup.sh installs it"));
    assert!(
        output.status.success(),
        "umoci {args:?}: {}",
        describe(&output)
    );
}

/// The plain base, unpacked: its root file system and its config.
struct Base {
    _dir: tempfile::TempDir,
    layout: PathBuf,
    rootfs: PathBuf,
    config: Value,
}

fn unpack_base() -> Base {
    let layout = plain_base_layout();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let bundle = dir.path().join("base");
    umoci(&[
        "unpack",
        "--image",
        &format!("{}:latest", layout.display()),
        bundle.to_str().unwrap(),
    ]);
    let index = read_json(&layout.join("index.json"));
    let manifest = read_json(&blob_path(
        &layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    let config = read_json(&blob_path(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    Base {
        _dir: dir,
        layout,
        rootfs: bundle.join("rootfs"),
        config,
    }
}

fn facts(config: &Value) -> ImageFacts {
    ImageFacts {
        architecture: config["architecture"].as_str().unwrap().to_owned(),
        env: config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry.as_str().unwrap().to_owned())
            .collect(),
    }
}

/// An OCI layout holding the base with `layer` on top and the layer's Env applied, the way
/// the native builder is to assemble it; returns the layout's directory.
fn image_with_layer(base: &Base, layer: &DepsLayer, dir: &Path) -> PathBuf {
    let layout = dir.join("image");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = read_json(&base.layout.join("index.json"));
    let mut manifest = read_json(&blob_path(
        &base.layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    for descriptor in manifest["layers"].as_array().unwrap() {
        let digest = descriptor["digest"].as_str().unwrap();
        std::fs::hard_link(blob_path(&base.layout, digest), blob_path(&layout, digest))
            .or_else(|_| {
                std::fs::copy(blob_path(&base.layout, digest), blob_path(&layout, digest)).map(drop)
            })
            .unwrap();
    }
    std::fs::copy(&layer.blob, blob_path(&layout, &layer.digest)).unwrap();

    let mut config = base.config.clone();
    let mut env: Vec<String> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry.as_str().unwrap().to_owned())
        .collect();
    for (name, value) in &layer.env.set {
        env.retain(|entry| !entry.starts_with(&format!("{name}=")));
        env.push(format!("{name}={value}"));
    }
    for (name, value) in &layer.env.prepend {
        let prefix = format!("{name}=");
        match env.iter_mut().find(|entry| entry.starts_with(&prefix)) {
            Some(entry) => *entry = format!("{prefix}{value}:{}", &entry[prefix.len()..]),
            None => env.push(format!("{prefix}{value}")),
        }
    }
    config["config"]["Env"] = json!(env);
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(layer.diff_id));
    config["history"]
        .as_array_mut()
        .unwrap()
        .push(json!({"created_by": layer.created_by}));
    let (config_digest, config_size) = write_blob(&layout, &serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = json!(config_digest);
    manifest["config"]["size"] = json!(config_size);
    manifest["layers"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": layer.digest,
        "size": layer.size,
    }));
    let (manifest_digest, manifest_size) =
        write_blob(&layout, &serde_json::to_vec(&manifest).unwrap());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "deps"},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    layout
}

/// Runs `args` in the unpacked image's root file system through the image's Env, in private
/// mount and PID namespaces with `/proc` and `/dev`, and returns stdout.
fn run_in_image(bundle: &Path, args: &[&str]) -> String {
    let runtime = read_json(&bundle.join("config.json"));
    let env: Vec<String> = runtime["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry.as_str().unwrap().to_owned())
        .collect();
    let output = Command::new("timeout")
        .args(["120", "unshare", "--mount", "--pid", "--fork", "--kill-child"])
        .args(["--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(
            "set -e; root=$1; shift; mount -t proc proc \"$root/proc\"; mount --rbind /dev \"$root/dev\"; exec chroot \"$root\" /usr/bin/env -i \"$@\"",
        )
        .arg("sh")
        .arg(bundle.join("rootfs"))
        .args(&env)
        .args(args)
        .output()
        .expect("unshare and chroot run (util-linux)");
    assert!(
        output.status.success(),
        "`{}` in the image with Env {env:?}: {}",
        args.join(" "),
        describe(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn build(uv: &Uv, request: &DepsRequest<'_>, cache: &LayerCache) -> (DepsLayer, Vec<Progress>) {
    let mut events = Vec::new();
    let layer = build_deps_layer(uv, request, cache, &mut |event| events.push(event))
        .unwrap_or_else(|error| panic!("{error}\nhelp: {:?}", error.help()));
    (layer, events)
}

#[test]
fn a_plain_base_plus_a_uv_lock_runs_dagster_and_dagster_cloud_without_docker() {
    let uv = uv();
    let base = unpack_base();
    let target =
        TargetPython::detect(&UnpackedRoot::new(&base.rootfs), &facts(&base.config)).unwrap();
    assert_eq!(target.interpreter, "/usr/bin/python3.11");
    assert_eq!(target.uv_platform(), "x86_64-manylinux_2_36");
    let request_dir = fixture("dagster-workspace/projects/myproj");
    // The member's lock is its workspace root's.
    let project = find_lock(&request_dir)
        .unwrap()
        .expect("the workspace's uv.lock");
    assert_eq!(
        project.lock_path,
        std::fs::canonicalize(fixture("dagster-workspace/uv.lock")).unwrap()
    );
    let request = DepsRequest::new(&project, &target);
    check_venv_dir(&UnpackedRoot::new(&base.rootfs), &request.venv_dir).unwrap();

    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    let cache = LayerCache::new(work.path().join("layers"));
    let (layer, events) = build(&uv, &request, &cache);
    assert!(!layer.reused);
    assert!(
        events
            .iter()
            .any(|event| matches!(event, Progress::Installing { .. })),
        "{events:?}"
    );
    assert!(layer.packages > 50, "{} packages", layer.packages);

    // The same lock again: the cached layer, and uv installs nothing.
    let (again, events) = build(&uv, &request, &cache);
    assert!(again.reused);
    assert_eq!(again.digest, layer.digest);
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, Progress::Installing { .. })),
        "a rebuild with an unchanged lock installed again: {events:?}"
    );
    // Without the cache uv installs again and the bytes are the same.
    let (fresh, _) = build(&uv, &request, &LayerCache::new(work.path().join("fresh")));
    assert!(!fresh.reused);
    assert_eq!(
        (&fresh.digest, &fresh.diff_id, fresh.size),
        (&layer.digest, &layer.diff_id, layer.size)
    );

    let layout = image_with_layer(&base, &layer, work.path());
    let bundle = work.path().join("bundle");
    umoci(&[
        "unpack",
        "--image",
        &format!("{}:deps", layout.display()),
        bundle.to_str().unwrap(),
    ]);
    let version = run_in_image(&bundle, &["dagster", "--version"]);
    assert_eq!(version.trim(), "dagster, version 1.13.27");
    let version = run_in_image(&bundle, &["dagster-cloud", "--version"]);
    assert!(version.contains("1.13.27"), "{version}");
    let imported = run_in_image(
        &bundle,
        &[
            "python",
            "-c",
            "import sys, dagster, dagster_cloud; print(sys.prefix, sys.executable, dagster.__file__)",
        ],
    );
    assert_eq!(
        imported.trim(),
        "/opt/venv /opt/venv/bin/python /opt/venv/lib/python3.11/site-packages/dagster/__init__.py"
    );
    // Console scripts name the image's environment, not the Python of the machine that built it.
    let shebang = std::fs::read_to_string(bundle.join("rootfs/opt/venv/bin/dagster")).unwrap();
    assert!(shebang.starts_with("#!/opt/venv/bin/python\n"), "{shebang}");
}

#[test]
fn a_lock_with_an_sdist_only_package_fails_naming_it() {
    let uv = uv();
    let base = unpack_base();
    let target =
        TargetPython::detect(&UnpackedRoot::new(&base.rootfs), &facts(&base.config)).unwrap();
    let project = find_lock(&fixture("sdist-only"))
        .unwrap()
        .expect("its uv.lock");
    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    let error = build_deps_layer(
        &uv,
        &DepsRequest::new(&project, &target),
        &LayerCache::new(work.path()),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(&error, Error::NeedsBuild { packages, .. } if packages == &["docopt"]),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("`docopt` has no wheel for x86_64-manylinux_2_36 and Python 3.11.2"),
        "{error}"
    );
    assert!(error.help().unwrap().contains("Docker"));
    // Nothing half-built is left to be mistaken for a layer.
    let left: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A registry holding the plain base, an emulator whose agent loads images for real, and a
/// private home, state directory and layer cache, for `build-and-push --builder native`.
struct PlainPipeline {
    emulator: Emulator,
    registry: Registry,
    base: String,
    home: tempfile::TempDir,
}

impl PlainPipeline {
    fn new() -> Self {
        let (registry, base) = registry_with_base(&plain_base_layout(), "base/plain");
        let emulator = real_agent_emulator();
        PlainPipeline {
            emulator,
            registry,
            base,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// The CLI with the uv of setup.sh, the shared wheel cache and `statedir`.
    fn cli(&self, statedir: &Path) -> Command {
        assert!(
            uv_program().is_file(),
            "uv is not at {}: run scripts/setup.sh (it installs uv), or set DAGSTER_DEPLOY_UV",
            uv_program().display()
        );
        let mut command = command(
            &dagster_deploy(),
            self.home.path(),
            &self.emulator.url(),
            statedir,
        );
        command
            .env("DAGSTER_DEPLOY_UV", uv_program())
            .env("UV_CACHE_DIR", uv_cache())
            // The package index is reached through a proxy whose CA is only in the system store.
            .env("UV_SYSTEM_CERTS", "1");
        command
    }

    /// `start` of a full deployment of the dg project `project`, into `statedir`.
    fn start(&self, statedir: &Path, project: &Path) {
        success(
            self.cli(statedir)
                .args(["start", "--deployment", "prod", "--deployment-type", "full"])
                .arg("--project-dir")
                .arg(project),
        );
    }

    /// `deploy` of the session in `statedir`, waiting for the real load.
    fn deploy(&self, statedir: &Path) -> Output {
        run(self
            .cli(statedir)
            .args(["deploy", "--location-load-timeout", "300"]))
    }

    /// `build-and-push --builder native` on the plain base with the layer cache `cache_dir`.
    fn build(&self, statedir: &Path, cache_dir: &Path, extra: &[&str]) -> Output {
        run(self
            .cli(statedir)
            .args(["build-and-push", "--builder", "native", "--base-image"])
            .arg(&self.base)
            .arg("--cache-dir")
            .arg(cache_dir)
            .args(extra))
    }

    /// The manifest of `image` (`host/repository:tag`), from the registry.
    fn manifest(&self, image: &str) -> Value {
        let (repository, tag) = image
            .strip_prefix(&format!("{}/", self.registry.host()))
            .and_then(|rest| rest.rsplit_once(':'))
            .unwrap_or_else(|| panic!("{image} is not in the test registry"));
        let output = Command::new("curl")
            .args([
                "-sf",
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
            ])
            .arg(format!(
                "http://{}/v2/{repository}/manifests/{tag}",
                self.registry.host()
            ))
            .output()
            .expect("curl runs (scripts/setup.sh installs it)");
        assert!(output.status.success(), "{}", describe(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// The file the registry stores blob `digest` in.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        let found = walk(&self.registry.directory())
            .into_iter()
            .find(|path| path.ends_with(format!("blobs/sha256/{}/{hex}/data", &hex[..2])));
        found.unwrap_or_else(|| panic!("the registry stores no blob {digest}"))
    }
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Copies the fixture `name` into `dir` as a git checkout.
fn checkout(name: &str, dir: &Path) {
    let status = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", fixture(name).display()))
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    commit(dir);
}

fn commit(dir: &Path) {
    if !dir.join(".git").exists() {
        git(dir, &["init", "-q", "-b", "main"]);
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "code"]);
}

/// The image recorded for `location` in `statedir`.
fn recorded_image(statedir: &Path, location: &str) -> String {
    let state = read_json(&statedir.join(format!("location-{location}.json")));
    state["build_output"]["image"]
        .as_str()
        .expect("an image")
        .to_owned()
}

/// How many of `requests` (registry access-log lines) are GETs of one of `base_layers`.
fn base_layer_gets(requests: &[String], base_layers: &[String]) -> usize {
    requests
        .iter()
        .filter(|request| {
            request.starts_with("GET ")
                && base_layers
                    .iter()
                    .any(|digest| request.contains(&format!("/blobs/{digest} ")))
        })
        .count()
}

/// The progress lines (the CLI writes them on stderr).
fn progress(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_plain_base_plus_a_uv_lock_loads_natively_and_a_code_only_rebuild_uploads_only_the_code() {
    let pipeline = PlainPipeline::new();
    let repo = tempfile::tempdir().unwrap();
    checkout("dagster-workspace", repo.path());
    let project = repo.path().join("projects/myproj");
    std::fs::write(
        project.join("build.yaml"),
        format!("registry: {}/code/myproj\n", pipeline.registry.host()),
    )
    .unwrap();
    commit(repo.path());
    let cache = tempfile::tempdir_in("/var/tmp").unwrap();

    let statedir = pipeline.home.path().join("state-1");
    pipeline.start(&statedir, &project);
    let base_layer_digests: Vec<String> = pipeline.manifest(&pipeline.base)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap().to_owned())
        .collect();
    let first = pipeline.build(&statedir, cache.path(), &[]);
    assert!(first.status.success(), "{}", describe(&first));
    // The first build learns the base's Python from its layers.
    let first_requests = pipeline.registry.requests();
    assert!(
        base_layer_gets(&first_requests, &base_layer_digests) > 0,
        "{first_requests:#?}"
    );
    let text = progress(&first);
    assert!(text.contains("built from uv.lock"), "{text}");
    assert!(
        text.contains("dependency layer uploaded; code layer uploaded"),
        "{text}"
    );
    let deploy = pipeline.deploy(&statedir);
    assert!(
        deploy.status.success(),
        "the image must load with the dependencies of its layer:\n{}",
        describe(&deploy)
    );
    let first_image = recorded_image(&statedir, "myproj");
    let first_manifest = pipeline.manifest(&first_image);
    let layers = first_manifest["layers"].as_array().unwrap();
    let base_layers = pipeline.manifest(&pipeline.base)["layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(layers.len(), base_layers + 2, "base, dependencies, code");
    let deps_digest = layers[base_layers]["digest"].as_str().unwrap().to_owned();
    let deps_blob = pipeline.blob_file(&deps_digest);
    let stored = std::fs::metadata(&deps_blob).unwrap().modified().unwrap();

    // A code-only change, built on a machine that never built the layer (an empty cache, as a
    // fresh CI runner has): the layer record in the repository names the layer, so nothing is
    // installed and only the code layer is uploaded.
    std::fs::write(
        project.join("src/myproj/definitions.py"),
        "import dagster as dg\n\n\n@dg.asset\ndef hello_again():\n    return 2\n\n\ndefs = dg.Definitions(assets=[hello_again])\n",
    )
    .unwrap();
    commit(repo.path());
    let fresh_cache = tempfile::tempdir_in("/var/tmp").unwrap();
    let statedir = pipeline.home.path().join("state-2");
    pipeline.start(&statedir, &project);
    let before = pipeline.registry.requests().len();
    let second = pipeline.build(&statedir, fresh_cache.path(), &[]);
    assert!(second.status.success(), "{}", describe(&second));
    // The base's Python comes from the base-facts record the first build pushed, not from the
    // base's layers.
    let second_requests = pipeline.registry.requests()[before..].to_vec();
    assert_eq!(
        base_layer_gets(&second_requests, &base_layer_digests),
        0,
        "a build with an empty cache read the base layers: {second_requests:#?}"
    );
    assert!(
        second_requests.iter().any(|request| request
            .starts_with("GET /v2/code/myproj/manifests/pybase-")
            && request.ends_with(" 200")),
        "{second_requests:#?}"
    );
    let text = progress(&second);
    assert!(
        text.contains("already in the registry: not built"),
        "{text}"
    );
    assert!(!text.contains("installing"), "{text}");
    assert!(
        text.contains("dependency layer unchanged; code layer uploaded"),
        "{text}"
    );
    let second_image = recorded_image(&statedir, "myproj");
    assert_ne!(second_image, first_image);
    let second_layers = pipeline.manifest(&second_image)["layers"].clone();
    assert_eq!(second_layers[base_layers]["digest"], json!(deps_digest));
    assert_ne!(second_layers[base_layers + 1], layers[base_layers + 1]);
    assert_eq!(
        std::fs::metadata(&deps_blob).unwrap().modified().unwrap(),
        stored,
        "the dependency layer's blob was written again"
    );
    let deploy = pipeline.deploy(&statedir);
    assert!(deploy.status.success(), "{}", describe(&deploy));
    let loaded = pipeline.emulator.deployed_locations();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].document["image"], json!(second_image));

    // The same code again: the registry has the layer and the very image (its content key
    // covers the dependency layer), so it is reused as it is.
    let third = pipeline.build(&statedir, cache.path(), &[]);
    assert!(third.status.success(), "{}", describe(&third));
    let text = progress(&third);
    assert!(
        text.contains("already in the registry: not built"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Unchanged {second_image}")),
        "{text}"
    );
}

#[test]
fn without_a_usable_lock_the_native_builder_says_what_the_base_must_hold() {
    let pipeline = PlainPipeline::new();
    let repo = tempfile::tempdir().unwrap();
    checkout("sdist-only", repo.path());
    let registry = format!("{}/code/sdist", pipeline.registry.host());
    std::fs::write(
        repo.path().join("dagster_cloud.yaml"),
        format!(
            "locations:\n  - location_name: sdist\n    code_source:\n      module_name: sdist_defs\n    build:\n      directory: .\n      registry: {registry}\n"
        ),
    )
    .unwrap();
    commit(repo.path());
    let statedir = pipeline.home.path().join("state");
    success(start_legacy(
        &mut pipeline.cli(&statedir),
        &repo.path().join("dagster_cloud.yaml"),
    ));
    let cache = tempfile::tempdir_in("/var/tmp").unwrap();

    // A lock with a package that has no wheel: an error naming it, and the way out.
    let failed = pipeline.build(&statedir, cache.path(), &[]);
    assert_eq!(failed.status.code(), Some(3), "{}", describe(&failed));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("`docopt` has no wheel"), "{stderr}");
    assert!(stderr.contains("--builder docker"), "{stderr}");

    // Opted out: the base is taken to hold the dependencies, and the output says so.
    let opted_out = pipeline.build(&statedir, cache.path(), &["--no-deps-layer"]);
    assert!(opted_out.status.success(), "{}", describe(&opted_out));
    assert!(
        progress(&opted_out).contains(
            "sdist: no dependency layer (--no-deps-layer): the base image must hold the dependencies"
        ),
        "{}",
        progress(&opted_out)
    );

    // Without a lock, the same.
    std::fs::remove_file(repo.path().join("uv.lock")).unwrap();
    let no_lock = pipeline.build(&statedir, cache.path(), &[]);
    assert!(no_lock.status.success(), "{}", describe(&no_lock));
    assert!(
        progress(&no_lock).contains(
            "sdist: no uv.lock, so no dependency layer: the base image must hold the dependencies"
        ),
        "{}",
        progress(&no_lock)
    );
    let manifest = pipeline.manifest(&recorded_image(&statedir, "sdist"));
    let base_layers = pipeline.manifest(&pipeline.base)["layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        base_layers + 1
    );
}
