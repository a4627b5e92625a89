//! `check`: validate the configuration, and the connection to Dagster+ unless `--offline`.

use dagster_deploy_pipeline::load_config;

use dagster_deploy_pipeline::start::verify_connection;

use super::printer::Printer;
use super::{Context, config};
use crate::args::CheckArgs;
use crate::failure::CommandResult;
use crate::settings::CloudSettings;

pub(crate) async fn run(context: &Context<'_>, args: &CheckArgs) -> CommandResult {
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
    if args.offline {
        return Ok(());
    }
    let settings = CloudSettings::new(&args.cloud, context.matches, output);
    let client = settings.client()?;
    verify_connection(&client, &Printer::new(output)).await?;
    Ok(())
}
