//! Configuring a project for CI: the `build.yaml` files that hold each project's registry, the
//! Dockerfiles of the docker builder, and a CI file (GitHub or GitLab) that installs a pinned
//! release of the tool and runs it. The texts come from `ci-context`'s scaffolds; this module
//! decides which files to write and what may be overwritten.
//!
//! Running it twice changes nothing. It never erases a setting it did not write: an existing
//! `build.yaml` only ever has its top-level `registry:` line set (replacing a different registry
//! needs `force` or a confirmation), and `force` rewrites a Dockerfile or CI file only if
//! configure generated it (it carries [`GENERATED_MARKER`]). Each file is a [`PlannedFile`]
//! whose [`PlannedFile::decide`] applies these rules; the caller asks where they say so.

use std::path::{Path, PathBuf};

use dagster_deploy_buildconfig::{DgContext, DgProject};
use dagster_deploy_ci_context::GitProvider;
use dagster_deploy_ci_context::scaffold::{
    self, GENERATED_MARKER, REGISTRY_PLACEHOLDER, ScaffoldBuilder, ScaffoldLocation,
    ScaffoldOptions,
};

use crate::error::{Error, Result};
use crate::progress::{Event, Progress};

/// A project being configured: its dg context and where it sits in the git checkout.
#[derive(Debug, Clone)]
pub struct ConfigureProject {
    project_dir: PathBuf,
    dg: DgContext,
    git_root: PathBuf,
    relative_project: String,
}

/// What the CI file is generated with, besides the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiFileSettings {
    /// GitHub or GitLab.
    pub provider: GitProvider,
    /// The Dagster+ organization.
    pub organization: String,
    /// Its URL.
    pub organization_url: String,
    /// The full (base) deployment.
    pub deployment: String,
    /// How the CI file builds images.
    pub builder: ScaffoldBuilder,
    /// The release of the tool the CI file installs.
    pub version: String,
    /// The GitHub repository of the releases and of the Action, `owner/name`.
    pub release_repository: String,
    /// GitLab only: the job image; `None` picks one for the builder.
    pub gitlab_image: Option<String>,
}

/// A file configure would write, and how it relates to what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Where.
    pub path: PathBuf,
    /// How it relates to the existing file.
    pub change: FileChange,
    /// The text it would hold.
    pub text: String,
}

/// How a planned file relates to the file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    /// There is no file (or it cannot be read): it is written.
    Create,
    /// The file holds the text already.
    Unchanged,
    /// The file is the user's, and configure only creates such files: it is kept.
    Keep,
    /// The file differs and configure generated it: `force` or a confirmation rewrites it.
    ReplaceGenerated,
    /// The file differs and configure did not generate it: only a confirmation rewrites it.
    ReplaceForeign,
    /// A `build.yaml` whose `registry:` line is set to `registry`; replacing a different
    /// `current` registry needs `force` or a confirmation.
    SetRegistry {
        /// The registry the file names now, if any.
        current: Option<String>,
        /// The registry written.
        registry: String,
    },
}

/// What to do with a planned file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Write it.
    Write,
    /// Leave the file as it is.
    Skip,
    /// Write it only if the user confirms.
    Confirm,
}

impl PlannedFile {
    /// What to do with the file, given `force`.
    pub fn decide(&self, force: bool) -> Decision {
        match &self.change {
            FileChange::Create => Decision::Write,
            FileChange::Unchanged | FileChange::Keep => Decision::Skip,
            FileChange::ReplaceGenerated if force => Decision::Write,
            FileChange::ReplaceGenerated | FileChange::ReplaceForeign => Decision::Confirm,
            FileChange::SetRegistry {
                current: Some(_), ..
            } if !force => Decision::Confirm,
            FileChange::SetRegistry { .. } => Decision::Write,
        }
    }

    /// Writes the file, creating its folder.
    pub fn write(&self) -> Result<()> {
        write_text(&self.path, &self.text)
    }
}

/// How far configure may go with a file that exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ownership {
    /// Written only if missing.
    CreateOnly,
    /// Rewritten with `force` (or a confirmation) if it carries [`GENERATED_MARKER`].
    Generated,
}

