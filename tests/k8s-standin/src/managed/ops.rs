//! Typed-value operations of structured-merge-diff on JSON objects: the field
//! set of an applied configuration, the comparison of two objects (added,
//! modified, removed paths), the apply merge, and removal of paths.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fieldset::{Path, PathElement, Set, canonical_json};
use super::schema::{ListKind, key_default, list_kind, map_atomic};

fn tp_ref(tp: &[String]) -> Vec<&str> {
    tp.iter().map(|s| s.as_str()).collect()
}

/// The key element of an associative-list item.
pub fn key_element(item: &Value, keys: &[&str]) -> PathElement {
    let mut m = Map::new();
    for k in keys {
        match item.get(*k) {
            Some(v) if !v.is_null() => {
                m.insert(k.to_string(), v.clone());
            }
            _ => {
                if let Some(d) = key_default(k) {
                    m.insert(k.to_string(), d);
                }
            }
        }
    }
    PathElement::Key(canonical_json(&Value::Object(m)))
}

fn item_element(item: &Value, lk: ListKind) -> Option<PathElement> {
    match lk {
        ListKind::Atomic => None,
        ListKind::Set => Some(PathElement::Value(canonical_json(item))),
        ListKind::Map(keys) => Some(key_element(item, keys)),
    }
}

/// The set of fields a (configuration) object specifies.
pub fn to_field_set(kind: &str, v: &Value) -> Set {
    let mut s = Set::new();
    tfs(kind, &mut Vec::new(), &mut Vec::new(), v, &mut s);
    s
}

fn tfs(kind: &str, tp: &mut Vec<String>, pp: &mut Path, v: &Value, s: &mut Set) {
    match v {
        Value::Object(m) => {
            if (!pp.is_empty() && map_atomic(kind, &tp_ref(tp))) || m.is_empty() {
                s.insert(pp);
                return;
            }
            for (k, child) in m {
                tp.push(k.clone());
                pp.push(PathElement::Field(k.clone()));
                tfs(kind, tp, pp, child, s);
                tp.pop();
                pp.pop();
            }
        }
        Value::Array(a) => {
            let lk = list_kind(kind, &tp_ref(tp));
            if lk == ListKind::Atomic {
                s.insert(pp);
                return;
            }
            for item in a {
                let Some(pe) = item_element(item, lk) else {
                    continue;
                };
                pp.push(pe);
                s.insert(pp);
                if matches!(lk, ListKind::Map(_)) {
                    tp.push("[]".into());
                    tfs(kind, tp, pp, item, s);
                    tp.pop();
                }
                pp.pop();
            }
        }
        _ => s.insert(pp),
    }
}

/// The difference between two objects.
#[derive(Debug, Default, Clone)]
pub struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

impl Comparison {
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
    /// Drops everything at or below members of `ignored`.
    pub fn filter(&self, ignored: &Set) -> Comparison {
        Comparison {
            added: self.added.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            removed: self.removed.recursive_difference(ignored),
        }
    }
}

/// Compares `l` (old) with `r` (new).
pub fn compare(kind: &str, l: &Value, r: &Value) -> Comparison {
    let mut c = Comparison::default();
    cmp(
        kind,
        &mut Vec::new(),
        &mut Vec::new(),
        Some(l),
        Some(r),
        &mut c,
    );
    c
}

fn is_obj(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Object(_)))
}
fn is_arr(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Array(_)))
}
fn nullish(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

fn index_items(a: Option<&Value>, lk: ListKind) -> Vec<(PathElement, &Value)> {
    a.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|i| item_element(i, lk).map(|pe| (pe, i)))
                .collect()
        })
        .unwrap_or_default()
}

