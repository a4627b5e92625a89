//! dg projects and workspaces (reference-behaviour §1.1–1.4): discovery from `dg.toml` or
//! `pyproject.toml` `[tool.dg]`, the derived per-project values, the merged `build.yaml` and
//! `container_context.yaml`, and the generated `dagster_cloud.yaml` text.
//!
//! Deliberate differences from the reference (the ref-bugs of reference-behaviour §8):
//! * a project inside a workspace that lists it gets the workspace `build.yaml` and
//!   `container_context.yaml` merged in, wherever the command runs (reference-behaviour ref-bug 3);
//! * the project's files are merged over the workspace's, never the reverse
//!   (reference-behaviour ref-bug 4);
//! * container contexts are merged with the `container_context.` key prefix, so the list
//!   strategies of §1.6.3 apply (`env_vars` of the project replace same-named workspace ones;
//!   reference-behaviour ref-bug 2);
//! * an empty `build.yaml` is an error instead of a crash; a `container_context.yaml` with only
//!   comments (as the scaffolder writes it) means "no container context".
//!
//! A file that cannot be read or parsed stops the discovery at once; schema problems do not:
//! every project of a workspace is checked, and the error lists every problem of every file.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use crate::dagster_cloud::{BUILD_KEYS, Build};
use crate::error::{Diagnostic, DiagnosticKind, Error, Problems, Reported, Result};
use crate::merge::{drop_nulls_map, merge_with_defaults};
use crate::schema::{at, check_keys, expect_map, optional_string};
use crate::values::{LocationName, Registry};
use crate::yaml::{self, FieldPath, Source, Target, line_column};

/// A dg project or workspace found by [`DgContext::discover`].
#[derive(Debug, Clone)]
pub struct DgContext {
    root: PathBuf,
    is_workspace: bool,
    workspace_root: Option<PathBuf>,
    projects: Vec<DgProject>,
}

/// One dg project with its derived values and merged build configuration.
#[derive(Debug, Clone)]
pub struct DgProject {
    name: LocationName,
    root: PathBuf,
    config_file: PathBuf,
    root_module: String,
    target_module: String,
    package_name: Option<String>,
    build_root: PathBuf,
    build: Build,
    build_directory: Option<PathBuf>,
    container_context: Option<Map<String, Value>>,
    agent_queue: Option<String>,
    image: Option<String>,
}

impl DgContext {
    /// Walks up from `start` to the nearest dg project or workspace and loads it with all its
    /// projects (one for a project context, all members in spec order for a workspace).
    ///
    /// A file that cannot be read or parsed is the error; otherwise every problem of every
    /// project's files is checked and reported together.
    ///
    /// ```
    /// use dagster_deploy_buildconfig::DgContext;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let project = dir.path().join("sales");
    /// std::fs::create_dir(&project).unwrap();
    /// std::fs::write(project.join("dg.toml"), "[project]\nroot_module = \"sales\"\n").unwrap();
    /// std::fs::write(project.join("build.yaml"), "registry: ghcr.io/acme/sales\n").unwrap();
    ///
    /// let context = DgContext::discover(&project).unwrap();
    /// let [sales] = context.projects() else { panic!() };
    /// assert_eq!(sales.name().as_str(), "sales");
    /// assert_eq!(sales.target_module(), "sales.definitions");
    /// assert_eq!(sales.registry().unwrap().as_str(), "ghcr.io/acme/sales");
    ///
    /// std::fs::write(project.join("build.yaml"), "registry: ghcr.io/acme/sales:v1\nbuld: .\n").unwrap();
    /// let error = DgContext::discover(&project).unwrap_err();
    /// assert_eq!(error.problem_count(), 2);
    /// assert_eq!(error.diagnostics()[0].location(), Some("sales"));
    /// ```
    pub fn discover(start: &Path) -> Result<Self> {
        let start = std::fs::canonicalize(start).map_err(|source| Error::Read {
            path: start.to_path_buf(),
            source,
        })?;
        let mut found = None;
        for folder in start.ancestors() {
            if let Some(config) = DgConfigFile::read(folder)? {
                found = Some(config);
                break;
            }
        }
        let Some(config) = found else {
            return Err(Error::NoDgConfig { start });
        };
        let mut problems = Problems::default();
        let context = Self::load(config, &mut problems)?;
        problems.finish()?;
        Ok(context.unwrap_or_else(|| unreachable!("a dg context failed without a problem")))
    }

