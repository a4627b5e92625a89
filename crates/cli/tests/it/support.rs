//! What the test modules share: a sandbox directory per test (project, state directory and a
//! private HOME), running the real binary with a clean environment, and the insta filters that
//! redact paths, ports and clocks from what it prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The binary under test, built by cargo for this test target.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_dagster-deploy");

/// A distinctive API token: no output may ever contain it.
pub(crate) const TOKEN: &str = "user:cli-it-Sekr1t-7c4f9e2a8b";

/// The `PATH` the binary gets unless a test replaces it.
pub(crate) const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The standard project: two locations, each with its own build directory and registry.
pub(crate) const TWO_LOCATIONS: &str = "\
locations:
  - location_name: alpha
    code_source:
      package_name: alpha
    build:
      directory: alpha
      registry: registry.example.com/team/alpha
  - location_name: beta
    code_source:
      module_name: beta.definitions
    build:
      directory: beta
      registry: registry.example.com/team/beta
";

/// Insta filters: sandbox paths, loopback ports, and every clock the CLI prints.
pub(crate) const FILTERS: &[(&str, &str)] = &[
    (r"(?m)^\[\d{2}:\d{2}:\d{2}\] ", ""),
    (r#"(/[^\s/:"'\]]+)*/dd-it-[A-Za-z0-9_]+"#, "[SANDBOX]"),
    (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
    (
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z",
        "[TIMESTAMP]",
    ),
    (
        r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC",
        "[DATE TIME UTC]        ",
    ),
    (
        r"[A-Z][a-z]{2} \d{1,2}, \d{4} at \d{2}:\d{2} [AP]M \(UTC\)",
        "[DATE TIME (UTC)]",
    ),
];

/// Snapshots a text with the [`FILTERS`] applied.
macro_rules! snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({ filters => $crate::support::FILTERS.to_vec() }, {
            insta::assert_snapshot!($name, $text);
        })
    };
}
pub(crate) use snapshot;

