//! Domain types of a deploy session: what a location's state is, independent of how it is
//! stored. The on-disk JSON lives in `format.rs`; nothing here knows serde.

use std::path::PathBuf;

use jiff::Timestamp;

pub use dagster_deploy_types::GitMetadata;

/// Where a history entry says a location stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Deployed and loaded.
    Success,
    /// Initialised or building.
    Pending,
    /// Build or deploy failed.
    Failed,
}

impl Status {
    /// The string the reference stores (`success`, `pending`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Pending => "pending",
            Status::Failed => "failed",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a history timestamp was written, so that it is written back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimestampForm {
    /// An aware UTC value, written with `Z`.
    Utc,
    /// A naive value (no offset), interpreted as UTC and written back without offset.
    Naive,
}

/// One entry of a location's history.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    /// When the change happened (naive stored values are read as UTC).
    pub timestamp: Timestamp,
    /// The new status.
    pub status: Status,
    /// A short description, e.g. `initialized` or `deploy successful`.
    pub log: String,
    pub(crate) form: TimestampForm,
}

impl StatusChange {
    /// A change at `timestamp`, kept to the microsecond (the precision the reference stores),
    /// written with a UTC offset.
    pub fn new(timestamp: Timestamp, status: Status, log: impl Into<String>) -> Self {
        let timestamp =
            Timestamp::from_microsecond(timestamp.as_microsecond()).unwrap_or(timestamp);
        StatusChange {
            timestamp,
            status,
            log: log.into(),
            form: TimestampForm::Utc,
        }
    }

    /// A change happening now.
    pub fn now(status: Status, log: impl Into<String>) -> Self {
        Self::new(Timestamp::now(), status, log)
    }

    /// True when the stored timestamp had no UTC offset (written by an old tool).
    pub fn is_naive(&self) -> bool {
        self.form == TimestampForm::Naive
    }
}

/// The `build` section of `build.yaml` / `dagster_cloud.yaml` as copied into the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildConfig {
    /// The build context directory.
    pub directory: Option<String>,
    /// The image repository, without tag.
    pub registry: Option<String>,
}

/// What `start` recorded about a location's build: the git facts of the commit (sent with the
/// deploy) and a copy of its `build` configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildMetadata {
    /// The commit, its web URL and repository (stored in the state file's `build` as `git_url`,
    /// `commit_hash`, `git_provider`, `repo_owner`, `repo_name`, `base_branch`,
    /// `defs_base_path`).
    pub git: GitMetadata,
    /// Copy of the location's `build` configuration.
    pub build_config: Option<BuildConfig>,
}

/// What a build produced for a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutput {
    /// A container image (the Hybrid path).
    Docker {
        /// The full image reference.
        image: String,
        /// Python version of the image, when known.
        python_version: Option<String>,
        /// Whether a PEX bundle was used on top of the image.
        pex_bundle: bool,
    },
    /// A PEX build (the Serverless path).
    PythonExecutable {
        /// Python version of the PEX.
        python_version: String,
        /// The base image, if any.
        image: Option<String>,
        /// The PEX tag.
        pex_tag: String,
    },
}

impl BuildOutput {
    /// The image reference, if the output has one.
    pub fn image(&self) -> Option<&str> {
        match self {
            BuildOutput::Docker { image, .. } => Some(image),
            BuildOutput::PythonExecutable { image, .. } => image.as_deref(),
        }
    }
}

/// Version of one key of the definitions state.
#[derive(Debug, Clone, PartialEq)]
pub struct DefsStateVersion {
    /// Opaque version string.
    pub version: String,
    /// Creation time, seconds since the epoch.
    pub create_timestamp: f64,
}

/// Definitions state recorded by `refresh-defs-state`, in stored order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DefsStateInfo {
    /// `(key, version)` pairs; a `None` version is stored as `null`.
    pub info_mapping: Vec<(String, Option<DefsStateVersion>)>,
}

