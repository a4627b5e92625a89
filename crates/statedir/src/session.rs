//! `Session`: one deploy session in a state directory, and every operation on it (create, list,
//! select, record build outputs, history, deploy results). Readers hold the shared session
//! lock, writers the exclusive one; every change of several files is one all-or-nothing
//! transaction (`journal.rs`), and whoever next opens the session completes an interrupted one
//! and reports it ([`Session::take_repairs`]). Rendering lives in `status.rs`, merging in
//! `merge.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::format::{self, Outcomes};
use crate::fsio;
use crate::journal::{self, FileChange};
use crate::model::{
    BuildOutput, DefsStateInfo, DeployOutcome, DeployRecord, DeployResult, LocationState,
    MergeReport, NewLocation, RecordedOutcome, Repair, SessionInfo, Status, StatusChange,
};
use crate::replace;

/// A deploy session stored in a state directory.
#[derive(Debug, Clone)]
pub struct Session {
    dir: PathBuf,
    /// Interrupted changes this handle completed, until the caller takes them.
    repairs: Arc<Mutex<Vec<Repair>>>,
}

/// Makes `dir` absolute against the current directory, as the reference does.
pub(crate) fn absolute(dir: &Path) -> Result<PathBuf> {
    std::path::absolute(dir).map_err(|err| Error::io("resolve state directory", dir, err))
}

/// A consistent view of a state directory: the files as they are, or, for a copy that holds
/// the journal of an interrupted change and may not be written to, as they will be once that
/// change is completed. Holds the session lock it was made under, if any.
pub(crate) struct View {
    dir: PathBuf,
    /// File name to resolved content (`None`: absent) for files named in a pending journal.
    overlay: BTreeMap<String, Option<Vec<u8>>>,
    _lock: Option<fsio::SessionLock>,
}

impl View {
    /// A view of a directory nobody of ours writes to (the source copies of a merge): a pending
    /// change is applied in memory only. Returns the repair it applied, if any.
    pub(crate) fn of_copy(dir: &Path) -> Result<(View, Option<Repair>)> {
        let lock = fsio::lock_shared(dir, false)?;
        let (overlay, repair) = match journal::pending_contents(dir)? {
            Some((mut repair, contents)) => {
                repair.on_disk = false;
                (contents.into_iter().collect(), Some(repair))
            }
            None => (BTreeMap::new(), None),
        };
        Ok((
            View {
                dir: dir.to_path_buf(),
                overlay,
                _lock: lock,
            },
            repair,
        ))
    }

    /// A file's content, `None` if it does not exist.
    pub(crate) fn bytes(&self, file_name: &str) -> Result<Option<Vec<u8>>> {
        match self.overlay.get(file_name) {
            Some(content) => Ok(content.clone()),
            None => fsio::read_optional(&self.dir.join(file_name), "read state file"),
        }
    }

    /// Whether a file exists.
    pub(crate) fn exists(&self, file_name: &str) -> bool {
        match self.overlay.get(file_name) {
            Some(content) => content.is_some(),
            None => self.dir.join(file_name).is_file(),
        }
    }

