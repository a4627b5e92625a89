//! Where the code server will import a location's code from in a native image, and which
//! directory of the image, if any, must go on `PYTHONPATH` for the import to succeed.
//!
//! A Dagster+ agent starts the code server as `dagster api grpc` in the image's working directory,
//! with the deploy document's `code_source` and `working_directory` in `DAGSTER_CLI_API_GRPC_*`
//! variables. `dagster api grpc` puts the working directory (the document's, else the process's)
//! on `sys.path` and imports the module, or runs the file, from there. A Dockerfile build usually
//! installs the project (`uv sync`, `pip install .`), so a package in `src/` is importable; the
//! native builder installs nothing, so for a package that is not directly in the working
//! directory (a `src` layout, or a project below a workspace root) the image gets its directory
//! on `PYTHONPATH` instead. This module only looks at the build directory on the host: the image
//! path of a host path is the code directory (`--workdir`) joined with its path relative to the
//! build directory. Building the layer and the config lives elsewhere.

use std::path::{Path, PathBuf};

use super::dockerignore::IgnoreRules;
use crate::error::{Error, Result};

/// What a location's deploy document asks the code server to load: its `code_source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeTarget {
    /// `module_name`: a module, imported by name.
    ModuleName(String),
    /// `package_name`: a package, imported by name.
    PackageName(String),
    /// `autoload_defs_module_name`: a module whose definitions are loaded automatically.
    AutoloadDefsModuleName(String),
    /// `python_file`: a file, relative to the code server's working directory or absolute.
    PythonFile(String),
}

/// A location's code source and where its own Python sources live, for [`plan_imports`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadTarget {
    /// The document's `code_source`.
    pub code: CodeTarget,
    /// The document's `working_directory`: absolute, or relative to the image's working
    /// directory, as the code server resolves it.
    pub working_directory: Option<String>,
    /// Host directories that hold the project's sources, most specific first (a dg project's
    /// root); each is searched for the package directly and in its `src/`, after the working
    /// directory and before the build directory's own `src/`.
    pub source_roots: Vec<PathBuf>,
}

/// How the code server will find the location's code in the built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportPlan {
    /// Found where the code server looks anyway (its working directory); `path` is where it is
    /// in the image.
    Direct {
        /// The module's directory or file, or the Python file, in the image.
        path: String,
    },
    /// Found in the build directory, below a directory that must go on `PYTHONPATH`.
    PythonPath {
        /// The directory to put on `PYTHONPATH`, in the image.
        entry: String,
        /// The module's directory or file in the image.
        path: String,
    },
    /// Not in the build directory: the base image must provide it (an installed package).
    FromBase {
        /// The top-level module (or the file) that was looked for.
        name: String,
        /// The image directories that were searched.
        searched: Vec<String>,
    },
}

