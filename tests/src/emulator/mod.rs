//! The local Dagster+ API emulator: an axum server on `127.0.0.1`, its [`Emulator`] handle,
//! and the HTTP layer (scoping by path and header, token check, 5xx bursts, delays, request
//! recording, the `/__emulator/*` control endpoints). The GraphQL reading is in `graphql.rs`,
//! the answers in `state.rs` (what a deployment runs, for `deploy --skip-unchanged`, in
//! `running.rs`), the knobs in `config.rs`.

mod config;
mod graphql;
mod running;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

pub use config::{AgentBehaviour, AgentMode, ChainedError, EmulatorConfig, LoadError};
pub use state::{DeployedLocation, DeploymentRecord, RecordedRequest};

use crate::error::{Error, Result};
use graphql::parse_operation;
use state::{FailureBurst, MaintenanceBurst, State, millis_since};

/// The header carrying the API token; its value is never recorded.
const TOKEN_HEADER: &str = "dagster-cloud-api-token";
/// The header naming the deployment of deployment-scoped calls.
const DEPLOYMENT_HEADER: &str = "dagster-cloud-deployment";
/// What recorded requests show instead of secret header values.
pub const REDACTED: &str = "<redacted>";

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the state half-written in a way that matters
    // to a test double, so keep serving.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running emulator. Dropping it stops the server (and joins its thread for
