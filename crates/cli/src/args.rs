//! The command line, as clap derive types only: doc comments are the help text, env-var names
//! live in [`mod@env`]. Resolving flags, env vars and config files into values happens in
//! `settings.rs`; nothing here has behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Environment variable names, in one place.
pub(crate) mod env {
    pub(crate) const STATEDIR: &str = "DAGSTER_BUILD_STATEDIR";
    pub(crate) const ORGANIZATION: &str = "DAGSTER_CLOUD_ORGANIZATION";
    pub(crate) const DEPLOYMENT: &str = "DAGSTER_CLOUD_DEPLOYMENT";
    pub(crate) const API_TOKEN: &str = "DAGSTER_CLOUD_API_TOKEN";
    pub(crate) const URL: &str = "DAGSTER_CLOUD_URL";
    pub(crate) const REGION: &str = "DAGSTER_CLOUD_ENV";
    pub(crate) const LOCATION_LOAD_TIMEOUT: &str = "DAGSTER_CLOUD_LOCATION_LOAD_TIMEOUT";
    pub(crate) const AGENT_HEARTBEAT_TIMEOUT: &str = "DAGSTER_CLOUD_AGENT_HEARTBEAT_TIMEOUT";
    pub(crate) const LEGACY_CONFIG: &str = "DAGSTER_CLOUD_CLI_CONFIG";
    pub(crate) const DG_CONFIG: &str = "DG_CLI_CONFIG";
    pub(crate) const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
    pub(crate) const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
    pub(crate) const REGISTRY_USERNAME: &str = "DAGSTER_DEPLOY_REGISTRY_USERNAME";
    pub(crate) const REGISTRY_PASSWORD: &str = "DAGSTER_DEPLOY_REGISTRY_PASSWORD";
    pub(crate) const REQUEST_TIMEOUT: &str = "DAGSTER_DEPLOY_REQUEST_TIMEOUT";
    pub(crate) const BUILD_TIMEOUT: &str = "DAGSTER_DEPLOY_BUILD_TIMEOUT";
    pub(crate) const UV: &str = "DAGSTER_DEPLOY_UV";
    pub(crate) const CACHE_DIR: &str = "DAGSTER_DEPLOY_CACHE_DIR";
    pub(crate) const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
    // What GitHub Actions and GitLab CI set, and the GitLab token `notify` reads.
    pub(crate) const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
    pub(crate) const GITHUB_API_URL: &str = "GITHUB_API_URL";
    pub(crate) const GITHUB_SERVER_URL: &str = "GITHUB_SERVER_URL";
    pub(crate) const GITLAB_TOKEN: &str = "GITLAB_TOKEN";
    pub(crate) const CI_JOB_TOKEN: &str = "CI_JOB_TOKEN";
    pub(crate) const CI_API_V4_URL: &str = "CI_API_V4_URL";
    pub(crate) const CI_SERVER_URL: &str = "CI_SERVER_URL";
}

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  internal error (a bug: please report it)
  2  usage error (bad flag or argument)
  3  configuration error (dagster_cloud.yaml, build.yaml, dg project, state directory)
  4  authentication error (API token or registry credentials refused, credential helper failed)
  5  registry error (image push, pull or build)
  6  deploy failed (Dagster+ rejected the deploy or could not be reached)
  7  a location failed to load
  8  timed out (the agent, locations loading, a Dagster+ request, or docker)
  9  deploy accepted by Dagster+, but its load was not tracked to the end (connection lost,
     or the outcome could not be recorded); the session records it as not tracked
 10  local I/O error (disk full, permission denied) reading or writing a file
 11  notify: GitHub or GitLab could not be reached or gave an unexpected answer
130  interrupted by Ctrl-C (143: by SIGTERM); a deploy records it as interrupted";

/// `--version`: the package version, the git commit it was built from (`unknown` when built
/// outside a checkout) and the target triple, all recorded by `build.rs`.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DAGSTER_DEPLOY_GIT_COMMIT"),
    ", ",
    env!("DAGSTER_DEPLOY_TARGET"),
    ")"
);

