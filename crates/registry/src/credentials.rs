//! Registry credentials: the `Credentials` choice (passwords are `Secret`s), and lookup in Docker's
//! `config.json` (`auths`, `credsStore`, `credHelpers` via `docker-credential-*` programs, each
//! run with a timeout). The HTTP challenge handling that uses them lives in `client/auth/`;
//! which request may carry them is decided in `policy.rs`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use crate::error::{Error, Result};

/// A password or token: the workspace's one redacting type, whose `Debug` output is redacted and
/// which has no `Display`.
pub use dagster_deploy_types::Secret;

/// Where the client gets registry credentials from.
#[derive(Clone, Debug, Default)]
pub enum Credentials {
    /// Docker's `config.json` in `$DOCKER_CONFIG` or `~/.docker`, including credential helpers.
    #[default]
    FromDockerConfig,
    /// A specific Docker `config.json` file.
    DockerConfigFile(PathBuf),
    /// An explicit username and password (or token) for the listed registry hosts only; every
    /// other registry gets credentials from Docker's default `config.json` (or none), never these.
    Basic {
        /// The registry hosts (and ports) these credentials belong to, e.g. `ghcr.io` or
        /// `127.0.0.1:5000`; `docker.io`, `index.docker.io` and `registry-1.docker.io` are one.
        registries: Vec<String>,
        /// User name.
        username: String,
        /// Password or access token.
        password: Secret,
    },
    /// No credentials: anonymous access only.
    Anonymous,
}

/// A username/password pair resolved for one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserPassword {
    pub(crate) username: String,
    pub(crate) password: Secret,
}

/// How `docker-credential-*` programs are found and how long they may take.
#[derive(Clone, Debug)]
pub(crate) struct HelperSettings {
    /// Directories searched for the program, in `PATH` syntax; `None` means the process `PATH`.
    pub(crate) search_path: Option<OsString>,
    /// How long one run may take before it is killed.
    pub(crate) timeout: Duration,
}

impl Default for HelperSettings {
    fn default() -> Self {
        HelperSettings {
            search_path: None,
            timeout: DEFAULT_HELPER_TIMEOUT,
        }
    }
}

/// How long a credential helper may run by default: helpers such as `ecr-login` or `gcloud`
/// make a network call, which takes seconds, never a minute.
pub(crate) const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(60);

impl Credentials {
    /// Explicit credentials for `registry` only (a host such as `ghcr.io` or `127.0.0.1:5000`).
    pub fn basic(
        registry: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        Credentials::Basic {
            registries: vec![registry.into()],
            username: username.into(),
            password: password.into(),
        }
    }

    /// Resolves the credentials to use for `registry` (a host name as written in references).
    pub(crate) async fn resolve(
        &self,
        registry: &str,
        helpers: &HelperSettings,
    ) -> Result<Option<UserPassword>> {
        self.resolve_with(registry, default_docker_config_path().as_deref(), helpers)
            .await
    }

    /// `resolve`, with Docker's default `config.json` at `default_config` (tests pass a temp file).
    async fn resolve_with(
        &self,
        registry: &str,
        default_config: Option<&Path>,
        helpers: &HelperSettings,
    ) -> Result<Option<UserPassword>> {
        match self {
            Credentials::Anonymous => Ok(None),
            Credentials::Basic {
                registries,
                username,
                password,
            } if registries
                .iter()
                .any(|owner| same_registry(owner, registry)) =>
            {
                Ok(Some(UserPassword {
                    username: username.clone(),
                    password: password.clone(),
                }))
            }
            // Explicit credentials never leave their registries: others use Docker's config.
            Credentials::Basic { .. } | Credentials::FromDockerConfig => match default_config {
                Some(path) => lookup_docker_config(path, registry, helpers).await,
                None => Ok(None),
            },
            Credentials::DockerConfigFile(path) => {
                lookup_docker_config(path, registry, helpers).await
            }
        }
    }

