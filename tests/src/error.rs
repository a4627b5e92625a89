//! The crate's one error type: what can go wrong when starting the emulator or the real
//! agent (the registry harness is the registry crate's). Request handling never fails with
//! these; it answers with GraphQL errors instead.

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
    /// The real agent cannot run on this machine (a tool or a privilege is missing).
    #[error("the real agent cannot start: {reason}")]
    AgentSetup {
        /// What is missing and how to get it.
        reason: String,
    },
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
