//! The one place that decides where the client may talk plain HTTP and which requests may carry
//! a registry's credentials. Every request `client.rs` sends, whatever its URL came from (an
//! image reference, an upload `Location`, a redirect, a bearer challenge's realm), goes through
//! [`RegistryPolicy::check_transport`] and, for its `Authorization` header,
//! [`RegistryPolicy::carries_credentials`].
//!
//! The rules:
//! - **Credentials stay with their origin.** A registry's credentials (its Basic login, and any
//!   bearer token obtained with it) travel only to the registry's own API origin: the scheme,
//!   host and port its image references name. Upload sessions, redirects (a CDN serving a blob)
//!   and anything else on another origin are sent nothing.
//! - **Token realms.** The registry's login may also go to the token service (`realm`) named
//!   by a `WWW-Authenticate: Bearer` challenge, but only a challenge that came from the
//!   registry's own origin is believed, and the realm must be `https` (or plain HTTP to a
//!   loopback or listed insecure host) without a user name or password in it. The realm's host
//!   is not otherwise restricted: Docker Hub (`auth.docker.io`), GitLab (`gitlab.com` for
//!   `registry.gitlab.com`) and Red Hat (`sso.redhat.com` for `registry.redhat.io`) all name
//!   token services on other hosts, and a registry that wanted the login could ask for it with
//!   a Basic challenge anyway. What must never happen is that someone else names the realm:
//!   that is what believing only the registry's own challenges prevents.
//! - **Plain HTTP** only to loopback hosts and to registries listed as insecure, for any
//!   request, with or without credentials.

use dagster_deploy_http_policy::{host_and_port, is_loopback, is_loopback_host, same_origin};
use url::Url;

use crate::credentials::same_registry;
use crate::error::{Error, Result};
use crate::reference::ImageRef;

/// The transport and credential rules of one client.
#[derive(Clone, Debug, Default)]
pub(crate) struct RegistryPolicy {
    /// Registries (`host` or `host:port`) reached over plain HTTP even if not on loopback.
    insecure_registries: Vec<String>,
}

impl RegistryPolicy {
    pub(crate) fn new(insecure_registries: Vec<String>) -> Self {
        Self {
            insecure_registries,
        }
    }

    /// `http` for loopback and listed insecure registries, `https` for every other.
    pub(crate) fn scheme(&self, image: &ImageRef) -> &'static str {
        let host = image.api_host();
        let insecure = self
            .insecure_registries
            .iter()
            .any(|name| name == host || name == image.registry());
        if insecure || is_loopback_host(host) {
            "http"
        } else {
            "https"
        }
    }

    /// The origin of `image`'s registry API, as a URL with an empty path.
    pub(crate) fn registry_origin(&self, image: &ImageRef) -> Result<Url> {
        let text = format!("{}://{}/", self.scheme(image), image.api_host());
        Url::parse(&text).map_err(|error| Error::InvalidReference {
            reference: image.to_string(),
            reason: error.to_string(),
        })
    }

    /// Whether a request to `url` may carry `image`'s registry credentials: only if `url` has
    /// the registry's own origin.
    pub(crate) fn carries_credentials(&self, image: &ImageRef, url: &Url) -> Result<bool> {
        Ok(same_origin(url, &self.registry_origin(image)?))
    }

    /// Whether two images live on the same registry origin (so a blob can be mounted from one
    /// repository into the other, with one login).
    pub(crate) fn same_registry_origin(&self, left: &ImageRef, right: &ImageRef) -> bool {
        match (self.registry_origin(left), self.registry_origin(right)) {
            (Ok(left), Ok(right)) => same_origin(&left, &right),
            _ => false,
        }
    }

    /// Whether plain HTTP to `url`'s host is allowed: loopback, or listed as insecure.
    pub(crate) fn plain_http_allowed(&self, url: &Url) -> bool {
        let host = host_and_port(url);
        is_loopback(url)
            || self
                .insecure_registries
                .iter()
                .any(|name| same_registry(name, &host))
    }

    /// Refuses any request to `url` (made for `registry`) unless it is `https`, or plain HTTP
    /// to a loopback or listed insecure host.
    pub(crate) fn check_transport(&self, registry: &str, url: &Url) -> Result<()> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.plain_http_allowed(url) => Ok(()),
            scheme => Err(Error::InsecureTransport {
                registry: registry.to_owned(),
                host: host_and_port(url),
                scheme: scheme.to_owned(),
                url: display_url(url),
            }),
        }
    }

    /// Checks a token realm named by a challenge from `registry`'s own origin before the login
    /// is sent to it: the transport rule, and no user name or password in the URL.
    pub(crate) fn check_realm(&self, registry: &str, realm: &Url) -> Result<()> {
        if !realm.username().is_empty() || realm.password().is_some() {
            return Err(Error::Protocol {
                url: display_url(realm),
                reason: format!(
                    "the token service named by registry {registry} has credentials in its URL; refusing to use it"
                ),
            });
        }
        self.check_transport(registry, realm)
    }
}

