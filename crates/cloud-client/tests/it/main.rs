//! Integration tests of the public API against a mockito stand-in for Dagster+.
//!
//! One module per area: the deploy document against the reference's recording, each
//! operation, the error and retry paths, and the wait-for-load loop.

mod answers;
mod document;
mod errors;
mod operations;
mod support;
mod wait;
