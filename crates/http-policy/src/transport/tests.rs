//! Tests of the transport builder against local stand-ins: a proxy stub that answers every
//! request it gets (so a test sees which requests went through it), a direct server, and a TLS
//! server (`openssl s_server`) whose certificate only an extra root makes trusted.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;

/// A server on `address` that answers every request with `name`, recording request lines.
async fn answering_server(address: &str, name: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind(address).await.expect("bind");
    let local = listener.local_addr().expect("address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let mut read = 0;
                while !buffer[..read]
                    .windows(4)
                    .any(|window| window == b"\r\n\r\n")
                {
                    match stream.read(&mut buffer[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(count) => read += count,
                    }
                }
                let head = String::from_utf8_lossy(&buffer[..read]).into_owned();
                record
                    .lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or_default().to_owned());
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{name}",
                    name.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (local.to_string(), seen)
}

async fn get(client: &reqwest::Client, url: &str) -> String {
    client
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error}"))
        .text()
        .await
        .expect("body")
}

fn explicit(proxy: &str) -> TransportSettings {
    TransportSettings {
        proxy: ProxySettings {
            mode: ProxyMode::Explicit {
                http: Some(format!("http://{proxy}")),
                https: None,
            },
            ..ProxySettings::default()
        },
        ..TransportSettings::default()
    }
}

#[tokio::test]
async fn loopback_never_goes_through_the_proxy_unless_asked() {
    let (proxy, proxied) = answering_server("127.0.0.1:0", "proxy").await;
    let (direct, _) = answering_server("127.0.0.1:0", "direct").await;
    let port = direct.rsplit_once(':').unwrap().1;
    let client = explicit(&proxy).build().expect("client");
    assert_eq!(
        get(&client, &format!("http://{direct}/v2/")).await,
        "direct"
    );
    assert_eq!(
        get(&client, &format!("http://localhost:{port}/v2/")).await,
        "direct"
    );
    // Remote hosts do go through it (the stub answers as the proxy, so no name is resolved).
    assert_eq!(get(&client, "http://registry.example/v2/").await, "proxy");
    assert_eq!(
        proxied.lock().unwrap().as_slice(),
        ["GET http://registry.example/v2/ HTTP/1.1"]
    );

    let mut settings = explicit(&proxy);
    settings.proxy.proxy_loopback = true;
    let client = settings.build().expect("client");
    assert_eq!(get(&client, &format!("http://{direct}/v2/")).await, "proxy");
}

#[tokio::test]
async fn ipv6_loopback_bypasses_the_proxy_too() {
    let Ok(probe) = std::net::TcpListener::bind("[::1]:0") else {
        // No IPv6 loopback on this machine: nothing to test.
        return;
    };
    drop(probe);
    let (proxy, _) = answering_server("127.0.0.1:0", "proxy").await;
    let (direct, _) = answering_server("[::1]:0", "direct").await;
    let client = explicit(&proxy).build().expect("client");
    assert_eq!(
        get(&client, &format!("http://{direct}/v2/")).await,
        "direct"
    );
}

#[tokio::test]
async fn environment_proxies_honour_no_proxy_and_all_proxy() {
    let (proxy, proxied) = answering_server("127.0.0.1:0", "proxy").await;
    let (direct, _) = answering_server("127.0.0.1:0", "direct").await;
    let settings = TransportSettings {
        proxy: ProxySettings {
            proxy_loopback: true,
            ..ProxySettings::default()
        },
        ..TransportSettings::default()
    };
    let environment = |pairs: &[(&str, String)]| {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        move |name: &str| map.get(name).cloned()
    };

    let env = environment(&[("http_proxy", format!("http://{proxy}"))]);
    let client = settings.build_with_env(&env).expect("client");
    assert_eq!(get(&client, &format!("http://{direct}/")).await, "proxy");

    let env = environment(&[
        ("ALL_PROXY", format!("http://{proxy}")),
        ("NO_PROXY", "example.org, 127.0.0.1".to_owned()),
    ]);
    let client = settings.build_with_env(&env).expect("client");
    assert_eq!(get(&client, &format!("http://{direct}/")).await, "direct");
    assert_eq!(get(&client, "http://registry.example/").await, "proxy");

    let client = settings.build_with_env(&|_| None).expect("client");
    assert_eq!(get(&client, &format!("http://{direct}/")).await, "direct");
    assert_eq!(proxied.lock().unwrap().len(), 2);
}

