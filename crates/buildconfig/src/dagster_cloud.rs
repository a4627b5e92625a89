//! `dagster_cloud.yaml` (reference-behaviour §1.5): the schema check, `defaults` merging (§1.6.3)
//! and the domain types [`DagsterCloudYaml`], [`Location`], [`Build`] and [`CodeSource`].
//!
//! Every raw location and the `defaults` block are checked where they are written (so errors
//! point at the right line); then each location's typed fields are combined with the checked
//! defaults, and its entry is merged with the defaults tree, which cannot fail on a checked
//! value except for the kind conflicts the merge reports. A check that fails records its
//! problem and the next check runs, so one parse reports every problem of the file (a field
//! whose value is wrong is not also reported as missing). Reading files and finding positions
//! live in `yaml.rs`; dg projects in `dg.rs`.
//!
//! The hot path (thousands of locations) builds field paths and positions only for errors,
//! cleans `defaults` of nulls once, and checks name uniqueness once with borrowed names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Checked, DiagnosticKind, Problems, Reported, Result};
use crate::merge::{MergeConflict, drop_nulls_map, merge_onto_clean_defaults};
use crate::schema::{
    at, check_keys, check_keys_at, expect_map, map_value, nearest, optional_map, resolve_directory,
    string_value,
};
use crate::values::{LocationName, Registry};
use crate::yaml::{self, FieldPath, Source, Target};

const TOP_KEYS: &[&str] = &["locations", "defaults"];
const LOCATION_KEYS: &[&str] = &[
    "location_name",
    "code_source",
    "build",
    "working_directory",
    "image",
    "executable_path",
    "attribute",
    "container_context",
    "agent_queue",
];
const DEFAULTS_KEYS: &[&str] = &[
    "build",
    "working_directory",
    "image",
    "executable_path",
    "container_context",
    "agent_queue",
];
pub(crate) const BUILD_KEYS: &[&str] = &["directory", "registry"];
const CODE_SOURCE_KEYS: &[&str] = &[
    "package_name",
    "module_name",
    "python_file",
    "autoload_defs_module_name",
];

const EMPTY_HELP: &str = "list your code locations under `locations:`, e.g. `locations: [{location_name: my-location, code_source: {package_name: my_package}}]`";

/// A checked `dagster_cloud.yaml`: its locations with `defaults` applied.
#[derive(Debug, Clone)]
pub struct DagsterCloudYaml {
    path: PathBuf,
    locations: Vec<Location>,
}

/// One code location, after `defaults` are applied.
#[derive(Debug, Clone)]
pub struct Location {
    name: LocationName,
    code_source: Option<CodeSource>,
    build: Option<Build>,
    build_directory: Option<PathBuf>,
    /// Where `build.directory` is written (in the location or in `defaults`), for messages.
    build_directory_origin: Option<Origin>,
    /// The entry after defaults; the plain string fields are read from it, since it holds the
    /// same checked values.
    entry: Map<String, Value>,
}

/// Where a value of a location is written: in the location itself or in `defaults`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// `locations[index]`.
    Location(usize),
    /// `defaults`.
    Defaults,
}

impl Origin {
    fn field(self) -> FieldPath {
        match self {
            Origin::Location(index) => location_field(index),
            Origin::Defaults => FieldPath::root().key("defaults"),
        }
    }
}

/// The field path of `locations[index]`.
fn location_field(index: usize) -> FieldPath {
    FieldPath::root().key("locations").index(index)
}

/// The checked `defaults` block: the parts every location combines with its own.
struct Defaults {
    /// The block with nulls removed, ready to be merged under each location's entry.
    clean: Map<String, Value>,
    build: Option<Build>,
    build_directory: Option<PathBuf>,
}

/// A location's `build` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Build {
    directory: Option<String>,
    registry: Option<Registry>,
}

/// Where a location's code comes from: exactly one of the four `code_source` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSource {
    /// `package_name`: an installed Python package.
    PackageName(String),
    /// `module_name`: a Python module.
    ModuleName(String),
    /// `python_file`: a Python file.
    PythonFile(String),
    /// `autoload_defs_module_name`: a module whose definitions are autoloaded.
    AutoloadDefsModuleName(String),
}

