//! The forge API token: a [`Secret`], the one redacting type of the workspace (its `Debug`
//! never shows it and it has no `Display`), and [`scrub`], which removes it from any text a
//! server sends back before that text reaches an error.

use dagster_deploy_types::Secret;

/// A GitHub or GitLab API token (`GITHUB_TOKEN`, a personal or project access token); surrounding
/// whitespace (a trailing newline from a file) is dropped when it is made.
pub type ForgeToken = Secret;

/// `text` with every occurrence of the token replaced by `<redacted>`.
pub(crate) fn scrub(text: &str, token: &ForgeToken) -> String {
    let secret = token.expose();
    // A very short "token" would turn every error into markers; such values are not real
    // tokens, and the server refuses them anyway.
    if secret.len() < 4 {
        text.to_owned()
    } else {
        text.replace(secret, "<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_formats_itself_and_is_scrubbed_from_text() {
        let token = ForgeToken::new(" ghs_secret\n");
        assert_eq!(token.expose(), "ghs_secret");
        assert!(!format!("{token:?}").contains("ghs_secret"));
        assert_eq!(
            scrub("bad credentials: ghs_secret", &token),
            "bad credentials: <redacted>"
        );
    }
}
