//! Opening a session: from a validated configuration, the CI context, the deployment (full,
//! or the branch deployment of the current pull request) and the git facts of the commit, one
//! state file per location. Everything is checked before the state directory is touched.
//!
//! The stage runs in steps so that a caller can act between them: [`StartPlan::new`] detects
//! the CI context and, when no deployment type is given, guesses one ([`StartPlan::guess`]: a
//! CLI asks the user to confirm it); [`StartPlan::needs_client`] says whether Dagster+ will be
//! called; [`StartPlan::open`] checks the connection, creates or updates the branch deployment
//! and writes the session. [`open_session`] runs them all, accepting the guess.

use std::path::{Path, PathBuf};

use dagster_deploy_ci_context as ci;
use dagster_deploy_cloud_client::{CloudClient, OrgUrl, SnapshotBaseCondition};
use dagster_deploy_statedir::{
    BuildConfig, BuildMetadata, GitMetadata, NewLocation, Session, SessionInfo,
};

pub use dagster_deploy_ci_context::{DeploymentType, DeploymentTypeGuess};

use crate::branch::{BranchSettings, upsert_branch_deployment};
use crate::config::{ConfigSource, LoadedConfig, load_config};
use crate::error::{Error, Result};
use crate::progress::{Event, Progress};

/// Everything a session is opened with besides its configuration.
#[derive(Debug, Clone)]
pub struct StartSettings {
    /// The state directory (absolute).
    pub statedir: PathBuf,
    /// Only these locations; empty means all.
    pub location_names: Vec<String>,
    /// The deployment to deploy to, and the base of branch deployments (checked: it becomes a
    /// URL path segment).
    pub deployment: String,
    /// The organization URL the session records.
    pub organization_url: OrgUrl,
    /// The full deployment or a branch deployment; `None` guesses from the git branch (and,
    /// inside a pull request, always makes a branch deployment).
    pub deployment_type: Option<DeploymentType>,
    /// Without a deployment type, guess it from the git branch (dg's `start`); when false, only
    /// a pull or merge request makes a branch deployment (the reference's `ci init`,
    /// reference-behaviour §3.2).
    pub guess_deployment_type: bool,
    /// Keep the locations of a previous session that are not opened anew (the reference's
    /// `ci init --no-clean-statedir`, reference-behaviour §2.1); ignored for a dg project,
    /// whose session is always opened anew.
    pub keep_other_locations: bool,
    /// The URL of the code at this commit; else the CI context's.
    pub git_url: Option<String>,
    /// The commit deployed; else the CI context's.
    pub commit_hash: Option<String>,
    /// The URL of this CI run; else the CI context's.
    pub status_url: Option<String>,
    /// When a branch deployment takes its snapshot of the base deployment.
    pub snapshot_base_condition: Option<SnapshotBaseCondition>,
    /// Skip the connection check (a branch deployment still calls Dagster+).
    pub skip_validation: bool,
    /// The version of the tool, recorded in the session.
    pub tool_version: String,
}

/// A session about to be opened: the configuration, the CI context and the deployment type.
#[derive(Debug, Clone)]
pub struct StartPlan {
    config: LoadedConfig,
    settings: StartSettings,
    ci_context: ci::CiContext,
    guess: Option<DeploymentTypeGuess>,
    author_avatar_url: Option<String>,
}

/// A session that was opened.
#[derive(Debug)]
pub struct Started {
    /// The session. Interrupted changes it completed are in [`Session::take_repairs`].
    pub session: Session,
    /// Its locations, sorted.
    pub locations: Vec<String>,
    /// The deployment it deploys to.
    pub deployment: String,
    /// Whether that is a branch deployment.
    pub is_branch_deployment: bool,
}