impl DagsterCloudYaml {
    /// Parses and checks `text` (schema, values, unique names) and applies `defaults`.
    ///
    /// `path` names the file in messages and is the base for relative `build.directory` values;
    /// nothing is read from disk (see [`DagsterCloudYaml::load`]). A syntax error stops the
    /// parse; schema problems do not: the error lists every one ([`crate::Error::Invalid`]).
    ///
    /// ```
    /// # use std::path::Path;
    /// # use dagster_deploy_buildconfig::{DagsterCloudYaml, DiagnosticKind};
    /// let text = "locations:\n  - location_name: a\n    imag: x\n  - code_source: {package_name: b}\n";
    /// let error = DagsterCloudYaml::parse(text, Path::new("dagster_cloud.yaml")).unwrap_err();
    /// let kinds: Vec<_> = error.diagnostics().iter().map(|problem| problem.kind()).collect();
    /// assert_eq!(kinds, [DiagnosticKind::UnknownKey, DiagnosticKind::MissingKey]);
    /// assert_eq!(error.diagnostics()[0].location(), Some("a"));
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let source = Source { path, text };
        let mut problems = Problems::default();
        let (locations, _) = check(&source, &mut problems)?;
        problems.finish()?;
        Ok(Self {
            path: path.to_path_buf(),
            locations,
        })
    }

    /// Reads `path` (at most 16 MiB of UTF-8, a regular file) and parses it, without looking
    /// at the build directories it names (deploying needs the entries, not the directories).
    pub fn read(path: &Path) -> Result<Self> {
        Self::parse(&yaml::read_text(path)?, path)
    }

    /// Reads `path` (at most 16 MiB of UTF-8), parses it and checks that every
    /// `build.directory` exists and is a directory; a missing directory is reported with the
    /// file's other problems.
    pub fn load(path: &Path) -> Result<Self> {
        let text = yaml::read_text(path)?;
        let source = Source { path, text: &text };
        let mut problems = Problems::default();
        let (locations, unchecked) = check(&source, &mut problems)?;
        check_build_directories(&mut problems, &source, &locations, &unchecked);
        problems.finish()?;
        Ok(Self {
            path: path.to_path_buf(),
            locations,
        })
    }

    /// The file this configuration was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The locations, in file order.
    pub fn locations(&self) -> &[Location] {
        &self.locations
    }

    /// The location named `name`, if any.
    pub fn location(&self, name: &str) -> Option<&Location> {
        self.locations
            .iter()
            .find(|location| location.name.as_str() == name)
    }
}

/// The `build.directory` of a location that failed other checks: [`DagsterCloudYaml::load`]
/// still looks for it, so that one run reports every problem of the file.
struct UncheckedDirectory {
    /// The location's index in `locations`.
    index: usize,
    /// Its name as written, if it is a string.
    name: Option<String>,
    /// The directory as written.
    written: String,
    /// The directory resolved against the file's folder.
    resolved: PathBuf,
}

