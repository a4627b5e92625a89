//! `deploy --skip-unchanged`: which locations the deployment already runs exactly as this
//! session would deploy them, so that they can be left out of `deployLocations` (each
//! redeploy restarts the location's code server).
//!
//! What the deployment runs is read with the reference's own queries ([`Running::read`]):
//! `CliWorkspaceEntries` (each location's deploy data as the agent runs it) and
//! `CliLocationsAsDocument` (the deployment's locations as one document, in the shape of the
//! deploy document). [`compare`] is the rule, a pure function:
//!
//! 1. The workspace lists the location exactly once, with deploy data that parses as a JSON
//!    object, whose `image` equals the document's `image` (both absent, or null, is equal).
//! 2. The deployment's document lists the location exactly once (by `location_name`), and that
//!    entry equals the document this session would send, once both are normalised: the `git`
//!    key is removed, and at every level of a mapping a key whose value is null or an empty
//!    mapping is removed (Dagster+ stores an absent container context as `{}`, an absent image
//!    as null). The order of keys does not matter; lists are compared in order; strings,
//!    numbers and booleans are compared exactly (`1` and `1.0` differ).
//!
//! Anything else counts as changed, including what cannot be compared: a location the
//! deployment does not have, deploy data that cannot be read, a document without a
//! `locations` list, a name listed twice. A location whose only difference is its git
//! metadata (a new commit that did not touch it) is unchanged: it is not redeployed, so
//! Dagster+ keeps showing the commit of the deploy that last changed it, which is the commit
//! its running code came from. The session records the skip (`unchanged`), naming that
//! commit.

use std::collections::HashMap;

use dagster_deploy_cloud_client::{DeploymentClient, WorkspaceEntry};
use serde_json::{Map, Value};

/// What the deployment runs, by location name. A name listed twice maps to `None` (it cannot
/// be compared).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Running {
    /// Each location's deploy data, parsed (`None`: unreadable, or listed twice).
    deploy_data: HashMap<String, Option<Map<String, Value>>>,
    /// Each location's entry in the deployment's document (`None`: listed twice).
    documents: HashMap<String, Option<Map<String, Value>>>,
}

impl Running {
    /// Reads what `client`'s deployment runs: both queries, sent at once.
    pub async fn read(client: &DeploymentClient) -> dagster_deploy_cloud_client::Result<Running> {
        let (entries, document) =
            tokio::try_join!(client.workspace_entries(), client.locations_as_document())?;
        Ok(Running::new(&entries, &document))
    }

    /// What the deployment runs, from the answers of `CliWorkspaceEntries` and
    /// `CliLocationsAsDocument`.
    pub fn new(entries: &[WorkspaceEntry], locations_document: &Value) -> Running {
        let mut running = Running::default();
        for entry in entries {
            let data = entry
                .serialized_deployment_metadata
                .as_deref()
                .and_then(|text| serde_json::from_str::<Value>(text).ok())
                .and_then(|value| match value {
                    Value::Object(map) => Some(map),
                    _ => None,
                });
            insert_once(&mut running.deploy_data, &entry.location_name, data);
        }
        let listed = locations_document
            .get("locations")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for location in listed {
            let Some(map) = location.as_object() else {
                continue;
            };
            let Some(name) = map.get("location_name").and_then(Value::as_str) else {
                continue;
            };
            let mut normalised = map.clone();
            normalise(&mut normalised);
            running
                .documents
                .entry(name.to_owned())
                .and_modify(|seen| *seen = None)
                .or_insert(Some(normalised));
        }
        running
    }
}

/// Inserts `value` for `name`, or `None` if `name` is already there.
fn insert_once(
    map: &mut HashMap<String, Option<Map<String, Value>>>,
    name: &str,
    value: Option<Map<String, Value>>,
) {
    map.entry(name.to_owned())
        .and_modify(|seen| *seen = None)
        .or_insert(value);
}

/// Whether a location would change if deployed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// The deployment runs exactly this document.
    Unchanged {
        /// The image it runs, if any.
        image: Option<String>,
        /// The commit Dagster+ shows for it (of the deploy that last changed it), if known.
        commit: Option<String>,
    },
    /// Deploying it changes (or may change) what runs; the text says what differs.
    Changed(String),
}

/// Compares the document this session would send for a location with what the deployment
/// runs, by the rule in this module's documentation.
pub fn compare(document: &Value, running: &Running) -> Comparison {
    let changed = |why: &str| Comparison::Changed(why.to_owned());
    let Some(ours) = document.as_object() else {
        return changed("the deploy document is not a mapping");
    };
    let Some(name) = ours.get("location_name").and_then(Value::as_str) else {
        return changed("the deploy document has no location_name");
    };
    let deploy_data = match running.deploy_data.get(name) {
        None => return changed("the deployment does not have this location"),
        Some(None) => {
            return changed("its deploy data in the deployment cannot be read, or is listed twice");
        }
        Some(Some(data)) => data,
    };
    let image =
        |map: &Map<String, Value>| map.get("image").filter(|value| !value.is_null()).cloned();
    if image(deploy_data) != image(ours) {
        return changed("the deployment runs another image");
    }
    let theirs = match running.documents.get(name) {
        None => return changed("the deployment's document does not list this location"),
        Some(None) => return changed("the deployment's document lists this location twice"),
        Some(Some(theirs)) => theirs,
    };
    let mut ours = ours.clone();
    normalise(&mut ours);
    if let Some(key) = first_difference(&ours, theirs) {
        return Comparison::Changed(format!("its document differs at `{key}`"));
    }
    Comparison::Unchanged {
        image: image(deploy_data).and_then(|value| value.as_str().map(str::to_owned)),
        commit: deploy_data
            .get("git_metadata")
            .and_then(|git| git.get("commit_hash"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// Removes `git`, then every null or empty-mapping value, recursively.
fn normalise(document: &mut Map<String, Value>) {
    document.shift_remove("git");
    drop_empty(document);
}

fn drop_empty(map: &mut Map<String, Value>) {
    for value in map.values_mut() {
        if let Value::Object(inner) = value {
            drop_empty(inner);
        }
    }
    map.retain(|_, value| match value {
        Value::Null => false,
        Value::Object(inner) => !inner.is_empty(),
        _ => true,
    });
}

/// The first top-level key (in sorted order) whose values differ, if any.
fn first_difference(ours: &Map<String, Value>, theirs: &Map<String, Value>) -> Option<String> {
    let mut keys: Vec<&String> = ours.keys().chain(theirs.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .find(|key| ours.get(*key) != theirs.get(*key))
        .cloned()
}

#[cfg(test)]
mod tests;
