//! Which CI system we run in (reference-behaviour §4.1), from marker environment variables.
//!
//! Only detection lives here; reading each provider's variables is in `context.rs`.

use std::fmt;

use serde::Serialize;

/// The CI system (or local shell) the tool runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CiProvider {
    /// GitHub Actions (`GITHUB_ACTION`).
    GitHub,
    /// GitLab CI (`GITLAB_CI`).
    GitLab,
    /// Bitbucket Pipelines (`BITBUCKET_BUILD_NUMBER`).
    Bitbucket,
    /// Azure Pipelines (`TF_BUILD`).
    AzurePipelines,
    /// Buildkite (`BUILDKITE`).
    Buildkite,
    /// CircleCI (`CIRCLECI`).
    CircleCi,
    /// Jenkins (`JENKINS_URL`).
    Jenkins,
    /// AWS CodeBuild (`CODEBUILD_BUILD_ID`); only local git facts are read.
    CodeBuild,
    /// Travis CI (`TRAVIS`); only local git facts are read.
    Travis,
    /// No CI marker: a developer machine (the reference's `cli` source).
    Local,
    /// More than one CI marker is set, so we cannot tell.
    Unknown,
}

/// Marker variables in the reference's order; a non-empty value counts as set.
const MARKERS: &[(&str, CiProvider)] = &[
    ("BITBUCKET_BUILD_NUMBER", CiProvider::Bitbucket),
    ("BUILDKITE", CiProvider::Buildkite),
    ("CIRCLECI", CiProvider::CircleCi),
    ("CODEBUILD_BUILD_ID", CiProvider::CodeBuild),
    ("GITHUB_ACTION", CiProvider::GitHub),
    ("GITLAB_CI", CiProvider::GitLab),
    ("JENKINS_URL", CiProvider::Jenkins),
    ("TRAVIS", CiProvider::Travis),
    // Not known to the reference; added so Azure Pipelines is not reported as a local run.
    ("TF_BUILD", CiProvider::AzurePipelines),
];

impl CiProvider {
    /// Detects the provider: exactly one marker set → it, several → `Unknown`, none → `Local`.
    pub fn detect(env: &dyn Fn(&str) -> Option<String>) -> CiProvider {
        let mut found = MARKERS
            .iter()
            .filter(|(name, _)| crate::context::non_empty(env, name).is_some())
            .map(|(_, provider)| *provider);
        match (found.next(), found.next()) {
            (Some(provider), None) => provider,
            (Some(_), Some(_)) => CiProvider::Unknown,
            (None, _) => CiProvider::Local,
        }
    }

    /// The reference's Python member name, as printed by `inspect` (`source.<name>`).
    pub fn source_name(self) -> &'static str {
        match self {
            CiProvider::GitHub => "github",
            CiProvider::GitLab => "gitlab",
            CiProvider::Bitbucket => "bitbucket",
            CiProvider::AzurePipelines => "azure_pipelines",
            CiProvider::Buildkite => "buildkite",
            CiProvider::CircleCi => "circle_ci",
            CiProvider::Jenkins => "jenkins",
            CiProvider::CodeBuild => "codebuild",
            CiProvider::Travis => "travis",
            CiProvider::Local => "cli",
            CiProvider::Unknown => "unknown",
        }
    }
}

/// Serialised as the reference's source name (`github`, `cli`, `circle_ci`, …).
impl Serialize for CiProvider {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.source_name())
    }
}

impl fmt::Display for CiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CiProvider::GitHub => "GitHub Actions",
            CiProvider::GitLab => "GitLab CI",
            CiProvider::Bitbucket => "Bitbucket Pipelines",
            CiProvider::AzurePipelines => "Azure Pipelines",
            CiProvider::Buildkite => "Buildkite",
            CiProvider::CircleCi => "CircleCI",
            CiProvider::Jenkins => "Jenkins",
            CiProvider::CodeBuild => "AWS CodeBuild",
            CiProvider::Travis => "Travis CI",
            CiProvider::Local => "local git",
            CiProvider::Unknown => "unknown CI (several CI markers are set)",
        })
    }
}
