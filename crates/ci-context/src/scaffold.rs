//! CI configuration files written by `configure --git-provider github|gitlab`, as strings.
//!
//! Fixes reference-behaviour ref-bugs 19–21: every step id is unique, every location gets its own
//! image tag, only flags `dagster-deploy` defines are used, and `DAGSTER_CLOUD_URL` is the
//! organization URL `https://<org>[.<region>].dagster.cloud`. Writing the files is the caller's
//! business.
//!
//! Values from the user are validated (no control characters) and quoted for YAML (single
//! quotes) and for the shell (inside `run:`/`script:` lines), so odd names cannot inject YAML
//! or shell syntax.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::error::{Error, Result};

/// How images are built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaffoldBuilder {
    /// `--builder native --base-image <image>`: layers are assembled without Docker.
    Native {
        /// The base image, e.g. `python:3.12-slim`.
        base_image: String,
    },
    /// `--builder docker`: `docker build` with the project's Dockerfile.
    Docker,
}

/// Everything the CI files depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaffoldOptions {
    /// The Dagster+ organization (lowercase letters, digits, `-`).
    pub organization: String,
    /// Optional region, e.g. `eu` → `https://<org>.eu.dagster.cloud`.
    pub region: Option<String>,
    /// The full (base) deployment, e.g. `prod`.
    pub deployment: String,
    /// The dg project or workspace directory, relative to the git root (`.` for the root).
    pub project_dir: String,
    /// Code location names; each gets its own build step and image tag.
    pub locations: Vec<String>,
    /// The image builder.
    pub builder: ScaffoldBuilder,
    /// The registry host to log in to (e.g. `ghcr.io`), if any.
    pub registry_host: Option<String>,
    /// Shell command that installs `dagster-deploy` on the CI machine.
    pub install_command: String,
    /// GitLab only: the job image (it needs `git` and a POSIX shell).
    pub gitlab_image: String,
}

/// The organization URL the workflows use as `DAGSTER_CLOUD_URL`.
pub fn organization_url(organization: &str, region: Option<&str>) -> String {
    match region {
        Some(region) => format!("https://{organization}.{region}.dagster.cloud"),
        None => format!("https://{organization}.dagster.cloud"),
    }
}

fn invalid(field: &'static str, value: &str, expected: &'static str) -> Error {
    Error::InvalidScaffoldValue {
        field,
        value: value.to_owned(),
        expected,
    }
}

