//! `ImageRef`: a parsed image reference (`registry/repository[:tag][@digest]`) with Docker Hub
//! normalisation, parsed by hand after the distribution reference grammar (a regex engine here
//! cost more CPU than the whole of an unchanged re-push); no network code lives here.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A parsed image reference such as `127.0.0.1:5000/team/app:v1` or `ghcr.io/a/b@sha256:…`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference; a missing registry means Docker Hub, a missing tag and digest `latest`.
    ///
    /// Follows the distribution reference grammar, `[domain/]path[:tag][@digest]`: the first
    /// `/`-separated component is the registry if it contains `.` or `:` or is `localhost`;
    /// path components are lowercase letters and digits joined by `.`, `_`, `__` or dashes.
    pub fn parse(text: &str) -> Result<Self> {
        parse_reference(text).map_err(|reason| Error::InvalidReference {
            reference: text.to_owned(),
            reason,
        })
    }

    /// Checks a tag against the distribution spec: 1 to 128 characters of `[A-Za-z0-9_.-]`,
    /// the first not `.` or `-`.
    pub fn validate_tag(tag: &str) -> std::result::Result<(), String> {
        let mut chars = tag.chars();
        let valid_first = chars
            .next()
            .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_');
        let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if tag.len() <= 128 && valid_first && valid_rest {
            Ok(())
        } else {
            Err(format!("{tag:?} is not a valid image tag"))
        }
    }

    /// Checks a digest against the OCI image spec: `algorithm:encoded`, where `sha256` and
    /// `sha512` are lowercase hex of their exact length. Digests come from manifests and
    /// indexes written by others and end up in URLs and file names, so each one is checked.
    pub fn validate_digest(digest: &str) -> std::result::Result<(), String> {
        validate_digest(digest)
    }

    /// The registry host (and port) as written, `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `team/app` or `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any (`sha256:…`).
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same repository, addressed by `digest` instead of a tag; the digest is checked
    /// first (see [`ImageRef::validate_digest`]).
    pub fn with_digest(&self, digest: &str) -> Result<Self> {
        validate_digest(digest).map_err(|reason| self.invalid_part(digest, reason))?;
        Ok(Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_owned()),
        })
    }

    /// The same repository, addressed by `tag`; the tag is checked first (see
    /// [`ImageRef::validate_tag`]).
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        Self::validate_tag(tag).map_err(|reason| self.invalid_part(tag, reason))?;
        Ok(Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    fn invalid_part(&self, part: &str, reason: String) -> Error {
        Error::InvalidReference {
            reference: format!("{}/{}", self.registry, self.repository),
            reason: format!("{part:?} cannot address it: {reason}"),
        }
    }

    /// The host the distribution API is served from (`registry-1.docker.io` for Docker Hub).
    pub(crate) fn api_host(&self) -> &str {
        if self.registry == "docker.io" || self.registry == "index.docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// What the manifest endpoint is addressed by: the digest if present, else the tag.
    pub(crate) fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

/// The longest name (registry and repository, as written) the distribution grammar allows.
const NAME_MAX: usize = 255;

/// Parses `text` into its parts, or says in one sentence what is wrong with it.
fn parse_reference(text: &str) -> std::result::Result<ImageRef, String> {
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => {
            validate_digest(digest)?;
            (rest, Some(digest.to_owned()))
        }
        None => (text, None),
    };
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            let tag = &rest[colon + 1..];
            ImageRef::validate_tag(tag).map_err(|reason| {
                format!(
                    "{reason}: a tag is 1 to 128 of A-Z a-z 0-9 _ . -, not starting with . or -"
                )
            })?;
            (&rest[..colon], Some(tag.to_owned()))
        }
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err(
            "the repository name is empty; write e.g. registry.example.com/team/app:v1".to_owned(),
        );
    }
    if name.len() > NAME_MAX {
        return Err(format!(
            "the name is {} characters long; at most {NAME_MAX} are allowed",
            name.len()
        ));
    }
    let (registry, path) = match name.split_once('/') {
        Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
            validate_domain(first)?;
            (first, path)
        }
        _ => ("docker.io", name),
    };
    validate_path(path)?;
    let registry = if registry == "index.docker.io" {
        "docker.io"
    } else {
        registry
    };
    let repository = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    let tag = if tag.is_none() && digest.is_none() {
        Some("latest".to_owned())
    } else {
        tag
    };
    Ok(ImageRef {
        registry: registry.to_owned(),
        repository,
        tag,
        digest,
    })
}