/// [`Emulator::start_blocking`]).
#[derive(Debug)]
pub struct Emulator {
    address: SocketAddr,
    shared: Shared,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Emulator {
    /// Starts the emulator on the current Tokio runtime, on a free `127.0.0.1` port.
    ///
    /// # Panics
    /// If no loopback port can be bound (see [`Emulator::try_start`]).
    pub async fn start(config: EmulatorConfig) -> Emulator {
        Self::try_start(config)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts the emulator on the current Tokio runtime on `127.0.0.1:port` (0 = free port).
    pub async fn try_start_on(config: EmulatorConfig, port: u16) -> Result<Emulator> {
        let (listener, address) = bind(port)?;
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|source| Error::Bind {
                address: address.to_string(),
                source,
            })?;
        let shared = Arc::new(Mutex::new(State::new(config)));
        let (shutdown, stopped) = oneshot::channel();
        tokio::spawn(serve(listener, shared.clone(), stopped));
        Ok(Emulator {
            address,
            shared,
            shutdown: Some(shutdown),
            thread: None,
        })
    }

    /// Starts the emulator on the current Tokio runtime, on a free `127.0.0.1` port.
    pub async fn try_start(config: EmulatorConfig) -> Result<Emulator> {
        Self::try_start_on(config, 0).await
    }

    /// Starts the emulator on its own thread and runtime, for synchronous tests.
    ///
    /// # Panics
    /// If no loopback port can be bound or the runtime cannot be built.
    pub fn start_blocking(config: EmulatorConfig) -> Emulator {
        Self::try_start_blocking(config).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts the emulator on its own thread and runtime, for synchronous tests.
    pub fn try_start_blocking(config: EmulatorConfig) -> Result<Emulator> {
        let (listener, address) = bind(0)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let shared = Arc::new(Mutex::new(State::new(config)));
        let (shutdown, stopped) = oneshot::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("dagster-cloud-emulator-{}", address.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    // Conversion cannot fail for a listener we just bound; if it did,
                    // requests would fail to connect, which the test reports.
                    if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                        serve(listener, thread_shared, stopped).await;
                    }
                });
            })
            .map_err(Error::Runtime)?;
        Ok(Emulator {
            address,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The organization URL, e.g. `http://127.0.0.1:41234` (use as `DAGSTER_CLOUD_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The socket address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every GraphQL request received so far, oldest first (control endpoints excluded).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    /// The recorded requests whose first root field is `root_field`, oldest first.
    pub fn requests_for(&self, root_field: &str) -> Vec<RecordedRequest> {
        lock(&self.shared)
            .requests
            .iter()
            .filter(|request| request.root_field.as_deref() == Some(root_field))
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared).requests.clear();
    }

    /// The current configuration.
    pub fn config(&self) -> EmulatorConfig {
        lock(&self.shared).config.clone()
    }

    /// Replaces the configuration; it applies to the next request (and to load status of
    /// locations already deployed).
    pub fn set_config(&self, config: EmulatorConfig) {
        lock(&self.shared).set_config(config);
    }

    /// Changes part of the configuration.
    pub fn update_config(&self, change: impl FnOnce(&mut EmulatorConfig)) {
        let mut state = lock(&self.shared);
        let mut config = state.config.clone();
        change(&mut config);
        state.set_config(config);
    }

    /// Answers the next `count` GraphQL requests with HTTP `status` (e.g. 502, 503), with a
    /// `Retry-After` header when `retry_after_seconds` is set.
    pub fn fail_next(&self, count: u32, status: u16, retry_after_seconds: Option<u64>) {
        lock(&self.shared).failure_burst = FailureBurst {
            remaining: count,
            status,
            retry_after_seconds,
        };
    }

    /// Answers the next `count` GraphQL requests with HTTP 200 and a maintenance body
    /// `{"maintenance": {"message", "timeout": 3600, "retry_interval"}}` (after any failure
    /// burst), as Dagster+ does during maintenance.
    pub fn maintenance_next(&self, count: u32, retry_interval_seconds: f64) {
        lock(&self.shared).maintenance = MaintenanceBurst {
            remaining: count,
            retry_interval_seconds,
        };
    }

    /// The locations deployed so far, by deployment then name.
    pub fn deployed_locations(&self) -> Vec<DeployedLocation> {
        lock(&self.shared).deployed_locations()
    }

    /// The deployments of the organization (full and branch), by name.
    pub fn deployments(&self) -> Vec<DeploymentRecord> {
        lock(&self.shared).deployments()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The server may already be gone; nothing to do then.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds a non-blocking loopback listener (`port` 0: a free one); the forge stub binds with it too.
pub(crate) fn bind(port: u16) -> Result<(std::net::TcpListener, SocketAddr)> {
    let requested = SocketAddr::from(([127, 0, 0, 1], port));
    let bind_error = |source| Error::Bind {
        address: requested.to_string(),
        source,
    };
    let listener = std::net::TcpListener::bind(requested).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let address = listener.local_addr().map_err(bind_error)?;
    Ok((listener, address))
}

async fn serve(listener: tokio::net::TcpListener, shared: Shared, stopped: oneshot::Receiver<()>) {
    let router = Router::new()
        .route(
            "/__emulator/requests",
            get(control_requests).delete(control_clear_requests),
        )
        .route("/__emulator/config", post(control_config))
        .route("/__emulator/fail-next", post(control_fail_next))
        .route(
            "/__emulator/maintenance-next",
            post(control_maintenance_next),
        )
        .route("/__emulator/locations", get(control_locations))
        .route("/__emulator/deployments", get(control_deployments))
        .fallback(graphql_endpoint)
        .with_state(shared);
    // A serve error means the listener died; the handle's owner sees connection failures.
    let _ = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await;
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_body(message: &str) -> Value {
    json!({"errors": [{"message": message}]})
}

async fn control_requests(AxumState(shared): AxumState<Shared>) -> Response {
    let requests = lock(&shared).requests.clone();
    json_response(StatusCode::OK, &json!(requests))
}

async fn control_clear_requests(AxumState(shared): AxumState<Shared>) -> Response {
    lock(&shared).requests.clear();
    json_response(StatusCode::OK, &json!({"ok": true}))
}

async fn control_locations(AxumState(shared): AxumState<Shared>) -> Response {
    let locations = lock(&shared).deployed_locations();
    json_response(StatusCode::OK, &json!(locations))
}

async fn control_deployments(AxumState(shared): AxumState<Shared>) -> Response {
    let deployments = lock(&shared).deployments();
    json_response(StatusCode::OK, &json!(deployments))
}

/// Applies a JSON merge of the body's top-level keys onto the current config.
async fn control_config(AxumState(shared): AxumState<Shared>, body: Bytes) -> Response {
    let patch: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(error) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": format!("POST /__emulator/config needs a JSON object: {error}")}),
            );
        }
    };
    let mut state = lock(&shared);
    let mut merged = match serde_json::to_value(&state.config) {
        Ok(Value::Object(merged)) => merged,
        _ => Map::new(),
    };
    merged.extend(patch);
    match serde_json::from_value::<EmulatorConfig>(Value::Object(merged)) {
        Ok(config) => {
            state.set_config(config);
            json_response(StatusCode::OK, &json!({"ok": true}))
        }
        Err(error) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": format!("POST /__emulator/config: {error}")}),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNext {
    count: u32,
    #[serde(default = "default_failure_status")]
    status: u16,
    #[serde(default)]
    retry_after_seconds: Option<u64>,
}

fn default_failure_status() -> u16 {
    503
}

async fn control_fail_next(AxumState(shared): AxumState<Shared>, body: Bytes) -> Response {
    match serde_json::from_slice::<FailNext>(&body) {
        Ok(request) => {
            lock(&shared).failure_burst = FailureBurst {
                remaining: request.count,
                status: request.status,
                retry_after_seconds: request.retry_after_seconds,
            };
            json_response(StatusCode::OK, &json!({"ok": true}))
        }
        Err(error) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": format!("POST /__emulator/fail-next needs {{\"count\": N, \"status\": 503, \"retry_after_seconds\": null}}: {error}")}),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceNext {
    count: u32,
    #[serde(default)]
    retry_interval_seconds: f64,
}

async fn control_maintenance_next(AxumState(shared): AxumState<Shared>, body: Bytes) -> Response {
    match serde_json::from_slice::<MaintenanceNext>(&body) {
        Ok(request) => {
            lock(&shared).maintenance = MaintenanceBurst {
                remaining: request.count,
                retry_interval_seconds: request.retry_interval_seconds,
            };
            json_response(StatusCode::OK, &json!({"ok": true}))
        }
        Err(error) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": format!("POST /__emulator/maintenance-next needs {{\"count\": N, \"retry_interval_seconds\": 0.1}}: {error}")}),
        ),
    }
}

#[derive(Deserialize)]
struct GraphqlBody {
    query: String,
    #[serde(default)]
    variables: Option<Map<String, Value>>,
    #[serde(default, rename = "operationName")]
    operation_name: Option<String>,
}

/// Splits `/[org/][deployment/]graphql` into the deployment segment, if any.
fn deployment_from_path(path: &str, organization: &str) -> Option<Option<String>> {
    let mut segments: Vec<&str> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    if segments.last() != Some(&"graphql") {
        return None;
    }
    segments.pop();
    if segments.first() == Some(&organization) {
        segments.remove(0);
    }
    match segments.as_slice() {
        [] => Some(None),
        [deployment] => Some(Some((*deployment).to_owned())),
        _ => None,
    }
}

fn recorded_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_ascii_lowercase();
            let value = if name == TOKEN_HEADER
                || name == header::AUTHORIZATION.as_str()
                || name == header::COOKIE.as_str()
            {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name, value)
        })
        .collect()
}

async fn graphql_endpoint(
    AxumState(shared): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Instant::now();
    let path = uri.path().to_owned();
    let (organization, delay, started) = {
        let state = lock(&shared);
        (
            state.config.organization.clone(),
            state.config.response_delay,
            state.started,
        )
    };
    let Some(path_deployment) = deployment_from_path(&path, &organization) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &error_body(&format!(
                "No route for {method} {path}: use POST /graphql or POST /<deployment>/graphql"
            )),
        );
    };
    let header_deployment = headers
        .get(DEPLOYMENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .map(str::to_owned);
    let deployment = path_deployment.or(header_deployment);

    let mut record = RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        deployment: deployment.clone(),
        operation_name: None,
        root_field: None,
        root_fields: Vec::new(),
        query: String::new(),
        variables: json!({}),
        headers: recorded_headers(&headers),
        response_status: 200,
        received_at_ms: millis_since(started, received),
    };

    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let parsed_body = if method == Method::POST {
        serde_json::from_slice::<GraphqlBody>(&body).map_err(|error| {
            format!("POST body must be JSON {{\"query\", \"variables\"}}: {error}")
        })
    } else {
        Err(format!("{method} is not supported on {path}: use POST"))
    };
    let operation = parsed_body.as_ref().ok().map(|body| {
        record.query = body.query.clone();
        let variables = body.variables.clone().unwrap_or_default();
        record.variables = Value::Object(variables.clone());
        let operation = parse_operation(&body.query, body.operation_name.as_deref(), &variables);
        record.operation_name = match &operation {
            Ok(operation) => operation.name.clone(),
            Err(_) => None,
        }
        .or_else(|| body.operation_name.clone());
        if let Ok(operation) = &operation {
            record.root_fields = operation
                .root_fields
                .iter()
                .map(|field| field.name.clone())
                .collect();
            record.root_field = record.root_fields.first().cloned();
        }
        operation
    });

    let mut state = lock(&shared);
    let response = respond(
        &mut state,
        &headers,
        deployment.as_deref(),
        parsed_body,
        operation,
        received,
    );
    record.response_status = response.status().as_u16();
    state.requests.push(record);
    let loads = state.take_pending_loads();
    drop(state);
    for load in loads {
        start_real_load(&shared, load);
    }
    response
}

/// Loads one deployed location with the real agent on a thread of its own, then records the
/// outcome (unless the location was deployed again meanwhile).
fn start_real_load(shared: &Shared, load: state::PendingLoad) {
    let agent = lock(shared).real_agent();
    let shared = shared.clone();
    std::thread::spawn(move || {
        let outcome = match agent {
            Ok(agent) => agent.load(&load.document),
            Err(message) => crate::agent::LoadOutcome::Failed(LoadError {
                message,
                stack: Vec::new(),
                error_chain: Vec::new(),
            }),
        };
        lock(&shared).record_real_load(&load, outcome);
    });
}

fn respond(
    state: &mut State,
    headers: &HeaderMap,
    deployment: Option<&str>,
    parsed_body: Result<GraphqlBody, String>,
    operation: Option<Result<graphql::Operation, String>>,
    now: Instant,
) -> Response {
    if state.failure_burst.remaining > 0 {
        state.failure_burst.remaining -= 1;
        let status = StatusCode::from_u16(state.failure_burst.status)
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/html")],
            format!("<html><body><h1>{status}</h1>emulated failure burst</body></html>"),
        )
            .into_response();
        if let Some(seconds) = state.failure_burst.retry_after_seconds
            && let Ok(value) = seconds.to_string().parse()
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    if state.maintenance.remaining > 0 {
        state.maintenance.remaining -= 1;
        return json_response(
            StatusCode::OK,
            &json!({"maintenance": {
                "message": "Dagster+ is down for maintenance (emulated).",
                "timeout": 3600,
                "retry_interval": state.maintenance.retry_interval_seconds,
            }}),
        );
    }
    if let Some(expected) = &state.config.token {
        let sent = headers.get(TOKEN_HEADER).map(|value| value.as_bytes());
        if sent != Some(expected.as_bytes()) {
            // Documented choice: HTTP 200 with a top-level GraphQL error, no data.
            return json_response(
                StatusCode::OK,
                &json!({"errors": [{
                    "message": format!(
                        "Unauthorized: the Dagster-Cloud-Api-Token header is missing or is not a valid token for organization {}.",
                        state.config.organization
                    ),
                    "extensions": {"code": "UNAUTHORIZED"},
                }]}),
            );
        }
    }
    if let Err(message) = parsed_body {
        return json_response(StatusCode::BAD_REQUEST, &error_body(&message));
    }
    let operation = match operation {
        Some(Ok(operation)) => operation,
        Some(Err(message)) => return json_response(StatusCode::OK, &error_body(&message)),
        None => return json_response(StatusCode::BAD_REQUEST, &error_body("empty request")),
    };
    let mut data = Map::new();
    let mut errors = Vec::new();
    for field in &operation.root_fields {
        match state.resolve(operation.kind, deployment, field, now) {
            Ok(value) => {
                data.insert(field.response_key.clone(), value);
            }
            Err(message) => {
                data.insert(field.response_key.clone(), Value::Null);
                errors.push(json!({"message": message, "path": [field.response_key]}));
            }
        }
    }
    let mut body = json!({"data": data});
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    json_response(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests;
