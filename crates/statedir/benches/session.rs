//! Benchmark of the session operations at monorepo scale (2,000 locations by default): creating
//! a session (`start`), recording an image for every location in one call (`set-build-output`
//! over all), recording one location's image, and reading the whole session (`status`). Run
//! with `cargo bench -p dagster-deploy-statedir`; prints a table of median / min / max per
//! operation. `DD_BENCH_LOCATIONS` and `DD_BENCH_RUNS` change the size and the run count;
//! `DD_BENCH_DIR` the parent directory of the session (default: the temp dir).

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dagster_deploy_statedir::{
    BuildConfig, BuildMetadata, GitMetadata, NewLocation, Session, SessionInfo,
};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn measure(runs: usize, mut operation: impl FnMut(usize)) -> (Duration, Duration, Duration) {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|run| {
            let start = Instant::now();
            operation(run);
            start.elapsed()
        })
        .collect();
    samples.sort();
    (samples[runs / 2], samples[0], samples[runs - 1])
}

fn locations(count: usize) -> Vec<NewLocation> {
    (0..count)
        .map(|index| NewLocation {
            location_name: format!("location{index:04}"),
            url: "https://acme.dagster.cloud".into(),
            deployment_name: "prod".into(),
            location_file: "/w/dagster_cloud.yaml".into(),
            is_branch_deployment: false,
            build: BuildMetadata {
                git: GitMetadata {
                    url: Some("https://github.com/acme/repo/tree/1a2b".into()),
                    commit_hash: Some("1a2b".into()),
                    ..GitMetadata::default()
                },
                build_config: Some(BuildConfig {
                    directory: Some(format!("/w/projects/p{index}")),
                    registry: Some(format!("ghcr.io/acme/repo/p{index}")),
                }),
            },
            status_url: Some("https://github.com/acme/repo/actions/runs/1".into()),
            project_dir: Some("/w".into()),
        })
        .collect()
}

fn info() -> SessionInfo {
    SessionInfo {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created_at: jiff::Timestamp::now(),
        project_dir: PathBuf::from("/w"),
        organization_url: "https://acme.dagster.cloud".into(),
    }
}

fn main() {
    let count = setting("DD_BENCH_LOCATIONS", 2_000);
    let runs = setting("DD_BENCH_RUNS", 7).max(1);
    let parent = std::env::var_os("DD_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = parent.join(format!("dagster-deploy-bench-{}", std::process::id()));

    // `start` replaces the previous session each time, as it does in CI.
    let create = measure(runs, |_| {
        Session::create(&dir, info(), locations(count)).expect("create session");
    });
    let session = Session::open(&dir).expect("open session");
    let all = measure(runs, |run| {
        session
            .record_build_output(&[], |state| {
                Ok(format!(
                    "ghcr.io/acme/repo/{}:tag-{run}",
                    state.location_name
                ))
            })
            .expect("record build output");
    });
    let one_name = vec![format!("location{:04}", count / 2)];
    let one = measure(runs, |run| {
        session
            .record_build_output(&one_name, |state| {
                Ok(format!("ghcr.io/acme/{}:{run}", state.location_name))
            })
            .expect("record build output");
    });
    let status = measure(runs, |_| {
        let session = Session::open(&dir).expect("open session");
        assert_eq!(
            session.status_table().expect("status").lines().count(),
            count + 1
        );
    });

    println!("statedir with {count} locations, {runs} runs each");
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "operation", "median", "min", "max"
    );
    for (name, (median, min, max)) in [
        ("create (start)", create),
        ("record_build_output, every location", all),
        ("record_build_output, one location", one),
        ("open + status_table (status)", status),
    ] {
        println!("{name:<44} {median:>10.2?} {min:>10.2?} {max:>10.2?}");
    }
    std::fs::remove_dir_all(&dir).expect("remove bench directory");
}
