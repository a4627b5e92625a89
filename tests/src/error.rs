//! The crate's one error type: what can go wrong when starting the emulator, the registry
//! harness or the real agent. Request handling never fails with these; it answers with GraphQL
//! errors instead.

use std::path::PathBuf;

/// Failures of the test harnesses, each saying what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding the loopback listener failed.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address we tried to bind.
        address: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The emulator's server thread could not build its Tokio runtime.
    #[error("cannot start the emulator runtime: {0}")]
    Runtime(std::io::Error),
    /// The `docker-registry` binary is not installed.
    #[error(
        "docker-registry not found: install it with `apt-get install -y docker-registry` (or run scripts/setup.sh)"
    )]
    RegistryNotFound {
        /// Where we looked for it.
        path: PathBuf,
    },
    /// Writing the registry's temporary directory or config failed.
    #[error("cannot prepare the registry directory {path}: {source}")]
    RegistryDirectory {
        /// The file or directory that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The registry process could not be spawned.
    #[error("cannot run {path}: {source}")]
    RegistrySpawn {
        /// The binary we tried to run.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The registry did not answer `GET /v2/` in time.
    #[error(
        "docker-registry on {address} did not answer GET /v2/ within {seconds} s; its log:\n{log}"
    )]
    RegistryNotReady {
        /// The `host:port` it should listen on.
        address: String,
        /// How long we waited.
        seconds: u64,
        /// The tail of the registry's own log.
        log: String,
    },
    /// The real agent cannot run on this machine (a tool or a privilege is missing).
    #[error("the real agent cannot start: {reason}")]
    AgentSetup {
        /// What is missing and how to get it.
        reason: String,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
