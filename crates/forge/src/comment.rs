//! How our comment is told apart from every other comment of a pull request: it starts with a
//! hidden HTML marker ([`CommentMarker`]) and was written by the identity the token belongs to.
//! Both must hold: a person quoting our comment, or another bot copying its text, has the
//! marker somewhere but is not us; and the token's identity may also write other comments.

/// The first line of our comment: an HTML comment (not rendered by GitHub or GitLab) holding a
/// key, so that separate deployments commenting on the same pull request keep one comment each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentMarker(String);

/// The longest key kept; a marker is a line, not a payload.
const MAX_KEY_CHARS: usize = 100;

impl CommentMarker {
    /// A marker for `key` (for example a deployment name). Characters other than ASCII letters,
    /// digits, `.`, `_`, `/` and `-` become `_`, so that no key can close the HTML comment or
    /// add markup; an empty key becomes `default`.
    pub fn new(key: &str) -> Self {
        let mut safe: String = key
            .chars()
            .take(MAX_KEY_CHARS)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if safe.is_empty() {
            safe.push_str("default");
        }
        CommentMarker(format!("<!-- dagster-deploy:notify {safe} -->"))
    }

    /// The marker line, without a line break.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `body` starts with this marker as its whole first line.
    pub(crate) fn marks(&self, body: &str) -> bool {
        body.strip_prefix(self.0.as_str()).is_some_and(|rest| {
            rest.is_empty() || rest.starts_with('\n') || rest.starts_with("\r\n")
        })
    }

    /// The comment body to send: the marker line, then `body`.
    pub(crate) fn wrap(&self, body: &str) -> String {
        format!("{}\n{body}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_close_the_html_comment_or_add_markup() {
        assert_eq!(
            CommentMarker::new("pr-42--> <img src=x>").as_str(),
            "<!-- dagster-deploy:notify pr-42--___img_src_x_ -->"
        );
        assert_eq!(
            CommentMarker::new("").as_str(),
            "<!-- dagster-deploy:notify default -->"
        );
        assert_eq!(CommentMarker::new(&"a".repeat(500)).as_str().len(), 131);
    }

    #[test]
    fn only_a_body_whose_first_line_is_the_marker_is_marked() {
        let marker = CommentMarker::new("pr-1");
        assert!(marker.marks(&marker.wrap("report")));
        assert!(marker.marks(marker.as_str()));
        assert!(marker.marks(&format!("{}\r\nreport", marker.as_str())));
        for other in [
            format!("> {}\nquoted", marker.as_str()),
            format!(
                "{}-2 -->\nsimilar",
                &marker.as_str()[..marker.as_str().len() - 4]
            ),
            CommentMarker::new("pr-10").wrap("another deployment's"),
            format!("{} and more on the line", marker.as_str()),
            "Deployed to Dagster+ pr-1".to_owned(),
        ] {
            assert!(!marker.marks(&other), "{other}");
        }
    }
}
