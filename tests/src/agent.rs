//! A real Dagster+ Hybrid agent, as far as loading code goes: [`RealAgent`] takes a location's
//! deploy document, pulls its image from a loopback registry, unpacks it, starts the code server
//! the way `dagster-cloud`'s Docker and Kubernetes user-code launchers do, and reports whether
//! the code loaded or the code server's own error.
//!
//! What the launchers do, and what we do alike (read from `dagster_cloud` 1.13):
//! * the command is the image's `Entrypoint` followed by `dagster api grpc` (the image's `Cmd` is
//!   replaced), or by `<executable_path> -m dagster api grpc` when the document has one;
//! * the working directory and the environment are the image's (`WorkingDir`, `Env`, `User`),
//!   plus the launcher's variables: `DAGSTER_LOCATION_NAME`, `DAGSTER_CLI_API_GRPC_LAZY_LOAD_USER_CODE=1`,
//!   `DAGSTER_CLI_API_GRPC_PORT`, `DAGSTER_CONTAINER_CONTEXT`, `DAGSTER_CURRENT_IMAGE`, and one
//!   `DAGSTER_CLI_API_GRPC_*` variable per set field of the document (`MODULE_NAME`,
//!   `PACKAGE_NAME`, `PYTHON_FILE`, `AUTOLOAD_DEFS_MODULE_NAME`, `WORKING_DIRECTORY`,
//!   `ATTRIBUTE`, and `USE_PYTHON_ENVIRONMENT_ENTRY_POINT=1` with `executable_path`); the
//!   container context's `docker` and `k8s` `env_vars` that carry a value are added too;
//! * the agent waits for the server to answer, then lists its repositories: with lazy loading
//!   the server starts even when the code does not import, and the import error comes back
//!   from that call. We run `dagster api grpc-health-check`, then list the repositories with the
//!   image's own `dagster` (`DagsterGrpcClient.list_repositories`, what the agent calls).
//!
//! Deliberate differences: the server binds `127.0.0.1` (`DAGSTER_CLI_API_GRPC_HOST`), not
//! `0.0.0.0`, and shares the host's network; there is no `DAGSTER_INSTANCE_REF` and no
//! `DAGSTER_INJECT_ENV_VARS_FROM_INSTANCE` (they need a Dagster+ instance; without one the
//! server fails to start); the server is stopped once its load result is known.
//!
//! How the image runs without a container runtime: each layer blob is downloaded once (digest
//! checked) and unpacked with GNU tar into its own directory of a cache shared by every run on
//! the machine (`/var/tmp/dagster-deploy-agent-layers`, or `DAGSTER_DEPLOY_AGENT_CACHE`),
//! whiteouts turned into overlayfs ones; the layers are stacked with an overlay mount, as
//! containerd and Docker's overlay2 do, so a layer that leaves out a parent directory shows the
//! same damage it would there. `unshare --mount --pid --fork --kill-child` gives the server a
//! private mount and PID namespace (`/proc` and `/dev` mounted in it, nothing visible outside),
//! `unshare --root --wd` the image's root and working directory; the checks run in the same
//! namespaces through `nsenter`. Needs root, util-linux and overlayfs.

use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::emulator::{ChainedError, LoadError};
use crate::error::{Error, Result};

/// The machine-wide cache of unpacked layers, unless `DAGSTER_DEPLOY_AGENT_CACHE` names another.
pub const DEFAULT_LAYER_CACHE: &str = "/var/tmp/dagster-deploy-agent-layers";
/// Unpacked layers unused for this long are removed when an agent starts.
const CACHE_MAX_AGE: Duration = Duration::from_secs(3 * 24 * 3600);
/// The manifest media types a pull accepts.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";
/// Lines of the code server's output kept in a failure message.
const LOG_TAIL_LINES: usize = 40;

/// Lists the repositories of a running code server the way the agent does, and prints the
/// result (or the load error, with its causes) as JSON on stdout.
const LIST_REPOSITORIES: &str = r#"
import json, sys
from dagster._grpc.client import DagsterGrpcClient
from dagster._serdes import deserialize_value
from dagster._utils.error import SerializableErrorInfo
result = deserialize_value(DagsterGrpcClient(port=int(sys.argv[1]), host="127.0.0.1").list_repositories())
def info(error):
    if error is None:
        return None
    return {"message": error.message, "stack": list(error.stack), "cls_name": error.cls_name,
            "cause": info(error.cause), "context": info(error.context)}