/// Deploy code locations to Dagster+ Hybrid from any CI system.
///
/// A deploy is a session in a state directory: `start` opens it, `build-and-push` (or your own
/// build followed by `set-build-output`) records one image per code location, and `deploy`
/// tells Dagster+ to load the new code and waits until it has.
#[derive(Debug, Parser)]
#[command(name = "dagster-deploy", version = VERSION, after_help = EXIT_CODES, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,

    #[command(flatten)]
    pub(crate) global: GlobalArgs,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// The state directory that holds the deploy session.
    #[arg(long, global = true, env = env::STATEDIR, value_name = "DIR")]
    pub(crate) statedir: Option<PathBuf>,

    /// Say more: where each setting came from, retries and waits.
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,

    /// Seconds one request to Dagster+ or a registry may take; for an image layer, how long
    /// its transfer may stall. [default: 60 for Dagster+, 120 for registries]
    #[arg(
        long,
        global = true,
        env = env::REQUEST_TIMEOUT,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub(crate) request_timeout: Option<u64>,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only make the commands harder to write"
)]
pub(crate) enum Command {
    /// Open a deploy session for a dg project or workspace (or a dagster_cloud.yaml).
    #[command(visible_alias = "init")]
    Start(StartArgs),
    /// Build an image per selected location, push it and record it in the session.
    BuildAndPush(BuildAndPushArgs),
    /// Record an image built elsewhere for the selected locations.
    SetBuildOutput(SetBuildOutputArgs),
    /// Deploy the session's selected locations and wait until they have loaded.
    #[command(visible_alias = "finish")]
    Deploy(DeployArgs),
    /// Run start, build-and-push and deploy in one go.
    Up(UpArgs),
    /// Show the session: one row per location.
    Status(StatusArgs),
    /// Post the session's deploy report as a pull-request comment (GitHub) or merge-request
    /// note (GitLab), updating the same comment on every run.
    ///
    /// The token is the one CI provides: GITHUB_TOKEN on GitHub (the workflow needs
    /// `permissions: pull-requests: write`); on GitLab, GITLAB_TOKEN, a project access token
    /// with the `api` scope and the Reporter role (GitLab does not let CI_JOB_TOKEN write
    /// notes). It goes only to the API CI names (GITHUB_API_URL, CI_API_V4_URL) and is never
    /// printed. Outside a pull or merge request, or without a token, notify says so and exits 0
    /// (exit 3 with --strict).
    Notify(NotifyArgs),
    /// List, select or deselect the session's locations.
    #[command(subcommand)]
    Locations(LocationsCommand),
    /// Work on whole sessions.
    #[command(subcommand)]
    State(StateCommand),
    /// Validate the configuration, and the connection to Dagster+ unless --offline.
    Check(CheckArgs),
    /// Push container images without a Docker daemon.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Print, create, close or delete the branch deployment of the current pull request.
    BranchDeployment(BranchDeploymentArgs),
    /// Manage API tokens for CI.
    #[command(subcommand)]
    CiApiToken(CiApiTokenCommand),
    /// Scaffold build.yaml files, Dockerfiles and a CI workflow that runs dagster-deploy.
    Configure(ConfigureArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// Where the organization, deployment and token come from.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct CloudArgs {
    /// Dagster+ organization name.
    #[arg(long, short = 'o', env = env::ORGANIZATION, value_name = "NAME")]
    pub(crate) organization: Option<String>,

    /// Deployment to deploy to, and the base of branch deployments.
    #[arg(
        long,
        short = 'd',
        visible_alias = "base-deployment-name",
        env = env::DEPLOYMENT,
        value_name = "NAME"
    )]
    pub(crate) deployment: Option<String>,

    /// Dagster+ API token; prefer the env var, which no process listing shows.
    #[arg(long, short = 'u', visible_alias = "user-token", value_name = "TOKEN")]
    pub(crate) api_token: Option<String>,
}

