//! todo-deploy as a library: the stages (`build`, later `load`, `apply`, `rollout`, `release`,
//! `status`), the configuration and plan they share, and the commands that compose them. The
//! binary in `main.rs` only parses arguments, runs a command and prints its error.

// Functions a reader can hold (threshold in clippy.toml: 80 lines); and few arguments (the
// default threshold, 7).
#![warn(clippy::too_many_lines, clippy::too_many_arguments)]

pub mod access;
pub mod adopt;
pub mod apply;
pub mod build;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod docker;
pub mod doctor;
pub mod helm;
pub mod load;
pub mod logs;
pub mod open;
pub mod outcome;
pub mod plan;
pub mod profile;
pub mod progress;
pub mod release;
pub mod render;
pub mod rollout;
pub mod secrets;
pub mod settings;
pub mod status;
pub mod ui;
pub mod units;
pub mod watch;