#[test]
fn an_invalid_proxy_is_reported_without_its_password() {
    let settings = TransportSettings {
        proxy: ProxySettings {
            mode: ProxyMode::Explicit {
                http: None,
                https: Some("http://user:hunter2@[::1".to_owned()),
            },
            ..ProxySettings::default()
        },
        ..TransportSettings::default()
    };
    let error = settings.build().expect_err("invalid proxy URL");
    let shown = format!("{error} {error:?}");
    assert!(matches!(error, Error::InvalidProxy { .. }), "{shown}");
    assert!(!error.to_string().contains("hunter2"), "{shown}");
    assert!(error.is_invalid_setting(), "{shown}");
    assert!(
        error
            .help()
            .is_some_and(|help| help.contains("http://proxy.internal:3128"))
    );
}

#[test]
fn a_root_certificate_that_is_not_one_names_its_position() {
    let settings = TransportSettings {
        root_certificates: vec![Certificate::pem("not a certificate")],
        ..TransportSettings::default()
    };
    let error = settings.build().expect_err("invalid certificate");
    assert!(
        matches!(error, Error::InvalidCertificate { index: 0, .. }),
        "{error}"
    );
    assert!(error.is_invalid_setting(), "{error}");
    assert!(error.help().is_some_and(|help| help.contains("PEM")));
}

#[tokio::test]
async fn a_callers_client_is_used_as_it_is() {
    // With `rustls-ring`, reqwest has no crypto provider of its own: a caller building its own
    // client installs one, as an embedder choosing that backend would.
    #[cfg(all(feature = "rustls-ring", not(feature = "rustls-aws-lc")))]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (proxy, proxied) = answering_server("127.0.0.1:0", "proxy").await;
    let (direct, _) = answering_server("127.0.0.1:0", "direct").await;
    // The caller's client sends even loopback through its proxy: the transport must not
    // rebuild it with its own rules.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .proxy(reqwest::Proxy::http(format!("http://{proxy}")).expect("proxy"))
        .build()
        .expect("client");
    let used = HttpTransport::from(client)
        .client(Some(Duration::from_secs(1)))
        .expect("the caller's client");
    assert_eq!(get(&used, &format!("http://{direct}/v2/")).await, "proxy");
    assert_eq!(proxied.lock().unwrap().len(), 1);
}

/// `openssl s_server`, stopped on drop.
struct TlsServer(Child);

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn an_extra_root_certificate_is_trusted_on_top_of_the_system_roots() {
    let certificates =
        crate::test_support::TestCertificates::issue("localhost").expect("certificates");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = TlsServer(
        Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-cert"])
            .arg(certificates.server_pem())
            .arg("-key")
            .arg(certificates.server_key())
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server"),
    );
    let url = format!("https://localhost:{port}/");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "s_server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let untrusting = TransportSettings::default().build().expect("client");
    let refused = untrusting.get(&url).send().await;
    assert!(
        refused.is_err(),
        "a self-signed CA is not trusted by default"
    );

    let ca_pem = std::fs::read(certificates.ca_pem()).unwrap();
    let trusting = TransportSettings {
        root_certificates: vec![Certificate::pem(ca_pem)],
        ..TransportSettings::default()
    }
    .build()
    .expect("client");
    let response = trusting.get(&url).send().await.expect("trusted TLS");
    assert!(response.status().is_success(), "{}", response.status());
}