/// The configuration to read.
#[derive(Debug, Args, Clone)]
pub(crate) struct ConfigArgs {
    /// The dg project or workspace directory.
    #[arg(
        long,
        visible_alias = "target-path",
        default_value = ".",
        value_name = "DIR"
    )]
    pub(crate) project_dir: PathBuf,

    /// Use this dagster_cloud.yaml instead of a dg project.
    #[arg(long, value_name = "PATH")]
    pub(crate) dagster_cloud_yaml: Option<PathBuf>,

    /// Like --dagster-cloud-yaml, but a relative path is taken from --project-dir.
    #[arg(long, value_name = "PATH", conflicts_with = "dagster_cloud_yaml")]
    pub(crate) dagster_cloud_yaml_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DeploymentType {
    /// The deployment given with --deployment.
    Full,
    /// The branch deployment of the current pull or merge request.
    Branch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SnapshotBaseCondition {
    OnCreate,
    OnUpdate,
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    #[command(flatten)]
    pub(crate) cloud: CloudArgs,
    /// Deploy to the full deployment or to a branch deployment. Guessed from the git branch when absent.
    #[arg(long, value_enum)]
    pub(crate) deployment_type: Option<DeploymentType>,
    /// The same as --deployment-type branch.
    #[arg(
        long,
        conflicts_with = "deployment_type",
        overrides_with = "no_require_branch_deployment"
    )]
    pub(crate) require_branch_deployment: bool,
    /// Without --deployment-type, do not guess from the git branch: deploy to the branch
    /// deployment in a pull or merge request, else to --deployment.
    #[arg(
        long,
        conflicts_with = "deployment_type",
        overrides_with = "require_branch_deployment"
    )]
    pub(crate) no_require_branch_deployment: bool,
    /// Remove a previous session from the state directory first (the default).
    #[arg(long, overrides_with = "no_clean_statedir")]
    pub(crate) clean_statedir: bool,
    /// Keep the previous session's other locations; the named ones are opened anew.
    #[arg(long, overrides_with = "clean_statedir")]
    pub(crate) no_clean_statedir: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub(crate) yes: bool,
    /// Only these locations (repeatable).
    #[arg(long = "location-name", value_name = "NAME")]
    pub(crate) location_names: Vec<String>,
    /// The URL of the code at this commit, shown in Dagster+.
    #[arg(long, value_name = "URL")]
    pub(crate) git_url: Option<String>,
    /// The commit being deployed.
    #[arg(long, value_name = "SHA")]
    pub(crate) commit_hash: Option<String>,
    /// The URL of this CI run, linked from the status report.
    #[arg(long, value_name = "URL")]
    pub(crate) status_url: Option<String>,
    /// When a branch deployment takes its snapshot of the base deployment.
    #[arg(long, value_enum)]
    pub(crate) snapshot_base_condition: Option<SnapshotBaseCondition>,
    /// Skip the configuration and connection checks.
    #[arg(long)]
    pub(crate) skip_validation: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Builder {
    /// Add the project's files as one layer on top of --base-image; no Docker daemon needed.
    Native,
    /// Run `docker build` and `docker push`, as the reference does.
    Docker,
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// How to build the images.
    #[arg(long, value_enum, default_value = "native")]
    pub(crate) builder: Builder,
    /// The image the code layer goes on top of (native builder). With a uv.lock (the project's
    /// or its uv workspace's), a plain Python image: the locked packages become a layer of their
    /// own. Without one, it must hold the dependencies.
    #[arg(long, value_name = "REF")]
    pub(crate) base_image: Option<String>,
    /// Do not make a dependency layer from uv.lock: the base image holds the dependencies
    /// (native builder).
    #[arg(long)]
    pub(crate) no_deps_layer: bool,
    /// The uv program that installs the dependency layer (native builder).
    #[arg(long, env = env::UV, default_value = "uv", value_name = "PROGRAM")]
    pub(crate) uv: PathBuf,
    /// Where built dependency layers are kept between builds (native builder).
    /// [default: $XDG_CACHE_HOME/dagster-deploy, or ~/.cache/dagster-deploy]
    #[arg(long, env = env::CACHE_DIR, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// The platform to take from a multi-platform base image.
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH[/VARIANT]")]
    pub(crate) platform: String,
    /// Where the code goes in the image (native builder).
    #[arg(long, default_value = "/app", value_name = "DIR")]
    pub(crate) workdir: String,
    /// The image tag; derived from the content when absent.
    #[arg(long, visible_alias = "image-tag", value_name = "TAG")]
    pub(crate) tag: Option<String>,
    /// Registries to reach over plain HTTP (loopback registries always may).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub(crate) insecure_registries: Vec<String>,
    /// Seconds each `docker build` and `docker push` may run (docker builder).
    #[arg(
        long,
        env = env::BUILD_TIMEOUT,
        default_value = "3600",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub(crate) build_timeout: u64,
}

