//! A Python dependency layer for a container image, built without Docker: the packages a
//! project's `uv.lock` pins, installed by uv as wheels for the base image's platform and Python
//! version (read from the image, never run), as a virtual environment whose `python` and
//! console scripts run with the image's interpreter.
//!
//! The flow: [`find_lock`] finds the project's lock (its own or its uv workspace root's);
//! [`TargetPython::detect`] reads the base image's interpreter, version and platform through
//! [`BaseFiles`]; [`build_deps_layer`] exports the lock with uv, keys the layer by content
//! ([`LayerKey`]), reuses a cached layer with that key or installs the wheels and writes a
//! reproducible gzipped layer, and says which environment variables the image needs
//! ([`ImageEnv`]). Pushing the layer and writing the image config are the caller's.
//!
//! This crate owns the outside system uv: it runs it with argument vectors and a time limit
//! ([`Uv`]), and turns its failures into an [`Error`] whose [`Error::help`] says what to do.
//! It prints nothing; progress goes to a callback ([`Progress`]).
//!
//! Not here: building from source (packages without a wheel for the image are an error,
//! [`Error::NeedsBuild`]), compiling bytecode (the image's interpreter does it on first import),
//! and installing the project itself (its code is the code layer's).

mod build;
mod error;
mod key;
mod layer;
mod lock;
mod requested;
mod target;
mod uv;
mod venv;

pub use build::{
    DEFAULT_VENV_DIR, DepsLayer, DepsRequest, ImageEnv, LayerCache, Progress, build_deps_layer,
    check_venv_dir, deps_layer_key,
};
pub use error::{Error, Result};
pub use key::{LayerKey, RECIPE_VERSION};
pub use lock::{LockedProject, find_lock};
pub use requested::{RequestedPython, requested_python};
pub use target::{
    Architecture, BaseEntry, BaseFiles, FILES_READ, ImageFacts, Libc, PythonVersion, TargetPython,
    UnpackedRoot,
};
pub use uv::{DEFAULT_TIMEOUT, Uv};
