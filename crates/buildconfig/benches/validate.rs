//! Benchmark: parsing and validating a 5,000-location `dagster_cloud.yaml` (with `defaults`, so
//! every location is merged). Run with `cargo bench -p dagster-deploy-buildconfig`; prints a
//! table of median / min / max over the runs.

#![allow(
    clippy::print_stdout,
    reason = "a benchmark binary reports its table on stdout"
)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use dagster_deploy_buildconfig::DagsterCloudYaml;

const LOCATIONS: usize = 5_000;
const RUNS: usize = 25;

fn document(locations: usize, with_defaults: bool) -> String {
    let mut text = String::new();
    if with_defaults {
        text.push_str(
            "defaults:\n  build:\n    registry: 123456789012.dkr.ecr.us-east-1.amazonaws.com/base\n  agent_queue: default\n  container_context:\n    k8s:\n      namespace: dagster\n      env_vars: [LOG_LEVEL=info, REGION=us]\n",
        );
    }
    text.push_str("locations:\n");
    for index in 0..locations {
        let _ = write!(
            text,
            "  - location_name: location-{index}\n    code_source:\n      module_name: pkg_{index}.definitions\n    working_directory: /opt/app/{index}\n    build:\n      directory: ./pkg_{index}\n      registry: ghcr.io/acme/location-{index}\n    container_context:\n      k8s:\n        env_vars: [REGION=eu, TEAM=t{index}]\n"
        );
    }
    text
}

fn measure(text: &str) -> (Duration, Duration, Duration) {
    let path = Path::new("/bench/dagster_cloud.yaml");
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let config = DagsterCloudYaml::parse(text, path).expect("benchmark document is valid");
            let elapsed = started.elapsed();
            assert_eq!(config.locations().len(), LOCATIONS);
            elapsed
        })
        .collect();
    times.sort();
    (times[RUNS / 2], times[0], times[RUNS - 1])
}

/// Baseline: serde_yaml_ng alone parsing the same text into its own `Value`.
fn measure_baseline(text: &str) -> (Duration, Duration, Duration) {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let value: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(text).expect("benchmark document is valid YAML");
            let elapsed = started.elapsed();
            assert!(value.is_mapping());
            elapsed
        })
        .collect();
    times.sort();
    (times[RUNS / 2], times[0], times[RUNS - 1])
}

fn main() {
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "case", "median", "min", "max"
    );
    let cases = [
        ("serde_yaml_ng::Value only (baseline)", false, true),
        ("5000 locations", false, false),
        ("5000 locations + defaults", true, false),
    ];
    for (name, with_defaults, baseline) in cases {
        let text = document(LOCATIONS, with_defaults);
        let (median, min, max) = if baseline {
            measure_baseline(&text)
        } else {
            measure(&text)
        };
        println!(
            "{:<40} {:>8.2}ms {:>8.2}ms {:>8.2}ms   ({} KiB, {RUNS} runs)",
            name,
            median.as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            text.len() / 1024
        );
    }
}
