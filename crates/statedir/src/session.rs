//! `Session`: one deploy session in a state directory, and every operation on it (create, list,
//! select, record build outputs, history, deploy results). Each read-modify-write holds the
//! session lock; each write is atomic. Rendering lives in `status.rs`, merging in `merge.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format;
use crate::fsio;
use crate::model::{
    BuildOutput, DefsStateInfo, DeployResult, LocationState, MergeReport, NewLocation, SessionInfo,
    Status, StatusChange,
};

/// A deploy session stored in a state directory.
#[derive(Debug, Clone)]
pub struct Session {
    dir: PathBuf,
}

/// Makes `dir` absolute against the current directory, as the reference does.
pub(crate) fn absolute(dir: &Path) -> Result<PathBuf> {
    std::path::absolute(dir).map_err(|err| Error::io("resolve state directory", dir, err))
}

/// Clears `dir` and writes a new session: the generated file (if any), the location files,
/// then the session file, each step made durable before the next.
fn create_session(
    dir: &Path,
    info: SessionInfo,
    locations: Vec<NewLocation>,
    generated: Option<&str>,
) -> Result<Session> {
    let mut seen = BTreeSet::new();
    for location in &locations {
        fsio::check_location_name(&location.location_name)?;
        if !seen.insert(location.location_name.as_str()) {
            return Err(Error::DuplicateLocation {
                name: location.location_name.clone(),
            });
        }
    }
    let dir = absolute(dir)?;
    fsio::create_dir(&dir)?;
    let _lock = fsio::lock(&dir)?;
    let mut old = fsio::session_entries_or_refuse(&dir)?;
    // The session file goes first: a crash while clearing never leaves a "complete" old session
    // with some of its files missing.
    old.sort_by_key(|path| path.file_name() != Some(std::ffi::OsStr::new(fsio::SESSION_FILE)));
    for path in old {
        fsio::remove(&path)?;
    }
    fsio::sync_dir(&dir)?;
    if let Some(generated) = generated {
        // Durable before any location file that points at it exists.
        fsio::write_atomic(&dir, fsio::GENERATED_LOCATION_FILE, generated.as_bytes())?;
    }
    let initialized = StatusChange::now(Status::Pending, "initialized");
    for location in locations {
        let state = LocationState {
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
            history: vec![initialized.clone()],
            project_dir: location.project_dir,
            extra_build_keys: serde_json::Map::new(),
        };
        fsio::replace_file(
            &dir,
            &fsio::location_file_name(&state.location_name),
            format::render_location(&state).as_bytes(),
        )?;
    }
    fsio::sync_dir(&dir)?;
    // The session file goes last: its presence marks a completely written session.
    fsio::write_atomic(
        &dir,
        fsio::SESSION_FILE,
        format::render_session(&info).as_bytes(),
    )?;
    Ok(Session { dir })
}

impl Session {
    /// Clears a previous session (refusing foreign content) and writes one file per location
    /// plus the session file. Every location gets a `pending "initialized"` history entry.
    pub fn create(dir: &Path, info: SessionInfo, locations: Vec<NewLocation>) -> Result<Session> {
        create_session(dir, info, locations, None)
    }

    /// Like `create`, but first writes `generated` as the session's own `dagster_cloud.yaml`
    /// (at `generated_location_file_path(dir)`), so that a crash never leaves location files
    /// pointing at a missing file. Order: generated file, location files, session file.
    pub fn create_with_location_file(
        dir: &Path,
        info: SessionInfo,
        locations: Vec<NewLocation>,
        generated: &str,
    ) -> Result<Session> {
        create_session(dir, info, locations, Some(generated))
    }

    /// The absolute path of the generated `dagster_cloud.yaml` of a session in `dir`.
    pub fn generated_location_file_path(dir: &Path) -> Result<PathBuf> {
        Ok(absolute(dir)?.join(fsio::GENERATED_LOCATION_FILE))
    }

    /// Opens an existing session (written by us or by the reference tools).
    pub fn open(dir: &Path) -> Result<Session> {
        let dir = absolute(dir)?;
        if !dir.is_dir() || fsio::list_location_names(&dir)?.is_empty() {
            return Err(Error::NoSession { dir });
        }
        Ok(Session { dir })
    }

