//! [`LocationName`]: the one rule for code location names. A name becomes part of a file name
//! (`location-<name>.json` in the state directory, and the temp file written beside it), so
//! it must be safe there and short enough for it (reference-behaviour ref-bug 27); it is also
//! printed, so it holds no control characters. The configuration reader and the session apply
//! this same rule, so a name one accepts the other accepts too.

use std::fmt;

/// Longest location name accepted, in bytes. A state file is `location-<name>.json`, and the
/// temp file that replaces it adds a prefix of about forty bytes; most file systems limit a
/// file name to 255 bytes.
pub const MAX_LOCATION_NAME_BYTES: usize = 200;

/// A code location name that is non-empty, at most [`MAX_LOCATION_NAME_BYTES`] long, holds no
/// path separator or control character, and is not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocationName(String);

/// What is wrong with a location name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocationNameProblem {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_LOCATION_NAME_BYTES`].
    TooLong {
        /// Its length in bytes.
        bytes: usize,
    },
    /// The name contains `/` or `\`.
    PathSeparator,
    /// The name is `.` or `..`.
    RelativeDirectory,
    /// The name contains a control character (NUL, a line break, an escape, ...).
    ControlCharacter,
}

/// A location name that breaks the rule, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLocationName {
    name: String,
    problem: LocationNameProblem,
}

impl LocationName {
    /// Checks a location name.
    pub fn new(name: &str) -> Result<Self, InvalidLocationName> {
        Self::check(name)?;
        Ok(Self(name.to_owned()))
    }

    /// Checks a location name without keeping it.
    pub fn check(name: &str) -> Result<(), InvalidLocationName> {
        let problem = if name.is_empty() {
            LocationNameProblem::Empty
        } else if name.len() > MAX_LOCATION_NAME_BYTES {
            LocationNameProblem::TooLong { bytes: name.len() }
        } else if name.contains(['/', '\\']) {
            LocationNameProblem::PathSeparator
        } else if name == "." || name == ".." {
            LocationNameProblem::RelativeDirectory
        } else if name.chars().any(char::is_control) {
            LocationNameProblem::ControlCharacter
        } else {
            return Ok(());
        };
        Err(InvalidLocationName {
            name: name.to_owned(),
            problem,
        })
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

impl InvalidLocationName {
    /// The rejected name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What is wrong with it.
    pub fn problem(&self) -> LocationNameProblem {
        self.problem
    }

    /// The reason alone, as a clause: `it contains a path separator`.
    pub fn reason(&self) -> &'static str {
        match self.problem {
            LocationNameProblem::Empty => "it is empty",
            LocationNameProblem::TooLong { .. } => "it is too long to be part of a file name",
            LocationNameProblem::PathSeparator => "it contains a path separator",
            LocationNameProblem::RelativeDirectory => "it is a relative directory name",
            LocationNameProblem::ControlCharacter => "it contains a control character",
        }
    }

    /// What to do about it.
    pub fn help(&self) -> &'static str {
        "use letters, digits, `-`, `_` and `.`, e.g. `my-location`"
    }
}

impl fmt::Display for InvalidLocationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.escape_debug();
        match self.problem {
            LocationNameProblem::Empty => f.write_str("the location name is empty"),
            LocationNameProblem::TooLong { bytes } => write!(
                f,
                "the location name is {bytes} bytes long, more than the limit of {MAX_LOCATION_NAME_BYTES}"
            ),
            LocationNameProblem::PathSeparator => write!(
                f,
                "the location name `{name}` contains a path separator; it is used in file names"
            ),
            LocationNameProblem::RelativeDirectory => write!(
                f,
                "the location name `{name}` is `.` or `..`; it is used in file names"
            ),
            LocationNameProblem::ControlCharacter => {
                write!(f, "the location name `{name}` contains a control character")
            }
        }
    }
}

impl std::error::Error for InvalidLocationName {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_names_must_be_safe_as_file_names() {
        for good in [
            "sales",
            "ops-core",
            "a.b",
            "a..b",
            "...",
            "Data_1",
            "with space",
            "é",
        ] {
            assert!(LocationName::new(good).is_ok(), "{good}");
        }
        let longest = "a".repeat(MAX_LOCATION_NAME_BYTES);
        assert!(LocationName::new(&longest).is_ok());
        let too_long = "a".repeat(MAX_LOCATION_NAME_BYTES + 1);
        for (bad, problem) in [
            ("", LocationNameProblem::Empty),
            ("a/b", LocationNameProblem::PathSeparator),
            ("a\\b", LocationNameProblem::PathSeparator),
            ("../../etc/passwd", LocationNameProblem::PathSeparator),
            ("..", LocationNameProblem::RelativeDirectory),
            (".", LocationNameProblem::RelativeDirectory),
            ("a\nb", LocationNameProblem::ControlCharacter),
            ("a\u{0}b", LocationNameProblem::ControlCharacter),
            ("a\u{1b}[2Jb", LocationNameProblem::ControlCharacter),
            (
                too_long.as_str(),
                LocationNameProblem::TooLong {
                    bytes: MAX_LOCATION_NAME_BYTES + 1,
                },
            ),
        ] {
            let error = LocationName::new(bad).unwrap_err();
            assert_eq!(error.problem(), problem, "{bad:?}");
            assert_eq!(error.name(), bad);
        }
    }

    #[test]
    fn messages_show_the_name_escaped_and_say_why() {
        let error = LocationName::new("a\tb").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the location name `a\\tb` contains a control character"
        );
        assert_eq!(error.reason(), "it contains a control character");
        let error = LocationName::new("../x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the location name `../x` contains a path separator; it is used in file names"
        );
        assert!(error.help().contains("my-location"));
    }
}
