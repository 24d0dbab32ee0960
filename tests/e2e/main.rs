//! End-to-end tests of the `todo-deploy` binary: one test binary, so support code compiles once.
//!
//! - `render`: the manifests, pinned by snapshots and checked by an independent schema validator;
//! - `config_errors`: every kind of bad input, with the place and the fix in the message;
//! - `secrets`: planted secret values never appear in any output.

mod config_errors;
mod render;
mod secrets;
mod support;
