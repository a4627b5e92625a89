//! `dagster_cloud.yaml` (reference-behaviour §1.5): the schema check, `defaults` merging (§1.6.3)
//! and the domain types [`DagsterCloudYaml`], [`Location`], [`Build`] and [`CodeSource`].
//!
//! Every raw location and the `defaults` block are checked where they are written (so errors
//! point at the right line); then each location's typed fields are combined with the checked
//! defaults, and its entry is merged with the defaults tree, which cannot fail on a checked
//! value except for the kind conflicts the merge reports. Reading files and finding positions
//! live in `yaml.rs`; dg projects in `dg.rs`.
//!
//! The hot path (thousands of locations) builds field paths and positions only for errors,
//! cleans `defaults` of nulls once, and checks name uniqueness once with borrowed names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::merge::{MergeConflict, drop_nulls_map, merge_onto_clean_defaults};
use crate::schema::{
    at, check_keys, check_keys_at, expect_map, map_value, optional_map, resolve_directory,
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
    /// nothing is read from disk (see [`DagsterCloudYaml::load`]).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let source = Source { path, text };
        let document = source.parse(EMPTY_HELP)?;
        let root = FieldPath::root();
        let top = expect_map(&source, &document, &root, "the top level")?;
        check_keys(&source, top, &root, TOP_KEYS, "the top level")?;

        let defaults = match optional_map(&source, top, &root, "defaults")? {
            Some(defaults) => {
                let defaults_field = root.key("defaults");
                check_keys(
                    &source,
                    defaults,
                    &defaults_field,
                    DEFAULTS_KEYS,
                    "`defaults`",
                )?;
                let fields =
                    LocationFields::parse(&source, defaults, || defaults_field.clone(), false)?;
                Some(Defaults {
                    clean: drop_nulls_map(defaults),
                    build: fields.build,
                    build_directory: fields.build_directory,
                })
            }
            None => None,
        };

        let locations_field = || root.key("locations");
        match top.get("locations") {
            None | Some(Value::Null) => {
                return Err(source.invalid(
                    &locations_field(),
                    Target::Value,
                    "the required key `locations` is missing",
                    "add a `locations:` list with one entry per code location",
                ));
            }
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(source.invalid(
                    &locations_field(),
                    Target::Value,
                    "`locations` is empty",
                    "add at least one code location with a `location_name`",
                ));
            }
            Some(Value::Array(_)) => {}
            Some(other) => {
                return Err(source.invalid(
                    &locations_field(),
                    Target::Value,
                    format!(
                        "expected a list of locations, found {}",
                        crate::merge::kind(other)
                    ),
                    "write each location as a list item starting with `- location_name: ...`",
                ));
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
        let mut locations = Vec::with_capacity(raw_locations.len());
        for (index, raw) in raw_locations.into_iter().enumerate() {
            match Location::parse(&source, raw, index, defaults.as_ref()) {
                Ok(location) => locations.push(location),
                // Names are checked once at the end; a duplicate among the locations before
                // this one was found first, so it is the error to report.
                Err(err) => return Err(duplicate_name(&source, &locations).unwrap_or(err)),
            }
        }
        if let Some(err) = duplicate_name(&source, &locations) {
            return Err(err);
        }
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
    /// `build.directory` exists and is a directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = yaml::read_text(path)?;
        let config = Self::parse(&text, path)?;
        let source = Source { path, text: &text };
        for location in &config.locations {
            if let (Some(directory), Some(origin), Some(build)) = (
                &location.build_directory,
                location.build_directory_origin,
                &location.build,
            ) && !directory.is_dir()
            {
                let field = origin.field().key("build").key("directory");
                let (line, column) = source.position(&field);
                return Err(Error::BuildDirectoryNotFound {
                    path: path.to_path_buf(),
                    line,
                    column,
                    field: field.to_string(),
                    location: location.name.to_string(),
                    written: build.directory.clone().unwrap_or_default().into(),
                    directory: directory.as_path().into(),
                });
            }
        }
        Ok(config)
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

impl Location {
    fn parse(
        source: &Source<'_>,
        raw: Value,
        index: usize,
        defaults: Option<&Defaults>,
    ) -> Result<Self> {
        let field = || location_field(index);
        let Value::Object(raw) = raw else {
            let found = crate::merge::kind(&raw);
            return Err(source.invalid(
                &field(),
                Target::Value,
                format!("expected a location (a mapping), found {found}"),
                "write `key: value` pairs indented under this key",
            ));
        };
        check_keys_at(source, &raw, field, LOCATION_KEYS, "a location")?;
        let fields = LocationFields::parse(source, &raw, field, true)?;
        let name = fields
            .name
            .unwrap_or_else(|| unreachable!("location parsed without name at {}", field()));
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
        let entry = merge_onto_clean_defaults(&defaults.clean, raw, "")
            .map_err(|conflict| merge_conflict(source, &field(), &conflict))?;
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

fn merge_conflict(source: &Source<'_>, field: &FieldPath, conflict: &MergeConflict) -> Error {
    let mut location_field = field.clone();
    let mut defaults_field = FieldPath::root().key("defaults");
    for key in &conflict.keys {
        location_field = location_field.key(key);
        defaults_field = defaults_field.key(key);
    }
    source.invalid(
        &location_field,
        Target::Value,
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
    /// order whatever the order in the file. `location_name` is required when `is_location`
    /// (locations), and not read for `defaults`. The keys of `map` must already be checked.
    fn parse<F: Fn() -> FieldPath + Copy>(
        source: &Source<'_>,
        map: &Map<String, Value>,
        field: F,
        is_location: bool,
    ) -> Result<Self> {
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
        let name = if is_location {
            Some(parse_name(source, location_name, field)?)
        } else {
            None
        };
        let code_source = match map_value(source, code_source, field, "code_source")? {
            Some(code_source) => Some(parse_code_source(source, code_source, field)?),
            None => None,
        };
        let (build, build_directory) = match map_value(source, build, field, "build")? {
            Some(build) => {
                let build_field = || field().key("build");
                check_keys_at(source, build, build_field, BUILD_KEYS, "`build`")?;
                let directory =
                    string_value(source, build.get("directory"), build_field, "directory")?;
                let registry =
                    string_value(source, build.get("registry"), build_field, "registry")?
                        .map(|registry| {
                            Registry::new(registry).map_err(|problem| {
                                at(source, &build_field().key("registry"), problem)
                            })
                        })
                        .transpose()?;
                if directory == Some("") {
                    return Err(source.invalid(
                        &build_field().key("directory"),
                        Target::Value,
                        "`directory` is empty",
                        "write `.` for the folder of this file, or remove the key",
                    ));
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
            None => (None, None),
        };
        // Checked here; read back from the entry, which holds them.
        map_value(source, container_context, field, "container_context")?;
        for (value, key) in [
            (working_directory, "working_directory"),
            (image, "image"),
            (executable_path, "executable_path"),
            (attribute, "attribute"),
            (agent_queue, "agent_queue"),
        ] {
            string_value(source, value, field, key)?;
        }
        Ok(Self {
            name,
            code_source,
            build,
            build_directory,
        })
    }
}

/// The first location (in file order) whose name an earlier location already uses, as an error.
fn duplicate_name(source: &Source<'_>, locations: &[Location]) -> Option<Error> {
    let mut first_index: HashMap<&str, usize> = HashMap::with_capacity(locations.len());
    for (index, location) in locations.iter().enumerate() {
        if let Some(&first) = first_index.get(location.name.as_str()) {
            let (first_line, _) = source.position(&location_field(first).key("location_name"));
            return Some(source.invalid(
                &location_field(index).key("location_name"),
                Target::Value,
                format!(
                    "duplicate location name `{}`; it is first used at line {first_line} (locations[{first}])",
                    location.name
                ),
                "give every location a unique `location_name`",
            ));
        }
        first_index.insert(location.name.as_str(), index);
    }
    None
}

fn parse_name(
    source: &Source<'_>,
    value: Option<&Value>,
    field: impl Fn() -> FieldPath,
) -> Result<LocationName> {
    let name_field = || field().key("location_name");
    match value {
        None | Some(Value::Null) => Err(source.invalid(
            &field(),
            Target::Value,
            "the required key `location_name` is missing",
            "add `location_name: <name>` to this location",
        )),
        Some(Value::String(name)) => {
            LocationName::new(name).map_err(|problem| at(source, &name_field(), problem))
        }
        Some(other) => Err(source.invalid(
            &name_field(),
            Target::Value,
            format!("expected a string, found {}", crate::merge::kind(other)),
            "quote the name, e.g. `location_name: \"123\"`",
        )),
    }
}

/// Checks the `code_source` mapping of the location or `defaults` at `parent`.
fn parse_code_source(
    source: &Source<'_>,
    map: &Map<String, Value>,
    parent: impl Fn() -> FieldPath,
) -> Result<CodeSource> {
    let field = || parent().key("code_source");
    check_keys_at(source, map, field, CODE_SOURCE_KEYS, "`code_source`")?;
    // At most one entry per allowed key; file order, so that a second code source is reported
    // where it is written.
    let mut defined: [(&str, &str); CODE_SOURCE_KEYS.len()] = [("", ""); CODE_SOURCE_KEYS.len()];
    let mut count = 0;
    for (key, value) in map {
        if let Some(value) = string_value(source, Some(value), field, key)?
            && !value.is_empty()
            && count < defined.len()
        {
            defined[count] = (key.as_str(), value);
            count += 1;
        }
    }
    match &defined[..count] {
        [(key, value)] => Ok(match *key {
            "package_name" => CodeSource::PackageName((*value).to_owned()),
            "module_name" => CodeSource::ModuleName((*value).to_owned()),
            "python_file" => CodeSource::PythonFile((*value).to_owned()),
            _ => CodeSource::AutoloadDefsModuleName((*value).to_owned()),
        }),
        [] => Err(source.invalid(
            &field(),
            Target::Value,
            "no code source is set",
            "set exactly one of package_name, module_name, python_file or autoload_defs_module_name",
        )),
        [_, (second, _), ..] => Err(source.invalid(
            &field().key(second),
            Target::Key,
            format!(
                "more than one code source is set: {}",
                defined[..count].iter().map(|(key, _)| *key).collect::<Vec<_>>().join(", ")
            ),
            "keep exactly one of package_name, module_name, python_file or autoload_defs_module_name",
        )),
    }
}

#[cfg(test)]
mod tests;
