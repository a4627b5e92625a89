//! Running uv: always with an argument vector (never a shell string), with a time limit, and
//! with errors that name uv and quote the end of what it printed.
//!
//! Two commands are used. `uv export --frozen` turns the lock into the exact list of pinned
//! requirements (with hashes) of one project, offline and without an interpreter. `uv pip
//! install --target` installs that list, wheels only (`--no-build`), for the image's platform
//! and Python version (`--python-platform`, `--python-version`), into a flat directory; uv runs
//! its installer with whatever Python the machine has, but chooses the packages for the image.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dagster_deploy_process::output_within;

use crate::error::{Error, Result};
use crate::lock::LockedProject;
use crate::target::TargetPython;

/// How long one uv command may run unless the caller says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long `uv --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of uv's stderr kept in an error.
const OUTPUT_TAIL_LINES: usize = 30;

/// A uv program and how to run it.
#[derive(Debug, Clone)]
pub struct Uv {
    program: PathBuf,
    version: String,
    timeout: Duration,
    cache_dir: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    hidden_env: Vec<OsString>,
}

/// What a finished uv command printed.
pub(crate) struct UvOutput {
    pub(crate) stdout: Vec<u8>,
}

impl Uv {
    /// Checks that `program` is uv (it runs `program --version`) and remembers its version.
    pub fn new(program: impl Into<PathBuf>) -> Result<Self> {
        let mut uv = Self {
            program: program.into(),
            version: String::new(),
            timeout: VERSION_TIMEOUT,
            cache_dir: None,
            env: Vec::new(),
            hidden_env: Vec::new(),
        };
        let output = uv.run("--version", &[OsString::from("--version")], None)?;
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        // `uv 0.13.9 (x86_64-unknown-linux-gnu)` or `uv 0.13.9`.
        let version = text
            .strip_prefix("uv ")
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|version| version.starts_with(|c: char| c.is_ascii_digit()));
        let Some(version) = version else {
            return Err(Error::UvVersion {
                program: uv.program,
                output: text,
            });
        };
        uv.version = version.to_owned();
        uv.timeout = DEFAULT_TIMEOUT;
        Ok(uv)
    }

    /// The time one uv command may take before it is stopped (default 10 minutes).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The uv cache directory (`UV_CACHE_DIR`); uv's own default when unset.
    pub fn with_cache_dir(mut self, cache_dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(cache_dir.into());
        self
    }

    /// An environment variable for every uv command, on top of this process's environment
    /// (for example `UV_SYSTEM_CERTS=1` behind a TLS-intercepting proxy).
    pub fn with_env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// An environment variable of this process that uv commands must not see (a secret of the
    /// caller's, such as an API token, which uv has no use for).
    pub fn without_env(mut self, name: impl Into<OsString>) -> Self {
        self.hidden_env.push(name.into());
        self
    }

    /// The version uv reported, e.g. `0.13.9`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The program run.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The pinned requirements of `project`, in `requirements.txt` format with hashes: its
    /// dependencies without the project and the other workspace members (their code is the
    /// code layer's), without development dependencies.
    pub(crate) fn export(&self, project: &LockedProject) -> Result<String> {
        let mut args: Vec<OsString> = [
            "export",
            "--frozen",
            "--format",
            "requirements.txt",
            "--no-dev",
            "--no-emit-workspace",
            "--no-header",
            "--no-annotate",
            "--color",
            "never",
        ]
        .map(OsString::from)
        .to_vec();
        if let Some(package) = &project.package {
            args.extend(["--package".into(), package.into()]);
        }
        let output = self.run("export", &args, Some(&project.project_dir))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Installs `requirements` into `target_dir` with wheels chosen for `target`.
    pub(crate) fn install(
        &self,
        requirements: &Path,
        target_dir: &Path,
        target: &TargetPython,
        project_dir: &Path,
    ) -> Result<()> {
        let platform = target.uv_platform();
        let python = target.version.to_string();
        let args: Vec<OsString> = vec![
            "pip".into(),
            "install".into(),
            "--target".into(),
            target_dir.into(),
            "--python-platform".into(),
            platform.clone().into(),
            "--python-version".into(),
            python.clone().into(),
            // Wheels only: anything else would be built for the machine that builds, with its
            // compiler and headers, not for the image.
            "--no-build".into(),
            // The export is complete and pinned; nothing is resolved again.
            "--no-deps".into(),
            // Bytecode would be compiled by the host's Python, whose version may differ, and is
            // not reproducible; the image's Python compiles it on first import.
            "--no-compile-bytecode".into(),
            // Files are read, never changed, so links into uv's cache are safe and fast.
            "--link-mode".into(),
            "hardlink".into(),
            "--color".into(),
            "never".into(),
            "--quiet".into(),
            "-r".into(),
            requirements.into(),
        ];
        match self.run("pip install", &args, Some(project_dir)) {
            Err(Error::UvFailed { output, .. })
                if output.contains("--no-build")
                    || output.contains("Building source distributions is disabled") =>
            {
                Err(Error::NeedsBuild {
                    packages: packages_needing_build(&output),
                    platform,
                    python,
                    output,
                })
            }
            Err(Error::UvFailed {
                program, output, ..
            }) if output.contains("No interpreter found") => {
                Err(Error::NoHostInterpreter { program, output })
            }
            other => other.map(drop),
        }
    }

    /// Runs uv with `args`, in `cwd` when given, and returns its output if it succeeded.
    fn run(&self, action: &'static str, args: &[OsString], cwd: Option<&Path>) -> Result<UvOutput> {
        let mut command = Command::new(&self.program);
        command
            .args(args)
            .stdin(Stdio::null())
            // Plain, stable output: no progress bars or colours in what we quote.
            .env("NO_COLOR", "1")
            .env("UV_NO_PROGRESS", "1");
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        if let Some(cache_dir) = &self.cache_dir {
            command.env("UV_CACHE_DIR", cache_dir);
        }
        for name in &self.hidden_env {
            command.env_remove(name);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let output = output_within(&mut command, self.timeout)
            .map_err(|source| Error::UvNotFound {
                program: self.program.clone(),
                source,
            })?
            .ok_or_else(|| Error::UvTimedOut {
                program: self.program.clone(),
                action,
                timeout: self.timeout,
            })?;
        let (status, stdout, stderr) = (output.status, output.stdout, output.stderr);
        if status.success() {
            return Ok(UvOutput { stdout });
        }
        Err(Error::UvFailed {
            program: self.program.clone(),
            action,
            status: status.to_string(),
            output: tail(&String::from_utf8_lossy(&stderr), OUTPUT_TAIL_LINES),
        })
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The package names uv's `--no-build` failure mentions, in order, without duplicates. uv
/// words it as "Because NAME==VERSION has no usable wheels", "Wheels are required for `NAME`
/// because building from source is disabled" (registry packages), and "Building source
/// distributions is disabled, but attempted to build `NAME`" (local path packages).
pub(crate) fn packages_needing_build(output: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        let name = name.trim_matches(|c: char| c == '`' || c == '\'' || c == '"');
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte));
        if valid && !names.iter().any(|known| known == name) {
            names.push(name.to_owned());
        }
    };
    for line in output.lines() {
        let mut found: Vec<(usize, &str)> = Vec::new();
        for marker in ["Wheels are required for ", "attempted to build "] {
            for (index, _) in line.match_indices(marker) {
                let rest = &line[index + marker.len()..];
                found.push((index, rest.split_whitespace().next().unwrap_or_default()));
            }
        }
        for marker in [" has no usable wheels", " has no wheels with a matching"] {
            for (index, _) in line.match_indices(marker) {
                let word = line[..index].rsplit([' ', '(']).next().unwrap_or_default();
                found.push((
                    index,
                    word.split(['=', '<', '>', '!', '~', '@'])
                        .next()
                        .unwrap_or(word),
                ));
            }
        }
        found.sort_unstable();
        for (_, name) in found {
            add(name);
        }
    }
    names
}

#[cfg(test)]
mod tests;
