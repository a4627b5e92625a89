//! The HTTP transport both clients run on: a caller's own `reqwest::Client`, or one built from
//! [`TransportSettings`] (proxy, no-proxy list, extra root certificates, timeouts, user agent),
//! with the TLS backend chosen by a cargo feature.
//!
//! Two rules are built in, whatever the settings say. **Redirects are never followed by the
//! HTTP client:** each client decides hop by hop where its credentials may go, so a client that
//! followed redirects itself would bypass that decision. **Loopback never goes through a
//! proxy** (`localhost`, `127.0.0.0/8`, `::1`) unless [`ProxySettings::proxy_loopback`] asks
//! for it: a proxy cannot reach the machine's own loopback services, and `HTTP_PROXY` set for
//! the outside world must not break a local registry or a local test server.

use std::fmt;
use std::time::Duration;

/// The user agent both clients send unless told otherwise.
pub const DEFAULT_USER_AGENT: &str = concat!("dagster-deploy/", env!("CARGO_PKG_VERSION"));

/// The no-proxy entries that keep loopback away from any proxy (reqwest's `NO_PROXY` grammar;
/// `localhost` also covers its subdomains, which resolve to loopback too).
const LOOPBACK_NO_PROXY: &str = "localhost,127.0.0.0/8,::1";

/// What the transport settings got wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A proxy URL is not a URL reqwest can use.
    #[error("invalid proxy URL `{url}`")]
    InvalidProxy {
        /// The URL, without a user name or password.
        url: String,
        /// Why reqwest refused it.
        source: reqwest::Error,
    },
    /// An extra root certificate could not be read.
    #[error("root certificate {index} is not a valid {encoding} certificate: {reason}")]
    InvalidCertificate {
        /// Its position in [`TransportSettings::root_certificates`] (0-based).
        index: usize,
        /// `PEM` or `DER`.
        encoding: CertificateEncoding,
        /// What is wrong with it.
        reason: String,
    },
    /// reqwest could not build the client (the TLS backend failed to start, say).
    #[error("cannot build the HTTP client")]
    Build {
        /// reqwest's error.
        source: reqwest::Error,
    },
    /// The TLS configuration could not be built.
    #[error("cannot set up TLS: {reason}")]
    Tls {
        /// What failed.
        reason: String,
    },
}

impl Error {
    /// What to do about it, in words that fit any program (no flag or variable names).
    pub fn help(&self) -> Option<&'static str> {
        match self {
            Error::InvalidProxy { .. } => Some(
                "give the proxy as a URL such as http://proxy.internal:3128 (scheme, host and port)",
            ),
            Error::InvalidCertificate { .. } => Some(
                "give each extra root certificate as one PEM block (-----BEGIN CERTIFICATE-----) or as DER bytes, matching the encoding it was declared with",
            ),
            Error::Build { .. } | Error::Tls { .. } => None,
        }
    }

    /// Whether the settings themselves are wrong (a proxy URL or a certificate), rather than the
    /// machine's TLS or HTTP stack.
    pub fn is_invalid_setting(&self) -> bool {
        matches!(
            self,
            Error::InvalidProxy { .. } | Error::InvalidCertificate { .. }
        )
    }
}

/// The transport's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a certificate's bytes are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateEncoding {
    /// One or more `-----BEGIN CERTIFICATE-----` blocks.
    Pem,
    /// One binary X.509 certificate.
    Der,
}

impl fmt::Display for CertificateEncoding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            CertificateEncoding::Pem => "PEM",
            CertificateEncoding::Der => "DER",
        })
    }
}

/// A root certificate to trust on top of the system's (a company CA, a registry's self-signed
/// certificate).
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    encoding: CertificateEncoding,
    bytes: Vec<u8>,
}

impl Certificate {
    /// PEM text holding one or more certificates.
    pub fn pem(bytes: impl Into<Vec<u8>>) -> Self {
        Certificate {
            encoding: CertificateEncoding::Pem,
            bytes: bytes.into(),
        }
    }

