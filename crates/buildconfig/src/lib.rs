//! Reading and checking the build configuration of a Dagster+ Hybrid deploy: a user-written
//! `dagster_cloud.yaml` ([`DagsterCloudYaml`]) or a dg project / workspace ([`DgContext`]),
//! whose generated `dagster_cloud.yaml` text parses back into a [`DagsterCloudYaml`].
//!
//! Pure parse functions take text and a path (for messages and relative paths); loaders read
//! files (at most 16 MiB, UTF-8). Once parsed, values cannot be invalid: names are
//! [`LocationName`]s, registries [`Registry`]s, code sources have exactly one kind.
//! Every [`Error`] names the file, line, column and field path, and says what to do.
//!
//! Deliberate differences from the reference tools (reference-behaviour §8):
//! * `defaults` in `dagster_cloud.yaml` are applied to every location (with the list strategies
//!   of reference-behaviour §1.6.3), so `defaults.build.registry`, `image`, `container_context`,
//!   ... take effect in the deploy flow; the reference ignores them there
//!   (reference-behaviour ref-bug 1);
//! * dg: see the `dg` module for the fixed workspace merging
//!   (reference-behaviour ref-bugs 2, 3, 4);
//! * YAML syntax errors and empty files are reported as errors, never crashes.
//!
//! ```
//! use std::path::Path;
//! use dagster_deploy_buildconfig::DagsterCloudYaml;
//!
//! let text = "
//! defaults:
//!   build:
//!     registry: ghcr.io/acme/data
//! locations:
//!   - location_name: sales
//!     code_source:
//!       module_name: sales.definitions
//!     build:
//!       directory: ./sales
//! ";
//! let config = DagsterCloudYaml::parse(text, Path::new("/repo/dagster_cloud.yaml")).unwrap();
//! let sales = config.location("sales").unwrap();
//! assert_eq!(sales.registry().unwrap().as_str(), "ghcr.io/acme/data");
//! assert_eq!(sales.build_directory().unwrap(), Path::new("/repo/sales"));
//!
//! let error = DagsterCloudYaml::parse("locations:\n  - location_nam: x\n", Path::new("d.yaml"))
//!     .unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "error: d.yaml:2:5: locations[0].location_nam: unknown key `location_nam` in a location\n  \
//!      help: did you mean `location_name`? The keys allowed here are: location_name, \
//!      code_source, build, working_directory, image, executable_path, attribute, \
//!      container_context, agent_queue"
//! );
//! ```

mod dagster_cloud;
mod dg;
mod error;
mod merge;
mod schema;
mod values;
mod yaml;

pub use dagster_cloud::{Build, CodeSource, DagsterCloudYaml, Location};
pub use dg::{DgContext, DgProject};
pub use error::{Error, Result};
pub use values::{LocationName, Problem, Registry};

/// Largest configuration file read, in bytes (16 MiB).
pub const MAX_FILE_BYTES: u64 = yaml::MAX_FILE_BYTES;
