//! Resolves flags, env vars and the `dg plus login` config files into plain values. The
//! precedence is written once, here: flag, then env var, then config file, then default. An
//! empty env var counts as unset. Config files are read only when a value is still missing.
//! With `--verbose`, every value says where it came from.
//!
//! The API token goes only to a URL the user configured: `DAGSTER_CLOUD_URL`, the URL derived
//! from the organization (and region), or the config file's `url` (see
//! `OrgUrl::from_configured`); and a session's recorded URL is used only if it is one of those,
//! a Dagster+ host or loopback (see [`CloudSettings::client_for_session`]).

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use dagster_deploy_cloud_client::{
    ApiToken, ClientOptions, CloudClient, OrgUrl, UrlDerivation, validate_deployment_name,
};
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
    /// A key of the config file whose name differs from the setting's (`agent_timeout`).
    ConfigKey(&'static str, PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(name) => write!(f, "env var {name}"),
            Source::ConfigFile(path) => write!(f, "config file {}", path.display()),
            Source::ConfigKey(key, path) => write!(f, "{key} in config file {}", path.display()),
        }
    }
}

/// Reads an env var, treating an empty value as unset.
pub(crate) fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The value of argument `id` from the deepest subcommand that defines it (global arguments are
/// copied into every subcommand).
fn value_of<T: Clone + Send + Sync + 'static>(matches: &clap::ArgMatches, id: &str) -> Option<T> {
    if let Some(value) = matches
        .subcommand()
        .and_then(|(_, sub)| value_of::<T>(sub, id))
    {
        return Some(value);
    }
    if matches.ids().any(|known| known.as_str() == id) {
        matches.get_one::<T>(id).cloned()
    } else {
        None
    }
}

/// `--request-timeout` or `DAGSTER_DEPLOY_REQUEST_TIMEOUT`, in seconds, and where it came from;
/// `None` leaves each client its own default.
pub(crate) fn request_timeout(matches: &clap::ArgMatches) -> Option<Resolved<u64>> {
    value_of::<u64>(matches, "request_timeout").map(|value| Resolved {
        value,
        source: source_of(
            matches,
            "request_timeout",
            "--request-timeout",
            env::REQUEST_TIMEOUT,
        ),
    })
}

/// Reports the request timeout in effect for a client whose default is `default`.
pub(crate) fn report_request_timeout(
    output: &Output,
    resolved: Option<&Resolved<u64>>,
    default: Duration,
) {
    match resolved {
        Some(resolved) => output.detail(format!(
            "request timeout: {} s (from {})",
            resolved.value, resolved.source
        )),
        None => output.detail(format!(
            "request timeout: {} s (default)",
            default.as_secs()
        )),
    }
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

/// The Plus config written by `dg plus login` or `dagster-cloud config` (reference-behaviour §1.8).
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

/// The keys of the Dagster+ CLI config (reference-behaviour §1.8), and the tables that hold them in dg.toml:
/// the only quoted words a config error may show.
const CONFIG_KEYS: &[&str] = &[
    "url",
    "organization",
    "default_deployment",
    "user_token",
    "agent_timeout",
    "cli",
    "plus",
];

/// Largest config file read: real ones are a few hundred bytes.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Deepest `[`/`{` nesting a config file may have: real ones have none.
const MAX_CONFIG_NESTING: usize = 32;

/// A parser message with every quoted or backquoted word replaced by `…`, unless it is one of
/// the [`CONFIG_KEYS`]: parsers quote offending values and keys, and a value (or a key typed
/// by mistake) may be the token.
fn redact_quoted(message: &str) -> String {
    let mut redacted = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        redacted.push_str(&rest[..=start]);
        let after = &rest[start + 1..];
        match after.find(quote) {
            Some(end) => {
                let word = &after[..end];
                redacted.push_str(if CONFIG_KEYS.contains(&word) {
                    word
                } else {
                    "…"
                });
                redacted.push(quote);
                rest = &after[end + 1..];
            }
            None => {
                redacted.push('…');
                rest = "";
            }
        }
    }
    redacted.push_str(rest);
    redacted
}

