//! Field sets as structured-merge-diff keeps them: a tree of path elements
//! (`f:` field, `k:` associative-list key, `v:` set value, `i:` index) whose
//! nodes may themselves be members (`"."` in the `fieldsV1` encoding).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One step of a field path. Variant order is the serialisation order
/// (fields before keys before values before indexes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    Field(String),
    /// Canonical JSON of the key fields, sorted by field name.
    Key(String),
    /// Canonical JSON of a set member.
    Value(String),
    Index(usize),
}

impl PathElement {
    /// The `fieldsV1` spelling (`f:name`, `k:{...}`).
    pub fn encode(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    pub fn decode(s: &str) -> Option<PathElement> {
        let (p, rest) = s.split_at_checked(2)?;
        Some(match p {
            "f:" => PathElement::Field(rest.to_string()),
            "k:" => PathElement::Key(canonical_json(&serde_json::from_str(rest).ok()?)),
            "v:" => PathElement::Value(canonical_json(&serde_json::from_str(rest).ok()?)),
            "i:" => PathElement::Index(rest.parse().ok()?),
            _ => return None,
        })
    }

    /// The spelling used in conflict messages (`.spec.replicas`, `[name="web"]`).
    pub fn display(&self) -> String {
        match self {
            PathElement::Field(f) => format!(".{f}"),
            PathElement::Key(k) => {
                let v: Value = serde_json::from_str(k).unwrap_or(Value::Null);
                let parts: Vec<String> = v
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                format!("[{}]", parts.join(","))
            }
            PathElement::Value(v) => format!("[={v}]"),
            PathElement::Index(i) => format!("[{i}]"),
        }
    }
}

/// JSON with object keys sorted (serde_json's default map is ordered).
pub fn canonical_json(v: &Value) -> String {
    v.to_string()
}

/// A path of elements.
pub type Path = Vec<PathElement>;

/// Renders a path for conflict messages.
pub fn display_path(p: &[PathElement]) -> String {
    p.iter().map(|e| e.display()).collect()
}

/// A set of field paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Set {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub fn new() -> Set {
        Set::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(|c| c.is_empty())
    }

    pub fn insert(&mut self, p: &[PathElement]) {
        match p {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn contains(&self, p: &[PathElement]) -> bool {
        match p {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// Whether `p` or anything below it is a member.
    pub fn has_prefix(&self, p: &[PathElement]) -> bool {
        match p {
            [] => !self.is_empty(),
            [first, rest @ ..] => {
                (rest.is_empty() && self.members.contains(first))
                    || self.children.get(first).is_some_and(|c| c.has_prefix(rest))
            }
        }
    }

    pub fn union(&self, o: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(o.members.iter().cloned());
        for (k, v) in &o.children {
            let merged = match out.children.get(k) {
                Some(c) => c.union(v),
                None => v.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    /// Members of `self` not in `o` (exact paths).
    pub fn difference(&self, o: &Set) -> Set {
        let mut out = Set::new();
        out.members = self.members.difference(&o.members).cloned().collect();
        for (k, v) in &self.children {
            let d = match o.children.get(k) {
                Some(oc) => v.difference(oc),
                None => v.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    /// Members of `self` that are neither in `o` nor below a member of `o`.
    pub fn recursive_difference(&self, o: &Set) -> Set {
        let mut out = Set::new();
        out.members = self.members.difference(&o.members).cloned().collect();
        for (k, v) in &self.children {
            if o.members.contains(k) {
                continue;
            }
            let d = match o.children.get(k) {
                Some(oc) => v.recursive_difference(oc),
                None => v.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, o: &Set) -> Set {
        let mut out = Set::new();
        out.members = self.members.intersection(&o.members).cloned().collect();
        for (k, v) in &self.children {
            if let Some(oc) = o.children.get(k) {
                let i = v.intersection(oc);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Every member path, parents before children.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        let mut keys: BTreeSet<&PathElement> = self.members.iter().collect();
        keys.extend(self.children.keys());
        for k in keys {
            prefix.push(k.clone());
            if self.members.contains(k) {
                out.push(prefix.clone());
            }
            if let Some(c) = self.children.get(k) {
                c.collect(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The `fieldsV1` JSON encoding.
    pub fn to_fields_v1(&self) -> Value {
        let mut obj = Map::new();
        let mut keys: BTreeSet<&PathElement> = self.members.iter().collect();
        keys.extend(
            self.children
                .keys()
                .filter(|k| self.children.get(*k).is_some_and(|c| !c.is_empty())),
        );
        for k in keys {
            let mut child = match self.children.get(k) {
                Some(c) if !c.is_empty() => match c.to_fields_v1() {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                _ => Map::new(),
            };
            if self.members.contains(k) && !child.is_empty() {
                child.insert(".".into(), Value::Object(Map::new()));
            }
            obj.insert(k.encode(), Value::Object(child));
        }
        Value::Object(obj)
    }

    /// Parses a `fieldsV1` object; unknown spellings are skipped.
    pub fn from_fields_v1(v: &Value) -> Set {
        let mut s = Set::new();
        if let Some(m) = v.as_object() {
            for (k, child) in m {
                if k == "." {
                    continue;
                }
                let Some(pe) = PathElement::decode(k) else {
                    continue;
                };
                let cm = child.as_object();
                let empty = cm.is_none_or(|m| m.is_empty());
                let dot = cm.is_some_and(|m| m.contains_key("."));
                if empty || dot {
                    s.members.insert(pe.clone());
                }
                if !empty {
                    let sub = Set::from_fields_v1(child);
                    if !sub.is_empty() {
                        s.children.insert(pe, sub);
                    }
                }
            }
        }
        s
    }
}

/// Shorthand for a field element.
pub fn f(name: &str) -> PathElement {
    PathElement::Field(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_fields_v1() {
        let v = json!({"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}, "f:replicas": {}}});
        let s = Set::from_fields_v1(&v);
        assert!(s.contains(&[f("spec"), f("replicas")]));
        assert!(s.contains(&[
            f("spec"),
            f("containers"),
            PathElement::Key(r#"{"name":"web"}"#.into())
        ]));
        assert_eq!(s.to_fields_v1(), v);
    }

    #[test]
    fn differences() {
        let mut a = Set::new();
        a.insert(&[f("status"), f("replicas")]);
        a.insert(&[f("spec"), f("replicas")]);
        let mut b = Set::new();
        b.insert(&[f("status")]);
        let d = a.recursive_difference(&b);
        assert!(!d.contains(&[f("status"), f("replicas")]));
        assert!(d.contains(&[f("spec"), f("replicas")]));
        assert_eq!(a.difference(&b), a);
    }

    #[test]
    fn displays_paths() {
        let p = vec![
            f("spec"),
            f("containers"),
            PathElement::Key(r#"{"name":"web"}"#.into()),
            f("image"),
        ];
        assert_eq!(display_path(&p), r#".spec.containers[name="web"].image"#);
    }
}