if isinstance(result, SerializableErrorInfo):
    print(json.dumps({"error": info(result)}))
else:
    print(json.dumps({"repositories": [symbol.repository_name for symbol in result.repository_symbols]}))
"#;

/// Starts the overlay, `/proc` and `/dev` inside the private mount namespace, then hands over to
/// `env -i` with the image's environment. Arguments: merged, lowerdirs, upper, work, cwd, then
/// the `env` arguments.
const MOUNT_SCRIPT: &str = r#"set -eu
merged=$1 lower=$2 upper=$3 work=$4 cwd=$5
shift 5
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$merged"
mkdir -p "$merged/proc" "$merged/dev" "$merged$cwd"
mount -t proc proc "$merged/proc"
mount --rbind /dev "$merged/dev"
exec /usr/bin/env -i "$@"
"#;

/// How the agent behaves.
#[derive(Debug, Clone)]
pub struct RealAgentConfig {
    /// Where unpacked layers are cached across runs.
    pub layer_cache: PathBuf,
    /// How long a code server may take to answer.
    pub startup_timeout: Duration,
}

impl Default for RealAgentConfig {
    fn default() -> Self {
        Self {
            layer_cache: std::env::var_os("DAGSTER_DEPLOY_AGENT_CACHE")
                .map_or_else(|| PathBuf::from(DEFAULT_LAYER_CACHE), PathBuf::from),
            startup_timeout: Duration::from_secs(180),
        }
    }
}

/// The result of loading one location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    /// The code server loaded the code and lists these repositories.
    Loaded {
        /// Repository names, e.g. `__repository__` for a `Definitions` object.
        repositories: Vec<String>,
    },
    /// The image could not be pulled or started, or the code did not load.
    Failed(LoadError),
}

/// Loads locations from their images; see the module documentation.
#[derive(Debug)]
pub struct RealAgent {
    config: RealAgentConfig,
    work: tempfile::TempDir,
    servers: AtomicU64,
    /// Serialises unpacking into the cache within this process (other processes are handled by
    /// unpacking into a temporary directory and renaming it).
    unpacking: Mutex<()>,
}

