//! Benchmark: parsing and validating a 5,000-location `dagster_cloud.yaml`, without and with a
//! `defaults` block (then every location is merged). Run with
//! `cargo bench -p dagster-deploy-buildconfig`; prints median / min / max over the runs.
//!
//! Each run times a bare `serde_yaml_ng::from_str::<serde_yaml_ng::Value>` of the same text
//! right before the full parse, so that both see the same machine load; the ratio of the two
//! medians (ours / bare parse) is the figure to compare across machines.

#![allow(
    clippy::print_stdout,
    reason = "a benchmark binary reports its table on stdout"
)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use dagster_deploy_buildconfig::DagsterCloudYaml;

const LOCATIONS: usize = 5_000;
const RUNS: usize = 41;

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

/// Median, min and max of `times`.
fn summary(mut times: Vec<Duration>) -> [Duration; 3] {
    times.sort();
    [times[times.len() / 2], times[0], times[times.len() - 1]]
}

/// Times the bare parse and the full parse of `text`, interleaved; results are dropped outside
/// the timed sections.
fn measure(text: &str) -> ([Duration; 3], [Duration; 3]) {
    let path = Path::new("/bench/dagster_cloud.yaml");
    let mut bare = Vec::with_capacity(RUNS);
    let mut ours = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let value: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).expect("benchmark document is valid YAML");
        bare.push(started.elapsed());
        assert!(value.is_mapping());
        drop(value);

        let started = Instant::now();
        let config = DagsterCloudYaml::parse(text, path).expect("benchmark document is valid");
        ours.push(started.elapsed());
        assert_eq!(config.locations().len(), LOCATIONS);
    }
    (summary(bare), summary(ours))
}

fn row(name: &str, [median, min, max]: [Duration; 3], extra: &str) {
    let ms = |duration: Duration| duration.as_secs_f64() * 1e3;
    println!(
        "{name:<42} {:>8.2}ms {:>8.2}ms {:>8.2}ms   {extra}",
        ms(median),
        ms(min),
        ms(max)
    );
}

fn main() {
    println!(
        "{:<42} {:>10} {:>10} {:>10}",
        "case", "median", "min", "max"
    );
    for (name, with_defaults) in [
        ("5000 locations", false),
        ("5000 locations + defaults", true),
    ] {
        let text = document(LOCATIONS, with_defaults);
        let (bare, ours) = measure(&text);
        let size = format!("({} KiB, {RUNS} runs)", text.len() / 1024);
        row(&format!("{name}: bare serde_yaml_ng::Value"), bare, &size);
        let ratio = ours[0].as_secs_f64() / bare[0].as_secs_f64();
        row(
            &format!("{name}: DagsterCloudYaml::parse"),
            ours,
            &format!("ratio of medians {ratio:.2}x"),
        );
    }
}
