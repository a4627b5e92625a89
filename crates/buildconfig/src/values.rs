//! Validated value newtypes: [`LocationName`] and [`Registry`]. Each can only be built through
//! its checking constructor, so holding one proves the value is valid. Where the value sits in
//! a file is not known here; callers attach file, line and field to the returned problem.

use std::fmt;

/// Longest location name accepted, in bytes. The state directory stores a location in
/// `location-<name>.json`, and most file systems limit a file name to 255 bytes.
pub(crate) const MAX_LOCATION_NAME_BYTES: usize = 200;

/// A code location name that is non-empty, unique in its file and safe to use in a file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocationName(String);

impl LocationName {
    /// Checks a location name; on failure returns what is wrong and what to do.
    pub fn new(name: &str) -> std::result::Result<Self, Problem> {
        let problem = |what: String| Problem {
            problem: what,
            help: "use letters, digits, `-`, `_` and `.`, e.g. `my-location`".to_owned(),
        };
        if name.is_empty() {
            return Err(problem("the location name is empty".to_owned()));
        }
        if name.len() > MAX_LOCATION_NAME_BYTES {
            return Err(problem(format!(
                "the location name is {} bytes long, more than the limit of {MAX_LOCATION_NAME_BYTES}",
                name.len()
            )));
        }
        if name.contains(['/', '\\']) {
            return Err(problem(format!(
                "the location name `{}` contains a path separator; it is used in file names",
                name.escape_debug()
            )));
        }
        if name.contains("..") || name == "." {
            return Err(problem(format!(
                "the location name `{}` contains `..` or is `.`; it is used in file names",
                name.escape_debug()
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(problem(format!(
                "the location name `{}` contains a control character",
                name.escape_debug()
            )));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LocationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for LocationName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An OCI image repository reference without tag or digest, e.g. `ghcr.io/org/img` or
/// `123456789012.dkr.ecr.us-east-1.amazonaws.com/repo`. The image tag is appended with `:`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Registry(String);

/// Longest repository reference accepted (the OCI distribution limit for a name).
const MAX_REPOSITORY_BYTES: usize = 255;

impl Registry {
    /// Checks a repository reference; on failure returns what is wrong and what to do.
    pub fn new(reference: &str) -> std::result::Result<Self, Problem> {
        let example = "write a repository without tag or digest, e.g. `ghcr.io/org/image` or `registry.example.com:5000/team/app`";
        let problem = |what: String| Problem {
            problem: what,
            help: example.to_owned(),
        };
        if reference.is_empty() {
            return Err(problem("the registry is empty".to_owned()));
        }
        if reference.len() > MAX_REPOSITORY_BYTES {
            return Err(problem(format!(
                "the registry is {} bytes long, more than the limit of {MAX_REPOSITORY_BYTES}",
                reference.len()
            )));
        }
        if let Some((scheme, _)) = reference.split_once("://") {
            return Err(Problem {
                problem: format!(
                    "the registry `{}` starts with a URL scheme (`{}://`)",
                    reference.escape_debug(),
                    scheme.escape_debug()
                ),
                help: "remove the scheme: a repository is written as `host/path`, e.g. `ghcr.io/org/image`".to_owned(),
            });
        }
        if let Some((_, digest)) = reference.split_once('@') {
            return Err(Problem {
                problem: format!(
                    "the registry `{}` includes a digest (`@{}`)",
                    reference.escape_debug(),
                    digest.escape_debug()
                ),
                help: "remove the `@...` part: the image digest is decided at build time"
                    .to_owned(),
            });
        }
        let (host, path) = split_host(reference);
        if let Some(host) = host {
            check_host(host).map_err(problem)?;
        }
        if let Some((_, tag)) = path.rsplit_once(':') {
            return Err(Problem {
                problem: format!(
                    "the registry `{}` includes a tag (`:{}`)",
                    reference.escape_debug(),
                    tag.escape_debug()
                ),
                help: "remove the `:tag` part: the tag is appended at build time".to_owned(),
            });
        }
        for component in path.split('/') {
            check_path_component(component).map_err(|what| {
                problem(format!(
                    "the registry `{}` is not a valid repository: {what}",
                    reference.escape_debug()
                ))
            })?;
        }
        Ok(Self(reference.to_owned()))
    }

    /// The repository reference as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Registry {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What is wrong with a value and what to do about it, before a position is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong.
    pub problem: String,
    /// What to do.
    pub help: String,
}

/// Splits off the registry host the way container tools do: the first component is a host when
/// it contains `.` or `:`, is `localhost`, or has an uppercase letter, and more components follow.
fn split_host(reference: &str) -> (Option<&str>, &str) {
    match reference.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, reference),
    }
}

fn check_host(host: &str) -> std::result::Result<(), String> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: `[::1]` or `[::1]:5000`.
        let (address, after) = rest.split_once(']').ok_or_else(|| {
            format!(
                "the registry host `{}` has an unclosed `[`",
                host.escape_debug()
            )
        })?;
        if address.is_empty()
            || !address
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!(
                "the registry host `{}` is not a valid IPv6 address",
                host.escape_debug()
            ));
        }
        match after {
            "" => return Ok(()),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => {
                    return Err(format!(
                        "the registry host `{}` is malformed",
                        host.escape_debug()
                    ));
                }
            },
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid {
            return Err(format!(
                "the registry host `{}` is not a valid host name",
                name.escape_debug()
            ));
        }
    }
    if let Some(port) = port {
        let valid = !port.is_empty() && port.len() <= 5 && port.chars().all(|c| c.is_ascii_digit());
        if !valid || port.parse::<u32>().map_or(true, |number| number > 65_535) {
            return Err(format!(
                "the registry port `{}` is not a number from 0 to 65535",
                port.escape_debug()
            ));
        }
    }
    Ok(())
}