fn cmp(
    kind: &str,
    tp: &mut Vec<String>,
    pp: &mut Path,
    l: Option<&Value>,
    r: Option<&Value>,
    c: &mut Comparison,
) {
    let walk_map = (is_obj(l) || is_obj(r))
        && (is_obj(l) || nullish(l))
        && (is_obj(r) || nullish(r))
        && (pp.is_empty() || !map_atomic(kind, &tp_ref(tp)));
    let lk = if is_arr(l) || is_arr(r) {
        list_kind(kind, &tp_ref(tp))
    } else {
        ListKind::Atomic
    };
    let walk_list = (is_arr(l) || is_arr(r))
        && (is_arr(l) || nullish(l))
        && (is_arr(r) || nullish(r))
        && lk != ListKind::Atomic;
    if walk_map {
        let lm = l.and_then(|v| v.as_object());
        let rm = r.and_then(|v| v.as_object());
        let mut keys: Vec<&String> = lm.map(|m| m.keys().collect()).unwrap_or_default();
        if let Some(rm) = rm {
            for k in rm.keys() {
                if !lm.is_some_and(|m| m.contains_key(k)) {
                    keys.push(k);
                }
            }
        }
        for k in keys {
            tp.push(k.clone());
            pp.push(PathElement::Field(k.clone()));
            cmp(
                kind,
                tp,
                pp,
                lm.and_then(|m| m.get(k)),
                rm.and_then(|m| m.get(k)),
                c,
            );
            tp.pop();
            pp.pop();
        }
        post(pp, l, r, c);
    } else if walk_list {
        let li = index_items(l, lk);
        let ri = index_items(r, lk);
        let rmap: BTreeMap<&PathElement, &Value> = ri.iter().map(|(k, v)| (k, *v)).collect();
        let lmap: BTreeMap<&PathElement, &Value> = li.iter().map(|(k, v)| (k, *v)).collect();
        let mut order: Vec<&PathElement> = li.iter().map(|(k, _)| k).collect();
        for (k, _) in &ri {
            if !lmap.contains_key(k) {
                order.push(k);
            }
        }
        for pe in order {
            pp.push(pe.clone());
            if matches!(lk, ListKind::Map(_)) {
                tp.push("[]".into());
            }
            cmp(
                kind,
                tp,
                pp,
                lmap.get(pe).copied(),
                rmap.get(pe).copied(),
                c,
            );
            if matches!(lk, ListKind::Map(_)) {
                tp.pop();
            }
            pp.pop();
        }
        post(pp, l, r, c);
    } else {
        match (l, r) {
            (None, Some(_)) => c.added.insert(pp),
            (Some(_), None) => c.removed.insert(pp),
            (Some(a), Some(b)) if a != b => c.modified.insert(pp),
            _ => {}
        }
    }
}

fn post(pp: &Path, l: Option<&Value>, r: Option<&Value>, c: &mut Comparison) {
    if pp.is_empty() {
        return;
    }
    if l.is_none() {
        c.added.insert(pp);
    } else if r.is_none() {
        c.removed.insert(pp);
    }
}

/// The apply merge: `r` (configuration) over `l` (live).
pub fn merge(kind: &str, l: &Value, r: &Value) -> Value {
    mrg(kind, &mut Vec::new(), l, r, true)
}

fn mrg(kind: &str, tp: &mut Vec<String>, l: &Value, r: &Value, root: bool) -> Value {
    match (l, r) {
        (Value::Object(lm), Value::Object(rm)) if root || !map_atomic(kind, &tp_ref(tp)) => {
            let mut out = Map::new();
            for (k, lv) in lm {
                match rm.get(k) {
                    Some(rv) => {
                        tp.push(k.clone());
                        out.insert(k.clone(), mrg(kind, tp, lv, rv, false));
                        tp.pop();
                    }
                    None => {
                        out.insert(k.clone(), lv.clone());
                    }
                }
            }
            for (k, rv) in rm {
                if !lm.contains_key(k) {
                    out.insert(k.clone(), rv.clone());
                }
            }
            Value::Object(out)
        }
        (Value::Array(la), Value::Array(ra)) => {
            let lk = list_kind(kind, &tp_ref(tp));
            if lk == ListKind::Atomic {
                return r.clone();
            }
            let rpos: BTreeMap<PathElement, usize> = ra
                .iter()
                .enumerate()
                .filter_map(|(i, x)| item_element(x, lk).map(|pe| (pe, i)))
                .collect();
            let lby: BTreeMap<PathElement, &Value> = la
                .iter()
                .filter_map(|x| item_element(x, lk).map(|pe| (pe, x)))
                .collect();
            let mut out = Vec::new();
            let mut ri = 0usize;
            let emit_r =
                |upto: usize, out: &mut Vec<Value>, ri: &mut usize, tp: &mut Vec<String>| {
                    while *ri <= upto && *ri < ra.len() {
                        let rv = &ra[*ri];
                        let merged = match item_element(rv, lk).and_then(|pe| lby.get(&pe).copied())
                        {
                            Some(lv) if matches!(lk, ListKind::Map(_)) => {
                                tp.push("[]".into());
                                let m = mrg(kind, tp, lv, rv, false);
                                tp.pop();
                                m
                            }
                            _ => rv.clone(),
                        };
                        out.push(merged);
                        *ri += 1;
                    }
                };
            for lv in la {
                match item_element(lv, lk).and_then(|pe| rpos.get(&pe).copied()) {
                    None => out.push(lv.clone()),
                    Some(pos) => emit_r(pos, &mut out, &mut ri, tp),
                }
            }
            emit_r(usize::MAX - 1, &mut out, &mut ri, tp);
            Value::Array(out)
        }
        _ => r.clone(),
    }
}