/// Checks a whole file: returns the locations that passed every check and the build
/// directories of those that did not, with every problem recorded in `problems`. Only an
/// unreadable document (a syntax error, an empty file) is returned as an error.
fn check(
    source: &Source<'_>,
    problems: &mut Problems,
) -> Result<(Vec<Location>, Vec<UncheckedDirectory>)> {
    let mut unchecked = Vec::new();
    let document = source.parse(EMPTY_HELP)?;
    let root = FieldPath::root();
    let Ok(top) = expect_map(problems, source, &document, &root, "the top level") else {
        return Ok((Vec::new(), unchecked));
    };
    let _ = check_keys(problems, source, top, &root, TOP_KEYS, "the top level");
    let defaults = check_defaults(problems, source, top);

    let locations_field = || root.key("locations");
    let report_locations = |problems: &mut Problems, kind, message: String, help: &str| {
        source.report(
            problems,
            &locations_field(),
            Target::Value,
            kind,
            message,
            help,
        )
    };
    match top.get("locations") {
        None if misspells(top, TOP_KEYS, "locations") => return Ok((Vec::new(), unchecked)),
        None | Some(Value::Null) => {
            report_locations(
                problems,
                DiagnosticKind::MissingKey,
                "the required key `locations` is missing".to_owned(),
                "add a `locations:` list with one entry per code location",
            );
            return Ok((Vec::new(), unchecked));
        }
        Some(Value::Array(items)) if items.is_empty() => {
            report_locations(
                problems,
                DiagnosticKind::EmptyValue,
                "`locations` is empty".to_owned(),
                "add at least one code location with a `location_name`",
            );
            return Ok((Vec::new(), unchecked));
        }
        Some(Value::Array(_)) => {}
        Some(other) => {
            report_locations(
                problems,
                DiagnosticKind::WrongType,
                format!(
                    "expected a list of locations, found {}",
                    crate::merge::kind(other)
                ),
                "write each location as a list item starting with `- location_name: ...`",
            );
            return Ok((Vec::new(), unchecked));
        }
    };

    // Take the locations out of the tree so that their entries move instead of being copied.
    let raw_locations = match document {
        Value::Object(mut top) => match top.remove("locations") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    // With broken defaults the locations are still checked on their own (none is returned).
    let defaults = defaults.unwrap_or_default();
    report_duplicate_names(problems, source, &raw_locations);
    let mut locations = Vec::with_capacity(raw_locations.len());
    for (index, raw) in raw_locations.into_iter().enumerate() {
        let parsed = Location::parse(problems, source, raw, index, defaults.as_ref());
        match parsed {
            Ok(location) => locations.push(location),
            Err(Some(directory)) => unchecked.push(directory),
            Err(None) => {}
        }
    }
    Ok((locations, unchecked))
}

/// Checks the `defaults` block, if any.
fn check_defaults(
    problems: &mut Problems,
    source: &Source<'_>,
    top: &Map<String, Value>,
) -> Checked<Option<Defaults>> {
    let root = FieldPath::root();
    let Some(defaults) = optional_map(problems, source, top, &root, "defaults")? else {
        return Ok(None);
    };
    let defaults_field = root.key("defaults");
    let keys = check_keys(
        problems,
        source,
        defaults,
        &defaults_field,
        DEFAULTS_KEYS,
        "`defaults`",
    );
    let count = problems.count();
    let fields =
        LocationFields::parse(problems, source, defaults, || defaults_field.clone(), false);
    keys?;
    if problems.count() > count {
        return Err(Reported);
    }
    Ok(Some(Defaults {
        clean: drop_nulls_map(defaults),
        build: fields.build,
        build_directory: fields.build_directory,
    }))
}

/// Reports every `build.directory` that does not exist or is not a directory, of the checked
/// `locations` and of the `unchecked` ones; one written in `defaults` is reported once, at
/// `defaults`.
fn check_build_directories(
    problems: &mut Problems,
    source: &Source<'_>,
    locations: &[Location],
    unchecked: &[UncheckedDirectory],
) {
    for directory in unchecked {
        if directory.resolved.is_dir() {
            continue;
        }
        let count = problems.count();
        report_missing_directory(
            problems,
            source,
            &location_field(directory.index),
            &directory.written,
            directory.name.as_deref(),
            &directory.resolved,
        );
        if let Some(name) = &directory.name {
            problems.name_location(count, name);
        }
    }
    let mut reported_defaults = false;
    for location in locations {
        let (Some(directory), Some(origin), Some(build)) = (
            &location.build_directory,
            location.build_directory_origin,
            &location.build,
        ) else {
            continue;
        };
        if (origin == Origin::Defaults && reported_defaults) || directory.is_dir() {
            continue;
        }
        reported_defaults |= origin == Origin::Defaults;
        let count = problems.count();
        report_missing_directory(
            problems,
            source,
            &origin.field(),
            build.directory.as_deref().unwrap_or_default(),
            Some(location.name.as_str()),
            directory,
        );
        problems.name_location(count, location.name.as_str());
    }
}

/// Reports that the `build.directory` under `parent` (`written`, resolved to `resolved`) of
/// the location `name` does not exist.
fn report_missing_directory(
    problems: &mut Problems,
    source: &Source<'_>,
    parent: &FieldPath,
    written: &str,
    name: Option<&str>,
    resolved: &Path,
) -> Reported {
    let of_location = name
        .map(|name| format!(" of location `{}`", name.escape_debug()))
        .unwrap_or_default();
    source.report(
        problems,
        &parent.key("build").key("directory"),
        Target::Value,
        DiagnosticKind::DirectoryNotFound,
        format!(
            "build directory `{}`{of_location} not found at {}",
            written.escape_debug(),
            resolved.display()
        ),
        format!(
            "create the directory or fix the path (a relative path is resolved against the folder of {})",
            source.path.display()
        ),
    )
}

impl Location {
    /// Checks the location at `locations[index]` and applies `defaults`; its problems are
    /// recorded, named after the location when it has a name. A location that fails returns
    /// its build directory, if it has a valid one, for [`DagsterCloudYaml::load`] to check.
    fn parse(
        problems: &mut Problems,
        source: &Source<'_>,
        raw: Value,
        index: usize,
        defaults: Option<&Defaults>,
    ) -> std::result::Result<Self, Option<UncheckedDirectory>> {
        let field = || location_field(index);
        let Value::Object(raw) = raw else {
            let found = crate::merge::kind(&raw);
            source.report(
                problems,
                &field(),
                Target::Value,
                DiagnosticKind::WrongType,
                format!("expected a location (a mapping), found {found}"),
                "write `key: value` pairs indented under this key",
            );
            return Err(None);
        };
        let count = problems.count();
        let _ = check_keys_at(problems, source, &raw, field, LOCATION_KEYS, "a location");
        let fields = LocationFields::parse(problems, source, &raw, field, true);
        let name = match fields.name {
            Some(name) if problems.count() == count => name,
            _ => {
                let name = raw.get("location_name").and_then(Value::as_str);
                if let Some(name) = name {
                    problems.name_location(count, name);
                }
                let written = fields.build.and_then(|build| build.directory);
                return Err(written
                    .zip(fields.build_directory)
                    .map(|(written, resolved)| UncheckedDirectory {
                        index,
                        name: name.map(str::to_owned),
                        written,
                        resolved,
                    }));
            }
        };
        let Some(defaults) = defaults else {
            return Ok(Self {
                name,
                code_source: fields.code_source,
                build_directory_origin: fields
                    .build_directory
                    .as_ref()
                    .map(|_| Origin::Location(index)),
                build: fields.build,
                build_directory: fields.build_directory,
                entry: raw,
            });
        };
        let entry = match merge_onto_clean_defaults(&defaults.clean, raw, "") {
            Ok(entry) => entry,
            Err(conflict) => {
                report_merge_conflict(problems, source, &field(), &conflict);
                problems.name_location(count, name.as_str());
                return Err(None);
            }
        };
        // Both sides were checked where they are written and a location's nulls do not mask
        // defaults, so each merged field is the location's value, else the default's. `defaults`
        // cannot hold `location_name` or `code_source`.
        let build = match (fields.build, defaults.build.as_ref()) {
            (None, None) => None,
            (location_build, defaults_build) => {
                let location_build = location_build.unwrap_or_default();
                Some(Build {
                    directory: location_build
                        .directory
                        .or_else(|| defaults_build.and_then(|build| build.directory.clone())),
                    registry: location_build
                        .registry
                        .or_else(|| defaults_build.and_then(|build| build.registry.clone())),
                })
            }
        };
        let (build_directory, build_directory_origin) = match fields.build_directory {
            Some(directory) => (Some(directory), Some(Origin::Location(index))),
            None => match &defaults.build_directory {
                Some(directory) => (Some(directory.clone()), Some(Origin::Defaults)),
                None => (None, None),
            },
        };
        Ok(Self {
            name,
            code_source: fields.code_source,
            build,
            build_directory,
            build_directory_origin,
            entry,
        })
    }

    /// A string field of the entry (absent, null and non-strings are `None`; the parse
    /// rejected non-strings).
    fn entry_str(&self, key: &str) -> Option<&str> {
        self.entry.get(key).and_then(Value::as_str)
    }

    /// The location name.
    pub fn name(&self) -> &LocationName {
        &self.name
    }

    /// The code source, if the location has one.
    pub fn code_source(&self) -> Option<&CodeSource> {
        self.code_source.as_ref()
    }

    /// The build section (after defaults), if any.
    pub fn build(&self) -> Option<&Build> {
        self.build.as_ref()
    }

    /// The image repository to push to, from `build.registry`.
    pub fn registry(&self) -> Option<&Registry> {
        self.build
            .as_ref()
            .and_then(|build| build.registry.as_ref())
    }

    /// `build.directory` resolved against the file's folder: absolute and normalised.
    pub fn build_directory(&self) -> Option<&Path> {
        self.build_directory.as_deref()
    }

    /// `working_directory`, if set.
    pub fn working_directory(&self) -> Option<&str> {
        self.entry_str("working_directory")
    }

    /// `image`, if set.
    pub fn image(&self) -> Option<&str> {
        self.entry_str("image")
    }

    /// `executable_path`, if set.
    pub fn executable_path(&self) -> Option<&str> {
        self.entry_str("executable_path")
    }

    /// `attribute`, if set.
    pub fn attribute(&self) -> Option<&str> {
        self.entry_str("attribute")
    }

    /// The free-form `container_context` mapping, if set.
    pub fn container_context(&self) -> Option<&Map<String, Value>> {
        self.entry
            .get("container_context")
            .and_then(Value::as_object)
    }

    /// `agent_queue`, if set.
    pub fn agent_queue(&self) -> Option<&str> {
        self.entry_str("agent_queue")
    }

    /// The location's entry as a JSON object, as the deploy document needs it
    /// (reference-behaviour §3.6 step 3.1): keys as written, after defaults are applied, including
    /// `build`. Without a `defaults` block the entry is exactly as written (nulls kept); with one,
    /// nulls are dropped as the defaults merge does.
    pub fn entry(&self) -> &Map<String, Value> {
        &self.entry
    }
}

impl Build {
    /// A build section from its parts.
    pub fn new(directory: Option<String>, registry: Option<Registry>) -> Self {
        Self {
            directory,
            registry,
        }
    }

    /// `directory` as written (relative to the file that names it, or absolute).
    pub fn directory(&self) -> Option<&str> {
        self.directory.as_deref()
    }

    /// `registry`: the image repository, without tag.
    pub fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }

    /// Whether neither key is set.
    pub fn is_empty(&self) -> bool {
        self.directory.is_none() && self.registry.is_none()
    }
}

