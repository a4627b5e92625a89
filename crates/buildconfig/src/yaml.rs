//! YAML input: the size and encoding checks, parsing into a `serde_json::Value` tree with bounded
//! work and memory, and finding the line and column of a field after parsing.
//!
//! Positions are found lazily, only when there is an error to report: the text is deserialised a
//! second time with a seed that walks down the field path and fails on purpose at the target;
//! serde_yaml_ng stamps that failure with the position of the node it was reading. This reuses
//! the same parser, so the reported position always agrees with what was parsed.
//! Schema rules do not live here (see `dagster_cloud.rs` and `dg.rs`).

use std::cell::Cell;
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{Diagnostic, DiagnosticKind, Error, Problems, Reported, Result};

/// Largest configuration file accepted, in bytes.
pub(crate) const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Largest number of YAML nodes materialised from one file, counting every expansion of an
/// alias. This bounds memory and time for "billion laughs" documents, which serde_yaml_ng's own
/// repetition limit (100 alias jumps per event) does not bound tightly enough on large inputs.
pub(crate) const MAX_NODES: usize = 2_000_000;

/// Reads a file as UTF-8 text, refusing files over [`MAX_FILE_BYTES`] and anything but a
/// regular file: opening a FIFO for reading would block until another process writes to it,
/// and a device may never end.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let read_error = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if !metadata.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
            kind: non_file_kind(&metadata),
        });
    }
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    // `take` keeps memory bounded even when the file grows while it is being read.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        let size = std::fs::metadata(path).map_or(bytes.len() as u64, |meta| meta.len());
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    text_from_bytes(bytes, path)
}

/// What a path that is not a regular file is instead.
fn non_file_kind(metadata: &std::fs::Metadata) -> &'static str {
    if metadata.is_dir() {
        "a directory"
    } else {
        "a FIFO, socket or device"
    }
}

/// Converts bytes to text, reporting the position of the first invalid UTF-8 sequence.
pub(crate) fn text_from_bytes(bytes: Vec<u8>, path: &Path) -> Result<String> {
    String::from_utf8(bytes).map_err(|err| {
        let valid = err.utf8_error().valid_up_to();
        let bytes = err.as_bytes();
        // The prefix is valid UTF-8 by definition of `valid_up_to`.
        let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
        let (line, column) = line_column(prefix, prefix.len());
        Error::InvalidUtf8 {
            path: path.to_path_buf(),
            line,
            column,
        }
    })
}

/// 1-based line and column (in characters) of a byte offset in `text`.
pub(crate) fn line_column(text: &str, byte_offset: usize) -> (usize, usize) {
    let mut offset = byte_offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path to a field, rendered like `locations[2].build.registry`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The path of the document root.
    pub(crate) fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by a mapping key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        Self(segments)
    }

    /// This path extended by a sequence index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// The segments of the path.
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if position == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Whether a position is wanted for a mapping key itself or for the value under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The key (used for unknown keys).
    Key,
    /// The value (used for wrong values, and for missing keys: the enclosing mapping).
    Value,
}

/// One YAML file's text, with the file name used in error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    /// The file the text came from (used in messages and to resolve relative paths).
    pub(crate) path: &'a Path,
    /// The text.
    pub(crate) text: &'a str,
}

impl Source<'_> {
    /// Parses the text into a JSON value tree (see [`parse_value`]).
    pub(crate) fn parse(&self, empty_help: &'static str) -> Result<Value> {
        parse_value(self.text, self.path, empty_help)
    }

    /// Records a problem at `field` (its key or its value); it is located only if it is listed
    /// (see [`Problems::push`]).
    pub(crate) fn report(
        &self,
        problems: &mut Problems,
        field: &FieldPath,
        target: Target,
        kind: DiagnosticKind,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Reported {
        problems.push(|| {
            let (line, column) = locate(self.text, field.segments(), target);
            Diagnostic {
                path: self.path.to_path_buf(),
                line,
                column,
                field: field.to_string(),
                kind,
                location: None,
                message: message.into(),
                help: help.into(),
            }
        })
    }

    /// The 1-based line and column of a field's value.
    pub(crate) fn position(&self, field: &FieldPath) -> (usize, usize) {
        locate(self.text, field.segments(), Target::Value)
    }
}

/// Checks, in time linear in its size, that YAML text nests at most 128 levels deep (see the
/// `nesting` module): deeper documents would make the parser quadratic.
pub(crate) fn check_nesting(text: &str, path: &Path) -> Result<()> {
    nesting::check(text).map_err(|at| Error::Syntax {
        path: path.to_path_buf(),
        line: at.line,
        column: at.column,
        message: format!(
            "the document nests deeper than {} levels here",
            nesting::MAX_DEPTH
        ),
        help: "nesting deeper than 128 levels is not supported; flatten the document",
    })
}

