//! A real OCI registry for tests: runs `/usr/bin/docker-registry serve <config>` on a free
//! `127.0.0.1` port with its storage in a temp dir, waits for `GET /v2/`, and kills it on
//! drop. No TLS: clients must treat it as an insecure (plain HTTP) registry. No authentication,
//! or one htpasswd user ([`Registry::start_with_login`]).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Where Debian's `docker-registry` package installs the binary.
pub const DOCKER_REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// How long to wait for the registry to answer `/v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `docker-registry`; killed and its storage deleted on drop.
#[derive(Debug)]
pub struct Registry {
    address: SocketAddr,
    child: Child,
    directory: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on a free loopback port.
    ///
    /// # Panics
    /// If the binary is missing (with an install hint) or the registry does not come up.
    pub fn start() -> Registry {
        Self::try_start().unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts a registry on a free loopback port.
    pub fn try_start() -> Result<Registry> {
        Self::try_start_with(Path::new(DOCKER_REGISTRY_BINARY))
    }

    /// Starts a registry on a free loopback port that accepts only `username` and `password`
    /// (HTTP basic auth from an htpasswd file).
    ///
    /// # Panics
    /// If the binary is missing (with an install hint) or the registry does not come up.
    pub fn start_with_login(username: &str, password: &str) -> Registry {
        Self::try_start_inner(
            Path::new(DOCKER_REGISTRY_BINARY),
            Some((username, password)),
        )
        .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts a registry using the `docker-registry` binary at `binary`.
    pub fn try_start_with(binary: &Path) -> Result<Registry> {
        Self::try_start_inner(binary, None)
    }

    fn try_start_inner(binary: &Path, login: Option<(&str, &str)>) -> Result<Registry> {
        if !binary.is_file() {
            return Err(Error::RegistryNotFound {
                path: binary.to_owned(),
            });
        }
        let directory = tempfile::Builder::new()
            .prefix("dagster-deploy-registry-")
            .tempdir()
            .map_err(|source| Error::RegistryDirectory {
                path: std::env::temp_dir(),
                source,
            })?;
        let address = free_loopback_address().map_err(|source| Error::Bind {
            address: "127.0.0.1:0".to_owned(),
            source,
        })?;
        let storage = directory.path().join("storage");
        let config_path = directory.path().join("config.yml");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
            storage = storage.display(),
        );
        if let Some((username, password)) = login {
            // The lowest bcrypt cost: these are throw-away test passwords.
            let hash = bcrypt::hash(password, 4).expect("bcrypt accepts any password");
            let htpasswd = directory.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{username}:{hash}\n")).map_err(|source| {
                Error::RegistryDirectory {
                    path: htpasswd.clone(),
                    source,
                }
            })?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: dagster-deploy-tests\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&config_path, config).map_err(|source| Error::RegistryDirectory {
            path: config_path.clone(),
            source,
        })?;
        let log_path = directory.path().join("registry.log");
        let log = std::fs::File::create(&log_path).map_err(|source| Error::RegistryDirectory {
            path: log_path.clone(),
            source,
        })?;
        let log_for_stdout = log.try_clone().map_err(|source| Error::RegistryDirectory {
            path: log_path.clone(),
            source,
        })?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log_for_stdout)
            .stderr(log)
            .spawn()
            .map_err(|source| Error::RegistrySpawn {
                path: binary.to_owned(),
                source,
            })?;
        let mut registry = Registry {
            address,
            child,
            directory,
        };
        registry.wait_until_ready(&log_path)?;
        Ok(registry)
    }

    fn wait_until_ready(&mut self, log_path: &Path) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if probe_v2(self.address) {
                return Ok(());
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                return Err(Error::RegistryNotReady {
                    address: self.address.to_string(),
                    seconds: READY_TIMEOUT.as_secs(),
                    log: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `host:port`, e.g. `127.0.0.1:41234`: the registry part of image references.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The directory holding the registry's storage, config and log.
    pub fn directory(&self) -> PathBuf {
        self.directory.path().to_owned()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // The process may already have exited; both calls are then harmless.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks the OS for a free port. Another process could take it before the registry binds it;
/// the readiness check then fails with the registry's log, which says so.
fn free_loopback_address() -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    listener.local_addr()
}

/// `true` when `GET /v2/` answers HTTP 200, or 401 from a registry with a login (no HTTP
/// client dependency needed for this).
fn probe_v2(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {address}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let status_line = String::from_utf8_lossy(&response);
    [
        "HTTP/1.0 200",
        "HTTP/1.1 200",
        "HTTP/1.0 401",
        "HTTP/1.1 401",
    ]
    .iter()
    .any(|status| status_line.starts_with(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_answers_v2_and_stops_on_drop() {
        let registry = Registry::start();
        let address = registry.address;
        assert!(registry.host().starts_with("127.0.0.1:"));
        assert!(
            probe_v2(address),
            "registry at {address} should answer /v2/"
        );
        let directory = registry.directory();
        assert!(directory.join("config.yml").is_file());
        drop(registry);
        assert!(
            !probe_v2(address),
            "registry at {address} should be stopped"
        );
        assert!(
            !directory.exists(),
            "{} should be deleted",
            directory.display()
        );
    }

    #[test]
    fn missing_binary_says_how_to_install_it() {
        let error =
            Registry::try_start_with(Path::new("/nonexistent/docker-registry")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "docker-registry not found: install it with `apt-get install -y docker-registry` (or run scripts/setup.sh)"
        );
    }
}
