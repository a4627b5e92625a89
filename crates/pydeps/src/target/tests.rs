//! Tests of `target.rs`: reading a base image's Python from its files.

use std::collections::BTreeMap;

use super::*;

/// A base image's file system in memory.
#[derive(Default)]
struct FakeImage {
    entries: BTreeMap<String, (BaseEntry, Vec<u8>)>,
}

impl FakeImage {
    fn file(mut self, path: &str, content: &str) -> Self {
        self.parents(path);
        self.entries.insert(
            path.to_owned(),
            (BaseEntry::File, content.as_bytes().to_vec()),
        );
        self
    }

    fn link(mut self, path: &str, target: &str) -> Self {
        self.parents(path);
        let entry = BaseEntry::Symlink {
            target: target.to_owned(),
        };
        self.entries.insert(path.to_owned(), (entry, Vec::new()));
        self
    }

    fn parents(&mut self, path: &str) {
        let mut parent = path;
        while let Some((up, _)) = parent.rsplit_once('/') {
            if up.is_empty() {
                break;
            }
            self.entries
                .entry(up.to_owned())
                .or_insert((BaseEntry::Directory, Vec::new()));
            parent = up;
        }
    }
}

impl BaseFiles for FakeImage {
    fn entry(&self, path: &str) -> std::io::Result<Option<BaseEntry>> {
        Ok(self.entries.get(path).map(|(entry, _)| entry.clone()))
    }

    fn list(&self, path: &str) -> std::io::Result<Vec<String>> {
        let prefix = format!("{path}/");
        Ok(self
            .entries
            .keys()
            .filter_map(|key| key.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_owned)
            .collect())
    }

    fn read(&self, path: &str, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
        Ok(self.entries.get(path).and_then(|(entry, content)| {
            (*entry == BaseEntry::File && content.len() as u64 <= limit).then(|| content.clone())
        }))
    }
}

const BOOKWORM_STATUS: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u14\n\nPackage: python3.11-minimal\nStatus: install ok installed\nVersion: 3.11.2-6+deb12u8\n\nPackage: python3.12-minimal\nStatus: deinstall ok config-files\nVersion: 3.12.9-1\n";

fn debian() -> FakeImage {
    FakeImage::default()
        .link("/bin", "usr/bin")
        .link("/usr/bin/python3", "python3.11")
        .file("/usr/bin/python3.11", "ELF")
        .file("/var/lib/dpkg/status", BOOKWORM_STATUS)
}

fn facts(architecture: &str, env: &[&str]) -> ImageFacts {
    ImageFacts {
        architecture: architecture.to_owned(),
        env: env.iter().map(|entry| (*entry).to_owned()).collect(),
    }
}

fn detect(image: &FakeImage, facts: &ImageFacts) -> TargetPython {
    TargetPython::detect(image, facts).unwrap()
}

#[test]
fn debian_python_is_read_from_the_path_and_the_dpkg_database() {
    let target = detect(
        &debian(),
        &facts("amd64", &["PATH=/usr/local/bin:/usr/bin:/bin"]),
    );
    assert_eq!(target.interpreter, "/usr/bin/python3.11");
    assert_eq!(target.version.to_string(), "3.11.2");
    assert_eq!(target.uv_platform(), "x86_64-manylinux_2_36");
    assert_eq!(target.site_packages(), "lib/python3.11/site-packages");
}

#[test]
fn a_python3_found_through_a_symlinked_directory_resolves_to_its_real_path() {
    // Only `/bin` on the PATH, which is a symlink to `usr/bin` on merged-/usr systems.
    let target = detect(&debian(), &facts("amd64", &["PATH=/bin"]));
    assert_eq!(target.interpreter, "/usr/bin/python3.11");
}

#[test]
fn the_official_python_image_is_read_from_its_environment() {
    let image = FakeImage::default()
        .link("/usr/local/bin/python3", "python3.12")
        .file("/usr/local/bin/python3.12", "ELF")
        .link("/usr/bin/python3", "python3.11")
        .file("/usr/bin/python3.11", "ELF")
        .file("/var/lib/dpkg/status", BOOKWORM_STATUS);
    let target = detect(&image, &facts("amd64", &["PYTHON_VERSION=3.12.7"]));
    assert_eq!(target.interpreter, "/usr/local/bin/python3.12");
    assert_eq!(target.version.to_string(), "3.12.7");
}

#[test]
fn a_python_version_of_another_minor_is_not_believed() {
    let target = detect(&debian(), &facts("amd64", &["PYTHON_VERSION=3.12.7"]));
    assert_eq!(target.version.to_string(), "3.11");
}