impl StartPlan {
    /// Checks the requested locations against `config`, detects the CI context from `env` (the
    /// environment variables, injected: `None` for unset) and, without an explicit deployment
    /// type, guesses one from the git branch.
    pub fn new(
        config: LoadedConfig,
        settings: StartSettings,
        env: &dyn Fn(&str) -> Option<String>,
        progress: &dyn Progress,
    ) -> Result<StartPlan> {
        config.check_requested(&settings.location_names)?;
        let ci_context = ci::detect(env, &config.project_dir)?;
        progress.event(&Event::CiProvider(&ci_context.provider));
        let guess = match settings.deployment_type {
            None if settings.guess_deployment_type => {
                Some(ci::guess_deployment_type(&config.project_dir))
            }
            _ => None,
        };
        Ok(StartPlan {
            config,
            settings,
            ci_context,
            guess,
            author_avatar_url: None,
        })
    }

    /// The guessed deployment type, when none was given; [`StartPlan::open`] follows it.
    pub fn guess(&self) -> Option<&DeploymentTypeGuess> {
        self.guess.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &LoadedConfig {
        &self.config
    }

    /// The CI context.
    pub fn ci_context(&self) -> &ci::CiContext {
        &self.ci_context
    }

    /// Whether the session deploys to a branch deployment. A pull request gets its branch
    /// deployment unless the full deployment was asked for explicitly (the reference ignores
    /// an explicit choice there).
    pub fn wants_branch_deployment(&self) -> bool {
        match (self.settings.deployment_type, &self.guess) {
            (Some(kind), _) => kind == DeploymentType::Branch,
            (None, guess) => {
                guess
                    .as_ref()
                    .is_some_and(|guess| guess.deployment_type == DeploymentType::Branch)
                    || self.ci_context.pull_request.is_some()
            }
        }
    }

    /// Sends `avatar` as the head commit's author's avatar with the branch deployment.
    pub fn set_author_avatar(&mut self, avatar: Option<String>) {
        self.author_avatar_url = avatar;
    }

    /// Whether [`StartPlan::open`] calls Dagster+ (and so needs a client).
    pub fn needs_client(&self) -> bool {
        !self.settings.skip_validation || self.wants_branch_deployment()
    }

    /// Checks the connection (unless skipped), creates or updates the branch deployment if
    /// one is wanted, and writes the session. `client` is used only when
    /// [`StartPlan::needs_client`] says so.
    pub async fn open(
        self,
        client: Option<&CloudClient>,
        progress: &dyn Progress,
    ) -> Result<Started> {
        let client = match (self.needs_client(), client) {
            (false, _) => None,
            (true, Some(client)) => Some(client),
            (true, None) => {
                return Err(Error::NoClient {
                    purpose: "check the connection and open a branch deployment",
                });
            }
        };
        let settings = &self.settings;
        if let (false, Some(client)) = (settings.skip_validation, client) {
            verify_connection(client, progress).await?;
        }
        let deployment = settings.deployment.clone();
        let (deployment_name, is_branch_deployment) = match client {
            Some(client) if self.wants_branch_deployment() => {
                let branch = BranchSettings {
                    base_deployment: Some(deployment.clone()),
                    snapshot_base_condition: settings.snapshot_base_condition,
                    mark_closed: false,
                    author_avatar_url: self.author_avatar_url.clone(),
                };
                let name = upsert_branch_deployment(
                    client,
                    &self.ci_context,
                    &self.config.project_dir,
                    &branch,
                )
                .await?;
                // The name comes from Dagster+ and becomes a URL path segment of every deploy.
                dagster_deploy_cloud_client::validate_deployment_name(&name)?;
                progress.event(&Event::Target {
                    deployment: &name,
                    base_deployment: Some(&deployment),
                });
                (name, true)
            }
            _ => {
                progress.event(&Event::Target {
                    deployment: &deployment,
                    base_deployment: None,
                });
                (deployment, false)
            }
        };
        let locations = self.new_locations(&deployment_name, is_branch_deployment);
        let info = SessionInfo {
            tool_version: settings.tool_version.clone(),
            created_at: jiff::Timestamp::now(),
            project_dir: self.config.project_dir.clone(),
            organization_url: settings.organization_url.as_str().to_owned(),
        };
        // The generated file goes in first, so no location file ever points at a missing one.
        let session = match &self.config.generated {
            Some(text) => {
                Session::create_with_location_file(&settings.statedir, info, locations, text)?
            }
            None if settings.keep_other_locations => {
                Session::create_keeping_other_locations(&settings.statedir, info, locations)?
            }
            None => Session::create(&settings.statedir, info, locations)?,
        };
        let locations = session
            .locations()?
            .into_iter()
            .map(|state| state.location_name)
            .collect();
        Ok(Started {
            session,
            locations,
            deployment: deployment_name,
            is_branch_deployment,
        })
    }

    /// The state of each selected location in the new session.
    fn new_locations(&self, deployment_name: &str, is_branch_deployment: bool) -> Vec<NewLocation> {
        let settings = &self.settings;
        let ci_context = &self.ci_context;
        let config = &self.config;
        let git = GitMetadata {
            commit_hash: settings
                .commit_hash
                .clone()
                .or_else(|| ci_context.commit_hash.clone()),
            url: settings
                .git_url
                .clone()
                .or_else(|| ci_context.git_url.clone()),
            provider: ci_context
                .git_provider
                .map(|provider| provider.as_str().to_owned()),
            repo_owner: ci_context.repo.as_ref().map(|repo| repo.owner.clone()),
            repo_name: ci_context.repo.as_ref().map(|repo| repo.name.clone()),
            base_branch: ci_context.base_branch.clone(),
            defs_base_path: defs_base_path(config.defs_dir.as_deref(), ci_context),
        };
        let status_url = settings
            .status_url
            .clone()
            .or_else(|| ci_context.run_url.clone());
        let location_file = config.location_file.to_string_lossy().into_owned();
        let project_dir = config.project_dir.to_string_lossy().into_owned();
        config
            .yaml
            .locations()
            .iter()
            .filter(|location| {
                settings.location_names.is_empty()
                    || settings
                        .location_names
                        .iter()
                        .any(|name| name == location.name().as_str())
            })
            .map(|location| NewLocation {
                location_name: location.name().as_str().to_owned(),
                url: settings.organization_url.as_str().to_owned(),
                deployment_name: deployment_name.to_owned(),
                location_file: location_file.clone(),
                is_branch_deployment,
                build: BuildMetadata {
                    git: git.clone(),
                    build_config: location.build().map(|build| BuildConfig {
                        directory: build.directory().map(str::to_owned),
                        registry: build
                            .registry()
                            .map(|registry| registry.as_str().to_owned()),
                    }),
                },
                status_url: status_url.clone(),
                project_dir: Some(project_dir.clone()),
            })
            .collect()
    }
}

/// The project's defs folder relative to the checkout, with `/` separators
/// (reference-behaviour §3.3).
fn defs_base_path(defs_dir: Option<&Path>, ci_context: &ci::CiContext) -> Option<String> {
    let relative = defs_dir?
        .strip_prefix(ci_context.repo_root.as_ref()?)
        .ok()?;
    Some(
        relative
            .components()
            .map(|part| part.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// Checks that Dagster+ answers and accepts the client's token.
pub async fn verify_connection(client: &CloudClient, progress: &dyn Progress) -> Result<()> {
    client.organization_settings().await?;
    progress.event(&Event::Connected {
        organization_url: client.org_url(),
    });
    Ok(())
}

/// Opens a session in one call: reads `config`, plans, accepts the guessed deployment type (if
/// none is given) and opens. `client` is needed unless the connection check is skipped and no
/// branch deployment is made.
pub async fn open_session(
    config: &ConfigSource,
    settings: StartSettings,
    env: &dyn Fn(&str) -> Option<String>,
    client: Option<&CloudClient>,
    progress: &dyn Progress,
) -> Result<Started> {
    let loaded = load_config(config, Some(&settings.statedir))?;
    StartPlan::new(loaded, settings, env, progress)?
        .open(client, progress)
        .await
}