    /// Merges parallel copies of a session into `target` (created if missing), taking each
    /// copy's build outputs and generated `dagster_cloud.yaml`; locations pointing at a copy's
    /// generated file are pointed at the target's. Differing outputs or generated files are
    /// refused.
    pub fn merge(target: &Path, sources: &[PathBuf]) -> Result<MergeReport> {
        crate::merge::merge(target, sources)
    }

    /// The absolute state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Our session data; `None` for sessions written by the reference tools.
    pub fn info(&self) -> Result<Option<SessionInfo>> {
        let path = self.dir.join(fsio::SESSION_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => format::parse_session(&path, &bytes).map(Some),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::io("read session file", &path, err)),
        }
    }

    /// Every location, selected or not, sorted by name.
    pub fn locations(&self) -> Result<Vec<LocationState>> {
        fsio::list_location_names(&self.dir)?
            .iter()
            .map(|name| self.load(name))
            .collect()
    }

    /// One location by name (selected or not).
    pub fn location(&self, name: &str) -> Result<LocationState> {
        match self.try_load(name)? {
            Some(state) => Ok(state),
            None => Err(self.unknown(vec![name.to_owned()])),
        }
    }

    /// The selected locations, filtered by `requested` when it is not empty
    /// (reference-behaviour §2.2); a requested name that is missing or deselected is an error.
    /// Sorted by name.
    pub fn selected(&self, requested: &[String]) -> Result<Vec<LocationState>> {
        if requested.is_empty() {
            let mut all = self.locations()?;
            all.retain(|state| state.selected);
            return Ok(all);
        }
        let names: BTreeSet<&str> = requested.iter().map(String::as_str).collect();
        let mut found = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in names {
            match self.try_load(name)? {
                Some(state) if state.selected => found.push(state),
                _ => unknown.push(name.to_owned()),
            }
        }
        if unknown.is_empty() {
            Ok(found)
        } else {
            Err(self.unknown(unknown))
        }
    }

    /// Selects or deselects locations; every name is checked before anything is written.
    pub fn set_selected(&self, names: &[String], selected: bool) -> Result<()> {
        let _lock = fsio::lock(&self.dir)?;
        let mut states = self.load_named(names)?;
        for state in &mut states {
            state.selected = selected;
        }
        states.iter().try_for_each(|state| self.save(state))
    }

    /// Records a Docker build output for the selected (and requested) locations. `image_for`
    /// computes each image; if it fails for any location, nothing is written. Returns
    /// `(location, image)` pairs sorted by location. Adds no history entry, as the reference.
    pub fn record_build_output(
        &self,
        requested: &[String],
        image_for: impl Fn(&LocationState) -> std::result::Result<String, String>,
    ) -> Result<Vec<(String, String)>> {
        let _lock = fsio::lock(&self.dir)?;
        let mut states = self.selected(requested)?;
        let mut images = Vec::with_capacity(states.len());
        let mut failures = Vec::new();
        for state in &states {
            match image_for(state) {
                Ok(image) => images.push(image),
                Err(reason) => failures.push((state.location_name.clone(), reason)),
            }
        }
        if !failures.is_empty() {
            return Err(Error::BuildOutput { failures });
        }
        let mut recorded = Vec::with_capacity(states.len());
        for (state, image) in states.iter_mut().zip(images) {
            state.build_output = Some(BuildOutput::Docker {
                image: image.clone(),
                python_version: None,
                pex_bundle: false,
            });
            self.save(state)?;
            recorded.push((state.location_name.clone(), image));
        }
        Ok(recorded)
    }

    /// Records definitions state for the selected (and requested) locations.
    pub fn record_defs_state_info(&self, requested: &[String], info: &DefsStateInfo) -> Result<()> {
        let _lock = fsio::lock(&self.dir)?;
        let mut states = self.selected(requested)?;
        for state in &mut states {
            state.defs_state_info = Some(info.clone());
            self.save(state)?;
        }
        Ok(())
    }

    /// Appends one history entry (timestamped now) to a location.
    pub fn append_history(&self, name: &str, status: Status, log: &str) -> Result<()> {
        let _lock = fsio::lock(&self.dir)?;
        let mut state = self.location(name)?;
        state.history.push(StatusChange::now(status, log));
        self.save(&state)
    }

    /// Records each location's own deploy outcome: `success "deploy successful"`, or
    /// `failed "deploy failed: <reason>"` where only the first non-blank line of the reason is
    /// kept (trimmed, at most 500 characters). Every name is checked before anything is written.
    pub fn record_deploy_results(&self, results: &[DeployResult]) -> Result<()> {
        let _lock = fsio::lock(&self.dir)?;
        let names: Vec<String> = results
            .iter()
            .map(|result| result.location.clone())
            .collect();
        // A name given twice gets both entries, in order, in one write.
        let mut states: std::collections::BTreeMap<String, LocationState> = self
            .load_named(&names)?
            .into_iter()
            .map(|state| (state.location_name.clone(), state))
            .collect();
        for result in results {
            let change = match &result.outcome {
                Ok(()) => StatusChange::now(Status::Success, "deploy successful"),
                Err(reason) => StatusChange::now(Status::Failed, failure_log(reason)),
            };
            if let Some(state) = states.get_mut(&result.location) {
                state.history.push(change);
            }
        }
        states.values().try_for_each(|state| self.save(state))
    }

    /// Writes the generated `dagster_cloud.yaml` into the state directory (atomically) and
    /// returns its path. Prefer `create_with_location_file`, which writes it before the
    /// location files that point at it.
    pub fn write_generated_location_file(&self, contents: &str) -> Result<PathBuf> {
        fsio::write_atomic(
            &self.dir,
            fsio::GENERATED_LOCATION_FILE,
            contents.as_bytes(),
        )?;
        Ok(self.dir.join(fsio::GENERATED_LOCATION_FILE))
    }

    /// Loads `names` in order; any missing name is an error naming all of them.
    fn load_named(&self, names: &[String]) -> Result<Vec<LocationState>> {
        let mut states = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in names {
            match self.try_load(name)? {
                Some(state) => states.push(state),
                None => unknown.push(name.clone()),
            }
        }
        if unknown.is_empty() {
            Ok(states)
        } else {
            Err(self.unknown(unknown))
        }
    }

    fn unknown(&self, requested: Vec<String>) -> Error {
        let known = self
            .locations()
            .map(|states| {
                states
                    .into_iter()
                    .map(|state| (state.location_name, state.selected))
                    .collect()
            })
            .unwrap_or_default();
        Error::UnknownLocations {
            dir: self.dir.clone(),
            requested,
            known,
        }
    }

    fn load(&self, name: &str) -> Result<LocationState> {
        self.try_load(name)?
            .ok_or_else(|| self.unknown(vec![name.to_owned()]))
    }

    /// Loads a location's file; `None` when there is no such file (or the name is unusable).
    pub(crate) fn try_load(&self, name: &str) -> Result<Option<LocationState>> {
        if fsio::check_location_name(name).is_err() {
            return Ok(None);
        }
        load_location(&self.dir, name)
    }

    pub(crate) fn save(&self, state: &LocationState) -> Result<()> {
        save_location(&self.dir, state)
    }
}

