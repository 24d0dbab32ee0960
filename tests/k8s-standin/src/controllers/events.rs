//! The event recorder the controllers and kubelet use: core/v1 Events named
//! `<object>.<hex nanos>`, aggregated into one object with `count` and
//! `lastTimestamp` when repeated (client-go's correlator), plus the
//! events.k8s.io-style events of the scheduler.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::api::{Api, Req};
use crate::managed::{Entry, Managers, fieldset::Set};
use crate::resources::by_kind;
use crate::util::{now_micro, now_rfc3339};

/// Who reports an event.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A controller-manager controller, e.g. "deployment-controller".
    Controller(&'a str),
    /// The kubelet on a node.
    Kubelet(&'a str),
}

/// Records events, remembering which object each repeated event aggregates into.
#[derive(Default)]
pub struct Recorder {
    seen: Mutex<HashMap<String, String>>,
}

fn involved(obj: &Value, field_path: Option<&str>) -> Value {
    let mut r = json!({
        "kind": obj["kind"],
        "namespace": obj.pointer("/metadata/namespace").cloned().unwrap_or(json!("")),
        "name": obj.pointer("/metadata/name").cloned().unwrap_or(json!("")),
        "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(json!("")),
        "apiVersion": obj["apiVersion"],
        "resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!("")),
    });
    if let Some(fp) = field_path {
        r["fieldPath"] = json!(fp);
    }
    r
}

fn event_name(obj: &Value) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{}.{:x}",
        obj.pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or(""),
        nanos
    )
}

impl Recorder {
    /// Records (or aggregates) a core/v1 event about `obj`.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        api: &Api,
        obj: &Value,
        etype: &str,
        reason: &str,
        message: &str,
        source: Source,
        field_path: Option<&str>,
    ) {
        let Some(events) = by_kind("Event") else {
            return;
        };
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(|n| n.as_str())
            .unwrap_or("default")
            .to_string();
        let (src, manager) = match source {
            Source::Controller(c) => (json!({"component": c}), "kube-controller-manager"),
            Source::Kubelet(h) => (json!({"component": "kubelet", "host": h}), "kubelet"),
        };
        let key = format!(
            "{}|{}|{}|{}|{}|{}",
            obj.pointer("/metadata/uid")
                .and_then(|u| u.as_str())
                .unwrap_or(""),
            field_path.unwrap_or(""),
            reason,
            message,
            etype,
            src
        );
        let now = now_rfc3339();
        let existing = self
            .seen
            .lock()
            .expect("recorder mutex poisoned")
            .get(&key)
            .cloned();
        if let Some(name) = existing {
            let r = api.modify(events, &ns, &name, &Req::by(manager), |live| {
                let mut e = live.clone();
                let c = e["count"].as_i64().unwrap_or(1);
                e["count"] = json!(c + 1);
                e["lastTimestamp"] = json!(now);
                Some(e)
            });
            if r.is_ok() {
                return;
            }
        }
        let name = event_name(obj);
        let ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved(obj, field_path),
            "reason": reason,
            "message": message,
            "source": src,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": etype,
            "eventTime": null,
            "reportingComponent": "",
            "reportingInstance": "",
        });
        if api.create(events, &ns, ev, &Req::by(manager)).is_ok() {
            self.seen
                .lock()
                .expect("recorder mutex poisoned")
                .insert(key, name);
        }
    }

    /// Records a scheduler event (written through events.k8s.io/v1, read as core/v1).
    pub fn record_scheduler(
        &self,
        api: &Api,
        pod: &Value,
        etype: &str,
        reason: &str,
        action: &str,
        message: &str,
    ) {
        let Some(events) = by_kind("Event") else {
            return;
        };
        let ns = pod
            .pointer("/metadata/namespace")
            .and_then(|n| n.as_str())
            .unwrap_or("default")
            .to_string();
        let key = format!(
            "sched|{}|{}|{}",
            pod.pointer("/metadata/uid")
                .and_then(|u| u.as_str())
                .unwrap_or(""),
            reason,
            message
        );
        if self
            .seen
            .lock()
            .expect("recorder mutex poisoned")
            .contains_key(&key)
        {
            return;
        }
        let name = event_name(pod);
        let ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved(pod, None),
            "reason": reason,
            "message": message,
            "source": {},
            "firstTimestamp": null,
            "lastTimestamp": null,
            "type": etype,
            "eventTime": now_micro(),
            "action": action,
            "reportingComponent": "default-scheduler",
            "reportingInstance": "default-scheduler-vm",
        });
        let mut set = Set::new();
        for f in [
            "action",
            "eventTime",
            "note",
            "reason",
            "regarding",
            "reportingController",
            "reportingInstance",
            "type",
        ] {
            set.insert(&[crate::managed::fieldset::f(f)]);
        }
        let managers = Managers(vec![Entry {
            manager: "kube-scheduler".into(),
            operation: "Update".into(),
            api_version: "events.k8s.io/v1".into(),
            time: now_rfc3339(),
            subresource: String::new(),
            set,
        }]);
        if api
            .create_with_managers(events, &ns, ev, &Req::by("kube-scheduler"), managers)
            .is_ok()
        {
            self.seen
                .lock()
                .expect("recorder mutex poisoned")
                .insert(key, name);
        }
    }
}