    /// The registries explicit credentials are scoped to, if they are explicit.
    pub(crate) fn explicit_registries(&self) -> Option<&[String]> {
        match self {
            Credentials::Basic { registries, .. } => Some(registries),
            _ => None,
        }
    }
}

/// Whether two registry names (`host[:port]`, optionally with a scheme or path) are the same
/// registry; Docker Hub's names are all one, and host names are case-insensitive.
pub(crate) fn same_registry(left: &str, right: &str) -> bool {
    let canonical = |name: &str| {
        let host = normalise_key(name.trim()).to_ascii_lowercase();
        if is_docker_hub(&host) {
            "docker.io".to_owned()
        } else {
            host
        }
    };
    let left = canonical(left);
    !left.is_empty() && left == canonical(right)
}

fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
fn default_docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|dir| !dir.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

/// The parts of Docker's `config.json` that hold logins.
#[derive(Deserialize, Default, Debug)]
pub(crate) struct DockerConfigFile {
    #[serde(default)]
    auths: HashMap<String, DockerAuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize, Default, Debug)]
struct DockerAuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The server names Docker uses as keys for `registry` (Docker Hub has a legacy URL key).
fn config_keys(registry: &str) -> Vec<String> {
    if is_docker_hub(registry) {
        vec![
            "https://index.docker.io/v1/".to_owned(),
            "index.docker.io".to_owned(),
            "docker.io".to_owned(),
        ]
    } else {
        vec![registry.to_owned()]
    }
}

/// Strips a scheme and path from an `auths` key, as Docker does when matching.
fn normalise_key(key: &str) -> &str {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    without_scheme.split('/').next().unwrap_or(without_scheme)
}

/// Parses the text of a Docker `config.json`; the error says where the JSON is wrong and never
/// quotes the file (which holds passwords).
pub(crate) fn parse_docker_config(text: &str) -> std::result::Result<DockerConfigFile, String> {
    serde_json::from_str(text).map_err(|error| {
        format!(
            "invalid JSON at line {} column {}: fix or remove the file",
            error.line(),
            error.column()
        )
    })
}

/// Looks `registry` up in the Docker config at `path`, running a credential helper if the file
/// names one. Every failure is an [`Error::Credentials`] naming the file or the helper.
pub(crate) async fn lookup_docker_config(
    path: &Path,
    registry: &str,
    helpers: &HelperSettings,
) -> Result<Option<UserPassword>> {
    let failed = |reason: String| Error::Credentials {
        registry: registry.to_owned(),
        origin: path.display().to_string(),
        reason,
    };
    let text = match tokio::fs::read_to_string(path).await {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(failed(format!("cannot read it: {error}"))),
    };
    let config = parse_docker_config(&text).map_err(failed)?;
    let keys = config_keys(registry);
    for key in &keys {
        if let Some(helper) = config.cred_helpers.get(key) {
            return run_credential_helper(helper, key, registry, helpers).await;
        }
    }
    if let Some(helper) = config
        .creds_store
        .as_deref()
        .filter(|helper| !helper.is_empty())
    {
        // `credsStore` holds every login; a registry it does not know is anonymous.
        if let Some(found) = run_credential_helper(helper, &keys[0], registry, helpers).await? {
            return Ok(Some(found));
        }
    }
    for key in &keys {
        let entry = config.auths.iter().find(|(candidate, _)| {
            candidate.as_str() == key || normalise_key(candidate) == normalise_key(key)
        });
        if let Some((_, entry)) = entry {
            return decode_auth_entry(entry, registry, path).map(Some);
        }
    }
    Ok(None)
}