/// Decides how the code of `target` is imported from an image whose code directory `workdir`
/// holds the files of `context_dir` (minus what `.dockerignore` leaves out).
///
/// A module is found when its top-level package is a directory (`name/`) or a file (`name.py`).
/// A `python_file` that is relative (or absolute inside `workdir`) must be in the build
/// directory; one elsewhere is assumed to come from the base image.
pub fn plan_imports(context_dir: &Path, workdir: &str, target: &LoadTarget) -> Result<ImportPlan> {
    let workdir = normalise_image_path("/", workdir);
    let rules = IgnoreRules::load(context_dir)?;
    let code = CodeView {
        context_dir,
        workdir: &workdir,
        rules: &rules,
    };
    // The directory `dagster api grpc` puts on sys.path: the document's working directory,
    // else its own (the image's WorkingDir, which the builder sets to the code directory).
    let import_dir = match &target.working_directory {
        Some(directory) => normalise_image_path(&workdir, directory),
        None => workdir.clone(),
    };
    let name = match &target.code {
        CodeTarget::PythonFile(file) => {
            let path = normalise_image_path(&workdir, file);
            return match code.host_path(&path) {
                Some(_) if code.exists(&path) => Ok(ImportPlan::Direct { path }),
                Some(_) => Err(Error::PythonFileMissing {
                    file: file.clone(),
                    context: context_dir.to_path_buf(),
                }),
                None => Ok(ImportPlan::FromBase {
                    name: file.clone(),
                    searched: Vec::new(),
                }),
            };
        }
        CodeTarget::ModuleName(module)
        | CodeTarget::PackageName(module)
        | CodeTarget::AutoloadDefsModuleName(module) => {
            module.split('.').next().unwrap_or(module).to_owned()
        }
    };
    let mut searched = Vec::new();
    if let Some(path) = code.find_module(&import_dir, &name) {
        return Ok(ImportPlan::Direct { path });
    }
    searched.push(import_dir);
    let mut candidates = Vec::new();
    for root in &target.source_roots {
        if let Some(image_root) = code.image_path(root) {
            candidates.push(format!("{}/src", image_root.trim_end_matches('/')));
            candidates.push(image_root);
        }
    }
    candidates.push(format!("{}/src", workdir.trim_end_matches('/')));
    for candidate in candidates {
        if searched.contains(&candidate) {
            continue;
        }
        if let Some(path) = code.find_module(&candidate, &name) {
            return Ok(ImportPlan::PythonPath {
                entry: candidate,
                path,
            });
        }
        searched.push(candidate);
    }
    Ok(ImportPlan::FromBase { name, searched })
}

/// The build directory seen from inside the image.
struct CodeView<'a> {
    context_dir: &'a Path,
    workdir: &'a str,
    rules: &'a IgnoreRules,
}

impl CodeView<'_> {
    /// The path relative to the build directory of an image path inside the code directory.
    fn host_path(&self, image_path: &str) -> Option<String> {
        if image_path == self.workdir {
            return Some(String::new());
        }
        let prefix = if self.workdir == "/" {
            "/".to_owned()
        } else {
            format!("{}/", self.workdir)
        };
        image_path.strip_prefix(&prefix).map(str::to_owned)
    }

    /// The image path of a host directory inside the build directory.
    fn image_path(&self, host: &Path) -> Option<String> {
        let relative = host.strip_prefix(self.context_dir).ok()?;
        let relative = relative.to_str()?;
        Some(if relative.is_empty() {
            self.workdir.to_owned()
        } else {
            normalise_image_path(self.workdir, relative)
        })
    }

    /// Whether an image path inside the code directory exists in the layer.
    fn exists(&self, image_path: &str) -> bool {
        match self.host_path(image_path) {
            Some(relative) if relative.is_empty() => self.context_dir.is_dir(),
            Some(relative) => {
                !self.rules.is_excluded(&relative) && self.context_dir.join(&relative).exists()
            }
            None => false,
        }
    }

    /// Where the top-level module `name` is below the image directory `directory`, if the
    /// layer has it: the package directory, else the single-file module.
    fn find_module(&self, directory: &str, name: &str) -> Option<String> {
        let base = directory.trim_end_matches('/');
        [format!("{base}/{name}"), format!("{base}/{name}.py")]
            .into_iter()
            .find(|path| self.exists(path))
    }
}

