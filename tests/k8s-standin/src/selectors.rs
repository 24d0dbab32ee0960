//! Label selectors (the `labelSelector` query string and `metav1.LabelSelector`
//! objects) and field selectors, with the matching rules of apimachinery.

use serde_json::Value;

use crate::status::{ApiError, bad_request};

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
pub enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(pub Vec<Req>);

fn label<'a>(labels: Option<&'a Value>, k: &str) -> Option<&'a str> {
    labels.and_then(|l| l.get(k)).and_then(|v| v.as_str())
}

impl LabelSelector {
    /// Parses the string form (`a=b,c!=d,e in (f,g),!h,i`).
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_req(part).ok_or_else(|| {
                bad_request(format!(
                    "unable to parse requirement: invalid label selector: {part}"
                ))
            })?);
        }
        Ok(LabelSelector(reqs))
    }

    /// Converts a `metav1.LabelSelector` object. `None` selects nothing (null selector).
    pub fn from_object(sel: &Value) -> Option<LabelSelector> {
        if sel.is_null() {
            return None;
        }
        let mut reqs = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(|m| m.as_object()) {
            for (k, v) in m {
                reqs.push(Req::Eq(k.clone(), v.as_str().unwrap_or("").to_string()));
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(|m| m.as_array()) {
            for e in exprs {
                let key = e["key"].as_str().unwrap_or("").to_string();
                let vals: Vec<String> = e["values"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                reqs.push(match e["operator"].as_str().unwrap_or("") {
                    "In" => Req::In(key, vals),
                    "NotIn" => Req::NotIn(key, vals),
                    "Exists" => Req::Exists(key),
                    _ => Req::NotExists(key),
                });
            }
        }
        Some(LabelSelector(reqs))
    }

    /// A selector from a plain map (Service `spec.selector`).
    pub fn from_map(m: &Value) -> LabelSelector {
        let mut reqs = Vec::new();
        if let Some(m) = m.as_object() {
            for (k, v) in m {
                reqs.push(Req::Eq(k.clone(), v.as_str().unwrap_or("").to_string()));
            }
        }
        LabelSelector(reqs)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a `labels` map matches.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => label(labels, k) == Some(v.as_str()),
            Req::NotEq(k, v) => label(labels, k) != Some(v.as_str()),
            Req::In(k, vs) => label(labels, k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => label(labels, k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Req::Exists(k) => label(labels, k).is_some(),
            Req::NotExists(k) => label(labels, k).is_none(),
        })
    }

    /// Whether an object's `metadata.labels` match.
    pub fn matches_obj(&self, obj: &Value) -> bool {
        self.matches(obj.get("metadata").and_then(|m| m.get("labels")))
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn parse_set(rest: &str) -> Option<Vec<String>> {
    let rest = rest.trim();
    let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

fn parse_req(p: &str) -> Option<Req> {
    if let Some(k) = p.strip_prefix('!') {
        let k = k.trim();
        return valid_key(k).then(|| Req::NotExists(k.to_string()));
    }
    if let Some((k, v)) = p.split_once("!=") {
        let k = k.trim();
        return valid_key(k).then(|| Req::NotEq(k.to_string(), v.trim().to_string()));
    }
    if let Some((k, v)) = p.split_once("==") {
        let k = k.trim();
        return valid_key(k).then(|| Req::Eq(k.to_string(), v.trim().to_string()));
    }
    if let Some((k, v)) = p.split_once('=') {
        let k = k.trim();
        return valid_key(k).then(|| Req::Eq(k.to_string(), v.trim().to_string()));
    }
    let words: Vec<&str> = p.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let k = words[0].trim();
        let rest = words[1].trim();
        if let Some(r) = rest.strip_prefix("notin") {
            return Some(Req::NotIn(k.to_string(), parse_set(r)?));
        }
        if let Some(r) = rest.strip_prefix("in") {
            return Some(Req::In(k.to_string(), parse_set(r)?));
        }
        return None;
    }
    let k = p.trim();
    valid_key(k).then(|| Req::Exists(k.to_string()))
}

/// A parsed field selector (`a.b=c,d!=e`).
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<FieldSelector, ApiError> {
        let mut out = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            if let Some((k, v)) = part.split_once("!=") {
                out.push((k.trim().to_string(), false, v.trim().to_string()));
            } else if let Some((k, v)) = part.split_once("==") {
                out.push((k.trim().to_string(), true, v.trim().to_string()));
            } else if let Some((k, v)) = part.split_once('=') {
                out.push((k.trim().to_string(), true, v.trim().to_string()));
            } else {
                return Err(bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            }
        }
        Ok(FieldSelector(out))
    }

    /// Whether the object's fields match. Unknown fields read as "".
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(k, eq, v)| {
            let mut cur = obj;
            let mut found = true;
            for seg in k.split('.') {
                match cur.get(seg) {
                    Some(x) => cur = x,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            let actual = if !found {
                String::new()
            } else {
                match cur {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                }
            };
            (actual == *v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_matches_all_operators() {
        let l = json!({"app": "web", "tier": "front"});
        let t = |s: &str| LabelSelector::parse(s).expect("parse").matches(Some(&l));
        assert!(t("app=web"));
        assert!(t("app==web"));
        assert!(!t("app!=web"));
        assert!(t("app in (web, db)"));
        assert!(!t("app notin (web,db)"));
        assert!(t("tier"));
        assert!(!t("!tier"));
        assert!(t("!missing"));
        assert!(t("app=web,tier=front"));
        assert!(!t("app=web,tier=back"));
        assert!(t(""));
    }

    #[test]
    fn label_selector_objects() {
        let s = LabelSelector::from_object(&json!({"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "t", "operator": "In", "values": ["a"]}]})).expect("sel");
        assert!(s.matches(Some(&json!({"app": "x", "t": "a"}))));
        assert!(!s.matches(Some(&json!({"app": "x"}))));
    }

    #[test]
    fn field_selectors() {
        let f = FieldSelector::parse("involvedObject.name=p1,metadata.name!=x").expect("parse");
        assert!(f.matches(&json!({"involvedObject": {"name": "p1"}, "metadata": {"name": "e"}})));
        assert!(!f.matches(&json!({"involvedObject": {"name": "p2"}, "metadata": {"name": "e"}})));
    }
}