/// A URL fit for messages: no user name or password, no query (upload session state, signed
/// URL signatures) and no fragment.
pub(crate) fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn insecure_registries_use_http_and_others_https() {
        let policy = RegistryPolicy::new(vec!["reg.internal:5000".into()]);
        for (image, scheme) in [
            ("reg.internal:5000/a:b", "http"),
            ("127.0.0.1:5000/a:b", "http"),
            ("localhost/a:b", "http"),
            ("ghcr.io/a:b", "https"),
            ("reg.internal:5001/a:b", "https"),
            ("alpine", "https"),
        ] {
            assert_eq!(
                policy.scheme(&ImageRef::parse(image).unwrap()),
                scheme,
                "{image}"
            );
        }
    }

    #[test]
    fn credentials_go_only_to_the_registry_origin() {
        let policy = RegistryPolicy::default();
        let image = ImageRef::parse("ghcr.io/team/app:v1").unwrap();
        for (target, carries) in [
            ("https://ghcr.io/v2/team/app/blobs/uploads/x", true),
            ("https://ghcr.io:443/v2/other/manifests/1", true),
            ("https://GHCR.io/v2/", true),
            ("http://ghcr.io/v2/", false),
            ("https://ghcr.io:8443/v2/", false),
            ("https://pkg-containers.githubusercontent.com/blob", false),
            ("https://ghcr.io.evil.example/v2/", false),
        ] {
            assert_eq!(
                policy.carries_credentials(&image, &url(target)).unwrap(),
                carries,
                "{target}"
            );
        }
        let hub = ImageRef::parse("alpine").unwrap();
        assert!(
            policy
                .carries_credentials(&hub, &url("https://registry-1.docker.io/v2/"))
                .unwrap()
        );
        assert!(
            !policy
                .carries_credentials(&hub, &url("https://auth.docker.io/token"))
                .unwrap()
        );
        let local = ImageRef::parse("127.0.0.1:5000/a").unwrap();
        assert!(
            !policy
                .carries_credentials(&local, &url("http://localhost:5000/v2/"))
                .unwrap()
        );
    }

    #[test]
    fn mounts_need_the_same_origin() {
        let policy = RegistryPolicy::default();
        let image = |text| ImageRef::parse(text).unwrap();
        assert!(policy.same_registry_origin(&image("ghcr.io/a/base"), &image("ghcr.io/b/app")));
        assert!(policy.same_registry_origin(&image("alpine"), &image("index.docker.io/acme/app")));
        assert!(!policy.same_registry_origin(&image("ghcr.io/a"), &image("ghcr.io:8443/a")));
        assert!(
            !policy.same_registry_origin(&image("localhost:5000/a"), &image("127.0.0.1:5000/a"))
        );
    }

    #[test]
    fn plain_http_only_to_loopback_or_insecure_hosts() {
        let policy = RegistryPolicy::new(vec!["reg.internal:5000".into(), "auth.internal".into()]);
        for (target, allowed) in [
            ("https://auth.example/token", true),
            ("http://127.0.0.1:5000/token", true),
            ("http://localhost/token", true),
            ("http://[::1]:8080/token", true),
            ("http://reg.internal:5000/v2/", true),
            ("http://auth.internal/token", true),
            ("http://reg.internal:5001/v2/", false),
            ("http://auth.example/token", false),
            ("http://localhost.evil.example/token", false),
            ("ftp://127.0.0.1/token", false),
        ] {
            let result = policy.check_transport("reg.example", &url(target));
            assert_eq!(result.is_ok(), allowed, "{target}: {result:?}");
        }
        let error = policy
            .check_transport(
                "reg.example",
                &url("http://auth.example:8080/token?account=x"),
            )
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("auth.example:8080")
                && error.contains("reg.example")
                && !error.contains("account=x"),
            "{error}"
        );
    }

    #[test]
    fn realms_with_credentials_in_the_url_are_refused() {
        let policy = RegistryPolicy::default();
        assert!(
            policy
                .check_realm("ghcr.io", &url("https://ghcr.io/token"))
                .is_ok()
        );
        let error = policy
            .check_realm("ghcr.io", &url("https://user:hunter2@auth.example/token"))
            .unwrap_err()
            .to_string();
        assert!(
            !error.contains("hunter2") && !error.contains("user"),
            "{error}"
        );
    }

    #[test]
    fn display_url_hides_userinfo_query_and_fragment() {
        assert_eq!(
            display_url(&url("https://u:p@cdn.example/blob?X-Amz-Signature=s#f")),
            "https://cdn.example/blob"
        );
    }
}
