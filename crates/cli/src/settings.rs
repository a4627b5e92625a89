//! Resolves flags, env vars and the `dg plus login` config files into plain values. The
//! precedence is written once, here: flag, then env var, then config file, then default. An
//! empty env var counts as unset. Config files are read only when a value is still missing.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use dagster_deploy_cloud_client::{ApiToken, ClientOptions, CloudClient, OrgUrl};
use serde::Deserialize;

use crate::args::{CloudArgs, env};
use crate::failure::{ExitKind, Failure};
use crate::output::Output;

/// Where a setting came from, for `--verbose`.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Flag(&'static str),
    Env(&'static str),
    ConfigFile(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(name) => write!(f, "env var {name}"),
            Source::ConfigFile(path) => write!(f, "config file {}", path.display()),
        }
    }
}

/// Reads an env var, treating an empty value as unset.
pub(crate) fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Tells whether clap took `id` from the command line or from its env var, searching the
/// deepest subcommand that defines it.
fn source_of(
    matches: &clap::ArgMatches,
    id: &str,
    flag: &'static str,
    env_name: &'static str,
) -> Source {
    fn find(matches: &clap::ArgMatches, id: &str) -> Option<ValueSource> {
        if let Some(source) = matches.subcommand().and_then(|(_, sub)| find(sub, id)) {
            return Some(source);
        }
        if matches.ids().any(|known| known.as_str() == id) {
            matches.value_source(id)
        } else {
            None
        }
    }
    match find(matches, id) {
        Some(ValueSource::EnvVariable) => Source::Env(env_name),
        _ => Source::Flag(flag),
    }
}

/// The Plus config written by `dg plus login` or `dagster-cloud config` (SPEC §1.8).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlusConfig {
    url: Option<String>,
    organization: Option<String>,
    default_deployment: Option<String>,
    user_token: Option<String>,
    agent_timeout: Option<u64>,
}

#[derive(Deserialize)]
struct DgToml {
    cli: Option<DgCli>,
}

#[derive(Deserialize)]
struct DgCli {
    plus: Option<PlusConfig>,
}

/// The Plus config file, if any, and its path.
#[derive(Debug, Default)]
pub(crate) struct LoadedPlusConfig {
    path: Option<PathBuf>,
    config: PlusConfig,
}

fn home() -> Option<PathBuf> {
    env_var("HOME").map(PathBuf::from)
}

fn load_plus_config(output: &Output) -> Result<LoadedPlusConfig, Failure> {
    let legacy = env_var(env::LEGACY_CONFIG)
        .map(PathBuf::from)
        .or_else(|| home().map(|home| home.join(".dagster_cloud_cli").join("config")));
    let dg = env_var(env::DG_CONFIG).map(PathBuf::from).or_else(|| {
        env_var(env::XDG_CONFIG_HOME)
            .map(PathBuf::from)
            .or_else(|| home().map(|home| home.join(".config")))
            .map(|dir| dir.join("dg.toml"))
    });
    let read_legacy = |path: &Path| -> Result<PlusConfig, Failure> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| Failure::io(format!("cannot read {}: {error}", path.display())))?;
        if text.trim().is_empty() {
            return Ok(PlusConfig::default());
        }
        // Bounded parse time: the file is outside input too.
        dagster_deploy_buildconfig::check_yaml_nesting(&text, path)?;
        serde_yaml_ng::from_str(&text).map_err(|error| {
            // The parser's message may quote a value, and the value may be the token: keep
            // the position, and the message only when it names a key.
            let position = error
                .location()
                .map(|location| format!(":{}:{}", location.line(), location.column()))
                .unwrap_or_default();
            let message = error.to_string();
            let message = if message.starts_with("unknown field") || message.starts_with("missing field") {
                message.split(" at line").next().unwrap_or_default().to_owned()
            } else {
                "not a valid Dagster+ CLI config (a mapping of url, organization, default_deployment, user_token, agent_timeout)".to_owned()
            };
            Failure::config(format!("{}{position}: {message}", path.display()))
                .with_hint("fix the file, or remove it and run `dg plus login` again")
        })
    };
    let read_dg = |path: &Path| -> Result<Option<PlusConfig>, Failure> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| Failure::io(format!("cannot read {}: {error}", path.display())))?;
        dagster_deploy_buildconfig::check_toml_keys(&text, path)?;
        let parsed: DgToml = toml::from_str(&text).map_err(|error| {
            // toml's Display quotes the offending source line, which may be the token's line:
            // report the position and the message only.
            let position = error
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| {
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                    format!(":{line}:{column}")
                })
                .unwrap_or_default();
            Failure::config(format!(
                "{}{position}: {}",
                path.display(),
                error.message().trim()
            ))
            .with_hint("fix the [cli.plus] table, or run `dg plus login` again")
        })?;
        Ok(parsed.cli.and_then(|cli| cli.plus))
    };
    let legacy = legacy.filter(|path| path.is_file());
    let dg_config = match dg.as_deref().filter(|path| path.is_file()) {
        Some(path) => read_dg(path)?.map(|config| (path.to_path_buf(), config)),
        None => None,
    };
    match (legacy, dg_config) {
        (Some(legacy), dg_config) => {
            if let Some((dg_path, _)) = dg_config {
                // The reference refuses to read any value in this case (ref-bug 35); we use the
                // legacy file, as the reference's resolution order says, and say so.
                output.warn(format!(
                    "found Dagster+ config in both {} and {}; using the first",
                    legacy.display(),
                    dg_path.display()
                ));
            }
            Ok(LoadedPlusConfig {
                config: read_legacy(&legacy)?,
                path: Some(legacy),
            })
        }
        (None, Some((path, config))) => Ok(LoadedPlusConfig {
            path: Some(path),
            config,
        }),
        (None, None) => Ok(LoadedPlusConfig::default()),
    }
}

