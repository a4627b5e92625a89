//! Registry logins for the scaffolded CI files: which kind of registry a repository lives in,
//! which secrets (CI variables) log in to it on GitHub and on GitLab, and the shell commands that
//! hand them to `dagster-deploy build-and-push` (native builder) or to `docker login`.
//!
//! The native builder takes `DAGSTER_DEPLOY_REGISTRY_USERNAME` / `..._PASSWORD`, which it sends
//! to the destination registry of that one invocation only, so each location's build command
//! carries its own registry's login and no password reaches another registry.

use std::collections::BTreeMap;

use dagster_deploy_types::split_registry;

use crate::context::GitProvider;

/// The kind of registry a repository reference points at, by its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegistryKind {
    /// Amazon ECR, `<account>.dkr.ecr.<region>.amazonaws.com`: a token from the AWS CLI.
    Ecr { region: String },
    /// GitHub Container Registry, `ghcr.io`.
    Ghcr,
    /// Docker Hub: `docker.io` (also written without a host, `acme/app`).
    DockerHub,
    /// Azure Container Registry, `*.azurecr.io`: a service principal.
    Acr,
    /// Google Container or Artifact Registry: a service account's JSON key.
    Gcr,
    /// GitLab's container registry, `registry.gitlab.com`.
    GitLab,
    /// Any other registry: a username and password.
    Generic,
}

/// Where a username or password comes from in the CI job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CredentialValue {
    /// A CI secret (GitHub) or CI/CD variable (GitLab) of this name, read from the environment.
    Variable(String),
    /// A fixed value, e.g. `AWS` for ECR.
    Literal(&'static str),
    /// The GitHub user that triggered the run (`GITHUB_ACTOR`, set by the runner).
    GitHubActor,
    /// A fresh ECR token: `aws ecr get-login-password --region <region>`.
    EcrToken { region: String },
}

/// The login of one registry host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegistryLogin {
    /// The host as `docker login` and the native builder name it, e.g. `ghcr.io`.
    pub(crate) host: String,
    pub(crate) kind: RegistryKind,
    pub(crate) username: CredentialValue,
    pub(crate) password: CredentialValue,
    /// Secrets the commands read besides the username and password (the AWS keys for ECR).
    pub(crate) extra: Vec<String>,
}

/// Secret names GitHub provides by itself; the workflow maps them but nobody sets them.
const GITHUB_PROVIDED: &[&str] = &["GITHUB_TOKEN"];
/// Variables GitLab predefines in every job.
const GITLAB_PREDEFINED: &[&str] = &["CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD"];

/// The registry host of a repository reference: its first component when the image grammar
/// says it names a host ([`split_registry`]), else Docker Hub, whose other names are one host.
pub(crate) fn registry_host(repository: &str) -> String {
    match split_registry(repository).0 {
        None | Some("index.docker.io" | "registry-1.docker.io") => "docker.io".to_owned(),
        Some(host) => host.to_owned(),
    }
}

/// The kind of registry at `host`.
pub(crate) fn registry_kind(host: &str) -> RegistryKind {
    let bare = host.split(':').next().unwrap_or(host);
    let labels: Vec<&str> = bare.split('.').collect();
    if let [_account, "dkr", "ecr", region, "amazonaws", "com", ..] = labels.as_slice() {
        return RegistryKind::Ecr {
            region: (*region).to_owned(),
        };
    }
    match bare {
        "ghcr.io" => RegistryKind::Ghcr,
        "docker.io" => RegistryKind::DockerHub,
        "registry.gitlab.com" => RegistryKind::GitLab,
        "gcr.io" => RegistryKind::Gcr,
        _ if bare.ends_with(".gcr.io") || bare.ends_with("-docker.pkg.dev") => RegistryKind::Gcr,
        _ if bare.ends_with(".azurecr.io") => RegistryKind::Acr,
        _ => RegistryKind::Generic,
    }
}

