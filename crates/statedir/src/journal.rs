//! All-or-nothing changes of many files: an intent log (`dagster-deploy-journal.json`) written
//! and flushed before the first file changes, rolled forward by the next process that finds it.
//!
//! A change of one file is a plain atomic replacement (`replace.rs`: the new content is
//! written and flushed, then renamed or exchanged into place, and the directory flushed). A
//! change of several files is committed in three steps, with the exclusive session lock held:
//!
//! 1. the journal, holding every file's new content (or its removal) and a fingerprint of its
//!    old content, is put in place as a single file is: this is the commit point;
//! 2. every file is replaced (`replace::replace_files`: each new content is written beside its
//!    file, all of them are flushed with one `syncfs`, then each is exchanged with its file, so
//!    that every name always holds a complete file, old or new, and the directory is flushed);
//!    removals follow;
//! 3. the journal is removed and the directory flushed.
//!
//! A crash before step 1 completes leaves every file old (the journal is absent, or was never
//! put in place); after it, the journal survives and [`recover`] completes the change: a file
//! that holds the new content is left alone, one that still holds the old content (or is
//! unreadable after a power loss) gets the new content, and one that holds a third content was
//! changed by another tool after the crash and is kept as it is, and reported. The journal is
//! removed only once every file it describes is durable, and its removal is flushed before the
//! lock is released, so a stale journal can never be replayed over later changes. Durability
//! costs one flush of the journal, one `syncfs` and three directory flushes per change,
//! whatever the number of files; no inode is allocated or freed per file once each file has a
//! spare (`replace.rs`).

use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format;
use crate::fsio;
use crate::model::Repair;
use crate::replace::{self, NewContent};

/// The journal format this version writes and reads.
const JOURNAL_VERSION: u64 = 1;

/// The change of one file in the session directory.
#[derive(Debug, Clone)]
pub(crate) struct FileChange {
    /// The file name inside the state directory.
    file: String,
    /// Fingerprint of the content the caller read (under the lock), `None` if there was no file.
    before: Option<String>,
    /// The new content, `None` to remove the file.
    after: Option<String>,
    /// Whether the new content equals the old (nothing to do).
    unchanged: bool,
}

impl FileChange {
    /// A change of `file` from `before` (as read, `None` if absent) to `after` (`None`: remove).
    pub(crate) fn new(
        file: impl Into<String>,
        before: Option<&[u8]>,
        after: Option<String>,
    ) -> Self {
        let unchanged = match (before, &after) {
            (Some(before), Some(after)) => before == after.as_bytes(),
            (None, None) => true,
            _ => false,
        };
        FileChange {
            file: file.into(),
            before: before.map(fingerprint),
            after,
            unchanged,
        }
    }
}

/// A stable fingerprint of a file's content: FNV-1a (64 bits) and the length. It detects that a
/// file changed after a crash; it is not a defence against someone who can write the state
/// directory, who could change the files themselves.
pub(crate) fn fingerprint(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{hash:016x}:{}", bytes.len())
}

#[derive(Serialize, Deserialize)]
struct JournalFile {
    /// The format version; a newer one is refused rather than misread.
    dagster_deploy_journal: u64,
    /// What was being done, for the repair report.
    operation: String,
    /// The process that wrote it.
    pid: u32,
    /// When it was written.
    started_at: String,
    changes: Vec<JournalChange>,
}

#[derive(Serialize, Deserialize)]
struct JournalChange {
    file: String,
    before: Option<String>,
    after: Option<String>,
}

/// Commits `changes` all-or-nothing (see the module documentation). The caller holds the
/// exclusive session lock and read every `before` under it.
pub(crate) fn commit(dir: &Path, operation: &str, changes: Vec<FileChange>) -> Result<()> {
    let changes: Vec<FileChange> = changes
        .into_iter()
        .filter(|change| !change.unchanged)
        .collect();
    match changes.as_slice() {
        [] => Ok(()),
        [single] => match &single.after {
            Some(after) => replace::replace_files(
                dir,
                &[NewContent {
                    file: &single.file,
                    contents: after.as_bytes(),
                }],
                |_| Ok(()),
            ),
            None => replace::remove_file(dir, &single.file).and_then(|()| fsio::sync_dir(dir)),
        },
        _ => commit_journaled(dir, operation, &changes),
    }
}