/// Longest reason kept in a `deploy failed: <reason>` history entry, in characters.
const MAX_REASON_CHARS: usize = 500;

/// The one-line history log of a failed deploy: a multi-line reason (a Python traceback) is
/// cut to its first non-blank line, trimmed and capped.
fn failure_log(reason: &str) -> String {
    let is_break = |c: char| {
        matches!(
            c,
            '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        )
    };
    let line = reason
        .split(is_break)
        .map(str::trim)
        .find(|line| !line.is_empty());
    let Some(line) = line else {
        return "deploy failed".to_owned();
    };
    let mut kept: String = line
        .chars()
        .take(MAX_REASON_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().nth(MAX_REASON_CHARS).is_some() {
        kept.push_str("...");
    }
    format!("deploy failed: {kept}")
}

/// Loads `dir/location-<name>.json`, checking that the file is about that location.
pub(crate) fn load_location(dir: &Path, name: &str) -> Result<Option<LocationState>> {
    let path = dir.join(fsio::location_file_name(name));
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io("read state file", &path, err)),
    };
    let state = format::parse_location(&path, &bytes)?;
    if state.location_name != name {
        return Err(Error::Corrupt {
            path,
            detail: format!(
                "it holds location {:?}, but its name says {name:?}",
                state.location_name
            ),
        });
    }
    Ok(Some(state))
}