/// One login per distinct registry host of `repositories`, in first-seen order.
pub(crate) fn registry_logins<'a>(
    provider: GitProvider,
    repositories: impl IntoIterator<Item = &'a str>,
) -> Vec<RegistryLogin> {
    let mut hosts: Vec<String> = Vec::new();
    for repository in repositories {
        let host = registry_host(repository);
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let generic_count = hosts
        .iter()
        .filter(|host| login_kind(provider, host) == RegistryKind::Generic)
        .count();
    hosts
        .into_iter()
        .map(|host| {
            let kind = login_kind(provider, &host);
            let variable = |name: &str| CredentialValue::Variable(name.to_owned());
            let (username, password, extra) = match (&kind, provider) {
                (RegistryKind::Ecr { region }, _) => (
                    CredentialValue::Literal("AWS"),
                    CredentialValue::EcrToken {
                        region: region.clone(),
                    },
                    vec![
                        "AWS_ACCESS_KEY_ID".to_owned(),
                        "AWS_SECRET_ACCESS_KEY".to_owned(),
                    ],
                ),
                (RegistryKind::Ghcr, GitProvider::GitHub) => (
                    CredentialValue::GitHubActor,
                    variable("GITHUB_TOKEN"),
                    Vec::new(),
                ),
                (RegistryKind::Ghcr, GitProvider::GitLab) => (
                    variable("GITHUB_USERNAME"),
                    variable("GITHUB_TOKEN"),
                    Vec::new(),
                ),
                (RegistryKind::DockerHub, _) => (
                    variable("DOCKERHUB_USERNAME"),
                    variable("DOCKERHUB_TOKEN"),
                    Vec::new(),
                ),
                (RegistryKind::Acr, _) => (
                    variable("AZURE_CLIENT_ID"),
                    variable("AZURE_CLIENT_SECRET"),
                    Vec::new(),
                ),
                (RegistryKind::Gcr, _) => (
                    CredentialValue::Literal("_json_key"),
                    variable("GCR_JSON_KEY"),
                    Vec::new(),
                ),
                (RegistryKind::GitLab, _) => (
                    variable("CI_REGISTRY_USER"),
                    variable("CI_REGISTRY_PASSWORD"),
                    Vec::new(),
                ),
                (RegistryKind::Generic, _) => {
                    // One generic registry gets the plain names; several get one pair each.
                    let prefix = if generic_count == 1 {
                        "REGISTRY".to_owned()
                    } else {
                        format!("REGISTRY_{}", variable_slug(&host))
                    };
                    (
                        variable(&format!("{prefix}_USERNAME")),
                        variable(&format!("{prefix}_PASSWORD")),
                        Vec::new(),
                    )
                }
            };
            RegistryLogin {
                host,
                kind,
                username,
                password,
                extra,
            }
        })
        .collect()
}

/// GitLab's own registry is only special on GitLab, where the job has its credentials.
fn login_kind(provider: GitProvider, host: &str) -> RegistryKind {
    match (registry_kind(host), provider) {
        (RegistryKind::GitLab, GitProvider::GitHub) => RegistryKind::Generic,
        (kind, _) => kind,
    }
}

/// `127.0.0.1:5000` → `127_0_0_1_5000`: a host as part of a variable name.
fn variable_slug(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl CredentialValue {
    /// The value as a shell word, e.g. `"$DOCKERHUB_TOKEN"`; `None` for the ECR token, which
    /// is a command.
    fn shell_word(&self) -> Option<String> {
        match self {
            CredentialValue::Variable(name) => Some(format!("\"${name}\"")),
            CredentialValue::Literal(value) => Some((*value).to_owned()),
            CredentialValue::GitHubActor => Some("\"$GITHUB_ACTOR\"".to_owned()),
            CredentialValue::EcrToken { .. } => None,
        }
    }

    fn variable(&self) -> Option<&str> {
        match self {
            CredentialValue::Variable(name) => Some(name),
            _ => None,
        }
    }
}

fn ecr_command(region: &str) -> String {
    format!("aws ecr get-login-password --region {region}")
}

impl RegistryLogin {
    /// Every secret or variable the commands read, in order.
    pub(crate) fn variables(&self) -> Vec<String> {
        let mut names: Vec<String> = [&self.username, &self.password]
            .into_iter()
            .filter_map(|value| value.variable().map(str::to_owned))
            .collect();
        names.extend(self.extra.iter().cloned());
        names
    }

    /// Whether the CI system provides `name` by itself.
    pub(crate) fn is_provided(provider: GitProvider, name: &str) -> bool {
        match provider {
            GitProvider::GitHub => GITHUB_PROVIDED.contains(&name),
            GitProvider::GitLab => GITLAB_PREDEFINED.contains(&name),
        }
    }

    /// The commands that run `command` (a `dagster-deploy build-and-push ...` line) with this
    /// registry's login in `DAGSTER_DEPLOY_REGISTRY_USERNAME` / `..._PASSWORD`. The variables are
    /// set for that one command only, never exported to later ones.
    pub(crate) fn native_build_lines(&self, command: &str) -> Vec<String> {
        let username = self.username.shell_word().unwrap_or_default();
        match (&self.password, self.password.shell_word()) {
            (CredentialValue::EcrToken { region }, _) => vec![
                format!("ecr_password=\"$({})\"", ecr_command(region)),
                format!(
                    "DAGSTER_DEPLOY_REGISTRY_USERNAME={username} DAGSTER_DEPLOY_REGISTRY_PASSWORD=\"$ecr_password\" {command}"
                ),
            ],
            (_, password) => vec![format!(
                "DAGSTER_DEPLOY_REGISTRY_USERNAME={username} DAGSTER_DEPLOY_REGISTRY_PASSWORD={} {command}",
                password.unwrap_or_default()
            )],
        }
    }

    /// `docker login` to this registry (docker builder).
    pub(crate) fn docker_login_line(&self) -> String {
        let username = self.username.shell_word().unwrap_or_default();
        let input = match (&self.password, self.password.shell_word()) {
            (CredentialValue::EcrToken { region }, _) => ecr_command(region),
            (_, password) => format!("printf '%s' {}", password.unwrap_or_default()),
        };
        format!(
            "{input} | docker login --username {username} --password-stdin {}",
            self.host
        )
    }

    /// What the login is, for the "Next:" hint.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            RegistryKind::Ecr { .. } => format!(
                "AWS keys allowed to push to {} (the job runs the AWS CLI)",
                self.host
            ),
            RegistryKind::Ghcr => format!("a GitHub user and token that may push to {}", self.host),
            RegistryKind::DockerHub => "a Docker Hub user and access token".to_owned(),
            RegistryKind::Acr => format!("a service principal that may push to {}", self.host),
            RegistryKind::Gcr => {
                format!("a service account JSON key that may push to {}", self.host)
            }
            RegistryKind::GitLab => format!("the job's own login to {}", self.host),
            RegistryKind::Generic => format!("the login of {}", self.host),
        }
    }
}