    /// One DER-encoded certificate.
    pub fn der(bytes: impl Into<Vec<u8>>) -> Self {
        Certificate {
            encoding: CertificateEncoding::Der,
            bytes: bytes.into(),
        }
    }

    /// How the bytes are encoded.
    pub fn encoding(&self) -> CertificateEncoding {
        self.encoding
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "Certificate({}, {} bytes)",
            self.encoding,
            self.bytes.len()
        )
    }
}

/// Where requests find their proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProxyMode {
    /// The conventional environment variables, read when the client is built: `HTTPS_PROXY`,
    /// `HTTP_PROXY` and `ALL_PROXY` (each also in lower case; `ALL_PROXY` serves both schemes
    /// when the scheme's own variable is unset), and `NO_PROXY`, added to
    /// [`ProxySettings::no_proxy`].
    #[default]
    Environment,
    /// No proxy at all.
    Disabled,
    /// These proxies (URLs such as `http://proxy.internal:3128`), whatever the environment says.
    Explicit {
        /// The proxy for `http://` requests.
        http: Option<String>,
        /// The proxy for `https://` requests.
        https: Option<String>,
    },
}

/// Which requests go through which proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Where the proxies come from.
    pub mode: ProxyMode,
    /// Hosts that are reached directly, in the `NO_PROXY` grammar: host names (which also
    /// cover their subdomains), IP addresses, CIDR ranges such as `10.0.0.0/8`, or `*`.
    pub no_proxy: Vec<String>,
    /// Whether loopback hosts go through the proxy too (default: they never do).
    pub proxy_loopback: bool,
}

/// How to build an HTTP client; `Default` gives the values both clients used before they were
/// configurable.
///
/// ```
/// use std::time::Duration;
/// use dagster_deploy_http_policy::{
///     Certificate, HttpTransport, ProxyMode, ProxySettings, TransportSettings,
/// };
///
/// # fn main() -> dagster_deploy_http_policy::Result<()> {
/// let settings = TransportSettings {
///     user_agent: "platform-tool/1.0".to_owned(),
///     connect_timeout: Duration::from_secs(10),
///     proxy: ProxySettings {
///         mode: ProxyMode::Explicit {
///             http: None,
///             https: Some("http://proxy.internal:3128".to_owned()),
///         },
///         // Reached directly; loopback is too, unless `proxy_loopback` is set.
///         no_proxy: vec!["registry.internal".to_owned()],
///         proxy_loopback: false,
///     },
///     // A company CA would go here: `Certificate::pem(std::fs::read("ca.pem")?)`.
///     root_certificates: Vec::<Certificate>::new(),
///     ..TransportSettings::default()
/// };
/// // Give `settings` (or a `reqwest::Client` of your own) to either network client.
/// let transport = HttpTransport::from(settings);
/// let _client: reqwest::Client = transport.client(None)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportSettings {
    /// The `User-Agent` header.
    pub user_agent: String,
    /// How long opening a connection (TCP and TLS) may take (default 30 s). Each client also
    /// bounds whole requests with its own request timeout.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept (default 30 s).
    pub pool_idle_timeout: Duration,
    /// Proxies.
    pub proxy: ProxySettings,
    /// Root certificates trusted on top of the system's.
    pub root_certificates: Vec<Certificate>,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            connect_timeout: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(30),
            proxy: ProxySettings::default(),
            root_certificates: Vec::new(),
        }
    }
}

/// The HTTP client a network client sends through.
#[derive(Clone, Debug)]
pub enum HttpTransport {
    /// Build one from these settings (the default).
    Settings(TransportSettings),
    /// Use the caller's client as it is, sharing its connection pool. It must not follow
    /// redirects (`reqwest::redirect::Policy::none()`): the clients check every hop
    /// themselves, and report a client that followed one as an error. Its proxies, roots and
    /// timeouts are the caller's (the loopback rule of [`ProxySettings`] does not apply); with
    /// the `rustls-ring` backend the caller installs rustls's ring provider before building it.
    Client(reqwest::Client),
}

