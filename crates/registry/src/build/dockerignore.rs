//! `.dockerignore` in Docker's syntax: which paths of the build context the code layer leaves out.
//!
//! Patterns are relative to the context root, use Go `filepath.Match` globs (`*`, `?`, `[...]`,
//! `\` escapes) plus `**` for any number of path segments, and a leading `/` is dropped. A line
//! starting with `!` is an exception. The last pattern that matches a path (or one of its parent
//! directories) decides. `#` starts a comment line; blank lines are ignored. Independently of the
//! file, `.git` is always left out. Walking the tree lives in `layer.rs`, not here.

use std::path::Path;

use crate::error::{Error, Result};

/// The name that is always excluded, whatever `.dockerignore` says.
const ALWAYS_EXCLUDED_NAME: &str = ".git";

/// The parsed rules of one `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub(crate) struct IgnoreRules {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    exception: bool,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// One literal character.
    Literal(char),
    /// `?`: any one character except `/`.
    AnyChar,
    /// `*`: any run of characters without `/`.
    AnyRun,
    /// `**/` (or `**` inside a pattern): any number of whole segments, including none.
    AnySegments,
    /// `**` at the end: anything at all.
    AnyRest,
    /// `[...]`: one character from a set (never `/`).
    Class {
        negated: bool,
        items: Vec<ClassItem>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum ClassItem {
    Char(char),
    Range(char, char),
}

impl IgnoreRules {
    /// Reads `<context>/.dockerignore`; a missing file means no rules.
    pub(crate) fn load(context_dir: &Path) -> Result<Self> {
        let path = context_dir.join(".dockerignore");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|(line, message)| Error::DockerIgnore {
                path: path.clone(),
                line,
                message,
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(Error::ReadContext { path, source }),
        }
    }

    /// Parses the text of a `.dockerignore` file; an error carries the 1-based line and a message.
    pub(crate) fn parse(text: &str) -> std::result::Result<Self, (usize, String)> {
        let mut patterns = Vec::new();
        for (index, raw_line) in text.lines().enumerate() {
            let line = if index == 0 {
                raw_line.trim_start_matches('\u{feff}')
            } else {
                raw_line
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean_path(body);
            let tokens = compile(&cleaned).map_err(|message| (index + 1, message))?;
            patterns.push(Pattern { exception, tokens });
        }
        Ok(Self { patterns })
    }

    /// Whether the file or directory at `relative` (slash-separated, relative to the context
    /// root, no leading `./`) is left out of the layer.
    pub(crate) fn is_excluded(&self, relative: &str) -> bool {
        if relative
            .split('/')
            .any(|segment| segment == ALWAYS_EXCLUDED_NAME)
        {
            return true;
        }
        let parents: Vec<&str> = relative
            .match_indices('/')
            .map(|(position, _)| &relative[..position])
            .collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // Like Docker: an exclusion only matters while the path is included, and an
            // exception only while it is excluded.
            if pattern.exception != excluded {
                continue;
            }
            let matched = matches(&pattern.tokens, relative)
                || parents
                    .iter()
                    .any(|parent| matches(&pattern.tokens, parent));
            if matched {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether some exception could re-include a path inside the excluded directory
    /// `relative`, so the walk must still descend into it.
    pub(crate) fn may_include_inside(&self, relative: &str) -> bool {
        if relative
            .split('/')
            .any(|segment| segment == ALWAYS_EXCLUDED_NAME)
        {
            return false;
        }
        let prefix = format!("{relative}/");
        self.patterns
            .iter()
            .any(|pattern| pattern.exception && matches_prefix(&pattern.tokens, &prefix))
    }
}

/// Go's `filepath.Clean` for slash-separated paths, then a leading `/` removed (Docker treats
/// patterns as relative to the context root).
fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if joined.is_empty() {
        if rooted {
            "/".to_owned()
        } else {
            ".".to_owned()
        }
    } else {
        joined
    }
}

fn compile(pattern: &str) -> std::result::Result<Vec<Token>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let current = chars[index];
        index += 1;
        match current {
            '*' if chars.get(index) == Some(&'*') => {
                index += 1;
                if chars.get(index) == Some(&'/') {
                    index += 1;
                }
                if index == chars.len() {
                    tokens.push(Token::AnyRest);
                } else {
                    tokens.push(Token::AnySegments);
                }
            }
            '*' => tokens.push(Token::AnyRun),
            '?' => tokens.push(Token::AnyChar),
            '\\' => match chars.get(index) {
                Some(escaped) => {
                    tokens.push(Token::Literal(*escaped));
                    index += 1;
                }
                None => return Err(format!("pattern `{pattern}` ends with a lone `\\`")),
            },
            '[' => {
                let (class, next) = compile_class(&chars, index)
                    .ok_or_else(|| format!("pattern `{pattern}` has an unclosed `[`"))?;
                tokens.push(class);
                index = next;
            }
            other => tokens.push(Token::Literal(other)),
        }
    }
    Ok(tokens)
}

/// Parses a character class whose `[` is just before `start`; returns the token and the index
/// after the closing `]`.
fn compile_class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut index = start;
    // Like Go's `filepath.Match` (and Docker's regexp translation) only `^` negates.
    let negated = chars.get(index) == Some(&'^');
    if negated {
        index += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let mut current = *chars.get(index)?;
        index += 1;
        if current == ']' && !first {
            return Some((Token::Class { negated, items }, index));
        }
        first = false;
        if current == '\\' {
            current = *chars.get(index)?;
            index += 1;
        }
        if chars.get(index) == Some(&'-') && chars.get(index + 1).is_some_and(|c| *c != ']') {
            let mut end = chars[index + 1];
            index += 2;
            if end == '\\' {
                end = *chars.get(index)?;
                index += 1;
            }
            items.push(ClassItem::Range(current, end));
        } else {
            items.push(ClassItem::Char(current));
        }
    }
}