impl DefsStateInfo {
    /// The value as it is stored and as the deploy document carries it:
    /// `{"info_mapping": {key: {"version", "create_timestamp"} | null}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mapping: serde_json::Map<String, serde_json::Value> = self
            .info_mapping
            .iter()
            .map(|(key, version)| {
                let value = match version {
                    Some(version) => serde_json::json!({
                        "version": version.version,
                        "create_timestamp": version.create_timestamp,
                    }),
                    None => serde_json::Value::Null,
                };
                (key.clone(), value)
            })
            .collect();
        serde_json::json!({ "info_mapping": mapping })
    }
}

/// The state of one code location in a session (one `location-<name>.json` file).
#[derive(Debug, Clone, PartialEq)]
pub struct LocationState {
    /// The location name (also the file name).
    pub location_name: String,
    /// Organization URL, without deployment.
    pub url: String,
    /// Full or branch deployment name.
    pub deployment_name: String,
    /// Absolute path of the `dagster_cloud.yaml` used.
    pub location_file: String,
    /// Whether the deployment is a branch deployment.
    pub is_branch_deployment: bool,
    /// Whether later steps act on this location.
    pub selected: bool,
    /// Source-control and build configuration metadata.
    pub build: BuildMetadata,
    /// What the build produced, once recorded.
    pub build_output: Option<BuildOutput>,
    /// Definitions state, once refreshed.
    pub defs_state_info: Option<DefsStateInfo>,
    /// Link to the CI run, shown in the status report.
    pub status_url: Option<String>,
    /// Status changes, oldest first.
    pub history: Vec<StatusChange>,
    /// Project directory (dg) or as given (legacy).
    pub project_dir: Option<String>,
    /// Unknown keys inside `build`, kept so that they survive a rewrite.
    pub(crate) extra_build_keys: serde_json::Map<String, serde_json::Value>,
}

impl LocationState {
    /// A location as a new session holds it: selected, nothing built or deployed yet, with
    /// `history` (a new session's is one `pending "initialized"` entry).
    pub fn new(location: NewLocation, history: Vec<StatusChange>) -> Self {
        LocationState {
            location_name: location.location_name,
            url: location.url,
            deployment_name: location.deployment_name,
            location_file: location.location_file,
            is_branch_deployment: location.is_branch_deployment,
            selected: true,
            build: location.build,
            build_output: None,
            defs_state_info: None,
            status_url: location.status_url,
            history,
            project_dir: location.project_dir,
            extra_build_keys: serde_json::Map::new(),
        }
    }

    /// The recorded image reference, if any.
    pub fn image(&self) -> Option<&str> {
        self.build_output.as_ref().and_then(BuildOutput::image)
    }

    /// The newest history entry.
    pub fn last_status(&self) -> Option<&StatusChange> {
        self.history.last()
    }
}

/// A location to put into a new session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLocation {
    /// The location name.
    pub location_name: String,
    /// Organization URL, without deployment.
    pub url: String,
    /// Full or branch deployment name.
    pub deployment_name: String,
    /// Absolute path of the `dagster_cloud.yaml` used.
    pub location_file: String,
    /// Whether the deployment is a branch deployment.
    pub is_branch_deployment: bool,
    /// Source-control and build configuration metadata.
    pub build: BuildMetadata,
    /// Link to the CI run.
    pub status_url: Option<String>,
    /// Project directory.
    pub project_dir: Option<String>,
}

/// Our own data about a session, stored beside the location files (the reference ignores it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Version of the tool that created the session.
    pub tool_version: String,
    /// When the session was created.
    pub created_at: Timestamp,
    /// The project directory `start` ran in.
    pub project_dir: PathBuf,
    /// Organization URL.
    pub organization_url: String,
}

