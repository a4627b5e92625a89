//! Organization and deployment URLs (reference-behaviour §5.1), the organization URL derived
//! from a configured base URL (reference-behaviour §1.8), and the plain-HTTP guard
//! (reference-behaviour ref-bug 39).
//!
//! Only URL construction and checks live here; sending requests is `transport.rs`'s job.

use dagster_deploy_http_policy::is_loopback;

use crate::error::{Error, Result};

/// Regions whose base URL (`https://<region>.dagster.cloud`, as `dg plus login --region`
/// writes it) turns into the host form `https://<organization>.<region>.dagster.cloud`.
const KNOWN_REGIONS: &[&str] = &["eu"];

/// Longest deployment name accepted in a URL path.
const MAX_DEPLOYMENT_NAME: usize = 255;

/// How a configured base URL (`url` in the Dagster+ CLI config) became the organization URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlDerivation {
    /// A Dagster+ region base (`https://dagster.cloud`, `https://eu.dagster.cloud`): the host
    /// form for the organization, in that region (`None` for the default region).
    Region(Option<String>),
    /// The URL already is the organization's (`https://acme.dagster.cloud`): used as it is.
    AlreadyOrganization,
    /// Any other URL (a proxy, a local server): `<url>/<organization>`, as the reference's `dg`
    /// client does. Never replaced by a default.
    Base,
}

/// The base URL of a Dagster+ organization, without the deployment and without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgUrl(String);

impl OrgUrl {
    /// Builds `https://<org>.dagster.cloud` or `https://<org>.<region>.dagster.cloud`.
    pub fn from_organization(organization: &str, region: Option<&str>) -> Result<Self> {
        if !is_dns_label(organization) {
            return Err(Error::InvalidOrganization {
                organization: organization.to_owned(),
            });
        }
        match region.map(str::trim).filter(|region| !region.is_empty()) {
            None => Ok(OrgUrl(format!("https://{organization}.dagster.cloud"))),
            Some(region) if is_dns_label(region) => Ok(OrgUrl(format!(
                "https://{organization}.{region}.dagster.cloud"
            ))),
            Some(region) => Err(Error::InvalidRegion {
                region: region.to_owned(),
            }),
        }
    }

    /// The organization URL for a base URL the user configured (`url` in the Dagster+ CLI
    /// config file): a known region base gives the host form, an organization URL is kept, and
    /// any other URL gives `<url>/<organization>`. A configured URL is never replaced by a
    /// default, so the token only goes where the user pointed it.
    pub fn from_configured(url: &str, organization: &str) -> Result<(Self, UrlDerivation)> {
        let base = Self::parse(url)?;
        if !is_dns_label(organization) {
            return Err(Error::InvalidOrganization {
                organization: organization.to_owned(),
            });
        }
        let parsed = url::Url::parse(&base.0).map_err(|error| Error::InvalidUrl {
            url: redact_url(&base.0),
            reason: error.to_string(),
        })?;
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let bare = parsed.scheme() == "https"
            && parsed.port().is_none()
            && matches!(parsed.path(), "" | "/");
        if bare {
            let region = match host.strip_suffix(".dagster.cloud") {
                None if host == "dagster.cloud" => Some(None),
                Some(region) if KNOWN_REGIONS.contains(&region) => Some(Some(region.to_owned())),
                _ => None,
            };
            if let Some(region) = region {
                let url = Self::from_organization(organization, region.as_deref())?;
                return Ok((url, UrlDerivation::Region(region)));
            }
            let own = std::iter::once(None)
                .chain(KNOWN_REGIONS.iter().map(|region| Some(*region)))
                .filter_map(|region| Self::from_organization(organization, region).ok())
                .any(|candidate| candidate.0.eq_ignore_ascii_case(&base.0));
            if own {
                return Ok((base, UrlDerivation::AlreadyOrganization));
            }
        }
        Ok((
            OrgUrl(format!("{}/{organization}", base.0)),
            UrlDerivation::Base,
        ))
    }

