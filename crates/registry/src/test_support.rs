//! Test harnesses (cargo feature `test-support`) for code that pushes images with this crate:
//!
//! - [`RegistryServer`]: a real `docker-registry` (the CNCF distribution registry, Debian's
//!   `docker-registry` package) serving a temp dir on a free `127.0.0.1` port, anonymous or
//!   behind one htpasswd login; stopped, and its storage deleted, on drop. Plain HTTP, which
//!   [`RegistryClient`](crate::RegistryClient) uses for loopback registries anyway.
//! - [`OciLayoutWriter`]: writes OCI image layouts (blobs, single- and multi-platform images,
//!   `index.json`) to push with [`ImageSource::OciLayout`](crate::ImageSource::OciLayout).
//!
//! This crate's own integration tests and benchmarks use both. They are test code: a harness
//! that cannot start panics with a message saying what to install.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::RngCore as _;
use serde_json::{Value, json};

use crate::ImageRef;
use crate::media_type::{OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST};

/// Where Debian's `docker-registry` package installs the registry.
pub const DOCKER_REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// How long a starting registry may take to answer `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `docker-registry`; dropping it stops the process and deletes its storage.
#[derive(Debug)]
pub struct RegistryServer {
    address: SocketAddr,
    child: Child,
    directory: tempfile::TempDir,
}

