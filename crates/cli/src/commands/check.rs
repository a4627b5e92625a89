//! `check`: validate the configuration, and the connection to Dagster+ unless `--offline`.
//! The reference's `--dagster-cloud-yaml-check` and `--dagster-cloud-connect-check` choose, per
//! check, whether a problem fails the command, is only reported, or is not looked for.

use dagster_deploy_pipeline::load_config;

use dagster_deploy_pipeline::start::verify_connection;

use super::printer::Printer;
use super::{Context, config};
use crate::args::{CheckAction, CheckArgs};
use crate::failure::{CommandResult, Failure};
use crate::settings::CloudSettings;

pub(crate) async fn run(context: &Context<'_>, args: &CheckArgs) -> CommandResult {
    let output = context.output;
    let yaml_check = args.dagster_cloud_yaml_check;
    if yaml_check != CheckAction::Skip {
        let result = check_config(context, args);
        carry_on_if_warned(context, result, yaml_check, "--dagster-cloud-yaml-check")?;
    }
    let connect_check = match (args.dagster_cloud_connect_check, args.offline) {
        (Some(action), _) => action,
        (None, true) => CheckAction::Skip,
        (None, false) => CheckAction::Error,
    };
    if connect_check == CheckAction::Skip {
        return Ok(());
    }
    let result = async {
        let settings = CloudSettings::new(&args.cloud, context.matches, output);
        let client = settings.client()?;
        verify_connection(&client, &Printer::new(output)).await?;
        Ok(())
    }
    .await;
    carry_on_if_warned(
        context,
        result,
        connect_check,
        "--dagster-cloud-connect-check",
    )
}

/// Under `warn`, a failed check is reported as a warning and the command carries on.
fn carry_on_if_warned(
    context: &Context<'_>,
    result: CommandResult,
    action: CheckAction,
    flag: &str,
) -> CommandResult {
    match result {
        Err(failure) if action == CheckAction::Warn => {
            context
                .output
                .warn(format!("{} ({flag} warn: carrying on)", failure.render()));
            Ok(())
        }
        other => other,
    }
}

fn check_config(context: &Context<'_>, args: &CheckArgs) -> Result<(), Failure> {
    let output = context.output;
    let loaded = load_config(&config::source(&args.config), None)?;
    output.info(format!(
        "Configuration valid: {} location(s) in {}",
        loaded.yaml.locations().len(),
        loaded.source
    ));
    for location in loaded.yaml.locations() {
        let registry = location
            .registry()
            .map(|registry| registry.as_str().to_owned());
        output.info(format!(
            "  - {} (registry: {})",
            location.name(),
            registry.as_deref().unwrap_or("none")
        ));
    }
    Ok(())
}