impl ScaffoldOptions {
    fn validate(&self) -> Result<()> {
        let dns_label = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !dns_label(&self.organization) {
            return Err(invalid(
                "organization",
                &self.organization,
                "lowercase letters, digits and '-'",
            ));
        }
        if let Some(region) = &self.region
            && !dns_label(region)
        {
            return Err(invalid(
                "region",
                region,
                "lowercase letters, digits and '-', e.g. eu",
            ));
        }
        let plain = |s: &str| !s.trim().is_empty() && !s.chars().any(char::is_control);
        let checks: [(&'static str, &str); 4] = [
            ("deployment", &self.deployment),
            ("project_dir", &self.project_dir),
            ("install_command", &self.install_command),
            ("gitlab_image", &self.gitlab_image),
        ];
        for (field, value) in checks {
            if !plain(value) {
                return Err(invalid(field, value, "a non-empty single line"));
            }
        }
        if self.locations.is_empty() {
            return Err(invalid("locations", "", "at least one code location name"));
        }
        for location in &self.locations {
            if !plain(location) {
                return Err(invalid(
                    "locations",
                    location,
                    "non-empty single-line location names",
                ));
            }
        }
        if let ScaffoldBuilder::Native { base_image } = &self.builder
            && (!plain(base_image) || base_image.contains(char::is_whitespace))
        {
            return Err(invalid(
                "base_image",
                base_image,
                "an image reference such as python:3.12-slim",
            ));
        }
        if let Some(host) = &self.registry_host
            && (!plain(host) || host.contains(char::is_whitespace) || host.contains('/'))
        {
            return Err(invalid(
                "registry_host",
                host,
                "a registry host such as ghcr.io",
            ));
        }
        Ok(())
    }

    /// One `(location, slug)` per location; slugs are unique and valid as step ids and tag parts.
    fn location_slugs(&self) -> Vec<(String, String)> {
        let mut seen = HashSet::new();
        self.locations
            .iter()
            .map(|location| {
                let base: String = location
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect();
                let base = base.trim_matches('-').to_owned();
                let base = if base.is_empty() {
                    "location".to_owned()
                } else {
                    base
                };
                let mut slug = base.clone();
                let mut n = 2;
                while !seen.insert(slug.clone()) {
                    slug = format!("{base}-{n}");
                    n += 1;
                }
                (location.clone(), slug)
            })
            .collect()
    }

    fn build_args(&self, location: &str, tag: &str) -> String {
        let builder = match &self.builder {
            ScaffoldBuilder::Native { base_image } => {
                format!("--builder native --base-image {}", shell_quote(base_image))
            }
            ScaffoldBuilder::Docker => "--builder docker".to_owned(),
        };
        format!(
            "--location-name {} {builder} --image-tag {tag}",
            shell_quote(location)
        )
    }
}

/// Single-quotes `value` for YAML.
fn yaml_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Quotes `value` for a POSIX shell unless it only has obviously safe characters.
fn shell_quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:@=+-,".contains(&b))
    {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// `.github/workflows/dagster-plus-deploy.yml`: deploys pushes to main/master and PRs (branch
/// deployments), and closes the branch deployment when a PR is closed.
pub fn github_workflow(options: &ScaffoldOptions) -> Result<String> {
    options.validate()?;
    let mut out = String::new();
    let url = organization_url(&options.organization, options.region.as_deref());
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        r#"# Deploys to Dagster+ on pushes to main/master and to a branch deployment for every pull request.
# Generated by `dagster-deploy configure --git-provider github`.
# Set the repository secret DAGSTER_CLOUD_API_TOKEN before the first run.
name: Dagster+ deploy

on:
  push:
    branches: [main, master]
  pull_request:
    types: [opened, synchronize, reopened, closed]

concurrency:
  group: ${{{{ github.workflow }}}}-${{{{ github.ref }}}}-${{{{ github.event_name }}}}
  cancel-in-progress: true

env:
  DAGSTER_CLOUD_ORGANIZATION: {org}
  DAGSTER_CLOUD_URL: {url}
  DAGSTER_CLOUD_DEPLOYMENT: {deployment}
  DAGSTER_CLOUD_API_TOKEN: ${{{{ secrets.DAGSTER_CLOUD_API_TOKEN }}}}
  DAGSTER_PROJECT_DIR: {project_dir}
  DAGSTER_BUILD_STATEDIR: /tmp/dagster-deploy-state-${{{{ github.run_id }}}}

jobs:
  close-branch-deployment:
    if: github.event_name == 'pull_request' && github.event.action == 'closed'
    runs-on: ubuntu-latest
    steps:
      - id: checkout
        uses: actions/checkout@v4
        with:
          ref: ${{{{ github.event.pull_request.head.sha }}}}
      - id: install-dagster-deploy
        run: {install}
      - id: close-branch-deployment
        working-directory: ${{{{ env.DAGSTER_PROJECT_DIR }}}}
        run: dagster-deploy branch-deployment --mark-closed

  deploy:
    if: github.event_name != 'pull_request' || github.event.action != 'closed'
    runs-on: ubuntu-latest
    env:
      IMAGE_TAG: ${{{{ github.sha }}}}-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}
    steps:
      - id: checkout
        uses: actions/checkout@v4
        with:
          ref: ${{{{ github.head_ref }}}}
      - id: install-dagster-deploy
        run: {install}
"#,
        org = yaml_quote(&options.organization),
        url = yaml_quote(&url),
        deployment = yaml_quote(&options.deployment),
        project_dir = yaml_quote(&options.project_dir),
        install = yaml_quote(&options.install_command),
    );
    if let Some(host) = &options.registry_host {
        let _ = write!(
            out,
            r#"      - id: registry-login
        uses: docker/login-action@v3
        with:
          registry: {host}
          username: ${{{{ secrets.REGISTRY_USERNAME }}}}
          password: ${{{{ secrets.REGISTRY_PASSWORD }}}}
"#,
            host = yaml_quote(host),
        );
    }
    let _ = write!(
        out,
        r#"      - id: start
        working-directory: ${{{{ env.DAGSTER_PROJECT_DIR }}}}
        run: dagster-deploy start --deployment "$DAGSTER_CLOUD_DEPLOYMENT" --yes
"#
    );
    for (location, slug) in options.location_slugs() {
        let args = options.build_args(&location, &format!("\"$IMAGE_TAG-{slug}\""));
        let _ = write!(
            out,
            r#"      - id: build-and-push-{slug}
        working-directory: ${{{{ env.DAGSTER_PROJECT_DIR }}}}
        run: |
          dagster-deploy build-and-push {args}
"#
        );
    }
    let _ = write!(
        out,
        r#"      - id: deploy
        working-directory: ${{{{ env.DAGSTER_PROJECT_DIR }}}}
        run: dagster-deploy deploy
      - id: status
        if: always()
        working-directory: ${{{{ env.DAGSTER_PROJECT_DIR }}}}
        run: dagster-deploy status --output-format markdown >> "$GITHUB_STEP_SUMMARY"
"#
    );
    Ok(out)
}

