//! Integration tests of the public `Session` API, one module per area.

mod concurrency;
mod lifecycle;
mod merge;
mod operations;
mod reference;
mod support;
