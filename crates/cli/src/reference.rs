//! Invoked as the reference: the binary called through a link (or copy) named `dg` accepts
//! `dg plus deploy …` and `dg plus create ci-api-token`; called as `dagster-cloud` it accepts
//! `dagster-cloud ci …`. This module turns those command lines into ours, with the reference's
//! defaults wherever a script could tell the difference (reference-behaviour §2.1, §3.8, §3.10).
//! Under its own name the binary also takes the reference's command names at the top level
//! (`list-locations`, `select`, `locations-deselect`, …). It is flag parsing and nothing else:
//! what differs in behaviour is an option of a command (`--no-require-branch-deployment`,
//! `--no-clean-statedir`, `--output-format`), never a second copy of it.

use std::ffi::{OsStr, OsString};
use std::path::Path;

use crate::args::env;
use crate::failure::Failure;

/// The name the binary answers to in usage and help text.
const OUR_NAME: &str = "dagster-deploy";

/// dg's state directory when `DAGSTER_BUILD_STATEDIR` is unset (reference-behaviour §2.1). It is
/// shared by every job of the machine (reference-behaviour ref-bug 29), so using it is warned about.
pub(crate) const DG_DEFAULT_STATEDIR: &str = "/tmp/dg-build-state";

/// Which command-line language the process was called in, from the name of argv[0].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Personality {
    /// `dagster-deploy` (or any other name).
    Ours,
    /// `dg`: the dg CLI's `dg plus deploy …` commands.
    Dg,
    /// `dagster-cloud`: the legacy `dagster-cloud ci …` commands.
    DagsterCloud,
}

impl Personality {
    /// The personality of a program path: the file name, without a Windows `.exe`.
    pub(crate) fn of(program: &OsStr) -> Personality {
        let name = Path::new(program)
            .file_name()
            .and_then(OsStr::to_str)
            .unwrap_or(OUR_NAME);
        match name.strip_suffix(".exe").unwrap_or(name) {
            "dg" => Personality::Dg,
            "dagster-cloud" => Personality::DagsterCloud,
            _ => Personality::Ours,
        }
    }
}

/// What the process environment tells the translation.
pub(crate) struct Environment<'a> {
    /// Reads an environment variable (empty counts as unset).
    pub(crate) var: &'a dyn Fn(&str) -> Option<String>,
    /// Whether stdin is a terminal, so a question could be answered.
    pub(crate) stdin_is_terminal: bool,
    /// Whether a state directory holds a session (any `location-*` file).
    pub(crate) holds_session: &'a dyn Fn(&Path) -> bool,
}

/// Our command line, and the warnings to print before running it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// The arguments for clap, argv[0] included.
    pub(crate) args: Vec<OsString>,
    /// One line each, for stderr.
    pub(crate) warnings: Vec<String>,
}

/// Translates the process's command line into ours.
pub(crate) fn translate(
    argv: Vec<OsString>,
    environment: &Environment<'_>,
) -> Result<Invocation, Failure> {
    let mut argv = argv.into_iter();
    let program = argv.next().unwrap_or_else(|| OsString::from(OUR_NAME));
    let rest: Vec<OsString> = argv.collect();
    let mut translation = Translation {
        args: rest,
        warnings: Vec::new(),
        environment,
    };
    match Personality::of(&program) {
        Personality::Ours => translation.ours(),
        Personality::Dg => translation.dg()?,
        Personality::DagsterCloud => translation.dagster_cloud()?,
    }
    let mut args = vec![OsString::from(OUR_NAME)];
    args.extend(translation.args);
    Ok(Invocation {
        args,
        warnings: translation.warnings,
    })
}

struct Translation<'a> {
    args: Vec<OsString>,
    warnings: Vec<String>,
    environment: &'a Environment<'a>,
}

/// Our global flags that take a value, so that their value is not taken for a command name.
const GLOBAL_FLAGS_WITH_VALUE: &[&str] = &["--statedir", "--request-timeout"];

