//! Sessions change all-or-nothing: every multi-location command, killed (SIGKILL) or
//! interrupted (SIGINT) at moments spread over its whole run, leaves every location file
//! complete and holding its old or its new value, and the next command completes an
//! interrupted change and says so. Also: the errors for files the session cannot use (a newer
//! schema, a FIFO), and I/O errors that are not configuration errors.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::Sandbox;

/// Locations in the crash tests: enough that replacing their files takes a while.
const LOCATIONS: usize = 300;
/// Kills per command.
const ROUNDS: usize = 24;

/// Kill moments, as fractions of an uninterrupted run: reproducible pseudo-random draws from a
/// bracket that narrows onto the window in which files are replaced. A kill that left every
/// file old without a journal was too early, one that left them all new without one too late.
struct Moments {
    state: u64,
    early: f64,
    late: f64,
}

impl Moments {
    fn new(seed: u64) -> Self {
        Moments {
            state: seed,
            early: 0.0,
            late: 1.25,
        }
    }

    fn next(&mut self) -> f64 {
        // A 64-bit LCG: good enough to spread kill moments, and the same on every run.
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let unit = (self.state >> 11) as f64 / (1u64 << 53) as f64;
        self.early + unit * (self.late - self.early)
    }

    fn too_early(&mut self, fraction: f64) {
        self.early = self.early.max(fraction).min(self.late);
    }

    fn too_late(&mut self, fraction: f64) {
        self.late = self.late.min(fraction).max(self.early);
    }
}

/// Every location's value of one field, read from the raw files (each must be complete JSON
/// in the reference's schema), sorted by location.
fn values(sandbox: &Sandbox, field: &dyn Fn(&serde_json::Value) -> String) -> Vec<String> {
    let states = sandbox.states();
    assert_eq!(states.len(), LOCATIONS, "a location file is missing");
    states.iter().map(field).collect()
}

fn distinct(values: &[String]) -> BTreeSet<&str> {
    values.iter().map(String::as_str).collect()
}

