//! The event recorder the controllers and kubelet use: core/v1 Events named
//! `<object>.<hex nanos>`, aggregated into one object with `count` and
//! `lastTimestamp` when repeated, and dropped by client-go's spam filter once
//! a source has reported 25 events about one object (one more per 5 minutes),
//! as the transcripts' failing pods show (their kubelet events stop at 25);
//! plus the events.k8s.io-style events of the scheduler, which that filter
//! does not see.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{Api, Req};
use crate::managed::{Entry, Managers, fieldset::Set};
use crate::resources::by_kind;
use crate::util::{TimeScale, now_micro, now_rfc3339};

/// client-go's `EventSourceObjectSpamFilter`: a token bucket per (source, object),
/// burst 25, refilled at 1/300 per (simulated) second.
const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL_EVERY: Duration = Duration::from_secs(300);

/// One (source, involved object)'s token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(at: Instant) -> Bucket {
        Bucket {
            tokens: SPAM_BURST,
            at,
        }
    }

    /// Takes a token at `now` if one is there; `refill` is the real duration
    /// in which one token comes back (the scaled 300 s).
    fn try_take(&mut self, now: Instant, refill: Duration) -> bool {
        let elapsed = now.saturating_duration_since(self.at);
        let gained = if refill.is_zero() {
            SPAM_BURST
        } else {
            elapsed.as_secs_f64() / refill.as_secs_f64()
        };
        self.tokens = (self.tokens + gained).min(SPAM_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Who reports an event.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A controller-manager controller, e.g. "deployment-controller".
    Controller(&'a str),
    /// The kubelet on a node.
    Kubelet(&'a str),
}

/// Records events, remembering which object each repeated event aggregates into
/// and how many events each source may still report about each object.
pub struct Recorder {
    seen: Mutex<HashMap<String, String>>,
    spam: Mutex<HashMap<String, Bucket>>,
    clock: TimeScale,
}

/// The spam filter's key: source component and host, and the involved object
/// (kind, namespace, name, uid, apiVersion); not the reason or message.
fn spam_key(src: &Value, involved: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    [
        s(&src["component"]),
        s(&src["host"]),
        s(&involved["kind"]),
        s(&involved["namespace"]),
        s(&involved["name"]),
        s(&involved["uid"]),
        s(&involved["apiVersion"]),
    ]
    .join("|")
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
    pub fn new(clock: TimeScale) -> Recorder {
        Recorder {
            seen: Mutex::new(HashMap::new()),
            spam: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Whether the spam filter lets one more event from `src` about `involved` through.
    fn admit(&self, src: &Value, involved: &Value) -> bool {
        let now = Instant::now();
        let refill = self.clock.scaled(SPAM_REFILL_EVERY);
        self.spam
            .lock()
            .expect("spam mutex poisoned")
            .entry(spam_key(src, involved))
            .or_insert_with(|| Bucket::full(now))
            .try_take(now, refill)
    }

    /// Records (or aggregates) a core/v1 event about `obj`, unless the spam filter drops it.
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
        if !self.admit(&src, &involved(obj, None)) {
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spam_bucket_holds_25_and_refills_one_per_period() {
        let t0 = Instant::now();
        let refill = Duration::from_millis(300);
        let mut b = Bucket::full(t0);
        assert!((0..25).all(|_| b.try_take(t0, refill)));
        assert!(!b.try_take(t0, refill), "the 26th is dropped");
        assert!(
            !b.try_take(t0 + refill / 2, refill),
            "half a period: none back"
        );
        assert!(b.try_take(t0 + refill, refill), "one period: one back");
        assert!(!b.try_take(t0 + refill, refill));
        assert!(
            (0..25).all(|_| b.try_take(t0 + refill * 100, refill)),
            "never more than the burst"
        );
        assert!(!b.try_take(t0 + refill * 100, refill));
    }

    #[test]
    fn the_spam_key_is_the_source_and_the_object_only() {
        let pod = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"namespace": "n", "name": "p", "uid": "u"}});
        let src = json!({"component": "kubelet", "host": "minikube"});
        assert_eq!(
            spam_key(&src, &involved(&pod, None)),
            spam_key(&src, &involved(&pod, Some("spec.containers{web}")))
        );
        let other = json!({"component": "deployment-controller"});
        assert_ne!(
            spam_key(&src, &involved(&pod, None)),
            spam_key(&other, &involved(&pod, None))
        );
    }
}
