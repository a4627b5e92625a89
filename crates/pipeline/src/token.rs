//! API tokens for CI: an agent token minted for a CI system's secrets.

use dagster_deploy_cloud_client::CloudClient;
use dagster_deploy_types::Secret;

use crate::error::Result;

/// Creates an agent token described as `description`; it is shown nowhere, only returned.
pub async fn create_ci_token(client: &CloudClient, description: Option<&str>) -> Result<Secret> {
    Ok(client.create_agent_token(description).await?)
}