impl CodeSource {
    /// The YAML key of this kind of code source, e.g. `module_name`.
    pub fn key(&self) -> &'static str {
        match self {
            CodeSource::PackageName(_) => "package_name",
            CodeSource::ModuleName(_) => "module_name",
            CodeSource::PythonFile(_) => "python_file",
            CodeSource::AutoloadDefsModuleName(_) => "autoload_defs_module_name",
        }
    }

    /// The value (package, module or file name).
    pub fn value(&self) -> &str {
        match self {
            CodeSource::PackageName(value)
            | CodeSource::ModuleName(value)
            | CodeSource::PythonFile(value)
            | CodeSource::AutoloadDefsModuleName(value) => value,
        }
    }
}

fn report_merge_conflict(
    problems: &mut Problems,
    source: &Source<'_>,
    field: &FieldPath,
    conflict: &MergeConflict,
) -> Reported {
    let mut location_field = field.clone();
    let mut defaults_field = FieldPath::root().key("defaults");
    for key in &conflict.keys {
        location_field = location_field.key(key);
        defaults_field = defaults_field.key(key);
    }
    source.report(
        problems,
        &location_field,
        Target::Value,
        DiagnosticKind::MergeConflict,
        format!(
            "cannot merge with `{defaults_field}`: this is {} but the default is {}",
            conflict.location_kind, conflict.defaults_kind
        ),
        format!("make `{defaults_field}` and `{location_field}` the same kind of value"),
    )
}

