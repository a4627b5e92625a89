//! The conditions of CI files: GitHub's `${{ … }}` expressions and `if:`, and GitLab's `rules:
//! if:`. Only what the generated files use is understood: string literals, context values,
//! `==`, `!=`, `&&`, `||`, `!`, parentheses and argument-less functions such as `always()`.
//! Anything else panics, so a generated file that needs more cannot pass unnoticed.

/// A value an expression evaluates to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Str(String),
    Bool(bool),
    Null,
}

impl Val {
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Val::Str(text) => !text.is_empty(),
            Val::Bool(value) => *value,
            Val::Null => false,
        }
    }

    /// The value as text, as it is substituted into a string.
    pub(crate) fn text(&self) -> String {
        match self {
            Val::Str(text) => text.clone(),
            Val::Bool(value) => value.to_string(),
            Val::Null => String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A context path (`github.event_name`) or a GitLab variable (`$CI_COMMIT_BRANCH`).
    Operand(String),
    /// A function call without arguments, e.g. `always`.
    Call(String),
    Str(String),
    Op(&'static str),
    Open,
    Close,
}

fn tokenize(expression: &str) -> Vec<Token> {
    let chars: Vec<char> = expression.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            ' ' | '\t' | '\n' => i += 1,
            '\'' | '"' => {
                let quote = c;
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        // GitHub doubles a quote inside a single-quoted string.
                        Some(&q) if q == quote && chars.get(i + 1) == Some(&quote) => {
                            text.push(quote);
                            i += 2;
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            text.push(other);
                            i += 1;
                        }
                        None => panic!("unterminated string in {expression:?}"),
                    }
                }
                tokens.push(Token::Str(text));
            }
            '=' if next == Some('=') => {
                tokens.push(Token::Op("=="));
                i += 2;
            }
            '!' if next == Some('=') => {
                tokens.push(Token::Op("!="));
                i += 2;
            }
            '&' if next == Some('&') => {
                tokens.push(Token::Op("&&"));
                i += 2;
            }
            '|' if next == Some('|') => {
                tokens.push(Token::Op("||"));
                i += 2;
            }
            '!' => {
                tokens.push(Token::Op("!"));
                i += 1;
            }
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            c if c.is_ascii_alphanumeric() || c == '$' || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "$_.-".contains(chars[i]))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if chars.get(i) == Some(&'(') && chars.get(i + 1) == Some(&')') {
                    tokens.push(Token::Call(word));
                    i += 2;
                } else {
                    tokens.push(Token::Operand(word));
                }
            }
            other => {
                panic!("the test's CI emulator does not understand {other:?} in {expression:?}")
            }
        }
    }
    tokens
}

/// Evaluates `expression`, asking `resolve` for operands and functions (`always()` arrives as
/// `always()`).
pub(crate) fn evaluate(expression: &str, resolve: &dyn Fn(&str) -> Val) -> Val {
    let tokens = tokenize(expression);
    let mut parser = Parser {
        tokens,
        position: 0,
        resolve,
        expression,
    };
    let value = parser.or();
    assert!(
        parser.position == parser.tokens.len(),
        "trailing tokens in {expression:?}"
    );
    value
}

struct Parser<'a> {
    tokens: Vec<Token>,
    position: usize,
    resolve: &'a dyn Fn(&str) -> Val,
    expression: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn or(&mut self) -> Val {
        let mut left = self.and();
        while self.peek() == Some(&Token::Op("||")) {
            self.position += 1;
            let right = self.and();
            left = if left.truthy() { left } else { right };
        }
        left
    }

    fn and(&mut self) -> Val {
        let mut left = self.comparison();
        while self.peek() == Some(&Token::Op("&&")) {
            self.position += 1;
            let right = self.comparison();
            left = if left.truthy() { right } else { left };
        }
        left
    }

    fn comparison(&mut self) -> Val {
        let left = self.unary();
        match self.peek() {
            Some(Token::Op("==")) => {
                self.position += 1;
                let right = self.unary();
                Val::Bool(left.text() == right.text())
            }
            Some(Token::Op("!=")) => {
                self.position += 1;
                let right = self.unary();
                Val::Bool(left.text() != right.text())
            }
            _ => left,
        }
    }

    fn unary(&mut self) -> Val {
        if self.peek() == Some(&Token::Op("!")) {
            self.position += 1;
            return Val::Bool(!self.unary().truthy());
        }
        self.primary()
    }

    fn primary(&mut self) -> Val {
        let token = self
            .tokens
            .get(self.position)
            .cloned()
            .unwrap_or_else(|| panic!("incomplete expression {:?}", self.expression));
        self.position += 1;
        match token {
            Token::Str(text) => Val::Str(text),
            Token::Operand(word) => (self.resolve)(&word),
            Token::Call(name) => (self.resolve)(&format!("{name}()")),
            Token::Open => {
                let value = self.or();
                assert_eq!(
                    self.peek(),
                    Some(&Token::Close),
                    "missing ) in {:?}",
                    self.expression
                );
                self.position += 1;
                value
            }
            other => panic!("unexpected {other:?} in {:?}", self.expression),
        }
    }
}

/// Replaces every `${{ expression }}` in `text` with its value.
pub(crate) fn substitute(text: &str, resolve: &dyn Fn(&str) -> Val) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let end = after
            .find("}}")
            .unwrap_or_else(|| panic!("unterminated ${{{{ in {text:?}"));
        out.push_str(&evaluate(after[..end].trim(), resolve).text());
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(path: &str) -> Val {
        match path {
            "github.event_name" => Val::Str("pull_request".into()),
            "github.event.action" => Val::Str("closed".into()),
            "$CI_COMMIT_BRANCH" => Val::Str("main".into()),
            "$CI_DEFAULT_BRANCH" => Val::Str("main".into()),
            "$CI_MERGE_REQUEST_IID" => Val::Null,
            "always()" => Val::Bool(true),
            other => panic!("unknown {other}"),
        }
    }

    #[test]
    fn conditions_of_both_providers_evaluate() {
        let check = |expression: &str, expected: bool| {
            assert_eq!(
                evaluate(expression, &context).truthy(),
                expected,
                "{expression}"
            );
        };
        check(
            "github.event_name == 'pull_request' && github.event.action == 'closed'",
            true,
        );
        check(
            "github.event_name != 'pull_request' || github.event.action != 'closed'",
            false,
        );
        check("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", true);
        check("$CI_MERGE_REQUEST_IID", false);
        check("!(always())", false);
        check("'it''s' == 'it''s'", true);
        assert_eq!(
            substitute("a-${{ github.event_name }}-b", &context),
            "a-pull_request-b"
        );
    }
}
