//! A linear pre-scan that bounds how deeply a YAML document nests, before the parser sees it.
//!
//! libyaml (through serde_yaml_ng) keeps one "possible simple key" per open flow collection and
//! checks all of them for every token, and serde_yaml_ng's nesting limit only applies after the
//! whole document has been scanned: 200 KB of `[` under a mapping key took 90 s. Refusing
//! documents that nest deeper than the limit before parsing makes the parse time linear in the
//! size (at most [`MAX_DEPTH`] checks per token).
//!
//! The scan follows YAML's lexical structure closely enough to count only real collection
//! starts: brackets inside quoted scalars, comments, block scalars (`|`, `>`) and plain scalars
//! of block context do not count; block collections count by their indentation, including the
//! compact `- - x` and `- key: x` forms. It errs towards counting less, never more, so a
//! document it lets through may still reach serde_yaml_ng's own limit (the same number), which
//! reports it.

/// Deepest nesting accepted: serde_yaml_ng's own recursion limit.
pub(crate) const MAX_DEPTH: usize = 128;

/// Where the document first nests deeper than [`MAX_DEPTH`]: 1-based line and column (in
/// characters) of the collection that is one level too deep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooDeep {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    Single,
    Double,
}

struct Scanner {
    /// Columns of the open block collections, innermost last.
    blocks: Vec<usize>,
    /// Open flow collections.
    flow: usize,
    /// A quoted scalar that continues on the next line.
    quote: Option<Quote>,
    /// Inside a block scalar: lines indented more than this belong to it.
    block_scalar: Option<usize>,
}

/// Checks that `text` nests at most [`MAX_DEPTH`] collections deep.
pub(crate) fn check(text: &str) -> Result<(), TooDeep> {
    let mut scanner = Scanner {
        blocks: Vec::new(),
        flow: 0,
        quote: None,
        block_scalar: None,
    };
    for (index, line) in text.split('\n').enumerate() {
        let chars: Vec<char> = line.trim_end_matches('\r').chars().collect();
        scanner.line(&chars).map_err(|column| TooDeep {
            line: index + 1,
            column: column + 1,
        })?;
    }
    Ok(())
}

impl Scanner {
    fn depth(&self) -> usize {
        self.blocks.len() + self.flow
    }

    /// Scans one line; `Err(column)` (0-based) where it nests too deep.
    fn line(&mut self, chars: &[char]) -> Result<(), usize> {
        let indent = chars.iter().take_while(|c| **c == ' ').count();
        let blank = chars[indent..].first().is_none_or(|c| *c == '#');
        if let Some(parent) = self.block_scalar {
            if blank || indent > parent {
                return Ok(());
            }
            self.block_scalar = None;
        }
        let mut at = 0;
        if let Some(quote) = self.quote {
            match skip_quoted(chars, 0, quote) {
                Some(end) => {
                    self.quote = None;
                    at = end;
                }
                None => return Ok(()),
            }
        } else {
            if blank {
                return Ok(());
            }
            if self.flow == 0 {
                let rest: String = chars.iter().take(3).collect();
                if indent == 0 && (rest == "---" || rest == "...") {
                    // A new document (or its end): nothing is open any more.
                    self.blocks.clear();
                    at = 3;
                } else {
                    while self.blocks.last().is_some_and(|column| *column > indent) {
                        self.blocks.pop();
                    }
                    at = indent;
                }
                if at == indent {
                    return self.block_node(chars, at, indent);
                }
            }
        }
        self.rest(chars, at, indent)
    }

    /// A node starting at `at` in block context, on a line indented by `indent`.
    fn block_node(&mut self, chars: &[char], mut at: usize, indent: usize) -> Result<(), usize> {
        loop {
            at = skip_spaces(chars, at);
            let Some(&c) = chars.get(at) else {
                return Ok(());
            };
            let next_is_space = chars.get(at + 1).is_none_or(|c| *c == ' ');
            match c {
                '-' | '?' if next_is_space => {
                    self.open_block(at)?;
                    at += 1;
                }
                '#' => return Ok(()),
                '&' | '!' => {
                    // An anchor or a tag: the node itself follows.
                    at = skip_to_space(chars, at);
                }
                '|' | '>' => {
                    let parent = self.blocks.last().copied().unwrap_or(indent).max(indent);
                    self.block_scalar = Some(parent);
                    return Ok(());
                }
                '[' | '{' => return self.rest(chars, at, indent),
                '\'' | '"' => {
                    let quote = if c == '\'' {
                        Quote::Single
                    } else {
                        Quote::Double
                    };
                    match skip_quoted(chars, at + 1, quote) {
                        Some(end) => return self.after_scalar(chars, at, end, indent),
                        None => {
                            self.quote = Some(quote);
                            return Ok(());
                        }
                    }
                }
                _ => {
                    // A plain scalar: up to a mapping indicator, a comment or the line end.
                    let end = plain_end(chars, at);
                    return self.after_scalar(chars, at, end, indent);
                }
            }
        }
    }

