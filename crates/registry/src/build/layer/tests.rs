//! Unit tests of the code layer: contents, metadata normalisation, digests, reproducibility.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::*;

fn write(root: &Path, relative: &str, contents: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, contents).expect("write");
}

#[cfg(unix)]
fn set_mode(root: &Path, relative: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join(relative), std::fs::Permissions::from_mode(mode))
        .expect("chmod");
}

/// A small project with an executable, a symlink, an ignored file and a `.git` directory.
fn sample_project(root: &Path) {
    write(root, "pyproject.toml", "[project]\nname = 'x'\n");
    write(root, "src/pkg/__init__.py", "");
    write(root, "src/pkg/defs.py", "print('hi')\n");
    write(root, "bin/run.sh", "#!/bin/sh\n");
    write(root, "notes.log", "ignored\n");
    write(root, ".git/HEAD", "ref: refs/heads/main\n");
    write(root, ".dockerignore", "*.log\n");
    #[cfg(unix)]
    {
        set_mode(root, "bin/run.sh", 0o700);
        set_mode(root, "src/pkg/defs.py", 0o600);
        std::os::unix::fs::symlink("src/pkg", root.join("pkg-link")).expect("symlink");
    }
}

struct ArchivedEntry {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    mtime: u64,
    uid: u64,
    gid: u64,
    user: Vec<u8>,
    link: Option<String>,
    contents: Vec<u8>,
}

fn read_layer(layer: &LayerFile) -> Vec<ArchivedEntry> {
    let file = File::open(layer.file.path()).expect("open layer");
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    archive
        .entries()
        .expect("entries")
        .map(|entry| {
            let mut entry = entry.expect("entry");
            let header = entry.header().clone();
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).expect("read");
            ArchivedEntry {
                path: entry.path().expect("path").to_string_lossy().into_owned(),
                kind: header.entry_type(),
                mode: header.mode().expect("mode"),
                mtime: header.mtime().expect("mtime"),
                uid: header.uid().expect("uid"),
                gid: header.gid().expect("gid"),
                user: header.username_bytes().unwrap_or_default().to_vec(),
                link: entry
                    .link_name()
                    .expect("link")
                    .map(|link| link.to_string_lossy().into_owned()),
                contents,
            }
        })
        .collect()
}

fn build(root: &Path, workdir: &str, mtime: u64) -> LayerFile {
    let segments = workdir_segments(workdir).expect("workdir");
    write_layer(root, &segments, &[], mtime, &std::env::temp_dir()).expect("layer")
}

/// The uncompressed tar's digest, as the scan computes it.
fn diff_id(root: &Path, workdir: &str, mtime: u64) -> String {
    let segments = workdir_segments(workdir).expect("workdir");
    scan_layer(root, &segments, &[], mtime)
        .expect("scan")
        .diff_id
}

#[test]
fn layer_holds_the_context_under_the_workdir_sorted_with_normalised_metadata() {
    let project = tempfile::tempdir().expect("tempdir");
    sample_project(project.path());
    let layer = build(project.path(), "/app", 1_700_000_000);
    let entries = read_layer(&layer);
    let paths: Vec<&str> = entries.iter().map(|entry| entry.path.as_str()).collect();
    let mut expected = vec![
        "app",
        "app/.dockerignore",
        "app/bin",
        "app/bin/run.sh",
        "app/pyproject.toml",
        "app/src",
        "app/src/pkg",
        "app/src/pkg/__init__.py",
        "app/src/pkg/defs.py",
    ];
    if cfg!(unix) {
        expected.insert(4, "app/pkg-link");
    }
    assert_eq!(paths, expected);
    assert_eq!(layer.entries, expected.len());
    for entry in &entries {
        assert_eq!(entry.mtime, 1_700_000_000, "{}", entry.path);
        assert_eq!((entry.uid, entry.gid), (0, 0), "{}", entry.path);
        assert!(entry.user.is_empty(), "{}", entry.path);
        let expected_mode = match entry.path.as_str() {
            "app/bin/run.sh" if cfg!(unix) => 0o755,
            "app/pkg-link" => 0o777,
            _ if entry.kind == tar::EntryType::Directory => 0o755,
            _ => 0o644,
        };
        assert_eq!(entry.mode, expected_mode, "{}", entry.path);
    }
    let defs = entries
        .iter()
        .find(|entry| entry.path == "app/src/pkg/defs.py")
        .expect("defs.py");
    assert_eq!(defs.contents, b"print('hi')\n");
    if cfg!(unix) {
        let link = entries
            .iter()
            .find(|entry| entry.path == "app/pkg-link")
            .expect("symlink");
        assert_eq!(link.kind, tar::EntryType::Symlink);
        assert_eq!(link.link.as_deref(), Some("src/pkg"));
    }
}

