//! A deliberately minimal GraphQL reader: it finds the operation to run and the root fields of
//! its selection set (name, alias, arguments with variables substituted). Nested selections are
//! skipped, not interpreted: the emulator answers every root field with a fixed superset of the
//! fields clients ask for, plus `__typename` on every union. It does not validate documents
//! against a schema.

use serde_json::{Map, Value};

/// Whether the operation reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OperationKind {
    Query,
    Mutation,
    Subscription,
}

/// One field of the operation's top-level selection set.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RootField {
    pub(crate) name: String,
    /// The key of the field in the response: the alias if there is one, else the name.
    pub(crate) response_key: String,
    /// Arguments with `$variables` resolved (missing variables become `null`).
    pub(crate) arguments: Map<String, Value>,
}

/// The selected operation of a document.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Operation {
    pub(crate) kind: OperationKind,
    pub(crate) name: Option<String>,
    pub(crate) root_fields: Vec<RootField>,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Name(String),
    Variable(String),
    Str(String),
    Number(String),
    Punct(char),
    Spread,
}

fn tokenize(document: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = document.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' | ',' | '\u{feff}' => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '{' | '}' | '(' | ')' | ':' | '!' | '[' | ']' | '=' | '@' | '|' | '&' => {
                tokens.push(Token::Punct(c));
                i += 1;
            }
            '.' => {
                if chars.get(i..i + 3) == Some(&['.', '.', '.']) {
                    tokens.push(Token::Spread);
                    i += 3;
                } else {
                    return Err(format!("Syntax Error: unexpected '.' at offset {i}"));
                }
            }
            '$' => {
                let (name, next) = read_name(&chars, i + 1);
                if name.is_empty() {
                    return Err(format!("Syntax Error: '$' without a name at offset {i}"));
                }
                tokens.push(Token::Variable(name));
                i = next;
            }
            '"' => {
                let (text, next) = read_string(&chars, i)?;
                tokens.push(Token::Str(text));
                i = next;
            }
            c if c == '-' || c.is_ascii_digit() => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '+' | '-'))
                {
                    i += 1;
                }
                tokens.push(Token::Number(chars[start..i].iter().collect()));
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let (name, next) = read_name(&chars, i);
                tokens.push(Token::Name(name));
                i = next;
            }
            other => {
                return Err(format!(
                    "Syntax Error: unexpected character {other:?} at offset {i}"
                ));
            }
        }
    }
    Ok(tokens)
}

fn read_name(chars: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < chars.len() && (chars[i] == '_' || chars[i].is_ascii_alphanumeric()) {
        i += 1;
    }
    (chars[start..i].iter().collect(), i)
}

fn read_string(chars: &[char], start: usize) -> Result<(String, usize), String> {
    if chars.get(start..start + 3) == Some(&['"', '"', '"']) {
        let mut i = start + 3;
        let mut text = String::new();
        while i < chars.len() {
            if chars.get(i..i + 3) == Some(&['"', '"', '"']) {
                return Ok((text, i + 3));
            }
            text.push(chars[i]);
            i += 1;
        }
        return Err(format!(
            "Syntax Error: unterminated block string at offset {start}"
        ));
    }
    let mut i = start + 1;
    let mut text = String::new();
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((text, i + 1)),
            '\\' => {
                let escaped = chars.get(i + 1).copied().unwrap_or('\\');
                match escaped {
                    'n' => text.push('\n'),
                    't' => text.push('\t'),
                    'r' => text.push('\r'),
                    'b' => text.push('\u{8}'),
                    'f' => text.push('\u{c}'),
                    'u' => {
                        let hex: String = chars.get(i + 2..i + 6).unwrap_or(&[]).iter().collect();
                        let code = u32::from_str_radix(&hex, 16).map_err(|_| {
                            format!("Syntax Error: bad unicode escape at offset {i}")
                        })?;
                        text.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        i += 4;
                    }
                    other => text.push(other),
                }
                i += 2;
            }
            '\n' => {
                return Err(format!(
                    "Syntax Error: unterminated string at offset {start}"
                ));
            }
            other => {
                text.push(other);
                i += 1;
            }
        }
    }
    Err(format!(
        "Syntax Error: unterminated string at offset {start}"
    ))
}

