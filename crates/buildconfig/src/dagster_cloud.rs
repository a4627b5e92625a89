//! `dagster_cloud.yaml` (SPEC §1.5): the schema check, `defaults` merging (§1.6.3) and the
//! domain types [`DagsterCloudYaml`], [`Location`], [`Build`] and [`CodeSource`].
//!
//! Checking happens in two passes over the parsed tree: first every raw location and the
//! `defaults` block are checked where they are written (so errors point at the right line),
//! then each location is merged with the defaults and converted into a [`Location`]. Reading
//! files and finding positions live in `yaml.rs`; dg projects in `dg.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::merge::{MergeConflict, merge_with_defaults};
use crate::schema::{at, check_keys, expect_map, optional_map, optional_string, resolve_directory};
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
    build_directory_field: Option<FieldPath>,
    working_directory: Option<String>,
    image: Option<String>,
    executable_path: Option<String>,
    attribute: Option<String>,
    agent_queue: Option<String>,
    entry: Map<String, Value>,
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

        let defaults_field = root.key("defaults");
        let defaults = match optional_map(&source, top, &root, "defaults")? {
            Some(defaults) => {
                check_keys(
                    &source,
                    defaults,
                    &defaults_field,
                    DEFAULTS_KEYS,
                    "`defaults`",
                )?;
                LocationFields::parse(&source, defaults, &defaults_field, None)?;
                Some(defaults.clone())
            }
            None => None,
        };

        let locations_field = root.key("locations");
        match top.get("locations") {
            None | Some(Value::Null) => {
                return Err(source.invalid(
                    &locations_field,
                    Target::Value,
                    "the required key `locations` is missing",
                    "add a `locations:` list with one entry per code location",
                ));
            }
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(source.invalid(
                    &locations_field,
                    Target::Value,
                    "`locations` is empty",
                    "add at least one code location with a `location_name`",
                ));
            }
            Some(Value::Array(_)) => {}
            Some(other) => {
                return Err(source.invalid(
                    &locations_field,
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
        let mut first_index: HashMap<String, usize> = HashMap::with_capacity(raw_locations.len());
        for (index, raw) in raw_locations.into_iter().enumerate() {
            let field = locations_field.index(index);
            let Value::Object(raw) = raw else {
                let found = crate::merge::kind(&raw);
                return Err(source.invalid(
                    &field,
                    Target::Value,
                    format!("expected a location (a mapping), found {found}"),
                    "write `key: value` pairs indented under this key",
                ));
            };
            let location = Location::parse(&source, raw, &field, defaults.as_ref())?;
            if let Some(first) = first_index.get(location.name.as_str()) {
                let (first_line, _) =
                    source.position(&locations_field.index(*first).key("location_name"));
                return Err(source.invalid(
                    &field.key("location_name"),
                    Target::Value,
                    format!(
                        "duplicate location name `{}`; it is first used at line {first_line} (locations[{first}])",
                        location.name
                    ),
                    "give every location a unique `location_name`",
                ));
            }
            first_index.insert(location.name.as_str().to_owned(), index);
            locations.push(location);
        }
        Ok(Self {
            path: path.to_path_buf(),
            locations,
        })
    }

    /// Reads `path` (at most 16 MiB of UTF-8), parses it and checks that every
    /// `build.directory` exists and is a directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = yaml::read_text(path)?;
        let config = Self::parse(&text, path)?;
        let source = Source { path, text: &text };
        for location in &config.locations {
            if let (Some(directory), Some(field), Some(build)) = (
                &location.build_directory,
                &location.build_directory_field,
                &location.build,
            ) && !directory.is_dir()
            {
                let (line, column) = source.position(field);
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
        raw: Map<String, Value>,
        field: &FieldPath,
        defaults: Option<&Map<String, Value>>,
    ) -> Result<Self> {
        check_keys(source, &raw, field, LOCATION_KEYS, "a location")?;
        let raw_fields = LocationFields::parse(source, &raw, field, Some(field))?;
        let Some(defaults) = defaults else {
            let mut location = raw_fields.into_location(field, field);
            location.entry = raw;
            return Ok(location);
        };
        let directory_origin = if raw_fields.build_directory.is_some() {
            field.clone()
        } else {
            FieldPath::root().key("defaults")
        };
        let merged = merge_with_defaults(defaults, raw, "")
            .map_err(|conflict| merge_conflict(source, field, &conflict))?;
        // Both sides were checked where they are written; the merge keeps kinds, so this
        // second pass only fails on a bug, and then still reports the location.
        let mut location = LocationFields::parse(source, &merged, field, Some(field))?
            .into_location(field, &directory_origin);
        location.entry = merged;
        Ok(location)
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
        self.working_directory.as_deref()
    }

    /// `image`, if set.
    pub fn image(&self) -> Option<&str> {
        self.image.as_deref()
    }

    /// `executable_path`, if set.
    pub fn executable_path(&self) -> Option<&str> {
        self.executable_path.as_deref()
    }

    /// `attribute`, if set.
    pub fn attribute(&self) -> Option<&str> {
        self.attribute.as_deref()
    }

    /// The free-form `container_context` mapping, if set.
    pub fn container_context(&self) -> Option<&Map<String, Value>> {
        self.entry
            .get("container_context")
            .and_then(Value::as_object)
    }

    /// `agent_queue`, if set.
    pub fn agent_queue(&self) -> Option<&str> {
        self.agent_queue.as_deref()
    }

    /// The location's entry as a JSON object, as the deploy document needs it (SPEC §3.6 step
    /// 3.1): keys as written, after defaults are applied, including `build`. Without a
    /// `defaults` block the entry is exactly as written (nulls kept); with one, nulls are
    /// dropped as the defaults merge does.
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

/// The typed fields of a location or of `defaults`, checked but not yet assembled.
struct LocationFields<'v> {
    name: Option<LocationName>,
    code_source: Option<CodeSource>,
    build: Option<Build>,
    build_directory: Option<PathBuf>,
    working_directory: Option<&'v str>,
    image: Option<&'v str>,
    executable_path: Option<&'v str>,
    attribute: Option<&'v str>,
    agent_queue: Option<&'v str>,
}

impl<'v> LocationFields<'v> {
    /// Checks the fields of `map`. `name_required_at` is the location's path when
    /// `location_name` is required (locations), `None` for `defaults`.
    fn parse(
        source: &Source<'_>,
        map: &'v Map<String, Value>,
        field: &FieldPath,
        name_required_at: Option<&FieldPath>,
    ) -> Result<Self> {
        let name = match name_required_at {
            Some(location_field) => Some(parse_name(source, map, location_field)?),
            None => None,
        };
        let code_source = match optional_map(source, map, field, "code_source")? {
            Some(code_source) => Some(parse_code_source(
                source,
                code_source,
                &field.key("code_source"),
            )?),
            None => None,
        };
        let (build, build_directory) = match optional_map(source, map, field, "build")? {
            Some(build) => {
                let build_field = field.key("build");
                check_keys(source, build, &build_field, BUILD_KEYS, "`build`")?;
                let directory = optional_string(source, build, &build_field, "directory")?;
                let registry = optional_string(source, build, &build_field, "registry")?
                    .map(|registry| {
                        Registry::new(registry)
                            .map_err(|problem| at(source, &build_field.key("registry"), problem))
                    })
                    .transpose()?;
                if directory == Some("") {
                    return Err(source.invalid(
                        &build_field.key("directory"),
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
        // Checked here; read back from the entry, which holds it.
        optional_map(source, map, field, "container_context")?;
        Ok(Self {
            name,
            code_source,
            build,
            build_directory,
            working_directory: optional_string(source, map, field, "working_directory")?,
            image: optional_string(source, map, field, "image")?,
            executable_path: optional_string(source, map, field, "executable_path")?,
            attribute: optional_string(source, map, field, "attribute")?,
            agent_queue: optional_string(source, map, field, "agent_queue")?,
        })
    }

    fn into_location(self, field: &FieldPath, directory_origin: &FieldPath) -> Location {
        Location {
            // Locations always parse with a required name; `defaults` never become a Location.
            name: self
                .name
                .unwrap_or_else(|| unreachable!("location parsed without name at {field}")),
            code_source: self.code_source,
            build_directory_field: self
                .build_directory
                .as_ref()
                .map(|_| directory_origin.key("build").key("directory")),
            build: self.build,
            build_directory: self.build_directory,
            working_directory: self.working_directory.map(str::to_owned),
            image: self.image.map(str::to_owned),
            executable_path: self.executable_path.map(str::to_owned),
            attribute: self.attribute.map(str::to_owned),
            agent_queue: self.agent_queue.map(str::to_owned),
            // Set by the caller, which owns the map these fields borrow from.
            entry: Map::new(),
        }
    }
}

fn parse_name(
    source: &Source<'_>,
    map: &Map<String, Value>,
    field: &FieldPath,
) -> Result<LocationName> {
    let name_field = field.key("location_name");
    match map.get("location_name") {
        None | Some(Value::Null) => Err(source.invalid(
            field,
            Target::Value,
            "the required key `location_name` is missing",
            "add `location_name: <name>` to this location",
        )),
        Some(Value::String(name)) => {
            LocationName::new(name).map_err(|problem| at(source, &name_field, problem))
        }
        Some(other) => Err(source.invalid(
            &name_field,
            Target::Value,
            format!("expected a string, found {}", crate::merge::kind(other)),
            "quote the name, e.g. `location_name: \"123\"`",
        )),
    }
}

fn parse_code_source(
    source: &Source<'_>,
    map: &Map<String, Value>,
    field: &FieldPath,
) -> Result<CodeSource> {
    check_keys(source, map, field, CODE_SOURCE_KEYS, "`code_source`")?;
    let mut defined = Vec::new();
    // File order, so that a second code source is reported where it is written.
    for key in map.keys() {
        if let Some(value) = optional_string(source, map, field, key)?
            && !value.is_empty()
        {
            defined.push((key.as_str(), value));
        }
    }
    match defined.as_slice() {
        [(key, value)] => Ok(match *key {
            "package_name" => CodeSource::PackageName((*value).to_owned()),
            "module_name" => CodeSource::ModuleName((*value).to_owned()),
            "python_file" => CodeSource::PythonFile((*value).to_owned()),
            _ => CodeSource::AutoloadDefsModuleName((*value).to_owned()),
        }),
        [] => Err(source.invalid(
            field,
            Target::Value,
            "no code source is set",
            "set exactly one of package_name, module_name, python_file or autoload_defs_module_name",
        )),
        [_, (second, _), ..] => Err(source.invalid(
            &field.key(second),
            Target::Key,
            format!(
                "more than one code source is set: {}",
                defined.iter().map(|(key, _)| *key).collect::<Vec<_>>().join(", ")
            ),
            "keep exactly one of package_name, module_name, python_file or autoload_defs_module_name",
        )),
    }
}

#[cfg(test)]
mod tests;
