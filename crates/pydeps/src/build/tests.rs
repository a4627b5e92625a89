//! Tests of `build.rs`.
use super::*;