/// Parses YAML text into a JSON value tree.
///
/// Date-like scalars stay strings (serde_yaml_ng follows the YAML 1.2 core schema, which has no
/// timestamp type). Duplicate keys, tags, non-finite floats and non-scalar keys are errors;
/// `<<` merge keys are applied. Work is bounded by [`MAX_NODES`], and time is linear in the
/// size: nesting is checked before parsing ([`check_nesting`]).
pub(crate) fn parse_value(text: &str, path: &Path, empty_help: &'static str) -> Result<Value> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            size: text.len() as u64,
            limit: MAX_FILE_BYTES,
        });
    }
    let empty = || Error::Empty {
        path: path.to_path_buf(),
        help: empty_help,
    };
    if text.trim().is_empty() {
        return Err(empty());
    }
    check_nesting(text, path)?;
    let budget = Cell::new(MAX_NODES);
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    let value = ValueSeed { budget: &budget }
        .deserialize(deserializer)
        .map_err(|err| syntax_error(&err, path))?;
    if value.is_null() {
        // A document of only comments, `---` or `~`.
        return Err(empty());
    }
    Ok(value)
}

fn syntax_error(err: &serde_yaml_ng::Error, path: &Path) -> Error {
    let (line, column) = err
        .location()
        .map_or_else(|| (1, 1), |location| (location.line(), location.column()));
    // serde_yaml_ng repeats the position, which our rendering shows in front already.
    let message = err
        .to_string()
        .replacen(&format!(" at line {line} column {column}"), "", 1);
    let help = if message.contains("recursion limit exceeded") {
        "nesting deeper than 128 levels is not supported; flatten the document"
    } else if message.contains("repetition limit exceeded") || message.contains(TOO_MANY_NODES) {
        "the document expands to too many values (check aliases `*name`); write it out without aliases or shrink it"
    } else if message.contains("duplicate key") {
        "remove one of the two entries"
    } else if message.contains("YAML tags") {
        "remove the tag; values are taken literally"
    } else if message.contains(".nan") || message.contains("out of range") {
        "quote the value to keep it as a string"
    } else if message.contains("more than one document") {
        "keep a single YAML document in the file (remove the extra `---`)"
    } else {
        "fix the YAML at this position (check indentation, quotes and `:` separators)"
    };
    Error::Syntax {
        path: path.to_path_buf(),
        line,
        column,
        message,
        help,
    }
}

const TOO_MANY_NODES: &str = "the document expands to more than 2000000 values";

/// Deserialises any YAML node into a `serde_json::Value`, charging one unit of `budget` per node.
struct ValueSeed<'b> {
    budget: &'b Cell<usize>,
}

impl ValueSeed<'_> {
    fn charge<E: de::Error>(&self) -> std::result::Result<(), E> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(E::custom(TOO_MANY_NODES)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Value, D::Error> {
        self.charge::<D::Error>()?;
        deserializer.deserialize_any(ValueVisitor {
            budget: self.budget,
        })
    }
}

struct ValueVisitor<'b> {
    budget: &'b Cell<usize>,
}