/// Secret names mapped to their GitHub expressions, for a step's `env:`.
pub(crate) fn github_env(logins: &[&RegistryLogin]) -> BTreeMap<String, String> {
    logins
        .iter()
        .flat_map(|login| login.variables())
        .map(|name| {
            let expression = format!("${{{{ secrets.{name} }}}}");
            (name, expression)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_kinds_follow_the_repository() {
        let check = |repository: &str, host: &str, kind: RegistryKind| {
            assert_eq!(registry_host(repository), host, "{repository}");
            assert_eq!(registry_kind(host), kind, "{repository}");
        };
        check(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            RegistryKind::Ecr {
                region: "eu-west-1".to_owned(),
            },
        );
        check("ghcr.io/acme/app", "ghcr.io", RegistryKind::Ghcr);
        check("acme/app", "docker.io", RegistryKind::DockerHub);
        check("docker.io/acme/app", "docker.io", RegistryKind::DockerHub);
        check(
            "index.docker.io/acme/app",
            "docker.io",
            RegistryKind::DockerHub,
        );
        check("acme.azurecr.io/app", "acme.azurecr.io", RegistryKind::Acr);
        check("gcr.io/project/app", "gcr.io", RegistryKind::Gcr);
        check(
            "europe-docker.pkg.dev/p/r/app",
            "europe-docker.pkg.dev",
            RegistryKind::Gcr,
        );
        check(
            "registry.gitlab.com/acme/app",
            "registry.gitlab.com",
            RegistryKind::GitLab,
        );
        check(
            "127.0.0.1:5000/app",
            "127.0.0.1:5000",
            RegistryKind::Generic,
        );
        check("localhost/app", "localhost", RegistryKind::Generic);
    }

    #[test]
    fn several_generic_registries_get_one_pair_of_secrets_each() {
        let logins = registry_logins(
            GitProvider::GitHub,
            [
                "r1.example.com/a",
                "r2.example.com:5000/b",
                "r1.example.com/c",
            ],
        );
        let names: Vec<Vec<String>> = logins.iter().map(RegistryLogin::variables).collect();
        assert_eq!(
            names,
            [
                [
                    "REGISTRY_R1_EXAMPLE_COM_USERNAME",
                    "REGISTRY_R1_EXAMPLE_COM_PASSWORD"
                ],
                [
                    "REGISTRY_R2_EXAMPLE_COM_5000_USERNAME",
                    "REGISTRY_R2_EXAMPLE_COM_5000_PASSWORD"
                ]
            ]
        );
        let single = registry_logins(GitProvider::GitLab, ["r1.example.com/a"]);
        assert_eq!(
            single[0].variables(),
            ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"]
        );
    }

    #[test]
    fn ecr_logs_in_with_a_fresh_token_and_never_exports_it() {
        let logins = registry_logins(
            GitProvider::GitLab,
            ["1.dkr.ecr.us-east-1.amazonaws.com/app"],
        );
        assert_eq!(
            logins[0].native_build_lines("dagster-deploy build-and-push"),
            [
                "ecr_password=\"$(aws ecr get-login-password --region us-east-1)\"",
                "DAGSTER_DEPLOY_REGISTRY_USERNAME=AWS DAGSTER_DEPLOY_REGISTRY_PASSWORD=\"$ecr_password\" dagster-deploy build-and-push"
            ]
        );
        assert_eq!(
            logins[0].docker_login_line(),
            "aws ecr get-login-password --region us-east-1 | docker login --username AWS --password-stdin 1.dkr.ecr.us-east-1.amazonaws.com"
        );
        assert_eq!(
            logins[0].variables(),
            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        );
    }

    #[test]
    fn ghcr_uses_the_run_token_on_github_and_variables_on_gitlab() {
        let github = &registry_logins(GitProvider::GitHub, ["ghcr.io/a/b"])[0];
        assert_eq!(
            github.docker_login_line(),
            "printf '%s' \"$GITHUB_TOKEN\" | docker login --username \"$GITHUB_ACTOR\" --password-stdin ghcr.io"
        );
        assert!(RegistryLogin::is_provided(
            GitProvider::GitHub,
            "GITHUB_TOKEN"
        ));
        let gitlab = &registry_logins(GitProvider::GitLab, ["ghcr.io/a/b"])[0];
        assert_eq!(gitlab.variables(), ["GITHUB_USERNAME", "GITHUB_TOKEN"]);
        assert!(!RegistryLogin::is_provided(
            GitProvider::GitLab,
            "GITHUB_TOKEN"
        ));
        let own = &registry_logins(GitProvider::GitLab, ["registry.gitlab.com/a/b"])[0];
        assert!(
            own.variables()
                .iter()
                .all(|name| RegistryLogin::is_provided(GitProvider::GitLab, name))
        );
    }
}