    /// Sorted location names.
    pub(crate) fn location_names(&self) -> Result<Vec<String>> {
        let mut names: BTreeSet<String> =
            fsio::list_location_names(&self.dir)?.into_iter().collect();
        for (file, content) in &self.overlay {
            if let Some(name) = fsio::location_name_of(file) {
                if content.is_some() {
                    names.insert(name.to_owned());
                } else {
                    names.remove(name);
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// A location's state and the bytes it was parsed from; `None` when there is no such file
    /// (or the name is unusable). The file must be about that location.
    pub(crate) fn load(&self, name: &str) -> Result<Option<(LocationState, Vec<u8>)>> {
        if fsio::check_location_name(name).is_err() {
            return Ok(None);
        }
        let file_name = fsio::location_file_name(name);
        let Some(bytes) = self.bytes(&file_name)? else {
            return Ok(None);
        };
        let path = self.dir.join(&file_name);
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
        Ok(Some((state, bytes)))
    }

    /// Every location with its bytes, sorted by name. A file whose name cannot be a location
    /// name (a control character in it) is an error, not skipped: it would otherwise be left
    /// out of the deploy without a word.
    pub(crate) fn load_all(&self) -> Result<Vec<(LocationState, Vec<u8>)>> {
        let names = self.location_names()?;
        let mut states = Vec::with_capacity(names.len());
        for name in names {
            fsio::check_location_name(&name)?;
            if let Some(loaded) = self.load(&name)? {
                states.push(loaded);
            }
        }
        Ok(states)
    }

    /// Our outcomes bookkeeping (empty when there is none).
    pub(crate) fn outcomes(&self) -> Result<(Outcomes, Option<Vec<u8>>)> {
        match self.bytes(fsio::OUTCOMES_FILE)? {
            Some(bytes) => Ok((
                format::parse_outcomes(&self.dir.join(fsio::OUTCOMES_FILE), &bytes)?,
                Some(bytes),
            )),
            None => Ok((Outcomes::new(), None)),
        }
    }

    /// Loads `names` in order; any missing name is an error naming all of them.
    fn load_named(&self, names: &[String]) -> Result<Vec<(LocationState, Vec<u8>)>> {
        let mut states = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in names {
            match self.load(name)? {
                Some(loaded) => states.push(loaded),
                None => unknown.push(name.clone()),
            }
        }
        if unknown.is_empty() {
            Ok(states)
        } else {
            Err(self.unknown(unknown))
        }
    }

    /// The selected locations, filtered by `requested` when it is not empty
    /// (reference-behaviour §2.2); a requested name that is missing or deselected is an error.
    /// Sorted by name.
    fn selected(&self, requested: &[String]) -> Result<Vec<(LocationState, Vec<u8>)>> {
        if requested.is_empty() {
            let mut all = self.load_all()?;
            all.retain(|(state, _)| state.selected);
            return Ok(all);
        }
        let names: BTreeSet<&str> = requested.iter().map(String::as_str).collect();
        let mut found = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in names {
            match self.load(name)? {
                Some(loaded) if loaded.0.selected => found.push(loaded),
                _ => unknown.push(name.to_owned()),
            }
        }
        if unknown.is_empty() {
            Ok(found)
        } else {
            Err(self.unknown(unknown))
        }
    }

    fn unknown(&self, requested: Vec<String>) -> Error {
        let known = self
            .load_all()
            .map(|states| {
                states
                    .into_iter()
                    .map(|(state, _)| (state.location_name, state.selected))
                    .collect()
            })
            .unwrap_or_default();
        Error::UnknownLocations {
            dir: self.dir.clone(),
            requested,
            known,
        }
    }
}

/// The change of a location's file from the bytes it was read from to its new state.
fn location_change(state: &LocationState, before: &[u8]) -> Result<FileChange> {
    fsio::check_location_name(&state.location_name)?;
    Ok(FileChange::new(
        fsio::location_file_name(&state.location_name),
        Some(before),
        Some(format::render_location(state)),
    ))
}

/// Clears `dir` and writes a new session (the generated file if any, the location files and
/// the session file) in one all-or-nothing change.
/// What `create_session` does with the locations of a previous session it does not restart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OtherLocations {
    Remove,
    Keep,
}

fn create_session(
    dir: &Path,
    info: SessionInfo,
    locations: Vec<NewLocation>,
    generated: Option<&str>,
    others: OtherLocations,
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
    let session = Session::handle(dir);
    let _lock = fsio::lock(&session.dir)?;
    session.recover()?;
    let existing = fsio::session_entries_or_refuse(&session.dir)?;
    for temp in &existing.temp {
        fsio::remove(temp)?;
    }
    let mut new_files: BTreeMap<String, String> = BTreeMap::new();
    if let Some(generated) = generated {
        new_files.insert(
            fsio::GENERATED_LOCATION_FILE.to_owned(),
            generated.to_owned(),
        );
    }
    let initialized = StatusChange::now(Status::Pending, "initialized");
    for location in locations {
        let state = LocationState::new(location, vec![initialized.clone()]);
        new_files.insert(
            fsio::location_file_name(&state.location_name),
            format::render_location(&state),
        );
    }
    new_files.insert(fsio::SESSION_FILE.to_owned(), format::render_session(&info));
    let mut changes = Vec::with_capacity(new_files.len() + existing.session.len());
    let mut kept_files = BTreeSet::new();
    for old in existing.session {
        let kept = others == OtherLocations::Keep && old.starts_with(fsio::LOCATION_PREFIX);
        if kept {
            kept_files.insert(old);
        } else if !new_files.contains_key(&old) {
            let before = fsio::read(&session.dir.join(&old), "read state file")?;
            changes.push(FileChange::new(old, Some(&before), None));
        }
    }
    let session_files: BTreeSet<String> = new_files.keys().cloned().chain(kept_files).collect();
    for (file, content) in new_files {
        // Every file is new content: a previous session's file with the same name is replaced
        // whatever it held, so its old bytes only matter for the journal's fingerprint.
        let before = fsio::read_optional(&session.dir.join(&file), "read state file")?;
        changes.push(FileChange::new(file, before.as_deref(), Some(content)));
    }
    journal::commit(&session.dir, "start a session", changes)?;
    // Spares of files another tool removed are of no more use.
    replace::prune_spares(&session.dir, |file| session_files.contains(file))?;
    Ok(session)
}

impl Session {
    fn handle(dir: PathBuf) -> Session {
        Session {
            dir,
            repairs: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Clears a previous session (refusing foreign content) and writes one file per location
    /// plus the session file, all or nothing. Every location gets a `pending "initialized"`
    /// history entry.
    pub fn create(dir: &Path, info: SessionInfo, locations: Vec<NewLocation>) -> Result<Session> {
        create_session(dir, info, locations, None, OtherLocations::Remove)
    }

    /// Like `create`, but the locations of a previous session that are not in `locations` are
    /// kept as they are and take part in later steps: the reference's `ci init
    /// --no-clean-statedir` (reference-behaviour §2.1). Foreign content is refused all the same.
    pub fn create_keeping_other_locations(
        dir: &Path,
        info: SessionInfo,
        locations: Vec<NewLocation>,
    ) -> Result<Session> {
        create_session(dir, info, locations, None, OtherLocations::Keep)
    }

    /// Like `create`, but also writes `generated` as the session's own `dagster_cloud.yaml`
    /// (at `generated_location_file_path(dir)`), in the same all-or-nothing change, so no
    /// location file ever points at a missing file.
    pub fn create_with_location_file(
        dir: &Path,
        info: SessionInfo,
        locations: Vec<NewLocation>,
        generated: &str,
    ) -> Result<Session> {
        create_session(
            dir,
            info,
            locations,
            Some(generated),
            OtherLocations::Remove,
        )
    }

    /// The absolute path of the generated `dagster_cloud.yaml` of a session in `dir`.
    pub fn generated_location_file_path(dir: &Path) -> Result<PathBuf> {
        Ok(absolute(dir)?.join(fsio::GENERATED_LOCATION_FILE))
    }

    /// Opens an existing session (written by us or by the reference tools). A change that an
    /// earlier process left half done is completed first; see [`Session::take_repairs`].
    pub fn open(dir: &Path) -> Result<Session> {
        let dir = absolute(dir)?;
        if !dir.is_dir() {
            return Err(Error::NoSession { dir });
        }
        let session = Session::handle(dir);
        let view = session.view()?;
        if view.location_names()?.is_empty() {
            return Err(Error::NoSession {
                dir: session.dir.clone(),
            });
        }
        Ok(session)
    }

    /// Merges parallel copies of a session into `target` (created if missing), taking each
    /// copy's build outputs and generated `dagster_cloud.yaml`; locations pointing at a copy's
    /// generated file are pointed at the target's. Differing outputs or generated files are
    /// refused. The target changes all or nothing.
    pub fn merge(target: &Path, sources: &[PathBuf]) -> Result<MergeReport> {
        crate::merge::merge(target, sources)
    }

    /// The interrupted changes that this handle found and completed since the last call: each
    /// had been committed (its journal was durable) when its process died, so completing it is
    /// what that process would have done. Callers should tell the user.
    pub fn take_repairs(&self) -> Vec<Repair> {
        self.repairs
            .lock()
            .map(|mut repairs| std::mem::take(&mut *repairs))
            .unwrap_or_default()
    }

    /// The absolute state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Completes an interrupted change, if any. The caller holds the exclusive lock.
    pub(crate) fn recover(&self) -> Result<()> {
        if let Some(repair) = journal::recover(&self.dir)?
            && let Ok(mut repairs) = self.repairs.lock()
        {
            repairs.push(repair);
        }
        Ok(())
    }

    /// A consistent view for reading: under the shared lock, after completing an interrupted
    /// change (or, where the directory cannot be written, applying it in memory).
    pub(crate) fn view(&self) -> Result<View> {
        let lock = fsio::lock_shared(&self.dir, true)?;
        if !journal::is_pending(&self.dir) {
            return Ok(View {
                dir: self.dir.clone(),
                overlay: BTreeMap::new(),
                _lock: lock,
            });
        }
        // Under the shared lock no writer of ours is at work, so the journal is an interrupted
        // change: complete it with the exclusive lock, if this directory can be written.
        drop(lock);
        match fsio::lock(&self.dir) {
            Ok(exclusive) => {
                self.recover()?;
                Ok(View {
                    dir: self.dir.clone(),
                    overlay: BTreeMap::new(),
                    _lock: Some(exclusive),
                })
            }
            Err(Error::Io { source, .. })
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                let (view, repair) = View::of_copy(&self.dir)?;
                if let (Some(repair), Ok(mut repairs)) = (repair, self.repairs.lock()) {
                    repairs.push(repair);
                }
                Ok(view)
            }
            Err(err) => Err(err),
        }
    }

    /// A view of `dir` for a read-modify-write cycle (see `edit`), with the repairs made.
    pub(crate) fn edit_dir(dir: &Path) -> Result<(View, Vec<Repair>)> {
        let session = Session::handle(dir.to_path_buf());
        let view = session.edit()?;
        Ok((view, session.take_repairs()))
    }

    /// A view for a read-modify-write cycle: under the exclusive lock, after completing an
    /// interrupted change.
    fn edit(&self) -> Result<View> {
        let lock = fsio::lock(&self.dir)?;
        self.recover()?;
        Ok(View {
            dir: self.dir.clone(),
            overlay: BTreeMap::new(),
            _lock: Some(lock),
        })
    }

    /// Our session data; `None` for sessions written by the reference tools.
    pub fn info(&self) -> Result<Option<SessionInfo>> {
        let view = self.view()?;
        match view.bytes(fsio::SESSION_FILE)? {
            Some(bytes) => {
                format::parse_session(&self.dir.join(fsio::SESSION_FILE), &bytes).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Every location, selected or not, sorted by name.
    pub fn locations(&self) -> Result<Vec<LocationState>> {
        Ok(strip(self.view()?.load_all()?))
    }

    /// Every location with our refinement of its last history entry, if we recorded one.
    pub(crate) fn locations_with_outcomes(
        &self,
    ) -> Result<Vec<(LocationState, Option<RecordedOutcome>)>> {
        let view = self.view()?;
        let states = strip(view.load_all()?);
        let (outcomes, _) = view.outcomes()?;
        Ok(states
            .into_iter()
            .map(|state| {
                let outcome = refined_outcome(&state, &outcomes);
                (state, outcome)
            })
            .collect())
    }

    /// One location by name (selected or not).
    pub fn location(&self, name: &str) -> Result<LocationState> {
        let view = self.view()?;
        match view.load(name)? {
            Some((state, _)) => Ok(state),
            None => Err(view.unknown(vec![name.to_owned()])),
        }
    }

    /// Our refinement of a location's last history entry (not tracked, interrupted,
    /// superseded), if a deploy of ours recorded one and nothing was recorded after it.
    pub fn recorded_outcome(&self, name: &str) -> Result<Option<RecordedOutcome>> {
        let view = self.view()?;
        let Some((state, _)) = view.load(name)? else {
            return Err(view.unknown(vec![name.to_owned()]));
        };
        let (outcomes, _) = view.outcomes()?;
        Ok(refined_outcome(&state, &outcomes))
    }

    /// The selected locations, filtered by `requested` when it is not empty
    /// (reference-behaviour §2.2); a requested name that is missing or deselected is an error.
    /// Sorted by name.
    pub fn selected(&self, requested: &[String]) -> Result<Vec<LocationState>> {
        Ok(strip(self.view()?.selected(requested)?))
    }

    /// Selects or deselects locations; every name is checked before anything is written, and
    /// all of them change or none.
    pub fn set_selected(&self, names: &[String], selected: bool) -> Result<()> {
        let view = self.edit()?;
        let mut changes = Vec::new();
        for (mut state, before) in view.load_named(names)? {
            state.selected = selected;
            changes.push(location_change(&state, &before)?);
        }
        let operation = if selected {
            "select locations"
        } else {
            "deselect locations"
        };
        journal::commit(&self.dir, operation, changes)
    }

    /// Records a Docker build output for the selected (and requested) locations. `image_for`
    /// computes each image; if it fails for any location, nothing is written; otherwise every
    /// location changes or none. Returns `(location, image)` pairs sorted by location. Adds no
    /// history entry, as the reference.
    pub fn record_build_output(
        &self,
        requested: &[String],
        image_for: impl Fn(&LocationState) -> std::result::Result<String, String>,
    ) -> Result<Vec<(String, String)>> {
        let view = self.edit()?;
        let states = view.selected(requested)?;
        let mut images = Vec::with_capacity(states.len());
        let mut failures = Vec::new();
        for (state, _) in &states {
            match image_for(state) {
                Ok(image) => images.push(image),
                Err(reason) => failures.push((state.location_name.clone(), reason)),
            }
        }
        if !failures.is_empty() {
            return Err(Error::BuildOutput { failures });
        }
        let mut recorded = Vec::with_capacity(states.len());
        let mut changes = Vec::with_capacity(states.len());
        for ((mut state, before), image) in states.into_iter().zip(images) {
            state.build_output = Some(BuildOutput::Docker {
                image: image.clone(),
                python_version: None,
                pex_bundle: false,
            });
            changes.push(location_change(&state, &before)?);
            recorded.push((state.location_name, image));
        }
        journal::commit(&self.dir, "record build outputs", changes)?;
        Ok(recorded)
    }

    /// Records definitions state for the selected (and requested) locations, all or nothing.
    pub fn record_defs_state_info(&self, requested: &[String], info: &DefsStateInfo) -> Result<()> {
        let view = self.edit()?;
        let mut changes = Vec::new();
        for (mut state, before) in view.selected(requested)? {
            state.defs_state_info = Some(info.clone());
            changes.push(location_change(&state, &before)?);
        }
        journal::commit(&self.dir, "record definitions state", changes)
    }

    /// Appends one history entry (timestamped now) to a location.
    pub fn append_history(&self, name: &str, status: Status, log: &str) -> Result<()> {
        let view = self.edit()?;
        let Some((mut state, before)) = view.load(name)? else {
            return Err(view.unknown(vec![name.to_owned()]));
        };
        state.history.push(StatusChange::now(status, log));
        journal::commit(
            &self.dir,
            "append a history entry",
            vec![location_change(&state, &before)?],
        )
    }

    /// Records each location's own deploy outcome, all or nothing, as a history entry in the
    /// reference's schema and in our outcomes bookkeeping:
    ///
    /// * deployed: `success "deploy successful"`;
    /// * failed: `failed "deploy failed: <reason>"`;
    /// * accepted but not tracked: `pending "deploy accepted, load not tracked: <reason>"`;
    /// * interrupted: `pending "deploy interrupted: <when>"`;
    /// * left out as unchanged: `success "deploy skipped, unchanged: <what runs>"`.
    ///
    /// Only the first non-blank line of a reason is kept (trimmed, at most 500 characters).
    ///
    /// Compare-and-set: an outcome is recorded only for a location that still holds the
    /// inputs it was deployed with ([`DeployResult::sent`]). One whose build output or
    /// configuration changed while the deploy ran gets `pending "deploy of <image> <ended how>,
    /// but the location changed during the deploy; deploy again"` instead, so that a deploy is
    /// never reported for an image it did not send. Locations that are gone are skipped.
    pub fn record_deploy_results(&self, results: &[DeployResult]) -> Result<DeployRecord> {
        let view = self.edit()?;
        let (mut outcomes, outcomes_before) = view.outcomes()?;
        let mut record = DeployRecord::default();
        // A name given twice gets both entries, in order, in one write.
        let mut states: BTreeMap<String, (LocationState, Vec<u8>)> = BTreeMap::new();
        for result in results {
            let name = &result.sent.location_name;
            if !states.contains_key(name) {
                match view.load(name)? {
                    Some(loaded) => {
                        states.insert(name.clone(), loaded);
                    }
                    None => {
                        if !record.gone.contains(name) {
                            record.gone.push(name.clone());
                        }
                        continue;
                    }
                }
            }
            let Some((state, _)) = states.get_mut(name) else {
                continue;
            };
            let (change, outcome) = if same_deploy_inputs(state, &result.sent) {
                history_entry(&result.outcome)
            } else {
                if !record.superseded.contains(name) {
                    record.superseded.push(name.clone());
                }
                superseded_entry(&result.sent, &result.outcome)
            };
            outcomes.insert(
                name.clone(),
                (
                    outcome,
                    format::format_timestamp(change.timestamp, crate::model::TimestampForm::Utc),
                    change.log.clone(),
                ),
            );
            state.history.push(change);
        }
        record.superseded.sort();
        record.gone.sort();
        let mut changes = Vec::with_capacity(states.len() + 1);
        for (state, before) in states.values() {
            changes.push(location_change(state, before)?);
        }
        changes.push(FileChange::new(
            fsio::OUTCOMES_FILE,
            outcomes_before.as_deref(),
            Some(format::render_outcomes(&outcomes)),
        ));
        journal::commit(&self.dir, "record deploy results", changes)?;
        Ok(record)
    }

    /// Writes the generated `dagster_cloud.yaml` into the state directory (atomically) and
    /// returns its path. Prefer `create_with_location_file`, which writes it in the same change
    /// as the location files that point at it.
    pub fn write_generated_location_file(&self, contents: &str) -> Result<PathBuf> {
        let view = self.edit()?;
        let before = view.bytes(fsio::GENERATED_LOCATION_FILE)?;
        journal::commit(
            &self.dir,
            "write the generated dagster_cloud.yaml",
            vec![FileChange::new(
                fsio::GENERATED_LOCATION_FILE,
                before.as_deref(),
                Some(contents.to_owned()),
            )],
        )?;
        Ok(self.dir.join(fsio::GENERATED_LOCATION_FILE))
    }
}

fn strip(loaded: Vec<(LocationState, Vec<u8>)>) -> Vec<LocationState> {
    loaded.into_iter().map(|(state, _)| state).collect()
}

/// Our outcome for the location's last history entry, if we recorded it for exactly that entry
/// (a later entry, written by any tool, makes it stale).
fn refined_outcome(state: &LocationState, outcomes: &Outcomes) -> Option<RecordedOutcome> {
    let last = state.last_status()?;
    let (outcome, timestamp, log) = outcomes.get(&state.location_name)?;
    let stored = format::format_timestamp(last.timestamp, crate::model::TimestampForm::Utc);
    (*timestamp == stored && *log == last.log).then_some(*outcome)
}

/// Whether a location still holds everything its deploy document was built from.
fn same_deploy_inputs(current: &LocationState, sent: &LocationState) -> bool {
    current.location_name == sent.location_name
        && current.url == sent.url
        && current.deployment_name == sent.deployment_name
        && current.location_file == sent.location_file
        && current.is_branch_deployment == sent.is_branch_deployment
        && current.build == sent.build
        && current.build_output == sent.build_output
        && current.defs_state_info == sent.defs_state_info
        && current.extra_build_keys == sent.extra_build_keys
}

/// The history entry, and our outcome, for a deploy of the location's current inputs.
fn history_entry(outcome: &DeployOutcome) -> (StatusChange, RecordedOutcome) {
    match outcome {
        DeployOutcome::Deployed => (
            StatusChange::now(Status::Success, "deploy successful"),
            RecordedOutcome::Deployed,
        ),
        DeployOutcome::Failed(reason) => (
            StatusChange::now(Status::Failed, log_line("deploy failed", reason)),
            RecordedOutcome::Failed,
        ),
        DeployOutcome::NotTracked(reason) => (
            StatusChange::now(
                Status::Pending,
                log_line("deploy accepted, load not tracked", reason),
            ),
            RecordedOutcome::NotTracked,
        ),
        DeployOutcome::Interrupted(when) => (
            StatusChange::now(Status::Pending, log_line("deploy interrupted", when)),
            RecordedOutcome::Interrupted,
        ),
        DeployOutcome::Unchanged(what) => (
            StatusChange::now(Status::Success, log_line("deploy skipped, unchanged", what)),
            RecordedOutcome::Unchanged,
        ),
    }
}

/// The history entry for a deploy whose location changed while it ran.
fn superseded_entry(
    sent: &LocationState,
    outcome: &DeployOutcome,
) -> (StatusChange, RecordedOutcome) {
    let what = match sent.image() {
        Some(image) => format!("deploy of {image}"),
        None => "deploy".to_owned(),
    };
    let ended = match outcome {
        DeployOutcome::Deployed => "succeeded",
        DeployOutcome::Failed(_) => "failed",
        DeployOutcome::NotTracked(_) => "was accepted (load not tracked)",
        DeployOutcome::Interrupted(_) => "was interrupted",
        DeployOutcome::Unchanged(_) => "was skipped as unchanged",
    };
    let log = log_line(
        &format!("{what} {ended}, but the location changed during the deploy"),
        "deploy again",
    );
    (
        StatusChange::now(Status::Pending, log),
        RecordedOutcome::Superseded,
    )
}

/// Longest reason kept in a history entry, in characters.
const MAX_REASON_CHARS: usize = 500;

/// `<prefix>: <reason>` as one history line: a multi-line reason (a Python traceback) is cut to
/// its first non-blank line, trimmed and capped; control characters become spaces. An empty
/// reason leaves the prefix alone.
fn log_line(prefix: &str, reason: &str) -> String {
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
        return prefix.to_owned();
    };
    let mut kept: String = line
        .chars()
        .take(MAX_REASON_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().nth(MAX_REASON_CHARS).is_some() {
        kept.push_str("...");
    }
    format!("{prefix}: {kept}")
}

#[cfg(test)]
mod tests;