/// `host[:port]`: dot-separated labels of letters, digits and inner dashes, or `[ipv6]`.
fn validate_domain(domain: &str) -> std::result::Result<(), String> {
    let bad = || {
        format!(
            "registry {domain:?} is not a valid host[:port]; write e.g. registry.example.com:5000"
        )
    };
    let (host, port) = if let Some(inner) = domain.strip_prefix('[') {
        let (address, after) = inner.split_once(']').ok_or_else(bad)?;
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(bad());
        }
        match after {
            "" => (None, None),
            _ => (None, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad());
    }
    Ok(())
}

/// `component(/component)*`, each lowercase letters and digits joined by one separator
/// (`.`, `_`, `__` or one or more `-`).
fn validate_path(path: &str) -> std::result::Result<(), String> {
    for component in path.split('/') {
        if !path_component_ok(component) {
            let shown = if component.is_empty() {
                "an empty path component".to_owned()
            } else {
                format!("path component {component:?}")
            };
            return Err(format!(
                "{shown} is not allowed: each `/`-separated part of the repository must be \
                 lowercase letters and digits joined by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

fn path_component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut index = 0;
    loop {
        // A run of one or more alphanumerics.
        let start = index;
        while index < bytes.len() && alnum(bytes[index]) {
            index += 1;
        }
        if index == start {
            return false;
        }
        if index == bytes.len() {
            return true;
        }
        // One separator: `.`, `_`, `__` or `-`+.
        match bytes[index] {
            b'.' => index += 1,
            b'_' => {
                index += if bytes.get(index + 1) == Some(&b'_') {
                    2
                } else {
                    1
                }
            }
            b'-' => {
                while bytes.get(index) == Some(&b'-') {
                    index += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `algorithm:encoded` after the OCI image spec; `sha256` and `sha512` must be lowercase hex of
/// their exact length.
fn validate_digest(digest: &str) -> std::result::Result<(), String> {
    let bad = |why: &str| {
        format!("digest {digest:?} {why}; write it as sha256: followed by 64 lowercase hex digits")
    };
    let (algorithm, encoded) = digest
        .split_once(':')
        .ok_or_else(|| bad("has no algorithm"))?;
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    if !algorithm_ok {
        return Err(bad("has an invalid algorithm"));
    }
    let lower_hex = |length: usize| {
        encoded.len() == length
            && encoded
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let encoded_ok = match algorithm {
        "sha256" => lower_hex(64),
        "sha512" => lower_hex(128),
        _ => {
            !encoded.is_empty()
                && encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
        }
    };
    if encoded_ok {
        Ok(())
    } else {
        Err(bad("has an invalid encoded part"))
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(formatter, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(formatter, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ImageRef({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_tag_accepts_spec_tags_and_rejects_the_rest() {
        for good in ["v1", "4f2a9c1-42", "_x", "A.b-c_d", &"a".repeat(128)] {
            assert_eq!(ImageRef::validate_tag(good), Ok(()), "{good}");
        }
        for bad in ["", ".v1", "-v1", "v1:2", "v/1", "ü", &"a".repeat(129)] {
            assert!(ImageRef::validate_tag(bad).is_err(), "{bad}");
        }
    }

    fn check(
        input: &str,
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) {
        let image = ImageRef::parse(input).unwrap();
        assert_eq!(
            (
                image.registry(),
                image.repository(),
                image.tag(),
                image.digest()
            ),
            (registry, repository, tag, digest),
            "{input}"
        );
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parse_splits_registry_repository_tag_and_digest() {
        check(
            "127.0.0.1:5000/team/app:v1",
            "127.0.0.1:5000",
            "team/app",
            Some("v1"),
            None,
        );
        check(
            &format!("ghcr.io/a/b@{DIGEST}"),
            "ghcr.io",
            "a/b",
            None,
            Some(DIGEST),
        );
        check(
            "localhost:5000/app",
            "localhost:5000",
            "app",
            Some("latest"),
            None,
        );
    }

    #[test]
    fn parse_normalises_docker_hub_names() {
        check(
            "alpine",
            "docker.io",
            "library/alpine",
            Some("latest"),
            None,
        );
        check("acme/app:1", "docker.io", "acme/app", Some("1"), None);
        assert_eq!(
            ImageRef::parse("alpine").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn parse_rejects_uppercase_with_the_reference_in_the_message() {
        let error = ImageRef::parse("127.0.0.1:5000/Team/App")
            .unwrap_err()
            .to_string();
        assert!(error.contains("127.0.0.1:5000/Team/App"), "{error}");
    }

    #[test]
    fn parse_accepts_the_grammar_s_corners() {
        check(
            "index.docker.io/alpine",
            "docker.io",
            "library/alpine",
            Some("latest"),
            None,
        );
        check(
            "localhost/a__b.c-d---e/f_g:1.0-rc_1",
            "localhost",
            "a__b.c-d---e/f_g",
            Some("1.0-rc_1"),
            None,
        );
        check("[::1]:5000/app:v1", "[::1]:5000", "app", Some("v1"), None);
        check(
            &format!("Reg-1.Example.com/app:v1@{DIGEST}"),
            "Reg-1.Example.com",
            "app",
            Some("v1"),
            Some(DIGEST),
        );
        let other = "sha512+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564";
        check(
            &format!("ghcr.io/a@{other}"),
            "ghcr.io",
            "a",
            None,
            Some(other),
        );
        let longest = format!("r.io/{}", "a".repeat(250));
        assert_eq!(ImageRef::parse(&longest).unwrap().repository().len(), 250);
    }

    #[test]
    fn parse_rejects_what_the_grammar_rejects_and_says_why() {
        let short_hex = "sha256:0123456789abcdef";
        let upper_hex = DIGEST.to_uppercase().replacen("SHA256", "sha256", 1);
        let too_long = format!("r.io/{}", "a".repeat(251));
        let cases: [(&str, &str); 20] = [
            ("", "empty"),
            ("127.0.0.1:5000/Team/app", "\"Team\""),
            ("ghcr.io/acme/App:v1", "\"App\""),
            ("ghcr.io//app", "empty path component"),
            ("ghcr.io/app/", "empty path component"),
            ("ghcr.io/", "empty path component"),
            ("/app", "empty path component"),
            ("ghcr.io/app-", "\"app-\""),
            ("ghcr.io/app.", "\"app.\""),
            ("ghcr.io/a___b", "\"a___b\""),
            ("ghcr.io/_app", "\"_app\""),
            ("ghcr.io/app:", "tag"),
            ("ghcr.io/app:-v1", "tag"),
            ("ghcr.io/app:v1:v2", "\"app:v1\""),
            ("ghcr.io/app@sha256", "no algorithm"),
            (&format!("ghcr.io/app@{short_hex}"), "encoded"),
            (&format!("ghcr.io/app@{upper_hex}"), "encoded"),
            ("ghcr.io/app@SHA256:00", "algorithm"),
            ("-bad.io:5000/app", "registry"),
            (&too_long, "at most 255"),
        ];
        for (input, expected) in cases {
            let error = match ImageRef::parse(input) {
                Ok(parsed) => panic!("{input:?} was accepted as {parsed:?}"),
                Err(error) => error.to_string(),
            };
            assert!(error.contains(expected), "{input:?}: {error}");
            assert!(error.contains(input), "{input:?}: {error}");
        }
        let bad_tag = format!("ghcr.io/app:{}", "t".repeat(129));
        assert!(ImageRef::parse(&bad_tag).is_err());
        assert!(ImageRef::parse("reg.io:50x0/app").is_err());
    }

    #[test]
    fn display_round_trips() {
        let text = format!("127.0.0.1:5000/team/app:v1@{DIGEST}");
        assert_eq!(ImageRef::parse(&text).unwrap().to_string(), text);
        let by_digest = ImageRef::parse("ghcr.io/a/b:v1")
            .unwrap()
            .with_digest(DIGEST)
            .unwrap();
        assert_eq!(by_digest.manifest_reference(), DIGEST);
    }
}