fn image(state: &serde_json::Value) -> String {
    state["build_output"]["image"]
        .as_str()
        .unwrap_or("none")
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn commit(state: &serde_json::Value) -> String {
    state["build"]["commit_hash"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

fn selected(state: &serde_json::Value) -> String {
    state["selected"].to_string()
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill (procps) must be installed");
    assert!(status.success(), "kill -{name} failed");
}

/// Runs the command of each round and kills it at a moment spread over its usual run time,
/// then checks that every file holds the old or the new value, that the next command makes
/// them all new if anything had changed (and says so), or leaves them all old.
///
/// `command(round)` changes every location from the value it holds (`reset`, if the command
/// first resets the session, else what the previous round left) to `expected(round)`. Round 0
/// runs to completion, to time it.
fn kill_at_spread_moments(
    sandbox: &Sandbox,
    what: &str,
    field: &dyn Fn(&serde_json::Value) -> String,
    command: &dyn Fn(usize) -> crate::support::Cli,
    expected: &dyn Fn(usize) -> String,
    reset: Option<&str>,
) {
    let started = Instant::now();
    command(0).run().success();
    let full = started.elapsed();
    // The timed run must change every file, or its time says nothing about the window.
    assert_eq!(
        distinct(&values(sandbox, field)),
        BTreeSet::from([expected(0).as_str()])
    );
    let mut moments = Moments::new(0x5eed ^ what.len() as u64);
    let mut current = expected(0);
    let (mut torn, mut completed) = (0, 0);
    for round in 1..=ROUNDS {
        let new = expected(round);
        let command = command(round);
        if let Some(reset) = reset {
            current = reset.to_owned();
        }
        let child = command.spawn(false);
        let fraction = moments.next();
        std::thread::sleep(full.mul_f64(fraction));
        let mut child = child;
        signal(&child, if round % 2 == 0 { "KILL" } else { "INT" });
        child.wait().expect("wait for the killed command");

        let raw = values(sandbox, field);
        let seen = distinct(&raw);
        for value in &seen {
            assert!(
                *value == current || *value == new,
                "{what}, round {round}: a location holds {value:?}, neither the old {current:?} nor the new {new:?}"
            );
        }
        if seen.len() > 1 {
            torn += 1;
        }
        // Any command that opens the session completes an interrupted change.
        let next = sandbox.in_session(["locations", "list"]).run().success();
        let after = values(sandbox, field);
        let after = distinct(&after);
        assert_eq!(
            after.len(),
            1,
            "{what}, round {round}: still mixed: {after:?}"
        );
        let value = after.into_iter().next().unwrap_or_default().to_owned();
        let repaired = next.stderr.contains("was interrupted");
        if seen.len() > 1 {
            assert!(
                repaired,
                "{what}, round {round}: repaired silently\n{}",
                next.stderr
            );
        }
        if repaired {
            completed += 1;
            assert_eq!(value, new, "{what}, round {round}: {}", next.stderr);
            assert!(next.stderr.contains("every location holds the new value"));
        } else if value == current {
            moments.too_early(fraction);
        } else {
            moments.too_late(fraction);
        }
        current = value;
    }
    // Files are put in place in a burst once their new contents are durable, tens of
    // microseconds each, which a kill at a random moment can miss: one more kill lands in the
    // middle of it for certain, injected by strace at the middle location's exchange.
    if let Some(reset) = reset {
        current = reset.to_owned();
    }
    // The command must change every file: a round whose value the session already holds (a
    // select after a kill that came too early, say) writes nothing and has nothing to kill.
    let round = (ROUNDS + 1..)
        .find(|round| expected(*round) != current)
        .expect("some round changes the value");
    let new = expected(round);
    let killed = command(round)
        .killed_at_call("renameat2", LOCATIONS / 2)
        .run();
    assert_ne!(
        killed.code,
        Some(0),
        "{what}: the command was not killed at its middle exchange\n{}",
        killed.stderr
    );
    let raw = values(sandbox, field);
    assert_eq!(
        distinct(&raw),
        BTreeSet::from([current.as_str(), new.as_str()]),
        "{what}: a kill at the middle exchange must leave old and new files"
    );
    torn += 1;
    let next = sandbox.in_session(["locations", "list"]).run().success();
    assert!(next.stderr.contains("was interrupted"), "{}", next.stderr);
    assert!(next.stderr.contains("every location holds the new value"));
    assert_eq!(
        distinct(&values(sandbox, field)),
        BTreeSet::from([new.as_str()])
    );
    completed += 1;
    // Kills before the commit point and after the end prove nothing: some must have landed
    // while the files were being replaced.
    assert!(
        torn >= 1 && completed >= 1,
        "{what}: {torn} of {ROUNDS} kills left a mixed session and {completed} were completed; the kills missed the window (a run took {full:?})"
    );
}

fn large_session() -> Sandbox {
    let sandbox = Sandbox::with_locations(LOCATIONS);
    sandbox.start(None);
    sandbox
}

fn start_with_commit(sandbox: &Sandbox, commit: &str) -> crate::support::Cli {
    sandbox
        .in_session(["start", "--skip-validation", "--deployment-type", "full"])
        .arg("--dagster-cloud-yaml")
        .arg(sandbox.yaml())
        .args([
            "--organization",
            "acme",
            "--deployment",
            "prod",
            "--commit-hash",
            commit,
        ])
}

#[test]
fn set_build_output_killed_at_any_moment_leaves_all_old_or_all_new() {
    let sandbox = large_session();
    kill_at_spread_moments(
        &sandbox,
        "set-build-output",
        &image,
        &|round| sandbox.in_session(["set-build-output", "--image-tag", &format!("t{round}")]),
        &|round| format!("t{round}"),
        None,
    );
}

#[test]
fn start_killed_at_any_moment_leaves_the_old_or_the_new_session() {
    let sandbox = large_session();
    kill_at_spread_moments(
        &sandbox,
        "start",
        &commit,
        &|round| start_with_commit(&sandbox, &format!("c{round}")),
        &|round| format!("c{round}"),
        None,
    );
}

#[test]
fn deselect_and_select_killed_at_any_moment_change_all_or_none() {
    let sandbox = large_session();
    let names: Vec<String> = (0..LOCATIONS)
        .map(|index| format!("loc-{index:04}"))
        .collect();
    kill_at_spread_moments(
        &sandbox,
        "select/deselect",
        &selected,
        // Round 0 (timed) deselects every location of the new session, round 1 selects them,
        // and so on: every round changes every file.
        &|round| {
            let verb = if round % 2 == 0 { "deselect" } else { "select" };
            sandbox.in_session(["locations", verb]).args(&names)
        },
        &|round| (round % 2 == 1).to_string(),
        None,
    );
}

#[test]
fn state_merge_killed_at_any_moment_takes_every_output_or_none() {
    let sandbox = large_session();
    // Each round merges into a fresh copy of the unbuilt session a copy in which every
    // location was built with the round's tag.
    let unbuilt = sandbox.path().join("unbuilt");
    copy_dir(&sandbox.statedir(), &unbuilt);
    let built = |round: usize| {
        let copy = sandbox.path().join(format!("built-{round}"));
        if !copy.exists() {
            copy_dir(&unbuilt, &copy);
            sandbox
                .cli(["--statedir".as_ref(), copy.as_os_str()])
                .args(["set-build-output", "--image-tag", &format!("m{round}")])
                .run()
                .success();
        }
        copy
    };
    for round in 0..=ROUNDS {
        built(round);
    }
    kill_at_spread_moments(
        &sandbox,
        "state merge",
        &image,
        &|round| {
            // The target starts unbuilt each round: the merge takes every output or none.
            std::fs::remove_dir_all(sandbox.statedir()).expect("clear the target");
            copy_dir(&unbuilt, &sandbox.statedir());
            sandbox.in_session(["state", "merge"]).arg(built(round))
        },
        &|round| format!("m{round}"),
        Some("none"),
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the session") {
        let entry = entry.expect("a dir entry");
        // Our spare directory is left out, as an artifact upload of hidden files would.
        if entry.file_type().expect("a file type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a file");
        }
    }
}

#[test]
fn a_state_file_from_a_newer_schema_is_named_as_such_and_never_called_corrupt() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let path = sandbox.statedir().join("location-alpha.json");
    let text = std::fs::read_to_string(&path).expect("read the state file");
    let newer = text.replacen('{', "{\"schema_version\":2,", 1);
    std::fs::write(&path, &newer).expect("write the state file");
    for args in [
        vec!["status"],
        vec!["set-build-output", "--image-tag", "v2"],
    ] {
        let run = sandbox.in_session(&args).run().code(3);
        assert!(run.stderr.contains("location-alpha.json"), "{}", run.stderr);
        assert!(run.stderr.contains("newer version"), "{}", run.stderr);
        assert!(run.stderr.contains("schema_version"), "{}", run.stderr);
        for advice in ["corrupt", "delete", "remove"] {
            assert!(!run.stderr.contains(advice), "{advice:?} in {}", run.stderr);
        }
    }
    // Left untouched.
    assert_eq!(
        std::fs::read_to_string(&path).expect("read it again"),
        newer
    );
}

/// Runs `cli` and fails if it has not finished after `limit` (instead of hanging the suite).
fn run_within(cli: crate::support::Cli, limit: Duration) -> crate::support::Run {
    let mut child = cli.spawn(true);
    let started = Instant::now();
    while child.try_wait().expect("poll the child").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command was still running after {limit:?}: it blocked");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::support::Run::of(child)
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils) must be installed");
    assert!(status.success());
}

