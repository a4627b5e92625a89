//! Runs generated CI files on this machine, step by step, the way the CI systems would: the
//! YAML is parsed, each job's conditions evaluated, and each step's commands run in order in a
//! shell with the provider's environment variables, the secrets given, and nothing else (the
//! process environment is cleared; PATH holds only the OS folders, so no Rust and no
//! dagster-deploy until the install step puts it there).
//!
//! What is emulated rather than run, and how:
//! * GitHub `uses: actions/checkout@…`: nothing to do, the test has the repository checked out
//!   at the commit of the event already.
//! * GitHub `uses: <this repository's Action>@…`: the repository's own `action.yml` is run as
//!   GitHub runs composite actions (inputs, `GITHUB_ACTION_PATH`, `GITHUB_OUTPUT`,
//!   `GITHUB_PATH`).
//! * Any other `uses:` step fails the test: the generated files must not depend on it.
//! * GitLab `image:` and `services:`: the job runs on this machine, not in a container.

mod expr;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::{Mapping, Value};

pub(crate) use expr::Val;

/// The OS folders every job's PATH starts with.
pub(crate) const OS_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What one step (GitHub) or script section (GitLab) did.
#[derive(Debug, Clone)]
pub(crate) struct StepRecord {
    pub(crate) name: String,
    /// The commands as run, or what was emulated.
    pub(crate) commands: String,
    /// `None` when skipped or emulated.
    pub(crate) exit_code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// One job's steps, in order.
#[derive(Debug, Clone)]
pub(crate) struct JobRun {
    pub(crate) job: String,
    pub(crate) steps: Vec<StepRecord>,
    pub(crate) success: bool,
}

impl JobRun {
    /// Everything the job printed, with each step's commands, for assertion messages.
    pub(crate) fn transcript(&self) -> String {
        let mut out = format!(
            "=== job {} ({})\n",
            self.job,
            if self.success { "passed" } else { "FAILED" }
        );
        for step in &self.steps {
            out.push_str(&format!(
                "--- step {} (exit {:?})\n$ {}\n{}{}",
                step.name, step.exit_code, step.commands, step.stdout, step.stderr
            ));
        }
        out
    }

    /// Panics with the transcript unless every step passed.
    pub(crate) fn assert_success(&self) {
        assert!(self.success, "{}", self.transcript());
    }

    /// The names of the steps that ran a command.
    pub(crate) fn steps_run(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|step| step.exit_code.is_some())
            .map(|step| step.name.as_str())
            .collect()
    }
}

fn as_map<'a>(value: &'a Value, what: &str) -> &'a Mapping {
    value
        .as_mapping()
        .unwrap_or_else(|| panic!("{what} is not a mapping: {value:?}"))
}