/// A resolved value and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Resolved<T> {
    pub(crate) value: T,
    pub(crate) source: Source,
}

/// Organization, deployment, token and URL, resolved once per command.
pub(crate) struct CloudSettings<'a> {
    args: CloudArgs,
    matches: &'a clap::ArgMatches,
    output: &'a Output,
    config: OnceCell<LoadedPlusConfig>,
}

impl<'a> CloudSettings<'a> {
    pub(crate) fn new(args: &CloudArgs, matches: &'a clap::ArgMatches, output: &'a Output) -> Self {
        CloudSettings {
            args: args.clone(),
            matches,
            output,
            config: OnceCell::new(),
        }
    }

    fn config(&self) -> Result<&LoadedPlusConfig, Failure> {
        if let Some(config) = self.config.get() {
            return Ok(config);
        }
        let loaded = load_plus_config(self.output)?;
        Ok(self.config.get_or_init(|| loaded))
    }

    fn config_value(
        &self,
        pick: impl Fn(&PlusConfig) -> Option<&String>,
    ) -> Result<Option<Resolved<String>>, Failure> {
        let config = self.config()?;
        Ok(pick(&config.config)
            .filter(|value| !value.is_empty())
            .map(|value| Resolved {
                value: value.clone(),
                source: Source::ConfigFile(config.path.clone().unwrap_or_default()),
            }))
    }

    fn report(&self, name: &str, resolved: &Option<Resolved<String>>, secret: bool) {
        match resolved {
            Some(resolved) if secret => self
                .output
                .detail(format!("{name}: set (from {})", resolved.source)),
            Some(resolved) => self.output.detail(format!(
                "{name}: {} (from {})",
                resolved.value, resolved.source
            )),
            None => self.output.detail(format!("{name}: not set")),
        }
    }

    pub(crate) fn organization(&self) -> Result<Option<Resolved<String>>, Failure> {
        let resolved = match self
            .args
            .organization
            .clone()
            .filter(|value| !value.is_empty())
        {
            Some(value) => Some(Resolved {
                value,
                source: source_of(
                    self.matches,
                    "organization",
                    "--organization",
                    env::ORGANIZATION,
                ),
            }),
            None => self.config_value(|config| config.organization.as_ref())?,
        };
        self.report("organization", &resolved, false);
        Ok(resolved)
    }