/// The typed fields of a location or of `defaults`, checked but not yet assembled. The plain
/// string fields are only checked: a [`Location`] reads them back from its entry.
struct LocationFields {
    name: Option<LocationName>,
    code_source: Option<CodeSource>,
    build: Option<Build>,
    build_directory: Option<PathBuf>,
}

impl LocationFields {
    /// Checks the fields of `map`, whose path `field` builds (only for errors), in a fixed
    /// order whatever the order in the file, reporting every problem; returns the fields that
    /// passed. `location_name` is required when `is_location` (locations; a missing name is
    /// `None`, reported or not), and not read for `defaults`. The keys of `map` are checked by
    /// the caller.
    fn parse<F: Fn() -> FieldPath + Copy>(
        problems: &mut Problems,
        source: &Source<'_>,
        map: &Map<String, Value>,
        field: F,
        is_location: bool,
    ) -> Self {
        // One pass over the entries instead of a hashed lookup per key.
        let mut values: [Option<&Value>; LOCATION_KEYS.len()] = [None; LOCATION_KEYS.len()];
        for (key, value) in map {
            if let Some(slot) = LOCATION_KEYS.iter().position(|known| known == key) {
                values[slot] = Some(value);
            }
        }
        let [
            location_name,
            code_source,
            build,
            working_directory,
            image,
            executable_path,
            attribute,
            container_context,
            agent_queue,
        ] = values;
        let name = if !is_location {
            None
        } else if location_name.is_none() && misspells(map, LOCATION_KEYS, "location_name") {
            // The misspelt key is reported as unknown, with `location_name` as its suggestion;
            // saying that `location_name` is missing too would report one mistake twice.
            None
        } else {
            parse_name(problems, source, location_name, field).ok()
        };
        let code_source = match map_value(problems, source, code_source, field, "code_source") {
            Ok(Some(code_source)) => parse_code_source(problems, source, code_source, field).ok(),
            _ => None,
        };
        let (build, build_directory) = match map_value(problems, source, build, field, "build") {
            Ok(Some(build)) => check_build(problems, source, build, field),
            _ => (None, None),
        };
        // Checked here; read back from the entry, which holds them.
        let _ = map_value(
            problems,
            source,
            container_context,
            field,
            "container_context",
        );
        for (value, key) in [
            (working_directory, "working_directory"),
            (image, "image"),
            (executable_path, "executable_path"),
            (attribute, "attribute"),
            (agent_queue, "agent_queue"),
        ] {
            let _ = string_value(problems, source, value, field, key);
        }
        Self {
            name,
            code_source,
            build,
            build_directory,
        }
    }
}