#[derive(Debug, Args)]
pub(crate) struct BuildAndPushArgs {
    #[command(flatten)]
    pub(crate) build: BuildArgs,
    /// Only these locations (repeatable).
    #[arg(long = "location-name", value_name = "NAME")]
    pub(crate) location_names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct SetBuildOutputArgs {
    /// The tag of the image; the image is `<registry>:<tag>`.
    #[arg(long, value_name = "TAG")]
    pub(crate) image_tag: String,
    /// Only these locations (repeatable).
    #[arg(long = "location-name", value_name = "NAME")]
    pub(crate) location_names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// Only these locations (repeatable).
    #[arg(long = "location-name", value_name = "NAME")]
    pub(crate) location_names: Vec<String>,
    /// Seconds to wait for the locations to load; 0 deploys without waiting. [default: 3600]
    #[arg(long, env = env::LOCATION_LOAD_TIMEOUT, value_name = "SECONDS")]
    pub(crate) location_load_timeout: Option<u64>,
    /// Seconds to wait for a running agent; 0 means the default (120, or 900 for Serverless).
    #[arg(
        long,
        visible_alias = "agent-timeout",
        env = env::AGENT_HEARTBEAT_TIMEOUT,
        value_name = "SECONDS"
    )]
    pub(crate) agent_heartbeat_timeout: Option<u64>,
    /// Print the endpoint and the exact deploy document, and send nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Leave out every location whose document the deployment already runs (same image, code
    /// source, container context...; a new commit alone is not a change) and record it as
    /// unchanged.
    #[arg(long)]
    pub(crate) skip_unchanged: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    pub(crate) start: StartArgs,
    #[command(flatten)]
    pub(crate) build: BuildArgs,
    /// Seconds to wait for the locations to load; 0 deploys without waiting. [default: 3600]
    #[arg(long, env = env::LOCATION_LOAD_TIMEOUT, value_name = "SECONDS")]
    pub(crate) location_load_timeout: Option<u64>,
    /// Seconds to wait for a running agent; 0 means the default.
    #[arg(
        long,
        visible_alias = "agent-timeout",
        env = env::AGENT_HEARTBEAT_TIMEOUT,
        value_name = "SECONDS"
    )]
    pub(crate) agent_heartbeat_timeout: Option<u64>,
    /// Leave out of the deploy every location the deployment already runs unchanged.
    #[arg(long)]
    pub(crate) skip_unchanged: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// One JSON object per line, the state file as stored (as the reference prints it).
    Json,
    /// The markdown report CI systems show as a job summary.
    Markdown,
    /// An aligned text table.
    Table,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// How to print the status.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) output_format: OutputFormat,
}

