//! Integration tests of the public API: the corpus of bad inputs with snapshots of the rendered
//! messages, and a property test that the parser never panics.

mod bad_inputs;
mod never_panics;
mod parse_time;