    /// Loads the context `config` describes; `None` when a problem was recorded.
    fn load(config: DgConfigFile, problems: &mut Problems) -> Result<Option<Self>> {
        let Some(directory_type) = config.directory_type(problems) else {
            return Ok(None);
        };
        if directory_type == DirectoryType::Workspace {
            let workspace = Workspace::load(config, problems)?;
            let projects = workspace.load_projects(problems)?;
            return Ok(Some(Self {
                root: workspace.root.clone(),
                is_workspace: true,
                workspace_root: Some(workspace.root),
                projects,
            }));
        }
        let root = config.folder.clone();
        let workspace = find_parent_workspace(&root, problems)?;
        let Some(project) = DgProject::load(config, workspace.as_ref(), problems)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            root,
            is_workspace: false,
            workspace_root: workspace.map(|workspace| workspace.root),
            projects: vec![project],
        }))
    }

    /// The project or workspace root (absolute, canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the context is a workspace (the command runs at the workspace root).
    pub fn is_workspace(&self) -> bool {
        self.is_workspace
    }

    /// The workspace root: the context itself, or the workspace that lists this project.
    pub fn workspace_root(&self) -> Option<&Path> {
        self.workspace_root.as_deref()
    }

    /// The projects: the one project, or every workspace project in spec order.
    pub fn projects(&self) -> &[DgProject] {
        &self.projects
    }

    /// The project whose code location is named `name`, if any.
    pub fn project(&self, name: &str) -> Option<&DgProject> {
        self.projects
            .iter()
            .find(|project| project.name.as_str() == name)
    }

    /// The generated `dagster_cloud.yaml` text (reference-behaviour §1.4): `{locations: [...]}`
    /// with one entry per project, keys sorted, block style. [`crate::DagsterCloudYaml::parse`]
    /// accepts it.
    pub fn to_dagster_cloud_yaml(&self) -> Result<String> {
        let locations: Vec<Value> = self
            .projects
            .iter()
            .map(DgProject::location_entry)
            .collect();
        let mut document = Map::new();
        document.insert("locations".to_owned(), Value::Array(locations));
        let document = sort_keys(Value::Object(document));
        // Serialising a JSON value (strings, numbers, booleans, sequences, string-keyed
        // mappings) to YAML cannot fail; an error here is a bug in serde_yaml_ng.
        Ok(serde_yaml_ng::to_string(&document)
            .unwrap_or_else(|err| unreachable!("serialising a JSON value to YAML failed: {err}")))
    }
}

impl DgProject {
    /// The code location name: `project.code_location_name`, else the project folder's name.
    pub fn name(&self) -> &LocationName {
        &self.name
    }

    /// The project root (absolute, canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The dg config file of the project (`dg.toml` or `pyproject.toml`).
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// `project.root_module`: the top-level Python package.
    pub fn root_module(&self) -> &str {
        &self.root_module
    }

    /// The module holding `Definitions`: `project.code_location_target_module`, else
    /// `<root_module>.definitions`.
    pub fn target_module(&self) -> &str {
        &self.target_module
    }

    /// `[project].name` of the project's `pyproject.toml`, if present.
    pub fn package_name(&self) -> Option<&str> {
        self.package_name.as_deref()
    }

    /// The nearest folder (from the project root up) whose `pyproject.toml` has a non-empty
    /// `[tool.uv.workspace]`, else the project root: the Docker build context when the build
    /// configuration has no `directory`.
    pub fn build_root(&self) -> &Path {
        &self.build_root
    }

