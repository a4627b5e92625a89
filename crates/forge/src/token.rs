//! The forge API token. It is a secret: `Debug` and `Display` never show it, and
//! [`scrub`] removes it from any text a server sends back before that text reaches an error.

use std::fmt;

/// A GitHub or GitLab API token (`GITHUB_TOKEN`, a personal or project access token).
#[derive(Clone)]
pub struct ForgeToken(String);

impl ForgeToken {
    /// Wraps a token; surrounding whitespace (a trailing newline from a file) is dropped.
    pub fn new(token: impl Into<String>) -> Self {
        ForgeToken(token.into().trim().to_owned())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ForgeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForgeToken(<redacted>)")
    }
}

impl fmt::Display for ForgeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `text` with every occurrence of the token replaced by `<redacted>`.
pub(crate) fn scrub(text: &str, token: &ForgeToken) -> String {
    if token.0.is_empty() {
        text.to_owned()
    } else {
        text.replace(&token.0, "<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_formats_itself_and_is_scrubbed_from_text() {
        let token = ForgeToken::new(" ghs_secret\n");
        assert_eq!(token.expose(), "ghs_secret");
        assert!(!format!("{token:?} {token}").contains("ghs_secret"));
        assert_eq!(
            scrub("bad credentials: ghs_secret", &token),
            "bad credentials: <redacted>"
        );
    }
}