    /// Uses a URL verbatim (e.g. `DAGSTER_CLOUD_URL`), minus trailing `/` characters.
    ///
    /// Both the host form (`https://acme.dagster.cloud`) and the path form
    /// (`https://dagster.cloud/acme`) are accepted. Unlike the reference, the trailing `/` is
    /// removed before a deployment is appended, so no `//` appears in deployment URLs.
    pub fn parse(url: &str) -> Result<Self> {
        let trimmed = url.trim().trim_end_matches('/');
        // The rejected URL is shown without credentials, query or fragment, so that
        // `https://ci:secret@…` cannot leak the password into logs.
        let invalid = |reason: &str| Error::InvalidUrl {
            url: redact_url(trimmed),
            reason: reason.to_owned(),
        };
        let parsed = url::Url::parse(trimmed).map_err(|error| invalid(&error.to_string()))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Error::UrlCredentials {
                url: redact_url(trimmed),
            });
        }
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(
                "the scheme must be https (or http for a local server)",
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URL has no host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(invalid(
                "the URL must not have a query (?…) or fragment (#…)",
            ));
        }
        Ok(OrgUrl(trimmed.to_owned()))
    }

    /// The URL as a string, e.g. `https://acme.dagster.cloud`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The deployment URL, `<org URL>/<deployment>`; the deployment name is checked first, as
    /// it becomes a path segment (see [`validate_deployment_name`]).
    pub fn deployment_url(&self, deployment: &str) -> Result<String> {
        validate_deployment_name(deployment)?;
        Ok(format!("{}/{}", self.0, deployment))
    }

    /// The organization-scoped GraphQL endpoint, `<org URL>/graphql`.
    pub(crate) fn graphql_endpoint(&self) -> String {
        format!("{}/graphql", self.0)
    }

    /// The deployment-scoped GraphQL endpoint, `<org URL>/<deployment>/graphql`.
    pub(crate) fn deployment_graphql_endpoint(&self, deployment: &str) -> Result<String> {
        Ok(format!("{}/graphql", self.deployment_url(deployment)?))
    }

    /// Whether this is a Dagster+ host (`https://dagster.cloud/…` or
    /// `https://*.dagster.cloud/…`) or a loopback address: places the API token may go without
    /// the user naming them in this process's settings.
    pub fn is_dagster_plus_or_loopback(&self) -> bool {
        let Ok(parsed) = url::Url::parse(&self.0) else {
            return false;
        };
        if is_loopback(&parsed) {
            return true;
        }
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        parsed.scheme() == "https"
            && parsed.port().is_none()
            && (host == "dagster.cloud" || host.ends_with(".dagster.cloud"))
    }

    /// Whether two organization URLs name the same place (scheme and host case, default ports
    /// and trailing slashes aside).
    pub fn same_as(&self, other: &OrgUrl) -> bool {
        match (url::Url::parse(&self.0), url::Url::parse(&other.0)) {
            (Ok(left), Ok(right)) => left == right,
            _ => false,
        }
    }

    /// Fails unless the URL is https, or http to a loopback host.
    pub(crate) fn ensure_token_safe(&self) -> Result<()> {
        let insecure = || Error::InsecureUrl {
            url: self.0.clone(),
        };
        let parsed = url::Url::parse(&self.0).map_err(|_| insecure())?;
        match parsed.scheme() {
            "https" => Ok(()),
            "http" if is_loopback(&parsed) => Ok(()),
            _ => Err(insecure()),
        }
    }
}

impl std::fmt::Display for OrgUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A URL (possibly malformed) fit for an error message: anything up to the last `@` after the
/// scheme (user name and password) and anything from the first `?` or `#` on is removed.
///
/// This is deliberately cruder than a URL parser: it must also hide credentials in strings that
/// do not parse, e.g. a password containing `/` or `?`. An `@` in a path loses part of the path,
/// which is acceptable in an error message.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(index) => url.split_at(index + 3),
        None => ("", url),
    };
    let rest = match rest.rfind('@') {
        Some(index) => &rest[index + 1..],
        None => rest,
    };
    let rest = rest.find(['?', '#']).map_or(rest, |index| &rest[..index]);
    format!("{scheme}{rest}")
}

/// Checks a deployment name before it becomes a URL path segment and a header: 1 to 255
/// ASCII letters, digits, `-`, `_` and `.`, and not `.` or `..`. Names come from flags, env
/// vars, config files, state files written by other jobs, and Dagster+ itself.
pub fn validate_deployment_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= MAX_DEPLOYMENT_NAME
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidDeployment {
            name: name.chars().take(80).collect::<String>(),
        })
    }
}

fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && !value.starts_with('-')
        && !value.ends_with('-')
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_and_region_build_the_host_form() {
        let check = |org, region, expected: &str| {
            assert_eq!(
                OrgUrl::from_organization(org, region).unwrap().as_str(),
                expected
            );
        };
        check("acme", None, "https://acme.dagster.cloud");
        check("acme", Some(""), "https://acme.dagster.cloud");
        check("acme", Some("eu"), "https://acme.eu.dagster.cloud");
    }

    #[test]
    fn organization_names_that_would_change_the_host_are_rejected() {
        for bad in ["", "acme.evil.com", "a/b", "-acme", "acme@x"] {
            let error = OrgUrl::from_organization(bad, None).unwrap_err();
            assert!(
                matches!(error, Error::InvalidOrganization { .. }),
                "{bad}: {error}"
            );
        }
        assert!(matches!(
            OrgUrl::from_organization("acme", Some("e/u")),
            Err(Error::InvalidRegion { .. })
        ));
    }

    #[test]
    fn parse_keeps_the_url_and_strips_trailing_slashes() {
        let url = OrgUrl::parse("https://dagster.cloud/acme//").unwrap();
        assert_eq!(url.as_str(), "https://dagster.cloud/acme");
        assert_eq!(
            url.deployment_url("prod").unwrap(),
            "https://dagster.cloud/acme/prod"
        );
        assert_eq!(
            url.deployment_graphql_endpoint("prod").unwrap(),
            "https://dagster.cloud/acme/prod/graphql"
        );
        assert_eq!(url.graphql_endpoint(), "https://dagster.cloud/acme/graphql");
    }

    #[test]
    fn configured_urls_are_region_bases_organization_urls_or_bases() {
        let check = |url: &str, expected: &str, derivation: UrlDerivation| {
            let (derived, how) = OrgUrl::from_configured(url, "acme").unwrap();
            assert_eq!((derived.as_str(), how), (expected, derivation), "{url}");
        };
        check(
            "https://dagster.cloud",
            "https://acme.dagster.cloud",
            UrlDerivation::Region(None),
        );
        check(
            "https://eu.dagster.cloud/",
            "https://acme.eu.dagster.cloud",
            UrlDerivation::Region(Some("eu".into())),
        );
        check(
            "https://EU.Dagster.Cloud",
            "https://acme.eu.dagster.cloud",
            UrlDerivation::Region(Some("eu".into())),
        );
        check(
            "https://acme.dagster.cloud",
            "https://acme.dagster.cloud",
            UrlDerivation::AlreadyOrganization,
        );
        check(
            "https://acme.eu.dagster.cloud/",
            "https://acme.eu.dagster.cloud",
            UrlDerivation::AlreadyOrganization,
        );
        for (url, expected) in [
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000/acme"),
            (
                "https://proxy.corp.example/dagster/",
                "https://proxy.corp.example/dagster/acme",
            ),
            (
                "https://other.dagster.cloud",
                "https://other.dagster.cloud/acme",
            ),
            (
                "https://dagster.cloud:8443",
                "https://dagster.cloud:8443/acme",
            ),
            ("http://dagster.cloud", "http://dagster.cloud/acme"),
            (
                "https://dagster.cloud/acme",
                "https://dagster.cloud/acme/acme",
            ),
        ] {
            check(url, expected, UrlDerivation::Base);
        }
        assert!(matches!(
            OrgUrl::from_configured("https://ci:pw@proxy.example", "acme"),
            Err(Error::UrlCredentials { .. })
        ));
        assert!(matches!(
            OrgUrl::from_configured("https://proxy.example", "acme/../x"),
            Err(Error::InvalidOrganization { .. })
        ));
    }

    #[test]
    fn deployment_names_that_would_change_the_path_are_rejected() {
        let url = OrgUrl::parse("https://acme.dagster.cloud").unwrap();
        for good in ["prod", "feature-branch_1", "v1.2", "A"] {
            assert!(url.deployment_url(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../graphql",
            "a?b",
            "a#b",
            "a b",
            "%2e",
            "é",
            &"x".repeat(256),
        ] {
            let error = url.deployment_url(bad).unwrap_err();
            assert!(
                matches!(error, Error::InvalidDeployment { .. }),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn dagster_plus_and_loopback_urls_are_recognised() {
        for (url, expected) in [
            ("https://acme.dagster.cloud", true),
            ("https://dagster.cloud/acme", true),
            ("https://acme.eu.dagster.cloud", true),
            ("http://127.0.0.1:3000", true),
            ("http://localhost:3000/acme", true),
            ("http://acme.dagster.cloud", false),
            ("https://acme.dagster.cloud:8443", false),
            ("https://dagster.cloud.evil.example", false),
            ("https://evildagster.cloud", false),
            ("https://proxy.corp.example/acme", false),
        ] {
            assert_eq!(
                OrgUrl::parse(url).unwrap().is_dagster_plus_or_loopback(),
                expected,
                "{url}"
            );
        }
        let one = OrgUrl::parse("https://ACME.dagster.cloud/").unwrap();
        assert!(one.same_as(&OrgUrl::parse("https://acme.dagster.cloud:443").unwrap()));
        assert!(!one.same_as(&OrgUrl::parse("https://dagster.cloud/acme").unwrap()));
    }

    #[test]
    fn parse_rejects_unusable_urls_with_the_reason() {
        for (bad, shown, reason) in [
            ("acme.dagster.cloud", "acme.dagster.cloud", "relative URL"),
            (
                "ftp://acme.dagster.cloud",
                "ftp://acme.dagster.cloud",
                "scheme must be https",
            ),
            (
                "https://acme.dagster.cloud?x=1",
                "https://acme.dagster.cloud",
                "must not have a query",
            ),
            (
                "https://acme.dagster.cloud#frag",
                "https://acme.dagster.cloud",
                "fragment",
            ),
        ] {
            let error = OrgUrl::parse(bad).unwrap_err();
            assert!(matches!(error, Error::InvalidUrl { .. }), "{bad}: {error}");
            let text = error.to_string();
            assert!(text.contains(&format!("{shown:?}")), "{text}");
            assert!(text.contains(reason), "{text}");
        }
    }

    #[test]
    fn credentials_in_the_url_are_rejected_without_showing_them() {
        for bad in [
            "https://ci:hunter2@acme.dagster.cloud",
            "https://ci:hunter2@acme.dagster.cloud/?token=hunter2",
            "http://hunter2@127.0.0.1:3000",
            "https://ci:hunter2@acme.dagster.cloud/",
        ] {
            let error = OrgUrl::parse(bad).unwrap_err();
            let text = error.to_string();
            let debug = format!("{error:?}");
            assert!(
                matches!(error, Error::UrlCredentials { .. }),
                "{bad}: {text}"
            );
            assert!(text.contains("holds credentials"), "{text}");
            assert!(error.is_invalid_setting());
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!debug.contains("hunter2"), "{debug}");
        }
    }

    #[test]
    fn malformed_urls_with_credentials_do_not_show_them_either() {
        // None of these parse as URLs with credentials, yet each carries a secret.
        for bad in [
            "https://ci:hun/ter2@acme.dagster.cloud",
            "https://ci:hun?ter2@acme.dagster.cloud",
            "https://ci:hun#ter2@acme.dagster.cloud",
            "ci:hunter2@acme.dagster.cloud",
            "ftp://ci:hunter2@acme.dagster.cloud",
            "https://acme.dagster.cloud:99999?token=hunter2",
        ] {
            let text = match OrgUrl::parse(bad) {
                Ok(url) => panic!("{bad} was accepted as {url}"),
                Err(error) => format!("{error} {error:?}"),
            };
            for piece in ["hunter2", "hun/ter2", "ter2"] {
                assert!(!text.contains(piece), "{bad}: {text}");
            }
        }
    }

    #[test]
    fn redact_url_strips_userinfo_query_and_fragment() {
        assert_eq!(
            redact_url("https://u:p@acme.dagster.cloud/x?y=1#z"),
            "https://acme.dagster.cloud/x"
        );
        assert_eq!(redact_url("u:p@host/path"), "host/path");
        assert_eq!(
            redact_url("https://dagster.cloud/acme"),
            "https://dagster.cloud/acme"
        );
    }

    #[test]
    fn plain_http_is_only_allowed_to_loopback() {
        for ok in [
            "https://acme.dagster.cloud",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:3000",
            "http://localhost:3000/acme",
        ] {
            OrgUrl::parse(ok).unwrap().ensure_token_safe().unwrap();
        }
        for bad in [
            "http://acme.dagster.cloud",
            "http://10.0.0.1",
            "http://localhost.evil.com",
        ] {
            let error = OrgUrl::parse(bad).unwrap().ensure_token_safe().unwrap_err();
            assert!(matches!(error, Error::InsecureUrl { .. }), "{bad}: {error}");
        }
    }
}