impl RealAgent {
    /// Checks the tools and privileges it needs and prunes the layer cache.
    pub fn new(config: RealAgentConfig) -> Result<RealAgent> {
        let setup = |reason: String| Error::AgentSetup { reason };
        for tool in ["setpriv", "unshare", "nsenter", "mount", "tar", "mknod"] {
            if !["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
                .iter()
                .any(|dir| Path::new(dir).join(tool).is_file())
            {
                return Err(setup(format!(
                    "`{tool}` is missing: install util-linux, mount, tar and coreutils (scripts/setup.sh does)"
                )));
            }
        }
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|error| setup(format!("cannot run `id -u`: {error}")))?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err(setup(
                "the real agent mounts and chroots, so it needs root".to_owned(),
            ));
        }
        std::fs::create_dir_all(&config.layer_cache).map_err(|error| {
            setup(format!(
                "cannot create the layer cache {}: {error}",
                config.layer_cache.display()
            ))
        })?;
        prune_cache(&config.layer_cache);
        let work = tempfile::Builder::new()
            .prefix("dagster-deploy-agent-")
            .tempdir_in("/var/tmp")
            .map_err(|error| setup(format!("cannot create a work directory: {error}")))?;
        Ok(RealAgent {
            config,
            work,
            servers: AtomicU64::new(0),
            unpacking: Mutex::new(()),
        })
    }

    /// Pulls, starts and checks the location described by `document` (a deploy document's
    /// location entry), then stops its code server.
    pub fn load(&self, document: &Value) -> LoadOutcome {
        let server = match self.start(document) {
            Ok(server) => server,
            Err(error) => return LoadOutcome::Failed(error),
        };
        if let Err(error) = server.health_check() {
            return LoadOutcome::Failed(error);
        }
        match server.list_repositories() {
            Ok(repositories) => LoadOutcome::Loaded { repositories },
            Err(error) => LoadOutcome::Failed(error),
        }
    }

    /// Pulls the document's image and starts its code server; returns once the server accepts
    /// connections, or the server's own output if it exits first.
    pub fn start(&self, document: &Value) -> std::result::Result<CodeServer, LoadError> {
        let location = document
            .get("location_name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let image = document
            .get("image")
            .and_then(Value::as_str)
            .ok_or_else(|| agent_error(format!("location {location} has no image to run")))?;
        let pulled = self.pull(image)?;
        let mut launch = Launch::new(document, &location, image, &pulled.config)?;
        let port = free_port()?;
        launch
            .process
            .env
            .push(("DAGSTER_CLI_API_GRPC_PORT".to_owned(), port.to_string()));
        let (mut command, directory) = self.container(&pulled, &launch.process)?;
        let log_path = directory.join("server.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|error| agent_error(format!("cannot create the server log: {error}")))?;
        let log_err = log
            .try_clone()
            .map_err(|error| agent_error(format!("cannot create the server log: {error}")))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|error| agent_error(format!("cannot run unshare: {error}")))?;
        let mut server = CodeServer {
            child,
            namespace_pid: None,
            port,
            env: launch.process.env,
            prefix: launch.prefix,
            directory,
            log: log_path,
        };
        server.wait_until_serving(self.config.startup_timeout)?;
        Ok(server)
    }

    /// Runs `args` in `image` (pulled and stacked as for a code server, with the image's
    /// environment, working directory and user) and returns its stdout; a failure carries its
    /// output.
    pub fn run(&self, image: &str, args: &[&str]) -> std::result::Result<String, LoadError> {
        let pulled = self.pull(image)?;
        let mut process = Process::from_config(image, &pulled.config)?;
        process.args = args.iter().map(|arg| (*arg).to_owned()).collect();
        let (mut command, directory) = self.container(&pulled, &process)?;
        let output = command
            .stdin(Stdio::null())
            .output()
            .map_err(|error| agent_error(format!("cannot run unshare: {error}")));
        if !is_mounted_below(&directory) {
            let _ = std::fs::remove_dir_all(&directory);
        }
        let output = output?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(agent_error(format!(
                "`{}` in {image} failed ({}):\n{}{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    /// The command that runs `process` on the layers of `pulled` stacked with overlayfs, in
    /// private mount and PID namespaces, and the directory holding its upper layer.
    fn container(
        &self,
        pulled: &PulledImage,
        process: &Process,
    ) -> std::result::Result<(Command, PathBuf), LoadError> {
        let number = self.servers.fetch_add(1, Ordering::Relaxed);
        let directory = self.work.path().join(format!("container-{number}"));
        for name in ["upper", "work", "merged"] {
            std::fs::create_dir_all(directory.join(name)).map_err(|error| {
                agent_error(format!("cannot create {}: {error}", directory.display()))
            })?;
        }
        let merged = directory.join("merged");
        let lower: Vec<String> = pulled
            .layers
            .iter()
            .rev()
            .map(|layer| layer.display().to_string())
            .collect();
        // `setpriv --pdeathsig` ends the container with the thread that started it, even if
        // this process dies without cleaning up.
        let mut command = Command::new("setpriv");
        command
            .args([
                "--pdeathsig",
                "SIGKILL",
                "--",
                "unshare",
                "--mount",
                "--pid",
                "--fork",
                "--kill-child",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                "-c",
                MOUNT_SCRIPT,
                "sh",
            ])
            .arg(&merged)
            .arg(lower.join(":"))
            .arg(directory.join("upper"))
            .arg(directory.join("work"))
            .arg(&process.cwd)
            .args(
                process
                    .env
                    .iter()
                    .map(|(name, value)| format!("{name}={value}")),
            )
            .arg("/usr/bin/unshare")
            .arg(format!("--root={}", merged.display()))
            .arg(format!("--wd={}", process.cwd));
        if let Some((uid, gid)) = &process.user {
            command.arg(format!("--setuid={uid}"));
            command.arg(format!("--setgid={gid}"));
        }
        command.arg("--").args(&process.args);
        Ok((command, directory))
    }

    /// Fetches the image's manifest and config, and makes sure each layer is unpacked in the
    /// cache; returns the config and the layer directories, bottom first.
    fn pull(&self, image: &str) -> std::result::Result<PulledImage, LoadError> {
        let reference = ImageName::parse(image)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| agent_error(format!("cannot start a runtime: {error}")))?;
        runtime.block_on(async {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(600))
                .build()
                .map_err(|error| agent_error(format!("cannot build an HTTP client: {error}")))?;
            let manifest = reference.fetch_manifest(&http).await?;
            let config_digest = manifest
                .pointer("/config/digest")
                .and_then(Value::as_str)
                .ok_or_else(|| agent_error(format!("{image}: the manifest has no config")))?;
            let config_bytes = reference.fetch_blob(&http, config_digest).await?;
            let config: Value = serde_json::from_slice(&config_bytes).map_err(|error| {
                agent_error(format!("{image}: the config is not JSON: {error}"))
            })?;
            let mut layers = Vec::new();
            for layer in manifest
                .get("layers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let digest = layer
                    .get("digest")
                    .and_then(Value::as_str)
                    .ok_or_else(|| agent_error(format!("{image}: a layer has no digest")))?;
                layers.push(self.unpacked_layer(&http, &reference, digest).await?);
            }
            Ok(PulledImage { config, layers })
        })
    }

    /// The cache directory holding `digest` unpacked, downloading and unpacking it if needed.
    async fn unpacked_layer(
        &self,
        http: &reqwest::Client,
        reference: &ImageName,
        digest: &str,
    ) -> std::result::Result<PathBuf, LoadError> {
        let name = digest.replace(':', "-");
        let target = self.config.layer_cache.join(&name);
        if target.is_dir() {
            touch(&target);
            return Ok(target);
        }
        let bytes = reference.fetch_blob(http, digest).await?;
        let _guard = self
            .unpacking
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if target.is_dir() {
            return Ok(target);
        }
        let staging = tempfile::Builder::new()
            .prefix(&format!("{name}.unpacking-"))
            .tempdir_in(&self.config.layer_cache)
            .map_err(|error| agent_error(format!("cannot create a cache directory: {error}")))?;
        let blob = staging.path().join("blob");
        let rootfs = staging.path().join("rootfs");
        std::fs::write(&blob, &bytes)
            .and_then(|()| std::fs::create_dir(&rootfs))
            .map_err(|error| agent_error(format!("cannot write layer {digest}: {error}")))?;
        let output = Command::new("tar")
            .args(["--numeric-owner", "--same-permissions", "-xf"])
            .arg(&blob)
            .arg("-C")
            .arg(&rootfs)
            .output()
            .map_err(|error| agent_error(format!("cannot run tar: {error}")))?;
        if !output.status.success() {
            return Err(agent_error(format!(
                "cannot unpack layer {digest}: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        convert_whiteouts(&rootfs, &rootfs)?;
        match std::fs::rename(&rootfs, &target) {
            Ok(()) => Ok(target),
            // Another process unpacked the same layer first; its copy is as good as ours.
            Err(_) if target.is_dir() => Ok(target),
            Err(error) => Err(agent_error(format!(
                "cannot move layer {digest} into the cache: {error}"
            ))),
        }
    }
}

/// A pulled image: its config and its unpacked layers, bottom first.
struct PulledImage {
    config: Value,
    layers: Vec<PathBuf>,
}

/// What runs in a container: command, environment, working directory, user.
struct Process {
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
    /// `(uid, gid)` from the image's `User`, when set.
    user: Option<(String, String)>,
}

impl Process {
    /// The image's own settings: `Env` (plus `HOME`, which Docker sets when the image does
    /// not), `WorkingDir` (default `/`), numeric `User`, and `Entrypoint` + `Cmd`.
    fn from_config(image: &str, config: &Value) -> std::result::Result<Process, LoadError> {
        let container = config.get("config").cloned().unwrap_or(Value::Null);
        let mut env = Environment::default();
        for entry in strings(container.get("Env")) {
            match entry.split_once('=') {
                Some((name, value)) => env.set(name, value),
                None => env.set(&entry, ""),
            }
        }
        if !env.contains("HOME") {
            env.set("HOME", "/root");
        }
        let cwd = container
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|directory| !directory.is_empty())
            .unwrap_or("/")
            .to_owned();
        let user = match container
            .get("User")
            .and_then(Value::as_str)
            .filter(|user| !user.is_empty())
        {
            None => None,
            Some(user) => {
                let (uid, gid) = user.split_once(':').unwrap_or((user, user));
                if !uid.chars().chain(gid.chars()).all(|c| c.is_ascii_digit()) {
                    return Err(agent_error(format!(
                        "{image}: the test agent runs only numeric users (`uid[:gid]`), not `{user}`"
                    )));
                }
                Some((uid.to_owned(), gid.to_owned()))
            }
        };
        let mut args = strings(container.get("Entrypoint"));
        args.extend(strings(container.get("Cmd")));
        Ok(Process {
            args,
            env: env.0,
            cwd,
            user,
        })
    }
}

/// The strings of a JSON array (others are skipped); nothing for a missing value.
fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// How the launcher starts one code server.
struct Launch {
    /// `[executable_path, "-m"]`, or nothing: what goes before `dagster` in every command.
    prefix: Vec<String>,
    /// The image's process with the launcher's command and variables.
    process: Process,
}

impl Launch {
    fn new(
        document: &Value,
        location: &str,
        image: &str,
        config: &Value,
    ) -> std::result::Result<Launch, LoadError> {
        let mut process = Process::from_config(image, config)?;
        // Like the launchers, an empty string counts as unset.
        let text = |value: Option<&Value>| {
            value
                .and_then(Value::as_str)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        let field = |key: &str| text(document.get(key));
        let source_field = |key: &str| text(document.pointer(&format!("/code_source/{key}")));
        let executable_path = field("executable_path");
        let prefix: Vec<String> = executable_path
            .iter()
            .map(String::clone)
            .chain(executable_path.iter().map(|_| "-m".to_owned()))
            .collect();
        // The launchers replace the image's Cmd and keep its Entrypoint.
        let mut args = strings(config.pointer("/config/Entrypoint"));
        args.extend(prefix.iter().cloned());
        args.extend(["dagster", "api", "grpc"].map(str::to_owned));
        process.args = args;

        let mut env = Environment(std::mem::take(&mut process.env));
        let container_context = document
            .get("container_context")
            .cloned()
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        for platform in ["docker", "k8s"] {
            for entry in strings(container_context.pointer(&format!("/{platform}/env_vars"))) {
                if let Some((name, value)) = entry.split_once('=') {
                    env.set(name, value);
                }
            }
        }
        env.set("DAGSTER_LOCATION_NAME", location);
        env.set("DAGSTER_CLI_API_GRPC_LAZY_LOAD_USER_CODE", "1");
        env.set("DAGSTER_CLI_API_GRPC_HOST", "127.0.0.1");
        env.set("DAGSTER_CONTAINER_CONTEXT", &container_context.to_string());
        env.set("DAGSTER_CURRENT_IMAGE", image);
        for (key, variable) in [
            ("python_file", "DAGSTER_CLI_API_GRPC_PYTHON_FILE"),
            ("module_name", "DAGSTER_CLI_API_GRPC_MODULE_NAME"),
            ("package_name", "DAGSTER_CLI_API_GRPC_PACKAGE_NAME"),
            (
                "autoload_defs_module_name",
                "DAGSTER_CLI_API_GRPC_AUTOLOAD_DEFS_MODULE_NAME",
            ),
        ] {
            if let Some(value) = source_field(key) {
                env.set(variable, &value);
            }
        }
        if let Some(value) = field("working_directory") {
            env.set("DAGSTER_CLI_API_GRPC_WORKING_DIRECTORY", &value);
        }
        if let Some(value) = field("attribute") {
            env.set("DAGSTER_CLI_API_GRPC_ATTRIBUTE", &value);
        }
        if executable_path.is_some() {
            env.set(
                "DAGSTER_CLI_API_GRPC_USE_PYTHON_ENVIRONMENT_ENTRY_POINT",
                "1",
            );
        }
        process.env = env.0;
        Ok(Launch { prefix, process })
    }
}

/// Variables in the order they were first set; setting one again replaces its value in place.
#[derive(Default)]
struct Environment(Vec<(String, String)>);

impl Environment {
    fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(existing, _)| existing == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.0.push((name.to_owned(), value.to_owned())),
        }
    }

    fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(existing, _)| existing == name)
    }
}

/// A running code server; stopped (with its namespaces and mounts) and its files removed on drop.
#[derive(Debug)]
pub struct CodeServer {
    child: Child,
    /// The host PID of the namespace's first process: the code server itself.
    namespace_pid: Option<u32>,
    port: u16,
    env: Vec<(String, String)>,
    prefix: Vec<String>,
    directory: PathBuf,
    log: PathBuf,
}

impl CodeServer {
    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    fn wait_until_serving(&mut self, timeout: Duration) -> std::result::Result<(), LoadError> {
        let deadline = Instant::now() + timeout;
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if self.namespace_pid.is_none() {
                self.namespace_pid = first_child(self.child.id());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(LoadError {
                    message: format!(
                        "The code server exited ({status}) before serving. Its output:\n{}",
                        self.log_tail()
                    ),
                    stack: Vec::new(),
                    error_chain: Vec::new(),
                });
            }
            if self.namespace_pid.is_some()
                && TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(agent_error(format!(
                    "The code server did not listen on {address} within {} s. Its output:\n{}",
                    timeout.as_secs(),
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `args` inside the server's namespaces, root and working directory, with its
    /// environment; returns stdout, or a message with stderr.
    fn run_inside(&self, args: &[String]) -> std::result::Result<String, String> {
        let pid = self
            .namespace_pid
            .ok_or_else(|| "the code server's process is unknown".to_owned())?;
        let output = Command::new("nsenter")
            .arg(format!("--target={pid}"))
            .args(["--mount", "--pid", "--root", "--wd", "--"])
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("cannot run nsenter: {error}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "`{}` failed ({}):\n{}{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// `dagster api grpc-health-check` against the server, from inside the image.
    pub fn health_check(&self) -> std::result::Result<(), LoadError> {
        let mut args = self.prefix.clone();
        args.extend(
            [
                "dagster",
                "api",
                "grpc-health-check",
                "--port",
                &self.port.to_string(),
                "--host",
                "127.0.0.1",
            ]
            .map(str::to_owned),
        );
        self.run_inside(&args).map(drop).map_err(|message| {
            agent_error(format!(
                "{message}\nThe code server's output:\n{}",
                self.log_tail()
            ))
        })
    }

    /// Lists the server's repositories as the agent does; a load error comes back as the
    /// code server reported it.
    pub fn list_repositories(&self) -> std::result::Result<Vec<String>, LoadError> {
        let python = match self.prefix.first() {
            Some(executable) => executable.clone(),
            None => self.dagster_interpreter(),
        };
        let output = self
            .run_inside(&[
                python,
                "-c".to_owned(),
                LIST_REPOSITORIES.to_owned(),
                self.port.to_string(),
            ])
            .map_err(agent_error)?;
        let result: Value = serde_json::from_str(output.trim()).map_err(|error| {
            agent_error(format!(
                "the repository listing is not JSON ({error}): {output}"
            ))
        })?;
        if let Some(error) = result.get("error") {
            return Err(python_error(error));
        }
        Ok(result
            .get("repositories")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect())
    }

    /// The interpreter of the image's `dagster` script (its `#!` line), found on the image's
    /// PATH through the server's root; `python3` if there is none.
    fn dagster_interpreter(&self) -> String {
        let Some(pid) = self.namespace_pid else {
            return "python3".to_owned();
        };
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        let path = self
            .env
            .iter()
            .find(|(name, _)| name == "PATH")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        for directory in path.split(':').filter(|directory| !directory.is_empty()) {
            let script = root.join(directory.trim_start_matches('/')).join("dagster");
            let mut head = [0u8; 256];
            let Ok(mut file) = std::fs::File::open(&script) else {
                continue;
            };
            let read = file.read(&mut head).unwrap_or(0);
            let first_line = String::from_utf8_lossy(&head[..read])
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            if let Some(interpreter) = first_line.strip_prefix("#!") {
                let interpreter = interpreter.trim();
                if !interpreter.is_empty() && !interpreter.contains(' ') {
                    return interpreter.to_owned();
                }
            }
        }
        "python3".to_owned()
    }
}

impl Drop for CodeServer {
    fn drop(&mut self) {
        // `--kill-child` takes the whole PID namespace down with unshare; its mounts go with
        // the mount namespace, so nothing is mounted below `directory` afterwards.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !is_mounted_below(&self.directory) {
            let _ = std::fs::remove_dir_all(&self.directory);
        }
    }
}

/// A loopback registry image reference: `127.0.0.1:PORT/repo[:tag|@digest]`.
struct ImageName {
    registry: String,
    repository: String,
    reference: String,
}

impl ImageName {
    fn parse(image: &str) -> std::result::Result<ImageName, LoadError> {
        let (registry, rest) = image
            .split_once('/')
            .ok_or_else(|| agent_error(format!("`{image}` names no registry")))?;
        let host = registry.split(':').next().unwrap_or(registry);
        if !matches!(host, "127.0.0.1" | "localhost") {
            return Err(agent_error(format!(
                "the test agent pulls only from loopback registries, not {registry}"
            )));
        }
        let (repository, reference) = match rest.split_once('@') {
            Some((repository, digest)) => (repository, digest),
            None => match rest.rsplit_once(':') {
                Some((repository, tag)) if !tag.contains('/') => (repository, tag),
                _ => (rest, "latest"),
            },
        };
        Ok(ImageName {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            reference: reference.to_owned(),
        })
    }

    fn url(&self, kind: &str, reference: &str) -> String {
        format!(
            "http://{}/v2/{}/{kind}/{reference}",
            self.registry, self.repository
        )
    }

    async fn get(
        &self,
        http: &reqwest::Client,
        url: &str,
        accept: Option<&str>,
    ) -> std::result::Result<Vec<u8>, LoadError> {
        let mut request = http.get(url);
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request
            .send()
            .await
            .map_err(|error| agent_error(format!("GET {url}: {error}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| agent_error(format!("GET {url}: {error}")))?;
        if !status.is_success() {
            return Err(agent_error(format!(
                "GET {url}: {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(body.to_vec())
    }

    /// The image manifest, resolving an index to linux/amd64.
    async fn fetch_manifest(
        &self,
        http: &reqwest::Client,
    ) -> std::result::Result<Value, LoadError> {
        let mut reference = self.reference.clone();
        for _ in 0..2 {
            let url = self.url("manifests", &reference);
            let bytes = self.get(http, &url, Some(MANIFEST_ACCEPT)).await?;
            let manifest: Value = serde_json::from_slice(&bytes)
                .map_err(|error| agent_error(format!("GET {url}: not JSON: {error}")))?;
            let Some(children) = manifest.get("manifests").and_then(Value::as_array) else {
                return Ok(manifest);
            };
            reference = children
                .iter()
                .find(|child| {
                    child.pointer("/platform/os").and_then(Value::as_str) == Some("linux")
                        && child
                            .pointer("/platform/architecture")
                            .and_then(Value::as_str)
                            == Some("amd64")
                })
                .and_then(|child| child.get("digest").and_then(Value::as_str))
                .ok_or_else(|| agent_error(format!("{url}: no linux/amd64 image in the index")))?
                .to_owned();
        }
        Err(agent_error(format!(
            "{}/{}: indexes nested too deeply",
            self.registry, self.repository
        )))
    }

    /// A blob, checked against its digest.
    async fn fetch_blob(
        &self,
        http: &reqwest::Client,
        digest: &str,
    ) -> std::result::Result<Vec<u8>, LoadError> {
        let url = self.url("blobs", digest);
        let bytes = self.get(http, &url, None).await?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if actual != digest {
            return Err(agent_error(format!(
                "GET {url}: the blob hashes to {actual}"
            )));
        }
        Ok(bytes)
    }
}

/// Turns OCI whiteout files (`.wh.NAME`) into overlayfs ones (a 0/0 character device). Opaque
/// directories (`.wh..wh..opq`) would need an extended attribute and are refused.
fn convert_whiteouts(directory: &Path, root: &Path) -> std::result::Result<(), LoadError> {
    let entries = std::fs::read_dir(directory)
        .map_err(|error| agent_error(format!("cannot read {}: {error}", directory.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            convert_whiteouts(&path, root)?;
        } else if name == ".wh..wh..opq" {
            return Err(agent_error(format!(
                "layer directory {} is opaque, which the test agent does not support",
                directory.strip_prefix(root).unwrap_or(directory).display()
            )));
        } else if let Some(hidden) = name.strip_prefix(".wh.") {
            let _ = std::fs::remove_file(&path);
            let status = Command::new("mknod")
                .arg(directory.join(hidden))
                .args(["c", "0", "0"])
                .status()
                .map_err(|error| agent_error(format!("cannot run mknod: {error}")))?;
            if !status.success() {
                return Err(agent_error(format!(
                    "mknod of the whiteout {} failed",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Marks a cache entry as used, so pruning keeps it.
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Removes cache entries unused for [`CACHE_MAX_AGE`], and staging directories of unpacks that
/// were interrupted more than a day ago.
fn prune_cache(cache: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let age = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .unwrap_or_default();
        let staging = entry.file_name().to_string_lossy().contains(".unpacking-");
        let limit = if staging {
            Duration::from_secs(24 * 3600)
        } else {
            CACHE_MAX_AGE
        };
        if age > limit && !is_mounted_below(&entry.path()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether anything is mounted at or below `path` in our mount namespace (then a recursive
/// delete must not run).
fn is_mounted_below(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    let prefix = path.display().to_string();
    mounts.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|mount_point| mount_point.starts_with(&prefix))
    })
}

/// The first child of `pid` (unshare's forked child: PID 1 of the new namespace).
fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn free_port() -> std::result::Result<u16, LoadError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| agent_error(format!("no free loopback port: {error}")))
}

/// A failure of the agent itself (pull, unpack, start), reported like a load error.
fn agent_error(message: impl Into<String>) -> LoadError {
    LoadError {
        message: message.into(),
        stack: Vec::new(),
        error_chain: Vec::new(),
    }
}

/// A `SerializableErrorInfo` as JSON (from [`LIST_REPOSITORIES`]) as a `PythonError`: message
/// and stack, then the causes (explicit) and contexts (implicit), as Dagster+'s GraphQL shows
/// them.
fn python_error(info: &Value) -> LoadError {
    let text = |value: &Value, key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let stack = |value: &Value| -> Vec<String> {
        value
            .get("stack")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let mut error_chain = Vec::new();
    let mut current = info;
    loop {
        let (next, is_explicit_link) = match (current.get("cause"), current.get("context")) {
            (Some(cause), _) if !cause.is_null() => (cause, true),
            (_, Some(context)) if !context.is_null() => (context, false),
            _ => break,
        };
        error_chain.push(ChainedError {
            is_explicit_link,
            message: text(next, "message"),
            stack: stack(next),
        });
        current = next;
    }
    LoadError {
        message: text(info, "message"),
        stack: stack(info),
        error_chain,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use serde_json::json;

    #[test]
    fn the_launch_matches_what_the_docker_and_k8s_launchers_pass() {
        let config = json!({"config": {
            "Env": ["PATH=/opt/venv/bin:/usr/bin", "PYTHONPATH=/app/src"],
            "Entrypoint": ["/usr/bin/tini", "--"],
            "Cmd": ["python3"],
            "WorkingDir": "/app"
        }});
        let document = json!({
            "location_name": "sales",
            "image": "127.0.0.1:5000/code:abc",
            "code_source": {"module_name": "sales.definitions"},
            "working_directory": "/app/src",
            "executable_path": "/opt/venv/bin/python",
            "container_context": {"docker": {"env_vars": ["A=1", "FROM_HOST"]}},
        });
        let launch = Launch::new(&document, "sales", "127.0.0.1:5000/code:abc", &config).unwrap();
        assert_eq!(
            launch.process.args,
            [
                "/usr/bin/tini",
                "--",
                "/opt/venv/bin/python",
                "-m",
                "dagster",
                "api",
                "grpc"
            ]
        );
        assert_eq!(launch.process.cwd, "/app");
        let env: BTreeMap<_, _> = launch.process.env.iter().cloned().collect();
        assert_eq!(env["PYTHONPATH"], "/app/src");
        assert_eq!(env["A"], "1");
        assert!(!env.contains_key("FROM_HOST"));
        assert_eq!(env["DAGSTER_CLI_API_GRPC_MODULE_NAME"], "sales.definitions");
        assert_eq!(env["DAGSTER_CLI_API_GRPC_WORKING_DIRECTORY"], "/app/src");
        assert_eq!(
            env["DAGSTER_CLI_API_GRPC_USE_PYTHON_ENVIRONMENT_ENTRY_POINT"],
            "1"
        );
        assert_eq!(env["DAGSTER_CLI_API_GRPC_LAZY_LOAD_USER_CODE"], "1");
        assert_eq!(env["DAGSTER_CLI_API_GRPC_HOST"], "127.0.0.1");
        assert_eq!(env["HOME"], "/root");
        assert!(!env.contains_key("DAGSTER_CLI_API_GRPC_PACKAGE_NAME"));
    }

    #[test]
    fn load_errors_keep_their_causes_in_order() {
        let error = python_error(&json!({
            "message": "DagsterUserCodeLoadError: boom\n",
            "stack": ["  File a\n"],
            "cause": {"message": "ModuleNotFoundError: No module named 'x'\n", "stack": [], "cause": null,
                      "context": {"message": "KeyError\n", "stack": ["  File b\n"], "cause": null, "context": null}},
            "context": null
        }));
        assert_eq!(error.message, "DagsterUserCodeLoadError: boom\n");
        assert_eq!(error.error_chain.len(), 2);
        assert!(error.error_chain[0].is_explicit_link);
        assert!(!error.error_chain[1].is_explicit_link);
        assert_eq!(error.error_chain[1].stack, ["  File b\n"]);
        assert_eq!(
            error.error_chain[0].message,
            "ModuleNotFoundError: No module named 'x'\n"
        );
    }

    #[test]
    fn only_loopback_images_are_pulled() {
        let name = ImageName::parse("127.0.0.1:5000/team/code:v1").unwrap();
        assert_eq!(
            (name.repository.as_str(), name.reference.as_str()),
            ("team/code", "v1")
        );
        let name = ImageName::parse("localhost:5000/code@sha256:ab").unwrap();
        assert_eq!(name.reference, "sha256:ab");
        assert!(ImageName::parse("ghcr.io/acme/code:v1").is_err());
    }
}
