//! The end-to-end test binary: the whole pipeline through the real `dagster-deploy` binary,
//! against the local Dagster+ emulator, a real OCI registry and real git repositories, and
//! mixed pipelines with the reference CLI.

mod branch;
mod configure;
mod emulator;
mod image_push;
mod interop;
mod native;
mod pipeline;
mod real_python;
mod support;