    /// After a scalar at `start..end` in block context: `key: value` opens a mapping at the
    /// key's column, and the value is a node of its own.
    fn after_scalar(
        &mut self,
        chars: &[char],
        start: usize,
        end: usize,
        indent: usize,
    ) -> Result<(), usize> {
        let colon = skip_spaces(chars, end);
        let is_key =
            chars.get(colon) == Some(&':') && chars.get(colon + 1).is_none_or(|c| *c == ' ');
        if !is_key {
            return Ok(());
        }
        self.open_block(start)?;
        self.block_node(chars, colon + 1, indent)
    }

    /// A block collection at `column`, unless one is already open there.
    fn open_block(&mut self, column: usize) -> Result<(), usize> {
        if self.blocks.last().is_some_and(|open| *open >= column) {
            return Ok(());
        }
        self.blocks.push(column);
        if self.depth() > MAX_DEPTH {
            return Err(column);
        }
        Ok(())
    }

    /// The rest of a line from `at`, where flow collections may open and close.
    fn rest(&mut self, chars: &[char], mut at: usize, indent: usize) -> Result<(), usize> {
        let mut token_start = true;
        while let Some(&c) = chars.get(at) {
            match c {
                '[' | '{' if self.flow > 0 || token_start => {
                    self.flow += 1;
                    if self.depth() > MAX_DEPTH {
                        return Err(at);
                    }
                    token_start = true;
                }
                ']' | '}' if self.flow > 0 => {
                    self.flow -= 1;
                    token_start = false;
                    if self.flow == 0 {
                        // Back in block context: what follows may be `: value`.
                        return self.after_flow(chars, at + 1, indent);
                    }
                }
                ',' | ':' | '?' if self.flow > 0 => token_start = true,
                ' ' => token_start = true,
                '#' if token_start => return Ok(()),
                '\'' | '"' if token_start => {
                    let quote = if c == '\'' {
                        Quote::Single
                    } else {
                        Quote::Double
                    };
                    match skip_quoted(chars, at + 1, quote) {
                        Some(end) => {
                            at = end;
                            token_start = false;
                            continue;
                        }
                        None => {
                            self.quote = Some(quote);
                            return Ok(());
                        }
                    }
                }
                _ => {
                    if self.flow == 0 {
                        // A plain scalar of block context: nothing in it opens anything.
                        return Ok(());
                    }
                    token_start = false;
                }
            }
            at += 1;
        }
        Ok(())
    }

    /// After a flow collection closed back to block context at `at`.
    fn after_flow(&mut self, chars: &[char], at: usize, indent: usize) -> Result<(), usize> {
        let colon = skip_spaces(chars, at);
        if chars.get(colon) == Some(&':') && chars.get(colon + 1).is_none_or(|c| *c == ' ') {
            return self.block_node(chars, colon + 1, indent);
        }
        Ok(())
    }
}

fn skip_spaces(chars: &[char], mut at: usize) -> usize {
    while chars.get(at) == Some(&' ') {
        at += 1;
    }
    at
}

fn skip_to_space(chars: &[char], mut at: usize) -> usize {
    while chars.get(at).is_some_and(|c| *c != ' ') {
        at += 1;
    }
    at
}

/// The end of a plain scalar of block context starting at `at`: a `: ` or `:` at the line end
/// (a mapping indicator), a ` #` (a comment), or the line end.
fn plain_end(chars: &[char], mut at: usize) -> usize {
    while let Some(&c) = chars.get(at) {
        if c == ':' && chars.get(at + 1).is_none_or(|c| *c == ' ') {
            return at;
        }
        if c == '#' && at > 0 && chars[at - 1] == ' ' {
            return at;
        }
        at += 1;
    }
    at
}

