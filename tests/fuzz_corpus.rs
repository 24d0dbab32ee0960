//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz harness, so that
//! `cargo test` on stable (CI has no cargo-fuzz) keeps proving that every input the fuzzers kept,
//! and every crash they found, is handled. The harness is the file the fuzz targets use.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// The corpus files of `target`, in name order.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = harness::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a target of the harness");
    let files = corpus(target);
    assert!(!files.is_empty(), "`fuzz/corpus/{target}` is empty");
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("a readable corpus file");
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    harness::clean_up();
    assert!(
        failed.is_empty(),
        "{} of {} `{target}` corpus files fail (their panics are above):\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

#[test]
fn every_target_has_a_test_here() {
    let names: Vec<&str> = harness::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "duration",
            "quantity",
            "field_path",
            "set",
            "yaml_layer",
            "config_load",
            "plan",
            "env_file",
            "docker_config",
            "registry_hosting"
        ]
    );
}

#[test]
fn duration() {
    replay("duration");
}

#[test]
fn quantity() {
    replay("quantity");
}

#[test]
fn field_path() {
    replay("field_path");
}

#[test]
fn set() {
    replay("set");
}

#[test]
fn yaml_layer() {
    replay("yaml_layer");
}

#[test]
fn config_load() {
    replay("config_load");
}

#[test]
fn plan() {
    replay("plan");
}

#[test]
fn env_file() {
    replay("env_file");
}

#[test]
fn docker_config() {
    replay("docker_config");
}

#[test]
fn registry_hosting() {
    replay("registry_hosting");
}