impl Translation<'_> {
    /// `dagster-deploy select a` is `dagster-deploy locations select a`, and so on for the
    /// reference's other top-level names of our `locations` subcommands.
    fn ours(&mut self) {
        let Some(index) = self.command_index(0) else {
            return;
        };
        if matches!(
            self.word(index),
            Some(
                "list-locations"
                    | "locations-list"
                    | "select"
                    | "locations-select"
                    | "deselect"
                    | "locations-deselect"
            )
        ) {
            self.args.insert(index, OsString::from("locations"));
        }
    }

    /// `dg plus deploy …` and `dg plus create ci-api-token`.
    fn dg(&mut self) -> Result<(), Failure> {
        let Some(plus) = self.command_index(0) else {
            // `dg`, `dg --help`, `dg --version`: ours.
            return Ok(());
        };
        self.expect(plus, "plus", "dg", "dg")?;
        let group = plus + 1;
        match self.word(group) {
            Some("deploy") => {}
            Some("create") => {
                return match self.word(group + 1) {
                    Some("ci-api-token") => {
                        self.replace(plus, group + 2, &["ci-api-token", "create"]);
                        Ok(())
                    }
                    other => Err(unsupported(
                        &format!("dg plus create {}", other.unwrap_or("…")),
                        "dg",
                    )),
                };
            }
            other => {
                return Err(unsupported(
                    &format!("dg plus {}", other.unwrap_or("…")),
                    "dg",
                ));
            }
        }
        let verb = group + 1;
        let command = self.word(verb).map(str::to_owned);
        let ours: &[&str] = match command.as_deref() {
            // Bare `dg plus deploy [OPTIONS]`: start, build-and-push and finish in one go.
            None => &["up"],
            Some(flag) if flag.starts_with('-') => &["up"],
            Some("start") => &["start"],
            Some("build-and-push") => &["build-and-push"],
            Some("set-build-output") => &["set-build-output"],
            Some("finish") => &["deploy"],
            Some("status") => &["status"],
            Some("list-locations") => &["locations", "list"],
            Some("select") => &["locations", "select"],
            Some("deselect") => &["locations", "deselect"],
            Some("configure") => &["configure"],
            Some("notify") => &["notify"],
            Some(other) => return Err(unsupported(&format!("dg plus deploy {other}"), "dg")),
        };
        let bare = ours == ["up"];
        let consumed = if bare { verb } else { verb + 1 };
        let ours = if bare && self.finishes_open_session() {
            &["deploy"]
        } else {
            ours
        };
        self.replace(plus, consumed, ours);
        // dg's hidden `--use-component-module` selects how dg loads components: nothing here.
        self.take_value("--use-component-module");
        match ours {
            ["up"] | ["build-and-push"] => self.dg_build_flags()?,
            _ => {}
        }
        match ours {
            ["up"] | ["start"] => self.follow_guess_without_terminal(),
            // The session records its project; the reference needs `--target-path` to find it again.
            ["set-build-output"] | ["deploy"] => drop(self.take_value("--target-path")),
            ["status"] => self.default_status_format(),
            ["configure"] => self.dg_configure()?,
            _ => {}
        }
        if !matches!(ours, ["configure"]) {
            self.dg_default_statedir();
        }
        Ok(())
    }

    /// `dagster-cloud ci …`.
    fn dagster_cloud(&mut self) -> Result<(), Failure> {
        let Some(ci) = self.command_index(0) else {
            return Ok(());
        };
        self.expect(ci, "ci", "dagster-cloud", "dagster-cloud")?;
        let verb = ci + 1;
        let command = self.word(verb).map(str::to_owned);
        let ours: &[&str] = match command.as_deref() {
            Some("init") => &["start"],
            Some("check") => &["check"],
            Some("set-build-output") => &["set-build-output"],
            Some("deploy") => &["deploy"],
            Some("status") => &["status"],
            Some("locations-list") => &["locations", "list"],
            Some("locations-select") => &["locations", "select"],
            Some("locations-deselect") => &["locations", "deselect"],
            Some("branch-deployment") => &["branch-deployment"],
            Some("notify") => &["notify"],
            Some(other) if !other.starts_with('-') => {
                return Err(unsupported(
                    &format!("dagster-cloud ci {other}"),
                    "dagster-cloud",
                ));
            }
            _ => {
                // `dagster-cloud ci` or `dagster-cloud ci --help`: our help.
                self.replace(ci, verb, &[]);
                return Ok(());
            }
        };
        self.replace(ci, verb + 1, ours);
        match ours {
            ["start"] => {
                self.legacy_config_file();
                // `ci init` never guesses from the git branch: a branch deployment is made in a
                // pull or merge request, or when required (reference-behaviour §3.2).
                if !self.has("--require-branch-deployment")
                    && !self.has("--no-require-branch-deployment")
                {
                    self.args
                        .push(OsString::from("--no-require-branch-deployment"));
                }
            }
            ["check"] => self.legacy_config_file(),
            ["status"] => self.default_status_format(),
            _ => {}
        }
        Ok(())
    }

    /// Bare `dg plus deploy` without a deployment fails in dg; the "other CI" flow of the
    /// Dagster+ docs nevertheless runs it after `start` and `set-build-output` to deploy the open
    /// session. So when no deployment is named and the state directory holds a session, it
    /// finishes that session (as `dg plus deploy finish`), and says so.
    fn finishes_open_session(&mut self) -> bool {
        if self.has("--deployment")
            || self.has("-d")
            || (self.environment.var)(env::DEPLOYMENT).is_some()
        {
            return false;
        }
        let statedir =
            (self.environment.var)(env::STATEDIR).unwrap_or_else(|| DG_DEFAULT_STATEDIR.to_owned());
        if !(self.environment.holds_session)(Path::new(&statedir)) {
            return false;
        }
        self.warnings.push(format!(
            "no deployment given and {statedir} holds a session: deploying it, as `dg plus deploy finish` (dg would stop here: it needs a deployment to start a new session)"
        ));
        true
    }

    /// dg's build options (reference-behaviour §3.4.1): the Hybrid docker path is ours with
    /// `--builder docker`; Serverless, PEX and editable-dagster builds are not ours.
    fn dg_build_flags(&mut self) -> Result<(), Failure> {
        if let Some(agent_type) = self.take_value("--agent-type")
            && agent_type != "hybrid"
        {
            return Err(unsupported(
                &format!("dg plus deploy --agent-type {agent_type}"),
                "dg",
            ));
        }
        let strategy = self
            .take_value("--build-strategy")
            .or_else(|| (self.environment.var)("DAGSTER_BUILD_STRATEGY"));
        if let Some(strategy) = strategy
            && strategy != "docker"
        {
            return Err(unsupported(
                &format!("dg plus deploy --build-strategy {strategy}"),
                "dg",
            ));
        }
        if self.take_switch("--use-editable-dagster") {
            return Err(unsupported("dg plus deploy --use-editable-dagster", "dg"));
        }
        // Both only matter to PEX builds or to scaffolding a Dockerfile, which the docker
        // builder does not do: it needs the project's own Dockerfile.
        self.take_value("--pex-build-method");
        self.take_value("--python-version");
        if self.word(0) == Some("build-and-push") {
            self.take_value("--target-path");
        }
        if !self.has("--builder") {
            self.args.push(OsString::from("--builder"));
            self.args.push(OsString::from("docker"));
        }
        Ok(())
    }

    /// `dg plus deploy configure [hybrid]`: our `configure` writes Hybrid files.
    fn dg_configure(&mut self) -> Result<(), Failure> {
        match self.word(1) {
            Some("hybrid") => {
                self.args.remove(1);
                Ok(())
            }
            Some("serverless") => Err(unsupported("dg plus deploy configure serverless", "dg")),
            _ => Ok(()),
        }
    }

    /// The reference asks `Do you want to continue?` after guessing the deployment type, and
    /// aborts when nobody can answer; in CI (no terminal) we follow the guess instead and say so.
    fn follow_guess_without_terminal(&mut self) {
        if self.environment.stdin_is_terminal
            || self.has("--deployment-type")
            || self.has("--yes")
            || self.has("-y")
        {
            return;
        }
        self.args.push(OsString::from("--yes"));
        self.warnings.push(
            "no terminal to confirm the guessed deployment type, so it is followed (dg would abort here); pass --deployment-type full|branch to choose".to_owned(),
        );
    }

    /// dg's statedir defaults to a fixed path in /tmp (reference-behaviour §2.1, ref-bug 29).
    fn dg_default_statedir(&mut self) {
        if self.has("--statedir") || (self.environment.var)(env::STATEDIR).is_some() {
            return;
        }
        self.args.push(OsString::from("--statedir"));
        self.args.push(OsString::from(DG_DEFAULT_STATEDIR));
        self.warnings.push(format!(
            "{} is not set, so the session is in {DG_DEFAULT_STATEDIR}, as with dg; every job of this machine shares it: set {} to a directory of this job",
            env::STATEDIR,
            env::STATEDIR
        ));
    }

    /// The reference's `status` prints JSON lines unless told otherwise (reference-behaviour §3.8).
    fn default_status_format(&mut self) {
        if !self.has("--output-format") {
            self.args.push(OsString::from("--output-format"));
            self.args.push(OsString::from("json"));
        }
    }

    /// `ci init` and `ci check` read `<project dir>/dagster_cloud.yaml` unless told otherwise,
    /// never a dg project (reference-behaviour §3.2).
    fn legacy_config_file(&mut self) {
        if !self.has("--dagster-cloud-yaml-path") && !self.has("--dagster-cloud-yaml") {
            self.args.push(OsString::from("--dagster-cloud-yaml-path"));
            self.args.push(OsString::from("dagster_cloud.yaml"));
        }
    }

    /// The index of the first word at or after `from` that is not a global flag (or its value).
    fn command_index(&self, from: usize) -> Option<usize> {
        let mut index = from;
        while let Some(arg) = self.args.get(index).and_then(|arg| arg.to_str()) {
            if GLOBAL_FLAGS_WITH_VALUE.contains(&arg) {
                index += 2;
            } else if arg.starts_with('-') {
                if matches!(arg, "-h" | "--help" | "-V" | "--version") {
                    return None;
                }
                index += 1;
            } else {
                return Some(index);
            }
        }
        None
    }

    /// Checks that word `index` is `expected`; any other word (after `prefix`) is a reference
    /// command we do not implement.
    fn expect(
        &self,
        index: usize,
        expected: &str,
        prefix: &str,
        program: &str,
    ) -> Result<(), Failure> {
        match self.word(index) {
            Some(word) if word == expected => Ok(()),
            other => Err(unsupported(
                &format!("{prefix} {}", other.unwrap_or("…")),
                program,
            )),
        }
    }

    fn word(&self, index: usize) -> Option<&str> {
        self.args.get(index).and_then(|arg| arg.to_str())
    }

    /// Replaces `args[from..to]` (the reference's command words) with ours, moving the words
    /// before `from` (global flags) after them, where clap takes them all the same.
    fn replace(&mut self, from: usize, to: usize, ours: &[&str]) {
        let globals: Vec<OsString> = self.args.drain(..from).collect();
        self.args.drain(..to - from);
        let mut args: Vec<OsString> = ours.iter().map(OsString::from).collect();
        args.extend(globals);
        args.append(&mut self.args);
        self.args = args;
    }

    /// Whether the flag is given, as `--flag`, `--flag value` or `--flag=value`.
    fn has(&self, flag: &str) -> bool {
        self.args.iter().filter_map(|arg| arg.to_str()).any(|arg| {
            arg == flag
                || arg
                    .strip_prefix(flag)
                    .is_some_and(|rest| rest.starts_with('='))
        })
    }

    /// Removes every `--flag value` and `--flag=value`, returning the last value.
    fn take_value(&mut self, flag: &str) -> Option<String> {
        let mut value = None;
        let mut index = 0;
        while index < self.args.len() {
            let arg = self.args[index].to_string_lossy().into_owned();
            if arg == flag {
                self.args.remove(index);
                if index < self.args.len() {
                    value = Some(self.args.remove(index).to_string_lossy().into_owned());
                }
            } else if let Some(given) = arg
                .strip_prefix(flag)
                .and_then(|rest| rest.strip_prefix('='))
            {
                value = Some(given.to_owned());
                self.args.remove(index);
            } else {
                index += 1;
            }
        }
        value
    }

    /// Removes every `--flag`, saying whether there was one.
    fn take_switch(&mut self, flag: &str) -> bool {
        let before = self.args.len();
        self.args.retain(|arg| arg.to_str() != Some(flag));
        self.args.len() != before
    }
}

/// The error for a reference command dagster-deploy does not implement: it names the reference
/// command to run instead, and how to get the reference.
fn unsupported(command: &str, program: &str) -> Failure {
    let package = reference_package(program);
    Failure::usage(format!("`{command}` is not implemented by dagster-deploy")).with_hint(format!(
        "run it with the reference CLI: `uvx --from {package} {command}` (or `pip install {package}` and call its `{program}`); dagster-deploy implements the Hybrid deploy steps (`{OUR_NAME} --help`)"
    ))
}

/// The PyPI package of a reference program.
fn reference_package(program: &str) -> &'static str {
    match program {
        "dg" => "dagster-dg-cli",
        _ => "dagster-cloud-cli",
    }
}

#[cfg(test)]
mod tests;
