//! What a deploy records when it cannot simply succeed or fail: a build output changed while it
//! waited (the outcome is not written next to an image it did not send), the API went away
//! after Dagster+ accepted it (exit 9, "not tracked"), Ctrl-C or SIGTERM (exit 130 or 143,
//! "interrupted"), and a full disk while recording (exit 9). Each runs the real binary against
//! the Dagster+ emulator, with the concurrent actor a real process or signal.

use std::process::Command;
use std::time::{Duration, Instant};

use dagster_deploy_e2e::{Emulator, EmulatorConfig};

use crate::support::{Run, Sandbox, TOKEN};

const NOT_TRACKED: i32 = 9;
const INTERRUPTED: i32 = 130;
const TERMINATED: i32 = 143;

fn emulator(load_time: Duration) -> Emulator {
    Emulator::start_blocking(
        EmulatorConfig::default()
            .with_token(TOKEN)
            .with_load_time(load_time),
    )
}

/// A sandbox with a session at the emulator and image tag `v1` recorded for both locations.
fn built_session(emulator: &Emulator) -> Sandbox {
    Sandbox::built(&emulator.url())
}

/// The markdown status report.
fn markdown(sandbox: &Sandbox) -> String {
    sandbox
        .in_session(["status", "--output-format", "markdown"])
        .run()
        .success()
        .stdout
}

