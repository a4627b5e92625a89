//! Reading and checking the build configuration of a Dagster+ Hybrid deploy: a user-written
//! `dagster_cloud.yaml` ([`DagsterCloudYaml`]) or a dg project / workspace ([`DgContext`]),
//! whose generated `dagster_cloud.yaml` text parses back into a [`DagsterCloudYaml`].
//!
//! Pure parse functions take text and a path (for messages and relative paths); loaders read
//! files (at most 16 MiB, UTF-8). Once parsed, values cannot be invalid: names are
//! [`LocationName`]s, registries [`Registry`]s, code sources have exactly one kind.
//!
//! Errors are data. A file that cannot be read or parsed is one [`Error`]; a file that breaks
//! the schema is checked to the end and its error lists every problem as a [`Diagnostic`]
//! (file, line, column, field path, [`DiagnosticKind`], location, message, help). Messages name
//! the file and position; what to do is a separate `help()`; nothing in them is specific to
//! the program that shows them.
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
//! let text = "locations:\n  - location_nam: x\n    build: {registry: ghcr.io/acme/app:v1}\n";
//! let error = DagsterCloudYaml::parse(text, Path::new("d.yaml")).unwrap_err();
//! let [unknown_key, registry] = error.diagnostics() else { panic!("{error:?}") };
//! assert_eq!(
//!     unknown_key.to_string(),
//!     "d.yaml:2:5: locations[0].location_nam: unknown key `location_nam` in a location"
//! );
//! assert!(unknown_key.help().starts_with("did you mean `location_name`?"));
//! assert_eq!((registry.line(), registry.column()), (3, 23));
//! assert_eq!(registry.field(), "locations[0].build.registry");
//! assert_eq!(registry.help(), "remove the `:tag` part: the tag is appended at build time");
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
pub use error::{Diagnostic, DiagnosticKind, Error, MAX_DIAGNOSTICS, Result};
pub use values::{LocationName, Problem, Registry};

/// Largest configuration file read, in bytes (16 MiB).
pub const MAX_FILE_BYTES: u64 = yaml::MAX_FILE_BYTES;

// The README's examples are run as doctests, so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
