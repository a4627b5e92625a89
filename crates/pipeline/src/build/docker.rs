//! The docker builder: `docker build` and `docker push` per location, each stopped after the
//! build timeout, as the reference builds.

use std::collections::HashMap;
use std::time::Duration;

use super::{BuildPlan, DockerBuild};
use crate::error::{Error, Result};
use crate::progress::{Event, Progress};

pub(super) async fn build(
    plans: &[BuildPlan],
    settings: &DockerBuild,
    tag: Option<&str>,
    progress: &dyn Progress,
) -> Result<HashMap<String, String>> {
    let mut images = HashMap::new();
    for plan in plans {
        let tag = match tag {
            Some(tag) => tag.to_owned(),
            None => derived_docker_tag(&plan.location, rand::random::<u128>()),
        };
        let image = format!("{}:{tag}", plan.registry);
        if !plan.dockerfile.is_file() {
            return Err(Error::NoDockerfile {
                location: plan.location.clone(),
                path: plan.dockerfile.clone(),
            });
        }
        let context_arg = plan.context_dir.to_string_lossy().into_owned();
        let dockerfile_arg = plan.dockerfile.to_string_lossy().into_owned();
        docker(
            settings.timeout,
            &[
                "build",
                &context_arg,
                "-t",
                &image,
                "-f",
                &dockerfile_arg,
                "--platform",
                &settings.platform,
            ],
            progress,
        )
        .await?;
        docker(settings.timeout, &["push", &image], progress).await?;
        images.insert(plan.location.clone(), image);
    }
    Ok(images)
}

/// The tag the docker builder gives an image when none is set, as the reference does:
/// `<location>-<32 hex digits>` from `random`, with every character a tag may not hold (a
/// location name may have spaces, `+` or accents) replaced by `-`, and short enough for the
/// 128-character limit.
pub fn derived_docker_tag(location: &str, random: u128) -> String {
    let mut name: String = location
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name: String = name
        .trim_matches(|c| matches!(c, '.' | '-'))
        .chars()
        .take(128 - 33)
        .collect();
    if name.is_empty() {
        format!("{random:032x}")
    } else {
        format!("{name}-{random:032x}")
    }
}

/// Runs `docker ARGUMENTS`, stopping it after `limit`.
async fn docker(limit: Duration, arguments: &[&str], progress: &dyn Progress) -> Result<()> {
    progress.event(&Event::Running {
        program: "docker",
        arguments,
    });
    let command = arguments[0].to_owned();
    let mut child = tokio::process::Command::new("docker")
        .args(arguments)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| Error::DockerSpawn { error })?;
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status.map_err(|error| Error::DockerWait {
            command: command.clone(),
            error,
        })?,
        Err(_) => {
            // Dropping the child kills it (`kill_on_drop`).
            drop(child);
            return Err(Error::DockerTimeout { command, limit });
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(Error::DockerFailed { command, status })
    }
}
