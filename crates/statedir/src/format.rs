//! The on-disk JSON of `location-<name>.json` (reference-behaviour §2.3) and of our own session
//! file. This is a contract with the reference tools: keys, key order, discriminators, status
//! strings and the timestamp form must stay byte-compatible. The serde types never leave this
//! module.

use std::path::Path;

use jiff::{Timestamp, civil, tz::TimeZone};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::model::{
    BuildConfig, BuildMetadata, BuildOutput, DefsStateInfo, DefsStateVersion, GitMetadata,
    LocationState, RecordedOutcome, SessionInfo, Status, StatusChange, TimestampForm,
};

/// Deserialises a nullable field whose key must be present (serde otherwise defaults a missing
/// `Option` to `None`).
fn required<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> std::result::Result<Option<T>, D::Error> {
    Option::<T>::deserialize(deserializer)
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LocationFile {
    url: String,
    deployment_name: String,
    location_file: String,
    location_name: String,
    is_branch_deployment: bool,
    #[serde(default = "yes")]
    selected: bool,
    build: BuildFile,
    #[serde(default)]
    build_output: Option<BuildOutputFile>,
    #[serde(default)]
    defs_state_info: Option<DefsStateInfoFile>,
    #[serde(deserialize_with = "required")]
    status_url: Option<String>,
    #[serde(default)]
    history: Vec<StatusChangeFile>,
    #[serde(default)]
    project_dir: Option<String>,
}

/// The reference tolerates unknown keys here; we keep them so that a rewrite preserves them.
#[derive(Serialize, Deserialize)]
struct BuildFile {
    #[serde(deserialize_with = "required")]
    git_url: Option<String>,
    #[serde(deserialize_with = "required")]
    commit_hash: Option<String>,
    #[serde(deserialize_with = "required")]
    build_config: Option<BuildConfigFile>,
    #[serde(default)]
    git_provider: Option<String>,
    #[serde(default)]
    repo_owner: Option<String>,
    #[serde(default)]
    repo_name: Option<String>,
    #[serde(default)]
    base_branch: Option<String>,
    #[serde(default)]
    defs_base_path: Option<String>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildConfigFile {
    #[serde(default)]
    directory: Option<String>,
    #[serde(default)]
    registry: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "strategy")]
enum BuildOutputFile {
    #[serde(rename = "docker")]
    Docker(DockerOutputFile),
    #[serde(rename = "python-executable")]
    PythonExecutable(PexOutputFile),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DockerOutputFile {
    #[serde(default)]
    python_version: Option<String>,
    image: String,
    #[serde(default)]
    pex_bundle: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PexOutputFile {
    python_version: String,
    #[serde(deserialize_with = "required")]
    image: Option<String>,
    pex_tag: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefsStateInfoFile {
    info_mapping: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefsStateVersionFile {
    version: String,
    create_timestamp: f64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChangeFile {
    timestamp: String,
    status: StatusFile,
    log: String,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum StatusFile {
    Success,
    Pending,
    Failed,
}

/// Parses a location state file's bytes. `path` is only used in errors.
///
/// A file the strict schema rejects is told apart: one that is valid JSON but has keys or
/// values this version does not know was written by a newer tool ([`Error::NewerFormat`]);
/// anything else is damaged ([`Error::Corrupt`]).
pub(crate) fn parse_location(path: &Path, bytes: &[u8]) -> Result<LocationState> {
    let corrupt = |detail: String| Error::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let file: LocationFile = serde_json::from_slice(bytes).map_err(|err| {
        match serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .as_ref()
            .and_then(newer_schema)
        {
            Some(detail) => Error::NewerFormat {
                path: path.to_path_buf(),
                detail,
            },
            None => corrupt(err.to_string()),
        }
    })?;
    location_from_file(file).map_err(corrupt)
}

/// The keys and values each object of a location file may hold (reference-behaviour §2.3).
const LOCATION_KEYS: &[&str] = &[
    "url",
    "deployment_name",
    "location_file",
    "location_name",
    "is_branch_deployment",
    "selected",
    "build",
    "build_output",
    "defs_state_info",
    "status_url",
    "history",
    "project_dir",
];
const BUILD_CONFIG_KEYS: &[&str] = &["directory", "registry"];
const DOCKER_OUTPUT_KEYS: &[&str] = &["strategy", "python_version", "image", "pex_bundle"];
const PEX_OUTPUT_KEYS: &[&str] = &["strategy", "python_version", "image", "pex_tag"];
const HISTORY_KEYS: &[&str] = &["timestamp", "status", "log"];
const STATUSES: &[&str] = &["success", "pending", "failed"];

/// Why a location file that is valid JSON looks written by a newer schema: the first key or
/// value this version does not know. `None` when nothing is unknown (the file is damaged).
fn newer_schema(value: &serde_json::Value) -> Option<String> {
    let object = value.as_object()?;
    let unknown_key =
        |object: &serde_json::Map<String, serde_json::Value>, known: &[&str], place: &str| {
            object
                .keys()
                .find(|key| !known.contains(&key.as_str()))
                .map(|key| format!("{place} has the key {key:?}, which this version does not know"))
        };
    if let Some(found) = unknown_key(object, LOCATION_KEYS, "the state") {
        return Some(found);
    }
    if let Some(config) = object
        .get("build")
        .and_then(|build| build.get("build_config"))
        .and_then(serde_json::Value::as_object)
        && let Some(found) = unknown_key(config, BUILD_CONFIG_KEYS, "build.build_config")
    {
        return Some(found);
    }
    if let Some(output) = object
        .get("build_output")
        .and_then(serde_json::Value::as_object)
    {
        let strategy = output.get("strategy").and_then(serde_json::Value::as_str);
        let known = match strategy {
            Some("docker") => DOCKER_OUTPUT_KEYS,
            Some("python-executable") => PEX_OUTPUT_KEYS,
            Some(other) => {
                return Some(format!(
                    "build_output has the strategy {other:?}, which this version does not know"
                ));
            }
            None => return None,
        };
        if let Some(found) = unknown_key(output, known, "build_output") {
            return Some(found);
        }
    }
    for (index, change) in object
        .get("history")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(change) = change.as_object() else {
            continue;
        };
        if let Some(found) = unknown_key(change, HISTORY_KEYS, &format!("history[{index}]")) {
            return Some(found);
        }
        if let Some(status) = change.get("status").and_then(serde_json::Value::as_str)
            && !STATUSES.contains(&status)
        {
            return Some(format!(
                "history[{index}] has the status {status:?}, which this version does not know"
            ));
        }
    }
    None
}

/// Serialises a location state exactly as the reference does: compact, no trailing newline.
pub(crate) fn render_location(state: &LocationState) -> String {
    let file = location_to_file(state);
    // Serialising plain structs and maps of strings to a string cannot fail.
    serde_json::to_string(&file).unwrap_or_default()
}

fn location_from_file(file: LocationFile) -> std::result::Result<LocationState, String> {
    let history = file
        .history
        .into_iter()
        .enumerate()
        .map(|(index, change)| {
            let (timestamp, form) = parse_timestamp(&change.timestamp)
                .map_err(|detail| format!("history[{index}].timestamp: {detail}"))?;
            Ok(StatusChange {
                timestamp,
                status: match change.status {
                    StatusFile::Success => Status::Success,
                    StatusFile::Pending => Status::Pending,
                    StatusFile::Failed => Status::Failed,
                },
                log: change.log,
                form,
            })
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    let defs_state_info = file
        .defs_state_info
        .map(|info| {
            let info_mapping = info
                .info_mapping
                .into_iter()
                .map(|(key, value)| {
                    if value.is_null() {
                        return Ok((key, None));
                    }
                    let version: DefsStateVersionFile = serde_json::from_value(value)
                        .map_err(|err| format!("defs_state_info.info_mapping.{key}: {err}"))?;
                    Ok((
                        key,
                        Some(DefsStateVersion {
                            version: version.version,
                            create_timestamp: version.create_timestamp,
                        }),
                    ))
                })
                .collect::<std::result::Result<Vec<_>, String>>()?;
            Ok::<_, String>(DefsStateInfo { info_mapping })
        })
        .transpose()?;
    let build_output = file.build_output.map(|output| match output {
        BuildOutputFile::Docker(docker) => BuildOutput::Docker {
            image: docker.image,
            python_version: docker.python_version,
            pex_bundle: docker.pex_bundle,
        },
        BuildOutputFile::PythonExecutable(pex) => BuildOutput::PythonExecutable {
            python_version: pex.python_version,
            image: pex.image,
            pex_tag: pex.pex_tag,
        },
    });
    let build = file.build;
    Ok(LocationState {
        location_name: file.location_name,
        url: file.url,
        deployment_name: file.deployment_name,
        location_file: file.location_file,
        is_branch_deployment: file.is_branch_deployment,
        selected: file.selected,
        build: BuildMetadata {
            git: GitMetadata {
                commit_hash: build.commit_hash,
                url: build.git_url,
                provider: build.git_provider,
                repo_owner: build.repo_owner,
                repo_name: build.repo_name,
                base_branch: build.base_branch,
                defs_base_path: build.defs_base_path,
            },
            build_config: build.build_config.map(|config| BuildConfig {
                directory: config.directory,
                registry: config.registry,
            }),
        },
        build_output,
        defs_state_info,
        status_url: file.status_url,
        history,
        project_dir: file.project_dir,
        extra_build_keys: build.extra,
    })
}

fn location_to_file(state: &LocationState) -> LocationFile {
    let git = &state.build.git;
    LocationFile {
        url: state.url.clone(),
        deployment_name: state.deployment_name.clone(),
        location_file: state.location_file.clone(),
        location_name: state.location_name.clone(),
        is_branch_deployment: state.is_branch_deployment,
        selected: state.selected,
        build: BuildFile {
            git_url: git.url.clone(),
            commit_hash: git.commit_hash.clone(),
            build_config: state
                .build
                .build_config
                .as_ref()
                .map(|config| BuildConfigFile {
                    directory: config.directory.clone(),
                    registry: config.registry.clone(),
                }),
            git_provider: git.provider.clone(),
            repo_owner: git.repo_owner.clone(),
            repo_name: git.repo_name.clone(),
            base_branch: git.base_branch.clone(),
            defs_base_path: git.defs_base_path.clone(),
            extra: state.extra_build_keys.clone(),
        },
        build_output: state.build_output.as_ref().map(|output| match output {
            BuildOutput::Docker {
                image,
                python_version,
                pex_bundle,
            } => BuildOutputFile::Docker(DockerOutputFile {
                python_version: python_version.clone(),
                image: image.clone(),
                pex_bundle: *pex_bundle,
            }),
            BuildOutput::PythonExecutable {
                python_version,
                image,
                pex_tag,
            } => BuildOutputFile::PythonExecutable(PexOutputFile {
                python_version: python_version.clone(),
                image: image.clone(),
                pex_tag: pex_tag.clone(),
            }),
        }),
        defs_state_info: state
            .defs_state_info
            .as_ref()
            .map(|info| DefsStateInfoFile {
                info_mapping: info
                    .info_mapping
                    .iter()
                    .map(|(key, version)| {
                        let value = match version {
                            None => serde_json::Value::Null,
                            Some(version) => serde_json::json!({
                                "version": version.version,
                                "create_timestamp": version.create_timestamp,
                            }),
                        };
                        (key.clone(), value)
                    })
                    .collect(),
            }),
        status_url: state.status_url.clone(),
        history: state
            .history
            .iter()
            .map(|change| StatusChangeFile {
                timestamp: format_timestamp(change.timestamp, change.form),
                status: match change.status {
                    Status::Success => StatusFile::Success,
                    Status::Pending => StatusFile::Pending,
                    Status::Failed => StatusFile::Failed,
                },
                log: change.log.clone(),
            })
            .collect(),
        project_dir: state.project_dir.clone(),
    }
}

/// Parses an RFC 3339 timestamp as the reference writes it (`Z`), with any offset, or naive.
pub(crate) fn parse_timestamp(
    text: &str,
) -> std::result::Result<(Timestamp, TimestampForm), String> {
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Ok((timestamp, TimestampForm::Utc));
    }
    let naive = text
        .parse::<civil::DateTime>()
        .map_err(|err| format!("{text:?} is not an RFC 3339 date-time: {err}"))?;
    let timestamp = TimeZone::UTC
        .to_timestamp(naive)
        .map_err(|err| format!("{text:?} is out of range: {err}"))?;
    Ok((timestamp, TimestampForm::Naive))
}

/// Formats like Python's `isoformat()` of a UTC datetime with `Z`: microseconds, omitted when 0.
pub(crate) fn format_timestamp(timestamp: Timestamp, form: TimestampForm) -> String {
    let time = TimeZone::UTC.to_datetime(timestamp);
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    let micros = time.subsec_nanosecond() / 1000;
    if micros != 0 {
        text.push_str(&format!(".{micros:06}"));
    }
    if form == TimestampForm::Utc {
        text.push('Z');
    }
    text
}

#[derive(Serialize, Deserialize)]
struct SessionFile {
    tool_version: String,
    created_at: String,
    project_dir: String,
    organization_url: String,
}

/// Parses our own session file. Unknown keys are tolerated so newer versions can add some.
pub(crate) fn parse_session(path: &Path, bytes: &[u8]) -> Result<SessionInfo> {
    let corrupt = |detail: String| Error::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let file: SessionFile =
        serde_json::from_slice(bytes).map_err(|err| corrupt(err.to_string()))?;
    let (created_at, _) = parse_timestamp(&file.created_at)
        .map_err(|detail| corrupt(format!("created_at: {detail}")))?;
    Ok(SessionInfo {
        tool_version: file.tool_version,
        created_at,
        project_dir: file.project_dir.into(),
        organization_url: file.organization_url,
    })
}

/// The outcomes format this version writes and reads.
const OUTCOMES_VERSION: u64 = 1;

#[derive(Serialize, Deserialize, Default)]
struct OutcomesFile {
    dagster_deploy_outcomes: u64,
    locations: std::collections::BTreeMap<String, OutcomeFile>,
}

#[derive(Serialize, Deserialize)]
struct OutcomeFile {
    outcome: String,
    /// The history entry this outcome refines: its timestamp and log, exactly as stored.
    timestamp: String,
    log: String,
}

/// Parses our outcomes file: location name to the outcome and the history entry it refines
/// (as `(timestamp, log)`). Entries with an outcome this version does not know are skipped.
pub(crate) fn parse_outcomes(path: &Path, bytes: &[u8]) -> Result<Outcomes> {
    #[derive(Deserialize)]
    struct Version {
        dagster_deploy_outcomes: Option<u64>,
    }
    if let Some(version) = serde_json::from_slice::<Version>(bytes)
        .ok()
        .and_then(|version| version.dagster_deploy_outcomes)
        .filter(|version| *version > OUTCOMES_VERSION)
    {
        return Err(Error::NewerFormat {
            path: path.to_path_buf(),
            detail: format!(
                "it is format {version}, and this version reads format {OUTCOMES_VERSION}"
            ),
        });
    }
    let file: OutcomesFile = serde_json::from_slice(bytes).map_err(|err| Error::Corrupt {
        path: path.to_path_buf(),
        detail: err.to_string(),
    })?;
    Ok(file
        .locations
        .into_iter()
        .filter_map(|(name, entry)| {
            let outcome = match entry.outcome.as_str() {
                "deployed" => RecordedOutcome::Deployed,
                "failed" => RecordedOutcome::Failed,
                "not tracked" => RecordedOutcome::NotTracked,
                "interrupted" => RecordedOutcome::Interrupted,
                "superseded" => RecordedOutcome::Superseded,
                "unchanged" => RecordedOutcome::Unchanged,
                _ => return None,
            };
            Some((name, (outcome, entry.timestamp, entry.log)))
        })
        .collect())
}

/// Serialises our outcomes file.
pub(crate) fn render_outcomes(outcomes: &Outcomes) -> String {
    let file = OutcomesFile {
        dagster_deploy_outcomes: OUTCOMES_VERSION,
        locations: outcomes
            .iter()
            .map(|(name, (outcome, timestamp, log))| {
                (
                    name.clone(),
                    OutcomeFile {
                        outcome: outcome.as_str().to_owned(),
                        timestamp: timestamp.clone(),
                        log: log.clone(),
                    },
                )
            })
            .collect(),
    };
    serde_json::to_string(&file).unwrap_or_default()
}

/// Our deploy outcomes by location: the outcome, and the `(timestamp, log)` of the history
/// entry it refines, as stored.
pub(crate) type Outcomes = std::collections::BTreeMap<String, (RecordedOutcome, String, String)>;

/// Serialises our own session file.
pub(crate) fn render_session(info: &SessionInfo) -> String {
    let file = SessionFile {
        tool_version: info.tool_version.clone(),
        created_at: format_timestamp(
            Timestamp::from_microsecond(info.created_at.as_microsecond())
                .unwrap_or(info.created_at),
            TimestampForm::Utc,
        ),
        project_dir: info.project_dir.to_string_lossy().into_owned(),
        organization_url: info.organization_url.clone(),
    };
    serde_json::to_string(&file).unwrap_or_default()
}

#[cfg(test)]
mod tests;
