//! The shape of `src/`, checked so that it stays true: dependencies between files run one way
//! (no import cycle), stages never reach for the terminal (`ui`) or the command line (`cli`),
//! and `ui` never reaches for the command line either.
//!
//! A file's dependencies are the `crate::…`, `super::…` and child-module paths it names outside
//! its tests, each resolved to the deepest module file that exists. A module may use its own
//! submodules (it declares and re-exports them); every other edge counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path (`["build", "events"]`) and the file that holds it.
type Modules = BTreeMap<Vec<String>, PathBuf>;

fn modules() -> Modules {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Modules::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).expect("under src");
            let mut segments: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if segments.last().is_some_and(|s| s == "mod") {
                segments.pop();
            }
            if segments == ["lib"] {
                segments.clear();
            }
            if segments == ["main"] {
                continue;
            }
            found.insert(segments, path);
        }
    }
    found
}

/// The file's code without its `#[cfg(test)]` part and without comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read a source file");
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path the code names that starts at `crate`, `super` or one of `children`, with `use`
/// groups (`use crate::{a, b::{c, d}}`) expanded.
fn named_paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut paths = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !is_word(chars[i - 1]);
        if !(starts_word && is_word(chars[i])) {
            i += 1;
            continue;
        }
        let end = path_end(&chars, i);
        let expression: String = chars[i..end].iter().collect();
        i = end.max(i + 1);
        let first = expression.split("::").next().unwrap_or_default();
        let rooted = first == "crate" || first == "super" || children.contains(first);
        if rooted && expression.contains("::") {
            paths.extend(expand(&expression));
        }
    }
    paths
}

/// Where the path expression at `start` ends: words, `::` and brace groups.
fn path_end(chars: &[char], start: usize) -> usize {
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            c if c.is_alphanumeric() || c == '_' => i += 1,
            ':' if chars.get(i + 1) == Some(&':') => i += 2,
            '{' if i > start && chars[i - 1] == ':' => i = matching_brace(chars, i) + 1,
            _ => break,
        }
    }
    i
}

/// The full paths a path expression stands for: `a::{b, c::{d}}` is `a::b` and `a::c::d`.
fn expand(expression: &str) -> Vec<Vec<String>> {
    match expression.find("::{") {
        Some(at) => {
            let prefix: Vec<String> = expression[..at].split("::").map(str::to_owned).collect();
            let close = expression.rfind('}').unwrap_or(expression.len());
            expand_group(&prefix, &expression[at + 3..close])
        }
        None => vec![
            expression
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ],
    }
}

fn matching_brace(chars: &[char], open: usize) -> usize {
    let mut depth = 0;
    for (offset, c) in chars[open..].iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + offset;
                }
            }
            _ => {}
        }
    }
    chars.len() - 1
}

fn split_top_level(inner: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts.into_iter().map(|p| p.trim().to_owned()).collect()
}

/// Every full path a group stands for: `a::{b, c::{d}}` is `a::b` and `a::c::d`.
fn expand_group(prefix: &[String], inner: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for member in split_top_level(inner) {
        if member.is_empty() {
            continue;
        }
        match member.find("::{") {
            Some(_) => {
                for tail in expand(&member) {
                    let mut path = prefix.to_vec();
                    path.extend(tail);
                    out.push(path);
                }
            }
            None => {
                let mut path = prefix.to_vec();
                let name = member.split(" as ").next().unwrap_or_default().trim();
                if name != "self" && name != "*" {
                    path.extend(name.split("::").map(|s| s.trim().to_owned()));
                }
                out.push(path);
            }
        }
    }
    out
}

/// The module `path` (as named in `module`) refers to: the deepest existing module file.
fn resolve(module: &[String], path: &[String], modules: &Modules) -> Option<Vec<String>> {
    let mut absolute: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("super") => module[..module.len().saturating_sub(1)].to_vec(),
        _ => module.to_vec(),
    };
    let rest = match path.first().map(String::as_str) {
        Some("crate") | Some("super") => &path[1..],
        _ => path,
    };
    let mut rest = rest.iter().peekable();
    while rest.peek().is_some_and(|s| *s == "super") {
        absolute.pop();
        rest.next();
    }
    let mut best = None;
    for segment in rest {
        absolute.push(segment.clone());
        if modules.contains_key(&absolute) {
            best = Some(absolute.clone());
        } else {
            break;
        }
    }
    best.or_else(|| modules.contains_key(&absolute[..0]).then(Vec::new))
        .filter(|target| !target.is_empty())
}

/// The dependency graph: module → the modules it uses (not counting its own submodules).
fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let modules = modules();
    let mut edges = BTreeMap::new();
    for (module, file) in &modules {
        let children: BTreeSet<String> = modules
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .map(|m| m[module.len()].clone())
            .collect();
        let paths = named_paths(&code(file), &children);
        let targets: BTreeSet<Vec<String>> = paths
            .iter()
            .filter_map(|path| resolve(module, path, &modules))
            .filter(|target| target != module && !target.starts_with(module))
            .collect();
        edges.insert(module.clone(), targets);
    }
    edges
}

fn name(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// A cycle through `start`, if there is one (depth-first search).
fn cycle_from(
    start: &Vec<String>,
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> Option<Vec<String>> {
    let mut stack = vec![(start.clone(), vec![start.clone()])];
    let mut seen = BTreeSet::new();
    while let Some((at, trail)) = stack.pop() {
        for next in edges.get(&at).into_iter().flatten() {
            if next == start {
                let mut names: Vec<String> = trail.iter().map(|m| name(m)).collect();
                names.push(name(start));
                return Some(names);
            }
            if seen.insert(next.clone()) {
                let mut longer = trail.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_import_cycle_in_src() {
    let edges = graph();
    let cycles: BTreeSet<String> = edges
        .keys()
        .filter_map(|module| cycle_from(module, &edges))
        .map(|cycle| cycle.join(" -> "))
        .collect();
    assert!(
        cycles.is_empty(),
        "import cycles in src/ (a module may use its own submodules; nothing else may loop):\n{}",
        cycles.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// What the stages and the UI may not depend on.
#[test]
fn stages_never_reach_for_the_terminal_or_the_command_line() {
    let edges = graph();
    let mut wrong = Vec::new();
    for (module, targets) in &edges {
        let top = module.first().map(String::as_str).unwrap_or_default();
        // The commands compose everything; `settings` resolves the command line; `lib` and
        // `cli` are the entry points.
        if matches!(top, "" | "commands" | "settings" | "cli") {
            continue;
        }
        for target in targets {
            let forbidden = match target.first().map(String::as_str) {
                Some("cli") => true,
                Some("ui") => top != "ui",
                Some("commands") => true,
                _ => false,
            };
            if forbidden {
                wrong.push(format!("{} uses {}", name(module), name(target)));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_groups_and_relative_paths() {
    let children = BTreeSet::from(["events".to_owned()]);
    let paths = named_paths(
        "use crate::{build::{BuildEvent, image}, load::LoadEvent};\nuse events::X;\nlet y = super::z::f();",
        &children,
    );
    let joined: BTreeSet<String> = paths.iter().map(|p| p.join("::")).collect();
    for expected in [
        "crate::build::BuildEvent",
        "crate::build::image",
        "crate::load::LoadEvent",
        "events::X",
        "super::z::f",
    ] {
        assert!(joined.contains(expected), "{expected} in {joined:?}");
    }
}
