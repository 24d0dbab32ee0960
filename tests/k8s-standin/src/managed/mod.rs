//! Field management (`metadata.managedFields`) and server-side apply, following
//! structured-merge-diff as the 1.24 API server runs it: Update operations take
//! the fields they change, Apply operations own exactly what they send, prune
//! what they stopped sending, and conflict with other owners unless forced.

pub mod fieldset;
pub mod ops;
pub mod schema;

use serde_json::{Value, json};

use crate::status::FieldConflict;
use fieldset::{Set, display_path, f};
use ops::{compare, get_at, merge, remove_at, to_field_set};

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    /// "Apply" or "Update".
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub set: Set,
}

impl Entry {
    fn same_key(&self, o: &Entry) -> bool {
        self.manager == o.manager
            && self.operation == o.operation
            && self.subresource == o.subresource
            && (self.operation == "Apply" || self.api_version == o.api_version)
    }

    /// How conflict messages name this manager.
    pub fn describe(&self) -> String {
        let mut s = format!("\"{}\"", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource \"{}\"", self.subresource);
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// All managers of an object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Managers(pub Vec<Entry>);

impl Managers {
    /// Reads `metadata.managedFields`.
    pub fn decode(obj: &Value) -> Managers {
        let mut out = Vec::new();
        if let Some(a) = obj
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
            .and_then(|m| m.as_array())
        {
            for e in a {
                out.push(Entry {
                    manager: e["manager"].as_str().unwrap_or("").to_string(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or("").to_string(),
                    time: e["time"].as_str().unwrap_or("").to_string(),
                    subresource: e["subresource"].as_str().unwrap_or("").to_string(),
                    set: Set::from_fields_v1(&e["fieldsV1"]),
                });
            }
        }
        Managers(out)
    }

    /// Writes `metadata.managedFields` (sorted as the server sorts them), or
    /// removes it when there are no managers.
    pub fn encode_into(&self, obj: &mut Value) {
        let mut entries: Vec<&Entry> = self.0.iter().filter(|e| !e.set.is_empty()).collect();
        entries.sort_by(|a, b| {
            a.operation
                .cmp(&b.operation)
                .then(a.time.cmp(&b.time))
                .then(a.manager.cmp(&b.manager))
                .then(a.api_version.cmp(&b.api_version))
                .then(a.subresource.cmp(&b.subresource))
        });
        let arr: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut v = json!({
                    "manager": e.manager,
                    "operation": e.operation,
                    "apiVersion": e.api_version,
                    "time": e.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": e.set.to_fields_v1(),
                });
                if !e.subresource.is_empty() {
                    v["subresource"] = json!(e.subresource);
                }
                v
            })
            .collect();
        if let Some(m) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            if arr.is_empty() {
                m.remove("managedFields");
            } else {
                m.insert("managedFields".into(), Value::Array(arr));
            }
        }
    }

    fn find(&self, key: &Entry) -> Option<usize> {
        self.0.iter().position(|e| e.same_key(key))
    }

    fn drop_empty(&mut self) {
        self.0.retain(|e| !e.set.is_empty());
    }
}

/// Fields never tracked (stripMetaManager).
fn strip_set() -> Set {
    let mut s = Set::new();
    s.insert(&[f("apiVersion")]);
    s.insert(&[f("kind")]);
    s.insert(&[f("metadata")]);
    for k in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        s.insert(&[f("metadata"), f(k)]);
    }
    s
}

/// Fields an endpoint resets (and so never tracks): `status` on the main
/// resource, `spec` and labels on `/status`, for kinds with a status subresource.
pub fn ignored_fields(has_status: bool, subresource: &str) -> Set {
    let mut s = Set::new();
    if !has_status {
        return s;
    }
    if subresource == "status" {
        s.insert(&[f("spec")]);
        s.insert(&[f("metadata"), f("labels")]);
    } else {
        s.insert(&[f("status")]);
    }
    s
}

fn without_managed(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("managedFields");
    }
    v
}

/// Identity of the writer of an operation.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: &'a str,
    pub now: &'a str,
}

