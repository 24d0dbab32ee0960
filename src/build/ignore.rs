//! `.dockerignore` matching with Docker's own rules (moby's `patternmatcher`).
//!
//! - one pattern per line; `#` starts a comment line; blank lines are skipped;
//! - a pattern is cleaned like a path (`/foo/`, `./foo` and `foo` are the same) and is relative to
//!   the context root;
//! - `*` matches any run of characters except `/`, `?` one such character, `[a-z]` a class,
//!   `\` escapes; `**` matches any number of directories, including none;
//! - a pattern that matches a directory matches everything under it;
//! - `!` makes an exception; the last pattern that matches a path decides.

use regex::Regex;

#[derive(Debug, Clone)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    exception: bool,
    /// The cleaned pattern text, for deciding whether an excluded directory may hold exceptions.
    text: String,
}

/// A line of `.dockerignore` that cannot be compiled.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: `{pattern}` is not a valid pattern")]
pub struct BadPattern {
    pub line: usize,
    pub pattern: String,
}

impl DockerIgnore {
    pub fn empty() -> Self {
        DockerIgnore {
            patterns: Vec::new(),
        }
    }

    pub fn parse(text: &str) -> Result<Self, BadPattern> {
        let mut patterns = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(body);
            if cleaned.is_empty() {
                continue;
            }
            let regex = compile(&cleaned).ok_or_else(|| BadPattern {
                line: index + 1,
                pattern: raw.to_owned(),
            })?;
            patterns.push(Pattern {
                regex,
                exception,
                text: cleaned,
            });
        }
        Ok(DockerIgnore { patterns })
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out of the context.
    pub fn is_excluded(&self, path: &str) -> bool {
        let parents: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            let mut matched = pattern.regex.is_match(path);
            if !matched {
                // A pattern that matches a parent directory matches everything below it.
                for depth in 1..parents.len() {
                    if pattern.regex.is_match(&parents[..depth].join("/")) {
                        matched = true;
                        break;
                    }
                }
            }
            if matched {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether an excluded directory must still be walked: Docker walks into it only when an
    /// exception pattern starts with the directory's path (so `!docs/keep.txt` rescues a file in
    /// an excluded `docs`, while `!**/keep.txt` does not).
    pub fn may_hold_exceptions(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .any(|p| p.exception && format!("{}/", p.text).starts_with(&dir_slash))
    }
}

/// Cleans a pattern like Go's `filepath.Clean` after stripping leading `/`.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

fn compile(pattern: &str) -> Option<Regex> {
    let mut out = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                if i + 1 >= chars.len() {
                    out.push_str(".*");
                } else {
                    out.push_str("(.*/)?");
                }
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '\\' => {
                i += 1;
                let escaped = chars.get(i)?;
                out.push_str(&regex::escape(&escaped.to_string()));
            }
            '[' => {
                let close = chars[i + 1..].iter().position(|&ch| ch == ']')? + i + 1;
                let class: String = chars[i + 1..close].iter().collect();
                let class = class
                    .strip_prefix('!')
                    .map_or(class.clone(), |rest| format!("^{rest}"));
                out.push('[');
                out.push_str(&class.replace('\\', "\\\\").replace('[', "\\["));
                out.push(']');
                i = close;
            }
            other => out.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    out.push('$');
    Regex::new(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).expect("valid patterns")
    }

    #[test]
    fn plain_names_and_directories() {
        let rules = ignore("# comment\n\nnode_modules\n/.git/\n*.md\n");
        assert!(rules.is_excluded("node_modules"));
        assert!(rules.is_excluded("node_modules/a/b.js"));
        assert!(rules.is_excluded(".git/HEAD"));
        assert!(rules.is_excluded("README.md"));
        // `*` does not cross directories: `*.md` is only the top level.
        assert!(!rules.is_excluded("docs/guide.md"));
        assert!(!rules.is_excluded("src/node_modules.rs"));
    }

    #[test]
    fn double_star_matches_any_depth() {
        let rules = ignore("**/*.pyc\n**/__pycache__\nlogs/**\n");
        assert!(rules.is_excluded("a.pyc"));
        assert!(rules.is_excluded("app/x/y.pyc"));
        assert!(rules.is_excluded("app/__pycache__/m.cpython-311.pyc"));
        assert!(rules.is_excluded("logs/2024/x.log"));
        assert!(!rules.is_excluded("logs"));
        assert!(!rules.is_excluded("app/main.py"));
    }

    #[test]
    fn exceptions_and_last_match_wins() {
        let rules = ignore("*.md\n!README.md\nREADME*.md\n!README-keep.md\n");
        assert!(rules.is_excluded("CHANGES.md"));
        assert!(rules.is_excluded("README.md"), "re-excluded by README*.md");
        assert!(!rules.is_excluded("README-keep.md"));
        let rules = ignore("docs\n!docs/keep.txt\n");
        assert!(rules.is_excluded("docs/other.txt"));
        assert!(!rules.is_excluded("docs/keep.txt"));
        assert!(rules.may_hold_exceptions("docs"));
        assert!(!ignore("docs\n").may_hold_exceptions("docs"));
    }

    #[test]
    fn question_marks_classes_and_escapes() {
        let rules = ignore("file?.txt\n[abc].log\nweird\\*name\n[!x]y\n");
        assert!(rules.is_excluded("file1.txt"));
        assert!(!rules.is_excluded("file12.txt"));
        assert!(rules.is_excluded("b.log"));
        assert!(!rules.is_excluded("d.log"));
        assert!(rules.is_excluded("weird*name"));
        assert!(!rules.is_excluded("weirdXname"));
        assert!(rules.is_excluded("ay"));
        assert!(!rules.is_excluded("xy"));
    }

    #[test]
    fn patterns_are_cleaned_like_paths() {
        let rules = ignore("./a/../b/\n/c\n");
        assert!(rules.is_excluded("b/file"));
        assert!(rules.is_excluded("c"));
        assert!(!rules.is_excluded("a"));
    }

    #[test]
    fn a_broken_class_names_its_line() {
        let error = DockerIgnore::parse("ok\n[unclosed\n").unwrap_err();
        assert_eq!(error.line, 2);
    }
}
