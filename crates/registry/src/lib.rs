//! OCI image pushes and daemonless code-image builds.

pub mod build;