#[test]
fn digests_match_the_compressed_and_uncompressed_bytes() {
    let project = tempfile::tempdir().expect("tempdir");
    sample_project(project.path());
    let layer = build(project.path(), "/opt/code", 0);
    let compressed = std::fs::read(layer.file.path()).expect("read");
    assert_eq!(layer.size, compressed.len() as u64);
    assert_eq!(
        layer.digest,
        format!("sha256:{}", hex::encode(Sha256::digest(&compressed)))
    );
    let mut uncompressed = Vec::new();
    GzDecoder::new(compressed.as_slice())
        .read_to_end(&mut uncompressed)
        .expect("gunzip");
    assert_eq!(
        diff_id(project.path(), "/opt/code", 0),
        format!("sha256:{}", hex::encode(Sha256::digest(&uncompressed)))
    );
    // A fixed gzip header: no mtime, no file name flag, "unknown" OS.
    assert_eq!(&compressed[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&compressed[4..8], &[0, 0, 0, 0]);
    assert_eq!(compressed[9], 255);
    let paths: Vec<String> = read_layer(&layer)
        .into_iter()
        .map(|entry| entry.path)
        .collect();
    assert_eq!(&paths[..3], ["opt", "opt/code", "opt/code/.dockerignore"]);
}

#[test]
fn same_content_gives_the_same_digest_whatever_the_file_metadata() {
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    sample_project(first.path());
    sample_project(second.path());
    // Different permissions (same exec bit) and a different .git must not matter.
    #[cfg(unix)]
    set_mode(second.path(), "src/pkg/defs.py", 0o664);
    write(second.path(), ".git/ORIG_HEAD", "abc\n");
    let layer_one = build(first.path(), "/app", 0);
    let layer_two = build(second.path(), "/app", 0);
    assert_eq!(layer_one.digest, layer_two.digest);
    assert_eq!(
        diff_id(first.path(), "/app", 0),
        diff_id(second.path(), "/app", 0)
    );

    write(second.path(), "src/pkg/defs.py", "print('changed')\n");
    let changed = build(second.path(), "/app", 0);
    assert_ne!(changed.digest, layer_one.digest);
    assert_ne!(
        diff_id(first.path(), "/app", 1),
        diff_id(first.path(), "/app", 0)
    );
}

#[test]
fn long_paths_use_gnu_extensions_and_round_trip() {
    let project = tempfile::tempdir().expect("tempdir");
    let long_name = format!("{}/{}.py", "d".repeat(90), "f".repeat(120));
    write(project.path(), &long_name, "x = 1\n");
    let layer = build(project.path(), "/app", 0);
    let paths: Vec<String> = read_layer(&layer)
        .into_iter()
        .map(|entry| entry.path)
        .collect();
    assert!(paths.contains(&format!("app/{long_name}")), "{paths:?}");
}

#[test]
fn directory_excluded_wholesale_unless_an_exception_reaches_inside() {
    let project = tempfile::tempdir().expect("tempdir");
    write(project.path(), "docs/keep.md", "k");
    write(project.path(), "docs/drop.md", "d");
    write(project.path(), "cache/a/b.bin", "b");
    write(project.path(), "main.py", "m");
    let rules = IgnoreRules::parse("docs\ncache\n!docs/keep.md\n").expect("rules");
    let entries = collect_entries(project.path(), &rules).expect("entries");
    let paths: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(paths, ["docs", "docs/keep.md", "main.py"]);
    assert_eq!(entries["docs"], ContextEntry::Directory);
    assert_eq!(
        entries["main.py"],
        ContextEntry::File {
            size: 1,
            executable: false
        }
    );
}

#[test]
fn invalid_workdirs_are_rejected() {
    assert_eq!(workdir_segments("/app/").expect("ok"), ["app"]);
    assert_eq!(workdir_segments("/opt//code").expect("ok"), ["opt", "code"]);
    assert!(workdir_segments("/").expect("root").is_empty());
    for bad in ["app", "/app/../etc", ""] {
        let error = workdir_segments(bad).expect_err(bad);
        assert!(matches!(error, Error::InvalidWorkdir { .. }), "{error}");
        assert!(
            error
                .help()
                .is_some_and(|help| help.contains("absolute path")),
            "{error}"
        );
    }
}

#[test]
fn malformed_dockerignore_names_file_and_line() {
    let project = tempfile::tempdir().expect("tempdir");
    write(project.path(), ".dockerignore", "# ok\n[oops\n");
    let error =
        write_layer(project.path(), &[], &[], 0, &std::env::temp_dir()).expect_err("bad rule");
    let message = error.to_string();
    assert!(message.contains(".dockerignore:2"), "{message}");
}

#[test]
fn parents_of_the_workdir_carry_the_base_metadata_and_the_workdir_stays_root_owned() {
    let project = tempfile::tempdir().expect("tempdir");
    write(project.path(), "main.py", "");
    let segments = workdir_segments("/home/u/app").expect("workdir");
    let home = DirectoryMetadata {
        mode: 0o700,
        uid: 1000,
        gid: 1000,
        user: "u".to_owned(),
        group: "u".to_owned(),
        mtime: 1_600_000_000,
    };
    let layer = write_layer(
        project.path(),
        &segments,
        &[None, Some(home)],
        5,
        &std::env::temp_dir(),
    )
    .expect("layer");
    let entries = read_layer(&layer);
    let summary: Vec<String> = entries
        .iter()
        .map(|entry| {
            format!(
                "{} {:o} {}:{} {:?} {}",
                entry.path,
                entry.mode,
                entry.uid,
                entry.gid,
                String::from_utf8_lossy(&entry.user),
                entry.mtime
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "home 755 0:0 \"\" 5",
            "home/u 700 1000:1000 \"u\" 1600000000",
            "home/u/app 755 0:0 \"\" 5",
            "home/u/app/main.py 644 0:0 \"\" 5",
        ]
    );
}

#[test]
fn the_layer_bytes_do_not_depend_on_the_number_of_compression_threads() {
    let project = tempfile::tempdir().expect("tempdir");
    sample_project(project.path());
    // More than a few compression chunks, so that every thread gets work.
    let big: String = (0..200_000)
        .map(|line| format!("value_{line} = {}\n", line * 7))
        .collect();
    assert!(
        big.len() > 3 * super::gzip::CHUNK_SIZE,
        "too small to split"
    );
    write(project.path(), "src/pkg/big.py", &big);
    let segments = workdir_segments("/app").expect("workdir");
    let scanned = scan_layer(project.path(), &segments, &[], 0).expect("scan");
    let one = scanned
        .compress(&std::env::temp_dir(), 1)
        .expect("one thread");
    let bytes = std::fs::read(one.file.path()).expect("read");
    for threads in [2, 3, 8] {
        let many = scanned
            .compress(&std::env::temp_dir(), threads)
            .expect("threads");
        assert_eq!(many.digest, one.digest, "{threads} threads");
        assert_eq!(
            std::fs::read(many.file.path()).expect("read"),
            bytes,
            "{threads} threads"
        );
    }
    let entries = read_layer(&one);
    let big_entry = entries
        .iter()
        .find(|entry| entry.path == "app/src/pkg/big.py")
        .expect("big.py");
    assert_eq!(big_entry.contents, big.as_bytes());
}

#[test]
fn a_byte_an_execute_bit_or_a_name_changes_the_diff_id_and_mtimes_do_not() {
    let project = tempfile::tempdir().expect("tempdir");
    sample_project(project.path());
    let original = diff_id(project.path(), "/app", 0);
    let check = |what: &str, changed: bool| {
        let now = diff_id(project.path(), "/app", 0);
        assert_eq!(now != original, changed, "{what}");
    };
    // Rewriting the same bytes gives the file a new mtime, which the layer does not carry.
    let defs = std::fs::read(project.path().join("src/pkg/defs.py")).expect("read");
    std::fs::write(project.path().join("src/pkg/defs.py"), &defs).expect("rewrite");
    check("same bytes, new mtime", false);

    let mut one_byte = defs.clone();
    one_byte[0] ^= 1;
    std::fs::write(project.path().join("src/pkg/defs.py"), &one_byte).expect("write");
    check("one byte", true);
    std::fs::write(project.path().join("src/pkg/defs.py"), &defs).expect("restore");
    check("restored", false);

    #[cfg(unix)]
    {
        set_mode(project.path(), "src/pkg/defs.py", 0o755);
        check("execute bit", true);
        set_mode(project.path(), "src/pkg/defs.py", 0o644);
        check("restored mode", false);
    }

    std::fs::rename(
        project.path().join("src/pkg/defs.py"),
        project.path().join("src/pkg/defs2.py"),
    )
    .expect("rename");
    check("rename", true);
}

#[test]
fn a_file_changed_between_the_scan_and_the_compression_is_an_error() {
    let project = tempfile::tempdir().expect("tempdir");
    sample_project(project.path());
    let segments = workdir_segments("/app").expect("workdir");
    let scanned = scan_layer(project.path(), &segments, &[], 0).expect("scan");
    let defs = std::fs::read(project.path().join("src/pkg/defs.py")).expect("read");
    let mut same_size = defs.clone();
    same_size[0] ^= 1;
    std::fs::write(project.path().join("src/pkg/defs.py"), &same_size).expect("write");
    let error = scanned
        .compress(&std::env::temp_dir(), 2)
        .expect_err("changed under our feet");
    assert!(matches!(error, Error::ContextChanged { .. }), "{error:?}");
    assert!(error.help().is_some());
}