fn decode_auth_entry(entry: &DockerAuthEntry, registry: &str, path: &Path) -> Result<UserPassword> {
    let invalid = |reason: &str| Error::Credentials {
        registry: registry.to_owned(),
        origin: path.display().to_string(),
        reason: reason.to_owned(),
    };
    if entry.identity_token.is_some() {
        return Err(invalid(
            "`identitytoken` logins are not supported; log in with a username and password or pass them explicitly",
        ));
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(UserPassword {
            username: username.clone(),
            password: Secret::new(password.clone()),
        });
    }
    let encoded = entry
        .auth
        .as_deref()
        .ok_or_else(|| invalid("the `auths` entry has neither `auth` nor `username`/`password`"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid("the `auth` field is not valid base64"))?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| invalid("the `auth` field is not UTF-8"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| invalid("the `auth` field is not `user:password`"))?;
    Ok(UserPassword {
        username: username.to_owned(),
        password: Secret::new(password),
    })
}

/// Finds `program` in the directories of `search_path` (`PATH` syntax), or of the process
/// `PATH` when none is given.
fn find_program(program: &str, search_path: Option<&OsString>) -> Option<PathBuf> {
    let path = match search_path {
        Some(path) => path.clone(),
        None => std::env::var_os("PATH")?,
    };
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Parses what `docker-credential-<helper> get` prints: `{"Username": …, "Secret": …}`. The
/// error never quotes the output, which holds the secret.
pub(crate) fn parse_helper_output(output: &[u8]) -> std::result::Result<UserPassword, String> {
    let parsed: HelperOutput = serde_json::from_slice(output)
        .map_err(|_| "its output is not `{\"Username\":…,\"Secret\":…}` JSON".to_owned())?;
    if parsed.username == "<token>" {
        return Err(
            "it returned an identity token, which is not supported; pass a username and password explicitly"
                .to_owned(),
        );
    }
    Ok(UserPassword {
        username: parsed.username,
        password: Secret::new(parsed.secret),
    })
}

/// Runs `docker-credential-<helper> get` with the server name on stdin, killing it if it takes
/// longer than the helper timeout.
async fn run_credential_helper(
    helper: &str,
    server: &str,
    registry: &str,
    helpers: &HelperSettings,
) -> Result<Option<UserPassword>> {
    let program_name = format!("docker-credential-{helper}");
    let failed = |reason: String| Error::Credentials {
        registry: registry.to_owned(),
        origin: program_name.clone(),
        reason,
    };
    let program = find_program(&program_name, helpers.search_path.as_ref()).ok_or_else(|| {
        failed(
            "it is not installed (not found on PATH); install it or fix `credsStore`/`credHelpers` in config.json"
                .to_owned(),
        )
    })?;
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| failed(format!("cannot run it ({error}); install it or fix `credsStore`/`credHelpers` in config.json")))?;
    let stdin = child.stdin.take();
    let run = async move {
        if let Some(mut stdin) = stdin {
            match stdin.write_all(server.as_bytes()).await {
                // A helper that exits without reading (e.g. "credentials not found") closes the
                // pipe first; its exit status and output below say what happened.
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(format!("cannot write to its stdin: {error}"));
                }
                _ => {}
            }
        }
        child
            .wait_with_output()
            .await
            .map_err(|error| format!("it did not finish: {error}"))
    };
    // Dropping the unfinished future drops the child, which kills it (`kill_on_drop`).
    let output = match tokio::time::timeout(helpers.timeout, run).await {
        Ok(result) => result.map_err(failed)?,
        Err(_) => {
            return Err(failed(format!(
                "it did not answer within {} s and was stopped; it may be waiting for a login, a \
                 keychain unlock or the network",
                helpers.timeout.as_secs_f64()
            )));
        }
    };
    if !output.status.success() {
        let stdout = String::from_utf8_lossy(&output.stdout);
        // Helpers report an unknown server with this exact message; that means "anonymous".
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(format!("it exited with {}", output.status)));
    }
    parse_helper_output(&output.stdout)
        .map(Some)
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Helper settings that find programs in `dir` only.
    fn in_dir(dir: &Path) -> HelperSettings {
        HelperSettings {
            search_path: Some(dir.as_os_str().to_owned()),
            ..HelperSettings::default()
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn secret_debug_is_redacted() {
        let credentials = Credentials::basic("ghcr.io", "bob", Secret::new("hunter2"));
        let debug = format!("{credentials:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("bob") && debug.contains("ghcr.io"),
            "{debug}"
        );
    }

    #[test]
    fn registry_names_are_compared_after_normalisation() {
        for (left, right, expected) in [
            ("ghcr.io", "ghcr.io", true),
            ("GHCR.io", "ghcr.io", true),
            ("https://ghcr.io/", "ghcr.io", true),
            ("docker.io", "registry-1.docker.io", true),
            ("https://index.docker.io/v1/", "docker.io", true),
            ("127.0.0.1:5000", "127.0.0.1:5000", true),
            ("127.0.0.1:5000", "127.0.0.1:5001", false),
            ("127.0.0.1:5000", "127.0.0.1", false),
            ("ghcr.io", "ghcr.io.evil.example", false),
            ("ghcr.io", "docker.io", false),
            ("", "", false),
        ] {
            assert_eq!(same_registry(left, right), expected, "{left} vs {right}");
        }
    }

    #[tokio::test]
    async fn explicit_credentials_are_used_only_for_their_registry() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("dave:config-pw");
        let config = write(
            dir.path(),
            "config.json",
            &format!(r#"{{"auths":{{"other.example":{{"auth":"{auth}"}}}}}}"#),
        );
        let credentials = Credentials::basic("reg.example:5000", "ci", Secret::new("explicit-pw"));

        let own = credentials
            .resolve_with(
                "reg.example:5000",
                Some(&config),
                &HelperSettings::default(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (own.username.as_str(), own.password.expose()),
            ("ci", "explicit-pw")
        );

        // Another registry falls back to Docker's config.json ...
        let other = credentials
            .resolve_with("other.example", Some(&config), &HelperSettings::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (other.username.as_str(), other.password.expose()),
            ("dave", "config-pw")
        );
        // ... and then to anonymous, never to the explicit credentials.
        for registry in ["reg.example", "reg.example:5001", "docker.io"] {
            assert!(
                credentials
                    .resolve_with(registry, Some(&config), &HelperSettings::default())
                    .await
                    .unwrap()
                    .is_none(),
                "{registry}"
            );
        }
        assert!(
            credentials
                .resolve_with("third.example", None, &HelperSettings::default())
                .await
                .unwrap()
                .is_none()
        );

        let hub = Credentials::basic("docker.io", "hubuser", Secret::new("hub-pw"));
        for registry in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            let found = hub
                .resolve_with(registry, None, &HelperSettings::default())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(found.username, "hubuser", "{registry}");
        }
    }

    #[tokio::test]
    async fn auths_entry_is_decoded_from_base64() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let path = write(
            dir.path(),
            "config.json",
            &format!(r#"{{"auths":{{"http://127.0.0.1:5000":{{"auth":"{auth}"}}}}}}"#),
        );
        let found = lookup_docker_config(&path, "127.0.0.1:5000", &HelperSettings::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.username, "alice");
        assert_eq!(found.password.expose(), "s3cret");
        assert!(
            lookup_docker_config(&path, "ghcr.io", &HelperSettings::default())
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn docker_hub_uses_the_legacy_key() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("hub:pw");
        let path = write(
            dir.path(),
            "config.json",
            &format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}}}}}}"#),
        );
        let found = lookup_docker_config(&path, "docker.io", &HelperSettings::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.username, "hub");
    }

    #[tokio::test]
    async fn missing_config_file_means_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            lookup_docker_config(
                &dir.path().join("nope.json"),
                "x.io",
                &HelperSettings::default()
            )
            .await
            .unwrap()
            .is_none()
        );
    }

    #[tokio::test]
    async fn invalid_json_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "config.json", "{\n  \"auths\": [\n");
        let error = lookup_docker_config(&path, "x.io", &HelperSettings::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("config.json") && error.contains("line"),
            "{error}"
        );
    }

    #[cfg(unix)]
    fn write_helper(dir: &Path, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = write(dir, &format!("docker-credential-{name}"), script);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn cred_helpers_take_precedence_and_get_the_server_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        write_helper(
            dir.path(),
            "fake",
            "#!/bin/sh\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"u-%s\",\"Secret\":\"helper-pw\"}' \"$server\" \"$server\"\n",
        );
        let auth = base64::engine::general_purpose::STANDARD.encode("other:pw");
        let path = write(
            dir.path(),
            "config.json",
            &format!(
                r#"{{"auths":{{"reg.example":{{"auth":"{auth}"}}}},"credHelpers":{{"reg.example":"fake"}}}}"#
            ),
        );
        let found = lookup_docker_config(&path, "reg.example", &in_dir(dir.path()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.username, "u-reg.example");
        assert_eq!(found.password.expose(), "helper-pw");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn creds_store_unknown_server_falls_back_to_auths_and_errors_hide_secrets() {
        let dir = tempfile::tempdir().unwrap();
        write_helper(
            dir.path(),
            "store",
            "#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n",
        );
        let auth = base64::engine::general_purpose::STANDARD.encode("carol:pw");
        let path = write(
            dir.path(),
            "config.json",
            &format!(r#"{{"auths":{{"reg.example":{{"auth":"{auth}"}}}},"credsStore":"store"}}"#),
        );
        let found = lookup_docker_config(&path, "reg.example", &in_dir(dir.path()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.username, "carol");

        write_helper(
            dir.path(),
            "broken",
            "#!/bin/sh\necho 'not json topsecret'\n",
        );
        let path = write(dir.path(), "config2.json", r#"{"credsStore":"broken"}"#);
        let error = lookup_docker_config(&path, "reg.example", &in_dir(dir.path()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("docker-credential-broken") && !error.contains("topsecret"),
            "{error}"
        );
    }
}

#[cfg(all(test, unix))]
mod helper_process_tests {
    use super::*;

    fn helper(dir: &Path, name: &str, script: &str) -> HelperSettings {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        HelperSettings {
            search_path: Some(dir.as_os_str().to_owned()),
            timeout: Duration::from_millis(500),
        }
    }

    #[tokio::test]
    async fn a_hanging_helper_is_stopped_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let settings = helper(dir.path(), "stuck", "#!/bin/sh\nexec sleep 30\n");
        let config = dir.path().join("config.json");
        std::fs::write(&config, r#"{"credsStore":"stuck"}"#).unwrap();
        let started = std::time::Instant::now();
        let error = tokio::time::timeout(
            Duration::from_secs(10),
            lookup_docker_config(&config, "reg.example", &settings),
        )
        .await
        .expect("the helper must be stopped, not waited for")
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let text = error.to_string();
        assert!(
            matches!(error, Error::Credentials { .. })
                && text.contains("docker-credential-stuck")
                && text.contains("did not answer within 0.5 s"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_missing_or_failing_helper_is_a_credentials_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let settings = helper(
            dir.path(),
            "fails",
            "#!/bin/sh\necho 'the secret s3cr3t' >&2\nexit 3\n",
        );
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"credHelpers":{"reg.example":"fails","other.example":"absent"}}"#,
        )
        .unwrap();
        let failing = lookup_docker_config(&config, "reg.example", &settings)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            failing.contains("docker-credential-fails")
                && failing.contains("exited")
                && !failing.contains("s3cr3t"),
            "{failing}"
        );
        let missing = lookup_docker_config(&config, "other.example", &settings)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("docker-credential-absent") && missing.contains("not installed"),
            "{missing}"
        );
    }
}
