//! The one integration-test binary of the `dagster-deploy` CLI: it runs the real binary
//! (`CARGO_BIN_EXE_dagster-deploy`) in a sandbox per test, with a clean environment. End-to-end
//! tests of the whole pipeline against a registry live in the top-level `tests/` crate.

mod support;

mod docker_builder;
mod help;
mod hostile_text;
mod outcomes;
mod outputs;
mod sessions;
mod settings;