impl RegistryServer {
    /// Starts an anonymous registry on a free loopback port.
    ///
    /// # Panics
    /// If the binary is missing (the message says how to install it) or the registry does not
    /// come up (the message holds its log).
    pub fn start() -> Self {
        Self::try_start(Path::new(DOCKER_REGISTRY_BINARY), None)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts a registry that accepts only `username` and `password` (HTTP basic auth from an
    /// htpasswd file).
    ///
    /// # Panics
    /// As [`RegistryServer::start`].
    pub fn start_with_login(username: &str, password: &str) -> Self {
        Self::try_start(
            Path::new(DOCKER_REGISTRY_BINARY),
            Some((username, password)),
        )
        .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts the registry at `binary`, with a login if `login` is given; the error says what
    /// failed (a missing binary with how to install it, or the registry's log).
    pub fn try_start(binary: &Path, login: Option<(&str, &str)>) -> std::io::Result<Self> {
        if !binary.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{} not found: install Debian's docker-registry package (`apt-get install -y docker-registry`, or run scripts/setup.sh)",
                    binary.display()
                ),
            ));
        }
        let directory = tempfile::Builder::new()
            .prefix("dagster-deploy-registry-")
            .tempdir()?;
        let address = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?;
        let storage = directory.path().join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n  secret: test-secret\n",
            storage.display()
        );
        if let Some((username, password)) = login {
            // The lowest bcrypt cost: these are throw-away test passwords.
            let hash = bcrypt::hash(password, 4).map_err(std::io::Error::other)?;
            let htpasswd = directory.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{username}:{hash}\n"))?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: dagster-deploy-tests\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = directory.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log_path = directory.path().join("registry.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut server = RegistryServer {
            address,
            child,
            directory,
        };
        server.wait_until_ready(&log_path)?;
        Ok(server)
    }

    fn wait_until_ready(&mut self, log_path: &Path) -> std::io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if answers_v2(self.address) {
                return Ok(());
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                return Err(std::io::Error::other(format!(
                    "docker-registry did not answer on {} within {} s; the end of its log:\n{}",
                    self.address,
                    READY_TIMEOUT.as_secs(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`: the registry part of image references.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The directory holding the registry's storage (`storage/`), config and log.
    pub fn directory(&self) -> PathBuf {
        self.directory.path().to_owned()
    }

    /// The requests the registry has answered so far, oldest first, from its access log: one
    /// `METHOD PATH STATUS` line each (`PUT /v2/team/app/manifests/v1 201`).
    ///
    /// # Panics
    /// If the log cannot be read.
    pub fn requests(&self) -> Vec<String> {
        let log_path = self.directory.path().join("registry.log");
        let log = std::fs::read_to_string(&log_path)
            .unwrap_or_else(|error| panic!("{}: {error}", log_path.display()));
        log.lines().filter_map(access_log_request).collect()
    }

    /// A reference to `repository_and_tag` (`team/app:v1`) in this registry.
    ///
    /// # Panics
    /// If the result is not a valid reference.
    pub fn image(&self, repository_and_tag: &str) -> ImageRef {
        let text = format!("{}/{repository_and_tag}", self.host());
        ImageRef::parse(&text).unwrap_or_else(|error| panic!("{text}: {error}"))
    }
}

/// `METHOD PATH STATUS` from one line of the registry's access log (the combined log format:
/// `127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 200 2 "" "agent"`); `None` for other log lines.
fn access_log_request(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("] \"")?;
    let (request, rest) = rest.split_once('"')?;
    let mut words = request.split(' ');
    let (method, path) = (words.next()?, words.next()?);
    let status = rest.split_whitespace().next()?;
    status
        .parse::<u16>()
        .ok()
        .map(|_| format!("{method} {path} {status}"))
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        // The process may have exited already; both calls are then harmless.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET /v2/` answers 200, or 401 from a registry with a login.
fn answers_v2(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {address}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let status_line = String::from_utf8_lossy(&answer);
    ["200", "401"].iter().any(|status| {
        status_line.starts_with(&format!("HTTP/1.1 {status}"))
            || status_line.starts_with(&format!("HTTP/1.0 {status}"))
    })
}

/// `size` random (incompressible) bytes, for layers.
pub fn random_bytes(size: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; size];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// Writes an OCI image layout: blobs under `blobs/sha256/`, then `oci-layout` and
/// `index.json` naming the images by tag.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use dagster_deploy_registry::test_support::{OciLayoutWriter, random_bytes};
///
/// let dir = tempfile::tempdir()?;
/// let layout = OciLayoutWriter::new(dir.path())?;
/// let image = layout.image(&[random_bytes(1024)], "amd64")?;
/// layout.finish(&[(image, "v1")])?;
/// let source: dagster_deploy_registry::ImageSource =
///     format!("oci:{}:v1", dir.path().display()).parse().unwrap();
/// # let _ = source;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct OciLayoutWriter {
    dir: PathBuf,
}

impl OciLayoutWriter {
    /// A writer for the layout directory `dir` (created if missing).
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("blobs/sha256"))?;
        Ok(OciLayoutWriter {
            dir: dir.to_owned(),
        })
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` as a blob; returns its descriptor (`mediaType`, `digest`, `size`).
    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> std::io::Result<Value> {
        let digest = crate::sha256_digest(bytes);
        std::fs::write(
            self.dir
                .join("blobs/sha256")
                .join(crate::digest::sha256_hex(&digest)),
            bytes,
        )?;
        Ok(json!({"mediaType": media_type, "digest": digest, "size": bytes.len()}))
    }

    /// Writes a single-platform image for `linux/<architecture>` whose layers are `layers`
    /// (uncompressed tar layers, as far as the media type says); returns the manifest's
    /// descriptor with its `platform`. The manifest is pretty-printed on purpose: a client
    /// that re-serialised it would change its digest.
    pub fn image(&self, layers: &[Vec<u8>], architecture: &str) -> std::io::Result<Value> {
        let layer_descriptors = layers
            .iter()
            .map(|layer| self.blob(OCI_LAYER, layer))
            .collect::<std::io::Result<Vec<Value>>>()?;
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|layer| crate::sha256_digest(layer))
            .collect();
        let config = json!({
            "architecture": architecture, "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/usr/bin"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = self.blob(OCI_CONFIG, &serde_json::to_vec(&config)?)?;
        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": config, "layers": layer_descriptors,
        }))?;
        let mut descriptor = self.blob(OCI_MANIFEST, &manifest)?;
        descriptor["platform"] = json!({"architecture": architecture, "os": "linux"});
        Ok(descriptor)
    }

    /// Writes an image index of `manifests` (descriptors from [`OciLayoutWriter::image`]);
    /// returns its descriptor.
    pub fn index(&self, manifests: &[Value]) -> std::io::Result<Value> {
        let index = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests,
        }))?;
        self.blob(OCI_INDEX, &index)
    }

    /// Writes `oci-layout` and `index.json`, naming each descriptor by its tag.
    pub fn finish(&self, tagged: &[(Value, &str)]) -> std::io::Result<()> {
        let manifests: Vec<Value> = tagged
            .iter()
            .map(|(descriptor, tag)| {
                let mut descriptor = descriptor.clone();
                descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
                descriptor
            })
            .collect();
        std::fs::write(
            self.dir.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        std::fs::write(self.dir.join("index.json"), serde_json::to_vec(&index)?)
    }
}

/// Writes a single-platform (`linux/amd64`) OCI layout at `dir` tagged `tag`; returns the
/// manifest digest.
pub fn write_oci_layout(dir: &Path, layers: &[Vec<u8>], tag: &str) -> std::io::Result<String> {
    let layout = OciLayoutWriter::new(dir)?;
    let image = layout.image(layers, "amd64")?;
    let digest = image["digest"].as_str().unwrap_or_default().to_owned();
    layout.finish(&[(image, tag)])?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::access_log_request;

    #[test]
    fn access_log_lines_become_method_path_and_status() {
        let line = r#"127.0.0.1 - - [27/Nov/2026:19:15:28 +0000] "PUT /v2/team/app/manifests/v1 HTTP/1.1" 201 0 "" "dagster-deploy/0.1.0""#;
        assert_eq!(
            access_log_request(line).as_deref(),
            Some("PUT /v2/team/app/manifests/v1 201")
        );
        let other = r#"time="2026-11-27T19:15:28Z" level=warning msg="No HTTP secret provided""#;
        assert_eq!(access_log_request(other), None);
    }
}
