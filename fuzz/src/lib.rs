//! The fuzz harness: one function per parser that takes user text, each feeding it arbitrary bytes
//! and checking what must hold for every input (no panic, and the bounds the parser promises).
//!
//! The cargo-fuzz targets in `fuzz_targets/` call these, and `cargo test` replays every file of
//! the committed corpus (`fuzz/corpus/<target>/`) through the same functions (`tests/fuzz_corpus.rs`
//! includes this file), so CI keeps proving the corpus holds without cargo-fuzz or nightly.
//! Only public functions of `todo_deploy` and `std` are used, so it compiles in both places.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use todo_deploy::cli::GlobalArgs;
use todo_deploy::config::source::{self, FieldPath, Origin};
use todo_deploy::load::registry::{credentials, hosting};
use todo_deploy::outcome::Diagnose;
use todo_deploy::settings::{self, CommandFlags, Purpose};
use todo_deploy::units::{self, MAX_DURATION, MAX_QUANTITY};
use todo_deploy::{render, secrets};

/// The real configuration, the base that `set` and `plan` inputs change.
const REAL_CONFIG: &str = include_str!("../../config/todo-deploy.yaml");

/// A harness function: it returns for every input, or panics on a bug.
pub type Harness = fn(&[u8]);

/// Every target by name: the corpus directory and the fuzz target share it.
pub const TARGETS: &[(&str, Harness)] = &[
    ("duration", duration),
    ("quantity", quantity),
    ("field_path", field_path),
    ("set", set),
    ("yaml_layer", yaml_layer),
    ("config_load", config_load),
    ("plan", plan),
    ("env_file", env_file),
    ("docker_config", docker_config),
    ("registry_hosting", registry_hosting),
];

/// `credentials::stored`: the first line is the registry, the rest `config.json`. A login found
/// is for that registry's host; a helper has a name.
pub fn docker_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (registry, config) = text.split_once('\n').unwrap_or((text, "{}"));
    match credentials::stored(config, registry) {
        Ok(stored) => {
            assert!(stored.helper.as_ref().is_none_or(|h| !h.is_empty()));
            if let Some(login) = stored.auths {
                let host = credentials::host_of(registry);
                assert_eq!(login.serveraddress.as_deref(), Some(host), "{text:?}");
            }
        }
        Err(message) => assert!(!message.is_empty()),
    }
}

/// `hosting::parse` (`localRegistryHosting.v1`): a registry found has a host and a host the
/// nodes pull from.
pub fn registry_hosting(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match hosting::parse(text) {
        Ok(Some(found)) => {
            assert!(
                !found.host.is_empty() && !found.from_runtime.is_empty(),
                "{text:?}"
            );
        }
        Ok(None) => {}
        Err(message) => assert!(!message.is_empty()),
    }
}

/// `units::parse_duration`: a duration is more than zero, at most a day, and fits on the clock.
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match units::parse_duration(text) {
        Ok(duration) => {
            assert!(!duration.is_zero() && duration <= MAX_DURATION, "{text:?}");
            // What `rollout::wait` does with a timeout.
            let _deadline = Instant::now() + duration;
        }
        Err(error) => assert!(!error.to_string().is_empty() && !error.fix().is_empty()),
    }
}

/// `units::parse_quantity`: a quantity is finite and at most 8Ei in magnitude.
pub fn quantity(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(value) = units::parse_quantity(text) {
        assert!(
            value.is_finite() && value.abs() <= MAX_QUANTITY,
            "{text:?} -> {value}"
        );
    }
}

/// `FieldPath::parse`: a path has one to `MAX_DEPTH` segments and displays.
pub fn field_path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(path) = FieldPath::parse(text) {
        assert!(
            !path.0.is_empty() && path.0.len() <= source::MAX_DEPTH,
            "{text:?}"
        );
        let _ = path.to_string();
    }
}

/// `source::apply_set` over the real configuration, one `--set` argument per line.
pub fn set(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    thread_local! {
        static REAL: source::Layer = real_layer();
    }
    let mut layer = REAL.with(source::Layer::clone);
    for arg in text.lines() {
        if let Err(message) = source::apply_set(&mut layer, arg) {
            assert!(!message.is_empty());
        }
    }
}

fn real_layer() -> source::Layer {
    match source::parse_layer(REAL_CONFIG, Origin::File("real.yaml".into())) {
        Ok(layer) => layer,
        Err(error) => panic!("the real configuration parses: {error:?}"),
    }
}

/// `source::parse_layer`: any text is a layer or a syntax error.
pub fn yaml_layer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match source::parse_layer(text, Origin::File("fuzz.yaml".into())) {
        Ok(layer) => assert!(!layer.value.is_null(), "an empty document is an empty map"),
        Err(error) => assert!(!error.message.is_empty()),
    }
}

