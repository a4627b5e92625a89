//! `configure --git-provider github|gitlab`: scaffold `build.yaml` files, Dockerfiles (docker
//! builder) and a CI workflow that installs a pinned release of this tool and runs it.
//!
//! Running it twice changes nothing. It never erases a setting it did not write: an existing
//! `build.yaml` only ever has its top-level `registry:` line set (from `--registry-url`, and
//! replacing a different registry needs `--force` or a confirmation), and `--force` rewrites a
//! Dockerfile or CI file only if `configure` generated it.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use dagster_deploy_buildconfig::{DgContext, DgProject};
use dagster_deploy_ci_context::GitProvider as CiGitProvider;
use dagster_deploy_ci_context::scaffold::{
    self, GENERATED_MARKER, REGISTRY_PLACEHOLDER, ScaffoldBuilder, ScaffoldLocation,
    ScaffoldOptions,
};

use super::Context;
use crate::args::{Builder, ConfigureArgs, GitProvider};
use crate::failure::{CommandResult, Failure};
use crate::settings::CloudSettings;

/// The GitHub repository of the releases and of the Action, from the workspace manifest.
const RELEASE_REPOSITORY_URL: &str = env!("CARGO_PKG_REPOSITORY");

pub(crate) fn run(context: &Context<'_>, args: &ConfigureArgs) -> CommandResult {
    let output = context.output;
    let project_dir = std::path::absolute(&args.project_dir).map_err(|error| {
        Failure::config(format!(
            "cannot resolve {}: {error}",
            args.project_dir.display()
        ))
    })?;
    let dg = discover(context, &project_dir, args.registry_url.as_deref())?;
    let git_root = match &args.git_root {
        Some(root) => std::fs::canonicalize(root)
            .map_err(|error| Failure::usage(format!("--git-root {}: {error}", root.display())))?,
        None => dg
            .root()
            .ancestors()
            .find(|dir| dir.join(".git").exists())
            .map(Path::to_path_buf)
            .ok_or_else(|| {
                Failure::config(format!(
                    "no git repository found above {}",
                    dg.root().display()
                ))
                .with_hint("run inside a git checkout (git init), or pass --git-root DIR")
            })?,
    };
    let relative_project = dg.root().strip_prefix(&git_root).map_err(|_| {
        Failure::usage(format!(
            "{} is not inside the git root {}",
            dg.root().display(),
            git_root.display()
        ))
    })?;
    let relative_project = match relative_project.to_string_lossy().as_ref() {
        "" => ".".to_owned(),
        path => path.to_owned(),
    };

    // The same resolution `check -v` shows: flags, env vars, then the dg login config.
    let settings = CloudSettings::new(&args.cloud, context.matches, output);
    let organization = settings
        .organization()?
        .map(|resolved| resolved.value)
        .ok_or_else(|| {
            Failure::usage("no organization given")
                .with_hint("pass --organization NAME or set DAGSTER_CLOUD_ORGANIZATION")
        })?;
    let deployment = settings
        .deployment()?
        .map_or_else(|| "prod".to_owned(), |resolved| resolved.value);
    let organization_url = settings.org_url_in_region(args.region.as_deref())?;

    let configured_registry = dg.projects().iter().find_map(|project| {
        project
            .registry()
            .map(|registry| registry.as_str().to_owned())
    });
    if args.registry_url.is_none() && configured_registry.is_none() {
        output.warn("no registry given or configured: build.yaml gets a commented registry line; pass --registry-url to fill it in");
    }

    // The registry files first: the CI file is generated from the configuration as written.
    let registry_file = if dg.is_workspace() {
        Some(dg.root().join("build.yaml"))
    } else {
        None
    };
    if let Some(path) = &registry_file {
        write_build_yaml(context, args, path, scaffold::workspace_build_yaml)?;
    }
    for project in dg.projects() {
        let path = project.root().join("build.yaml");
        if dg.is_workspace() {
            // A member's own build.yaml may override the registry: it is never touched.
            let text = scaffold::project_build_yaml(None, true);
            write_generated(context, args, &path, &text, Ownership::CreateOnly)?;
        } else {
            write_build_yaml(context, args, &path, |registry| {
                scaffold::project_build_yaml(registry, false)
            })?;
        }
        if args.builder == Builder::Docker {
            let text = scaffold::dockerfile(&args.python_version, package_name(project)?)?;
            write_generated(
                context,
                args,
                &project.dockerfile_path(),
                &text,
                Ownership::Generated,
            )?;
        }
    }
    let dg = DgContext::discover(&project_dir)?;

    let builder = match args.builder {
        Builder::Native => native_builder(context, args, &dg)?,
        Builder::Docker => ScaffoldBuilder::Docker,
    };
    let options = ScaffoldOptions {
        organization,
        organization_url: organization_url.as_str().to_owned(),
        deployment,
        project_dir: relative_project,
        locations: dg
            .projects()
            .iter()
            .map(|project| scaffold_location(&dg, project, &git_root))
            .collect(),
        builder,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        release_repository: release_repository()?,
        gitlab_image: args.gitlab_image.clone(),
    };
    let (provider, path, text) = match args.git_provider {
        GitProvider::Github => (
            CiGitProvider::GitHub,
            git_root
                .join(".github")
                .join("workflows")
                .join("dagster-plus-deploy.yml"),
            scaffold::github_workflow(&options)?,
        ),
        GitProvider::Gitlab => (
            CiGitProvider::GitLab,
            git_root.join(".gitlab-ci.yml"),
            scaffold::gitlab_ci(&options)?,
        ),
    };
    write_generated(context, args, &path, &text, Ownership::Generated)?;
    next_steps(context, &options, provider);
    Ok(())
}