/// An Update operation (create, PUT, non-apply PATCH): `new` replaces `old`;
/// the writer takes the fields it changed. Returns the new managers.
pub fn update(
    kind: &str,
    old: &Value,
    new: &Value,
    managers: &Managers,
    w: &Writer,
    ignored: &Set,
) -> Managers {
    let old = without_managed(old);
    let new = without_managed(new);
    let c = compare(kind, &old, &new).filter(ignored);
    let changed = c.added.union(&c.modified);
    let mut out = managers.clone();
    for e in out.0.iter_mut() {
        e.set = e.set.difference(&changed).difference(&c.removed);
    }
    let op_set = changed.difference(&strip_set());
    if !op_set.is_empty() {
        let key = Entry {
            manager: w.manager.to_string(),
            operation: "Update".into(),
            api_version: w.api_version.to_string(),
            time: w.now.to_string(),
            subresource: w.subresource.to_string(),
            set: op_set.clone(),
        };
        match out.find(&key) {
            Some(i) => {
                out.0[i].set = out.0[i].set.union(&op_set);
                out.0[i].time = w.now.to_string();
            }
            None => out.0.push(key),
        }
    }
    out.drop_empty();
    out
}

/// Result of an apply.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The merged object (not yet defaulted), managedFields not set.
    pub object: Value,
    pub managers: Managers,
}

/// Server-side apply of `config` onto `live`.
pub fn apply(
    kind: &str,
    live: &Value,
    config: &Value,
    managers: &Managers,
    w: &Writer,
    force: bool,
    ignored: &Set,
) -> Result<Applied, Vec<FieldConflict>> {
    let live = without_managed(live);
    let mut managers = managers.clone();
    let key = Entry {
        manager: w.manager.to_string(),
        operation: "Apply".into(),
        api_version: w.api_version.to_string(),
        time: w.now.to_string(),
        subresource: w.subresource.to_string(),
        set: Set::new(),
    };
    let own = managers.find(&key);
    let last_set = own.map(|i| managers.0[i].set.clone()).unwrap_or_default();
    let new_set = to_field_set(kind, &without_managed(config))
        .recursive_difference(ignored)
        .difference(&strip_set());

    let mut merged = merge(kind, &live, &without_managed(config));

    // Prune what this manager applied before, dropped now, and nobody else owns.
    let others: Set = managers
        .0
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != own)
        .fold(Set::new(), |acc, (_, e)| acc.union(&e.set));
    let owned_now = others.union(&new_set);
    let removable: Vec<fieldset::Path> = last_set
        .difference(&new_set)
        .paths()
        .into_iter()
        .filter(|p| !owned_now.has_prefix(p))
        .collect();
    // Remove only the top-most paths: a removed list item takes its fields
    // (including its key fields) with it.
    let mut to_remove: Vec<fieldset::Path> = removable
        .iter()
        .filter(|p| {
            !removable
                .iter()
                .any(|q| q.len() < p.len() && p.starts_with(q))
        })
        .cloned()
        .collect();
    to_remove.reverse();
    for p in to_remove {
        if remove_at(&mut merged, &p) {
            // Drop maps the removal left empty, unless someone owns them.
            let mut parent = p.clone();
            while parent.len() > 1 {
                parent.pop();
                // Go omits empty maps and slices (omitempty), so they go too.
                let empty = get_at(&merged, &parent).is_some_and(|v| {
                    v.as_object().is_some_and(|m| m.is_empty())
                        || v.as_array().is_some_and(|a| a.is_empty())
                });
                if !empty
                    || owned_now.contains(&parent)
                    || !matches!(parent.last(), Some(fieldset::PathElement::Field(_)))
                {
                    break;
                }
                remove_at(&mut merged, &parent);
            }
        }
    }

    // Conflicts: fields others own that this apply changes.
    let c = compare(kind, &live, &merged).filter(ignored);
    let changed = c.added.union(&c.modified);
    let mut conflicts = Vec::new();
    for (i, e) in managers.0.iter().enumerate() {
        if Some(i) == own {
            continue;
        }
        let hit = e.set.intersection(&changed);
        for p in hit.paths() {
            conflicts.push(FieldConflict {
                manager: e.describe(),
                field: display_path(&p),
            });
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(conflicts);
    }
    for (i, e) in managers.0.iter_mut().enumerate() {
        if Some(i) == own {
            continue;
        }
        e.set = e.set.difference(&changed).difference(&c.removed);
    }
    match own {
        Some(i) => {
            managers.0[i].set = new_set;
            managers.0[i].api_version = w.api_version.to_string();
        }
        None => managers.0.push(Entry {
            set: new_set,
            ..key
        }),
    }
    managers.drop_empty();
    Ok(Applied {
        object: merged,
        managers,
    })
}

