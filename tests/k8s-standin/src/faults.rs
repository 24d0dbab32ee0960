//! Fault injection: the next N matching requests fail with a 500, a 429 with
//! `Retry-After`, or a dropped connection; and the switch that cuts every open
//! watch stream.

use std::sync::Mutex;

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
}
