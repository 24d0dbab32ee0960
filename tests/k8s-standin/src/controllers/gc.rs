//! The garbage collector for ownerReferences: removes dependents whose owners
//! are gone (background), deletes blocking dependents of owners deleted in the
//! foreground and drops the `foregroundDeletion` finalizer once they are gone,
//! and orphans dependents of owners deleted with the `orphan` finalizer.

use std::collections::HashSet;

use serde_json::Value;

use super::{Env, meta};
use crate::api::{DeleteOpts, Req};
use crate::resources::Resource;

fn finalizers(v: &Value) -> Vec<&str> {
    v.pointer("/metadata/finalizers")
        .and_then(|f| f.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default()
}

fn deleting(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null())
}

fn owner_refs(v: &Value) -> Vec<&Value> {
    v.pointer("/metadata/ownerReferences")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn policy_for(v: &Value) -> &'static str {
    let f = finalizers(v);
    if f.contains(&"orphan") {
        "Orphan"
    } else if f.contains(&"foregroundDeletion") {
        "Foreground"
    } else {
        "Background"
    }
}

/// One pass over every object.
pub fn sync(env: &Env) {
    let all = env.api.snapshot();
    let uids: HashSet<&str> = all.iter().map(|(_, v)| meta(v, "uid")).collect();
    let dependents_of = |uid: &str| -> Vec<&(&'static Resource, Value)> {
        all.iter()
            .filter(|(_, v)| owner_refs(v).iter().any(|r| r["uid"] == uid))
            .collect()
    };
    let delete = |res: &'static Resource, v: &Value, policy: &str| {
        let _ = env.api.delete(
            res,
            meta(v, "namespace"),
            meta(v, "name"),
            &DeleteOpts {
                propagation: Some(policy.to_string()),
                ..DeleteOpts::default()
            },
        );
    };
    for (res, obj) in &all {
        if !deleting(obj) {
            continue;
        }
        let uid = meta(obj, "uid");
        let fins = finalizers(obj);
        if fins.contains(&"foregroundDeletion") {
            let deps = dependents_of(uid);
            let mut blocking = 0;
            for (dres, dep) in &deps {
                let blocks = owner_refs(dep)
                    .iter()
                    .any(|r| r["uid"] == uid && r["blockOwnerDeletion"] == true);
                if !blocks {
                    continue;
                }
                blocking += 1;
                if !deleting(dep) {
                    let policy = if dependents_of(meta(dep, "uid")).is_empty() {
                        "Background"
                    } else {
                        "Foreground"
                    };
                    delete(dres, dep, policy);
                }
            }
            if blocking == 0 {
                let _ = env.api.remove_finalizer(
                    res,
                    meta(obj, "namespace"),
                    meta(obj, "name"),
                    "foregroundDeletion",
                );
            }
        } else if fins.contains(&"orphan") {
            for (dres, dep) in dependents_of(uid) {
                let _ = env.api.modify(
                    dres,
                    meta(dep, "namespace"),
                    meta(dep, "name"),
                    &Req::by("kube-controller-manager"),
                    |live| {
                        let mut n = live.clone();
                        if let Some(a) = n
                            .pointer_mut("/metadata/ownerReferences")
                            .and_then(|a| a.as_array_mut())
                        {
                            a.retain(|r| r["uid"] != uid);
                            if a.is_empty()
                                && let Some(m) = n["metadata"].as_object_mut()
                            {
                                m.remove("ownerReferences");
                            }
                        }
                        Some(n)
                    },
                );
            }
            let _ =
                env.api
                    .remove_finalizer(res, meta(obj, "namespace"), meta(obj, "name"), "orphan");
        }
    }
    // Dependents whose owners are all gone.
    for (res, obj) in &all {
        let refs = owner_refs(obj);
        if refs.is_empty() || deleting(obj) {
            continue;
        }
        if refs
            .iter()
            .all(|r| !uids.contains(r["uid"].as_str().unwrap_or("")))
        {
            delete(res, obj, policy_for(obj));
        }
    }
}
