//! Fault injection: the next N matching requests fail with a 500, a 429 with
//! `Retry-After`, or a dropped connection; a controller's status-only write
//! right after a matching GET is answered (before any further request is);
//! and the switch that cuts every open watch stream.

use std::sync::Mutex;

use serde_json::{Value, json};

use crate::api::{Api, Req};
use crate::resources::Resource;
use crate::util::{fmt_secs, now_rfc3339, parse_time};

/// What an injected fault does to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 500 InternalError with a Status body.
    Status500,
    /// 429 TooManyRequests with `Retry-After` and the real Status body.
    TooManyRequests { retry_after_secs: u64 },
    /// The connection is closed without a response.
    DropConnection,
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultFilter {
    /// e.g. "PATCH"; `None` matches any method.
    pub method: Option<String>,
    /// Substring of the path and query; `None` matches any.
    pub path_contains: Option<String>,
}

impl FaultFilter {
    pub fn any() -> FaultFilter {
        FaultFilter::default()
    }
    pub fn method(m: &str) -> FaultFilter {
        FaultFilter {
            method: Some(m.to_string()),
            path_contains: None,
        }
    }
    pub fn path(p: &str) -> FaultFilter {
        FaultFilter {
            method: None,
            path_contains: Some(p.to_string()),
        }
    }
    pub fn method_path(m: &str, p: &str) -> FaultFilter {
        FaultFilter {
            method: Some(m.to_string()),
            path_contains: Some(p.to_string()),
        }
    }
    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_ref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_contains
                .as_ref()
                .is_none_or(|p| path.contains(p.as_str()))
    }
}

/// A status-only write the stand-in made after serving a GET
/// ([`crate::StandIn::status_write_after_next_get`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusWrite {
    /// The GET's path and query.
    pub path: String,
    /// The object's resourceVersion before the write (what the GET served,
    /// unless something else wrote in between).
    pub resource_version_before: String,
    /// Its resourceVersion after the write.
    pub resource_version_after: String,
}

struct Pending {
    remaining: usize,
    fault: Fault,
    filter: FaultFilter,
}

/// The queue of pending faults.
#[derive(Default)]
pub struct Faults {
    pending: Mutex<Vec<Pending>>,
    injected: Mutex<Vec<(String, String, Fault)>>,
    status_writes_armed: Mutex<Vec<FaultFilter>>,
    status_writes: Mutex<Vec<StatusWrite>>,
}

impl Faults {
    pub fn add(&self, n: usize, fault: Fault, filter: FaultFilter) {
        self.pending
            .lock()
            .expect("faults mutex poisoned")
            .push(Pending {
                remaining: n,
                fault,
                filter,
            });
    }

    /// Takes one fault for this request, if any applies.
    pub fn take(&self, method: &str, path: &str) -> Option<Fault> {
        let mut p = self.pending.lock().expect("faults mutex poisoned");
        let idx = p
            .iter()
            .position(|f| f.remaining > 0 && f.filter.matches(method, path))?;
        p[idx].remaining -= 1;
        let fault = p[idx].fault.clone();
        if p[idx].remaining == 0 {
            p.remove(idx);
        }
        drop(p);
        self.injected.lock().expect("faults mutex poisoned").push((
            method.to_string(),
            path.to_string(),
            fault.clone(),
        ));
        Some(fault)
    }

    /// Faults injected so far: (method, path, fault).
    pub fn injected(&self) -> Vec<(String, String, Fault)> {
        self.injected.lock().expect("faults mutex poisoned").clone()
    }

    /// Forgets pending faults.
    pub fn clear(&self) {
        self.pending.lock().expect("faults mutex poisoned").clear();
    }

    /// Arms one status-only write after the next single-object GET matching `filter`.
    pub fn arm_status_write(&self, filter: FaultFilter) {
        self.status_writes_armed
            .lock()
            .expect("faults mutex poisoned")
            .push(filter);
    }

