//! `configure --git-provider github|gitlab`: scaffold `build.yaml` files, Dockerfiles (docker
//! builder) and a CI workflow that runs this tool. Existing files are never overwritten without
//! `--force` or a confirmation.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use dagster_deploy_buildconfig::DgContext;
use dagster_deploy_ci_context::scaffold::{self, ScaffoldBuilder, ScaffoldOptions};

use super::Context;
use crate::args::{Builder, ConfigureArgs, GitProvider};
use crate::failure::{CommandResult, Failure};
use crate::settings::CloudSettings;

pub(crate) fn run(context: &Context<'_>, args: &ConfigureArgs) -> CommandResult {
    let output = context.output;
    let project_dir = std::path::absolute(&args.project_dir).map_err(|error| {
        Failure::config(format!(
            "cannot resolve {}: {error}",
            args.project_dir.display()
        ))
    })?;
    let dg = DgContext::discover(&project_dir)?;
    let git_root = match &args.git_root {
        Some(root) => root.clone(),
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
    let registry = args.registry_url.clone().or_else(|| {
        dg.projects().iter().find_map(|project| {
            project
                .registry()
                .map(|registry| registry.as_str().to_owned())
        })
    });
    if registry.is_none() {
        output.warn("no registry given or configured: build.yaml gets a placeholder; pass --registry-url to fill it in");
    }

    let mut files: Vec<(PathBuf, String)> = Vec::new();
    if dg.is_workspace() {
        files.push((
            dg.root().join("build.yaml"),
            scaffold::workspace_build_yaml(registry.as_deref().unwrap_or("...")),
        ));
    }
    for project in dg.projects() {
        files.push((
            project.root().join("build.yaml"),
            scaffold::project_build_yaml(registry.as_deref(), dg.is_workspace()),
        ));
        if args.builder == Builder::Docker {
            let package = project.package_name().ok_or_else(|| {
                Failure::config(format!(
                    "{} has no [project].name",
                    project.root().join("pyproject.toml").display()
                ))
                .with_hint(
                    "add `[project] name = \"...\"` so the Dockerfile can install the package",
                )
            })?;
            let text = scaffold::dockerfile(&args.python_version, package)?;
            files.push((project.dockerfile_path(), text));
        }
    }
    let options = ScaffoldOptions {
        organization,
        region: args.region.clone(),
        deployment,
        project_dir: relative_project,
        locations: dg
            .projects()
            .iter()
            .map(|project| project.name().as_str().to_owned())
            .collect(),
        builder: match args.builder {
            Builder::Native => ScaffoldBuilder::Native {
                base_image: args.base_image.clone(),
            },
            Builder::Docker => ScaffoldBuilder::Docker,
        },
        registry_host: registry.as_deref().and_then(registry_host),
        install_command: args.install_command.clone(),
        gitlab_image: args.gitlab_image.clone(),
    };
    match args.git_provider {
        GitProvider::Github => files.push((
            git_root
                .join(".github")
                .join("workflows")
                .join("dagster-plus-deploy.yml"),
            scaffold::github_workflow(&options)?,
        )),
        GitProvider::Gitlab => files.push((
            git_root.join(".gitlab-ci.yml"),
            scaffold::gitlab_ci(&options)?,
        )),
    }

    for (path, text) in &files {
        write_file(context, args, path, text)?;
    }
    let secret_hint = match args.git_provider {
        GitProvider::Github => {
            "dagster-deploy ci-api-token create --description 'GitHub Actions' | gh secret set DAGSTER_CLOUD_API_TOKEN"
        }
        GitProvider::Gitlab => {
            "set DAGSTER_CLOUD_API_TOKEN as a masked CI/CD variable (dagster-deploy ci-api-token create makes one)"
        }
    };
    output.info(format!("Next: {secret_hint}"));
    Ok(())
}

/// The registry host of a repository reference, when it names one (`ghcr.io/acme/app`).
fn registry_host(repository: &str) -> Option<String> {
    let (first, _) = repository.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then(|| first.to_owned())
}

fn write_file(
    context: &Context<'_>,
    args: &ConfigureArgs,
    path: &Path,
    text: &str,
) -> CommandResult {
    let output = context.output;
    if let Ok(existing) = std::fs::read_to_string(path) {
        if existing == text {
            output.info(format!("Unchanged {}", path.display()));
            return Ok(());
        }
        if !args.force && !confirm_overwrite(context, args, path)? {
            output.warn(format!(
                "kept {} as it is (pass --force to overwrite it)",
                path.display()
            ));
            return Ok(());
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| Failure::io(format!("cannot create {}: {error}", parent.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|error| Failure::io(format!("cannot write {}: {error}", path.display())))?;
    output.info(format!("Wrote {}", path.display()));
    Ok(())
}

fn confirm_overwrite(
    context: &Context<'_>,
    args: &ConfigureArgs,
    path: &Path,
) -> Result<bool, Failure> {
    if args.yes || !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    context
        .output
        .info(format!("{} exists. Overwrite it? [y/N]", path.display()));
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| Failure::usage(format!("cannot read the answer: {error}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::registry_host;

    #[test]
    fn registry_host_is_the_first_component_only_when_it_names_a_host() {
        assert_eq!(
            registry_host("ghcr.io/acme/app").as_deref(),
            Some("ghcr.io")
        );
        assert_eq!(
            registry_host("127.0.0.1:5000/app").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(registry_host("acme/app"), None);
        assert_eq!(registry_host("app"), None);
    }
}
