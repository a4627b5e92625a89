//! [`Secret`]: the one type that holds an API token or a registry password. Its `Debug` output
//! is redacted and it has no `Display`, so it cannot reach a log line, an error message or a
//! panic by being formatted; the value is read only through [`Secret::expose`], by the code that
//! puts it on the wire.

use std::fmt;

/// A token or password; `Debug` prints `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value, without surrounding ASCII whitespace: secrets arrive from
    /// environment variables, files and pastes (`$(cat token-file)` ends with a line break),
    /// and no token or password we handle has meaningful whitespace at its ends.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        let trimmed = value.trim_ascii();
        if trimmed.len() == value.len() {
            Secret(value)
        } else {
            Secret(trimmed.to_owned())
        }
    }

    /// The secret value; call only to put it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("user:super-secret-value");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(***))");
        assert_eq!(secret.expose(), "user:super-secret-value");
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(Secret::new("user:abc\n").expose(), "user:abc");
        assert_eq!(Secret::new(" \t user:abc\r\n").expose(), "user:abc");
        assert_eq!(Secret::new("correct horse").expose(), "correct horse");
        assert!(Secret::new("\n").is_empty());
        assert_eq!(Secret::from("x ").expose(), "x");
    }
}