/// A temp directory holding `home/`, `proj/` and (once started) `state/`; the binary runs
/// with it as the working directory and as the parent of its HOME.
pub(crate) struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// An empty sandbox with an empty HOME.
    pub(crate) fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("dd-it-")
            .tempdir()
            .expect("a temp dir");
        std::fs::create_dir(dir.path().join("home")).expect("create home");
        Sandbox { dir }
    }

    /// A sandbox with [`TWO_LOCATIONS`] at `proj/dagster_cloud.yaml` and both build dirs.
    pub(crate) fn with_project() -> Self {
        let sandbox = Self::new();
        sandbox.write("proj/dagster_cloud.yaml", TWO_LOCATIONS);
        sandbox.write("proj/alpha/Dockerfile", "FROM python:3.12-slim\n");
        sandbox.write("proj/beta/Dockerfile", "FROM python:3.12-slim\n");
        sandbox
    }

    /// A sandbox whose `proj/dagster_cloud.yaml` has `count` locations `loc-0000`, … each
    /// with its own registry.
    pub(crate) fn with_locations(count: usize) -> Self {
        let sandbox = Self::new();
        let mut yaml = String::from("locations:\n");
        for index in 0..count {
            yaml.push_str(&format!(
                "  - location_name: loc-{index:04}\n    code_source: {{package_name: pkg_{index}}}\n    build: {{registry: registry.example.com/team/loc-{index:04}}}\n"
            ));
        }
        sandbox.write("proj/dagster_cloud.yaml", &yaml);
        sandbox
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    pub(crate) fn statedir(&self) -> PathBuf {
        self.path().join("state")
    }

    pub(crate) fn yaml(&self) -> PathBuf {
        self.path().join("proj/dagster_cloud.yaml")
    }

    /// Writes `text` at `relative` (parents created) and returns its path.
    pub(crate) fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create parents");
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// The binary with `args`, a clean environment (no CI variables, no Dagster settings), the
    /// sandbox as working directory and HOME inside it.
    pub(crate) fn cli<I, S>(&self, args: I) -> Cli
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_clear()
            .env("PATH", DEFAULT_PATH)
            .env("HOME", self.home())
            .env("COLUMNS", "100")
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .current_dir(self.path())
            .stdin(Stdio::null());
        Cli { command }
    }

    /// The binary with `--statedir <sandbox>/state` before `args`.
    pub(crate) fn in_session<I, S>(&self, args: I) -> Cli
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cli = self.cli(["--statedir".as_ref(), self.statedir().as_os_str()]);
        cli.command.args(args);
        cli
    }

    /// Opens a session for `proj/dagster_cloud.yaml` (organization `acme`, deployment `prod`),
    /// at `url` when given (else the organization's dagster.cloud URL), without contacting it.
    pub(crate) fn start(&self, url: Option<&str>) {
        let mut cli = self.in_session(["start", "--skip-validation", "--deployment-type", "full"]);
        cli = cli.arg("--dagster-cloud-yaml").arg(self.yaml()).args([
            "--organization",
            "acme",
            "--deployment",
            "prod",
        ]);
        if let Some(url) = url {
            cli = cli.env("DAGSTER_CLOUD_URL", url);
        }
        cli.run().success();
    }

    /// A session for [`TWO_LOCATIONS`] at `url` (the emulator's), with image tag `v1` recorded
    /// for both locations.
    pub(crate) fn built(url: &str) -> Self {
        let sandbox = Self::with_project();
        sandbox.start(Some(url));
        sandbox
            .in_session(["set-build-output", "--image-tag", "v1"])
            .run()
            .success();
        sandbox
    }

    /// The session's state files as JSON, one per location, sorted by name.
    pub(crate) fn states(&self) -> Vec<serde_json::Value> {
        let mut states: Vec<serde_json::Value> = std::fs::read_dir(self.statedir())
            .expect("read the state dir")
            .map(|entry| entry.expect("a dir entry").path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("location-"))
            })
            .map(|path| {
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read a state file"))
                    .expect("a JSON state file")
            })
            .collect();
        states.sort_by_key(|state| state["location_name"].as_str().map(str::to_owned));
        states
    }

    /// The image recorded for each location (`None` when nothing is recorded), by name.
    pub(crate) fn images(&self) -> Vec<(String, Option<String>)> {
        self.states()
            .iter()
            .map(|state| {
                (
                    state["location_name"].as_str().expect("a name").to_owned(),
                    state["build_output"]["image"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }
}

/// A command about to run.
pub(crate) struct Cli {
    command: Command,
}

impl Cli {
    pub(crate) fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub(crate) fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    /// The same command run under strace, which kills it (SIGKILL) when it makes its `nth` call
    /// of `syscall`: a crash at an exact point of its work.
    pub(crate) fn killed_at_call(self, syscall: &str, nth: usize) -> Self {
        let mut command = Command::new("strace");
        command
            .args(["-f", "-o", "/dev/null", "-e"])
            .arg(format!("trace={syscall}"))
            .arg("-e")
            .arg(format!("inject={syscall}:signal=KILL:when={nth}"))
            .arg("--")
            .arg(self.command.get_program())
            .args(self.command.get_args())
            .env_clear()
            .stdin(Stdio::null());
        for (name, value) in self.command.get_envs() {
            if let Some(value) = value {
                command.env(name, value);
            }
        }
        if let Some(dir) = self.command.get_current_dir() {
            command.current_dir(dir);
        }
        Cli { command }
    }

    /// Starts the command without waiting, capturing stdout and stderr if `capture` (else
    /// discarding them, so that a child nobody reads from never blocks on a full pipe).
    pub(crate) fn spawn(mut self, capture: bool) -> std::process::Child {
        let stream = || {
            if capture {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        self.command
            .stdout(stream())
            .stderr(stream())
            .spawn()
            .expect("start dagster-deploy")
    }

    pub(crate) fn run(mut self) -> Run {
        let output = self.command.output().unwrap_or_else(|err| {
            panic!(
                "run {:?}: {err} (strace, for the crash tests, is installed by scripts/setup.sh)",
                self.command.get_program()
            )
        });
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        }
    }
}

/// What a run printed and how it exited.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// The result of a process started with [`Cli::spawn_captured`].
    pub(crate) fn of(child: std::process::Child) -> Run {
        let output = child.wait_with_output().expect("wait for dagster-deploy");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        }
    }

    /// Asserts the exit code, showing both streams when it differs.
    pub(crate) fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code,
            Some(expected),
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub(crate) fn success(self) -> Self {
        self.code(0)
    }

    /// Asserts that neither stream contains `secret`.
    pub(crate) fn assert_hides(&self, secret: &str) {
        assert!(
            !self.stdout.contains(secret) && !self.stderr.contains(secret),
            "the secret leaked\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
    }
}

impl Sandbox {
    /// Runs `script` (sh) as root in a private mount namespace in which `$STATE` is a tmpfs
    /// holding a copy of the session's files and nothing more (not our spare directory): the
    /// session's files (two location files and the session file) fill its three pages exactly,
    /// so any write finds the disk full. `$BIN` is the binary; HOME is the sandbox's, plus `env`. Returns the script's
    /// stdout and stderr. Needs `unshare` (util-linux) and root.
    pub(crate) fn on_a_full_disk(&self, script: &str, env: &[(&str, &str)]) -> (String, String) {
        let mounted = self.path().join("full");
        std::fs::create_dir(&mounted).expect("create the mount point");
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size=12k tmpfs \"$STATE\" && find \"$SESSION\" -maxdepth 1 -type f -exec cp -a {{}} \"$STATE\"/ \\; && {{ {script}; }}"
            ))
            .env_clear()
            .env("PATH", DEFAULT_PATH)
            .env("HOME", self.home())
            .env("BIN", BIN)
            .env("STATE", &mounted)
            .env("SESSION", self.statedir())
            .envs(env.iter().copied());
        let output = command
            .output()
            .expect("unshare (util-linux) must be installed, and the tests must run as root");
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}