    /// The merged build configuration (project over workspace); `directory`, when set, is the
    /// canonical absolute path.
    pub fn build(&self) -> &Build {
        &self.build
    }

    /// The merged `directory` as a path (canonical, absolute), if set.
    pub fn build_directory(&self) -> Option<&Path> {
        self.build_directory.as_deref()
    }

    /// The merged `registry`, if set.
    pub fn registry(&self) -> Option<&Registry> {
        self.build.registry()
    }

    /// The Docker build context: the merged `directory`, else the build root.
    pub fn build_context(&self) -> &Path {
        self.build_directory.as_deref().unwrap_or(&self.build_root)
    }

    /// `<directory>/Dockerfile` when the build configuration has a `directory`, else
    /// `<project root>/Dockerfile`.
    pub fn dockerfile_path(&self) -> PathBuf {
        self.build_directory
            .as_deref()
            .unwrap_or(&self.root)
            .join("Dockerfile")
    }

    /// The merged container context (project over workspace), if non-empty.
    pub fn container_context(&self) -> Option<&Map<String, Value>> {
        self.container_context.as_ref()
    }

    /// `project.agent_queue`, if set and non-empty.
    pub fn agent_queue(&self) -> Option<&str> {
        self.agent_queue.as_deref()
    }

    /// `project.image`, if set and non-empty.
    pub fn image(&self) -> Option<&str> {
        self.image.as_deref()
    }

    /// The location entry of the generated `dagster_cloud.yaml` (reference-behaviour §1.4).
    pub fn location_entry(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("location_name".to_owned(), Value::from(self.name.as_str()));
        let mut code_source = Map::new();
        code_source.insert(
            "module_name".to_owned(),
            Value::from(self.target_module.as_str()),
        );
        entry.insert("code_source".to_owned(), Value::Object(code_source));
        if !self.build.is_empty() {
            let mut build = Map::new();
            if let Some(directory) = self.build.directory() {
                build.insert("directory".to_owned(), Value::from(directory));
            }
            if let Some(registry) = self.build.registry() {
                build.insert("registry".to_owned(), Value::from(registry.as_str()));
            }
            entry.insert("build".to_owned(), Value::Object(build));
        }
        if let Some(container_context) = &self.container_context {
            entry.insert(
                "container_context".to_owned(),
                Value::Object(container_context.clone()),
            );
        }
        if let Some(agent_queue) = &self.agent_queue {
            entry.insert("agent_queue".to_owned(), Value::from(agent_queue.as_str()));
        }
        if let Some(image) = &self.image {
            entry.insert("image".to_owned(), Value::from(image.as_str()));
        }
        Value::Object(entry)
    }