fn commit_journaled(dir: &Path, operation: &str, changes: &[FileChange]) -> Result<()> {
    let journal = JournalFile {
        dagster_deploy_journal: JOURNAL_VERSION,
        operation: operation.to_owned(),
        pid: std::process::id(),
        started_at: format::format_timestamp(Timestamp::now(), crate::model::TimestampForm::Utc),
        changes: changes
            .iter()
            .map(|change| JournalChange {
                file: change.file.clone(),
                before: change.before.clone(),
                after: change.after.clone(),
            })
            .collect(),
    };
    // Serialising strings and numbers cannot fail.
    let bytes = serde_json::to_vec(&journal).unwrap_or_default();
    if bytes.len() as u64 > fsio::MAX_JOURNAL_BYTES {
        // Refused before anything changes: a journal that could not be read back could not be
        // completed.
        return Err(Error::TooLarge {
            path: dir.join(fsio::JOURNAL_FILE),
            limit: fsio::MAX_JOURNAL_BYTES,
        });
    }
    // The commit point: once this returns, the journal is durable in its place.
    replace::replace_files(
        dir,
        &[NewContent {
            file: fsio::JOURNAL_FILE,
            contents: &bytes,
        }],
        |_| Ok(()),
    )?;
    apply(dir, changes, crash_point::check)?;
    fsio::remove(&dir.join(fsio::JOURNAL_FILE))?;
    fsio::sync_dir(dir)
}

/// Puts every change in place durably: the new contents through `replace::replace_files`
/// (`step` runs before each one is put in place), then the removals.
fn apply<'a>(
    dir: &Path,
    changes: impl IntoIterator<Item = &'a FileChange>,
    step: impl FnMut(usize) -> Result<()>,
) -> Result<()> {
    let mut written = Vec::new();
    let mut removed = Vec::new();
    for change in changes {
        match &change.after {
            Some(after) => written.push(NewContent {
                file: &change.file,
                contents: after.as_bytes(),
            }),
            None => removed.push(change.file.as_str()),
        }
    }
    replace::replace_files(dir, &written, step)?;
    for file in &removed {
        replace::remove_file(dir, file)?;
    }
    if !removed.is_empty() {
        fsio::sync_dir(dir)?;
    }
    Ok(())
}

/// Reads and checks the journal of `dir`, if there is one.
fn read_journal(dir: &Path) -> Result<Option<JournalFile>> {
    let path = dir.join(fsio::JOURNAL_FILE);
    let Some(bytes) = fsio::read_bounded(&path, "read journal", fsio::MAX_JOURNAL_BYTES)? else {
        return Ok(None);
    };
    // Read the version first, so that a newer format is named as such, not as damage.
    #[derive(Deserialize)]
    struct Version {
        dagster_deploy_journal: Option<u64>,
    }
    let version = serde_json::from_slice::<Version>(&bytes)
        .ok()
        .and_then(|version| version.dagster_deploy_journal);
    if let Some(version) = version.filter(|version| *version > JOURNAL_VERSION) {
        return Err(Error::NewerFormat {
            path,
            detail: format!(
                "it is format {version}, and this version reads format {JOURNAL_VERSION}"
            ),
        });
    }
    let journal: JournalFile = serde_json::from_slice(&bytes).map_err(|err| Error::Journal {
        path: path.clone(),
        detail: err.to_string(),
    })?;
    for change in &journal.changes {
        // The journal names files of this directory only; anything else is not ours.
        let valid = fsio::is_session_file(&change.file)
            && !change.file.contains(['/', '\\', '\0'])
            && fsio::location_name_of(&change.file)
                .is_none_or(|name| fsio::check_location_name(name).is_ok());
        if !valid {
            return Err(Error::Journal {
                path,
                detail: format!("it names the file {:?}", change.file),
            });
        }
    }
    Ok(Some(journal))
}

/// Whether `dir` holds the journal of an interrupted (or running) change.
pub(crate) fn is_pending(dir: &Path) -> bool {
    dir.join(fsio::JOURNAL_FILE).exists()
}

/// What a file should hold once an interrupted change is completed.
enum Resolution {
    /// It already holds the new content.
    Done,
    /// It still holds the old content (or is damaged): write the new one.
    Complete,
    /// Another tool changed it after the interruption: keep it.
    Keep,
}