impl Default for HttpTransport {
    fn default() -> Self {
        HttpTransport::Settings(TransportSettings::default())
    }
}

impl From<TransportSettings> for HttpTransport {
    fn from(settings: TransportSettings) -> Self {
        HttpTransport::Settings(settings)
    }
}

impl From<reqwest::Client> for HttpTransport {
    fn from(client: reqwest::Client) -> Self {
        HttpTransport::Client(client)
    }
}

impl HttpTransport {
    /// The client to send through: the caller's, or a new one built from the settings, with
    /// `connect_timeout` capped at `max_connect_timeout` (a client whose whole requests must
    /// finish sooner than the settings' connect timeout).
    pub fn client(&self, max_connect_timeout: Option<Duration>) -> Result<reqwest::Client> {
        match self {
            HttpTransport::Client(client) => Ok(client.clone()),
            HttpTransport::Settings(settings) => {
                let mut settings = settings.clone();
                if let Some(limit) = max_connect_timeout {
                    settings.connect_timeout = settings.connect_timeout.min(limit);
                }
                settings.build()
            }
        }
    }
}

impl TransportSettings {
    /// Builds a client from these settings, reading proxy variables from the process
    /// environment if [`ProxyMode::Environment`] says so.
    pub fn build(&self) -> Result<reqwest::Client> {
        self.build_with_env(&|name| std::env::var(name).ok())
    }

    /// [`TransportSettings::build`] with the environment given as a lookup function (tests pass
    /// a map; the process environment is not touched).
    pub fn build_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .redirect(reqwest::redirect::Policy::none())
            // reqwest's own proxy detection knows no loopback rule; ours replaces it.
            .no_proxy();
        for proxy in self.proxy.proxies(env)? {
            builder = builder.proxy(proxy);
        }
        builder = tls::configure(builder, &self.root_certificates)?;
        builder.build().map_err(|source| Error::Build { source })
    }
}

/// The first non-empty value of `names` in `env`.
fn first_set(env: &dyn Fn(&str) -> Option<String>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|name| env(name))
        .map(|value| value.trim().to_owned())
        .find(|value| !value.is_empty())
}

