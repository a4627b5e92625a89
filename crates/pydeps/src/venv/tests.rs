//! Tests of `venv.rs`: the environment made from uv's target directory.

use super::*;
use crate::target::{Architecture, Libc, PythonVersion};

fn target() -> TargetPython {
    TargetPython {
        interpreter: "/usr/local/bin/python3.12".to_owned(),
        version: PythonVersion {
            major: 3,
            minor: 12,
            patch: Some(7),
        },
        architecture: Architecture::X86_64,
        libc: Libc::Glibc {
            major: 2,
            minor: 36,
        },
    }
}

#[test]
fn shebangs_naming_the_machines_python_point_at_the_environment() {
    let check = |script: &str, expected: Option<&str>| {
        let rewritten = rewrite_shebang(script.as_bytes(), "#!/opt/venv/bin/python\n");
        assert_eq!(
            rewritten
                .map(|bytes| String::from_utf8(bytes).unwrap())
                .as_deref(),
            expected,
            "{script:?}"
        );
    };
    check(
        "#!/root/.pyenv/versions/3.11.7/bin/python\nimport sys\n",
        Some("#!/opt/venv/bin/python\nimport sys\n"),
    );
    check(
        "#!/bin/sh\n'''exec' '/a path/with spaces/python3' \"$0\" \"$@\"\n' '''\nimport sys\n",
        Some("#!/opt/venv/bin/python\nimport sys\n"),
    );
    check(
        "#!/usr/bin/python3.12 -E\nx\n",
        Some("#!/opt/venv/bin/python\nx\n"),
    );
    check("#!/bin/bash\necho hi\n", None);
    check("#!/usr/bin/env python\nx\n", None);
    check("\x7fELF", None);
    check("#!/usr/bin/python", Some("#!/opt/venv/bin/python\n"));
}

#[test]
fn uv_output_becomes_a_venv_for_the_images_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let installed = dir.path();
    std::fs::create_dir_all(installed.join("bin")).unwrap();
    std::fs::create_dir_all(installed.join("tool")).unwrap();
    std::fs::create_dir_all(installed.join("tool-1.0.dist-info")).unwrap();
    let script = "#!/host/python\nfrom tool import main\nmain()\n";
    std::fs::write(installed.join("bin/tool"), script).unwrap();
    std::fs::write(installed.join("tool/__init__.py"), "").unwrap();
    std::fs::write(installed.join(".lock"), "").unwrap();
    std::fs::write(
        installed.join("tool-1.0.dist-info/RECORD"),
        "bin/tool,sha256=old,41\ntool/__init__.py,sha256=x,0\ntool-1.0.dist-info/RECORD,,\n",
    )
    .unwrap();
    let entries = plan_venv(installed, "/opt/venv", &target()).unwrap();
    let paths: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "opt/venv",
            "opt/venv/bin",
            "opt/venv/bin/python",
            "opt/venv/bin/python3",
            "opt/venv/bin/python3.12",
            "opt/venv/bin/tool",
            "opt/venv/lib",
            "opt/venv/lib/python3.12",
            "opt/venv/lib/python3.12/site-packages",
            "opt/venv/lib/python3.12/site-packages/tool",
            "opt/venv/lib/python3.12/site-packages/tool-1.0.dist-info",
            "opt/venv/lib/python3.12/site-packages/tool-1.0.dist-info/RECORD",
            "opt/venv/lib/python3.12/site-packages/tool/__init__.py",
            "opt/venv/pyvenv.cfg",
        ]
    );
    let bytes = |path: &str| match &entries[path] {
        LayerEntry::File {
            content: Content::Bytes(bytes),
            ..
        } => String::from_utf8(bytes.clone()).unwrap(),
        other => panic!("{path}: {other:?}"),
    };
    assert_eq!(
        bytes("opt/venv/pyvenv.cfg"),
        "home = /usr/local/bin\ninclude-system-site-packages = false\nversion = 3.12.7\n"
    );
    let new_script = "#!/opt/venv/bin/python\nfrom tool import main\nmain()\n";
    assert_eq!(bytes("opt/venv/bin/tool"), new_script);
    assert_eq!(
        bytes("opt/venv/lib/python3.12/site-packages/tool-1.0.dist-info/RECORD"),
        format!(
            "../../../bin/tool,sha256={},{}\ntool/__init__.py,sha256=x,0\ntool-1.0.dist-info/RECORD,,\n",
            record_hash(new_script.as_bytes()),
            new_script.len()
        )
    );
    assert_eq!(
        entries["opt/venv/bin/python"],
        LayerEntry::Symlink {
            target: "/usr/local/bin/python3.12".to_owned()
        }
    );
    assert_eq!(
        entries["opt/venv/bin/python3.12"],
        LayerEntry::Symlink {
            target: "python".to_owned()
        }
    );
}

#[test]
fn a_package_file_named_python_does_not_replace_the_interpreter_link() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::write(dir.path().join("bin/python"), "#!/host/python\n").unwrap();
    let entries = plan_venv(dir.path(), "/opt/venv", &target()).unwrap();
    assert!(matches!(
        entries["opt/venv/bin/python"],
        LayerEntry::Symlink { .. }
    ));
}