#[test]
fn a_fifo_given_as_the_configuration_file_is_refused_at_once() {
    let sandbox = Sandbox::new();
    let fifo = sandbox.path().join("dagster_cloud.yaml");
    mkfifo(&fifo);
    let run = run_within(
        sandbox
            .cli(["check", "--offline", "--dagster-cloud-yaml"])
            .arg(&fifo),
        Duration::from_secs(20),
    )
    .code(3);
    assert!(run.stderr.contains("dagster_cloud.yaml"), "{}", run.stderr);
    assert!(run.stderr.contains("FIFO"), "{}", run.stderr);
}

#[test]
fn a_fifo_found_as_a_state_file_is_refused_at_once() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let path = sandbox.statedir().join("location-beta.json");
    std::fs::remove_file(&path).expect("remove the state file");
    mkfifo(&path);
    let run = run_within(sandbox.in_session(["status"]), Duration::from_secs(20)).code(3);
    assert!(run.stderr.contains("location-beta.json"), "{}", run.stderr);
    assert!(run.stderr.contains("FIFO"), "{}", run.stderr);
}

#[test]
fn a_full_disk_is_an_io_error_not_a_configuration_error_and_changes_nothing() {
    let sandbox = Sandbox::with_project();
    sandbox.start(None);
    let (stdout, stderr) = sandbox.on_a_full_disk(
        "\"$BIN\" --statedir \"$STATE\" set-build-output --image-tag v2; echo \"exit=$?\"; cat \"$STATE\"/location-*.json",
        &[],
    );
    assert!(
        stdout.contains("exit=10"),
        "expected exit 10\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(!stderr.contains("configuration"), "{stderr}");
    assert!(stderr.contains("free disk space"), "{stderr}");
    // Nothing changed: no location has the new image.
    assert!(!stdout.contains(":v2"), "{stdout}");
}