/// `.gitlab-ci.yml`: deploys the default branch and merge requests (branch deployments); the
/// MR's environment is stopped on merge/close, which closes the branch deployment.
pub fn gitlab_ci(options: &ScaffoldOptions) -> Result<String> {
    options.validate()?;
    let url = organization_url(&options.organization, options.region.as_deref());
    let mut out = String::new();
    let docker = options.builder == ScaffoldBuilder::Docker;
    let _ = write!(
        out,
        r#"# Deploys to Dagster+ on the default branch and to a branch deployment for every merge request.
# Generated by `dagster-deploy configure --git-provider gitlab`.
# Set DAGSTER_CLOUD_API_TOKEN as a masked CI/CD variable before the first run.
variables:
  DAGSTER_CLOUD_ORGANIZATION: {org}
  DAGSTER_CLOUD_URL: {url}
  DAGSTER_CLOUD_DEPLOYMENT: {deployment}
  DAGSTER_PROJECT_DIR: {project_dir}
  DAGSTER_BUILD_STATEDIR: /tmp/dagster-deploy-state-$CI_PIPELINE_ID
"#,
        org = yaml_quote(&options.organization),
        url = yaml_quote(&url),
        deployment = yaml_quote(&options.deployment),
        project_dir = yaml_quote(&options.project_dir),
    );
    if docker {
        out.push_str("  DOCKER_HOST: tcp://docker:2375\n  DOCKER_TLS_CERTDIR: ''\n");
    }
    let _ = write!(
        out,
        r#"
stages:
  - deploy

workflow:
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH

.dagster-deploy:
  stage: deploy
  image: {image}
"#,
        image = yaml_quote(&options.gitlab_image),
    );
    if docker {
        out.push_str("  services:\n    - docker:27-dind\n");
    }
    let _ = write!(
        out,
        "  before_script:\n    - {}\n",
        yaml_quote(&options.install_command)
    );
    if let Some(host) = &options.registry_host {
        let login = format!(
            "echo \"$REGISTRY_PASSWORD\" | docker login --username \"$REGISTRY_USERNAME\" --password-stdin {}",
            shell_quote(host)
        );
        if docker {
            let _ = writeln!(out, "    - {}", yaml_quote(&login));
        } else {
            // The native builder reads Docker's credential file; no Docker daemon is needed.
            out.push_str("    - 'mkdir -p ~/.docker && printf ''%s'' \"$DOCKER_AUTH_CONFIG\" > ~/.docker/config.json'\n");
        }
    }
    out.push_str(
        "  script:\n    - cd \"$DAGSTER_PROJECT_DIR\"\n    - dagster-deploy start --deployment \"$DAGSTER_CLOUD_DEPLOYMENT\" --yes\n",
    );
    for (location, slug) in options.location_slugs() {
        let args = options.build_args(
            &location,
            &format!("\"$CI_COMMIT_SHORT_SHA-$CI_PIPELINE_ID-{slug}\""),
        );
        let _ = writeln!(
            out,
            "    - {}",
            yaml_quote(&format!("dagster-deploy build-and-push {args}"))
        );
    }
    out.push_str(
        r#"    - dagster-deploy deploy
  after_script:
    - cd "$DAGSTER_PROJECT_DIR" && dagster-deploy status --output-format markdown

deploy-full:
  extends: .dagster-deploy
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH

deploy-branch:
  extends: .dagster-deploy
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
  environment:
    name: dagster-branch/$CI_MERGE_REQUEST_IID
    on_stop: close-branch-deployment

close-branch-deployment:
  extends: .dagster-deploy
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
      when: manual
  allow_failure: true
  environment:
    name: dagster-branch/$CI_MERGE_REQUEST_IID
    action: stop
  script:
    - cd "$DAGSTER_PROJECT_DIR"
    - dagster-deploy branch-deployment --mark-closed
  after_script: []
"#,
    );
    Ok(out)
}