/// A file configure generates whole.
fn plan_generated(path: PathBuf, text: String, ownership: Ownership) -> PlannedFile {
    let change = match std::fs::read_to_string(&path) {
        Err(_) => FileChange::Create,
        Ok(existing) if existing == text => FileChange::Unchanged,
        Ok(_) if ownership == Ownership::CreateOnly => FileChange::Keep,
        Ok(existing) if existing.contains(GENERATED_MARKER) => FileChange::ReplaceGenerated,
        Ok(_) => FileChange::ReplaceForeign,
    };
    PlannedFile { path, change, text }
}

/// A `build.yaml` that holds the registry: created from `template`, or, when it exists, with
/// its `registry:` line set to `registry`, every other line kept.
fn plan_build_yaml(
    path: PathBuf,
    registry: Option<&str>,
    template: impl Fn(Option<&str>) -> String,
) -> PlannedFile {
    let Ok(existing) = std::fs::read_to_string(&path) else {
        return PlannedFile {
            path,
            change: FileChange::Create,
            text: template(registry),
        };
    };
    let current = scaffold::build_yaml_registry(&existing);
    match registry {
        Some(registry) if current.as_deref() != Some(registry) => PlannedFile {
            path,
            change: FileChange::SetRegistry {
                current,
                registry: registry.to_owned(),
            },
            text: scaffold::build_yaml_with_registry(&existing, registry),
        },
        _ => PlannedFile {
            path,
            change: FileChange::Unchanged,
            text: existing,
        },
    }
}

