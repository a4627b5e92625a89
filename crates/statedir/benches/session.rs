//! Benchmark of the hot session operations with 1,000 locations: recording an image for one
//! location and listing the session. Run with `cargo bench -p dagster-deploy-statedir`; prints a
//! table of median / min / max per operation.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dagster_deploy_statedir::{BuildConfig, BuildMetadata, NewLocation, Session, SessionInfo};

const LOCATIONS: usize = 1_000;
const RUNS: usize = 30;

fn measure(runs: usize, mut operation: impl FnMut()) -> (Duration, Duration, Duration) {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            operation();
            start.elapsed()
        })
        .collect();
    samples.sort();
    (samples[runs / 2], samples[0], samples[runs - 1])
}

fn main() {
    let dir = std::env::temp_dir().join(format!("dagster-deploy-bench-{}", std::process::id()));
    let locations = (0..LOCATIONS)
        .map(|index| NewLocation {
            location_name: format!("location{index:04}"),
            url: "https://acme.dagster.cloud".into(),
            deployment_name: "prod".into(),
            location_file: "/w/dagster_cloud.yaml".into(),
            is_branch_deployment: false,
            build: BuildMetadata {
                git_url: Some("https://github.com/acme/repo/tree/1a2b".into()),
                commit_hash: Some("1a2b".into()),
                build_config: Some(BuildConfig {
                    directory: Some(format!("/w/projects/p{index}")),
                    registry: Some("ghcr.io/acme/repo".into()),
                }),
                ..BuildMetadata::default()
            },
            status_url: Some("https://github.com/acme/repo/actions/runs/1".into()),
            project_dir: Some("/w".into()),
        })
        .collect();
    let info = SessionInfo {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created_at: jiff::Timestamp::now(),
        project_dir: PathBuf::from("/w"),
        organization_url: "https://acme.dagster.cloud".into(),
    };

    let start = Instant::now();
    let session = Session::create(&dir, info, locations).expect("create session");
    let create = start.elapsed();

    let requested = vec!["location0500".to_owned()];
    let mut counter = 0;
    let record = measure(RUNS, || {
        counter += 1;
        session
            .record_build_output(&requested, |state| {
                Ok(format!("ghcr.io/acme/{}:{counter}", state.location_name))
            })
            .expect("record build output");
    });
    let list = measure(RUNS, || {
        assert_eq!(session.locations().expect("list").len(), LOCATIONS);
    });
    let json = measure(RUNS, || {
        session.status_json_lines().expect("status");
    });

    println!("statedir with {LOCATIONS} locations, {RUNS} runs each (create took {create:.1?})");
    println!(
        "{:<34} {:>10} {:>10} {:>10}",
        "operation", "median", "min", "max"
    );
    for (name, (median, min, max)) in [
        ("record_build_output (1 location)", record),
        ("locations (list all)", list),
        ("status_json_lines", json),
    ] {
        println!("{name:<34} {median:>10.2?} {min:>10.2?} {max:>10.2?}");
    }
    std::fs::remove_dir_all(&dir).expect("remove bench directory");
}