/// Refuses flow collections nested deeper than [`MAX_CONFIG_NESTING`] before a parser sees
/// them: the YAML parser takes time quadratic in the nesting depth, and a config file holds
/// five scalars. Quoted text and comments are skipped.
fn check_nesting(text: &str, path: &Path) -> Result<(), Failure> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut previous = '\n';
    for (index, character) in text.char_indices() {
        match (quote, character) {
            (_, '\n') => comment = false,
            _ if comment => {}
            (Some(open), _) if character == open => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(character),
            (None, '#') if previous.is_whitespace() => comment = true,
            (None, '[' | '{') => {
                depth += 1;
                if depth > MAX_CONFIG_NESTING {
                    let line = text[..index].matches('\n').count() + 1;
                    return Err(Failure::config(format!(
                        "{}:{line}: nested more than {MAX_CONFIG_NESTING} levels deep; a Dagster+ CLI config holds url, organization, default_deployment, user_token and agent_timeout",
                        path.display()
                    ))
                    .with_hint("fix the file, or remove it and run `dg plus login` again"));
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = character;
    }
    Ok(())
}

/// Parses the legacy (`dagster-cloud`) config file: YAML, the keys at the top level. Errors
/// name the file, line and column, and never quote a value (it may be the token).
pub(crate) fn parse_legacy_config(text: &str, path: &Path) -> Result<PlusConfig, Failure> {
    if text.trim().is_empty() {
        return Ok(PlusConfig::default());
    }
    check_nesting(text, path)?;
    serde_yaml_ng::from_str(text).map_err(|error| {
        // The parser's message may quote a value, and the value may be the token: keep
        // the position, and the message only when it names a key.
        let position = error
            .location()
            .map(|location| format!(":{}:{}", location.line(), location.column()))
            .unwrap_or_default();
        let message = error.to_string();
        let message = if message.starts_with("unknown field") || message.starts_with("missing field") {
            redact_quoted(message.split(" at line").next().unwrap_or_default())
        } else {
            "not a valid Dagster+ CLI config (a mapping of url, organization, default_deployment, user_token, agent_timeout)".to_owned()
        };
        Failure::config(format!("{}{position}: {message}", path.display()))
            .with_hint("fix the file, or remove it and run `dg plus login` again")
    })
}

/// Parses `dg.toml` and returns its `[cli.plus]` table, if any. Errors name the file, line and
/// column, and never quote the source line (it may hold the token).
pub(crate) fn parse_dg_config(text: &str, path: &Path) -> Result<Option<PlusConfig>, Failure> {
    check_nesting(text, path)?;
    let parsed: DgToml = toml::from_str(text).map_err(|error| {
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
            redact_quoted(error.message().trim())
        ))
        .with_hint("fix the [cli.plus] table, or run `dg plus login` again")
    })?;
    Ok(parsed.cli.and_then(|cli| cli.plus))
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
    let read = |path: &Path| {
        // The file exists (only files are read): failing to read it is an I/O error.
        let cannot =
            |error: std::io::Error| Failure::io(format!("cannot read {}: {error}", path.display()));
        let size = std::fs::metadata(path).map_err(cannot)?.len();
        if size > MAX_CONFIG_BYTES {
            return Err(Failure::config(format!(
                "{} is {size} bytes; a Dagster+ CLI config is a few lines",
                path.display()
            ))
            .with_hint("point DAGSTER_CLOUD_CLI_CONFIG or DG_CLI_CONFIG at the right file"));
        }
        std::fs::read_to_string(path).map_err(cannot)
    };
    let legacy = legacy.filter(|path| path.is_file());
    let dg_config = match dg.as_deref().filter(|path| path.is_file()) {
        Some(path) => {
            parse_dg_config(&read(path)?, path)?.map(|config| (path.to_path_buf(), config))
        }
        None => None,
    };
    match (legacy, dg_config) {
        (Some(legacy), dg_config) => {
            if let Some((dg_path, _)) = dg_config {
                // The reference refuses to read any value in this case
                // (reference-behaviour ref-bug 35); we use the legacy file, as the reference's
                // resolution order says, and say so.
                output.warn(format!(
                    "found Dagster+ config in both {} and {}; using the first",
                    legacy.display(),
                    dg_path.display()
                ));
            }
            Ok(LoadedPlusConfig {
                config: parse_legacy_config(&read(&legacy)?, &legacy)?,
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

    /// The deployment, checked: it becomes a URL path segment when the session deploys.
    pub(crate) fn require_deployment(&self) -> Result<String, Failure> {
        let resolved = self.deployment()?.ok_or_else(|| {
            Failure::usage("no deployment given")
                .with_hint(format!("pass --deployment NAME or set {}", env::DEPLOYMENT))
        })?;
        validate_deployment_name(&resolved.value).map_err(|error| {
            let failure = Failure::usage(format!("deployment (from {}): {error}", resolved.source));
            match error.help() {
                Some(help) => failure.with_hint(help),
                None => failure,
            }
        })?;
        Ok(resolved.value)
    }

    pub(crate) fn token(&self) -> Result<ApiToken, Failure> {
        // Tokens often arrive with a trailing newline (`$(cat token-file)`).
        let flag = self.args.api_token.as_ref().map(|token| Resolved {
            value: token.trim().to_owned(),
            source: Source::Flag("--api-token"),
        });
        let env = env_var(env::API_TOKEN).map(|token| Resolved {
            value: token.trim().to_owned(),
            source: Source::Env(env::API_TOKEN),
        });
        let given = |token: &Resolved<String>| !token.value.is_empty();
        let resolved = match flag.filter(given).or(env.filter(given)) {
            Some(resolved) => Some(resolved),
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

    /// The organization URL: `DAGSTER_CLOUD_URL`; else derived from the organization and the
    /// region (`DAGSTER_CLOUD_ENV`); else from the organization and the config file's `url`;
    /// else the organization's default `https://<org>.dagster.cloud`.
    pub(crate) fn org_url(&self) -> Result<OrgUrl, Failure> {
        self.org_url_in_region(None)
    }

    /// [`Self::org_url`], where a region given as a flag (`configure --region`) wins over every
    /// other source.
    pub(crate) fn org_url_in_region(&self, region_flag: Option<&str>) -> Result<OrgUrl, Failure> {
        self.configured_org_url(true, region_flag)?.ok_or_else(|| {
            Failure::usage("no organization given").with_hint(format!(
                "pass --organization NAME or set {}",
                env::ORGANIZATION
            ))
        })
    }

    /// [`Self::org_url`], or `None` when neither a URL nor an organization is configured. A
    /// configured URL is never replaced by a default.
    fn configured_org_url(
        &self,
        report: bool,
        region_flag: Option<&str>,
    ) -> Result<Option<OrgUrl>, Failure> {
        let say = |text: String| {
            if report {
                self.output.detail(text);
            }
        };
        if let Some(url) = env_var(env::URL).filter(|_| region_flag.is_none()) {
            // Parsed first: it refuses URLs with credentials, so what is shown holds none.
            let parsed = OrgUrl::parse(&url).map_err(Failure::from)?;
            say(format!(
                "organization URL: {} (from env var {})",
                parsed.as_str(),
                env::URL
            ));
            return Ok(Some(parsed));
        }
        let organization = if report {
            self.organization()?
        } else {
            self.organization_quietly()?
        };
        let Some(organization) = organization else {
            return Ok(None);
        };
        let region = match region_flag {
            Some(region) => Some((region.to_owned(), "--region".to_owned())),
            None => env_var(env::REGION).map(|region| (region, format!("env var {}", env::REGION))),
        };
        if let Some((region, source)) = region {
            let url = OrgUrl::from_organization(&organization.value, Some(&region))?;
            say(format!(
                "organization URL: {} (from the organization and {source})",
                url.as_str()
            ));
            return Ok(Some(url));
        }
        let config = self.config()?;
        if let Some(configured) = config.config.url.as_deref().filter(|url| !url.is_empty()) {
            let path = config.path.clone().unwrap_or_default();
            let (url, derivation) = OrgUrl::from_configured(configured, &organization.value)
                .map_err(|error| {
                    Failure::from(error).with_hint(format!(
                        "fix `url` in {}, or run `dg plus login` again",
                        path.display()
                    ))
                })?;
            let how = match derivation {
                UrlDerivation::Region(Some(region)) => {
                    format!("from region {region} of url {configured}")
                }
                _ => format!("from url {configured}"),
            };
            say(format!(
                "organization URL: {} ({how} in config file {}, and the organization)",
                url.as_str(),
                path.display()
            ));
            return Ok(Some(url));
        }
        let url = OrgUrl::from_organization(&organization.value, None)?;
        say(format!(
            "organization URL: {} (default for the organization)",
            url.as_str()
        ));
        Ok(Some(url))
    }

    /// The organization without a `--verbose` line (used to check a session's URL).
    fn organization_quietly(&self) -> Result<Option<Resolved<String>>, Failure> {
        match self
            .args
            .organization
            .clone()
            .filter(|value| !value.is_empty())
        {
            Some(value) => Ok(Some(Resolved {
                value,
                source: Source::Flag("--organization"),
            })),
            None => self.config_value(|config| config.organization.as_ref()),
        }
    }

    /// A client for the organization.
    pub(crate) fn client(&self) -> Result<CloudClient, Failure> {
        self.client_at(self.org_url()?)
    }

    /// A client for the organization URL a session recorded. A state file may come from
    /// another CI job, so its URL gets the token only if it is a Dagster+ host, a loopback
    /// address, or the organization URL these settings name.
    pub(crate) fn client_for_session(&self, recorded: OrgUrl) -> Result<CloudClient, Failure> {
        if !recorded.is_dagster_plus_or_loopback() {
            let configured = self.configured_org_url(false, None)?;
            if !configured.is_some_and(|configured| configured.same_as(&recorded)) {
                return Err(Failure::config(format!(
                    "refusing to send the API token to {}: the session names it, but it is neither a Dagster+ host nor the organization URL configured for this command",
                    recorded.as_str()
                ))
                .with_hint(format!(
                    "if that server is meant to get the token, set {} to {} for this command too",
                    env::URL,
                    recorded.as_str()
                )));
            }
        }
        self.client_at(recorded)
    }

    /// A client for an organization URL known already (a session records it).
    pub(crate) fn client_at(&self, url: OrgUrl) -> Result<CloudClient, Failure> {
        let defaults = ClientOptions::default();
        let timeout = request_timeout(self.matches);
        report_request_timeout(self.output, timeout.as_ref(), defaults.request_timeout);
        let options = ClientOptions {
            request_timeout: timeout.map_or(defaults.request_timeout, |timeout| {
                Duration::from_secs(timeout.value)
            }),
            ..defaults
        };
        CloudClient::new(url, self.token()?, options).map_err(Failure::from)
    }

    /// The location load timeout: flag or env var (already merged by clap), then the config
    /// file's `agent_timeout`, then one hour.
    pub(crate) fn load_timeout(&self, given: Option<u64>) -> Result<Duration, Failure> {
        let (seconds, source) = match given {
            Some(seconds) => (
                seconds,
                source_of(
                    self.matches,
                    "location_load_timeout",
                    "--location-load-timeout",
                    env::LOCATION_LOAD_TIMEOUT,
                )
                .to_string(),
            ),
            None => {
                let config = self.config()?;
                match config.config.agent_timeout {
                    Some(seconds) => (
                        seconds,
                        Source::ConfigKey("agent_timeout", config.path.clone().unwrap_or_default())
                            .to_string(),
                    ),
                    None => (DEFAULT_LOAD_TIMEOUT_SECONDS, "default".to_owned()),
                }
            }
        };
        let shown = if source == "default" {
            "default".to_owned()
        } else {
            format!("from {source}")
        };
        self.output
            .detail(format!("location load timeout: {seconds} s ({shown})"));
        Ok(Duration::from_secs(seconds))
    }

    /// The agent heartbeat timeout: flag or env var; zero or absent means the default for the
    /// deployment's agent type, chosen by the client.
    pub(crate) fn heartbeat_timeout(&self, given: Option<u64>) -> Option<Duration> {
        match given.filter(|seconds| *seconds > 0) {
            Some(seconds) => {
                let source = source_of(
                    self.matches,
                    "agent_heartbeat_timeout",
                    "--agent-heartbeat-timeout",
                    env::AGENT_HEARTBEAT_TIMEOUT,
                );
                self.output.detail(format!(
                    "agent heartbeat timeout: {seconds} s (from {source})"
                ));
                Some(Duration::from_secs(seconds))
            }
            None => {
                self.output
                    .detail("agent heartbeat timeout: default (120 s, or 900 s for Serverless)");
                None
            }
        }
    }
}

/// The location load timeout when nothing sets one (reference-behaviour §3.1).
const DEFAULT_LOAD_TIMEOUT_SECONDS: u64 = 3600;

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

#[cfg(test)]
mod tests;