fn resolve(change: &JournalChange, current: Option<&[u8]>) -> Resolution {
    if current == change.after.as_deref().map(str::as_bytes) {
        return Resolution::Done;
    }
    if current.map(fingerprint) == change.before {
        return Resolution::Complete;
    }
    // After a power loss a renamed file can be empty or hold junk: it is neither old nor new,
    // and the journal has its new content.
    let damaged = match current {
        Some(bytes) => fsio::location_name_of(&change.file)
            .is_some_and(|_| format::parse_location(Path::new(&change.file), bytes).is_err()),
        None => false,
    };
    if damaged {
        Resolution::Complete
    } else {
        Resolution::Keep
    }
}

/// Completes the interrupted change recorded in `dir`'s journal, if any. The caller holds the
/// exclusive session lock, so a journal found now belongs to a process that died.
pub(crate) fn recover(dir: &Path) -> Result<Option<Repair>> {
    let Some(journal) = read_journal(dir)? else {
        return Ok(None);
    };
    let mut repair = repair_report(&journal);
    let mut to_complete = Vec::new();
    for change in &journal.changes {
        let current = fsio::read_optional(&dir.join(&change.file), "read state file")?;
        match resolve(change, current.as_deref()) {
            Resolution::Done => repair.already_done += 1,
            Resolution::Keep => repair.kept.push(change.file.clone()),
            Resolution::Complete => {
                to_complete.push(FileChange {
                    file: change.file.clone(),
                    before: change.before.clone(),
                    after: change.after.clone(),
                    unchanged: false,
                });
                repair.completed.push(change.file.clone());
            }
        }
    }
    apply(dir, &to_complete, |_| Ok(()))?;
    fsio::remove_temp_files(dir)?;
    fsio::remove(&dir.join(fsio::JOURNAL_FILE))?;
    fsio::sync_dir(dir)?;
    Ok(Some(repair))
}

/// Each file named in a journal, with the content it holds once the change is completed
/// (`None`: absent).
pub(crate) type Completed = Vec<(String, Option<Vec<u8>>)>;

/// The contents `dir` holds once its pending change, if any, is completed. For copies of a
/// session that must not be written to (the sources of a merge, a read-only directory).
pub(crate) fn pending_contents(dir: &Path) -> Result<Option<(Repair, Completed)>> {
    let Some(journal) = read_journal(dir)? else {
        return Ok(None);
    };
    let mut repair = repair_report(&journal);
    let mut contents = Vec::with_capacity(journal.changes.len());
    for change in &journal.changes {
        let current = fsio::read_optional(&dir.join(&change.file), "read state file")?;
        let content = match resolve(change, current.as_deref()) {
            Resolution::Done => {
                repair.already_done += 1;
                current
            }
            Resolution::Keep => {
                repair.kept.push(change.file.clone());
                current
            }
            Resolution::Complete => {
                repair.completed.push(change.file.clone());
                change.after.clone().map(String::into_bytes)
            }
        };
        contents.push((change.file.clone(), content));
    }
    Ok(Some((repair, contents)))
}

fn repair_report(journal: &JournalFile) -> Repair {
    Repair {
        operation: journal.operation.clone(),
        pid: journal.pid,
        started_at: format::parse_timestamp(&journal.started_at)
            .map(|(timestamp, _)| timestamp)
            .ok(),
        changes: journal.changes.len(),
        already_done: 0,
        completed: Vec::new(),
        kept: Vec::new(),
        on_disk: true,
    }
}

/// Simulated crashes for the unit tests: `arm(n)` makes the `n`-th step of the next journaled
/// commit on this thread fail, as if the process had died there (nothing after it runs; the
/// page cache, and so every completed rename, survives).
pub(crate) mod crash_point {
    #[cfg(test)]
    use std::cell::Cell;

    use crate::error::Result;

    #[cfg(test)]
    thread_local! {
        static ARMED: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// Fails if a simulated crash is armed for `step`.
    #[cfg(test)]
    pub(crate) fn check(step: usize) -> Result<()> {
        if ARMED.with(Cell::get) == Some(step) {
            ARMED.with(|armed| armed.set(None));
            return Err(crate::error::Error::io(
                "simulate a crash in",
                "journal",
                std::io::Error::other("simulated crash"),
            ));
        }
        Ok(())
    }

    /// Nothing to check outside the unit tests.
    #[cfg(not(test))]
    #[inline]
    pub(crate) fn check(_step: usize) -> Result<()> {
        Ok(())
    }

    /// Arms a simulated crash at `step` of the next journaled commit on this thread.
    #[cfg(test)]
    pub(crate) fn arm(step: usize) {
        ARMED.with(|armed| armed.set(Some(step)));
    }
}

#[cfg(test)]
mod tests;