/// The python image used when nothing says which Python the project wants.
const DEFAULT_BASE_IMAGE: &str = "python:3.12-slim";

/// The native builder's base image: `--base-image`, else, when every project has a `uv.lock`,
/// a plain Python image of the version the project asks for (its dependencies become a layer
/// of their own), else the default, which must then hold the dependencies. Says which.
fn native_builder(
    context: &Context<'_>,
    args: &ConfigureArgs,
    dg: &DgContext,
) -> Result<ScaffoldBuilder, Failure> {
    let output = context.output;
    let mut locked = Vec::new();
    let mut unlocked = Vec::new();
    for project in dg.projects() {
        match dagster_deploy_pydeps::find_lock(project.root()) {
            Ok(Some(lock)) => locked.push(lock),
            Ok(None) => unlocked.push(project.root().display().to_string()),
            Err(error) => {
                let failure = Failure::config(error.to_string());
                return Err(match error.help() {
                    Some(help) => failure.with_hint(help),
                    None => failure,
                });
            }
        }
    }
    let deps_layer = unlocked.is_empty() && !locked.is_empty();
    let base_image = match (&args.base_image, deps_layer) {
        (Some(base_image), _) => base_image.clone(),
        (None, true) => {
            // Projects of one workspace may ask for different versions: the oldest serves all.
            let requested = locked
                .iter()
                .filter_map(dagster_deploy_pydeps::requested_python)
                .min_by_key(|requested| (requested.major, requested.minor));
            match requested {
                Some(requested) => {
                    output.info(format!(
                        "Base image python:{}.{}-slim: the Python {}.{} that {} asks for",
                        requested.major,
                        requested.minor,
                        requested.major,
                        requested.minor,
                        requested.source.display()
                    ));
                    format!("python:{}.{}-slim", requested.major, requested.minor)
                }
                None => DEFAULT_BASE_IMAGE.to_owned(),
            }
        }
        (None, false) => DEFAULT_BASE_IMAGE.to_owned(),
    };
    if deps_layer {
        output.info(format!(
            "Dependencies: the packages uv.lock pins become a layer of their own on {base_image}, installed by uv in CI"
        ));
    } else {
        output.warn(format!(
            "no uv.lock in {}: the base image {base_image} must hold Python and every dependency (dagster, dagster-cloud, ...);              build such an image and pass --base-image REF, or run `uv lock` and configure again with --force",
            unlocked.join(", ")
        ));
    }
    Ok(ScaffoldBuilder::Native {
        base_image,
        deps_layer,
    })
}

/// Discovers the dg context. A `registry: '...'` placeholder (written by the reference's
/// scaffolds, or by hand) is not a registry, so discovery rejects it: with `--registry-url` it
/// is replaced and discovery runs again; without, the error says how to fill it in.
fn discover(
    context: &Context<'_>,
    project_dir: &Path,
    registry_url: Option<&str>,
) -> Result<DgContext, Failure> {
    // Each round replaces one file's placeholder; a workspace has at most one per project and
    // one of its own, and a file just fixed never fails the same way again.
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
        let Some(registry) = registry_url else {
            return Err(Failure::config(format!(
                "{}: the registry is still the placeholder '{REGISTRY_PLACEHOLDER}'",
                path.display()
            ))
            .with_hint(
                "pass --registry-url REPOSITORY to fill it in, or write your repository there",
            ));
        };
        write_text(&path, &scaffold::build_yaml_with_registry(&text, registry))?;
        context.output.info(format!(
            "Replaced the placeholder registry in {} with {registry}",
            path.display()
        ));
        fixed.push(path);
    }
}

