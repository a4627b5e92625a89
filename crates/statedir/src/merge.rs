//! Fan-in: merging copies of one session made by parallel CI jobs back into a single session.
//! Each copy contributes its build outputs and history; different outputs for the same location
//! are a conflict that the user must resolve. A generated `dagster_cloud.yaml` travels with the
//! copies: the merged session gets its own, and locations that pointed at a copy's (or at the
//! one of the job that ran `start`) are pointed at the merged session's.
//!
//! The copies are only read (under their shared lock, if they have one); a copy holding the
//! journal of an interrupted change is read as if that change were completed. The target
//! changes in one all-or-nothing transaction.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, MergeDifference, Result};
use crate::format;
use crate::fsio;
use crate::journal::{self, FileChange};
use crate::model::{BuildOutput, LocationState, MergeReport, TakenOutput};
use crate::session::{Session, View, absolute};

struct Merged {
    state: LocationState,
    /// The target's file as read, when the target had this location.
    before: Option<Vec<u8>>,
    /// Where the location's state came from.
    origin: PathBuf,
    /// Where its build output came from, if it has one.
    output_origin: Option<PathBuf>,
    changed: bool,
}

fn describe(output: &BuildOutput) -> String {
    match output {
        BuildOutput::Docker { image, .. } => image.clone(),
        BuildOutput::PythonExecutable { pex_tag, image, .. } => match image {
            Some(image) => format!("{image} (pex {pex_tag})"),
            None => format!("pex {pex_tag}"),
        },
    }
}

/// The generated `dagster_cloud.yaml` found in the target and the copies.
#[derive(Default)]
struct Generated {
    /// The first one found: its directory and content.
    first: Option<(PathBuf, Vec<u8>)>,
    /// Every directory holding one (all with the same content).
    holders: Vec<PathBuf>,
}

impl Generated {
    /// Takes note of `dir`'s generated file, if it has one; a different content is a conflict.
    fn add(&mut self, dir: &Path, bytes: Option<Vec<u8>>) -> Result<()> {
        let Some(bytes) = bytes else {
            return Ok(());
        };
        match &self.first {
            Some((first_dir, first)) if *first != bytes => {
                return Err(Error::GeneratedFileConflict {
                    first_dir: first_dir.clone(),
                    second_dir: dir.to_path_buf(),
                });
            }
            Some(_) => {}
            None => self.first = Some((dir.to_path_buf(), bytes)),
        }
        self.holders.push(dir.to_path_buf());
        Ok(())
    }

    fn is_held_by(&self, dir: &Path) -> bool {
        self.holders.iter().any(|holder| same_dir(holder, dir))
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (a.canonicalize(), b.canonicalize()),
            (Ok(a), Ok(b)) if a == b
        )
}

/// Whether a location's `location_file` names a generated file that the merged session must
/// replace with its own: the generated file of the target or of any copy, or, for a location
/// whose copy holds a generated file, a generated file elsewhere (the state directory of the
/// job that ran `start`) that is gone or has the same content. A user's own
/// `dagster_cloud.yaml` is none of these and is left alone.
fn points_at_generated(
    location_file: &str,
    origin: &Path,
    dirs: &[PathBuf],
    generated: &Generated,
    content: &[u8],
) -> bool {
    let path = Path::new(location_file);
    if path.file_name() != Some(std::ffi::OsStr::new(fsio::GENERATED_LOCATION_FILE)) {
        return false;
    }
    let Some(parent) = path.parent() else {
        return false;
    };
    if dirs.iter().any(|dir| same_dir(dir, parent)) {
        return true;
    }
    if !generated.is_held_by(origin) {
        return false;
    }
    match std::fs::read(path) {
        Ok(bytes) => bytes == content,
        Err(err) => err.kind() == std::io::ErrorKind::NotFound,
    }
}

/// A copy of the session, read whole under its shared lock, which is released before the
/// target is locked: two merges in opposite directions then cannot wait for each other.
struct SessionCopy {
    dir: PathBuf,
    states: Vec<LocationState>,
    generated: Option<Vec<u8>>,
    session_file: Option<Vec<u8>>,
}

fn read_copy(source: PathBuf, repairs: &mut Vec<crate::model::Repair>) -> Result<SessionCopy> {
    if !source.is_dir() {
        return Err(Error::NoSession { dir: source });
    }
    let (view, repair) = View::of_copy(&source)?;
    repairs.extend(repair);
    let states: Vec<LocationState> = view
        .load_all()?
        .into_iter()
        .map(|(state, _)| state)
        .collect();
    if states.is_empty() {
        return Err(Error::NoSession { dir: source });
    }
    Ok(SessionCopy {
        generated: view.bytes(fsio::GENERATED_LOCATION_FILE)?,
        session_file: view.bytes(fsio::SESSION_FILE)?,
        states,
        dir: source,
    })
}

