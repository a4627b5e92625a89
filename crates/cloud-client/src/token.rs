//! The API token (a [`Secret`], the one redacting type of the workspace) and scrubbing of
//! server-provided text.
//!
//! The only way to read the secret is [`Secret::expose`], used when building the request
//! header. Everything the server sends back that may end up in an error goes through
//! [`scrub`] first, so a server that echoes the token cannot leak it into logs.

use dagster_deploy_types::Secret;

/// A Dagster+ API (user or agent) token: a [`Secret`], whose `Debug` never shows it and which
/// has no `Display`; surrounding whitespace is dropped when it is made.
pub type ApiToken = Secret;

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
    fn scrub_replaces_every_occurrence() {
        let token = ApiToken::new("s3cr3t-token");
        assert_eq!(
            scrub("a s3cr3t-token b s3cr3t-token", &token),
            "a **** b ****"
        );
        assert_eq!(scrub("nothing here", &token), "nothing here");
    }
}
