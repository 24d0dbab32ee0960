//! Making another owner's fields ours, as `kubectl` does when it moves an object from
//! client-side to server-side apply: the `managedFields` entries of the previous owner's
//! managers (Helm's `Update`s, `kubectl-client-side-apply`, `before-first-apply`) are merged
//! into one `Apply` entry of ours, written over the object as it was read (its
//! `resourceVersion`). Our next apply then owns exactly what we render and removes the rest of
//! what they set and nobody else owns — Helm's labels and annotations, the `last-applied`
//! annotation, fields the chart set that we do not. Fields other managers changed stay theirs.

use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::{Map, Value, json};

use super::{AdoptError, AdoptEvent, Found, detect};
use crate::apply::{FIELD_MANAGER, Owner};
use crate::cluster::{self, Cluster};
use crate::progress::Events;

/// The manager the API server names for fields of an object that had no managed fields.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The `managedFields` after the transfer, and the managers whose fields moved; `None` when no
/// entry is the previous owner's.
pub fn transferred(
    entries: &[Value],
    owner: &Owner,
    api_version: &str,
    now: &str,
) -> Option<(Vec<Value>, Vec<String>)> {
    let moves = |entry: &Value| {
        let manager = entry["manager"].as_str().unwrap_or_default();
        let main = entry["subresource"].as_str().is_none_or(str::is_empty);
        let ours = manager == FIELD_MANAGER && entry["operation"] == "Apply";
        main && (ours || owner.manages_with(manager) || manager == BEFORE_FIRST_APPLY)
    };
    let mut moved: Vec<String> = entries
        .iter()
        .filter(|e| moves(e) && e["manager"] != FIELD_MANAGER)
        .filter_map(|e| e["manager"].as_str().map(str::to_owned))
        .collect();
    if moved.is_empty() {
        return None;
    }
    moved.dedup();
    let mut fields = Value::Object(Map::new());
    for entry in entries.iter().filter(|e| moves(e)) {
        union(&mut fields, &entry["fieldsV1"]);
    }
    let mut kept: Vec<Value> = entries.iter().filter(|e| !moves(e)).cloned().collect();
    kept.push(json!({
        "manager": FIELD_MANAGER,
        "operation": "Apply",
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }));
    Some((kept, moved))
}

/// Adds every path of the `fieldsV1` tree `more` to `into`.
fn union(into: &mut Value, more: &Value) {
    let (Some(into), Some(more)) = (into.as_object_mut(), more.as_object()) else {
        return;
    };
    for (key, value) in more {
        let slot = into
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        union(slot, value);
    }
}

/// Makes the previous owner's fields of `live` ours (see the module). Says which managers' fields
/// moved; nothing is written when none of its entries is the previous owner's.
pub async fn take_fields(
    cluster: &Cluster,
    namespace: &str,
    found: &Found,
    live: &DynamicObject,
    events: &Events,
) -> Result<(), AdoptError> {
    let entries = serde_json::to_value(live.metadata.managed_fields.clone().unwrap_or_default())
        .unwrap_or_default();
    let api_version = found.key.kind.resource().api_version;
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let Some((entries, managers)) = transferred(
        entries.as_array().map(Vec::as_slice).unwrap_or_default(),
        &found.owner,
        &api_version,
        &now.to_string(),
    ) else {
        return Ok(());
    };
    let patch = json!({"metadata": {
        "resourceVersion": live.metadata.resource_version,
        "managedFields": entries,
    }});
    let api = detect::api(cluster, namespace, found.key.kind);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let patch = Patch::Merge(&patch);
    cluster::retrying(events, &format!("take over {}", found.key), || {
        api.patch(&found.key.name, &params, &patch)
    })
    .await
    .map_err(|source| AdoptError::Api {
        action: "take over the fields of",
        object: found.key.to_string(),
        source,
    })?;
    events.send(AdoptEvent::FieldsTaken {
        key: found.key.clone(),
        managers,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Value> {
        vec![
            json!({"manager": "helm", "operation": "Update", "apiVersion": "v1", "time": "t0", "fieldsType": "FieldsV1",
                   "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:helm.sh/chart": {}, "f:app": {}}}, "f:spec": {"f:selector": {}}}}),
            json!({"manager": "helm", "operation": "Update", "apiVersion": "v1", "time": "t1", "fieldsType": "FieldsV1",
                   "fieldsV1": {"f:spec": {"f:ports": {}}}}),
            json!({"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1", "time": "t2", "fieldsType": "FieldsV1",
                   "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}}}),
            json!({"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "subresource": "status",
                   "time": "t3", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}),
        ]
    }

    #[test]
    fn the_previous_owners_entries_become_one_apply_entry_of_ours() {
        let helm = Owner::Helm {
            release: Some("todo-app".into()),
        };
        let (after, moved) = transferred(&entries(), &helm, "v1", "now").expect("a transfer");
        assert_eq!(moved, ["helm"]);
        let managers: Vec<&str> = after.iter().filter_map(|e| e["manager"].as_str()).collect();
        assert_eq!(
            managers,
            ["kubectl-edit", "kube-controller-manager", "todo-deploy"]
        );
        let ours = &after[2];
        assert_eq!(ours["operation"], "Apply");
        assert_eq!(
            ours["fieldsV1"],
            json!({"f:metadata": {"f:labels": {".": {}, "f:helm.sh/chart": {}, "f:app": {}}}, "f:spec": {"f:selector": {}, "f:ports": {}}}),
            "the union of Helm's fields, not the edit's or the status writer's"
        );
    }

    #[test]
    fn an_apply_entry_of_ours_is_merged_with_them() {
        let mut with_ours = entries();
        with_ours.push(
            json!({"manager": "todo-deploy", "operation": "Apply", "apiVersion": "v1", "time": "t",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:A": {}}}}),
        );
        let helm = Owner::Helm { release: None };
        let (after, _) = transferred(&with_ours, &helm, "v1", "now").expect("a transfer");
        let ours: Vec<&Value> = after
            .iter()
            .filter(|e| e["manager"] == "todo-deploy")
            .collect();
        assert_eq!(ours.len(), 1);
        assert!(ours[0]["fieldsV1"]["f:data"]["f:A"].is_object());
        assert!(ours[0]["fieldsV1"]["f:spec"]["f:ports"].is_object());
    }

    #[test]
    fn nothing_moves_when_the_owner_has_no_entry() {
        assert_eq!(
            transferred(&entries(), &Owner::KubectlApply, "v1", "now"),
            None
        );
    }
}