/// Sets the time of the applying manager's entry (called when the apply changed the object).
pub fn touch(
    managers: &mut Managers,
    manager: &str,
    operation: &str,
    subresource: &str,
    now: &str,
) {
    for e in managers.0.iter_mut() {
        if e.manager == manager && e.operation == operation && e.subresource == subresource {
            e.time = now.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w<'a>(m: &'a str) -> Writer<'a> {
        Writer {
            manager: m,
            api_version: "apps/v1",
            subresource: "",
            now: "2026-01-01T00:00:00Z",
        }
    }

    #[test]
    fn update_takes_changed_fields_from_applier() {
        let ign = ignored_fields(true, "");
        let live = json!({"metadata": {"name": "d"}, "spec": {"replicas": 1}});
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}});
        let a = apply(
            "Deployment",
            &live,
            &cfg,
            &Managers::default(),
            &w("todo"),
            false,
            &ign,
        )
        .expect("apply");
        let mut edited = a.object.clone();
        edited["spec"]["replicas"] = json!(3);
        let m = update(
            "Deployment",
            &a.object,
            &edited,
            &a.managers,
            &w("kubectl-edit"),
            &ign,
        );
        assert_eq!(m.0.len(), 1, "the applier lost its only field");
        assert_eq!(m.0[0].manager, "kubectl-edit");
        let cfg2 = json!({"spec": {"replicas": 2}});
        let err =
            apply("Deployment", &edited, &cfg2, &m, &w("todo"), false, &ign).expect_err("conflict");
        assert_eq!(err[0].field, ".spec.replicas");
        assert_eq!(err[0].manager, "\"kubectl-edit\" using apps/v1");
        let forced =
            apply("Deployment", &edited, &cfg2, &m, &w("todo"), true, &ign).expect("force");
        assert_eq!(forced.managers.0.len(), 1);
        assert_eq!(forced.object["spec"]["replicas"], 2);
    }

    #[test]
    fn apply_prunes_dropped_list_items() {
        let ign = ignored_fields(true, "");
        let c = |env: Value| json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "i", "env": env}]}}}});
        let a = apply(
            "Deployment",
            &json!({}),
            &c(json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])),
            &Managers::default(),
            &w("t"),
            false,
            &ign,
        )
        .expect("apply");
        let b = apply(
            "Deployment",
            &a.object,
            &c(json!([{"name": "B", "value": "2"}])),
            &a.managers,
            &w("t"),
            false,
            &ign,
        )
        .expect("apply");
        assert_eq!(
            b.object["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name": "B", "value": "2"}])
        );
        let cfg = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "i"}]}}}});
        let d = apply(
            "Deployment",
            &b.object,
            &cfg,
            &b.managers,
            &w("t"),
            false,
            &ign,
        )
        .expect("apply");
        assert!(
            d.object["spec"]["template"]["spec"]["containers"][0]
                .get("env")
                .is_none(),
            "an emptied list is omitted"
        );
    }

    #[test]
    fn apply_prunes_dropped_fields() {
        let ign = ignored_fields(true, "");
        let cfg = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let a = apply(
            "Deployment",
            &json!({"metadata": {}}),
            &cfg,
            &Managers::default(),
            &w("t"),
            false,
            &ign,
        )
        .expect("apply");
        let cfg2 = json!({"metadata": {"labels": {"a": "1"}}});
        let b = apply(
            "Deployment",
            &a.object,
            &cfg2,
            &a.managers,
            &w("t"),
            false,
            &ign,
        )
        .expect("apply");
        assert_eq!(b.object["metadata"]["labels"], json!({"a": "1"}));
    }
}
