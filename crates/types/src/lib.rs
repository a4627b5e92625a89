//! The vocabulary the dagster-deploy libraries share, defined once: each concept here is used by
//! more than one library, which may depend on this crate but never on each other.
//!
//! - [`LocationName`]: the one rule for code location names (they become file names).
//! - [`ImageRef`] and [`Registry`]: the image-reference grammar, for a full reference and for
//!   the repository a location's images are pushed to.
//! - [`GitMetadata`] and [`PullRequestStatus`]: the git facts recorded at `start`, sent with a
//!   deploy and with a branch deployment.
//! - [`Secret`]: the one type that holds a token or password and never shows it.
//!
//! No I/O and no policy live here: values and the rules that make them valid. Each library
//! re-exports what its own API uses, so an embedder need not name this crate.

mod git;
mod image;
mod location_name;
mod secret;

pub use git::{GitMetadata, PullRequestStatus};
pub use image::{
    HostProblem, ImageRef, ImageRefProblem, InvalidImageRef, InvalidRegistry, PathProblem,
    Registry, RegistryProblem, split_registry,
};
pub use location_name::{
    InvalidLocationName, LocationName, LocationNameProblem, MAX_LOCATION_NAME_BYTES,
};
pub use secret::Secret;
