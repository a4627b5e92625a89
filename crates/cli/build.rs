//! Build facts for `dagster-deploy --version`: the git commit the binary was built from and the
//! target triple. Exposed as `DAGSTER_DEPLOY_GIT_COMMIT` and `DAGSTER_DEPLOY_TARGET`.
//!
//! The commit comes from, in order: the `DAGSTER_DEPLOY_GIT_COMMIT` environment variable (for
//! packagers who know better); `git`, but only when this crate's own files are tracked by the
//! repository around them (a tarball unpacked inside some other checkout must not report that
//! checkout's commit); `git-commit.txt`, which `git archive` fills in (`export-subst` in
//! `.gitattributes`), so source tarballs of a release know their commit; else `unknown`. A
//! build never fails for lack of git.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-env-changed=DAGSTER_DEPLOY_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let commit = std::env::var("DAGSTER_DEPLOY_GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .map(|commit| commit.trim().to_owned())
        .or_else(|| git_commit(&manifest_dir))
        .or_else(|| archived_commit(&manifest_dir))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=DAGSTER_DEPLOY_GIT_COMMIT={commit}");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=DAGSTER_DEPLOY_TARGET={target}");
}

/// Runs git in `dir` and returns its trimmed stdout, or `None` if git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|text| !text.is_empty())
}

/// The short commit of the checkout holding this crate, if this crate is part of it.
fn git_commit(manifest_dir: &Path) -> Option<String> {
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it points to (a commit) and
    // packed-refs (a fetch or gc may move the branch there). Registered before anything can
    // fail, so that committing this very file later is noticed.
    for name in ["HEAD", "packed-refs"] {
        rerun_if_git_path_changed(manifest_dir, name);
    }
    if let Some(branch) = git(manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        rerun_if_git_path_changed(manifest_dir, &branch);
    }
    // `ls-files --error-unmatch` fails unless build.rs is tracked here: this rules out a source
    // tarball unpacked inside an unrelated repository.
    git(manifest_dir, &["ls-files", "--error-unmatch", "build.rs"])?;
    git(manifest_dir, &["rev-parse", "--short=12", "HEAD"])
}

/// The commit `git archive` wrote into `git-commit.txt`; in a checkout the file still holds the
/// unexpanded placeholder, which is not a commit.
fn archived_commit(manifest_dir: &Path) -> Option<String> {
    let path = manifest_dir.join("git-commit.txt");
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(path).ok()?;
    let commit = text.trim();
    let is_hash = commit.len() >= 12 && commit.bytes().all(|byte| byte.is_ascii_hexdigit());
    is_hash.then(|| commit[..12].to_owned())
}

fn rerun_if_git_path_changed(manifest_dir: &Path, name: &str) {
    if let Some(path) = git(manifest_dir, &["rev-parse", "--git-path", name]) {
        let path = manifest_dir.join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