/// Whether `map` has a key outside `allowed` that is a misspelling of `wanted`: it is reported
/// as unknown with `wanted` as its suggestion, so `wanted` is not also reported as missing.
fn misspells(map: &Map<String, Value>, allowed: &[&str], wanted: &str) -> bool {
    map.keys()
        .any(|key| !allowed.contains(&key.as_str()) && nearest(key, allowed) == Some(wanted))
}

/// Checks a `build` mapping at `parent().build`: returns its section and resolved directory,
/// without the values that failed (reported).
fn check_build(
    problems: &mut Problems,
    source: &Source<'_>,
    build: &Map<String, Value>,
    parent: impl Fn() -> FieldPath + Copy,
) -> (Option<Build>, Option<PathBuf>) {
    let build_field = || parent().key("build");
    let _ = check_keys_at(problems, source, build, build_field, BUILD_KEYS, "`build`");
    let directory = string_value(
        problems,
        source,
        build.get("directory"),
        build_field,
        "directory",
    );
    let registry = string_value(
        problems,
        source,
        build.get("registry"),
        build_field,
        "registry",
    );
    let registry = match registry {
        Ok(Some(registry)) => Registry::new(registry)
            .map_err(|problem| {
                at(
                    problems,
                    source,
                    &build_field().key("registry"),
                    DiagnosticKind::InvalidRegistry,
                    problem,
                )
            })
            .ok(),
        _ => None,
    };
    let mut directory = directory.unwrap_or_default();
    if directory == Some("") {
        source.report(
            problems,
            &build_field().key("directory"),
            Target::Value,
            DiagnosticKind::EmptyValue,
            "`directory` is empty",
            "write `.` for the folder of this file, or remove the key",
        );
        directory = None;
    }
    let resolved = directory.map(|directory| resolve_directory(source.path, directory));
    (
        Some(Build {
            directory: directory.map(str::to_owned),
            registry,
        }),
        resolved,
    )
}

