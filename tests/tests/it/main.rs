//! The end-to-end test binary: the whole pipeline through the real `dagster-deploy` binary,
//! against the local Dagster+ emulator, a real OCI registry and real git repositories, and
//! mixed pipelines with the reference CLI; releases (archives, installers, the Action, the
//! static binary in a chroot) and the generated CI files run step by step.

mod branch;
mod ci_files;
mod ci_runner;
mod citations;
mod compat;
mod configure;
mod dependency_layer;
mod emulator;
mod file_server;
mod image_push;
mod interop;
mod native;
mod notify;
mod pipeline;
mod real_python;
mod release;
mod support;
mod tls_front;
