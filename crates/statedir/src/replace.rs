//! Replacing state files: each name always holds a complete file, its old or its new content,
//! and the new contents of any number of files are made durable with one flush, without an
//! inode allocated or freed per file.
//!
//! A file is replaced by renaming a complete new file over its name. Writing each new content
//! into a fresh temp file costs an inode allocated and one freed per file per command, and
//! that is where a command over 2,000 locations spent its seconds: on ext4 mounted without a
//! journal, each allocation scans past every inode of its block group freed in the last minutes
//! (`recently_deleted` under `__ext4_new_inode` in a profile: 6 s for one `set-build-output`
//! over 2,000 locations, 3 ms per file), and with a journal a rename over an existing file
//! starts that file's writeback (`auto_da_alloc`).
//!
//! So every file has a **spare**: a file of the same name in the session's directory
//! `.dagster-deploy-spare`, the inode that the file's last replacement displaced. Replacing
//! files:
//!
//! 1. each file's new content is written into its spare, over what the spare held (the first
//!    time, a spare is created), without a flush;
//! 2. all spares are made durable at once: one `syncfs(2)` (an `fsync` when there is one file);
//! 3. each spare is exchanged with its file (`renameat2(RENAME_EXCHANGE)`, atomic): the name now
//!    holds the new content and the spare the old one, the next replacement's spare. A file
//!    that did not exist yet is renamed into place;
//! 4. the state directory is flushed.
//!
//! The flush comes before the exchanges because a spare is overwritten in place: after a power
//! loss, an unflushed spare that had reached its name could hold its *previous* content, a
//! complete state file of an earlier change that recovery could not tell from a change made by
//! another tool (see `journal.rs`). Flushed first, a name holds its old inode or a new one whose
//! content is durable. No inode is allocated or freed once every file has a spare; spares are
//! never read. A spare that is not a plain file with one link (a copy made with hard links
//! shares its inodes: writing into one would change the other copy) is replaced by a new file.
//!
//! Where the exchange is not available (another system than Linux, a filesystem without
//! `RENAME_EXCHANGE`) or the spare directory cannot be used, each new content goes to a temp
//! file (`.tmp-*` in the state directory), which is flushed and renamed over the name.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::fsio;

/// A file's new content, put in place by [`replace_files`].
pub(crate) struct NewContent<'a> {
    /// The file name inside the state directory.
    pub(crate) file: &'a str,
    /// The complete new content.
    pub(crate) contents: &'a [u8],
}

/// A new content written, not yet in place.
struct Staged {
    /// The spare or temp file holding it.
    path: PathBuf,
    /// Whether it is a spare (exchanged) or a temp file (renamed).
    spare: bool,
    /// The open file, kept when it is flushed on its own.
    file: Option<File>,
}

/// Replaces each file of `dir` with its new content (see the module documentation): at every
/// moment each name holds its old or its new content, and when this returns every new content
/// is durable. The caller holds the exclusive session lock.
///
/// `step(index)` runs before the `index`-th file is put in place and once after the last: it
/// lets the crash tests stop the change there.
pub(crate) fn replace_files(
    dir: &Path,
    files: &[NewContent<'_>],
    mut step: impl FnMut(usize) -> Result<()>,
) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let spares = spare_dir(dir);
    let keep_open = files.len() == 1;
    let mut staged: Vec<Staged> = Vec::with_capacity(files.len());
    let result = (|| {
        for new in files {
            staged.push(stage(dir, spares.as_deref(), new, keep_open)?);
        }
        flush(dir, &mut staged)?;
        let mut exchange = cfg!(target_os = "linux");
        for (index, (new, staged)) in files.iter().zip(&staged).enumerate() {
            step(index)?;
            put_in_place(staged, &dir.join(new.file), &mut exchange)?;
        }
        step(files.len())?;
        fsio::sync_dir(dir)
    })();
    if result.is_err() {
        // Best effort: a temp file left over is ignored by listings, and cleared by `start`
        // and by the next writer that completes an interrupted change. A spare may hold
        // anything.
        for staged in staged.iter().filter(|staged| !staged.spare) {
            let _ = fs::remove_file(&staged.path);
        }
    }
    result
}

/// Removes a file of `dir` and its spare.
pub(crate) fn remove_file(dir: &Path, file: &str) -> Result<()> {
    fsio::remove(&dir.join(file))?;
    fsio::remove(&dir.join(fsio::SPARE_DIR).join(file))
}

/// Removes the spares of files that `keep` does not name (the files of a previous session that
/// another tool removed). The caller holds the exclusive session lock.
pub(crate) fn prune_spares(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<()> {
    let spares = dir.join(fsio::SPARE_DIR);
    let entries = match fs::read_dir(&spares) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(Error::io("list spare files in", &spares, err)),
    };
    for entry in entries {
        let entry = entry.map_err(|err| Error::io("list spare files in", &spares, err))?;
        if !entry.file_name().to_str().is_some_and(&keep) {
            // A directory here is not ours to remove: it stays, and is never used as a spare.
            if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                fsio::remove(&entry.path())?;
            }
        }
    }
    Ok(())
}