/// The flags of `notify`.
#[derive(Debug, Args)]
pub(crate) struct NotifyArgs {
    /// The project directory (a git checkout), where the pull request is detected.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub(crate) project_dir: PathBuf,
    /// Fail (exit 3) instead of skipping with a message when there is no pull or merge request
    /// or no token to comment with.
    #[arg(long)]
    pub(crate) strict: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LocationsCommand {
    /// List the session's locations; deselected ones are marked.
    #[command(visible_aliases = ["list-locations", "locations-list"])]
    List,
    /// Select locations for the next set-build-output and deploy.
    #[command(visible_alias = "locations-select")]
    Select(LocationNamesArgs),
    /// Deselect locations: they are skipped by set-build-output and deploy.
    #[command(visible_alias = "locations-deselect")]
    Deselect(LocationNamesArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LocationNamesArgs {
    /// Location names.
    #[arg(required = true, value_name = "NAME")]
    pub(crate) names: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StateCommand {
    /// Merge copies of the session made by parallel CI jobs back into --statedir.
    Merge(StateMergeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StateMergeArgs {
    /// The state directories of the parallel jobs.
    #[arg(required = true, value_name = "DIR")]
    pub(crate) dirs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    #[command(flatten)]
    pub(crate) cloud: CloudArgs,
    /// Check the configuration only; do not contact Dagster+.
    #[arg(long, conflicts_with = "dagster_cloud_connect_check")]
    pub(crate) offline: bool,
    /// What a configuration problem does: fail, only warn, or skip the check.
    #[arg(long, value_enum, default_value = "error", value_name = "ACTION")]
    pub(crate) dagster_cloud_yaml_check: CheckAction,
    /// What a failed connection check does; `skip` is the same as --offline.
    #[arg(long, value_enum, value_name = "ACTION")]
    pub(crate) dagster_cloud_connect_check: Option<CheckAction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CheckAction {
    /// Report the problem and fail.
    Error,
    /// Report the problem and carry on.
    Warn,
    /// Do not check.
    Skip,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ImageCommand {
    /// Push an image to a registry: `image push oci:./layout:v1 127.0.0.1:5000/team/app:v1`.
    Push(ImagePushArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ImagePushArgs {
    /// The image to push. The help text is given as an attribute so that it keeps its brackets
    /// (as a doc comment, rustdoc would read `[:TAG]` as a link).
    #[arg(
        help = "oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, or an image in a registry"
    )]
    pub(crate) source: String,
    /// The destination image reference, with a tag.
    pub(crate) destination: String,
    /// Push only this platform of a multi-platform image, as a single-platform image; children
    /// of the index that the source lacks (as in `docker save` output) are then no obstacle.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", conflicts_with = "all")]
    pub(crate) platform: Option<String>,
    /// Push the whole image index with every platform, byte for byte (the default).
    #[arg(long)]
    pub(crate) all: bool,
    /// Registries to reach over plain HTTP (loopback registries always may).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub(crate) insecure_registries: Vec<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BranchDeploymentArgs {
    #[command(subcommand)]
    pub(crate) command: Option<BranchDeploymentCommand>,
    /// The project directory (a git checkout).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub(crate) project_dir: PathBuf,
    /// The project directory, given as the reference's positional argument.
    #[arg(value_name = "PROJECT_DIR", conflicts_with = "project_dir")]
    pub(crate) project_dir_positional: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) cloud: CloudArgs,
    /// Mark the branch deployment closed (the pull request was closed or merged).
    #[arg(long, overrides_with = "no_mark_closed")]
    pub(crate) mark_closed: bool,
    /// Do not mark it closed (the default).
    #[arg(long, overrides_with = "mark_closed")]
    pub(crate) no_mark_closed: bool,
    /// Only look the name up; create or update nothing.
    #[arg(long, conflicts_with = "mark_closed", overrides_with = "no_read_only")]
    pub(crate) read_only: bool,
    /// Create or update it (the default).
    #[arg(long, overrides_with = "read_only")]
    pub(crate) no_read_only: bool,
    /// When a branch deployment takes its snapshot of the base deployment.
    #[arg(long, value_enum)]
    pub(crate) snapshot_base_condition: Option<SnapshotBaseCondition>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BranchDeploymentCommand {
    /// Delete a branch deployment. Refuses any other kind of deployment.
    Delete(BranchDeploymentDeleteArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BranchDeploymentDeleteArgs {
    /// The branch deployment's name.
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) cloud: CloudArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CiApiTokenCommand {
    /// Create an agent token for CI and print it on stdout, alone, so it can be piped.
    Create(CiApiTokenCreateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CiApiTokenCreateArgs {
    /// What the token is for.
    #[arg(long)]
    pub(crate) description: Option<String>,
    #[command(flatten)]
    pub(crate) cloud: CloudArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GitProvider {
    /// A GitHub Actions workflow (.github/workflows/dagster-plus-deploy.yml).
    Github,
    /// A GitLab CI pipeline (.gitlab-ci.yml).
    Gitlab,
}

#[derive(Debug, Args)]
pub(crate) struct ConfigureArgs {
    /// The CI system to write a workflow for.
    #[arg(long, value_enum)]
    pub(crate) git_provider: GitProvider,
    /// The dg project or workspace directory.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub(crate) project_dir: PathBuf,
    /// The root of the git repository; found from the project directory when absent.
    #[arg(long, value_name = "DIR")]
    pub(crate) git_root: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) cloud: CloudArgs,
    /// The Dagster+ region of the organization (e.g. eu), if not the default.
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// The image repository to push to; defaults to the registry in build.yaml.
    #[arg(long, value_name = "REPOSITORY")]
    pub(crate) registry_url: Option<String>,
    /// How the workflow builds images.
    #[arg(long, value_enum, default_value = "native")]
    pub(crate) builder: Builder,
    /// The base image of the native builder. [default: with a uv.lock, python:X.Y-slim for the
    /// project's Python (.python-version, else requires-python); without one, python:3.12-slim,
    /// which must then be replaced by an image that holds the dependencies]
    #[arg(long, value_name = "REF")]
    pub(crate) base_image: Option<String>,
    /// The Python version of the scaffolded Dockerfile (docker builder).
    #[arg(long, default_value = "3.12", value_name = "X.Y")]
    pub(crate) python_version: String,
    /// The job image of the GitLab pipeline; it needs git, and a docker CLI for --builder docker.
    /// [default: buildpack-deps:bookworm-scm, or docker:27 for --builder docker]
    #[arg(long, value_name = "IMAGE")]
    pub(crate) gitlab_image: Option<String>,
    /// Do not ask: keep files that exist (unless --force).
    #[arg(short, long)]
    pub(crate) yes: bool,
    /// Rewrite files configure generated before, and replace a build.yaml's registry with
    /// --registry-url; files it did not generate are never overwritten.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// Parses the command line (as translated by `reference.rs`), keeping the raw matches so
/// settings can tell a flag from an env var.
pub(crate) fn parse(args: Vec<std::ffi::OsString>) -> (Cli, clap::ArgMatches) {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches_from(args);
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => (cli, matches),
        Err(error) => error.exit(),
    }
}