impl<'de> Visitor<'de> for ValueVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> std::result::Result<Value, E> {
        i64::try_from(value)
            .map(Value::from)
            .or_else(|_| u64::try_from(value).map(Value::from))
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> std::result::Result<Value, E> {
        u64::try_from(value)
            .map(Value::from)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> std::result::Result<Value, E> {
        serde_json::Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("`.nan` and `.inf` are not supported"))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> std::result::Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bytes<E: de::Error>(self, _value: &[u8]) -> std::result::Result<Value, E> {
        Err(E::custom("binary values are not supported"))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> std::result::Result<Value, A::Error> {
        Err(de::Error::custom(
            "YAML tags (`!name value`) are not supported",
        ))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ValueSeed {
            budget: self.budget,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut entries = Map::new();
        let mut merges = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed { seen: &entries })? {
            let value = map.next_value_seed(ValueSeed {
                budget: self.budget,
            })?;
            if key == "<<" {
                merges.push(value);
            } else {
                entries.insert(key, value);
            }
        }
        // YAML merge keys: explicit keys win, then earlier merged mappings win over later ones.
        for merge in merges {
            let sources = match merge {
                Value::Object(source) => vec![source],
                Value::Array(items) => items
                    .into_iter()
                    .map(|item| match item {
                        Value::Object(source) => Ok(source),
                        _ => Err(de::Error::custom(
                            "a `<<` merge list may only contain mappings",
                        )),
                    })
                    .collect::<std::result::Result<_, A::Error>>()?,
                _ => {
                    return Err(de::Error::custom(
                        "a `<<` merge key needs a mapping or a list of mappings",
                    ));
                }
            };
            for source in sources {
                for (key, value) in source {
                    entries.entry(key).or_insert(value);
                }
            }
        }
        Ok(Value::Object(entries))
    }
}

/// Deserialises a mapping key as a string, rejecting duplicates and non-scalar keys.
struct KeySeed<'m> {
    seen: &'m Map<String, Value>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> std::result::Result<String, E> {
        // Most mappings are small; comparing a few keys is cheaper than hashing this one.
        let duplicate = if self.seen.len() <= 8 {
            self.seen.keys().any(|seen| seen == key)
        } else {
            self.seen.contains_key(key)
        };
        if duplicate {
            return Err(E::custom(format!(
                "duplicate key `{key}`; each key may appear once per mapping"
            )));
        }
        Ok(key.to_owned())
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> std::result::Result<String, E> {
        self.visit_str(&value.to_string())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> std::result::Result<String, E> {
        self.visit_str(&value.to_string())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> std::result::Result<String, E> {
        self.visit_str(&value.to_string())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> std::result::Result<String, E> {
        self.visit_str(&value.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<String, E> {
        Err(E::custom(
            "a mapping key is empty or null; write a string key",
        ))
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<String, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> std::result::Result<String, A::Error> {
        Err(de::Error::custom(
            "a mapping key is a list; keys must be plain strings",
        ))
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> std::result::Result<String, A::Error> {
        Err(de::Error::custom(
            "a mapping key is a mapping; keys must be plain strings",
        ))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> std::result::Result<String, A::Error> {
        Err(de::Error::custom(
            "YAML tags (`!name value`) are not supported",
        ))
    }
}

const LOCATE_MARKER: &str = "dagster-deploy-buildconfig: located";

/// The 1-based line and column of the key or value at `path` in `text`.
///
/// If the path does not exist in the text (for example a key that came from a `<<` merge), the
/// position of the nearest enclosing node is returned; `(1, 1)` if the text does not parse.
pub(crate) fn locate(text: &str, path: &[Segment], target: Target) -> (usize, usize) {
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    match (Locator { rest: path, target }).deserialize(deserializer) {
        Err(err) => err
            .location()
            .map_or((1, 1), |location| (location.line(), location.column())),
        Ok(()) => (1, 1),
    }
}

#[derive(Clone, Copy)]
struct Locator<'p> {
    rest: &'p [Segment],
    target: Target,
}

impl<'de> DeserializeSeed<'de> for Locator<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Locator<'_> {
    fn found<E: de::Error>() -> std::result::Result<(), E> {
        Err(E::custom(LOCATE_MARKER))
    }
}

impl<'de> Visitor<'de> for Locator<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _value: bool) -> std::result::Result<(), E> {
        Self::found()
    }

    fn visit_i64<E: de::Error>(self, _value: i64) -> std::result::Result<(), E> {
        Self::found()
    }

    fn visit_u64<E: de::Error>(self, _value: u64) -> std::result::Result<(), E> {
        Self::found()
    }

    fn visit_i128<E: de::Error>(self, _value: i128) -> std::result::Result<(), E> {
        Self::found()
    }

    fn visit_u128<E: de::Error>(self, _value: u128) -> std::result::Result<(), E> {
        Self::found()
    }

    fn visit_f64<E: de::Error>(self, _value: f64) -> std::result::Result<(), E> {
        Self::found()
    }

    fn visit_str<E: de::Error>(self, _value: &str) -> std::result::Result<(), E> {
        Self::found()
    }

    fn visit_bytes<E: de::Error>(self, _value: &[u8]) -> std::result::Result<(), E> {
        Self::found()
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        Self::found()
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<(), E> {
        Self::found()
    }

    fn visit_some<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> std::result::Result<(), A::Error> {
        Self::found()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        if let [Segment::Index(wanted), rest @ ..] = self.rest {
            let mut index = 0;
            loop {
                if index == *wanted {
                    let child = Locator {
                        rest,
                        target: self.target,
                    };
                    seq.next_element_seed(child)?;
                    break;
                }
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    break;
                }
                index += 1;
            }
        }
        // Target reached, or not found below: report this node.
        Self::found()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        if let [Segment::Key(wanted), rest @ ..] = self.rest {
            let key_is_target = rest.is_empty() && self.target == Target::Key;
            while let Some(matched) = map.next_key_seed(KeyMatcher {
                wanted,
                fire: key_is_target,
            })? {
                if matched {
                    let child = Locator {
                        rest,
                        target: self.target,
                    };
                    map.next_value_seed(child)?;
                    break;
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        Self::found()
    }
}

/// Compares a mapping key with the wanted one; fails at the key's position when `fire` is set.
struct KeyMatcher<'w> {
    wanted: &'w str,
    fire: bool,
}

impl<'de> DeserializeSeed<'de> for KeyMatcher<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl KeyMatcher<'_> {
    fn compare<E: de::Error>(&self, key: &str) -> std::result::Result<bool, E> {
        if key != self.wanted {
            Ok(false)
        } else if self.fire {
            Err(E::custom(LOCATE_MARKER))
        } else {
            Ok(true)
        }
    }
}

impl<'de> Visitor<'de> for KeyMatcher<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> std::result::Result<bool, E> {
        self.compare(key)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> std::result::Result<bool, E> {
        self.compare(&value.to_string())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> std::result::Result<bool, E> {
        self.compare(&value.to_string())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> std::result::Result<bool, E> {
        self.compare(&value.to_string())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> std::result::Result<bool, E> {
        self.compare(&value.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<bool, E> {
        Ok(false)
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<bool, E> {
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

mod nesting;
#[cfg(test)]
mod tests;
