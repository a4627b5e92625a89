//! Tests of `target.rs`.
use super::*;
