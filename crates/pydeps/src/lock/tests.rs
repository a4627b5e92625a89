//! Tests of `lock.rs`.
use super::*;