    /// Loads the project `config` describes, recording every problem of its files; `None` when
    /// a problem was recorded.
    fn load(
        config: DgConfigFile,
        workspace: Option<&Workspace>,
        problems: &mut Problems,
    ) -> Result<Option<Self>> {
        let count = problems.count();
        let settings = config.settings.as_ref();
        let project_settings = settings.and_then(|settings| settings.project.as_ref());
        let Some(project_settings) = project_settings else {
            config.report_at(
                problems,
                0,
                &config.key("project"),
                DiagnosticKind::MissingKey,
                "the `project` table is missing",
                format!(
                    "add a [{}] table with `root_module = \"<your_package>\"`",
                    config.key("project")
                ),
            );
            return Ok(None);
        };
        let project_settings_span = project_settings.span();
        let project_settings = project_settings.get_ref();
        let root_module_help =
            "set it to the project's top-level Python package, e.g. `root_module = \"my_project\"`";
        let root_module = match &project_settings.root_module {
            Some(root_module) if !root_module.get_ref().trim().is_empty() => {
                root_module.get_ref().clone()
            }
            Some(root_module) => {
                config.report_at(
                    problems,
                    root_module.span().start,
                    &config.key("project.root_module"),
                    DiagnosticKind::EmptyValue,
                    "`root_module` is empty",
                    root_module_help,
                );
                String::new()
            }
            None => {
                config.report_at(
                    problems,
                    project_settings_span.start,
                    &config.key("project.root_module"),
                    DiagnosticKind::MissingKey,
                    "the required key `root_module` is missing",
                    root_module_help,
                );
                String::new()
            }
        };
        let name_text = match non_empty(&project_settings.code_location_name) {
            Some(name) => name.to_owned(),
            None => config
                .folder
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let name = LocationName::new(&name_text)
            .map_err(|invalid| {
                let problem = crate::values::Problem::from(invalid);
                let offset = project_settings
                    .code_location_name
                    .as_ref()
                    .map_or(project_settings_span.start, |name| name.span().start);
                config.report_at(
                    problems,
                    offset,
                    &config.key("project.code_location_name"),
                    DiagnosticKind::InvalidLocationName,
                    problem.problem,
                    problem.help,
                )
            })
            .ok();
        let target_module = non_empty(&project_settings.code_location_target_module)
            .map_or_else(|| format!("{root_module}.definitions"), str::to_owned);
        let agent_queue = non_empty(&project_settings.agent_queue).map(str::to_owned);
        let image = non_empty(&project_settings.image).map(str::to_owned);
        let root = config.folder.clone();
        let package_name = read_package_name(&root)?;
        let build_root = find_build_root(&root)?;

        let project_build = BuildFile::read(&root, &name_text, problems)?;
        let workspace_build = match workspace {
            Some(workspace) => workspace.build.as_ref(),
            None => None,
        };
        let registry = project_build
            .as_ref()
            .and_then(|build| build.registry.clone())
            .or_else(|| workspace_build.and_then(|build| build.registry.clone()));
        let build_directory = project_build
            .as_ref()
            .and_then(|build| build.directory.clone())
            .or_else(|| workspace_build.and_then(|build| build.directory.clone()));
        let build = Build::new(
            build_directory
                .as_ref()
                .map(|directory| directory.to_string_lossy().into_owned()),
            registry,
        );

        let project_context = ContainerContextFile::read(&root, problems)?;
        let container_context = match (
            workspace.and_then(|workspace| workspace.container_context.as_ref()),
            &project_context,
        ) {
            (None, None) => None,
            (Some(workspace_context), None) => Some(drop_nulls_map(&workspace_context.map)),
            (None, Some(project_context)) => Some(drop_nulls_map(&project_context.map)),
            (Some(workspace_context), Some(project_context)) => merge_with_defaults(
                &workspace_context.map,
                project_context.map.clone(),
                "container_context.",
            )
            .map_err(|conflict| {
                let mut field = FieldPath::root();
                for key in &conflict.keys {
                    field = field.key(key);
                }
                let source = Source {
                    path: &project_context.path,
                    text: &project_context.text,
                };
                source.report(
                    problems,
                    &field,
                    Target::Value,
                    DiagnosticKind::MergeConflict,
                    format!(
                        "cannot merge with the workspace's {}: this is {} there it is {}",
                        workspace_context.path.display(),
                        conflict.location_kind,
                        conflict.defaults_kind
                    ),
                    "make both files use the same kind of value at this key",
                )
            })
            .ok(),
        }
        .filter(|map| !map.is_empty());

        if problems.count() > count {
            problems.name_location(count, &name_text);
            return Ok(None);
        }
        let Some(name) = name else {
            unreachable!("a project name failed without a problem")
        };
        Ok(Some(Self {
            name,
            root,
            config_file: config.path,
            root_module,
            target_module,
            package_name,
            build_root,
            build,
            build_directory,
            container_context,
            agent_queue,
            image,
        }))
    }
}

fn non_empty(value: &Option<Spanned<String>>) -> Option<&str> {
    value
        .as_ref()
        .map(|value| value.get_ref().as_str())
        .filter(|value| !value.is_empty())
}

/// Recursively sorts mapping keys (the reference dumps with `sort_keys=True`).
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|(left, _), (right, _)| left.cmp(right));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, sort_keys(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirectoryType {
    Project,
    Workspace,
}

/// The dg settings we read: top level of `dg.toml`, or `[tool.dg]` of `pyproject.toml`.
#[derive(Debug, Deserialize)]
struct DgSettings {
    directory_type: Option<Spanned<String>>,
    project: Option<Spanned<ProjectSettings>>,
    workspace: Option<Spanned<WorkspaceSettings>>,
}

#[derive(Debug, Deserialize)]
struct ProjectSettings {
    root_module: Option<Spanned<String>>,
    code_location_name: Option<Spanned<String>>,
    code_location_target_module: Option<Spanned<String>>,
    agent_queue: Option<Spanned<String>>,
    image: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
struct WorkspaceSettings {
    #[serde(default)]
    projects: Vec<Spanned<WorkspaceProject>>,
}

#[derive(Debug, Deserialize)]
struct WorkspaceProject {
    path: Spanned<String>,
}

#[derive(Debug, Deserialize)]
struct PyProject {
    project: Option<PyProjectProject>,
    tool: Option<PyProjectTool>,
}

#[derive(Debug, Deserialize)]
struct PyProjectProject {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PyProjectTool {
    dg: Option<DgSettings>,
    uv: Option<UvTool>,
}

#[derive(Debug, Deserialize)]
struct UvTool {
    workspace: Option<toml::Table>,
}

/// A folder's dg config file, parsed.
struct DgConfigFile {
    folder: PathBuf,
    path: PathBuf,
    text: String,
    /// `tool.dg.` for `pyproject.toml`, empty for `dg.toml`: prepended to field paths.
    prefix: &'static str,
    settings: Option<DgSettings>,
}

impl DgConfigFile {
    /// The dg config of `folder`: `dg.toml` wins over `pyproject.toml` with `[tool.dg]`.
    fn read(folder: &Path) -> Result<Option<Self>> {
        let dg_toml = folder.join("dg.toml");
        if dg_toml.is_file() {
            let text = yaml::read_text(&dg_toml)?;
            let settings: DgSettings = parse_toml(&text, &dg_toml)?;
            return Ok(Some(Self {
                folder: folder.to_path_buf(),
                path: dg_toml,
                text,
                prefix: "",
                settings: Some(settings),
            }));
        }
        let pyproject = folder.join("pyproject.toml");
        if pyproject.is_file() {
            let text = yaml::read_text(&pyproject)?;
            let parsed: PyProject = parse_toml(&text, &pyproject)?;
            if let Some(settings) = parsed.tool.and_then(|tool| tool.dg) {
                return Ok(Some(Self {
                    folder: folder.to_path_buf(),
                    path: pyproject,
                    text,
                    prefix: "tool.dg.",
                    settings: Some(settings),
                }));
            }
        }
        Ok(None)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Records a problem at byte `offset` of this file.
    fn report_at(
        &self,
        problems: &mut Problems,
        offset: usize,
        field: &str,
        kind: DiagnosticKind,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Reported {
        problems.push(|| {
            let (line, column) = line_column(&self.text, offset);
            Diagnostic {
                path: self.path.clone(),
                line,
                column,
                field: field.to_owned(),
                kind,
                location: None,
                message: message.into(),
                help: help.into(),
            }
        })
    }

    /// The directory type, or `None` once an unknown one is reported.
    fn directory_type(&self, problems: &mut Problems) -> Option<DirectoryType> {
        let Some(settings) = &self.settings else {
            return Some(DirectoryType::Project);
        };
        match &settings.directory_type {
            Some(value) => match value.get_ref().as_str() {
                "project" => Some(DirectoryType::Project),
                "workspace" => Some(DirectoryType::Workspace),
                other => {
                    self.report_at(
                        problems,
                        value.span().start,
                        &self.key("directory_type"),
                        DiagnosticKind::InvalidValue,
                        format!("unknown directory type `{}`", other.escape_debug()),
                        "use `directory_type = \"project\"` or `directory_type = \"workspace\"`",
                    );
                    None
                }
            },
            // Without the key, the tables present decide.
            None if settings.workspace.is_some() && settings.project.is_none() => {
                Some(DirectoryType::Workspace)
            }
            None => Some(DirectoryType::Project),
        }
    }
}

/// Most parts a dotted TOML key (`a.b.c`, `[a.b.c]`) may have. The toml parser takes time
/// quadratic in a key's length (100,000 parts took seconds); real keys have a handful.
const MAX_KEY_PARTS: usize = 128;

/// Checks, in one pass, that no dotted key in `text` has more than [`MAX_KEY_PARTS`] parts.
/// Dots are counted outside strings and comments, from the last `=`, `,`, bracket, brace or
/// line break; a number or a date has at most one dot, so only keys can reach the limit.
fn check_dotted_keys(text: &str, path: &Path) -> Result<()> {
    let bytes = text.as_bytes();
    let mut dots = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' | b'\'' => {
                let quote = bytes[at];
                let triple = bytes.get(at..at + 3) == Some(&[quote, quote, quote][..]);
                at = if triple {
                    let closing = [quote, quote, quote];
                    bytes[at + 3..]
                        .windows(3)
                        .position(|window| window == closing)
                        .map_or(bytes.len(), |end| at + 3 + end + 3)
                } else {
                    let mut end = at + 1;
                    while end < bytes.len() && bytes[end] != quote && bytes[end] != b'\n' {
                        end += if quote == b'"' && bytes[end] == b'\\' {
                            2
                        } else {
                            1
                        };
                    }
                    end + 1
                };
                continue;
            }
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
                continue;
            }
            b'.' => {
                dots += 1;
                if dots >= MAX_KEY_PARTS {
                    let (line, column) = line_column(text, at);
                    return Err(Error::Syntax {
                        path: path.to_path_buf(),
                        line,
                        column,
                        message: format!("a dotted key has more than {MAX_KEY_PARTS} parts"),
                        help: "shorten the key; keys this long are not supported",
                    });
                }
            }
            b'=' | b',' | b'[' | b']' | b'{' | b'}' | b'\n' => dots = 0,
            _ => {}
        }
        at += 1;
    }
    Ok(())
}

fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    check_dotted_keys(text, path)?;
    toml::from_str(text).map_err(|err| {
        let (line, column) = line_column(text, err.span().map_or(0, |span| span.start));
        Error::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: err.message().trim().to_owned(),
            help: "fix the TOML at this position",
        }
    })
}