/// A URL fit for messages: no user name or password.
fn without_credentials(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

impl ProxySettings {
    /// The reqwest proxies these settings make, each with the no-proxy list applied.
    fn proxies(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<reqwest::Proxy>> {
        let mut excluded: Vec<String> = self.no_proxy.clone();
        let (http, https) = match &self.mode {
            ProxyMode::Disabled => return Ok(Vec::new()),
            ProxyMode::Explicit { http, https } => (http.clone(), https.clone()),
            ProxyMode::Environment => {
                let all = first_set(env, &["ALL_PROXY", "all_proxy"]);
                excluded.extend(first_set(env, &["NO_PROXY", "no_proxy"]));
                (
                    first_set(env, &["HTTP_PROXY", "http_proxy"]).or_else(|| all.clone()),
                    first_set(env, &["HTTPS_PROXY", "https_proxy"]).or(all),
                )
            }
        };
        if !self.proxy_loopback {
            excluded.push(LOOPBACK_NO_PROXY.to_owned());
        }
        let no_proxy = reqwest::NoProxy::from_string(&excluded.join(","));
        let invalid = |url: &str, source| Error::InvalidProxy {
            url: without_credentials(url),
            source,
        };
        let mut proxies = Vec::new();
        if let Some(url) = http {
            let proxy =
                reqwest::Proxy::http(url.as_str()).map_err(|source| invalid(&url, source))?;
            proxies.push(proxy.no_proxy(no_proxy.clone()));
        }
        if let Some(url) = https {
            let proxy =
                reqwest::Proxy::https(url.as_str()).map_err(|source| invalid(&url, source))?;
            proxies.push(proxy.no_proxy(no_proxy));
        }
        Ok(proxies)
    }
}

/// The TLS backend, chosen by cargo feature: `rustls-aws-lc` (the default), `rustls-ring` or
/// `native-tls`. When several are enabled, that order decides.
mod tls {
    use super::{Certificate, CertificateEncoding, Error, Result};

    /// Extra roots as reqwest certificates, for the backends reqwest configures itself.
    #[cfg(any(
        feature = "rustls-aws-lc",
        all(feature = "native-tls", not(feature = "rustls-ring"))
    ))]
    fn reqwest_roots(roots: &[Certificate]) -> Result<Vec<reqwest::Certificate>> {
        let mut certificates = Vec::new();
        for (index, root) in roots.iter().enumerate() {
            let invalid = |error: reqwest::Error| Error::InvalidCertificate {
                index,
                encoding: root.encoding(),
                reason: error.to_string(),
            };
            match root.encoding() {
                CertificateEncoding::Pem => {
                    let bundle =
                        reqwest::Certificate::from_pem_bundle(root.bytes()).map_err(invalid)?;
                    if bundle.is_empty() {
                        return Err(Error::InvalidCertificate {
                            index,
                            encoding: root.encoding(),
                            reason: "it holds no certificate".to_owned(),
                        });
                    }
                    certificates.extend(bundle);
                }
                CertificateEncoding::Der => {
                    certificates
                        .push(reqwest::Certificate::from_der(root.bytes()).map_err(invalid)?);
                }
            }
        }
        Ok(certificates)
    }

    #[cfg(any(
        feature = "rustls-aws-lc",
        all(feature = "native-tls", not(feature = "rustls-ring"))
    ))]
    pub(super) fn configure(
        builder: reqwest::ClientBuilder,
        roots: &[Certificate],
    ) -> Result<reqwest::ClientBuilder> {
        let roots = reqwest_roots(roots)?;
        // With native-tls compiled in as well, reqwest would otherwise be free to pick it.
        #[cfg(feature = "rustls-aws-lc")]
        let builder = builder.tls_backend_rustls();
        Ok(if roots.is_empty() {
            builder
        } else {
            builder.tls_certs_merge(roots)
        })
    }

    /// rustls with the `ring` provider, configured here because reqwest ships only the
    /// aws-lc provider: the platform's roots plus the extra ones, and both HTTP versions.
    #[cfg(all(feature = "rustls-ring", not(feature = "rustls-aws-lc")))]
    pub(super) fn configure(
        builder: reqwest::ClientBuilder,
        roots: &[Certificate],
    ) -> Result<reqwest::ClientBuilder> {
        use std::sync::Arc;

        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;

        let mut extra = Vec::new();
        for (index, root) in roots.iter().enumerate() {
            let invalid = |reason: String| Error::InvalidCertificate {
                index,
                encoding: root.encoding(),
                reason,
            };
            match root.encoding() {
                CertificateEncoding::Pem => {
                    let before = extra.len();
                    for certificate in CertificateDer::pem_slice_iter(root.bytes()) {
                        extra.push(certificate.map_err(|error| invalid(error.to_string()))?);
                    }
                    if extra.len() == before {
                        return Err(invalid("it holds no certificate".to_owned()));
                    }
                }
                CertificateEncoding::Der => {
                    extra.push(CertificateDer::from(root.bytes().to_vec()));
                }
            }
        }
        let tls_error = |error: &dyn std::fmt::Display| Error::Tls {
            reason: error.to_string(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
                .map_err(|error| tls_error(&error))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| tls_error(&error))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(builder.tls_backend_preconfigured(config))
    }

    /// Without a TLS backend, `https` URLs fail when used; plain HTTP still works.
    #[cfg(not(any(
        feature = "rustls-aws-lc",
        feature = "rustls-ring",
        feature = "native-tls"
    )))]
    pub(super) fn configure(
        builder: reqwest::ClientBuilder,
        roots: &[Certificate],
    ) -> Result<reqwest::ClientBuilder> {
        match roots.first() {
            Some(root) => Err(Error::InvalidCertificate {
                index: 0,
                encoding: root.encoding(),
                reason: "this build has no TLS backend (cargo features rustls-aws-lc, rustls-ring or native-tls)".to_owned(),
            }),
            None => Ok(builder),
        }
    }
}

#[cfg(test)]
mod tests;