/// A path component: lowercase alphanumerics separated by `.`, `_`, `__` or one or more `-`.
fn check_path_component(component: &str) -> std::result::Result<(), String> {
    if component.is_empty() {
        return Err(
            "it has an empty path component (`//`, or a leading or trailing `/`)".to_owned(),
        );
    }
    if let Some(bad) = component
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Err(if bad.is_ascii_uppercase() {
            format!(
                "path component `{component}` has an uppercase letter; repository paths are lowercase"
            )
        } else {
            format!(
                "path component `{}` contains `{}`",
                component.escape_debug(),
                bad.escape_debug()
            )
        });
    }
    let bytes = component.as_bytes();
    let is_alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !is_alphanumeric(bytes[0]) || !is_alphanumeric(bytes[bytes.len() - 1]) {
        return Err(format!(
            "path component `{component}` must start and end with a letter or digit"
        ));
    }
    // Separators between alphanumeric runs: `.`, `_`, `__`, or a run of `-`.
    let mut index = 0;
    while index < bytes.len() {
        if is_alphanumeric(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !is_alphanumeric(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let valid = matches!(separator, "." | "_" | "__") || separator.chars().all(|c| c == '-');
        if !valid {
            return Err(format!(
                "path component `{component}` has the separator `{separator}`; use `.`, `_`, `__` or `-`"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_registry(reference: &str, expected_ok: bool) {
        let result = Registry::new(reference);
        assert_eq!(result.is_ok(), expected_ok, "{reference}: {result:?}");
    }

    #[test]
    fn registry_accepts_common_repository_references() {
        for reference in [
            "ghcr.io/org/img",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-repo",
            "registry.example.com/data/shared",
            "localhost:5000/app",
            "localhost/app",
            "127.0.0.1:5000/a/b",
            "[::1]:5000/app",
            "my_org/my__app",
            "docker.io/library/python",
            "python",
            "a-b--c.d_e",
            "Registry.Example.com/app",
        ] {
            check_registry(reference, true);
        }
    }

    #[test]
    fn registry_rejects_tags_digests_and_malformed_references() {
        for reference in [
            "",
            "ghcr.io/org/img:latest",
            "img:1.0",
            "ghcr.io/org/img@sha256:abcd",
            "ghcr.io/Org/img",
            "ghcr.io//img",
            "ghcr.io/img/",
            "/img",
            "ghcr.io:99999/img",
            "ghcr.io:/img",
            "-bad.io/img",
            "ghcr.io/org/img-",
            "ghcr.io/org/a___b",
            "ghcr.io/org/a.-b",
            "ghcr io/img",
            "ghcr.io/o rg/img",
            "https://ghcr.io/img",
            "[::1/img",
        ] {
            check_registry(reference, false);
        }
    }

    #[test]
    fn registry_tag_error_says_to_remove_the_tag() {
        let problem = Registry::new("ghcr.io/org/img:latest").unwrap_err();
        assert!(problem.problem.contains("tag (`:latest`)"), "{problem:?}");
        assert!(problem.help.contains("remove the `:tag`"), "{problem:?}");
    }

    #[test]
    fn location_name_must_be_safe_as_a_file_name() {
        for good in ["sales", "ops-core", "a.b", "Data_1", "with space"] {
            assert!(LocationName::new(good).is_ok(), "{good}");
        }
        let too_long = "a".repeat(MAX_LOCATION_NAME_BYTES + 1);
        for bad in [
            "",
            "a/b",
            "a\\b",
            "..",
            "a..b",
            ".",
            "a\nb",
            "a\u{0}b",
            too_long.as_str(),
        ] {
            assert!(LocationName::new(bad).is_err(), "{bad:?}");
        }
    }
}