/// How deploying one location ended, as far as this process knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployOutcome {
    /// It loaded (or loading was not awaited): `success "deploy successful"`.
    Deployed,
    /// Dagster+ rejected it, or it failed to load, timed out or found no agent:
    /// `failed "deploy failed: <reason>"`.
    Failed(String),
    /// Dagster+ accepted it, but its load could not be followed to the end (the API went away,
    /// the outcome could not be read): `pending "deploy accepted, load not tracked: <reason>"`.
    NotTracked(String),
    /// The deploy was interrupted (Ctrl-C, SIGTERM) while waiting: `pending "deploy
    /// interrupted: <when>"`. The text says whether Dagster+ had accepted it.
    Interrupted(String),
    /// Not sent, because the deployment already runs exactly this location's document (see
    /// `deploy --skip-unchanged`): `success "deploy skipped, unchanged: <what runs>"`. The
    /// reference's history has no such status; `success` is what it is (the location runs the
    /// code of this session), and our outcomes file says it was not redeployed.
    Unchanged(String),
}

/// The outcome of deploying one location, with what was deployed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployResult {
    /// The location's state as read when its deploy document was built. The outcome is
    /// recorded only if the location still holds the same inputs (image, configuration,
    /// metadata); otherwise the newer inputs were never deployed, and the location is marked
    /// [`RecordedOutcome::Superseded`] instead.
    pub sent: LocationState,
    /// How the deploy of that state ended.
    pub outcome: DeployOutcome,
}

/// What `status` shows for a location whose last history entry was written by a deploy of
/// ours: the reference's three statuses, refined where they cannot say enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordedOutcome {
    /// Deployed and loaded (history `success`).
    Deployed,
    /// Rejected, or failed to load (history `failed`).
    Failed,
    /// Accepted by Dagster+, load not tracked to the end (history `pending`).
    NotTracked,
    /// Interrupted while deploying (history `pending`).
    Interrupted,
    /// A deploy finished for inputs the location no longer holds: its build output (or
    /// configuration) changed while the deploy ran, so the current inputs are not deployed
    /// (history `pending`).
    Superseded,
    /// Not redeployed: the deployment already ran this location's document (history
    /// `success`).
    Unchanged,
}

impl RecordedOutcome {
    /// The word `status` shows, and our bookkeeping stores.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordedOutcome::Deployed => "deployed",
            RecordedOutcome::Failed => "failed",
            RecordedOutcome::NotTracked => "not tracked",
            RecordedOutcome::Interrupted => "interrupted",
            RecordedOutcome::Superseded => "superseded",
            RecordedOutcome::Unchanged => "unchanged",
        }
    }
}

impl std::fmt::Display for RecordedOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What recording deploy results did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeployRecord {
    /// Locations whose inputs changed while the deploy ran, so the outcome was recorded as
    /// superseded rather than as theirs; sorted.
    pub superseded: Vec<String>,
    /// Locations that are no longer in the session (a new session was started while the
    /// deploy ran); nothing was recorded for them. Sorted.
    pub gone: Vec<String>,
}

/// An interrupted multi-file change that was completed (or found) by a later process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The interrupted operation, e.g. `record build outputs`.
    pub operation: String,
    /// The process that was interrupted.
    pub pid: u32,
    /// When that operation started, if the journal says.
    pub started_at: Option<Timestamp>,
    /// How many files the operation changes in all.
    pub changes: usize,
    /// How many of them it had changed before it was interrupted.
    pub already_done: usize,
    /// Files that got their new content now.
    pub completed: Vec<String>,
    /// Files another tool changed after the interruption, kept as they are.
    pub kept: Vec<String>,
    /// Whether the completion was written to disk; `false` for a copy that could not be written
    /// (read-only), which was read as if completed.
    pub on_disk: bool,
}

/// A build output that a merge took from one of the copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOutput {
    /// The location name.
    pub location: String,
    /// The image reference (empty for an output without image).
    pub image: String,
    /// The directory the output came from.
    pub source: PathBuf,
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MergeReport {
    /// Outputs that the target did not have and took from a copy, sorted by location.
    pub taken: Vec<TakenOutput>,
    /// Locations that still have no build output after the merge, sorted.
    pub unbuilt: Vec<String>,
    /// Number of locations in the merged session.
    pub locations: usize,
    /// Interrupted changes found in the target (completed) or in a copy (read as completed).
    pub repairs: Vec<Repair>,
}