    /// Disarms and returns true if a status write is armed for this GET.
    pub fn take_status_write(&self, path: &str) -> bool {
        let mut armed = self
            .status_writes_armed
            .lock()
            .expect("faults mutex poisoned");
        match armed.iter().position(|f| f.matches("GET", path)) {
            Some(i) => {
                armed.remove(i);
                true
            }
            None => false,
        }
    }

    /// The status-only writes made so far.
    pub fn status_writes(&self) -> Vec<StatusWrite> {
        self.status_writes
            .lock()
            .expect("faults mutex poisoned")
            .clone()
    }

    /// The status-only write armed for a GET of `path`, as the object's
    /// controller would write it: every condition's `lastUpdateTime` moves to
    /// now (whole seconds: if the stored times already say this second, the
    /// write waits for the next one).
    pub async fn write_status(
        &self,
        api: &Api,
        res: &'static Resource,
        ns: &str,
        name: &str,
        path: &str,
    ) {
        let Ok(live) = api.get(res, ns, name) else {
            return;
        };
        let Some(latest) = latest_update_time(&live) else {
            return;
        };
        while now_rfc3339() <= latest {
            let next = parse_time(&latest)
                .and_then(|t| t.checked_add(jiff::SignedDuration::from_secs(1)).ok())
                .map(|t| t.duration_since(jiff::Timestamp::now()))
                .and_then(|d| std::time::Duration::try_from(d).ok())
                .unwrap_or_default();
            tokio::time::sleep(next.max(std::time::Duration::from_millis(1))).await;
        }
        let before = rv_of(&live);
        let written = api.modify(
            res,
            ns,
            name,
            &Req::status("kube-controller-manager"),
            |live| {
                let mut n = live.clone();
                bump_update_times(&mut n["status"], &now_rfc3339());
                Some(n)
            },
        );
        if let Ok(Some(v)) = written {
            self.status_writes
                .lock()
                .expect("faults mutex poisoned")
                .push(StatusWrite {
                    path: path.to_string(),
                    resource_version_before: before,
                    resource_version_after: rv_of(&v),
                });
        }
    }
}

fn rv_of(v: &Value) -> String {
    v.pointer("/metadata/resourceVersion")
        .and_then(|r| r.as_str())
        .unwrap_or("")
        .to_string()
}

/// Whether a status-only write can be made for `obj`: it has status
/// conditions with `lastUpdateTime` (a Deployment's).
pub fn status_write_applies(obj: &Value) -> bool {
    latest_update_time(obj).is_some()
}

/// The latest `lastUpdateTime` of the object's status conditions, if any.
fn latest_update_time(obj: &Value) -> Option<String> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .filter_map(|c| c["lastUpdateTime"].as_str())
        .filter_map(parse_time)
        .max()
        .map(fmt_secs)
}

/// Every condition's `lastUpdateTime` becomes `now`; nothing else changes.
fn bump_update_times(status: &mut Value, now: &str) {
    if let Some(a) = status["conditions"].as_array_mut() {
        for c in a.iter_mut().filter(|c| c.get("lastUpdateTime").is_some()) {
            c["lastUpdateTime"] = json!(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_write_moves_only_the_update_times() {
        let mut d = json!({"status": {"observedGeneration": 1, "conditions": [
            {"type": "Available", "status": "True", "lastUpdateTime": "2026-12-02T07:53:15Z", "lastTransitionTime": "2026-12-02T07:53:15Z"},
            {"type": "Progressing", "status": "True", "lastUpdateTime": "2026-12-02T07:53:14Z", "lastTransitionTime": "2026-12-02T07:53:13Z"}]}});
        assert_eq!(
            latest_update_time(&d).as_deref(),
            Some("2026-12-02T07:53:15Z")
        );
        bump_update_times(&mut d["status"], "2026-12-02T07:53:16Z");
        assert_eq!(
            d["status"]["conditions"][1]["lastUpdateTime"],
            "2026-12-02T07:53:16Z"
        );
        assert_eq!(
            d["status"]["conditions"][1]["lastTransitionTime"],
            "2026-12-02T07:53:13Z"
        );
        assert_eq!(d["status"]["observedGeneration"], 1);
        assert_eq!(latest_update_time(&json!({"status": {}})), None);
    }
}