/// The position just after the closing quote of a scalar whose content starts at `at`, or
/// `None` if it continues on the next line.
fn skip_quoted(chars: &[char], mut at: usize, quote: Quote) -> Option<usize> {
    while let Some(&c) = chars.get(at) {
        match (quote, c) {
            (Quote::Double, '\\') => at += 2,
            (Quote::Double, '"') => return Some(at + 1),
            (Quote::Single, '\'') if chars.get(at + 1) == Some(&'\'') => at += 2,
            (Quote::Single, '\'') => return Some(at + 1),
            _ => at += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(text: &str) -> Option<(usize, usize)> {
        check(text).err().map(|at| (at.line, at.column))
    }

    #[test]
    fn flow_nesting_beyond_the_limit_is_found_at_the_bracket() {
        assert_eq!(depth_error(&"[".repeat(128)), None);
        assert_eq!(depth_error(&"[".repeat(129)), Some((1, 129)));
        assert_eq!(
            depth_error(&format!("a:\n  b: {}", "{x: ".repeat(200))),
            Some((2, 5 + 126 * 4 + 1))
        );
    }

    #[test]
    fn block_nesting_counts_indentation_and_compact_forms() {
        assert_eq!(depth_error(&"- ".repeat(128)), None);
        assert_eq!(depth_error(&"- ".repeat(129)), Some((1, 257)));
        let indented: String = (0..129).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        assert_eq!(depth_error(&indented), Some((129, 129)));
        // Siblings at one column are one level.
        assert_eq!(depth_error(&"- a\n".repeat(1_000)), None);
    }

    #[test]
    fn brackets_that_open_nothing_are_not_counted() {
        let many = "[".repeat(500);
        for text in [
            format!("a: '{many}'\n"),
            format!("a: \"{many}\\\"\"\n"),
            format!("a: x{many}\n"),
            format!("a: |\n  {many}\n  {many}\nb: 1\n"),
            format!("a: >-\n\n  {many}\n"),
            format!("# {many}\n"),
            format!("a: 1 # {many}\n"),
            format!("a: [it's, {}]\n", "x".repeat(10)),
            format!("a: 'multi\n  line {many}'\n"),
        ] {
            assert_eq!(depth_error(&text), None, "{text}");
        }
    }

    /// A document nesting `block` block collections (each on its own line, more indented),
    /// then `flow` flow collections, with scalars that hold brackets along the way.
    fn document(block: &[bool], flow: &[bool], noise: &str) -> String {
        let mut text = String::new();
        let mut indent = 0;
        for is_sequence in block {
            let marker = if *is_sequence { "-" } else { "k:" };
            text.push_str(&format!("{}{marker} # {noise}\n", " ".repeat(indent)));
            indent += 2;
        }
        text.push_str(&" ".repeat(indent));
        for is_sequence in flow {
            text.push_str(if *is_sequence { "['{noise}', " } else { "{k: " });
        }
        text = text.replace("{noise}", noise);
        text.push('x');
        for is_sequence in flow.iter().rev() {
            text.push(if *is_sequence { ']' } else { '}' });
        }
        text.push('\n');
        text
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The pre-scan refuses exactly the documents serde_yaml_ng refuses for nesting.
        #[test]
        fn the_scan_agrees_with_the_parser_on_nesting(
            block in proptest::collection::vec(proptest::bool::ANY, 0..140),
            flow in proptest::collection::vec(proptest::bool::ANY, 0..140),
            noise in "[\\[\\]{}a ]{0,6}",
        ) {
            let text = document(&block, &flow, &noise);
            let parsed = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text);
            let too_deep_for_the_parser = parsed
                .as_ref()
                .err()
                .is_some_and(|err| err.to_string().contains("recursion limit"));
            proptest::prop_assert!(
                parsed.is_ok() || too_deep_for_the_parser,
                "the generated document is not valid YAML: {:?}\n{}",
                parsed.err(),
                text
            );
            proptest::prop_assert_eq!(check(&text).is_err(), too_deep_for_the_parser);
        }
    }

    #[test]
    fn a_new_document_starts_from_nothing() {
        let text = format!("{}\n---\n{}", "- ".repeat(100), "- ".repeat(100));
        assert_eq!(depth_error(&text), None);
    }
}