/// The spare directory of `dir`, created if missing; `None` where spares are not used (see the
/// module documentation) or it is not a plain directory.
fn spare_dir(dir: &Path) -> Option<PathBuf> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let path = dir.join(fsio::SPARE_DIR);
    match fs::create_dir(&path) {
        Ok(()) => Some(path),
        // Not a symbolic link: the spares must be in the state directory's filesystem, and
        // nobody else's files are written into.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => fs::symlink_metadata(&path)
            .is_ok_and(|metadata| metadata.is_dir())
            .then_some(path),
        Err(_) => None,
    }
}

/// Writes `new` into its spare if there is a usable one (or one can be created), else into a
/// new temp file of `dir`.
fn stage(
    dir: &Path,
    spares: Option<&Path>,
    new: &NewContent<'_>,
    keep_open: bool,
) -> Result<Staged> {
    if let Some(path) = spares.map(|spares| spares.join(new.file))
        && let Some((mut file, old_len)) = open_spare(&path)
    {
        file.write_all(new.contents)
            .map_err(|err| Error::io("write spare file", &path, err))?;
        if old_len > new.contents.len() as u64 {
            file.set_len(new.contents.len() as u64)
                .map_err(|err| Error::io("write spare file", &path, err))?;
        }
        return Ok(Staged {
            path,
            spare: true,
            file: keep_open.then_some(file),
        });
    }
    let path = dir.join(format!(
        "{}{}-{}-{}",
        fsio::TEMP_PREFIX,
        process_id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed),
        new.file
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|err| Error::io("create temporary file", &path, err))?;
    let staged = Staged {
        path,
        spare: false,
        file: None,
    };
    if let Err(err) = file.write_all(new.contents) {
        let _ = fs::remove_file(&staged.path);
        return Err(Error::io("write temporary file", &staged.path, err));
    }
    Ok(Staged {
        file: keep_open.then_some(file),
        ..staged
    })
}

/// Opens the spare at `path` for writing over it, creating it if missing, with the length it
/// had; `None` if it cannot be used. Never follows a symbolic link, never waits on a FIFO; a
/// spare that is not a regular file with one link is removed and created anew.
#[cfg(target_os = "linux")]
fn open_spare(path: &Path) -> Option<(File, u64)> {
    use rustix::fs::{Mode, OFlags};
    let open = |flags: OFlags| {
        rustix::fs::open(
            path,
            OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | flags,
            Mode::from_raw_mode(0o666),
        )
        .ok()
        .map(File::from)
    };
    let usable = |file: &File| {
        file.metadata().ok().and_then(|metadata| {
            use std::os::unix::fs::MetadataExt;
            (metadata.is_file() && metadata.nlink() == 1).then_some(metadata.len())
        })
    };
    if let Some(file) = open(OFlags::CREATE)
        && let Some(len) = usable(&file)
    {
        return Some((file, len));
    }
    // A directory cannot be removed this way, and stays unused.
    fs::remove_file(path).ok()?;
    let file = open(OFlags::CREATE | OFlags::EXCL)?;
    let len = usable(&file)?;
    Some((file, len))
}

/// Spares are used on Linux only (see the module documentation).
#[cfg(not(target_os = "linux"))]
fn open_spare(_path: &Path) -> Option<(File, u64)> {
    None
}

/// Makes every staged content durable: the one file's own flush, or one flush of the
/// filesystem for many (on Linux; elsewhere each file is flushed).
fn flush(dir: &Path, staged: &mut [Staged]) -> Result<()> {
    if let [single] = staged
        && let Some(file) = single.file.take()
    {
        return file
            .sync_all()
            .map_err(|err| Error::io("flush state file", &single.path, err));
    }
    #[cfg(target_os = "linux")]
    {
        let handle = File::open(dir).map_err(|err| Error::io("open state directory", dir, err))?;
        rustix::fs::syncfs(&handle)
            .map_err(|err| Error::io("flush the filesystem of", dir, err.into()))?;
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        for staged in staged.iter() {
            File::open(&staged.path)
                .and_then(|handle| handle.sync_all())
                .map_err(|err| Error::io("flush state file", &staged.path, err))?;
        }
    }
    Ok(())
}

/// Puts a staged content at `target`: a spare is exchanged with it while `exchange` holds
/// (which turns false for good where the filesystem does not support it); a temp file, a spare
/// of a file that does not exist yet, or any file where exchanging is not supported, is renamed
/// over it.
fn put_in_place(staged: &Staged, target: &Path, exchange: &mut bool) -> Result<()> {
    #[cfg(target_os = "linux")]
    if staged.spare && *exchange {
        use rustix::fs::{CWD, RenameFlags};
        use rustix::io::Errno;
        match rustix::fs::renameat_with(CWD, &staged.path, CWD, target, RenameFlags::EXCHANGE) {
            Ok(()) => return Ok(()),
            // The file does not exist yet (the spare was just written, under the lock).
            Err(Errno::NOENT) => {}
            // An old kernel, or a filesystem without the exchange (some network and FUSE ones).
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => *exchange = false,
            Err(err) => return Err(Error::io("replace state file", target, err.into())),
        }
    }
    let _ = exchange;
    fs::rename(&staged.path, target).map_err(|err| Error::io("replace state file", target, err))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// This process's id, asked of the kernel once (it is part of every temp file name).
fn process_id() -> u32 {
    static ID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *ID.get_or_init(std::process::id)
}

#[cfg(test)]
mod tests;