/// `[project].name` of `<root>/pyproject.toml`, if the file and key exist.
fn read_package_name(root: &Path) -> Result<Option<String>> {
    let pyproject = root.join("pyproject.toml");
    if !pyproject.is_file() {
        return Ok(None);
    }
    let text = yaml::read_text(&pyproject)?;
    let parsed: PyProject = parse_toml(&text, &pyproject)?;
    Ok(parsed.project.and_then(|project| project.name))
}

/// The nearest folder from `root` up whose `pyproject.toml` has a non-empty `[tool.uv.workspace]`.
fn find_build_root(root: &Path) -> Result<PathBuf> {
    for folder in root.ancestors() {
        let pyproject = folder.join("pyproject.toml");
        if !pyproject.is_file() {
            continue;
        }
        let text = yaml::read_text(&pyproject)?;
        let parsed: PyProject = parse_toml(&text, &pyproject)?;
        let has_uv_workspace = parsed
            .tool
            .and_then(|tool| tool.uv)
            .and_then(|uv| uv.workspace)
            .is_some_and(|workspace| !workspace.is_empty());
        if has_uv_workspace {
            return Ok(folder.to_path_buf());
        }
    }
    Ok(root.to_path_buf())
}

/// A workspace with its own `build.yaml` and `container_context.yaml`.
struct Workspace {
    root: PathBuf,
    config: DgConfigFile,
    build: Option<BuildFile>,
    container_context: Option<ContainerContextFile>,
}