/// The whole of `config::load` (files, merge, `--set`, types, validation), then a plan and its
/// manifests. The input is the main file, then optionally a line `--- values` and a values file,
/// then optionally a line `--- set` and one `--set` argument per line.
pub fn config_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (main, rest) = text.split_once("\n--- values\n").unwrap_or((text, ""));
    let (main, sets) = main.split_once("\n--- set\n").unwrap_or((main, ""));
    let (values, more_sets) = rest.split_once("\n--- set\n").unwrap_or((rest, ""));
    let sets: Vec<String> = sets
        .lines()
        .chain(more_sets.lines())
        .map(String::from)
        .collect();
    let dir = scratch_dir();
    let main_path = write(&dir, "main.yaml", main);
    let values = match values.is_empty() {
        true => Vec::new(),
        false => vec![write(&dir, "values.yaml", values)],
    };
    plan_from(
        &global_args(main_path, values, sets),
        &CommandFlags::default(),
    );
}

/// `settings::resolve` over the real configuration with the flags of one line each:
/// `--timeout T`, `--tag T`, `--namespace N`, `--history-max N`, `--set P=V`.
pub fn plan(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut sets = Vec::new();
    let mut namespace = None;
    let mut flags = CommandFlags::default();
    for line in text.lines() {
        let (flag, value) = line.split_once(' ').unwrap_or((line, ""));
        match flag {
            "--timeout" => flags.timeout = Some(value),
            "--tag" => flags.tag = Some(value),
            "--namespace" => namespace = Some(value.to_owned()),
            // clap refuses what is not a `u32` before settings see it.
            "--history-max" => flags.history_max = value.parse().ok(),
            "--set" => sets.push(value.to_owned()),
            _ => {}
        }
    }
    thread_local! {
        static MAIN: PathBuf = write(&scratch_dir(), "real.yaml", REAL_CONFIG);
    }
    let main = MAIN.with(PathBuf::clone);
    let mut global = global_args(main, Vec::new(), sets);
    global.namespace = namespace;
    plan_from(&global, &flags);
}

/// `secrets::parse_env_file`: any text is values or the number of a line of it.
pub fn env_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(line) = secrets::parse_env_file(text) {
        assert!(line >= 1 && line <= text.lines().count(), "{line}");
    }
}

/// Resolves a plan the way `status` does (no build context, no secret), renders it, and checks
/// that its numbers are what the configuration allows.
fn plan_from(global: &GlobalArgs, flags: &CommandFlags<'_>) {
    match settings::resolve(global, flags, Purpose::Inspect, &|_| None) {
        Ok(plan) => {
            assert!(!plan.timeout.is_zero() && plan.timeout <= MAX_DURATION);
            let _deadline = Instant::now() + plan.timeout;
            assert!(plan.history_max >= 1);
            for service in &plan.services {
                assert!(
                    i32::try_from(service.replicas).is_ok(),
                    "{}",
                    service.replicas
                );
            }
            let manifests = render::render(&plan);
            let _ = render::to_yaml(&manifests.all(), render::SecretDisplay::Masked);
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            let _ = error.hint();
        }
    }
}

fn global_args(config: PathBuf, values: Vec<PathBuf>, set: Vec<String>) -> GlobalArgs {
    GlobalArgs {
        config,
        values,
        set,
        env_file: None,
        kubeconfig: None,
        context: None,
        namespace: None,
        verbose: 0,
        quiet: true,
        no_color: true,
    }
}

/// A directory of this thread's own, for the files `config::load` reads.
fn scratch_dir() -> PathBuf {
    thread_local! {
        static DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
    }
    DIR.with(|dir| {
        dir.borrow_mut()
            .get_or_insert_with(|| {
                let id = format!("{:?}", std::thread::current().id());
                let name = format!(
                    "todo-deploy-fuzz-{}-{}",
                    std::process::id(),
                    id.trim_start_matches("ThreadId(").trim_end_matches(')')
                );
                let path = std::env::temp_dir().join(name);
                if let Err(error) = std::fs::create_dir_all(&path) {
                    panic!("cannot create {}: {error}", path.display());
                }
                path
            })
            .clone()
    })
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Err(error) = std::fs::write(&path, text) {
        panic!("cannot write {}: {error}", path.display());
    }
    path
}

/// Removes this thread's scratch directory: the last call of a thread that replays a corpus
/// (fuzzing keeps it, and writes its files once).
pub fn clean_up() {
    let _ = std::fs::remove_dir_all(scratch_dir());
}