    pub(crate) fn deployment(&self) -> Result<Option<Resolved<String>>, Failure> {
        let resolved = match self
            .args
            .deployment
            .clone()
            .filter(|value| !value.is_empty())
        {
            Some(value) => Some(Resolved {
                value,
                source: source_of(self.matches, "deployment", "--deployment", env::DEPLOYMENT),
            }),
            None => self.config_value(|config| config.default_deployment.as_ref())?,
        };
        self.report("deployment", &resolved, false);
        Ok(resolved)
    }

    pub(crate) fn require_deployment(&self) -> Result<String, Failure> {
        self.deployment()?
            .map(|resolved| resolved.value)
            .ok_or_else(|| {
                Failure::usage("no deployment given")
                    .with_hint(format!("pass --deployment NAME or set {}", env::DEPLOYMENT))
            })
    }

    pub(crate) fn token(&self) -> Result<ApiToken, Failure> {
        // Tokens often arrive with a trailing newline (`$(cat token-file)`).
        let resolved = match env_var(env::API_TOKEN)
            .map(|token| token.trim().to_owned())
            .filter(|token| !token.is_empty())
        {
            Some(value) => Some(Resolved {
                value,
                source: Source::Env(env::API_TOKEN),
            }),
            None => self.config_value(|config| config.user_token.as_ref())?,
        };
        self.report("API token", &resolved, true);
        resolved
            .map(|resolved| ApiToken::new(resolved.value))
            .ok_or_else(|| {
                Failure::new(ExitKind::Auth, "no Dagster+ API token").with_hint(format!(
                    "set {} (a CI secret), or run `dg plus login` on a workstation",
                    env::API_TOKEN
                ))
            })
    }

    /// The organization URL: `DAGSTER_CLOUD_URL`, else derived from the organization and region.
    pub(crate) fn org_url(&self) -> Result<OrgUrl, Failure> {
        if let Some(url) = env_var(env::URL) {
            // Parsed first: it refuses URLs with credentials, so what is shown holds none.
            let parsed = OrgUrl::parse(&url).map_err(Failure::from)?;
            self.output.detail(format!(
                "organization URL: {} (from env var {})",
                parsed.as_str(),
                env::URL
            ));
            return Ok(parsed);
        }
        let organization = self.organization()?.ok_or_else(|| {
            Failure::usage("no organization given").with_hint(format!(
                "pass --organization NAME or set {}",
                env::ORGANIZATION
            ))
        })?;
        let region = env_var(env::REGION).or_else(|| {
            let config = self.config().ok()?;
            config
                .config
                .url
                .as_deref()
                .filter(|url| url.contains("eu.dagster.cloud"))
                .map(|_| "eu".to_owned())
        });
        let url = OrgUrl::from_organization(&organization.value, region.as_deref())?;
        self.output
            .detail(format!("organization URL: {}", url.as_str()));
        Ok(url)
    }

    /// A client for the organization.
    pub(crate) fn client(&self) -> Result<CloudClient, Failure> {
        self.client_at(self.org_url()?)
    }

    /// A client for an organization URL known already (a session records it).
    pub(crate) fn client_at(&self, url: OrgUrl) -> Result<CloudClient, Failure> {
        let options = ClientOptions {
            user_agent: format!("dagster-deploy/{}", env!("CARGO_PKG_VERSION")),
            ..ClientOptions::default()
        };
        CloudClient::new(url, self.token()?, options).map_err(Failure::from)
    }

    /// The location load timeout: flag or env var (already merged by clap), then the config
    /// file's `agent_timeout`, then one hour.
    pub(crate) fn load_timeout(&self, given: Option<u64>) -> Result<Duration, Failure> {
        let seconds = match given {
            Some(seconds) => seconds,
            None => self.config()?.config.agent_timeout.unwrap_or(3600),
        };
        Ok(Duration::from_secs(seconds))
    }
}

/// The state directory: `--statedir` or `DAGSTER_BUILD_STATEDIR`, made absolute.
pub(crate) fn statedir(given: Option<&Path>) -> Result<PathBuf, Failure> {
    let dir = given.ok_or_else(|| {
        Failure::usage("no state directory given").with_hint(format!(
            "pass --statedir DIR or set {} to the session's directory",
            env::STATEDIR
        ))
    })?;
    std::path::absolute(dir).map_err(|error| {
        Failure::config(format!(
            "cannot resolve the state directory {}: {error}",
            dir.display()
        ))
    })
}
