//! Test harness: a real `docker-registry` (distribution v2) serving a temp dir on a free
//! loopback port, optionally behind htpasswd basic auth; killed on drop. Shared with the bench.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/bin/docker-registry";

/// A running registry; dropping it stops the process and deletes its storage.
pub(crate) struct RegistryServer {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) host: String,
    _dir: tempfile::TempDir,
}

impl RegistryServer {
    /// Starts an anonymous registry.
    pub(crate) fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a registry that requires basic auth for `username`/`password`.
    #[allow(dead_code, reason = "the bench does not use auth")]
    pub(crate) fn start_with_htpasswd(username: &str, password: &str) -> Self {
        Self::start_with(Some((username, password)))
    }

    fn start_with(credentials: Option<(&str, &str)>) -> Self {
        assert!(
            Path::new(BINARY).exists(),
            "docker-registry not found: install it with `apt-get install -y docker-registry` (or run scripts/setup.sh)"
        );
        let dir = tempfile::tempdir().expect("temp dir for the registry");
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: test-secret\n",
            storage.display()
        );
        if let Some((username, password)) = credentials {
            let hash = bcrypt::hash(password, 4).expect("bcrypt hash");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{username}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start docker-registry");
        let server = Self {
            child,
            host: format!("127.0.0.1:{port}"),
            _dir: dir,
        };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(&self.host) {
                let _ = stream.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut answer = [0u8; 12];
                if stream.read_exact(&mut answer).is_ok() && answer.starts_with(b"HTTP/1.") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log =
            std::fs::read_to_string(self._dir.path().join("registry.log")).unwrap_or_default();
        panic!(
            "docker-registry did not answer on {} within 15 s; its log:\n{log}",
            self.host
        );
    }

    /// A reference to `repository:tag` in this registry.
    #[allow(dead_code, reason = "not every user of the harness needs it")]
    pub(crate) fn image(&self, repository_and_tag: &str) -> dagster_deploy_registry::ImageRef {
        dagster_deploy_registry::ImageRef::parse(&format!("{}/{repository_and_tag}", self.host))
            .unwrap()
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