/// Starts `deploy` and returns once Dagster+ (the emulator) has accepted it.
fn deploy_until_accepted(sandbox: &Sandbox, emulator: &Emulator) -> std::process::Child {
    let child = sandbox
        .in_session(["deploy"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .spawn(true);
    let started = Instant::now();
    while emulator.deployed_locations().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the deploy never reached the emulator"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// The last history entry of a location: `(status, log)`.
fn last(sandbox: &Sandbox, name: &str) -> (String, String) {
    let state = sandbox
        .states()
        .into_iter()
        .find(|state| state["location_name"] == name)
        .expect("the location");
    let last = state["history"]
        .as_array()
        .and_then(|history| history.last())
        .expect("a history entry")
        .clone();
    (
        last["status"].as_str().unwrap_or_default().to_owned(),
        last["log"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The STATUS column of `status` for a location.
fn shown_status(sandbox: &Sandbox, name: &str) -> String {
    let table = sandbox.in_session(["status"]).run().success().stdout;
    let line = table
        .lines()
        .find(|line| line.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in\n{table}"));
    let cells: Vec<&str> = line
        .split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .collect();
    cells[2].to_owned()
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill (procps) must be installed");
    assert!(status.success());
}

#[test]
fn a_build_output_changed_while_deploy_waits_is_never_reported_as_deployed() {
    let emulator = emulator(Duration::from_millis(1500));
    let sandbox = built_session(&emulator);
    let deploy = deploy_until_accepted(&sandbox, &emulator);
    // A build job records a new image for alpha while the deploy waits for v1 to load.
    sandbox
        .in_session([
            "set-build-output",
            "--location-name",
            "alpha",
            "--image-tag",
            "v2",
        ])
        .run()
        .success();
    let run = Run::of(deploy).success();
    assert!(
        run.stderr.contains("alpha changed while the deploy ran"),
        "{}",
        run.stderr
    );
    // Dagster+ got v1 ...
    let sent: Vec<String> = emulator
        .deployed_locations()
        .into_iter()
        .filter(|location| location.name == "alpha")
        .map(|location| location.document["image"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(sent, ["registry.example.com/team/alpha:v1"]);
    // ... so v2, which the session now holds, is not reported as deployed.
    assert_eq!(
        last(&sandbox, "alpha"),
        (
            "pending".to_owned(),
            "deploy of registry.example.com/team/alpha:v1 succeeded, but the location changed during the deploy: deploy again".to_owned()
        )
    );
    assert_eq!(shown_status(&sandbox, "alpha"), "superseded");
    assert_eq!(
        last(&sandbox, "beta"),
        ("success".to_owned(), "deploy successful".to_owned())
    );
    assert_eq!(shown_status(&sandbox, "beta"), "success");
    let report = markdown(&sandbox);
    assert!(report.contains("[Changed during deploy]"), "{report}");
}

#[test]
fn an_api_that_goes_away_after_accepting_is_not_tracked_not_a_failed_deploy() {
    let emulator = emulator(Duration::from_secs(600));
    let sandbox = built_session(&emulator);
    let deploy = deploy_until_accepted(&sandbox, &emulator);
    drop(emulator);
    let run = Run::of(deploy).code(NOT_TRACKED);
    assert!(
        run.stderr
            .contains("Dagster+ accepted the deploy, but its load could not be tracked"),
        "{}",
        run.stderr
    );
    for name in ["alpha", "beta"] {
        let (status, log) = last(&sandbox, name);
        assert_eq!(status, "pending", "{log}");
        assert!(
            log.starts_with("deploy accepted, load not tracked: "),
            "{log}"
        );
        assert_eq!(shown_status(&sandbox, name), "not tracked");
    }
    let report = markdown(&sandbox);
    assert!(report.contains("[Deploy not tracked]"), "{report}");
}

#[test]
fn ctrl_c_and_sigterm_while_waiting_are_recorded_as_interrupted() {
    for (name, code) in [("INT", INTERRUPTED), ("TERM", TERMINATED)] {
        let emulator = emulator(Duration::from_secs(600));
        let sandbox = built_session(&emulator);
        let deploy = deploy_until_accepted(&sandbox, &emulator);
        signal(&deploy, name);
        let run = Run::of(deploy).code(code);
        assert!(
            run.stderr.contains("Dagster+ had accepted the deploy"),
            "{name}: {}",
            run.stderr
        );
        for location in ["alpha", "beta"] {
            let (status, log) = last(&sandbox, location);
            assert_eq!(status, "pending", "{name}: {log}");
            assert!(log.starts_with("deploy interrupted: "), "{name}: {log}");
            assert!(
                log.contains("Dagster+ had accepted the deploy"),
                "{name}: {log}"
            );
            assert_eq!(shown_status(&sandbox, location), "interrupted");
        }
    }
}

#[test]
fn ctrl_c_before_dagster_plus_answers_is_recorded_as_maybe_accepted() {
    let emulator = Emulator::start_blocking(EmulatorConfig {
        response_delay: Duration::from_secs(30),
        ..EmulatorConfig::default().with_token(TOKEN)
    });
    let sandbox = built_session(&emulator);
    let deploy = sandbox
        .in_session(["deploy"])
        .env("DAGSTER_CLOUD_API_TOKEN", TOKEN)
        .spawn(true);
    // The deploy request is in flight once the process says it is deploying; the answer takes
    // 30 s.
    std::thread::sleep(Duration::from_secs(2));
    signal(&deploy, "INT");
    let run = Run::of(deploy).code(INTERRUPTED);
    assert!(
        run.stderr.contains("before Dagster+ answered the deploy"),
        "{}",
        run.stderr
    );
    let (status, log) = last(&sandbox, "alpha");
    assert_eq!(status, "pending");
    assert_eq!(
        log,
        "deploy interrupted: interrupted (Ctrl-C) before Dagster+ answered (it may have been accepted)"
    );
}

#[test]
fn a_full_disk_while_recording_an_accepted_deploy_is_not_tracked_never_a_config_error() {
    let emulator = emulator(Duration::from_millis(100));
    let sandbox = built_session(&emulator);
    // Reading the session works; recording the outcome finds no space.
    let (stdout, stderr) = sandbox.on_a_full_disk(
        "\"$BIN\" --statedir \"$STATE\" deploy; echo \"exit=$?\"",
        &[("DAGSTER_CLOUD_API_TOKEN", TOKEN)],
    );
    assert!(
        stdout.contains(&format!("exit={NOT_TRACKED}")),
        "--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(emulator.deployed_locations().len() == 2);
    assert!(
        stderr.contains("Dagster+ accepted the deploy (2 of 2 location(s) loaded), but the outcome could not be recorded"),
        "{stderr}"
    );
    assert!(stderr.contains("No space left on device"), "{stderr}");
}
