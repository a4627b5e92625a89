//! The API token type, which never shows its value, and scrubbing of server-provided text.
//!
//! The only way to read the secret is [`ApiToken::expose`], used when building the request
//! header. Everything the server sends back that may end up in an error goes through
//! [`scrub`] first, so a server that echoes the token cannot leak it into logs.

use std::fmt;

/// A Dagster+ API (user or agent) token. Debug and Display print `ApiToken(****)`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// Wraps a token value, without surrounding ASCII whitespace (e.g. the trailing newline of
    /// `$(cat token-file)`).
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        let trimmed = value.trim_ascii();
        if trimmed.len() == value.len() {
            ApiToken(value)
        } else {
            ApiToken(trimmed.to_owned())
        }
    }

    /// Returns the secret value; only call this to hand the token to its destination.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ApiToken(****)")
    }
}

impl fmt::Display for ApiToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ApiToken(****)")
    }
}

/// Replaces every occurrence of the token in `text` with `****`.
pub(crate) fn scrub(text: &str, token: &ApiToken) -> String {
    let secret = token.expose();
    // A very short "token" would turn every error into asterisks; such values are not real
    // tokens, and they are rejected by the server anyway.
    if secret.len() < 4 {
        return text.to_owned();
    }
    text.replace(secret, "****")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_token() {
        let token = ApiToken::new("user:super-secret-value");
        assert_eq!(format!("{token:?}"), "ApiToken(****)");
        assert_eq!(format!("{token}"), "ApiToken(****)");
        assert_eq!(format!("{:?}", Some(&token)), "Some(ApiToken(****))");
        assert_eq!(token.expose(), "user:super-secret-value");
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(ApiToken::new("user:abc\n").expose(), "user:abc");
        assert_eq!(ApiToken::new(" \t user:abc\r\n").expose(), "user:abc");
        assert_eq!(ApiToken::new("user: abc").expose(), "user: abc");
        assert_eq!(ApiToken::new("\n").expose(), "");
    }

    #[test]
    fn scrub_replaces_every_occurrence() {
        let token = ApiToken::new("s3cr3t-token");
        assert_eq!(
            scrub("a s3cr3t-token b s3cr3t-token", &token),
            "a **** b ****"
        );
        assert_eq!(scrub("nothing here", &token), "nothing here");
    }
}
