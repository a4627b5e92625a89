//! An HTTPS front for a plain-HTTP test server: a throw-away certificate authority and a
//! server certificate for one host name (`dagster_deploy_http_policy::test_support`, which
//! makes them with the `openssl` command), and a TLS listener
//! on `127.0.0.1:<free port>` that forwards every connection to the server. A client that
//! trusts the CA and resolves the name to 127.0.0.1 reaches the server over HTTPS, so the API
//! token may be sent (it never goes over plain HTTP to a non-loopback name).

use std::sync::Arc;

use dagster_deploy_http_policy::test_support::TestCertificates;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A running HTTPS front; its runtime, and so the listener, stops on drop.
pub(crate) struct TlsFront {
    port: u16,
    certificates: TestCertificates,
    _runtime: tokio::runtime::Runtime,
}

impl TlsFront {
    /// Serves `host_name` over TLS on a free loopback port, forwarding to `backend`.
    pub(crate) fn start(host_name: &str, backend: std::net::SocketAddr) -> TlsFront {
        let certificates = TestCertificates::issue(host_name).expect("test certificates");
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(certificates.server_pem())
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::from_pem_file(certificates.server_key()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a valid server certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut server) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        });
        TlsFront {
            port,
            certificates,
            _runtime: runtime,
        }
    }

    /// The port the TLS listener is on (127.0.0.1).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate that signed the server certificate, in PEM.
    pub(crate) fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.certificates.ca_pem()).unwrap()
    }
}
