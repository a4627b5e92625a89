//! Test harnesses (cargo feature `test-support`) for code that talks HTTPS through this crate:
//! [`TestCertificates`], a throw-away certificate authority and a server certificate it
//! issued for one host name, made with the `openssl` command in a temp dir (deleted on drop).
//! Trust the authority with [`Certificate::pem`](crate::Certificate::pem) of
//! [`TestCertificates::ca_pem`], and serve with the server certificate and key.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A test certificate authority and one server certificate it issued.
#[derive(Debug)]
pub struct TestCertificates {
    dir: tempfile::TempDir,
}

/// Runs `openssl args` in `dir`; the error holds what it printed.
fn openssl(dir: &Path, args: &[&str]) -> std::io::Result<()> {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|error| {
            std::io::Error::new(
                error.kind(),
                format!(
                    "cannot run openssl ({error}): install it with `apt-get install -y openssl`"
                ),
            )
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

impl TestCertificates {
    /// Makes a P-256 certificate authority valid for two days and a server certificate for
    /// `host_name` (its subject and only subject alternative name) signed by it.
    pub fn issue(host_name: &str) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path();
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut authority = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=dagster-deploy test CA",
        ];
        authority.extend(key);
        authority.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(path, &authority)?;
        let subject = format!("/CN={host_name}");
        let mut request = vec!["req", "-subj", &subject];
        request.extend(key);
        request.extend(["-keyout", "server.key", "-out", "server.csr"]);
        openssl(path, &request)?;
        std::fs::write(
            path.join("server.ext"),
            format!(
                "subjectAltName=DNS:{host_name}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )?;
        openssl(
            path,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        )?;
        Ok(TestCertificates { dir })
    }

    /// The authority's certificate (PEM): what a client must trust.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate (PEM).
    pub fn server_pem(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server's private key (PEM).
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}