impl Workspace {
    fn load(config: DgConfigFile, problems: &mut Problems) -> Result<Self> {
        let root = config.folder.clone();
        Ok(Self {
            build: BuildFile::read(&root, "(workspace)", problems)?,
            container_context: ContainerContextFile::read(&root, problems)?,
            root,
            config,
        })
    }

    fn project_entries(&self) -> &[Spanned<WorkspaceProject>] {
        self.config
            .settings
            .as_ref()
            .and_then(|settings| settings.workspace.as_ref())
            .map_or(&[], |workspace| workspace.get_ref().projects.as_slice())
    }

    /// The canonical roots of the member projects that exist, with the byte offset of each
    /// `path` value and its index; a folder that does not exist is reported.
    fn project_roots(&self, problems: &mut Problems) -> Vec<(PathBuf, usize, usize)> {
        let mut roots = Vec::new();
        for (index, entry) in self.project_entries().iter().enumerate() {
            let path = &entry.get_ref().path;
            let joined = self.root.join(path.get_ref());
            match std::fs::canonicalize(&joined) {
                Ok(root) => roots.push((root, path.span().start, index)),
                Err(_) => {
                    self.config.report_at(
                        problems,
                        path.span().start,
                        &format!("{}[{index}].path", self.config.key("workspace.projects")),
                        DiagnosticKind::DirectoryNotFound,
                        format!(
                            "project folder `{}` not found at {}",
                            path.get_ref().escape_debug(),
                            joined.display()
                        ),
                        "fix the path (relative to the workspace root) or remove the entry",
                    );
                }
            }
        }
        roots
    }

