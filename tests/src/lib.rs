//! Test harnesses for end-to-end tests of `dagster-deploy`: a local, stateful Dagster+ API
//! emulator ([`Emulator`]) and a real OCI registry ([`Registry`]). The tests themselves live in
//! `tests/tests/`; this library holds no test logic.
//!
//! # The emulator
//!
//! [`Emulator`] serves the GraphQL operations of the deploy flow on `127.0.0.1:<free port>`:
//! `POST /graphql` (organization scope) and `POST /<deployment>/graphql` (deployment scope; the
//! `Dagster-Cloud-Deployment` header also selects a deployment on `/graphql`). A path prefix
//! equal to the organization name (`/acme/prod/graphql`) is accepted too. It reads only the
//! root fields of the document and answers each with a fixed superset of the fields clients
//! select, always with `__typename` on unions. Deployment-scoped fields without a deployment,
//! or for an unknown one, answer a GraphQL error.
//!
//! Behaviour, all in [`EmulatorConfig`] (also `POST /__emulator/config` with a JSON object that
//! is merged key by key onto the current config):
//! * `token`: the only accepted `Dagster-Cloud-Api-Token`. A wrong or missing token gets
//!   **HTTP 200 with `{"errors":[{"message":"Unauthorized: …","extensions":{"code":"UNAUTHORIZED"}}]}`**
//!   and no `data`, for every operation (we never answer a typed `UnauthorizedError`).
//! * `load_time_ms`: after `deployLocations`, each location is `LOADING`, then `LOADED` with a
//!   `RepositoryLocation`, or with a `PythonError` for names in `load_errors`.
//! * `agent`: `running`, `not_running` or `absent`; without a running agent nothing loads.
//! * `response_delay_ms`, `deploy_error`, `agent_type`, `deployments`, `organization_settings`.
//!
//! A burst of HTTP failures is an action, not config: [`Emulator::fail_next`] or
//! `POST /__emulator/fail-next {"count": 2, "status": 503, "retry_after_seconds": null}`;
//! likewise a run of maintenance answers (HTTP 200, `{"maintenance": {…}}`):
//! [`Emulator::maintenance_next`] or `POST /__emulator/maintenance-next {"count": 1,
//! "retry_interval_seconds": 0.1}`.
//!
//! Every GraphQL request is recorded ([`RecordedRequest`]: path, deployment, operation name,
//! root fields, variables, headers with the token shown as [`REDACTED`], response status,
//! arrival time): [`Emulator::requests`] or `GET /__emulator/requests` (`DELETE` clears).
//! What was deployed: [`Emulator::deployed_locations`] / `GET /__emulator/locations`; branch
//! deployments: [`Emulator::deployments`] / `GET /__emulator/deployments`.
//!
//! An end-to-end test of the CLI then reads:
//!
//! ```no_run
//! use dagster_deploy_e2e::{Emulator, EmulatorConfig};
//! use std::time::Duration;
//!
//! let emulator = Emulator::start_blocking(
//!     EmulatorConfig::default()
//!         .with_token("test-token")
//!         .with_load_time(Duration::from_millis(200))
//!         .with_failing_location("marketing"),
//! );
//! // Run `dagster-deploy …` with DAGSTER_CLOUD_URL=emulator.url() and
//! // DAGSTER_CLOUD_API_TOKEN=test-token, then assert on what the server saw:
//! let deploys = emulator.requests_for("deployLocations");
//! # let _ = deploys;
//! let deployed = emulator.deployed_locations();
//! # let _ = deployed;
//! ```
//!
//! The same server runs as a binary, `dagster-cloud-emulator` (see its `--help`), which prints
//! `listening on http://127.0.0.1:PORT` as its first line of stdout.
//!
//! With `agent_mode: "real"` ([`AgentMode::Real`], the binary's `--real-agent`), locations do
//! not load after `load_time` but when a [`RealAgent`] has pulled the deployed image, started
//! its code server as the Dagster+ agent would and listed its repositories: `LOADED` with a
//! `RepositoryLocation`, or with the code server's own error as a `PythonError`.
//!
//! # The real agent
//!
//! [`RealAgent`] plays the Hybrid agent's user-code launcher for images in loopback registries;
//! see its module documentation for what it does like the agent, what differs, and what it
//! needs (root, util-linux, overlayfs).
//!
//! # The forge stub
//!
//! [`ForgeStub`] stands in for the GitHub and GitLab REST calls of `notify` and of the
//! branch-deployment avatar lookup, with comments kept in memory and every request recorded;
//! see its module documentation for the routes.
//!
//! # The registry
//!
//! [`Registry::start`] runs `/usr/bin/docker-registry` on a free loopback port (plain HTTP, no
//! auth) with storage in a temp dir and kills it on drop; [`Registry::host`] is the
//! `127.0.0.1:PORT` to put in image references.

mod agent;
mod emulator;
mod error;
mod forge_stub;
mod registry;

pub use agent::{CodeServer, DEFAULT_LAYER_CACHE, LoadOutcome, RealAgent, RealAgentConfig};
pub use emulator::{
    AgentBehaviour, AgentMode, ChainedError, DeployedLocation, DeploymentRecord, Emulator,
    EmulatorConfig, LoadError, REDACTED, RecordedRequest,
};
pub use error::{Error, Result};
pub use forge_stub::{
    ForgeStub, ForgeStubConfig, StubComment, StubRequest, github_thread, gitlab_thread,
};
pub use registry::{DOCKER_REGISTRY_BINARY, Registry};
