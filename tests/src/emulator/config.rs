//! How the emulator behaves: accepted token, deployments, agent, load time and load errors,
//! response delay, deploy rejection. The same struct is used in-process, built from the
//! binary's flags, and patched at runtime through `POST /__emulator/config` (JSON keys as in
//! the serde attributes below). Runtime-only actions (a burst of 5xx) are not config: see
//! `Emulator::fail_next`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The emulator's behaviour. `Default` is a healthy organization `acme` with a `prod`
/// deployment, any token accepted, a running Hybrid agent and locations that load in 200 ms.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorConfig {
    /// The only accepted `Dagster-Cloud-Api-Token`; `None` accepts any request, even without one.
    pub token: Option<String>,
    /// Organization name; `/<organization>/…` path prefixes are stripped.
    pub organization: String,
    /// Full (non-branch) deployments that exist from the start.
    pub deployments: Vec<String>,
    /// How long a deployed location stays `LOADING` before it is `LOADED`.
    #[serde(rename = "load_time_ms", with = "millis")]
    pub load_time: Duration,
    /// Locations (by name) that load with this Python error instead of a `RepositoryLocation`.
    pub load_errors: BTreeMap<String, LoadError>,
    /// What `agents` reports.
    pub agent: AgentBehaviour,
    /// Whether locations load after `load_time` (simulated) or when a real agent has started
    /// their image's code server (real).
    pub agent_mode: AgentMode,
    /// `currentDeployment.agentType`: `HYBRID` or `SERVERLESS`.
    pub agent_type: String,
    /// Delay added before every GraphQL response (not the control endpoints).
    #[serde(rename = "response_delay_ms", with = "millis")]
    pub response_delay: Duration,
    /// When set, `deployLocations` answers a `PythonError` with this message and deploys nothing.
    pub deploy_error: Option<String>,
    /// `organizationSettings.settings`; `null` makes the reference's connection check fail.
    pub organization_settings: Value,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            token: None,
            organization: "acme".to_owned(),
            deployments: vec!["prod".to_owned()],
            load_time: Duration::from_millis(200),
            load_errors: BTreeMap::new(),
            agent: AgentBehaviour::Running,
            agent_mode: AgentMode::Simulated,
            agent_type: "HYBRID".to_owned(),
            response_delay: Duration::ZERO,
            deploy_error: None,
            organization_settings: serde_json::json!({}),
        }
    }
}

impl EmulatorConfig {
    /// Returns the config with `token` as the only accepted API token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Returns the config with locations loading after `load_time`.
    pub fn with_load_time(mut self, load_time: Duration) -> Self {
        self.load_time = load_time;
        self
    }

    /// Returns the config with `location` failing to load with [`LoadError::import_error`].
    pub fn with_failing_location(mut self, location: impl Into<String>) -> Self {
        let location = location.into();
        let error = LoadError::import_error(&location);
        self.load_errors.insert(location, error);
        self
    }

    /// Returns the config with a real agent: each deployed image is pulled, its code server
    /// started and asked for its repositories (see `RealAgent`).
    pub fn with_real_agent(mut self) -> Self {
        self.agent_mode = AgentMode::Real;
        self
    }

    /// Returns the config with the agent behaving as `agent`.
    pub fn with_agent(mut self, agent: AgentBehaviour) -> Self {
        self.agent = agent;
        self
    }
}

// The token is a secret: Debug shows only whether one is set.
impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("EmulatorConfig")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("organization", &self.organization)
            .field("deployments", &self.deployments)
            .field("load_time", &self.load_time)
            .field("load_errors", &self.load_errors)
            .field("agent", &self.agent)
            .field("agent_mode", &self.agent_mode)
            .field("agent_type", &self.agent_type)
            .field("response_delay", &self.response_delay)
            .field("deploy_error", &self.deploy_error)
            .field("organization_settings", &self.organization_settings)
            .finish()
    }
}

/// What the emulated agent does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentBehaviour {
    /// One agent with status `RUNNING`; deployed locations load.
    #[default]
    Running,
    /// One agent with status `NOT_RUNNING` and an error; locations stay `LOADING`.
    NotRunning,
    /// No agent at all (`agents: []`); locations stay `LOADING`.
    Absent,
}

/// How deployed locations come to load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentMode {
    /// After `load_time`, with the errors of `load_errors`; no image is looked at.
    #[default]
    Simulated,
    /// When a `RealAgent` has pulled the image, started its code server and listed its
    /// repositories; `load_time` and `load_errors` are ignored.
    Real,
}

/// A location load failure, reported as a `PythonError` in `locationOrLoadError`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadError {
    /// The exception message.
    pub message: String,
    /// Traceback lines, each usually ending with a newline.
    pub stack: Vec<String>,
    /// Causes, outermost first.
    #[serde(default)]
    pub error_chain: Vec<ChainedError>,
}

impl LoadError {
    /// The error recorded from the reference run: message `ImportError in <location>`, stack
    /// `["  File x.py\n"]`, no cause.
    pub fn import_error(location: &str) -> Self {
        Self {
            message: format!("ImportError in {location}"),
            stack: vec!["  File x.py\n".to_owned()],
            error_chain: Vec::new(),
        }
    }
}

/// One link of a `PythonError.errorChain`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainedError {
    /// `true` for `raise … from …` ("was caused by"), `false` for implicit chaining.
    pub is_explicit_link: bool,
    /// The cause's message.
    pub message: String,
    /// The cause's traceback lines.
    pub stack: Vec<String>,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let config = EmulatorConfig::default().with_token("s3cr3t-token-value");
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn json_form_uses_milliseconds_and_round_trips() {
        let config = EmulatorConfig::default()
            .with_load_time(Duration::from_millis(250))
            .with_failing_location("marketing");
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["load_time_ms"], 250);
        assert_eq!(
            json["load_errors"]["marketing"]["message"],
            "ImportError in marketing"
        );
        let back: EmulatorConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let error = serde_json::from_str::<EmulatorConfig>(r#"{"load_time": 5}"#).unwrap_err();
        assert!(error.to_string().contains("load_time"), "{error}");
    }
}