    /// Loads every member project, recording the problems of all of them; the projects
    /// returned are those without problems.
    fn load_projects(&self, problems: &mut Problems) -> Result<Vec<DgProject>> {
        let mut projects: Vec<DgProject> = Vec::new();
        for (root, offset, index) in self.project_roots(problems) {
            let field = format!("{}[{index}].path", self.config.key("workspace.projects"));
            let Some(config) = DgConfigFile::read(&root)? else {
                self.config.report_at(
                    problems,
                    offset,
                    &field,
                    DiagnosticKind::NotAProject,
                    format!(
                        "{} has no dg.toml or pyproject.toml with [tool.dg]",
                        root.display()
                    ),
                    "create the project's dg configuration or remove the entry",
                );
                continue;
            };
            match config.directory_type(problems) {
                Some(DirectoryType::Project) => {}
                Some(DirectoryType::Workspace) => {
                    self.config.report_at(
                        problems,
                        offset,
                        &field,
                        DiagnosticKind::NotAProject,
                        format!("{} is not a dg project", root.display()),
                        "list only project folders under [[workspace.projects]]",
                    );
                    continue;
                }
                None => continue,
            }
            let Some(project) = DgProject::load(config, Some(self), problems)? else {
                continue;
            };
            if let Some(other) = projects.iter().find(|other| other.name == project.name) {
                let count = problems.count();
                self.config.report_at(
                    problems,
                    offset,
                    &field,
                    DiagnosticKind::DuplicateLocationName,
                    format!(
                        "the projects at {} and {} both have the location name `{}`",
                        other.root.display(),
                        project.root.display(),
                        project.name
                    ),
                    "set a distinct `code_location_name` in one of the projects",
                );
                problems.name_location(count, project.name.as_str());
                continue;
            }
            projects.push(project);
        }
        Ok(projects)
    }
}

