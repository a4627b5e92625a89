//! `deploy` (alias `finish`): a printer over the deploy stage
//! ([`dagster_deploy_pipeline::deploy`]), which sends one batched deploy of the selected
//! locations, waits for each to load and records each location's own outcome in the session.

use dagster_deploy_pipeline::deploy::{DeployPlan, WaitSettings};
use dagster_deploy_pipeline::{Interruption, deploy_and_wait, leave_out_unchanged, plan_deploy};

use super::Context;
use super::printer::{Printer, count, names_line};
use crate::args::{CloudArgs, DeployArgs};
use crate::failure::{CommandResult, Failure};
use crate::output::Output;
use crate::settings::CloudSettings;

pub(crate) async fn run(context: &Context<'_>, args: &DeployArgs) -> CommandResult {
    let output = context.output;
    let session = super::open_session(context)?;
    let printer = Printer::new(output);
    let Some(mut plan) = plan_deploy(&session, &args.location_names, &printer)? else {
        output.info("No locations selected: nothing to deploy");
        return Ok(());
    };
    if args.dry_run && !args.skip_unchanged {
        print_dry_run(output, &plan);
        return Ok(());
    }

    // The session knows the organization URL; the token comes from the environment or config.
    let settings = CloudSettings::new(&CloudArgs::default(), context.matches, output);
    let client = settings.client_for_session(plan.organization_url.clone())?;
    if args.skip_unchanged {
        plan = leave_out_unchanged(plan, &client, &printer).await?;
        if args.dry_run {
            print_dry_run(output, &plan);
            return Ok(());
        }
    }
    // Every setting is resolved before Dagster+ is told anything.
    let wait = WaitSettings {
        load_timeout: settings.load_timeout(args.location_load_timeout)?,
        agent_heartbeat_timeout: settings.heartbeat_timeout(args.agent_heartbeat_timeout),
    };
    // From here on, Ctrl-C and SIGTERM are recorded in the session instead of killing the
    // process mid-way.
    let mut interrupt = Interrupt::listen()?;
    let report =
        deploy_and_wait(&session, &plan, &client, &wait, interrupt.recv(), &printer).await?;
    if let Some(failure) = report.failure() {
        return Err(failure.into());
    }
    let deployed = report.names();
    match (deployed.is_empty(), report.unchanged.len()) {
        (true, _) => output.info(format!(
            "Nothing to deploy to {}: every location is unchanged",
            report.deployment
        )),
        (false, 0) => output.info(format!(
            "Deployed {} to {}",
            names_line(&deployed),
            report.deployment
        )),
        (false, unchanged) => output.info(format!(
            "Deployed {} to {}; {} unchanged",
            names_line(&deployed),
            report.deployment,
            count(unchanged, "location", "locations")
        )),
    }
    Ok(())
}

/// What a dry run prints: the request it would send, on stdout.
pub(crate) fn print_dry_run(output: &Output, plan: &DeployPlan) {
    output.info(format!(
        "Dry run: would POST CliDeployLocations to {} with this document:",
        plan.endpoint
    ));
    output.stdout_json(&format!(
        "{}\n",
        serde_json::to_string_pretty(&plan.request_document()).unwrap_or_default()
    ));
}

/// The signal handlers of a deploy: installed before anything is sent, so that an interruption
/// at any later moment is recorded rather than fatal.
pub(crate) struct Interrupt {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Interrupt {
    pub(crate) fn listen() -> Result<Self, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind| {
                signal(kind).map_err(|error| {
                    Failure::internal(format!("cannot listen for interruptions: {error}"))
                })
            };
            Ok(Interrupt {
                interrupt: install(SignalKind::interrupt())?,
                terminate: install(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Interrupt {})
    }

    pub(crate) async fn recv(&mut self) -> Interruption {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Interruption::Interrupt,
                _ = self.terminate.recv() => Interruption::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Interruption::Interrupt
        }
    }
}