pub(crate) fn merge(target: &Path, sources: &[PathBuf]) -> Result<MergeReport> {
    let target = absolute(target)?;
    fsio::create_dir(&target)?;
    let canonical_target = target.canonicalize().unwrap_or_else(|_| target.clone());
    let mut repairs = Vec::new();
    let mut copies = Vec::with_capacity(sources.len());
    for source in sources {
        let source = absolute(source)?;
        if source.canonicalize().unwrap_or_else(|_| source.clone()) != canonical_target {
            copies.push(read_copy(source, &mut repairs)?);
        }
    }
    let (target_view, target_repairs) = Session::edit_dir(&target)?;
    repairs.extend(target_repairs);

    let mut merged: BTreeMap<String, Merged> = BTreeMap::new();
    for (state, bytes) in target_view.load_all()? {
        let output_origin = state.build_output.as_ref().map(|_| target.clone());
        merged.insert(
            state.location_name.clone(),
            Merged {
                state,
                before: Some(bytes),
                origin: target.clone(),
                output_origin,
                changed: false,
            },
        );
    }

    let mut taken = Vec::new();
    let mut session_file_source = None;
    let mut generated = Generated::default();
    generated.add(&target, target_view.bytes(fsio::GENERATED_LOCATION_FILE)?)?;
    let mut dirs = vec![target.clone()];
    for copy in copies {
        if session_file_source.is_none() {
            session_file_source = copy.session_file;
        }
        generated.add(&copy.dir, copy.generated)?;
        for state in copy.states {
            merge_one(&mut merged, state, &copy.dir, &mut taken)?;
        }
        dirs.push(copy.dir);
    }

    // Everything the target gets is written in one transaction: the generated file, the
    // location files that point at it, and the session file.
    let mut changes = Vec::new();
    let target_generated = target.join(fsio::GENERATED_LOCATION_FILE);
    if let (Some((_, content)), Some(target_file)) = (&generated.first, target_generated.to_str()) {
        if !generated.is_held_by(&target) {
            let after = String::from_utf8(content.clone()).map_err(|_| Error::Corrupt {
                path: target_generated.clone(),
                detail: "the generated dagster_cloud.yaml of a copy is not UTF-8".to_owned(),
            })?;
            changes.push(FileChange::new(
                fsio::GENERATED_LOCATION_FILE,
                target_view.bytes(fsio::GENERATED_LOCATION_FILE)?.as_deref(),
                Some(after),
            ));
        }
        for entry in merged.values_mut() {
            if entry.state.location_file != target_file
                && points_at_generated(
                    &entry.state.location_file,
                    &entry.origin,
                    &dirs,
                    &generated,
                    content,
                )
            {
                entry.state.location_file = target_file.to_owned();
                entry.changed = true;
            }
        }
    }

    for entry in merged.values().filter(|entry| entry.changed) {
        fsio::check_location_name(&entry.state.location_name)?;
        changes.push(FileChange::new(
            fsio::location_file_name(&entry.state.location_name),
            entry.before.as_deref(),
            Some(format::render_location(&entry.state)),
        ));
    }
    if let Some(bytes) = session_file_source
        && !target_view.exists(fsio::SESSION_FILE)
    {
        let path = target.join(fsio::SESSION_FILE);
        // Parsed, not copied blindly: the copy came from another job.
        let info = format::parse_session(&path, &bytes)?;
        changes.push(FileChange::new(
            fsio::SESSION_FILE,
            None,
            Some(format::render_session(&info)),
        ));
    }
    journal::commit(&target, "merge session copies", changes)?;
    drop(target_view);

    taken.sort_by(|a: &TakenOutput, b| a.location.cmp(&b.location));
    Ok(MergeReport {
        repairs,
        unbuilt: merged
            .values()
            .filter(|entry| entry.state.build_output.is_none())
            .map(|entry| entry.state.location_name.clone())
            .collect(),
        locations: merged.len(),
        taken,
    })
}

fn merge_one(
    merged: &mut BTreeMap<String, Merged>,
    state: LocationState,
    source: &Path,
    taken: &mut Vec<TakenOutput>,
) -> Result<()> {
    let Some(existing) = merged.get_mut(&state.location_name) else {
        if let Some(output) = &state.build_output {
            taken.push(TakenOutput {
                location: state.location_name.clone(),
                image: output.image().unwrap_or_default().to_owned(),
                source: source.to_path_buf(),
            });
        }
        merged.insert(
            state.location_name.clone(),
            Merged {
                output_origin: state.build_output.as_ref().map(|_| source.to_path_buf()),
                before: None,
                state,
                origin: source.to_path_buf(),
                changed: true,
            },
        );
        return Ok(());
    };

    let mismatch = |field: &'static str, first: &str, second: &str| Error::MergeMismatch {
        field,
        difference: Box::new(MergeDifference {
            location: state.location_name.clone(),
            first_dir: existing.origin.clone(),
            first: first.to_owned(),
            second_dir: source.to_path_buf(),
            second: second.to_owned(),
        }),
    };
    if existing.state.url != state.url {
        return Err(mismatch("url", &existing.state.url, &state.url));
    }
    if existing.state.deployment_name != state.deployment_name {
        return Err(mismatch(
            "deployment_name",
            &existing.state.deployment_name,
            &state.deployment_name,
        ));
    }

    match (&existing.state.build_output, &state.build_output) {
        (Some(ours), Some(theirs)) if ours != theirs => {
            return Err(Error::MergeConflict(Box::new(MergeDifference {
                location: state.location_name.clone(),
                first_dir: existing
                    .output_origin
                    .clone()
                    .unwrap_or_else(|| existing.origin.clone()),
                first: describe(ours),
                second_dir: source.to_path_buf(),
                second: describe(theirs),
            })));
        }
        (None, Some(theirs)) => {
            taken.push(TakenOutput {
                location: state.location_name.clone(),
                image: theirs.image().unwrap_or_default().to_owned(),
                source: source.to_path_buf(),
            });
            existing.state.build_output = Some(theirs.clone());
            existing.output_origin = Some(source.to_path_buf());
            existing.changed = true;
        }
        _ => {}
    }
    if existing.state.defs_state_info.is_none() && state.defs_state_info.is_some() {
        existing.state.defs_state_info = state.defs_state_info.clone();
        existing.changed = true;
    }

    // History is the union of both copies, in time order (entries are copied, never invented).
    let mut added = false;
    for change in state.history {
        if !existing.state.history.contains(&change) {
            existing.state.history.push(change);
            added = true;
        }
    }
    if added {
        existing
            .state
            .history
            .sort_by_key(|change| change.timestamp);
        existing.changed = true;
    }
    Ok(())
}