/// The workspace above `project_root` that lists it as a member, if any.
fn find_parent_workspace(
    project_root: &Path,
    problems: &mut Problems,
) -> Result<Option<Workspace>> {
    for folder in project_root.ancestors().skip(1) {
        let Some(config) = DgConfigFile::read(folder)? else {
            continue;
        };
        if config.directory_type(problems) != Some(DirectoryType::Workspace) {
            continue;
        }
        let workspace = Workspace::load(config, problems)?;
        let is_member = workspace
            .project_roots(problems)
            .iter()
            .any(|(root, _, _)| root == project_root);
        return Ok(is_member.then_some(workspace));
    }
    Ok(None)
}

/// A parsed `build.yaml`: `directory` (canonical, absolute) and `registry`.
struct BuildFile {
    directory: Option<PathBuf>,
    registry: Option<Registry>,
}

impl BuildFile {
    /// Reads `folder/build.yaml` of `location`, if the file exists; `None` also when a problem
    /// was recorded.
    fn read(folder: &Path, location: &str, problems: &mut Problems) -> Result<Option<Self>> {
        let path = folder.join("build.yaml");
        if !path.exists() {
            return Ok(None);
        }
        let text = yaml::read_text(&path)?;
        let source = Source {
            path: &path,
            text: &text,
        };
        let value = source
            .parse("write `registry: <repository>` and/or `directory: .`, or delete the file")?;
        let count = problems.count();
        let root = FieldPath::root();
        let Ok(map) = expect_map(problems, &source, &value, &root, "build.yaml") else {
            return Ok(None);
        };
        let _ = check_keys(problems, &source, map, &root, BUILD_KEYS, "build.yaml");
        let registry = match optional_string(problems, &source, map, &root, "registry") {
            Ok(Some(registry)) => Registry::new(registry)
                .map_err(|problem| {
                    at(
                        problems,
                        &source,
                        &root.key("registry"),
                        DiagnosticKind::InvalidRegistry,
                        problem,
                    )
                })
                .ok(),
            _ => None,
        };
        let directory = match optional_string(problems, &source, map, &root, "directory") {
            Ok(Some(written)) => {
                let joined = folder.join(written);
                match std::fs::canonicalize(&joined) {
                    Ok(directory) if directory.is_dir() && !written.is_empty() => Some(directory),
                    _ => {
                        source.report(
                            problems,
                            &root.key("directory"),
                            Target::Value,
                            DiagnosticKind::DirectoryNotFound,
                            format!(
                                "build directory `{}` of location `{location}` not found at {}",
                                written.escape_debug(),
                                joined.display()
                            ),
                            format!(
                                "create the directory or fix the path (a relative path is resolved against the folder of {})",
                                path.display()
                            ),
                        );
                        None
                    }
                }
            }
            _ => None,
        };
        if problems.count() > count {
            return Ok(None);
        }
        Ok(Some(Self {
            directory,
            registry,
        }))
    }
}

/// A parsed `container_context.yaml` (kept with its text for error positions).
struct ContainerContextFile {
    path: PathBuf,
    text: String,
    map: Map<String, Value>,
}

impl ContainerContextFile {
    /// Reads `folder/container_context.yaml`, if the file exists and says something; `None`
    /// also when a problem was recorded.
    fn read(folder: &Path, problems: &mut Problems) -> Result<Option<Self>> {
        let path = folder.join("container_context.yaml");
        if !path.exists() {
            return Ok(None);
        }
        let text = yaml::read_text(&path)?;
        let source = Source {
            path: &path,
            text: &text,
        };
        let value = match source.parse("") {
            Ok(value) => value,
            // The scaffolder writes a fully commented template: that means "nothing to add".
            Err(Error::Empty { .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        let Ok(map) = expect_map(
            problems,
            &source,
            &value,
            &FieldPath::root(),
            "container_context.yaml",
        ) else {
            return Ok(None);
        };
        let map = map.clone();
        Ok(Some(Self { path, text, map }))
    }
}

#[cfg(test)]
mod tests;
