//! The non-apply PATCH flavours: JSON merge patch (RFC 7386), strategic merge
//! patch (lists merged by their patch merge keys, `$patch` directives) and
//! JSON patch (RFC 6902).

use serde_json::{Map, Value};

use crate::managed::schema::{ListKind, list_kind};
use crate::status::{ApiError, ApiResult, bad_request};

/// RFC 7386 merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(pm) => {
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => Map::new(),
            };
            for (k, v) in pm {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Strategic merge patch for built-in kinds.
pub fn strategic_merge_patch(kind: &str, target: &Value, patch: &Value) -> ApiResult<Value> {
    Ok(smp(kind, &mut Vec::new(), target, patch))
}

fn smp(kind: &str, tp: &mut Vec<String>, target: &Value, patch: &Value) -> Value {
    let Value::Object(pm) = patch else {
        return patch.clone();
    };
    if pm.get("$patch").and_then(|p| p.as_str()) == Some("replace") {
        let mut p = pm.clone();
        p.remove("$patch");
        return Value::Object(p);
    }
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (k, v) in pm {
        if k.starts_with('$') {
            continue;
        }
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            let _ = field;
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(cur)), Value::Array(del)) = (out.get(field).cloned(), v) {
                let kept: Vec<Value> = cur.into_iter().filter(|x| !del.contains(x)).collect();
                out.insert(field.to_string(), Value::Array(kept));
            }
            continue;
        }
        if v.is_null() {
            out.remove(k);
            continue;
        }
        tp.push(k.clone());
        let cur = out.get(k).cloned().unwrap_or(Value::Null);
        let merged = match (v, &cur) {
            (Value::Array(pa), _) => {
                let refs: Vec<&str> = tp.iter().map(|s| s.as_str()).collect();
                match list_kind(kind, &refs) {
                    ListKind::Map(keys) => {
                        let merge_key = keys[0];
                        let mut items: Vec<Value> = cur.as_array().cloned().unwrap_or_default();
                        for pi in pa {
                            let directive = pi.get("$patch").and_then(|d| d.as_str());
                            let kv = pi.get(merge_key);
                            let pos = items.iter().position(|i| i.get(merge_key) == kv);
                            match (directive, pos) {
                                (Some("delete"), Some(p)) => {
                                    items.remove(p);
                                }
                                (Some("delete"), None) => {}
                                (_, Some(p)) => {
                                    tp.push("[]".into());
                                    items[p] = smp(kind, tp, &items[p], pi);
                                    tp.pop();
                                }
                                (_, None) => {
                                    tp.push("[]".into());
                                    items.push(smp(kind, tp, &Value::Null, pi));
                                    tp.pop();
                                }
                            }
                        }
                        Value::Array(items)
                    }
                    ListKind::Set => {
                        let mut items: Vec<Value> = cur.as_array().cloned().unwrap_or_default();
                        for pi in pa {
                            if !items.contains(pi) {
                                items.push(pi.clone());
                            }
                        }
                        Value::Array(items)
                    }
                    ListKind::Atomic => v.clone(),
                }
            }
            (Value::Object(_), _) => smp(kind, tp, &cur, v),
            _ => v.clone(),
        };
        tp.pop();
        out.insert(k.clone(), merged);
    }
    Value::Object(out)
}

fn unescape(tok: &str) -> String {
    tok.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(p: &str) -> ApiResult<Vec<String>> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(bad_request(format!("invalid JSON pointer: {p}")));
    };
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(doc: &'a mut Value, toks: &[String]) -> ApiResult<&'a mut Value> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(t)
                .ok_or_else(|| json_patch_err(format!("missing path: {t}")))?,
            Value::Array(a) => {
                let i: usize = t
                    .parse()
                    .map_err(|_| json_patch_err(format!("bad index {t}")))?;
                a.get_mut(i)
                    .ok_or_else(|| json_patch_err(format!("index out of range {i}")))?
            }
            _ => return Err(json_patch_err("path through a scalar".into())),
        };
    }
    Ok(cur)
}

fn json_patch_err(msg: String) -> ApiError {
    ApiError {
        code: 422,
        body: serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": msg, "reason": "Invalid", "code": 422
        }),
    }
}

fn add(doc: &mut Value, path: &str, val: Value) -> ApiResult<()> {
    let toks = split_pointer(path)?;
    let Some((last, parents)) = toks.split_last() else {
        *doc = val;
        return Ok(());
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => {
            m.insert(last.clone(), val);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(val);
            } else {
                let i: usize = last
                    .parse()
                    .map_err(|_| json_patch_err(format!("bad index {last}")))?;
                if i > a.len() {
                    return Err(json_patch_err(format!("index out of range {i}")));
                }
                a.insert(i, val);
            }
        }
        _ => return Err(json_patch_err("add to a scalar".into())),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> ApiResult<Value> {
    let toks = split_pointer(path)?;
    let Some((last, parents)) = toks.split_last() else {
        return Err(json_patch_err("cannot remove the root".into()));
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => m.remove(last).ok_or_else(|| {
            json_patch_err(format!(
                "unable to remove nonexistent key: {last}: missing value"
            ))
        }),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| json_patch_err(format!("bad index {last}")))?;
            if i >= a.len() {
                return Err(json_patch_err(format!("index out of range {i}")));
            }
            Ok(a.remove(i))
        }
        _ => Err(json_patch_err("remove from a scalar".into())),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &Value, ops: &Value) -> ApiResult<Value> {
    let Some(ops) = ops.as_array() else {
        return Err(bad_request("json patch must be an array of operations"));
    };
    let mut doc = target.clone();
    for op in ops {
        let path = op["path"].as_str().unwrap_or("");
        match op["op"].as_str().unwrap_or("") {
            "add" => add(&mut doc, path, op["value"].clone())?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path)?;
                add(&mut doc, path, op["value"].clone())?;
            }
            "move" => {
                let v = remove(&mut doc, op["from"].as_str().unwrap_or(""))?;
                add(&mut doc, path, v)?;
            }
            "copy" => {
                let v = doc
                    .pointer(op["from"].as_str().unwrap_or(""))
                    .cloned()
                    .ok_or_else(|| json_patch_err("copy from a missing path".into()))?;
                add(&mut doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&op["value"]) {
                    return Err(json_patch_err(format!("testing value {path} failed")));
                }
            }
            other => return Err(bad_request(format!("Unexpected kind: {other}"))),
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_basics() {
        let t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        assert_eq!(
            merge_patch(&t, &json!({"b": {"c": null, "e": 4}})),
            json!({"a": 1, "b": {"d": 3, "e": 4}})
        );
    }

    #[test]
    fn smp_merges_containers_by_name() {
        let t = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}}});
        let p =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "3"}]}}}});
        let r = strategic_merge_patch("Deployment", &t, &p).expect("smp");
        assert_eq!(r["spec"]["template"]["spec"]["containers"][0]["image"], "1");
        assert_eq!(r["spec"]["template"]["spec"]["containers"][1]["image"], "3");
    }

    #[test]
    fn json_patch_ops() {
        let t = json!({"spec": {"replicas": 1, "l": [1, 2]}});
        let r = json_patch(&t, &json!([{"op": "replace", "path": "/spec/replicas", "value": 5}, {"op": "add", "path": "/spec/l/-", "value": 3}, {"op": "remove", "path": "/spec/l/0"}])).expect("patch");
        assert_eq!(r, json!({"spec": {"replicas": 5, "l": [2, 3]}}));
    }
}