#[test]
fn alpine_is_musl() {
    let image = FakeImage::default()
        .link("/usr/bin/python3", "python3.12")
        .file("/usr/bin/python3.12", "ELF")
        .file("/lib/ld-musl-aarch64.so.1", "ELF")
        .file(
            "/lib/apk/db/installed",
            "P:musl\nV:1.2.5-r0\n\nP:python3\nV:3.12.3-r1\n",
        );
    let target = detect(&image, &facts("arm64", &[]));
    assert_eq!(target.version.to_string(), "3.12.3");
    assert_eq!(target.uv_platform(), "aarch64-unknown-linux-musl");
}

#[test]
fn distroless_status_files_are_read() {
    let image = FakeImage::default()
        .link("/usr/bin/python3", "python3.11")
        .file("/usr/bin/python3.11", "ELF")
        .file(
            "/var/lib/dpkg/status.d/libc6",
            "Package: libc6\nVersion: 2.36-9\n",
        )
        .file(
            "/var/lib/dpkg/status.d/python3.11-minimal",
            "Package: python3.11-minimal\nVersion: 3.11.2-6\n",
        );
    let target = detect(&image, &facts("amd64", &[]));
    assert_eq!(target.version.to_string(), "3.11.2");
    assert_eq!(target.uv_platform(), "x86_64-manylinux_2_36");
}

#[test]
fn an_unversioned_python3_file_is_named_by_the_versioned_link_to_it() {
    let image = FakeImage::default()
        .file("/usr/bin/python3", "ELF")
        .link("/usr/bin/python3.13", "python3");
    let target = detect(&image, &facts("amd64", &[]));
    assert_eq!(target.interpreter, "/usr/bin/python3.13");
    assert_eq!(target.version.to_string(), "3.13");
    // No package database: the most widely compatible glibc tag.
    assert_eq!(target.uv_platform(), "x86_64-manylinux2014");
}

#[test]
fn glibc_versions_map_to_the_tags_uv_knows() {
    let check = |minor: u32, expected: &str| {
        let target = TargetPython {
            interpreter: "/usr/bin/python3.12".to_owned(),
            version: PythonVersion {
                major: 3,
                minor: 12,
                patch: None,
            },
            architecture: Architecture::X86_64,
            libc: Libc::Glibc { major: 2, minor },
        };
        assert_eq!(target.uv_platform(), expected, "glibc 2.{minor}");
    };
    check(41, "x86_64-manylinux_2_40");
    check(36, "x86_64-manylinux_2_36");
    check(30, "x86_64-manylinux_2_28");
    check(17, "x86_64-manylinux2014");
    check(12, "x86_64-manylinux2014");
}

#[test]
fn an_image_without_python_is_refused() {
    let image = FakeImage::default().file("/bin/sh", "ELF");
    let error = TargetPython::detect(&image, &facts("amd64", &["PATH=/bin"])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the base image has no python3 on its PATH (/bin)"
    );
    assert!(error.help().unwrap().contains("python:3.12-slim"));
}

#[test]
fn an_unknown_architecture_is_refused() {
    let error = TargetPython::detect(&debian(), &facts("s390x", &[])).unwrap_err();
    assert!(
        matches!(error, Error::UnsupportedArchitecture { .. }),
        "{error:?}"
    );
}

#[test]
fn symlink_loops_are_not_followed_forever() {
    let image = FakeImage::default()
        .link("/usr/bin/python3", "python3.x")
        .link("/usr/bin/python3.x", "python3");
    let error = TargetPython::detect(&image, &facts("amd64", &["PATH=/usr/bin"])).unwrap_err();
    assert!(matches!(error, Error::NoInterpreter { .. }), "{error:?}");
}

#[test]
fn an_unpacked_root_is_read_without_following_links_out_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::write(root.join("usr/bin/python3.12"), "ELF").unwrap();
    std::os::unix::fs::symlink("python3.12", root.join("usr/bin/python3")).unwrap();
    // An absolute link is resolved inside the image, not on the host.
    std::os::unix::fs::symlink("/usr/bin", root.join("bin")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), BOOKWORM_STATUS).unwrap();
    let target =
        TargetPython::detect(&UnpackedRoot::new(root), &facts("amd64", &["PATH=/bin"])).unwrap();
    assert_eq!(target.interpreter, "/usr/bin/python3.12");
    assert_eq!(target.uv_platform(), "x86_64-manylinux_2_36");
}
