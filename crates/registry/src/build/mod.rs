//! The native code-image builder: a reproducible code layer on top of a base image.