/// Reports every location (in file order) whose name an earlier location already uses, whether
/// or not the locations have other problems. Names that are not valid are reported by
/// [`parse_name`] and skipped here.
fn report_duplicate_names(problems: &mut Problems, source: &Source<'_>, raw_locations: &[Value]) {
    let mut first_use: HashMap<&str, usize> = HashMap::with_capacity(raw_locations.len());
    for (index, raw) in raw_locations.iter().enumerate() {
        let Some(name) = raw.get("location_name").and_then(Value::as_str) else {
            continue;
        };
        let Some(&first) = first_use.get(name) else {
            first_use.insert(name, index);
            continue;
        };
        if LocationName::new(name).is_err() {
            continue;
        }
        let count = problems.count();
        source.report(
            problems,
            &location_field(index).key("location_name"),
            Target::Value,
            DiagnosticKind::DuplicateLocationName,
            {
                let (first_line, _) = source.position(&location_field(first).key("location_name"));
                format!(
                    "duplicate location name `{name}`; it is first used at line {first_line} (locations[{first}])"
                )
            },
            "give every location a unique `location_name`",
        );
        problems.name_location(count, name);
    }
}

fn parse_name(
    problems: &mut Problems,
    source: &Source<'_>,
    value: Option<&Value>,
    field: impl Fn() -> FieldPath,
) -> Checked<LocationName> {
    let name_field = || field().key("location_name");
    match value {
        None | Some(Value::Null) => Err(source.report(
            problems,
            &field(),
            Target::Value,
            DiagnosticKind::MissingKey,
            "the required key `location_name` is missing",
            "add `location_name: <name>` to this location",
        )),
        Some(Value::String(name)) => LocationName::new(name).map_err(|problem| {
            at(
                problems,
                source,
                &name_field(),
                DiagnosticKind::InvalidLocationName,
                problem,
            )
        }),
        Some(other) => Err(source.report(
            problems,
            &name_field(),
            Target::Value,
            DiagnosticKind::WrongType,
            format!("expected a string, found {}", crate::merge::kind(other)),
            "quote the name, e.g. `location_name: \"123\"`",
        )),
    }
}

/// Checks the `code_source` mapping of the location or `defaults` at `parent`.
fn parse_code_source(
    problems: &mut Problems,
    source: &Source<'_>,
    map: &Map<String, Value>,
    parent: impl Fn() -> FieldPath + Copy,
) -> Checked<CodeSource> {
    let field = || parent().key("code_source");
    let count = problems.count();
    let _ = check_keys_at(
        problems,
        source,
        map,
        field,
        CODE_SOURCE_KEYS,
        "`code_source`",
    );
    // At most one entry per allowed key; file order, so that a second code source is reported
    // where it is written.
    let mut defined: [(&str, &str); CODE_SOURCE_KEYS.len()] = [("", ""); CODE_SOURCE_KEYS.len()];
    let mut count_defined = 0;
    for (key, value) in map {
        if !CODE_SOURCE_KEYS.contains(&key.as_str()) {
            continue;
        }
        if let Ok(Some(value)) = string_value(problems, source, Some(value), field, key)
            && !value.is_empty()
            && count_defined < defined.len()
        {
            defined[count_defined] = (key.as_str(), value);
            count_defined += 1;
        }
    }
    if problems.count() > count {
        // A wrong key or value is the problem; do not report the code source as missing too.
        return Err(Reported);
    }
    match &defined[..count_defined] {
        [(key, value)] => Ok(match *key {
            "package_name" => CodeSource::PackageName((*value).to_owned()),
            "module_name" => CodeSource::ModuleName((*value).to_owned()),
            "python_file" => CodeSource::PythonFile((*value).to_owned()),
            _ => CodeSource::AutoloadDefsModuleName((*value).to_owned()),
        }),
        [] => Err(source.report(
            problems,
            &field(),
            Target::Value,
            DiagnosticKind::CodeSource,
            "no code source is set",
            "set exactly one of package_name, module_name, python_file or autoload_defs_module_name",
        )),
        [_, (second, _), ..] => Err(source.report(
            problems,
            &field().key(second),
            Target::Key,
            DiagnosticKind::CodeSource,
            format!(
                "more than one code source is set: {}",
                defined[..count_defined].iter().map(|(key, _)| *key).collect::<Vec<_>>().join(", ")
            ),
            "keep exactly one of package_name, module_name, python_file or autoload_defs_module_name",
        )),
    }
}

#[cfg(test)]
mod tests;
