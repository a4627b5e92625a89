//! `dagster-cloud-emulator`: runs the local Dagster+ API emulator until interrupted. The first
//! line of stdout is `listening on http://127.0.0.1:PORT`; behaviour can be changed later
//! through `POST /__emulator/config` and `POST /__emulator/fail-next`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a binary reports its address and startup errors on the terminal"
)]

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use dagster_deploy_e2e::{AgentBehaviour, AgentMode, Emulator, EmulatorConfig, LoadError};

/// A local stand-in for the Dagster+ GraphQL API, for tests and demos.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port to listen on (127.0.0.1 only); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The only accepted Dagster-Cloud-Api-Token; without it any token is accepted.
    #[arg(long, env = "DAGSTER_CLOUD_EMULATOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Organization name (a `/<organization>` path prefix is accepted).
    #[arg(long, default_value = "acme")]
    organization: String,
    /// Full deployments that exist (repeatable).
    #[arg(long = "deployment", default_values_t = ["prod".to_owned()])]
    deployments: Vec<String>,
    /// Milliseconds a deployed location stays LOADING.
    #[arg(long, default_value_t = 200)]
    load_time_ms: u64,
    /// A location that fails to load with an ImportError (repeatable).
    #[arg(long = "fail-location")]
    fail_locations: Vec<String>,
    /// What the agents query reports.
    #[arg(long, value_enum, default_value_t = Agent::Running)]
    agent: Agent,
    /// Load each deployed location for real: pull its image from its (loopback) registry, start
    /// its code server as the Hybrid agent would, report LOADED or the code server's own error.
    /// Needs root; unpacked layers are cached in DAGSTER_DEPLOY_AGENT_CACHE
    /// (default /var/tmp/dagster-deploy-agent-layers).
    #[arg(long)]
    real_agent: bool,
    /// currentDeployment.agentType.
    #[arg(long, default_value = "HYBRID")]
    agent_type: String,
    /// Milliseconds to wait before answering each GraphQL request.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Answer deployLocations with a PythonError carrying this message.
    #[arg(long)]
    deploy_error: Option<String>,
    /// Answer the first N GraphQL requests with --fail-status.
    #[arg(long, default_value_t = 0)]
    fail_first: u32,
    /// HTTP status for --fail-first.
    #[arg(long, default_value_t = 503)]
    fail_status: u16,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Agent {
    Running,
    NotRunning,
    Absent,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = EmulatorConfig {
        token: args.token,
        organization: args.organization,
        deployments: args.deployments,
        load_time: Duration::from_millis(args.load_time_ms),
        load_errors: args
            .fail_locations
            .iter()
            .map(|location| (location.clone(), LoadError::import_error(location)))
            .collect(),
        agent: match args.agent {
            Agent::Running => AgentBehaviour::Running,
            Agent::NotRunning => AgentBehaviour::NotRunning,
            Agent::Absent => AgentBehaviour::Absent,
        },
        agent_mode: if args.real_agent {
            AgentMode::Real
        } else {
            AgentMode::Simulated
        },
        agent_type: args.agent_type,
        response_delay: Duration::from_millis(args.delay_ms),
        deploy_error: args.deploy_error,
        ..EmulatorConfig::default()
    };
    let emulator = match Emulator::try_start_on(config, args.port).await {
        Ok(emulator) => emulator,
        Err(error) => {
            eprintln!("Error: {error}");
            return ExitCode::FAILURE;
        }
    };
    if args.fail_first > 0 {
        emulator.fail_next(args.fail_first, args.fail_status, None);
    }
    println!("listening on {}", emulator.url());
    wait_for_interrupt_or_terminate().await;
    ExitCode::SUCCESS
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM. Without a SIGTERM handler it waits for Ctrl-C only;
/// SIGTERM then ends the process with the default action, which is also fine.
async fn wait_for_interrupt_or_terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