struct Parser<'a> {
    tokens: Vec<Token>,
    position: usize,
    variables: &'a Map<String, Value>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Result<Token, String> {
        let token = self
            .tokens
            .get(self.position)
            .cloned()
            .ok_or_else(|| "Syntax Error: unexpected end of document".to_owned())?;
        self.position += 1;
        Ok(token)
    }

    fn eat(&mut self, punct: char) -> bool {
        if self.peek() == Some(&Token::Punct(punct)) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punct: char) -> Result<(), String> {
        match self.next()? {
            Token::Punct(found) if found == punct => Ok(()),
            other => Err(format!("Syntax Error: expected '{punct}', found {other:?}")),
        }
    }

    fn name(&mut self) -> Result<String, String> {
        match self.next()? {
            Token::Name(name) => Ok(name),
            other => Err(format!("Syntax Error: expected a name, found {other:?}")),
        }
    }

    /// Skips a balanced group that starts at the current `open` token.
    fn skip_group(&mut self, open: char, close: char) -> Result<(), String> {
        self.expect(open)?;
        let mut depth = 1;
        while depth > 0 {
            match self.next()? {
                Token::Punct(c) if c == open => depth += 1,
                Token::Punct(c) if c == close => depth -= 1,
                _ => {}
            }
        }
        Ok(())
    }

    fn skip_directives(&mut self) -> Result<(), String> {
        while self.eat('@') {
            self.name()?;
            if self.peek() == Some(&Token::Punct('(')) {
                self.skip_group('(', ')')?;
            }
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Value, String> {
        Ok(match self.next()? {
            Token::Variable(name) => self.variables.get(&name).cloned().unwrap_or(Value::Null),
            Token::Str(text) => Value::String(text),
            Token::Number(text) => serde_json::from_str(&text)
                .map_err(|_| format!("Syntax Error: bad number {text:?}"))?,
            Token::Name(name) => match name.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => Value::String(name),
            },
            Token::Punct('[') => {
                let mut items = Vec::new();
                while !self.eat(']') {
                    items.push(self.value()?);
                }
                Value::Array(items)
            }
            Token::Punct('{') => {
                let mut object = Map::new();
                while !self.eat('}') {
                    let key = self.name()?;
                    self.expect(':')?;
                    object.insert(key, self.value()?);
                }
                Value::Object(object)
            }
            other => return Err(format!("Syntax Error: unexpected {other:?} in a value")),
        })
    }

    fn arguments(&mut self) -> Result<Map<String, Value>, String> {
        let mut arguments = Map::new();
        if self.eat('(') {
            while !self.eat(')') {
                let name = self.name()?;
                self.expect(':')?;
                arguments.insert(name, self.value()?);
            }
        }
        Ok(arguments)
    }

    fn root_fields(&mut self) -> Result<Vec<RootField>, String> {
        self.expect('{')?;
        let mut fields = Vec::new();
        while !self.eat('}') {
            if self.peek() == Some(&Token::Spread) {
                // Fragments on the root type are not used by any client we emulate; skip them.
                self.next()?;
                if self.peek() == Some(&Token::Name("on".to_owned())) {
                    self.next()?;
                    self.name()?;
                } else if matches!(self.peek(), Some(Token::Name(_))) {
                    self.name()?;
                }
                self.skip_directives()?;
                if self.peek() == Some(&Token::Punct('{')) {
                    self.skip_group('{', '}')?;
                }
                continue;
            }
            let first = self.name()?;
            let (alias, name) = if self.eat(':') {
                (Some(first), self.name()?)
            } else {
                (None, first)
            };
            let arguments = self.arguments()?;
            self.skip_directives()?;
            if self.peek() == Some(&Token::Punct('{')) {
                self.skip_group('{', '}')?;
            }
            fields.push(RootField {
                response_key: alias.unwrap_or_else(|| name.clone()),
                name,
                arguments,
            });
        }
        Ok(fields)
    }
}

