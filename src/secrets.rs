//! Secret values: where they come from (the process environment, else an env file) and how they
//! stay out of every output. A [`SecretValue`] cannot be displayed; its `Debug` prints `***`, and
//! the only way to the text is [`SecretValue::expose`], called when the Secret object is rendered.
//! Errors about env files name the file and line, never the value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A secret's value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: String) -> Self {
        SecretValue(value)
    }

    /// The value itself, for the Secret's `data` and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read the env file `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` line {line}: expected `KEY=value`", path.display())]
    Syntax { path: PathBuf, line: usize },
    #[error("no value for the secret {}", keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))]
    Missing {
        keys: Vec<String>,
        env_file: Option<PathBuf>,
    },
}

impl crate::outcome::Diagnose for SecretsError {
    fn exit(&self) -> crate::outcome::Exit {
        crate::outcome::Exit::Usage
    }

    fn hint(&self) -> Option<String> {
        Some(self.fix())
    }
}

impl SecretsError {
    fn fix(&self) -> String {
        match self {
            SecretsError::Read { .. } => {
                "check the path given to `--env-file` (or `secret.envFile`)".to_owned()
            }
            SecretsError::Syntax { .. } => {
                "write one `KEY=value` per line; `#` starts a comment".to_owned()
            }
            SecretsError::Missing { keys, env_file } => {
                let first = keys.first().map(String::as_str).unwrap_or("KEY");
                let file = match env_file {
                    Some(path) => format!("add `{first}=...` to `{}`", path.display()),
                    None => "put `KEY=value` lines in an env file and pass `--env-file .env` (template: `examples/todo-app/.env.example`)".to_owned(),
                };
                format!("export {first}=... in the environment, or {file}")
            }
        }
    }
}

/// Reads `KEY=value` lines: blank lines and `#` comments are skipped, `export ` is allowed, and
/// single or double quotes around a value are removed.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, SecretValue>, SecretsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_env_file(&text).map_err(|line| SecretsError::Syntax {
        path: path.to_path_buf(),
        line,
    })
}

/// Parses env-file text; the error is the 1-based line number. A byte-order mark (which some
/// Windows editors write) is not part of the first key.
pub fn parse_env_file(text: &str) -> Result<BTreeMap<String, SecretValue>, usize> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut values = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line.split_once('=').ok_or(index + 1)?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(index + 1);
        }
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        values.insert(key.to_owned(), SecretValue::new(unquoted.to_owned()));
    }
    Ok(values)
}

/// A key of the Secret and whether it may have no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub optional: bool,
}

impl Key {
    pub fn required(name: impl Into<String>) -> Key {
        Key {
            name: name.into(),
            optional: false,
        }
    }
}

/// The value of every key: the environment wins over the env file; an empty value is missing.
/// An optional key without a value is left out; a required one is an error.
pub fn collect(
    keys: &[Key],
    env_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, SecretValue>, SecretsError> {
    let from_file = match env_file {
        Some(path) => read_env_file(path)?,
        None => BTreeMap::new(),
    };
    let mut values = BTreeMap::new();
    let mut missing = Vec::new();
    for key in keys {
        let name = &key.name;
        let value = env(name)
            .filter(|v| !v.is_empty())
            .map(SecretValue::new)
            .or_else(|| from_file.get(name).filter(|v| !v.0.is_empty()).cloned());
        match value {
            Some(value) => {
                values.insert(name.clone(), value);
            }
            None if key.optional => {}
            None => missing.push(name.clone()),
        }
    }
    if missing.is_empty() {
        Ok(values)
    } else {
        Err(SecretsError::Missing {
            keys: missing,
            env_file: env_file.map(Path::to_path_buf),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let value = SecretValue::new("hunter2".into());
        assert_eq!(format!("{value:?}"), "***");
        let map = BTreeMap::from([("K".to_owned(), value)]);
        assert!(!format!("{map:?}").contains("hunter2"));
    }

    #[test]
    fn env_file_syntax() {
        let values =
            parse_env_file("# comment\n\nA=1\nexport B = \"two words\"\nC='x=y'\nEMPTY=\n")
                .unwrap();
        assert_eq!(values["A"].expose(), "1");
        assert_eq!(values["B"].expose(), "two words");
        assert_eq!(values["C"].expose(), "x=y");
        assert_eq!(parse_env_file("A=1\nnot a pair\n"), Err(2));
        assert_eq!(parse_env_file("\u{feff}A=1\n").unwrap()["A"].expose(), "1");
    }

    #[test]
    fn environment_wins_and_missing_keys_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".env");
        std::fs::write(&file, "A=from-file\nB=from-file\nC=\n").unwrap();
        let keys: Vec<Key> = ["A", "B", "C", "D"].map(Key::required).to_vec();
        let env = |key: &str| (key == "A").then(|| "from-env".to_owned());
        match collect(&keys, Some(&file), env) {
            Err(SecretsError::Missing { keys, .. }) => assert_eq!(keys, ["C", "D"]),
            other => panic!("expected missing keys, got {other:?}"),
        }
        let values = collect(&keys[..2], Some(&file), env).unwrap();
        assert_eq!(values["A"].expose(), "from-env");
        assert_eq!(values["B"].expose(), "from-file");
    }

    #[test]
    fn an_optional_key_without_a_value_is_left_out() {
        let keys = [
            Key::required("A"),
            Key {
                name: "DATABASE_URL".into(),
                optional: true,
            },
        ];
        let env = |key: &str| match key {
            "A" => Some("a".to_owned()),
            "DATABASE_URL" => Some(String::new()),
            _ => None,
        };
        let values = collect(&keys, None, env).unwrap();
        assert_eq!(values.keys().collect::<Vec<_>>(), ["A"]);
        let set = |key: &str| Some(format!("{key}-value"));
        assert_eq!(collect(&keys, None, set).unwrap().len(), 2);
        match collect(&keys, None, |_| None) {
            Err(SecretsError::Missing { keys, .. }) => assert_eq!(keys, ["A"]),
            other => panic!("only the required key is missing, got {other:?}"),
        }
    }
}
