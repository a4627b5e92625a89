//! The pieces of the distribution reference grammar, `[host[:port]/]path[:tag][@digest]`, each
//! checked by hand (a regex engine here cost more CPU than the whole of an unchanged re-push)
//! and each failure returned as data. [`ImageRef`](super::ImageRef) and
//! [`Registry`](super::Registry) are built from these, so they cannot disagree.

use std::fmt;

/// The longest name (registry host and path, as written) the grammar allows.
pub(crate) const NAME_MAX: usize = 255;

/// The longest tag the grammar allows.
const TAG_MAX: usize = 128;

/// Splits the registry host off the start of an image name, the way container tools do: the
/// first `/`-separated component is a host when it contains `.` or `:`, is `localhost`, or has
/// an uppercase letter, and more components follow. Otherwise the name has no host (it is on
/// Docker Hub) and the whole text is the path.
///
/// ```
/// use dagster_deploy_types::split_registry;
///
/// assert_eq!(split_registry("ghcr.io/acme/app"), (Some("ghcr.io"), "acme/app"));
/// assert_eq!(split_registry("localhost/app"), (Some("localhost"), "app"));
/// assert_eq!(split_registry("acme/app"), (None, "acme/app"));
/// ```
pub fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// What is wrong with a registry host (`host[:port]` or `[ipv6][:port]`). Its `Display` is a
/// clause that follows the host: "`[::1` has an unclosed `[`".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostProblem {
    /// An IPv6 literal's `[` is not closed.
    UnclosedBracket,
    /// The text inside `[...]` is not an IPv6 address.
    BadIpv6,
    /// Something other than `:port` follows `]`.
    Malformed,
    /// The host name is not dot-separated labels of letters, digits and inner dashes.
    BadName {
        /// The host name as written.
        name: String,
    },
    /// The port is not a number from 0 to 65535.
    BadPort {
        /// The port as written.
        port: String,
    },
}

impl fmt::Display for HostProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostProblem::UnclosedBracket => f.write_str("has an unclosed `[`"),
            HostProblem::BadIpv6 => f.write_str("is not a valid IPv6 address"),
            HostProblem::Malformed => f.write_str("is malformed"),
            HostProblem::BadName { name } => write!(
                f,
                "has the host name `{}`, which is not labels of letters, digits and inner dashes",
                name.escape_debug()
            ),
            HostProblem::BadPort { port } => write!(
                f,
                "has the port `{}`, which is not a number from 0 to 65535",
                port.escape_debug()
            ),
        }
    }
}

/// Checks `host[:port]`: dot-separated labels of letters, digits and inner dashes, or an
/// `[ipv6]` literal, and a port from 0 to 65535.
pub(crate) fn check_host(host: &str) -> Result<(), HostProblem> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (address, after) = rest.split_once(']').ok_or(HostProblem::UnclosedBracket)?;
        if address.is_empty()
            || !address
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(HostProblem::BadIpv6);
        }
        match after {
            "" => (None, None),
            _ => (
                None,
                Some(after.strip_prefix(':').ok_or(HostProblem::Malformed)?),
            ),
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if name.is_empty() || !name.split('.').all(label_ok) {
            return Err(HostProblem::BadName {
                name: name.to_owned(),
            });
        }
    }
    if let Some(port) = port {
        let digits =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u32>().map_or(true, |number| number > 65_535) {
            return Err(HostProblem::BadPort {
                port: port.to_owned(),
            });
        }
    }
    Ok(())
}

/// What is wrong with the path of an image name (`team/app`): each `/`-separated component is
/// lowercase letters and digits joined by one separator, `.`, `_`, `__` or a run of `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathProblem {
    /// A component is empty (`//`, or a leading or trailing `/`).
    Empty,
    /// A component has an uppercase letter.
    Uppercase {
        /// The component.
        component: String,
    },
    /// A component holds a character outside `a-z 0-9 . _ -`.
    BadCharacter {
        /// The component.
        component: String,
        /// The first character not allowed.
        character: char,
    },
    /// A component starts or ends with a separator.
    BadEnds {
        /// The component.
        component: String,
    },
    /// Two alphanumeric runs are joined by something other than `.`, `_`, `__` or `-`s.
    BadSeparator {
        /// The component.
        component: String,
        /// The separator as written.
        separator: String,
    },
}

impl PathProblem {
    /// The component the problem is in; `None` for an empty one.
    pub fn component(&self) -> Option<&str> {
        match self {
            PathProblem::Empty => None,
            PathProblem::Uppercase { component }
            | PathProblem::BadCharacter { component, .. }
            | PathProblem::BadEnds { component }
            | PathProblem::BadSeparator { component, .. } => Some(component),
        }
    }
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathProblem::Empty => {
                f.write_str("it has an empty path component (`//`, or a leading or trailing `/`)")
            }
            PathProblem::Uppercase { component } => write!(
                f,
                "path component `{component}` has an uppercase letter; repository paths are lowercase"
            ),
            PathProblem::BadCharacter {
                component,
                character,
            } => write!(
                f,
                "path component `{}` contains `{}`",
                component.escape_debug(),
                character.escape_debug()
            ),
            PathProblem::BadEnds { component } => write!(
                f,
                "path component `{component}` must start and end with a letter or digit"
            ),
            PathProblem::BadSeparator {
                component,
                separator,
            } => write!(
                f,
                "path component `{component}` has the separator `{separator}`; use `.`, `_`, `__` or `-`"
            ),
        }
    }
}

/// Checks every `/`-separated component of `path`.
pub(crate) fn check_path(path: &str) -> Result<(), PathProblem> {
    path.split('/').try_for_each(check_component)
}

fn check_component(component: &str) -> Result<(), PathProblem> {
    let owned = || component.to_owned();
    if component.is_empty() {
        return Err(PathProblem::Empty);
    }
    if let Some(bad) = component
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Err(if bad.is_ascii_uppercase() {
            PathProblem::Uppercase { component: owned() }
        } else {
            PathProblem::BadCharacter {
                component: owned(),
                character: bad,
            }
        });
    }
    let bytes = component.as_bytes();
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alphanumeric(bytes[0]) || !alphanumeric(bytes[bytes.len() - 1]) {
        return Err(PathProblem::BadEnds { component: owned() });
    }
    // Separators between alphanumeric runs: `.`, `_`, `__`, or a run of `-`.
    let mut index = 0;
    while index < bytes.len() {
        if alphanumeric(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alphanumeric(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        if !(matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-')) {
            return Err(PathProblem::BadSeparator {
                component: owned(),
                separator: separator.to_owned(),
            });
        }
    }
    Ok(())
}

/// Checks a tag against the distribution spec: 1 to 128 characters of `[A-Za-z0-9_.-]`, the
/// first not `.` or `-`.
pub(crate) fn tag_ok(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_');
    tag.len() <= TAG_MAX
        && first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Checks a digest against the OCI image spec, `algorithm:encoded`, where `sha256` and
/// `sha512` are lowercase hex of their exact length; says why not in a clause.
pub(crate) fn check_digest(digest: &str) -> Result<(), &'static str> {
    let (algorithm, encoded) = digest.split_once(':').ok_or("has no algorithm")?;
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    if !algorithm_ok {
        return Err("has an invalid algorithm");
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
        Err("has an invalid encoded part")
    }
}