/// Parses `document` and returns the operation named `operation_name` (or the first one).
pub(crate) fn parse_operation(
    document: &str,
    operation_name: Option<&str>,
    variables: &Map<String, Value>,
) -> Result<Operation, String> {
    let mut parser = Parser {
        tokens: tokenize(document)?,
        position: 0,
        variables,
    };
    let mut operations = Vec::new();
    while let Some(token) = parser.peek().cloned() {
        match token {
            Token::Punct('{') => operations.push(Operation {
                kind: OperationKind::Query,
                name: None,
                root_fields: parser.root_fields()?,
            }),
            Token::Name(keyword) if keyword == "fragment" => {
                while parser.peek() != Some(&Token::Punct('{')) {
                    parser.next()?;
                }
                parser.skip_group('{', '}')?;
            }
            Token::Name(keyword) => {
                let kind = match keyword.as_str() {
                    "query" => OperationKind::Query,
                    "mutation" => OperationKind::Mutation,
                    "subscription" => OperationKind::Subscription,
                    other => {
                        return Err(format!(
                            "Syntax Error: unexpected {other:?}, expected query, mutation or fragment"
                        ));
                    }
                };
                parser.next()?;
                let name = match parser.peek() {
                    Some(Token::Name(_)) => Some(parser.name()?),
                    _ => None,
                };
                if parser.peek() == Some(&Token::Punct('(')) {
                    parser.skip_group('(', ')')?;
                }
                parser.skip_directives()?;
                operations.push(Operation {
                    kind,
                    name,
                    root_fields: parser.root_fields()?,
                });
            }
            other => return Err(format!("Syntax Error: unexpected {other:?}")),
        }
    }
    match operation_name {
        Some(wanted) => operations
            .into_iter()
            .find(|operation| operation.name.as_deref() == Some(wanted))
            .ok_or_else(|| format!("Unknown operation named \"{wanted}\".")),
        None => operations
            .into_iter()
            .next()
            .ok_or_else(|| "Syntax Error: the document has no operation".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn root_names(document: &str) -> Vec<String> {
        parse_operation(document, None, &Map::new())
            .unwrap()
            .root_fields
            .into_iter()
            .map(|field| field.name)
            .collect()
    }

    #[test]
    fn finds_the_root_field_of_a_mutation_with_variables_and_fragments() {
        let document = r#"
mutation CliDeployLocations($document: GenericScalar!) {
    deployLocations(document: $document) {
        __typename
        ... on DeployLocationsSuccess { locations { locationName } }
        ... on PythonError { message stack }
    }
}"#;
        let variables = json!({"document": {"locations": []}});
        let operation = parse_operation(document, None, variables.as_object().unwrap()).unwrap();
        assert_eq!(operation.kind, OperationKind::Mutation);
        assert_eq!(operation.name.as_deref(), Some("CliDeployLocations"));
        assert_eq!(operation.root_fields.len(), 1);
        assert_eq!(operation.root_fields[0].name, "deployLocations");
        assert_eq!(
            Value::Object(operation.root_fields[0].arguments.clone()),
            json!({"document": {"locations": []}})
        );
    }

    #[test]
    fn finds_every_root_field_and_aliases() {
        assert_eq!(
            root_names(
                "query DeploymentInfoQuery { currentDeployment { agentType } agents { status metadata { key value } } }"
            ),
            ["currentDeployment", "agents"]
        );
        let operation = parse_operation(
            "{ prod: deploymentByName(name: \"prod\") { deploymentId } }",
            None,
            &Map::new(),
        )
        .unwrap();
        assert_eq!(operation.root_fields[0].response_key, "prod");
        assert_eq!(operation.root_fields[0].arguments["name"], json!("prod"));
    }

    #[test]
    fn reads_literal_arguments_comments_and_trailing_commas() {
        let document = "# a comment\nmutation M { markCliEvent(eventType: DEPLOY, durationSeconds: 1.5, success: true, tags: [\"a\", \"b\\\"c\"], message: null,) }";
        let operation = parse_operation(document, None, &Map::new()).unwrap();
        assert_eq!(
            Value::Object(operation.root_fields[0].arguments.clone()),
            json!({"eventType": "DEPLOY", "durationSeconds": 1.5, "success": true, "tags": ["a", "b\"c"], "message": null})
        );
    }

    #[test]
    fn picks_the_operation_by_name() {
        let document = "query A { agents { status } } query B { workspaceOrError { __typename } }";
        let operation = parse_operation(document, Some("B"), &Map::new()).unwrap();
        assert_eq!(operation.root_fields[0].name, "workspaceOrError");
        let error = parse_operation(document, Some("C"), &Map::new()).unwrap_err();
        assert!(error.contains("\"C\""), "{error}");
    }

    #[test]
    fn rejects_broken_documents_with_a_syntax_error() {
        for document in [
            "query { agents { status }",
            "mutation M(",
            "%",
            "",
            "\"open",
        ] {
            let error = parse_operation(document, None, &Map::new()).unwrap_err();
            assert!(
                error.starts_with("Syntax Error"),
                "{document:?} gave {error}"
            );
        }
    }
}
