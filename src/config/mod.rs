//! The configuration: reading the YAML layers (`--config`, then each `-f/--values`, then each
//! `--set`), merging them, deserializing the result into [`Config`] and validating it, with every
//! error pointing at the file, line, column and field path to fix.

mod error;
pub mod schema;
pub mod source;
pub mod validate;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, Problem};
pub use schema::*;
use source::{FieldPath, Layer, Origin, Segment, SourceMap};

/// A loaded, valid configuration and where each of its values came from.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub sources: SourceMap,
}

/// Reads `main`, merges `values` files and `sets` over it, and validates the result.
pub fn load(main: &Path, values: &[PathBuf], sets: &[String]) -> Result<Loaded, ConfigError> {
    let mut layer = read_layer(main)?;
    for file in values {
        source::merge(&mut layer, read_layer(file)?);
    }
    for arg in sets {
        source::apply_set(&mut layer, arg).map_err(|message| ConfigError::BadSet {
            arg: arg.clone(),
            message,
        })?;
    }
    let config = deserialize(layer.value, &layer.sources)?;
    let mut problems = validate::Problems::new(&layer.sources);
    validate::check(&config, &mut problems);
    let problems = problems.into_vec();
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    Ok(Loaded {
        config,
        sources: layer.sources,
    })
}

fn read_layer(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    source::parse_layer(&text, Origin::File(path.to_path_buf())).map_err(|error| {
        ConfigError::Syntax {
            position: source::Position {
                origin: std::sync::Arc::new(Origin::File(path.to_path_buf())),
                line: error.line,
                column: error.column,
            },
            message: error.message,
        }
    })
}

fn deserialize(value: serde_json::Value, sources: &SourceMap) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let mut field = FieldPath(
            error
                .path()
                .iter()
                .filter_map(|segment| match segment {
                    serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
                    serde_path_to_error::Segment::Enum { variant } => {
                        Some(Segment::Key(variant.clone()))
                    }
                    serde_path_to_error::Segment::Unknown => None,
                })
                .collect(),
        );
        let message = error.inner().to_string();
        let (message, fix, position) = explain(&message, &mut field, sources);
        ConfigError::Invalid(vec![Problem {
            position,
            field,
            message,
            fix,
        }])
    })
}

/// Turns serde's message into ours: what is wrong, the fix, and where.
fn explain(
    message: &str,
    field: &mut FieldPath,
    sources: &SourceMap,
) -> (String, String, Option<source::Position>) {
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let name = quoted.first().copied().unwrap_or(rest);
        let expected = &quoted[1.min(quoted.len())..];
        if field.0.last() != Some(&Segment::Key(name.to_owned())) {
            *field = field.child(name);
        }
        let fix = match closest(name, expected) {
            Some(best) => format!("did you mean `{best}`? (or remove `{name}`)"),
            None if expected.is_empty() => format!("remove `{name}`"),
            None => format!(
                "remove `{name}`; the fields here are {}",
                expected
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let position = sources.key_position(field).cloned();
        return (format!("unknown field `{name}`"), fix, position);
    }
    if message.starts_with("missing field ") {
        let name = quoted.first().copied().unwrap_or_default();
        let position = sources.key_position(field).cloned();
        let fix = if field.0.is_empty() {
            format!("add `{name}:` at the top level")
        } else {
            format!("add `{name}:` under `{field}`")
        };
        *field = field.child(name);
        return (format!("missing field `{name}`"), fix, position);
    }
    let position = sources.value_position(field).cloned();
    if message.starts_with("unknown variant ") {
        let given = quoted.first().copied().unwrap_or_default();
        let choices = quoted[1.min(quoted.len())..]
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return (
            format!("`{given}` is not one of the choices"),
            format!("use one of {choices}"),
            position,
        );
    }
    let expected = message
        .rsplit_once(", expected ")
        .map(|(_, e)| e.to_owned())
        .unwrap_or_else(|| "a value of the documented type".to_owned());
    let fix = if expected == "u16" {
        "use a port from 1 to 65535".to_owned()
    } else {
        format!("write {}", describe(&expected))
    };
    let message = message
        .split_once(", expected ")
        .map_or(message, |(m, _)| m)
        .to_owned();
    (message, fix, position)
}

fn describe(expected: &str) -> String {
    match expected {
        "u32" | "u64" => "a whole number, 0 or more".to_owned(),
        "i32" | "i64" => "a whole number".to_owned(),
        "a boolean" => "`true` or `false`".to_owned(),
        other => other.to_owned(),
    }
}

/// The expected field closest to a misspelt one, when it is close enough to be a typo.
fn closest<'a>(name: &str, expected: &[&'a str]) -> Option<&'a str> {
    expected
        .iter()
        .map(|candidate| (edit_distance(name, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min()
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
