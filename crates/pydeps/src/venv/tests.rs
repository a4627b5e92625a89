//! Tests of `venv.rs`.
use super::*;