/// Writes a location's file atomically.
pub(crate) fn save_location(dir: &Path, state: &LocationState) -> Result<()> {
    fsio::check_location_name(&state.location_name)?;
    fsio::write_atomic(
        dir,
        &fsio::location_file_name(&state.location_name),
        format::render_location(state).as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BuildMetadata;

    fn keys(value: &serde_json::Value) -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn failure_log_is_one_trimmed_capped_line() {
        assert_eq!(
            failure_log("Boom: x\nTraceback\n"),
            "deploy failed: Boom: x"
        );
        assert_eq!(failure_log("\r\n  a\tb \u{2028}c"), "deploy failed: a b");
        assert_eq!(failure_log(""), "deploy failed");
        let exact = "é".repeat(MAX_REASON_CHARS);
        assert_eq!(failure_log(&exact), format!("deploy failed: {exact}"));
        let longer = format!("{exact}z");
        assert_eq!(failure_log(&longer), format!("deploy failed: {exact}..."));
    }

    #[test]
    fn a_multi_line_deploy_failure_is_stored_in_the_reference_schema() {
        let dir = tempfile::tempdir().unwrap();
        let info = SessionInfo {
            tool_version: "0.1.0".into(),
            created_at: "2026-11-26T13:47:52Z".parse().unwrap(),
            project_dir: "/w".into(),
            organization_url: "https://acme.dagster.cloud".into(),
        };
        let location = NewLocation {
            location_name: "marketing".into(),
            url: "https://acme.dagster.cloud".into(),
            deployment_name: "prod".into(),
            location_file: "/w/dagster_cloud.yaml".into(),
            is_branch_deployment: false,
            build: BuildMetadata::default(),
            status_url: None,
            project_dir: Some(".".into()),
        };
        let session = Session::create(dir.path(), info, vec![location]).unwrap();
        let traceback = "Traceback (most recent call last):\n  File \"/app/defs.py\", line 3, in <module>\n    import marketing\nModuleNotFoundError: No module named 'marketing'\n";
        session
            .record_deploy_results(&[DeployResult {
                location: "marketing".into(),
                outcome: Err(traceback.into()),
            }])
            .unwrap();

        // The strict parser (unknown keys rejected) reads it back, and rewriting it is lossless.
        let path = dir.path().join("location-marketing.json");
        let bytes = std::fs::read(&path).unwrap();
        let state = format::parse_location(&path, &bytes).unwrap();
        assert_eq!(format::render_location(&state).as_bytes(), bytes);
        let last = state.last_status().unwrap();
        assert_eq!(last.status, Status::Failed);
        assert_eq!(
            last.log,
            "deploy failed: Traceback (most recent call last):"
        );
        assert!(!last.log.contains(['\n', '\r']), "{:?}", last.log);
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains("\\n"), "{text}");

        // Same keys as the file the reference wrote after a failed deploy.
        let recorded = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "tests/fixtures/legacy-flow/statedir-after-deploy-failure/location-marketing.json",
        ))
        .unwrap();
        let recorded: serde_json::Value = serde_json::from_slice(&recorded).unwrap();
        let ours: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(keys(&ours), keys(&recorded));
        assert_eq!(keys(&ours["build"]), keys(&recorded["build"]));
        assert_eq!(keys(&ours["history"][1]), keys(&recorded["history"][1]));
        assert_eq!(
            ours["history"][1]["status"],
            recorded["history"][1]["status"]
        );
    }
}
