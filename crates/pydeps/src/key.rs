//! The content key of a dependency layer: everything its bytes depend on, hashed.
//!
//! The key covers the exported requirements (the lock's pinned packages and hashes for the
//! chosen project: `uv export` is a pure function of the lock and that choice, so a
//! development-only change or another workspace member's change leaves it alone), the image's
//! platform, Python version and interpreter, the environment's directory, the files' mtime,
//! the uv version and [`RECIPE_VERSION`]. Equal keys give byte-identical layers, so a layer
//! stored under its key (locally, or in a registry under [`LayerKey::tag`]) can be reused
//! without running the install.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::target::TargetPython;

/// Bumped whenever this crate changes what it puts in a layer, so old keys stop matching.
pub const RECIPE_VERSION: u32 = 1;
/// Hex digits of the key used in [`LayerKey::tag`] (128 bits).
const TAG_HEX_DIGITS: usize = 32;

/// A SHA-256 over everything a dependency layer's bytes depend on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LayerKey(String);

impl LayerKey {
    /// Computes the key; `requirements` is the output of `uv export`.
    pub(crate) fn new(
        requirements: &str,
        target: &TargetPython,
        venv_dir: &str,
        mtime: u64,
        uv_version: &str,
    ) -> Self {
        let mut hasher = Sha256::new();
        let header = format!(
            "dagster-deploy-pydeps recipe {RECIPE_VERSION}\nuv {uv_version}\nplatform {}\npython {}\ninterpreter {}\nvenv {venv_dir}\nmtime {mtime}\nrequirements {}\n",
            target.uv_platform(),
            target.version,
            target.interpreter,
            requirements.len(),
        );
        hasher.update(header.as_bytes());
        hasher.update(requirements.as_bytes());
        Self(hex::encode(hasher.finalize()))
    }

    /// The 64 hex digits.
    pub fn as_hex(&self) -> &str {
        &self.0
    }

    /// An image tag naming the layer in a registry, e.g. `deps-3f2a…` (37 characters).
    pub fn tag(&self) -> String {
        format!("deps-{}", &self.0[..TAG_HEX_DIGITS])
    }
}

impl fmt::Display for LayerKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}