/// The registry examples shown above a `registry:` key in a scaffolded `build.yaml`.
const REGISTRY_EXAMPLES: &str = "\
# The image repository (no tag) the code locations are pushed to, for example:
#   123456789012.dkr.ecr.us-east-1.amazonaws.com/my-repo   (Amazon ECR)
#   gcr.io/my-project/my-image                              (Google Container Registry)
#   myregistry.azurecr.io/my-image                          (Azure Container Registry)
#   docker.io/my-user/my-repo                               (Docker Hub)
#   ghcr.io/my-org/my-image                                 (GitHub Container Registry)
";

/// A workspace's `build.yaml`: the registry every project pushes to.
pub fn workspace_build_yaml(registry: &str) -> String {
    format!("{REGISTRY_EXAMPLES}registry: {}\n", yaml_quote(registry))
}

/// A project's `build.yaml`. In a workspace the registry comes from the workspace file, so it
/// is only shown as a comment.
pub fn project_build_yaml(registry: Option<&str>, in_workspace: bool) -> String {
    match (registry, in_workspace) {
        (_, true) => "# The Docker build context of this project.\ndirectory: .\n\
                      # The registry is set in the workspace's build.yaml; set one here to override it.\n\
                      # registry: '...'\n"
            .to_owned(),
        (registry, false) => format!(
            "# The Docker build context of this project.\ndirectory: .\n{REGISTRY_EXAMPLES}registry: {}\n",
            yaml_quote(registry.unwrap_or("..."))
        ),
    }
}

/// The default Dockerfile (reference-behaviour §6.3 in substance): a uv build stage that installs
/// the dependencies, then the project, and a slim final stage that checks `dagster-cloud` runs.
pub fn dockerfile(python_version: &str, package_name: &str) -> Result<String> {
    let version_ok = python_version.split('.').count() == 2
        && python_version
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if !version_ok {
        return Err(invalid(
            "python_version",
            python_version,
            "a version such as 3.12",
        ));
    }
    if package_name.is_empty()
        || !package_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(invalid(
            "package_name",
            package_name,
            "a Python package name such as my-project",
        ));
    }
    Ok(format!(
        "\
FROM ghcr.io/astral-sh/uv:python{python_version}-bookworm-slim AS builder
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=0
WORKDIR /app
# Dependencies first, so that code-only changes reuse this layer.
RUN --mount=type=cache,target=/root/.cache/uv \\
    --mount=type=bind,source=uv.lock,target=uv.lock \\
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \\
    uv sync --frozen --no-install-project --no-dev
ADD . /app
RUN --mount=type=cache,target=/root/.cache/uv \\
    uv sync --frozen --no-dev --package {package_name}

FROM python:{python_version}-slim-bookworm
COPY --from=builder /app /app
ENV PATH=\"/app/.venv/bin:$PATH\"
WORKDIR /app
RUN dagster-cloud --version || (echo 'dagster-cloud is missing: add dagster-cloud to the dependencies of {package_name}' >&2; exit 1)
"
    ))
}

#[cfg(test)]
mod tests;