impl ConfigureProject {
    /// Finds the dg project or workspace at `project_dir` and the git checkout it is in (at
    /// `git_root`, or the nearest folder above holding `.git`). A `registry: '...'` placeholder
    /// (written by the reference's scaffolds, or by hand) is not a registry: with `registry` it
    /// is replaced (written at once, and reported); without, it is an error.
    pub fn discover(
        project_dir: &Path,
        git_root: Option<&Path>,
        registry: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<ConfigureProject> {
        let project_dir = std::path::absolute(project_dir).map_err(|error| Error::ResolvePath {
            what: "",
            path: project_dir.to_path_buf(),
            error,
        })?;
        let dg = discover_replacing_placeholders(&project_dir, registry, progress)?;
        let git_root = match git_root {
            Some(root) => std::fs::canonicalize(root).map_err(|error| Error::GitRoot {
                path: root.to_path_buf(),
                error,
            })?,
            None => dg
                .root()
                .ancestors()
                .find(|dir| dir.join(".git").exists())
                .map(Path::to_path_buf)
                .ok_or_else(|| Error::NoGitRoot {
                    dir: dg.root().to_path_buf(),
                })?,
        };
        let relative_project =
            dg.root()
                .strip_prefix(&git_root)
                .map_err(|_| Error::OutsideGitRoot {
                    project: dg.root().to_path_buf(),
                    root: git_root.clone(),
                })?;
        let relative_project = match relative_project.to_string_lossy().as_ref() {
            "" => ".".to_owned(),
            path => path.to_owned(),
        };
        Ok(ConfigureProject {
            project_dir,
            dg,
            git_root,
            relative_project,
        })
    }

    /// The dg context.
    pub fn dg(&self) -> &DgContext {
        &self.dg
    }

    /// The git checkout's root.
    pub fn git_root(&self) -> &Path {
        &self.git_root
    }

    /// The first registry a project configures, if any.
    pub fn configured_registry(&self) -> Option<String> {
        self.dg.projects().iter().find_map(|project| {
            project
                .registry()
                .map(|registry| registry.as_str().to_owned())
        })
    }

    /// The files that hold the registry (`build.yaml`: the workspace's, and each project's; a
    /// workspace member's own file may override the registry, so it is only ever created) and,
    /// for the docker builder, each project's Dockerfile.
    pub fn registry_files(
        &self,
        registry: Option<&str>,
        builder: &ScaffoldBuilder,
        python_version: &str,
    ) -> Result<Vec<PlannedFile>> {
        let dg = &self.dg;
        let mut files = Vec::new();
        if dg.is_workspace() {
            files.push(plan_build_yaml(
                dg.root().join("build.yaml"),
                registry,
                scaffold::workspace_build_yaml,
            ));
        }
        for project in dg.projects() {
            let path = project.root().join("build.yaml");
            files.push(if dg.is_workspace() {
                plan_generated(
                    path,
                    scaffold::project_build_yaml(None, true),
                    Ownership::CreateOnly,
                )
            } else {
                plan_build_yaml(path, registry, |registry| {
                    scaffold::project_build_yaml(registry, false)
                })
            });
            if *builder == ScaffoldBuilder::Docker {
                let text = scaffold::dockerfile(python_version, package_name(project)?)?;
                files.push(plan_generated(
                    project.dockerfile_path(),
                    text,
                    Ownership::Generated,
                ));
            }
        }
        Ok(files)
    }

    /// Reads the configuration again: the CI file is generated from it as written.
    pub fn rediscover(&mut self) -> Result<()> {
        self.dg = DgContext::discover(&self.project_dir)?;
        Ok(())
    }

    /// The CI file, and the options it was generated with (they list the secrets it reads:
    /// `scaffold::secrets`).
    pub fn ci_file(&self, settings: &CiFileSettings) -> Result<(ScaffoldOptions, PlannedFile)> {
        let options = ScaffoldOptions {
            organization: settings.organization.clone(),
            organization_url: settings.organization_url.clone(),
            deployment: settings.deployment.clone(),
            project_dir: self.relative_project.clone(),
            locations: self
                .dg
                .projects()
                .iter()
                .map(|project| scaffold_location(&self.dg, project, &self.git_root))
                .collect(),
            builder: settings.builder.clone(),
            version: settings.version.clone(),
            release_repository: settings.release_repository.clone(),
            gitlab_image: settings.gitlab_image.clone(),
        };
        let (path, text) = match settings.provider {
            GitProvider::GitHub => (
                self.git_root
                    .join(".github")
                    .join("workflows")
                    .join("dagster-plus-deploy.yml"),
                scaffold::github_workflow(&options)?,
            ),
            GitProvider::GitLab => (
                self.git_root.join(".gitlab-ci.yml"),
                scaffold::gitlab_ci(&options)?,
            ),
        };
        Ok((options, plan_generated(path, text, Ownership::Generated)))
    }
}

/// Discovers the dg context; each round replaces one file's placeholder registry with
/// `registry`, and a file just fixed never fails the same way again (a workspace has at most
/// one per project and one of its own).
fn discover_replacing_placeholders(
    project_dir: &Path,
    registry: Option<&str>,
    progress: &dyn Progress,
) -> Result<DgContext> {
    let mut fixed: Vec<PathBuf> = Vec::new();
    loop {
        let error = match DgContext::discover(project_dir) {
            Ok(dg) => return Ok(dg),
            Err(error) => error,
        };
        let placeholder = error
            .diagnostics()
            .iter()
            .filter(|problem| problem.field() == "registry")
            .filter(|problem| !fixed.iter().any(|path| path == problem.path()))
            .find_map(|problem| {
                std::fs::read_to_string(problem.path())
                    .ok()
                    .filter(|text| {
                        scaffold::build_yaml_registry(text).as_deref() == Some(REGISTRY_PLACEHOLDER)
                    })
                    .map(|text| (problem.path().to_path_buf(), text))
            });
        let Some((path, text)) = placeholder else {
            return Err(error.into());
        };
        let Some(registry) = registry else {
            return Err(Error::RegistryPlaceholder { path });
        };
        write_text(&path, &scaffold::build_yaml_with_registry(&text, registry))?;
        progress.event(&Event::PlaceholderReplaced {
            path: &path,
            registry,
        });
        fixed.push(path);
    }
}

/// A project as the CI files see it. Its name comes from the configuration: a workspace lists
/// its members' folders in dg.toml, and `code_location_name` is written in the project. Only a
/// project at the git root without `code_location_name` would be named after the checkout's
/// folder, which depends on where CI clones it: that one location is then built unnamed.
fn scaffold_location(dg: &DgContext, project: &DgProject, git_root: &Path) -> ScaffoldLocation {
    let name = project.name().as_str();
    let named_after_checkout = !dg.is_workspace()
        && project.root() == git_root
        && project
            .root()
            .file_name()
            .is_some_and(|folder| folder == name);
    ScaffoldLocation {
        name: (!named_after_checkout).then(|| name.to_owned()),
        registry: project
            .registry()
            .map(|registry| registry.as_str().to_owned()),
    }
}

fn package_name(project: &DgProject) -> Result<&str> {
    project.package_name().ok_or_else(|| Error::NoPackageName {
        pyproject: project.root().join("pyproject.toml"),
    })
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|error| Error::CreateDirectory {
            path: parent.to_path_buf(),
            error,
        })?;
    }
    std::fs::write(path, text).map_err(|error| Error::Write {
        path: path.to_path_buf(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(change: FileChange) -> PlannedFile {
        PlannedFile {
            path: PathBuf::from("/x"),
            change,
            text: String::new(),
        }
    }

    #[test]
    fn force_rewrites_only_generated_files_and_registries() {
        let registry = |current: Option<&str>| FileChange::SetRegistry {
            current: current.map(str::to_owned),
            registry: "ghcr.io/a/b".to_owned(),
        };
        for (change, without_force, with_force) in [
            (FileChange::Create, Decision::Write, Decision::Write),
            (FileChange::Unchanged, Decision::Skip, Decision::Skip),
            (FileChange::Keep, Decision::Skip, Decision::Skip),
            (
                FileChange::ReplaceGenerated,
                Decision::Confirm,
                Decision::Write,
            ),
            (
                FileChange::ReplaceForeign,
                Decision::Confirm,
                Decision::Confirm,
            ),
            (registry(None), Decision::Write, Decision::Write),
            (
                registry(Some("ghcr.io/old/b")),
                Decision::Confirm,
                Decision::Write,
            ),
        ] {
            let file = planned(change.clone());
            assert_eq!(file.decide(false), without_force, "{change:?}");
            assert_eq!(file.decide(true), with_force, "{change:?}");
        }
    }

    #[test]
    fn existing_files_are_planned_by_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Dockerfile");
        let plan = |ownership| plan_generated(path.clone(), "new\n".to_owned(), ownership);
        assert_eq!(plan(Ownership::Generated).change, FileChange::Create);
        std::fs::write(&path, "new\n").unwrap();
        assert_eq!(plan(Ownership::Generated).change, FileChange::Unchanged);
        std::fs::write(&path, format!("# {GENERATED_MARKER}\nold\n")).unwrap();
        assert_eq!(
            plan(Ownership::Generated).change,
            FileChange::ReplaceGenerated
        );
        assert_eq!(plan(Ownership::CreateOnly).change, FileChange::Keep);
        std::fs::write(&path, "mine\n").unwrap();
        assert_eq!(
            plan(Ownership::Generated).change,
            FileChange::ReplaceForeign
        );
    }

    #[test]
    fn a_build_yaml_keeps_every_line_but_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("build.yaml");
        let template = |registry: Option<&str>| format!("registry: {}\n", registry.unwrap_or("x"));
        let created = plan_build_yaml(path.clone(), Some("ghcr.io/a/b"), template);
        assert_eq!(created.change, FileChange::Create);
        assert_eq!(created.text, "registry: ghcr.io/a/b\n");
        std::fs::write(&path, "directory: src\nregistry: ghcr.io/old/b\n").unwrap();
        let set = plan_build_yaml(path.clone(), Some("ghcr.io/a/b"), template);
        assert_eq!(
            set.change,
            FileChange::SetRegistry {
                current: Some("ghcr.io/old/b".to_owned()),
                registry: "ghcr.io/a/b".to_owned()
            }
        );
        assert!(set.text.contains("directory: src"), "{}", set.text);
        assert!(set.text.contains("ghcr.io/a/b"), "{}", set.text);
        assert_eq!(
            plan_build_yaml(path.clone(), None, template).change,
            FileChange::Unchanged
        );
        assert_eq!(
            plan_build_yaml(path, Some("ghcr.io/old/b"), template).change,
            FileChange::Unchanged
        );
    }
}