fn string_map(value: Option<&Value>) -> Vec<(String, String)> {
    value
        .and_then(Value::as_mapping)
        .map(|map| {
            map.iter()
                .map(|(key, value)| {
                    let key = key.as_str().expect("string keys").to_owned();
                    let value = match value {
                        Value::String(text) => text.clone(),
                        Value::Number(number) => number.to_string(),
                        Value::Bool(flag) => flag.to_string(),
                        Value::Null => String::new(),
                        other => panic!("{key}: unsupported value {other:?}"),
                    };
                    (key, value)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `script` with `shell` (`bash` or `sh`) in `dir` with exactly `env`.
fn run_shell(
    shell: &str,
    script: &str,
    dir: &Path,
    env: &BTreeMap<String, String>,
    scratch: &Path,
) -> (i32, String, String) {
    let file = scratch.join(format!("step-{}.sh", rand_suffix()));
    std::fs::write(&file, script).unwrap();
    let mut command = match shell {
        "bash" => {
            let mut command = Command::new("/bin/bash");
            command.args(["--noprofile", "--norc", "-eo", "pipefail"]);
            command
        }
        "sh" => {
            let mut command = Command::new("/bin/sh");
            command.arg("-e");
            command
        }
        other => panic!("shell {other} is not emulated"),
    };
    let output = command
        .arg(&file)
        .current_dir(dir)
        .env_clear()
        .envs(env)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {shell}: {error}"));
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Reads a `GITHUB_OUTPUT`/`GITHUB_ENV` file: `name=value` lines and `name<<DELIMITER` blocks.
fn read_key_values(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut pairs = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for next in lines.by_ref() {
                if next == delimiter {
                    break;
                }
                value.push(next);
            }
            pairs.push((name.to_owned(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            pairs.push((name.to_owned(), value.to_owned()));
        }
    }
    pairs
}

/// A GitHub Actions run of one event on this machine.
pub(crate) struct GitHubRun {
    pub(crate) workflow: Value,
    /// The checkout (`GITHUB_WORKSPACE`).
    pub(crate) workspace: PathBuf,
    /// `owner/name@` prefix of `uses:` that means this repository's Action, and its folder.
    pub(crate) our_action: (String, PathBuf),
    pub(crate) secrets: BTreeMap<String, String>,
    pub(crate) event_name: String,
    /// The event payload, written to `GITHUB_EVENT_PATH`.
    pub(crate) event: serde_json::Value,
    pub(crate) git_ref: String,
    pub(crate) sha: String,
    pub(crate) head_ref: String,
    pub(crate) base_ref: String,
    pub(crate) repository: String,
    pub(crate) run_id: String,
    pub(crate) actor: String,
    /// HOME and scratch files (event, GITHUB_ENV, …).
    pub(crate) home: PathBuf,
    /// Variables the runner machine has on top of the OS (e.g. a download mirror).
    pub(crate) runner_env: BTreeMap<String, String>,
}

/// What the expressions of one step can see.
struct GitHubScope<'a> {
    run: &'a GitHubRun,
    env: &'a BTreeMap<String, String>,
    inputs: Option<&'a BTreeMap<String, String>>,
    steps: &'a StepOutputs,
    failed: bool,
}

impl GitHubScope<'_> {
    fn resolve(&self, path: &str) -> Val {
        let run = self.run;
        let text = |value: &str| Val::Str(value.to_owned());
        if let Some(name) = path.strip_prefix("secrets.") {
            return self
                .run
                .secrets
                .get(name)
                .map_or(Val::Str(String::new()), |v| text(v));
        }
        if let Some(name) = path.strip_prefix("env.") {
            return self.env.get(name).map_or(Val::Null, |v| text(v));
        }
        if let Some(name) = path.strip_prefix("inputs.") {
            let inputs = self.inputs.expect("inputs outside an action");
            return inputs
                .get(name)
                .map(|v| text(v))
                .unwrap_or_else(|| panic!("the action has no input {name}"));
        }
        if let Some(rest) = path.strip_prefix("steps.") {
            let (id, output) = rest
                .split_once(".outputs.")
                .unwrap_or_else(|| panic!("unsupported {path}"));
            return self
                .steps
                .get(id)
                .and_then(|outputs| outputs.get(output))
                .map_or(Val::Str(String::new()), |v| text(v));
        }
        if let Some(rest) = path.strip_prefix("github.event.") {
            let mut value = &run.event;
            for key in rest.split('.') {
                value = &value[key];
            }
            return match value {
                serde_json::Value::String(s) => text(s),
                serde_json::Value::Null => Val::Null,
                serde_json::Value::Bool(b) => Val::Bool(*b),
                other => text(&other.to_string()),
            };
        }
        match path {
            "github.event_name" => text(&run.event_name),
            "github.ref" => text(&run.git_ref),
            "github.sha" => text(&run.sha),
            "github.head_ref" => text(&run.head_ref),
            "github.base_ref" => text(&run.base_ref),
            "github.run_id" => text(&run.run_id),
            "github.run_attempt" => text("1"),
            "github.actor" => text(&run.actor),
            "github.repository" => text(&run.repository),
            "github.workflow" => text(run.workflow["name"].as_str().unwrap_or("workflow")),
            "github.workspace" => text(&run.workspace.display().to_string()),
            "runner.os" => text("Linux"),
            "runner.temp" => text(&run.home.join("runner-temp").display().to_string()),
            "always()" => Val::Bool(true),
            "success()" => Val::Bool(!self.failed),
            "failure()" => Val::Bool(self.failed),
            "true" => Val::Bool(true),
            "false" => Val::Bool(false),
            other => panic!("the GitHub emulator does not know {other}"),
        }
    }

    fn substitute(&self, text: &str) -> String {
        expr::substitute(text, &|path| self.resolve(path))
    }

    fn condition(&self, value: Option<&Value>) -> bool {
        match value {
            None => !self.failed,
            Some(Value::Bool(flag)) => *flag,
            Some(Value::String(text)) => {
                let text = text.trim();
                let text = text
                    .strip_prefix("${{")
                    .and_then(|rest| rest.strip_suffix("}}"))
                    .unwrap_or(text);
                expr::evaluate(text, &|path| self.resolve(path)).truthy()
            }
            Some(other) => panic!("unsupported if: {other:?}"),
        }
    }
}

/// Outputs of the steps run so far, by step id.
type StepOutputs = BTreeMap<String, BTreeMap<String, String>>;

/// The composite action a step belongs to: its folder, its inputs and its own steps' outputs.
struct ActionFrame<'a> {
    path: &'a Path,
    inputs: &'a BTreeMap<String, String>,
    steps: &'a mut StepOutputs,
}

/// The state of a job between steps.
struct GitHubJobState {
    env: BTreeMap<String, String>,
    path_additions: Vec<String>,
    steps: StepOutputs,
    failed: bool,
    records: Vec<StepRecord>,
}

impl GitHubRun {
    fn event_path(&self) -> PathBuf {
        let path = self.home.join(format!("event-{}.json", self.event_name));
        std::fs::write(&path, serde_json::to_vec_pretty(&self.event).unwrap()).unwrap();
        path
    }

    fn scope<'a>(
        &'a self,
        env: &'a BTreeMap<String, String>,
        steps: &'a StepOutputs,
        failed: bool,
    ) -> GitHubScope<'a> {
        GitHubScope {
            run: self,
            env,
            inputs: None,
            steps,
            failed,
        }
    }

    /// The jobs whose `if:` holds for this event.
    pub(crate) fn jobs_to_run(&self) -> Vec<String> {
        let empty = BTreeMap::new();
        let steps = BTreeMap::new();
        let scope = self.scope(&empty, &steps, false);
        as_map(&self.workflow["jobs"], "jobs")
            .iter()
            .filter(|(_, job)| scope.condition(job.get("if")))
            .map(|(name, _)| name.as_str().unwrap().to_owned())
            .collect()
    }

    /// The variables the runner sets for every step.
    fn default_env(&self, job: &str) -> BTreeMap<String, String> {
        let (owner, _) = self.repository.split_once('/').unwrap();
        let ref_name = self
            .git_ref
            .rsplit_once('/')
            .map_or(self.git_ref.clone(), |(_, name)| name.to_owned());
        let mut env: BTreeMap<String, String> = [
            ("CI", "true".to_owned()),
            ("GITHUB_ACTIONS", "true".to_owned()),
            ("GITHUB_JOB", job.to_owned()),
            (
                "GITHUB_WORKFLOW",
                self.workflow["name"]
                    .as_str()
                    .unwrap_or("workflow")
                    .to_owned(),
            ),
            ("GITHUB_RUN_ID", self.run_id.clone()),
            ("GITHUB_RUN_NUMBER", "1".to_owned()),
            ("GITHUB_RUN_ATTEMPT", "1".to_owned()),
            ("GITHUB_ACTOR", self.actor.clone()),
            ("GITHUB_REPOSITORY", self.repository.clone()),
            ("GITHUB_REPOSITORY_OWNER", owner.to_owned()),
            ("GITHUB_EVENT_NAME", self.event_name.clone()),
            ("GITHUB_EVENT_PATH", self.event_path().display().to_string()),
            ("GITHUB_WORKSPACE", self.workspace.display().to_string()),
            ("GITHUB_SHA", self.sha.clone()),
            ("GITHUB_REF", self.git_ref.clone()),
            ("GITHUB_REF_NAME", ref_name),
            (
                "GITHUB_REF_TYPE",
                if self.git_ref.starts_with("refs/heads/") {
                    "branch"
                } else {
                    ""
                }
                .to_owned(),
            ),
            ("GITHUB_HEAD_REF", self.head_ref.clone()),
            ("GITHUB_BASE_REF", self.base_ref.clone()),
            ("GITHUB_SERVER_URL", "https://github.com".to_owned()),
            ("GITHUB_API_URL", "https://api.github.com".to_owned()),
            ("RUNNER_OS", "Linux".to_owned()),
            ("RUNNER_ARCH", "X64".to_owned()),
            (
                "RUNNER_TEMP",
                self.home.join("runner-temp").display().to_string(),
            ),
            ("HOME", self.home.display().to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        env.extend(self.runner_env.clone());
        env
    }

    /// Runs the steps of `job` in order.
    pub(crate) fn run_job(&self, job: &str) -> JobRun {
        let job_value = &self.workflow["jobs"][job];
        assert!(!job_value.is_null(), "no job {job}");
        std::fs::create_dir_all(self.home.join("runner-temp")).unwrap();
        let mut state = GitHubJobState {
            env: BTreeMap::new(),
            path_additions: Vec::new(),
            steps: BTreeMap::new(),
            failed: false,
            records: Vec::new(),
        };
        // Workflow env, then job env, each evaluated where it is defined.
        for scope_env in [self.workflow.get("env"), job_value.get("env")] {
            for (name, value) in string_map(scope_env) {
                let value = self
                    .scope(&state.env, &state.steps, false)
                    .substitute(&value);
                state.env.insert(name, value);
            }
        }
        let steps = job_value["steps"].as_sequence().expect("steps");
        for (index, step) in steps.iter().enumerate() {
            let id = step["id"]
                .as_str()
                .map_or_else(|| format!("step-{index}"), str::to_owned);
            self.run_step(job, &id, step, &mut state, None);
        }
        JobRun {
            job: job.to_owned(),
            success: !state.failed,
            steps: state.records,
        }
    }

    /// Runs one step; `action` is the composite action being run, if any.
    fn run_step(
        &self,
        job: &str,
        id: &str,
        step: &Value,
        state: &mut GitHubJobState,
        action: Option<ActionFrame<'_>>,
    ) {
        let (action_path, inputs, local_steps) = match action {
            Some(frame) => (Some(frame.path), Some(frame.inputs), Some(frame.steps)),
            None => (None, None, None),
        };
        let steps_view = local_steps.as_deref().unwrap_or(&state.steps).clone();
        let scope = GitHubScope {
            run: self,
            env: &state.env,
            inputs,
            steps: &steps_view,
            failed: state.failed,
        };
        if !scope.condition(step.get("if")) {
            state.records.push(StepRecord {
                name: id.to_owned(),
                commands: "(skipped: if: is false)".to_owned(),
                exit_code: None,
                stdout: String::new(),
                stderr: String::new(),
            });
            return;
        }
        let mut env = self.default_env(job);
        env.extend(state.env.clone());
        for (name, value) in string_map(step.get("env")) {
            env.insert(name, scope.substitute(&value));
        }
        let mut path = state
            .path_additions
            .iter()
            .rev()
            .cloned()
            .collect::<Vec<_>>();
        path.push(OS_PATH.to_owned());
        env.insert("PATH".to_owned(), path.join(":"));
        if let Some(action_path) = action_path {
            env.insert(
                "GITHUB_ACTION_PATH".to_owned(),
                action_path.display().to_string(),
            );
        }
        env.insert("GITHUB_ACTION".to_owned(), id.to_owned());

        if let Some(uses) = step.get("uses").and_then(Value::as_str) {
            assert!(action_path.is_none(), "nested actions are not emulated");
            let with: BTreeMap<String, String> = string_map(step.get("with"))
                .into_iter()
                .map(|(name, value)| (name, scope.substitute(&value)))
                .collect();
            if uses.starts_with("actions/checkout@") {
                state.records.push(StepRecord {
                    name: id.to_owned(),
                    commands: format!("{uses} (emulated: the repository is checked out already)"),
                    exit_code: None,
                    stdout: String::new(),
                    stderr: String::new(),
                });
                return;
            }
            let (prefix, root) = &self.our_action;
            assert!(
                uses.starts_with(prefix.as_str()),
                "step {id} uses {uses}, which the test does not emulate"
            );
            self.run_action(job, id, root, &with, state);
            return;
        }

        let run = step["run"]
            .as_str()
            .unwrap_or_else(|| panic!("step {id} has neither run nor uses"));
        let script = scope.substitute(run);
        let shell = step["shell"].as_str().unwrap_or("bash");
        let directory = match step.get("working-directory").and_then(Value::as_str) {
            Some(dir) => self.workspace.join(scope.substitute(dir)),
            None => self.workspace.clone(),
        };
        let files = [
            "GITHUB_ENV",
            "GITHUB_PATH",
            "GITHUB_OUTPUT",
            "GITHUB_STEP_SUMMARY",
        ];
        for name in files {
            let file = self.home.join(format!("{name}-{}", rand_suffix()));
            std::fs::write(&file, "").unwrap();
            env.insert(name.to_owned(), file.display().to_string());
        }
        let (code, stdout, stderr) = run_shell(shell, &script, &directory, &env, &self.home);
        for (name, value) in read_key_values(Path::new(&env["GITHUB_ENV"])) {
            state.env.insert(name, value);
        }
        for line in std::fs::read_to_string(&env["GITHUB_PATH"])
            .unwrap_or_default()
            .lines()
        {
            if !line.trim().is_empty() {
                state.path_additions.push(line.trim().to_owned());
            }
        }
        let outputs: BTreeMap<String, String> = read_key_values(Path::new(&env["GITHUB_OUTPUT"]))
            .into_iter()
            .collect();
        match local_steps {
            Some(steps) => steps.insert(id.to_owned(), outputs),
            None => state.steps.insert(id.to_owned(), outputs),
        };
        if code != 0 {
            state.failed = true;
        }
        state.records.push(StepRecord {
            name: id.to_owned(),
            commands: script,
            exit_code: Some(code),
            stdout,
            stderr,
        });
    }

    /// Runs this repository's composite `action.yml` as the step `id`.
    fn run_action(
        &self,
        job: &str,
        id: &str,
        root: &Path,
        with: &BTreeMap<String, String>,
        state: &mut GitHubJobState,
    ) {
        let action: Value = serde_yaml_ng::from_str(
            &std::fs::read_to_string(root.join("action.yml")).expect("action.yml"),
        )
        .expect("action.yml is YAML");
        assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
        let mut inputs = BTreeMap::new();
        for (name, spec) in as_map(&action["inputs"], "inputs") {
            let name = name.as_str().unwrap().to_owned();
            let default = match &spec["default"] {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => panic!("input {name}: default {other:?}"),
            };
            inputs.insert(name, default);
        }
        for (name, value) in with {
            assert!(inputs.contains_key(name), "the action has no input {name}");
            inputs.insert(name.clone(), value.clone());
        }
        let mut action_steps = BTreeMap::new();
        for (index, step) in action["runs"]["steps"]
            .as_sequence()
            .expect("runs.steps")
            .iter()
            .enumerate()
        {
            let step_id = step["id"]
                .as_str()
                .map_or_else(|| format!("step-{index}"), str::to_owned);
            assert!(
                step.get("shell").is_some(),
                "composite step {step_id} needs shell:"
            );
            self.run_step(
                job,
                &format!("{id}/{step_id}"),
                step,
                state,
                Some(ActionFrame {
                    path: root,
                    inputs: &inputs,
                    steps: &mut action_steps,
                }),
            );
            // The composite's own step ids are what `steps.` means inside it.
            if let Some(outputs) = action_steps.remove(&format!("{id}/{step_id}")) {
                action_steps.insert(step_id, outputs);
            }
        }
        let scope = GitHubScope {
            run: self,
            env: &state.env,
            inputs: Some(&inputs),
            steps: &action_steps,
            failed: state.failed,
        };
        let outputs: BTreeMap<String, String> = action
            .get("outputs")
            .and_then(Value::as_mapping)
            .map(|outputs| {
                outputs
                    .iter()
                    .map(|(name, spec)| {
                        (
                            name.as_str().unwrap().to_owned(),
                            scope.substitute(spec["value"].as_str().unwrap_or_default()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        state.steps.insert(id.to_owned(), outputs);
    }
}

/// A GitLab CI pipeline of one event on this machine.
pub(crate) struct GitLabRun {
    pub(crate) pipeline: Value,
    /// The checkout (`CI_PROJECT_DIR`).
    pub(crate) project_dir: PathBuf,
    /// Predefined variables of the event and the project's CI/CD variables (secrets).
    pub(crate) variables: BTreeMap<String, String>,
    pub(crate) home: PathBuf,
    /// Variables the runner machine has on top of the OS (e.g. a download mirror).
    pub(crate) runner_env: BTreeMap<String, String>,
}

/// Keys of a GitLab file that are not jobs.
const GITLAB_KEYWORDS: &[&str] = &[
    "variables",
    "stages",
    "workflow",
    "default",
    "include",
    "image",
    "services",
    "before_script",
    "after_script",
    "cache",
];

/// How a job was added to the pipeline by its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    OnSuccess,
    Manual,
}

fn merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            let mut merged = base.clone();
            for (key, value) in over {
                let value = match merged.get(key) {
                    Some(existing) => merge(existing, value),
                    None => value.clone(),
                };
                merged.insert(key.clone(), value);
            }
            Value::Mapping(merged)
        }
        (_, over) => over.clone(),
    }
}

impl GitLabRun {
    /// The job with its `extends` chain merged in (hashes deep-merged, arrays replaced).
    fn resolved(&self, name: &str) -> Value {
        let job = self
            .pipeline
            .get(name)
            .unwrap_or_else(|| panic!("no job {name}"))
            .clone();
        match job.get("extends").and_then(Value::as_str) {
            Some(parent) => {
                let mut merged = merge(&self.resolved(parent), &job);
                if let Value::Mapping(map) = &mut merged {
                    map.remove("extends");
                }
                merged
            }
            None => job,
        }
    }

    fn expand(&self, text: &str, variables: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '$' {
                out.push(c);
                continue;
            }
            let braced = chars.peek() == Some(&'{');
            if braced {
                chars.next();
            }
            let mut name = String::new();
            while let Some(&next) = chars.peek() {
                if next.is_ascii_alphanumeric() || next == '_' {
                    name.push(next);
                    chars.next();
                } else {
                    break;
                }
            }
            if braced {
                assert_eq!(chars.next(), Some('}'), "unterminated ${{ in {text}");
            }
            match variables.get(&name) {
                Some(value) => out.push_str(value),
                None if name.is_empty() => out.push('$'),
                None => {}
            }
        }
        out
    }

    fn rule_matches(&self, rule: &Value, variables: &BTreeMap<String, String>) -> bool {
        match rule.get("if").and_then(Value::as_str) {
            Some(condition) => {
                expr::evaluate(condition, &|operand| match operand.strip_prefix('$') {
                    Some(name) => variables
                        .get(name)
                        .filter(|value| !value.is_empty())
                        .map_or(Val::Null, |value| Val::Str(value.clone())),
                    None => panic!("the GitLab emulator does not know {operand}"),
                })
                .truthy()
            }
            None => true,
        }
    }

    /// The variables of the pipeline: predefined and CI/CD ones, then the file's, expanded.
    fn pipeline_variables(&self) -> BTreeMap<String, String> {
        let mut variables = self.variables.clone();
        for (name, value) in string_map(self.pipeline.get("variables")) {
            let value = self.expand(&value, &variables);
            variables.insert(name, value);
        }
        variables
    }

    /// The jobs this event adds to the pipeline (none when `workflow: rules` exclude it).
    pub(crate) fn jobs_to_run(&self) -> Vec<(String, When)> {
        let variables = self.pipeline_variables();
        let workflow_rules = self.pipeline["workflow"]["rules"].as_sequence();
        if let Some(rules) = workflow_rules
            && !rules.iter().any(|rule| self.rule_matches(rule, &variables))
        {
            return Vec::new();
        }
        let mut jobs = Vec::new();
        for (name, _) in as_map(&self.pipeline, "pipeline") {
            let name = name.as_str().unwrap();
            if name.starts_with('.') || GITLAB_KEYWORDS.contains(&name) {
                continue;
            }
            let job = self.resolved(name);
            let when = match job["rules"].as_sequence() {
                Some(rules) => match rules
                    .iter()
                    .find(|rule| self.rule_matches(rule, &variables))
                {
                    Some(rule) => match rule["when"].as_str() {
                        Some("manual") => Some(When::Manual),
                        Some("never") => None,
                        _ => Some(When::OnSuccess),
                    },
                    None => None,
                },
                None => Some(When::OnSuccess),
            };
            if let Some(when) = when {
                jobs.push((name.to_owned(), when));
            }
        }
        jobs
    }

    /// Runs `job`: `before_script` and `script` in one shell, then `after_script` in another.
    pub(crate) fn run_job(&self, name: &str) -> JobRun {
        let job = self.resolved(name);
        let mut variables = self.pipeline_variables();
        for (key, value) in string_map(job.get("variables")) {
            let value = self.expand(&value, &variables);
            variables.insert(key, value);
        }
        let mut env = self.runner_env.clone();
        env.extend(variables);
        env.insert("HOME".to_owned(), self.home.display().to_string());
        env.insert("PATH".to_owned(), OS_PATH.to_owned());
        env.insert("CI_JOB_NAME".to_owned(), name.to_owned());
        let lines = |key: &str| -> Vec<String> {
            job.get(key)
                .and_then(Value::as_sequence)
                .map(|items| {
                    items
                        .iter()
                        .map(|item| item.as_str().expect("script lines are strings").to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let script_of = |commands: &[String]| -> String {
            commands
                .iter()
                .map(|command| {
                    // GitLab echoes each command before running it.
                    let first = command
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .replace('\'', r"'\''");
                    format!("printf '%s\\n' '$ {first}' >&2\n{command}\n")
                })
                .collect()
        };
        let mut commands = lines("before_script");
        commands.extend(lines("script"));
        let mut records = Vec::new();
        let main = script_of(&commands);
        let (code, stdout, stderr) = run_shell("bash", &main, &self.project_dir, &env, &self.home);
        records.push(StepRecord {
            name: "script".to_owned(),
            commands: main,
            exit_code: Some(code),
            stdout,
            stderr,
        });
        let after = lines("after_script");
        if !after.is_empty() {
            let after_script = script_of(&after);
            let (after_code, stdout, stderr) =
                run_shell("bash", &after_script, &self.project_dir, &env, &self.home);
            records.push(StepRecord {
                name: "after_script".to_owned(),
                commands: after_script,
                exit_code: Some(after_code),
                stdout,
                stderr,
            });
        }
        JobRun {
            job: name.to_owned(),
            success: code == 0,
            steps: records,
        }
    }
}