/// `owner/name` of the release repository named in the workspace manifest.
fn release_repository() -> Result<String, Failure> {
    RELEASE_REPOSITORY_URL
        .strip_prefix("https://github.com/")
        .map(|repository| repository.trim_end_matches('/').to_owned())
        .ok_or_else(|| {
            Failure::internal(format!(
                "this build names its release repository {RELEASE_REPOSITORY_URL:?}, which is not on GitHub"
            ))
        })
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

fn package_name(project: &DgProject) -> Result<&str, Failure> {
    project.package_name().ok_or_else(|| {
        Failure::config(format!(
            "{} has no [project].name",
            project.root().join("pyproject.toml").display()
        ))
        .with_hint("add `[project] name = \"...\"` so the Dockerfile can install the package")
    })
}

/// Prints every secret the CI file reads, and how to set the API token.
fn next_steps(context: &Context<'_>, options: &ScaffoldOptions, provider: CiGitProvider) {
    let output = context.output;
    let (place, token_command) = match provider {
        CiGitProvider::GitHub => (
            "repository secrets (Settings > Secrets and variables > Actions)",
            "dagster-deploy ci-api-token create --description 'GitHub Actions' | gh secret set DAGSTER_CLOUD_API_TOKEN",
        ),
        CiGitProvider::GitLab => (
            "masked CI/CD variables (Settings > CI/CD > Variables)",
            "dagster-deploy ci-api-token create --description 'GitLab CI' | glab variable set DAGSTER_CLOUD_API_TOKEN --masked",
        ),
    };
    let secrets = scaffold::secrets(options, provider);
    output.info(format!("Next: set these {place}:"));
    for secret in secrets.iter().filter(|secret| !secret.provided) {
        output.info(format!("  {}: {}", secret.names.join(", "), secret.purpose));
    }
    for secret in secrets.iter().filter(|secret| secret.provided) {
        output.info(format!(
            "  {} ({}) are set by the CI system: nothing to do",
            secret.names.join(", "),
            secret.purpose
        ));
    }
    output.info(format!("  For the API token: {token_command}"));
    if provider == CiGitProvider::GitLab
        && matches!(options.builder, ScaffoldBuilder::Native { .. })
    {
        output.info("  The native builder also reads DOCKER_AUTH_CONFIG (a Docker config.json) for registries without a login above, such as a private base image.");
    }
}

/// How far `configure` may go with a file that exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ownership {
    /// Written only if missing.
    CreateOnly,
    /// Rewritten with `--force` (or a confirmation) if it carries [`GENERATED_MARKER`].
    Generated,
}

/// Writes a file `configure` generates, respecting what exists: identical files are left alone,
/// generated ones are rewritten only with `--force` or a confirmation, and files someone else
/// wrote only after an explicit confirmation at a terminal.
fn write_generated(
    context: &Context<'_>,
    args: &ConfigureArgs,
    path: &Path,
    text: &str,
    ownership: Ownership,
) -> CommandResult {
    let output = context.output;
    let Ok(existing) = std::fs::read_to_string(path) else {
        write_text(path, text)?;
        output.info(format!("Wrote {}", path.display()));
        return Ok(());
    };
    if existing == text {
        output.info(format!("Unchanged {}", path.display()));
        return Ok(());
    }
    if ownership == Ownership::CreateOnly {
        output.info(format!("Kept {} (it is yours)", path.display()));
        return Ok(());
    }
    let generated = existing.contains(GENERATED_MARKER);
    let rewrite = if generated && args.force {
        true
    } else {
        confirm(
            context,
            args,
            &format!("{} exists. Overwrite it?", path.display()),
        )?
    };
    if !rewrite {
        let how = if generated {
            "pass --force to rewrite it"
        } else {
            "configure did not write it, so --force leaves it alone: move it away to have it generated"
        };
        output.warn(format!("kept {} as it is ({how})", path.display()));
        return Ok(());
    }
    write_text(path, text)?;
    output.info(format!("Rewrote {}", path.display()));
    Ok(())
}

/// Creates a `build.yaml` that holds the registry, or sets the `registry:` line of an existing
/// one to `--registry-url`, keeping every other line.
fn write_build_yaml(
    context: &Context<'_>,
    args: &ConfigureArgs,
    path: &Path,
    template: impl Fn(Option<&str>) -> String,
) -> CommandResult {
    let output = context.output;
    let registry = args.registry_url.as_deref();
    let Ok(existing) = std::fs::read_to_string(path) else {
        write_text(path, &template(registry))?;
        output.info(format!("Wrote {}", path.display()));
        return Ok(());
    };
    let Some(registry) = registry else {
        output.info(format!("Unchanged {}", path.display()));
        return Ok(());
    };
    let current = scaffold::build_yaml_registry(&existing);
    if current.as_deref() == Some(registry) {
        output.info(format!("Unchanged {}", path.display()));
        return Ok(());
    }
    if let Some(current) = &current
        && !args.force
        && !confirm(
            context,
            args,
            &format!(
                "{} pushes to {current}. Change it to {registry}?",
                path.display()
            ),
        )?
    {
        output.warn(format!(
            "kept registry {current} in {} (pass --force to change it to {registry})",
            path.display()
        ));
        return Ok(());
    }
    write_text(
        path,
        &scaffold::build_yaml_with_registry(&existing, registry),
    )?;
    output.info(format!(
        "Set the registry in {} to {registry}",
        path.display()
    ));
    Ok(())
}

fn write_text(path: &Path, text: &str) -> CommandResult {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| Failure::io(format!("cannot create {}: {error}", parent.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|error| Failure::io(format!("cannot write {}: {error}", path.display())))
}

/// Asks a yes/no question at a terminal; `--yes` or no terminal means no.
fn confirm(context: &Context<'_>, args: &ConfigureArgs, question: &str) -> Result<bool, Failure> {
    if args.yes || !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    context.output.info(format!("{question} [y/N]"));
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| Failure::usage(format!("cannot read the answer: {error}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