fn class_matches(negated: bool, items: &[ClassItem], character: char) -> bool {
    if character == '/' {
        return false;
    }
    let inside = items.iter().any(|item| match item {
        ClassItem::Char(expected) => *expected == character,
        ClassItem::Range(low, high) => (*low..=*high).contains(&character),
    });
    inside != negated
}

/// Whether the whole of `text` matches the pattern.
fn matches(tokens: &[Token], text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    match_from(tokens, &chars, false)
}

/// Whether some path starting with `prefix` could match the pattern.
fn matches_prefix(tokens: &[Token], prefix: &str) -> bool {
    let chars: Vec<char> = prefix.chars().collect();
    match_from(tokens, &chars, true)
}

/// Backtracking matcher. With `prefix_only`, running out of text before the pattern ends counts
/// as a match, because more text could follow.
fn match_from(tokens: &[Token], text: &[char], prefix_only: bool) -> bool {
    let Some((token, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    if text.is_empty() && prefix_only {
        return true;
    }
    match token {
        Token::Literal(expected) => {
            text.first() == Some(expected) && match_from(rest, &text[1..], prefix_only)
        }
        Token::AnyChar => {
            text.first().is_some_and(|c| *c != '/') && match_from(rest, &text[1..], prefix_only)
        }
        Token::Class { negated, items } => {
            text.first()
                .is_some_and(|c| class_matches(*negated, items, *c))
                && match_from(rest, &text[1..], prefix_only)
        }
        Token::AnyRun => {
            let run = text.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|taken| match_from(rest, &text[taken..], prefix_only))
        }
        Token::AnyRest => true,
        Token::AnySegments => {
            // `(.*/)?`: nothing, or anything up to and including some `/`.
            match_from(rest, text, prefix_only)
                || text
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == '/')
                    .any(|(position, _)| match_from(rest, &text[position + 1..], prefix_only))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text).expect("valid .dockerignore")
    }

    /// Checks each `(path, excluded)` pair against the rules in `text`.
    fn check(text: &str, cases: &[(&str, bool)]) {
        let rules = rules(text);
        for (path, expected) in cases {
            assert_eq!(
                rules.is_excluded(path),
                *expected,
                "path `{path}` with rules:\n{text}"
            );
        }
    }

    #[test]
    fn no_rules_exclude_only_git() {
        check(
            "",
            &[
                ("a.py", false),
                (".git", true),
                (".git/config", true),
                ("sub/.git", true),
                (".gitignore", false),
            ],
        );
    }

    #[test]
    fn git_stays_excluded_even_with_an_exception() {
        check("!.git\n!.git/**", &[(".git/HEAD", true), (".git", true)]);
        assert!(!rules("*\n!.git").may_include_inside(".git"));
    }

    #[test]
    fn star_does_not_cross_directories() {
        check(
            "*.pyc",
            &[("a.pyc", true), ("dir/a.pyc", false), ("a.py", false)],
        );
    }

    #[test]
    fn double_star_matches_any_depth() {
        check(
            "**/*.pyc\n**/__pycache__",
            &[
                ("a.pyc", true),
                ("dir/sub/a.pyc", true),
                ("pkg/__pycache__/x.cpython.pyc", true),
                ("pkg/__pycache__", true),
                ("pkg/mod.py", false),
            ],
        );
        check(
            "docs/**",
            &[("docs/a/b.md", true), ("docs", false), ("doc", false)],
        );
        check(
            "a/**/b",
            &[("a/b", true), ("a/x/y/b", true), ("a/x/c", false)],
        );
    }

    #[test]
    fn excluded_directory_excludes_everything_below() {
        check(
            "node_modules\n/build/",
            &[
                ("node_modules", true),
                ("node_modules/x/y.js", true),
                ("build/out.bin", true),
                ("src/node_modules", false),
            ],
        );
    }

    #[test]
    fn exceptions_reinclude_and_last_match_wins() {
        let text = "*.md\n!README.md\n# comment\n\n  docs  \n!docs/keep.txt\n";
        check(
            text,
            &[
                ("CHANGES.md", true),
                ("README.md", false),
                ("docs", true),
                ("docs/drop.txt", true),
                ("docs/keep.txt", false),
            ],
        );
        let parsed = rules(text);
        assert!(parsed.may_include_inside("docs"));
        assert!(!parsed.may_include_inside("other"));
        check("!a.txt\n*.txt", &[("a.txt", true)]);
    }

    #[test]
    fn exclude_all_then_reinclude_a_subtree() {
        let text = "*\n!src\n!pyproject.toml";
        check(
            text,
            &[
                ("README.md", true),
                ("pyproject.toml", false),
                ("src", false),
                ("src/pkg/mod.py", false),
                ("tests/test_x.py", true),
            ],
        );
        let parsed = rules(text);
        assert!(!parsed.may_include_inside("tests"));
    }

    #[test]
    fn question_mark_classes_and_escapes() {
        check(
            "file?.txt\n[a-c]*.log\n[^x]y\nlit\\*eral",
            &[
                ("file1.txt", true),
                ("file/.txt", false),
                ("file12.txt", false),
                ("b.log", true),
                ("d.log", false),
                ("zy", true),
                ("xy", false),
                ("lit*eral", true),
                ("litteral", false),
            ],
        );
    }

    #[test]
    fn patterns_are_cleaned_like_go_filepath_clean() {
        check(
            "./a/../b/\n/c//d",
            &[("b", true), ("b/x", true), ("c/d", true), ("a", false)],
        );
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("../x"), "../x");
    }

    #[test]
    fn malformed_pattern_reports_its_line() {
        let error = IgnoreRules::parse("ok\n[abc\n").expect_err("unclosed class");
        assert_eq!(error.0, 2);
        assert!(error.1.contains("unclosed"), "{}", error.1);
    }
}