/// Joins `path` to the absolute image directory `base` (unless it is absolute) and removes `.`,
/// `..` and repeated slashes, as the kernel resolves a path without symlinks.
fn normalise_image_path(base: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{base}/{path}")
    };
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, "").expect("write");
        }
        dir
    }

    fn module(name: &str) -> LoadTarget {
        LoadTarget {
            code: CodeTarget::ModuleName(name.to_owned()),
            working_directory: None,
            source_roots: Vec::new(),
        }
    }

    #[test]
    fn a_flat_package_is_found_in_the_working_directory() {
        let context = tree(&["myproj/__init__.py", "myproj/definitions.py"]);
        let plan = plan_imports(context.path(), "/app", &module("myproj.definitions")).unwrap();
        assert_eq!(
            plan,
            ImportPlan::Direct {
                path: "/app/myproj".to_owned()
            }
        );
    }

    #[test]
    fn a_src_layout_package_needs_its_src_directory_on_pythonpath() {
        let context = tree(&["pyproject.toml", "src/myproj/definitions.py"]);
        let plan = plan_imports(context.path(), "/app/", &module("myproj.definitions")).unwrap();
        assert_eq!(
            plan,
            ImportPlan::PythonPath {
                entry: "/app/src".to_owned(),
                path: "/app/src/myproj".to_owned()
            }
        );
    }

    #[test]
    fn a_project_below_the_build_directory_is_searched_first_flat_or_src() {
        let context = tree(&[
            "projects/sales/src/sales/definitions.py",
            "projects/ops/ops.py",
            "src/sales/__init__.py",
        ]);
        let mut target = module("sales.definitions");
        target.source_roots = vec![context.path().join("projects/sales")];
        assert_eq!(
            plan_imports(context.path(), "/code", &target).unwrap(),
            ImportPlan::PythonPath {
                entry: "/code/projects/sales/src".to_owned(),
                path: "/code/projects/sales/src/sales".to_owned()
            }
        );
        let mut target = module("ops");
        target.source_roots = vec![context.path().join("projects/ops")];
        assert_eq!(
            plan_imports(context.path(), "/code", &target).unwrap(),
            ImportPlan::PythonPath {
                entry: "/code/projects/ops".to_owned(),
                path: "/code/projects/ops/ops.py".to_owned()
            }
        );
    }

    #[test]
    fn the_documents_working_directory_is_where_the_code_server_looks() {
        let context = tree(&["lib/pkg/__init__.py"]);
        let mut target = module("pkg");
        target.working_directory = Some("lib".to_owned());
        assert_eq!(
            plan_imports(context.path(), "/app", &target).unwrap(),
            ImportPlan::Direct {
                path: "/app/lib/pkg".to_owned()
            }
        );
        target.working_directory = Some("/app/lib/".to_owned());
        assert_eq!(
            plan_imports(context.path(), "/app", &target).unwrap(),
            ImportPlan::Direct {
                path: "/app/lib/pkg".to_owned()
            }
        );
    }

    #[test]
    fn a_package_left_out_by_dockerignore_or_absent_must_come_from_the_base() {
        let context = tree(&[".dockerignore", "src/pkg/__init__.py"]);
        std::fs::write(context.path().join(".dockerignore"), "src\n").unwrap();
        let plan = plan_imports(context.path(), "/app", &module("pkg.defs")).unwrap();
        assert_eq!(
            plan,
            ImportPlan::FromBase {
                name: "pkg".to_owned(),
                searched: vec!["/app".to_owned(), "/app/src".to_owned()]
            }
        );
    }

    #[test]
    fn python_files_are_resolved_against_the_code_directory() {
        let context = tree(&["jobs/repo.py"]);
        let target = |file: &str| LoadTarget {
            code: CodeTarget::PythonFile(file.to_owned()),
            working_directory: Some("jobs".to_owned()),
            source_roots: Vec::new(),
        };
        assert_eq!(
            plan_imports(context.path(), "/app", &target("jobs/repo.py")).unwrap(),
            ImportPlan::Direct {
                path: "/app/jobs/repo.py".to_owned()
            }
        );
        assert_eq!(
            plan_imports(context.path(), "/app", &target("/opt/other.py")).unwrap(),
            ImportPlan::FromBase {
                name: "/opt/other.py".to_owned(),
                searched: Vec::new()
            }
        );
        let error = plan_imports(context.path(), "/app", &target("repo.py")).unwrap_err();
        assert!(
            error.to_string().contains("python_file `repo.py`")
                && error
                    .to_string()
                    .contains(&context.path().display().to_string()),
            "{error}"
        );
    }

    #[test]
    fn image_paths_are_normalised_lexically() {
        assert_eq!(normalise_image_path("/app", "./a//b/../c"), "/app/a/c");
        assert_eq!(normalise_image_path("/app", "/x/./y/"), "/x/y");
        assert_eq!(normalise_image_path("/", "app"), "/app");
        assert_eq!(normalise_image_path("/app", "../.."), "/");
    }
}
