//! Whether every key of `secret.keys` has a value (the environment, else the env file), said
//! without any value: a required key without one is an error, an optional one is named with what
//! the app does without it (the comment above it in `.env.example`), and a value that is the
//! example's own, or reads like a placeholder (`change-me`, `replace-with-…`), is a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Check, Finding};
use crate::plan::Plan;
use crate::secrets::{SecretValue, parse_env_file};

/// An example env file: its values and, per key, the comment lines above it.
#[derive(Debug, Default)]
pub struct Example {
    pub path: PathBuf,
    pub values: BTreeMap<String, SecretValue>,
    pub comments: BTreeMap<String, Vec<String>>,
}

impl Example {
    /// Reads `path`; `None` when it is missing or not an env file.
    pub fn read(path: &Path) -> Option<Example> {
        let text = std::fs::read_to_string(path).ok()?;
        let values = parse_env_file(&text).ok()?;
        let mut comments = BTreeMap::new();
        let mut above: Vec<String> = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(comment) = line.strip_prefix('#') {
                above.push(comment.trim().to_owned());
            } else if let Some((key, _)) = line.split_once('=') {
                let key = key.trim().trim_start_matches("export ").trim();
                comments.insert(key.to_owned(), std::mem::take(&mut above));
            } else {
                above.clear();
            }
        }
        Some(Example {
            path: path.to_path_buf(),
            values,
            comments,
        })
    }

    /// What the app does without `key`, from its comment (`Unset or empty: …`).
    fn without(&self, key: &str) -> Option<String> {
        let text = self.comments.get(key)?.join(" ");
        // ASCII lowercasing keeps every byte where it was, so `at` is a boundary in `text`.
        let at = text.to_ascii_lowercase().find("unset")?;
        Some(text[at..].to_owned())
    }
}

/// The `.env.example` beside the env file or one of the build contexts (or their parent).
pub fn find_example(plan: &Plan) -> Option<Example> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = plan.secret.env_file.as_deref().and_then(Path::parent) {
        dirs.push(dir.to_path_buf());
    }
    for service in &plan.services {
        let context = &service.build.context;
        dirs.push(context.clone());
        if let Some(parent) = context.parent() {
            dirs.push(parent.to_path_buf());
        }
    }
    dirs.iter()
        .find_map(|dir| Example::read(&dir.join(".env.example")))
}

/// Words that mark a value as not filled in yet.
const PLACEHOLDERS: [&str; 7] = [
    "change-me",
    "changeme",
    "replace-with",
    "replace-me",
    "your-",
    "placeholder",
    "<",
];

fn placeholder(value: &str, example: Option<&SecretValue>) -> bool {
    let lower = value.to_lowercase();
    example.is_some_and(|e| e.expose() == value) || PLACEHOLDERS.iter().any(|p| lower.contains(p))
}

/// A value that reads like a placeholder (or is `.env.example`'s own).
fn placeholder_finding(key: &str, example: Option<&Example>) -> Finding {
    Finding::warning(
        Check::Secrets,
        format!(
            "the value of `{key}` looks like a placeholder{}",
            match example {
                Some(e) => format!(" (as in `{}`)", e.path.display()),
                None => String::new(),
            }
        ),
        format!("put the real value of `{key}` in the environment or the env file"),
    )
}

/// Required keys without a value, with where to put the first.
fn missing_finding(plan: &Plan, first: &str, missing: &[String]) -> Finding {
    let file = match &plan.secret.env_file {
        Some(path) => format!("add `{first}=...` to `{}`", path.display()),
        None => {
            "pass an env file with `--env-file .env` (template: `examples/todo-app/.env.example`)"
                .to_owned()
        }
    };
    let names: Vec<String> = missing.iter().map(|k| format!("`{k}`")).collect();
    Finding::error(
        Check::Secrets,
        format!("no value for {}", names.join(", ")),
        Some(format!("export {first}=... in the environment, or {file}")),
    )
}

/// The findings for `plan`'s keys; `env` reads the environment, `from_file` is the env file's
/// values (empty without one).
pub fn check(
    plan: &Plan,
    env: &dyn Fn(&str) -> Option<String>,
    from_file: &BTreeMap<String, SecretValue>,
    example: Option<&Example>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let (mut set, mut missing) = (Vec::new(), Vec::new());
    for key in &plan.secret.keys {
        let value = env(key)
            .filter(|v| !v.is_empty())
            .map(SecretValue::new)
            .or_else(|| {
                from_file
                    .get(key)
                    .filter(|v| !v.expose().is_empty())
                    .cloned()
            });
        let optional = plan.secret.optional.contains(key);
        match value {
            Some(value) if placeholder(value.expose(), example.and_then(|e| e.values.get(key))) => {
                findings.push(placeholder_finding(key, example));
            }
            Some(_) => set.push(format!("`{key}`")),
            None if optional => findings.push(Finding::ok(
                Check::Secrets,
                format!(
                    "optional `{key}` has no value: it is left out of the Secret{}",
                    example
                        .and_then(|e| e.without(key))
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default()
                ),
            )),
            None => missing.push(key.clone()),
        }
    }
    if !set.is_empty() {
        let from = match &plan.secret.env_file {
            Some(path) => format!("the environment or `{}`", path.display()),
            None => "the environment".to_owned(),
        };
        findings.insert(
            0,
            Finding::ok(
                Check::Secrets,
                format!("{} set (from {from}; values not shown)", set.join(", ")),
            ),
        );
    }
    if let Some(first) = missing.first() {
        findings.insert(0, missing_finding(plan, first, &missing));
    }
    if plan.secret.keys.is_empty() {
        findings.push(Finding::ok(
            Check::Secrets,
            "the configuration names no secret keys",
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_gives_values_and_what_the_app_does_without_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env.example");
        std::fs::write(
            &path,
            "# Secrets.\n\n# PostgreSQL URL.\n# Some more. Unset or empty: tasks are kept in memory.\nDATABASE_URL=postgresql://todo:change-me@localhost/todo\n\n# Cohere key.\nCOHERE_API_KEY=abc\n",
        )
        .unwrap();
        let example = Example::read(&path).unwrap();
        assert_eq!(
            example.without("DATABASE_URL").unwrap(),
            "Unset or empty: tasks are kept in memory."
        );
        assert_eq!(example.without("COHERE_API_KEY"), None);
        assert!(placeholder("abc", example.values.get("COHERE_API_KEY")));
        assert!(placeholder("replace-with-your-key", None));
        assert!(!placeholder("s3cr3t-9f2a", None));
    }

    #[test]
    fn a_comment_whose_lowercase_is_shorter_does_not_panic() {
        // `Ω` (U+2126, 3 bytes) lowercases to `ω` (2 bytes): offsets in the lowercase text would
        // fall inside the `€` of the original.
        let example = Example {
            path: PathBuf::from(".env.example"),
            values: BTreeMap::new(),
            comments: BTreeMap::from([(
                "KEY".to_owned(),
                vec!["\u{2126}\u{2126}€Unset or empty: none".to_owned()],
            )]),
        };
        assert_eq!(
            example.without("KEY").as_deref(),
            Some("Unset or empty: none")
        );
    }
}