fn item_matches(item: &Value, pe: &PathElement) -> bool {
    match pe {
        PathElement::Key(k) => {
            let want: Value = serde_json::from_str(k).unwrap_or(Value::Null);
            let keys: Vec<&str> = want
                .as_object()
                .map(|m| m.keys().map(|k| k.as_str()).collect())
                .unwrap_or_default();
            key_element(item, &keys) == *pe
        }
        PathElement::Value(v) => canonical_json(item) == *v,
        _ => false,
    }
}

/// Resolves a path to a value.
pub fn get_at<'a>(v: &'a Value, p: &[PathElement]) -> Option<&'a Value> {
    let mut cur = v;
    for pe in p {
        cur = match pe {
            PathElement::Field(f) => cur.get(f)?,
            PathElement::Index(i) => cur.get(*i)?,
            other => cur.as_array()?.iter().find(|i| item_matches(i, other))?,
        };
    }
    Some(cur)
}

/// Removes the field or list item at `p`; true if something was removed.
pub fn remove_at(v: &mut Value, p: &[PathElement]) -> bool {
    let Some((last, parents)) = p.split_last() else {
        return false;
    };
    let mut cur = v;
    for pe in parents {
        let next = match pe {
            PathElement::Field(f) => cur.get_mut(f),
            PathElement::Index(i) => cur.get_mut(*i),
            other => cur
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| item_matches(i, other))),
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match last {
        PathElement::Field(f) => cur.as_object_mut().and_then(|m| m.remove(f)).is_some(),
        PathElement::Index(i) => match cur.as_array_mut() {
            Some(a) if *i < a.len() => {
                a.remove(*i);
                true
            }
            _ => false,
        },
        other => match cur.as_array_mut() {
            Some(a) => {
                let before = a.len();
                a.retain(|i| !item_matches(i, other));
                a.len() != before
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::managed::fieldset::f;
    use serde_json::json;

    #[test]
    fn field_set_of_applied_deployment_matches_transcript() {
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"app": "d"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
              "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "web", "image": "i", "ports": [{"containerPort": 8000}]}]}}}});
        let s = to_field_set("Deployment", &cfg);
        let v1 = s.to_fields_v1();
        assert_eq!(v1["f:spec"]["f:selector"], json!({}));
        assert_eq!(
            v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:ports"],
            json!({"k:{\"containerPort\":8000,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}})
        );
        assert_eq!(v1["f:metadata"]["f:labels"], json!({"f:app": {}}));
    }

    #[test]
    fn compare_marks_new_maps_but_not_null_lists() {
        let empty = crate::managed::schema::empty_object("Pod");
        let pod = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 1, "protocol": "TCP"}]}]}, "status": {}});
        let c = compare("Pod", &empty, &pod);
        let added = c.added.to_fields_v1();
        assert_eq!(added["f:metadata"]["f:labels"], json!({".": {}, "f:a": {}}));
        assert!(added["f:spec"]["f:containers"].get(".").is_none());
        assert!(
            added["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:ports"]
                .get(".")
                .is_some()
        );
    }

    #[test]
    fn merge_keeps_live_fields_and_lists_by_key() {
        let live = json!({"spec": {"replicas": 3, "containers": [{"name": "a", "image": "1", "x": 1}, {"name": "b", "image": "2"}]}});
        let cfg = json!({"spec": {"containers": [{"name": "b", "image": "3"}]}});
        let m = merge("Pod", &live, &cfg);
        assert_eq!(m["spec"]["replicas"], 3);
        assert_eq!(m["spec"]["containers"][0]["name"], "a");
        assert_eq!(m["spec"]["containers"][1]["image"], "3");
    }

    #[test]
    fn removes_keyed_items() {
        let mut v = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert!(remove_at(
            &mut v,
            &[
                f("spec"),
                f("containers"),
                PathElement::Key(r#"{"name":"a"}"#.into())
            ]
        ));
        assert_eq!(v, json!({"spec": {"containers": [{"name": "b"}]}}));
    }
}
